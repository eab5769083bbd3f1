//! Property tests: every kernel implementation (`kernels::reference` and
//! `kernels::fast`, listed once in [`CONVS`], [`FCS`], [`GATES`],
//! [`LATENTS`] and [`DECODERS`]) against the
//! independent wide-integer statement in `common/wide.rs`, over random
//! shapes (odd sizes, channel counts not divisible by 4, stride 2, padding
//! up to and past the kernel size), zero points, saturating multipliers and
//! clamps; and every implementation returns the reference's error for bad
//! lengths. (`kernels::arm` runs only on a Cortex-M4: the firmware's
//! `kernel-check` app holds it to the reference on QEMU.)

mod common;

use common::wide;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use tinyinfer::kernels::lm::{QMatrix, Shifts, TiedRows, WeightLayout};
use tinyinfer::kernels::reference::*;
use tinyinfer::kernels::{fast, reference};
use tinyinfer::quant::nonlin::tanh_q12;
use tinyinfer::quant::{requantize, MAX_SHIFT, MIN_SHIFT};
use tinyinfer::Result;

type ConvFn = fn(&ConvParams, &[i8], &[i8], &[i32], &[i32], &[i32], &mut [i8]) -> Result<()>;
type FcFn = fn(&FcParams, &[i8], &[i8], &[i32], &[i32], &[i32], &mut [i8]) -> Result<()>;

/// Every conv2d implementation; each property below runs on all of them.
const CONVS: [(&str, ConvFn); 2] = [("reference", reference::conv2d), ("fast", fast::conv2d)];
/// Every fully_connected implementation.
const FCS: [(&str, FcFn); 2] = [
    ("reference", reference::fully_connected),
    ("fast", fast::fully_connected),
];

type GatesFn = fn(&QMatrix, &[i8], &QMatrix, &[i8], &[i32], &mut [i16]) -> Result<()>;
type LatentFn = fn(&QMatrix, &[i32], &[i8], &mut [i16]) -> Result<()>;
type DecoderFn = fn(&TiedRows, &[i32], &[i8], &mut [i32]) -> Result<()>;

/// Every LSTM gate implementation.
const GATES: [(&str, GatesFn); 2] = [
    ("reference", reference::lstm_gates),
    ("fast", fast::lstm_gates),
];
/// Every latent projection implementation.
const LATENTS: [(&str, LatentFn); 2] = [("reference", reference::latent), ("fast", fast::latent)];
/// Every decoder implementation.
const DECODERS: [(&str, DecoderFn); 2] =
    [("reference", reference::decoder), ("fast", fast::decoder)];

fn i8s(n: usize) -> impl Strategy<Value = Vec<i8>> {
    prop::collection::vec(any::<i8>(), n)
}

/// Multipliers including 0, tiny, typical and the largest; shifts across the range.
fn requant_params(n: usize) -> impl Strategy<Value = (Vec<i32>, Vec<i32>)> {
    let m = prop_oneof![Just(0), Just(i32::MAX), Just(1 << 30), 1i32..=i32::MAX];
    let s = prop_oneof![Just(MIN_SHIFT), Just(MAX_SHIFT), -12i32..=4];
    (prop::collection::vec(m, n), prop::collection::vec(s, n))
}

fn clamp_pair() -> impl Strategy<Value = (i8, i8)> {
    (any::<i8>(), any::<i8>()).prop_map(|(a, b)| (a.min(b), a.max(b)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn requantize_matches_wide(acc in any::<i32>(), m in 0..=i32::MAX, s in MIN_SHIFT..=MAX_SHIFT) {
        prop_assert_eq!(requantize(acc, m, s) as i64, wide::requant(acc as i64, m, s));
    }

    #[test]
    fn requantize_ties_match_wide(acc in any::<i32>(), s in -8i32..=0) {
        // multiplier 2^30 makes exact halves frequent: the rounding of ties is pinned down.
        prop_assert_eq!(requantize(acc, 1 << 30, s) as i64, wide::requant(acc as i64, 1 << 30, s));
    }

    #[test]
    fn conv_matches_wide(
        (h, w, c, oc, k, s, p) in (1usize..9, 1usize..9, 1usize..7, 1usize..7, 1usize..4, 1usize..3, 0usize..3)
            .prop_filter("kernel fits", |&(h, w, _, _, k, _, p)| h + 2 * p >= k && w + 2 * p >= k),
        seed in any::<u64>(),
        in_zp in -128i32..=127, out_zp in -128i32..=127,
        (lo, hi) in clamp_pair(),
    ) {
        check_conv_all(ConvCase { h, w, c, oc, k, s, p, seed, in_zp, out_zp, lo, hi })?;
    }

    #[test]
    fn conv_3x3_wider_rows_match_wide(
        (h, w) in (2usize..13, 2usize..13), c in prop_oneof![Just(1usize), Just(16), 1usize..21], oc in 1usize..10,
        s in 1usize..3, p in 0usize..2, seed in any::<u64>(),
        in_zp in -128i32..=127, out_zp in -128i32..=127, (lo, hi) in clamp_pair(),
    ) {
        prop_assume!(h + 2 * p >= 3 && w + 2 * p >= 3);
        check_conv_all(ConvCase { h, w, c, oc, k: 3, s, p, seed, in_zp, out_zp, lo, hi })?;
    }

    #[test]
    fn fast_conv_equals_reference_even_when_the_accumulator_wraps(
        (h, w, c, oc, k, s, p) in (1usize..7, 1usize..7, 1usize..6, 1usize..6, 1usize..4, 1usize..3, 0usize..3)
            .prop_filter("kernel fits", |&(h, w, _, _, k, _, p)| h + 2 * p >= k && w + 2 * p >= k),
        seed in any::<u64>(), in_zp in -128i32..=127, bias in prop_oneof![Just(i32::MAX), Just(i32::MIN), any::<i32>()],
    ) {
        let oh = (h + 2 * p - k) / s + 1;
        let ow = (w + 2 * p - k) / s + 1;
        let mut runner = runner(seed);
        let x = i8s(h * w * c).new_tree(&mut runner).unwrap().current();
        let wt = i8s(oc * k * k * c).new_tree(&mut runner).unwrap().current();
        let b = vec![bias; oc];
        let (m, sh) = (vec![1i32 << 30; oc], vec![MAX_SHIFT; oc]);
        let params = ConvParams { in_h: h, in_w: w, in_c: c, out_h: oh, out_w: ow, out_c: oc, k, stride: s, pad: p,
            in_zp, out_zp: 0, act_min: -128, act_max: 127 };
        let mut want = vec![0i8; oh * ow * oc];
        reference::conv2d(&params, &x, &wt, &b, &m, &sh, &mut want).unwrap();
        let mut got = vec![0i8; oh * ow * oc];
        fast::conv2d(&params, &x, &wt, &b, &m, &sh, &mut got).unwrap();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn fc_matches_wide(
        n in 1usize..40, o in 1usize..13, seed in any::<u64>(),
        in_zp in -128i32..=127, out_zp in -128i32..=127, (lo, hi) in clamp_pair(),
    ) {
        let mut runner = proptest::test_runner::TestRunner::new_with_rng(
            Default::default(), proptest::test_runner::TestRng::from_seed(proptest::test_runner::RngAlgorithm::ChaCha, &seed_bytes(seed)));
        let x = i8s(n).new_tree(&mut runner).unwrap().current();
        let wt = i8s(n * o).new_tree(&mut runner).unwrap().current();
        let b = prop::collection::vec(-(1i32 << 24)..(1 << 24), o).new_tree(&mut runner).unwrap().current();
        let (m, sh) = requant_params(o).new_tree(&mut runner).unwrap().current();
        let want = wide::fc(&x, &wt, &b, &m, &sh, in_zp, out_zp, lo, hi);
        for (name, fc) in FCS {
            let mut got = vec![0i8; o];
            fc(&FcParams { in_len: n, out_len: o, in_zp, out_zp, act_min: lo, act_max: hi }, &x, &wt, &b, &m, &sh, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "{}", name);
        }
    }

    #[test]
    fn pools_match_wide(
        h in 1usize..10, w in 1usize..10, c in 1usize..7, x_seed in any::<u64>(),
        in_zp in -128i32..=127, out_zp in -128i32..=127, m in 0..=i32::MAX, sh in -20i32..=2, (lo, hi) in clamp_pair(),
    ) {
        let mut runner = proptest::test_runner::TestRunner::new_with_rng(
            Default::default(), proptest::test_runner::TestRng::from_seed(proptest::test_runner::RngAlgorithm::ChaCha, &seed_bytes(x_seed)));
        let x = i8s(h * w * c).new_tree(&mut runner).unwrap().current();
        let mut got = vec![0i8; (h / 2) * (w / 2) * c];
        max_pool_2x2(&PoolParams { in_h: h, in_w: w, c }, &x, &mut got).unwrap();
        prop_assert_eq!(got, wide::maxpool((h, w, c), &x));
        let mut g = vec![0i8; c];
        global_avg_pool(&GapParams { in_h: h, in_w: w, c, in_zp, out_zp, multiplier: m, shift: sh, act_min: lo, act_max: hi }, &x, &mut g).unwrap();
        prop_assert_eq!(g, wide::gap((h, w, c), &x, m, sh, in_zp, out_zp, lo, hi));
    }

    #[test]
    fn kernels_reject_wrong_lengths_without_panicking(extra in 1usize..5, h in 1usize..6, c in 1usize..5) {
        let p = ConvParams { in_h: h, in_w: h, in_c: c, out_h: h, out_w: h, out_c: c, k: 3, stride: 1, pad: 1,
            in_zp: 0, out_zp: 0, act_min: -128, act_max: 127 };
        let x = vec![0i8; h * h * c + extra];
        let wt = vec![0i8; c * 9 * c];
        let b = vec![0i32; c];
        let mut out = vec![0i8; h * h * c];
        let bad = ConvParams { out_h: h + extra, ..p };
        let zero = ConvParams { stride: 0, ..p };
        for (name, conv) in CONVS {
            prop_assert!(conv(&p, &x, &wt, &b, &b, &b, &mut out).is_err(), "{}", name);
            prop_assert!(conv(&p, &x[..h * h * c], &wt[1..], &b, &b, &b, &mut out).is_err(), "{}", name);
            prop_assert!(conv(&bad, &x[..h * h * c], &wt, &b, &b, &b, &mut out).is_err(), "{}", name);
            prop_assert!(conv(&zero, &x[..h * h * c], &wt, &b, &b, &b, &mut out).is_err(), "{}", name);
            // The same error, field for field, as the reference.
            for (q, xs, ws, bs, os) in [
                (p, &x[..], &wt[..], &b[..], h * h * c),
                (p, &x[..h * h * c], &wt[1..], &b[..], h * h * c),
                (p, &x[..h * h * c], &wt[..], &b[1..], h * h * c),
                (p, &x[..h * h * c], &wt[..], &b[..], h * h * c - 1),
                (bad, &x[..h * h * c], &wt[..], &b[..], h * h * c),
            ] {
                let mut o1 = vec![0i8; os];
                let mut o2 = vec![0i8; os];
                prop_assert_eq!(
                    conv(&q, xs, ws, bs, &b, &b, &mut o1),
                    reference::conv2d(&q, xs, ws, bs, &b, &b, &mut o2),
                    "{}", name
                );
            }
        }
        let fp = FcParams { in_len: c, out_len: c, in_zp: 0, out_zp: 0, act_min: -128, act_max: 127 };
        for (name, fc) in FCS {
            prop_assert!(fc(&fp, &x[..c + extra], &wt[..c * c], &b, &b, &b, &mut out[..c]).is_err(), "{}", name);
        }
        let pp = PoolParams { in_h: h, in_w: h, c };
        prop_assert!(max_pool_2x2(&pp, &x, &mut out).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// The language model's matrix kernels against the wide statement:
    /// row counts not divisible by 2 or 4, odd depths, saturating biases
    /// and multipliers, all-127 / all-−128 tensors.
    #[test]
    fn lm_matrix_kernels_match_wide(
        rows in 1usize..19, nx in 1usize..70, nh in 1usize..70, seed in any::<u64>(),
        fill in prop_oneof![Just(None), Just(Some(127i8)), Just(Some(-128i8))],
    ) {
        let mut runner = runner(seed);
        let mut draw = |n: usize| -> Vec<i8> {
            match fill { Some(v) => vec![v; n], None => i8s(n).new_tree(&mut runner).unwrap().current() }
        };
        let (wx, x, wh, h) = (draw(rows * nx), draw(nx), draw(rows * nh), draw(nh));
        let (mx, sx) = requant_params(rows).new_tree(&mut runner).unwrap().current();
        let (mh, sh) = requant_params(rows).new_tree(&mut runner).unwrap().current();
        let b = prop::collection::vec(prop_oneof![Just(i32::MAX), Just(i32::MIN), -(1i32 << 16)..(1 << 16)], rows)
            .new_tree(&mut runner).unwrap().current();
        let qx = QMatrix::rows(&wx, &mx, &sx);
        let qh = QMatrix::rows(&wh, &mh, &sh);

        let want = wide::lstm_gates((&wx, &mx, &sx), &x, (&wh, &mh, &sh), &h, &b);
        for (name, gates) in GATES {
            let mut got = vec![0x55i16; rows];
            gates(&qx, &x, &qh, &h, &b, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "lstm_gates {}", name);
        }
        let want: Vec<i16> = wide::latent_pre((&wx, &mx, &sx), &b, &x).into_iter().map(tanh_q12).collect();
        for (name, latent) in LATENTS {
            let mut got = vec![0x55i16; rows];
            latent(&qx, &b, &x, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "latent {}", name);
        }
        let want = wide::decoder((&wh, &mh, &sh), &b, &h);
        let th = TiedRows::rows(&wh, &mh, &sh);
        for (name, decoder) in DECODERS {
            let mut got = vec![0x55i32; rows];
            decoder(&th, &b, &h, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "decoder {}", name);
        }
        // The LM spec's version 2: one shift for every row, the drawn first
        // one and one of the high-word form.
        for s in [sh[0], -2 - (seed % 30) as i32] {
            let want = wide::decoder((&wh, &mh, &vec![s; rows]), &b, &h);
            let th = TiedRows { w: &wh, mult: &mh, shift: Shifts::Shared(s) };
            for (name, decoder) in DECODERS {
                let mut got = vec![0x55i32; rows];
                decoder(&th, &b, &h, &mut got).unwrap();
                prop_assert_eq!(&got, &want, "decoder {} with shared shift {}", name, s);
            }
        }
    }

    /// The same matrices stored as row quads (`WeightLayout::encode`):
    /// every implementation's gates and latents equal the wide statement's
    /// on the row-by-row weights, whole groups of four rows over depths
    /// that are multiples of 4, extreme fills included. A row-quads matrix
    /// of another shape is a typed error.
    #[test]
    fn lm_row_quads_match_wide(
        groups in 1usize..6, cx in 1usize..18, ch in 1usize..18, seed in any::<u64>(),
        fill in prop_oneof![Just(None), Just(Some(127i8)), Just(Some(-128i8))],
    ) {
        let (rows, nx, nh) = (4 * groups, 4 * cx, 4 * ch);
        let mut runner = runner(seed);
        let mut draw = |n: usize| -> Vec<i8> {
            match fill { Some(v) => vec![v; n], None => i8s(n).new_tree(&mut runner).unwrap().current() }
        };
        let (wx, x, wh, h) = (draw(rows * nx), draw(nx), draw(rows * nh), draw(nh));
        let (mx, sx) = requant_params(rows).new_tree(&mut runner).unwrap().current();
        let (mh, sh) = requant_params(rows).new_tree(&mut runner).unwrap().current();
        let b = prop::collection::vec(-(1i32 << 16)..(1 << 16), rows)
            .new_tree(&mut runner).unwrap().current();
        let quads = WeightLayout::RowQuads;
        let (mut qwx, mut qwh) = (vec![0i8; wx.len()], vec![0i8; wh.len()]);
        prop_assert!(quads.encode(&wx, rows, nx, &mut qwx) && quads.encode(&wh, rows, nh, &mut qwh));
        let qx = QMatrix { layout: quads, ..QMatrix::rows(&qwx, &mx, &sx) };
        let qh = QMatrix { layout: quads, ..QMatrix::rows(&qwh, &mh, &sh) };
        let want = wide::lstm_gates((&wx, &mx, &sx), &x, (&wh, &mh, &sh), &h, &b);
        for (name, gates) in GATES {
            let mut got = vec![0x55i16; rows];
            gates(&qx, &x, &qh, &h, &b, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "lstm_gates {}", name);
        }
        let want: Vec<i16> = wide::latent_pre((&wx, &mx, &sx), &b, &x).into_iter().map(tanh_q12).collect();
        for (name, latent) in LATENTS {
            let mut got = vec![0x55i16; rows];
            latent(&qx, &b, &x, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "latent {}", name);
        }
        // Not a whole number of groups, or depths off the chunks.
        let short = QMatrix { w: &qwx[..(rows - 1) * nx], mult: &mx[1..], shift: &sx[1..], layout: quads, high_word: None };
        let mut got = vec![0i16; rows - 1];
        for (name, latent) in LATENTS {
            prop_assert_eq!(latent(&short, &b[1..], &x, &mut got), Err(tinyinfer::Error::BadGraph), "latent {}", name);
        }
        let mut got = vec![0i16; rows];
        for (name, latent) in LATENTS {
            prop_assert_eq!(latent(&qx, &b, &x[..nx - 1], &mut got), Err(tinyinfer::Error::BadGraph), "latent {}", name);
        }
    }

    /// Wrong lengths: every LM implementation returns the reference's error.
    #[test]
    fn lm_kernels_reject_wrong_lengths(rows in 1usize..9, n in 1usize..9, which in 0usize..5) {
        let w = vec![1i8; rows * n];
        let ones = vec![1i32; rows];
        let x = vec![1i8; n];
        let q = QMatrix::rows(&w, &ones, &ones);
        let bad_w = QMatrix { w: &w[1..], ..q };
        let bad_m = QMatrix { mult: &ones[1..], ..q };
        let (m, xs, b, out) = match which {
            0 => (bad_w, &x[..], &ones[..], rows),
            1 => (bad_m, &x[..], &ones[..], rows),
            2 => (q, &x[1..], &ones[..], rows),
            3 => (q, &x[..], &ones[1..], rows),
            _ => (q, &x[..], &ones[..], rows + 1),
        };
        let mut want16 = vec![0i16; out];
        let want = reference::lstm_gates(&m, xs, &q, &x, b, &mut want16);
        prop_assert!(want.is_err());
        for (name, gates) in GATES {
            let mut o = vec![0i16; out];
            prop_assert_eq!(gates(&m, xs, &q, &x, b, &mut o), want, "lstm_gates {}", name);
        }
        let want = reference::latent(&m, b, xs, &mut want16);
        prop_assert!(want.is_err());
        for (name, latent) in LATENTS {
            let mut o = vec![0i16; out];
            prop_assert_eq!(latent(&m, b, xs, &mut o), want, "latent {}", name);
        }
        let mut want32 = vec![0i32; out];
        let t = TiedRows::rows(m.w, m.mult, m.shift);
        let want = reference::decoder(&t, b, xs, &mut want32);
        prop_assert!(want.is_err());
        for (name, decoder) in DECODERS {
            let mut o = vec![0i32; out];
            prop_assert_eq!(decoder(&t, b, xs, &mut o), want, "decoder {}", name);
        }
        // A shared shift checks the other lengths the same way.
        let t = TiedRows { shift: Shifts::Shared(1), ..t };
        let shared = reference::decoder(&t, b, xs, &mut want32);
        prop_assert!(shared.is_err());
        for (name, decoder) in DECODERS {
            let mut o = vec![0i32; out];
            prop_assert_eq!(decoder(&t, b, xs, &mut o), shared, "decoder {} (shared shift)", name);
        }
    }
}

/// One conv2d case; [`check_conv_all`] draws its tensors from `seed`.
struct ConvCase {
    h: usize,
    w: usize,
    c: usize,
    oc: usize,
    k: usize,
    s: usize,
    p: usize,
    seed: u64,
    in_zp: i32,
    out_zp: i32,
    lo: i8,
    hi: i8,
}

/// Runs every implementation in [`CONVS`] on one case against `wide::conv`.
fn check_conv_all(t: ConvCase) -> std::result::Result<(), TestCaseError> {
    let ConvCase {
        h,
        w,
        c,
        oc,
        k,
        s,
        p,
        seed,
        in_zp,
        out_zp,
        lo,
        hi,
    } = t;
    let mut runner = runner(seed);
    let x = i8s(h * w * c).new_tree(&mut runner).unwrap().current();
    let wt = i8s(oc * k * k * c).new_tree(&mut runner).unwrap().current();
    let b = prop::collection::vec(-(1i32 << 20)..(1 << 20), oc)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    let (m, sh) = requant_params(oc).new_tree(&mut runner).unwrap().current();
    let (oh, ow, want) = wide::conv(
        (h, w, c),
        oc,
        k,
        s,
        p,
        &x,
        &wt,
        &b,
        &m,
        &sh,
        in_zp,
        out_zp,
        lo,
        hi,
    );
    let params = ConvParams {
        in_h: h,
        in_w: w,
        in_c: c,
        out_h: oh,
        out_w: ow,
        out_c: oc,
        k,
        stride: s,
        pad: p,
        in_zp,
        out_zp,
        act_min: lo,
        act_max: hi,
    };
    for (name, conv) in CONVS {
        let mut got = vec![0x55i8; oh * ow * oc];
        conv(&params, &x, &wt, &b, &m, &sh, &mut got).unwrap();
        prop_assert_eq!(&got, &want, "{}", name);
    }
    // The same weights in the pairs layout (whole runs of four per filter
    // only when the input channels are a multiple of 4).
    let pairs: Vec<i32> = wt
        .chunks(4)
        .flat_map(|q| reference::to_pairs([q[0], q[1 % q.len()], q[2 % q.len()], q[3 % q.len()]]))
        .collect();
    let mut got = vec![0x55i8; oh * ow * oc];
    let r = fast::conv2d_pairs(&params, &x, &pairs[..wt.len() / 2], &b, &m, &sh, &mut got);
    if c % 4 == 0 {
        prop_assert_eq!(r, Ok(()));
        prop_assert_eq!(&got, &want, "pairs");
        for (j, &v) in wt.iter().enumerate() {
            prop_assert_eq!(reference::pair_weight(&pairs, j), v as i32);
        }
    } else {
        let expected = c.next_multiple_of(4) as u32;
        prop_assert_eq!(
            r,
            Err(tinyinfer::Error::BadLength {
                expected,
                got: c as u32
            })
        );
    }
    Ok(())
}

fn runner(seed: u64) -> proptest::test_runner::TestRunner {
    proptest::test_runner::TestRunner::new_with_rng(
        Default::default(),
        proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &seed_bytes(seed),
        ),
    )
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    s
}

/// Saturation edge: the largest accumulator and multiplier at the extreme shifts.
#[test]
fn saturation_edges() {
    for &acc in &[i32::MIN, -1, 0, 1, i32::MAX] {
        for &s in &[MIN_SHIFT, -1, 0, MAX_SHIFT] {
            for &m in &[0, 1, 1 << 30, i32::MAX] {
                assert_eq!(
                    requantize(acc, m, s) as i64,
                    wide::requant(acc as i64, m, s),
                    "{acc} {m} {s}"
                );
            }
        }
    }
    // A conv whose accumulator saturates the int8 output both ways.
    let p = ConvParams {
        in_h: 1,
        in_w: 1,
        in_c: 5,
        out_h: 1,
        out_w: 1,
        out_c: 2,
        k: 1,
        stride: 1,
        pad: 0,
        in_zp: -128,
        out_zp: 0,
        act_min: -128,
        act_max: 127,
    };
    let x = [127i8; 5];
    let w = [127i8, 127, 127, 127, 127, -127, -127, -127, -127, -127];
    for (name, conv) in CONVS {
        let mut out = [0i8; 2];
        conv(
            &p,
            &x,
            &w,
            &[0, 0],
            &[i32::MAX, i32::MAX],
            &[0, 0],
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [127, -128], "{name}");
        // The same layer as a 3x3 window over a 3x3 image, zero padding 1:
        // interior and border pixels saturate alike.
        let q = ConvParams {
            in_h: 3,
            in_w: 3,
            out_h: 3,
            out_w: 3,
            k: 3,
            pad: 1,
            ..p
        };
        let mut big = [0i8; 3 * 3 * 2];
        let x9 = [127i8; 9 * 5];
        let w9: Vec<i8> = [[127i8; 9 * 5], [-127i8; 9 * 5]].concat();
        conv(
            &q,
            &x9,
            &w9,
            &[0, 0],
            &[i32::MAX, i32::MAX],
            &[0, 0],
            &mut big,
        )
        .unwrap();
        assert_eq!(big, [127, -128].repeat(9)[..], "{name}");
    }
}

/// Issue 16, defect 6: "a kernel never panics whatever it is given" —
/// extreme but consistent parameters. With no output channel the weights
/// are empty, so nothing bounds `k · k · in_c`: k = 2^(B/2) + 1 and
/// pad = 2^(B/2 − 1) on a B-bit `usize` overflow it. The reference returns
/// Ok; so must every implementation (debug builds check overflow).
#[test]
fn extreme_conv_parameters_never_panic() {
    use tinyinfer::kernels::Mask;
    let half = usize::BITS / 2;
    let (k, pad) = ((1usize << half) + 1, 1usize << (half - 1));
    for stride in [1usize, 2, usize::MAX] {
        let out = ConvParams::out_dim(3, k, stride, pad).unwrap();
        let p = ConvParams {
            in_h: 3,
            in_w: 3,
            in_c: 1,
            out_h: out,
            out_w: out,
            out_c: 0,
            k,
            stride,
            pad,
            in_zp: i32::MIN,
            out_zp: i32::MAX,
            act_min: -128,
            act_max: 127,
        };
        let x = [7i8; 9];
        for (name, f) in CONVS {
            assert_eq!(f(&p, &x, &[], &[], &[], &[], &mut []), Ok(()), "{name}");
        }
        if stride == 1 {
            for mask in [Mask::A, Mask::B] {
                let r = fast::conv2d_masked(&p, mask, &x, &[], &[], &[], &[], &mut []);
                assert_eq!(r, Ok(()), "masked {mask:?}");
            }
        }
    }
}

/// Issue 16, defect 6: zero points far outside int8 (the checker refuses
/// them in models; a kernel called directly must still not panic). The
/// subtraction wraps, as in two's complement; fast and reference agree on
/// the table path (≥ 1024 elements) and the short path.
#[test]
fn extreme_add_zero_points_never_panic() {
    for zp in [i32::MIN, i32::MAX, i32::MIN + 1, -129, 128] {
        let p = AddParams {
            a_zp: zp,
            b_zp: zp.wrapping_neg(),
            out_zp: zp,
            a_mult: i32::MAX,
            a_shift: MAX_SHIFT,
            b_mult: 1 << 30,
            b_shift: MIN_SHIFT,
            out_mult: i32::MAX,
            out_shift: 0,
            act_min: -128,
            act_max: 127,
        };
        for n in [3usize, 2000] {
            let a: Vec<i8> = (0..n).map(|i| (i * 7) as i8).collect();
            let b: Vec<i8> = (0..n).map(|i| (i * 13 + 5) as i8).collect();
            let (mut r, mut f) = (vec![0i8; n], vec![0i8; n]);
            reference::add(&p, &a, &b, &mut r).unwrap();
            fast::add(&p, &a, &b, &mut f).unwrap();
            assert_eq!(r, f, "zp {zp}, {n} elements");
        }
    }
}
