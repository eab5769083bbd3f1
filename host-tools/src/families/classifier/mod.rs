//! The DiracNet classifier on Fashion-MNIST.
//!
//! * [`model`]: the burn DiracNet (`diag(a)·I + diag(b)·W/‖W‖` convs, batch norm).
//! * [`mixup`]: batches, augmentation and mixup.
//! * [`train`]: `tinyinfer train` ([`TrainArgs`], [`run`]).
//! * [`checkpoint`]: `.bpk` + tagged `.json` checkpoints, float logits.
//! * [`fold`]: batch norm and the Dirac parametrization folded into plain convs.
//! * [`float`]: the folded float chain ([`FoldedNet`]) the quantizer reads.
//! * [`quantize`]: calibration and int8 quantization into a `.tinf`.
//! * [`run`](mod@run): export, int8 scores through the core, `eval`.
//! * [`cli`]: `train` and `pipeline`.
//!
//! Fashion-MNIST itself is read by [`crate::common::data`]: the density
//! family scores it too.

pub mod checkpoint;
pub mod cli;
pub mod float;
pub mod fold;
pub mod mixup;
pub mod model;
pub mod quantize;
pub mod run;
pub mod train;

use anyhow::Result;
use tinyinfer::format;

pub use checkpoint::{
    checkpoint_files, float_logits, load_folded, load_model, model_logits, save_checkpoint,
    CheckpointMeta, CHECKPOINT_FORMAT,
};
pub use float::{FoldedNet, Layer};
pub use fold::fold;
pub use mixup::{make_batch, mix, mixup, Batch};
pub use model::{Block, DiracConv, DiracNet, ModelConfig};
pub use train::{run, EpochStats, OptimizerKind, TrainArgs, TrainSummary};

use crate::common::blob::AlignedBlob;
use crate::families::{EvalArgs, ExportArgs, Exported, Family};

/// The family's name: its checkpoint tag.
pub const NAME: &str = "classifier";

/// The DiracNet classifier in the registry.
pub struct Classifier;

impl Family for Classifier {
    fn name(&self) -> &'static str {
        NAME
    }

    fn blob_family(&self) -> format::Family {
        format::Family::Classifier
    }

    fn export(&self, a: &ExportArgs) -> Result<Exported> {
        run::export(a)
    }

    fn eval(&self, a: &EvalArgs, blob: &AlignedBlob) -> Result<()> {
        run::eval(a, blob).map(|_| ())
    }
}

#[cfg(test)]
mod tests;
