//! One table of bad inputs for every command (issue 16): a wrong file type,
//! a truncated IDX, a corrupted or absurd checkpoint, a nonexistent path,
//! an oversized count, a bad flag, a model that does not fit the data. Each
//! must give a clear error and a non-zero exit, with no panic (exit 101) or
//! abort (134), and no partial output. No training: the models are the
//! core's golden classifier, the fuzz corpus's density model, and a tiny
//! hand-written language-model checkpoint.

mod common;

use std::path::{Path, PathBuf};

use common::{bin, run};
use tinyinfer_tools::common::checkpoint::{encode_resume, ResumeParts};
use tinyinfer_tools::common::trainer::default_args;
use tinyinfer_tools::families::classifier::TrainArgs;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A scratch directory of this test process.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tinyinfer-badcli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A valid language-model checkpoint: V = 2, d = 1, one LSTM layer of 1,
/// softmax head (tagged, as `train-lm` writes it).
fn tiny_lm(emb_dim: &str, embedding: &str) -> String {
    format!(
        r#"{{"family":"language","level":"char","vocab":["a","b"],"emb_dim":{emb_dim},
        "embedding":{embedding},
        "layers":[{{"input":1,"hidden":1,"w_ih":[0.1,0.2,0.3,0.4],"w_hh":[0.5,0.6,0.7,0.8],"bias":[0,0,0,0]}}],
        "head":{{"kind":"softmax","k":1,"proj_w":[0.5],"proj_b":[0.0],"prior_w":[],"prior_b":[],"dec_b":[0.0,0.1]}}}}"#
    )
}

/// Runs `tinyinfer args`, which must fail cleanly with `expect` in stderr.
fn refused(args: &[&str], expect: &str) {
    let out = bin().args(args).output().expect("run tinyinfer");
    let err = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        !out.status.success() && code.is_some() && code != Some(101) && code != Some(134),
        "tinyinfer {args:?}: exit {code:?} (want a clean failure)\n{err}"
    );
    assert!(
        !err.contains("panicked"),
        "tinyinfer {args:?} panicked:\n{err}"
    );
    assert!(
        err.to_lowercase().contains(&expect.to_lowercase()),
        "tinyinfer {args:?}: stderr lacks {expect:?}:\n{err}"
    );
}

#[test]
fn every_command_refuses_bad_input_cleanly() {
    let d = scratch("table");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let golden = s(&root().join("fuzz/corpus/crc_fixed/seed-golden-0")); // 6×6×1, 3 classes
    let density = s(&root().join("fuzz/corpus/crc_fixed/seed-density-checked")); // 28×28 PixelCNN
    let lm_blob = s(&root().join("fuzz/corpus/crc_fixed/seed-lm-checked"));
    let text = d.join("notes.txt");
    std::fs::write(
        &text,
        "not a model: just some notes about the weather and the sea\n",
    )
    .unwrap();
    let text = s(&text);
    let missing = s(&d.join("missing.tinf"));
    let good_lm = d.join("lm.json");
    std::fs::write(&good_lm, tiny_lm("1", "[0.1,0.2]")).unwrap();
    let good_lm = s(&good_lm);
    let absurd = d.join("absurd.json");
    std::fs::write(&absurd, tiny_lm("9223372036854775808", "[]")).unwrap();
    let absurd = s(&absurd);
    let empty = d.join("empty.json");
    std::fs::write(&empty, tiny_lm("0", "[]")).unwrap();
    let empty = s(&empty);
    let nan = d.join("nan.json");
    std::fs::write(&nan, tiny_lm("1", "[0.1,1e999]")).unwrap();
    let nan = s(&nan);
    let corrupt = d.join("corrupt.json");
    std::fs::write(&corrupt, &tiny_lm("1", "[0.1,0.2]")[..60]).unwrap();
    let corrupt = s(&corrupt);
    // A Fashion-MNIST directory whose IDX files are cut short.
    let idx = d.join("idx");
    std::fs::create_dir_all(&idx).unwrap();
    for f in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        let dims: &[u8] = if f.contains("images") {
            &[0, 0, 8, 3, 0, 0, 0, 9, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3]
        } else {
            &[0, 0, 8, 1, 0, 0, 0, 9, 4]
        };
        std::fs::write(idx.join(f), dims).unwrap();
    }
    let idx = s(&idx);
    let out = |n: &str| s(&d.join(n));
    // Resume checkpoints: another family's, one cut short, one of other flags.
    let resume = |name: &str, family: &str, args: &str| {
        let meta = format!(
            r#"{{"family":"{family}","format":"tinyinfer-resume-v1","epoch":1,"step":1,"args":{args},"history":[{{}}]}}"#
        );
        let bytes = encode_resume(&ResumeParts {
            meta,
            model: vec![0; 64],
            optim: vec![0; 64],
        });
        let path = d.join(name);
        std::fs::write(&path, bytes).unwrap();
        s(&path)
    };
    let density_ckpt = resume("density.ckpt", "density", "{}");
    let cut_ckpt = resume("cut.ckpt", "density", "{}");
    let bytes = std::fs::read(&cut_ckpt).unwrap();
    std::fs::write(&cut_ckpt, &bytes[..bytes.len() - 40]).unwrap();
    // The flags of `train --widths 4,8`, as the trainer stores them.
    let mut flags = serde_json::to_value(default_args::<TrainArgs>()).unwrap();
    flags["widths"] = serde_json::json!([4, 8]);
    let flags_ckpt = resume("flags.ckpt", "classifier", &flags.to_string());

    let args = |a: &str| a.split(' ').map(String::from).collect::<Vec<_>>();
    let with = |mut v: Vec<String>, p: &str| {
        v.push(p.to_string());
        v
    };
    let table: Vec<(Vec<String>, &str)> = vec![
        // Bad --resume checkpoints and resume flags: refused before any data is read.
        (
            with(args(&format!("train --out {} --resume", out("r1"))), &text),
            "not a resume checkpoint",
        ),
        (
            with(
                args(&format!("train-lm --out {} --resume", out("r2"))),
                &density_ckpt,
            ),
            "is a density checkpoint, not a language one",
        ),
        (
            with(
                args(&format!("train-pixelcnn --out {} --resume", out("r3"))),
                &cut_ckpt,
            ),
            "truncated",
        ),
        (
            with(
                args(&format!("train --widths 8,16 --out {} --resume", out("r4"))),
                &flags_ckpt,
            ),
            "flags differ from the run's: --widths [8,16] (the run had [4,8]). A resumed",
        ),
        (
            with(
                args(&format!(
                    "train-lm --max-minutes 1 --out {} --resume",
                    out("r5")
                )),
                &flags_ckpt,
            ),
            "--max-minutes",
        ),
        (
            args(&format!("train --stop-after 6 --out {}", out("r6"))),
            "--stop-after must be between 1 and --epochs (5)",
        ),
        (
            args(&format!("pipeline --stop-after 2 --out {}", out("r8"))),
            "pipeline exports the finished run",
        ),
        (
            with(
                args(&format!(
                    "train --widths 4,8 --stop-after 1 --out {} --resume",
                    out("r7")
                )),
                &flags_ckpt,
            ),
            "flags.ckpt is already at epoch 1",
        ),
        // Nonexistent paths and wrong file types.
        (vec!["inspect".into(), missing.clone()], "missing.tinf"),
        (vec!["inspect".into(), text.clone()], "magic"),
        (vec!["eval".into(), missing.clone()], "missing.tinf"),
        (vec!["eval".into(), text.clone()], "magic"),
        (
            vec!["sample".into(), text.clone(), "--out".into(), out("s.png")],
            "magic",
        ),
        (vec!["generate".into(), missing.clone()], "missing.tinf"),
        (vec!["generate".into(), density.clone()], "language"),
        (
            vec![
                "sample".into(),
                golden.clone(),
                "--out".into(),
                out("s.png"),
            ],
            "density",
        ),
        (
            vec![
                "export".into(),
                "--checkpoint".into(),
                missing.clone(),
                "--out".into(),
                out("x.tinf"),
            ],
            "missing",
        ),
        (
            vec![
                "export".into(),
                "--checkpoint".into(),
                text.clone(),
                "--out".into(),
                out("x.tinf"),
            ],
            "notes.txt",
        ),
        // Corrupted and absurd checkpoints.
        (
            vec![
                "export".into(),
                "--checkpoint".into(),
                corrupt.clone(),
                "--out".into(),
                out("x.tinf"),
            ],
            "corrupt.json",
        ),
        (
            vec![
                "export".into(),
                "--checkpoint".into(),
                absurd.clone(),
                "--out".into(),
                out("x.tinf"),
            ],
            "embedding size",
        ),
        (
            vec![
                "export".into(),
                "--checkpoint".into(),
                empty.clone(),
                "--out".into(),
                out("x.tinf"),
            ],
            "embedding size 0",
        ),
        (
            vec![
                "export".into(),
                "--checkpoint".into(),
                nan.clone(),
                "--out".into(),
                out("x.tinf"),
            ],
            "nan.json",
        ),
        (vec!["rank".into(), absurd.clone()], "embedding size"),
        // Outputs that cannot be written: nothing is written at all.
        (
            vec![
                "export".into(),
                "--checkpoint".into(),
                good_lm.clone(),
                "--out".into(),
                out("x.tinf"),
                "--hex".into(),
                out("nodir/x.hex"),
            ],
            "--hex",
        ),
        (
            vec![
                "export".into(),
                "--checkpoint".into(),
                good_lm.clone(),
                "--out".into(),
                out("x.tinf"),
                "--hex".into(),
                out("x.hex"),
                "--base".into(),
                "0xFFFFFFFF".into(),
            ],
            "--base",
        ),
        (
            vec![
                "export".into(),
                "--checkpoint".into(),
                good_lm.clone(),
                "--out".into(),
                out("nodir/x.tinf"),
            ],
            "does not exist",
        ),
        (
            vec![
                "sample".into(),
                density.clone(),
                "--out".into(),
                out("nodir/s.png"),
            ],
            "does not exist",
        ),
        // A device node is never replaced by an atomic rename (one once
        // turned /dev/null into a regular file on this machine).
        (
            vec![
                "sample".into(),
                density.clone(),
                "--count".into(),
                "1".into(),
                "--out".into(),
                "/dev/null".into(),
            ],
            "not a regular file",
        ),
        (
            vec![
                "export".into(),
                "--checkpoint".into(),
                good_lm.clone(),
                "--out".into(),
                "/dev/null".into(),
            ],
            "not a regular file",
        ),
        // Oversized and zero counts.
        (
            vec![
                "generate".into(),
                lm_blob.clone(),
                "--tokens".into(),
                "18446744073709551615".into(),
            ],
            "--tokens",
        ),
        (
            vec![
                "generate".into(),
                lm_blob.clone(),
                "--tokens".into(),
                "1000000000000".into(),
            ],
            "--tokens",
        ),
        (
            vec![
                "generate".into(),
                lm_blob.clone(),
                "--tokens".into(),
                "0".into(),
            ],
            "--tokens",
        ),
        (
            vec![
                "sample".into(),
                density.clone(),
                "--count".into(),
                "100000000000".into(),
                "--out".into(),
                out("s.png"),
            ],
            "--count",
        ),
        (
            vec![
                "anomaly".into(),
                density.clone(),
                "--count".into(),
                "100000000000".into(),
            ],
            "--count",
        ),
        (
            vec!["eval".into(), density.clone(), "--limit".into(), "0".into()],
            "--limit",
        ),
        (
            vec![
                "rank".into(),
                good_lm.clone(),
                "--contexts".into(),
                "99999999999".into(),
            ],
            "--contexts",
        ),
        // Bad flags.
        (
            vec!["eval".into(), golden.clone(), "--bogus".into()],
            "--bogus",
        ),
        (
            vec!["export".into(), "--out".into(), out("x.tinf")],
            "--checkpoint",
        ),
        (
            vec![
                "sample".into(),
                density.clone(),
                "--count".into(),
                "many".into(),
                "--out".into(),
                out("s.png"),
            ],
            "many",
        ),
        // Models that do not fit the data they would be run on.
        (vec!["eval".into(), golden.clone()], "28×28×1"),
        // A data directory without the data set, and a truncated IDX.
        (
            vec!["eval".into(), density.clone(), "--data".into(), idx.clone()],
            "mnist",
        ),
        (
            vec![
                "train".into(),
                "--data".into(),
                idx.clone(),
                "--epochs".into(),
                "1".into(),
                "--out".into(),
                out("run"),
            ],
            "idx",
        ),
    ];
    for (args, expect) in &table {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&args, expect);
    }
    // No partial output: none of the refused commands left a file behind.
    let mut left: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    left.sort();
    let inputs = [
        "absurd.json",
        "corrupt.json",
        "cut.ckpt",
        "density.ckpt",
        "empty.json",
        "flags.ckpt",
        "idx",
        "lm.json",
        "nan.json",
        "notes.txt",
    ];
    assert_eq!(left, inputs, "files left behind in {}", d.display());
    let null = std::fs::symlink_metadata("/dev/null").unwrap();
    assert!(!null.is_file(), "/dev/null was replaced by a regular file");
}

/// A valid export works, and sweeps a stale temp file of the same output
/// that a killed export left (its PID no longer runs); `--seed u64::MAX`
/// is printed as given.
#[test]
fn export_sweeps_stale_temps_and_seeds_wrap() {
    let d = scratch("sweep");
    let ckpt = d.join("lm.json");
    std::fs::write(&ckpt, tiny_lm("1", "[0.1,0.2]")).unwrap();
    // PIDs are below 2^22 on Linux: this one cannot be running.
    let stale = d.join(".m.tinf.tmp4294967295");
    std::fs::write(&stale, b"half a blob").unwrap();
    let m = d.join("m.tinf");
    run(&[
        "export",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--out",
        m.to_str().unwrap(),
    ]);
    assert!(m.exists());
    assert!(!stale.exists(), "the stale temp file was not swept");
    let out = run(&[
        "generate",
        m.to_str().unwrap(),
        "--tokens",
        "3",
        "--seed",
        "18446744073709551615",
        "--json",
    ]);
    let j = common::json(&out);
    assert_eq!(j["seed"], serde_json::json!(u64::MAX));
}
