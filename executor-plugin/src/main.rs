//! `medallion-plugin`: Medallion's Argo executor plugin (a sidecar of the workflow's agent pod).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use medallion_argo::parse_go_duration;
use medallion_lake::StoreLocation;
use medallion_plugin::config::{DEFAULT_MAX_BODY, DEFAULT_PORT, DEFAULT_TOKEN_FILE};
use medallion_plugin::{Config, server};

/// Serves Argo's agent on POST /api/v1/template.execute: approval gates, registry look-ups and
/// quality checks for templates with `plugin: {medallion: ...}`.
#[derive(Debug, Parser)]
#[command(name = "medallion-plugin", version)]
struct Args {
    /// Port to listen on (the one declared in plugin.yaml).
    #[arg(long, env = "MEDALLION_PLUGIN_PORT", default_value_t = DEFAULT_PORT)]
    port: u16,
    /// Address to bind; the agent calls the sidecar on localhost.
    #[arg(long, env = "MEDALLION_PLUGIN_BIND", default_value = "127.0.0.1")]
    bind: IpAddr,
    /// The file holding the agent's bearer token.
    #[arg(long, env = "MEDALLION_PLUGIN_TOKEN_FILE", default_value = DEFAULT_TOKEN_FILE)]
    token_file: PathBuf,
    /// The lake this plugin serves (local path, az://, abfss://, https://...).
    #[arg(long, env = "MEDALLION_LAKE")]
    lake: String,
    /// Largest request body accepted.
    #[arg(long, env = "MEDALLION_PLUGIN_MAX_BODY", default_value_t = DEFAULT_MAX_BODY)]
    max_body_bytes: usize,
    /// How long look-ups of the latest version or an alias are cached (Go duration).
    #[arg(long, env = "MEDALLION_PLUGIN_CACHE_TTL", default_value = "5s")]
    cache_ttl: String,
    /// How often a waiting approval is called again (Go duration).
    #[arg(long, env = "MEDALLION_PLUGIN_REQUEUE", default_value = "30s")]
    requeue: String,
    /// How long an approval waits for a person before failing (Go duration).
    #[arg(long, env = "MEDALLION_PLUGIN_APPROVAL_TIMEOUT", default_value = "24h")]
    approval_timeout: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    medallion_steps::init_logging();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("medallion-plugin: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let duration = |flag: &str, text: &str| {
        parse_go_duration(text).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
    };
    let config = Config {
        listen: SocketAddr::new(args.bind, args.port),
        token_file: args.token_file,
        lake: StoreLocation::open("lake", &args.lake)?,
        max_body: args.max_body_bytes,
        cache_ttl: duration("cache-ttl", &args.cache_ttl)?,
        default_requeue: duration("requeue", &args.requeue)?,
        default_approval_timeout: duration("approval-timeout", &args.approval_timeout)?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {}: {e}; pick another --port",
                    config.listen
                )
            })?;
        let state = server::AppState::new(config);
        if let Err(e) = state.token.accepts(b"") {
            tracing::warn!("{e}; requests get 503 until it is readable");
        }
        tracing::info!(
            listen = %state.config.listen,
            lake = %state.config.lake.url(),
            version = env!("CARGO_PKG_VERSION"),
            "medallion-plugin ready"
        );
        server::serve(listener, state, shutdown_signal()).await?;
        tracing::info!("medallion-plugin stopped");
        Ok(())
    })
}

/// SIGTERM (Kubernetes) or Ctrl-C.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
