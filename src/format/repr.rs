//! Records of the model format: parsed from and (with `emit`) written to bytes.

use super::{u16_at, u32_at, NONE};
pub use crate::kernels::Mask;

/// What a model computes; each family has its own driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Family {
    /// Image classifier ([`crate::models::Classifier`]).
    Classifier = 1,
    /// Language model.
    LanguageModel = 2,
    /// Density model.
    Density = 3,
}

impl Family {
    /// Decodes a family byte.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Family::Classifier),
            2 => Some(Family::LanguageModel),
            3 => Some(Family::Density),
            _ => None,
        }
    }
}

/// Section kinds of the section table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum SectionKind {
    /// Tensor records.
    Tensors = 1,
    /// Op records.
    Ops = 2,
    /// Weights, biases, requantization parameters.
    Data = 3,
    /// Self-test inputs and expected outputs.
    SelfTest = 4,
    /// Family-specific parameters of the output head (density models: the
    /// Bernoulli tables, see [`crate::format::BernoulliHead`]).
    Head = 5,
    /// Language models: dimensions, head and weight offsets ([`crate::format::LmSpec`]).
    Lm = 6,
    /// Language models: the token table ([`crate::format::Vocab`]).
    Vocab = 7,
}

impl SectionKind {
    /// Decodes a section kind.
    pub fn from_u16(v: u16) -> Option<Self> {
        match v {
            1 => Some(SectionKind::Tensors),
            2 => Some(SectionKind::Ops),
            3 => Some(SectionKind::Data),
            4 => Some(SectionKind::SelfTest),
            5 => Some(SectionKind::Head),
            6 => Some(SectionKind::Lm),
            7 => Some(SectionKind::Vocab),
            _ => None,
        }
    }
}

/// Operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum OpKind {
    /// k×k convolution, stride, zero padding, fused clamp.
    Conv2d = 1,
    /// 2×2 max pooling, stride 2.
    MaxPool2x2 = 2,
    /// Global average pooling.
    GlobalAvgPool = 3,
    /// Fully connected.
    FullyConnected = 4,
    /// Element-wise sum of two tensors of one shape, each rescaled, with a
    /// fused clamp. The second operand is named by the op's `aux` field.
    Add = 5,
}

impl OpKind {
    /// Decodes an op kind.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(OpKind::Conv2d),
            2 => Some(OpKind::MaxPool2x2),
            3 => Some(OpKind::GlobalAvgPool),
            4 => Some(OpKind::FullyConnected),
            5 => Some(OpKind::Add),
            _ => None,
        }
    }

    /// Short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Conv2d => "conv2d",
            OpKind::MaxPool2x2 => "maxpool2x2",
            OpKind::GlobalAvgPool => "global_avg_pool",
            OpKind::FullyConnected => "fully_connected",
            OpKind::Add => "add",
        }
    }
}

/// An int8 activation tensor (HWC) and its place in the arena.
///
/// ```text
/// 0  h u16   2  w u16   4  c u16   6  dtype u8 (1 = int8)   7  reserved
/// 8  zero point i32   12  scale f32   16  arena offset u32   20  reserved u32
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorRepr {
    /// Height.
    pub h: u16,
    /// Width.
    pub w: u16,
    /// Channels.
    pub c: u16,
    /// Zero point, in `-128..=127`.
    pub zero_point: i32,
    /// Scale (`real = scale · (q − zero_point)`), finite and positive.
    pub scale: f32,
    /// Byte offset in the arena.
    pub arena_offset: u32,
}

impl TensorRepr {
    /// Bytes per record.
    pub const LEN: usize = 24;
    /// The dtype code of int8.
    pub const DTYPE_I8: u8 = 1;
    pub(crate) const EMPTY: TensorRepr = TensorRepr {
        h: 0,
        w: 0,
        c: 0,
        zero_point: 0,
        scale: 1.0,
        arena_offset: 0,
    };

    /// Elements (= bytes, for int8). Saturates at `u32::MAX`; a checked
    /// tensor always fits its arena, so the value is exact for those.
    pub fn len(&self) -> u32 {
        self.len_u64().min(u32::MAX as u64) as u32
    }

    pub(crate) fn len_u64(&self) -> u64 {
        self.h as u64 * self.w as u64 * self.c as u64
    }

    /// True for a tensor without elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Byte range in the arena.
    pub fn arena_range(&self) -> core::ops::Range<usize> {
        let start = self.arena_offset as usize;
        start..start.saturating_add(self.len() as usize)
    }

    pub(crate) fn overlaps(&self, other: &TensorRepr) -> bool {
        let (a, b) = (self.arena_range(), other.arena_range());
        a.start < b.end && b.start < a.end
    }

    /// Parses a record; None if it is malformed in a way a parse can tell.
    pub(crate) fn parse(b: &[u8]) -> Option<Self> {
        use tensor_field as f;
        if b.len() != Self::LEN
            || b[f::DTYPE] != Self::DTYPE_I8
            || b[f::RESERVED8] != 0
            || u32_at(b, f::RESERVED32.start) != 0
        {
            return None;
        }
        Some(TensorRepr {
            h: u16_at(b, f::H.start),
            w: u16_at(b, f::W.start),
            c: u16_at(b, f::C.start),
            zero_point: u32_at(b, f::ZERO_POINT.start) as i32,
            scale: f32::from_bits(u32_at(b, f::SCALE.start)),
            arena_offset: u32_at(b, f::ARENA_OFFSET.start),
        })
    }

    pub(crate) fn check(&self, arena_len: u32) -> Result<(), ()> {
        let ok = self.h > 0
            && self.w > 0
            && self.c > 0
            && (-128..=127).contains(&self.zero_point)
            && self.scale.is_finite()
            && self.scale > 0.0
            && self.arena_offset as u64 + self.len_u64() <= arena_len as u64;
        ok.then_some(()).ok_or(())
    }

    /// Writes the record into `b` (exactly [`Self::LEN`] bytes).
    #[cfg(feature = "emit")]
    pub fn emit(&self, b: &mut [u8]) {
        use tensor_field as f;
        b[f::H].copy_from_slice(&self.h.to_le_bytes());
        b[f::W].copy_from_slice(&self.w.to_le_bytes());
        b[f::C].copy_from_slice(&self.c.to_le_bytes());
        b[f::DTYPE] = Self::DTYPE_I8;
        b[f::RESERVED8] = 0;
        b[f::ZERO_POINT].copy_from_slice(&self.zero_point.to_le_bytes());
        b[f::SCALE].copy_from_slice(&self.scale.to_bits().to_le_bytes());
        b[f::ARENA_OFFSET].copy_from_slice(&self.arena_offset.to_le_bytes());
        b[f::RESERVED32].fill(0);
    }
}

/// One op: operands, parameters and where its data lives in the DATA section.
///
/// ```text
/// 0 kind  1 input tensor  2 output tensor  3 kernel  4 stride  5 pad  6 act_min i8  7 act_max i8
/// 8 weights offset u32   12 bias offset u32   16 requant offset u32   20 aux u8 ×4
/// ```
/// Offsets are relative to the DATA section, 4-byte aligned, `NONE` when
/// absent. Requantization data is `n` multipliers (i32) followed by `n`
/// shifts (i32), `n` being the output channels (1 for pooling; for `Add`,
/// three pairs: first operand, second operand, output).
///
/// One op's tensors and data, parsed once ([`crate::format::Model::parts`]).
#[derive(Clone, Copy, Debug)]
pub struct OpParts<'a> {
    /// The input tensor (all zero if the record is not this model's).
    pub input: TensorRepr,
    /// The output tensor.
    pub output: TensorRepr,
    /// int8 weights (conv, fully connected), else empty; empty also for a
    /// conv stored in [`ConvLayout::Pairs`], whose weights are `pairs`.
    pub weights: &'a [i8],
    /// A conv's weights in [`ConvLayout::Pairs`] (two per word, see
    /// [`crate::kernels::reference::to_pairs`]), else empty.
    pub pairs: &'a [i32],
    /// int32 bias, one per output channel, else empty.
    pub bias: &'a [i32],
    /// Requantization multipliers (per output channel; one for pooling, three for add).
    pub multiplier: &'a [i32],
    /// Requantization shifts, as many as the multipliers.
    pub shift: &'a [i32],
}

/// How a conv op stores its weights (aux byte 1), chosen at export for the
/// kernels of the target: the values are the same int8 weights either way,
/// and the checker verifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvLayout {
    /// One `i8` per weight, OHWI.
    Int8 = 0,
    /// OHWI, each run of four weights of a filter widened to two words of
    /// `i16` pairs as `SMLAD` multiplies them
    /// ([`crate::kernels::reference::to_pairs`]): twice the flash, and the
    /// DSP conv loads them without unpacking (`kernels::arm`). Only for
    /// unmasked convs with a multiple of 4 input channels; every `i16` is
    /// an int8 value.
    Pairs = 1,
}

/// `aux`: conv: byte 0 is the [`Mask`], byte 1 the [`ConvLayout`] of its
/// weights; add: byte 0 is the second operand's tensor index. Every other
/// `aux` byte is zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpRepr {
    /// Operator.
    pub kind: OpKind,
    /// Input tensor index.
    pub input: u8,
    /// Output tensor index.
    pub output: u8,
    /// Kernel size (conv: k; max pool: 2; else 0).
    pub kernel: u8,
    /// Stride (conv; max pool: 2; else 0).
    pub stride: u8,
    /// Zero padding (conv; else 0).
    pub pad: u8,
    /// Lower output clamp.
    pub act_min: i8,
    /// Upper output clamp.
    pub act_max: i8,
    /// Weights offset or `NONE`.
    pub weights: u32,
    /// Bias offset or `NONE`.
    pub bias: u32,
    /// Requantization offset or `NONE`.
    pub requant: u32,
    /// Op-specific bytes (see the layout above); zero when unused.
    pub aux: [u8; 4],
}

impl OpRepr {
    /// Bytes per record.
    pub const LEN: usize = 24;

    /// An op with every optional field empty.
    pub const fn new(kind: OpKind, input: u8, output: u8) -> Self {
        OpRepr {
            kind,
            input,
            output,
            kernel: 0,
            stride: 0,
            pad: 0,
            act_min: i8::MIN,
            act_max: i8::MAX,
            weights: NONE,
            bias: NONE,
            requant: NONE,
            aux: [0; 4],
        }
    }

    /// The conv mask (aux byte 0); None when the byte is not a mask.
    pub fn mask(&self) -> Option<Mask> {
        Mask::from_u8(self.aux[0])
    }

    /// A conv's weight layout (aux byte 1); None when the byte names none.
    pub fn conv_layout(&self) -> Option<ConvLayout> {
        match self.aux[1] {
            0 => Some(ConvLayout::Int8),
            1 => Some(ConvLayout::Pairs),
            _ => None,
        }
    }

    /// The second operand of an `Add` (aux byte 0).
    pub fn input2(&self) -> u8 {
        self.aux[0]
    }

    pub(crate) fn parse(b: &[u8]) -> Option<Self> {
        use op_field as f;
        if b.len() != Self::LEN {
            return None;
        }
        let a = &b[f::AUX];
        Some(OpRepr {
            kind: OpKind::from_u8(b[f::KIND])?,
            input: b[f::INPUT],
            output: b[f::OUTPUT],
            kernel: b[f::KERNEL],
            stride: b[f::STRIDE],
            pad: b[f::PAD],
            act_min: b[f::ACT_MIN] as i8,
            act_max: b[f::ACT_MAX] as i8,
            weights: u32_at(b, f::WEIGHTS.start),
            bias: u32_at(b, f::BIAS.start),
            requant: u32_at(b, f::REQUANT.start),
            aux: [a[0], a[1], a[2], a[3]],
        })
    }

    /// Writes the record into `b` (exactly [`Self::LEN`] bytes).
    #[cfg(feature = "emit")]
    pub fn emit(&self, b: &mut [u8]) {
        use op_field as f;
        b[f::KIND] = self.kind as u8;
        b[f::INPUT] = self.input;
        b[f::OUTPUT] = self.output;
        b[f::KERNEL] = self.kernel;
        b[f::STRIDE] = self.stride;
        b[f::PAD] = self.pad;
        b[f::ACT_MIN] = self.act_min as u8;
        b[f::ACT_MAX] = self.act_max as u8;
        b[f::WEIGHTS].copy_from_slice(&self.weights.to_le_bytes());
        b[f::BIAS].copy_from_slice(&self.bias.to_le_bytes());
        b[f::REQUANT].copy_from_slice(&self.requant.to_le_bytes());
        b[f::AUX].copy_from_slice(&self.aux);
    }
}

/// Byte offsets of a tensor record's fields (the table on [`TensorRepr`]).
mod tensor_field {
    use core::ops::Range;
    pub const H: Range<usize> = 0..2;
    pub const W: Range<usize> = 2..4;
    pub const C: Range<usize> = 4..6;
    pub const DTYPE: usize = 6;
    pub const RESERVED8: usize = 7;
    pub const ZERO_POINT: Range<usize> = 8..12;
    pub const SCALE: Range<usize> = 12..16;
    pub const ARENA_OFFSET: Range<usize> = 16..20;
    pub const RESERVED32: Range<usize> = 20..24;
}

/// Byte offsets of an op record's fields (the table on [`OpRepr`]).
mod op_field {
    use core::ops::Range;
    pub const KIND: usize = 0;
    pub const INPUT: usize = 1;
    pub const OUTPUT: usize = 2;
    pub const KERNEL: usize = 3;
    pub const STRIDE: usize = 4;
    pub const PAD: usize = 5;
    pub const ACT_MIN: usize = 6;
    pub const ACT_MAX: usize = 7;
    pub const WEIGHTS: Range<usize> = 8..12;
    pub const BIAS: Range<usize> = 12..16;
    pub const REQUANT: Range<usize> = 16..20;
    pub const AUX: Range<usize> = 20..24;
}
