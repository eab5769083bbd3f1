//! The `.tinf` model blob: a checked, zero-copy view over `&[u8]`.
//!
//! This module owns the byte layout and its checks. It must not run kernels
//! or touch the arena's contents; drivers in [`crate::models`] do that.
//!
//! # Layout (version 1, little-endian)
//!
//! ```text
//! offset  size  field
//! 0       4     magic "TINF"
//! 4       2     format version (1)
//! 6       1     model family (1 classifier, 2 language model, 3 density model)
//! 7       1     flags (must be 0 in version 1)
//! 8       4     total length in bytes, CRC trailer included, a multiple of 4
//! 12      4     arena bytes the model needs (exact)
//! 16      2     section count (≤ MAX_SECTIONS)
//! 18      14    reserved, zero
//! 32      12·n  section table: kind u16, reserved u16, offset u32, length u32
//! ...           sections, each starting on a 4-byte boundary
//! len−4   4     CRC-32 (ISO-HDLC, as zlib) of every byte before it
//! ```
//!
//! Sections: `TENSORS` (records of [`TensorRepr`]), `OPS` (records of
//! [`OpRepr`]), `DATA` (weights, biases and requantization parameters,
//! every array 4-byte aligned), the optional `SELFTEST` (inputs with the
//! outputs the host core computed for them), and `HEAD` (family-specific
//! output parameters: required for density models, see [`BernoulliHead`];
//! refused for classifiers).
//!
//! The buffer plan is the `arena_offset` of every tensor, decided by the
//! exporter; [`Model::new_checked`] verifies that it fits the arena and that
//! no tensor is overwritten while it is still to be read.
//!
//! # The promise
//!
//! Once [`Model::new_checked`] has returned `Ok`, no accessor of [`Model`]
//! panics or reads out of bounds, and every kernel call made by the drivers
//! receives slices of the lengths it expects, whatever the bytes were. Bytes
//! that fail any check give a typed [`Error`], never a panic. The tests flip
//! every byte and truncate at every length of a real exported model to hold
//! this, and `fuzz/` fuzzes the parser.
//!
//! And the converse: every model that [`Model::new_checked`] and its family
//! driver's `new` accept runs on **every** path of that driver (classify
//! and self-test; full, streaming and incremental NLL, logits and sampling;
//! step, log-prob, distribution, top-k and sampling) for every input in its
//! domain, without a panic or an arithmetic overflow, and the paths agree
//! where they should (streaming = full, incremental sampling = full
//! recomputation). Fixed-point products carry their bounds in comments
//! (`kernels/lm.rs`, `quant/nonlin.rs`, `models/language.rs`). Held by
//! `tests/density.rs` (short, tall and 1×1 images on every path),
//! `host-tools/src/families/language/core_tests.rs` (saturated and random extreme heads),
//! the debug and 32-bit (i686) runs of the core's tests, and the fuzz
//! target, which runs every driver path on what the checker accepts.

#[cfg(feature = "emit")]
mod emit;
mod lm;
mod repr;

#[cfg(feature = "emit")]
pub use emit::ModelRepr;
pub use lm::{
    ArenaPlan, Level, LmHead, LmLayer, LmSpec, Requant, Vocab, MAX_K, MAX_LAYERS, MAX_TOKEN_BYTES,
    MAX_VOCAB, MAX_WIDTH,
};
pub use repr::{Family, Mask, OpKind, OpRepr, SectionKind, TensorRepr};

use crate::quant;
use crate::{Error, Result};

#[cfg(target_endian = "big")]
compile_error!(
    "tinyinfer reads little-endian model data in place: big-endian targets are not supported"
);

/// The four bytes every model starts with.
pub const MAGIC: [u8; 4] = *b"TINF";
/// The format version this core reads and writes.
pub const VERSION: u16 = 1;
/// Header bytes before the section table.
pub const HEADER_LEN: usize = 32;
/// Bytes per section table entry.
pub const SECTION_ENTRY_LEN: usize = 12;
/// Bytes of the CRC trailer.
pub const CRC_LEN: usize = 4;
/// Most sections a model may have.
pub const MAX_SECTIONS: usize = 8;
/// Most tensors a model may have (tensor indices are one byte).
pub const MAX_TENSORS: usize = 64;
/// Most ops a model may have.
pub const MAX_OPS: usize = 64;
/// Longest dot product (conv `k·k·in_c`, dense `in_len`) accepted: with
/// `|bias| ≤ MAX_ABS_BIAS` the int32 accumulator cannot overflow.
pub const MAX_ACC_DEPTH: usize = 16384;
/// Largest `|bias|` accepted.
pub const MAX_ABS_BIAS: i32 = 1 << 30;
/// Largest spatial area a global average pool may sum over.
pub const MAX_POOL_AREA: usize = 1 << 16;
/// Offset value meaning "no data" in an op record.
pub const NONE: u32 = u32::MAX;

/// CRC-32/ISO-HDLC, the one zlib, PNG and Ethernet use.
pub const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Byte offsets of the header fields.
pub(crate) mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const VERSION: Range<usize> = 4..6;
    pub const FAMILY: usize = 6;
    pub const FLAGS: usize = 7;
    pub const TOTAL_LEN: Range<usize> = 8..12;
    pub const ARENA_LEN: Range<usize> = 12..16;
    pub const SECTION_COUNT: Range<usize> = 16..18;
    pub const RESERVED: Range<usize> = 18..32;
}

pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(s) => u16::from_le_bytes([s[0], s[1]]),
        None => 0,
    }
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

/// A checked model: header, sections and records verified.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    bytes: &'a [u8],
    family: Family,
    arena_len: u32,
    tensors: &'a [u8],
    ops: &'a [u8],
    data: &'a [u8],
    selftest: Option<&'a [u8]>,
    head: Option<&'a [u8]>,
    lm: Option<&'a [u8]>,
    vocab: Option<&'a [u8]>,
}

/// A section's bytes found in the table.
#[derive(Clone, Copy)]
struct Section {
    kind: u16,
    start: usize,
    end: usize,
}

impl<'a> Model<'a> {
    /// Checks `bytes` and returns a view whose accessors cannot panic.
    ///
    /// `bytes` may extend past the model (a whole flash partition): bytes
    /// after the declared length are ignored. `bytes` must start on a 4-byte
    /// boundary so weights and parameters can be read in place.
    ///
    /// # Errors
    /// A typed [`Error`] for the first check that fails: erased flash, magic,
    /// version, length, alignment, CRC, header fields, section table, tensor
    /// records, op records, data ranges and parameters, the buffer plan.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self> {
        let head = bytes.get(..4).ok_or(Error::TooShort)?;
        if head.iter().all(|&b| b == 0xFF) || head.iter().all(|&b| b == 0x00) {
            return Err(Error::Erased);
        }
        if bytes.len() < HEADER_LEN + CRC_LEN {
            return Err(Error::TooShort);
        }
        if bytes[field::MAGIC] != MAGIC {
            return Err(Error::BadMagic);
        }
        let version = u16_at(bytes, field::VERSION.start);
        if version != VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        let total = u32_at(bytes, field::TOTAL_LEN.start);
        if (total as usize) > bytes.len() || (total as usize) < HEADER_LEN + CRC_LEN {
            return Err(Error::LengthMismatch {
                declared: total,
                actual: bytes.len() as u32,
            });
        }
        let bytes = &bytes[..total as usize];
        if bytes.as_ptr() as usize % 4 != 0 {
            return Err(Error::Misaligned);
        }
        let body_end = bytes.len() - CRC_LEN;
        if CRC32.checksum(&bytes[..body_end]) != u32_at(bytes, body_end) {
            return Err(Error::BadChecksum);
        }
        Self::check_structure(bytes)
    }

    /// All checks of [`new_checked`](Self::new_checked) except the CRC and
    /// the erased-flash test: for fuzzing the structural checks, which a CRC
    /// would otherwise hide. `bytes` must be exactly the model.
    ///
    /// # Errors
    /// As [`new_checked`](Self::new_checked).
    pub fn check_structure(bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() < HEADER_LEN + CRC_LEN {
            return Err(Error::TooShort);
        }
        if bytes[field::MAGIC] != MAGIC {
            return Err(Error::BadMagic);
        }
        let version = u16_at(bytes, field::VERSION.start);
        if version != VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        let total = u32_at(bytes, field::TOTAL_LEN.start);
        if total as usize != bytes.len() || total % 4 != 0 {
            return Err(Error::LengthMismatch {
                declared: total,
                actual: bytes.len() as u32,
            });
        }
        if bytes.as_ptr() as usize % 4 != 0 {
            return Err(Error::Misaligned);
        }
        let family = Family::from_u8(bytes[field::FAMILY])
            .ok_or(Error::UnknownFamily(bytes[field::FAMILY]))?;
        if bytes[field::FLAGS] != 0 || bytes[field::RESERVED].iter().any(|&b| b != 0) {
            return Err(Error::BadHeader);
        }
        let arena_len = u32_at(bytes, field::ARENA_LEN.start);
        let count = u16_at(bytes, field::SECTION_COUNT.start) as usize;
        if count == 0 || count > MAX_SECTIONS {
            return Err(Error::BadHeader);
        }
        let table_end = HEADER_LEN + count * SECTION_ENTRY_LEN;
        let body_end = bytes.len() - CRC_LEN;
        if table_end > body_end {
            return Err(Error::BadHeader);
        }

        let mut found: [Option<Section>; MAX_SECTIONS] = [None; MAX_SECTIONS];
        for i in 0..count {
            let e = HEADER_LEN + i * SECTION_ENTRY_LEN;
            let kind = u16_at(bytes, e);
            let reserved = u16_at(bytes, e + 2);
            let start = u32_at(bytes, e + 4) as usize;
            let len = u32_at(bytes, e + 8) as usize;
            let bad = Error::BadSection(i as u16);
            if SectionKind::from_u16(kind).is_none()
                || reserved != 0
                || start % 4 != 0
                || start < table_end
            {
                return Err(bad);
            }
            let end = start.checked_add(len).ok_or(bad)?;
            if end > body_end {
                return Err(bad);
            }
            let s = Section { kind, start, end };
            for other in found.iter().flatten() {
                if other.kind == kind || (start < other.end && other.start < end) {
                    return Err(bad);
                }
            }
            found[i] = Some(s);
        }
        let get = |k: SectionKind| {
            found
                .iter()
                .flatten()
                .find(|s| s.kind == k as u16)
                .map(|s| &bytes[s.start..s.end])
        };
        let need = |k: SectionKind| get(k).ok_or(Error::MissingSection(k as u16));

        if family == Family::LanguageModel {
            return Self::check_language_model(bytes, family, arena_len, get);
        }
        for k in [SectionKind::Lm, SectionKind::Vocab] {
            if get(k).is_some() {
                return Err(Error::BadSection(k as u16));
            }
        }
        let model = Model {
            bytes,
            family,
            arena_len,
            tensors: need(SectionKind::Tensors)?,
            ops: need(SectionKind::Ops)?,
            data: need(SectionKind::Data)?,
            selftest: get(SectionKind::SelfTest),
            head: get(SectionKind::Head),
            lm: None,
            vocab: None,
        };
        model.check_records()?;
        model.check_family()?;
        if let Some(st) = model.selftest() {
            st.check(&model)?;
        }
        Ok(model)
    }

    /// A language model has no tensor graph: `DATA`, `LM` and `VOCAB`, and
    /// the arena its plan needs, exactly.
    fn check_language_model(
        bytes: &'a [u8],
        family: Family,
        arena_len: u32,
        get: impl Fn(SectionKind) -> Option<&'a [u8]>,
    ) -> Result<Self> {
        for k in [
            SectionKind::Tensors,
            SectionKind::Ops,
            SectionKind::SelfTest,
            SectionKind::Head,
        ] {
            if get(k).is_some() {
                return Err(Error::BadSection(k as u16));
            }
        }
        let need = |k: SectionKind| get(k).ok_or(Error::MissingSection(k as u16));
        let (data, lm, vocab) = (
            need(SectionKind::Data)?,
            need(SectionKind::Lm)?,
            need(SectionKind::Vocab)?,
        );
        let spec = LmSpec::parse(lm, data).ok_or(Error::BadSection(SectionKind::Lm as u16))?;
        Vocab::parse(vocab, spec.vocab).ok_or(Error::BadSection(SectionKind::Vocab as u16))?;
        if spec.plan().total != arena_len as usize {
            return Err(Error::BadHeader);
        }
        Ok(Model {
            bytes,
            family,
            arena_len,
            tensors: &[],
            ops: &[],
            data,
            selftest: None,
            head: None,
            lm: Some(lm),
            vocab: Some(vocab),
        })
    }

    /// The language-model spec, for a language model.
    pub fn lm_spec(&self) -> Option<LmSpec<'a>> {
        LmSpec::parse(self.lm?, self.data)
    }

    /// The token table, for a language model.
    pub fn vocab(&self) -> Option<Vocab<'a>> {
        // Word 1 of the checked LM section is V; no need to re-check the whole spec.
        Vocab::parse(self.vocab?, u32_at(self.lm?, 4) as usize)
    }

    fn check_records(&self) -> Result<()> {
        let tn = self.tensors.len() / TensorRepr::LEN;
        if self.tensors.len() % TensorRepr::LEN != 0 || tn == 0 || tn > MAX_TENSORS {
            return Err(Error::BadSection(SectionKind::Tensors as u16));
        }
        let on = self.ops.len() / OpRepr::LEN;
        if self.ops.len() % OpRepr::LEN != 0 || on == 0 || on > MAX_OPS {
            return Err(Error::BadSection(SectionKind::Ops as u16));
        }
        // The header's arena is exact: the end of the highest tensor. A
        // larger figure would make every caller reserve memory nothing uses.
        let mut end = 0u64;
        for i in 0..tn {
            let t = self.tensor(i).ok_or(Error::BadTensor(i as u16))?;
            t.check(self.arena_len)
                .map_err(|_| Error::BadTensor(i as u16))?;
            end = end.max(t.arena_offset as u64 + t.len_u64());
        }
        if end != self.arena_len as u64 {
            return Err(Error::BadHeader);
        }
        // Producer of every tensor (None: graph input), so that ops run in order.
        let mut produced = [false; MAX_TENSORS];
        produced[0] = true;
        for i in 0..on {
            let op = self.op(i).ok_or(Error::BadOp(i as u16))?;
            self.check_op(&op).map_err(|_| Error::BadOp(i as u16))?;
            let second_ok = op.kind != OpKind::Add || produced[op.input2() as usize];
            if !produced[op.input as usize] || !second_ok || produced[op.output as usize] {
                return Err(Error::BadGraph);
            }
            produced[op.output as usize] = true;
        }
        self.check_plan(tn, on)
    }

    /// What the family needs beyond a valid graph.
    fn check_family(&self) -> Result<()> {
        let head = Error::BadSection(SectionKind::Head as u16);
        match self.family {
            Family::Classifier | Family::LanguageModel => match self.head {
                Some(_) => Err(head),
                None => Ok(()),
            },
            Family::Density => {
                let bytes = self
                    .head
                    .ok_or(Error::MissingSection(SectionKind::Head as u16))?;
                BernoulliHead::parse(bytes).ok_or(head)?;
                let (i, o) = (self.input(), self.output());
                // Pixels are fed as their value: real = q (scale 1, zero point 0).
                let ok = i.c == 1
                    && i.zero_point == 0
                    && i.scale == 1.0
                    && (o.h, o.w, o.c) == (i.h, i.w, 1);
                ok.then_some(()).ok_or(Error::BadGraph)
            }
        }
    }

    /// The density head, when the model has a valid one.
    pub fn bernoulli_head(&self) -> Option<BernoulliHead<'a>> {
        BernoulliHead::parse(self.head?)
    }

    fn check_op(&self, op: &OpRepr) -> core::result::Result<(), ()> {
        let ti = self.tensor(op.input as usize).ok_or(())?;
        let to = self.tensor(op.output as usize).ok_or(())?;
        if op.input == op.output || op.act_min > op.act_max {
            return Err(());
        }
        // aux: byte 0 belongs to conv (mask) and add (second operand); the rest is zero.
        if op.aux[1..] != [0; 3]
            || (!matches!(op.kind, OpKind::Conv2d | OpKind::Add) && op.aux[0] != 0)
        {
            return Err(());
        }
        let (ih, iw, ic) = (ti.h as usize, ti.w as usize, ti.c as usize);
        let (oh, ow, oc) = (to.h as usize, to.w as usize, to.c as usize);
        let no_params = |op: &OpRepr| op.kernel == 0 && op.stride == 0 && op.pad == 0;
        match op.kind {
            OpKind::Conv2d => {
                let (k, s, p) = (op.kernel as usize, op.stride as usize, op.pad as usize);
                if k == 0 || s == 0 || p >= k {
                    return Err(());
                }
                let out_h = crate::kernels::reference::ConvParams::out_dim(ih, k, s, p);
                let out_w = crate::kernels::reference::ConvParams::out_dim(iw, k, s, p);
                if out_h != Some(oh) || out_w != Some(ow) || k * k * ic > MAX_ACC_DEPTH {
                    return Err(());
                }
                let mask = op.mask().ok_or(())?;
                // A causal conv keeps positions: odd kernel, stride 1, "same" padding.
                if mask != Mask::None && (k % 2 == 0 || s != 1 || p != k / 2) {
                    return Err(());
                }
                self.check_weighted(op, oc, k * k * ic)?;
                if mask != Mask::None {
                    let w = self.data_range(op.weights, oc * k * k * ic).ok_or(())?;
                    for (t, tap) in w.chunks_exact(ic).enumerate() {
                        let (ky, kx) = ((t / k) % k, t % k);
                        if !mask.allows(k, ky, kx) && tap.iter().any(|&b| b != 0) {
                            return Err(());
                        }
                    }
                }
                Ok(())
            }
            OpKind::Add => {
                let t2 = self.tensor(op.input2() as usize).ok_or(())?;
                let same = |t: &TensorRepr| (t.h, t.w, t.c) == (to.h, to.w, to.c);
                let ok = no_params(op)
                    && [op.weights, op.bias] == [NONE; 2]
                    && op.input2() != op.output
                    && same(&ti)
                    && same(&t2);
                if !ok {
                    return Err(());
                }
                self.check_requant(op.requant, 3)
            }
            OpKind::FullyConnected => {
                let depth = ti.len() as usize;
                if !no_params(op) || oh != 1 || ow != 1 || depth > MAX_ACC_DEPTH {
                    return Err(());
                }
                self.check_weighted(op, oc, depth)
            }
            OpKind::MaxPool2x2 => {
                let same_q =
                    ti.zero_point == to.zero_point && ti.scale.to_bits() == to.scale.to_bits();
                let ok = op.kernel == 2
                    && op.stride == 2
                    && op.pad == 0
                    && op.act_min == i8::MIN
                    && op.act_max == i8::MAX
                    && [op.weights, op.bias, op.requant] == [NONE; 3]
                    && same_q
                    && ih >= 2
                    && iw >= 2
                    && (oh, ow, oc) == (ih / 2, iw / 2, ic);
                ok.then_some(()).ok_or(())
            }
            OpKind::GlobalAvgPool => {
                let ok = no_params(op)
                    && [op.weights, op.bias] == [NONE; 2]
                    && (oh, ow, oc) == (1, 1, ic)
                    && ih * iw <= MAX_POOL_AREA;
                if !ok {
                    return Err(());
                }
                self.check_requant(op.requant, 1)
            }
        }
    }

    /// Weights `[out][depth]`, bias and per-channel requantization of a conv or dense op.
    fn check_weighted(
        &self,
        op: &OpRepr,
        out: usize,
        depth: usize,
    ) -> core::result::Result<(), ()> {
        self.data_range(op.weights, out * depth).ok_or(())?;
        let bias = self.data_i32(op.bias, out).ok_or(())?;
        if bias.iter().any(|b| b.unsigned_abs() > MAX_ABS_BIAS as u32) {
            return Err(());
        }
        self.check_requant(op.requant, out)
    }

    fn check_requant(&self, at: u32, n: usize) -> core::result::Result<(), ()> {
        let rq = self.data_i32(at, 2 * n).ok_or(())?;
        let (m, s) = rq.split_at(n);
        m.iter()
            .zip(s)
            .all(|(&m, &s)| quant::valid(m, s))
            .then_some(())
            .ok_or(())
    }

    /// Verifies the buffer plan: no op's output overwrites a tensor that is
    /// still to be read (its own input included), and the final output
    /// survives to the end.
    fn check_plan(&self, tn: usize, on: usize) -> Result<()> {
        // Last op index that reads each tensor; the graph output lives forever.
        let mut last_use = [0usize; MAX_TENSORS];
        let mut born = [usize::MAX; MAX_TENSORS];
        born[0] = 0;
        for i in 0..on {
            let op = self.op(i).ok_or(Error::BadOp(i as u16))?;
            last_use[op.input as usize] = last_use[op.input as usize].max(i);
            if op.kind == OpKind::Add {
                let b = op.input2() as usize;
                last_use[b] = last_use[b].max(i);
            }
            born[op.output as usize] = i;
        }
        let out = self.op(on - 1).ok_or(Error::BadGraph)?.output as usize;
        last_use[out] = usize::MAX;
        for j in 0..on {
            let op = self.op(j).ok_or(Error::BadOp(j as u16))?;
            let w = self.tensor(op.output as usize).ok_or(Error::BadGraph)?;
            for t in 0..tn {
                // Live at op j: born before j (or the input) and read at j or later.
                if t == op.output as usize
                    || born[t] == usize::MAX
                    || (t != 0 && born[t] >= j)
                    || last_use[t] < j
                {
                    continue;
                }
                let other = self.tensor(t).ok_or(Error::BadGraph)?;
                if w.overlaps(&other) {
                    return Err(Error::BadGraph);
                }
            }
        }
        Ok(())
    }

    /// `len` bytes of the data section at `at`, 4-byte aligned.
    fn data_range(&self, at: u32, len: usize) -> Option<&'a [u8]> {
        if at == NONE || at % 4 != 0 {
            return None;
        }
        self.data.get(at as usize..(at as usize).checked_add(len)?)
    }

    fn data_i32(&self, at: u32, n: usize) -> Option<&'a [i32]> {
        bytemuck::try_cast_slice(self.data_range(at, n.checked_mul(4)?)?).ok()
    }

    /// The model family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Exact arena bytes the model needs.
    pub fn arena_len(&self) -> usize {
        self.arena_len as usize
    }

    /// The model's bytes (without any trailing partition bytes).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Number of tensors.
    pub fn tensor_count(&self) -> usize {
        self.tensors.len() / TensorRepr::LEN
    }

    /// Number of ops.
    pub fn op_count(&self) -> usize {
        self.ops.len() / OpRepr::LEN
    }

    /// Tensor `i`, or None if out of range.
    pub fn tensor(&self, i: usize) -> Option<TensorRepr> {
        TensorRepr::parse(
            self.tensors
                .get(i.checked_mul(TensorRepr::LEN)?..)?
                .get(..TensorRepr::LEN)?,
        )
    }

    /// Op `i`, or None if out of range.
    pub fn op(&self, i: usize) -> Option<OpRepr> {
        OpRepr::parse(
            self.ops
                .get(i.checked_mul(OpRepr::LEN)?..)?
                .get(..OpRepr::LEN)?,
        )
    }

    /// The graph input: tensor 0.
    pub fn input(&self) -> TensorRepr {
        self.tensor(0).unwrap_or(TensorRepr::EMPTY)
    }

    /// The graph output: the last op's output tensor.
    pub fn output(&self) -> TensorRepr {
        self.op(self.op_count().wrapping_sub(1))
            .and_then(|op| self.tensor(op.output as usize))
            .unwrap_or(TensorRepr::EMPTY)
    }

    /// An op's int8 weights (empty when it has none).
    pub fn weights(&self, op: &OpRepr) -> &'a [i8] {
        let len = match op.kind {
            OpKind::Conv2d => {
                let (ti, to) = (
                    self.tensor(op.input as usize),
                    self.tensor(op.output as usize),
                );
                match (ti, to) {
                    // u16 · u8 · u8 · u16 < 2^48: may not fit a 32-bit usize
                    // for an op record that is not this model's.
                    (Some(ti), Some(to)) => [
                        to.c as usize,
                        op.kernel as usize,
                        op.kernel as usize,
                        ti.c as usize,
                    ]
                    .iter()
                    .try_fold(1usize, |a, &b| a.checked_mul(b))
                    .unwrap_or(usize::MAX),
                    _ => 0,
                }
            }
            OpKind::FullyConnected => match (
                self.tensor(op.input as usize),
                self.tensor(op.output as usize),
            ) {
                (Some(ti), Some(to)) => (ti.len() as usize).saturating_mul(to.c as usize),
                _ => 0,
            },
            _ => 0,
        };
        self.data_range(op.weights, len)
            .map(bytemuck::cast_slice)
            .unwrap_or(&[])
    }

    /// An op's int32 bias, one per output channel (empty when it has none).
    pub fn bias(&self, op: &OpRepr) -> &'a [i32] {
        let n = self.tensor(op.output as usize).map_or(0, |t| t.c as usize);
        self.data_i32(op.bias, n).unwrap_or(&[])
    }

    /// An op's requantization `(multipliers, shifts)`: one pair per output
    /// channel, or a single pair for pooling (empty when it has none).
    pub fn requant(&self, op: &OpRepr) -> (&'a [i32], &'a [i32]) {
        let n = match op.kind {
            OpKind::GlobalAvgPool => 1,
            OpKind::Add => 3,
            _ => self.tensor(op.output as usize).map_or(0, |t| t.c as usize),
        };
        self.data_i32(op.requant, 2 * n)
            .map(|s| s.split_at(n))
            .unwrap_or((&[], &[]))
    }

    /// The stored self-test, if the exporter included one.
    pub fn selftest(&self) -> Option<SelfTest<'a>> {
        self.selftest.map(|bytes| SelfTest { bytes })
    }

    /// Multiply-accumulates per inference.
    pub fn macs(&self) -> u64 {
        (0..self.op_count())
            .filter_map(|i| self.op(i))
            .map(|op| self.op_macs(&op))
            .sum()
    }

    /// Multiply-accumulates of one op.
    pub fn op_macs(&self, op: &OpRepr) -> u64 {
        let (Some(ti), Some(to)) = (
            self.tensor(op.input as usize),
            self.tensor(op.output as usize),
        ) else {
            return 0;
        };
        match op.kind {
            OpKind::Conv2d => {
                let k = op.kernel as usize;
                let mask = op.mask().unwrap_or(Mask::None);
                let taps = (0..k * k).filter(|t| mask.allows(k, t / k, t % k)).count();
                to.len() as u64 * taps as u64 * ti.c as u64
            }
            OpKind::FullyConnected => ti.len() as u64 * to.c as u64,
            _ => 0,
        }
    }
}

/// The output head of a density model: for every int8 logit code `q`
/// (index `q + 128`), the negative log-likelihood of a 1 and of a 0 in
/// units of 2⁻¹⁶ nats, and `P(1)` in units of 2⁻³² (saturated).
///
/// The exporter computes the tables from the logit tensor's scale and zero
/// point; the device only looks values up and adds integers, so host and
/// device agree on every nat.
///
/// Layout: `kind u32 (1 = Bernoulli logits)`, 12 reserved zero bytes, then
/// `nll_one[256]`, `nll_zero[256]`, `p_one[256]`, each `u32`.
#[derive(Clone, Copy, Debug)]
pub struct BernoulliHead<'a> {
    nll_one: &'a [u32],
    nll_zero: &'a [u32],
    p_one: &'a [u32],
}

impl<'a> BernoulliHead<'a> {
    /// The kind code of a Bernoulli-logit head.
    pub const KIND: u32 = 1;
    /// Bytes of the section.
    pub const LEN: usize = 16 + 3 * 256 * 4;
    /// Fixed-point units per nat of the NLL tables.
    pub const NLL_ONE: f64 = 65536.0;

    fn parse(b: &'a [u8]) -> Option<Self> {
        if b.len() != Self::LEN || u32_at(b, 0) != Self::KIND || b[4..16].iter().any(|&x| x != 0) {
            return None;
        }
        let t: &'a [u32] = bytemuck::try_cast_slice(&b[16..]).ok()?;
        let (nll_one, rest) = t.split_at(256);
        let (nll_zero, p_one) = rest.split_at(256);
        Some(BernoulliHead {
            nll_one,
            nll_zero,
            p_one,
        })
    }

    /// NLL of pixel value `bit` given logit code `q`, in 2⁻¹⁶ nats.
    #[inline]
    pub fn nll(&self, q: i8, bit: bool) -> u32 {
        let i = (q as i32 + 128) as usize;
        let t = if bit { self.nll_one } else { self.nll_zero };
        t.get(i).copied().unwrap_or(0)
    }

    /// `P(1)` for logit code `q`, in 2⁻³² units.
    #[inline]
    pub fn p_one(&self, q: i8) -> u32 {
        self.p_one
            .get((q as i32 + 128) as usize)
            .copied()
            .unwrap_or(0)
    }
}

/// Self-test cases stored by the exporter: inputs and the outputs the host
/// core produced for them.
///
/// Layout: `count u32, input_len u32, output_len u32, reserved u32`, then
/// `count` records of `input_len` input bytes followed by `output_len`
/// expected output bytes, each record padded to 4 bytes.
#[derive(Clone, Copy, Debug)]
pub struct SelfTest<'a> {
    bytes: &'a [u8],
}

impl<'a> SelfTest<'a> {
    /// Header bytes of the section.
    pub const HEADER_LEN: usize = 16;

    fn check(&self, model: &Model<'_>) -> Result<()> {
        let (count, il, ol) = (self.count(), self.input_len(), self.output_len());
        let ok = u32_at(self.bytes, 12) == 0
            && il == model.input().len() as usize
            && ol == model.output().len() as usize
            && self
                .record_len()
                .checked_mul(count)
                .and_then(|n| n.checked_add(Self::HEADER_LEN))
                == Some(self.bytes.len());
        ok.then_some(()).ok_or(Error::BadSelfTest)
    }

    /// Number of cases.
    pub fn count(&self) -> usize {
        u32_at(self.bytes, 0) as usize
    }

    /// Bytes of one input.
    pub fn input_len(&self) -> usize {
        u32_at(self.bytes, 4) as usize
    }

    /// Bytes of one expected output.
    pub fn output_len(&self) -> usize {
        u32_at(self.bytes, 8) as usize
    }

    fn record_len(&self) -> usize {
        (self
            .input_len()
            .saturating_add(self.output_len())
            .saturating_add(3))
            & !3
    }

    /// Case `i`: raw input bytes and the expected int8 output.
    pub fn case(&self, i: usize) -> Option<(&'a [u8], &'a [i8])> {
        let start = i
            .checked_mul(self.record_len())?
            .checked_add(Self::HEADER_LEN)?;
        let rec = self.bytes.get(start..)?;
        let input = rec.get(..self.input_len())?;
        let out = rec.get(self.input_len()..self.input_len().checked_add(self.output_len())?)?;
        Some((input, bytemuck::cast_slice(out)))
    }
}
