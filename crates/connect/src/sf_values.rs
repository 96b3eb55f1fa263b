//! Snowflake SQL API (`jsonv2`) values decoded into Arrow columns. Every non-null cell arrives as
//! a JSON string whose form the column's `rowType` entry decides:
//!
//! | Snowflake (rowType `type`)            | cell                          | Arrow                       |
//! |---------------------------------------|-------------------------------|-----------------------------|
//! | fixed, scale 0 (INTEGER, NUMBER(p,0)) | `"42"`                        | Int64                       |
//! | fixed, scale > 0 (NUMBER(p,s))        | `"123.45"`                    | Decimal128(p, s)            |
//! | real (FLOAT, DOUBLE)                  | `"1.5"`, `"inf"`, `"NaN"`     | Float64                     |
//! | decfloat                              | `"1.23e40"`                   | Utf8 (exact text)           |
//! | text (VARCHAR, CHAR, STRING)          | the text                      | Utf8                        |
//! | boolean                               | `"true"` / `"false"`          | Boolean                     |
//! | date                                  | days since 1970-01-01         | Date32                      |
//! | time                                  | `"45296.123000000"` seconds   | Time64(µs)                  |
//! | timestamp_ntz                         | `"1616173619.123456789"`      | Timestamp(µs)               |
//! | timestamp_ltz                         | epoch seconds                 | Timestamp(µs, "UTC")        |
//! | timestamp_tz                          | `"<epoch seconds> <offset+1440>"` | Timestamp(µs, "UTC")    |
//! | binary                                | hex                           | Binary                      |
//! | variant, object, array, geography, geometry | JSON text               | Utf8                        |
//!
//! Other types (vector, file) are refused before a row is read, naming the column and the cast.
//! Times and timestamps keep microseconds (as PostgreSQL imports do); finer digits are dropped.

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_schema::{DataType, Field, TimeUnit};
use serde::Deserialize;

/// One column of `resultSetMetaData.rowType`.
#[derive(Debug, Clone, Deserialize)]
pub struct RowType {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub precision: Option<u32>,
    #[serde(default)]
    pub scale: Option<i32>,
    #[serde(default = "yes")]
    pub nullable: bool,
}

fn yes() -> bool {
    true
}

/// How one column is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SfKind {
    Int64,
    Decimal { precision: u8, scale: i8 },
    Float64,
    Text,
    Bool,
    Date,
    Time,
    TimestampNtz,
    TimestampUtc,
    TimestampTz,
    Binary,
}

impl SfKind {
    /// The decoding of a column, or why it has none.
    pub fn of(column: &RowType) -> Result<SfKind, String> {
        Ok(match column.kind.to_ascii_lowercase().as_str() {
            "fixed" => {
                let precision = column.precision.unwrap_or(38);
                let scale = column.scale.unwrap_or(0);
                if scale == 0 {
                    // INTEGER is NUMBER(38,0): Int64 as the Snowflake connectors give it; a
                    // value past Int64 fails the import with the cast that keeps it.
                    SfKind::Int64
                } else if precision <= 38 && (0..=37).contains(&scale) {
                    SfKind::Decimal {
                        precision: precision.max(1) as u8,
                        scale: scale as i8,
                    }
                } else {
                    return Err(format!("NUMBER({precision},{scale}) is out of range"));
                }
            }
            "real" | "float" | "double" => SfKind::Float64,
            "text" | "decfloat" | "variant" | "object" | "array" | "geography" | "geometry" => {
                SfKind::Text
            }
            "boolean" => SfKind::Bool,
            "date" => SfKind::Date,
            "time" => SfKind::Time,
            "timestamp_ntz" => SfKind::TimestampNtz,
            "timestamp_ltz" => SfKind::TimestampUtc,
            "timestamp_tz" => SfKind::TimestampTz,
            "binary" => SfKind::Binary,
            other => {
                return Err(format!(
                    "type {} has no mapping; cast it in the query (e.g. {}::VARCHAR)",
                    other.to_ascii_uppercase(),
                    column.name
                ));
            }
        })
    }

    pub fn data_type(self) -> DataType {
        match self {
            SfKind::Int64 => DataType::Int64,
            SfKind::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
            SfKind::Float64 => DataType::Float64,
            SfKind::Text => DataType::Utf8,
            SfKind::Bool => DataType::Boolean,
            SfKind::Date => DataType::Date32,
            SfKind::Time => DataType::Time64(TimeUnit::Microsecond),
            SfKind::TimestampNtz => DataType::Timestamp(TimeUnit::Microsecond, None),
            SfKind::TimestampUtc | SfKind::TimestampTz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
            }
            SfKind::Binary => DataType::Binary,
        }
    }

    pub fn field(self, column: &RowType) -> Field {
        Field::new(&column.name, self.data_type(), column.nullable)
    }
}

/// The Arrow builder of one column.
pub enum SfBuilder {
    Int64(Int64Builder),
    Decimal(Decimal128Builder, i8),
    Float64(Float64Builder),
    Text(StringBuilder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Binary(BinaryBuilder),
}

impl SfBuilder {
    pub fn new(kind: SfKind, rows: usize) -> SfBuilder {
        match kind {
            SfKind::Int64 => SfBuilder::Int64(Int64Builder::with_capacity(rows)),
            SfKind::Decimal { precision, scale } => SfBuilder::Decimal(
                Decimal128Builder::with_capacity(rows)
                    .with_data_type(DataType::Decimal128(precision, scale)),
                scale,
            ),
            SfKind::Float64 => SfBuilder::Float64(Float64Builder::with_capacity(rows)),
            SfKind::Text => SfBuilder::Text(StringBuilder::with_capacity(rows, rows * 16)),
            SfKind::Bool => SfBuilder::Bool(BooleanBuilder::with_capacity(rows)),
            SfKind::Date => SfBuilder::Date(Date32Builder::with_capacity(rows)),
            SfKind::Time => SfBuilder::Time(Time64MicrosecondBuilder::with_capacity(rows)),
            SfKind::TimestampNtz => {
                SfBuilder::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows))
            }
            SfKind::TimestampUtc | SfKind::TimestampTz => SfBuilder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            ),
            SfKind::Binary => SfBuilder::Binary(BinaryBuilder::with_capacity(rows, rows * 16)),
        }
    }

    /// Appends one cell (`None`: SQL NULL).
    pub fn push(&mut self, cell: Option<&str>) -> Result<(), String> {
        let Some(text) = cell else {
            match self {
                SfBuilder::Int64(b) => b.append_null(),
                SfBuilder::Decimal(b, _) => b.append_null(),
                SfBuilder::Float64(b) => b.append_null(),
                SfBuilder::Text(b) => b.append_null(),
                SfBuilder::Bool(b) => b.append_null(),
                SfBuilder::Date(b) => b.append_null(),
                SfBuilder::Time(b) => b.append_null(),
                SfBuilder::Timestamp(b) => b.append_null(),
                SfBuilder::Binary(b) => b.append_null(),
            }
            return Ok(());
        };
        let bad = |what: &str| format!("{text:?} is not {what}");
        match self {
            SfBuilder::Int64(b) => b.append_value(text.parse().map_err(|_| {
                if split_decimal(text).is_some() {
                    format!("{text} does not fit Int64; cast the column in the query (col::VARCHAR, or NUMBER(38,1))")
                } else {
                    bad("an integer")
                }
            })?),
            SfBuilder::Decimal(b, scale) => {
                b.append_value(decimal(text, *scale).ok_or_else(|| bad("a decimal"))?)
            }
            SfBuilder::Float64(b) => b.append_value(text.parse().map_err(|_| bad("a number"))?),
            SfBuilder::Text(b) => b.append_value(text),
            SfBuilder::Bool(b) => b.append_value(match text {
                "true" | "TRUE" | "1" => true,
                "false" | "FALSE" | "0" => false,
                _ => return Err(bad("a boolean")),
            }),
            SfBuilder::Date(b) => b.append_value(text.parse().map_err(|_| bad("a day number"))?),
            SfBuilder::Time(b) => b.append_value(
                epoch_micros(text).ok_or_else(|| bad("seconds since midnight"))?,
            ),
            SfBuilder::Timestamp(b) => {
                // timestamp_tz: "<epoch seconds> <offset in minutes + 1440>"; the epoch is UTC.
                let seconds = text.split(' ').next().unwrap_or(text);
                b.append_value(epoch_micros(seconds).ok_or_else(|| bad("epoch seconds"))?)
            }
            SfBuilder::Binary(b) => b.append_value(hex::decode(text).map_err(|_| bad("hex"))?),
        }
        Ok(())
    }

    pub fn finish(self) -> ArrayRef {
        match self {
            SfBuilder::Int64(mut b) => Arc::new(b.finish()),
            SfBuilder::Decimal(mut b, _) => Arc::new(b.finish()),
            SfBuilder::Float64(mut b) => Arc::new(b.finish()),
            SfBuilder::Text(mut b) => Arc::new(b.finish()),
            SfBuilder::Bool(mut b) => Arc::new(b.finish()),
            SfBuilder::Date(mut b) => Arc::new(b.finish()),
            SfBuilder::Time(mut b) => Arc::new(b.finish()),
            SfBuilder::Timestamp(mut b) => Arc::new(b.finish()),
            SfBuilder::Binary(mut b) => Arc::new(b.finish()),
        }
    }
}

/// `[-]digits[.digits]` → (negative, whole digits, fraction digits).
fn split_decimal(text: &str) -> Option<(bool, &str, &str)> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    (!(whole.is_empty() && fraction.is_empty()) && digits(whole) && digits(fraction))
        .then_some((negative, whole, fraction))
}

/// A decimal string as an i128 with `scale` fraction digits (more digits than the scale: None).
fn decimal(text: &str, scale: i8) -> Option<i128> {
    let (negative, whole, fraction) = split_decimal(text)?;
    let scale = usize::try_from(scale).ok()?;
    if fraction.len() > scale {
        return None;
    }
    let mut value: i128 = 0;
    for b in whole.bytes().chain(fraction.bytes()) {
        value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    for _ in fraction.len()..scale {
        value = value.checked_mul(10)?;
    }
    Some(if negative { -value } else { value })
}

/// Fractional seconds (`"1616173619.123456789"`, `"-1.500000000"`) as whole microseconds,
/// digits past the microsecond dropped.
fn epoch_micros(text: &str) -> Option<i64> {
    let (negative, whole, fraction) = split_decimal(text)?;
    let seconds: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut micros: i64 = 0;
    for i in 0..6 {
        let digit = fraction
            .as_bytes()
            .get(i)
            .map_or(0, |b| i64::from(b - b'0'));
        micros = micros * 10 + digit;
    }
    let total = seconds.checked_mul(1_000_000)?.checked_add(micros)?;
    Some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Decimal128Array, Int64Array, TimestampMicrosecondArray};

    fn column(kind: &str, precision: Option<u32>, scale: Option<i32>) -> RowType {
        RowType {
            name: "C".into(),
            kind: kind.into(),
            precision,
            scale,
            nullable: true,
        }
    }

    #[test]
    fn row_types_map_to_arrow_types() {
        let k = |c: RowType| SfKind::of(&c).unwrap().data_type();
        assert_eq!(k(column("fixed", Some(18), Some(0))), DataType::Int64);
        assert_eq!(k(column("fixed", Some(38), Some(0))), DataType::Int64);
        assert_eq!(
            k(column("fixed", Some(10), Some(2))),
            DataType::Decimal128(10, 2)
        );
        assert_eq!(k(column("variant", None, None)), DataType::Utf8);
        let err = SfKind::of(&column("vector", None, None)).unwrap_err();
        assert!(err.contains("C::VARCHAR"), "{err}");
    }

    #[test]
    fn cells_decode_exactly() {
        let mut d = SfBuilder::new(
            SfKind::Decimal {
                precision: 10,
                scale: 2,
            },
            3,
        );
        for cell in [Some("123.45"), Some("-0.5"), None, Some("7")] {
            d.push(cell).unwrap();
        }
        assert!(d.push(Some("1.234")).is_err());
        let a = d.finish();
        let a = a.as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!(a.value(0), 12345);
        assert_eq!(a.value(1), -50);
        assert!(a.is_null(2));
        assert_eq!(a.value(3), 700);

        let mut t = SfBuilder::new(SfKind::TimestampTz, 2);
        t.push(Some("1616173619.123456789 1500")).unwrap();
        t.push(Some("-1.500000000")).unwrap();
        let a = t.finish();
        let a = a
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(a.value(0), 1_616_173_619_123_456);
        assert_eq!(a.value(1), -1_500_000);

        let mut i = SfBuilder::new(SfKind::Int64, 1);
        assert!(i.push(Some("12x")).unwrap_err().contains("not an integer"));
        i.push(Some("-42")).unwrap();
        let big = i.push(Some("99999999999999999999")).unwrap_err();
        assert!(big.contains("does not fit Int64"), "{big}");
        let a = i.finish();
        assert_eq!(
            a.as_any().downcast_ref::<Int64Array>().unwrap().value(0),
            -42
        );
        let mut b = SfBuilder::new(SfKind::Binary, 1);
        b.push(Some("48656c6c6f")).unwrap();
        assert!(b.push(Some("zz")).is_err());
        assert_eq!(decimal("1e5", 0), None);
        assert_eq!(epoch_micros("."), None);
    }
}
