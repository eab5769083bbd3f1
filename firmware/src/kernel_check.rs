//! Bit-exactness of the DSP kernels on the Cortex-M itself.
//!
//! `tinyinfer::kernels::arm` is built only for Armv7E-M, so the host's
//! property tests cannot run it. This module runs seeded random cases
//! (PCG32 from `tinyinfer::rng`) of every `arm` kernel and of the
//! reference kernel on the same tensors, and stops at the first byte that
//! differs, or the first call whose `Result` differs (bad lengths must give
//! the reference's error, field for field).
//!
//! The cases cover what the fast paths special-case: input zero points
//! −128 and 127, saturating multipliers (`i32::MAX`, the extreme shifts),
//! biases at `i32::MIN`/`i32::MAX` (the accumulator wraps), all-`127` and
//! all-`−128` tensors, odd sizes, channel counts that are not multiples of
//! 2 or 4, strides 1 and 2, padding up to and past the kernel, windows
//! longer than one stack segment, kernel rows longer than it (the portable
//! fallback), more than one channel block, and the DiracNet layer shapes.

use tinyinfer::kernels::lm::{QMatrix, Shifts, TiedRows, WeightLayout};
use tinyinfer::kernels::reference::{AddParams, ConvParams, FcParams, GapParams, PoolParams};
use tinyinfer::kernels::{arm, fast, reference, Mask};
use tinyinfer::quant::{HighWord, MAX_SHIFT, MIN_SHIFT};
use tinyinfer::rng::{Pcg32, Rng};

/// The first difference found.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub struct Mismatch {
    /// Kernel name.
    pub kernel: &'static str,
    /// Case number (0-based) within that kernel's cases.
    pub case: u32,
    /// First differing output byte, or `u32::MAX` when the `Result`s differ.
    pub index: u32,
}

/// Cases run per kernel.
#[derive(Clone, Copy, Debug, Default, defmt::Format)]
pub struct Summary {
    /// conv2d cases (random and DiracNet shapes).
    pub conv: u32,
    /// Of them, cases also run with the weights in the pairs layout
    /// (`conv2d_pairs`, the input channels a multiple of 4).
    pub pairs: u32,
    /// conv2d_masked cases (masks A and B, odd kernels up to 7; same and
    /// valid geometry).
    pub masked: u32,
    /// fully_connected cases.
    pub fc: u32,
    /// Language-model cases (`lstm_gates`, `latent` and `decoder` each).
    pub lm: u32,
    /// Element-wise add cases (short slices and the long-tensor table path).
    pub add: u32,
    /// Pooling cases (`max_pool_2x2` and `global_avg_pool` each).
    pub pool: u32,
    /// Wrong-length calls compared with the reference's error.
    pub errors: u32,
}

/// Random draws for test tensors.
struct Draw(Pcg32);

impl Draw {
    fn below(&mut self, n: u32) -> u32 {
        if n == 0 {
            0
        } else {
            ((self.0.next_u32() as u64 * n as u64) >> 32) as u32
        }
    }
    fn usize_in(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u32) as usize
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u32) as usize]
    }
    fn i8(&mut self) -> i8 {
        self.0.next_u32() as i8
    }
    /// A zero point: the extremes often.
    fn zp(&mut self) -> i32 {
        match self.below(64) {
            // Outside int8 (only a direct call passes these; the DSP
            // kernels must hand them to the reference's i32 arithmetic).
            0 => [i32::MIN, -129, 128, 40_000][self.below(4) as usize],
            1..=16 => -128,
            17..=32 => 127,
            _ => self.i8() as i32,
        }
    }
    /// Bytes: random, or saturated one way for a whole tensor.
    fn bytes(&mut self, out: &mut [i8]) {
        match self.below(8) {
            0 => out.fill(127),
            1 => out.fill(-128),
            _ => out.iter_mut().for_each(|v| *v = self.0.next_u32() as i8),
        }
    }
    fn requant(&mut self, m: &mut [i32], s: &mut [i32]) {
        for (m, s) in m.iter_mut().zip(s.iter_mut()) {
            *m = match self.below(4) {
                0 => i32::MAX,
                1 => 1 << 30,
                2 => 0,
                _ => (self.0.next_u32() >> 1) as i32,
            };
            *s = match self.below(4) {
                0 => MIN_SHIFT,
                1 => MAX_SHIFT,
                _ => self.below(17) as i32 - 12,
            };
        }
    }
    /// A multiplier `≥ 0`: `i32::MAX`, 0, or of log-uniform magnitude, so
    /// that outputs land inside the clamp range often instead of
    /// saturating (random int8 dot products are large against a multiplier
    /// near 2^31).
    fn log_mult(&mut self) -> i32 {
        match self.below(4) {
            0 => i32::MAX,
            1 => 0,
            _ => ((self.0.next_u32() >> 1) >> self.below(28)) as i32,
        }
    }
    /// Every pair of the high-word form (`m ≥ 0`, shift `MIN_SHIFT..=−2`,
    /// the extremes included, log-uniform multipliers), what a trained
    /// language model's gates and latents have: the stages that trust a
    /// [`HighWord`] proof run.
    fn requant_high_word(&mut self, m: &mut [i32], s: &mut [i32]) {
        for (m, s) in m.iter_mut().zip(s.iter_mut()) {
            *m = self.log_mult();
            *s = match self.below(4) {
                0 => MIN_SHIFT,
                1 => -2,
                _ => -2 - self.below(30) as i32,
            };
        }
    }
    /// Half the time every channel on the DSP kernels' asm output stages
    /// (`m ≥ 0`, shift −31..=−1, the extremes included), so that their
    /// all-channels-in-asm paths run; otherwise [`Self::requant`].
    fn requant_mixed(&mut self, m: &mut [i32], s: &mut [i32]) {
        if self.below(2) == 0 {
            return self.requant(m, s);
        }
        for (m, s) in m.iter_mut().zip(s.iter_mut()) {
            *m = self.log_mult();
            *s = match self.below(5) {
                0 => MIN_SHIFT,
                1 => -2,
                2 => -1,
                _ => -2 - self.below(30) as i32,
            };
            // Rarely, one channel just outside the path (shift −32 or 0,
            // multiplier −1): the asm loops must hand it back.
            match self.below(64) {
                0 => *s = MIN_SHIFT - 1,
                1 => *s = 0,
                2 => *m = -1,
                _ => {}
            }
        }
    }
    /// What the exporter writes for a conv layer: multipliers in
    /// `[2^30, 2^31)`, shifts −10..=−6, small biases.
    fn model_like(&mut self, b: &mut [i32], m: &mut [i32], s: &mut [i32]) {
        for ((b, m), s) in b.iter_mut().zip(m.iter_mut()).zip(s.iter_mut()) {
            *b = (self.0.next_u32() as i32) >> 19;
            *m = ((self.0.next_u32() >> 2) | (1 << 30)) as i32;
            *s = -6 - self.below(5) as i32;
        }
    }
    fn bias(&mut self, b: &mut [i32]) {
        let wrap = self.below(6) == 0;
        for v in b.iter_mut() {
            *v = match (wrap, self.below(2)) {
                (true, 0) => i32::MAX,
                (true, _) => i32::MIN,
                _ => (self.0.next_u32() as i32) >> 11,
            };
        }
    }
    fn clamp(&mut self) -> (i8, i8) {
        if self.below(2) == 0 {
            (-128, 127)
        } else {
            let (a, b) = (self.i8(), self.i8());
            (a.min(b), a.max(b))
        }
    }
}

/// Splits `scratch` into the tensors of one case: i8 buffers of the given
/// lengths and i32 buffers of `n32` each (bias, multiplier, shift).
struct Tensors<'a> {
    input: &'a mut [i8],
    weights: &'a mut [i8],
    want: &'a mut [i8],
    got: &'a mut [i8],
    bias: &'a mut [i32],
    mult: &'a mut [i32],
    shift: &'a mut [i32],
    /// What is left of the scratch (word-aligned).
    rest: &'a mut [u8],
}

fn carve(scratch: &mut [u8], lens: [usize; 4], n32: usize) -> Option<Tensors<'_>> {
    let r4 = |n: usize| n.div_ceil(4) * 4;
    let (i32s, rest) = scratch.split_at_mut_checked(3 * 4 * n32)?;
    let (input, rest) = rest.split_at_mut_checked(r4(lens[0]))?;
    let (weights, rest) = rest.split_at_mut_checked(r4(lens[1]))?;
    let (want, rest) = rest.split_at_mut_checked(r4(lens[2]))?;
    let (got, spare) = rest.split_at_mut_checked(r4(lens[3]))?;
    let got = &mut got[..lens[3]];
    let i32s: &mut [i32] = bytemuck::try_cast_slice_mut(i32s).ok()?;
    let (bias, rest) = i32s.split_at_mut(n32);
    let (mult, shift) = rest.split_at_mut(n32);
    Some(Tensors {
        input: i8s(input, lens[0]),
        weights: i8s(weights, lens[1]),
        want: i8s(want, lens[2]),
        got: bytemuck::cast_slice_mut(got),
        bias,
        mult,
        shift,
        rest: spare,
    })
}

fn i8s(b: &mut [u8], n: usize) -> &mut [i8] {
    bytemuck::cast_slice_mut(&mut b[..n])
}

fn first_diff(a: &[i8], b: &[i8]) -> Option<u32> {
    a.iter().zip(b).position(|(x, y)| x != y).map(|i| i as u32)
}

/// Ticks of the caller's 24-bit clock (SysTick) taken by the reference,
/// `fast` and `arm` kernels on one case.
#[derive(Clone, Copy, Debug, Default, defmt::Format)]
pub struct Timing {
    /// `kernels::reference`.
    pub reference: u32,
    /// `kernels::fast`.
    pub fast: u32,
    /// `kernels::arm`.
    pub arm: u32,
    /// `kernels::arm::conv2d_pairs` (the same weights in the pairs layout;
    /// 0 when the input channels are not a multiple of 4).
    pub pairs: u32,
}

/// `Err` at the first difference between a reference call and the arm
/// kernel's: their `Result`s (index `u32::MAX`), then their output bytes.
fn same<T: PartialEq>(
    kernel: &'static str,
    case: u32,
    (r, a): (T, T),
    want: &[i8],
    got: &[i8],
) -> Result<(), Mismatch> {
    let index = if r != a {
        u32::MAX
    } else {
        match first_diff(want, got) {
            Some(i) => i,
            None => return Ok(()),
        }
    };
    Err(Mismatch {
        kernel,
        case,
        index,
    })
}

/// How far [`conv_case`] went.
#[derive(PartialEq)]
enum Checked {
    /// The case does not fit the scratch (nothing run).
    NoRoom,
    /// The int8 kernels checked.
    Int8,
    /// And the same weights in the pairs layout.
    Pairs,
}

/// One conv2d case on `p`; `Err(index)` at the first difference, else
/// how far it went. With a clock, also times the implementations into
/// `timing`.
fn conv_case(
    d: &mut Draw,
    scratch: &mut [u8],
    cs: &mut arm::ConvScratch,
    p: &ConvParams,
    clock: &mut dyn FnMut() -> u32,
    timing: &mut Timing,
    model_like: bool,
) -> Result<Checked, u32> {
    let lens = [
        p.in_h * p.in_w * p.in_c,
        p.out_c * p.k * p.k * p.in_c,
        p.out_h * p.out_w * p.out_c,
        p.out_h * p.out_w * p.out_c,
    ];
    let Some(t) = carve(scratch, lens, p.out_c) else {
        return Ok(Checked::NoRoom);
    };
    if model_like {
        t.input.iter_mut().for_each(|v| *v = d.i8());
        t.weights.iter_mut().for_each(|v| *v = d.i8() >> 1);
    } else {
        d.bytes(t.input);
        d.bytes(t.weights);
    }
    if model_like {
        d.model_like(t.bias, t.mult, t.shift);
    } else {
        d.bias(t.bias);
        d.requant_mixed(t.mult, t.shift);
    }
    t.want.fill(0x55);
    t.got.fill(0x55u8 as i8);
    let t0 = clock();
    let f = fast::conv2d(p, t.input, t.weights, t.bias, t.mult, t.shift, t.got);
    let t1 = clock();
    let r = reference::conv2d(p, t.input, t.weights, t.bias, t.mult, t.shift, t.want);
    let t2 = clock();
    if r != f || first_diff(t.want, t.got).is_some() {
        return Err(u32::MAX - 1);
    }
    t.got.fill(0x55u8 as i8);
    let t3 = clock();
    let a = arm::conv2d(p, t.input, t.weights, t.bias, t.mult, t.shift, t.got);
    let t4 = clock();
    // A 24-bit counter (SysTick): differences modulo 2^24.
    let dt = |a: u32, b: u32| b.wrapping_sub(a) & 0x00FF_FFFF;
    *timing = Timing {
        reference: dt(t1, t2),
        fast: dt(t0, t1),
        arm: dt(t3, t4),
        pairs: 0,
    };
    if r != a {
        return Err(u32::MAX);
    }
    if let Some(i) = first_diff(t.want, t.got) {
        return Err(i);
    }
    // Again with the scratch every case shares, as the density driver's
    // strips do: it holds the previous cases' buffers.
    t.got.fill(0x55u8 as i8);
    let a = arm::conv2d_in(cs, p, t.input, t.weights, t.bias, t.mult, t.shift, t.got);
    if r != a {
        return Err(u32::MAX);
    }
    if let Some(i) = first_diff(t.want, t.got) {
        return Err(i);
    }
    // The same weights in the pairs layout: the reference of that layout
    // and the arm kernel against the int8 reference's bytes.
    if p.in_c % 4 != 0 {
        return Ok(Checked::Int8);
    }
    let words = t.weights.len() / 2;
    let Some(pairs) = t
        .rest
        .get_mut(..4 * words)
        .and_then(|b| bytemuck::try_cast_slice_mut::<u8, i32>(b).ok())
    else {
        return Ok(Checked::Int8);
    };
    for (w, c) in pairs.chunks_exact_mut(2).zip(t.weights.chunks_exact(4)) {
        w.copy_from_slice(&reference::to_pairs([c[0], c[1], c[2], c[3]]));
    }
    t.got.fill(0x55u8 as i8);
    let rp = reference::conv2d_pairs(p, t.input, pairs, t.bias, t.mult, t.shift, t.got);
    if r != rp || first_diff(t.want, t.got).is_some() {
        return Err(u32::MAX - 2);
    }
    t.got.fill(0x55u8 as i8);
    let t5 = clock();
    let a = arm::conv2d_pairs(p, t.input, pairs, t.bias, t.mult, t.shift, t.got);
    timing.pairs = dt(t5, clock());
    if r != a {
        return Err(u32::MAX);
    }
    match first_diff(t.want, t.got) {
        Some(i) => Err(i),
        None => Ok(Checked::Pairs),
    }
}

fn conv_params(
    d: &mut Draw,
    (h, w, c): (usize, usize, usize),
    oc: usize,
    k: usize,
    s: usize,
    pad: usize,
) -> ConvParams {
    let (act_min, act_max) = d.clamp();
    ConvParams {
        in_h: h,
        in_w: w,
        in_c: c,
        out_h: (h + 2 * pad - k) / s + 1,
        out_w: (w + 2 * pad - k) / s + 1,
        out_c: oc,
        k,
        stride: s,
        pad,
        in_zp: d.zp(),
        out_zp: d.zp(),
        act_min,
        act_max,
    }
}

/// One case of the three language-model matrix kernels: `rows` rows over
/// inputs of `nx` and `nh` values. `Err` at the first difference.
fn lm_case(d: &mut Draw, scratch: &mut [u8], rows: usize, nx: usize, nh: usize) -> Result<(), ()> {
    // i32s: mult/shift for two matrices + bias + two i32 outputs.
    let (i32s, rest) = scratch.split_at_mut_checked(4 * 7 * rows).ok_or(())?;
    let i32s: &mut [i32] = bytemuck::try_cast_slice_mut(i32s).map_err(|_| ())?;
    let (mx, r) = i32s.split_at_mut(rows);
    let (sx, r) = r.split_at_mut(rows);
    let (mh, r) = r.split_at_mut(rows);
    let (sh, r) = r.split_at_mut(rows);
    let (b, r) = r.split_at_mut(rows);
    let (want32, got32) = r.split_at_mut(rows);
    let (wx, rest) = rest.split_at_mut_checked(rows * nx).ok_or(())?;
    let (wh, rest) = rest.split_at_mut_checked(rows * nh).ok_or(())?;
    let (x, rest) = rest.split_at_mut_checked(nx).ok_or(())?;
    let (h, rest) = rest.split_at_mut_checked(nh).ok_or(())?;
    let (g16, rest) = rest.split_at_mut_checked(4 * rows + 4).ok_or(())?;
    let at = g16.as_ptr().align_offset(2).min(1);
    let g16: &mut [i16] =
        bytemuck::try_cast_slice_mut(&mut g16[at..at + 4 * rows]).map_err(|_| ())?;
    let (want16, got16) = g16.split_at_mut(rows);
    let (wx, wh, x, h) = (
        i8s(wx, rows * nx),
        i8s(wh, rows * nh),
        i8s(x, nx),
        i8s(h, nh),
    );
    for t in [&mut *wx, &mut *wh, &mut *x, &mut *h] {
        d.bytes(t);
    }
    if d.below(2) == 0 {
        d.requant_high_word(mx, sx);
        d.requant_high_word(mh, sh);
    } else {
        d.requant(mx, sx);
        d.requant(mh, sh);
    }
    d.bias(b);
    // A negative multiplier (no checked model has one; a direct caller
    // may) through the shared high-word stage takes `rq`'s general path.
    let m0 = mx[0];
    mx[0] = -1 - (m0 >> 1);
    let t = TiedRows {
        w: wx,
        mult: mx,
        shift: Shifts::Shared(-2 - d.below(30) as i32),
    };
    let r = reference::decoder(&t, b, x, want32);
    let a = arm::decoder(&t, b, x, got32);
    mx[0] = m0; // the cases below draw their proofs from the pairs as drawn
    if r != a || want32 != got32 {
        return Err(());
    }
    let qx = QMatrix::rows(wx, mx, sx);
    let qh = QMatrix::rows(wh, mh, sh);
    let same16 = |a: &[i16], b: &[i16]| a == b;
    let lm = LmCase { x, h, b };
    if !lm.same((&qx, &qh), (&qx, &qh), want16, got16) {
        return Err(());
    }
    // The decoder with a shift per row (LM spec version 1), then one shared
    // shift (version 2): the drawn first one, and one of the high-word form.
    let high = -2 - d.below(30) as i32;
    for shift in [
        Shifts::PerRow(sx),
        Shifts::Shared(sx[0]),
        Shifts::Shared(high),
    ] {
        let t = TiedRows {
            w: wx,
            mult: mx,
            shift,
        };
        let r = reference::decoder(&t, b, x, want32);
        let a = arm::decoder(&t, b, x, got32);
        if r != a || want32 != got32 {
            return Err(());
        }
        // A wrong length: the reference's error, field for field.
        let r = reference::decoder(&t, b, &x[1..], want32);
        let a = arm::decoder(&t, b, &x[1..], got32);
        if r != a || r.is_ok() {
            return Err(());
        }
    }
    // The same matrices stored as row quads (when the shapes allow and the
    // scratch has room, in a word-aligned copy, as a checked model's arrays
    // are): the gates and the latent (DSP path or not) equal the row-by-row
    // reference's.
    if !(WeightLayout::quads_fit(rows, nx) && WeightLayout::quads_fit(rows, nh)) {
        return Ok(());
    }
    let at = rest.as_ptr().align_offset(4).min(3);
    let Some((wq, _)) = rest
        .get_mut(at..)
        .and_then(|r| r.split_at_mut_checked(rows * (nx + nh)))
    else {
        return Ok(());
    };
    let (wxq, whq) = bytemuck::cast_slice_mut::<u8, i8>(wq).split_at_mut(rows * nx);
    let quads = WeightLayout::RowQuads;
    if !quads.encode(qx.w, rows, nx, wxq) || !quads.encode(qh.w, rows, nh, whq) {
        return Err(());
    }
    let (qxq, qhq) = (
        QMatrix {
            layout: quads,
            ..QMatrix::rows(wxq, mx, sx)
        },
        QMatrix {
            layout: quads,
            ..QMatrix::rows(whq, mh, sh)
        },
    );
    let r = reference::lstm_gates(&qx, x, &qh, h, b, want16);
    let a = arm::lstm_gates(&qxq, x, &qhq, h, b, got16);
    if r != a || !same16(want16, got16) {
        return Err(());
    }
    let a = reference::lstm_gates(&qxq, x, &qhq, h, b, got16);
    if r != a || !same16(want16, got16) {
        return Err(());
    }
    let r = reference::latent(&qh, b, h, want16);
    let a = arm::latent(&qhq, b, h, got16);
    if r != a || !same16(want16, got16) {
        return Err(());
    }
    // With the high-word proofs a parsed model carries (None unless every
    // pair qualifies), one matrix proven and the other not, and proofs
    // about other slices, which the kernels must ignore (another array; the
    // same addresses with a shorter length): still the reference's bytes.
    static OTHER_M: [i32; 4] = [1 << 30; 4];
    static OTHER_S: [i32; 4] = [-2; 4];
    let other = HighWord::new(&OTHER_M, &OTHER_S);
    let (hx, hh) = (HighWord::new(mx, sx), HighWord::new(mh, sh));
    for (px, ph) in [
        (hx, hh),
        (hx, None),
        (None, hh),
        (other, other),
        (
            HighWord::new(&mx[..rows - 4], &sx[..rows - 4]),
            HighWord::new(&mh[..rows - 4], &sh[..rows - 4]),
        ),
    ] {
        let qxp = QMatrix {
            high_word: px,
            ..qxq
        };
        let qhp = QMatrix {
            high_word: ph,
            ..qhq
        };
        if !lm.same((&qx, &qh), (&qxp, &qhp), want16, got16) {
            return Err(());
        }
    }
    Ok(())
}

/// The inputs and biases of one [`lm_case`].
struct LmCase<'a> {
    x: &'a [i8],
    h: &'a [i8],
    b: &'a [i32],
}

impl LmCase<'_> {
    /// Whether `arm`'s gates and latent over `(ax, ah)` give the
    /// reference's results and bytes over `(qx, qh)` (the same matrices,
    /// stored in another layout or carrying a proof).
    fn same(
        &self,
        (qx, qh): (&QMatrix, &QMatrix),
        (ax, ah): (&QMatrix, &QMatrix),
        want: &mut [i16],
        got: &mut [i16],
    ) -> bool {
        let (x, h, b) = (self.x, self.h, self.b);
        let r = reference::lstm_gates(qx, x, qh, h, b, want);
        let a = arm::lstm_gates(ax, x, ah, h, b, got);
        if r != a || want != got {
            return false;
        }
        let r = reference::latent(qh, b, h, want);
        let a = arm::latent(ah, b, h, got);
        r == a && want == got
    }
}

/// One causal conv case: `arm::conv2d_masked` against the reference conv
/// on the same weights with the masked taps zeroed (what the model checker
/// guarantees); `Err(index)` at the first difference.
fn masked_case(
    d: &mut Draw,
    scratch: &mut [u8],
    cs: &mut arm::ConvScratch,
    p: &ConvParams,
    mask: Mask,
) -> Result<bool, u32> {
    let lens = [
        p.in_h * p.in_w * p.in_c,
        p.out_c * p.k * p.k * p.in_c,
        p.out_h * p.out_w * p.out_c,
        p.out_h * p.out_w * p.out_c,
    ];
    let Some(t) = carve(scratch, lens, p.out_c) else {
        return Ok(false);
    };
    d.bytes(t.input);
    d.bytes(t.weights);
    d.bias(t.bias);
    d.requant_mixed(t.mult, t.shift);
    for (i, w) in t.weights.chunks_mut(p.in_c).enumerate() {
        let (ky, kx) = ((i / p.k) % p.k, i % p.k);
        if !mask.allows(p.k, ky, kx) {
            w.fill(0);
        }
    }
    t.want.fill(0x55);
    t.got.fill(0x55u8 as i8);
    let r = reference::conv2d(p, t.input, t.weights, t.bias, t.mult, t.shift, t.want);
    let a = arm::conv2d_masked(p, mask, t.input, t.weights, t.bias, t.mult, t.shift, t.got);
    if r != a {
        return Err(u32::MAX);
    }
    if let Some(i) = first_diff(t.want, t.got) {
        return Err(i);
    }
    // Again with the shared scratch (module docs of `arm::ConvScratch`).
    t.got.fill(0x55u8 as i8);
    let a = arm::conv2d_masked_in(
        cs, p, mask, t.input, t.weights, t.bias, t.mult, t.shift, t.got,
    );
    if r != a {
        return Err(u32::MAX);
    }
    if let Some(i) = first_diff(t.want, t.got) {
        return Err(i);
    }
    // The valid geometry (a window of a same conv's input, as the density
    // driver's strips cut them) has no per-position counterpart; and the
    // portable masked kernel must agree with it there too.
    if p.pad != p.k / 2 {
        t.got.fill(0x55u8 as i8);
        let f = fast::conv2d_masked(p, mask, t.input, t.weights, t.bias, t.mult, t.shift, t.got);
        if f != r {
            return Err(u32::MAX);
        }
        return match first_diff(t.want, t.got) {
            Some(i) => Err(i),
            None => Ok(true),
        };
    }
    // The per-position kernel of streaming and sampling, at every position
    // (the whole input as its ring of rows), equals the whole-map conv;
    // one scratch for all positions, as the density driver keeps it (each
    // call finds the previous position's window in it).
    t.got.fill(0x55u8 as i8);
    let oc = p.out_c;
    let mut sc = arm::PixelScratch::new();
    for (px, out) in t
        .got
        .chunks_mut(oc.max(1))
        .enumerate()
        .take(p.out_h * p.out_w)
    {
        let (y, x) = (px / p.out_w, px % p.out_w);
        let r = arm::conv2d_pixel_in(
            &mut sc, p, mask, t.input, p.in_h, y, x, t.weights, t.bias, t.mult, t.shift, out,
        );
        if r.is_err() {
            return Err(u32::MAX);
        }
    }
    if let Some(i) = first_diff(t.want, t.got) {
        return Err(i);
    }
    // A ring of no rows, and a position outside the output: the portable
    // kernel's errors.
    for (rows, y) in [(0, 0), (p.in_h, p.out_h)] {
        let o = &mut t.got[..oc];
        let a = arm::conv2d_pixel(
            p, mask, t.input, rows, y, 0, t.weights, t.bias, t.mult, t.shift, o,
        );
        let f = fast::conv2d_pixel(
            p, mask, t.input, rows, y, 0, t.weights, t.bias, t.mult, t.shift, o,
        );
        if a != f || a.is_ok() {
            return Err(u32::MAX);
        }
    }
    // Errors: a short output, and a conv that is not causal (stride 2, or
    // no mask on a k > 1 kernel) give the portable kernel's error.
    let n = t.got.len().saturating_sub(1);
    let strided = ConvParams { stride: 2, ..*p };
    for (q, m, len) in [
        (*p, mask, n),
        (strided, mask, n + 1),
        (*p, Mask::None, n + 1),
    ] {
        let a = arm::conv2d_masked(
            &q,
            m,
            t.input,
            t.weights,
            t.bias,
            t.mult,
            t.shift,
            &mut t.got[..len],
        );
        let f = fast::conv2d_masked(
            &q,
            m,
            t.input,
            t.weights,
            t.bias,
            t.mult,
            t.shift,
            &mut t.want[..len],
        );
        let must_fail = len == n || q.stride == 2 || (m == Mask::None && q.k > 1);
        if a != f || (must_fail && a.is_ok()) {
            return Err(u32::MAX);
        }
    }
    Ok(true)
}

/// DiracNet's conv layers (widths 16, 32, 64 on 28×28; 3×3, padding 1):
/// input shape and output channels.
pub const DIRAC_CONVS: [((usize, usize, usize), usize); 6] = [
    ((28, 28, 1), 16),
    ((28, 28, 16), 16),
    ((14, 14, 16), 32),
    ((14, 14, 32), 32),
    ((7, 7, 32), 64),
    ((7, 7, 64), 64),
];

/// Runs `cases` random cases per kernel plus the fixed shapes, from `seed`.
/// `clock` reads the board's counter; `layer(i, timing)` gets the timing
/// of DiracNet conv shape `i` ([`DIRAC_CONVS`]).
///
/// # Errors
/// The first [`Mismatch`].
pub fn run(
    scratch: &mut [u8],
    seed: u64,
    cases: u32,
    clock: &mut dyn FnMut() -> u32,
    layer: &mut dyn FnMut(usize, Timing),
) -> Result<Summary, Mismatch> {
    let mut d = Draw(Pcg32::seeded(seed));
    let mut sum = Summary::default();
    let mut cs = arm::ConvScratch::new();
    let fail = |kernel, case, index| Mismatch {
        kernel,
        case,
        index,
    };

    let mut timing = Timing::default();
    for (i, (shape, oc)) in DIRAC_CONVS.into_iter().enumerate() {
        let p = conv_params(&mut d, shape, oc, 3, 1, 1);
        let r = conv_case(&mut d, scratch, &mut cs, &p, clock, &mut timing, true);
        layer(i, timing);
        // Every layer with a multiple of 4 input channels runs the pairs too.
        let want = if p.in_c % 4 == 0 {
            Checked::Pairs
        } else {
            Checked::Int8
        };
        match r {
            Ok(c) if c == want => {
                sum.conv += 1;
                sum.pairs += u32::from(c == Checked::Pairs);
            }
            Ok(_) => return Err(fail("conv2d (does not fit the scratch)", sum.conv, 0)),
            Err(i) => return Err(fail("conv2d", sum.conv, i)),
        }
    }
    // The stem path (`arm::small` with column-paired windows): one input
    // channel, 3×3, stride 1, rows wider than its 32-pixel chunk, padding
    // 0 to 3.
    let mut stem = 0;
    while stem < cases.min(60) {
        let pad = d.usize_in(0, 3);
        let (h, w) = (d.usize_in(1, 6), d.usize_in(1, 80));
        let oc = d.usize_in(1, 40);
        if h + 2 * pad < 3 || w + 2 * pad < 3 {
            continue;
        }
        let p = conv_params(&mut d, (h, w, 1), oc, 3, 1, pad);
        match conv_case(&mut d, scratch, &mut cs, &p, clock, &mut timing, false) {
            Ok(Checked::NoRoom) => {}
            Ok(_) => {
                sum.conv += 1;
                stem += 1;
            }
            Err(i) => return Err(fail("conv2d (stem)", sum.conv, i)),
        }
    }
    let cins = [
        1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 48, 64, 95, 96, 97, 100,
    ];
    let mut done = 0;
    while done < cases {
        let c = if d.below(2) == 0 {
            d.pick(&cins)
        } else {
            d.usize_in(1, 24)
        };
        let k = d.pick(&[1, 2, 3, 3, 3, 4, 5]);
        let s = d.usize_in(1, 2);
        let pad = d.usize_in(0, k);
        let (h, w) = (d.usize_in(1, 12), d.usize_in(1, 12));
        let oc = d.usize_in(1, 40);
        if h + 2 * pad < k || w + 2 * pad < k {
            continue;
        }
        let p = conv_params(&mut d, (h, w, c), oc, k, s, pad);
        match conv_case(&mut d, scratch, &mut cs, &p, clock, &mut timing, false) {
            Ok(Checked::NoRoom) => {} // too big for the scratch: draw again
            Ok(c) => {
                sum.conv += 1;
                sum.pairs += u32::from(c == Checked::Pairs);
                done += 1;
            }
            Err(i) => return Err(fail("conv2d", sum.conv, i)),
        }
    }

    let mut done = 0;
    while done < cases {
        let mask = if d.below(2) == 0 { Mask::A } else { Mask::B };
        let k = d.pick(&[1, 3, 3, 5, 7]);
        let c = if d.below(2) == 0 {
            d.pick(&cins)
        } else {
            d.usize_in(1, 24)
        };
        let (h, w) = (d.usize_in(1, 12), d.usize_in(1, 12));
        let oc = d.usize_in(1, 40);
        // A third of the cases in the valid geometry (no padding), which
        // needs the window inside the input.
        let pad = match d.below(3) {
            0 if k > 1 && h >= k && w >= k => 0,
            _ => k / 2,
        };
        let p = conv_params(&mut d, (h, w, c), oc, k, 1, pad);
        match masked_case(&mut d, scratch, &mut cs, &p, mask) {
            Ok(true) => {
                sum.masked += 1;
                done += 1;
            }
            Ok(false) => {}
            Err(i) => return Err(fail("conv2d_masked", sum.masked, i)),
        }
    }

    let mut done = 0;
    while done < cases {
        let n = if d.below(8) == 0 {
            d.usize_in(1000, 1100)
        } else {
            d.usize_in(1, 300)
        };
        let o = d.usize_in(1, 13);
        let (act_min, act_max) = d.clamp();
        let p = FcParams {
            in_len: n,
            out_len: o,
            in_zp: d.zp(),
            out_zp: d.zp(),
            act_min,
            act_max,
        };
        let Some(t) = carve(scratch, [n, n * o, o, o], o) else {
            continue;
        };
        d.bytes(t.input);
        d.bytes(t.weights);
        d.bias(t.bias);
        d.requant_mixed(t.mult, t.shift);
        let r = reference::fully_connected(&p, t.input, t.weights, t.bias, t.mult, t.shift, t.want);
        let a = arm::fully_connected(&p, t.input, t.weights, t.bias, t.mult, t.shift, t.got);
        if r != a {
            return Err(fail("fully_connected", sum.fc, u32::MAX));
        }
        if let Some(i) = first_diff(t.want, t.got) {
            return Err(fail("fully_connected", sum.fc, i));
        }
        sum.fc += 1;
        done += 1;
    }

    // Element-wise add: short slices (one position while a density model
    // streams) and the long-tensor path (tables, asm loop), with the
    // exporter's parameters or random ones.
    let mut done = 0;
    while done < cases {
        let n = if d.below(2) == 0 {
            d.usize_in(1024, 3000)
        } else {
            d.usize_in(0, 100)
        };
        let (act_min, act_max) = d.clamp();
        let (mut m, mut s) = ([0i32; 3], [0i32; 3]);
        if d.below(2) == 0 {
            for v in &mut m {
                *v = ((d.0.next_u32() >> 2) | (1 << 29)) as i32;
            }
            s = [
                -(d.below(4) as i32),
                -(d.below(4) as i32),
                -14 - d.below(11) as i32,
            ];
        } else {
            d.requant_mixed(&mut m, &mut s);
        }
        let p = AddParams {
            a_zp: d.zp(),
            b_zp: d.zp(),
            out_zp: d.zp(),
            a_mult: m[0],
            a_shift: s[0],
            b_mult: m[1],
            b_shift: s[1],
            out_mult: m[2],
            out_shift: s[2],
            act_min,
            act_max,
        };
        let Some(t) = carve(scratch, [n, n, n, n], 0) else {
            continue;
        };
        d.bytes(t.input);
        d.bytes(t.weights);
        t.want.fill(0x55);
        t.got.fill(0x55u8 as i8);
        let r = reference::add(&p, t.input, t.weights, t.want);
        let a = arm::add(&p, t.input, t.weights, t.got);
        same("add", sum.add, (r, a), t.want, t.got)?;
        // The short path's rescales, value by value (the output stage
        // would hide most off-by-one errors).
        if !arm::add_rescale_agrees(p.a_zp, p.a_mult, p.a_shift)
            || !arm::add_rescale_agrees(p.b_zp, p.b_mult, p.b_shift)
        {
            return Err(fail("add rescale", sum.add, 0));
        }
        sum.add += 1;
        done += 1;
    }

    // Pooling: 2×2 max and global average, channel counts on and off the
    // four-channel path, odd sizes (the last row and column dropped),
    // windows past the 255 pixels of the average's `i16` lanes, and now and
    // then an output a byte long (the reference's error, field for field).
    let mut done = 0;
    while done < cases {
        let c = if d.below(2) == 0 {
            d.pick(&cins)
        } else {
            d.usize_in(1, 24)
        };
        let skew = usize::from(d.below(10) == 0);
        let (h, w) = (d.usize_in(1, 20), d.usize_in(1, 20));
        let p = PoolParams {
            in_h: h,
            in_w: w,
            c,
        };
        let out = (h / 2) * (w / 2) * c + skew;
        let Some(t) = carve(scratch, [h * w * c, 0, out, out], 0) else {
            continue;
        };
        d.bytes(t.input);
        t.want.fill(0x55);
        t.got.fill(0x55u8 as i8);
        let r = reference::max_pool_2x2(&p, t.input, t.want);
        let a = arm::max_pool_2x2(&p, t.input, t.got);
        same("max_pool_2x2", sum.pool, (r, a), t.want, t.got)?;
        let (h, w) = if d.below(4) == 0 {
            (d.usize_in(12, 20), d.usize_in(12, 20))
        } else {
            (d.usize_in(1, 12), d.usize_in(1, 12))
        };
        let (act_min, act_max) = d.clamp();
        let (mut m, mut sh) = ([0i32; 1], [0i32; 1]);
        d.requant_mixed(&mut m, &mut sh);
        let g = GapParams {
            in_h: h,
            in_w: w,
            c,
            in_zp: d.zp(),
            out_zp: d.zp(),
            multiplier: m[0],
            shift: sh[0],
            act_min,
            act_max,
        };
        let Some(t) = carve(scratch, [h * w * c, 0, c + skew, c + skew], 0) else {
            continue;
        };
        d.bytes(t.input);
        t.want.fill(0x55);
        t.got.fill(0x55u8 as i8);
        let r = reference::global_avg_pool(&g, t.input, t.want);
        let a = arm::global_avg_pool(&g, t.input, t.got);
        same("global_avg_pool", sum.pool, (r, a), t.want, t.got)?;
        sum.pool += 1;
        done += 1;
    }

    let mut done = 0;
    while done < cases {
        // One case in four is tall: more rows than the kernels' blocks of
        // 64 (several blocks, a short last one, an odd last row) over
        // short inputs, a word-level decoder's shape.
        let tall = d.below(4) == 0;
        let rows = if tall {
            d.usize_in(60, 200)
        } else {
            d.usize_in(1, 40)
        };
        let big = !tall && d.below(8) == 0;
        let nx = if big {
            d.usize_in(500, 530)
        } else if tall {
            d.usize_in(1, 40)
        } else {
            d.usize_in(1, 300)
        };
        let nh = if tall {
            d.usize_in(1, 40)
        } else {
            d.usize_in(1, 300)
        };
        // Half the cases in multiples of 4, which row quads need.
        let (rows, nx, nh) = if d.below(2) == 0 {
            let up = |n: usize| n.max(1).next_multiple_of(4);
            (up(rows), up(nx), up(nh))
        } else {
            (rows, nx, nh)
        };
        if lm_case(&mut d, scratch, rows, nx, nh).is_err() {
            return Err(fail("lm matrix kernels", sum.lm, u32::MAX));
        }
        sum.lm += 1;
        done += 1;
    }

    // Wrong lengths: the same error as the reference, field for field.
    let p = conv_params(&mut d, (5, 5, 3), 4, 3, 1, 1);
    let lens = [75, 4 * 27, 100, 100];
    let t = carve(scratch, lens, 4).ok_or(fail("conv2d errors", 0, 0))?;
    let bad_shape = ConvParams { out_h: 6, ..p };
    let cut = |n: usize| n.saturating_sub(1);
    let calls: [(ConvParams, usize, usize, usize, usize); 5] = [
        (p, cut(75), 108, 4, 100),
        (p, 75, cut(108), 4, 100),
        (p, 75, 108, cut(4), 100),
        (p, 75, 108, 4, cut(100)),
        (bad_shape, 75, 108, 4, 100),
    ];
    for (q, ni, nw, nb, no) in calls {
        let r = reference::conv2d(
            &q,
            &t.input[..ni],
            &t.weights[..nw],
            &t.bias[..nb],
            t.mult,
            t.shift,
            &mut t.want[..no],
        );
        let a = arm::conv2d(
            &q,
            &t.input[..ni],
            &t.weights[..nw],
            &t.bias[..nb],
            t.mult,
            t.shift,
            &mut t.got[..no],
        );
        if r != a || r.is_ok() {
            return Err(fail("conv2d errors", sum.errors, u32::MAX));
        }
        sum.errors += 1;
    }
    let fp = FcParams {
        in_len: 10,
        out_len: 4,
        in_zp: 0,
        out_zp: 0,
        act_min: -128,
        act_max: 127,
    };
    for (ni, nw, no) in [(9, 40, 4), (10, 39, 4), (10, 40, 3)] {
        let r = reference::fully_connected(
            &fp,
            &t.input[..ni],
            &t.weights[..nw],
            t.bias,
            t.mult,
            t.shift,
            &mut t.want[..no],
        );
        let a = arm::fully_connected(
            &fp,
            &t.input[..ni],
            &t.weights[..nw],
            t.bias,
            t.mult,
            t.shift,
            &mut t.got[..no],
        );
        if r != a || r.is_ok() {
            return Err(fail("fully_connected errors", sum.errors, u32::MAX));
        }
        sum.errors += 1;
    }
    // add: one operand or the output a byte short or long, on both paths.
    for (n, (da, db, dout)) in [(20, (1, 0, 0)), (2000, (0, 1, 0)), (2000, (0, 0, 1))] {
        let p = AddParams {
            a_zp: 0,
            b_zp: 0,
            out_zp: 0,
            a_mult: 1 << 30,
            a_shift: 0,
            b_mult: 1 << 30,
            b_shift: 0,
            out_mult: 1 << 30,
            out_shift: -18,
            act_min: -128,
            act_max: 127,
        };
        let Some(t) = carve(scratch, [n + 1, n + 1, n + 1, n + 1], 0) else {
            return Err(fail("add errors (scratch)", sum.errors, 0));
        };
        let r = reference::add(
            &p,
            &t.input[..n + da],
            &t.weights[..n + db],
            &mut t.want[..n + dout],
        );
        let a = arm::add(
            &p,
            &t.input[..n + da],
            &t.weights[..n + db],
            &mut t.got[..n + dout],
        );
        if r != a || r.is_ok() {
            return Err(fail("add errors", sum.errors, u32::MAX));
        }
        sum.errors += 1;
    }
    Ok(sum)
}
