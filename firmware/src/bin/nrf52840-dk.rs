//! The nRF52840-DK (nRF52840_xxAA, Cortex-M4F at 64 MHz), over RTT.
//!
//! `cargo run --release --bin nrf52840-dk` (the runner is `probe-rs run`)
//! flashes the app and prints the log; `tinyinfer flash --board
//! nrf52840-dk MODEL.tinf` writes the MODEL partition (0x0004_0000)
//! independently of the app. LED1 (P0.13, active low) is on while running
//! and after a pass, and blinks the exit status on failure.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use tinyinfer_firmware::mmio::{self, Led};
use tinyinfer_firmware::{arena_bytes, rtt, BoardInfo, Buffers, MAX_INPUT_BYTES};

const BOARD: BoardInfo = BoardInfo::new(env!("CARGO_BIN_NAME"));
/// HCLK, from the external 32 MHz crystal.
const CLOCK_HZ: u32 = 64_000_000;
static BUFFERS: Buffers<{ arena_bytes(25 * 1024) }, MAX_INPUT_BYTES> = Buffers::new();

const CLOCK: usize = 0x4000_0000; // CLOCK peripheral
const P0: usize = 0x5000_0000; // GPIO port 0
const LED1: u32 = 13;

#[cortex_m_rt::entry]
#[allow(unsafe_code)]
fn main() -> ! {
    // SAFETY: nRF52840 product specification registers, written once before
    // the app runs: TASKS_HFCLKSTART starts the 32 MHz crystal (accurate
    // cycles and delays), polled on EVENTS_HFCLKSTARTED; P0.DIRSET makes
    // LED1's pin an output and P0.OUTSET/OUTCLR drive it.
    let led = unsafe {
        mmio::write(CLOCK + 0x100, 0);
        mmio::write(CLOCK, 1);
        while mmio::read(CLOCK + 0x100) == 0 {}
        mmio::write(P0 + 0x508, 1 << LED1); // OUTSET: off (active low)
        mmio::write(P0 + 0x518, 1 << LED1); // DIRSET
        Led::set_clear(P0 + 0x508, P0 + 0x50C, LED1, true)
    };
    rtt::run(BOARD, CLOCK_HZ, led, &BUFFERS)
}

tinyinfer_firmware::rtt_handlers!();
