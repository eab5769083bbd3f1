//! Element-wise add: for long tensors, each operand's rescale is looked up
//! in a 256-entry table built once per call (the same values
//! [`AddParams::apply`] computes), leaving one requantization per element
//! instead of three. Short slices (one pixel while sampling) skip the tables.

use crate::kernels::reference::{expect_len, AddParams, ADD_LEFT_SHIFT};
use crate::quant::{requantize, OutputStage};
use crate::Result;

/// Below this many elements building the tables costs more than it saves.
const TABLE_MIN_LEN: usize = 1024;

/// Same contract, checks and bytes as [`crate::kernels::reference::add`].
///
/// # Errors
/// [`crate::Error::BadLength`] exactly when the reference returns it.
pub fn add(p: &AddParams, a: &[i8], b: &[i8], out: &mut [i8]) -> Result<()> {
    expect_len(a.len(), out.len())?;
    expect_len(b.len(), out.len())?;
    if out.len() < TABLE_MIN_LEN {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = p.apply(x, y);
        }
        return Ok(());
    }
    let table = |zp: i32, m: i32, s: i32| -> [i32; 256] {
        core::array::from_fn(|i| {
            requantize((i as i32 - 128).wrapping_sub(zp) << ADD_LEFT_SHIFT, m, s)
        })
    };
    let ta = table(p.a_zp, p.a_mult, p.a_shift);
    let tb = table(p.b_zp, p.b_mult, p.b_shift);
    let stage = OutputStage::new(p.out_mult, p.out_shift, p.out_zp, p.act_min, p.act_max);
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        let sa = ta[(x as u8 ^ 0x80) as usize];
        let sb = tb[(y as u8 ^ 0x80) as usize];
        *o = stage.apply(sa.saturating_add(sb));
    }
    Ok(())
}
