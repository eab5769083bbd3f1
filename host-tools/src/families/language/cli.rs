//! The language models' subcommands (`train-lm`, `generate`, `rank`) and
//! their `eval` output.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context, Result};

use super::data::{Corpus, Dataset};
use super::float::{Level, LmF};
use super::run::{detokenize, evaluate, generate, language_model};
use super::train::{run, TrainLmArgs};
use crate::common::blob::AlignedBlob;
use crate::common::data::shared_data_dir;
use crate::families::{emit_report, EvalArgs};

/// Subcommands of the language models.
// Parsed once per process: the size of the training flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(clap::Subcommand, Clone, Debug)]
pub enum Command {
    /// Train a float LSTM language model (softmax, MoC or MoS head) on PTB or Tiny Shakespeare (burn); writes epoch-N.json, final.json, summary.json.
    TrainLm(TrainLmArgs),
    /// Generate text with a language model through the core (PCG32, as on the device).
    Generate(GenerateArgs),
    /// Rank of a language model's log-probability matrix over validation contexts (SVD).
    Rank(RankArgs),
    /// Rewrite a language-model `.tinf` in the current layout (sorted token index) with self-test cases; the weights are unchanged.
    RepackLm(RepackArgs),
}

/// Flags of `tinyinfer repack-lm`.
#[derive(clap::Args, Clone, Debug)]
pub struct RepackArgs {
    /// The language-model `.tinf` to read.
    model: PathBuf,
    /// Output `.tinf` path (written atomically; may be the input).
    #[arg(long, short, value_name = "FILE")]
    out: PathBuf,
    /// Self-test cases to store: prompts the model samples, with the host
    /// core's top-k after each (0 to 4096).
    #[arg(long, default_value_t = 0, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=super::quantize::MAX_SELFTEST_CASES as u64))]
    selftest: usize,
}

/// Flags of `tinyinfer generate`.
#[derive(clap::Args, Clone, Debug)]
pub struct GenerateArgs {
    /// The language-model `.tinf`.
    model: PathBuf,
    /// Text the model reads before generating (after its start token).
    #[arg(long, default_value = "")]
    prompt: String,
    /// Tokens to generate (1 to 1,000,000).
    #[arg(long, default_value_t = 200, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    tokens: usize,
    /// PCG32 seed (the firmware draws the same tokens for the same seed).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object (token ids and text).
    #[arg(long)]
    json: bool,
}

/// Flags of `tinyinfer rank`.
#[derive(clap::Args, Clone, Debug)]
pub struct RankArgs {
    /// Float LM checkpoint (`final.json` of `train-lm`).
    checkpoint: PathBuf,
    /// Validation contexts N (rows of the N × V matrix; 1 to 20,000).
    #[arg(long, default_value_t = 2000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=20_000))]
    contexts: usize,
    /// Shared data directory (default: $TINYINFER_DATA, then ../shared/data).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
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
            Command::TrainLm(a) => run(a).map(|s| {
                if !a.run.stops_early(a.epochs) {
                    println!("final model: {}", s.final_json.display());
                }
            }),
            Command::Generate(a) => generate_cmd(a),
            Command::Rank(a) => rank(a),
            Command::RepackLm(a) => repack_cmd(a),
        }
    }
}

/// The corpus of a level: Penn Treebank for words, Tiny Shakespeare for characters.
fn dataset(level: Level) -> Dataset {
    match level {
        Level::Word => Dataset::Ptb,
        Level::Char => Dataset::Shakespeare,
    }
}

/// The corpus a language model was trained on, by its level; its token table
/// must equal the model's.
fn corpus_of(blob: &AlignedBlob, data: Option<&Path>) -> Result<Corpus> {
    let lm = language_model(blob)?;
    let ds = dataset(match lm.spec().level {
        tinyinfer::format::Level::Word => Level::Word,
        tinyinfer::format::Level::Char => Level::Char,
    });
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

/// `tinyinfer eval` of a language model: int8 (core) against float perplexity.
pub(super) fn eval(a: &EvalArgs, blob: &AlignedBlob) -> Result<()> {
    let corpus = corpus_of(blob, a.data.as_deref())?;
    let split = if a.valid { &corpus.valid } else { &corpus.test };
    let tokens = &split[..a.limit.unwrap_or(usize::MAX).min(split.len())];
    let float = a.checkpoint.as_deref().map(LmF::load).transpose()?;
    let r = evaluate(&a.model.display().to_string(), blob, float.as_ref(), tokens)?;
    if emit_report(a, &r)? {
        return Ok(());
    }
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
    Ok(())
}

fn generate_cmd(a: &GenerateArgs) -> Result<()> {
    let blob = AlignedBlob::read(&a.model)?;
    let lm = language_model(&blob)?;
    let t0 = Instant::now();
    let ids = generate(&blob, &a.prompt, a.tokens, a.seed)?;
    let text = detokenize(&lm, &ids);
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

fn repack_cmd(a: &RepackArgs) -> Result<()> {
    crate::common::blob::check_output_path(&a.out).context("--out")?;
    let blob = AlignedBlob::read(&a.model)?;
    let out = super::quantize::repack(blob.bytes(), a.selftest)
        .with_context(|| format!("repacking {}", a.model.display()))?;
    crate::common::blob::write_atomic(&a.out, &out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!(
        "wrote {} ({} bytes, sorted token index, {} self-test cases)",
        a.out.display(),
        out.len(),
        a.selftest
    );
    Ok(())
}

fn rank(a: &RankArgs) -> Result<()> {
    let m = LmF::load(&a.checkpoint)?;
    let ds = dataset(m.level);
    let corpus = ds.load(&shared_data_dir(a.data.as_deref()))?;
    ensure!(
        corpus.vocab == m.vocab,
        "the checkpoint's token table differs from the {} vocabulary",
        ds.name()
    );
    let t0 = Instant::now();
    let r = super::rank::rank(&m, &corpus.valid, a.contexts)?;
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
