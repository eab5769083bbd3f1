//! The host↔device protocol, defined once for both sides: what a device run
//! ends with ([`status`]). The firmware exits with these codes (QEMU's exit
//! status through semihosting, a board's blink count); `tinyinfer simulate`
//! and the tests read them through the same table.
//!
//! This module must not run models; it only names outcomes.

pub mod status;
