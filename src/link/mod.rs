//! The host↔device protocol, defined once for both sides: the request and
//! response records they exchange ([`files`]), the device's report of a
//! run as typed records ([`report`]), and what a device run ends with
//! ([`status`]: QEMU's exit status through semihosting, a board's blink
//! count). The firmware emits and parses them; `tinyinfer simulate`
//! and the tests do the same through this module. [`slots`] lays out the
//! A/B model slots of the MODEL partition and picks the one to boot.
//!
//! This module must not run models; it only lays out records and names outcomes.

pub mod files;
pub mod report;
pub mod slots;
pub mod status;
