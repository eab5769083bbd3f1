//! conv2d for small windows (`k · k · in_c ≤ 10`: the 3×3 stem on one
//! input channel): one output pixel at a time, every channel's filter
//! packed once per call.
//!
//! [`super::conv`]'s four-pixel loop spends per output channel and per
//! group of pixels a call set-up and a tail that a 9-tap filter cannot
//! amortize (11.8 instructions per MAC on DiracNet's stem). Here each
//! channel's taps are packed once per call into `i16` pairs on the stack
//! ([`PACKED`] words), each pixel's window once per pixel (zero point
//! subtracted, padding 0), and each output is 5 `LDR` + 5 `SMLAD` and the
//! requantization.

use super::conv::Requant;
use super::dsp::smlad;
use crate::kernels::reference::ConvParams;

/// Largest window this path takes (`k · k · in_c`), in `i16` pairs: 5.
pub const WORDS: usize = 5;
/// Output channels whose packed filters fit the stack table (1 KB).
pub const CHANNELS: usize = 32;

/// True when [`conv2d`] takes the layer.
pub fn fits(p: &ConvParams) -> bool {
    let taps = p.k * p.k * p.in_c;
    taps > 0 && taps <= 2 * WORDS && p.out_c <= CHANNELS
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
        for (j, d) in c.f.iter_mut().enumerate() {
            *d = pair(at(2 * j), at(2 * j + 1));
        }
        fast &= out.high_word(m, sh);
        *c = Channel {
            bias: b,
            m,
            h: (-2 - sh).clamp(0, 29) as u32,
            ..*c
        };
    }
    let chans = &table[..p.out_c.min(CHANNELS)];
    let kc = p.k * p.in_c;
    let row = p.in_w * p.in_c;
    for oy in 0..p.out_h {
        for ox in 0..p.out_w {
            // The window, x − zp, padding 0, in tap order.
            let mut win = [0i32; 2 * WORDS];
            let (y0, x0) = (oy * p.stride, ox * p.stride);
            let inside = y0 >= p.pad
                && x0 >= p.pad
                && y0 + p.k <= p.in_h + p.pad
                && x0 + p.k <= p.in_w + p.pad;
            if inside {
                let base = ((y0 - p.pad) * p.in_w + x0 - p.pad) * p.in_c;
                for (ky, w) in win.chunks_mut(kc).take(p.k).enumerate() {
                    let run = input.get(base + ky * row..).unwrap_or_default();
                    for (d, &x) in w.iter_mut().zip(run) {
                        *d = x as i32 - p.in_zp;
                    }
                }
            } else {
                let kx_lo = p.pad.saturating_sub(x0).min(p.k);
                let kx_hi = p.k.min((p.in_w + p.pad).saturating_sub(x0)).max(kx_lo);
                for ky in 0..p.k {
                    let Some(iy) = (y0 + ky).checked_sub(p.pad).filter(|&y| y < p.in_h) else {
                        continue;
                    };
                    let at = (iy * p.in_w + x0 + kx_lo - p.pad) * p.in_c;
                    let run = input.get(at..at + (kx_hi - kx_lo) * p.in_c).unwrap_or(&[]);
                    let dst = win.iter_mut().skip(ky * kc + kx_lo * p.in_c);
                    for (d, &x) in dst.zip(run) {
                        *d = x as i32 - p.in_zp;
                    }
                }
            }
            let [x0, x1, x2, x3, x4]: [u32; WORDS] =
                core::array::from_fn(|j| pair(win[2 * j], win[2 * j + 1]));
            let dot = |c: &Channel| {
                let acc = smlad(x0, c.f[0], smlad(x1, c.f[1], smlad(x2, c.f[2], c.bias)));
                smlad(x3, c.f[3], smlad(x4, c.f[4], acc))
            };
            let px = oy * p.out_w + ox;
            let dst = output.get_mut(px * p.out_c..).unwrap_or_default();
            if fast {
                for (c, y) in chans.iter().zip(dst.iter_mut()) {
                    *y = out.high(dot(c), c.m, c.h);
                }
            } else {
                let params = multiplier.iter().zip(shift);
                for ((c, y), (&m, &sh)) in chans.iter().zip(dst.iter_mut()).zip(params) {
                    *y = out.one(dot(c), m, sh);
                }
            }
        }
    }
}
