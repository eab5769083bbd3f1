//! A/B model slots through the CLI (issue 16): `export --slot` writes a slot
//! image the core's selection boots, at the slot's address in the HEX;
//! `flash --dry-run` plans the inactive slot and the next sequence from a
//! dump of the partition. No training: a tiny hand-written language-model
//! checkpoint (as in bad_cli.rs) and the golden classifier of the fuzz corpus.

mod common;

use std::path::{Path, PathBuf};

use common::{bin, run};
use tinyinfer::link::slots::{select, Slot, Source};
use tinyinfer_tools::common::blob::AlignedBlob;
use tinyinfer_tools::common::slots::FLASH_PAGE;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tinyinfer-slots-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const TINY_LM: &str = r#"{"family":"language","level":"char","vocab":["a","b"],"emb_dim":1,
    "embedding":[0.1,0.2],
    "layers":[{"input":1,"hidden":1,"w_ih":[0.1,0.2,0.3,0.4],"w_hh":[0.5,0.6,0.7,0.8],"bias":[0,0,0,0]}],
    "head":{"kind":"softmax","k":1,"proj_w":[0.5],"proj_b":[0.0],"prior_w":[],"prior_b":[],"dec_b":[0.0,0.1]}}"#;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn export_writes_a_slot_image_the_device_selects() {
    let d = scratch("export");
    let ckpt = d.join("lm.json");
    std::fs::write(&ckpt, TINY_LM).unwrap();
    let (tinf, hex, bin_path) = (d.join("lm.tinf"), d.join("lm-b.hex"), d.join("lm-b.bin"));
    run(&[
        "export",
        "--checkpoint",
        s(&ckpt),
        "--out",
        s(&tinf),
        "--slot",
        "b",
        "--sequence",
        "7",
        "--hex",
        s(&hex),
        "--slot-bin",
        s(&bin_path),
    ]);
    let blob = std::fs::read(&tinf).unwrap();
    let slot = std::fs::read(&bin_path).unwrap();
    assert_eq!(
        slot.len(),
        0x60000,
        "one 384 KB slot of the nRF52840 partition"
    );
    assert_eq!(&slot[..blob.len()], &blob[..]);
    // An erased slot A and this slot B: the device boots B, sequence 7.
    let mut part = vec![0xFF; 0x60000];
    part.extend_from_slice(&slot);
    let part = AlignedBlob::new(&part);
    let b = select(part.bytes(), FLASH_PAGE).unwrap();
    assert_eq!(
        (b.source, b.sequence, b.image),
        (Source::Slot(Slot::B), 7, &blob[..])
    );

    // The HEX: the model at slot B's address (0x40000 + 0x60000), the trailer at the slot's end.
    let text = std::fs::read_to_string(&hex).unwrap();
    let (mut upper, mut lo, mut hi) = (0u32, u32::MAX, 0u32);
    for rec in ihex::Reader::new(&text) {
        match rec.unwrap() {
            ihex::Record::ExtendedLinearAddress(h) => upper = (h as u32) << 16,
            ihex::Record::Data { offset, value } => {
                let a = upper + offset as u32;
                lo = lo.min(a);
                hi = hi.max(a + value.len() as u32);
            }
            _ => {}
        }
    }
    assert_eq!((lo, hi), (0xA0000, 0x100000));

    // Refused before anything is written: sequence 0, no slot output, a bad partition.
    for (args, expect) in [
        (
            vec!["--slot", "a", "--sequence", "0", "--hex", s(&hex)],
            "--sequence",
        ),
        (
            vec!["--slot", "a", "--sequence", "1"],
            "--slot needs --hex or --slot-bin",
        ),
        (
            vec![
                "--slot",
                "a",
                "--sequence",
                "1",
                "--hex",
                s(&hex),
                "--partition-len",
                "0x3000",
            ],
            "cannot hold two slots",
        ),
        (
            vec!["--slot", "c", "--sequence", "1", "--hex", s(&hex)],
            "expected a or b",
        ),
        (vec!["--sequence", "1"], "--slot"),
    ] {
        let out_path = d.join("refused.tinf");
        let out = bin()
            .args(["export", "--checkpoint", s(&ckpt), "--out", s(&out_path)])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && out.status.code() != Some(101),
            "{args:?}: {err}"
        );
        assert!(
            err.contains(expect),
            "{args:?}: stderr lacks {expect:?}:\n{err}"
        );
        assert!(!out_path.exists(), "{args:?} wrote a .tinf");
    }
}

#[cfg(feature = "flash")]
#[test]
fn flash_dry_run_plans_the_inactive_slot_from_a_dump() {
    use tinyinfer_tools::common::slots::SlotImage;
    let d = scratch("flash");
    let golden =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/crc_fixed/seed-golden-0");
    let blob = std::fs::read(&golden).unwrap();
    let plan = |dump: &[u8], extra: &[&str]| {
        let p = d.join("dump.bin");
        std::fs::write(&p, dump).unwrap();
        let out = bin()
            .args(["flash", s(&golden), "--dry-run", "--current", s(&p)])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let erased = vec![0xFF; 0xC0000];
    let (ok, err) = plan(&erased, &[]);
    assert!(ok, "{err}");
    assert!(err.contains("writing slot a with sequence 1"), "{err}");
    // Slot A holds sequence 4: B gets 5.
    let mut dump = erased.clone();
    let a = SlotImage::new(&blob, 0x40000, 0xC0000, Slot::A, 4).unwrap();
    dump[..0x60000].copy_from_slice(&a.bytes);
    let (ok, err) = plan(&dump, &[]);
    assert!(ok, "{err}");
    assert!(
        err.contains("now boots a (sequence 4); writing slot b with sequence 5"),
        "{err}"
    );
    // --slot a overwrites the active slot, and says so.
    let (ok, err) = plan(&dump, &["--slot", "a"]);
    assert!(ok, "{err}");
    assert!(err.contains("no fallback"), "{err}");
    // A dump of the wrong size is refused.
    let (ok, err) = plan(&dump[..4096], &[]);
    assert!(!ok && err.contains("expected 786432"), "{err}");
}

/// clap's own consistency checks (ids named in `requires`, `conflicts_with`,
/// `required_unless_present_any`) run only in debug builds of the CLI:
/// run them here on the commands whose flags the slots added.
#[test]
fn slot_flags_are_consistent() {
    use clap::{Args, Command};
    tinyinfer_tools::families::ExportArgs::augment_args(Command::new("export")).debug_assert();
    #[cfg(feature = "flash")]
    tinyinfer_tools::device::flash::FlashArgs::augment_args(Command::new("flash")).debug_assert();
    #[cfg(feature = "simulate")]
    tinyinfer_tools::device::simulate::SimulateArgs::augment_args(Command::new("simulate"))
        .debug_assert();
}
