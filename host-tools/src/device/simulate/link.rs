//! The files the host and a semihosted app exchange over semihosting, in
//! QEMU's working directory: the request the host writes to [`EVAL_IN`]
//! (`TIEI` evaluation images, `TISR` sample request, `TILM` generation
//! request), the classifier's `TIEO` scores the device writes to
//! [`EVAL_OUT`] and its report records in [`REPORT`]; and, per family, the
//! check of the device's answers against the host core's.

use anyhow::{ensure, Context, Result};
use tinyinfer::link::files::{EvalRequest, EvalResponse, LmRequest, SampleRequest};
use tinyinfer::models::{DensityModel, LanguageModel};

use super::report::SimReport;
use super::SimulateArgs;
use crate::common::blob::AlignedBlob;
use crate::common::data::Dataset;
use crate::common::metrics::{accuracy, argmax_rows};
use crate::families::classifier::run::core_scores;
use crate::families::density::run::{mean_nats, write_png_grid};
use crate::families::language::run::{detokenize, generate};

/// Evaluation input file, in QEMU's working directory (firmware/src/semihosted.rs).
pub const EVAL_IN: &str = "tinyinfer-eval.in";
/// Evaluation output file, written by the device.
pub const EVAL_OUT: &str = "tinyinfer-eval.out";
/// The device's report records (`tinyinfer::link::report`), written by the
/// device (firmware/src/semihosted.rs).
pub const REPORT: &str = "tinyinfer-report.bin";
/// Longest prompt the firmware takes: its input buffer (`MAX_INPUT_BYTES`, firmware/src/lib.rs).
pub const LM_MAX_PROMPT_BYTES: usize = 1024;
/// Most tokens one request may ask for (`MAX_TOKENS`, firmware/src/language.rs).
pub const LM_MAX_TOKENS: u32 = 1 << 16;

/// The evaluation input stream (firmware/src/eval.rs).
pub fn eval_input(images: &[u8], labels: &[u8], input_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + labels.len() * (input_len + 1));
    let mut head = [0u8; EvalRequest::LEN];
    EvalRequest {
        count: labels.len() as u32,
        input_len: input_len as u32,
        reserved: 0,
    }
    .emit(&mut head);
    out.extend_from_slice(&head);
    for (img, &l) in images.chunks(input_len).zip(labels) {
        out.extend_from_slice(img);
        out.push(l);
    }
    out
}

/// Parses the device's output stream into `(count, classes, scores)`.
pub fn eval_output(b: &[u8]) -> Result<(usize, usize, Vec<i8>)> {
    let head = EvalResponse::parse(b).context("the device wrote no evaluation output header")?;
    let scores: Vec<i8> = b[EvalResponse::LEN..].iter().map(|&x| x as i8).collect();
    Ok((head.count as usize, head.classes as usize, scores))
}

/// The sample request (firmware/src/density.rs): `"TISR"`, seed, images,
/// pixels of full-recomputation sampling to time.
///
/// # Errors
/// `--samples` outside `1..=64`.
pub fn sample_request(a: &SimulateArgs) -> Result<Vec<u8>> {
    ensure!((1..=64).contains(&a.samples), "--samples must be in 1..=64");
    let mut req = [0u8; SampleRequest::LEN];
    SampleRequest {
        seed: a.seed,
        count: a.samples,
        full_pixels: a.full_pixels,
    }
    .emit(&mut req);
    Ok(req.to_vec())
}

/// The generation request (firmware/src/language.rs): `"TILM"`, seed,
/// tokens, prompt length, prompt bytes.
pub fn lm_request(a: &SimulateArgs) -> Result<Vec<u8>> {
    ensure!(
        a.prompt.len() <= LM_MAX_PROMPT_BYTES,
        "--prompt has {} bytes; the firmware takes at most {LM_MAX_PROMPT_BYTES}",
        a.prompt.len()
    );
    ensure!(
        a.tokens <= LM_MAX_TOKENS,
        "--tokens must be at most {LM_MAX_TOKENS}"
    );
    let mut head = [0u8; LmRequest::LEN];
    LmRequest {
        seed: a.seed,
        tokens: a.tokens,
        prompt_len: a.prompt.len() as u32,
    }
    .emit(&mut head);
    let mut req = head.to_vec();
    req.extend_from_slice(a.prompt.as_bytes());
    Ok(req)
}

/// Compares the device's int8 scores of the evaluation images with the host core's.
pub(super) fn check_classifier(
    test: &Dataset,
    blob: &AlignedBlob,
    out: &[u8],
    r: &mut SimReport,
) -> Result<()> {
    let (count, classes, dev) = eval_output(out).context("reading the device's predictions")?;
    let (host, host_classes) = core_scores(blob, &test.images)?;
    ensure!(
        classes == host_classes,
        "device reports {classes} classes, host {host_classes}"
    );
    let done = dev.len() / classes.max(1);
    let mismatched = (0..test.len())
        .filter(|&i| {
            dev.get(i * classes..(i + 1) * classes) != Some(&host[i * classes..(i + 1) * classes])
        })
        .count();
    let dpred = argmax_rows(&dev[..done * classes], classes);
    let hpred = argmax_rows(&host, classes);
    r.classifier.eval_images = Some(done.min(count));
    r.classifier.device_accuracy = Some(accuracy(&dpred, &test.labels[..dpred.len()]));
    r.classifier.host_accuracy = Some(accuracy(&hpred, &test.labels));
    r.classifier.mismatched_images = Some(mismatched);
    r.matches_host = Some(mismatched == 0 && done == test.len() && count == test.len());
    Ok(())
}

/// Compares the device's token ids and text with the host core's
/// generation for the same blob, prompt and seed.
pub(super) fn check_language(
    a: &SimulateArgs,
    lm: &LanguageModel<'_>,
    blob: &AlignedBlob,
    r: &mut SimReport,
) -> Result<()> {
    // Compared whenever the device finished generating: also after a
    // failed or missing self-test (status 1 or 2), which the exit code reports.
    if r.language.generated_text.is_none() {
        return Ok(());
    }
    let host = generate(blob, &a.prompt, a.tokens as usize, a.seed)
        .context("generating on the host core")?;
    let text = detokenize(lm, &host);
    r.matches_host = Some(host == r.language.generated_tokens);
    r.language.text_matches_host =
        Some(r.language.generated_text.as_deref() == Some(text.as_str()));
    r.language.host_generated_tokens = host;
    Ok(())
}

/// Compares the device's NLLs and samples with the host core's, and writes
/// the PNG of the device's samples.
pub(super) fn check_density(
    a: &SimulateArgs,
    dm: &DensityModel<'_>,
    r: &mut SimReport,
) -> Result<()> {
    let (h, w) = dm.shape();
    let px = h * w;
    if let Some(st) = dm.model().selftest() {
        let mut arena = vec![0u8; dm.arena_len()];
        let mut host = Vec::new();
        for i in 0..st.count() {
            let (img, _) = st.case(i).context("self-test case")?;
            host.push(
                dm.nll(img, &mut arena)
                    .map_err(|e| anyhow::anyhow!("host core: {e}"))?
                    .0,
            );
        }
        r.density.nll_matches_host = Some(host == r.density.device_nll);
        if !r.density.device_nll.is_empty() {
            r.density.device_mean_nll_nats = Some(mean_nats(&r.density.device_nll));
        }
    }
    // The device's images, from its SampleBits records.
    let images = std::mem::take(&mut r.density.sampled_images);
    for (seed, img) in &images {
        ensure!(
            img.len() == px,
            "the device sampled {} pixels for seed {seed}; the model's images have {px}",
            img.len()
        );
    }
    if r.exit_code == Some(0) {
        let mut arena = vec![0u8; dm.sample_arena_len()];
        let mut same = images.len() == a.samples as usize;
        for (seed, img) in &images {
            let mut host = vec![0u8; px];
            dm.sample(
                &mut tinyinfer::rng::Pcg32::seeded(*seed),
                &mut host,
                &mut arena,
            )
            .map_err(|e| anyhow::anyhow!("host core: {e}"))?;
            same &= &host == img;
        }
        r.density.samples_match_host = Some(same);
    }
    if let (Some(n), Some(t)) = (
        r.density.full_sampling_pixels,
        r.density.full_sampling_instructions,
    ) {
        if n > 0 {
            r.density.instructions_per_sampled_image_full = Some(t * px as u64 / n as u64);
        }
    }
    if let Some(p) = &a.png {
        let all: Vec<u8> = images.iter().flat_map(|(_, i)| i.clone()).collect();
        write_png_grid(p, &all, (h, w), 8, 3)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_streams_roundtrip_headers() {
        let input = eval_input(&[1, 2, 3, 4, 5, 6], &[7, 8], 3);
        assert_eq!(&input[..4], b"TIEI");
        assert_eq!(input.len(), 16 + 2 * 4);
        assert_eq!(&input[16..20], &[1, 2, 3, 7]);
        let mut out = b"TIEO".to_vec();
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&[0xFF, 1, 2]);
        assert_eq!(eval_output(&out).unwrap(), (1, 3, vec![-1, 1, 2]));
        assert!(eval_output(b"nope").is_err());
    }
}
