//! Host tools for tinyinfer: training (burn, with mixup), calibration,
//! quantization, export, evaluation and inspection of the three model
//! families, and running the firmware on QEMU or a board.
//!
//! The quantized model always runs through the same `tinyinfer` core that
//! runs on the device.
//!
//! * [`families`]: one folder per model family (classifier, density,
//!   language) behind the [`families::Family`] registry.
//! * [`common`]: what the families share (blob writing, data paths and IDX,
//!   calibration and buffer planning, trainer scaffolding, metrics).
//! * [`device`]: the firmware on QEMU (`simulate`) and on a board (`flash`).

pub mod common;
pub mod device;
pub mod families;
