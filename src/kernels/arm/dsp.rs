//! The only `unsafe` of the crate: Armv7E-M DSP instructions through
//! `core::arch::asm!`, each behind a safe function.
//!
//! Packed pairs: `sxtb16(v)` holds bytes 0 and 2 of `v` sign-extended to
//! two `i16` lanes, `sxtb16_ror8(v)` bytes 1 and 3. Applied to four inputs
//! and to four weights alike, `SMLAD` of `x02·w02` and then of `x13·w13` gives
//! `acc + Σ x[i]·w[i]` over the four: both sides are reordered the same way,
//! so int8 weights are read as the exporter wrote them (no layout change).
//!
//! SMLAD adds modulo 2³² (it sets the sticky Q flag on overflow, which
//! nothing here reads), exactly like the `wrapping_add` of the reference
//! kernels, so every order of accumulation gives the same bits.
#![allow(unsafe_code)] // the crate's one exception to #![deny(unsafe_code)]

use core::arch::asm;

// The asm text the loops below share, as macros that expand to string
// literals (each `asm!` block keeps its own operands and `// SAFETY:`
// note). Register names are passed in, as `"{a0}"` operands or explicit
// `"r3"` registers.

/// `body` run `{n}` times, the odd one first, then two per pass (one
/// `SUBS`/`BNE` per two); `{n}` is counted down to 0. Labels 2, 3, 4.
#[rustfmt::skip]
macro_rules! two_per_pass {
    ($n:literal, $body:expr) => {
        concat!(
            "tst ", $n, ", #1\n",
            "beq 2f\n",
            $body,
            "2:\n",
            "lsrs ", $n, ", ", $n, ", #1\n",
            "beq 3f\n",
            "4:\n",
            $body,
            $body,
            "subs ", $n, ", ", $n, ", #1\n",
            "bne 4b\n",
            "3:\n",
        )
    };
}

/// `$body` run `$n` times (`$n` a register, consumed): single bodies until
/// `$n` is a multiple of four, then four per pass with one `SUBS`/`BNE`
/// (labels 2–4, 12, 13). The channel loops' dot products use it: per
/// chunk 0.5 instructions of loop against 1 for [`two_per_pass!`], for
/// two more copies of the body.
#[rustfmt::skip]
macro_rules! four_per_pass {
    ($n:literal, $body:expr) => {
        concat!(
            "12:\n",
            "tst ", $n, ", #3\n",
            "beq 13f\n",
            $body,
            "subs ", $n, ", ", $n, ", #1\n",
            "b 12b\n",
            "13:\n",
            "lsrs ", $n, ", ", $n, ", #2\n",
            "beq 3f\n",
            "4:\n",
            $body,
            $body,
            $body,
            $body,
            "subs ", $n, ", ", $n, ", #1\n",
            "bne 4b\n",
            "3:\n",
        )
    };
}

/// One chunk of four window values × four pixels: four weights loaded from
/// `w` and unpacked once (`u0` = bytes 0, 2; `u1` = bytes 1, 3), each
/// pixel's packed pair `[x02, x13]` loaded from `c` (`LDRD`), two `SMLAD`s
/// into its accumulator. 15 instructions, 16 MACs.
#[rustfmt::skip]
macro_rules! chunk_4px {
    ($w:literal, $c:literal, $u0:literal, $u1:literal, $x0:literal, $x1:literal,
     $a0:literal, $a1:literal, $a2:literal, $a3:literal) => {
        concat!(
            "ldr ", $u0, ", [", $w, "], #4\n",
            "sxtb16 ", $u1, ", ", $u0, ", ror #8\n",
            "sxtb16 ", $u0, ", ", $u0, "\n",
            chunk_4px!(@px $c, $u0, $u1, $x0, $x1, $a0),
            chunk_4px!(@px $c, $u0, $u1, $x0, $x1, $a1),
            chunk_4px!(@px $c, $u0, $u1, $x0, $x1, $a2),
            chunk_4px!(@px $c, $u0, $u1, $x0, $x1, $a3),
        )
    };
    (@px $c:literal, $u0:literal, $u1:literal, $x0:literal, $x1:literal, $a:literal) => {
        concat!(
            "ldrd ", $x0, ", ", $x1, ", [", $c, "], #8\n",
            "smlad ", $a, ", ", $x0, ", ", $u0, ", ", $a, "\n",
            "smlad ", $a, ", ", $x1, ", ", $u1, ", ", $a, "\n",
        )
    };
}

/// [`chunk_4px!`] with the pixels loaded two at a time: the chunk's
/// weights unpacked once, then per pair of pixels one `LDM` of their four
/// packed words into `r6`, `r7`, `r11`, `r12` (ascending, as `LDM` fills
/// them from ascending addresses) and four `SMLAD`s. 13 instructions, 16
/// MACs (against 15 with one `LDRD` per pixel). `r6` and `r7` are LLVM's
/// base and frame pointers: the callers save and restore them around the
/// loop, since `asm!` cannot name them as operands.
#[rustfmt::skip]
macro_rules! chunk_4px_ldm {
    ($w:literal, $c:literal, $u0:literal, $u1:literal,
     $a0:literal, $a1:literal, $a2:literal, $a3:literal) => {
        concat!(
            "ldr ", $u0, ", [", $w, "], #4\n",
            "sxtb16 ", $u1, ", ", $u0, ", ror #8\n",
            "sxtb16 ", $u0, ", ", $u0, "\n",
            chunk_4px_ldm!(@pair $c, $u0, $u1, $a0, $a1),
            chunk_4px_ldm!(@pair $c, $u0, $u1, $a2, $a3),
        )
    };
    (@pair $c:literal, $u0:literal, $u1:literal, $a:literal, $b:literal) => {
        concat!(
            "ldm ", $c, "!, {{r6, r7, r11, r12}}\n",
            "smlad ", $a, ", r6, ", $u0, ", ", $a, "\n",
            "smlad ", $a, ", r7, ", $u1, ", ", $a, "\n",
            "smlad ", $b, ", r11, ", $u0, ", ", $b, "\n",
            "smlad ", $b, ", r12, ", $u1, ", ", $b, "\n",
        )
    };
}

/// [`chunk_4px_ldm!`] with the chunk's weights already unpacked (the
/// `ConvLayout::Pairs` layout of the blob: `[w0 | w2 << 16, w1 | w3 <<
/// 16]`): one `LDRD` instead of `LDR` and two `SXTB16`s. 11 instructions,
/// 16 MACs.
#[rustfmt::skip]
macro_rules! chunk_4px_pairs {
    ($w:literal, $c:literal, $u0:literal, $u1:literal,
     $a0:literal, $a1:literal, $a2:literal, $a3:literal) => {
        concat!(
            "ldrd ", $u0, ", ", $u1, ", [", $w, "], #8\n",
            chunk_4px_ldm!(@pair $c, $u0, $u1, $a0, $a1),
            chunk_4px_ldm!(@pair $c, $u0, $u1, $a2, $a3),
        )
    };
}

/// One chunk of four inputs × two weight rows: the packed input pair from
/// `x` (`LDRD`), each row's four weights from `w0`/`w1` unpacked, two
/// `SMLAD`s per row. 11 instructions, 8 MACs.
#[rustfmt::skip]
macro_rules! chunk_2rows {
    ($x:literal, $w0:literal, $w1:literal, $u0:literal, $u1:literal, $x0:literal,
     $x1:literal, $a0:literal, $a1:literal) => {
        concat!(
            "ldrd ", $x0, ", ", $x1, ", [", $x, "], #8\n",
            chunk_2rows!(@row $w0, $u0, $u1, $x0, $x1, $a0),
            chunk_2rows!(@row $w1, $u0, $u1, $x0, $x1, $a1),
        )
    };
    (@row $w:literal, $u0:literal, $u1:literal, $x0:literal, $x1:literal, $a:literal) => {
        concat!(
            "ldr ", $u0, ", [", $w, "], #4\n",
            "sxtb16 ", $u1, ", ", $u0, ", ror #8\n",
            "sxtb16 ", $u0, ", ", $u0, "\n",
            "smlad ", $a, ", ", $x0, ", ", $u0, ", ", $a, "\n",
            "smlad ", $a, ", ", $x1, ", ", $u1, ", ", $a, "\n",
        )
    };
}

/// The high-word output stage of `a` in place:
/// `clamp(((smmul(a, m) >> h) + 1) >> 1) + zp, lo, hi)` ([`high_word`]
/// with the zero point and the clamp). 10 instructions.
macro_rules! stage_high {
    ($a:literal, $m:literal, $h:literal, $zp:literal, $lo:literal, $hi:literal) => {
        concat!(high_zp!($a, $m, $h, $zp), clamp!($a, $lo, $hi))
    };
}

/// `a = ((smmul(a, m) >> h) + 1) >> 1) + zp`: [`high_word`] plus the zero
/// point, unclamped. 4 instructions.
#[rustfmt::skip]
macro_rules! high_zp {
    ($a:literal, $m:literal, $h:literal, $zp:literal) => {
        concat!(
            "smmul ", $a, ", ", $a, ", ", $m, "\n",
            "asr ", $a, ", ", $a, ", ", $h, "\n",
            "adds ", $a, ", ", $a, ", #1\n",
            "add ", $a, ", ", $zp, ", ", $a, ", asr #1\n",
        )
    };
}

/// `a = ssat8((smmul(a, m) + c) >> h >> 1)` with `c = (2 · zp + 1) << h`:
/// [`high_zp`] and the `[−128, 127]` clamp in 3 instructions (`SMMLA`
/// adds `c` to the high word of the product). The same value as
/// `((smmul(a, m) >> h) + 1) >> 1) + zp` when `|c| < 2^30` (then
/// `smmul + c` cannot wrap, `|smmul| ≤ 2^30`): `c` is `2^h` (the
/// rounding term) plus `zp · 2^(h+1)`, a multiple of the divisor, and
/// `⌊⌊x / 2^h⌋ / 2⌋ = ⌊x / 2^(h+1)⌋`. The caller checks the bound.
#[rustfmt::skip]
macro_rules! high_zp_fused {
    ($a:literal, $m:literal, $h:literal, $c:literal) => {
        concat!(
            "smmla ", $a, ", ", $a, ", ", $m, ", ", $c, "\n",
            "asr ", $a, ", ", $a, ", ", $h, "\n",
            "ssat ", $a, ", #8, ", $a, ", asr #1\n",
        )
    };
}

/// The stage for shift −1 (`t = 32`): `clamp(smmulr(a, m) + zp, lo, hi)`,
/// `SMMULR` being `(a · m + 2^31) >> 32`. 8 instructions.
#[rustfmt::skip]
macro_rules! stage_rounded {
    ($a:literal, $m:literal, $zp:literal, $lo:literal, $hi:literal) => {
        concat!(
            "smmulr ",
            $a,
            ", ",
            $a,
            ", ",
            $m,
            "\n",
            "add ",
            $a,
            ", ",
            $zp,
            ", ",
            $a,
            "\n",
            clamp!($a, $lo, $hi),
        )
    };
}

/// The four-pixel channel loops' end of channel (registers as
/// [`channels_4px`] uses them): the channel's `m` and `h` from its table
/// entry at `[table pointer, $entry]`, `zp`, `lo`, `hi` from the loop
/// state, the output stage of the four accumulators `r3`, `r4`, `r5`, `r8`
/// (`h = −1`, shift −1: the rounded high word, `SMMULR`), and the four
/// stores at `dst + i · stride`; `dst` moves on by one. Labels 10, 11, 14.
#[rustfmt::skip]
macro_rules! stage4_store {
    ($entry:literal) => {
        concat!(
            "ldr r9, [lr, #8]\n",
            "ldrd r9, r10, [r9, #", $entry, "]\n",
            // The whole int8 range (`lo = −128`, `hi = 127`: ReLU outputs
            // whose zero point is −128, and no-activation layers; `h`
            // carries [`FULL_RANGE`]): the zero point and the rounding
            // term enter as one addend of `SMMLA`, and the clamp is one
            // `SSAT` (see [`high_zp_fused`]). `ASR` and `LSL` by `h` read
            // its low byte, the shift.
            "cmp r10, #256\n",
            "bge 14f\n",
            "ldr r0, [lr, #12]\n",
            "ldrd r1, r11, [lr, #16]\n",
            "cmp r10, #0\n",
            "blt 10f\n",
            stage_high!("r3", "r9", "r10", "r0", "r1", "r11"),
            stage_high!("r4", "r9", "r10", "r0", "r1", "r11"),
            stage_high!("r5", "r9", "r10", "r0", "r1", "r11"),
            stage_high!("r8", "r9", "r10", "r0", "r1", "r11"),
            "b 11f\n",
            "14:\n",
            "ldr r0, [lr, #48]\n",
            "lsl r0, r0, r10\n",
            high_zp_fused!("r3", "r9", "r10", "r0"),
            high_zp_fused!("r4", "r9", "r10", "r0"),
            high_zp_fused!("r5", "r9", "r10", "r0"),
            high_zp_fused!("r8", "r9", "r10", "r0"),
            "b 11f\n",
            "10:\n",
            stage_rounded!("r3", "r9", "r0", "r1", "r11"),
            stage_rounded!("r4", "r9", "r0", "r1", "r11"),
            stage_rounded!("r5", "r9", "r0", "r1", "r11"),
            stage_rounded!("r8", "r9", "r0", "r1", "r11"),
            "11:\n",
            "ldrd r9, r10, [lr, #24]\n",
            "strb r3, [r9]\n",
            "strb r4, [r9, r10]\n",
            "add r12, r9, r10, lsl #1\n",
            "strb r5, [r12]\n",
            "strb r8, [r12, r10]\n",
            "adds r9, r9, #1\n",
            "str r9, [lr, #24]\n",
        )
    };
}

/// `a = min(max(a, lo), hi)`, signed. 6 instructions.
#[rustfmt::skip]
macro_rules! clamp {
    ($a:literal, $lo:literal, $hi:literal) => {
        concat!(
            clamp_lo!($a, $lo),
            "cmp ", $a, ", ", $hi, "\n",
            "it gt\n",
            "movgt ", $a, ", ", $hi, "\n",
        )
    };
}

/// `a = max(a, lo)`, signed. 3 instructions.
#[rustfmt::skip]
macro_rules! clamp_lo {
    ($a:literal, $lo:literal) => {
        concat!("cmp ", $a, ", ", $lo, "\n", "it lt\n", "movlt ", $a, ", ", $lo, "\n")
    };
}

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

/// The rounded high word of the 64-bit product, `(a · b + 2^31) >> 32`
/// (`SMMULR`).
#[inline(always)]
pub(super) fn smmulr(a: i32, b: i32) -> i32 {
    let r: i32;
    // SAFETY: register-only arithmetic: no memory, stack or flags touched.
    unsafe {
        asm!("smmulr {r}, {a}, {b}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
            options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// The requantization of a shift `−1 ≤ shift ≤ 30` (a right shift `t = 31
/// − shift` from 1 to 32), `(acc · m + 2^(t−1)) >> t`, as
/// `smmulr(acc · 2^k, m)` with `k = 32 − t = shift + 1`: multiplying the
/// numerator and the divisor `2^t` by `2^k` leaves the quotient's floor
/// unchanged, for any sign of `m`, and `|acc · 2^k · m| < 2^62` keeps the
/// value inside `i32` (the reference's clamp never acts). Exact only while
/// `acc · 2^k` fits an `i32`: `None` otherwise, for the general path.
/// Four instructions and a branch instead of about 50 (the word-level
/// decoder's rows: their shift is about 1).
#[inline(always)]
pub(super) fn low_shift(acc: i32, m: i32, shift: i32) -> Option<i32> {
    let k = (shift + 1) as u32; // 0..=31 by the caller's range
    let a = acc << k;
    (a >> k == acc).then(|| smmulr(a, m))
}

/// `(acc · m + 2^(h+32)) >> (h + 33)`, the requantization of a right shift
/// `t = h + 33 ≥ 33` for `m ≥ 0`, from the high word of the product:
/// `((smmul(acc, m) >> h) + 1) >> 1` is the same value (the argument is
/// [`crate::quant::OutputStage`]'s), in four instructions. The one Rust
/// form of it: the conv, fully connected and LM stages call this; the asm
/// loops spell it out.
#[inline(always)]
pub(super) fn high_word(acc: i32, m: i32, h: u32) -> i32 {
    ((smmul(acc, m) >> h) + 1) >> 1
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

/// [`pack_run`] without the zero point: `cols[j][2·slot..2·slot + 2] =
/// [x0|x2, x1|x3]` of `src[j]`, sign-extended (`LDR`, two `SXTB16`, `STRD`,
/// and per two chunks `SUBS`/`BNE`: 4.5 instructions per chunk against 8).
/// For callers that fold `−zp · Σ w` into the bias instead.
#[inline(always)]
pub(super) fn pack_run_raw(src: &[[i8; 4]], cols: &mut [[u32; 8]], slot: usize) -> usize {
    let n = src.len().min(cols.len());
    if n == 0 {
        return 0;
    }
    let dst = cols.as_mut_ptr().cast::<u32>().wrapping_add(2 * (slot & 3));
    // SAFETY: as [`pack_run`]: `n` chunks, reads `n · 4` bytes of `src`
    // (LDR, unaligned allowed), writes two words at byte offset
    // `8 · (slot & 3)` of each of `cols[0..n]`, inside both slices. Flags
    // are clobbered (SUBS, LSRS, TST).
    unsafe {
        asm!(
            two_per_pass!(
                "{n}",
                concat!(
                    "ldr {v}, [{s}], #4\n",
                    "sxtb16 {a}, {v}\n",
                    "sxtb16 {b}, {v}, ror #8\n",
                    "strd {a}, {b}, [{d}], #32\n",
                )
            ),
            n = inout(reg) n => _,
            s = inout(reg) src.as_ptr() => _,
            d = inout(reg) dst => _,
            v = out(reg) _,
            a = out(reg) _,
            b = out(reg) _,
            options(nostack),
        );
    }
    n
}

/// Around a chunk body, the loop over `pixels` windows of `rows` runs of
/// `k` chunks each: the source `s` moves on by `skip` bytes and the
/// destination `d` by `gap` after each run, `s` and `d` by the window's
/// `sadj` and `dadj` after each window (labels 2–6; `{st}` points at a
/// [`PackRows`]).
#[rustfmt::skip]
macro_rules! rows_of {
    ($body:expr) => {
        concat!(
            "ldr {k}, [{st}, #24]\n",
            "6:\n",
            "ldr {r}, [{st}]\n",
            "5:\n",
            "mov {n}, {k}\n",
            two_per_pass!("{n}", $body),
            "ldrd {n}, {k}, [{st}, #16]\n",
            "add {s}, {s}, {n}\n",
            "add {d}, {d}, {k}\n",
            "ldr {k}, [{st}, #24]\n",
            "subs {r}, {r}, #1\n",
            "bne 5b\n",
            "ldrd {r}, {n}, [{st}, #4]\n",
            "add {s}, {s}, {r}\n",
            "add {d}, {d}, {n}\n",
            "ldr {r}, [{st}, #12]\n",
            "subs {r}, {r}, #1\n",
            "str {r}, [{st}, #12]\n",
            "bne 6b\n",
        )
    };
}

/// The state [`pack_rows`]'s loop keeps in memory (offsets used by the asm).
#[repr(C)]
#[allow(dead_code)] // read by the asm only
struct PackRows {
    rows: usize, // 0
    sadj: usize, // 4: from the end of a window's last run to the next window
    dadj: usize, // 8: from a window's last chunk to the next column's first
    left: usize, // 12: windows still to pack
    skip: usize, // 16: from the end of a run to the next run's start
    gap: usize,  // 20: bytes of `cols` skipped between runs
    k: usize,    // 24: chunks per run
}

/// Windows (or their parts inside the input) packed in one call: window
/// `i < pixels` is `rows` runs of `k` chunks, run `y` starting at byte
/// `at + i · step + y · stride` of `src`, packed into column `slot + i` of
/// `cols` from chunk `y · (k + gap)` on, as [`pack_run`] with `zp2`
/// (`Some`) or [`pack_run_raw`] (`None`) packs each run (`gap` chunks
/// between runs are left as they are: a border window's padding); returns
/// the chunks spanned per window, `rows · (k + gap) − gap`. Per chunk 6 (4
/// raw) instructions plus `SUBS`/`BNE` per two, 11 per run and 8 per
/// window. One [`pack_run`] call per run from Rust spent more on its
/// bookkeeping (bounds, padding, slices) than on packing: replacing it cut
/// DiracNet's 12,265,280 instructions to 11,892,640 (docs/firmware.md).
///
/// Returns 0, doing nothing, unless `pixels`, `rows`, `k` ≥ 1 and
/// everything fits: `slot + pixels ≤ 4`, `at + (pixels − 1) · step +
/// (rows − 1) · stride + 4k ≤ src.len()`, `4k ≤ stride`, `rows · (k + gap)
/// − gap ≤ cols.len()`, `gap ≤ cols.len()`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn pack_rows(
    src: &[i8],
    (at, step, pixels): (usize, usize, usize),
    stride: usize,
    (rows, k, gap): (usize, usize, usize),
    cols: &mut [[u32; 8]],
    slot: usize,
    zp2: Option<u32>,
) -> usize {
    let fits = rows >= 1
        && k >= 1
        && pixels >= 1
        && slot + pixels <= 4
        && 4 * k <= stride
        && gap <= cols.len()
        && k.checked_add(gap)
            .and_then(|kg| rows.checked_mul(kg))
            .is_some_and(|n| n - gap <= cols.len())
        && (rows - 1)
            .checked_mul(stride)
            .and_then(|v| v.checked_add(at))
            .and_then(|v| v.checked_add(4 * k))
            .and_then(|v| v.checked_add((pixels - 1).checked_mul(step)?))
            .is_some_and(|end| end <= src.len());
    if !fits {
        return 0;
    }
    let s = src.as_ptr().wrapping_add(at);
    let d = cols.as_mut_ptr().cast::<u32>().wrapping_add(2 * slot);
    // Wrapping: `rows · stride` and the window's chunks may exceed `step`, 8.
    let mut st = PackRows {
        rows,
        sadj: step.wrapping_sub(rows.wrapping_mul(stride)),
        dadj: 8usize.wrapping_sub(rows * (k + gap) * 32),
        left: pixels,
        skip: stride - 4 * k,
        gap: gap * 32,
        k,
    };
    // SAFETY: `pixels` windows of `rows` runs of `k` chunks: run `y` of
    // window `i` reads the `4k` bytes of `src` from `at + i · step + y ·
    // stride` (LDR, unaligned allowed; after its last run `s` is at `at +
    // i · step + rows · stride`, and `sadj` takes it to the next window's
    // start), inside `src` (checked: the last run of the last window ends at
    // `at + (pixels − 1) · step + (rows − 1) · stride + 4k`). Run `y` of
    // window `i` writes two words at byte offset `8 · (slot + i)` (< 32,
    // checked) of each of `cols[y · (k + gap)..][..k]` (word-aligned, as
    // STRD needs; `d` skips `gap` chunks after each run, and `dadj` takes it
    // from past the last run back to the next column), inside `cols`
    // (checked: the last chunk written is `rows · (k + gap) − gap − 1`). It reads and writes `st` (a live local, `repr(C)`) through
    // `st`. Only declared registers are written; the stack is not touched;
    // flags are clobbered (SSUB16, SUBS, LSRS, TST).
    unsafe {
        match zp2 {
            Some(z) => asm!(
                rows_of!(concat!(
                    "ldr {v}, [{s}], #4\n",
                    "sxtb16 {a}, {v}\n",
                    "sxtb16 {b}, {v}, ror #8\n",
                    "ssub16 {a}, {a}, {z}\n",
                    "ssub16 {b}, {b}, {z}\n",
                    "strd {a}, {b}, [{d}], #32\n",
                )),
                st = in(reg) core::ptr::addr_of_mut!(st),
                n = out(reg) _,
                k = out(reg) _,
                r = out(reg) _,
                s = inout(reg) s => _,
                d = inout(reg) d => _,
                z = in(reg) z,
                v = out(reg) _,
                a = out(reg) _,
                b = out(reg) _,
                options(nostack),
            ),
            None => asm!(
                rows_of!(concat!(
                    "ldr {v}, [{s}], #4\n",
                    "sxtb16 {a}, {v}\n",
                    "sxtb16 {b}, {v}, ror #8\n",
                    "strd {a}, {b}, [{d}], #32\n",
                )),
                st = in(reg) core::ptr::addr_of_mut!(st),
                n = out(reg) _,
                k = out(reg) _,
                r = out(reg) _,
                s = inout(reg) s => _,
                d = inout(reg) d => _,
                v = out(reg) _,
                a = out(reg) _,
                b = out(reg) _,
                options(nostack),
            ),
        }
    }
    rows * (k + gap) - gap
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
            two_per_pass!(
                "{n}",
                chunk_4px!("{w}", "{c}", "{u0}", "{u1}", "{x0}", "{x1}", "{a0}", "{a1}", "{a2}", "{a3}")
            ),
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
            two_per_pass!(
                "{n}",
                chunk_2rows!("{x}", "{w0}", "{w1}", "{u0}", "{u1}", "{x0}", "{x1}", "{a0}", "{a1}")
            ),
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

/// The state [`rows_dot2`]'s loop keeps in memory (offsets used by the asm).
#[repr(C)]
#[allow(dead_code)] // read by the asm only
struct RowsDot {
    x: *const [u32; 2], // 0: the packed input
    chunks: usize,      // 4: chunks per row
    n: usize,           // 8: bytes per row
    pairs: usize,       // 12: pairs of rows still to run
}

/// `out[r] = Σ_j x[j] · w[r · n + 4j ..]` for every row `r <
/// out.len()` of the `[rows][n]` int8 matrix `w`: the whole matrix in one
/// asm call, two rows per pass ([`chunk_2rows!`], 1.375 instructions per
/// MAC plus `SUBS`/`BNE` per two chunks), 12 instructions per pair of rows
/// around it. Against [`dot_2rows`] called per pair from Rust (slices,
/// per-row checks, tails) it took the char LM from 884,369 to 856,942
/// instructions per character (docs/firmware.md).
///
/// Returns false, doing nothing, unless `n = 4 · x.len() ≥ 4`,
/// `out.len()` is even and at least 2, and `out.len() · n ≤ w.len()`.
#[inline(always)]
pub(super) fn rows_dot2(x: &[[u32; 2]], w: &[i8], n: usize, out: &mut [i32]) -> bool {
    let fits = n >= 4
        && x.len().checked_mul(4) == Some(n)
        && out.len() >= 2
        && out.len() % 2 == 0
        && out.len().checked_mul(n).is_some_and(|v| v <= w.len());
    if !fits {
        return false;
    }
    let mut st = RowsDot {
        x: x.as_ptr(),
        chunks: x.len(),
        n,
        pairs: out.len() / 2,
    };
    // SAFETY: `out.len() / 2 ≥ 1` pairs: pair `p` reads the `8 · x.len()`
    // bytes of `x` (word-aligned, LDRD) and rows `2p` and `2p + 1` of `w`
    // (`n = 4 · x.len()` bytes each from `2p · n` and `(2p + 1) · n`; LDR,
    // unaligned allowed; after a pair each row pointer has moved on by `n`
    // and skips the other row's `n`), inside `w` since `out.len() · n ≤
    // w.len()` (checked); it writes `out[2p]`, `out[2p + 1]` (STRD,
    // word-aligned `i32`s), inside `out`. It reads and writes `st` (a live
    // local, `repr(C)`) through `lr`. Every register written is declared;
    // the stack is not touched; flags are clobbered.
    unsafe {
        asm!(
            "1:",
            "ldrd r1, r0, [lr]",
            "movs r5, #0",
            "movs r8, #0",
            two_per_pass!(
                "r0",
                chunk_2rows!("r1", "r2", "r3", "r9", "r10", "r11", "r12", "r5", "r8")
            ),
            "strd r5, r8, [r4], #8",
            "ldr r0, [lr, #8]",
            "add r2, r2, r0",
            "add r3, r3, r0",
            "ldr r0, [lr, #12]",
            "subs r0, r0, #1",
            "str r0, [lr, #12]",
            "bne 1b",
            inout("lr") core::ptr::addr_of_mut!(st) => _,
            inout("r2") w.as_ptr() => _,
            inout("r3") w.as_ptr().wrapping_add(n) => _,
            inout("r4") out.as_mut_ptr() => _,
            out("r0") _,
            out("r1") _,
            out("r5") _,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            options(nostack),
        );
    }
    true
}

/// One chunk (four columns) of a row-quads group: its 16 bytes by one
/// `LDM` into `r5`, `r6` (row pair 0) and `r7`, `r8` (pair 1), against the
/// chunk's inputs `$x0 = x0 | x1`, `$x1 = x2 | x3` (natural order, one
/// `LDRD`): per pair, `SMLAD` of the raw words into `$a` (`256 · dot₁ +
/// dot₀ + 128 · Σx`) and of the words masked to their low bytes into `$b`
/// (`dot₀ + 128 · Σx`). 14 instructions per 16 products (15 with an
/// `LDRD` per pair). `r6` and `r7` are LLVM's base and frame pointers,
/// which `asm!` cannot name: the caller saves and restores them.
#[rustfmt::skip]
macro_rules! chunk_quads {
    ($x:literal, $w:literal, $x0:literal, $x1:literal,
     $b0:literal, $a0:literal, $b1:literal, $a1:literal) => {
        concat!(
            "ldrd ", $x0, ", ", $x1, ", [", $x, "], #8\n",
            "ldm ", $w, "!, {{r5, r6, r7, r8}}\n",
            chunk_quads!(@pair $x0, $x1, "r5", "r6", $b0, $a0),
            chunk_quads!(@pair $x0, $x1, "r7", "r8", $b1, $a1),
        )
    };
    (@pair $x0:literal, $x1:literal, $u0:literal, $u1:literal, $b:literal,
     $a:literal) => {
        concat!(
            "smlad ", $a, ", ", $u0, ", ", $x0, ", ", $a, "\n",
            "and ", $u0, ", ", $u0, ", #0x00ff00ff\n",
            "smlad ", $b, ", ", $u0, ", ", $x0, ", ", $b, "\n",
            "smlad ", $a, ", ", $u1, ", ", $x1, ", ", $a, "\n",
            "and ", $u1, ", ", $u1, ", #0x00ff00ff\n",
            "smlad ", $b, ", ", $u1, ", ", $x1, ", ", $b, "\n",
        )
    };
}

/// The state [`rows_quads`]'s loop keeps in memory (offsets used by the asm).
#[repr(C)]
#[allow(dead_code)] // read by the asm only
struct RowsQuads {
    x: *const [u32; 2], // 0: the packed input, natural order
    chunks: usize,      // 4: chunks (of four columns) per row
    out: *mut i32,      // 8: where the next group's four dot products go
    groups: usize,      // 12: groups of four rows still to run
    saved: [u32; 2],    // 16: r6 and r7 while the loop uses them
    start: i32,         // 24: −128 · Σx, every accumulator's start
}

/// The dot products of every row of a
/// [`crate::format::WeightLayout::RowQuads`] matrix `w` (`[rows][n]`,
/// `rows = out.len()`) with `x`, wrapping: `out[r] = W[r]·x`. `s128` is
/// `128 · Σx` (wrapping).
///
/// Per group of four rows, [`chunk_quads!`] accumulates for each pair `p`
/// (rows `4g + 2p`, `4g + 2p + 1`) `B_p = dot_{2p} + 128 · Σx` and `A_p =
/// 256 · dot_{2p+1} + B_p`; the accumulators start at `−s128`, so `B_p`
/// ends as `dot_{2p}` itself, and `dot_{2p+1} = (A_p − B_p) >> 8`, two
/// instructions per pair at the group's end. Exact while `|256 · dot| <
/// 2^31`, which inputs of fewer than 512 int8 values guarantee (`|dot| ≤
/// 511 · 2^14 < 2^23`; [`crate::format::WeightLayout::DSP_MAX_DEPTH`]).
/// One asm call for the whole matrix, [`chunk_quads!`] two per pass: 30
/// instructions per 32 products, 0.94 per MAC, and 17 per group around it.
///
/// `x` holds the input in natural order, `[x0 | x1, x2 | x3]` per chunk.
/// Returns false, doing nothing, unless `n = 4 · x.len() ≥ 4`,
/// `out.len()` is a multiple of 4 and at least 4, `out.len() · n ≤
/// w.len()`, and `w` is word-aligned (`LDM` needs it; a checked model's
/// arrays are).
#[inline(always)]
pub(super) fn rows_quads(x: &[[u32; 2]], s128: i32, w: &[i8], n: usize, out: &mut [i32]) -> bool {
    let fits = n >= 4
        && w.as_ptr().align_offset(4) == 0
        && x.len().checked_mul(4) == Some(n)
        && out.len() >= 4
        && out.len() % 4 == 0
        && out.len().checked_mul(n).is_some_and(|v| v <= w.len());
    if !fits {
        return false;
    }
    let mut st = RowsQuads {
        x: x.as_ptr(),
        chunks: x.len(),
        out: out.as_mut_ptr(),
        groups: out.len() / 4,
        saved: [0; 2],
        start: s128.wrapping_neg(),
    };
    // SAFETY: `out.len() / 4 ≥ 1` groups: group `g` reads the `8 · x.len()`
    // bytes of `x` (word-aligned `[u32; 2]`s, LDRD) and the `4n` bytes of
    // `w` from `4g · n` (LDM: `w` is word-aligned, checked, and `4n` is a
    // multiple of 16), inside `w` since `out.len() · n ≤ w.len()`; it
    // writes `out[4g..4g + 4]` (STM, word-aligned `i32`s) through the
    // pointer kept in `st`, inside `out`. It reads and writes `st` (a live
    // local, `repr(C)`) through `lr`. Every register written is declared,
    // but r6 and r7 (which `asm!` cannot name), saved in `st.saved` first
    // and restored last; the stack is not touched; flags are clobbered.
    unsafe {
        asm!(
            // r6 and r7 into the state until the end (chunk_quads!).
            "strd r6, r7, [lr, #16]",
            "1:",
            "ldrd r1, r0, [lr]",
            "ldr r9, [lr, #24]",
            "mov r10, r9",
            "mov r11, r9",
            "mov r12, r9",
            two_per_pass!(
                "r0",
                chunk_quads!("r1", "r2", "r3", "r4", "r9", "r10", "r11", "r12")
            ),
            // Odd rows: (A − B) >> 8.
            "sub r10, r10, r9",
            "asr r10, r10, #8",
            "sub r12, r12, r11",
            "asr r12, r12, #8",
            "ldr r3, [lr, #8]",
            "stmia r3!, {{r9, r10, r11, r12}}",
            "str r3, [lr, #8]",
            "ldr r3, [lr, #12]",
            "subs r3, r3, #1",
            "str r3, [lr, #12]",
            "bne 1b",
            "ldrd r6, r7, [lr, #16]",
            inout("lr") core::ptr::addr_of_mut!(st) => _,
            inout("r2") w.as_ptr() => _,
            out("r0") _,
            out("r1") _,
            out("r3") _,
            out("r4") _,
            out("r5") _,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            options(nostack),
        );
    }
    true
}

/// One output channel's constants for [`channels_4px`]: its bias, and its
/// high-word output stage (`m ≥ 0`, `h = −2 − shift`, see [`requant4`];
/// `h = −1`, shift −1, takes the rounded high word, `SMMULR`). For a
/// layer whose clamp is the whole int8 range, `h ≥ 0` carries
/// [`FULL_RANGE`] (`h + 256`) when `|2 · zp + 1| · 2^h < 2^30`
/// ([`full_range_max_h`]): the loops then add the zero point and the rounding
/// term in `SMMLA` and clamp with one `SSAT`.
#[derive(Clone, Copy, Default)]
#[repr(C)]
pub(super) struct Chan {
    pub bias: i32,
    pub m: i32,
    pub h: i32,
}

/// Added to a [`Chan`]'s `h ≥ 0` when the output clamp is `[−128, 127]`.
pub(super) const FULL_RANGE: i32 = 256;

/// The largest high-word shift `h` with which a channel may carry
/// [`FULL_RANGE`] for output zero point `zp`: `|2 · zp + 1| · 2^h < 2^30`,
/// the bound under which the fused stage cannot wrap (−1: none). Once per
/// call, so that the per-channel test is one compare.
#[inline(always)]
pub(super) fn full_range_max_h(zp: i32) -> i32 {
    let c = (2 * zp as i64 + 1).unsigned_abs(); // ≥ 1
                                                // 2^(bits − 1) ≤ c < 2^bits, so c · 2^h < 2^30 ⟺ h ≤ 30 − bits (c a power of two
                                                // only for 1: then h ≤ 29, as 30 − 1).
    30 - (64 - c.leading_zeros() as i32)
}

/// The channel table of a conv: `table[o] = Chan { bias[o], m[o], h }`
/// with `h = −2 − shift[o]`, plus [`FULL_RANGE`] when `0 ≤ h ≤ max_h`,
/// for `o < table.len()`; returns whether every channel has `m ≥ 0` and
/// `shift ∈ [−31, −1]` (the stages of the asm loops). Only then is `h` the
/// stage's (in `[−1, 29]`); a table with a channel outside is not for the
/// asm loops, and its entries are not specified.
///
/// One asm loop, about 18 instructions per channel; the same loop in Rust
/// took 35 (its clamp and zipped iterators), and the streaming strips build
/// a table per call: 5.8 M instructions of a streamed PixelCNN image.
/// Returns false, doing nothing, unless `bias`, `multiplier` and `shift`
/// hold at least `table.len()` values.
#[inline(always)]
pub(super) fn chan_table(
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    max_h: i32,
    table: &mut [Chan],
) -> bool {
    let n = table.len();
    if n == 0 {
        return true;
    }
    if bias.len() < n || multiplier.len() < n || shift.len() < n {
        return false;
    }
    let bad: u32;
    // SAFETY: the loop runs `n ≥ 1` times; pass `o` reads `bias[o]`,
    // `multiplier[o]` and `shift[o]` (word-aligned `i32`s, inside each
    // slice: each holds at least `n`, checked) and writes the 12 bytes of
    // `table[o]` (`STM`, a word-aligned `repr(C)` `Chan`, inside `table`).
    // Every register written is declared; the stack is not touched; flags
    // clobbered.
    unsafe {
        asm!(
            "movs {bad}, #0",
            "2:",
            "ldr r9, [{pb}], #4",
            "ldr r10, [{pm}], #4",
            "ldr {t}, [{ps}], #4",
            // m < 0: the sign bit into `bad`.
            "orr {bad}, {bad}, r10",
            // h = −2 − shift; shift ∈ [−31, −1] ⟺ h + 1 ∈ [0, 30].
            "mvn r11, {t}",
            "subs r11, r11, #1",
            "adds {t}, r11, #1",
            "cmp {t}, #30",
            "it hi",
            "orrhi {bad}, {bad}, #0x80000000",
            // FULL_RANGE when 0 ≤ h ≤ max_h.
            "cmp r11, #0",
            "blt 3f",
            "cmp r11, {max}",
            "it le",
            "addle r11, r11, #{full}",
            "3:",
            "stm {pt}!, {{r9, r10, r11}}",
            "subs {n}, {n}, #1",
            "bne 2b",
            n = inout(reg) n => _,
            pb = inout(reg) bias.as_ptr() => _,
            pm = inout(reg) multiplier.as_ptr() => _,
            ps = inout(reg) shift.as_ptr() => _,
            pt = inout(reg) table.as_mut_ptr() => _,
            max = in(reg) max_h,
            full = const FULL_RANGE,
            bad = out(reg) bad,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            t = out(reg) _,
            options(nostack),
        );
    }
    bad & 0x8000_0000 == 0
}

/// The weight rows [`channels_4px`] and [`channels_4px_seg`] read: int8
/// (`LDR` and two `SXTB16` per chunk of four) or the pairs layout
/// (`LDRD`, two words per chunk). Lengths and offsets are in weights.
pub(super) trait ConvRows: Copy {
    /// Bytes per chunk of four weights.
    const CHUNK: usize;
    /// The whole rows, in bytes from their start.
    fn span(self) -> (*const u8, usize);
}

impl ConvRows for &[i8] {
    const CHUNK: usize = 4;
    fn span(self) -> (*const u8, usize) {
        (self.as_ptr().cast(), self.len())
    }
}

impl ConvRows for &[i32] {
    const CHUNK: usize = 8;
    fn span(self) -> (*const u8, usize) {
        (self.as_ptr().cast(), 4 * self.len())
    }
}

/// The state [`channels_4px`]'s loop keeps in memory (it needs every
/// register for the inner loop): field offsets are used by the asm.
#[repr(C)]
#[allow(dead_code)] // read by the asm only
struct Channels4 {
    chunks: usize,         // 0
    cols: *const [u32; 8], // 4
    table: *const Chan,    // 8
    zp: i32,               // 12
    lo: i32,               // 16
    hi: i32,               // 20
    dst: *mut i8,          // 24
    stride: usize,         // 28
    left: usize,           // 32
    skip: usize,           // 36
    acc: *mut [i32; 4],    // 40 (channels_4px_seg only)
    flags: u32,            // 44 (channels_4px_seg: 1 first segment, 2 last)
    zp21: i32,             // 48 (2 · zp + 1, wrapping: FULL_RANGE entries only)
    saved: [u32; 2],       // 52: r6 and r7 while the loop uses them
}

/// Every output channel of four pixels whose windows are packed in
/// `cols` ([`dot_4px`]'s layout): for channel `o` (`o < table.len()`),
/// `acc = table[o].bias + Σ_j cols[j] · w[o · row + 4j ..]` for each pixel,
/// then the high-word output stage ([`requant4`]) with `table[o]` and
/// `(zp, lo, hi)`, stored at `dst[o + i · stride]` for pixel `i`.
///
/// The whole channel loop is one asm block, accumulators in registers:
/// per channel 11 instructions of set-up, the dot loop (1 per MAC), 19 of
/// output stage for the whole int8 range (`SMMLA`, `ASR`, `SSAT` per value;
/// about 45 with another clamp) and 18 of stores and bookkeeping, against about 115 for the
/// same channel loop around [`dot_4px`] and [`requant4`] in Rust (bias
/// splat, spills, per-channel checks).
///
/// Returns false, doing nothing, unless the lengths fit (`row` in weights,
/// `w` int8 or in the pairs layout, [`ConvRows`]): `4 · cols.len() ≤
/// row`, `(table.len() − 1) · row + 4 · cols.len() ≤` the weights `w`
/// holds, and `table.len() − 1 + 3 · stride < dst.len()`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn channels_4px<W: ConvRows>(
    cols: &[[u32; 8]],
    w: W,
    row: usize,
    table: &[Chan],
    (zp, lo, hi): (i32, i32, i32),
    dst: &mut [i8],
    stride: usize,
) -> bool {
    let chunks = cols.len();
    let Some(last) = table.len().checked_sub(1) else {
        return true;
    };
    // In bytes: `W::CHUNK` per chunk of four weights.
    let (wp, wlen) = w.span();
    let used = W::CHUNK * chunks;
    let Some(row) = row.checked_mul(W::CHUNK / 4) else {
        return false;
    };
    let fits = used <= row
        && last
            .checked_mul(row)
            .and_then(|v| v.checked_add(used))
            .is_some_and(|end| end <= wlen)
        && stride
            .checked_mul(3)
            .and_then(|v| v.checked_add(last))
            .is_some_and(|end| end < dst.len());
    if !fits {
        return false;
    }
    let mut st = Channels4 {
        chunks,
        cols: cols.as_ptr(),
        table: table.as_ptr(),
        zp,
        lo,
        hi,
        dst: dst.as_mut_ptr(),
        stride,
        left: table.len(),
        skip: row - used,
        acc: core::ptr::null_mut(),
        flags: 3,
        zp21: zp.wrapping_mul(2).wrapping_add(1),
        saved: [0; 2],
    };
    // SAFETY: `table.len() ≥ 1` channels. Channel `o` reads `table[o]`
    // (12 bytes, `repr(C)`, through the `table` field, which advances by
    // 12 per channel), the `chunks · 32` bytes of `cols` (word-aligned,
    // `LDM`s of four words) and the `used = W::CHUNK · chunks` bytes of `w`
    // at byte `o · row` (`row` in bytes here; int8: `LDR`, unaligned
    // allowed; pairs: `LDRD`, word-aligned since a `&[i32]` is and `row` is
    // `2 · row` weights), inside `w` since `(len − 1) · row + used ≤` its
    // bytes (checked above; `skip = row − used` moves to the next row). It
    // writes four bytes at `dst + o + i · stride`, i < 4, inside `dst` since
    // `len − 1 + 3 · stride < dst.len()` (checked). It reads and writes
    // `st` (a live local, `repr(C)`, offsets as commented on the struct)
    // through `lr`. Every register written is declared, but r6 and r7
    // (which `asm!` cannot name), saved in `st.saved` first and restored
    // last; the stack is not touched; flags clobbered.
    macro_rules! run {
        ($chunk:ident) => {
            asm!(
                // r6 and r7 into the state until the end (chunk_4px_ldm!).
                "strd r6, r7, [lr, #52]",
                "1:",
                "ldr r9, [lr, #8]",
                "ldr r3, [r9], #12",
                "str r9, [lr, #8]",
                "mov r4, r3",
                "mov r5, r3",
                "mov r8, r3",
                "ldrd r0, r1, [lr]",
                four_per_pass!(
                    "r0",
                    $chunk!("r2", "r1", "r9", "r10", "r3", "r4", "r5", "r8")
                ),
                // The output stage and the stores (the table pointer is
                // already 12 bytes on: m at −8, h at −4); then the next
                // channel's weight row, the count.
                stage4_store!("-8"),
                "ldr r9, [lr, #36]",
                "add r2, r2, r9",
                "ldr r9, [lr, #32]",
                "subs r9, r9, #1",
                "str r9, [lr, #32]",
                "bne 1b",
                "ldrd r6, r7, [lr, #52]",
                inout("lr") core::ptr::addr_of_mut!(st) => _,
                inout("r2") wp => _,
                out("r0") _,
                out("r1") _,
                out("r3") _,
                out("r4") _,
                out("r5") _,
                out("r8") _,
                out("r9") _,
                out("r10") _,
                out("r11") _,
                out("r12") _,
                options(nostack),
            )
        };
    }
    unsafe {
        if W::CHUNK == 8 {
            run!(chunk_4px_pairs);
        } else {
            run!(chunk_4px_ldm);
        }
    }
    true
}

/// [`channels_4px`] for windows cut into segments: one segment of every
/// channel of a block, the accumulators kept in `acc` between segments.
/// Channel `o` starts from `table[o].bias` on the first segment
/// (`first`), else from `acc[o]`; it ends with the output stage and the
/// stores of [`channels_4px`] on the last (`last`), else stores its four
/// accumulators back to `acc[o]`. `w` holds the block's rows from this
/// segment's first tap on, `row` apart.
///
/// Returns false, doing nothing, unless the lengths fit: as
/// [`channels_4px`], and `acc` holds a slot per channel.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn channels_4px_seg<W: ConvRows>(
    cols: &[[u32; 8]],
    w: W,
    row: usize,
    table: &[Chan],
    acc: &mut [[i32; 4]],
    (first, last): (bool, bool),
    (zp, lo, hi): (i32, i32, i32),
    dst: &mut [i8],
    stride: usize,
) -> bool {
    let chunks = cols.len();
    let Some(end) = table.len().checked_sub(1) else {
        return true;
    };
    // In bytes: `W::CHUNK` per chunk of four weights.
    let (wp, wlen) = w.span();
    let used = W::CHUNK * chunks;
    let Some(row) = row.checked_mul(W::CHUNK / 4) else {
        return false;
    };
    let fits = used <= row
        && acc.len() >= table.len()
        && end
            .checked_mul(row)
            .and_then(|v| v.checked_add(used))
            .is_some_and(|e| e <= wlen)
        && stride
            .checked_mul(3)
            .and_then(|v| v.checked_add(end))
            .is_some_and(|e| e < dst.len());
    if !fits {
        return false;
    }
    let mut st = Channels4 {
        chunks,
        cols: cols.as_ptr(),
        table: table.as_ptr(),
        zp,
        lo,
        hi,
        dst: dst.as_mut_ptr(),
        stride,
        left: table.len(),
        skip: row - used,
        acc: acc.as_mut_ptr(),
        flags: first as u32 | (last as u32) << 1,
        zp21: zp.wrapping_mul(2).wrapping_add(1),
        saved: [0; 2],
    };
    // SAFETY: as [`channels_4px`] (the same reads of `table`, `cols` and
    // `w`, checked the same way; the table pointer advances by 12 bytes
    // per channel at the end of it here), and: channel `o` reads (when not
    // `first`) and writes (when not `last`) the 16 bytes of `acc[o]`
    // (`LDM`/`STM`, word-aligned; `acc` holds at least `table.len()`
    // slots, checked), and writes `dst + o + i · stride` only when `last`.
    // Every register written is declared, but r6 and r7 (which `asm!`
    // cannot name), saved in `st.saved` first and restored last; the
    // stack is not touched; flags clobbered.
    macro_rules! run {
        ($chunk:ident) => {
            asm!(
                // r6 and r7 into the state until the end (chunk_4px_ldm!).
                "strd r6, r7, [lr, #52]",
                "1:",
                "ldr r9, [lr, #44]",
                "tst r9, #1",
                "beq 7f",
                "ldr r9, [lr, #8]",
                "ldr r3, [r9]",
                "mov r4, r3",
                "mov r5, r3",
                "mov r8, r3",
                "b 8f",
                "7:",
                "ldr r9, [lr, #40]",
                "ldm r9, {{r3, r4, r5, r8}}",
                "8:",
                "ldrd r0, r1, [lr]",
                four_per_pass!(
                    "r0",
                    $chunk!("r2", "r1", "r9", "r10", "r3", "r4", "r5", "r8")
                ),
                "ldr r9, [lr, #44]",
                "tst r9, #2",
                "bne 5f",
                "ldr r9, [lr, #40]",
                "stm r9, {{r3, r4, r5, r8}}",
                "b 6f",
                "5:",
                // The output stage and the stores, as channels_4px (this
                // entry: m at +4, h at +8).
                stage4_store!("4"),
                "6:",
                // The next channel: its table entry, accumulator slot, weight
                // row; the count.
                "ldr r9, [lr, #8]",
                "add r9, r9, #12",
                "str r9, [lr, #8]",
                "ldr r9, [lr, #40]",
                "add r9, r9, #16",
                "str r9, [lr, #40]",
                "ldr r9, [lr, #36]",
                "add r2, r2, r9",
                "ldr r9, [lr, #32]",
                "subs r9, r9, #1",
                "str r9, [lr, #32]",
                "bne 1b",
                "ldrd r6, r7, [lr, #52]",
                inout("lr") core::ptr::addr_of_mut!(st) => _,
                inout("r2") wp => _,
                out("r0") _,
                out("r1") _,
                out("r3") _,
                out("r4") _,
                out("r5") _,
                out("r8") _,
                out("r9") _,
                out("r10") _,
                out("r11") _,
                out("r12") _,
                options(nostack),
            )
        };
    }
    unsafe {
        if W::CHUNK == 8 {
            run!(chunk_4px_pairs);
        } else {
            run!(chunk_4px_ldm);
        }
    }
    true
}

/// The state [`channel_pairs`]' loop keeps in memory; offsets used by the asm.
#[repr(C)]
#[allow(dead_code)] // read by the asm only
struct Pairs {
    chunks: usize,      // 0
    x: *const [u32; 2], // 4
    bias: *const i32,   // 8
    mult: *const i32,   // 12
    shift: *const i32,  // 16
    zp: i32,            // 20
    lo: i32,            // 24
    hi: i32,            // 28
    out: *mut i8,       // 32
    left: usize,        // 36
    skip: usize,        // 40
    row: usize,         // 44
}

/// Matrix–vector product with the output stage, two rows per pass, the
/// whole row loop in one asm block: for channel `o < 2 · (out.len() / 2)`,
/// `out[o] = stage(bias[o] + Σ_j x[j] · w[o · row + 4j ..])`, the
/// high-word output stage of [`requant4`] with `(multiplier[o], shift[o])`
/// and `(zp, lo, hi)` — [`dot_2rows`]' inner loop, then per pair of
/// channels about 50 instructions of output stage and bookkeeping, against
/// about 80 for the same loop in Rust.
///
/// The stage needs `multiplier[o] ≥ 0` and `shift[o] ∈ [−31, −1]` (−1:
/// the rounded high word, `SMMULR`, exact for `t = 32`); the loop checks
/// each pair before storing it and stops at the first pair without,
/// leaving it and the rest to the caller. Returns the number of channels
/// done (even), or None, doing nothing, unless the lengths fit: `4 ·
/// x.len() ≤ row`, `(2p − 1) · row + 4 · x.len() ≤ w.len()` and `bias`,
/// `multiplier`, `shift` each at least `2p` long, for `p = out.len() / 2`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn channel_pairs(
    x: &[[u32; 2]],
    w: &[i8],
    row: usize,
    bias: &[i32],
    multiplier: &[i32],
    shift: &[i32],
    (zp, lo, hi): (i32, i32, i32),
    out: &mut [i8],
) -> Option<usize> {
    let pairs = out.len() / 2;
    let used = 4 * x.len();
    if pairs == 0 {
        return Some(0);
    }
    let fits = used <= row
        && (2 * pairs - 1)
            .checked_mul(row)
            .and_then(|v| v.checked_add(used))
            .is_some_and(|end| end <= w.len())
        && bias.len() >= 2 * pairs
        && multiplier.len() >= 2 * pairs
        && shift.len() >= 2 * pairs;
    if !fits {
        return None;
    }
    let mut st = Pairs {
        chunks: x.len(),
        x: x.as_ptr(),
        bias: bias.as_ptr(),
        mult: multiplier.as_ptr(),
        shift: shift.as_ptr(),
        zp,
        lo,
        hi,
        out: out.as_mut_ptr(),
        left: pairs,
        skip: 2 * row - used,
        row,
    };
    // SAFETY: `pairs ≥ 1`. Pair `q` (channels 2q, 2q + 1) reads the two
    // words at `bias + 8q`, `multiplier + 8q` and `shift + 8q` (in bounds:
    // each slice holds at least `2 · pairs` values), the `8 · chunks`
    // bytes of `x` (word-aligned, LDRD) and `4 · chunks` bytes of rows
    // `2q` and `2q + 1` of `w` at `(2q) · row` and `(2q + 1) · row` (LDR,
    // unaligned allowed; inside `w` since `(2 · pairs − 1) · row + 4 ·
    // chunks ≤ w.len()`). It writes `out[2q]` and `out[2q + 1]` (`2 · pairs
    // ≤ out.len()`), and reads and writes `st` (a live `repr(C)` local,
    // offsets as commented) through `lr`. Every register written is
    // declared; the stack is not touched; flags clobbered.
    unsafe {
        asm!(
            "1:",
            "ldr r12, [lr, #8]",
            "ldrd r4, r5, [r12], #8",
            "str r12, [lr, #8]",
            "ldrd r0, r1, [lr]",
            "ldr r3, [lr, #44]",
            "add r3, r2, r3",
            two_per_pass!(
                "r0",
                chunk_2rows!("r1", "r2", "r3", "r8", "r9", "r10", "r11", "r4", "r5")
            ),
            // m0, m1 and h = −2 − shift of both channels; a pair outside
            // the asm stages ends the loop before anything is stored.
            "ldr r12, [lr, #12]",
            "ldrd r8, r9, [r12]",
            "ldr r12, [lr, #16]",
            "ldrd r10, r11, [r12]",
            "mvn r10, r10",
            "sub r10, r10, #1",
            "mvn r11, r11",
            "sub r11, r11, #1",
            "add r12, r10, #1",
            "cmp r12, #30",
            "bhi 9f",
            "add r12, r11, #1",
            "cmp r12, #30",
            "bhi 9f",
            "orrs r12, r8, r9",
            "bmi 9f",
            "ldrd r0, r1, [lr, #20]",
            "ldr r12, [lr, #28]",
            // h = −1 (shift −1): the rounded high word, `SMMULR`.
            "cmp r10, #0",
            "blt 5f",
            stage_high!("r4", "r8", "r10", "r0", "r1", "r12"),
            "b 6f",
            "5:",
            stage_rounded!("r4", "r8", "r0", "r1", "r12"),
            "6:",
            "cmp r11, #0",
            "blt 7f",
            stage_high!("r5", "r9", "r11", "r0", "r1", "r12"),
            "b 8f",
            "7:",
            stage_rounded!("r5", "r9", "r0", "r1", "r12"),
            "8:",
            "ldr r12, [lr, #32]",
            "strb r4, [r12], #1",
            "strb r5, [r12], #1",
            "str r12, [lr, #32]",
            "ldr r12, [lr, #12]",
            "add r12, r12, #8",
            "str r12, [lr, #12]",
            "ldr r12, [lr, #16]",
            "add r12, r12, #8",
            "str r12, [lr, #16]",
            "ldr r12, [lr, #40]",
            "add r2, r2, r12",
            "ldr r12, [lr, #36]",
            "subs r12, r12, #1",
            "str r12, [lr, #36]",
            "bne 1b",
            "9:",
            inout("lr") core::ptr::addr_of_mut!(st) => _,
            inout("r2") w.as_ptr() => _,
            out("r0") _,
            out("r1") _,
            out("r3") _,
            out("r4") _,
            out("r5") _,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            options(nostack),
        );
    }
    Some(2 * (pairs - st.left))
}

/// The element-wise add's long-tensor loop ([`crate::kernels::fast::add`]'s
/// table path): `out[i] = stage(t[128 + a[i]] +sat t[384 + b[i]])`, the
/// sum saturating (`QADD`, as `i32::saturating_add`), then the high-word
/// output stage of [`requant4`] with `(m, h, zp, lo, hi)`. 20 instructions
/// per element (about 32 for the same loop in Rust, which spilled the
/// stage's constants).
///
/// Returns false, doing nothing, unless `a`, `b` and `out` have one length.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn add_tabled(
    t: &[i32; 512],
    a: &[i8],
    b: &[i8],
    m: i32,
    h: u32,
    (zp, lo, hi): (i32, i32, i32),
    out: &mut [i8],
) -> bool {
    let n = out.len();
    if a.len() != n || b.len() != n {
        return false;
    }
    if n == 0 {
        return true;
    }
    if (lo, hi) == (-128, 127) && h as i32 <= full_range_max_h(zp) {
        // The whole int8 range with the fused stage ([`high_zp_fused!`]:
        // `SMMLA` adds `c = (2 · zp + 1) << h`, then `ASR` and `SSAT`),
        // exact as `|c| < 2^30` (checked above): 10 instructions per
        // element instead of 12.
        let c = (2 * zp + 1) << h;
        // SAFETY: as below: `n ≥ 1` elements of `a`, `b` and `out`; table
        // reads `t[128 + x]` (through `ca`, at `t[128]`) and `t[384 + y]`
        // (through `cb`, at `t[384]`) for signed bytes `x`, `y`, indices
        // 0..512, inside `t`. Only the declared registers are written;
        // flags clobbered (QADD's Q flag, TST, LSRS, SUBS).
        unsafe {
            asm!(
                two_per_pass!(
                    "{n}",
                    concat!(
                        "ldrsb {x}, [{a}], #1\n",
                        "ldrsb {y}, [{b}], #1\n",
                        "ldr {x}, [{ca}, {x}, lsl #2]\n",
                        "ldr {y}, [{cb}, {y}, lsl #2]\n",
                        "qadd {x}, {x}, {y}\n",
                        high_zp_fused!("{x}", "{m}", "{h}", "{c}"),
                        "strb {x}, [{o}], #1\n",
                    )
                ),
                a = inout(reg) a.as_ptr() => _,
                b = inout(reg) b.as_ptr() => _,
                o = inout(reg) out.as_mut_ptr() => _,
                n = inout(reg) n => _,
                ca = in(reg) t.as_ptr().wrapping_add(128),
                cb = in(reg) t.as_ptr().wrapping_add(384),
                m = in(reg) m,
                h = in(reg) h,
                c = in(reg) c,
                x = out(reg) _,
                y = out(reg) _,
                options(nostack),
            );
        }
        return true;
    }
    if (lo, hi) == (-128, 127) {
        // The whole int8 range: the clamp is one `SSAT`, which frees the
        // registers for a second table pointer and two elements per pass
        // (12 instructions per element).
        // SAFETY: as below: `n ≥ 1` elements of `a`, `b` and `out`; table
        // reads `t[128 + x]` (through `ca`, at `t[128]`) and `t[384 + y]`
        // (through `cb`, at `t[384]`) for signed bytes `x`, `y`, indices
        // 0..512, inside `t`. Only the declared registers are written;
        // flags clobbered (QADD's Q flag, TST, LSRS, SUBS).
        unsafe {
            asm!(
                two_per_pass!(
                    "{n}",
                    concat!(
                        "ldrsb {x}, [{a}], #1\n",
                        "ldrsb {y}, [{b}], #1\n",
                        "ldr {x}, [{ca}, {x}, lsl #2]\n",
                        "ldr {y}, [{cb}, {y}, lsl #2]\n",
                        "qadd {x}, {x}, {y}\n",
                        high_zp!("{x}", "{m}", "{h}", "{zp}"),
                        "ssat {x}, #8, {x}\n",
                        "strb {x}, [{o}], #1\n",
                    )
                ),
                a = inout(reg) a.as_ptr() => _,
                b = inout(reg) b.as_ptr() => _,
                o = inout(reg) out.as_mut_ptr() => _,
                n = inout(reg) n => _,
                ca = in(reg) t.as_ptr().wrapping_add(128),
                cb = in(reg) t.as_ptr().wrapping_add(384),
                m = in(reg) m,
                h = in(reg) h,
                zp = in(reg) zp,
                x = out(reg) _,
                y = out(reg) _,
                options(nostack),
            );
        }
        return true;
    }
    // SAFETY: `n ≥ 1` elements: reads `a[i]`, `b[i]` (LDRSB, post-increment)
    // and writes `out[i]` for i < n, the three slices being `n` long. The
    // table reads are `t[128 + x]` and `t[256 + 128 + y]` for signed bytes
    // `x`, `y` ∈ [−128, 127] (LDRSB sign-extends; `c` points at `t[128]`),
    // so indices 0..512, inside `t`. Only the declared registers are
    // written; flags clobbered (QADD's Q flag, CMP, SUBS).
    unsafe {
        asm!(
            "1:",
            "ldrsb {x}, [{a}], #1",
            "ldrsb {y}, [{b}], #1",
            "ldr {x}, [{c}, {x}, lsl #2]",
            "add {y}, {y}, #256",
            "ldr {y}, [{c}, {y}, lsl #2]",
            "qadd {x}, {x}, {y}",
            stage_high!("{x}", "{m}", "{h}", "{zp}", "{lo}", "{hi}"),
            "strb {x}, [{o}], #1",
            "subs {n}, {n}, #1",
            "bne 1b",
            a = inout(reg) a.as_ptr() => _,
            b = inout(reg) b.as_ptr() => _,
            o = inout(reg) out.as_mut_ptr() => _,
            n = inout(reg) n => _,
            c = in(reg) t.as_ptr().wrapping_add(128),
            m = in(reg) m,
            h = in(reg) h,
            zp = in(reg) zp,
            lo = in(reg) lo,
            hi = in(reg) hi,
            x = out(reg) _,
            y = out(reg) _,
            options(nostack),
        );
    }
    true
}

/// The high-word output stage ([`crate::quant::OutputStage`] for shifts
/// `≤ −2`, `h = −2 − shift`) of four accumulators, stored at `dst[0]`,
/// `dst[stride]`, `dst[2·stride]` and `dst[3·stride]`:
/// `clamp(((smmul(a, m) >> h) + 1) >> 1) + zp, lo, hi)`.
///
/// Returns false, storing nothing, unless `3 · stride < dst.len()`.
/// 12 instructions per value, in registers (the same code in Rust spills
/// the constants in the conv's loop: 23).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn requant4(
    acc: [i32; 4],
    m: i32,
    h: u32,
    zp: i32,
    lo: i32,
    hi: i32,
    dst: &mut [i8],
    stride: usize,
) -> bool {
    let fits = stride.checked_mul(3).is_some_and(|last| last < dst.len());
    if !fits {
        return false;
    }
    let [a0, a1, a2, a3] = acc;
    // SAFETY: writes four bytes, at `dst + i · stride` for i in 0..4, all
    // inside `dst` since `3 · stride < dst.len()` (checked above). Reads
    // no memory; only the declared registers are written; flags clobbered
    // (CMP).
    unsafe {
        asm!(
            stage_high!("{a0}", "{m}", "{h}", "{zp}", "{lo}", "{hi}"),
            "strb {a0}, [{d}]",
            "add {d}, {d}, {s}",
            stage_high!("{a1}", "{m}", "{h}", "{zp}", "{lo}", "{hi}"),
            "strb {a1}, [{d}]",
            "add {d}, {d}, {s}",
            stage_high!("{a2}", "{m}", "{h}", "{zp}", "{lo}", "{hi}"),
            "strb {a2}, [{d}]",
            "add {d}, {d}, {s}",
            stage_high!("{a3}", "{m}", "{h}", "{zp}", "{lo}", "{hi}"),
            "strb {a3}, [{d}]",
            a0 = inout(reg) a0 => _,
            a1 = inout(reg) a1 => _,
            a2 = inout(reg) a2 => _,
            a3 = inout(reg) a3 => _,
            m = in(reg) m,
            h = in(reg) h,
            zp = in(reg) zp,
            lo = in(reg) lo,
            hi = in(reg) hi,
            d = inout(reg) dst.as_mut_ptr() => _,
            s = in(reg) stride,
            options(nostack),
        );
    }
    true
}

/// One packed window of at most 10 taps and its accumulator slot: `x`
/// holds the taps as five `i16` pairs, `acc` receives the dot product.
#[derive(Clone, Copy, Default)]
#[repr(C)]
pub(super) struct Window {
    pub x: [u32; 5],
    pub acc: i32,
}

/// `w.acc = bias + Σ_j w.x[j] · f[j]` (five `SMLAD`s, pairs of `i16`) for
/// every window `w` of `wins`: one filter, held in registers, over a row
/// of windows. Per window: two `LDM`, five `SMLAD`, `STR`, and per two
/// windows `SUBS`/`BNE`: 9 instructions for up to 10 multiply-accumulates.
#[inline(always)]
pub(super) fn dot5_windows(wins: &mut [Window], f: &[u32; 5], bias: i32) {
    let n = wins.len();
    if n == 0 {
        return;
    }
    // SAFETY: `n ≥ 1` windows of 24 bytes (`repr(C)`, word-aligned): per
    // window the loop reads its five words (two LDMs with write-back) and
    // writes the sixth (`acc`, STR with post-increment), so it touches
    // exactly `wins`' `n · 24` bytes. The LDM register lists name fixed,
    // ascending registers (r0–r2, r0–r1), as LDM requires; every register
    // written is declared. Flags clobbered (SUBS).
    unsafe {
        asm!(
            two_per_pass!(
                "r5",
                concat!(
                    "ldm r4!, {{r0, r1, r2}}\n",
                    "smlad r3, r0, r8, lr\n",
                    "smlad r3, r1, r9, r3\n",
                    "smlad r3, r2, r10, r3\n",
                    "ldm r4!, {{r0, r1}}\n",
                    "smlad r3, r0, r11, r3\n",
                    "smlad r3, r1, r12, r3\n",
                    "str r3, [r4], #4\n",
                )
            ),
            inout("r4") wins.as_mut_ptr() => _,
            inout("r5") n => _,
            in("r8") f[0],
            in("r9") f[1],
            in("r10") f[2],
            in("r11") f[3],
            in("r12") f[4],
            in("lr") bias,
            out("r0") _,
            out("r1") _,
            out("r2") _,
            out("r3") _,
            options(nostack),
        );
    }
}

/// The high-word output stage (as [`requant4`]) of every window's
/// accumulator: `dst[i · stride]` for window `i`. Per value `LDR`, the
/// stage, `STRB`, `ADD`, and per two values `SUBS`/`BNE`: 14 instructions,
/// 12 when `hi` is 127 (`SSAT` clamps the top), 9 for the whole int8
/// range (`SSAT` alone).
///
/// Returns false, storing nothing, unless `(wins.len() − 1) · stride <
/// dst.len()`. Both loops run two values per pass.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn requant_windows(
    wins: &[Window],
    m: i32,
    h: u32,
    zp: i32,
    lo: i32,
    hi: i32,
    dst: &mut [i8],
    stride: usize,
) -> bool {
    let n = wins.len();
    let fits = n
        .checked_sub(1)
        .and_then(|last| last.checked_mul(stride))
        .is_some_and(|last| last < dst.len());
    if !fits {
        return n == 0;
    }
    let acc = wins.as_ptr().cast::<i32>().wrapping_add(5);
    if (lo, hi) == (-128, 127) {
        // SAFETY: as below; `SSAT t, #8` is the whole clamp.
        unsafe {
            asm!(
                two_per_pass!(
                    "{n}",
                    concat!(
                        "ldr {t}, [{p}], #24\n",
                        high_zp!("{t}", "{m}", "{h}", "{zp}"),
                        "ssat {t}, #8, {t}\n",
                        "strb {t}, [{d}]\n",
                        "add {d}, {d}, {s}\n",
                    )
                ),
                p = inout(reg) acc => _,
                n = inout(reg) n => _,
                t = out(reg) _,
                m = in(reg) m,
                h = in(reg) h,
                zp = in(reg) zp,
                d = inout(reg) dst.as_mut_ptr() => _,
                s = in(reg) stride,
                options(nostack),
            );
        }
        return true;
    }
    if hi == 127 {
        // SAFETY: as below; `SSAT t, #8` clamps to [−128, 127], and the
        // top of the range is 127, so the clamp to `hi` is the same.
        unsafe {
            asm!(
                two_per_pass!(
                    "{n}",
                    concat!(
                        "ldr {t}, [{p}], #24\n",
                        high_zp!("{t}", "{m}", "{h}", "{zp}"),
                        "ssat {t}, #8, {t}\n",
                        clamp_lo!("{t}", "{lo}"),
                        "strb {t}, [{d}]\n",
                        "add {d}, {d}, {s}\n",
                    )
                ),
                p = inout(reg) acc => _,
                n = inout(reg) n => _,
                t = out(reg) _,
                m = in(reg) m,
                h = in(reg) h,
                zp = in(reg) zp,
                lo = in(reg) lo,
                d = inout(reg) dst.as_mut_ptr() => _,
                s = in(reg) stride,
                options(nostack),
            );
        }
        return true;
    }
    // SAFETY: `n ≥ 1`: reads the `acc` word (offset 20, word-aligned) of
    // each of the `n` 24-byte `repr(C)` windows and writes `n` bytes at
    // `dst + i · stride`, i < n, all inside `dst` since
    // `(n − 1) · stride < dst.len()` (checked above). Only the declared
    // registers are written; flags clobbered.
    unsafe {
        asm!(
            two_per_pass!(
                "{n}",
                concat!(
                    "ldr {t}, [{p}], #24\n",
                    stage_high!("{t}", "{m}", "{h}", "{zp}", "{lo}", "{hi}"),
                    "strb {t}, [{d}]\n",
                    "add {d}, {d}, {s}\n",
                )
            ),
            p = inout(reg) acc => _,
            n = inout(reg) n => _,
            t = out(reg) _,
            m = in(reg) m,
            h = in(reg) h,
            zp = in(reg) zp,
            lo = in(reg) lo,
            hi = in(reg) hi,
            d = inout(reg) dst.as_mut_ptr() => _,
            s = in(reg) stride,
            options(nostack),
        );
    }
    true
}

/// One output row of 2×2 max pooling: `rows` holds two input rows of
/// `row` bytes (`c` channels per pixel, `c` a multiple of 4); output pixel
/// `x` of `out` (`c` bytes each) is the byte-wise signed max of input
/// pixels `2x`, `2x + 1` of both rows (`SSUB8` sets the GE flags where
/// `a ≥ b`, `SEL` picks; 13 instructions per four outputs).
///
/// Returns false, doing nothing, unless `c ≥ 4`, `c % 4 == 0`, `out` is
/// whole pixels, `2 · out.len() ≤ row` and `2 · row ≤ rows.len()`.
#[cfg(not(feature = "compact"))]
#[inline(always)]
pub(super) fn max_pool_row(rows: &[i8], row: usize, c: usize, out: &mut [i8]) -> bool {
    let fits = c >= 4
        && c % 4 == 0
        && !out.is_empty()
        && out.len() % c == 0
        && out.len().checked_mul(2).is_some_and(|v| v <= row)
        && row.checked_mul(2).is_some_and(|v| v <= rows.len());
    if !fits {
        return false;
    }
    // SAFETY: for output pixel `x < out.len() / c` and word `i < c / 4`
    // the loop reads the words at byte offsets `2xc + 4i` and `2xc + c +
    // 4i` of both rows (`a` from `rows`, `d` from `rows + row`; LDR,
    // unaligned allowed): the largest ends at `row + 2 · out.len() ≤ 2 ·
    // row ≤ rows.len()` (checked), and writes `out` word by word up to
    // `out.len()` (STR, unaligned allowed). After a pixel's `c / 4` words,
    // `a` and `d` skip the pair's second pixel (`c` bytes). Only declared
    // registers are written; flags (GE included) are clobbered.
    unsafe {
        asm!(
            "1:",
            "mov {n}, {w}",
            "2:",
            "ldr {t0}, [{a}, {c}]",
            "ldr {t1}, [{a}], #4",
            "ssub8 {t2}, {t1}, {t0}",
            "sel {t1}, {t1}, {t0}",
            "ldr {t0}, [{d}, {c}]",
            "ldr {t2}, [{d}], #4",
            "ssub8 {t3}, {t2}, {t0}",
            "sel {t2}, {t2}, {t0}",
            "ssub8 {t3}, {t1}, {t2}",
            "sel {t1}, {t1}, {t2}",
            "str {t1}, [{o}], #4",
            "subs {n}, {n}, #1",
            "bne 2b",
            "add {a}, {a}, {c}",
            "add {d}, {d}, {c}",
            "subs {px}, {px}, #1",
            "bne 1b",
            a = inout(reg) rows.as_ptr() => _,
            d = inout(reg) rows.as_ptr().wrapping_add(row) => _,
            o = inout(reg) out.as_mut_ptr() => _,
            px = inout(reg) out.len() / c => _,
            w = in(reg) c / 4,
            c = in(reg) c,
            n = out(reg) _,
            t0 = out(reg) _,
            t1 = out(reg) _,
            t2 = out(reg) _,
            t3 = out(reg) _,
            options(nostack),
        );
    }
    true
}

/// The sums over `n` pixels of channels `ch..ch + 4` of `x` (`c` channels
/// per pixel): `[s02, s13]`, channels `ch` and `ch + 2` in the low and high
/// `i16` lanes of `s02`, `ch + 1` and `ch + 3` in those of `s13` (`SXTAB16`;
/// the lanes wrap, so callers keep `n ≤ 255`).
///
/// Returns `None` unless `n ≥ 1` and `(n − 1) · c + ch + 4 ≤ x.len()`.
#[cfg(not(feature = "compact"))]
#[inline(always)]
pub(super) fn sum_column4(x: &[i8], ch: usize, c: usize, n: usize) -> Option<[u32; 2]> {
    let fits = n >= 1
        && (n - 1)
            .checked_mul(c)
            .and_then(|v| v.checked_add(ch))
            .and_then(|v| v.checked_add(4))
            .is_some_and(|end| end <= x.len());
    if !fits {
        return None;
    }
    let (mut s02, mut s13) = (0u32, 0u32);
    // SAFETY: `n ≥ 1` words read, at byte offsets `ch + i · c` of `x` for
    // `i < n` (LDR, unaligned allowed), the last ending at `(n − 1) · c +
    // ch + 4 ≤ x.len()` (checked). Register-only otherwise; flags
    // clobbered (SUBS).
    unsafe {
        asm!(
            "1:",
            "ldr {v}, [{p}]",
            "add {p}, {p}, {c}",
            "sxtab16 {s02}, {s02}, {v}",
            "sxtab16 {s13}, {s13}, {v}, ror #8",
            "subs {n}, {n}, #1",
            "bne 1b",
            p = inout(reg) x.as_ptr().wrapping_add(ch) => _,
            c = in(reg) c,
            n = inout(reg) n => _,
            v = out(reg) _,
            s02 = inout(reg) s02,
            s13 = inout(reg) s13,
            options(nostack, readonly),
        );
    }
    Some([s02, s13])
}
