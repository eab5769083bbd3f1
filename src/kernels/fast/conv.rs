//! conv2d: output channels in pairs, interior output pixels in pairs.
//!
//! - The input zero point leaves the inner loop: for an output pixel whose
//!   whole window lies inside the image, `Σ (x − zp)·w = Σ x·w − zp·Σ w`,
//!   and `bias − zp·Σ w` is computed once per output channel.
//! - Interior pixels go two at a time and channels two at a time: each
//!   input byte loaded feeds two products, each weight byte two as well.
//! - One kernel row `(kx, ci)` is contiguous in both the HWC input and the
//!   OHWI weights, so each window is `k` dot products of `k · in_c` bytes.
//! - Border pixels (window partly in the padding), an odd last interior
//!   pixel of a row, and everything else take the plain path: clipped
//!   window, `x − zp` per input byte, still two channels at a time.
//!
//! An odd last channel is computed as a pair with itself (its result
//! written once), which keeps one code path.

use crate::kernels::reference::{check_conv, ConvParams};
use crate::quant::OutputStage;
use crate::Result;

/// Same contract, checks and bytes as [`crate::kernels::reference::conv2d`].
///
/// # Errors
/// [`crate::Error::BadLength`] exactly when the reference returns it, with
/// the same values.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    p: &ConvParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &mut [i8],
) -> Result<()> {
    check_conv(p, input, weights, bias, multiplier, shift, output)?;
    if output.is_empty() {
        // No output: nothing bounds `k · k · in_c` (the weights are empty
        // too), so compute nothing with it.
        return Ok(());
    }
    let (k, s, pad, cin, zp) = (p.k, p.stride, p.pad, p.in_c, p.in_zp);
    let kc = k * cin; // one kernel row
    let taps = k * kc; // weights per output channel
    let row = p.in_w * cin; // one input row
    let (oy_lo, oy_hi) = interior(p.in_h, p.out_h, k, s, pad);
    let (ox_lo, ox_hi) = interior(p.in_w, p.out_w, k, s, pad);
    let stage =
        |o: usize| OutputStage::new(multiplier[o], shift[o], p.out_zp, p.act_min, p.act_max);

    let mut o = 0;
    while o < p.out_c {
        // An odd last channel pairs with itself.
        let o1 = if o + 1 < p.out_c { o + 1 } else { o };
        let w0 = &weights[o * taps..][..taps];
        let w1 = &weights[o1 * taps..][..taps];
        let (b0, b1) = (bias[o], bias[o1]);
        let zb0 = b0.wrapping_sub(zp.wrapping_mul(sum(w0)));
        let zb1 = b1.wrapping_sub(zp.wrapping_mul(sum(w1)));
        let (q0, q1) = (stage(o), stage(o1));
        // Pixel `px` is in range (check_conv); written with `get` anyway.
        let mut write = |px: usize, a0: i32, a1: i32| {
            if let Some(out) = output.get_mut(px * p.out_c..) {
                if let (Some(_), Some(_)) = (out.get(o), out.get(o1)) {
                    out[o1] = q1.apply(a1);
                    out[o] = q0.apply(a0);
                }
            }
        };
        for oy in 0..p.out_h {
            let y0 = oy * s;
            let row_inside = oy_lo <= oy && oy < oy_hi;
            let mut ox = 0;
            while ox < p.out_w {
                let x0 = ox * s;
                let px = oy * p.out_w + ox;
                if row_inside && ox_lo <= ox && ox + 1 < ox_hi {
                    // Two interior pixels: every tap is inside the image.
                    let base = (y0 - pad) * row + (x0 - pad) * cin;
                    let mut acc = [zb0, zb1, zb0, zb1];
                    for ky in 0..k {
                        let xa = &input[base + ky * row..][..kc];
                        let xb = &input[base + ky * row + s * cin..][..kc];
                        let r = ky * kc;
                        dot2x2(xa, xb, &w0[r..][..kc], &w1[r..][..kc], &mut acc);
                    }
                    write(px, acc[0], acc[1]);
                    write(px + 1, acc[2], acc[3]);
                    ox += 2;
                } else {
                    // Window clipped to the image: 0 <= y0 + ky - pad < in_h.
                    // With padding past the kernel a window can miss the
                    // image entirely: then no row runs.
                    let kx_lo = pad.saturating_sub(x0);
                    let kx_hi = k.min((p.in_w + pad).saturating_sub(x0));
                    let ky_lo = pad.saturating_sub(y0);
                    let ky_hi = match kx_lo < kx_hi {
                        true => k.min((p.in_h + pad).saturating_sub(y0)),
                        false => 0,
                    };
                    let n = kx_hi.saturating_sub(kx_lo) * cin;
                    let (mut a0, mut a1) = (b0, b1);
                    for ky in ky_lo..ky_hi {
                        let at = (y0 + ky - pad) * row + (x0 + kx_lo - pad) * cin;
                        let r = ky * kc + kx_lo * cin;
                        let x = &input[at..][..n];
                        for ((&xv, &u), &v) in x.iter().zip(&w0[r..][..n]).zip(&w1[r..][..n]) {
                            let d = (xv as i32).wrapping_sub(zp);
                            a0 = a0.wrapping_add(d.wrapping_mul(u as i32));
                            a1 = a1.wrapping_add(d.wrapping_mul(v as i32));
                        }
                    }
                    write(px, a0, a1);
                    ox += 1;
                }
            }
        }
        o += 2;
    }
    Ok(())
}

/// Output positions `[lo, hi)` along one axis whose window lies inside the
/// input: `o·s >= pad` and `o·s + k <= n + pad`.
fn interior(n: usize, out: usize, k: usize, s: usize, pad: usize) -> (usize, usize) {
    let hi = match (n + pad).checked_sub(k) {
        Some(room) => (room / s + 1).min(out),
        None => 0,
    };
    (pad.div_ceil(s).min(hi), hi)
}

pub(super) fn sum(w: &[i8]) -> i32 {
    w.iter().fold(0i32, |a, &v| a.wrapping_add(v as i32))
}

/// `acc += [xa·w0, xa·w1, xb·w0, xb·w1]` over equal-length rows.
///
/// One byte per step compiles (thumbv7em, `opt-level = "s"`) to 4 `ldrsb`,
/// 4 `smlabb`, `subs`, `bne`: 2.5 instructions per product, no spill.
/// Measured on QEMU, unrolling by 2 or 4 was slower (it spills).
#[inline(always)]
pub(super) fn dot2x2(xa: &[i8], xb: &[i8], w0: &[i8], w1: &[i8], acc: &mut [i32; 4]) {
    let [mut a, mut b, mut c, mut d] = *acc;
    for (((&x, &y), &u), &v) in xa.iter().zip(xb).zip(w0).zip(w1) {
        let (x, y, u, v) = (x as i32, y as i32, u as i32, v as i32);
        a = a.wrapping_add(x * u);
        b = b.wrapping_add(x * v);
        c = c.wrapping_add(y * u);
        d = d.wrapping_add(y * v);
    }
    *acc = [a, b, c, d];
}
