//! The firmware beyond the host: `simulate` builds it and runs it on QEMU
//! with a model (feature `simulate`); `flash` writes a model to a board's
//! MODEL partition through a debug probe (feature `flash`).

#[cfg(any(feature = "flash", feature = "simulate"))]
pub mod boards;
#[cfg(feature = "flash")]
pub mod flash;
#[cfg(feature = "simulate")]
pub mod simulate;
