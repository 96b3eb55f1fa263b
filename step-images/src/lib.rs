//! # medallion-steps
//!
//! The step contract shared by every step binary (DESIGN.md §3), so each `src/bin/<step>.rs`
//! stays a thin parse-call-report wrapper:
//! - [`init_logging`]: JSON logs on stderr (tracing), level from `RUST_LOG` (default `info`);
//! - [`StepOutputs`]: one file per output parameter under `--outputs-dir`, for Argo's
//!   `valueFrom.path`, and the same values as one JSON line on stdout (the last line);
//! - [`exit_with`]: maps a library error to the contract's exit codes (0 done, 1 retryable,
//!   2 bad input, 3 precondition) after printing it as one line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use medallion_lake::{Classified, Error, ErrorClass};
use serde_json::Value;

pub mod apply_gate;
pub mod connect;
pub mod deploy;
pub mod import;
pub mod kube_apply;
pub mod kubeconfig;
pub mod local_endpoint;
pub mod profile;
pub mod refine;
pub mod release;
pub mod train;

/// JSON logs to stderr; `RUST_LOG` filters (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();
}

/// A step's output parameters.
#[derive(Debug, Default)]
pub struct StepOutputs {
    values: BTreeMap<String, Value>,
}

impl StepOutputs {
    pub fn new() -> StepOutputs {
        StepOutputs::default()
    }

    pub fn set(&mut self, name: &str, value: impl Into<Value>) -> &mut Self {
        self.values.insert(name.to_string(), value.into());
        self
    }

    /// Writes `<dir>/<name>` for every output (strings raw, everything else as JSON), each
    /// atomically (temp file + rename) so Argo never reads half a value, then prints the JSON
    /// summary line on stdout.
    pub fn emit(&self, dir: &Path) -> Result<(), Error> {
        self.emit_quiet(dir, &[])
    }

    /// Like [`Self::emit`], leaving the `large` outputs (whole documents) out of the stdout line.
    pub fn emit_quiet(&self, dir: &Path, large: &[&str]) -> Result<(), Error> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("create outputs dir", dir, &e))?;
        for (name, value) in &self.values {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let path = dir.join(name);
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, text).map_err(|e| io_error("write output", &tmp, &e))?;
            std::fs::rename(&tmp, &path).map_err(|e| io_error("write output", &path, &e))?;
        }
        let summary: BTreeMap<&String, &Value> = self
            .values
            .iter()
            .filter(|(k, _)| !large.contains(&k.as_str()))
            .collect();
        println!("{}", serde_json::to_string(&summary).unwrap_or_default());
        Ok(())
    }
}

fn io_error(op: &'static str, path: &Path, e: &std::io::Error) -> Error {
    Error::LocalIo {
        op,
        path: path.display().to_string(),
        message: e.to_string(),
        class: ErrorClass::Transient,
    }
}

/// The outputs directory default from DESIGN.md.
pub fn default_outputs_dir() -> PathBuf {
    PathBuf::from("/tmp/outputs")
}

/// Logs and prints the error as one line on stderr and returns its exit code.
pub fn exit_with(step: &str, err: &dyn Classified) -> ExitCode {
    let class = err.class();
    tracing::error!(step, class = ?class, exit_code = class.exit_code(), "{err}");
    eprintln!("{step}: error: {err}");
    ExitCode::from(class.exit_code())
}

/// The async runtime steps use: two workers (the steps' own heavy work runs on blocking threads).
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal {
            context: "start the async runtime",
            message: e.to_string(),
        })
}

/// The whole life of a step binary after argument parsing: JSON logs, the runtime, the work,
/// the outputs (`large` ones kept out of the stdout line), and the exit code.
pub fn run_step<T, E, Fut>(
    step: &str,
    outputs_dir: &Path,
    large: &[&str],
    work: Fut,
    outputs: impl FnOnce(&T) -> StepOutputs,
) -> ExitCode
where
    Fut: std::future::Future<Output = Result<T, E>>,
    E: Classified + From<Error>,
{
    run_step_gated(step, outputs_dir, large, work, outputs, |_| None)
}

/// [`run_step`] for steps whose work can succeed yet fail a gate: the outputs are written (so a
/// person can see why), then `gate` returning a message makes the exit code 3 (precondition).
pub fn run_step_gated<T, E, Fut>(
    step: &str,
    outputs_dir: &Path,
    large: &[&str],
    work: Fut,
    outputs: impl FnOnce(&T) -> StepOutputs,
    gate: impl FnOnce(&T) -> Option<String>,
) -> ExitCode
where
    Fut: std::future::Future<Output = Result<T, E>>,
    E: Classified + From<Error>,
{
    init_logging();
    let result = runtime()
        .map_err(E::from)
        .and_then(|rt| rt.block_on(work))
        .and_then(|done| {
            outputs(&done)
                .emit_quiet(outputs_dir, large)
                .map_err(E::from)
                .map(|()| done)
        });
    match result {
        Ok(done) => match gate(&done) {
            None => ExitCode::SUCCESS,
            Some(message) => {
                let code = ErrorClass::Precondition.exit_code();
                tracing::error!(step, exit_code = code, "{message}");
                eprintln!("{step}: error: {message}");
                ExitCode::from(code)
            }
        },
        Err(e) => exit_with(step, &e),
    }
}
