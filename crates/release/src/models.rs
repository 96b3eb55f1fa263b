//! Reads of the model registry in the lake (DESIGN.md §2):
//!
//! ```text
//! <lake>/models/<model>/v<N>/_manifest.json, metrics.json, model.json
//! <lake>/models/<model>/aliases/<alias>.json   {"model","alias","version","updated_at","updated_by"}
//! ```
//!
//! `metrics.json` is a JSON object whose numeric top-level fields are the holdout metrics
//! (`{"r2": 0.81, "rmse": 23011.5, ...}`); other fields (per-fold details) are ignored here.

use std::collections::BTreeMap;

use medallion_lake::{DatasetName, Layer, StoreLocation, layout, records};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Metric name → value.
pub type Metrics = BTreeMap<String, f64>;

/// What an alias (`production`, `staging`, ...) names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub model: String,
    pub alias: String,
    pub version: u64,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub updated_by: Option<String>,
}

/// The version `alias` of `model` names, if the alias exists.
pub async fn alias(
    lake: &StoreLocation,
    model: &DatasetName,
    alias: &DatasetName,
) -> Result<Option<AliasRecord>> {
    Ok(records::read_json(lake, &layout::alias_path(model, alias)).await?)
}

/// The holdout metrics of `model` v`version`.
pub async fn metrics(lake: &StoreLocation, model: &DatasetName, version: u64) -> Result<Metrics> {
    let rel = layout::model_file(model, version, "metrics.json");
    let value: serde_json::Value =
        records::read_json(lake, &rel)
            .await?
            .ok_or_else(|| Error::Missing {
                what: format!("metrics of model {model} v{version} ({rel})"),
                lake: lake.url().to_string(),
                hint: "check the model name and version with `medallion lake list`".into(),
            })?;
    metrics_from_json(&rel, &value)
}

/// The numeric top-level fields of a metrics object.
pub fn metrics_from_json(source: &str, value: &serde_json::Value) -> Result<Metrics> {
    let object = value.as_object().ok_or_else(|| {
        Error::invalid(
            source,
            "metrics",
            "expected a JSON object of metric names to numbers",
        )
    })?;
    let metrics: Metrics = object
        .iter()
        .filter_map(|(k, v)| v.as_f64().map(|x| (k.clone(), x)))
        .collect();
    if metrics.is_empty() {
        return Err(Error::invalid(
            source,
            "metrics",
            "holds no numeric metric (expected e.g. {\"r2\": 0.8})",
        ));
    }
    Ok(metrics)
}

/// A committed version's manifest as JSON (any layer, models included), for field look-ups.
pub async fn manifest_json(
    lake: &StoreLocation,
    layer: Layer,
    name: &DatasetName,
    version: u64,
) -> Result<serde_json::Value> {
    let rel = layout::manifest_path(layer, name, version);
    records::read_json(lake, &rel)
        .await?
        .ok_or_else(|| Error::Missing {
            what: format!("{layer} {name} v{version}"),
            lake: lake.url().to_string(),
            hint: "list versions with `medallion lake list`".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_keep_numbers_only() {
        let m = metrics_from_json(
            "m.json",
            &serde_json::json!({"r2": 0.8, "rmse": 100, "folds": [1, 2], "note": "x"}),
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["rmse"], 100.0);
        assert!(metrics_from_json("m.json", &serde_json::json!([1])).is_err());
        let e = metrics_from_json("m.json", &serde_json::json!({"a": "b"})).unwrap_err();
        assert!(e.to_string().starts_with("m.json: metrics:"), "{e}");
    }
}
