//! Language-model kernels: embedding lookup, the int8×int8→int16 LSTM cell
//! (TFLite Micro's integer LSTM arithmetic: Q3.12 gates, Q0.15
//! sigmoid/tanh, a Q4.11 cell and a Q0.7 hidden output) and fixed-point
//! softmax statistics. Plain functions over slices: lengths are the
//! caller's contract (the driver passes checked slices), and every index is
//! bounds checked, so a wrong length panics in tests instead of reading
//! garbage.
//!
//! The matrix–vector products (LSTM gates, the heads' latent projection,
//! the tied decoder), where the time goes, follow the kernel contract of
//! [`crate::kernels`]: the spec in [`crate::kernels::reference::lm`],
//! length checks with typed errors, and the same bytes from
//! `kernels::fast` and `kernels::arm` (`lstm_gates`, `latent`, `decoder`).

pub use crate::format::{Shifts, WeightLayout};
use crate::quant::nonlin::{exp_neg, ln_q30, sigmoid_q12, tanh_q12};
use crate::quant::{requantize, HighWord};

/// Fractional bits of the cell state (Q4.11, range ±16).
pub const CELL_FRAC: u32 = 11;

/// `Σ a[i]·b[i]` over the common length.
#[inline]
pub fn dot(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; 4];
    let (ac, bc) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for j in 0..4 {
            acc[j] = acc[j].wrapping_add(x[j] as i32 * y[j] as i32);
        }
    }
    let mut s = acc.iter().fold(0i32, |s, &a| s.wrapping_add(a));
    for (x, y) in ar.iter().zip(br) {
        s = s.wrapping_add(*x as i32 * *y as i32);
    }
    s
}

#[inline]
fn sat16(v: i32) -> i16 {
    v.clamp(i16::MIN as i32, i16::MAX as i32) as i16
}

#[inline]
fn sat8(v: i32) -> i8 {
    v.clamp(i8::MIN as i32, i8::MAX as i32) as i8
}

/// Embedding lookup: `out[j] = sat8(requantize(row[j], mult, shift))`.
pub fn embed(row: &[i8], mult: i32, shift: i32, out: &mut [i8]) {
    for (o, &e) in out.iter_mut().zip(row) {
        *o = sat8(requantize(e as i32, mult, shift));
    }
}

/// One requantized matrix row set: `w` is `[rows][depth]` in `layout`,
/// `(mult, shift)` per row.
#[derive(Clone, Copy, Debug)]
pub struct QMatrix<'a> {
    /// `[rows][depth]` int8 weights, stored as `layout` says.
    pub w: &'a [i8],
    /// Row multipliers.
    pub mult: &'a [i32],
    /// Row shifts.
    pub shift: &'a [i32],
    /// How `w` is stored.
    pub layout: WeightLayout,
    /// When present and about `mult`/`shift` themselves
    /// ([`HighWord::covers`]), the DSP stages skip the per-row test of the
    /// requantization's form; the result is the same either way.
    pub high_word: Option<HighWord<'a>>,
}

impl<'a> QMatrix<'a> {
    /// A row-by-row matrix.
    pub fn rows(w: &'a [i8], mult: &'a [i32], shift: &'a [i32]) -> Self {
        QMatrix {
            w,
            mult,
            shift,
            layout: WeightLayout::Rows,
            high_word: None,
        }
    }

    /// A checked model's matrix stored as `layout`, with its requantization
    /// pairs and their high-word proof.
    pub fn of(w: &'a [i8], rq: crate::format::Requant<'a>, layout: WeightLayout) -> Self {
        QMatrix {
            w,
            mult: rq.mult,
            shift: rq.shift,
            layout,
            high_word: rq.high_word,
        }
    }

    /// `W[r]·x` (wrapping), reading row `r` through the layout: the
    /// reference kernels' one access to the weights.
    #[inline]
    pub fn dot_row(&self, r: usize, x: &[i8]) -> i32 {
        let n = x.len();
        match self.layout {
            WeightLayout::Rows => dot(&self.w[r * n..(r + 1) * n], x),
            layout => x.iter().enumerate().fold(0i32, |s, (j, &x)| {
                let w = layout.decode(r, self.w[layout.index(r, j, n)]);
                s.wrapping_add(w as i32 * x as i32)
            }),
        }
    }

    /// Row `r`'s accumulator with `x`, requantized.
    #[inline]
    pub fn row(&self, r: usize, x: &[i8]) -> i32 {
        requantize(self.dot_row(r, x), self.mult[r], self.shift[r])
    }
}

/// The tied decoder's matrix: the `[rows][depth]` embedding rows (row by
/// row), a multiplier per row and their [`Shifts`] (one per row, or one
/// shared: the `LM` spec's version 2).
#[derive(Clone, Copy, Debug)]
pub struct TiedRows<'a> {
    /// `[rows][depth]` int8 embedding rows.
    pub w: &'a [i8],
    /// Row multipliers.
    pub mult: &'a [i32],
    /// Row shifts.
    pub shift: Shifts<'a>,
}

impl<'a> TiedRows<'a> {
    /// Rows with a shift each.
    pub fn rows(w: &'a [i8], mult: &'a [i32], shift: &'a [i32]) -> Self {
        TiedRows {
            w,
            mult,
            shift: Shifts::PerRow(shift),
        }
    }

    /// The same weights as a row-by-row [`QMatrix`] for the kernels' row
    /// walks (its pairs are empty: only `w` and the layout are read).
    pub(crate) fn weights(&self) -> QMatrix<'a> {
        QMatrix::rows(self.w, &[], &[])
    }
}

/// The cell update from Q3.12 gate pre-activations `[i | f | g | o]`:
///
/// ```text
/// c' = sat16((f·c·2⁴ + i·g + 2¹⁸) >> 19)            Q0.15·Q4.11·2⁴ + Q0.15·Q0.15 = Q.30 → Q4.11
/// h' = sat8((o·tanh(c') + 2²²) >> 23)               Q0.15·Q0.15 = Q.30 → Q0.7
/// ```
/// with `tanh(c')` read at `sat16(2c')` (Q4.11 → Q3.12).
///
/// Computed in `i32`, exactly: `i, f, o ∈ [0, 2^15)` and `|g|, |c| ≤
/// 2^15`, so `|f·c|, |i·g| < 2^30`. With `i·g = 16q + r` (`q = i·g >> 4`,
/// `0 ≤ r < 16`), `f·c·2⁴ + i·g + 2¹⁸ = 16·(f·c + q + 2¹⁴) + r`, and `r <
/// 16` cannot carry across a multiple of `2¹⁹ = 16 · 2¹⁵`: the cell is
/// `(f·c + q + 2¹⁴) >> 15`, whose sum stays below `2^31`
/// (`lstm_cell_is_the_wide_formula` checks it against the 64-bit one).
/// `|o·tanh| < 2^30` likewise.
///
/// # Panics
/// When `gates` is shorter than `4 · h.len()` or `c` than `h` (the
/// driver passes checked slices).
pub fn lstm_cell(gates: &[i16], h: &mut [i8], c: &mut [i16]) {
    let n = h.len();
    let (gi, gf, gg, go) = (
        &gates[..n],
        &gates[n..2 * n],
        &gates[2 * n..3 * n],
        &gates[3 * n..4 * n],
    );
    let c = &mut c[..n];
    let quarters = gi.iter().zip(gf).zip(gg.iter().zip(go));
    for ((h, c), ((&i, &f), (&g, &o))) in h.iter_mut().zip(c.iter_mut()).zip(quarters) {
        let i = sigmoid_q12(i) as i32;
        let f = sigmoid_q12(f) as i32;
        let g = tanh_q12(g) as i32;
        let o = sigmoid_q12(o) as i32;
        let cn = sat16((f * *c as i32 + ((i * g) >> 4) + (1 << 14)) >> 15);
        *c = cn;
        let t = tanh_q12(sat16(2 * cn as i32)) as i32;
        *h = sat8((o * t + (1 << 22)) >> 23);
    }
}

/// Q0.15 → Q0.7 with rounding (half up) and saturation.
#[inline]
pub fn unit_to_q7(x: i16) -> i8 {
    sat8((x as i32 + 128) >> 8)
}

/// Softmax statistics of Q16 logits: the maximum `m` and
/// `S = Σ exp(l − m)` in Q30 (`S ≥ 2^30`: the maximum contributes 1).
///
/// Bounds: `0 ≤ m − l ≤ 2^32 − 1` (both are `i32`), so the cast to `u32`
/// is exact; each term is `≤ 2^30`, so `S ≤ n · 2^30`, which fits `u64`
/// for any `n < 2^34`.
pub fn softmax_stats(logits: &[i32]) -> (i32, u64) {
    let m = logits.iter().copied().max().unwrap_or(0);
    (m, exp_sum(logits, m))
}

/// `Σ exp(l − m)` in Q30 over `logits`, for an `m` at least their maximum
/// (the sum part of [`softmax_stats`], so that the sums of chunks add up to
/// the whole one's). A logit above `m` counts as `m`.
pub fn exp_sum(logits: &[i32], m: i32) -> u64 {
    logits
        .iter()
        .map(|&l| exp_neg((m as i64 - l.min(m) as i64) as u32) as u64)
        .sum()
}

/// `log softmax(l)[x] = (l[x] − m) − ln S`, Q16.
///
/// Bounds: `|l − m| < 2^32` and `|ln_q30(S)| < 2^22` (`S < 2^64`), so the
/// `i64` sum cannot overflow; the result is clamped to `[i32::MIN, 0]`.
#[inline]
pub fn log_softmax_at(l: i32, m: i32, s: u64) -> i32 {
    (l as i64 - m as i64 - ln_q30(s) as i64).clamp(i32::MIN as i64, 0) as i32
}

/// `floor(2^62 / S)`: with it, `p = exp(l − m) · R >> 30` is the softmax
/// probability in Q32.
///
/// Bounds: `S` is taken as at least `2^30` (the statistics guarantee it),
/// so `R ≤ 2^32`.
#[inline]
pub fn reciprocal(s: u64) -> u64 {
    (1u64 << 62) / s.max(1 << 30)
}

/// Softmax probability in Q32 from a logit and the statistics' reciprocal.
///
/// Bounds: `exp_neg ≤ 2^30` and `R ≤ 2^32`: the product is `≤ 2^62` and
/// the result `≤ 2^32` — exactly `2^32` when this logit leads all others
/// by more than about 21.5 nats (their `exp_neg` round to 0, `S = 2^30`).
/// It does not fit a `u32`, and a product of two of them does not fit a
/// `u64`: use [`mix_q32`].
#[inline]
pub fn prob_q32(l: i32, m: i32, recip: u64) -> u64 {
    (exp_neg((m as i64 - l as i64) as u32) as u64 * recip) >> 30
}

/// `p · w` for a Q32 probability `p` and a Q32 mixture weight `w`, in Q32:
/// `floor(p · w / 2^32)`, exactly.
///
/// Bounds: [`prob_q32`] returns at most `2^32` (`exp_neg ≤ 2^30`, the
/// reciprocal `≤ 2^32`), and so does every mixture weight. Both factors can
/// be exactly `2^32` (one component and one token each leading by more than
/// about 21.5 nats), so `p · w` can be `2^64`, one past `u64`. Split `p` as
/// `p_hi · 2^32 + p_lo` with `p_hi ≤ 1` and `p_lo < 2^32`:
/// `p_lo · w ≤ (2^32 − 1) · 2^32 < 2^64`, and the result
/// `p_hi · w + (p_lo · w >> 32) ≤ 2^33` fits. Any `p`, `w ≤ 2^32` is exact.
#[inline]
pub fn mix_q32(p: u64, w: u64) -> u64 {
    let (hi, lo) = (p >> 32, p & 0xFFFF_FFFF);
    // hi ≤ 1 and w ≤ 2^32 by the bounds above; saturate anyway, so that no
    // input whatever can overflow.
    hi.saturating_mul(w)
        .saturating_add(lo.saturating_mul(w) >> 32)
}

/// `log Σ exp(a_k)` of Q16 log-values: `M + ln Σ exp(a_k − M)`.
///
/// Bounds: as [`softmax_stats`] (the sum is `≤ a.len() · 2^30`), and
/// `|M + ln| < 2^33` in `i64`, clamped to `i32`.
pub fn logsumexp(a: &[i32]) -> i32 {
    let m = a.iter().copied().max().unwrap_or(0);
    let s: u64 = a
        .iter()
        .map(|&x| exp_neg((m as i64 - x as i64) as u32) as u64)
        .sum();
    (m as i64 + ln_q30(s) as i64).clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::rng::{Pcg32, Rng};
    use std::vec;

    /// The cell's formula in 64 bits, as written in its documentation.
    fn wide_cell(gates: &[i16], h: &mut [i8], c: &mut [i16]) {
        let n = h.len();
        for j in 0..n {
            let i = sigmoid_q12(gates[j]) as i64;
            let f = sigmoid_q12(gates[n + j]) as i64;
            let g = tanh_q12(gates[2 * n + j]) as i64;
            let o = sigmoid_q12(gates[3 * n + j]) as i64;
            let sum = ((f * c[j] as i64) << 4) + i * g;
            let cn = ((sum + (1 << 18)) >> 19).clamp(i16::MIN as i64, i16::MAX as i64) as i16;
            c[j] = cn;
            let t = tanh_q12(sat16(2 * cn as i32)) as i64;
            h[j] = (((o * t) + (1 << 22)) >> 23).clamp(-128, 127) as i8;
        }
    }

    #[test]
    fn lstm_cell_is_the_wide_formula() {
        // Every combination of 11 extreme values for i, f, g, o and c
        // independently (11^5 cells: i·g and f·c both near +2^30 among
        // them), then 200 rounds of 32,210 random cells.
        let ex = [
            i16::MIN,
            -32767,
            -20000,
            -4096,
            -1,
            0,
            1,
            4095,
            4096,
            20000,
            i16::MAX,
        ];
        let n = ex.len().pow(5);
        let (mut gates, mut c) = (vec![0i16; 4 * n], vec![0i16; n]);
        for j in 0..n {
            let d = |k: u32| ex[j / ex.len().pow(k) % ex.len()];
            gates[j] = d(0);
            gates[n + j] = d(1);
            gates[2 * n + j] = d(2);
            gates[3 * n + j] = d(3);
            c[j] = d(4);
        }
        let mut rng = Pcg32::new(11, 3);
        for round in 0..200 {
            // Round 0 is the grid; then random cells, a fifth as many.
            if round == 1 {
                gates.truncate(4 * n / 5);
                c.truncate(n / 5);
            }
            if round > 0 {
                for g in gates.iter_mut().chain(c.iter_mut()) {
                    *g = rng.next_u32() as i16;
                }
            }
            let m = c.len();
            let (mut h1, mut h2) = (vec![0i8; m], vec![0i8; m]);
            let (mut c1, mut c2) = (c.clone(), c.clone());
            lstm_cell(&gates, &mut h1, &mut c1);
            wide_cell(&gates, &mut h2, &mut c2);
            assert_eq!((h1, c1), (h2, c2), "round {round}");
        }
    }
}
