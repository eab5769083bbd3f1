//! Causal (masked) convolutions for PixelCNN-style density models.
//!
//! A masked conv is an ordinary "same" conv (odd `k`, stride 1, padding
//! `k / 2`) whose masked taps are zero; the model checker verifies that.
//! These kernels skip the masked taps: the rows below the centre, and the
//! centre row from the centre (mask A) or past it (mask B) on. Skipping
//! zero products changes no bit, so [`conv2d_masked`] returns exactly what
//! [`crate::kernels::reference::conv2d`] returns for the same weights.
//!
//! [`conv2d_masked`] also takes the "valid" geometry (no padding, `k − 1`
//! fewer rows and columns out than in): a window cut from a same conv's
//! input, as the streaming paths of [`crate::models::DensityModel`] cut
//! one for a strip of positions. There it runs the reference conv.
//!
//! [`conv2d_pixel`] computes one output position from a ring of input rows:
//! row `iy` lives in slot `iy % rows`. A causal conv at row `y` reads rows
//! `y − k/2 ..= y` only, so `rows = min(k/2 + 1, h)` slots suffice. This is what
//! makes incremental sampling cost one forward pass per image instead of
//! one per pixel.

use crate::kernels::reference::{check_conv, expect_len, size, ConvParams};
use crate::kernels::Mask;
use crate::quant::OutputStage;
use crate::{Error, Result};

/// A conv the causal kernels can run: `mask` is A or B, or the conv is 1×1;
/// odd kernel, stride 1, "same" padding (or, for [`conv2d_masked`], none
/// and the valid output size: [`valid`]).
pub(crate) fn check_causal(p: &ConvParams, mask: Mask) -> Result<()> {
    let ok = (mask != Mask::None || p.k == 1)
        && p.k % 2 == 1
        && p.stride == 1
        && ((p.pad == p.k / 2 && (p.out_h, p.out_w) == (p.in_h, p.in_w)) || valid(p));
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
    if output.is_empty() {
        // As in `fast::conv2d`: no output, no bound on `k · k · in_c`.
        return Ok(());
    }
    if valid(p) && p.k > 1 {
        // A window cut from a same conv's input (the density driver's
        // strips): the reference conv, whose bytes these kernels match when
        // the masked taps are zero. The DSP kernel takes the live taps only;
        // here the masked taps are multiplied too, so the driver cuts such
        // windows only on hosted targets when the DSP kernels are absent.
        return crate::kernels::reference::conv2d(
            p, input, weights, bias, multiplier, shift, output,
        );
    }
    let (k, cin, zp, w) = (p.k, p.in_c, p.in_zp, p.in_w);
    let c = k / 2;
    let (live_rows, centre_cols) = live(mask, k);
    let kc = k * cin;
    let taps = k * kc;
    let row = w * cin;
    let stage =
        |o: usize| OutputStage::new(multiplier[o], shift[o], p.out_zp, p.act_min, p.act_max);
    let mut o = 0;
    while o < p.out_c {
        let o1 = if o + 1 < p.out_c { o + 1 } else { o };
        let (w0, w1) = (&weights[o * taps..][..taps], &weights[o1 * taps..][..taps]);
        // Masked taps are zero, so the sum over the whole filter is the live taps' sum.
        let zb0 = bias[o].wrapping_sub(zp.wrapping_mul(super::conv::sum(w0)));
        let zb1 = bias[o1].wrapping_sub(zp.wrapping_mul(super::conv::sum(w1)));
        let (q0, q1) = (stage(o), stage(o1));
        let mut put = |px: usize, a0: i32, a1: i32| {
            if let Some(out) = output.get_mut(px * p.out_c..) {
                if let (Some(_), Some(_)) = (out.get(o), out.get(o1)) {
                    out[o1] = q1.apply(a1);
                    out[o] = q0.apply(a0);
                }
            }
        };
        for y in 0..p.in_h {
            let mut x = 0;
            while x < w {
                if y >= c && x >= c && x + 1 + c < w {
                    // Two pixels whose live windows lie inside the image.
                    let base = ((y - c) * w + x - c) * cin;
                    let mut acc = [zb0, zb1, zb0, zb1];
                    for ky in 0..live_rows {
                        let n = if ky == c { centre_cols * cin } else { kc };
                        let at = base + ky * row;
                        super::conv::dot2x2(
                            &input[at..][..n],
                            &input[at + cin..][..n],
                            &w0[ky * kc..][..n],
                            &w1[ky * kc..][..n],
                            &mut acc,
                        );
                    }
                    put(y * w + x, acc[0], acc[1]);
                    put(y * w + x + 1, acc[2], acc[3]);
                    x += 2;
                } else {
                    let (a0, a1) = pair_at(p, mask, input, p.in_h, y, x, w0, w1, bias[o], bias[o1]);
                    put(y * w + x, a0, a1);
                    x += 1;
                }
            }
        }
        o += 2;
    }
    Ok(())
}

/// The valid geometry of a masked conv: no padding, stride 1, and
/// `k − 1` fewer output rows and columns than input ones.
pub(crate) fn valid(p: &ConvParams) -> bool {
    p.pad == 0
        && p.stride == 1
        && p.k >= 1
        && p.in_h.checked_sub(p.k - 1) == Some(p.out_h)
        && p.in_w.checked_sub(p.k - 1) == Some(p.out_w)
}

/// Output position `(y, x)` of a causal conv into `out` (`out_c` values),
/// reading the input from a ring of `rows` rows (row `iy` in slot `iy % rows`).
///
/// # Errors
/// [`Error::BadLength`] when a slice does not match `p` and `rows`, `rows`
/// is below `min(k / 2 + 1, in_h)` or above `in_h`, `(y, x)` is outside the
/// output, or the conv is not a causal "same" conv.
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
    check_pixel(
        p, mask, input, rows, y, x, weights, bias, multiplier, shift, out,
    )?;
    pixel(
        p, mask, input, rows, y, x, weights, bias, multiplier, shift, out,
    );
    Ok(())
}

/// The checks of [`conv2d_pixel`], shared with the DSP version.
///
/// # Errors
/// As [`conv2d_pixel`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn check_pixel(
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
    out: &[i8],
) -> Result<()> {
    check_causal(p, mask)?;
    // The window reads rows y − k/2 ..= y, of which at most
    // min(k/2 + 1, in_h) lie in the image: a ring of that many rows holds
    // them all in distinct slots.
    let need = (p.k / 2).saturating_add(1).min(p.in_h);
    if rows < need || rows > p.in_h || y >= p.out_h || x >= p.out_w {
        return Err(Error::BadLength {
            expected: u32::try_from(need).unwrap_or(u32::MAX),
            got: u32::try_from(rows).unwrap_or(u32::MAX),
        });
    }
    expect_len(input.len(), size(&[rows, p.in_w, p.in_c]))?;
    expect_len(weights.len(), size(&[p.out_c, p.k, p.k, p.in_c]))?;
    expect_len(bias.len(), p.out_c)?;
    expect_len(multiplier.len(), p.out_c)?;
    expect_len(shift.len(), p.out_c)?;
    expect_len(out.len(), p.out_c)?;
    Ok(())
}

/// Live rows and, in the centre row, live columns of a causal kernel.
pub(crate) fn live(mask: Mask, k: usize) -> (usize, usize) {
    match mask {
        Mask::None => (1, 1), // 1×1 only (checked)
        m => m.live_rows(k),
    }
}

/// All output channels of position `(y, x)`; lengths are checked by the callers.
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
    let taps = p.k * p.k * p.in_c;
    let stage =
        |o: usize| OutputStage::new(multiplier[o], shift[o], p.out_zp, p.act_min, p.act_max);
    let mut o = 0;
    while o < p.out_c {
        let o1 = if o + 1 < p.out_c { o + 1 } else { o };
        let (w0, w1) = (&weights[o * taps..][..taps], &weights[o1 * taps..][..taps]);
        let (a0, a1) = pair_at(p, mask, input, rows, y, x, w0, w1, bias[o], bias[o1]);
        out[o1] = stage(o1).apply(a1);
        out[o] = stage(o).apply(a0);
        o += 2;
    }
}

/// Accumulators of two output channels at `(y, x)`, the window clipped to
/// the image and to the mask, input row `iy` read from slot `iy % rows`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pair_at(
    p: &ConvParams,
    mask: Mask,
    input: &[i8],
    rows: usize,
    y: usize,
    x: usize,
    w0: &[i8],
    w1: &[i8],
    b0: i32,
    b1: i32,
) -> (i32, i32) {
    let (k, cin, zp) = (p.k, p.in_c, p.in_zp);
    let c = k / 2;
    let (live_rows, centre_cols) = live(mask, k);
    let kc = k * cin;
    let kx_lo = c.saturating_sub(x);
    let kx_hi = k.min((p.in_w + c).saturating_sub(x));
    let ky_lo = c.saturating_sub(y);
    let (mut a0, mut a1) = (b0, b1);
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
    (a0, a1)
}
