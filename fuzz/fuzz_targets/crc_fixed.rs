//! Structured mutation: the fuzzer mutates a model's bytes, the target
//! recomputes the CRC, and `new_checked` — the device's one entry point —
//! sees a blob whose checksum is right. Every check behind the CRC is
//! reached, and every accepted model runs on every path of its driver.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyinfer::format::Model;
use tinyinfer_fuzz::{aligned, fix_crc, run_every_path};

fuzz_target!(|data: &[u8]| {
    let mut b = data.to_vec();
    fix_crc(&mut b);
    let words = aligned(&b);
    let bytes = &bytemuck::cast_slice::<u32, u8>(&words)[..b.len()];
    if let Ok(model) = Model::new_checked(bytes) {
        run_every_path(model);
    }
});
