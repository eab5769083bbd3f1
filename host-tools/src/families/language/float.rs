//! The plain-Rust float language model: the interface between training (burn) and the
//! int8 quantizer/exporter, and the float reference for perplexity.
//!
//! ```text
//! x_t   = E[token]                                   (d = emb_dim)
//! g_t   = LSTM_L(... LSTM_1(x_t))                    (last layer's h, size H)
//! h_k   = tanh(W_k g_t + b_k)          k = 1..K      (size d each)
//! π     = softmax(W_π g_t + b_π)                     (K; absent when K = 1)
//! softmax: P = softmax(h_1 E^T + b)                  (K = 1)
//! MoC:     P = softmax((Σ_k π_k h_k) E^T + b)
//! MoS:     P = Σ_k π_k softmax(h_k E^T + b)
//! ```
//! The decoder is tied to the embedding `E`; its bias `b` is shared by all components.

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::common::checkpoint;

/// Output head of a language model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum HeadKind {
    /// One softmax over `h_1 E^T + b` (K must be 1).
    Softmax,
    /// Mixture of contexts: one softmax of the π-weighted mean latent.
    Moc,
    /// Mixture of softmaxes: π-weighted mean of K softmaxes, in probability space.
    Mos,
}

impl HeadKind {
    /// Lower-case name as printed in reports.
    pub fn name(self) -> &'static str {
        match self {
            HeadKind::Softmax => "softmax",
            HeadKind::Moc => "moc",
            HeadKind::Mos => "mos",
        }
    }
}

/// Tokenisation of the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Whitespace-separated words, `<eos>` after each line (Penn Treebank).
    Word,
    /// Single bytes (Tiny Shakespeare).
    Char,
}

/// One LSTM layer. Gate order everywhere is `i, f, g, o` (input, forget, cell, output):
/// rows `[0, H)` are the input gate, `[H, 2H)` forget, `[2H, 3H)` cell candidate,
/// `[3H, 4H)` output.
///
/// ```text
/// z = w_ih x + w_hh h + bias          (4H)
/// i = σ(z_i)  f = σ(z_f)  g = tanh(z_g)  o = σ(z_o)
/// c' = f c + i g      h' = o tanh(c')
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LstmF {
    /// Input size I.
    pub input: usize,
    /// Hidden size H.
    pub hidden: usize,
    /// `[4H][I]` row-major.
    pub w_ih: Vec<f32>,
    /// `[4H][H]` row-major.
    pub w_hh: Vec<f32>,
    /// `4H`: the sum of the input-side and hidden-side biases.
    pub bias: Vec<f32>,
}

/// The recurrent state of one layer.
#[derive(Clone, Debug, Default)]
pub struct LstmState {
    /// Hidden output h.
    pub h: Vec<f32>,
    /// Cell c.
    pub c: Vec<f32>,
}

/// The head after the last LSTM layer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeadF {
    /// Softmax, MoC or MoS.
    pub kind: HeadKind,
    /// Number of components K (1 for softmax).
    pub k: usize,
    /// `[K][d][H]`: latent projections W_k.
    pub proj_w: Vec<f32>,
    /// `[K][d]`: latent biases b_k.
    pub proj_b: Vec<f32>,
    /// `[K][H]`: prior weights W_π (empty when K = 1).
    pub prior_w: Vec<f32>,
    /// `[K]`: prior biases b_π (empty when K = 1).
    pub prior_b: Vec<f32>,
    /// `[V]`: decoder bias b, shared by all components.
    pub dec_b: Vec<f32>,
}

/// A trained float language model (JSON checkpoint written by `train-lm`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LmF {
    /// Word or character level.
    pub level: Level,
    /// Token table: `vocab[id]` is the token's text (`"<eos>"` for end of line in
    /// word models; one character in char models).
    pub vocab: Vec<String>,
    /// Embedding size d (also the latent size of the head).
    pub emb_dim: usize,
    /// `[V][d]` row-major: the embedding, tied to the decoder.
    pub embedding: Vec<f32>,
    /// LSTM layers, input first. Layer 0 has `input == emb_dim`; layer l > 0 has
    /// `input == layers[l-1].hidden`.
    pub layers: Vec<LstmF>,
    /// Output head.
    pub head: HeadF,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl LstmF {
    /// One step: updates `s` in place from input `x`.
    pub fn step(&self, x: &[f32], s: &mut LstmState) {
        let (n, hd) = (self.input, self.hidden);
        debug_assert_eq!(x.len(), n);
        let mut z = self.bias.clone();
        for (r, zr) in z.iter_mut().enumerate() {
            let wi = &self.w_ih[r * n..(r + 1) * n];
            let wh = &self.w_hh[r * hd..(r + 1) * hd];
            *zr += wi.iter().zip(x).map(|(a, b)| a * b).sum::<f32>()
                + wh.iter().zip(&s.h).map(|(a, b)| a * b).sum::<f32>();
        }
        for j in 0..hd {
            let i = sigmoid(z[j]);
            let f = sigmoid(z[hd + j]);
            let g = z[2 * hd + j].tanh();
            let o = sigmoid(z[3 * hd + j]);
            s.c[j] = f * s.c[j] + i * g;
            s.h[j] = o * s.c[j].tanh();
        }
    }
}

/// Numerically stable log-softmax.
pub fn log_softmax(z: &[f32]) -> Vec<f32> {
    let m = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f32>().ln();
    z.iter().map(|v| v - lse).collect()
}

/// Numerically stable log Σ exp.
pub fn logsumexp(z: &[f32]) -> f32 {
    let m = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    if m == f32::NEG_INFINITY {
        return m;
    }
    m + z.iter().map(|v| (v - m).exp()).sum::<f32>().ln()
}

/// Activations of the head for one position (kept for calibration).
#[derive(Clone, Debug)]
pub struct HeadActs {
    /// `[K][d]` pre-tanh latent values.
    pub latent_pre: Vec<f32>,
    /// `[K][d]` latents h_k.
    pub latent: Vec<f32>,
    /// `[K]` prior logits (empty when K = 1).
    pub prior_logits: Vec<f32>,
    /// `[V]` next-token log-probabilities.
    pub log_probs: Vec<f32>,
}

impl LmF {
    /// Vocabulary size V.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// Hidden size of the last LSTM layer.
    pub fn top_hidden(&self) -> usize {
        self.layers.last().map_or(self.emb_dim, |l| l.hidden)
    }

    /// Number of parameters (the tied embedding counted once).
    pub fn params(&self) -> usize {
        self.arrays().iter().map(|(_, a)| a.len()).sum()
    }

    /// Checks every shape against the core's limits (so that no product
    /// can overflow and the exporter can quantize it), and that every value
    /// is finite; call after loading.
    pub fn validate(&self) -> Result<()> {
        use tinyinfer::format::{MAX_K, MAX_LAYERS, MAX_VOCAB, MAX_WIDTH};
        let (v, d) = (self.vocab.len(), self.emb_dim);
        ensure!(
            (2..=MAX_VOCAB).contains(&v),
            "vocabulary has {v} tokens (2..={MAX_VOCAB})"
        );
        ensure!(
            (1..=MAX_WIDTH).contains(&d),
            "embedding size {d} (1..={MAX_WIDTH})"
        );
        ensure!(self.embedding.len() == v * d, "embedding is not V×d");
        ensure!(
            (1..=MAX_LAYERS).contains(&self.layers.len()),
            "{} LSTM layers (1..={MAX_LAYERS})",
            self.layers.len()
        );
        let mut input = d;
        for (i, l) in self.layers.iter().enumerate() {
            ensure!(l.input == input, "layer {i}: input {} != {input}", l.input);
            ensure!(
                (1..=MAX_WIDTH).contains(&l.hidden),
                "layer {i}: hidden size {} (1..={MAX_WIDTH})",
                l.hidden
            );
            let g = 4 * l.hidden;
            ensure!(
                l.w_ih.len() == g * l.input && l.w_hh.len() == g * l.hidden && l.bias.len() == g,
                "layer {i}: weight shapes do not match I={} H={}",
                l.input,
                l.hidden
            );
            input = l.hidden;
        }
        let (h, k) = (&self.head, self.head.k);
        ensure!((1..=MAX_K).contains(&k), "head has K = {k} (1..={MAX_K})");
        if h.kind == HeadKind::Softmax {
            ensure!(k == 1, "a softmax head has K = 1, not {k}");
        }
        ensure!(h.proj_w.len() == k * d * input, "proj_w is not K×d×H");
        ensure!(h.proj_b.len() == k * d, "proj_b is not K×d");
        if k > 1 {
            ensure!(h.prior_w.len() == k * input, "prior_w is not K×H");
            ensure!(h.prior_b.len() == k, "prior_b is not K");
        } else {
            ensure!(
                h.prior_w.is_empty() && h.prior_b.is_empty(),
                "K = 1 has no prior"
            );
        }
        ensure!(h.dec_b.len() == v, "dec_b is not V");
        for (n, x) in self.arrays() {
            if x.iter().any(|v| !v.is_finite()) {
                bail!("{n} holds a non-finite value");
            }
        }
        Ok(())
    }

    /// Every weight array with its name, in a fixed order (the embedding,
    /// each layer's `w_ih`, `w_hh`, `bias`, then the head's arrays): what
    /// [`Self::params`] counts, [`Self::validate`] checks for finite values
    /// and [`Self::average_in`] averages.
    fn arrays(&self) -> Vec<(&'static str, &[f32])> {
        let mut v: Vec<(&'static str, &[f32])> = vec![("embedding", &self.embedding)];
        for l in &self.layers {
            v.extend([
                ("w_ih", &l.w_ih[..]),
                ("w_hh", &l.w_hh[..]),
                ("bias", &l.bias[..]),
            ]);
        }
        let h = &self.head;
        v.extend([
            ("proj_w", &h.proj_w[..]),
            ("proj_b", &h.proj_b[..]),
            ("prior_w", &h.prior_w[..]),
            ("prior_b", &h.prior_b[..]),
            ("dec_b", &h.dec_b[..]),
        ]);
        v
    }

    /// [`Self::arrays`], mutable and unnamed, in the same order.
    fn arrays_mut(&mut self) -> Vec<&mut Vec<f32>> {
        let mut v = vec![&mut self.embedding];
        for l in &mut self.layers {
            v.extend([&mut l.w_ih, &mut l.w_hh, &mut l.bias]);
        }
        let h = &mut self.head;
        v.extend([
            &mut h.proj_w,
            &mut h.proj_b,
            &mut h.prior_w,
            &mut h.prior_b,
            &mut h.dec_b,
        ]);
        v
    }

    /// The running mean of averaged SGD: with `self` the mean of `n − 1`
    /// models, makes it the mean of those and `m` (`a += (m − a) / n`).
    /// `m` must have `self`'s shapes (the same run's weights).
    ///
    /// # Panics
    /// When the shapes differ, or `n` is 0.
    pub fn average_in(&mut self, m: &LmF, n: usize) {
        assert!(n >= 1, "a mean of 0 models");
        let inv = 1.0 / n as f64;
        let theirs = m.arrays();
        let mine = self.arrays_mut();
        assert_eq!(mine.len(), theirs.len(), "averaging models of other shapes");
        for (a, (_, b)) in mine.into_iter().zip(theirs) {
            assert_eq!(a.len(), b.len(), "averaging models of other shapes");
            for (x, &y) in a.iter_mut().zip(b) {
                *x = (*x as f64 + (y as f64 - *x as f64) * inv) as f32;
            }
        }
    }

    /// Reads and validates a JSON checkpoint (a run directory stands for
    /// its `final.json`).
    pub fn load(path: &Path) -> Result<Self> {
        let file = checkpoint::json_file(path);
        let path = file.as_path();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading LM checkpoint {}", path.display()))?;
        checkpoint::expect_family(&text, path, super::NAME)?;
        let m: LmF = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an LM checkpoint", path.display()))?;
        m.validate()
            .with_context(|| format!("checking {}", path.display()))?;
        Ok(m)
    }

    /// Writes the checkpoint as JSON tagged `"family": "language"`, atomically (temp file + rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir)?;
        checkpoint::write_json(std::io::BufWriter::new(tmp.as_file()), super::NAME, self)?;
        tmp.persist(path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// A zero state for every layer.
    pub fn zero_state(&self) -> Vec<LstmState> {
        self.layers
            .iter()
            .map(|l| LstmState {
                h: vec![0.0; l.hidden],
                c: vec![0.0; l.hidden],
            })
            .collect()
    }

    /// Feeds `token` and returns the last layer's output g.
    pub fn step(&self, token: usize, state: &mut [LstmState]) -> Vec<f32> {
        let d = self.emb_dim;
        let mut x = self.embedding[token * d..(token + 1) * d].to_vec();
        for (l, s) in self.layers.iter().zip(state.iter_mut()) {
            l.step(&x, s);
            x = s.h.clone();
        }
        x
    }

    /// The head on g: latents, prior and the next-token log-probabilities.
    pub fn head(&self, g: &[f32]) -> HeadActs {
        let (d, hd, k, v) = (self.emb_dim, g.len(), self.head.k, self.vocab.len());
        let h = &self.head;
        let mut latent_pre = vec![0.0f32; k * d];
        for (r, out) in latent_pre.iter_mut().enumerate() {
            let w = &h.proj_w[r * hd..(r + 1) * hd];
            *out = h.proj_b[r] + w.iter().zip(g).map(|(a, b)| a * b).sum::<f32>();
        }
        let latent: Vec<f32> = latent_pre.iter().map(|x| x.tanh()).collect();
        let prior_logits: Vec<f32> = (0..if k > 1 { k } else { 0 })
            .map(|c| {
                let w = &h.prior_w[c * hd..(c + 1) * hd];
                h.prior_b[c] + w.iter().zip(g).map(|(a, b)| a * b).sum::<f32>()
            })
            .collect();
        let log_pi = if k > 1 {
            log_softmax(&prior_logits)
        } else {
            vec![0.0]
        };
        let logits_of = |lat: &[f32]| -> Vec<f32> {
            (0..v)
                .map(|t| {
                    let e = &self.embedding[t * d..(t + 1) * d];
                    h.dec_b[t] + e.iter().zip(lat).map(|(a, b)| a * b).sum::<f32>()
                })
                .collect()
        };
        let log_probs = match h.kind {
            HeadKind::Softmax => log_softmax(&logits_of(&latent[..d])),
            HeadKind::Moc => {
                let mut mix = vec![0.0f32; d];
                for c in 0..k {
                    let p = log_pi[c].exp();
                    for (m, x) in mix.iter_mut().zip(&latent[c * d..(c + 1) * d]) {
                        *m += p * x;
                    }
                }
                log_softmax(&logits_of(&mix))
            }
            HeadKind::Mos => {
                let comps: Vec<Vec<f32>> = (0..k)
                    .map(|c| log_softmax(&logits_of(&latent[c * d..(c + 1) * d])))
                    .collect();
                (0..v)
                    .map(|t| {
                        let z: Vec<f32> = (0..k).map(|c| log_pi[c] + comps[c][t]).collect();
                        logsumexp(&z)
                    })
                    .collect()
            }
        };
        HeadActs {
            latent_pre,
            latent,
            prior_logits,
            log_probs,
        }
    }

    /// Mean NLL (nats per token) of predicting `tokens[i+1]` from `tokens[..=i]`, from a
    /// zero state, over at most `max_tokens` predictions (sequential, single-threaded;
    /// slow for V = 10,000 — training evaluates with the burn model instead).
    pub fn mean_nll(&self, tokens: &[u32], max_tokens: usize) -> f64 {
        let n = tokens.len().saturating_sub(1).min(max_tokens);
        if n == 0 {
            return 0.0;
        }
        let mut state = self.zero_state();
        let mut total = 0.0f64;
        for i in 0..n {
            let g = self.step(tokens[i] as usize, &mut state);
            let lp = self.head(&g).log_probs;
            total -= lp[tokens[i + 1] as usize] as f64;
        }
        total / n as f64
    }
}
