//! Pooling on the DSP extension, four channels per instruction.
//!
//! - [`max_pool_2x2`]: the signed byte-wise max of two words is `SSUB8`
//!   (which sets the four GE flags where `a ≥ b`) then `SEL`; one output
//!   row per asm call ([`dsp::max_pool_row`]), 13 instructions per four
//!   outputs against about 20 per output for the reference.
//! - [`global_avg_pool`]: each pixel's four channels added into two
//!   registers of `i16` lanes (`SXTAB16`, `SXTAB16 … ROR #8`:
//!   [`dsp::sum_column4`]), at most 255 pixels so that a lane cannot
//!   overflow, then the reference's output stage per channel.
//!
//! Channel counts that are not a multiple of 4, and longer pooling
//! windows, take the portable kernels.

use super::dsp;
use crate::kernels::fast;
use crate::kernels::reference::{expect_len, size, GapParams, PoolParams};
use crate::quant::to_int8;
use crate::Result;

/// Same contract, checks and bytes as [`crate::kernels::reference::max_pool_2x2`].
///
/// # Errors
/// [`crate::Error::BadLength`] exactly when the reference returns it.
pub fn max_pool_2x2(p: &PoolParams, input: &[i8], output: &mut [i8]) -> Result<()> {
    let (oh, ow, c) = (p.in_h / 2, p.in_w / 2, p.c);
    expect_len(input.len(), size(&[p.in_h, p.in_w, c]))?;
    expect_len(output.len(), size(&[oh, ow, c]))?;
    if c % 4 != 0 || output.is_empty() {
        return fast::max_pool_2x2(p, input, output);
    }
    let row = p.in_w * c;
    for (oy, out) in output.chunks_exact_mut(ow * c).enumerate() {
        let rows = input.get(2 * oy * row..).unwrap_or_default();
        if !dsp::max_pool_row(rows, row, c, out) {
            // Cannot happen: the lengths were checked.
            return fast::max_pool_2x2(p, input, output);
        }
    }
    Ok(())
}

/// Same contract, checks and bytes as
/// [`crate::kernels::reference::global_avg_pool`].
///
/// # Errors
/// [`crate::Error::BadLength`] exactly when the reference returns it.
pub fn global_avg_pool(p: &GapParams, input: &[i8], output: &mut [i8]) -> Result<()> {
    let n = size(&[p.in_h, p.in_w]);
    expect_len(input.len(), size(&[n, p.c]))?;
    expect_len(output.len(), p.c)?;
    // 255 · 128 < 2^15: no `i16` lane overflows.
    if p.c % 4 != 0 || n == 0 || n > 255 {
        return fast::global_avg_pool(p, input, output);
    }
    // Σ (x − zp) = Σ x − n · zp, wrapping as the reference's sum.
    let zp_n = p.in_zp.wrapping_mul(n as i32);
    for (ch, out) in output.chunks_exact_mut(4).enumerate() {
        let Some([s02, s13]) = dsp::sum_column4(input, 4 * ch, p.c, n) else {
            // Cannot happen: the lengths were checked.
            return fast::global_avg_pool(p, input, output);
        };
        let lanes = [
            s02 as i16,
            s13 as i16,
            (s02 >> 16) as i16,
            (s13 >> 16) as i16,
        ];
        for (y, s) in out.iter_mut().zip(lanes) {
            let acc = (s as i32).wrapping_sub(zp_n);
            *y = to_int8(acc, p.multiplier, p.shift, p.out_zp, p.act_min, p.act_max);
        }
    }
    Ok(())
}
