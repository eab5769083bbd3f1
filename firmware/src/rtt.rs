//! What every board with a debug probe shares (feature `rtt`): defmt over
//! RTT (`defmt-rtt`), panics through `panic-probe`, the DWT cycle counter,
//! and the LED blinking the exit status forever, as there is no host to
//! exit to.
//!
//! The DWT cycle counter exists on Armv7-M and Armv8-M Mainline; an Armv6-M
//! (Cortex-M0/M0+) board with a probe would count with SysTick instead.

use cortex_m::peripheral::DWT;
use cortex_m_rt::ExceptionFrame;
use defmt_rtt as _;
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use panic_probe as _;

use crate::{mem, signal_forever, BoardInfo, Buffers, CycleCounter, Hardware, NoHost};

/// CPU cycles from DWT CYCCNT.
#[derive(Clone, Copy, Debug)]
pub struct Cycles;

impl CycleCounter for Cycles {
    const UNIT: &'static str = "cycles";
    const ONE: &'static str = "cycle";
    const KIND: tinyinfer::link::report::Unit = tinyinfer::link::report::Unit::Cycles;

    fn now(&mut self) -> u32 {
        DWT::cycle_count()
    }
}

/// A report frame ([`crate::report`]). Not sent yet: defmt-rtt owns the
/// RTT control block with its one up channel, the defmt log's. The frames
/// are self-delimiting (sync, length, CRC-32), so they can go on a second
/// up channel (an RTT implementation with two, such as rtt-target's, with
/// defmt on channel 0) for `tinyinfer flash` to read through probe-rs's RTT
/// client and parse with the same `tinyinfer::link::report::Reader`. Until
/// then a board's report is its defmt log, for people.
pub fn send_record(_frame: &[u8]) {}

/// Busy-waits on the cycle counter of a `hz` core clock.
#[derive(Clone, Copy, Debug)]
pub struct CycleDelay {
    hz: u32,
}

impl DelayNs for CycleDelay {
    fn delay_ns(&mut self, ns: u32) {
        let cycles = (ns as u64 * self.hz as u64 / 1_000_000_000) as u32;
        let t0 = DWT::cycle_count();
        while DWT::cycle_count().wrapping_sub(t0) < cycles {}
    }
}

/// The whole app of a board with a probe: enables the cycle counter of the
/// `clock_hz` core clock, takes the board's buffers, runs the model in the
/// MODEL partition ([`crate::run`]) and signals its status on `led` forever
/// (steady on: passed; blinks: the status of [`crate::status`]).
pub fn run<L: OutputPin, const A: usize, const I: usize>(
    board: BoardInfo,
    clock_hz: u32,
    led: L,
    buffers: &'static Buffers<A, I>,
) -> ! {
    let Some(mut cp) = cortex_m::Peripherals::take() else {
        panic!("core peripherals taken twice");
    };
    cp.DCB.enable_trace();
    cp.DWT.enable_cycle_counter();
    let mut hw = Hardware {
        led,
        delay: CycleDelay { hz: clock_hz },
        counter: Cycles,
    };
    let Some((arena, input)) = buffers.take() else {
        panic!("buffers taken twice");
    };
    let outcome = crate::run(
        board,
        &mut hw,
        &mut NoHost,
        mem::model_partition(),
        arena,
        input,
    );
    signal_forever(&mut hw.led, &mut hw.delay, outcome.code())
}

/// The HardFault handler's body: logs the faulting pc, then panic-probe's
/// fault exit (a breakpoint the probe reports).
pub fn hard_fault(ef: &ExceptionFrame) -> ! {
    defmt::error!("HardFault at pc {=u32:#x}", ef.pc());
    panic_probe::hard_fault()
}

/// Defines an RTT bin's HardFault handler. Expand once in the board file.
#[macro_export]
macro_rules! rtt_handlers {
    () => {
        #[::cortex_m_rt::exception]
        #[allow(unsafe_code)]
        unsafe fn HardFault(ef: &::cortex_m_rt::ExceptionFrame) -> ! {
            $crate::rtt::hard_fault(ef)
        }
    };
}
