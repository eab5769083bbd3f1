//! The device's report to the host, as typed binary records: what a run
//! found (slots, model, self-test, per-layer counts, RAM, scores, samples,
//! generated tokens, the outcome), emitted by the firmware and parsed by
//! `tinyinfer simulate` with this one definition. The firmware's defmt log
//! says the same for people; no program reads it.
//!
//! # Framing
//!
//! The report is a byte stream of self-delimiting frames, so it can travel
//! over any byte channel (a semihosting file on QEMU; see
//! docs/firmware.md for boards):
//!
//! | bytes | field |
//! | ---: | --- |
//! | 2 | sync `TR` |
//! | 1 | kind ([`Kind`]) |
//! | 1 | payload length `n` (at most [`MAX_PAYLOAD`]) |
//! | n | payload: the record's fields, little-endian, in declaration order |
//! | 4 | CRC-32 (`format::CRC32`, as the blob's) of the kind, length and payload |
//!
//! A stream starts with a [`Record::Boot`] carrying the protocol
//! [`VERSION`]; [`Reader`] refuses a stream without it, or of another
//! version. Every payload has an exact length (or an exact rule for its
//! tail), every code is checked: a truncated, corrupted or foreign stream
//! gives a typed [`ReportError`], never a panic and never a wrong record.
//!
//! This module only lays out records; the firmware decides when to send
//! them, the host what to make of them.

use crate::format::{Level, LmHead, OpKind, CRC32};
use crate::link::slots::{LayoutError, Slot, SlotError, SlotState, Source};
use crate::link::status::error_code;
use crate::Error;

/// Protocol version, in the first record of every stream.
pub const VERSION: u16 = 1;
/// The first two bytes of every frame.
pub const SYNC: [u8; 2] = *b"TR";
/// Sync, kind and length.
pub const HEADER_LEN: usize = 4;
/// The CRC after the payload.
pub const CRC_LEN: usize = 4;
/// Longest payload (its length is one byte).
pub const MAX_PAYLOAD: usize = 255;
/// Longest frame: a buffer this long holds any record.
pub const MAX_FRAME: usize = HEADER_LEN + MAX_PAYLOAD + CRC_LEN;
/// Pixels per [`Record::SampleBits`] frame (a bit each).
pub const PIXELS_PER_FRAME: usize = 8 * 128;
/// Token ids per [`Record::LmTokens`] frame.
pub const IDS_PER_FRAME: usize = 64;
/// Text bytes per [`Record::LmText`] frame.
pub const TEXT_PER_FRAME: usize = MAX_PAYLOAD;

/// Why a report could not be emitted or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReportError {
    /// A frame runs past the end of the bytes (the stream was cut short).
    Truncated {
        /// Offset of the frame.
        at: u32,
    },
    /// No sync bytes where a frame should start.
    BadSync {
        /// Offset of the frame.
        at: u32,
    },
    /// The frame's CRC does not match its bytes.
    BadCrc {
        /// Offset of the frame.
        at: u32,
    },
    /// A kind this version does not define.
    UnknownKind {
        /// Offset of the frame.
        at: u32,
        /// The kind byte.
        kind: u8,
    },
    /// The payload has the wrong length or an invalid field for its kind.
    BadPayload {
        /// Offset of the frame.
        at: u32,
        /// The kind byte.
        kind: u8,
    },
    /// The stream does not start with a `Boot` record.
    NoBoot,
    /// The stream is of another protocol version.
    UnsupportedVersion(u16),
    /// Emitting: the record does not fit the buffer, or its payload exceeds [`MAX_PAYLOAD`].
    TooLong,
}

impl core::fmt::Display for ReportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            ReportError::Truncated { at } => {
                write!(f, "report cut short in the frame at byte {at}")
            }
            ReportError::BadSync { at } => write!(f, "no report frame at byte {at} (bad sync)"),
            ReportError::BadCrc { at } => write!(f, "report frame at byte {at} fails its CRC"),
            ReportError::UnknownKind { at, kind } => {
                write!(f, "report frame at byte {at} has unknown kind {kind}")
            }
            ReportError::BadPayload { at, kind } => {
                write!(
                    f,
                    "report frame at byte {at} (kind {kind}) has a bad payload"
                )
            }
            ReportError::NoBoot => f.write_str("the report does not start with a boot record"),
            ReportError::UnsupportedVersion(v) => {
                write!(f, "report protocol version {v}, this build reads {VERSION}")
            }
            ReportError::TooLong => f.write_str("report record too long for its frame"),
        }
    }
}

impl core::error::Error for ReportError {}

/// What the device's counts count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Executed instructions (QEMU, `-icount shift=0`).
    Instructions = 0,
    /// CPU cycles (a board's DWT counter).
    Cycles = 1,
}

/// The path a density model scored on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScorePath {
    /// Whole-map kernels over the full buffer plan.
    Full = 0,
    /// Position by position over the ring of rows.
    Streaming = 1,
}

impl ScorePath {
    /// `"full"` or `"streaming"`.
    pub const fn name(self) -> &'static str {
        match self {
            ScorePath::Full => "full",
            ScorePath::Streaming => "streaming",
        }
    }
}

/// A sampled image's pixels (0 or 1): the device's bytes when emitting,
/// bits packed LSB first when parsed.
#[derive(Clone, Copy, Debug)]
pub enum Pixels<'a> {
    /// One byte per pixel; bit 0 is the pixel.
    Bytes(&'a [u8]),
    /// `len` pixels, a bit each, LSB first.
    Bits {
        /// The packed bits.
        bits: &'a [u8],
        /// Pixels.
        len: usize,
    },
}

impl Pixels<'_> {
    /// Pixels held.
    pub fn len(&self) -> usize {
        match *self {
            Pixels::Bytes(b) => b.len(),
            Pixels::Bits { len, .. } => len,
        }
    }

    /// No pixels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pixel `i` (0 or 1; 0 past the end).
    pub fn get(&self, i: usize) -> u8 {
        match *self {
            Pixels::Bytes(b) => b.get(i).map_or(0, |p| p & 1),
            Pixels::Bits { bits, len } if i < len => {
                bits.get(i / 8).map_or(0, |b| (b >> (i % 8)) & 1)
            }
            Pixels::Bits { .. } => 0,
        }
    }
}

impl PartialEq for Pixels<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.len() == o.len() && (0..self.len()).all(|i| self.get(i) == o.get(i))
    }
}

/// Token ids: the device's slice when emitting, little-endian pairs when parsed.
#[derive(Clone, Copy, Debug)]
pub enum TokenIds<'a> {
    /// The ids.
    Ids(&'a [u16]),
    /// Two bytes per id, little-endian.
    Le(&'a [u8]),
}

impl TokenIds<'_> {
    /// Ids held.
    pub fn len(&self) -> usize {
        match *self {
            TokenIds::Ids(v) => v.len(),
            TokenIds::Le(b) => b.len() / 2,
        }
    }

    /// No ids.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Id `i` (0 past the end).
    pub fn get(&self, i: usize) -> u16 {
        match *self {
            TokenIds::Ids(v) => v.get(i).copied().unwrap_or(0),
            TokenIds::Le(b) => b
                .get(2 * i..2 * i + 2)
                .map_or(0, |p| u16::from_le_bytes([p[0], p[1]])),
        }
    }

    /// The ids in order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl PartialEq for TokenIds<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.len() == o.len() && self.iter().eq(o.iter())
    }
}

/// One record of the report. Counts are in the stream's [`Unit`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Record<'a> {
    /// First record: the protocol version, what the counts count, the
    /// board and its memory map, the MODEL partition and the static arena.
    Boot {
        /// [`VERSION`] of the emitter.
        version: u16,
        /// What counts count.
        unit: Unit,
        /// MODEL partition address.
        partition_address: u32,
        /// MODEL partition bytes.
        partition_bytes: u32,
        /// The firmware's static arena.
        arena_bytes: u32,
        /// Board name (at most 64 bytes).
        board: &'a str,
        /// Linker memory map (at most 64 bytes).
        memory_map: &'a str,
    },
    /// One A/B slot's state.
    Slot {
        /// Which slot.
        slot: Slot,
        /// Valid with its sequence number, or why not.
        state: SlotState,
    },
    /// The image booted.
    Booting {
        /// A slot or a legacy blob.
        source: Source,
        /// Its sequence number (0: legacy).
        sequence: u32,
        /// Image bytes.
        bytes: u32,
    },
    /// The partition holds slots and neither is valid.
    NoValidModel,
    /// The checked classifier.
    Classifier {
        /// Blob bytes.
        bytes: u32,
        /// Ops.
        ops: u32,
        /// MACs per inference.
        macs: u64,
        /// The model's arena.
        arena_bytes: u32,
        /// Input bytes.
        input_bytes: u32,
        /// Classes.
        classes: u32,
        /// Self-test cases stored.
        selftest_cases: u32,
    },
    /// The self-test's result.
    SelfTest {
        /// Cases that matched the host core's outputs.
        passed: u32,
        /// Cases run.
        total: u32,
        /// Counts it took (wrapping at 2³²).
        counts: u32,
        /// The first case that differed.
        first_failure: Option<u32>,
    },
    /// The model stores no self-test.
    NoSelfTest,
    /// One layer of one benchmarked inference.
    Layer {
        /// Op index.
        index: u16,
        /// Op kind.
        op: OpKind,
        /// Input shape (h, w, c).
        input: [u16; 3],
        /// Output shape (h, w, c).
        output: [u16; 3],
        /// Counts of this layer.
        counts: u32,
        /// MACs of this layer.
        macs: u64,
    },
    /// The whole benchmarked inference.
    Inference {
        /// Counts.
        counts: u32,
        /// MACs.
        macs: u64,
    },
    /// RAM: statics and the stack's high-water mark.
    Memory {
        /// Statics (.data, .bss, .uninit), the arena included.
        static_bytes: u32,
        /// The static arena.
        arena_bytes: u32,
        /// Stack high-water mark.
        stack_high_water_bytes: u32,
        /// Stack region.
        stack_region_bytes: u32,
    },
    /// Last record: the exit status, and the model error behind it.
    Done {
        /// The status (`link::status`).
        status: u8,
        /// The core's error, when the model was refused or failed.
        error: Option<Error>,
    },
    /// The checked density model.
    DensityModel {
        /// Blob bytes.
        bytes: u32,
        /// Ops.
        ops: u32,
        /// MACs per scored image.
        macs: u64,
        /// The full plan's arena.
        arena_bytes: u32,
        /// The streaming arena (ring of rows).
        streaming_arena_bytes: u32,
        /// Image height.
        height: u16,
        /// Image width.
        width: u16,
        /// Self-test cases stored.
        selftest_cases: u32,
    },
    /// The NLL of stored image `image`.
    Nll {
        /// Self-test case index.
        image: u32,
        /// NLL in 2⁻¹⁶ nats, as the core sums it.
        nll: u64,
        /// Counts.
        counts: u64,
        /// The path it was scored on.
        path: ScorePath,
    },
    /// One image scored on the streaming path (when the full plan fits too).
    Streaming {
        /// Counts.
        counts: u64,
    },
    /// Pixels `offset..offset + pixels.len()` of the image sampled from `seed`.
    SampleBits {
        /// The image's seed.
        seed: u64,
        /// First pixel.
        offset: u32,
        /// At most [`PIXELS_PER_FRAME`] pixels.
        pixels: Pixels<'a>,
    },
    /// The image sampled from `seed` is complete (its bits came before).
    Sample {
        /// Its seed.
        seed: u64,
        /// Counts of incremental sampling.
        counts: u64,
        /// Pixels that are 1.
        ones: u32,
        /// Pixels.
        pixels: u32,
    },
    /// The full-recomputation baseline of sampling.
    SampleFull {
        /// Pixels timed.
        pixels: u32,
        /// Counts.
        counts: u64,
    },
    /// The checked language model.
    LmModel {
        /// Tokenisation level.
        level: Level,
        /// Head.
        head: LmHead,
        /// Mixture components.
        k: u32,
        /// Vocabulary size.
        vocab: u32,
        /// Embedding size.
        emb_dim: u32,
        /// LSTM layers (one [`Record::LmLayer`] each follows).
        layers: u32,
        /// Parameters.
        params: u64,
        /// MACs per token.
        macs_per_token: u64,
        /// The arena the model needs.
        arena_bytes: u32,
        /// The firmware's arena.
        firmware_arena_bytes: u32,
    },
    /// One LSTM layer.
    LmLayer {
        /// Layer index.
        index: u32,
        /// Input size.
        input: u32,
        /// Hidden size.
        hidden: u32,
    },
    /// What the device generates.
    LmRequest {
        /// PCG32 seed.
        seed: u64,
        /// Tokens.
        tokens: u32,
        /// Prompt bytes.
        prompt_bytes: u32,
        /// The host asked (false: the defaults).
        from_host: bool,
    },
    /// Priming: tokens fed (the start token included) and their counts.
    LmPrime {
        /// Tokens.
        tokens: u32,
        /// Counts.
        counts: u64,
    },
    /// Generated token ids, in order (at most [`IDS_PER_FRAME`]).
    LmTokens(TokenIds<'a>),
    /// Generated text, UTF-8, newlines included (at most [`TEXT_PER_FRAME`] bytes).
    LmText(&'a str),
    /// The generation's counts (sample + step per token).
    LmGenerated {
        /// Tokens.
        tokens: u32,
        /// Counts of all of them.
        total: u64,
        /// Fewest counts of one token.
        min: u64,
        /// Most counts of one token.
        max: u64,
    },
}

/// The kind byte of each record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Kind {
    Boot = 1,
    Slot = 2,
    Booting = 3,
    NoValidModel = 4,
    Classifier = 5,
    SelfTest = 6,
    NoSelfTest = 7,
    Layer = 8,
    Inference = 9,
    Memory = 10,
    Done = 11,
    DensityModel = 12,
    Nll = 13,
    Streaming = 14,
    SampleBits = 15,
    Sample = 16,
    SampleFull = 17,
    LmModel = 18,
    LmLayer = 19,
    LmRequest = 20,
    LmPrime = 21,
    LmTokens = 22,
    LmText = 23,
    LmGenerated = 24,
}

/// Longest board or memory-map name in a `Boot` record.
pub const MAX_NAME: usize = 64;

/// The variable part after a record's words: its length (or
/// [`ReportError::TooLong`] past its limit) and its bytes. Encoders take it
/// as `&dyn Tail`, so a firmware links only the tails it sends.
trait Tail {
    fn len(&self) -> Result<usize, ReportError>;
    /// Fills `out`, which is `len()` bytes long.
    fn write(&self, out: &mut [u8]);
}

fn within(n: usize, limit: usize) -> Result<usize, ReportError> {
    if n > limit {
        Err(ReportError::TooLong)
    } else {
        Ok(n)
    }
}

struct NoTail;

impl Tail for NoTail {
    fn len(&self) -> Result<usize, ReportError> {
        Ok(0)
    }
    fn write(&self, _: &mut [u8]) {}
}

impl Tail for &[u8] {
    fn len(&self) -> Result<usize, ReportError> {
        within(<[u8]>::len(self), MAX_PAYLOAD)
    }
    fn write(&self, out: &mut [u8]) {
        out.iter_mut().zip(self.iter()).for_each(|(d, s)| *d = *s);
    }
}

/// Two names, each at most [`MAX_NAME`] bytes, one after the other.
struct Names<'a>(&'a [u8], &'a [u8]);

impl Tail for Names<'_> {
    fn len(&self) -> Result<usize, ReportError> {
        Ok(within(self.0.len(), MAX_NAME)? + within(self.1.len(), MAX_NAME)?)
    }
    fn write(&self, out: &mut [u8]) {
        let bytes = self.0.iter().chain(self.1);
        out.iter_mut().zip(bytes).for_each(|(d, s)| *d = *s);
    }
}

impl Tail for TokenIds<'_> {
    fn len(&self) -> Result<usize, ReportError> {
        Ok(2 * within(TokenIds::len(self), IDS_PER_FRAME)?)
    }
    fn write(&self, out: &mut [u8]) {
        for (d, t) in out.chunks_exact_mut(2).zip(self.iter()) {
            d.copy_from_slice(&t.to_le_bytes());
        }
    }
}

impl Tail for Pixels<'_> {
    fn len(&self) -> Result<usize, ReportError> {
        Ok(within(Pixels::len(self), PIXELS_PER_FRAME)?.div_ceil(8))
    }
    fn write(&self, out: &mut [u8]) {
        for (k, d) in out.iter_mut().enumerate() {
            *d = (0..8).fold(0u8, |b, j| b | (self.get(8 * k + j) << j));
        }
    }
}

/// Writes the frame of `kind` with `words` and `tail` as its payload: the
/// one encoder every record goes through (so a firmware pays for it once,
/// and for each record only the words it stores).
#[inline(never)]
fn encode(
    kind: Kind,
    words: &[u32],
    tail: &dyn Tail,
    buf: &mut [u8],
) -> Result<usize, ReportError> {
    let n = 4 * words.len() + tail.len()?;
    let end = HEADER_LEN + within(n, MAX_PAYLOAD)?;
    let frame = buf.get_mut(..end + CRC_LEN).ok_or(ReportError::TooLong)?;
    let (body, crc) = frame.split_at_mut(end);
    body[0] = SYNC[0];
    body[1] = SYNC[1];
    body[2] = kind as u8;
    body[3] = n as u8;
    let (fixed, rest) = body[HEADER_LEN..].split_at_mut(4 * words.len());
    for (d, w) in fixed.chunks_exact_mut(4).zip(words) {
        d.iter_mut().zip(w.to_le_bytes()).for_each(|(d, s)| *d = s);
    }
    tail.write(rest);
    let sum = CRC32.checksum(&body[2..]).to_le_bytes();
    crc.iter_mut().zip(sum).for_each(|(d, s)| *d = s);
    Ok(end + CRC_LEN)
}

/// [`encode`] into a buffer of its own, handed to `sink`.
#[inline(never)]
fn encode_to(kind: Kind, words: &[u32], tail: &dyn Tail, sink: fn(Result<&[u8], ReportError>)) {
    let mut buf = [0u8; MAX_FRAME];
    match encode(kind, words, tail, &mut buf) {
        Ok(n) => sink(Ok(buf.get(..n).unwrap_or(&[]))),
        Err(e) => sink(Err(e)),
    }
}

fn lo(v: u64) -> u32 {
    v as u32
}

fn hi(v: u64) -> u32 {
    (v >> 32) as u32
}

/// Reads fields; `None` past the payload.
struct R<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> R<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        let s = self.bytes(4)?;
        Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    /// A word that must fit a `u8`.
    fn u8(&mut self) -> Option<u8> {
        u8::try_from(self.u32()?).ok()
    }
    /// A word that must fit a `u16`.
    fn u16(&mut self) -> Option<u16> {
        u16::try_from(self.u32()?).ok()
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from(self.u32()?) | (u64::from(self.u32()?) << 32))
    }
    fn bool(&mut self) -> Option<bool> {
        match self.u32()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    /// `n` bytes of UTF-8 (`n` at most [`MAX_NAME`]).
    fn name(&mut self, n: u32) -> Option<&'a str> {
        let n = usize::try_from(n).ok().filter(|&n| n <= MAX_NAME)?;
        core::str::from_utf8(self.bytes(n)?).ok()
    }
    fn rest(&mut self) -> &'a [u8] {
        let s = self.b.get(self.at..).unwrap_or(&[]);
        self.at = self.b.len();
        s
    }
}

/// An [`Error`] as its status code (`link::status::error_code`) and up to two fields.
fn error_fields(e: &Error) -> (u8, u32, u32) {
    let (a, b) = match *e {
        Error::UnsupportedVersion(v) => (u32::from(v), 0),
        Error::LengthMismatch { declared, actual } => (declared, actual),
        Error::UnknownFamily(x) => (u32::from(x), 0),
        Error::BadSection(i) | Error::MissingSection(i) | Error::BadTensor(i) | Error::BadOp(i) => {
            (u32::from(i), 0)
        }
        Error::ArenaTooSmall { needed, got } => (needed, got),
        Error::BadLength { expected, got } => (expected, got),
        Error::BadInput(i) => (i, 0),
        _ => (0, 0),
    };
    (error_code(e), a, b)
}

/// The inverse of [`error_fields`]; `None` for a code without an error or
/// fields that do not fit it.
fn error_from_fields(code: u8, a: u32, b: u32) -> Option<Error> {
    let a16 = u16::try_from(a).ok();
    let e = match code {
        10 => Error::TooShort,
        11 => Error::Erased,
        12 => Error::BadMagic,
        13 => Error::UnsupportedVersion(a16?),
        14 => Error::LengthMismatch {
            declared: a,
            actual: b,
        },
        15 => Error::BadChecksum,
        16 => Error::Misaligned,
        17 => Error::UnknownFamily(u8::try_from(a).ok()?),
        18 => Error::WrongFamily,
        19 => Error::BadHeader,
        20 => Error::BadSection(a16?),
        21 => Error::MissingSection(a16?),
        22 => Error::BadTensor(a16?),
        23 => Error::BadOp(a16?),
        24 => Error::BadGraph,
        25 => Error::ArenaTooSmall { needed: a, got: b },
        26 => Error::BadLength {
            expected: a,
            got: b,
        },
        27 => Error::BadSelfTest,
        28 => Error::NotCausal,
        29 => Error::BadInput(a),
        _ => return None,
    };
    // Unused fields must be zero: one encoding per error.
    (error_fields(&e) == (code, a, b)).then_some(e)
}

/// A slot state as a tag and three words.
fn slot_fields(s: &SlotState) -> (u8, [u32; 3]) {
    match *s {
        Ok(seq) => (0, [seq, 0, 0]),
        Err(SlotError::Layout(LayoutError::BadPage(p))) => (1, [p, 0, 0]),
        Err(SlotError::Layout(LayoutError::BadPartition { len, page })) => (2, [len, page, 0]),
        Err(SlotError::Erased) => (3, [0; 3]),
        Err(SlotError::NoTrailer) => (4, [0; 3]),
        Err(SlotError::Incomplete) => (5, [0; 3]),
        Err(SlotError::UnsupportedVersion(v)) => (6, [v, 0, 0]),
        Err(SlotError::BadTrailerCrc) => (7, [0; 3]),
        Err(SlotError::BadLength { len, max }) => (8, [len, max, 0]),
        Err(SlotError::BadImageCrc) => (9, [0; 3]),
        Err(SlotError::Model(e)) => {
            let (c, a, b) = error_fields(&e);
            (10, [u32::from(c), a, b])
        }
    }
}

fn slot_from_fields(tag: u8, w: [u32; 3]) -> Option<SlotState> {
    let s = match tag {
        0 => Ok(w[0]),
        1 => Err(SlotError::Layout(LayoutError::BadPage(w[0]))),
        2 => Err(SlotError::Layout(LayoutError::BadPartition {
            len: w[0],
            page: w[1],
        })),
        3 => Err(SlotError::Erased),
        4 => Err(SlotError::NoTrailer),
        5 => Err(SlotError::Incomplete),
        6 => Err(SlotError::UnsupportedVersion(w[0])),
        7 => Err(SlotError::BadTrailerCrc),
        8 => Err(SlotError::BadLength {
            len: w[0],
            max: w[1],
        }),
        9 => Err(SlotError::BadImageCrc),
        10 => Err(SlotError::Model(error_from_fields(
            u8::try_from(w[0]).ok()?,
            w[1],
            w[2],
        )?)),
        _ => return None,
    };
    (slot_fields(&s) == (tag, w)).then_some(s)
}

impl Record<'_> {
    /// The record's kind.
    #[inline(always)]
    pub fn kind(&self) -> Kind {
        match self {
            Record::Boot { .. } => Kind::Boot,
            Record::Slot { .. } => Kind::Slot,
            Record::Booting { .. } => Kind::Booting,
            Record::NoValidModel => Kind::NoValidModel,
            Record::Classifier { .. } => Kind::Classifier,
            Record::SelfTest { .. } => Kind::SelfTest,
            Record::NoSelfTest => Kind::NoSelfTest,
            Record::Layer { .. } => Kind::Layer,
            Record::Inference { .. } => Kind::Inference,
            Record::Memory { .. } => Kind::Memory,
            Record::Done { .. } => Kind::Done,
            Record::DensityModel { .. } => Kind::DensityModel,
            Record::Nll { .. } => Kind::Nll,
            Record::Streaming { .. } => Kind::Streaming,
            Record::SampleBits { .. } => Kind::SampleBits,
            Record::Sample { .. } => Kind::Sample,
            Record::SampleFull { .. } => Kind::SampleFull,
            Record::LmModel { .. } => Kind::LmModel,
            Record::LmLayer { .. } => Kind::LmLayer,
            Record::LmRequest { .. } => Kind::LmRequest,
            Record::LmPrime { .. } => Kind::LmPrime,
            Record::LmTokens(_) => Kind::LmTokens,
            Record::LmText(_) => Kind::LmText,
            Record::LmGenerated { .. } => Kind::LmGenerated,
        }
    }

    /// Writes the record's frame at the start of `buf` and returns its length.
    ///
    /// # Errors
    /// [`ReportError::TooLong`] when the frame does not fit `buf` (a
    /// [`MAX_FRAME`]-byte buffer holds any record) or a variable part exceeds
    /// its limit ([`MAX_NAME`], [`PIXELS_PER_FRAME`], [`IDS_PER_FRAME`],
    /// [`TEXT_PER_FRAME`]).
    ///
    /// Inlined, so that a call with a known kind (the firmware's) compiles
    /// to that kind's fields only, not to every kind's encoder.
    #[inline(always)]
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ReportError> {
        self.fields(|kind, words, tail| encode(kind, words, tail, buf))
    }

    /// Encodes the record's frame in a [`MAX_FRAME`]-byte buffer of the
    /// encoder's own and hands it to `sink` (or the [`ReportError::TooLong`]
    /// of [`emit`](Self::emit)): what a firmware calls, so that each call
    /// site only stores the record's words and makes one call.
    #[inline(always)]
    pub fn emit_to(&self, sink: fn(Result<&[u8], ReportError>)) {
        self.fields(|kind, words, tail| encode_to(kind, words, tail, sink))
    }

    /// Calls `e` with the record's kind, fixed words and variable tail.
    #[inline(always)]
    fn fields<T>(&self, e: impl FnOnce(Kind, &[u32], &dyn Tail) -> T) -> T {
        let kind = self.kind();
        let e = |words: &[u32], tail: &dyn Tail| e(kind, words, tail);
        match *self {
            Record::Boot {
                version,
                unit,
                partition_address,
                partition_bytes,
                arena_bytes,
                board,
                memory_map,
            } => e(
                &[
                    version.into(),
                    unit as u32,
                    partition_address,
                    partition_bytes,
                    arena_bytes,
                    board.len() as u32,
                    memory_map.len() as u32,
                ],
                &Names(board.as_bytes(), memory_map.as_bytes()),
            ),
            Record::Slot { slot, state } => {
                let (tag, [a, b, c]) = slot_fields(&state);
                e(&[slot as u32, tag.into(), a, b, c], &NoTail)
            }
            Record::Booting {
                source,
                sequence,
                bytes,
            } => {
                let source = match source {
                    Source::Slot(s) => s as u32,
                    Source::Legacy => 2,
                };
                e(&[source, sequence, bytes], &NoTail)
            }
            Record::NoValidModel | Record::NoSelfTest => e(&[], &NoTail),
            Record::Classifier {
                bytes,
                ops,
                macs,
                arena_bytes,
                input_bytes,
                classes,
                selftest_cases,
            } => e(
                &[
                    bytes,
                    ops,
                    lo(macs),
                    hi(macs),
                    arena_bytes,
                    input_bytes,
                    classes,
                    selftest_cases,
                ],
                &NoTail,
            ),
            Record::SelfTest {
                passed,
                total,
                counts,
                first_failure,
            } => e(
                &[
                    passed,
                    total,
                    counts,
                    first_failure.is_some().into(),
                    first_failure.unwrap_or(0),
                ],
                &NoTail,
            ),
            Record::Layer {
                index,
                op,
                input,
                output,
                counts,
                macs,
            } => e(
                &[
                    index.into(),
                    op as u32,
                    input[0].into(),
                    input[1].into(),
                    input[2].into(),
                    output[0].into(),
                    output[1].into(),
                    output[2].into(),
                    counts,
                    lo(macs),
                    hi(macs),
                ],
                &NoTail,
            ),
            Record::Inference { counts, macs } => e(&[counts, lo(macs), hi(macs)], &NoTail),
            Record::Memory {
                static_bytes,
                arena_bytes,
                stack_high_water_bytes,
                stack_region_bytes,
            } => e(
                &[
                    static_bytes,
                    arena_bytes,
                    stack_high_water_bytes,
                    stack_region_bytes,
                ],
                &NoTail,
            ),
            Record::Done { status, error } => {
                let (c, a, b) = error.as_ref().map_or((0, 0, 0), error_fields);
                e(&[status.into(), c.into(), a, b], &NoTail)
            }
            Record::DensityModel {
                bytes,
                ops,
                macs,
                arena_bytes,
                streaming_arena_bytes,
                height,
                width,
                selftest_cases,
            } => e(
                &[
                    bytes,
                    ops,
                    lo(macs),
                    hi(macs),
                    arena_bytes,
                    streaming_arena_bytes,
                    height.into(),
                    width.into(),
                    selftest_cases,
                ],
                &NoTail,
            ),
            Record::Nll {
                image,
                nll,
                counts,
                path,
            } => e(
                &[image, lo(nll), hi(nll), lo(counts), hi(counts), path as u32],
                &NoTail,
            ),
            Record::Streaming { counts } => e(&[lo(counts), hi(counts)], &NoTail),
            Record::SampleBits {
                seed,
                offset,
                pixels,
            } => e(&[lo(seed), hi(seed), offset, pixels.len() as u32], &pixels),
            Record::Sample {
                seed,
                counts,
                ones,
                pixels,
            } => e(
                &[lo(seed), hi(seed), lo(counts), hi(counts), ones, pixels],
                &NoTail,
            ),
            Record::SampleFull { pixels, counts } => e(&[pixels, lo(counts), hi(counts)], &NoTail),
            Record::LmModel {
                level,
                head,
                k,
                vocab,
                emb_dim,
                layers,
                params,
                macs_per_token,
                arena_bytes,
                firmware_arena_bytes,
            } => e(
                &[
                    level as u32,
                    head as u32,
                    k,
                    vocab,
                    emb_dim,
                    layers,
                    lo(params),
                    hi(params),
                    lo(macs_per_token),
                    hi(macs_per_token),
                    arena_bytes,
                    firmware_arena_bytes,
                ],
                &NoTail,
            ),
            Record::LmLayer {
                index,
                input,
                hidden,
            } => e(&[index, input, hidden], &NoTail),
            Record::LmRequest {
                seed,
                tokens,
                prompt_bytes,
                from_host,
            } => e(
                &[lo(seed), hi(seed), tokens, prompt_bytes, from_host.into()],
                &NoTail,
            ),
            Record::LmPrime { tokens, counts } => e(&[tokens, lo(counts), hi(counts)], &NoTail),
            Record::LmTokens(ids) => e(&[], &ids),
            Record::LmText(t) => e(&[], &t.as_bytes()),
            Record::LmGenerated {
                tokens,
                total,
                min,
                max,
            } => e(
                &[
                    tokens,
                    lo(total),
                    hi(total),
                    lo(min),
                    hi(min),
                    lo(max),
                    hi(max),
                ],
                &NoTail,
            ),
        }
    }
}

impl<'a> Record<'a> {
    /// Reads the frame at the start of `b`; returns the record and the
    /// frame's length. `at` is the frame's offset in its stream, for errors.
    ///
    /// # Errors
    /// [`ReportError`]: short, without sync, failing its CRC, of an unknown
    /// kind, or with a payload that is not exactly its kind's.
    pub fn parse(b: &'a [u8], at: u32) -> Result<(Self, usize), ReportError> {
        let head = b.get(..HEADER_LEN).ok_or(ReportError::Truncated { at })?;
        if head[..2] != SYNC {
            return Err(ReportError::BadSync { at });
        }
        let (kind, n) = (head[2], head[3] as usize);
        let end = HEADER_LEN + n;
        let frame = b
            .get(..end + CRC_LEN)
            .ok_or(ReportError::Truncated { at })?;
        let crc = u32::from_le_bytes([frame[end], frame[end + 1], frame[end + 2], frame[end + 3]]);
        if CRC32.checksum(&frame[2..end]) != crc {
            return Err(ReportError::BadCrc { at });
        }
        let mut r = R {
            b: &frame[HEADER_LEN..end],
            at: 0,
        };
        let rec = Self::decode(kind, &mut r).map_err(|unknown| match unknown {
            true => ReportError::UnknownKind { at, kind },
            false => ReportError::BadPayload { at, kind },
        })?;
        // Every byte of the payload must belong to a field.
        if r.at != n {
            return Err(ReportError::BadPayload { at, kind });
        }
        Ok((rec, end + CRC_LEN))
    }

    /// The payload of `kind`; `Err(true)` for an unknown kind, `Err(false)` for a bad payload.
    fn decode(kind: u8, r: &mut R<'a>) -> Result<Self, bool> {
        let rec = (|| -> Option<Option<Self>> {
            Some(Some(match kind {
                1 => {
                    let version = r.u16()?;
                    let unit = match r.u32()? {
                        0 => Unit::Instructions,
                        1 => Unit::Cycles,
                        _ => return None,
                    };
                    let (partition_address, partition_bytes, arena_bytes) =
                        (r.u32()?, r.u32()?, r.u32()?);
                    let (nb, nm) = (r.u32()?, r.u32()?);
                    Record::Boot {
                        version,
                        unit,
                        partition_address,
                        partition_bytes,
                        arena_bytes,
                        board: r.name(nb)?,
                        memory_map: r.name(nm)?,
                    }
                }
                2 => {
                    let slot = match r.u8()? {
                        0 => Slot::A,
                        1 => Slot::B,
                        _ => return None,
                    };
                    let tag = r.u8()?;
                    let words = [r.u32()?, r.u32()?, r.u32()?];
                    Record::Slot {
                        slot,
                        state: slot_from_fields(tag, words)?,
                    }
                }
                3 => Record::Booting {
                    source: match r.u8()? {
                        0 => Source::Slot(Slot::A),
                        1 => Source::Slot(Slot::B),
                        2 => Source::Legacy,
                        _ => return None,
                    },
                    sequence: r.u32()?,
                    bytes: r.u32()?,
                },
                4 => Record::NoValidModel,
                5 => Record::Classifier {
                    bytes: r.u32()?,
                    ops: r.u32()?,
                    macs: r.u64()?,
                    arena_bytes: r.u32()?,
                    input_bytes: r.u32()?,
                    classes: r.u32()?,
                    selftest_cases: r.u32()?,
                },
                6 => {
                    let (passed, total, counts) = (r.u32()?, r.u32()?, r.u32()?);
                    let (some, i) = (r.bool()?, r.u32()?);
                    if !some && i != 0 {
                        return None;
                    }
                    Record::SelfTest {
                        passed,
                        total,
                        counts,
                        first_failure: some.then_some(i),
                    }
                }
                7 => Record::NoSelfTest,
                8 => Record::Layer {
                    index: r.u16()?,
                    op: OpKind::from_u8(r.u8()?)?,
                    input: [r.u16()?, r.u16()?, r.u16()?],
                    output: [r.u16()?, r.u16()?, r.u16()?],
                    counts: r.u32()?,
                    macs: r.u64()?,
                },
                9 => Record::Inference {
                    counts: r.u32()?,
                    macs: r.u64()?,
                },
                10 => Record::Memory {
                    static_bytes: r.u32()?,
                    arena_bytes: r.u32()?,
                    stack_high_water_bytes: r.u32()?,
                    stack_region_bytes: r.u32()?,
                },
                11 => {
                    let (status, code, a, b) = (r.u8()?, r.u8()?, r.u32()?, r.u32()?);
                    let error = match code {
                        0 if a == 0 && b == 0 => None,
                        0 => return None,
                        c => Some(error_from_fields(c, a, b)?),
                    };
                    // A model error ends with its own status.
                    if error.is_some_and(|e| error_code(&e) != status) {
                        return None;
                    }
                    Record::Done { status, error }
                }
                12 => Record::DensityModel {
                    bytes: r.u32()?,
                    ops: r.u32()?,
                    macs: r.u64()?,
                    arena_bytes: r.u32()?,
                    streaming_arena_bytes: r.u32()?,
                    height: r.u16()?,
                    width: r.u16()?,
                    selftest_cases: r.u32()?,
                },
                13 => Record::Nll {
                    image: r.u32()?,
                    nll: r.u64()?,
                    counts: r.u64()?,
                    path: match r.u8()? {
                        0 => ScorePath::Full,
                        1 => ScorePath::Streaming,
                        _ => return None,
                    },
                },
                14 => Record::Streaming { counts: r.u64()? },
                15 => {
                    let (seed, offset, len) = (r.u64()?, r.u32()?, r.u32()? as usize);
                    if len > PIXELS_PER_FRAME {
                        return None;
                    }
                    let bits = r.bytes(len.div_ceil(8))?;
                    // Bits past the last pixel are zero: one encoding per image.
                    if len % 8 != 0 && bits.last().is_some_and(|&b| b >> (len % 8) != 0) {
                        return None;
                    }
                    Record::SampleBits {
                        seed,
                        offset,
                        pixels: Pixels::Bits { bits, len },
                    }
                }
                16 => Record::Sample {
                    seed: r.u64()?,
                    counts: r.u64()?,
                    ones: r.u32()?,
                    pixels: r.u32()?,
                },
                17 => Record::SampleFull {
                    pixels: r.u32()?,
                    counts: r.u64()?,
                },
                18 => Record::LmModel {
                    level: match r.u8()? {
                        1 => Level::Char,
                        2 => Level::Word,
                        _ => return None,
                    },
                    head: LmHead::from_u32(u32::from(r.u8()?))?,
                    k: r.u32()?,
                    vocab: r.u32()?,
                    emb_dim: r.u32()?,
                    layers: r.u32()?,
                    params: r.u64()?,
                    macs_per_token: r.u64()?,
                    arena_bytes: r.u32()?,
                    firmware_arena_bytes: r.u32()?,
                },
                19 => Record::LmLayer {
                    index: r.u32()?,
                    input: r.u32()?,
                    hidden: r.u32()?,
                },
                20 => Record::LmRequest {
                    seed: r.u64()?,
                    tokens: r.u32()?,
                    prompt_bytes: r.u32()?,
                    from_host: r.bool()?,
                },
                21 => Record::LmPrime {
                    tokens: r.u32()?,
                    counts: r.u64()?,
                },
                22 => {
                    let b = r.rest();
                    if b.len() % 2 != 0 || b.len() / 2 > IDS_PER_FRAME {
                        return None;
                    }
                    Record::LmTokens(TokenIds::Le(b))
                }
                23 => Record::LmText(core::str::from_utf8(r.rest()).ok()?),
                24 => Record::LmGenerated {
                    tokens: r.u32()?,
                    total: r.u64()?,
                    min: r.u64()?,
                    max: r.u64()?,
                },
                _ => return Some(None),
            }))
        })();
        match rec {
            Some(Some(rec)) => Ok(rec),
            Some(None) => Err(true),
            None => Err(false),
        }
    }
}

/// The records of a report stream, in order: the first must be a `Boot`
/// of this [`VERSION`]. After an error the reader yields nothing more.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    failed: bool,
}

impl<'a> Reader<'a> {
    /// Reads the stream in `b`.
    pub fn new(b: &'a [u8]) -> Self {
        Reader {
            b,
            at: 0,
            failed: false,
        }
    }

    /// Bytes read so far (whole frames).
    pub fn offset(&self) -> usize {
        self.at
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Record<'a>, ReportError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || (self.at >= self.b.len() && self.at > 0) {
            return None;
        }
        let first = self.at == 0;
        let r = match self.b.get(self.at..) {
            Some([]) | None => Err(ReportError::NoBoot),
            Some(b) => Record::parse(b, self.at as u32).and_then(|(rec, n)| {
                match rec {
                    Record::Boot { version, .. } if first && version != VERSION => {
                        return Err(ReportError::UnsupportedVersion(version))
                    }
                    Record::Boot { .. } if first => {}
                    _ if first => return Err(ReportError::NoBoot),
                    _ => {}
                }
                self.at += n;
                Ok(rec)
            }),
        };
        self.failed = r.is_err();
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    fn boot() -> Record<'static> {
        Record::Boot {
            version: VERSION,
            unit: Unit::Instructions,
            partition_address: 0x0004_0000,
            partition_bytes: 1 << 20,
            arena_bytes: 25_088,
            board: "mps2-an386-nrf-budget",
            memory_map: "memory-qemu-nrf-budget.x",
        }
    }

    /// One record of every kind, with fields that exercise each encoding.
    fn every_record() -> Vec<Record<'static>> {
        static PIXELS: [u8; 13] = [1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1];
        static IDS: [u16; 3] = [0, 7, u16::MAX];
        std::vec![
            boot(),
            Record::Slot {
                slot: Slot::A,
                state: Ok(7),
            },
            Record::Slot {
                slot: Slot::B,
                state: Err(SlotError::Model(Error::ArenaTooSmall { needed: 9, got: 3 })),
            },
            Record::Slot {
                slot: Slot::B,
                state: Err(SlotError::Layout(LayoutError::BadPartition {
                    len: 5,
                    page: 4
                })),
            },
            Record::Slot {
                slot: Slot::A,
                state: Err(SlotError::Incomplete),
            },
            Record::Booting {
                source: Source::Legacy,
                sequence: 0,
                bytes: 90_908,
            },
            Record::NoValidModel,
            Record::Classifier {
                bytes: 90_908,
                ops: 13,
                macs: 9_145_216,
                arena_bytes: 25_088,
                input_bytes: 784,
                classes: 10,
                selftest_cases: 16,
            },
            Record::SelfTest {
                passed: 15,
                total: 16,
                counts: u32::MAX,
                first_failure: Some(3),
            },
            Record::SelfTest {
                passed: 16,
                total: 16,
                counts: 1,
                first_failure: None,
            },
            Record::NoSelfTest,
            Record::Layer {
                index: 2,
                op: OpKind::Conv2d,
                input: [28, 28, 16],
                output: [28, 28, 16],
                counts: 4_000_000,
                macs: u64::MAX,
            },
            Record::Inference {
                counts: 13_213_640,
                macs: 9_145_216,
            },
            Record::Memory {
                static_bytes: 26_652,
                arena_bytes: 25_088,
                stack_high_water_bytes: 5_208,
                stack_region_bytes: 229_000,
            },
            Record::Done {
                status: 0,
                error: None,
            },
            Record::Done {
                status: 29,
                error: Some(Error::BadInput(3)),
            },
            Record::DensityModel {
                bytes: 90_668,
                ops: 9,
                macs: 40_600_000,
                arena_bytes: 150_528,
                streaming_arena_bytes: 10_676,
                height: 28,
                width: 28,
                selftest_cases: 2,
            },
            Record::Nll {
                image: 1,
                nll: 1 << 40,
                counts: 76_494_880,
                path: ScorePath::Streaming,
            },
            Record::Streaming { counts: 1 },
            Record::SampleBits {
                seed: u64::MAX,
                offset: 1024,
                pixels: Pixels::Bytes(&PIXELS),
            },
            Record::Sample {
                seed: 3,
                counts: 165_733_400,
                ones: 7,
                pixels: 784,
            },
            Record::SampleFull {
                pixels: 28,
                counts: 5,
            },
            Record::LmModel {
                level: Level::Word,
                head: LmHead::Mos,
                k: 4,
                vocab: 65,
                emb_dim: 64,
                layers: 1,
                params: 399_749,
                macs_per_token: 410_880,
                arena_bytes: 4_168,
                firmware_arena_bytes: 4_168,
            },
            Record::LmLayer {
                index: 0,
                input: 64,
                hidden: 256,
            },
            Record::LmRequest {
                seed: 7,
                tokens: 200,
                prompt_bytes: 6,
                from_host: true,
            },
            Record::LmPrime {
                tokens: 7,
                counts: 5_669_120,
            },
            Record::LmTokens(TokenIds::Ids(&IDS)),
            Record::LmText("ROMEO:\nThou é"),
            Record::LmGenerated {
                tokens: 200,
                total: 176_873_400,
                min: 1,
                max: u64::MAX,
            },
        ]
    }

    fn stream(records: &[Record<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; MAX_FRAME];
        for r in records {
            let n = r.emit(&mut buf).unwrap();
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    /// emit → parse is the identity for every kind, and the reader gives
    /// the records back in order.
    #[test]
    fn every_record_round_trips() {
        let all = every_record();
        let bytes = stream(&all);
        let back: Vec<_> = Reader::new(&bytes).collect::<Result<_, _>>().unwrap();
        assert_eq!(back, all);
        // Every kind is covered.
        let kinds: std::collections::BTreeSet<u8> = all.iter().map(|r| r.kind() as u8).collect();
        assert_eq!(kinds, (1..=24).collect());
    }

    /// Every cut of a stream short of its end is a typed error, never a
    /// panic and never a record that was not sent; so is every flipped bit.
    #[test]
    fn truncated_or_corrupted_streams_give_typed_errors() {
        let all = every_record();
        let bytes = stream(&all);
        let full: Vec<_> = Reader::new(&bytes).collect();
        for cut in 0..bytes.len() {
            let got: Vec<_> = Reader::new(&bytes[..cut]).collect();
            let (ok, err): (Vec<_>, Vec<_>) = got.into_iter().partition(|r| r.is_ok());
            // A prefix of the records, then one error, unless the cut falls between frames.
            assert!(ok.len() <= all.len() && ok.iter().zip(&full).all(|(a, b)| a == b));
            assert!(err.len() <= 1, "cut {cut}");
            match err.first() {
                Some(Err(ReportError::Truncated { .. })) => {}
                Some(Err(ReportError::NoBoot)) => assert_eq!(cut, 0),
                Some(e) => panic!("cut {cut}: {e:?}"),
                None => assert!(Record::parse(&bytes[cut..], 0).is_ok()),
            }
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                let got: Vec<_> = Reader::new(&b).collect();
                assert!(
                    got.iter().any(|r| r.is_err()),
                    "a flip at byte {i} bit {bit} went unnoticed"
                );
                // No record is invented: the good ones are a prefix of what was sent.
                let ok = got.iter().take_while(|r| r.is_ok()).count();
                assert!(got[..ok].iter().zip(&full).all(|(a, b)| a == b));
            }
        }
    }

    /// Frames with a valid CRC but a foreign layout are refused by kind and payload.
    #[test]
    fn bad_payloads_and_versions_are_refused() {
        fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
            let mut f = std::vec![b'T', b'R', kind, payload.len() as u8];
            f.extend_from_slice(payload);
            let crc = CRC32.checksum(&f[2..]);
            f.extend_from_slice(&crc.to_le_bytes());
            f
        }
        assert_eq!(
            Record::parse(&frame(99, &[]), 5),
            Err(ReportError::UnknownKind { at: 5, kind: 99 })
        );
        // A payload one byte long or short.
        assert_eq!(
            Record::parse(&frame(Kind::Streaming as u8, &[0; 9]), 0),
            Err(ReportError::BadPayload { at: 0, kind: 14 })
        );
        assert_eq!(
            Record::parse(&frame(Kind::Streaming as u8, &[0; 7]), 0),
            Err(ReportError::BadPayload { at: 0, kind: 14 })
        );
        fn words(w: &[u32]) -> Vec<u8> {
            w.iter().flat_map(|x| x.to_le_bytes()).collect()
        }
        // An op kind, a slot tag and an error code that do not exist.
        let mut layer = [0u32; 11];
        layer[1] = 9;
        assert!(Record::parse(&frame(Kind::Layer as u8, &words(&layer)), 0).is_err());
        layer[1] = OpKind::Add as u32;
        assert!(Record::parse(&frame(Kind::Layer as u8, &words(&layer)), 0).is_ok());
        // A u16 field given a word that does not fit it.
        layer[2] = 1 << 16;
        assert!(Record::parse(&frame(Kind::Layer as u8, &words(&layer)), 0).is_err());
        let slot = |tag| frame(Kind::Slot as u8, &words(&[0, tag, 0, 0, 0]));
        assert!(Record::parse(&slot(11), 0).is_err());
        assert!(Record::parse(&slot(3), 0).is_ok());
        let done = |w: [u32; 4]| frame(Kind::Done as u8, &words(&w));
        assert!(Record::parse(&done([40, 40, 0, 0]), 0).is_err());
        // A model error whose status is not its own; fields on a fieldless error.
        assert!(Record::parse(&done([0, 11, 0, 0]), 0).is_err());
        assert!(Record::parse(&done([11, 11, 1, 0]), 0).is_err());
        assert!(Record::parse(&done([11, 11, 0, 0]), 0).is_ok());
        // Text that is not UTF-8; token ids of an odd byte count.
        assert!(Record::parse(&frame(Kind::LmText as u8, &[0xFF]), 0).is_err());
        assert!(Record::parse(&frame(Kind::LmTokens as u8, &[1, 2, 3]), 0).is_err());
        // The stream: a Boot first, of this version.
        let mut b = [0u8; MAX_FRAME];
        let n = Record::Streaming { counts: 1 }.emit(&mut b).unwrap();
        assert_eq!(Reader::new(&b[..n]).next(), Some(Err(ReportError::NoBoot)));
        assert_eq!(Reader::new(&[]).next(), Some(Err(ReportError::NoBoot)));
        let mut old = boot();
        if let Record::Boot { version, .. } = &mut old {
            *version = VERSION + 1;
        }
        let n = old.emit(&mut b).unwrap();
        assert_eq!(
            Reader::new(&b[..n]).next(),
            Some(Err(ReportError::UnsupportedVersion(VERSION + 1)))
        );
        // Garbage before a frame.
        let n = boot().emit(&mut b[1..]).unwrap();
        assert_eq!(
            Reader::new(&b[..n + 1]).next(),
            Some(Err(ReportError::BadSync { at: 0 }))
        );
    }

    /// Records too long for a frame are refused when emitted, not cut.
    #[test]
    fn oversized_records_are_refused() {
        let mut b = [0u8; MAX_FRAME];
        let px = [1u8; PIXELS_PER_FRAME + 1];
        let r = Record::SampleBits {
            seed: 0,
            offset: 0,
            pixels: Pixels::Bytes(&px),
        };
        assert_eq!(r.emit(&mut b), Err(ReportError::TooLong));
        let ok = Record::SampleBits {
            seed: 0,
            offset: 0,
            pixels: Pixels::Bytes(&px[..PIXELS_PER_FRAME]),
        };
        assert!(ok.emit(&mut b).is_ok());
        let ids = [1u16; IDS_PER_FRAME + 1];
        assert_eq!(
            Record::LmTokens(TokenIds::Ids(&ids)).emit(&mut b),
            Err(ReportError::TooLong)
        );
        let text = [b'a'; TEXT_PER_FRAME + 1];
        let text = core::str::from_utf8(&text).unwrap();
        assert_eq!(Record::LmText(text).emit(&mut b), Err(ReportError::TooLong));
        assert!(Record::LmText(&text[1..]).emit(&mut b).is_ok());
        let long = "x".repeat(MAX_NAME + 1);
        let named = Record::Boot {
            version: VERSION,
            unit: Unit::Cycles,
            partition_address: 0,
            partition_bytes: 0,
            arena_bytes: 0,
            board: &long,
            memory_map: "",
        };
        assert_eq!(named.emit(&mut b), Err(ReportError::TooLong));
        // A buffer too small for the frame.
        assert_eq!(
            Record::NoSelfTest.emit(&mut b[..7]),
            Err(ReportError::TooLong)
        );
        assert_eq!(Record::NoSelfTest.emit(&mut b[..8]), Ok(8));
    }
}
