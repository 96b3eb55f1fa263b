//! PostgreSQL values in the binary wire format, decoded straight into Arrow columns.
//!
//! | PostgreSQL                         | Arrow                                   |
//! |------------------------------------|-----------------------------------------|
//! | boolean                            | Boolean                                 |
//! | smallint, integer, bigint, oid     | Int16, Int32, Int64, Int64              |
//! | real, double precision             | Float32, Float64                        |
//! | numeric(p,s) with p ≤ 38           | Decimal128(p, s)                        |
//! | numeric without (p,s), or p > 38   | Utf8 (the exact decimal text)           |
//! | text, varchar, char(n), name, citext, enums, json, jsonb, xml, uuid | Utf8   |
//! | bytea                              | Binary                                  |
//! | date                               | Date32                                  |
//! | timestamp / timestamptz            | Timestamp(µs) / Timestamp(µs, "UTC")    |
//! | time                               | Time64(µs)                              |
//!
//! Anything else (arrays, intervals, geometry, ranges) is refused when the query is described,
//! before a row is read, with the cast that makes it importable.

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_schema::{DataType, Field, TimeUnit};
use tokio_postgres::types::{FromSql, Kind, Type};

/// Days from 1970-01-01 to PostgreSQL's epoch 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// How one column is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Bool,
    Int16,
    Int32,
    Int64,
    Oid,
    Float32,
    Float64,
    Decimal { precision: u8, scale: i8 },
    NumericText,
    Text,
    Jsonb,
    Uuid,
    Bytes,
    Date,
    Timestamp,
    TimestampTz,
    Time,
}

impl ValueKind {
    /// The decoding for a column of type `ty` with type modifier `typmod`; `None` when the type
    /// has no mapping.
    pub fn of(ty: &Type, typmod: i32) -> Option<ValueKind> {
        if let Kind::Domain(inner) = ty.kind() {
            return ValueKind::of(inner, typmod);
        }
        if let Kind::Enum(_) = ty.kind() {
            return Some(ValueKind::Text);
        }
        Some(match *ty {
            Type::BOOL => ValueKind::Bool,
            Type::INT2 => ValueKind::Int16,
            Type::INT4 => ValueKind::Int32,
            Type::INT8 => ValueKind::Int64,
            Type::OID => ValueKind::Oid,
            Type::FLOAT4 => ValueKind::Float32,
            Type::FLOAT8 => ValueKind::Float64,
            Type::NUMERIC => numeric_kind(typmod),
            Type::TEXT
            | Type::VARCHAR
            | Type::BPCHAR
            | Type::NAME
            | Type::CHAR
            | Type::JSON
            | Type::XML
            | Type::UNKNOWN => ValueKind::Text,
            Type::JSONB => ValueKind::Jsonb,
            Type::UUID => ValueKind::Uuid,
            Type::BYTEA => ValueKind::Bytes,
            Type::DATE => ValueKind::Date,
            Type::TIMESTAMP => ValueKind::Timestamp,
            Type::TIMESTAMPTZ => ValueKind::TimestampTz,
            Type::TIME => ValueKind::Time,
            _ if ty.name() == "citext" => ValueKind::Text,
            _ => return None,
        })
    }

    pub fn data_type(self) -> DataType {
        match self {
            ValueKind::Bool => DataType::Boolean,
            ValueKind::Int16 => DataType::Int16,
            ValueKind::Int32 => DataType::Int32,
            ValueKind::Int64 | ValueKind::Oid => DataType::Int64,
            ValueKind::Float32 => DataType::Float32,
            ValueKind::Float64 => DataType::Float64,
            ValueKind::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
            ValueKind::NumericText | ValueKind::Text | ValueKind::Jsonb | ValueKind::Uuid => {
                DataType::Utf8
            }
            ValueKind::Bytes => DataType::Binary,
            ValueKind::Date => DataType::Date32,
            ValueKind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            ValueKind::TimestampTz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            ValueKind::Time => DataType::Time64(TimeUnit::Microsecond),
        }
    }

    pub fn field(self, name: &str) -> Field {
        Field::new(name, self.data_type(), true)
    }
}

/// numeric(p,s) → Decimal128 when it fits; the typmod is `((p << 16) | s) + 4`, -1 when unset.
fn numeric_kind(typmod: i32) -> ValueKind {
    if typmod < 4 {
        return ValueKind::NumericText;
    }
    let m = typmod - 4;
    let precision = (m >> 16) & 0xffff;
    let scale = m & 0xffff;
    // Negative scales (PostgreSQL 15+) are stored as 11-bit two's complement; keep those as text.
    if (1..=38).contains(&precision) && scale <= precision {
        ValueKind::Decimal {
            precision: precision as u8,
            scale: scale as i8,
        }
    } else {
        ValueKind::NumericText
    }
}

/// Any value's raw bytes (`None` for SQL NULL).
pub struct RawValue<'a>(pub &'a [u8]);

impl<'a> FromSql<'a> for RawValue<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawValue(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A column being filled.
pub enum ColumnBuilder {
    Bool(BooleanBuilder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Text(StringBuilder),
    Bytes(BinaryBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder, bool),
    Time(Time64MicrosecondBuilder),
}

impl ColumnBuilder {
    pub fn new(kind: ValueKind, rows: usize) -> ColumnBuilder {
        match kind {
            ValueKind::Bool => ColumnBuilder::Bool(BooleanBuilder::with_capacity(rows)),
            ValueKind::Int16 => ColumnBuilder::Int16(Int16Builder::with_capacity(rows)),
            ValueKind::Int32 => ColumnBuilder::Int32(Int32Builder::with_capacity(rows)),
            ValueKind::Int64 | ValueKind::Oid => {
                ColumnBuilder::Int64(Int64Builder::with_capacity(rows))
            }
            ValueKind::Float32 => ColumnBuilder::Float32(Float32Builder::with_capacity(rows)),
            ValueKind::Float64 => ColumnBuilder::Float64(Float64Builder::with_capacity(rows)),
            ValueKind::Decimal { precision, scale } => {
                ColumnBuilder::Decimal(Decimal128Builder::with_capacity(rows), precision, scale)
            }
            ValueKind::NumericText | ValueKind::Text | ValueKind::Jsonb | ValueKind::Uuid => {
                ColumnBuilder::Text(StringBuilder::with_capacity(rows, rows * 16))
            }
            ValueKind::Bytes => ColumnBuilder::Bytes(BinaryBuilder::with_capacity(rows, rows * 16)),
            ValueKind::Date => ColumnBuilder::Date(Date32Builder::with_capacity(rows)),
            ValueKind::Timestamp => {
                ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows), false)
            }
            ValueKind::TimestampTz => {
                ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows), true)
            }
            ValueKind::Time => ColumnBuilder::Time(Time64MicrosecondBuilder::with_capacity(rows)),
        }
    }

    /// Appends one value decoded as `kind`; the error says what is wrong with it.
    pub fn push(&mut self, kind: ValueKind, raw: Option<&[u8]>) -> Result<(), String> {
        let Some(raw) = raw else {
            self.push_null();
            return Ok(());
        };
        match (self, kind) {
            (ColumnBuilder::Bool(b), _) => b.append_value(fixed::<1>(raw)?[0] != 0),
            (ColumnBuilder::Int16(b), _) => b.append_value(i16::from_be_bytes(fixed(raw)?)),
            (ColumnBuilder::Int32(b), _) => b.append_value(i32::from_be_bytes(fixed(raw)?)),
            (ColumnBuilder::Int64(b), ValueKind::Oid) => {
                b.append_value(i64::from(u32::from_be_bytes(fixed(raw)?)))
            }
            (ColumnBuilder::Int64(b), _) => b.append_value(i64::from_be_bytes(fixed(raw)?)),
            (ColumnBuilder::Float32(b), _) => b.append_value(f32::from_be_bytes(fixed(raw)?)),
            (ColumnBuilder::Float64(b), _) => b.append_value(f64::from_be_bytes(fixed(raw)?)),
            (ColumnBuilder::Decimal(b, precision, scale), _) => {
                let n = Numeric::decode(raw)?;
                b.append_value(n.unscaled(*precision, *scale)?)
            }
            (ColumnBuilder::Text(b), ValueKind::NumericText) => {
                b.append_value(Numeric::decode(raw)?.to_text())
            }
            (ColumnBuilder::Text(b), ValueKind::Jsonb) => match raw.split_first() {
                Some((1, json)) => b.append_value(utf8(json)?),
                _ => return Err("jsonb value in an unknown binary version".to_string()),
            },
            (ColumnBuilder::Text(b), ValueKind::Uuid) => {
                let h = hex::encode(fixed::<16>(raw)?);
                b.append_value(format!(
                    "{}-{}-{}-{}-{}",
                    &h[0..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..32]
                ))
            }
            (ColumnBuilder::Text(b), _) => b.append_value(utf8(raw)?),
            (ColumnBuilder::Bytes(b), _) => b.append_value(raw),
            (ColumnBuilder::Date(b), _) => {
                let days = i32::from_be_bytes(fixed(raw)?);
                if days == i32::MAX || days == i32::MIN {
                    return Err(
                        "date is ±infinity, which Arrow cannot hold; filter it or cast it to text"
                            .into(),
                    );
                }
                let days = days
                    .checked_add(PG_EPOCH_DAYS)
                    .ok_or_else(|| "date out of range".to_string())?;
                b.append_value(days)
            }
            (ColumnBuilder::Timestamp(b, _), _) => {
                let us = i64::from_be_bytes(fixed(raw)?);
                if us == i64::MAX || us == i64::MIN {
                    return Err("timestamp is ±infinity, which Arrow cannot hold; filter it or cast it to text".into());
                }
                let us = us
                    .checked_add(PG_EPOCH_MICROS)
                    .ok_or_else(|| "timestamp out of range".to_string())?;
                b.append_value(us)
            }
            (ColumnBuilder::Time(b), _) => b.append_value(i64::from_be_bytes(fixed(raw)?)),
        }
        Ok(())
    }

    fn push_null(&mut self) {
        match self {
            ColumnBuilder::Bool(b) => b.append_null(),
            ColumnBuilder::Int16(b) => b.append_null(),
            ColumnBuilder::Int32(b) => b.append_null(),
            ColumnBuilder::Int64(b) => b.append_null(),
            ColumnBuilder::Float32(b) => b.append_null(),
            ColumnBuilder::Float64(b) => b.append_null(),
            ColumnBuilder::Decimal(b, ..) => b.append_null(),
            ColumnBuilder::Text(b) => b.append_null(),
            ColumnBuilder::Bytes(b) => b.append_null(),
            ColumnBuilder::Date(b) => b.append_null(),
            ColumnBuilder::Timestamp(b, _) => b.append_null(),
            ColumnBuilder::Time(b) => b.append_null(),
        }
    }

    /// The finished column.
    pub fn finish(self) -> Result<ArrayRef, String> {
        Ok(match self {
            ColumnBuilder::Bool(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Int16(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Int32(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Int64(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Float32(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Decimal(mut b, precision, scale) => Arc::new(
                b.finish()
                    .with_precision_and_scale(precision, scale)
                    .map_err(|e| e.to_string())?,
            ),
            ColumnBuilder::Text(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Bytes(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Date(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(mut b, utc) => {
                let a = b.finish();
                if utc {
                    Arc::new(a.with_timezone("UTC"))
                } else {
                    Arc::new(a)
                }
            }
            ColumnBuilder::Time(mut b) => Arc::new(b.finish()),
        })
    }
}

fn fixed<const N: usize>(raw: &[u8]) -> Result<[u8; N], String> {
    raw.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", raw.len()))
}

fn utf8(raw: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(raw).map_err(|e| {
        format!("text is not UTF-8 ({e}); set the database or client encoding to UTF8")
    })
}

/// A numeric in PostgreSQL's binary form: base-10000 digits, the weight of the first, a sign and
/// the display scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Numeric {
    digits: Vec<i16>,
    weight: i16,
    negative: bool,
    dscale: u16,
}

const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_POS: u16 = 0x0000;

impl Numeric {
    pub fn decode(raw: &[u8]) -> Result<Numeric, String> {
        let word = |i: usize| -> Result<u16, String> {
            raw.get(i * 2..i * 2 + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| "numeric value is truncated".to_string())
        };
        let ndigits = word(0)? as usize;
        let weight = word(1)? as i16;
        let sign = word(2)?;
        let dscale = word(3)?;
        let negative = match sign {
            NUMERIC_POS => false,
            NUMERIC_NEG => true,
            _ => {
                return Err(
                    "numeric is NaN or infinite, which a decimal cannot hold; filter it or cast it to float8"
                        .to_string(),
                );
            }
        };
        let digits = (0..ndigits)
            .map(|i| word(4 + i).map(|w| w as i16))
            .collect::<Result<Vec<_>, _>>()?;
        if digits.iter().any(|d| !(0..10_000).contains(d)) {
            return Err("numeric digit out of range".to_string());
        }
        Ok(Numeric {
            digits,
            weight,
            negative,
            dscale,
        })
    }

    /// The value × 10^scale as an integer, checked against `precision` digits.
    pub fn unscaled(&self, precision: u8, scale: i8) -> Result<i128, String> {
        let too_big = || format!("numeric does not fit decimal({precision},{scale})");
        let mut acc: i128 = 0;
        for (i, d) in self.digits.iter().enumerate() {
            // This digit's value is d × 10^(4 × (weight − i)); scaled, × 10^scale.
            let exp = 4 * (i32::from(self.weight) - i as i32) + i32::from(scale);
            let term = if exp >= 0 {
                10i128
                    .checked_pow(exp as u32)
                    .and_then(|p| p.checked_mul(i128::from(*d)))
                    .ok_or_else(too_big)?
            } else {
                let div = 10i128.checked_pow((-exp) as u32).unwrap_or(i128::MAX);
                if i128::from(*d) % div != 0 {
                    return Err(format!(
                        "numeric has more decimals than decimal({precision},{scale}) keeps"
                    ));
                }
                i128::from(*d) / div
            };
            acc = acc.checked_add(term).ok_or_else(too_big)?;
        }
        if acc >= 10i128.pow(u32::from(precision)) {
            return Err(too_big());
        }
        Ok(if self.negative { -acc } else { acc })
    }

    /// The exact decimal text with the value's display scale (`-12.50`).
    pub fn to_text(&self) -> String {
        let mut int_part = String::new();
        let mut frac_part = String::new();
        let weight = i32::from(self.weight);
        for pos in 0..=weight.max(0) {
            let d = usize::try_from(pos)
                .ok()
                .and_then(|p| self.digits.get(p))
                .copied()
                .unwrap_or(0);
            if int_part.is_empty() {
                if d != 0 || pos == weight.max(0) {
                    int_part = d.to_string();
                }
            } else {
                int_part.push_str(&format!("{d:04}"));
            }
        }
        if weight < 0 {
            int_part = "0".to_string();
        }
        // Fraction groups: positions weight+1 .. ; group k (1-based after the point) has weight -k.
        let groups = (usize::from(self.dscale)).div_ceil(4);
        for k in 1..=groups as i32 {
            let index = weight + k;
            let d = usize::try_from(index)
                .ok()
                .and_then(|i| self.digits.get(i))
                .copied()
                .unwrap_or(0);
            frac_part.push_str(&format!("{d:04}"));
        }
        frac_part.truncate(usize::from(self.dscale));
        let mut out = String::new();
        let is_zero = self.digits.iter().all(|d| *d == 0);
        if self.negative && !is_zero {
            out.push('-');
        }
        out.push_str(&int_part);
        if !frac_part.is_empty() {
            out.push('.');
            out.push_str(&frac_part);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(digits: &[i16], weight: i16, negative: bool, dscale: u16) -> Vec<u8> {
        let mut out = Vec::new();
        for w in [
            digits.len() as u16,
            weight as u16,
            if negative { NUMERIC_NEG } else { NUMERIC_POS },
            dscale,
        ] {
            out.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics_decode_to_text_and_decimals() {
        // 12345.678 = [1, 2345, 6780], weight 1, dscale 3
        let n = Numeric::decode(&numeric(&[1, 2345, 6780], 1, false, 3)).unwrap();
        assert_eq!(n.to_text(), "12345.678");
        assert_eq!(n.unscaled(10, 3).unwrap(), 12_345_678);
        assert_eq!(n.unscaled(12, 5).unwrap(), 1_234_567_800);
        assert!(n.unscaled(10, 2).is_err(), "a decimal dropped is an error");
        assert!(
            n.unscaled(6, 3).is_err(),
            "too many digits for the precision"
        );
        // -0.05 = [500], weight -1, dscale 2
        let n = Numeric::decode(&numeric(&[500], -1, true, 2)).unwrap();
        assert_eq!(n.to_text(), "-0.05");
        assert_eq!(n.unscaled(5, 2).unwrap(), -5);
        // 0 and 100000000 (weight 2, one digit 1)
        assert_eq!(
            Numeric::decode(&numeric(&[], 0, false, 0))
                .unwrap()
                .to_text(),
            "0"
        );
        let n = Numeric::decode(&numeric(&[1], 2, false, 0)).unwrap();
        assert_eq!(n.to_text(), "100000000");
        assert_eq!(n.unscaled(9, 0).unwrap(), 100_000_000);
        // NaN is refused with the fix.
        let mut nan = numeric(&[], 0, false, 0);
        nan[4] = 0xC0;
        assert!(Numeric::decode(&nan).unwrap_err().contains("NaN"));
    }

    #[test]
    fn typmods_pick_decimal_or_text() {
        assert_eq!(
            numeric_kind(((12 << 16) | 2) + 4),
            ValueKind::Decimal {
                precision: 12,
                scale: 2
            }
        );
        assert_eq!(numeric_kind(-1), ValueKind::NumericText);
        assert_eq!(numeric_kind(((60 << 16) | 2) + 4), ValueKind::NumericText);
    }

    #[test]
    fn dates_and_timestamps_shift_to_the_unix_epoch() {
        let mut b = ColumnBuilder::new(ValueKind::Date, 2);
        b.push(ValueKind::Date, Some(&0i32.to_be_bytes())).unwrap();
        assert!(
            b.push(ValueKind::Date, Some(&i32::MAX.to_be_bytes()))
                .unwrap_err()
                .contains("infinity")
        );
        let a = b.finish().unwrap();
        let d = a
            .as_any()
            .downcast_ref::<arrow_array::Date32Array>()
            .unwrap();
        assert_eq!(d.value(0), 10_957);
        let mut t = ColumnBuilder::new(ValueKind::TimestampTz, 1);
        t.push(ValueKind::TimestampTz, Some(&1i64.to_be_bytes()))
            .unwrap();
        let a = t.finish().unwrap();
        assert_eq!(
            a.data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
    }
}
