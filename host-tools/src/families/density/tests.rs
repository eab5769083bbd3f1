#![allow(clippy::needless_range_loop)]

use std::path::Path;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::common::data::shared_data_dir;
use crate::common::trainer::{default_args, tensor_vec, RunFlags};

const SIDE: usize = 28;
const PX: usize = SIDE * SIDE;

fn small_cfg() -> PixelCnnConfig {
    PixelCnnConfig {
        channels: 8,
        hidden: 6,
        blocks: 2,
        kernel: 3,
        first_kernel: 5,
        head: 8,
        side: SIDE,
    }
}

/// A randomly initialised small model with non-zero biases everywhere (so no ReLU
/// region is trivially dead and every path carries signal).
fn random_float(seed: u64) -> PixelCnnF {
    let mut rng = StdRng::seed_from_u64(seed);
    let m = PixelCnn::new(&small_cfg(), &mut rng, &Device::flex());
    let mut f = m.to_float();
    let mut perturb = |c: &mut ConvF| {
        for b in c.bias.iter_mut() {
            *b = rng.random_range(-0.2f32..0.5);
        }
    };
    perturb(&mut f.first);
    for b in &mut f.blocks {
        perturb(&mut b.reduce);
        perturb(&mut b.conv);
        perturb(&mut b.expand);
    }
    for h in &mut f.head {
        perturb(h);
    }
    f.validate().expect("random model is valid");
    f
}

fn random_image(rng: &mut StdRng) -> Vec<u8> {
    (0..PX).map(|_| rng.random_bool(0.3) as u8).collect()
}

fn burn_logits(m: &PixelCnn, images: &[u8]) -> Vec<f32> {
    let n = images.len() / PX;
    let x: Tensor<4> = Tensor::from_data(
        TensorData::new(
            images.iter().map(|&p| p as f32).collect::<Vec<_>>(),
            [n, 1, SIDE, SIDE],
        ),
        &Device::flex(),
    );
    tensor_vec(m.forward(x))
}

const POSITIONS: [usize; 8] = [0, 1, 27, 28, 29, 300, 406, 782];
const TOL: f32 = 1e-5;

/// For each position j: flips pixel j of `image` and compares the logits.
/// Returns the first violation (a logit at a position <= j that changed), and whether
/// for every j a logit after j changed.
fn causality(
    logits: &dyn Fn(&[u8]) -> Vec<Vec<f32>>,
    image: &[u8],
) -> (Option<(usize, usize)>, bool) {
    let mut batch = image.to_vec();
    for &j in &POSITIONS {
        let mut f = image.to_vec();
        f[j] ^= 1;
        batch.extend(f);
    }
    let out = logits(&batch);
    let base = &out[0];
    let mut violation = None;
    let mut all_after = true;
    for (n, &j) in POSITIONS.iter().enumerate() {
        let l = &out[n + 1];
        if violation.is_none() {
            if let Some(p) = (0..=j).find(|&p| (l[p] - base[p]).abs() > TOL) {
                violation = Some((j, p));
            }
        }
        if j + 1 < PX && !(j + 1..PX).any(|p| (l[p] - base[p]).abs() > TOL) {
            all_after = false;
        }
    }
    (violation, all_after)
}

fn float_logits_batch(f: &PixelCnnF) -> impl Fn(&[u8]) -> Vec<Vec<f32>> + '_ {
    move |imgs: &[u8]| imgs.chunks(PX).map(|im| f.logits(im)).collect()
}

fn burn_logits_batch(m: &PixelCnn) -> impl Fn(&[u8]) -> Vec<Vec<f32>> + '_ {
    move |imgs: &[u8]| {
        burn_logits(m, imgs)
            .chunks(PX)
            .map(|c| c.to_vec())
            .collect()
    }
}

#[test]
fn causality_float_and_burn() {
    let mut rng = StdRng::seed_from_u64(7);
    let f = random_float(1);
    let m = PixelCnn::from_float(&f, &Device::flex());
    for _ in 0..2 {
        let img = random_image(&mut rng);
        let (v, after) = causality(&float_logits_batch(&f), &img);
        assert_eq!(
            v, None,
            "float forward: flipping pixel j changed logit p <= j (j, p)"
        );
        assert!(
            after,
            "float forward: flipping a pixel changed no later logit"
        );
        let (v, after) = causality(&burn_logits_batch(&m), &img);
        assert_eq!(
            v, None,
            "burn forward: flipping pixel j changed logit p <= j (j, p)"
        );
        assert!(
            after,
            "burn forward: flipping a pixel changed no later logit"
        );
    }
    // A freshly initialised training model (default init, trained code path) too.
    let fresh = PixelCnn::new(&small_cfg(), &mut StdRng::seed_from_u64(3), &Device::flex());
    let img = random_image(&mut rng);
    assert_eq!(causality(&burn_logits_batch(&fresh), &img).0, None);
}

#[test]
fn causality_check_catches_a_wrong_first_mask() {
    let mut f = random_float(2);
    // Mask B on the first layer: the logit of pixel j now sees pixel j itself.
    f.first.mask = Mask::B;
    let c = (f.first.k - 1) / 2;
    for o in 0..f.first.out_c {
        let i = f.first.widx(o, c, c, 0);
        f.first.weight[i] = if o % 2 == 0 { 0.7 } else { -0.5 };
    }
    assert!(
        f.validate().is_err(),
        "validate must reject mask B on the first layer"
    );
    let img = random_image(&mut StdRng::seed_from_u64(9));
    let (v, _) = causality(&float_logits_batch(&f), &img);
    assert!(
        v.is_some(),
        "float: the causality check missed a mask-B first layer"
    );
    let m = PixelCnn::from_float(&f, &Device::flex());
    let (v, _) = causality(&burn_logits_batch(&m), &img);
    assert!(
        v.is_some(),
        "burn: the causality check missed a mask-B first layer"
    );

    // A block conv without a mask (Mask::None) leaks the future as well.
    let mut g = random_float(4);
    g.blocks[1].conv.mask = Mask::None;
    for w in g.blocks[1].conv.weight.iter_mut() {
        if *w == 0.0 {
            *w = 0.3;
        }
    }
    assert!(g.validate().is_err());
    let (v, _) = causality(&float_logits_batch(&g), &img);
    assert!(
        v.is_some(),
        "float: the causality check missed an unmasked block conv"
    );
    let (v, _) = causality(
        &burn_logits_batch(&PixelCnn::from_float(&g, &Device::flex())),
        &img,
    );
    assert!(
        v.is_some(),
        "burn: the causality check missed an unmasked block conv"
    );
}

#[test]
fn burn_and_float_forward_agree() {
    let f = random_float(5);
    let m = PixelCnn::from_float(&f, &Device::flex());
    // to_float(from_float(f)) == f exactly.
    let back = m.to_float();
    assert_eq!(back.first.weight, f.first.weight);
    assert_eq!(back.blocks[1].conv.weight, f.blocks[1].conv.weight);
    assert_eq!(back.head[1].bias, f.head[1].bias);
    let mut rng = StdRng::seed_from_u64(11);
    let imgs: Vec<u8> = (0..4).flat_map(|_| random_image(&mut rng)).collect();
    let b = burn_logits(&m, &imgs);
    let mut max = 0f32;
    for (n, im) in imgs.chunks(PX).enumerate() {
        let acts = f.forward_all(im);
        assert_eq!(acts.len(), 1 + 4 * f.blocks.len() + f.head.len());
        assert_eq!(acts[0].len(), PX * 8);
        assert_eq!(acts.last().unwrap().len(), PX);
        for (a, c) in acts.last().unwrap().iter().zip(&b[n * PX..(n + 1) * PX]) {
            max = max.max((a - c).abs());
        }
    }
    assert!(max < 1e-4, "burn vs float logits differ by {max}");
    // NLL: PixelCnnF::nll vs burn nll_per_image vs float_test_nll.
    let burn_nll = mean_nll(&m, &imgs, 3);
    let f_nll: f64 = imgs.chunks(PX).map(|im| f.nll(im)).sum::<f64>() / 4.0;
    assert!(
        (burn_nll - f_nll).abs() < 1e-2 * f_nll.abs().max(1.0),
        "{burn_nll} vs {f_nll}"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.json");
    f.save_json(&p).unwrap();
    let t = float_test_nll(&p, &imgs).unwrap();
    assert!((t - f_nll).abs() < 1e-2 * f_nll.abs().max(1.0));
    assert!(float_test_nll(&p, &imgs[..100]).is_err());
}

#[test]
fn rows_forward_equals_the_masked_conv2d() {
    // Every conv shape the model uses (1×1 mask B, k×k mask B, the mask-A stem), several
    // images and channels, random weights: the live-tap product against conv2d of the
    // masked weight.
    let device = Device::flex();
    let mut rng = StdRng::seed_from_u64(21);
    for (in_c, out_c, k, mask, relu) in [
        (3, 5, 1, Mask::B, true),
        (4, 3, 3, Mask::B, false),
        (2, 6, 5, Mask::B, true),
        (1, 4, 7, Mask::A, true),
        (3, 2, 3, Mask::A, false),
    ] {
        let conv = MaskedConv::new(in_c, out_c, k, mask, relu, 1.0, &mut rng, &device);
        let conv = MaskedConv {
            bias: burn::module::Param::from_tensor(Tensor::from_data(
                TensorData::new(
                    (0..out_c).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
                    [out_c],
                ),
                &device,
            )),
            ..conv
        };
        let (n, side) = (2, 6);
        let v: Vec<f32> = (0..n * in_c * side * side)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        let x: Tensor<4> = Tensor::from_data(TensorData::new(v, [n, in_c, side, side]), &device);
        let want = tensor_vec(conv.forward(x.clone()));
        let rows = x.permute([0, 2, 3, 1]).reshape([n * side * side, in_c]);
        let got = conv.forward_rows(rows, n, side);
        let got = tensor_vec(got.reshape([n, side, side, out_c]).permute([0, 3, 1, 2]));
        assert_eq!(want.len(), got.len());
        let max = want
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(max < 1e-4, "k {k} {mask:?}: rows vs conv2d differ by {max}");
    }
}

#[test]
fn nll_is_stable_and_correct() {
    use super::float::bce_with_logit;
    for (l, x) in [
        (0.0f64, 1.0f64),
        (0.0, 1.0),
        (3.0, 0.0),
        (-2.5, 1.0),
        (800.0, 0.0),
        (-800.0, 1.0),
        (800.0, 1.0),
    ] {
        let naive = if x == 1.0 {
            -(1.0 / (1.0 + (-l).exp())).ln()
        } else {
            -(1.0 - 1.0 / (1.0 + (-l).exp())).ln()
        };
        let v = bce_with_logit(l, x);
        assert!(v.is_finite() && v >= 0.0);
        if l.abs() < 30.0 {
            assert!((v - naive).abs() < 1e-9, "l {l} x {x}: {v} vs {naive}");
        }
    }
    assert!((bce_with_logit(800.0, 0.0) - 800.0).abs() < 1e-9);
    assert!(bce_with_logit(800.0, 1.0) < 1e-9);
}

#[test]
fn json_round_trip_and_rejections() {
    let f = random_float(6);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("model.json");
    f.save_json(&p).unwrap();
    let g = PixelCnnF::load_json(&p).unwrap();
    assert_eq!(g.params(), f.params());
    assert_eq!(
        serde_json::to_string(&g).unwrap(),
        serde_json::to_string(&f).unwrap()
    );
    let img = random_image(&mut StdRng::seed_from_u64(1));
    assert_eq!(g.logits(&img), f.logits(&img));

    // A nonzero masked tap (the first layer's centre, excluded by mask A).
    let mut bad = f.clone();
    let c = (bad.first.k - 1) / 2;
    let i = bad.first.widx(3, c, c, 0);
    bad.first.weight[i] = 0.25;
    let pb = dir.path().join("bad_tap.json");
    std::fs::write(&pb, serde_json::to_string(&bad).unwrap()).unwrap();
    let e = format!("{:#}", PixelCnnF::load_json(&pb).unwrap_err());
    assert!(
        e.contains("masked tap") && e.contains("bad_tap.json"),
        "{e}"
    );

    // A masked tap in a block conv (below the centre row).
    let mut bad = f.clone();
    let k = bad.blocks[0].conv.k;
    let i = bad.blocks[0].conv.widx(0, k - 1, 0, 0);
    bad.blocks[0].conv.weight[i] = -1.0;
    std::fs::write(&pb, serde_json::to_string(&bad).unwrap()).unwrap();
    assert!(format!("{:#}", PixelCnnF::load_json(&pb).unwrap_err()).contains("masked tap"));

    // A wrong weight length.
    let mut bad = f.clone();
    bad.blocks[1].expand.weight.pop();
    let pw = dir.path().join("bad_len.json");
    std::fs::write(&pw, serde_json::to_string(&bad).unwrap()).unwrap();
    let e = format!("{:#}", PixelCnnF::load_json(&pw).unwrap_err());
    assert!(
        e.contains("weight has") && e.contains("block 1 expand"),
        "{e}"
    );

    // Broken chain: the head's first conv does not take C channels.
    let mut bad = f.clone();
    bad.head[0].in_c += 1;
    let oc = bad.head[0].out_c;
    bad.head[0].weight.extend(vec![0.0; oc]);
    std::fs::write(&pw, serde_json::to_string(&bad).unwrap()).unwrap();
    assert!(PixelCnnF::load_json(&pw).is_err());

    // Missing file and garbage.
    assert!(format!(
        "{:#}",
        PixelCnnF::load_json(&dir.path().join("nope.json")).unwrap_err()
    )
    .contains("nope.json"));
    std::fs::write(&pw, "{\"side\": 28}").unwrap();
    assert!(PixelCnnF::load_json(&pw).is_err());
}

#[test]
fn missing_data_names_the_path() {
    let dir = Path::new("/nonexistent/tinyinfer-data");
    let e = format!(
        "{:#}",
        load_binarized_mnist(dir, BinSplit::Valid).unwrap_err()
    );
    assert!(e.contains("/nonexistent/tinyinfer-data/binarized_mnist/binarized_mnist_valid-images-idx3-ubyte.gz"), "{e}");
    assert!(e.contains("TINYINFER_DATA") && e.contains("README"), "{e}");
    let e = format!("{:#}", load_mnist_images(dir, true).unwrap_err());
    assert!(
        e.contains("/nonexistent/tinyinfer-data/mnist/t10k-images-idx3-ubyte.gz"),
        "{e}"
    );
    assert_eq!(shared_data_dir(Some(dir)), dir);
}

#[test]
fn binarize_is_seeded_and_exact_at_the_ends() {
    let imgs: Vec<u8> = (0..PX * 20).map(|i| (i % 256) as u8).collect();
    let a = binarize(&imgs, 1);
    assert_eq!(a, binarize(&imgs, 1));
    assert_ne!(a, binarize(&imgs, 2));
    for (&p, &b) in imgs.iter().zip(&a) {
        assert!(b <= 1);
        if p == 0 {
            assert_eq!(b, 0);
        }
        if p == 255 {
            assert_eq!(b, 1);
        }
    }
    // Mean tracks intensity: mid-grey pixels come out about half ones.
    let mid: Vec<u8> = vec![128; 20_000];
    let ones = binarize(&mid, 3).iter().filter(|&&b| b == 1).count() as f64 / 20_000.0;
    assert!((ones - 128.0 / 255.0).abs() < 0.02, "{ones}");
    assert!(BinImages::from_flat(vec![0, 2]).is_err());
    assert!(BinImages::from_flat(vec![1; PX]).is_ok());
}

/// The real validation split; a missing data set fails the test (with the
/// loader's message saying where to get it) rather than skipping it.
fn binarized_valid() -> Option<BinImages> {
    match load_binarized_mnist(&shared_data_dir(None), BinSplit::Valid) {
        Ok(v) => Some(v),
        Err(e) => panic!("binarized MNIST is needed: {e:#}"),
    }
}

#[test]
fn real_data_loads_and_is_binary() {
    let Some(v) = binarized_valid() else { return };
    assert_eq!(v.len(), 10_000);
    let mean = v.pixels.iter().map(|&p| p as f64).sum::<f64>() / v.pixels.len() as f64;
    assert!((mean - 0.1311).abs() < 0.001, "valid mean pixel {mean}");
}

#[test]
fn training_smoke_loss_decreases() {
    let Some(v) = binarized_valid() else { return };
    let data = v.take(256);
    let device = Device::flex();
    let ad = device.clone().autodiff();
    let mut model = PixelCnn::new(&small_cfg(), &mut StdRng::seed_from_u64(0), &ad);
    let before = mean_nll(&model.valid(), &data.pixels, 128);
    let mut optim: ModuleOptimizer = AdamConfig::new().init();
    for _epoch in 0..2 {
        for chunk in data.pixels.chunks(16 * PX) {
            let x: Tensor<4> = Tensor::from_data(
                TensorData::new(
                    chunk.iter().map(|&p| p as f32).collect::<Vec<_>>(),
                    [16, 1, SIDE, SIDE],
                ),
                &ad,
            );
            let loss = model.nll_per_image(x).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(3e-3, model, grads);
        }
    }
    let after = mean_nll(&model.valid(), &data.pixels, 128);
    assert!(
        after < before - 20.0,
        "NLL did not drop: {before:.2} -> {after:.2}"
    );

    // The trainer end to end: files written and loadable.
    let dir = tempfile::tempdir().unwrap();
    let args = PixelCnnArgs {
        out: dir.path().to_path_buf(),
        epochs: 1,
        batch: 16,
        channels: 8,
        hidden: 6,
        blocks: 1,
        first_kernel: 5,
        head: 0,
        train_limit: Some(64),
        valid_limit: Some(32),
        no_test: true,
        run: RunFlags {
            quiet: true,
            ..default_args::<PixelCnnArgs>().run
        },
        ..default_args::<PixelCnnArgs>()
    };
    let s = run(&args).unwrap();
    assert_eq!(s.history.len(), 1);
    assert!(s.float_valid_nll_nats.is_finite() && s.float_valid_nll_nats > 0.0);
    let f = PixelCnnF::load_json(&dir.path().join("epoch-1.json")).unwrap();
    assert_eq!(f.params(), s.params);
    assert_eq!(f.head.len(), 1);
    PixelCnnF::load_json(&dir.path().join("final.json")).unwrap();
    let sum: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    for k in [
        "float_valid_nll_nats",
        "float_test_nll_nats",
        "params",
        "epochs",
        "seconds",
        "images_per_second",
        "config",
    ] {
        assert!(sum.get(k).is_some(), "summary.json lacks {k}");
    }
    let bad = PixelCnnArgs { kernel: 4, ..args };
    assert!(run(&bad).is_err());
}

/// Resuming: three epochs in one go, or stopped after each of the first two
/// and resumed, give the same checkpoints byte for byte; so does the same
/// command twice. Another family's resume checkpoint is refused.
#[test]
fn resume_equals_the_uninterrupted_run() {
    use crate::common::trainer::testing::{assert_resume_equal, edit_resume};
    let args = |out: &Path| PixelCnnArgs {
        out: out.to_path_buf(),
        epochs: 3,
        batch: 16,
        channels: 8,
        hidden: 6,
        blocks: 1,
        first_kernel: 5,
        head: 8,
        train_limit: Some(64),
        valid_limit: Some(16),
        no_test: true,
        run: RunFlags {
            quiet: true,
            threads: 2,
            ..default_args::<PixelCnnArgs>().run
        },
        ..default_args::<PixelCnnArgs>()
    };
    let dir = assert_resume_equal(
        &["epoch-1.json", "epoch-2.json", "epoch-3.json", "final.json"],
        &["final.json", "summary.json"],
        |out, stop_after, resume| {
            let mut a = args(out);
            a.run.resume = resume;
            a.run.stop_after = stop_after;
            if stop_after.is_none() && a.run.resume.is_some() {
                // Stop once more in the middle: epoch 2, then 3.
                a.run.stop_after = Some(2);
                run(&a)?;
                a.run.stop_after = None;
            }
            run(&a).map(|_| ())
        },
    );
    let other = dir.path().join("other.ckpt");
    edit_resume(&dir.path().join("b/resume.ckpt"), &other, |m| {
        m["family"] = serde_json::json!("language");
    });
    let out = dir.path().join("x");
    let mut a = args(&out);
    a.run.resume = Some(other);
    let e = format!("{:#}", run(&a).unwrap_err());
    assert!(e.contains("language checkpoint, not a density one"), "{e}");
    assert!(!out.exists());
}

/// Issue 16: `sample` on a 3×8 model said "no images to draw" (the grid
/// assumed square images). A rectangular grid: 3 images of 3×8, 2 columns,
/// zoom 2 → (2·(8·2+1)+1) × (2·(3·2+1)+1) = 35 × 15 pixels.
#[test]
fn png_grid_draws_rectangular_images() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.png");
    let imgs: Vec<u8> = (0..3 * 24).map(|i| (i % 5 == 0) as u8).collect();
    super::run::write_png_grid(&path, &imgs, (3, 8), 2, 2).unwrap();
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
    let reader = dec.read_info().unwrap();
    let info = reader.info();
    assert_eq!((info.width, info.height), (35, 15));
    // Too large a grid is an error, not an allocation failure.
    let err = super::run::write_png_grid(&path, &imgs, (3, 8), 2, 1 << 20).unwrap_err();
    assert!(err.to_string().contains("too large"), "{err}");
}
