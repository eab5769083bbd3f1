//! The rank of a language model's log-probability matrix (Yang et al. 2017,
//! §2): stack `log P(· | c)` over N contexts into an N × V matrix and count
//! its singular values above the roundoff threshold.
//!
//! A softmax head gives `H Eᵀ + 1 bᵀ − lse 1ᵀ`, so the rank is at most
//! `d + 2` (`d + 1` in the paper, which leaves out the bias); a
//! Mixture-of-Contexts head has the same bound; a Mixture-of-Softmaxes head
//! is not bounded by `d`. The head is evaluated in f64 from the LSTM
//! outputs (computed in f32, as in training) so that float32 roundoff in the
//! head cannot pass for rank; the threshold is NumPy's `matrix_rank`
//! default, `σ_max · max(N, V) · ε` with the f64 `ε`.

use anyhow::{anyhow, ensure, Result};
use serde::Serialize;

use super::data::start_token;
use super::float::{HeadKind, LmF};

fn log_softmax64(z: &[f64]) -> Vec<f64> {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    z.iter().map(|v| v - lse).collect()
}

/// `log P(· | g)` of the head, in f64.
pub fn head_log_probs_f64(m: &LmF, g: &[f32]) -> Vec<f64> {
    let (d, hd, k, v) = (m.emb_dim, g.len(), m.head.k, m.vocab.len());
    let h = &m.head;
    let g: Vec<f64> = g.iter().map(|&x| x as f64).collect();
    let dotf = |w: &[f32], x: &[f64]| w.iter().zip(x).map(|(&a, b)| a as f64 * b).sum::<f64>();
    let lat: Vec<f64> = (0..k * d)
        .map(|r| (h.proj_b[r] as f64 + dotf(&h.proj_w[r * hd..(r + 1) * hd], &g)).tanh())
        .collect();
    let log_pi = if k > 1 {
        let z: Vec<f64> = (0..k)
            .map(|c| h.prior_b[c] as f64 + dotf(&h.prior_w[c * hd..(c + 1) * hd], &g))
            .collect();
        log_softmax64(&z)
    } else {
        vec![0.0]
    };
    let logits = |x: &[f64]| -> Vec<f64> {
        (0..v)
            .map(|t| h.dec_b[t] as f64 + dotf(&m.embedding[t * d..(t + 1) * d], x))
            .collect()
    };
    match h.kind {
        HeadKind::Softmax => log_softmax64(&logits(&lat[..d])),
        HeadKind::Moc => {
            let mut mix = vec![0.0; d];
            for c in 0..k {
                for (o, x) in mix.iter_mut().zip(&lat[c * d..(c + 1) * d]) {
                    *o += log_pi[c].exp() * x;
                }
            }
            log_softmax64(&logits(&mix))
        }
        HeadKind::Mos => {
            let comps: Vec<Vec<f64>> = (0..k)
                .map(|c| log_softmax64(&logits(&lat[c * d..(c + 1) * d])))
                .collect();
            (0..v)
                .map(|t| {
                    let z: Vec<f64> = (0..k).map(|c| log_pi[c] + comps[c][t]).collect();
                    let mx = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    mx + z.iter().map(|a| (a - mx).exp()).sum::<f64>().ln()
                })
                .collect()
        }
    }
}

/// What `tinyinfer rank` reports.
#[derive(Clone, Debug, Serialize)]
pub struct RankReport {
    /// `softmax`, `moc` or `mos`.
    pub head: String,
    /// Mixture components.
    pub k: usize,
    /// Embedding (latent) size d.
    pub emb_dim: usize,
    /// Contexts N (rows).
    pub contexts: usize,
    /// Vocabulary V (columns).
    pub vocab: usize,
    /// Singular values above the threshold.
    pub rank: usize,
    /// `min(N, V)`: the largest rank the matrix could have.
    pub full_rank: usize,
    /// `d + 2`: the bound of softmax and MoC heads.
    pub softmax_bound: usize,
    /// The threshold used.
    pub threshold: f64,
    /// Largest singular value.
    pub sigma_max: f64,
    /// Singular values at ranks 1, 2, 4, … (1-based), for the spectrum's shape.
    pub spectrum: Vec<(usize, f64)>,
}

/// The rank of the log-probability matrix over the first `n` contexts of
/// `tokens` (the state after the start token and each of `tokens[..n-1]`).
pub fn rank(m: &LmF, tokens: &[u32], n: usize) -> Result<RankReport> {
    ensure!(n >= 1, "need at least one context");
    ensure!(
        tokens.len() + 1 >= n,
        "only {} contexts available",
        tokens.len() + 1
    );
    let v = m.vocab.len();
    // LSTM outputs in order (sequential), then the f64 heads in parallel.
    let mut state = m.zero_state();
    let mut gs = Vec::with_capacity(n);
    gs.push(m.step(start_token(m.level, &m.vocab) as usize, &mut state));
    for &t in &tokens[..n - 1] {
        gs.push(m.step(t as usize, &mut state));
    }
    use rayon::prelude::*;
    let rows: Vec<Vec<f64>> = gs.par_iter().map(|g| head_log_probs_f64(m, g)).collect();
    let a = faer::Mat::<f64>::from_fn(n, v, |i, j| rows[i][j]);
    let s = a
        .singular_values()
        .map_err(|e| anyhow!("SVD did not converge: {e:?}"))?;
    let sigma_max = s.first().copied().unwrap_or(0.0);
    let threshold = sigma_max * n.max(v) as f64 * f64::EPSILON;
    let rank = s.iter().filter(|&&x| x > threshold).count();
    let mut spectrum = Vec::new();
    let mut i = 1;
    while i <= s.len() {
        spectrum.push((i, s[i - 1]));
        i *= 2;
    }
    if spectrum.last().map(|x| x.0) != Some(s.len()) {
        spectrum.push((s.len(), s[s.len() - 1]));
    }
    Ok(RankReport {
        head: m.head.kind.name().to_string(),
        k: m.head.k,
        emb_dim: m.emb_dim,
        contexts: n,
        vocab: v,
        rank,
        full_rank: n.min(v),
        softmax_bound: m.emb_dim + 2,
        threshold,
        sigma_max,
        spectrum,
    })
}

#[cfg(test)]
mod tests {
    use super::super::core_tests::random_lm;
    use super::*;

    #[test]
    fn softmax_and_moc_are_bounded_and_mos_is_not() {
        let tokens: Vec<u32> = (0..200).map(|i| (i * 7 + i / 3) % 43).collect();
        for (kind, k) in [
            (HeadKind::Softmax, 1),
            (HeadKind::Moc, 4),
            (HeadKind::Mos, 4),
        ] {
            let m = random_lm(kind, k, &[32], 11);
            let r = rank(&m, &tokens, 120).unwrap();
            assert_eq!(r.full_rank, 43);
            match kind {
                HeadKind::Mos => assert_eq!(r.rank, 43, "{r:?}"),
                _ => assert!(r.rank <= m.emb_dim + 2 && r.rank >= m.emb_dim, "{r:?}"),
            }
        }
    }
}
