//! The app on QEMU's mps2-an386 (Cortex-M4F).
//!
//! - defmt goes over semihosting (`defmt-semihosting`);
//! - the run ends with `SYS_EXIT_EXTENDED` and the status of
//!   [`Outcome::code`], which becomes QEMU's exit status;
//! - the counter is SysTick on the 25 MHz CPU clock: under
//!   `-icount shift=0,align=off,sleep=off` one instruction takes 1 ns of
//!   virtual time, so one tick is exactly 40 instructions;
//! - evaluation images come from the host's files `tinyinfer-eval.in` and
//!   go back to `tinyinfer-eval.out` (semihosting paths relative to QEMU's
//!   working directory);
//! - the status LED is LED0 of the FPGA I/O block.
//!
//! Run it with `tinyinfer simulate MODEL.tinf` (see docs/firmware.md).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use core::convert::Infallible;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::{entry, exception, ExceptionFrame};
use defmt_semihosting as _;
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType, OutputPin};
use semihosting::fs::File;
use semihosting::io::{Read as _, Write as _};
use tinyinfer_firmware::{
    mem, status, BoardInfo, CycleCounter, Hardware, HostLink, LinkError, Outcome,
};

/// Instructions per SysTick tick: 25 MHz CPU clock, 1 ns per instruction under `-icount shift=0`.
const INSTRUCTIONS_PER_TICK: u64 = 40;
const RELOAD: u32 = 0x00FF_FFFF;

static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// Executed instructions, from SysTick ticks and the wraps counted by its exception.
struct Instructions;

impl Instructions {
    fn start(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        Instructions
    }
}

impl CycleCounter for Instructions {
    const UNIT: &'static str = "instructions";
    const ONE: &'static str = "instruction";

    fn now(&mut self) -> u32 {
        self.now64() as u32
    }

    fn now64(&mut self) -> u64 {
        loop {
            let w0 = WRAPS.load(Ordering::Relaxed);
            let cvr = SYST::get_current();
            // A wrap between the two loads ran the exception: read again.
            if WRAPS.load(Ordering::Relaxed) == w0 {
                let ticks = ((w0 as u64) << 24) | (RELOAD - cvr) as u64;
                return ticks * INSTRUCTIONS_PER_TICK;
            }
        }
    }
}

/// Busy-waits on the instruction count (1 ns per instruction under -icount shift=0).
struct Delay(Instructions);

impl DelayNs for Delay {
    fn delay_ns(&mut self, ns: u32) {
        let t0 = self.0.now();
        while self.0.now().wrapping_sub(t0) < ns {}
    }
}

/// LED0 of the mps2 FPGA I/O block (register FPGAIO->LED at 0x4002_8000, bit 0).
struct FpgaLed;

const FPGAIO_LED: usize = 0x4002_8000;

impl FpgaLed {
    #[allow(unsafe_code)]
    fn write(on: bool) {
        // SAFETY: FPGAIO->LED is a 32-bit device register of the mps2-an386
        // memory map; only this type touches it, and bits 1.. are LEDs we leave off.
        unsafe {
            core::ptr::write_volatile(
                core::ptr::with_exposed_provenance_mut::<u32>(FPGAIO_LED),
                on as u32,
            )
        }
    }
}

impl ErrorType for FpgaLed {
    type Error = Infallible;
}

impl OutputPin for FpgaLed {
    fn set_high(&mut self) -> Result<(), Infallible> {
        Self::write(true);
        Ok(())
    }
    fn set_low(&mut self) -> Result<(), Infallible> {
        Self::write(false);
        Ok(())
    }
}

/// Evaluation files on the host, through semihosting.
#[derive(Default)]
struct SemihostingFiles {
    input: Option<File>,
    output: Option<File>,
}

impl HostLink for SemihostingFiles {
    fn open(&mut self) -> Result<bool, LinkError> {
        let Ok(input) = File::open(c"tinyinfer-eval.in") else {
            return Ok(false);
        };
        self.input = Some(input);
        self.output = Some(File::create(c"tinyinfer-eval.out").map_err(|_| LinkError::Write)?);
        Ok(true)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), LinkError> {
        let f = self.input.as_mut().ok_or(LinkError::Read)?;
        f.read_exact(buf).map_err(|_| LinkError::Read)
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<(), LinkError> {
        let f = self.output.as_mut().ok_or(LinkError::Write)?;
        f.write_all(buf).map_err(|_| LinkError::Write)
    }

    fn close(&mut self) {
        self.input = None;
        self.output = None;
    }
}

#[entry]
fn main() -> ! {
    let cp = cortex_m::Peripherals::take().unwrap_or_else(|| exit(status::PANIC));
    let mut hw = Hardware {
        led: FpgaLed,
        delay: Delay(Instructions),
        counter: Instructions::start(cp.SYST),
    };
    let (arena, input) = mem::take_buffers().unwrap_or_else(|| exit(status::PANIC));
    let outcome: Outcome = tinyinfer_firmware::run(
        BoardInfo::new("qemu-mps2-an386"),
        &mut hw,
        &mut SemihostingFiles::default(),
        mem::model_partition(),
        arena,
        input,
    );
    if outcome != Outcome::Pass {
        let _ = hw.led.set_low();
    }
    exit(outcome.code())
}

fn exit(code: u8) -> ! {
    semihosting::process::exit(code as i32)
}

#[exception]
#[allow(unsafe_code)]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    defmt::error!("HardFault at pc {=u32:#x}", ef.pc());
    exit(status::HARDFAULT)
}

/// Panics log where they happened (the message would pull in `core::fmt`,
/// several KB of flash; the core promises not to panic on any input).
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(l) => defmt::error!("panic at {=str}:{=u32}", l.file(), l.line()),
        None => defmt::error!("panic"),
    }
    exit(status::PANIC)
}
