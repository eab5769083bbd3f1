//! A/B model slots: the MODEL partition holds two slots, so that a flash
//! cut short (a power cut, a pulled cable) or a slot that rots later never
//! leaves a device without a model.
//!
//! The host (`tinyinfer flash`, `tinyinfer export --slot`) encodes slots and
//! the firmware selects one with this module, so both read one definition.
//!
//! # Layout
//!
//! The partition is split in two halves, slot A first, each a whole number
//! of flash pages (erasing one slot never touches the other). A slot holds
//! the `.tinf` image at its start (so the image is as aligned as the
//! partition) and a [`TRAILER_LEN`]-byte trailer in its last bytes:
//!
//! | offset in the trailer | word | written |
//! | ---: | --- | --- |
//! | 0 | magic `TISL` | 2nd |
//! | 4 | trailer version (1) | 2nd |
//! | 8 | sequence number (higher is newer) | 2nd |
//! | 12 | image length in bytes | 2nd |
//! | 16 | CRC-32 of the image (`format::CRC32`, as the blob's own) | 2nd |
//! | 20 | CRC-32 of the trailer's bytes 0..20 | 2nd |
//! | 24 | reserved, left erased | never |
//! | 28 | complete marker [`COMPLETE`] | last |
//!
//! Everything is little-endian. The image goes first (1st), is read back,
//! then the trailer words, then the complete marker: a slot whose marker
//! reads [`COMPLETE`] had every earlier byte written. NOR flash erases to
//! 0xFF and a write only clears bits, so the marker goes from the erased
//! word 0xFFFF_FFFF to [`COMPLETE`] in one word write; a cut before it
//! leaves 0xFFFF_FFFF (or, mid-write, a word that is not [`COMPLETE`]).
//! QEMU's unloaded memory reads 0x00; [`COMPLETE`] is neither value.
//!
//! On the nRF52840 a page is 4 KB ([`NRF52840_PAGE`], the erase unit) and
//! the NVMC writes 32-bit words, each at most twice between erases: the
//! trailer is eight aligned words, each written once after its page was
//! erased (the flash algorithm may first program it with 0xFF along with the
//! rest of the page, which is the second write at most). The trailer shares
//! the slot's last page with the image's tail when the image is that long;
//! the two never share a word.
//!
//! # Selection
//!
//! [`select`] boots the valid slot with the highest sequence number; on a
//! tie, slot A. A slot is valid when its trailer parses (magic, version,
//! trailer CRC, complete marker, a length that fits the slot), the image's
//! CRC matches, and the core's checker (`Model::new_checked`) accepts the
//! image. Each slot's state is a typed [`SlotError`] otherwise.
//!
//! When neither slot is valid, the partition start is tried as a *legacy*
//! image: a bare `.tinf` blob written before slots existed (or by a
//! developer with `tinyinfer simulate MODEL.tinf`, `probe-rs download`).
//! It is booted only if the core's full check accepts it (its own CRC makes
//! a half-written blob fail). A device with a legacy blob can then be
//! flashed with slots: the new model goes to slot B, and the blob keeps
//! booting until slot B is complete.
//!
//! This module only lays out and selects; it runs no model.

use core::ops::Range;

use crate::format::{Model, CRC32};
use crate::Error;

/// Bytes of a slot trailer (eight 32-bit words).
pub const TRAILER_LEN: usize = 32;
/// The trailer's first four bytes.
pub const TRAILER_MAGIC: [u8; 4] = *b"TISL";
/// The trailer version this code writes and reads.
pub const TRAILER_VERSION: u32 = 1;
/// The complete marker: neither erased value (0xFFFF_FFFF on NOR flash,
/// 0x0000_0000 on QEMU), written last.
pub const COMPLETE: u32 = 0x5AFE_C0DE;
/// Offset of the complete marker in the trailer.
pub const MARKER_OFFSET: usize = 28;
/// Offset of the reserved word, left erased.
pub const RESERVED_OFFSET: usize = 24;
/// Bytes of the trailer its own CRC covers (magic through image CRC).
pub const TRAILER_CRC_COVERS: usize = 20;
/// The nRF52840's flash page (its erase unit).
pub const NRF52840_PAGE: usize = 4096;

/// One of the two slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Slot {
    /// The first half of the partition.
    A,
    /// The second half.
    B,
}

impl Slot {
    /// Both slots, A first.
    pub const ALL: [Slot; 2] = [Slot::A, Slot::B];

    /// 0 for A, 1 for B.
    pub const fn index(self) -> usize {
        match self {
            Slot::A => 0,
            Slot::B => 1,
        }
    }

    /// The other slot.
    pub const fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    /// `"a"` or `"b"`.
    pub const fn name(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }
}

/// Why a partition length cannot hold two slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LayoutError {
    /// The page size is not a power of two of at least [`TRAILER_LEN`] bytes.
    BadPage(u32),
    /// The partition is not a whole, nonzero number of page pairs.
    BadPartition {
        /// Partition bytes.
        len: u32,
        /// Page bytes.
        page: u32,
    },
}

/// Why a slot is not booted. Ordered as the checks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SlotError {
    /// The partition cannot be split into two slots ([`LayoutError`]).
    Layout(LayoutError),
    /// The trailer reads erased (all 0xFF, or all 0x00 on QEMU): never
    /// written, or the write stopped before the trailer.
    Erased,
    /// The trailer's bytes are not a trailer (no magic): other data, such
    /// as a legacy blob running over the slot's end.
    NoTrailer,
    /// The trailer is there but its complete marker is not: the write
    /// stopped while the trailer was being written.
    Incomplete,
    /// A trailer version this code cannot read.
    UnsupportedVersion(u32),
    /// The trailer's own CRC does not match (a trailer word rotted).
    BadTrailerCrc,
    /// The image length is zero or does not fit the slot.
    BadLength {
        /// Length the trailer declares.
        len: u32,
        /// Longest image the slot holds.
        max: u32,
    },
    /// The image's CRC does not match the trailer's (bit rot, or an image
    /// written only in part).
    BadImageCrc,
    /// The core's checker refuses the image.
    Model(Error),
}

/// The split of a partition into two slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotLayout {
    slot_len: usize,
    page: usize,
}

impl SlotLayout {
    /// Two slots of `partition_len / 2` bytes, each a whole number of
    /// `page`-byte flash pages.
    ///
    /// # Errors
    /// A page that is not a power of two of at least [`TRAILER_LEN`] bytes;
    /// a partition that is not a nonzero multiple of two pages.
    pub const fn new(partition_len: usize, page: usize) -> Result<Self, LayoutError> {
        if !page.is_power_of_two() || page < TRAILER_LEN {
            return Err(LayoutError::BadPage(page as u32));
        }
        // `page` is a power of two ≥ 32, so `2 * page` cannot overflow
        // unless `page` is the top bit; then no partition is a multiple of it.
        let pair = match page.checked_mul(2) {
            Some(p) => p,
            None => {
                return Err(LayoutError::BadPartition {
                    len: partition_len as u32,
                    page: page as u32,
                })
            }
        };
        if partition_len == 0 || partition_len % pair != 0 {
            return Err(LayoutError::BadPartition {
                len: partition_len as u32,
                page: page as u32,
            });
        }
        Ok(SlotLayout {
            slot_len: partition_len / 2,
            page,
        })
    }

    /// Bytes of the partition.
    pub const fn partition_len(&self) -> usize {
        self.slot_len * 2
    }

    /// Bytes of one slot.
    pub const fn slot_len(&self) -> usize {
        self.slot_len
    }

    /// Bytes of a flash page.
    pub const fn page(&self) -> usize {
        self.page
    }

    /// The longest image a slot holds (the slot less its trailer).
    pub const fn max_image_len(&self) -> usize {
        self.slot_len - TRAILER_LEN
    }

    /// Offset of `slot` from the partition start.
    pub const fn offset(&self, slot: Slot) -> usize {
        slot.index() * self.slot_len
    }

    /// The bytes of `slot`, as offsets into the partition.
    pub const fn range(&self, slot: Slot) -> Range<usize> {
        self.offset(slot)..self.offset(slot) + self.slot_len
    }

    /// Offset of `slot`'s trailer from the partition start.
    pub const fn trailer_offset(&self, slot: Slot) -> usize {
        self.offset(slot) + self.slot_len - TRAILER_LEN
    }
}

/// A slot trailer's contents (the magic, version and complete marker are implied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Trailer {
    /// Higher is newer.
    pub sequence: u32,
    /// Image bytes from the slot's start.
    pub len: u32,
    /// CRC-32 of the image.
    pub image_crc: u32,
}

fn word(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Trailer {
    /// The trailer for `image` with `sequence`.
    ///
    /// # Errors
    /// [`SlotError::BadLength`] for an empty image or one of 2^32 bytes or more.
    pub fn for_image(image: &[u8], sequence: u32) -> Result<Self, SlotError> {
        let len = u32::try_from(image.len()).map_err(|_| SlotError::BadLength {
            len: u32::MAX,
            max: u32::MAX,
        })?;
        if len == 0 {
            return Err(SlotError::BadLength { len, max: u32::MAX });
        }
        Ok(Trailer {
            sequence,
            len,
            image_crc: CRC32.checksum(image),
        })
    }

    /// The trailer's bytes, complete marker included; the reserved word is erased (0xFF).
    pub fn encode(&self) -> [u8; TRAILER_LEN] {
        let mut b = [0xFF; TRAILER_LEN];
        b[0..4].copy_from_slice(&TRAILER_MAGIC);
        b[4..8].copy_from_slice(&TRAILER_VERSION.to_le_bytes());
        b[8..12].copy_from_slice(&self.sequence.to_le_bytes());
        b[12..16].copy_from_slice(&self.len.to_le_bytes());
        b[16..20].copy_from_slice(&self.image_crc.to_le_bytes());
        let crc = CRC32.checksum(&b[..TRAILER_CRC_COVERS]);
        b[20..24].copy_from_slice(&crc.to_le_bytes());
        b[MARKER_OFFSET..].copy_from_slice(&COMPLETE.to_le_bytes());
        b
    }

    /// Reads a trailer; the image length is not yet checked against a slot.
    ///
    /// # Errors
    /// [`SlotError::Erased`], [`NoTrailer`](SlotError::NoTrailer),
    /// [`Incomplete`](SlotError::Incomplete),
    /// [`UnsupportedVersion`](SlotError::UnsupportedVersion),
    /// [`BadTrailerCrc`](SlotError::BadTrailerCrc), in that order of checks.
    pub fn parse(b: &[u8; TRAILER_LEN]) -> Result<Self, SlotError> {
        if b.iter().all(|&x| x == 0xFF) || b.iter().all(|&x| x == 0) {
            return Err(SlotError::Erased);
        }
        if b[0..4] != TRAILER_MAGIC {
            return Err(SlotError::NoTrailer);
        }
        if word(b, MARKER_OFFSET) != COMPLETE {
            return Err(SlotError::Incomplete);
        }
        let version = word(b, 4);
        if version != TRAILER_VERSION {
            return Err(SlotError::UnsupportedVersion(version));
        }
        if word(b, 20) != CRC32.checksum(&b[..TRAILER_CRC_COVERS]) {
            return Err(SlotError::BadTrailerCrc);
        }
        Ok(Trailer {
            sequence: word(b, 8),
            len: word(b, 12),
            image_crc: word(b, 16),
        })
    }
}

/// A slot's verdict: its sequence number when valid.
pub type SlotState = Result<u32, SlotError>;

/// Checks `slot` of `partition`: trailer, length, image CRC, then `check`
/// on the image. Returns the trailer and the image.
///
/// # Errors
/// The first check that fails, as a [`SlotError`].
pub fn inspect<'a>(
    partition: &'a [u8],
    layout: &SlotLayout,
    slot: Slot,
    check: impl Fn(&'a [u8]) -> Result<(), Error>,
) -> Result<(Trailer, &'a [u8]), SlotError> {
    let at = layout.trailer_offset(slot);
    let bytes: &[u8; TRAILER_LEN] = partition
        .get(at..at + TRAILER_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or(SlotError::Layout(LayoutError::BadPartition {
            len: partition.len() as u32,
            page: layout.page as u32,
        }))?;
    let t = Trailer::parse(bytes)?;
    let max = layout.max_image_len();
    if t.len == 0 || t.len as usize > max {
        return Err(SlotError::BadLength {
            len: t.len,
            max: max as u32,
        });
    }
    let start = layout.offset(slot);
    let image = &partition[start..start + t.len as usize];
    if CRC32.checksum(image) != t.image_crc {
        return Err(SlotError::BadImageCrc);
    }
    check(image).map_err(SlotError::Model)?;
    Ok((t, image))
}

/// Where the booted image came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Source {
    /// A valid slot.
    Slot(Slot),
    /// A bare blob at the partition start, no valid slot (see the module doc).
    Legacy,
}

impl Source {
    /// `"a"`, `"b"` or `"legacy"`.
    pub const fn name(self) -> &'static str {
        match self {
            Source::Slot(s) => s.name(),
            Source::Legacy => "legacy",
        }
    }
}

/// What to boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Boot<'a> {
    /// The slot (or the legacy blob).
    pub source: Source,
    /// Its sequence number (0 for a legacy blob).
    pub sequence: u32,
    /// The image: a slot's declared bytes, or the whole partition for a
    /// legacy blob (the checker ignores bytes past the blob's length).
    pub image: &'a [u8],
    /// Each slot's verdict, A then B.
    pub slots: [SlotState; 2],
}

/// Neither slot nor a legacy blob holds a valid model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoModel {
    /// Each slot's verdict, A then B.
    pub slots: [SlotState; 2],
    /// Why the partition start is not a legacy blob.
    pub legacy: Error,
}

impl NoModel {
    /// Some slot holds a trailer (it was written as a slot, however far the
    /// write got): the partition is a slotted one. Otherwise it is an
    /// erased or legacy partition, and [`legacy`](Self::legacy) says why
    /// it holds no model, exactly as before slots existed.
    pub fn slotted(&self) -> bool {
        self.slots.iter().any(|s| {
            !matches!(
                s,
                Err(SlotError::Erased | SlotError::NoTrailer | SlotError::Layout(_))
            )
        })
    }
}

/// Picks what to boot from `partition`, with `page`-byte flash pages,
/// checking each image with the core's `Model::new_checked`.
///
/// # Errors
/// [`NoModel`] when neither slot is valid and the partition start is not a
/// valid legacy blob.
pub fn select(partition: &[u8], page: usize) -> Result<Boot<'_>, NoModel> {
    select_with(partition, page, |image| {
        Model::new_checked(image).map(|_| ())
    })
}

/// [`select`] with the image check given: the newest valid slot (a tie goes
/// to A), else the partition start as a legacy blob if `check` accepts it.
///
/// # Errors
/// As [`select`].
pub fn select_with<'a>(
    partition: &'a [u8],
    page: usize,
    check: impl Fn(&'a [u8]) -> Result<(), Error>,
) -> Result<Boot<'a>, NoModel> {
    let mut slots: [SlotState; 2] = [Err(SlotError::Erased); 2];
    let mut best: Option<(Slot, u32, &'a [u8])> = None;
    match SlotLayout::new(partition.len(), page) {
        Ok(layout) => {
            for slot in Slot::ALL {
                match inspect(partition, &layout, slot, &check) {
                    Ok((t, image)) => {
                        slots[slot.index()] = Ok(t.sequence);
                        // Strictly newer: on a tie the earlier slot, A, stays.
                        if best.is_none_or(|(_, seq, _)| t.sequence > seq) {
                            best = Some((slot, t.sequence, image));
                        }
                    }
                    Err(e) => slots[slot.index()] = Err(e),
                }
            }
        }
        Err(e) => slots = [Err(SlotError::Layout(e)); 2],
    }
    if let Some((slot, sequence, image)) = best {
        return Ok(Boot {
            source: Source::Slot(slot),
            sequence,
            image,
            slots,
        });
    }
    match check(partition) {
        Ok(()) => Ok(Boot {
            source: Source::Legacy,
            sequence: 0,
            image: partition,
            slots,
        }),
        Err(legacy) => Err(NoModel { slots, legacy }),
    }
}

/// Writes a whole slot into `out` (one slot's bytes): the image, erased
/// bytes (0xFF) up to the trailer, and the trailer.
///
/// # Errors
/// [`SlotError::BadLength`] when `out` is not one slot of `layout` long, or
/// the image is empty or does not fit the slot.
pub fn encode_slot(
    layout: &SlotLayout,
    image: &[u8],
    sequence: u32,
    out: &mut [u8],
) -> Result<Trailer, SlotError> {
    let max = layout.max_image_len();
    if out.len() != layout.slot_len() || image.is_empty() || image.len() > max {
        return Err(SlotError::BadLength {
            len: u32::try_from(image.len()).unwrap_or(u32::MAX),
            max: max as u32,
        });
    }
    let t = Trailer::for_image(image, sequence)?;
    out[..image.len()].copy_from_slice(image);
    out[image.len()..max].fill(0xFF);
    out[max..].copy_from_slice(&t.encode());
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 64;

    fn ok(_: &[u8]) -> Result<(), Error> {
        Ok(())
    }

    /// Two slots of two pages each, erased.
    fn partition() -> [u8; 4 * PAGE] {
        [0xFF; 4 * PAGE]
    }

    fn put(p: &mut [u8], slot: Slot, image: &[u8], seq: u32) {
        let l = SlotLayout::new(p.len(), PAGE).unwrap();
        encode_slot(&l, image, seq, &mut p[l.range(slot)]).unwrap();
    }

    #[test]
    fn layouts_are_whole_pages() {
        let l = SlotLayout::new(768 * 1024, NRF52840_PAGE).unwrap();
        assert_eq!(l.slot_len(), 384 * 1024);
        assert_eq!(l.offset(Slot::B), 384 * 1024);
        assert_eq!(l.trailer_offset(Slot::A), 384 * 1024 - 32);
        assert_eq!(l.max_image_len(), 384 * 1024 - 32);
        assert_eq!(
            SlotLayout::new(4096 * 3, 4096),
            Err(LayoutError::BadPartition {
                len: 12288,
                page: 4096
            })
        );
        assert_eq!(
            SlotLayout::new(0, 4096),
            Err(LayoutError::BadPartition { len: 0, page: 4096 })
        );
        assert_eq!(SlotLayout::new(8192, 1000), Err(LayoutError::BadPage(1000)));
        assert_eq!(SlotLayout::new(64, 16), Err(LayoutError::BadPage(16)));
        assert!(SlotLayout::new(usize::MAX, 1 << (usize::BITS - 1)).is_err());
    }

    #[test]
    fn trailer_round_trips_and_each_word_matters() {
        let t = Trailer {
            sequence: 7,
            len: 912,
            image_crc: 0xDEAD_BEEF,
        };
        let b = t.encode();
        assert_eq!(Trailer::parse(&b), Ok(t));
        assert_eq!(&b[RESERVED_OFFSET..MARKER_OFFSET], &[0xFF; 4]);
        // Any flipped bit outside the reserved word is caught.
        for bit in 0..TRAILER_LEN * 8 {
            let (byte, m) = (bit / 8, 1u8 << (bit % 8));
            let mut c = b;
            c[byte] ^= m;
            let r = Trailer::parse(&c);
            if (RESERVED_OFFSET..MARKER_OFFSET).contains(&byte) {
                assert_eq!(r, Ok(t));
            } else {
                assert!(r.is_err(), "bit {bit} flipped unnoticed");
            }
        }
        assert_eq!(Trailer::parse(&[0xFF; 32]), Err(SlotError::Erased));
        assert_eq!(Trailer::parse(&[0; 32]), Err(SlotError::Erased));
        let mut cut = b;
        cut[MARKER_OFFSET..].fill(0xFF);
        assert_eq!(Trailer::parse(&cut), Err(SlotError::Incomplete));
        let mut v2 = b;
        v2[4] = 2;
        assert_eq!(Trailer::parse(&v2), Err(SlotError::UnsupportedVersion(2)));
    }

    #[test]
    fn newest_valid_slot_wins_and_a_wins_ties() {
        let mut p = partition();
        put(&mut p, Slot::A, b"model one...", 1);
        put(&mut p, Slot::B, b"model two...", 2);
        let b = select_with(&p, PAGE, ok).unwrap();
        assert_eq!(
            (b.source, b.sequence, b.image),
            (Source::Slot(Slot::B), 2, &b"model two..."[..])
        );
        assert_eq!(b.slots, [Ok(1), Ok(2)]);
        put(&mut p, Slot::A, b"model three.", 3);
        let b = select_with(&p, PAGE, ok).unwrap();
        assert_eq!((b.source, b.sequence), (Source::Slot(Slot::A), 3));
        put(&mut p, Slot::B, b"model three.", 3);
        assert_eq!(
            select_with(&p, PAGE, ok).unwrap().source,
            Source::Slot(Slot::A)
        );
    }

    #[test]
    fn a_bad_or_cut_slot_boots_the_other() {
        let mut p = partition();
        put(&mut p, Slot::A, b"old model...", 1);
        put(&mut p, Slot::B, b"new model...", 2);
        let l = SlotLayout::new(p.len(), PAGE).unwrap();
        // Bit rot in the newer image.
        let mut rot = p;
        rot[l.offset(Slot::B) + 3] ^= 4;
        let b = select_with(&rot, PAGE, ok).unwrap();
        assert_eq!(b.source, Source::Slot(Slot::A));
        assert_eq!(b.slots[1], Err(SlotError::BadImageCrc));
        // A cut before the complete marker.
        let mut cut = p;
        cut[l.trailer_offset(Slot::B) + MARKER_OFFSET..l.range(Slot::B).end].fill(0xFF);
        let b = select_with(&cut, PAGE, ok).unwrap();
        assert_eq!(
            (b.source, b.slots[1]),
            (Source::Slot(Slot::A), Err(SlotError::Incomplete))
        );
        // A cut before the trailer.
        let mut cut = p;
        cut[l.trailer_offset(Slot::B)..l.range(Slot::B).end].fill(0xFF);
        let b = select_with(&cut, PAGE, ok).unwrap();
        assert_eq!(
            (b.source, b.slots[1]),
            (Source::Slot(Slot::A), Err(SlotError::Erased))
        );
        // The core refuses the image.
        let b = select_with(&p, PAGE, |i| match i == b"new model..." {
            true => Err(Error::BadMagic),
            false => Ok(()),
        })
        .unwrap();
        assert_eq!(b.slots, [Ok(1), Err(SlotError::Model(Error::BadMagic))]);
    }

    #[test]
    fn legacy_blob_and_no_model() {
        // Erased: no model, the legacy error says why, not slotted.
        let p = partition();
        let e = select_with(&p, PAGE, |_| Err(Error::Erased)).unwrap_err();
        assert_eq!(e.slots, [Err(SlotError::Erased); 2]);
        assert!(!e.slotted());
        // A bare blob at the start boots as legacy.
        let mut p = partition();
        p[..8].copy_from_slice(b"TINFblob");
        let b = select_with(&p, PAGE, |i| match i.starts_with(b"TINF") {
            true => Ok(()),
            false => Err(Error::BadMagic),
        })
        .unwrap();
        assert_eq!(
            (b.source, b.sequence, b.image.len()),
            (Source::Legacy, 0, p.len())
        );
        // Both slots bad: slotted, no model.
        let mut p = partition();
        put(&mut p, Slot::A, b"aaaa", 1);
        put(&mut p, Slot::B, b"bbbb", 2);
        p[0] ^= 1;
        p[2 * PAGE] ^= 1;
        let e = select_with(&p, PAGE, |_| Err(Error::BadChecksum)).unwrap_err();
        assert!(e.slotted());
        assert_eq!(e.slots, [Err(SlotError::BadImageCrc); 2]);
        // A partition that is no layout: slots are layout errors, legacy still tried.
        let e = select_with(&p[..PAGE * 3], PAGE, |_| Err(Error::TooShort)).unwrap_err();
        assert!(matches!(e.slots[0], Err(SlotError::Layout(_))) && !e.slotted());
    }

    #[test]
    fn encode_refuses_what_does_not_fit() {
        let l = SlotLayout::new(4 * PAGE, PAGE).unwrap();
        let mut out = [0u8; 2 * PAGE];
        assert!(encode_slot(&l, &[1; 2 * PAGE - 32], 1, &mut out).is_ok());
        assert_eq!(
            encode_slot(&l, &[1; 2 * PAGE - 31], 1, &mut out),
            Err(SlotError::BadLength { len: 97, max: 96 })
        );
        assert!(encode_slot(&l, &[], 1, &mut out).is_err());
        assert!(encode_slot(&l, &[1; 4], 1, &mut out[1..]).is_err());
    }
}
