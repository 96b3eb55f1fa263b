//! `medallion-serve`: one model version over the KServe V2 protocol.
//!
//! Exit codes: 0 stopped by SIGTERM/SIGINT, 1 retryable (lake unreachable), 2 bad input (no
//! such model, version or alias; unusable address).

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use medallion_serve::{ServeConfig, Which, serve};

/// Serve a model version from the lake (KServe V2 / Open Inference Protocol over HTTP).
#[derive(Parser, Debug)]
#[command(name = "medallion-serve", version)]
struct Cli {
    /// Lake root (local path or az://, abfss://, https:// URL)
    #[arg(long, env = "MEDALLION_LAKE")]
    lake: String,
    /// Model name
    #[arg(long, env = "MEDALLION_MODEL")]
    model: String,
    /// Version to serve
    #[arg(long, env = "MEDALLION_MODEL_VERSION", conflicts_with = "alias")]
    version: Option<u64>,
    /// Alias to serve (resolved once at start), e.g. production [default: production]
    #[arg(long, env = "MEDALLION_MODEL_ALIAS")]
    alias: Option<String>,
    #[arg(long, env = "MEDALLION_HOST", default_value = "0.0.0.0")]
    host: IpAddr,
    #[arg(long, env = "MEDALLION_PORT", default_value_t = 8080)]
    port: u16,
    /// Endpoint name for the request capture folder (default: the model name)
    #[arg(long, env = "MEDALLION_ENDPOINT")]
    endpoint: Option<String>,
    /// Largest request body accepted (bytes)
    #[arg(long, env = "MEDALLION_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Largest batch accepted (rows)
    #[arg(long, env = "MEDALLION_MAX_BATCH_ROWS", default_value_t = 100_000)]
    max_batch_rows: usize,
    /// Fraction of requests whose rows are captured to <lake>/inference/<endpoint>/ (0 = off)
    #[arg(long, env = "MEDALLION_CAPTURE_FRACTION", default_value_t = 0.0)]
    capture_fraction: f64,
    /// Capture batch size (rows) before a file is written
    #[arg(long, env = "MEDALLION_CAPTURE_BATCH_ROWS", default_value_t = 10_000)]
    capture_batch_rows: usize,
    /// Write captured rows at least this often (seconds)
    #[arg(long, env = "MEDALLION_CAPTURE_FLUSH_SECONDS", default_value_t = 60)]
    capture_flush_seconds: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    medallion_steps::init_logging();
    if !(0.0..=1.0).contains(&cli.capture_fraction) {
        eprintln!(
            "medallion-serve: error: --capture-fraction {} is not in [0, 1]",
            cli.capture_fraction
        );
        return ExitCode::from(2);
    }
    let which = match (cli.version, cli.alias) {
        (Some(v), _) => Which::Version(v),
        (None, Some(a)) => Which::Alias(a),
        (None, None) => Which::Alias("production".into()),
    };
    let cfg = ServeConfig {
        lake: cli.lake,
        model: cli.model,
        which,
        addr: SocketAddr::new(cli.host, cli.port),
        endpoint: cli.endpoint,
        max_body_bytes: cli.max_body_bytes,
        max_rows: cli.max_batch_rows,
        capture_fraction: cli.capture_fraction,
        capture_batch_rows: cli.capture_batch_rows.max(1),
        capture_flush: Duration::from_secs(cli.capture_flush_seconds.max(1)),
    };
    // One thread: inference is microseconds; the lake writes are async.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("medallion-serve: error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => medallion_steps::exit_with("medallion-serve", &e),
    }
}
