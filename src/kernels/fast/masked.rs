//! Causal (masked) convolutions for PixelCNN-style density models.
//!
//! A masked conv is an ordinary "same" conv (odd `k`, stride 1, padding
//! `k / 2`) whose masked taps are zero; the model checker verifies that.
//! These kernels skip the masked taps: the rows below the centre, and the
//! centre row from the centre (mask A) or past it (mask B) on. Skipping
//! zero products changes no bit, so [`conv2d_masked`] returns exactly what
//! [`crate::kernels::reference::conv2d`] returns for the same weights.
//!
//! [`conv2d_pixel`] computes one output position from a ring of input rows:
//! row `iy` lives in slot `iy % rows`. A causal conv at row `y` reads rows
//! `y − k/2 ..= y` only, so `rows = k/2 + 1` slots suffice. This is what
//! makes incremental sampling cost one forward pass per image instead of
//! one per pixel.

use crate::kernels::reference::{check_conv, expect_len, size, ConvParams};
use crate::kernels::Mask;
use crate::quant::OutputStage;
use crate::{Error, Result};

/// A conv the causal kernels can run: `mask` is A or B, or the conv is 1×1;
/// odd kernel, stride 1, "same" padding.
fn check_causal(p: &ConvParams, mask: Mask) -> Result<()> {
    let ok = (mask != Mask::None || p.k == 1)
        && p.k % 2 == 1
        && p.stride == 1
        && p.pad == p.k / 2
        && (p.out_h, p.out_w) == (p.in_h, p.in_w);
    ok.then_some(()).ok_or(Error::BadLength {
        expected: p.k as u32 / 2,
        got: p.pad as u32,
    })
}

/// [`crate::kernels::reference::conv2d`] for a causal conv, skipping the
/// masked taps. Same bytes out as the reference when the masked weights are zero.
///
/// # Errors
/// [`Error::BadLength`] when a slice does not match `p`, or the conv is
/// not a causal "same" conv (see the module docs).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_masked(
    p: &ConvParams,
    mask: Mask,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &mut [i8],
) -> Result<()> {
    check_conv(p, input, weights, bias, multiplier, shift, output)?;
    check_causal(p, mask)?;
    for (px, out) in output.chunks_exact_mut(p.out_c.max(1)).enumerate() {
        let (y, x) = (px / p.out_w, px % p.out_w);
        pixel(
            p, mask, input, p.in_h, y, x, weights, bias, multiplier, shift, out,
        );
    }
    Ok(())
}

/// Output position `(y, x)` of a causal conv into `out` (`out_c` values),
/// reading the input from a ring of `rows` rows (row `iy` in slot `iy % rows`).
///
/// # Errors
/// [`Error::BadLength`] when a slice does not match `p` and `rows`, `rows`
/// is below `k / 2 + 1`, `(y, x)` is outside the output, or the conv is not
/// a causal "same" conv.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_pixel(
    p: &ConvParams,
    mask: Mask,
    input: &[i8],
    rows: usize,
    y: usize,
    x: usize,
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    out: &mut [i8],
) -> Result<()> {
    check_causal(p, mask)?;
    if rows <= p.k / 2 || rows > p.in_h || y >= p.out_h || x >= p.out_w {
        return Err(Error::BadLength {
            expected: p.k as u32 / 2 + 1,
            got: rows as u32,
        });
    }
    expect_len(input.len(), size(&[rows, p.in_w, p.in_c]))?;
    expect_len(weights.len(), size(&[p.out_c, p.k, p.k, p.in_c]))?;
    expect_len(bias.len(), p.out_c)?;
    expect_len(multiplier.len(), p.out_c)?;
    expect_len(shift.len(), p.out_c)?;
    expect_len(out.len(), p.out_c)?;
    pixel(
        p, mask, input, rows, y, x, weights, bias, multiplier, shift, out,
    );
    Ok(())
}

/// The shared inner loop; lengths are checked by the callers.
#[allow(clippy::too_many_arguments)]
#[inline]
fn pixel(
    p: &ConvParams,
    mask: Mask,
    input: &[i8],
    rows: usize,
    y: usize,
    x: usize,
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    out: &mut [i8],
) {
    let (k, cin, zp) = (p.k, p.in_c, p.in_zp);
    let c = k / 2;
    let (live_rows, centre_cols) = match mask {
        Mask::None => (1, 1), // 1×1 only (checked)
        m => m.live_rows(k),
    };
    let kc = k * cin;
    let taps = k * kc;
    let kx_lo = c.saturating_sub(x);
    let kx_hi = k.min((p.in_w + c).saturating_sub(x));
    let ky_lo = c.saturating_sub(y);
    let stage =
        |o: usize| OutputStage::new(multiplier[o], shift[o], p.out_zp, p.act_min, p.act_max);
    let mut o = 0;
    while o < p.out_c {
        let o1 = if o + 1 < p.out_c { o + 1 } else { o };
        let (w0, w1) = (&weights[o * taps..][..taps], &weights[o1 * taps..][..taps]);
        let (mut a0, mut a1) = (bias[o], bias[o1]);
        for ky in ky_lo..live_rows {
            let hi = if ky == c {
                kx_hi.min(centre_cols)
            } else {
                kx_hi
            };
            if hi <= kx_lo {
                continue;
            }
            let slot = (y + ky - c) % rows;
            let at = (slot * p.in_w + x + kx_lo - c) * cin;
            let n = (hi - kx_lo) * cin;
            let r = ky * kc + kx_lo * cin;
            let xs = &input[at..][..n];
            for ((&xv, &u), &v) in xs.iter().zip(&w0[r..][..n]).zip(&w1[r..][..n]) {
                let d = (xv as i32).wrapping_sub(zp);
                a0 = a0.wrapping_add(d.wrapping_mul(u as i32));
                a1 = a1.wrapping_add(d.wrapping_mul(v as i32));
            }
        }
        out[o1] = stage(o1).apply(a1);
        out[o] = stage(o).apply(a0);
        o += 2;
    }
}
