//! Language-model matrix kernels, four rows per pass over the input.
//!
//! Same checks, errors and bytes as [`crate::kernels::reference::lm`].
//! Four rows share each loaded input byte: one element per step compiles
//! (thumbv7em, `opt-level = "s"`) to 5 `ldrsb`, 4 multiply-accumulates and
//! the loop test, about 2.75 instructions per product against 4+ for one
//! row at a time.

use crate::kernels::lm::{dot, QMatrix, Shifts, TiedRows, WeightLayout};
use crate::kernels::reference::lm::{check_gates, check_rows, check_tied, sat16};
use crate::quant::nonlin::tanh_q12;
use crate::quant::requantize;
use crate::Result;

/// `acc[j] = rows[j]·x` for four rows sharing one pass over `x`.
#[inline(always)]
fn dot4(x: &[i8], r0: &[i8], r1: &[i8], r2: &[i8], r3: &[i8]) -> [i32; 4] {
    let (mut a, mut b, mut c, mut d) = (0i32, 0i32, 0i32, 0i32);
    for ((((&x, &u), &v), &w), &z) in x.iter().zip(r0).zip(r1).zip(r2).zip(r3) {
        let x = x as i32;
        a = a.wrapping_add(x * u as i32);
        b = b.wrapping_add(x * v as i32);
        c = c.wrapping_add(x * w as i32);
        d = d.wrapping_add(x * z as i32);
    }
    [a, b, c, d]
}

/// `acc[j] = W[4g + j]·x` for group `g` (its `4 · x.len()` bytes,
/// `block`) of a [`WeightLayout::RowQuads`] matrix: per chunk of four
/// columns, 16 bytes holding rows `4g`, `4g + 1` interleaved, then `4g +
/// 2`, `4g + 3`, each pair's first row offset by 128.
#[inline(always)]
fn group_dots(block: &[i8], x: &[i8]) -> [i32; 4] {
    let mut a = [0i32; 4];
    for (c, xs) in block.chunks_exact(16).zip(x.chunks_exact(4)) {
        for (k, &x) in xs.iter().enumerate() {
            let x = x as i32;
            for (p, acc) in a.chunks_exact_mut(2).enumerate() {
                let at = 8 * p + 2 * k;
                acc[0] = acc[0].wrapping_add(x * (c[at] ^ i8::MIN) as i32);
                acc[1] = acc[1].wrapping_add(x * c[at + 1] as i32);
            }
        }
    }
    a
}

/// The four rows `r..r + 4` of `m` with `x` (`r` a multiple of 4 for row
/// quads, whose checked shape has whole groups).
#[inline(always)]
fn dots4(m: &QMatrix, r: usize, x: &[i8]) -> [i32; 4] {
    let n = x.len();
    let block = &m.w[r * n..][..4 * n];
    if m.layout == WeightLayout::RowQuads {
        return group_dots(block, x);
    }
    let (r0, rest) = block.split_at(n);
    let (r1, rest) = rest.split_at(n);
    let (r2, r3) = rest.split_at(n);
    dot4(x, r0, r1, r2, r3)
}

/// Calls `f(r, W[r]·x)` for every row `r` of the `[rows][x.len()]` matrix
/// `m` (either layout), four rows per pass over `x`.
#[inline(always)]
pub(crate) fn matvec(m: &QMatrix, x: &[i8], mut f: impl FnMut(usize, i32)) {
    let n = x.len();
    if n == 0 {
        return;
    }
    if m.layout == WeightLayout::RowQuads {
        for (g, block) in m.w.chunks_exact(4 * n).enumerate() {
            for (j, a) in group_dots(block, x).into_iter().enumerate() {
                f(4 * g + j, a);
            }
        }
        return;
    }
    let w = m.w;
    let mut quads = w.chunks_exact(4 * n);
    let mut r = 0;
    for q in &mut quads {
        let (r0, rest) = q.split_at(n);
        let (r1, rest) = rest.split_at(n);
        let (r2, r3) = rest.split_at(n);
        let acc = dot4(x, r0, r1, r2, r3);
        for (j, a) in acc.into_iter().enumerate() {
            f(r + j, a);
        }
        r += 4;
    }
    for row in quads.remainder().chunks_exact(n) {
        f(r, dot(row, x));
        r += 1;
    }
}

/// [`crate::kernels::reference::lm::lstm_gates`], four rows per pass.
///
/// # Errors
/// As the reference.
pub fn lstm_gates(
    wx: &QMatrix,
    x: &[i8],
    wh: &QMatrix,
    h: &[i8],
    bias: &[i32],
    gates: &mut [i16],
) -> Result<()> {
    check_gates(wx, x, wh, h, bias, gates)?;
    // Both products of a row are needed before its gate is written (a
    // requantized term does not fit the i16 gate), so rows go in fours.
    let rows = gates.len();
    let (ni, nh) = (x.len(), h.len());
    let mut r = 0;
    while r < rows {
        let q = (rows - r).min(4);
        let (mut ax, mut ah) = ([0i32; 4], [0i32; 4]);
        if q == 4 && ni > 0 && nh > 0 {
            ax = dots4(wx, r, x);
            ah = dots4(wh, r, h);
        } else {
            // Row by row (never row quads: their checked shape has whole
            // groups).
            for j in 0..q {
                ax[j] = wx.dot_row(r + j, x);
                ah[j] = wh.dot_row(r + j, h);
            }
        }
        for j in 0..q {
            let i = r + j;
            let z = requantize(ax[j], wx.mult[i], wx.shift[i])
                .saturating_add(requantize(ah[j], wh.mult[i], wh.shift[i]))
                .saturating_add(bias[i]);
            gates[i] = sat16(z);
        }
        r += q;
    }
    Ok(())
}

/// [`crate::kernels::reference::lm::latent`], four rows per pass.
///
/// # Errors
/// As the reference.
pub fn latent(w: &QMatrix, b: &[i32], g: &[i8], out: &mut [i16]) -> Result<()> {
    check_rows(w, b, g, out.len())?;
    if g.is_empty() {
        for (r, o) in out.iter_mut().enumerate() {
            *o = tanh_q12(sat16(
                requantize(0, w.mult[r], w.shift[r]).saturating_add(b[r]),
            ));
        }
        return Ok(());
    }
    matvec(w, g, |r, acc| {
        let z = requantize(acc, w.mult[r], w.shift[r]).saturating_add(b[r]);
        out[r] = tanh_q12(sat16(z));
    });
    Ok(())
}

/// [`crate::kernels::reference::lm::decoder`], four rows per pass.
///
/// # Errors
/// As the reference.
pub fn decoder(emb: &TiedRows, b: &[i32], lat: &[i8], logits: &mut [i32]) -> Result<()> {
    check_tied(emb, b, lat, logits.len())?;
    if lat.is_empty() {
        for (v, l) in logits.iter_mut().enumerate() {
            *l = requantize(0, emb.mult[v], emb.shift.at(v)).saturating_add(b[v]);
        }
        return Ok(());
    }
    // The shift's form is known once per call, not per row.
    match emb.shift {
        Shifts::PerRow(shift) => matvec(&emb.weights(), lat, |v, acc| {
            logits[v] = requantize(acc, emb.mult[v], shift[v]).saturating_add(b[v]);
        }),
        Shifts::Shared(s) => matvec(&emb.weights(), lat, |v, acc| {
            logits[v] = requantize(acc, emb.mult[v], s).saturating_add(b[v]);
        }),
    }
    Ok(())
}
