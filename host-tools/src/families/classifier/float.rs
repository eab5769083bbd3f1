//! The folded float model: what training hands to quantization.
//!
//! After training, batch norm and the Dirac parametrization are folded away
//! ([`super::fold`]), leaving a plain chain of layers with f32 weights. This
//! module owns that representation and a straightforward f32 forward pass over
//! it, used for calibration and as the float reference in evaluation.
//!
//! Layouts: activations are HWC (row-major, channels innermost); conv weights
//! are OHWI (`[cout][ky][kx][cin]`); dense weights are `[out][in]`.

use serde::{Deserialize, Serialize};

/// Input normalisation used in training: `x = (pixel - INPUT_MEAN) / INPUT_STD`.
///
/// Chosen as integers so that the int8 input is exactly `pixel - 128` with
/// scale `1 / INPUT_STD` and zero point `INPUT_MEAN - 128`.
pub const INPUT_MEAN: i32 = 73;
/// See [`INPUT_MEAN`].
pub const INPUT_STD: f32 = 90.0;

/// Normalises raw pixels the way training does.
pub fn normalize(pixels: &[u8]) -> Vec<f32> {
    pixels
        .iter()
        .map(|&p| (p as i32 - INPUT_MEAN) as f32 / INPUT_STD)
        .collect()
}

/// One layer of a folded network.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum Layer {
    /// k×k convolution with zero padding, optional fused ReLU.
    Conv {
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
        /// OHWI, `cout * k * k * cin` values.
        weight: Vec<f32>,
        /// `cout` values.
        bias: Vec<f32>,
        relu: bool,
    },
    /// 2×2 max pooling with stride 2 (floor).
    MaxPool2,
    /// Mean over all spatial positions, per channel.
    GlobalAvgPool,
    /// Fully connected: `out[o] = bias[o] + sum_i weight[o*cin+i] * in[i]`, optional ReLU.
    Dense {
        cin: usize,
        cout: usize,
        weight: Vec<f32>,
        bias: Vec<f32>,
        relu: bool,
    },
}

/// A folded float network: input shape plus a chain of layers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FoldedNet {
    /// Input (height, width, channels).
    pub input: (usize, usize, usize),
    /// Layers, in order.
    pub layers: Vec<Layer>,
}

/// Shape (h, w, c) of an activation.
pub type Shape = (usize, usize, usize);

impl Layer {
    /// Output shape for a given input shape, or None if they do not fit.
    pub fn out_shape(&self, (h, w, c): Shape) -> Option<Shape> {
        match self {
            Layer::Conv {
                cin,
                cout,
                k,
                stride,
                pad,
                ..
            } => {
                if *cin != c || *stride == 0 || h + 2 * pad < *k || w + 2 * pad < *k {
                    return None;
                }
                Some((
                    (h + 2 * pad - k) / stride + 1,
                    (w + 2 * pad - k) / stride + 1,
                    *cout,
                ))
            }
            Layer::MaxPool2 => (h >= 2 && w >= 2).then_some((h / 2, w / 2, c)),
            Layer::GlobalAvgPool => Some((1, 1, c)),
            Layer::Dense { cin, cout, .. } => (h * w * c == *cin).then_some((1, 1, *cout)),
        }
    }

    /// Multiply-accumulates for one input of shape `s`.
    pub fn macs(&self, s: Shape) -> u64 {
        match (self, self.out_shape(s)) {
            (Layer::Conv { k, cin, .. }, Some((oh, ow, oc))) => (oh * ow * oc * k * k * cin) as u64,
            (Layer::Dense { cin, cout, .. }, _) => (cin * cout) as u64,
            _ => 0,
        }
    }

    /// Number of trainable-equivalent parameters after folding (weights + biases).
    pub fn params(&self) -> usize {
        match self {
            Layer::Conv { weight, bias, .. } | Layer::Dense { weight, bias, .. } => {
                weight.len() + bias.len()
            }
            _ => 0,
        }
    }

    /// Applies the layer to `x` of shape `s`. Panics if the shapes do not fit (host-side only).
    pub fn forward(&self, x: &[f32], s: Shape) -> (Vec<f32>, Shape) {
        let os = self.out_shape(s).expect("layer does not fit its input");
        let (h, w, c) = s;
        let (oh, ow, oc) = os;
        let mut out = vec![0f32; oh * ow * oc];
        match self {
            Layer::Conv {
                cin,
                k,
                stride,
                pad,
                weight,
                bias,
                relu,
                ..
            } => {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let o = &mut out[(oy * ow + ox) * oc..][..oc];
                        o.copy_from_slice(bias);
                        for ky in 0..*k {
                            let iy = (oy * stride + ky) as isize - *pad as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            for kx in 0..*k {
                                let ix = (ox * stride + kx) as isize - *pad as isize;
                                if ix < 0 || ix >= w as isize {
                                    continue;
                                }
                                let px = &x[(iy as usize * w + ix as usize) * c..][..c];
                                for (co, acc) in o.iter_mut().enumerate() {
                                    let wr = &weight[((co * k + ky) * k + kx) * cin..][..*cin];
                                    *acc += wr.iter().zip(px).map(|(a, b)| a * b).sum::<f32>();
                                }
                            }
                        }
                        if *relu {
                            o.iter_mut().for_each(|v| *v = v.max(0.0));
                        }
                    }
                }
            }
            Layer::MaxPool2 => {
                for oy in 0..oh {
                    for ox in 0..ow {
                        for ch in 0..c {
                            let at = |y: usize, x_: usize| x[(y * w + x_) * c + ch];
                            let (y, x0) = (oy * 2, ox * 2);
                            out[(oy * ow + ox) * c + ch] = at(y, x0)
                                .max(at(y, x0 + 1))
                                .max(at(y + 1, x0))
                                .max(at(y + 1, x0 + 1));
                        }
                    }
                }
            }
            Layer::GlobalAvgPool => {
                for p in 0..h * w {
                    for ch in 0..c {
                        out[ch] += x[p * c + ch];
                    }
                }
                out.iter_mut().for_each(|v| *v /= (h * w) as f32);
            }
            Layer::Dense {
                cin,
                weight,
                bias,
                relu,
                ..
            } => {
                for (o, v) in out.iter_mut().enumerate() {
                    *v = bias[o]
                        + weight[o * cin..][..*cin]
                            .iter()
                            .zip(x)
                            .map(|(a, b)| a * b)
                            .sum::<f32>();
                    if *relu {
                        *v = v.max(0.0);
                    }
                }
            }
        }
        (out, os)
    }
}

impl FoldedNet {
    /// Shapes of every activation: the input, then each layer's output.
    /// None if a layer does not fit its input.
    pub fn shapes(&self) -> Option<Vec<Shape>> {
        let mut v = vec![self.input];
        for l in &self.layers {
            v.push(l.out_shape(*v.last()?)?);
        }
        Some(v)
    }

    /// Total parameters (weights and biases).
    pub fn params(&self) -> usize {
        self.layers.iter().map(Layer::params).sum()
    }

    /// Total multiply-accumulates per inference.
    pub fn macs(&self) -> u64 {
        let shapes = self.shapes().unwrap_or_default();
        self.layers
            .iter()
            .zip(&shapes)
            .map(|(l, s)| l.macs(*s))
            .sum()
    }

    /// Runs the network on a normalised input, returning every activation
    /// (input first, logits last).
    pub fn forward_all(&self, x: &[f32]) -> Vec<Vec<f32>> {
        let mut acts = vec![x.to_vec()];
        let mut s = self.input;
        for l in &self.layers {
            let (y, ns) = l.forward(acts.last().unwrap(), s);
            acts.push(y);
            s = ns;
        }
        acts
    }

    /// Logits for raw u8 pixels.
    pub fn logits(&self, pixels: &[u8]) -> Vec<f32> {
        self.forward_all(&normalize(pixels)).pop().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_identity_and_shapes() {
        // A 3x3 conv whose only tap is the centre with weight 1 is the identity.
        let mut weight = vec![0.0; 9];
        weight[4] = 1.0;
        let l = Layer::Conv {
            cin: 1,
            cout: 1,
            k: 3,
            stride: 1,
            pad: 1,
            weight,
            bias: vec![0.5],
            relu: false,
        };
        let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let (y, s) = l.forward(&x, (4, 4, 1));
        assert_eq!(s, (4, 4, 1));
        assert!(y.iter().zip(&x).all(|(a, b)| *a == b + 0.5));
        let (p, ps) = Layer::MaxPool2.forward(&x, (4, 4, 1));
        assert_eq!(ps, (2, 2, 1));
        assert_eq!(p, vec![5.0, 7.0, 13.0, 15.0]);
        let (g, _) = Layer::GlobalAvgPool.forward(&x, (4, 4, 1));
        assert_eq!(g, vec![7.5]);
    }
}
