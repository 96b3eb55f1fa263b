//! The import step: parameters and the call into the lake library.

use std::path::PathBuf;
use std::sync::Arc;

use medallion_connect::record::{self, ConnectionSpec};
use medallion_connect::{Error as ConnectError, postgres, sf_query};
use medallion_lake::ingest::rows::{OpenRows, RowSource, RowsImportRequest};
use medallion_lake::ingest::{
    self, ImportOptions, ImportOutcome, ImportProgress, ImportRequest, SourceFormat,
    csv::parse_dialect_char, pinned::PinnedSchema,
};
use medallion_lake::{DatasetName, Error, Registry, SourceIdentity, StoreLocation, WorkflowRef};

use crate::StepOutputs;

/// The import step's parameters (the template's input parameters, one to one).
#[derive(clap::Args, Debug, Clone)]
pub struct ImportArgs {
    /// Lake root: a local path, file://, az://container/prefix, abfss://... or https://<account>.blob.core.windows.net/container/prefix
    #[arg(long, env = "MEDALLION_LAKE")]
    pub lake: String,
    /// Dataset name (lowercase letters, digits, - and _)
    #[arg(long, env = "MEDALLION_DATASET")]
    pub dataset: String,
    /// Source: a local path or a blob URL (the Event Grid data.url form works as is)
    #[arg(
        long,
        env = "MEDALLION_SOURCE",
        required_unless_present = "connection",
        conflicts_with = "connection"
    )]
    pub source: Option<String>,
    /// A registered connection (medallion-connect) to read --query from instead of a file
    #[arg(long, env = "MEDALLION_CONNECTION", requires = "query")]
    pub connection: Option<String>,
    /// The SELECT to import through --connection (one statement; run read-only)
    #[arg(long, env = "MEDALLION_QUERY", requires = "connection")]
    pub query: Option<String>,
    /// The snapshot a query reads (a watermark, the run's scheduled time): connection + query +
    /// snapshot imports once, so a retried step does not add a version. Default: the start time
    #[arg(long, env = "MEDALLION_SNAPSHOT")]
    pub snapshot: Option<String>,
    /// Where to write one file per output parameter
    #[arg(long, env = "MEDALLION_OUTPUTS_DIR", default_value = "/tmp/outputs")]
    pub outputs_dir: PathBuf,
    /// Source format; by default from the file name (.csv, .tsv, .jsonl, .ndjson, .parquet, with .gz/.zst)
    #[arg(long, env = "MEDALLION_FORMAT")]
    pub format: Option<String>,
    /// CSV delimiter (one character or 'tab'); sniffed when absent
    #[arg(long, env = "MEDALLION_DELIMITER")]
    pub delimiter: Option<String>,
    /// CSV quote character
    #[arg(long, env = "MEDALLION_QUOTE", default_value = "\"")]
    pub quote: String,
    /// Source character encoding (e.g. windows-1252, latin1, utf-16le); UTF-8 when absent
    #[arg(long, env = "MEDALLION_ENCODING")]
    pub encoding: Option<String>,
    /// Column names for a CSV without a header row, comma-separated
    #[arg(long, env = "MEDALLION_COLUMNS", value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// YAML file pinning column types (typed bronze); values that do not fit are bad rows
    #[arg(long, env = "MEDALLION_SCHEMA")]
    pub schema: Option<PathBuf>,
    /// Bad rows (ragged, untypeable) allowed; they go to quarantine. One more fails the import
    #[arg(long, env = "MEDALLION_MAX_BAD_ROWS", default_value_t = 0)]
    pub max_bad_rows: u64,
    /// Largest record (CSV) or line (JSON) in bytes
    #[arg(long, env = "MEDALLION_MAX_RECORD_BYTES", default_value_t = 64 << 20)]
    pub max_record_bytes: usize,
    /// Record a version with zero rows instead of failing on a header-only file
    #[arg(long, env = "MEDALLION_ALLOW_EMPTY")]
    pub allow_empty: bool,
}

impl ImportArgs {
    /// Arguments from command-line flags, with the binary's defaults for the rest (and its
    /// `MEDALLION_*` environment fallbacks).
    pub fn from_flags<I, T>(flags: I) -> Result<ImportArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString>,
    {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            args: ImportArgs,
        }
        let argv = std::iter::once(std::ffi::OsString::from("medallion-import"))
            .chain(flags.into_iter().map(Into::into));
        <Flags as clap::Parser>::try_parse_from(argv).map(|f| f.args)
    }

    /// The library options these arguments ask for.
    pub fn options(&self) -> Result<ImportOptions, Error> {
        let args = self;
        Ok(ImportOptions {
            format: match &args.format {
                None => None,
                Some(f) => Some(SourceFormat::parse(f).ok_or_else(|| Error::InvalidName {
                    what: "format",
                    name: f.clone(),
                    reason: "use csv, jsonl or parquet",
                })?),
            },
            delimiter: args
                .delimiter
                .as_deref()
                .map(|d| parse_dialect_char("delimiter", d))
                .transpose()?,
            quote: parse_dialect_char("quote", &args.quote)?,
            encoding: args.encoding.clone(),
            columns: args.columns.clone(),
            schema: args.schema.as_deref().map(PinnedSchema::load).transpose()?,
            max_bad_rows: args.max_bad_rows,
            max_record_bytes: args.max_record_bytes.max(1024),
            allow_empty: args.allow_empty,
            ..ImportOptions::default()
        })
    }
}

/// Runs the import these arguments describe.
pub async fn run(
    args: &ImportArgs,
    progress: Option<Arc<ImportProgress>>,
) -> Result<ImportOutcome, ConnectError> {
    let registry = Registry::new(StoreLocation::open("lake", &args.lake)?);
    let (Some(source), None) = (&args.source, &args.connection) else {
        return import_query(&registry, args, progress).await;
    };
    if ingest::parts::is_parts_folder(source) {
        // A folder of Parquet parts (e.g. a day of request capture) is copied as it is.
        return Ok(ingest::parts::import_parts(
            &registry,
            &DatasetName::new(&args.dataset)?,
            source,
            WorkflowRef::from_env(),
        )
        .await?);
    }
    let request = ImportRequest {
        dataset: DatasetName::new(&args.dataset)?,
        source: source.clone(),
        options: args.options()?,
        workflow: WorkflowRef::from_env(),
        progress,
    };
    Ok(ingest::import(&registry, request).await?)
}

/// `--connection --query`: the query's rows streamed into a new bronze version.
async fn import_query(
    registry: &Registry,
    args: &ImportArgs,
    progress: Option<Arc<ImportProgress>>,
) -> Result<ImportOutcome, ConnectError> {
    let (Some(name), Some(query)) = (&args.connection, &args.query) else {
        return Err(ConnectError::invalid(
            "medallion-import",
            "pass --source <file or URL>, or --connection <name> with --query <SELECT ...>",
        ));
    };
    let options = args.options()?;
    if options.schema.is_some() || options.format.is_some() || options.columns.is_some() {
        return Err(ConnectError::invalid(
            "--connection",
            "--schema, --format and --columns apply to files; a query's columns keep their database types",
        ));
    }
    let connection = record::load(registry.lake(), name).await?;
    let snapshot = args
        .snapshot
        .clone()
        .unwrap_or_else(|| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    let rows_per_fetch = options.batch_rows;
    let (name, query) = (name.clone(), query.clone());
    let (url, open): (String, OpenRows) = match connection.spec.clone() {
        ConnectionSpec::Postgres(spec) => {
            let url = postgres::query_url(&name, &spec, &query);
            let source = url.clone();
            let open: OpenRows = Box::new(move |handle| {
                let opened = handle.block_on(async {
                    let session = postgres::PgSession::connect(&name, &spec).await?;
                    session
                        .open_query(&query, rows_per_fetch, &source, handle.clone())
                        .await
                });
                match opened {
                    Ok(q) => Ok(Box::new(q) as Box<dyn RowSource>),
                    Err(e) => Err(e.into_lake(&source)),
                }
            });
            (url, open)
        }
        ConnectionSpec::Snowflake(spec) => {
            let url = sf_query::query_url(&name, &spec, &query);
            let source = url.clone();
            let request_id = sf_query::request_id(&format!("{url}#{snapshot}"));
            let open: OpenRows = Box::new(move |handle| {
                let opened = handle.block_on(sf_query::SfQuery::open(
                    &name,
                    &spec,
                    &query,
                    &source,
                    &request_id,
                    handle.clone(),
                ));
                match opened {
                    Ok(q) => Ok(Box::new(q) as Box<dyn RowSource>),
                    Err(e) => Err(e.into_lake(&source)),
                }
            });
            (url, open)
        }
        other => {
            return Err(ConnectError::invalid(
                "--connection",
                format!(
                    "'{name}' is a {} connection; --query needs a postgres or snowflake connection (import files from a blob container with --source)",
                    other.kind()
                ),
            ));
        }
    };
    let identity = SourceIdentity {
        url,
        etag: Some(snapshot),
        sha256: None,
        size: 0,
        last_modified: None,
    };
    let request = RowsImportRequest {
        dataset: DatasetName::new(&args.dataset)?,
        identity,
        open,
        options,
        workflow: WorkflowRef::from_env(),
        progress,
    };
    Ok(ingest::rows::import_rows(registry, request).await?)
}

/// The step's output parameters for an outcome.
pub fn outputs(outcome: &ImportOutcome) -> StepOutputs {
    let m = &outcome.manifest;
    let mut out = StepOutputs::new();
    out.set("version", m.version)
        .set("rows", m.rows)
        .set("uri", outcome.uri.clone())
        .set("created", outcome.created)
        .set("bad-rows", m.quarantine.as_ref().map_or(0, |q| q.rows));
    out
}
