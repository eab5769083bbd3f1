//! Running the `tinyinfer` binary from the CLI tests.
#![allow(dead_code)]

use std::process::{Command, Output};

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
