//! Post-training static quantization shared by the families: activation
//! ranges over calibration images ([`calibrate`], the one calibration every
//! exporter uses), int8 activation and weight quantization, requantization
//! pairs, the DATA-section helpers, and the buffer plans (a chain ping-pongs
//! between two ends of the arena; a DAG is placed first-fit by lifetimes).
//!
//! Calibration always runs the *float* model over *training* images; every
//! number the device needs is computed here or in a family's quantizer, so
//! the device only reads them.

use anyhow::{anyhow, bail, ensure, Context, Result};
use tinyinfer::format::{OpRepr, MAX_ABS_BIAS};
use tinyinfer::quant::quantize_multiplier;

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
}

/// Per-activation min/max over calibration images.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// `(min, max)` of each activation `activations` returned, in its order.
    pub ranges: Vec<(f32, f32)>,
    /// Images used.
    pub images: usize,
}

/// Runs `activations` (the float model: one image of `px` bytes in, the
/// activations to calibrate out, always in the same order) over every image
/// of `images`, in parallel, and records each activation's range.
///
/// # Errors
/// An empty or ragged image set, or non-finite activations.
pub fn calibrate<F>(images: &[u8], px: usize, activations: F) -> Result<Calibration>
where
    F: Fn(&[u8]) -> Vec<Vec<f32>> + Sync,
{
    ensure!(
        px > 0 && !images.is_empty() && images.len().is_multiple_of(px),
        "calibration set is empty or ragged"
    );
    let n = images.len() / px;
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n);
    let per = n.div_ceil(threads);
    let f = &activations;
    let parts: Vec<Vec<(f32, f32)>> = std::thread::scope(|s| {
        let hs: Vec<_> = images
            .chunks(per * px)
            .map(|imgs| {
                s.spawn(move || {
                    let mut r: Vec<(f32, f32)> = Vec::new();
                    for img in imgs.chunks(px) {
                        let acts = f(img);
                        r.resize(acts.len(), (f32::INFINITY, f32::NEG_INFINITY));
                        for (rr, a) in r.iter_mut().zip(&acts) {
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
            .map(|h| h.join().map_err(|_| anyhow!("calibration thread panicked")))
            .collect::<Result<_>>()
    })?;
    let mut ranges: Vec<(f32, f32)> = Vec::new();
    for p in parts {
        ranges.resize(
            p.len().max(ranges.len()),
            (f32::INFINITY, f32::NEG_INFINITY),
        );
        for (r, q) in ranges.iter_mut().zip(p) {
            r.0 = r.0.min(q.0);
            r.1 = r.1.max(q.1);
        }
    }
    ensure!(
        !ranges.is_empty() && ranges.iter().all(|r| r.0.is_finite() && r.1.is_finite()),
        "calibration produced non-finite activations"
    );
    Ok(Calibration { ranges, images: n })
}

/// Appends `bytes` to the DATA section at the next 4-byte boundary; returns their offset.
pub fn push_aligned(data: &mut Vec<u8>, bytes: &[u8]) -> u32 {
    while !data.len().is_multiple_of(4) {
        data.push(0);
    }
    let at = data.len() as u32;
    data.extend_from_slice(bytes);
    at
}

/// Little-endian bytes of `v`.
pub fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The multiplier and shift of a real requantization `scale`; `what` names the layer.
///
/// # Errors
/// A scale the fixed-point format cannot hold.
pub fn requant_pair(scale: f64, what: &str) -> Result<(i32, i32)> {
    quantize_multiplier(scale)
        .with_context(|| format!("{what}: requantization scale {scale} out of range"))
}

/// Quantizes weights `[out][depth]` per output channel (symmetric, ±127).
/// Returns int8 weights and per-channel scales.
pub fn quantize_weights(w: &[f32], out: usize) -> (Vec<i8>, Vec<f32>) {
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

/// Quantizes a weighted op (conv or fully connected, weights `[out][depth]`,
/// `out` biases) from input quantization `qi` to output `qo`: int8 weights,
/// int32 biases and per-channel multipliers and shifts, appended to `data`
/// (weights, biases, then multipliers followed by shifts) with their offsets
/// set in `op`. Returns the parameters stored (weights + biases).
///
/// # Errors
/// A bias that does not fit the accumulator or a scale out of range, naming `what`.
#[allow(clippy::too_many_arguments)]
pub fn quantize_weighted(
    op: &mut OpRepr,
    data: &mut Vec<u8>,
    weight: &[f32],
    bias: &[f32],
    out: usize,
    qi: ActQuant,
    qo: ActQuant,
    what: &str,
) -> Result<usize> {
    let (wq, ws) = quantize_weights(weight, out);
    let mut bq = Vec::with_capacity(out);
    let mut mult = Vec::with_capacity(out);
    let mut shift = Vec::with_capacity(out);
    for (&wsc, &b) in ws.iter().zip(bias) {
        let acc_scale = qi.scale as f64 * wsc as f64;
        let q = (b as f64 / acc_scale).round();
        if q.abs() > MAX_ABS_BIAS as f64 {
            bail!("{what}: bias {b} does not fit the accumulator");
        }
        bq.push(q as i32);
        let (m, s) = requant_pair(acc_scale / qo.scale as f64, what)?;
        mult.push(m);
        shift.push(s);
    }
    op.weights = push_aligned(data, bytemuck::cast_slice(&wq));
    op.bias = push_aligned(data, &i32_bytes(&bq));
    mult.extend_from_slice(&shift);
    op.requant = push_aligned(data, &i32_bytes(&mult));
    Ok(wq.len() + bq.len())
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

/// Buffer plan for a DAG: tensor `t` lives from op `born[t]` to op
/// `last[t]` (inclusive); each tensor goes first-fit at the lowest offset
/// that overlaps no tensor whose life intersects its own.
pub fn plan_dag(lens: &[u32], born: &[usize], last: &[usize]) -> (Vec<u32>, u32) {
    let mut offsets = vec![0u32; lens.len()];
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.sort_by_key(|&t| (born[t], std::cmp::Reverse(lens[t])));
    let mut placed: Vec<usize> = Vec::new();
    for &t in &order {
        let len = (lens[t] + 3) & !3;
        let mut busy: Vec<(u32, u32)> = placed
            .iter()
            .filter(|&&o| born[o] <= last[t] && born[t] <= last[o])
            .map(|&o| (offsets[o], offsets[o] + ((lens[o] + 3) & !3)))
            .collect();
        busy.sort();
        let mut at = 0u32;
        for (s, e) in busy {
            if at + len <= s {
                break;
            }
            at = at.max(e);
        }
        offsets[t] = at;
        placed.push(t);
    }
    let arena = (0..lens.len())
        .map(|t| offsets[t] + lens[t])
        .max()
        .unwrap_or(0);
    (offsets, arena)
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
    fn dag_plan_keeps_live_tensors_apart() {
        // 0 → 1 → 2, 1 + 2 → 3 (tensor 1 stays live across op 1).
        let lens = [10, 20, 20, 20];
        let born = [0, 0, 1, 2];
        let last = [0, 2, 2, usize::MAX];
        let (off, arena) = plan_dag(&lens, &born, &last);
        let span = |t: usize| off[t]..off[t] + lens[t];
        let overlap =
            |a: usize, b: usize| span(a).start < span(b).end && span(b).start < span(a).end;
        assert!(!overlap(1, 2) && !overlap(1, 3) && !overlap(2, 3) && !overlap(0, 1));
        assert!(arena <= 60);
    }

    #[test]
    fn act_quant_covers_zero_and_range() {
        let a = ActQuant::from_range(0.0, 6.0);
        assert_eq!(a.zero_point, -128);
        assert!((a.scale - 6.0 / 255.0).abs() < 1e-7);
        let b = ActQuant::from_range(-1.0, 1.0);
        assert!((b.zero_point).abs() <= 1);
    }

    #[test]
    fn calibration_covers_every_image_and_refuses_ragged_sets() {
        // Activations: the image itself and its negation; 7 images over the threads.
        let images: Vec<u8> = (0..14).collect();
        let acts = |img: &[u8]| {
            let v: Vec<f32> = img.iter().map(|&p| p as f32).collect();
            vec![v.clone(), v.iter().map(|x| -x).collect()]
        };
        let c = calibrate(&images, 2, acts).unwrap();
        assert_eq!(c.images, 7);
        assert_eq!(c.ranges, vec![(0.0, 13.0), (-13.0, 0.0)]);
        assert!(calibrate(&images[..3], 2, acts).is_err());
        assert!(calibrate(&[], 2, acts).is_err());
    }
}
