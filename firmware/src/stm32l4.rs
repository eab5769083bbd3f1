//! STM32L4R/L4S flash ECC, for boards with that chip (the NUCLEO-L4R5ZI):
//! the NMI a double-bit ECC error raises.
//!
//! The chip's flash stores 64-bit double words with ECC. A flash write cut
//! inside one double-word program or page erase (`tinyinfer flash` through
//! a probe, docs/reliability.md, "What a cut inside one operation does")
//! can leave a double word whose read is a double-bit ECC error: FLASH_ECCR's
//! ECCD is set and an NMI raised. [`stm32l4_ecc_nmi!`](crate::stm32l4_ecc_nmi)
//! defines the handler: for an error inside the MODEL partition it clears
//! ECCD and returns, so the read completes with data that fails the slot's
//! checks (magic, CRCs) and the other slot boots; an error outside the
//! partition (the app's code or data) and any other NMI stop, as the
//! default handler would. Not tried on a chip: that the faulting read
//! completes, rather than raising the NMI again, is our reading of RM0432.
#![allow(unsafe_code)]

use crate::{mem, mmio};

/// FLASH_ECCR (RM0432): ADDR_ECC (bits 0..=20), the failing double word's
/// offset in its bank; BK_ECC (bit 21), the bank; ECCD (bit 31, write 1 to
/// clear), a double-bit error.
const FLASH_ECCR: usize = 0x4002_2018;
const ECCD: u32 = 1 << 31;
const FLASH_BASE: usize = 0x0800_0000;
/// A bank in dual-bank mode (the mode `tinyinfer flash` writes).
const BANK_LEN: usize = 1 << 20;

/// Called from the NMI: clears a double-bit ECC error in the MODEL
/// partition and returns true; false for anything else (ECCD left as is).
pub fn clear_model_ecc_error() -> bool {
    // SAFETY: FLASH_ECCR is an STM32L4R/L4S register without read side
    // effects; only this function touches it.
    let eccr = unsafe { mmio::read(FLASH_ECCR) };
    let at = FLASH_BASE + ((eccr >> 21) & 1) as usize * BANK_LEN + (eccr & 0x1F_FFFF) as usize;
    let model = mem::model_partition().as_ptr_range();
    if eccr & ECCD == 0 || !(model.start as usize..model.end as usize).contains(&at) {
        return false;
    }
    // SAFETY: as above; writing ECCD alone clears that flag (ECCC, bit 30,
    // written 0, stays; ECCIE, bit 24, is 0 from reset and stays 0).
    unsafe { mmio::write(FLASH_ECCR, ECCD) };
    true
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
