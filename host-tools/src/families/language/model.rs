//! The LSTM language model in burn (flex backend), exported exactly into [`LmF`].
//!
//! Layout of the computation for one truncated-BPTT segment of `T` steps and `B` columns
//! (time-major: row `t * B + b` is step `t` of column `b`):
//!
//! * embedding lookup `E[x]` (`E` is `[V, d]`, optionally with whole rows dropped),
//!   locked dropout (one mask per column, shared over the `T` steps);
//! * per LSTM layer, step by step: `z_t = x_t W_ih + h_{t-1} W_hh + bias` (gate columns
//!   `i, f, g, o`, exactly [`LstmF`]'s row order); the inputs are kept as T separate
//!   `[B, ·]` tensors (slicing one `[T, B, ·]` tensor per step costs O(T²) in burn's
//!   backward, see `split_steps`); locked dropout between layers and on the output;
//! * the head on all `T·B` rows at once: latents `tanh(g W_p + b_p)` (`[N, K·d]`,
//!   component-major, exactly `proj_w`'s `[K][d][H]` rows), locked dropout on the latents,
//!   prior `log_softmax(g W_π + b_π)`, and the tied decoder `h E^T + b` as one
//!   `[N·K, d] × [d, V]` matmul (`E^T` is a strided view, no copy).
//!
//! The loss only needs the log-probability of each target: `log_softmax(z)_x` per row
//! ([`target_log_softmax`], value outside the autodiff graph, gradient attached through a
//! surrogate), and for MoS `logsumexp_k(log π_k + log p_k(x))` over the K components
//! (max-shifted with the max detached; burn has no logsumexp).

use anyhow::{ensure, Result};
use burn::module::{Module, Param, ParamId};
use burn::tensor::activation::{log_softmax, sigmoid, softmax};
use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::float::{HeadF, HeadKind, Level, LmF, LstmF};
use crate::common::trainer::tensor_vec;

/// Architecture hyper-parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LmConfig {
    /// Vocabulary size V.
    pub vocab: usize,
    /// Embedding (and head latent) size d.
    pub emb: usize,
    /// Hidden size of each LSTM layer, input first.
    pub hidden: Vec<usize>,
    /// Output head.
    pub head: HeadKind,
    /// Mixture components K (1 for softmax).
    pub k: usize,
}

impl LmConfig {
    /// Checks that the configuration describes a buildable network.
    ///
    /// # Errors
    /// Names the flag at fault.
    pub fn validate(&self) -> Result<()> {
        ensure!(self.vocab >= 2, "the vocabulary has {} tokens", self.vocab);
        ensure!(
            (1..=4096).contains(&self.emb),
            "--emb must be in 1..=4096, got {}",
            self.emb
        );
        ensure!(
            (1..=8).contains(&self.hidden.len()),
            "--layers must be in 1..=8, got {}",
            self.hidden.len()
        );
        for &h in &self.hidden {
            ensure!(
                (1..=4096).contains(&h),
                "--hidden must be in 1..=4096, got {h}"
            );
        }
        ensure!(
            (1..=64).contains(&self.k),
            "--k must be in 1..=64, got {}",
            self.k
        );
        if self.head == HeadKind::Softmax {
            ensure!(self.k == 1, "a softmax head has --k 1, not {}", self.k);
        }
        Ok(())
    }

    /// Number of parameters of the model (the tied embedding counted once); equals
    /// [`LmF::params`] of the exported model.
    pub fn params(&self) -> usize {
        let (v, d, k) = (self.vocab, self.emb, self.k);
        let mut n = v * d + v;
        let mut input = d;
        for &h in &self.hidden {
            n += 4 * h * (input + h) + 4 * h;
            input = h;
        }
        n += k * d * input + k * d;
        if k > 1 {
            n += k * input + k;
        }
        n
    }
}

/// Dropout rates (all "locked": one mask per sequence column, shared across time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Dropouts {
    /// On the embedding output (the first LSTM layer's input).
    pub input: f64,
    /// Between LSTM layers.
    pub hidden: f64,
    /// On the last LSTM layer's output (the head's input).
    pub output: f64,
    /// On the head latents h_k.
    pub latent: f64,
    /// Whole embedding rows (word types) dropped for the input lookup only (not the decoder).
    pub embedding: f64,
    /// DropConnect on the recurrent weights W_hh (one mask per segment).
    pub weight: f64,
}

/// One LSTM layer; burn layout (`x W`), gate columns `i, f, g, o`.
#[derive(Module, Debug)]
pub struct LstmLayer {
    /// `[I, 4H]`.
    pub w_ih: Param<Tensor<2>>,
    /// `[H, 4H]`.
    pub w_hh: Param<Tensor<2>>,
    /// `[4H]`: the combined bias.
    pub bias: Param<Tensor<1>>,
    /// Input size I.
    #[module(skip)]
    pub input: usize,
    /// Hidden size H.
    #[module(skip)]
    pub hidden: usize,
}

/// The recurrent state of all layers: `h[l]`, `c[l]` are `[B, H_l]`.
#[derive(Clone, Debug)]
pub struct LmState {
    /// Hidden outputs.
    pub h: Vec<Tensor<2>>,
    /// Cells.
    pub c: Vec<Tensor<2>>,
}

impl LmState {
    /// The same values cut from the autodiff graph (truncated BPTT).
    pub fn detach(self) -> Self {
        LmState {
            h: self.h.into_iter().map(Tensor::detach).collect(),
            c: self.c.into_iter().map(Tensor::detach).collect(),
        }
    }
}

/// The language model.
#[derive(Module, Debug)]
pub struct LmModel {
    /// `[V, d]`, tied to the decoder.
    pub embedding: Param<Tensor<2>>,
    /// LSTM layers, input first.
    pub layers: Vec<LstmLayer>,
    /// `[H, K·d]`: latent projections (column `k·d + j` is row `k·d + j` of `proj_w`).
    pub proj_w: Param<Tensor<2>>,
    /// `[K·d]`.
    pub proj_b: Param<Tensor<1>>,
    /// `[H, K]` (K > 1 only).
    pub prior_w: Option<Param<Tensor<2>>>,
    /// `[K]` (K > 1 only).
    pub prior_b: Option<Param<Tensor<1>>>,
    /// `[V]`: the decoder bias, shared by all components.
    pub dec_b: Param<Tensor<1>>,
    /// Head kind.
    #[module(skip)]
    pub kind: HeadKind,
    /// Components K.
    #[module(skip)]
    pub k: usize,
    /// Embedding size d.
    #[module(skip)]
    pub emb: usize,
    /// Word or character level (carried into the export).
    #[module(skip)]
    pub level: Level,
    /// Token table (carried into the export).
    #[module(skip)]
    pub vocab: Vec<String>,
}

fn param1(v: Vec<f32>, device: &Device) -> Param<Tensor<1>> {
    let n = v.len();
    Param::from_tensor(Tensor::from_data(TensorData::new(v, [n]), device))
}

fn param2(v: Vec<f32>, shape: [usize; 2], device: &Device) -> Param<Tensor<2>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(v, shape), device))
}

fn uniform(n: usize, a: f32, rng: &mut StdRng) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-a..=a)).collect()
}

/// `[rows][cols]` row-major → `[cols][rows]` row-major.
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

/// Token ids as an int tensor `[n]`.
pub fn ids_tensor(ids: &[u32], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = ids.iter().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(v, [ids.len()]), device)
}

/// A locked-dropout mask `[1, B, n]` (0 or 1/(1-p)), or `None` when `p` is 0.
fn locked_mask(p: f64, b: usize, n: usize, rng: &mut StdRng, device: &Device) -> Option<Tensor<3>> {
    if p <= 0.0 {
        return None;
    }
    let keep = (1.0 / (1.0 - p)) as f32;
    let v: Vec<f32> = (0..b * n)
        .map(|_| if rng.random::<f64>() < p { 0.0 } else { keep })
        .collect();
    Some(Tensor::from_data(TensorData::new(v, [1, b, n]), device))
}

/// The time steps of `[T, B, n]` as T tensors `[B, n]`. burn's slice backward writes a
/// zero tensor of the *whole* input per slice, so T slices of one tensor cost O(T²); slicing
/// in two levels (√T blocks, then steps) makes it O(T^1.5).
fn split_steps(x: Tensor<3>) -> Vec<Tensor<2>> {
    let [t_len, b, n] = x.dims();
    let block = ((t_len as f64).sqrt().ceil() as usize).max(1);
    let mut out = Vec::with_capacity(t_len);
    let mut t0 = 0;
    while t0 < t_len {
        let t1 = (t0 + block).min(t_len);
        let blk = if t1 - t0 == t_len {
            x.clone()
        } else {
            x.clone().slice_dim(0, t0..t1)
        };
        for t in 0..t1 - t0 {
            out.push(blk.clone().slice_dim(0, t..t + 1).reshape([b, n]));
        }
        t0 = t1;
    }
    out
}

/// Row-wise `log Σ exp` of `[n, m]` → `[n, 1]`, shifted by the detached row maximum.
pub fn row_logsumexp(x: Tensor<2>) -> Tensor<2> {
    let m = x.clone().detach().max_dim(1);
    (x - m.clone()).exp().sum_dim(1).log() + m
}

/// `log_softmax(z)[target]` per row (`z` `[R, V]`, `targets` `[R, 1]`) → `[R]`.
///
/// The value is computed outside the autodiff graph (flex's fused softmax, the row max,
/// a gather) and the gradient `onehot − softmax(z)` is attached through a surrogate
/// `−Σ_v z_v w_v + const` with `w = softmax(z) − onehot` held constant, so autodiff records
/// only two `[R, V]` ops (a product and a row sum) instead of the half dozen of a composite
/// log-softmax + gather: the decoder over V dominates the step.
pub fn target_log_softmax(z: Tensor<2>, targets: Tensor<2, Int>) -> Tensor<1> {
    let [r, _] = z.dims();
    let zi = z.clone().inner();
    let device = zi.device();
    let p = softmax(zi.clone(), 1);
    // log Σ exp z = max z − log max p.
    let lse = zi.clone().max_dim(1) - p.clone().max_dim(1).log();
    let lp = zi.gather(1, targets.clone()) - lse;
    if !z.is_tracked() {
        return lp.reshape([r]);
    }
    let w = p.scatter(
        1,
        targets,
        Tensor::full([r, 1], -1.0, &device),
        IndexingUpdateOp::Add,
    );
    let s = (z * Tensor::from_inner(w)).sum_dim(1);
    let c = lp + s.clone().inner();
    (Tensor::from_inner(c) - s).reshape([r])
}

/// What a forward pass over a segment needs besides the tokens.
pub struct SegmentMasks {
    input: Option<Tensor<3>>,
    hidden: Vec<Option<Tensor<3>>>,
    output: Option<Tensor<3>>,
    latent: Option<Tensor<3>>,
    embedding: Option<Tensor<2>>,
    weight: Vec<Option<Tensor<2>>>,
}

impl LmModel {
    /// A freshly initialised model; all randomness from `rng`. `cfg` must have passed
    /// [`LmConfig::validate`]; `vocab.len()` must be `cfg.vocab`.
    ///
    /// Initialisation: embedding U(±0.1), LSTM and head weights U(±1/√fan_in), biases 0
    /// except the LSTM forget gates (1).
    pub fn new(
        cfg: &LmConfig,
        level: Level,
        vocab: Vec<String>,
        rng: &mut StdRng,
        device: &Device,
    ) -> Self {
        assert_eq!(vocab.len(), cfg.vocab, "vocabulary size");
        let (v, d, k) = (cfg.vocab, cfg.emb, cfg.k);
        let embedding = param2(uniform(v * d, 0.1, rng), [v, d], device);
        let mut layers = Vec::new();
        let mut input = d;
        for &h in &cfg.hidden {
            let a = 1.0 / (h as f32).sqrt();
            let mut bias = vec![0f32; 4 * h];
            bias[h..2 * h].fill(1.0);
            layers.push(LstmLayer {
                w_ih: param2(uniform(input * 4 * h, a, rng), [input, 4 * h], device),
                w_hh: param2(uniform(h * 4 * h, a, rng), [h, 4 * h], device),
                bias: param1(bias, device),
                input,
                hidden: h,
            });
            input = h;
        }
        let a = 1.0 / (input as f32).sqrt();
        let proj_w = param2(uniform(input * k * d, a, rng), [input, k * d], device);
        let proj_b = param1(vec![0.0; k * d], device);
        let (prior_w, prior_b) = if k > 1 {
            (
                Some(param2(uniform(input * k, a, rng), [input, k], device)),
                Some(param1(vec![0.0; k], device)),
            )
        } else {
            (None, None)
        };
        LmModel {
            embedding,
            layers,
            proj_w,
            proj_b,
            prior_w,
            prior_b,
            dec_b: param1(vec![0.0; v], device),
            kind: cfg.head,
            k,
            emb: d,
            level,
            vocab,
        }
    }

    /// Sets the decoder bias to the log unigram frequencies of `tokens` (add-one
    /// smoothed, centred), so that the unigram is there from the first step.
    ///
    /// Without it, Adam fits the unigram fastest through the latent projection (every
    /// weight of `W_k` moves by about the learning rate per step, all in the direction
    /// of the LSTM output's mean), which saturates the latent `tanh` within tens of
    /// steps and cuts the gradient to the LSTM: training then stalls at unigram
    /// perplexity (measured: 27.3 on Tiny Shakespeare after a full epoch).
    pub fn init_unigram_bias(&mut self, tokens: &[u32]) {
        let v = self.vocab_size();
        let mut counts = vec![1f64; v];
        for &t in tokens {
            if let Some(c) = counts.get_mut(t as usize) {
                *c += 1.0;
            }
        }
        let total: f64 = counts.iter().sum();
        let logs: Vec<f64> = counts.iter().map(|c| (c / total).ln()).collect();
        let mean = logs.iter().sum::<f64>() / v as f64;
        let b: Vec<f32> = logs.iter().map(|l| (l - mean) as f32).collect();
        let device = self.dec_b.val().device();
        let id = self.dec_b.id;
        self.dec_b = Param::initialized(
            id,
            Tensor::from_data(TensorData::new(b, [v]), &device).require_grad(),
        );
    }

    /// Rebuilds the burn model from its float form.
    pub fn from_float(f: &LmF, device: &Device) -> Self {
        let (v, d, k) = (f.vocab.len(), f.emb_dim, f.head.k);
        let hd = f.top_hidden();
        let layers = f
            .layers
            .iter()
            .map(|l| {
                let (i, h) = (l.input, l.hidden);
                LstmLayer {
                    w_ih: param2(transpose(&l.w_ih, 4 * h, i), [i, 4 * h], device),
                    w_hh: param2(transpose(&l.w_hh, 4 * h, h), [h, 4 * h], device),
                    bias: param1(l.bias.clone(), device),
                    input: i,
                    hidden: h,
                }
            })
            .collect();
        let (prior_w, prior_b) = if k > 1 {
            (
                Some(param2(transpose(&f.head.prior_w, k, hd), [hd, k], device)),
                Some(param1(f.head.prior_b.clone(), device)),
            )
        } else {
            (None, None)
        };
        LmModel {
            embedding: param2(f.embedding.clone(), [v, d], device),
            layers,
            proj_w: param2(transpose(&f.head.proj_w, k * d, hd), [hd, k * d], device),
            proj_b: param1(f.head.proj_b.clone(), device),
            prior_w,
            prior_b,
            dec_b: param1(f.head.dec_b.clone(), device),
            kind: f.head.kind,
            k,
            emb: d,
            level: f.level,
            vocab: f.vocab.clone(),
        }
    }

    /// The float form: exactly the same weights, in [`LmF`]'s layouts.
    pub fn to_float(&self) -> LmF {
        let (v, d, k) = (self.vocab.len(), self.emb, self.k);
        let hd = self.top_hidden();
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let (i, h) = (l.input, l.hidden);
                LstmF {
                    input: i,
                    hidden: h,
                    w_ih: transpose(&tensor_vec(l.w_ih.val()), i, 4 * h),
                    w_hh: transpose(&tensor_vec(l.w_hh.val()), h, 4 * h),
                    bias: tensor_vec(l.bias.val()),
                }
            })
            .collect();
        let (prior_w, prior_b) = match (&self.prior_w, &self.prior_b) {
            (Some(w), Some(b)) => (transpose(&tensor_vec(w.val()), hd, k), tensor_vec(b.val())),
            _ => (Vec::new(), Vec::new()),
        };
        let embedding = tensor_vec(self.embedding.val());
        debug_assert_eq!(embedding.len(), v * d);
        LmF {
            level: self.level,
            vocab: self.vocab.clone(),
            emb_dim: d,
            embedding,
            layers,
            head: HeadF {
                kind: self.kind,
                k,
                proj_w: transpose(&tensor_vec(self.proj_w.val()), hd, k * d),
                proj_b: tensor_vec(self.proj_b.val()),
                prior_w,
                prior_b,
                dec_b: tensor_vec(self.dec_b.val()),
            },
        }
    }

    /// Every parameter id with its rank: `(rank 2, rank 1)`.
    pub fn param_ids(&self) -> (Vec<ParamId>, Vec<ParamId>) {
        let mut p2 = vec![self.embedding.id, self.proj_w.id];
        let mut p1 = vec![self.proj_b.id, self.dec_b.id];
        for l in &self.layers {
            p2.push(l.w_ih.id);
            p2.push(l.w_hh.id);
            p1.push(l.bias.id);
        }
        if let Some(w) = &self.prior_w {
            p2.push(w.id);
        }
        if let Some(b) = &self.prior_b {
            p1.push(b.id);
        }
        (p2, p1)
    }

    /// Vocabulary size V.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// Hidden size of the last LSTM layer.
    pub fn top_hidden(&self) -> usize {
        self.layers.last().map_or(self.emb, |l| l.hidden)
    }

    /// The device of the parameters.
    pub fn device(&self) -> Device {
        self.embedding.val().device()
    }

    /// A zero state for `batch` columns on the model's device.
    pub fn zero_state(&self, batch: usize) -> LmState {
        let device = self.device();
        LmState {
            h: self
                .layers
                .iter()
                .map(|l| Tensor::zeros([batch, l.hidden], &device))
                .collect(),
            c: self
                .layers
                .iter()
                .map(|l| Tensor::zeros([batch, l.hidden], &device))
                .collect(),
        }
    }

    /// Draws the dropout masks for one segment of `batch` columns.
    pub fn masks(&self, p: &Dropouts, batch: usize, rng: &mut StdRng) -> SegmentMasks {
        let device = self.device();
        let nl = self.layers.len();
        let embedding = if p.embedding > 0.0 {
            let keep = (1.0 / (1.0 - p.embedding)) as f32;
            let v: Vec<f32> = (0..self.vocab_size())
                .map(|_| {
                    if rng.random::<f64>() < p.embedding {
                        0.0
                    } else {
                        keep
                    }
                })
                .collect();
            let n = v.len();
            Some(Tensor::from_data(TensorData::new(v, [n, 1]), &device))
        } else {
            None
        };
        let weight = self
            .layers
            .iter()
            .map(|l| {
                locked_mask(p.weight, l.hidden, 4 * l.hidden, rng, &device)
                    .map(|m| m.reshape([l.hidden, 4 * l.hidden]))
            })
            .collect();
        SegmentMasks {
            input: locked_mask(p.input, batch, self.emb, rng, &device),
            hidden: self.layers[..nl - 1]
                .iter()
                .map(|l| locked_mask(p.hidden, batch, l.hidden, rng, &device))
                .collect(),
            output: locked_mask(p.output, batch, self.top_hidden(), rng, &device),
            latent: locked_mask(p.latent, batch, self.k * self.emb, rng, &device),
            embedding,
            weight,
        }
    }

    /// Runs the LSTM stack over a time-major segment of `inputs` (`T·B` ids, row
    /// `t·B + b`) from `state`; returns the last layer's outputs `[T·B, H]` (after the
    /// output dropout) and the new state.
    pub fn features(
        &self,
        inputs: &[u32],
        batch: usize,
        state: LmState,
        masks: Option<&SegmentMasks>,
    ) -> (Tensor<2>, LmState) {
        let device = self.device();
        let n = inputs.len();
        assert!(batch > 0 && n.is_multiple_of(batch), "segment is not T×B");
        let t_len = n / batch;
        let mut e = self.embedding.val();
        if let Some(m) = masks.and_then(|m| m.embedding.clone()) {
            e = e * m;
        }
        let mut x: Tensor<3> = e
            .select(0, ids_tensor(inputs, &device))
            .reshape([t_len, batch, self.emb]);
        if let Some(m) = masks.and_then(|m| m.input.clone()) {
            x = x * m;
        }
        let mut xs = split_steps(x);
        let (mut hs, mut cs) = (Vec::new(), Vec::new());
        let nl = self.layers.len();
        for (li, ((l, h0), c0)) in self.layers.iter().zip(state.h).zip(state.c).enumerate() {
            let hd = l.hidden;
            let w_ih = l.w_ih.val();
            let mut w_hh = l.w_hh.val();
            if let Some(m) = masks.and_then(|m| m.weight[li].clone()) {
                w_hh = w_hh * m;
            }
            let bias = l.bias.val().unsqueeze::<2>();
            let between = if li + 1 < nl {
                masks
                    .and_then(|m| m.hidden[li].clone())
                    .map(|m| m.reshape([batch, hd]))
            } else {
                None
            };
            let (mut h, mut c) = (h0, c0);
            let mut outs = Vec::with_capacity(t_len);
            for xt in xs {
                let z = xt.matmul(w_ih.clone()) + h.matmul(w_hh.clone()) + bias.clone();
                let s = sigmoid(z.clone().slice([0..batch, 0..2 * hd]));
                let i = s.clone().slice([0..batch, 0..hd]);
                let f = s.slice([0..batch, hd..2 * hd]);
                let g = z.clone().slice([0..batch, 2 * hd..3 * hd]).tanh();
                let o = sigmoid(z.slice([0..batch, 3 * hd..4 * hd]));
                c = f * c + i * g;
                h = o * c.clone().tanh();
                outs.push(match &between {
                    Some(m) => h.clone() * m.clone(),
                    None => h.clone(),
                });
            }
            hs.push(h);
            cs.push(c);
            xs = outs;
        }
        let hd = self.top_hidden();
        let mut x: Tensor<2> = Tensor::cat(xs, 0);
        if let Some(m) = masks.and_then(|m| m.output.clone()) {
            x = (x.reshape([t_len, batch, hd]) * m).reshape([n, hd]);
        }
        (x, LmState { h: hs, c: cs })
    }

    /// The head's latents `[N, K, d]` (after latent dropout) and log-priors `[N, K]`
    /// (`None` for K = 1) for features `g` `[N, H]`, `N = T·B` time-major rows.
    pub fn latents(
        &self,
        g: Tensor<2>,
        batch: usize,
        masks: Option<&SegmentMasks>,
    ) -> (Tensor<3>, Option<Tensor<2>>) {
        let [n, _] = g.dims();
        let (k, d) = (self.k, self.emb);
        let mut lat =
            (g.clone().matmul(self.proj_w.val()) + self.proj_b.val().unsqueeze::<2>()).tanh();
        if let Some(m) = masks.and_then(|m| m.latent.clone()) {
            lat = (lat.reshape([n / batch, batch, k * d]) * m).reshape([n, k * d]);
        }
        let log_pi = match (&self.prior_w, &self.prior_b) {
            (Some(w), Some(b)) => {
                Some(log_softmax(g.matmul(w.val()) + b.val().unsqueeze::<2>(), 1))
            }
            _ => None,
        };
        (lat.reshape([n, k, d]), log_pi)
    }

    /// Decoder logits `[rows, V]` of latents `[rows, d]`: `[h, 1] · [E, b]^T`, the bias
    /// folded into the matmul (an `[rows, V]` add and, backwards, an `[rows, V]` row
    /// reduction fewer, for a `[V, d+1]` copy).
    pub fn logits(&self, h: Tensor<2>) -> Tensor<2> {
        let [rows, _] = h.dims();
        let v = self.vocab_size();
        let device = h.device();
        let ha = Tensor::cat(vec![h, Tensor::ones([rows, 1], &device)], 1);
        let ea = Tensor::cat(
            vec![self.embedding.val(), self.dec_b.val().reshape([v, 1])],
            1,
        );
        ha.matmul(ea.transpose())
    }

    /// MoC: the π-weighted mean latent `[N, d]`.
    fn mix(lat: Tensor<3>, log_pi: Option<Tensor<2>>) -> Tensor<2> {
        let [n, k, d] = lat.dims();
        match log_pi {
            Some(lp) => (lat * lp.exp().reshape([n, k, 1]))
                .sum_dim(1)
                .reshape([n, d]),
            None => lat.reshape([n, d]),
        }
    }

    /// `log P(target)` `[N]` for every row, given latents and log-priors.
    pub fn target_log_probs(
        &self,
        lat: Tensor<3>,
        log_pi: Option<Tensor<2>>,
        targets: &[u32],
    ) -> Tensor<1> {
        let device = self.device();
        let [n, k, d] = lat.dims();
        assert_eq!(targets.len(), n, "one target per row");
        match self.kind {
            HeadKind::Softmax | HeadKind::Moc => {
                let h = if self.kind == HeadKind::Moc {
                    Self::mix(lat, log_pi)
                } else {
                    lat.reshape([n, d])
                };
                let tgt = ids_tensor(targets, &device).reshape([n, 1]);
                target_log_softmax(self.logits(h), tgt)
            }
            HeadKind::Mos => {
                let z = self.logits(lat.reshape([n * k, d]));
                let rep: Vec<u32> = targets
                    .iter()
                    .flat_map(|&t| std::iter::repeat_n(t, k))
                    .collect();
                let tgt = ids_tensor(&rep, &device).reshape([n * k, 1]);
                let lp = target_log_softmax(z, tgt).reshape([n, k]);
                let lp = match log_pi {
                    Some(p) => lp + p,
                    None => lp,
                };
                row_logsumexp(lp).reshape([n])
            }
        }
    }

    /// Full next-token log-probabilities `[N, V]` (for tests and sampling).
    pub fn full_log_probs(&self, lat: Tensor<3>, log_pi: Option<Tensor<2>>) -> Tensor<2> {
        let [n, k, d] = lat.dims();
        let v = self.vocab_size();
        match self.kind {
            HeadKind::Softmax => log_softmax(self.logits(lat.reshape([n, d])), 1),
            HeadKind::Moc => log_softmax(self.logits(Self::mix(lat, log_pi)), 1),
            HeadKind::Mos => {
                let lp = log_softmax(self.logits(lat.reshape([n * k, d])), 1).reshape([n, k, v]);
                let lp = match log_pi {
                    Some(p) => lp + p.reshape([n, k, 1]),
                    None => lp,
                };
                let m = lp.clone().detach().max_dim(1);
                ((lp - m.clone()).exp().sum_dim(1).log() + m).reshape([n, v])
            }
        }
    }

    /// `log P(target)` `[T·B]` of a time-major segment, and the new state.
    pub fn segment_log_probs(
        &self,
        inputs: &[u32],
        targets: &[u32],
        batch: usize,
        state: LmState,
        masks: Option<&SegmentMasks>,
    ) -> (Tensor<1>, LmState) {
        let (g, state) = self.features(inputs, batch, state, masks);
        let (lat, log_pi) = self.latents(g, batch, masks);
        (self.target_log_probs(lat, log_pi, targets), state)
    }

    /// The mean NLL of the targets through the decoder, with no `[rows, V]` tensor on the
    /// autodiff tape (see [`DecoderLoss`]). `lat` `[N, K, d]` and `log_pi` `[N, K]` come
    /// from [`LmModel::latents`]; `targets` has N ids.
    pub fn decoder_loss(
        &self,
        lat: Tensor<3>,
        log_pi: Option<Tensor<2>>,
        targets: &[u32],
    ) -> DecoderLoss {
        self.decoder_loss_chunked(lat, log_pi, targets, DECODER_CHUNK)
    }

    /// [`LmModel::decoder_loss`] with about `chunk` logits (rows × V) per chunk.
    pub fn decoder_loss_chunked(
        &self,
        lat: Tensor<3>,
        log_pi: Option<Tensor<2>>,
        targets: &[u32],
        chunk: usize,
    ) -> DecoderLoss {
        let [n, k, d] = lat.dims();
        assert_eq!(targets.len(), n, "one target per row");
        // The rows that meet the decoder: K per token for MoS, one otherwise.
        let (h, kr, log_pi) = match self.kind {
            HeadKind::Mos => (lat.reshape([n * k, d]), k, log_pi),
            HeadKind::Moc => (Self::mix(lat, log_pi), 1, None),
            HeadKind::Softmax => (lat.reshape([n, d]), 1, None),
        };
        let tracked = h.is_tracked();
        let v = self.vocab_size();
        let hi = h.clone().inner();
        let device = hi.device();
        let ea = Tensor::cat(
            vec![
                self.embedding.val().inner(),
                self.dec_b.val().inner().reshape([v, 1]),
            ],
            1,
        );
        let lpi = log_pi.as_ref().map(|t| t.clone().inner());
        let tok_per_chunk = (chunk / (v * kr)).clamp(1, n);
        let inv_n = 1.0 / n as f32;
        let (mut nll_sum, mut lpx_all, mut gh_all) = (0f64, Vec::new(), Vec::new());
        let mut ge: Option<Tensor<2>> = None;
        let mut t0 = 0;
        while t0 < n {
            let tc = tok_per_chunk.min(n - t0);
            let rc = tc * kr;
            let hc = h_rows(&hi, t0 * kr, rc, d);
            let ha = Tensor::cat(vec![hc, Tensor::ones([rc, 1], &device)], 1);
            let rep: Vec<u32> = targets[t0..t0 + tc]
                .iter()
                .flat_map(|&t| std::iter::repeat_n(t, kr))
                .collect();
            let tgt = ids_tensor(&rep, &device).reshape([rc, 1]);
            let z = ha.clone().matmul(ea.clone().transpose());
            let zx = z.clone().gather(1, tgt.clone());
            let zmax = z.clone().max_dim(1);
            let p = softmax(z, 1);
            // log p_x = z_x − logsumexp(z) = z_x − max z + log max p.
            let lpx = zx - zmax + p.clone().max_dim(1).log();
            // Per token: log P and the weight of each decoder row in d(mean NLL)/dz.
            let (log_p, u) = match &lpi {
                Some(lp) => {
                    let a = lpx.clone().reshape([tc, kr]) + lp.clone().slice([t0..t0 + tc, 0..kr]);
                    let lse = row_logsumexp(a.clone());
                    let r = (a - lse.clone()).exp();
                    (lse, r.reshape([rc, 1]).mul_scalar(inv_n))
                }
                None => (lpx.clone(), Tensor::full([rc, 1], inv_n, &device)),
            };
            nll_sum -= tensor_vec(log_p).iter().map(|&x| x as f64).sum::<f64>();
            if tracked {
                // dL/dz = u (softmax(z) − onehot).
                let w = p.scatter(
                    1,
                    tgt,
                    Tensor::full([rc, 1], -1.0, &device),
                    IndexingUpdateOp::Add,
                );
                let w = w * u;
                gh_all.push(w.clone().matmul(ea.clone()).slice([0..rc, 0..d]));
                let g = w.transpose().matmul(ha);
                ge = Some(match ge {
                    Some(acc) => acc + g,
                    None => g,
                });
                lpx_all.push(lpx);
            }
            t0 += tc;
        }
        let loss = tracked.then(|| {
            let gh = Tensor::from_inner(Tensor::cat(gh_all, 0));
            let ge = Tensor::from_inner(ge.expect("at least one chunk"));
            let e = self.embedding.val();
            let b = self.dec_b.val();
            // Terms whose gradients are the decoder's, with value 0.
            let t = (h * gh).sum()
                + (e * ge.clone().slice([0..v, 0..d])).sum()
                + (b * ge.slice([0..v, d..d + 1]).reshape([v])).sum();
            let t = t.clone() - t.detach();
            let main = match log_pi {
                // MoS: the prior's gradient through −mean_n logsumexp_k(log π + log p_k(x)),
                // with log p_k(x) held constant.
                Some(lp) if self.kind == HeadKind::Mos => {
                    let lpx = Tensor::from_inner(Tensor::cat(lpx_all, 0).reshape([n, kr]));
                    row_logsumexp(lp + lpx).mean().neg()
                }
                _ => Tensor::from_inner(Tensor::<1>::from_data(
                    TensorData::new(vec![(nll_sum / n as f64) as f32], [1]),
                    &device,
                )),
            };
            main + t
        });
        DecoderLoss { loss, nll_sum }
    }

    /// Training loss of a time-major segment (see [`LmModel::decoder_loss`]) and the new
    /// state.
    pub fn segment_loss(
        &self,
        inputs: &[u32],
        targets: &[u32],
        batch: usize,
        state: LmState,
        masks: Option<&SegmentMasks>,
    ) -> (DecoderLoss, LmState) {
        let (g, state) = self.features(inputs, batch, state, masks);
        let (lat, log_pi) = self.latents(g, batch, masks);
        (self.decoder_loss(lat, log_pi, targets), state)
    }
}

/// Rows `[r0, r0 + n)` of `[R, d]`.
fn h_rows(h: &Tensor<2>, r0: usize, n: usize, d: usize) -> Tensor<2> {
    h.clone().slice([r0..r0 + n, 0..d])
}

/// Decoder rows per chunk × V: the `[rows, V]` logits of one chunk hold about this many
/// floats (16 MB), so that they stay in cache between the matmul and the softmax.
pub const DECODER_CHUNK: usize = 1 << 22;

/// The result of [`LmModel::decoder_loss`].
pub struct DecoderLoss {
    /// For autodiff models: a `[1]` tensor whose value is the mean NLL and whose gradient
    /// is that of the mean NLL. The decoder's `[rows, V]` part is computed outside the
    /// graph, chunk by chunk (`softmax(z) − onehot`, weighted by each row's share of the
    /// loss — `1/N`, or the MoS posterior `r_k / N`), and enters the graph as the constant
    /// gradients `G_h` of the rows and `G_E` of the tied embedding and decoder bias through
    /// `Σ h·G_h + Σ E·G_E` minus its own detached value. `None` for eval models.
    pub loss: Option<Tensor<1>>,
    /// Σ over tokens of −log P(target).
    pub nll_sum: f64,
}
