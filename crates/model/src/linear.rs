//! Ridge regression (and ordinary least squares as alpha 0) with an intercept, solved as
//! scikit-learn's `Ridge(solver="cholesky")` does: center X and y, solve
//! (XᵀX + αI) w = Xᵀy by Cholesky, intercept = ȳ − x̄·w.

use serde::{Deserialize, Serialize};

use crate::features::Matrix;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    pub alpha: f64,
    pub intercept: f64,
    pub coef: Vec<f64>,
}

impl LinearModel {
    /// Fits on `x`, `y`; the error names the problem (collinear features without ridge).
    pub fn fit(x: &Matrix, y: &[f64], alpha: f64) -> Result<LinearModel, String> {
        let (n, d) = (x.rows, x.cols);
        if n == 0 {
            return Err("no training rows".into());
        }
        let mut mean = vec![0.0; d];
        for i in 0..n {
            for (m, v) in mean.iter_mut().zip(x.row(i)) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let y_mean = y.iter().sum::<f64>() / n as f64;
        // Gram matrix and Xᵀy of the centered data.
        let mut gram = vec![0.0; d * d];
        let mut xty = vec![0.0; d];
        let mut centered = vec![0.0; d];
        for (i, &yi) in y.iter().enumerate().take(n) {
            for (c, (v, m)) in centered.iter_mut().zip(x.row(i).iter().zip(&mean)) {
                *c = v - m;
            }
            let yc = yi - y_mean;
            for a in 0..d {
                let ca = centered[a];
                if ca == 0.0 {
                    continue;
                }
                xty[a] += ca * yc;
                let row = &mut gram[a * d..a * d + d];
                for (g, cb) in row.iter_mut().zip(&centered).skip(a) {
                    *g += ca * cb;
                }
            }
        }
        for a in 0..d {
            for b in 0..a {
                gram[a * d + b] = gram[b * d + a];
            }
            gram[a * d + a] += alpha;
        }
        let coef = cholesky_solve(&mut gram, &xty, d).ok_or_else(|| {
            "the features are collinear (e.g. every one-hot category together with the intercept, or a constant column); use kind: ridge with alpha > 0".to_string()
        })?;
        let intercept = y_mean - mean.iter().zip(&coef).map(|(m, w)| m * w).sum::<f64>();
        Ok(LinearModel {
            alpha,
            intercept,
            coef,
        })
    }

    pub fn predict_row(&self, x: &[f64]) -> f64 {
        self.intercept + self.coef.iter().zip(x).map(|(w, v)| w * v).sum::<f64>()
    }
}

/// Solves A w = b for symmetric positive definite A (overwritten by its Cholesky factor).
fn cholesky_solve(a: &mut [f64], b: &[f64], d: usize) -> Option<Vec<f64>> {
    let scale = (0..d)
        .map(|i| a[i * d + i].abs())
        .fold(0.0, f64::max)
        .max(1.0);
    for j in 0..d {
        let mut s = a[j * d + j];
        for k in 0..j {
            s -= a[j * d + k] * a[j * d + k];
        }
        if s <= 1e-12 * scale {
            return None;
        }
        let l = s.sqrt();
        a[j * d + j] = l;
        for i in (j + 1)..d {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = s / l;
        }
    }
    let mut z = vec![0.0; d];
    for i in 0..d {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * d + k] * z[k];
        }
        z[i] = s / a[i * d + i];
    }
    let mut w = vec![0.0; d];
    for i in (0..d).rev() {
        let mut s = z[i];
        for k in (i + 1)..d {
            s -= a[k * d + i] * w[k];
        }
        w[i] = s / a[i * d + i];
    }
    Some(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_plane_and_shrinks_with_alpha() {
        let mut data = Vec::new();
        let mut y = Vec::new();
        for i in 0..50 {
            let (a, b) = (i as f64, ((i * 7) % 11) as f64);
            data.extend([a, b]);
            y.push(3.0 + 2.0 * a - 0.5 * b);
        }
        let x = Matrix {
            rows: 50,
            cols: 2,
            data,
        };
        let m = LinearModel::fit(&x, &y, 0.0).unwrap();
        assert!((m.intercept - 3.0).abs() < 1e-9 && (m.coef[0] - 2.0).abs() < 1e-9);
        assert!((m.coef[1] + 0.5).abs() < 1e-9);
        let r = LinearModel::fit(&x, &y, 1e6).unwrap();
        assert!(r.coef[0].abs() < 2.0 && r.coef[0] > 0.0);
        let constant = Matrix {
            rows: 3,
            cols: 1,
            data: vec![1.0, 1.0, 1.0],
        };
        assert!(
            LinearModel::fit(&constant, &[1.0, 2.0, 3.0], 0.0)
                .unwrap_err()
                .contains("collinear")
        );
    }
}
