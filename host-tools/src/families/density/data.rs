//! Data for the PixelCNN: the fixed binarized MNIST benchmark (50k/10k/10k) and raw
//! MNIST images with a seeded stochastic binarization, all read from the shared data
//! directory (see `../shared/data/README.md`).

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::data::{read_idx, DATA_ENV};

/// Side length of a (binarized) MNIST image.
pub const SIDE: usize = 28;
/// Pixels per image.
pub const PIXELS: usize = SIDE * SIDE;
/// A split of the fixed binarized MNIST set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinSplit {
    /// 50,000 training images.
    Train,
    /// 10,000 validation images.
    Valid,
    /// 10,000 test images (the MNIST test set, ordered by class).
    Test,
}

impl BinSplit {
    /// File-name part of the split.
    pub fn name(self) -> &'static str {
        match self {
            BinSplit::Train => "train",
            BinSplit::Valid => "valid",
            BinSplit::Test => "test",
        }
    }

    /// Number of images the split must hold.
    pub fn expected_len(self) -> usize {
        match self {
            BinSplit::Train => 50_000,
            BinSplit::Valid | BinSplit::Test => 10_000,
        }
    }
}

/// Binary images, 28×28, one byte (0 or 1) per pixel, stored flat.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BinImages {
    /// `len * PIXELS` bytes, each 0 or 1, row-major, image after image.
    pub pixels: Vec<u8>,
    /// Number of images.
    pub len: usize,
}

impl BinImages {
    /// Wraps a flat buffer of 0/1 pixels.
    ///
    /// # Errors
    /// A buffer that is not a whole number of images, or a value other than 0/1.
    pub fn from_flat(pixels: Vec<u8>) -> Result<Self> {
        ensure!(
            pixels.len().is_multiple_of(PIXELS),
            "{} bytes is not a whole number of {PIXELS}-pixel images",
            pixels.len()
        );
        if let Some(i) = pixels.iter().position(|&p| p > 1) {
            bail!(
                "pixel {} of image {} is {}, expected 0 or 1",
                i % PIXELS,
                i / PIXELS,
                pixels[i]
            );
        }
        let len = pixels.len() / PIXELS;
        Ok(BinImages { pixels, len })
    }

    /// The pixels of image `i` (panics if `i >= len`, like slice indexing).
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * PIXELS..(i + 1) * PIXELS]
    }

    /// The first `n` images (or all, if fewer).
    pub fn take(&self, n: usize) -> BinImages {
        let n = n.min(self.len);
        BinImages {
            pixels: self.pixels[..n * PIXELS].to_vec(),
            len: n,
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn missing(path: &Path, what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what} file {} not found: the data sets live in the shared data directory \
         (see ../shared/data/README.md for where they come from and how they are checked); \
         set ${DATA_ENV} or pass --data DIR pointing at that directory",
        path.display()
    )
}

/// Loads one split of the fixed binarized MNIST set from
/// `<data_dir>/binarized_mnist/binarized_mnist_<split>-images-idx3-ubyte.gz`.
///
/// # Errors
/// A missing file (the message names the path and where to get the data), a malformed
/// IDX file, a wrong image count or size, or a pixel value other than 0/1.
pub fn load_binarized_mnist(data_dir: &Path, split: BinSplit) -> Result<BinImages> {
    let path = data_dir.join(format!(
        "binarized_mnist/binarized_mnist_{}-images-idx3-ubyte.gz",
        split.name()
    ));
    if !path.is_file() {
        return Err(missing(&path, "binarized MNIST"));
    }
    let idx = read_idx(&path, 3)?;
    ensure!(
        idx.dims[1..] == [SIDE, SIDE],
        "{}: images must be 28x28, got {:?}",
        path.display(),
        idx.dims
    );
    ensure!(
        idx.dims[0] == split.expected_len(),
        "{}: {} images, the {} split must have {}",
        path.display(),
        idx.dims[0],
        split.name(),
        split.expected_len()
    );
    BinImages::from_flat(idx.data).with_context(|| format!("checking {}", path.display()))
}

/// Loads raw MNIST images (0..=255, flat, `n * 784` bytes) from
/// `<data_dir>/mnist/{train,t10k}-images-idx3-ubyte.gz`.
///
/// # Errors
/// A missing file (naming the path), a malformed IDX file or wrong image size.
pub fn load_mnist_images(data_dir: &Path, test: bool) -> Result<Vec<u8>> {
    let prefix = if test { "t10k" } else { "train" };
    let path = data_dir.join(format!("mnist/{prefix}-images-idx3-ubyte.gz"));
    if !path.is_file() {
        return Err(missing(&path, "MNIST"));
    }
    let idx = read_idx(&path, 3)?;
    ensure!(
        idx.dims[1..] == [SIDE, SIDE],
        "{}: images must be 28x28, got {:?}",
        path.display(),
        idx.dims
    );
    Ok(idx.data)
}

/// Stochastic binarization: pixel `p` becomes 1 with probability exactly `p/255`
/// (1 iff a uniform draw from `0..255` is below `p`), one draw per pixel in order from a
/// `StdRng` seeded with `seed` — the same method as the fixed binarized set, and
/// deterministic for a given seed (and `rand` version).
pub fn binarize(images: &[u8], seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    images
        .iter()
        .map(|&p| (rng.random_range(0u32..255) < p as u32) as u8)
        .collect()
}
