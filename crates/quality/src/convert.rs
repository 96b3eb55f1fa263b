//! Casting and checking one column of values under its contract rule.
//!
//! Per value, in order: trim, null tokens (then `required`), case folding, the allowed values,
//! the regex (both on the text), the type cast, the min/max range. The first rule a value breaks
//! rejects its row; the reason names the rule and the value.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, NaiveDate};

pub use medallion_lake::ingest::pinned::parse_timestamp;

use crate::contract::{Bound, Case, ColumnRule, ColumnType};

/// Days since 1970-01-01.
pub fn days_since_epoch(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    i32::try_from((d - epoch).num_days()).unwrap_or(i32::MAX)
}

/// A rule a value broke.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Row index in the batch.
    pub row: usize,
    pub column: String,
    /// `required`, `type`, `allowed`, `range`, `regex` or `duplicate`.
    pub rule: &'static str,
    pub value: String,
    pub reason: String,
}

/// Whether [`text_at`] can read a column of this type.
pub fn readable(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float32
            | DataType::Float64
            | DataType::Date32
            | DataType::Timestamp(_, _)
            | DataType::Decimal128(_, _)
    )
}

/// The value at `i` as text (`None` for null): strings as they are, numbers as Rust prints them,
/// dates as `YYYY-MM-DD`, timestamps as RFC 3339 in UTC. Also the canonical text of dedup keys.
pub fn text_at(a: &dyn Array, i: usize) -> Option<Cow<'_, str>> {
    if a.is_null(i) {
        return None;
    }
    let ts = |v: i64, per_sec: i64| {
        let secs = v.div_euclid(per_sec);
        let nanos = (v.rem_euclid(per_sec) * (1_000_000_000 / per_sec)) as u32;
        DateTime::from_timestamp(secs, nanos)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    };
    Some(match a.data_type() {
        DataType::Utf8 => Cow::Borrowed(a.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Cow::Borrowed(a.as_string::<i64>().value(i)),
        DataType::Utf8View => Cow::Borrowed(a.as_string_view().value(i)),
        DataType::Boolean => Cow::Borrowed(if a.as_boolean().value(i) {
            "true"
        } else {
            "false"
        }),
        DataType::Int8 => Cow::Owned(a.as_primitive::<Int8Type>().value(i).to_string()),
        DataType::Int16 => Cow::Owned(a.as_primitive::<Int16Type>().value(i).to_string()),
        DataType::Int32 => Cow::Owned(a.as_primitive::<Int32Type>().value(i).to_string()),
        DataType::Int64 => Cow::Owned(a.as_primitive::<Int64Type>().value(i).to_string()),
        DataType::UInt8 => Cow::Owned(a.as_primitive::<UInt8Type>().value(i).to_string()),
        DataType::UInt16 => Cow::Owned(a.as_primitive::<UInt16Type>().value(i).to_string()),
        DataType::UInt32 => Cow::Owned(a.as_primitive::<UInt32Type>().value(i).to_string()),
        DataType::UInt64 => Cow::Owned(a.as_primitive::<UInt64Type>().value(i).to_string()),
        DataType::Float32 => Cow::Owned(a.as_primitive::<Float32Type>().value(i).to_string()),
        DataType::Float64 => Cow::Owned(a.as_primitive::<Float64Type>().value(i).to_string()),
        DataType::Date32 => {
            let d = a.as_primitive::<Date32Type>().value(i);
            let date = NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|e| e.checked_add_signed(chrono::Duration::days(i64::from(d))))?;
            Cow::Owned(date.format("%Y-%m-%d").to_string())
        }
        DataType::Timestamp(unit, _) => Cow::Owned(match unit {
            TimeUnit::Second => ts(a.as_primitive::<TimestampSecondType>().value(i), 1)?,
            TimeUnit::Millisecond => {
                ts(a.as_primitive::<TimestampMillisecondType>().value(i), 1_000)?
            }
            TimeUnit::Microsecond => ts(
                a.as_primitive::<TimestampMicrosecondType>().value(i),
                1_000_000,
            )?,
            TimeUnit::Nanosecond => ts(
                a.as_primitive::<TimestampNanosecondType>().value(i),
                1_000_000_000,
            )?,
        }),
        DataType::Decimal128(_, _) => {
            let d = a.as_primitive::<arrow_array::types::Decimal128Type>();
            Cow::Owned(d.value_as_string(i))
        }
        _ => return None,
    })
}

/// Typed values being collected for one output column.
enum Values {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Decimal(Vec<Option<i128>>, u8, i8),
    Bool(Vec<Option<bool>>),
    Text(StringBuilder),
    Date(Vec<Option<i32>>),
    Timestamp(Vec<Option<i64>>),
}

impl Values {
    fn new(ty: &ColumnType, rows: usize) -> Values {
        match ty {
            ColumnType::Int => Values::Int(Vec::with_capacity(rows)),
            ColumnType::Float => Values::Float(Vec::with_capacity(rows)),
            ColumnType::Decimal { precision, scale } => {
                Values::Decimal(Vec::with_capacity(rows), *precision, *scale)
            }
            ColumnType::Bool => Values::Bool(Vec::with_capacity(rows)),
            ColumnType::String => Values::Text(StringBuilder::with_capacity(rows, rows * 8)),
            ColumnType::Date { .. } => Values::Date(Vec::with_capacity(rows)),
            ColumnType::Timestamp { .. } => Values::Timestamp(Vec::with_capacity(rows)),
        }
    }

    fn push_null(&mut self) {
        match self {
            Values::Int(v) | Values::Timestamp(v) => v.push(None),
            Values::Float(v) => v.push(None),
            Values::Decimal(v, _, _) => v.push(None),
            Values::Bool(v) => v.push(None),
            Values::Text(b) => b.append_null(),
            Values::Date(v) => v.push(None),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Values::Int(v) => Arc::new(Int64Array::from(v)),
            Values::Float(v) => Arc::new(Float64Array::from(v)),
            Values::Decimal(v, p, s) => Arc::new(
                Decimal128Array::from(v)
                    .with_precision_and_scale(p, s)
                    .unwrap_or_else(|_| Decimal128Array::from(Vec::<Option<i128>>::new())),
            ),
            Values::Bool(v) => Arc::new(BooleanArray::from(v)),
            Values::Text(mut b) => Arc::new(b.finish()),
            Values::Date(v) => Arc::new(Date32Array::from(v)),
            Values::Timestamp(v) => {
                Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"))
            }
        }
    }
}

/// The Arrow type a rule produces.
pub fn output_type(ty: &ColumnType) -> DataType {
    match ty {
        ColumnType::Int => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
        ColumnType::Bool => DataType::Boolean,
        ColumnType::String => DataType::Utf8,
        ColumnType::Date { .. } => DataType::Date32,
        ColumnType::Timestamp { .. } => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
    }
}

/// Casts and checks `source` (absent: every value null) under `rule`. Rejected values become
/// null in the output and are reported in `rejections`.
pub fn convert(
    rule: &ColumnRule,
    source: Option<&dyn Array>,
    rows: usize,
    rejections: &mut Vec<Rejection>,
) -> ArrayRef {
    let mut out = Values::new(&rule.ty, rows);
    let longest_null = rule.null_tokens.iter().map(String::len).max().unwrap_or(0);
    for i in 0..rows {
        let raw = source.and_then(|a| text_at(a, i));
        let text = raw.as_deref().map(|t| if rule.trim { t.trim() } else { t });
        let is_null_token =
            |t: &str| t.len() <= longest_null && rule.null_tokens.iter().any(|n| n == t);
        let Some(text) = text.filter(|t| !is_null_token(t)) else {
            if rule.required {
                rejections.push(reject(
                    rule,
                    i,
                    "required",
                    raw.as_deref().unwrap_or(""),
                    "is empty but required".into(),
                ));
            }
            out.push_null();
            continue;
        };
        // Folding allocates only when the text actually changes.
        let folded: Cow<str> = match rule.case {
            Some(Case::Lower)
                if text.bytes().any(|b| b.is_ascii_uppercase()) || !text.is_ascii() =>
            {
                Cow::Owned(text.to_lowercase())
            }
            Some(Case::Upper)
                if text.bytes().any(|b| b.is_ascii_lowercase()) || !text.is_ascii() =>
            {
                Cow::Owned(text.to_uppercase())
            }
            _ => Cow::Borrowed(text),
        };
        match check(rule, &folded, &mut out) {
            Ok(()) => {}
            Err((rule_name, reason)) => {
                rejections.push(reject(rule, i, rule_name, text, reason));
                out.push_null();
            }
        }
    }
    out.finish()
}

fn reject(
    rule: &ColumnRule,
    row: usize,
    name: &'static str,
    value: &str,
    reason: String,
) -> Rejection {
    Rejection {
        row,
        column: rule.name.clone(),
        rule: name,
        value: value.chars().take(200).collect(),
        reason,
    }
}

/// Casts one non-null value and checks it; pushes it on success.
fn check(rule: &ColumnRule, v: &str, out: &mut Values) -> Result<(), (&'static str, String)> {
    let type_error = || {
        (
            "type",
            format!("'{}' is not a valid {}", shown(v), rule.ty.name()),
        )
    };
    if let Some(allowed) = &rule.allowed
        && !allowed.iter().any(|a| a == v)
    {
        let list = allowed
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        return Err(("allowed", format!("'{}' is not one of {list}", shown(v))));
    }
    if let Some(re) = &rule.regex
        && !re.is_match(v)
    {
        return Err((
            "regex",
            format!("'{}' does not match /{}/", shown(v), re.as_str()),
        ));
    }
    let number = match (&rule.ty, &mut *out) {
        (ColumnType::Int, Values::Int(vals)) => {
            let x: i64 = v.parse().map_err(|_| type_error())?;
            range(rule, v, x as f64)?;
            vals.push(Some(x));
            return Ok(());
        }
        (ColumnType::Float, Values::Float(vals)) => {
            let x: f64 = v.parse().map_err(|_| type_error())?;
            if !x.is_finite() {
                return Err(type_error());
            }
            range(rule, v, x)?;
            vals.push(Some(x));
            return Ok(());
        }
        (ColumnType::Decimal { precision, scale }, Values::Decimal(vals, _, _)) => {
            let x = parse_decimal(v, *precision, *scale)
                .map_err(|why| ("type", format!("'{}' {why}", shown(v))))?;
            Some((x, vals, *scale))
        }
        (ColumnType::Bool, Values::Bool(vals)) => {
            let b = match v.to_ascii_lowercase().as_str() {
                "true" | "t" | "yes" | "y" | "1" => true,
                "false" | "f" | "no" | "n" | "0" => false,
                _ => return Err(type_error()),
            };
            vals.push(Some(b));
            return Ok(());
        }
        (ColumnType::String, Values::Text(b)) => {
            b.append_value(v);
            return Ok(());
        }
        (ColumnType::Date { format }, Values::Date(vals)) => {
            let d = NaiveDate::parse_from_str(v, format).map_err(|_| type_error())?;
            let days = days_since_epoch(d);
            range(rule, v, f64::from(days))?;
            vals.push(Some(days));
            return Ok(());
        }
        (ColumnType::Timestamp { format }, Values::Timestamp(vals)) => {
            let t = parse_timestamp(v, format.as_deref()).ok_or_else(type_error)?;
            range(rule, v, t as f64)?;
            vals.push(Some(t));
            return Ok(());
        }
        _ => None,
    };
    match number {
        Some((x, vals, scale)) => {
            range(rule, v, x as f64 / 10f64.powi(i32::from(scale)))?;
            vals.push(Some(x));
            Ok(())
        }
        None => Err((
            "type",
            "internal: the column builder does not match its type".into(),
        )),
    }
}

fn bound_value(b: Bound) -> f64 {
    match b {
        Bound::Number(x) => x,
        Bound::Date(d) => f64::from(d),
        Bound::Timestamp(t) => t as f64,
    }
}

fn range(rule: &ColumnRule, v: &str, x: f64) -> Result<(), (&'static str, String)> {
    if let Some(lo) = rule.min
        && x < bound_value(lo)
    {
        return Err((
            "range",
            format!("'{}' is below the minimum {}", shown(v), show_bound(lo)),
        ));
    }
    if let Some(hi) = rule.max
        && x > bound_value(hi)
    {
        return Err((
            "range",
            format!("'{}' is above the maximum {}", shown(v), show_bound(hi)),
        ));
    }
    Ok(())
}

fn show_bound(b: Bound) -> String {
    match b {
        Bound::Number(x) => x.to_string(),
        Bound::Date(d) => text_at(&Date32Array::from(vec![d]), 0)
            .map(|c| c.into_owned())
            .unwrap_or_default(),
        Bound::Timestamp(t) => text_at(&TimestampMicrosecondArray::from(vec![t]), 0)
            .map(|c| c.into_owned())
            .unwrap_or_default(),
    }
}

fn shown(v: &str) -> String {
    v.chars().take(60).collect()
}

/// Parses `[-+]digits[.digits]` into an integer scaled by `10^scale`. More fractional digits
/// than the scale, or more digits than the precision, is an error (never rounded silently).
pub fn parse_decimal(v: &str, precision: u8, scale: i8) -> Result<i128, String> {
    let (negative, digits) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err("is not a valid decimal".into());
    }
    let scale = usize::try_from(scale).unwrap_or(0);
    if frac_part.len() > scale {
        return Err(format!("has more than {scale} decimal places"));
    }
    let int_part = int_part.trim_start_matches('0');
    if int_part.len() + scale > usize::from(precision) {
        return Err(format!("does not fit decimal({precision},{scale})"));
    }
    let mut x: i128 = 0;
    for b in int_part.bytes().chain(frac_part.bytes()) {
        x = x * 10 + i128::from(b - b'0');
    }
    for _ in frac_part.len()..scale {
        x *= 10;
    }
    Ok(if negative { -x } else { x })
}

#[cfg(test)]
mod tests {
    use arrow_array::StringArray;

    use super::*;
    use crate::contract::Contract;

    fn rule(yaml: &str) -> ColumnRule {
        Contract::parse(&format!("columns:\n  c: {yaml}\n"), "t")
            .unwrap()
            .columns
            .remove(0)
    }

    fn run(yaml: &str, values: &[Option<&str>]) -> (ArrayRef, Vec<(usize, &'static str, String)>) {
        let src = StringArray::from(values.to_vec());
        let mut rej = Vec::new();
        let out = convert(&rule(yaml), Some(&src), values.len(), &mut rej);
        (
            out,
            rej.into_iter().map(|r| (r.row, r.rule, r.reason)).collect(),
        )
    }

    #[test]
    fn ints_with_nulls_ranges_and_bad_values() {
        let (out, rej) = run(
            "{type: int, min: 0, max: 10, required: true}",
            &[Some(" 3 "), Some("NA"), Some("x"), Some("11"), None],
        );
        let out = out.as_primitive::<Int64Type>();
        assert_eq!(out.value(0), 3);
        assert_eq!(out.null_count(), 4);
        let rules: Vec<_> = rej.iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(
            rules,
            vec![(1, "required"), (2, "type"), (3, "range"), (4, "required")]
        );
        assert_eq!(rej[2].2, "'11' is above the maximum 10");
    }

    #[test]
    fn strings_fold_case_then_check_allowed_and_regex() {
        let (out, rej) = run(
            "{type: string, case: lower, allowed: [urban, rural], regex: '^[a-z]+$'}",
            &[Some("URBAN"), Some("city")],
        );
        assert_eq!(out.as_string::<i32>().value(0), "urban");
        assert_eq!(
            rej,
            vec![(
                1,
                "allowed",
                "'city' is not one of urban, rural".to_string()
            )]
        );
    }

    #[test]
    fn dates_timestamps_bools_and_decimals() {
        let (d, rej) = run(
            "{type: date, min: '2000-01-01'}",
            &[Some("2026-11-22"), Some("1999-12-31"), Some("22/11/2026")],
        );
        assert_eq!(d.as_primitive::<Date32Type>().value(0), 20779);
        assert_eq!(
            rej.iter().map(|r| r.1).collect::<Vec<_>>(),
            vec!["range", "type"]
        );
        let (t, rej) = run(
            "timestamp",
            &[Some("2026-11-22T06:41:00Z"), Some("2026-11-22 06:41:00")],
        );
        assert!(rej.is_empty());
        let t = t.as_primitive::<TimestampMicrosecondType>();
        assert_eq!(t.value(0), t.value(1));
        let (b, rej) = run("bool", &[Some("Yes"), Some("no"), Some("maybe")]);
        assert!(b.as_boolean().value(0));
        assert_eq!(rej.len(), 1);
        assert_eq!(parse_decimal("12.5", 5, 2), Ok(1250));
        assert_eq!(parse_decimal("-0.01", 5, 2), Ok(-1));
        assert!(
            parse_decimal("1.005", 5, 2)
                .unwrap_err()
                .contains("more than 2 decimal places")
        );
        assert!(
            parse_decimal("1234", 5, 2)
                .unwrap_err()
                .contains("does not fit")
        );
        assert!(parse_decimal("1e3", 5, 2).is_err());
    }

    #[test]
    fn typed_sources_read_as_text() {
        let ints = Int64Array::from(vec![Some(5), None]);
        assert_eq!(text_at(&ints, 0).as_deref(), Some("5"));
        assert_eq!(text_at(&ints, 1), None);
        let ts = TimestampMicrosecondArray::from(vec![1_795_329_660_000_000]).with_timezone("UTC");
        assert_eq!(text_at(&ts, 0).as_deref(), Some("2026-11-22T06:41:00Z"));
    }
}
