//! Bit-exactness of the DSP kernels on QEMU's mps2-an386 (Cortex-M4F):
//! seeded random cases of every `tinyinfer::kernels::arm` kernel against
//! the reference (`tinyinfer_firmware::kernel_check`).
//!
//! Exit status (semihosting `SYS_EXIT_EXTENDED`): 0 all cases equal,
//! 1 a difference (logged: kernel, case, first byte), 3 panic, 4 HardFault.
//! The seed and the number of cases are fixed at build time
//! (`TINYINFER_CHECK_SEED`, `TINYINFER_CHECK_CASES`; defaults 1 and 300).
//!
//! ```sh
//! bash firmware/kernel-check.sh     # builds, runs QEMU under `timeout`
//! ```
#![no_std]
#![no_main]
#![deny(unsafe_code)]

/// Instructions per SysTick tick under `-icount shift=0` (25 MHz clock, 1 ns per instruction).
const INSTRUCTIONS_PER_TICK: u32 = 40;
const CPU: &str = "Cortex-M4F";

include!("../kernel_check_app.rs");
