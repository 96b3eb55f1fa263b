//! The kubernetes target of medallion-deploy: a small client for the Kubernetes API that does
//! what a release needs and nothing else:
//!
//! - server-side apply (`PATCH … ?fieldManager=medallion&force=true`,
//!   `application/apply-patch+yaml`) of each planned object, in the plan's order;
//! - waiting for a Deployment's rollout (observedGeneration caught up, every replica updated and
//!   available);
//! - a V2 smoke test through the Service via the API server's service proxy, so the deploy pod
//!   needs no network path to the serving pods, only RBAC on `services/proxy`.
//!
//! It reaches the cluster named by `--kube-api` (and `--kube-token-file`); else, in a pod, with
//! the service account (token and CA under `/var/run/secrets/kubernetes.io/serviceaccount`,
//! `KUBERNETES_SERVICE_HOST/PORT`); else through the kubeconfig's current context
//! (`--kubeconfig`, `KUBECONFIG` or `~/.kube/config`), as every Kubernetes tool does.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use medallion_lake::ErrorClass;
use serde_json::Value;

const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const FIELD_MANAGER: &str = "medallion";

/// Where the API server is and how to authenticate.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct KubeConn {
    /// Kubernetes target: the API server URL (default: in-cluster, from the service account)
    #[arg(long, env = "MEDALLION_KUBE_API")]
    pub kube_api: Option<String>,
    /// Kubernetes target: a file holding the bearer token (default: the service account's)
    #[arg(long, env = "MEDALLION_KUBE_TOKEN_FILE")]
    pub kube_token_file: Option<PathBuf>,
    /// Kubernetes target outside a pod: the kubeconfig whose current context names the cluster
    /// (default: KUBECONFIG, then ~/.kube/config)
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
}

impl KubeConn {
    /// A cluster is configured: an API server URL was given, this runs in a pod, or a
    /// kubeconfig names one.
    pub fn configured(&self) -> bool {
        self.kube_api.is_some()
            || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
            || self.kubeconfig_path().is_some()
    }

    fn kubeconfig_path(&self) -> Option<PathBuf> {
        self.kubeconfig
            .clone()
            .or_else(crate::kubeconfig::default_path)
    }
}

/// The API server, and how long a release waits for its rollout.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct KubeArgs {
    #[command(flatten)]
    pub conn: KubeConn,
    /// Kubernetes target: seconds to wait for the new Deployment's rollout
    #[arg(long, default_value_t = 300)]
    pub rollout_timeout: u64,
}

/// A failure talking to the API server: the message and whether a retry may help.
pub type KubeError = (String, ErrorClass);

pub struct KubeClient {
    http: reqwest::Client,
    base: String,
}

impl KubeClient {
    pub fn new(args: &KubeConn) -> Result<KubeClient, KubeError> {
        medallion_lake::install_tls_provider();
        let bad = |m: String| (m, ErrorClass::BadInput);
        if args.kube_api.is_none() && std::env::var_os("KUBERNETES_SERVICE_HOST").is_none() {
            let path = args.kubeconfig_path().ok_or_else(|| {
                bad("no cluster: pass --kube-api (and --kube-token-file), run in a pod, or give a kubeconfig (--kubeconfig, KUBECONFIG or ~/.kube/config)".into())
            })?;
            let access = crate::kubeconfig::load(&path).map_err(bad)?;
            return KubeClient::from_kubeconfig(&access);
        }
        let in_cluster = args.kube_api.is_none();
        let base = match &args.kube_api {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let host = std::env::var("KUBERNETES_SERVICE_HOST").map_err(|_| {
                    bad("no --kube-api and not in a pod (KUBERNETES_SERVICE_HOST is unset)".into())
                })?;
                let port =
                    std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
                format!("https://{host}:{port}")
            }
        };
        let token_file = args
            .kube_token_file
            .clone()
            .or_else(|| in_cluster.then(|| Path::new(SA_DIR).join("token")));
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(path) = token_file {
            let token = std::fs::read_to_string(&path)
                .map_err(|e| bad(format!("cannot read the token {}: {e}", path.display())))?;
            let mut value =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                    .map_err(|_| {
                        bad(format!(
                            "the token in {} is not a header value",
                            path.display()
                        ))
                    })?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .default_headers(headers);
        if in_cluster {
            let ca = Path::new(SA_DIR).join("ca.crt");
            let pem = std::fs::read(&ca)
                .map_err(|e| bad(format!("cannot read the cluster CA {}: {e}", ca.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| bad(format!("the cluster CA {} is not PEM: {e}", ca.display())))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| bad(format!("HTTP client: {e}")))?;
        Ok(KubeClient { http, base })
    }

    /// A client for the cluster a kubeconfig's current context names.
    fn from_kubeconfig(access: &crate::kubeconfig::ClusterAccess) -> Result<KubeClient, KubeError> {
        let bad = |m: String| (format!("{}: {m}", access.source), ErrorClass::BadInput);
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &access.token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| bad("the token is not a header value".into()))?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .default_headers(headers);
        if let Some(pem) = &access.ca_pem {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| bad(format!("the cluster CA is not PEM: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        if access.insecure_skip_tls_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        if let Some(pem) = &access.client_identity_pem {
            let identity = reqwest::Identity::from_pem(pem)
                .map_err(|e| bad(format!("the client certificate and key: {e}")))?;
            builder = builder.identity(identity);
        }
        let http = builder
            .build()
            .map_err(|e| bad(format!("HTTP client: {e}")))?;
        Ok(KubeClient {
            http,
            base: access.server.clone(),
        })
    }

    /// A client whose requests carry the API credentials (for the smoke test through the proxy).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The API server's proxy URL of a Service port: `…/services/<name>:<port>/proxy`.
    pub fn service_proxy(&self, namespace: &str, service: &str, port: &str) -> String {
        format!(
            "{}/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy",
            self.base
        )
    }

    /// The API server's URL.
    pub fn server(&self) -> &str {
        &self.base
    }

    /// Server-side apply of one object; returns what the API server stored.
    pub async fn apply(&self, object: &Value) -> Result<Value, KubeError> {
        self.apply_patch(object, false).await
    }

    /// Server-side apply with `dryRun=All`: the API server defaults, validates and admits the
    /// object as for a real apply and answers with what it would store, storing nothing.
    pub async fn apply_dry_run(&self, object: &Value) -> Result<Value, KubeError> {
        self.apply_patch(object, true).await
    }

    async fn apply_patch(&self, object: &Value, dry_run: bool) -> Result<Value, KubeError> {
        let path = object_path(object)?;
        let url = format!(
            "{}{path}?fieldManager={FIELD_MANAGER}&force=true{}",
            self.base,
            if dry_run { "&dryRun=All" } else { "" }
        );
        let body = serde_json::to_vec(object).map_err(|e| (e.to_string(), ErrorClass::BadInput))?;
        let response = self
            .http
            .patch(&url)
            .header("content-type", "application/apply-patch+yaml")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| (format!("apply {path}: {e}"), ErrorClass::Transient))?;
        answer(&path, response).await?.ok_or_else(|| {
            (
                format!("apply {path}: the API server answered 404"),
                ErrorClass::BadInput,
            )
        })
    }

    /// POST an object to a collection (a SubjectAccessReview); returns the API's answer.
    pub async fn create(&self, path: &str, body: &Value) -> Result<Value, KubeError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("accept", "application/json")
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).map_err(|e| (e.to_string(), ErrorClass::BadInput))?)
            .send()
            .await
            .map_err(|e| (format!("create {path}: {e}"), ErrorClass::Transient))?;
        answer(path, response).await?.ok_or_else(|| {
            (
                format!("create {path}: the API server answered 404"),
                ErrorClass::BadInput,
            )
        })
    }

    /// GET an object; `None` when it does not exist.
    pub async fn get(&self, path: &str) -> Result<Option<Value>, KubeError> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| (format!("get {path}: {e}"), ErrorClass::Transient))?;
        answer(path, response).await
    }

    /// Deletes an object (a Service created by a release that then failed).
    pub async fn delete(&self, path: &str) -> Result<(), KubeError> {
        let response = self
            .http
            .delete(format!("{}{path}", self.base))
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| (format!("delete {path}: {e}"), ErrorClass::Transient))?;
        answer(path, response).await.map(|_| ())
    }

    /// Waits until the Deployment has rolled out as `kubectl rollout status` judges it
    /// ([`rollout_status`]), or `timeout` passes.
    pub async fn wait_rollout(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<(), KubeError> {
        let path = format!("/apis/apps/v1/namespaces/{namespace}/deployments/{name}");
        let started = Instant::now();
        let mut last = String::from("no status yet");
        loop {
            if let Some(d) = self.get(&path).await? {
                match rollout_status(&d) {
                    Rollout::Done => return Ok(()),
                    Rollout::Waiting(why) => last = why,
                    Rollout::Failed(why) => return Err((why, ErrorClass::Transient)),
                }
            }
            if started.elapsed() >= timeout {
                return Err((
                    format!(
                        "deployment {namespace}/{name} did not roll out in {}s ({last})",
                        timeout.as_secs()
                    ),
                    ErrorClass::Transient,
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Where a Deployment's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    Done,
    Waiting(String),
    Failed(String),
}

/// A Deployment's rollout as `kubectl rollout status` judges it (kubernetes/kubectl v0.32.4
/// pkg/polymorphichelpers/rollout_status.go lines 59-92): the controller has observed the
/// current generation; the progress deadline has not passed; every wanted replica is updated;
/// no old replica is still pending termination (status.replicas > updatedReplicas: the old pod
/// may be the only ready one); every updated replica is available. Without spec.replicas (an
/// autoscaler owns the count) the wanted count is not checked, as kubectl does.
pub fn rollout_status(d: &Value) -> Rollout {
    let n = |p: &str| d.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let name = d
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    if n("/metadata/generation") > n("/status/observedGeneration") {
        return Rollout::Waiting("waiting for the deployment spec update to be observed".into());
    }
    let timed_out = d
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("type").and_then(Value::as_str) == Some("Progressing")
                && c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
        });
    if timed_out {
        return Rollout::Failed(format!(
            "deployment {name:?} exceeded its progress deadline"
        ));
    }
    let updated = n("/status/updatedReplicas");
    if let Some(wanted) = d.pointer("/spec/replicas").and_then(Value::as_i64)
        && updated < wanted
    {
        return Rollout::Waiting(format!(
            "{updated} out of {wanted} new replicas have been updated"
        ));
    }
    let replicas = n("/status/replicas");
    if replicas > updated {
        return Rollout::Waiting(format!(
            "{} old replicas are pending termination",
            replicas - updated
        ));
    }
    let available = n("/status/availableReplicas");
    if available < updated {
        return Rollout::Waiting(format!(
            "{available} of {updated} updated replicas are available"
        ));
    }
    Rollout::Done
}

/// The REST path of an object the release plans (Deployment, Service, HorizontalPodAutoscaler).
pub fn object_path(object: &Value) -> Result<String, KubeError> {
    let text = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or("");
    let (api, kind, ns, name) = (
        text("/apiVersion"),
        text("/kind"),
        text("/metadata/namespace"),
        text("/metadata/name"),
    );
    if ns.is_empty() || name.is_empty() {
        return Err((
            format!("{kind} without namespace or name in the plan"),
            ErrorClass::BadInput,
        ));
    }
    let plural = match kind {
        "Deployment" => "deployments",
        "Service" => "services",
        "HorizontalPodAutoscaler" => "horizontalpodautoscalers",
        other => {
            return Err((
                format!("the plan holds a {other}, which the kubernetes target does not apply"),
                ErrorClass::BadInput,
            ));
        }
    };
    let group = if api.contains('/') {
        format!("/apis/{api}")
    } else {
        format!("/api/{api}")
    };
    Ok(format!("{group}/namespaces/{ns}/{plural}/{name}"))
}

/// The JSON of a 2xx answer, `None` for 404, the API's own message otherwise.
async fn answer(path: &str, response: reqwest::Response) -> Result<Option<Value>, KubeError> {
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| (format!("{path}: {e}"), ErrorClass::Transient))?;
    if status == 404 {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return Ok(Some(value));
    }
    let message = value
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
    let class = match status {
        401 | 403 | 422 | 400 => ErrorClass::BadInput,
        409 => ErrorClass::Precondition,
        _ => ErrorClass::Transient,
    };
    Err((
        format!("{path}: the API server answered {status}: {message}"),
        class,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cases of kubectl's own rollout_status_test.go (v0.32.4), for Deployments.
    #[test]
    fn rollouts_are_judged_as_kubectl_judges_them() {
        let d = |generation: i64,
                 observed: i64,
                 wanted: Option<i64>,
                 replicas: i64,
                 updated: i64,
                 available: i64| {
            let mut v = serde_json::json!({"metadata": {"name": "hp-green", "generation": generation},
                "spec": {},
                "status": {"observedGeneration": observed, "replicas": replicas,
                    "updatedReplicas": updated, "availableReplicas": available}});
            if let Some(w) = wanted {
                v["spec"]["replicas"] = serde_json::json!(w);
            }
            v
        };
        let waiting = |d: &Value| matches!(rollout_status(d), Rollout::Waiting(_));
        assert!(
            waiting(&d(2, 1, Some(1), 1, 1, 1)),
            "generation not observed"
        );
        assert!(waiting(&d(1, 1, Some(2), 2, 1, 1)), "1 of 2 updated");
        // One replica: the new pod is ready but the old one still runs (and may be the only
        // ready one serving): not done until it is gone.
        assert_eq!(
            rollout_status(&d(1, 1, Some(1), 2, 1, 1)),
            Rollout::Waiting("1 old replicas are pending termination".into())
        );
        assert!(waiting(&d(1, 1, Some(2), 2, 2, 1)), "1 of 2 available");
        assert_eq!(rollout_status(&d(1, 1, Some(2), 2, 2, 2)), Rollout::Done);
        // An autoscaler owns the count: no spec.replicas, the updated pods decide.
        assert_eq!(rollout_status(&d(1, 1, None, 3, 3, 3)), Rollout::Done);
        let mut stuck = d(1, 1, Some(1), 1, 0, 0);
        stuck["status"]["conditions"] = serde_json::json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]);
        assert!(
            matches!(rollout_status(&stuck), Rollout::Failed(m) if m.contains("exceeded its progress deadline"))
        );
    }

    #[test]
    fn objects_map_to_their_rest_paths() {
        let d = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"namespace": "models", "name": "hp-blue"}});
        assert_eq!(
            object_path(&d).unwrap(),
            "/apis/apps/v1/namespaces/models/deployments/hp-blue"
        );
        let s = serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "models", "name": "hp"}});
        assert_eq!(
            object_path(&s).unwrap(),
            "/api/v1/namespaces/models/services/hp"
        );
        let h = serde_json::json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"namespace": "m", "name": "hp-blue"}});
        assert_eq!(
            object_path(&h).unwrap(),
            "/apis/autoscaling/v2/namespaces/m/horizontalpodautoscalers/hp-blue"
        );
        let c = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "m", "name": "x"}});
        assert!(object_path(&c).is_err());
    }
}
