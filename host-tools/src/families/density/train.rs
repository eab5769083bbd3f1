//! Training the PixelCNN on binarized MNIST: Adam, linear warm-up then cosine decay,
//! seeded shuffling, per-epoch checkpoints (`epoch-N.json`, and `resume.ckpt` for
//! `--resume`) and validation NLL.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::data::{load_binarized_mnist, BinImages, BinSplit, PIXELS};
use super::float::PixelCnnF;
use super::model::{PixelCnn, PixelCnnConfig};
use crate::common::data::shared_data_dir;
use crate::common::trainer::{
    ensure_at_least, ensure_limit, ensure_positive, limited, log_lines, open_run, resumed_note,
    step_progress, tensor_vec, train_with, warmup_cosine, write_json, EpochProgress, RunFlags,
    TrainerArgs,
};

/// Flags of `tinyinfer train-pixelcnn`.
#[derive(clap::Args, Clone, Debug, Serialize)]
pub struct PixelCnnArgs {
    /// Shared data directory holding `binarized_mnist/` (default: $TINYINFER_DATA, then
    /// ../shared/data, then <repo>/../shared/data).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Output directory for epoch-N.json, final.json and summary.json.
    #[arg(long, value_name = "DIR", default_value = "runs/pixelcnn")]
    pub out: PathBuf,
    /// Training epochs (the cosine schedule spans all of them).
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Peak Adam learning rate (linear warm-up over 1% of the steps, cosine decay to 2% of it).
    #[arg(long, default_value_t = 1.5e-3)]
    pub lr: f64,
    /// Minibatch size. 16 was the fastest on 2 cores (about 113 img/s alone, against 99 at
    /// 32, 71 at 64 and 96 at 8, for the default model).
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Residual stream width C.
    #[arg(long, default_value_t = 64)]
    pub channels: usize,
    /// Bottleneck width h.
    #[arg(long, default_value_t = 32)]
    pub hidden: usize,
    /// Residual blocks.
    #[arg(long, default_value_t = 5)]
    pub blocks: usize,
    /// Kernel of the block convs (3, 5 or 7).
    #[arg(long, default_value_t = 3)]
    pub kernel: usize,
    /// Kernel of the first, mask-A conv.
    #[arg(long, default_value_t = 7)]
    pub first_kernel: usize,
    /// Width of the hidden 1x1 head conv (0: a single 1x1 conv to the logit).
    #[arg(long, default_value_t = 64)]
    pub head: usize,
    /// Use only the first N training images.
    #[arg(long, value_name = "N")]
    pub train_limit: Option<usize>,
    /// Evaluate the per-epoch validation NLL on only the first N validation images
    /// (default: all 10,000).
    #[arg(long, value_name = "N")]
    pub valid_limit: Option<usize>,
    /// Skip the final full test-set evaluation (smoke tests).
    #[arg(long)]
    pub no_test: bool,
    /// Seed, threads, progress.
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunFlags,
}

impl TrainerArgs for PixelCnnArgs {
    fn validate(&self) -> Result<()> {
        ensure_at_least("--epochs", self.epochs, 1)?;
        ensure_at_least("--batch", self.batch, 1)?;
        ensure_positive("--lr", self.lr)?;
        ensure_limit("--train-limit", self.train_limit, 1)?;
        ensure_limit("--valid-limit", self.valid_limit, 1)?;
        self.config().validate()
    }

    fn run_flags(&self) -> &RunFlags {
        &self.run
    }

    fn epochs(&self) -> usize {
        self.epochs
    }
}

impl PixelCnnArgs {
    /// The architecture these flags describe.
    pub fn config(&self) -> PixelCnnConfig {
        PixelCnnConfig {
            channels: self.channels,
            hidden: self.hidden,
            blocks: self.blocks,
            kernel: self.kernel,
            first_kernel: self.first_kernel,
            head: self.head,
            side: super::data::SIDE,
        }
    }
}

/// Statistics of one epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training NLL (nats/image) over the epoch's steps.
    pub train_nll_nats: f64,
    /// Validation NLL (nats/image) after the epoch.
    pub valid_nll_nats: f64,
    /// Validation images evaluated.
    pub valid_images: usize,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Training images per second (training steps only).
    pub images_per_second: f64,
    /// Seconds of training steps.
    pub train_seconds: f64,
    /// Seconds of validation.
    pub valid_seconds: f64,
}

/// What a run reports (also written as `summary.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PixelCnnSummary {
    /// Validation NLL (nats/image) of the final model.
    pub float_valid_nll_nats: f64,
    /// Validation images behind `float_valid_nll_nats`.
    pub valid_images: usize,
    /// Test NLL (nats/image) of the final model on the full test set (NaN with --no-test).
    pub float_test_nll_nats: f64,
    /// Test images evaluated.
    pub test_images: usize,
    /// Parameters (weights including masked zeros, plus biases).
    pub params: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// Wall-clock seconds of the whole run.
    pub seconds: f64,
    /// Training images per second (training steps only).
    pub images_per_second: f64,
    /// Training images used.
    pub train_images: usize,
    /// The architecture.
    pub config: PixelCnnConfig,
    /// The flags.
    pub args: serde_json::Value,
    /// Per-epoch statistics.
    pub history: Vec<EpochStats>,
    /// The final model (`<out>/final.json`; with --stop-after, the last epoch's).
    pub final_json: PathBuf,
}

fn lr_at(base: f64, t: usize, warmup: usize, total: usize) -> f64 {
    warmup_cosine(base, t, warmup, step_progress(t, warmup, total), 0.02)
}

fn batch_tensor(pixels: &[u8], side: usize, device: &Device) -> Tensor<4> {
    let n = pixels.len() / (side * side);
    let v: Vec<f32> = pixels.iter().map(|&p| p as f32).collect();
    Tensor::from_data(TensorData::new(v, [n, 1, side, side]), device)
}

/// Mean NLL (nats/image) of `model` over flat 0/1 `images` (`n * side*side` bytes), in
/// batches of `batch`, without autodiff. Returns 0 for no images.
pub fn mean_nll(model: &PixelCnn, images: &[u8], batch: usize) -> f64 {
    let px = model.side * model.side;
    let device = model
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(Device::flex);
    let (mut sum, mut n) = (0f64, 0usize);
    for chunk in images.chunks(batch.max(1) * px) {
        let x = batch_tensor(chunk, model.side, &device);
        let per = tensor_vec(model.nll_per_image(x));
        n += per.len();
        sum += per.iter().map(|&v| v as f64).sum::<f64>();
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// Mean NLL (nats/image) of the saved model `final_json` ([`PixelCnnF`]) over flat 0/1
/// `images`, evaluated with burn in batches of 100.
///
/// # Errors
/// An unreadable or invalid model file, or images that are not a whole number of
/// `side*side`-pixel 0/1 images.
pub fn float_test_nll(final_json: &Path, images: &[u8]) -> Result<f64> {
    let f = PixelCnnF::load_json(final_json)?;
    let px = f.side * f.side;
    ensure!(
        images.len().is_multiple_of(px),
        "image buffer of {} bytes is not a whole number of {px}-pixel images",
        images.len()
    );
    ensure!(
        images.iter().all(|&p| p <= 1),
        "images must hold 0/1 pixels"
    );
    let model = PixelCnn::from_float(&f, &Device::flex());
    Ok(mean_nll(&model, images, 100))
}

/// Trains a PixelCNN as `args` says; see the module docs for what is written.
///
/// # Errors
/// Bad flags, missing data, divergence, or I/O errors writing checkpoints.
pub fn run(args: &PixelCnnArgs) -> Result<PixelCnnSummary> {
    train_with(super::NAME, args, train)
}

fn train(args: &PixelCnnArgs) -> Result<PixelCnnSummary> {
    let start = Instant::now();
    let cfg = args.config();
    let dir = shared_data_dir(args.data.as_deref());
    let train_set = limited(
        load_binarized_mnist(&dir, BinSplit::Train).context("loading the training set")?,
        args.train_limit,
        BinImages::take,
    );
    let valid = limited(
        load_binarized_mnist(&dir, BinSplit::Valid).context("loading the validation set")?,
        args.valid_limit,
        BinImages::take,
    );
    let test = if args.no_test || args.run.stops_early(args.epochs) {
        BinImages::default()
    } else {
        load_binarized_mnist(&dir, BinSplit::Test).context("loading the test set")?
    };
    let bs = args.batch.min(train_set.len());
    let steps = train_set.len() / bs;
    let total = steps * args.epochs;
    let warmup = (total / 100).clamp(1, steps);

    let (session, mut model, mut optim, mut history) = open_run(
        super::NAME,
        args,
        &args.out,
        steps,
        |rng, device| PixelCnn::new(&cfg, rng, device),
        |_| AdamConfig::new().init(),
    )?;
    let ad = session.device.clone();
    let params = model.to_float().params();
    let threads = rayon::current_num_threads();
    println!(
        "PixelCNN C {} h {} blocks {} kernel {} first {} head {}: {params} parameters; {} train / {} valid / {} test images; \
         {} epochs x {steps} steps of {bs}; Adam lr {}; seed {}; {threads} threads; data {}{}",
        cfg.channels, cfg.hidden, cfg.blocks, cfg.kernel, cfg.first_kernel, cfg.head,
        train_set.len(), valid.len(), test.len(), args.epochs, args.lr, args.run.seed, dir.display(),
        resumed_note(&session)
    );

    let lines = log_lines(args.run.quiet);
    let (mut train_images, mut train_secs) = (0usize, 0f64);
    let mut t = session.step;
    let mut batch_px = Vec::with_capacity(bs * PIXELS);
    for epoch in session.epochs_here() {
        let epoch_start = Instant::now();
        let mut order: Vec<usize> = (0..train_set.len()).collect();
        order.shuffle(&mut session.epoch_rng(epoch));
        let pb = EpochProgress::new(epoch, args.epochs, steps, args.run.quiet, lines);
        let (mut loss_sum, mut seen) = (0f64, 0usize);
        let mut lr = args.lr;
        for s in 0..steps {
            lr = lr_at(args.lr, t, warmup, total);
            t += 1;
            batch_px.clear();
            for &i in &order[s * bs..(s + 1) * bs] {
                batch_px.extend_from_slice(train_set.image(i));
            }
            let x = batch_tensor(&batch_px, cfg.side, &ad);
            let loss = model.nll_per_image(x).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            let lv: f32 = loss.into_scalar();
            ensure!(
                lv.is_finite(),
                "training diverged (loss {lv}) at epoch {epoch} step {s}: lower --lr"
            );
            loss_sum += lv as f64 * bs as f64;
            seen += bs;
            let secs = epoch_start.elapsed().as_secs_f64();
            let msg = format!(
                "nll {:.2} nats, {:.0} img/s, lr {:.2e}",
                loss_sum / seen as f64,
                seen as f64 / secs,
                lr
            );
            pb.step(s + 1, msg, secs);
        }
        let step_secs = epoch_start.elapsed().as_secs_f64();
        pb.finish();
        train_images += seen;
        train_secs += step_secs;

        let eval_model = model.valid();
        let ckpt = args.out.join(format!("epoch-{epoch}.json"));
        eval_model.to_float().save_json(&ckpt)?;
        let v0 = Instant::now();
        let valid_nll = mean_nll(&eval_model, &valid.pixels, 100);
        let stats = EpochStats {
            epoch,
            train_nll_nats: loss_sum / seen.max(1) as f64,
            valid_nll_nats: valid_nll,
            valid_images: valid.len(),
            lr,
            images_per_second: seen as f64 / step_secs,
            train_seconds: step_secs,
            valid_seconds: v0.elapsed().as_secs_f64(),
        };
        println!(
            "epoch {epoch:>3}/{}: train nll {:.3} | valid nll {:.3} nats ({} images) | {:.1} img/s, train {:.0} s, valid {:.0} s | {}",
            args.epochs,
            stats.train_nll_nats,
            valid_nll,
            valid.len(),
            stats.images_per_second,
            stats.train_seconds,
            stats.valid_seconds,
            ckpt.display()
        );
        history.push(stats);
        session.save(&model, &optim, epoch, t, &history)?;
    }
    // With --stop-after the run is not over: no final model, test or summary.json.
    let finished = !session.stops_early();
    let eval_model = model.valid();
    let final_json = if finished {
        let path = args.out.join("final.json");
        eval_model.to_float().save_json(&path)?;
        path
    } else {
        args.out.join(format!("epoch-{}.json", history.len()))
    };
    let float_valid = history.last().map_or(f64::NAN, |h| h.valid_nll_nats);
    let float_test = if test.is_empty() {
        f64::NAN
    } else {
        let t0 = Instant::now();
        let v = mean_nll(&eval_model, &test.pixels, 100);
        println!(
            "test nll {v:.3} nats ({} images, {:.0} s)",
            test.len(),
            t0.elapsed().as_secs_f64()
        );
        v
    };
    let summary = PixelCnnSummary {
        float_valid_nll_nats: float_valid,
        valid_images: valid.len(),
        float_test_nll_nats: float_test,
        test_images: test.len(),
        params,
        epochs: history.len(),
        seconds: start.elapsed().as_secs_f64(),
        images_per_second: train_images as f64 / train_secs.max(1e-9),
        train_images: train_set.len(),
        config: cfg,
        args: serde_json::to_value(args)?,
        history,
        final_json: final_json.clone(),
    };
    if !finished {
        session.report_stop(summary.epochs);
        return Ok(summary);
    }
    write_json(&args.out.join("summary.json"), &summary)?;
    println!(
        "done: {} epochs in {:.0} s, {:.1} img/s; valid {:.3} / test {:.3} nats; {}",
        summary.epochs,
        summary.seconds,
        summary.images_per_second,
        float_valid,
        float_test,
        final_json.display()
    );
    Ok(summary)
}
