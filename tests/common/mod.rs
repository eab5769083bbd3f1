#![allow(dead_code)]
#[cfg(feature = "emit")]
pub mod classifier;
pub mod wide;
