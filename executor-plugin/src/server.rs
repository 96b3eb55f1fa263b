//! The HTTP side: `POST /api/v1/template.execute` as Argo's agent sends it.
//!
//! | request | reply |
//! |---|---|
//! | no or wrong `Authorization: Bearer` token | 403, empty body |
//! | token file unreadable | 503 (the agent retries), one log line saying why |
//! | body over the limit | 413 |
//! | body is not an `ExecuteTemplateArgs` | 400 with a one-line reason |
//! | template without `plugin.medallion` | 200 `{}` (not ours: the agent asks the next plugin) |
//! | our template, bad arguments | 200, node `Failed` with a message naming the field |
//! | our template, lake unreachable | 503 with the reason (retried by the agent) |
//! | any other path | 404 |

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use medallion_argo::{ExecuteTemplateArgs, ExecuteTemplateReply, NodePhase};
use medallion_lake::Registry;

use crate::actions::{self, ActionError, Call};
use crate::cache::ReplyCache;
use crate::config::Config;
use crate::token::TokenFile;

/// The path Argo's agent calls.
pub const EXECUTE_PATH: &str = "/api/v1/template.execute";
/// This plugin's key under a template's `plugin:`.
pub const PLUGIN_NAME: &str = "medallion";

pub struct AppState {
    pub config: Config,
    pub token: TokenFile,
    pub registry: Registry,
    pub cache: ReplyCache,
}

impl AppState {
    pub fn new(config: Config) -> Arc<AppState> {
        Arc::new(AppState {
            token: TokenFile::new(config.token_file.clone()),
            registry: Registry::new(config.lake.clone()),
            cache: ReplyCache::new(1024),
            config,
        })
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(EXECUTE_PATH, post(execute))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(state)
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Replies are small and latency matters: no Nagle delay.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn execute(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let started = Instant::now();
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    let Some(presented) = presented else {
        return StatusCode::FORBIDDEN.into_response();
    };
    match state.token.accepts(presented) {
        Ok(true) => {}
        Ok(false) => return StatusCode::FORBIDDEN.into_response(),
        Err(e) => {
            tracing::error!(
                "{e}; run the plugin as a user that can read it (runAsUser 8737, or runAsGroup 0)"
            );
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the plugin cannot read its agent token",
            );
        }
    }

    let limit = state.config.max_body;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    let Ok(body) = axum::body::to_bytes(request.into_body(), limit).await else {
        return too_large(limit);
    };
    let args: ExecuteTemplateArgs = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("medallion plugin: the request body is not a template.execute call: {e}"),
            );
        }
    };
    let Some(ours) = args.template.plugin_args(PLUGIN_NAME) else {
        tracing::debug!(template = %args.template.name, "not a medallion template");
        return json(&ExecuteTemplateReply::default());
    };
    let call = Call {
        state: &state,
        workflow: &args.workflow.metadata,
        template: &args.template,
    };
    let action = ours
        .as_object()
        .and_then(|m| m.keys().next().cloned())
        .unwrap_or_default();
    let result = actions::run(call, ours).await;
    let meta = &args.workflow.metadata;
    let micros = started.elapsed().as_micros() as u64;
    match result {
        Ok(reply) => {
            let phase = reply.node.as_ref().map(|n| n.phase.as_str()).unwrap_or("");
            let message = reply
                .node
                .as_ref()
                .map(|n| n.message.as_str())
                .unwrap_or("");
            tracing::info!(
                workflow = %meta.name, namespace = %meta.namespace, uid = %meta.uid,
                template = %args.template.name, action, phase, micros, "{message}"
            );
            json(&reply)
        }
        Err(ActionError::Invalid(message)) => {
            tracing::warn!(
                workflow = %meta.name, namespace = %meta.namespace, uid = %meta.uid,
                template = %args.template.name, action, phase = "Failed", micros, "{message}"
            );
            json(&ExecuteTemplateReply::node(
                NodePhase::Failed,
                message,
                vec![],
            ))
        }
        Err(ActionError::Unavailable(message)) => {
            tracing::warn!(
                workflow = %meta.name, namespace = %meta.namespace, uid = %meta.uid,
                template = %args.template.name, action, status = 503, micros, "{message}"
            );
            text(StatusCode::SERVICE_UNAVAILABLE, &message)
        }
    }
}

fn too_large(limit: usize) -> Response {
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("medallion plugin: the request body is over {limit} bytes"),
    )
}

fn text(status: StatusCode, message: &str) -> Response {
    (status, message.to_string()).into_response()
}

fn json(reply: &ExecuteTemplateReply) -> Response {
    let body = serde_json::to_vec(reply).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
