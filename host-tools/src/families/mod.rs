//! The model families, one folder each, behind the [`Family`] trait.
//!
//! A family folder holds everything about one kind of model: its data, the
//! burn model and its trainer, the plain float form the quantizer reads, the
//! quantizer/exporter, what runs its blobs on the host core, its subcommands
//! (`cli.rs`) and its tests.
//!
//! The commands every family answers (`export`, `eval`, `inspect`) find the
//! family through [`FAMILIES`]: `export` by the checkpoint's tag
//! ([`crate::common::checkpoint`]), `eval` and `inspect` by the blob's
//! family byte. Adding a family is a new folder, one line in [`FAMILIES`]
//! and one `#[command(flatten)]` line for its subcommands in `main.rs`.

pub mod classifier;
pub mod density;
pub mod language;

use std::path::PathBuf;

use anyhow::{bail, ensure, Context, Result};
use tinyinfer::format::{self, Model};

use crate::common::blob::{check_output_path, intel_hex, parse_addr, write_atomic, AlignedBlob};
use crate::common::checkpoint;
use crate::common::inspect::{inspect_graph, Inspect};
use crate::common::slots::{self, parse_slot, SlotImage};
pub use classifier::quantize::{with_conv_layout, ConvLayoutArg};
use tinyinfer::link::slots::Slot;

/// What a family does for the commands every family answers.
pub trait Family: Sync {
    /// The family's name: its checkpoint tag and `--family` value.
    fn name(&self) -> &'static str;

    /// The family byte of its blobs.
    fn blob_family(&self) -> format::Family;

    /// Builds the blob of `a.checkpoint` (quantized and checked, not yet written).
    ///
    /// # Errors
    /// A checkpoint or data set that cannot be read, or a model the format cannot hold.
    fn export(&self, a: &ExportArgs) -> Result<Exported>;

    /// `tinyinfer eval` of one of its blobs: prints a table or JSON.
    ///
    /// # Errors
    /// Data that cannot be read, or a blob the family's driver refuses.
    fn eval(&self, a: &EvalArgs, blob: &AlignedBlob) -> Result<()>;

    /// What `tinyinfer inspect` reports (default: the graph's ops).
    ///
    /// # Errors
    /// As [`inspect_graph`].
    fn inspect(&self, model: &Model<'_>) -> Result<Inspect> {
        inspect_graph(model)
    }
}

/// Every family, by name and blob family byte.
pub static FAMILIES: [&dyn Family; 3] = [
    &classifier::Classifier,
    &density::Density,
    &language::Language,
];

/// The family named `name` (a checkpoint tag or `--family`).
///
/// # Errors
/// A name no family has, listing the ones there are.
pub fn by_name(name: &str) -> Result<&'static dyn Family> {
    FAMILIES
        .iter()
        .copied()
        .find(|f| f.name() == name)
        .with_context(|| {
            let names: Vec<_> = FAMILIES.iter().map(|f| f.name()).collect();
            format!(
                "no family is called {name:?} (families: {})",
                names.join(", ")
            )
        })
}

/// The family of a checked blob.
///
/// # Errors
/// A family byte no family here exports.
pub fn of_model(model: &Model<'_>) -> Result<&'static dyn Family> {
    let fam = model.family();
    FAMILIES
        .iter()
        .copied()
        .find(|f| f.blob_family() == fam)
        .with_context(|| format!("no family of this tool runs {fam:?} models"))
}

/// Flags of `tinyinfer export`.
#[derive(clap::Args, Clone, Debug)]
pub struct ExportArgs {
    /// A checkpoint: a run directory (its `final.json`), a DiracNet `.bpk` (with its
    /// `.json` sidecar), or a PixelCNN or language-model `.json`. Its family tag
    /// says which family exports it.
    #[arg(long, value_name = "CKPT")]
    pub checkpoint: PathBuf,
    /// Output `.tinf` path (written atomically).
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
    /// The family of a checkpoint written before checkpoints carried a family tag
    /// (classifier, density, language); a tagged checkpoint must agree.
    #[arg(long, value_name = "NAME")]
    pub family: Option<String>,
    /// Fashion-MNIST directory (calibration uses the training split only); for
    /// a PixelCNN or an LM, the shared data directory (default: $TINYINFER_DATA, then ../shared/data).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Training images used for calibration.
    #[arg(long, default_value_t = 2000)]
    pub calib: usize,
    /// Store this many test images and their host-computed int8 outputs for the on-device self-test.
    #[arg(long, default_value_t = 0)]
    pub selftest: usize,
    /// Also write an Intel HEX image of the blob (the flashable model partition).
    #[arg(long, value_name = "FILE")]
    pub hex: Option<PathBuf>,
    /// Flash address of the model partition for the HEX image.
    #[arg(long, value_parser = parse_addr, default_value = "0x00040000")]
    pub base: u32,
    /// Emit an A/B slot image instead of a bare partition image: `--hex` gets
    /// the model at this slot's address and its trailer at the slot's end, and
    /// `--slot-bin` the whole slot (docs/reliability.md).
    #[arg(long, value_parser = parse_slot, requires = "sequence", value_name = "a|b")]
    pub slot: Option<Slot>,
    /// The slot image's sequence number (higher boots first; `tinyinfer flash` uses the active one's + 1).
    #[arg(long, requires = "slot", value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub sequence: Option<u32>,
    /// Write the whole slot (model, erased fill, trailer) to this binary, to be
    /// loaded at the slot's address.
    #[arg(long, requires = "slot", value_name = "FILE")]
    pub slot_bin: Option<PathBuf>,
    /// Bytes of the MODEL partition, which `--slot` splits in two.
    #[arg(long, value_parser = parse_addr, default_value = "0x000C0000")]
    pub partition_len: u32,
    /// Classifiers: the weight layout of the convs (`pairs`: unmasked
    /// convs with a multiple of 4 input channels widened to `i16` pairs for
    /// the Cortex-M4/M33 DSP kernels, twice those layers' flash; the same
    /// values and outputs).
    #[arg(long, value_enum, default_value_t = ConvLayoutArg::Int8)]
    pub conv_layout: ConvLayoutArg,
}

/// A family's exported blob, before it is written.
#[derive(Clone, Debug)]
pub struct Exported {
    /// The blob.
    pub blob: Vec<u8>,
    /// Exact arena bytes.
    pub arena_bytes: usize,
    /// Parameters stored.
    pub params: usize,
    /// What the `wrote FILE (...)` line says in its parentheses.
    pub details: String,
}

/// The family that exports `a.checkpoint`: its tag, or `--family` for an untagged one.
///
/// # Errors
/// An unreadable checkpoint, an untagged one without `--family`, or a tag
/// that disagrees with `--family`.
pub fn family_of_checkpoint(a: &ExportArgs) -> Result<&'static dyn Family> {
    let tag = checkpoint::read_tag(&a.checkpoint)?;
    match (tag, &a.family) {
        (Some(t), Some(f)) if &t != f => bail!(
            "{} is a {t} checkpoint, but --family says {f}",
            a.checkpoint.display()
        ),
        (Some(t), _) => by_name(&t),
        (None, Some(f)) => by_name(f),
        (None, None) => bail!(
            "{} carries no family tag (it was written before checkpoints had one): \
             pass --family classifier, density or language",
            checkpoint::tag_file(&a.checkpoint).display()
        ),
    }
}

/// `tinyinfer export`: the family's blob, checked by the core, written
/// atomically (and as Intel HEX with `--hex`).
///
/// # Errors
/// As [`Family::export`], or an I/O error writing the files.
pub fn export(a: &ExportArgs) -> Result<Exported> {
    ensure!(a.calib > 0, "--calib must be at least 1");
    // Every output path is checked before any work, and every output is
    // computed before the first is written: a bad `--hex` or `--base`
    // leaves no `.tinf` behind.
    check_output_path(&a.out).context("--out")?;
    if let Some(hex) = &a.hex {
        check_output_path(hex).context("--hex")?;
    }
    if let Some(bin) = &a.slot_bin {
        check_output_path(bin).context("--slot-bin")?;
    }
    if a.slot.is_some() {
        ensure!(
            a.hex.is_some() || a.slot_bin.is_some(),
            "--slot needs --hex or --slot-bin to write the slot image to"
        );
        slots::layout(a.partition_len).context("--partition-len")?;
    }
    let family = family_of_checkpoint(a)?;
    ensure!(
        a.conv_layout == ConvLayoutArg::Int8 || family.blob_family() == format::Family::Classifier,
        "--conv-layout pairs is for classifiers: the {} driver reads int8 weights",
        family.name()
    );
    let mut ex = family.export(a)?;
    if a.conv_layout != ConvLayoutArg::Int8 {
        ex.blob = with_conv_layout(&ex.blob, a.conv_layout).context("--conv-layout")?;
        ex.details = format!(
            "{}; conv weights in the pairs layout: {} bytes",
            ex.details,
            ex.blob.len()
        );
    }
    // The core must accept what we wrote before anything reaches disk.
    AlignedBlob::new(&ex.blob)
        .model()
        .context("exported model fails the core's checks (exporter bug)")?;
    let slot = match (a.slot, a.sequence) {
        (Some(slot), Some(seq)) => {
            Some(SlotImage::new(&ex.blob, a.base, a.partition_len, slot, seq).context("--slot")?)
        }
        _ => None,
    };
    let hex = match (&a.hex, &slot) {
        (Some(path), Some(s)) => Some((path, s.hex().context("--base")?)),
        (Some(path), None) => Some((path, intel_hex(&ex.blob, a.base).context("--base")?)),
        (None, _) => None,
    };
    write_atomic(&a.out, &ex.blob).with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!("wrote {} ({})", a.out.display(), ex.details);
    if let Some((path, text)) = hex {
        write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let (Some(s), Some(path)) = (&slot, &a.slot_bin) {
        write_atomic(path, &s.bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(s) = &slot {
        eprintln!(
            "slot {} image, sequence {}: {} bytes of model at {:#010x}, trailer at {:#010x}",
            s.slot.name(),
            s.sequence,
            s.image_len,
            s.addr,
            s.trailer_addr()
        );
    }
    Ok(ex)
}

/// Flags of `tinyinfer eval`.
#[derive(clap::Args, Clone, Debug)]
pub struct EvalArgs {
    /// The `.tinf` model.
    pub model: PathBuf,
    /// Float checkpoint to compare against.
    #[arg(long, value_name = "CKPT")]
    pub checkpoint: Option<PathBuf>,
    /// Data directory: Fashion-MNIST for a classifier, the shared data directory otherwise.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Evaluate only the first N test images (language models: tokens); at least 1.
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000_000))]
    pub limit: Option<usize>,
    /// Language models: score the validation split instead of the test split.
    #[arg(long)]
    pub valid: bool,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// `tinyinfer eval`: by the blob's family.
///
/// # Errors
/// An unreadable or invalid blob, or as [`Family::eval`].
pub fn eval(a: &EvalArgs) -> Result<()> {
    let blob = AlignedBlob::read(&a.model)?;
    let model = blob
        .model()
        .with_context(|| format!("checking {}", a.model.display()))?;
    of_model(&model)?.eval(a, &blob)
}

/// Writes an eval report to `--report` and prints it with `--json`; returns
/// whether it was printed (otherwise the family prints its table).
///
/// # Errors
/// Serialization or I/O errors.
pub fn emit_report(a: &EvalArgs, report: &impl serde::Serialize) -> Result<bool> {
    let json = serde_json::to_string_pretty(report)?;
    if let Some(p) = &a.report {
        write_atomic(p, json.as_bytes())?;
    }
    if a.json {
        println!("{json}");
    }
    Ok(a.json)
}

/// Flags of `tinyinfer inspect`.
#[derive(clap::Args, Clone, Debug)]
pub struct InspectArgs {
    /// The `.tinf` model.
    pub model: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `tinyinfer inspect`: the family's description of a blob.
///
/// # Errors
/// An unreadable or invalid blob.
pub fn inspect(a: &InspectArgs) -> Result<()> {
    let blob = AlignedBlob::read(&a.model)?;
    let model = blob
        .model()
        .with_context(|| format!("checking {}", a.model.display()))?;
    let r = of_model(&model)?.inspect(&model)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", crate::common::inspect::inspect_table(&r));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_names_and_blob_families_are_unique() {
        for (i, f) in FAMILIES.iter().enumerate() {
            assert_eq!(by_name(f.name()).unwrap().name(), f.name());
            for g in &FAMILIES[i + 1..] {
                assert_ne!(f.name(), g.name());
                assert_ne!(f.blob_family(), g.blob_family());
            }
        }
        let err = by_name("nope").err().expect("no family is called nope");
        assert!(err.to_string().contains("classifier"), "{err}");
    }
}
