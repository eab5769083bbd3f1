//! `tinyinfer`: train, quantize, export, evaluate and inspect models for the tinyinfer core.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use clap::{Parser, Subcommand};
use serde::Serialize;
use tinyinfer_tools::data::{self, Split, CLASS_NAMES};
use tinyinfer_tools::eval::{self, accuracy, argmax_rows, confusion};
use tinyinfer_tools::export::{intel_hex, write_atomic, AlignedBlob};
use tinyinfer_tools::pixelcnn::data::shared_data_dir;
use tinyinfer_tools::{density, lm, quantize, train};

/// Base address of the nRF52840-DK MODEL flash partition (see firmware/memory-nrf52840-dk.x).
const DEFAULT_HEX_BASE: u32 = 0x0004_0000;

#[derive(Parser)]
#[command(
    name = "tinyinfer",
    version,
    about = "Train, quantize, export and evaluate int8 models for microcontrollers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train a DiracNet on Fashion-MNIST (burn, with mixup).
    Train(train::TrainArgs),
    /// Train a float PixelCNN on binarized MNIST (burn); writes epoch-N.json, final.json, summary.json.
    TrainPixelcnn(tinyinfer_tools::pixelcnn::PixelCnnArgs),
    /// Train a float LSTM language model (softmax, MoC or MoS head) on PTB or Tiny Shakespeare (burn); writes epoch-N.json, final.json, summary.json.
    TrainLm(tinyinfer_tools::lm::TrainLmArgs),
    /// Generate text with a language model through the core (PCG32, as on the device).
    Generate(GenerateArgs),
    /// Rank of a language model's log-probability matrix over validation contexts (SVD).
    Rank(RankArgs),
    /// Fold, calibrate, quantize and write a `.tinf` model (and optionally its Intel HEX image).
    Export(ExportArgs),
    /// Evaluate a `.tinf` model through the core on the 10,000 test images.
    Eval(EvalArgs),
    /// Print layers, shapes, MACs, parameter, blob and arena bytes of a `.tinf` model.
    Inspect(InspectArgs),
    /// Sample binary images from a PixelCNN `.tinf` through the core and write a PNG grid.
    Sample(SampleArgs),
    /// Anomaly scores of a PixelCNN `.tinf`: MNIST (normal) against Fashion-MNIST by NLL, with the AUROC.
    Anomaly(AnomalyArgs),
    /// The main job: train → export → eval, then a summary table.
    Pipeline(PipelineArgs),
    /// Run the firmware on QEMU (mps2-an386) with a model: self-test, per-layer instruction counts, stack, device evaluation.
    #[cfg(feature = "simulate")]
    Simulate(tinyinfer_tools::simulate::SimulateArgs),
    /// (This build has no QEMU support: rebuild with the `simulate` feature.)
    #[cfg(not(feature = "simulate"))]
    Simulate(Disabled),
    /// Write a model to a board's MODEL partition with probe-rs, verify it and reset the board.
    #[cfg(feature = "flash")]
    Flash(tinyinfer_tools::flash::FlashArgs),
    /// (This build has no probe support: rebuild with the `flash` feature.)
    #[cfg(not(feature = "flash"))]
    Flash(Disabled),
}

/// Arguments of a subcommand whose cargo feature is off.
#[cfg_attr(all(feature = "simulate", feature = "flash"), allow(dead_code))]
#[derive(clap::Args, Clone)]
struct Disabled {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    _args: Vec<String>,
}

#[cfg_attr(all(feature = "simulate", feature = "flash"), allow(dead_code))]
fn disabled(feature: &str) -> Result<()> {
    anyhow::bail!(
        "this tinyinfer was built without the `{feature}` feature (the main job builds the \
         smallest tool); rebuild with: cargo build --release -p tinyinfer-tools \
         (default features include `simulate` and `flash`)"
    )
}

#[derive(clap::Args, Clone)]
struct SampleArgs {
    /// The PixelCNN `.tinf` model.
    model: PathBuf,
    /// Seed of the first image (image i uses seed + i, PCG32 as on the device).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Images to sample.
    #[arg(long, default_value_t = 16)]
    count: usize,
    /// Images per row of the grid.
    #[arg(long, default_value_t = 8)]
    cols: usize,
    /// Pixels per image pixel in the PNG.
    #[arg(long, default_value_t = 3)]
    zoom: usize,
    /// Output PNG (written atomically).
    #[arg(long, short, value_name = "FILE")]
    out: PathBuf,
    /// Recompute the whole network per pixel instead of incrementally (same images, ~pixels× slower).
    #[arg(long)]
    full: bool,
}

#[derive(clap::Args, Clone)]
struct GenerateArgs {
    /// The language-model `.tinf`.
    model: PathBuf,
    /// Text the model reads before generating (after its start token).
    #[arg(long, default_value = "")]
    prompt: String,
    /// Tokens to generate.
    #[arg(long, default_value_t = 200)]
    tokens: usize,
    /// PCG32 seed (the firmware draws the same tokens for the same seed).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object (token ids and text).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Clone)]
struct RankArgs {
    /// Float LM checkpoint (`final.json` of `train-lm`).
    checkpoint: PathBuf,
    /// Validation contexts N (rows of the N × V matrix).
    #[arg(long, default_value_t = 2000)]
    contexts: usize,
    /// Shared data directory (default: $TINYINFER_DATA, then ../shared/data).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Clone)]
struct AnomalyArgs {
    /// The PixelCNN `.tinf` model.
    model: PathBuf,
    /// Shared data directory with `mnist/` (default: $TINYINFER_DATA, then ../shared/data).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Fashion-MNIST directory (default: $TINYINFER_FASHION_MNIST, then Debian's path).
    #[arg(long, value_name = "DIR")]
    fashion: Option<PathBuf>,
    /// Test images of each set to score (evenly spaced).
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Seed of the stochastic binarization (MNIST uses it, Fashion-MNIST seed + 1).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Clone)]
struct ExportArgs {
    /// Checkpoint written by `train` (a `.bpk` file or a run directory), or a
    /// PixelCNN checkpoint written by `train-pixelcnn` (a `.json` file).
    #[arg(long, value_name = "CKPT")]
    checkpoint: PathBuf,
    /// Output `.tinf` path (written atomically).
    #[arg(long, short, value_name = "FILE")]
    out: PathBuf,
    /// Fashion-MNIST directory (calibration uses the training split only); for
    /// a PixelCNN, the shared data directory (default: $TINYINFER_DATA, then ../shared/data).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Training images used for calibration.
    #[arg(long, default_value_t = 2000)]
    calib: usize,
    /// Store this many test images and their host-computed int8 outputs for the on-device self-test.
    #[arg(long, default_value_t = 0)]
    selftest: usize,
    /// Also write an Intel HEX image of the blob (the flashable model partition).
    #[arg(long, value_name = "FILE")]
    hex: Option<PathBuf>,
    /// Flash address of the model partition for the HEX image.
    #[arg(long, value_parser = parse_addr, default_value = "0x00040000")]
    base: u32,
}

#[derive(clap::Args, Clone)]
struct EvalArgs {
    /// The `.tinf` model.
    model: PathBuf,
    /// Float checkpoint to compare against.
    #[arg(long, value_name = "CKPT")]
    checkpoint: Option<PathBuf>,
    /// Fashion-MNIST directory.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Evaluate only the first N test images (language models: tokens).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Language models: score the validation split instead of the test split.
    #[arg(long)]
    valid: bool,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

#[derive(clap::Args, Clone)]
struct InspectArgs {
    /// The `.tinf` model.
    model: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Clone)]
struct PipelineArgs {
    #[command(flatten)]
    train: train::TrainArgs,
    /// Output model path (default: <out>/model.tinf).
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Self-test cases to store in the blob.
    #[arg(long, default_value_t = 16)]
    selftest: usize,
}

fn parse_addr(s: &str) -> Result<u32, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(&h.replace('_', ""), 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("bad address {s:?}: {e}"))
}

#[derive(Serialize)]
struct EvalReport {
    model: PathBuf,
    int8_accuracy: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    float_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quantization_loss_points: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    int8_float_agreement: Option<f64>,
    params: usize,
    macs: u64,
    blob_bytes: usize,
    arena_bytes: usize,
    test_images: usize,
    host_seconds: f64,
    confusion: Vec<Vec<u32>>,
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Train(a) => {
            train::run(&a).map(|s| println!("final checkpoint: {}", s.checkpoint.display()))
        }
        Cmd::TrainPixelcnn(a) => tinyinfer_tools::pixelcnn::run(&a)
            .map(|s| println!("final model: {}", s.final_json.display())),
        Cmd::TrainLm(a) => tinyinfer_tools::lm::run(&a)
            .map(|s| println!("final model: {}", s.final_json.display())),
        Cmd::Generate(a) => generate(&a),
        Cmd::Rank(a) => rank(&a),
        Cmd::Export(a) => export(&a).map(|_| ()),
        Cmd::Eval(a) => eval_cmd(&a),
        Cmd::Inspect(a) => inspect(&a),
        Cmd::Sample(a) => sample(&a),
        Cmd::Anomaly(a) => anomaly(&a),
        Cmd::Pipeline(a) => pipeline(&a),
        #[cfg(feature = "simulate")]
        Cmd::Simulate(a) => tinyinfer_tools::simulate::run(&a),
        #[cfg(not(feature = "simulate"))]
        Cmd::Simulate(_) => disabled("simulate"),
        #[cfg(feature = "flash")]
        Cmd::Flash(a) => tinyinfer_tools::flash::run(&a),
        #[cfg(not(feature = "flash"))]
        Cmd::Flash(_) => disabled("flash"),
    };
    if let Err(e) = r {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

struct ExportOutcome {
    blob_bytes: usize,
    arena_bytes: usize,
    params: usize,
}

fn export(a: &ExportArgs) -> Result<ExportOutcome> {
    ensure!(a.calib > 0, "--calib must be at least 1");
    if a.checkpoint.extension().is_some_and(|e| e == "json") {
        if lm_checkpoint(&a.checkpoint)? {
            return export_lm(a);
        }
        return export_density(a);
    }
    let net = train::load_folded(&a.checkpoint)
        .with_context(|| format!("loading checkpoint {}", a.checkpoint.display()))?;
    let dir = data::fashion_mnist_dir(a.data.as_deref());
    let train_set = data::load_fashion_mnist(&dir, Split::Train)?.take(a.calib);
    let cal = quantize::calibrate(&net, &train_set.images)?;
    let q = quantize::quantize(&net, &cal)?;

    let bytes = if a.selftest > 0 {
        let test = data::load_fashion_mnist(&dir, Split::Test)?.take(a.selftest);
        let plain = AlignedBlob::new(&q.to_bytes(None)?);
        let (scores, classes) = eval::core_scores(&plain, &test.images)?;
        let mut recs = Vec::new();
        for (img, s) in test.images.chunks(data::PIXELS).zip(scores.chunks(classes)) {
            recs.extend_from_slice(img);
            recs.extend(s.iter().map(|&v| v as u8));
            while recs.len() % 4 != 0 {
                recs.push(0);
            }
        }
        q.to_bytes(Some((data::PIXELS as u32, classes as u32, &recs)))?
    } else {
        q.to_bytes(None)?
    };
    // The core must accept what we wrote before anything reaches disk.
    let blob = AlignedBlob::new(&bytes);
    blob.model()
        .context("exported model fails the core's checks (exporter bug)")?;
    write_atomic(&a.out, &bytes).with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "wrote {} ({} bytes, arena {} bytes, {} params, calibrated on {} training images)",
        a.out.display(),
        bytes.len(),
        q.arena_len,
        q.params,
        cal.images
    );
    write_hex(a, &bytes)?;
    Ok(ExportOutcome {
        blob_bytes: bytes.len(),
        arena_bytes: q.arena_len as usize,
        params: q.params,
    })
}

/// With `--hex`, also writes the blob as an Intel HEX image at `--base`.
fn write_hex(a: &ExportArgs, blob: &[u8]) -> Result<()> {
    if let Some(hex) = &a.hex {
        write_atomic(hex, intel_hex(blob, a.base)?.as_bytes())
            .with_context(|| format!("writing {}", hex.display()))?;
        eprintln!("wrote {} (Intel HEX at {:#010x})", hex.display(), a.base);
    }
    Ok(())
}

/// Whether a JSON checkpoint is a language model's (it has a token table).
fn lm_checkpoint(path: &std::path::Path) -> Result<bool> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading checkpoint {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON checkpoint", path.display()))?;
    Ok(v.get("vocab").is_some() && v.get("layers").is_some())
}

fn export_lm(a: &ExportArgs) -> Result<ExportOutcome> {
    let m = lm::LmF::load(&a.checkpoint)?;
    let ex = lm::quantize::export(&m)?;
    write_atomic(&a.out, &ex.blob).with_context(|| format!("writing {}", a.out.display()))?;
    let blob = AlignedBlob::new(&ex.blob);
    let spec = *lm::run::language_model(&blob)?.spec();
    eprintln!(
        "wrote {} ({} bytes, arena {} bytes, {} params, {} head, K = {}, {} MACs per token)",
        a.out.display(),
        ex.blob.len(),
        ex.arena_len,
        spec.params(),
        spec.head.name(),
        spec.k,
        spec.macs_per_token()
    );
    write_hex(a, &ex.blob)?;
    Ok(ExportOutcome {
        blob_bytes: ex.blob.len(),
        arena_bytes: ex.arena_len,
        params: spec.params() as usize,
    })
}

/// The corpus a language model was trained on, by its level; its token table
/// must equal the model's.
fn lm_corpus(
    blob: &AlignedBlob,
    data: Option<&std::path::Path>,
) -> Result<tinyinfer_tools::lm::Corpus> {
    let lm = lm::run::language_model(blob)?;
    let ds = match lm.spec().level {
        tinyinfer::format::Level::Word => lm::Dataset::Ptb,
        tinyinfer::format::Level::Char => lm::Dataset::Shakespeare,
    };
    let corpus = ds.load(&shared_data_dir(data))?;
    let v = lm.vocab();
    let same = corpus.vocab.len() == v.len()
        && corpus
            .vocab
            .iter()
            .enumerate()
            .all(|(i, t)| v.token(i) == Some(t.as_str()));
    ensure!(
        same,
        "the model's token table differs from the {} vocabulary",
        ds.name()
    );
    Ok(corpus)
}

fn eval_lm(a: &EvalArgs, blob: &AlignedBlob) -> Result<()> {
    let corpus = lm_corpus(blob, a.data.as_deref())?;
    let split = if a.valid { &corpus.valid } else { &corpus.test };
    let tokens = &split[..a.limit.unwrap_or(usize::MAX).min(split.len())];
    let float = a.checkpoint.as_deref().map(lm::LmF::load).transpose()?;
    let r = lm::run::evaluate(&a.model.display().to_string(), blob, float.as_ref(), tokens)?;
    let json = serde_json::to_string_pretty(&r)?;
    if let Some(p) = &a.report {
        write_atomic(p, json.as_bytes())?;
    }
    if a.json {
        println!("{json}");
    } else {
        let what = if a.valid { "validation" } else { "test" };
        println!(
            "model {}: {} {what} tokens through the core in {:.1} s",
            a.model.display(),
            r.tokens,
            r.host_seconds
        );
        println!(
            "int8 perplexity  {:.2}  ({:.4} bits/token)",
            r.int8_perplexity, r.int8_bits_per_token
        );
        if let (Some(f), Some(b), Some(d)) = (
            r.float_perplexity,
            r.float_bits_per_token,
            r.int8_vs_float_percent,
        ) {
            println!("float perplexity {f:.2}  ({b:.4} bits/token; int8 is {d:+.2} %)");
        }
        println!(
            "{} head, K = {}, {} params, {} MACs per token, blob {} bytes, arena {} bytes",
            r.head, r.k, r.params, r.macs_per_token, r.blob_bytes, r.arena_bytes
        );
    }
    Ok(())
}

fn generate(a: &GenerateArgs) -> Result<()> {
    let blob = AlignedBlob::read(&a.model)?;
    let lm = lm::run::language_model(&blob)?;
    let t0 = Instant::now();
    let ids = lm::run::generate(&blob, &a.prompt, a.tokens, a.seed)?;
    let text = lm::run::detokenize(&lm, &ids);
    if a.json {
        let j = serde_json::json!({
            "model": a.model,
            "prompt": a.prompt,
            "seed": a.seed,
            "tokens": ids,
            "text": text,
            "host_seconds": t0.elapsed().as_secs_f64(),
        });
        println!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        let sep = match lm.spec().level {
            tinyinfer::format::Level::Word if !a.prompt.is_empty() => " ",
            _ => "",
        };
        println!("{}{sep}{text}", a.prompt);
    }
    Ok(())
}

fn rank(a: &RankArgs) -> Result<()> {
    let m = lm::LmF::load(&a.checkpoint)?;
    let ds = match m.level {
        lm::Level::Word => lm::Dataset::Ptb,
        lm::Level::Char => lm::Dataset::Shakespeare,
    };
    let corpus = ds.load(&shared_data_dir(a.data.as_deref()))?;
    ensure!(
        corpus.vocab == m.vocab,
        "the checkpoint's token table differs from the {} vocabulary",
        ds.name()
    );
    let t0 = Instant::now();
    let r = lm::rank::rank(&m, &corpus.valid, a.contexts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{} head (K = {}, d = {}): rank {} of at most {} ({} contexts × {} tokens; softmax bound d + 2 = {}); {:.1} s",
            r.head,
            r.k,
            r.emb_dim,
            r.rank,
            r.full_rank,
            r.contexts,
            r.vocab,
            r.softmax_bound,
            t0.elapsed().as_secs_f64()
        );
        println!(
            "threshold {:.3e} (σ_max {:.3e} · max(N, V) · ε)",
            r.threshold, r.sigma_max
        );
    }
    Ok(())
}

fn export_density(a: &ExportArgs) -> Result<ExportOutcome> {
    let dir = shared_data_dir(a.data.as_deref());
    let ex = density::export(&a.checkpoint, &dir, a.calib, a.selftest)?;
    // The core must accept what we wrote before anything reaches disk.
    AlignedBlob::new(&ex.blob)
        .model()
        .context("exported model fails the core's checks (exporter bug)")?;
    write_atomic(&a.out, &ex.blob).with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "wrote {} ({} bytes, arena {} bytes, sampling arena {} bytes, {} params, calibrated on {} training images, {} self-test cases)",
        a.out.display(),
        ex.blob.len(),
        ex.arena_bytes,
        ex.sample_arena_bytes,
        ex.params,
        ex.calibration_images,
        ex.selftest_cases
    );
    write_hex(a, &ex.blob)?;
    Ok(ExportOutcome {
        blob_bytes: ex.blob.len(),
        arena_bytes: ex.arena_bytes,
        params: ex.params,
    })
}

fn eval_density(a: &EvalArgs, blob: &AlignedBlob) -> Result<()> {
    let dir = shared_data_dir(a.data.as_deref());
    let r = density::evaluate(&a.model, blob, a.checkpoint.as_deref(), &dir, a.limit)?;
    let json = serde_json::to_string_pretty(&r)?;
    if let Some(p) = &a.report {
        write_atomic(p, json.as_bytes())?;
    }
    if a.json {
        println!("{json}");
    } else {
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
    }
    Ok(())
}

fn sample(a: &SampleArgs) -> Result<()> {
    ensure!(a.count > 0, "--count must be at least 1");
    let blob = AlignedBlob::read(&a.model)?;
    let side = density::density(&blob)?.shape().0;
    let t0 = Instant::now();
    let imgs = density::sample_images(&blob, a.seed, a.count, a.full)?;
    let secs = t0.elapsed().as_secs_f64();
    density::write_png_grid(&a.out, &imgs, side, a.cols, a.zoom)?;
    eprintln!(
        "wrote {} ({} images, seeds {}..{}, {} sampling, {:.2} s on the host core)",
        a.out.display(),
        a.count,
        a.seed,
        a.seed + a.count as u64 - 1,
        if a.full { "full" } else { "incremental" },
        secs
    );
    Ok(())
}

fn anomaly(a: &AnomalyArgs) -> Result<()> {
    let blob = AlignedBlob::read(&a.model)?;
    let r = density::anomaly(
        &a.model,
        &blob,
        &shared_data_dir(a.data.as_deref()),
        &data::fashion_mnist_dir(a.fashion.as_deref()),
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

/// `tinyinfer eval`: a classifier or a density model, by the blob's family.
fn eval_cmd(a: &EvalArgs) -> Result<()> {
    let blob = AlignedBlob::read(&a.model)?;
    let family = blob
        .model()
        .with_context(|| format!("checking {}", a.model.display()))?
        .family();
    match family {
        tinyinfer::format::Family::Density => eval_density(a, &blob),
        tinyinfer::format::Family::LanguageModel => eval_lm(a, &blob),
        _ => run_eval(a).map(|_| ()),
    }
}

fn run_eval(a: &EvalArgs) -> Result<EvalReport> {
    let blob = AlignedBlob::read(&a.model)?;
    let model = blob
        .model()
        .with_context(|| format!("checking {}", a.model.display()))?;

    let info = eval::inspect(&model)?;
    let dir = data::fashion_mnist_dir(a.data.as_deref());
    let mut test = data::load_fashion_mnist(&dir, Split::Test)?;
    if let Some(n) = a.limit {
        ensure!(n > 0, "--limit must be at least 1");
        test = test.take(n);
    }
    let t0 = Instant::now();
    let (scores, classes) = eval::core_scores(&blob, &test.images)?;
    let host_seconds = t0.elapsed().as_secs_f64();
    let pred = argmax_rows(&scores, classes);
    let int8_accuracy = accuracy(&pred, &test.labels);
    let (mut float_accuracy, mut agreement) = (None, None);
    if let Some(ck) = &a.checkpoint {
        let logits = train::float_logits(ck, &test.images)
            .with_context(|| format!("float model {}", ck.display()))?;
        let fpred = argmax_rows(&logits, classes);
        float_accuracy = Some(accuracy(&fpred, &test.labels));
        agreement = Some(
            pred.iter().zip(&fpred).filter(|(a, b)| a == b).count() as f64 / pred.len() as f64,
        );
    }
    let report = EvalReport {
        model: a.model.clone(),
        int8_accuracy,
        float_accuracy,
        quantization_loss_points: float_accuracy.map(|f| 100.0 * (f - int8_accuracy)),
        int8_float_agreement: agreement,
        params: info.params,
        macs: info.macs,
        blob_bytes: info.blob_bytes,
        arena_bytes: info.arena_bytes,
        test_images: test.len(),
        host_seconds,
        confusion: confusion(&pred, &test.labels, classes),
    };
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(p) = &a.report {
        write_atomic(p, json.as_bytes())?;
    }
    if a.json {
        println!("{json}");
    } else {
        println!(
            "model {}: {} test images through the core in {:.1} s",
            a.model.display(),
            test.len(),
            host_seconds
        );
        println!("int8 accuracy  {:.2} %", 100.0 * int8_accuracy);
        if let (Some(f), Some(g)) = (float_accuracy, agreement) {
            println!("float accuracy {:.2} %  (quantization loss {:.2} points, int8/float agreement {:.2} %)", 100.0 * f, 100.0 * (f - int8_accuracy), 100.0 * g);
        }
        println!("confusion matrix (rows: true class, columns: predicted)");
        print!("{:>12}", "");
        for c in 0..classes {
            print!("{c:>6}");
        }
        println!();
        for (i, row) in report.confusion.iter().enumerate() {
            print!("{:>12}", CLASS_NAMES.get(i).copied().unwrap_or("?"));
            for v in row {
                print!("{v:>6}");
            }
            println!();
        }
    }
    Ok(report)
}

fn inspect(a: &InspectArgs) -> Result<()> {
    let blob = AlignedBlob::read(&a.model)?;
    let model = blob
        .model()
        .with_context(|| format!("checking {}", a.model.display()))?;
    let r = eval::inspect(&model)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", eval::inspect_table(&r));
    }
    Ok(())
}

fn pipeline(a: &PipelineArgs) -> Result<()> {
    let t0 = Instant::now();
    let summary = train::run(&a.train)?;
    let train_secs = t0.elapsed().as_secs_f64();
    let model = a
        .model
        .clone()
        .unwrap_or_else(|| a.train.out.join("model.tinf"));
    let hex = model.with_extension("hex");
    let ex = export(&ExportArgs {
        checkpoint: summary.checkpoint.clone(),
        out: model.clone(),
        data: a.train.data.clone(),
        calib: 2000,
        selftest: a.selftest,
        hex: Some(hex),
        base: DEFAULT_HEX_BASE,
    })?;
    let report_path = model.with_extension("eval.json");
    let r = run_eval(&EvalArgs {
        model: model.clone(),
        checkpoint: Some(summary.checkpoint.clone()),
        data: a.train.data.clone(),
        limit: a.train.test_limit,
        valid: false,
        json: false,
        report: Some(report_path.clone()),
    })?;
    let row = |k: &str, v: String| println!("| {k:<28} | {v:>24} |");
    println!();
    println!("| {:<28} | {:>24} |", "figure", "value");
    println!("|{}|{}|", "-".repeat(30), "-".repeat(26));
    row("params (folded, int8 blob)", ex.params.to_string());
    row("MACs per inference", r.macs.to_string());
    row(
        "float test accuracy",
        format!("{:.2} %", 100.0 * r.float_accuracy.unwrap_or(f64::NAN)),
    );
    row(
        "int8 test accuracy (core)",
        format!("{:.2} %", 100.0 * r.int8_accuracy),
    );
    row(
        "quantization loss",
        format!(
            "{:.2} points",
            r.quantization_loss_points.unwrap_or(f64::NAN)
        ),
    );
    row("blob bytes", ex.blob_bytes.to_string());
    row("arena bytes", ex.arena_bytes.to_string());
    row("epochs", a.train.epochs.to_string());
    row("training time", format!("{train_secs:.0} s"));
    row("test images", r.test_images.to_string());
    println!(
        "\nmodel: {}  eval report: {}",
        model.display(),
        report_path.display()
    );
    Ok(())
}
