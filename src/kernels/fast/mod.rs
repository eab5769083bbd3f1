//! Optimized int8 kernels in portable safe Rust.
//!
//! Same signatures, same checks, same errors and the same output bytes as
//! [`super::reference`]; only the order of the arithmetic differs (all of it
//! wrapping `i32`, so every order gives the same bits). Written so that LLVM
//! compiles them well for Cortex-M4 (`thumbv7em`): no intrinsics, no
//! `unsafe`, stable Rust. Each kernel here exists because it measured faster
//! on QEMU (docs/firmware.md); kernels without a faster version (pooling,
//! fully connected) are re-exported from the reference. `lm` holds the
//! language model's matrix–vector products.

mod add;
mod conv;
mod lm;
mod masked;

pub use super::reference::{
    conv2d_pairs, fully_connected, global_avg_pool, max_pool_2x2, AddParams, ConvParams, FcParams,
    GapParams, PoolParams,
};
pub use add::add;
#[allow(unused_imports)] // used by kernels::arm only
pub(crate) use add::{rescale_tables, TABLE_MIN_LEN};
pub use conv::conv2d;
pub use lm::{decoder, latent, lstm_gates};
#[allow(unused_imports)] // used by kernels::arm only
pub(crate) use masked::{check_causal, check_pixel, live};
pub use masked::{conv2d_masked, conv2d_pixel};

use super::Mask;
use crate::Result;

/// What the DSP version's `conv2d_pixel_in` gathers into; nothing here.
#[derive(Default)]
pub struct PixelScratch;

impl PixelScratch {
    /// A scratch for any number of calls.
    pub fn new() -> Self {
        PixelScratch
    }
}

/// [`conv2d_pixel`]; the scratch is the DSP version's.
///
/// # Errors
/// As [`conv2d_pixel`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d_pixel_in(
    _scratch: &mut PixelScratch,
    p: &ConvParams,
    mask: Mask,
    input: &[i8],
    rows: usize,
    y: usize,
    x: usize,
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    out: &mut [i8],
) -> Result<()> {
    conv2d_pixel(
        p, mask, input, rows, y, x, weights, bias, multiplier, shift, out,
    )
}

/// What the DSP kernels' [`conv2d_in`] and [`conv2d_masked_in`] keep
/// their buffers in; nothing here.
#[derive(Default)]
pub struct ConvScratch;

impl ConvScratch {
    /// A scratch for any number of calls.
    pub fn new() -> Self {
        ConvScratch
    }
}

/// [`conv2d`]; the scratch is the DSP version's.
///
/// # Errors
/// As [`conv2d`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d_in(
    _scratch: &mut ConvScratch,
    p: &ConvParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &mut [i8],
) -> Result<()> {
    conv2d(p, input, weights, bias, multiplier, shift, output)
}

/// [`conv2d_masked`]; the scratch is the DSP version's.
///
/// # Errors
/// As [`conv2d_masked`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d_masked_in(
    _scratch: &mut ConvScratch,
    p: &ConvParams,
    mask: Mask,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &mut [i8],
) -> Result<()> {
    conv2d_masked(p, mask, input, weights, bias, multiplier, shift, output)
}
