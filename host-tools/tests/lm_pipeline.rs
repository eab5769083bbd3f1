//! Language models end to end through the CLI on real Tiny Shakespeare: a
//! short training run, export, inspect, eval (float against int8 through the
//! core), generate, rank; then bad input at every step.

mod common;
use common::{fail, json, run, Trained};

/// One small MoS run shared by the tests: 60,000 characters, one epoch.
fn trained() -> &'static Trained {
    common::trained(
        "lm",
        "train-lm --dataset shakespeare --head mos --k 3 --emb 16 --hidden 48 --bptt 25 --batch 16 --epochs 1 --lr 0.01 --train-limit 60000 --valid-limit 2000 --no-test",
        "final.json",
        "",
    )
}

#[test]
fn eval_reports_int8_against_float_and_learns_past_the_unigram() {
    let t = trained();
    let r = t.eval_json(3000);
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
    std::fs::write(
        &junk,
        b"{\"family\": \"language\", \"vocab\": [], \"layers\": 3}",
    )
    .unwrap();
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

#[test]
fn export_follows_the_checkpoint_family_tag() {
    let t = trained();
    let text = std::fs::read_to_string(&t.ckpt).unwrap();
    assert!(
        text.starts_with(r#"{"family":"language","#),
        "{}",
        &text[..40]
    );
    // A checkpoint from before the tag: refused without --family, the same blob with it.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("family");
    let old = t.dir.join("untagged.json");
    std::fs::write(&old, v.to_string()).unwrap();
    let out = t.dir.join("untagged.tinf");
    let (o, m) = (old.to_str().unwrap(), out.to_str().unwrap());
    let err = fail(&["export", "--checkpoint", o, "--out", m]);
    assert!(
        err.contains("no family tag") && err.contains("--family"),
        "{err}"
    );
    assert!(!out.exists(), "a failed export left a file");
    run(&[
        "export",
        "--checkpoint",
        o,
        "--out",
        m,
        "--family",
        "language",
    ]);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&t.model).unwrap()
    );
    // A tag that disagrees with --family, an unknown family, another family's loader.
    let c = t.ckpt.to_str().unwrap();
    let err = fail(&[
        "export",
        "--checkpoint",
        c,
        "--out",
        m,
        "--family",
        "density",
    ]);
    assert!(err.contains("language checkpoint"), "{err}");
    let err = fail(&["export", "--checkpoint", o, "--out", m, "--family", "nope"]);
    assert!(err.contains("classifier, density, language"), "{err}");
    let other = t.dir.join("density.json");
    std::fs::write(&other, br#"{"family": "density", "side": 28}"#).unwrap();
    let err = fail(&["rank", other.to_str().unwrap()]);
    assert!(
        err.contains("is a density checkpoint, not a language one"),
        "{err}"
    );
}

#[test]
fn export_selftest_and_repack_lm_write_the_same_checked_cases() {
    let t = trained();
    let (m, c) = (t.model.to_str().unwrap(), t.ckpt.to_str().unwrap());
    let with = t.dir.join("with-selftest.tinf");
    let w = with.to_str().unwrap();
    run(&["export", "--checkpoint", c, "--out", w, "--selftest", "3"]);
    let inspect = json(&run(&["inspect", w, "--json"]));
    assert_eq!(inspect["selftest_cases"], 3, "{inspect:#}");
    // The same cases from the plain blob, without the checkpoint: the
    // records depend on the weights only.
    let repacked = t.dir.join("repacked.tinf");
    let r = repacked.to_str().unwrap();
    run(&["repack-lm", m, "--out", r, "--selftest", "3"]);
    assert_eq!(
        std::fs::read(&with).unwrap(),
        std::fs::read(&repacked).unwrap()
    );
    // Without cases: the plain export (it carries the sorted index already).
    run(&["repack-lm", m, "--out", r]);
    assert_eq!(
        std::fs::read(&t.model).unwrap(),
        std::fs::read(&repacked).unwrap()
    );
    // The run directory stands for its final.json, as `export --help` says.
    let from_dir = t.dir.join("from-dir.tinf");
    let d = t.dir.to_str().unwrap();
    run(&[
        "export",
        "--checkpoint",
        d,
        "--out",
        from_dir.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(&t.model).unwrap(),
        std::fs::read(&from_dir).unwrap()
    );
    // Bad input: not a language model, too many cases; nothing written.
    let never = t.dir.join("never-repacked.tinf");
    let n = never.to_str().unwrap();
    let dirac = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/bench/diracnet-micro.tinf"
    );
    let err = fail(&["repack-lm", dirac, "--out", n]);
    assert!(err.contains("not a language model"), "{err}");
    let err = fail(&["repack-lm", m, "--out", n, "--selftest", "5000"]);
    assert!(err.contains("5000"), "{err}");
    assert!(!never.exists(), "a failed repack left a file");
}
