//! PixelCNN on the core: post-training quantization of a [`PixelCnnF`] into
//! a density `.tinf`, and everything that runs such a blob on the host —
//! test-set NLL, sampling (with a PNG grid), anomaly scores and AUROC.
//!
//! Like the classifier path, calibration uses *training* images only, and
//! every figure about the int8 model comes from the `tinyinfer` core, the
//! same code the firmware runs.

use anyhow::{bail, ensure, Context, Result};
use serde::Serialize;
use tinyinfer::format::{
    BernoulliHead, Family, Mask, ModelRepr, OpKind, OpRepr, TensorRepr, MAX_ABS_BIAS, MAX_OPS,
    MAX_TENSORS,
};
use tinyinfer::models::DensityModel;
use tinyinfer::rng::Pcg32;

use crate::export::AlignedBlob;
use crate::pixelcnn::float::{ConvF, Mask as FMask, PixelCnnF};
use crate::quantize::{i32_bytes, push_aligned, quantize_weights, requant_pair, ActQuant};

/// Per-activation `(min, max)` in [`PixelCnnF::forward_all`] order.
pub fn calibrate(net: &PixelCnnF, images: &[u8]) -> Result<Vec<(f32, f32)>> {
    let px = net.side * net.side;
    ensure!(
        px > 0 && !images.is_empty() && images.len().is_multiple_of(px),
        "calibration set is empty or ragged"
    );
    ensure!(
        images.iter().all(|&p| p <= 1),
        "calibration images must be binary"
    );
    let n = images.len() / px;
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n);
    let per = n.div_ceil(threads);
    let parts: Vec<Vec<(f32, f32)>> = std::thread::scope(|s| {
        let hs: Vec<_> = images
            .chunks(per * px)
            .map(|imgs| {
                s.spawn(move || {
                    let mut r: Vec<(f32, f32)> = Vec::new();
                    for img in imgs.chunks(px) {
                        let acts = net.forward_all(img);
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
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
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
    Ok(ranges)
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

fn core_mask(m: FMask) -> Mask {
    match m {
        FMask::None => Mask::None,
        FMask::A => Mask::A,
        FMask::B => Mask::B,
    }
}

/// Quantizes `net` with activation ranges `ranges` (from [`calibrate`]).
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
                let (wq, ws) = quantize_weights(&c.weight, c.out_c);
                let mut bias = Vec::with_capacity(c.out_c);
                let mut mult = Vec::with_capacity(c.out_c);
                let mut shift = Vec::with_capacity(c.out_c);
                for (&wsc, &b) in ws.iter().zip(&c.bias) {
                    let acc_scale = qi.scale as f64 * wsc as f64;
                    let bq = (b as f64 / acc_scale).round();
                    if bq.abs() > MAX_ABS_BIAS as f64 {
                        bail!("{what}: bias {b} does not fit the accumulator");
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

/// The checked density driver of a blob.
pub fn density(blob: &AlignedBlob) -> Result<DensityModel<'_>> {
    let model = blob.model()?;
    DensityModel::new(model).map_err(|e| anyhow::anyhow!("not a usable density model: {e}"))
}

/// NLL of every image through the core, in 2⁻¹⁶ nats (parallel, one arena per thread).
pub fn core_nll(blob: &AlignedBlob, images: &[u8]) -> Result<Vec<u64>> {
    let dm = density(blob)?;
    crate::eval::par_over_images(images, dm.pixels(), 1, dm.arena_len(), |arena, img, o| {
        o[0] = dm
            .nll(img, arena)
            .map_err(|e| anyhow::anyhow!("core: {e}"))?
            .0;
        Ok(())
    })
}

/// Mean NLL in nats of fixed-point NLLs.
pub fn mean_nats(nll: &[u64]) -> f64 {
    nll.iter().map(|&v| v as f64).sum::<f64>() / BernoulliHead::NLL_ONE / nll.len().max(1) as f64
}

/// `count` images sampled through the core, seeds `seed, seed + 1, …`
/// (incremental sampling; `full` recomputes the network per pixel).
pub fn sample_images(blob: &AlignedBlob, seed: u64, count: usize, full: bool) -> Result<Vec<u8>> {
    let dm = density(blob)?;
    let px = dm.pixels();
    let mut out = vec![0u8; px * count];
    let mut arena = vec![0u8; dm.arena_len().max(dm.sample_arena_len())];
    for (i, img) in out.chunks_mut(px).enumerate() {
        let mut rng = Pcg32::seeded(seed + i as u64);
        let r = if full {
            dm.sample_full(&mut rng, img, &mut arena)
        } else {
            dm.sample(&mut rng, img, &mut arena)
        };
        r.map_err(|e| anyhow::anyhow!("core: {e}"))?;
    }
    Ok(out)
}

/// Writes binary images as a grayscale PNG grid, `cols` wide, 1 px gutters,
/// each pixel scaled by `zoom` (atomically, like every export).
pub fn write_png_grid(
    path: &std::path::Path,
    images: &[u8],
    side: usize,
    cols: usize,
    zoom: usize,
) -> Result<()> {
    let px = side * side;
    ensure!(
        px > 0 && !images.is_empty() && images.len().is_multiple_of(px),
        "no images to draw"
    );
    let n = images.len() / px;
    let cols = cols.clamp(1, n);
    let rows = n.div_ceil(cols);
    let cell = side * zoom + 1;
    let (w, h) = (cols * cell + 1, rows * cell + 1);
    let mut canvas = vec![96u8; w * h];
    for (i, img) in images.chunks(px).enumerate() {
        let (r, c) = (i / cols, i % cols);
        for y in 0..side * zoom {
            for x in 0..side * zoom {
                let v = img[(y / zoom) * side + x / zoom];
                canvas[(1 + r * cell + y) * w + 1 + c * cell + x] = if v == 1 { 255 } else { 0 };
            }
        }
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, w as u32, h as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().context("PNG header")?;
        wr.write_image_data(&canvas).context("PNG data")?;
    }
    crate::export::write_atomic(path, &bytes)
}

/// Area under the ROC curve for scores where higher means "anomalous":
/// the probability that a random anomaly outscores a random normal, ties
/// counting one half (Mann–Whitney U).
pub fn auroc(normal: &[f64], anomalous: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = normal
        .iter()
        .map(|&s| (s, false))
        .chain(anomalous.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Average ranks over ties.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let avg = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg * all[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let (na, nn) = (anomalous.len() as f64, normal.len() as f64);
    (rank_sum - na * (na + 1.0) / 2.0) / (na * nn)
}

/// What `tinyinfer eval` reports for a density model.
#[derive(Clone, Debug, Serialize)]
pub struct DensityEval {
    /// The blob.
    pub model: String,
    /// Mean test NLL of the int8 model through the core, nats per image.
    pub int8_nll_nats: f64,
    /// Mean test NLL of the float model (with `--checkpoint`).
    pub float_nll_nats: Option<f64>,
    /// `int8 − float`, nats.
    pub quantization_loss_nats: Option<f64>,
    /// Stored parameters.
    pub params: usize,
    /// Multiply-accumulates of one scored image (masked taps skipped).
    pub macs: u64,
    /// Blob bytes.
    pub blob_bytes: usize,
    /// Arena bytes for scoring.
    pub arena_bytes: usize,
    /// Arena bytes for incremental sampling.
    pub sample_arena_bytes: usize,
    /// Test images scored.
    pub test_images: usize,
    /// Seconds the core took on the host.
    pub host_seconds: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_of_separated_tied_and_reversed_scores() {
        assert_eq!(auroc(&[1.0, 2.0], &[3.0, 4.0]), 1.0);
        assert_eq!(auroc(&[3.0, 4.0], &[1.0, 2.0]), 0.0);
        assert_eq!(auroc(&[1.0, 1.0], &[1.0, 1.0]), 0.5);
        assert!((auroc(&[1.0, 3.0], &[2.0, 4.0]) - 0.75).abs() < 1e-12);
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
    use crate::pixelcnn::data::{load_binarized_mnist, BinSplit};
    let net = PixelCnnF::load_json(checkpoint)
        .with_context(|| format!("loading PixelCNN checkpoint {}", checkpoint.display()))?;
    let train = load_binarized_mnist(data_dir, BinSplit::Train)?;
    let calib = calib.clamp(1, train.len());
    let cal_images = train.take(calib);
    let ranges = calibrate(&net, &cal_images.pixels)?;
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

/// Test-set NLL of a density blob through the core (and of the float
/// checkpoint with burn, when given).
pub fn evaluate(
    model_path: &std::path::Path,
    blob: &AlignedBlob,
    checkpoint: Option<&std::path::Path>,
    data_dir: &std::path::Path,
    limit: Option<usize>,
) -> Result<DensityEval> {
    use crate::pixelcnn::data::{load_binarized_mnist, BinSplit};
    let test = load_binarized_mnist(data_dir, BinSplit::Test)?;
    let test = match limit {
        Some(n) => test.take(n.clamp(1, test.len())),
        None => test,
    };
    let dm = density(blob)?;
    let t0 = std::time::Instant::now();
    let nll = core_nll(blob, &test.pixels)?;
    let host_seconds = t0.elapsed().as_secs_f64();
    let int8 = mean_nats(&nll);
    let float = match checkpoint {
        Some(c) => Some(crate::pixelcnn::train::float_test_nll(c, &test.pixels)?),
        None => None,
    };
    let params = (0..dm.model().op_count())
        .filter_map(|i| dm.model().op(i))
        .map(|op| dm.model().weights(&op).len() + dm.model().bias(&op).len())
        .sum();
    Ok(DensityEval {
        model: model_path.display().to_string(),
        int8_nll_nats: int8,
        float_nll_nats: float,
        quantization_loss_nats: float.map(|f| int8 - f),
        params,
        macs: dm.model().macs(),
        blob_bytes: dm.model().as_bytes().len(),
        arena_bytes: dm.arena_len(),
        sample_arena_bytes: dm.sample_arena_len(),
        test_images: nll.len(),
        host_seconds,
    })
}

/// What `tinyinfer anomaly` reports.
#[derive(Clone, Debug, Serialize)]
pub struct AnomalyReport {
    /// The blob.
    pub model: String,
    /// MNIST test images scored (in-distribution).
    pub normal_images: usize,
    /// Fashion-MNIST test images scored (out-of-distribution).
    pub anomalous_images: usize,
    /// Seed of the stochastic binarization of both sets.
    pub binarize_seed: u64,
    /// Mean NLL of the MNIST images, nats.
    pub normal_mean_nll_nats: f64,
    /// Mean NLL of the Fashion-MNIST images, nats.
    pub anomalous_mean_nll_nats: f64,
    /// Area under the ROC curve with the NLL as the anomaly score.
    pub auroc: f64,
}

/// Scores MNIST test images (normal) against Fashion-MNIST test images
/// (anomalies), both binarized the same way, by int8 NLL through the core.
pub fn anomaly(
    model_path: &std::path::Path,
    blob: &AlignedBlob,
    data_dir: &std::path::Path,
    fashion_dir: &std::path::Path,
    count: usize,
    seed: u64,
) -> Result<AnomalyReport> {
    use crate::pixelcnn::data::{binarize, load_mnist_images};
    let px = density(blob)?.pixels();
    let mnist = load_mnist_images(data_dir, true)?;
    let fashion = crate::data::load_fashion_mnist(fashion_dir, crate::data::Split::Test)?;
    let n = count.clamp(1, (mnist.len() / px).min(fashion.len()));
    // Evenly spaced picks (both test sets are in a fixed order).
    let pick = |all: &[u8], total: usize| -> Vec<u8> {
        let step = (total / n).max(1);
        (0..n)
            .flat_map(|i| all[i * step * px..][..px].to_vec())
            .collect()
    };
    let normal = binarize(&pick(&mnist, mnist.len() / px), seed);
    let anomalous = binarize(&pick(&fashion.images, fashion.len()), seed.wrapping_add(1));
    let to_nats = |v: Vec<u64>| -> Vec<f64> {
        v.into_iter()
            .map(|x| x as f64 / BernoulliHead::NLL_ONE)
            .collect()
    };
    let sn = to_nats(core_nll(blob, &normal)?);
    let sa = to_nats(core_nll(blob, &anomalous)?);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    Ok(AnomalyReport {
        model: model_path.display().to_string(),
        normal_images: sn.len(),
        anomalous_images: sa.len(),
        binarize_seed: seed,
        normal_mean_nll_nats: mean(&sn),
        anomalous_mean_nll_nats: mean(&sa),
        auroc: auroc(&sn, &sa),
    })
}
