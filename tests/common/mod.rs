#![allow(dead_code)]
pub mod wide;
