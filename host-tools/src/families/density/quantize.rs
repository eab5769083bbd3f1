//! Post-training quantization of a PixelCNN ([`PixelCnnF`]) into a density
//! `.tinf`: calibration on *training* images, int8 masked convs and adds, the
//! DAG buffer plan, the Bernoulli head tables and the self-test records.

use anyhow::{ensure, Context, Result};
use serde::Serialize;
use tinyinfer::format::{
    BernoulliHead, Family, Mask, ModelRepr, OpKind, OpRepr, TensorRepr, MAX_OPS, MAX_TENSORS,
};

use super::data::{load_binarized_mnist, BinSplit};
use super::float::{ConvF, Mask as FMask, PixelCnnF};
use super::run::density;
use crate::common::blob::AlignedBlob;
use crate::common::calibrate::{
    calibrate, i32_bytes, plan_dag, push_aligned, quantize_weighted, requant_pair, ActQuant,
};

/// Per-activation `(min, max)` in [`PixelCnnF::forward_all`] order.
///
/// # Errors
/// Non-binary images, or as [`calibrate`].
pub fn calibrate_net(net: &PixelCnnF, images: &[u8]) -> Result<Vec<(f32, f32)>> {
    ensure!(
        images.iter().all(|&p| p <= 1),
        "calibration images must be binary"
    );
    Ok(calibrate(images, net.side * net.side, |img| net.forward_all(img))?.ranges)
}

/// A quantized density model ready to emit.
#[derive(Clone, Debug)]
pub struct DensityQuantized {
    /// Tensor records (tensor 0 = the image).
    pub tensors: Vec<TensorRepr>,
    /// Op records.
    pub ops: Vec<OpRepr>,
    /// DATA section.
    pub data: Vec<u8>,
    /// HEAD section (the Bernoulli tables).
    pub head: Vec<u8>,
    /// Exact arena bytes of the buffer plan.
    pub arena_len: u32,
    /// Stored parameters (weights including masked zeros, plus biases).
    pub params: usize,
}

impl DensityQuantized {
    /// Serializes to a blob, optionally with self-test records.
    pub fn to_bytes(&self, selftest: Option<(u32, u32, &[u8])>) -> Result<Vec<u8>> {
        let repr = ModelRepr {
            family: Family::Density,
            arena_len: self.arena_len,
            tensors: &self.tensors,
            ops: &self.ops,
            data: &self.data,
            selftest,
            head: Some(&self.head),
            lm: None,
            vocab: None,
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf)
            .map_err(|e| anyhow::anyhow!("emitting model: {e}"))?;
        Ok(buf)
    }
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// The HEAD section for logits quantized as `scale · (q − zp)`: per code,
/// `−log σ(l)` and `−log(1 − σ(l))` in 2⁻¹⁶ nats, and `σ(l)` in 2⁻³².
pub fn bernoulli_head(scale: f32, zp: i32) -> Vec<u8> {
    let mut b = vec![0u8; BernoulliHead::LEN];
    b[0..4].copy_from_slice(&BernoulliHead::KIND.to_le_bytes());
    for i in 0..256usize {
        let l = scale as f64 * ((i as i32 - 128 - zp) as f64);
        let fixed = |v: f64| (v * BernoulliHead::NLL_ONE).round().min(u32::MAX as f64) as u32;
        let p = (1.0 / (1.0 + (-l).exp())) * 4_294_967_296.0;
        let vals = [
            fixed(softplus(-l)),
            fixed(softplus(l)),
            p.round().min(u32::MAX as f64) as u32,
        ];
        for (t, v) in vals.into_iter().enumerate() {
            let at = 16 + t * 1024 + 4 * i;
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    b
}

fn core_mask(m: FMask) -> Mask {
    match m {
        FMask::None => Mask::None,
        FMask::A => Mask::A,
        FMask::B => Mask::B,
    }
}

/// Quantizes `net` with activation ranges `ranges` (from [`calibrate_net`]).
pub fn quantize(net: &PixelCnnF, ranges: &[(f32, f32)]) -> Result<DensityQuantized> {
    net.validate().context("invalid float model")?;
    let side = net.side;
    ensure!((1..=255).contains(&side), "image side {side} unsupported");
    // Activations in forward_all order, with their producers.
    enum Node<'a> {
        Conv(&'a ConvF, usize),
        Add(usize, usize),
    }
    let mut nodes: Vec<(Node, usize)> = Vec::new(); // (op, out channels)
    let mut a = 0usize; // tensor index of the running residual stream
    nodes.push((Node::Conv(&net.first, 0), net.first.out_c));
    a += 1;
    for b in &net.blocks {
        let t = nodes.len() + 1;
        nodes.push((Node::Conv(&b.reduce, a), b.reduce.out_c));
        nodes.push((Node::Conv(&b.conv, t), b.conv.out_c));
        nodes.push((Node::Conv(&b.expand, t + 1), b.expand.out_c));
        nodes.push((Node::Add(a, t + 2), b.expand.out_c));
        a = t + 3;
    }
    for h in &net.head {
        nodes.push((Node::Conv(h, nodes.len()), h.out_c));
    }
    ensure!(
        ranges.len() == nodes.len(),
        "calibration has {} activations, the model {}",
        ranges.len(),
        nodes.len()
    );
    ensure!(
        nodes.len() < MAX_OPS && nodes.len() < MAX_TENSORS,
        "too many layers"
    );
    // Quantization per tensor: the image is its own value.
    let mut q = vec![ActQuant {
        scale: 1.0,
        zero_point: 0,
    }];
    q.extend(ranges.iter().map(|&(lo, hi)| ActQuant::from_range(lo, hi)));
    // Lifetimes for the plan: tensor t+1 is born at op t.
    let n_t = nodes.len() + 1;
    let mut born = vec![0usize; n_t];
    let mut last = vec![0usize; n_t];
    for (i, (node, _)) in nodes.iter().enumerate() {
        born[i + 1] = i;
        let reads: Vec<usize> = match node {
            Node::Conv(_, x) => vec![*x],
            Node::Add(x, y) => vec![*x, *y],
        };
        for r in reads {
            last[r] = last[r].max(i);
        }
    }
    last[n_t - 1] = usize::MAX;
    let mut lens = vec![(side * side) as u32];
    lens.extend(nodes.iter().map(|(_, c)| (side * side * c) as u32));
    let (offsets, arena_len) = plan_dag(&lens, &born, &last);
    let chans: Vec<usize> = std::iter::once(1)
        .chain(nodes.iter().map(|(_, c)| *c))
        .collect();
    let tensors: Vec<TensorRepr> = (0..n_t)
        .map(|t| TensorRepr {
            h: side as u16,
            w: side as u16,
            c: chans[t] as u16,
            zero_point: q[t].zero_point,
            scale: q[t].scale,
            arena_offset: offsets[t],
        })
        .collect();

    let mut data = Vec::new();
    let mut ops = Vec::new();
    let mut params = 0;
    for (i, (node, _)) in nodes.iter().enumerate() {
        let out = i + 1;
        let qo = q[out];
        let what = format!("op {i}");
        match node {
            Node::Conv(c, input) => {
                let qi = q[*input];
                let mut op = OpRepr::new(OpKind::Conv2d, *input as u8, out as u8);
                op.kernel = c.k as u8;
                op.stride = 1;
                op.pad = (c.k / 2) as u8;
                op.aux[0] = core_mask(c.mask) as u8;
                params += quantize_weighted(
                    &mut op, &mut data, &c.weight, &c.bias, c.out_c, qi, qo, &what,
                )?;
                if c.relu {
                    op.act_min = qo.zero_point.clamp(-128, 127) as i8;
                }
                ops.push(op);
            }
            Node::Add(x, y) => {
                let (qa, qb) = (q[*x], q[*y]);
                let twice_max = 2.0 * (qa.scale as f64).max(qb.scale as f64);
                let (ma, sa) = requant_pair(qa.scale as f64 / twice_max, &what)?;
                let (mb, sb) = requant_pair(qb.scale as f64 / twice_max, &what)?;
                let shifted = (1u64 << tinyinfer::kernels::reference::ADD_LEFT_SHIFT) as f64;
                let (mo, so) = requant_pair(twice_max / (shifted * qo.scale as f64), &what)?;
                let mut op = OpRepr::new(OpKind::Add, *x as u8, out as u8);
                op.aux[0] = *y as u8;
                op.requant = push_aligned(&mut data, &i32_bytes(&[ma, mb, mo, sa, sb, so]));
                // a' = relu(a + u)
                op.act_min = qo.zero_point.clamp(-128, 127) as i8;
                ops.push(op);
            }
        }
    }
    let lq = q[n_t - 1];
    Ok(DensityQuantized {
        tensors,
        ops,
        data,
        head: bernoulli_head(lq.scale, lq.zero_point),
        arena_len,
        params,
    })
}

/// Self-test records: each image followed by the logits the host core computes.
pub fn selftest_records(blob: &[u8], images: &[u8]) -> Result<(u32, u32, Vec<u8>)> {
    let ab = AlignedBlob::new(blob);
    let dm = density(&ab)?;
    let px = dm.pixels();
    let mut arena = vec![0u8; dm.arena_len()];
    let mut recs = Vec::new();
    for img in images.chunks(px) {
        let logits = dm
            .logits(img, &mut arena)
            .map_err(|e| anyhow::anyhow!("core: {e}"))?;
        recs.extend_from_slice(img);
        recs.extend_from_slice(bytemuck::cast_slice(logits));
        while recs.len() % 4 != 0 {
            recs.push(0);
        }
    }
    Ok((px as u32, px as u32, recs))
}

/// What `tinyinfer export` did for a PixelCNN checkpoint.
#[derive(Clone, Debug, Serialize)]
pub struct DensityExport {
    /// The blob's bytes.
    #[serde(skip)]
    pub blob: Vec<u8>,
    /// Stored parameters.
    pub params: usize,
    /// Arena bytes for scoring.
    pub arena_bytes: usize,
    /// Arena bytes for incremental sampling.
    pub sample_arena_bytes: usize,
    /// Training images used for calibration.
    pub calibration_images: usize,
    /// Self-test cases stored.
    pub selftest_cases: usize,
}

/// Calibrates on the first `calib` binarized-MNIST *training* images,
/// quantizes, and builds the blob with `selftest` test images and the
/// logits the host core computes for them.
pub fn export(
    checkpoint: &std::path::Path,
    data_dir: &std::path::Path,
    calib: usize,
    selftest: usize,
) -> Result<DensityExport> {
    let net = PixelCnnF::load_json(checkpoint)
        .with_context(|| format!("loading PixelCNN checkpoint {}", checkpoint.display()))?;
    let train = load_binarized_mnist(data_dir, BinSplit::Train)?;
    let calib = calib.clamp(1, train.len());
    let cal_images = train.take(calib);
    let ranges = calibrate_net(&net, &cal_images.pixels)?;
    let q = quantize(&net, &ranges)?;
    let plain = q.to_bytes(None)?;
    let (recs, cases) = if selftest > 0 {
        let test = load_binarized_mnist(data_dir, BinSplit::Test)?;
        // Spread over the classes: the test set is ordered by digit.
        let step = (test.len() / selftest.min(test.len())).max(1);
        let imgs: Vec<u8> = (0..selftest.min(test.len()))
            .flat_map(|i| test.image(i * step).to_vec())
            .collect();
        let (il, ol, recs) = selftest_records(&plain, &imgs)?;
        (Some((il, ol, recs)), selftest.min(test.len()))
    } else {
        (None, 0)
    };
    let blob = match &recs {
        Some((il, ol, r)) => q.to_bytes(Some((*il, *ol, r)))?,
        None => plain,
    };
    let ab = AlignedBlob::new(&blob);
    let dm = density(&ab)?;
    Ok(DensityExport {
        params: q.params,
        arena_bytes: dm.arena_len(),
        sample_arena_bytes: dm.sample_arena_len(),
        calibration_images: calib,
        selftest_cases: cases,
        blob,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_tables_are_the_bernoulli_nll() {
        let b = bernoulli_head(0.25, -3);
        let at = |t: usize, q: i32| {
            let i = 16 + t * 1024 + 4 * (q + 128) as usize;
            u32::from_le_bytes(b[i..i + 4].try_into().unwrap())
        };
        // Logit 0 at q = -3: both NLLs are ln 2, P(1) = 1/2.
        assert_eq!(at(0, -3), (2f64.ln() * 65536.0).round() as u32);
        assert_eq!(at(1, -3), at(0, -3));
        assert_eq!(at(2, -3), 1u32 << 31);
        // Larger logits make a 1 likelier.
        assert!(at(0, 100) < at(0, 0) && at(1, 100) > at(1, 0) && at(2, 100) > at(2, 0));
    }
}
