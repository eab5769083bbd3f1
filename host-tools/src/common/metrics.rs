//! Figures computed from outputs: argmax, accuracy, confusion matrices,
//! calibration (NLL, ECE) of logits, and the AUROC of anomaly scores.

/// Argmax per row (lowest index among ties, as the core does).
pub fn argmax_rows<T: PartialOrd + Copy>(v: &[T], classes: usize) -> Vec<usize> {
    v.chunks(classes)
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(0, |b, (i, x)| if *x > r[b] { i } else { b })
        })
        .collect()
}

/// Fraction of predictions equal to labels.
pub fn accuracy(pred: &[usize], labels: &[u8]) -> f64 {
    pred.iter()
        .zip(labels)
        .filter(|(p, l)| **p == **l as usize)
        .count() as f64
        / labels.len().max(1) as f64
}

/// `confusion[true][pred]`.
pub fn confusion(pred: &[usize], labels: &[u8], classes: usize) -> Vec<Vec<u32>> {
    let mut m = vec![vec![0u32; classes]; classes];
    for (&p, &l) in pred.iter().zip(labels) {
        if (l as usize) < classes && p < classes {
            m[l as usize][p] += 1;
        }
    }
    m
}

/// Accuracy, mean negative log-likelihood (nats) and expected calibration error
/// (15 equal-width confidence bins) of `logits` (`n * classes`, row-major) against `labels`.
/// Returns zeros for an empty set.
pub fn calibration_metrics(logits: &[f32], labels: &[u8]) -> (f64, f64, f64) {
    let n = labels.len();
    if n == 0 || !logits.len().is_multiple_of(n) || logits.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let k = logits.len() / n;
    const BINS: usize = 15;
    let mut bin_n = [0usize; BINS];
    let mut bin_conf = [0f64; BINS];
    let mut bin_correct = [0f64; BINS];
    let (mut correct, mut nll) = (0usize, 0f64);
    for (row, &label) in logits.chunks(k).zip(labels) {
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        let (pred, &top) = row
            .iter()
            .enumerate()
            .fold((0, &row[0]), |a, b| if b.1 > a.1 { b } else { a });
        let label = label as usize;
        let ok = pred == label;
        correct += ok as usize;
        nll += lse - row.get(label).copied().unwrap_or(f32::NEG_INFINITY) as f64;
        let conf = (top as f64 - lse).exp();
        let b = ((conf * BINS as f64) as usize).min(BINS - 1);
        bin_n[b] += 1;
        bin_conf[b] += conf;
        bin_correct[b] += ok as u8 as f64;
    }
    let ece = (0..BINS)
        .filter(|&b| bin_n[b] > 0)
        .map(|b| (bin_correct[b] - bin_conf[b]).abs())
        .sum::<f64>()
        / n as f64;
    (correct as f64 / n as f64, nll / n as f64, ece)
}

/// Area under the ROC curve for scores where higher means "anomalous":
/// the probability that a random anomaly outscores a random normal, ties
/// counting one half (Mann–Whitney U).
pub fn auroc(normal: &[f64], anomalous: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = normal
        .iter()
        .map(|&s| (s, false))
        .chain(anomalous.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Average ranks over ties.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let avg = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg * all[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let (na, nn) = (anomalous.len() as f64, normal.len() as f64);
    (rank_sum - na * (na + 1.0) / 2.0) / (na * nn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_of_separated_tied_and_reversed_scores() {
        assert_eq!(auroc(&[1.0, 2.0], &[3.0, 4.0]), 1.0);
        assert_eq!(auroc(&[3.0, 4.0], &[1.0, 2.0]), 0.0);
        assert_eq!(auroc(&[1.0, 1.0], &[1.0, 1.0]), 0.5);
        assert!((auroc(&[1.0, 3.0], &[2.0, 4.0]) - 0.75).abs() < 1e-12);
    }

    #[test]
    fn argmax_accuracy_and_confusion_agree() {
        let scores = [1, 5, 5, 2, 0, 9];
        let pred = argmax_rows(&scores, 2);
        assert_eq!(pred, vec![1, 0, 1]);
        assert_eq!(accuracy(&pred, &[1, 1, 1]), 2.0 / 3.0);
        assert_eq!(
            confusion(&pred, &[1, 1, 1], 2),
            vec![vec![0, 0], vec![1, 2]]
        );
    }
}
