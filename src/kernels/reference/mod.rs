//! Reference int8 kernels (TFLite int8 quantization spec).
//!
//! - Weights: int8, symmetric (zero point 0), one scale per output channel.
//! - Activations: int8, asymmetric (`real = scale · (q − zero_point)`).
//! - Bias: int32 in units of `input_scale · weight_scale[channel]`.
//! - Requantization: per-channel `(multiplier, shift)`, see [`crate::quant`].
//! - Fused activation: a clamp to `[act_min, act_max]` (ReLU is `act_min = zp_out`).
//!
//! Language-model matrix kernels ([`lm`]): `[rows][depth]` int8
//! matrices with a requantization per row, symmetric activations.
//!
//! Layouts: activations HWC (channels innermost); conv weights OHWI
//! (`[out_c][ky][kx][in_c]`); fully connected weights `[out][in]`.

mod add;
mod conv;
mod fc;
pub mod lm;
mod pool;

pub use add::{add, AddParams, ADD_LEFT_SHIFT};
pub(crate) use conv::check as check_conv;
#[allow(unused_imports)] // used by kernels::arm only
pub(crate) use conv::check_pairs;
pub use conv::{conv2d, conv2d_pairs, pair_weight, to_pairs, ConvParams};
pub use fc::{fully_connected, FcParams};
pub use lm::{decoder, latent, lstm_gates};
pub use pool::{global_avg_pool, max_pool_2x2, GapParams, PoolParams};

use crate::{Error, Result};

/// Checks a slice length against the one the params imply.
#[inline]
pub(crate) fn expect_len(got: usize, expected: usize) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::BadLength {
            expected: expected as u32,
            got: got as u32,
        })
    }
}

/// Product of sizes, or `usize::MAX` on overflow (which no slice length equals).
#[inline]
pub(crate) fn size(dims: &[usize]) -> usize {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .unwrap_or(usize::MAX)
}
