//! # medallion-serve
//!
//! Serves one model version from the lake over the KServe V2 / Open Inference Protocol (HTTP):
//! health, server and model metadata, inference with JSON or binary tensors, `/metrics`,
//! sampled request capture to the lake, graceful shutdown on SIGTERM.

pub mod app;
pub mod capture;
pub mod metrics;
pub mod v2;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use medallion_lake::{DatasetName, Registry, StoreLocation};
use medallion_model::train::load_model;

use crate::app::{AppState, Loaded};

/// Which version to serve.
#[derive(Debug, Clone)]
pub enum Which {
    Version(u64),
    Alias(String),
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub lake: String,
    pub model: String,
    pub which: Which,
    pub addr: SocketAddr,
    pub endpoint: Option<String>,
    pub max_body_bytes: usize,
    pub max_rows: usize,
    pub capture_fraction: f64,
    pub capture_batch_rows: usize,
    pub capture_flush: Duration,
}

/// Resolves and loads the model version.
pub async fn load(
    registry: &Registry,
    model: &DatasetName,
    which: &Which,
) -> Result<(u64, medallion_model::ModelFile), medallion_model::Error> {
    let version = match which {
        Which::Version(v) => *v,
        Which::Alias(a) => {
            let alias = DatasetName::new(a)?;
            medallion_release::models::alias(registry.lake(), model, &alias)
                .await?
                .ok_or_else(|| {
                    medallion_model::Error::data(
                        format!("model {model}"),
                        format!("has no alias {a}; move it with `medallion model alias {model} {a} --version N`"),
                    )
                })?
                .version
        }
    };
    let (_, file) = load_model(registry, model, version).await?;
    Ok((version, file))
}

/// Binds, loads the model (ready after), serves until SIGTERM/SIGINT, then finishes in-flight
/// requests and flushes the capture.
pub async fn serve(cfg: ServeConfig) -> Result<(), medallion_model::Error> {
    let model_name = DatasetName::new(&cfg.model)?;
    let lake = StoreLocation::open("lake", &cfg.lake)?;
    let registry = Registry::new(lake.clone());
    let state = Arc::new(AppState::new(
        cfg.model.clone(),
        cfg.max_body_bytes,
        cfg.max_rows,
        cfg.capture_fraction,
    ));
    let listener = tokio::net::TcpListener::bind(cfg.addr).await.map_err(|e| {
        medallion_model::Error::data(
            format!("listen address {}", cfg.addr),
            format!("cannot bind ({e}); choose another --port"),
        )
    })?;
    tracing::info!(addr = %cfg.addr, model = %model_name, "listening; loading the model");
    let server_state = state.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app::router(server_state).into_make_service())
            .with_graceful_shutdown(shutdown_signal())
            .await
    });
    let started = std::time::Instant::now();
    let (version, file) = match load(&registry, &model_name, &cfg.which).await {
        Ok(x) => x,
        Err(e) => {
            server.abort();
            return Err(e);
        }
    };
    let model = Arc::new(file);
    let mut capture_task = None;
    if cfg.capture_fraction > 0.0 {
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        if let Ok(mut c) = state.capture.lock() {
            *c = Some(tx);
        }
        let ccfg = capture::CaptureConfig {
            lake: lake.clone(),
            endpoint: cfg.endpoint.clone().unwrap_or_else(|| cfg.model.clone()),
            version: version.to_string(),
            batch_rows: cfg.capture_batch_rows,
            flush_every: cfg.capture_flush,
        };
        capture_task = Some(tokio::spawn(capture::run(
            rx,
            model.clone(),
            ccfg,
            state.metrics.clone(),
        )));
    }
    let _ = state.loaded.set(Loaded {
        model,
        version: version.to_string(),
    });
    tracing::info!(model = %model_name, version, load_ms = started.elapsed().as_millis() as u64, "model loaded; ready");
    let served = server.await;
    // In-flight requests are done: close the capture queue and let it flush.
    if let Ok(mut c) = state.capture.lock() {
        c.take();
    }
    if let Some(t) = capture_task {
        let _ = t.await;
    }
    tracing::info!("stopped");
    match served {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(medallion_lake::Error::internal("serve http", e).into()),
        Err(e) => Err(medallion_lake::Error::internal("serve http", e).into()),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
