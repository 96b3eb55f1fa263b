//! Request capture: a sampled fraction of inference rows (inputs and outputs) appended to the
//! lake as Parquet batches, `inference/<endpoint>/date=<YYYY-MM-DD>/part-<HHMMSS>-<id>.parquet`,
//! with the input columns typed as in training so the rows can be profiled against the
//! training data. Inference never waits for the lake: a full queue drops rows (counted).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, Date32Array, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use bytes::Bytes;
use medallion_lake::StoreLocation;
use medallion_model::ModelFile;
use medallion_model::frame::{ColumnData, Frame, ValueKind};
use object_store::{ObjectStoreExt, PutPayload};
use tokio::sync::mpsc;

use crate::metrics::Metrics;

/// Rows of one sampled request.
pub struct Sample {
    pub frame: Frame,
    pub outputs: Vec<f64>,
    pub at: chrono::DateTime<chrono::Utc>,
}

pub struct CaptureConfig {
    pub lake: StoreLocation,
    pub endpoint: String,
    pub version: String,
    pub batch_rows: usize,
    pub flush_every: Duration,
}

/// Accumulates samples and writes a batch when `batch_rows` are buffered, every
/// `flush_every`, and once more when the channel closes (shutdown).
pub async fn run(
    mut rx: mpsc::Receiver<Sample>,
    model: Arc<ModelFile>,
    cfg: CaptureConfig,
    metrics: Arc<Metrics>,
) {
    let mut buffer: Vec<Sample> = Vec::new();
    let mut rows = 0usize;
    let mut tick = tokio::time::interval(cfg.flush_every);
    tick.tick().await;
    loop {
        tokio::select! {
            sample = rx.recv() => match sample {
                Some(s) => {
                    rows += s.frame.rows;
                    buffer.push(s);
                    if rows >= cfg.batch_rows {
                        flush(&mut buffer, &model, &cfg, &metrics).await;
                        rows = 0;
                    }
                }
                None => {
                    flush(&mut buffer, &model, &cfg, &metrics).await;
                    return;
                }
            },
            _ = tick.tick() => {
                flush(&mut buffer, &model, &cfg, &metrics).await;
                rows = 0;
            }
        }
    }
}

async fn flush(
    buffer: &mut Vec<Sample>,
    model: &ModelFile,
    cfg: &CaptureConfig,
    metrics: &Metrics,
) {
    if buffer.is_empty() {
        return;
    }
    let samples = std::mem::take(buffer);
    let n: usize = samples.iter().map(|s| s.frame.rows).sum();
    let at = samples[0].at;
    let rel = format!(
        "inference/{}/date={}/part-{}-{}.parquet",
        cfg.endpoint,
        at.format("%Y-%m-%d"),
        at.format("%H%M%S"),
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let result = match encode(&samples, model, &cfg.version) {
        Ok(bytes) => {
            let path = cfg.lake.path(&rel);
            cfg.lake
                .store()
                .put(&path, PutPayload::from(Bytes::from(bytes)))
                .await
                .map_err(|e| {
                    medallion_lake::Error::store("write capture", cfg.lake.url_of(&path), e)
                        .to_string()
                })
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            metrics.captured_rows.fetch_add(n as u64, Ordering::Relaxed);
            tracing::info!(rows = n, file = %rel, "captured inference rows");
        }
        Err(e) => {
            metrics.capture_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(rows = n, "request capture not written: {e}");
        }
    }
}

fn encode(samples: &[Sample], model: &ModelFile, version: &str) -> Result<Vec<u8>, String> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for input in &model.encoder.inputs {
        let cols = samples.iter().filter_map(|s| s.frame.column(&input.name));
        let (dt, array): (DataType, ArrayRef) = match input.kind {
            ValueKind::Text => {
                let mut b = StringBuilder::new();
                for c in cols {
                    if let ColumnData::Text(v) = &c.data {
                        v.iter().for_each(|x| b.append_option(x.as_deref()));
                    }
                }
                (DataType::Utf8, Arc::new(b.finish()))
            }
            ValueKind::Boolean => {
                let mut b = BooleanBuilder::new();
                for c in cols {
                    if let ColumnData::Number(v) = &c.data {
                        v.iter().for_each(|x| b.append_value(*x != 0.0));
                    }
                }
                (DataType::Boolean, Arc::new(b.finish()))
            }
            ValueKind::Date => {
                let v: Vec<i32> = cols
                    .filter_map(|c| c.numbers())
                    .flat_map(|v| v.iter().map(|d| d.floor() as i32))
                    .collect();
                (DataType::Date32, Arc::new(Date32Array::from(v)))
            }
            ValueKind::Timestamp => {
                let v: Vec<i64> = cols
                    .filter_map(|c| c.numbers())
                    .flat_map(|v| v.iter().map(|d| (d * 86_400e6) as i64))
                    .collect();
                let dt = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
                (
                    dt,
                    Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC")),
                )
            }
            ValueKind::Number => {
                let mut b = Float64Builder::new();
                for c in cols {
                    if let ColumnData::Number(v) = &c.data {
                        b.append_slice(v);
                    }
                }
                (DataType::Float64, Arc::new(b.finish()))
            }
        };
        fields.push(Field::new(&input.name, dt, true));
        arrays.push(array);
    }
    if model.output.datatype == "INT64" {
        let mut b = Int64Builder::new();
        samples
            .iter()
            .for_each(|s| s.outputs.iter().for_each(|x| b.append_value(*x as i64)));
        fields.push(Field::new(&model.output.name, DataType::Int64, false));
        arrays.push(Arc::new(b.finish()));
    } else {
        let mut b = Float64Builder::new();
        samples.iter().for_each(|s| b.append_slice(&s.outputs));
        fields.push(Field::new(&model.output.name, DataType::Float64, false));
        arrays.push(Arc::new(b.finish()));
    }
    let at: Vec<i64> = samples
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.at.timestamp_micros(), s.frame.rows))
        .collect();
    fields.push(Field::new(
        "_captured_at",
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        false,
    ));
    arrays.push(Arc::new(
        TimestampMicrosecondArray::from(at).with_timezone("UTC"),
    ));
    let mut versions = StringBuilder::new();
    samples
        .iter()
        .for_each(|s| (0..s.frame.rows).for_each(|_| versions.append_value(version)));
    fields.push(Field::new("_model_version", DataType::Utf8, false));
    arrays.push(Arc::new(versions.finish()));
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None)
        .map_err(|e| e.to_string())?;
    w.write(&batch).map_err(|e| e.to_string())?;
    w.close().map_err(|e| e.to_string())?;
    Ok(out)
}
