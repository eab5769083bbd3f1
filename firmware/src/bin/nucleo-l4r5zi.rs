//! NUCLEO-L4R5ZI (STM32L4R5ZIT6, Cortex-M4F), over RTT: the board on which
//! MLPerf Tiny publishes Cortex-M4 results. The app leaves the clock as
//! reset sets it (MSI, 4 MHz): cycle counts do not depend on it, delays do.
//! LD1 (green, PC7, active high) is on while running and after a pass, and
//! blinks the exit status on failure.
//!
//! `cargo build --release --bin nucleo-l4r5zi --no-default-features
//! --features rtt,density,language`, then `probe-rs run --chip STM32L4R5ZITx`.
//! `tinyinfer flash MODEL.tinf --board nucleo-l4r5zi` writes the model to
//! the inactive A/B slot of the MODEL partition (the slot's last page and
//! trailer through the STM32L4+ FLASH interface; docs/reliability.md).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use tinyinfer_firmware::mmio::{self, Led};
use tinyinfer_firmware::{arena_bytes, rtt, BoardInfo, Buffers, MAX_INPUT_BYTES};

const BOARD: BoardInfo = BoardInfo::new(env!("CARGO_BIN_NAME"));
/// MSI at its reset range: 4 MHz.
const CLOCK_HZ: u32 = 4_000_000;
static BUFFERS: Buffers<{ arena_bytes(25 * 1024) }, MAX_INPUT_BYTES> = Buffers::new();

const RCC_AHB2ENR: usize = 0x4002_104C;
const GPIOC: usize = 0x4800_0800;
const LD1: u32 = 7;

#[cortex_m_rt::entry]
#[allow(unsafe_code)]
fn main() -> ! {
    // SAFETY: STM32L4R5 reference manual (RM0432) registers, written once
    // before the app runs: RCC_AHB2ENR bit 2 clocks GPIOC; GPIOC_MODER
    // (offset 0) sets PC7 to output (0b01); GPIOC_BSRR (offset 0x18) drives it.
    let led = unsafe {
        mmio::set_bits(RCC_AHB2ENR, 1 << 2);
        let _ = mmio::read(RCC_AHB2ENR); // the clock is on after this read-back
        let moder = mmio::read(GPIOC) & !(0b11 << (2 * LD1));
        mmio::write(GPIOC, moder | (0b01 << (2 * LD1)));
        Led::bsrr(GPIOC + 0x18, LD1, false)
    };
    tinyinfer_firmware::stm32l4::clear_ecc_flags();
    rtt::run(BOARD, CLOCK_HZ, led, &BUFFERS)
}

tinyinfer_firmware::rtt_handlers!();
// A double-bit flash ECC error in the MODEL partition refuses that slot (docs/reliability.md).
tinyinfer_firmware::stm32l4_ecc_nmi!();
