use super::{expect_len, size};
use crate::quant::to_int8;
use crate::Result;

/// Shape of a pooling input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolParams {
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Channels.
    pub c: usize,
}

/// 2×2 max pooling, stride 2, odd trailing rows/columns dropped.
///
/// Input and output share one quantization, so no requantization happens.
///
/// # Errors
/// [`crate::Error::BadLength`] when a slice does not match `p`.
pub fn max_pool_2x2(p: &PoolParams, input: &[i8], output: &mut [i8]) -> Result<()> {
    let (oh, ow, c) = (p.in_h / 2, p.in_w / 2, p.c);
    expect_len(input.len(), size(&[p.in_h, p.in_w, c]))?;
    expect_len(output.len(), size(&[oh, ow, c]))?;
    for oy in 0..oh {
        for ox in 0..ow {
            let at =
                |dy: usize, dx: usize| &input[((2 * oy + dy) * p.in_w + 2 * ox + dx) * c..][..c];
            let (a, b, d, e) = (at(0, 0), at(0, 1), at(1, 0), at(1, 1));
            let out = &mut output[(oy * ow + ox) * c..][..c];
            for ch in 0..c {
                out[ch] = a[ch].max(b[ch]).max(d[ch]).max(e[ch]);
            }
        }
    }
    Ok(())
}

/// Parameters of global average pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GapParams {
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Channels.
    pub c: usize,
    /// Input zero point.
    pub in_zp: i32,
    /// Output zero point.
    pub out_zp: i32,
    /// Multiplier of `in_scale / (out_scale · in_h · in_w)`.
    pub multiplier: i32,
    /// Shift of the same.
    pub shift: i32,
    /// Lower clamp.
    pub act_min: i8,
    /// Upper clamp.
    pub act_max: i8,
}

/// `output[c] = clamp(requant(Σ_{y,x} (in[y][x][c] − in_zp)) + out_zp)`: the
/// division by `in_h · in_w` is folded into the multiplier by the exporter.
///
/// # Errors
/// [`crate::Error::BadLength`] when a slice does not match `p`.
pub fn global_avg_pool(p: &GapParams, input: &[i8], output: &mut [i8]) -> Result<()> {
    let n = size(&[p.in_h, p.in_w]);
    expect_len(input.len(), size(&[n, p.c]))?;
    expect_len(output.len(), p.c)?;
    for (ch, out) in output.iter_mut().enumerate() {
        let mut acc = 0i32;
        for px in 0..n {
            acc = acc.wrapping_add((input[px * p.c + ch] as i32).wrapping_sub(p.in_zp));
        }
        *out = to_int8(acc, p.multiplier, p.shift, p.out_zp, p.act_min, p.act_max);
    }
    Ok(())
}
