//! The per-position causal conv of streaming scoring and incremental
//! sampling ([`crate::kernels::fast::conv2d_pixel`]) on the DSP extension.
//!
//! The live window of position `(y, x)` (the rows above the centre and the
//! centre row up to the centre: a prefix of each OHWI filter) is gathered
//! once, `x − zp` with padding 0, into `i16` pairs on the stack; then
//! [`dot_2rows`] runs two output channels per pass over it (1.5
//! instructions per MAC in its inner loop, as the language model's
//! matrix–vector products), and the high-word output stage follows.
//! Windows longer than [`MAX_WINDOW`] take the portable kernel.

use super::conv::{packs, Requant};
use super::dsp::{channel_pairs, chunks4, dot_2rows, pack4, pack_bytes, splat16};
use crate::kernels::fast::{self, check_pixel, live};
use crate::kernels::reference::ConvParams;
use crate::kernels::Mask;
use crate::Result;

/// Longest live window gathered on the stack (1,024 bytes of buffer).
pub const MAX_WINDOW: usize = 512;

/// Same contract, checks, errors and bytes as
/// [`crate::kernels::fast::conv2d_pixel`].
///
/// # Errors
/// As [`crate::kernels::fast::conv2d_pixel`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d_pixel(
    p: &ConvParams,
    mask: Mask,
    input: &[i8],
    rows: usize,
    y: usize,
    x: usize,
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    out: &mut [i8],
) -> Result<()> {
    conv2d_pixel_in(
        &mut PixelScratch::new(),
        p,
        mask,
        input,
        rows,
        y,
        x,
        weights,
        bias,
        multiplier,
        shift,
        out,
    )
}

/// The stack buffer of [`conv2d_pixel_in`]'s gathered window, made once by
/// a caller that runs many positions (1 KB that [`conv2d_pixel`] would
/// otherwise zero at every call: 5 % of a sampled PixelCNN image, measured).
pub struct PixelScratch(Gather<{ MAX_WINDOW / 4 }>);

impl PixelScratch {
    /// A scratch for any number of calls.
    pub fn new() -> Self {
        PixelScratch(Gather::new())
    }
}

impl Default for PixelScratch {
    fn default() -> Self {
        Self::new()
    }
}

/// [`conv2d_pixel`] gathering into `scratch` (whose contents are never
/// read before they are written: same bytes whatever it held).
///
/// # Errors
/// As [`conv2d_pixel`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d_pixel_in(
    scratch: &mut PixelScratch,
    p: &ConvParams,
    mask: Mask,
    input: &[i8],
    rows: usize,
    y: usize,
    x: usize,
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    out: &mut [i8],
) -> Result<()> {
    check_pixel(
        p, mask, input, rows, y, x, weights, bias, multiplier, shift, out,
    )?;
    let (live_rows, centre) = live(mask, p.k);
    let kc = p.k * p.in_c;
    let len = live_rows.saturating_sub(1) * kc + centre * p.in_c;
    if len > MAX_WINDOW || len == 0 || p.out_c == 0 || !packs(p.in_zp) {
        return fast::conv2d_pixel(
            p, mask, input, rows, y, x, weights, bias, multiplier, shift, out,
        );
    }
    let g = &mut scratch.0;
    g.clear();
    window_pixel(
        g, p, mask, len, input, rows, y, x, weights, bias, multiplier, shift, out,
    );
    Ok(())
}

/// A window of up to `4N` values gathered into packed chunks:
/// [`Gather::chunks`] whole ones and
/// the last `len % 4` values in `tail`.
pub(super) struct Gather<const N: usize> {
    buf: [[u32; 2]; N],
    chunks: usize,
    stage: [i32; 4],
    fill: usize,
}

impl<const N: usize> Gather<N> {
    #[inline(always)]
    fn push(&mut self, v: i32) {
        self.stage[self.fill & 3] = v;
        self.fill += 1;
        if self.fill == 4 {
            self.fill = 0;
            if let Some(b) = self.buf.get_mut(self.chunks) {
                *b = pack4(self.stage);
            }
            self.chunks += 1;
        }
    }

    /// `n` padding taps (0 once the zero point is subtracted): whole
    /// chunks at a time once the stage is empty.
    pub(super) fn zeros(&mut self, n: usize) {
        let lead = ((4 - self.fill) & 3).min(n);
        for _ in 0..lead {
            self.push(0);
        }
        let whole = (n - lead) / 4;
        let room = self.buf.get_mut(self.chunks..).unwrap_or_default();
        room.iter_mut().take(whole).for_each(|b| *b = [0, 0]);
        self.chunks += whole;
        for _ in 0..(n - lead) % 4 {
            self.push(0);
        }
    }

    /// Input bytes minus the zero point (`zp2` in both lanes): four at a
    /// time (`dsp::pack_bytes`, 5 instructions) while the stage is empty,
    /// which holds throughout when the channel count is a multiple of 4.
    #[inline(always)]
    pub(super) fn bytes(&mut self, x: &[i8], zp: i32, zp2: u32) {
        if self.fill != 0 {
            for &v in x {
                self.push(v as i32 - zp);
            }
            return;
        }
        let (whole, rest) = chunks4(x);
        let room = self.buf.get_mut(self.chunks..).unwrap_or_default();
        for (b, c) in room.iter_mut().zip(whole) {
            *b = pack_bytes(c, zp2);
        }
        self.chunks += whole.len();
        for &v in rest {
            self.push(v as i32 - zp);
        }
    }

    fn chunks(&self) -> &[[u32; 2]] {
        &self.buf[..self.chunks.min(N)]
    }

    /// The last `len % 4` window values times the last weights of a row.
    #[inline(always)]
    fn tail_dot(&self, w: &[i8]) -> i32 {
        w.iter()
            .zip(&self.stage[..self.fill])
            .fold(0i32, |a, (&w, &x)| a.wrapping_add(x.wrapping_mul(w as i32)))
    }
}

/// All output channels of position `(y, x)`, two per pass; lengths checked
/// by the caller, `0 < len ≤ MAX_WINDOW` live taps.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn window_pixel(
    g: &mut Gather<{ MAX_WINDOW / 4 }>,
    p: &ConvParams,
    mask: Mask,
    len: usize,
    input: &[i8],
    rows: usize,
    y: usize,
    x: usize,
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    out: &mut [i8],
) {
    let (k, cin) = (p.k, p.in_c);
    let c = k / 2;
    let (live_rows, centre) = live(mask, k);
    let zp2 = splat16(p.in_zp);
    // Taps inside the image along x: c ≤ x + kx < in_w + c.
    let kx_lo = c.saturating_sub(x).min(k);
    let kx_hi = k.min((p.in_w + c).saturating_sub(x)).max(kx_lo);
    for ky in 0..live_rows {
        let cols = if ky + 1 == live_rows { centre } else { k };
        let (lo, hi) = (kx_lo.min(cols), kx_hi.min(cols));
        // Input row y + ky − c, in ring slot (y + ky − c) % rows.
        match (y + ky).checked_sub(c) {
            Some(iy) if lo < hi => {
                let at = ((iy % rows) * p.in_w + x + lo - c) * cin;
                g.zeros(lo * cin);
                g.bytes(
                    input.get(at..at + (hi - lo) * cin).unwrap_or(&[]),
                    p.in_zp,
                    zp2,
                );
                g.zeros((cols - hi) * cin);
            }
            _ => g.zeros(cols * cin),
        }
    }
    let out_stage = Requant::new(p.out_zp, p.act_min, p.act_max);
    g.channels(
        len,
        k * k * cin,
        weights,
        (bias, multiplier, shift),
        &out_stage,
        out,
    );
}

impl<const N: usize> Gather<N> {
    /// An empty window.
    pub(super) fn new() -> Self {
        Gather {
            buf: [[0; 2]; N],
            chunks: 0,
            stage: [0; 4],
            fill: 0,
        }
    }

    /// Empties the window (the buffer keeps its bytes).
    pub(super) fn clear(&mut self) {
        self.chunks = 0;
        self.fill = 0;
    }

    /// The window's `len` values taken so far (`zeros`, `bytes`).
    #[cfg(not(feature = "compact"))]
    pub(super) fn len(&self) -> usize {
        4 * self.chunks + self.fill
    }

    /// Every output channel of the gathered window of `len` taps (the
    /// first `len` of each `taps`-long filter in `weights`), two per pass:
    /// `out[o]`, with the bias, multiplier and shift of channel `o`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn channels(
        &self,
        len: usize,
        taps: usize,
        weights: &[i8],
        (bias, multiplier, shift): (&[i32], &[i32], &[i32]),
        out_stage: &Requant,
        out: &mut [i8],
    ) {
        let g = self;
        // Whole chunks only (no tail): pairs of channels in asm, as far as
        // they take the high-word output stage.
        let done = if g.fill == 0 && out_stage.zp_small() {
            channel_pairs(
                g.chunks(),
                weights,
                taps,
                bias,
                multiplier,
                shift,
                out_stage.constants(),
                out,
            )
            .unwrap_or(0)
        } else {
            0
        };
        let filters = weights.chunks_exact(taps).skip(done);
        let params = bias.iter().zip(multiplier).zip(shift).skip(done);
        let mut it = filters
            .zip(params)
            .zip(out.get_mut(done..).unwrap_or_default().iter_mut());
        while let Some(((w0, ((&b0, &m0), &s0)), y0)) = it.next() {
            let next = it.next();
            let (w1, b1) = next
                .as_ref()
                .map_or((w0, b0), |((w1, ((&b1, _), _)), _)| (*w1, b1));
            let (r0, r1) = (&w0[..len.min(w0.len())], &w1[..len.min(w1.len())]);
            let (c0, t0) = chunks4(r0);
            let (c1, t1) = chunks4(r1);
            let [a0, a1] = dot_2rows(g.chunks(), c0, c1, [b0, b1]);
            *y0 = out_stage.one(a0.wrapping_add(g.tail_dot(t0)), m0, s0);
            if let Some(((_, ((_, &m1), &s1)), y1)) = next {
                *y1 = out_stage.one(a1.wrapping_add(g.tail_dot(t1)), m1, s1);
            }
        }
    }
}
