//! End to end through the CLI on real Fashion-MNIST: a short training run,
//! export, inspect and eval through the core; then every truncation and
//! byte flip of the real exported blob, and the CLI's handling of bad input.

use std::path::Path;

use tinyinfer::format::{Model, CRC32, CRC_LEN};
use tinyinfer::models::Classifier;
use tinyinfer_tools::common::blob::AlignedBlob;

mod common;
use common::{fail, json, run, Trained};

/// One small training run shared by the tests: 3000 images, one epoch of batches of 32.
fn trained() -> &'static Trained {
    common::trained(
        "pipeline",
        "train --train-limit 3000 --test-limit 500 --epochs 1 --batch-size 32",
        "final.bpk",
        "--calib 500 --selftest 4",
    )
}

#[test]
fn short_training_exports_and_evaluates_well_above_chance() {
    let t = trained();
    let r = t.eval_json(1000);
    for key in [
        "int8_accuracy",
        "float_accuracy",
        "params",
        "macs",
        "blob_bytes",
        "arena_bytes",
        "test_images",
    ] {
        assert!(r.get(key).is_some(), "eval --json lacks {key}: {r}");
    }
    let int8 = r["int8_accuracy"].as_f64().unwrap();
    let float = r["float_accuracy"].as_f64().unwrap();
    assert!(
        int8 > 0.4,
        "int8 accuracy {int8} is not well above chance (0.1)"
    );
    assert!((float - int8).abs() < 0.1, "float {float} vs int8 {int8}");
    assert_eq!(r["test_images"], 1000);
    assert!(r["params"].as_u64().unwrap() <= 100_000);

    let i = json(&run(&["inspect", t.model.to_str().unwrap(), "--json"]));
    assert_eq!(i["arena_bytes"], r["arena_bytes"]);
    assert_eq!(
        i["blob_bytes"].as_u64().unwrap(),
        std::fs::metadata(&t.model).unwrap().len()
    );
    assert_eq!(i["selftest_cases"], 4);
    assert!(i["layers"].as_array().unwrap().len() >= 9);
}

#[test]
fn stored_selftest_passes_on_the_host_core() {
    let blob = AlignedBlob::read(&trained().model).unwrap();
    let clf = Classifier::new(blob.model().unwrap()).unwrap();
    let mut arena = vec![0u8; clf.model().arena_len()];
    let r = clf.selftest(&mut arena).unwrap();
    assert_eq!((r.passed, r.total, r.first_failure), (4, 4, None));
}

#[test]
fn hex_image_holds_the_blob_at_the_partition_address() {
    let t = trained();
    let blob = std::fs::read(&t.model).unwrap();
    let hex = std::fs::read_to_string(t.model.with_extension("hex")).unwrap();
    let mut image = vec![0u8; blob.len()];
    let (mut upper, mut seen) = (0u32, 0usize);
    for rec in ihex::Reader::new(&hex) {
        match rec.unwrap() {
            ihex::Record::ExtendedLinearAddress(h) => upper = (h as u32) << 16,
            ihex::Record::Data { offset, value } => {
                let addr = upper + offset as u32;
                assert!(addr >= 0x0004_0000, "data below the partition at {addr:#x}");
                let at = (addr - 0x0004_0000) as usize;
                image[at..at + value.len()].copy_from_slice(&value);
                seen += value.len();
            }
            ihex::Record::EndOfFile => {}
            r => panic!("unexpected record {r:?}"),
        }
    }
    assert_eq!(seen, blob.len());
    assert_eq!(image, blob);
}

fn check_and_run(bytes: &[u8]) -> Result<(), tinyinfer::Error> {
    let blob = AlignedBlob::new(bytes);
    let model = Model::new_checked(blob.bytes())?;
    let clf = Classifier::new(model)?;
    let mut arena = vec![0u8; model.arena_len()];
    clf.classify(&[7u8; 784], &mut arena).map(|_| ())
}

#[test]
fn real_blob_truncations_and_flips_are_refused_without_panic() {
    let m = std::fs::read(&trained().model).unwrap();
    check_and_run(&m).unwrap();
    for len in 0..m.len() {
        assert!(
            check_and_run(&m[..len]).is_err(),
            "truncation to {len} accepted"
        );
    }
    for i in 0..m.len() {
        let mut b = m.clone();
        b[i] ^= 0x5A;
        assert!(check_and_run(&b).is_err(), "flip at {i} accepted");
    }
    // Behind a recomputed CRC: every header/table byte and a sample of the
    // data must be refused or run without panicking.
    let n = m.len() - CRC_LEN;
    for i in (0..n).filter(|&i| i < 2048 || i % 97 == 0) {
        for v in [0x01u8, 0x80, 0xFF] {
            let mut b = m.clone();
            b[i] ^= v;
            let crc = CRC32.checksum(&b[..n]);
            b[n..].copy_from_slice(&crc.to_le_bytes());
            let _ = check_and_run(&b);
        }
    }
}

#[test]
fn bad_files_and_flags_give_clear_errors() {
    let t = trained();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.tinf");
    assert!(fail(&["eval", missing.to_str().unwrap()]).contains("nope.tinf"));
    let junk = dir.path().join("junk.tinf");
    std::fs::write(&junk, b"this is not a model at all, just text").unwrap();
    assert!(fail(&["inspect", junk.to_str().unwrap()]).contains("not a tinyinfer model"));
    let mut corrupt = std::fs::read(&t.model).unwrap();
    corrupt[1000] ^= 1;
    let cpath = dir.path().join("corrupt.tinf");
    std::fs::write(&cpath, &corrupt).unwrap();
    assert!(fail(&["eval", cpath.to_str().unwrap(), "--limit", "10"]).contains("CRC"));
    let err = fail(&[
        "eval",
        t.model.to_str().unwrap(),
        "--data",
        "/nonexistent/fmnist",
    ]);
    assert!(err.contains("dataset-fashion-mnist"), "{err}");
    fail(&["train", "--epochs", "0"]);
    fail(&["train", "--mixup-alpha", "-1"]);
    fail(&[
        "export",
        "--checkpoint",
        "/nonexistent.bpk",
        "--out",
        "x.tinf",
    ]);
    fail(&["eval"]);
}

#[test]
fn failed_export_keeps_the_good_file() {
    let t = trained();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.tinf");
    std::fs::copy(&t.model, &out).unwrap();
    let before = std::fs::read(&out).unwrap();
    // A checkpoint that is not one: the export fails and the old model stays.
    let bogus = dir.path().join("bogus.bpk");
    std::fs::write(&bogus, b"garbage").unwrap();
    fail(&[
        "export",
        "--checkpoint",
        bogus.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    let _ = Path::new(&t.dir);
}

/// A real classifier checkpoint's sidecar beside a corrupted `.bpk` (issue
/// 16: every checkpoint is validated before use): a clear error, no panic,
/// nothing written.
#[test]
fn corrupted_bpk_with_a_real_sidecar_is_refused() {
    let t = trained();
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("final.bpk");
    let mut bytes = std::fs::read(&t.ckpt).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n / 3..n / 3 + 64] {
        *b ^= 0x5A;
    }
    bytes.truncate(n / 2);
    std::fs::write(&ckpt, &bytes).unwrap();
    std::fs::copy(t.ckpt.with_extension("json"), ckpt.with_extension("json")).unwrap();
    let out = dir.path().join("m.tinf");
    let err = fail(&[
        "export",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("final.bpk"), "{err}");
    assert!(!out.exists());
}
