//! Density models (PixelCNN) on the core: causal kernels against the
//! reference and the wide statement, causality of a whole int8 network,
//! incremental sampling against full recomputation, and bad models and
//! inputs refused with typed errors.
#![cfg(feature = "emit")]

mod common;

use common::wide;
use proptest::prelude::*;
use tinyinfer::format::{
    BernoulliHead, Family, Mask, Model, ModelRepr, OpKind, OpRepr, SectionKind, TensorRepr, CRC32,
    CRC_LEN, NONE,
};
use tinyinfer::kernels::{fast, reference, reference::ConvParams};
use tinyinfer::models::{Classifier, DensityModel};
use tinyinfer::rng::{Pcg32, Rng};
use tinyinfer::Error;

/// A model under construction: records, data and head, emitted on demand.
#[derive(Clone)]
struct Net {
    family: Family,
    tensors: Vec<TensorRepr>,
    ops: Vec<OpRepr>,
    data: Vec<u8>,
    head: Option<Vec<u8>>,
    arena: u32,
    selftest: Option<(u32, u32, Vec<u8>)>,
}

impl Net {
    /// An empty density model.
    fn density() -> Self {
        Net {
            family: Family::Density,
            tensors: Vec::new(),
            ops: Vec::new(),
            data: Vec::new(),
            head: None,
            arena: 0,
            selftest: None,
        }
    }

    fn tensor(&mut self, h: u16, w: u16, c: u16, zp: i32, scale: f32) -> u8 {
        let t = TensorRepr {
            h,
            w,
            c,
            zero_point: zp,
            scale,
            arena_offset: self.arena,
        };
        self.arena += (t.len() + 3) & !3;
        self.tensors.push(t);
        (self.tensors.len() - 1) as u8
    }

    fn push_i32(&mut self, v: &[i32]) -> u32 {
        let at = self.data.len() as u32;
        for x in v {
            self.data.extend_from_slice(&x.to_le_bytes());
        }
        at
    }

    fn push_i8(&mut self, v: &[i8]) -> u32 {
        let at = self.data.len() as u32;
        self.data.extend(v.iter().map(|&x| x as u8));
        while self.data.len() % 4 != 0 {
            self.data.push(0);
        }
        at
    }

    /// Bytes in 4-aligned storage (returned as words, viewed with [`bytes`]).
    fn emit(&self) -> Vec<u32> {
        let arena_len = common::classifier::exact_arena(&self.tensors);
        let repr = ModelRepr {
            family: self.family,
            arena_len,
            tensors: &self.tensors,
            ops: &self.ops,
            data: &self.data,
            selftest: self.selftest.as_ref().map(|(i, o, r)| (*i, *o, &r[..])),
            head: self.head.as_deref(),
            lm: None,
            vocab: None,
        };
        let mut words = vec![0u32; repr.buffer_len().div_ceil(4)];
        let n = repr.emit(bytemuck::cast_slice_mut(&mut words)).unwrap();
        assert_eq!(n, words.len() * 4);
        words
    }
}

fn bytes(w: &[u32]) -> &[u8] {
    bytemuck::cast_slice(w)
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Bernoulli tables for logits `scale · (q − zp)`.
fn head_bytes(scale: f64, zp: i32) -> Vec<u8> {
    let mut b = vec![0u8; BernoulliHead::LEN];
    b[0..4].copy_from_slice(&BernoulliHead::KIND.to_le_bytes());
    for i in 0..256 {
        let l = scale * ((i as i32 - 128 - zp) as f64);
        let one = (softplus(-l) * 65536.0).round() as u32;
        let zero = (softplus(l) * 65536.0).round() as u32;
        let p = ((1.0 / (1.0 + (-l).exp())) * 4294967296.0).min(u32::MAX as f64) as u32;
        for (t, v) in [one, zero, p].into_iter().enumerate() {
            let at = 16 + t * 1024 + 4 * i;
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    b
}

struct Gen(Pcg32);

impl Gen {
    fn range(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.0.next_u32() % (hi - lo + 1) as u32) as i32
    }
}

/// A conv op with random weights (masked taps zero), bias and requantization.
#[allow(clippy::too_many_arguments)]
fn conv(
    net: &mut Net,
    g: &mut Gen,
    input: u8,
    out_c: u16,
    k: u8,
    mask: Mask,
    relu: bool,
    (h, w): (u16, u16),
) -> u8 {
    let in_c = net.tensors[input as usize].c as usize;
    let zp = g.range(-20, 20);
    let out = net.tensor(h, w, out_c, zp, 0.1);
    let (kk, oc) = (k as usize, out_c as usize);
    let mut w = vec![0i8; oc * kk * kk * in_c];
    for (i, v) in w.iter_mut().enumerate() {
        let t = i / in_c % (kk * kk);
        if mask.allows(kk, t / kk, t % kk) {
            *v = g.range(-127, 127) as i8;
        }
    }
    // Scales that keep activations inside int8 without saturating: the
    // accumulator grows like √(fan-in) · |w| · |x|.
    let fan_in = (kk * kk * in_c) as f64;
    let base = -(fan_in.log2() / 2.0).round() as i32 - 4;
    let bias: Vec<i32> = (0..oc).map(|_| g.range(-300, 300)).collect();
    let mult: Vec<i32> = (0..oc).map(|_| g.range(1 << 29, 1 << 30)).collect();
    let shift: Vec<i32> = (0..oc).map(|_| base + g.range(-1, 1)).collect();
    let mut op = OpRepr::new(OpKind::Conv2d, input, out);
    op.kernel = k;
    op.stride = 1;
    op.pad = k / 2;
    op.aux[0] = mask as u8;
    if relu {
        op.act_min = zp as i8;
    }
    op.weights = net.push_i8(&w);
    op.bias = net.push_i32(&bias);
    let mut rq = mult;
    rq.extend(shift);
    op.requant = net.push_i32(&rq);
    net.ops.push(op);
    out
}

fn add(net: &mut Net, g: &mut Gen, a: u8, b: u8, (h, w): (u16, u16)) -> u8 {
    let c = net.tensors[a as usize].c;
    let zp = g.range(-20, 20);
    let out = net.tensor(h, w, c, zp, 0.1);
    let mut op = OpRepr::new(OpKind::Add, a, out);
    op.aux[0] = b;
    op.act_min = zp as i8;
    let m = [
        g.range(1 << 29, 1 << 30),
        g.range(1 << 29, 1 << 30),
        1 << 30,
    ];
    op.requant = net.push_i32(&[m[0], m[1], m[2], 0, 0, -19]);
    net.ops.push(op);
    out
}

/// A small residual PixelCNN: 5×5 mask A, one block (1×1, 3×3 mask B,
/// 1×1, add), head 1×1 → 1×1 logits.
fn pixelcnn(seed: u64, side: u16) -> Net {
    pixelcnn_hw(seed, (side, side), 5, 3)
}

/// [`pixelcnn`] on an `h`×`w` image with a `ka`×`ka` mask A stem and a
/// `kb`×`kb` mask B conv in the block.
fn pixelcnn_hw(seed: u64, hw: (u16, u16), ka: u8, kb: u8) -> Net {
    let mut g = Gen(Pcg32::seeded(seed));
    let mut net = Net::density();
    let x = net.tensor(hw.0, hw.1, 1, 0, 1.0);
    let a = conv(&mut net, &mut g, x, 6, ka, Mask::A, true, hw);
    let t = conv(&mut net, &mut g, a, 4, 1, Mask::None, true, hw);
    let t = conv(&mut net, &mut g, t, 4, kb, Mask::B, true, hw);
    let u = conv(&mut net, &mut g, t, 6, 1, Mask::B, false, hw);
    let a = add(&mut net, &mut g, a, u, hw);
    let hd = conv(&mut net, &mut g, a, 5, 1, Mask::None, true, hw);
    let out = conv(&mut net, &mut g, hd, 1, 1, Mask::None, false, hw);
    let zp = net.tensors[out as usize].zero_point;
    net.head = Some(head_bytes(0.1, zp));
    net
}

fn image(seed: u64, n: usize) -> Vec<u8> {
    let mut r = Pcg32::seeded(seed);
    (0..n).map(|_| (r.next_u32() >> 31) as u8).collect()
}

#[test]
fn int8_pixelcnn_is_causal() {
    let side = 7;
    let words = pixelcnn(1, side).emit();
    let model = Model::new_checked(bytes(&words)).unwrap();
    let dm = DensityModel::new(model).unwrap();
    let mut arena = vec![0u8; dm.arena_len()];
    let n = dm.pixels();
    let mut changed_after = 0;
    for s in 0..4 {
        let img = image(100 + s, n);
        let base = dm.logits(&img, &mut arena).unwrap().to_vec();
        for j in 0..n {
            let mut flipped = img.clone();
            flipped[j] ^= 1;
            let got = dm.logits(&flipped, &mut arena).unwrap();
            assert_eq!(
                &got[..=j],
                &base[..=j],
                "pixel {j} leaked into a logit at or before it"
            );
            changed_after += (got[j + 1..] != base[j + 1..]) as usize;
        }
    }
    // The check can fail: flips do reach later logits.
    assert!(
        changed_after > 2 * n,
        "only {changed_after} flips changed anything"
    );
}

#[test]
fn incremental_sampling_draws_what_full_recomputation_draws() {
    let words = pixelcnn(2, 8).emit();
    let dm = DensityModel::new(Model::new_checked(bytes(&words)).unwrap()).unwrap();
    assert!(dm.sample_arena_len() < dm.arena_len() * 2);
    let mut full_arena = vec![0u8; dm.arena_len()];
    let mut ring_arena = vec![0u8; dm.sample_arena_len()];
    let mut distinct = std::collections::HashSet::new();
    for seed in 0..6 {
        let (mut a, mut b) = (vec![9u8; 64], vec![9u8; 64]);
        dm.sample(&mut Pcg32::seeded(seed), &mut a, &mut ring_arena)
            .unwrap();
        dm.sample_full(&mut Pcg32::seeded(seed), &mut b, &mut full_arena)
            .unwrap();
        assert_eq!(a, b, "seed {seed}");
        assert!(a.iter().all(|&p| p <= 1));
        distinct.insert(a);
    }
    assert!(distinct.len() > 1, "every seed drew the same image");
}

#[test]
fn nll_adds_the_head_table_over_the_logits() {
    let net = pixelcnn(3, 6);
    let words = net.emit();
    let dm = DensityModel::new(Model::new_checked(bytes(&words)).unwrap()).unwrap();
    let head = dm.model().bernoulli_head().unwrap();
    let mut arena = vec![0u8; dm.arena_len()];
    let img = image(7, 36);
    let logits = dm.logits(&img, &mut arena).unwrap().to_vec();
    let want: u64 = logits
        .iter()
        .zip(&img)
        .map(|(&q, &p)| head.nll(q, p == 1) as u64)
        .sum();
    let nll = dm.nll(&img, &mut arena).unwrap();
    assert_eq!(nll.0, want);
    assert!(nll.0 > 0);
    assert_eq!(dm.log_prob(&img, &mut arena).unwrap(), -nll.nats());
    // Streaming (ring-of-rows arena) gives the same bits.
    let mut small = vec![0u8; dm.sample_arena_len()];
    for s in 0..5 {
        let img = image(20 + s, 36);
        assert_eq!(
            dm.nll_streaming(&img, &mut small).unwrap(),
            dm.nll(&img, &mut arena).unwrap()
        );
    }
    let mut out = vec![0i8; 36];
    dm.logits_streaming(&img, &mut small, &mut out).unwrap();
    assert_eq!(&out[..], dm.logits(&img, &mut arena).unwrap());
    let mut bad = img.clone();
    bad[3] = 7;
    assert_eq!(dm.nll_streaming(&bad, &mut small), Err(Error::BadInput(3)));
}

#[test]
fn bad_inputs_and_arenas_are_typed_errors() {
    let words = pixelcnn(4, 6).emit();
    let dm = DensityModel::new(Model::new_checked(bytes(&words)).unwrap()).unwrap();
    let mut arena = vec![0u8; dm.arena_len()];
    let mut img = image(1, 36);
    img[17] = 2;
    assert_eq!(dm.nll(&img, &mut arena), Err(Error::BadInput(17)));
    assert!(matches!(
        dm.nll(&img[..35], &mut arena),
        Err(Error::BadLength { .. })
    ));
    img[17] = 1;
    let mut small = vec![0u8; dm.arena_len() - 1];
    assert!(matches!(
        dm.nll(&img, &mut small),
        Err(Error::ArenaTooSmall { .. })
    ));
    let mut small = vec![0u8; dm.sample_arena_len() - 1];
    assert!(matches!(
        dm.sample(&mut Pcg32::seeded(0), &mut img, &mut small),
        Err(Error::ArenaTooSmall { .. })
    ));
    assert!(Classifier::new(dm.model().to_owned()).is_err());
}

fn check(net: &Net) -> Result<(), Error> {
    let words = net.emit();
    let model = Model::new_checked(bytes(&words))?;
    DensityModel::new(model).map(|_| ())
}

#[test]
fn malformed_density_models_are_refused() {
    let good = pixelcnn(5, 6);
    assert_eq!(check(&good), Ok(()));

    // A non-zero weight on a masked tap: the centre of the mask-A conv.
    let mut n = good.clone();
    let w0 = n.ops[0].weights as usize;
    n.data[w0 + 12] = 1; // tap (2, 2) of output channel 0 (k = 5, in_c = 1)
    assert_eq!(check(&n), Err(Error::BadOp(0)));

    let mut n = good.clone();
    n.ops[2].aux[0] = 3; // no such mask
    assert_eq!(check(&n), Err(Error::BadOp(2)));

    let mut n = good.clone();
    n.ops[0].aux[1] = 1; // unused aux bytes must be zero
    assert_eq!(check(&n), Err(Error::BadOp(0)));

    // Add: second operand of another shape, or the output itself.
    let mut n = good.clone();
    n.ops[4].aux[0] = 2;
    assert_eq!(check(&n), Err(Error::BadOp(4)));
    let mut n = good.clone();
    n.ops[4].aux[0] = n.ops[4].output;
    assert_eq!(check(&n), Err(Error::BadOp(4)));
    // Add reading a tensor produced later.
    let mut n = good.clone();
    n.ops[4].aux[0] = 7;
    n.tensors[7].c = 6;
    assert!(check(&n).is_err());

    // Causality: the image read by a mask-B conv, or a 3×3 conv without a mask.
    let mut n = good.clone();
    n.ops[0].aux[0] = Mask::B as u8;
    assert_eq!(check(&n), Err(Error::NotCausal));
    let mut n = good.clone();
    n.ops[2].aux[0] = Mask::None as u8;
    assert_eq!(check(&n), Err(Error::NotCausal));
    // A masked conv must keep positions: stride 1, "same" padding.
    let mut n = good.clone();
    n.ops[2].pad = 0;
    assert!(check(&n).is_err());

    // The head: required for density models, refused for classifiers.
    let mut n = good.clone();
    n.head = None;
    assert_eq!(
        check(&n),
        Err(Error::MissingSection(SectionKind::Head as u16))
    );
    let mut n = good.clone();
    n.head.as_mut().unwrap()[0] = 9;
    assert_eq!(check(&n), Err(Error::BadSection(SectionKind::Head as u16)));
    let mut n = good.clone();
    n.family = Family::Classifier;
    let words = n.emit();
    assert_eq!(
        Model::new_checked(bytes(&words)).map(|_| ()),
        Err(Error::BadSection(SectionKind::Head as u16))
    );
    // Pixels are fed as their value: the input must be scale 1, zero point 0.
    let mut n = good.clone();
    n.tensors[0].zero_point = 1;
    assert_eq!(check(&n), Err(Error::BadGraph));
    let _ = NONE;
}

fn run_everything(b: &[u8]) -> Result<(), Error> {
    let mut w = vec![0u32; b.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut w)[..b.len()].copy_from_slice(b);
    let model = Model::new_checked(&bytemuck::cast_slice(&w)[..b.len()])?;
    let dm = DensityModel::new(model)?;
    let mut arena = vec![0u8; dm.arena_len().max(dm.sample_arena_len())];
    let mut img = image(3, dm.pixels());
    let _ = dm.nll(&img, &mut arena);
    let _ = dm.sample(&mut Pcg32::seeded(1), &mut img, &mut arena);
    Ok(())
}

#[test]
fn every_truncation_and_flip_of_a_density_model_is_refused_or_harmless() {
    let words = pixelcnn(6, 5).emit();
    let good = bytes(&words).to_vec();
    run_everything(&good).unwrap();
    for n in 0..good.len() {
        assert!(run_everything(&good[..n]).is_err(), "truncated to {n}");
    }
    for i in 0..good.len() {
        let mut b = good.clone();
        b[i] ^= 0x5A;
        assert!(run_everything(&b).is_err(), "flip at {i} accepted");
        // Behind a recomputed CRC: refused or runs without panicking.
        let n = b.len() - CRC_LEN;
        let crc = CRC32.checksum(&b[..n]);
        b[n..].copy_from_slice(&crc.to_le_bytes());
        let _ = run_everything(&b);
    }
}

fn mask_of(i: u8) -> Mask {
    if i == 0 {
        Mask::A
    } else {
        Mask::B
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The causal kernels skip masked taps; with those taps zero they must
    /// equal the reference conv, and the ring-of-rows kernel must equal the
    /// full conv at every pixel.
    #[test]
    fn masked_convs_match_the_reference(
        h in 1usize..7, w in 1usize..7, cin in 1usize..5, cout in 1usize..5,
        kh in 0usize..3, m in 0u8..2, seed in any::<u64>(),
        in_zp in -128i32..128, out_zp in -128i32..128, extra_rows in 0usize..3,
    ) {
        let k = 2 * kh + 1;
        let mask = mask_of(m);
        let mut g = Gen(Pcg32::seeded(seed));
        let input: Vec<i8> = (0..h * w * cin).map(|_| g.range(-128, 127) as i8).collect();
        let mut wt: Vec<i8> = (0..cout * k * k * cin).map(|_| g.range(-128, 127) as i8).collect();
        for (i, v) in wt.iter_mut().enumerate() {
            let t = i / cin % (k * k);
            if !mask.allows(k, t / k, t % k) {
                *v = 0;
            }
        }
        let bias: Vec<i32> = (0..cout).map(|_| g.range(-100_000, 100_000)).collect();
        let mult: Vec<i32> = (0..cout).map(|_| g.range(1 << 28, i32::MAX)).collect();
        let shift: Vec<i32> = (0..cout).map(|_| g.range(-12, 2)).collect();
        let p = ConvParams {
            in_h: h, in_w: w, in_c: cin, out_h: h, out_w: w, out_c: cout,
            k, stride: 1, pad: kh, in_zp, out_zp, act_min: -128, act_max: 127,
        };
        let mut want = vec![0i8; h * w * cout];
        reference::conv2d(&p, &input, &wt, &bias, &mult, &shift, &mut want).unwrap();
        let (_, _, wide_out) = wide::conv((h, w, cin), cout, k, 1, kh, &input, &wt, &bias, &mult, &shift, in_zp, out_zp, -128, 127);
        prop_assert_eq!(&want, &wide_out);
        let mut got = vec![0i8; h * w * cout];
        fast::conv2d_masked(&p, mask, &input, &wt, &bias, &mult, &shift, &mut got).unwrap();
        prop_assert_eq!(&got, &want);

        // The valid geometry (no padding; the density driver's strips cut
        // such windows from the ring): the reference conv's bytes too.
        if h >= k && w >= k {
            let v = ConvParams { out_h: h - k + 1, out_w: w - k + 1, pad: 0, ..p };
            let n = v.out_h * v.out_w * cout;
            let mut want = vec![0i8; n];
            reference::conv2d(&v, &input, &wt, &bias, &mult, &shift, &mut want).unwrap();
            let (_, _, wide_out) = wide::conv((h, w, cin), cout, k, 1, 0, &input, &wt, &bias, &mult, &shift, in_zp, out_zp, -128, 127);
            prop_assert_eq!(&want, &wide_out);
            let mut got = vec![0x55i8; n];
            fast::conv2d_masked(&v, mask, &input, &wt, &bias, &mult, &shift, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "valid geometry, k {}", k);
        }

        // Ring of rows: row iy in slot iy % rows.
        let rows = (kh + 1 + extra_rows).min(h);
        prop_assume!(rows > kh);
        let row = w * cin;
        let mut ring = vec![0i8; rows * row];
        for y in 0..h {
            ring[(y % rows) * row..][..row].copy_from_slice(&input[y * row..][..row]);
            for x in 0..w {
                let mut px = vec![0i8; cout];
                fast::conv2d_pixel(&p, mask, &ring, rows, y, x, &wt, &bias, &mult, &shift, &mut px).unwrap();
                prop_assert_eq!(&px[..], &want[(y * w + x) * cout..][..cout]);
            }
        }
    }

    #[test]
    fn add_matches_wide(
        a in prop_oneof![
            proptest::collection::vec(any::<i8>(), 0..64),
            proptest::collection::vec(any::<i8>(), 1024..1500),
        ],
        seed in any::<u64>(),
        zpa in -128i32..128, zpb in -128i32..128, zpo in -128i32..128,
        sa in -31i32..31, sb in -31i32..31, so in -24i32..-14, relu in any::<bool>(),
    ) {
        let mut g = Gen(Pcg32::seeded(seed));
        let b: Vec<i8> = (0..a.len()).map(|_| g.range(-128, 127) as i8).collect();
        let m = [g.range(1 << 29, i32::MAX), g.range(1 << 29, i32::MAX), g.range(1 << 29, i32::MAX)];
        let lo = if relu { zpo as i8 } else { -128 };
        let p = reference::AddParams {
            a_zp: zpa, b_zp: zpb, out_zp: zpo,
            a_mult: m[0], a_shift: sa, b_mult: m[1], b_shift: sb, out_mult: m[2], out_shift: so,
            act_min: lo, act_max: 127,
        };
        let mut out = vec![0i8; a.len()];
        fast::add(&p, &a, &b, &mut out).unwrap();
        let mut reference_out = vec![0i8; a.len()];
        reference::add(&p, &a, &b, &mut reference_out).unwrap();
        prop_assert_eq!(&out, &reference_out);
        for i in 0..a.len() {
            prop_assert_eq!(out[i], wide::add(a[i], b[i], [zpa, zpb, zpo], m, [sa, sb, so], lo, 127));
        }
        prop_assert!(fast::add(&p, &a, &b, &mut vec![0i8; a.len() + 1]).is_err());
    }
}

#[test]
fn causal_kernels_refuse_what_they_cannot_run() {
    let p = ConvParams {
        in_h: 4,
        in_w: 4,
        in_c: 1,
        out_h: 4,
        out_w: 4,
        out_c: 1,
        k: 3,
        stride: 1,
        pad: 1,
        in_zp: 0,
        out_zp: 0,
        act_min: -128,
        act_max: 127,
    };
    let (x, w, b, m, s) = ([0i8; 16], [0i8; 9], [0i32], [1 << 30], [0i32]);
    let mut out = [0i8; 16];
    // Unmasked 3×3: not causal.
    assert!(fast::conv2d_masked(&p, Mask::None, &x, &w, &b, &m, &s, &mut out).is_err());
    // Too few ring rows, or a position outside the image.
    let mut px = [0i8; 1];
    assert!(fast::conv2d_pixel(&p, Mask::B, &x[..4], 1, 0, 0, &w, &b, &m, &s, &mut px).is_err());
    assert!(fast::conv2d_pixel(&p, Mask::B, &x[..8], 2, 4, 0, &w, &b, &m, &s, &mut px).is_err());
    assert!(fast::conv2d_pixel(&p, Mask::B, &x[..8], 2, 3, 3, &w, &b, &m, &s, &mut px).is_ok());
}

#[test]
fn selftest_runs_in_the_full_and_the_streaming_arena() {
    let mut net = pixelcnn(8, 6);
    let words = net.emit();
    let dm = DensityModel::new(Model::new_checked(bytes(&words)).unwrap()).unwrap();
    let mut arena = vec![0u8; dm.arena_len()];
    let mut recs = Vec::new();
    for s in 0..3 {
        let img = image(40 + s, 36);
        let logits = dm.logits(&img, &mut arena).unwrap().to_vec();
        recs.extend_from_slice(&img);
        recs.extend(logits.iter().map(|&q| q as u8));
        while recs.len() % 4 != 0 {
            recs.push(0);
        }
    }
    net.selftest = Some((36, 36, recs.clone()));
    let words = net.emit();
    let dm = DensityModel::new(Model::new_checked(bytes(&words)).unwrap()).unwrap();
    for len in [dm.arena_len(), dm.sample_arena_len()] {
        let r = dm.selftest(&mut vec![0u8; len]).unwrap();
        assert_eq!(
            (r.passed, r.total, r.first_failure),
            (3, 3, None),
            "arena {len}"
        );
    }
    // One wrong stored logit in case 1 fails that case on both paths.
    recs[72 + 36 + 5] ^= 1;
    net.selftest = Some((36, 36, recs));
    let words = net.emit();
    let dm = DensityModel::new(Model::new_checked(bytes(&words)).unwrap()).unwrap();
    for len in [dm.arena_len(), dm.sample_arena_len()] {
        let r = dm.selftest(&mut vec![0u8; len]).unwrap();
        assert_eq!((r.passed, r.first_failure), (2, Some(1)), "arena {len}");
    }
}

/// Every path of the density driver on `net`: full, streaming, logits,
/// incremental sampling against full recomputation, and the self-test in
/// the full and the streaming arena. Returns the NLL.
fn run_every_path(net: &Net, what: &str) -> i64 {
    let words = net.emit();
    let dm = DensityModel::new(Model::new_checked(bytes(&words)).unwrap()).unwrap();
    let n = dm.pixels();
    let mut full = vec![0u8; dm.arena_len()];
    let mut ring = vec![0u8; dm.sample_arena_len()];
    let img = image(7, n);
    let nll = dm.nll(&img, &mut full).unwrap();
    let streamed = dm.nll_streaming(&img, &mut ring).unwrap();
    assert_eq!(nll, streamed, "{what}: full vs streaming NLL");
    let logits = dm.logits(&img, &mut full).unwrap().to_vec();
    let mut ls = vec![0i8; n];
    dm.logits_streaming(&img, &mut ring, &mut ls).unwrap();
    assert_eq!(logits, ls, "{what}: full vs streaming logits");
    for seed in 0..3 {
        let (mut a, mut b) = (vec![9u8; n], vec![9u8; n]);
        dm.sample(&mut Pcg32::seeded(seed), &mut a, &mut ring)
            .unwrap();
        dm.sample_full(&mut Pcg32::seeded(seed), &mut b, &mut full)
            .unwrap();
        assert_eq!(a, b, "{what}: incremental vs full sample, seed {seed}");
    }
    // With a stored self-test: both arenas pass it.
    let mut with = net.clone();
    let mut recs = img.clone();
    recs.extend(logits.iter().map(|&q| q as u8));
    while recs.len() % 4 != 0 {
        recs.push(0);
    }
    with.selftest = Some((n as u32, n as u32, recs));
    let words = with.emit();
    let dm = DensityModel::new(Model::new_checked(bytes(&words)).unwrap()).unwrap();
    for len in [dm.arena_len(), dm.sample_arena_len()] {
        let r = dm.selftest(&mut vec![0u8; len]).unwrap();
        assert_eq!(
            (r.passed, r.total),
            (1, 1),
            "{what}: self-test, arena {len}"
        );
    }
    nll.0 as i64
}

/// Issue 16, defect 2: images shorter than the kernel's reach. The ring of a
/// k×k conv was k/2 + 1 rows however short the image, while the one-position
/// conv needs at most the image height: `BadOp(0)` on every streaming path.
#[test]
fn short_images_run_on_every_path() {
    for (hw, ka, kb) in [
        ((1, 16), 3, 3),
        ((2, 8), 5, 3),
        ((1, 1), 7, 3),
        ((1, 1), 1, 1),
        ((3, 1), 5, 5),
        ((2, 2), 7, 7),
    ] {
        let what = format!(
            "{}×{} image, {ka}×{ka} mask A, {kb}×{kb} mask B",
            hw.0, hw.1
        );
        run_every_path(&pixelcnn_hw(21, hw, ka, kb), &what);
    }
}

/// Streaming scoring walks each row in strips of four positions (the
/// last one shorter): widths on and off a multiple of four, strips
/// whose masked-conv windows reach past both image edges, every path
/// still agreeing with the whole map.
#[test]
fn streaming_strips_cover_every_width() {
    for (hw, ka, kb) in [
        ((5, 7), 3, 3),
        ((4, 9), 5, 3),
        ((6, 13), 7, 5),
        ((3, 4), 3, 5),
        ((2, 5), 7, 7),
        ((7, 3), 5, 3),
    ] {
        let what = format!(
            "{}×{} image, {ka}×{ka} mask A, {kb}×{kb} mask B",
            hw.0, hw.1
        );
        run_every_path(&pixelcnn_hw(24, hw, ka, kb), &what);
    }
}

/// Issue 16, defect 3: a valid density model taller than 255 rows was
/// refused as `NotCausal` (the ring rows were a `u8`).
#[test]
fn tall_images_run_on_every_path() {
    run_every_path(&pixelcnn_hw(22, (300, 2), 5, 3), "300×2 image");
}

/// More ops than the streaming paths decode once per image (32): the
/// others are decoded at every position, and every path still agrees.
#[test]
fn density_model_deeper_than_the_step_table_runs_every_path() {
    let mut g = Gen(Pcg32::seeded(23));
    let hw = (5, 6);
    let mut net = Net::density();
    let x = net.tensor(hw.0, hw.1, 1, 0, 1.0);
    let mut a = conv(&mut net, &mut g, x, 4, 3, Mask::A, true, hw);
    for _ in 0..11 {
        let t = conv(&mut net, &mut g, a, 4, 1, Mask::None, true, hw);
        let t = conv(&mut net, &mut g, t, 4, 3, Mask::B, true, hw);
        let u = conv(&mut net, &mut g, t, 4, 1, Mask::B, false, hw);
        a = add(&mut net, &mut g, a, u, hw);
    }
    let out = conv(&mut net, &mut g, a, 1, 1, Mask::None, false, hw);
    assert_eq!(net.ops.len(), 46);
    let zp = net.tensors[out as usize].zero_point;
    net.head = Some(head_bytes(0.1, zp));
    run_every_path(&net, "46 ops");
}
