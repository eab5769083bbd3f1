//! A small PixelCNN (van den Oord et al. 2016) for binarized MNIST: the float model in
//! burn, its trainer, and a plain-Rust float form ([`PixelCnnF`]) that the int8
//! quantizer/exporter consumes.
//!
//! Architecture: a mask-A k×k conv (1 → C, ReLU), residual bottleneck blocks
//! (`relu(a + expand(conv_B(reduce(a))))`, 1×1 / k×k mask B / 1×1), a 1×1 head with one
//! hidden ReLU layer and a 1-channel logit per pixel. The model is causal in raster order:
//! the logit of pixel j depends only on pixels before j.
//!
//! # Output of `tinyinfer train-pixelcnn --out DIR`
//! * `DIR/epoch-N.json` after every epoch and `DIR/final.json` ([`PixelCnnF`]),
//! * `DIR/summary.json` ([`PixelCnnSummary`]).

pub mod data;
pub mod float;
pub mod model;
pub mod train;

pub use data::{
    binarize, load_binarized_mnist, load_mnist_images, shared_data_dir, BinImages, BinSplit,
};
pub use float::{BlockF, ConvF, Mask, PixelCnnF};
pub use model::{MaskedConv, PixelCnn, PixelCnnConfig, ResBlock};
pub use train::{float_test_nll, mean_nll, run, EpochStats, PixelCnnArgs, PixelCnnSummary};

#[cfg(test)]
mod tests;
