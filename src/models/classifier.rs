//! Image classification: raw u8 pixels in; class, int8 scores and probabilities out.

use micromath::F32Ext;

use super::graph::{self, Observer};
use crate::format::{Family, Model, TensorRepr};
use crate::{Error, Result};

/// Runs a classifier model.
///
/// Input convention: the exporter quantizes the input tensor so that the
/// int8 value of a raw pixel `p` is exactly `p − 128` (the driver does only
/// that subtraction). Output: tensor `1×1×classes` of int8 scores.
#[derive(Clone, Copy, Debug)]
pub struct Classifier<'m> {
    model: Model<'m>,
    input: TensorRepr,
    output: TensorRepr,
}

/// The answer for one input. `scores` borrows the caller's arena.
#[derive(Debug)]
pub struct Prediction<'a> {
    /// Index of the highest score (the lowest index among ties).
    pub class: usize,
    /// int8 scores, one per class.
    pub scores: &'a [i8],
    /// Scale of the scores.
    pub scale: f32,
    /// Zero point of the scores.
    pub zero_point: i32,
}

/// Outcome of the stored self-test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SelfTestReport {
    /// Cases whose int8 output equals the stored one byte for byte.
    pub passed: u32,
    /// Cases run.
    pub total: u32,
    /// Index of the first failing case, if any.
    pub first_failure: Option<u32>,
}

impl SelfTestReport {
    /// Counts case `case`, passed or not (the first failure is kept).
    pub(crate) fn record(&mut self, case: usize, passed: bool) {
        self.total += 1;
        if passed {
            self.passed += 1;
        } else if self.first_failure.is_none() {
            self.first_failure = Some(case as u32);
        }
    }
}

impl<'m> Classifier<'m> {
    /// Wraps a checked model.
    ///
    /// # Errors
    /// [`Error::WrongFamily`] if the model is not a classifier;
    /// [`Error::BadGraph`] if its output is not a `1×1×classes` vector;
    /// [`Error::BadOp`] for an op this build cannot run (an add or a masked
    /// conv without feature `density`; the exporter writes neither in a
    /// classifier).
    pub fn new(model: Model<'m>) -> Result<Self> {
        if model.family() != Family::Classifier {
            return Err(Error::WrongFamily);
        }
        graph::check_ops(&model)?;
        let (input, output) = (model.input(), model.output());
        if output.h != 1 || output.w != 1 || output.c < 2 || input.is_empty() {
            return Err(Error::BadGraph);
        }
        Ok(Classifier {
            model,
            input,
            output,
        })
    }

    /// The model.
    pub fn model(&self) -> &Model<'m> {
        &self.model
    }

    /// Pixels per input (`h·w·c` of the input tensor).
    pub fn input_len(&self) -> usize {
        self.input.len() as usize
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.output.c as usize
    }

    /// Classifies raw pixels.
    ///
    /// # Errors
    /// [`Error::BadLength`] for the wrong number of pixels,
    /// [`Error::ArenaTooSmall`] with the size needed.
    pub fn classify<'a>(&self, pixels: &[u8], arena: &'a mut [u8]) -> Result<Prediction<'a>> {
        self.classify_observed(pixels, arena, &mut ())
    }

    /// [`classify`](Self::classify) with hooks around every op.
    ///
    /// # Errors
    /// As [`classify`](Self::classify).
    pub fn classify_observed<'a>(
        &self,
        pixels: &[u8],
        arena: &'a mut [u8],
        obs: &mut impl Observer,
    ) -> Result<Prediction<'a>> {
        if pixels.len() != self.input_len() {
            return Err(Error::BadLength {
                expected: self.input_len() as u32,
                got: pixels.len() as u32,
            });
        }
        graph::check_arena(&self.model, arena)?;
        let dst = arena
            .get_mut(self.input.arena_range())
            .ok_or(Error::BadGraph)?;
        for (d, &p) in dst.iter_mut().zip(pixels) {
            *d = p ^ 0x80; // (p − 128) as i8, in two's complement
        }
        graph::run(&self.model, arena, obs)?;
        let scores: &'a [i8] = bytemuck::cast_slice(
            arena
                .get(self.output.arena_range())
                .ok_or(Error::BadGraph)?,
        );
        let mut class = 0;
        for (i, &s) in scores.iter().enumerate() {
            if s > scores[class] {
                class = i;
            }
        }
        Ok(Prediction {
            class,
            scores,
            scale: self.output.scale,
            zero_point: self.output.zero_point,
        })
    }

    /// Runs the self-test stored in the model, if any.
    ///
    /// # Errors
    /// [`Error::BadSelfTest`] when the model has none; arena errors as [`classify`](Self::classify).
    pub fn selftest(&self, arena: &mut [u8]) -> Result<SelfTestReport> {
        let st = self.model.selftest().ok_or(Error::BadSelfTest)?;
        let mut report = SelfTestReport {
            passed: 0,
            total: 0,
            first_failure: None,
        };
        for i in 0..st.count() {
            let (input, expected) = st.case(i).ok_or(Error::BadSelfTest)?;
            let got = self.classify(input, arena)?;
            report.record(i, got.scores == expected);
        }
        Ok(report)
    }
}

impl Prediction<'_> {
    /// Softmax over the dequantized scores, written into `out` (one per class).
    ///
    /// Uses micromath's `exp`, so host and device give the same bits.
    ///
    /// # Errors
    /// [`Error::BadLength`] if `out` has not one slot per class.
    pub fn probabilities(&self, out: &mut [f32]) -> Result<()> {
        if out.len() != self.scores.len() {
            return Err(Error::BadLength {
                expected: self.scores.len() as u32,
                got: out.len() as u32,
            });
        }
        let max = self.scores.iter().copied().max().unwrap_or(0) as i32;
        let mut sum = 0.0f32;
        for (o, &s) in out.iter_mut().zip(self.scores) {
            *o = F32Ext::exp((s as i32 - max) as f32 * self.scale);
            sum += *o;
        }
        for o in out.iter_mut() {
            *o /= sum;
        }
        Ok(())
    }

    /// The `K` highest-scoring classes, best first (ties: lower index first).
    pub fn top_k<const K: usize>(&self) -> heapless::Vec<(usize, i8), K> {
        let mut top: heapless::Vec<(usize, i8), K> = heapless::Vec::new();
        for (i, &s) in self.scores.iter().enumerate() {
            let at = top.iter().position(|&(_, t)| s > t).unwrap_or(top.len());
            if at < K {
                if top.is_full() {
                    top.pop();
                }
                // Cannot fail: there is room after the pop.
                let _ = top.insert(at, (i, s));
            }
        }
        top
    }
}
