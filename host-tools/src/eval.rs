//! Running exported models through the core on the host, and reports about them.

use anyhow::{Context, Result};
use serde::Serialize;
use tinyinfer::format::{Model, OpKind};
use tinyinfer::models::Classifier;

use crate::export::AlignedBlob;

/// Runs `f(arena, image, out)` over every `px`-byte image in parallel, one
/// arena of `arena_len` bytes per thread, `out_len` outputs per image.
pub fn par_over_images<T: Default + Clone + Send>(
    images: &[u8],
    px: usize,
    out_len: usize,
    arena_len: usize,
    f: impl Fn(&mut [u8], &[u8], &mut [T]) -> Result<()> + Sync,
) -> Result<Vec<T>> {
    anyhow::ensure!(
        px > 0 && images.len().is_multiple_of(px),
        "images are not a whole number of {px}-pixel inputs"
    );
    let n = images.len() / px;
    let mut out = vec![T::default(); n * out_len];
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n.max(1));
    let per = n.div_ceil(threads.max(1)).max(1);
    let f = &f;
    std::thread::scope(|s| -> Result<()> {
        let hs: Vec<_> = images
            .chunks(per * px)
            .zip(out.chunks_mut((per * out_len).max(1)))
            .map(|(imgs, o)| {
                s.spawn(move || -> Result<()> {
                    let mut arena = vec![0u8; arena_len];
                    for (img, v) in imgs.chunks(px).zip(o.chunks_mut(out_len.max(1))) {
                        f(&mut arena, img, v)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in hs {
            h.join()
                .map_err(|_| anyhow::anyhow!("evaluation thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(out)
}

/// int8 scores of every image, computed by the core (in parallel, one arena per thread).
pub fn core_scores(blob: &AlignedBlob, images: &[u8]) -> Result<(Vec<i8>, usize)> {
    let model = blob.model()?;
    let clf = Classifier::new(model).map_err(|e| anyhow::anyhow!("not a classifier: {e}"))?;
    let (px, classes) = (clf.input_len(), clf.classes());
    let scores = par_over_images(images, px, classes, model.arena_len(), |arena, img, o| {
        let p = clf
            .classify(img, arena)
            .map_err(|e| anyhow::anyhow!("core: {e}"))?;
        o.copy_from_slice(p.scores);
        Ok(())
    })?;
    Ok((scores, classes))
}

/// Argmax per row (lowest index among ties, as the core does).
pub fn argmax_rows<T: PartialOrd + Copy>(v: &[T], classes: usize) -> Vec<usize> {
    v.chunks(classes)
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(0, |b, (i, x)| if *x > r[b] { i } else { b })
        })
        .collect()
}

/// Fraction of predictions equal to labels.
pub fn accuracy(pred: &[usize], labels: &[u8]) -> f64 {
    pred.iter()
        .zip(labels)
        .filter(|(p, l)| **p == **l as usize)
        .count() as f64
        / labels.len().max(1) as f64
}

/// `confusion[true][pred]`.
pub fn confusion(pred: &[usize], labels: &[u8], classes: usize) -> Vec<Vec<u32>> {
    let mut m = vec![vec![0u32; classes]; classes];
    for (&p, &l) in pred.iter().zip(labels) {
        if (l as usize) < classes && p < classes {
            m[l as usize][p] += 1;
        }
    }
    m
}

/// One layer as `inspect` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct LayerInfo {
    /// Op index.
    pub index: usize,
    /// Op name (with the mask of a causal conv, e.g. `conv2d/B`).
    pub op: String,
    /// Input shape (h, w, c).
    pub input: [u16; 3],
    /// Output shape (h, w, c).
    pub output: [u16; 3],
    /// Multiply-accumulates.
    pub macs: u64,
    /// Parameters (weights + biases).
    pub params: usize,
    /// Bytes of weights, biases and requantization data.
    pub param_bytes: usize,
    /// Kernel / stride / padding for convs.
    pub kernel: Option<[u8; 3]>,
}

/// What `inspect` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Inspect {
    /// Model family.
    pub family: String,
    /// Layers.
    pub layers: Vec<LayerInfo>,
    /// Parameters (weights + biases).
    pub params: usize,
    /// Multiply-accumulates per inference.
    pub macs: u64,
    /// Bytes of parameter data (weights, biases, requantization).
    pub param_bytes: usize,
    /// Blob bytes.
    pub blob_bytes: usize,
    /// Exact arena bytes.
    pub arena_bytes: usize,
    /// Self-test cases stored.
    pub selftest_cases: usize,
}

/// Describes a checked model.
pub fn inspect(model: &Model<'_>) -> Result<Inspect> {
    if model.family() == tinyinfer::format::Family::LanguageModel {
        return inspect_lm(model);
    }
    let mut layers = Vec::new();
    for i in 0..model.op_count() {
        let op = model.op(i).context("op index")?;
        let ti = model.tensor(op.input as usize).context("tensor index")?;
        let to = model.tensor(op.output as usize).context("tensor index")?;
        let (m, s) = model.requant(&op);
        let (w, b) = (model.weights(&op).len(), model.bias(&op).len());
        layers.push(LayerInfo {
            index: i,
            op: match (op.kind, op.mask()) {
                (
                    OpKind::Conv2d,
                    Some(m @ (tinyinfer::format::Mask::A | tinyinfer::format::Mask::B)),
                ) => {
                    format!("conv2d/{m:?}")
                }
                _ => op.kind.name().to_string(),
            },
            input: [ti.h, ti.w, ti.c],
            output: [to.h, to.w, to.c],
            macs: model.op_macs(&op),
            params: w + b,
            param_bytes: w + 4 * b + 4 * (m.len() + s.len()),
            kernel: (op.kind == OpKind::Conv2d).then_some([op.kernel, op.stride, op.pad]),
        });
    }
    Ok(Inspect {
        family: format!("{:?}", model.family()),
        params: layers.iter().map(|l| l.params).sum(),
        macs: model.macs(),
        param_bytes: layers.iter().map(|l| l.param_bytes).sum(),
        layers,
        blob_bytes: model.as_bytes().len(),
        arena_bytes: model.arena_len(),
        selftest_cases: model.selftest().map_or(0, |s| s.count()),
    })
}

/// A language model's stages per token, as layers with `1×1×n` shapes.
fn inspect_lm(model: &Model<'_>) -> Result<Inspect> {
    let spec = model.lm_spec().context("LM section")?;
    let w = |n: usize| [1u16, 1, n.min(u16::MAX as usize) as u16];
    let rq = |n: usize| 8 * n; // a multiplier and a shift per row
    let (v, d, k, h) = (spec.vocab, spec.emb_dim, spec.k, spec.top_hidden());
    let mut layers = vec![LayerInfo {
        index: 0,
        op: "embedding".into(),
        input: w(v),
        output: w(d),
        macs: 0,
        params: v * d,
        param_bytes: v * d + rq(v),
        kernel: None,
    }];
    for l in spec.layers() {
        let p = l.w_x.len() + l.w_h.len() + l.bias.len();
        layers.push(LayerInfo {
            index: layers.len(),
            op: "lstm".into(),
            input: w(l.input),
            output: w(l.hidden),
            macs: (l.w_x.len() + l.w_h.len()) as u64,
            params: p,
            param_bytes: l.w_x.len() + l.w_h.len() + 4 * l.bias.len() + 2 * rq(4 * l.hidden),
            kernel: None,
        });
    }
    layers.push(LayerInfo {
        index: layers.len(),
        op: format!("latent/{}", spec.head.name()),
        input: w(h),
        output: w(k * d),
        macs: spec.proj_w.len() as u64,
        params: spec.proj_w.len() + spec.proj_b.len(),
        param_bytes: spec.proj_w.len() + 4 * spec.proj_b.len() + rq(k * d),
        kernel: None,
    });
    if k > 1 {
        layers.push(LayerInfo {
            index: layers.len(),
            op: "prior".into(),
            input: w(h),
            output: w(k),
            macs: spec.prior_w.len() as u64,
            params: spec.prior_w.len() + spec.prior_b.len(),
            param_bytes: spec.prior_w.len() + 4 * k + rq(k),
            kernel: None,
        });
    }
    let sm = spec.vocab_softmaxes();
    layers.push(LayerInfo {
        index: layers.len(),
        op: format!("decoder×{sm} (tied)"),
        input: w(sm * d),
        output: w(v),
        macs: (sm * v * d) as u64,
        params: v,
        param_bytes: 4 * v + rq(v),
        kernel: None,
    });
    Ok(Inspect {
        family: format!("{:?}", model.family()),
        params: spec.params() as usize,
        macs: spec.macs_per_token(),
        param_bytes: layers.iter().map(|l| l.param_bytes).sum(),
        layers,
        blob_bytes: model.as_bytes().len(),
        arena_bytes: model.arena_len(),
        selftest_cases: 0,
    })
}

/// The table `inspect` prints.
pub fn inspect_table(r: &Inspect) -> String {
    let mut s = format!(
        "{:>3}  {:<16} {:>14} {:>14} {:>10} {:>8} {:>8}\n",
        "#", "op", "input", "output", "MACs", "params", "bytes"
    );
    let shape = |v: [u16; 3]| format!("{}x{}x{}", v[0], v[1], v[2]);
    for l in &r.layers {
        s += &format!(
            "{:>3}  {:<16} {:>14} {:>14} {:>10} {:>8} {:>8}\n",
            l.index,
            l.op,
            shape(l.input),
            shape(l.output),
            l.macs,
            l.params,
            l.param_bytes
        );
    }
    s += &format!(
        "family {}  params {}  MACs {}  parameter bytes {}  blob bytes {}  arena bytes {}  self-test cases {}\n",
        r.family, r.params, r.macs, r.param_bytes, r.blob_bytes, r.arena_bytes, r.selftest_cases
    );
    s
}
