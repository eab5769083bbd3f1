//! A small integer random number generator, identical on every target.

/// Source of uniformly distributed `u32`s for sampling.
pub trait Rng {
    /// The next value.
    fn next_u32(&mut self) -> u32;
}

/// PCG32 (XSH RR 64/32, O'Neill 2014): 16 bytes of state, one 64-bit
/// multiply per value, and the same sequence on a Cortex-M as on a PC, so
/// a seed gives the same samples on host and device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pcg32 {
    state: u64,
    inc: u64,
}

impl Pcg32 {
    const MUL: u64 = 6364136223846793005;
    /// The stream [`Pcg32::seeded`] uses.
    pub const DEFAULT_STREAM: u64 = 0xda3e_39cb_94b9_5bdb;

    /// The generator for `seed` on stream `stream` (PCG's `srandom_r`).
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut r = Pcg32 {
            state: 0,
            inc: (stream << 1) | 1,
        };
        r.step();
        r.state = r.state.wrapping_add(seed);
        r.step();
        r
    }

    /// The generator for `seed` on the default stream.
    pub fn seeded(seed: u64) -> Self {
        Self::new(seed, Self::DEFAULT_STREAM)
    }

    fn step(&mut self) -> u64 {
        let old = self.state;
        self.state = old.wrapping_mul(Self::MUL).wrapping_add(self.inc);
        old
    }
}

impl Rng for Pcg32 {
    fn next_u32(&mut self) -> u32 {
        let old = self.step();
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        xorshifted.rotate_right((old >> 59) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first outputs of the PCG reference demo (`pcg32-demo`, seed 42, stream 54).
    #[test]
    fn matches_the_reference_sequence() {
        let mut r = Pcg32::new(42, 54);
        let got: [u32; 6] = core::array::from_fn(|_| r.next_u32());
        assert_eq!(
            got,
            [0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e]
        );
    }
}
