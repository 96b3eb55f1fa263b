//! The import step: parameters and the call into the lake library.

use std::path::PathBuf;
use std::sync::Arc;

use medallion_lake::ingest::{
    self, ImportOptions, ImportOutcome, ImportProgress, ImportRequest, SourceFormat,
    csv::parse_dialect_char, pinned::PinnedSchema,
};
use medallion_lake::{DatasetName, Error, Registry, StoreLocation, WorkflowRef};

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
    #[arg(long, env = "MEDALLION_SOURCE")]
    pub source: String,
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
) -> Result<ImportOutcome, Error> {
    let registry = Registry::new(StoreLocation::open("lake", &args.lake)?);
    if ingest::parts::is_parts_folder(&args.source) {
        // A folder of Parquet parts (e.g. a day of request capture) is copied as it is.
        return ingest::parts::import_parts(
            &registry,
            &DatasetName::new(&args.dataset)?,
            &args.source,
            WorkflowRef::from_env(),
        )
        .await;
    }
    let request = ImportRequest {
        dataset: DatasetName::new(&args.dataset)?,
        source: args.source.clone(),
        options: args.options()?,
        workflow: WorkflowRef::from_env(),
        progress,
    };
    ingest::import(&registry, request).await
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
