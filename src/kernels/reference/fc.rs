use super::{expect_len, size};
use crate::quant::to_int8;
use crate::Result;

/// Parameters of a fully connected layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FcParams {
    /// Input length.
    pub in_len: usize,
    /// Output length.
    pub out_len: usize,
    /// Input zero point.
    pub in_zp: i32,
    /// Output zero point.
    pub out_zp: i32,
    /// Lower clamp.
    pub act_min: i8,
    /// Upper clamp.
    pub act_max: i8,
}

/// `output[o] = clamp(requant(bias[o] + Σ_i w[o][i] · (in[i] − in_zp)) + out_zp)`, per-channel requantization.
///
/// # Errors
/// [`crate::Error::BadLength`] when a slice does not match `p`.
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
    for (o, out) in output.iter_mut().enumerate() {
        let w = &weights[o * p.in_len..][..p.in_len];
        let mut acc = bias[o];
        for (&xv, &wv) in input.iter().zip(w) {
            acc = acc.wrapping_add((xv as i32).wrapping_sub(p.in_zp).wrapping_mul(wv as i32));
        }
        *out = to_int8(acc, multiplier[o], shift[o], p.out_zp, p.act_min, p.act_max);
    }
    Ok(())
}
