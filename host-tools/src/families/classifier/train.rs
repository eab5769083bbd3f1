//! Training a DiracNet on Fashion-MNIST with burn (flex CPU backend): the
//! flags, SGD with Nesterov momentum (or AdamW), linear warm-up then cosine
//! decay, weight decay on conv/FC weights only, mixup, per-epoch evaluation
//! and checkpoints ([`super::checkpoint`]).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use burn::module::{Module, ParamGroup, ParamId, RunningState};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Tensor, TensorData};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::checkpoint::{model_logits, save_checkpoint, CheckpointMeta, CHECKPOINT_FORMAT};
use super::fold::fold;
use super::mixup::{make_batch, mixup};
use super::model::{DiracNet, ModelConfig};
use crate::common::data::{
    fashion_mnist_dir, load_fashion_mnist, Dataset, Split, CLASSES, PIXELS, SIDE,
};
use crate::common::metrics::calibration_metrics;
use crate::common::trainer::{
    ensure_at_least, ensure_limit, ensure_positive, limited, open_run, resumed_note, step_progress,
    tensor_vec, train_with, warmup_cosine, write_json, EpochProgress, RunFlags, TrainerArgs,
};

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
    /// Seed, threads, progress.
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunFlags,
}

impl TrainerArgs for TrainArgs {
    fn validate(&self) -> Result<()> {
        ensure_at_least("--epochs", self.epochs, 1)?;
        ensure!(
            self.batch_size >= 2,
            "--batch-size must be at least 2 (batch norm), got {}",
            self.batch_size
        );
        ensure_positive("--lr", self.lr)?;
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
        ensure_limit("--train-limit", self.train_limit, 1)?;
        ensure_limit("--test-limit", self.test_limit, 1)?;
        self.model_config().validate()
    }

    fn run_flags(&self) -> &RunFlags {
        &self.run
    }

    fn epochs(&self) -> usize {
        self.epochs
    }
}

impl TrainArgs {
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
    /// The final checkpoint (`<out>/final.bpk`; with --stop-after, the last epoch's).
    pub checkpoint: PathBuf,
    /// Trainable parameters of the (unfolded) model.
    pub params: usize,
    /// Parameters after folding (weights + biases).
    pub folded_params: usize,
    /// Epochs trained (by this process and the runs it resumed).
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

/// Statistics of one epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss (soft-target cross-entropy on the mixed batches).
    pub train_loss: f64,
    /// Training accuracy against the dominant (mixed) label.
    pub train_accuracy: f64,
    /// Float test accuracy after the epoch.
    pub test_accuracy: f64,
    /// Test NLL after the epoch.
    pub test_nll: f64,
    /// Test ECE (15 bins) after the epoch.
    pub test_ece: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Training images per second in this epoch.
    pub images_per_second: f64,
    /// Seconds for the epoch (training + evaluation).
    pub seconds: f64,
}

/// Learning rate at step `t` of `total`: warm-up, then cosine to 0.
fn lr_at(base: f64, t: usize, warmup: usize, total: usize) -> f64 {
    warmup_cosine(base, t, warmup, step_progress(t, warmup, total), 0.0)
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |a, (i, &v)| if v > a.1 { (i, v) } else { a },
        )
        .0
}

/// Gives the batch norms' running statistics fixed ids (burn draws them at
/// random, and a `.bpk` stores them): with [`crate::common::trainer::stable_ids`]
/// for the parameters, the same weights give the same checkpoint bytes.
fn stable_running_ids(mut model: DiracNet) -> DiracNet {
    let mut next = 1u64 << 32;
    let bns = std::iter::once(&mut model.stem_bn).chain(model.blocks.iter_mut().map(|b| &mut b.bn));
    for bn in bns {
        for state in [&mut bn.running_mean, &mut bn.running_var] {
            *state = RunningState::with_id(ParamId::from(next), state.value());
            next += 1;
        }
    }
    model
}

/// The optimizer: no weight decay by default, and a parameter group with weight decay for
/// the conv and FC weights only.
fn optimizer(args: &TrainArgs, model: &DiracNet) -> ModuleOptimizer {
    let decayed = ParamGroup::from_ids(model.decayed_param_ids());
    let wd = args.weight_decay as f32;
    match args.optimizer {
        OptimizerKind::Sgd => {
            let momentum = MomentumConfig::new()
                .with_momentum(0.9)
                .with_dampening(0.0)
                .with_nesterov(true);
            let optim: ModuleOptimizer = SgdConfig::new()
                .with_momentum(Some(momentum.clone()))
                .init();
            if wd == 0.0 {
                return optim;
            }
            let sgd_wd = SgdConfig::new()
                .with_momentum(Some(momentum))
                .with_weight_decay(Some(WeightDecayConfig::new(wd)))
                .build();
            optim.with_group(decayed, sgd_wd, None)
        }
        OptimizerKind::Adamw => {
            let optim: ModuleOptimizer = AdamWConfig::new().with_weight_decay(0.0).init();
            if wd == 0.0 {
                return optim;
            }
            optim.with_group(
                decayed,
                AdamWConfig::new().with_weight_decay(wd).build(),
                None,
            )
        }
    }
}

/// Trains a DiracNet as `args` says, printing per-epoch test accuracy and writing checkpoints.
///
/// # Errors
/// Bad flags, missing data, or I/O errors writing checkpoints.
pub fn run(args: &TrainArgs) -> Result<TrainSummary> {
    train_with(super::NAME, args, train)
}

fn train(args: &TrainArgs) -> Result<TrainSummary> {
    let start = Instant::now();
    let cfg = args.model_config();
    let dir = fashion_mnist_dir(args.data.as_deref());
    let train = limited(
        load_fashion_mnist(&dir, Split::Train).context("loading the training set (--data)")?,
        args.train_limit,
        Dataset::take,
    );
    let test = limited(
        load_fashion_mnist(&dir, Split::Test).context("loading the test set (--data)")?,
        args.test_limit,
        Dataset::take,
    );
    ensure!(
        train.len() >= 2,
        "need at least 2 training images, have {}",
        train.len()
    );
    let bs = args.batch_size.min(train.len());
    let steps = train.len() / bs;
    let total = steps * args.epochs;
    let warmup = (total / 50).min(steps);

    let (session, mut model, mut optim, mut history) = open_run(
        super::NAME,
        args,
        &args.out,
        steps,
        |rng, device| stable_running_ids(DiracNet::new(&cfg, rng, device)),
        |model| optimizer(args, model),
    )?;
    let ad = session.device.clone();
    let params = model.num_params();
    let folded_params = fold(&model).params();
    let threads = rayon::current_num_threads();
    println!(
        "DiracNet widths {:?} depth {}: {params} parameters ({folded_params} folded); {} train / {} test images; \
         {} epochs x {steps} steps of {bs}; {:?} lr {} wd {} mixup alpha {} augment {}; seed {}; {threads} threads{}",
        cfg.widths, cfg.depth, train.len(), test.len(), args.epochs, args.optimizer, args.lr, args.weight_decay, args.mixup_alpha, args.augment, args.run.seed,
        resumed_note(&session)
    );

    let (mut train_images, mut train_secs) = (0usize, 0f64);
    let mut t = session.step;
    let mut last = (0.0, 0.0, 0.0);
    let mut checkpoint = args.out.join("final.bpk");
    for epoch in session.epochs_here() {
        let epoch_start = Instant::now();
        let mut rng = session.epoch_rng(epoch);
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut rng);
        let pb = EpochProgress::new(epoch, args.epochs, steps, args.run.quiet, false);
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
        let mut lr = args.lr;
        for s in 0..steps {
            lr = lr_at(args.lr, t, warmup, total);
            t += 1;
            let mut batch = make_batch(
                &train,
                &order[s * bs..(s + 1) * bs],
                args.augment,
                2,
                &mut rng,
            );
            mixup(&mut batch, args.mixup_alpha, &mut rng);
            let n = batch.n;
            let targets = batch.y.clone();
            let x: Tensor<4> = Tensor::from_data(TensorData::new(batch.x, [n, 1, SIDE, SIDE]), &ad);
            let y: Tensor<2> = Tensor::from_data(TensorData::new(batch.y, [n, CLASSES]), &ad);
            let logits = model.forward(x);
            let loss = log_softmax(logits.clone(), 1)
                .mul(y)
                .sum_dim(1)
                .mean()
                .neg();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            let loss_v: f32 = loss.into_scalar();
            let lv = tensor_vec(logits.detach());
            correct += lv
                .chunks(CLASSES)
                .zip(targets.chunks(CLASSES))
                .filter(|(a, b)| argmax(a) == argmax(b))
                .count();
            loss_sum += loss_v as f64 * n as f64;
            seen += n;
            ensure!(
                loss_v.is_finite(),
                "training diverged (loss {loss_v}) at epoch {epoch} step {s}: lower --lr"
            );
            let secs = epoch_start.elapsed().as_secs_f64();
            let msg = format!(
                "loss {:.4} acc {:.2}% {:.0} img/s lr {:.4}",
                loss_sum / seen as f64,
                100.0 * correct as f64 / seen as f64,
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
        let logits = model_logits(&eval_model, &test.images, 500);
        let (acc, nll, ece) = calibration_metrics(&logits, &test.labels);
        last = (acc, nll, ece);
        let stats = EpochStats {
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            test_accuracy: acc,
            test_nll: nll,
            test_ece: ece,
            lr,
            images_per_second: seen as f64 / step_secs,
            seconds: epoch_start.elapsed().as_secs_f64(),
        };
        println!(
            "epoch {epoch:>3}/{}: train loss {:.4} acc {:.2}% | test acc {:.2}% nll {:.4} ece {:.4} | {:.0} img/s, {:.1} s",
            args.epochs,
            stats.train_loss,
            100.0 * stats.train_accuracy,
            100.0 * acc,
            nll,
            ece,
            stats.images_per_second,
            stats.seconds
        );
        history.push(stats);
        let meta = CheckpointMeta {
            format: CHECKPOINT_FORMAT.into(),
            model: cfg.clone(),
            epoch,
            test_accuracy: Some(acc),
            train: serde_json::to_value(args)?,
        };
        let epoch_file = args.out.join(format!("epoch-{epoch:03}.bpk"));
        save_checkpoint(&eval_model, &epoch_file, &meta)?;
        checkpoint = epoch_file;
        if epoch == args.epochs {
            checkpoint = args.out.join("final.bpk");
            save_checkpoint(&eval_model, &checkpoint, &meta)?;
        }
        session.save(&model, &optim, epoch, t, &history)?;
    }

    let summary = TrainSummary {
        checkpoint,
        params,
        folded_params,
        epochs: history.len(),
        wall_seconds: start.elapsed().as_secs_f64(),
        images_per_second: train_images as f64 / train_secs.max(1e-9),
        test_accuracy: last.0,
        test_nll: last.1,
        test_ece: last.2,
        test_images: test.len(),
        history,
    };
    if session.stops_early() {
        session.report_stop(summary.epochs);
        return Ok(summary);
    }
    let report =
        serde_json::json!({ "args": args, "model": cfg, "pixels": PIXELS, "summary": summary });
    write_json(&args.out.join("train.json"), &report)?;
    println!(
        "done: {} epochs in {:.0} s, {:.0} img/s; float test accuracy {:.2}%; checkpoint {}",
        summary.epochs,
        summary.wall_seconds,
        summary.images_per_second,
        100.0 * summary.test_accuracy,
        summary.checkpoint.display()
    );
    Ok(summary)
}
