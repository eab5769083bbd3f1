//! The firmware's board table (`firmware/boards.rs`, shared with the
//! firmware's `build.rs`), and the memory maps it names, compiled in: a
//! `tinyinfer` installed away from the repository still knows each board's
//! QEMU machine, target, probe-rs chip and MODEL partition.

use anyhow::{bail, Context, Result};

#[allow(dead_code)]
#[path = "../../../firmware/boards.rs"]
mod table;

pub use table::{parse_number, region, Board, Transport, BOARDS};

/// Bins of the table that are not the model app (`kernel-check` and
/// `kernel-check-m33` test the DSP kernels).
const NOT_APPS: &[&str] = &["kernel-check", "kernel-check-m33"];

/// The line of `bin` (usable in constants), apps or not.
pub const fn table_board(bin: &str) -> Option<&'static Board> {
    table::board(bin)
}

/// The boards that run the model app.
pub fn apps() -> impl Iterator<Item = &'static Board> {
    BOARDS.iter().filter(|b| !NOT_APPS.contains(&b.bin))
}

/// The board named `name`.
///
/// # Errors
/// No such board: the error lists the boards there are.
pub fn find(name: &str) -> Result<&'static Board> {
    match apps().find(|b| b.bin == name) {
        Some(b) => Ok(b),
        None => bail!(
            "unknown board {name:?}; the boards (firmware/boards.rs) are: {}",
            apps().map(|b| b.bin).collect::<Vec<_>>().join(", ")
        ),
    }
}

include!(concat!(env!("OUT_DIR"), "/memory_maps.rs"));

/// A board's MODEL partition: flash address and bytes, from its memory map.
///
/// # Errors
/// A memory map this build does not know, or one without a MODEL region.
pub fn model_partition(b: &Board) -> Result<(u32, u32)> {
    let map = memory_map(b.memory_map).with_context(|| {
        format!(
            "board {}: the memory map {} is not compiled into this tinyinfer",
            b.bin, b.memory_map
        )
    })?;
    let (origin, len) = region(map, "MODEL")
        .with_context(|| format!("board {}: {} has no MODEL region", b.bin, b.memory_map))?;
    Ok((
        u32::try_from(origin).context("MODEL origin past 4 GB")?,
        u32::try_from(len).context("MODEL length past 4 GB")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_board_has_a_known_map_with_a_model_partition() {
        for b in BOARDS {
            let (base, len) = model_partition(b).unwrap();
            assert!(len > 0, "{}", b.bin);
            assert_eq!(base % 4096, 0, "{}: MODEL not page-aligned", b.bin);
            assert_eq!(
                b.qemu.is_some(),
                b.transport == Transport::Semihosting,
                "{}",
                b.bin
            );
            assert_eq!(b.chip.is_some(), b.transport == Transport::Rtt, "{}", b.bin);
        }
        assert!(find("mps2-an999")
            .unwrap_err()
            .to_string()
            .contains("microbit"));
        assert!(find("kernel-check").is_err());
        assert_eq!(parse_number("768K"), Some(768 * 1024));
        assert_eq!(parse_number("0x10"), Some(16));
        assert_eq!(parse_number("4M"), Some(4 << 20));
        assert_eq!(parse_number("12Q"), None);
    }
}
