//! Training the LSTM language model: standard LM batching with truncated BPTT, Adam or
//! SGD with global-norm gradient clipping, linear warm-up then cosine decay, locked
//! dropout, per-epoch validation perplexity, a wall-clock budget.
//!
//! # Batching
//! The training stream is cut into `--batch` contiguous columns; the columns are walked
//! through in segments of `--bptt` steps (the last one shorter), predicting token `i+1`
//! from tokens `..=i`; the LSTM state is carried from one segment to the next, detached
//! (truncated back-propagation through time). It is reset to zero at every epoch.
//!
//! # Learning-rate schedule
//! Linear warm-up over the first `--warmup` steps (default: 1 % of all steps, at most
//! 300), then a cosine decay to 2 % of `--lr`. The decay follows the *progress*
//! `max(step / total steps, elapsed / --max-minutes)`, so a run that is stopped by its
//! time budget has still annealed its learning rate when it stops.
//!
//! # Evaluation
//! Perplexity of a split predicts every one of its tokens from the ones before it, from
//! a zero state with `<eos>` (words) or `\n` (characters) as the first input: PTB test
//! has exactly 82,430 predictions. With `--eval-batch 1` (the default) this is exact; with
//! B > 1 the split is cut into B columns and each column starts from a zero state at its
//! own position (faster, very slightly pessimistic). The burn model runs in eval mode (no
//! dropout), `--eval-chunk` steps at a time, the decoder as one big matmul per chunk.
//!
//! # Output of `tinyinfer train-lm --out DIR`
//! * `DIR/epoch-N.json` after every complete epoch and `DIR/final.json` ([`LmF`]),
//! * `DIR/summary.json` ([`LmSummary`]),
//! * `DIR/resume.ckpt` after every complete epoch: what `--resume` continues from
//!   ([`crate::common::trainer`]). A run with `--max-minutes` cannot be resumed: its
//!   schedule follows wall time.
//! * `DIR/average-N.json` beside it, with `--asgd-from` or `--asgd-nonmono` once averaging
//!   has begun: the running mean of the weights after epoch N ([`LmF`]), which a resumed
//!   run continues (the previous epoch's is removed once the new checkpoint is written).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use burn::module::{Module, ParamId};

use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, SgdConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::data::{start_token, Corpus, Dataset};
use super::float::{HeadKind, LmF};
use super::model::{Dropouts, LmConfig, LmModel};
use crate::common::data::shared_data_dir;
use crate::common::trainer::{
    check_flags, ensure_at_least, ensure_limit, ensure_positive, limited, log_lines, open_run,
    resumed_note, train_with, warmup_cosine, write_json, EpochProgress, RunFlags, TrainerArgs,
};

/// Optimiser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Optim {
    /// Adam (β = 0.9, 0.999); default lr 2e-3.
    Adam,
    /// Plain SGD; default lr 20 (with --clip 0.25, as in Zaremba et al. / Yang et al.).
    Sgd,
}

/// Flags of `tinyinfer train-lm`.
#[derive(clap::Args, Clone, Debug, Serialize)]
pub struct TrainLmArgs {
    /// Corpus: ptb (word level, V = 10,000) or shakespeare (character level, V = 65).
    #[arg(long, value_enum, default_value = "ptb")]
    pub dataset: Dataset,
    /// Shared data directory holding ptb/ and tinyshakespeare/ (default: $TINYINFER_DATA,
    /// then ../shared/data, then <repo>/../shared/data).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Output directory for epoch-N.json, final.json and summary.json.
    #[arg(long, value_name = "DIR", default_value = "runs/lm")]
    pub out: PathBuf,
    /// Output head: softmax (K = 1), moc (mixture of contexts) or mos (mixture of softmaxes).
    #[arg(long, value_enum, default_value = "softmax")]
    pub head: HeadKind,
    /// Mixture components K (default: 1 for softmax, 4 otherwise).
    #[arg(long)]
    pub k: Option<usize>,
    /// Embedding size d (also the head's latent size; the decoder is tied to the embedding).
    #[arg(long, default_value_t = 128)]
    pub emb: usize,
    /// LSTM hidden sizes: one value (repeated --layers times) or a comma list, one per layer.
    #[arg(long, value_delimiter = ',', default_value = "256")]
    pub hidden: Vec<usize>,
    /// Number of LSTM layers (when --hidden is a single value).
    #[arg(long, default_value_t = 1)]
    pub layers: usize,
    /// Locked dropout on the embedding output.
    #[arg(long, default_value_t = 0.0)]
    pub dropout_in: f64,
    /// Locked dropout between LSTM layers (default: --dropout-out).
    #[arg(long)]
    pub dropout_hid: Option<f64>,
    /// Locked dropout on the last LSTM layer's output.
    #[arg(long, default_value_t = 0.0)]
    pub dropout_out: f64,
    /// Locked dropout on the head latents h_k.
    #[arg(long, default_value_t = 0.0)]
    pub dropout_latent: f64,
    /// Embedding dropout: whole word types dropped from the input lookup (not the decoder).
    #[arg(long, default_value_t = 0.0)]
    pub dropout_emb: f64,
    /// DropConnect on the recurrent weights W_hh (one mask per segment).
    #[arg(long, default_value_t = 0.0)]
    pub dropout_weight: f64,
    /// Truncated-BPTT segment length (e.g. 35 words, 100 characters).
    #[arg(long, default_value_t = 35)]
    pub bptt: usize,
    /// Columns (sequences) per step. Measured on 2 threads: PTB d 128 H 256 softmax 4.6k
    /// tok/s at 32, 4.5k at 64; Shakespeare d 64 H 256 bptt 100: 15.8k at 32, 18.0k at 64,
    /// 18.7k at 128.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Training epochs (the cosine schedule spans all of them).
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Peak learning rate (default: 2e-3 for adam, 20 for sgd).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Optimiser.
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: Optim,
    /// Clip the global L2 norm of the gradient to this (0: no clipping; default 0.25 for
    /// sgd, 1.0 for adam).
    #[arg(long)]
    pub clip: Option<f64>,
    /// Warm-up steps (default: 1 % of all steps, at most 300).
    #[arg(long)]
    pub warmup: Option<usize>,
    /// L2 weight decay added to the gradient of every parameter by the optimiser (burn's
    /// `WeightDecayConfig`; 0: off).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Averaged SGD (ASGD): from the start of epoch EPOCH on, keep the running mean of the
    /// weights after every optimizer step (AWD-LSTM's averaging, with either optimizer;
    /// `--optimizer sgd` is the paper's). The mean is what is validated after each epoch and
    /// written to epoch-N.json and final.json.
    #[arg(long, value_name = "EPOCH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asgd_from: Option<usize>,
    /// NT-ASGD's trigger (AWD-LSTM): start averaging at the next epoch once an epoch's
    /// validation NLL is worse than the best of the epochs before the last N (the paper's
    /// non-monotone interval is 5). With --asgd-from, whichever comes first.
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asgd_nonmono: Option<usize>,
    /// Use only the first N training tokens.
    #[arg(long, value_name = "N")]
    pub train_limit: Option<usize>,
    /// Evaluate the per-epoch validation perplexity on only the first N validation tokens.
    #[arg(long, value_name = "N")]
    pub valid_limit: Option<usize>,
    /// Columns for evaluation (1: exact convention; see the module docs).
    #[arg(long, default_value_t = 1)]
    pub eval_batch: usize,
    /// Time steps per evaluation chunk.
    #[arg(long, default_value_t = 256)]
    pub eval_chunk: usize,
    /// Stop training after M minutes of wall time (finishing the current step), then still
    /// validate and write final.json and summary.json.
    #[arg(long, value_name = "M")]
    pub max_minutes: Option<f64>,
    /// Skip the final test-set evaluation.
    #[arg(long)]
    pub no_test: bool,
    /// Seed, threads, progress.
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunFlags,
}

impl TrainerArgs for TrainLmArgs {
    fn validate(&self) -> Result<()> {
        ensure_at_least("--epochs", self.epochs, 1)?;
        ensure_at_least("--batch", self.batch, 1)?;
        ensure_at_least("--bptt", self.bptt, 1)?;
        ensure_at_least("--eval-batch", self.eval_batch, 1)?;
        ensure_at_least("--eval-chunk", self.eval_chunk, 1)?;
        ensure!(!self.hidden.is_empty(), "--hidden needs a value");
        ensure!(
            self.hidden.len() == 1 || self.layers == 1 || self.layers == self.hidden.len(),
            "--layers {} disagrees with the {} sizes of --hidden",
            self.layers,
            self.hidden.len()
        );
        ensure_positive("--lr", self.lr())?;
        let clip = self.clip();
        ensure!(
            clip.is_finite() && clip >= 0.0,
            "--clip must be ≥ 0, got {clip}"
        );
        ensure!(
            self.weight_decay.is_finite() && self.weight_decay >= 0.0,
            "--weight-decay must be ≥ 0"
        );
        for (name, p) in [
            ("--dropout-in", self.dropout_in),
            ("--dropout-hid", self.dropout_hid.unwrap_or(0.0)),
            ("--dropout-out", self.dropout_out),
            ("--dropout-latent", self.dropout_latent),
            ("--dropout-emb", self.dropout_emb),
            ("--dropout-weight", self.dropout_weight),
        ] {
            ensure!((0.0..1.0).contains(&p), "{name} must be in [0, 1), got {p}");
        }
        if let Some(e) = self.asgd_from {
            ensure!(
                (1..=self.epochs).contains(&e),
                "--asgd-from must be an epoch of the run, 1..={}, got {e}",
                self.epochs
            );
        }
        if let Some(n) = self.asgd_nonmono {
            ensure_at_least("--asgd-nonmono", n, 1)?;
        }
        ensure_limit("--train-limit", self.train_limit, 2)?;
        ensure_limit("--valid-limit", self.valid_limit, 1)?;
        if let Some(m) = self.max_minutes {
            ensure!(
                m.is_finite() && m > 0.0,
                "--max-minutes must be positive, got {m}"
            );
            ensure!(
                self.run.resume.is_none(),
                "--max-minutes ties the learning-rate schedule to wall time, so a resumed run \
                 could not continue it: resume without it (and split long runs with --stop-after)"
            );
        }
        self.config(2).validate()
    }

    fn run_flags(&self) -> &RunFlags {
        &self.run
    }

    fn epochs(&self) -> usize {
        self.epochs
    }
}

impl TrainLmArgs {
    /// Mixture components K.
    pub fn k(&self) -> usize {
        self.k
            .unwrap_or(if self.head == HeadKind::Softmax { 1 } else { 4 })
    }

    /// Hidden sizes per layer.
    pub fn hidden_sizes(&self) -> Vec<usize> {
        if self.hidden.len() == 1 {
            vec![self.hidden[0]; self.layers]
        } else {
            self.hidden.clone()
        }
    }

    /// Peak learning rate.
    pub fn lr(&self) -> f64 {
        self.lr.unwrap_or(match self.optimizer {
            Optim::Adam => 2e-3,
            Optim::Sgd => 20.0,
        })
    }

    /// Global gradient-norm clip (0: none).
    pub fn clip(&self) -> f64 {
        self.clip.unwrap_or(match self.optimizer {
            Optim::Adam => 1.0,
            Optim::Sgd => 0.25,
        })
    }

    /// Dropout rates.
    pub fn dropouts(&self) -> Dropouts {
        Dropouts {
            input: self.dropout_in,
            hidden: self.dropout_hid.unwrap_or(self.dropout_out),
            output: self.dropout_out,
            latent: self.dropout_latent,
            embedding: self.dropout_emb,
            weight: self.dropout_weight,
        }
    }

    /// The architecture for a vocabulary of `vocab` tokens.
    pub fn config(&self, vocab: usize) -> LmConfig {
        LmConfig {
            vocab,
            emb: self.emb,
            hidden: self.hidden_sizes(),
            head: self.head,
            k: self.k(),
        }
    }
}

/// Statistics of one epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LmEpochStats {
    /// 1-based epoch.
    pub epoch: usize,
    /// False when the time budget cut the epoch short.
    pub complete: bool,
    /// Mean training NLL (nats/token) over the epoch's steps (with dropout).
    pub train_nll: f64,
    /// exp(train_nll).
    pub train_ppl: f64,
    /// Validation NLL (nats/token) after the epoch.
    pub valid_nll: f64,
    /// Validation perplexity after the epoch.
    pub valid_ppl: f64,
    /// Validation tokens predicted.
    pub valid_tokens: usize,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Training tokens per second (training steps only).
    pub tokens_per_second: f64,
    /// Training tokens processed.
    pub train_tokens: usize,
    /// Seconds of training steps.
    pub train_seconds: f64,
    /// Seconds of validation.
    pub valid_seconds: f64,
    /// Optimizer steps in the averaged weights after the epoch (0: not averaging yet;
    /// `--asgd-from`, `--asgd-nonmono`). The validation figures are the average's.
    #[serde(default)]
    pub averaged_steps: usize,
}

/// The running mean of averaged SGD after epoch `epoch`, beside `resume.ckpt`.
fn average_path(out: &std::path::Path, epoch: usize) -> PathBuf {
    out.join(format!("average-{epoch}.json"))
}

/// Whether epoch `epoch` (1-based) averages its weights: `--asgd-from` reached, or
/// NT-ASGD's trigger fired after an earlier epoch. `valid` holds the validation NLLs of the
/// epochs before it. The trigger after epoch `j`: more than `n` epochs before it, and its NLL
/// above the best of the epochs before the last `n` (AWD-LSTM's `val_loss >
/// min(best_val_loss[:-nonmono])`). Recomputed from the history, so a resumed run
/// decides as the uninterrupted one.
pub fn averaging(epoch: usize, from: Option<usize>, nonmono: Option<usize>, valid: &[f64]) -> bool {
    if from.is_some_and(|f| epoch >= f) {
        return true;
    }
    let Some(n) = nonmono else {
        return false;
    };
    (1..epoch.min(valid.len() + 1)).any(|j| {
        // Epoch j's NLL is valid[j - 1]; the epochs before it are valid[..j - 1].
        let before = &valid[..j - 1];
        before.len() > n
            && before[..before.len() - n]
                .iter()
                .any(|&best| valid[j - 1] > best)
    })
}

/// What a run reports (also written as `summary.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LmSummary {
    /// Dataset name.
    pub dataset: String,
    /// Parameters (tied embedding counted once).
    pub params: usize,
    /// The architecture.
    pub config: LmConfig,
    /// Dropout rates.
    pub dropouts: Dropouts,
    /// Validation perplexity of the final model.
    pub valid_ppl: f64,
    /// Validation tokens behind `valid_ppl`.
    pub valid_tokens: usize,
    /// Test perplexity of the final model (NaN with --no-test).
    pub test_ppl: f64,
    /// Test tokens predicted.
    pub test_tokens: usize,
    /// Seconds of the test evaluation.
    pub test_seconds: f64,
    /// Epochs started (the last one may be incomplete).
    pub epochs: usize,
    /// True when --max-minutes stopped training.
    pub stopped_by_time: bool,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Wall-clock seconds of the whole run.
    pub seconds: f64,
    /// Training tokens per second (training steps only).
    pub tokens_per_second: f64,
    /// Training tokens in the (possibly limited) training stream.
    pub train_tokens: usize,
    /// Worker threads.
    pub threads: usize,
    /// The flags.
    pub args: serde_json::Value,
    /// Per-epoch statistics.
    pub history: Vec<LmEpochStats>,
    /// The final model (`<out>/final.json`).
    pub final_json: PathBuf,
}

fn lr_at(base: f64, progress: f64, step: usize, warmup: usize) -> f64 {
    warmup_cosine(base, step, warmup, progress, 0.02)
}

/// A time-major segment of `stream` cut into `batch` columns of `cols` tokens each:
/// `(inputs, targets)` for steps `i .. i+t` of every column.
fn segment(stream: &[u32], batch: usize, cols: usize, i: usize, t: usize) -> (Vec<u32>, Vec<u32>) {
    let mut x = Vec::with_capacity(t * batch);
    let mut y = Vec::with_capacity(t * batch);
    for s in 0..t {
        for b in 0..batch {
            x.push(stream[b * cols + i + s]);
            y.push(stream[b * cols + i + s + 1]);
        }
    }
    (x, y)
}

/// Sum of `-log P` over the predictions of `targets` with inputs `inputs` (same length,
/// `inputs[j]` precedes `targets[j]`), split into `batch` columns each starting from a
/// zero state; any remainder continues the last column with a batch of one.
fn nll_sum(model: &LmModel, inputs: &[u32], targets: &[u32], batch: usize, chunk: usize) -> f64 {
    let n = targets.len();
    let b = batch.clamp(1, n.max(1));
    let cols = n / b;
    let mut total = 0f64;
    let mut state = model.zero_state(b);
    let mut i = 0;
    while i < cols {
        let t = chunk.min(cols - i);
        let mut x = Vec::with_capacity(t * b);
        let mut y = Vec::with_capacity(t * b);
        for s in 0..t {
            for c in 0..b {
                x.push(inputs[c * cols + i + s]);
                y.push(targets[c * cols + i + s]);
            }
        }
        let (out, st) = model.segment_loss(&x, &y, b, state, None);
        state = st;
        total += out.nll_sum;
        i += t;
    }
    let rest = b * cols;
    if rest < n {
        // The remainder follows the last column: carry its state.
        let mut st = state;
        if b > 1 {
            let pick = |t: Tensor<2>| {
                let [_, h] = t.dims();
                t.slice([b - 1..b, 0..h])
            };
            st.h = st.h.into_iter().map(pick).collect();
            st.c = st.c.into_iter().map(pick).collect();
        }
        let mut j = rest;
        while j < n {
            let t = chunk.min(n - j);
            let (out, s2) = model.segment_loss(&inputs[j..j + t], &targets[j..j + t], 1, st, None);
            st = s2;
            total += out.nll_sum;
            j += t;
        }
    }
    total
}

/// Mean NLL (nats/token) of `model` (eval mode: pass a non-autodiff model) over `tokens`:
/// every token predicted from the ones before it, the first from `start` and a zero
/// state. `batch` > 1 cuts the split into independent columns (see the module docs).
/// Returns 0 for no tokens.
pub fn mean_nll(model: &LmModel, tokens: &[u32], start: u32, batch: usize, chunk: usize) -> f64 {
    if tokens.is_empty() {
        return 0.0;
    }
    let mut inputs = Vec::with_capacity(tokens.len());
    inputs.push(start);
    inputs.extend_from_slice(&tokens[..tokens.len() - 1]);
    nll_sum(model, &inputs, tokens, batch, chunk.max(1)) / tokens.len() as f64
}

/// Perplexity of a saved float model over `tokens` (same convention as [`mean_nll`]),
/// evaluated with burn in eval mode.
pub fn float_ppl(f: &LmF, tokens: &[u32], batch: usize) -> f64 {
    let model = LmModel::from_float(f, &Device::flex());
    let start = start_token(f.level, &f.vocab);
    mean_nll(&model, tokens, start, batch, 256).exp()
}

/// Clips the global L2 norm of `grads` to `max` (if > 0); returns the norm before clipping.
/// (burn's own `GradientClipping::Norm` clips every parameter tensor separately.)
fn clip_global(grads: &mut GradientsParams, ids: &(Vec<ParamId>, Vec<ParamId>), max: f64) -> f64 {
    let mut sq = 0f64;
    for id in &ids.0 {
        if let Some(g) = grads.get::<2>(*id) {
            sq += g.square().sum().into_scalar::<f32>() as f64;
        }
    }
    for id in &ids.1 {
        if let Some(g) = grads.get::<1>(*id) {
            sq += g.square().sum().into_scalar::<f32>() as f64;
        }
    }
    let norm = sq.sqrt();
    if max > 0.0 && norm > max {
        let s = (max / norm) as f32;
        for id in &ids.0 {
            if let Some(g) = grads.remove::<2>(*id) {
                grads.register(*id, g.mul_scalar(s));
            }
        }
        for id in &ids.1 {
            if let Some(g) = grads.remove::<1>(*id) {
                grads.register(*id, g.mul_scalar(s));
            }
        }
    }
    norm
}

/// Trains a language model as `args` says; see the module docs for what is written.
///
/// # Errors
/// Bad flags, missing data, divergence, or I/O errors writing checkpoints.
pub fn run(args: &TrainLmArgs) -> Result<LmSummary> {
    check_flags(super::NAME, args)?;
    let dir = shared_data_dir(args.data.as_deref());
    let corpus = args
        .dataset
        .load(&dir)
        .with_context(|| format!("loading {}", args.dataset.name()))?;
    run_on(args, corpus)
}

/// [`run`] on an already loaded corpus (tests use tiny ones).
///
/// # Errors
/// As [`run`].
pub fn run_on(args: &TrainLmArgs, corpus: Corpus) -> Result<LmSummary> {
    train_with(super::NAME, args, |a| train(a, corpus))
}

/// Keeps freed memory in the process instead of returning every large buffer to the
/// kernel: glibc serves allocations above 32 MB (the decoder's `[rows, V]` tensors) with
/// fresh `mmap`s, and the page faults on them cost more than the arithmetic (measured:
/// an elementwise product of two 1120×10000 tensors 27 ms → 3.5 ms, a whole PTB
/// training step about 1.7× faster).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_TOP_PAD: i32 = -2;
        const M_MMAP_MAX: i32 = -4;
        // SAFETY: mallopt only changes glibc malloc tunables; any value is valid.
        unsafe {
            mallopt(M_MMAP_MAX, 0);
            mallopt(M_TRIM_THRESHOLD, i32::MAX);
            mallopt(M_TOP_PAD, 256 << 20);
        }
    }
}

fn train(args: &TrainLmArgs, mut corpus: Corpus) -> Result<LmSummary> {
    let start = Instant::now();
    keep_freed_memory();
    let budget = args.max_minutes.map(|m| m * 60.0);
    let first = |v: &Vec<u32>, n: usize| v[..n.min(v.len())].to_vec();
    corpus.train = limited(std::mem::take(&mut corpus.train), args.train_limit, first);
    let valid = limited(corpus.valid.clone(), args.valid_limit, first);
    let cfg = args.config(corpus.vocab.len());
    cfg.validate()?;
    let bs = args.batch;
    let cols = corpus.train.len() / bs;
    ensure!(
        cols >= 2,
        "{} training tokens are too few for --batch {bs}",
        corpus.train.len()
    );
    let seg_per_epoch = (cols - 1).div_ceil(args.bptt);
    let wd = (args.weight_decay > 0.0).then(|| WeightDecayConfig::new(args.weight_decay as f32));
    let (session, mut model, mut optim, mut history) = open_run::<_, _, LmEpochStats>(
        super::NAME,
        args,
        &args.out,
        seg_per_epoch,
        |rng, device| {
            let mut m = LmModel::new(&cfg, corpus.level, corpus.vocab.clone(), rng, device);
            m.init_unigram_bias(&corpus.train);
            m
        },
        |_| match args.optimizer {
            Optim::Adam => AdamConfig::new()
                .with_epsilon(1e-8)
                .with_weight_decay(wd)
                .init(),
            Optim::Sgd => SgdConfig::new().with_weight_decay(wd).init(),
        },
    )?;
    let start_tok = corpus.start_token();
    let params = cfg.params();
    let ids = model.param_ids();
    let drop = args.dropouts();
    let base_lr = args.lr();
    let clip = args.clip();

    let total = seg_per_epoch * args.epochs;
    let warmup = args.warmup.unwrap_or((total / 100).clamp(1, 300)).max(1);
    let threads = rayon::current_num_threads();
    let hs = cfg
        .hidden
        .iter()
        .map(|h| h.to_string())
        .collect::<Vec<_>>()
        .join(",");
    println!(
        "LM {} {} K {} d {} H {hs}: {params} parameters; {} train / {} valid / {} test tokens, V {}; \
         {} epochs x {seg_per_epoch} steps of {bs} x {}; {:?} lr {base_lr} clip {clip} warm-up {warmup}; \
         dropout {:?}; seed {}; {threads} threads; data {}{}",
        args.dataset.name(),
        cfg.head.name(),
        cfg.k,
        cfg.emb,
        corpus.train.len(),
        valid.len(),
        corpus.test.len(),
        cfg.vocab,
        args.epochs,
        args.bptt,
        args.optimizer,
        drop,
        args.run.seed,
        shared_data_dir(args.data.as_deref()).display(),
        resumed_note(&session)
    );

    // Averaged SGD: the running mean of the weights and its step count; a resumed run
    // takes them back from the file its last epoch wrote beside resume.ckpt.
    let mut avg: Option<(LmF, usize)> = match history.last() {
        Some(h) if h.averaged_steps > 0 => {
            let path = average_path(&args.out, h.epoch);
            let f = LmF::load(&path).with_context(|| {
                format!(
                    "resuming averaged SGD after epoch {}: its running mean {} is missing or damaged",
                    h.epoch,
                    path.display()
                )
            })?;
            Some((f, h.averaged_steps))
        }
        _ => None,
    };
    let averaged = |avg: &Option<(LmF, usize)>, model: &LmModel| match avg {
        Some((a, _)) => LmModel::from_float(a, &Device::flex()),
        None => model.valid(),
    };

    let lines = log_lines(args.run.quiet);
    let (mut all_tokens, mut all_secs) = (0usize, 0f64);
    let mut step = session.step;
    let mut stopped = false;
    let mut epochs_run = history.len();
    for epoch in session.epochs_here() {
        epochs_run = epoch;
        let epoch_start = Instant::now();
        let mut rng = session.epoch_rng(epoch);
        let pb = EpochProgress::new(epoch, args.epochs, seg_per_epoch, args.run.quiet, lines);
        let (mut loss_sum, mut seen) = (0f64, 0usize);
        let mut lr = base_lr;
        let past: Vec<f64> = history.iter().map(|h| h.valid_nll).collect();
        let averages = averaging(epoch, args.asgd_from, args.asgd_nonmono, &past);
        let mut state = model.zero_state(bs);
        let mut complete = true;
        let mut i = 0;
        let mut s = 0;
        while i < cols - 1 {
            if let Some(b) = budget {
                if start.elapsed().as_secs_f64() >= b {
                    stopped = true;
                    complete = false;
                    break;
                }
            }
            let t = args.bptt.min(cols - 1 - i);
            let (x, y) = segment(&corpus.train, bs, cols, i, t);
            i += t;
            let mut progress = step as f64 / total as f64;
            if let Some(b) = budget {
                progress = progress.max(start.elapsed().as_secs_f64() / b);
            }
            lr = lr_at(base_lr, progress, step, warmup);
            step += 1;
            s += 1;
            let masks = model.masks(&drop, bs, &mut rng);
            let (out, st) = model.segment_loss(&x, &y, bs, state, Some(&masks));
            state = st.detach();
            let loss = out.loss.expect("an autodiff model");
            let mut grads = GradientsParams::from_grads(loss.backward(), &model);
            if clip > 0.0 {
                clip_global(&mut grads, &ids, clip);
            }
            model = optim.step(lr, model, grads);
            if averages {
                let w = model.valid().to_float();
                match &mut avg {
                    Some((a, n)) => {
                        *n += 1;
                        a.average_in(&w, *n);
                    }
                    None => avg = Some((w, 1)),
                }
            }
            let lv = out.nll_sum / (t * bs) as f64;
            ensure!(
                lv.is_finite(),
                "training diverged (loss {lv}) at epoch {epoch} step {s}: lower --lr"
            );
            loss_sum += out.nll_sum;
            seen += t * bs;
            let secs = epoch_start.elapsed().as_secs_f64();
            let mean = loss_sum / seen as f64;
            let msg = format!(
                "loss {mean:.3} ppl {:.1}, {:.0} tok/s, lr {lr:.2e}",
                mean.exp(),
                seen as f64 / secs
            );
            pb.step(s, msg, secs);
        }
        let step_secs = epoch_start.elapsed().as_secs_f64();
        pb.finish();
        all_tokens += seen;
        all_secs += step_secs;

        let eval_model = averaged(&avg, &model);
        let ckpt = args.out.join(format!("epoch-{epoch}.json"));
        if complete {
            eval_model.to_float().save(&ckpt)?;
        }
        let v0 = Instant::now();
        let vnll = mean_nll(
            &eval_model,
            &valid,
            start_tok,
            args.eval_batch,
            args.eval_chunk,
        );
        let train_nll = loss_sum / seen.max(1) as f64;
        let stats = LmEpochStats {
            epoch,
            complete,
            train_nll,
            train_ppl: train_nll.exp(),
            valid_nll: vnll,
            valid_ppl: vnll.exp(),
            valid_tokens: valid.len(),
            lr,
            tokens_per_second: seen as f64 / step_secs.max(1e-9),
            train_tokens: seen,
            train_seconds: step_secs,
            valid_seconds: v0.elapsed().as_secs_f64(),
            averaged_steps: avg.as_ref().map_or(0, |(_, n)| *n),
        };
        println!(
            "epoch {epoch:>3}/{}{}: train loss {:.3} (ppl {:.1}) | valid ppl {:.2} ({} tokens) | {:.0} tok/s, train {:.0} s, valid {:.0} s{}",
            args.epochs,
            if complete { "" } else { " (cut by --max-minutes)" },
            stats.train_nll,
            stats.train_ppl,
            stats.valid_ppl,
            valid.len(),
            stats.tokens_per_second,
            stats.train_seconds,
            stats.valid_seconds,
            if complete { format!(" | {}", ckpt.display()) } else { String::new() }
        );
        history.push(stats);
        if stopped {
            break;
        }
        // The running mean first, then the checkpoint that names it: a run stopped
        // between the two resumes from the previous pair.
        if let Some((a, _)) = &avg {
            a.save(&average_path(&args.out, epoch))?;
        }
        session.save(&model, &optim, epoch, step, &history)?;
        // The earlier epochs' means: no checkpoint names them any more (all of
        // them, in case a run was stopped between a save and this removal).
        for e in 1..epoch {
            let _ = std::fs::remove_file(average_path(&args.out, e));
        }
    }
    // With --stop-after the run is not over: no final model, test or summary.json.
    let finished = !session.stops_early();
    let eval_model = averaged(&avg, &model);
    let final_json = if finished {
        let f = eval_model.to_float();
        f.validate().context("the trained model")?;
        let path = args.out.join("final.json");
        f.save(&path)?;
        path
    } else {
        args.out.join(format!("epoch-{epochs_run}.json"))
    };
    let valid_ppl = history.last().map_or(f64::NAN, |h| h.valid_ppl);
    let no_test = args.no_test || !finished;
    let (test_ppl, test_secs) = if no_test {
        (f64::NAN, 0.0)
    } else {
        let t0 = Instant::now();
        let nll = mean_nll(
            &eval_model,
            &corpus.test,
            start_tok,
            args.eval_batch,
            args.eval_chunk,
        );
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "test ppl {:.2} ({} tokens, {secs:.0} s)",
            nll.exp(),
            corpus.test.len()
        );
        (nll.exp(), secs)
    };
    let summary = LmSummary {
        dataset: args.dataset.name().to_string(),
        params,
        config: cfg,
        dropouts: drop,
        valid_ppl,
        valid_tokens: valid.len(),
        test_ppl,
        test_tokens: if no_test { 0 } else { corpus.test.len() },
        test_seconds: test_secs,
        epochs: epochs_run,
        stopped_by_time: stopped,
        steps: step,
        seconds: start.elapsed().as_secs_f64(),
        tokens_per_second: all_tokens as f64 / all_secs.max(1e-9),
        train_tokens: corpus.train.len(),
        threads,
        args: serde_json::to_value(args)?,
        history,
        final_json: final_json.clone(),
    };
    if !finished {
        session.report_stop(epochs_run);
        return Ok(summary);
    }
    write_json(&args.out.join("summary.json"), &summary)?;
    println!(
        "done: {} epoch(s){} in {:.0} s, {:.0} tok/s; valid ppl {:.2}, test ppl {:.2}; {}",
        summary.epochs,
        if stopped {
            " (stopped by --max-minutes)"
        } else {
            ""
        },
        summary.seconds,
        summary.tokens_per_second,
        valid_ppl,
        test_ppl,
        final_json.display()
    );
    Ok(summary)
}
