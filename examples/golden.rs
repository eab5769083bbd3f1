//! Generates `tests/golden/tiny.rs`: a small deterministic classifier that
//! uses every op (conv 3×3 stride 1 with ReLU, max pool, conv stride 2 with
//! padding, global average pool, fully connected, odd channel counts), four
//! inputs, and the int8 outputs computed by the independent wide-integer
//! statement of the kernels in `tests/common/wide.rs` (not by the core).
//!
//! ```text
//! cargo run --example golden --features emit            # rewrite the file
//! cargo run --example golden --features emit -- --check # fail if it differs
//! ```

#[path = "../tests/common/wide.rs"]
mod wide;

use std::fmt::Write;

use tinyinfer::format::{Family, ModelRepr, OpKind, OpRepr, TensorRepr};

const OUT: &str = "tests/golden/tiny.rs";

/// xorshift64*: a fixed, dependency-free stream of test values.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn i8(&mut self) -> i8 {
        (self.next() >> 56) as i8
    }
    fn range(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next() % (hi - lo + 1) as u64) as i32
    }
}

fn pad4(v: &mut Vec<u8>) -> u32 {
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v.len() as u32
}

fn push_i32(data: &mut Vec<u8>, v: &[i32]) -> u32 {
    let at = pad4(data);
    data.extend(v.iter().flat_map(|x| x.to_le_bytes()));
    at
}

fn push_i8(data: &mut Vec<u8>, v: &[i8]) -> u32 {
    let at = pad4(data);
    data.extend(v.iter().map(|&x| x as u8));
    at
}

struct Layer {
    w: Vec<i8>,
    b: Vec<i32>,
    m: Vec<i32>,
    s: Vec<i32>,
}

fn layer(rng: &mut Rng, out: usize, depth: usize, shift: i32) -> Layer {
    Layer {
        w: (0..out * depth)
            .map(|_| rng.i8().clamp(-127, 127))
            .collect(),
        b: (0..out).map(|_| rng.range(-3000, 3000)).collect(),
        m: (0..out).map(|_| rng.range(1 << 30, i32::MAX)).collect(),
        s: vec![shift; out],
    }
}

fn main() {
    let check = std::env::args().any(|a| a == "--check");
    let mut rng = Rng(0x7469_6e79_696e_6665); // "tinyinfe"

    // Shapes: 6x6x1 → conv3x3/1 relu → 6x6x5 → maxpool → 3x3x5 → conv3x3/2 pad1 → 2x2x7 → gap → 1x1x7 → fc → 1x1x3
    let shapes = [
        (6, 6, 1),
        (6, 6, 5),
        (3, 3, 5),
        (2, 2, 7),
        (1, 1, 7),
        (1, 1, 3),
    ];
    let zps = [-128, -20, -20, 5, -3, 7];
    let c1 = layer(&mut rng, 5, 9, -8);
    let c2 = layer(&mut rng, 7, 45, -9);
    let gap_q = (rng.range(1 << 30, i32::MAX), -2);
    let fc = layer(&mut rng, 3, 7, -8);

    let mut data = Vec::new();
    let mut ops = Vec::new();
    let mut op = OpRepr::new(OpKind::Conv2d, 0, 1);
    (op.kernel, op.stride, op.pad, op.act_min) = (3, 1, 1, zps[1] as i8);
    op.weights = push_i8(&mut data, &c1.w);
    op.bias = push_i32(&mut data, &c1.b);
    op.requant = push_i32(&mut data, &[c1.m.clone(), c1.s.clone()].concat());
    ops.push(op);
    let mut op = OpRepr::new(OpKind::MaxPool2x2, 1, 2);
    (op.kernel, op.stride) = (2, 2);
    ops.push(op);
    let mut op = OpRepr::new(OpKind::Conv2d, 2, 3);
    (op.kernel, op.stride, op.pad) = (3, 2, 1);
    op.weights = push_i8(&mut data, &c2.w);
    op.bias = push_i32(&mut data, &c2.b);
    op.requant = push_i32(&mut data, &[c2.m.clone(), c2.s.clone()].concat());
    ops.push(op);
    let mut op = OpRepr::new(OpKind::GlobalAvgPool, 3, 4);
    op.requant = push_i32(&mut data, &[gap_q.0, gap_q.1]);
    ops.push(op);
    let mut op = OpRepr::new(OpKind::FullyConnected, 4, 5);
    op.weights = push_i8(&mut data, &fc.w);
    op.bias = push_i32(&mut data, &fc.b);
    op.requant = push_i32(&mut data, &[fc.m.clone(), fc.s.clone()].concat());
    ops.push(op);
    pad4(&mut data);

    // Buffer plan: alternate bottom and top of the arena.
    let lens: Vec<u32> = shapes.iter().map(|&(h, w, c)| (h * w * c) as u32).collect();
    let arena = lens.windows(2).map(|w| w[0] + w[1]).max().unwrap();
    let tensors: Vec<TensorRepr> = shapes
        .iter()
        .enumerate()
        .map(|(i, &(h, w, c))| TensorRepr {
            h: h as u16,
            w: w as u16,
            c: c as u16,
            zero_point: zps[i],
            scale: 0.05 * [1, 2, 2, 3, 4, 5][i] as f32, // max pool keeps its input quantization
            arena_offset: if i % 2 == 0 { 0 } else { arena - lens[i] },
        })
        .collect();
    let repr = ModelRepr {
        family: Family::Classifier,
        arena_len: arena,
        tensors: &tensors,
        ops: &ops,
        data: &data,
        selftest: None,
        head: None,
        lm: None,
        vocab: None,
    };
    let mut blob = vec![0u8; repr.buffer_len()];
    repr.emit(&mut blob).unwrap();

    // Inputs: dark, bright, a gradient and noise.
    let mut inputs: Vec<Vec<u8>> = vec![
        vec![0; 36],
        vec![255; 36],
        (0..36).map(|i| (i * 7) as u8).collect(),
    ];
    inputs.push((0..36).map(|_| rng.next() as u8).collect());
    let expected: Vec<Vec<i8>> = inputs
        .iter()
        .map(|px| {
            let x: Vec<i8> = px.iter().map(|&p| (p as i32 - 128) as i8).collect();
            let (_, _, a1) = wide::conv(
                shapes[0],
                5,
                3,
                1,
                1,
                &x,
                &c1.w,
                &c1.b,
                &c1.m,
                &c1.s,
                zps[0],
                zps[1],
                zps[1] as i8,
                127,
            );
            let a2 = wide::maxpool(shapes[1], &a1);
            let (_, _, a3) = wide::conv(
                shapes[2], 7, 3, 2, 1, &a2, &c2.w, &c2.b, &c2.m, &c2.s, zps[2], zps[3], -128, 127,
            );
            let a4 = wide::gap(shapes[3], &a3, gap_q.0, gap_q.1, zps[3], zps[4], -128, 127);
            wide::fc(&a4, &fc.w, &fc.b, &fc.m, &fc.s, zps[4], zps[5], -128, 127)
        })
        .collect();

    let mut s = String::new();
    writeln!(
        s,
        "// @generated by `cargo run --example golden --features emit`; do not edit."
    )
    .unwrap();
    writeln!(
        s,
        "// A 6x6x1 → 3-class model using every op; expected outputs from tests/common/wide.rs."
    )
    .unwrap();
    writeln!(s, "\n/// 4-byte aligned bytes, as flash partitions are.\n#[repr(C, align(4))]\npub struct Aligned<T: ?Sized>(pub T);\n").unwrap();
    writeln!(
        s,
        "/// The model blob ({} bytes, arena {} bytes).",
        blob.len(),
        arena
    )
    .unwrap();
    writeln!(
        s,
        "pub static MODEL: Aligned<[u8; {}]> = Aligned([",
        blob.len()
    )
    .unwrap();
    for row in blob.chunks(16) {
        writeln!(
            s,
            "    {}",
            row.iter()
                .map(|b| format!("0x{b:02x},"))
                .collect::<Vec<_>>()
                .join(" ")
        )
        .unwrap();
    }
    writeln!(
        s,
        "]);\n\n/// Exact arena bytes.\npub const ARENA: usize = {arena};\n"
    )
    .unwrap();
    writeln!(s, "/// Raw u8 pixels (6x6): dark, bright, gradient, noise.").unwrap();
    writeln!(s, "pub const INPUTS: [[u8; 36]; {}] = [", inputs.len()).unwrap();
    for i in &inputs {
        writeln!(s, "    {:?},", i).unwrap();
    }
    writeln!(
        s,
        "];\n\n/// int8 scores for each input.\npub const EXPECTED: [[i8; 3]; {}] = [",
        expected.len()
    )
    .unwrap();
    for e in &expected {
        writeln!(s, "    {:?},", e).unwrap();
    }
    writeln!(s, "];").unwrap();

    // Format as `cargo fmt` would, so the committed file stays formatted.
    let tmp = std::env::temp_dir().join(format!("tinyinfer-golden-{}.rs", std::process::id()));
    std::fs::write(&tmp, &s).unwrap();
    let ok = std::process::Command::new("rustfmt")
        .args(["--edition", "2021"])
        .arg(&tmp)
        .status();
    assert!(ok.is_ok_and(|s| s.success()), "rustfmt failed");
    let s = std::fs::read_to_string(&tmp).unwrap();
    let _ = std::fs::remove_file(&tmp);

    if check {
        let old = std::fs::read_to_string(OUT).unwrap_or_default();
        if old != s {
            eprintln!("{OUT} is stale: rerun `cargo run --example golden --features emit`");
            std::process::exit(1);
        }
        println!("{OUT} is up to date");
    } else {
        std::fs::write(OUT, s).unwrap();
        println!("wrote {OUT}");
    }
}
