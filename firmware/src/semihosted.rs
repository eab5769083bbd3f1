//! What every semihosted board shares (feature `semihosting`): QEMU's
//! mps2 and micro:bit machines, QEMU's RISC-V `virt` machine, or a board
//! under a debugger that serves semihosting.
//!
//! - defmt goes over semihosting (`defmt-semihosting`);
//! - the run ends with `SYS_EXIT_EXTENDED` and the status of
//!   [`Outcome::code`](crate::Outcome::code), which becomes QEMU's exit
//!   status; so do panics (status 3) and HardFaults (status 4);
//! - the counter is SysTick on the CPU clock, wraps counted by its exception
//!   ([`Instructions`]): under QEMU's `-icount shift=0,align=off,sleep=off`
//!   one instruction takes 1 ns of virtual time, so a tick is
//!   10⁹ / clock instructions (40 at 25 MHz, 62.5 at 16 MHz). On RISC-V the
//!   counter is the hart's own `minstret` CSR (retired instructions, 64 bits),
//!   and HardFault's place is taken by the trap handler (any exception:
//!   status 4);
//! - evaluation images come from the host's file `tinyinfer-eval.in` and go
//!   back to `tinyinfer-eval.out` (paths relative to QEMU's working directory);
//! - the report's records ([`crate::report`]) go to `tinyinfer-report.bin`,
//!   appended one record at a time ([`send_record`]), so the file holds
//!   every record sent before a panic, a HardFault or a timeout.
//!
//! A board file calls [`run`] from its `#[entry]` and expands
//! [`semihosted_handlers!`](crate::semihosted_handlers) for the exception
//! handlers (they must be defined in the bin for the linker to keep them).

#[cfg(target_arch = "arm")]
use core::sync::atomic::{AtomicU32, Ordering};

#[cfg(target_arch = "arm")]
use cortex_m::peripheral::syst::SystClkSource;
#[cfg(target_arch = "arm")]
use cortex_m::peripheral::SYST;
#[cfg(target_arch = "arm")]
use cortex_m_rt::ExceptionFrame;
use defmt_semihosting as _;
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use semihosting::fs::{File, OpenOptions};
use semihosting::io::{Read as _, Seek as _, SeekFrom, Write as _};

use crate::{
    mem, status, BoardInfo, Buffers, CycleCounter, Hardware, HostLink, LinkError, Outcome,
};

#[cfg(target_arch = "arm")]
const RELOAD: u32 = 0x00FF_FFFF;

#[cfg(target_arch = "arm")]
static WRAPS: AtomicU32 = AtomicU32::new(0);

/// SysTick's exception: one more wrap of the 24-bit counter. A load and a
/// store, not `fetch_add` (Armv6-M has no atomic read-modify-write): this
/// handler is the only writer and cannot preempt itself, and the readers
/// ([`Instructions::now64`]) only load.
#[cfg(target_arch = "arm")]
pub fn on_systick() {
    WRAPS.store(
        WRAPS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

#[cfg(target_arch = "arm")]
const fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Executed instructions under `-icount shift=0`, from SysTick ticks of the
/// CPU clock and the wraps counted by its exception. Copies read the same SysTick.
#[cfg(target_arch = "arm")]
#[derive(Clone, Copy, Debug)]
pub struct Instructions {
    /// Instructions per tick as the fraction `num / den` (10⁹ / clock).
    num: u64,
    den: u32,
    /// `log2(den)` when `den` is a power of two (every board of the table:
    /// 1 on the mps2 machines, 2 on the micro:bit's 16 MHz), else `None`.
    den_shift: Option<u32>,
}

/// `n / d` for `d > 0`, one bit at a time: exact, a few dozen bytes, and
/// no 64-bit division from compiler-builtins (about 900 bytes of flash) for
/// the clocks that need it, none of the board table's. Out of line and
/// cold, so that the counter's usual path stays short.
#[cfg(target_arch = "arm")]
#[cold]
#[inline(never)]
fn div_u64(n: u64, d: u32) -> u64 {
    let d = d as u64;
    let (mut q, mut r) = (0u64, 0u64);
    for i in (0..64).rev() {
        r = (r << 1) | ((n >> i) & 1);
        if r >= d {
            r -= d;
            q |= 1 << i;
        }
    }
    q
}

#[cfg(target_arch = "arm")]
impl Instructions {
    /// Starts SysTick on the core clock of `clock_hz` (the machine's CPU clock in QEMU).
    pub fn start(mut syst: SYST, clock_hz: u32) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        // In u32: a u64 `%` would link the library's 64-bit division.
        let clock = clock_hz.max(1);
        let g = gcd(1_000_000_000, clock);
        let den = clock / g;
        Instructions {
            num: (1_000_000_000 / g) as u64,
            den,
            den_shift: den.is_power_of_two().then(|| den.trailing_zeros()),
        }
    }
}

#[cfg(target_arch = "arm")]
impl CycleCounter for Instructions {
    const UNIT: &'static str = "instructions";
    const ONE: &'static str = "instruction";
    const KIND: tinyinfer::link::report::Unit = tinyinfer::link::report::Unit::Instructions;

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
                // No division (a library call inside every measured
                // interval) when a tick is a whole number of instructions
                // (every mps2 machine), a shift for a power-of-two `den`.
                if self.den == 1 {
                    return ticks * self.num;
                }
                return match self.den_shift {
                    Some(s) => (ticks * self.num) >> s,
                    None => div_u64(ticks * self.num, self.den),
                };
            }
        }
    }
}

/// Retired instructions, from the hart's `minstret` CSR (RISC-V, machine
/// mode). QEMU counts them exactly under `-icount shift=0,align=off,sleep=off`.
#[cfg(target_arch = "riscv32")]
#[derive(Clone, Copy, Debug)]
pub struct Instructions(());

#[cfg(target_arch = "riscv32")]
impl Instructions {
    /// The counter: `minstret` counts from reset, nothing to start.
    pub fn start() -> Self {
        Instructions(())
    }
}

#[cfg(target_arch = "riscv32")]
impl CycleCounter for Instructions {
    const UNIT: &'static str = "instructions";
    const ONE: &'static str = "instruction";
    const KIND: tinyinfer::link::report::Unit = tinyinfer::link::report::Unit::Instructions;

    fn now(&mut self) -> u32 {
        riscv::register::minstret::read() as u32
    }

    fn now64(&mut self) -> u64 {
        // minstreth, minstret, minstreth again until the high half holds.
        riscv::register::minstret::read64()
    }
}

/// Busy-waits on the instruction count (1 ns per instruction under -icount shift=0).
pub struct Delay(pub Instructions);

impl DelayNs for Delay {
    fn delay_ns(&mut self, ns: u32) {
        let t0 = self.0.now();
        while self.0.now().wrapping_sub(t0) < ns {}
    }
}

/// Evaluation files on the host, through semihosting.
#[derive(Default)]
pub struct SemihostingFiles {
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

/// The report file in QEMU's working directory.
const REPORT: &core::ffi::CStr = c"tinyinfer-report.bin";

/// Creates (or empties) the report file. If that fails no record is
/// written, and the host, finding no report, says so.
pub fn open_report() {
    let _ = File::create(REPORT);
}

/// Appends one report frame to the report file: opened, moved to its end,
/// written in one semihosting write (so a frame is in the file whole or
/// not at all) and closed. Not opened in append mode: QEMU 7.2 opens mode
/// "a" without `O_APPEND`. No static holds the file: a new static would
/// move the arena, and with it the counts of the kernels whose paths
/// depend on alignment. A failed write is dropped; the host then reads a
/// report without the record, a typed error there.
pub fn send_record(frame: &[u8]) {
    if let Ok(mut f) = OpenOptions::new().read(true).write(true).open(REPORT) {
        if f.seek(SeekFrom::End(0)).is_ok() {
            let _ = f.write_all(frame);
        }
    }
}

/// The whole app of a semihosted board: starts the instruction counter on
/// the `clock_hz` core clock, takes the board's buffers, runs the model in
/// the MODEL partition ([`crate::run`]) and exits with its status.
#[cfg(target_arch = "arm")]
pub fn run<L: OutputPin, const A: usize, const I: usize>(
    board: BoardInfo,
    clock_hz: u32,
    led: L,
    buffers: &'static Buffers<A, I>,
) -> ! {
    let cp = cortex_m::Peripherals::take().unwrap_or_else(|| exit(status::PANIC));
    let counter = Instructions::start(cp.SYST, clock_hz);
    run_counted(board, counter, led, buffers)
}

/// The whole app of a semihosted RISC-V board: paints the stack (for the
/// high-water mark), counts retired instructions (`minstret`), takes the
/// board's buffers, runs the model in the MODEL partition ([`crate::run`])
/// and exits with its status.
#[cfg(target_arch = "riscv32")]
pub fn run<L: OutputPin, const A: usize, const I: usize>(
    board: BoardInfo,
    led: L,
    buffers: &'static Buffers<A, I>,
) -> ! {
    mem::paint_stack();
    run_counted(board, Instructions::start(), led, buffers)
}

// Inlined: the Arm boards' code before the first count stays as it was,
// and with it SysTick's phase (a tick is 40 instructions on mps2), so their
// instruction counts do not move by a tick.
#[inline(always)]
fn run_counted<L: OutputPin, const A: usize, const I: usize>(
    board: BoardInfo,
    counter: Instructions,
    led: L,
    buffers: &'static Buffers<A, I>,
) -> ! {
    let mut hw = Hardware {
        led,
        delay: Delay(counter),
        counter,
    };
    let (arena, input) = buffers.take().unwrap_or_else(|| exit(status::PANIC));
    open_report();
    let outcome: Outcome = crate::run(
        board,
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

/// Ends the run: QEMU exits with `code` (`SYS_EXIT_EXTENDED`).
pub fn exit(code: u8) -> ! {
    semihosting::process::exit(code as i32)
}

/// The HardFault handler's body: logs the faulting pc and exits with status 4.
#[cfg(target_arch = "arm")]
pub fn hard_fault(ef: &ExceptionFrame) -> ! {
    defmt::error!("HardFault at pc {=u32:#x}", ef.pc());
    exit(status::HARDFAULT)
}

/// The trap handler's body on RISC-V (riscv-rt's `ExceptionHandler`: any
/// exception, such as an illegal instruction or an access fault): logs the
/// cause and the faulting pc and exits with status 4, HardFault's.
#[cfg(target_arch = "riscv32")]
pub fn exception() -> ! {
    defmt::error!(
        "exception (mcause {=usize:#x}) at pc {=usize:#x}, mtval {=usize:#x}",
        riscv::register::mcause::read().bits(),
        riscv::register::mepc::read(),
        riscv::register::mtval::read()
    );
    exit(status::HARDFAULT)
}

/// The panic handler's body: logs where the panic happened (the message
/// would pull in `core::fmt`, several KB of flash; the core promises not to
/// panic on any input) and exits with status 3.
///
/// Where is feature `panic-location`. Without it the log says only
/// "panic": reading the location keeps a file name and a `Location` record
/// for every bounds check and slice in the app, with the `core::fmt` code
/// the panic paths pass along, 3,488 bytes of the classifier-only app
/// (docs/firmware.md), which builds without it.
pub fn panic(info: &core::panic::PanicInfo) -> ! {
    #[cfg(feature = "panic-location")]
    match info.location() {
        Some(l) => defmt::error!("panic at {=str}:{=u32}", l.file(), l.line()),
        None => defmt::error!("panic"),
    }
    #[cfg(not(feature = "panic-location"))]
    {
        let _ = info;
        defmt::error!("panic (build with feature `panic-location` for where)");
    }
    exit(status::PANIC)
}

/// Defines a semihosted bin's handlers: SysTick (the instruction counter's
/// wraps), HardFault (log, exit with status 4) and the panic handler (log,
/// exit with status 3). Expand once in the board file; the linker keeps
/// exception handlers only when the bin defines them.
#[cfg(target_arch = "arm")]
#[macro_export]
macro_rules! semihosted_handlers {
    () => {
        #[::cortex_m_rt::exception]
        fn SysTick() {
            $crate::semihosted::on_systick()
        }

        #[::cortex_m_rt::exception]
        #[allow(unsafe_code)]
        unsafe fn HardFault(ef: &::cortex_m_rt::ExceptionFrame) -> ! {
            $crate::semihosted::hard_fault(ef)
        }

        #[panic_handler]
        fn panic(info: &::core::panic::PanicInfo) -> ! {
            $crate::semihosted::panic(info)
        }
    };
}

/// Defines a semihosted RISC-V bin's handlers: riscv-rt's
/// `ExceptionHandler` (log, exit with status 4) and the panic handler (log,
/// exit with status 3). No timer interrupt: `minstret` needs none.
#[cfg(target_arch = "riscv32")]
#[macro_export]
macro_rules! semihosted_handlers {
    () => {
        #[export_name = "ExceptionHandler"]
        fn exception_handler(_frame: &::riscv_rt::TrapFrame) -> ! {
            $crate::semihosted::exception()
        }

        #[panic_handler]
        fn panic(info: &::core::panic::PanicInfo) -> ! {
            $crate::semihosted::panic(info)
        }
    };
}
