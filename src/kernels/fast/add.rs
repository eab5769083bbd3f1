//! Element-wise add. Each operand's rescale is prepared once per call
//! ([`Rescale`]), and so is the output stage; for long tensors the
//! rescales are then looked up in a 256-entry table per operand, leaving
//! one requantization per element instead of three. Short slices (one
//! pixel while a density model streams or samples: 32 or 64 elements)
//! skip the tables.

use crate::kernels::reference::{expect_len, AddParams, ADD_LEFT_SHIFT};
use crate::quant::{requantize, OutputStage, MAX_SHIFT, MIN_SHIFT};
use crate::Result;

/// Below this many elements building the tables costs more than it saves.
pub(crate) const TABLE_MIN_LEN: usize = 1024;

/// One operand's rescale, `requantize((x − zp) · 2^20, m, shift)`, with
/// its constants prepared once.
///
/// With `t = 31 − shift ≥ 31` (every add the exporter writes: the
/// operand scales are at most half the common one, so `shift ≤ 0`) and an
/// int8 zero point, `d = x − zp` has at most 9 bits and `(d · 2^20 · m +
/// 2^(t−1)) >> t` equals `(d · m + 2^(k−1)) >> k` with `k = t − 20 ≥ 11`
/// (numerator and denominator share the factor 2^20); `|d · m| < 2^39`, so
/// the result stays below 2^28 and needs no clamp. That is one 32×32→64
/// multiply and a shift, against the general formula's shift of a 29-bit
/// value, 64-bit rounding and clamp. Other parameters take the general
/// formula.
#[derive(Clone, Copy)]
struct Rescale {
    zp: i32,
    mult: i32,
    shift: i32,
    /// `k = t − 20` when the short form applies.
    k: Option<u32>,
}

impl Rescale {
    fn new(zp: i32, mult: i32, shift: i32) -> Self {
        let t = (31 - shift.clamp(MIN_SHIFT, MAX_SHIFT)) as u32;
        let short = t >= 31 && (-128..=127).contains(&zp);
        Rescale {
            zp,
            mult,
            shift,
            k: short.then(|| t - ADD_LEFT_SHIFT),
        }
    }

    #[inline(always)]
    fn apply(&self, x: i8) -> i32 {
        match self.k {
            Some(k) => {
                let d = x as i32 - self.zp; // |d| ≤ 255
                ((d as i64 * self.mult as i64 + (1i64 << (k - 1))) >> k) as i32
            }
            None => requantize(
                (x as i32).wrapping_sub(self.zp) << ADD_LEFT_SHIFT,
                self.mult,
                self.shift,
            ),
        }
    }
}

/// Same contract, checks and bytes as [`crate::kernels::reference::add`].
///
/// # Errors
/// [`crate::Error::BadLength`] exactly when the reference returns it.
pub fn add(p: &AddParams, a: &[i8], b: &[i8], out: &mut [i8]) -> Result<()> {
    expect_len(a.len(), out.len())?;
    expect_len(b.len(), out.len())?;
    if out.len() < TABLE_MIN_LEN {
        let ra = Rescale::new(p.a_zp, p.a_mult, p.a_shift);
        let rb = Rescale::new(p.b_zp, p.b_mult, p.b_shift);
        let stage = OutputStage::new(p.out_mult, p.out_shift, p.out_zp, p.act_min, p.act_max);
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = stage.apply(ra.apply(x).saturating_add(rb.apply(y)));
        }
    } else {
        tabled(p, a, b, out);
    }
    Ok(())
}

/// Both operands' rescales for every int8 value: `t[128 + x]` for the
/// first operand's `x`, `t[384 + y]` for the second's `y`.
pub(crate) fn rescale_tables(p: &AddParams) -> [i32; 512] {
    let ra = Rescale::new(p.a_zp, p.a_mult, p.a_shift);
    let rb = Rescale::new(p.b_zp, p.b_mult, p.b_shift);
    core::array::from_fn(|i| {
        let x = (i as u8 ^ 0x80) as i8; // i % 256 − 128
        if i < 256 {
            ra.apply(x)
        } else {
            rb.apply(x)
        }
    })
}

/// The long-tensor path, in its own frame: its tables (2 KB) are not on
/// the stack of the short path, which a density model's streaming runs at
/// every position below deeper frames.
#[inline(never)]
fn tabled(p: &AddParams, a: &[i8], b: &[i8], out: &mut [i8]) {
    let t = rescale_tables(p);
    let stage = OutputStage::new(p.out_mult, p.out_shift, p.out_zp, p.act_min, p.act_max);
    let (ta, tb) = t.split_at(256);
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        let sa = ta.get((x as u8 ^ 0x80) as usize).copied().unwrap_or(0);
        let sb = tb.get((y as u8 ^ 0x80) as usize).copied().unwrap_or(0);
        *o = stage.apply(sa.saturating_add(sb));
    }
}
