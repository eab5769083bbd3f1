//! The classifier's subcommands: `train` and `pipeline` (the main job).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

use super::quantize::{with_conv_layout, ConvLayoutArg};
use super::run::eval;
use super::train::{run, TrainArgs};
use crate::common::blob::{AlignedBlob, DEFAULT_HEX_BASE};
use crate::families::{export, EvalArgs, ExportArgs};

/// Subcommands of the DiracNet classifier.
#[derive(clap::Subcommand, Clone, Debug)]
pub enum Command {
    /// Train a DiracNet on Fashion-MNIST (burn, with mixup).
    Train(TrainArgs),
    /// The main job: train → export → eval, then a summary table.
    Pipeline(PipelineArgs),
    /// Rewrite a classifier `.tinf` with its convs' weights in another
    /// layout (pairs: for the Cortex-M4/M33 DSP kernels); same outputs.
    Repack(RepackArgs),
}

/// Flags of `tinyinfer repack`.
#[derive(clap::Args, Clone, Debug)]
pub struct RepackArgs {
    /// The classifier `.tinf` to read.
    model: PathBuf,
    /// Output `.tinf` path (written atomically; may be the input).
    #[arg(long, short, value_name = "FILE")]
    out: PathBuf,
    /// The conv weight layout to write (`int8` turns a pairs blob back).
    #[arg(long, value_enum)]
    conv_layout: ConvLayoutArg,
}

/// Flags of `tinyinfer pipeline`.
#[derive(clap::Args, Clone, Debug)]
pub struct PipelineArgs {
    #[command(flatten)]
    train: TrainArgs,
    /// Output model path (default: <out>/model.tinf).
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Self-test cases to store in the blob.
    #[arg(long, default_value_t = 16)]
    selftest: usize,
}

impl Command {
    /// Runs the subcommand.
    ///
    /// # Errors
    /// Whatever the subcommand fails with.
    pub fn run(&self) -> Result<()> {
        match self {
            Command::Train(a) => run(a).map(|s| {
                if !a.run.stops_early(a.epochs) {
                    println!("final checkpoint: {}", s.checkpoint.display());
                }
            }),
            Command::Pipeline(a) => pipeline(a),
            Command::Repack(a) => repack(a),
        }
    }
}

fn repack(a: &RepackArgs) -> Result<()> {
    crate::common::blob::check_output_path(&a.out).context("--out")?;
    let blob = AlignedBlob::read(&a.model)?;
    let out = with_conv_layout(blob.bytes(), a.conv_layout)
        .with_context(|| format!("repacking {}", a.model.display()))?;
    crate::common::blob::write_atomic(&a.out, &out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "wrote {} ({} bytes, {} bytes before; conv weights {:?})",
        a.out.display(),
        out.len(),
        blob.bytes().len(),
        a.conv_layout
    );
    Ok(())
}

fn pipeline(a: &PipelineArgs) -> Result<()> {
    anyhow::ensure!(
        !a.train.run.stops_early(a.train.epochs),
        "pipeline exports the finished run: --stop-after is for `train` (then `pipeline --resume`)"
    );
    let t0 = Instant::now();
    let summary = run(&a.train)?;
    let train_secs = t0.elapsed().as_secs_f64();
    let model = a
        .model
        .clone()
        .unwrap_or_else(|| a.train.out.join("model.tinf"));
    let hex = model.with_extension("hex");
    let ex = export(&ExportArgs {
        checkpoint: summary.checkpoint.clone(),
        out: model.clone(),
        family: None,
        data: a.train.data.clone(),
        calib: 2000,
        selftest: a.selftest,
        hex: Some(hex),
        base: DEFAULT_HEX_BASE,
        slot: None,
        sequence: None,
        slot_bin: None,
        partition_len: crate::common::slots::DEFAULT_PARTITION_LEN,
        conv_layout: ConvLayoutArg::Int8,
    })?;
    let report_path = model.with_extension("eval.json");
    let r = eval(
        &EvalArgs {
            model: model.clone(),
            checkpoint: Some(summary.checkpoint.clone()),
            data: a.train.data.clone(),
            limit: a.train.test_limit,
            valid: false,
            json: false,
            report: Some(report_path.clone()),
        },
        &AlignedBlob::read(&model)?,
    )?;
    let row = |k: &str, v: String| println!("| {k:<28} | {v:>24} |");
    println!();
    println!("| {:<28} | {:>24} |", "figure", "value");
    println!("|{}|{}|", "-".repeat(30), "-".repeat(26));
    row("params (folded, int8 blob)", ex.params.to_string());
    row("MACs per inference", r.macs.to_string());
    row(
        "float test accuracy",
        format!("{:.2} %", 100.0 * r.float_accuracy.unwrap_or(f64::NAN)),
    );
    row(
        "int8 test accuracy (core)",
        format!("{:.2} %", 100.0 * r.int8_accuracy),
    );
    row(
        "quantization loss",
        format!(
            "{:.2} points",
            r.quantization_loss_points.unwrap_or(f64::NAN)
        ),
    );
    row("blob bytes", ex.blob.len().to_string());
    row("arena bytes", ex.arena_bytes.to_string());
    row("epochs", a.train.epochs.to_string());
    row("training time", format!("{train_secs:.0} s"));
    row("test images", r.test_images.to_string());
    println!(
        "\nmodel: {}  eval report: {}",
        model.display(),
        report_path.display()
    );
    Ok(())
}
