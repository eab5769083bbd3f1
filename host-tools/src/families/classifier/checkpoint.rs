//! DiracNet checkpoints, and the float model they hold.
//!
//! `train` writes into `--out` (default `runs/diracnet`):
//!
//! * `epoch-NNN.bpk` + `epoch-NNN.json` after every epoch,
//! * `final.bpk` + `final.json` at the end (the same weights as the last epoch),
//! * `train.json`: the flags, the model configuration, per-epoch statistics and the summary,
//! * `resume.ckpt` after every epoch: what `--resume` continues from
//!   ([`crate::common::trainer`]).
//!
//! A `.bpk` is burn's burnpack record of the module parameters (including the
//! batch-norm running statistics); the `.json` next to it (same stem) is a
//! [`CheckpointMeta`] holding the [`ModelConfig`] needed to rebuild the model,
//! tagged `"family": "classifier"` ([`crate::common::checkpoint`]).
//! [`load_folded`] and [`float_logits`] accept either a `.bpk` path or a run
//! directory (meaning its `final.bpk`).

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::float::{normalize, FoldedNet};
use super::fold::fold;
use super::model::{DiracNet, ModelConfig};
use crate::common::blob::write_atomic;
use crate::common::checkpoint;
use crate::common::trainer::tensor_vec;

/// Identifies the checkpoint sidecar format.
pub const CHECKPOINT_FORMAT: &str = "tinyinfer-diracnet-v1";

/// The JSON sidecar of a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Always [`CHECKPOINT_FORMAT`].
    pub format: String,
    /// The architecture.
    pub model: ModelConfig,
    /// Epochs completed when the checkpoint was written.
    pub epoch: usize,
    /// Float test accuracy at that point, if measured.
    pub test_accuracy: Option<f64>,
    /// The training flags.
    pub train: serde_json::Value,
}

/// The `.bpk` file and its `.json` sidecar for a checkpoint path or run directory.
pub fn checkpoint_files(checkpoint: &Path) -> (PathBuf, PathBuf) {
    let bpk = if checkpoint.is_dir() {
        checkpoint.join("final.bpk")
    } else {
        checkpoint.to_path_buf()
    };
    let json = bpk.with_extension("json");
    (bpk, json)
}

/// Writes `model` (its validation view) and its sidecar to `bpk` / `bpk.with_extension("json")`,
/// each atomically.
pub fn save_checkpoint(model: &DiracNet, bpk: &Path, meta: &CheckpointMeta) -> Result<()> {
    let bytes = model
        .valid()
        .into_record()
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("serializing checkpoint {}", bpk.display()))?;
    write_atomic(bpk, &bytes).with_context(|| format!("writing checkpoint {}", bpk.display()))?;
    let json = bpk.with_extension("json");
    write_atomic(
        &json,
        checkpoint::to_json_pretty(super::NAME, meta)?.as_bytes(),
    )
    .with_context(|| format!("writing {}", json.display()))?;
    Ok(())
}

/// Rebuilds the model of a checkpoint on `device`, in eval mode.
///
/// # Errors
/// Missing or malformed `.bpk` / `.json`, or parameters that do not match the configuration.
pub fn load_model(checkpoint: &Path, device: &Device) -> Result<(DiracNet, CheckpointMeta)> {
    let (bpk, json) = checkpoint_files(checkpoint);
    let text = std::fs::read_to_string(&json).with_context(|| {
        format!(
            "reading checkpoint config {} (written next to {} by `train`)",
            json.display(),
            bpk.display()
        )
    })?;
    checkpoint::expect_family(&text, &json, super::NAME)?;
    let meta: CheckpointMeta = serde_json::from_str(&text)
        .with_context(|| format!("parsing checkpoint config {}", json.display()))?;
    ensure!(
        meta.format == CHECKPOINT_FORMAT,
        "{}: format {:?}, expected {CHECKPOINT_FORMAT:?}",
        json.display(),
        meta.format
    );
    meta.model
        .validate()
        .with_context(|| format!("invalid model config in {}", json.display()))?;
    ensure!(bpk.is_file(), "checkpoint {} not found", bpk.display());
    let record = ModuleRecord::load(&bpk)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("reading checkpoint {}", bpk.display()))?
        .cast_to_module_dtype();
    let model = DiracNet::new(&meta.model, &mut StdRng::seed_from_u64(0), device);
    let model = model
        .try_load_record(record)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| {
            format!(
                "checkpoint {} does not match the model in {}",
                bpk.display(),
                json.display()
            )
        })?;
    Ok((model.valid(), meta))
}

/// Rebuilds a checkpoint's model and folds it (batch norm and Dirac parametrization into conv weights).
///
/// # Errors
/// As [`load_model`].
pub fn load_folded(checkpoint: &Path) -> Result<FoldedNet> {
    let (model, _) = load_model(checkpoint, &Device::flex())?;
    Ok(fold(&model))
}

/// Eval-mode logits (`n * classes`, row-major) of `model` for raw u8 images, in batches.
pub fn model_logits(model: &DiracNet, images: &[u8], batch: usize) -> Vec<f32> {
    let side = model.config.image_size;
    let px = side * side;
    let device = model
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(Device::flex);
    let mut out = Vec::with_capacity(images.len() / px * model.config.classes);
    for chunk in images.chunks(batch.max(1) * px) {
        let n = chunk.len() / px;
        let x: Tensor<4> = Tensor::from_data(
            TensorData::new(normalize(chunk), [n, 1, side, side]),
            &device,
        );
        let y = model.forward(x);
        out.extend(tensor_vec(y));
    }
    out
}

/// Float logits (`n * 10`) of the unfolded checkpoint model (burn, eval mode) for raw u8
/// images (`n * 28 * 28` bytes).
///
/// # Errors
/// As [`load_model`], or an image buffer that is not a whole number of images.
pub fn float_logits(checkpoint: &Path, images: &[u8]) -> Result<Vec<f32>> {
    let (model, _) = load_model(checkpoint, &Device::flex())?;
    let px = model.config.image_size * model.config.image_size;
    ensure!(
        images.len().is_multiple_of(px),
        "image buffer of {} bytes is not a whole number of {px}-pixel images",
        images.len()
    );
    Ok(model_logits(&model.valid(), images, 256))
}
