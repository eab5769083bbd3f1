//! What host-tools reads from a firmware ELF: the MODEL partition's
//! address and size, and the flash footprint by origin.

use anyhow::{ensure, Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SectionKind};

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
    // A board file is a bin: its crate is the bin's name with `_` for `-`.
    let board_file = || {
        crate::device::boards::BOARDS.iter().any(|b| {
            n.strip_prefix(b.bin.replace('-', "_").as_str())
                .is_some_and(|rest| rest.starts_with("::"))
        })
    };
    if starts("tinyinfer_firmware") || board_file() {
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
