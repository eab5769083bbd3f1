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
use crate::common::blob::AlignedBlob;

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
    // With a sorted token index and two self-test cases: the fuzzer then
    // mutates both the index and the cases' checks.
    let with_cases = super::quantize::repack(&bytes, 2).unwrap();
    assert!(Model::new_checked(AlignedBlob::new(&with_cases).bytes()).is_ok());
    if std::env::var_os("TINYINFER_WRITE_FUZZ_SEEDS").is_none() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/model");
    for (mode, name, blob) in [
        (0u8, "seed-lm-checked", &bytes),
        (1, "seed-lm-structure", &bytes),
        (0, "seed-lm-selftest-checked", &with_cases),
        (1, "seed-lm-selftest-structure", &with_cases),
    ] {
        let mut b = vec![mode];
        b.extend_from_slice(blob);
        std::fs::write(dir.join(name), b).unwrap();
    }
    // The CRC-fixing target reads bare blobs.
    let crc_fixed = dir.join("../crc_fixed/seed-lm-selftest");
    std::fs::write(crc_fixed, &with_cases).unwrap();
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

/// Offset of the `kind` section in a blob, and its length.
fn section_at(blob: &[u8], kind: tinyinfer::format::SectionKind) -> (usize, usize) {
    let ab = AlignedBlob::new(blob);
    let model = ab.model().unwrap();
    let sec = model.section(kind).unwrap();
    let at = sec.as_ptr() as usize - model.as_bytes().as_ptr() as usize;
    (at, sec.len())
}

/// The typed error of `blob` after `f` edits its bytes (the CRC fixed).
fn edited(blob: &[u8], f: impl FnOnce(&mut [u8])) -> Result<(), tinyinfer::Error> {
    let mut b = blob.to_vec();
    f(&mut b);
    let n = b.len();
    let crc = tinyinfer::format::CRC32.checksum(&b[..n - 4]);
    b[n - 4..].copy_from_slice(&crc.to_le_bytes());
    let ab = AlignedBlob::new(&b);
    LanguageModel::new(Model::new_checked(ab.bytes())?).map(|_| ())
}

#[test]
fn sorted_vocab_lookups_equal_the_linear_search_on_the_ptb_vocabulary() {
    use super::data::load_ptb;
    use super::quantize::vocab_section;
    use crate::common::data::shared_data_dir;
    use tinyinfer::format::Vocab;
    let c = load_ptb(&shared_data_dir(None)).expect("PTB in the shared data directory");
    let sec = vocab_section(&c.vocab).unwrap();
    let v = Vocab::parse(&sec, c.vocab.len()).expect("the core accepts the indexed table");
    assert!(v.is_indexed());
    for (i, t) in c.vocab.iter().enumerate() {
        assert_eq!(v.id(t), Some(i as u16), "{t:?}");
        assert_eq!(v.id(t), v.id_linear(t), "{t:?}");
    }
    // Texts that are no token, before, between and after the sorted ones.
    for t in ["", "\u{0}", "zzzzzzzz", "the ", "aaa", "<unk>x", "~", "N0"] {
        assert_eq!(v.id(t), v.id_linear(t), "{t:?}");
        assert_eq!(v.id(t), None, "{t:?}");
    }
    // A table without the index (flags 0, the layout before it) still loads
    // and looks up linearly.
    let v_len = c.vocab.len();
    let table_end = 8 + 4 * (v_len + 1);
    let mut old = sec[..table_end].to_vec();
    old[4..8].copy_from_slice(&0u32.to_le_bytes());
    old.extend_from_slice(&sec[table_end + ((2 * v_len + 3) & !3)..]);
    let o = Vocab::parse(&old, v_len).expect("an unindexed table still loads");
    assert!(!o.is_indexed());
    assert_eq!(o.id("the"), v.id("the"));
    // Duplicate texts cannot be indexed: the exporter says which.
    let err = vocab_section(&["a", "b", "a"]).unwrap_err().to_string();
    assert!(err.contains("tokens 0 and 2"), "{err}");
}

#[test]
fn a_malformed_vocab_index_is_a_typed_error() {
    use tinyinfer::format::SectionKind;
    let ex = export(&random_lm(HeadKind::Mos, 3, &[24], 5)).unwrap();
    let (at, _) = section_at(&ex.blob, SectionKind::Vocab);
    let v = 43;
    let index = at + 8 + 4 * (v + 1);
    let bad = Err(tinyinfer::Error::BadSection(SectionKind::Vocab as u16));
    assert_eq!(edited(&ex.blob, |_| ()), Ok(()));
    // Two entries swapped: not sorted.
    assert_eq!(
        edited(&ex.blob, |b| {
            let (x, y) = (index, index + 2);
            let (p, q) = ([b[x], b[x + 1]], [b[y], b[y + 1]]);
            b[x..x + 2].copy_from_slice(&q);
            b[y..y + 2].copy_from_slice(&p);
        }),
        bad
    );
    // An entry repeated (not a permutation), an id ≥ V, padding, an unknown flag.
    assert_eq!(
        edited(&ex.blob, |b| b.copy_within(index..index + 2, index + 2)),
        bad
    );
    assert_eq!(
        edited(&ex.blob, |b| b[index..index + 2]
            .copy_from_slice(&(v as u16).to_le_bytes())),
        bad
    );
    assert_eq!(edited(&ex.blob, |b| b[index + 2 * v] = 1), bad);
    assert_eq!(edited(&ex.blob, |b| b[at + 4] = 3), bad);
}

#[test]
fn lm_selftest_round_trips_and_corrupt_cases_are_typed_errors() {
    use super::quantize::{repack, SELFTEST_PROMPT, SELFTEST_TOP};
    use tinyinfer::format::{SectionKind, LM_TOP_LEN};
    use tinyinfer::Error;
    for (ci, m) in cases().iter().enumerate() {
        let ex = export(m).unwrap();
        let blob = repack(&ex.blob, 6).unwrap();
        // Repacking is deterministic and keeps DATA and LM.
        assert_eq!(repack(&ex.blob, 6).unwrap(), blob);
        let ab = AlignedBlob::new(&blob);
        let lm = language_model(&ab).unwrap();
        let st = lm.stored_selftest().expect("cases stored");
        assert_eq!(st.count(), 6);
        let c0 = st.lm_case(0).unwrap();
        assert_eq!(c0.prompt_len(), SELFTEST_PROMPT);
        assert_eq!(c0.top_len(), SELFTEST_TOP);
        assert_eq!(c0.prompt().next(), Some(lm.start_token()));
        let mut arena = vec![0u8; lm.arena_len()];
        let r = lm.selftest(&mut arena).unwrap();
        assert_eq!(
            (r.passed, r.total, r.first_failure),
            (6, 6, None),
            "case {ci}"
        );

        let (at, len) = section_at(&blob, SectionKind::SelfTest);
        let rec = (2 * SELFTEST_PROMPT + SELFTEST_TOP * LM_TOP_LEN + 3) & !3;
        assert_eq!(len, 16 + 6 * rec);
        let case3 = at + 16 + 3 * rec;
        let top3 = case3 + 2 * SELFTEST_PROMPT;
        let bad = Err(Error::BadSelfTest);
        let v = m.vocab.len() as u16;
        let put16 =
            |b: &mut [u8], at: usize, x: u16| b[at..at + 2].copy_from_slice(&x.to_le_bytes());
        // A prompt token ≥ V, an entry's id ≥ V, its reserved half-word,
        // a positive log-prob, a repeated id, entries out of order, no case,
        // a prompt or top-k of the wrong size, the header's reserved word.
        assert_eq!(edited(&blob, |b| put16(b, case3 + 4, v)), bad);
        assert_eq!(edited(&blob, |b| put16(b, top3, v)), bad);
        assert_eq!(edited(&blob, |b| put16(b, top3 + 2, 1)), bad);
        assert_eq!(
            edited(&blob, |b| b[top3 + 8..top3 + 12]
                .copy_from_slice(&1i32.to_le_bytes())),
            bad
        );
        assert_eq!(
            edited(&blob, |b| b.copy_within(top3..top3 + 2, top3 + LM_TOP_LEN)),
            bad
        );
        assert_eq!(
            edited(&blob, |b| b[top3 + 4..top3 + 8]
                .copy_from_slice(&0u32.to_le_bytes())),
            bad
        );
        assert_eq!(edited(&blob, |b| b[at..at + 4].fill(0)), bad);
        assert_eq!(edited(&blob, |b| b[at + 4] += 2), bad);
        assert_eq!(edited(&blob, |b| b[at + 8] += LM_TOP_LEN as u8), bad);
        assert_eq!(edited(&blob, |b| b[at + 12] = 1), bad);
        // A well-formed case with another expected value loads, and the
        // self-test reports it as the first failure.
        let mut b = blob.clone();
        let p = u32::from_le_bytes(b[top3 + 8..top3 + 12].try_into().unwrap());
        b[top3 + 8..top3 + 12].copy_from_slice(&p.wrapping_sub(1).to_le_bytes());
        let n = b.len();
        let crc = tinyinfer::format::CRC32.checksum(&b[..n - 4]);
        b[n - 4..].copy_from_slice(&crc.to_le_bytes());
        let ab = AlignedBlob::new(&b);
        let lm = language_model(&ab).unwrap();
        let r = lm.selftest(&mut arena).unwrap();
        assert_eq!((r.passed, r.total, r.first_failure), (5, 6, Some(3)));
    }
    // Without cases: a typed error from the self-test, as for other families.
    let ex = export(&cases()[0]).unwrap();
    let ab = AlignedBlob::new(&ex.blob);
    let lm = language_model(&ab).unwrap();
    assert!(lm.stored_selftest().is_none());
    assert_eq!(
        lm.selftest(&mut vec![0u8; lm.arena_len()]),
        Err(Error::BadSelfTest)
    );
}

/// Every result of a session is the same whatever number of logits its
/// arena holds at once: the header's plan (chunks of `LOGIT_CHUNK` rows for a
/// vocabulary past it), the whole vocabulary, and small odd chunks.
#[test]
fn logit_chunks_change_no_result() {
    use tinyinfer::format::LOGIT_CHUNK;
    let mut m = random_lm(HeadKind::Mos, 3, &[24], 11);
    // A word-level vocabulary past one chunk, not a multiple of it.
    let v = 2 * LOGIT_CHUNK + 37;
    let mut r = StdRng::seed_from_u64(11);
    m.level = Level::Word;
    m.vocab = (0..v).map(|i| format!("w{i}")).collect();
    m.vocab[0] = "<eos>".into();
    m.embedding = randv(&mut r, v * m.emb_dim, 1.5);
    m.head.dec_b = randv(&mut r, v, 1.0);
    let blob = AlignedBlob::new(&export(&m).unwrap().blob);
    let lm = language_model(&blob).unwrap();
    let whole = lm.with_logit_rows(v);
    assert_eq!(
        lm.arena_len() + 4 * (v - LOGIT_CHUNK),
        whole.arena_len(),
        "the header's plan holds one chunk of logits"
    );
    let run = |lm: LanguageModel<'_>| {
        let mut arena = vec![0u8; lm.arena_len()];
        let mut s = lm.session(&mut arena).unwrap();
        let mut rng = Pcg32::seeded(3);
        let mut out = Vec::new();
        let mut tok = start_token(m.level, &m.vocab) as u16;
        for _ in 0..4 {
            s.step(tok).unwrap();
            let lps: Vec<i32> = [0, 1, LOGIT_CHUNK - 1, LOGIT_CHUNK, v - 1]
                .iter()
                .map(|&x| s.log_prob(x as u16).unwrap().0)
                .collect();
            let probs = s.distribution().to_vec();
            let top = s.top_k::<5>().to_vec();
            tok = s.sample(&mut rng);
            out.push((lps, probs, top, tok));
        }
        out
    };
    let want = run(whole);
    assert_eq!(want, run(lm), "the header's plan");
    assert_eq!(want, run(lm.with_logit_rows(7)), "chunks of 7");
    assert_eq!(want, run(lm.with_logit_rows(1)), "chunks of 1");

    // A blob exported before the chunked decoder declares the arena of every
    // logit at once: it still loads, runs with that plan (one decoder pass)
    // and gives the same results. Any other arena length is refused.
    let with_arena = |len: usize| {
        let mut b = blob.bytes().to_vec();
        b[12..16].copy_from_slice(&(len as u32).to_le_bytes());
        let n = b.len();
        let crc = tinyinfer::format::CRC32.checksum(&b[..n - 4]);
        b[n - 4..].copy_from_slice(&crc.to_le_bytes());
        AlignedBlob::new(&b)
    };
    let legacy = with_arena(whole.arena_len());
    let old = language_model(&legacy).unwrap();
    assert_eq!(old.arena_len(), whole.arena_len());
    assert_eq!(want, run(old), "a whole-vocabulary header");
    for len in [
        lm.arena_len() + 4,
        whole.arena_len() - 4,
        whole.arena_len() + 4,
    ] {
        let b = with_arena(len);
        assert_eq!(
            Model::new_checked(b.bytes()).err(),
            Some(tinyinfer::Error::BadHeader),
            "arena {len}"
        );
    }
}

/// The two-level draw of a vocabulary past one sampling block (the
/// component, then a block of `SAMPLE_BLOCK` rows, then the token in it)
/// draws from `distribution()`: over 20,000 seeded draws, the mass of each
/// block and the counts of the 20 most probable tokens are each within 6σ
/// (+1) of their expectation, and the blocks' masses are apart (biases
/// raise one token per block) so that a wrong block weight would show.
/// Every draw ends inside the vocabulary.
#[test]
fn sampling_a_vocabulary_of_several_blocks_follows_the_distribution() {
    use tinyinfer::models::SAMPLE_BLOCK;
    let mut m = random_lm(HeadKind::Mos, 3, &[16], 21);
    let v = 2 * SAMPLE_BLOCK + 300;
    let mut r = StdRng::seed_from_u64(21);
    m.level = Level::Word;
    m.vocab = (0..v).map(|i| format!("w{i}")).collect();
    m.vocab[0] = "<eos>".into();
    m.embedding = randv(&mut r, v * m.emb_dim, 1.0);
    m.head.dec_b = randv(&mut r, v, 0.5);
    for (i, at) in [5, SAMPLE_BLOCK + 7, 2 * SAMPLE_BLOCK + 11]
        .into_iter()
        .enumerate()
    {
        m.head.dec_b[at] = 5.0 + 1.5 * i as f32;
    }
    let blob = AlignedBlob::new(&export(&m).unwrap().blob);
    let lm = language_model(&blob).unwrap();
    let mut arena = vec![0u8; lm.arena_len()];
    let mut s = lm.session(&mut arena).unwrap();
    s.step(lm.start_token()).unwrap();
    s.step(3).unwrap();
    let probs: Vec<f64> = s
        .distribution()
        .iter()
        .map(|&q| q as f64 / 2f64.powi(32))
        .collect();
    let n = 20_000usize;
    let mut counts = vec![0usize; v];
    let mut rng = Pcg32::seeded(5);
    for _ in 0..n {
        counts[s.sample(&mut rng) as usize] += 1;
    }
    let within = |c: usize, p: f64, what: &str| {
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (c as f64 - n as f64 * p).abs() <= 6.0 * sd + 1.0,
            "{what}: drawn {c} times of {n}, p = {p}"
        );
    };
    let mut masses = Vec::new();
    for b in 0..v.div_ceil(SAMPLE_BLOCK) {
        let rows = b * SAMPLE_BLOCK..((b + 1) * SAMPLE_BLOCK).min(v);
        let p: f64 = probs[rows.clone()].iter().sum();
        within(counts[rows].iter().sum(), p, &format!("block {b}"));
        masses.push(p);
    }
    assert!(
        masses.iter().all(|&p| p > 0.02) && masses.iter().any(|&p| p > 0.3),
        "block masses {masses:?}"
    );
    let mut order: Vec<usize> = (0..v).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    for &t in &order[..20] {
        within(counts[t], probs[t], &format!("token {t}"));
    }
}

/// The row-quads layout of the gate matrices is a permutation of their
/// bytes: a model exported with it (the exporter's choice when the shapes
/// allow) and the same model repacked row by row give the same log-probs,
/// distribution, top-k and samples on every path, and repacking back gives
/// the exported bytes. A layer whose widths are not multiples of 4 stays
/// row by row. A layout code past 1, or row quads on such a layer, is
/// refused by the checker.
/// One token's outputs in [`trace`]: the log-probabilities of the first
/// tokens, the distribution, the top 3 and the sampled token.
type Step = (Vec<i32>, Vec<u32>, Vec<(u16, u32)>, u16);

/// `steps` tokens of a seeded generation from `blob`'s start token, with
/// every output of each step (the log-probabilities of tokens `0..lp`):
/// two blobs of one model must give equal traces.
fn trace(blob: &AlignedBlob, seed: u64, steps: usize, lp: usize) -> Vec<Step> {
    let lm = language_model(blob).unwrap();
    let mut arena = vec![0u8; lm.arena_len()];
    let mut s = lm.session(&mut arena).unwrap();
    let mut rng = Pcg32::seeded(seed);
    let mut out = Vec::new();
    let mut tok = lm.start_token();
    for _ in 0..steps {
        s.step(tok).unwrap();
        let lps: Vec<i32> = (0..lp as u16).map(|t| s.log_prob(t).unwrap().0).collect();
        let probs = s.distribution().to_vec();
        let top = s.top_k::<3>().to_vec();
        tok = s.sample(&mut rng);
        out.push((lps, probs, top, tok));
    }
    out
}

#[test]
fn row_quads_and_rows_give_the_same_results() {
    use super::quantize::{gate_layout, repack, repack_as};
    use tinyinfer::format::{WeightLayout, LM_HEADER_WORDS};
    let m = random_lm(HeadKind::Mos, 3, &[24, 12], 31);
    let ex = export(&m).unwrap();
    let quads = AlignedBlob::new(&ex.blob);
    let spec = *language_model(&quads).unwrap().spec();
    assert!(spec
        .layers()
        .iter()
        .all(|l| l.layout == WeightLayout::RowQuads));
    assert_eq!(spec.proj_layout, WeightLayout::RowQuads);
    let rows_bytes = repack_as(&ex.blob, 0, false).unwrap();
    assert_ne!(rows_bytes, ex.blob);
    assert_eq!(
        repack(&rows_bytes, 0).unwrap(),
        repack(&ex.blob, 0).unwrap()
    );
    let rows = AlignedBlob::new(&rows_bytes);
    assert_eq!(trace(&quads, 4, 12, 5), trace(&rows, 4, 12, 5));

    // Widths that are not multiples of 4 keep rows.
    assert_eq!(gate_layout(16, 10), WeightLayout::Rows);
    assert_eq!(gate_layout(18, 12), WeightLayout::Rows);
    // Depths the DSP kernels do not serve in row quads keep rows.
    assert_eq!(gate_layout(512, 128), WeightLayout::Rows);
    assert_eq!(gate_layout(508, 128), WeightLayout::RowQuads);
    let odd = export(&random_lm(HeadKind::Softmax, 1, &[10], 3)).unwrap();
    let odd_blob = AlignedBlob::new(&odd.blob);
    let spec = *language_model(&odd_blob).unwrap().spec();
    assert_eq!(spec.layers()[0].layout, WeightLayout::Rows);
    assert_eq!(spec.proj_layout, WeightLayout::Rows, "H = 10");
    let rows_spec = *language_model(&rows).unwrap().spec();
    assert_eq!(rows_spec.proj_layout, WeightLayout::Rows);

    // The layout word of layer 0 (its last): 2 is unknown; 1 on a layer
    // of hidden size 10 does not fit.
    let (at, _) = section_at(&ex.blob, tinyinfer::format::SectionKind::Lm);
    let word = at + 4 * (LM_HEADER_WORDS + 7);
    assert!(edited(&ex.blob, |b| b[word] = 2).is_err());
    assert!(
        edited(&ex.blob, |b| b[word] = 0).is_ok(),
        "rows: the same shapes load"
    );
    let (at, _) = section_at(&odd.blob, tinyinfer::format::SectionKind::Lm);
    let word = at + 4 * (LM_HEADER_WORDS + 7);
    assert!(edited(&odd.blob, |b| b[word] = 1).is_err());
    // The projections' layout, header word 7: the same rules.
    let (at, _) = section_at(&ex.blob, tinyinfer::format::SectionKind::Lm);
    assert!(edited(&ex.blob, |b| b[at + 4 * 7] = 2).is_err());
    let (at, _) = section_at(&odd.blob, tinyinfer::format::SectionKind::Lm);
    assert!(edited(&odd.blob, |b| b[at + 4 * 7] = 1).is_err());
}

/// A blob whose gate matrices share their bytes in `DATA` (the checker
/// allows it; this exporter never writes one) cannot be moved to another
/// layout without changing a weight: `repack` refuses it with an error
/// instead of writing a different model.
#[test]
fn repack_refuses_overlapping_arrays() {
    use super::quantize::{repack, repack_as};
    use tinyinfer::format::LM_HEADER_WORDS;
    let m = random_lm(HeadKind::Softmax, 1, &[16], 41); // input 16 = hidden 16
    let rows = repack_as(&export(&m).unwrap().blob, 0, false).unwrap();
    let (at, _) = section_at(&rows, tinyinfer::format::SectionKind::Lm);
    let word = |j: usize| at + 4 * (LM_HEADER_WORDS + j);
    let mut b = rows.clone();
    let w_x = b[word(2)..word(2) + 4].to_vec();
    b[word(3)..word(3) + 4].copy_from_slice(&w_x); // w_h := w_x
    let n = b.len();
    let crc = tinyinfer::format::CRC32.checksum(&b[..n - 4]);
    b[n - 4..].copy_from_slice(&crc.to_le_bytes());
    assert!(
        edited(&b, |_| {}).is_ok(),
        "the checker accepts the overlap"
    );
    let err = repack(&b, 0).unwrap_err().to_string();
    assert!(err.contains("overlap"), "{err}");
    // Without a change of layout the same blob repacks (nothing moves).
    assert!(repack_as(&b, 0, false).is_ok());
}

/// The exported blob (spec version 2: one shift per per-word array) and
/// the same model rewritten as version 1 (every per-word row with its own
/// copy of that shift, appended to `DATA`) give the same bits everywhere,
/// and version 2 is `8 · (V − 1)` bytes smaller in those arrays. The
/// checker refuses a shared shift out of range, a negative multiplier, a
/// per-word array cut short and unknown versions.
#[test]
fn shared_word_shifts_equal_per_row_shifts() {
    use tinyinfer::format::{ModelRepr, SectionKind, WordRequant, LM_SPEC_VERSION};
    let m = random_lm(HeadKind::Mos, 3, &[12], 57);
    let ex = export(&m).unwrap();
    let v2 = AlignedBlob::new(&ex.blob);
    let spec = *language_model(&v2).unwrap().spec();
    assert_eq!(spec.version, LM_SPEC_VERSION);
    assert!(matches!(
        spec.emb_rq.shift,
        tinyinfer::format::Shifts::Shared(_)
    ));
    let vocab = spec.vocab;

    // Version 1 of the same model.
    let model = v2.model().unwrap();
    let mut lm_sec = model.section(SectionKind::Lm).unwrap().to_vec();
    let mut data = model.section(SectionKind::Data).unwrap().to_vec();
    let per_row = |rq: WordRequant, data: &mut Vec<u8>| -> u32 {
        let at = data.len() as u32;
        for &m in rq.mult {
            data.extend_from_slice(&m.to_le_bytes());
        }
        for i in 0..rq.mult.len() {
            data.extend_from_slice(&rq.shift.at(i).to_le_bytes());
        }
        at
    };
    let emb_at = per_row(spec.emb_rq, &mut data);
    let dec_at = per_row(spec.dec_rq, &mut data);
    lm_sec[..4].copy_from_slice(&1u32.to_le_bytes());
    lm_sec[36..40].copy_from_slice(&emb_at.to_le_bytes());
    lm_sec[40..44].copy_from_slice(&dec_at.to_le_bytes());
    let vocab_sec = model.section(SectionKind::Vocab).unwrap();
    let repr = ModelRepr {
        family: tinyinfer::format::Family::LanguageModel,
        arena_len: model.arena_len() as u32,
        tensors: &[],
        ops: &[],
        data: &data,
        selftest: None,
        head: None,
        lm: Some(&lm_sec),
        vocab: Some(vocab_sec),
    };
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut out).unwrap();
    let v1 = AlignedBlob::new(&out);
    let spec1 = *language_model(&v1).unwrap().spec();
    assert_eq!(spec1.version, 1);
    assert!(matches!(
        spec1.emb_rq.shift,
        tinyinfer::format::Shifts::PerRow(_)
    ));
    assert_eq!(
        spec1.emb_rq.bytes() + spec1.dec_rq.bytes(),
        spec.emb_rq.bytes() + spec.dec_rq.bytes() + 8 * (vocab - 1)
    );

    assert_eq!(trace(&v2, 9, 16, vocab), trace(&v1, 9, 16, vocab));

    // The checker on the shared form: word 9 points at emb_rq (V
    // multipliers, then the shift).
    let (at, _) = section_at(&ex.blob, SectionKind::Lm);
    let (data_at, _) = section_at(&ex.blob, SectionKind::Data);
    let emb_rq = u32::from_le_bytes(ex.blob[at + 36..at + 40].try_into().unwrap()) as usize;
    let shift_at = data_at + emb_rq + 4 * vocab;
    let set = |b: &mut [u8], at: usize, v: i32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    assert!(edited(&ex.blob, |b| set(
        b,
        shift_at,
        tinyinfer::quant::MAX_SHIFT + 1
    ))
    .is_err());
    assert!(edited(&ex.blob, |b| set(
        b,
        shift_at,
        tinyinfer::quant::MIN_SHIFT - 1
    ))
    .is_err());
    assert!(edited(&ex.blob, |b| set(b, shift_at, tinyinfer::quant::MIN_SHIFT)).is_ok());
    assert!(
        edited(&ex.blob, |b| set(b, data_at + emb_rq, -1)).is_err(),
        "negative multiplier"
    );
    // Version 1 reads 2V words there: the same bytes as version 1 are a
    // different (here: invalid or differently shaped) model, never a panic.
    let _ = edited(&ex.blob, |b| b[at] = 1);
    for bad in [0u8, 3, 255] {
        assert!(edited(&ex.blob, |b| b[at] = bad).is_err(), "version {bad}");
    }
    // The last per-word array cut short: dec_rq pointed at the end of DATA
    // less V words (its shift would be past the end).
    let data_len = section_at(&ex.blob, SectionKind::Data).1;
    let short = (data_len - 4 * vocab) as u32;
    assert_eq!(
        short % 4,
        0,
        "an aligned offset: the refusal is for the length"
    );
    assert!(edited(&ex.blob, |b| b[at + 40..at + 44]
        .copy_from_slice(&short.to_le_bytes()))
    .is_err());
}
