//! Language-model matrix kernels, four rows per pass over the input.
//!
//! Same checks, errors and bytes as [`crate::kernels::reference::lm`].
//! Four rows share each loaded input byte: one element per step compiles
//! (thumbv7em, `opt-level = "s"`) to 5 `ldrsb`, 4 multiply-accumulates and
//! the loop test, about 2.75 instructions per product against 4+ for one
//! row at a time.

use crate::kernels::lm::{dot, QMatrix};
use crate::kernels::reference::lm::{check_gates, check_rows, sat16};
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

/// Calls `f(r, W[r]·x)` for every row `r` of the `[rows][x.len()]` matrix
/// `w`, four rows per pass over `x`.
#[inline(always)]
pub(crate) fn matvec(w: &[i8], x: &[i8], mut f: impl FnMut(usize, i32)) {
    let n = x.len();
    if n == 0 {
        return;
    }
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
            let (qx, qh) = (&wx.w[r * ni..][..4 * ni], &wh.w[r * nh..][..4 * nh]);
            let (x0, rest) = qx.split_at(ni);
            let (x1, rest) = rest.split_at(ni);
            let (x2, x3) = rest.split_at(ni);
            ax = dot4(x, x0, x1, x2, x3);
            let (h0, rest) = qh.split_at(nh);
            let (h1, rest) = rest.split_at(nh);
            let (h2, h3) = rest.split_at(nh);
            ah = dot4(h, h0, h1, h2, h3);
        } else {
            for j in 0..q {
                ax[j] = dot(&wx.w[(r + j) * ni..][..ni], x);
                ah[j] = dot(&wh.w[(r + j) * nh..][..nh], h);
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
    matvec(w.w, g, |r, acc| {
        let z = requantize(acc, w.mult[r], w.shift[r]).saturating_add(b[r]);
        out[r] = tanh_q12(sat16(z));
    });
    Ok(())
}

/// [`crate::kernels::reference::lm::decoder`], four rows per pass.
///
/// # Errors
/// As the reference.
pub fn decoder(emb: &QMatrix, b: &[i32], lat: &[i8], logits: &mut [i32]) -> Result<()> {
    check_rows(emb, b, lat, logits.len())?;
    if lat.is_empty() {
        for (v, l) in logits.iter_mut().enumerate() {
            *l = requantize(0, emb.mult[v], emb.shift[v]).saturating_add(b[v]);
        }
        return Ok(());
    }
    matvec(emb.w, lat, |v, acc| {
        logits[v] = requantize(acc, emb.mult[v], emb.shift[v]).saturating_add(b[v]);
    });
    Ok(())
}
