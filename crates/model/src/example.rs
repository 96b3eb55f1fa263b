//! An example request for a model and the answer the model must give to it: what a deploy's
//! smoke test sends to a freshly started server. The row is built from the model file alone
//! (training medians for numeric inputs, the first known category for categorical ones, a fixed
//! date), so any version can be smoke-tested, and the expected output is computed here with the
//! same encoder and estimator the server loads.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::features::FeatureEncoder;
use crate::frame::{Column, ColumnData, Frame, ValueKind};
use crate::model_file::ModelFile;

/// 2020-06-15, as days since 1970-01-01 (the example's date for date and timestamp inputs).
const EXAMPLE_DAY: f64 = 18_428.0;
const EXAMPLE_DATE: &str = "2020-06-15";
const EXAMPLE_TIMESTAMP: &str = "2020-06-15T00:00:00Z";

#[derive(Debug, Clone, PartialEq)]
pub enum ExampleValue {
    Number(f64),
    Bool(bool),
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExampleInput {
    pub name: String,
    pub kind: ValueKind,
    pub value: ExampleValue,
}

/// One example row and the model's output for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub inputs: Vec<ExampleInput>,
    pub expected: f64,
}

impl Example {
    /// The KServe V2 infer request body (one `[1]` tensor per input).
    pub fn v2_request(&self) -> Value {
        let inputs: Vec<Value> = self
            .inputs
            .iter()
            .map(|i| {
                let (datatype, data) = match &i.value {
                    ExampleValue::Number(x) => ("FP64", json!([x])),
                    ExampleValue::Bool(b) => ("BOOL", json!([b])),
                    ExampleValue::Text(t) => ("BYTES", json!([t])),
                };
                json!({"name": i.name, "shape": [1], "datatype": datatype, "data": data})
            })
            .collect();
        json!({ "inputs": inputs })
    }
}

/// The first category a one-hot or ordinal step knows for `input`.
fn first_category(model: &ModelFile, input: &str) -> Option<String> {
    model.encoder.steps.iter().find_map(|s| match s {
        FeatureEncoder::OneHot {
            input: i,
            categories,
            ..
        }
        | FeatureEncoder::Ordinal {
            input: i,
            categories,
            ..
        } if i == input => categories.first().cloned(),
        _ => None,
    })
}

/// The training median of a numeric input (untransformed steps only).
fn median(model: &ModelFile, input: &str) -> Option<f64> {
    model.encoder.steps.iter().find_map(|s| match s {
        FeatureEncoder::Numeric {
            input: i,
            transform,
            impute,
            ..
        } if i == input && *transform == crate::spec::Transform::None => Some(*impute),
        _ => None,
    })
}

/// The example row for `model` and the output it must produce.
pub fn example(model: &ModelFile) -> Result<Example, String> {
    let mut inputs = Vec::new();
    let mut columns = BTreeMap::new();
    for input in &model.encoder.inputs {
        let (value, data) = match input.kind {
            ValueKind::Number => {
                let x = median(model, &input.name)
                    .or_else(|| first_category(model, &input.name).and_then(|c| c.parse().ok()))
                    .unwrap_or(1.0);
                (ExampleValue::Number(x), ColumnData::Number(vec![x]))
            }
            ValueKind::Boolean => (ExampleValue::Bool(true), ColumnData::Number(vec![1.0])),
            ValueKind::Date => (
                ExampleValue::Text(EXAMPLE_DATE.into()),
                ColumnData::Number(vec![EXAMPLE_DAY]),
            ),
            ValueKind::Timestamp => (
                ExampleValue::Text(EXAMPLE_TIMESTAMP.into()),
                ColumnData::Number(vec![EXAMPLE_DAY]),
            ),
            ValueKind::Text => {
                let t = first_category(model, &input.name).unwrap_or_else(|| "example".into());
                (
                    ExampleValue::Text(t.clone()),
                    ColumnData::Text(vec![Some(t)]),
                )
            }
        };
        columns.insert(
            input.name.clone(),
            Column {
                kind: input.kind,
                data,
            },
        );
        inputs.push(ExampleInput {
            name: input.name.clone(),
            kind: input.kind,
            value,
        });
    }
    let frame = Frame { rows: 1, columns };
    let expected = model
        .predict(&frame)?
        .first()
        .copied()
        .ok_or_else(|| "the model predicted no row for the example".to_string())?;
    Ok(Example { inputs, expected })
}

/// True when a served output equals the expected one (relative 1e-9: the server and this
/// library run the same code, so only JSON's float formatting may differ).
pub fn matches(expected: f64, served: f64) -> bool {
    (expected - served).abs() <= 1e-9 * expected.abs().max(1.0)
}
