//! What every trainer shares: the flags every trainer has ([`RunFlags`])
//! and the checks of the others, default flags, a thread pool of
//! `--threads`, the opening of a run and its resumption ([`open_run`],
//! [`Session`]), the output directory and its JSON files, the warm-up +
//! cosine learning rate, per-epoch progress (a bar on a terminal, lines in a
//! log), and reading burn tensors back.
//!
//! # Resuming and determinism
//! Every random draw of a run comes from its `--seed`: the model's
//! initialisation from `StdRng::seed_from_u64(seed)`, and everything an epoch
//! draws (shuffling, augmentation, mixup, dropout masks) from its own
//! generator [`epoch_rng`]`(seed, epoch)`, so the state of the randomness at
//! the start of an epoch is a function of the seed and the epoch alone. The
//! parameters get ids numbered in module order ([`stable_ids`]) instead of
//! burn's random ones, so a checkpoint's bytes depend only on the weights.
//!
//! After every epoch the session writes `resume.ckpt`
//! ([`crate::common::checkpoint`]): the model record, the optimizer record
//! (Adam moments, SGD momentum), the epoch, the step, the flags and the
//! history. `--resume` reads it back and the run continues at the next epoch
//! as if it had not stopped: the same weights, bit for bit, as an
//! uninterrupted run with the same flags and thread count.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, ensure, Context, Result};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Tensor};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::common::blob::write_atomic;
use crate::common::checkpoint::{self, ResumeParts, RESUME_FILE};

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
    /// Continue a run from its resume checkpoint (`resume.ckpt` in its run
    /// directory, written after every epoch; or the directory itself): the
    /// weights, optimizer state, schedule position and randomness carry on, so
    /// the result is the uninterrupted run's, bit for bit. The flags must be
    /// the run's own, except --out, --data, --threads, --quiet, --stop-after and
    /// the evaluation-only ones.
    #[arg(long, value_name = "CHECKPOINT")]
    pub resume: Option<PathBuf>,
    /// Stop after epoch N of --epochs, leaving the epoch's checkpoint and
    /// resume.ckpt (no final model); continue later with --resume.
    #[arg(long, value_name = "N")]
    pub stop_after: Option<usize>,
}

impl RunFlags {
    /// True when `--stop-after` ends this process before the last of `epochs`.
    pub fn stops_early(&self, epochs: usize) -> bool {
        self.stop_after.is_some_and(|n| n < epochs)
    }
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

    /// `--epochs`.
    fn epochs(&self) -> usize;
}

/// Checks `args` ([`check_flags`]), then runs `train` on them in a pool of
/// `--threads`.
///
/// # Errors
/// Bad flags, a bad resume checkpoint, or `train`'s error.
pub fn train_with<A: TrainerArgs + Serialize, S: Send>(
    family: &str,
    args: &A,
    train: impl FnOnce(&A) -> Result<S> + Send,
) -> Result<S> {
    check_flags(family, args)?;
    with_threads(args.run_flags().threads, || train(args))
}

/// Checks a trainer's flags: its own checks, `--stop-after` against
/// `--epochs`, and the `--resume` checkpoint of `family` against the flags
/// (its file, family, format, flags and epoch; everything but what needs the
/// data), so that a bad one is refused before any data is read.
///
/// # Errors
/// The first flag at fault, or what is wrong with the resume checkpoint.
pub fn check_flags<A: TrainerArgs + Serialize>(family: &str, args: &A) -> Result<()> {
    args.validate()?;
    let run = args.run_flags();
    if let Some(n) = run.stop_after {
        ensure!(
            (1..=args.epochs()).contains(&n),
            "--stop-after must be between 1 and --epochs ({}), got {n}",
            args.epochs()
        );
    }
    if let Some(path) = &run.resume {
        let args_json = serde_json::to_value(args)?;
        let (file, meta, _) =
            read_resume_meta::<serde_json::Value>(path, family, &args_json, args.epochs(), None)?;
        if let Some(n) = run.stop_after {
            ensure!(
                n > meta.epoch,
                "--stop-after {n}: {} is already at epoch {}",
                file.display(),
                meta.epoch
            );
        }
    }
    Ok(())
}

/// The generator of every random draw of epoch `epoch` (1-based) of a run
/// seeded `seed`: ChaCha keyed by the seed and the epoch, so that a resumed
/// run draws what the uninterrupted one drew.
pub fn epoch_rng(seed: u64, epoch: usize) -> StdRng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(epoch as u64).to_le_bytes());
    key[16..].copy_from_slice(b"tinyinfer epoch\0");
    StdRng::from_seed(key)
}

/// Renumbers `module`'s float parameters 1, 2, 3, … in module order. burn
/// draws parameter ids at random, and its records store them: with stable ids
/// the same weights give the same checkpoint bytes, and an optimizer record
/// (keyed by id) matches the model rebuilt from the same flags.
pub fn stable_ids<M: Module>(module: M) -> M {
    struct Renumber(u64);
    impl ModuleMapper for Renumber {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            self.0 += 1;
            let (_, value, mapper) = param.consume();
            Param::from_mapped_value(ParamId::from(self.0), value, mapper)
        }
    }
    module.map(&mut Renumber(0))
}

/// Id → shape of every float parameter of `module`.
fn param_shapes<M: Module>(module: &M) -> BTreeMap<u64, Vec<usize>> {
    struct Shapes(BTreeMap<u64, Vec<usize>>);
    impl ModuleVisitor for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.insert(param.id.val(), param.val().dims().to_vec());
        }
    }
    let mut v = Shapes(BTreeMap::new());
    module.visit(&mut v);
    v.0
}

/// Flags that do not change what a run computes: a resumed run may give
/// other values than the run it continues.
const FREE_FLAGS: &[&str] = &[
    "out",
    "data",
    "quiet",
    "threads",
    "resume",
    "stop_after",
    "test_limit",
    "valid_limit",
    "no_test",
    "eval_batch",
    "eval_chunk",
];

/// Refuses `now` (this command's flags) where it differs from `saved` (the
/// flags of the run that wrote `file`) in a flag outside [`FREE_FLAGS`].
fn same_flags(saved: &serde_json::Value, now: &serde_json::Value, file: &Path) -> Result<()> {
    let (Some(saved), Some(now)) = (saved.as_object(), now.as_object()) else {
        bail!(
            "{}: the flags of the run are not a JSON object",
            file.display()
        );
    };
    let show = |v: Option<&serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => "(not given)".to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let mut keys: Vec<&String> = saved.keys().chain(now.keys()).collect();
    keys.sort();
    keys.dedup();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|k| !FREE_FLAGS.contains(&k.as_str()) && saved.get(*k) != now.get(*k))
        .map(|k| {
            format!(
                "--{} {} (the run had {})",
                k.replace('_', "-"),
                show(now.get(k)),
                show(saved.get(k))
            )
        })
        .collect();
    ensure!(
        diffs.is_empty(),
        "--resume {}: this command's flags differ from the run's: {}. A resumed run continues \
         the same run (same architecture, data, schedule and seed): give it the run's flags",
        file.display(),
        diffs.join(", ")
    );
    Ok(())
}

/// Format of the JSON part of a resume checkpoint.
pub const RESUME_FORMAT: &str = "tinyinfer-resume-v1";

/// The JSON part of a resume checkpoint (after its family tag).
#[derive(Serialize, Deserialize)]
struct ResumeMeta<H> {
    /// Always [`RESUME_FORMAT`].
    format: String,
    /// Epochs completed.
    epoch: usize,
    /// Optimizer steps taken.
    step: usize,
    /// The run's flags.
    args: serde_json::Value,
    /// The family's statistics of every completed epoch.
    history: Vec<H>,
}

/// A run in progress: where it writes, where it stands, and what the next
/// resume checkpoint records. Made by [`open_run`].
pub struct Session {
    family: &'static str,
    out: PathBuf,
    args: serde_json::Value,
    seed: u64,
    epochs: usize,
    stop_after: Option<usize>,
    /// The first epoch to train (1-based; 1 unless resumed).
    pub first_epoch: usize,
    /// Optimizer steps taken before [`Self::first_epoch`].
    pub step: usize,
    /// The autodiff device the model trains on.
    pub device: Device,
    /// The resume checkpoint the run continues (None: a fresh run).
    pub resumed_from: Option<PathBuf>,
}

/// What [`open_run`] returns: the session, the model (initialised, or
/// restored), its optimizer (fresh, or with its restored state), and the
/// statistics of the epochs trained before this process (empty unless resumed).
pub type Opened<M, H> = (Session, M, ModuleOptimizer, Vec<H>);

/// Opens a run of `family` in `out`: seeds the backend, builds the model
/// (`build` draws from `StdRng::seed_from_u64(seed)` on the autodiff device)
/// with [`stable_ids`], and its optimizer (`optimizer`). With `--resume`, first
/// reads and checks the resume checkpoint (its family, the flags against
/// `args`, the step against `steps_per_epoch`, the model's shapes and the
/// optimizer state's), then restores the model, the optimizer state and the
/// position. The output directory is created only when all that succeeded.
///
/// # Errors
/// A resume checkpoint that is missing, damaged, of another family, of other
/// flags or shapes, or already complete; an output directory that cannot be
/// created.
pub fn open_run<A, M, H>(
    family: &'static str,
    args: &A,
    out: &Path,
    steps_per_epoch: usize,
    build: impl FnOnce(&mut StdRng, &Device) -> M,
    optimizer: impl FnOnce(&M) -> ModuleOptimizer,
) -> Result<Opened<M, H>>
where
    A: TrainerArgs + Serialize,
    M: Module,
    H: DeserializeOwned + Clone,
{
    let run = args.run_flags();
    let args_json = serde_json::to_value(args)?;
    let resumed = match &run.resume {
        Some(path) => Some(read_resume_meta::<H>(
            path,
            family,
            &args_json,
            args.epochs(),
            Some(steps_per_epoch),
        )?),
        None => None,
    };
    let device = Device::flex();
    device.seed(run.seed);
    let ad = device.autodiff();
    let mut rng = StdRng::seed_from_u64(run.seed);
    let mut model = stable_ids(build(&mut rng, &ad));
    let mut optim = optimizer(&model);
    let (first_epoch, step, history, resumed_from) = match resumed {
        None => (1, 0, Vec::new(), None),
        Some((file, meta, parts)) => {
            (model, optim) = restore(&file, model, optim, &parts)?;
            (meta.epoch + 1, meta.step, meta.history, Some(file))
        }
    };
    create_out_dir(out)?;
    let session = Session {
        family,
        out: out.to_path_buf(),
        args: args_json,
        seed: run.seed,
        epochs: args.epochs(),
        stop_after: run.stop_after,
        first_epoch,
        step,
        device: ad,
        resumed_from,
    };
    Ok((session, model, optim, history))
}

type Resumed<H> = (PathBuf, ResumeMeta<H>, ResumeParts);

/// Reads a resume checkpoint and checks its JSON part against this command
/// (and its step against `steps_per_epoch`, when the data is known).
fn read_resume_meta<H: DeserializeOwned>(
    path: &Path,
    family: &str,
    args: &serde_json::Value,
    epochs: usize,
    steps_per_epoch: Option<usize>,
) -> Result<Resumed<H>> {
    let (file, parts) = checkpoint::read_resume(path, family)?;
    let f = file.display();
    let meta: ResumeMeta<H> = serde_json::from_str(&parts.meta)
        .with_context(|| format!("{f}: the JSON part is not a {family} resume state"))?;
    ensure!(
        meta.format == RESUME_FORMAT,
        "{f}: format {:?}, expected {RESUME_FORMAT:?}",
        meta.format
    );
    same_flags(&meta.args, args, &file)?;
    ensure!(
        meta.epoch >= 1 && meta.history.len() == meta.epoch,
        "{f}: {} epochs completed but {} in its history",
        meta.epoch,
        meta.history.len()
    );
    ensure!(
        meta.epoch < epochs,
        "{f}: the run has already trained all {epochs} epochs; nothing to resume"
    );
    if let Some(steps) = steps_per_epoch {
        ensure!(
            meta.step == meta.epoch * steps,
            "{f}: {} steps after {} epochs, but the data gives {steps} steps per epoch: \
             the training data differs from the run's",
            meta.step,
            meta.epoch
        );
    }
    Ok((file, meta, parts))
}

/// Loads the model and optimizer records of a resume checkpoint into `model`
/// and `optim`, checking every shape first.
fn restore<M: Module>(
    file: &Path,
    model: M,
    optim: ModuleOptimizer,
    parts: &ResumeParts,
) -> Result<(M, ModuleOptimizer)> {
    let f = file.display();
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(parts.model.clone()))
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("{f}: reading the model record"))?;
    let model = model
        .try_load_record(record)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("{f}: the model record does not match the model of the flags"))?;
    let shapes = param_shapes(&model);
    let tensors = burn_pack::Reader::from_bytes(Bytes::from_bytes_vec(parts.optim.clone()))
        .and_then(|r| r.into_tensors())
        .map_err(|e| anyhow!("{e:?}"))
        .with_context(|| format!("{f}: reading the optimizer record"))?;
    for t in &tensors {
        let id = t
            .param_id
            .with_context(|| format!("{f}: optimizer state {} names no parameter", t.name))?;
        let want = shapes.get(&id).with_context(|| {
            format!(
                "{f}: optimizer state {} is for no parameter of the model",
                t.name
            )
        })?;
        ensure!(
            t.shape.as_slice() == want.as_slice(),
            "{f}: optimizer state {} has shape {:?}, its parameter {:?}",
            t.name,
            t.shape.as_slice(),
            want
        );
    }
    let record = OptimizerRecord::from_bytes(Bytes::from_bytes_vec(parts.optim.clone()))
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("{f}: reading the optimizer record"))?;
    let optim = optim.load_record(record);
    ensure!(
        optim.to_record().len() == tensors.len(),
        "{f}: the optimizer could not take back all of its state"
    );
    Ok((model, optim))
}

/// "" for a fresh run; for a resumed one, where it resumes (for the opening line).
pub fn resumed_note(session: &Session) -> String {
    match session.first_epoch {
        1 => String::new(),
        e => format!(
            "; resumed after epoch {} (step {}) from {}",
            e - 1,
            session.step,
            session
                .resumed_from
                .as_deref()
                .unwrap_or(Path::new("?"))
                .display()
        ),
    }
}

impl Session {
    /// The run directory.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// The last epoch this process trains: `--stop-after`, else `--epochs`.
    pub fn last_epoch(&self) -> usize {
        self.stop_after.unwrap_or(self.epochs).min(self.epochs)
    }

    /// True when this process stops before the run's last epoch (`--stop-after`).
    pub fn stops_early(&self) -> bool {
        self.last_epoch() < self.epochs
    }

    /// The epochs this process trains.
    pub fn epochs_here(&self) -> std::ops::RangeInclusive<usize> {
        self.first_epoch..=self.last_epoch()
    }

    /// The generator of epoch `epoch`'s random draws ([`epoch_rng`]).
    pub fn epoch_rng(&self, epoch: usize) -> StdRng {
        epoch_rng(self.seed, epoch)
    }

    /// Writes `resume.ckpt` (atomically) after epoch `epoch`, `step` optimizer
    /// steps into the run, with `history` holding every epoch's statistics.
    ///
    /// # Errors
    /// Serialization or I/O errors.
    pub fn save<M: Module, H: Serialize + Clone>(
        &self,
        model: &M,
        optim: &ModuleOptimizer,
        epoch: usize,
        step: usize,
        history: &[H],
    ) -> Result<()> {
        let meta = ResumeMeta {
            format: RESUME_FORMAT.into(),
            epoch,
            step,
            args: self.args.clone(),
            history: history.to_vec(),
        };
        let model = model
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| anyhow!("{e}"))
            .context("serializing the model record")?;
        let optim = optim
            .into_bytes()
            .map_err(|e| anyhow!("{e}"))
            .context("serializing the optimizer record")?;
        let bytes = checkpoint::encode_resume(&ResumeParts {
            meta: checkpoint::to_json(self.family, &meta)?,
            model: model.to_vec(),
            optim: optim.to_vec(),
        });
        let path = self.out.join(RESUME_FILE);
        write_atomic(&path, &bytes).with_context(|| format!("writing {}", path.display()))
    }

    /// Says where the run stopped and how to continue it.
    pub fn report_stop(&self, epoch: usize) {
        println!(
            "stopped after epoch {epoch} of {} (--stop-after); continue with --resume {}",
            self.epochs,
            self.out.join(RESUME_FILE).display()
        );
    }
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

/// What the trainers' resume tests share.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::{Path, PathBuf};

    use anyhow::Result;

    use crate::common::checkpoint::{decode_resume, encode_resume, RESUME_FILE};

    /// Trains one run three ways with `train(out, stop_after, resume)`: whole
    /// (`a`), stopped after epoch 1 then resumed (`b`), and whole again (`c`).
    /// Asserts that every one of `files` is byte-identical in the three
    /// directories, that the stopped run wrote none of `finals`, and that no
    /// temporary file is left. Returns the directory holding `a`, `b`, `c`.
    pub fn assert_resume_equal(
        files: &[&str],
        finals: &[&str],
        train: impl Fn(&Path, Option<usize>, Option<PathBuf>) -> Result<()>,
    ) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let [a, b, c] = ["a", "b", "c"].map(|n| dir.path().join(n));
        train(&a, None, None).unwrap();
        train(&b, Some(1), None).unwrap();
        for f in finals {
            assert!(!b.join(f).exists(), "the stopped run wrote {f}");
        }
        train(&b, None, Some(b.join(RESUME_FILE))).unwrap();
        train(&c, None, None).unwrap();
        for f in files {
            let want = std::fs::read(a.join(f)).unwrap();
            assert!(
                want == std::fs::read(b.join(f)).unwrap(),
                "{f}: the resumed run differs from the uninterrupted one"
            );
            assert!(
                want == std::fs::read(c.join(f)).unwrap(),
                "{f}: the same command gave other bytes"
            );
        }
        for d in [&a, &b, &c] {
            for e in std::fs::read_dir(d).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().to_string();
                assert!(!name.starts_with('.'), "left behind: {name}");
            }
        }
        dir
    }

    /// Writes the resume checkpoint `from` to `to` with `edit` applied to its JSON part.
    pub fn edit_resume(from: &Path, to: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut parts = decode_resume(&std::fs::read(from).unwrap(), from).unwrap();
        let mut meta: serde_json::Value = serde_json::from_str(&parts.meta).unwrap();
        edit(&mut meta);
        parts.meta = meta.to_string();
        std::fs::write(to, encode_resume(&parts)).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_generators_depend_on_seed_and_epoch_only() {
        use rand::Rng;
        let draw = |seed, epoch| epoch_rng(seed, epoch).random::<u64>();
        assert_eq!(draw(3, 2), draw(3, 2));
        assert_ne!(draw(3, 2), draw(3, 1));
        assert_ne!(draw(3, 2), draw(2, 2));
    }

    #[test]
    fn resume_flags_must_match_except_free_ones() {
        let saved = serde_json::json!({"lr": 0.4, "widths": [8, 16], "out": "a", "threads": 0});
        let p = Path::new("r.ckpt");
        let same = serde_json::json!({"lr": 0.4, "widths": [8, 16], "out": "b", "threads": 2});
        assert!(same_flags(&saved, &same, p).is_ok());
        let other = serde_json::json!({"lr": 0.1, "widths": [8, 32], "out": "a", "threads": 0});
        let e = same_flags(&saved, &other, p).unwrap_err().to_string();
        assert!(
            e.contains("--lr 0.1 (the run had 0.4), --widths [8,32] (the run had [8,16])"),
            "{e}"
        );
        let more = serde_json::json!({"lr": 0.4, "widths": [8, 16], "k": 4});
        let e = same_flags(&saved, &more, p).unwrap_err().to_string();
        assert!(e.contains("--k 4 (the run had (not given))"), "{e}");
    }

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
