//! The report of a simulation: what the device reported (its records,
//! `tinyinfer::link::report`, parsed by the core's reader: no log line is
//! read), what its exit status means (`tinyinfer::link::status`), and the
//! summary `simulate` prints.
//!
//! [`SimReport`] holds what every run has; each family's figures sit in
//! their own part, flattened into the same JSON object, so `--json` has one
//! flat set of keys.

use std::path::PathBuf;

use anyhow::{bail, ensure, Result};
use serde::Serialize;
use tinyinfer::format::{Level, OpKind};
use tinyinfer::link::report::{Reader, Record, ReportError, Unit};
use tinyinfer::link::slots::Slot;

/// Instructions per MAC of ARM's CMSIS-NN int8 3×3 convolutions on the same
/// QEMU machine (the anchor), by (input h, w, c, output c).
pub const CMSIS_NN_ANCHORS: [((u16, u16, u16, u16), f64); 4] = [
    ((28, 28, 16, 16), 2.33),
    ((14, 14, 32, 32), 1.93),
    ((7, 7, 64, 64), 1.79),
    ((28, 28, 1, 16), 10.4),
];

/// One layer as the device measured it.
#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    /// Op index.
    pub index: usize,
    /// Op name.
    pub op: String,
    /// Input shape (h, w, c).
    pub input: [u16; 3],
    /// Output shape (h, w, c).
    pub output: [u16; 3],
    /// Instructions (QEMU) of this layer in one inference.
    pub instructions: u64,
    /// MACs of this layer.
    pub macs: u64,
    /// MACs per instruction.
    pub macs_per_instruction: f64,
    /// Instructions per MAC (the CMSIS-NN anchor's unit).
    pub instructions_per_mac: Option<f64>,
    /// CMSIS-NN's instructions per MAC for the same 3×3 conv shape, if the issue gives one.
    pub cmsis_nn_instructions_per_mac: Option<f64>,
}

/// What a simulation found: the JSON of `--json`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SimReport {
    /// The model file.
    pub model: Option<PathBuf>,
    /// The firmware ELF run.
    pub elf: PathBuf,
    /// QEMU's `-machine`.
    pub qemu_machine: String,
    /// The CPU, for people (`Cortex-M4F`).
    pub cpu: String,
    /// Board named by the firmware.
    pub board: Option<String>,
    /// Linker memory map of the ELF.
    pub memory_map: Option<String>,
    /// MODEL partition address.
    pub partition_address: u32,
    /// MODEL partition bytes.
    pub partition_bytes: u32,
    /// QEMU's exit status (the firmware's, see firmware/src/status.rs); None if QEMU was killed.
    pub exit_code: Option<i32>,
    /// What the exit status means.
    pub exit_meaning: String,
    /// The model error the device logged, if it refused the model
    /// (`NoValidModel` when neither A/B slot is valid).
    pub device_error: Option<String>,
    /// The A/B slot the device booted: `a`, `b`, or `legacy` (a bare blob at the partition start).
    pub model_slot: Option<String>,
    /// Its sequence number (0 for a legacy blob).
    pub model_sequence: Option<u32>,
    /// Slot A's state as the device saw it (`valid, sequence N`, or why not, e.g. `Incomplete`).
    pub slot_a: Option<String>,
    /// Slot B's state.
    pub slot_b: Option<String>,
    /// Self-test passed (None: the device did not run one).
    pub selftest_passed: Option<bool>,
    /// Self-test cases that matched.
    pub selftest_matched: Option<u32>,
    /// Self-test cases run.
    pub selftest_cases: Option<u32>,
    /// Instructions (QEMU) of the whole self-test at boot, as the device counted them.
    pub selftest_instructions: Option<u64>,
    /// MACs per instruction.
    pub macs_per_instruction: Option<f64>,
    /// An estimate, on Cortex-M4F boards only: the milliseconds one
    /// inference's instructions would take on an nRF52840 at 64 MHz at one
    /// cycle per instruction (loads, taken branches and flash wait states
    /// make real cycles higher).
    pub estimated_ms_at_64mhz: Option<f64>,
    /// Stack high-water mark (painted stack).
    pub stack_high_water_bytes: Option<u32>,
    /// Stack region bytes.
    pub stack_region_bytes: Option<u32>,
    /// Statics (.data + .bss + .uninit), the firmware's arena included.
    pub static_ram_bytes: Option<u32>,
    /// The firmware's static arena.
    pub firmware_arena_bytes: Option<u32>,
    /// RAM used: statics + stack high-water.
    pub ram_bytes: Option<u32>,
    /// The model's exact arena (from the blob).
    pub arena_bytes: Option<u32>,
    /// Flash bytes of the firmware (.vector_table, .text, .rodata, .data).
    pub firmware_flash_bytes: u64,
    /// Flash bytes of the firmware's symbols by origin (approximate under LTO).
    pub flash_breakdown: std::collections::BTreeMap<&'static str, u64>,
    /// Model blob bytes.
    pub model_flash_bytes: Option<u64>,
    /// Firmware + model.
    pub flash_bytes: u64,
    /// Device int8 scores (and so predictions) equal the host core's for every image.
    pub matches_host: Option<bool>,
    /// The classifier's figures (`--eval` and the benchmark).
    #[serde(flatten)]
    pub classifier: ClassifierReport,
    /// The density model's figures (scores and samples).
    #[serde(flatten)]
    pub density: DensityReport,
    /// The language model's figures (generation).
    #[serde(flatten)]
    pub language: LanguageReport,
    /// Wall-clock seconds QEMU ran.
    pub qemu_seconds: f64,
    /// The device's defmt log, decoded (for people: nothing is parsed from it).
    pub log: Vec<String>,
}

/// A classifier's figures: the per-layer benchmark and the device evaluation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClassifierReport {
    /// Instructions of one inference (the benchmark).
    pub instructions_per_inference: Option<u64>,
    /// MACs of one inference.
    pub macs_per_inference: Option<u64>,
    /// Per layer.
    pub layers: Vec<LayerReport>,
    /// Images evaluated on the device.
    pub eval_images: Option<usize>,
    /// Accuracy of the device's predictions.
    pub device_accuracy: Option<f64>,
    /// Accuracy of the host core's predictions on the same images.
    pub host_accuracy: Option<f64>,
    /// Images whose device scores differ from the host's.
    pub mismatched_images: Option<usize>,
}

/// A density model's figures: NLLs of the stored images and sampled images.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DensityReport {
    /// the device's NLL of each stored image, in 2⁻¹⁶ nats.
    pub device_nll: Vec<u64>,
    /// the device's NLLs equal the host core's for every stored image.
    pub nll_matches_host: Option<bool>,
    /// mean of the device's NLLs, nats.
    pub device_mean_nll_nats: Option<f64>,
    /// scoring path the arena allowed ("full" or "streaming").
    pub scoring_path: Option<String>,
    /// instructions per scored image on that path (first image).
    pub instructions_per_scored_image: Option<u64>,
    /// instructions per scored image on the streaming path (measured when the full plan fits).
    pub instructions_per_scored_image_streaming: Option<u64>,
    /// the model's streaming arena.
    pub streaming_arena_bytes: Option<u32>,
    /// seeds of the sampled images.
    pub sample_seeds: Vec<u64>,
    /// instructions per sampled image, incremental (first image).
    pub instructions_per_sampled_image: Option<u64>,
    /// pixels of full-recomputation sampling timed.
    pub full_sampling_pixels: Option<u32>,
    /// instructions of those pixels.
    pub full_sampling_instructions: Option<u64>,
    /// full recomputation per image, from the timed pixels × pixels per image.
    pub instructions_per_sampled_image_full: Option<u64>,
    /// every sampled image equals the host core's for its seed.
    pub samples_match_host: Option<bool>,
    /// The device's sampled images (seed, one byte per pixel), from its
    /// records; compared with the host's, written by `--png`.
    #[serde(skip)]
    pub sampled_images: Vec<(u64, Vec<u8>)>,
}

/// A language model's figures: its shape, priming and generation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LanguageReport {
    /// Language model: `char` or `word`.
    #[serde(rename = "lm_level")]
    /// `char` or `word`.
    pub level: Option<String>,
    /// Language model: vocabulary size.
    #[serde(rename = "lm_vocab")]
    /// vocabulary size.
    pub vocab: Option<u32>,
    /// Language model: embedding size d.
    #[serde(rename = "lm_emb_dim")]
    /// embedding size d.
    pub emb_dim: Option<u32>,
    /// Language model: hidden size of each LSTM layer.
    #[serde(rename = "lm_hidden")]
    /// hidden size of each LSTM layer.
    pub hidden: Vec<u32>,
    /// Language model: `softmax`, `moc` or `mos`.
    #[serde(rename = "lm_head")]
    /// `softmax`, `moc` or `mos`.
    pub head: Option<String>,
    /// Language model: mixture components K.
    #[serde(rename = "lm_k")]
    /// mixture components K.
    pub k: Option<u32>,
    /// Language model: parameters (weights and biases).
    #[serde(rename = "lm_params")]
    /// parameters (weights and biases).
    pub params: Option<u64>,
    /// multiply-accumulates per token.
    pub macs_per_token: Option<u64>,
    /// Language model: the seed the device generated with.
    #[serde(rename = "lm_seed")]
    /// the seed the device generated with.
    pub seed: Option<u64>,
    /// tokens fed while priming (the start token and the prompt's).
    pub prompt_tokens: Option<u32>,
    /// instructions of priming (reset, start token, prompt).
    pub prime_instructions: Option<u64>,
    /// the token ids the device generated.
    pub generated_tokens: Vec<u16>,
    /// their text, rebuilt from the device's lines.
    pub generated_text: Option<String>,
    /// the host core's token ids for the same blob, prompt and seed.
    pub host_generated_tokens: Vec<u16>,
    /// the device's text equals the host's `detokenize` of its own ids.
    pub text_matches_host: Option<bool>,
    /// mean instructions per generated token (sample + step).
    pub instructions_per_token: Option<u64>,
    /// fewest instructions of one generated token.
    pub instructions_per_token_min: Option<u64>,
    /// most instructions of one generated token.
    pub instructions_per_token_max: Option<u64>,
}

impl SimReport {
    /// The device exited 0 and, if images were evaluated, matched the host.
    pub fn passed(&self) -> bool {
        self.exit_code == Some(0)
            && self.matches_host != Some(false)
            && self.density.nll_matches_host != Some(false)
            && self.density.samples_match_host != Some(false)
            && self.language.text_matches_host != Some(false)
    }
}

/// The meaning of a firmware exit status (`tinyinfer::link::status`).
pub fn exit_meaning(code: i32) -> &'static str {
    match code {
        // `timeout`'s own statuses: QEMU was stopped, the device did not end.
        124 | 137 => "QEMU timed out",
        _ => u8::try_from(code)
            .ok()
            .and_then(tinyinfer::link::status::meaning)
            .unwrap_or("unknown exit status"),
    }
}

/// Fills `r` from the device's report records (`tinyinfer::link::report`,
/// the file [`REPORT`](super::link::REPORT) on QEMU). A run QEMU stopped
/// (`complete` false) may end inside a record: the records before it count.
///
/// # Errors
/// A report that is not a whole stream of valid records of this protocol
/// version ([`ReportError`](tinyinfer::link::report::ReportError)), records
/// that contradict each other, or counts in cycles.
pub(super) fn parse_report(bytes: &[u8], complete: bool, r: &mut SimReport) -> Result<()> {
    for rec in Reader::new(bytes) {
        let rec = match rec {
            Ok(rec) => rec,
            Err(ReportError::Truncated { at }) if !complete => {
                r.log.push(format!(
                    "(tinyinfer) the device's report ends inside the record at byte {at}: QEMU stopped it"
                ));
                break;
            }
            Err(e) => bail!("the device's report: {e}"),
        };
        record(rec, r)?;
    }
    Ok(())
}

fn record(rec: Record<'_>, r: &mut SimReport) -> Result<()> {
    match rec {
        Record::Boot {
            unit,
            board,
            memory_map,
            arena_bytes,
            ..
        } => {
            ensure!(
                unit == Unit::Instructions,
                "the device counts {unit:?}, not QEMU's instructions"
            );
            r.board = Some(board.to_string());
            r.memory_map = Some(memory_map.to_string());
            r.firmware_arena_bytes = Some(arena_bytes);
        }
        Record::Slot { slot, state } => {
            let state = match state {
                Ok(seq) => format!("valid, sequence {seq}"),
                Err(e) => format!("{e:?}"),
            };
            match slot {
                Slot::A => r.slot_a = Some(state),
                Slot::B => r.slot_b = Some(state),
            }
        }
        Record::Booting {
            source, sequence, ..
        } => {
            r.model_slot = Some(source.name().to_string());
            r.model_sequence = Some(sequence);
        }
        Record::NoValidModel => r.device_error = Some("NoValidModel".into()),
        Record::Classifier { arena_bytes, .. } => r.arena_bytes = Some(arena_bytes),
        Record::SelfTest {
            passed,
            total,
            counts,
            ..
        } => {
            r.selftest_instructions = Some(u64::from(counts));
            r.selftest_matched = Some(passed);
            r.selftest_cases = Some(total);
            r.selftest_passed = Some(passed == total && total > 0);
        }
        Record::NoSelfTest => {
            r.selftest_passed = Some(false);
            r.selftest_cases = Some(0);
        }
        Record::Layer {
            index,
            op,
            input,
            output,
            counts,
            macs,
        } => {
            let instructions = u64::from(counts);
            let anchor = (op == OpKind::Conv2d)
                .then(|| {
                    CMSIS_NN_ANCHORS
                        .iter()
                        .find(|(s, _)| *s == (input[0], input[1], input[2], output[2]))
                        .map(|&(_, a)| a)
                })
                .flatten();
            r.classifier.layers.push(LayerReport {
                index: index.into(),
                op: op.name().to_string(),
                input,
                output,
                instructions,
                macs,
                macs_per_instruction: ratio(macs, instructions),
                instructions_per_mac: (macs > 0).then(|| ratio(instructions, macs)),
                cmsis_nn_instructions_per_mac: anchor,
            });
        }
        Record::Inference { counts, macs } => {
            r.classifier.instructions_per_inference = Some(counts.into());
            r.classifier.macs_per_inference = Some(macs);
            r.macs_per_instruction = Some(ratio(macs, counts.into()));
        }
        Record::Memory {
            static_bytes,
            stack_high_water_bytes,
            stack_region_bytes,
            ..
        } => {
            r.static_ram_bytes = Some(static_bytes);
            r.stack_high_water_bytes = Some(stack_high_water_bytes);
            r.stack_region_bytes = Some(stack_region_bytes);
            r.ram_bytes = Some(static_bytes + stack_high_water_bytes);
        }
        Record::Done { error, .. } => {
            if let Some(e) = error {
                r.device_error = Some(format!("{e:?}"));
            }
        }
        Record::DensityModel {
            arena_bytes,
            streaming_arena_bytes,
            ..
        } => {
            r.arena_bytes = Some(arena_bytes);
            r.density.streaming_arena_bytes = Some(streaming_arena_bytes);
        }
        Record::Nll {
            image,
            nll,
            counts,
            path,
        } => {
            if image == 0 {
                r.density.instructions_per_scored_image = Some(counts);
                r.density.scoring_path = Some(path.name().to_string());
            }
            r.density.device_nll.push(nll);
        }
        Record::Streaming { counts } => {
            r.density.instructions_per_scored_image_streaming = Some(counts);
        }
        Record::SampleBits {
            seed,
            offset,
            pixels,
        } => {
            let images = &mut r.density.sampled_images;
            if offset == 0 {
                images.push((seed, Vec::new()));
            }
            let img = match images.last_mut() {
                Some((s, img)) if *s == seed && img.len() == offset as usize => img,
                _ => bail!("the device's sample bits for seed {seed} at pixel {offset} do not continue an image"),
            };
            img.extend((0..pixels.len()).map(|i| pixels.get(i)));
        }
        Record::Sample {
            seed,
            counts,
            pixels,
            ..
        } => {
            ensure!(
                r.density
                    .sampled_images
                    .last()
                    .is_some_and(|(s, img)| *s == seed && img.len() == pixels as usize),
                "the device reports a sample for seed {seed} without its {pixels} pixels"
            );
            r.density.sample_seeds.push(seed);
            if r.density.instructions_per_sampled_image.is_none() {
                r.density.instructions_per_sampled_image = Some(counts);
            }
        }
        Record::SampleFull { pixels, counts } => {
            r.density.full_sampling_pixels = Some(pixels);
            r.density.full_sampling_instructions = Some(counts);
        }
        Record::LmModel {
            level,
            head,
            k,
            vocab,
            emb_dim,
            params,
            macs_per_token,
            arena_bytes,
            ..
        } => {
            let l = &mut r.language;
            l.level = Some(
                match level {
                    Level::Char => "char",
                    Level::Word => "word",
                }
                .to_string(),
            );
            l.vocab = Some(vocab);
            l.emb_dim = Some(emb_dim);
            l.head = Some(head.name().to_string());
            l.k = Some(k);
            l.params = Some(params);
            l.macs_per_token = Some(macs_per_token);
            r.arena_bytes = Some(arena_bytes);
        }
        Record::LmLayer { hidden, .. } => r.language.hidden.push(hidden),
        Record::LmRequest { seed, .. } => r.language.seed = Some(seed),
        Record::LmPrime { tokens, counts } => {
            r.language.prompt_tokens = Some(tokens);
            r.language.prime_instructions = Some(counts);
        }
        Record::LmTokens(ids) => r.language.generated_tokens.extend(ids.iter()),
        Record::LmText(t) => r
            .language
            .generated_text
            .get_or_insert_with(String::new)
            .push_str(t),
        Record::LmGenerated {
            tokens,
            total,
            min,
            max,
        } => {
            let mean = total / u64::from(tokens.max(1));
            r.language.generated_text.get_or_insert_with(String::new);
            r.language.instructions_per_token = Some(mean);
            r.language.instructions_per_token_min = Some(min);
            r.language.instructions_per_token_max = Some(max);
            if let (Some(m), true) = (r.language.macs_per_token, tokens > 0) {
                r.macs_per_instruction = Some(ratio(m, mean));
            }
        }
    }
    Ok(())
}

pub(super) fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// A human-readable summary of a report.
pub fn summary(r: &SimReport) -> String {
    let mut s = String::new();
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    s += &format!(
        "board            {} on QEMU {} ({})\n",
        r.board.as_deref().unwrap_or("-"),
        r.qemu_machine,
        r.cpu
    );
    s += &format!(
        "exit status {} ({})\n",
        r.exit_code.map_or("-".into(), |c| c.to_string()),
        r.exit_meaning
    );
    if let Some(slot) = &r.model_slot {
        s += &format!(
            "model slot       {slot} (sequence {}); slot a: {}, slot b: {}\n",
            opt(r.model_sequence.map(u64::from)),
            r.slot_a.as_deref().unwrap_or("-"),
            r.slot_b.as_deref().unwrap_or("-")
        );
    }
    if let (Some(ok), Some(n)) = (r.selftest_matched, r.selftest_cases) {
        s += &format!(
            "self-test        {ok}/{n} cases bit-exact in {} instructions\n",
            opt(r.selftest_instructions)
        );
    }
    if !r.classifier.layers.is_empty() {
        s += &format!(
            "{:>3}  {:<16} {:>10} {:>10} {:>12} {:>10} {:>9} {:>9}\n",
            "#", "op", "input", "output", "instructions", "MACs", "instr/MAC", "CMSIS-NN"
        );
        let shape = |v: [u16; 3]| format!("{}x{}x{}", v[0], v[1], v[2]);
        for l in &r.classifier.layers {
            s += &format!(
                "{:>3}  {:<16} {:>10} {:>10} {:>12} {:>10} {:>9} {:>9}\n",
                l.index,
                l.op,
                shape(l.input),
                shape(l.output),
                l.instructions,
                l.macs,
                l.instructions_per_mac
                    .map_or("-".into(), |v| format!("{v:.2}")),
                l.cmsis_nn_instructions_per_mac
                    .map_or("-".into(), |v| format!("{v:.2}")),
            );
        }
    }
    if let (Some(n), Some(m)) = (
        r.classifier.instructions_per_inference,
        r.macs_per_instruction,
    ) {
        s += &format!("inference        {n} instructions, {m:.3} MACs/instruction\n");
        if let Some(ms) = r.estimated_ms_at_64mhz {
            s += &format!(
                "                 ≈ {ms:.0} ms on an nRF52840 at 64 MHz (estimate: one cycle per \
                 instruction; loads, branches and wait states cost more)\n"
            );
        }
    }
    if let Some(n) = r.density.instructions_per_scored_image {
        s += &format!(
            "scored image     {n} instructions ({} path); streaming path {}\n",
            r.density.scoring_path.as_deref().unwrap_or("-"),
            opt(r.density.instructions_per_scored_image_streaming)
        );
    }
    if let Some(ok) = r.density.nll_matches_host {
        s += &format!(
            "NLL              {} stored images, mean {:.2} nats, bit-exact with the host: {}\n",
            r.density.device_nll.len(),
            r.density.device_mean_nll_nats.unwrap_or(f64::NAN),
            if ok { "yes" } else { "NO" }
        );
    }
    if let Some(n) = r.density.instructions_per_sampled_image {
        s += &format!(
            "sampled image    {n} instructions incremental; full recomputation {} (from {} pixels); same images as the host: {}\n",
            opt(r.density.instructions_per_sampled_image_full),
            opt(r.density.full_sampling_pixels.map(u64::from)),
            match r.density.samples_match_host {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            }
        );
    }
    if let (Some(v), Some(d)) = (r.language.vocab, r.language.emb_dim) {
        s += &format!(
            "language model   {} level, vocabulary {v}, d {d}, LSTM {}, head {} K={}, {} parameters, {} MACs/token\n",
            r.language.level.as_deref().unwrap_or("-"),
            r.language.hidden
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join("-"),
            r.language.head.as_deref().unwrap_or("-"),
            opt(r.language.k.map(u64::from)),
            opt(r.language.params),
            opt(r.language.macs_per_token)
        );
    }
    if let Some(n) = r.language.prime_instructions {
        s += &format!(
            "prime            {} tokens in {n} instructions\n",
            opt(r.language.prompt_tokens.map(u64::from))
        );
    }
    if let Some(mean) = r.language.instructions_per_token {
        let yes = |b: Option<bool>| match b {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        s += &format!(
            "generated        {} tokens (seed {}): {mean} instructions/token (min {}, max {}), {:.3} MACs/instruction; same ids as the host: {}, same text: {}\n",
            r.language.generated_tokens.len(),
            opt(r.language.seed),
            opt(r.language.instructions_per_token_min),
            opt(r.language.instructions_per_token_max),
            r.macs_per_instruction.unwrap_or(f64::NAN),
            yes(r.matches_host),
            yes(r.language.text_matches_host)
        );
        if let Some(t) = &r.language.generated_text {
            s += &format!("text             {t:?}\n");
        }
    }
    s += &format!(
        "flash            {} bytes firmware + {} bytes model = {} bytes\n",
        r.firmware_flash_bytes,
        opt(r.model_flash_bytes),
        r.flash_bytes
    );
    let mut by: Vec<_> = r.flash_breakdown.iter().collect();
    by.sort_by(|a, b| b.1.cmp(a.1));
    s += &format!(
        "  firmware by origin: {}\n",
        by.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let (Some(st), Some(hw)) = (r.static_ram_bytes, r.stack_high_water_bytes) {
        let needs = match r.density.streaming_arena_bytes {
            Some(sa) => format!(
                "the model needs {} for the full plan, {sa} streaming",
                opt(r.arena_bytes.map(u64::from))
            ),
            None => format!(
                "of which the model needs {}",
                opt(r.arena_bytes.map(u64::from))
            ),
        };
        s += &format!(
            "RAM              {st} bytes static (arena {}; {needs}) + {hw} bytes stack high-water = {} bytes\n",
            opt(r.firmware_arena_bytes.map(u64::from)),
            st + hw
        );
    }
    if let (Some(n), Some(acc)) = (r.classifier.eval_images, r.classifier.device_accuracy) {
        s += &format!(
            "device accuracy  {:.2} % on {n} test images; host core {:.2} %; bit-exact with the host: {} ({} images differ)\n",
            100.0 * acc,
            100.0 * r.classifier.host_accuracy.unwrap_or(f64::NAN),
            if r.matches_host == Some(true) { "yes" } else { "NO" },
            r.classifier.mismatched_images.unwrap_or(0)
        );
    }
    s += &format!("QEMU ran {:.1} s\n", r.qemu_seconds);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinyinfer::link::report::{Pixels, TokenIds, MAX_FRAME, VERSION};
    use tinyinfer::link::slots::{SlotError, Source};

    fn stream(records: &[Record<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut b = [0u8; MAX_FRAME];
        for r in records {
            let n = r.emit(&mut b).unwrap();
            out.extend_from_slice(&b[..n]);
        }
        out
    }

    fn boot(unit: Unit) -> Record<'static> {
        Record::Boot {
            version: VERSION,
            unit,
            partition_address: 0x4_0000,
            partition_bytes: 1 << 20,
            arena_bytes: 25_600,
            board: "mps2-an386-nrf-budget",
            memory_map: "memory-qemu-nrf-budget.x",
        }
    }

    /// The records fill the report's fields as the firmware's lines did:
    /// slots, samples rebuilt from their bits, text from its pieces, the
    /// device's error by name.
    #[test]
    fn records_fill_the_report() {
        let image: Vec<u8> = (0..1500).map(|i| (i % 3 == 0) as u8).collect();
        let bytes = stream(&[
            boot(Unit::Instructions),
            Record::Slot {
                slot: Slot::A,
                state: Err(SlotError::Incomplete),
            },
            Record::Slot {
                slot: Slot::B,
                state: Ok(4),
            },
            Record::Booting {
                source: Source::Slot(Slot::B),
                sequence: 4,
                bytes: 100,
            },
            Record::SampleBits {
                seed: 9,
                offset: 0,
                pixels: Pixels::Bytes(&image[..1024]),
            },
            Record::SampleBits {
                seed: 9,
                offset: 1024,
                pixels: Pixels::Bytes(&image[1024..]),
            },
            Record::Sample {
                seed: 9,
                counts: 77,
                ones: 500,
                pixels: 1500,
            },
            Record::LmTokens(TokenIds::Ids(&[3, 1, 4])),
            Record::LmText("to be\n"),
            Record::LmText("or"),
            Record::Memory {
                static_bytes: 100,
                arena_bytes: 80,
                stack_high_water_bytes: 20,
                stack_region_bytes: 1000,
            },
            Record::Done {
                status: 25,
                error: Some(tinyinfer::Error::ArenaTooSmall { needed: 9, got: 3 }),
            },
        ]);
        let mut r = SimReport::default();
        parse_report(&bytes, true, &mut r).unwrap();
        assert_eq!(r.board.as_deref(), Some("mps2-an386-nrf-budget"));
        assert_eq!(r.firmware_arena_bytes, Some(25_600));
        assert_eq!(r.slot_a.as_deref(), Some("Incomplete"));
        assert_eq!(r.slot_b.as_deref(), Some("valid, sequence 4"));
        assert_eq!(
            (r.model_slot.as_deref(), r.model_sequence),
            (Some("b"), Some(4))
        );
        assert_eq!(r.density.sampled_images, vec![(9, image)]);
        assert_eq!(r.density.sample_seeds, vec![9]);
        assert_eq!(r.density.instructions_per_sampled_image, Some(77));
        assert_eq!(r.language.generated_tokens, vec![3, 1, 4]);
        assert_eq!(r.language.generated_text.as_deref(), Some("to be\nor"));
        assert_eq!(r.ram_bytes, Some(120));
        assert_eq!(
            r.device_error.as_deref(),
            Some("ArenaTooSmall { needed: 9, got: 3 }")
        );
    }

    /// A report cut inside a record fails a run that ended on its own, and
    /// keeps the records before the cut when QEMU was stopped; counts in
    /// cycles and samples without their pixels are refused.
    #[test]
    fn cut_or_inconsistent_reports_are_refused() {
        let bytes = stream(&[
            boot(Unit::Instructions),
            Record::Inference {
                counts: 5,
                macs: 10,
            },
        ]);
        let cut = &bytes[..bytes.len() - 1];
        let err = parse_report(cut, true, &mut SimReport::default()).unwrap_err();
        assert!(err.to_string().contains("cut short"), "{err}");
        let mut r = SimReport::default();
        parse_report(cut, false, &mut r).unwrap();
        assert_eq!(r.board.as_deref(), Some("mps2-an386-nrf-budget"));
        assert_eq!(r.classifier.instructions_per_inference, None);
        assert!(r.log.last().unwrap().contains("QEMU stopped it"));

        let cycles = stream(&[boot(Unit::Cycles)]);
        assert!(parse_report(&cycles, true, &mut SimReport::default()).is_err());
        let orphan = stream(&[
            boot(Unit::Instructions),
            Record::Sample {
                seed: 1,
                counts: 1,
                ones: 0,
                pixels: 4,
            },
        ]);
        assert!(parse_report(&orphan, true, &mut SimReport::default()).is_err());
        let gap = stream(&[
            boot(Unit::Instructions),
            Record::SampleBits {
                seed: 1,
                offset: 8,
                pixels: Pixels::Bytes(&[1; 8]),
            },
        ]);
        assert!(parse_report(&gap, true, &mut SimReport::default()).is_err());
        assert!(
            parse_report(b"tinyinfer-firmware 0.1.0", true, &mut SimReport::default()).is_err()
        );
    }

    #[test]
    fn exit_meanings_are_distinct_for_model_errors() {
        let m: std::collections::HashSet<_> = (10..=27).map(exit_meaning).collect();
        assert_eq!(m.len(), 18);
    }

    #[test]
    fn json_keys_stay_flat() {
        let v = serde_json::to_value(SimReport::default()).unwrap();
        for key in [
            "exit_code",
            "matches_host",
            "instructions_per_inference",
            "layers",
            "device_nll",
            "samples_match_host",
            "lm_level",
            "lm_hidden",
            "generated_text",
            "instructions_per_token",
            "model_slot",
            "model_sequence",
            "selftest_instructions",
        ] {
            assert!(v.get(key).is_some(), "--json lacks {key}");
        }
        assert!(v.get("classifier").is_none() && v.get("level").is_none());
    }
}
