//! Emitting the small classifiers the graph tests build by hand.

use tinyinfer::format::{Family, ModelRepr, OpRepr, TensorRepr};

/// The blob (as words, so it is aligned) of a classifier with these
/// records and DATA section; the arena is exact: the end of the highest
/// tensor.
pub fn emit(tensors: &[TensorRepr], ops: &[OpRepr], data: &[u8]) -> Vec<u32> {
    let arena_len = tensors
        .iter()
        .map(|t| t.arena_offset + t.len())
        .max()
        .unwrap_or(0);
    let repr = ModelRepr {
        family: Family::Classifier,
        arena_len,
        tensors,
        ops,
        data,
        selftest: None,
        head: None,
        lm: None,
        vocab: None,
    };
    let mut words = vec![0u32; repr.buffer_len().div_ceil(4)];
    repr.emit(bytemuck::cast_slice_mut(&mut words)).unwrap();
    words
}
