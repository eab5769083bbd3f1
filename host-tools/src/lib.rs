//! Host tools for tinyinfer: data loading, training (burn, with mixup),
//! folding, quantization, export, evaluation and inspection.
//!
//! The quantized model always runs through the same `tinyinfer` core that
//! runs on the device.

pub mod data;
pub mod density;
pub mod eval;
pub mod export;
#[cfg(feature = "flash")]
pub mod flash;
pub mod float_model;
pub mod lm;
pub mod pixelcnn;
pub mod quantize;
#[cfg(feature = "simulate")]
pub mod simulate;
pub mod train;
