//! `tinyinfer flash`: writes a `.tinf` blob to the inactive A/B slot of a
//! board's MODEL partition with the probe-rs library, so that a flash cut
//! short never leaves the board without a model (docs/reliability.md).
//!
//! 1. Read the partition and pick what boots now with the core's
//!    `link::slots::select` (the firmware's own choice): the new model goes
//!    to the *other* slot, with the active slot's sequence number + 1 (slot
//!    A, sequence 1, when nothing is valid; slot B when a legacy blob sits
//!    at the partition start).
//! 2. Erase and program the slot's pages that hold the image through
//!    probe-rs's flash loader, and read them back. What happens to the
//!    slot's last page, which holds the trailer, depends on the chip's flash
//!    controller ([`controller`]):
//!    - nRF52 (NVMC, 32-bit words written at most twice between erases): the
//!      loader erases and programs it too, the trailer's 32 bytes erased;
//!    - STM32L4R/L4S (64-bit ECC double words, programmed once): the loader
//!      never touches it; the host erases it through FLASH_CR **before** the
//!      loader runs (so the slot's old trailer is gone and the firmware never
//!      reads the half-written image) and reads it back erased.
//! 3. Program the rest through the controller's registers, the core halted:
//!    the image's tail in the last page (STM32, when the image reaches it),
//!    then the trailer, the unit of the complete marker last; read back the
//!    whole image and the trailer.
//! 4. Read the partition again: the core's selection must now boot the new
//!    slot with the new sequence. Reset the board (also when a step failed:
//!    it then boots the valid slot with the highest sequence: what it booted
//!    before, unless the step that failed came after the complete marker or
//!    `--slot` overwrote the active slot).
//!
//! A cut before the complete marker's unit is programmed leaves the slot
//! without it: the firmware boots the other slot. (A cut *inside* one
//! STM32 program or erase operation may leave bad ECC in that double word
//! or page; docs/reliability.md says what that does.)
//!
//! `--board NAME` (default `nrf52840-dk`) takes the probe-rs chip and the
//! MODEL partition from the board table (firmware/boards.rs) and the board's
//! memory map; `--chip`, `--base` and `--partition-len` override them. Chips
//! whose flash controller has no writer here are refused by name, and so is
//! a chip whose probe-rs flash algorithm erases sectors other than the
//! pages the plan keeps apart.
//!
//! The app is flashed separately (`cargo run --release` in `firmware/`); the
//! two never overwrite each other because the partition lies outside the
//! app's FLASH region (firmware/memory-<board>.x).
//!
//! Everything short of touching a probe — the blob passes the core's checks,
//! the chip is known to probe-rs, the partition lies in the chip's flash, the
//! slot and sequence, the bytes of each phase and the read-back comparisons —
//! is the pure [`plan`] and [`plan_write`], which the tests exercise without
//! hardware, against a model of NOR flash; the register sequences of each
//! controller run in the tests against models of its registers as its
//! reference manual describes them. Nothing here has run on a board (no
//! probe is attached to the machine that runs the tests).

pub mod controller;

use std::path::PathBuf;

use anyhow::{bail, ensure, Context, Result};
use probe_rs::config::{MemoryRegion, Registry};
use probe_rs::flashing::DownloadOptions;
use probe_rs::probe::list::Lister;
use probe_rs::probe::DebugProbeSelector;
use probe_rs::{MemoryInterface, Permissions};

use self::controller::Controller;
use tinyinfer::format::Model;

use tinyinfer::link::slots::{self, Slot, SlotLayout, Source, MARKER_OFFSET};

use crate::common::blob::{parse_addr, AlignedBlob, DEFAULT_HEX_BASE};
use crate::common::slots::{layout, parse_slot, SlotImage, DEFAULT_PARTITION_LEN, FLASH_PAGE};
use crate::device::boards;

/// MODEL partition of the nRF52840-DK (firmware/memory-nrf52840-dk.x).
pub const NRF52840_DK_MODEL_BASE: u32 = DEFAULT_HEX_BASE;
/// Its length: two slots of 384 KB.
pub const NRF52840_DK_MODEL_LEN: u32 = DEFAULT_PARTITION_LEN;

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
    /// Bytes of the MODEL partition, split in two slots (default: the board's).
    #[arg(long, value_parser = parse_addr)]
    pub partition_len: Option<u32>,
    /// Write this slot instead of the inactive one (overwriting the active
    /// slot leaves no fallback while it is written).
    #[arg(long, value_parser = parse_slot, value_name = "a|b")]
    pub slot: Option<Slot>,
    /// With --dry-run: plan against this dump of the partition (e.g. from
    /// `probe-rs read`) instead of an erased one.
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    pub current: Option<PathBuf>,
    /// Which probe, as VID:PID[:SERIAL], when several are attached.
    #[arg(long, value_name = "VID:PID[:SERIAL]")]
    pub probe: Option<String>,
    /// Check the blob, chip and address, print the plan, and touch no probe.
    #[arg(long)]
    pub dry_run: bool,
}

/// What would be written where, before the partition's contents are known.
#[derive(Clone, Debug)]
pub struct FlashPlan {
    /// The blob, checked by the core.
    pub bytes: Vec<u8>,
    /// The partition's flash address.
    pub base: u32,
    /// Its slots.
    pub layout: SlotLayout,
    /// The chip's flash region holding it.
    pub region: std::ops::Range<u64>,
    /// The probe-rs target name.
    pub chip: String,
    /// Its flash controller (for an STM32L4+, in its factory-default
    /// dual-bank mode; a run reads the option bytes).
    pub controller: Controller,
}

/// Checks everything that can be checked without a probe or the partition's contents.
///
/// # Errors
/// A blob the core refuses, an unknown chip or one without a flash controller writer,
/// a partition outside the chip's flash, not page-aligned or not two whole
/// slots, a blob larger than a slot.
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
    let l = layout(partition_len).context("--partition-len")?;
    ensure!(
        bytes.len() <= l.max_image_len(),
        "{} is {} bytes; a slot of the {:#x}-byte MODEL partition of {} holds {} (--partition-len)",
        a.model.display(),
        bytes.len(),
        partition_len,
        board.bin,
        l.max_image_len()
    );
    ensure!(
        (base as usize).is_multiple_of(FLASH_PAGE),
        "--base {:#x} is not on a 4 KiB flash page boundary",
        base
    );
    let target = Registry::from_builtin_families()
        .get_target_by_name(&chip)
        .with_context(|| format!("probe-rs does not know the chip {:?} (--chip)", chip))?;
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
            format!(
                "the partition {lo:#x}..{hi:#x} is not inside the flash of {}",
                chip
            )
        })?;
    // Last, so that every other check has run: the partition is known
    // good on this chip, only the trailer's writer may be missing.
    let controller = Controller::for_chip(&chip).with_context(|| {
        format!(
            "{}: the MODEL partition {lo:#010x}..{hi:#010x} lies in the flash of {chip}, but the \
             slot trailer is written through the chip's flash controller, and tinyinfer has \
             writers only for the nRF52 NVMC and the STM32L4R/L4S FLASH interface",
            board.bin
        )
    })?;
    // The loader's erase sectors must be the pages the plan keeps apart:
    // each slot's last page is the host's (or, on the nRF52, the loader's
    // own last region), and a larger loader sector would spill into it.
    let page = controller.host_erase_page().unwrap_or(l.page()) as u64;
    for slot in [Slot::A, Slot::B] {
        let start = base as u64 + l.offset(slot) as u64;
        for at in [start, start + l.slot_len() as u64 - page] {
            let sector = loader_sector(&target, at);
            ensure!(
                sector == Some((at, page)),
                "probe-rs's flash algorithm for {chip} erases {} at {at:#010x}, where the slot \
                 plan needs a {page}-byte page starting there",
                sector.map_or("nothing".to_string(), |(b, s)| format!(
                    "the {s}-byte sector at {b:#010x}"
                ))
            );
        }
    }
    Ok(FlashPlan {
        bytes,
        base,
        layout: l,
        region,
        chip,
        controller,
    })
}

/// The erase sector of `target`'s flash algorithms holding `addr`: its
/// start and size (the largest, if several algorithms cover it).
fn loader_sector(target: &probe_rs::config::Target, addr: u64) -> Option<(u64, u64)> {
    target
        .flash_algorithms
        .iter()
        .filter(|a| a.flash_properties.address_range.contains(&addr))
        .filter_map(|a| {
            let start = a.flash_properties.address_range.start;
            let off = addr - start;
            a.flash_properties
                .sectors
                .iter()
                .filter(|s| s.address <= off && s.size > 0)
                .max_by_key(|s| s.address)
                .map(|s| {
                    (
                        start + s.address + (off - s.address) / s.size * s.size,
                        s.size,
                    )
                })
        })
        .max_by_key(|&(_, size)| size)
}

/// The writes of one flash, in order, and what each read-back must show.
#[derive(Clone, Debug)]
pub struct SlotWrite {
    /// The slot written.
    pub slot: Slot,
    /// Its new sequence number.
    pub sequence: u32,
    /// What boots before the write: the slot (or legacy blob) and its sequence.
    pub active: Option<(Source, u32)>,
    /// The write replaces what boots now (an explicit `--slot`): no fallback while it runs.
    pub overwrites_active: bool,
    /// The controller of the erase and the program units.
    pub controller: Controller,
    /// First, through the controller (STM32L4+): the slot's last erase page,
    /// erased, so that the slot's old trailer reads erased (and the firmware
    /// never reads its image) while the loader rewrites the image.
    pub erase: Option<u32>,
    /// Then, through the flash loader: each region's pages are erased and
    /// programmed (the image padded with 0xFF to its last page; on the nRF52,
    /// also the slot's last page up to the trailer).
    pub regions: Vec<(u32, Vec<u8>)>,
    /// After the erase and the loader, these bytes must read back as given:
    /// what the loader wrote, and the trailer (and on the STM32L4+ its whole
    /// page) erased.
    pub readback_before: Vec<(u32, Vec<u8>)>,
    /// Last, through the controller: one program unit each (4 bytes on
    /// the nRF52, 8 on the STM32L4+), in order: the image's tail in the last
    /// page (STM32L4+), then the trailer, the unit of the complete marker
    /// last. Units that stay erased (all 0xFF) are left out.
    pub units: Vec<(u32, Vec<u8>)>,
    /// After the units: the image and the trailer.
    pub readback_after: Vec<(u32, Vec<u8>)>,
}

/// Plans writing `image` into the partition at `base` whose current bytes
/// are `current` (as read from the board) with the chip's `controller`:
/// which slot, which sequence, which bytes where. Pure: the tests run it
/// against a model of NOR flash.
///
/// # Errors
/// A `current` that is not the partition's length; an image the slot cannot
/// hold; an active sequence at `u32::MAX`; a legacy blob that runs into
/// slot B (writing B would destroy the only model) unless `explicit`; a
/// slot that is not a whole number of the controller's erase pages.
pub fn plan_write(
    current: &[u8],
    image: &[u8],
    base: u32,
    layout: &SlotLayout,
    explicit: Option<Slot>,
    controller: Controller,
) -> Result<SlotWrite> {
    ensure!(
        current.len() == layout.partition_len(),
        "read {} bytes of the partition, expected {}",
        current.len(),
        layout.partition_len()
    );
    let aligned = AlignedBlob::new(current);
    let active = slots::select(aligned.bytes(), layout.page()).ok();
    // A legacy blob's own length (its image is the whole partition).
    let legacy_len = active
        .as_ref()
        .filter(|b| b.source == Source::Legacy)
        .and_then(|b| Model::new_checked(b.image).ok())
        .map_or(0, |m| m.as_bytes().len());
    let (slot, sequence) = match &active {
        Some(b) => {
            let next = b.sequence.checked_add(1).with_context(|| {
                format!(
                    "slot {} has sequence {}, the last there is: erase the partition first",
                    b.source.name(),
                    b.sequence
                )
            })?;
            let inactive = match b.source {
                Source::Slot(s) => s.other(),
                Source::Legacy => {
                    if legacy_len > layout.slot_len() && explicit.is_none() {
                        bail!(
                            "the partition holds a legacy model of {legacy_len} bytes that runs into slot B: \
                             writing slot B would destroy it, and a cut write would leave no model. \
                             Pass --slot b to accept that"
                        );
                    }
                    Slot::B
                }
            };
            (explicit.unwrap_or(inactive), next)
        }
        None => (explicit.unwrap_or(Slot::A), 1),
    };
    let img = SlotImage::new(image, base, layout.partition_len() as u32, slot, sequence)?;
    let overwrites_active = match &active {
        Some(b) => match b.source {
            Source::Slot(s) => s == slot,
            Source::Legacy => slot == Slot::A || legacy_len > layout.slot_len(),
        },
        None => false,
    };
    let unit = controller.unit();
    // Splits `bytes` at slot offset `from` into program units, dropping the erased ones.
    let units_of = |from: usize, bytes: &[u8]| -> Vec<(u32, Vec<u8>)> {
        bytes
            .chunks(unit)
            .enumerate()
            .filter(|(_, u)| u.iter().any(|&b| b != 0xFF))
            .map(|(i, u)| {
                let mut u = u.to_vec();
                u.resize(unit, 0xFF);
                (img.addr + (from + i * unit) as u32, u)
            })
            .collect()
    };
    let trailer = img.trailer_bytes().to_vec();
    let t_addr = img.trailer_addr();
    let trailer_at = layout.max_image_len();
    let erased_trailer = vec![0xFF; trailer.len()];
    let (regions, erase, readback_before, mut units) = match controller.host_erase_page() {
        None => {
            let page = layout.page();
            let image_pages = image.len().div_ceil(page) * page;
            let last_page = layout.slot_len() - page;
            let regions = if image_pages > last_page {
                // The image reaches the last page: one region up to the trailer.
                vec![(img.addr, img.bytes[..trailer_at].to_vec())]
            } else {
                vec![
                    (img.addr, img.bytes[..image_pages].to_vec()),
                    (
                        img.addr + last_page as u32,
                        vec![0xFF; trailer_at - last_page],
                    ),
                ]
            };
            let before = vec![(img.addr, image.to_vec()), (t_addr, erased_trailer)];
            (regions, None, before, Vec::new())
        }
        Some(page) => {
            ensure!(
                layout.slot_len().is_multiple_of(page) && (img.addr as usize).is_multiple_of(page),
                "slot {} ({:#010x}, {} bytes) is not a whole number of the {}'s {page}-byte erase \
                 pages: move or resize the MODEL partition",
                slot.name(),
                img.addr,
                layout.slot_len(),
                controller.name()
            );
            let last = layout.slot_len() - page;
            let head = image.len().min(last);
            let loaded = (head.div_ceil(page) * page).min(last);
            let regions = if loaded == 0 {
                Vec::new()
            } else {
                vec![(img.addr, img.bytes[..loaded].to_vec())]
            };
            let before = vec![
                (img.addr, image[..head].to_vec()),
                (img.addr + last as u32, vec![0xFF; page]),
            ];
            let tail = units_of(last, &img.bytes[last..image.len().max(last)]);
            (regions, Some(img.addr + last as u32), before, tail)
        }
    };
    let trailer_units = units_of(trailer_at, &trailer);
    ensure!(
        trailer_units
            .last()
            .is_some_and(
                |(a, u)| *a as usize + u.len() == t_addr as usize + trailer.len()
                    && (t_addr + MARKER_OFFSET as u32) >= *a
            ),
        "the complete marker is not in the trailer's last program unit"
    );
    units.extend(trailer_units);
    Ok(SlotWrite {
        slot,
        sequence,
        active: active.map(|b| (b.source, b.sequence)),
        overwrites_active,
        controller,
        regions,
        erase,
        readback_before,
        units,
        readback_after: vec![(img.addr, image.to_vec()), (t_addr, trailer)],
    })
}

/// Compares what the flash reads at `addr` with what it should.
///
/// # Errors
/// The first differing byte, with its address.
pub fn verify(addr: u32, expected: &[u8], got: &[u8]) -> Result<()> {
    ensure!(
        expected.len() == got.len(),
        "read {} bytes at {addr:#010x}, expected {}",
        got.len(),
        expected.len()
    );
    if let Some(i) = got.iter().zip(expected).position(|(a, b)| a != b) {
        bail!(
            "verification failed: flash at {:#010x} reads {:#04x}, expected {:#04x}",
            addr as usize + i,
            got[i],
            expected[i]
        );
    }
    Ok(())
}

/// After the write: the core's selection over `partition` must boot `w`'s slot and sequence.
///
/// # Errors
/// The partition boots something else, or nothing.
pub fn check_boots(partition: &[u8], page: usize, w: &SlotWrite) -> Result<()> {
    let aligned = AlignedBlob::new(partition);
    match slots::select(aligned.bytes(), page) {
        Ok(b) if b.source == Source::Slot(w.slot) && b.sequence == w.sequence => Ok(()),
        Ok(b) => bail!(
            "after the write the device would boot {} (sequence {}), not slot {} (sequence {}); \
             slot states {:?}",
            b.source.name(),
            b.sequence,
            w.slot.name(),
            w.sequence,
            b.slots
        ),
        Err(e) => bail!("after the write no slot is valid: {:?}", e.slots),
    }
}

fn describe(w: &SlotWrite) -> String {
    let active = match w.active {
        Some((s, seq)) => format!("{} (sequence {seq})", s.name()),
        None => "nothing (no valid slot or legacy model)".into(),
    };
    format!(
        "now boots {active}; writing slot {} with sequence {}{}",
        w.slot.name(),
        w.sequence,
        if w.overwrites_active {
            " — it overwrites what boots now: a cut write leaves no fallback"
        } else {
            ""
        }
    )
}

/// `tinyinfer flash`: plan, read the partition, write the inactive slot,
/// read back, write the trailer, check the selection, reset.
///
/// # Errors
/// As [`plan`] and [`plan_write`]; no probe attached; probe-rs failures; a
/// read-back that differs.
pub fn run(a: &FlashArgs) -> Result<()> {
    let p = plan(a)?;
    eprintln!(
        "{}: {} bytes -> {} MODEL partition at {:#010x}..{:#010x}, two slots of {} bytes (region {:#x}..{:#x})",
        a.model.display(),
        p.bytes.len(),
        p.chip,
        p.base,
        p.base as u64 + p.layout.partition_len() as u64,
        p.layout.slot_len(),
        p.region.start,
        p.region.end
    );
    if a.dry_run {
        let current = match &a.current {
            Some(path) => std::fs::read(path)
                .with_context(|| format!("reading the partition dump {}", path.display()))?,
            None => vec![0xFF; p.layout.partition_len()],
        };
        let w = plan_write(&current, &p.bytes, p.base, &p.layout, a.slot, p.controller)?;
        eprintln!(
            "{} ({})",
            describe(&w),
            if a.current.is_some() {
                "from the dump"
            } else {
                "assuming an erased partition"
            }
        );
        if let (Some(e), Controller::Stm32l4 { page }) = (w.erase, w.controller) {
            eprintln!(
                "  {}: erase the {page}-byte page at {e:#010x} first (dual-bank mode, the factory \
                 default: a run reads the option bytes and refuses any other)",
                w.controller.name()
            );
        }
        for (addr, r) in &w.regions {
            eprintln!(
                "  flash loader: erase and program {:#010x}..{:#010x}",
                addr,
                *addr as usize + r.len()
            );
        }
        eprintln!(
            "  {}: program {} {}-byte units, the complete marker's last at {:#010x}",
            w.controller.name(),
            w.units.len(),
            w.controller.unit(),
            w.units.last().map_or(0, |t| t.0)
        );
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
                     the J-Link OB next to the battery holder; on the NUCLEO-L4R5ZI, the ST-LINK's \
                     USB port, CN1), check `lsusb` and the udev rules for probe-rs, then retry"
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
    // Whatever happened, reset the board: it boots the valid slot with the
    // highest sequence (after a failed write, the slot it booted before),
    // rather than staying halted.
    let r = write_slot(&mut session, &p, a.slot);
    let reset = session
        .core(0)
        .and_then(|mut core| core.reset())
        .context("resetting the board");
    let w = match (r, reset) {
        (Ok(w), Ok(())) => w,
        (Ok(w), Err(e)) => {
            return Err(e.context(format!(
                "slot {} (sequence {}) was written and verified, but the board was not \
                     reset: reset it to boot the new model",
                w.slot.name(),
                w.sequence
            )))
        }
        (Err(e), Ok(())) => {
            return Err(e.context(
                "the flash failed; the board was reset and boots the valid slot with the \
                     highest sequence: what it booted before, unless the failure came after the \
                     new slot's complete marker (its final read-back or selection check) or \
                     --slot overwrote the active slot (docs/reliability.md)",
            ))
        }
        (Err(e), Err(r)) => {
            return Err(e.context(format!(
                "the flash failed, and resetting the board failed too ({r:#})"
            )))
        }
    };
    eprintln!(
        "wrote and verified slot {} (sequence {}, {} bytes at {:#010x}); board reset (its defmt log: \
         `probe-rs attach --chip {}` or `cargo run --release` in firmware/)",
        w.slot.name(),
        w.sequence,
        p.bytes.len(),
        p.base as usize + p.layout.offset(w.slot),
        p.chip
    );
    Ok(())
}

/// Steps 1 to 4 of [`run`] on an attached session: read the partition,
/// plan, erase, load, program, read back, check the selection.
fn write_slot(
    session: &mut probe_rs::Session,
    p: &FlashPlan,
    explicit: Option<Slot>,
) -> Result<SlotWrite> {
    let read = |session: &mut probe_rs::Session, addr: u32, len: usize| -> Result<Vec<u8>> {
        let mut core = session.core(0).context("opening core 0")?;
        let mut b = vec![0u8; len];
        core.read(addr as u64, &mut b)
            .with_context(|| format!("reading {len} bytes at {addr:#010x}"))?;
        Ok(b)
    };
    let check =
        |session: &mut probe_rs::Session, what: &str, rb: &[(u32, Vec<u8>)]| -> Result<()> {
            for (addr, expected) in rb {
                let got = read(session, *addr, expected.len())?;
                verify(*addr, expected, &got).with_context(|| what.to_string())?;
            }
            Ok(())
        };

    // 1. What boots now decides the slot. (An STM32L4+'s option bytes are
    //    read by each controller write, the first being step 2's erase,
    //    before anything is written: a part the plan's 4 KB pages do not fit
    //    is refused there.)
    let current = read(session, p.base, p.layout.partition_len())?;
    let w = plan_write(
        &current,
        &p.bytes,
        p.base,
        &p.layout,
        explicit,
        p.controller,
    )?;
    eprintln!("{}", describe(&w));

    // 2. On the STM32L4+, the slot's last page through FLASH_CR first: the
    //    old trailer goes, so the firmware never reads the half-written image.
    if let Some(e) = w.erase {
        let mut core = session.core(0).context("opening core 0")?;
        core.halt(std::time::Duration::from_millis(500))
            .context("halting the core")?;
        w.controller
            .write(&mut core, Some(e), &[])
            .with_context(|| format!("erasing the slot's last page at {e:#010x}"))?;
    }
    // The image's pages through the flash loader.
    let mut loader = session.target().flash_loader();
    for (addr, bytes) in &w.regions {
        loader
            .add_data(*addr as u64, bytes)
            .context("planning the flash write")?;
    }
    let mut opts = DownloadOptions::default();
    opts.verify = true;
    loader
        .commit(session, opts)
        .context("writing the slot's image")?;
    check(session, "reading the slot's image back", &w.readback_before)?;

    // 3. The image's tail and the trailer through the controller, the complete marker last.
    {
        let mut core = session.core(0).context("opening core 0")?;
        core.halt(std::time::Duration::from_millis(500))
            .context("halting the core")?;
        w.controller
            .write(&mut core, None, &w.units)
            .context("writing the slot's trailer")?;
    }
    check(session, "reading the slot back", &w.readback_after)?;

    // 4. The firmware's own selection must now pick the new slot.
    let after = read(session, p.base, p.layout.partition_len())?;
    check_boots(&after, p.layout.page(), &w)?;
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::controller::sim::{Nor, Nvmc, Stm32};
    use super::controller::Bus;
    use super::*;

    use crate::common::slots::tiny;

    const BASE: u32 = 0x40000;
    const STM32_BASE: u32 = 0x0804_0000;

    fn golden() -> &'static [u8] {
        &tiny::MODEL.0
    }

    /// The NOR array of a controller: the nRF52's 32-bit words (two writes
    /// between erases), the STM32L4+'s 64-bit double words (one).
    fn nor_for(c: Controller, base: u32, len: usize) -> Nor {
        match c {
            Controller::Nrf52 => Nor::new(base, vec![0xFF; len], 4, 2),
            Controller::Stm32l4 { .. } => Nor::new(base, vec![0xFF; len], 8, 1),
        }
    }

    /// The flash loader's erase page for `c`.
    fn loader_page(c: Controller, l: &SlotLayout) -> usize {
        c.host_erase_page().unwrap_or(l.page())
    }

    /// Runs `w` on the flash model, stopping after `steps` steps (the
    /// erase, each region, then each program unit is a step).
    fn apply(nor: &mut Nor, w: &SlotWrite, page: usize, steps: usize) {
        let mut n = 0;
        if let Some(e) = w.erase {
            if n == steps {
                return;
            }
            nor.erase(e, w.controller.host_erase_page().unwrap());
            n += 1;
        }
        for (addr, r) in &w.regions {
            if n == steps {
                return;
            }
            nor.load(*addr, r, page);
            n += 1;
        }
        for (addr, e) in &w.readback_before {
            verify(*addr, e, nor.read(*addr, e.len())).unwrap();
        }
        for (addr, u) in &w.units {
            if n == steps {
                return;
            }
            nor.program(*addr, u);
            n += 1;
        }
        for (addr, e) in &w.readback_after {
            verify(*addr, e, nor.read(*addr, e.len())).unwrap();
        }
    }

    fn boots(nor: &Nor, l: &SlotLayout) -> Option<(Source, u32)> {
        let a = AlignedBlob::new(&nor.bytes);
        slots::select(a.bytes(), l.page())
            .ok()
            .map(|b| (b.source, b.sequence))
    }

    /// The partitions and controllers the cut test runs: the nRF52840-DK's,
    /// the NUCLEO-L4R5ZI's (dual-bank, 4 KB pages), and two 4 KB slots, where
    /// the whole image lies in the slot's last page (the STM32L4+ then
    /// programs all of it through FLASH_CR).
    fn cases() -> Vec<(Controller, u32, SlotLayout)> {
        let nucleo = layout(0x1C_0000).unwrap();
        vec![
            (
                Controller::Nrf52,
                BASE,
                layout(NRF52840_DK_MODEL_LEN).unwrap(),
            ),
            (Controller::Stm32l4 { page: 4096 }, STM32_BASE, nucleo),
            (Controller::Nrf52, BASE, layout(0x2000).unwrap()),
            (
                Controller::Stm32l4 { page: 4096 },
                STM32_BASE,
                layout(0x2000).unwrap(),
            ),
        ]
    }

    /// Flash after flash alternates the slots with rising sequences; a write
    /// cut at any step boots the previous model; no program unit is written
    /// more often than the controller allows between erases.
    #[test]
    fn flashes_alternate_and_every_cut_boots_the_previous_model() {
        for (c, base, l) in cases() {
            let page = loader_page(c, &l);
            let mut nor = nor_for(c, base, l.partition_len());
            let mut expect = None;
            for (i, (slot, seq)) in [(Slot::A, 1), (Slot::B, 2), (Slot::A, 3), (Slot::B, 4)]
                .into_iter()
                .enumerate()
            {
                let w = plan_write(&nor.bytes, golden(), base, &l, None, c).unwrap();
                let at = format!("{c:?}, slot {} bytes, flash {i}", l.slot_len());
                assert_eq!((w.slot, w.sequence), (slot, seq), "{at}");
                assert!(!w.overwrites_active);
                assert_eq!(w.active, expect);
                let last = w.units.last().unwrap();
                assert_eq!(
                    u32::from_le_bytes(last.1[c.unit() - 4..].try_into().unwrap()),
                    slots::COMPLETE,
                    "{at}"
                );
                match c {
                    // The trailer's words but the reserved (erased) one.
                    Controller::Nrf52 => assert_eq!(w.units.len(), 7, "{at}"),
                    // The trailer's four double words, after the image when it
                    // lies in the slot's last page.
                    Controller::Stm32l4 { page } => {
                        let tail = if l.slot_len() == page {
                            // (a double word the image holds as all 0xFF stays erased)
                            golden()
                                .chunks(8)
                                .filter(|u| u.iter().any(|&b| b != 0xFF))
                                .count()
                        } else {
                            0
                        };
                        assert_eq!(w.units.len(), tail + 4, "{at}");
                        assert_eq!(w.regions.len(), usize::from(tail == 0), "{at}");
                        assert!(w.erase.is_some());
                    }
                }
                let steps = w.regions.len() + usize::from(w.erase.is_some()) + w.units.len();
                let mut done = nor.clone();
                apply(&mut done, &w, page, usize::MAX);
                for cut in 0..steps {
                    let mut copy = nor.clone();
                    apply(&mut copy, &w, page, cut);
                    let got = boots(&copy, &l);
                    // Into an empty partition, a whole image at slot A without
                    // its trailer boots as a legacy blob (it passes the core's
                    // full check).
                    let whole = copy.read(base, golden().len()) == golden();
                    if expect.is_none() && whole {
                        assert_eq!(got, Some((Source::Legacy, 0)), "{at} cut after {cut} steps");
                    } else {
                        assert_eq!(got, expect, "{at} cut after {cut} steps");
                    }
                    // On the STM32 (ECC: a half-written double word may fault
                    // when read), the firmware must never be led to read a
                    // slot image being rewritten: while it is neither the old
                    // nor the whole new image, the slot's trailer reads erased.
                    if let Controller::Stm32l4 { .. } = c {
                        let s0 = l.offset(w.slot);
                        let t0 = s0 + l.max_image_len();
                        let img = &copy.bytes[s0..t0];
                        if img != &nor.bytes[s0..t0] && img != &done.bytes[s0..t0] {
                            assert!(
                                copy.bytes[t0..t0 + slots::TRAILER_LEN].iter().all(|&b| b == 0xFF),
                                "{at} cut after {cut} steps: the image changes under an old trailer"
                            );
                        }
                    }
                }
                apply(&mut nor, &w, page, usize::MAX);
                check_boots(&nor.bytes, l.page(), &w).unwrap();
                expect = Some((Source::Slot(slot), seq));
            }
        }
    }

    /// The register sequences of both controllers, run against models of
    /// their registers, leave exactly the bytes of the plan, and the core
    /// boots the new slot each time.
    #[test]
    fn register_sequences_write_what_the_plan_says() {
        for (c, base, l) in cases() {
            let page = loader_page(c, &l);
            let mut bus: Box<dyn Bus> = match c {
                Controller::Nrf52 => Box::new(Nvmc {
                    nor: nor_for(c, base, l.partition_len()),
                    config: 0,
                }),
                Controller::Stm32l4 { .. } => {
                    Box::new(Stm32::new(nor_for(c, base, l.partition_len())))
                }
            };
            for seq in 1..=3 {
                let nor = |b: &mut Box<dyn Bus>| -> Vec<u8> {
                    (0..l.partition_len() as u32)
                        .step_by(4)
                        .flat_map(|o| b.read32(base + o).unwrap().to_le_bytes())
                        .collect()
                };
                let current = nor(&mut bus);
                let w = plan_write(&current, golden(), base, &l, None, c).unwrap();
                assert_eq!(w.sequence, seq);
                // The array as read, with the loader's part modelled on it.
                let mut model = nor_for(c, base, l.partition_len());
                model.bytes = current.clone();
                match c {
                    Controller::Nrf52 => {
                        // The loader's pages, then the NVMC's words.
                        for (addr, r) in &w.regions {
                            model.load(*addr, r, page);
                        }
                        let mut dev = Nvmc {
                            nor: model,
                            config: 0,
                        };
                        c.write(&mut dev, w.erase, &[]).unwrap();
                        for (addr, e) in &w.readback_before {
                            verify(*addr, e, dev.nor.read(*addr, e.len())).unwrap();
                        }
                        c.write(&mut dev, None, &w.units).unwrap();
                        bus = Box::new(dev);
                    }
                    Controller::Stm32l4 { .. } => {
                        // The host's erase through FLASH_CR, the loader's
                        // pages, then the double words.
                        let mut dev = Stm32::new(model);
                        c.write(&mut dev, w.erase, &[]).unwrap();
                        for (addr, r) in &w.regions {
                            dev.nor.load(*addr, r, page);
                        }
                        for (addr, e) in &w.readback_before {
                            verify(*addr, e, dev.nor.read(*addr, e.len())).unwrap();
                        }
                        c.write(&mut dev, None, &w.units).unwrap();
                        assert_eq!(dev.sr, 0);
                        bus = Box::new(dev);
                    }
                }
                let after = nor(&mut bus);
                for (addr, e) in &w.readback_after {
                    let at = (addr - base) as usize;
                    verify(*addr, e, &after[at..at + e.len()]).unwrap();
                }
                // Nothing outside the slot changed.
                let (s0, s1) = (l.offset(w.slot), l.offset(w.slot) + l.slot_len());
                assert_eq!(after[..s0], current[..s0]);
                assert_eq!(after[s1..], current[s1..]);
                check_boots(&after, l.page(), &w).unwrap();
            }
        }
    }

    #[test]
    fn rot_legacy_and_explicit_slots() {
        let c = Controller::Nrf52;
        let l = layout(NRF52840_DK_MODEL_LEN).unwrap();
        // A legacy blob at the start: slot B, sequence 1.
        let mut part = vec![0xFF; l.partition_len()];
        part[..golden().len()].copy_from_slice(golden());
        let w = plan_write(&part, golden(), BASE, &l, None, c).unwrap();
        assert_eq!(
            (w.slot, w.sequence, w.active),
            (Slot::B, 1, Some((Source::Legacy, 0)))
        );
        assert!(!w.overwrites_active);
        // An explicit slot A overwrites the legacy blob, and says so.
        let w = plan_write(&part, golden(), BASE, &l, Some(Slot::A), c).unwrap();
        assert!(w.overwrites_active);

        // Slot B newest but rotted: A is active, so B is rewritten.
        let mut nor = nor_for(c, BASE, l.partition_len());
        for _ in 0..2 {
            let w = plan_write(&nor.bytes, golden(), BASE, &l, None, c).unwrap();
            apply(&mut nor, &w, l.page(), usize::MAX);
        }
        nor.bytes[l.offset(Slot::B) + 100] ^= 0x20;
        let w = plan_write(&nor.bytes, golden(), BASE, &l, None, c).unwrap();
        assert_eq!((w.slot, w.sequence), (Slot::B, 2));

        // A partition dump of the wrong size, an image too large, the last sequence.
        assert!(plan_write(&nor.bytes[1..], golden(), BASE, &l, None, c).is_err());
        let small = SlotLayout::new(2 * 4096, 4096).unwrap();
        let mut big = vec![0xFF; 2 * 4096];
        big[..golden().len()].copy_from_slice(golden());
        assert!(plan_write(&big, &[0u8; 4096], BASE, &small, None, c).is_err());
        let mut last = vec![0xFF; 2 * 4096];
        slots::encode_slot(&small, golden(), u32::MAX, &mut last[4096..]).unwrap();
        let e = plan_write(&last, golden(), BASE, &small, None, c).unwrap_err();
        assert!(format!("{e:#}").contains("the last there is"), "{e:#}");

        // Slots that are not whole STM32L4+ erase pages (4 KB slots, 8 KB pages).
        let e = plan_write(
            &vec![0xFF; 2 * 4096],
            golden(),
            STM32_BASE,
            &small,
            None,
            Controller::Stm32l4 { page: 8192 },
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("erase pages"), "{e:#}");
    }

    /// `simulate --board` sends every real board of the table to `tinyinfer flash`.
    #[test]
    fn every_real_board_has_a_slot_writer() {
        for b in boards::apps() {
            if let Some(chip) = b.chip {
                assert!(Controller::for_chip(chip).is_some(), "{}: {chip}", b.bin);
            }
        }
    }

    #[test]
    fn verify_names_the_first_difference() {
        assert!(verify(0x100, &[1, 2, 3], &[1, 2, 3]).is_ok());
        let e = verify(0x100, &[1, 2, 3], &[1, 9, 3]).unwrap_err();
        assert!(e.to_string().contains("0x00000101"), "{e}");
        assert!(verify(0x100, &[1, 2], &[1]).is_err());
    }
}
