//! QEMU's RISC-V `virt` machine, one RV32 hart in machine mode
//! (`qemu-system-riscv32 -machine virt -bios none`), semihosted
//! (`tinyinfer simulate --board riscv-virt`): the ESP32-C3 class of CPU
//! (RV32IMC), on the same firmware library as the Cortex-M boards. The
//! counter is `minstret` (retired instructions), so no clock is needed. No
//! LED: the machine has none.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use tinyinfer_firmware::mmio::NoLed;
use tinyinfer_firmware::{arena_bytes, semihosted, BoardInfo, Buffers, MAX_INPUT_BYTES};

const BOARD: BoardInfo = BoardInfo::new(env!("CARGO_BIN_NAME"));
/// DiracNet (widths 16,32,64) needs 25,088 bytes.
static BUFFERS: Buffers<{ arena_bytes(25 * 1024) }, MAX_INPUT_BYTES> = Buffers::new();

#[riscv_rt::entry]
fn main() -> ! {
    semihosted::run(BOARD, NoLed, &BUFFERS)
}

tinyinfer_firmware::semihosted_handlers!();
