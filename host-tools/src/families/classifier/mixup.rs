//! Minibatch assembly: normalisation, optional augmentation, one-hot targets and mixup.
//!
//! mixup (Zhang et al., 2018): one `λ ~ Beta(α, α)` per minibatch, each example
//! paired with the example at `perm[i]` of a random permutation of the batch;
//! `x̃ = λ·x_i + (1−λ)·x_perm[i]`, `ỹ = λ·y_i + (1−λ)·y_perm[i]`, trained with
//! the soft-target cross-entropy `−Σ ỹ·log_softmax(f(x̃))`.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Beta, Distribution};

use super::float::normalize;
use crate::common::data::{Dataset, CLASSES, PIXELS, SIDE};

/// Background value after normalisation (pixel 0), used to pad shifted images.
fn background() -> f32 {
    normalize(&[0])[0]
}

/// A minibatch ready for the model: `x` is `[n, 1, 28, 28]` normalised, `y` is `[n, CLASSES]`
/// soft targets (rows sum to 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Normalised pixels, `n * PIXELS`.
    pub x: Vec<f32>,
    /// Targets, `n * CLASSES`.
    pub y: Vec<f32>,
    /// Number of examples.
    pub n: usize,
}

/// Builds a batch of the examples `idx` of `data` with one-hot targets.
/// With `augment`, each image is flipped horizontally with probability 1/2 and
/// shifted by up to ±`max_shift` pixels in each direction (background-padded).
pub fn make_batch(
    data: &Dataset,
    idx: &[usize],
    augment: bool,
    max_shift: i32,
    rng: &mut impl Rng,
) -> Batch {
    let n = idx.len();
    let mut x = Vec::with_capacity(n * PIXELS);
    let mut y = vec![0f32; n * CLASSES];
    let bg = background();
    for (j, &i) in idx.iter().enumerate() {
        let img = normalize(data.image(i));
        if augment {
            let flip = rng.random_bool(0.5);
            let dy = rng.random_range(-max_shift..=max_shift);
            let dx = rng.random_range(-max_shift..=max_shift);
            for r in 0..SIDE as i32 {
                for c in 0..SIDE as i32 {
                    let sr = r + dy;
                    let mut sc = c + dx;
                    if flip {
                        sc = SIDE as i32 - 1 - sc;
                    }
                    let inside = (0..SIDE as i32).contains(&sr) && (0..SIDE as i32).contains(&sc);
                    x.push(if inside {
                        img[sr as usize * SIDE + sc as usize]
                    } else {
                        bg
                    });
                }
            }
        } else {
            x.extend_from_slice(&img);
        }
        y[j * CLASSES + data.labels[i] as usize] = 1.0;
    }
    Batch { x, y, n }
}

/// Mixes `batch` in place with itself permuted by `perm`, with weight `lambda` on the original.
///
/// # Panics
/// If `perm.len() != batch.n` (internal use only).
pub fn mix(batch: &mut Batch, perm: &[usize], lambda: f32) {
    assert_eq!(perm.len(), batch.n);
    let x0 = batch.x.clone();
    let y0 = batch.y.clone();
    for (i, &p) in perm.iter().enumerate() {
        for (dst, (a, b)) in batch.x[i * PIXELS..(i + 1) * PIXELS].iter_mut().zip(
            x0[i * PIXELS..(i + 1) * PIXELS]
                .iter()
                .zip(&x0[p * PIXELS..(p + 1) * PIXELS]),
        ) {
            *dst = lambda * a + (1.0 - lambda) * b;
        }
        for (dst, (a, b)) in batch.y[i * CLASSES..(i + 1) * CLASSES].iter_mut().zip(
            y0[i * CLASSES..(i + 1) * CLASSES]
                .iter()
                .zip(&y0[p * CLASSES..(p + 1) * CLASSES]),
        ) {
            *dst = lambda * a + (1.0 - lambda) * b;
        }
    }
}

/// Applies mixup with `λ ~ Beta(alpha, alpha)` and a random permutation of the batch.
/// Returns `(λ, perm)`; `alpha <= 0` leaves the batch untouched and returns `(1, identity)`.
pub fn mixup(batch: &mut Batch, alpha: f64, rng: &mut impl Rng) -> (f32, Vec<usize>) {
    let mut perm: Vec<usize> = (0..batch.n).collect();
    if alpha <= 0.0 {
        return (1.0, perm);
    }
    // alpha > 0 and finite is checked when the flags are parsed.
    let beta = Beta::new(alpha, alpha).expect("alpha > 0");
    let lambda = (beta.sample(rng) as f32).clamp(0.0, 1.0);
    perm.shuffle(rng);
    mix(batch, &perm, lambda);
    (lambda, perm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn toy(n: usize) -> Dataset {
        let mut images = Vec::new();
        for i in 0..n {
            images.extend((0..PIXELS).map(|p| ((i * 31 + p * 7) % 256) as u8));
        }
        Dataset {
            images,
            labels: (0..n).map(|i| (i % CLASSES) as u8).collect(),
        }
    }

    #[test]
    fn mixup_pairs_lambda_and_targets() {
        let data = toy(16);
        let idx: Vec<usize> = (0..16).collect();
        let mut rng = StdRng::seed_from_u64(7);
        let clean = make_batch(&data, &idx, false, 0, &mut rng);
        for alpha in [0.2, 1.0, 4.0] {
            for _ in 0..20 {
                let mut b = clean.clone();
                let (lambda, perm) = mixup(&mut b, alpha, &mut rng);
                assert!((0.0..=1.0).contains(&lambda), "lambda {lambda}");
                let mut sorted = perm.clone();
                sorted.sort();
                assert_eq!(sorted, idx, "perm is a permutation");
                #[allow(clippy::needless_range_loop)]
                for i in 0..16 {
                    let row = &b.y[i * CLASSES..(i + 1) * CLASSES];
                    assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
                    assert!(row.iter().all(|&v| v >= 0.0));
                    let (la, lb) = (data.labels[i] as usize, data.labels[perm[i]] as usize);
                    if la == lb {
                        assert!((row[la] - 1.0).abs() < 1e-6);
                    } else {
                        assert!((row[la] - lambda).abs() < 1e-6);
                        assert!((row[lb] - (1.0 - lambda)).abs() < 1e-6);
                    }
                    for p in [0, 100, 400, PIXELS - 1] {
                        let want = lambda * clean.x[i * PIXELS + p]
                            + (1.0 - lambda) * clean.x[perm[i] * PIXELS + p];
                        assert!((b.x[i * PIXELS + p] - want).abs() < 1e-6);
                    }
                }
            }
        }
        // alpha = 0: plain ERM, hard labels.
        let mut b = clean.clone();
        let (lambda, _) = mixup(&mut b, 0.0, &mut rng);
        assert_eq!(lambda, 1.0);
        assert_eq!(b, clean);
    }

    #[test]
    fn augmentation_keeps_shape_and_flips() {
        let data = toy(4);
        let mut rng = StdRng::seed_from_u64(1);
        let b = make_batch(&data, &[0, 1, 2, 3], true, 2, &mut rng);
        assert_eq!(b.x.len(), 4 * PIXELS);
        let plain = make_batch(&data, &[0, 1, 2, 3], true, 0, &mut StdRng::seed_from_u64(1));
        // With shift 0 each image is either unchanged or mirrored.
        for i in 0..4 {
            let img = normalize(data.image(i));
            let got = &plain.x[i * PIXELS..(i + 1) * PIXELS];
            let mirrored: Vec<f32> = (0..PIXELS)
                .map(|p| img[(p / SIDE) * SIDE + SIDE - 1 - p % SIDE])
                .collect();
            assert!(got == &img[..] || got == &mirrored[..]);
        }
    }
}
