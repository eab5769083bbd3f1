//! Running a semihosted app on its QEMU machine under `timeout`, with the model copied into its MODEL partition, and decoding
//! the defmt log it prints over semihosting (for people).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::common::blob::AlignedBlob;
use crate::device::boards::Board;

/// The QEMU binary of the Arm boards, overridable by `$TINYINFER_QEMU`.
pub const QEMU_ENV: &str = "TINYINFER_QEMU";

/// The QEMU binary of the RISC-V boards, overridable by `$TINYINFER_QEMU_RISCV32`.
pub const QEMU_RISCV32_ENV: &str = "TINYINFER_QEMU_RISCV32";

/// The QEMU system emulator for a board's rustc `target`, and the
/// arguments that machine needs before the ELF: the RISC-V `virt` machine
/// starts the hart at the ELF's entry in DRAM only without its default
/// firmware (`-bios none`).
fn qemu_for(target: &str) -> (std::ffi::OsString, &'static [&'static str]) {
    if target.starts_with("riscv32") {
        (
            std::env::var_os(QEMU_RISCV32_ENV).unwrap_or_else(|| "qemu-system-riscv32".into()),
            &["-bios", "none"],
        )
    } else {
        (
            std::env::var_os(QEMU_ENV).unwrap_or_else(|| "qemu-system-arm".into()),
            &[],
        )
    }
}

/// Runs `elf` (built for `board`'s target) on its QEMU machine and CPU in the working directory
/// `work` (where the device's semihosting files are), with `blob` loaded at
/// `model_start` and each of `images` (file name in `work`, bytes, address)
/// at its address, stopped after `timeout` seconds. Returns QEMU's output
/// and its wall-clock seconds.
///
/// `-icount shift=0,align=off,sleep=off` makes SysTick (Arm) and
/// `minstret` (RISC-V) count instructions deterministically.
///
/// # Errors
/// QEMU cannot be started, or the model cannot be written to `work`.
pub fn run_qemu(
    board: &Board,
    elf: &Path,
    blob: Option<&AlignedBlob>,
    model_start: u32,
    images: &[(String, Vec<u8>, u32)],
    work: &Path,
    timeout: u64,
) -> Result<(Output, f64)> {
    let Some((machine, cpu)) = board.qemu else {
        bail!("{} is not a QEMU board (firmware/boards.rs)", board.bin);
    };
    let (qemu, machine_args) = qemu_for(board.target);
    let mut cmd = Command::new("timeout");
    cmd.arg("--kill-after=5")
        .arg(timeout.to_string())
        .arg(&qemu)
        .args(["-machine", machine, "-cpu", cpu])
        .args(machine_args)
        .args(["-display", "none", "-serial", "none", "-monitor", "none"])
        .args(["-icount", "shift=0,align=off,sleep=off"])
        .args(["-semihosting-config", "enable=on,target=native"])
        .arg("-kernel")
        .arg(elf);
    if let Some(b) = blob {
        // A fixed name in the working directory: no commas from the user's path reach QEMU's option parser.
        std::fs::write(work.join("model.bin"), b.bytes()).context("writing model.bin")?;
        cmd.arg("-device").arg(format!(
            "loader,file=model.bin,addr={model_start:#x},force-raw=on"
        ));
    }
    for (name, bytes, addr) in images {
        std::fs::write(work.join(name), bytes).with_context(|| format!("writing {name}"))?;
        cmd.arg("-device")
            .arg(format!("loader,file={name},addr={addr:#x},force-raw=on"));
    }
    cmd.current_dir(work).stdin(Stdio::null());
    let t0 = Instant::now();
    let out = cmd
        .output()
        .with_context(|| {
            format!(
                "running {} (Debian's qemu-system-arm, or qemu-system-misc for RISC-V: is it installed?)",
                qemu.to_string_lossy()
            )
        })?;
    Ok((out, t0.elapsed().as_secs_f64()))
}

/// Decodes the defmt frames in `bytes` with the table of `elf` into the
/// device's log lines, for people (the report's figures come from its
/// records, not from these lines).
///
/// # Errors
/// An ELF without a defmt table, or malformed frames.
pub fn decode_defmt(elf: &[u8], bytes: &[u8]) -> Result<Vec<String>> {
    use defmt_decoder::DecodeError;
    let table = defmt_decoder::Table::parse(elf)
        .context("reading the defmt table from the ELF")?
        .context("the ELF has no .defmt section")?;
    let mut dec = table.new_stream_decoder();
    dec.received(bytes);
    let mut lines = Vec::new();
    loop {
        match dec.decode() {
            Ok(frame) => {
                let level = frame
                    .level()
                    .map_or(String::new(), |l| format!("{} ", l.as_str().to_uppercase()));
                lines.push(format!("{level}{}", frame.display_message()));
            }
            Err(DecodeError::UnexpectedEof) => break,
            Err(DecodeError::Malformed) if table.encoding().can_recover() => continue,
            Err(DecodeError::Malformed) => bail!("malformed defmt data from the device"),
        }
    }
    Ok(lines)
}
