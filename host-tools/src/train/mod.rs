//! Training a DiracNet on Fashion-MNIST with burn (flex CPU backend), with mixup,
//! and folding the result into a plain [`FoldedNet`].
//!
//! # Checkpoints
//!
//! `run` writes into `--out` (default `runs/diracnet`):
//!
//! * `epoch-NNN.bpk` + `epoch-NNN.json` after every epoch,
//! * `final.bpk` + `final.json` at the end (the same weights as the last epoch),
//! * `train.json`: the flags, the model configuration, per-epoch statistics and the summary.
//!
//! A `.bpk` is burn's burnpack record of the module parameters (including the
//! batch-norm running statistics); the `.json` next to it (same stem) is a
//! [`CheckpointMeta`] holding the [`ModelConfig`] needed to rebuild the model.
//! [`load_folded`] and [`float_logits`] accept either a `.bpk` path or a run
//! directory (meaning its `final.bpk`).

mod fold;
mod mixup;
mod model;
mod trainer;

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::float_model::{normalize, FoldedNet};

pub use fold::fold;
pub use mixup::{make_batch, mix, mixup, Batch};
pub use model::{Block, DiracConv, DiracNet, ModelConfig};
pub use trainer::{warmup_cosine, EpochStats};

/// Identifies the checkpoint sidecar format.
pub const CHECKPOINT_FORMAT: &str = "tinyinfer-diracnet-v1";

/// Flags of the `train` subcommand.
#[derive(clap::Args, Clone, Debug, Serialize)]
pub struct TrainArgs {
    /// Fashion-MNIST directory (default: $TINYINFER_FASHION_MNIST, then /usr/share/datasets/fashion-mnist).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Output directory for checkpoints and train.json.
    #[arg(long, value_name = "DIR", default_value = "runs/diracnet")]
    pub out: PathBuf,
    /// Training epochs (cosine learning-rate schedule over all of them). The default, 5,
    /// takes about 9 minutes alone on 2 cores (docs/mixup.md).
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Minibatch size.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Optimizer: SGD with Nesterov momentum 0.9, or AdamW (β = 0.9, 0.999).
    #[arg(long, value_enum, default_value_t = OptimizerKind::Sgd)]
    pub optimizer: OptimizerKind,
    /// Peak learning rate (after a short linear warm-up; cosine decay to 0). The default
    /// is for SGD; use about 3e-3 with AdamW.
    #[arg(long, default_value_t = 0.4)]
    pub lr: f64,
    /// Weight decay, applied only to the free conv weights and the FC weight (not to the
    /// Dirac a/b, batch-norm parameters or biases). SGD: L2 added to the gradient;
    /// AdamW: decoupled (`w -= lr·wd·w`).
    #[arg(long, default_value_t = 5e-4)]
    pub weight_decay: f64,
    /// mixup Beta(α, α) parameter; 0 turns mixup off (plain ERM with hard labels).
    #[arg(long, default_value_t = 0.2)]
    pub mixup_alpha: f64,
    /// Random shift (±2 px, background-padded) and horizontal flip augmentation. Off by
    /// default: it slows short runs down (docs/mixup.md); worth it for long ones.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub augment: bool,
    /// Seed for initialisation, shuffling, augmentation and mixup.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Channel widths of the groups, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64")]
    pub widths: Vec<usize>,
    /// Blocks per group.
    #[arg(long, default_value_t = 2)]
    pub depth: usize,
    /// Use only the first N training images (smoke tests).
    #[arg(long, value_name = "N")]
    pub train_limit: Option<usize>,
    /// Evaluate on only the first N test images (smoke tests).
    #[arg(long, value_name = "N")]
    pub test_limit: Option<usize>,
    /// Worker threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl Default for TrainArgs {
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            args: TrainArgs,
        }
        <Wrap as clap::Parser>::parse_from(["train"]).args
    }
}

impl TrainArgs {
    /// Checks the flags, naming the one at fault.
    pub fn validate(&self) -> Result<()> {
        ensure!(self.epochs >= 1, "--epochs must be at least 1");
        ensure!(
            self.batch_size >= 2,
            "--batch-size must be at least 2 (batch norm), got {}",
            self.batch_size
        );
        ensure!(
            self.lr.is_finite() && self.lr > 0.0,
            "--lr must be positive and finite, got {}",
            self.lr
        );
        ensure!(
            self.weight_decay.is_finite() && self.weight_decay >= 0.0,
            "--weight-decay must be >= 0 and finite, got {}",
            self.weight_decay
        );
        ensure!(
            self.mixup_alpha.is_finite() && self.mixup_alpha >= 0.0,
            "--mixup-alpha must be >= 0 and finite (0 = off), got {}",
            self.mixup_alpha
        );
        ensure!(
            self.train_limit != Some(0),
            "--train-limit must be at least 1"
        );
        ensure!(
            self.test_limit != Some(0),
            "--test-limit must be at least 1"
        );
        self.model_config().validate()
    }

    /// The architecture these flags describe.
    pub fn model_config(&self) -> ModelConfig {
        ModelConfig::new(self.widths.clone(), self.depth)
    }
}

/// Which optimizer [`run`] uses.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// SGD, Nesterov momentum 0.9, no dampening.
    Sgd,
    /// AdamW.
    Adamw,
}

/// What [`run`] reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainSummary {
    /// The final checkpoint (`<out>/final.bpk`).
    pub checkpoint: PathBuf,
    /// Trainable parameters of the (unfolded) model.
    pub params: usize,
    /// Parameters after folding (weights + biases).
    pub folded_params: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// Wall-clock seconds for the whole run (training, evaluation, checkpoints).
    pub wall_seconds: f64,
    /// Training throughput (images per second of training steps, evaluation excluded).
    pub images_per_second: f64,
    /// Float test accuracy of the final checkpoint (burn, eval mode).
    pub test_accuracy: f64,
    /// Test negative log-likelihood (nats per image).
    pub test_nll: f64,
    /// Test expected calibration error (15 equal-width bins).
    pub test_ece: f64,
    /// Test images evaluated.
    pub test_images: usize,
    /// Per-epoch statistics.
    pub history: Vec<EpochStats>,
}

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

/// Trains a DiracNet as `args` says, printing per-epoch test accuracy and writing checkpoints.
///
/// # Errors
/// Bad flags, missing data, or I/O errors writing checkpoints.
pub fn run(args: &TrainArgs) -> Result<TrainSummary> {
    args.validate()?;
    if args.threads > 0 {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(args.threads)
            .build()
            .with_context(|| format!("creating a pool of --threads {}", args.threads))?;
        pool.install(|| trainer::train(args))
    } else {
        trainer::train(args)
    }
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

/// Writes `model` (its validation view) and its sidecar to `bpk` / `bpk.with_extension("json")`.
pub fn save_checkpoint(model: &DiracNet, bpk: &Path, meta: &CheckpointMeta) -> Result<()> {
    model
        .valid()
        .save_file(bpk)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("writing checkpoint {}", bpk.display()))?;
    let json = bpk.with_extension("json");
    std::fs::write(&json, serde_json::to_string_pretty(meta)?)
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
        out.extend(
            y.into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("f32 logits"),
        );
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

/// Accuracy, mean negative log-likelihood (nats) and expected calibration error
/// (15 equal-width confidence bins) of `logits` (`n * classes`, row-major) against `labels`.
/// Returns zeros for an empty set.
pub fn calibration_metrics(logits: &[f32], labels: &[u8]) -> (f64, f64, f64) {
    let n = labels.len();
    if n == 0 || !logits.len().is_multiple_of(n) || logits.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let k = logits.len() / n;
    const BINS: usize = 15;
    let mut bin_n = [0usize; BINS];
    let mut bin_conf = [0f64; BINS];
    let mut bin_correct = [0f64; BINS];
    let (mut correct, mut nll) = (0usize, 0f64);
    for (row, &label) in logits.chunks(k).zip(labels) {
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        let (pred, &top) = row
            .iter()
            .enumerate()
            .fold((0, &row[0]), |a, b| if b.1 > a.1 { b } else { a });
        let label = label as usize;
        let ok = pred == label;
        correct += ok as usize;
        nll += lse - row.get(label).copied().unwrap_or(f32::NEG_INFINITY) as f64;
        let conf = (top as f64 - lse).exp();
        let b = ((conf * BINS as f64) as usize).min(BINS - 1);
        bin_n[b] += 1;
        bin_conf[b] += conf;
        bin_correct[b] += ok as u8 as f64;
    }
    let ece = (0..BINS)
        .filter(|&b| bin_n[b] > 0)
        .map(|b| (bin_correct[b] - bin_conf[b]).abs())
        .sum::<f64>()
        / n as f64;
    (correct as f64 / n as f64, nll / n as f64, ece)
}

#[cfg(test)]
mod tests;
