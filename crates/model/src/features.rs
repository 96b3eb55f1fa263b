//! Feature encoding, fitted on the training rows and stored in the model file so the server
//! encodes a request exactly as training did.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::frame::{Column, ColumnData, Frame, ValueKind};
use crate::spec::{Encoding, FeatureSpec, Transform};

/// A dense row-major matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Matrix {
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn column(&self, j: usize) -> Vec<f64> {
        (0..self.rows)
            .map(|i| self.data[i * self.cols + j])
            .collect()
    }

    pub fn take(&self, rows: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(rows.len() * self.cols);
        for &i in rows {
            data.extend_from_slice(self.row(i));
        }
        Matrix {
            rows: rows.len(),
            cols: self.cols,
            data,
        }
    }
}

/// A raw input the model reads (a column of the silver table, a field of an inference request).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    pub name: String,
    pub kind: ValueKind,
}

/// One step of the encoding; each yields one or more encoded features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureEncoder {
    /// The input's number, transformed; missing → `impute` (the training median).
    Numeric {
        name: String,
        input: String,
        transform: Transform,
        impute: f64,
    },
    /// An expression over inputs, transformed; missing → `impute`.
    Derived {
        name: String,
        expr: String,
        transform: Transform,
        impute: f64,
    },
    /// One 0/1 feature per category (`<input>=<category>`); unseen or missing → all 0.
    OneHot {
        name: String,
        input: String,
        categories: Vec<String>,
    },
    /// The category's index; unseen or missing → -1.
    Ordinal {
        name: String,
        input: String,
        categories: Vec<String>,
    },
}

/// The fitted encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encoder {
    pub inputs: Vec<Input>,
    pub steps: Vec<FeatureEncoder>,
}

/// A number as a category label: integers without a fraction.
pub fn label_of(x: f64) -> Option<String> {
    if x.is_nan() {
        None
    } else if x.fract() == 0.0 && x.abs() < 1e15 {
        Some(format!("{}", x as i64))
    } else {
        Some(format!("{x}"))
    }
}

fn labels(col: &Column) -> Vec<Option<String>> {
    match &col.data {
        ColumnData::Text(v) => v.clone(),
        ColumnData::Number(v) => v.iter().map(|&x| label_of(x)).collect(),
    }
}

fn apply(transform: Transform, x: f64) -> f64 {
    match transform {
        Transform::None => x,
        Transform::Log1p => x.ln_1p(),
    }
}

/// Median of the finite values (0 when there are none).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn numbers<'a>(frame: &'a Frame, input: &str, dataset: &str) -> Result<&'a [f64]> {
    let col = frame
        .column(input)
        .ok_or_else(|| Error::data(dataset, format!("has no column {input}")))?;
    col.numbers().ok_or_else(|| {
        Error::data(
            dataset,
            format!("column {input} is text; give it encoding: one_hot or ordinal in the spec"),
        )
    })
}

impl Encoder {
    /// The raw columns `features` read.
    pub fn columns_needed(features: &[FeatureSpec]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for f in features {
            let cols = match &f.expr {
                Some(e) => Expr::parse(e).map(|e| e.columns()).unwrap_or_default(),
                None => vec![f.name.clone()],
            };
            for c in cols {
                if !out.contains(&c) {
                    out.push(c);
                }
            }
        }
        out
    }

    /// Fits the encoding on the training rows of `frame`.
    pub fn fit(features: &[FeatureSpec], frame: &Frame, dataset: &str) -> Result<Encoder> {
        let mut steps = Vec::new();
        for f in features {
            let step = match (&f.expr, f.encoding) {
                (Some(text), _) => {
                    let expr = Expr::parse(text).map_err(|m| Error::data(dataset, m))?;
                    for c in expr.columns() {
                        numbers(frame, &c, dataset)?;
                    }
                    let values: Vec<f64> = (0..frame.rows)
                        .map(|i| apply(f.transform, eval_at(&expr, frame, i)))
                        .collect();
                    FeatureEncoder::Derived {
                        name: f.name.clone(),
                        expr: text.clone(),
                        transform: f.transform,
                        impute: median(&values),
                    }
                }
                (None, Encoding::Numeric) => {
                    let values: Vec<f64> = numbers(frame, &f.name, dataset)?
                        .iter()
                        .map(|&x| apply(f.transform, x))
                        .collect();
                    FeatureEncoder::Numeric {
                        name: f.name.clone(),
                        input: f.name.clone(),
                        transform: f.transform,
                        impute: median(&values),
                    }
                }
                (None, encoding) => {
                    let col = frame
                        .column(&f.name)
                        .ok_or_else(|| Error::data(dataset, format!("has no column {}", f.name)))?;
                    let categories = match &f.categories {
                        Some(c) => c.clone(),
                        None => labels(col)
                            .into_iter()
                            .flatten()
                            .collect::<BTreeSet<_>>()
                            .into_iter()
                            .collect(),
                    };
                    if categories.is_empty() {
                        return Err(Error::data(
                            dataset,
                            format!("column {} has no values to encode", f.name),
                        ));
                    }
                    if categories.len() > 1000 {
                        return Err(Error::data(
                            dataset,
                            format!(
                                "column {} has {} categories; more than 1000 is not a categorical feature",
                                f.name,
                                categories.len()
                            ),
                        ));
                    }
                    let (name, input) = (f.name.clone(), f.name.clone());
                    if encoding == Encoding::OneHot {
                        FeatureEncoder::OneHot {
                            name,
                            input,
                            categories,
                        }
                    } else {
                        FeatureEncoder::Ordinal {
                            name,
                            input,
                            categories,
                        }
                    }
                }
            };
            steps.push(step);
        }
        let mut inputs: Vec<Input> = Vec::new();
        for c in Self::columns_needed(features) {
            if let Some(col) = frame.column(&c) {
                inputs.push(Input {
                    name: c,
                    kind: col.kind,
                });
            }
        }
        Ok(Encoder { inputs, steps })
    }

    /// The encoded features' names, in matrix column order.
    pub fn feature_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.steps {
            match s {
                FeatureEncoder::Numeric { name, .. }
                | FeatureEncoder::Derived { name, .. }
                | FeatureEncoder::Ordinal { name, .. } => out.push(name.clone()),
                FeatureEncoder::OneHot {
                    name, categories, ..
                } => out.extend(categories.iter().map(|c| format!("{name}={c}"))),
            }
        }
        out
    }

    /// Encodes every row of `frame` (which holds the inputs).
    pub fn transform(&self, frame: &Frame) -> std::result::Result<Matrix, String> {
        let cols = self.feature_names().len();
        let mut data = vec![0.0; frame.rows * cols];
        let mut j = 0;
        for step in &self.steps {
            match step {
                FeatureEncoder::Numeric {
                    input,
                    transform,
                    impute,
                    ..
                } => {
                    let v = frame
                        .column(input)
                        .and_then(|c| c.numbers())
                        .ok_or_else(|| format!("input {input} is missing or not a number"))?;
                    for (i, &x) in v.iter().enumerate() {
                        let y = apply(*transform, x);
                        data[i * cols + j] = if y.is_finite() { y } else { *impute };
                    }
                    j += 1;
                }
                FeatureEncoder::Derived {
                    expr,
                    transform,
                    impute,
                    ..
                } => {
                    let e = Expr::parse(expr)?;
                    for c in e.columns() {
                        frame
                            .column(&c)
                            .and_then(|c| c.numbers())
                            .ok_or_else(|| format!("input {c} is missing or not a number"))?;
                    }
                    for i in 0..frame.rows {
                        let y = apply(*transform, eval_at(&e, frame, i));
                        data[i * cols + j] = if y.is_finite() { y } else { *impute };
                    }
                    j += 1;
                }
                FeatureEncoder::OneHot {
                    input, categories, ..
                } => {
                    let col = frame
                        .column(input)
                        .ok_or_else(|| format!("input {input} is missing"))?;
                    for (i, label) in labels(col).iter().enumerate() {
                        if let Some(l) = label
                            && let Some(k) = categories.iter().position(|c| c == l)
                        {
                            data[i * cols + j + k] = 1.0;
                        }
                    }
                    j += categories.len();
                }
                FeatureEncoder::Ordinal {
                    input, categories, ..
                } => {
                    let col = frame
                        .column(input)
                        .ok_or_else(|| format!("input {input} is missing"))?;
                    for (i, label) in labels(col).iter().enumerate() {
                        data[i * cols + j] = label
                            .as_ref()
                            .and_then(|l| categories.iter().position(|c| c == l))
                            .map_or(-1.0, |k| k as f64);
                    }
                    j += 1;
                }
            }
        }
        Ok(Matrix {
            rows: frame.rows,
            cols,
            data,
        })
    }
}

fn eval_at(expr: &Expr, frame: &Frame, i: usize) -> f64 {
    expr.eval(&|c| {
        frame
            .column(c)
            .and_then(|c| c.numbers())
            .map_or(f64::NAN, |v| v[i])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn frame() -> Frame {
        let mut columns = BTreeMap::new();
        columns.insert(
            "area".into(),
            Column {
                kind: ValueKind::Number,
                data: ColumnData::Number(vec![100.0, f64::NAN, 300.0, 200.0]),
            },
        );
        columns.insert(
            "kind".into(),
            Column {
                kind: ValueKind::Text,
                data: ColumnData::Text(vec![
                    Some("urban".into()),
                    Some("rural".into()),
                    None,
                    Some("urban".into()),
                ]),
            },
        );
        columns.insert(
            "built".into(),
            Column {
                kind: ValueKind::Number,
                data: ColumnData::Number(vec![1990.0, 2000.0, 2010.0, 2020.0]),
            },
        );
        Frame { rows: 4, columns }
    }

    #[test]
    fn fit_and_transform() {
        let spec = crate::spec::ModelSpec::parse(
            "s",
            "model: m\ntask: regression\ntarget: y\nfeatures:\n - area\n - {name: kind, encoding: one_hot}\n - {name: kind_rank, encoding: numeric, expr: \"2030 - built\"}\n - {name: built, encoding: ordinal}\nalgorithm: {kind: ridge}\n",
        )
        .unwrap();
        let enc = Encoder::fit(&spec.features, &frame(), "d").unwrap();
        assert_eq!(
            enc.feature_names(),
            vec!["area", "kind=rural", "kind=urban", "kind_rank", "built"]
        );
        let m = enc.transform(&frame()).unwrap();
        assert_eq!(m.row(0), &[100.0, 0.0, 1.0, 40.0, 0.0]);
        assert_eq!(
            m.row(1),
            &[200.0, 1.0, 0.0, 30.0, 1.0],
            "NaN area → median 200"
        );
        assert_eq!(
            m.row(2),
            &[300.0, 0.0, 0.0, 20.0, 2.0],
            "missing kind → all zero"
        );
        let json = serde_json::to_string(&enc).unwrap();
        let back: Encoder = serde_json::from_str(&json).unwrap();
        assert_eq!(back, enc);
        let bad = crate::spec::ModelSpec::parse(
            "s",
            "model: m\ntask: regression\ntarget: y\nfeatures: [kind]\nalgorithm: {kind: ridge}\n",
        )
        .unwrap();
        let err = Encoder::fit(&bad.features, &frame(), "silver houses v1").unwrap_err();
        assert!(err.to_string().contains("column kind is text"), "{err}");
    }
}
