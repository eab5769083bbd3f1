//! Folding a trained [`DiracNet`] into a plain [`FoldedNet`].
//!
//! * The Dirac parametrization is evaluated once: `W_hat = a·I + b·W/‖W‖`.
//! * Eval-mode batch norm folds into the preceding (bias-free) convolution:
//!   `s = γ / √(σ² + ε)`, `W' = s·W_hat`, `b' = β − s·μ`.
//! * Every convolution's output feeds a ReLU (the next block starts with one, or
//!   the final ReLU before pooling), so all convs get `relu: true`. Where a max
//!   pool sits in between, ReLU commutes with it, so `Conv{relu}, MaxPool2` is exact.
//! * Weights go from burn's `[cout, cin, kh, kw]` to OHWI.

use burn::module::Module;
use burn::nn::BatchNorm;
use burn::tensor::Tensor;

use super::float::{FoldedNet, Layer};
use super::model::DiracNet;

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    // `convert` makes the dtype f32 whatever the module stored, so `to_vec` cannot fail.
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 tensor data")
}

/// Folds batch norm into a bias-free conv with weight `w` (`[cout, cin, k, k]`, flat)
/// and returns an OHWI [`Layer::Conv`] with a fused ReLU.
fn fold_conv(w: &[f32], cin: usize, cout: usize, k: usize, bn: &BatchNorm) -> Layer {
    let gamma = values(bn.gamma.val());
    let beta = values(bn.beta.val());
    let mean = values(bn.running_mean.value());
    let var = values(bn.running_var.value());
    let mut weight = vec![0f32; cout * k * k * cin];
    let mut bias = vec![0f32; cout];
    for o in 0..cout {
        let s = (gamma[o] as f64 / (var[o] as f64 + bn.epsilon).sqrt()) as f32;
        bias[o] = (beta[o] as f64 - s as f64 * mean[o] as f64) as f32;
        for i in 0..cin {
            for ky in 0..k {
                for kx in 0..k {
                    weight[((o * k + ky) * k + kx) * cin + i] =
                        s * w[((o * cin + i) * k + ky) * k + kx];
                }
            }
        }
    }
    Layer::Conv {
        cin,
        cout,
        k,
        stride: 1,
        pad: k / 2,
        weight,
        bias,
        relu: true,
    }
}

/// Turns a trained model into plain layers, using eval-mode batch-norm statistics.
///
/// Works on a model from any device (training or not): it takes the model's
/// validation view first, which also synchronises the running statistics.
pub fn fold(model: &DiracNet) -> FoldedNet {
    let m = model.valid();
    let cfg = &m.config;
    let mut layers = Vec::new();
    let w0 = cfg.widths[0];
    layers.push(fold_conv(&values(m.stem.val()), 1, w0, 3, &m.stem_bn));
    for (i, block) in m.blocks.iter().enumerate() {
        let w = values(block.conv.effective_weight());
        layers.push(fold_conv(&w, block.conv.cin, block.conv.cout, 3, &block.bn));
        if cfg.pool_after(i) {
            layers.push(Layer::MaxPool2);
        }
    }
    layers.push(Layer::GlobalAvgPool);
    let wl = *cfg.widths.last().unwrap();
    // fc_weight is already [out][in].
    layers.push(Layer::Dense {
        cin: wl,
        cout: cfg.classes,
        weight: values(m.fc_weight.val()),
        bias: values(m.fc_bias.val()),
        relu: false,
    });
    FoldedNet {
        input: (cfg.image_size, cfg.image_size, 1),
        layers,
    }
}
