//! Fitting a spec on in-memory data: the split, the encoder, the estimator, holdout metrics,
//! cross-validation, and for clustering the per-segment summaries. No I/O here.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::features::{Encoder, Matrix};
use crate::frame::{Column, ColumnData, Frame, ValueKind};
use crate::kmeans;
use crate::linear::LinearModel;
use crate::metrics;
use crate::model_file::{Estimator, KmeansModel, MODEL_FORMAT, ModelFile, Output};
use crate::rng::Rng;
use crate::spec::{Algorithm, CUSTOMER_FEATURES, FeatureSpec, ModelSpec, Task};
use crate::{gbt, spec};

/// A fitted model with what the card and the registry record about it.
#[derive(Debug, Clone)]
pub struct Trained {
    pub model: ModelFile,
    /// Holdout metrics (numbers only: the approval policy reads them).
    pub metrics: BTreeMap<String, f64>,
    /// Cross-validation, fit report, split sizes.
    pub details: Value,
    /// Regression holdout rows: (actual, predicted).
    pub holdout: Vec<(f64, f64)>,
    /// Clustering plot points: (frequency, monetary, segment).
    pub points: Vec<(f64, f64, usize)>,
    /// The encoded train and holdout matrices with their targets (for --export-split).
    pub split: Option<SplitData>,
}

#[derive(Debug, Clone)]
pub struct SplitData {
    pub features: Vec<String>,
    pub target: String,
    pub train: (Matrix, Vec<f64>),
    pub holdout: (Matrix, Vec<f64>),
}

/// Seeded holdout split of `n` rows: (train, holdout), each in ascending order. The holdout has
/// ceil(n × fraction) rows.
pub fn split_rows(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(seed).shuffle(&mut order);
    let n_hold = ((n as f64) * fraction).ceil() as usize;
    let n_hold = n_hold.min(n.saturating_sub(1));
    let (h, t) = order.split_at(n_hold);
    let (mut h, mut t) = (h.to_vec(), t.to_vec());
    h.sort_unstable();
    t.sort_unstable();
    (t, h)
}

fn params_of(spec: &ModelSpec) -> Value {
    let mut v = serde_json::to_value(&spec.algorithm).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("holdout".into(), json!(spec.split.holdout));
        o.insert("seed".into(), json!(spec.split.seed));
        if let Some(k) = spec.split.k_folds {
            o.insert("k_folds".into(), json!(k));
        }
    }
    v
}

/// The algorithm's parameters and the split, as the card and MLflow show them.
pub fn params(spec: &ModelSpec) -> Value {
    params_of(spec)
}

fn fit_estimator(
    algorithm: &Algorithm,
    x: &Matrix,
    y: &[f64],
    seed: u64,
    dataset: &str,
) -> Result<(Estimator, Value)> {
    match algorithm {
        Algorithm::Ridge(p) => LinearModel::fit(x, y, p.alpha)
            .map(|m| (Estimator::Linear(m), json!({})))
            .map_err(|m| Error::data(dataset, m)),
        Algorithm::Linear(_) => LinearModel::fit(x, y, 0.0)
            .map(|m| (Estimator::Linear(m), json!({})))
            .map_err(|m| Error::data(dataset, m)),
        Algorithm::GradientBoosting(p) => gbt::fit(x, y, p, seed)
            .map(|(m, r)| (Estimator::GradientBoosting(m), json!(r)))
            .map_err(|m| Error::data(dataset, m)),
        Algorithm::Kmeans(_) => Err(Error::data(dataset, "k-means is not a regressor")),
    }
}

/// Fits a regression spec on `frame` (which holds the features' inputs and the target).
pub fn regression(spec: &ModelSpec, frame: &Frame, dataset: &str) -> Result<Trained> {
    let target = spec.target.clone().unwrap_or_default();
    let y_all = frame
        .column(&target)
        .and_then(Column::numbers)
        .ok_or_else(|| {
            Error::data(
                dataset,
                format!("target {target} is missing or not numeric"),
            )
        })?;
    let labelled: Vec<usize> = (0..frame.rows).filter(|&i| y_all[i].is_finite()).collect();
    let dropped = frame.rows - labelled.len();
    if labelled.len() < 10 {
        return Err(Error::data(
            dataset,
            format!(
                "{} rows have a {target}; training needs at least 10",
                labelled.len()
            ),
        ));
    }
    let frame = frame.take(&labelled);
    let y: Vec<f64> = labelled.iter().map(|&i| y_all[i]).collect();
    let (train, hold) = split_rows(frame.rows, spec.split.holdout, spec.split.seed);
    let (train_frame, hold_frame) = (frame.take(&train), frame.take(&hold));
    let (y_train, y_hold): (Vec<f64>, Vec<f64>) = (
        train.iter().map(|&i| y[i]).collect(),
        hold.iter().map(|&i| y[i]).collect(),
    );
    let encoder = Encoder::fit(&spec.features, &train_frame, dataset)?;
    let x_train = encoder
        .transform(&train_frame)
        .map_err(|m| Error::data(dataset, m))?;
    let x_hold = encoder
        .transform(&hold_frame)
        .map_err(|m| Error::data(dataset, m))?;
    let clock = std::time::Instant::now();
    let (estimator, fit_report) = fit_estimator(
        &spec.algorithm,
        &x_train,
        &y_train,
        spec.split.seed,
        dataset,
    )?;
    let fit_seconds = clock.elapsed().as_secs_f64();
    let features = encoder.feature_names();
    let model = ModelFile {
        format: MODEL_FORMAT.into(),
        model: spec.model.clone(),
        task: Task::Regression,
        target: Some(target.clone()),
        encoder,
        features: features.clone(),
        estimator,
        output: Output {
            name: "predict".into(),
            datatype: "FP64".into(),
        },
        segments: Vec::new(),
    };
    let pred = model.predict_matrix(&x_hold);
    let mut m = metrics::regression(&y_hold, &pred);
    m.insert("train_rows".into(), train.len() as f64);
    let clock = std::time::Instant::now();
    let cv = match spec.split.k_folds {
        Some(k) => Some(cross_validate(
            spec,
            &train_frame,
            &y_train,
            k as usize,
            dataset,
        )?),
        None => None,
    };
    let cv_seconds = clock.elapsed().as_secs_f64();
    if let Some(cv) = &cv
        && let Some(mean) = cv.get("mean_rmse").and_then(Value::as_f64)
    {
        m.insert("cv_rmse".into(), mean);
    }
    let details = json!({
        "rows": {"train": train.len(), "holdout": hold.len(), "dropped_missing_target": dropped},
        "fit": fit_report,
        "cv": cv,
        "seconds": {"fit": fit_seconds, "cv": cv_seconds},
    });
    Ok(Trained {
        model,
        metrics: m,
        details,
        holdout: y_hold.iter().copied().zip(pred).collect(),
        points: Vec::new(),
        split: Some(SplitData {
            features,
            target,
            train: (x_train, y_train),
            holdout: (x_hold, y_hold),
        }),
    })
}

fn cross_validate(
    spec: &ModelSpec,
    frame: &Frame,
    y: &[f64],
    k: usize,
    dataset: &str,
) -> Result<Value> {
    let mut order: Vec<usize> = (0..frame.rows).collect();
    Rng::new(spec.split.seed.wrapping_add(1)).shuffle(&mut order);
    let mut folds = Vec::new();
    for f in 0..k {
        let test: Vec<usize> = order.iter().copied().skip(f).step_by(k).collect();
        let mut fit_rows: Vec<usize> = order
            .iter()
            .enumerate()
            .filter(|(i, _)| i % k != f)
            .map(|(_, &r)| r)
            .collect();
        fit_rows.sort_unstable();
        let enc = Encoder::fit(&spec.features, &frame.take(&fit_rows), dataset)?;
        let xf = enc
            .transform(&frame.take(&fit_rows))
            .map_err(|m| Error::data(dataset, m))?;
        let yf: Vec<f64> = fit_rows.iter().map(|&i| y[i]).collect();
        let (est, _) = fit_estimator(&spec.algorithm, &xf, &yf, spec.split.seed, dataset)?;
        let xt = enc
            .transform(&frame.take(&test))
            .map_err(|m| Error::data(dataset, m))?;
        let pred: Vec<f64> = (0..xt.rows).map(|i| est.predict_row(xt.row(i))).collect();
        let yt: Vec<f64> = test.iter().map(|&i| y[i]).collect();
        folds.push(metrics::regression(&yt, &pred));
    }
    let mean = |key: &str| folds.iter().map(|m| m[key]).sum::<f64>() / folds.len() as f64;
    Ok(json!({
        "folds": folds,
        "mean_rmse": mean("rmse"),
        "mean_r2": mean("r2"),
        "mean_mae": mean("mae"),
    }))
}

/// Per-customer sales aggregates.
#[derive(Debug, Clone, Default)]
pub struct CustomerAgg {
    pub last: f64,
    pub count: u64,
    pub amount: f64,
}

/// Customers built from sales rows, batch after batch.
#[derive(Debug)]
pub struct CustomerTable {
    pub customers: HashMap<String, CustomerAgg>,
    /// The latest sale seen: recency is measured from here.
    pub reference: f64,
    pub skipped_rows: u64,
}

impl Default for CustomerTable {
    fn default() -> CustomerTable {
        CustomerTable {
            customers: HashMap::new(),
            reference: f64::MIN,
            skipped_rows: 0,
        }
    }
}

impl CustomerTable {
    /// Adds one batch of sales (columns of `spec`).
    pub fn add(&mut self, spec: &spec::CustomerSpec, frame: &Frame, dataset: &str) -> Result<()> {
        let ids = frame
            .column(&spec.id)
            .and_then(Column::texts)
            .ok_or_else(|| {
                Error::data(
                    dataset,
                    format!("customers.id {} must be a text column", spec.id),
                )
            })?;
        let time = frame
            .column(&spec.time)
            .filter(|c| matches!(c.kind, ValueKind::Date | ValueKind::Timestamp));
        let time = time.and_then(Column::numbers).ok_or_else(|| {
            Error::data(
                dataset,
                format!(
                    "customers.time {} must be a date or timestamp column",
                    spec.time
                ),
            )
        })?;
        let mut amounts = Vec::new();
        for a in &spec.amount {
            amounts.push(frame.column(a).and_then(Column::numbers).ok_or_else(|| {
                Error::data(
                    dataset,
                    format!("customers.amount {a} must be a numeric column"),
                )
            })?);
        }
        for i in 0..frame.rows {
            let amount: f64 = amounts.iter().map(|c| c[i]).product();
            let (Some(id), t) = (&ids[i], time[i]) else {
                self.skipped_rows += 1;
                continue;
            };
            if !t.is_finite() || !amount.is_finite() {
                self.skipped_rows += 1;
                continue;
            }
            if !self.customers.contains_key(id.as_str()) {
                self.customers.insert(
                    id.clone(),
                    CustomerAgg {
                        last: f64::MIN,
                        ..Default::default()
                    },
                );
            }
            let Some(agg) = self.customers.get_mut(id.as_str()) else {
                continue;
            };
            agg.last = agg.last.max(t);
            agg.count += 1;
            agg.amount += amount;
            self.reference = self.reference.max(t);
        }
        Ok(())
    }

    /// Customer ids (sorted) and their RFM frame.
    pub fn frame(&self) -> (Vec<String>, Frame) {
        let mut ids: Vec<&String> = self.customers.keys().collect();
        ids.sort();
        let get = |f: &dyn Fn(&CustomerAgg) -> f64| -> Column {
            Column {
                kind: ValueKind::Number,
                data: ColumnData::Number(ids.iter().map(|id| f(&self.customers[*id])).collect()),
            }
        };
        let reference = self.reference;
        let mut columns = BTreeMap::new();
        columns.insert("recency_days".to_string(), get(&|a| reference - a.last));
        columns.insert("frequency".to_string(), get(&|a| a.count as f64));
        columns.insert("monetary".to_string(), get(&|a| a.amount));
        (
            ids.into_iter().cloned().collect(),
            Frame {
                rows: self.customers.len(),
                columns,
            },
        )
    }
}

/// The features a clustering spec uses (all three RFM features when it lists none).
pub fn clustering_features(spec: &ModelSpec) -> Vec<FeatureSpec> {
    if !spec.features.is_empty() {
        return spec.features.clone();
    }
    CUSTOMER_FEATURES
        .iter()
        .map(|n| FeatureSpec {
            name: n.to_string(),
            encoding: spec::Encoding::Numeric,
            expr: None,
            categories: None,
            transform: spec::Transform::None,
        })
        .collect()
}

/// Fits k-means on the customers; returns the model and each customer's segment.
pub fn clustering(
    spec: &ModelSpec,
    table: &CustomerTable,
    dataset: &str,
) -> Result<(Trained, HashMap<String, usize>)> {
    let Algorithm::Kmeans(p) = &spec.algorithm else {
        return Err(Error::data(dataset, "clustering needs kind: kmeans"));
    };
    let (ids, frame) = table.frame();
    if frame.rows < (p.k as usize) * 2 {
        return Err(Error::data(
            dataset,
            format!("{} customers are too few for {} segments", frame.rows, p.k),
        ));
    }
    let features = clustering_features(spec);
    let (train, hold) = split_rows(frame.rows, spec.split.holdout, spec.split.seed);
    let encoder = Encoder::fit(&features, &frame.take(&train), dataset)?;
    let x_all = encoder
        .transform(&frame)
        .map_err(|m| Error::data(dataset, m))?;
    let x_train = x_all.take(&train);
    let d = x_train.cols;
    let mut mean = vec![0.0; d];
    let mut scale = vec![0.0; d];
    for j in 0..d {
        let col = x_train.column(j);
        let m = col.iter().sum::<f64>() / col.len() as f64;
        let var = col.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / col.len() as f64;
        mean[j] = m;
        scale[j] = if var > 0.0 { var.sqrt() } else { 1.0 };
    }
    let scaled = |x: &Matrix| Matrix {
        rows: x.rows,
        cols: d,
        data: x
            .data
            .chunks(d)
            .flat_map(|r| {
                r.iter()
                    .zip(mean.iter().zip(&scale))
                    .map(|(v, (m, s))| (v - m) / s)
            })
            .collect(),
    };
    let z_train = scaled(&x_train);
    let clock = std::time::Instant::now();
    let fit = kmeans::fit(
        &z_train,
        p.k as usize,
        p.n_init as usize,
        p.max_iter as usize,
        p.tol,
        spec.split.seed,
    )
    .map_err(|m| Error::data(dataset, m))?;
    let fit_seconds = clock.elapsed().as_secs_f64();
    let km = KmeansModel {
        mean: mean.clone(),
        scale: scale.clone(),
        centroids: fit.centroids.clone(),
    };
    let z_all = scaled(&x_all);
    let labels: Vec<usize> = (0..z_all.rows)
        .map(|i| kmeans::nearest(&km.centroids, z_all.row(i)).0)
        .collect();
    let z_hold = z_all.take(&hold);
    let hold_labels: Vec<usize> = hold.iter().map(|&i| labels[i]).collect();
    let hold_inertia: f64 = (0..z_hold.rows)
        .map(|i| kmeans::nearest(&km.centroids, z_hold.row(i)).1)
        .sum();
    // Silhouette is quadratic: on at most 3000 seeded holdout customers.
    let mut sample: Vec<usize> = (0..z_hold.rows).collect();
    Rng::new(spec.split.seed).shuffle(&mut sample);
    sample.truncate(3000);
    sample.sort_unstable();
    let sil = metrics::silhouette(
        &z_hold.take(&sample),
        &sample.iter().map(|&i| hold_labels[i]).collect::<Vec<_>>(),
        p.k as usize,
    );
    let mut m = BTreeMap::new();
    m.insert("inertia".to_string(), hold_inertia);
    m.insert("train_inertia".to_string(), fit.inertia);
    m.insert("silhouette".to_string(), sil);
    m.insert("customers".to_string(), frame.rows as f64);
    m.insert("rows".to_string(), hold.len() as f64);
    m.insert("train_rows".to_string(), train.len() as f64);
    let raw = |name: &str| frame.column(name).and_then(Column::numbers).unwrap_or(&[]);
    let (rec, freq, money) = (raw("recency_days"), raw("frequency"), raw("monetary"));
    let mut segments = Vec::new();
    for s in 0..p.k as usize {
        let members: Vec<usize> = (0..frame.rows).filter(|&i| labels[i] == s).collect();
        let avg =
            |v: &[f64]| members.iter().map(|&i| v[i]).sum::<f64>() / members.len().max(1) as f64;
        let (r, f, mo) = (avg(rec), avg(freq), avg(money));
        segments.push(json!({
            "segment": s,
            "customers": members.len(),
            "share": members.len() as f64 / frame.rows as f64,
            "recency_days": r,
            "frequency": f,
            "monetary": mo,
            "description": format!(
                "{} customers ({:.1}%): last purchase {:.0} days ago, {:.1} purchases, {:.2} spent on average",
                members.len(), 100.0 * members.len() as f64 / frame.rows as f64, r, f, mo
            ),
        }));
    }
    let features_names = encoder.feature_names();
    let model = ModelFile {
        format: MODEL_FORMAT.into(),
        model: spec.model.clone(),
        task: Task::Clustering,
        target: None,
        encoder,
        features: features_names.clone(),
        estimator: Estimator::Kmeans(km),
        output: Output {
            name: "segment".into(),
            datatype: "INT64".into(),
        },
        segments,
    };
    let mut points: Vec<(f64, f64, usize)> = (0..frame.rows)
        .map(|i| (freq[i], money[i], labels[i]))
        .collect();
    Rng::new(spec.split.seed).shuffle(&mut points);
    points.truncate(3000);
    let details = json!({
        "rows": {"customers": frame.rows, "train": train.len(), "holdout": hold.len(), "skipped_sales": table.skipped_rows},
        "fit": {"iterations": fit.iterations, "n_init": p.n_init},
        "seconds": {"fit": fit_seconds},
        "reference_day": table.reference,
    });
    let by_customer: HashMap<String, usize> = ids.into_iter().zip(labels.iter().copied()).collect();
    let split = SplitData {
        features: features_names,
        target: "segment".into(),
        train: (z_train, train.iter().map(|&i| labels[i] as f64).collect()),
        holdout: (z_hold, hold_labels.iter().map(|&l| l as f64).collect()),
    };
    Ok((
        Trained {
            model,
            metrics: m,
            details,
            holdout: Vec::new(),
            points,
            split: Some(split),
        },
        by_customer,
    ))
}

/// Top values of the `describe` columns per segment, filled in by a second pass over sales.
#[derive(Debug, Default)]
pub struct SegmentMix {
    counts: BTreeMap<(usize, String), HashMap<String, u64>>,
}

impl SegmentMix {
    pub fn add(
        &mut self,
        spec: &spec::CustomerSpec,
        frame: &Frame,
        segment_of: &HashMap<String, usize>,
    ) {
        let Some(ids) = frame.column(&spec.id).and_then(Column::texts) else {
            return;
        };
        for col in &spec.describe {
            let Some(c) = frame.column(col) else { continue };
            let labels: Vec<Option<String>> = match &c.data {
                ColumnData::Text(v) => v.clone(),
                ColumnData::Number(v) => v.iter().map(|&x| crate::features::label_of(x)).collect(),
            };
            for (id, label) in ids.iter().zip(labels) {
                if let (Some(id), Some(label)) = (id, label)
                    && let Some(&s) = segment_of.get(id)
                {
                    *self
                        .counts
                        .entry((s, col.clone()))
                        .or_default()
                        .entry(label)
                        .or_default() += 1;
                }
            }
        }
    }

    /// Adds `top_<column>`: the five most common values with their share, to each segment.
    pub fn annotate(&self, segments: &mut [Value]) {
        for ((s, col), counts) in &self.counts {
            let total: u64 = counts.values().sum();
            let mut top: Vec<(&String, &u64)> = counts.iter().collect();
            top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let shown: Vec<Value> = top
                .iter()
                .take(5)
                .map(|(v, c)| json!({"value": v, "share": **c as f64 / total.max(1) as f64}))
                .collect();
            if let Some(seg) = segments.get_mut(*s).and_then(Value::as_object_mut) {
                seg.insert(format!("top_{col}"), Value::Array(shown));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_seeded_disjoint_and_complete() {
        let (t, h) = split_rows(100, 0.2, 42);
        assert_eq!((t.len(), h.len()), (80, 20));
        let mut all: Vec<usize> = t.iter().chain(&h).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(split_rows(100, 0.2, 42), (t.clone(), h.clone()));
        assert_ne!(split_rows(100, 0.2, 43).1, h);
        assert_eq!(split_rows(546, 0.2, 42).1.len(), 110);
    }
}
