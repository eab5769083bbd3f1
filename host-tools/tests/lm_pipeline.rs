//! Language models end to end through the CLI on real Tiny Shakespeare: a
//! short training run, export, inspect, eval (float against int8 through the
//! core), generate, rank; then bad input at every step.

use std::path::PathBuf;
use std::process::Output;
use std::sync::OnceLock;

use serde_json::Value;

mod common;
use common::{fail, run};

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

struct Trained {
    dir: PathBuf,
    ckpt: PathBuf,
    model: PathBuf,
}

/// One small MoS run shared by the tests: 60,000 characters, one epoch.
fn trained() -> &'static Trained {
    static T: OnceLock<Trained> = OnceLock::new();
    T.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tinyinfer-lm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.to_str().unwrap();
        run(&[
            "train-lm",
            "--dataset",
            "shakespeare",
            "--head",
            "mos",
            "--k",
            "3",
            "--emb",
            "16",
            "--hidden",
            "48",
            "--bptt",
            "25",
            "--batch",
            "16",
            "--epochs",
            "1",
            "--lr",
            "0.01",
            "--train-limit",
            "60000",
            "--valid-limit",
            "2000",
            "--no-test",
            "--quiet",
            "--out",
            d,
        ]);
        let ckpt = dir.join("final.json");
        let model = dir.join("model.tinf");
        run(&[
            "export",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
        ]);
        Trained { dir, ckpt, model }
    })
}

#[test]
fn eval_reports_int8_against_float_and_learns_past_the_unigram() {
    let t = trained();
    let out = run(&[
        "eval",
        t.model.to_str().unwrap(),
        "--checkpoint",
        t.ckpt.to_str().unwrap(),
        "--limit",
        "3000",
        "--json",
    ]);
    let r = json(&out);
    for key in [
        "int8_perplexity",
        "float_perplexity",
        "params",
        "blob_bytes",
        "arena_bytes",
        "head",
        "k",
    ] {
        assert!(r.get(key).is_some(), "eval --json lacks {key}: {r}");
    }
    assert_eq!(r["head"], "mos");
    assert_eq!(r["k"], 3);
    assert_eq!(r["tokens"], 3000);
    let (q, f) = (
        r["int8_perplexity"].as_f64().unwrap(),
        r["float_perplexity"].as_f64().unwrap(),
    );
    assert!((q / f - 1.0).abs() < 0.02, "int8 {q} vs float {f}");
    // The unigram perplexity of the validation text is 28.4.
    assert!(f < 20.0, "float perplexity {f}: no better than the unigram");
    let ins = run(&["inspect", t.model.to_str().unwrap(), "--json"]);
    let i = json(&ins);
    assert_eq!(i["family"], "LanguageModel");
    assert_eq!(i["blob_bytes"], r["blob_bytes"]);
}

#[test]
fn generate_is_seeded_and_rank_breaks_the_bound() {
    let t = trained();
    let m = t.model.to_str().unwrap();
    let g = |seed: &str| {
        json(&run(&[
            "generate", m, "--prompt", "KING", "--tokens", "80", "--seed", seed, "--json",
        ]))
    };
    let (a, b, c) = (g("3"), g("3"), g("4"));
    assert_eq!(a["tokens"], b["tokens"]);
    assert_eq!(a["text"], b["text"]);
    assert_ne!(a["tokens"], c["tokens"]);
    assert_eq!(a["text"].as_str().unwrap().chars().count(), 80);
    let r = json(&run(&[
        "rank",
        t.ckpt.to_str().unwrap(),
        "--contexts",
        "200",
        "--json",
    ]));
    // d = 16: a softmax head would be bounded by 18; MoS reaches the vocabulary.
    assert_eq!(r["full_rank"], 65);
    assert!(r["rank"].as_u64().unwrap() > 18, "{r}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let t = trained();
    let m = t.model.to_str().unwrap();
    // A prompt character outside the vocabulary.
    assert!(fail(&["generate", m, "--prompt", "ab~", "--tokens", "3"]).contains("byte 2"));
    // A truncated and a flipped blob.
    let bytes = std::fs::read(&t.model).unwrap();
    let bad = t.dir.join("bad.tinf");
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    assert!(fail(&["generate", bad.to_str().unwrap()]).contains("invalid model"));
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 3] ^= 0x40;
    std::fs::write(&bad, &flipped).unwrap();
    assert!(fail(&["eval", bad.to_str().unwrap()]).contains("CRC"));
    // A checkpoint that is not one, and a corpus with the wrong vocabulary.
    let junk = t.dir.join("junk.json");
    std::fs::write(&junk, b"{\"vocab\": [], \"layers\": 3}").unwrap();
    let out = t.dir.join("never.tinf");
    let err = fail(&[
        "export",
        "--checkpoint",
        junk.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("LM checkpoint"), "{err}");
    assert!(!out.exists(), "a failed export left a file");
    // A missing data directory names the path.
    let err = fail(&["eval", m, "--data", "/nonexistent/data"]);
    assert!(err.contains("/nonexistent/data"), "{err}");
}
