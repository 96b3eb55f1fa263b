//! Import: a source file (CSV, JSON lines, Parquet; local or a blob) into a new bronze version.
//!
//! Two threads stream the file: a parser (read, decompress, decode, parse into Arrow columns) and
//! a writer (append lineage, encode zstd Parquet, upload parts). A bounded channel of two chunks
//! between them keeps memory flat whatever the file size. The version is committed through the
//! [`Registry`] protocol, so a repeated or concurrent import of the same source yields one version
//! and a crash leaves none.

pub mod batch;
pub mod csv;
pub mod jsonl;
pub mod lineage;
pub mod parquet_source;
pub mod parts;
pub mod pinned;
pub mod rows;
pub mod text;
pub mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Instant;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::{DateTime, Utc};

use serde_json::json;
use tokio::runtime::Handle;

use crate::error::{Error, Position, Result};
use crate::layout::{DatasetName, Layer};
use crate::manifest::{DataFile, Manifest, Producer, SourceIdentity, Timings, WorkflowRef};
use crate::registry::{Begin, Committed, PendingVersion, Registry};
use crate::source::SourceObject;
use batch::{BadRow, Chunk, StringColumns};
use lineage::{Deferred, Lineage, SourceId};
use pinned::PinnedSchema;
use rows::RowSource;

const TOOL: &str = "medallion-import";

/// The format of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Csv,
    JsonLines,
    Parquet,
}

impl SourceFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Csv => "csv",
            SourceFormat::JsonLines => "jsonl",
            SourceFormat::Parquet => "parquet",
        }
    }

    pub fn parse(s: &str) -> Option<SourceFormat> {
        match s.to_ascii_lowercase().as_str() {
            "csv" | "tsv" | "txt" => Some(SourceFormat::Csv),
            "jsonl" | "ndjson" | "json" | "jsonlines" => Some(SourceFormat::JsonLines),
            "parquet" | "pq" => Some(SourceFormat::Parquet),
            _ => None,
        }
    }

    /// From a file name, ignoring a compression suffix.
    pub fn from_name(name: &str) -> Option<SourceFormat> {
        let base = text::strip_compression_suffix(name);
        let ext = base.rsplit_once('.').map(|(_, e)| e)?;
        SourceFormat::parse(ext)
    }
}

/// How to read a source. `Default` is what `medallion-import` does without flags.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// `None`: from the file name.
    pub format: Option<SourceFormat>,
    /// CSV delimiter; `None`: sniffed.
    pub delimiter: Option<u8>,
    pub quote: u8,
    /// Source character encoding; `None`: UTF-8 (or UTF-16 by byte-order mark).
    pub encoding: Option<String>,
    /// Column names for a CSV without a header row.
    pub columns: Option<Vec<String>>,
    /// Typed bronze.
    pub schema: Option<PinnedSchema>,
    /// Bad rows allowed (quarantined); one more fails the import.
    pub max_bad_rows: u64,
    /// Largest record (CSV) or line (JSON) accepted.
    pub max_record_bytes: usize,
    /// Whether a source with no data rows makes an empty version instead of an error.
    pub allow_empty: bool,
    /// Rows per Arrow batch.
    pub batch_rows: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            format: None,
            delimiter: None,
            quote: b'"',
            encoding: None,
            columns: None,
            schema: None,
            max_bad_rows: 0,
            max_record_bytes: 64 << 20,
            allow_empty: false,
            batch_rows: 16 * 1024,
        }
    }
}

/// Progress a person can watch: the phase and the source bytes read in it.
#[derive(Debug, Default)]
pub struct ImportProgress {
    phase: AtomicU8,
    pub bytes: Arc<AtomicU64>,
}

impl ImportProgress {
    pub const HASHING: u8 = 0;
    pub const CONVERTING: u8 = 1;
    pub const COMMITTING: u8 = 2;

    pub fn phase(&self) -> u8 {
        self.phase.load(Ordering::Relaxed)
    }

    fn enter(&self, phase: u8) {
        self.bytes.store(0, Ordering::Relaxed);
        self.phase.store(phase, Ordering::Relaxed);
    }
}

/// One import.
pub struct ImportRequest {
    pub dataset: DatasetName,
    /// Local path or URL.
    pub source: String,
    pub options: ImportOptions,
    pub workflow: Option<WorkflowRef>,
    pub progress: Option<Arc<ImportProgress>>,
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportOutcome {
    pub manifest: Manifest,
    /// `false` when the source had been imported before (the existing version is returned).
    pub created: bool,
    /// The version folder's URL.
    pub uri: String,
    /// The source size, for reporting.
    pub source_bytes: u64,
}

/// Imports a source into a new bronze version (or returns the version that already holds it).
pub async fn import(registry: &Registry, req: ImportRequest) -> Result<ImportOutcome> {
    let started_at = Utc::now();
    let mut phases = BTreeMap::new();
    let progress = req.progress.clone().unwrap_or_default();
    let source = SourceObject::open(&req.source).await?;
    let source_bytes = source.size;

    // A blob's identity (URL + ETag) is known now. A local file's is its SHA-256: hash it first
    // only when the same URL was imported before with the same size (a likely re-run, which the
    // digest then settles without converting anything); otherwise hash it during the conversion.
    let clock = Instant::now();
    let mut known_sha = None;
    if source.is_local() {
        let hint = registry
            .last_import_of(Layer::Bronze, &req.dataset, &source.url)
            .await?;
        if hint.is_some_and(|h| h.size == source.size) {
            progress.enter(ImportProgress::HASHING);
            let src = SourceObject::open(&req.source).await?;
            known_sha = tokio::task::spawn_blocking(move || src.local_sha256())
                .await
                .map_err(|e| Error::internal("hash source", e))??;
            phases.insert("hash".to_string(), clock.elapsed().as_secs_f64());
        }
    }
    let identity_now =
        (!source.is_local() || known_sha.is_some()).then(|| source.identity(known_sha.clone()));

    let pending = match registry
        .begin(Layer::Bronze, &req.dataset, identity_now.as_ref())
        .await?
    {
        Begin::Existing(m) => {
            tracing::info!(dataset = %req.dataset, version = m.version, source = %source.url, "source already imported");
            return Ok(outcome(registry, *m, false, source_bytes));
        }
        Begin::Pending(p) => p,
    };
    tracing::info!(dataset = %req.dataset, target = pending.version, source = %source.url, bytes = source.size, "importing");

    let clock = Instant::now();
    progress.enter(ImportProgress::CONVERTING);
    let source_id = match (&source.etag, known_sha) {
        (Some(etag), _) => SourceId::Etag(etag.clone()),
        (None, Some(sha)) => SourceId::Sha256(Deferred::resolved(sha)),
        (None, None) => SourceId::Sha256(Deferred::default()),
    };
    let job = ConvertJob {
        handle: Handle::current(),
        registry: registry.clone(),
        pending: pending.clone(),
        source,
        source_id: source_id.clone(),
        options: req.options.clone(),
        ingested_at: started_at,
        bytes_read: progress.bytes.clone(),
    };
    let (converted, source) = tokio::task::spawn_blocking(move || {
        let result = job.run();
        (result, job.source)
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
    phases.insert("convert".to_string(), clock.elapsed().as_secs_f64());
    let identity = match &source_id {
        SourceId::Etag(_) => source.identity(None),
        SourceId::Sha256(d) => match d.wait() {
            Ok(sha) => source.identity(Some(sha.to_string())),
            Err(e) => {
                let names: Vec<String> = converted.files.iter().map(|f| f.name.clone()).collect();
                registry.abandon(&pending, &names, false).await;
                return Err(Error::internal("hash the source", e));
            }
        },
    };

    let finished = Finished {
        pending,
        converted,
        identity,
        workflow: req.workflow.clone(),
        started_at,
        phases,
        allow_empty: req.options.allow_empty,
    };
    finish_import(registry, finished, &progress, source_bytes).await
}

/// A conversion done, ready to be committed.
struct Finished {
    pending: PendingVersion,
    converted: Converted,
    identity: SourceIdentity,
    workflow: Option<WorkflowRef>,
    started_at: DateTime<Utc>,
    phases: BTreeMap<String, f64>,
    allow_empty: bool,
}

/// The common end of every import: the empty check, quarantine, manifest and commit.
async fn finish_import(
    registry: &Registry,
    done: Finished,
    progress: &ImportProgress,
    source_bytes: u64,
) -> Result<ImportOutcome> {
    let Finished {
        pending,
        converted,
        identity,
        workflow,
        started_at,
        phases,
        allow_empty,
    } = done;
    let started_names: Vec<String> = converted.files.iter().map(|f| f.name.clone()).collect();
    let rows: u64 = converted.files.iter().map(|f| f.rows).sum();
    if rows == 0 && !allow_empty {
        registry.abandon(&pending, &started_names, false).await;
        let message = if converted.bad_rows.is_empty() {
            "has no data rows (a header only?); nothing to import. Pass --allow-empty to record an empty version".to_string()
        } else {
            format!(
                "has no good rows: all {} data rows are bad",
                converted.bad_rows.len()
            )
        };
        return Err(Error::bad_source(
            &identity.url,
            Position::default(),
            message,
        ));
    }

    let clock = Instant::now();
    progress.enter(ImportProgress::COMMITTING);
    let quarantine = if converted.bad_rows.is_empty() {
        None
    } else {
        let parquet = quarantine_parquet(&converted.bad_rows)?;
        let rows = converted.bad_rows.len() as u64;
        Some(
            registry
                .write_quarantine(&pending, parquet, rows, &started_names)
                .await?,
        )
    };
    let timings = Timings {
        started_at,
        finished_at: Utc::now(),
        phases,
    };
    let dataset = pending.dataset.clone();
    let mut manifest = Manifest::new_version(
        Layer::Bronze,
        &dataset,
        pending.version,
        &converted.schema,
        converted.files,
        Producer::current(TOOL),
        timings,
    );
    manifest.source = Some(identity);
    manifest.quarantine = quarantine;
    manifest.workflow = workflow;
    manifest.details = converted.details;
    let (manifest, created) = match registry.commit(pending, manifest).await? {
        Committed::Created(m) => (*m, true),
        Committed::Existing(m) => (*m, false),
    };
    tracing::info!(
        seconds = clock.elapsed().as_secs_f64(),
        created,
        "commit finished"
    );
    Ok(outcome(registry, manifest, created, source_bytes))
}

fn outcome(
    registry: &Registry,
    manifest: Manifest,
    created: bool,
    source_bytes: u64,
) -> ImportOutcome {
    ImportOutcome {
        uri: registry.version_url(manifest.layer, &manifest.dataset, manifest.version),
        manifest,
        created,
        source_bytes,
    }
}

/// The quarantine file: one row per bad row.
fn quarantine_parquet(bad: &[BadRow]) -> Result<Vec<u8>> {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new(lineage::ROW_NUMBER, DataType::Int64, false),
        Field::new("column", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(
                bad.iter().map(|b| b.row as i64),
            )) as ArrayRef,
            Arc::new(StringArray::from_iter(
                bad.iter().map(|b| b.column.as_deref()),
            )),
            Arc::new(StringArray::from_iter_values(
                bad.iter().map(|b| b.reason.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                bad.iter().map(|b| b.raw.as_str()),
            )),
        ],
    )
    .map_err(|e| Error::internal("quarantine", e))?;
    writer::parquet_bytes(schema, &[batch], TOOL)
}

struct Converted {
    files: Vec<DataFile>,
    schema: SchemaRef,
    bad_rows: Vec<BadRow>,
    details: BTreeMap<String, serde_json::Value>,
}

/// Collects bad rows and enforces the allowance.
struct BadRows {
    rows: Vec<BadRow>,
    limit: u64,
    url: String,
}

impl BadRows {
    fn push(&mut self, row: BadRow) -> Result<()> {
        self.rows.push(row);
        if self.rows.len() as u64 > self.limit {
            let first = &self.rows[0];
            return Err(Error::TooManyBadRows {
                url: self.url.clone(),
                limit: self.limit,
                first_position: Position {
                    row: Some(first.row),
                    column: first.column.clone(),
                },
                first_reason: first.reason.clone(),
            });
        }
        Ok(())
    }
}

/// Everything the blocking conversion needs.
struct ConvertJob {
    handle: Handle,
    registry: Registry,
    pending: PendingVersion,
    source: SourceObject,
    source_id: SourceId,
    options: ImportOptions,
    ingested_at: DateTime<Utc>,
    bytes_read: Arc<AtomicU64>,
}

/// A parser: yields chunks of source rows.
enum Parser {
    Csv {
        records: Box<csv::CsvRecords>,
        /// Value bytes per column in the last chunk (capacity for the next one).
        sizes: Vec<usize>,
        /// A record already read (headerless CSV: the first data row).
        pending_first: bool,
    },
    Json(Box<jsonl::JsonLines>),
    Parquet(Box<parquet_source::ParquetSource>),
    Rows(Box<dyn RowSource>),
}

impl ConvertJob {
    /// Runs on a blocking thread. On failure, also returns the part names started.
    fn run(&self) -> std::result::Result<Converted, (Error, Vec<String>)> {
        let url = self.source.url.clone();
        let (parser, names, source_fields, details) =
            self.open_parser().map_err(|e| (e, Vec::new()))?;
        let lineage = Lineage::new(&url, self.source_id.clone(), self.ingested_at);
        // A local file's digest is computed beside the conversion (its own read of the file).
        let hashing = match &self.source_id {
            SourceId::Sha256(digest) if !digest.is_set() => {
                let (target, source) = (digest.clone(), self.source.clone());
                let spawned = std::thread::Builder::new()
                    .name("medallion-hash".into())
                    .spawn(move || {
                        target.set(match source.local_sha256() {
                            Ok(Some(sha)) => Ok(sha),
                            Ok(None) => Err("the source is not a local file".to_string()),
                            Err(e) => Err(e.to_string()),
                        })
                    });
                match spawned {
                    Ok(h) => Some(h),
                    Err(e) => {
                        digest.set(Err(format!("cannot start the hashing thread: {e}")));
                        None
                    }
                }
            }
            _ => None,
        };
        let target = ConvertTarget {
            handle: self.handle.clone(),
            registry: self.registry.clone(),
            pending: self.pending.clone(),
            options: self.options.clone(),
        };
        let converted = target.convert(parser, &names, source_fields, details, &lineage, &url);
        if let Some(h) = hashing {
            // Finishes quickly once the conversion is done (it only reads the file).
            let _ = h.join();
        }
        converted
    }

    #[allow(clippy::type_complexity)]
    fn open_parser(
        &self,
    ) -> Result<(
        Parser,
        Vec<String>,
        Vec<Field>,
        BTreeMap<String, serde_json::Value>,
    )> {
        let url = &self.source.url;
        let format = match self.options.format {
            Some(f) => f,
            None => SourceFormat::from_name(&self.source.name).ok_or_else(|| {
                Error::bad_source(
                    url,
                    Position::default(),
                    "cannot tell the format from the file name; pass --format csv, jsonl or parquet",
                )
            })?,
        };
        let mut details = BTreeMap::new();
        details.insert("format".to_string(), json!(format.as_str()));
        if format == SourceFormat::Parquet {
            if self.options.schema.is_some() {
                return Err(Error::bad_source(
                    url,
                    Position::default(),
                    "--schema applies to CSV and JSON sources; Parquet keeps its own types",
                ));
            }
            let p = parquet_source::ParquetSource::open(
                &self.source,
                self.handle.clone(),
                self.options.batch_rows,
            )?;
            let fields: Vec<Field> = p
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            let names: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
            csv::check_unique(&names, url)?;
            return Ok((Parser::Parquet(Box::new(p)), names, fields, details));
        }

        let raw = self
            .source
            .reader(self.handle.clone(), Some(self.bytes_read.clone()))?;
        let text = text::open_text(
            raw,
            &self.source.name,
            url,
            self.options.encoding.as_deref(),
        )?;
        details.insert("compression".into(), json!(text.compression.as_str()));
        details.insert("encoding".into(), json!(text.encoding));
        let pinned = self.options.schema.as_ref();
        let (parser, names, nullable) = match format {
            SourceFormat::Csv => {
                let delimiter = match self.options.delimiter {
                    Some(d) => d,
                    None if self.source.name.to_ascii_lowercase().contains(".tsv") => b'\t',
                    None => csv::sniff_delimiter(&text.sample, self.options.quote),
                };
                let dialect = csv::CsvDialect {
                    delimiter,
                    quote: self.options.quote,
                };
                details.insert("delimiter".into(), json!(dialect.delimiter_name()));
                details.insert(
                    "quote".into(),
                    json!((self.options.quote as char).to_string()),
                );
                let mut records = Box::new(csv::CsvRecords::new(
                    text.sample,
                    text.rest,
                    dialect,
                    self.options.max_record_bytes,
                    url,
                ));
                let has_record = records.next_record()?;
                let (names, pending_first) = match &self.options.columns {
                    Some(cols) => {
                        // No header: the first record is data row 1.
                        csv::check_unique(cols, url)?;
                        records.data_offset = 0;
                        (cols.clone(), has_record)
                    }
                    None => {
                        if !has_record {
                            return Err(Error::bad_source(
                                url,
                                Position::default(),
                                "has no header row; nothing to import",
                            ));
                        }
                        (csv::header_names(&records, url)?, false)
                    }
                };
                details.insert("header".into(), json!(self.options.columns.is_none()));
                (
                    Parser::Csv {
                        records,
                        sizes: vec![self.options.batch_rows * 8; names.len()],
                        pending_first,
                    },
                    names,
                    false,
                )
            }
            SourceFormat::JsonLines => {
                let names = jsonl::sniff_columns(&text.sample);
                if names.is_empty() {
                    return Err(Error::bad_source(
                        url,
                        Position::default(),
                        "has no JSON object with keys in its first lines; is it JSON lines (one object per line)?",
                    ));
                }
                csv::check_unique(&names, url)?;
                let j = jsonl::JsonLines::new(
                    text.sample,
                    text.rest,
                    names.clone(),
                    self.options.max_record_bytes,
                    url,
                );
                (Parser::Json(Box::new(j)), names, true)
            }
            SourceFormat::Parquet => {
                return Err(Error::internal("open parser", "parquet handled above"));
            }
        };
        if let Some(p) = pinned {
            p.check_columns(&names, url)?;
            details.insert(
                "typed_columns".into(),
                json!(p.columns.iter().map(|(n, _)| n).collect::<Vec<_>>()),
            );
        }
        let fields = names
            .iter()
            .map(|n| match pinned {
                Some(p) => p.field(n, nullable),
                None => Field::new(n, DataType::Utf8, nullable),
            })
            .collect();
        Ok((parser, names, fields, details))
    }
}

/// Where a conversion writes: the pending version and the options that shape the batches.
struct ConvertTarget {
    handle: Handle,
    registry: Registry,
    pending: PendingVersion,
    options: ImportOptions,
}

impl ConvertTarget {
    /// Streams every chunk of `parser` into the pending version's parts, lineage appended.
    fn convert(
        &self,
        mut parser: Parser,
        names: &[String],
        source_fields: Vec<Field>,
        mut details: BTreeMap<String, serde_json::Value>,
        lineage: &Lineage,
        url: &str,
    ) -> std::result::Result<Converted, (Error, Vec<String>)> {
        let mut fields = source_fields;
        fields.extend(lineage.fields());
        let schema: SchemaRef = Arc::new(Schema::new(fields));
        // Batches carry every column but the deferred one, which the writer fills in.
        let deferred: Vec<(usize, Deferred)> = lineage
            .deferred()
            .and_then(|(name, d)| schema.index_of(name).ok().map(|i| (i, d)))
            .into_iter()
            .collect();
        let batch_schema: SchemaRef = Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .enumerate()
                .filter(|(i, _)| !deferred.iter().any(|(d, _)| d == i))
                .map(|(_, f)| f.as_ref().clone())
                .collect::<Vec<_>>(),
        ));
        let part_writer = writer::PartWriter::new(
            self.handle.clone(),
            self.registry.lake().clone(),
            self.pending.clone(),
            schema.clone(),
            writer::writer_properties(
                TOOL,
                &no_statistics(&schema, lineage),
                &[lineage::ROW_NUMBER],
            ),
            deferred,
        );
        let mut bad = BadRows {
            rows: Vec::new(),
            limit: self.options.max_bad_rows,
            url: url.to_string(),
        };
        let pinned = self.options.schema.clone();
        let batch_rows = self.options.batch_rows;
        let files = writer::write_with(part_writer, |tx| {
            parse_all(
                &mut parser,
                names,
                pinned.as_ref(),
                batch_rows,
                &mut bad,
                tx,
                url,
                (lineage, &batch_schema),
            )
        })?;
        details.insert("bad_rows".into(), json!(bad.rows.len()));
        Ok(Converted {
            files,
            schema,
            bad_rows: bad.rows,
            details,
        })
    }
}

/// The parser loop: reads every row, appends lineage, sends batches to the writer.
#[allow(clippy::too_many_arguments)]
fn parse_all(
    parser: &mut Parser,
    names: &[String],
    pinned: Option<&PinnedSchema>,
    batch_rows: usize,
    bad: &mut BadRows,
    tx: &SyncSender<RecordBatch>,
    url: &str,
    (lineage, schema): (&Lineage, &SchemaRef),
) -> Result<()> {
    loop {
        let chunk = match parser {
            Parser::Csv {
                records,
                sizes,
                pending_first,
            } => csv_chunk(records, sizes, pending_first, names, batch_rows, bad, url)?,
            Parser::Json(j) => j.next_chunk(batch_rows, &mut |b| bad.push(b))?,
            Parser::Parquet(p) => p.next_chunk()?,
            Parser::Rows(r) => r.next_chunk(batch_rows, CHUNK_BYTES)?,
        };
        let Some(chunk) = chunk else { return Ok(()) };
        let chunk = match pinned {
            Some(p) => {
                let (chunk, rejected) = p.apply(chunk, names)?;
                for r in rejected {
                    bad.push(r)?;
                }
                chunk
            }
            None => chunk,
        };
        if chunk.rows() == 0 {
            continue;
        }
        let mut columns = chunk.columns;
        columns.extend(lineage.columns(&chunk.row_numbers));
        let batch = RecordBatch::try_new(schema.clone(), columns)
            .map_err(|e| Error::internal("assemble batch", e))?;
        if tx.send(batch).is_err() {
            // The writer stopped; its own error is reported.
            return Ok(());
        }
    }
}

/// Bytes of column data per chunk before it is cut, whatever the row count.
const CHUNK_BYTES: usize = 4 << 20;

fn csv_chunk(
    records: &mut csv::CsvRecords,
    sizes: &mut [usize],
    pending_first: &mut bool,
    names: &[String],
    batch_rows: usize,
    bad: &mut BadRows,
    url: &str,
) -> Result<Option<Chunk>> {
    let ncols = sizes.len();
    let mut cols = StringColumns::with_value_capacity(sizes, batch_rows);
    let mut row_numbers: Vec<i64> = Vec::with_capacity(batch_rows);
    if std::mem::take(pending_first) {
        // Without a header the record read while opening is data row 1.
        match records.ragged(ncols, records.delimiter()) {
            Some(b) => bad.push(b)?,
            None => {
                records.append_to(&mut cols);
                cols.end_row();
                row_numbers.push(records.row() as i64);
            }
        }
    }
    records.read_rows(
        &mut cols,
        &mut row_numbers,
        batch_rows,
        CHUNK_BYTES,
        &mut |b| bad.push(b),
    )?;
    if cols.rows() == 0 {
        return Ok(None);
    }
    let columns = cols.finish(names, &row_numbers, url)?;
    Ok(Some(Chunk {
        columns,
        row_numbers: Int64Array::from(row_numbers),
    }))
}

/// Columns written without min/max statistics: raw text and constant lineage (see
/// [`writer::writer_properties`]). Typed columns (pinned or from Parquet) keep theirs.
fn no_statistics<'a>(schema: &'a Schema, lineage: &Lineage) -> Vec<&'a str> {
    let constant = lineage.constant_columns();
    schema
        .fields()
        .iter()
        .filter(|f| *f.data_type() == DataType::Utf8 || constant.contains(&f.name().as_str()))
        .map(|f| f.name().as_str())
        .collect()
}
