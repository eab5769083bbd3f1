//! Copies the board's `memory-<board>.x` to `$OUT_DIR/memory.x`, where
//! cortex-m-rt's `link.x` finds it.
//!
//! The per-board files are deliberately *not* called `memory.x`: a
//! `memory.x` in the crate root would be found by the linker first and
//! silently win over this copy.

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let feature = |f: &str| env::var_os(format!("CARGO_FEATURE_{f}")).is_some();
    let map = match (
        feature("QEMU"),
        feature("NRF_BUDGET"),
        feature("NRF52840_DK"),
    ) {
        (true, false, false) => "memory-qemu.x",
        (true, true, false) => "memory-qemu-nrf-budget.x",
        (false, false, true) => "memory-nrf52840-dk.x",
        // src/lib.rs turns every other combination into a compile_error! that names it.
        _ => "memory-qemu.x",
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy(map, out.join("memory.x")).unwrap_or_else(|e| panic!("copying {map}: {e}"));
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-env=TINYINFER_MEMORY_MAP={map}");
    for f in [
        "memory-qemu.x",
        "memory-qemu-nrf-budget.x",
        "memory-nrf52840-dk.x",
    ] {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=TINYINFER_ARENA_BYTES");
}
