//! STM32L4R/L4S flash ECC, for boards with that chip (the NUCLEO-L4R5ZI):
//! the NMI a double-bit ECC error raises.
//!
//! The chip's flash stores 64-bit double words with ECC. A flash write cut
//! inside one double-word program or page erase (`tinyinfer flash` through
//! a probe, docs/reliability.md, "What a cut inside one operation does")
//! can leave a double word whose read is a double-bit ECC error: FLASH_ECCR's
//! ECCD is set and an NMI raised. [`stm32l4_ecc_nmi!`](crate::stm32l4_ecc_nmi)
//! defines the handler: for an error inside the MODEL partition it clears
//! the flags and returns, so the read completes with data that fails the
//! slot's checks (magic, CRCs) and the other slot boots. An error outside
//! the partition (the app's code or data, system flash), one whose address
//! was not recorded (a corrected error came first and holds ADDR_ECC), and
//! any other NMI stop, as the default handler would. The board clears both
//! flags at boot ([`clear_ecc_flags`]). Not tried on a chip: that the
//! faulting read completes, rather than raising the NMI again, is our
//! reading of RM0432.
#![allow(unsafe_code)]

use crate::{mem, mmio};

/// FLASH_ECCR (RM0432): ADDR_ECC (bits 0..=19), the failing double word's
/// byte offset in its bank; BK_ECC (bit 21), the bank; SYSF_ECC (bit 22),
/// an error in system flash; ECCC (bit 30) and ECCD (bit 31), a corrected
/// (single-bit) and a detected (double-bit) error, each write 1 to clear.
/// While either flag is set, ADDR_ECC and BK_ECC keep the first error's.
const FLASH_ECCR: usize = 0x4002_2018;
const ADDR_ECC: u32 = 0xF_FFFF;
const BK_ECC: u32 = 1 << 21;
const SYSF_ECC: u32 = 1 << 22;
const ECCC: u32 = 1 << 30;
const ECCD: u32 = 1 << 31;
const FLASH_BASE: usize = 0x0800_0000;
/// A bank in dual-bank mode (the mode `tinyinfer flash` writes).
const BANK_LEN: usize = 1 << 20;

/// Clears both ECC flags, so that the next error's address is recorded;
/// the board calls it before the app reads the MODEL partition.
pub fn clear_ecc_flags() {
    // SAFETY: FLASH_ECCR is an STM32L4R/L4S register; writing 1 to ECCC and
    // ECCD clears them, and writes 0 to ECCIE (bit 24, 0 from reset: no
    // interrupt on corrected errors). The read-back makes the write land
    // before the caller goes on (and, in the NMI, before it returns).
    unsafe {
        mmio::write(FLASH_ECCR, ECCC | ECCD);
        let _ = mmio::read(FLASH_ECCR);
    }
}

/// Called from the NMI: for a double-bit error whose recorded address is
/// its own (no corrected error came first) and lies in the MODEL partition,
/// clears the flags and returns true; false for anything else.
pub fn clear_model_ecc_error() -> bool {
    // SAFETY: FLASH_ECCR is an STM32L4R/L4S register without read side effects.
    let eccr = unsafe { mmio::read(FLASH_ECCR) };
    let at = FLASH_BASE + usize::from(eccr & BK_ECC != 0) * BANK_LEN + (eccr & ADDR_ECC) as usize;
    let model = mem::model_partition().as_ptr_range();
    let ours = eccr & (ECCD | ECCC | SYSF_ECC) == ECCD
        && (model.start as usize..model.end as usize).contains(&at);
    if ours {
        clear_ecc_flags();
    }
    ours
}

/// Defines the NMI handler of an STM32L4R/L4S board (see the module).
#[macro_export]
macro_rules! stm32l4_ecc_nmi {
    () => {
        #[::cortex_m_rt::exception]
        #[allow(unsafe_code)]
        unsafe fn NonMaskableInt() {
            if !$crate::stm32l4::clear_model_ecc_error() {
                #[allow(clippy::empty_loop)]
                loop {}
            }
        }
    };
}
