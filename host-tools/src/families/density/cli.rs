//! The density model's subcommands (`train-pixelcnn`, `sample`, `anomaly`)
//! and its `eval` output.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{ensure, Context, Result};

use super::run::{anomaly, density, evaluate, sample_images, write_png_grid};
use super::train::{run, PixelCnnArgs};
use crate::common::blob::{check_output_path, AlignedBlob};
use crate::common::data::{fashion_mnist_dir, shared_data_dir};
use crate::families::{emit_report, EvalArgs};

/// Subcommands of the PixelCNN density model.
#[derive(clap::Subcommand, Clone, Debug)]
pub enum Command {
    /// Train a float PixelCNN on binarized MNIST (burn); writes epoch-N.json, final.json, summary.json.
    TrainPixelcnn(PixelCnnArgs),
    /// Sample binary images from a PixelCNN `.tinf` through the core and write a PNG grid.
    Sample(SampleArgs),
    /// Anomaly scores of a PixelCNN `.tinf`: MNIST (normal) against Fashion-MNIST by NLL, with the AUROC.
    Anomaly(AnomalyArgs),
}

/// Flags of `tinyinfer sample`.
#[derive(clap::Args, Clone, Debug)]
pub struct SampleArgs {
    /// The PixelCNN `.tinf` model.
    model: PathBuf,
    /// Seed of the first image (image i uses seed + i, PCG32 as on the device).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images to sample (1 to 10,000).
    #[arg(long, default_value_t = 16, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    count: usize,
    /// Images per row of the grid (1 to 256).
    #[arg(long, default_value_t = 8, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256))]
    cols: usize,
    /// Pixels per image pixel in the PNG (1 to 32).
    #[arg(long, default_value_t = 3, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=32))]
    zoom: usize,
    /// Output PNG (written atomically).
    #[arg(long, short, value_name = "FILE")]
    out: PathBuf,
    /// Recompute the whole network per pixel instead of incrementally (same images, ~pixels× slower).
    #[arg(long)]
    full: bool,
}

/// Flags of `tinyinfer anomaly`.
#[derive(clap::Args, Clone, Debug)]
pub struct AnomalyArgs {
    /// The PixelCNN `.tinf` model.
    model: PathBuf,
    /// Shared data directory with `mnist/` (default: $TINYINFER_DATA, then ../shared/data).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Fashion-MNIST directory (default: $TINYINFER_FASHION_MNIST, then Debian's path).
    #[arg(long, value_name = "DIR")]
    fashion: Option<PathBuf>,
    /// Test images of each set to score (evenly spaced; 1 to 10,000).
    #[arg(long, default_value_t = 2000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    count: usize,
    /// Seed of the stochastic binarization (MNIST uses it, Fashion-MNIST seed + 1).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

impl Command {
    /// Runs the subcommand.
    ///
    /// # Errors
    /// Whatever the subcommand fails with.
    pub fn run(&self) -> Result<()> {
        match self {
            Command::TrainPixelcnn(a) => run(a).map(|s| {
                if !a.run.stops_early(a.epochs) {
                    println!("final model: {}", s.final_json.display());
                }
            }),
            Command::Sample(a) => sample(a),
            Command::Anomaly(a) => anomaly_cmd(a),
        }
    }
}

/// `tinyinfer eval` of a density model: int8 (core) against float NLL.
pub(super) fn eval(a: &EvalArgs, blob: &AlignedBlob) -> Result<()> {
    let dir = shared_data_dir(a.data.as_deref());
    let r = evaluate(&a.model, blob, a.checkpoint.as_deref(), &dir, a.limit)?;
    if emit_report(a, &r)? {
        return Ok(());
    }
    println!(
        "model {}: {} binarized-MNIST test images through the core in {:.1} s",
        a.model.display(),
        r.test_images,
        r.host_seconds
    );
    println!("int8 NLL   {:.2} nats", r.int8_nll_nats);
    if let (Some(f), Some(l)) = (r.float_nll_nats, r.quantization_loss_nats) {
        println!("float NLL  {f:.2} nats  (quantization loss {l:.2} nats)");
    }
    println!(
        "{} params, {} MACs per scored image, blob {} bytes, arena {} bytes (sampling {} bytes)",
        r.params, r.macs, r.blob_bytes, r.arena_bytes, r.sample_arena_bytes
    );
    Ok(())
}

fn sample(a: &SampleArgs) -> Result<()> {
    ensure!(a.count > 0, "--count must be at least 1");
    check_output_path(&a.out).context("--out")?;
    let blob = AlignedBlob::read(&a.model)?;
    let shape = density(&blob)?.shape();
    let t0 = Instant::now();
    let imgs = sample_images(&blob, a.seed, a.count, a.full)?;
    let secs = t0.elapsed().as_secs_f64();
    write_png_grid(&a.out, &imgs, shape, a.cols, a.zoom)?;
    eprintln!(
        "wrote {} ({} images, seeds {}..={} (wrapping), {} sampling, {:.2} s on the host core)",
        a.out.display(),
        a.count,
        a.seed,
        a.seed.wrapping_add(a.count as u64 - 1),
        if a.full { "full" } else { "incremental" },
        secs
    );
    Ok(())
}

fn anomaly_cmd(a: &AnomalyArgs) -> Result<()> {
    let blob = AlignedBlob::read(&a.model)?;
    let r = anomaly(
        &a.model,
        &blob,
        &shared_data_dir(a.data.as_deref()),
        &fashion_mnist_dir(a.fashion.as_deref()),
        a.count,
        a.seed,
    )?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "MNIST (normal) {} images: mean NLL {:.2} nats; Fashion-MNIST (anomalous) {} images: mean NLL {:.2} nats",
            r.normal_images, r.normal_mean_nll_nats, r.anomalous_images, r.anomalous_mean_nll_nats
        );
        println!("AUROC (score = int8 NLL through the core): {:.4}", r.auroc);
    }
    Ok(())
}
