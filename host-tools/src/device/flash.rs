//! `tinyinfer flash`: writes a `.tinf` blob to a board's MODEL partition
//! with the probe-rs library, verifies it by reading it back, and resets the
//! board so the firmware checks and runs the new model.
//!
//! `--board NAME` (default `nrf52840-dk`) takes the probe-rs chip and the
//! MODEL partition from the board table (firmware/boards.rs) and the board's
//! memory map; `--chip`, `--base` and `--partition-len` override them.
//!
//! The app is flashed separately (`cargo run --release --bin BOARD` in
//! `firmware/`); the two never overwrite each other because the partition
//! lies outside the app's FLASH region.
//!
//! Everything short of touching a probe — the blob passes the core's checks,
//! the chip is known to probe-rs, the partition lies in the chip's flash and
//! the blob fits it — is checked by [`plan`], which the tests exercise
//! without hardware.

use std::path::PathBuf;

use anyhow::{bail, ensure, Context, Result};
use probe_rs::config::{MemoryRegion, Registry};
use probe_rs::flashing::DownloadOptions;
use probe_rs::probe::list::Lister;
use probe_rs::probe::DebugProbeSelector;
use probe_rs::{MemoryInterface, Permissions};

use crate::common::blob::{parse_addr, AlignedBlob, DEFAULT_HEX_BASE};
use crate::device::boards;

/// MODEL partition of the nRF52840-DK (firmware/memory-nrf52840-dk.x).
pub const NRF52840_DK_MODEL_BASE: u32 = DEFAULT_HEX_BASE;
/// Its length.
pub const NRF52840_DK_MODEL_LEN: u32 = 0x000C_0000;

/// Arguments of `tinyinfer flash`.
#[derive(clap::Args, Clone, Debug)]
pub struct FlashArgs {
    /// The `.tinf` model to write.
    #[arg(value_name = "MODEL.tinf")]
    pub model: PathBuf,
    /// The board (firmware/boards.rs): nrf52840-dk, nucleo-l4r5zi. Gives the chip and
    /// the MODEL partition.
    #[arg(long, value_name = "NAME", default_value = "nrf52840-dk")]
    pub board: String,
    /// Target chip, as probe-rs names it (default: the board's).
    #[arg(long)]
    pub chip: Option<String>,
    /// Flash address of the MODEL partition (default: the board's, firmware/memory-<board>.x).
    #[arg(long, value_parser = parse_addr)]
    pub base: Option<u32>,
    /// Bytes of the MODEL partition: the blob must fit (default: the board's).
    #[arg(long, value_parser = parse_addr)]
    pub partition_len: Option<u32>,
    /// Which probe, as VID:PID[:SERIAL], when several are attached.
    #[arg(long, value_name = "VID:PID[:SERIAL]")]
    pub probe: Option<String>,
    /// Check the blob, chip and address, print the plan, and touch no probe.
    #[arg(long)]
    pub dry_run: bool,
}

/// What would be written where.
#[derive(Clone, Debug)]
pub struct FlashPlan {
    /// The blob, checked by the core.
    pub bytes: Vec<u8>,
    /// Its flash address.
    pub base: u32,
    /// The chip's flash region holding it.
    pub region: std::ops::Range<u64>,
    /// The probe-rs target name.
    pub chip: String,
    /// Bytes of the MODEL partition.
    pub partition_len: u32,
}

/// Checks everything that can be checked without a probe.
///
/// # Errors
/// A blob the core refuses, an unknown chip, a partition outside the chip's
/// flash or not page-aligned, a blob larger than the partition.
pub fn plan(a: &FlashArgs) -> Result<FlashPlan> {
    let board = boards::find(&a.board)?;
    let chip = match (&a.chip, board.chip) {
        (Some(c), _) => c.clone(),
        (None, Some(c)) => c.to_string(),
        (None, None) => bail!(
            "{} is simulated, not flashed: run a model on it with `tinyinfer simulate --board {}`",
            board.bin,
            board.bin
        ),
    };
    let (board_base, board_len) = boards::model_partition(board)?;
    let (base, partition_len) = (
        a.base.unwrap_or(board_base),
        a.partition_len.unwrap_or(board_len),
    );
    let blob = AlignedBlob::read(&a.model)?;
    blob.model()
        .with_context(|| format!("refusing to flash {}", a.model.display()))?;
    let bytes = blob.bytes().to_vec();
    ensure!(
        bytes.len() as u64 <= partition_len as u64,
        "{} is {} bytes; the MODEL partition of {} holds {} (--partition-len)",
        a.model.display(),
        bytes.len(),
        board.bin,
        partition_len
    );
    ensure!(
        base.is_multiple_of(4096),
        "--base {base:#x} is not on a 4 KiB flash page boundary"
    );
    let target = Registry::from_builtin_families()
        .get_target_by_name(&chip)
        .with_context(|| format!("probe-rs does not know the chip {chip:?} (--chip)"))?;
    let (lo, hi) = (base as u64, base as u64 + partition_len as u64);
    let region = target
        .memory_map
        .iter()
        .find_map(|r| match r {
            MemoryRegion::Nvm(n) if !n.is_alias && n.range.start <= lo && hi <= n.range.end => {
                Some(n.range.clone())
            }
            _ => None,
        })
        .with_context(|| {
            format!("the partition {lo:#x}..{hi:#x} is not inside the flash of {chip}")
        })?;
    Ok(FlashPlan {
        bytes,
        base,
        region,
        chip,
        partition_len,
    })
}

/// `tinyinfer flash`: plan, write, read back, reset.
///
/// # Errors
/// As [`plan`]; no probe attached; probe-rs failures; a read-back that
/// differs from the blob.
pub fn run(a: &FlashArgs) -> Result<()> {
    let p = plan(a)?;
    eprintln!(
        "{}: {} bytes -> {} ({}) flash at {:#010x}..{:#010x} (MODEL partition {} bytes; flash region {:#x}..{:#x})",
        a.model.display(),
        p.bytes.len(),
        a.board,
        p.chip,
        p.base,
        p.base as usize + p.bytes.len(),
        p.partition_len,
        p.region.start,
        p.region.end
    );
    if a.dry_run {
        eprintln!("dry run: no probe touched");
        return Ok(());
    }

    let lister = Lister::new();
    let probe = match &a.probe {
        Some(sel) => {
            let sel: DebugProbeSelector = sel
                .parse()
                .with_context(|| format!("bad --probe {sel:?}: expected VID:PID[:SERIAL]"))?;
            lister
                .open(sel.clone())
                .with_context(|| format!("opening probe {sel:?}"))?
        }
        None => {
            let probes = lister.list_all();
            match probes.as_slice() {
                [] => bail!(
                    "no debug probe found: connect the board's debug USB port (on the nRF52840-DK, \
                     the J-Link OB next to the battery holder), check `lsusb` and the udev rules \
                     for probe-rs, then retry"
                ),
                [one] => one
                    .open()
                    .with_context(|| format!("opening probe {}", one.identifier))?,
                many => bail!(
                    "{} probes attached; pick one with --probe VID:PID[:SERIAL]: {}",
                    many.len(),
                    many.iter()
                        .map(|p| format!(
                            "{:04x}:{:04x}{} ({})",
                            p.vendor_id,
                            p.product_id,
                            p.serial_number
                                .as_deref()
                                .map_or(String::new(), |s| format!(":{s}")),
                            p.identifier
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
    };
    let mut session = probe
        .attach(p.chip.as_str(), Permissions::default())
        .with_context(|| format!("attaching to {}", p.chip))?;

    let mut loader = session.target().flash_loader();
    loader
        .add_data(p.base as u64, &p.bytes)
        .context("planning the flash write")?;
    let mut opts = DownloadOptions::default();
    opts.verify = true;
    loader
        .commit(&mut session, opts)
        .context("writing the MODEL partition")?;

    let mut core = session.core(0).context("opening core 0")?;
    let mut back = vec![0u8; p.bytes.len()];
    core.read(p.base as u64, &mut back)
        .context("reading the partition back")?;
    if let Some(i) = back.iter().zip(&p.bytes).position(|(a, b)| a != b) {
        bail!(
            "verification failed: flash at {:#010x} reads {:#04x}, the blob has {:#04x}",
            p.base as usize + i,
            back[i],
            p.bytes[i]
        );
    }
    core.reset().context("resetting the board")?;
    eprintln!(
        "wrote and verified {} bytes at {:#010x}; board reset (its defmt log: `probe-rs attach --chip {}` or `cargo run --release` in firmware/)",
        p.bytes.len(),
        p.base,
        p.chip
    );
    Ok(())
}
