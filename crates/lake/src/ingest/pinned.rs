//! Typed bronze: a `--schema file.yaml` pins some columns to types. A value that does not fit
//! makes its row a bad row (quarantined, counted against `--max-bad-rows`); an empty value is null.
//!
//! ```yaml
//! columns:
//!   price: float
//!   bedrooms: int
//!   airco: bool
//!   sold_on: {type: date, format: "%Y-%m-%d"}
//!   sold_at: {type: timestamp, format: "%Y-%m-%d %H:%M:%S"}   # naive times are UTC
//! ```

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, TimeUnit};
use chrono::{NaiveDate, NaiveDateTime};
use serde_yaml_ng::Value;

use crate::error::{Error, Result};
use crate::ingest::batch::{BadRow, Chunk};

/// One pinned column's type.
#[derive(Debug, Clone, PartialEq)]
pub enum PinnedType {
    String,
    Int,
    Float,
    Bool,
    Date {
        format: String,
    },
    /// `format: None` accepts RFC 3339 and `YYYY-MM-DD HH:MM:SS[.f]`.
    Timestamp {
        format: Option<String>,
    },
}

impl PinnedType {
    pub fn data_type(&self) -> DataType {
        match self {
            PinnedType::String => DataType::Utf8,
            PinnedType::Int => DataType::Int64,
            PinnedType::Float => DataType::Float64,
            PinnedType::Bool => DataType::Boolean,
            PinnedType::Date { .. } => DataType::Date32,
            PinnedType::Timestamp { .. } => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            PinnedType::String => "string",
            PinnedType::Int => "int",
            PinnedType::Float => "float",
            PinnedType::Bool => "bool",
            PinnedType::Date { .. } => "date",
            PinnedType::Timestamp { .. } => "timestamp",
        }
    }
}

/// Column name → type, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PinnedSchema {
    pub columns: Vec<(String, PinnedType)>,
}

impl PinnedSchema {
    /// Reads a schema file.
    pub fn load(path: &std::path::Path) -> Result<PinnedSchema> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::local_io("read schema file", path, &e))?;
        PinnedSchema::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, path: &str) -> Result<PinnedSchema> {
        let bad = |line: Option<usize>, message: String| Error::BadSpecFile {
            path: path.to_string(),
            line,
            message,
        };
        let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| {
            bad(
                e.location().map(|l| l.line()),
                crate::error::one_line(&e.to_string()),
            )
        })?;
        let line_of = |key: &str| {
            text.lines()
                .position(|l| l.trim_start().starts_with(&format!("{key}:")))
                .map(|i| i + 1)
        };
        let Some(columns) = doc.get("columns").and_then(Value::as_mapping) else {
            return Err(bad(
                None,
                "expected a 'columns:' mapping of column name to type".into(),
            ));
        };
        let mut out = Vec::new();
        for (k, v) in columns {
            let Some(name) = k.as_str() else {
                return Err(bad(None, "column names must be strings".into()));
            };
            let (ty, format) = match v {
                Value::String(s) => (s.as_str(), None),
                Value::Mapping(m) => (
                    m.get("type").and_then(Value::as_str).unwrap_or(""),
                    m.get("format").and_then(Value::as_str).map(str::to_string),
                ),
                _ => ("", None),
            };
            let pinned = match ty {
                "string" | "str" => PinnedType::String,
                "int" | "int64" | "integer" => PinnedType::Int,
                "float" | "float64" | "double" => PinnedType::Float,
                "bool" | "boolean" => PinnedType::Bool,
                "date" => PinnedType::Date {
                    format: format.unwrap_or_else(|| "%Y-%m-%d".into()),
                },
                "timestamp" | "datetime" => PinnedType::Timestamp { format },
                other => {
                    return Err(bad(
                        line_of(name),
                        format!(
                            "column '{name}': unknown type '{other}'; use string, int, float, bool, date or timestamp"
                        ),
                    ));
                }
            };
            if out.iter().any(|(n, _)| n == name) {
                return Err(bad(
                    line_of(name),
                    format!("column '{name}' is listed twice"),
                ));
            }
            out.push((name.to_string(), pinned));
        }
        Ok(PinnedSchema { columns: out })
    }

    pub fn get(&self, name: &str) -> Option<&PinnedType> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Checks every pinned column exists among `names`.
    pub fn check_columns(&self, names: &[String], url: &str) -> Result<()> {
        for (n, _) in &self.columns {
            if !names.contains(n) {
                return Err(Error::bad_source(
                    url,
                    Default::default(),
                    format!(
                        "--schema pins column '{n}', which the source does not have (it has: {})",
                        names.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The field for a source column, typed when pinned.
    pub fn field(&self, name: &str, nullable: bool) -> Field {
        match self.get(name) {
            Some(t) if *t != PinnedType::String => Field::new(name, t.data_type(), true),
            _ => Field::new(name, DataType::Utf8, nullable),
        }
    }

    /// Converts the pinned columns of a chunk of string columns. Rows with a value that does not
    /// fit are removed and returned as bad rows.
    pub fn apply(&self, chunk: Chunk, names: &[String]) -> Result<(Chunk, Vec<BadRow>)> {
        let n = chunk.rows();
        let mut failed: Vec<Option<(String, String)>> = vec![None; n];
        let mut columns = Vec::with_capacity(chunk.columns.len());
        for (name, col) in names.iter().zip(&chunk.columns) {
            match self.get(name) {
                Some(t) if *t != PinnedType::String => {
                    let strings = col.as_any().downcast_ref::<StringArray>().ok_or_else(|| {
                        Error::internal("typed bronze", "expected a string column")
                    })?;
                    columns.push(convert(strings, t, name, &mut failed));
                }
                _ => columns.push(col.clone()),
            }
        }
        let mut bad = Vec::new();
        for (i, f) in failed.iter().enumerate() {
            if let Some((column, reason)) = f {
                let raw = chunk
                    .columns
                    .iter()
                    .map(|c| {
                        c.as_any()
                            .downcast_ref::<StringArray>()
                            .map(|s| if s.is_null(i) { "" } else { s.value(i) })
                            .unwrap_or("")
                    })
                    .collect::<Vec<_>>()
                    .join(",");
                bad.push(BadRow {
                    row: chunk.row_numbers.value(i) as u64,
                    column: Some(column.clone()),
                    reason: reason.clone(),
                    raw: raw.chars().take(1024).collect(),
                });
            }
        }
        if bad.is_empty() {
            return Ok((
                Chunk {
                    columns,
                    row_numbers: chunk.row_numbers,
                },
                bad,
            ));
        }
        let keep = BooleanArray::from(failed.iter().map(|f| f.is_none()).collect::<Vec<_>>());
        let filter = |a: &ArrayRef| {
            arrow_select::filter::filter(a.as_ref(), &keep)
                .map_err(|e| Error::internal("typed bronze", e))
        };
        let columns = columns.iter().map(filter).collect::<Result<Vec<_>>>()?;
        let rows = filter(&(Arc::new(chunk.row_numbers) as ArrayRef))?;
        let row_numbers = rows
            .as_any()
            .downcast_ref::<Int64Array>()
            .cloned()
            .ok_or_else(|| Error::internal("typed bronze", "row numbers"))?;
        Ok((
            Chunk {
                columns,
                row_numbers,
            },
            bad,
        ))
    }
}

fn convert(
    strings: &StringArray,
    t: &PinnedType,
    name: &str,
    failed: &mut [Option<(String, String)>],
) -> ArrayRef {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    match t {
        PinnedType::Int => Arc::new(Int64Array::from(parse_each(
            strings,
            t,
            name,
            failed,
            |s| s.parse().ok(),
        ))),
        PinnedType::Float => Arc::new(Float64Array::from(parse_each(
            strings,
            t,
            name,
            failed,
            |s| s.parse().ok(),
        ))),
        PinnedType::Bool => Arc::new(BooleanArray::from(parse_each(
            strings,
            t,
            name,
            failed,
            |s| match s.to_ascii_lowercase().as_str() {
                "true" | "t" | "yes" | "y" | "1" => Some(true),
                "false" | "f" | "no" | "n" | "0" => Some(false),
                _ => None,
            },
        ))),
        PinnedType::Date { format } => Arc::new(Date32Array::from(parse_each(
            strings,
            t,
            name,
            failed,
            |s| {
                NaiveDate::parse_from_str(s, format)
                    .ok()
                    .and_then(|d| i32::try_from((d - epoch).num_days()).ok())
            },
        ))),
        PinnedType::Timestamp { format } => Arc::new(
            TimestampMicrosecondArray::from(parse_each(strings, t, name, failed, |s| {
                parse_timestamp(s, format.as_deref())
            }))
            .with_timezone("UTC"),
        ),
        PinnedType::String => Arc::new(strings.clone()),
    }
}

/// Parses every value of a column: empty (after trimming) is null; a value `parse` rejects
/// is null too and marks its row as failed (the first failure of a row is the one reported).
fn parse_each<T>(
    strings: &StringArray,
    t: &PinnedType,
    name: &str,
    failed: &mut [Option<(String, String)>],
    parse: impl Fn(&str) -> Option<T>,
) -> Vec<Option<T>> {
    (0..strings.len())
        .map(|i| {
            let v = if strings.is_null(i) {
                ""
            } else {
                strings.value(i).trim()
            };
            if v.is_empty() {
                return None;
            }
            let parsed = parse(v);
            if parsed.is_none() && failed[i].is_none() {
                let shown: String = v.chars().take(60).collect();
                failed[i] = Some((
                    name.to_string(),
                    format!("value '{shown}' is not a valid {}", t.name()),
                ));
            }
            parsed
        })
        .collect()
}

/// Microseconds since the epoch (UTC) of a timestamp: with `format` (chrono syntax; a naive
/// time is UTC), else RFC 3339 or `YYYY-MM-DD HH:MM:SS[.f]` / `YYYY-MM-DDTHH:MM:SS[.f]` as UTC.
pub fn parse_timestamp(v: &str, format: Option<&str>) -> Option<i64> {
    if let Some(f) = format {
        if let Ok(dt) = chrono::DateTime::parse_from_str(v, f) {
            return Some(dt.timestamp_micros());
        }
        return NaiveDateTime::parse_from_str(v, f)
            .ok()
            .map(|d| d.and_utc().timestamp_micros());
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(v) {
        return Some(dt.timestamp_micros());
    }
    [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
    .map(|d| d.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_schema_files() {
        let s = PinnedSchema::parse(
            "columns:\n  price: float\n  n: int\n  d: {type: date, format: \"%d/%m/%Y\"}\n  t: timestamp\n",
            "s.yaml",
        )
        .unwrap();
        assert_eq!(s.columns.len(), 4);
        assert_eq!(
            s.get("d"),
            Some(&PinnedType::Date {
                format: "%d/%m/%Y".into()
            })
        );
    }

    #[test]
    fn bad_schema_files_name_line_and_field() {
        let err = PinnedSchema::parse("columns:\n  price: money\n", "s.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "s.yaml line 2: column 'price': unknown type 'money'; use string, int, float, bool, date or timestamp"
        );
        let err = PinnedSchema::parse("columns: [\n", "s.yaml").unwrap_err();
        assert!(err.to_string().starts_with("s.yaml line"), "{err}");
        assert!(PinnedSchema::parse("other: 1\n", "s.yaml").is_err());
    }

    #[test]
    fn values_that_do_not_fit_become_bad_rows() {
        let s = PinnedSchema::parse("columns:\n  price: float\n  t: timestamp\n", "s").unwrap();
        let chunk = Chunk {
            columns: vec![
                Arc::new(StringArray::from(vec!["1.5", "abc", "", "2"])),
                Arc::new(StringArray::from(vec![
                    "2026-11-22 06:41:00",
                    "2026-11-22T06:41:00Z",
                    "",
                    "nope",
                ])),
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
            ],
            row_numbers: Int64Array::from(vec![1, 2, 3, 4]),
        };
        let names = vec!["price".to_string(), "t".into(), "other".into()];
        let (out, bad) = s.apply(chunk, &names).unwrap();
        assert_eq!(out.row_numbers.values().to_vec(), vec![1, 3]);
        let price = out.columns[0]
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(price.value(0), 1.5);
        assert!(price.is_null(1));
        let t = out.columns[1]
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(t.value(0), 1_795_329_660_000_000);
        assert_eq!(bad.len(), 2);
        assert_eq!((bad[0].row, bad[0].column.as_deref()), (2, Some("price")));
        assert!(bad[0].reason.contains("'abc' is not a valid float"));
        assert_eq!((bad[1].row, bad[1].column.as_deref()), (4, Some("t")));
    }
}
