//! Matrix–vector products on the DSP extension: fully connected layers and
//! the language model's int8 matrices, two rows per pass, `SMLAD`.
//!
//! The input vector is packed once into a stack buffer of `i16` pairs,
//! zero point subtracted (`SXTB16`, `SXTB16 ROR #8`, `SSUB16`); each pass
//! of [`dot_2rows`] then loads a chunk of it with one `LDRD` and unpacks
//! four weights of each of two rows: 24 instructions per 16
//! multiply-accumulates in the inner loop. Inputs longer than [`MAX_IN`]
//! go to the portable kernels.

use super::dsp::{chunks4, dot_2rows, pack_bytes, splat16};
use crate::kernels::reference::{self, expect_len, size, FcParams};
use crate::quant::OutputStage;
use crate::Result;

/// Longest input vector packed on the stack (2,048 bytes of buffer).
pub const MAX_IN: usize = 1024;

/// The input `x − zp` packed in chunks of four; returns the chunk count and
/// the last `len % 4` elements.
fn pack_input(x: &[i8], zp: i32, buf: &mut [[u32; 2]; MAX_IN / 4]) -> (usize, [i32; 3]) {
    let (chunks, rest) = chunks4(x);
    let zp2 = splat16(zp);
    for (b, c) in buf.iter_mut().zip(chunks) {
        *b = pack_bytes(c, zp2);
    }
    let mut tail = [0i32; 3];
    for (t, &v) in tail.iter_mut().zip(rest) {
        *t = v as i32 - zp;
    }
    (chunks.len(), tail)
}

/// `f(r, Σ_i W[r][i]·(x[i] − zp))` for every row `r` of the `[rows][x.len()]`
/// matrix `w` (`rows = w.len() / x.len()`), two rows per pass.
/// `x.len()` must be at most [`MAX_IN`] (callers check).
#[inline(always)]
pub(super) fn rows(w: &[i8], x: &[i8], zp: i32, mut f: impl FnMut(usize, i32)) {
    let n = x.len();
    if n == 0 || n > MAX_IN {
        return;
    }
    let mut buf = [[0u32; 2]; MAX_IN / 4];
    let (nc, tail) = pack_input(x, zp, &mut buf);
    let xs = &buf[..nc];
    let tdot = |r: &[i8]| {
        r.iter()
            .zip(&tail)
            .fold(0i32, |a, (&w, &x)| a.wrapping_add(x.wrapping_mul(w as i32)))
    };
    let mut pairs = w.chunks_exact(2 * n);
    let mut r = 0;
    for pair in &mut pairs {
        let (r0, r1) = pair.split_at(n);
        let (c0, t0) = chunks4(r0);
        let (c1, t1) = chunks4(r1);
        let [a0, a1] = dot_2rows(xs, c0, c1, [0, 0]);
        f(r, a0.wrapping_add(tdot(t0)));
        f(r + 1, a1.wrapping_add(tdot(t1)));
        r += 2;
    }
    if let Some(last) = pairs.remainder().get(..n) {
        let (c0, t0) = chunks4(last);
        let [a0, _] = dot_2rows(xs, c0, c0, [0, 0]);
        f(r, a0.wrapping_add(tdot(t0)));
    }
}

/// Same contract, checks and bytes as [`reference::fully_connected`].
///
/// # Errors
/// [`crate::Error::BadLength`] exactly when the reference returns it.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected(
    p: &FcParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &mut [i8],
) -> Result<()> {
    expect_len(input.len(), p.in_len)?;
    expect_len(weights.len(), size(&[p.in_len, p.out_len]))?;
    expect_len(bias.len(), p.out_len)?;
    expect_len(multiplier.len(), p.out_len)?;
    expect_len(shift.len(), p.out_len)?;
    expect_len(output.len(), p.out_len)?;
    if p.in_len > MAX_IN || p.in_len == 0 {
        return reference::fully_connected(p, input, weights, bias, multiplier, shift, output);
    }
    rows(weights, input, p.in_zp, |o, acc| {
        if let (Some(out), Some(&b), Some(&m), Some(&s)) = (
            output.get_mut(o),
            bias.get(o),
            multiplier.get(o),
            shift.get(o),
        ) {
            *out =
                OutputStage::new(m, s, p.out_zp, p.act_min, p.act_max).apply(b.wrapping_add(acc));
        }
    });
    Ok(())
}
