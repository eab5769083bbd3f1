// Temporary benchmark (to be deleted).
use burn::tensor::{Device, Tensor, TensorData, Distribution};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use std::time::Instant;

fn im2col_conv(x: Tensor<4>, w: Tensor<4>) -> Tensor<4> {
    // x: [C, N, H, W]; w: [cout, cin, 3, 3] -> [cout, N, H, W]
    let [c, n, h, wd] = x.dims();
    let [cout, cin, _, _] = w.dims();
    assert_eq!(c, cin);
    let xp = x.pad([(0, 0), (0, 0), (1, 1), (1, 1)], burn::tensor::ops::PadMode::Constant(0.0));
    let mut taps = Vec::new();
    for ky in 0..3 { for kx in 0..3 {
        taps.push(xp.clone().slice([0..c, 0..n, ky..ky + h, kx..kx + wd]));
    }}
    let cols = Tensor::cat(taps, 0).reshape([9 * c, n * h * wd]);
    // weight to [cout, 9*cin] with tap-major order
    let w2 = w.permute([0, 2, 3, 1]).reshape([cout, 9 * cin]);
    w2.matmul(cols).reshape([cout, n, h, wd])
}

fn main() {
    let dev = Device::flex().autodiff();
    let (n, c, h) = (128usize, 16usize, 28usize);
    for (cin, cout, hh) in [(16, 16, h), (32, 32, 14), (64, 64, 7)] {
        let w = Tensor::<4>::random([cout, cin, 3, 3], Distribution::Normal(0.0, 0.1), &dev).require_grad();
        let x = Tensor::<4>::random([n, cin, hh, hh], Distribution::Normal(0.0, 1.0), &dev).require_grad();
        let xc = Tensor::<4>::random([cin, n, hh, hh], Distribution::Normal(0.0, 1.0), &dev).require_grad();
        for rep in 0..3 {
            let t = Instant::now();
            let y = conv2d(x.clone(), w.clone(), None, ConvOptions::new([1, 1], [1, 1], [1, 1], 1));
            let _: f32 = y.clone().sum().into_scalar();
            let tf = t.elapsed().as_secs_f64();
            let g = y.sum().backward();
            let _ = w.grad(&g).unwrap().into_data();
            let tb = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let y = im2col_conv(xc.clone(), w.clone());
            let _: f32 = y.clone().sum().into_scalar();
            let tf2 = t.elapsed().as_secs_f64();
            let g = y.sum().backward();
            let _ = w.grad(&g).unwrap().into_data();
            let tb2 = t.elapsed().as_secs_f64();
            let _ = c;
            if rep == 2 {
                println!("{cin}->{cout} @{hh}: burn conv fwd {:.1} ms fwd+bwd {:.1} ms | im2col fwd {:.1} ms fwd+bwd {:.1} ms", tf*1e3, tb*1e3, tf2*1e3, tb2*1e3);
            }
        }
    }
}
