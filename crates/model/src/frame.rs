//! Columns of a lake version as numbers or text, for training: booleans become 0/1, dates and
//! timestamps days since 1970-01-01 (fractional for timestamps), decimals floats, nulls NaN /
//! `None`. Read part by part off the async workers; only the named columns are decoded.

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use medallion_lake::read::VersionReader;
use medallion_lake::{Layer, Manifest, Registry};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What a column's values mean (and so which tensor datatype serves them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    Number,
    Boolean,
    Date,
    Timestamp,
    Text,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    Number(Vec<f64>),
    Text(Vec<Option<String>>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub kind: ValueKind,
    pub data: ColumnData,
}

impl Column {
    pub fn numbers(&self) -> Option<&[f64]> {
        match &self.data {
            ColumnData::Number(v) => Some(v),
            ColumnData::Text(_) => None,
        }
    }

    pub fn texts(&self) -> Option<&[Option<String>]> {
        match &self.data {
            ColumnData::Text(v) => Some(v),
            ColumnData::Number(_) => None,
        }
    }

    fn append(&mut self, other: Column) {
        match (&mut self.data, other.data) {
            (ColumnData::Number(a), ColumnData::Number(b)) => a.extend(b),
            (ColumnData::Text(a), ColumnData::Text(b)) => a.extend(b),
            _ => {}
        }
    }
}

/// Named columns of equal length.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    pub rows: usize,
    pub columns: BTreeMap<String, Column>,
}

impl Frame {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.get(name)
    }

    fn append(&mut self, other: Frame) {
        if self.columns.is_empty() {
            *self = other;
            return;
        }
        self.rows += other.rows;
        for (name, col) in other.columns {
            if let Some(c) = self.columns.get_mut(&name) {
                c.append(col);
            }
        }
    }

    /// A frame of these rows (indices into this one).
    pub fn take(&self, rows: &[usize]) -> Frame {
        let columns = self
            .columns
            .iter()
            .map(|(name, c)| {
                let data = match &c.data {
                    ColumnData::Number(v) => {
                        ColumnData::Number(rows.iter().map(|&i| v[i]).collect())
                    }
                    ColumnData::Text(v) => {
                        ColumnData::Text(rows.iter().map(|&i| v[i].clone()).collect())
                    }
                };
                (name.clone(), Column { kind: c.kind, data })
            })
            .collect();
        Frame {
            rows: rows.len(),
            columns,
        }
    }
}

/// Converts one Arrow array.
pub fn convert(name: &str, array: &ArrayRef) -> std::result::Result<Column, String> {
    let n = array.len();
    let nums = |f: &dyn Fn(usize) -> f64| -> Vec<f64> {
        (0..n)
            .map(|i| if array.is_null(i) { f64::NAN } else { f(i) })
            .collect()
    };
    macro_rules! prim {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            (
                ValueKind::Number,
                ColumnData::Number(nums(&|i| a.value(i) as f64)),
            )
        }};
    }
    let (kind, data) = match array.data_type() {
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => prim!(UInt64Type),
        DataType::Float32 => prim!(Float32Type),
        DataType::Float64 => prim!(Float64Type),
        DataType::Decimal128(_, scale) => {
            let a = array.as_primitive::<Decimal128Type>();
            let div = 10f64.powi(i32::from(*scale));
            (
                ValueKind::Number,
                ColumnData::Number(nums(&|i| a.value(i) as f64 / div)),
            )
        }
        DataType::Boolean => {
            let a = array.as_boolean();
            (
                ValueKind::Boolean,
                ColumnData::Number(nums(&|i| if a.value(i) { 1.0 } else { 0.0 })),
            )
        }
        DataType::Date32 => {
            let a = array.as_primitive::<arrow_array::types::Date32Type>();
            (
                ValueKind::Date,
                ColumnData::Number(nums(&|i| a.value(i) as f64)),
            )
        }
        DataType::Timestamp(unit, _) => {
            let per_day = match unit {
                TimeUnit::Second => 86_400.0,
                TimeUnit::Millisecond => 86_400e3,
                TimeUnit::Microsecond => 86_400e6,
                TimeUnit::Nanosecond => 86_400e9,
            };
            let raw: Vec<f64> = match unit {
                TimeUnit::Second => {
                    let a = array.as_primitive::<TimestampSecondType>();
                    nums(&|i| a.value(i) as f64)
                }
                TimeUnit::Millisecond => {
                    let a = array.as_primitive::<TimestampMillisecondType>();
                    nums(&|i| a.value(i) as f64)
                }
                TimeUnit::Microsecond => {
                    let a = array.as_primitive::<TimestampMicrosecondType>();
                    nums(&|i| a.value(i) as f64)
                }
                TimeUnit::Nanosecond => {
                    let a = array.as_primitive::<TimestampNanosecondType>();
                    nums(&|i| a.value(i) as f64)
                }
            };
            (
                ValueKind::Timestamp,
                ColumnData::Number(raw.into_iter().map(|x| x / per_day).collect()),
            )
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            (
                ValueKind::Text,
                ColumnData::Text(texts(n, array, |i| a.value(i))),
            )
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            (
                ValueKind::Text,
                ColumnData::Text(texts(n, array, |i| a.value(i))),
            )
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            (
                ValueKind::Text,
                ColumnData::Text(texts(n, array, |i| a.value(i))),
            )
        }
        other => {
            return Err(format!(
                "column {name} has type {other}, which training cannot use; cast it in the data contract"
            ));
        }
    };
    Ok(Column { kind, data })
}

fn texts<'a>(n: usize, array: &ArrayRef, value: impl Fn(usize) -> &'a str) -> Vec<Option<String>> {
    (0..n)
        .map(|i| (!array.is_null(i)).then(|| value(i).to_string()))
        .collect()
}

fn frame_of(batch: &RecordBatch, dataset: &str) -> Result<Frame> {
    let schema = batch.schema();
    let mut columns = BTreeMap::new();
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        let col = convert(field.name(), array).map_err(|m| Error::data(dataset, m))?;
        columns.insert(field.name().clone(), col);
    }
    Ok(Frame {
        rows: batch.num_rows(),
        columns,
    })
}

/// Calls `each` with every batch of a committed version, holding only `columns` (each must
/// exist; the error lists what the version has).
pub async fn scan(
    registry: &Registry,
    manifest: &Manifest,
    columns: &[String],
    mut each: impl FnMut(Frame) -> Result<()> + Send + 'static,
) -> Result<()> {
    let label = format!(
        "{} {} v{}",
        manifest.layer, manifest.dataset, manifest.version
    );
    let mut indices = Vec::new();
    for c in columns {
        let Some(i) = manifest.schema.iter().position(|s| &s.name == c) else {
            let have: Vec<&str> = manifest.schema.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::data(
                &label,
                format!(
                    "has no column {c} (it has {}); fix the model spec",
                    have.join(", ")
                ),
            ));
        };
        if !indices.contains(&i) {
            indices.push(i);
        }
    }
    indices.sort_unstable();
    let reader = VersionReader::new(
        registry.lake().clone(),
        manifest.clone(),
        tokio::runtime::Handle::current(),
        64 * 1024,
    )
    .with_columns(indices);
    tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        while let Some(batch) = reader.next_batch()? {
            each(frame_of(&batch, &label)?)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| medallion_lake::Error::internal("read version", e))?
}

/// The named columns of a committed version, all rows.
pub async fn read(registry: &Registry, manifest: &Manifest, columns: &[String]) -> Result<Frame> {
    let (tx, rx) = std::sync::mpsc::channel();
    scan(registry, manifest, columns, move |f| {
        let _ = tx.send(f);
        Ok(())
    })
    .await?;
    let mut frame = Frame::default();
    for f in rx.try_iter() {
        frame.append(f);
    }
    Ok(frame)
}

/// The manifest of `layer/dataset` v`version` (the latest when `None`).
pub async fn version(
    registry: &Registry,
    layer: Layer,
    dataset: &medallion_lake::DatasetName,
    version: Option<u64>,
) -> Result<Manifest> {
    let v = match version {
        Some(v) => v,
        None => registry.latest(layer, dataset).await?.ok_or_else(|| {
            Error::data(
                format!("{layer} {dataset}"),
                format!(
                    "has no version in {}; refine one first",
                    registry.lake().url()
                ),
            )
        })?,
    };
    Ok(registry.manifest(layer, dataset, v).await?)
}
