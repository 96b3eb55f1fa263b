//! Gradient-boosted regression trees on binned features, grown leaf-wise: the algorithm of
//! scikit-learn's `HistGradientBoostingRegressor` (squared error), with its defaults and its
//! split rule, so results are comparable to it on the same matrix.
//!
//! - Binning: per feature, the midpoints between distinct values when there are at most
//!   `max_bins`, else the `max_bins - 1` percentiles (numpy "midpoint" method). A value goes to
//!   the bin of the first threshold it does not exceed.
//! - Boosting: start from the mean; each tree fits the gradients (prediction − target, hessian 1).
//!   A node's best split maximizes G_L²/(n_L+λ) + G_R²/(n_R+λ) − G²/(n+λ) over features and bins
//!   with at least `min_samples_leaf` rows each side; the splittable node with the largest gain
//!   is split next until `max_leaf_nodes`. Leaf value −G/(n+λ) × learning rate.
//! - Histograms of the smaller child are built from its rows, the sibling's by subtraction;
//!   features are split over two threads for large nodes, and large nodes fill four interleaved
//!   copies of each feature's histogram (independent chains of updates), added at the end.
//! - Early stopping (auto: above 10,000 rows): 10% validation, stop when the validation loss has
//!   not improved by `tol` for `n_iter_no_change` iterations.
//!
//! Why not a crate: `linfa` has no gradient boosting, `smartcore` has random forests but no
//! boosting, and `perpetual` implements a different (self-tuning, budget-driven) booster whose
//! model cannot be stored in our documented model file; this is ~300 lines.

use serde::{Deserialize, Serialize};

use crate::features::Matrix;
use crate::rng::Rng;
use crate::spec::{EarlyStopping, GbtParams};

/// One tree as flat arrays; node 0 is the root, `left[i] == 0` marks a leaf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub feature: Vec<u32>,
    pub threshold: Vec<f64>,
    pub left: Vec<u32>,
    pub right: Vec<u32>,
    pub value: Vec<f64>,
}

impl Tree {
    pub fn predict_row(&self, x: &[f64]) -> f64 {
        let mut n = 0usize;
        while self.left[n] != 0 {
            n = if x[self.feature[n] as usize] <= self.threshold[n] {
                self.left[n] as usize
            } else {
                self.right[n] as usize
            };
        }
        self.value[n]
    }

    /// Whether the arrays form a tree over `features` columns (checked when a model file loads).
    pub fn check(&self, features: usize) -> Result<(), String> {
        let n = self.value.len();
        if n == 0
            || [
                self.feature.len(),
                self.threshold.len(),
                self.left.len(),
                self.right.len(),
            ]
            .iter()
            .any(|&l| l != n)
        {
            return Err("tree arrays differ in length or are empty".into());
        }
        for i in 0..n {
            if self.left[i] != 0 {
                let (l, r) = (self.left[i] as usize, self.right[i] as usize);
                // Children come after their parent: no cycles, no walking off the end.
                if l <= i || r <= i || l >= n || r >= n || self.feature[i] as usize >= features {
                    return Err(format!("tree node {i} points outside the tree"));
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradientBoosting {
    pub baseline: f64,
    pub learning_rate: f64,
    pub trees: Vec<Tree>,
}

impl GradientBoosting {
    pub fn predict_row(&self, x: &[f64]) -> f64 {
        self.baseline + self.trees.iter().map(|t| t.predict_row(x)).sum::<f64>()
    }
}

/// What happened during fitting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    pub iterations: usize,
    pub early_stopped: bool,
    pub validation_rows: usize,
}

/// Bin thresholds of one feature.
pub fn bin_thresholds(values: &[f64], max_bins: usize) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let mut distinct = sorted.clone();
    distinct.dedup();
    if distinct.len() <= max_bins {
        return distinct.windows(2).map(|w| (w[0] + w[1]) * 0.5).collect();
    }
    let n = sorted.len();
    (1..max_bins)
        .map(|k| {
            let q = k as f64 / max_bins as f64 * (n - 1) as f64;
            let (lo, hi) = (q.floor() as usize, q.ceil() as usize);
            (sorted[lo] + sorted[hi]) * 0.5
        })
        .collect()
}

fn bin_of(thresholds: &[f64], x: f64) -> u8 {
    thresholds.partition_point(|&t| t < x) as u8
}

const BINS: usize = 256;

/// Sum of gradients and row count of one bin.
#[derive(Debug, Clone, Copy, Default)]
struct Cell {
    grad: f64,
    count: u32,
}

/// Per feature, `BINS` cells.
struct Histogram {
    cells: Vec<Cell>,
}

impl Histogram {
    fn zero(features: usize) -> Histogram {
        Histogram {
            cells: vec![Cell::default(); features * BINS],
        }
    }

    fn minus(&self, other: &Histogram) -> Histogram {
        Histogram {
            cells: self
                .cells
                .iter()
                .zip(&other.cells)
                .map(|(a, b)| Cell {
                    grad: a.grad - b.grad,
                    count: a.count - b.count,
                })
                .collect(),
        }
    }
}

/// Below this many rows a node's histogram is filled directly.
const LANES_FROM: usize = 4096;

/// Adds row k's gradient to the cell of `bin(k)`, for every k of `grad`. Large nodes go through
/// four interleaved copies of the histogram (16 KiB, in L1): consecutive rows in the same bin
/// (features with few distinct values: flags, one-hot columns, counts) otherwise form one chain
/// of dependent read-modify-writes; four copies run four chains at once. The copies are added
/// into `h` at the end.
fn accumulate(h: &mut [Cell], bin: impl Fn(usize) -> u8, grad: &[f32]) {
    let n = grad.len();
    if n < LANES_FROM {
        for (k, &g) in grad.iter().enumerate() {
            let c = &mut h[bin(k) as usize];
            c.grad += f64::from(g);
            c.count += 1;
        }
        return;
    }
    let mut lanes = [[Cell::default(); BINS]; 4];
    let full = n / 4 * 4;
    for (q, g4) in grad[..full].chunks_exact(4).enumerate() {
        let k = q * 4;
        for (l, (lane, &g)) in lanes.iter_mut().zip(g4).enumerate() {
            let c = &mut lane[bin(k + l) as usize];
            c.grad += f64::from(g);
            c.count += 1;
        }
    }
    for (k, &g) in grad.iter().enumerate().skip(full) {
        let c = &mut lanes[0][bin(k) as usize];
        c.grad += f64::from(g);
        c.count += 1;
    }
    for (b, cell) in h.iter_mut().enumerate().take(BINS) {
        cell.grad += (lanes[0][b].grad + lanes[1][b].grad) + (lanes[2][b].grad + lanes[3][b].grad);
        cell.count += lanes[0][b].count + lanes[1][b].count + lanes[2][b].count + lanes[3][b].count;
    }
}

struct Split {
    feature: usize,
    bin: u8,
    gain: f64,
    /// Sum of the gradients going left (from the histogram).
    grad_left: f64,
}

struct Node {
    start: usize,
    end: usize,
    sum_grad: f64,
    depth: u32,
    hist: Option<Histogram>,
    split: Option<Split>,
    /// Index in the output tree.
    out: usize,
}

struct Grower<'a> {
    bins: &'a [u8],
    rows: usize,
    features: usize,
    thresholds: &'a [Vec<f64>],
    /// Gradients in single precision, as scikit-learn keeps them (sums are double).
    grad: &'a [f32],
    p: &'a GbtParams,
}

impl Grower<'_> {
    /// The histogram of the rows in `idx` (`None`: every row, read in order).
    fn histogram(&self, idx: Option<&[u32]>) -> Histogram {
        let mut h = Histogram::zero(self.features);
        let rows = idx.map_or(self.rows, <[u32]>::len);
        // The node's gradients gathered once, in row order, for every feature's pass.
        let ordered: Vec<f32> = idx.map_or_else(Vec::new, |idx| {
            idx.iter().map(|&i| self.grad[i as usize]).collect()
        });
        let fill = |fs: std::ops::Range<usize>, cells: &mut [Cell]| {
            for (k, f) in fs.enumerate() {
                let col = &self.bins[f * self.rows..(f + 1) * self.rows];
                let h = &mut cells[k * BINS..(k + 1) * BINS];
                match idx {
                    Some(idx) => accumulate(h, |k| col[idx[k] as usize], &ordered),
                    None => accumulate(h, |k| col[k], &self.grad[..self.rows]),
                }
            }
        };
        if rows * self.features > 50_000 && self.features > 1 {
            let half = self.features / 2;
            let (c1, c2) = h.cells.split_at_mut(half * BINS);
            std::thread::scope(|s| {
                s.spawn(|| fill(0..half, c1));
                fill(half..self.features, c2);
            });
        } else {
            fill(0..self.features, &mut h.cells);
        }
        h
    }

    fn best_split(&self, h: &Histogram, n: usize, sum_grad: f64) -> Option<Split> {
        let l2 = self.p.l2_regularization;
        let msl = self.p.min_samples_leaf as usize;
        let parent = sum_grad * sum_grad / (n as f64 + l2);
        let mut best: Option<Split> = None;
        for f in 0..self.features {
            let nbins = self.thresholds[f].len() + 1;
            let (mut gl, mut nl) = (0.0, 0usize);
            for b in 0..nbins.saturating_sub(1) {
                let cell = h.cells[f * BINS + b];
                gl += cell.grad;
                nl += cell.count as usize;
                if nl < msl {
                    continue;
                }
                let nr = n - nl;
                if nr < msl {
                    break;
                }
                let gr = sum_grad - gl;
                let gain = gl * gl / (nl as f64 + l2) + gr * gr / (nr as f64 + l2) - parent;
                if gain > 0.0 && best.as_ref().is_none_or(|s| gain > s.gain) {
                    best = Some(Split {
                        feature: f,
                        bin: b as u8,
                        gain,
                        grad_left: gl,
                    });
                }
            }
        }
        best
    }

    /// Grows one tree over `idx` (reordered in place); returns it and each row's leaf value.
    fn grow(&self, idx: &mut [u32], raw: &mut [f64]) -> Tree {
        let lr = self.p.learning_rate;
        let l2 = self.p.l2_regularization;
        let msl = self.p.min_samples_leaf as usize;
        let mut tree = Tree {
            feature: vec![0],
            threshold: vec![0.0],
            left: vec![0],
            right: vec![0],
            value: vec![0.0],
        };
        let sum_grad: f64 = self.grad.iter().map(|&g| f64::from(g)).sum();
        let mut root = Node {
            start: 0,
            end: idx.len(),
            sum_grad,
            depth: 0,
            hist: None,
            split: None,
            out: 0,
        };
        let mut open: Vec<Node> = Vec::new();
        let mut leaves: Vec<Node> = Vec::new();
        if idx.len() >= 2 * msl {
            let h = self.histogram(None);
            root.split = self.best_split(&h, idx.len(), sum_grad);
            root.hist = Some(h);
        }
        if root.split.is_some() {
            open.push(root);
        } else {
            leaves.push(root);
        }
        let mut n_leaves = 1usize;
        let mut scratch = vec![0u32; 2 * idx.len()];
        while !open.is_empty() && n_leaves < self.p.max_leaf_nodes as usize {
            let pos = open
                .iter()
                .enumerate()
                .max_by(|a, b| {
                    let (ga, gb) = (gain_of(a.1), gain_of(b.1));
                    ga.total_cmp(&gb).then(b.0.cmp(&a.0))
                })
                .map_or(0, |(i, _)| i);
            let node = open.swap_remove(pos);
            let Some(split) = &node.split else { continue };
            let (f, b) = (split.feature, split.bin);
            // Stable, branch-free partition of the node's rows.
            let col = &self.bins[f * self.rows..(f + 1) * self.rows];
            let rows = &mut idx[node.start..node.end];
            let (mut l, mut r) = (0usize, 0usize);
            {
                let (left_buf, right_buf) = scratch.split_at_mut(rows.len());
                for &i in rows.iter() {
                    let go_left = col[i as usize] <= b;
                    left_buf[l] = i;
                    right_buf[r] = i;
                    l += usize::from(go_left);
                    r += usize::from(!go_left);
                }
                rows[..l].copy_from_slice(&left_buf[..l]);
                rows[l..].copy_from_slice(&right_buf[..r]);
            }
            let mid = node.start + l;
            let left_grad = split.grad_left;
            let out_l = tree.value.len();
            for _ in 0..2 {
                tree.feature.push(0);
                tree.threshold.push(0.0);
                tree.left.push(0);
                tree.right.push(0);
                tree.value.push(0.0);
            }
            tree.feature[node.out] = f as u32;
            tree.threshold[node.out] = self.thresholds[f][b as usize];
            tree.left[node.out] = out_l as u32;
            tree.right[node.out] = (out_l + 1) as u32;
            n_leaves += 1;
            let depth = node.depth + 1;
            let mut children = [
                Node {
                    start: node.start,
                    end: mid,
                    sum_grad: left_grad,
                    depth,
                    hist: None,
                    split: None,
                    out: out_l,
                },
                Node {
                    start: mid,
                    end: node.end,
                    sum_grad: node.sum_grad - left_grad,
                    depth,
                    hist: None,
                    split: None,
                    out: out_l + 1,
                },
            ];
            let depth_ok = self.p.max_depth.is_none_or(|m| depth < m);
            let can_split = |c: &Node| depth_ok && c.end - c.start >= 2 * msl;
            if can_split(&children[0]) || can_split(&children[1]) {
                let small = if mid - node.start <= node.end - mid {
                    0
                } else {
                    1
                };
                let hs = self.histogram(Some(&idx[children[small].start..children[small].end]));
                let parent_hist = node.hist.as_ref();
                let hl = parent_hist.map(|p| p.minus(&hs));
                if let Some(other) = hl {
                    children[1 - small].hist = Some(other);
                    children[small].hist = Some(hs);
                }
            }
            for mut c in children {
                if can_split(&c)
                    && let Some(h) = &c.hist
                {
                    c.split = self.best_split(h, c.end - c.start, c.sum_grad);
                }
                if c.split.is_some() {
                    open.push(c);
                } else {
                    c.hist = None;
                    leaves.push(c);
                }
            }
        }
        leaves.append(&mut open);
        for leaf in &leaves {
            let n = (leaf.end - leaf.start) as f64;
            let value = -leaf.sum_grad / (n + l2) * lr;
            tree.value[leaf.out] = value;
            for &i in &idx[leaf.start..leaf.end] {
                raw[i as usize] += value;
            }
        }
        tree
    }
}

fn gain_of(n: &Node) -> f64 {
    n.split.as_ref().map_or(f64::NEG_INFINITY, |s| s.gain)
}

/// Fits the booster on `x`, `y`.
pub fn fit(
    x: &Matrix,
    y: &[f64],
    p: &GbtParams,
    seed: u64,
) -> Result<(GradientBoosting, FitReport), String> {
    if x.rows < 2 {
        return Err("fewer than 2 training rows".into());
    }
    if x.rows > u32::MAX as usize {
        return Err(format!(
            "{} training rows is more than this trainer handles (2^32)",
            x.rows
        ));
    }
    let early = match p.early_stopping {
        EarlyStopping::On => true,
        EarlyStopping::Off => false,
        EarlyStopping::Auto => x.rows > 10_000,
    };
    let mut order: Vec<usize> = (0..x.rows).collect();
    let (fit_rows, val_rows) = if early {
        Rng::new(seed ^ 0x5EED).shuffle(&mut order);
        let n_val = ((x.rows as f64) * p.validation_fraction).ceil() as usize;
        let n_val = n_val.clamp(1, x.rows - 1);
        let (v, t) = order.split_at(n_val);
        let mut t = t.to_vec();
        t.sort_unstable();
        (t, v.to_vec())
    } else {
        (order, Vec::new())
    };
    let xt = x.take(&fit_rows);
    let yt: Vec<f64> = fit_rows.iter().map(|&i| y[i]).collect();
    let n = xt.rows;
    let features = xt.cols;
    let max_bins = p.max_bins as usize;
    let thresholds: Vec<Vec<f64>> = (0..features)
        .map(|f| bin_thresholds(&xt.column(f), max_bins))
        .collect();
    let mut bins = vec![0u8; features * n];
    for f in 0..features {
        for i in 0..n {
            bins[f * n + i] = bin_of(&thresholds[f], xt.data[i * features + f]);
        }
    }
    let baseline = yt.iter().sum::<f64>() / n as f64;
    let mut raw = vec![baseline; n];
    let mut grad = vec![0.0f32; n];
    let mut val_raw = vec![baseline; val_rows.len()];
    let val_loss = |val_raw: &[f64]| -> f64 {
        let s: f64 = val_rows
            .iter()
            .zip(val_raw)
            .map(|(&i, r)| (y[i] - r) * (y[i] - r))
            .sum();
        -0.5 * s / val_rows.len().max(1) as f64
    };
    let mut scores = vec![val_loss(&val_raw)];
    let mut trees = Vec::new();
    let mut idx: Vec<u32> = (0..n as u32).collect();
    let mut early_stopped = false;
    for _ in 0..p.max_iter {
        for i in 0..n {
            grad[i] = (raw[i] - yt[i]) as f32;
        }
        let grower = Grower {
            bins: &bins,
            rows: n,
            features,
            thresholds: &thresholds,
            grad: &grad,
            p,
        };
        let tree = grower.grow(&mut idx, &mut raw);
        if early {
            for (r, &i) in val_raw.iter_mut().zip(&val_rows) {
                *r += tree.predict_row(x.row(i));
            }
        }
        trees.push(tree);
        if early {
            scores.push(val_loss(&val_raw));
            let reference = p.n_iter_no_change as usize + 1;
            if scores.len() >= reference {
                let base = scores[scores.len() - reference] + p.tol;
                if !scores[scores.len() - reference + 1..]
                    .iter()
                    .any(|&s| s > base)
                {
                    early_stopped = true;
                    break;
                }
            }
        }
    }
    let report = FitReport {
        iterations: trees.len(),
        early_stopped,
        validation_rows: val_rows.len(),
    };
    Ok((
        GradientBoosting {
            baseline,
            learning_rate: p.learning_rate,
            trees,
        },
        report,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_match_numpy() {
        assert_eq!(bin_thresholds(&[3.0, 1.0, 2.0, 2.0], 255), vec![1.5, 2.5]);
        // 5 distinct values, 4 bins: percentiles 25/50/75 with the midpoint method.
        let t = bin_thresholds(&[1.0, 2.0, 3.0, 4.0, 5.0], 4);
        assert_eq!(t, vec![2.0, 3.0, 4.0]);
        assert_eq!(bin_of(&[1.5, 2.5], 1.5), 0);
        assert_eq!(bin_of(&[1.5, 2.5], 1.6), 1);
        assert_eq!(bin_of(&[1.5, 2.5], 9.0), 2);
    }

    #[test]
    fn learns_a_step_and_an_interaction() {
        let mut data = Vec::new();
        let mut y = Vec::new();
        let mut rng = Rng::new(1);
        for _ in 0..2000 {
            let (a, b) = (rng.next_f64(), rng.next_f64());
            data.extend([a, b]);
            y.push(if a > 0.5 { 10.0 } else { 0.0 } + if b > 0.3 && a < 0.5 { 5.0 } else { 0.0 });
        }
        let x = Matrix {
            rows: 2000,
            cols: 2,
            data,
        };
        let (model, report) = fit(&x, &y, &GbtParams::default(), 7).unwrap();
        assert_eq!(report.iterations, 100);
        let rmse = (0..2000)
            .map(|i| (model.predict_row(x.row(i)) - y[i]).powi(2))
            .sum::<f64>()
            .sqrt()
            / (2000f64).sqrt();
        assert!(rmse < 0.3, "{rmse}");
        for t in &model.trees {
            t.check(2).unwrap();
            assert!(t.value.iter().filter(|_| true).count() <= 61);
        }
        let json = serde_json::to_string(&model).unwrap();
        let back: GradientBoosting = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back.predict_row(&[0.7, 0.1]),
            model.predict_row(&[0.7, 0.1])
        );
    }

    #[test]
    fn early_stopping_stops_on_noise() {
        let mut rng = Rng::new(3);
        let x = Matrix {
            rows: 20_000,
            cols: 1,
            data: (0..20_000).map(|_| rng.next_f64()).collect(),
        };
        let y: Vec<f64> = (0..20_000).map(|_| rng.next_f64()).collect();
        let (_, report) = fit(&x, &y, &GbtParams::default(), 1).unwrap();
        assert!(
            report.early_stopped && report.iterations < 100,
            "{report:?}"
        );
        assert_eq!(report.validation_rows, 2000);
    }

    #[test]
    fn broken_trees_are_refused() {
        let t = Tree {
            feature: vec![0, 0, 0],
            threshold: vec![0.5, 0.0, 0.0],
            left: vec![1, 0, 0],
            right: vec![0, 0, 0],
            value: vec![0.0, 1.0, 2.0],
        };
        assert!(t.check(1).is_err());
        assert!(
            Tree {
                left: vec![1, 0, 0],
                right: vec![2, 0, 0],
                ..t.clone()
            }
            .check(1)
            .is_ok()
        );
        assert!(
            Tree {
                left: vec![1, 0, 0],
                right: vec![2, 0, 0],
                ..t
            }
            .check(0)
            .is_err()
        );
    }
}
