//! Writing models (feature `emit`): the same layout the checker reads.

use super::{
    field, OpRepr, SectionKind, TensorRepr, CRC32, CRC_LEN, HEADER_LEN, MAGIC, SECTION_ENTRY_LEN,
    VERSION,
};
use super::{Family, SelfTest};
use crate::{Error, Result};

/// Everything a model blob holds, borrowed: what the exporter fills in.
#[derive(Clone, Copy, Debug)]
pub struct ModelRepr<'a> {
    /// Model family.
    pub family: Family,
    /// Exact arena bytes needed (the buffer plan's high-water mark).
    pub arena_len: u32,
    /// Tensors; tensor 0 is the graph input.
    pub tensors: &'a [TensorRepr],
    /// Ops in execution order; the last op's output is the graph output.
    pub ops: &'a [OpRepr],
    /// The DATA section (offsets in ops point into it).
    pub data: &'a [u8],
    /// Optional self-test: `(input_len, output_len, records)` where records
    /// holds `count` records of input then expected output, each padded to 4 bytes.
    pub selftest: Option<(u32, u32, &'a [u8])>,
    /// The HEAD section's bytes (density models: a [`super::BernoulliHead`]).
    pub head: Option<&'a [u8]>,
    /// The LM section's bytes (language models; see [`super::LmSpec`]).
    pub lm: Option<&'a [u8]>,
    /// The VOCAB section's bytes (language models; see [`super::Vocab`]).
    pub vocab: Option<&'a [u8]>,
}

const fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

impl ModelRepr<'_> {
    fn sections(&self) -> ([(SectionKind, usize); 7], usize) {
        let mut list = [(SectionKind::Data, 0); 7];
        let mut n = 0;
        let mut push = |k: SectionKind, len: usize| {
            list[n] = (k, len);
            n += 1;
        };
        // A language model has no tensor graph: no TENSORS or OPS section.
        if !self.tensors.is_empty() || !self.ops.is_empty() {
            push(SectionKind::Tensors, self.tensors.len() * TensorRepr::LEN);
            push(SectionKind::Ops, self.ops.len() * OpRepr::LEN);
        }
        push(SectionKind::Data, self.data.len());
        if let Some((_, _, r)) = self.selftest {
            push(SectionKind::SelfTest, SelfTest::HEADER_LEN + r.len());
        }
        if let Some(h) = self.head {
            push(SectionKind::Head, h.len());
        }
        if let Some(b) = self.lm {
            push(SectionKind::Lm, b.len());
        }
        if let Some(b) = self.vocab {
            push(SectionKind::Vocab, b.len());
        }
        (list, n)
    }

    /// Exact bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        let (list, n) = self.sections();
        HEADER_LEN
            + n * SECTION_ENTRY_LEN
            + list[..n].iter().map(|(_, l)| pad4(*l)).sum::<usize>()
            + CRC_LEN
    }

    /// Writes the blob into `buf`, which must be at least
    /// [`buffer_len`](Self::buffer_len) bytes; returns the bytes written.
    ///
    /// # Errors
    /// [`Error::BadLength`] if `buf` is too short.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let total = self.buffer_len();
        if buf.len() < total {
            return Err(Error::BadLength {
                expected: total as u32,
                got: buf.len() as u32,
            });
        }
        let buf = &mut buf[..total];
        buf.fill(0);
        let (list, n) = self.sections();
        buf[field::MAGIC].copy_from_slice(&MAGIC);
        buf[field::VERSION].copy_from_slice(&VERSION.to_le_bytes());
        buf[field::FAMILY] = self.family as u8;
        buf[field::FLAGS] = 0;
        buf[field::TOTAL_LEN].copy_from_slice(&(total as u32).to_le_bytes());
        buf[field::ARENA_LEN].copy_from_slice(&self.arena_len.to_le_bytes());
        buf[field::SECTION_COUNT].copy_from_slice(&(n as u16).to_le_bytes());
        let mut at = HEADER_LEN + n * SECTION_ENTRY_LEN;
        for (i, (kind, len)) in list[..n].iter().enumerate() {
            let e = HEADER_LEN + i * SECTION_ENTRY_LEN;
            buf[e..e + 2].copy_from_slice(&(*kind as u16).to_le_bytes());
            buf[e + 4..e + 8].copy_from_slice(&(at as u32).to_le_bytes());
            buf[e + 8..e + 12].copy_from_slice(&(*len as u32).to_le_bytes());
            let body = &mut buf[at..at + len];
            match kind {
                SectionKind::Tensors => {
                    for (t, b) in self
                        .tensors
                        .iter()
                        .zip(body.chunks_exact_mut(TensorRepr::LEN))
                    {
                        t.emit(b);
                    }
                }
                SectionKind::Ops => {
                    for (o, b) in self.ops.iter().zip(body.chunks_exact_mut(OpRepr::LEN)) {
                        o.emit(b);
                    }
                }
                SectionKind::Data => body.copy_from_slice(self.data),
                SectionKind::SelfTest => {
                    if let Some((il, ol, recs)) = self.selftest {
                        let rl = pad4(il as usize + ol as usize).max(1);
                        body[0..4].copy_from_slice(&((recs.len() / rl) as u32).to_le_bytes());
                        body[4..8].copy_from_slice(&il.to_le_bytes());
                        body[8..12].copy_from_slice(&ol.to_le_bytes());
                        body[SelfTest::HEADER_LEN..].copy_from_slice(recs);
                    }
                }
                SectionKind::Head => body.copy_from_slice(self.head.unwrap_or(&[])),
                SectionKind::Lm => body.copy_from_slice(self.lm.unwrap_or(&[])),
                SectionKind::Vocab => body.copy_from_slice(self.vocab.unwrap_or(&[])),
            }
            at += pad4(*len);
        }
        let crc = CRC32.checksum(&buf[..total - CRC_LEN]);
        buf[total - CRC_LEN..].copy_from_slice(&crc.to_le_bytes());
        Ok(total)
    }
}
