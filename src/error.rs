//! The one error type of the core.

use core::fmt;

/// Everything that can go wrong when checking a model or running it.
///
/// Small and `Copy`, so it travels cheaply through the firmware and can be
/// logged with `defmt` (feature `defmt`). Indices name the offending record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// Fewer bytes than a header and checksum need.
    TooShort,
    /// All bytes erased (0x00 or 0xFF): an empty flash partition, no model.
    Erased,
    /// The blob does not start with `TINF`.
    BadMagic,
    /// A format version this core cannot read.
    UnsupportedVersion(u16),
    /// The header's length field disagrees with the bytes given (truncated or padded blob).
    LengthMismatch {
        /// Length the header declares.
        declared: u32,
        /// Bytes actually given.
        actual: u32,
    },
    /// CRC-32 over the blob does not match its trailer.
    BadChecksum,
    /// The blob does not start on a 4-byte boundary.
    Misaligned,
    /// An unknown model family code.
    UnknownFamily(u8),
    /// The model is of another family than the driver expects.
    WrongFamily,
    /// A header field (flags, reserved bytes, counts) is invalid.
    BadHeader,
    /// A section table entry is out of bounds, misaligned, duplicated or of the wrong size.
    BadSection(u16),
    /// A required section is missing.
    MissingSection(u16),
    /// A tensor record is invalid (shape, type, quantization or arena range).
    BadTensor(u16),
    /// An op record is invalid (kind, operands, shapes, parameters or data ranges).
    BadOp(u16),
    /// The ops do not form a graph the driver can run (e.g. not a chain).
    BadGraph,
    /// The caller's arena is smaller than the model needs.
    ArenaTooSmall {
        /// Bytes the model needs.
        needed: u32,
        /// Bytes given.
        got: u32,
    },
    /// An input or output buffer has the wrong length.
    BadLength {
        /// Length expected.
        expected: u32,
        /// Length given.
        got: u32,
    },
    /// The self-test section is malformed.
    BadSelfTest,
    /// A density model whose ops are not causal in raster order: the image
    /// must be read by mask-A convs only, every other spatial conv must be
    /// mask B, and every tensor must keep the image's positions.
    NotCausal,
    /// An input value out of its domain (a density model's pixel that is not
    /// 0 or 1); the index of the first one.
    BadInput(u32),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::TooShort => f.write_str("blob too short for a tinyinfer model"),
            Error::Erased => f.write_str("no model: the partition is erased"),
            Error::BadMagic => f.write_str("not a tinyinfer model (bad magic)"),
            Error::UnsupportedVersion(v) => write!(f, "unsupported model format version {v}"),
            Error::LengthMismatch { declared, actual } => {
                write!(
                    f,
                    "model declares {declared} bytes but {actual} were given (truncated?)"
                )
            }
            Error::BadChecksum => f.write_str("model CRC-32 mismatch (corrupted)"),
            Error::Misaligned => f.write_str("model bytes are not 4-byte aligned"),
            Error::UnknownFamily(x) => write!(f, "unknown model family {x}"),
            Error::WrongFamily => f.write_str("model is of another family than this driver"),
            Error::BadHeader => f.write_str("invalid model header"),
            Error::BadSection(i) => write!(f, "invalid section table entry {i}"),
            Error::MissingSection(k) => write!(f, "required section {k} missing"),
            Error::BadTensor(i) => write!(f, "invalid tensor {i}"),
            Error::BadOp(i) => write!(f, "invalid op {i}"),
            Error::BadGraph => f.write_str("ops do not form a runnable graph"),
            Error::ArenaTooSmall { needed, got } => {
                write!(f, "arena too small: model needs {needed} bytes, got {got}")
            }
            Error::BadLength { expected, got } => {
                write!(f, "buffer length {got}, expected {expected}")
            }
            Error::BadSelfTest => f.write_str("invalid self-test section"),
            Error::NotCausal => f.write_str("density model is not causal in raster order"),
            Error::BadInput(i) => write!(f, "input value {i} is out of its domain"),
        }
    }
}

impl core::error::Error for Error {}

/// Result with the core's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;
