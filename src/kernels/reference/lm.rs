//! Reference language-model matrix kernels: the int8 matrix–vector
//! products of the LSTM gates, the heads' latent projection and the tied
//! decoder, one row at a time.
//!
//! A [`QMatrix`] is `[rows][depth]` int8 weights with one requantization
//! `(multiplier, shift)` per row; activations are symmetric (no zero
//! point). Accumulation wraps in `i32` like every other kernel, so any
//! order of the products gives the same bits. The nonlinearities and
//! softmax statistics that follow are in [`crate::kernels::lm`].

use super::{expect_len, size};
use crate::kernels::lm::{dot, QMatrix, Shifts, TiedRows, WeightLayout};
use crate::quant::nonlin::tanh_q12;
use crate::quant::requantize;
use crate::Result;

#[inline]
pub(crate) fn sat16(v: i32) -> i16 {
    v.clamp(i16::MIN as i32, i16::MAX as i32) as i16
}

/// `w` is `[rows][depth]` with a multiplier and a shift per row, in a
/// layout that fits the shape: row quads need `rows` and `depth` multiples
/// of 4 ([`crate::Error::BadGraph`] otherwise, as the checker refuses such
/// a layer).
fn check_matrix(w: &QMatrix, rows: usize, depth: usize) -> Result<()> {
    if w.layout == WeightLayout::RowQuads && !WeightLayout::quads_fit(rows, depth) {
        return Err(crate::Error::BadGraph);
    }
    expect_len(w.w.len(), size(&[rows, depth]))?;
    expect_len(w.mult.len(), rows)?;
    expect_len(w.shift.len(), rows)
}

/// The length checks of [`lstm_gates`], shared by every implementation.
pub(crate) fn check_gates(
    wx: &QMatrix,
    x: &[i8],
    wh: &QMatrix,
    h: &[i8],
    bias: &[i32],
    gates: &[i16],
) -> Result<()> {
    let rows = gates.len();
    check_matrix(wx, rows, x.len())?;
    check_matrix(wh, rows, h.len())?;
    expect_len(bias.len(), rows)
}

/// The length checks of [`latent`] and [`decoder`]: `rows` outputs of
/// `w · x` plus a bias each.
pub(crate) fn check_rows(w: &QMatrix, b: &[i32], x: &[i8], rows: usize) -> Result<()> {
    check_matrix(w, rows, x.len())?;
    expect_len(b.len(), rows)
}

/// Gate pre-activations in Q3.12 for every row `r` of the `4H` rows:
/// `gates[r] = sat16(rq_x(W_x[r]·x) +sat rq_h(W_h[r]·h) +sat bias[r])`,
/// `rq` the row's [`requantize`], `+sat` saturating `i32` addition.
///
/// # Errors
/// [`crate::Error::BadLength`] unless `wx` is `[gates.len()][x.len()]`,
/// `wh` is `[gates.len()][h.len()]` (with a multiplier and shift per row)
/// and `bias` has `gates.len()` values.
pub fn lstm_gates(
    wx: &QMatrix,
    x: &[i8],
    wh: &QMatrix,
    h: &[i8],
    bias: &[i32],
    gates: &mut [i16],
) -> Result<()> {
    check_gates(wx, x, wh, h, bias, gates)?;
    for (r, g) in gates.iter_mut().enumerate() {
        let ax = wx.dot_row(r, x);
        let ah = wh.dot_row(r, h);
        let z = requantize(ax, wx.mult[r], wx.shift[r])
            .saturating_add(requantize(ah, wh.mult[r], wh.shift[r]))
            .saturating_add(bias[r]);
        *g = sat16(z);
    }
    Ok(())
}

/// The heads' latents in Q0.15: `out[r] = tanh(sat16(rq(W[r]·g) +sat b[r]))`
/// (`tanh` of [`crate::quant::nonlin::tanh_q12`], input Q3.12).
///
/// # Errors
/// [`crate::Error::BadLength`] unless `w` is `[out.len()][g.len()]` and
/// `b` has `out.len()` values.
pub fn latent(w: &QMatrix, b: &[i32], g: &[i8], out: &mut [i16]) -> Result<()> {
    check_rows(w, b, g, out.len())?;
    for (r, o) in out.iter_mut().enumerate() {
        let z = requantize(w.dot_row(r, g), w.mult[r], w.shift[r]).saturating_add(b[r]);
        *o = tanh_q12(sat16(z));
    }
    Ok(())
}

/// The length checks of [`decoder`]: `emb` is `[rows][lat.len()]` with a
/// multiplier per row and a shift per row or one shared, `b` has `rows`
/// values.
pub(crate) fn check_tied(emb: &TiedRows, b: &[i32], lat: &[i8], rows: usize) -> Result<()> {
    expect_len(emb.w.len(), size(&[rows, lat.len()]))?;
    expect_len(emb.mult.len(), rows)?;
    if let Shifts::PerRow(s) = emb.shift {
        expect_len(s.len(), rows)?;
    }
    expect_len(b.len(), rows)
}

/// Tied decoder, Q16 nats: `logits[v] = rq(E[v]·lat) +sat b[v]`.
///
/// # Errors
/// [`crate::Error::BadLength`] unless `emb` is `[logits.len()][lat.len()]`
/// (with a shift per row, or one shared) and `b` has `logits.len()` values.
pub fn decoder(emb: &TiedRows, b: &[i32], lat: &[i8], logits: &mut [i32]) -> Result<()> {
    check_tied(emb, b, lat, logits.len())?;
    let n = lat.len();
    for (v, l) in logits.iter_mut().enumerate() {
        let acc = dot(&emb.w[v * n..(v + 1) * n], lat);
        *l = requantize(acc, emb.mult[v], emb.shift.at(v)).saturating_add(b[v]);
    }
    Ok(())
}
