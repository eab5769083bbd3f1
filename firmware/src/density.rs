//! Density mode (PixelCNN): self-test, the NLL of every stored test image,
//! and images sampled from a seed, each sent to the host as report records
//! (the pixels as bits) and logged over defmt.
//!
//! The arena decides the scoring path: when it holds the model's buffer
//! plan, images are scored with whole-map kernels (and benchmarked per
//! layer); otherwise, if it holds the ring-of-rows plan, scoring streams
//! position by position ([`DensityModel::nll_streaming`]). Sampling is
//! always incremental and needs only the ring plan.
//!
//! The host may ask for samples through the [`HostLink`]:
//!
//! ```text
//! request (host → device)  "TISR"  seed u64  count u32  full_pixels u32
//! ```
//!
//! `count` images with seeds `seed, seed + 1, …`; with `full_pixels > 0`
//! (and the full plan in the arena) the device also times the first
//! `full_pixels` pixels of sampling by recomputing the whole network per
//! pixel, the baseline of the incremental path. Without a request: one
//! image, seed 0.

use tinyinfer::format::MAX_OPS;
use tinyinfer::link::files::SampleRequest;
use tinyinfer::models::DensityModel;
use tinyinfer::rng::{Pcg32, Rng};

use crate::bench::{CycleCounter, LayerBench};
use crate::eval::{HostLink, LinkError};
use crate::{report, Outcome};

/// Bytes of a sample request (`tinyinfer::link::files::SampleRequest`).
pub const REQUEST_LEN: usize = SampleRequest::LEN;
/// Most images one request may ask for.
pub const MAX_SAMPLES: u32 = 64;

/// What to sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub struct Request {
    /// Seed of the first image.
    pub seed: u64,
    /// Images.
    pub count: u32,
    /// Pixels of full-recomputation sampling to time (0: none).
    pub full_pixels: u32,
}

fn read_request<H: HostLink>(host: &mut H) -> Result<Request, LinkError> {
    let default = Request {
        seed: 0,
        count: 1,
        full_pixels: 0,
    };
    if !host.open()? {
        return Ok(default);
    }
    let mut b = [0u8; REQUEST_LEN];
    let r = host.read_exact(&mut b);
    host.close();
    r?;
    match SampleRequest::parse(&b) {
        Some(r) if (1..=MAX_SAMPLES).contains(&r.count) => Ok(Request {
            seed: r.seed,
            count: r.count,
            full_pixels: r.full_pixels,
        }),
        r => Err(LinkError::BadHeader {
            expected: MAX_SAMPLES,
            got: r.map_or(0, |r| r.count),
        }),
    }
}

/// Runs the density mode; `image` is scratch for one image.
///
/// Never inlined: its locals then take stack only while this mode runs,
/// not in the app's `main` frame during a classifier's inference.
#[inline(never)]
pub fn run<C: CycleCounter, H: HostLink>(
    counter: &mut C,
    host: &mut H,
    dm: &DensityModel<'_>,
    arena: &mut [u8],
    image: &mut [u8],
) -> Outcome {
    report::density_model(dm);
    let full = arena.len() >= dm.arena_len();
    if !full && arena.len() < dm.sample_arena_len() {
        return Outcome::Model(tinyinfer::Error::ArenaTooSmall {
            needed: dm.sample_arena_len() as u32,
            got: arena.len() as u32,
        });
    }
    let Some(image) = image.get_mut(..dm.pixels()) else {
        report::input_too_large(dm.pixels(), image.len());
        return Outcome::Model(tinyinfer::Error::BadLength {
            expected: dm.pixels() as u32,
            got: image.len() as u32,
        });
    };
    let mut outcome = Outcome::Pass;

    let t0 = counter.now();
    match dm.selftest(arena) {
        Ok(r) => {
            report::selftest(&r, counter.now().wrapping_sub(t0), C::UNIT);
            if r.passed != r.total || r.total == 0 {
                outcome = Outcome::SelfTestFailed;
            }
        }
        Err(tinyinfer::Error::BadSelfTest) if dm.model().selftest().is_none() => {
            report::no_selftest();
            outcome = Outcome::NoSelfTest;
        }
        Err(e) => return Outcome::Model(e),
    }

    // The NLL of every stored image, on the arena's path.
    if let Some(st) = dm.model().selftest() {
        for i in 0..st.count() {
            let Some((img, _)) = st.case(i) else {
                return Outcome::Model(tinyinfer::Error::BadSelfTest);
            };
            let t0 = counter.now64();
            let nll = match full {
                true => dm.nll(img, arena),
                false => dm.nll_streaming(img, arena),
            };
            let t = counter.now64().wrapping_sub(t0);
            match nll {
                Ok(v) => report::nll(i, v, t, C::UNIT, full),
                Err(e) => return Outcome::Model(e),
            }
        }
        if let (true, Some((img, _))) = (full, st.case(0)) {
            // Per layer on the full path, and the streaming path's cost.
            let mut bench: LayerBench<'_, C, MAX_OPS> =
                LayerBench::new(counter, dm.model().op_count());
            let t0 = bench.now();
            if let Err(e) = dm.nll_observed(img, arena, &mut bench) {
                return Outcome::Model(e);
            }
            let total = bench.now().wrapping_sub(t0);
            report::benchmark(dm.model(), bench.counts(), total, C::UNIT);
            let t0 = counter.now64();
            if let Err(e) = dm.nll_streaming(img, arena) {
                return Outcome::Model(e);
            }
            report::streaming(counter.now64().wrapping_sub(t0), C::UNIT);
        }
    }

    let req = match read_request(host) {
        Ok(r) => r,
        Err(e) => {
            report::host_error(e);
            return Outcome::HostIo;
        }
    };
    for k in 0..req.count {
        let seed = req.seed.wrapping_add(k as u64);
        let t0 = counter.now64();
        if let Err(e) = dm.sample(&mut Pcg32::seeded(seed), image, arena) {
            return Outcome::Model(e);
        }
        let t = counter.now64().wrapping_sub(t0);
        report::sample(seed, image, t, C::UNIT);
    }
    if req.full_pixels > 0 && full {
        // The baseline: the whole network once per pixel, as
        // `DensityModel::sample_full` does, for the first pixels.
        let n = (req.full_pixels as usize).min(dm.pixels());
        image.fill(0);
        let mut rng = Pcg32::seeded(req.seed);
        let t0 = counter.now64();
        for px in 0..n {
            let q = match dm.logits(image, arena) {
                Ok(l) => l[px],
                Err(e) => return Outcome::Model(e),
            };
            let head = dm.model().bernoulli_head();
            image[px] = head.is_some_and(|h| rng.next_u32() < h.p_one(q)) as u8;
        }
        report::sample_full(n, counter.now64().wrapping_sub(t0), C::UNIT);
    }
    outcome
}
