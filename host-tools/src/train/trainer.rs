//! The training loop: SGD with Nesterov momentum (or AdamW), linear warm-up then cosine decay,
//! weight decay on conv/FC weights only, mixup, per-epoch evaluation and checkpoints.

use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::{Module, ParamGroup};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::mixup::{make_batch, mixup};
use super::model::DiracNet;
use super::{
    calibration_metrics, model_logits, save_checkpoint, CheckpointMeta, OptimizerKind, TrainArgs,
    TrainSummary, CHECKPOINT_FORMAT,
};
use crate::data::{self, Split, CLASSES, PIXELS, SIDE};

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

/// Learning rate: linear warm-up over the first `warmup` steps, then a cosine from
/// `base` down to `floor · base` as `progress` goes from 0 to 1 (clamped). Shared by
/// the DiracNet, PixelCNN and language-model trainers.
pub fn warmup_cosine(base: f64, step: usize, warmup: usize, progress: f64, floor: f64) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup.max(1) as f64;
    }
    let p = progress.clamp(0.0, 1.0);
    base * (floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
}

/// Learning rate at step `t` of `total`: warm-up, then cosine to 0.
fn lr_at(base: f64, t: usize, warmup: usize, total: usize) -> f64 {
    let p = t.saturating_sub(warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64;
    warmup_cosine(base, t, warmup, p, 0.0)
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

pub(super) fn train(args: &TrainArgs) -> Result<TrainSummary> {
    let start = Instant::now();
    let cfg = args.model_config();
    let dir = data::fashion_mnist_dir(args.data.as_deref());
    let mut train = data::load_fashion_mnist(&dir, Split::Train)
        .context("loading the training set (--data)")?;
    let mut test =
        data::load_fashion_mnist(&dir, Split::Test).context("loading the test set (--data)")?;
    if let Some(n) = args.train_limit {
        train = train.take(n);
    }
    if let Some(n) = args.test_limit {
        test = test.take(n);
    }
    anyhow::ensure!(
        train.len() >= 2,
        "need at least 2 training images, have {}",
        train.len()
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating --out directory {}", args.out.display()))?;

    let device = Device::flex();
    device.seed(args.seed);
    let ad = device.clone().autodiff();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut model = DiracNet::new(&cfg, &mut rng, &ad);
    let params = model.num_params();
    let folded_params = super::fold(&model).params();

    let mut optim = optimizer(args, &model);

    let bs = args.batch_size.min(train.len());
    let steps = train.len() / bs;
    let total = steps * args.epochs;
    let warmup = (total / 50).min(steps);
    let threads = rayon::current_num_threads();
    println!(
        "DiracNet widths {:?} depth {}: {params} parameters ({folded_params} folded); {} train / {} test images; \
         {} epochs x {steps} steps of {bs}; {:?} lr {} wd {} mixup alpha {} augment {}; seed {}; {threads} threads",
        cfg.widths, cfg.depth, train.len(), test.len(), args.epochs, args.optimizer, args.lr, args.weight_decay, args.mixup_alpha, args.augment, args.seed
    );

    let style =
        ProgressStyle::with_template("{prefix} [{bar:25}] {pos}/{len} {msg} [{elapsed}<{eta}]")
            .expect("valid template")
            .progress_chars("=> ");
    let mut history: Vec<EpochStats> = Vec::new();
    let mut order: Vec<usize> = (0..train.len()).collect();
    let (mut train_images, mut train_secs) = (0usize, 0f64);
    let mut t = 0usize;
    let mut last = (0.0, 0.0, 0.0);
    for epoch in 1..=args.epochs {
        let epoch_start = Instant::now();
        order.shuffle(&mut rng);
        let pb = if args.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr())
        };
        pb.set_style(style.clone());
        pb.set_prefix(format!("epoch {epoch}/{}", args.epochs));
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
            let lv = logits
                .detach()
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("f32 logits");
            correct += lv
                .chunks(CLASSES)
                .zip(targets.chunks(CLASSES))
                .filter(|(a, b)| argmax(a) == argmax(b))
                .count();
            loss_sum += loss_v as f64 * n as f64;
            seen += n;
            anyhow::ensure!(
                loss_v.is_finite(),
                "training diverged (loss {loss_v}) at epoch {epoch} step {s}: lower --lr"
            );
            let secs = epoch_start.elapsed().as_secs_f64();
            pb.set_message(format!(
                "loss {:.4} acc {:.2}% {:.0} img/s lr {:.4}",
                loss_sum / seen as f64,
                100.0 * correct as f64 / seen as f64,
                seen as f64 / secs,
                lr
            ));
            pb.inc(1);
        }
        let step_secs = epoch_start.elapsed().as_secs_f64();
        pb.finish_and_clear();
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
        let meta = CheckpointMeta {
            format: CHECKPOINT_FORMAT.into(),
            model: cfg.clone(),
            epoch,
            test_accuracy: Some(acc),
            train: serde_json::to_value(args)?,
        };
        save_checkpoint(
            &eval_model,
            &args.out.join(format!("epoch-{epoch:03}.bpk")),
            &meta,
        )?;
        if epoch == args.epochs {
            save_checkpoint(&eval_model, &args.out.join("final.bpk"), &meta)?;
        }
        history.push(stats);
    }

    let summary = TrainSummary {
        checkpoint: args.out.join("final.bpk"),
        params,
        folded_params,
        epochs: args.epochs,
        wall_seconds: start.elapsed().as_secs_f64(),
        images_per_second: train_images as f64 / train_secs.max(1e-9),
        test_accuracy: last.0,
        test_nll: last.1,
        test_ece: last.2,
        test_images: test.len(),
        history,
    };
    let report =
        serde_json::json!({ "args": args, "model": cfg, "pixels": PIXELS, "summary": summary });
    let path = args.out.join("train.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
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
