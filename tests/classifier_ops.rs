//! The graph ops only the density family uses (elementwise add, masked
//! convs), in a classifier. A core with feature `density` runs them; a
//! core without it (the classifier-only firmware's) refuses such a model in
//! `Classifier::new` with `BadOp`, naming the op, before anything runs, and
//! runs a classifier without them. scripts/test.sh runs this file both ways.
#![cfg(feature = "emit")]

mod common;

use tinyinfer::format::{Mask, Model, OpKind, OpRepr};
use tinyinfer::models::Classifier;
#[cfg(not(feature = "density"))]
use tinyinfer::Error;

/// 4×4×1 pixels → 3×3 conv to 2 channels (with `mask`) → `add` of that
/// map to itself (if `with_add`) → global average pool → 2 scores.
fn classifier(mask: Mask, with_add: bool) -> Vec<u32> {
    let mut b = common::classifier::Builder::default();
    let x = b.tensor(4, 4, 1, -128);
    let a = b.tensor(4, 4, 2, 3);
    let mut ops = Vec::new();

    let mut conv = OpRepr::new(OpKind::Conv2d, x, a);
    (conv.kernel, conv.stride, conv.pad) = (3, 1, 1);
    conv.aux[0] = mask as u8;
    // Weights 2 × 3 × 3 × 1 (as bytes, 20 with the padding to 4), zero on
    // the taps the mask hides.
    let w: Vec<i8> = (0..18)
        .map(|i: usize| {
            let t = i % 9;
            match mask.allows(3, t / 3, t % 3) {
                true => (i as i8 * 7) % 23 - 11,
                false => 0,
            }
        })
        .collect();
    let mut wb: Vec<u8> = w.iter().map(|&v| v as u8).collect();
    wb.resize(20, 0);
    conv.weights = b.push(
        &wb.chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect::<Vec<_>>(),
    );
    conv.bias = b.push(&[40, -25]);
    conv.requant = b.push(&[1 << 30, 1 << 30, -6, -7]);
    ops.push(conv);

    let pooled_in = if with_add {
        let s = b.tensor(4, 4, 2, -2);
        let mut add = OpRepr::new(OpKind::Add, a, s);
        add.aux[0] = a;
        add.requant = b.push(&[1 << 30, 1 << 30, 1 << 30, 0, 0, -19]);
        ops.push(add);
        s
    } else {
        a
    };
    let out = b.tensor(1, 1, 2, 0);
    let mut gap = OpRepr::new(OpKind::GlobalAvgPool, pooled_in, out);
    gap.requant = b.push(&[1 << 30, -4]);
    ops.push(gap);

    // The exact arena: the end of the highest tensor.
    b.emit(&ops)
}

#[test]
fn density_ops_in_a_classifier_run_or_are_refused_up_front() {
    let pixels: Vec<u8> = (0..16).map(|i| (i * 37 % 256) as u8).collect();
    // (what, model, index of the op a core without `density` refuses)
    let cases = [
        ("plain", classifier(Mask::None, false), None),
        ("add", classifier(Mask::None, true), Some(1u16)),
        ("mask A", classifier(Mask::A, false), Some(0)),
        ("mask B with add", classifier(Mask::B, true), Some(0)),
    ];
    for (what, words, refused) in cases {
        let model = Model::new_checked(bytemuck::cast_slice(&words))
            .unwrap_or_else(|e| panic!("{what}: the checker refused it: {e}"));
        let mut arena = vec![0u8; model.arena_len()];
        let clf = Classifier::new(model);
        #[cfg(not(feature = "density"))]
        if let Some(i) = refused {
            assert_eq!(clf.err(), Some(Error::BadOp(i)), "{what}");
            continue;
        }
        #[cfg(feature = "density")]
        let _ = refused;
        let clf = clf.unwrap_or_else(|e| panic!("{what}: {e}"));
        let p = clf
            .classify(&pixels, &mut arena)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(p.scores.len(), 2, "{what}");
    }
}
