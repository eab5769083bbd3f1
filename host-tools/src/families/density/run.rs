//! A density `.tinf` on the host core: test-set NLL against the float
//! checkpoint, sampling (with a PNG grid), anomaly scores and their AUROC.
//! Every figure about the int8 model comes from the `tinyinfer` core, the
//! same code the firmware runs.

use anyhow::{ensure, Context, Result};
use serde::Serialize;
use tinyinfer::format::BernoulliHead;
use tinyinfer::models::DensityModel;
use tinyinfer::rng::Pcg32;

use super::data::{binarize, load_binarized_mnist, load_mnist_images, BinSplit};
use crate::common::blob::{write_atomic, AlignedBlob};
use crate::common::data::{load_fashion_mnist, Split};
use crate::common::metrics::auroc;
use crate::common::parallel::par_over_images;

/// The checked density driver of a blob.
pub fn density(blob: &AlignedBlob) -> Result<DensityModel<'_>> {
    let model = blob.model()?;
    DensityModel::new(model).map_err(|e| anyhow::anyhow!("not a usable density model: {e}"))
}

/// NLL of every image through the core, in 2⁻¹⁶ nats (parallel, one arena per thread).
pub fn core_nll(blob: &AlignedBlob, images: &[u8]) -> Result<Vec<u64>> {
    let dm = density(blob)?;
    par_over_images(images, dm.pixels(), 1, dm.arena_len(), |arena, img, o| {
        o[0] = dm
            .nll(img, arena)
            .map_err(|e| anyhow::anyhow!("core: {e}"))?
            .0;
        Ok(())
    })
}

/// Mean NLL in nats of fixed-point NLLs.
pub fn mean_nats(nll: &[u64]) -> f64 {
    nll.iter().map(|&v| v as f64).sum::<f64>() / BernoulliHead::NLL_ONE / nll.len().max(1) as f64
}

/// `count` images sampled through the core, seeds `seed, seed + 1, …`
/// (incremental sampling; `full` recomputes the network per pixel).
pub fn sample_images(blob: &AlignedBlob, seed: u64, count: usize, full: bool) -> Result<Vec<u8>> {
    let dm = density(blob)?;
    let px = dm.pixels();
    let mut out = vec![0u8; px * count];
    let mut arena = vec![0u8; dm.arena_len().max(dm.sample_arena_len())];
    for (i, img) in out.chunks_mut(px).enumerate() {
        let mut rng = Pcg32::seeded(seed.wrapping_add(i as u64));
        let r = if full {
            dm.sample_full(&mut rng, img, &mut arena)
        } else {
            dm.sample(&mut rng, img, &mut arena)
        };
        r.map_err(|e| anyhow::anyhow!("core: {e}"))?;
    }
    Ok(out)
}

/// Writes binary images as a grayscale PNG grid, `cols` wide, 1 px gutters,
/// each pixel scaled by `zoom` (atomically, like every export).
pub fn write_png_grid(
    path: &std::path::Path,
    images: &[u8],
    (ih, iw): (usize, usize),
    cols: usize,
    zoom: usize,
) -> Result<()> {
    let px = ih * iw;
    ensure!(
        px > 0 && !images.is_empty() && images.len().is_multiple_of(px),
        "no images to draw"
    );
    let n = images.len() / px;
    let cols = cols.clamp(1, n);
    let rows = n.div_ceil(cols);
    let (cell_w, cell_h) = (iw * zoom + 1, ih * zoom + 1);
    let (w, h) = (cols * cell_w + 1, rows * cell_h + 1);
    ensure!(
        w <= u32::MAX as usize
            && h <= u32::MAX as usize
            && w.checked_mul(h).is_some_and(|a| a <= 1 << 30),
        "a {w}×{h} PNG grid is too large: lower --count, --cols or --zoom"
    );
    let mut canvas = vec![96u8; w * h];
    for (i, img) in images.chunks(px).enumerate() {
        let (r, c) = (i / cols, i % cols);
        for y in 0..ih * zoom {
            for x in 0..iw * zoom {
                let v = img[(y / zoom) * iw + x / zoom];
                canvas[(1 + r * cell_h + y) * w + 1 + c * cell_w + x] =
                    if v == 1 { 255 } else { 0 };
            }
        }
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, w as u32, h as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().context("PNG header")?;
        wr.write_image_data(&canvas).context("PNG data")?;
    }
    write_atomic(path, &bytes)
}

/// What `tinyinfer eval` reports for a density model.
#[derive(Clone, Debug, Serialize)]
pub struct DensityEval {
    /// The blob.
    pub model: String,
    /// Mean test NLL of the int8 model through the core, nats per image.
    pub int8_nll_nats: f64,
    /// Mean test NLL of the float model (with `--checkpoint`).
    pub float_nll_nats: Option<f64>,
    /// `int8 − float`, nats.
    pub quantization_loss_nats: Option<f64>,
    /// Stored parameters.
    pub params: usize,
    /// Multiply-accumulates of one scored image (masked taps skipped).
    pub macs: u64,
    /// Blob bytes.
    pub blob_bytes: usize,
    /// Arena bytes for scoring.
    pub arena_bytes: usize,
    /// Arena bytes for incremental sampling.
    pub sample_arena_bytes: usize,
    /// Test images scored.
    pub test_images: usize,
    /// Seconds the core took on the host.
    pub host_seconds: f64,
}

/// A model scored on (binarized) MNIST must read 28×28 images: any other
/// shape would slice the test images into pieces that are not images.
fn check_mnist_shape(dm: &DensityModel<'_>) -> Result<()> {
    let (h, w) = dm.shape();
    ensure!(
        (h, w) == (28, 28),
        "the model reads {h}×{w} images; binarized MNIST and Fashion-MNIST images are 28×28"
    );
    Ok(())
}

/// Test-set NLL of a density blob through the core (and of the float
/// checkpoint with burn, when given).
pub fn evaluate(
    model_path: &std::path::Path,
    blob: &AlignedBlob,
    checkpoint: Option<&std::path::Path>,
    data_dir: &std::path::Path,
    limit: Option<usize>,
) -> Result<DensityEval> {
    let dm = density(blob)?;
    check_mnist_shape(&dm)?;
    let test = load_binarized_mnist(data_dir, BinSplit::Test)?;
    let test = match limit {
        Some(n) => test.take(n.clamp(1, test.len())),
        None => test,
    };
    let t0 = std::time::Instant::now();
    let nll = core_nll(blob, &test.pixels)?;
    let host_seconds = t0.elapsed().as_secs_f64();
    let int8 = mean_nats(&nll);
    let float = match checkpoint {
        Some(c) => Some(super::train::float_test_nll(c, &test.pixels)?),
        None => None,
    };
    let params = (0..dm.model().op_count())
        .filter_map(|i| dm.model().op(i))
        .map(|op| dm.model().weights(&op).len() + dm.model().bias(&op).len())
        .sum();
    Ok(DensityEval {
        model: model_path.display().to_string(),
        int8_nll_nats: int8,
        float_nll_nats: float,
        quantization_loss_nats: float.map(|f| int8 - f),
        params,
        macs: dm.model().macs(),
        blob_bytes: dm.model().as_bytes().len(),
        arena_bytes: dm.arena_len(),
        sample_arena_bytes: dm.sample_arena_len(),
        test_images: nll.len(),
        host_seconds,
    })
}

/// What `tinyinfer anomaly` reports.
#[derive(Clone, Debug, Serialize)]
pub struct AnomalyReport {
    /// The blob.
    pub model: String,
    /// MNIST test images scored (in-distribution).
    pub normal_images: usize,
    /// Fashion-MNIST test images scored (out-of-distribution).
    pub anomalous_images: usize,
    /// Seed of the stochastic binarization of both sets.
    pub binarize_seed: u64,
    /// Mean NLL of the MNIST images, nats.
    pub normal_mean_nll_nats: f64,
    /// Mean NLL of the Fashion-MNIST images, nats.
    pub anomalous_mean_nll_nats: f64,
    /// Area under the ROC curve with the NLL as the anomaly score.
    pub auroc: f64,
}

/// Scores MNIST test images (normal) against Fashion-MNIST test images
/// (anomalies), both binarized the same way, by int8 NLL through the core.
pub fn anomaly(
    model_path: &std::path::Path,
    blob: &AlignedBlob,
    data_dir: &std::path::Path,
    fashion_dir: &std::path::Path,
    count: usize,
    seed: u64,
) -> Result<AnomalyReport> {
    let dm = density(blob)?;
    check_mnist_shape(&dm)?;
    let px = dm.pixels();
    let mnist = load_mnist_images(data_dir, true)?;
    let fashion = load_fashion_mnist(fashion_dir, Split::Test)?;
    let n = count.clamp(1, (mnist.len() / px).min(fashion.len()));
    // Evenly spaced picks (both test sets are in a fixed order).
    let pick = |all: &[u8], total: usize| -> Vec<u8> {
        let step = (total / n).max(1);
        (0..n)
            .flat_map(|i| all[i * step * px..][..px].to_vec())
            .collect()
    };
    let normal = binarize(&pick(&mnist, mnist.len() / px), seed);
    let anomalous = binarize(&pick(&fashion.images, fashion.len()), seed.wrapping_add(1));
    let to_nats = |v: Vec<u64>| -> Vec<f64> {
        v.into_iter()
            .map(|x| x as f64 / BernoulliHead::NLL_ONE)
            .collect()
    };
    let sn = to_nats(core_nll(blob, &normal)?);
    let sa = to_nats(core_nll(blob, &anomalous)?);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    Ok(AnomalyReport {
        model: model_path.display().to_string(),
        normal_images: sn.len(),
        anomalous_images: sa.len(),
        binarize_seed: seed,
        normal_mean_nll_nats: mean(&sn),
        anomalous_mean_nll_nats: mean(&sa),
        auroc: auroc(&sn, &sa),
    })
}
