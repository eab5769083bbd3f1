//! conv2d for DiracNet's stem: 3×3, one input channel, stride 1.
//!
//! [`super::conv`]'s four-pixel loop spends per output channel and per
//! group of pixels a call set-up that a 9-tap filter cannot amortize
//! (11.8 instructions per MAC). Here, per call, every channel's nine taps
//! are packed into five `i16` pairs with its bias and output stage (a
//! 1 KB stack table). Per row of up to [`ROW`] output pixels, the padded
//! input columns are read once into pairs (kernel rows 0 and 1 of each
//! column, and row 2), from which each pixel's window is five words.
//! Then per channel one filter in registers runs over the row of windows
//! (`dsp::dot5_windows`: two `LDM`, five `SMLAD`, `STR` per pixel, two
//! pixels per pass) and the output stage over the row
//! (`dsp::requant_windows`, 12 or 14 instructions per value). Measured:
//! 2.90 instructions per MAC on the 28×28×1 → 16 stem (docs/firmware.md).

use super::conv::Requant;
use super::dsp::{dot5_windows, requant_windows, Window};
use crate::kernels::reference::ConvParams;

/// The window in `i16` pairs: nine taps and a zero.
pub const WORDS: usize = 5;
/// Output pixels whose windows are packed together (a row, or part of one).
const ROW: usize = 32;
/// Output channels whose packed filters fit the stack table (1 KB).
pub const CHANNELS: usize = 32;

/// True when [`conv2d`] takes the layer: 3×3, one input channel, stride
/// 1 (DiracNet's stem), at most [`CHANNELS`] output channels. Other small
/// windows take the four-pixel path.
pub fn fits(p: &ConvParams) -> bool {
    p.k == 3 && p.in_c == 1 && p.stride == 1 && p.out_c <= CHANNELS
}

/// `lo | hi << 16` of two `i16` values.
#[inline(always)]
fn pair(lo: i32, hi: i32) -> u32 {
    (lo as u16 as u32) | ((hi as u16 as u32) << 16)
}

/// One channel: its packed filter, bias, multiplier and `h = −2 − shift`.
#[derive(Clone, Copy, Default)]
#[repr(C, align(8))]
struct Channel {
    f: [u32; WORDS],
    bias: i32,
    m: i32,
    h: u32,
}

/// The conv; the caller checked lengths ([`crate::kernels::reference`]'s
/// `check`) and [`fits`].
#[allow(clippy::too_many_arguments)]
#[inline(never)]
pub(super) fn conv2d(
    p: &ConvParams,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    output: &mut [i8],
    out: &Requant,
) {
    let taps = p.k * p.k * p.in_c;
    let mut table = [Channel::default(); CHANNELS];
    // Every channel on the high-word requantization path: then the loop
    // below needs no per-output test.
    let mut fast = true;
    let params = bias.iter().zip(multiplier).zip(shift);
    for (o, (c, ((&b, &m), &sh))) in table.iter_mut().zip(params).enumerate() {
        let w = weights.get(o * taps..(o + 1) * taps).unwrap_or(&[]);
        let at = |i: usize| w.get(i).map_or(0, |&v| v as i32);
        // Taps (ky, kx) at 3·ky + kx, paired as `columns_window` pairs the
        // inputs: rows 0 and 1 of each column, then row 2.
        c.f = [
            pair(at(0), at(3)),
            pair(at(1), at(4)),
            pair(at(2), at(5)),
            pair(at(6), at(7)),
            pair(at(8), 0),
        ];
        fast &= out.high_word(m, sh);
        *c = Channel {
            bias: b,
            m,
            h: (-2 - sh).clamp(0, 29) as u32,
            ..*c
        };
    }
    let chans = &table[..p.out_c.min(CHANNELS)];
    let mut wins = [Window::default(); ROW];
    for oy in 0..p.out_h {
        let mut ox0 = 0;
        while ox0 < p.out_w {
            let n = (p.out_w - ox0).min(ROW);
            let row = &mut wins[..n];
            columns_window(p, input, oy, ox0, row);
            let px0 = oy * p.out_w + ox0;
            let base = output.get_mut(px0 * p.out_c..).unwrap_or_default();
            for (o, c) in chans.iter().enumerate() {
                dot5_windows(row, &c.f, c.bias);
                let dst = base.get_mut(o..).unwrap_or_default();
                if fast {
                    store_high(row, c, out, dst, p.out_c);
                } else {
                    let (m, sh) = (multiplier[o], shift[o]);
                    for (i, w) in row.iter().enumerate() {
                        if let Some(y) = dst.get_mut(i * p.out_c) {
                            *y = out.one(w.acc, m, sh);
                        }
                    }
                }
            }
            ox0 += n;
        }
    }
}

/// The windows of output pixels `(oy, ox0 + i)` of a 3×3, one-channel,
/// stride-1 conv, paired by columns: `[c(0), c(1), c(2), r2(0) | r2(1),
/// r2(2) | 0]`, where `c(kx)` pairs kernel rows 0 and 1 of column `kx`
/// and `r2` is kernel row 2 (`x − zp`, padding 0). Each padded input
/// column is read once for the row of windows instead of three times per
/// window.
#[inline(always)]
fn columns_window(p: &ConvParams, input: &[i8], oy: usize, ox0: usize, wins: &mut [Window]) {
    let mut c01 = [0u32; ROW + 2];
    let mut r2 = [0i32; ROW + 2];
    let rows: [&[i8]; 3] = core::array::from_fn(|ky| {
        (oy + ky)
            .checked_sub(p.pad)
            .filter(|&y| y < p.in_h)
            .and_then(|y| input.get(y * p.in_w..(y + 1) * p.in_w))
            .unwrap_or(&[])
    });
    let v = |r: &[i8], x: usize| {
        x.checked_sub(p.pad)
            .and_then(|x| r.get(x))
            .map_or(0, |&b| b as i32 - p.in_zp)
    };
    // Padded columns ox0 .. ox0 + n + 2; those inside the image are
    // j_lo .. j_hi (input column ox0 + j − pad).
    let cols = wins.len() + 2;
    let j_lo = p.pad.saturating_sub(ox0).min(cols);
    let j_hi = (p.pad + p.in_w).saturating_sub(ox0).min(cols).max(j_lo);
    let x_lo = (ox0 + j_lo).saturating_sub(p.pad);
    let span = x_lo..x_lo + (j_hi - j_lo);
    let zp = p.in_zp;
    let inside = rows.map(|r| r.get(span.clone()));
    match (inside[0], inside[1], inside[2]) {
        (Some(a), Some(b), Some(c)) => {
            let dst = c01[j_lo..j_hi].iter_mut().zip(&mut r2[j_lo..j_hi]);
            for ((cc, rr), ((&x0, &x1), &x2)) in dst.zip(a.iter().zip(b).zip(c)) {
                *cc = pair(x0 as i32 - zp, x1 as i32 - zp);
                *rr = x2 as i32 - zp;
            }
        }
        _ => {
            for (j, (c, r)) in c01
                .iter_mut()
                .zip(r2.iter_mut())
                .enumerate()
                .take(j_hi)
                .skip(j_lo)
            {
                let x = ox0 + j;
                *c = pair(v(rows[0], x), v(rows[1], x));
                *r = v(rows[2], x);
            }
        }
    }
    let cw = c01.windows(3).zip(r2.windows(3));
    for (w, (c, r)) in wins.iter_mut().zip(cw) {
        w.x = [c[0], c[1], c[2], pair(r[0], r[1]), pair(r[2], 0)];
    }
}

/// The high-word output stage of channel `c` over a row of windows:
/// `dst[i · stride]` for window `i`.
#[inline(always)]
fn store_high(row: &[Window], c: &Channel, out: &Requant, dst: &mut [i8], stride: usize) {
    let (zp, lo, hi) = out.constants();
    if !requant_windows(row, c.m, c.h, zp, lo, hi, dst, stride) {
        for (i, w) in row.iter().enumerate() {
            if let Some(y) = dst.get_mut(i * stride) {
                *y = out.high(w.acc, c.m, c.h);
            }
        }
    }
}
