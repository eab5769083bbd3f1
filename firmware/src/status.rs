//! How a run ends, and the distinct exit status of each ending.
//!
//! On QEMU the app exits with [`Outcome::code`] through semihosting
//! `SYS_EXIT_EXTENDED`, so the code is QEMU's exit status; on a board the
//! LED blinks the code. `tinyinfer simulate` and the tests read the same
//! table: it is defined once, in the core's `tinyinfer::link::status`, which
//! both sides use.
//!
//! | code | meaning |
//! | ---: | --- |
//! | 0 | pass: model checked, self-test passed |
//! | 1 | self-test failed (device output differs from the host core's) |
//! | 2 | the model stores no self-test |
//! | 3 | panic |
//! | 4 | HardFault |
//! | 5 | host link (semihosting file) error during evaluation |
//! | 6 | no valid model: the partition holds A/B slots and neither is complete and valid |
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

pub use tinyinfer::link::status::{
    error_code, HARDFAULT, HOST_IO, NO_SELFTEST, NO_VALID_MODEL, OTHER_MODEL_ERROR, PANIC, PASS,
    SELFTEST_FAILED,
};

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
    /// The partition holds A/B slots and neither is complete and valid ([`crate::slots`]).
    NoValidModel,
}

impl Outcome {
    /// The distinct exit status (see the table above).
    pub fn code(&self) -> u8 {
        match self {
            Outcome::Pass => PASS,
            Outcome::SelfTestFailed => SELFTEST_FAILED,
            Outcome::NoSelfTest => NO_SELFTEST,
            Outcome::HostIo => HOST_IO,
            Outcome::NoValidModel => NO_VALID_MODEL,
            Outcome::Model(e) => error_code(e),
        }
    }
}
