//! Bit-exactness of the DSP kernels on QEMU's mps2-an505 (Cortex-M33 with
//! the DSP extension, `-C target-feature=+dsp`): the same app as
//! `kernel-check` (`src/kernel_check_app.rs`), the same cases.
//!
//! ```sh
//! bash firmware/kernel-check.sh     # runs both, under `timeout`
//! ```
#![no_std]
#![no_main]
#![deny(unsafe_code)]

/// Instructions per SysTick tick under `-icount shift=0` (the an505's
/// 20 MHz clock, 1 ns per instruction).
const INSTRUCTIONS_PER_TICK: u32 = 50;
const CPU: &str = "Cortex-M33";

include!("../kernel_check_app.rs");
