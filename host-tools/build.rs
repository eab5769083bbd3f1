//! Compiles every memory map the firmware's board table (`firmware/boards.rs`)
//! names into `tinyinfer`, so that adding a board needs no line here: the
//! table's `memory_map` fields become the arms of `boards::memory_map`
//! (`$OUT_DIR/memory_maps.rs`, one `include_str!` per distinct file).

use std::path::PathBuf;
use std::{env, fs};

#[allow(dead_code)]
mod boards {
    include!("../firmware/boards.rs");
}

fn main() {
    let firmware = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../firmware");
    println!("cargo:rerun-if-changed=../firmware/boards.rs");
    let mut files: Vec<&str> = boards::BOARDS.iter().map(|b| b.memory_map).collect();
    files.sort_unstable();
    files.dedup();
    let mut arms = String::new();
    for f in files {
        let path = firmware.join(f);
        assert!(
            path.is_file(),
            "firmware/boards.rs names the memory map {f}, which firmware/ does not have"
        );
        println!("cargo:rerun-if-changed=../firmware/{f}");
        arms.push_str(&format!(
            "        {f:?} => include_str!({:?}),\n",
            path.display().to_string()
        ));
    }
    let code = format!(
        "/// The text of a memory map the board table names (compiled in; generated\n\
         /// by host-tools/build.rs from firmware/boards.rs).\n\
         pub fn memory_map(file: &str) -> Option<&'static str> {{\n    Some(match file {{\n{arms}        _ => return None,\n    }})\n}}\n"
    );
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("memory_maps.rs");
    fs::write(out, code).unwrap();
}
