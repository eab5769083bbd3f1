//! The report, as defmt lines of fixed shape.
//!
//! `tinyinfer simulate` decodes these with defmt-decoder and reads the
//! values back by each line's literal text (host-tools/src/device/simulate/report.rs):
//! change a format string here and change the parser there.

#[cfg(feature = "language")]
use tinyinfer::format::Level;
use tinyinfer::format::Model;
#[cfg(feature = "language")]
use tinyinfer::models::LanguageModel;
use tinyinfer::models::{Classifier, SelfTestReport};
#[cfg(feature = "density")]
use tinyinfer::models::{DensityModel, Nll};

use crate::eval::{EvalReport, LinkError};
#[cfg(feature = "language")]
use crate::language;
use crate::{mem, BoardInfo, Outcome};

/// First line: which app, board, memory map, partition and arena.
pub fn boot(board: BoardInfo, partition: &[u8], arena: usize, unit: &'static str) {
    defmt::info!(
        "tinyinfer-firmware {=str} on {=str} (memory map {=str}): MODEL partition {=u32} bytes at {=u32:#x}, static arena {=u32} bytes, counting {=str}",
        env!("CARGO_PKG_VERSION"),
        board.name,
        board.memory_map,
        partition.len() as u32,
        partition.as_ptr() as u32,
        arena as u32,
        unit
    );
}

/// The checked model.
pub fn model(c: &Classifier<'_>) {
    let m = c.model();
    defmt::info!(
        "model: {=u32} bytes, {=u32} ops, {=u64} MACs, arena {=u32} bytes, input {=u32} bytes, {=u32} classes, {=u32} self-test cases",
        m.as_bytes().len() as u32,
        m.op_count() as u32,
        m.macs(),
        m.arena_len() as u32,
        c.input_len() as u32,
        c.classes() as u32,
        m.selftest().map_or(0, |s| s.count()) as u32
    );
}

/// Self-test result and the counts it took.
pub fn selftest(r: &SelfTestReport, counts: u32, unit: &'static str) {
    defmt::info!(
        "selftest: {=u32}/{=u32} passed in {=u32} {=str}",
        r.passed,
        r.total,
        counts,
        unit
    );
    if let Some(i) = r.first_failure {
        defmt::error!("selftest: first failure at case {=u32}", i);
    }
}

/// The model stores no self-test.
pub fn no_selftest() {
    defmt::warn!("selftest: none stored in the model (export with --selftest N)");
}

/// The input buffer cannot hold one input.
pub fn input_too_large(needed: usize, have: usize) {
    defmt::error!(
        "input of {=u32} bytes exceeds the firmware's input buffer of {=u32} bytes",
        needed as u32,
        have as u32
    );
}

fn per(macs: u64, counts: u32) -> f32 {
    if counts == 0 {
        0.0
    } else {
        macs as f32 / counts as f32
    }
}

/// Per-layer and total counts of one inference.
pub fn benchmark(m: &Model<'_>, counts: &[u32], total: u32, unit: &'static str, one: &'static str) {
    for (i, &n) in counts.iter().enumerate() {
        let Some(op) = m.op(i) else { continue };
        let (Some(ti), Some(to)) = (m.tensor(op.input as usize), m.tensor(op.output as usize))
        else {
            continue;
        };
        let macs = m.op_macs(&op);
        defmt::info!(
            "layer {=u32} {=str} {=u16}x{=u16}x{=u16} -> {=u16}x{=u16}x{=u16}: {=u32} {=str}, {=u64} MACs, {=f32} MACs per {=str}",
            i as u32,
            op.kind.name(),
            ti.h,
            ti.w,
            ti.c,
            to.h,
            to.w,
            to.c,
            n,
            unit,
            macs,
            per(macs, n),
            one
        );
    }
    let macs = m.macs();
    defmt::info!(
        "inference: {=u32} {=str}, {=u64} MACs, {=f32} MACs per {=str}",
        total,
        unit,
        macs,
        per(macs, total),
        one
    );
}

/// Evaluation result.
pub fn eval(r: &EvalReport) {
    defmt::info!("eval: {=u32}/{=u32} correct", r.correct, r.images);
}

/// Evaluation (or a request) stopped on a link error.
pub fn host_error(e: LinkError) {
    defmt::error!("eval: host link error {}", e);
}

/// Static RAM and the stack's high-water mark (measured now, so call it last).
pub fn memory(arena: usize) {
    let r = mem::ram_use();
    defmt::info!(
        "ram: static {=u32} bytes (arena {=u32}), stack high-water {=u32} of {=u32} bytes",
        r.static_bytes,
        arena as u32,
        r.stack_high_water_bytes,
        r.stack_region_bytes
    );
}

/// Last line: the outcome and its exit status.
pub fn done(o: &Outcome) {
    match o {
        Outcome::Pass => defmt::info!("done: pass (exit status {=u8})", o.code()),
        Outcome::Model(e) => {
            defmt::error!("done: model refused: {} (exit status {=u8})", e, o.code())
        }
        _ => defmt::error!("done: {} (exit status {=u8})", o, o.code()),
    }
}

/// The checked density model.
#[cfg(feature = "density")]
pub fn density_model(d: &DensityModel<'_>) {
    let m = d.model();
    let (h, w) = d.shape();
    defmt::info!(
        "density model: {=u32} bytes, {=u32} ops, {=u64} MACs, arena {=u32} bytes, streaming arena {=u32} bytes, {=u32}x{=u32} pixels, {=u32} self-test cases",
        m.as_bytes().len() as u32,
        m.op_count() as u32,
        m.macs(),
        m.arena_len() as u32,
        d.sample_arena_len() as u32,
        h as u32,
        w as u32,
        m.selftest().map_or(0, |s| s.count()) as u32
    );
}

/// The NLL of stored image `i` (in 2^-16 nats, exactly as the core sums it).
#[cfg(feature = "density")]
pub fn nll(i: usize, v: Nll, counts: u64, unit: &'static str, full: bool) {
    defmt::info!(
        "score: image {=u32} nll {=u64} (2^-16 nats) in {=u64} {=str} on the {=str} path",
        i as u32,
        v.0,
        counts,
        unit,
        if full { "full" } else { "streaming" }
    );
}

/// Counts of one image scored on the streaming path.
#[cfg(feature = "density")]
pub fn streaming(counts: u64, unit: &'static str) {
    defmt::info!(
        "score: streaming path {=u64} {=str} per image",
        counts,
        unit
    );
}

/// A sampled image: one line per row (bit x = pixel x, rows up to 32 wide),
/// then the counts it took.
#[cfg(feature = "density")]
pub fn sample(seed: u64, image: &[u8], (h, w): (usize, usize), counts: u64, unit: &'static str) {
    if w <= 32 {
        for (y, row) in image.chunks(w).take(h).enumerate() {
            let bits = row
                .iter()
                .enumerate()
                .fold(0u32, |b, (x, &p)| b | (((p & 1) as u32) << x));
            defmt::info!(
                "sample: seed {=u64} row {=u32} bits {=u32}",
                seed,
                y as u32,
                bits
            );
        }
    } else {
        defmt::warn!("sample: rows wider than 32 pixels are not sent");
    }
    let ones = image.iter().filter(|&&p| p == 1).count() as u32;
    defmt::info!(
        "sample: seed {=u64} drawn incrementally in {=u64} {=str}, {=u32} ones",
        seed,
        counts,
        unit,
        ones
    );
}

/// The full-recomputation baseline of sampling.
#[cfg(feature = "density")]
pub fn sample_full(pixels: usize, counts: u64, unit: &'static str) {
    defmt::info!(
        "sample: full recomputation of {=u32} pixels in {=u64} {=str}",
        pixels as u32,
        counts,
        unit
    );
}

/// The checked language model and the arena it needs of the firmware's.
#[cfg(feature = "language")]
pub fn lm_model(lm: &LanguageModel<'_>, arena: usize) {
    let s = lm.spec();
    defmt::info!(
        "lm model: {=str} level, vocab {=u32}, d {=u32}, {=u32} LSTM layers, head {=str} K {=u32}, {=u64} params, {=u64} MACs per token, arena {=u32} bytes needed of {=u32}",
        match s.level {
            Level::Char => "char",
            Level::Word => "word",
        },
        s.vocab as u32,
        s.emb_dim as u32,
        s.layers().len() as u32,
        s.head.name(),
        s.k as u32,
        s.params(),
        s.macs_per_token(),
        lm.arena_len() as u32,
        arena as u32
    );
    for (i, l) in s.layers().iter().enumerate() {
        defmt::info!(
            "lm layer {=u32}: LSTM {=u32} -> {=u32}",
            i as u32,
            l.input as u32,
            l.hidden as u32
        );
    }
}

/// What the device generates.
#[cfg(feature = "language")]
pub fn lm_request(r: &language::Request) {
    defmt::info!(
        "lm request: seed {=u64}, {=u32} tokens, prompt of {=u32} bytes ({=str})",
        r.seed,
        r.tokens,
        r.prompt_len,
        if r.from_host {
            "from the host"
        } else {
            "default"
        }
    );
}

/// The prompt has text without a token (or is not UTF-8) at byte `at`.
#[cfg(feature = "language")]
pub fn lm_bad_prompt(at: u32) {
    defmt::error!("lm prompt: no token for the text at byte {=u32}", at);
}

/// Priming: tokens fed (the start token included) and their counts.
#[cfg(feature = "language")]
pub fn lm_prime(tokens: usize, counts: u64, unit: &'static str) {
    defmt::info!(
        "lm prime: {=u32} tokens in {=u64} {=str}",
        tokens as u32,
        counts,
        unit
    );
}

/// Generated token ids, in order (up to 16 a line).
#[cfg(feature = "language")]
pub fn lm_tokens(ids: &[u16]) {
    defmt::info!("lm tokens {=[?]}", ids);
}

/// Generated text followed by a newline (not sent).
#[cfg(feature = "language")]
pub fn lm_line(text: &str) {
    defmt::info!("lm line {=str}", text);
}

/// Generated text not followed by a newline.
#[cfg(feature = "language")]
pub fn lm_tail(text: &str) {
    defmt::info!("lm tail {=str}", text);
}

/// Counts of the generation: sample + step per token.
#[cfg(feature = "language")]
pub fn lm_generated(tokens: u32, total: u64, min: u64, max: u64, unit: &'static str) {
    defmt::info!(
        "lm generate: {=u32} tokens in {=u64} {=str}, per token mean {=u64}, min {=u64}, max {=u64}",
        tokens,
        total,
        unit,
        total / u64::from(tokens.max(1)),
        min,
        max
    );
}
