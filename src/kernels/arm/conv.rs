//! conv2d on the DSP extension: four output pixels per pass, `SMLAD`.
//!
//! For every group of four consecutive output pixels (raster order, so a
//! group may wrap to the next row), the windows are gathered once into a
//! stack buffer of packed `i16` pairs, input zero point already subtracted
//! (`SXTB16`, `SXTB16 ROR #8`, `SSUB16`): padding taps are stored as 0,
//! so border pixels run the same inner loop as interior ones, with no
//! per-byte test or subtraction. Then every output channel runs
//! [`dot_4px`] over the packed windows: the channel's weights are read
//! straight from the blob four bytes at a time and unpacked once for the
//! four pixels. Requantization runs after the loop, four values per
//! channel (`SMMUL` high word, see [`crate::quant::OutputStage`]).
//!
//! Windows of at most 10 taps (the 1-channel stem) go to
//! [`super::small`] instead: one pixel, every channel's filter packed once.
//!
//! Inner loop ([`channels_4px`]): 13 instructions per 16
//! multiply-accumulates (the four pixels' packed pairs loaded by two
//! `LDM`s of four words, `dsp::chunk_4px_ldm!`; 15 with one `LDRD` per
//! pixel, as the fallback [`dot_4px`] still does), plus `SUBS`/`BNE` per
//! four chunks. Gathering costs 6 instructions (4 with the
//! zero point folded into the bias) per 4 window bytes per pixel when the
//! channel count is a multiple of 4, a whole window (or a group's four, or
//! a border window's inside rectangle) per asm call (`dsp::pack_rows`);
//! element by element otherwise; shared by all output channels. The last
//! one or two pixels of a conv go one by one through [`single_pixels`].
//! Measured on DiracNet's 3×3 layers: 0.99–1.09 instructions per MAC in
//! all (docs/firmware.md, ninth round; 1.12–1.23 with `LDRD`s).
//!
//! The buffer holds [`SEG`] window elements per pixel (1,536 bytes of
//! stack): a window longer than that is cut at kernel rows into segments,
//! accumulated in [`BLOCK`] channels at a time (regathered per block). A
//! kernel row longer than `SEG` (`k · in_c > 192`) goes to the reference
//! (no model exported so far has one: DiracNet's widest is 3 · 64). `SEG`
//! and `BLOCK` were sized by the firmware's RAM budget (model arena + 8 KB):
//! `SEG` = 288 (whole windows for 32 channels) was 0.1 instructions per MAC
//! faster on the 32-channel layers but 768 bytes more stack.

use super::dsp::{
    chan_table, channels_4px, channels_4px_seg, chunks4, dot_4px, full_range_max_h, high_word,
    pack4, pack_rows, pack_run, pack_run_raw, requant4, splat16, Chan,
};
#[cfg(not(feature = "compact"))]
use super::pixel;
use super::small;
use crate::kernels::fast::{check_causal, live};
use crate::kernels::reference::{self, check_conv, ConvParams};
use crate::kernels::Mask;
use crate::quant::{OutputStage, MIN_SHIFT};
use crate::Result;

/// Window elements per pixel the stack buffer holds (a multiple of 4).
pub const SEG: usize = 192;
/// Longest window [`single_pixels`] gathers (1,152 bytes of stack, in its
/// own frame): DiracNet's widest, 3 · 3 · 64.
const SINGLE: usize = 576;
/// Output channels accumulated together when a window takes several segments.
const BLOCK: usize = 32;
/// Output channels whose constants [`four_pixels`] tables once per call
/// for [`channels_4px`] (768 bytes of stack); wider layers take the
/// per-channel loop.
const TABLE: usize = 64;

/// Same contract, checks and bytes as [`crate::kernels::reference::conv2d`].
///
/// # Errors
/// [`crate::Error::BadLength`] exactly when the reference returns it, with
/// the same values.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    p: &ConvParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &mut [i8],
) -> Result<()> {
    conv2d_with(None, p, input, weights, bias, multiplier, shift, output)
}

/// [`conv2d`] with the four-pixel path's buffers in `scratch`.
///
/// # Errors
/// As [`conv2d`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d_in(
    scratch: &mut ConvScratch,
    p: &ConvParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &mut [i8],
) -> Result<()> {
    conv2d_with(
        Some(scratch),
        p,
        input,
        weights,
        bias,
        multiplier,
        shift,
        output,
    )
}

/// The four-pixel path in `scratch`, or in a scratch of its own.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn four_pixels_in(
    scratch: Option<&mut ConvScratch>,
    p: &ConvParams,
    live: Live,
    single: bool,
    input: &[i8],
    weights: &[i8],
    (bias, multiplier, shift): (&[i32], &[i32], &[i32]),
    output: &mut [i8],
    out: &Requant,
) -> Option<usize> {
    match scratch {
        Some(sc) => four_pixels(
            sc, p, live, single, input, weights, bias, multiplier, shift, output, out,
        ),
        None => four_pixels_fresh(
            p,
            live,
            single,
            input,
            weights,
            (bias, multiplier, shift),
            output,
            out,
        ),
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn conv2d_with(
    scratch: Option<&mut ConvScratch>,
    p: &ConvParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &mut [i8],
) -> Result<()> {
    check_conv(p, input, weights, bias, multiplier, shift, output)?;
    if output.is_empty() {
        // As in `fast::conv2d`: no output, no bound on `k · k · in_c`.
        return Ok(());
    }
    if !packs(p.in_zp) {
        return wide_rows(p, input, weights, bias, multiplier, shift, output);
    }
    let out = Requant::new(p.out_zp, p.act_min, p.act_max);
    let kc = p.k * p.in_c;
    // Separate functions, so that the stack holds one path's buffers at a time.
    if small::fits(p) {
        small::conv2d(p, input, weights, bias, multiplier, shift, output, &out);
    } else if kc > SEG || kc == 0 {
        wide_rows(p, input, weights, bias, multiplier, shift, output)?;
    } else {
        let all = Live {
            rows: p.k,
            last: p.k,
        };
        let pixels = p.out_h * p.out_w;
        let single = !cfg!(feature = "compact") && p.in_c % 4 == 0 && p.k * kc <= SINGLE;
        let params = (bias, multiplier, shift);
        match four_pixels_in(
            scratch, p, all, single, input, weights, params, output, &out,
        ) {
            Some(done) if done == pixels => {}
            #[cfg(not(feature = "compact"))]
            Some(done)
                if single_pixels(
                    p, done, input, weights, bias, multiplier, shift, output, &out,
                ) => {}
            _ => wide_rows(p, input, weights, bias, multiplier, shift, output)?,
        }
    }
    Ok(())
}

/// [`crate::kernels::reference::conv2d_pairs`] on the DSP extension: the
/// four-pixel path of [`conv2d`] with the weights already unpacked in the
/// blob, so the channel loop loads each chunk's four weights with one
/// `LDRD` (11 instructions per 16 MACs instead of 13). Every channel must
/// take the asm output stages (every exported model's do), with at most
/// [`TABLE`] channels and kernel rows of at most [`SEG`] taps; any other
/// conv runs the reference. Same checks, errors and bytes as the reference.
///
/// # Errors
/// [`crate::Error::BadLength`] exactly when the reference returns it.
#[cfg(not(feature = "compact"))]
#[allow(clippy::too_many_arguments)]
pub fn conv2d_pairs(
    p: &ConvParams,
    input: &[i8],
    pairs: &[i32],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &mut [i8],
) -> Result<()> {
    reference::check_pairs(p, input, pairs, bias, multiplier, shift, output)?;
    let kc = p.k * p.in_c;
    let fast = !output.is_empty()
        && packs(p.in_zp)
        && (1..=SEG).contains(&kc)
        && p.out_c <= TABLE
        && four_pixels_pairs(p, input, pairs, (bias, multiplier, shift), output);
    if !fast {
        reference::conv2d_pairs(p, input, pairs, bias, multiplier, shift, output)?;
    }
    Ok(())
}

/// The four-pixel path over weights in the pairs layout (lengths checked
/// by the caller, `in_c % 4 == 0`, `k · in_c ≤ SEG`, `out_c ≤ TABLE`):
/// windows gathered as in [`four_pixels`], then [`channels_4px`] (a
/// window in one segment) or [`channels_4px_seg`] per block of channels
/// and segment. A short last group computes its missing pixels from what
/// the window buffer holds and drops them, as [`four_pixels`] does, through
/// a buffer of four pixels' outputs. Returns false, writing nothing, when
/// a channel does not take the asm output stages.
#[cfg(not(feature = "compact"))]
#[inline(never)]
fn four_pixels_pairs(
    p: &ConvParams,
    input: &[i8],
    pairs: &[i32],
    (bias, multiplier, shift): (&[i32], &[i32], &[i32]),
    output: &mut [i8],
) -> bool {
    let mut scratch = ConvScratch::new();
    let ConvScratch { cols, acc, table } = &mut scratch;
    let Ok(cols) = bytemuck::cast_slice_mut::<u32, [u32; 8]>(cols).try_into() else {
        return false;
    };
    let cols: &mut [[u32; 8]; SEG / 4] = cols;
    let Ok(acc) = bytemuck::cast_slice_mut::<i32, [i32; 4]>(acc).try_into() else {
        return false;
    };
    let acc: &mut [[i32; 4]; BLOCK] = acc;
    let out = Requant::new(p.out_zp, p.act_min, p.act_max);
    let (out_zp, _, _) = out.constants();
    let full = (p.act_min, p.act_max) == (-128, 127);
    let max_h = if full { full_range_max_h(out_zp) } else { -1 };
    let Some(table) = table.get_mut(..p.out_c) else {
        return false;
    };
    if !out.zp_small() || !chan_table(bias, multiplier, shift, max_h, table) {
        return false;
    }
    let kc = p.k * p.in_c;
    let taps = p.k * kc;
    let rows_per_seg = SEG / kc; // >= 1
    let segs = p.k.div_ceil(rows_per_seg);
    let pixels = p.out_h * p.out_w;
    let all = Live {
        rows: p.k,
        last: p.k,
    };
    // Raw windows (the zero point folded into the biases), as in
    // [`four_pixels`], when the layer has enough pixels per channel.
    let raw = pixels >= 8 * p.out_c;
    if raw {
        for (c, w) in table.iter_mut().zip(pairs.chunks_exact(taps / 2)) {
            let sum = w.iter().fold(0i32, |a, &v| {
                a.wrapping_add((v as i16) as i32)
                    .wrapping_add((v >> 16) as i16 as i32)
            });
            c.bias = c.bias.wrapping_sub(p.in_zp.wrapping_mul(sum));
        }
    }
    let zp2 = splat16(p.in_zp);
    let consts = out.constants();
    let mut short = [0i8; 4 * TABLE];
    let mut px0 = 0;
    while px0 < pixels {
        let n = (pixels - px0).min(4);
        let dst = match output.get_mut(px0 * p.out_c..) {
            Some(d) if n == 4 => d,
            _ => &mut short[..],
        };
        let mut ob = 0;
        while ob < p.out_c {
            let oe = if segs == 1 {
                p.out_c
            } else {
                (ob + BLOCK).min(p.out_c)
            };
            for s in 0..segs {
                let ky0 = s * rows_per_seg;
                let ky1 = (ky0 + rows_per_seg).min(p.k);
                if (segs > 1 || ob == 0)
                    && !(n == 4 && gather_inside(p, all, input, px0, ky0..ky1, cols, zp2, raw))
                {
                    for slot in 0..n {
                        let px = px0 + slot;
                        let at = (px / p.out_w, px % p.out_w);
                        gather_aligned(p, all, input, at, ky0..ky1, cols, slot, zp2, raw);
                    }
                }
                let chunks = &cols[..(ky1 - ky0) * kc / 4];
                let rows = pairs.get((ob * taps + ky0 * kc) / 2..).unwrap_or_default();
                let tab = &table[ob..oe];
                let done = if segs == 1 {
                    channels_4px(chunks, rows, taps, tab, consts, dst, p.out_c)
                } else {
                    let d = dst.get_mut(ob..).unwrap_or_default();
                    let first_last = (s == 0, s + 1 == segs);
                    channels_4px_seg(chunks, rows, taps, tab, acc, first_last, consts, d, p.out_c)
                };
                if !done {
                    return false; // cannot happen: the lengths fit
                }
            }
            ob = oe;
        }
        if n < 4 {
            if let Some(o) = output.get_mut(px0 * p.out_c..) {
                let len = o.len().min(n * p.out_c);
                o[..len].copy_from_slice(&short[..len]);
            }
        }
        px0 += n;
    }
    true
}

/// [`crate::kernels::fast::conv2d_masked`] on the DSP extension: the
/// four-pixel path over the live taps only (the rows above the centre and
/// the centre row up to the centre, a prefix of the OHWI filter), so the
/// masked half of the window costs nothing. Same checks, errors and bytes
/// (when the masked taps are zero, which the model checker verifies; kernel
/// rows longer than [`SEG`] take the plain reference conv).
///
/// # Errors
/// As [`crate::kernels::fast::conv2d_masked`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d_masked(
    p: &ConvParams,
    mask: Mask,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &mut [i8],
) -> Result<()> {
    let params = (bias, multiplier, shift);
    conv2d_masked_with(None, p, mask, input, weights, params, output)
}

/// [`conv2d_masked`] with the four-pixel path's buffers in `scratch`.
///
/// # Errors
/// As [`conv2d_masked`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d_masked_in(
    scratch: &mut ConvScratch,
    p: &ConvParams,
    mask: Mask,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &mut [i8],
) -> Result<()> {
    let params = (bias, multiplier, shift);
    conv2d_masked_with(Some(scratch), p, mask, input, weights, params, output)
}

#[inline(never)]
fn conv2d_masked_with(
    scratch: Option<&mut ConvScratch>,
    p: &ConvParams,
    mask: Mask,
    input: &[i8],
    weights: &[i8],
    (bias, multiplier, shift): (&[i32], &[i32], &[i32]),
    output: &mut [i8],
) -> Result<()> {
    check_conv(p, input, weights, bias, multiplier, shift, output)?;
    check_causal(p, mask)?;
    if output.is_empty() {
        return Ok(());
    }
    let kc = p.k * p.in_c;
    if kc > SEG || kc == 0 || !packs(p.in_zp) {
        // The masked taps are zero (the model checker verifies it), so the
        // plain reference conv gives the same bytes.
        return wide_rows(p, input, weights, bias, multiplier, shift, output);
    }
    let (rows, last) = live(mask, p.k);
    let out = Requant::new(p.out_zp, p.act_min, p.act_max);
    let params = (bias, multiplier, shift);
    if four_pixels_in(
        scratch,
        p,
        Live { rows, last },
        false,
        input,
        weights,
        params,
        output,
        &out,
    ) != Some(p.out_h * p.out_w)
    {
        wide_rows(p, input, weights, bias, multiplier, shift, output)?;
    }
    Ok(())
}

/// True when `x − zp` fits the `i16` lanes the DSP kernels pack inputs
/// into, for every int8 `x`: an int8 zero point (every model the checker
/// accepts). Other zero points, which only a direct kernel call can pass,
/// take the reference, whose `i32` arithmetic they need.
#[inline(always)]
pub(super) fn packs(zp: i32) -> bool {
    (-128..=127).contains(&zp)
}

/// The taps a conv reads: kernel rows `0..rows`, the last of them up to
/// column `last` (a prefix of each OHWI filter).
#[derive(Clone, Copy)]
struct Live {
    rows: usize,
    last: usize,
}

impl Live {
    /// Taps read in kernel row `ky`.
    #[inline(always)]
    fn cols(&self, ky: usize, k: usize) -> usize {
        if ky + 1 == self.rows {
            self.last
        } else {
            k
        }
    }
}

/// Kernel rows longer than [`SEG`]: the reference, in its own frame
/// (also for masked convs, whose masked taps are zero).
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn wide_rows(
    p: &ConvParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &mut [i8],
) -> Result<()> {
    reference::conv2d(p, input, weights, bias, multiplier, shift, output)
}

/// The stack buffers of the four-pixel path (about 2.8 KB): the packed
/// windows of a group of four pixels, a block's accumulators and the
/// channel table (the windows' tails, 48 bytes, stay local: through the
/// scratch they cost 16 instructions per group of four pixels, measured). A caller that runs many small convs (the
/// streaming plan's strips) makes one and passes it to [`conv2d_in`] and
/// [`conv2d_masked_in`], instead of having them zeroed at every call.
/// What it holds from earlier calls reaches no output: the windows of
/// a short last group's missing pixels and their accumulators are
/// computed from it and dropped, everything else is written first
/// (`kernel-check` runs every conv case through one shared scratch).
///
/// The arrays are flat (`cols`, `acc`) and the table's zero is a literal:
/// at opt-level "s" an array of arrays is zeroed element by element, one
/// `memclr` call each.
pub struct ConvScratch {
    cols: [u32; 8 * (SEG / 4)],
    acc: [i32; 4 * BLOCK],
    table: [Chan; TABLE],
}

impl ConvScratch {
    /// A scratch for any number of calls.
    pub fn new() -> Self {
        const ZERO: Chan = Chan {
            bias: 0,
            m: 0,
            h: 0,
        };
        ConvScratch {
            cols: [0; 8 * (SEG / 4)],
            acc: [0; 4 * BLOCK],
            table: [ZERO; TABLE],
        }
    }
}

impl Default for ConvScratch {
    fn default() -> Self {
        Self::new()
    }
}

/// [`four_pixels`] with a scratch of its own, in its own frame (so that the
/// stack holds it only on this path).
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn four_pixels_fresh(
    p: &ConvParams,
    live: Live,
    single: bool,
    input: &[i8],
    weights: &[i8],
    (bias, multiplier, shift): (&[i32], &[i32], &[i32]),
    output: &mut [i8],
    out: &Requant,
) -> Option<usize> {
    four_pixels(
        &mut ConvScratch::new(),
        p,
        live,
        single,
        input,
        weights,
        bias,
        multiplier,
        shift,
        output,
        out,
    )
}

/// The four-pixel path (module docs); lengths checked by the caller.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn four_pixels(
    scratch: &mut ConvScratch,
    p: &ConvParams,
    live: Live,
    single: bool,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &mut [i8],
    out: &Requant,
) -> Option<usize> {
    let kc = p.k * p.in_c;
    let taps = p.k * kc;
    let rows_per_seg = SEG / kc; // >= 1
    let segs = live.rows.div_ceil(rows_per_seg);
    let pixels = p.out_h * p.out_w;
    let aligned = p.in_c % 4 == 0;
    let ConvScratch { cols, acc, table } = scratch;
    let mut tails = [[0i32; 3]; 4];
    // Flat in the scratch: an array of arrays is zeroed element by element
    // (48 `memclr` calls at opt-level "s"), a flat one in one call.
    let cols: &mut [[u32; 8]; SEG / 4] = bytemuck::cast_slice_mut::<u32, [u32; 8]>(cols)
        .try_into()
        .ok()?;
    let acc: &mut [[i32; 4]; BLOCK] = bytemuck::cast_slice_mut::<i32, [i32; 4]>(acc)
        .try_into()
        .ok()?;
    let zp2 = splat16(p.in_zp);
    // Every channel's bias and output stage, once per call, when all of
    // them take the high-word path: then whole windows run the channel
    // loop in asm ([`channels_4px`]).
    let full = (p.act_min, p.act_max) == (-128, 127);
    let (out_zp, _, _) = out.constants();
    let max_h = if full { full_range_max_h(out_zp) } else { -1 };
    // The asm channel loops take a channel with the high-word stage or
    // shift −1 (`t = 32`: the rounded high word, `SMMULR`, is `(acc · m +
    // 2^31) >> 32` exactly): `m ≥ 0`, `shift ∈ [MIN_SHIFT, −1]`, checked
    // for every channel while the table is built in asm
    // (`dsp::chan_table`; the streaming strips build one per call).
    let tabled = p.out_c <= TABLE
        && out.zp_small()
        && table
            .get_mut(..p.out_c)
            .is_some_and(|t| chan_table(bias, multiplier, shift, max_h, t));
    // Raw windows: with the asm loops and whole chunks, the zero point is
    // folded into the table's biases (`bias − zp · Σ w` over the live
    // taps; wrapping, like every sum here) and groups of four pixels pack
    // their windows without subtracting it (padding as `zp`):
    // `dsp::pack_run_raw`, 4.5 instructions per 4 bytes per pixel instead
    // of 8. The last, partial group runs the Rust loop on the real biases.
    // Folding costs a pass over the weights (about 3 instructions per
    // weight), which a layer repays only with many pixels per output
    // channel: measured on DiracNet, 784 pixels for 16 channels gain 60 k,
    // 49 pixels for 64 channels lose 119 k; hence `pixels ≥ 8 · out_c`.
    let raw = tabled && aligned && pixels >= 8 * p.out_c;
    if raw {
        let live_len: usize = (0..live.rows).map(|ky| live.cols(ky, p.k) * p.in_c).sum();
        for (c, w) in table.iter_mut().zip(weights.chunks_exact(taps)) {
            let sum = w
                .iter()
                .take(live_len)
                .fold(0i32, |a, &v| a.wrapping_add(v as i32));
            c.bias = c.bias.wrapping_sub(p.in_zp.wrapping_mul(sum));
        }
    }
    let table = &table[..p.out_c.min(TABLE)];

    let mut px0 = 0;
    while px0 < pixels {
        let n = (pixels - px0).min(4);
        if single && n <= 2 {
            // One or two last pixels: [`single_pixels`] runs only them
            // (this loop would run four).
            return Some(px0);
        }
        let raw_g = raw && n == 4;
        let mut ob = 0;
        while ob < p.out_c {
            let oe = (ob + BLOCK).min(p.out_c);
            // The block's outputs were stored by the asm's last segment.
            let mut stored = false;
            for s in 0..segs {
                let ky0 = s * rows_per_seg;
                let ky1 = (ky0 + rows_per_seg).min(live.rows);
                let len = (ky0..ky1)
                    .map(|ky| live.cols(ky, p.k) * p.in_c)
                    .sum::<usize>();
                // One segment: gathered once per pixel group, unless the
                // window has several segments (then once per block).
                let whole = aligned
                    && n == 4
                    && (segs > 1 || ob == 0)
                    && gather_inside(p, live, input, px0, ky0..ky1, cols, zp2, raw_g);
                if (segs > 1 || ob == 0) && !whole {
                    for (slot, tail) in tails.iter_mut().enumerate().take(n) {
                        let px = px0 + slot;
                        let (oy, ox) = (px / p.out_w, px % p.out_w);
                        if aligned {
                            gather_aligned(
                                p,
                                live,
                                input,
                                (oy, ox),
                                ky0..ky1,
                                cols,
                                slot,
                                zp2,
                                raw_g,
                            );
                        } else {
                            *tail = gather(p, live, input, (oy, ox), ky0..ky1, cols, slot);
                        }
                    }
                }
                let chunks = &cols[..len / 4];
                if segs == 1 && len % 4 == 0 && n == 4 {
                    // The whole window in one segment, no tail (whole
                    // chunks: `in_c % 4 == 0`, or live windows such as the
                    // 24 taps of a 7×7 mask-A conv on one channel): dot and
                    // output stage per channel, accumulators in registers.
                    let dst = output.get_mut(px0 * p.out_c..).unwrap_or_default();
                    let done = tabled
                        && channels_4px(
                            chunks,
                            weights,
                            taps,
                            table,
                            out.constants(),
                            dst,
                            p.out_c,
                        );
                    if !done {
                        if raw_g {
                            return None; // cannot happen: the lengths fit
                        }
                        one_segment(
                            chunks, weights, taps, bias, multiplier, shift, dst, p.out_c, out,
                        );
                    }
                    ob = p.out_c;
                    break;
                }
                // Whole chunks in every segment, every channel on the asm
                // stages: the block's channel loop in asm too.
                if tabled && aligned && n == 4 {
                    let dst = output.get_mut(px0 * p.out_c + ob..).unwrap_or_default();
                    let w = weights.get(ob * taps + ky0 * kc..).unwrap_or_default();
                    let last = s + 1 == segs;
                    if channels_4px_seg(
                        chunks,
                        w,
                        taps,
                        table.get(ob..oe).unwrap_or_default(),
                        acc,
                        (s == 0, last),
                        out.constants(),
                        dst,
                        p.out_c,
                    ) {
                        stored |= last;
                        continue;
                    }
                    if raw_g {
                        return None; // cannot happen: the lengths fit
                    }
                }
                for (o, a) in (ob..oe).zip(acc.iter_mut()) {
                    if s == 0 {
                        *a = [bias[o]; 4];
                    }
                    let w = &weights[o * taps + ky0 * kc..][..len];
                    let (wc, wt) = chunks4(w);
                    *a = dot_4px(chunks, wc, *a);
                    if !wt.is_empty() {
                        for (slot, tail) in a.iter_mut().zip(&tails) {
                            for (&wv, &xv) in wt.iter().zip(tail) {
                                *slot = slot.wrapping_add(xv.wrapping_mul(wv as i32));
                            }
                        }
                    }
                }
            }
            if ob == p.out_c {
                break;
            }
            if stored {
                ob = oe;
                continue;
            }
            for (o, a) in (ob..oe).zip(acc.iter()) {
                let dst = output.get_mut(px0 * p.out_c + o..).unwrap_or_default();
                out.store(&a[..n], multiplier[o], shift[o], dst, p.out_c);
            }
            ob = oe;
        }
        px0 += n;
    }
    Some(pixels)
}

/// Output pixels `from..` one by one: each window gathered into packed
/// pairs ([`pixel::Gather`], `x − zp`, padding 0), then every channel,
/// two per pass ([`pixel::Gather::channels`]). For the last one or two
/// pixels of a conv, which a four-pixel pass would run as four: on
/// DiracNet's 7×7 layers (49 pixels) this is 1.4 instructions per MAC
/// for the last pixel against about 5.
///
/// Returns false, writing nothing more, unless every window is whole
/// chunks of at most [`SINGLE`] taps (the caller checks it).
#[allow(clippy::too_many_arguments)]
#[cfg(not(feature = "compact"))]
#[inline(never)]
fn single_pixels(
    p: &ConvParams,
    from: usize,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &mut [i8],
    out: &Requant,
) -> bool {
    let taps = p.k * p.k * p.in_c;
    if p.in_c % 4 != 0 || taps > SINGLE {
        return false;
    }
    let zp2 = splat16(p.in_zp);
    let mut g = pixel::Gather::<{ SINGLE / 4 }>::new();
    for px in from..p.out_h * p.out_w {
        let (oy, ox) = (px / p.out_w, px % p.out_w);
        let x0 = ox * p.stride;
        let kx_lo = p.pad.saturating_sub(x0).min(p.k);
        let kx_hi = p.k.min((p.in_w + p.pad).saturating_sub(x0)).max(kx_lo);
        g.clear();
        for ky in 0..p.k {
            let iy = (oy * p.stride + ky)
                .checked_sub(p.pad)
                .filter(|&y| y < p.in_h);
            match iy {
                Some(iy) if kx_lo < kx_hi => {
                    let at = (iy * p.in_w + x0 + kx_lo - p.pad) * p.in_c;
                    g.zeros(kx_lo * p.in_c);
                    let run = input.get(at..at + (kx_hi - kx_lo) * p.in_c);
                    g.bytes(run.unwrap_or_default(), p.in_zp, zp2);
                    g.zeros((p.k - kx_hi) * p.in_c);
                }
                _ => g.zeros(p.k * p.in_c),
            }
        }
        let dst = output.get_mut(px * p.out_c..(px + 1) * p.out_c);
        match dst {
            Some(dst) if g.len() == taps => {
                g.channels(taps, taps, weights, (bias, multiplier, shift), out, dst);
            }
            _ => return false, // cannot happen: the lengths were checked
        }
    }
    true
}

/// Every output channel of a group of four pixels whose windows are whole
/// in `chunks` (one segment, no tail): `dst[o + i · out_c]` for
/// pixel `i`, channel `o`. The channels' weight rows, bias and output
/// stage are walked together, without index checks per channel.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn one_segment(
    chunks: &[[u32; 8]],
    weights: &[i8],
    taps: usize,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    dst: &mut [i8],
    out_c: usize,
    out: &Requant,
) {
    let rows = weights.chunks_exact(taps);
    let params = bias.iter().zip(multiplier).zip(shift);
    for (o, (w, ((&b, &m), &sh))) in rows.zip(params).enumerate() {
        let a = dot_4px(chunks, chunks4(w).0, [b; 4]);
        out.store(&a, m, sh, dst.get_mut(o..).unwrap_or_default(), out_c);
    }
}

/// The output stage with the layer's constants; the channel's multiplier
/// and shift are passed per call.
///
/// When `shift ≤ −2` (the right shift `t = 31 − shift` is at least 33,
/// true of every conv layer exported so far) it takes the high word of the
/// 64-bit product, as [`OutputStage`] explains: `SMULL`, two `ASR`s, two
/// adds and the clamp, without preparing a stage per channel. Otherwise
/// it builds the [`OutputStage`].
#[derive(Clone, Copy)]
pub(super) struct Requant {
    zp: i32,
    lo: i32,
    hi: i32,
    act: (i8, i8),
    /// `out_zp` small enough for the high-word path (`|zp| ≤ 2^30`).
    zp_small: bool,
}

impl Requant {
    pub(super) fn new(zp: i32, lo: i8, hi: i8) -> Self {
        Requant {
            zp,
            lo: lo as i32,
            hi: hi as i32,
            act: (lo, hi),
            zp_small: (-(1 << 30)..=(1 << 30)).contains(&zp),
        }
    }

    /// `(zp, lo, hi)`: the output zero point and the activation range.
    #[inline(always)]
    pub(super) fn constants(&self) -> (i32, i32, i32) {
        (self.zp, self.lo, self.hi)
    }

    /// True when the output zero point allows the high-word path
    /// (`|zp| ≤ 2^30`); then `(m, shift)` decide per channel.
    #[inline(always)]
    pub(super) fn zp_small(&self) -> bool {
        self.zp_small
    }

    /// True when `(m, shift)` takes the high-word path.
    #[inline(always)]
    pub(super) fn high_word(&self, m: i32, shift: i32) -> bool {
        self.zp_small && m >= 0 && (MIN_SHIFT..=-2).contains(&shift)
    }

    /// The high-word path, `h = −2 − shift`; only when [`Self::high_word`].
    #[inline(always)]
    pub(super) fn high(&self, acc: i32, m: i32, h: u32) -> i8 {
        let r = high_word(acc, m, h);
        (r + self.zp).max(self.lo).min(self.hi) as i8
    }

    /// `acc` requantized with `(m, shift)`.
    #[inline(always)]
    pub(super) fn one(&self, acc: i32, m: i32, shift: i32) -> i8 {
        if self.high_word(m, shift) {
            self.high(acc, m, (-2 - shift) as u32)
        } else {
            self.one_general(acc, m, shift)
        }
    }

    #[cold]
    #[inline(never)]
    fn one_general(&self, acc: i32, m: i32, shift: i32) -> i8 {
        OutputStage::new(m, shift, self.zp, self.act.0, self.act.1).apply(acc)
    }

    /// Writes `acc[i]`, requantized with `(m, shift)`, to `dst[i · stride]`.
    #[inline(always)]
    pub(super) fn store(&self, acc: &[i32], m: i32, shift: i32, dst: &mut [i8], stride: usize) {
        if self.high_word(m, shift) {
            let h = (-2 - shift) as u32; // 0..=29
            if let Ok(&four) = <&[i32; 4]>::try_from(acc) {
                if requant4(four, m, h, self.zp, self.lo, self.hi, dst, stride) {
                    return;
                }
            }
            for (i, &v) in acc.iter().enumerate() {
                if let Some(y) = dst.get_mut(i * stride) {
                    *y = self.high(v, m, h);
                }
            }
        } else {
            self.store_general(acc, m, shift, dst, stride);
        }
    }

    #[cold]
    #[inline(never)]
    fn store_general(&self, acc: &[i32], m: i32, shift: i32, dst: &mut [i8], stride: usize) {
        let q = OutputStage::new(m, shift, self.zp, self.act.0, self.act.1);
        for (i, &v) in acc.iter().enumerate() {
            if let Some(y) = dst.get_mut(i * stride) {
                *y = q.apply(v);
            }
        }
    }
}

/// The windows of the group of four pixels from `px0` (raster order) when
/// the four lie in one output row and their kernel rows `rows` lie inside
/// the input, every row whole (`in_c % 4 == 0`): one [`pack_rows`] call
/// for the four, minus `zp2` unless `raw`. Returns false, packing
/// nothing, for any other group (border pixels, groups that wrap to the
/// next row), which [`gather_aligned`] packs pixel by pixel.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gather_inside(
    p: &ConvParams,
    live: Live,
    input: &[i8],
    px0: usize,
    rows: core::ops::Range<usize>,
    cols: &mut [[u32; 8]],
    zp2: u32,
    raw: bool,
) -> bool {
    let (oy, ox) = (px0 / p.out_w, px0 % p.out_w);
    let x0 = ox * p.stride;
    let y0 = (oy * p.stride + rows.start).checked_sub(p.pad);
    let inside = ox + 3 < p.out_w
        && x0 >= p.pad
        && (ox + 3) * p.stride + p.k <= p.in_w + p.pad
        && (rows.end < live.rows || live.last == p.k)
        && y0.is_some_and(|y| y + rows.len() <= p.in_h);
    let Some(y0) = y0.filter(|_| inside) else {
        return false;
    };
    let row = p.in_w * p.in_c;
    let at = y0 * row + (x0 - p.pad) * p.in_c;
    let zp = if raw { None } else { Some(zp2) };
    let shape = (rows.len(), p.k * p.in_c / 4, 0);
    pack_rows(input, (at, p.stride * p.in_c, 4), row, shape, cols, 0, zp) != 0
}

/// [`gather`] for `in_c % 4 == 0`: every run of taps is whole chunks, so
/// four bytes at a time ([`pack_run`]: 8 instructions per 4 bytes).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gather_aligned(
    p: &ConvParams,
    live: Live,
    input: &[i8],
    (oy, ox): (usize, usize),
    rows: core::ops::Range<usize>,
    cols: &mut [[u32; 8]],
    slot: usize,
    zp2: u32,
    raw: bool,
) {
    let q = p.in_c / 4;
    let (i0, i1) = ((2 * slot) & 7, (2 * slot + 1) & 7);
    let mut j = 0;
    // Padding: 0 once the zero point is subtracted, `zp` in raw windows.
    let pad = if raw { zp2 } else { 0 };
    let zeros = |cols: &mut [[u32; 8]], j: &mut usize, n: usize| {
        for c in cols.iter_mut().skip(*j).take(n) {
            c[i0] = pad;
            c[i1] = pad;
        }
        *j += n;
    };
    let x0 = ox * p.stride;
    let kx_lo = p.pad.saturating_sub(x0).min(p.k);
    let kx_hi = p.k.min((p.in_w + p.pad).saturating_sub(x0)).max(kx_lo);
    // A window inside the input, every row of it whole (no padding, no
    // masked taps): its rows in one asm call.
    let y0 = (oy * p.stride + rows.start).checked_sub(p.pad);
    let inside = kx_lo == 0
        && kx_hi == p.k
        && !rows.is_empty()
        && (rows.end < live.rows || live.last == p.k)
        && y0.is_some_and(|y| y + rows.len() <= p.in_h);
    if let (true, Some(y0)) = (inside, y0) {
        let row = p.in_w * p.in_c;
        let at = y0 * row + (x0 - p.pad) * p.in_c;
        let zp = if raw { None } else { Some(zp2) };
        let shape = (rows.len(), p.k * q, 0);
        if pack_rows(input, (at, 0, 1), row, shape, cols, slot & 3, zp) != 0 {
            return;
        }
    }
    // Every row whole (no masked taps): the padding filled, if any, and
    // the taps inside the input (a rectangle of rows `va..vb`, columns
    // `lo..hi`; the whole window, for pixels off the border) packed in
    // one asm call.
    let len = rows.len();
    if len > 0 && (rows.end < live.rows || live.last == p.k) {
        let ys = oy * p.stride + rows.start; // in padded coordinates
        let va = p.pad.saturating_sub(ys).min(len);
        let vb = (p.in_h + p.pad).saturating_sub(ys).min(len).max(va);
        let (kq, lq, hq) = (p.k * q, kx_lo * q, kx_hi * q);
        let fill = |c: &mut [[u32; 8]]| {
            for x in c {
                x[i0] = pad;
                x[i1] = pad;
            }
        };
        let win = cols.get_mut(..len * kq).unwrap_or_default();
        if va == vb || lq == hq {
            fill(win);
            return;
        }
        let (above, rest) = win.split_at_mut(va * kq);
        let (mid, below) = rest.split_at_mut((vb - va) * kq);
        if va > 0 || vb < len {
            fill(above);
            fill(below);
        }
        if lq > 0 || hq < kq {
            for r in mid.chunks_exact_mut(kq) {
                let (l, r) = r.split_at_mut(lq);
                fill(l);
                fill(r.get_mut(hq - lq..).unwrap_or_default());
            }
        }
        let at = ((ys + va - p.pad) * p.in_w + x0 + kx_lo - p.pad) * p.in_c;
        let zp = if raw { None } else { Some(zp2) };
        let shape = (vb - va, hq - lq, kq - (hq - lq));
        let dst = mid.get_mut(lq..).unwrap_or_default();
        if pack_rows(input, (at, 0, 1), p.in_w * p.in_c, shape, dst, slot & 3, zp) != 0 {
            return;
        }
        j = 0; // cannot happen (the rectangle is inside `input`): repack
    }
    for ky in rows {
        let iy = (oy * p.stride + ky)
            .checked_sub(p.pad)
            .filter(|&y| y < p.in_h);
        let lim = live.cols(ky, p.k);
        let (lo, hi) = (kx_lo.min(lim), kx_hi.min(lim));
        match iy {
            Some(iy) if lo < hi => {
                zeros(cols, &mut j, lo * q);
                let at = (iy * p.in_w + x0 + lo - p.pad) * p.in_c;
                let run = input.get(at..at + (hi - lo) * p.in_c).unwrap_or(&[]);
                let dst = cols.get_mut(j..).unwrap_or_default();
                j += if raw {
                    pack_run_raw(chunks4(run).0, dst, slot)
                } else {
                    pack_run(chunks4(run).0, dst, slot, zp2)
                };
                zeros(cols, &mut j, (lim - hi) * q);
            }
            _ => zeros(cols, &mut j, lim * q),
        }
    }
}

/// Packs kernel rows `rows` of output pixel `(oy, ox)`'s window, minus the
/// input zero point (padding as 0), into column `slot` of `cols`, one
/// element at a time (any channel count); returns the last `len % 4`
/// elements, which fill no whole chunk.
#[allow(clippy::too_many_arguments)]
fn gather(
    p: &ConvParams,
    live: Live,
    input: &[i8],
    (oy, ox): (usize, usize),
    rows: core::ops::Range<usize>,
    cols: &mut [[u32; 8]],
    slot: usize,
) -> [i32; 3] {
    let cin = p.in_c;
    let mut pk = Packer {
        cols,
        slot,
        j: 0,
        stage: [0; 4],
        fill: 0,
        zp: p.in_zp,
    };
    let x0 = ox * p.stride;
    // Taps inside the image along x: 0 <= x0 + kx - pad < in_w.
    let kx_lo = p.pad.saturating_sub(x0).min(p.k);
    let kx_hi = p.k.min((p.in_w + p.pad).saturating_sub(x0)).max(kx_lo);
    for ky in rows {
        let iy = (oy * p.stride + ky)
            .checked_sub(p.pad)
            .filter(|&y| y < p.in_h);
        let lim = live.cols(ky, p.k);
        let (lo, hi) = (kx_lo.min(lim), kx_hi.min(lim));
        match iy {
            Some(iy) if lo < hi => {
                let at = (iy * p.in_w + x0 + lo - p.pad) * cin;
                pk.zeros(lo * cin);
                pk.bytes(input.get(at..at + (hi - lo) * cin).unwrap_or(&[]));
                pk.zeros((lim - hi) * cin);
            }
            _ => pk.zeros(lim * cin),
        }
    }
    let mut tail = [0i32; 3];
    tail[..pk.fill].copy_from_slice(&pk.stage[..pk.fill]);
    tail
}

/// Writes a stream of window elements into one pixel's column, one at a
/// time.
struct Packer<'a> {
    cols: &'a mut [[u32; 8]],
    slot: usize,
    /// Next chunk.
    j: usize,
    /// Elements of a chunk not yet full.
    stage: [i32; 4],
    fill: usize,
    zp: i32,
}

impl Packer<'_> {
    #[inline(always)]
    fn put(&mut self, pair: [u32; 2]) {
        if let Some(c) = self.cols.get_mut(self.j) {
            c[(2 * self.slot) & 7] = pair[0];
            c[(2 * self.slot + 1) & 7] = pair[1];
        }
        self.j += 1;
    }

    #[inline(always)]
    fn push(&mut self, v: i32) {
        self.stage[self.fill & 3] = v;
        self.fill += 1;
        if self.fill == 4 {
            self.fill = 0;
            let st = self.stage;
            self.put(pack4(st));
        }
    }

    /// `n` padding taps (value 0 once the zero point is subtracted).
    fn zeros(&mut self, n: usize) {
        for _ in 0..n {
            self.push(0);
        }
    }

    /// Input bytes, minus the zero point.
    fn bytes(&mut self, x: &[i8]) {
        for &v in x {
            self.push(v as i32 - self.zp);
        }
    }
}
