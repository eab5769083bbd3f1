//! What `tinyinfer inspect` reports: layers, shapes, MACs, parameter, blob
//! and arena bytes. [`inspect_graph`] describes a model whose body is a graph
//! of tensors and ops (classifier, density); a family with another body
//! describes itself in the same [`Inspect`] form.

use anyhow::{Context, Result};
use serde::Serialize;
use tinyinfer::format::{Mask, Model, OpKind};

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

/// Describes a checked graph model, op by op.
///
/// # Errors
/// An op or tensor index the checked model does not have (never, after `new_checked`).
pub fn inspect_graph(model: &Model<'_>) -> Result<Inspect> {
    let mut layers = Vec::new();
    for i in 0..model.op_count() {
        let op = model.op(i).context("op index")?;
        let ti = model.tensor(op.input as usize).context("tensor index")?;
        let to = model.tensor(op.output as usize).context("tensor index")?;
        let parts = model.parts(&op);
        let (m, s) = (parts.multiplier, parts.shift);
        // Weights in the pairs layout: two per word, four bytes per pair.
        let (w, b) = (
            parts.weights.len() + 2 * parts.pairs.len(),
            parts.bias.len(),
        );
        let w_bytes = parts.weights.len() + 4 * parts.pairs.len();
        layers.push(LayerInfo {
            index: i,
            op: match (op.kind, op.mask()) {
                (OpKind::Conv2d, Some(m @ (Mask::A | Mask::B))) => format!("conv2d/{m:?}"),
                (OpKind::Conv2d, _) if !parts.pairs.is_empty() => "conv2d/pairs".to_string(),
                _ => op.kind.name().to_string(),
            },
            input: [ti.h, ti.w, ti.c],
            output: [to.h, to.w, to.c],
            macs: model.op_macs(&op),
            params: w + b,
            param_bytes: w_bytes + 4 * b + 4 * (m.len() + s.len()),
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
