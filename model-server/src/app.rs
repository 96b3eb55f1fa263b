//! The HTTP routes of the V2 protocol, `/metrics`, and the serving state.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use medallion_model::ModelFile;
use medallion_model::rng::Rng;
use serde_json::json;
use tokio::sync::mpsc;

use crate::capture::Sample;
use crate::metrics::Metrics;
use crate::v2::{self, BadRequest};

/// The model being served, once loaded.
pub struct Loaded {
    pub model: Arc<ModelFile>,
    pub version: String,
}

pub struct AppState {
    pub loaded: OnceLock<Loaded>,
    /// The name in the URL (the model's name).
    pub name: String,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    pub max_rows: usize,
    pub capture_fraction: f64,
    pub capture: Mutex<Option<mpsc::Sender<Sample>>>,
    rng: Mutex<Rng>,
}

impl AppState {
    pub fn new(
        name: String,
        max_body_bytes: usize,
        max_rows: usize,
        capture_fraction: f64,
    ) -> AppState {
        AppState {
            loaded: OnceLock::new(),
            name,
            metrics: Arc::new(Metrics::default()),
            max_body_bytes,
            max_rows,
            capture_fraction,
            capture: Mutex::new(None),
            rng: Mutex::new(Rng::new(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(7, |d| d.as_nanos() as u64),
            )),
        }
    }

    fn sampled(&self) -> bool {
        self.capture_fraction > 0.0
            && self
                .rng
                .lock()
                .map(|mut r| r.next_f64() < self.capture_fraction)
                .unwrap_or(false)
    }
}

type Shared = Arc<AppState>;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({"error": message.into()}).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn ok_json(value: serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn counted(state: &AppState, route: &'static str, r: Response) -> Response {
    state.metrics.request(route, r.status().as_u16());
    r
}

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2", get(server_metadata))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(model_version_metadata),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(model_version_ready),
        )
        .route("/v2/models/{name}/infer", post(infer))
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(infer_version),
        )
        .route("/metrics", get(metrics))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such route; see /v2 and /v2/models/{name}",
            )
        })
        .with_state(state)
}

async fn live(State(s): State<Shared>) -> Response {
    counted(&s, "live", ok_json(json!({"live": true})))
}

async fn ready(State(s): State<Shared>) -> Response {
    let r = if s.loaded.get().is_some() {
        ok_json(json!({"ready": true}))
    } else {
        error(StatusCode::SERVICE_UNAVAILABLE, "the model is loading")
    };
    counted(&s, "ready", r)
}

async fn server_metadata(State(s): State<Shared>) -> Response {
    counted(
        &s,
        "server_metadata",
        ok_json(
            json!({"name": "medallion-serve", "version": env!("CARGO_PKG_VERSION"), "extensions": ["binary_tensor_data"]}),
        ),
    )
}

/// The loaded model when `name` (and `version`, if given) match; else the error response.
#[allow(clippy::result_large_err)] // the error is the HTTP response itself, built once per failed request
fn resolve<'a>(s: &'a AppState, name: &str, version: Option<&str>) -> Result<&'a Loaded, Response> {
    let Some(loaded) = s.loaded.get() else {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the model is loading",
        ));
    };
    if name != s.name {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("unknown model {name}; this server serves {}", s.name),
        ));
    }
    if let Some(v) = version
        && v != loaded.version
    {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!(
                "model {name} has no version {v} here; this server serves version {}",
                loaded.version
            ),
        ));
    }
    Ok(loaded)
}

fn metadata_response(s: &AppState, name: &str, version: Option<&str>) -> Response {
    match resolve(s, name, version) {
        Ok(l) => ok_json(v2::metadata(&l.model, &l.version)),
        Err(r) => r,
    }
}

async fn model_metadata(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    counted(&s, "model_metadata", metadata_response(&s, &name, None))
}

async fn model_version_metadata(
    State(s): State<Shared>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    counted(
        &s,
        "model_metadata",
        metadata_response(&s, &name, Some(&version)),
    )
}

fn ready_response(s: &AppState, name: &str, version: Option<&str>) -> Response {
    match resolve(s, name, version) {
        Ok(_) => ok_json(json!({"name": name, "ready": true})),
        Err(r) => r,
    }
}

async fn model_ready(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    counted(&s, "model_ready", ready_response(&s, &name, None))
}

async fn model_version_ready(
    State(s): State<Shared>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    counted(&s, "model_ready", ready_response(&s, &name, Some(&version)))
}

async fn metrics(State(s): State<Shared>) -> Response {
    let (version, ready) = s
        .loaded
        .get()
        .map_or((String::new(), false), |l| (l.version.clone(), true));
    let text = s.metrics.render(&s.name, &version, ready);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}

async fn infer(
    State(s): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    infer_common(s, name, None, headers, body).await
}

async fn infer_version(
    State(s): State<Shared>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    infer_common(s, name, Some(version), headers, body).await
}

async fn infer_common(
    s: Shared,
    name: String,
    version: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let r = match infer_inner(&s, &name, version.as_deref(), &headers, body).await {
        Ok(r) => r,
        Err(r) => r,
    };
    s.metrics.latency(started.elapsed().as_secs_f64());
    counted(&s, "infer", r)
}

async fn infer_inner(
    s: &AppState,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Response> {
    let loaded = resolve(s, name, version)?;
    let bad = |e: BadRequest| error(StatusCode::BAD_REQUEST, e.0);
    let bytes = axum::body::to_bytes(body, s.max_body_bytes).await.map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            format!("the request body is over the limit of {} bytes (or was cut off); send smaller batches", s.max_body_bytes),
        )
    })?;
    let header_len = match headers.get("inference-header-content-length") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|t| t.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    error(
                        StatusCode::BAD_REQUEST,
                        "Inference-Header-Content-Length is not a number",
                    )
                })?,
        ),
        None => None,
    };
    let (req, binary) = v2::parse(&bytes, header_len).map_err(bad)?;
    v2::check_outputs(&loaded.model, &req).map_err(bad)?;
    let frame = v2::frame_of(&loaded.model, &req, binary, s.max_rows).map_err(bad)?;
    let predictions = loaded
        .model
        .predict(&frame)
        .map_err(|m| error(StatusCode::BAD_REQUEST, m))?;
    s.metrics
        .rows
        .fetch_add(frame.rows as u64, Ordering::Relaxed);
    let binary_out = v2::wants_binary(&req);
    let (out, header_len) = v2::response(
        &loaded.model,
        &loaded.version,
        req.id.as_deref(),
        &predictions,
        binary_out,
    );
    if s.sampled()
        && let Ok(guard) = s.capture.lock()
        && let Some(tx) = guard.as_ref()
    {
        let rows = frame.rows as u64;
        let sample = Sample {
            frame,
            outputs: predictions,
            at: chrono::Utc::now(),
        };
        if tx.try_send(sample).is_err() {
            s.metrics
                .capture_dropped_rows
                .fetch_add(rows, Ordering::Relaxed);
        }
    }
    let mut resp = Response::new(Body::from(out));
    let h = resp.headers_mut();
    match header_len {
        Some(n) => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(v) = HeaderValue::from_str(&n.to_string()) {
                h.insert("inference-header-content-length", v);
            }
        }
        None => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
    }
    Ok(resp)
}
