//! Tests of the LM data, the burn model against the float reference, and training.

use std::path::Path;

use burn::tensor::Device;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::data::{load_ptb, load_shakespeare, Corpus, Dataset};
use super::float::{HeadKind, Level, LmF};
use super::model::{LmConfig, LmModel};
use super::train::{mean_nll, run_on, TrainLmArgs};
use crate::common::data::shared_data_dir;
use crate::common::trainer::{default_args, tensor_vec, RunFlags};

fn data_dir() -> std::path::PathBuf {
    shared_data_dir(None)
}

#[test]
fn asgd_averages_and_triggers_like_awd_lstm() {
    use super::train::averaging;
    // The running mean of three models is their mean.
    let f = |v: f32| {
        let mut m = tiny_model(HeadKind::Mos, 2, &[5], 3).to_float();
        for x in m.embedding.iter_mut().chain(m.head.dec_b.iter_mut()) {
            *x = v;
        }
        m
    };
    let mut a = f(1.0);
    a.average_in(&f(2.0), 2);
    a.average_in(&f(6.0), 3);
    assert!(a
        .embedding
        .iter()
        .chain(&a.head.dec_b)
        .all(|&x| (x - 3.0).abs() < 1e-6));
    // --asgd-from.
    assert!(!averaging(1, Some(2), None, &[]));
    assert!(averaging(2, Some(2), None, &[5.0]));
    // NT-ASGD, interval 2: epoch 4's NLL (4.1) is above epoch 1's (4.0), the best before
    // the last two, so epoch 5 on averages; nothing fires before.
    let v = [4.0, 3.9, 3.8, 4.1];
    assert!(!averaging(4, None, Some(2), &v[..3]));
    assert!(averaging(5, None, Some(2), &v));
    assert!(averaging(
        9,
        None,
        Some(2),
        &[v.as_slice(), &[1.0, 1.0]].concat()
    ));
    // Improving every epoch never fires.
    assert!(!averaging(6, None, Some(2), &[5.0, 4.0, 3.0, 2.0, 1.0]));
    assert!(!averaging(3, None, None, &v));
}

/// Resuming: two epochs in one go, or one (`--stop-after 1`) and then
/// `--resume`, give the same checkpoints byte for byte (Adam and SGD with
/// clipping and weight decay, MoS, every dropout on, 2 threads); so does the
/// same command twice. A checkpoint of the same flags but another training
/// stream (other steps per epoch) is refused, and so is `--max-minutes`.
#[test]
fn resume_equals_the_uninterrupted_run() {
    use super::train::Optim;
    use crate::common::trainer::testing::{assert_resume_equal, edit_resume};
    let args = |out: &Path, optimizer: Optim| TrainLmArgs {
        out: out.to_path_buf(),
        head: HeadKind::Mos,
        k: Some(2),
        emb: 8,
        hidden: vec![12],
        bptt: 10,
        batch: 4,
        epochs: 2,
        optimizer,
        weight_decay: 1e-4,
        dropout_in: 0.1,
        dropout_out: 0.1,
        dropout_latent: 0.1,
        dropout_emb: 0.1,
        dropout_weight: 0.1,
        no_test: true,
        run: RunFlags {
            quiet: true,
            threads: 2,
            ..default_args::<TrainLmArgs>().run
        },
        ..default_args()
    };
    // Averaged SGD from epoch 1: the running mean crosses the resume (the
    // resumed run reads average-1.json back).
    let dir = assert_resume_equal(
        &["epoch-1.json", "epoch-2.json", "final.json"],
        &["final.json", "summary.json"],
        |out, stop_after, resume| {
            let mut a = args(out, Optim::Sgd);
            a.asgd_from = Some(1);
            a.run.stop_after = stop_after;
            a.run.resume = resume;
            run_on(&a, tiny_corpus()).map(|_| ())
        },
    );
    let out = dir.path().join("b");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let steps = |e: usize| summary["history"][e]["averaged_steps"].as_u64().unwrap();
    assert!(steps(0) > 0, "epoch 1 averages its steps");
    assert_eq!(steps(1), 2 * steps(0), "epoch 2 carries the count on");
    assert!(out.join("average-2.json").exists() && !out.join("average-1.json").exists());
    // The mean is not the last weights.
    let last = {
        let o = dir.path().join("plain");
        let mut a = args(&o, Optim::Sgd);
        a.run.stop_after = None;
        run_on(&a, tiny_corpus()).unwrap();
        LmF::load(&o.join("final.json")).unwrap()
    };
    let mean = LmF::load(&out.join("final.json")).unwrap();
    assert_ne!(mean.embedding, last.embedding);
    for optimizer in [Optim::Adam, Optim::Sgd] {
        let dir = assert_resume_equal(
            &["epoch-1.json", "epoch-2.json", "final.json"],
            &["final.json", "summary.json"],
            |out, stop_after, resume| {
                let mut a = args(out, optimizer);
                a.run.stop_after = stop_after;
                a.run.resume = resume;
                run_on(&a, tiny_corpus()).map(|_| ())
            },
        );
        let out = dir.path().join("x");
        let mut a = args(&out, optimizer);
        let mut short = tiny_corpus();
        short.train.truncate(short.train.len() / 2);
        // Same flags, half the stream: the steps per epoch disagree.
        let wrong = dir.path().join("wrong.ckpt");
        edit_resume(&dir.path().join("b/resume.ckpt"), &wrong, |m| {
            m["epoch"] = serde_json::json!(1);
            m["history"] = serde_json::json!([m["history"][0].clone()]);
        });
        a.run.resume = Some(wrong);
        let e = format!("{:#}", run_on(&a, short).unwrap_err());
        assert!(e.contains("the training data differs"), "{e}");
        a.max_minutes = Some(1.0);
        let e = format!("{:#}", run_on(&a, tiny_corpus()).unwrap_err());
        assert!(e.contains("--max-minutes"), "{e}");
        assert!(!out.exists());
    }
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
    assert_eq!(
        serde_json::to_string(&f).unwrap(),
        serde_json::to_string(&g).unwrap()
    );
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
    assert!(
        got.is_finite() && (got - want).abs() < 0.5,
        "{got} vs {want}"
    );
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
    for (head, k) in [
        (HeadKind::Softmax, 1),
        (HeadKind::Mos, 3),
        (HeadKind::Moc, 2),
    ] {
        let args = TrainLmArgs {
            out: dir.path().join(head.name()),
            head,
            k: Some(k),
            emb: 8,
            hidden: vec![16],
            bptt: 10,
            batch: 8,
            epochs: 8,
            lr: Some(3e-2),
            dropout_out: 0.1,
            dropout_latent: 0.1,
            dropout_in: 0.1,
            run: RunFlags {
                seed: 0,
                threads: 1,
                quiet: true,
                ..default_args::<TrainLmArgs>().run
            },
            ..default_args()
        };
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
        assert!(
            (got - want).abs() < 1e-4,
            "{head:?}: LmF {got} vs burn {want}"
        );
        assert!(args.out.join("epoch-8.json").is_file());
        assert!(args.out.join("summary.json").is_file());
    }
}

/// Timing breakdown of one training step (run by hand:
/// `LM_BENCH=mos,4,128,256,32,35 cargo test --release ... bench_step -- --ignored --nocapture`).
#[test]
#[ignore]
fn bench_step() {
    use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
    use std::time::Instant;
    let spec = std::env::var("LM_BENCH").unwrap_or("softmax,1,128,256,32,35".into());
    let p: Vec<&str> = spec.split(',').collect();
    let head = match p[0] {
        "moc" => HeadKind::Moc,
        "mos" => HeadKind::Mos,
        _ => HeadKind::Softmax,
    };
    let n = |i: usize| p[i].parse::<usize>().unwrap();
    let (k, d, h, b, t) = (n(1), n(2), n(3), n(4), n(5));
    let v = std::env::var("LM_V").map_or(10_000, |s| s.parse().unwrap());
    let cfg = LmConfig {
        vocab: v,
        emb: d,
        hidden: vec![h],
        head,
        k,
    };
    let ad = Device::flex().autodiff();
    let mut rng = StdRng::seed_from_u64(0);
    let vocab = (0..v).map(|i| i.to_string()).collect();
    let mut model = LmModel::new(&cfg, Level::Word, vocab, &mut rng, &ad);
    let mut optim: ModuleOptimizer = AdamConfig::new().init();
    let drop = super::model::Dropouts {
        input: 0.3,
        output: 0.3,
        latent: 0.3,
        ..Default::default()
    };
    let mut state = model.zero_state(b);
    let (mut tf, mut th, mut tb, mut to) = (0f64, 0f64, 0f64, 0f64);
    let reps = 6;
    for r in 0..reps + 1 {
        let x: Vec<u32> = (0..t * b).map(|_| rng.random_range(0..v as u32)).collect();
        let y: Vec<u32> = (0..t * b).map(|_| rng.random_range(0..v as u32)).collect();
        let t0 = Instant::now();
        let masks = model.masks(&drop, b, &mut rng);
        let (g, st) = model.features(&x, b, state, Some(&masks));
        let t1 = Instant::now();
        let (lat, lp) = model.latents(g, b, Some(&masks));
        let chunk =
            std::env::var("LM_CHUNK").map_or(super::model::DECODER_CHUNK, |s| s.parse().unwrap());
        let out = model.decoder_loss_chunked(lat, lp, &y, chunk);
        let lv = out.nll_sum as f32;
        let loss = out.loss.unwrap();
        let t2 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let t3 = Instant::now();
        model = optim.step(1e-3, model, grads);
        let t4 = Instant::now();
        state = st.detach();
        if r > 0 {
            tf += (t1 - t0).as_secs_f64();
            th += (t2 - t1).as_secs_f64();
            tb += (t3 - t2).as_secs_f64();
            to += (t4 - t3).as_secs_f64();
        }
        assert!(lv.is_finite());
    }
    let r = reps as f64;
    let tot = (tf + th + tb + to) / r;
    println!(
        "{spec} V {v}: lstm fwd {:.1} ms, head fwd {:.1} ms, backward {:.1} ms, optim {:.1} ms; {:.0} tok/s ({} threads)",
        tf / r * 1e3,
        th / r * 1e3,
        tb / r * 1e3,
        to / r * 1e3,
        (t * b) as f64 / tot,
        rayon::current_num_threads()
    );
}

/// Timing of the decoder's pieces (by hand, like `bench_step`).
#[test]
#[ignore]
fn bench_ops() {
    use burn::tensor::activation::softmax;
    use burn::tensor::{Tensor, TensorData};
    use std::time::Instant;
    let dev = Device::flex();
    let (n, d, v) = (1120, 129, 10_000);
    let mut rng = StdRng::seed_from_u64(0);
    let mk = |r: usize, c: usize, rng: &mut StdRng| -> Tensor<2> {
        let x: Vec<f32> = (0..r * c).map(|_| rng.random_range(-1.0..1.0)).collect();
        Tensor::from_data(TensorData::new(x, [r, c]), &dev)
    };
    let h = mk(n, d, &mut rng);
    let e = mk(v, d, &mut rng);
    let time = |name: &str, f: &dyn Fn() -> Tensor<2>| {
        let _ = tensor_vec(f());
        let t0 = Instant::now();
        for _ in 0..5 {
            let _ = f().into_data();
        }
        println!("{name}: {:.1} ms", t0.elapsed().as_secs_f64() / 5.0 * 1e3);
    };
    time("h·E^T (strided)", &|| {
        h.clone().matmul(e.clone().transpose())
    });
    let et = Tensor::from_data(e.clone().transpose().into_data(), &dev);
    time("h·E^T (contiguous [d,V])", &|| {
        h.clone().matmul(et.clone())
    });
    let z = h.clone().matmul(et.clone());
    time("softmax", &|| softmax(z.clone(), 1));
    time("z*z", &|| z.clone() * z.clone());
    time("sum_dim", &|| z.clone().sum_dim(1));
    time("g·E (grad_h)", &|| z.clone().matmul(e.clone()));
    time("h^T·g (grad_E^T)", &|| {
        h.clone().transpose().matmul(z.clone())
    });
    time("g^T·h (grad_E)", &|| {
        z.clone().transpose().matmul(h.clone())
    });
}

/// The decoder loss built outside the autodiff tape has the value and the gradients of
/// the plain composite `−mean log_softmax(..)[target]`, chunked or not.
fn check_grads(kind: HeadKind, k: usize, hidden: &[usize]) {
    use super::model::ids_tensor;
    use burn::optim::GradientsParams;
    let f = tiny_model(kind, k, hidden, 21 + k as u64).to_float();
    let m = LmModel::from_float(&f, &Device::flex().autodiff());
    let (b, t) = (3, 5);
    let n = b * t;
    let mut rng = StdRng::seed_from_u64(9);
    let x: Vec<u32> = (0..n).map(|_| rng.random_range(0..23u32)).collect();
    let y: Vec<u32> = (0..n).map(|_| rng.random_range(0..23u32)).collect();
    let (g, _) = m.features(&x, b, m.zero_state(b), None);
    let (lat, lp) = m.latents(g, b, None);
    let tgt = ids_tensor(&y, &m.device()).reshape([n, 1]);
    let ref_loss = m.full_log_probs(lat, lp).gather(1, tgt).mean().neg();
    let ref_val: f32 = ref_loss.clone().into_scalar();
    let gr = GradientsParams::from_grads(ref_loss.backward(), &m);
    for chunk in [usize::MAX / 2, 23 * k * 2] {
        let (g, _) = m.features(&x, b, m.zero_state(b), None);
        let (lat, lp) = m.latents(g, b, None);
        let out = m.decoder_loss_chunked(lat, lp, &y, chunk);
        assert!(((out.nll_sum / n as f64) as f32 - ref_val).abs() < 1e-5);
        let loss = out.loss.unwrap();
        let val: f32 = loss.clone().into_scalar();
        assert!((val - ref_val).abs() < 1e-5, "{val} vs {ref_val}");
        let gn = GradientsParams::from_grads(loss.backward(), &m);
        let (p2, p1) = m.param_ids();
        let mut worst = 0f32;
        let mut cmp = |a: Vec<f32>, b: Vec<f32>| {
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                worst = worst.max((x - y).abs() / (1e-3 + y.abs()).max(1e-2));
            }
        };
        for id in p2 {
            cmp(
                tensor_vec(gn.get::<2>(id).unwrap()),
                tensor_vec(gr.get::<2>(id).unwrap()),
            );
        }
        for id in p1 {
            cmp(
                tensor_vec(gn.get::<1>(id).unwrap()),
                tensor_vec(gr.get::<1>(id).unwrap()),
            );
        }
        assert!(
            worst < 1e-3,
            "{kind:?} K {k} chunk {chunk}: gradient mismatch {worst}"
        );
    }
}

#[test]
fn decoder_loss_gradients_softmax() {
    check_grads(HeadKind::Softmax, 1, &[8]);
}

#[test]
fn decoder_loss_gradients_moc() {
    check_grads(HeadKind::Moc, 3, &[8, 5]);
}

#[test]
fn decoder_loss_gradients_mos() {
    check_grads(HeadKind::Mos, 3, &[8]);
    check_grads(HeadKind::Mos, 1, &[6]);
}

/// Finite differences on a larger model: the gradient of a few weights of every tensor.
#[test]
fn finite_difference_gradients_at_scale() {
    use burn::optim::GradientsParams;
    let v = 500;
    let cfg = LmConfig {
        vocab: v,
        emb: 32,
        hidden: vec![64],
        head: HeadKind::Softmax,
        k: 1,
    };
    let mut rng = StdRng::seed_from_u64(3);
    let vocab: Vec<String> = (0..v).map(|i| i.to_string()).collect();
    let f = LmModel::new(&cfg, Level::Word, vocab, &mut rng, &Device::flex()).to_float();
    let (b, t) = (16, 20);
    let x: Vec<u32> = (0..b * t).map(|_| rng.random_range(0..50u32)).collect();
    let y: Vec<u32> = (0..b * t).map(|_| rng.random_range(0..50u32)).collect();
    let loss_of = |f: &LmF| -> f64 {
        let m = LmModel::from_float(f, &Device::flex());
        let (out, _) = m.segment_loss(&x, &y, b, m.zero_state(b), None);
        out.nll_sum / (b * t) as f64
    };
    let m = LmModel::from_float(&f, &Device::flex().autodiff());
    let (out, _) = m.segment_loss(&x, &y, b, m.zero_state(b), None);
    let g = GradientsParams::from_grads(out.loss.unwrap().backward(), &m);
    let ge = tensor_vec(g.get::<2>(m.embedding.id).unwrap());
    let gih = tensor_vec(g.get::<2>(m.layers[0].w_ih.id).unwrap()); // [I, 4H]
    let eps = 1e-2f32;
    // embedding row of input token x[0], a few columns
    for j in 0..4 {
        let idx = x[0] as usize * 32 + j;
        let mut fp = f.clone();
        fp.embedding[idx] += eps;
        let mut fm = f.clone();
        fm.embedding[idx] -= eps;
        let num = (loss_of(&fp) - loss_of(&fm)) / (2.0 * eps as f64);
        println!("E[{idx}]: analytic {:.6} numeric {num:.6}", ge[idx]);
        assert!(
            (num - ge[idx] as f64).abs() < 1e-3 + 0.05 * num.abs(),
            "E[{idx}]: {} vs {num}",
            ge[idx]
        );
    }
    for r in [0usize, 70, 140, 200] {
        // LstmF w_ih row r (gate unit), column 3 ↔ burn [3][r]
        let mut fp = f.clone();
        fp.layers[0].w_ih[r * 32 + 3] += eps;
        let mut fm = f.clone();
        fm.layers[0].w_ih[r * 32 + 3] -= eps;
        let num = (loss_of(&fp) - loss_of(&fm)) / (2.0 * eps as f64);
        let an = gih[3 * 256 + r];
        println!("w_ih[{r}][3]: analytic {an:.6} numeric {num:.6}");
        assert!(
            (num - an as f64).abs() < 1e-3 + 0.05 * num.abs(),
            "w_ih: {an} vs {num}"
        );
    }
}

/// Regression: without the unigram decoder bias, Adam fitted the unigram through the
/// latent projection, saturated its tanh and stalled at unigram perplexity (3.33 nats
/// on Tiny Shakespeare) for whole epochs. 80 steps of a small model must get well below.
#[test]
fn real_text_training_gets_past_the_unigram() {
    use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
    let c = load_shakespeare(&shared_data_dir(None)).unwrap();
    let v = c.vocab.len();
    let cfg = LmConfig {
        vocab: v,
        emb: 16,
        hidden: vec![64],
        head: HeadKind::Mos,
        k: 2,
    };
    let ad = Device::flex().autodiff();
    let mut rng = StdRng::seed_from_u64(0);
    let mut model = LmModel::new(&cfg, Level::Char, c.vocab.clone(), &mut rng, &ad);
    model.init_unigram_bias(&c.train);
    let mut optim: ModuleOptimizer = AdamConfig::new().with_epsilon(1e-8).init();
    let (b, t) = (16, 25);
    let cols = c.train.len() / b;
    let mut state = model.zero_state(b);
    let mut last = f64::MAX;
    for step in 0..80 {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for s in 0..t {
            for col in 0..b {
                x.push(c.train[col * cols + step * t + s]);
                y.push(c.train[col * cols + step * t + s + 1]);
            }
        }
        let (out, st) = model.segment_loss(&x, &y, b, state, None);
        state = st.detach();
        last = out.nll_sum / (b * t) as f64;
        let grads = GradientsParams::from_grads(out.loss.unwrap().backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    assert!(last < 2.9, "loss {last:.3} after 80 steps (unigram: 3.33)");
}
