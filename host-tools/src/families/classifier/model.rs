//! The DiracNet model in burn: Dirac-parametrized 3×3 convolutions with batch norm.
//!
//! Parametrization (as in the authors' reference code, szagoruyko/diracnets,
//! `diracconv.py`): every block convolution uses
//!
//! ```text
//! W_hat[o] = a[o] · I[o] + b[o] · W[o] / ‖W[o]‖
//! ```
//!
//! where `‖W[o]‖` is the L2 norm of output filter `o` over `(cin, kh, kw)`,
//! `I` is the Dirac delta kernel (centre tap 1 for channel `o → o`, for
//! `o < min(cin, cout)`; like `torch.nn.init.dirac_`), `a` starts at 1 and `b`
//! at 0.1. `W` starts kaiming-normal (fan-in).
//!
//! Network: `stem conv 3×3 (1→w0) → BN`, then for every width `w_g` `depth`
//! blocks `x ↦ BN(conv(ReLU(x)))` (the first block of a group maps
//! `w_{g-1} → w_g`), a 2×2 max pool between groups, and finally
//! `ReLU → global average pool → FC → logits`.
//!
//! The stem is a plain (not Dirac-parametrized) convolution: with one input
//! channel the Dirac term would only touch output channel 0, which buys nothing.
//! No convolution has a bias (batch norm follows each one).

use burn::module::{Module, Param};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::activation::relu;
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// Architecture hyper-parameters; saved next to every checkpoint so the model can be rebuilt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Channel width of each group (the stem outputs `widths[0]`).
    pub widths: Vec<usize>,
    /// Blocks per group.
    pub depth: usize,
    /// Number of output classes.
    pub classes: usize,
    /// Input side length (square, one channel).
    pub image_size: usize,
}

impl ModelConfig {
    /// The default Fashion-MNIST model for the given widths and depth.
    pub fn new(widths: Vec<usize>, depth: usize) -> Self {
        ModelConfig {
            widths,
            depth,
            classes: crate::common::data::CLASSES,
            image_size: crate::common::data::SIDE,
        }
    }

    /// Checks that the configuration describes a buildable network.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.widths.is_empty(),
            "--widths must list at least one width"
        );
        anyhow::ensure!(
            self.widths.iter().all(|&w| (1..=4096).contains(&w)),
            "--widths must be in 1..=4096, got {:?}",
            self.widths
        );
        anyhow::ensure!(
            (1..=64).contains(&self.depth),
            "--depth must be in 1..=64, got {}",
            self.depth
        );
        anyhow::ensure!(
            self.classes >= 2,
            "model needs at least 2 classes, got {}",
            self.classes
        );
        let pools = self.widths.len() - 1;
        anyhow::ensure!(
            pools < usize::BITS as usize && self.image_size >> pools >= 1,
            "{} groups need {} 2x2 poolings, too many for a {}x{} input",
            self.widths.len(),
            pools,
            self.image_size,
            self.image_size
        );
        Ok(())
    }

    /// (cin, cout) of every block convolution, in order.
    pub fn block_channels(&self) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        let mut prev = self.widths[0];
        for &w in &self.widths {
            for _ in 0..self.depth {
                v.push((prev, w));
                prev = w;
            }
        }
        v
    }

    /// Whether a 2×2 max pool follows block `i` (end of a group other than the last).
    pub fn pool_after(&self, i: usize) -> bool {
        let n = self.widths.len() * self.depth;
        (i + 1).is_multiple_of(self.depth) && i + 1 < n
    }
}

/// Draws a kaiming-normal (fan-in, gain √2) tensor from `rng`.
fn kaiming_normal<const D: usize>(
    shape: [usize; D],
    fan_in: usize,
    rng: &mut StdRng,
    device: &Device,
) -> Tensor<D> {
    let std = (2.0 / fan_in as f64).sqrt() as f32;
    let normal = Normal::new(0.0f32, std).expect("finite std");
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| normal.sample(rng)).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

fn filled(n: usize, value: f32, device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(vec![value; n], [n]), device)
}

fn conv3x3_options() -> ConvOptions<2> {
    ConvOptions::new([1, 1], [1, 1], [1, 1], 1)
}

/// A 3×3, stride-1, pad-1 convolution with the Dirac parametrization (no bias).
#[derive(Module, Debug)]
pub struct DiracConv {
    /// Free weight `W`, `[cout, cin, 3, 3]`.
    pub weight: Param<Tensor<4>>,
    /// Dirac scale `a`, `[cout]`, init 1.
    pub alpha: Param<Tensor<1>>,
    /// Weight scale `b`, `[cout]`, init 0.1.
    pub beta: Param<Tensor<1>>,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
}

impl DiracConv {
    fn new(cin: usize, cout: usize, rng: &mut StdRng, device: &Device) -> Self {
        DiracConv {
            weight: Param::from_tensor(kaiming_normal([cout, cin, 3, 3], cin * 9, rng, device)),
            alpha: Param::from_tensor(filled(cout, 1.0, device)),
            beta: Param::from_tensor(filled(cout, 0.1, device)),
            cin,
            cout,
        }
    }

    /// The Dirac delta kernel `[cout, cin, 3, 3]` as plain data.
    pub fn delta(cin: usize, cout: usize) -> Vec<f32> {
        let mut d = vec![0f32; cout * cin * 9];
        for c in 0..cin.min(cout) {
            d[(c * cin + c) * 9 + 4] = 1.0;
        }
        d
    }

    /// `W_hat = diag(a)·I + diag(b)·W/‖W‖`, `[cout, cin, 3, 3]`.
    pub fn effective_weight(&self) -> Tensor<4> {
        let w = self.weight.val();
        let device = w.device();
        let (cin, cout) = (self.cin, self.cout);
        let norm = w
            .clone()
            .reshape([cout, cin * 9])
            .square()
            .sum_dim(1)
            .sqrt()
            .clamp_min(1e-12)
            .reshape([cout, 1, 1, 1]);
        let delta: Tensor<4> = Tensor::from_data(
            TensorData::new(Self::delta(cin, cout), [cout, cin, 3, 3]),
            &device,
        );
        let a = self.alpha.val().reshape([cout, 1, 1, 1]);
        let b = self.beta.val().reshape([cout, 1, 1, 1]);
        delta.mul(a) + w.div(norm).mul(b)
    }

    /// Convolution with the effective weight.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv2d(x, self.effective_weight(), None, conv3x3_options())
    }
}

/// `x ↦ BN(conv(ReLU(x)))`.
#[derive(Module, Debug)]
pub struct Block {
    /// Dirac-parametrized convolution.
    pub conv: DiracConv,
    /// Batch norm after the convolution.
    pub bn: BatchNorm,
}

impl Block {
    /// Applies the block.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.forward(self.conv.forward(relu(x)))
    }
}

/// The whole network. Input `[n, 1, H, W]`, already normalised with
/// [`super::float::normalize`]; output logits `[n, classes]`.
#[derive(Module, Debug)]
pub struct DiracNet {
    /// Stem convolution weight `[w0, 1, 3, 3]` (plain, no Dirac term, no bias).
    pub stem: Param<Tensor<4>>,
    /// Stem batch norm.
    pub stem_bn: BatchNorm,
    /// All blocks, group after group.
    pub blocks: Vec<Block>,
    /// Classifier weight `[classes, w_last]`.
    pub fc_weight: Param<Tensor<2>>,
    /// Classifier bias `[classes]`.
    pub fc_bias: Param<Tensor<1>>,
    /// The architecture.
    #[module(skip)]
    pub config: ModelConfig,
}

impl DiracNet {
    /// Builds a freshly initialised network; all randomness comes from `rng`.
    /// `config` must have passed [`ModelConfig::validate`].
    pub fn new(config: &ModelConfig, rng: &mut StdRng, device: &Device) -> Self {
        let w0 = config.widths[0];
        let stem = Param::from_tensor(kaiming_normal([w0, 1, 3, 3], 9, rng, device));
        let blocks = config
            .block_channels()
            .into_iter()
            .map(|(cin, cout)| Block {
                conv: DiracConv::new(cin, cout, rng, device),
                bn: BatchNormConfig::new(cout).init(device),
            })
            .collect();
        let wl = *config.widths.last().unwrap();
        DiracNet {
            stem,
            stem_bn: BatchNormConfig::new(w0).init(device),
            blocks,
            fc_weight: Param::from_tensor(kaiming_normal([config.classes, wl], wl, rng, device)),
            fc_bias: Param::from_tensor(filled(config.classes, 0.0, device)),
            config: config.clone(),
        }
    }

    /// Logits `[n, classes]` for normalised input `[n, 1, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h = self
            .stem_bn
            .forward(conv2d(x, self.stem.val(), None, conv3x3_options()));
        for (i, block) in self.blocks.iter().enumerate() {
            h = block.forward(h);
            if self.config.pool_after(i) {
                h = max_pool2d(h, MaxPoolOptions::new([2, 2]).with_stride([2, 2]));
            }
        }
        let h = relu(h);
        let [n, c, hh, ww] = h.dims();
        let g: Tensor<2> = h.reshape([n, c, hh * ww]).mean_dim(2).reshape([n, c]);
        g.matmul(self.fc_weight.val().transpose()) + self.fc_bias.val().unsqueeze::<2>()
    }

    /// Ids of the Dirac scales `a` and `b` of every block.
    pub fn dirac_param_ids(&self) -> Vec<burn::module::ParamId> {
        self.blocks
            .iter()
            .flat_map(|b| [b.conv.alpha.id, b.conv.beta.id])
            .collect()
    }

    /// Ids of the parameters that get weight decay: the free conv weights and the FC weight
    /// (not `a`, `b`, batch-norm parameters or biases).
    pub fn decayed_param_ids(&self) -> Vec<burn::module::ParamId> {
        let mut ids = vec![self.stem.id, self.fc_weight.id];
        ids.extend(self.blocks.iter().map(|b| b.conv.weight.id));
        ids
    }
}
