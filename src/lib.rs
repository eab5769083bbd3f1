//! # tinyinfer
//!
//! `no_std`, allocation-free int8 inference for models from papers —
//! DiracNet classifiers today; Mixture-of-Softmaxes language models and
//! PixelCNN density models next — on microcontrollers.
//!
//! The layers, in the order data flows through them:
//!
//! - [`format`]: the `.tinf` blob. [`format::Model::new_checked`] verifies
//!   magic, version, CRC-32, every offset, length, shape, alignment, op
//!   parameter and the buffer plan; afterwards no accessor can panic.
//! - [`quant`]: fixed-point requantization with one documented rounding mode.
//! - [`kernels`]: the reference int8 kernels (TFLite int8 spec), plain free
//!   functions over slices, and the `fast` ones the drivers run, which
//!   match them byte for byte.
//! - [`models`]: drivers per family ([`models::Classifier`]) that borrow the
//!   model and a caller-owned arena and never allocate.
//!
//! Contracts: the host tools run models through this same crate, so device
//! and host agree bit for bit; everything computable ahead of time
//! (folding, multipliers, shifts, zero points, the buffer plan and the exact
//! arena size) is computed by the exporter and only read here.
//!
//! ```no_run
//! # fn demo(blob: &[u8], pixels: &[u8; 784]) -> Result<(), tinyinfer::Error> {
//! use tinyinfer::{format::Model, models::Classifier};
//! let model = Model::new_checked(blob)?;
//! let clf = Classifier::new(model)?;
//! let mut arena = [0u8; 16 * 1024];
//! let pred = clf.classify(pixels, &mut arena)?;
//! let mut probs = [0f32; 10];
//! pred.probabilities(&mut probs)?;
//! # Ok(()) }
//! ```
//!
//! Features: `emit` (write models; the host tools enable it), `defmt`
//! (`defmt::Format` for errors and reports), and the families besides the
//! classifier, both default: `density` (the PixelCNN driver and the graph
//! ops only it uses, elementwise add and masked convs) and `language` (the
//! language-model checks and driver). A classifier-only firmware builds
//! without them, which leaves their code out of flash; such a build refuses
//! what it cannot run with a typed error (see `Cargo.toml`).
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod format;
pub mod kernels;
pub mod link;
pub mod models;
pub mod quant;
pub mod rng;

pub use error::{Error, Result};
