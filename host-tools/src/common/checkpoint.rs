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
//!
//! # Resume checkpoints
//! A trainer also writes `resume.ckpt` into its run directory after every
//! epoch ([`encode_resume`]): what `--resume` needs to continue the run. It
//! is one file of three parts, so that it is replaced atomically as a whole:
//!
//! ```text
//! "TINYRSM1" | u64 n, n bytes: JSON (family tag first, then the position,
//!            |   the flags and the per-epoch history)
//!            | u64 n, n bytes: the model's burnpack record (burn ModuleRecord)
//!            | u64 n, n bytes: the optimizer's burnpack record (OptimizerRecord)
//!            | u32 CRC-32 of every byte before it
//! ```
//!
//! All integers are little-endian. A file cut short, with bytes after the
//! checksum, or with a wrong checksum is refused as a whole.

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

/// A JSON checkpoint's file: `final.json` in a run directory, or the path.
pub fn json_file(checkpoint: &Path) -> PathBuf {
    if checkpoint.is_dir() {
        checkpoint.join("final.json")
    } else {
        checkpoint.to_path_buf()
    }
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

/// First bytes of a resume checkpoint.
pub const RESUME_MAGIC: &[u8; 8] = b"TINYRSM1";

/// The three parts of a resume checkpoint (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeParts {
    /// The JSON part: tagged with the family, then the trainer's state.
    pub meta: String,
    /// The model's burnpack record.
    pub model: Vec<u8>,
    /// The optimizer's burnpack record.
    pub optim: Vec<u8>,
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

/// The bytes of a resume checkpoint holding `parts`.
pub fn encode_resume(parts: &ResumeParts) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        RESUME_MAGIC.len() + 28 + parts.meta.len() + parts.model.len() + parts.optim.len(),
    );
    out.extend_from_slice(RESUME_MAGIC);
    for part in [parts.meta.as_bytes(), &parts.model, &parts.optim] {
        out.extend_from_slice(&(part.len() as u64).to_le_bytes());
        out.extend_from_slice(part);
    }
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The parts of the resume checkpoint `bytes` read from `path` (named in errors).
///
/// # Errors
/// Not a resume checkpoint, cut short, trailing bytes, a wrong checksum, or
/// a JSON part that is not UTF-8.
pub fn decode_resume(bytes: &[u8], path: &Path) -> Result<ResumeParts> {
    let p = path.display();
    if bytes.len() < RESUME_MAGIC.len() || &bytes[..RESUME_MAGIC.len()] != RESUME_MAGIC {
        bail!(
            "{p} is not a resume checkpoint (a trainer writes one as resume.ckpt in its run \
             directory after every epoch)"
        );
    }
    let mut at = RESUME_MAGIC.len();
    let mut part = |name: &str| -> Result<Vec<u8>> {
        let len = bytes.get(at..at + 8).with_context(|| {
            format!("{p} is truncated: it ends inside the length of its {name}")
        })?;
        let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
        let start = at + 8;
        let have = (bytes.len() - start) as u64;
        if len > have {
            bail!("{p} is truncated: its {name} is {len} bytes, the file holds {have} more");
        }
        let end = start + len as usize;
        at = end;
        Ok(bytes[start..end].to_vec())
    };
    let meta = part("JSON part")?;
    let model = part("model record")?;
    let optim = part("optimizer record")?;
    match bytes.len() - at {
        4 => {}
        n if n < 4 => bail!("{p} is truncated: it ends inside its checksum"),
        n => bail!("{p} has {} bytes after its checksum", n - 4),
    }
    let want = u32::from_le_bytes(bytes[at..].try_into().expect("4 bytes"));
    if crc32(&bytes[..at]) != want {
        bail!("{p} is corrupt: its CRC-32 does not match its contents");
    }
    let meta =
        String::from_utf8(meta).with_context(|| format!("{p}: the JSON part is not UTF-8"))?;
    Ok(ResumeParts { meta, model, optim })
}

/// Reads the resume checkpoint `path`, or `path/resume.ckpt` for a run
/// directory, and refuses one tagged with another family than `family`.
/// Returns the file read and its parts.
///
/// # Errors
/// A missing or unreadable file, the errors of [`decode_resume`], an
/// untagged JSON part, or another family's tag.
pub fn read_resume(path: &Path, family: &str) -> Result<(PathBuf, ResumeParts)> {
    let file = if path.is_dir() {
        path.join(RESUME_FILE)
    } else {
        path.to_path_buf()
    };
    if !file.exists() {
        bail!("resume checkpoint {} does not exist", file.display());
    }
    let bytes = std::fs::read(&file)
        .with_context(|| format!("reading resume checkpoint {}", file.display()))?;
    let parts = decode_resume(&bytes, &file)?;
    match tag_of(&parts.meta)
        .with_context(|| format!("{}: the JSON part is not a JSON object", file.display()))?
    {
        Some(t) if t == family => Ok((file, parts)),
        Some(t) => bail!("{} is a {t} checkpoint, not a {family} one", file.display()),
        None => bail!("{}: the JSON part has no family tag", file.display()),
    }
}

/// The name of the resume checkpoint in a run directory.
pub const RESUME_FILE: &str = "resume.ckpt";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_files_round_trip_and_refuse_damage() {
        let parts = ResumeParts {
            meta: r#"{"family":"density","epoch":1}"#.into(),
            model: vec![1, 2, 3],
            optim: vec![],
        };
        let bytes = encode_resume(&parts);
        let p = Path::new("r.ckpt");
        assert_eq!(decode_resume(&bytes, p).unwrap(), parts);
        for cut in [0, 7, 8, 12, 20, bytes.len() - 5, bytes.len() - 1] {
            let e = decode_resume(&bytes[..cut], p).unwrap_err().to_string();
            assert!(
                e.contains("truncated") || e.contains("not a resume checkpoint"),
                "cut {cut}: {e}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        let e = decode_resume(&longer, p).unwrap_err().to_string();
        assert!(e.contains("after its checksum"), "{e}");
        let mut flipped = bytes.clone();
        flipped[20] ^= 1; // inside the JSON part
        let e = decode_resume(&flipped, p).unwrap_err().to_string();
        assert!(e.contains("CRC-32"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(RESUME_FILE), &bytes).unwrap();
        let (file, got) = read_resume(dir.path(), "density").unwrap();
        assert_eq!((file, got), (dir.path().join(RESUME_FILE), parts));
        let e = read_resume(dir.path(), "language").unwrap_err().to_string();
        assert!(e.contains("density checkpoint, not a language one"), "{e}");
    }

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
