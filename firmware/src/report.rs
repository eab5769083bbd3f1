//! The report: typed records for the host, defmt lines for people.
//!
//! Each function here sends one record of the core's
//! [`tinyinfer::link::report`] over the transport's report channel
//! ([`send`]: a semihosting file on QEMU) and logs the same facts over
//! defmt. `tinyinfer simulate` reads only the records, with the core's
//! parser; the log is free to change.

#[cfg(feature = "language")]
use tinyinfer::format::Level;
use tinyinfer::format::Model;
#[cfg(feature = "density")]
use tinyinfer::link::report::{Pixels, ScorePath, PIXELS_PER_FRAME};
use tinyinfer::link::report::{Record, ReportError};
#[cfg(feature = "language")]
use tinyinfer::link::report::{TokenIds, IDS_PER_FRAME, TEXT_PER_FRAME};
use tinyinfer::link::report::{Unit, VERSION};
#[cfg(feature = "language")]
use tinyinfer::models::LanguageModel;
use tinyinfer::models::{Classifier, SelfTestReport};
#[cfg(feature = "density")]
use tinyinfer::models::{DensityModel, Nll};

use crate::eval::{EvalReport, LinkError};
#[cfg(feature = "language")]
use crate::language;
use crate::{mem, BoardInfo, Outcome};

/// Sends `r` over the transport's report channel: the semihosting report
/// file on QEMU ([`crate::semihosted::send_record`]); on RTT boards
/// [`crate::rtt::send_record`].
///
/// Inlined, so that each caller stores only its own record's words and
/// calls the core's one encoder ([`Record::emit_to`]).
#[inline(always)]
pub fn send(r: &Record<'_>) {
    r.emit_to(sent);
}

fn sent(frame: Result<&[u8], ReportError>) {
    match frame {
        Ok(f) => transport_send(f),
        // The callers keep every record within its limits.
        Err(_) => defmt::error!("report: a record too long for its frame was not sent"),
    }
}

#[cfg(feature = "semihosting")]
fn transport_send(frame: &[u8]) {
    crate::semihosted::send_record(frame)
}

#[cfg(feature = "rtt")]
fn transport_send(frame: &[u8]) {
    crate::rtt::send_record(frame)
}

/// First record and line: which app, board, memory map, partition and arena.
pub fn boot(board: BoardInfo, partition: &[u8], arena: usize, unit: Unit, units: &'static str) {
    send(&Record::Boot {
        version: VERSION,
        unit,
        partition_address: partition.as_ptr() as u32,
        partition_bytes: partition.len() as u32,
        arena_bytes: arena as u32,
        board: board.name,
        memory_map: board.memory_map,
    });
    defmt::info!(
        "tinyinfer-firmware {=str} on {=str} (memory map {=str}): MODEL partition {=u32} bytes at {=u32:#x}, static arena {=u32} bytes, counting {=str}",
        env!("CARGO_PKG_VERSION"),
        board.name,
        board.memory_map,
        partition.len() as u32,
        partition.as_ptr() as u32,
        arena as u32,
        units
    );
}

/// The checked model.
pub fn model(c: &Classifier<'_>) {
    let m = c.model();
    let (bytes, ops, arena) = (
        m.as_bytes().len() as u32,
        m.op_count() as u32,
        m.arena_len() as u32,
    );
    let cases = m.selftest().map_or(0, |s| s.count()) as u32;
    send(&Record::Classifier {
        bytes,
        ops,
        macs: m.macs(),
        arena_bytes: arena,
        input_bytes: c.input_len() as u32,
        classes: c.classes() as u32,
        selftest_cases: cases,
    });
    defmt::info!(
        "model: {=u32} bytes, {=u32} ops, {=u64} MACs, arena {=u32} bytes, input {=u32} bytes, {=u32} classes, {=u32} self-test cases",
        bytes,
        ops,
        m.macs(),
        arena,
        c.input_len() as u32,
        c.classes() as u32,
        cases
    );
}

/// Self-test result and the counts it took.
pub fn selftest(r: &SelfTestReport, counts: u32, unit: &'static str) {
    send(&Record::SelfTest {
        passed: r.passed,
        total: r.total,
        counts,
        first_failure: r.first_failure,
    });
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
    send(&Record::NoSelfTest);
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

/// Per-layer and total counts of one inference.
pub fn benchmark(m: &Model<'_>, counts: &[u32], total: u32, unit: &'static str) {
    for (i, &n) in counts.iter().enumerate() {
        let Some(op) = m.op(i) else { continue };
        let (Some(ti), Some(to)) = (m.tensor(op.input as usize), m.tensor(op.output as usize))
        else {
            continue;
        };
        let macs = m.op_macs(&op);
        send(&Record::Layer {
            index: i as u16,
            op: op.kind,
            input: [ti.h, ti.w, ti.c],
            output: [to.h, to.w, to.c],
            counts: n,
            macs,
        });
        defmt::info!(
            "layer {=u32} {=str} {=u16}x{=u16}x{=u16} -> {=u16}x{=u16}x{=u16}: {=u32} {=str}, {=u64} MACs",
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
        );
    }
    let macs = m.macs();
    send(&Record::Inference {
        counts: total,
        macs,
    });
    defmt::info!("inference: {=u32} {=str}, {=u64} MACs", total, unit, macs,);
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
    send(&Record::Memory {
        static_bytes: r.static_bytes,
        arena_bytes: arena as u32,
        stack_high_water_bytes: r.stack_high_water_bytes,
        stack_region_bytes: r.stack_region_bytes,
    });
    defmt::info!(
        "ram: static {=u32} bytes (arena {=u32}), stack high-water {=u32} of {=u32} bytes",
        r.static_bytes,
        arena as u32,
        r.stack_high_water_bytes,
        r.stack_region_bytes
    );
}

/// Last record and line: the outcome and its exit status.
pub fn done(o: &Outcome) {
    send(&Record::Done {
        status: o.code(),
        error: match o {
            Outcome::Model(e) => Some(*e),
            _ => None,
        },
    });
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
    let cases = m.selftest().map_or(0, |s| s.count()) as u32;
    send(&Record::DensityModel {
        bytes: m.as_bytes().len() as u32,
        ops: m.op_count() as u32,
        macs: m.macs(),
        arena_bytes: m.arena_len() as u32,
        streaming_arena_bytes: d.sample_arena_len() as u32,
        height: h as u16,
        width: w as u16,
        selftest_cases: cases,
    });
    defmt::info!(
        "density model: {=u32} bytes, {=u32} ops, {=u64} MACs, arena {=u32} bytes, streaming arena {=u32} bytes, {=u32}x{=u32} pixels, {=u32} self-test cases",
        m.as_bytes().len() as u32,
        m.op_count() as u32,
        m.macs(),
        m.arena_len() as u32,
        d.sample_arena_len() as u32,
        h as u32,
        w as u32,
        cases
    );
}

/// The NLL of stored image `i` (in 2^-16 nats, exactly as the core sums it).
#[cfg(feature = "density")]
pub fn nll(i: usize, v: Nll, counts: u64, unit: &'static str, full: bool) {
    let path = match full {
        true => ScorePath::Full,
        false => ScorePath::Streaming,
    };
    send(&Record::Nll {
        image: i as u32,
        nll: v.0,
        counts,
        path,
    });
    defmt::info!(
        "score: image {=u32} nll {=u64} (2^-16 nats) in {=u64} {=str} on the {=str} path",
        i as u32,
        v.0,
        counts,
        unit,
        path.name()
    );
}

/// Counts of one image scored on the streaming path.
#[cfg(feature = "density")]
pub fn streaming(counts: u64, unit: &'static str) {
    send(&Record::Streaming { counts });
    defmt::info!(
        "score: streaming path {=u64} {=str} per image",
        counts,
        unit
    );
}

/// A sampled image: its pixels (as bits, in frames of
/// [`PIXELS_PER_FRAME`]), then the counts it took.
#[cfg(feature = "density")]
pub fn sample(seed: u64, image: &[u8], counts: u64, unit: &'static str) {
    for (k, part) in image.chunks(PIXELS_PER_FRAME).enumerate() {
        send(&Record::SampleBits {
            seed,
            offset: (k * PIXELS_PER_FRAME) as u32,
            pixels: Pixels::Bytes(part),
        });
    }
    let ones = image.iter().filter(|&&p| p == 1).count() as u32;
    send(&Record::Sample {
        seed,
        counts,
        ones,
        pixels: image.len() as u32,
    });
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
    send(&Record::SampleFull {
        pixels: pixels as u32,
        counts,
    });
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
    send(&Record::LmModel {
        level: s.level,
        head: s.head,
        k: s.k as u32,
        vocab: s.vocab as u32,
        emb_dim: s.emb_dim as u32,
        layers: s.layers().len() as u32,
        params: s.params(),
        macs_per_token: s.macs_per_token(),
        arena_bytes: lm.arena_len() as u32,
        firmware_arena_bytes: arena as u32,
    });
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
        send(&Record::LmLayer {
            index: i as u32,
            input: l.input as u32,
            hidden: l.hidden as u32,
        });
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
    send(&Record::LmRequest {
        seed: r.seed,
        tokens: r.tokens,
        prompt_bytes: r.prompt_len,
        from_host: r.from_host,
    });
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
    send(&Record::LmPrime {
        tokens: tokens as u32,
        counts,
    });
    defmt::info!(
        "lm prime: {=u32} tokens in {=u64} {=str}",
        tokens as u32,
        counts,
        unit
    );
}

/// Generated token ids, in order (at most [`IDS_PER_FRAME`]; not logged).
#[cfg(feature = "language")]
pub fn lm_tokens(ids: &[u16]) {
    send(&Record::LmTokens(TokenIds::Ids(ids)));
}

/// Generated text (at most [`TEXT_PER_FRAME`] bytes); a line when it ends
/// with a newline, else a tail (a full buffer, or the end).
#[cfg(feature = "language")]
pub fn lm_text(text: &str) {
    send(&Record::LmText(text));
    match text.strip_suffix('\n') {
        Some(line) => defmt::info!("lm line {=str}", line),
        None => defmt::info!("lm tail {=str}", text),
    }
}

/// Counts of the generation: sample + step per token.
#[cfg(feature = "language")]
pub fn lm_generated(tokens: u32, total: u64, min: u64, max: u64, unit: &'static str) {
    send(&Record::LmGenerated {
        tokens,
        total,
        min,
        max,
    });
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

#[cfg(feature = "language")]
const _: () = assert!(
    crate::language::IDS_PER_LINE <= IDS_PER_FRAME
        && crate::language::TEXT_PER_LINE <= TEXT_PER_FRAME
);
