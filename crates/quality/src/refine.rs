//! Refine: a bronze version, cast and checked under a contract, becomes a silver version.
//!
//! The bronze version is streamed part by part; each batch's contract columns are cast and
//! checked ([`crate::convert`]), rows that break a rule go to
//! `quarantine/silver/<dataset>/v<N>/` with the column, rule, value and reason, rows whose dedup
//! key was already seen are dropped (and recorded as `duplicate`), and the rest are written with
//! the same parallel Parquet writer as import. When more rows break the contract than its
//! `max_rejected_fraction` allows, refine stops at once and commits nothing (exit 3).
//!
//! The silver version's identity is the bronze version's content hash plus the contract's hash,
//! so refining the same bronze version under the same contract returns the same silver version.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::Utc;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use medallion_lake::ingest::{lineage, writer};
use medallion_lake::manifest::{DataFile, Producer, Timings, VersionRef};
use medallion_lake::read::VersionReader;
use medallion_lake::registry::{Begin, Committed, PendingVersion};
use medallion_lake::{DatasetName, Layer, Manifest, Registry, SourceIdentity, WorkflowRef};

use crate::contract::{Contract, UnknownColumns};
use crate::convert::{self, Rejection};
use crate::error::{Error, Result};

const TOOL: &str = "medallion-refine";
const BATCH_ROWS: usize = 16 * 1024;

/// One refine.
pub struct RefineRequest {
    pub dataset: DatasetName,
    /// The bronze version to refine.
    pub version: u64,
    pub contract: Contract,
    pub workflow: Option<WorkflowRef>,
}

/// What a refine did.
#[derive(Debug, Clone)]
pub struct RefineOutcome {
    pub manifest: Manifest,
    /// `false` when this bronze version was already refined under this contract.
    pub created: bool,
    pub uri: String,
    /// Rows that broke a rule (quarantined).
    pub rejected: u64,
    /// Rows dropped as duplicates of an earlier key.
    pub duplicates: u64,
}

/// Where each output column comes from.
struct Plan {
    /// Per contract column: the bronze column index, if bronze has it.
    sources: Vec<Option<usize>>,
    /// Unknown bronze columns kept as they are.
    kept: Vec<usize>,
    /// Bronze lineage columns carried over.
    lineage: Vec<usize>,
    /// Bronze `_row_number`, to name rejected rows.
    row_number: Option<usize>,
    /// Contract column indices of the dedup keys.
    keys: Vec<usize>,
    schema: SchemaRef,
}

fn plan(contract: &Contract, bronze: &Schema, version: &str) -> Result<Plan> {
    let mismatch = |message: String| Error::Mismatch {
        version: version.to_string(),
        message,
    };
    let effective = |name: &str| {
        contract
            .rename
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string())
    };
    let mut sources = Vec::new();
    let mut missing = Vec::new();
    for rule in &contract.columns {
        let found = bronze
            .fields()
            .iter()
            .position(|f| effective(f.name()) == rule.name);
        if let Some(i) = found
            && !convert::readable(bronze.field(i).data_type())
        {
            return Err(mismatch(format!(
                "column '{}' has type {} which refine cannot read; import it as text",
                bronze.field(i).name(),
                bronze.field(i).data_type()
            )));
        }
        if found.is_none() && rule.required {
            missing.push(rule.name.clone());
        }
        sources.push(found);
    }
    if !missing.is_empty() {
        return Err(mismatch(format!(
            "required contract columns are missing: {}; it has {} (add a rename: entry if a column is named differently)",
            missing.join(", "),
            bronze
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut kept = Vec::new();
    let mut unknown = Vec::new();
    let mut lineage_cols = Vec::new();
    for (i, f) in bronze.fields().iter().enumerate() {
        if lineage::is_lineage_column(f.name()) {
            lineage_cols.push(i);
        } else if contract.column(&effective(f.name())).is_none() {
            unknown.push(f.name().clone());
            if contract.unknown_columns == UnknownColumns::Keep {
                kept.push(i);
            }
        }
    }
    if contract.unknown_columns == UnknownColumns::Reject && !unknown.is_empty() {
        return Err(mismatch(format!(
            "has columns the contract does not declare ({}) and the contract says unknown_columns: reject",
            unknown.join(", ")
        )));
    }
    let mut fields: Vec<Field> = contract
        .columns
        .iter()
        .map(|r| Field::new(&r.name, convert::output_type(&r.ty), !r.required))
        .collect();
    fields.extend(kept.iter().map(|&i| bronze.field(i).clone()));
    fields.extend(lineage_cols.iter().map(|&i| bronze.field(i).clone()));
    let keys = match &contract.dedup {
        Some(d) => d
            .keys
            .iter()
            .filter_map(|k| contract.columns.iter().position(|c| &c.name == k))
            .collect(),
        None => Vec::new(),
    };
    Ok(Plan {
        sources,
        kept,
        row_number: bronze.index_of(lineage::ROW_NUMBER).ok(),
        lineage: lineage_cols,
        keys,
        schema: Arc::new(Schema::new(fields)),
    })
}

/// Dedup keys seen so far: two independent 64-bit hashes of each key's canonical text.
struct SeenKeys {
    set: HashSet<(u64, u64)>,
    a: RandomState,
    b: RandomState,
}

impl SeenKeys {
    fn new() -> SeenKeys {
        SeenKeys {
            set: HashSet::new(),
            a: RandomState::new(),
            b: RandomState::new(),
        }
    }

    /// Records the key of row `i`; `false` when it was seen before.
    fn insert(&mut self, columns: &[&dyn Array], i: usize) -> bool {
        let mut text = String::new();
        for c in columns {
            match convert::text_at(*c, i) {
                Some(t) => text.push_str(&t),
                None => text.push('\u{0}'),
            }
            text.push('\u{1f}');
        }
        self.set
            .insert((self.a.hash_one(&text), self.b.hash_one(&text)))
    }
}

/// Refines a bronze version into a silver version (or returns the one that already exists).
pub async fn refine(registry: &Registry, req: RefineRequest) -> Result<RefineOutcome> {
    let started_at = Utc::now();
    let clock = Instant::now();
    let bronze = registry
        .manifest(Layer::Bronze, &req.dataset, req.version)
        .await?;
    let bronze_url = registry.version_url(Layer::Bronze, &req.dataset, req.version);
    let identity = SourceIdentity {
        url: bronze_url.clone(),
        etag: None,
        sha256: Some(hex::encode(Sha256::digest(
            format!("{}\n{}", bronze.content_sha256, req.contract.sha256).as_bytes(),
        ))),
        size: bronze.bytes,
        last_modified: None,
    };
    let pending = match registry
        .begin(Layer::Silver, &req.dataset, Some(&identity))
        .await?
    {
        Begin::Existing(m) => {
            let (rejected, duplicates) = counts(&m);
            return Ok(RefineOutcome {
                uri: registry.version_url(Layer::Silver, &req.dataset, m.version),
                manifest: *m,
                created: false,
                rejected,
                duplicates,
            });
        }
        Begin::Pending(p) => p,
    };
    let previous = if req.contract.incremental {
        registry.latest(Layer::Silver, &req.dataset).await?
    } else {
        None
    };
    let previous = match previous {
        Some(v) => Some(registry.manifest(Layer::Silver, &req.dataset, v).await?),
        None => None,
    };
    tracing::info!(dataset = %req.dataset, bronze = req.version, target = pending.version, "refining");

    let job = RefineJob {
        handle: Handle::current(),
        registry: registry.clone(),
        pending: pending.clone(),
        bronze: bronze.clone(),
        previous,
        contract: req.contract.clone(),
    };
    let result = tokio::task::spawn_blocking(move || job.run())
        .await
        .map_err(|e| medallion_lake::Error::internal("refine", e.to_string()))?;
    let done = match result {
        Ok(d) => d,
        Err(failed) => {
            let (e, started) = *failed;
            registry.abandon(&pending, &started, false).await;
            return Err(e);
        }
    };
    let names: Vec<String> = done.files.iter().map(|f| f.name.clone()).collect();
    let quarantine = if done.rejections.is_empty() {
        None
    } else {
        let parquet = quarantine_parquet(&done.rejections)?;
        let rows = done.rejections.len() as u64;
        Some(
            registry
                .write_quarantine(&pending, parquet, rows, &names)
                .await?,
        )
    };
    let mut details = BTreeMap::new();
    details.insert("contract".into(), json!(req.contract.path));
    details.insert("contract_sha256".into(), json!(req.contract.sha256));
    details.insert("rejected_rows".into(), json!(done.rejected_rows));
    details.insert("duplicates".into(), json!(done.duplicates));
    details.insert("rules_broken".into(), json!(done.by_rule));
    let timings = Timings {
        started_at,
        finished_at: Utc::now(),
        phases: BTreeMap::from([("refine".to_string(), clock.elapsed().as_secs_f64())]),
    };
    let mut manifest = Manifest::new_version(
        Layer::Silver,
        &req.dataset,
        pending.version,
        &done.schema,
        done.files,
        Producer::current(TOOL),
        timings,
    );
    manifest.source = Some(identity);
    manifest.parents = vec![VersionRef {
        layer: Layer::Bronze,
        dataset: req.dataset.clone(),
        version: req.version,
        content_sha256: Some(bronze.content_sha256.clone()),
    }];
    manifest.quarantine = quarantine;
    manifest.workflow = req.workflow.clone();
    manifest.details = details;
    let (manifest, created) = match registry.commit(pending, manifest).await? {
        Committed::Created(m) => (*m, true),
        Committed::Existing(m) => (*m, false),
    };
    let (rejected, duplicates) = counts(&manifest);
    Ok(RefineOutcome {
        uri: registry.version_url(Layer::Silver, &req.dataset, manifest.version),
        manifest,
        created,
        rejected,
        duplicates,
    })
}

/// Rejected rows and duplicates recorded in a silver manifest.
fn counts(m: &Manifest) -> (u64, u64) {
    let get = |k: &str| {
        m.details
            .get(k)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    (get("rejected_rows"), get("duplicates"))
}

/// A quarantined rejection with the bronze row it came from.
struct Quarantined {
    row: i64,
    rejection: Rejection,
}

struct Refined {
    files: Vec<DataFile>,
    schema: SchemaRef,
    rejections: Vec<Quarantined>,
    rejected_rows: u64,
    duplicates: u64,
    by_rule: BTreeMap<&'static str, u64>,
}

struct RefineJob {
    handle: Handle,
    registry: Registry,
    pending: PendingVersion,
    bronze: Manifest,
    previous: Option<Manifest>,
    contract: Contract,
}

impl RefineJob {
    fn version_name(&self) -> String {
        format!("bronze/{} v{}", self.bronze.dataset, self.bronze.version)
    }

    /// On failure, also the names of the parts started (for cleanup).
    fn run(&self) -> std::result::Result<Refined, Box<(Error, Vec<String>)>> {
        let no_parts = |e: Error| Box::new((e, Vec::new()));
        let mut reader = VersionReader::new(
            self.registry.lake().clone(),
            self.bronze.clone(),
            self.handle.clone(),
            BATCH_ROWS,
        );
        let bronze_schema = reader.schema().map_err(|e| no_parts(e.into()))?;
        let plan = plan(&self.contract, &bronze_schema, &self.version_name()).map_err(no_parts)?;
        let mut seen = SeenKeys::new();
        if let Some(previous) = &self.previous {
            self.load_keys(previous, &plan, &mut seen)
                .map_err(no_parts)?;
        }
        let constant: Vec<&str> = [
            lineage::SOURCE_URL,
            lineage::SOURCE_ETAG,
            lineage::SOURCE_SHA256,
            lineage::INGESTED_AT,
        ]
        .into_iter()
        .filter(|n| plan.schema.index_of(n).is_ok())
        .collect();
        let sequential: Vec<&str> = [lineage::ROW_NUMBER]
            .into_iter()
            .filter(|n| plan.schema.index_of(n).is_ok())
            .collect();
        let part_writer = writer::PartWriter::new(
            self.handle.clone(),
            self.registry.lake().clone(),
            self.pending.clone(),
            plan.schema.clone(),
            writer::writer_properties(TOOL, &constant, &sequential),
            Vec::new(),
        );
        // Stop as soon as the rejected share cannot stay within the contract's allowance.
        let limit = (self.contract.max_rejected_fraction * self.bronze.rows as f64).floor() as u64;
        let mut state = Refined {
            files: Vec::new(),
            schema: plan.schema.clone(),
            rejections: Vec::new(),
            rejected_rows: 0,
            duplicates: 0,
            by_rule: BTreeMap::new(),
        };
        let mut next_row: i64 = 1;
        let files = writer::write_with(
            part_writer,
            |tx: &std::sync::mpsc::SyncSender<RecordBatch>| -> Result<()> {
                while let Some(batch) = reader.next_batch()? {
                    let n = batch.num_rows();
                    let out =
                        self.refine_batch(&batch, &plan, &mut seen, &mut state, next_row, limit)?;
                    next_row += n as i64;
                    if out.num_rows() > 0 && tx.send(out).is_err() {
                        return Ok(());
                    }
                }
                Ok(())
            },
        );
        let files = match files {
            Ok(f) => f,
            Err((Error::TooManyRejected { .. }, started)) => {
                let first = state.rejections.first();
                return Err(Box::new((
                    Error::TooManyRejected {
                        version: self.version_name(),
                        rejected: state.rejected_rows,
                        rows: self.bronze.rows,
                        fraction: self.contract.max_rejected_fraction,
                        first_row: first.map_or(0, |q| q.row),
                        first_column: first
                            .map(|q| q.rejection.column.clone())
                            .unwrap_or_default(),
                        first_reason: first
                            .map(|q| q.rejection.reason.clone())
                            .unwrap_or_default(),
                    },
                    started,
                )));
            }
            Err((e, started)) => return Err(Box::new((e, started))),
        };
        state.files = files;
        Ok(state)
    }

    /// Casts, checks and deduplicates one bronze batch; returns the accepted rows.
    fn refine_batch(
        &self,
        batch: &RecordBatch,
        plan: &Plan,
        seen: &mut SeenKeys,
        state: &mut Refined,
        first_row: i64,
        limit: u64,
    ) -> Result<RecordBatch> {
        let n = batch.num_rows();
        let mut rejections = Vec::new();
        let converted: Vec<ArrayRef> = self
            .contract
            .columns
            .iter()
            .zip(&plan.sources)
            .map(|(rule, src)| {
                convert::convert(
                    rule,
                    src.map(|i| batch.column(i).as_ref()),
                    n,
                    &mut rejections,
                )
            })
            .collect();
        let mut keep = vec![true; n];
        for r in &rejections {
            keep[r.row] = false;
        }
        let bronze_rows = plan.row_number.and_then(|i| {
            batch
                .column(i)
                .as_any()
                .downcast_ref::<Int64Array>()
                .cloned()
        });
        let row_of = |i: usize| {
            bronze_rows
                .as_ref()
                .map_or(first_row + i as i64, |r| r.value(i))
        };
        let newly_rejected = keep.iter().filter(|k| !**k).count() as u64;
        for r in rejections {
            *state.by_rule.entry(r.rule).or_default() += 1;
            state.rejections.push(Quarantined {
                row: row_of(r.row),
                rejection: r,
            });
        }
        state.rejected_rows += newly_rejected;
        if state.rejected_rows > limit {
            return Err(Error::TooManyRejected {
                version: String::new(),
                rejected: state.rejected_rows,
                rows: 0,
                fraction: 0.0,
                first_row: 0,
                first_column: String::new(),
                first_reason: String::new(),
            });
        }
        if !plan.keys.is_empty() {
            let key_cols: Vec<&dyn Array> =
                plan.keys.iter().map(|&k| converted[k].as_ref()).collect();
            for (i, kept) in keep.iter_mut().enumerate() {
                if *kept && !seen.insert(&key_cols, i) {
                    *kept = false;
                    state.duplicates += 1;
                    *state.by_rule.entry("duplicate").or_default() += 1;
                    state.rejections.push(Quarantined {
                        row: row_of(i),
                        rejection: Rejection {
                            row: i,
                            column: plan
                                .keys
                                .iter()
                                .map(|&k| self.contract.columns[k].name.clone())
                                .collect::<Vec<_>>()
                                .join(","),
                            rule: "duplicate",
                            value: key_cols
                                .iter()
                                .map(|c| {
                                    convert::text_at(*c, i)
                                        .map(|t| t.into_owned())
                                        .unwrap_or_default()
                                })
                                .collect::<Vec<_>>()
                                .join(","),
                            reason: "repeats the dedup key of an earlier row".into(),
                        },
                    });
                }
            }
        }
        let mut columns = converted;
        columns.extend(plan.kept.iter().map(|&i| batch.column(i).clone()));
        columns.extend(plan.lineage.iter().map(|&i| batch.column(i).clone()));
        let columns = if keep.iter().all(|k| *k) {
            columns
        } else {
            let keep = BooleanArray::from(keep);
            columns
                .iter()
                .map(|c| arrow_select::filter::filter(c.as_ref(), &keep))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| {
                    medallion_lake::Error::internal("filter silver batch", e.to_string())
                })?
        };
        // Only accepted rows remain, so required columns hold no nulls now.
        Ok(RecordBatch::try_new(plan.schema.clone(), columns)
            .map_err(|e| medallion_lake::Error::internal("assemble silver batch", e.to_string()))?)
    }

    /// Loads the dedup keys of the previous silver version (incremental datasets).
    fn load_keys(&self, previous: &Manifest, plan: &Plan, seen: &mut SeenKeys) -> Result<()> {
        if plan.keys.is_empty() {
            return Ok(());
        }
        let mut reader = VersionReader::new(
            self.registry.lake().clone(),
            previous.clone(),
            self.handle.clone(),
            BATCH_ROWS,
        );
        let schema = reader.schema()?;
        let mut idx = Vec::new();
        for &k in &plan.keys {
            let name = &self.contract.columns[k].name;
            idx.push(schema.index_of(name).map_err(|_| Error::Mismatch {
                version: format!("silver/{} v{}", previous.dataset, previous.version),
                message: format!("the previous silver version has no key column '{name}'; refine it again or drop incremental"),
            })?);
        }
        while let Some(batch) = reader.next_batch()? {
            let cols: Vec<&dyn Array> = idx.iter().map(|&i| batch.column(i).as_ref()).collect();
            for i in 0..batch.num_rows() {
                seen.insert(&cols, i);
            }
        }
        Ok(())
    }
}

/// The quarantine file: one row per broken rule.
fn quarantine_parquet(rows: &[Quarantined]) -> Result<Vec<u8>> {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new(lineage::ROW_NUMBER, DataType::Int64, false),
        Field::new("column", DataType::Utf8, false),
        Field::new("rule", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|q| q.row))) as ArrayRef,
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|q| q.rejection.column.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|q| q.rejection.rule),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|q| q.rejection.value.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|q| q.rejection.reason.as_str()),
            )),
        ],
    )
    .map_err(|e| medallion_lake::Error::internal("quarantine", e.to_string()))?;
    Ok(writer::parquet_bytes(schema, &[batch], TOOL)?)
}
