//! QEMU's mps2-an505: Cortex-M33 (Armv8-M Mainline, FPU, DSP, TrustZone)
//! at 20 MHz, semihosted (`tinyinfer simulate --board mps2-an505`). The app
//! runs in the Secure state it resets into (memory-mps2-an505.x).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use tinyinfer_firmware::mmio::Led;
use tinyinfer_firmware::{arena_bytes, semihosted, BoardInfo, Buffers, MAX_INPUT_BYTES};

const BOARD: BoardInfo = BoardInfo::new(env!("CARGO_BIN_NAME"));
/// The CPU clock (QEMU's mps2-tz an505 sysclk), which SysTick counts: 50
/// instructions per tick under `-icount shift=0`.
const CLOCK_HZ: u32 = 20_000_000;
/// DiracNet (widths 16,32,64) needs 25,088 bytes.
static BUFFERS: Buffers<{ arena_bytes(25 * 1024) }, MAX_INPUT_BYTES> = Buffers::new();

#[cortex_m_rt::entry]
fn main() -> ! {
    // SAFETY: FPGAIO->LED of the an505, through the Secure alias of its
    // peripheral block (0x5030_2000); bit 0 is LED0 and nothing else writes it.
    #[allow(unsafe_code)]
    let led = unsafe { Led::register_bit(0x5030_2000, 0) };
    semihosted::run(BOARD, CLOCK_HZ, led, &BUFFERS)
}

tinyinfer_firmware::semihosted_handlers!();
