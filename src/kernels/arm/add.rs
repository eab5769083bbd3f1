//! Element-wise add on the DSP extension: the long-tensor path of
//! [`crate::kernels::fast::add`] (both operands' rescales tabled per call)
//! with its loop in asm ([`dsp::add_tabled`]: `QADD` and the high-word
//! output stage, 10 to 20 instructions per element); short slices (a strip
//! or one position of a density model's streaming) with the rescales by
//! `SMMULR` or the high word ([`Rescale`]). Output stages off the
//! high-word path, and rescales off the short form, take the portable
//! kernel.

use super::conv::Requant;
use super::dsp;
use crate::kernels::fast::{self, rescale_tables, TABLE_MIN_LEN};
use crate::kernels::reference::{expect_len, AddParams, ADD_LEFT_SHIFT};
use crate::quant::{requantize, MAX_SHIFT, MIN_SHIFT};
use crate::Result;

/// Same contract, checks and bytes as [`crate::kernels::reference::add`].
///
/// # Errors
/// [`crate::Error::BadLength`] exactly when the reference returns it.
pub fn add(p: &AddParams, a: &[i8], b: &[i8], out: &mut [i8]) -> Result<()> {
    expect_len(a.len(), out.len())?;
    expect_len(b.len(), out.len())?;
    let stage = Requant::new(p.out_zp, p.act_min, p.act_max);
    if !stage.high_word(p.out_mult, p.out_shift) {
        return fast::add(p, a, b, out);
    }
    if out.len() < TABLE_MIN_LEN {
        let (ra, rb) = (
            Rescale::new(p.a_zp, p.a_mult, p.a_shift),
            Rescale::new(p.b_zp, p.b_mult, p.b_shift),
        );
        let (Some(ra), Some(rb)) = (ra, rb) else {
            return fast::add(p, a, b, out);
        };
        let h = (-2 - p.out_shift) as u32; // 0..=29: high_word checked it
        let args = (ra, rb, &stage, p.out_mult, h);
        match (ra.low, rb.low) {
            (true, true) => short::<true, true>(args, a, b, out),
            (true, false) => short::<true, false>(args, a, b, out),
            (false, true) => short::<false, true>(args, a, b, out),
            (false, false) => short::<false, false>(args, a, b, out),
        }
        return Ok(());
    }
    tabled(p, a, b, out, &stage);
    Ok(())
}

/// Whether the short path's rescale of `(zp, m, shift)` (when it takes
/// one) equals the reference's, `requantize((x − zp) · 2^20, m, shift)`,
/// for every int8 `x`. For `kernel-check`: the add's output stage drops
/// about 20 of the sum's bits, so an off-by-one rescale would show in the
/// outputs only about once per million elements.
#[doc(hidden)]
pub fn add_rescale_agrees(zp: i32, m: i32, shift: i32) -> bool {
    let Some(r) = Rescale::new(zp, m, shift) else {
        return true;
    };
    (-128..=127i32).all(|x| {
        let want = requantize((x - zp) << ADD_LEFT_SHIFT, m, shift);
        r.apply(x as i8) == want
    })
}

/// One operand's rescale on the short path (a strip or one position of a
/// density model's streaming: 256 or 64 elements, too few to table):
/// `requantize((x − zp) · 2^20, m, shift)` for `t = 31 − shift ≥ 31`, an
/// int8 `zp` and `m ≥ 0` (what the exporter writes), which is
/// `(d · m + 2^(k−1)) >> k` for `d = x − zp` (9 bits) and `k = t − 20 ≥ 11`
/// ([`crate::kernels::fast`]'s short form), below 2^28. For `k ≤ 32` that
/// is `smmulr(d · 2^(32−k), m)` ([`dsp::low_shift`]'s identity; `d ·
/// 2^21` fits), for `k ≥ 33` the high word ([`dsp::high_word`]): three or
/// four instructions instead of a 64-bit multiply and shift.
#[derive(Clone, Copy)]
struct Rescale {
    zp: i32,
    m: i32,
    /// `32 − k` (`k ≤ 32`), or `k − 33` (`k ≥ 33`).
    s: u32,
    low: bool,
}

impl Rescale {
    fn new(zp: i32, m: i32, shift: i32) -> Option<Self> {
        let t = 31 - shift.clamp(MIN_SHIFT, MAX_SHIFT);
        if t < 31 || !(-128..=127).contains(&zp) || m < 0 {
            return None;
        }
        let k = (t - ADD_LEFT_SHIFT as i32) as u32; // 11..=42
        Some(if k <= 32 {
            Rescale {
                zp,
                m,
                s: 32 - k,
                low: true,
            }
        } else {
            Rescale {
                zp,
                m,
                s: k - 33,
                low: false,
            }
        })
    }

    #[inline(always)]
    fn apply(&self, x: i8) -> i32 {
        if self.low {
            self.apply_as::<true>(x)
        } else {
            self.apply_as::<false>(x)
        }
    }

    /// [`Self::apply`] with `low` known at compile time ([`short`]'s loops).
    #[inline(always)]
    fn apply_as<const LOW: bool>(&self, x: i8) -> i32 {
        let d = x as i32 - self.zp; // |d| ≤ 255
        if LOW {
            dsp::smmulr(d << self.s, self.m)
        } else {
            dsp::high_word(d, self.m, self.s)
        }
    }
}

/// The short path's loop, one copy per pair of rescale forms (`LA`, `LB`:
/// each operand's `low`), so that no element tests them: with the tests in
/// the loop LLVM kept the constants on the stack, 35 instructions per
/// element (QEMU profile of a streamed PixelCNN image, 250,880 elements).
#[inline(never)]
fn short<const LA: bool, const LB: bool>(
    (ra, rb, stage, m, h): (Rescale, Rescale, &Requant, i32, u32),
    a: &[i8],
    b: &[i8],
    out: &mut [i8],
) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        // Both terms are below 2^28 (see `Rescale`): the reference's
        // saturating sum never saturates.
        *o = stage.high(ra.apply_as::<LA>(x) + rb.apply_as::<LB>(y), m, h);
    }
}

/// In its own frame, so that the 2 KB of tables are not on the stack of
/// the short path.
#[inline(never)]
fn tabled(p: &AddParams, a: &[i8], b: &[i8], out: &mut [i8], stage: &Requant) {
    let t = rescale_tables(p);
    let h = (-2 - p.out_shift) as u32; // 0..=29: high_word checked it
                                       // Cannot fail: the lengths were checked.
    let _ = dsp::add_tabled(&t, a, b, p.out_mult, h, stage.constants(), out);
}
