//! Data sets read from disk, never bundled.
//!
//! * Where they live: [`shared_data_dir`] (binarized MNIST, MNIST, Penn
//!   Treebank, Tiny Shakespeare; see `../shared/data/README.md`) and
//!   [`fashion_mnist_dir`] (Debian's `dataset-fashion-mnist` package).
//! * The IDX reader ([`read_idx`], gzip-compressed or not).
//! * Fashion-MNIST, which two families read: the classifier trains on it, the
//!   density model scores it as anomalies.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

/// Where Debian's `dataset-fashion-mnist` installs the data set.
pub const FASHION_MNIST_DEFAULT_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// Environment variable that overrides [`FASHION_MNIST_DEFAULT_DIR`].
pub const FASHION_MNIST_ENV: &str = "TINYINFER_FASHION_MNIST";

/// Environment variable naming the shared data directory.
pub const DATA_ENV: &str = "TINYINFER_DATA";

/// Resolves the shared data directory: the flag, then `$TINYINFER_DATA`, then
/// `../shared/data` relative to the current directory (if it exists), then
/// `<repo root>/../shared/data`.
pub fn shared_data_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os(DATA_ENV) {
        return PathBuf::from(p);
    }
    let rel = PathBuf::from("../shared/data");
    if rel.is_dir() {
        return rel;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

/// Side length of an image in pixels.
pub const SIDE: usize = 28;
/// Pixels per image.
pub const PIXELS: usize = SIDE * SIDE;
/// Number of classes.
pub const CLASSES: usize = 10;
/// Fashion-MNIST class names, by label.
pub const CLASS_NAMES: [&str; CLASSES] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Images as raw u8 pixels (row-major, one byte per pixel) and their labels.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// `len() * PIXELS` bytes.
    pub images: Vec<u8>,
    /// One label in `0..CLASSES` per image.
    pub labels: Vec<u8>,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * PIXELS..(i + 1) * PIXELS]
    }

    /// The first `n` examples (or all, if fewer).
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            images: self.images[..n * PIXELS].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }
}

/// Which split to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// 60,000 training images.
    Train,
    /// 10,000 test images.
    Test,
}

/// Resolves the Fashion-MNIST directory: the flag, then `$TINYINFER_FASHION_MNIST`, then Debian's path.
pub fn fashion_mnist_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os(FASHION_MNIST_ENV) {
        return PathBuf::from(p);
    }
    PathBuf::from(FASHION_MNIST_DEFAULT_DIR)
}

/// Loads one split of Fashion-MNIST from `dir`.
///
/// # Errors
/// A missing directory or file names the Debian package to install; a malformed file names the file.
pub fn load_fashion_mnist(dir: &Path, split: Split) -> Result<Dataset> {
    if !dir.is_dir() {
        bail!(
            "Fashion-MNIST not found at {}: install it with `apt-get install dataset-fashion-mnist` \
             (Debian), or point --data / ${FASHION_MNIST_ENV} at a directory with the IDX files",
            dir.display()
        );
    }
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images = read_idx(&find(dir, &format!("{prefix}-images-idx3-ubyte"))?, 3)?;
    let labels = read_idx(&find(dir, &format!("{prefix}-labels-idx1-ubyte"))?, 1)?;
    ensure!(
        images.dims[1..] == [SIDE, SIDE],
        "Fashion-MNIST images must be 28x28, got {:?}",
        images.dims
    );
    ensure!(
        images.dims[0] == labels.dims[0],
        "image and label counts differ in {}",
        dir.display()
    );
    ensure!(
        labels.data.iter().all(|&l| (l as usize) < CLASSES),
        "label out of range in {}",
        dir.display()
    );
    Ok(Dataset {
        images: images.data,
        labels: labels.data,
    })
}

fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "{stem}[.gz] missing in {}: install `dataset-fashion-mnist` (Debian) or pass the right --data directory",
        dir.display()
    )
}

/// A parsed IDX file of unsigned bytes.
pub struct Idx {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// Row-major payload.
    pub data: Vec<u8>,
}

/// Reads an IDX file of u8 (type 0x08) with `rank` dimensions, gunzipping if the name ends in `.gz`.
///
/// # Errors
/// Unreadable files, a wrong magic, type or rank, or a payload of the wrong length.
pub fn read_idx(path: &Path, rank: usize) -> Result<Idx> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| format!("gunzipping {}", path.display()))?;
        out
    } else {
        raw
    };
    parse_idx(&bytes, rank).with_context(|| format!("parsing IDX file {}", path.display()))
}

/// Parses IDX bytes of u8 (type 0x08) with `rank` dimensions.
///
/// # Errors
/// A wrong magic, type or rank, or a payload of the wrong length.
pub fn parse_idx(bytes: &[u8], rank: usize) -> Result<Idx> {
    ensure!(
        bytes.len() >= 4 + 4 * rank,
        "file too short for an IDX header"
    );
    ensure!(bytes[0] == 0 && bytes[1] == 0, "bad IDX magic");
    ensure!(
        bytes[2] == 0x08,
        "IDX element type {:#x} is not u8",
        bytes[2]
    );
    ensure!(
        bytes[3] as usize == rank,
        "IDX rank {} where {rank} was expected",
        bytes[3]
    );
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .context("IDX size overflows")?;
    let body = &bytes[4 + 4 * rank..];
    ensure!(
        body.len() == n,
        "IDX payload has {} bytes, header says {n}",
        body.len()
    );
    Ok(Idx {
        dims,
        data: body.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idx_roundtrip_and_errors() {
        let mut b = vec![0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3];
        b.extend([1, 2, 3, 4, 5, 6]);
        let idx = parse_idx(&b, 2).unwrap();
        assert_eq!(idx.dims, vec![2, 3]);
        assert_eq!(idx.data, vec![1, 2, 3, 4, 5, 6]);
        assert!(parse_idx(&b[..b.len() - 1], 2).is_err());
        assert!(parse_idx(&b, 3).is_err());
        let mut bad = b.clone();
        bad[2] = 0x0d;
        assert!(parse_idx(&bad, 2).is_err());
    }

    #[test]
    fn missing_dir_names_the_package() {
        let err = load_fashion_mnist(Path::new("/nonexistent/fmnist"), Split::Test).unwrap_err();
        assert!(format!("{err:#}").contains("dataset-fashion-mnist"));
    }
}
