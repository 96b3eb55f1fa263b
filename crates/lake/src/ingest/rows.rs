//! Sources that are not files: typed rows from a query over a data connection, streamed into a
//! bronze version through the same writer, lineage and commit protocol as a file import.
//!
//! A query has no ETag, so the caller names the snapshot it reads (a watermark, the scheduled
//! time of the run); URL + snapshot is the identity, so a retried step or a repeated event imports
//! once. The query runs only after the registry says the version does not exist yet.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow_schema::Field;
use chrono::Utc;
use tokio::runtime::Handle;

use super::batch::Chunk;
use super::lineage::{Lineage, SourceId};
use super::{
    ConvertTarget, Finished, ImportOptions, ImportOutcome, ImportProgress, Parser, finish_import,
    outcome,
};
use crate::error::{Error, Result};
use crate::layout::{DatasetName, Layer};
use crate::manifest::{SourceIdentity, WorkflowRef};
use crate::registry::{Begin, Registry};

/// Typed rows from somewhere other than a file.
pub trait RowSource: Send {
    /// The columns with their Arrow types, in order.
    fn fields(&self) -> Vec<Field>;
    /// The next chunk: at most `max_rows` rows and about `max_bytes` of values; `None` at the end.
    /// Runs on a blocking thread and may wait on the network.
    fn next_chunk(&mut self, max_rows: usize, max_bytes: usize) -> Result<Option<Chunk>>;
    /// What the manifest records about the source (never a secret).
    fn details(&self) -> BTreeMap<String, serde_json::Value>;
}

/// Opens the row source (runs the query). Called on a blocking thread, once the registry has
/// reserved a new version, so a repeated import does not query at all.
pub type OpenRows = Box<dyn FnOnce(Handle) -> Result<Box<dyn RowSource>> + Send>;

/// One import of query rows.
pub struct RowsImportRequest {
    pub dataset: DatasetName,
    /// Credential-free URL of the query (connection and query digest) and the snapshot id in
    /// `etag`. The same identity imports once.
    pub identity: SourceIdentity,
    pub open: OpenRows,
    pub options: ImportOptions,
    pub workflow: Option<WorkflowRef>,
    pub progress: Option<Arc<ImportProgress>>,
}

/// Imports query rows into a new bronze version (or returns the version that already holds
/// this identity).
pub async fn import_rows(registry: &Registry, req: RowsImportRequest) -> Result<ImportOutcome> {
    let started_at = Utc::now();
    let progress = req.progress.clone().unwrap_or_default();
    let Some(snapshot) = req.identity.etag.clone() else {
        return Err(Error::internal(
            "import rows",
            "a query import needs a snapshot id",
        ));
    };
    let pending = match registry
        .begin(Layer::Bronze, &req.dataset, Some(&req.identity))
        .await?
    {
        Begin::Existing(m) => {
            tracing::info!(dataset = %req.dataset, version = m.version, source = %req.identity.url, "snapshot already imported");
            return Ok(outcome(registry, *m, false, 0));
        }
        Begin::Pending(p) => p,
    };
    tracing::info!(dataset = %req.dataset, target = pending.version, source = %req.identity.url, snapshot = %snapshot, "importing query rows");
    progress.enter(ImportProgress::CONVERTING);
    let clock = Instant::now();
    let target = ConvertTarget {
        handle: Handle::current(),
        registry: registry.clone(),
        pending: pending.clone(),
        options: req.options.clone(),
    };
    let url = req.identity.url.clone();
    let lineage = Lineage::new(&url, SourceId::Etag(snapshot), started_at);
    let open = req.open;
    let converted = tokio::task::spawn_blocking(move || {
        let rows = open(target.handle.clone()).map_err(|e| (e, Vec::new()))?;
        let fields = rows.fields();
        let names: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
        super::csv::check_unique(&names, &url).map_err(|e| (e, Vec::new()))?;
        let mut details = rows.details();
        details.insert("format".into(), serde_json::json!("query"));
        target.convert(Parser::Rows(rows), &names, fields, details, &lineage, &url)
    })
    .await
    .map_err(|e| Error::internal("convert", e))?;
    let converted = match converted {
        Ok(c) => c,
        Err((err, started)) => {
            registry.abandon(&pending, &started, false).await;
            return Err(err);
        }
    };
    let mut phases = BTreeMap::new();
    phases.insert("query".to_string(), clock.elapsed().as_secs_f64());
    let finished = Finished {
        pending,
        converted,
        identity: req.identity,
        workflow: req.workflow,
        started_at,
        phases,
        allow_empty: req.options.allow_empty,
    };
    finish_import(registry, finished, &progress, 0).await
}
