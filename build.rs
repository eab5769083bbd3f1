//! Sets `cfg(tinyinfer_dsp)` when the target has the Armv7E-M DSP extension
//! (SMLAD, SXTB16, …), which selects `kernels::arm`: see `dsp_cfg.rs`,
//! which firmware/build.rs shares.

include!("dsp_cfg.rs");

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tinyinfer_dsp)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=dsp_cfg.rs");
    if target_has_dsp() {
        println!("cargo::rustc-cfg=tinyinfer_dsp");
    }
}
