//! Element-wise add on the DSP extension: the long-tensor path of
//! [`crate::kernels::fast::add`] (both operands' rescales tabled per call)
//! with its loop in asm ([`dsp::add_tabled`]: `QADD` and the high-word
//! output stage, 20 instructions per element). Short slices (one position
//! of a density model's streaming) and output stages off the high-word
//! path take the portable kernel.

use super::conv::Requant;
use super::dsp;
use crate::kernels::fast::{self, rescale_tables, TABLE_MIN_LEN};
use crate::kernels::reference::{expect_len, AddParams};
use crate::Result;

/// Same contract, checks and bytes as [`crate::kernels::reference::add`].
///
/// # Errors
/// [`crate::Error::BadLength`] exactly when the reference returns it.
pub fn add(p: &AddParams, a: &[i8], b: &[i8], out: &mut [i8]) -> Result<()> {
    expect_len(a.len(), out.len())?;
    expect_len(b.len(), out.len())?;
    let stage = Requant::new(p.out_zp, p.act_min, p.act_max);
    if out.len() < TABLE_MIN_LEN || !stage.high_word(p.out_mult, p.out_shift) {
        return fast::add(p, a, b, out);
    }
    tabled(p, a, b, out, &stage);
    Ok(())
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
