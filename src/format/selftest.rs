//! The `SELFTEST` section: inputs with the outputs the host core computed.

use super::{u16_at, u32_at, Model};
use crate::{Error, Result};

/// Longest language-model self-test prompt, in tokens.
pub const MAX_LM_PROMPT: usize = 256;
/// Most top-k entries of one language-model self-test case.
pub const MAX_LM_TOP: usize = 8;
/// Bytes of one top-k entry ([`LmTop`]).
pub const LM_TOP_LEN: usize = 12;

/// Self-test cases stored by the exporter: inputs and the outputs the host
/// core produced for them.
///
/// Layout: `count u32, input_len u32, output_len u32, reserved u32`, then
/// `count` records of `input_len` input bytes followed by `output_len`
/// expected output bytes, each record padded to 4 bytes.
///
/// Graph families ([`case`](Self::case)): the input tensor's bytes and the
/// output tensor's int8 values.
///
/// Language models ([`lm_case`](Self::lm_case)): the input is a prompt of
/// `P = input_len / 2` token ids (`u16`, 1 ≤ P ≤ [`MAX_LM_PROMPT`]), fed in
/// order from the zero state; the output is the `N = output_len / 12` most
/// probable next tokens (1 ≤ N ≤ min([`MAX_LM_TOP`], V)), most probable
/// first, each `id u16, reserved u16 (0), p u32 (Q32), log_prob i32 (Q16
/// nats, ≤ 0)` ([`LmTop`]). The checker refuses a section with no case, an
/// id ≥ V, a non-zero reserved field, a positive log-prob, a repeated id,
/// or entries out of the core's top-k order (p descending, ties to the
/// smaller id).
#[derive(Clone, Copy, Debug)]
pub struct SelfTest<'a> {
    pub(super) bytes: &'a [u8],
}

impl<'a> SelfTest<'a> {
    /// Header bytes of the section.
    pub const HEADER_LEN: usize = 16;

    pub(super) fn check(&self, model: &Model<'_>) -> Result<()> {
        let (count, il, ol) = (self.count(), self.input_len(), self.output_len());
        let ok = u32_at(self.bytes, 12) == 0
            && il == model.input().len() as usize
            && ol == model.output().len() as usize
            && self
                .record_len()
                .checked_mul(count)
                .and_then(|n| n.checked_add(Self::HEADER_LEN))
                == Some(self.bytes.len());
        ok.then_some(()).ok_or(Error::BadSelfTest)
    }

    /// The checks of a language model's section with vocabulary `v` (see
    /// the type's documentation).
    #[cfg(feature = "language")]
    pub(super) fn check_lm(&self, v: usize) -> Result<()> {
        let (count, il, ol) = (self.count(), self.input_len(), self.output_len());
        let top = ol / LM_TOP_LEN;
        let shape = u32_at(self.bytes, 12) == 0
            && count > 0
            && il % 2 == 0
            && (1..=MAX_LM_PROMPT).contains(&(il / 2))
            && ol % LM_TOP_LEN == 0
            && (1..=MAX_LM_TOP.min(v)).contains(&top)
            && self
                .record_len()
                .checked_mul(count)
                .and_then(|n| n.checked_add(Self::HEADER_LEN))
                == Some(self.bytes.len());
        if !shape {
            return Err(Error::BadSelfTest);
        }
        for i in 0..count {
            let case = self.lm_case(i).ok_or(Error::BadSelfTest)?;
            if !case.is_valid(v) {
                return Err(Error::BadSelfTest);
            }
        }
        Ok(())
    }

    /// Language-model case `i` (see the type's documentation); checked at
    /// load for a language model's section.
    pub fn lm_case(&self, i: usize) -> Option<LmCase<'a>> {
        let (prompt, top) = self.case_bytes(i)?;
        Some(LmCase { prompt, top })
    }

    /// Number of cases.
    pub fn count(&self) -> usize {
        u32_at(self.bytes, 0) as usize
    }

    /// Bytes of one input.
    pub fn input_len(&self) -> usize {
        u32_at(self.bytes, 4) as usize
    }

    /// Bytes of one expected output.
    pub fn output_len(&self) -> usize {
        u32_at(self.bytes, 8) as usize
    }

    fn record_len(&self) -> usize {
        (self
            .input_len()
            .saturating_add(self.output_len())
            .saturating_add(3))
            & !3
    }

    /// Case `i`: raw input bytes and the expected int8 output.
    pub fn case(&self, i: usize) -> Option<(&'a [u8], &'a [i8])> {
        let (input, out) = self.case_bytes(i)?;
        Some((input, bytemuck::cast_slice(out)))
    }

    fn case_bytes(&self, i: usize) -> Option<(&'a [u8], &'a [u8])> {
        let start = i
            .checked_mul(self.record_len())?
            .checked_add(Self::HEADER_LEN)?;
        let rec = self.bytes.get(start..)?;
        let input = rec.get(..self.input_len())?;
        let out = rec.get(self.input_len()..self.input_len().checked_add(self.output_len())?)?;
        Some((input, out))
    }
}

/// One expected top-k entry of a language-model self-test case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LmTop {
    /// Token id.
    pub id: u16,
    /// `P(id | prompt)` in Q32, as [`Session::top_k`](crate::models::Session::top_k) gives it.
    pub p: u32,
    /// `log P(id | prompt)` in Q16 nats, as [`Session::log_prob`](crate::models::Session::log_prob) gives it.
    pub log_prob: i32,
}

/// One language-model self-test case: a prompt of token ids and the top-k
/// entries the host core computed after it.
#[derive(Clone, Copy, Debug)]
pub struct LmCase<'a> {
    prompt: &'a [u8],
    top: &'a [u8],
}

impl<'a> LmCase<'a> {
    /// Tokens of the prompt.
    pub fn prompt_len(&self) -> usize {
        self.prompt.len() / 2
    }

    /// The prompt's token ids, in order.
    pub fn prompt(&self) -> impl Iterator<Item = u16> + 'a {
        self.prompt
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    /// Entries of the expected top-k list.
    pub fn top_len(&self) -> usize {
        self.top.len() / LM_TOP_LEN
    }

    /// Entry `j` of the expected top-k list, most probable first.
    pub fn top(&self, j: usize) -> Option<LmTop> {
        let e = self
            .top
            .get(j.checked_mul(LM_TOP_LEN)?..)?
            .get(..LM_TOP_LEN)?;
        Some(LmTop {
            id: u16_at(e, 0),
            p: u32_at(e, 4),
            log_prob: u32_at(e, 8) as i32,
        })
    }

    #[cfg(feature = "language")]
    fn is_valid(&self, v: usize) -> bool {
        if self.prompt().any(|t| t as usize >= v) {
            return false;
        }
        let mut prev: Option<LmTop> = None;
        for j in 0..self.top_len() {
            let (Some(e), Some(raw)) = (self.top(j), self.top.get(j * LM_TOP_LEN..)) else {
                return false;
            };
            if e.id as usize >= v || u16_at(raw, 2) != 0 || e.log_prob > 0 {
                return false;
            }
            // The core's order: p descending, ties to the smaller id.
            if prev.is_some_and(|p| p.p < e.p || (p.p == e.p && p.id >= e.id)) {
                return false;
            }
            // No id twice (N ≤ MAX_LM_TOP: a quadratic check is cheap).
            if (0..j).any(|i| self.top(i).map(|t| t.id) == Some(e.id)) {
                return false;
            }
            prev = Some(e);
        }
        true
    }
}
