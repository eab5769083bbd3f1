//! int8 kernels for the Armv7E-M DSP extension (Cortex-M4/M7): `SMLAD`
//! does two 16-bit multiply-accumulates in one instruction.
//!
//! Built only when `cfg(tinyinfer_dsp)` is set (`dsp_cfg.rs`: every
//! `thumbv7em-*` target, and Arm targets built with `+dsp`, such as the
//! Cortex-M33 of the mps2-an505). Same signatures, checks, errors and output
//! bytes as [`super::reference`]; the model drivers run these on such
//! targets and [`super::fast`] everywhere else (host, Cortex-M0+).
//!
//! All `unsafe` of the crate is in the private `dsp` module: one
//! `core::arch::asm!` block per instruction or inner loop, each behind a
//! safe function with a `// SAFETY:` note. The kernels themselves are safe
//! Rust over slices. Equality with the reference is tested on the
//! Cortex-M4 itself by the firmware's `kernel-check` app (seeded random
//! cases on QEMU, see docs/firmware.md), since the host cannot run them.
//!
//! | kernel | inner loop | instructions per MAC (inner loop) |
//! | --- | --- | ---: |
//! | [`conv2d`] | 4 output pixels × 1 channel, windows packed once per group; the channel loop with its output stage in asm for whole windows | 0.97 |
//! | [`conv2d_masked`] | as [`conv2d`], over the live taps (a prefix of each filter) | 1.0 |
//! | [`conv2d`], windows ≤ 10 taps | 1 pixel × 1 channel, filters packed once per call | 5 `LDR` + 5 `SMLAD` per 9 MACs |
//! | [`conv2d_pixel`] | 2 channels × the packed live window of one position, pairs and output stage in asm | 1.5 |
//! | [`fully_connected`] | 2 rows × packed input, as [`conv2d_pixel`] | 1.5 |
//! | [`add`] | long tensors: two elements per pass, tabled rescales, `QADD`, output stage (`SSAT` clamp for the whole int8 range) | 12 per element (20 with another clamp) |
//! | [`max_pool_2x2`] | four channels per `SSUB8`/`SEL` | 13 per four outputs |
//! | [`global_avg_pool`] | four channels per two `SXTAB16` | 1.5 per input byte |
//! | [`lstm_gates`], [`latent`] (row quads) | 4 rows × packed input, one asm call per block of 64 rows; stages without per-row tests when the model proves every pair high-word | 0.94 |
//! | [`decoder`], row-by-row matrices | 2 rows × packed input (every pair of a block of rows in one asm call) | 1.5 |

mod add;
mod conv;
mod dsp;
#[cfg(not(feature = "compact"))]
mod fc;
mod lm;
mod pixel;
#[cfg(not(feature = "compact"))]
mod pool;
mod small;

pub use super::fast::{AddParams, ConvParams, FcParams, GapParams, PoolParams};
/// Feature `compact`: pooling and fully connected layers run the reference
/// (about 6 KB less flash with the conv's single-pixel tail path; measured
/// on DiracNet, docs/firmware.md).
#[cfg(feature = "compact")]
pub use super::reference::{fully_connected, global_avg_pool, max_pool_2x2};
pub use add::{add, add_rescale_agrees};
/// Not with feature `compact`: its graph driver refuses convs in the pairs
/// layout at load (their four-pixel path is about 7 KB of flash).
#[cfg(not(feature = "compact"))]
pub use conv::conv2d_pairs;
pub use conv::{conv2d, conv2d_in, conv2d_masked, conv2d_masked_in, ConvScratch, SEG};
#[cfg(not(feature = "compact"))]
pub use fc::{fully_connected, MAX_IN};
pub use lm::{decoder, latent, lstm_gates, MAX_LM_IN};
pub use pixel::{conv2d_pixel, conv2d_pixel_in, PixelScratch, MAX_WINDOW};
#[cfg(not(feature = "compact"))]
pub use pool::{global_avg_pool, max_pool_2x2};
