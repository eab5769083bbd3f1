//! Per-layer benchmarks: a counter trait of our own and an [`Observer`] over it.

use tinyinfer::format::OpRepr;
use tinyinfer::models::Observer;

/// A free-running counter of cycles (a board's DWT CYCCNT) or of executed
/// instructions (QEMU's SysTick under `-icount`).
///
/// Counts wrap at 2³²: callers take `wrapping_sub` differences, so one
/// measured interval must stay below 2³² counts (67 s at 64 MHz).
pub trait CycleCounter {
    /// What counts are, for reports: `"cycles"` or `"instructions"`.
    const UNIT: &'static str;
    /// One count: `"cycle"` or `"instruction"`.
    const ONE: &'static str;
    /// What counts are, for the report's records.
    const KIND: tinyinfer::link::report::Unit;
    /// The current count.
    fn now(&mut self) -> u32;
    /// The current count without the 32-bit wrap, for intervals longer than
    /// 2³² counts (whole sampled images). Counters that only have 32 bits
    /// return [`now`](Self::now).
    fn now64(&mut self) -> u64 {
        self.now() as u64
    }
}

/// Counts per op of one inference, taken in the core's `before`/`after` hooks.
///
/// `N` is the most ops recorded (the core's `MAX_OPS`); further ops are run
/// but not timed.
pub struct LayerBench<'c, C, const N: usize> {
    counter: &'c mut C,
    started: u32,
    counts: heapless::Vec<u32, N>,
}

impl<'c, C: CycleCounter, const N: usize> LayerBench<'c, C, N> {
    /// A bench for a model of `ops` ops.
    pub fn new(counter: &'c mut C, ops: usize) -> Self {
        let mut counts = heapless::Vec::new();
        // Cannot fail past capacity: clamp to N.
        let _ = counts.resize(ops.min(N), 0);
        LayerBench {
            counter,
            started: 0,
            counts,
        }
    }

    /// The counter's current value.
    pub fn now(&mut self) -> u32 {
        self.counter.now()
    }

    /// Counts per op, in op order.
    pub fn counts(&self) -> &[u32] {
        &self.counts
    }
}

impl<C: CycleCounter, const N: usize> Observer for LayerBench<'_, C, N> {
    fn before(&mut self, _index: usize, _op: &OpRepr) {
        self.started = self.counter.now();
    }

    fn after(&mut self, index: usize, _op: &OpRepr) {
        let t = self.counter.now().wrapping_sub(self.started);
        if let Some(c) = self.counts.get_mut(index) {
            *c = c.wrapping_add(t);
        }
    }
}
