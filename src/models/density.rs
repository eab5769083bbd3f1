//! Density models (PixelCNN): exact log-likelihood of a binary image, and
//! sampling in raster order.

use core::ops::Range;

use super::classifier::SelfTestReport;
use super::graph::{self, Observer};
use crate::format::{BernoulliHead, ConvLayout, Family, Mask, Model, OpKind, MAX_TENSORS};
use crate::kernels::{driver as k, reference::ConvParams};
use crate::rng::Rng;
use crate::{Error, Result};

/// A negative log-likelihood in units of 2⁻¹⁶ nats: the sum of the head's
/// per-pixel table entries, so host and device agree to the last bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Nll(pub u64);

/// One op as the streaming paths run it, decoded once per image by
/// [`DensityModel::raster`] so that no record is parsed per position
/// (about 300 instructions per op and position on a Cortex-M4 before).
/// 44 bytes; a raster keeps [`STEPS`] of them on the stack.
#[derive(Clone, Copy)]
struct Step<'m> {
    weights: &'m [i8],
    bias: &'m [i32],
    multiplier: &'m [i32],
    shift: &'m [i32],
    /// Channels of the input, output and second input.
    in_c: u16,
    out_c: u16,
    b_c: u16,
    /// Input, output and second-input tensors.
    a: u8,
    o: u8,
    b: u8,
    /// Conv (with `mask`) or add.
    add: bool,
    mask: Mask,
    kernel: u8,
    pad: u8,
    act_min: i8,
    act_max: i8,
    /// Zero points of the input, output and second input (int8: checked).
    in_zp: i8,
    out_zp: i8,
    b_zp: i8,
}

/// Positions of a row the scoring paths run together (a strip): 1×1 convs
/// and adds run the whole-map kernels over the strip's positions at once
/// (the four-pixel conv path), so a tensor that only they read keeps a
/// strip of positions in the streaming arena instead of one.
const STRIP: usize = 4;

/// Stack bytes of a strip's input window for a masked conv
/// ([`DensityModel::masked_strip`]): `k · (4 + k − 1) · C_in`, 576 for a
/// 3×3 conv over 32 channels; wider windows run position by position.
const STRIP_WINDOW: usize = 1024;

/// The buffers of the streaming plan's strips, made once per image
/// ([`DensityModel::score`]) rather than zeroed at every op of every strip:
/// a masked conv's window, the four-pixel conv's buffers and the
/// per-position kernel's (the DSP kernels'; empty for the portable ones).
struct StripScratch {
    window: [i8; STRIP_WINDOW],
    conv: k::ConvScratch,
    pixel: k::PixelScratch,
}

impl StripScratch {
    fn new() -> Self {
        StripScratch {
            window: [0; STRIP_WINDOW],
            conv: k::ConvScratch::new(),
            pixel: k::PixelScratch::new(),
        }
    }
}

/// Ops whose [`Step`] a raster keeps (1,408 bytes of stack): the default
/// PixelCNN has 23; a model with more (the format allows
/// [`crate::format::MAX_OPS`]) decodes the others at every position.
const STEPS: usize = 32;

impl Step<'_> {
    const EMPTY: Step<'static> = Step {
        weights: &[],
        bias: &[],
        multiplier: &[],
        shift: &[],
        in_c: 0,
        out_c: 0,
        b_c: 0,
        a: 0,
        o: 0,
        b: 0,
        add: false,
        mask: Mask::None,
        kernel: 0,
        pad: 0,
        act_min: 0,
        act_max: 0,
        in_zp: 0,
        out_zp: 0,
        b_zp: 0,
    };
}

impl Nll {
    /// In nats.
    pub fn nats(self) -> f64 {
        self.0 as f64 / BernoulliHead::NLL_ONE
    }
}

/// Runs a density model: one logit per pixel, a Bernoulli over binary pixels.
///
/// Input convention: a pixel is 0 or 1 and its int8 value is the same
/// number (the checker requires the input tensor to have scale 1 and zero
/// point 0). [`DensityModel::new`] verifies that the ops are causal in
/// raster order, which is what makes [`DensityModel::sample`]'s
/// incremental evaluation exact.
#[derive(Clone, Copy, Debug)]
pub struct DensityModel<'m> {
    model: Model<'m>,
    head: BernoulliHead<'m>,
    h: usize,
    w: usize,
    /// Rows each tensor keeps while sampling (0: only the current position),
    /// at most the image height.
    rows: [u16; MAX_TENSORS],
    /// Where each tensor's ring of rows starts in the sampling arena.
    ring_at: [u32; MAX_TENSORS],
    sample_arena: u32,
}

impl<'m> DensityModel<'m> {
    /// Wraps a checked model.
    ///
    /// # Errors
    /// [`Error::WrongFamily`] if the model is not a density model;
    /// [`Error::NotCausal`] if an op could let a pixel see itself or a later
    /// pixel (the image read by anything but a mask-A conv, a spatial conv
    /// without mask, a shape change, an op other than conv and add), or if
    /// the logits could depend on the pixel they predict;
    /// [`Error::BadOp`] naming the first conv whose weights are not stored
    /// as int8 ([`ConvLayout::Pairs`] is for the classifiers' DSP kernels).
    pub fn new(model: Model<'m>) -> Result<Self> {
        if model.family() != Family::Density {
            return Err(Error::WrongFamily);
        }
        let head = model.bernoulli_head().ok_or(Error::BadGraph)?;
        let input = model.input();
        let (h, w) = (input.h as usize, input.w as usize);
        // strict[t]: position p of tensor t depends on pixels before p only.
        let mut strict = [false; MAX_TENSORS];
        // Rows kept per tensor on the streaming paths: a k×k causal conv
        // reads rows y − k/2 ..= y, of which at most min(k/2 + 1, h) exist.
        let mut rows = [0u16; MAX_TENSORS];
        rows[0] = input.h;
        for i in 0..model.op_count() {
            let op = model.op(i).ok_or(Error::BadOp(i as u16))?;
            let (a, o) = (op.input as usize, op.output as usize);
            let to = model.tensor(o).ok_or(Error::BadGraph)?;
            if (to.h as usize, to.w as usize) != (h, w) {
                return Err(Error::NotCausal);
            }
            strict[o] = match op.kind {
                OpKind::Conv2d => {
                    // The streaming and sampling kernels read int8 weights.
                    if op.conv_layout() != Some(ConvLayout::Int8) {
                        return Err(Error::BadOp(i as u16));
                    }
                    let kk = op.kernel as usize;
                    let mask = match op.mask() {
                        Some(Mask::None) if kk == 1 => Mask::B,
                        Some(m @ (Mask::A | Mask::B)) => m,
                        _ => return Err(Error::NotCausal),
                    };
                    if mask == Mask::B && a == 0 {
                        return Err(Error::NotCausal);
                    }
                    if a != 0 && kk > 1 {
                        let need = (kk / 2 + 1).min(h) as u16; // h ≤ u16::MAX
                        rows[a] = rows[a].max(need);
                    }
                    mask == Mask::A || strict[a]
                }
                OpKind::Add => {
                    let b = op.input2() as usize;
                    if a == 0 || b == 0 {
                        return Err(Error::NotCausal);
                    }
                    strict[a] && strict[b]
                }
                _ => return Err(Error::NotCausal),
            };
        }
        let out = model
            .op(model.op_count().wrapping_sub(1))
            .ok_or(Error::BadGraph)?
            .output as usize;
        if !strict[out] {
            return Err(Error::NotCausal);
        }
        let mut ring_at = [0u32; MAX_TENSORS];
        let mut at = 0u64;
        for t in 0..model.tensor_count() {
            let c = model.tensor(t).ok_or(Error::BadGraph)?.c as u64;
            ring_at[t] = u32::try_from(at).map_err(|_| Error::BadGraph)?;
            // A tensor read only where it is written (1×1 convs, adds) keeps
            // one strip of positions.
            let bytes = match rows[t] {
                0 => STRIP.min(w) as u64 * c,
                r => r as u64 * w as u64 * c,
            };
            at += (bytes + 3) & !3;
        }
        let sample_arena = u32::try_from(at).map_err(|_| Error::BadGraph)?;
        Ok(DensityModel {
            model,
            head,
            h,
            w,
            rows,
            ring_at,
            sample_arena,
        })
    }

    /// The model.
    pub fn model(&self) -> &Model<'m> {
        &self.model
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.h * self.w
    }

    /// Image height and width.
    pub fn shape(&self) -> (usize, usize) {
        (self.h, self.w)
    }

    /// Arena bytes [`log_prob`](Self::log_prob) needs (the model's buffer plan).
    pub fn arena_len(&self) -> usize {
        self.model.arena_len()
    }

    /// Arena bytes [`sample`](Self::sample) and the streaming paths need: a
    /// ring of `k / 2 + 1` rows for a tensor a `k`×`k` causal conv reads, a
    /// strip of four positions for a tensor only 1×1 convs and adds read,
    /// the whole image for the input.
    pub fn sample_arena_len(&self) -> usize {
        self.sample_arena as usize
    }

    fn check_image(&self, image: &[u8]) -> Result<()> {
        if image.len() != self.pixels() {
            return Err(Error::BadLength {
                expected: self.pixels() as u32,
                got: image.len() as u32,
            });
        }
        match image.iter().position(|&p| p > 1) {
            Some(i) => Err(Error::BadInput(i as u32)),
            None => Ok(()),
        }
    }

    /// Runs the whole network on `image` and returns the int8 logit of
    /// every pixel (borrowing the arena).
    ///
    /// # Errors
    /// As [`nll`](Self::nll).
    pub fn logits<'a>(&self, image: &[u8], arena: &'a mut [u8]) -> Result<&'a [i8]> {
        self.logits_observed(image, arena, &mut ())
    }

    /// [`logits`](Self::logits) with hooks around every op.
    ///
    /// # Errors
    /// As [`nll`](Self::nll).
    pub fn logits_observed<'a>(
        &self,
        image: &[u8],
        arena: &'a mut [u8],
        obs: &mut impl Observer,
    ) -> Result<&'a [i8]> {
        self.check_image(image)?;
        graph::check_arena(&self.model, arena)?;
        arena
            .get_mut(self.model.input().arena_range())
            .ok_or(Error::BadGraph)?
            .copy_from_slice(image);
        graph::run(&self.model, arena, obs)?;
        let out = arena
            .get(self.model.output().arena_range())
            .ok_or(Error::BadGraph)?;
        Ok(bytemuck::cast_slice(out))
    }

    /// The negative log-likelihood of a binary image (pixels 0 or 1, row-major).
    ///
    /// # Errors
    /// [`Error::BadLength`] for the wrong number of pixels, [`Error::BadInput`]
    /// for a pixel other than 0 or 1, [`Error::ArenaTooSmall`].
    pub fn nll(&self, image: &[u8], arena: &mut [u8]) -> Result<Nll> {
        self.nll_observed(image, arena, &mut ())
    }

    /// [`nll`](Self::nll) with hooks around every op.
    ///
    /// # Errors
    /// As [`nll`](Self::nll).
    pub fn nll_observed(
        &self,
        image: &[u8],
        arena: &mut [u8],
        obs: &mut impl Observer,
    ) -> Result<Nll> {
        let logits = self.logits_observed(image, arena, obs)?;
        let sum = logits
            .iter()
            .zip(image)
            .map(|(&q, &p)| self.head.nll(q, p == 1) as u64)
            .sum();
        Ok(Nll(sum))
    }

    /// `log p(image)` in nats (negative): `−nll(image).nats()`.
    ///
    /// # Errors
    /// As [`nll`](Self::nll).
    pub fn log_prob(&self, image: &[u8], arena: &mut [u8]) -> Result<f64> {
        Ok(-self.nll(image, arena)?.nats())
    }

    /// Samples an image in raster order into `image`, evaluating each
    /// tensor once per position: since the ops are causal (checked by
    /// [`new`](Self::new)), a position's activations depend only on pixels
    /// already drawn, so nothing is ever recomputed. Costs about one
    /// forward pass per image, against one per pixel for
    /// [`sample_full`](Self::sample_full), and draws the same image.
    ///
    /// # Errors
    /// [`Error::BadLength`] if `image` is not one image;
    /// [`Error::ArenaTooSmall`] below [`sample_arena_len`](Self::sample_arena_len).
    pub fn sample(&self, rng: &mut impl Rng, image: &mut [u8], arena: &mut [u8]) -> Result<()> {
        if image.len() != self.pixels() {
            return Err(Error::BadLength {
                expected: self.pixels() as u32,
                got: image.len() as u32,
            });
        }
        self.raster(arena, |head, q, px| {
            let bit = rng.next_u32() < head.p_one(q);
            image[px] = bit as u8;
            bit
        })
    }

    /// [`nll`](Self::nll) computed position by position in the small arena
    /// of [`sample`](Self::sample) (a ring of rows per tensor instead of
    /// whole feature maps): the same value, for boards whose RAM cannot hold
    /// the full buffer plan. Same MACs, more loop overhead.
    ///
    /// # Errors
    /// As [`nll`](Self::nll), with [`sample_arena_len`](Self::sample_arena_len).
    pub fn nll_streaming(&self, image: &[u8], arena: &mut [u8]) -> Result<Nll> {
        self.check_image(image)?;
        let mut total = 0u64;
        let head = self.head;
        self.score(image, arena, |q, px| {
            total += head.nll(q, image[px] == 1) as u64;
        })?;
        Ok(Nll(total))
    }

    /// [`logits`](Self::logits) computed position by position in the
    /// streaming arena (see [`nll_streaming`](Self::nll_streaming)), written
    /// into `out` (one per pixel).
    ///
    /// # Errors
    /// As [`nll_streaming`](Self::nll_streaming); [`Error::BadLength`] if
    /// `out` is not one logit per pixel.
    pub fn logits_streaming(&self, image: &[u8], arena: &mut [u8], out: &mut [i8]) -> Result<()> {
        self.check_image(image)?;
        if out.len() != self.pixels() {
            return Err(Error::BadLength {
                expected: self.pixels() as u32,
                got: out.len() as u32,
            });
        }
        self.score(image, arena, |q, px| out[px] = q)
    }

    /// Walks the positions in raster order, evaluating every op at each
    /// position only, then sets the pixel to `pixel(head, logit, index)`.
    #[inline(never)] // its scratch on the stack only while it runs
    fn raster(
        &self,
        arena: &mut [u8],
        mut pixel: impl FnMut(&BernoulliHead<'m>, i8, usize) -> bool,
    ) -> Result<()> {
        let mut table = [Step::EMPTY; STEPS];
        let out_t = self.streaming(arena, &mut table)?;
        let input = self.ring(0)?;
        arena.get_mut(input.clone()).ok_or(Error::BadGraph)?.fill(0);
        let mut scratch = k::PixelScratch::new();
        for y in 0..self.h {
            for x in 0..self.w {
                self.each_op(&table, |step| self.op_at(step, (y, x), arena, &mut scratch))?;
                let q = *arena
                    .get(self.at(out_t, y, x)?.start)
                    .ok_or(Error::BadGraph)? as i8;
                let px = y * self.w + x;
                let bit = pixel(&self.head, q, px);
                *arena.get_mut(input.start + px).ok_or(Error::BadGraph)? = bit as u8;
            }
        }
        Ok(())
    }

    /// The logits of a known image in the streaming arena, in raster
    /// order (`each(logit, index)`): row by row, a strip of [`STRIP`]
    /// positions at a time, every op over the strip before the next
    /// ([`Self::op_strip`]). The image is in the arena from the start: the
    /// ops are causal (checked by [`new`](Self::new)), so no logit reads a
    /// pixel at or after its own. The same logits as [`Self::raster`]
    /// with the image's pixels, which [`sample`](Self::sample) must use.
    #[inline(never)] // its scratch on the stack only while it runs
    fn score(&self, image: &[u8], arena: &mut [u8], mut each: impl FnMut(i8, usize)) -> Result<()> {
        let mut table = [Step::EMPTY; STEPS];
        let out_t = self.streaming(arena, &mut table)?;
        arena
            .get_mut(self.ring(0)?)
            .filter(|r| r.len() == image.len())
            .ok_or(Error::BadGraph)?
            .copy_from_slice(image);
        let strip = STRIP.min(self.w);
        let mut scratch = StripScratch::new();
        for y in 0..self.h {
            for x0 in (0..self.w).step_by(strip) {
                let n = strip.min(self.w - x0);
                self.each_op(&table, |step| {
                    self.op_strip(step, (y, x0, n), arena, &mut scratch)
                })?;
                for x in x0..x0 + n {
                    let q = *arena
                        .get(self.at(out_t, y, x)?.start)
                        .ok_or(Error::BadGraph)? as i8;
                    each(q, y * self.w + x);
                }
            }
        }
        Ok(())
    }

    /// What both streaming walks ([`Self::raster`], [`Self::score`]) start
    /// from: the arena checked against the streaming plan, the output
    /// tensor (returned), and the first [`STEPS`] ops decoded once into `table` (a longer model
    /// decodes the rest at every call of [`Self::each_op`]: same code,
    /// slower).
    fn streaming(&self, arena: &[u8], table: &mut [Step<'m>; STEPS]) -> Result<usize> {
        if arena.len() < self.sample_arena_len() {
            return Err(Error::ArenaTooSmall {
                needed: self.sample_arena,
                got: arena.len() as u32,
            });
        }
        let last = self.model.op_count().wrapping_sub(1);
        let out_t = self.model.op(last).ok_or(Error::BadGraph)?.output as usize;
        for (i, step) in table.iter_mut().enumerate().take(self.model.op_count()) {
            *step = self.step(i).map_err(|_| Error::BadOp(i as u16))?;
        }
        Ok(out_t)
    }

    /// Runs `run` on every op's [`Step`] in order (from `table`, or decoded
    /// past it); a failure of op `i` is [`Error::BadOp`]`(i)`.
    fn each_op(
        &self,
        table: &[Step<'m>; STEPS],
        mut run: impl FnMut(&Step<'m>) -> Result<()>,
    ) -> Result<()> {
        for i in 0..self.model.op_count() {
            let decoded;
            let step = match table.get(i) {
                Some(s) => s,
                None => {
                    decoded = self.step(i).map_err(|_| Error::BadOp(i as u16))?;
                    &decoded
                }
            };
            run(step).map_err(|_| Error::BadOp(i as u16))?;
        }
        Ok(())
    }

    /// Samples like [`sample`](Self::sample), but runs the whole network
    /// once per pixel. The reference for the incremental path, and the
    /// baseline of its speed-up; draws the same image for the same RNG.
    ///
    /// # Errors
    /// As [`sample`](Self::sample), with the arena of [`nll`](Self::nll).
    pub fn sample_full(
        &self,
        rng: &mut impl Rng,
        image: &mut [u8],
        arena: &mut [u8],
    ) -> Result<()> {
        if image.len() != self.pixels() {
            return Err(Error::BadLength {
                expected: self.pixels() as u32,
                got: image.len() as u32,
            });
        }
        image.fill(0);
        for px in 0..self.pixels() {
            let logits = self.logits(image, arena)?;
            let q = *logits.get(px).ok_or(Error::BadGraph)?;
            image[px] = (rng.next_u32() < self.head.p_one(q)) as u8;
        }
        Ok(())
    }

    /// Runs the stored self-test (images and the logits the host computed).
    /// With an arena smaller than [`arena_len`](Self::arena_len) it runs the
    /// streaming path, comparing logits as they are computed.
    ///
    /// # Errors
    /// [`Error::BadSelfTest`] when the model has none; as [`nll`](Self::nll)
    /// or, with a small arena, [`nll_streaming`](Self::nll_streaming).
    pub fn selftest(&self, arena: &mut [u8]) -> Result<SelfTestReport> {
        let st = self.model.selftest().ok_or(Error::BadSelfTest)?;
        let mut report = SelfTestReport {
            passed: 0,
            total: 0,
            first_failure: None,
        };
        let full = arena.len() >= self.arena_len();
        for i in 0..st.count() {
            let (input, expected) = st.case(i).ok_or(Error::BadSelfTest)?;
            let same = if full {
                self.logits(input, arena)? == expected
            } else {
                self.check_image(input)?;
                if expected.len() != self.pixels() {
                    return Err(Error::BadSelfTest);
                }
                let mut same = true;
                self.score(input, arena, |q, px| same &= expected[px] == q)?;
                same
            };
            report.record(i, same);
        }
        Ok(report)
    }

    /// Byte range of tensor `t`'s ring (or single position) in the sampling arena.
    fn ring(&self, t: usize) -> Result<Range<usize>> {
        let c = self.model.tensor(t).ok_or(Error::BadGraph)?.c as usize;
        Ok(self.ring_c(t, c))
    }

    /// [`Self::ring`] of a tensor of `c` channels, its record already read.
    fn ring_c(&self, t: usize, c: usize) -> Range<usize> {
        let start = self.ring_at.get(t).map_or(0, |&a| a as usize);
        let rows = self.rows.get(t).map_or(0, |&r| r as usize);
        start..start + (rows * self.w).max(STRIP.min(self.w)) * c
    }

    /// Bytes of tensor `t` (`c` channels) at positions `(y, x0..x0 + n)`,
    /// one after another in its ring or strip: `x0` a multiple of the
    /// strip's length and `n` at most that length, as [`Self::score`]
    /// walks them.
    fn strip_c(&self, t: usize, c: usize, y: usize, x0: usize, n: usize) -> Range<usize> {
        let start = self.at_c(t, c, y, x0).start;
        start..start + n * c
    }

    /// Bytes of tensor `t` at position `(y, x)` in its ring.
    fn at(&self, t: usize, y: usize, x: usize) -> Result<Range<usize>> {
        let c = self.model.tensor(t).ok_or(Error::BadGraph)?.c as usize;
        Ok(self.at_c(t, c, y, x))
    }

    /// [`Self::at`] of a tensor of `c` channels, its record already read.
    fn at_c(&self, t: usize, c: usize, y: usize, x: usize) -> Range<usize> {
        let ring = self.ring_at.get(t).map_or(0, |&a| a as usize);
        let start = match self.rows.get(t).map_or(0, |&r| r as usize) {
            // `x % STRIP` is also `x` when the strip is the whole row (`w < STRIP`).
            0 => ring + (x % STRIP) * c,
            rows => ring + ((y % rows) * self.w + x) * c,
        };
        start..start + c
    }

    /// Op `i` decoded for the streaming paths.
    fn step(&self, i: usize) -> Result<Step<'m>> {
        let bad = Error::BadGraph;
        let op = self.model.op(i).ok_or(bad)?;
        let parts = self.model.parts(&op);
        let (ti, to) = (parts.input, parts.output);
        if ti.c == 0 || to.c == 0 {
            return Err(bad);
        }
        let zp = |z: i32| i8::try_from(z).map_err(|_| bad);
        let add = match op.kind {
            OpKind::Conv2d => false,
            OpKind::Add => true,
            _ => return Err(bad),
        };
        let (b, b_c, b_zp) = if add {
            let tb = self.model.tensor(op.input2() as usize).ok_or(bad)?;
            (op.input2(), tb.c, zp(tb.zero_point)?)
        } else {
            (0, 0, 0)
        };
        Ok(Step {
            weights: parts.weights,
            bias: parts.bias,
            multiplier: parts.multiplier,
            shift: parts.shift,
            in_c: ti.c,
            out_c: to.c,
            b_c,
            a: op.input,
            o: op.output,
            b,
            add,
            mask: if add {
                Mask::None
            } else {
                op.mask().ok_or(bad)?
            },
            kernel: op.kernel,
            pad: op.pad,
            act_min: op.act_min,
            act_max: op.act_max,
            in_zp: zp(ti.zero_point)?,
            out_zp: zp(to.zero_point)?,
            b_zp,
        })
    }

    /// Computes one op at position `(y, x)` only.
    fn op_at(
        &self,
        s: &Step<'m>,
        (y, x): (usize, usize),
        arena: &mut [u8],
        scratch: &mut k::PixelScratch,
    ) -> Result<()> {
        let bad = Error::BadGraph;
        let (a, o) = (s.a as usize, s.o as usize);
        if s.add {
            return self.add_strip(s, y, x, 1, arena);
        }
        // A single-position input (1×1 conv) is a 1×1 image at (0, 0).
        let (h, w, rows, iy, ix, src) = match self.rows.get(a).map_or(0, |&r| r as usize) {
            0 => (1, 1, 1, 0, 0, self.at_c(a, s.in_c as usize, y, x)),
            r => (self.h, self.w, r, y, x, self.ring_c(a, s.in_c as usize)),
        };
        let p = ConvParams {
            in_h: h,
            in_w: w,
            in_c: s.in_c as usize,
            out_h: h,
            out_w: w,
            out_c: s.out_c as usize,
            k: s.kernel as usize,
            stride: 1,
            pad: s.pad as usize,
            in_zp: s.in_zp as i32,
            out_zp: s.out_zp as i32,
            act_min: s.act_min,
            act_max: s.act_max,
        };
        let dst = self.at_c(o, s.out_c as usize, y, x);
        let (input, _, out) = graph::split_three(arena, src.clone(), src, dst).ok_or(bad)?;
        k::conv2d_pixel_in(
            scratch,
            &p,
            s.mask,
            bytemuck::cast_slice(input),
            rows,
            iy,
            ix,
            s.weights,
            s.bias,
            s.multiplier,
            s.shift,
            bytemuck::cast_slice_mut(out),
        )
    }

    /// The add op `s` at positions `(y, x0..x0 + n)` (one position:
    /// `n = 1`, any `x0`; a strip: as [`Self::strip_c`]).
    fn add_strip(
        &self,
        s: &Step<'m>,
        y: usize,
        x0: usize,
        n: usize,
        arena: &mut [u8],
    ) -> Result<()> {
        let p = Self::add_params(s)?;
        let ra = self.strip_c(s.a as usize, s.in_c as usize, y, x0, n);
        let rb = self.strip_c(s.b as usize, s.b_c as usize, y, x0, n);
        let ro = self.strip_c(s.o as usize, s.out_c as usize, y, x0, n);
        let (va, vb, out) = graph::split_three(arena, ra, rb, ro).ok_or(Error::BadGraph)?;
        k::add(
            &p,
            bytemuck::cast_slice(va),
            bytemuck::cast_slice(vb),
            bytemuck::cast_slice_mut(out),
        )
    }

    /// The add op `s`'s parameters.
    fn add_params(s: &Step<'m>) -> Result<k::AddParams> {
        let bad = Error::BadGraph;
        let (m, sh) = (s.multiplier, s.shift);
        Ok(k::AddParams {
            a_zp: s.in_zp as i32,
            b_zp: s.b_zp as i32,
            out_zp: s.out_zp as i32,
            a_mult: *m.first().ok_or(bad)?,
            a_shift: *sh.first().ok_or(bad)?,
            b_mult: *m.get(1).ok_or(bad)?,
            b_shift: *sh.get(1).ok_or(bad)?,
            out_mult: *m.get(2).ok_or(bad)?,
            out_shift: *sh.get(2).ok_or(bad)?,
            act_min: s.act_min,
            act_max: s.act_max,
        })
    }

    /// Computes one op at the positions `(y, x0..x0 + n)` of a strip
    /// ([`Self::score`]): an add, or a 1×1 conv without padding, over the
    /// strip at once (the whole-map kernels on a 1 × `n` image: on the DSP
    /// extension the four-pixel conv path); any other conv position by
    /// position ([`Self::op_at`]).
    fn op_strip(
        &self,
        s: &Step<'m>,
        (y, x0, n): (usize, usize, usize),
        arena: &mut [u8],
        scratch: &mut StripScratch,
    ) -> Result<()> {
        let bad = Error::BadGraph;
        let (a, o) = (s.a as usize, s.o as usize);
        let (in_c, out_c) = (s.in_c as usize, s.out_c as usize);
        if s.add {
            return self.add_strip(s, y, x0, n, arena);
        }
        if s.kernel != 1 || s.pad != 0 {
            if self.masked_strip(s, (y, x0, n), arena, scratch)? {
                return Ok(());
            }
            for x in x0..x0 + n {
                self.op_at(s, (y, x), arena, &mut scratch.pixel)?;
            }
            return Ok(());
        }
        // A 1×1 conv's mask is B, or A with every weight zero (checked at
        // load): the plain conv computes the same.
        let p = ConvParams {
            in_h: 1,
            in_w: n,
            in_c,
            out_h: 1,
            out_w: n,
            out_c,
            k: 1,
            stride: 1,
            pad: 0,
            in_zp: s.in_zp as i32,
            out_zp: s.out_zp as i32,
            act_min: s.act_min,
            act_max: s.act_max,
        };
        let src = self.strip_c(a, in_c, y, x0, n);
        let dst = self.strip_c(o, out_c, y, x0, n);
        let (input, _, out) = graph::split_three(arena, src.clone(), src, dst).ok_or(bad)?;
        k::conv2d_in(
            &mut scratch.conv,
            &p,
            bytemuck::cast_slice(input),
            s.weights,
            s.bias,
            s.multiplier,
            s.shift,
            bytemuck::cast_slice_mut(out),
        )
    }

    /// A masked `k`×`k` conv (odd `k`, padding `k / 2`) at the positions
    /// `(y, x0..x0 + n)` of a strip: the input rows it reads are copied in
    /// order from the input's ring into a `k` × (`n + k − 1`) window on the
    /// stack (padding, and the masked rows below the centre, as the zero
    /// point), and the whole-map masked conv computes the strip's outputs
    /// from it (on the DSP extension, the four-pixel path over the live
    /// taps). Centre-row columns right of a position are left as they are
    /// in the ring: the mask gives them zero weights (checked at load), so
    /// they change nothing. Returns false, doing nothing, for another conv
    /// or a window over [`STRIP_WINDOW`] bytes (the caller then runs the
    /// positions one by one).
    fn masked_strip(
        &self,
        s: &Step<'m>,
        (y, x0, n): (usize, usize, usize),
        arena: &mut [u8],
        scratch: &mut StripScratch,
    ) -> Result<bool> {
        let bad = Error::BadGraph;
        let (k, pad) = (s.kernel as usize, s.pad as usize);
        let (a, in_c) = (s.a as usize, s.in_c as usize);
        let cols = n + k.saturating_sub(1);
        // Saturating: a checked model keeps k · k · C_in small, but this
        // must not overflow on a 32-bit target whatever the record says.
        let need = k.saturating_mul(cols).saturating_mul(in_c);
        let rows = self.rows.get(a).map_or(0, |&r| r as usize);
        // Only the DSP kernels run the window over the live taps at the
        // four-pixel path's speed; the portable ones run the reference conv
        // there, which on a Cortex-M3 made the streamed PixelCNN image
        // 491,817,480 instructions against 258,004,840 position by position.
        // Hosted targets keep the path (speed matters less there than that
        // the host's tests run it).
        let fast_window = cfg!(any(tinyinfer_dsp, not(target_os = "none")));
        if !fast_window
            || k % 2 == 0
            || pad != k / 2
            || s.mask == Mask::None
            || need > STRIP_WINDOW
            || rows == 0
        {
            return Ok(false);
        }
        let zp = s.in_zp;
        let win = scratch.window.get_mut(..need).ok_or(bad)?;
        win.fill(zp);
        let ring = self.ring_c(a, in_c);
        let src: &[i8] = bytemuck::cast_slice(arena.get(ring).ok_or(bad)?);
        // Window columns inside the image: 0 <= x0 + j - pad < w.
        let j_lo = pad.saturating_sub(x0).min(cols);
        let j_hi = cols.min((self.w + pad).saturating_sub(x0)).max(j_lo);
        let (live, _) = s.mask.live_rows(k);
        for (ky, dst) in win.chunks_exact_mut(cols * in_c).enumerate().take(live) {
            // Image row y - pad + ky, kept in the ring while row y is computed.
            let Some(r) = (y + ky).checked_sub(pad) else {
                continue;
            };
            let at = ((r % rows) * self.w + x0 + j_lo - pad) * in_c;
            let len = (j_hi - j_lo) * in_c;
            dst.get_mut(j_lo * in_c..j_lo * in_c + len)
                .ok_or(bad)?
                .copy_from_slice(src.get(at..at + len).ok_or(bad)?);
        }
        let p = ConvParams {
            in_h: k,
            in_w: cols,
            in_c,
            out_h: 1,
            out_w: n,
            out_c: s.out_c as usize,
            k,
            stride: 1,
            pad: 0,
            in_zp: zp as i32,
            out_zp: s.out_zp as i32,
            act_min: s.act_min,
            act_max: s.act_max,
        };
        let dst = self.strip_c(s.o as usize, p.out_c, y, x0, n);
        let out = arena.get_mut(dst).ok_or(bad)?;
        k::conv2d_masked_in(
            &mut scratch.conv,
            &p,
            s.mask,
            win,
            s.weights,
            s.bias,
            s.multiplier,
            s.shift,
            bytemuck::cast_slice_mut(out),
        )?;
        Ok(true)
    }
}
