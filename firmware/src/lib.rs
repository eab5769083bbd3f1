//! # tinyinfer-firmware
//!
//! The board-agnostic part of the tinyinfer app for Cortex-M (and RISC-V:
//! the board `riscv-virt`), and the thin per-board binaries in `src/bin/`
//! that hand it their hardware.
//!
//! On every boot, [`run`]:
//!
//! 1. reads the MODEL flash partition ([`mem::model_partition`], found
//!    through the linker symbols `__model_start`/`__model_end` of the
//!    board's `memory-<board>.x`), picks the newest complete and valid of
//!    its two A/B slots ([`slots`]) and checks it with the core's
//!    [`Model::new_checked`]. A bad, truncated or erased partition gives a
//!    typed [`Error`](tinyinfer::Error), logged and turned into a distinct
//!    [`status`] code: never a HardFault, never a read past the partition;
//! 2. runs the self-test the exporter stored in the blob (host-computed int8
//!    outputs, compared byte for byte);
//! 3. benchmarks one inference per layer through the core's
//!    [`Observer`](tinyinfer::models::Observer) hooks with the board's
//!    [`CycleCounter`] (cycles on a board, instructions on QEMU);
//! 4. evaluates the images the host offers over a [`HostLink`] (semihosting
//!    files on QEMU) and sends the int8 scores back;
//! 5. reports the stack high-water mark (the stack is painted by
//!    cortex-m-rt's `paint-stack` before `main`) and the static RAM.
//!
//! Steps 2-4 are a classifier's. The blob's family picks the driver: density
//! models (PixelCNN) run in [`density`], language models in [`language`]
//! (text generated from the host's prompt and seed, timed per token).
//!
//! Everything is reported twice by [`report`]: as the typed records of the
//! core's [`tinyinfer::link::report`] on the transport's report channel
//! (a semihosting file on QEMU), which `tinyinfer simulate` parses, and as
//! defmt lines for people, which no program reads.
//!
//! Hardware needs are embedded-hal 1.0 traits ([`OutputPin`] for a status
//! LED, [`DelayNs`] for blinking) plus this crate's [`CycleCounter`]. The
//! firmware computes nothing the exporter could have: it only checks the
//! blob and runs it.
//!
//! A board is one file, `src/bin/<board>.rs` (name, clock, LED or none,
//! transport, arena), plus its memory map and one line in the board table
//! [`boards`] (`firmware/boards.rs`, shared with `build.rs` and host-tools).
//! Features pick the *transport*, exactly one: `semihosting` ([`semihosted`]:
//! QEMU, exit codes, SysTick instruction counts, host files) or `rtt`
//! ([`rtt`]: defmt-rtt, panic-probe, the DWT cycle counter). The classifier
//! driver is always in; `density` and `language` add theirs (both default):
//! a classifier-only app leaves them out of flash, and refuses a model of a
//! family it was built without (`WrongFamily`, status 18). Two more shrink
//! the smallest app: `panic-location` (default; the panic's file and line
//! in the log) left out, `few-vectors` (a 48-entry device vector table) in.
//!
//! Unsafe code lives in [`mem`] (linker symbols, the static buffers, the
//! painted stack) and [`mmio`] (device registers); the board files add only
//! their register addresses, each behind a `// SAFETY:` note.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(all(feature = "semihosting", feature = "rtt"))]
compile_error!(
    "features `semihosting` and `rtt` are two transports: build a semihosted board with \
     `--no-default-features --features semihosting` (see firmware/boards.rs)"
);
#[cfg(not(any(feature = "semihosting", feature = "rtt")))]
compile_error!("pick a transport: feature `semihosting` (QEMU) or `rtt` (a board with a probe)");

pub mod bench;
#[allow(missing_docs)]
#[path = "../boards.rs"]
pub mod boards;
#[cfg(feature = "density")]
pub mod density;
pub mod eval;
// Not with `compact`: the core's `arm::fully_connected` and pooling are
// then the reference, which the cases would compare with itself.
#[cfg(all(feature = "semihosting", tinyinfer_dsp, not(feature = "compact")))]
pub mod kernel_check;
#[cfg(feature = "language")]
pub mod language;
pub mod mem;
pub mod mmio;
pub mod report;
#[cfg(feature = "rtt")]
pub mod rtt;
#[cfg(feature = "semihosting")]
pub mod semihosted;
pub mod slots;
pub mod status;
#[cfg(target_arch = "arm")]
pub mod stm32l4;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use tinyinfer::format::{Family, Model, MAX_OPS};
use tinyinfer::models::Classifier;
#[cfg(feature = "density")]
use tinyinfer::models::DensityModel;
#[cfg(feature = "language")]
use tinyinfer::models::LanguageModel;

pub use bench::{CycleCounter, LayerBench};
pub use eval::{HostLink, LinkError, NoHost};
pub use status::Outcome;

pub use mem::Buffers;

/// The arena a board declares, `default` bytes, unless the build sets the
/// environment variable `TINYINFER_ARENA_BYTES` (as `tinyinfer simulate` does
/// for the model it runs). DiracNet (widths 16,32,64 on 28×28 inputs) needs
/// 25,088 bytes (`tinyinfer inspect MODEL.tinf` prints a model's arena).
/// Whether the statics fit the board's RAM is checked at link time
/// (`build.rs`).
pub const fn arena_bytes(default: usize) -> usize {
    let n = match option_env!("TINYINFER_ARENA_BYTES") {
        Some(s) => parse_usize(s),
        None => default,
    };
    assert!(
        n > 0 && n % 4 == 0,
        "the arena must be a positive multiple of 4 bytes"
    );
    n
}

/// The evaluation input buffer the boards declare: the largest model input
/// (raw pixels) or language-model prompt the firmware takes.
pub const MAX_INPUT_BYTES: usize = 1024;

const fn parse_usize(s: &str) -> usize {
    let b = s.as_bytes();
    assert!(!b.is_empty(), "TINYINFER_ARENA_BYTES is empty");
    let mut i = 0;
    let mut n: usize = 0;
    while i < b.len() {
        assert!(
            b[i].is_ascii_digit(),
            "TINYINFER_ARENA_BYTES must be a decimal number"
        );
        n = n * 10 + (b[i] - b'0') as usize;
        i += 1;
    }
    n
}

/// What the app is running on, for the report.
#[derive(Clone, Copy, Debug)]
pub struct BoardInfo {
    /// Board name, its bin's: `mps2-an386`, `nrf52840-dk`.
    pub name: &'static str,
    /// The linker memory map the app was built with.
    pub memory_map: &'static str,
}

impl BoardInfo {
    /// The board of the bin `bin` (pass `env!("CARGO_BIN_NAME")`), with the
    /// memory map of its line in [`boards::BOARDS`]. A bin without a line
    /// fails to compile (and `build.rs` names it).
    pub const fn new(bin: &'static str) -> Self {
        match boards::board(bin) {
            Some(b) => BoardInfo {
                name: b.bin,
                memory_map: b.memory_map,
            },
            None => panic!("this bin has no line in the board table, firmware/boards.rs"),
        }
    }
}

/// The hardware the library needs, as embedded-hal 1.0 traits.
pub struct Hardware<L, D, C> {
    /// Status LED: on (`set_high`) while busy and after a pass.
    pub led: L,
    /// Delay for blink patterns.
    pub delay: D,
    /// Cycle (or instruction) counter for the benchmark.
    pub counter: C,
}

/// Checks the model partition, runs the self-test, the benchmark and the
/// host's evaluation, and reports all of it over defmt.
///
/// `arena` is the static arena ([`Buffers::take`]), `input` a scratch
/// buffer for evaluation images.
pub fn run<L, D, C, H>(
    board: BoardInfo,
    hw: &mut Hardware<L, D, C>,
    host: &mut H,
    partition: &'static [u8],
    arena: &mut [u8],
    input: &mut [u8],
) -> Outcome
where
    L: OutputPin,
    D: DelayNs,
    C: CycleCounter,
    H: HostLink,
{
    let _ = hw.led.set_high();
    report::boot(board, partition, arena.len(), C::KIND, C::UNIT);
    let outcome = run_model(hw, host, partition, arena, input);
    report::memory(arena.len());
    report::done(&outcome);
    outcome
}

/// The language-model branch of [`run_model`], in its own frame: its
/// `LanguageModel` (the checked `LmSpec`, about 450 bytes) is then not part
/// of the frame every other family's run sits on (the classifier's stack
/// high-water mark grew by 80 bytes when `LmSpec` gained its layouts).
#[cfg(feature = "language")]
#[inline(never)]
fn run_language<C, H>(
    counter: &mut C,
    host: &mut H,
    checked: Model<'static>,
    arena: &mut [u8],
    input: &mut [u8],
) -> Outcome
where
    C: CycleCounter,
    H: HostLink,
{
    // Borrowed in place: moving it out of the `Result` would copy it.
    match &LanguageModel::new(checked) {
        Ok(lm) => language::run(counter, host, lm, arena, input),
        Err(e) => Outcome::Model(*e),
    }
}

fn run_model<L, D, C, H>(
    hw: &mut Hardware<L, D, C>,
    host: &mut H,
    partition: &'static [u8],
    arena: &mut [u8],
    input: &mut [u8],
) -> Outcome
where
    C: CycleCounter,
    H: HostLink,
{
    // The A/B slot to boot (or a legacy blob at the partition start).
    let image = match slots::boot_image(partition) {
        Ok(image) => image,
        // A core built without the language-model family (this crate's
        // feature `language`) refuses such a model, before checking its
        // sections, with this error (the checker's only use of it).
        #[cfg(not(feature = "language"))]
        Err(Outcome::Model(tinyinfer::Error::WrongFamily)) => {
            return without_driver(Family::LanguageModel)
        }
        Err(outcome) => return outcome,
    };
    let checked = match Model::new_checked(image) {
        Ok(m) => m,
        Err(e) => return Outcome::Model(e),
    };
    match checked.family() {
        #[cfg(feature = "density")]
        Family::Density => {
            return match DensityModel::new(checked) {
                Ok(dm) => density::run(&mut hw.counter, host, &dm, arena, input),
                Err(e) => Outcome::Model(e),
            };
        }
        #[cfg(feature = "language")]
        Family::LanguageModel => return run_language(&mut hw.counter, host, checked, arena, input),
        Family::Classifier => {}
        // A driver left out of this build (features `density`, `language`).
        #[allow(unreachable_patterns)]
        other => return without_driver(other),
    }
    let model = match Classifier::new(checked) {
        Ok(m) => m,
        Err(e) => return Outcome::Model(e),
    };
    report::model(&model);
    if model.model().arena_len() > arena.len() {
        // classify would say so too; say it before anything runs.
        return Outcome::Model(tinyinfer::Error::ArenaTooSmall {
            needed: model.model().arena_len() as u32,
            got: arena.len() as u32,
        });
    }

    // Self-test: the host core's outputs, byte for byte.
    let mut outcome = Outcome::Pass;
    let t0 = hw.counter.now();
    match model.selftest(arena) {
        Ok(r) => {
            let t = hw.counter.now().wrapping_sub(t0);
            report::selftest(&r, t, C::UNIT);
            if r.passed != r.total || r.total == 0 {
                outcome = Outcome::SelfTestFailed;
            }
        }
        Err(tinyinfer::Error::BadSelfTest) if model.model().selftest().is_none() => {
            report::no_selftest();
            outcome = Outcome::NoSelfTest;
        }
        Err(e) => return Outcome::Model(e),
    }

    // Benchmark one inference per layer, on the first self-test input (or zeros).
    let n = model.input_len();
    let case0 = model.model().selftest().and_then(|s| s.case(0));
    let pixels: &[u8] = match (case0, input.get_mut(..n)) {
        (Some((px, _)), _) => px,
        (None, Some(buf)) => {
            buf.fill(0);
            buf
        }
        (None, None) => {
            report::input_too_large(n, input.len());
            return Outcome::Model(tinyinfer::Error::BadLength {
                expected: n as u32,
                got: input.len() as u32,
            });
        }
    };
    let mut bench: LayerBench<'_, C, MAX_OPS> =
        LayerBench::new(&mut hw.counter, model.model().op_count());
    let t0 = bench.now();
    if let Err(e) = model.classify_observed(pixels, arena, &mut bench) {
        return Outcome::Model(e);
    }
    let total = bench.now().wrapping_sub(t0);
    report::benchmark(model.model(), bench.counts(), total, C::UNIT);

    // Evaluation images from the host, if it offers any.
    match eval::run(&model, host, arena, input) {
        Ok(None) => {}
        Ok(Some(r)) => report::eval(&r),
        Err(eval::EvalError::Core(e)) => return Outcome::Model(e),
        Err(eval::EvalError::Link(e)) => {
            report::host_error(e);
            if outcome == Outcome::Pass {
                outcome = Outcome::HostIo;
            }
        }
    }
    outcome
}

/// A model of a family whose driver this build left out (features
/// `density`, `language`): says so, and `WrongFamily` (status 18).
fn without_driver(family: Family) -> Outcome {
    defmt::error!(
        "this firmware was built without the driver for {=str} models",
        match family {
            Family::Density => "density (feature `density`)",
            Family::LanguageModel => "language (feature `language`)",
            Family::Classifier => "classifier",
        }
    );
    Outcome::Model(tinyinfer::Error::WrongFamily)
}

/// Blinks `code` short flashes, then a pause, forever: the error pattern on
/// boards without a host to exit to. Code 0 (pass) keeps the LED steadily on.
pub fn signal_forever<L: OutputPin, D: DelayNs>(led: &mut L, delay: &mut D, code: u8) -> ! {
    if code == 0 {
        let _ = led.set_high();
        loop {
            #[cfg(target_arch = "arm")]
            cortex_m::asm::wfi();
            #[cfg(target_arch = "riscv32")]
            riscv::asm::wfi();
        }
    }
    loop {
        for _ in 0..code {
            let _ = led.set_high();
            delay.delay_ms(150);
            let _ = led.set_low();
            delay.delay_ms(250);
        }
        delay.delay_ms(1500);
    }
}
