//! Exit statuses of a device run: one code per ending, one meaning per code.
//!
//! | code | meaning |
//! | ---: | --- |
//! | 0 | pass: model checked, self-test passed |
//! | 1 | self-test failed (device output differs from the host core's) |
//! | 2 | the model stores no self-test |
//! | 3 | panic |
//! | 4 | HardFault |
//! | 5 | host link error during evaluation |
//! | 6 | no valid model: the partition holds slots, and neither slot (nor a legacy blob) is valid ([`slots`](super::slots)) |
//! | 10–29 | the model was refused or failed: one code per [`Error`] variant ([`error_code`]) |
//! | 39 | an [`Error`] variant newer than this table |

use crate::Error;

/// A pass: model checked, self-test bit-exact.
pub const PASS: u8 = 0;
/// Some self-test case differed from the host core's output.
pub const SELFTEST_FAILED: u8 = 1;
/// The model stores no self-test.
pub const NO_SELFTEST: u8 = 2;
/// A panic.
pub const PANIC: u8 = 3;
/// A HardFault.
pub const HARDFAULT: u8 = 4;
/// A host link error (semihosting files) during evaluation.
pub const HOST_IO: u8 = 5;
/// No valid model: the MODEL partition holds A/B slots and neither is
/// complete and valid, nor is its start a valid legacy blob. (An erased or
/// legacy partition without a model ends with the blob's error instead,
/// e.g. 11 for an erased one.)
pub const NO_VALID_MODEL: u8 = 6;
/// An [`Error`] variant newer than this table.
pub const OTHER_MODEL_ERROR: u8 = 39;

/// The exit status for a core error: 10 to 29, one per variant.
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
        #[allow(unreachable_patterns)]
        _ => OTHER_MODEL_ERROR,
    }
}

/// What exit status `code` means; None for a code no device run ends with.
pub fn meaning(code: u8) -> Option<&'static str> {
    Some(match code {
        PASS => "pass",
        SELFTEST_FAILED => "self-test failed",
        NO_SELFTEST => "no self-test stored in the model",
        PANIC => "panic",
        HARDFAULT => "HardFault",
        HOST_IO => "host link error during evaluation",
        NO_VALID_MODEL => "no valid model: neither model slot is complete and valid",
        10 => "model refused: too short",
        11 => "model refused: erased partition (no model)",
        12 => "model refused: bad magic",
        13 => "model refused: unsupported version",
        14 => "model refused: length mismatch (truncated)",
        15 => "model refused: CRC mismatch (corrupted)",
        16 => "model refused: misaligned",
        17 => "model refused: unknown family",
        18 => "model refused: wrong family",
        19 => "model refused: bad header",
        20 => "model refused: bad section",
        21 => "model refused: missing section",
        22 => "model refused: bad tensor",
        23 => "model refused: bad op",
        24 => "model refused: bad graph",
        25 => "model refused: the firmware's arena is too small",
        26 => "model refused: bad length",
        27 => "model refused: bad self-test section",
        28 => "model refused: density model not causal",
        29 => "model refused: input out of its domain",
        OTHER_MODEL_ERROR => "model refused: an error newer than the exit table",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    /// Every error variant has its own code, and every code its meaning:
    /// the round trip the firmware (emit) and the host (parse) rely on.
    #[test]
    fn every_error_has_a_distinct_code_with_a_meaning() {
        let all = [
            Error::TooShort,
            Error::Erased,
            Error::BadMagic,
            Error::UnsupportedVersion(2),
            Error::LengthMismatch {
                declared: 1,
                actual: 2,
            },
            Error::BadChecksum,
            Error::Misaligned,
            Error::UnknownFamily(9),
            Error::WrongFamily,
            Error::BadHeader,
            Error::BadSection(1),
            Error::MissingSection(1),
            Error::BadTensor(1),
            Error::BadOp(1),
            Error::BadGraph,
            Error::ArenaTooSmall { needed: 2, got: 1 },
            Error::BadLength {
                expected: 2,
                got: 1,
            },
            Error::BadSelfTest,
            Error::NotCausal,
            Error::BadInput(1),
        ];
        let codes: std::collections::BTreeSet<u8> = all.iter().map(error_code).collect();
        assert_eq!(codes.len(), all.len());
        for e in &all {
            let m = meaning(error_code(e)).unwrap();
            assert!(m.starts_with("model refused"), "{e:?}: {m}");
        }
        for c in [
            PASS,
            SELFTEST_FAILED,
            NO_SELFTEST,
            PANIC,
            HARDFAULT,
            HOST_IO,
            NO_VALID_MODEL,
            OTHER_MODEL_ERROR,
        ] {
            assert!(meaning(c).is_some());
        }
        assert_eq!(meaning(7), None);
    }
}
