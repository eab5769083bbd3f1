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

/// A set of requantization pairs proven, once, to all have the high-word
/// form: `multiplier ≥ 0` and `MIN_SHIFT ≤ shift ≤ −2` (a right shift `t ≥
/// 33`), for which `requantize(acc)` is `((((acc · m) >> 32) >> h) + 1) >> 1`
/// with `h = −2 − shift ∈ [0, 29]` ([`OutputStage`]'s argument), with no
/// per-pair test. The only constructor checks every pair and keeps the
/// slices it checked; a kernel uses the proof only for those same slices
/// (`core::ptr::eq`, address and length), so it can never vouch for other
/// pairs. Computed when a model is parsed, so a language model's stages
/// skip the test on every row of every token.
#[derive(Clone, Copy, Debug)]
pub struct HighWord<'a> {
    mult: &'a [i32],
    shift: &'a [i32],
}

impl<'a> HighWord<'a> {
    /// The proof for `mult`/`shift`, or None when the lengths differ or
    /// any pair is not of the high-word form.
    pub fn new(mult: &'a [i32], shift: &'a [i32]) -> Option<Self> {
        let all = mult.len() == shift.len()
            && mult
                .iter()
                .zip(shift)
                .all(|(&m, &s)| m >= 0 && (MIN_SHIFT..=-2).contains(&s));
        all.then_some(HighWord { mult, shift })
    }

    /// Whether this proof is about exactly these slices.
    #[inline]
    pub fn covers(&self, mult: &[i32], shift: &[i32]) -> bool {
        core::ptr::eq(self.mult, mult) && core::ptr::eq(self.shift, shift)
    }

    /// The multipliers (all `≥ 0`).
    #[inline]
    pub fn mult(&self) -> &'a [i32] {
        self.mult
    }

    /// The shifts (all in `[MIN_SHIFT, −2]`).
    #[inline]
    pub fn shift(&self) -> &'a [i32] {
        self.shift
    }
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
///
/// Two exact ways to the same value, chosen once in [`OutputStage::new`]:
///
/// - `t ≥ 33` (every conv and fully connected layer of the models we
///   export: their scales are far below 2⁻²): `(p + 2^(t−1)) >> t` equals
///   `((p >> (t−1)) + 1) >> 1`, and `p >> (t−1)` is the high word of the
///   64-bit product shifted by `t − 33`. With `|p| < 2^62` the result fits
///   in 30 bits, so no `i32` saturation is needed and the output zero point
///   (`|out_zp| ≤ 2^30`) adds without overflow: `SMULL`, two shifts, two
///   adds and the clamp, about 10 instructions on a Cortex-M4 instead of
///   about 38 for the general 64-bit shift.
/// - otherwise the general formula of [`requantize`].
#[derive(Clone, Copy, Debug)]
pub struct OutputStage {
    multiplier: i64,
    t: u32, // 1..=62
    /// `t − 33` when the high-word path applies.
    high: Option<u32>,
    out_zp: i32,
    lo: i32,
    hi: i32,
}

impl OutputStage {
    /// Prepares `to_int8(_, multiplier, shift, out_zp, act_min, act_max)`.
    #[inline]
    pub fn new(multiplier: i32, shift: i32, out_zp: i32, act_min: i8, act_max: i8) -> Self {
        let t = (31 - shift.clamp(MIN_SHIFT, MAX_SHIFT)) as u32;
        let zp_small = (-(1 << 30)..=(1 << 30)).contains(&out_zp);
        OutputStage {
            multiplier: multiplier as i64,
            t,
            high: (t >= 33 && multiplier >= 0 && zp_small).then(|| t - 33),
            out_zp,
            lo: act_min as i32,
            hi: act_max as i32,
        }
    }

    /// Same value as [`to_int8`] with the prepared constants.
    #[inline]
    pub fn apply(&self, acc: i32) -> i8 {
        if let Some(h) = self.high {
            // |acc · m| < 2^62: the high word is below 2^30 in magnitude.
            let top = ((acc as i64 * self.multiplier) >> 32) as i32;
            let r = ((top >> h) + 1) >> 1;
            return (r + self.out_zp).max(self.lo).min(self.hi) as i8;
        }
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

    /// The high-word path of `OutputStage` against the general formula, at
    /// the boundary shifts (t = 33 and 62), the largest products, ties,
    /// and zero points that saturate.
    #[test]
    fn output_stage_paths_agree() {
        let general = |acc: i32, m: i32, s: i32, zp: i32, lo: i8, hi: i8| {
            let r = requantize(acc, m, s);
            r.saturating_add(zp).max(lo as i32).min(hi as i32) as i8
        };
        let accs = [
            i32::MIN,
            i32::MIN + 1,
            -(1 << 20) - 1,
            -3,
            -1,
            0,
            1,
            3,
            1 << 20,
            i32::MAX,
        ];
        let mults = [0, 1, (1 << 30) - 1, 1 << 30, i32::MAX];
        for s in MIN_SHIFT..=MAX_SHIFT {
            for &m in &mults {
                for &acc in &accs {
                    for &(zp, lo, hi) in &[
                        (0, -128, 127),
                        (-128, -128, 127),
                        (127, 0, 127),
                        (5, -3, 9),
                        (i32::MAX, -128, 127),
                        (1 << 30, -128, 127),
                        (-(1 << 30), -128, 127),
                    ] {
                        let q = OutputStage::new(m, s, zp, lo, hi);
                        assert_eq!(
                            q.apply(acc),
                            general(acc, m, s, zp, lo, hi),
                            "acc {acc} m {m} s {s} zp {zp}"
                        );
                    }
                }
            }
        }
        // Ties: acc · m an odd multiple of 2^(t−1).
        for t in 33u32..=62 {
            let s = 31 - t as i32;
            let m = 1 << 30;
            for k in [-5i64, -3, -1, 1, 3, 5] {
                let acc = (k << (t - 1)) >> 30;
                if acc == acc as i32 as i64 && acc != 0 {
                    let q = OutputStage::new(m, s, 0, -128, 127);
                    assert_eq!(q.apply(acc as i32), general(acc as i32, m, s, 0, -128, 127));
                }
            }
        }
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
