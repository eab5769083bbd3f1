//! Matrix–vector products on the DSP extension: fully connected layers and
//! the language model's int8 matrices, two rows per pass, `SMLAD`.
//!
//! The input vector is packed once into a stack buffer of `i16` pairs,
//! zero point subtracted (`SXTB16`, `SXTB16 ROR #8`, `SSUB16`); each pass
//! of [`dot_2rows`] then loads a chunk of it with one `LDRD` and unpacks
//! four weights of each of two rows: 24 instructions per 16
//! multiply-accumulates in the inner loop. Inputs longer than [`MAX_IN`]
//! go to the portable kernels.

use super::conv::{packs, Requant};
use super::dsp::{channel_pairs, chunks4, dot_2rows, pack_bytes, splat16};
use crate::kernels::reference::{self, expect_len, size, FcParams};
use crate::quant::OutputStage;
use crate::Result;

/// Longest input vector packed on the stack (2,048 bytes of buffer).
pub const MAX_IN: usize = 1024;

/// Inputs up to this long pack into a 256-byte buffer instead of
/// [`MAX_IN`]'s 2,048 bytes, whose zeroing on every call cost more than a
/// small layer's products (DiracNet's 64 → 10 head).
const SMALL_IN: usize = 128;

/// The input `x − zp` packed in chunks of four; returns the chunk count and
/// the last `len % 4` elements.
fn pack_input(x: &[i8], zp: i32, buf: &mut [[u32; 2]]) -> (usize, [i32; 3]) {
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

/// `f(r, Σ_i W[r][i]·(x[i] − zp))` for rows `r ≥ first` of the
/// `[rows][n]` matrix `w` (`rows = w.len() / n`), two rows per pass; `xs`
/// and `tail` are the input as [`pack_input`] packs it.
#[inline(always)]
fn rows_from(
    first: usize,
    w: &[i8],
    n: usize,
    xs: &[[u32; 2]],
    tail: &[i32; 3],
    mut f: impl FnMut(usize, i32),
) {
    if n == 0 {
        return;
    }
    let tdot = |r: &[i8]| {
        r.iter()
            .zip(tail)
            .fold(0i32, |a, (&w, &x)| a.wrapping_add(x.wrapping_mul(w as i32)))
    };
    let rest = w.get(first.saturating_mul(n)..).unwrap_or_default();
    let mut pairs = rest.chunks_exact(2 * n);
    let mut r = first;
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
/// Inputs that are whole chunks of four run the rows in pairs with their
/// output stage in one asm block ([`channel_pairs`]), as far as the
/// channels take the high-word stage; the rest (an odd last row, rows
/// after one off that stage, inputs with a tail) the Rust loop.
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
    if p.in_len > MAX_IN || p.in_len == 0 || !packs(p.in_zp) {
        return reference::fully_connected(p, input, weights, bias, multiplier, shift, output);
    }
    let args = (input, weights, bias, multiplier, shift);
    if p.in_len <= SMALL_IN {
        packed(p, args, &mut [[0u32; 2]; SMALL_IN / 4], output);
    } else {
        packed(p, args, &mut [[0u32; 2]; MAX_IN / 4], output);
    }
    Ok(())
}

/// [`fully_connected`] past its checks, with the input packed into `buf`
/// (at least `in_len / 4` chunks; one copy of the code for both sizes).
#[allow(clippy::type_complexity)]
#[inline(never)]
fn packed(
    p: &FcParams,
    (input, weights, bias, multiplier, shift): (&[i8], &[i8], &[i32], &[i32], &[i32]),
    buf: &mut [[u32; 2]],
    output: &mut [i8],
) {
    let (nc, tail) = pack_input(input, p.in_zp, buf);
    let xs = buf.get(..nc).unwrap_or_default();
    let stage = Requant::new(p.out_zp, p.act_min, p.act_max);
    let done = if p.in_len % 4 == 0 && stage.zp_small() {
        let (zp, lo, hi) = stage.constants();
        channel_pairs(
            xs,
            weights,
            p.in_len,
            bias,
            multiplier,
            shift,
            (zp, lo, hi),
            output,
        )
        .unwrap_or(0)
    } else {
        0
    };
    rows_from(done, weights, p.in_len, xs, &tail, |o, acc| {
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
}
