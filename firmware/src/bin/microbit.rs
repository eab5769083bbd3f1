//! BBC micro:bit v1 as QEMU's `microbit` machine models it: nRF51822,
//! Cortex-M0 (Armv6-M: no DSP, no FPU, no atomic read-modify-write) at
//! 16 MHz, 16 KB RAM, semihosted (`tinyinfer simulate --board microbit`).
//! The LEDs are a row/column matrix: no status LED here.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use tinyinfer_firmware::mmio::NoLed;
use tinyinfer_firmware::{arena_bytes, semihosted, BoardInfo, Buffers};

const BOARD: BoardInfo = BoardInfo::new(env!("CARGO_BIN_NAME"));
/// The CPU clock, which SysTick counts: 62.5 instructions per tick under `-icount shift=0`.
const CLOCK_HZ: u32 = 16_000_000;
/// 16 KB of RAM: a 10,976-byte arena (DiracNet widths 7,14,28 needs 10,976),
/// 784 input bytes (one 28×28 image); the link checks that 4 KB remain for
/// the stack.
static BUFFERS: Buffers<{ arena_bytes(10976) }, 784> = Buffers::new();

#[cortex_m_rt::entry]
fn main() -> ! {
    semihosted::run(BOARD, CLOCK_HZ, NoLed, &BUFFERS)
}

tinyinfer_firmware::semihosted_handlers!();
