//! Which model to boot: the A/B slots of the MODEL partition.
//!
//! The partition (`__model_start`..`__model_end` of the board's
//! `memory-<board>.x`) is split in two slots of half its length each, by
//! the core's [`tinyinfer::link::slots`], which the host's `tinyinfer flash`
//! and `tinyinfer export --slot` use too: 384 KB each in the nRF52840's
//! 768 KB partition, 1 MB each in the roomy QEMU map. The firmware boots
//! the newest slot whose trailer is complete and whose image passes its CRC
//! and the core's checker; without one, a bare legacy blob at the partition
//! start (written before slots, or by `tinyinfer simulate MODEL.tinf`).
//!
//! Reported (records of `tinyinfer::link::report`, which `tinyinfer
//! simulate` reads, and defmt lines for people): each slot's state
//! (`Slot`), then the image booted (`Booting`), or `NoValidModel` (exit
//! status 6).
//!
//! An erased or legacy partition without a valid blob ends as before slots
//! existed: the blob's own error (11 for an erased partition).

use tinyinfer::link::report::Record;
use tinyinfer::link::slots::{self, Slot, SlotState, NRF52840_PAGE};

use crate::{report, Outcome};

/// The flash page the slots are aligned to: the nRF52840's 4 KB erase unit
/// (the QEMU maps keep the same layout, so a slot image is the same file on both).
pub const FLASH_PAGE: usize = NRF52840_PAGE;

fn report_slot(slot: Slot, s: &SlotState) {
    report::send(&Record::Slot { slot, state: *s });
    match s {
        Ok(seq) => defmt::info!(
            "model slot {=str}: valid, sequence {=u32}",
            slot.name(),
            seq
        ),
        Err(e) => defmt::warn!("model slot {=str}: {}", slot.name(), e),
    }
}

/// The image to boot from `partition`, after reporting each slot's state;
/// or how the run ends when there is none.
///
/// # Errors
/// [`Outcome::NoValidModel`] when the partition holds slots and none is
/// valid; [`Outcome::Model`] with the blob's error for an erased or legacy
/// partition without a valid blob.
pub fn boot_image(partition: &'static [u8]) -> Result<&'static [u8], Outcome> {
    match slots::select(partition, FLASH_PAGE) {
        Ok(b) => {
            report_slot(Slot::A, &b.slots[0]);
            report_slot(Slot::B, &b.slots[1]);
            report::send(&Record::Booting {
                source: b.source,
                sequence: b.sequence,
                bytes: b.image.len() as u32,
            });
            defmt::info!(
                "model slot: booting {=str}, sequence {=u32}, {=u32} bytes",
                b.source.name(),
                b.sequence,
                b.image.len() as u32
            );
            Ok(b.image)
        }
        Err(e) => {
            report_slot(Slot::A, &e.slots[0]);
            report_slot(Slot::B, &e.slots[1]);
            if e.slotted() {
                report::send(&Record::NoValidModel);
                defmt::error!("model slot: no valid model in either slot");
                Err(Outcome::NoValidModel)
            } else {
                Err(Outcome::Model(e.legacy))
            }
        }
    }
}
