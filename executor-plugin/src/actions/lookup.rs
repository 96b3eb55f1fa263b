//! `lookup`: registry facts as output parameters for the next DAG task, without a pod.
//!
//! ```yaml
//! plugin:
//!   medallion:
//!     lookup:
//!       dataset: houses          # a dataset version ...
//!       layer: silver            # bronze | silver (default silver)
//!       version: latest          # or a number (default latest)
//!       fields: {parent: /parents/0/version}   # extra outputs: name -> JSON pointer into the manifest
//!       if_missing: fail         # fail | empty (succeed with found=false)
//! ```
//! or `model: house-price` with `alias: production` (default) or `version: N`.
//!
//! Outputs: `found`, `version`, `uri`; for datasets also `rows`, `content-sha256`, `created-at`;
//! for models `metrics` (JSON); plus every name in `fields`.

use std::collections::BTreeMap;
use std::time::Duration;

use medallion_argo::{ExecuteTemplateReply, NodePhase, Parameter};
use medallion_lake::Layer;
use medallion_release::models;
use serde::Deserialize;
use serde_json::Value;

use super::{ActionError, Call, VersionArg, check_lake, invalid, layer_arg, name_arg, node, param};

/// How long an immutable answer (a numbered version) stays cached.
const IMMUTABLE_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupArgs {
    #[serde(default)]
    dataset: Option<String>,
    #[serde(default)]
    layer: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    version: Option<VersionArg>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default)]
    if_missing: IfMissing,
    #[serde(default)]
    lake: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum IfMissing {
    #[default]
    Fail,
    Empty,
}

pub async fn run(call: &Call<'_>, args: LookupArgs) -> Result<ExecuteTemplateReply, ActionError> {
    check_lake(call, "lookup", args.lake.as_deref())?;
    for (name, pointer) in &args.fields {
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return Err(invalid(
                "lookup",
                &format!("fields.{name}"),
                format!("'{pointer}' is not a JSON pointer (write /rows or /parents/0/version)"),
            ));
        }
    }
    let key = cache_key(&args);
    if let Some(hit) = call.state.cache.get(&key) {
        return Ok(hit);
    }
    let immutable = matches!(args.version, Some(VersionArg::Number(_)));
    let reply = match (&args.dataset, &args.model) {
        (Some(dataset), None) => dataset_lookup(call, &args, dataset).await?,
        (None, Some(model)) => model_lookup(call, &args, model).await?,
        _ => {
            return Err(invalid(
                "lookup",
                "dataset",
                "name exactly one of dataset or model",
            ));
        }
    };
    let found = reply
        .node
        .as_ref()
        .and_then(|n| n.outputs.as_ref())
        .is_some_and(|o| {
            o.parameters
                .iter()
                .any(|p| p.name == "found" && p.value == "true")
        });
    let ttl = if immutable && found {
        IMMUTABLE_TTL
    } else {
        call.state.config.cache_ttl
    };
    call.state.cache.put(key, ttl, reply.clone());
    Ok(reply)
}

fn cache_key(args: &LookupArgs) -> String {
    format!(
        "lookup|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        args.dataset,
        args.layer,
        args.model,
        args.alias,
        args.version,
        args.fields,
        args.if_missing
    )
}

async fn dataset_lookup(
    call: &Call<'_>,
    args: &LookupArgs,
    raw: &str,
) -> Result<ExecuteTemplateReply, ActionError> {
    if args.alias.is_some() {
        return Err(invalid(
            "lookup",
            "alias",
            "aliases name model versions; use version for a dataset",
        ));
    }
    let dataset = name_arg("lookup", "dataset", raw)?;
    let layer = layer_arg("lookup", args.layer.as_deref())?;
    let registry = &call.state.registry;
    let version = match args.version.unwrap_or_default() {
        VersionArg::Number(n) => n,
        VersionArg::Latest => match registry.latest(layer, &dataset).await? {
            Some(v) => v,
            None => {
                return missing(
                    args,
                    format!(
                        "{layer} {dataset} has no versions yet in {}",
                        call.state.config.lake.url()
                    ),
                );
            }
        },
    };
    let manifest =
        match models::manifest_json(&call.state.config.lake, layer, &dataset, version).await {
            Ok(m) => m,
            Err(medallion_release::Error::Missing { .. }) => {
                return missing(
                    args,
                    format!(
                        "{layer} {dataset} v{version} does not exist in {}",
                        call.state.config.lake.url()
                    ),
                );
            }
            Err(e) => return Err(e.into()),
        };
    let text = |ptr: &str| manifest.pointer(ptr).map(value_text).unwrap_or_default();
    let mut outputs = vec![
        param("found", "true"),
        param("version", version.to_string()),
        param("uri", registry.version_url(layer, &dataset, version)),
        param("rows", text("/rows")),
        param("content-sha256", text("/content_sha256")),
        param("created-at", text("/created_at")),
    ];
    outputs.extend(fields(args, &manifest)?);
    Ok(node(
        NodePhase::Succeeded,
        format!("{layer} {dataset} v{version}"),
        outputs,
    ))
}

async fn model_lookup(
    call: &Call<'_>,
    args: &LookupArgs,
    raw: &str,
) -> Result<ExecuteTemplateReply, ActionError> {
    if args.layer.as_deref().is_some_and(|l| l != "models") {
        return Err(invalid(
            "lookup",
            "layer",
            "a model lives in the models layer; leave layer out",
        ));
    }
    let model = name_arg("lookup", "model", raw)?;
    let lake = &call.state.config.lake;
    let (version, how) = match (args.version, &args.alias) {
        (Some(VersionArg::Number(n)), None) => (n, format!("v{n}")),
        (Some(VersionArg::Number(_)), Some(_)) => {
            return Err(invalid(
                "lookup",
                "alias",
                "give alias or version, not both",
            ));
        }
        (Some(VersionArg::Latest), None) => {
            match call.state.registry.latest(Layer::Models, &model).await? {
                Some(v) => (v, "latest".to_string()),
                None => {
                    return missing(
                        args,
                        format!("model {model} has no versions yet in {}", lake.url()),
                    );
                }
            }
        }
        (_, alias) => {
            let alias = name_arg("lookup", "alias", alias.as_deref().unwrap_or("production"))?;
            match models::alias(lake, &model, &alias).await? {
                Some(record) => (record.version, alias.to_string()),
                None => {
                    return missing(
                        args,
                        format!("model {model} has no alias {alias} in {}", lake.url()),
                    );
                }
            }
        }
    };
    let metrics = match models::metrics(lake, &model, version).await {
        Ok(m) => m,
        Err(medallion_release::Error::Missing { what, .. }) => {
            return missing(args, format!("{what} does not exist in {}", lake.url()));
        }
        Err(e) => return Err(e.into()),
    };
    let mut outputs = vec![
        param("found", "true"),
        param("version", version.to_string()),
        param(
            "uri",
            call.state
                .registry
                .version_url(Layer::Models, &model, version),
        ),
        param(
            "metrics",
            serde_json::to_string(&metrics).unwrap_or_default(),
        ),
    ];
    if !args.fields.is_empty() {
        let manifest = models::manifest_json(lake, Layer::Models, &model, version).await?;
        outputs.extend(fields(args, &manifest)?);
    }
    Ok(node(
        NodePhase::Succeeded,
        format!("model {model} {how} is v{version}"),
        outputs,
    ))
}

fn fields(args: &LookupArgs, manifest: &Value) -> Result<Vec<Parameter>, ActionError> {
    args.fields
        .iter()
        .map(|(name, pointer)| {
            manifest
                .pointer(pointer)
                .map(|v| param(name, value_text(v)))
                .ok_or_else(|| {
                    invalid(
                        "lookup",
                        &format!("fields.{name}"),
                        format!("the manifest has nothing at {pointer}"),
                    )
                })
        })
        .collect()
}

/// Strings as they are, everything else as compact JSON.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn missing(args: &LookupArgs, message: String) -> Result<ExecuteTemplateReply, ActionError> {
    match args.if_missing {
        IfMissing::Fail => Ok(node(NodePhase::Failed, message, vec![])),
        IfMissing::Empty => {
            let mut outputs = vec![
                param("found", "false"),
                param("version", ""),
                param("uri", ""),
            ];
            if args.model.is_some() {
                outputs.push(param("metrics", "{}"));
            } else {
                outputs.extend(["rows", "content-sha256", "created-at"].map(|n| param(n, "")));
            }
            outputs.extend(args.fields.keys().map(|n| param(n, "")));
            Ok(node(NodePhase::Succeeded, message, outputs))
        }
    }
}
