//! What every trainer shares: the flags every trainer has ([`RunFlags`])
//! and the checks of the others, default flags, a thread pool of
//! `--threads`, the output directory and its JSON files, the warm-up +
//! cosine learning rate, per-epoch progress (a bar on a terminal, lines in a
//! log), and reading burn tensors back.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{ensure, Context, Result};
use burn::tensor::Tensor;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::common::blob::write_atomic;

/// The flags every trainer has, flattened into each trainer's own.
#[derive(clap::Args, Clone, Debug, serde::Serialize)]
pub struct RunFlags {
    /// Seed of every random draw of training (initialisation, shuffling, and the
    /// family's augmentation, mixup or dropout).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// No progress bar or progress lines.
    #[arg(long)]
    pub quiet: bool,
}

/// A trainer's flags.
pub trait TrainerArgs: Sync {
    /// Checks the flags, naming the one at fault.
    ///
    /// # Errors
    /// The first flag at fault.
    fn validate(&self) -> Result<()>;

    /// The flags every trainer has.
    fn run_flags(&self) -> &RunFlags;
}

/// Checks `args`, then runs `train` on them in a pool of `--threads`.
///
/// # Errors
/// Bad flags, or `train`'s error.
pub fn train_with<A: TrainerArgs, S: Send>(
    args: &A,
    train: impl FnOnce(&A) -> Result<S> + Send,
) -> Result<S> {
    args.validate()?;
    with_threads(args.run_flags().threads, || train(args))
}

/// Checks a count flag such as `--epochs`: at least `min`.
///
/// # Errors
/// Names the flag.
pub fn ensure_at_least(flag: &str, value: usize, min: usize) -> Result<()> {
    ensure!(value >= min, "{flag} must be at least {min}");
    Ok(())
}

/// Checks a limit flag such as `--train-limit`: absent, or at least `min`.
///
/// # Errors
/// Names the flag.
pub fn ensure_limit(flag: &str, value: Option<usize>, min: usize) -> Result<()> {
    ensure!(
        value.is_none_or(|n| n >= min),
        "{flag} must be at least {min}"
    );
    Ok(())
}

/// Checks a rate flag such as `--lr`: positive and finite.
///
/// # Errors
/// Names the flag and its value.
pub fn ensure_positive(flag: &str, value: f64) -> Result<()> {
    ensure!(
        value.is_finite() && value > 0.0,
        "{flag} must be positive and finite, got {value}"
    );
    Ok(())
}

#[derive(clap::Parser)]
struct Wrap<A: clap::Args> {
    #[command(flatten)]
    args: A,
}

/// A trainer's flags with every default, as `tinyinfer <command>` alone would give them
/// (what tests start from).
pub fn default_args<A: clap::Args>() -> A {
    <Wrap<A> as clap::Parser>::parse_from(["tinyinfer"]).args
}

/// `set` cut by a limit flag such as `--train-limit`: `take(&set, n)` (its
/// first `n` items), or all of it when the flag is absent.
pub fn limited<T>(set: T, limit: Option<usize>, take: impl FnOnce(&T, usize) -> T) -> T {
    match limit {
        Some(n) => take(&set, n),
        None => set,
    }
}

/// Runs `f` in a pool of `threads` worker threads (0: rayon's global pool, all cores).
///
/// # Errors
/// A pool that cannot be built, or `f`'s error.
pub fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    if threads == 0 {
        return f();
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .with_context(|| format!("creating a pool of --threads {threads}"))?;
    pool.install(f)
}

/// Creates the `--out` directory.
///
/// # Errors
/// An I/O error, naming the directory.
pub fn create_out_dir(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating --out directory {}", out.display()))
}

/// Writes `value` as pretty JSON to `path`, atomically.
///
/// # Errors
/// Serialization or I/O errors, naming the path.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    write_atomic(path, serde_json::to_string_pretty(value)?.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
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

/// Progress of the cosine after warm-up: step `t` of `total`, the first `warmup` excluded.
pub fn step_progress(t: usize, warmup: usize, total: usize) -> f64 {
    t.saturating_sub(warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64
}

/// Whether progress goes to the log as lines (not quiet, stderr not a terminal).
pub fn log_lines(quiet: bool) -> bool {
    !quiet && !std::io::stderr().is_terminal()
}

/// The progress of one epoch: a bar on stderr, or (`lines`) a line every
/// 5 % of the steps, or nothing (`quiet`).
pub struct EpochProgress {
    bar: ProgressBar,
    lines: bool,
    epoch: usize,
    steps: usize,
}

impl EpochProgress {
    /// Starts epoch `epoch` of `epochs`, `steps` steps long.
    pub fn new(epoch: usize, epochs: usize, steps: usize, quiet: bool, lines: bool) -> Self {
        let bar = if quiet || lines {
            ProgressBar::hidden()
        } else {
            ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr())
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:25}] {pos}/{len} {msg} [{elapsed}<{eta}]")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("epoch {epoch}/{epochs}"));
        EpochProgress {
            bar,
            lines,
            epoch,
            steps,
        }
    }

    /// Step `done` (1-based) finished after `secs` seconds of the epoch; `msg` says how it goes.
    pub fn step(&self, done: usize, msg: String, secs: f64) {
        if self.lines && done.is_multiple_of((self.steps / 20).max(1)) {
            eprintln!(
                "epoch {} step {done}/{}: {msg} [{secs:.0} s]",
                self.epoch, self.steps
            );
        }
        self.bar.set_message(msg);
        self.bar.inc(1);
    }

    /// Ends the epoch, clearing the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A tensor's values as f32, row-major.
pub fn tensor_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 tensor data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_cut_only_when_given() {
        let first = |v: &Vec<u8>, n: usize| v[..n.min(v.len())].to_vec();
        assert_eq!(limited(vec![1, 2, 3], Some(2), first), vec![1, 2]);
        assert_eq!(limited(vec![1, 2, 3], Some(9), first), vec![1, 2, 3]);
        assert_eq!(limited(vec![1, 2, 3], None, first), vec![1, 2, 3]);
    }

    #[test]
    fn flag_checks_name_the_flag() {
        assert!(ensure_at_least("--epochs", 1, 1).is_ok());
        let e = ensure_at_least("--epochs", 0, 1).unwrap_err().to_string();
        assert_eq!(e, "--epochs must be at least 1");
        assert!(ensure_limit("--train-limit", None, 2).is_ok());
        let e = ensure_limit("--train-limit", Some(1), 2)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "--train-limit must be at least 2");
        assert!(ensure_positive("--lr", 0.1).is_ok());
        assert!(ensure_positive("--lr", f64::NAN).is_err());
        let e = ensure_positive("--lr", 0.0).unwrap_err().to_string();
        assert_eq!(e, "--lr must be positive and finite, got 0");
    }

    #[test]
    fn schedule_warms_up_then_decays_to_its_floor() {
        assert_eq!(warmup_cosine(1.0, 0, 4, 0.0, 0.0), 0.25);
        assert_eq!(warmup_cosine(1.0, 4, 4, 0.0, 0.0), 1.0);
        assert!((warmup_cosine(1.0, 9, 4, 1.0, 0.02) - 0.02).abs() < 1e-12);
        assert_eq!(step_progress(4, 4, 14), 0.0);
        assert_eq!(step_progress(14, 4, 14), 1.0);
    }
}
