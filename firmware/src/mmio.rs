//! Device registers, for the board files: a status LED on a GPIO or FPGA
//! register, and the few writes a board makes before the app runs (clocks,
//! pin directions). Each board file names its addresses behind a
//! `// SAFETY:` note; the volatile accesses live here.
#![allow(unsafe_code)]

use core::convert::Infallible;
use core::ptr;

use embedded_hal::digital::{ErrorType, OutputPin};

/// Writes `value` to the 32-bit device register at `addr`.
///
/// # Safety
/// `addr` is a writable 32-bit register of this chip, and writing `value`
/// to it has no effect on memory Rust code owns.
pub unsafe fn write(addr: usize, value: u32) {
    // SAFETY: the caller's contract.
    unsafe { ptr::write_volatile(ptr::with_exposed_provenance_mut::<u32>(addr), value) }
}

/// Reads the 32-bit device register at `addr`.
///
/// # Safety
/// `addr` is a readable 32-bit register of this chip without read side effects.
pub unsafe fn read(addr: usize) -> u32 {
    // SAFETY: the caller's contract.
    unsafe { ptr::read_volatile(ptr::with_exposed_provenance::<u32>(addr)) }
}

/// Sets the bits of `mask` in the register at `addr` (read-modify-write).
///
/// # Safety
/// As [`read`] and [`write`]; nothing else writes the register meanwhile.
pub unsafe fn set_bits(addr: usize, mask: u32) {
    // SAFETY: the caller's contract.
    unsafe { write(addr, read(addr) | mask) }
}

/// How an LED's register is driven.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Bit `mask` of a read-write register (the mps2 FPGA I/O LEDs).
    Bit { reg: usize },
    /// Separate set and clear registers (nRF GPIO OUTSET/OUTCLR).
    SetClear { set: usize, clear: usize },
    /// One set/reset register: low half sets, high half resets (STM32 BSRR).
    Bsrr { reg: usize },
}

/// A status LED on one pin or register bit.
#[derive(Clone, Copy, Debug)]
pub struct Led {
    kind: Kind,
    mask: u32,
    active_low: bool,
}

impl Led {
    /// Bit `bit` of the read-write register at `reg`, lit when set.
    ///
    /// # Safety
    /// `reg` is a 32-bit LED register of this board that only this LED writes.
    pub const unsafe fn register_bit(reg: usize, bit: u32) -> Self {
        Led {
            kind: Kind::Bit { reg },
            mask: 1 << bit,
            active_low: false,
        }
    }

    /// Pin `pin` driven through a GPIO's set and clear registers (the pin is
    /// already an output); `active_low`: lit when the pin is low.
    ///
    /// # Safety
    /// `set` and `clear` are that GPIO port's write-1-to-set and
    /// write-1-to-clear output registers.
    pub const unsafe fn set_clear(set: usize, clear: usize, pin: u32, active_low: bool) -> Self {
        Led {
            kind: Kind::SetClear { set, clear },
            mask: 1 << pin,
            active_low,
        }
    }

    /// Pin `pin` (0..16) driven through an STM32 GPIO's BSRR (the pin is
    /// already an output); `active_low`: lit when the pin is low.
    ///
    /// # Safety
    /// `bsrr` is that GPIO port's bit set/reset register.
    pub const unsafe fn bsrr(bsrr: usize, pin: u32, active_low: bool) -> Self {
        Led {
            kind: Kind::Bsrr { reg: bsrr },
            mask: 1 << pin,
            active_low,
        }
    }

    fn drive(&mut self, lit: bool) {
        let high = lit != self.active_low;
        // SAFETY: the constructors' contracts: registers of this LED's pin.
        unsafe {
            match self.kind {
                Kind::Bit { reg } => {
                    let v = read(reg);
                    write(reg, if high { v | self.mask } else { v & !self.mask });
                }
                Kind::SetClear { set, clear } => write(if high { set } else { clear }, self.mask),
                Kind::Bsrr { reg } => write(reg, if high { self.mask } else { self.mask << 16 }),
            }
        }
    }
}

impl ErrorType for Led {
    type Error = Infallible;
}

/// `set_high` lights the LED, whatever the pin's polarity.
impl OutputPin for Led {
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.drive(true);
        Ok(())
    }
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.drive(false);
        Ok(())
    }
}

/// A board without a status LED.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLed;

impl ErrorType for NoLed {
    type Error = Infallible;
}

impl OutputPin for NoLed {
    fn set_high(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
    fn set_low(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}
