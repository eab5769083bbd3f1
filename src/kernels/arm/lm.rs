//! Language-model matrix kernels on the DSP extension.
//!
//! - Row-quads matrices (the exporter's layout for the LSTM gates and the
//!   latents): the input packed once in natural order, then
//!   [`rows_quads`], one asm call per block of rows, 0.94 instructions per
//!   MAC in its loop and the dot products out of it directly. When the
//!   parsed model proved every requantization pair of a matrix to be of
//!   the high-word form ([`crate::quant::HighWord`]), the stages run
//!   without a per-row test ([`gates_high_word`]).
//! - Row-by-row matrices (the decoder, and models exported before row
//!   quads): [`dot_2rows`], two rows per pass, 24 instructions per 16
//!   multiply-accumulates in the inner loop (1.5 per MAC).
//!
//! Same checks, errors and bytes as [`crate::kernels::reference::lm`].
//! Inputs longer than [`MAX_LM_IN`] take the reference kernels.

use super::dsp::{chunks4, dot_2rows, high_word, low_shift, pack_bytes, rows_dot2, rows_quads};
use crate::kernels::lm::{QMatrix, Shifts, TiedRows, WeightLayout};
use crate::kernels::reference;
use crate::kernels::reference::lm::{check_gates, check_rows, check_tied, sat16};
use crate::quant::nonlin::tanh_q12;
use crate::quant::{requantize, MIN_SHIFT};
use crate::Result;

/// Longest input vector packed on the stack (1,024 bytes of buffer per vector).
pub const MAX_LM_IN: usize = 512;
/// Rows of an LSTM's gates whose dot products [`lstm_gates`] holds at once
/// (two `i32` buffers, 512 bytes of stack).
const BLOCK: usize = 64;

/// An input vector packed in chunks of four, and its last `len % 4` values.
struct Packed {
    buf: [[u32; 2]; MAX_LM_IN / 4],
    chunks: usize,
    tail: [i32; 3],
}

impl Packed {
    fn new(x: &[i8]) -> Self {
        let mut p = Packed {
            buf: [[0; 2]; MAX_LM_IN / 4],
            chunks: 0,
            tail: [0; 3],
        };
        let (c, rest) = chunks4(x);
        for (b, c) in p.buf.iter_mut().zip(c) {
            *b = pack_bytes(c, 0);
        }
        p.chunks = c.len().min(MAX_LM_IN / 4);
        for (t, &v) in p.tail.iter_mut().zip(rest) {
            *t = v as i32;
        }
        p
    }

    fn chunks(&self) -> &[[u32; 2]] {
        &self.buf[..self.chunks]
    }

    /// The tail's products with the last `len % 4` weights of a row.
    #[inline(always)]
    fn tail_dot(&self, w: &[i8]) -> i32 {
        w.iter()
            .zip(&self.tail)
            .fold(0i32, |a, (&w, &x)| a.wrapping_add(x * w as i32))
    }

    /// `[W[r]·x, W[r+1]·x]` for two rows of `n` weights.
    #[inline(always)]
    fn dot2(&self, r0: &[i8], r1: &[i8]) -> [i32; 2] {
        let (c0, t0) = chunks4(r0);
        let (c1, t1) = chunks4(r1);
        let [a, b] = dot_2rows(self.chunks(), c0, c1, [0, 0]);
        [
            a.wrapping_add(self.tail_dot(t0)),
            b.wrapping_add(self.tail_dot(t1)),
        ]
    }
}

/// An input vector of whole chunks of four in natural order (`[x0 | x1, x2
/// | x3]` per chunk), for [`rows_quads`], and `128 · Σx`.
struct Natural {
    buf: [[u32; 2]; MAX_LM_IN / 4],
    chunks: usize,
    s128: i32,
}

impl Natural {
    fn new(x: &[i8]) -> Self {
        let mut p = Natural {
            buf: [[0; 2]; MAX_LM_IN / 4],
            chunks: 0,
            s128: 0,
        };
        let (c, _) = chunks4(x);
        let l = |v: i8| v as i16 as u16 as u32;
        for (b, c) in p.buf.iter_mut().zip(c) {
            *b = [l(c[0]) | (l(c[1]) << 16), l(c[2]) | (l(c[3]) << 16)];
        }
        p.chunks = c.len().min(MAX_LM_IN / 4);
        // |Σx| ≤ 512 · 128: no wrap.
        p.s128 = 128 * x.iter().map(|&v| v as i32).sum::<i32>();
        p
    }

    fn chunks(&self) -> &[[u32; 2]] {
        &self.buf[..self.chunks]
    }

    /// `out[i] = W[r0 + i]·x` for the `out.len()` rows of a row-quads
    /// matrix `w` (`[rows][n]`) from row `r0`, a multiple of 4; false,
    /// doing nothing, when [`rows_quads`] refuses the shapes.
    fn rows(&self, w: &[i8], n: usize, r0: usize, out: &mut [i32]) -> bool {
        let w = w.get(r0 * n..).unwrap_or_default();
        rows_quads(self.chunks(), self.s128, w, n, out)
    }
}

/// The high-word pairs of `m`'s rows `r0..r0 + n`, when `m` carries the
/// proof ([`crate::quant::HighWord`]) for its own pairs.
fn high_word_rows<'a>(m: &QMatrix<'a>, r0: usize, n: usize) -> Option<(&'a [i32], &'a [i32])> {
    let hw = m.high_word.filter(|h| h.covers(m.mult, m.shift))?;
    Some((hw.mult().get(r0..r0 + n)?, hw.shift().get(r0..r0 + n)?))
}

/// The gates' stage of a block of rows, every pair of the high-word form:
/// `out[i] = sat16(hw(ax[i]) +sat hw(ah[i]) +sat bias[i])`, the same values
/// as [`rq`]'s (its first branch, taken by every row), without its tests.
/// In three passes of at most four streams each: one loop over all eight
/// keeps too many pointers live for the registers (38 instructions per
/// row in the one loop's profile; the three passes took 5,050 instructions
/// off the char LM bench's 1,024 rows per character, about 33 per row).
#[inline(always)]
fn gates_high_word(
    ax: &mut [i32],
    (mx, tx): (&[i32], &[i32]),
    ah: &mut [i32],
    (mh, th): (&[i32], &[i32]),
    bias: &[i32],
    out: &mut [i16],
) {
    high_words(ax, mx, tx);
    high_words(ah, mh, th);
    for ((o, &b), (&a, &c)) in out.iter_mut().zip(bias).zip(ax.iter().zip(ah.iter())) {
        *o = sat16(a.saturating_add(c).saturating_add(b));
    }
}

/// `acc[i] = hw(acc[i])` for high-word pairs `(m[i], shift[i])`.
#[inline(always)]
fn high_words(acc: &mut [i32], m: &[i32], shift: &[i32]) {
    for ((a, &m), &s) in acc.iter_mut().zip(m).zip(shift) {
        *a = high_word(*a, m, (-2 - s) as u32);
    }
}

/// Whether [`Natural::rows`] serves a row-quads `[rows][n]` matrix: inputs
/// of whole chunks, at most [`WeightLayout::DSP_MAX_DEPTH`] (see
/// [`rows_quads`]).
fn quads_fit(m: &QMatrix, n: usize) -> bool {
    m.layout == WeightLayout::RowQuads
        && n % 4 == 0
        && (4..=WeightLayout::DSP_MAX_DEPTH).contains(&n)
}

/// `f(r, W[r]·x)` for every row of the `[rows][n]` matrix `w`, two per pass
/// (an odd last row is paired with itself).
#[inline(always)]
fn rows(w: &[i8], n: usize, x: &Packed, mut f: impl FnMut(usize, i32)) {
    if n == 0 {
        return;
    }
    let mut pairs = w.chunks_exact(2 * n);
    let mut r = 0;
    for pair in &mut pairs {
        let (r0, r1) = pair.split_at(n);
        let [a, b] = x.dot2(r0, r1);
        f(r, a);
        f(r + 1, b);
        r += 2;
    }
    if let Some(last) = pairs.remainder().get(..n) {
        f(r, x.dot2(last, last)[0]);
    }
}

/// [`crate::kernels::reference::lm::lstm_gates`] with `SMLAD`.
///
/// # Errors
/// As the reference.
pub fn lstm_gates(
    wx: &QMatrix,
    x: &[i8],
    wh: &QMatrix,
    h: &[i8],
    bias: &[i32],
    gates: &mut [i16],
) -> Result<()> {
    check_gates(wx, x, wh, h, bias, gates)?;
    let (ni, nh) = (x.len(), h.len());
    let rows = gates.len();
    if quads_fit(wx, ni) && quads_fit(wh, nh) && rows % 4 == 0 {
        // Row quads (the exporter's layout for such shapes): each matrix's
        // dot products in one asm call per block of rows, 0.94 instructions
        // per MAC in the loop; the stages in Rust after it.
        let (px, ph) = (Natural::new(x), Natural::new(h));
        let (mut ax, mut ah) = ([0i32; BLOCK], [0i32; BLOCK]);
        for r0 in (0..rows).step_by(BLOCK) {
            let nb = BLOCK.min(rows - r0);
            let (ax, ah) = (&mut ax[..nb], &mut ah[..nb]);
            if let (Some(qx), Some(qh), Some(b), Some(out)) = (
                high_word_rows(wx, r0, nb),
                high_word_rows(wh, r0, nb),
                bias.get(r0..r0 + nb),
                gates.get_mut(r0..r0 + nb),
            ) {
                // Every row of the block of the high-word form (proven at
                // parse): the stage without its per-row tests.
                if px.rows(wx.w, ni, r0, ax) && ph.rows(wh.w, nh, r0, ah) {
                    gates_high_word(ax, qx, ah, qh, b, out);
                    continue;
                }
                return reference::lstm_gates(wx, x, wh, h, bias, gates); // cannot happen
            }
            if !px.rows(wx.w, ni, r0, ax) || !ph.rows(wh.w, nh, r0, ah) {
                // Cannot happen (shapes and alignment of a checked model);
                // the reference reads any layout.
                return reference::lstm_gates(wx, x, wh, h, bias, gates);
            }
            let out = gates.iter_mut().skip(r0).zip(ax.iter().zip(ah.iter()));
            for (i, (g, (&a, &b))) in (r0..).zip(out) {
                let z = rq(a, wx.mult[i], wx.shift[i])
                    .saturating_add(rq(b, wh.mult[i], wh.shift[i]))
                    .saturating_add(bias[i]);
                *g = sat16(z);
            }
        }
        return Ok(());
    }
    if ni > MAX_LM_IN
        || nh > MAX_LM_IN
        || ni == 0
        || nh == 0
        || wx.layout != WeightLayout::Rows
        || wh.layout != WeightLayout::Rows
    {
        return reference::lstm_gates(wx, x, wh, h, bias, gates);
    }
    let (px, ph) = (Packed::new(x), Packed::new(h));
    if ni % 4 == 0 && nh % 4 == 0 && rows % 2 == 0 {
        // Whole chunks and pairs of rows: each matrix's dot products in one
        // asm call per block of rows, the stages in Rust.
        let (mut ax, mut ah) = ([0i32; BLOCK], [0i32; BLOCK]);
        let mut done = 0;
        for r0 in (0..rows).step_by(BLOCK) {
            let nb = BLOCK.min(rows - r0);
            let (ax, ah) = (&mut ax[..nb], &mut ah[..nb]);
            let wx_rows = wx.w.get(r0 * ni..).unwrap_or_default();
            let wh_rows = wh.w.get(r0 * nh..).unwrap_or_default();
            if !rows_dot2(px.chunks(), wx_rows, ni, ax) || !rows_dot2(ph.chunks(), wh_rows, nh, ah)
            {
                break; // cannot happen: the lengths were checked
            }
            let out = gates.iter_mut().skip(r0).zip(ax.iter().zip(ah.iter()));
            for (i, (g, (&a, &b))) in (r0..).zip(out) {
                let z = rq(a, wx.mult[i], wx.shift[i])
                    .saturating_add(rq(b, wh.mult[i], wh.shift[i]))
                    .saturating_add(bias[i]);
                *g = sat16(z);
            }
            done = r0 + nb;
        }
        if done == rows {
            return Ok(());
        }
    }
    let mut r = 0;
    while r < rows {
        let r1 = if r + 1 < rows { r + 1 } else { r };
        let ax = px.dot2(&wx.w[r * ni..][..ni], &wx.w[r1 * ni..][..ni]);
        let ah = ph.dot2(&wh.w[r * nh..][..nh], &wh.w[r1 * nh..][..nh]);
        for (j, i) in [r, r1].into_iter().enumerate().take(r1 - r + 1) {
            let z = rq(ax[j], wx.mult[i], wx.shift[i])
                .saturating_add(rq(ah[j], wh.mult[i], wh.shift[i]))
                .saturating_add(bias[i]);
            gates[i] = sat16(z);
        }
        r += 2;
    }
    Ok(())
}

/// [`requantize`]: for `m ≥ 0` and `shift ≤ −2` (a right shift of
/// `t ≥ 33`) from the high word of the product, `((smmul(acc, m) >> (t −
/// 33)) + 1) >> 1`, the same value (see [`crate::quant::OutputStage`]) in
/// four instructions instead of a 64-bit shift; for `−1 ≤ shift ≤ 30` (a
/// right shift of 1 to 32) while `acc · 2^(shift + 1)` fits an `i32`,
/// [`low_shift`]'s `SMMULR`; otherwise [`requantize`].
#[inline(always)]
fn rq(acc: i32, m: i32, shift: i32) -> i32 {
    if m >= 0 && (MIN_SHIFT..=-2).contains(&shift) {
        high_word(acc, m, (-2 - shift) as u32)
    } else if (-1..=30).contains(&shift) {
        low_shift(acc, m, shift).unwrap_or_else(|| requantize(acc, m, shift))
    } else {
        requantize(acc, m, shift)
    }
}

/// [`crate::kernels::reference::lm::latent`] with `SMLAD`.
///
/// # Errors
/// As the reference.
pub fn latent(w: &QMatrix, b: &[i32], g: &[i8], out: &mut [i16]) -> Result<()> {
    check_rows(w, b, g, out.len())?;
    let n = g.len();
    if quads_fit(w, n) && out.len() % 4 == 0 {
        // Row quads: as the gates, blocks of rows in one asm call each.
        let p = Natural::new(g);
        let mut acc = [0i32; BLOCK];
        for r0 in (0..out.len()).step_by(BLOCK) {
            let nb = BLOCK.min(out.len() - r0);
            let acc = &mut acc[..nb];
            if let (Some((m, t)), Some(bb), Some(ob)) = (
                high_word_rows(w, r0, nb),
                b.get(r0..r0 + nb),
                out.get_mut(r0..r0 + nb),
            ) {
                // Every row of the high-word form (proven at parse).
                if !p.rows(w.w, n, r0, acc) {
                    return reference::latent(w, b, g, out); // cannot happen
                }
                let rows = acc.iter().zip(m.iter().zip(t));
                for ((o, &b), (&a, (&m, &t))) in ob.iter_mut().zip(bb).zip(rows) {
                    let z = high_word(a, m, (-2 - t) as u32).saturating_add(b);
                    *o = tanh_q12(sat16(z));
                }
                continue;
            }
            if !p.rows(w.w, n, r0, acc) {
                return reference::latent(w, b, g, out); // cannot happen, as in the gates
            }
            for (r, &a) in (r0..).zip(acc.iter()) {
                let z = rq(a, w.mult[r], w.shift[r]).saturating_add(b[r]);
                out[r] = tanh_q12(sat16(z));
            }
        }
        return Ok(());
    }
    if n > MAX_LM_IN || n == 0 || w.layout != WeightLayout::Rows {
        return reference::latent(w, b, g, out);
    }
    rows(w.w, g.len(), &Packed::new(g), |r, acc| {
        let z = rq(acc, w.mult[r], w.shift[r]).saturating_add(b[r]);
        out[r] = tanh_q12(sat16(z));
    });
    Ok(())
}

/// [`crate::kernels::reference::lm::decoder`] with `SMLAD`.
///
/// Inputs of whole chunks of four: the rows' dot products in one asm call
/// per block of [`BLOCK`] rows ([`rows_dot2`], as the gates), the output
/// stage in Rust after it (an odd last row, and other inputs, by pairs).
/// For a word-level vocabulary (10,000 rows of 32) this is where a token's
/// time goes.
///
/// # Errors
/// As the reference.
pub fn decoder(emb: &TiedRows, b: &[i32], lat: &[i8], logits: &mut [i32]) -> Result<()> {
    check_tied(emb, b, lat, logits.len())?;
    let n = lat.len();
    if n > MAX_LM_IN || n == 0 {
        return reference::decoder(emb, b, lat, logits);
    }
    let px = Packed::new(lat);
    let mut done = 0;
    if n % 4 == 0 {
        let mut acc = [0i32; BLOCK];
        let even = logits.len() / 2 * 2;
        while done < even {
            let nb = BLOCK.min(even - done);
            let acc = &mut acc[..nb];
            let w = emb.w.get(done * n..).unwrap_or_default();
            if !rows_dot2(px.chunks(), w, n, acc) {
                break; // cannot happen: the lengths were checked
            }
            match emb.shift {
                // Version 1, as before version 2 (the same loop: a shared
                // block stage here cost these blobs 1.7 % per PTB word).
                Shifts::PerRow(shift) => {
                    let out = logits.iter_mut().zip(b).zip(emb.mult.iter().zip(shift));
                    for (((l, &bias), (&m, &s)), &a) in out.skip(done).zip(acc.iter()) {
                        *l = rq(a, m, s).saturating_add(bias);
                    }
                }
                Shifts::Shared(s) => {
                    let rows = done..done + nb;
                    let (Some(l), Some(m), Some(bias)) = (
                        logits.get_mut(rows.clone()),
                        emb.mult.get(rows.clone()),
                        b.get(rows),
                    ) else {
                        break; // cannot happen: the lengths were checked
                    };
                    shared_stage(acc, m, s, bias, l);
                }
            }
            done += nb;
        }
    }
    let rest = emb.w.get(done * n..).unwrap_or_default();
    rows(rest, n, &px, |r, acc| {
        let v = done + r;
        logits[v] = rq(acc, emb.mult[v], emb.shift.at(v)).saturating_add(b[v]);
    });
    Ok(())
}

/// The decoder's output stage of a block of rows with one shared shift
/// (version 2): `l[i] = rq(acc[i], m[i], s) +sat b[i]`, the shift's form
/// tested once per block, not per row. Of the high-word form (every
/// multiplier is ≥ 0 in a checked model; a negative one takes [`rq`]),
/// each row is one [`high_word`]. (Copying the shift into a block for the
/// per-row loop instead was tried: 6 % more instructions per PTB word,
/// 1,637,790 against this stage's first form's 1,540,135, for 320 bytes of
/// flash less; this form, beside version 1's own loop, gives 1,495,770.)
#[inline(always)]
fn shared_stage(acc: &[i32], m: &[i32], s: i32, b: &[i32], l: &mut [i32]) {
    let out = l.iter_mut().zip(b).zip(m.iter().zip(acc));
    if (MIN_SHIFT..=-2).contains(&s) {
        let h = (-2 - s) as u32;
        for ((l, &bias), (&m, &a)) in out {
            let z = if m >= 0 {
                high_word(a, m, h)
            } else {
                rq(a, m, s)
            };
            *l = z.saturating_add(bias);
        }
    } else {
        for ((l, &bias), (&m, &a)) in out {
            *l = rq(a, m, s).saturating_add(bias);
        }
    }
}
