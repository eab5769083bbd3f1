//! An independent, wide-integer statement of the int8 kernels: i128
//! arithmetic, explicit floor division for rounding, no shared code with the
//! core. Property tests and the golden-vector generator compare against it.
#![allow(dead_code, clippy::too_many_arguments)]

/// `round_half_up(acc · m · 2^shift / 2^31)`, saturated to i32.
pub fn requant(acc: i64, m: i32, shift: i32) -> i64 {
    let num = acc as i128 * m as i128;
    let den: i128 = 1i128 << (31 - shift);
    let r = (2 * num + den).div_euclid(2 * den); // floor((num + den/2) / den)
    r.clamp(i32::MIN as i128, i32::MAX as i128) as i64
}

pub fn out8(acc: i64, m: i32, shift: i32, zp: i32, lo: i8, hi: i8) -> i8 {
    let v = (requant(acc, m, shift) + zp as i64).clamp(i32::MIN as i64, i32::MAX as i64);
    v.clamp(lo as i64, hi as i64) as i8
}

pub fn conv(
    (h, w, c): (usize, usize, usize),
    oc: usize,
    k: usize,
    s: usize,
    p: usize,
    x: &[i8],
    wt: &[i8],
    b: &[i32],
    m: &[i32],
    sh: &[i32],
    in_zp: i32,
    out_zp: i32,
    lo: i8,
    hi: i8,
) -> (usize, usize, Vec<i8>) {
    let oh = (h + 2 * p - k) / s + 1;
    let ow = (w + 2 * p - k) / s + 1;
    let mut out = Vec::new();
    for oy in 0..oh {
        for ox in 0..ow {
            for o in 0..oc {
                let mut acc = b[o] as i64;
                for ky in 0..k {
                    for kx in 0..k {
                        let iy = (oy * s + ky) as i64 - p as i64;
                        let ix = (ox * s + kx) as i64 - p as i64;
                        if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                            continue;
                        }
                        for i in 0..c {
                            let xv =
                                x[(iy as usize * w + ix as usize) * c + i] as i64 - in_zp as i64;
                            acc += xv * wt[((o * k + ky) * k + kx) * c + i] as i64;
                        }
                    }
                }
                out.push(out8(acc, m[o], sh[o], out_zp, lo, hi));
            }
        }
    }
    (oh, ow, out)
}

pub fn fc(
    x: &[i8],
    wt: &[i8],
    b: &[i32],
    m: &[i32],
    sh: &[i32],
    in_zp: i32,
    out_zp: i32,
    lo: i8,
    hi: i8,
) -> Vec<i8> {
    (0..b.len())
        .map(|o| {
            let acc: i64 = b[o] as i64
                + x.iter()
                    .enumerate()
                    .map(|(i, &v)| (v as i64 - in_zp as i64) * wt[o * x.len() + i] as i64)
                    .sum::<i64>();
            out8(acc, m[o], sh[o], out_zp, lo, hi)
        })
        .collect()
}

pub fn maxpool((h, w, c): (usize, usize, usize), x: &[i8]) -> Vec<i8> {
    let mut out = Vec::new();
    for oy in 0..h / 2 {
        for ox in 0..w / 2 {
            for ch in 0..c {
                let mut best = i8::MIN;
                for dy in 0..2 {
                    for dx in 0..2 {
                        best = best.max(x[((2 * oy + dy) * w + 2 * ox + dx) * c + ch]);
                    }
                }
                out.push(best);
            }
        }
    }
    out
}

pub fn gap(
    (h, w, c): (usize, usize, usize),
    x: &[i8],
    m: i32,
    sh: i32,
    in_zp: i32,
    out_zp: i32,
    lo: i8,
    hi: i8,
) -> Vec<i8> {
    (0..c)
        .map(|ch| {
            let acc: i64 = (0..h * w)
                .map(|p| x[p * c + ch] as i64 - in_zp as i64)
                .sum();
            out8(acc, m, sh, out_zp, lo, hi)
        })
        .collect()
}

/// Element-wise add: each operand `(q − zp) · 2^20` rescaled, summed
/// (saturating), then the output stage.
pub fn add(a: i8, b: i8, zp: [i32; 3], m: [i32; 3], sh: [i32; 3], lo: i8, hi: i8) -> i8 {
    let ra = requant(((a as i64) - zp[0] as i64) << 20, m[0], sh[0]);
    let rb = requant(((b as i64) - zp[1] as i64) << 20, m[1], sh[1]);
    let sum = (ra + rb).clamp(i32::MIN as i64, i32::MAX as i64);
    out8(sum, m[2], sh[2], zp[2], lo, hi)
}

fn sat32(v: i64) -> i64 {
    v.clamp(i32::MIN as i64, i32::MAX as i64)
}

fn sat16(v: i64) -> i16 {
    v.clamp(i16::MIN as i64, i16::MAX as i64) as i16
}

/// Row `r` of the `[rows][x.len()]` matrix `w` times `x`, exactly.
fn row_dot(w: &[i8], x: &[i8], r: usize) -> i64 {
    let n = x.len();
    (0..n).map(|i| w[r * n + i] as i64 * x[i] as i64).sum()
}

/// The exact product wrapped to `i32`, as every kernel accumulates.
fn wrap32(v: i64) -> i64 {
    v as i32 as i64
}

/// LSTM gate pre-activations, Q3.12:
/// `sat16(sat32(sat32(rq(Wx·x) + rq(Wh·h)) + b))` per row.
pub fn lstm_gates(
    wx: (&[i8], &[i32], &[i32]),
    x: &[i8],
    wh: (&[i8], &[i32], &[i32]),
    h: &[i8],
    bias: &[i32],
) -> Vec<i16> {
    (0..bias.len())
        .map(|r| {
            let ax = requant(wrap32(row_dot(wx.0, x, r)), wx.1[r], wx.2[r]);
            let ah = requant(wrap32(row_dot(wh.0, h, r)), wh.1[r], wh.2[r]);
            sat16(sat32(sat32(ax + ah) + bias[r] as i64))
        })
        .collect()
}

/// Pre-activations of the latent projection (before `tanh`), Q3.12:
/// `sat16(sat32(rq(W·g) + b))` per row.
pub fn latent_pre(w: (&[i8], &[i32], &[i32]), b: &[i32], g: &[i8]) -> Vec<i16> {
    (0..b.len())
        .map(|r| {
            sat16(sat32(
                requant(wrap32(row_dot(w.0, g, r)), w.1[r], w.2[r]) + b[r] as i64,
            ))
        })
        .collect()
}

/// Decoder logits, Q16: `sat32(rq(E·lat) + b)` per row.
pub fn decoder(w: (&[i8], &[i32], &[i32]), b: &[i32], lat: &[i8]) -> Vec<i32> {
    (0..b.len())
        .map(|r| sat32(requant(wrap32(row_dot(w.0, lat, r)), w.1[r], w.2[r]) + b[r] as i64) as i32)
        .collect()
}
