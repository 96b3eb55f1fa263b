//! Lineage columns appended to every bronze row: where it came from and when.

use std::sync::Arc;

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

/// The constant lineage values of one import.
#[derive(Debug, Clone)]
pub struct Lineage {
    url: String,
    /// `_source_etag` or `_source_sha256`.
    id_column: &'static str,
    id_value: String,
    ingested_at_us: i64,
}

impl Lineage {
    pub fn new(
        url: &str,
        etag: Option<&str>,
        sha256: Option<&str>,
        ingested_at: DateTime<Utc>,
    ) -> Lineage {
        let (id_column, id_value) = match (etag, sha256) {
            (Some(e), _) => (SOURCE_ETAG, e.to_string()),
            (None, Some(s)) => (SOURCE_SHA256, s.to_string()),
            (None, None) => (SOURCE_SHA256, String::new()),
        };
        Lineage {
            url: url.to_string(),
            id_column,
            id_value,
            ingested_at_us: ingested_at.timestamp_micros(),
        }
    }

    pub fn fields(&self) -> Vec<Field> {
        vec![
            Field::new(SOURCE_URL, DataType::Utf8, false),
            Field::new(self.id_column, DataType::Utf8, false),
            Field::new(
                INGESTED_AT,
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new(ROW_NUMBER, DataType::Int64, false),
        ]
    }

    /// The lineage columns for a chunk of `row_numbers.len()` rows.
    pub fn columns(&self, row_numbers: &Int64Array) -> Vec<ArrayRef> {
        let n = row_numbers.len();
        vec![
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                self.url.as_str(),
                n,
            ))),
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                self.id_value.as_str(),
                n,
            ))),
            Arc::new(
                TimestampMicrosecondArray::from_value(self.ingested_at_us, n).with_timezone("UTC"),
            ),
            Arc::new(row_numbers.clone()),
        ]
    }
}
