//! Writing and reading `.tinf` files and their flashable images: aligned
//! model bytes, atomic writes, Intel HEX at a flash address.
//!
//! Writes are atomic: bytes go to a temporary file in the target's directory,
//! are synced, and are renamed over the target. A failed export leaves any
//! earlier good file untouched.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tinyinfer::format::Model;

/// Base address of the nRF52840-DK MODEL flash partition (see firmware/memory-nrf52840-dk.x).
pub const DEFAULT_HEX_BASE: u32 = 0x0004_0000;

/// Parses a flash address: `0x`-prefixed hex (underscores allowed) or decimal.
///
/// # Errors
/// A message naming the text that is not an address.
pub fn parse_addr(s: &str) -> Result<u32, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(&h.replace('_', ""), 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("bad address {s:?}: {e}"))
}

/// Model bytes held 4-byte aligned, as the core requires (flash partitions are).
#[derive(Clone, Debug)]
pub struct AlignedBlob {
    words: Vec<u32>,
    len: usize,
}

impl AlignedBlob {
    /// Copies `bytes` into aligned storage.
    pub fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        AlignedBlob {
            words,
            len: bytes.len(),
        }
    }

    /// Reads a file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes =
            std::fs::read(path).with_context(|| format!("reading model {}", path.display()))?;
        Ok(Self::new(&bytes))
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u32, u8>(&self.words)[..self.len]
    }

    /// Checks the blob with the core.
    pub fn model(&self) -> Result<Model<'_>> {
        Model::new_checked(self.bytes()).map_err(|e| anyhow::anyhow!("invalid model: {e}"))
    }
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        bail!("output directory {} does not exist", dir.display());
    }
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    refuse_special(path)?;
    sweep_stale_temps(&dir, &name.to_string_lossy());
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> Result<()> {
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes `.NAME.tmpPID` files in `dir` left by a [`write_atomic`] of the
/// same output whose process no longer runs (killed mid-write: nothing
/// could clean up then). A temp file of a live process is left alone.
fn sweep_stale_temps(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(pid) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if !process_alive(pid) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Whether process `pid` runs (`/proc/PID`; without `/proc` we cannot
/// tell, and the file is kept).
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    if proc.is_dir() {
        proc.join(pid.to_string()).exists()
    } else {
        // Without /proc we cannot tell: keep the file.
        true
    }
}

/// Checks that `path` can be written by [`write_atomic`]: its directory
/// exists and it names a file. Commands call this for every output before
/// they write the first one, so a bad second path leaves nothing behind.
pub fn check_output_path(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!("output directory {} does not exist", dir.display());
    }
    if path.file_name().is_none() || path.is_dir() {
        bail!("{} is not a file path", path.display());
    }
    refuse_special(path)
}

/// An existing output must be a regular file: an atomic write renames over
/// it, which would replace a device node (`/dev/null`), a FIFO or a socket
/// with a regular file.
fn refuse_special(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.is_file() => bail!(
            "{} exists and is not a regular file: refusing to replace it",
            path.display()
        ),
        _ => Ok(()),
    }
}

/// Intel HEX of `bytes` placed at `base` (extended linear address records, 16 data bytes a line).
///
/// # Errors
/// An image that runs past the 32-bit address space.
pub fn intel_hex(bytes: &[u8], base: u32) -> Result<String> {
    intel_hex_segments(&[(base, bytes)])
}

/// Intel HEX of several segments, each at its address, in the order given
/// (a slot image: the model, then its trailer at the slot's end).
///
/// # Errors
/// A segment that runs past the 32-bit address space.
pub fn intel_hex_segments(segments: &[(u32, &[u8])]) -> Result<String> {
    use ihex::Record;
    let mut records = Vec::new();
    let mut upper = None;
    for &(base, bytes) in segments {
        let end = base as u64 + bytes.len() as u64;
        if end > 1u64 << 32 {
            bail!(
                "image of {} bytes at {base:#x} does not fit a 32-bit address space",
                bytes.len()
            );
        }
        for (i, chunk) in bytes.chunks(16).enumerate() {
            let addr = base as u64 + (i * 16) as u64;
            let hi = (addr >> 16) as u16;
            if upper != Some(hi) {
                records.push(Record::ExtendedLinearAddress(hi));
                upper = Some(hi);
            }
            // A 16-byte chunk at a 16-aligned-from-base address may straddle a 64 KiB boundary.
            let lo = (addr & 0xFFFF) as usize;
            if lo + chunk.len() > 0x1_0000 {
                let split = 0x1_0000 - lo;
                records.push(Record::Data {
                    offset: lo as u16,
                    value: chunk[..split].to_vec(),
                });
                records.push(Record::ExtendedLinearAddress(hi + 1));
                upper = Some(hi + 1);
                records.push(Record::Data {
                    offset: 0,
                    value: chunk[split..].to_vec(),
                });
            } else {
                records.push(Record::Data {
                    offset: lo as u16,
                    value: chunk.to_vec(),
                });
            }
        }
    }
    records.push(Record::EndOfFile);
    let mut s = ihex::create_object_file_representation(&records).context("encoding Intel HEX")?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrips_across_64k_boundary() {
        let bytes: Vec<u8> = (0..100u32).map(|i| i as u8).collect();
        let base = 0x000F_FFF8;
        let hex = intel_hex(&bytes, base).unwrap();
        let mut got = vec![0u8; bytes.len()];
        let mut upper = 0u32;
        for rec in ihex::Reader::new(&hex) {
            match rec.unwrap() {
                ihex::Record::ExtendedLinearAddress(h) => upper = (h as u32) << 16,
                ihex::Record::Data { offset, value } => {
                    let a = (upper + offset as u32 - base) as usize;
                    got[a..a + value.len()].copy_from_slice(&value);
                }
                ihex::Record::EndOfFile => {}
                r => panic!("unexpected record {r:?}"),
            }
        }
        assert_eq!(got, bytes);
    }

    #[test]
    fn atomic_write_keeps_old_file_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.tinf");
        write_atomic(&p, b"good").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"good");
        // A directory where the target should be makes the rename fail.
        let blocked = dir.path().join("d");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), b"x").unwrap();
        assert!(write_atomic(&blocked, b"new").is_err());
        assert!(write_atomic(&dir.path().join("missing/m.tinf"), b"new").is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"good");
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn addresses_parse_in_hex_and_decimal() {
        assert_eq!(parse_addr("0x0004_0000"), Ok(DEFAULT_HEX_BASE));
        assert_eq!(parse_addr("262144"), Ok(DEFAULT_HEX_BASE));
        assert!(parse_addr("0xZZ").is_err());
    }

    #[test]
    fn aligned_blob_is_aligned() {
        let b = AlignedBlob::new(&[1, 2, 3, 4, 5]);
        assert_eq!(b.bytes(), &[1, 2, 3, 4, 5]);
        assert_eq!(b.bytes().as_ptr() as usize % 4, 0);
    }
}
