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
//! * [`cli`]: `train-lm`, `generate`, `rank`, and the `eval` output.
//!
//! # Output of `tinyinfer train-lm --out DIR`
//! * `DIR/epoch-N.json` after every complete epoch and `DIR/final.json` ([`LmF`],
//!   tagged `"family": "language"`),
//! * `DIR/summary.json` ([`LmSummary`]).

pub mod cli;
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

use anyhow::Result;
use tinyinfer::format::{self, Model};

use crate::common::blob::AlignedBlob;
use crate::common::inspect::Inspect;
use crate::families::{EvalArgs, ExportArgs, Exported, Family};

/// The family's name: its checkpoint tag.
pub const NAME: &str = "language";

/// The LSTM language models in the registry.
pub struct Language;

impl Family for Language {
    fn name(&self) -> &'static str {
        NAME
    }

    fn blob_family(&self) -> format::Family {
        format::Family::LanguageModel
    }

    fn export(&self, a: &ExportArgs) -> Result<Exported> {
        let m = LmF::load(&a.checkpoint)?;
        let ex = quantize::export(&m)?;
        let bytes = match a.selftest {
            0 => ex.blob,
            n => quantize::repack(&ex.blob, n)?,
        };
        let blob = AlignedBlob::new(&bytes);
        let spec = *run::language_model(&blob)?.spec();
        let details = format!(
            "{} bytes, arena {} bytes, {} params, {} head, K = {}, {} MACs per token, {} self-test cases",
            bytes.len(),
            ex.arena_len,
            spec.params(),
            spec.head.name(),
            spec.k,
            spec.macs_per_token(),
            a.selftest
        );
        Ok(Exported {
            arena_bytes: ex.arena_len,
            params: spec.params() as usize,
            details,
            blob: bytes,
        })
    }

    fn eval(&self, a: &EvalArgs, blob: &AlignedBlob) -> Result<()> {
        cli::eval(a, blob)
    }

    fn inspect(&self, model: &Model<'_>) -> Result<Inspect> {
        run::inspect(model)
    }
}

#[cfg(test)]
mod core_tests;
#[cfg(test)]
mod tests;
