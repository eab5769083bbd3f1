//! The flash controllers that write a slot's trailer through a debug probe,
//! one register access at a time.
//!
//! probe-rs's flash loader writes whole pages: it erases each page a write
//! touches and programs all of it, the bytes it was not given as 0xFF. That
//! is how the image goes in. The trailer cannot: the complete marker must be
//! the last thing written, after the image was read back, so the host writes
//! the slot's last page itself, through the chip's flash controller:
//!
//! - **nRF52 NVMC** ([`Controller::Nrf52`]): 32-bit words, each written at
//!   most twice between erases (nRF52840 product specification, NVMC,
//!   n_WRITE = 2). The loader erases the last page and programs it erased
//!   (the first write of each trailer word), then each trailer word gets its
//!   value (the second write).
//! - **STM32L4+ FLASH** ([`Controller::Stm32l4`], RM0432: STM32L4R/L4S):
//!   64-bit double words with ECC, each programmed **once** between erases
//!   (programming a double word that is not erased fails with PROGERR, and a
//!   programmed 0xFF… double word carries ECC bits that a second program
//!   would corrupt). So the loader never touches the slot's last erase page:
//!   the host erases it through FLASH_CR and programs the image's tail in it
//!   (if the image reaches it), then the trailer, the double word of the
//!   complete marker last.
//!
//! The register sequences run against a [`Bus`]: a probe-rs core on a board,
//! and in the tests a model of each controller's registers as the
//! reference manuals describe them.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

/// 32-bit accesses to a halted target's memory.
pub trait Bus {
    /// Reads the word at `addr`.
    ///
    /// # Errors
    /// The probe's.
    fn read32(&mut self, addr: u32) -> Result<u32>;
    /// Writes the word at `addr`.
    ///
    /// # Errors
    /// The probe's.
    fn write32(&mut self, addr: u32, value: u32) -> Result<()>;
}

impl Bus for probe_rs::Core<'_> {
    fn read32(&mut self, addr: u32) -> Result<u32> {
        use probe_rs::MemoryInterface;
        self.read_word_32(addr as u64)
            .with_context(|| format!("reading {addr:#010x}"))
    }

    fn write32(&mut self, addr: u32, value: u32) -> Result<()> {
        use probe_rs::MemoryInterface;
        self.write_word_32(addr as u64, value)
            .with_context(|| format!("writing {value:#010x} to {addr:#010x}"))
    }
}

/// How a chip's flash is written outside the flash loader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controller {
    /// The nRF52 NVMC: the loader writes the slot's last page erased, then
    /// each trailer word is written once more.
    Nrf52,
    /// The STM32L4R/L4S FLASH interface: the host erases the slot's last
    /// erase page (`page` bytes: 4 KB in dual-bank mode, the factory default
    /// and the only mode written) and programs it in double words.
    Stm32l4 {
        /// The erase page in bytes.
        page: usize,
    },
}

impl Controller {
    /// The controller of a probe-rs chip name, assuming the STM32L4+'s
    /// factory-default dual-bank mode (the run reads the option bytes).
    pub fn for_chip(chip: &str) -> Option<Self> {
        let c = chip.to_ascii_lowercase();
        if c.starts_with("nrf52") {
            Some(Controller::Nrf52)
        } else if c.starts_with("stm32l4r") || c.starts_with("stm32l4s") {
            Some(Controller::Stm32l4 {
                page: STM32_DUAL_BANK_PAGE,
            })
        } else {
            None
        }
    }

    /// Bytes of one program operation.
    pub fn unit(self) -> usize {
        match self {
            Controller::Nrf52 => 4,
            Controller::Stm32l4 { .. } => 8,
        }
    }

    /// The erase page the host erases itself (none: the loader erases every page).
    pub fn host_erase_page(self) -> Option<usize> {
        match self {
            Controller::Nrf52 => None,
            Controller::Stm32l4 { page } => Some(page),
        }
    }

    /// For messages.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Nrf52 => "nRF52 NVMC",
            Controller::Stm32l4 { .. } => "STM32L4+ FLASH",
        }
    }

    /// Erases `erase` (the host-erased page, if any), then programs each
    /// unit in order, through the controller's registers. The core must be
    /// halted.
    ///
    /// # Errors
    /// A unit of the wrong size or alignment, a controller that stays busy,
    /// reports an error or stays locked; the probe's errors.
    pub fn write(
        self,
        bus: &mut dyn Bus,
        erase: Option<u32>,
        units: &[(u32, Vec<u8>)],
    ) -> Result<()> {
        for (addr, u) in units {
            ensure!(
                u.len() == self.unit() && (*addr as usize).is_multiple_of(self.unit()),
                "a {}-byte write at {addr:#010x} is not one aligned {}-byte unit of the {}",
                u.len(),
                self.unit(),
                self.name()
            );
        }
        match self {
            Controller::Nrf52 => {
                ensure!(erase.is_none(), "the NVMC path erases nothing itself");
                nrf52_write(bus, units)
            }
            Controller::Stm32l4 { page } => {
                ensure!(
                    page == STM32_DUAL_BANK_PAGE,
                    "a plan with {page}-byte STM32L4+ erase pages: the chip is written in \
                     dual-bank mode only ({STM32_DUAL_BANK_PAGE}-byte pages)"
                );
                stm32l4_write(bus, erase, units)
            }
        }
    }
}

fn wait(what: &str, limit: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let t0 = Instant::now();
    while !done()? {
        ensure!(t0.elapsed() < limit, "{what}: still busy after {limit:?}");
    }
    Ok(())
}

// --- nRF52 NVMC (nRF52840 product specification v1.7, section 4.3) ---

/// READY: bit 0 set when the NVMC is ready.
pub const NVMC_READY: u32 = 0x4001_E400;
/// CONFIG: WEN, 0 read only, 1 write enabled.
pub const NVMC_CONFIG: u32 = 0x4001_E504;

fn nrf52_write(bus: &mut dyn Bus, units: &[(u32, Vec<u8>)]) -> Result<()> {
    bus.write32(NVMC_CONFIG, 1)
        .context("enabling NVMC writes")?;
    let r = (|| {
        for (addr, u) in units {
            let word = u32::from_le_bytes(u[..4].try_into().expect("4 bytes"));
            bus.write32(*addr, word)
                .with_context(|| format!("writing the word at {addr:#010x}"))?;
            wait(
                &format!("the NVMC writing {addr:#010x}"),
                Duration::from_secs(1),
                || Ok(bus.read32(NVMC_READY)? & 1 == 1),
            )?;
        }
        Ok(())
    })();
    let disable = bus.write32(NVMC_CONFIG, 0).context("disabling NVMC writes");
    r.and(disable)
}

// --- STM32L4R/L4S FLASH interface (RM0432 rev 9, section 3) ---

/// The FLASH registers' base.
pub const STM32_FLASH: u32 = 0x4002_2000;
/// FLASH_ACR: the instruction and data caches (ICEN 9, DCEN 10, ICRST 11, DCRST 12).
pub const STM32_ACR: u32 = STM32_FLASH;
/// FLASH_KEYR: the unlock keys.
pub const STM32_KEYR: u32 = STM32_FLASH + 0x08;
/// FLASH_SR: status (BSY 16; errors write-1-to-clear).
pub const STM32_SR: u32 = STM32_FLASH + 0x10;
/// FLASH_CR: PG 0, PER 1, PNB 3..=10, BKER 11, STRT 16, LOCK 31.
pub const STM32_CR: u32 = STM32_FLASH + 0x14;
/// FLASH_OPTR: BFB2 (bit 20, boot from bank 2: the banks may be swapped),
/// DBANK (bit 22 on 2 MB parts: dual-bank mode).
pub const STM32_OPTR: u32 = STM32_FLASH + 0x20;
/// The flash size in KB (the low half-word), from the device electronic signature.
pub const STM32_FLASHSIZE: u32 = 0x1FFF_75E0;
/// Main flash memory.
pub const STM32_FLASH_BASE: u32 = 0x0800_0000;
/// The erase page in dual-bank mode (the only mode written).
pub const STM32_DUAL_BANK_PAGE: usize = 4096;

const KEY1: u32 = 0x4567_0123;
const KEY2: u32 = 0xCDEF_89AB;
const CR_PG: u32 = 1 << 0;
const CR_PER: u32 = 1 << 1;
const CR_BKER: u32 = 1 << 11;
const CR_STRT: u32 = 1 << 16;
const CR_LOCK: u32 = 1 << 31;
const SR_BSY: u32 = 1 << 16;
/// OPERR, PROGERR, WRPERR, PGAERR, SIZERR, PGSERR, MISSERR, FASTERR, RDERR, OPTVERR.
const SR_ERRORS: u32 = 0xC3FA;
const ACR_ICEN: u32 = 1 << 9;
const ACR_DCEN: u32 = 1 << 10;
const ACR_ICRST: u32 = 1 << 11;
const ACR_DCRST: u32 = 1 << 12;

/// An STM32L4+'s flash as [`stm32l4_geometry`] accepts it: dual-bank mode,
/// two banks of `size / 2` in 4 KB pages. Only the 2 MB parts in dual-bank
/// mode are written: probe-rs 0.32's one flash algorithm for the
/// STM32L4R/L4S (`stm32l4rx_2048_dual`) erases 4 KB sectors with the
/// dual-bank page numbering, and a host erase page that differs from the
/// loader's sectors could not be kept apart from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stm32Geometry {
    /// Bytes of flash.
    pub size: u32,
}

impl Stm32Geometry {
    /// FLASH_CR's bits that select the erase page holding `addr` (PNB, BKER).
    ///
    /// # Errors
    /// An address outside the flash or not at a page start.
    pub fn page_bits(self, addr: u32) -> Result<u32> {
        let off = addr
            .checked_sub(STM32_FLASH_BASE)
            .filter(|o| *o < self.size)
            .with_context(|| format!("{addr:#010x} is not in the {}-KB flash", self.size / 1024))?;
        ensure!(
            (off as usize).is_multiple_of(STM32_DUAL_BANK_PAGE),
            "{addr:#010x} is not at the start of a {STM32_DUAL_BANK_PAGE}-byte erase page"
        );
        let (bank, in_bank) = (off / (self.size / 2), off % (self.size / 2));
        let pnb = in_bank / STM32_DUAL_BANK_PAGE as u32;
        ensure!(pnb < 256, "page {pnb} does not fit FLASH_CR's PNB");
        Ok((pnb << 3) | if bank == 1 { CR_BKER } else { 0 })
    }
}

/// Reads the flash size and bank mode.
///
/// # Errors
/// A part that is not a 2 MB STM32L4R/L4S in dual-bank mode; BFB2 set (the
/// banks may be swapped, and the page numbers would name the other bank's
/// pages: SYSCFG_MEMRMP's FB_MODE, which says whether they are, reads 0
/// while the SYSCFG clock is off, as it is after reset); the probe's errors.
fn stm32l4_geometry(bus: &mut dyn Bus) -> Result<Stm32Geometry> {
    let kb = bus.read32(STM32_FLASHSIZE).context("reading FLASHSIZE")? & 0xFFFF;
    let optr = bus.read32(STM32_OPTR).context("reading FLASH_OPTR")?;
    ensure!(
        kb == 2048,
        "FLASHSIZE reads {kb} KB: tinyinfer writes the 2 MB STM32L4R/L4S parts only (probe-rs's \
         flash algorithm for the family assumes their two 1 MB banks; is this the chip --chip names?)"
    );
    ensure!(
        optr & (1 << 22) != 0,
        "FLASH_OPTR.DBANK is 0 (single-bank mode, 8 KB pages): probe-rs's flash algorithm for \
         this chip erases 4 KB dual-bank pages, so tinyinfer writes dual-bank mode only (the \
         factory default): set DBANK with STM32CubeProgrammer and retry"
    );
    ensure!(
        optr & (1 << 20) == 0,
        "FLASH_OPTR.BFB2 is set: the chip may boot with its banks swapped, and the MODEL \
         partition's page numbers would then name the other bank's pages (the app's): clear \
         BFB2 and retry"
    );
    Ok(Stm32Geometry { size: kb * 1024 })
}

fn stm32_ready(bus: &mut dyn Bus, what: &str) -> Result<()> {
    wait(what, Duration::from_secs(1), || {
        Ok(bus.read32(STM32_SR)? & SR_BSY == 0)
    })?;
    let sr = bus.read32(STM32_SR)?;
    ensure!(
        sr & SR_ERRORS == 0,
        "{what}: FLASH_SR reads {sr:#010x} ({})",
        stm32_errors(sr)
    );
    Ok(())
}

fn stm32_errors(sr: u32) -> String {
    const NAMES: [(u32, &str); 10] = [
        (1, "OPERR"),
        (3, "PROGERR: the double word was not erased"),
        (4, "WRPERR: write protected"),
        (5, "PGAERR: alignment"),
        (6, "SIZERR"),
        (7, "PGSERR: sequence"),
        (8, "MISSERR"),
        (9, "FASTERR"),
        (14, "RDERR"),
        (15, "OPTVERR"),
    ];
    NAMES
        .iter()
        .filter(|(b, _)| sr & (1 << b) != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

fn stm32l4_write(bus: &mut dyn Bus, erase: Option<u32>, units: &[(u32, Vec<u8>)]) -> Result<()> {
    let geometry = stm32l4_geometry(bus)?;
    let page_bits = erase.map(|a| geometry.page_bits(a)).transpose()?;
    stm32_ready(bus, "before the write").or_else(|e| {
        // Errors left by an earlier operation: clear them (write 1 to clear) and look again.
        bus.write32(STM32_SR, SR_ERRORS)?;
        stm32_ready(bus, "clearing FLASH_SR").context(e)
    })?;
    if bus.read32(STM32_CR)? & CR_LOCK != 0 {
        bus.write32(STM32_KEYR, KEY1)?;
        bus.write32(STM32_KEYR, KEY2)?;
        ensure!(
            bus.read32(STM32_CR)? & CR_LOCK == 0,
            "FLASH_CR stays locked after the key sequence (a wrong key locks it until reset: \
             reset the board and retry)"
        );
    }
    let r = (|| {
        if let Some(bits) = page_bits {
            let addr = erase.expect("page bits come from an address");
            bus.write32(STM32_CR, CR_PER | bits)?;
            bus.write32(STM32_CR, CR_PER | bits | CR_STRT)?;
            stm32_ready(bus, &format!("erasing the page at {addr:#010x}"))?;
            bus.write32(STM32_CR, 0)?;
        }
        bus.write32(STM32_CR, CR_PG)?;
        for (addr, u) in units {
            let lo = u32::from_le_bytes(u[..4].try_into().expect("4 bytes"));
            let hi = u32::from_le_bytes(u[4..8].try_into().expect("4 bytes"));
            bus.write32(*addr, lo)?;
            bus.write32(addr + 4, hi)?;
            stm32_ready(bus, &format!("programming the double word at {addr:#010x}"))?;
        }
        bus.write32(STM32_CR, 0)?;
        Ok(())
    })();
    // Lock again whatever happened; then flush the flash caches, which may
    // hold the erased page's old contents. The first error wins.
    let lock = bus.write32(STM32_CR, CR_LOCK).context("locking FLASH_CR");
    let caches = (|| {
        let acr = bus.read32(STM32_ACR)?;
        let off = acr & !(ACR_ICEN | ACR_DCEN | ACR_ICRST | ACR_DCRST);
        bus.write32(STM32_ACR, off)?;
        bus.write32(STM32_ACR, off | ACR_ICRST | ACR_DCRST)?;
        bus.write32(STM32_ACR, off)?;
        bus.write32(STM32_ACR, acr & !(ACR_ICRST | ACR_DCRST))
    })()
    .context("resetting the flash caches (FLASH_ACR)");
    r.and(lock).and(caches)
}

#[cfg(test)]
pub(crate) mod sim {
    //! Register-level models of the two controllers, as their reference
    //! manuals describe them, over a NOR array that counts writes per unit.

    use super::*;
    use anyhow::bail;

    /// NOR flash: erases to 0xFF, a program only clears bits, and each
    /// `unit`-byte unit is programmed at most `max_writes` times between
    /// erases (the nRF52840's n_WRITE = 2; the STM32L4+'s ECC double words: 1).
    #[derive(Clone)]
    pub struct Nor {
        pub base: u32,
        pub bytes: Vec<u8>,
        pub writes: Vec<u8>,
        pub unit: usize,
        pub max_writes: u8,
    }

    impl Nor {
        pub fn new(base: u32, bytes: Vec<u8>, unit: usize, max_writes: u8) -> Self {
            let writes = vec![0; bytes.len() / unit];
            Nor {
                base,
                bytes,
                writes,
                unit,
                max_writes,
            }
        }

        /// Programs one unit; panics on a unit written too often.
        pub fn program(&mut self, addr: u32, data: &[u8]) {
            let at = (addr - self.base) as usize;
            assert_eq!(
                (at % self.unit, data.len()),
                (0, self.unit),
                "unaligned program at {addr:#x}"
            );
            let n = &mut self.writes[at / self.unit];
            *n += 1;
            assert!(
                *n <= self.max_writes,
                "unit at {addr:#x} programmed {n} times between erases"
            );
            for (b, d) in self.bytes[at..at + self.unit].iter_mut().zip(data) {
                *b &= d;
            }
        }

        pub fn erase(&mut self, addr: u32, len: usize) {
            let at = (addr - self.base) as usize;
            self.bytes[at..at + len].fill(0xFF);
            self.writes[at / self.unit..(at + len) / self.unit].fill(0);
        }

        /// probe-rs's flash loader: every `page` a region touches is erased,
        /// then programmed whole (the bytes it was not given as 0xFF).
        pub fn load(&mut self, addr: u32, data: &[u8], page: usize) {
            let at = (addr - self.base) as usize;
            let first = at / page * page;
            let end = (at + data.len()).div_ceil(page) * page;
            for pg in (first..end).step_by(page) {
                self.erase(self.base + pg as u32, page);
                for o in (pg..pg + page).step_by(self.unit) {
                    let u: Vec<u8> = (o..o + self.unit)
                        .map(|i| {
                            if (at..at + data.len()).contains(&i) {
                                data[i - at]
                            } else {
                                0xFF
                            }
                        })
                        .collect();
                    self.program(self.base + o as u32, &u);
                }
            }
        }

        pub fn read(&self, addr: u32, len: usize) -> &[u8] {
            let at = (addr - self.base) as usize;
            &self.bytes[at..at + len]
        }

        fn contains(&self, addr: u32) -> bool {
            addr >= self.base && ((addr - self.base) as usize) < self.bytes.len()
        }
    }

    /// The nRF52 NVMC: a word write to flash needs CONFIG.WEN.
    pub struct Nvmc {
        pub nor: Nor,
        pub config: u32,
    }

    impl Bus for Nvmc {
        fn read32(&mut self, addr: u32) -> Result<u32> {
            Ok(match addr {
                NVMC_READY => 1,
                NVMC_CONFIG => self.config,
                a if self.nor.contains(a) => u32::from_le_bytes(self.nor.read(a, 4).try_into()?),
                a => bail!("no register at {a:#x}"),
            })
        }

        fn write32(&mut self, addr: u32, v: u32) -> Result<()> {
            match addr {
                NVMC_CONFIG => self.config = v,
                a if self.nor.contains(a) => {
                    ensure!(self.config == 1, "a flash write with CONFIG.WEN clear");
                    self.nor.program(a, &v.to_le_bytes());
                }
                a => bail!("no register at {a:#x}"),
            }
            Ok(())
        }
    }

    /// The STM32L4R/L4S FLASH interface (RM0432 section 3.3): the key
    /// sequence, page erase by PNB/BKER, double-word programming with PG
    /// (two word writes, the first 8-aligned), PROGERR on a double word
    /// already programmed, PGSERR on a flash write without PG, BSY for two
    /// status reads after each operation starts (starting another one
    /// while busy panics), and an erase outside the modelled flash panics.
    pub struct Stm32 {
        pub nor: Nor,
        /// FLASHSIZE in bytes.
        pub size: u32,
        /// FLASH_OPTR.DBANK.
        pub dbank: bool,
        pub cr: u32,
        pub sr: u32,
        pub acr: u32,
        pub key: u8,
        pub pending: Option<(u32, u32)>,
        pub caches_reset: usize,
        pub busy: u8,
        pub bfb2: bool,
    }

    impl Stm32 {
        /// The NUCLEO-L4R5ZI's STM32L4R5ZI as it leaves the factory: 2 MB, dual-bank.
        pub fn new(nor: Nor) -> Self {
            Stm32 {
                nor,
                size: 2 << 20,
                dbank: true,
                cr: CR_LOCK,
                sr: 0,
                acr: ACR_ICEN | ACR_DCEN,
                key: 0,
                pending: None,
                caches_reset: 0,
                busy: 0,
                bfb2: false,
            }
        }
    }

    impl Bus for Stm32 {
        fn read32(&mut self, addr: u32) -> Result<u32> {
            Ok(match addr {
                STM32_SR => {
                    // Busy for two reads after each operation starts.
                    let busy = if self.busy > 0 { SR_BSY } else { 0 };
                    self.busy = self.busy.saturating_sub(1);
                    self.sr | busy
                }
                STM32_CR => self.cr,
                STM32_ACR => self.acr,
                // The reset value, with DBANK and BFB2 as modelled.
                STM32_OPTR => {
                    (0xFFEF_F8AA & !((1 << 22) | (1 << 20)))
                        | (u32::from(self.dbank) << 22)
                        | (u32::from(self.bfb2) << 20)
                }
                STM32_FLASHSIZE => 0xFFFF_0000 | (self.size / 1024),
                a if self.nor.contains(a) => u32::from_le_bytes(self.nor.read(a, 4).try_into()?),
                a => bail!("no register at {a:#x}"),
            })
        }

        fn write32(&mut self, addr: u32, v: u32) -> Result<()> {
            match addr {
                STM32_KEYR => {
                    self.key = match (self.key, v) {
                        (0, KEY1) => 1,
                        (1, KEY2) => {
                            self.cr &= !CR_LOCK;
                            0
                        }
                        _ => 2, // locked until reset
                    };
                }
                STM32_SR => self.sr &= !(v & SR_ERRORS),
                STM32_ACR => {
                    if v & (ACR_ICRST | ACR_DCRST) != 0 {
                        assert_eq!(v & (ACR_ICEN | ACR_DCEN), 0, "cache reset while enabled");
                        self.caches_reset += 1;
                    }
                    self.acr = v;
                }
                STM32_CR => {
                    if self.cr & CR_LOCK != 0 {
                        return Ok(()); // ignored while locked
                    }
                    self.cr = v;
                    if v & CR_STRT != 0 {
                        self.cr &= !CR_STRT;
                        if v & CR_PER == 0 || v & CR_PG != 0 {
                            self.sr |= 1 << 7; // PGSERR
                            return Ok(());
                        }
                        let pnb = (v >> 3) & 0xFF;
                        let bank = u32::from(v & CR_BKER != 0);
                        // PNB and BKER as dual-bank mode reads them (single-bank
                        // mode is refused before any write).
                        assert!(self.dbank, "an erase in single-bank mode");
                        let page = STM32_DUAL_BANK_PAGE as u32;
                        let a = STM32_FLASH_BASE + bank * (self.size / 2) + pnb * page;
                        assert_eq!(self.busy, 0, "an erase started while busy");
                        assert!(
                            self.nor.contains(a),
                            "erased {a:#x}, outside the modelled flash"
                        );
                        self.nor.erase(a, page as usize);
                        self.busy = 2;
                    }
                }
                a if self.nor.contains(a) => {
                    if self.cr & CR_PG == 0 || self.cr & CR_LOCK != 0 {
                        self.sr |= 1 << 7; // PGSERR
                        return Ok(());
                    }
                    match self.pending.take() {
                        None if a % 8 == 0 => self.pending = Some((a, v)),
                        Some((first, lo)) if a == first + 4 => {
                            // Stricter than the chip, which checks the contents:
                            // a double word programmed once (even to all 0xFF)
                            // carries its ECC bits.
                            let at = (first - self.nor.base) as usize / 8;
                            assert_eq!(self.busy, 0, "a program started while busy");
                            if self.nor.writes[at] != 0 {
                                self.sr |= 1 << 3; // PROGERR
                            } else {
                                let mut d = lo.to_le_bytes().to_vec();
                                d.extend(v.to_le_bytes());
                                self.nor.program(first, &d);
                                self.busy = 2;
                            }
                        }
                        _ => self.sr |= 1 << 5, // PGAERR
                    }
                }
                a => bail!("no register at {a:#x}"),
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sim::*;
    use super::*;

    #[test]
    fn chips_map_to_their_controllers() {
        assert_eq!(
            Controller::for_chip("nRF52840_xxAA"),
            Some(Controller::Nrf52)
        );
        assert_eq!(
            Controller::for_chip("STM32L4R5ZITx"),
            Some(Controller::Stm32l4 { page: 4096 })
        );
        assert_eq!(Controller::for_chip("STM32F401RETx"), None);
        assert_eq!(Controller::for_chip("STM32L476RGTx"), None);
    }

    #[test]
    fn stm32_pages_name_their_bank() {
        let dual = Stm32Geometry { size: 2 << 20 };
        assert_eq!(dual.page_bits(0x0800_0000).unwrap(), 0);
        assert_eq!(dual.page_bits(0x0804_0000).unwrap(), 64 << 3);
        assert_eq!(dual.page_bits(0x0810_0000).unwrap(), CR_BKER);
        assert_eq!(dual.page_bits(0x081F_F000).unwrap(), CR_BKER | (255 << 3));
        assert!(dual.page_bits(0x0820_0000).is_err());
        assert!(dual.page_bits(0x0804_0800).is_err());
    }

    /// The register sequence erases exactly the named page, programs each
    /// double word once, locks the controller again and flushes the caches.
    #[test]
    fn stm32_sequence_erases_one_page_and_programs_double_words() {
        let page = 4096;
        // The last two pages of bank 1 and the first two of bank 2.
        for base in [0x0810_0000 - 2 * page as u32, 0x0810_0000] {
            let mut nor = Nor::new(base, vec![0u8; 4 * page], 8, 1);
            nor.writes.fill(1); // all programmed (to 0x00)
            let mut dev = Stm32::new(nor);
            let target = base + page as u32;
            let units = vec![
                (target, vec![1, 2, 3, 4, 5, 6, 7, 8]),
                (
                    target + page as u32 - 8,
                    vec![0xFF, 0xFF, 0xFF, 0xFF, 0xDE, 0xC0, 0xFE, 0x5A],
                ),
            ];
            Controller::Stm32l4 { page }
                .write(&mut dev, Some(target), &units)
                .unwrap();
            let got = dev.nor.read(base, 4 * page);
            assert!(
                got[..page].iter().all(|&b| b == 0),
                "the page before was erased"
            );
            assert_eq!(&got[page..page + 8], &[1, 2, 3, 4, 5, 6, 7, 8]);
            assert!(got[page + 8..2 * page - 8].iter().all(|&b| b == 0xFF));
            assert_eq!(&got[2 * page - 8..2 * page], &units[1].1[..]);
            assert!(
                got[2 * page..].iter().all(|&b| b == 0),
                "the page after was erased"
            );
            assert_eq!(dev.sr, 0);
            assert_ne!(dev.cr & CR_LOCK, 0, "left unlocked");
            assert_eq!(dev.caches_reset, 1);
            assert_eq!(dev.acr, ACR_ICEN | ACR_DCEN);

            // Programming the same double word again without an erase: PROGERR, named.
            let e = Controller::Stm32l4 { page }
                .write(&mut dev, None, &units[..1])
                .unwrap_err();
            assert!(format!("{e:#}").contains("PROGERR"), "{e:#}");
            assert_ne!(dev.cr & CR_LOCK, 0, "left unlocked after an error");
            assert_eq!(dev.caches_reset, 2, "caches not reset after an error");
        }
    }

    /// Single-bank mode, a set BFB2 and a 1 MB part are refused before any write.
    #[test]
    fn stm32_refuses_what_the_loader_cannot_match() {
        let c = Controller::Stm32l4 { page: 4096 };
        let untouched = |dev: &Stm32| dev.nor.bytes.iter().all(|&b| b == 0xFF) && dev.cr == CR_LOCK;
        let units = [(0x0804_0000, vec![0; 8])];
        let mut dev = Stm32::new(Nor::new(0x0804_0000, vec![0xFF; 8192], 8, 1));
        dev.dbank = false;
        let e = c.write(&mut dev, Some(0x0804_0000), &units).unwrap_err();
        assert!(format!("{e:#}").contains("DBANK is 0"), "{e:#}");
        assert!(untouched(&dev));
        let mut dev = Stm32::new(Nor::new(0x0804_0000, vec![0xFF; 8192], 8, 1));
        dev.bfb2 = true;
        let e = c.write(&mut dev, Some(0x0804_0000), &units).unwrap_err();
        assert!(format!("{e:#}").contains("BFB2 is set"), "{e:#}");
        assert!(untouched(&dev));
        dev.bfb2 = false;
        dev.size = 1 << 20;
        let e = c.write(&mut dev, Some(0x0804_0000), &units).unwrap_err();
        assert!(format!("{e:#}").contains("1024 KB"), "{e:#}");
        assert!(untouched(&dev));
    }

    #[test]
    fn stm32_refuses_misaligned_units_and_unknown_sizes() {
        let mut dev = Stm32::new(Nor::new(0x0804_0000, vec![0xFF; 8192], 8, 1));
        let c = Controller::Stm32l4 { page: 4096 };
        assert!(c
            .write(&mut dev, None, &[(0x0804_0004, vec![0; 8])])
            .is_err());
        assert!(c
            .write(&mut dev, None, &[(0x0804_0000, vec![0; 4])])
            .is_err());
        assert!(c.write(&mut dev, Some(0x0804_0800), &[]).is_err());
        // A plan made for another erase page is not written.
        let e = Controller::Stm32l4 { page: 8192 }
            .write(&mut dev, Some(0x0804_0000), &[])
            .unwrap_err();
        assert!(format!("{e:#}").contains("8192-byte"), "{e:#}");
        assert!(dev.nor.bytes.iter().all(|&b| b == 0xFF));
        dev.size = 512 * 1024;
        let e = c.write(&mut dev, None, &[]).unwrap_err();
        assert!(format!("{e:#}").contains("512 KB"), "{e:#}");
    }

    #[test]
    fn nvmc_sequence_enables_writes_around_the_words() {
        let mut dev = Nvmc {
            nor: Nor::new(0x1000, vec![0xFF; 64], 4, 2),
            config: 0,
        };
        Controller::Nrf52
            .write(
                &mut dev,
                None,
                &[(0x1000, vec![1, 2, 3, 4]), (0x1008, vec![9, 9, 9, 9])],
            )
            .unwrap();
        assert_eq!(
            dev.nor.read(0x1000, 12),
            &[1, 2, 3, 4, 255, 255, 255, 255, 9, 9, 9, 9]
        );
        assert_eq!(dev.config, 0);
        assert!(Controller::Nrf52
            .write(&mut dev, Some(0x1000), &[])
            .is_err());
    }
}
