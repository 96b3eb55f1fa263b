//! A Snowflake query streamed into bronze: the statement runs once through the SQL API v2, then
//! its result set is read partition by partition (the first arrives with the answer, the others
//! by `GET …?partition=n`, gzip-compressed), each partition decoded into Arrow columns
//! ([`crate::sf_values`]) and handed to the lake's writer before the next is fetched, so memory
//! stays at about one partition whatever the result's size.
//!
//! The statement is submitted with a request id derived from the import's identity and
//! `retry=true`: a retried step gets the first run's result instead of running the query again.
//! Every partition's row count is checked against `partitionInfo`, and the total against
//! `numRows`, so a short read fails the import instead of committing fewer rows.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use arrow_schema::Field;
use medallion_lake::ingest::batch::Chunk;
use medallion_lake::ingest::rows::RowSource;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use crate::error::{Error, Result};
use crate::record::SnowflakeSpec;
use crate::sf_values::{RowType, SfBuilder, SfKind};
use crate::snowflake::SqlApi;

/// How long the import's statement may run in Snowflake.
const QUERY_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FirstAnswer {
    statement_handle: String,
    result_set_meta_data: Option<ResultMeta>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultMeta {
    #[serde(default)]
    num_rows: Option<u64>,
    row_type: Vec<RowType>,
    #[serde(default)]
    partition_info: Vec<PartitionInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartitionInfo {
    row_count: u64,
}

/// The rows of one partition; cells borrow from the body where JSON escapes allow.
#[derive(Deserialize)]
struct PartitionRows<'a> {
    #[serde(borrow)]
    data: Vec<Vec<Cell<'a>>>,
}

/// One cell: SQL NULL, or the text Snowflake sent.
struct Cell<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Cell<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Cell<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or null")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Cell<'de>, E> {
                Ok(Cell(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Cell<'de>, E> {
                Ok(Cell(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_string<E>(self, v: String) -> std::result::Result<Cell<'de>, E> {
                Ok(Cell(Some(Cow::Owned(v))))
            }
            fn visit_unit<E>(self) -> std::result::Result<Cell<'de>, E> {
                Ok(Cell(None))
            }
            fn visit_none<E>(self) -> std::result::Result<Cell<'de>, E> {
                Ok(Cell(None))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// The rows of a statement that ran.
pub struct SfQuery {
    api: SqlApi,
    handle: Handle,
    statement: String,
    kinds: Vec<SfKind>,
    fields: Vec<Field>,
    /// Row count of each partition, as `partitionInfo` reports.
    partition_rows: Vec<u64>,
    expected_rows: Option<u64>,
    next_partition: usize,
    first: Option<Vec<u8>>,
    next_row: i64,
    url: String,
    details: BTreeMap<String, Value>,
}

/// The credential-free URL that names a query over a connection: the lineage's source URL.
pub fn query_url(name: &str, spec: &SnowflakeSpec, query: &str) -> String {
    let digest = hex::encode(Sha256::digest(query.trim().trim_end_matches(';').trim()));
    format!(
        "snowflake://{}/{}?connection={name}&query-sha256={}",
        spec.account.trim().to_ascii_lowercase(),
        spec.database.as_deref().unwrap_or(""),
        &digest[..16]
    )
}

/// A request id (UUID form) that is the same for the same import identity.
pub fn request_id(identity: &str) -> String {
    let h = hex::encode(Sha256::digest(identity));
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// Only a query reads: its first word is SELECT or WITH (comments and parentheses skipped).
/// The role the connection uses should still be one that can only read.
fn check_read_only(query: &str) -> Result<()> {
    let mut rest = query.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("--") {
            rest = r
                .split_once('\n')
                .map_or("", |(_, after)| after)
                .trim_start();
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r
                .split_once("*/")
                .map_or("", |(_, after)| after)
                .trim_start();
        } else if let Some(r) = rest.strip_prefix('(') {
            rest = r.trim_start();
        } else {
            break;
        }
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    if word == "SELECT" || word == "WITH" {
        return Ok(());
    }
    Err(Error::invalid(
        "--query",
        format!(
            "starts with {}; import runs one SELECT (or WITH … SELECT) statement",
            if word.is_empty() {
                "no keyword".to_string()
            } else {
                word
            }
        ),
    ))
}

impl SfQuery {
    /// Runs `query` (once per `request_id`) and reads its result set's description.
    pub async fn open(
        name: &str,
        spec: &SnowflakeSpec,
        query: &str,
        url: &str,
        request_id: &str,
        handle: Handle,
    ) -> Result<SfQuery> {
        let query = query.trim().trim_end_matches(';').trim();
        if query.is_empty() {
            return Err(Error::invalid(
                "--query",
                "is empty; pass one SELECT statement",
            ));
        }
        check_read_only(query)?;
        let api = SqlApi::new(name, spec)?;
        let bytes = api.execute(query, Some(request_id), QUERY_TIMEOUT).await?;
        let refused = |message: String| Error::Refused {
            connection: name.to_string(),
            kind: "snowflake",
            message,
        };
        let first: FirstAnswer = serde_json::from_slice(&bytes)
            .map_err(|e| refused(format!("the result set is not what the SQL API sends: {e}")))?;
        let Some(meta) = first.result_set_meta_data else {
            return Err(refused(
                "the statement returned no result set; import runs one SELECT".into(),
            ));
        };
        let mut kinds = Vec::new();
        let mut fields = Vec::new();
        let mut unsupported = Vec::new();
        let mut columns = Vec::new();
        for c in &meta.row_type {
            match SfKind::of(c) {
                Ok(k) => {
                    kinds.push(k);
                    fields.push(k.field(c));
                    columns.push(json!({"name": c.name, "snowflake_type": c.kind, "arrow_type": k.data_type().to_string()}));
                }
                Err(why) => unsupported.push(format!("{}: {why}", c.name)),
            }
        }
        if !unsupported.is_empty() {
            return Err(refused(format!(
                "the query returns columns import cannot map: {}",
                unsupported.join("; ")
            )));
        }
        if fields.is_empty() {
            return Err(Error::invalid("--query", "returns no columns"));
        }
        let partition_rows: Vec<u64> = meta.partition_info.iter().map(|p| p.row_count).collect();
        let mut details = BTreeMap::new();
        details.insert("connection".to_string(), json!(name));
        details.insert("connection_kind".to_string(), json!("snowflake"));
        details.insert("query".to_string(), json!(query));
        details.insert("columns".to_string(), json!(columns));
        details.insert(
            "statement_handle".to_string(),
            json!(first.statement_handle),
        );
        details.insert("partitions".to_string(), json!(partition_rows.len().max(1)));
        Ok(SfQuery {
            api,
            handle,
            statement: first.statement_handle,
            kinds,
            fields,
            partition_rows,
            expected_rows: meta.num_rows,
            next_partition: 0,
            first: Some(bytes),
            next_row: 1,
            url: url.to_string(),
            details,
        })
    }

    fn fail(&self, class: medallion_lake::ErrorClass, message: String) -> medallion_lake::Error {
        medallion_lake::Error::SourceQuery {
            url: self.url.clone(),
            class,
            message,
        }
    }

    /// All partitions read: the rows decoded must be the rows Snowflake reported.
    fn check_total(&self) -> medallion_lake::Result<()> {
        let read = (self.next_row - 1) as u64;
        match self.expected_rows {
            Some(n) if n != read => Err(self.fail(
                medallion_lake::ErrorClass::Transient,
                format!(
                    "statement {} reported {n} rows but its partitions held {read}",
                    self.statement
                ),
            )),
            _ => Ok(()),
        }
    }
}

impl RowSource for SfQuery {
    fn fields(&self) -> Vec<Field> {
        self.fields.clone()
    }

    fn next_chunk(
        &mut self,
        _max_rows: usize,
        _max_bytes: usize,
    ) -> medallion_lake::Result<Option<Chunk>> {
        let partitions = self.partition_rows.len().max(1);
        if self.next_partition >= partitions {
            self.check_total()?;
            return Ok(None);
        }
        let n = self.next_partition;
        let bytes = match self.first.take() {
            Some(b) => b,
            None => self
                .handle
                .block_on(self.api.partition(&self.statement, n))
                .map_err(|e| e.into_lake(&self.url))?,
        };
        self.next_partition += 1;
        let rows: PartitionRows = serde_json::from_slice(&bytes).map_err(|e| {
            self.fail(
                medallion_lake::ErrorClass::Transient,
                format!("partition {n} is not a jsonv2 result: {e}"),
            )
        })?;
        if let Some(expected) = self.partition_rows.get(n)
            && *expected != rows.data.len() as u64
        {
            return Err(self.fail(
                medallion_lake::ErrorClass::Transient,
                format!(
                    "partition {n} holds {} rows, partitionInfo says {expected}",
                    rows.data.len()
                ),
            ));
        }
        let mut builders: Vec<SfBuilder> = self
            .kinds
            .iter()
            .map(|k| SfBuilder::new(*k, rows.data.len()))
            .collect();
        for (r, row) in rows.data.iter().enumerate() {
            if row.len() != builders.len() {
                return Err(self.fail(
                    medallion_lake::ErrorClass::BadInput,
                    format!(
                        "row {} has {} values for {} columns",
                        self.next_row + r as i64,
                        row.len(),
                        builders.len()
                    ),
                ));
            }
            for (i, (b, cell)) in builders.iter_mut().zip(row).enumerate() {
                b.push(cell.0.as_deref()).map_err(|message| {
                    self.fail(
                        medallion_lake::ErrorClass::BadInput,
                        format!(
                            "row {} column {}: {message}",
                            self.next_row + r as i64,
                            self.fields[i].name()
                        ),
                    )
                })?;
            }
        }
        let count = rows.data.len();
        drop(rows);
        let columns = builders.into_iter().map(SfBuilder::finish).collect();
        Ok(Some(Chunk::consecutive(columns, count, &mut self.next_row)))
    }

    fn details(&self) -> BTreeMap<String, Value> {
        self.details.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reading_statements_pass() {
        assert!(check_read_only("select 1").is_ok());
        assert!(
            check_read_only(
                "  -- the nightly orders\n/* x */ (WITH a AS (SELECT 1) SELECT * FROM a)"
            )
            .is_ok()
        );
        let err = check_read_only("DELETE FROM orders")
            .unwrap_err()
            .to_string();
        assert!(err.contains("starts with DELETE"), "{err}");
        assert!(check_read_only("-- only a comment").is_err());
    }

    #[test]
    fn request_ids_are_stable_uuids() {
        let a = request_id("snowflake://x/db?q=1#2026-11-23");
        assert_eq!(a, request_id("snowflake://x/db?q=1#2026-11-23"));
        assert_ne!(a, request_id("snowflake://x/db?q=1#2026-11-24"));
        let parts: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
    }

    #[test]
    fn cells_borrow_unless_escaped() {
        let rows: PartitionRows =
            serde_json::from_slice(br#"{"data": [["a", null, "b\"c"]], "x": 1}"#).unwrap();
        assert!(matches!(rows.data[0][0].0, Some(Cow::Borrowed("a"))));
        assert!(rows.data[0][1].0.is_none());
        assert_eq!(rows.data[0][2].0.as_deref(), Some("b\"c"));
    }
}
