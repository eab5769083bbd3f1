// The board table: one line per firmware bin (`src/bin/<bin>.rs`, or a
// second bin of the same source). Plain data, no dependencies: it is read by
// `firmware/build.rs` (which links each bin under its memory map), by the
// firmware library (the board's memory map, for the boot report) and by
// host-tools (`tinyinfer simulate --board`, `tinyinfer flash --board`).
//
// Adding a board: a board file `src/bin/<name>.rs`, a memory map
// `memory-<name>.x` with a MODEL region, a `[[bin]]` in Cargo.toml naming its
// transport feature, and one line here (docs/firmware.md, "Adding a board").

/// How the app's defmt log (and, on QEMU, the evaluation files) reach the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Arm semihosting (QEMU, or a debugger that serves it): cargo feature `semihosting`.
    Semihosting,
    /// SEGGER RTT through a debug probe (probe-rs): cargo feature `rtt`.
    Rtt,
}

impl Transport {
    /// The cargo feature that builds this transport.
    pub const fn feature(self) -> &'static str {
        match self {
            Transport::Semihosting => "semihosting",
            Transport::Rtt => "rtt",
        }
    }
}

/// One line of the board table.
#[derive(Clone, Copy, Debug)]
pub struct Board {
    /// The bin (cargo `--bin`), which is also the board's name in reports.
    pub bin: &'static str,
    /// The CPU, for people: `Cortex-M4F`.
    pub cpu: &'static str,
    /// The rustc target the bin must be built for.
    pub target: &'static str,
    /// The linker memory map (`firmware/<file>`): FLASH, MODEL and RAM regions.
    pub memory_map: &'static str,
    /// The transport (and so the cargo feature).
    pub transport: Transport,
    /// QEMU `-machine` and `-cpu`, for boards QEMU simulates.
    pub qemu: Option<(&'static str, &'static str)>,
    /// The probe-rs chip name, for real boards.
    pub chip: Option<&'static str>,
    /// Bytes of RAM the statics must leave for the stack (checked at link time).
    pub stack_reserve: u32,
}

const fn sim(
    bin: &'static str,
    cpu: &'static str,
    target: &'static str,
    map: &'static str,
    machine: &'static str,
    qemu_cpu: &'static str,
    stack_reserve: u32,
) -> Board {
    Board {
        bin,
        cpu,
        target,
        memory_map: map,
        transport: Transport::Semihosting,
        qemu: Some((machine, qemu_cpu)),
        chip: None,
        stack_reserve,
    }
}

const fn real(
    bin: &'static str,
    cpu: &'static str,
    target: &'static str,
    map: &'static str,
    chip: &'static str,
    stack_reserve: u32,
) -> Board {
    Board {
        bin,
        cpu,
        target,
        memory_map: map,
        transport: Transport::Rtt,
        qemu: None,
        chip: Some(chip),
        stack_reserve,
    }
}

/// Every bin of the firmware.
#[rustfmt::skip]
pub const BOARDS: &[Board] = &[
    //   bin                      CPU           target                       memory map                    QEMU machine   -cpu          stack
    sim("mps2-an386",            "Cortex-M4F", "thumbv7em-none-eabihf",     "memory-qemu.x",              "mps2-an386", "cortex-m4",  16 * 1024),
    sim("mps2-an386-nrf-budget", "Cortex-M4F", "thumbv7em-none-eabihf",     "memory-qemu-nrf-budget.x",   "mps2-an386", "cortex-m4",  16 * 1024),
    sim("kernel-check",          "Cortex-M4F", "thumbv7em-none-eabihf",     "memory-qemu.x",              "mps2-an386", "cortex-m4",  16 * 1024),
    sim("kernel-check-m33",      "Cortex-M33", "thumbv8m.main-none-eabihf", "memory-mps2-an505.x",        "mps2-an505", "cortex-m33", 16 * 1024),
    sim("mps2-an385",            "Cortex-M3",  "thumbv7m-none-eabi",        "memory-mps2-an385.x",        "mps2-an385", "cortex-m3",  16 * 1024),
    sim("mps2-an505",            "Cortex-M33", "thumbv8m.main-none-eabihf", "memory-mps2-an505.x",        "mps2-an505", "cortex-m33", 16 * 1024),
    sim("microbit",              "Cortex-M0",  "thumbv6m-none-eabi",        "memory-microbit.x",          "microbit",   "cortex-m0",  4 * 1024),
    sim("riscv-virt",            "RV32IMC",    "riscv32imc-unknown-none-elf", "memory-riscv-virt.x",      "virt",       "rv32",       16 * 1024),
    //   bin                      CPU           target                       memory map                    probe-rs chip              stack
    real("nrf52840-dk",          "Cortex-M4F", "thumbv7em-none-eabihf",     "memory-nrf52840-dk.x",       "nRF52840_xxAA",           16 * 1024),
    real("nucleo-l4r5zi",        "Cortex-M4F", "thumbv7em-none-eabihf",     "memory-nucleo-l4r5zi.x",     "STM32L4R5ZITx",           16 * 1024),
];

/// The line of `bin`, if there is one (usable in constants).
pub const fn board(bin: &str) -> Option<&'static Board> {
    let mut i = 0;
    while i < BOARDS.len() {
        if str_eq(BOARDS[i].bin, bin) {
            return Some(&BOARDS[i]);
        }
        i += 1;
    }
    None
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `256K`, `4M`, `0x1000`, `4096`, as the linker reads a number.
pub fn parse_number(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1024),
        b'M' | b'm' => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    let n = match num.strip_prefix("0x").or_else(|| num.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => num.parse().ok()?,
    };
    n.checked_mul(mul)
}

/// ORIGIN and LENGTH of the region `name` in a memory map's MEMORY block
/// (a line `NAME : ORIGIN = ..., LENGTH = ...`).
pub fn region(map: &str, name: &str) -> Option<(u64, u64)> {
    map.lines().find_map(|l| {
        let rest = l
            .trim()
            .strip_prefix(name)?
            .trim_start()
            .strip_prefix(':')?;
        let (origin, len) = rest.split_once(',')?;
        let origin = origin
            .trim()
            .strip_prefix("ORIGIN")?
            .trim_start()
            .strip_prefix('=')?;
        let len = len
            .trim()
            .strip_prefix("LENGTH")?
            .trim_start()
            .strip_prefix('=')?;
        Some((parse_number(origin)?, parse_number(len)?))
    })
}
