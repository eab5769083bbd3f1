//! The `SELFTEST` section: inputs with the outputs the host core computed.

use super::{u32_at, Model};
use crate::{Error, Result};

/// Self-test cases stored by the exporter: inputs and the outputs the host
/// core produced for them.
///
/// Layout: `count u32, input_len u32, output_len u32, reserved u32`, then
/// `count` records of `input_len` input bytes followed by `output_len`
/// expected output bytes, each record padded to 4 bytes.
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
        let start = i
            .checked_mul(self.record_len())?
            .checked_add(Self::HEADER_LEN)?;
        let rec = self.bytes.get(start..)?;
        let input = rec.get(..self.input_len())?;
        let out = rec.get(self.input_len()..self.input_len().checked_add(self.output_len())?)?;
        Some((input, bytemuck::cast_slice(out)))
    }
}
