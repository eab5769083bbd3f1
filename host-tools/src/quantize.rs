//! Post-training static quantization of a [`FoldedNet`] into a `.tinf` model.
//!
//! Calibration runs the float model over a subset of the *training* set and
//! records each activation's range. From those ranges this module computes
//! everything the device will need — int8 weights (per-channel symmetric),
//! int32 biases, requantization multipliers and shifts, clamps, zero points
//! and the buffer plan — so the device only reads them.

use anyhow::{bail, ensure, Context, Result};
use tinyinfer::format::{Family, ModelRepr, OpKind, OpRepr, TensorRepr, MAX_ABS_BIAS};
use tinyinfer::quant::quantize_multiplier;

use crate::float_model::{normalize, FoldedNet, Layer, Shape, INPUT_MEAN, INPUT_STD};

/// Activation quantization: `real = scale · (q − zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActQuant {
    /// Scale.
    pub scale: f32,
    /// Zero point in `-128..=127`.
    pub zero_point: i32,
}

impl ActQuant {
    /// Asymmetric int8 quantization covering `[min, max]` (widened to include 0).
    pub fn from_range(min: f32, max: f32) -> Self {
        let (min, max) = (min.min(0.0), max.max(0.0));
        let scale = if max - min > 1e-8 {
            (max - min) / 255.0
        } else {
            1e-8
        };
        let zp = (-128.0 - min / scale).round().clamp(-128.0, 127.0) as i32;
        ActQuant {
            scale,
            zero_point: zp,
        }
    }

    /// The input quantization that makes the int8 input exactly `pixel − 128`.
    pub fn input() -> Self {
        ActQuant {
            scale: 1.0 / INPUT_STD,
            zero_point: INPUT_MEAN - 128,
        }
    }
}

/// Per-activation min/max over calibration images.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// `(min, max)` for each layer output (index `i` = output of layer `i`).
    pub ranges: Vec<(f32, f32)>,
    /// Images used.
    pub images: usize,
}

/// Runs the float model over `images` (raw u8, `PIXELS` each) and records ranges.
pub fn calibrate(net: &FoldedNet, images: &[u8]) -> Result<Calibration> {
    let px = net.input.0 * net.input.1 * net.input.2;
    ensure!(
        px > 0 && !images.is_empty() && images.len().is_multiple_of(px),
        "calibration set is empty or ragged"
    );
    let n = images.len() / px;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(n);
    let chunk = n.div_ceil(threads);
    let parts: Vec<Vec<(f32, f32)>> = std::thread::scope(|s| {
        let hs: Vec<_> = images
            .chunks(chunk * px)
            .map(|imgs| {
                s.spawn(move || {
                    let mut r = vec![(f32::INFINITY, f32::NEG_INFINITY); net.layers.len()];
                    for img in imgs.chunks(px) {
                        let acts = net.forward_all(&normalize(img));
                        for (rr, a) in r.iter_mut().zip(&acts[1..]) {
                            for &v in a {
                                rr.0 = rr.0.min(v);
                                rr.1 = rr.1.max(v);
                            }
                        }
                    }
                    r
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("calibration thread panicked"))
            .collect()
    });
    let mut ranges = vec![(f32::INFINITY, f32::NEG_INFINITY); net.layers.len()];
    for p in parts {
        for (r, q) in ranges.iter_mut().zip(p) {
            r.0 = r.0.min(q.0);
            r.1 = r.1.max(q.1);
        }
    }
    ensure!(
        ranges.iter().all(|r| r.0.is_finite() && r.1.is_finite()),
        "calibration produced non-finite activations"
    );
    Ok(Calibration { ranges, images: n })
}

/// A quantized model ready to emit, plus figures for reports.
#[derive(Clone, Debug)]
pub struct Quantized {
    /// Tensor records (tensor 0 = input).
    pub tensors: Vec<TensorRepr>,
    /// Op records.
    pub ops: Vec<OpRepr>,
    /// DATA section.
    pub data: Vec<u8>,
    /// Exact arena bytes.
    pub arena_len: u32,
    /// Parameters (weights + biases).
    pub params: usize,
}

impl Quantized {
    /// The emit-ready view, optionally with self-test records.
    pub fn repr<'a>(&'a self, selftest: Option<(u32, u32, &'a [u8])>) -> ModelRepr<'a> {
        ModelRepr {
            family: Family::Classifier,
            arena_len: self.arena_len,
            tensors: &self.tensors,
            ops: &self.ops,
            data: &self.data,
            selftest,
            head: None,
            lm: None,
            vocab: None,
        }
    }

    /// Serializes to a blob.
    pub fn to_bytes(&self, selftest: Option<(u32, u32, &[u8])>) -> Result<Vec<u8>> {
        let repr = self.repr(selftest);
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf)
            .map_err(|e| anyhow::anyhow!("emitting model: {e}"))?;
        Ok(buf)
    }
}

pub(crate) fn push_aligned(data: &mut Vec<u8>, bytes: &[u8]) -> u32 {
    while !data.len().is_multiple_of(4) {
        data.push(0);
    }
    let at = data.len() as u32;
    data.extend_from_slice(bytes);
    at
}

pub(crate) fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(crate) fn requant_pair(scale: f64, what: &str) -> Result<(i32, i32)> {
    quantize_multiplier(scale)
        .with_context(|| format!("{what}: requantization scale {scale} out of range"))
}

/// Quantizes weights `[out][depth]` per output channel (symmetric, ±127).
/// Returns int8 weights and per-channel scales.
pub(crate) fn quantize_weights(w: &[f32], out: usize) -> (Vec<i8>, Vec<f32>) {
    let depth = w.len() / out;
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(out);
    for row in w.chunks(depth) {
        let m = row.iter().fold(0f32, |a, v| a.max(v.abs()));
        let s = if m > 0.0 { m / 127.0 } else { 1.0 };
        scales.push(s);
        q.extend(
            row.iter()
                .map(|v| (v / s).round().clamp(-127.0, 127.0) as i8),
        );
    }
    (q, scales)
}

/// Buffer plan for a chain: alternate tensors between the bottom and the top
/// of the arena. Adjacent tensors never overlap, and the arena is the
/// largest sum of two adjacent tensors, the minimum any plan can reach.
pub fn plan_chain(lens: &[u32]) -> (Vec<u32>, u32) {
    let arena = lens
        .windows(2)
        .map(|w| w[0] + w[1])
        .max()
        .unwrap_or(lens.first().copied().unwrap_or(0));
    let offsets = lens
        .iter()
        .enumerate()
        .map(|(i, &l)| if i % 2 == 0 { 0 } else { arena - l })
        .collect();
    (offsets, arena)
}

/// Quantizes `net` with calibration `cal`.
pub fn quantize(net: &FoldedNet, cal: &Calibration) -> Result<Quantized> {
    let shapes = net.shapes().context("layers do not fit their inputs")?;
    ensure!(
        cal.ranges.len() == net.layers.len(),
        "calibration does not match the model"
    );
    ensure!(
        net.layers.len() < tinyinfer::format::MAX_OPS,
        "too many layers"
    );
    for s in &shapes {
        ensure!(
            s.0 <= u16::MAX as usize && s.1 <= u16::MAX as usize && s.2 <= u16::MAX as usize,
            "shape {s:?} too large"
        );
    }

    // Activation quantization: input fixed, pools keep their input's, others from calibration.
    let mut q = vec![ActQuant::input()];
    for (i, l) in net.layers.iter().enumerate() {
        let aq = match l {
            Layer::MaxPool2 => q[i],
            _ => ActQuant::from_range(cal.ranges[i].0, cal.ranges[i].1),
        };
        q.push(aq);
    }

    let lens: Vec<u32> = shapes.iter().map(|s| (s.0 * s.1 * s.2) as u32).collect();
    let (offsets, arena_len) = plan_chain(&lens);
    let tensors: Vec<TensorRepr> = shapes
        .iter()
        .zip(&q)
        .zip(&offsets)
        .map(|((s, aq), &off): ((&Shape, &ActQuant), &u32)| TensorRepr {
            h: s.0 as u16,
            w: s.1 as u16,
            c: s.2 as u16,
            zero_point: aq.zero_point,
            scale: aq.scale,
            arena_offset: off,
        })
        .collect();

    let mut data = Vec::new();
    let mut ops = Vec::new();
    let mut params = 0;
    for (i, l) in net.layers.iter().enumerate() {
        let (qi, qo) = (q[i], q[i + 1]);
        let mut op = OpRepr::new(OpKind::Conv2d, i as u8, (i + 1) as u8);
        let what = format!("layer {i}");
        let mut weighted =
            |op: &mut OpRepr, w: &[f32], b: &[f32], out: usize, relu: bool| -> Result<()> {
                let (wq, ws) = quantize_weights(w, out);
                let mut bias = Vec::with_capacity(out);
                let mut mult = Vec::with_capacity(out);
                let mut shift = Vec::with_capacity(out);
                for o in 0..out {
                    let acc_scale = qi.scale as f64 * ws[o] as f64;
                    let bq = (b[o] as f64 / acc_scale).round();
                    if bq.abs() > MAX_ABS_BIAS as f64 {
                        bail!("{what}: bias {} does not fit the accumulator", b[o]);
                    }
                    bias.push(bq as i32);
                    let (m, s) = requant_pair(acc_scale / qo.scale as f64, &what)?;
                    mult.push(m);
                    shift.push(s);
                }
                params += wq.len() + bias.len();
                op.weights = push_aligned(&mut data, bytemuck::cast_slice(&wq));
                op.bias = push_aligned(&mut data, &i32_bytes(&bias));
                mult.extend_from_slice(&shift);
                op.requant = push_aligned(&mut data, &i32_bytes(&mult));
                op.act_min = if relu {
                    qo.zero_point.clamp(-128, 127) as i8
                } else {
                    i8::MIN
                };
                op.act_max = i8::MAX;
                Ok(())
            };
        match l {
            Layer::Conv {
                cout,
                k,
                stride,
                pad,
                weight,
                bias,
                relu,
                ..
            } => {
                ensure!(
                    *k <= 255 && *stride <= 255 && *pad <= 255,
                    "{what}: kernel parameters too large"
                );
                op.kernel = *k as u8;
                op.stride = *stride as u8;
                op.pad = *pad as u8;
                weighted(&mut op, weight, bias, *cout, *relu)?;
            }
            Layer::Dense {
                cout,
                weight,
                bias,
                relu,
                ..
            } => {
                op.kind = OpKind::FullyConnected;
                weighted(&mut op, weight, bias, *cout, *relu)?;
            }
            Layer::MaxPool2 => {
                op.kind = OpKind::MaxPool2x2;
                op.kernel = 2;
                op.stride = 2;
            }
            Layer::GlobalAvgPool => {
                op.kind = OpKind::GlobalAvgPool;
                let area = (shapes[i].0 * shapes[i].1) as f64;
                let (m, s) = requant_pair(qi.scale as f64 / (qo.scale as f64 * area), &what)?;
                op.requant = push_aligned(&mut data, &i32_bytes(&[m, s]));
            }
        }
        ops.push(op);
    }
    while !data.len().is_multiple_of(4) {
        data.push(0);
    }
    Ok(Quantized {
        tensors,
        ops,
        data,
        arena_len,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_plan_is_minimal_and_disjoint() {
        let lens = [784, 12544, 12544, 3136, 6272, 64, 10];
        let (off, arena) = plan_chain(&lens);
        assert_eq!(arena, 12544 * 2);
        for i in 0..lens.len() - 1 {
            let (a, b) = (
                (off[i], off[i] + lens[i]),
                (off[i + 1], off[i + 1] + lens[i + 1]),
            );
            assert!(a.1 <= b.0 || b.1 <= a.0, "{i}");
            assert!(a.1 <= arena && b.1 <= arena);
        }
    }

    #[test]
    fn act_quant_covers_zero_and_range() {
        let a = ActQuant::from_range(0.0, 6.0);
        assert_eq!(a.zero_point, -128);
        assert!((a.scale - 6.0 / 255.0).abs() < 1e-7);
        let b = ActQuant::from_range(-1.0, 1.0);
        assert!((b.zero_point).abs() <= 1);
        let i = ActQuant::input();
        // pixel 73 (the training mean) is real 0: q = 73 − 128 = −55 = zero point.
        assert_eq!(i.zero_point, -55);
    }
}
