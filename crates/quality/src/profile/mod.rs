//! Profile: what a version holds, whether it keeps its contract, and whether it drifted.
//!
//! Per column: count, nulls, distinct (exact up to [`DISTINCT_BOUND`], then HyperLogLog); for
//! numbers mean, sample std, min, quartiles (pandas' linear interpolation, exact), max, deciles and
//! a 20-bin histogram; for text the top values and length statistics; for dates and timestamps
//! min and max. Memory stays bounded: numbers are buffered up to [`BUFFER_VALUES`] per column;
//! beyond that, quantiles are found exactly in extra passes over just those columns (a fine
//! histogram locates each rank, then only the values in the few bins that hold one are kept).
//!
//! Drift: population stability index per column against a reference version (the previous
//! version of the dataset by default): numbers over the reference's deciles, text over its top
//! values plus "other". A column drifts when its PSI exceeds the threshold.

pub mod drift;
pub mod report;
pub mod stats;

use std::collections::BTreeMap;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_schema::{DataType, Schema};
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use bytes::Bytes;
use medallion_lake::ingest::lineage;
use medallion_lake::read::VersionReader;
use medallion_lake::{DatasetName, Layer, Manifest, Registry, StoreLocation, layout};
use object_store::{ObjectStoreExt, PutPayload};

use crate::contract::Contract;
use crate::convert;
use crate::error::Result;
use stats::{Distinct, FineHistogram, Moments, TopValues, hash64, interpolate, ranks_for};

/// Distinct values counted exactly up to this many per column.
pub const DISTINCT_BOUND: usize = 100_000;
/// Numbers buffered per column before quantiles switch to extra passes.
pub const BUFFER_VALUES: usize = 1_000_000;
/// Bins of the fine histogram that locates ranks (a multiple of the display bins).
const FINE_BINS: usize = 20 * 3277;
/// Values of one fine bin collected at most before the bin is split again.
const COLLECT_CAP: u64 = 2_000_000;
const DISPLAY_BINS: usize = 20;
const TOP_VALUES: usize = 10;
const BATCH_ROWS: usize = 64 * 1024;
/// Quantiles every numeric column gets: quartiles and deciles.
const QUANTILES: [f64; 11] = [0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9];

/// One histogram bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericStats {
    pub mean: f64,
    pub std: Option<f64>,
    pub min: f64,
    pub q25: f64,
    pub q50: f64,
    pub q75: f64,
    pub max: f64,
    /// The 10%..90% quantiles (drift bins).
    pub deciles: Vec<f64>,
    /// Values per decile bin: (-inf, d1], (d1, d2], ..., (d9, inf).
    pub decile_counts: Vec<u64>,
    pub histogram: Vec<Bin>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextStats {
    pub top: Vec<(String, u64)>,
    /// Whether the counts are exact (fewer distinct values than the bound).
    pub top_exact: bool,
    pub min_length: u64,
    pub max_length: u64,
    pub mean_length: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    pub data_type: String,
    /// `number`, `text`, `bool`, `time` or `other`.
    pub kind: String,
    pub count: u64,
    pub nulls: u64,
    pub distinct: u64,
    pub distinct_exact: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric: Option<NumericStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextStats>,
    /// True and false counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booleans: Option<(u64, u64)>,
    /// Earliest and latest, as text (`YYYY-MM-DD` or RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_range: Option<(String, String)>,
    /// Rows breaking each contract rule, when a contract was given.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub violations: BTreeMap<String, u64>,
}

/// A version's profile (`profile.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub layer: String,
    pub dataset: String,
    pub version: u64,
    pub rows: u64,
    pub content_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    pub columns: Vec<ColumnProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<drift::DriftReport>,
}

impl Profile {
    pub fn column(&self, name: &str) -> Option<&ColumnProfile> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Per-column state during the first pass.
enum Acc {
    Number {
        moments: Moments,
        distinct: Distinct,
        buffer: Option<Vec<f64>>,
    },
    Text {
        top: TopValues,
        distinct: Distinct,
        lengths: Moments,
    },
    Bool {
        t: u64,
        f: u64,
    },
    Time {
        min: Option<i64>,
        max: Option<i64>,
        distinct: Distinct,
    },
    Other,
}

fn kind_of(dt: &DataType) -> &'static str {
    match dt {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(_, _) => "number",
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text",
        DataType::Boolean => "bool",
        DataType::Date32 | DataType::Timestamp(_, _) => "time",
        _ => "other",
    }
}

/// The non-null values of a numeric column as f64, with their row indices.
fn numbers(a: &dyn Array, mut f: impl FnMut(f64)) {
    macro_rules! each {
        ($t:ty) => {{
            let p = a.as_primitive::<$t>();
            for i in 0..p.len() {
                if p.is_valid(i) {
                    f(p.value(i) as f64);
                }
            }
        }};
    }
    match a.data_type() {
        DataType::Int8 => each!(Int8Type),
        DataType::Int16 => each!(Int16Type),
        DataType::Int32 => each!(Int32Type),
        DataType::Int64 => each!(Int64Type),
        DataType::UInt8 => each!(UInt8Type),
        DataType::UInt16 => each!(UInt16Type),
        DataType::UInt32 => each!(UInt32Type),
        DataType::UInt64 => each!(UInt64Type),
        DataType::Float32 => each!(Float32Type),
        DataType::Float64 => each!(Float64Type),
        DataType::Decimal128(_, scale) => {
            let p = a.as_primitive::<Decimal128Type>();
            let div = 10f64.powi(i32::from(*scale));
            for i in 0..p.len() {
                if p.is_valid(i) {
                    f(p.value(i) as f64 / div);
                }
            }
        }
        _ => {}
    }
}

/// Profiles one committed version. `reference` (usually the previous version) enables drift.
/// Must run off the async runtime's worker threads.
pub fn profile_version(
    lake: &StoreLocation,
    manifest: &Manifest,
    handle: &Handle,
    contract: Option<&Contract>,
    reference: Option<&Profile>,
    drift_threshold: f64,
) -> Result<Profile> {
    // Fixed seeds: the same data gives the same distinct estimates on every run.
    let hasher = ahash::RandomState::with_seeds(0x5151, 0x6d65_6461, 0x6c6c_696f, 0x6e21);
    // Tuning (and testing) knob: how many numbers a column buffers before quantiles take passes.
    let buffer_cap = std::env::var("MEDALLION_PROFILE_BUFFER_VALUES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(BUFFER_VALUES);
    let schema =
        VersionReader::new(lake.clone(), manifest.clone(), handle.clone(), BATCH_ROWS).schema()?;
    let accs: Vec<Acc> = schema
        .fields()
        .iter()
        .map(|f| match kind_of(f.data_type()) {
            "number" => Acc::Number {
                moments: Moments::default(),
                distinct: Distinct::new(DISTINCT_BOUND),
                buffer: Some(Vec::new()),
            },
            "text" => Acc::Text {
                top: TopValues::new(DISTINCT_BOUND),
                distinct: Distinct::new(DISTINCT_BOUND),
                lengths: Moments::default(),
            },
            "bool" => Acc::Bool { t: 0, f: 0 },
            "time" => Acc::Time {
                min: None,
                max: None,
                distinct: Distinct::new(DISTINCT_BOUND),
            },
            _ => Acc::Other,
        })
        .collect();
    // The first pass runs on two threads, each reading (and decoding) its own half of the columns.
    let mut scans: Vec<ColumnScan> = accs
        .into_iter()
        .enumerate()
        .map(|(index, acc)| ColumnScan {
            index,
            acc,
            nulls: 0,
            violations: BTreeMap::new(),
        })
        .collect();
    let (mut a, mut b) = split_by_cost(&mut scans);
    let scan = |group: &mut Vec<&mut ColumnScan>| {
        scan_columns(
            lake, manifest, handle, group, contract, &schema, &hasher, buffer_cap,
        )
    };
    let (rows_a, rows_b) = std::thread::scope(|s| {
        let other = std::thread::Builder::new()
            .name("medallion-profile".into())
            .spawn_scoped(s, || scan(&mut b));
        let mine = scan(&mut a);
        let theirs = match other {
            Ok(h) => h.join().unwrap_or_else(|_| {
                Err(medallion_lake::Error::internal("profile", "a scan thread panicked").into())
            }),
            Err(e) => Err(medallion_lake::Error::internal("start a profile thread", e).into()),
        };
        (mine, theirs)
    });
    let rows = rows_a?.max(rows_b?);
    let mut nulls = vec![0u64; scans.len()];
    let mut violations: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); scans.len()];
    let mut accs = Vec::with_capacity(scans.len());
    for sc in scans {
        nulls[sc.index] = sc.nulls;
        violations[sc.index] = sc.violations;
        accs.push(sc.acc);
    }

    // Quantiles: exact from the buffer, or in extra passes for the columns that outgrew it.
    let mut quantiles: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let mut fine: BTreeMap<usize, FineHistogram> = BTreeMap::new();
    let mut big: Vec<usize> = Vec::new();
    for (i, acc) in accs.iter_mut().enumerate() {
        if let Acc::Number {
            moments, buffer, ..
        } = acc
        {
            if moments.count == 0 {
                continue;
            }
            match buffer.take() {
                Some(mut values) => {
                    values.sort_by(f64::total_cmp);
                    let n = values.len() as u64;
                    quantiles.insert(
                        i,
                        QUANTILES
                            .iter()
                            .map(|&q| interpolate(|r| values[r as usize], n, q))
                            .collect(),
                    );
                    let mut h = FineHistogram::new(moments.min, moments.max, DISPLAY_BINS);
                    values.iter().for_each(|&x| h.push(x));
                    fine.insert(i, h);
                }
                None => big.push(i),
            }
        }
    }
    if !big.is_empty() {
        let found = quantiles_in_passes(lake, manifest, handle, &big, &accs)?;
        for (i, (q, h)) in found {
            quantiles.insert(i, q);
            fine.insert(i, h);
        }
    }

    // Decile bin counts, for this profile and against the reference's deciles (drift).
    let ref_edges: BTreeMap<usize, Vec<f64>> = schema
        .fields()
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let r = reference?.column(f.name())?.numeric.as_ref()?;
            Some((i, r.deciles.clone()))
        })
        .collect();
    let own_edges: BTreeMap<usize, Vec<f64>> = quantiles
        .iter()
        .map(|(&i, q)| (i, decile_edges(q)))
        .collect();
    let (own_counts, ref_counts) = decile_pass(lake, manifest, handle, &own_edges, &ref_edges)?;

    let mut columns = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        let mut c = ColumnProfile {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
            kind: kind_of(f.data_type()).to_string(),
            count: rows - nulls[i],
            nulls: nulls[i],
            distinct: 0,
            distinct_exact: true,
            numeric: None,
            text: None,
            booleans: None,
            time_range: None,
            violations: std::mem::take(&mut violations[i]),
        };
        match &accs[i] {
            Acc::Number {
                moments, distinct, ..
            } => {
                (c.distinct, c.distinct_exact) = distinct.estimate();
                if let (Some(mean), Some(q)) = (moments.mean(), quantiles.get(&i)) {
                    c.numeric = Some(NumericStats {
                        mean,
                        std: moments.std(),
                        min: moments.min,
                        q25: q[2],
                        q50: q[5],
                        q75: q[8],
                        max: moments.max,
                        deciles: own_edges.get(&i).cloned().unwrap_or_default(),
                        decile_counts: own_counts.get(&i).cloned().unwrap_or_default(),
                        histogram: fine
                            .get(&i)
                            .map(|h| {
                                h.coarse(DISPLAY_BINS)
                                    .into_iter()
                                    .map(|(lo, hi, count)| Bin { lo, hi, count })
                                    .collect()
                            })
                            .unwrap_or_default(),
                    });
                }
            }
            Acc::Text {
                top,
                distinct,
                lengths,
            } => {
                (c.distinct, c.distinct_exact) = distinct.estimate();
                if lengths.count > 0 {
                    c.text = Some(TextStats {
                        top: top.top(TOP_VALUES),
                        top_exact: top.exact,
                        min_length: lengths.min as u64,
                        max_length: lengths.max as u64,
                        mean_length: lengths.mean().unwrap_or(0.0),
                    });
                }
            }
            Acc::Bool { t, f } => {
                c.distinct = u64::from(*t > 0) + u64::from(*f > 0);
                c.booleans = Some((*t, *f));
            }
            Acc::Time { min, max, distinct } => {
                (c.distinct, c.distinct_exact) = distinct.estimate();
                if let (Some(lo), Some(hi)) = (min, max) {
                    c.time_range =
                        Some((time_text(f.data_type(), *lo), time_text(f.data_type(), *hi)));
                }
            }
            Acc::Other => {}
        }
        columns.push(c);
    }
    let mut profile = Profile {
        layer: manifest.layer.to_string(),
        dataset: manifest.dataset.to_string(),
        version: manifest.version,
        rows,
        content_sha256: manifest.content_sha256.clone(),
        contract: contract.map(|c| c.path.clone()),
        columns,
        drift: None,
    };
    if let Some(r) = reference {
        let text_counts: BTreeMap<String, (&TopValues, u64)> = schema
            .fields()
            .iter()
            .zip(&accs)
            .filter_map(|(f, a)| match a {
                Acc::Text { top, lengths, .. } => Some((f.name().clone(), (top, lengths.count))),
                _ => None,
            })
            .collect();
        let numeric_counts: BTreeMap<String, Vec<u64>> = ref_counts
            .into_iter()
            .map(|(i, c)| (schema.field(i).name().clone(), c))
            .collect();
        let hash = |v: &str| hash64(&hasher, v);
        profile.drift = Some(drift::compare(
            &profile,
            r,
            &numeric_counts,
            &text_counts,
            &hash,
            drift_threshold,
        ));
    }
    Ok(profile)
}

fn time_text(dt: &DataType, v: i64) -> String {
    let a: Box<dyn Array> = match dt {
        DataType::Date32 => Box::new(arrow_array::Date32Array::from(vec![v as i32])),
        _ => Box::new(arrow_array::TimestampMicrosecondArray::from(vec![v]).with_timezone("UTC")),
    };
    convert::text_at(a.as_ref(), 0)
        .map(|c| c.into_owned())
        .unwrap_or_default()
}

/// Dates as days, timestamps as microseconds (UTC).
fn time_values(a: &dyn Array) -> Vec<Option<i64>> {
    use arrow_array::types::{
        TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
        TimestampSecondType,
    };
    use arrow_schema::TimeUnit;
    match a.data_type() {
        DataType::Date32 => a
            .as_primitive::<Date32Type>()
            .iter()
            .map(|v| v.map(i64::from))
            .collect(),
        DataType::Timestamp(TimeUnit::Second, _) => a
            .as_primitive::<TimestampSecondType>()
            .iter()
            .map(|v| v.map(|x| x * 1_000_000))
            .collect(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => a
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .map(|v| v.map(|x| x * 1_000))
            .collect(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => a
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .collect(),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => a
            .as_primitive::<TimestampNanosecondType>()
            .iter()
            .map(|v| v.map(|x| x / 1_000))
            .collect(),
        _ => Vec::new(),
    }
}

/// First-pass state of one column.
struct ColumnScan {
    index: usize,
    acc: Acc,
    nulls: u64,
    violations: BTreeMap<String, u64>,
}

/// Splits the columns into two groups of about equal work (text costs most).
fn split_by_cost(scans: &mut [ColumnScan]) -> (Vec<&mut ColumnScan>, Vec<&mut ColumnScan>) {
    let cost = |a: &Acc| match a {
        Acc::Text { .. } => 4,
        Acc::Number { .. } | Acc::Time { .. } => 2,
        Acc::Bool { .. } | Acc::Other => 1,
    };
    let mut order: Vec<&mut ColumnScan> = scans.iter_mut().collect();
    order.sort_by_key(|s| std::cmp::Reverse(cost(&s.acc)));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let (mut load_a, mut load_b) = (0, 0);
    for s in order {
        if load_a <= load_b {
            load_a += cost(&s.acc);
            a.push(s);
        } else {
            load_b += cost(&s.acc);
            b.push(s);
        }
    }
    a.sort_by_key(|s| s.index);
    b.sort_by_key(|s| s.index);
    (a, b)
}

/// Reads the group's columns once and feeds every accumulator; returns the row count.
#[allow(clippy::too_many_arguments)]
fn scan_columns(
    lake: &StoreLocation,
    manifest: &Manifest,
    handle: &Handle,
    group: &mut [&mut ColumnScan],
    contract: Option<&Contract>,
    schema: &Schema,
    hasher: &ahash::RandomState,
    buffer_cap: usize,
) -> Result<u64> {
    if group.is_empty() {
        return Ok(0);
    }
    let columns: Vec<usize> = group.iter().map(|s| s.index).collect();
    let rules: Vec<Option<&crate::contract::ColumnRule>> = group
        .iter()
        .map(|s| contract.and_then(|c| c.column(schema.field(s.index).name())))
        .collect();
    let mut reader = VersionReader::new(lake.clone(), manifest.clone(), handle.clone(), BATCH_ROWS)
        .with_columns(columns);
    let mut rows = 0u64;
    while let Some(batch) = reader.next_batch()? {
        rows += batch.num_rows() as u64;
        for (k, scan) in group.iter_mut().enumerate() {
            let col = batch.column(k);
            scan.nulls += col.null_count() as u64;
            column_pass(col.as_ref(), &mut scan.acc, hasher, buffer_cap);
            if let Some(rule) = rules[k] {
                let mut rejections = Vec::new();
                convert::convert(rule, Some(col.as_ref()), batch.num_rows(), &mut rejections);
                for r in rejections {
                    *scan.violations.entry(r.rule.to_string()).or_default() += 1;
                }
            }
        }
    }
    Ok(rows)
}

fn column_pass(col: &dyn Array, acc: &mut Acc, hasher: &ahash::RandomState, buffer_cap: usize) {
    {
        match acc {
            Acc::Number {
                moments,
                distinct,
                buffer,
            } => numbers(col, |x| {
                moments.push(x);
                // -0.0 and 0.0 are one value.
                distinct.push(hash64(
                    hasher,
                    &(if x == 0.0 { 0.0f64 } else { x }).to_bits(),
                ));
                if let Some(b) = buffer {
                    if b.len() < buffer_cap {
                        b.push(x);
                    } else {
                        *buffer = None;
                    }
                }
            }),
            Acc::Text {
                top,
                distinct,
                lengths,
            } => {
                for j in 0..col.len() {
                    if let Some(v) = convert::text_at(col, j) {
                        let h = hash64(hasher, v.as_ref());
                        top.push(h, &v);
                        distinct.push(h);
                        let chars = if v.is_ascii() {
                            v.len()
                        } else {
                            v.chars().count()
                        };
                        lengths.push(chars as f64);
                    }
                }
            }
            Acc::Bool { t, f } => {
                let b = col.as_boolean();
                for j in 0..b.len() {
                    if b.is_valid(j) {
                        if b.value(j) { *t += 1 } else { *f += 1 }
                    }
                }
            }
            Acc::Time { min, max, distinct } => {
                for v in time_values(col).into_iter().flatten() {
                    *min = Some(min.map_or(v, |m| m.min(v)));
                    *max = Some(max.map_or(v, |m| m.max(v)));
                    distinct.push(hash64(hasher, &v));
                }
            }
            Acc::Other => {}
        }
    }
}

/// Deciles (9 edges) from the 11 quantiles computed.
fn decile_edges(q: &[f64]) -> Vec<f64> {
    [0, 1, 3, 4, 5, 6, 7, 9, 10]
        .iter()
        .filter_map(|&k| q.get(k).copied())
        .collect()
}

fn decile_bin(edges: &[f64], x: f64) -> usize {
    edges.partition_point(|&e| e < x)
}

/// One pass over the numeric columns: counts per own decile bin and per reference decile bin.
#[allow(clippy::type_complexity)]
fn decile_pass(
    lake: &StoreLocation,
    manifest: &Manifest,
    handle: &Handle,
    own: &BTreeMap<usize, Vec<f64>>,
    reference: &BTreeMap<usize, Vec<f64>>,
) -> Result<(BTreeMap<usize, Vec<u64>>, BTreeMap<usize, Vec<u64>>)> {
    let mut cols: Vec<usize> = own.keys().chain(reference.keys()).copied().collect();
    cols.sort_unstable();
    cols.dedup();
    let mut own_counts: BTreeMap<usize, Vec<u64>> = own
        .iter()
        .map(|(&i, e)| (i, vec![0; e.len() + 1]))
        .collect();
    let mut ref_counts: BTreeMap<usize, Vec<u64>> = reference
        .iter()
        .map(|(&i, e)| (i, vec![0; e.len() + 1]))
        .collect();
    if cols.is_empty() {
        return Ok((own_counts, ref_counts));
    }
    let mut reader = VersionReader::new(lake.clone(), manifest.clone(), handle.clone(), BATCH_ROWS)
        .with_columns(cols.clone());
    while let Some(batch) = reader.next_batch()? {
        for (k, &i) in cols.iter().enumerate() {
            let col = batch.column(k);
            numbers(col.as_ref(), |x| {
                if let (Some(e), Some(c)) = (own.get(&i), own_counts.get_mut(&i)) {
                    c[decile_bin(e, x)] += 1;
                }
                if let (Some(e), Some(c)) = (reference.get(&i), ref_counts.get_mut(&i)) {
                    c[decile_bin(e, x)] += 1;
                }
            });
        }
    }
    Ok((own_counts, ref_counts))
}

/// Exact quantiles for columns too large to buffer: a fine-histogram pass locates the bin of
/// each needed rank; bins whose values are all equal answer at once; the others are collected in
/// one more pass (split again first if a bin alone would hold more than [`COLLECT_CAP`] values).
#[allow(clippy::type_complexity)]
fn quantiles_in_passes(
    lake: &StoreLocation,
    manifest: &Manifest,
    handle: &Handle,
    cols: &[usize],
    accs: &[Acc],
) -> Result<BTreeMap<usize, (Vec<f64>, FineHistogram)>> {
    let read = |projection: &[usize], f: &mut dyn FnMut(usize, f64)| -> Result<()> {
        let mut reader =
            VersionReader::new(lake.clone(), manifest.clone(), handle.clone(), BATCH_ROWS)
                .with_columns(projection.to_vec());
        while let Some(batch) = reader.next_batch()? {
            for (k, &i) in projection.iter().enumerate() {
                numbers(batch.column(k).as_ref(), |x| f(i, x));
            }
        }
        Ok(())
    };
    // Pass: fine histograms over [min, max].
    let mut hist: BTreeMap<usize, FineHistogram> = cols
        .iter()
        .filter_map(|&i| match &accs[i] {
            Acc::Number { moments, .. } => {
                Some((i, FineHistogram::new(moments.min, moments.max, FINE_BINS)))
            }
            _ => None,
        })
        .collect();
    read(cols, &mut |i, x| {
        if let Some(h) = hist.get_mut(&i) {
            h.push(x)
        }
    })?;
    // Per column: values found per rank, and the ranks still open as
    // (column, rank, the value range that holds it, how many values it holds).
    let mut values_at: BTreeMap<usize, BTreeMap<u64, f64>> = BTreeMap::new();
    let mut open: Vec<(usize, u64, f64, f64, u64)> = Vec::new();
    for (&i, h) in &hist {
        let n: u64 = h.counts.iter().sum();
        let found = values_at.entry(i).or_default();
        for &q in &QUANTILES {
            for r in ranks_for(n, q) {
                if found.contains_key(&r) || open.iter().any(|o| o.0 == i && o.1 == r) {
                    continue;
                }
                if let Some((b, _)) = h.locate(r) {
                    if h.mins[b] == h.maxs[b] {
                        found.insert(r, h.mins[b]);
                    } else {
                        open.push((i, r, h.mins[b], h.maxs[b], h.counts[b]));
                    }
                }
            }
        }
    }
    // Narrow the open ranges of every column in one read per round, collect and sort the small ones.
    for _ in 0..4 {
        if open.is_empty() {
            break;
        }
        let projection: Vec<usize> = {
            let mut p: Vec<usize> = open.iter().map(|o| o.0).collect();
            p.sort_unstable();
            p.dedup();
            p
        };
        let mut below: Vec<u64> = vec![0; open.len()];
        let mut inside: Vec<Vec<f64>> = vec![Vec::new(); open.len()];
        let mut sub: Vec<FineHistogram> = open
            .iter()
            .map(|&(_, _, lo, hi, size)| {
                FineHistogram::new(lo, hi, if size <= COLLECT_CAP { 1 } else { FINE_BINS })
            })
            .collect();
        read(&projection, &mut |i, x| {
            for (k, &(c, _, lo, hi, size)) in open.iter().enumerate() {
                if c != i {
                    continue;
                }
                if x < lo {
                    below[k] += 1;
                } else if x <= hi {
                    if size <= COLLECT_CAP {
                        inside[k].push(x);
                    } else {
                        sub[k].push(x);
                    }
                }
            }
        })?;
        let mut still = Vec::new();
        for (k, &(i, r, _, _, size)) in open.iter().enumerate() {
            let local = r - below[k];
            let found = values_at.entry(i).or_default();
            if size <= COLLECT_CAP {
                let v = &mut inside[k];
                v.sort_by(f64::total_cmp);
                if let Some(&x) = v.get(local as usize) {
                    found.insert(r, x);
                }
            } else if let Some((b, _)) = sub[k].locate(local) {
                if sub[k].mins[b] == sub[k].maxs[b] {
                    found.insert(r, sub[k].mins[b]);
                } else {
                    still.push((i, r, sub[k].mins[b], sub[k].maxs[b], sub[k].counts[b]));
                }
            }
        }
        open = still;
    }
    let mut out = BTreeMap::new();
    for (i, h) in hist {
        let n: u64 = h.counts.iter().sum();
        let found = values_at.remove(&i).unwrap_or_default();
        let q: Vec<f64> = QUANTILES
            .iter()
            .map(|&q| interpolate(|r| found.get(&r).copied().unwrap_or(f64::NAN), n, q))
            .collect();
        out.insert(i, (q, h));
    }
    Ok(out)
}

/// One profile run.
pub struct ProfileRequest {
    pub layer: Layer,
    pub dataset: DatasetName,
    /// `None`: the latest version.
    pub version: Option<u64>,
    /// Re-check this contract's rules.
    pub contract: Option<Contract>,
    /// Drift reference; `None`: the previous version of the same dataset, if any.
    pub against: Option<(Layer, DatasetName, u64)>,
    pub drift_threshold: f64,
}

/// What a profile run produced.
#[derive(Debug, Clone)]
pub struct ProfileOutcome {
    pub profile: Profile,
    pub json: String,
    pub html: String,
    /// URL of the folder holding profile.json and report.html in the lake.
    pub uri: String,
}

/// Profiles a version, compares it with its reference, and stores `profile.json` and
/// `report.html` under `profiles/<layer>/<dataset>/v<N>/`.
pub async fn profile(registry: &Registry, req: ProfileRequest) -> Result<ProfileOutcome> {
    let version = match req.version {
        Some(v) => v,
        None => registry
            .latest(req.layer, &req.dataset)
            .await?
            .ok_or_else(|| medallion_lake::Error::VersionNotFound {
                what: req.layer.as_str(),
                dataset: req.dataset.to_string(),
                version: 0,
                lake: registry.lake().url().to_string(),
            })?,
    };
    let manifest = registry.manifest(req.layer, &req.dataset, version).await?;
    let reference = match &req.against {
        Some((layer, dataset, v)) => Some(registry.manifest(*layer, dataset, *v).await?),
        None => {
            let earlier = registry
                .versions(req.layer, &req.dataset)
                .await?
                .into_iter()
                .filter(|&v| v < version)
                .max();
            match earlier {
                Some(v) => Some(registry.manifest(req.layer, &req.dataset, v).await?),
                None => None,
            }
        }
    };
    let reference_profile = match &reference {
        Some(m) => Some(stored_or_computed(registry, m).await?),
        None => None,
    };
    let (lake, handle) = (registry.lake().clone(), Handle::current());
    let (m, contract, threshold) = (manifest.clone(), req.contract.clone(), req.drift_threshold);
    let profile = tokio::task::spawn_blocking(move || {
        profile_version(
            &lake,
            &m,
            &handle,
            contract.as_ref(),
            reference_profile.as_ref(),
            threshold,
        )
    })
    .await
    .map_err(|e| medallion_lake::Error::internal("profile", e))??;
    let (json, html) = store(registry, &manifest, &profile).await?;
    Ok(ProfileOutcome {
        uri: registry
            .lake()
            .url_of(&registry.lake().path(&layout::profile_dir(
                manifest.layer,
                &manifest.dataset,
                manifest.version,
            ))),
        profile,
        json,
        html,
    })
}

/// The stored profile of a version if it matches the version's content, else a fresh one (stored).
async fn stored_or_computed(registry: &Registry, manifest: &Manifest) -> Result<Profile> {
    let path = registry.lake().path(&format!(
        "{}/profile.json",
        layout::profile_dir(manifest.layer, &manifest.dataset, manifest.version)
    ));
    if let Ok(r) = registry.lake().store().get(&path).await
        && let Ok(bytes) = r.bytes().await
        && let Ok(p) = serde_json::from_slice::<Profile>(&bytes)
        && p.content_sha256 == manifest.content_sha256
    {
        return Ok(p);
    }
    let (lake, handle, m) = (registry.lake().clone(), Handle::current(), manifest.clone());
    let p =
        tokio::task::spawn_blocking(move || profile_version(&lake, &m, &handle, None, None, 0.2))
            .await
            .map_err(|e| medallion_lake::Error::internal("profile", e))??;
    store(registry, manifest, &p).await?;
    Ok(p)
}

/// Writes profile.json and report.html next to each other; returns both texts.
async fn store(registry: &Registry, manifest: &Manifest, p: &Profile) -> Result<(String, String)> {
    let json = serde_json::to_string_pretty(p)
        .map_err(|e| medallion_lake::Error::internal("profile json", e))?;
    let html = report::render(p);
    let dir = layout::profile_dir(manifest.layer, &manifest.dataset, manifest.version);
    for (name, body) in [("profile.json", &json), ("report.html", &html)] {
        let path = registry.lake().path(&format!("{dir}/{name}"));
        registry
            .lake()
            .store()
            .put(
                &path,
                PutPayload::from(Bytes::from(body.clone().into_bytes())),
            )
            .await
            .map_err(|e| {
                medallion_lake::Error::store("write profile", registry.lake().url_of(&path), e)
            })?;
    }
    Ok((json, html))
}

/// The columns drift is computed on: not lineage columns.
pub fn drift_candidate(name: &str) -> bool {
    !lineage::is_lineage_column(name)
}
