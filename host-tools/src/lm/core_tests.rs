//! The int8 core against the float model, on small random models.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tinyinfer::format::Model;
use tinyinfer::models::LanguageModel;
use tinyinfer::rng::Pcg32;

use super::data::start_token;
use super::float::{HeadF, HeadKind, Level, LmF, LstmF};
use super::quantize::export;
use super::run::{detokenize, generate, language_model};
use crate::export::AlignedBlob;

fn randv(r: &mut StdRng, n: usize, s: f32) -> Vec<f32> {
    (0..n).map(|_| r.random_range(-s..s)).collect()
}

pub(crate) fn random_lm(kind: HeadKind, k: usize, hidden: &[usize], seed: u64) -> LmF {
    let mut r = StdRng::seed_from_u64(seed);
    let vocab: Vec<String> = "\nabcdefghijklmnopqrstuvwxyz .,;!?ABCDEFGHIJ"
        .chars()
        .map(String::from)
        .collect();
    let (v, d) = (vocab.len(), 16);
    let mut layers = Vec::new();
    let mut input = d;
    for &h in hidden {
        layers.push(LstmF {
            input,
            hidden: h,
            w_ih: randv(&mut r, 4 * h * input, 0.5),
            w_hh: randv(&mut r, 4 * h * h, 0.5),
            bias: randv(&mut r, 4 * h, 0.5),
        });
        input = h;
    }
    let top = input;
    let head = HeadF {
        kind,
        k,
        proj_w: randv(&mut r, k * d * top, 0.6),
        proj_b: randv(&mut r, k * d, 0.3),
        prior_w: if k > 1 {
            randv(&mut r, k * top, 1.0)
        } else {
            vec![]
        },
        prior_b: if k > 1 { randv(&mut r, k, 0.5) } else { vec![] },
        dec_b: randv(&mut r, v, 1.0),
    };
    LmF {
        level: Level::Char,
        vocab,
        emb_dim: d,
        embedding: randv(&mut r, v * d, 1.5),
        layers,
        head,
    }
}

fn cases() -> Vec<LmF> {
    vec![
        random_lm(HeadKind::Softmax, 1, &[32], 1),
        random_lm(HeadKind::Moc, 3, &[32, 24], 2),
        random_lm(HeadKind::Mos, 3, &[32, 24], 3),
        random_lm(HeadKind::Mos, 4, &[20], 4),
    ]
}

#[test]
fn int8_log_probs_follow_the_float_model() {
    for (ci, m) in cases().iter().enumerate() {
        let ex = export(m).unwrap();
        let blob = AlignedBlob::new(&ex.blob);
        let lm = language_model(&blob).unwrap();
        let mut arena = vec![0u8; lm.arena_len()];
        let mut s = lm.session(&mut arena).unwrap();
        let mut fs = m.zero_state();
        let mut r = StdRng::seed_from_u64(ci as u64);
        let mut tok = start_token(m.level, &m.vocab) as u16;
        let (mut worst, mut sum, mut n) = (0f64, 0f64, 0);
        for _ in 0..60 {
            s.step(tok).unwrap();
            let g = m.step(tok as usize, &mut fs);
            let flp = m.head(&g).log_probs;
            for (x, &f) in flp.iter().enumerate() {
                let q = s.log_prob(x as u16).unwrap().nats();
                let e = (q - f as f64).abs();
                worst = worst.max(e);
                sum += e;
                n += 1;
            }
            tok = r.random_range(0..m.vocab.len()) as u16;
        }
        let mean = sum / n as f64;
        eprintln!("case {ci}: mean {mean:.5} worst {worst:.5} nats");
        assert!(
            mean < 0.03,
            "case {ci}: mean |int8 − float| log-prob {mean:.4} nats"
        );
        assert!(
            worst < 0.3,
            "case {ci}: worst |int8 − float| log-prob {worst:.4} nats"
        );
    }
}

#[test]
fn distribution_top_k_and_log_prob_agree() {
    for (ci, m) in cases().iter().enumerate() {
        let ex = export(m).unwrap();
        let blob = AlignedBlob::new(&ex.blob);
        let lm = language_model(&blob).unwrap();
        let mut arena = vec![0u8; lm.arena_len()];
        let mut s = lm.session(&mut arena).unwrap();
        for tok in [0u16, 5, 9, 17, 3] {
            s.step(tok).unwrap();
            let probs = s.distribution().to_vec();
            let total: u64 = probs.iter().map(|&p| p as u64).sum();
            let err = (total as f64 / 2f64.powi(32) - 1.0).abs();
            assert!(err < 1e-4, "case {ci}: probabilities sum to 1 ± {err}");
            for (v, &p) in probs.iter().enumerate() {
                let lp = s.log_prob(v as u16).unwrap().nats();
                if p > 1 << 20 {
                    let direct = (p as f64 / 2f64.powi(32)).ln();
                    assert!(
                        (lp - direct).abs() < 2e-3,
                        "case {ci} token {v}: {lp} vs {direct}"
                    );
                }
            }
            let top = s.top_k::<5>();
            assert_eq!(top.len(), 5);
            let mut sorted: Vec<(u16, u32)> = probs
                .iter()
                .enumerate()
                .map(|(v, &p)| (v as u16, p))
                .collect();
            sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            assert_eq!(&top[..], &sorted[..5], "case {ci}");
        }
    }
}

#[test]
fn generation_is_seeded_and_matches_a_manual_loop() {
    let m = random_lm(HeadKind::Mos, 3, &[32], 9);
    let blob = AlignedBlob::new(&export(&m).unwrap().blob);
    let a = generate(&blob, "abc", 40, 7).unwrap();
    assert_eq!(a, generate(&blob, "abc", 40, 7).unwrap());
    assert_ne!(a, generate(&blob, "abc", 40, 8).unwrap());
    // The same draws by hand: start token, prompt, then sample/step.
    let lm = language_model(&blob).unwrap();
    let mut arena = vec![0u8; lm.arena_len() + 4];
    let mut s = lm.session(&mut arena[1..]).unwrap(); // a misaligned arena works too
    s.reset();
    s.step(lm.start_token()).unwrap();
    for c in "abc".chars() {
        s.step(lm.vocab().id(&c.to_string()).unwrap()).unwrap();
    }
    let mut rng = Pcg32::seeded(7);
    let mut b = Vec::new();
    for _ in 0..40 {
        let t = s.sample(&mut rng);
        b.push(t);
        s.step(t).unwrap();
    }
    assert_eq!(a, b);
    assert_eq!(detokenize(&lm, &b).chars().count(), 40);
    assert!(generate(&blob, "abc~", 4, 0)
        .unwrap_err()
        .to_string()
        .contains("byte 3"));
}

#[test]
fn bad_tokens_and_small_arenas_are_errors() {
    let m = random_lm(HeadKind::Moc, 2, &[16], 5);
    let blob = AlignedBlob::new(&export(&m).unwrap().blob);
    let lm = language_model(&blob).unwrap();
    let need = lm.arena_len();
    let mut small = vec![0u8; need - 1];
    assert!(matches!(
        lm.session(&mut small),
        Err(tinyinfer::Error::ArenaTooSmall { .. })
    ));
    let mut arena = vec![0u8; need];
    let mut s = lm.session(&mut arena).unwrap();
    let v = m.vocab.len() as u16;
    assert_eq!(s.step(v), Err(tinyinfer::Error::BadInput(v as u32)));
    assert_eq!(s.log_prob(v), Err(tinyinfer::Error::BadInput(v as u32)));
}

/// Every single-byte flip and every truncation of a real LM blob is refused
/// or runs without a panic.
#[test]
fn corrupt_lm_blobs_never_panic() {
    let m = random_lm(HeadKind::Mos, 2, &[8], 6);
    let bytes = export(&m).unwrap().blob;
    let mut arena = vec![0u8; 1 << 16];
    let run = |b: &[u8], arena: &mut [u8]| {
        let blob = AlignedBlob::new(b);
        // Structure only: a flip would otherwise just fail the CRC.
        let Ok(model) = Model::check_structure(blob.bytes()) else {
            return;
        };
        let Ok(lm) = LanguageModel::new(model) else {
            return;
        };
        let Ok(mut s) = lm.session(arena) else { return };
        for t in [0u16, 1, 2, 40, 65535] {
            let _ = s.step(t);
            let _ = s.log_prob(t);
        }
        let _ = s.top_k::<3>();
        let _ = s.sample(&mut Pcg32::seeded(1));
    };
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            run(&b, &mut arena);
        }
    }
    for n in 0..bytes.len() {
        assert!(Model::new_checked(AlignedBlob::new(&bytes[..n]).bytes()).is_err());
    }
}

/// Writes the fuzz seeds `fuzz/corpus/model/seed-lm-{checked,structure}`
/// (a mode byte, then a small MoS blob) when `TINYINFER_WRITE_FUZZ_SEEDS` is set.
#[test]
fn fuzz_seeds() {
    let bytes = export(&random_lm(HeadKind::Mos, 2, &[8], 6)).unwrap().blob;
    assert!(Model::new_checked(AlignedBlob::new(&bytes).bytes()).is_ok());
    if std::env::var_os("TINYINFER_WRITE_FUZZ_SEEDS").is_none() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/model");
    for (mode, name) in [(0u8, "seed-lm-checked"), (1, "seed-lm-structure")] {
        let mut b = vec![mode];
        b.extend_from_slice(&bytes);
        std::fs::write(dir.join(name), b).unwrap();
    }
}

/// A legal MoS checkpoint whose head saturates: the latents are 0, so the
/// logits are the decoder biases exactly, and the prior is its biases.
fn saturated_mos(prior_b: Vec<f32>, dec_b: Vec<f32>) -> LmF {
    let mut m = random_lm(HeadKind::Mos, prior_b.len(), &[8], 11);
    let h = &mut m.head;
    h.proj_w.iter_mut().for_each(|w| *w = 0.0);
    h.proj_b.iter_mut().for_each(|w| *w = 0.0);
    h.prior_w.iter_mut().for_each(|w| *w = 0.0);
    h.prior_b = prior_b;
    assert_eq!(dec_b.len(), m.vocab.len());
    h.dec_b = dec_b;
    m
}

/// The distribution sums to 1 within the fixed-point bound, and `sample`
/// draws from it: `n` seeded draws, each token's count within 6σ (+1) of
/// `n·p`. Deterministic (fixed seeds).
fn assert_distribution_and_sampling(m: &LmF, what: &str) {
    let blob = AlignedBlob::new(&export(m).unwrap().blob);
    let lm = language_model(&blob).unwrap();
    let mut arena = vec![0u8; lm.arena_len()];
    let mut s = lm.session(&mut arena).unwrap();
    s.step(lm.start_token()).unwrap();
    let probs = s.distribution().to_vec();
    let (v, k) = (probs.len() as i128, m.head.k as i128);
    let total: i128 = probs.iter().map(|&p| p as i128).sum();
    // Each Q32 probability is rounded down once in its softmax (≤ 2 per token
    // with the reciprocal), once in the mixture, once saturating to u32:
    // the sum stays within 4·V·K + 4 of 2^32, and never above it.
    let slack = 4 * v * k + 4;
    assert!(
        total <= 1i128 << 32 && (1i128 << 32) - total <= slack,
        "{what}: probabilities sum to {total} (2^32 − {}), slack {slack}",
        (1i128 << 32) - total
    );
    let n = 4000usize;
    let mut counts = vec![0usize; probs.len()];
    let mut rng = Pcg32::seeded(3);
    for _ in 0..n {
        counts[s.sample(&mut rng) as usize] += 1;
    }
    for (t, (&c, &q)) in counts.iter().zip(&probs).enumerate() {
        let p = q as f64 / 2f64.powi(32);
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (c as f64 - n as f64 * p).abs() <= 6.0 * sd + 1.0,
            "{what}: token {t} drawn {c} times of {n}, p = {p}"
        );
    }
}

/// Issue 10: prior biases [11, −11] and decoder biases [11, −11, …] make
/// one component and one token each lead by 22 nats, so both Q32 factors of
/// the mixture product are exactly 2^32. The product overflowed u64
/// (a panic in debug, all-zero probabilities and token V−1 forever in
/// release).
#[test]
fn saturated_mixture_sums_to_one_and_samples_the_leader() {
    let v = random_lm(HeadKind::Mos, 2, &[8], 11).vocab.len();
    let mut dec_b = vec![-11.0f32; v];
    dec_b[0] = 11.0;
    let m = saturated_mos(vec![11.0, -11.0], dec_b);
    assert_distribution_and_sampling(&m, "prior [11, −11]");
    // The leader has all the mass: every draw is token 0.
    let blob = AlignedBlob::new(&export(&m).unwrap().blob);
    let lm = language_model(&blob).unwrap();
    let mut arena = vec![0u8; lm.arena_len()];
    let mut s = lm.session(&mut arena).unwrap();
    s.step(lm.start_token()).unwrap();
    let mut rng = Pcg32::seeded(0);
    assert!((0..100).all(|_| s.sample(&mut rng) == 0));
    assert_eq!(s.log_prob(0).unwrap().nats(), 0.0);
}

/// The same two properties over random extreme head biases (±30 nats, far
/// past the 21.5 nats where a Q32 factor saturates), K from 2 to 4.
/// A fixed seed: the same cases on every run.
#[test]
fn extreme_head_biases_keep_the_distribution() {
    let mut r = StdRng::seed_from_u64(10);
    let v = random_lm(HeadKind::Mos, 2, &[8], 11).vocab.len();
    for case in 0..40 {
        let k = r.random_range(2..=4usize);
        let big = |r: &mut StdRng| {
            if r.random_bool(0.3) {
                r.random_range(-30.0f32..30.0)
            } else {
                r.random_range(-2.0f32..2.0)
            }
        };
        let prior: Vec<f32> = (0..k).map(|_| big(&mut r)).collect();
        let dec: Vec<f32> = (0..v).map(|_| big(&mut r)).collect();
        let m = saturated_mos(prior, dec);
        assert_distribution_and_sampling(&m, &format!("case {case}"));
    }
}
