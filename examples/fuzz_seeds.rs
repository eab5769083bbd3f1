//! Writes the fuzz seed corpus from the golden model: the model as is
//! (for `new_checked`) and with mode byte 1 (for `check_structure`).
//!
//! `cargo run --example fuzz_seeds`

#[path = "../tests/golden/tiny.rs"]
#[allow(dead_code)]
mod tiny;

fn main() {
    let dir = std::path::Path::new("fuzz/corpus/model");
    std::fs::create_dir_all(dir).unwrap();
    for mode in [0u8, 1] {
        let mut b = vec![mode];
        b.extend_from_slice(&tiny::MODEL.0);
        std::fs::write(dir.join(format!("seed-golden-{mode}")), b).unwrap();
    }
    println!("wrote seeds to {}", dir.display());
}
