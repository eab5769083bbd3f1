//! The `.tinf` model blob: a checked, zero-copy view over `&[u8]`.
//!
//! This module owns the byte layout and its checks. It must not run kernels
//! or touch the arena's contents; drivers in [`crate::models`] do that.
//!
//! | file | owns |
//! | --- | --- |
//! | `mod.rs` | the header, the section table, [`Model`] and its [`Body`], the two entry points |
//! | `graph.rs` | the graph body: tensor/op record checks, the buffer-plan check, weight/bias/requant accessors |
//! | `lm.rs` | the LSTM body: the `LM` section ([`LmSpec`]) and the token table ([`Vocab`]) |
//! | `head.rs` | a density model's `HEAD` ([`BernoulliHead`]) |
//! | `selftest.rs` | the `SELFTEST` section ([`SelfTest`]) |
//! | `repr.rs` | records ([`TensorRepr`], [`OpRepr`]) and codes, with named field offsets |
//! | `emit.rs` | writing a blob ([`ModelRepr`], feature `emit`) |
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
//! outputs the host core computed for them; for a language model, prompts
//! with the core's top-k after them, see [`SelfTest`]), and `HEAD` (family-specific
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

mod crc;
#[cfg(feature = "emit")]
mod emit;
mod graph;
mod head;
mod lm;
mod repr;
mod selftest;

pub use crc::{Crc32, CRC32};
#[cfg(feature = "emit")]
pub use emit::ModelRepr;
pub use head::BernoulliHead;
pub use lm::{
    ArenaPlan, Level, LmHead, LmLayer, LmSpec, Requant, Shifts, Vocab, WeightLayout, WordRequant,
    LM_HEADER_WORDS, LM_LAYER_WORDS, LM_SPEC_VERSION, LOGIT_CHUNK, MAX_K, MAX_LAYERS, MAX_LM_BIAS,
    MAX_TOKEN_BYTES, MAX_VOCAB, MAX_WIDTH, VOCAB_SORTED_INDEX,
};
pub use repr::{ConvLayout, Family, Mask, OpKind, OpParts, OpRepr, SectionKind, TensorRepr};
pub use selftest::{LmCase, LmTop, SelfTest, LM_TOP_LEN, MAX_LM_PROMPT, MAX_LM_TOP};

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
    /// `DATA`: weights and parameters, for every family.
    data: &'a [u8],
    body: Body<'a>,
}

/// What a model's sections describe besides `DATA`: one of two shapes,
/// never a mix (the checker refuses the other shape's sections).
#[derive(Clone, Copy, Debug)]
pub enum Body<'a> {
    /// Classifiers and density models: a graph of tensor and op records
    /// (`TENSORS`, `OPS`), an optional `SELFTEST` and, for density models,
    /// the output `HEAD`. Read through [`Model::tensor`], [`Model::op`],
    /// [`Model::weights`], [`Model::selftest`], [`Model::bernoulli_head`].
    Graph(Graph<'a>),
    /// Language models: the fixed LSTM + head pipeline of the `LM` section,
    /// the token table (`VOCAB`) and an optional `SELFTEST`. Read through
    /// [`Model::lm_spec`], [`Model::vocab`] and [`Model::selftest`].
    Lstm(Lstm<'a>),
}

/// The checked sections of a graph body.
#[derive(Clone, Copy, Debug)]
pub struct Graph<'a> {
    tensors: &'a [u8],
    ops: &'a [u8],
    selftest: Option<&'a [u8]>,
    head: Option<&'a [u8]>,
}

impl Graph<'_> {
    const EMPTY: Graph<'static> = Graph {
        tensors: &[],
        ops: &[],
        selftest: None,
        head: None,
    };
}

/// The checked sections of an LSTM body.
#[derive(Clone, Copy, Debug)]
pub struct Lstm<'a> {
    lm: &'a [u8],
    vocab: &'a [u8],
    selftest: Option<&'a [u8]>,
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
        let bytes = Self::frame(bytes)?;
        let body_end = bytes.len() - CRC_LEN;
        if CRC32.checksum(&bytes[..body_end]) != u32_at(bytes, body_end) {
            return Err(Error::BadChecksum);
        }
        Self::check_contents(bytes)
    }

    /// All checks of [`new_checked`](Self::new_checked) except the CRC and
    /// the erased-flash test: for tests and fuzzing of the structural
    /// checks, which a CRC would otherwise hide. `bytes` must be exactly the
    /// model. (The `crc_fixed` fuzz target reaches the same checks through
    /// `new_checked` by recomputing the CRC.)
    ///
    /// # Errors
    /// As [`new_checked`](Self::new_checked).
    pub fn check_structure(bytes: &'a [u8]) -> Result<Self> {
        let model = Self::frame(bytes)?;
        if model.len() != bytes.len() {
            return Err(Error::LengthMismatch {
                declared: model.len() as u32,
                actual: bytes.len() as u32,
            });
        }
        Self::check_contents(model)
    }

    /// The frame both entry points check first: size, magic, version, the
    /// declared length within `bytes`, alignment. Returns the model's bytes.
    fn frame(bytes: &'a [u8]) -> Result<&'a [u8]> {
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
        Ok(bytes)
    }

    /// Everything behind the frame and the CRC: header fields, the section
    /// table, and the body of the family.
    fn check_contents(bytes: &'a [u8]) -> Result<Self> {
        // The total length is a header field of the format: a multiple of 4.
        if bytes.len() % 4 != 0 {
            return Err(Error::BadHeader);
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
            #[cfg(feature = "language")]
            return Self::check_language_model(bytes, family, arena_len, get);
            // Built without the language-model family (feature `language`):
            // its sections are not checked, so the model is refused.
            #[cfg(not(feature = "language"))]
            return Err(Error::WrongFamily);
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
            data: need(SectionKind::Data)?,
            body: Body::Graph(Graph {
                tensors: need(SectionKind::Tensors)?,
                ops: need(SectionKind::Ops)?,
                selftest: get(SectionKind::SelfTest),
                head: get(SectionKind::Head),
            }),
        };
        model.check_records()?;
        model.check_family()?;
        if let Some(st) = model.selftest() {
            st.check(&model)?;
        }
        Ok(model)
    }

    /// A language model has no tensor graph: `DATA`, `LM` and `VOCAB`, and
    /// the arena its plan needs, exactly ([`LmSpec::plan_for`]: the chunked
    /// plan, or the whole-vocabulary plan of blobs exported before it); an optional `SELFTEST` of prompts
    /// and top-k results ([`SelfTest::lm_case`]), every case checked.
    #[cfg(feature = "language")]
    fn check_language_model(
        bytes: &'a [u8],
        family: Family,
        arena_len: u32,
        get: impl Fn(SectionKind) -> Option<&'a [u8]>,
    ) -> Result<Self> {
        for k in [SectionKind::Tensors, SectionKind::Ops, SectionKind::Head] {
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
        if spec.plan_for(arena_len as usize).is_none() {
            return Err(Error::BadHeader);
        }
        let selftest = get(SectionKind::SelfTest);
        if let Some(bytes) = selftest {
            SelfTest { bytes }.check_lm(spec.vocab)?;
        }
        Ok(Model {
            bytes,
            family,
            arena_len,
            data,
            body: Body::Lstm(Lstm {
                lm,
                vocab,
                selftest,
            }),
        })
    }

    /// The language-model spec, for a language model.
    pub fn lm_spec(&self) -> Option<LmSpec<'a>> {
        match self.body {
            Body::Lstm(l) => LmSpec::parse(l.lm, self.data),
            Body::Graph(_) => None,
        }
    }

    /// The token table, for a language model.
    pub fn vocab(&self) -> Option<Vocab<'a>> {
        // Word 1 of the checked LM section is V; no need to re-check the whole spec.
        match self.body {
            Body::Lstm(l) => Vocab::parse(l.vocab, u32_at(l.lm, 4 * lm::word::VOCAB) as usize),
            Body::Graph(_) => None,
        }
    }

    /// The density head, when the model has a valid one.
    pub fn bernoulli_head(&self) -> Option<BernoulliHead<'a>> {
        match self.body {
            Body::Graph(g) => BernoulliHead::parse(g.head?),
            Body::Lstm(_) => None,
        }
    }

    /// The bytes of the section of `kind`, if the model has one (for tools
    /// that rewrite a blob; the typed accessors read the same bytes).
    pub fn section(&self, kind: SectionKind) -> Option<&'a [u8]> {
        let count = u16_at(self.bytes, field::SECTION_COUNT.start) as usize;
        (0..count)
            .map(|i| HEADER_LEN + i * SECTION_ENTRY_LEN)
            .find(|&e| u16_at(self.bytes, e) == kind as u16)
            .and_then(|e| {
                let at = u32_at(self.bytes, e + 4) as usize;
                let len = u32_at(self.bytes, e + 8) as usize;
                self.bytes.get(at..at.checked_add(len)?)
            })
    }

    /// The model's body: a graph, or the LSTM pipeline.
    pub fn body(&self) -> Body<'a> {
        self.body
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

    /// The stored self-test, if the exporter included one: graph inputs
    /// and outputs ([`SelfTest::case`]), or for a language model prompts
    /// and top-k results ([`SelfTest::lm_case`]).
    pub fn selftest(&self) -> Option<SelfTest<'a>> {
        match self.body {
            Body::Graph(g) => g.selftest,
            Body::Lstm(l) => l.selftest,
        }
        .map(|bytes| SelfTest { bytes })
    }
}
