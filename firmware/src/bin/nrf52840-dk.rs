//! The app on the nRF52840-DK (nRF52840_xxAA, Cortex-M4F at 64 MHz).
//!
//! - defmt goes over RTT (`defmt-rtt`); `cargo run --release` (the runner is
//!   `probe-rs run --chip nRF52840_xxAA`) flashes the app and prints the log;
//! - the model comes from the MODEL partition at 0x0004_0000, written by
//!   `tinyinfer flash MODEL.tinf` independently of the app;
//! - the counter is the DWT cycle counter (CYCCNT);
//! - LED1 (P0.13, active low) is on while running and after a pass, and
//!   blinks the exit status of `tinyinfer_firmware::status` on failure;
//! - panics go to panic-probe, which prints them over defmt.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use cortex_m::peripheral::DWT;
use cortex_m_rt::entry;
use defmt_rtt as _;
use embedded_hal::digital::{ErrorType, OutputPin};
use nrf52840_hal::clocks::Clocks;
use nrf52840_hal::gpio::{p0, Level, Output, Pin, PushPull};
use nrf52840_hal::{pac, Timer};
use panic_probe as _;
use tinyinfer_firmware::{mem, signal_forever, BoardInfo, CycleCounter, Hardware, NoHost};

/// CPU cycles from DWT CYCCNT (64 MHz HCLK).
struct Cycles;

impl CycleCounter for Cycles {
    const UNIT: &'static str = "cycles";
    const ONE: &'static str = "cycle";

    fn now(&mut self) -> u32 {
        DWT::cycle_count()
    }
}

/// The DK's LEDs light when their pin is low.
struct ActiveLow(Pin<Output<PushPull>>);

impl ErrorType for ActiveLow {
    type Error = <Pin<Output<PushPull>> as ErrorType>::Error;
}

impl OutputPin for ActiveLow {
    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.0.set_low()
    }
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.0.set_high()
    }
}

#[entry]
fn main() -> ! {
    let (Some(mut cp), Some(p)) = (cortex_m::Peripherals::take(), pac::Peripherals::take()) else {
        panic!("peripherals taken twice");
    };
    cp.DCB.enable_trace();
    cp.DWT.enable_cycle_counter();
    // The external 32 MHz crystal: accurate cycles and delays.
    let _clocks = Clocks::new(p.CLOCK).enable_ext_hfosc();
    let port0 = p0::Parts::new(p.P0);
    let led = ActiveLow(port0.p0_13.into_push_pull_output(Level::High).degrade());
    let mut hw = Hardware {
        led,
        delay: Timer::new(p.TIMER0),
        counter: Cycles,
    };
    let Some((arena, input)) = mem::take_buffers() else {
        panic!("buffers taken twice");
    };
    let outcome = tinyinfer_firmware::run(
        BoardInfo::new("nrf52840-dk"),
        &mut hw,
        &mut NoHost,
        mem::model_partition(),
        arena,
        input,
    );
    signal_forever(&mut hw.led, &mut hw.delay, outcome.code())
}

#[cortex_m_rt::exception]
#[allow(unsafe_code)]
unsafe fn HardFault(ef: &cortex_m_rt::ExceptionFrame) -> ! {
    defmt::error!("HardFault at pc {=u32:#x}", ef.pc());
    panic_probe::hard_fault()
}
