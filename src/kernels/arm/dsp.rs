//! The only `unsafe` of the crate: Armv7E-M DSP instructions through
//! `core::arch::asm!`, each behind a safe function.
//!
//! Packed pairs: `sxtb16(v)` holds bytes 0 and 2 of `v` sign-extended to
//! two `i16` lanes, `sxtb16_ror8(v)` bytes 1 and 3. Applied to four inputs
//! and to four weights alike, `smlad(x02, w02, smlad(x13, w13, acc))` is
//! `acc + Σ x[i]·w[i]` over the four: both sides are reordered the same way,
//! so int8 weights are read as the exporter wrote them (no layout change).
//!
//! SMLAD adds modulo 2³² (it sets the sticky Q flag on overflow, which
//! nothing here reads), exactly like the `wrapping_add` of the reference
//! kernels, so every order of accumulation gives the same bits.
#![allow(unsafe_code)] // the crate's one exception to #![deny(unsafe_code)]

use core::arch::asm;

/// Two `i16` lanes: bytes 0 and 2 of `v`, sign-extended (`SXTB16`).
#[inline(always)]
pub(super) fn sxtb16(v: u32) -> u32 {
    let r: u32;
    // SAFETY: register-only arithmetic: no memory, stack or flags touched.
    unsafe {
        asm!("sxtb16 {r}, {v}", r = lateout(reg) r, v = in(reg) v,
            options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// Two `i16` lanes: bytes 1 and 3 of `v`, sign-extended (`SXTB16 …, ROR #8`).
#[inline(always)]
pub(super) fn sxtb16_ror8(v: u32) -> u32 {
    let r: u32;
    // SAFETY: register-only arithmetic: no memory, stack or flags touched.
    unsafe {
        asm!("sxtb16 {r}, {v}, ror #8", r = lateout(reg) r, v = in(reg) v,
            options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// Lane-wise `a − b` of two `i16` pairs, modulo 2¹⁶ (`SSUB16`).
#[inline(always)]
pub(super) fn ssub16(a: u32, b: u32) -> u32 {
    let r: u32;
    // SAFETY: register-only arithmetic; SSUB16 writes the GE flags, which
    // are declared clobbered by leaving out `preserves_flags`.
    unsafe {
        asm!("ssub16 {r}, {a}, {b}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
            options(pure, nomem, nostack));
    }
    r
}

/// `acc + a.lo·b.lo + a.hi·b.hi` of two `i16` pairs, modulo 2³² (`SMLAD`).
#[inline(always)]
pub(super) fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let r: i32;
    // SAFETY: register-only arithmetic; SMLAD may set the sticky Q flag,
    // so flags are declared clobbered (no `preserves_flags`).
    unsafe {
        asm!("smlad {r}, {a}, {b}, {c}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
            c = in(reg) acc, options(pure, nomem, nostack));
    }
    r
}

/// The high word of the 64-bit product, `(a · b) >> 32` (`SMMUL`).
#[inline(always)]
pub(super) fn smmul(a: i32, b: i32) -> i32 {
    let r: i32;
    // SAFETY: register-only arithmetic: no memory, stack or flags touched.
    unsafe {
        asm!("smmul {r}, {a}, {b}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
            options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// Four bytes as one little-endian word (one `LDR`; unaligned is fine on v7-M).
#[inline(always)]
pub(super) fn word(b: &[i8; 4]) -> u32 {
    u32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8])
}

/// `s` as whole chunks of four bytes and the last `s.len() % 4` bytes
/// (`<[T]>::as_chunks`, which needs Rust 1.88; the crate's MSRV is 1.85).
#[inline(always)]
pub(super) fn chunks4(s: &[i8]) -> (&[[i8; 4]], &[i8]) {
    let (whole, rest) = s.split_at(s.len() / 4 * 4);
    (bytemuck::cast_slice(whole), rest)
}

/// Both lanes equal to `v` (an `i16` value).
#[inline(always)]
pub(super) fn splat16(v: i32) -> u32 {
    let h = v as u16 as u32;
    h | (h << 16)
}

/// One packed chunk: four consecutive elements `x0..x3` as `[x0|x2, x1|x3]`,
/// the order `sxtb16`/`sxtb16_ror8` give.
#[inline(always)]
pub(super) fn pack4(x: [i32; 4]) -> [u32; 2] {
    let l = |v: i32| v as u16 as u32;
    [l(x[0]) | (l(x[2]) << 16), l(x[1]) | (l(x[3]) << 16)]
}

/// Four bytes minus a zero point, packed: `[x0−zp | x2−zp, x1−zp | x3−zp]`.
#[inline(always)]
pub(super) fn pack_bytes(b: &[i8; 4], zp2: u32) -> [u32; 2] {
    let v = word(b);
    [ssub16(sxtb16(v), zp2), ssub16(sxtb16_ror8(v), zp2)]
}

/// Packs input bytes into column `slot` (0..4) of consecutive chunks:
/// `cols[j][2·slot..2·slot + 2] = pack_bytes(src[j], zp2)`; returns the
/// number of chunks written, `min(src.len(), cols.len())`.
///
/// Per chunk `LDR`, two `SXTB16`, two `SSUB16`, `STRD`, `SUBS`/`BNE`: 8
/// instructions (about 11 for the same loop in Rust, with its bounds checks).
#[inline(always)]
pub(super) fn pack_run(src: &[[i8; 4]], cols: &mut [[u32; 8]], slot: usize, zp2: u32) -> usize {
    let n = src.len().min(cols.len());
    if n == 0 {
        return 0;
    }
    let dst = cols.as_mut_ptr().cast::<u32>().wrapping_add(2 * (slot & 3));
    // SAFETY: `n` chunks: reads `n · 4` bytes of `src` (LDR, unaligned
    // allowed) and writes two words at byte offset `8 · (slot & 3)` of each
    // of `cols[0..n]` (32 bytes each, word-aligned as STRD needs), all
    // within the slices since `n` is the smaller length and the offset plus
    // 8 is at most 32. Flags are clobbered (SSUB16 sets GE, SUBS the rest).
    unsafe {
        asm!(
            "2:",
            "ldr {v}, [{s}], #4",
            "sxtb16 {a}, {v}",
            "sxtb16 {b}, {v}, ror #8",
            "ssub16 {a}, {a}, {z}",
            "ssub16 {b}, {b}, {z}",
            "strd {a}, {b}, [{d}], #32",
            "subs {n}, {n}, #1",
            "bne 2b",
            n = inout(reg) n => _,
            s = inout(reg) src.as_ptr() => _,
            d = inout(reg) dst => _,
            z = in(reg) zp2,
            v = out(reg) _,
            a = out(reg) _,
            b = out(reg) _,
            options(nostack),
        );
    }
    n
}

/// `acc[p] += Σ_j x_p[j] · w[j]` for four pixels `p` sharing one weight row.
///
/// `cols[j]` holds chunk `j` of the four pixels, `[x02, x13]` per pixel
/// (see [`pack4`]); `w[j]` four int8 weights. Runs over
/// `min(cols.len(), w.len())` chunks. Inner loop, two chunks per pass:
/// per chunk one `LDR` + two `SXTB16` for the weights, four `LDRD` for
/// the pixels, eight `SMLAD`; `SUBS`/`BNE` per pass: 32 instructions for
/// 32 multiply-accumulates.
#[inline(always)]
pub(super) fn dot_4px(cols: &[[u32; 8]], w: &[[i8; 4]], acc: [i32; 4]) -> [i32; 4] {
    let n = cols.len().min(w.len());
    let [mut a0, mut a1, mut a2, mut a3] = acc;
    if n == 0 {
        return acc;
    }
    // SAFETY: the loop runs `n` chunks and reads `n · 32` bytes from
    // `cols` (word-aligned, as LDRD needs) and `n · 4` bytes from `w`
    // (LDR accepts unaligned addresses on Armv7-M), both within the slices
    // since `n` is the smaller length. It writes only the declared
    // registers; `readonly` because it stores nothing, and flags are
    // clobbered (no `preserves_flags`).
    unsafe {
        asm!(
            "tst {n}, #1",
            "beq 2f",
            "ldr {u0}, [{w}], #4",
            "sxtb16 {u1}, {u0}, ror #8",
            "sxtb16 {u0}, {u0}",
            "ldrd {x0}, {x1}, [{c}], #8",
            "smlad {a0}, {x0}, {u0}, {a0}",
            "smlad {a0}, {x1}, {u1}, {a0}",
            "ldrd {x0}, {x1}, [{c}], #8",
            "smlad {a1}, {x0}, {u0}, {a1}",
            "smlad {a1}, {x1}, {u1}, {a1}",
            "ldrd {x0}, {x1}, [{c}], #8",
            "smlad {a2}, {x0}, {u0}, {a2}",
            "smlad {a2}, {x1}, {u1}, {a2}",
            "ldrd {x0}, {x1}, [{c}], #8",
            "smlad {a3}, {x0}, {u0}, {a3}",
            "smlad {a3}, {x1}, {u1}, {a3}",
            "2:",
            "lsrs {n}, {n}, #1",
            "beq 3f",
            "4:",
            "ldr {u0}, [{w}], #4",
            "sxtb16 {u1}, {u0}, ror #8",
            "sxtb16 {u0}, {u0}",
            "ldrd {x0}, {x1}, [{c}], #8",
            "smlad {a0}, {x0}, {u0}, {a0}",
            "smlad {a0}, {x1}, {u1}, {a0}",
            "ldrd {x0}, {x1}, [{c}], #8",
            "smlad {a1}, {x0}, {u0}, {a1}",
            "smlad {a1}, {x1}, {u1}, {a1}",
            "ldrd {x0}, {x1}, [{c}], #8",
            "smlad {a2}, {x0}, {u0}, {a2}",
            "smlad {a2}, {x1}, {u1}, {a2}",
            "ldrd {x0}, {x1}, [{c}], #8",
            "smlad {a3}, {x0}, {u0}, {a3}",
            "smlad {a3}, {x1}, {u1}, {a3}",
            "ldr {u0}, [{w}], #4",
            "sxtb16 {u1}, {u0}, ror #8",
            "sxtb16 {u0}, {u0}",
            "ldrd {x0}, {x1}, [{c}], #8",
            "smlad {a0}, {x0}, {u0}, {a0}",
            "smlad {a0}, {x1}, {u1}, {a0}",
            "ldrd {x0}, {x1}, [{c}], #8",
            "smlad {a1}, {x0}, {u0}, {a1}",
            "smlad {a1}, {x1}, {u1}, {a1}",
            "ldrd {x0}, {x1}, [{c}], #8",
            "smlad {a2}, {x0}, {u0}, {a2}",
            "smlad {a2}, {x1}, {u1}, {a2}",
            "ldrd {x0}, {x1}, [{c}], #8",
            "smlad {a3}, {x0}, {u0}, {a3}",
            "smlad {a3}, {x1}, {u1}, {a3}",
            "subs {n}, {n}, #1",
            "bne 4b",
            "3:",
            n = inout(reg) n => _,
            w = inout(reg) w.as_ptr() => _,
            c = inout(reg) cols.as_ptr() => _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            u0 = out(reg) _,
            u1 = out(reg) _,
            x0 = out(reg) _,
            x1 = out(reg) _,
            options(nostack, readonly),
        );
    }
    [a0, a1, a2, a3]
}

/// `[Σ_j x[j]·r0[j], Σ_j x[j]·r1[j]]` for two weight rows sharing one input.
///
/// `x[j]` is chunk `j` of the input packed as `[x02, x13]` ([`pack4`]),
/// `r0[j]`/`r1[j]` four int8 weights of each row. Runs over the shortest
/// of the three. Inner loop, two chunks per pass: per chunk one `LDRD`
/// for the input and, per row, `LDR` + two `SXTB16` + two `SMLAD`;
/// `SUBS`/`BNE` per pass: 24 instructions for 16 multiply-accumulates.
#[inline(always)]
pub(super) fn dot_2rows(x: &[[u32; 2]], r0: &[[i8; 4]], r1: &[[i8; 4]], acc: [i32; 2]) -> [i32; 2] {
    let n = x.len().min(r0.len()).min(r1.len());
    let [mut a0, mut a1] = acc;
    if n == 0 {
        return acc;
    }
    // SAFETY: `n` chunks: reads `n · 8` bytes from `x` (word-aligned, for
    // LDRD) and `n · 4` bytes from each row (LDR, unaligned allowed), all
    // within the slices since `n` is the smallest length. Only the
    // declared registers are written; nothing is stored; flags clobbered.
    unsafe {
        asm!(
            "tst {n}, #1",
            "beq 2f",
            "ldrd {x0}, {x1}, [{x}], #8",
            "ldr {u0}, [{w0}], #4",
            "sxtb16 {u1}, {u0}, ror #8",
            "sxtb16 {u0}, {u0}",
            "smlad {a0}, {x0}, {u0}, {a0}",
            "smlad {a0}, {x1}, {u1}, {a0}",
            "ldr {u0}, [{w1}], #4",
            "sxtb16 {u1}, {u0}, ror #8",
            "sxtb16 {u0}, {u0}",
            "smlad {a1}, {x0}, {u0}, {a1}",
            "smlad {a1}, {x1}, {u1}, {a1}",
            "2:",
            "lsrs {n}, {n}, #1",
            "beq 3f",
            "4:",
            "ldrd {x0}, {x1}, [{x}], #8",
            "ldr {u0}, [{w0}], #4",
            "sxtb16 {u1}, {u0}, ror #8",
            "sxtb16 {u0}, {u0}",
            "smlad {a0}, {x0}, {u0}, {a0}",
            "smlad {a0}, {x1}, {u1}, {a0}",
            "ldr {u0}, [{w1}], #4",
            "sxtb16 {u1}, {u0}, ror #8",
            "sxtb16 {u0}, {u0}",
            "smlad {a1}, {x0}, {u0}, {a1}",
            "smlad {a1}, {x1}, {u1}, {a1}",
            "ldrd {x0}, {x1}, [{x}], #8",
            "ldr {u0}, [{w0}], #4",
            "sxtb16 {u1}, {u0}, ror #8",
            "sxtb16 {u0}, {u0}",
            "smlad {a0}, {x0}, {u0}, {a0}",
            "smlad {a0}, {x1}, {u1}, {a0}",
            "ldr {u0}, [{w1}], #4",
            "sxtb16 {u1}, {u0}, ror #8",
            "sxtb16 {u0}, {u0}",
            "smlad {a1}, {x0}, {u0}, {a1}",
            "smlad {a1}, {x1}, {u1}, {a1}",
            "subs {n}, {n}, #1",
            "bne 4b",
            "3:",
            n = inout(reg) n => _,
            x = inout(reg) x.as_ptr() => _,
            w0 = inout(reg) r0.as_ptr() => _,
            w1 = inout(reg) r1.as_ptr() => _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            u0 = out(reg) _,
            u1 = out(reg) _,
            x0 = out(reg) _,
            x1 = out(reg) _,
            options(nostack, readonly),
        );
    }
    [a0, a1]
}
