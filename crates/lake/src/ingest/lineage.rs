//! Lineage columns appended to every bronze row: where it came from and when.
//!
//! A local file's identity is its SHA-256, which is only known once the whole file has been read.
//! Rather than reading the file twice in a row, the digest is computed on its own thread while the
//! file is converted, and the `_source_sha256` column is *deferred*: the writer fills it in when it
//! closes each row group (see [`Deferred`]).

use std::sync::{Arc, OnceLock};

use arrow_array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, TimeUnit};
use chrono::{DateTime, Utc};

pub const SOURCE_URL: &str = "_source_url";
pub const SOURCE_ETAG: &str = "_source_etag";
pub const SOURCE_SHA256: &str = "_source_sha256";
pub const INGESTED_AT: &str = "_ingested_at";
pub const ROW_NUMBER: &str = "_row_number";

/// Whether a source column name would clash with a lineage column.
pub fn is_lineage_column(name: &str) -> bool {
    [
        SOURCE_URL,
        SOURCE_ETAG,
        SOURCE_SHA256,
        INGESTED_AT,
        ROW_NUMBER,
    ]
    .contains(&name)
}

/// A text value computed elsewhere, waited for when first needed. An error is kept as its
/// message and reported by whoever waits.
#[derive(Clone, Debug, Default)]
pub struct Deferred(Arc<OnceLock<Result<String, String>>>);

impl Deferred {
    pub fn resolved(value: String) -> Deferred {
        let d = Deferred::default();
        d.set(Ok(value));
        d
    }

    pub fn set(&self, value: Result<String, String>) {
        let _ = self.0.set(value);
    }

    pub fn is_set(&self) -> bool {
        self.0.get().is_some()
    }

    /// Blocks until the value is set.
    pub fn wait(&self) -> Result<&str, &str> {
        match self.0.wait() {
            Ok(v) => Ok(v),
            Err(e) => Err(e),
        }
    }
}

/// How the source's identity appears in the rows.
#[derive(Debug, Clone)]
pub enum SourceId {
    /// A blob's ETag, known before reading.
    Etag(String),
    /// A local file's SHA-256, known after reading (filled in by the writer).
    Sha256(Deferred),
}

/// The constant lineage values of one import.
#[derive(Debug, Clone)]
pub struct Lineage {
    url: String,
    id: SourceId,
    ingested_at_us: i64,
}

impl Lineage {
    pub fn new(url: &str, id: SourceId, ingested_at: DateTime<Utc>) -> Lineage {
        Lineage {
            url: url.to_string(),
            id,
            ingested_at_us: ingested_at.timestamp_micros(),
        }
    }

    fn id_column(&self) -> &'static str {
        match self.id {
            SourceId::Etag(_) => SOURCE_ETAG,
            SourceId::Sha256(_) => SOURCE_SHA256,
        }
    }

    /// Lineage columns that hold one value per import.
    pub fn constant_columns(&self) -> [&'static str; 3] {
        [SOURCE_URL, self.id_column(), INGESTED_AT]
    }

    /// Every lineage field, in order.
    pub fn fields(&self) -> Vec<Field> {
        vec![
            Field::new(SOURCE_URL, DataType::Utf8, false),
            Field::new(self.id_column(), DataType::Utf8, false),
            Field::new(
                INGESTED_AT,
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new(ROW_NUMBER, DataType::Int64, false),
        ]
    }

    /// The lineage column the writer fills in later, if any: (name, value).
    pub fn deferred(&self) -> Option<(&'static str, Deferred)> {
        match &self.id {
            SourceId::Sha256(d) => Some((SOURCE_SHA256, d.clone())),
            SourceId::Etag(_) => None,
        }
    }

    /// The lineage columns known now for a chunk of `row_numbers.len()` rows (all of
    /// [`Self::fields`] but the deferred one).
    pub fn columns(&self, row_numbers: &Int64Array) -> Vec<ArrayRef> {
        let n = row_numbers.len();
        let mut out: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
            std::iter::repeat_n(self.url.as_str(), n),
        ))];
        if let SourceId::Etag(etag) = &self.id {
            out.push(Arc::new(StringArray::from_iter_values(
                std::iter::repeat_n(etag.as_str(), n),
            )));
        }
        out.push(Arc::new(
            TimestampMicrosecondArray::from_value(self.ingested_at_us, n).with_timezone("UTC"),
        ));
        out.push(Arc::new(row_numbers.clone()));
        out
    }
}
