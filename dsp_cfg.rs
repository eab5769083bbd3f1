// Shared by the core's build.rs and firmware/build.rs (`include!`): whether
// the target has the Armv7E-M DSP extension (SMLAD, SXTB16, …), which
// selects `kernels::arm` (`cfg(tinyinfer_dsp)`).
//
// `cfg(target_feature = "dsp")` would say this directly, but Arm target
// features are unstable: stable rustc (1.95) does not report it, even for
// `thumbv7em-none-eabihf` or with `-C target-feature=+dsp`. So: every
// `thumbv7em-*` target (Armv7E-M is Armv7-M plus the DSP extension), any
// Arm target built with `+dsp` in its target features (Cortex-M33/M35P/M55
// boards that have the optional extension: `thumbv8m.main-*` with
// `-C target-feature=+dsp`, as firmware/.cargo/config.toml sets for the
// mps2-an505), and a toolchain that reports the feature.

/// True when the target being built has the DSP extension.
fn target_has_dsp() -> bool {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_ARCH") != "arm" {
        return false;
    }
    let reported = var("CARGO_CFG_TARGET_FEATURE").split(',').any(|f| f == "dsp");
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    let asked = flags.split('\x1f').any(|f| {
        f.split_once("target-feature=")
            .is_some_and(|(_, v)| v.split(',').any(|x| x == "+dsp"))
    });
    var("TARGET").starts_with("thumbv7em-") || reported || asked
}
