//! The CLI test harness shared by every `tests/*.rs`: running the
//! `tinyinfer` binary, reading its JSON, and the one training run (and
//! export) each test binary shares between its tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// The binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tinyinfer"))
}

/// Runs `tinyinfer args…`, which must succeed.
pub fn run(args: &[&str]) -> Output {
    let out = bin().args(args).output().expect("run tinyinfer");
    assert!(
        out.status.success(),
        "tinyinfer {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `tinyinfer args…`, which must fail without a panic; returns its stderr.
pub fn fail(args: &[&str]) -> String {
    let out = bin().args(args).output().expect("run tinyinfer");
    assert!(!out.status.success(), "tinyinfer {args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !err.contains("panicked"),
        "tinyinfer {args:?} panicked: {err}"
    );
    err
}

/// The one JSON object a command printed on stdout.
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

/// A short training run and its exported model.
pub struct Trained {
    /// The run's `--out` directory (a fresh one per test process).
    pub dir: PathBuf,
    /// The checkpoint exported.
    pub ckpt: PathBuf,
    /// `dir/model.tinf`, with its Intel HEX image `dir/model.hex`.
    pub model: PathBuf,
}

impl Trained {
    /// `tinyinfer eval MODEL --checkpoint CKPT --limit N --json`: int8 against float.
    pub fn eval_json(&self, limit: usize) -> Value {
        json(&run(&[
            "eval",
            self.model.to_str().unwrap(),
            "--checkpoint",
            self.ckpt.to_str().unwrap(),
            "--limit",
            &limit.to_string(),
            "--json",
        ]))
    }
}

/// The training run the tests of this test binary share, made on first use:
/// `tinyinfer <train> --quiet --out DIR`, then `tinyinfer export
/// --checkpoint DIR/<ckpt> --out DIR/model.tinf --hex DIR/model.hex <export>`,
/// with DIR = `$TMPDIR/tinyinfer-<name>-<pid>`; `train` and `export` are
/// whitespace-separated arguments.
pub fn trained(name: &str, train: &str, ckpt: &str, export: &str) -> &'static Trained {
    static T: OnceLock<Trained> = OnceLock::new();
    T.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tinyinfer-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.to_str().unwrap();
        let train: Vec<&str> = train.split_whitespace().collect();
        run(&[&train[..], &["--quiet", "--out", d]].concat());
        let ckpt = dir.join(ckpt);
        let model = dir.join("model.tinf");
        let hex = dir.join("model.hex");
        let paths = [
            "export",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
            "--hex",
            hex.to_str().unwrap(),
        ];
        let export: Vec<&str> = export.split_whitespace().collect();
        run(&[&paths[..], &export[..]].concat());
        Trained { dir, ckpt, model }
    })
}
