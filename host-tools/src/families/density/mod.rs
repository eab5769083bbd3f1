//! The PixelCNN density model (van den Oord et al. 2016) on binarized MNIST.
//!
//! Architecture: a mask-A k×k conv (1 → C, ReLU), residual bottleneck blocks
//! (`relu(a + expand(conv_B(reduce(a))))`, 1×1 / k×k mask B / 1×1), a 1×1 head with one
//! hidden ReLU layer and a 1-channel logit per pixel. The model is causal in raster order:
//! the logit of pixel j depends only on pixels before j.
//!
//! * [`data`]: binarized MNIST, MNIST and their stochastic binarization.
//! * [`model`]: the burn model [`PixelCnn`].
//! * [`float`]: the plain-Rust float form [`PixelCnnF`], the checkpoint format.
//! * [`train`]: `tinyinfer train-pixelcnn` ([`PixelCnnArgs`], [`run`]).
//! * [`quantize`]: calibration and int8 quantization into a density `.tinf`.
//! * [`run`](mod@run): NLL, sampling and anomaly scores through the core.
//! * [`cli`]: `train-pixelcnn`, `sample`, `anomaly`.
//!
//! # Output of `tinyinfer train-pixelcnn --out DIR`
//! * `DIR/epoch-N.json` after every epoch and `DIR/final.json` ([`PixelCnnF`],
//!   tagged `"family": "density"`),
//! * `DIR/summary.json` ([`PixelCnnSummary`]).

pub mod cli;
pub mod data;
pub mod float;
pub mod model;
pub mod quantize;
pub mod run;
pub mod train;

use anyhow::Result;
use tinyinfer::format;

pub use data::{binarize, load_binarized_mnist, load_mnist_images, BinImages, BinSplit};
pub use float::{BlockF, ConvF, Mask, PixelCnnF};
pub use model::{MaskedConv, PixelCnn, PixelCnnConfig, ResBlock};
pub use train::{float_test_nll, mean_nll, run, EpochStats, PixelCnnArgs, PixelCnnSummary};

use crate::common::blob::AlignedBlob;
use crate::common::data::shared_data_dir;
use crate::families::{EvalArgs, ExportArgs, Exported, Family};

/// The family's name: its checkpoint tag.
pub const NAME: &str = "density";

/// The PixelCNN density model in the registry.
pub struct Density;

impl Family for Density {
    fn name(&self) -> &'static str {
        NAME
    }

    fn blob_family(&self) -> format::Family {
        format::Family::Density
    }

    fn export(&self, a: &ExportArgs) -> Result<Exported> {
        let dir = shared_data_dir(a.data.as_deref());
        let ex = quantize::export(&a.checkpoint, &dir, a.calib, a.selftest)?;
        let details = format!(
            "{} bytes, arena {} bytes, sampling arena {} bytes, {} params, calibrated on {} training images, {} self-test cases",
            ex.blob.len(),
            ex.arena_bytes,
            ex.sample_arena_bytes,
            ex.params,
            ex.calibration_images,
            ex.selftest_cases
        );
        Ok(Exported {
            arena_bytes: ex.arena_bytes,
            params: ex.params,
            details,
            blob: ex.blob,
        })
    }

    fn eval(&self, a: &EvalArgs, blob: &AlignedBlob) -> Result<()> {
        cli::eval(a, blob)
    }
}

#[cfg(test)]
mod tests;
