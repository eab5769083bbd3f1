//! Conv weights in the pairs layout (`ConvLayout::Pairs`): a classifier
//! stored that way gives the int8 layout's outputs bit for bit, and the
//! checker refuses every pairs conv that is not the int8 weights widened.
#![cfg(feature = "emit")]

mod common;

use tinyinfer::format::{ConvLayout, Mask, Model, OpKind, OpRepr};
use tinyinfer::kernels::reference::to_pairs;
use tinyinfer::models::Classifier;
use tinyinfer::Error;

/// How [`classifier`] stores its conv.
#[derive(Clone, Copy)]
struct Conv {
    in_c: u16,
    layout: ConvLayout,
    mask: Mask,
    /// Added to the first stored word (to push a half out of int8).
    poke: i32,
    /// aux byte 1 of the pooling op.
    pool_aux1: u8,
    /// aux byte 1 of the conv, instead of `layout`'s.
    conv_aux1: Option<u8>,
}

const PLAIN: Conv = Conv {
    in_c: 4,
    layout: ConvLayout::Int8,
    mask: Mask::None,
    poke: 0,
    pool_aux1: 0,
    conv_aux1: None,
};

/// 5×5×in_c → 3×3 conv (pad 1) to 3 channels → global average pool.
fn classifier(c: Conv) -> Vec<u32> {
    let mut b = common::classifier::Builder::default();
    let x = b.tensor(5, 5, c.in_c, -3);
    let a = b.tensor(5, 5, 3, 5);
    let n = 3 * 9 * c.in_c as usize;
    let w: Vec<i8> = (0..n)
        .map(|i| {
            let t = (i / c.in_c as usize) % 9;
            match c.mask.allows(3, t / 3, t % 3) {
                true => ((i * 37 + 11) % 255) as i8,
                false => 0,
            }
        })
        .collect();
    let mut words: Vec<i32> = match c.layout {
        ConvLayout::Int8 => {
            let mut b: Vec<u8> = w.iter().map(|&v| v as u8).collect();
            b.resize(n.next_multiple_of(4), 0);
            b.chunks_exact(4)
                .map(|q| i32::from_le_bytes([q[0], q[1], q[2], q[3]]))
                .collect()
        }
        ConvLayout::Pairs => w
            .chunks(4)
            .flat_map(|q| to_pairs([q[0], q[1 % q.len()], q[2 % q.len()], q[3 % q.len()]]))
            .take(n.div_ceil(2))
            .collect(),
    };
    words[0] = words[0].wrapping_add(c.poke);
    let mut conv = OpRepr::new(OpKind::Conv2d, x, a);
    (conv.kernel, conv.stride, conv.pad) = (3, 1, 1);
    conv.aux[0] = c.mask as u8;
    conv.aux[1] = c.conv_aux1.unwrap_or(c.layout as u8);
    conv.weights = b.push(&words);
    conv.bias = b.push(&[400, -250, 7]);
    conv.requant = b.push(&[1 << 30, 1 << 30, 1 << 30, -9, -10, -8]);
    let out = b.tensor(1, 1, 3, 0);
    let mut gap = OpRepr::new(OpKind::GlobalAvgPool, a, out);
    gap.requant = b.push(&[1 << 30, -4]);
    gap.aux[1] = c.pool_aux1;
    let ops = [conv, gap];
    b.emit(&ops)
}

fn scores(words: &[u32], pixels: &[u8]) -> Vec<i8> {
    let model = Model::new_checked(bytemuck::cast_slice(words)).unwrap();
    let mut arena = vec![0u8; model.arena_len()];
    let clf = Classifier::new(model).unwrap();
    clf.classify(pixels, &mut arena).unwrap().scores.to_vec()
}

#[test]
fn pairs_give_the_int8_layouts_outputs() {
    let int8 = classifier(PLAIN);
    let pairs = classifier(Conv {
        layout: ConvLayout::Pairs,
        ..PLAIN
    });
    let m = Model::new_checked(bytemuck::cast_slice(&pairs)).unwrap();
    let op = m.op(0).unwrap();
    assert_eq!(op.conv_layout(), Some(ConvLayout::Pairs));
    assert!(m.weights(&op).is_empty());
    assert_eq!(m.parts(&op).pairs.len(), 3 * 9 * 4 / 2);
    for seed in 0..20u32 {
        let px: Vec<u8> = (0..100u32)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed * 97) >> 13) as u8)
            .collect();
        assert_eq!(scores(&pairs, &px), scores(&int8, &px), "seed {seed}");
    }
}

#[test]
fn the_checker_refuses_pairs_that_are_not_int8_weights() {
    let pairs = Conv {
        layout: ConvLayout::Pairs,
        ..PLAIN
    };
    let cases = [
        // A half of 128: not an int8 value.
        ("half out of range", Conv { poke: 128, ..pairs }),
        (
            "high half out of range",
            Conv {
                poke: 0x0100_0000,
                ..pairs
            },
        ),
        // Input channels not a multiple of 4: a run of four crosses taps.
        ("in_c 3", Conv { in_c: 3, ..pairs }),
        (
            "masked",
            Conv {
                mask: Mask::B,
                ..pairs
            },
        ),
        (
            "layout byte on a pool",
            Conv {
                pool_aux1: 1,
                ..PLAIN
            },
        ),
    ];
    for (what, c) in cases {
        let words = classifier(c);
        assert_eq!(
            Model::new_checked(bytemuck::cast_slice(&words)).err(),
            Some(Error::BadOp(if c.pool_aux1 != 0 { 1 } else { 0 })),
            "{what}"
        );
    }
    // An unknown layout byte.
    let words = classifier(Conv {
        conv_aux1: Some(2),
        ..PLAIN
    });
    assert_eq!(
        Model::new_checked(bytemuck::cast_slice(&words)).err(),
        Some(Error::BadOp(0))
    );
}
