//! Building the firmware apps with cargo, for QEMU or the board.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{ensure, Context, Result};

/// Where the firmware workspace is, unless `--firmware-dir` or this variable says otherwise.
pub const FIRMWARE_DIR_ENV: &str = "TINYINFER_FIRMWARE_DIR";

/// The firmware workspace.
pub fn firmware_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os(FIRMWARE_DIR_ENV).map(PathBuf::from))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware"))
}

/// Which app to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum App {
    /// `qemu` under memory-qemu.x.
    Qemu,
    /// `qemu` under memory-qemu-nrf-budget.x.
    QemuNrfBudget,
    /// `nrf52840-dk` under memory-nrf52840-dk.x.
    Nrf52840Dk,
    /// `qemu` under memory-qemu-nrf-budget.x with the classifier driver
    /// only: no density or language driver in flash.
    QemuClassifierOnly,
}

/// Builds a firmware app with cargo and returns its ELF.
///
/// Builds in `firmware/target` (where `cargo qemu` and `cargo build` put
/// them too), then copies the ELF to
/// `firmware/target/thumbv7em-none-eabihf/release/<app>.elf`, so the two
/// qemu variants, which share the binary name, never overwrite each other's
/// copy.
pub fn build_firmware(dir: &Path, app: App) -> Result<PathBuf> {
    build_firmware_with_arena(dir, app, None)
}

/// [`build_firmware`] with the static arena set to `arena` bytes (rounded
/// up to 4) through `TINYINFER_ARENA_BYTES`; None: the firmware's default.
pub fn build_firmware_with_arena(dir: &Path, app: App, arena: Option<usize>) -> Result<PathBuf> {
    let (features, bin) = match app {
        App::Qemu => ("qemu,density,language", "qemu"),
        App::QemuNrfBudget => ("qemu,nrf-budget,density,language", "qemu"),
        App::Nrf52840Dk => ("nrf52840-dk,density,language", "nrf52840-dk"),
        App::QemuClassifierOnly => ("qemu,nrf-budget", "qemu"),
    };
    ensure!(
        dir.join("Cargo.toml").is_file(),
        "no firmware workspace at {} (pass --firmware-dir or --elf)",
        dir.display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir)
        .args(["build", "--release", "--no-default-features", "--features"])
        .arg(features)
        .args(["--bin", bin])
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()));
    // A parent cargo's (or CI's) settings must not replace firmware/.cargo/config.toml's
    // target and link flags, nor move its target directory.
    match arena {
        Some(n) => cmd.env("TINYINFER_ARENA_BYTES", ((n + 3) & !3).to_string()),
        None => cmd.env_remove("TINYINFER_ARENA_BYTES"),
    };
    for v in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
    ] {
        cmd.env_remove(v);
    }
    let status = cmd
        .status()
        .with_context(|| format!("running cargo build in {}", dir.display()))?;
    ensure!(
        status.success(),
        "building the firmware ({bin}, features {features}) failed: {status} \
         (needs `rustup target add thumbv7em-none-eabihf`)"
    );
    let out = dir.join("target/thumbv7em-none-eabihf/release");
    // Another arena is another binary: keep its copy apart.
    let elf = match arena {
        Some(n) => out.join(format!("{}-arena{}.elf", app.name(), (n + 3) & !3)),
        None => out.join(format!("{}.elf", app.name())),
    };
    std::fs::copy(out.join(bin), &elf)
        .with_context(|| format!("copying the {bin} ELF to {}", elf.display()))?;
    Ok(elf)
}

impl App {
    /// The app's name: `qemu`, `qemu-nrf-budget`, `nrf52840-dk`.
    pub fn name(self) -> &'static str {
        match self {
            App::Qemu => "qemu",
            App::QemuNrfBudget => "qemu-nrf-budget",
            App::Nrf52840Dk => "nrf52840-dk",
            App::QemuClassifierOnly => "qemu-classifier-only",
        }
    }
}
