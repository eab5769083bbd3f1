//! Links every bin under its board's memory map, from the board table in
//! `boards.rs`; nothing falls back to a default map.
//!
//! For each line of the table it writes `$OUT_DIR/<bin>/memory.x`: the
//! board's `memory-<board>.x` followed by two link-time checks, and passes
//! that directory to the linker of that bin alone (`rustc-link-arg-bin`),
//! where cortex-m-rt's `link.x` finds it:
//!
//! - the bin is built for the board's target (`--target`), else the link
//!   fails naming the target to use (a Cortex-M0 board built for thumbv7em
//!   would link, then fault on its first Armv7-M instruction);
//! - the statics, the arena and input buffers included, leave the stack at
//!   least the board's `stack_reserve` bytes of its RAM.
//!
//! A file in `src/bin/` without a line in the table fails the build here.
//!
//! The per-board files are deliberately *not* called `memory.x`: a
//! `memory.x` in the crate root would be found by the linker first and
//! silently win over these copies.

include!("../dsp_cfg.rs");

use std::path::PathBuf;
use std::{env, fs};

#[allow(dead_code)]
mod boards {
    include!("boards.rs");
}
use boards::{region, Board, BOARDS};

fn memory_x(b: &Board, target: &str, stack_reserve: u64) -> String {
    let map = fs::read_to_string(b.memory_map)
        .unwrap_or_else(|e| panic!("board {}: reading {}: {e}", b.bin, b.memory_map));
    for region_name in ["FLASH", "MODEL"] {
        if region(&map, region_name).is_none() {
            panic!(
                "board {}: {} has no {region_name} region with ORIGIN and LENGTH (see boards.rs)",
                b.bin, b.memory_map
            );
        }
    }
    let (_, ram) = region(&map, "RAM").unwrap_or_else(|| {
        panic!(
            "board {}: {} has no RAM region with a LENGTH",
            b.bin, b.memory_map
        )
    });
    let mut s = map;
    s.push_str(&format!(
        "\n/* Added by firmware/build.rs for the bin `{bin}`. */\n",
        bin = b.bin
    ));
    if target != b.target {
        s.push_str(&format!(
            "ASSERT(0, \"tinyinfer-firmware: board {bin} ({cpu}) is built for {want}: \
             pass --target {want} (this build is for {target})\");\n",
            bin = b.bin,
            cpu = b.cpu,
            want = b.target,
        ));
    }
    // __sdata..__euninit: .data, .bss and .uninit (cortex-m-rt's link.x). The
    // RAM length is written out because flip-link relinks with a RAM region
    // shrunk to the statics.
    s.push_str(&format!(
        "ASSERT(__euninit - __sdata + {stack_reserve} <= {ram}, \"tinyinfer-firmware: board \
         {bin}: the statics (the arena and input buffers included) leave less than \
         {stack_reserve} bytes of its {ram} bytes of RAM for the stack: make the arena \
         smaller (TINYINFER_ARENA_BYTES, or the board file)\");\n",
        bin = b.bin,
    ));
    s
}

fn main() {
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    // Every board file needs a line in the table.
    let mut bins: Vec<String> = fs::read_dir("src/bin")
        .expect("reading src/bin")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            (p.extension()? == "rs").then_some(stem)
        })
        .collect();
    bins.sort();
    for bin in &bins {
        if !BOARDS.iter().any(|b| b.bin == bin) {
            panic!(
                "src/bin/{bin}.rs has no line in the board table (firmware/boards.rs); \
                 known bins: {}",
                BOARDS.iter().map(|b| b.bin).collect::<Vec<_>>().join(", ")
            );
        }
    }

    // A starved-stack build (the stack-overflow test) lowers the reserve.
    let reserve_override = env::var("TINYINFER_STACK_RESERVE").ok().map(|s| {
        s.parse::<u64>()
            .unwrap_or_else(|_| panic!("TINYINFER_STACK_RESERVE={s:?} is not a byte count"))
    });
    for b in BOARDS {
        let dir = out.join(b.bin);
        fs::create_dir_all(&dir).expect("creating the board's link directory");
        let reserve = reserve_override.unwrap_or(b.stack_reserve as u64);
        fs::write(dir.join("memory.x"), memory_x(b, &target, reserve)).expect("writing memory.x");
        // cortex-m-rt's `device` feature (ours: `few-vectors`) has link.x
        // include a `device.x` naming the device's interrupt handlers: the
        // app's table (src/mem.rs) names none but `DefaultHandler`.
        fs::write(
            dir.join("device.x"),
            "/* tinyinfer-firmware: no device interrupt handlers (feature `few-vectors`). */\n",
        )
        .expect("writing device.x");
        // Two arguments: flip-link reads search paths as `-L` then the path.
        println!("cargo:rustc-link-arg-bin={}=-L", b.bin);
        println!("cargo:rustc-link-arg-bin={}={}", b.bin, dir.display());
        println!("cargo:rerun-if-changed={}", b.memory_map);
    }

    // The DSP kernels' check needs the core's kernels::arm: the root
    // build.rs's rule, from the same file.
    println!("cargo::rustc-check-cfg=cfg(tinyinfer_dsp)");
    if target_has_dsp() {
        println!("cargo::rustc-cfg=tinyinfer_dsp");
    }
    println!("cargo:rerun-if-changed=../dsp_cfg.rs");
    // Armv6-M takes at most 32 device interrupts (src/mem.rs, `few-vectors`).
    println!("cargo::rustc-check-cfg=cfg(tinyinfer_armv6m)");
    if target.starts_with("thumbv6m") {
        println!("cargo::rustc-cfg=tinyinfer_armv6m");
    }
    println!("cargo:rerun-if-changed=boards.rs");
    println!("cargo:rerun-if-changed=src/bin");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=TINYINFER_ARENA_BYTES");
    println!("cargo:rerun-if-env-changed=TINYINFER_STACK_RESERVE");
}
