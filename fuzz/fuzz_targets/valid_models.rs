//! Generates valid models from the fuzzer's bytes (classifiers, PixelCNN
//! density models and LSTM language models with extreme but legal
//! parameters and shapes), checks them, and runs every driver path with an exact arena, comparing full
//! with streaming and incremental with full (`tinyinfer_fuzz`).
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use tinyinfer::format::Model;
use tinyinfer_fuzz::{classifier_model, density_model, language_model, run_every_path};

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(family) = u.int_in_range(0u8..=2) else {
        return;
    };
    let words = match family {
        0 => classifier_model(&mut u),
        1 => density_model(&mut u),
        _ => language_model(&mut u),
    };
    let Ok(Some(words)) = words else { return };
    let bytes = bytemuck::cast_slice::<u32, u8>(&words);
    if let Ok(model) = Model::new_checked(bytes) {
        run_every_path(model);
    }
});
