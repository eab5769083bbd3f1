//! Golden vectors: the core must reproduce, byte for byte, the outputs the
//! independent wide-integer reference computed for `golden/tiny.rs`.

#[path = "golden/tiny.rs"]
mod tiny;

use tinyinfer::format::Model;
use tinyinfer::models::{Classifier, Observer};
use tinyinfer::Error;

fn classifier() -> Classifier<'static> {
    Classifier::new(Model::new_checked(&tiny::MODEL.0).expect("golden model checks")).unwrap()
}

#[test]
fn core_matches_golden_outputs() {
    let clf = classifier();
    assert_eq!(clf.model().arena_len(), tiny::ARENA);
    let mut arena = [0u8; tiny::ARENA];
    for (input, want) in tiny::INPUTS.iter().zip(&tiny::EXPECTED) {
        let p = clf.classify(input, &mut arena).unwrap();
        assert_eq!(p.scores, want);
        let best = want
            .iter()
            .enumerate()
            .max_by_key(|&(i, v)| (*v, usize::MAX - i))
            .unwrap()
            .0;
        assert_eq!(p.class, best);
    }
}

#[test]
fn dirty_and_larger_arenas_give_the_same_bytes() {
    let clf = classifier();
    let mut arena = vec![0xA5u8; tiny::ARENA + 100];
    for (input, want) in tiny::INPUTS.iter().zip(&tiny::EXPECTED) {
        assert_eq!(clf.classify(input, &mut arena).unwrap().scores, want);
    }
}

#[test]
fn arena_too_small_states_the_size_needed() {
    let clf = classifier();
    let mut arena = [0u8; tiny::ARENA - 1];
    let err = clf.classify(&tiny::INPUTS[0], &mut arena).unwrap_err();
    assert_eq!(
        err,
        Error::ArenaTooSmall {
            needed: tiny::ARENA as u32,
            got: tiny::ARENA as u32 - 1
        }
    );
    assert!(err.to_string().contains(&tiny::ARENA.to_string()));
}

#[test]
fn wrong_input_length_is_refused() {
    let clf = classifier();
    let mut arena = [0u8; tiny::ARENA];
    assert_eq!(
        clf.classify(&[0u8; 35], &mut arena).unwrap_err(),
        Error::BadLength {
            expected: 36,
            got: 35
        }
    );
}

#[test]
fn probabilities_and_top_k() {
    let clf = classifier();
    let mut arena = [0u8; tiny::ARENA];
    let p = clf.classify(&tiny::INPUTS[1], &mut arena).unwrap();
    let mut probs = [0f32; 3];
    p.probabilities(&mut probs).unwrap();
    assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert!(probs[p.class] >= probs.iter().cloned().fold(0.0, f32::max));
    let top = p.top_k::<2>();
    assert_eq!(top.len(), 2);
    assert_eq!(top[0].0, p.class);
    assert!(top[0].1 >= top[1].1);
    assert!(p.probabilities(&mut [0f32; 2]).is_err());
}

#[test]
fn observer_sees_every_op_in_order() {
    struct Log(Vec<(usize, bool)>);
    impl Observer for Log {
        fn before(&mut self, i: usize, _: &tinyinfer::format::OpRepr) {
            self.0.push((i, true));
        }
        fn after(&mut self, i: usize, _: &tinyinfer::format::OpRepr) {
            self.0.push((i, false));
        }
    }
    let clf = classifier();
    let mut arena = [0u8; tiny::ARENA];
    let mut log = Log(Vec::new());
    clf.classify_observed(&tiny::INPUTS[2], &mut arena, &mut log)
        .unwrap();
    let want: Vec<_> = (0..5).flat_map(|i| [(i, true), (i, false)]).collect();
    assert_eq!(log.0, want);
}
