//! Running exported language models through the core: perplexity against
//! the float checkpoint, text generation, the text of token ids, and what
//! `inspect` shows of the LSTM pipeline.

use std::time::Instant;

use anyhow::{anyhow, ensure, Context, Result};
use serde::Serialize;
use tinyinfer::format::{Level, Model};
use tinyinfer::models::{LanguageModel, LogProb};
use tinyinfer::rng::Pcg32;

use super::float::LmF;
use crate::common::blob::AlignedBlob;
use crate::common::inspect::{Inspect, LayerInfo};

/// The core's language model over a blob.
pub fn language_model(blob: &AlignedBlob) -> Result<LanguageModel<'_>> {
    let model = blob.model()?;
    LanguageModel::new(model).map_err(|e| anyhow!("not a language model: {e}"))
}

/// Sum of int8 NLLs (2⁻¹⁶ nats) of every token of `tokens`, each predicted
/// from the start token and the tokens before it, through the core.
pub fn core_nll(blob: &AlignedBlob, tokens: &[u32]) -> Result<(i64, usize)> {
    let lm = language_model(blob)?;
    let mut arena = vec![0u8; lm.arena_len() + 4];
    let mut s = lm.session(&mut arena).map_err(|e| anyhow!("{e}"))?;
    s.step(lm.start_token()).map_err(|e| anyhow!("{e}"))?;
    let mut total = 0i64;
    for (i, &t) in tokens.iter().enumerate() {
        let t = u16::try_from(t).map_err(|_| anyhow!("token {i} ({t}) is not a u16"))?;
        let LogProb(lp) = s.log_prob(t).map_err(|e| anyhow!("token {i}: {e}"))?;
        total -= lp as i64;
        if i + 1 < tokens.len() {
            s.step(t).map_err(|e| anyhow!("token {i}: {e}"))?;
        }
    }
    Ok((total, tokens.len()))
}

/// Mean float NLL (nats) of every token of `tokens`, from the start token and a zero
/// state, in one sequence (burn in eval mode: the plain-Rust [`LmF`] forward gives the
/// same numbers, `lm::tests` checks, but takes minutes for a 10,000-word vocabulary).
pub fn float_nll(m: &LmF, tokens: &[u32]) -> f64 {
    super::train::float_ppl(m, tokens, 1).ln()
}

/// `tinyinfer eval` of a language model.
#[derive(Clone, Debug, Serialize)]
pub struct LmEvalReport {
    /// Model file.
    pub model: String,
    /// `softmax`, `moc` or `mos`.
    pub head: String,
    /// Mixture components.
    pub k: usize,
    /// `word` or `char`.
    pub level: String,
    /// Vocabulary size.
    pub vocab: usize,
    /// Tokens scored.
    pub tokens: usize,
    /// exp(mean int8 NLL).
    pub int8_perplexity: f64,
    /// Mean int8 NLL in nats.
    pub int8_nll_nats: f64,
    /// Bits per token of the int8 model (bits per character for char models).
    pub int8_bits_per_token: f64,
    /// exp(mean float NLL), with the checkpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float_perplexity: Option<f64>,
    /// Bits per token of the float model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float_bits_per_token: Option<f64>,
    /// int8 / float perplexity − 1, in percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub int8_vs_float_percent: Option<f64>,
    /// Parameters (weights and biases).
    pub params: u64,
    /// Multiply-accumulates per token.
    pub macs_per_token: u64,
    /// Model bytes.
    pub blob_bytes: usize,
    /// Arena bytes.
    pub arena_bytes: usize,
    /// Seconds of host time.
    pub host_seconds: f64,
}

/// Perplexity of `tokens` through the core, and through the float model when given.
pub fn evaluate(
    name: &str,
    blob: &AlignedBlob,
    float: Option<&LmF>,
    tokens: &[u32],
) -> Result<LmEvalReport> {
    ensure!(!tokens.is_empty(), "no tokens to evaluate");
    let lm = language_model(blob)?;
    let spec = *lm.spec();
    if let Some(f) = float {
        ensure!(
            f.vocab.len() == spec.vocab && f.head.k == spec.k && f.emb_dim == spec.emb_dim,
            "the checkpoint does not match the model (vocabulary, K or embedding size differ)"
        );
    }
    let t0 = Instant::now();
    let (core, fl) = std::thread::scope(|s| {
        let f = s.spawn(|| float.map(|m| float_nll(m, tokens)));
        let c = core_nll(blob, tokens);
        (c, f.join())
    });
    let (total, n) = core?;
    let fl = fl.map_err(|_| anyhow!("float evaluation panicked"))?;
    let nll = total as f64 / LogProb::ONE / n as f64;
    let ln2 = std::f64::consts::LN_2;
    Ok(LmEvalReport {
        model: name.to_string(),
        head: spec.head.name().to_string(),
        k: spec.k,
        level: match spec.level {
            Level::Char => "char",
            Level::Word => "word",
        }
        .to_string(),
        vocab: spec.vocab,
        tokens: n,
        int8_perplexity: nll.exp(),
        int8_nll_nats: nll,
        int8_bits_per_token: nll / ln2,
        float_perplexity: fl.map(f64::exp),
        float_bits_per_token: fl.map(|f| f / ln2),
        int8_vs_float_percent: fl.map(|f| ((nll - f).exp() - 1.0) * 100.0),
        params: spec.params(),
        macs_per_token: spec.macs_per_token(),
        blob_bytes: blob.bytes().len(),
        arena_bytes: lm.arena_len(),
        host_seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Text of token ids: characters joined as they are; words joined by spaces
/// with `<eos>` as a line break.
pub fn detokenize(lm: &LanguageModel<'_>, ids: &[u16]) -> String {
    let v = lm.vocab();
    let mut out = String::new();
    for &id in ids {
        let t = v.token(id as usize).unwrap_or("?");
        match lm.spec().level {
            Level::Char => out.push_str(t),
            Level::Word if t == "<eos>" => out.push('\n'),
            Level::Word => {
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push(' ');
                }
                out.push_str(t);
            }
        }
    }
    out
}

/// Generated text: prime with the start token and `prompt`, then draw
/// `tokens` tokens with PCG32 seeded by `seed`, exactly as the firmware does.
pub fn generate(blob: &AlignedBlob, prompt: &str, tokens: usize, seed: u64) -> Result<Vec<u16>> {
    let lm = language_model(blob)?;
    let mut arena = vec![0u8; lm.arena_len() + 4];
    let mut s = lm.session(&mut arena).map_err(|e| anyhow!("{e}"))?;
    s.prime(prompt).map_err(|e| match e {
        tinyinfer::Error::BadInput(at) => {
            anyhow!(
                "the prompt has no token at byte {at} ({:?})",
                prompt.get(at as usize..).unwrap_or("")
            )
        }
        e => anyhow!("{e}"),
    })?;
    let mut rng = Pcg32::seeded(seed);
    let mut out = Vec::with_capacity(tokens);
    for _ in 0..tokens {
        let t = s.sample(&mut rng);
        out.push(t);
        s.step(t).map_err(|e| anyhow!("{e}"))?;
    }
    Ok(out)
}

/// A language model's stages per token, as layers with `1×1×n` shapes.
pub fn inspect(model: &Model<'_>) -> Result<Inspect> {
    let spec = model.lm_spec().context("LM section")?;
    let w = |n: usize| [1u16, 1, n.min(u16::MAX as usize) as u16];
    let rq = |n: usize| 8 * n; // a multiplier and a shift per row (the per-word arrays: their own)
    let (v, d, k, h) = (spec.vocab, spec.emb_dim, spec.k, spec.top_hidden());
    let mut layers = vec![LayerInfo {
        index: 0,
        op: "embedding".into(),
        input: w(v),
        output: w(d),
        macs: 0,
        params: v * d,
        param_bytes: v * d + spec.emb_rq.bytes(),
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
        param_bytes: 4 * v + spec.dec_rq.bytes(),
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
        selftest_cases: model.selftest().map_or(0, |s| s.count()),
    })
}
