//! Fixed-point arithmetic shared by every int8 kernel.
//!
//! Owns requantization: turning an int32 accumulator into the output's int8
//! domain with an integer multiplier and a power-of-two shift. It must not
//! touch model bytes or buffers; kernels call it per output value.
//!
//! # Rounding mode
//!
//! One mode everywhere: a real scale `M = multiplier · 2^(shift − 31)` with
//! `multiplier ∈ [0, 2^31)` and `shift ∈ [MIN_SHIFT, MAX_SHIFT]` is applied as
//!
//! ```text
//! requantize(acc) = (acc · multiplier + 2^(t − 1)) >> t,   t = 31 − shift
//! ```
//!
//! computed exactly in 64 bits: round half toward +∞, in a single rounding
//! step (TFLite's `TFLITE_SINGLE_ROUNDING` variant). The result saturates to
//! `i32`. The exporter computes multiplier and shift; the device only applies
//! them.

pub mod nonlin;

/// Smallest allowed shift (the right shift is then 62 bits).
pub const MIN_SHIFT: i32 = -31;
/// Largest allowed shift (the right shift is then 1 bit).
pub const MAX_SHIFT: i32 = 30;

/// True when `multiplier`/`shift` are a valid requantization pair.
#[inline]
pub const fn valid(multiplier: i32, shift: i32) -> bool {
    multiplier >= 0 && shift >= MIN_SHIFT && shift <= MAX_SHIFT
}

/// Applies `multiplier · 2^(shift − 31)` to `acc` with the documented rounding.
///
/// Callers guarantee `valid(multiplier, shift)` (the model checker does);
/// out-of-range shifts are clamped so that this never panics.
#[inline]
pub fn requantize(acc: i32, multiplier: i32, shift: i32) -> i32 {
    let t = 31 - shift.clamp(MIN_SHIFT, MAX_SHIFT); // 1..=62
    let prod = acc as i64 * multiplier as i64; // |prod| < 2^62
    let r = (prod + (1i64 << (t - 1))) >> t;
    r.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// Requantizes, adds the output zero point and clamps to `[act_min, act_max]`.
///
/// Never panics: with `act_min > act_max` (which the model checker refuses)
/// the result is `act_max`.
#[inline]
pub fn to_int8(acc: i32, multiplier: i32, shift: i32, out_zp: i32, act_min: i8, act_max: i8) -> i8 {
    OutputStage::new(multiplier, shift, out_zp, act_min, act_max).apply(acc)
}

/// [`to_int8`] with its per-channel constants prepared once, for kernels
/// that apply one channel's stage to many accumulators.
#[derive(Clone, Copy, Debug)]
pub struct OutputStage {
    multiplier: i64,
    t: u32, // 1..=62
    out_zp: i32,
    lo: i32,
    hi: i32,
}

impl OutputStage {
    /// Prepares `to_int8(_, multiplier, shift, out_zp, act_min, act_max)`.
    #[inline]
    pub fn new(multiplier: i32, shift: i32, out_zp: i32, act_min: i8, act_max: i8) -> Self {
        OutputStage {
            multiplier: multiplier as i64,
            t: (31 - shift.clamp(MIN_SHIFT, MAX_SHIFT)) as u32,
            out_zp,
            lo: act_min as i32,
            hi: act_max as i32,
        }
    }

    /// Same value as [`to_int8`] with the prepared constants.
    #[inline]
    pub fn apply(&self, acc: i32) -> i8 {
        let prod = acc as i64 * self.multiplier; // |prod| < 2^62
        let r = (prod + (1i64 << (self.t - 1))) >> self.t;
        let r = r.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        r.saturating_add(self.out_zp).max(self.lo).min(self.hi) as i8
    }
}

/// Splits a positive real scale into `(multiplier, shift)` for [`requantize`].
///
/// Returns `None` for scales that are not finite, negative, or outside the
/// representable range `[2^-62, 2^30)`; zero maps to `(0, 0)`.
#[cfg(feature = "emit")]
pub fn quantize_multiplier(real: f64) -> Option<(i32, i32)> {
    if !real.is_finite() || real < 0.0 {
        return None;
    }
    if real == 0.0 {
        return Some((0, 0));
    }
    // real = q · 2^shift with q ∈ [0.5, 1)
    let mut q = real;
    let mut shift = 0i32;
    while q >= 1.0 {
        q /= 2.0;
        shift += 1;
        if shift > 64 {
            return None;
        }
    }
    while q < 0.5 {
        q *= 2.0;
        shift -= 1;
        if shift < -80 {
            return None;
        }
    }
    // q ∈ [0.5, 1): multiplier = round(q · 2^31) ∈ [2^30, 2^31]
    let mut m = libm_round(q * (1u64 << 31) as f64) as i64;
    if m == 1i64 << 31 {
        m /= 2;
        shift += 1;
    }
    let (mut m, mut shift) = (m as i32, shift);
    // Very small scales: give up precision rather than range.
    while shift < MIN_SHIFT && m != 0 {
        m = ((m as i64 + 1) / 2) as i32;
        shift += 1;
    }
    if shift < MIN_SHIFT {
        return Some((0, 0));
    }
    (shift <= MAX_SHIFT).then_some((m, shift))
}

#[cfg(feature = "emit")]
fn libm_round(x: f64) -> f64 {
    // core has no f64::round without std; x is non-negative and < 2^32 here.
    let t = x as u64 as f64;
    if x - t >= 0.5 {
        t + 1.0
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_up() {
        // multiplier 2^30, shift 0 → scale 0.5
        let m = 1 << 30;
        assert_eq!(requantize(3, m, 0), 2); // 1.5 → 2
        assert_eq!(requantize(-3, m, 0), -1); // -1.5 → -1
        assert_eq!(requantize(5, m, 0), 3); // 2.5 → 3
        assert_eq!(requantize(-5, m, 0), -2);
        assert_eq!(requantize(i32::MAX, i32::MAX, MAX_SHIFT), i32::MAX);
        assert_eq!(requantize(i32::MIN, i32::MAX, MAX_SHIFT), i32::MIN);
        assert_eq!(to_int8(1000, m, 0, 10, -128, 127), 127);
        assert_eq!(to_int8(-1000, m, 0, 10, 0, 127), 0);
    }

    #[cfg(feature = "emit")]
    #[test]
    fn multiplier_roundtrip() {
        for &s in &[1e-9, 0.00123, 0.5, 0.75, 1.0, 3.7, 1000.0] {
            let (m, sh) = quantize_multiplier(s).unwrap();
            assert!(valid(m, sh));
            let back = m as f64 * 2f64.powi(sh - 31);
            assert!((back - s).abs() / s < 1e-8, "{s} → {back}");
        }
        assert_eq!(quantize_multiplier(0.0), Some((0, 0)));
        assert_eq!(quantize_multiplier(-1.0), None);
        assert_eq!(quantize_multiplier(f64::NAN), None);
    }
}
