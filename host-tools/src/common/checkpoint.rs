//! The family tag of a checkpoint.
//!
//! Every checkpoint the trainers write is, or has beside it, a JSON object
//! whose `"family"` key names the family that wrote it (`"classifier"`,
//! `"density"`, `"language"`: the registry's names). `tinyinfer export` reads
//! that tag to pick the family; nothing is recognised by a file's extension
//! or by which other keys it has.
//!
//! Where the tag lives: a PixelCNN or language-model checkpoint is one JSON
//! file (the tag is its first key); a DiracNet checkpoint is burn's `.bpk`
//! record plus its `.json` sidecar (same stem), which holds the tag. A run
//! directory stands for its `final.json`, which every trainer writes.
//!
//! Checkpoints written before the tag existed have none: `export` refuses
//! them with an error that names `--family`, which supplies the family for
//! such a file. A family's own loader accepts an untagged checkpoint of its
//! own format, and refuses one tagged with another family.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct Tagged<'a, T> {
    family: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

#[derive(Deserialize)]
struct Tag {
    family: Option<String>,
}

/// `body` as a compact JSON object with the tag `family` first.
///
/// # Errors
/// Serialization errors.
pub fn to_json<T: Serialize>(family: &str, body: &T) -> Result<String> {
    Ok(serde_json::to_string(&Tagged { family, body })?)
}

/// `body` as a pretty JSON object with the tag `family` first.
///
/// # Errors
/// Serialization errors.
pub fn to_json_pretty<T: Serialize>(family: &str, body: &T) -> Result<String> {
    Ok(serde_json::to_string_pretty(&Tagged { family, body })?)
}

/// Writes `body` with the tag `family` first, as compact JSON, to `w`.
///
/// # Errors
/// Serialization or I/O errors.
pub fn write_json<T: Serialize>(w: impl Write, family: &str, body: &T) -> Result<()> {
    Ok(serde_json::to_writer(w, &Tagged { family, body })?)
}

/// The JSON file holding a checkpoint's tag: `final.json` in a run
/// directory, the `.json` sidecar of a `.bpk`, or the JSON checkpoint itself.
pub fn tag_file(checkpoint: &Path) -> PathBuf {
    if checkpoint.is_dir() {
        checkpoint.join("final.json")
    } else {
        checkpoint.with_extension("json")
    }
}

/// The tag of JSON checkpoint text (None: written before tags).
///
/// # Errors
/// Text that is not a JSON object, or a tag that is not a string.
pub fn tag_of(text: &str) -> Result<Option<String>> {
    Ok(serde_json::from_str::<Tag>(text)?.family)
}

/// The family tag of a checkpoint (see [`tag_file`]); None for an untagged one.
///
/// # Errors
/// A missing or unreadable file, or one that is not a JSON object, naming it.
pub fn read_tag(checkpoint: &Path) -> Result<Option<String>> {
    if !checkpoint.exists() {
        bail!("checkpoint {} does not exist", checkpoint.display());
    }
    let ext = checkpoint.extension().and_then(|e| e.to_str());
    if !checkpoint.is_dir() && !matches!(ext, Some("json" | "bpk")) {
        bail!(
            "{} is not a checkpoint: expected a .json checkpoint, a .bpk with its .json \
             sidecar, or a run directory",
            checkpoint.display()
        );
    }
    let file = tag_file(checkpoint);
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("reading checkpoint {}", file.display()))?;
    tag_of(&text).with_context(|| format!("{} is not a JSON checkpoint", file.display()))
}

/// Refuses checkpoint text tagged with another family than `family`.
///
/// # Errors
/// A tag naming another family, or text that is not a JSON object.
pub fn expect_family(text: &str, path: &Path, family: &str) -> Result<()> {
    match tag_of(text).with_context(|| format!("{} is not a JSON checkpoint", path.display()))? {
        Some(t) if t != family => {
            bail!("{} is a {t} checkpoint, not a {family} one", path.display())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Body {
        side: u32,
    }

    #[test]
    fn the_tag_comes_first_and_reads_back() {
        let text = to_json("density", &Body { side: 28 }).unwrap();
        assert_eq!(text, r#"{"family":"density","side":28}"#);
        assert_eq!(tag_of(&text).unwrap().as_deref(), Some("density"));
        assert_eq!(tag_of(r#"{"side":28}"#).unwrap(), None);
        assert!(tag_of("[1, 2]").is_err());
        let p = Path::new("x.json");
        assert!(expect_family(&text, p, "density").is_ok());
        assert!(expect_family(r#"{"side":28}"#, p, "density").is_ok());
        let err = expect_family(&text, p, "language").unwrap_err().to_string();
        assert!(err.contains("density checkpoint"), "{err}");
    }

    #[test]
    fn the_tag_of_a_bpk_is_in_its_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(tag_file(dir.path()), dir.path().join("final.json"));
        let bpk = dir.path().join("epoch-001.bpk");
        assert_eq!(tag_file(&bpk), dir.path().join("epoch-001.json"));
        std::fs::write(
            dir.path().join("epoch-001.json"),
            r#"{"family":"classifier"}"#,
        )
        .unwrap();
        // The sidecar alone is not a checkpoint: the .bpk must exist too.
        assert!(read_tag(&bpk).is_err());
        std::fs::write(&bpk, b"weights").unwrap();
        assert_eq!(read_tag(&bpk).unwrap().as_deref(), Some("classifier"));
        assert!(read_tag(&dir.path().join("missing.bpk")).is_err());
    }
}
