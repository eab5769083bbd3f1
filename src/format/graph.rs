//! The graph body of classifier and density models: tensor and op records,
//! their checks (shapes, parameters, data ranges, the buffer plan) and the
//! accessors the graph drivers read them through.

use super::{
    BernoulliHead, Body, Graph, Mask, Model, OpKind, OpParts, OpRepr, SectionKind, TensorRepr,
    MAX_ABS_BIAS, MAX_ACC_DEPTH, MAX_OPS, MAX_POOL_AREA, MAX_TENSORS, NONE,
};
use crate::format::{ConvLayout, Family};
use crate::quant;
use crate::{Error, Result};

impl<'a> Model<'a> {
    /// The graph body; empty (no tensors, no ops) for a language model.
    fn graph(&self) -> Graph<'a> {
        match self.body {
            Body::Graph(g) => g,
            Body::Lstm(_) => Graph::EMPTY,
        }
    }

    pub(super) fn check_records(&self) -> Result<()> {
        let tn = self.graph().tensors.len() / TensorRepr::LEN;
        if self.graph().tensors.len() % TensorRepr::LEN != 0 || tn == 0 || tn > MAX_TENSORS {
            return Err(Error::BadSection(SectionKind::Tensors as u16));
        }
        let on = self.graph().ops.len() / OpRepr::LEN;
        if self.graph().ops.len() % OpRepr::LEN != 0 || on == 0 || on > MAX_OPS {
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
    pub(super) fn check_family(&self) -> Result<()> {
        let head = Error::BadSection(SectionKind::Head as u16);
        match self.family {
            Family::Classifier | Family::LanguageModel => match self.graph().head {
                Some(_) => Err(head),
                None => Ok(()),
            },
            Family::Density => {
                let bytes = self
                    .graph()
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

    fn check_op(&self, op: &OpRepr) -> core::result::Result<(), ()> {
        let ti = self.tensor(op.input as usize).ok_or(())?;
        let to = self.tensor(op.output as usize).ok_or(())?;
        if op.input == op.output || op.act_min > op.act_max {
            return Err(());
        }
        // aux: byte 0 belongs to conv (mask) and add (second operand), byte 1
        // to conv (weight layout); the rest is zero.
        if op.aux[2..] != [0; 2]
            || (!matches!(op.kind, OpKind::Conv2d | OpKind::Add) && op.aux[0] != 0)
            || (op.kind != OpKind::Conv2d && op.aux[1] != 0)
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
                if op.conv_layout().ok_or(())? == ConvLayout::Pairs {
                    // Unmasked, whole runs of four per filter, and every
                    // half an int8 value: the int8 conv's weights exactly.
                    if mask != Mask::None || ic % 4 != 0 {
                        return Err(());
                    }
                    self.check_weighted(op, oc, 2 * k * k * ic)?;
                    let pairs = self.data_i32(op.weights, oc * k * k * ic / 2).ok_or(())?;
                    let int8 = |h: i16| (-128..=127).contains(&h);
                    return pairs
                        .iter()
                        .all(|&w| int8(w as i16) && int8((w >> 16) as i16))
                        .then_some(())
                        .ok_or(());
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

    /// Number of tensors.
    pub fn tensor_count(&self) -> usize {
        self.graph().tensors.len() / TensorRepr::LEN
    }

    /// Number of ops.
    pub fn op_count(&self) -> usize {
        self.graph().ops.len() / OpRepr::LEN
    }

    /// Tensor `i`, or None if out of range.
    pub fn tensor(&self, i: usize) -> Option<TensorRepr> {
        TensorRepr::parse(
            self.graph()
                .tensors
                .get(i.checked_mul(TensorRepr::LEN)?..)?
                .get(..TensorRepr::LEN)?,
        )
    }

    /// Op `i`, or None if out of range.
    pub fn op(&self, i: usize) -> Option<OpRepr> {
        OpRepr::parse(
            self.graph()
                .ops
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

    /// An op's int8 weights (empty when it has none, or when a conv stores
    /// them in [`ConvLayout::Pairs`]: [`Model::parts`]`.pairs`).
    pub fn weights(&self, op: &OpRepr) -> &'a [i8] {
        self.parts(op).weights
    }

    /// An op's int32 bias, one per output channel (empty when it has none).
    pub fn bias(&self, op: &OpRepr) -> &'a [i32] {
        self.parts(op).bias
    }

    /// An op's requantization `(multipliers, shifts)`: one pair per output
    /// channel, or a single pair for pooling (empty when it has none).
    pub fn requant(&self, op: &OpRepr) -> (&'a [i32], &'a [i32]) {
        let p = self.parts(op);
        (p.multiplier, p.shift)
    }

    /// Everything the drivers read for one op, from one parse of its two
    /// tensor records (the accessors above each parse them again: about
    /// 40 instructions per record on a Cortex-M4, at every op of every
    /// position when a density model streams). Absent parts are empty, as
    /// from the accessors.
    pub fn parts(&self, op: &OpRepr) -> OpParts<'a> {
        let (ti, to) = (
            self.tensor(op.input as usize),
            self.tensor(op.output as usize),
        );
        let out_c = to.map_or(0, |t| t.c as usize);
        let len = match (op.kind, ti, to) {
            // u16 · u8 · u8 · u16 < 2^48: may not fit a 32-bit usize for an
            // op record that is not this model's.
            (OpKind::Conv2d, Some(ti), Some(to)) => [
                to.c as usize,
                op.kernel as usize,
                op.kernel as usize,
                ti.c as usize,
            ]
            .iter()
            .try_fold(1usize, |a, &b| a.checked_mul(b))
            .unwrap_or(usize::MAX),
            (OpKind::FullyConnected, Some(ti), Some(to)) => {
                (ti.len() as usize).saturating_mul(to.c as usize)
            }
            _ => 0,
        };
        let pairs = op.kind == OpKind::Conv2d && op.conv_layout() == Some(ConvLayout::Pairs);
        let n = match op.kind {
            OpKind::GlobalAvgPool => 1,
            OpKind::Add => 3,
            _ => out_c,
        };
        let (multiplier, shift) = self
            .data_i32(op.requant, 2 * n)
            .map(|s| s.split_at(n))
            .unwrap_or((&[], &[]));
        OpParts {
            input: ti.unwrap_or(TensorRepr::EMPTY),
            output: to.unwrap_or(TensorRepr::EMPTY),
            weights: if pairs {
                &[]
            } else {
                self.data_range(op.weights, len)
                    .map(bytemuck::cast_slice)
                    .unwrap_or(&[])
            },
            pairs: if pairs {
                self.data_i32(op.weights, len / 2).unwrap_or(&[])
            } else {
                &[]
            },
            bias: self.data_i32(op.bias, out_c).unwrap_or(&[]),
            multiplier,
            shift,
        }
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
