//! k-means as scikit-learn's `KMeans(init="k-means++", algorithm="lloyd")`: greedy k-means++
//! seeding (2 + ln k candidates per centre), Lloyd iterations until the centres move less than
//! `tol` × the mean feature variance, the best of `n_init` seeds by inertia. An empty cluster
//! takes the point farthest from its centre.

use serde::{Deserialize, Serialize};

use crate::features::Matrix;
use crate::metrics::squared_distance;
use crate::rng::Rng;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KmeansFit {
    pub centroids: Vec<Vec<f64>>,
    pub inertia: f64,
    pub iterations: usize,
    #[serde(skip)]
    pub labels: Vec<usize>,
}

/// The index of the centroid nearest to `x` and the squared distance.
pub fn nearest(centroids: &[Vec<f64>], x: &[f64]) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (c, centre) in centroids.iter().enumerate() {
        let d = squared_distance(centre, x);
        if d < best.1 {
            best = (c, d);
        }
    }
    best
}

fn plus_plus(x: &Matrix, k: usize, rng: &mut Rng) -> Vec<Vec<f64>> {
    let n = x.rows;
    let trials = 2 + (k as f64).ln().floor() as usize;
    let mut centres = vec![x.row(rng.below(n)).to_vec()];
    let mut closest: Vec<f64> = (0..n)
        .map(|i| squared_distance(&centres[0], x.row(i)))
        .collect();
    let mut pot: f64 = closest.iter().sum();
    while centres.len() < k {
        let mut cumulative = Vec::with_capacity(n);
        let mut acc = 0.0;
        for d in &closest {
            acc += d;
            cumulative.push(acc);
        }
        let mut best: Option<(f64, usize, Vec<f64>)> = None;
        for _ in 0..trials {
            let target = rng.next_f64() * pot;
            let cand = cumulative.partition_point(|&c| c < target).min(n - 1);
            let dists: Vec<f64> = (0..n)
                .map(|i| closest[i].min(squared_distance(x.row(cand), x.row(i))))
                .collect();
            let p: f64 = dists.iter().sum();
            if best.as_ref().is_none_or(|b| p < b.0) {
                best = Some((p, cand, dists));
            }
        }
        let Some((p, cand, dists)) = best else { break };
        pot = p;
        closest = dists;
        centres.push(x.row(cand).to_vec());
    }
    centres
}

fn lloyd(x: &Matrix, mut centres: Vec<Vec<f64>>, max_iter: usize, tol: f64) -> KmeansFit {
    let (n, d, k) = (x.rows, x.cols, centres.len());
    let mut labels = vec![0usize; n];
    let mut iterations = 0;
    for it in 0..max_iter {
        iterations = it + 1;
        let mut changed = false;
        let mut dist = vec![0.0; n];
        for i in 0..n {
            let (c, dd) = nearest(&centres, x.row(i));
            if c != labels[i] || it == 0 {
                changed = true;
            }
            labels[i] = c;
            dist[i] = dd;
        }
        let mut sums = vec![vec![0.0; d]; k];
        let mut counts = vec![0usize; k];
        for i in 0..n {
            counts[labels[i]] += 1;
            for (s, v) in sums[labels[i]].iter_mut().zip(x.row(i)) {
                *s += v;
            }
        }
        for c in 0..k {
            if counts[c] == 0 {
                // Relocate an empty cluster to the point farthest from its centre.
                let far = (0..n)
                    .max_by(|&a, &b| dist[a].total_cmp(&dist[b]))
                    .unwrap_or(0);
                sums[c] = x.row(far).to_vec();
                counts[c] = 1;
                dist[far] = 0.0;
            }
        }
        let mut shift = 0.0;
        for c in 0..k {
            let new: Vec<f64> = sums[c].iter().map(|s| s / counts[c] as f64).collect();
            shift += squared_distance(&new, &centres[c]);
            centres[c] = new;
        }
        if !changed || shift <= tol {
            break;
        }
    }
    // Labels and inertia consistent with the final centres.
    let mut inertia = 0.0;
    for (i, label) in labels.iter_mut().enumerate() {
        let (c, dd) = nearest(&centres, x.row(i));
        *label = c;
        inertia += dd;
    }
    KmeansFit {
        centroids: centres,
        inertia,
        iterations,
        labels,
    }
}

/// The best of `n_init` seeded runs.
pub fn fit(
    x: &Matrix,
    k: usize,
    n_init: usize,
    max_iter: usize,
    tol: f64,
    seed: u64,
) -> Result<KmeansFit, String> {
    if x.rows < k {
        return Err(format!("{} rows cannot form {k} clusters", x.rows));
    }
    let (n, d) = (x.rows, x.cols);
    let mut variance = 0.0;
    for j in 0..d {
        let col = x.column(j);
        let mean = col.iter().sum::<f64>() / n as f64;
        variance += col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
    }
    let tol = tol * variance / d.max(1) as f64;
    let mut rng = Rng::new(seed);
    let mut best: Option<KmeansFit> = None;
    for _ in 0..n_init.max(1) {
        let centres = plus_plus(x, k, &mut rng);
        let run = lloyd(x, centres, max_iter, tol);
        if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
            best = Some(run);
        }
    }
    best.ok_or_else(|| "no k-means run".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_three_blobs() {
        let mut rng = Rng::new(9);
        let centres = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)];
        let mut data = Vec::new();
        for i in 0..600 {
            let (cx, cy) = centres[i % 3];
            data.extend([cx + rng.next_f64() - 0.5, cy + rng.next_f64() - 0.5]);
        }
        let x = Matrix {
            rows: 600,
            cols: 2,
            data,
        };
        let fit = fit(&x, 3, 4, 300, 1e-4, 42).unwrap();
        // Each blob is uniform on a unit square: variance 1/12 per axis → inertia ≈ 600 × 2/12.
        assert!((fit.inertia - 100.0).abs() < 10.0, "{}", fit.inertia);
        for i in 0..3 {
            assert_eq!(fit.labels[i], fit.labels[i + 3]);
        }
        assert!(
            super::fit(
                &Matrix {
                    rows: 2,
                    cols: 1,
                    data: vec![0.0, 1.0]
                },
                3,
                1,
                10,
                1e-4,
                1
            )
            .is_err()
        );
    }
}
