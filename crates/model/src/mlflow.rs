//! Experiment tracking in MLflow over its REST API (no Python): for each new model version, a
//! run in the experiment named after the model (or `MLFLOW_EXPERIMENT_NAME`) with the params,
//! the holdout metrics and lineage tags, `card.html` and `model/model.json` as artifacts (when
//! the server proxies artifacts, `mlflow-artifacts:/`), and a registered model version whose
//! source is that run's `model` folder. Configured only by `MLFLOW_TRACKING_URI`; credentials
//! from `MLFLOW_TRACKING_TOKEN` or `MLFLOW_TRACKING_USERNAME`/`_PASSWORD`, never logged.

use std::time::Duration;

use medallion_lake::{ErrorClass, Layer, Registry, layout, records};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::spec::ModelSpec;
use crate::train::TrainOutcome;

#[derive(Clone)]
pub struct Config {
    pub uri: String,
    pub experiment: Option<String>,
    token: Option<String>,
    basic: Option<(String, String)>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("uri", &self.uri)
            .field("experiment", &self.experiment)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// `None` when `MLFLOW_TRACKING_URI` is unset or empty: then nothing is tried.
    pub fn from_env() -> Option<Config> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let uri = get("MLFLOW_TRACKING_URI")?;
        Some(Config {
            uri: uri.trim_end_matches('/').to_string(),
            experiment: get("MLFLOW_EXPERIMENT_NAME"),
            token: get("MLFLOW_TRACKING_TOKEN"),
            basic: get("MLFLOW_TRACKING_USERNAME").zip(get("MLFLOW_TRACKING_PASSWORD")),
        })
    }
}

/// What was recorded in MLflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    pub experiment_id: String,
    pub run_id: String,
    pub registered_version: String,
}

struct Client {
    http: reqwest::Client,
    config: Config,
}

impl Client {
    fn new(config: &Config) -> Result<Client> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Mlflow {
                endpoint: config.uri.clone(),
                message: e.to_string(),
                class: ErrorClass::BadInput,
            })?;
        Ok(Client {
            http,
            config: config.clone(),
        })
    }

    fn auth(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match (&self.config.token, &self.config.basic) {
            (Some(t), _) => r.bearer_auth(t),
            (None, Some((u, p))) => r.basic_auth(u, Some(p)),
            _ => r,
        }
    }

    async fn send(&self, endpoint: &str, r: reqwest::RequestBuilder) -> Result<(u16, Value)> {
        let fail = |message: String, class| Error::Mlflow {
            endpoint: endpoint.to_string(),
            message,
            class,
        };
        let resp = self.auth(r).send().await.map_err(|e| {
            fail(
                format!(
                    "{} unreachable ({e}); check MLFLOW_TRACKING_URI, retry later",
                    self.config.uri
                ),
                ErrorClass::Transient,
            )
        })?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| fail(e.to_string(), ErrorClass::Transient))?;
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Ok((status, value))
    }

    async fn call(&self, endpoint: &str, body: Value) -> Result<Value> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.config.uri);
        let (status, value) = self
            .send(
                endpoint,
                self.http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body.to_string()),
            )
            .await?;
        check(endpoint, status, value)
    }
}

fn by_name(url: String, experiment: &str) -> String {
    let name: String = url::form_urlencoded::byte_serialize(experiment.as_bytes()).collect();
    format!("{url}?experiment_name={name}")
}

fn check(endpoint: &str, status: u16, value: Value) -> Result<Value> {
    if (200..300).contains(&status) {
        return Ok(value);
    }
    let code = value
        .get("error_code")
        .and_then(Value::as_str)
        .unwrap_or("");
    let message = value.get("message").and_then(Value::as_str).unwrap_or("");
    let class = match status {
        401 | 403 => ErrorClass::BadInput,
        400..=499 => ErrorClass::BadInput,
        _ => ErrorClass::Transient,
    };
    let hint = if matches!(status, 401 | 403) {
        "; check MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD"
    } else {
        ""
    };
    Err(Error::Mlflow {
        endpoint: endpoint.to_string(),
        message: format!("HTTP {status} {code} {message}{hint}")
            .trim()
            .to_string(),
        class,
    })
}

fn error_code(e: &Error) -> bool {
    matches!(e, Error::Mlflow { message, .. } if message.contains("RESOURCE_ALREADY_EXISTS"))
}

/// Logs the version unless `models/<m>/v<N>/mlflow.json` says it was logged already; records
/// the run there afterwards.
pub async fn log_once(
    config: &Config,
    registry: &Registry,
    spec: &ModelSpec,
    outcome: &TrainOutcome,
) -> Result<Option<Logged>> {
    let m = &outcome.manifest;
    let rel = layout::model_file(&m.dataset, m.version, "mlflow.json");
    if records::read_bytes(registry.lake(), &rel).await?.is_some() {
        return Ok(None);
    }
    let logged = log_version(config, registry, spec, outcome).await?;
    let record = json!({
        "tracking_uri": config.uri,
        "experiment_id": logged.experiment_id,
        "run_id": logged.run_id,
        "registered_version": logged.registered_version,
    });
    records::create_json(registry.lake(), &rel, &record).await?;
    Ok(Some(logged))
}

/// Logs a model version as an MLflow run and registers it.
pub async fn log_version(
    config: &Config,
    registry: &Registry,
    spec: &ModelSpec,
    outcome: &TrainOutcome,
) -> Result<Logged> {
    let c = Client::new(config)?;
    let m = &outcome.manifest;
    let model = m.dataset.to_string();
    let experiment = config.experiment.clone().unwrap_or_else(|| model.clone());
    let url = format!("{}/api/2.0/mlflow/experiments/get-by-name", config.uri);
    let (status, found) = c
        .send(
            "experiments/get-by-name",
            c.http.get(by_name(url, &experiment)),
        )
        .await?;
    let experiment_id = if status == 404 {
        let created = c
            .call("experiments/create", json!({"name": experiment}))
            .await;
        match created {
            Ok(v) => v["experiment_id"].as_str().unwrap_or_default().to_string(),
            // Another trainer created it meanwhile.
            Err(e) if error_code(&e) => {
                let url = format!("{}/api/2.0/mlflow/experiments/get-by-name", config.uri);
                let (s, v) = c
                    .send(
                        "experiments/get-by-name",
                        c.http.get(by_name(url, &experiment)),
                    )
                    .await?;
                check("experiments/get-by-name", s, v)?["experiment"]["experiment_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            }
            Err(e) => return Err(e),
        }
    } else {
        check("experiments/get-by-name", status, found)?["experiment"]["experiment_id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let now = chrono::Utc::now().timestamp_millis();
    let parent = m.parents.first();
    let mut tags = vec![
        json!({"key": "medallion.model", "value": model}),
        json!({"key": "medallion.version", "value": m.version.to_string()}),
        json!({"key": "medallion.spec_sha256", "value": m.details.get("spec_sha256").and_then(Value::as_str).unwrap_or("")}),
        json!({"key": "medallion.lake", "value": registry.version_url(Layer::Models, &m.dataset, m.version)}),
    ];
    if let Some(p) = parent {
        tags.push(json!({"key": "medallion.data", "value": format!("{} {} v{}", p.layer, p.dataset, p.version)}));
        tags.push(json!({"key": "medallion.data_sha256", "value": p.content_sha256.clone().unwrap_or_default()}));
    }
    if let Some(w) = &m.workflow {
        tags.push(json!({"key": "argo.workflow", "value": w.name}));
        if let Some(uid) = &w.uid {
            tags.push(json!({"key": "argo.workflow_uid", "value": uid}));
        }
    }
    let run = c
        .call(
            "runs/create",
            json!({"experiment_id": experiment_id, "start_time": now, "run_name": format!("{model}-v{}", m.version), "tags": tags}),
        )
        .await?;
    let run_id = run["run"]["info"]["run_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let artifact_uri = run["run"]["info"]["artifact_uri"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut params: Vec<Value> = Vec::new();
    if let Some(obj) = crate::fit::params(spec).as_object() {
        for (k, v) in obj {
            let value = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            params.push(json!({"key": k, "value": value}));
        }
    }
    let metrics: Vec<Value> = outcome
        .metrics
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(k, v)| json!({"key": k, "value": v, "timestamp": now, "step": 0}))
        .collect();
    c.call(
        "runs/log-batch",
        json!({"run_id": run_id, "params": params, "metrics": metrics}),
    )
    .await?;
    // Artifacts through the server's proxy; other artifact stores are the user's to configure.
    if let Some(rest) = artifact_uri.strip_prefix("mlflow-artifacts:") {
        let base = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{}",
            config.uri,
            rest.trim_start_matches('/')
        );
        for (file, dest) in [
            ("card.html", "card.html"),
            ("model.json", "model/model.json"),
        ] {
            let rel = layout::model_file(&m.dataset, m.version, file);
            let Some(bytes) = records::read_bytes(registry.lake(), &rel).await? else {
                continue;
            };
            let (s, v) = c
                .send(
                    "mlflow-artifacts",
                    c.http.put(format!("{base}/{dest}")).body(bytes.to_vec()),
                )
                .await?;
            check("mlflow-artifacts", s, v)?;
        }
    } else {
        tracing::warn!(artifact_uri = %artifact_uri, "MLflow artifacts are not proxied by the server; card and model file not uploaded");
    }
    c.call(
        "runs/update",
        json!({"run_id": run_id, "status": "FINISHED", "end_time": chrono::Utc::now().timestamp_millis()}),
    )
    .await?;
    match c
        .call("registered-models/create", json!({"name": model}))
        .await
    {
        Ok(_) => {}
        Err(e) if error_code(&e) => {}
        Err(e) => return Err(e),
    }
    let registered = c
        .call(
            "model-versions/create",
            json!({
                "name": model,
                "source": format!("{artifact_uri}/model"),
                "run_id": run_id,
                "description": format!("medallion {model} v{}", m.version),
                "tags": [{"key": "medallion.version", "value": m.version.to_string()}],
            }),
        )
        .await?;
    let registered_version = registered["model_version"]["version"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| registered["model_version"]["version"].to_string());
    tracing::info!(experiment_id = %experiment_id, run_id = %run_id, registered_version = %registered_version, "logged to MLflow");
    Ok(Logged {
        experiment_id,
        run_id,
        registered_version,
    })
}
