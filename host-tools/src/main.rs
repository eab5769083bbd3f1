//! `tinyinfer`: train, quantize, export, evaluate and inspect models for the tinyinfer core.
//!
//! Arguments and dispatch only: each family's subcommands come from its
//! folder (`families/<family>/cli.rs`); `export`, `eval` and `inspect` go
//! through the family registry; `simulate` and `flash` live in `device/`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use tinyinfer_tools::families::{self, classifier, density, language};

#[derive(Parser)]
#[command(
    name = "tinyinfer",
    version,
    about = "Train, quantize, export and evaluate int8 models for microcontrollers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    #[command(flatten)]
    Classifier(classifier::cli::Command),
    #[command(flatten)]
    Density(density::cli::Command),
    #[command(flatten)]
    Language(language::cli::Command),
    /// Fold, calibrate, quantize and write a `.tinf` model (and optionally its Intel HEX image).
    Export(families::ExportArgs),
    /// Evaluate a `.tinf` model through the core on its family's test set.
    Eval(families::EvalArgs),
    /// Print layers, shapes, MACs, parameter, blob and arena bytes of a `.tinf` model.
    Inspect(families::InspectArgs),
    /// Run the firmware on QEMU (mps2-an386, or --board) with a model: self-test, per-layer instruction counts, stack, device evaluation.
    #[cfg(feature = "simulate")]
    Simulate(tinyinfer_tools::device::simulate::SimulateArgs),
    /// (This build has no QEMU support: rebuild with the `simulate` feature.)
    #[cfg(not(feature = "simulate"))]
    Simulate(Disabled),
    /// Write a model to a board's MODEL partition with probe-rs, verify it and reset the board.
    #[cfg(feature = "flash")]
    Flash(tinyinfer_tools::device::flash::FlashArgs),
    /// (This build has no probe support: rebuild with the `flash` feature.)
    #[cfg(not(feature = "flash"))]
    Flash(Disabled),
}

/// Arguments of a subcommand whose cargo feature is off.
#[cfg_attr(all(feature = "simulate", feature = "flash"), allow(dead_code))]
#[derive(clap::Args, Clone)]
struct Disabled {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    _args: Vec<String>,
}

#[cfg_attr(all(feature = "simulate", feature = "flash"), allow(dead_code))]
fn disabled(feature: &str) -> Result<()> {
    anyhow::bail!(
        "this tinyinfer was built without the `{feature}` feature (the main job builds the \
         smallest tool); rebuild with: cargo build --release -p tinyinfer-tools \
         (default features include `simulate` and `flash`)"
    )
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Classifier(c) => c.run(),
        Cmd::Density(c) => c.run(),
        Cmd::Language(c) => c.run(),
        Cmd::Export(a) => families::export(&a).map(|_| ()),
        Cmd::Eval(a) => families::eval(&a),
        Cmd::Inspect(a) => families::inspect(&a),
        #[cfg(feature = "simulate")]
        Cmd::Simulate(a) => tinyinfer_tools::device::simulate::run(&a),
        #[cfg(not(feature = "simulate"))]
        Cmd::Simulate(_) => disabled("simulate"),
        #[cfg(feature = "flash")]
        Cmd::Flash(a) => tinyinfer_tools::device::flash::run(&a),
        #[cfg(not(feature = "flash"))]
        Cmd::Flash(_) => disabled("flash"),
    };
    if let Err(e) = r {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
