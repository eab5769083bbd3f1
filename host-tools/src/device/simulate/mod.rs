//! `tinyinfer simulate`: the firmware app of a QEMU board of the table
//! (`firmware/boards.rs`: mps2-an386 by default, mps2-an385, mps2-an505,
//! microbit) with a model in its MODEL partition.
//!
//! 1. Builds `firmware/` (`cargo build --release --no-default-features
//!    --features semihosting,density,language,panic-location --bin BOARD
//!    --target TARGET`; the classifier-only app: `--features semihosting,few-vectors`)
//!    or takes `--elf`.
//! 2. Reads the partition address from the ELF's `__model_start` and copies
//!    the blob there with QEMU's generic loader.
//! 3. Runs QEMU under `timeout` with `-icount shift=0,align=off,sleep=off`, so
//!    SysTick counts instructions deterministically, reading all its output
//!    (defmt frames come over semihosting on stdout).
//! 4. With `--eval N`, writes N Fashion-MNIST test images and labels to a
//!    file the device reads over semihosting, and compares the int8 scores the
//!    device writes back with the host core's ([`core_scores`]).
//!    Density models get a sample request instead (`--seed`, `--samples`)
//!    and language models a generation request (`--prompt`, `--tokens`,
//!    `--seed`): the device's token ids and text are compared with the host
//!    core's `generate` and `detokenize`.
//! 5. Reads the device's report records from [`REPORT`] with the core's
//!    `tinyinfer::link::report::Reader` (typed records: no log line is
//!    parsed), decodes the defmt log for people with `defmt-decoder`, prints
//!    both (or one JSON object with `--json`), and fails unless the device
//!    exited 0 and, with `--eval`, matched the host bit for bit.
//!
//! The modules: [`build`] (cargo), [`elf`] (partition and footprint),
//! [`qemu`] (running it, decoding the defmt log), [`link`] (the request,
//! response and report files and the per-family checks against the host
//! core), and [`report`] (the report's records into [`SimReport`], the
//! meaning of the exit status from `tinyinfer::link::status`, and the
//! summary).

pub mod build;
pub mod elf;
pub mod link;
pub mod qemu;
pub mod report;

use std::path::PathBuf;

use anyhow::{bail, ensure, Context, Result};

pub use build::{
    build_firmware, build_firmware_with, build_firmware_with_arena, firmware_dir, App, Drivers,
    FIRMWARE_DIR_ENV,
};
pub use elf::{elf_info, flash_origin, ElfInfo};
pub use link::{lm_request, EVAL_IN, EVAL_OUT, LM_MAX_PROMPT_BYTES, LM_MAX_TOKENS, REPORT};
pub use qemu::QEMU_ENV;
pub use report::{exit_meaning, summary, SimReport};

use crate::common::blob::AlignedBlob;
use crate::common::data::{self, Split};
use crate::device::boards;
use link::{check_classifier, check_density, check_language, eval_input, sample_request};
use qemu::{decode_defmt, run_qemu};
use report::parse_report;
use tinyinfer::link::slots::Slot;

/// Arguments of `tinyinfer simulate`.
#[derive(clap::Args, Clone, Debug)]
pub struct SimulateArgs {
    /// The `.tinf` model to load into the MODEL partition.
    #[arg(value_name = "MODEL.tinf", required_unless_present_any = ["empty_partition", "slot_a", "slot_b"])]
    pub model: Option<PathBuf>,
    /// The QEMU board (firmware/boards.rs): mps2-an386 (Cortex-M4F), mps2-an385 (M3),
    /// mps2-an505 (M33), microbit (M0), riscv-virt (RISC-V RV32IMC); with --elf, the machine to run it on.
    #[arg(long, value_name = "NAME", default_value = "mps2-an386")]
    pub board: String,
    /// Use this built firmware ELF (of --board) instead of building `firmware/`.
    #[arg(long, value_name = "ELF")]
    pub elf: Option<PathBuf>,
    /// Build the mps2-an386 app under nRF52840 limits (memory-qemu-nrf-budget.x: 1 MB flash,
    /// 256 KB RAM); the board mps2-an386-nrf-budget.
    #[arg(long, conflicts_with_all = ["elf", "board"])]
    pub nrf_budget: bool,
    /// Build the classifier-only app (no density or language driver in flash); on the
    /// default board, under nRF52840 limits (mps2-an386-nrf-budget).
    #[arg(long, conflicts_with = "elf")]
    pub classifier_only: bool,
    /// Evaluate the first N Fashion-MNIST test images on the device (all 10,000 when N is omitted).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "10000")]
    pub eval: Option<usize>,
    /// Fashion-MNIST directory (default: $TINYINFER_FASHION_MNIST, then Debian's path).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Print one JSON object (the device log goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Seconds before QEMU is stopped (default: 120, plus half a second per evaluated image).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// The firmware workspace to build (default: $TINYINFER_FIRMWARE_DIR, then the one beside host-tools).
    #[arg(long, value_name = "DIR")]
    pub firmware_dir: Option<PathBuf>,
    /// Load the file as is, without checking it with the host core first (to test the device's checks).
    #[arg(long)]
    pub unchecked: bool,
    /// Load nothing: the partition stays erased (0x00 on QEMU).
    #[arg(long, conflicts_with_all = ["model", "eval", "slot_a", "slot_b"])]
    pub empty_partition: bool,
    /// Load this file as is at slot A's address (a slot image of `export --slot a
    /// --slot-bin`, or a damaged one to test the device's fallback; docs/reliability.md).
    /// MODEL.tinf, if given, is loaded at the partition start, which is slot A's.
    #[arg(long, value_name = "FILE", conflicts_with = "model")]
    pub slot_a: Option<PathBuf>,
    /// Load this file as is at slot B's address (the second half of the partition).
    #[arg(long, value_name = "FILE")]
    pub slot_b: Option<PathBuf>,
    /// Density models: seed of the first sampled image (PCG32, as `tinyinfer sample`);
    /// language models: the seed of the generation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Language models: the prompt the device primes the model with (after the start token).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub prompt: String,
    /// Language models: tokens to generate on the device (compared with the host core's).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub tokens: u32,
    /// Density models: images to sample on the device (each checked against the host core).
    #[arg(long, default_value_t = 1)]
    pub samples: u32,
    /// Density models: also time this many pixels of sampling by full recomputation (the baseline).
    #[arg(long, default_value_t = 0)]
    pub full_pixels: u32,
    /// Density models: write the device's sampled images to this PNG.
    #[arg(long, value_name = "FILE")]
    pub png: Option<PathBuf>,
    /// Density models: give the firmware only the streaming arena (ring of rows), not the
    /// model's full plan (when building; with --elf the ELF's arena decides).
    #[arg(long)]
    pub streaming: bool,
}

/// Runs the simulation and returns its report (without printing it).
///
/// # Errors
/// When the model, ELF, data or QEMU cannot be used; a device that runs and
/// fails is *not* an error here: see [`SimReport::passed`].
pub fn simulate(a: &SimulateArgs) -> Result<SimReport> {
    // The blob: checked by the host core unless --unchecked.
    let blob = match &a.model {
        Some(p) => {
            let blob = AlignedBlob::read(p)?;
            if !a.unchecked {
                blob.model().with_context(|| {
                    format!(
                        "checking {} (pass --unchecked to load it anyway)",
                        p.display()
                    )
                })?;
            }
            Some(blob)
        }
        None => None,
    };

    let density_model = match &blob {
        Some(b) if !a.unchecked => b
            .model()
            .ok()
            .filter(|m| m.family() == tinyinfer::format::Family::Density)
            .map(tinyinfer::models::DensityModel::new)
            .transpose()
            .map_err(|e| anyhow::anyhow!("not a usable density model: {e}"))?,
        _ => None,
    };
    let language_model = match &blob {
        Some(b) if !a.unchecked => b
            .model()
            .ok()
            .filter(|m| m.family() == tinyinfer::format::Family::LanguageModel)
            .map(tinyinfer::models::LanguageModel::new)
            .transpose()
            .map_err(|e| anyhow::anyhow!("not a usable language model: {e}"))?,
        _ => None,
    };
    let board = match (a.nrf_budget, a.classifier_only, a.board.as_str()) {
        (true, _, _) | (false, true, "mps2-an386") => boards::find("mps2-an386-nrf-budget")?,
        (false, _, name) => boards::find(name)?,
    };
    let Some((machine, _)) = board.qemu else {
        let chip = board.chip.unwrap_or("?");
        // Every real board's chip has a slot writer in `tinyinfer flash`
        // (device/flash/controller.rs; a unit test there holds the table to it).
        let write = format!(
            "write a model to it with `tinyinfer flash MODEL.tinf --board {}`",
            board.bin
        );
        bail!(
            "{} is a real board ({}, probe-rs chip {chip}): QEMU does not simulate it; build its \
             app with `cargo build --release --bin {} --target {}` in firmware/ and {write}",
            board.bin,
            board.cpu,
            board.bin,
            board.target,
        );
    };
    let elf_path = match &a.elf {
        Some(p) => p.clone(),
        None => {
            let app = App {
                board,
                drivers: match a.classifier_only {
                    true => Drivers::ClassifierOnly,
                    false => Drivers::All,
                },
            };
            // Density models: the arena their path needs (the default arena is a classifier's).
            let arena = density_model
                .as_ref()
                .map(|dm| match a.streaming {
                    true => dm.sample_arena_len(),
                    false => dm.arena_len().max(dm.sample_arena_len()),
                })
                .or(language_model.as_ref().map(|lm| lm.arena_len()));
            build_firmware_with_arena(&firmware_dir(a.firmware_dir.as_deref()), app, arena)?
        }
    };
    // QEMU runs in a scratch directory: give it an absolute path.
    let elf_path = std::fs::canonicalize(&elf_path)
        .with_context(|| format!("firmware ELF {}", elf_path.display()))?;
    let elf = std::fs::read(&elf_path)
        .with_context(|| format!("reading firmware ELF {}", elf_path.display()))?;
    let info = elf_info(&elf).with_context(|| format!("firmware ELF {}", elf_path.display()))?;
    if let Some(b) = &blob {
        ensure!(
            b.bytes().len() as u64 <= info.model_len as u64,
            "the model ({} bytes) does not fit the MODEL partition ({} bytes at {:#x})",
            b.bytes().len(),
            info.model_len,
            info.model_start
        );
    }

    // Slot images, loaded as given at their slot's address (the device judges them).
    let mut slot_images = Vec::new();
    for (slot, path) in [(Slot::A, &a.slot_a), (Slot::B, &a.slot_b)] {
        let Some(path) = path else { continue };
        let l = crate::common::slots::layout(info.model_len)
            .context("the firmware's MODEL partition")?;
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading slot image {}", path.display()))?;
        ensure!(
            !bytes.is_empty() && bytes.len() <= l.slot_len(),
            "{} is {} bytes; slot {} holds {} bytes at {:#x}",
            path.display(),
            bytes.len(),
            slot.name(),
            l.slot_len(),
            info.model_start as usize + l.offset(slot)
        );
        slot_images.push((
            format!("slot-{}.bin", slot.name()),
            bytes,
            info.model_start + l.offset(slot) as u32,
        ));
    }

    let work = tempfile::Builder::new()
        .prefix("tinyinfer-simulate-")
        .tempdir()
        .context("creating a working directory for QEMU")?;

    // Requests, written where the device's semihosting calls look.
    let mut eval_set = None;
    if let Some(n) = a.eval {
        ensure!(n > 0, "--eval needs at least 1 image");
        let blob = blob.as_ref().context("--eval needs a model")?;
        let model = blob
            .model()
            .context("--eval needs a model the host core accepts")?;
        let clf = tinyinfer::models::Classifier::new(model)
            .map_err(|e| anyhow::anyhow!("not a classifier: {e}"))?;
        let dir = data::fashion_mnist_dir(a.data.as_deref());
        let test = data::load_fashion_mnist(&dir, Split::Test)?.take(n);
        ensure!(
            clf.input_len() == data::PIXELS,
            "the model takes {} input bytes, Fashion-MNIST images have {}",
            clf.input_len(),
            data::PIXELS
        );
        std::fs::write(
            work.path().join(EVAL_IN),
            eval_input(&test.images, &test.labels, data::PIXELS),
        )
        .context("writing the evaluation input")?;
        eval_set = Some(test);
    }
    if density_model.is_some() {
        std::fs::write(work.path().join(EVAL_IN), sample_request(a)?)
            .context("writing the sample request")?;
    }
    if language_model.is_some() {
        std::fs::write(work.path().join(EVAL_IN), lm_request(a)?)
            .context("writing the generation request")?;
    }

    let timeout = a.timeout.unwrap_or(
        120 + a.eval.unwrap_or(0) as u64 / 2
            + 2 * a.full_pixels as u64
            + 2 * a.samples as u64
            + language_model.as_ref().map_or(0, |_| a.tokens as u64 / 10),
    );
    let (out, qemu_seconds) = run_qemu(
        board,
        &elf_path,
        blob.as_ref(),
        info.model_start,
        &slot_images,
        work.path(),
        timeout,
    )?;

    let lines = decode_defmt(&elf, &out.stdout)?;
    let code = out.status.code();
    let report = std::fs::read(work.path().join(REPORT));
    let mut r = SimReport {
        model: a.model.clone(),
        qemu_machine: machine.to_string(),
        cpu: board.cpu.to_string(),
        elf: elf_path.clone(),
        partition_address: info.model_start,
        partition_bytes: info.model_len,
        exit_code: code,
        exit_meaning: code.map_or("killed by a signal", exit_meaning).to_string(),
        firmware_flash_bytes: info.flash_bytes,
        flash_breakdown: info.flash_breakdown.clone(),
        model_flash_bytes: blob.as_ref().map(|b| b.bytes().len() as u64),
        flash_bytes: info.flash_bytes + blob.as_ref().map_or(0, |b| b.bytes().len() as u64),
        qemu_seconds,
        log: lines.clone(),
        ..SimReport::default()
    };
    // QEMU stopped by `timeout` (or a signal): the report may end mid-record.
    let complete = !matches!(code, None | Some(124) | Some(137));
    match &report {
        Ok(bytes) if !bytes.is_empty() => parse_report(bytes, complete, &mut r)?,
        // A device that passed must have reported.
        _ if code == Some(0) => bail!(
            "the device exited 0 but wrote no report ({REPORT}); its log:\n{}",
            lines.join("\n")
        ),
        // It stopped before its first record (a panic, a fault, a timeout):
        // the exit status and the log say what happened.
        _ => r.log.push(format!(
            "(tinyinfer) the device wrote no report records ({REPORT})"
        )),
    }
    // The nRF52840's CPU is a Cortex-M4F: estimate its time for the M4F's count.
    if board.cpu == "Cortex-M4F" {
        r.estimated_ms_at_64mhz = r
            .classifier
            .instructions_per_inference
            .map(|n| n as f64 / 64_000.0);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.trim().is_empty() {
        r.log.push(format!("(qemu stderr) {}", stderr.trim()));
    }
    if stderr.contains("Lockup") {
        bail!(
            "the device locked up (a fault while entering the fault handler): the stack \
             overflowed. The firmware links through flip-link, so the stack sits at the \
             bottom of RAM and an overflow runs off the start of RAM and faults, instead of \
             overwriting the arena; give the stack more room (a smaller arena, fewer \
             statics). QEMU: {}",
            stderr.lines().next().unwrap_or("").trim()
        );
    }
    if lines.is_empty() && code != Some(0) {
        bail!(
            "QEMU exited with {:?} and the device logged nothing; stderr: {}",
            code,
            stderr.trim()
        );
    }

    if let (Some(test), Some(blob)) = (&eval_set, &blob) {
        let bytes = std::fs::read(work.path().join(EVAL_OUT)).unwrap_or_default();
        check_classifier(test, blob, &bytes, &mut r)?;
    }
    if let Some(dm) = &density_model {
        check_density(a, dm, &mut r)?;
    }
    if let (Some(lm), Some(blob)) = (&language_model, &blob) {
        check_language(a, lm, blob, &mut r)?;
    }
    Ok(r)
}

/// `tinyinfer simulate`: runs, prints the device log and the report (or JSON).
///
/// # Errors
/// As [`simulate`], and when the device did not pass ([`SimReport::passed`]).
pub fn run(a: &SimulateArgs) -> Result<()> {
    let r = simulate(a)?;
    if a.json {
        for l in &r.log {
            eprintln!("{l}");
        }
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        for l in &r.log {
            println!("{l}");
        }
        println!();
        print!("{}", summary(&r));
    }
    ensure!(
        r.passed(),
        "the device did not pass: exit status {:?} ({}){}",
        r.exit_code,
        r.exit_meaning,
        if r.matches_host == Some(false) {
            ", and its outputs differ from the host core's"
        } else {
            ""
        }
    );
    Ok(())
}
