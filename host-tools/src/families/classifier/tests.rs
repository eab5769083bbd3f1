#![allow(clippy::needless_range_loop, clippy::field_reassign_with_default)]

use super::float::Layer;
use super::*;
use crate::common::data::{self, Split, CLASSES, PIXELS, SIDE};
use crate::common::metrics::calibration_metrics;
use crate::common::trainer::{default_args, RunFlags, TrainerArgs};
use burn::module::Module;
use burn::module::ParamGroup;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::Rng;
use rand::SeedableRng;

fn random_images(n: usize, rng: &mut StdRng) -> Vec<u8> {
    (0..n * PIXELS).map(|_| rng.random::<u8>()).collect()
}

fn fmnist() -> Option<(data::Dataset, data::Dataset)> {
    let dir = data::fashion_mnist_dir(None);
    match (
        data::load_fashion_mnist(&dir, Split::Train),
        data::load_fashion_mnist(&dir, Split::Test),
    ) {
        (Ok(a), Ok(b)) => Some((a, b)),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("skipping: {e:#}");
            None
        }
    }
}

/// A few SGD steps on random data so that a, b, BN affine parameters and running
/// statistics are all far from their initial values.
fn perturbed_model(cfg: &ModelConfig, seed: u64) -> DiracNet {
    let ad = Device::flex().autodiff();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = DiracNet::new(cfg, &mut rng, &ad);
    let mut optim: ModuleOptimizer = SgdConfig::new().init();
    for _ in 0..6 {
        let n = 16;
        // Shifted, scaled inputs make the batch-norm statistics non-trivial.
        let x: Vec<f32> = (0..n * PIXELS)
            .map(|_| rng.random::<f32>() * 3.0 + 0.7)
            .collect();
        let mut y = vec![0f32; n * CLASSES];
        for i in 0..n {
            y[i * CLASSES + rng.random_range(0..CLASSES)] = 1.0;
        }
        let x: Tensor<4> = Tensor::from_data(TensorData::new(x, [n, 1, SIDE, SIDE]), &ad);
        let y: Tensor<2> = Tensor::from_data(TensorData::new(y, [n, CLASSES]), &ad);
        let loss = log_softmax(model.forward(x), 1)
            .mul(y)
            .sum_dim(1)
            .mean()
            .neg();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.2, model, grads);
    }
    model
}

#[test]
fn fold_matches_burn_eval_forward() {
    for (widths, depth) in [(vec![16, 32, 64], 2), (vec![8, 12], 1), (vec![6, 4, 10], 2)] {
        let cfg = ModelConfig::new(widths, depth);
        let model = perturbed_model(&cfg, 3);
        let eval = model.valid();
        // BN statistics really moved away from (0, 1).
        let mean = eval.blocks[0]
            .bn
            .running_mean
            .value()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(
            mean.iter().any(|m| m.abs() > 1e-2),
            "running mean untouched: {mean:?}"
        );
        let folded = fold(&eval);
        assert_eq!(
            folded.shapes().expect("folded shapes fit").last(),
            Some(&(1, 1, CLASSES))
        );
        let mut rng = StdRng::seed_from_u64(9);
        let images = random_images(8, &mut rng);
        let want = model_logits(&eval, &images, 4);
        let mut max_diff = 0f32;
        for i in 0..8 {
            let got = folded.logits(&images[i * PIXELS..(i + 1) * PIXELS]);
            for (a, b) in got.iter().zip(&want[i * CLASSES..(i + 1) * CLASSES]) {
                max_diff = max_diff.max((a - b).abs());
            }
        }
        let scale = want.iter().fold(0f32, |a, &b| a.max(b.abs()));
        eprintln!(
            "fold {:?}: max |logit diff| {max_diff:.2e} (max |logit| {scale:.2})",
            cfg.widths
        );
        assert!(
            max_diff < 1e-3 * scale.max(1.0),
            "folded forward differs by {max_diff}"
        );
        // The training model folds the same way (fold takes the eval view itself).
        assert_eq!(fold(&model), folded);
    }
}

#[test]
fn fold_layer_structure_and_params() {
    let cfg = ModelConfig::new(vec![16, 32, 64], 2);
    let model = DiracNet::new(&cfg, &mut StdRng::seed_from_u64(0), &Device::flex());
    let params = model.num_params();
    assert!(params <= 100_000, "{params} parameters");
    let folded = fold(&model);
    let kinds: Vec<&str> = folded
        .layers
        .iter()
        .map(|l| match l {
            Layer::Conv { relu: true, .. } => "C",
            Layer::Conv { .. } => "c",
            Layer::MaxPool2 => "P",
            Layer::GlobalAvgPool => "G",
            Layer::Dense { relu: false, .. } => "D",
            Layer::Dense { .. } => "d",
        })
        .collect();
    assert_eq!(kinds.concat(), "CCCPCCPCCGD");
    assert_eq!(folded.shapes().unwrap()[7], (7, 7, 32));
    // At initialisation a = 1 and b = 0.1 with unit-norm filters: the centre tap of
    // the diagonal is 1 + 0.1·w/‖w‖ before BN scaling (γ/√(1+ε) ≈ 1).
    let d = DiracConv::delta(3, 2);
    assert_eq!(d.iter().sum::<f32>(), 2.0);
    assert_eq!(d[4], 1.0);
    assert_eq!(d[(3 + 1) * 9 + 4], 1.0);
}

#[test]
fn decay_group_is_weights_only() {
    let cfg = ModelConfig::new(vec![8, 16], 2);
    let model = DiracNet::new(&cfg, &mut StdRng::seed_from_u64(0), &Device::flex());
    let ids = model.decayed_param_ids();
    assert_eq!(ids.len(), 2 + 4);
    let group = ParamGroup::from_ids(ids);
    let b = &model.blocks[1];
    assert!(group.matches(&b.conv.weight.id, None));
    assert!(!group.matches(&b.conv.alpha.id, None));
    assert!(!group.matches(&b.conv.beta.id, None));
    assert!(!group.matches(&b.bn.gamma.id, None));
    assert!(!group.matches(&b.bn.beta.id, None));
    assert!(!group.matches(&model.fc_bias.id, None));
    assert!(!group.matches(&model.stem_bn.gamma.id, None));
    for id in model.dirac_param_ids() {
        assert!(!group.matches(&id, None));
    }
    assert!(group.matches(&model.stem.id, None));
    assert!(group.matches(&model.fc_weight.id, None));
}

#[test]
fn calibration_metrics_by_hand() {
    // Two examples: confidently right, and a uniform row (argmax 0) labelled 2.
    let logits = [10.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let (acc, nll, _) = calibration_metrics(&logits, &[0, 2]);
    assert!((acc - 0.5).abs() < 1e-12);
    assert!((nll - 0.5 * (3f64.ln() + (1.0 + 2.0 * (-10f64).exp()).ln())).abs() < 1e-6);
    let logits = [2f32.ln(), 0.0, 0.0, 0.0, 0.0, 0.0];
    let (acc, nll, ece) = calibration_metrics(&logits[..3], &[0]);
    // p = (2/4, 1/4, 1/4): correct with confidence 0.5.
    assert!((acc - 1.0).abs() < 1e-12);
    assert!((nll - 2f64.ln()).abs() < 1e-6);
    assert!((ece - 0.5).abs() < 1e-6);
    let (acc, nll, ece) = calibration_metrics(&logits[..3], &[1]);
    assert_eq!(acc, 0.0);
    assert!((nll - 4f64.ln()).abs() < 1e-6);
    assert!((ece - 0.5).abs() < 1e-6);
    assert_eq!(calibration_metrics(&[], &[]), (0.0, 0.0, 0.0));
}

#[test]
fn bad_flags_and_files_are_errors() {
    let mut a = default_args::<TrainArgs>();
    assert_eq!(a.widths, vec![16, 32, 64]);
    a.widths = vec![];
    assert!(format!("{:#}", a.validate().unwrap_err()).contains("--widths"));
    let mut a = default_args::<TrainArgs>();
    a.mixup_alpha = -1.0;
    assert!(format!("{:#}", a.validate().unwrap_err()).contains("--mixup-alpha"));
    let mut a = default_args::<TrainArgs>();
    a.batch_size = 1;
    assert!(run(&a).is_err());

    let dir = tempfile::tempdir().unwrap();
    let err = load_folded(&dir.path().join("nope.bpk")).unwrap_err();
    assert!(format!("{err:#}").contains("nope.json"), "{err:#}");
    // A sidecar pointing at a garbage .bpk.
    let cfg = ModelConfig::new(vec![4, 8], 1);
    let meta = CheckpointMeta {
        format: CHECKPOINT_FORMAT.into(),
        model: cfg.clone(),
        epoch: 1,
        test_accuracy: None,
        train: serde_json::Value::Null,
    };
    let bpk = dir.path().join("bad.bpk");
    std::fs::write(&bpk, b"not a burnpack").unwrap();
    std::fs::write(
        bpk.with_extension("json"),
        serde_json::to_string(&meta).unwrap(),
    )
    .unwrap();
    let err = load_folded(&bpk).unwrap_err();
    assert!(format!("{err:#}").contains("bad.bpk"), "{err:#}");
    // A real checkpoint loaded with the wrong configuration.
    let model = DiracNet::new(&cfg, &mut StdRng::seed_from_u64(0), &Device::flex());
    save_checkpoint(&model, &bpk, &meta).unwrap();
    assert!(load_folded(&bpk).is_ok());
    let wrong = CheckpointMeta {
        model: ModelConfig::new(vec![4, 16], 1),
        ..meta
    };
    std::fs::write(
        bpk.with_extension("json"),
        serde_json::to_string(&wrong).unwrap(),
    )
    .unwrap();
    let err = load_folded(&bpk).unwrap_err();
    assert!(format!("{err:#}").contains("does not match"), "{err:#}");
    std::fs::write(bpk.with_extension("json"), b"{").unwrap();
    assert!(format!("{:#}", load_folded(&bpk).unwrap_err()).contains("parsing"));
}

/// Trains 2 epochs on 2000 images (a tiny 2k-parameter net), checks it beats chance by a wide margin, that
/// the checkpoint reloads to the same logits, and that the folded net agrees.
#[test]
fn smoke_train_checkpoint_and_fold() {
    if fmnist().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = TrainArgs {
        out: dir.path().to_path_buf(),
        epochs: 2,
        batch_size: 64,
        lr: 0.4,
        widths: vec![8, 16],
        depth: 1,
        train_limit: Some(2000),
        test_limit: Some(500),
        run: RunFlags {
            quiet: true,
            ..default_args::<TrainArgs>().run
        },
        ..default_args::<TrainArgs>()
    };
    let s = run(&args).unwrap();
    eprintln!(
        "smoke: test acc {:.3}, {:.0} img/s",
        s.test_accuracy, s.images_per_second
    );
    assert!(
        s.test_accuracy > 0.4,
        "accuracy {} not above chance",
        s.test_accuracy
    );
    assert!(dir.path().join("epoch-001.bpk").is_file());
    assert!(dir.path().join("train.json").is_file());
    let (_, test) = fmnist().unwrap();
    let test = test.take(200);
    let logits = float_logits(dir.path(), &test.images).unwrap();
    assert_eq!(logits.len(), 200 * CLASSES);
    let (acc, _, _) = calibration_metrics(&logits, &test.labels);
    assert!(acc > 0.3);
    let folded = load_folded(&s.checkpoint).unwrap();
    let mut max_diff = 0f32;
    for i in 0..50 {
        let got = folded.logits(test.image(i));
        for (a, b) in got.iter().zip(&logits[i * CLASSES..(i + 1) * CLASSES]) {
            max_diff = max_diff.max((a - b).abs());
        }
    }
    eprintln!("smoke: folded vs checkpoint max |logit diff| {max_diff:.2e}");
    assert!(max_diff < 1e-3, "{max_diff}");
    // Same seed, same flags: same result.
    let dir2 = tempfile::tempdir().unwrap();
    let s2 = run(&TrainArgs {
        out: dir2.path().to_path_buf(),
        ..args
    })
    .unwrap();
    assert_eq!(s.history[0].train_loss, s2.history[0].train_loss);
    assert_eq!(s.test_accuracy, s2.test_accuracy);
}

/// Resuming: two epochs in one go, or one epoch (`--stop-after 1`) and then
/// `--resume`, give the same checkpoint bytes; so does the same command
/// twice (SGD and AdamW, augmentation and mixup on, 2 threads). A resume
/// checkpoint whose weights do not fit its flags is refused, with no output.
#[test]
fn resume_equals_the_uninterrupted_run() {
    use crate::common::trainer::testing::{assert_resume_equal, edit_resume};
    use std::path::Path;
    if fmnist().is_none() {
        return;
    }
    let args = |out: &Path, optimizer: OptimizerKind| TrainArgs {
        out: out.to_path_buf(),
        epochs: 2,
        batch_size: 32,
        optimizer,
        lr: if optimizer == OptimizerKind::Sgd {
            0.1
        } else {
            3e-3
        },
        augment: true,
        widths: vec![4, 8],
        depth: 1,
        train_limit: Some(128),
        test_limit: Some(50),
        run: RunFlags {
            quiet: true,
            threads: 2,
            ..default_args::<TrainArgs>().run
        },
        ..default_args::<TrainArgs>()
    };
    for optimizer in [OptimizerKind::Sgd, OptimizerKind::Adamw] {
        let dir = assert_resume_equal(
            &["epoch-001.bpk", "epoch-002.bpk", "final.bpk"],
            &["final.bpk", "train.json"],
            |out, stop_after, resume| {
                let mut a = args(out, optimizer);
                a.run.stop_after = stop_after;
                a.run.resume = resume;
                run(&a).map(|_| ())
            },
        );
        // The same flags over a checkpoint of other shapes: refused, no output.
        let bad = dir.path().join("bad.ckpt");
        edit_resume(&dir.path().join("b/resume.ckpt"), &bad, |m| {
            m["args"]["widths"] = serde_json::json!([4, 16]);
            m["args"]["epochs"] = serde_json::json!(3);
        });
        let out = dir.path().join("x");
        let mut a = args(&out, optimizer);
        a.widths = vec![4, 16];
        a.epochs = 3;
        a.run.resume = Some(bad);
        let e = format!("{:#}", run(&a).unwrap_err());
        assert!(e.contains("does not match the model"), "{e}");
        assert!(!out.exists(), "a refused resume created {}", out.display());
    }
}

/// Finite-difference check of the autodiff gradients through the Dirac parametrization,
/// batch norm (train mode), pooling and the soft-target loss.
#[test]
fn gradients_match_finite_differences() {
    let ad = Device::flex().autodiff();
    let cfg = ModelConfig::new(vec![3, 4], 1);
    let mut rng = StdRng::seed_from_u64(5);
    let model = DiracNet::new(&cfg, &mut rng, &ad);
    let n = 4;
    let xv: Vec<f32> = (0..n * PIXELS)
        .map(|_| rng.random::<f32>() * 2.0 - 0.5)
        .collect();
    let mut yv = vec![0f32; n * CLASSES];
    for i in 0..n {
        yv[i * CLASSES + (i * 3) % CLASSES] = 0.7;
        yv[i * CLASSES + (i * 3 + 1) % CLASSES] = 0.3;
    }
    let loss_of = |m: &DiracNet| -> Tensor<1> {
        let x: Tensor<4> = Tensor::from_data(TensorData::new(xv.clone(), [n, 1, SIDE, SIDE]), &ad);
        let y: Tensor<2> = Tensor::from_data(TensorData::new(yv.clone(), [n, CLASSES]), &ad);
        log_softmax(m.forward(x), 1).mul(y).sum_dim(1).mean().neg()
    };
    let grads = GradientsParams::from_grads(loss_of(&model).backward(), &model);
    let vals = |t: Tensor<1>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    // Perturb one scalar of a rank-1 or rank-4 parameter through a closure that rebuilds the model.
    let check =
        |name: &str, analytic: Vec<f32>, perturb: &dyn Fn(usize, f32) -> DiracNet, count: usize| {
            for j in 0..count.min(analytic.len()) {
                let h = 1e-2f32;
                let lp: f32 = loss_of(&perturb(j, h)).into_scalar();
                let lm: f32 = loss_of(&perturb(j, -h)).into_scalar();
                let fd = (lp - lm) / (2.0 * h);
                eprintln!("{name}[{j}]: autodiff {:.5} fd {:.5}", analytic[j], fd);
                assert!(
                    (fd - analytic[j]).abs() < 2e-3 + 0.05 * fd.abs(),
                    "{name}[{j}]: {} vs {fd}",
                    analytic[j]
                );
            }
        };
    fn bump1(t: Tensor<1>, j: usize, h: f32) -> Tensor<1> {
        let device = t.device();
        let mut v = t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        v[j] += h;
        let len = v.len();
        Tensor::from_data(TensorData::new(v, [len]), &device)
    }
    fn bump4(t: Tensor<4>, j: usize, h: f32) -> Tensor<4> {
        let device = t.device();
        let dims = t.dims();
        let mut v = t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        v[j] += h;
        Tensor::from_data(TensorData::new(v, dims), &device)
    }
    let b = 1;
    let ga = vals(grads.get::<1>(model.blocks[b].conv.alpha.id).unwrap());
    check(
        "alpha",
        ga,
        &|j, h| {
            let mut m = model.clone();
            m.blocks[b].conv.alpha = burn::module::Param::from_tensor(bump1(
                m.blocks[b].conv.alpha.val().detach(),
                j,
                h,
            ));
            m
        },
        4,
    );
    let gb = vals(grads.get::<1>(model.blocks[b].conv.beta.id).unwrap());
    check(
        "beta",
        gb,
        &|j, h| {
            let mut m = model.clone();
            m.blocks[b].conv.beta =
                burn::module::Param::from_tensor(bump1(m.blocks[b].conv.beta.val().detach(), j, h));
            m
        },
        4,
    );
    let gw = grads
        .get::<4>(model.blocks[b].conv.weight.id)
        .unwrap()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    check(
        "weight",
        gw,
        &|j, h| {
            let mut m = model.clone();
            m.blocks[b].conv.weight = burn::module::Param::from_tensor(bump4(
                m.blocks[b].conv.weight.val().detach(),
                j * 7,
                h,
            ));
            m
        },
        0,
    );
    let gs = grads
        .get::<4>(model.stem.id)
        .unwrap()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    check(
        "stem",
        gs,
        &|j, h| {
            let mut m = model.clone();
            m.stem = burn::module::Param::from_tensor(bump4(m.stem.val().detach(), j, h));
            m
        },
        5,
    );
    let gg = vals(grads.get::<1>(model.blocks[0].bn.gamma.id).unwrap());
    check(
        "gamma",
        gg,
        &|j, h| {
            let mut m = model.clone();
            m.blocks[0].bn.gamma =
                burn::module::Param::from_tensor(bump1(m.blocks[0].bn.gamma.val().detach(), j, h));
            m
        },
        3,
    );
    let gf = vals(grads.get::<1>(model.fc_bias.id).unwrap());
    check(
        "fc_bias",
        gf,
        &|j, h| {
            let mut m = model.clone();
            m.fc_bias = burn::module::Param::from_tensor(bump1(m.fc_bias.val().detach(), j, h));
            m
        },
        3,
    );
}

/// `--conv-layout pairs` (and `tinyinfer repack`) on the committed bench
/// DiracNet: every 3×3 conv widened, the same scores through the core,
/// and back to int8 the same blob as the int8 rewrite of the original.
#[test]
fn conv_layout_pairs_keeps_the_outputs() {
    use super::quantize::{with_conv_layout, ConvLayoutArg};
    use crate::common::blob::AlignedBlob;
    use tinyinfer::format::ConvLayout;
    use tinyinfer::models::Classifier;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/bench/diracnet-bench.tinf");
    let int8 = std::fs::read(path).unwrap();
    let pairs = with_conv_layout(&int8, ConvLayoutArg::Pairs).unwrap();
    let back = with_conv_layout(&pairs, ConvLayoutArg::Int8).unwrap();
    assert_eq!(back, with_conv_layout(&int8, ConvLayoutArg::Int8).unwrap());
    let (a, b) = (AlignedBlob::new(&int8), AlignedBlob::new(&pairs));
    let (ma, mb) = (a.model().unwrap(), b.model().unwrap());
    // The stem (one input channel) and the dense layer stay int8.
    let layouts: Vec<_> = (0..mb.op_count())
        .filter_map(|i| mb.op(i))
        .filter(|op| op.kind == tinyinfer::format::OpKind::Conv2d)
        .map(|op| op.conv_layout().unwrap())
        .collect();
    assert_eq!(layouts[0], ConvLayout::Int8);
    assert!(
        layouts[1..].iter().all(|&l| l == ConvLayout::Pairs),
        "{layouts:?}"
    );
    // Twice the bytes for the six widened layers' 73,728 weights.
    assert_eq!(pairs.len() - int8.len(), 73_728);
    let (ca, cb) = (Classifier::new(ma).unwrap(), Classifier::new(mb).unwrap());
    let mut arena = vec![0u8; ma.arena_len()];
    let mut rng = StdRng::seed_from_u64(3);
    for _ in 0..4 {
        let img = random_images(1, &mut rng);
        let sa = ca.classify(&img, &mut arena).unwrap().scores.to_vec();
        let sb = cb.classify(&img, &mut arena).unwrap().scores.to_vec();
        assert_eq!(sa, sb);
    }
    // Only classifiers take the layout.
    let pcnn = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/bench/pixelcnn-bench.tinf");
    let e = with_conv_layout(&std::fs::read(pcnn).unwrap(), ConvLayoutArg::Pairs).unwrap_err();
    assert!(format!("{e:#}").contains("for classifiers"), "{e:#}");
}
