//! A/B model slots on the host: slot images for `tinyinfer export --slot`
//! and `tinyinfer simulate --slot-a/--slot-b`, with the layout, trailer and
//! selection of the core's `tinyinfer::link::slots` (the firmware's own).

use anyhow::{bail, ensure, Context, Result};
use tinyinfer::format::Model;
use tinyinfer::link::slots::{encode_slot, Slot, SlotLayout, Trailer, NRF52840_PAGE, TRAILER_LEN};

use super::blob::intel_hex_segments;

/// The nRF52840-DK's MODEL partition length (firmware/memory-nrf52840-dk.x):
/// two slots of 384 KB.
pub const DEFAULT_PARTITION_LEN: u32 = 0x000C_0000;

/// The flash page slots are aligned to (the firmware's `slots::FLASH_PAGE`).
pub const FLASH_PAGE: usize = NRF52840_PAGE;

/// Parses `a` or `b` (either case).
///
/// # Errors
/// Any other text.
pub fn parse_slot(s: &str) -> Result<Slot, String> {
    match s {
        "a" | "A" => Ok(Slot::A),
        "b" | "B" => Ok(Slot::B),
        _ => Err(format!("bad slot {s:?}: expected a or b")),
    }
}

/// The slots of a `partition_len`-byte partition.
///
/// # Errors
/// A length that is not a nonzero multiple of two 4 KB pages.
pub fn layout(partition_len: u32) -> Result<SlotLayout> {
    SlotLayout::new(partition_len as usize, FLASH_PAGE).map_err(|e| {
        anyhow::anyhow!(
            "a MODEL partition of {partition_len:#x} bytes cannot hold two slots of whole \
             {FLASH_PAGE}-byte flash pages ({e:?}): give the partition's length from \
             firmware/memory-<board>.x"
        )
    })
}

/// One slot's bytes and where they go.
#[derive(Clone, Debug)]
pub struct SlotImage {
    /// Which slot.
    pub slot: Slot,
    /// Its sequence number.
    pub sequence: u32,
    /// Flash address of the slot's first byte.
    pub addr: u32,
    /// The whole slot: the model, erased bytes (0xFF), the trailer.
    pub bytes: Vec<u8>,
    /// Bytes of the model at the slot's start.
    pub image_len: usize,
    /// The trailer.
    pub trailer: Trailer,
}

impl SlotImage {
    /// Builds `slot` of the partition at `base` (`partition_len` bytes) holding `blob`.
    ///
    /// # Errors
    /// A blob the core refuses, a bad partition, a blob larger than a slot,
    /// a slot past the 32-bit address space.
    pub fn new(
        blob: &[u8],
        base: u32,
        partition_len: u32,
        slot: Slot,
        sequence: u32,
    ) -> Result<Self> {
        let aligned = super::blob::AlignedBlob::new(blob);
        Model::new_checked(aligned.bytes())
            .map_err(|e| anyhow::anyhow!("refusing to put an invalid model in a slot: {e}"))?;
        let l = layout(partition_len)?;
        ensure!(
            blob.len() <= l.max_image_len(),
            "the model is {} bytes; a slot of the {partition_len:#x}-byte partition holds {} \
             (half the partition, less its {TRAILER_LEN}-byte trailer)",
            blob.len(),
            l.max_image_len()
        );
        let addr = u32::try_from(base as u64 + l.offset(slot) as u64)
            .ok()
            .filter(|a| (*a as u64) + l.slot_len() as u64 <= 1 << 32)
            .with_context(|| {
                format!(
                    "slot {} of a partition at {base:#x} is past the 32-bit address space",
                    slot.name()
                )
            })?;
        let mut bytes = vec![0u8; l.slot_len()];
        let trailer = match encode_slot(&l, blob, sequence, &mut bytes) {
            Ok(t) => t,
            Err(e) => bail!("encoding slot {}: {e:?}", slot.name()),
        };
        Ok(SlotImage {
            slot,
            sequence,
            addr,
            bytes,
            image_len: blob.len(),
            trailer,
        })
    }

    /// Flash address of the trailer.
    pub fn trailer_addr(&self) -> u32 {
        self.addr + (self.bytes.len() - TRAILER_LEN) as u32
    }

    /// The trailer's bytes.
    pub fn trailer_bytes(&self) -> &[u8] {
        &self.bytes[self.bytes.len() - TRAILER_LEN..]
    }

    /// Intel HEX of the model at the slot's address and the trailer at the
    /// slot's end (the erased fill between them is left out).
    ///
    /// # Errors
    /// As [`intel_hex_segments`].
    pub fn hex(&self) -> Result<String> {
        intel_hex_segments(&[
            (self.addr, &self.bytes[..self.image_len]),
            (self.trailer_addr(), self.trailer_bytes()),
        ])
    }
}

/// The core's golden model, for the tests.
#[cfg(test)]
#[path = "../../../tests/golden/tiny.rs"]
#[allow(dead_code)]
pub(crate) mod tiny;

#[cfg(test)]
mod tests {
    use super::*;
    use tinyinfer::link::slots::{select, Source};

    use super::tiny;

    #[test]
    fn slot_images_land_at_the_slot_and_select() {
        let blob = &tiny::MODEL.0[..];
        let a = SlotImage::new(blob, 0x40000, DEFAULT_PARTITION_LEN, Slot::A, 1).unwrap();
        let b = SlotImage::new(blob, 0x40000, DEFAULT_PARTITION_LEN, Slot::B, 2).unwrap();
        assert_eq!((a.addr, b.addr), (0x40000, 0x40000 + 0x60000));
        assert_eq!(b.trailer_addr(), 0x40000 + 0xC0000 - 32);
        let mut part = vec![0u32; 0xC0000 / 4];
        let p: &mut [u8] = bytemuck::cast_slice_mut(&mut part);
        p[..0x60000].copy_from_slice(&a.bytes);
        p[0x60000..].copy_from_slice(&b.bytes);
        let boot = select(p, FLASH_PAGE).unwrap();
        assert_eq!((boot.source, boot.sequence), (Source::Slot(Slot::B), 2));
        assert_eq!(boot.image, blob);

        // The HEX holds the model and the trailer, at their addresses.
        let hex = b.hex().unwrap();
        let (mut upper, mut got) = (0u32, std::collections::BTreeMap::new());
        for rec in ihex::Reader::new(&hex) {
            if let ihex::Record::ExtendedLinearAddress(h) = rec.as_ref().unwrap() {
                upper = (*h as u32) << 16;
            }
            if let ihex::Record::Data { offset, value } = rec.unwrap() {
                for (i, v) in value.into_iter().enumerate() {
                    got.insert(upper + offset as u32 + i as u32, v);
                }
            }
        }
        assert_eq!(got.len(), blob.len() + TRAILER_LEN);
        for (i, &v) in blob.iter().enumerate() {
            assert_eq!(got[&(b.addr + i as u32)], v);
        }
        for (i, &v) in b.trailer_bytes().iter().enumerate() {
            assert_eq!(got[&(b.trailer_addr() + i as u32)], v);
        }
    }

    #[test]
    fn bad_slot_requests_are_refused() {
        let blob = &tiny::MODEL.0[..];
        let mut bad = blob.to_vec();
        bad[40] ^= 1;
        assert!(SlotImage::new(&bad, 0x40000, DEFAULT_PARTITION_LEN, Slot::A, 1).is_err());
        assert!(SlotImage::new(blob, 0x40000, 0xC1000, Slot::A, 1).is_err());
        // An 8 KB partition (two 4 KB slots) is the least; the golden model fits one.
        assert!(SlotImage::new(blob, 0, 0x2000, Slot::B, 1).is_ok());
        assert!(SlotImage::new(blob, 0, 0x1000, Slot::B, 1).is_err());
        assert!(SlotImage::new(blob, 0xFFFF_F000, 0x2000, Slot::B, 1).is_err());
        assert_eq!(parse_slot("B"), Ok(Slot::B));
        assert!(parse_slot("c").is_err());
    }
}
