//! A folder of Parquet parts with one schema (a day of `medallion-serve`'s request capture,
//! `inference/<endpoint>/date=<day>/`) imported as one bronze version, byte for byte: the parts
//! are already typed, compressed Parquet, so they are copied, not converted.
//!
//! The version's identity is the folder's URL and the SHA-256 of its parts' names and digests,
//! so importing the same parts again returns the same version, and a folder that gained parts
//! since makes a new one.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use chrono::Utc;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sha2::{Digest, Sha256};

use crate::error::{Error, Position, Result};
use crate::manifest::{DataFile, Producer, SourceIdentity, Timings, WorkflowRef};
use crate::registry::{Begin, Committed};
use crate::{DatasetName, Layer, Manifest, Registry, StoreLocation, records};

use super::{ImportOutcome, TOOL};

/// True when `source` names a folder of parts (a URL or path ending in `/`).
pub fn is_parts_folder(source: &str) -> bool {
    source.ends_with('/')
}

/// One part: its name in the folder, digest and row count.
struct Part {
    name: String,
    sha256: String,
    bytes: u64,
    rows: u64,
}

fn schema_of(url: &str, bytes: Bytes) -> Result<(arrow_schema::SchemaRef, u64)> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| Error::bad_source(url, Position::default(), format!("is not Parquet: {e}")))?;
    let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
    Ok((builder.schema().clone(), rows))
}

async fn read(folder: &StoreLocation, name: &str) -> Result<Bytes> {
    records::read_bytes(folder, name).await?.ok_or_else(|| {
        Error::bad_source(
            &folder.url_of(&folder.path(name)),
            Position::default(),
            "disappeared while being imported; import the folder again",
        )
    })
}

/// Imports every `*.parquet` under `folder_url` into the next bronze version of `dataset`.
pub async fn import_parts(
    registry: &Registry,
    dataset: &DatasetName,
    folder_url: &str,
    workflow: Option<WorkflowRef>,
) -> Result<ImportOutcome> {
    let started_at = Utc::now();
    let clock = Instant::now();
    let folder = StoreLocation::open("source", folder_url)?;
    let names = records::list(&folder, "", ".parquet").await?;
    if names.is_empty() {
        return Err(Error::bad_source(
            folder.url(),
            Position::default(),
            "holds no .parquet files; check the folder (a capture folder is inference/<endpoint>/date=YYYY-MM-DD/)",
        ));
    }
    // First pass: digests, row counts and one schema for all parts.
    let mut parts = Vec::new();
    let mut schema: Option<(String, arrow_schema::SchemaRef)> = None;
    let mut identity_hash = Sha256::new();
    for name in &names {
        let url = folder.url_of(&folder.path(name));
        let bytes = read(&folder, name).await?;
        let sha = hex::encode(Sha256::digest(&bytes));
        let size = bytes.len() as u64;
        let (s, rows) = schema_of(&url, bytes)?;
        match &schema {
            None => schema = Some((name.clone(), s)),
            Some((first, expected)) if expected.fields() != s.fields() => {
                return Err(Error::bad_source(
                    &url,
                    Position::default(),
                    format!(
                        "has other columns than {first} (parts of one version share a schema; a capture folder mixing model versions is split by model version first)"
                    ),
                ));
            }
            Some(_) => {}
        }
        identity_hash.update(format!("{name} {sha}\n").as_bytes());
        parts.push(Part {
            name: name.clone(),
            sha256: sha,
            bytes: size,
            rows,
        });
    }
    let Some((_, schema)) = schema else {
        return Err(Error::internal(
            "import parts",
            "no schema after reading parts",
        ));
    };
    let identity = SourceIdentity {
        url: folder.url().to_string(),
        etag: None,
        sha256: Some(hex::encode(identity_hash.finalize())),
        size: parts.iter().map(|p| p.bytes).sum(),
        last_modified: None,
    };
    let source_bytes = identity.size;
    let pending = match registry
        .begin(Layer::Bronze, dataset, Some(&identity))
        .await?
    {
        Begin::Existing(m) => {
            tracing::info!(dataset = %dataset, version = m.version, folder = %identity.url, "these parts were imported before");
            return Ok(super::outcome(registry, *m, false, source_bytes));
        }
        Begin::Pending(p) => p,
    };
    // Second pass: copy each part into the pending version under this attempt's name.
    let mut files = Vec::new();
    let mut written = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let name = format!("part-{}-{i:05}.parquet", pending.attempt);
        let copied = async {
            let bytes = read(&folder, &part.name).await?;
            if hex::encode(Sha256::digest(&bytes)) != part.sha256 {
                return Err(Error::bad_source(
                    &folder.url_of(&folder.path(&part.name)),
                    Position::default(),
                    "changed while being imported; import the folder again",
                ));
            }
            records::put_bytes(registry.lake(), &pending.data_path(&name), bytes.to_vec()).await
        }
        .await;
        written.push(name.clone());
        if let Err(e) = copied {
            registry.abandon(&pending, &written, false).await;
            return Err(e);
        }
        files.push(DataFile {
            name,
            rows: part.rows,
            bytes: part.bytes,
            sha256: part.sha256.clone(),
        });
    }
    let mut phases = BTreeMap::new();
    phases.insert("copy".to_string(), clock.elapsed().as_secs_f64());
    let timings = Timings {
        started_at,
        finished_at: Utc::now(),
        phases,
    };
    let mut manifest = Manifest::new_version(
        Layer::Bronze,
        dataset,
        pending.version,
        &schema,
        files,
        Producer::current(TOOL),
        timings,
    );
    manifest.source = Some(identity);
    manifest.workflow = workflow;
    manifest.details.insert(
        "parts".into(),
        serde_json::json!(parts.iter().map(|p| &p.name).collect::<Vec<_>>()),
    );
    let (manifest, created) = match registry.commit(pending, manifest).await? {
        Committed::Created(m) => (*m, true),
        Committed::Existing(m) => (*m, false),
    };
    Ok(super::outcome(registry, manifest, created, source_bytes))
}
