//! Fuzzes the model checker and the drivers behind it (classifier, density,
//! language model).
//!
//! The CRC would reject almost every mutation before the structural checks
//! run, so the first byte of the input selects the path: odd runs
//! `check_structure` (no CRC), even runs `new_checked` on the rest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyinfer::format::Model;
use tinyinfer::format::Family;
use tinyinfer::models::{Classifier, DensityModel, LanguageModel};
use tinyinfer::rng::Pcg32;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    // Copy into 4-aligned storage, as a flash partition is.
    let mut words = vec![0u32; rest.len().div_ceil(4)];
    for (w, c) in words.iter_mut().zip(rest.chunks(4)) {
        let mut b = [0u8; 4];
        b[..c.len()].copy_from_slice(c);
        *w = u32::from_le_bytes(b);
    }
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).take(rest.len()).collect();
    // `bytes` is a fresh Vec<u8>; its alignment is the allocator's (≥ 8 in practice).
    let model = if mode & 1 == 1 { Model::check_structure(&bytes) } else { Model::new_checked(&bytes) };
    let Ok(model) = model else { return };
    if model.arena_len() > 1 << 20 {
        return;
    }
    if model.family() == Family::LanguageModel {
        let Ok(lm) = LanguageModel::new(model) else { return };
        let mut arena = vec![0u8; lm.arena_len()];
        let Ok(mut s) = lm.session(&mut arena) else { return };
        let v = lm.spec().vocab as u16;
        let _ = s.prime("ab c");
        for t in [0, 1, v / 2, v.wrapping_sub(1), v] {
            let _ = s.step(t);
            let _ = s.log_prob(t);
        }
        let _ = s.top_k::<4>();
        let _ = s.sample(&mut Pcg32::seeded(2));
        return;
    }
    if model.family() == Family::Density {
        let Ok(dm) = DensityModel::new(model) else { return };
        let mut arena = vec![0u8; dm.arena_len().max(dm.sample_arena_len())];
        let mut image: Vec<u8> = (0..dm.pixels()).map(|i| (i % 3 == 0) as u8).collect();
        let _ = dm.nll(&image, &mut arena);
        let _ = dm.nll_streaming(&image, &mut arena[..dm.sample_arena_len()]);
        let _ = dm.sample(&mut Pcg32::seeded(1), &mut image, &mut arena);
        let _ = dm.selftest(&mut arena);
        return;
    }
    let Ok(clf) = Classifier::new(model) else { return };
    let mut arena = vec![0u8; model.arena_len()];
    let pixels = vec![0x55u8; clf.input_len()];
    if let Ok(p) = clf.classify(&pixels, &mut arena) {
        let mut probs = vec![0f32; p.scores.len()];
        let _ = p.probabilities(&mut probs);
        let _ = p.top_k::<3>();
    }
    let _ = clf.selftest(&mut arena);
});
