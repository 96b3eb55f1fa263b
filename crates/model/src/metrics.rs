//! Holdout metrics, defined as scikit-learn defines them (MAPE as a fraction, not percent).

use std::collections::BTreeMap;

use crate::features::Matrix;

pub fn regression(y: &[f64], pred: &[f64]) -> BTreeMap<String, f64> {
    let n = y.len().max(1) as f64;
    let mean = y.iter().sum::<f64>() / n;
    let (mut se, mut ae, mut ape, mut tot) = (0.0, 0.0, 0.0, 0.0);
    for (&t, &p) in y.iter().zip(pred) {
        se += (t - p) * (t - p);
        ae += (t - p).abs();
        ape += (t - p).abs() / t.abs().max(f64::EPSILON);
        tot += (t - mean) * (t - mean);
    }
    let mut m = BTreeMap::new();
    m.insert("rmse".into(), (se / n).sqrt());
    m.insert("mae".into(), ae / n);
    m.insert("mape".into(), ape / n);
    m.insert("r2".into(), if tot > 0.0 { 1.0 - se / tot } else { 0.0 });
    m.insert("rows".into(), y.len() as f64);
    m
}

pub fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Mean silhouette coefficient (Euclidean), 0 for points alone in their cluster.
pub fn silhouette(x: &Matrix, labels: &[usize], k: usize) -> f64 {
    let n = x.rows;
    if n < 2 {
        return 0.0;
    }
    let mut sizes = vec![0usize; k];
    for &l in labels {
        sizes[l] += 1;
    }
    let mut total = 0.0;
    let mut sums = vec![0.0; k];
    for i in 0..n {
        sums.iter_mut().for_each(|s| *s = 0.0);
        let xi = x.row(i);
        for j in 0..n {
            if i != j {
                sums[labels[j]] += squared_distance(xi, x.row(j)).sqrt();
            }
        }
        let own = labels[i];
        if sizes[own] <= 1 {
            continue;
        }
        let a = sums[own] / (sizes[own] - 1) as f64;
        let b = (0..k)
            .filter(|&c| c != own && sizes[c] > 0)
            .map(|c| sums[c] / sizes[c] as f64)
            .fold(f64::INFINITY, f64::min);
        if b.is_finite() && a.max(b) > 0.0 {
            total += (b - a) / a.max(b);
        }
    }
    total / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_metrics() {
        let m = regression(&[1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 3.0, 6.0]);
        assert_eq!(m["rmse"], 1.0);
        assert_eq!(m["mae"], 0.5);
        assert_eq!(m["mape"], 0.125);
        assert!((m["r2"] - 0.2).abs() < 1e-12);
    }

    #[test]
    fn silhouette_of_separated_clusters_is_high() {
        let x = Matrix {
            rows: 4,
            cols: 1,
            data: vec![0.0, 1.0, 10.0, 11.0],
        };
        let s = silhouette(&x, &[0, 0, 1, 1], 2);
        // a = 1, b = 10 and 9 (avg of 10,11 and 9,10 distances) → ≈ 0.9
        assert!(s > 0.88 && s < 0.92, "{s}");
    }
}
