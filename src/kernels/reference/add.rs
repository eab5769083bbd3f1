use super::expect_len;
use crate::quant::{requantize, to_int8};
use crate::Result;

/// Bits each operand is shifted left before rescaling, so that rescaling to
/// the common scale keeps 20 fractional bits (TFLite's int8 add uses the same).
pub const ADD_LEFT_SHIFT: u32 = 20;

/// Parameters of an element-wise add.
///
/// With `s = 2·max(scale_a, scale_b)`, the exporter sets
/// `a_mult/a_shift ≈ scale_a / s`, `b_mult/b_shift ≈ scale_b / s` and
/// `out_mult/out_shift ≈ s / (2^20 · scale_out)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddParams {
    /// First operand zero point.
    pub a_zp: i32,
    /// Second operand zero point.
    pub b_zp: i32,
    /// Output zero point.
    pub out_zp: i32,
    /// First operand rescale multiplier.
    pub a_mult: i32,
    /// First operand rescale shift.
    pub a_shift: i32,
    /// Second operand rescale multiplier.
    pub b_mult: i32,
    /// Second operand rescale shift.
    pub b_shift: i32,
    /// Output multiplier.
    pub out_mult: i32,
    /// Output shift.
    pub out_shift: i32,
    /// Lower clamp (fused ReLU sets it to the output zero point).
    pub act_min: i8,
    /// Upper clamp.
    pub act_max: i8,
}

impl AddParams {
    /// One output value.
    #[inline]
    pub fn apply(&self, a: i8, b: i8) -> i8 {
        let a = requantize(
            (a as i32).wrapping_sub(self.a_zp) << ADD_LEFT_SHIFT,
            self.a_mult,
            self.a_shift,
        );
        let b = requantize(
            (b as i32).wrapping_sub(self.b_zp) << ADD_LEFT_SHIFT,
            self.b_mult,
            self.b_shift,
        );
        to_int8(
            a.saturating_add(b),
            self.out_mult,
            self.out_shift,
            self.out_zp,
            self.act_min,
            self.act_max,
        )
    }
}

/// `out[i] = clamp(requant(rescale(a[i] − a_zp) + rescale(b[i] − b_zp)) + out_zp)`,
/// where `rescale(d) = requantize(d · 2^20, mult, shift)`; the sum saturates.
///
/// # Errors
/// [`crate::Error::BadLength`] unless the three slices have one length.
pub fn add(p: &AddParams, a: &[i8], b: &[i8], out: &mut [i8]) -> Result<()> {
    expect_len(a.len(), out.len())?;
    expect_len(b.len(), out.len())?;
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = p.apply(x, y);
    }
    Ok(())
}
