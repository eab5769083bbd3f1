//! A classifier `.tinf` on the host core: its blob built from a checkpoint
//! (with self-test records), int8 scores of many images, and `eval`'s
//! accuracy and confusion against the float checkpoint.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use serde::Serialize;
use tinyinfer::models::Classifier;

use super::checkpoint::{float_logits, load_folded};
use super::quantize::{calibrate_net, quantize};
use crate::common::blob::AlignedBlob;
use crate::common::data::{fashion_mnist_dir, load_fashion_mnist, Split, CLASS_NAMES, PIXELS};
use crate::common::inspect::inspect_graph;
use crate::common::metrics::{accuracy, argmax_rows, confusion};
use crate::common::parallel::par_over_images;
use crate::families::{emit_report, EvalArgs, ExportArgs, Exported};

/// int8 scores of every image, computed by the core (in parallel, one arena per thread).
pub fn core_scores(blob: &AlignedBlob, images: &[u8]) -> Result<(Vec<i8>, usize)> {
    let model = blob.model()?;
    let clf = Classifier::new(model).map_err(|e| anyhow::anyhow!("not a classifier: {e}"))?;
    let (px, classes) = (clf.input_len(), clf.classes());
    let scores = par_over_images(images, px, classes, model.arena_len(), |arena, img, o| {
        let p = clf
            .classify(img, arena)
            .map_err(|e| anyhow::anyhow!("core: {e}"))?;
        o.copy_from_slice(p.scores);
        Ok(())
    })?;
    Ok((scores, classes))
}

/// Folds the checkpoint, calibrates on the first `--calib` *training* images,
/// quantizes, and adds `--selftest` test images with the scores the host
/// core computes for them.
pub(super) fn export(a: &ExportArgs) -> Result<Exported> {
    let net = load_folded(&a.checkpoint)
        .with_context(|| format!("loading checkpoint {}", a.checkpoint.display()))?;
    let dir = fashion_mnist_dir(a.data.as_deref());
    let train_set = load_fashion_mnist(&dir, Split::Train)?.take(a.calib);
    let cal = calibrate_net(&net, &train_set.images)?;
    let q = quantize(&net, &cal)?;

    let blob = if a.selftest > 0 {
        let test = load_fashion_mnist(&dir, Split::Test)?.take(a.selftest);
        let plain = AlignedBlob::new(&q.to_bytes(None)?);
        let (scores, classes) = core_scores(&plain, &test.images)?;
        let mut recs = Vec::new();
        for (img, s) in test.images.chunks(PIXELS).zip(scores.chunks(classes)) {
            recs.extend_from_slice(img);
            recs.extend(s.iter().map(|&v| v as u8));
            while recs.len() % 4 != 0 {
                recs.push(0);
            }
        }
        q.to_bytes(Some((PIXELS as u32, classes as u32, &recs)))?
    } else {
        q.to_bytes(None)?
    };
    let details = format!(
        "{} bytes, arena {} bytes, {} params, calibrated on {} training images",
        blob.len(),
        q.arena_len,
        q.params,
        cal.images
    );
    Ok(Exported {
        blob,
        arena_bytes: q.arena_len as usize,
        params: q.params,
        details,
    })
}

/// What `tinyinfer eval` reports for a classifier.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// The blob.
    pub model: PathBuf,
    /// Accuracy of the int8 model through the core.
    pub int8_accuracy: f64,
    /// Accuracy of the float checkpoint (with `--checkpoint`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub float_accuracy: Option<f64>,
    /// `100 · (float − int8)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantization_loss_points: Option<f64>,
    /// Fraction of images where int8 and float predict the same class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub int8_float_agreement: Option<f64>,
    /// Parameters stored.
    pub params: usize,
    /// Multiply-accumulates per inference.
    pub macs: u64,
    /// Blob bytes.
    pub blob_bytes: usize,
    /// Arena bytes.
    pub arena_bytes: usize,
    /// Test images evaluated.
    pub test_images: usize,
    /// Seconds the core took on the host.
    pub host_seconds: f64,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u32>>,
}

/// `tinyinfer eval` of a classifier: int8 (core) against float accuracy on
/// the Fashion-MNIST test images; prints a table or JSON.
pub fn eval(a: &EvalArgs, blob: &AlignedBlob) -> Result<EvalReport> {
    let model = blob
        .model()
        .with_context(|| format!("checking {}", a.model.display()))?;
    let info = inspect_graph(&model)?;
    // Fashion-MNIST: 28×28×1 images, 10 classes. Anything else would score
    // pieces of images, or labels the model cannot output.
    let (i, o) = (model.input(), model.output());
    ensure!(
        (i.h, i.w, i.c) == (28, 28, 1) && (o.h, o.w, o.c) == (1, 1, 10),
        "the model maps {}×{}×{} inputs to {} classes; Fashion-MNIST has 28×28×1 images and 10 classes",
        i.h,
        i.w,
        i.c,
        o.c
    );
    let dir = fashion_mnist_dir(a.data.as_deref());
    let mut test = load_fashion_mnist(&dir, Split::Test)?;
    if let Some(n) = a.limit {
        ensure!(n > 0, "--limit must be at least 1");
        test = test.take(n);
    }
    let t0 = Instant::now();
    let (scores, classes) = core_scores(blob, &test.images)?;
    let host_seconds = t0.elapsed().as_secs_f64();
    let pred = argmax_rows(&scores, classes);
    let int8_accuracy = accuracy(&pred, &test.labels);
    let (mut float_accuracy, mut agreement) = (None, None);
    if let Some(ck) = &a.checkpoint {
        let logits = float_logits(ck, &test.images)
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
    if emit_report(a, &report)? {
        return Ok(report);
    }
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
    Ok(report)
}
