//! PixelCNN end to end through the CLI on real binarized MNIST: a short
//! training run, export, eval (float against int8 through the core),
//! sampling to a PNG and anomaly scoring; then the int8 model's causality,
//! its self-test, every truncation of the real blob, and bad input.

use tinyinfer::format::Model;
use tinyinfer::models::DensityModel;
use tinyinfer::rng::Pcg32;
use tinyinfer_tools::common::blob::AlignedBlob;
use tinyinfer_tools::common::data::shared_data_dir;
use tinyinfer_tools::families::density::{load_binarized_mnist, BinSplit, PixelCnnF};

mod common;
use common::{fail, json, run, Trained};

/// One small run shared by the tests: 2000 images, one epoch, a narrow net.
fn trained() -> &'static Trained {
    common::trained(
        "pixelcnn",
        "train-pixelcnn --train-limit 2000 --valid-limit 200 --epochs 1 --channels 16 --hidden 8 --blocks 2 --head 16 --no-test",
        "final.json",
        "--calib 300 --selftest 4",
    )
}

#[test]
fn eval_reports_float_and_int8_nll_through_the_core() {
    let t = trained();
    let v = t.eval_json(300);
    let int8 = v["int8_nll_nats"].as_f64().unwrap();
    let float = v["float_nll_nats"].as_f64().unwrap();
    // A one-epoch model is far from good but far better than coin flips (784 ln 2 = 543 nats).
    assert!(int8 > 50.0 && int8 < 300.0, "int8 NLL {int8}");
    assert!(
        (int8 - float).abs() < 0.1 * float,
        "int8 {int8} vs float {float}"
    );
    for k in [
        "params",
        "blob_bytes",
        "arena_bytes",
        "sample_arena_bytes",
        "macs",
    ] {
        assert!(v[k].as_u64().unwrap() > 0, "{k}");
    }
    assert_eq!(v["test_images"].as_u64(), Some(300));
    // The text form names the figures too.
    let out = run(&["eval", t.model.to_str().unwrap(), "--limit", "20"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("int8 NLL"));
}

#[test]
fn int8_model_is_causal_and_matches_the_float_model() {
    let t = trained();
    let blob = AlignedBlob::read(&t.model).unwrap();
    let dm = DensityModel::new(Model::new_checked(blob.bytes()).unwrap()).unwrap();
    let float = PixelCnnF::load_json(&t.ckpt).unwrap();
    let test = load_binarized_mnist(&shared_data_dir(None), BinSplit::Test).unwrap();
    let mut arena = vec![0u8; dm.arena_len()];
    let img = test.image(1234).to_vec();
    let base = dm.logits(&img, &mut arena).unwrap().to_vec();
    // Causality of the int8 model: flipping pixel j changes no logit at or before j.
    let mut later = 0;
    for j in (0..784).step_by(7) {
        let mut f = img.clone();
        f[j] ^= 1;
        let got = dm.logits(&f, &mut arena).unwrap();
        assert_eq!(
            &got[..=j],
            &base[..=j],
            "pixel {j} reached a logit at or before it"
        );
        later += (got[j + 1..] != base[j + 1..]) as usize;
    }
    assert!(later > 50, "flips changed later logits only {later} times");
    // int8 logits track the float ones.
    let head = blob.model().unwrap().output();
    let fl = float.logits(&img);
    let err: f32 = base
        .iter()
        .zip(&fl)
        .map(|(&q, &f)| (head.scale * (q as i32 - head.zero_point) as f32 - f).abs())
        .sum::<f32>()
        / 784.0;
    assert!(err < 0.5, "mean |int8 − float| logit error {err}");
}

#[test]
fn stored_selftest_passes_and_sampling_is_deterministic() {
    let t = trained();
    let blob = AlignedBlob::read(&t.model).unwrap();
    let dm = DensityModel::new(Model::new_checked(blob.bytes()).unwrap()).unwrap();
    for len in [dm.arena_len(), dm.sample_arena_len()] {
        let r = dm.selftest(&mut vec![0u8; len]).unwrap();
        assert_eq!((r.passed, r.total), (4, 4));
    }
    let mut arena = vec![0u8; dm.arena_len()];
    let (mut a, mut b, mut c) = (vec![0u8; 784], vec![0u8; 784], vec![0u8; 784]);
    dm.sample(&mut Pcg32::seeded(5), &mut a, &mut arena)
        .unwrap();
    dm.sample(&mut Pcg32::seeded(5), &mut b, &mut arena)
        .unwrap();
    dm.sample_full(&mut Pcg32::seeded(5), &mut c, &mut arena)
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c, "incremental and full sampling differ");
}

#[test]
fn sample_writes_a_png_grid_and_anomaly_reports_an_auroc() {
    let t = trained();
    let png = t.dir.join("grid.png");
    run(&[
        "sample",
        t.model.to_str().unwrap(),
        "--seed",
        "3",
        "--count",
        "4",
        "--cols",
        "2",
        "--out",
        png.to_str().unwrap(),
    ]);
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let reader = dec.read_info().unwrap();
    let info = reader.info();
    // 2×2 cells of 28·3 pixels plus 1-pixel gutters.
    assert_eq!((info.width, info.height), (2 * 85 + 1, 2 * 85 + 1));

    let out = run(&[
        "anomaly",
        t.model.to_str().unwrap(),
        "--count",
        "200",
        "--json",
    ]);
    let v = json(&out);
    let auroc = v["auroc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auroc));
    assert_eq!(v["normal_images"].as_u64(), Some(200));
    // Fashion-MNIST is not digits: even a weak model scores it as less likely.
    assert!(auroc > 0.6, "AUROC {auroc}");
}

#[test]
fn bad_input_gives_clear_errors() {
    let t = trained();
    let dir = &t.dir;
    // A truncated blob, for every command that reads one.
    let bytes = std::fs::read(&t.model).unwrap();
    let cut = dir.join("cut.tinf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let png = dir.join("never-written.png");
    for cmd in ["eval", "sample", "anomaly"] {
        let mut args = vec![cmd, cut.to_str().unwrap()];
        if cmd == "sample" {
            args.extend(["--out", png.to_str().unwrap()]);
        }
        let err = fail(&args);
        assert!(
            err.contains("truncated") || err.contains("declares"),
            "{cmd}: {err}"
        );
    }
    assert!(!png.exists(), "a refused sample wrote its PNG");
    // A corrupt checkpoint, and a missing data directory.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, b"{\"family\": \"density\", \"side\": 28}").unwrap();
    let err = fail(&[
        "export",
        "--checkpoint",
        bad.to_str().unwrap(),
        "--out",
        dir.join("x.tinf").to_str().unwrap(),
    ]);
    assert!(err.contains("bad.json"), "{err}");
    assert!(!dir.join("x.tinf").exists(), "a failed export left a file");
    let err = fail(&[
        "eval",
        t.model.to_str().unwrap(),
        "--data",
        "/nonexistent-data",
    ]);
    assert!(err.contains("/nonexistent-data"), "{err}");
    // Every truncation of the real blob is refused by the core, never a panic.
    let words: Vec<u32> = bytes
        .chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect();
    let all: &[u8] = bytemuck::cast_slice(&words);
    for n in (0..bytes.len()).step_by(13) {
        assert!(Model::new_checked(&all[..n]).is_err(), "truncated to {n}");
    }
}
