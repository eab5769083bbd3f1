//! Fuzzes the model checker and the drivers behind it (classifier, density,
//! language model) with raw bytes.
//!
//! The CRC would reject almost every mutation before the structural checks
//! run, so the first byte of the input selects the path: odd runs
//! `check_structure` (no CRC), even runs `new_checked` on the rest. The
//! `crc_fixed` target reaches the same checks through `new_checked`.
//!
//! Every input is also read as a MODEL partition of A/B slots
//! (`link::slots::select`, pages of 32 to 4096 bytes picked by the mode
//! byte's upper bits): the selection must not panic, and what it boots must
//! pass the core's full check and run on every path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyinfer::format::Model;
use tinyinfer::link::slots;
use tinyinfer_fuzz::{aligned, run_every_path};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let words = aligned(rest);
    let bytes = &bytemuck::cast_slice::<u32, u8>(&words)[..rest.len()];
    let model = if mode & 1 == 1 {
        Model::check_structure(bytes)
    } else {
        Model::new_checked(bytes)
    };
    let checked_whole = mode & 1 == 0 && model.is_ok();
    if let Ok(model) = model {
        run_every_path(model);
    }
    if let Ok(boot) = slots::select(bytes, 32 << ((mode >> 1) % 8)) {
        let model = Model::new_checked(boot.image).expect("a booted slot passes the checker");
        // A slot A or legacy image at the start is the model just run.
        if !(checked_whole && boot.image.as_ptr() == bytes.as_ptr()) {
            run_every_path(model);
        }
    }
});
