//! Tests of the LM data, the burn model against the float reference, and training.

use std::path::Path;

use burn::tensor::Device;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::data::{load_ptb, load_shakespeare, Corpus, Dataset};
use super::float::{HeadKind, Level, LmF};
use super::model::{tensor_vec, LmConfig, LmModel};
use super::train::{mean_nll, run_on, TrainLmArgs};
use crate::pixelcnn::data::shared_data_dir;

fn data_dir() -> std::path::PathBuf {
    shared_data_dir(None)
}

#[test]
fn ptb_counts() {
    let c = load_ptb(&data_dir()).expect("PTB in the shared data directory");
    assert_eq!(c.level, Level::Word);
    assert_eq!(c.vocab.len(), 10_000);
    assert_eq!(c.train.len(), 929_589);
    assert_eq!(c.valid.len(), 73_760);
    assert_eq!(c.test.len(), 82_430);
    assert_eq!(c.vocab[c.start_token() as usize], "<eos>");
    // First appearance order: the file starts with " aer banknote ...".
    assert_eq!(c.vocab[0], "aer");
    assert!(c.train.iter().all(|&t| (t as usize) < 10_000));
}

#[test]
fn shakespeare_counts() {
    let c = load_shakespeare(&data_dir()).expect("Tiny Shakespeare in the shared data directory");
    assert_eq!(c.level, Level::Char);
    assert_eq!(c.vocab.len(), 65);
    assert_eq!(c.train.len(), 1_003_854);
    assert_eq!(c.valid.len(), 111_540);
    assert_eq!(c.test, c.valid);
    assert_eq!(c.vocab[c.start_token() as usize], "\n");
    let mut sorted = c.vocab.clone();
    sorted.sort();
    assert_eq!(sorted, c.vocab);
}

#[test]
fn missing_data_names_the_path() {
    let dir = Path::new("/nonexistent/lm-data");
    for ds in [Dataset::Ptb, Dataset::Shakespeare] {
        let e = format!("{:#}", ds.load(dir).unwrap_err());
        assert!(e.contains("/nonexistent/lm-data"), "{e}");
        assert!(e.contains("README.md"), "{e}");
    }
}

fn tiny_model(kind: HeadKind, k: usize, hidden: &[usize], seed: u64) -> LmModel {
    let v = 23;
    let cfg = LmConfig {
        vocab: v,
        emb: 6,
        hidden: hidden.to_vec(),
        head: kind,
        k,
    };
    cfg.validate().unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let vocab = (0..v).map(|i| format!("w{i}")).collect();
    let mut m = LmModel::new(&cfg, Level::Word, vocab, &mut rng, &Device::flex());
    // Larger random weights than the initialisation so that every term matters.
    let mut f = m.to_float();
    let mut bump = |x: &mut Vec<f32>| x.iter_mut().for_each(|w| *w += rng.random_range(-0.5..0.5));
    bump(&mut f.embedding);
    bump(&mut f.head.proj_b);
    bump(&mut f.head.dec_b);
    bump(&mut f.head.prior_w);
    bump(&mut f.head.prior_b);
    for l in &mut f.layers {
        bump(&mut l.w_ih);
        bump(&mut l.bias);
    }
    assert_eq!(f.params(), cfg.params());
    m = LmModel::from_float(&f, &Device::flex());
    m
}

/// burn's log-probabilities on a batch of sequences equal LmF::head(LmF::step(..)).
fn check_equal(kind: HeadKind, k: usize, hidden: &[usize]) {
    let m = tiny_model(kind, k, hidden, 7 + k as u64 + hidden.len() as u64);
    let f: LmF = m.to_float();
    f.validate().unwrap();
    let (b, t) = (3, 9);
    let mut rng = StdRng::seed_from_u64(1);
    let seqs: Vec<Vec<u32>> = (0..b)
        .map(|_| (0..t + 1).map(|_| rng.random_range(0..23u32)).collect())
        .collect();
    // Two segments of the same columns, the state carried across.
    let mut state = m.zero_state(b);
    let mut burn_lp = vec![vec![]; b]; // [b][t][V]
    let mut burn_tgt = vec![vec![]; b]; // [b][t]
    for (lo, hi) in [(0, 4), (4, t)] {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for s in lo..hi {
            for seq in &seqs {
                x.push(seq[s]);
                y.push(seq[s + 1]);
            }
        }
        let (g, st) = m.features(&x, b, state.clone(), None);
        let (lat, lp) = m.latents(g.clone(), b, None);
        let full = tensor_vec(m.full_log_probs(lat.clone(), lp.clone()));
        let tl = tensor_vec(m.target_log_probs(lat, lp, &y));
        let (tl2, st2) = m.segment_log_probs(&x, &y, b, state, None);
        assert_eq!(tensor_vec(tl2), tl);
        let _ = st2;
        state = st;
        for s in 0..hi - lo {
            for c in 0..b {
                let r = s * b + c;
                burn_lp[c].push(full[r * 23..(r + 1) * 23].to_vec());
                burn_tgt[c].push(tl[r]);
            }
        }
    }
    let mut worst = 0f32;
    for (c, seq) in seqs.iter().enumerate() {
        let mut st = f.zero_state();
        for s in 0..t {
            let g = f.step(seq[s] as usize, &mut st);
            let lp = f.head(&g).log_probs;
            for (a, bb) in lp.iter().zip(&burn_lp[c][s]) {
                worst = worst.max((a - bb).abs());
            }
            worst = worst.max((lp[seq[s + 1] as usize] - burn_tgt[c][s]).abs());
            let total: f32 = lp.iter().map(|v| v.exp()).sum();
            assert!((total - 1.0).abs() < 1e-4, "probabilities sum to {total}");
        }
    }
    assert!(
        worst < 1e-4,
        "{kind:?} K {k} layers {hidden:?}: max |burn - LmF| = {worst}"
    );
}

#[test]
fn burn_equals_float_softmax() {
    check_equal(HeadKind::Softmax, 1, &[8]);
    check_equal(HeadKind::Softmax, 1, &[8, 5]);
}

#[test]
fn burn_equals_float_moc() {
    check_equal(HeadKind::Moc, 3, &[8]);
    check_equal(HeadKind::Moc, 3, &[8, 5]);
}

#[test]
fn burn_equals_float_mos() {
    check_equal(HeadKind::Mos, 3, &[8]);
    check_equal(HeadKind::Mos, 3, &[7, 5]);
    check_equal(HeadKind::Mos, 1, &[8]);
}

#[test]
fn float_roundtrip_is_exact() {
    let m = tiny_model(HeadKind::Mos, 2, &[4, 3], 3);
    let f = m.to_float();
    let g = LmModel::from_float(&f, &Device::flex()).to_float();
    assert_eq!(serde_json::to_string(&f).unwrap(), serde_json::to_string(&g).unwrap());
}

#[test]
fn mos_with_one_component_is_softmax() {
    let m = tiny_model(HeadKind::Mos, 1, &[8], 5);
    let mut f = m.to_float();
    let seq: Vec<u32> = (0..30).map(|i| (i * 7 % 23) as u32).collect();
    let a = f.mean_nll(&seq, usize::MAX);
    f.head.kind = HeadKind::Softmax;
    let b = f.mean_nll(&seq, usize::MAX);
    assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    let mb = LmModel::from_float(&f, &Device::flex());
    f.head.kind = HeadKind::Mos;
    let ma = LmModel::from_float(&f, &Device::flex());
    let na = mean_nll(&ma, &seq[1..], seq[0], 1, 8);
    let nb = mean_nll(&mb, &seq[1..], seq[0], 1, 8);
    assert!((na - nb).abs() < 1e-5, "{na} vs {nb}");
}

#[test]
fn burn_mean_nll_matches_float_and_batching() {
    let m = tiny_model(HeadKind::Mos, 2, &[8], 11);
    let f = m.to_float();
    let mut rng = StdRng::seed_from_u64(2);
    let toks: Vec<u32> = (0..61).map(|_| rng.random_range(0..23u32)).collect();
    // LmF::mean_nll predicts toks[1..] from toks[0]; burn's mean_nll the same with start toks[0].
    let want = f.mean_nll(&toks, usize::MAX);
    for chunk in [1, 7, 100] {
        let got = mean_nll(&m, &toks[1..], toks[0], 1, chunk);
        assert!((got - want).abs() < 1e-5, "chunk {chunk}: {got} vs {want}");
    }
    // Columns: finite and close (each column restarts from a zero state).
    let got = mean_nll(&m, &toks[1..], toks[0], 4, 5);
    assert!(got.is_finite() && (got - want).abs() < 0.5, "{got} vs {want}");
}

fn tiny_corpus() -> Corpus {
    // A strongly patterned word stream: "a b c d <eos>" with occasional variants.
    let vocab: Vec<String> = ["<eos>", "a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut rng = StdRng::seed_from_u64(4);
    let mut stream = Vec::new();
    for _ in 0..400 {
        stream.extend([1, 2, 3]);
        stream.push(if rng.random::<f32>() < 0.8 { 4 } else { 5 });
        if rng.random::<f32>() < 0.3 {
            stream.push(6);
        }
        stream.push(0);
    }
    Corpus {
        level: Level::Word,
        vocab,
        valid: stream[..200].to_vec(),
        test: stream[200..400].to_vec(),
        train: stream,
    }
}

#[test]
fn training_reduces_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    for (head, k) in [(HeadKind::Softmax, 1), (HeadKind::Mos, 3), (HeadKind::Moc, 2)] {
        let mut args = TrainLmArgs::default();
        args.out = dir.path().join(head.name());
        args.head = head;
        args.k = Some(k);
        args.emb = 8;
        args.hidden = vec![16];
        args.bptt = 10;
        args.batch = 8;
        args.epochs = 8;
        args.lr = Some(3e-2);
        args.dropout_out = 0.1;
        args.dropout_latent = 0.1;
        args.dropout_in = 0.1;
        args.threads = 1;
        args.quiet = true;
        let s = run_on(&args, tiny_corpus()).unwrap();
        let first = s.history.first().unwrap().train_nll;
        let last = s.history.last().unwrap();
        assert!(
            last.train_nll < first && last.valid_ppl < 3.0,
            "{head:?}: train {first} -> {}, valid ppl {}",
            last.train_nll,
            last.valid_ppl
        );
        // Uniform over 7 tokens is ppl 7.
        assert!(s.test_ppl < 3.0, "{head:?}: test ppl {}", s.test_ppl);
        let f = LmF::load(&s.final_json).unwrap();
        assert_eq!(f.head.kind, head);
        // The saved float model scores the test split like the burn model did.
        let want = s.test_ppl.ln();
        let got = f.mean_nll(
            &std::iter::once(0u32)
                .chain(tiny_corpus().test)
                .collect::<Vec<_>>(),
            usize::MAX,
        );
        assert!((got - want).abs() < 1e-4, "{head:?}: LmF {got} vs burn {want}");
        assert!(args.out.join("epoch-8.json").is_file());
        assert!(args.out.join("summary.json").is_file());
    }
}
