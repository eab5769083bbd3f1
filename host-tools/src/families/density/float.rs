//! The plain-Rust float PixelCNN: the interface between training and the int8
//! quantizer/exporter. Layout and semantics are documented on each item; the burn
//! model converts to this with [`super::PixelCnn::to_float`].

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::common::blob::write_atomic;
use crate::common::checkpoint;

/// Spatial mask of a convolution (k×k, centre `c = (k-1)/2`).
///
/// Tap `(ky, kx)` is allowed iff `ky < c`, or `ky == c` and `kx < c` (mask A) /
/// `kx <= c` (mask B). `None` allows every tap; a 1×1 conv with mask B is a plain 1×1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mask {
    /// No mask (every tap allowed).
    None,
    /// Excludes the centre tap: the first layer, which must not see the current pixel.
    A,
    /// Includes the centre tap: every later layer.
    B,
}

impl Mask {
    /// Whether tap `(ky, kx)` of a `k`×`k` kernel is allowed.
    pub fn allows(self, k: usize, ky: usize, kx: usize) -> bool {
        let c = (k.max(1) - 1) / 2;
        match self {
            Mask::None => true,
            Mask::A => ky < c || (ky == c && kx < c),
            Mask::B => ky < c || (ky == c && kx <= c),
        }
    }

    /// The allowed taps `(ky, kx)` of a `k`×`k` kernel, row-major.
    pub fn taps(self, k: usize) -> Vec<(usize, usize)> {
        (0..k)
            .flat_map(|ky| (0..k).map(move |kx| (ky, kx)))
            .filter(|&(ky, kx)| self.allows(k, ky, kx))
            .collect()
    }
}

/// One conv, "same" padding (pad = (k-1)/2), stride 1.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConvF {
    /// Input channels.
    pub in_c: usize,
    /// Output channels.
    pub out_c: usize,
    /// Kernel side (odd).
    pub k: usize,
    /// Spatial mask.
    pub mask: Mask,
    /// ReLU applied to this conv's output.
    pub relu: bool,
    /// OHWI: `[out][ky][kx][in]`; masked taps are exactly 0.0.
    pub weight: Vec<f32>,
    /// `out_c` biases.
    pub bias: Vec<f32>,
}

impl ConvF {
    /// Index of `weight[o][ky][kx][i]`.
    pub fn widx(&self, o: usize, ky: usize, kx: usize, i: usize) -> usize {
        ((o * self.k + ky) * self.k + kx) * self.in_c + i
    }

    /// Parameters (weights including masked zeros, plus biases).
    pub fn params(&self) -> usize {
        self.weight.len() + self.bias.len()
    }

    /// Applies the conv (and its ReLU) to an HWC activation `side*side*in_c`,
    /// visiting only the allowed taps.
    pub fn forward(&self, side: usize, input: &[f32]) -> Vec<f32> {
        debug_assert_eq!(input.len(), side * side * self.in_c);
        let (k, ic, oc) = (self.k, self.in_c, self.out_c);
        let c = (k - 1) / 2;
        let taps = self.mask.taps(k);
        let mut out = vec![0f32; side * side * oc];
        for y in 0..side {
            for x in 0..side {
                let acc = &mut out[(y * side + x) * oc..][..oc];
                acc.copy_from_slice(&self.bias);
                for &(ky, kx) in &taps {
                    let (iy, ix) = (y + ky, x + kx);
                    if iy < c || ix < c || iy - c >= side || ix - c >= side {
                        continue;
                    }
                    let inp = &input[((iy - c) * side + (ix - c)) * ic..][..ic];
                    for (o, a) in acc.iter_mut().enumerate() {
                        let w = &self.weight[self.widx(o, ky, kx, 0)..][..ic];
                        *a += w.iter().zip(inp).map(|(w, v)| w * v).sum::<f32>();
                    }
                }
                if self.relu {
                    for a in acc.iter_mut() {
                        *a = a.max(0.0);
                    }
                }
            }
        }
        out
    }

    /// Checks sizes, finiteness and the mask (masked taps exactly zero); `what` names the layer.
    fn check(&self, what: &str) -> Result<()> {
        ensure!(
            self.k % 2 == 1 && (1..=15).contains(&self.k),
            "{what}: kernel {} must be odd and in 1..=15",
            self.k
        );
        ensure!(
            self.in_c >= 1 && self.out_c >= 1 && self.in_c <= 4096 && self.out_c <= 4096,
            "{what}: channels {} -> {} out of range 1..=4096",
            self.in_c,
            self.out_c
        );
        let want = self.out_c * self.k * self.k * self.in_c;
        ensure!(
            self.weight.len() == want,
            "{what}: weight has {} values, {}x{}x{}x{} (OHWI) needs {want}",
            self.weight.len(),
            self.out_c,
            self.k,
            self.k,
            self.in_c
        );
        ensure!(
            self.bias.len() == self.out_c,
            "{what}: bias has {} values, out_c is {}",
            self.bias.len(),
            self.out_c
        );
        if let Some(i) = self
            .weight
            .iter()
            .chain(&self.bias)
            .position(|v| !v.is_finite())
        {
            bail!("{what}: parameter {i} is not finite");
        }
        for o in 0..self.out_c {
            for ky in 0..self.k {
                for kx in 0..self.k {
                    if self.mask.allows(self.k, ky, kx) {
                        continue;
                    }
                    for i in 0..self.in_c {
                        let v = self.weight[self.widx(o, ky, kx, i)];
                        ensure!(
                            v == 0.0,
                            "{what}: masked tap (out {o}, ky {ky}, kx {kx}, in {i}) is {v}, must be 0 (mask {:?})",
                            self.mask
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

/// Residual block: `t = conv_reduce(a)` (1x1, C->h, relu); `t = conv(t)` (kxk mask B,
/// h->h, relu); `u = expand(t)` (1x1, h->C, no relu); `a' = relu(a + u)`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockF {
    /// 1×1, C→h, ReLU.
    pub reduce: ConvF,
    /// k×k mask B, h→h, ReLU.
    pub conv: ConvF,
    /// 1×1, h→C, no ReLU.
    pub expand: ConvF,
}

/// The whole float PixelCNN over binary `side`×`side` images.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PixelCnnF {
    /// Image side (28).
    pub side: usize,
    /// 7×7 (configurable) mask A, 1 → C, ReLU.
    pub first: ConvF,
    /// Residual blocks.
    pub blocks: Vec<BlockF>,
    /// 1×1 convs (mask B trivially); all ReLU except the last, which has `out_c = 1`
    /// and gives the logit.
    pub head: Vec<ConvF>,
}

/// `softplus(l) - x*l` = `max(l,0) - x*l + ln(1+exp(-|l|))`, in f64.
pub fn bce_with_logit(l: f64, x: f64) -> f64 {
    l.max(0.0) - x * l + (-l.abs()).exp().ln_1p()
}

impl PixelCnnF {
    /// All convs in execution order.
    pub fn convs(&self) -> Vec<&ConvF> {
        let mut v = vec![&self.first];
        for b in &self.blocks {
            v.extend([&b.reduce, &b.conv, &b.expand]);
        }
        v.extend(self.head.iter());
        v
    }

    /// Parameters (weights including masked zeros, plus biases).
    pub fn params(&self) -> usize {
        self.convs().iter().map(|c| c.params()).sum()
    }

    /// Every activation in execution order, each HWC (`side*side*c`):
    /// `[first_out, for each block: reduce_out, conv_out, expand_out (u, before the add),
    /// add_out (relu'd a'), then each head output]`; the last entry is the logits
    /// (`side*side*1`). Input image: `side*side` bytes, each 0 or 1; the network input
    /// value is the pixel as f32 (0.0 or 1.0).
    ///
    /// Panics if `image.len() != side*side` (a caller bug; [`Self::load_json`] has
    /// already validated the model).
    pub fn forward_all(&self, image: &[u8]) -> Vec<Vec<f32>> {
        let s = self.side;
        assert_eq!(image.len(), s * s, "image must have side*side pixels");
        let x: Vec<f32> = image.iter().map(|&p| p as f32).collect();
        let mut acts = Vec::with_capacity(2 + 4 * self.blocks.len() + self.head.len());
        let mut a = self.first.forward(s, &x);
        acts.push(a.clone());
        for b in &self.blocks {
            let t = b.reduce.forward(s, &a);
            let t2 = b.conv.forward(s, &t);
            let u = b.expand.forward(s, &t2);
            let sum: Vec<f32> = a.iter().zip(&u).map(|(a, u)| (a + u).max(0.0)).collect();
            acts.push(t);
            acts.push(t2);
            acts.push(u);
            acts.push(sum.clone());
            a = sum;
        }
        for h in &self.head {
            a = h.forward(s, &a);
            acts.push(a.clone());
        }
        acts
    }

    /// The `side*side` logits (raster order) for an image of 0/1 pixels.
    pub fn logits(&self, image: &[u8]) -> Vec<f32> {
        self.forward_all(image).pop().unwrap_or_default()
    }

    /// Bernoulli NLL in nats: sum over pixels of `softplus(l) - x*l`, computed stably, in f64.
    pub fn nll(&self, image: &[u8]) -> f64 {
        self.logits(image)
            .iter()
            .zip(image)
            .map(|(&l, &x)| bce_with_logit(l as f64, x as f64))
            .sum()
    }

    /// Checks the whole network: every conv's sizes and mask, the first layer (1 → C,
    /// mask A, ReLU), block convs (1×1 / k×k mask B / 1×1 with the documented ReLU flags,
    /// chained C → h → h → C), the head (1×1, ReLU except the last, last `out_c = 1`).
    ///
    /// # Errors
    /// The first inconsistency found, naming the layer.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            (1..=512).contains(&self.side),
            "side {} out of range 1..=512",
            self.side
        );
        let f = &self.first;
        f.check("first")?;
        ensure!(f.in_c == 1, "first: in_c {} must be 1 (the image)", f.in_c);
        ensure!(
            f.mask == Mask::A && f.k >= 3,
            "first: needs mask A and k >= 3, got {:?} k {}",
            f.mask,
            f.k
        );
        ensure!(f.relu, "first: relu must be true");
        let c = f.out_c;
        let one_by_one = |conv: &ConvF, what: &str| -> Result<()> {
            ensure!(
                conv.k == 1 && matches!(conv.mask, Mask::B | Mask::None),
                "{what}: must be 1x1 with mask B (or None), got k {} mask {:?}",
                conv.k,
                conv.mask
            );
            Ok(())
        };
        for (i, b) in self.blocks.iter().enumerate() {
            let w = |s: &str| format!("block {i} {s}");
            b.reduce.check(&w("reduce"))?;
            b.conv.check(&w("conv"))?;
            b.expand.check(&w("expand"))?;
            one_by_one(&b.reduce, &w("reduce"))?;
            one_by_one(&b.expand, &w("expand"))?;
            ensure!(
                b.conv.mask == Mask::B || b.conv.k == 1,
                "block {i} conv: needs mask B, got {:?}",
                b.conv.mask
            );
            ensure!(
                b.conv.mask != Mask::A,
                "block {i} conv: mask A is only for the first layer"
            );
            ensure!(
                b.reduce.in_c == c
                    && b.conv.in_c == b.reduce.out_c
                    && b.expand.in_c == b.conv.out_c
                    && b.expand.out_c == c,
                "block {i}: channels {}->{} / {}->{} / {}->{} do not chain C={c} -> h -> h -> C",
                b.reduce.in_c,
                b.reduce.out_c,
                b.conv.in_c,
                b.conv.out_c,
                b.expand.in_c,
                b.expand.out_c
            );
            ensure!(
                b.reduce.relu && b.conv.relu && !b.expand.relu,
                "block {i}: relu flags must be reduce true, conv true, expand false"
            );
        }
        ensure!(!self.head.is_empty(), "head: needs at least one conv");
        let mut prev = c;
        for (i, h) in self.head.iter().enumerate() {
            let w = format!("head {i}");
            h.check(&w)?;
            one_by_one(h, &w)?;
            ensure!(
                h.in_c == prev,
                "{w}: in_c {} but the previous layer has {prev} channels",
                h.in_c
            );
            let last = i + 1 == self.head.len();
            ensure!(
                h.relu != last,
                "{w}: relu must be {} ({} head conv)",
                !last,
                if last { "last" } else { "hidden" }
            );
            prev = h.out_c;
        }
        ensure!(prev == 1, "head: last conv has out_c {prev}, must be 1");
        Ok(())
    }

    /// Writes the model as JSON tagged `"family": "density"`, atomically (temp file + rename).
    ///
    /// # Errors
    /// Serialization or I/O errors, naming the path.
    pub fn save_json(&self, path: &Path) -> Result<()> {
        let text = checkpoint::to_json(super::NAME, self).context("serializing the PixelCNN")?;
        write_atomic(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
    }

    /// Reads and validates ([`Self::validate`]) a model written by [`Self::save_json`].
    ///
    /// # Errors
    /// Unreadable or malformed JSON, or a model that fails validation, naming the path.
    /// A run directory stands for its `final.json`.
    pub fn load_json(path: &Path) -> Result<Self> {
        let file = checkpoint::json_file(path);
        let path = file.as_path();
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        checkpoint::expect_family(&text, path, super::NAME)?;
        let m: PixelCnnF = serde_json::from_str(&text)
            .with_context(|| format!("parsing PixelCNN JSON {}", path.display()))?;
        m.validate()
            .with_context(|| format!("invalid PixelCNN in {}", path.display()))?;
        Ok(m)
    }
}
