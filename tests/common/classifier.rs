//! Building the small classifiers the graph tests make by hand.

use tinyinfer::format::{Family, ModelRepr, OpRepr, TensorRepr};

/// The exact arena of a hand-built model: the end of its highest tensor.
pub fn exact_arena(tensors: &[TensorRepr]) -> u32 {
    tensors
        .iter()
        .map(|t| t.arena_offset + t.len())
        .max()
        .unwrap_or(0)
}

/// Tensor records laid out one after another in the arena, and a DATA
/// section of words.
#[derive(Default)]
pub struct Builder {
    pub tensors: Vec<TensorRepr>,
    pub data: Vec<u8>,
    arena: u32,
}

impl Builder {
    /// A new tensor (scale 0.05) after the others in the arena; its index.
    pub fn tensor(&mut self, h: u16, w: u16, c: u16, zero_point: i32) -> u8 {
        let t = TensorRepr {
            h,
            w,
            c,
            zero_point,
            scale: 0.05,
            arena_offset: self.arena,
        };
        self.arena += (t.len() + 3) & !3;
        self.tensors.push(t);
        (self.tensors.len() - 1) as u8
    }

    /// Appends `words` to DATA; their offset.
    pub fn push(&mut self, words: &[i32]) -> u32 {
        let at = self.data.len() as u32;
        for w in words {
            self.data.extend_from_slice(&w.to_le_bytes());
        }
        at
    }

    /// The blob (as words, so it is aligned) of a classifier with these
    /// ops; the arena is exact: the end of the highest tensor.
    pub fn emit(&self, ops: &[OpRepr]) -> Vec<u32> {
        let arena_len = exact_arena(&self.tensors);
        let repr = ModelRepr {
            family: Family::Classifier,
            arena_len,
            tensors: &self.tensors,
            ops,
            data: &self.data,
            selftest: None,
            head: None,
            lm: None,
            vocab: None,
        };
        let mut words = vec![0u32; repr.buffer_len().div_ceil(4)];
        repr.emit(bytemuck::cast_slice_mut(&mut words)).unwrap();
        words
    }
}
