//! What the fuzz targets share: running every path of a model's driver
//! (with the cross-checks the promise in `tinyinfer::format` makes), and
//! generators of valid models from fuzzer bytes.
//!
//! - `model`: raw bytes (a mode byte selects `new_checked` or the
//!   structure-only check).
//! - `crc_fixed`: raw bytes with the CRC recomputed after mutation, so the
//!   fuzzer reaches every check behind the checksum through `new_checked`.
//! - `valid_models`: bytes drive a generator of valid models of the three
//!   families (classifiers, PixelCNNs, LSTM language models with softmax,
//!   MoC and MoS heads) with extreme but legal weights, biases,
//!   multipliers, shifts, zero points, shapes, image sizes and vocabularies;
//!   every driver path runs with an exact arena, and full = streaming,
//!   incremental = full.

use arbitrary::{Result, Unstructured};
use tinyinfer::format::{
    ConvLayout, Family, Mask, Model, ModelRepr, OpKind, OpRepr, TensorRepr, CRC32, CRC_LEN,
    LM_TOP_LEN, MAX_LM_TOP, VOCAB_SORTED_INDEX,
};
use tinyinfer::kernels::reference::to_pairs;
use tinyinfer::models::{Classifier, DensityModel, LanguageModel};
use tinyinfer::quant::{MAX_SHIFT, MIN_SHIFT};
use tinyinfer::rng::Pcg32;

/// Arena sizes above this are skipped (the fuzzer's memory, not a bug).
pub const MAX_ARENA: usize = 1 << 20;

/// Copies `bytes` into 4-aligned storage, as a flash partition is.
pub fn aligned(bytes: &[u8]) -> Vec<u32> {
    let mut words = vec![0u32; bytes.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
    words
}

/// Recomputes the trailing CRC of `bytes` in place (if there is room for one).
pub fn fix_crc(bytes: &mut [u8]) {
    if bytes.len() >= CRC_LEN {
        let n = bytes.len() - CRC_LEN;
        let crc = CRC32.checksum(&bytes[..n]);
        bytes[n..].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Every path of the family driver of an accepted `model`. Panics (a
/// finding) when two paths that must agree do not, or when a model the
/// driver accepted fails on a path with an exact arena.
pub fn run_every_path(model: Model<'_>) {
    if model.arena_len() > MAX_ARENA {
        return;
    }
    match model.family() {
        Family::LanguageModel => language(model),
        Family::Density => density(model),
        Family::Classifier => classifier(model),
    }
}

fn language(model: Model<'_>) {
    let Ok(lm) = LanguageModel::new(model) else {
        return;
    };
    let mut arena = vec![0u8; lm.arena_len()];
    let whole = language_paths(lm, &mut arena);
    // The same with the logits decoded three rows at a time (the path of a
    // vocabulary past LOGIT_CHUNK): the same results.
    let chunked = lm.with_logit_rows(3);
    let mut small = vec![0u8; chunked.arena_len()];
    assert_eq!(whole, language_paths(chunked, &mut small), "chunked logits");
    // The stored self-test (cases checked at load): runs, or says there is none.
    match lm.selftest(&mut arena) {
        Ok(r) => assert!(r.passed <= r.total, "{r:?}"),
        Err(e) => assert_eq!(e, tinyinfer::Error::BadSelfTest, "self-test failed: {e}"),
    }
}

/// Every session path of `lm` in `arena` (its exact size); what they gave.
fn language_paths(lm: LanguageModel<'_>, arena: &mut [u8]) -> Vec<i64> {
    let mut s = lm.session(arena).expect("exact arena refused");
    let mut got = Vec::new();
    let v = lm.spec().vocab as u16;
    got.push(s.prime("ab c").map_or(-1, |n| n as i64));
    for t in [0, 1, v / 2, v.wrapping_sub(1), v] {
        let stepped = s.step(t);
        assert_eq!(stepped.is_ok(), t < v, "step({t}) of {v}");
        got.push(s.log_prob(t).map_or(1, |l| l.0 as i64));
    }
    got.extend(s.distribution().iter().map(|&q| q as i64));
    let total: u64 = s.distribution().iter().map(|&q| q as u64).sum();
    assert!(total <= 1 << 32, "probabilities sum past 1: {total}");
    got.extend(
        s.top_k::<4>()
            .iter()
            .flat_map(|&(t, q)| [t as i64, q as i64]),
    );
    let t = s.sample(&mut Pcg32::seeded(2));
    assert!(t < v, "sampled {t} of {v}");
    got.push(t as i64);
    got
}

fn density(model: Model<'_>) {
    let Ok(dm) = DensityModel::new(model) else {
        return;
    };
    if dm.sample_arena_len() > MAX_ARENA {
        return;
    }
    let n = dm.pixels();
    let mut full = vec![0u8; dm.arena_len()];
    let mut ring = vec![0u8; dm.sample_arena_len()];
    let img: Vec<u8> = (0..n).map(|i| (i % 3 == 0) as u8).collect();
    let a = dm.nll(&img, &mut full).expect("nll, exact arena");
    let b = dm
        .nll_streaming(&img, &mut ring)
        .expect("nll_streaming, exact arena");
    assert_eq!(a, b, "full vs streaming NLL");
    let la = dm.logits(&img, &mut full).expect("logits").to_vec();
    let mut lb = vec![0i8; n];
    dm.logits_streaming(&img, &mut ring, &mut lb)
        .expect("logits_streaming");
    assert_eq!(la, lb, "full vs streaming logits");
    // Full recomputation costs one forward pass per pixel: small images only.
    if n <= 100 {
        let (mut x, mut y) = (vec![9u8; n], vec![9u8; n]);
        dm.sample(&mut Pcg32::seeded(1), &mut x, &mut ring)
            .expect("sample");
        dm.sample_full(&mut Pcg32::seeded(1), &mut y, &mut full)
            .expect("sample_full");
        assert_eq!(x, y, "incremental vs full sampling");
    }
    for arena in [&mut full, &mut ring] {
        if let Ok(r) = dm.selftest(arena) {
            assert!(r.passed <= r.total);
        }
    }
}

fn classifier(model: Model<'_>) {
    let Ok(clf) = Classifier::new(model) else {
        return;
    };
    let mut arena = vec![0u8; model.arena_len()];
    let pixels = vec![0x55u8; clf.input_len()];
    let p = clf
        .classify(&pixels, &mut arena)
        .expect("classify, exact arena");
    let mut probs = vec![0f32; p.scores.len()];
    let _ = p.probabilities(&mut probs);
    let _ = p.top_k::<3>();
    let _ = clf.selftest(&mut arena);
}

/// A model under construction.
struct Net {
    tensors: Vec<TensorRepr>,
    ops: Vec<OpRepr>,
    data: Vec<u8>,
}

impl Net {
    fn new() -> Self {
        Net {
            tensors: Vec::new(),
            ops: Vec::new(),
            data: Vec::new(),
        }
    }

    fn tensor(&mut self, u: &mut Unstructured, (h, w, c): (u16, u16, u16)) -> Result<u8> {
        self.tensors.push(TensorRepr {
            h,
            w,
            c,
            zero_point: extreme_i32(u, -128, 127)?,
            scale: 0.05,
            arena_offset: 0,
        });
        Ok((self.tensors.len() - 1) as u8)
    }

    fn push_i8(&mut self, v: &[i8]) -> u32 {
        let at = self.data.len() as u32;
        self.data.extend(v.iter().map(|&x| x as u8));
        while self.data.len() % 4 != 0 {
            self.data.push(0);
        }
        at
    }

    fn push_i32(&mut self, v: &[i32]) -> u32 {
        let at = self.data.len() as u32;
        for x in v {
            self.data.extend_from_slice(&x.to_le_bytes());
        }
        at
    }

    /// Weights (masked taps zero), bias and requantization of a weighted op.
    fn weighted(
        &mut self,
        u: &mut Unstructured,
        op: &mut OpRepr,
        out: usize,
        depth: usize,
        allow: impl Fn(usize) -> bool,
    ) -> Result<()> {
        let mut w = vec![0i8; out * depth];
        for (i, v) in w.iter_mut().enumerate() {
            if allow(i % depth) {
                *v = extreme_i32(u, -128, 127)? as i8;
            }
        }
        op.weights = self.push_i8(&w);
        let bias = (0..out)
            .map(|_| extreme_i32(u, -(1 << 30), 1 << 30))
            .collect::<Result<Vec<_>>>()?;
        op.bias = self.push_i32(&bias);
        op.requant = self.requant(u, out)?;
        Ok(())
    }

    fn requant(&mut self, u: &mut Unstructured, n: usize) -> Result<u32> {
        let mut rq = (0..n)
            .map(|_| extreme_i32(u, 0, i32::MAX))
            .collect::<Result<Vec<_>>>()?;
        for _ in 0..n {
            rq.push(extreme_i32(u, MIN_SHIFT, MAX_SHIFT)?);
        }
        Ok(self.push_i32(&rq))
    }

    fn clamps(&mut self, u: &mut Unstructured, op: &mut OpRepr) -> Result<()> {
        let (a, b) = (
            extreme_i32(u, -128, 127)? as i8,
            extreme_i32(u, -128, 127)? as i8,
        );
        (op.act_min, op.act_max) = (a.min(b), a.max(b));
        Ok(())
    }

    /// Emits with an exact buffer plan (`plan` gives offsets and the arena).
    fn emit(
        mut self,
        family: Family,
        head: Option<&[u8]>,
        plan: impl Fn(&[TensorRepr], &[OpRepr]) -> (Vec<u32>, u32),
    ) -> Option<Vec<u32>> {
        let (offsets, arena_len) = plan(&self.tensors, &self.ops);
        for (t, o) in self.tensors.iter_mut().zip(offsets) {
            t.arena_offset = o;
        }
        let repr = ModelRepr {
            family,
            arena_len,
            tensors: &self.tensors,
            ops: &self.ops,
            data: &self.data,
            selftest: None,
            head,
            lm: None,
            vocab: None,
        };
        let mut words = vec![0u32; repr.buffer_len().div_ceil(4)];
        repr.emit(bytemuck::cast_slice_mut(&mut words)).ok()?;
        Some(words)
    }
}

/// A value in `[lo, hi]`, often one of its ends or zero.
fn extreme_i32(u: &mut Unstructured, lo: i32, hi: i32) -> Result<i32> {
    Ok(match u.int_in_range(0u8..=7)? {
        0 => lo,
        1 => hi,
        2 => 0i32.clamp(lo, hi),
        _ => u.int_in_range(lo..=hi)?,
    })
}

/// Every tensor in its own place: the simplest exact plan (the arena is
/// the end of the last tensor). Classifier chains alternate two halves.
fn plan_separate(tensors: &[TensorRepr], _: &[OpRepr]) -> (Vec<u32>, u32) {
    let mut at = 0u32;
    let mut offsets = Vec::new();
    let mut end = 0;
    for t in tensors {
        offsets.push(at);
        end = at + t.len();
        at = (end + 3) & !3;
    }
    (offsets, end)
}

/// A valid classifier: a chain of convs (any k, stride, padding below k),
/// 2×2 max pools, a global average pool or not, then a fully connected
/// layer to ≥ 2 classes.
pub fn classifier_model(u: &mut Unstructured) -> Result<Option<Vec<u32>>> {
    let mut net = Net::new();
    let mut shape = (
        u.int_in_range(1u16..=12)?,
        u.int_in_range(1u16..=12)?,
        u.int_in_range(1u16..=5)?,
    );
    let mut t = net.tensor(u, shape)?;
    for _ in 0..u.int_in_range(0..=4)? {
        let (h, w, c) = shape;
        match u.int_in_range(0u8..=3)? {
            0 if h >= 2 && w >= 2 => {
                let out = (h / 2, w / 2, c);
                net.tensors.push(TensorRepr {
                    ..net.tensors[t as usize]
                });
                let o = (net.tensors.len() - 1) as u8;
                let tr = &mut net.tensors[o as usize];
                (tr.h, tr.w) = (out.0, out.1);
                let mut op = OpRepr::new(OpKind::MaxPool2x2, t, o);
                (op.kernel, op.stride) = (2, 2);
                net.ops.push(op);
                (t, shape) = (o, out);
            }
            _ => {
                let k = u.int_in_range(1u8..=5)?;
                let s = u.int_in_range(1u8..=3)?;
                let pad = u.int_in_range(0..=k - 1)?;
                let dim = |n: u16| {
                    (n as usize + 2 * pad as usize)
                        .checked_sub(k as usize)
                        .map(|r| r / s as usize + 1)
                };
                let (Some(oh), Some(ow)) = (dim(h), dim(w)) else {
                    continue;
                };
                let oc = u.int_in_range(1u16..=6)?;
                let out = (oh as u16, ow as u16, oc);
                let o = net.tensor(u, out)?;
                let mut op = OpRepr::new(OpKind::Conv2d, t, o);
                (op.kernel, op.stride, op.pad) = (k, s, pad);
                let depth = k as usize * k as usize * c as usize;
                net.weighted(u, &mut op, oc as usize, depth, |_| true)?;
                // Half the convs that may be stored as pairs are (the
                // same values; the int8 copy stays behind, unread).
                if c % 4 == 0 && u.arbitrary()? {
                    let at = op.weights as usize;
                    let int8: Vec<i8> = net.data[at..at + oc as usize * depth]
                        .iter()
                        .map(|&b| b as i8)
                        .collect();
                    let pairs: Vec<i32> = int8
                        .chunks_exact(4)
                        .flat_map(|q| to_pairs([q[0], q[1], q[2], q[3]]))
                        .collect();
                    op.weights = net.push_i32(&pairs);
                    op.aux[1] = ConvLayout::Pairs as u8;
                }
                net.clamps(u, &mut op)?;
                net.ops.push(op);
                (t, shape) = (o, out);
            }
        }
    }
    if u.arbitrary()? {
        let o = net.tensor(u, (1, 1, shape.2))?;
        let mut op = OpRepr::new(OpKind::GlobalAvgPool, t, o);
        op.requant = net.requant(u, 1)?;
        net.clamps(u, &mut op)?;
        net.ops.push(op);
        (t, shape) = (o, (1, 1, shape.2));
    }
    let classes = u.int_in_range(2u16..=10)?;
    let o = net.tensor(u, (1, 1, classes))?;
    let mut op = OpRepr::new(OpKind::FullyConnected, t, o);
    let depth = shape.0 as usize * shape.1 as usize * shape.2 as usize;
    net.weighted(u, &mut op, classes as usize, depth, |_| true)?;
    net.clamps(u, &mut op)?;
    net.ops.push(op);
    Ok(net.emit(Family::Classifier, None, plan_separate))
}

/// A valid PixelCNN: an `h`×`w` binary image (short, narrow and 1×1 ones
/// included), a mask-A stem, residual blocks of 1×1 and mask-B k×k convs
/// with adds, a 1×1 head to one logit per pixel, and Bernoulli tables.
pub fn density_model(u: &mut Unstructured) -> Result<Option<Vec<u32>>> {
    let mut net = Net::new();
    let hw = (u.int_in_range(1u16..=9)?, u.int_in_range(1u16..=9)?);
    net.tensors.push(TensorRepr {
        h: hw.0,
        w: hw.1,
        c: 1,
        zero_point: 0,
        scale: 1.0,
        arena_offset: 0,
    });
    let conv = |net: &mut Net,
                u: &mut Unstructured,
                input: u8,
                oc: u16,
                k: u8,
                mask: Mask|
     -> Result<u8> {
        let ic = net.tensors[input as usize].c as usize;
        let o = net.tensor(u, (hw.0, hw.1, oc))?;
        let mut op = OpRepr::new(OpKind::Conv2d, input, o);
        (op.kernel, op.stride, op.pad) = (k, 1, k / 2);
        op.aux[0] = mask as u8;
        let kk = k as usize;
        net.weighted(u, &mut op, oc as usize, kk * kk * ic, |i| {
            let tap = i / ic;
            mask.allows(kk, tap / kk, tap % kk)
        })?;
        net.clamps(u, &mut op)?;
        net.ops.push(op);
        Ok(o)
    };
    let odd = |u: &mut Unstructured| -> Result<u8> { Ok(2 * u.int_in_range(0u8..=3)? + 1) };
    let c = u.int_in_range(1u16..=6)?;
    let ka = odd(u)?.max(3);
    let mut x = conv(&mut net, u, 0, c, ka, Mask::A)?;
    for _ in 0..u.int_in_range(0..=2)? {
        let mid = u.int_in_range(1u16..=4)?;
        let t = conv(&mut net, u, x, mid, 1, Mask::None)?;
        let kb = odd(u)?;
        let t = conv(&mut net, u, t, mid, kb, Mask::B)?;
        let t = conv(&mut net, u, t, c, 1, Mask::B)?;
        if u.arbitrary()? {
            let o = net.tensor(u, (hw.0, hw.1, c))?;
            let mut op = OpRepr::new(OpKind::Add, x, o);
            op.aux[0] = t;
            op.requant = net.requant(u, 3)?;
            net.clamps(u, &mut op)?;
            net.ops.push(op);
            x = o;
        } else {
            x = t;
        }
    }
    let out = conv(&mut net, u, x, 1, 1, Mask::None)?;
    let _ = out;
    let mut head = vec![0u8; tinyinfer::format::BernoulliHead::LEN];
    head[0..4].copy_from_slice(&tinyinfer::format::BernoulliHead::KIND.to_le_bytes());
    for i in 0..3 * 256 {
        let v: u32 = match u.int_in_range(0u8..=3)? {
            0 => u32::MAX,
            1 => 0,
            _ => u.arbitrary()?,
        };
        head[16 + 4 * i..20 + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    Ok(net.emit(Family::Density, Some(&head), plan_separate))
}

/// A valid LSTM language model: V tokens (2..=40, one or two bytes each),
/// d and H up to 12, 1–2 layers, a softmax, MoC or MoS head with K up to 4,
/// extreme int8 weights, biases up to ±2^28, any valid requantization;
/// spec version 1 or 2 (shared per-word shifts).
pub fn language_model(u: &mut Unstructured) -> Result<Option<Vec<u32>>> {
    use tinyinfer::format::{LmSpec, MAX_LM_BIAS};
    let v = u.int_in_range(2usize..=40)?;
    let d = u.int_in_range(1usize..=12)?;
    let layers = u.int_in_range(1usize..=2)?;
    let head = u.int_in_range(1u32..=3)?; // softmax, MoC, MoS
    let k = if head == 1 {
        1
    } else {
        u.int_in_range(1usize..=4)?
    };
    let level = u.int_in_range(1u32..=2)?;
    let mut data: Vec<u8> = Vec::new();
    let i8s = |u: &mut Unstructured, data: &mut Vec<u8>, n: usize| -> Result<u32> {
        let at = data.len() as u32;
        for _ in 0..n {
            data.push(extreme_i32(u, -128, 127)? as i8 as u8);
        }
        while data.len() % 4 != 0 {
            data.push(0);
        }
        Ok(at)
    };
    let i32s = |data: &mut Vec<u8>, v: &[i32]| -> u32 {
        let at = data.len() as u32;
        for x in v {
            data.extend_from_slice(&x.to_le_bytes());
        }
        at
    };
    let requant = |u: &mut Unstructured, data: &mut Vec<u8>, n: usize| -> Result<u32> {
        let mut rq = (0..n)
            .map(|_| extreme_i32(u, 0, i32::MAX))
            .collect::<Result<Vec<_>>>()?;
        for _ in 0..n {
            rq.push(extreme_i32(u, MIN_SHIFT, MAX_SHIFT)?);
        }
        Ok(i32s(data, &rq))
    };
    let biases = |u: &mut Unstructured, data: &mut Vec<u8>, n: usize| -> Result<u32> {
        let b = (0..n)
            .map(|_| extreme_i32(u, -MAX_LM_BIAS, MAX_LM_BIAS))
            .collect::<Result<Vec<_>>>()?;
        Ok(i32s(data, &b))
    };
    let mut layer_words = Vec::new();
    let mut input = d;
    for _ in 0..layers {
        let h = u.int_in_range(1usize..=12)?;
        let rows = 4 * h;
        let w_x = i8s(u, &mut data, rows * input)?;
        let w_h = i8s(u, &mut data, rows * h)?;
        let rq_x = requant(u, &mut data, rows)?;
        let rq_h = requant(u, &mut data, rows)?;
        let bias = biases(u, &mut data, rows)?;
        // Row quads where both widths allow them (any bytes are weights in
        // either layout), half the time.
        let quads = input % 4 == 0 && h % 4 == 0 && u.arbitrary::<bool>()?;
        let layout = if quads { 1 } else { 0 };
        layer_words.extend([input as u32, h as u32, w_x, w_h, rq_x, rq_h, bias, layout]);
        input = h;
    }
    let top = input;
    let emb_w = i8s(u, &mut data, v * d)?;
    // Spec version 2 half the time: the per-word arrays share one shift.
    let version = u.int_in_range(1u32..=2)?;
    let word_requant = |u: &mut Unstructured, data: &mut Vec<u8>| -> Result<u32> {
        if version == 1 {
            return requant(u, data, v);
        }
        let mut rq = (0..v)
            .map(|_| extreme_i32(u, 0, i32::MAX))
            .collect::<Result<Vec<_>>>()?;
        rq.push(extreme_i32(u, MIN_SHIFT, MAX_SHIFT)?);
        Ok(i32s(data, &rq))
    };
    let emb_rq = word_requant(u, &mut data)?;
    let dec_rq = word_requant(u, &mut data)?;
    let dec_b = biases(u, &mut data, v)?;
    let proj_w = i8s(u, &mut data, k * d * top)?;
    let proj_rq = requant(u, &mut data, k * d)?;
    let proj_b = biases(u, &mut data, k * d)?;
    let proj_quads = (k * d) % 4 == 0 && top % 4 == 0 && u.arbitrary::<bool>()?;
    let (prior_w, prior_rq, prior_b) = if k > 1 {
        (
            i8s(u, &mut data, k * top)?,
            requant(u, &mut data, k)?,
            biases(u, &mut data, k)?,
        )
    } else {
        (
            tinyinfer::format::NONE,
            tinyinfer::format::NONE,
            tinyinfer::format::NONE,
        )
    };
    let mut words = vec![
        version,
        v as u32,
        d as u32,
        layers as u32,
        head,
        k as u32,
        level,
        u32::from(proj_quads),
        emb_w,
        emb_rq,
        dec_rq,
        dec_b,
        proj_w,
        proj_rq,
        proj_b,
        prior_w,
        prior_rq,
        prior_b,
    ];
    words.extend(layer_words);
    let lm: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    // Tokens: distinct one- or two-byte strings; with or without the
    // sorted index (both layouts load).
    let indexed: bool = u.arbitrary()?;
    let mut vocab = Vec::new();
    vocab.extend_from_slice(&(v as u32).to_le_bytes());
    vocab.extend_from_slice(&(indexed as u32 * VOCAB_SORTED_INDEX).to_le_bytes());
    let tokens: Vec<String> = (0..v)
        .map(|i| {
            if i < 26 {
                ((b'a' + i as u8) as char).to_string()
            } else {
                format!("w{}", i - 26)
            }
        })
        .collect();
    let mut at = 0u32;
    vocab.extend_from_slice(&at.to_le_bytes());
    for t in &tokens {
        at += t.len() as u32;
        vocab.extend_from_slice(&at.to_le_bytes());
    }
    if indexed {
        let mut index: Vec<u16> = (0..v as u16).collect();
        index.sort_by(|&a, &b| tokens[a as usize].cmp(&tokens[b as usize]));
        for i in index {
            vocab.extend_from_slice(&i.to_le_bytes());
        }
        if v % 2 == 1 {
            vocab.extend_from_slice(&[0, 0]);
        }
    }
    let bytes_at = vocab.len();
    for t in &tokens {
        vocab.extend_from_slice(t.as_bytes());
    }
    while vocab.len() % 4 != 0 {
        vocab.push(0);
    }
    // Padding bytes after the table would break "offsets end at the bytes' end".
    let text_len = at as usize;
    vocab.truncate(bytes_at + text_len);
    let Some(spec) = LmSpec::parse(&lm, &data) else {
        return Ok(None);
    };
    let arena_len = spec.plan().total as u32;
    let emit = |selftest: Option<(u32, u32, &[u8])>| {
        let repr = ModelRepr {
            family: Family::LanguageModel,
            arena_len,
            tensors: &[],
            ops: &[],
            data: &data,
            selftest,
            head: None,
            lm: Some(&lm),
            vocab: Some(&vocab),
        };
        let mut out = vec![0u32; repr.buffer_len().div_ceil(4)];
        repr.emit(bytemuck::cast_slice_mut(&mut out))
            .ok()
            .map(|_| out)
    };
    let Some(plain) = emit(None) else {
        return Ok(None);
    };
    if !u.arbitrary::<bool>()? {
        return Ok(Some(plain));
    }
    // Self-test cases computed by the core, as the exporter does: a prompt
    // of 1–4 arbitrary tokens and the top 1–3 after it.
    let (prompt, top) = (
        u.int_in_range(1..=4usize)?,
        u.int_in_range(1..=3usize)?.min(v),
    );
    let cases = u.int_in_range(1..=2usize)?;
    let mut recs = Vec::new();
    {
        let bytes = bytemuck::cast_slice::<u32, u8>(&plain);
        let Ok(lm) = Model::check_structure(bytes).and_then(LanguageModel::new) else {
            return Ok(None);
        };
        if lm.arena_len() > MAX_ARENA {
            return Ok(None);
        }
        let mut arena = vec![0u8; lm.arena_len()];
        let Ok(mut s) = lm.session(&mut arena) else {
            return Ok(None);
        };
        for _ in 0..cases {
            s.reset();
            for _ in 0..prompt {
                let t = u.int_in_range(0..=(v - 1) as u16)?;
                if s.step(t).is_err() {
                    return Ok(None);
                }
                recs.extend_from_slice(&t.to_le_bytes());
            }
            let best = s.top_k::<MAX_LM_TOP>();
            for &(id, p) in best.iter().take(top) {
                let Ok(lp) = s.log_prob(id) else {
                    return Ok(None);
                };
                recs.extend_from_slice(&id.to_le_bytes());
                recs.extend_from_slice(&[0, 0]);
                recs.extend_from_slice(&p.to_le_bytes());
                recs.extend_from_slice(&lp.0.to_le_bytes());
            }
            while recs.len() % 4 != 0 {
                recs.push(0);
            }
        }
    }
    Ok(emit(Some((
        2 * prompt as u32,
        (top * LM_TOP_LEN) as u32,
        &recs,
    ))))
}
