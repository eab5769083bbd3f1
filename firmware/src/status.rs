//! How a run ends, and the distinct exit status of each ending.
//!
//! On QEMU the app exits with [`Outcome::code`] through semihosting
//! `SYS_EXIT_EXTENDED`, so the code is QEMU's exit status; on a board the
//! LED blinks the code. `tinyinfer simulate` and the tests read the same
//! table (host-tools/src/device/simulate/report.rs mirrors it; keep them in step).
//!
//! | code | meaning |
//! | ---: | --- |
//! | 0 | pass: model checked, self-test passed |
//! | 1 | self-test failed (device output differs from the host core's) |
//! | 2 | the model stores no self-test |
//! | 3 | panic |
//! | 4 | HardFault |
//! | 5 | host link (semihosting file) error during evaluation |
//! | 10 | `Error::TooShort` |
//! | 11 | `Error::Erased`: no model, the partition is erased |
//! | 12 | `Error::BadMagic` |
//! | 13 | `Error::UnsupportedVersion` |
//! | 14 | `Error::LengthMismatch` (truncated) |
//! | 15 | `Error::BadChecksum` (corrupted) |
//! | 16 | `Error::Misaligned` |
//! | 17 | `Error::UnknownFamily` |
//! | 18 | `Error::WrongFamily` |
//! | 19 | `Error::BadHeader` |
//! | 20 | `Error::BadSection` |
//! | 21 | `Error::MissingSection` |
//! | 22 | `Error::BadTensor` |
//! | 23 | `Error::BadOp` |
//! | 24 | `Error::BadGraph` |
//! | 25 | `Error::ArenaTooSmall` (the firmware's static arena) |
//! | 26 | `Error::BadLength` |
//! | 27 | `Error::BadSelfTest` |
//! | 28 | `Error::NotCausal` |
//! | 29 | `Error::BadInput` |
//! | 39 | an `Error` variant newer than this table |

use tinyinfer::Error;

/// Exit status of a pass.
pub const PASS: u8 = 0;
/// Exit status when the self-test failed.
pub const SELFTEST_FAILED: u8 = 1;
/// Exit status when the model stores no self-test.
pub const NO_SELFTEST: u8 = 2;
/// Exit status of a panic.
pub const PANIC: u8 = 3;
/// Exit status of a HardFault.
pub const HARDFAULT: u8 = 4;
/// Exit status of a host link error.
pub const HOST_IO: u8 = 5;
/// Exit status of an `Error` variant newer than this table.
pub const OTHER_MODEL_ERROR: u8 = 39;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum Outcome {
    /// Model checked and self-test passed.
    Pass,
    /// Some self-test case differed from the host core's output.
    SelfTestFailed,
    /// The model has no self-test section.
    NoSelfTest,
    /// The model was refused, or running it failed.
    Model(Error),
    /// Evaluation over the host link failed.
    HostIo,
}

impl Outcome {
    /// The distinct exit status (see the table above).
    pub fn code(&self) -> u8 {
        match self {
            Outcome::Pass => PASS,
            Outcome::SelfTestFailed => SELFTEST_FAILED,
            Outcome::NoSelfTest => NO_SELFTEST,
            Outcome::HostIo => HOST_IO,
            Outcome::Model(e) => error_code(e),
        }
    }
}

/// The exit status for a core error.
pub fn error_code(e: &Error) -> u8 {
    match e {
        Error::TooShort => 10,
        Error::Erased => 11,
        Error::BadMagic => 12,
        Error::UnsupportedVersion(_) => 13,
        Error::LengthMismatch { .. } => 14,
        Error::BadChecksum => 15,
        Error::Misaligned => 16,
        Error::UnknownFamily(_) => 17,
        Error::WrongFamily => 18,
        Error::BadHeader => 19,
        Error::BadSection(_) => 20,
        Error::MissingSection(_) => 21,
        Error::BadTensor(_) => 22,
        Error::BadOp(_) => 23,
        Error::BadGraph => 24,
        Error::ArenaTooSmall { .. } => 25,
        Error::BadLength { .. } => 26,
        Error::BadSelfTest => 27,
        Error::NotCausal => 28,
        Error::BadInput(_) => 29,
        _ => OTHER_MODEL_ERROR,
    }
}
