#[cfg(feature = "compact")]
compile_error!(
    "kernel-check tests the core's DSP kernels, which the `compact` feature partly replaces \
     with the reference: build it without `compact`"
);

// The kernel-check app, shared by the `kernel-check` (Cortex-M4, mps2-an386)
// and `kernel-check-m33` (Cortex-M33, mps2-an505) bins, which `include!` it
// after defining `INSTRUCTIONS_PER_TICK` and `CPU`.

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::{entry, exception, ExceptionFrame};
use defmt_semihosting as _; // the library logs over defmt; this app prints text
use semihosting::println;
use tinyinfer_firmware::{kernel_check, mem, status};

const SEED: u64 = match option_env!("TINYINFER_CHECK_SEED") {
    Some(s) => parse(s),
    None => 1,
};
const CASES: u64 = match option_env!("TINYINFER_CHECK_CASES") {
    Some(s) => parse(s),
    None => 300,
};

const fn parse(s: &str) -> u64 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n = 0u64;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "expected a decimal number");
        n = n * 10 + (b[i] - b'0') as u64;
        i += 1;
    }
    n
}


#[entry]
fn main() -> ! {
    let scratch = mem::take_scratch().unwrap_or_else(|| exit(status::PANIC));
    let mut cp = cortex_m::Peripherals::take().unwrap_or_else(|| exit(status::PANIC));
    cp.SYST.set_clock_source(SystClkSource::Core);
    cp.SYST.set_reload(0x00FF_FFFF);
    cp.SYST.clear_current();
    cp.SYST.enable_counter();
    // Counts down, 24 bits: differences are exact below 2^24 ticks (671 M instructions).
    let mut clock = || 0x00FF_FFFF - SYST::get_current();
    println!("kernel-check on the {CPU}: seed {SEED}, {CASES} random cases per kernel");
    let mut layer = |i: usize, t: kernel_check::Timing| {
        let ((h, w, c), oc) = kernel_check::DIRAC_CONVS[i];
        let macs = h * w * oc * 9 * c;
        let per = |v: u32| v as f32 * INSTRUCTIONS_PER_TICK as f32 / macs as f32;
        println!(
            "conv 3x3 {h}x{w}x{c} -> {oc}: {macs} MACs; instructions (valid under -icount shift=0) reference {} ({:.2}/MAC), fast {} ({:.2}/MAC), arm {} ({:.2}/MAC), arm pairs {} ({:.2}/MAC)",
            t.reference * INSTRUCTIONS_PER_TICK,
            per(t.reference),
            t.fast * INSTRUCTIONS_PER_TICK,
            per(t.fast),
            t.arm * INSTRUCTIONS_PER_TICK,
            per(t.arm),
            t.pairs * INSTRUCTIONS_PER_TICK,
            per(t.pairs),
        );
    };
    match kernel_check::run(scratch, SEED, CASES as u32, &mut clock, &mut layer) {
        Ok(s) => {
            println!("kernel-check: pass, every arm kernel equals the reference: {s:?}");
            exit(0)
        }
        Err(m) => {
            println!("kernel-check: MISMATCH {m:?}");
            exit(1)
        }
    }
}

fn exit(code: u8) -> ! {
    semihosting::process::exit(code as i32)
}

#[exception]
#[allow(unsafe_code)]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    println!("kernel-check: HardFault at pc {:#x}", ef.pc());
    exit(status::HARDFAULT)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(l) => println!("kernel-check: panic at {}:{}", l.file(), l.line()),
        None => println!("kernel-check: panic"),
    }
    exit(status::PANIC)
}
