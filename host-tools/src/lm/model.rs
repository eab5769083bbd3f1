//! The LSTM language model in burn (flex backend), exported exactly into [`LmF`].
//!
//! Layout of the computation for one truncated-BPTT segment of `T` steps and `B` columns
//! (time-major: row `t * B + b` is step `t` of column `b`):
//!
//! * embedding lookup `E[x]` (`E` is `[V, d]`, optionally with whole rows dropped),
//!   locked dropout (one mask per column, shared over the `T` steps);
//! * per LSTM layer: `x W_ih + bias` for all `T·B` rows in one matmul, then the
//!   recurrence `z_t = xw_t + h_{t-1} W_hh` step by step (gate columns `i, f, g, o`,
//!   exactly [`LstmF`]'s row order); locked dropout between layers and on the output;
//! * the head on all `T·B` rows at once: latents `tanh(g W_p + b_p)` (`[N, K·d]`,
//!   component-major, exactly `proj_w`'s `[K][d][H]` rows), locked dropout on the latents,
//!   prior `log_softmax(g W_π + b_π)`, and the tied decoder `h E^T + b` as one
//!   `[N·K, d] × [d, V]` matmul (`E^T` is a strided view, no copy).
//!
//! The loss only needs the log-probability of each target, so it is computed as
//! `logit_x − logsumexp_v(logit_v)` per row (max-shifted, max detached), and for MoS
//! `logsumexp_k(log π_k + log p_k(x))` over the K components (also max-shifted).

use anyhow::{ensure, Result};
use burn::module::{Module, Param};
use burn::tensor::activation::{log_softmax, sigmoid};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::float::{HeadF, HeadKind, Level, LmF, LstmF};

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
            ensure!((1..=4096).contains(&h), "--hidden must be in 1..=4096, got {h}");
        }
        ensure!((1..=64).contains(&self.k), "--k must be in 1..=64, got {}", self.k);
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

/// A tensor's values as f32, row-major.
pub fn tensor_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    crate::pixelcnn::model::tensor_vec(t)
}

/// Token ids as an int tensor `[n]`.
pub fn ids_tensor(ids: &[u32], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = ids.iter().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(v, [ids.len()]), device)
}

/// A locked-dropout mask `[1, B, n]` (0 or 1/(1-p)), or `None` when `p` is 0.
fn locked_mask(
    p: f64,
    b: usize,
    n: usize,
    rng: &mut StdRng,
    device: &Device,
) -> Option<Tensor<3>> {
    if p <= 0.0 {
        return None;
    }
    let keep = (1.0 / (1.0 - p)) as f32;
    let v: Vec<f32> = (0..b * n)
        .map(|_| if rng.random::<f64>() < p { 0.0 } else { keep })
        .collect();
    Some(Tensor::from_data(TensorData::new(v, [1, b, n]), device))
}

/// Row-wise `log Σ exp` of `[n, m]` → `[n, 1]`, shifted by the detached row maximum.
pub fn row_logsumexp(x: Tensor<2>) -> Tensor<2> {
    let m = x.clone().detach().max_dim(1);
    (x - m.clone()).exp().sum_dim(1).log() + m
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
                Some(param2(
                    transpose(&f.head.prior_w, k, hd),
                    [hd, k],
                    device,
                )),
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
            (Some(w), Some(b)) => (
                transpose(&tensor_vec(w.val()), hd, k),
                tensor_vec(b.val()),
            ),
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
        let (mut hs, mut cs) = (Vec::new(), Vec::new());
        let nl = self.layers.len();
        for (li, ((l, h0), c0)) in self
            .layers
            .iter()
            .zip(state.h)
            .zip(state.c)
            .enumerate()
        {
            let hd = l.hidden;
            let xw = (x.reshape([n, l.input]).matmul(l.w_ih.val())
                + l.bias.val().unsqueeze::<2>())
            .reshape([t_len, batch, 4 * hd]);
            let mut w_hh = l.w_hh.val();
            if let Some(m) = masks.and_then(|m| m.weight[li].clone()) {
                w_hh = w_hh * m;
            }
            let (mut h, mut c) = (h0, c0);
            let mut outs = Vec::with_capacity(t_len);
            for t in 0..t_len {
                let z = xw.clone().slice([t..t + 1]).reshape([batch, 4 * hd])
                    + h.matmul(w_hh.clone());
                let s = sigmoid(z.clone().slice([0..batch, 0..2 * hd]));
                let i = s.clone().slice([0..batch, 0..hd]);
                let f = s.slice([0..batch, hd..2 * hd]);
                let g = z.clone().slice([0..batch, 2 * hd..3 * hd]).tanh();
                let o = sigmoid(z.slice([0..batch, 3 * hd..4 * hd]));
                c = f * c + i * g;
                h = o * c.clone().tanh();
                outs.push(h.clone());
            }
            hs.push(h);
            cs.push(c);
            x = Tensor::stack(outs, 0);
            let m = if li + 1 < nl {
                masks.and_then(|m| m.hidden[li].clone())
            } else {
                masks.and_then(|m| m.output.clone())
            };
            if let Some(m) = m {
                x = x * m;
            }
        }
        let hd = self.top_hidden();
        (x.reshape([n, hd]), LmState { h: hs, c: cs })
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
        let mut lat = (g.clone().matmul(self.proj_w.val()) + self.proj_b.val().unsqueeze::<2>())
            .tanh();
        if let Some(m) = masks.and_then(|m| m.latent.clone()) {
            lat = (lat.reshape([n / batch, batch, k * d]) * m).reshape([n, k * d]);
        }
        let log_pi = match (&self.prior_w, &self.prior_b) {
            (Some(w), Some(b)) => Some(log_softmax(
                g.matmul(w.val()) + b.val().unsqueeze::<2>(),
                1,
            )),
            _ => None,
        };
        (lat.reshape([n, k, d]), log_pi)
    }

    /// Decoder logits `[rows, V]` of latents `[rows, d]`.
    pub fn logits(&self, h: Tensor<2>) -> Tensor<2> {
        h.matmul(self.embedding.val().transpose()) + self.dec_b.val().unsqueeze::<2>()
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
                let z = self.logits(h);
                let tgt = ids_tensor(targets, &device).reshape([n, 1]);
                let zx = z.clone().gather(1, tgt);
                (zx - row_logsumexp(z)).reshape([n])
            }
            HeadKind::Mos => {
                let z = self.logits(lat.reshape([n * k, d]));
                let rep: Vec<u32> = targets
                    .iter()
                    .flat_map(|&t| std::iter::repeat_n(t, k))
                    .collect();
                let tgt = ids_tensor(&rep, &device).reshape([n * k, 1]);
                let zx = z.clone().gather(1, tgt);
                let lp = (zx - row_logsumexp(z)).reshape([n, k]);
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
}
