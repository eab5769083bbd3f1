//! Drivers, one per model family, over a checked [`Model`](crate::format::Model).
//!
//! A driver owns no memory: it borrows the model and the caller's arena,
//! runs the ops in the order the exporter stored them, and interprets the
//! output. It must not re-derive anything the exporter already computed.

mod classifier;
mod density;
mod graph;
mod language;

pub use classifier::{Classifier, Prediction, SelfTestReport};
pub use density::{DensityModel, Nll};
pub use graph::Observer;
pub use language::{LanguageModel, LogProb, Session};
