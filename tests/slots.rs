//! A/B model slots (`tinyinfer::link::slots`) with real models and the
//! core's checker: whatever a flash cut short or bit rot does to the two
//! slots, selection boots an image that was written whole, the newest one
//! that survived, and never a damaged one.

#[path = "golden/tiny.rs"]
#[allow(dead_code)]
mod tiny;

use proptest::prelude::*;
use tinyinfer::format::Model;
use tinyinfer::link::slots::{
    encode_slot, select, Slot, SlotError, SlotLayout, Source, MARKER_OFFSET, RESERVED_OFFSET,
    TRAILER_LEN,
};
use tinyinfer::Error;

/// Flash pages of the test partition: small, so the cases stay cheap, and
/// large enough for the 912-byte golden model.
const PAGE: usize = 1024;
const PARTITION: usize = 4 * PAGE;

fn golden() -> &'static [u8] {
    &tiny::MODEL.0
}

/// An erased partition, 4-byte aligned as flash is.
fn erased(fill: u8) -> Vec<u32> {
    vec![u32::from_ne_bytes([fill; 4]); PARTITION / 4]
}

fn bytes(p: &mut [u32]) -> &mut [u8] {
    bytemuck::cast_slice_mut(p)
}

/// What happened to one slot.
#[derive(Clone, Debug)]
enum Fault {
    /// Written whole.
    None,
    /// Never written.
    Erased,
    /// Power cut while the image was written: bytes from `at` on are erased.
    CutImage(usize),
    /// Power cut while the trailer was written: trailer words from `word` on are erased.
    CutTrailer(usize),
    /// One bit flipped anywhere in the slot.
    Flip(usize),
}

fn fault() -> impl Strategy<Value = Fault> {
    let slot_bits = PARTITION / 2 * 8;
    prop_oneof![
        Just(Fault::None),
        Just(Fault::Erased),
        (0..912usize).prop_map(Fault::CutImage),
        (0..8usize).prop_map(Fault::CutTrailer),
        (0..slot_bits).prop_map(Fault::Flip),
    ]
}

/// Writes `slot` with `fault` applied; returns whether the slot must be valid.
fn write(p: &mut [u8], l: &SlotLayout, slot: Slot, seq: u32, fault: &Fault, erased: u8) -> bool {
    let r = l.range(slot);
    let s = &mut p[r];
    encode_slot(l, golden(), seq, s).unwrap();
    let t = l.max_image_len();
    match *fault {
        Fault::None => true,
        Fault::Erased => {
            s.fill(erased);
            false
        }
        Fault::CutImage(at) => {
            s[at..].fill(erased);
            false
        }
        Fault::CutTrailer(w) => {
            s[t + 4 * w..].fill(erased);
            false
        }
        Fault::Flip(bit) => {
            s[bit / 8] ^= 1 << (bit % 8);
            // Bits in the erased fill after the image or in the reserved word are read by nobody.
            let at = bit / 8;
            (golden().len()..t).contains(&at)
                || (t + RESERVED_OFFSET..t + MARKER_OFFSET).contains(&at)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The newest valid slot boots (A on a tie); with none, a legacy blob
    /// at the start boots only if the core accepts it whole; otherwise the
    /// typed no-model answer. Never a damaged image.
    #[test]
    fn selection_survives_cuts_and_rot(
        fa in fault(), fb in fault(),
        sa in 0u32..4, sb in 0u32..4,
        erased_ff in any::<bool>(),
    ) {
        let fill = if erased_ff { 0xFF } else { 0x00 };
        let mut words = erased(fill);
        let p = bytes(&mut words);
        let l = SlotLayout::new(PARTITION, PAGE).unwrap();
        let va = write(p, &l, Slot::A, sa, &fa, fill);
        let vb = write(p, &l, Slot::B, sb, &fb, fill);
        let want = match (va, vb) {
            (true, true) if sb > sa => Some((Slot::B, sb)),
            (true, _) => Some((Slot::A, sa)),
            (false, true) => Some((Slot::B, sb)),
            (false, false) => None,
        };
        match (select(p, PAGE), want) {
            (Ok(b), Some((slot, seq))) => {
                prop_assert_eq!(b.source, Source::Slot(slot));
                prop_assert_eq!(b.sequence, seq);
                prop_assert_eq!(b.image, golden());
            }
            (Ok(b), None) => {
                // Only a whole golden blob at the start may boot as legacy.
                prop_assert_eq!(b.source, Source::Legacy);
                prop_assert_eq!(&b.image[..golden().len()], golden());
                prop_assert!(Model::new_checked(b.image).is_ok());
            }
            (Err(e), None) => {
                prop_assert!(Model::new_checked(p).is_err());
                prop_assert_eq!(e.legacy, Model::new_checked(p).unwrap_err());
            }
            (Err(e), Some(w)) => prop_assert!(false, "{w:?} is valid, got {e:?}"),
        }
    }

    /// Arbitrary bytes as a partition: selection never panics, and what it
    /// boots passes the core's full check.
    #[test]
    fn arbitrary_partitions_never_boot_an_unchecked_image(
        data in proptest::collection::vec(any::<u8>(), 0..PARTITION + 8),
        page_log in 5u32..11,
    ) {
        let mut words = vec![0u32; data.len().div_ceil(4)];
        bytes(&mut words)[..data.len()].copy_from_slice(&data);
        let p = &bytemuck::cast_slice::<u32, u8>(&words)[..data.len()];
        if let Ok(b) = select(p, 1 << page_log) {
            prop_assert!(Model::new_checked(b.image).is_ok());
        }
    }
}

#[test]
fn golden_model_fits_a_test_slot() {
    let l = SlotLayout::new(PARTITION, PAGE).unwrap();
    assert!(golden().len() <= l.max_image_len());
    const { assert!(TRAILER_LEN <= PAGE) };
}

/// The states the firmware logs, one per fault, with the real checker.
#[test]
fn each_fault_has_its_typed_state() {
    let l = SlotLayout::new(PARTITION, PAGE).unwrap();
    let t = l.max_image_len();
    let cases: [(Fault, SlotError); 5] = [
        (Fault::Erased, SlotError::Erased),
        (Fault::CutImage(456), SlotError::Erased),
        (Fault::CutTrailer(3), SlotError::Incomplete),
        (Fault::Flip(8 * 100), SlotError::BadImageCrc),
        (Fault::Flip(8 * (t + 8)), SlotError::BadTrailerCrc),
    ];
    for (f, want) in cases {
        let mut words = erased(0xFF);
        let p = bytes(&mut words);
        write(p, &l, Slot::A, 1, &Fault::None, 0xFF);
        write(p, &l, Slot::B, 2, &f, 0xFF);
        let b = select(p, PAGE).unwrap();
        assert_eq!(b.source, Source::Slot(Slot::A), "{f:?}");
        assert_eq!(b.slots, [Ok(1), Err(want)], "{f:?}");
    }
    // A complete slot whose image the core refuses (a valid trailer over a
    // blob with a bad magic: written by a buggy tool).
    let mut words = erased(0xFF);
    let p = bytes(&mut words);
    let mut bad = golden().to_vec();
    bad[0] = b'X';
    encode_slot(&l, &bad, 5, &mut p[l.range(Slot::B)]).unwrap();
    let e = select(p, PAGE).unwrap_err();
    assert_eq!(
        e.slots,
        [
            Err(SlotError::Erased),
            Err(SlotError::Model(Error::BadMagic))
        ]
    );
    assert!(e.slotted());
}

/// The fuzz corpus's slotted seeds (`fuzz/corpus/model/seed-slots-*`:
/// mode byte 10, i.e. 1 KB pages, then two 1 KB slots, written by an
/// independent encoder) boot what they were written to boot, so the `model`
/// target starts from partitions that reach a booted slot.
#[test]
fn fuzz_seeds_boot_their_slot() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/model/");
    for (name, want) in [
        ("seed-slots-b", (Slot::B, 1)),
        ("seed-slots-ab", (Slot::A, 2)),
    ] {
        let data = std::fs::read(format!("{dir}{name}")).unwrap();
        let (&mode, rest) = data.split_first().unwrap();
        let mut words = vec![0u32; rest.len().div_ceil(4)];
        bytes(&mut words)[..rest.len()].copy_from_slice(rest);
        let p = &bytemuck::cast_slice::<u32, u8>(&words)[..rest.len()];
        let b = select(p, 32 << ((mode >> 1) % 8)).unwrap();
        assert_eq!(
            (b.source, b.sequence),
            (Source::Slot(want.0), want.1),
            "{name}"
        );
        assert_eq!(b.image, golden(), "{name}");
    }
}
