//! Building the firmware apps with cargo, for QEMU or the board.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{ensure, Context, Result};

use crate::device::boards::{self, Board};

/// Where the firmware workspace is, unless `--firmware-dir` or this variable says otherwise.
pub const FIRMWARE_DIR_ENV: &str = "TINYINFER_FIRMWARE_DIR";

/// The firmware workspace.
pub fn firmware_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os(FIRMWARE_DIR_ENV).map(PathBuf::from))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware"))
}

/// Which drivers the app carries besides the classifier's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drivers {
    /// Classifier, density (PixelCNN) and language-model drivers.
    All,
    /// The classifier driver only: no density or language driver in flash,
    /// no panic location, no defmt info lines, a short vector table (the
    /// smallest app).
    ClassifierOnly,
}

/// Which app to build: a board of the table (firmware/boards.rs) and its drivers.
#[derive(Clone, Copy, Debug)]
pub struct App {
    /// The board (its bin, target, memory map, transport).
    pub board: &'static Board,
    /// The drivers.
    pub drivers: Drivers,
}

impl PartialEq for App {
    fn eq(&self, o: &Self) -> bool {
        self.board.bin == o.board.bin && self.drivers == o.drivers
    }
}
impl Eq for App {}

const fn table(bin: &str) -> &'static Board {
    match boards::table_board(bin) {
        Some(b) => b,
        None => panic!("no such line in firmware/boards.rs"),
    }
}

impl App {
    /// mps2-an386 (Cortex-M4F) under memory-qemu.x.
    pub const QEMU: App = App::all(table("mps2-an386"));
    /// mps2-an386 under memory-qemu-nrf-budget.x (nRF52840 limits).
    pub const QEMU_NRF_BUDGET: App = App::all(table("mps2-an386-nrf-budget"));
    /// mps2-an386 under nRF52840 limits with the classifier driver only.
    pub const QEMU_CLASSIFIER_ONLY: App = App {
        board: table("mps2-an386-nrf-budget"),
        drivers: Drivers::ClassifierOnly,
    };
    /// The nRF52840-DK under memory-nrf52840-dk.x.
    pub const NRF52840_DK: App = App::all(table("nrf52840-dk"));

    /// `board` with every driver.
    pub const fn all(board: &'static Board) -> App {
        App {
            board,
            drivers: Drivers::All,
        }
    }

    /// The app's name: the board's bin, `-classifier-only` appended for that app.
    pub fn name(self) -> String {
        match self.drivers {
            Drivers::All => self.board.bin.to_string(),
            Drivers::ClassifierOnly => format!("{}-classifier-only", self.board.bin),
        }
    }

    /// Its cargo profile (firmware/Cargo.toml): `release`, or `small` for
    /// the classifier-only app (the app crate and its dependencies at
    /// opt-level "z", the core at "s").
    pub fn profile(self) -> &'static str {
        match self.drivers {
            Drivers::All => "release",
            Drivers::ClassifierOnly => "small",
        }
    }

    /// Its cargo features: the board's transport, then the drivers. The
    /// classifier-only app is the smallest: it also leaves out the panic's
    /// location in the log (`panic-location`, 3.5 KB; a panic still exits
    /// with status 3), ends its vector table after 48 device interrupts
    /// (`few-vectors`, 768 bytes; the app enables none) and builds the
    /// core's kernels for flash (`compact`, 6.2 KB for 2.4 % more
    /// instructions per DiracNet inference).
    pub fn features(self) -> String {
        let t = self.board.transport.feature();
        match self.drivers {
            Drivers::All => format!("{t},density,language,panic-location"),
            Drivers::ClassifierOnly => format!("{t},few-vectors,compact"),
        }
    }
}

/// Builds a firmware app with cargo and returns its ELF.
///
/// Builds in `firmware/target` (where `cargo build` in firmware/ puts them
/// too) for the board's target, then copies the ELF to
/// `firmware/target/<target>/<profile>/<app>.elf`, so apps that share a bin
/// (the classifier-only variant, other arenas) never overwrite each other's copy.
pub fn build_firmware(dir: &Path, app: App) -> Result<PathBuf> {
    build_firmware_with(dir, app, None, None)
}

/// [`build_firmware`] with the static arena set to `arena` bytes (rounded
/// up to 4) through `TINYINFER_ARENA_BYTES`; None: the board's default.
pub fn build_firmware_with_arena(dir: &Path, app: App, arena: Option<usize>) -> Result<PathBuf> {
    build_firmware_with(dir, app, arena, None)
}

/// [`build_firmware_with_arena`], and the stack the link must leave
/// (`TINYINFER_STACK_RESERVE`, bytes; None: the board's `stack_reserve`).
/// Lowering it builds deliberately starved apps (the stack-overflow test).
pub fn build_firmware_with(
    dir: &Path,
    app: App,
    arena: Option<usize>,
    stack_reserve: Option<u32>,
) -> Result<PathBuf> {
    let (features, bin, target) = (app.features(), app.board.bin, app.board.target);
    ensure!(
        dir.join("Cargo.toml").is_file(),
        "no firmware workspace at {} (pass --firmware-dir or --elf)",
        dir.display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir)
        .args([
            "build",
            "--profile",
            app.profile(),
            "--no-default-features",
            "--features",
        ])
        .arg(&features)
        .args(["--bin", bin, "--target", target])
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()));
    // A parent cargo's (or CI's) settings must not replace firmware/.cargo/config.toml's
    // link flags, nor move its target directory.
    match arena {
        Some(n) => cmd.env("TINYINFER_ARENA_BYTES", ((n + 3) & !3).to_string()),
        None => cmd.env_remove("TINYINFER_ARENA_BYTES"),
    };
    match stack_reserve {
        Some(n) => cmd.env("TINYINFER_STACK_RESERVE", n.to_string()),
        None => cmd.env_remove("TINYINFER_STACK_RESERVE"),
    };
    // The classifier-only app is the smallest one: defmt's info lines (for
    // people; `simulate` reads every figure from the report's records) are
    // compiled out, warnings and errors kept: 1.1 KB of flash
    // (docs/firmware.md). The other apps log as firmware/.cargo/config.toml
    // (or the caller's DEFMT_LOG) says.
    if app.drivers == Drivers::ClassifierOnly {
        cmd.env("DEFMT_LOG", "warn");
    }
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
        "building the firmware ({bin}, features {features}, target {target}) failed: {status} \
         (needs `rustup target add {target}` and flip-link)"
    );
    let out = dir.join("target").join(target).join(app.profile());
    // Another arena is another binary: keep its copy apart.
    let mut name = app.name();
    if let Some(n) = arena {
        name.push_str(&format!("-arena{}", (n + 3) & !3));
    }
    if let Some(n) = stack_reserve {
        name.push_str(&format!("-stack{n}"));
    }
    let elf = out.join(format!("{name}.elf"));
    std::fs::copy(out.join(bin), &elf)
        .with_context(|| format!("copying the {bin} ELF to {}", elf.display()))?;
    Ok(elf)
}
