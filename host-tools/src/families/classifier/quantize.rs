//! Post-training static quantization of a DiracNet ([`FoldedNet`]) into a `.tinf` model.
//!
//! Calibration runs the float model over a subset of the *training* set and
//! records each activation's range. From those ranges this module computes
//! everything the device will need — int8 weights (per-channel symmetric),
//! int32 biases, requantization multipliers and shifts, clamps, zero points
//! and the buffer plan — so the device only reads them.

use anyhow::{ensure, Context, Result};
use tinyinfer::format::{Family, ModelRepr, OpKind, OpRepr, TensorRepr};

use super::float::{normalize, FoldedNet, Layer, Shape, INPUT_MEAN, INPUT_STD};
use crate::common::calibrate::{
    calibrate, i32_bytes, plan_chain, push_aligned, quantize_weighted, requant_pair, ActQuant,
    Calibration,
};

/// The input quantization that makes the int8 input exactly `pixel − 128`.
pub fn input_quant() -> ActQuant {
    ActQuant {
        scale: 1.0 / INPUT_STD,
        zero_point: INPUT_MEAN - 128,
    }
}

/// Runs the float model over `images` (raw u8 pixels) and records the range
/// of every layer's output (index `i` = output of layer `i`).
///
/// # Errors
/// As [`calibrate`].
pub fn calibrate_net(net: &FoldedNet, images: &[u8]) -> Result<Calibration> {
    let px = net.input.0 * net.input.1 * net.input.2;
    calibrate(images, px, |img| {
        let mut acts = net.forward_all(&normalize(img));
        acts.remove(0);
        acts
    })
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
    let mut q = vec![input_quant()];
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
                params += quantize_weighted(op, &mut data, w, b, out, qi, qo, &what)?;
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
    fn input_quant_makes_the_mean_pixel_zero() {
        let i = input_quant();
        // pixel 73 (the training mean) is real 0: q = 73 − 128 = −55 = zero point.
        assert_eq!(i.zero_point, -55);
    }
}

/// The weight layouts `--conv-layout` chooses between.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConvLayoutArg {
    /// One int8 per weight (every target).
    #[default]
    Int8,
    /// Every unmasked conv with a multiple of 4 input channels widened to
    /// `i16` pairs for the Cortex-M4/M33 DSP kernels (`SMLAD` without
    /// unpacking): those layers' weights take twice the flash; other
    /// targets run them on the portable reference kernel.
    Pairs,
}

/// Rewrites a classifier blob with every eligible conv's weights in
/// `layout` (unmasked, input channels a multiple of 4; the others stay
/// int8), and the DATA section rebuilt in op order so that no stale bytes
/// remain. The values do not change: the core gives the same outputs.
///
/// # Errors
/// A blob the core refuses, or one that is not a classifier.
pub fn with_conv_layout(blob: &[u8], layout: ConvLayoutArg) -> Result<Vec<u8>> {
    use tinyinfer::format::{ConvLayout, Mask, SectionKind, SelfTest, NONE};
    use tinyinfer::kernels::reference::{pair_weight, to_pairs};
    let ab = crate::common::blob::AlignedBlob::new(blob);
    let model = ab.model()?;
    ensure!(
        model.family() == Family::Classifier,
        "--conv-layout pairs is for classifiers (the density and language drivers read int8 weights)"
    );
    let tensors = (0..model.tensor_count())
        .map(|i| model.tensor(i).context("tensor record"))
        .collect::<Result<Vec<_>>>()?;
    let mut ops = Vec::with_capacity(model.op_count());
    let mut data = Vec::new();
    for i in 0..model.op_count() {
        let mut op = model.op(i).context("op record")?;
        let parts = model.parts(&op);
        if op.weights != NONE {
            // The int8 values, whatever the layout they are stored in.
            let int8: Vec<i8> =
                if op.kind == OpKind::Conv2d && op.conv_layout() == Some(ConvLayout::Pairs) {
                    (0..2 * parts.pairs.len())
                        .map(|j| pair_weight(parts.pairs, j) as i8)
                        .collect()
                } else {
                    parts.weights.to_vec()
                };
            let pairs = layout == ConvLayoutArg::Pairs
                && op.kind == OpKind::Conv2d
                && op.mask() == Some(Mask::None)
                && parts.input.c % 4 == 0;
            let bytes: Vec<u8> = if pairs {
                let words: Vec<i32> = int8
                    .chunks_exact(4)
                    .flat_map(|c| to_pairs([c[0], c[1], c[2], c[3]]))
                    .collect();
                i32_bytes(&words)
            } else {
                bytemuck::cast_slice(&int8).to_vec()
            };
            if op.kind == OpKind::Conv2d {
                op.aux[1] = if pairs {
                    ConvLayout::Pairs
                } else {
                    ConvLayout::Int8
                } as u8;
            }
            op.weights = push_aligned(&mut data, &bytes);
        }
        if op.bias != NONE {
            op.bias = push_aligned(&mut data, &i32_bytes(parts.bias));
        }
        if op.requant != NONE {
            let rq: Vec<i32> = parts
                .multiplier
                .iter()
                .chain(parts.shift)
                .copied()
                .collect();
            op.requant = push_aligned(&mut data, &i32_bytes(&rq));
        }
        ops.push(op);
    }
    let selftest = model.section(SectionKind::SelfTest).map(|s| {
        let word = |at: usize| u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]]);
        (word(4), word(8), &s[SelfTest::HEADER_LEN..])
    });
    let repr = ModelRepr {
        family: Family::Classifier,
        arena_len: model.arena_len() as u32,
        tensors: &tensors,
        ops: &ops,
        data: &data,
        selftest,
        head: None,
        lm: None,
        vocab: None,
    };
    let mut out = vec![0u8; repr.buffer_len()];
    let n = repr.emit(&mut out).context("emitting the relaid model")?;
    out.truncate(n);
    crate::common::blob::AlignedBlob::new(&out)
        .model()
        .context("the relaid model fails the core's checks (bug)")?;
    Ok(out)
}
