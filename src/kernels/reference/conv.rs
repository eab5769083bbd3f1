use super::{expect_len, size};
use crate::quant::to_int8;
use crate::{Error, Result};

/// Parameters of a 2-D convolution with zero padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvParams {
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Input channels.
    pub in_c: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Output channels.
    pub out_c: usize,
    /// Square kernel size.
    pub k: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// Zero padding on every side (padding takes the input zero point's value, i.e. real 0).
    pub pad: usize,
    /// Input zero point.
    pub in_zp: i32,
    /// Output zero point.
    pub out_zp: i32,
    /// Lower clamp (fused ReLU sets it to the output zero point).
    pub act_min: i8,
    /// Upper clamp.
    pub act_max: i8,
}

impl ConvParams {
    /// Output size along one axis for input size `n`, or None if the kernel does not fit.
    pub fn out_dim(n: usize, k: usize, stride: usize, pad: usize) -> Option<usize> {
        let padded = n.checked_add(pad.checked_mul(2)?)?;
        if stride == 0 || padded < k {
            return None;
        }
        Some((padded - k) / stride + 1)
    }
}

/// `output[y][x][o] = clamp(requant(bias[o] + Σ w[o][ky][kx][i] · (in[y·s+ky−p][x·s+kx−p][i] − in_zp)) + out_zp)`.
///
/// Taps that fall into the padding contribute nothing. `multiplier` and
/// `shift` hold one value per output channel.
///
/// # Errors
/// [`Error::BadLength`] when a slice does not match `p`, or when the output
/// shape is not the one `p`'s input, kernel, stride and padding give.
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
    check(p, input, weights, bias, multiplier, shift, output)?;
    conv_with(
        p,
        input,
        |i| weights[i] as i32,
        bias,
        multiplier,
        shift,
        output,
    );
    Ok(())
}

/// [`conv2d`] with the weights in the pairs layout ([`to_pairs`]): the
/// same OHWI weights, widened to `i16` and paired as `SMLAD` takes them, so
/// that a DSP kernel loads them without unpacking. Same output bytes as
/// [`conv2d`] given the weights [`to_pairs`] was given.
///
/// # Errors
/// As [`conv2d`] (`pairs` holds two weights per word), and
/// [`Error::BadLength`] when `in_c` is not a multiple of 4 (expected: the
/// next multiple).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_pairs(
    p: &ConvParams,
    input: &[i8],
    pairs: &[i32],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &mut [i8],
) -> Result<()> {
    check_pairs(p, input, pairs, bias, multiplier, shift, output)?;
    conv_with(
        p,
        input,
        |i| pair_weight(pairs, i),
        bias,
        multiplier,
        shift,
        output,
    );
    Ok(())
}

/// The checks of [`conv2d_pairs`], which every implementation of it makes.
///
/// # Errors
/// As [`conv2d_pairs`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_pairs(
    p: &ConvParams,
    input: &[i8],
    pairs: &[i32],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &[i8],
) -> Result<()> {
    if p.in_c % 4 != 0 {
        return Err(Error::BadLength {
            expected: p.in_c.next_multiple_of(4) as u32,
            got: p.in_c as u32,
        });
    }
    check_counts(
        p,
        input,
        pairs.len().saturating_mul(2),
        bias,
        multiplier,
        shift,
        output,
    )
}

/// The pairs layout of four consecutive weights `[w0, w1, w2, w3]` (of
/// one filter; filters are whole chunks when `in_c % 4 == 0`): the words
/// `w0 | w2 << 16` and `w1 | w3 << 16` (`i16` halves), which is what
/// `SXTB16` and `SXTB16 ROR #8` make of the four bytes, and what `SMLAD`
/// multiplies with an input chunk packed the same way.
pub fn to_pairs(w: [i8; 4]) -> [i32; 2] {
    let half = |v: i8| (v as i16 as u16) as u32;
    [
        (half(w[0]) | half(w[2]) << 16) as i32,
        (half(w[1]) | half(w[3]) << 16) as i32,
    ]
}

/// Weight `i` (OHWI order) of weights stored by [`to_pairs`].
#[inline(always)]
pub fn pair_weight(pairs: &[i32], i: usize) -> i32 {
    let word = pairs[i / 4 * 2 + (i & 1)];
    if i & 2 == 0 {
        word as i16 as i32
    } else {
        (word >> 16) as i16 as i32
    }
}

/// The loops of [`conv2d`] and [`conv2d_pairs`], past their checks, with
/// weight `i` of the OHWI order read through `weight`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn conv_with(
    p: &ConvParams,
    input: &[i8],
    weight: impl Fn(usize) -> i32,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &mut [i8],
) {
    let (k, s, pad, cin) = (p.k, p.stride, p.pad, p.in_c);
    for oy in 0..p.out_h {
        // Kernel rows that land inside the input: 0 <= oy*s + ky - pad < in_h.
        let y0 = oy * s;
        let ky_lo = pad.saturating_sub(y0);
        let ky_hi = k.min((p.in_h + pad).saturating_sub(y0));
        for ox in 0..p.out_w {
            let x0 = ox * s;
            let kx_lo = pad.saturating_sub(x0);
            let kx_hi = k.min((p.in_w + pad).saturating_sub(x0));
            let out_px = &mut output[(oy * p.out_w + ox) * p.out_c..][..p.out_c];
            for (o, out) in out_px.iter_mut().enumerate() {
                let w_o = o * k * k * cin;
                let mut acc = bias[o];
                for ky in ky_lo..ky_hi {
                    let iy = y0 + ky - pad;
                    for kx in kx_lo..kx_hi {
                        let ix = x0 + kx - pad;
                        let x = &input[(iy * p.in_w + ix) * cin..][..cin];
                        let w0 = w_o + (ky * k + kx) * cin;
                        for (i, &xv) in x.iter().enumerate() {
                            acc = acc.wrapping_add(
                                (xv as i32)
                                    .wrapping_sub(p.in_zp)
                                    .wrapping_mul(weight(w0 + i)),
                            );
                        }
                    }
                }
                *out = to_int8(acc, multiplier[o], shift[o], p.out_zp, p.act_min, p.act_max);
            }
        }
    }
}

/// The length checks every conv2d implementation makes, in this order, so
/// that they all return the same error for the same arguments.
///
/// # Errors
/// As [`conv2d`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn check(
    p: &ConvParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &[i8],
) -> Result<()> {
    check_counts(p, input, weights.len(), bias, multiplier, shift, output)
}

/// [`check`] with the number of weights given (the [`conv2d_pairs`]
/// layout holds two per word).
#[allow(clippy::too_many_arguments)]
fn check_counts(
    p: &ConvParams,
    input: &[i8],
    weights: usize,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &[i8],
) -> Result<()> {
    let oh = ConvParams::out_dim(p.in_h, p.k, p.stride, p.pad);
    let ow = ConvParams::out_dim(p.in_w, p.k, p.stride, p.pad);
    if oh != Some(p.out_h) || ow != Some(p.out_w) {
        return Err(Error::BadLength {
            expected: oh.unwrap_or(0) as u32,
            got: p.out_h as u32,
        });
    }
    expect_len(input.len(), size(&[p.in_h, p.in_w, p.in_c]))?;
    expect_len(weights, size(&[p.out_c, p.k, p.k, p.in_c]))?;
    expect_len(bias.len(), p.out_c)?;
    expect_len(multiplier.len(), p.out_c)?;
    expect_len(shift.len(), p.out_c)?;
    expect_len(output.len(), size(&[p.out_h, p.out_w, p.out_c]))?;
    Ok(())
}
