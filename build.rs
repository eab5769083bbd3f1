//! Sets `cfg(tinyinfer_dsp)` when the target has the Armv7E-M DSP extension
//! (SMLAD, SXTB16, …), which selects `kernels::arm`.
//!
//! `cfg(target_feature = "dsp")` would say this directly, but Arm target
//! features are unstable: stable rustc (1.95) does not set it even for
//! `thumbv7em-none-eabihf`. Armv7E-M is defined as Armv7-M plus the DSP
//! extension, so every `thumbv7em-*` target has it; a toolchain that reports
//! the feature (nightly, or a future stable) is honoured too.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tinyinfer_dsp)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let dsp = target.starts_with("thumbv7em-") || features.split(',').any(|f| f == "dsp");
    if arch == "arm" && dsp {
        println!("cargo::rustc-cfg=tinyinfer_dsp");
    }
}
