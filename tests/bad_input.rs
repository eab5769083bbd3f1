//! Bad bytes never panic: truncation at every length and every single-byte
//! flip of a model are refused with a typed error; flips hidden from the CRC
//! (checksum recomputed) are either refused by the structural checks or give
//! a model that runs without panicking.

#[allow(dead_code)]
#[path = "golden/tiny.rs"]
mod tiny;

use tinyinfer::format::{Model, CRC32, CRC_LEN};
use tinyinfer::models::Classifier;
use tinyinfer::Error;

/// Copies bytes into 4-aligned storage.
fn aligned(bytes: &[u8]) -> Vec<u32> {
    let mut w = vec![0u32; bytes.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut w)[..bytes.len()].copy_from_slice(bytes);
    w
}

fn bytemuck_view(w: &[u32]) -> &[u8] {
    bytemuck::cast_slice(w)
}

/// Checks `bytes` (placed at an aligned address) and, if accepted, runs every golden input.
fn check_and_run(bytes: &[u8], recompute_crc: bool) -> Result<(), Error> {
    let mut b = bytes.to_vec();
    if recompute_crc && b.len() >= CRC_LEN {
        let n = b.len() - CRC_LEN;
        let crc = CRC32.checksum(&b[..n]);
        b[n..].copy_from_slice(&crc.to_le_bytes());
    }
    let words = aligned(&b);
    let view: &[u8] = &bytemuck_view(&words)[..b.len()];
    let model = Model::new_checked(view)?;
    let clf = Classifier::new(model)?;
    let mut arena = vec![0u8; model.arena_len()];
    for input in &tiny::INPUTS {
        if let Ok(p) = clf.classify(input, &mut arena) {
            let mut probs = vec![0f32; p.scores.len()];
            let _ = p.probabilities(&mut probs);
        }
    }
    Ok(())
}

#[test]
fn golden_model_is_accepted() {
    check_and_run(&tiny::MODEL.0, false).unwrap();
}

#[test]
fn every_truncation_is_refused() {
    let m = &tiny::MODEL.0;
    for len in 0..m.len() {
        let r = check_and_run(&m[..len], false);
        assert!(r.is_err(), "truncated to {len} bytes was accepted");
        let r2 = check_and_run(&m[..len], true);
        assert!(
            r2.is_err(),
            "truncated to {len} bytes with a fixed CRC was accepted"
        );
    }
}

#[test]
fn every_byte_flip_is_refused() {
    let m = tiny::MODEL.0.to_vec();
    for i in 0..m.len() {
        for mask in [0x01u8, 0x80, 0xFF] {
            let mut b = m.clone();
            b[i] ^= mask;
            assert!(
                check_and_run(&b, false).is_err(),
                "flip {mask:#x} at byte {i} was accepted"
            );
        }
    }
}

#[test]
fn flips_behind_a_valid_crc_never_panic() {
    let m = tiny::MODEL.0.to_vec();
    let mut refused = 0;
    for i in 0..m.len() - CRC_LEN {
        for v in [0x00u8, 0x01, 0x7F, 0x80, 0xFF] {
            let mut b = m.clone();
            b[i] ^= v;
            if check_and_run(&b, true).is_err() {
                refused += 1;
            }
        }
    }
    // Header, tables and parameters are checked, so many of these are refused
    // structurally; weight bytes are free to change and still run.
    assert!(refused > 0);
}

#[test]
fn erased_partitions_say_no_model() {
    for fill in [0x00u8, 0xFF] {
        let words = aligned(&[fill; 4096]);
        assert_eq!(
            Model::new_checked(bytemuck_view(&words)).unwrap_err(),
            Error::Erased
        );
    }
    assert_eq!(Model::new_checked(&[]).unwrap_err(), Error::TooShort);
}

#[test]
fn misaligned_blob_is_refused() {
    let m = &tiny::MODEL.0;
    let words = aligned(&[&[0u8][..], m].concat());
    let bytes = &bytemuck_view(&words)[1..1 + m.len()];
    assert_eq!(Model::new_checked(bytes).unwrap_err(), Error::Misaligned);
}

#[test]
fn trailing_partition_bytes_are_ignored() {
    let m = &tiny::MODEL.0;
    let words = aligned(&[&m[..], &[0xFF; 100][..]].concat());
    let model = Model::new_checked(bytemuck_view(&words)).unwrap();
    assert_eq!(model.as_bytes().len(), m.len());
}

#[test]
fn header_errors_are_specific() {
    let m = tiny::MODEL.0.to_vec();
    let mut b = m.clone();
    b[0] = b'X';
    assert_eq!(check_and_run(&b, true).unwrap_err(), Error::BadMagic);
    let mut b = m.clone();
    b[4] = 9;
    assert_eq!(
        check_and_run(&b, true).unwrap_err(),
        Error::UnsupportedVersion(9)
    );
    let mut b = m.clone();
    // A classifier's bytes labelled as a language model: a language model has
    // no tensor graph, so its TENSORS section is refused.
    b[6] = 2;
    assert_eq!(check_and_run(&b, true).unwrap_err(), Error::BadSection(1));
    let mut b = m.clone();
    b[6] = 77;
    assert_eq!(
        check_and_run(&b, true).unwrap_err(),
        Error::UnknownFamily(77)
    );
    let mut b = m.clone();
    b[100] ^= 1;
    assert_eq!(check_and_run(&b, false).unwrap_err(), Error::BadChecksum);
    // The arena size is part of the checked plan: shrinking it below a tensor is refused.
    let mut b = m.clone();
    b[12..16].copy_from_slice(&10u32.to_le_bytes());
    assert!(matches!(
        check_and_run(&b, true).unwrap_err(),
        Error::BadTensor(_)
    ));
}

/// Regression (found by `cargo fuzz`): tensor dimensions whose product
/// overflows 32 bits must be refused, not wrap.
#[test]
fn huge_tensor_dimensions_are_refused() {
    let mut b = tiny::MODEL.0.to_vec();
    let tensors = u32::from_le_bytes(b[36..40].try_into().unwrap()) as usize;
    for t in 0..6 {
        let r = tensors + t * 24;
        b[r..r + 6].copy_from_slice(&[0xFF; 6]);
    }
    assert_eq!(
        check_and_run(&b, true).unwrap_err(),
        tinyinfer::Error::BadTensor(0)
    );
}

/// Issue 16, defect 4: the header's arena is the plan's, exactly. A larger
/// figure (with the CRC fixed) was accepted, and every `classify` then asked
/// for 4 GB.
#[test]
fn the_arena_must_be_exact() {
    let m = tiny::MODEL.0.to_vec();
    let exact = u32::from_le_bytes(m[12..16].try_into().unwrap());
    for bigger in [exact + 1, exact + 4, 0xFFFF_FFFF] {
        let mut b = m.clone();
        b[12..16].copy_from_slice(&bigger.to_le_bytes());
        assert_eq!(
            check_and_run(&b, true).unwrap_err(),
            Error::BadHeader,
            "arena {bigger}"
        );
    }
}

/// Issue 16, defect 5: public accessors given foreign records compute their
/// sizes without overflow on any word size (CI runs this on i686). A valid
/// model with 65,535-channel tensors; a conv record that is not its own
/// asks for 65535 · 255 · 255 · 65535 ≈ 2^48 weight bytes.
#[test]
fn foreign_op_records_and_vocab_sizes_do_not_overflow() {
    use tinyinfer::format::{Family, ModelRepr, OpKind, OpRepr, TensorRepr, Vocab};
    let t = |h: u16, off: u32| TensorRepr {
        h,
        w: h,
        c: u16::MAX,
        zero_point: 0,
        scale: 1.0,
        arena_offset: off,
    };
    let tensors = [t(2, 0), t(1, 4 * u16::MAX as u32)];
    let mut pool = OpRepr::new(OpKind::MaxPool2x2, 0, 1);
    (pool.kernel, pool.stride) = (2, 2);
    let repr = ModelRepr {
        family: Family::Classifier,
        arena_len: 5 * u16::MAX as u32,
        tensors: &tensors,
        ops: &[pool],
        data: &[0; 8],
        selftest: None,
        head: None,
        lm: None,
        vocab: None,
    };
    let mut words = vec![0u32; repr.buffer_len().div_ceil(4)];
    let n = repr.emit(bytemuck::cast_slice_mut(&mut words)).unwrap();
    let model = Model::new_checked(&bytemuck_view(&words)[..n]).unwrap();
    for kind in [OpKind::Conv2d, OpKind::FullyConnected] {
        for (i, o) in [(0u8, 1u8), (1, 0), (0, 0), (0, 9), (200, 201)] {
            let mut op = OpRepr::new(kind, i, o);
            op.kernel = 255;
            op.weights = 0;
            // Not this model's op: no panic, and never a slice past the data.
            assert!(model.weights(&op).len() <= 8, "{kind:?} {i}→{o}");
            let _ = model.bias(&op);
            let _ = model.requant(&op);
        }
    }
    let sec = [0u8; 64];
    for v in [1usize, 1 << 30, (1 << 30) + 1, usize::MAX / 4, usize::MAX] {
        assert!(Vocab::parse(&sec, v).is_none(), "v = {v}");
    }
}
