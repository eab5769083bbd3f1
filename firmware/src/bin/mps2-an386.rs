//! QEMU's mps2-an386: Cortex-M4F at 25 MHz, semihosted (`tinyinfer simulate`).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use tinyinfer_firmware::mmio::Led;
use tinyinfer_firmware::{arena_bytes, semihosted, BoardInfo, Buffers, MAX_INPUT_BYTES};

const BOARD: BoardInfo = BoardInfo::new(env!("CARGO_BIN_NAME"));
/// The CPU clock, which SysTick counts: 40 instructions per tick under `-icount shift=0`.
const CLOCK_HZ: u32 = 25_000_000;
/// DiracNet (widths 16,32,64) needs 25,088 bytes.
static BUFFERS: Buffers<{ arena_bytes(25 * 1024) }, MAX_INPUT_BYTES> = Buffers::new();

#[cortex_m_rt::entry]
fn main() -> ! {
    // SAFETY: FPGAIO->LED (0x4002_8000) is the mps2 FPGA I/O block's LED
    // register; bit 0 is LED0 and nothing else writes the register.
    #[allow(unsafe_code)]
    let led = unsafe { Led::register_bit(0x4002_8000, 0) };
    semihosted::run(BOARD, CLOCK_HZ, led, &BUFFERS)
}

tinyinfer_firmware::semihosted_handlers!();
