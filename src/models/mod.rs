//! Drivers, one per model family, over a checked [`Model`](crate::format::Model).
//!
//! A driver owns no memory: it borrows the model and the caller's arena,
//! runs the ops in the order the exporter stored them, and interprets the
//! output. It must not re-derive anything the exporter already computed.

mod classifier;
#[cfg(feature = "density")]
mod density;
mod graph;
#[cfg(feature = "language")]
mod language;

pub use classifier::{Classifier, Prediction, SelfTestReport};
#[cfg(feature = "density")]
pub use density::{DensityModel, Nll};
pub use graph::Observer;
#[cfg(feature = "language")]
pub use language::{LanguageModel, LogProb, Session, SAMPLE_BLOCK};
