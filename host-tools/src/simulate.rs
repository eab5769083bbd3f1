//! `tinyinfer simulate`: the firmware's `qemu` app on QEMU's mps2-an386
//! (Cortex-M4F) with a model in its MODEL partition.
//!
//! 1. Builds `firmware/` (`cargo build --release --no-default-features
//!    --features qemu --bin qemu`) or takes `--elf`.
//! 2. Reads the partition address from the ELF's `__model_start` and copies
//!    the blob there with QEMU's generic loader.
//! 3. Runs QEMU under `timeout` with `-icount shift=0,align=off,sleep=off`, so
//!    SysTick counts instructions deterministically, reading all its output
//!    (defmt frames come over semihosting on stdout).
//! 4. With `--eval N`, writes N Fashion-MNIST test images and labels to a
//!    file the device reads over semihosting, and compares the int8 scores the
//!    device writes back with the host core's ([`crate::eval::core_scores`]).
//!    Density models get a sample request instead (`--seed`, `--samples`)
//!    and language models a generation request (`--prompt`, `--tokens`,
//!    `--seed`): the device's token ids and text are compared with the host
//!    core's `lm::run::generate` and `detokenize`.
//! 5. Decodes defmt with `defmt-decoder`, prints the device's log and report
//!    (or one JSON object with `--json`), and fails unless the device exited
//!    0 and, with `--eval`, matched the host bit for bit.
//!
//! The report lines are those of `firmware/src/report.rs`; the exit statuses
//! those of `firmware/src/status.rs` ([`exit_meaning`] mirrors the table).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SectionKind};
use serde::Serialize;
use tinyinfer::format::OpKind;

use crate::data::{self, Split};
use crate::eval::{self, argmax_rows};
use crate::export::AlignedBlob;

/// Where the firmware workspace is, unless `--firmware-dir` or this variable says otherwise.
pub const FIRMWARE_DIR_ENV: &str = "TINYINFER_FIRMWARE_DIR";
/// The QEMU binary, overridable by `$TINYINFER_QEMU`.
pub const QEMU_ENV: &str = "TINYINFER_QEMU";
/// Evaluation input file, in QEMU's working directory (firmware/src/bin/qemu.rs).
pub const EVAL_IN: &str = "tinyinfer-eval.in";
/// Evaluation output file, written by the device.
pub const EVAL_OUT: &str = "tinyinfer-eval.out";
/// Longest prompt the firmware takes: its input buffer (`MAX_INPUT_BYTES`, firmware/src/lib.rs).
pub const LM_MAX_PROMPT_BYTES: usize = 1024;
/// Most tokens one request may ask for (`MAX_TOKENS`, firmware/src/language.rs).
pub const LM_MAX_TOKENS: u32 = 1 << 16;

/// Arguments of `tinyinfer simulate`.
#[derive(clap::Args, Clone, Debug)]
pub struct SimulateArgs {
    /// The `.tinf` model to load into the MODEL partition.
    #[arg(value_name = "MODEL.tinf", required_unless_present = "empty_partition")]
    pub model: Option<PathBuf>,
    /// Use this built `qemu` firmware ELF instead of building `firmware/`.
    #[arg(long, value_name = "ELF")]
    pub elf: Option<PathBuf>,
    /// Build the app under nRF52840 limits (memory-qemu-nrf-budget.x: 1 MB flash, 256 KB RAM).
    #[arg(long, conflicts_with = "elf")]
    pub nrf_budget: bool,
    /// Evaluate the first N Fashion-MNIST test images on the device (all 10,000 when N is omitted).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "10000")]
    pub eval: Option<usize>,
    /// Fashion-MNIST directory (default: $TINYINFER_FASHION_MNIST, then Debian's path).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Print one JSON object (the device log goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Seconds before QEMU is stopped (default: 120, plus half a second per evaluated image).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// The firmware workspace to build (default: $TINYINFER_FIRMWARE_DIR, then the one beside host-tools).
    #[arg(long, value_name = "DIR")]
    pub firmware_dir: Option<PathBuf>,
    /// Load the file as is, without checking it with the host core first (to test the device's checks).
    #[arg(long)]
    pub unchecked: bool,
    /// Load nothing: the partition stays erased (0x00 on QEMU).
    #[arg(long, conflicts_with_all = ["model", "eval"])]
    pub empty_partition: bool,
    /// Density models: seed of the first sampled image (PCG32, as `tinyinfer sample`);
    /// language models: the seed of the generation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Language models: the prompt the device primes the model with (after the start token).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub prompt: String,
    /// Language models: tokens to generate on the device (compared with the host core's).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub tokens: u32,
    /// Density models: images to sample on the device (each checked against the host core).
    #[arg(long, default_value_t = 1)]
    pub samples: u32,
    /// Density models: also time this many pixels of sampling by full recomputation (the baseline).
    #[arg(long, default_value_t = 0)]
    pub full_pixels: u32,
    /// Density models: write the device's sampled images to this PNG.
    #[arg(long, value_name = "FILE")]
    pub png: Option<PathBuf>,
    /// Density models: give the firmware only the streaming arena (ring of rows), not the
    /// model's full plan (when building; with --elf the ELF's arena decides).
    #[arg(long)]
    pub streaming: bool,
}

/// Instructions per MAC of ARM's CMSIS-NN int8 3×3 convolutions on the same
/// QEMU machine (the anchor), by (input h, w, c, output c).
pub const CMSIS_NN_ANCHORS: [((u16, u16, u16, u16), f64); 4] = [
    ((28, 28, 16, 16), 2.33),
    ((14, 14, 32, 32), 1.93),
    ((7, 7, 64, 64), 1.79),
    ((28, 28, 1, 16), 10.4),
];

/// One layer as the device measured it.
#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    /// Op index.
    pub index: usize,
    /// Op name.
    pub op: String,
    /// Input shape (h, w, c).
    pub input: [u16; 3],
    /// Output shape (h, w, c).
    pub output: [u16; 3],
    /// Instructions (QEMU) of this layer in one inference.
    pub instructions: u64,
    /// MACs of this layer.
    pub macs: u64,
    /// MACs per instruction.
    pub macs_per_instruction: f64,
    /// Instructions per MAC (the CMSIS-NN anchor's unit).
    pub instructions_per_mac: Option<f64>,
    /// CMSIS-NN's instructions per MAC for the same 3×3 conv shape, if the issue gives one.
    pub cmsis_nn_instructions_per_mac: Option<f64>,
}

/// What a simulation found: the JSON of `--json`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SimReport {
    /// The model file.
    pub model: Option<PathBuf>,
    /// The firmware ELF run.
    pub elf: PathBuf,
    /// Board named by the firmware.
    pub board: Option<String>,
    /// Linker memory map of the ELF.
    pub memory_map: Option<String>,
    /// MODEL partition address.
    pub partition_address: u32,
    /// MODEL partition bytes.
    pub partition_bytes: u32,
    /// QEMU's exit status (the firmware's, see firmware/src/status.rs); None if QEMU was killed.
    pub exit_code: Option<i32>,
    /// What the exit status means.
    pub exit_meaning: String,
    /// The model error the device logged, if it refused the model.
    pub device_error: Option<String>,
    /// Self-test passed (None: the device did not run one).
    pub selftest_passed: Option<bool>,
    /// Self-test cases that matched.
    pub selftest_matched: Option<u32>,
    /// Self-test cases run.
    pub selftest_cases: Option<u32>,
    /// Instructions of one inference (the benchmark).
    pub instructions_per_inference: Option<u64>,
    /// MACs of one inference.
    pub macs_per_inference: Option<u64>,
    /// MACs per instruction.
    pub macs_per_instruction: Option<f64>,
    /// Per layer.
    pub layers: Vec<LayerReport>,
    /// Stack high-water mark (painted stack).
    pub stack_high_water_bytes: Option<u32>,
    /// Stack region bytes.
    pub stack_region_bytes: Option<u32>,
    /// Statics (.data + .bss + .uninit), the firmware's arena included.
    pub static_ram_bytes: Option<u32>,
    /// The firmware's static arena.
    pub firmware_arena_bytes: Option<u32>,
    /// RAM used: statics + stack high-water.
    pub ram_bytes: Option<u32>,
    /// The model's exact arena (from the blob).
    pub arena_bytes: Option<u32>,
    /// Flash bytes of the firmware (.vector_table, .text, .rodata, .data).
    pub firmware_flash_bytes: u64,
    /// Flash bytes of the firmware's symbols by origin (approximate under LTO).
    pub flash_breakdown: std::collections::BTreeMap<&'static str, u64>,
    /// Model blob bytes.
    pub model_flash_bytes: Option<u64>,
    /// Firmware + model.
    pub flash_bytes: u64,
    /// Images evaluated on the device.
    pub eval_images: Option<usize>,
    /// Accuracy of the device's predictions.
    pub device_accuracy: Option<f64>,
    /// Accuracy of the host core's predictions on the same images.
    pub host_accuracy: Option<f64>,
    /// Device int8 scores (and so predictions) equal the host core's for every image.
    pub matches_host: Option<bool>,
    /// Images whose device scores differ from the host's.
    pub mismatched_images: Option<usize>,
    /// Density: the device's NLL of each stored image, in 2⁻¹⁶ nats.
    pub device_nll: Vec<u64>,
    /// Density: the device's NLLs equal the host core's for every stored image.
    pub nll_matches_host: Option<bool>,
    /// Density: mean of the device's NLLs, nats.
    pub device_mean_nll_nats: Option<f64>,
    /// Density: scoring path the arena allowed ("full" or "streaming").
    pub scoring_path: Option<String>,
    /// Density: instructions per scored image on that path (first image).
    pub instructions_per_scored_image: Option<u64>,
    /// Density: instructions per scored image on the streaming path (measured when the full plan fits).
    pub instructions_per_scored_image_streaming: Option<u64>,
    /// Density: the model's streaming arena.
    pub streaming_arena_bytes: Option<u32>,
    /// Density: seeds of the sampled images.
    pub sample_seeds: Vec<u64>,
    /// Density: instructions per sampled image, incremental (first image).
    pub instructions_per_sampled_image: Option<u64>,
    /// Density: pixels of full-recomputation sampling timed.
    pub full_sampling_pixels: Option<u32>,
    /// Density: instructions of those pixels.
    pub full_sampling_instructions: Option<u64>,
    /// Density: full recomputation per image, from the timed pixels × pixels per image.
    pub instructions_per_sampled_image_full: Option<u64>,
    /// Density: every sampled image equals the host core's for its seed.
    pub samples_match_host: Option<bool>,
    /// Language model: `char` or `word`.
    pub lm_level: Option<String>,
    /// Language model: vocabulary size.
    pub lm_vocab: Option<u32>,
    /// Language model: embedding size d.
    pub lm_emb_dim: Option<u32>,
    /// Language model: hidden size of each LSTM layer.
    pub lm_hidden: Vec<u32>,
    /// Language model: `softmax`, `moc` or `mos`.
    pub lm_head: Option<String>,
    /// Language model: mixture components K.
    pub lm_k: Option<u32>,
    /// Language model: parameters (weights and biases).
    pub lm_params: Option<u64>,
    /// Language model: multiply-accumulates per token.
    pub macs_per_token: Option<u64>,
    /// Language model: the seed the device generated with.
    pub lm_seed: Option<u64>,
    /// Language model: tokens fed while priming (the start token and the prompt's).
    pub prompt_tokens: Option<u32>,
    /// Language model: instructions of priming (reset, start token, prompt).
    pub prime_instructions: Option<u64>,
    /// Language model: the token ids the device generated.
    pub generated_tokens: Vec<u16>,
    /// Language model: their text, rebuilt from the device's lines.
    pub generated_text: Option<String>,
    /// Language model: the host core's token ids for the same blob, prompt and seed.
    pub host_generated_tokens: Vec<u16>,
    /// Language model: the device's text equals the host's `detokenize` of its own ids.
    pub text_matches_host: Option<bool>,
    /// Language model: mean instructions per generated token (sample + step).
    pub instructions_per_token: Option<u64>,
    /// Language model: fewest instructions of one generated token.
    pub instructions_per_token_min: Option<u64>,
    /// Language model: most instructions of one generated token.
    pub instructions_per_token_max: Option<u64>,
    /// Wall-clock seconds QEMU ran.
    pub qemu_seconds: f64,
    /// The device's decoded log.
    pub log: Vec<String>,
}

impl SimReport {
    /// The device exited 0 and, if images were evaluated, matched the host.
    pub fn passed(&self) -> bool {
        self.exit_code == Some(0)
            && self.matches_host != Some(false)
            && self.nll_matches_host != Some(false)
            && self.samples_match_host != Some(false)
            && self.text_matches_host != Some(false)
    }
}

/// The meaning of a firmware exit status (firmware/src/status.rs).
pub fn exit_meaning(code: i32) -> &'static str {
    match code {
        0 => "pass",
        1 => "self-test failed",
        2 => "no self-test stored in the model",
        3 => "panic",
        4 => "HardFault",
        5 => "host link error during evaluation",
        10 => "model refused: too short",
        11 => "model refused: erased partition (no model)",
        12 => "model refused: bad magic",
        13 => "model refused: unsupported version",
        14 => "model refused: length mismatch (truncated)",
        15 => "model refused: CRC mismatch (corrupted)",
        16 => "model refused: misaligned",
        17 => "model refused: unknown family",
        18 => "model refused: wrong family",
        19 => "model refused: bad header",
        20 => "model refused: bad section",
        21 => "model refused: missing section",
        22 => "model refused: bad tensor",
        23 => "model refused: bad op",
        24 => "model refused: bad graph",
        25 => "model refused: the firmware's arena is too small",
        26 => "model refused: bad length",
        27 => "model refused: bad self-test section",
        28 => "model refused: density model not causal",
        29 => "model refused: input out of its domain",
        39 => "model refused: an error newer than the exit table",
        124 | 137 => "QEMU timed out",
        _ => "unknown exit status",
    }
}

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
        App::Qemu => ("qemu", "qemu"),
        App::QemuNrfBudget => ("qemu,nrf-budget", "qemu"),
        App::Nrf52840Dk => ("nrf52840-dk", "nrf52840-dk"),
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
        }
    }
}

/// What host-tools needs from a firmware ELF.
#[derive(Clone, Debug)]
pub struct ElfInfo {
    /// `__model_start`.
    pub model_start: u32,
    /// `__model_end - __model_start`.
    pub model_len: u32,
    /// Bytes the app occupies in flash: allocated sections with contents.
    pub flash_bytes: u64,
    /// Bytes of allocated sections without contents (.bss, .uninit).
    pub zero_init_bytes: u64,
    /// Flash bytes of code and read-only data symbols by origin (see [`flash_origin`]).
    pub flash_breakdown: std::collections::BTreeMap<&'static str, u64>,
}

/// Where a flash symbol comes from, by its demangled name. LTO inlines
/// across crates, so this is approximate: core code inlined into the app's
/// `main` counts as the app's.
pub fn flash_origin(demangled: &str) -> &'static str {
    let n = demangled.trim_start_matches('<');
    let starts = |p: &str| n.starts_with(p);
    if starts("tinyinfer_firmware") || starts("qemu::") || starts("nrf52840_dk::") {
        "app (tinyinfer-firmware)"
    } else if starts("tinyinfer::") || starts("crc::") || starts("micromath") {
        "tinyinfer core"
    } else if starts("defmt") || n.contains("_defmt_") || starts("panic_probe") {
        "defmt + panic-probe"
    } else if starts("semihosting") {
        "semihosting"
    } else if n.contains("core::fmt") || n.contains("as core::fmt::") {
        "core::fmt"
    } else if starts("compiler_builtins")
        || starts("__aeabi")
        || ["memcpy", "memset", "memmove", "memcmp"].contains(&n)
    {
        "compiler builtins (memcpy, ...)"
    } else if starts("cortex_m")
        || starts("nrf")
        || [
            "Reset",
            "__INTERRUPTS",
            "__RESET_VECTOR",
            "__EXCEPTIONS",
            "HardFault",
            "DefaultHandler",
        ]
        .iter()
        .any(|s| n.starts_with(s))
    {
        "cortex-m-rt, vectors, HAL"
    } else if n.starts_with(".L") || n.is_empty() {
        "unnamed constants (CRC table, strings)"
    } else {
        "other"
    }
}

/// Reads the partition symbols and the flash footprint of a firmware ELF.
pub fn elf_info(elf: &[u8]) -> Result<ElfInfo> {
    let file = object::File::parse(elf).context("parsing the firmware ELF")?;
    let sym = |name: &str| -> Result<u64> {
        file.symbols()
            .find(|s| s.name() == Ok(name))
            .map(|s| s.address())
            .with_context(|| {
                format!("firmware ELF has no symbol {name} (not a tinyinfer firmware?)")
            })
    };
    let (start, end) = (sym("__model_start")?, sym("__model_end")?);
    ensure!(end > start, "empty MODEL partition in the ELF");
    let (mut flash, mut zero) = (0, 0);
    for s in file.sections() {
        let alloc = match s.flags() {
            SectionFlags::Elf { sh_flags } => sh_flags & u64::from(object::elf::SHF_ALLOC) != 0,
            _ => false,
        };
        if !alloc {
            continue;
        }
        if s.kind() == SectionKind::UninitializedData {
            zero += s.size();
        } else {
            flash += s.size();
        }
    }
    let mut flash_breakdown = std::collections::BTreeMap::new();
    let flash_sections: Vec<_> = file
        .sections()
        .filter(|s| {
            matches!(s.flags(), SectionFlags::Elf { sh_flags } if sh_flags & u64::from(object::elf::SHF_ALLOC) != 0)
                && s.kind() != SectionKind::UninitializedData
        })
        .map(|s| s.index())
        .collect();
    for sym in file.symbols() {
        let in_flash = sym
            .section_index()
            .is_some_and(|i| flash_sections.contains(&i));
        if !in_flash || sym.size() == 0 {
            continue;
        }
        let name = format!("{:#}", rustc_demangle::demangle(sym.name().unwrap_or("")));
        *flash_breakdown.entry(flash_origin(&name)).or_insert(0) += sym.size();
    }
    Ok(ElfInfo {
        model_start: start as u32,
        model_len: (end - start) as u32,
        flash_bytes: flash,
        zero_init_bytes: zero,
        flash_breakdown,
    })
}

/// A decoded defmt line: its literal text with `{}` for each value, and the values.
#[derive(Clone, Debug)]
struct Line {
    text: String,
    key: String,
    values: Vec<String>,
}

fn decode_defmt(elf: &[u8], bytes: &[u8]) -> Result<Vec<Line>> {
    use defmt_decoder::DecodeError;
    use defmt_parser::Fragment;
    let table = defmt_decoder::Table::parse(elf)
        .context("reading the defmt table from the ELF")?
        .context("the ELF has no .defmt section")?;
    let mut dec = table.new_stream_decoder();
    dec.received(bytes);
    let mut lines = Vec::new();
    loop {
        match dec.decode() {
            Ok(frame) => {
                let (mut key, mut values) = (String::new(), Vec::new());
                for (f, shown) in frame.fragments().iter().zip(frame.display_fragments()) {
                    match f {
                        Fragment::Literal(l) => key.push_str(l),
                        Fragment::Parameter(_) => {
                            key.push_str("{}");
                            values.push(shown);
                        }
                    }
                }
                let level = frame
                    .level()
                    .map_or(String::new(), |l| format!("{} ", l.as_str().to_uppercase()));
                lines.push(Line {
                    text: format!("{level}{}", frame.display_message()),
                    key,
                    values,
                });
            }
            Err(DecodeError::UnexpectedEof) => break,
            Err(DecodeError::Malformed) if table.encoding().can_recover() => continue,
            Err(DecodeError::Malformed) => bail!("malformed defmt data from the device"),
        }
    }
    Ok(lines)
}

fn num<T: std::str::FromStr>(v: &[String], i: usize) -> Result<T> {
    let s = v.get(i).context("report line has too few values")?;
    let s = s.trim_start_matches("0x");
    s.parse()
        .ok()
        .with_context(|| format!("bad number {s:?} in the device report"))
}

/// Fills `r` from the report lines of firmware/src/report.rs.
fn parse_report(lines: &[Line], r: &mut SimReport) -> Result<()> {
    for l in lines {
        let v = &l.values;
        match l.key.as_str() {
            "tinyinfer-firmware {} on {} (memory map {}): MODEL partition {} bytes at {}, static arena {} bytes, counting {}" => {
                r.board = v.get(1).cloned();
                r.memory_map = v.get(2).cloned();
                r.firmware_arena_bytes = Some(num(v, 5)?);
            }
            "model: {} bytes, {} ops, {} MACs, arena {} bytes, input {} bytes, {} classes, {} self-test cases" => {
                r.arena_bytes = Some(num(v, 3)?);
            }
            "selftest: {}/{} passed in {} {}" => {
                let (ok, n): (u32, u32) = (num(v, 0)?, num(v, 1)?);
                r.selftest_matched = Some(ok);
                r.selftest_cases = Some(n);
                r.selftest_passed = Some(ok == n && n > 0);
            }
            "selftest: none stored in the model (export with --selftest N)" => {
                r.selftest_passed = Some(false);
                r.selftest_cases = Some(0);
            }
            "layer {} {} {}x{}x{} -> {}x{}x{}: {} {}, {} MACs, {} MACs per {}" => {
                let input = [num(v, 2)?, num(v, 3)?, num(v, 4)?];
                let output = [num(v, 5)?, num(v, 6)?, num(v, 7)?];
                let (instructions, macs): (u64, u64) = (num(v, 8)?, num(v, 10)?);
                let op = v.get(1).cloned().unwrap_or_default();
                let anchor = (op == OpKind::Conv2d.name())
                    .then(|| {
                        CMSIS_NN_ANCHORS
                            .iter()
                            .find(|(s, _)| *s == (input[0], input[1], input[2], output[2]))
                            .map(|&(_, a)| a)
                    })
                    .flatten();
                r.layers.push(LayerReport {
                    index: num(v, 0)?,
                    op,
                    input,
                    output,
                    instructions,
                    macs,
                    macs_per_instruction: ratio(macs, instructions),
                    instructions_per_mac: (macs > 0).then(|| ratio(instructions, macs)),
                    cmsis_nn_instructions_per_mac: anchor,
                });
            }
            "inference: {} {}, {} MACs, {} MACs per {}" => {
                let (n, macs): (u64, u64) = (num(v, 0)?, num(v, 2)?);
                r.instructions_per_inference = Some(n);
                r.macs_per_inference = Some(macs);
                r.macs_per_instruction = Some(ratio(macs, n));
            }
            "ram: static {} bytes (arena {}), stack high-water {} of {} bytes" => {
                let (st, hw): (u32, u32) = (num(v, 0)?, num(v, 2)?);
                r.static_ram_bytes = Some(st);
                r.stack_high_water_bytes = Some(hw);
                r.stack_region_bytes = Some(num(v, 3)?);
                r.ram_bytes = Some(st + hw);
            }
            "density model: {} bytes, {} ops, {} MACs, arena {} bytes, streaming arena {} bytes, {}x{} pixels, {} self-test cases" => {
                r.arena_bytes = Some(num(v, 3)?);
                r.streaming_arena_bytes = Some(num(v, 4)?);
            }
            "score: image {} nll {} (2^-16 nats) in {} {} on the {} path" => {
                let (i, nll, n): (usize, u64, u64) = (num(v, 0)?, num(v, 1)?, num(v, 2)?);
                if i == 0 {
                    r.instructions_per_scored_image = Some(n);
                    r.scoring_path = v.get(4).cloned();
                }
                r.device_nll.push(nll);
            }
            "score: streaming path {} {} per image" => {
                r.instructions_per_scored_image_streaming = Some(num(v, 0)?);
            }
            "sample: seed {} drawn incrementally in {} {}, {} ones" => {
                r.sample_seeds.push(num(v, 0)?);
                if r.instructions_per_sampled_image.is_none() {
                    r.instructions_per_sampled_image = Some(num(v, 1)?);
                }
            }
            "sample: full recomputation of {} pixels in {} {}" => {
                r.full_sampling_pixels = Some(num(v, 0)?);
                r.full_sampling_instructions = Some(num(v, 1)?);
            }
            "lm model: {} level, vocab {}, d {}, {} LSTM layers, head {} K {}, {} params, {} MACs per token, arena {} bytes needed of {}" => {
                r.lm_level = v.first().cloned();
                r.lm_vocab = Some(num(v, 1)?);
                r.lm_emb_dim = Some(num(v, 2)?);
                r.lm_head = v.get(4).cloned();
                r.lm_k = Some(num(v, 5)?);
                r.lm_params = Some(num(v, 6)?);
                r.macs_per_token = Some(num(v, 7)?);
                r.arena_bytes = Some(num(v, 8)?);
            }
            "lm layer {}: LSTM {} -> {}" => r.lm_hidden.push(num(v, 2)?),
            "lm request: seed {}, {} tokens, prompt of {} bytes ({})" => {
                r.lm_seed = Some(num(v, 0)?);
            }
            "lm prime: {} tokens in {} {}" => {
                r.prompt_tokens = Some(num(v, 0)?);
                r.prime_instructions = Some(num(v, 1)?);
            }
            "lm tokens {}" => {
                let list = v.first().context("lm tokens line without ids")?;
                let inner = list.trim().trim_start_matches('[').trim_end_matches(']');
                for t in inner.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    r.generated_tokens.push(
                        t.parse()
                            .with_context(|| format!("bad token id {t:?} from the device"))?,
                    );
                }
            }
            "lm line {}" | "lm tail {}" => {
                let text = r.generated_text.get_or_insert_with(String::new);
                text.push_str(v.first().map_or("", String::as_str));
                if l.key == "lm line {}" {
                    text.push('\n');
                }
            }
            "lm generate: {} tokens in {} {}, per token mean {}, min {}, max {}" => {
                let n: u64 = num(v, 0)?;
                let mean: u64 = num(v, 3)?;
                r.generated_text.get_or_insert_with(String::new);
                r.instructions_per_token = Some(mean);
                r.instructions_per_token_min = Some(num(v, 4)?);
                r.instructions_per_token_max = Some(num(v, 5)?);
                if let (Some(m), true) = (r.macs_per_token, n > 0) {
                    r.macs_per_instruction = Some(ratio(m, mean));
                }
            }
            "done: model refused: {} (exit status {})" => {
                r.device_error = v.first().cloned();
            }
            _ => {}
        }
    }
    Ok(())
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The evaluation input stream (firmware/src/eval.rs).
fn eval_input(images: &[u8], labels: &[u8], input_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + labels.len() * (input_len + 1));
    out.extend_from_slice(b"TIEI");
    out.extend_from_slice(&(labels.len() as u32).to_le_bytes());
    out.extend_from_slice(&(input_len as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for (img, &l) in images.chunks(input_len).zip(labels) {
        out.extend_from_slice(img);
        out.push(l);
    }
    out
}

/// Parses the device's output stream into `(count, classes, scores)`.
fn eval_output(b: &[u8]) -> Result<(usize, usize, Vec<i8>)> {
    ensure!(
        b.len() >= 16 && &b[..4] == b"TIEO",
        "the device wrote no evaluation output header"
    );
    let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
    let (count, classes) = (word(4), word(8));
    let scores: Vec<i8> = b[16..].iter().map(|&x| x as i8).collect();
    Ok((count, classes, scores))
}

/// Runs the simulation and returns its report (without printing it).
///
/// # Errors
/// When the model, ELF, data or QEMU cannot be used; a device that runs and
/// fails is *not* an error here: see [`SimReport::passed`].
pub fn simulate(a: &SimulateArgs) -> Result<SimReport> {
    // The blob: checked by the host core unless --unchecked.
    let blob = match &a.model {
        Some(p) => {
            let blob = AlignedBlob::read(p)?;
            if !a.unchecked {
                blob.model().with_context(|| {
                    format!(
                        "checking {} (pass --unchecked to load it anyway)",
                        p.display()
                    )
                })?;
            }
            Some(blob)
        }
        None => None,
    };

    let density_model = match &blob {
        Some(b) if !a.unchecked => b
            .model()
            .ok()
            .filter(|m| m.family() == tinyinfer::format::Family::Density)
            .map(tinyinfer::models::DensityModel::new)
            .transpose()
            .map_err(|e| anyhow::anyhow!("not a usable density model: {e}"))?,
        _ => None,
    };
    let language_model = match &blob {
        Some(b) if !a.unchecked => b
            .model()
            .ok()
            .filter(|m| m.family() == tinyinfer::format::Family::LanguageModel)
            .map(tinyinfer::models::LanguageModel::new)
            .transpose()
            .map_err(|e| anyhow::anyhow!("not a usable language model: {e}"))?,
        _ => None,
    };
    let elf_path = match &a.elf {
        Some(p) => p.clone(),
        None => {
            let app = if a.nrf_budget {
                App::QemuNrfBudget
            } else {
                App::Qemu
            };
            // Density models: the arena their path needs (the default arena is a classifier's).
            let arena = density_model
                .as_ref()
                .map(|dm| match a.streaming {
                    true => dm.sample_arena_len(),
                    false => dm.arena_len().max(dm.sample_arena_len()),
                })
                .or(language_model.as_ref().map(|lm| lm.arena_len()));
            build_firmware_with_arena(&firmware_dir(a.firmware_dir.as_deref()), app, arena)?
        }
    };
    // QEMU runs in a scratch directory: give it an absolute path.
    let elf_path = std::fs::canonicalize(&elf_path)
        .with_context(|| format!("firmware ELF {}", elf_path.display()))?;
    let elf = std::fs::read(&elf_path)
        .with_context(|| format!("reading firmware ELF {}", elf_path.display()))?;
    let info = elf_info(&elf).with_context(|| format!("firmware ELF {}", elf_path.display()))?;
    if let Some(b) = &blob {
        ensure!(
            b.bytes().len() as u64 <= info.model_len as u64,
            "the model ({} bytes) does not fit the MODEL partition ({} bytes at {:#x})",
            b.bytes().len(),
            info.model_len,
            info.model_start
        );
    }

    let work = tempfile::Builder::new()
        .prefix("tinyinfer-simulate-")
        .tempdir()
        .context("creating a working directory for QEMU")?;

    // Evaluation images, written where the device's semihosting calls look.
    let mut eval_set = None;
    if let Some(n) = a.eval {
        ensure!(n > 0, "--eval needs at least 1 image");
        let blob = blob.as_ref().context("--eval needs a model")?;
        let model = blob
            .model()
            .context("--eval needs a model the host core accepts")?;
        let clf = tinyinfer::models::Classifier::new(model)
            .map_err(|e| anyhow::anyhow!("not a classifier: {e}"))?;
        let dir = data::fashion_mnist_dir(a.data.as_deref());
        let test = data::load_fashion_mnist(&dir, Split::Test)?.take(n);
        ensure!(
            clf.input_len() == data::PIXELS,
            "the model takes {} input bytes, Fashion-MNIST images have {}",
            clf.input_len(),
            data::PIXELS
        );
        std::fs::write(
            work.path().join(EVAL_IN),
            eval_input(&test.images, &test.labels, data::PIXELS),
        )
        .context("writing the evaluation input")?;
        eval_set = Some(test);
    }

    if density_model.is_some() {
        ensure!((1..=64).contains(&a.samples), "--samples must be in 1..=64");
        let mut req = b"TISR".to_vec();
        req.extend_from_slice(&a.seed.to_le_bytes());
        req.extend_from_slice(&a.samples.to_le_bytes());
        req.extend_from_slice(&a.full_pixels.to_le_bytes());
        std::fs::write(work.path().join(EVAL_IN), req).context("writing the sample request")?;
    }
    if language_model.is_some() {
        std::fs::write(work.path().join(EVAL_IN), lm_request(a)?)
            .context("writing the generation request")?;
    }

    let mut cmd = Command::new("timeout");
    cmd.arg("--kill-after=5")
        .arg(
            a.timeout
                .unwrap_or(
                    120 + a.eval.unwrap_or(0) as u64 / 2
                        + 2 * a.full_pixels as u64
                        + 2 * a.samples as u64
                        + language_model.as_ref().map_or(0, |_| a.tokens as u64 / 10),
                )
                .to_string(),
        )
        .arg(std::env::var_os(QEMU_ENV).unwrap_or_else(|| "qemu-system-arm".into()))
        .args(["-machine", "mps2-an386", "-cpu", "cortex-m4"])
        .args(["-display", "none", "-serial", "none", "-monitor", "none"])
        .args(["-icount", "shift=0,align=off,sleep=off"])
        .args(["-semihosting-config", "enable=on,target=native"])
        .arg("-kernel")
        .arg(&elf_path);
    if let Some(b) = &blob {
        // A fixed name in the working directory: no commas from the user's path reach QEMU's option parser.
        std::fs::write(work.path().join("model.bin"), b.bytes()).context("writing model.bin")?;
        cmd.arg("-device").arg(format!(
            "loader,file=model.bin,addr={:#x},force-raw=on",
            info.model_start
        ));
    }
    cmd.current_dir(work.path()).stdin(Stdio::null());
    let t0 = Instant::now();
    let out = cmd
        .output()
        .context("running QEMU (is Debian's qemu-system-arm installed?)")?;
    let qemu_seconds = t0.elapsed().as_secs_f64();

    let lines = decode_defmt(&elf, &out.stdout)?;
    let code = out.status.code();
    let mut r = SimReport {
        model: a.model.clone(),
        elf: elf_path.clone(),
        partition_address: info.model_start,
        partition_bytes: info.model_len,
        exit_code: code,
        exit_meaning: code.map_or("killed by a signal", exit_meaning).to_string(),
        firmware_flash_bytes: info.flash_bytes,
        flash_breakdown: info.flash_breakdown.clone(),
        model_flash_bytes: blob.as_ref().map(|b| b.bytes().len() as u64),
        flash_bytes: info.flash_bytes + blob.as_ref().map_or(0, |b| b.bytes().len() as u64),
        qemu_seconds,
        log: lines.iter().map(|l| l.text.clone()).collect(),
        ..SimReport::default()
    };
    parse_report(&lines, &mut r)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.trim().is_empty() {
        r.log.push(format!("(qemu stderr) {}", stderr.trim()));
    }
    if lines.is_empty() && code != Some(0) {
        bail!(
            "QEMU exited with {:?} and the device logged nothing; stderr: {}",
            code,
            stderr.trim()
        );
    }

    if let (Some(test), Some(blob)) = (&eval_set, &blob) {
        let bytes = std::fs::read(work.path().join(EVAL_OUT)).unwrap_or_default();
        let (count, classes, dev) =
            eval_output(&bytes).context("reading the device's predictions")?;
        let (host, host_classes) = eval::core_scores(blob, &test.images)?;
        ensure!(
            classes == host_classes,
            "device reports {classes} classes, host {host_classes}"
        );
        let done = dev.len() / classes.max(1);
        let mismatched = (0..test.len())
            .filter(|&i| {
                dev.get(i * classes..(i + 1) * classes)
                    != Some(&host[i * classes..(i + 1) * classes])
            })
            .count();
        let dpred = argmax_rows(&dev[..done * classes], classes);
        let hpred = argmax_rows(&host, classes);
        r.eval_images = Some(done.min(count));
        r.device_accuracy = Some(eval::accuracy(&dpred, &test.labels[..dpred.len()]));
        r.host_accuracy = Some(eval::accuracy(&hpred, &test.labels));
        r.mismatched_images = Some(mismatched);
        r.matches_host = Some(mismatched == 0 && done == test.len() && count == test.len());
    }
    if let Some(dm) = &density_model {
        check_density(a, dm, &lines, &mut r)?;
    }
    if let (Some(lm), Some(blob)) = (&language_model, &blob) {
        check_language(a, lm, blob, &mut r)?;
    }
    Ok(r)
}

/// The generation request (firmware/src/language.rs): `"TILM"`, seed,
/// tokens, prompt length, prompt bytes.
pub fn lm_request(a: &SimulateArgs) -> Result<Vec<u8>> {
    ensure!(
        a.prompt.len() <= LM_MAX_PROMPT_BYTES,
        "--prompt has {} bytes; the firmware takes at most {LM_MAX_PROMPT_BYTES}",
        a.prompt.len()
    );
    ensure!(
        a.tokens <= LM_MAX_TOKENS,
        "--tokens must be at most {LM_MAX_TOKENS}"
    );
    let mut req = b"TILM".to_vec();
    req.extend_from_slice(&a.seed.to_le_bytes());
    req.extend_from_slice(&a.tokens.to_le_bytes());
    req.extend_from_slice(&(a.prompt.len() as u32).to_le_bytes());
    req.extend_from_slice(a.prompt.as_bytes());
    Ok(req)
}

/// Compares the device's token ids and text with the host core's
/// generation for the same blob, prompt and seed.
fn check_language(
    a: &SimulateArgs,
    lm: &tinyinfer::models::LanguageModel<'_>,
    blob: &AlignedBlob,
    r: &mut SimReport,
) -> Result<()> {
    if r.exit_code != Some(0) {
        return Ok(());
    }
    let host = crate::lm::run::generate(blob, &a.prompt, a.tokens as usize, a.seed)
        .context("generating on the host core")?;
    let text = crate::lm::run::detokenize(lm, &host);
    r.matches_host = Some(host == r.generated_tokens);
    r.text_matches_host = Some(r.generated_text.as_deref() == Some(text.as_str()));
    r.host_generated_tokens = host;
    Ok(())
}

/// Compares the device's NLLs and samples with the host core's, and writes
/// the PNG of the device's samples.
fn check_density(
    a: &SimulateArgs,
    dm: &tinyinfer::models::DensityModel<'_>,
    lines: &[Line],
    r: &mut SimReport,
) -> Result<()> {
    let (h, w) = dm.shape();
    let px = h * w;
    if let Some(st) = dm.model().selftest() {
        let mut arena = vec![0u8; dm.arena_len()];
        let mut host = Vec::new();
        for i in 0..st.count() {
            let (img, _) = st.case(i).context("self-test case")?;
            host.push(
                dm.nll(img, &mut arena)
                    .map_err(|e| anyhow::anyhow!("host core: {e}"))?
                    .0,
            );
        }
        r.nll_matches_host = Some(host == r.device_nll);
        if !r.device_nll.is_empty() {
            r.device_mean_nll_nats = Some(crate::density::mean_nats(&r.device_nll));
        }
    }
    // The device's images, from their row lines.
    let mut images: Vec<(u64, Vec<u8>)> = Vec::new();
    for l in lines {
        if l.key == "sample: seed {} row {} bits {}" {
            let (seed, y, bits): (u64, usize, u32) =
                (num(&l.values, 0)?, num(&l.values, 1)?, num(&l.values, 2)?);
            if images.last().is_none_or(|(s, _)| *s != seed) {
                images.push((seed, vec![0u8; px]));
            }
            let img = &mut images.last_mut().context("sample image")?.1;
            ensure!(y < h, "sample row {y} outside the image");
            for x in 0..w.min(32) {
                img[y * w + x] = ((bits >> x) & 1) as u8;
            }
        }
    }
    if r.exit_code == Some(0) {
        let mut arena = vec![0u8; dm.sample_arena_len()];
        let mut same = images.len() == a.samples as usize;
        for (seed, img) in &images {
            let mut host = vec![0u8; px];
            dm.sample(
                &mut tinyinfer::rng::Pcg32::seeded(*seed),
                &mut host,
                &mut arena,
            )
            .map_err(|e| anyhow::anyhow!("host core: {e}"))?;
            same &= &host == img;
        }
        r.samples_match_host = Some(same);
    }
    if let (Some(n), Some(t)) = (r.full_sampling_pixels, r.full_sampling_instructions) {
        if n > 0 {
            r.instructions_per_sampled_image_full = Some(t * px as u64 / n as u64);
        }
    }
    if let Some(p) = &a.png {
        let all: Vec<u8> = images.iter().flat_map(|(_, i)| i.clone()).collect();
        crate::density::write_png_grid(p, &all, w, 8, 3)?;
    }
    Ok(())
}

/// A human-readable summary of a report.
pub fn summary(r: &SimReport) -> String {
    let mut s = String::new();
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    s += &format!(
        "exit status {} ({})\n",
        r.exit_code.map_or("-".into(), |c| c.to_string()),
        r.exit_meaning
    );
    if let (Some(ok), Some(n)) = (r.selftest_matched, r.selftest_cases) {
        s += &format!("self-test        {ok}/{n} cases bit-exact\n");
    }
    if !r.layers.is_empty() {
        s += &format!(
            "{:>3}  {:<16} {:>10} {:>10} {:>12} {:>10} {:>9} {:>9}\n",
            "#", "op", "input", "output", "instructions", "MACs", "instr/MAC", "CMSIS-NN"
        );
        let shape = |v: [u16; 3]| format!("{}x{}x{}", v[0], v[1], v[2]);
        for l in &r.layers {
            s += &format!(
                "{:>3}  {:<16} {:>10} {:>10} {:>12} {:>10} {:>9} {:>9}\n",
                l.index,
                l.op,
                shape(l.input),
                shape(l.output),
                l.instructions,
                l.macs,
                l.instructions_per_mac
                    .map_or("-".into(), |v| format!("{v:.2}")),
                l.cmsis_nn_instructions_per_mac
                    .map_or("-".into(), |v| format!("{v:.2}")),
            );
        }
    }
    if let (Some(n), Some(m)) = (r.instructions_per_inference, r.macs_per_instruction) {
        s += &format!("inference        {n} instructions, {m:.3} MACs/instruction\n");
    }
    if let Some(n) = r.instructions_per_scored_image {
        s += &format!(
            "scored image     {n} instructions ({} path); streaming path {}\n",
            r.scoring_path.as_deref().unwrap_or("-"),
            opt(r.instructions_per_scored_image_streaming)
        );
    }
    if let Some(ok) = r.nll_matches_host {
        s += &format!(
            "NLL              {} stored images, mean {:.2} nats, bit-exact with the host: {}\n",
            r.device_nll.len(),
            r.device_mean_nll_nats.unwrap_or(f64::NAN),
            if ok { "yes" } else { "NO" }
        );
    }
    if let Some(n) = r.instructions_per_sampled_image {
        s += &format!(
            "sampled image    {n} instructions incremental; full recomputation {} (from {} pixels); same images as the host: {}\n",
            opt(r.instructions_per_sampled_image_full),
            opt(r.full_sampling_pixels.map(u64::from)),
            match r.samples_match_host {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            }
        );
    }
    if let (Some(v), Some(d)) = (r.lm_vocab, r.lm_emb_dim) {
        s += &format!(
            "language model   {} level, vocabulary {v}, d {d}, LSTM {}, head {} K={}, {} parameters, {} MACs/token\n",
            r.lm_level.as_deref().unwrap_or("-"),
            r.lm_hidden
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join("-"),
            r.lm_head.as_deref().unwrap_or("-"),
            opt(r.lm_k.map(u64::from)),
            opt(r.lm_params),
            opt(r.macs_per_token)
        );
    }
    if let Some(n) = r.prime_instructions {
        s += &format!(
            "prime            {} tokens in {n} instructions\n",
            opt(r.prompt_tokens.map(u64::from))
        );
    }
    if let Some(mean) = r.instructions_per_token {
        let yes = |b: Option<bool>| match b {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        s += &format!(
            "generated        {} tokens (seed {}): {mean} instructions/token (min {}, max {}), {:.3} MACs/instruction; same ids as the host: {}, same text: {}\n",
            r.generated_tokens.len(),
            opt(r.lm_seed),
            opt(r.instructions_per_token_min),
            opt(r.instructions_per_token_max),
            r.macs_per_instruction.unwrap_or(f64::NAN),
            yes(r.matches_host),
            yes(r.text_matches_host)
        );
        if let Some(t) = &r.generated_text {
            s += &format!("text             {t:?}\n");
        }
    }
    s += &format!(
        "flash            {} bytes firmware + {} bytes model = {} bytes\n",
        r.firmware_flash_bytes,
        opt(r.model_flash_bytes),
        r.flash_bytes
    );
    let mut by: Vec<_> = r.flash_breakdown.iter().collect();
    by.sort_by(|a, b| b.1.cmp(a.1));
    s += &format!(
        "  firmware by origin: {}\n",
        by.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let (Some(st), Some(hw)) = (r.static_ram_bytes, r.stack_high_water_bytes) {
        let needs = match r.streaming_arena_bytes {
            Some(sa) => format!(
                "the model needs {} for the full plan, {sa} streaming",
                opt(r.arena_bytes.map(u64::from))
            ),
            None => format!(
                "of which the model needs {}",
                opt(r.arena_bytes.map(u64::from))
            ),
        };
        s += &format!(
            "RAM              {st} bytes static (arena {}; {needs}) + {hw} bytes stack high-water = {} bytes\n",
            opt(r.firmware_arena_bytes.map(u64::from)),
            st + hw
        );
    }
    if let (Some(n), Some(acc)) = (r.eval_images, r.device_accuracy) {
        s += &format!(
            "device accuracy  {:.2} % on {n} test images; host core {:.2} %; bit-exact with the host: {} ({} images differ)\n",
            100.0 * acc,
            100.0 * r.host_accuracy.unwrap_or(f64::NAN),
            if r.matches_host == Some(true) { "yes" } else { "NO" },
            r.mismatched_images.unwrap_or(0)
        );
    }
    s += &format!("QEMU ran {:.1} s\n", r.qemu_seconds);
    s
}

/// `tinyinfer simulate`: runs, prints the device log and the report (or JSON).
///
/// # Errors
/// As [`simulate`], and when the device did not pass ([`SimReport::passed`]).
pub fn run(a: &SimulateArgs) -> Result<()> {
    let r = simulate(a)?;
    if a.json {
        for l in &r.log {
            eprintln!("{l}");
        }
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        for l in &r.log {
            println!("{l}");
        }
        println!();
        print!("{}", summary(&r));
    }
    ensure!(
        r.passed(),
        "the device did not pass: exit status {:?} ({}){}",
        r.exit_code,
        r.exit_meaning,
        if r.matches_host == Some(false) {
            ", and its outputs differ from the host core's"
        } else {
            ""
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_streams_roundtrip_headers() {
        let input = eval_input(&[1, 2, 3, 4, 5, 6], &[7, 8], 3);
        assert_eq!(&input[..4], b"TIEI");
        assert_eq!(input.len(), 16 + 2 * 4);
        assert_eq!(&input[16..20], &[1, 2, 3, 7]);
        let mut out = b"TIEO".to_vec();
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&[0xFF, 1, 2]);
        assert_eq!(eval_output(&out).unwrap(), (1, 3, vec![-1, 1, 2]));
        assert!(eval_output(b"nope").is_err());
    }

    #[test]
    fn exit_meanings_are_distinct_for_model_errors() {
        let m: std::collections::HashSet<_> = (10..=27).map(exit_meaning).collect();
        assert_eq!(m.len(), 18);
    }
}
