//! LSTM language models with a softmax, mixture-of-contexts (MoC) or mixture-of-softmaxes
//! (MoS, Yang et al. 2017, "Breaking the Softmax Bottleneck") output head, on Penn
//! Treebank (word level) and Tiny Shakespeare (character level).
//!
//! * [`float`]: the plain-Rust float model [`LmF`] — the checkpoint format and the
//!   interface to the int8 quantizer/exporter.
//! * [`data`]: the corpora ([`Corpus`], [`Dataset`]).
//! * [`model`]: the burn model [`LmModel`], exported exactly into [`LmF`].
//! * [`train`]: `tinyinfer train-lm` ([`TrainLmArgs`], [`run`]).
//! * [`quantize`]: [`LmF`] → int8 `.tinf` (the core's `LM` and `VOCAB` sections).
//! * [`run`](mod@run): perplexity through the core, generation, detokenization.
//! * [`rank`]: rank of the log-probability matrix (SVD).
//!
//! # Output of `tinyinfer train-lm --out DIR`
//! * `DIR/epoch-N.json` after every complete epoch and `DIR/final.json` ([`LmF`]),
//! * `DIR/summary.json` ([`LmSummary`]).

pub mod data;
pub mod float;
pub mod model;
pub mod quantize;
pub mod rank;
pub mod run;
pub mod train;

pub use data::{Corpus, Dataset};
pub use float::{HeadKind, Level, LmF};
pub use model::{Dropouts, LmConfig, LmModel};
pub use train::{float_ppl, mean_nll, run, run_on, LmSummary, TrainLmArgs};

#[cfg(test)]
mod core_tests;
#[cfg(test)]
mod tests;
