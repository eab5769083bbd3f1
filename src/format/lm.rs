//! The language-model sections: `LM` (dimensions, head and the offsets of
//! every weight array in `DATA`) and `VOCAB` (the token table).
//!
//! # `LM` section (little-endian `u32` words)
//!
//! ```text
//!  0 spec version (1, 2)   1 vocabulary V       2 embedding size d
//!  3 LSTM layers L         4 head (1 softmax, 2 MoC, 3 MoS)
//!  5 mixture components K  6 level (1 character, 2 word)
//!  7 weight layout of proj_w (0 rows, 1 row quads)
//!  8 emb_w    V·d i8       embedding rows, tied to the decoder
//!  9 emb_rq   2V i32       per row: embedding → layer-0 input scale
//!                          (version 2: V + 1 i32, one shared shift)
//! 10 dec_rq   2V i32       per row: decoder accumulator → Q16 logit
//!                          (version 2: V + 1 i32, one shared shift)
//! 11 dec_b    V i32        decoder bias, Q16 nats
//! 12 proj_w   K·d·H i8     latent projections W_k
//! 13 proj_rq  2·K·d i32    accumulator → Q3.12
//! 14 proj_b   K·d i32      Q3.12
//! 15 prior_w  K·H i8       prior W_π         (NONE when K = 1)
//! 16 prior_rq 2K i32       accumulator → Q16 (NONE when K = 1)
//! 17 prior_b  K i32        Q16               (NONE when K = 1)
//! 18 + 8·l, for each layer l:
//!    input I, hidden H, w_x 4H·I i8, w_h 4H·H i8, rq_x 2·4H i32, rq_h 2·4H i32,
//!    bias 4H i32 (Q3.12), weight layout of w_x and w_h (0 rows, 1 row quads)
//! ```
//!
//! A layer's gate matrices are `[4H][I]` and `[4H][H]` int8 in the layout
//! its last word names ([`WeightLayout`]): 0 stores them row by row; 1
//! ([`WeightLayout::RowQuads`], allowed when `I` and `H` are multiples of
//! 4) interleaves each group of four rows for the DSP kernels, with no
//! change of size or value. Word 7 does the same for the `[K·d][H]` latent
//! projections (row quads when `K·d` and `H` are multiples of 4). Blobs
//! written before the layout words hold 0 there and load as before.
//! Offsets point into `DATA` and are 4-byte aligned; `rq` arrays hold `n`
//! multipliers then `n` shifts (see [`crate::quant`]; version 2's `emb_rq`
//! and `dec_rq` differ, below). Gate rows are ordered
//! input, forget, cell, output. H is the last layer's hidden size.
//!
//! **Version 2** differs in the two per-word arrays only: `emb_rq` and
//! `dec_rq` hold `V` multipliers then **one** shift for every row
//! ([`Shifts::Shared`]), 4 bytes per word each instead of 8. At a word
//! vocabulary that is 80 KB of flash (10,000 words) that version 1 spends
//! on shifts, the room of 8 more embedding dimensions under the nRF52840
//! budget. The multipliers then need not be normalised (`[0, 2^31)` as
//! everywhere); the exporter picks the largest row's shift, and a smaller
//! row keeps `31 − log2(ratio)` bits. Version 1 blobs load unchanged.
//!
//! # `VOCAB` section
//!
//! ```text
//! 0 count u32 (= V)   4 flags u32   8 offsets u32 × (V + 1)
//! [with flag bit 0: index u16 × V, zero-padded to a multiple of 4 bytes]
//! then the token bytes
//! ```
//! Token `i` is `bytes[offsets[i]..offsets[i+1]]`, non-empty UTF-8 of at most
//! [`MAX_TOKEN_BYTES`] bytes.
//!
//! Flag bit 0 ([`VOCAB_SORTED_INDEX`]) says a sorted index follows the
//! offsets: the token ids in the byte order of their texts (strictly
//! increasing, so the texts are distinct and the index is a permutation of
//! `0..V`), which the checker verifies in O(V · [`MAX_TOKEN_BYTES`]) and
//! [`Vocab::id`] binary-searches in O(log V) comparisons. Other flag bits
//! must be 0. Flags 0 (the blobs written before the index) still load;
//! their lookups fall back to a linear search.

use super::{u32_at, NONE};

/// The newest `LM` spec version, the one the exporter writes (version 1
/// still loads).
pub const LM_SPEC_VERSION: u32 = 2;
/// Most LSTM layers.
pub const MAX_LAYERS: usize = 4;
/// Most mixture components.
pub const MAX_K: usize = 16;
/// Largest vocabulary (token ids are `u16`).
pub const MAX_VOCAB: usize = 65535;
/// Largest embedding or hidden size.
pub const MAX_WIDTH: usize = 4096;
/// Logits held at once: a vocabulary up to this size keeps all of one
/// softmax's logits in the arena; a larger one is decoded in chunks of this
/// many rows, and each softmax's logits are recomputed (the decoder is
/// deterministic, so the bytes are the same) instead of stored: 4 KB of
/// arena instead of `4·V` bytes (40 KB for Penn Treebank's 10,000 words),
/// for three decoder passes per softmax instead of one (two for
/// `log_prob`).
pub const LOGIT_CHUNK: usize = 1024;
/// Longest token text in bytes.
pub const MAX_TOKEN_BYTES: usize = 64;
/// Largest `|bias|` of any LM array (keeps every sum inside `i32`).
pub const MAX_LM_BIAS: i32 = 1 << 28;
/// Words of the fixed part of the `LM` section.
pub const LM_HEADER_WORDS: usize = 18;
/// Words per layer record.
pub const LM_LAYER_WORDS: usize = 8;
/// `VOCAB` flag: a sorted token index follows the offsets.
pub const VOCAB_SORTED_INDEX: u32 = 1;

/// Output head of a language model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u32)]
pub enum LmHead {
    /// One softmax (K = 1).
    Softmax = 1,
    /// Mixture of contexts: one softmax of the π-weighted latent.
    Moc = 2,
    /// Mixture of softmaxes: π-weighted softmaxes, mixed in probability space.
    Mos = 3,
}

impl LmHead {
    /// Decodes a head code.
    pub fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(LmHead::Softmax),
            2 => Some(LmHead::Moc),
            3 => Some(LmHead::Mos),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            LmHead::Softmax => "softmax",
            LmHead::Moc => "moc",
            LmHead::Mos => "mos",
        }
    }
}

/// How tokens are joined into text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u32)]
pub enum Level {
    /// One character per token, joined as is.
    Char = 1,
    /// Words, separated by spaces; `<eos>` ends a line.
    Word = 2,
}

/// How the int8 weights of a `[rows][depth]` matrix lie in `DATA`.
///
/// [`RowQuads`](Self::RowQuads) (for `rows` and `depth` multiples of 4):
/// rows `4g..4g + 4` form group `g` of `4 · depth` bytes; in it, each chunk
/// `c` of four columns is 16 bytes: rows `4g` and `4g + 1` interleaved
/// column by column (8 bytes), then rows `4g + 2` and `4g + 3` the same.
/// The first row of each pair is stored offset by 128 (`w ^ 0x80` as a
/// byte, that is `w + 128` unsigned), the second as is. So one 32-bit word
/// holds, per 16-bit lane, `256 · w₁ + (w₀ + 128)` for one column: an
/// `SMLAD` of the raw word with two inputs gives `256 · dot₁ + dot₀ + 128 ·
/// Σx`, and one of the word masked to its low bytes gives `dot₀ + 128 ·
/// Σx`; two multiply-accumulates per four products, with one mask instead
/// of two sign extensions (docs/firmware.md, "Eighth round").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u32)]
pub enum WeightLayout {
    /// `[rows][depth]`, row by row.
    #[default]
    Rows = 0,
    /// Groups of four rows interleaved, the first row of each pair offset
    /// by 128.
    RowQuads = 1,
}

impl WeightLayout {
    /// Decodes a layout code for a `[rows][depth]` matrix: None for an
    /// unknown code, or row quads when `rows` or `depth` is not a multiple
    /// of 4.
    pub fn for_matrix(code: u32, rows: usize, depth: usize) -> Option<Self> {
        match code {
            0 => Some(WeightLayout::Rows),
            1 if Self::quads_fit(rows, depth) => Some(WeightLayout::RowQuads),
            _ => None,
        }
    }

    /// The deepest row-quads matrix whose pair sums the DSP kernels split
    /// exactly (`A − B = 256 · dot` stays inside `i32` while `|dot| ≤ depth
    /// · 2^14 < 2^23`, so depth < 512): `kernels::arm::lm` serves row quads
    /// up to it, and the exporter writes them only up to it (a deeper
    /// matrix keeps rows, which keep the DSP path).
    pub const DSP_MAX_DEPTH: usize = 511;

    /// Whether a `[rows][depth]` matrix can be stored as row quads.
    pub fn quads_fit(rows: usize, depth: usize) -> bool {
        rows % 4 == 0 && depth % 4 == 0 && depth > 0
    }

    /// Where weight `(r, j)` of a `[rows][depth]` matrix is stored.
    #[inline]
    pub fn index(self, r: usize, j: usize, depth: usize) -> usize {
        match self {
            WeightLayout::Rows => r * depth + j,
            WeightLayout::RowQuads => {
                let (g, q) = (r / 4, r % 4);
                g * 4 * depth + (j / 4) * 16 + (q / 2) * 8 + (j % 4) * 2 + q % 2
            }
        }
    }

    /// The weight of row `r` from its stored byte.
    #[inline]
    pub fn decode(self, r: usize, stored: i8) -> i8 {
        match self {
            WeightLayout::RowQuads if r % 2 == 0 => stored ^ i8::MIN,
            _ => stored,
        }
    }

    /// Stores the row-by-row `[rows][depth]` matrix `src` in this layout
    /// into `out` (the same length). False, writing nothing, when the
    /// lengths differ or the layout does not fit the shape.
    pub fn encode(self, src: &[i8], rows: usize, depth: usize, out: &mut [i8]) -> bool {
        let fits = rows.checked_mul(depth) == Some(src.len())
            && out.len() == src.len()
            && (self == WeightLayout::Rows || Self::quads_fit(rows, depth));
        if !fits {
            return false;
        }
        for r in 0..rows {
            for j in 0..depth {
                let w = src[r * depth + j];
                // decode is an involution: x ^ 0x80 twice is x.
                out[self.index(r, j, depth)] = self.decode(r, w);
            }
        }
        true
    }
}

/// The shifts of `n` per-row requantizations: one per row, or one for all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shifts<'a> {
    /// `n` shifts, row by row (every array of version 1).
    PerRow(&'a [i32]),
    /// One shift for every row (`emb_rq` and `dec_rq` of version 2).
    Shared(i32),
}

impl<'a> Shifts<'a> {
    /// Row `i`'s shift (0 past the end of a [`PerRow`](Self::PerRow), which
    /// a checked model rules out).
    #[inline]
    pub fn at(self, i: usize) -> i32 {
        match self {
            Shifts::PerRow(s) => s.get(i).copied().unwrap_or(0),
            Shifts::Shared(s) => s,
        }
    }

    /// The shifts of rows `r` (None when a per-row array is too short).
    #[inline]
    pub fn rows(self, r: core::ops::Range<usize>) -> Option<Self> {
        match self {
            Shifts::PerRow(s) => s.get(r).map(Shifts::PerRow),
            shared => Some(shared),
        }
    }
}

/// Multipliers and shifts of the `V` per-word requantizations (`emb_rq`,
/// `dec_rq`): a shift per row in version 1, one shared shift in version 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WordRequant<'a> {
    /// `V` multipliers.
    pub mult: &'a [i32],
    /// Their shifts.
    pub shift: Shifts<'a>,
}

impl WordRequant<'_> {
    /// Pair `i` (`(0, 0)` out of range, which the checker rules out).
    #[inline]
    pub fn get(&self, i: usize) -> (i32, i32) {
        (self.mult.get(i).copied().unwrap_or(0), self.shift.at(i))
    }

    /// Bytes of `DATA` the pairs take.
    pub fn bytes(&self) -> usize {
        4 * self.mult.len()
            + match self.shift {
                Shifts::PerRow(s) => 4 * s.len(),
                Shifts::Shared(_) => 4,
            }
    }
}

/// Multipliers and shifts of `n` requantizations.
#[derive(Clone, Copy, Debug, Default)]
pub struct Requant<'a> {
    /// `n` multipliers.
    pub mult: &'a [i32],
    /// `n` shifts.
    pub shift: &'a [i32],
    /// The proof that every pair has the high-word form, when they do
    /// (computed once, at parse: the DSP stages then skip the per-row test).
    pub high_word: Option<crate::quant::HighWord<'a>>,
}

impl Requant<'_> {
    /// Pair `i` (`(0, 0)` out of range, which the checker rules out).
    #[inline]
    pub fn get(&self, i: usize) -> (i32, i32) {
        (
            self.mult.get(i).copied().unwrap_or(0),
            self.shift.get(i).copied().unwrap_or(0),
        )
    }
}

/// One checked LSTM layer.
#[derive(Clone, Copy, Debug, Default)]
pub struct LmLayer<'a> {
    /// Input size I.
    pub input: usize,
    /// Hidden size H.
    pub hidden: usize,
    /// `[4H][I]`.
    pub w_x: &'a [i8],
    /// `[4H][H]`.
    pub w_h: &'a [i8],
    /// Input-side accumulator → Q3.12, per gate row.
    pub rq_x: Requant<'a>,
    /// Hidden-side accumulator → Q3.12, per gate row.
    pub rq_h: Requant<'a>,
    /// `4H` gate biases, Q3.12.
    pub bias: &'a [i32],
    /// How `w_x` and `w_h` are stored.
    pub layout: WeightLayout,
}

/// A checked `LM` section with its arrays resolved in `DATA`.
#[derive(Clone, Copy, Debug)]
pub struct LmSpec<'a> {
    /// Spec version: 1, or 2 with shared per-word shifts.
    pub version: u32,
    /// Vocabulary size V.
    pub vocab: usize,
    /// Embedding size d.
    pub emb_dim: usize,
    /// Output head.
    pub head: LmHead,
    /// Mixture components K.
    pub k: usize,
    /// Tokenisation level.
    pub level: Level,
    /// `[V][d]` embedding rows.
    pub emb_w: &'a [i8],
    /// Embedding → layer-0 input, per row.
    pub emb_rq: WordRequant<'a>,
    /// Decoder accumulator → Q16 logit, per row.
    pub dec_rq: WordRequant<'a>,
    /// `V` decoder biases, Q16.
    pub dec_b: &'a [i32],
    /// `[K][d][H]` latent projections, stored as `proj_layout` says.
    pub proj_w: &'a [i8],
    /// How `proj_w` is stored.
    pub proj_layout: WeightLayout,
    /// Per latent row → Q3.12.
    pub proj_rq: Requant<'a>,
    /// `K·d` latent biases, Q3.12.
    pub proj_b: &'a [i32],
    /// `[K][H]` prior weights (empty when K = 1).
    pub prior_w: &'a [i8],
    /// Per component → Q16 (empty when K = 1).
    pub prior_rq: Requant<'a>,
    /// `K` prior biases, Q16 (empty when K = 1).
    pub prior_b: &'a [i32],
    layers: [LmLayer<'a>; MAX_LAYERS],
    n_layers: usize,
}

struct Data<'a>(&'a [u8]);

impl<'a> Data<'a> {
    fn bytes(&self, at: u32, len: usize) -> Option<&'a [u8]> {
        if at == NONE || at % 4 != 0 {
            return None;
        }
        self.0.get(at as usize..(at as usize).checked_add(len)?)
    }
    fn i8s(&self, at: u32, len: usize) -> Option<&'a [i8]> {
        Some(bytemuck::cast_slice(self.bytes(at, len)?))
    }
    fn i32s(&self, at: u32, n: usize) -> Option<&'a [i32]> {
        bytemuck::try_cast_slice(self.bytes(at, n.checked_mul(4)?)?).ok()
    }
    fn biases(&self, at: u32, n: usize) -> Option<&'a [i32]> {
        let b = self.i32s(at, n)?;
        b.iter()
            .all(|b| b.unsigned_abs() <= MAX_LM_BIAS as u32)
            .then_some(b)
    }
    fn requant(&self, at: u32, n: usize) -> Option<Requant<'a>> {
        let rq = self.i32s(at, n.checked_mul(2)?)?;
        let (mult, shift) = rq.split_at(n);
        mult.iter()
            .zip(shift)
            .all(|(&m, &s)| crate::quant::valid(m, s))
            .then(|| Requant {
                mult,
                shift,
                high_word: crate::quant::HighWord::new(mult, shift),
            })
    }
    /// `n` per-word pairs: version 1's `n` shifts, or version 2's one.
    fn word_requant(&self, at: u32, n: usize, version: u32) -> Option<WordRequant<'a>> {
        let shifts = if version == 1 { n } else { 1 };
        let rq = self.i32s(at, n.checked_add(shifts)?)?;
        let (mult, shift) = rq.split_at(n);
        let shift = match shift {
            [s] if version != 1 => Shifts::Shared(*s),
            s => Shifts::PerRow(s),
        };
        let valid = match shift {
            Shifts::PerRow(s) => mult.iter().zip(s).all(|(&m, &s)| crate::quant::valid(m, s)),
            Shifts::Shared(s) => mult.iter().all(|&m| crate::quant::valid(m, s)),
        };
        valid.then_some(WordRequant { mult, shift })
    }
}

impl<'a> LmSpec<'a> {
    /// Parses and checks the `LM` section against `DATA`. None when any
    /// field, size, offset, bias or requantization pair is invalid.
    pub fn parse(sec: &'a [u8], data: &'a [u8]) -> Option<Self> {
        let w = |i: usize| u32_at(sec, 4 * i);
        if sec.len() < 4 * LM_HEADER_WORDS {
            return None;
        }
        let version = w(word::VERSION);
        if !(1..=LM_SPEC_VERSION).contains(&version) {
            return None;
        }
        let (v, d, l, k) = (
            w(word::VOCAB) as usize,
            w(word::EMB_DIM) as usize,
            w(word::LAYERS) as usize,
            w(word::K) as usize,
        );
        let head = LmHead::from_u32(w(word::HEAD))?;
        let level = match w(word::LEVEL) {
            1 => Level::Char,
            2 => Level::Word,
            _ => return None,
        };
        let width_ok = |n: usize| (1..=MAX_WIDTH).contains(&n);
        if !(2..=MAX_VOCAB).contains(&v)
            || !width_ok(d)
            || !(1..=MAX_LAYERS).contains(&l)
            || !(1..=MAX_K).contains(&k)
            || (head == LmHead::Softmax && k != 1)
            || sec.len() != 4 * (LM_HEADER_WORDS + LM_LAYER_WORDS * l)
        {
            return None;
        }
        let data = Data(data);
        let mut layers = [LmLayer::default(); MAX_LAYERS];
        let mut input = d;
        for (i, layer) in layers.iter_mut().enumerate().take(l) {
            let r = |j: usize| w(LM_HEADER_WORDS + LM_LAYER_WORDS * i + j);
            let (li, h) = (
                r(layer_word::INPUT) as usize,
                r(layer_word::HIDDEN) as usize,
            );
            if li != input || !width_ok(h) {
                return None;
            }
            let rows = 4 * h;
            let code = r(layer_word::LAYOUT);
            let layout = WeightLayout::for_matrix(code, rows, li)
                .filter(|_| WeightLayout::for_matrix(code, rows, h).is_some())?;
            *layer = LmLayer {
                input: li,
                hidden: h,
                w_x: data.i8s(r(layer_word::W_X), rows * li)?,
                w_h: data.i8s(r(layer_word::W_H), rows * h)?,
                rq_x: data.requant(r(layer_word::RQ_X), rows)?,
                rq_h: data.requant(r(layer_word::RQ_H), rows)?,
                bias: data.biases(r(layer_word::BIAS), rows)?,
                layout,
            };
            input = h;
        }
        let top = input;
        let (prior_w, prior_rq, prior_b) = if k > 1 {
            (
                data.i8s(w(word::PRIOR_W), k * top)?,
                data.requant(w(word::PRIOR_RQ), k)?,
                data.biases(w(word::PRIOR_B), k)?,
            )
        } else {
            if [w(word::PRIOR_W), w(word::PRIOR_RQ), w(word::PRIOR_B)] != [NONE; 3] {
                return None;
            }
            (&[][..], Requant::default(), &[][..])
        };
        Some(LmSpec {
            version,
            vocab: v,
            emb_dim: d,
            head,
            k,
            level,
            emb_w: data.i8s(w(word::EMB_W), v * d)?,
            emb_rq: data.word_requant(w(word::EMB_RQ), v, version)?,
            dec_rq: data.word_requant(w(word::DEC_RQ), v, version)?,
            dec_b: data.biases(w(word::DEC_B), v)?,
            proj_w: data.i8s(w(word::PROJ_W), k * d * top)?,
            proj_layout: WeightLayout::for_matrix(w(word::PROJ_LAYOUT), k * d, top)?,
            proj_rq: data.requant(w(word::PROJ_RQ), k * d)?,
            proj_b: data.biases(w(word::PROJ_B), k * d)?,
            prior_w,
            prior_rq,
            prior_b,
            layers,
            n_layers: l,
        })
    }

    /// The LSTM layers, input first.
    pub fn layers(&self) -> &[LmLayer<'a>] {
        &self.layers[..self.n_layers]
    }

    /// Hidden size of the last layer (the head's input H).
    pub fn top_hidden(&self) -> usize {
        self.layers().last().map_or(0, |l| l.hidden)
    }

    /// Softmaxes over the vocabulary per token: K for MoS, else 1.
    pub fn vocab_softmaxes(&self) -> usize {
        if self.head == LmHead::Mos {
            self.k
        } else {
            1
        }
    }

    /// Logits the arena holds at once: `min(V, LOGIT_CHUNK)`.
    pub fn logit_rows(&self) -> usize {
        self.vocab.min(LOGIT_CHUNK)
    }

    /// The arena plan, the one a blob's header declares; see [`ArenaPlan`].
    pub fn plan(&self) -> ArenaPlan {
        self.plan_with(self.logit_rows())
    }

    /// The plan a blob's header declares with `arena_len`: [`plan`](Self::plan),
    /// or, for a vocabulary past [`LOGIT_CHUNK`], the plan holding every
    /// logit at once that blobs exported before the chunked decoder declare
    /// (the same results, one decoder pass). `None` for any other length.
    pub fn plan_for(&self, arena_len: usize) -> Option<ArenaPlan> {
        let chunked = self.plan();
        if chunked.total == arena_len {
            return Some(chunked);
        }
        let whole = self.plan_with(self.vocab);
        (whole.total == arena_len).then_some(whole)
    }

    /// The arena plan holding `rows` logits at once (at least 1, at most
    /// `V`): [`plan`](Self::plan) with another trade between arena bytes
    /// and decoder passes (see [`LOGIT_CHUNK`]).
    pub fn plan_with(&self, rows: usize) -> ArenaPlan {
        let rows = rows.clamp(1, self.vocab.max(1));
        let mut p = ArenaPlan::default();
        let mut at = 0usize;
        let mut take = |bytes: usize| {
            let start = at;
            at += (bytes + 3) & !3;
            start
        };
        let mut widest = self.emb_dim;
        for (i, l) in self.layers().iter().enumerate() {
            p.h[i] = take(l.hidden);
            p.c[i] = take(2 * l.hidden);
            widest = widest.max(l.hidden);
        }
        p.x = take(self.emb_dim);
        p.gates = take(2 * 4 * widest);
        p.lat16 = take(2 * self.k * self.emb_dim);
        p.lat8 = take(self.k * self.emb_dim);
        p.logits = take(4 * rows);
        p.logit_rows = rows;
        p.probs = take(4 * self.vocab);
        p.total = at;
        p
    }

    /// Multiply-accumulates per token: LSTM, head latents and prior, and the
    /// decoder over the whole vocabulary for every vocabulary softmax.
    pub fn macs_per_token(&self) -> u64 {
        let lstm: u64 = self
            .layers()
            .iter()
            .map(|l| 4 * l.hidden as u64 * (l.input + l.hidden) as u64)
            .sum();
        let (k, d, h) = (self.k as u64, self.emb_dim as u64, self.top_hidden() as u64);
        let prior = if k > 1 { k * h } else { 0 };
        lstm + k * d * h + prior + self.vocab_softmaxes() as u64 * self.vocab as u64 * d
    }

    /// Parameters (int8 weights and int32 biases; requantization pairs not counted).
    pub fn params(&self) -> u64 {
        let l: usize = self
            .layers()
            .iter()
            .map(|l| l.w_x.len() + l.w_h.len() + l.bias.len())
            .sum();
        (self.emb_w.len()
            + self.dec_b.len()
            + self.proj_w.len()
            + self.proj_b.len()
            + self.prior_w.len()
            + self.prior_b.len()
            + l) as u64
    }
}

/// Byte offsets of the language model's state and scratch in the arena,
/// each 4-byte aligned. The state (`h`, `c` per layer) persists between
/// steps; everything else is scratch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArenaPlan {
    /// Hidden output per layer, `H` i8 (Q0.7).
    pub h: [usize; MAX_LAYERS],
    /// Cell per layer, `H` i16 (Q4.11).
    pub c: [usize; MAX_LAYERS],
    /// Embedding output, `d` i8.
    pub x: usize,
    /// Gate values of the widest layer, `4H` i16 (Q3.12, then Q0.15).
    pub gates: usize,
    /// Latents, `K·d` i16 (Q0.15).
    pub lat16: usize,
    /// Decoder inputs, `K·d` i8 (Q0.7).
    pub lat8: usize,
    /// Logits of one vocabulary softmax, `min(V, LOGIT_CHUNK)` i32 (Q16):
    /// all of them, or one chunk of rows at a time.
    pub logits: usize,
    /// The next-token distribution, `V` u32 (Q32).
    pub probs: usize,
    /// Logits the `logits` buffer holds.
    pub logit_rows: usize,
    /// Bytes in all.
    pub total: usize,
}

/// A checked token table.
#[derive(Clone, Copy, Debug)]
pub struct Vocab<'a> {
    offsets: &'a [u32],
    /// Token ids sorted by their texts (empty: no index, linear lookups).
    index: &'a [u16],
    bytes: &'a [u8],
}

impl<'a> Vocab<'a> {
    /// Parses and checks a `VOCAB` section of `v` tokens: the offsets, the
    /// texts and, when flagged, the sorted index (strictly increasing
    /// texts, every id below `v`).
    pub fn parse(sec: &'a [u8], v: usize) -> Option<Self> {
        let flags = u32_at(sec, 4);
        if u32_at(sec, 0) as usize != v || flags & !VOCAB_SORTED_INDEX != 0 {
            return None;
        }
        // 32-bit clean: v comes from the caller and may be anything.
        let table_end = v.checked_add(1)?.checked_mul(4)?.checked_add(8)?;
        let offsets: &[u32] = bytemuck::try_cast_slice(sec.get(8..table_end)?).ok()?;
        let (index, bytes_at) = if flags & VOCAB_SORTED_INDEX != 0 {
            let end = table_end.checked_add(v.checked_mul(2)?.checked_add(3)? & !3)?;
            let all: &[u16] = bytemuck::try_cast_slice(sec.get(table_end..end)?).ok()?;
            let (index, pad) = all.split_at(v);
            if pad.iter().any(|&p| p != 0) {
                return None;
            }
            (index, end)
        } else {
            (&[][..], table_end)
        };
        let bytes = sec.get(bytes_at..)?;
        if offsets.first() != Some(&0) || offsets.last().copied() != Some(bytes.len() as u32) {
            return None;
        }
        for w in offsets.windows(2) {
            let (a, b) = (w[0] as usize, w[1] as usize);
            if b <= a || b - a > MAX_TOKEN_BYTES {
                return None;
            }
            core::str::from_utf8(bytes.get(a..b)?).ok()?;
        }
        let vocab = Vocab {
            offsets,
            index,
            bytes,
        };
        // Strictly increasing texts: distinct ids, so with V entries below V
        // the index is a permutation.
        let mut prev: Option<&[u8]> = None;
        for &id in index {
            let t = vocab.token(id as usize)?.as_bytes();
            if prev.is_some_and(|p| p >= t) {
                return None;
            }
            prev = Some(t);
        }
        Some(vocab)
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// True for an empty table (never, once checked).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The table carries the sorted index ([`VOCAB_SORTED_INDEX`]).
    pub fn is_indexed(&self) -> bool {
        !self.index.is_empty()
    }

    /// Text of token `id`.
    pub fn token(&self, id: usize) -> Option<&'a str> {
        let a = *self.offsets.get(id)? as usize;
        let b = *self.offsets.get(id + 1)? as usize;
        core::str::from_utf8(self.bytes.get(a..b)?).ok()
    }

    /// The id of a token's text: a binary search of the sorted index,
    /// O(log V) comparisons (a linear search for a table without one).
    pub fn id(&self, text: &str) -> Option<u16> {
        if !self.is_indexed() {
            return self.id_linear(text);
        }
        let key = text.as_bytes();
        let at = self
            .index
            .binary_search_by(|&id| {
                self.token(id as usize)
                    .map_or(&[][..], str::as_bytes)
                    .cmp(key)
            })
            .ok()?;
        self.index.get(at).copied()
    }

    /// The id of a token's text by a linear search (the reference of
    /// [`id`](Self::id), and its path for tables without an index).
    pub fn id_linear(&self, text: &str) -> Option<u16> {
        (0..self.len())
            .find(|&i| self.token(i) == Some(text))
            .map(|i| i as u16)
    }
}

/// Word indices (u32) of the `LM` section's header.
pub(super) mod word {
    pub const VERSION: usize = 0;
    pub const VOCAB: usize = 1;
    pub const EMB_DIM: usize = 2;
    pub const LAYERS: usize = 3;
    pub const HEAD: usize = 4;
    pub const K: usize = 5;
    pub const LEVEL: usize = 6;
    pub const PROJ_LAYOUT: usize = 7;
    pub const EMB_W: usize = 8;
    pub const EMB_RQ: usize = 9;
    pub const DEC_RQ: usize = 10;
    pub const DEC_B: usize = 11;
    pub const PROJ_W: usize = 12;
    pub const PROJ_RQ: usize = 13;
    pub const PROJ_B: usize = 14;
    pub const PRIOR_W: usize = 15;
    pub const PRIOR_RQ: usize = 16;
    pub const PRIOR_B: usize = 17;
}

/// Word indices (u32) within one layer record of the `LM` section.
mod layer_word {
    pub const INPUT: usize = 0;
    pub const HIDDEN: usize = 1;
    pub const W_X: usize = 2;
    pub const W_H: usize = 3;
    pub const RQ_X: usize = 4;
    pub const RQ_H: usize = 5;
    pub const BIAS: usize = 6;
    pub const LAYOUT: usize = 7;
}
