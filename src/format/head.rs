//! The `HEAD` section of a density model: Bernoulli tables over the int8 logit.

use super::u32_at;

/// The output head of a density model: for every int8 logit code `q`
/// (index `q + 128`), the negative log-likelihood of a 1 and of a 0 in
/// units of 2⁻¹⁶ nats, and `P(1)` in units of 2⁻³² (saturated).
///
/// The exporter computes the tables from the logit tensor's scale and zero
/// point; the device only looks values up and adds integers, so host and
/// device agree on every nat.
///
/// Layout: `kind u32 (1 = Bernoulli logits)`, 12 reserved zero bytes, then
/// `nll_one[256]`, `nll_zero[256]`, `p_one[256]`, each `u32`.
#[derive(Clone, Copy, Debug)]
pub struct BernoulliHead<'a> {
    nll_one: &'a [u32],
    nll_zero: &'a [u32],
    p_one: &'a [u32],
}

impl<'a> BernoulliHead<'a> {
    /// The kind code of a Bernoulli-logit head.
    pub const KIND: u32 = 1;
    /// Bytes of the section.
    pub const LEN: usize = 16 + 3 * 256 * 4;
    /// Fixed-point units per nat of the NLL tables.
    pub const NLL_ONE: f64 = 65536.0;

    pub(super) fn parse(b: &'a [u8]) -> Option<Self> {
        if b.len() != Self::LEN || u32_at(b, 0) != Self::KIND || b[4..16].iter().any(|&x| x != 0) {
            return None;
        }
        let t: &'a [u32] = bytemuck::try_cast_slice(&b[16..]).ok()?;
        let (nll_one, rest) = t.split_at(256);
        let (nll_zero, p_one) = rest.split_at(256);
        Some(BernoulliHead {
            nll_one,
            nll_zero,
            p_one,
        })
    }

    /// NLL of pixel value `bit` given logit code `q`, in 2⁻¹⁶ nats.
    #[inline]
    pub fn nll(&self, q: i8, bit: bool) -> u32 {
        let i = (q as i32 + 128) as usize;
        let t = if bit { self.nll_one } else { self.nll_zero };
        t.get(i).copied().unwrap_or(0)
    }

    /// `P(1)` for logit code `q`, in 2⁻³² units.
    #[inline]
    pub fn p_one(&self, q: i8) -> u32 {
        self.p_one
            .get((q as i32 + 128) as usize)
            .copied()
            .unwrap_or(0)
    }
}
