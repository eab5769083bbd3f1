//! Fixed-point nonlinearities of the language-model kernels: sigmoid and tanh
//! on Q3.12 gate values (like TFLite Micro's int16 LSTM), and the `exp`/`ln`
//! pair the softmax heads use.
//!
//! Every function is integer-only and table-driven, so host and device agree
//! bit for bit. The tables are computed at compile time from a `const`
//! double-precision `exp` (IEEE arithmetic is exact and deterministic in
//! const evaluation), so no table literal is checked in; the tests compare
//! every entry with `std`'s `exp`/`ln`.
//!
//! Formats:
//! - `Qm.n`: a signed integer `q` meaning `q · 2⁻ⁿ`.
//! - gate input: Q3.12 `i16` (range `[-8, 8)`);
//! - sigmoid/tanh output: Q0.15 `i16` (`32767` ≈ 1.0);
//! - logits and log-probabilities: Q16 `i32` nats;
//! - probabilities and softmax sums: Q30 unsigned (`2^30` = 1.0).

/// Fractional bits of a gate value.
pub const GATE_FRAC: u32 = 12;
/// Fractional bits of a sigmoid/tanh output.
pub const UNIT_FRAC: u32 = 15;
/// Fractional bits of logits and log-probabilities (nats).
pub const LOGIT_FRAC: u32 = 16;
/// `1.0` in the Q30 format of [`exp_neg`] and [`ln_q30`].
pub const Q30_ONE: u64 = 1 << 30;

/// Table steps per unit of the Q3.12 input: 32 (step 1/32, 513 entries over `[-8, 8]`).
const STEPS: usize = 512;

/// `exp(x)` in const evaluation: `x = n·ln 2 + r`, `|r| ≤ ln 2 / 2`, a
/// 24-term Taylor series for `exp(r)`, then `n` exact doublings.
const fn exp_f64(x: f64) -> f64 {
    const LN2: f64 = core::f64::consts::LN_2;
    let nf = x / LN2;
    let n = if nf >= 0.0 {
        (nf + 0.5) as i64
    } else {
        (nf - 0.5) as i64
    };
    let r = x - n as f64 * LN2;
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut i = 1;
    while i < 24 {
        term = term * r / i as f64;
        sum += term;
        i += 1;
    }
    let mut k = n;
    while k > 0 {
        sum *= 2.0;
        k -= 1;
    }
    while k < 0 {
        sum *= 0.5;
        k += 1;
    }
    sum
}

const fn round_i64(x: f64) -> i64 {
    if x >= 0.0 {
        (x + 0.5) as i64
    } else {
        -((-x + 0.5) as i64)
    }
}

const fn sigmoid_f64(x: f64) -> f64 {
    1.0 / (1.0 + exp_f64(-x))
}

/// Entry `i` is `f((i − 256) / 32)` for `i = 0..=512`, in Q0.15.
const fn unit_table(tanh: bool) -> [i16; STEPS + 1] {
    let mut t = [0i16; STEPS + 1];
    let mut i = 0;
    while i <= STEPS {
        let x = (i as f64 - (STEPS / 2) as f64) / 32.0;
        let y = if tanh {
            2.0 * sigmoid_f64(2.0 * x) - 1.0
        } else {
            sigmoid_f64(x)
        };
        let q = round_i64(y * 32768.0);
        t[i] = if q > 32767 {
            32767
        } else if q < -32767 {
            -32767
        } else {
            q as i16
        };
        i += 1;
    }
    t
}

/// Entry `i` is `2^(−i/256)` in Q30, `i = 0..=256`.
const fn exp2_neg_table() -> [u32; 257] {
    let mut t = [0u32; 257];
    let mut i = 0;
    while i <= 256 {
        let y = exp_f64(-(i as f64) / 256.0 * core::f64::consts::LN_2);
        t[i] = round_i64(y * Q30_ONE as f64) as u32;
        i += 1;
    }
    t
}

/// `ln(1 + x)` by its series in `z = x / (2 + x)`: `2(z + z³/3 + z⁵/5 + …)`.
const fn ln1p_f64(x: f64) -> f64 {
    let z = x / (2.0 + x);
    let z2 = z * z;
    let mut p = z;
    let mut sum = 0.0;
    let mut k = 1;
    while k < 60 {
        sum += p / k as f64;
        p *= z2;
        k += 2;
    }
    2.0 * sum
}

/// Entry `i` is `log2(1 + i/256)` in Q30, `i = 0..=256`.
const fn log2_table() -> [u32; 257] {
    let mut t = [0u32; 257];
    let mut i = 0;
    while i <= 256 {
        let y = ln1p_f64(i as f64 / 256.0) / core::f64::consts::LN_2;
        t[i] = round_i64(y * Q30_ONE as f64) as u32;
        i += 1;
    }
    t
}

static SIGMOID: [i16; STEPS + 1] = unit_table(false);
static TANH: [i16; STEPS + 1] = unit_table(true);
static EXP2_NEG: [u32; 257] = exp2_neg_table();
static LOG2_1P: [u32; 257] = log2_table();

/// `log2(e)` in Q30.
const LOG2E_Q30: u64 = 1_549_082_005;
/// `ln(2)` in Q30.
const LN2_Q30: i64 = 744_261_118;

#[inline]
fn unit_lookup(t: &[i16; STEPS + 1], x: i16) -> i16 {
    // u ∈ [0, 65535]: 7 index bits of step 1/32 (= 128 input units), 7 fraction bits.
    let u = (x as i32 + 32768) as u32;
    let i = (u >> 7) as usize;
    let f = (u & 127) as i32;
    let a = t[i] as i32;
    let b = t[(i + 1).min(STEPS)] as i32;
    (a + (((b - a) * f + 64) >> 7)) as i16
}

/// `σ(x)`: Q3.12 in, Q0.15 out (`0..=32767`). Linear interpolation in a
/// 513-entry table; at most 2 units of 2⁻¹⁵ from the exact value.
#[inline]
pub fn sigmoid_q12(x: i16) -> i16 {
    unit_lookup(&SIGMOID, x)
}

/// `tanh(x)`: Q3.12 in, Q0.15 out (`-32767..=32767`). Linear interpolation
/// in a 513-entry table; at most 4 units of 2⁻¹⁵ from the exact value.
#[inline]
pub fn tanh_q12(x: i16) -> i16 {
    unit_lookup(&TANH, x)
}

/// `exp(−d)` for `d ≥ 0` in Q16 nats, as Q30 (`2^30` = 1.0; 0 below 2⁻³⁰).
///
/// `d·log2 e = n + f`; `2^−f` by interpolation in a 257-entry table, then a
/// right shift by `n`. Relative error below 2·10⁻⁶.
///
/// Bounds: `d < 2^32` and `log2 e` in Q30 `< 2^31`, so `y < 2^63`; the
/// table decreases, so `0 ≤ a − b < 2^30` and `(a − b) · fr < 2^52`; the
/// result is `≤ 2^30`.
#[inline]
pub fn exp_neg(d: u32) -> u32 {
    let y = d as u64 * LOG2E_Q30; // Q46 of d·log2(e)
    let n = y >> 46;
    if n >= 31 {
        return 0;
    }
    let f = (y >> 16) & 0x3FFF_FFFF; // Q30 fraction
    let (i, fr) = ((f >> 22) as usize, f & 0x3F_FFFF);
    let a = EXP2_NEG[i] as u64;
    let b = EXP2_NEG[i + 1] as u64;
    // The table falls: a ≥ b.
    let v = a - (((a - b) * fr + (1 << 21)) >> 22);
    (v >> n) as u32
}

/// `ln(x / 2^30)` in Q16 nats for `x ≥ 1` (`x = 0` gives the value for 1).
///
/// `log2 x = n + log2(1 + m)` with the mantissa `m` from the leading one;
/// `log2(1 + m)` by interpolation in a 257-entry table. Absolute error below
/// 2·10⁻⁵ nats.
///
/// Bounds: `n ≤ 63`, so `log2_q30` is within `±2^36` and its product with
/// `ln 2` in Q30 is taken in `i128`; the result `|ln(x / 2^30)| ≤ 23.6`
/// nats is `< 2^21` in Q16.
#[inline]
pub fn ln_q30(x: u64) -> i32 {
    let x = x.max(1);
    let n = 63 - x.leading_zeros() as i64; // x ∈ [2^n, 2^(n+1))
                                           // 16 mantissa bits after the leading one.
    let m = if n >= 16 {
        (x >> (n - 16)) & 0xFFFF
    } else {
        (x << (16 - n)) & 0xFFFF
    };
    let (i, fr) = ((m >> 8) as usize, (m & 0xFF) as i64);
    let a = LOG2_1P[i] as i64;
    let b = LOG2_1P[i + 1] as i64;
    let frac_q30 = a + (((b - a) * fr + 128) >> 8);
    let log2_q30 = ((n - 30) << 30) + frac_q30;
    // ln = log2 · ln 2; log2_q30 · LN2_Q30 fits: |log2| < 64 → < 2^36 · 2^30.
    let ln_q46 = log2_q30 as i128 * LN2_Q30 as i128; // Q60
    ((ln_q46 + (1i128 << 43)) >> 44) as i32
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn sigmoid_and_tanh_match_f64() {
        let mut worst = [0.0f64; 2];
        for x in i16::MIN..=i16::MAX {
            let r = x as f64 / 4096.0;
            let s = 1.0 / (1.0 + (-r).exp());
            let e0 = (sigmoid_q12(x) as f64 / 32768.0 - s).abs() * 32768.0;
            let e1 = (tanh_q12(x) as f64 / 32768.0 - r.tanh()).abs() * 32768.0;
            worst[0] = worst[0].max(e0);
            worst[1] = worst[1].max(e1);
        }
        assert!(worst[0] <= 2.0, "sigmoid off by {} units", worst[0]);
        assert!(worst[1] <= 4.0, "tanh off by {} units", worst[1]);
        assert_eq!(sigmoid_q12(0), 16384);
        assert_eq!(tanh_q12(0), 0);
        assert_eq!(tanh_q12(-4096), -tanh_q12(4096));
    }

    #[test]
    fn tables_match_std() {
        for (i, &v) in EXP2_NEG.iter().enumerate() {
            let y = (-(i as f64) / 256.0 * core::f64::consts::LN_2).exp() * Q30_ONE as f64;
            assert!((v as f64 - y).abs() <= 0.51, "exp2 entry {i}");
        }
        for (i, &v) in LOG2_1P.iter().enumerate() {
            let y = (1.0 + i as f64 / 256.0).log2() * Q30_ONE as f64;
            assert!((v as f64 - y).abs() <= 0.51, "log2 entry {i}");
        }
        assert_eq!(
            LOG2E_Q30,
            (core::f64::consts::LOG2_E * 1073741824.0).round() as u64
        );
        assert_eq!(
            LN2_Q30,
            (core::f64::consts::LN_2 * 1073741824.0).round() as i64
        );
    }

    #[test]
    fn exp_neg_matches_f64() {
        let mut d = 0u32;
        while d < 40 << 16 {
            let want = (-(d as f64) / 65536.0).exp() * Q30_ONE as f64;
            let got = exp_neg(d) as f64;
            assert!(
                (got - want).abs() <= want * 2e-6 + 1.0,
                "exp(-{}) = {got}, want {want}",
                d as f64 / 65536.0
            );
            d += 997;
        }
        assert_eq!(exp_neg(0), 1 << 30);
        assert_eq!(exp_neg(u32::MAX), 0);
    }

    #[test]
    fn ln_matches_f64() {
        for &x in &[
            1u64,
            2,
            3,
            1000,
            1 << 29,
            (1 << 30) - 1,
            1 << 30,
            1 << 31,
            123_456_789_012,
            u64::MAX,
        ] {
            let want = (x as f64 / Q30_ONE as f64).ln();
            let got = ln_q30(x) as f64 / 65536.0;
            assert!(
                (got - want).abs() < 2e-5,
                "ln({x}/2^30) = {got}, want {want}"
            );
        }
        assert_eq!(ln_q30(1 << 30), 0);
        assert_eq!(ln_q30(0), ln_q30(1));
    }
}
