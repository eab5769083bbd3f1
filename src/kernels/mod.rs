//! int8 kernels.
//!
//! [`reference`] holds the contract: plain free functions over slices plus a
//! params struct, written to be obviously right. [`fast`] sits beside it:
//! the same functions, rewritten for speed in portable safe Rust, producing
//! the same bytes; the shared property suite in `tests/` holds every
//! implementation to the same wide-integer statement. `arm` (built for
//! targets with the Armv7E-M DSP extension only) rewrites the hot kernels
//! with `SMLAD`; [`driver`] names the set the model drivers run.
//!
//! Kernels check that every slice has the length its params imply and return
//! [`Error::BadLength`](crate::Error::BadLength) otherwise, so a kernel never
//! panics whatever it is given. They do not know about the model format.

#[cfg(tinyinfer_dsp)]
pub mod arm;
pub mod fast;
pub mod lm;
pub mod reference;

/// The kernels the model drivers run: [`arm`] on targets with the DSP
/// extension, [`fast`] elsewhere.
#[cfg(tinyinfer_dsp)]
pub use arm as driver;
/// The kernels the model drivers run: `arm` on targets with the DSP
/// extension, [`fast`] elsewhere.
#[cfg(not(tinyinfer_dsp))]
pub use fast as driver;

/// The causal mask of a convolution (PixelCNN), stored in a conv op's `aux` byte 0
/// of the model format.
///
/// For a k×k kernel with centre `c = (k − 1) / 2`, tap `(ky, kx)` may be
/// non-zero iff `ky < c`, or `ky == c` and `kx < c` (mask A) / `kx ≤ c`
/// (mask B). The exporter folds the mask into the weights; the checker
/// verifies that every masked tap is zero, so a masked conv computes exactly
/// what the plain conv would, and kernels may skip the masked taps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Mask {
    /// No mask.
    None = 0,
    /// Excludes the centre tap: output `p` sees inputs before `p` only.
    A = 1,
    /// Includes the centre tap: output `p` sees inputs up to `p`.
    B = 2,
}

impl Mask {
    /// Decodes a mask byte.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Mask::None),
            1 => Some(Mask::A),
            2 => Some(Mask::B),
            _ => None,
        }
    }

    /// True when tap `(ky, kx)` of a `k`×`k` kernel may be non-zero.
    pub fn allows(self, k: usize, ky: usize, kx: usize) -> bool {
        let c = k.saturating_sub(1) / 2;
        match self {
            Mask::None => true,
            Mask::A => ky < c || (ky == c && kx < c),
            Mask::B => ky < c || (ky == c && kx <= c),
        }
    }

    /// Taps a masked conv reads, in raster order: the rows `0..=c` and, in
    /// the centre row, the columns `0..centre_cols`. None: every tap.
    pub fn live_rows(self, k: usize) -> (usize, usize) {
        let c = k.saturating_sub(1) / 2;
        match self {
            Mask::None => (k, k),
            Mask::A => (c + 1, c),
            Mask::B => (c + 1, c + 1),
        }
    }
}
