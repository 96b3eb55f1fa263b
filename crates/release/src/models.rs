//! Reads of the model registry in the lake (DESIGN.md §2):
//!
//! ```text
//! <lake>/models/<model>/v<N>/_manifest.json, metrics.json, model.json
//! <lake>/models/<model>/aliases/<alias>.json            current entry (a pointer, rewritten)
//! <lake>/models/<model>/aliases/<alias>/<seq:08>.json   history, each entry created once
//! ```
//!
//! Moving an alias is a compare-and-swap: the mover reads the current entry (seq n), creates
//! history entry n+1 with if-none-match and only then rewrites the pointer. Of two concurrent
//! movers exactly one creates n+1; the other gets [`Error::AliasMoved`]. Readers follow the
//! history past the pointer, so a mover that died between the two writes loses nothing.
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
    /// Position in the alias's history (1 for the first move; 0 for hand-written pointers).
    #[serde(default)]
    pub seq: u64,
    /// The version the alias named before this move.
    #[serde(default)]
    pub previous: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Who moves an alias where, and on which condition.
#[derive(Debug, Clone)]
pub struct AliasMove<'a> {
    pub version: u64,
    /// `Some(None)`: the alias must not exist yet; `Some(Some(v))`: it must name v; `None`: any
    /// current value (still a compare-and-swap against what was read).
    pub expect: Option<Option<u64>>,
    pub by: &'a str,
    pub reason: Option<&'a str>,
}

/// The version `alias` of `model` names, if the alias exists.
pub async fn alias(
    lake: &StoreLocation,
    model: &DatasetName,
    alias: &DatasetName,
) -> Result<Option<AliasRecord>> {
    let mut current: Option<AliasRecord> =
        records::read_json(lake, &layout::alias_path(model, alias)).await?;
    // Follow history entries newer than the pointer (a mover may have died before rewriting it).
    let mut seq = current.as_ref().map_or(0, |a| a.seq);
    while let Some(next) =
        records::read_json::<AliasRecord>(lake, &layout::alias_history_path(model, alias, seq + 1))
            .await?
    {
        seq += 1;
        current = Some(next);
    }
    Ok(current)
}

/// Every move of `alias`, oldest first.
pub async fn alias_history(
    lake: &StoreLocation,
    model: &DatasetName,
    alias: &DatasetName,
) -> Result<Vec<AliasRecord>> {
    let prefix = format!("models/{model}/aliases/{alias}/");
    let mut out = Vec::new();
    for rel in records::list(lake, &prefix, ".json").await? {
        if let Some(r) = records::read_json::<AliasRecord>(lake, &rel).await? {
            out.push(r);
        }
    }
    out.sort_by_key(|r| r.seq);
    Ok(out)
}

/// The aliases of `model` and their current versions.
pub async fn aliases(lake: &StoreLocation, model: &DatasetName) -> Result<Vec<AliasRecord>> {
    let prefix = format!("models/{model}/aliases/");
    let mut out = Vec::new();
    for rel in records::list(lake, &prefix, ".json").await? {
        let Some(name) = rel
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".json"))
        else {
            continue;
        };
        if name.contains('/') {
            continue;
        }
        if let Ok(a) = DatasetName::new(name)
            && let Some(r) = alias(lake, model, &a).await?
        {
            out.push(r);
        }
    }
    Ok(out)
}

/// Moves `alias` of `model` to `m.version` by compare-and-swap (see the module docs). The
/// version must exist.
pub async fn move_alias(
    lake: &StoreLocation,
    model: &DatasetName,
    alias_name: &DatasetName,
    m: AliasMove<'_>,
) -> Result<AliasRecord> {
    let manifest = layout::manifest_path(Layer::Models, model, m.version);
    if records::read_bytes(lake, &manifest).await?.is_none() {
        return Err(Error::Missing {
            what: format!("model {model} v{}", m.version),
            lake: lake.url().to_string(),
            hint: "list versions with `medallion model list`".into(),
        });
    }
    let current = alias(lake, model, alias_name).await?;
    let now_version = current.as_ref().map(|c| c.version);
    if let Some(expected) = m.expect
        && expected != now_version
    {
        let show = |v: Option<u64>| v.map_or("nothing".to_string(), |v| format!("v{v}"));
        return Err(Error::AliasMoved {
            model: model.to_string(),
            alias: alias_name.to_string(),
            message: format!(
                "expected it to name {} but it names {}; nothing changed",
                show(expected),
                show(now_version)
            ),
        });
    }
    let record = AliasRecord {
        model: model.to_string(),
        alias: alias_name.to_string(),
        version: m.version,
        updated_at: Some(chrono::Utc::now().to_rfc3339()),
        updated_by: Some(m.by.to_string()),
        seq: current.as_ref().map_or(0, |c| c.seq) + 1,
        previous: now_version,
        reason: m.reason.map(str::to_string),
    };
    let entry = layout::alias_history_path(model, alias_name, record.seq);
    match records::create_json(lake, &entry, &record).await? {
        records::Created::New => {}
        records::Created::AlreadyExists => {
            return Err(Error::AliasMoved {
                model: model.to_string(),
                alias: alias_name.to_string(),
                message:
                    "someone else moved it at the same time; nothing changed, look again and retry"
                        .into(),
            });
        }
    }
    records::put_json(lake, &layout::alias_path(model, alias_name), &record).await?;
    Ok(record)
}

/// The holdout metrics of `model` v`version`.
pub async fn metrics(lake: &StoreLocation, model: &DatasetName, version: u64) -> Result<Metrics> {
    let rel = layout::model_file(model, version, "metrics.json");
    if let Some(value) = records::read_json::<serde_json::Value>(lake, &rel).await? {
        return metrics_from_json(&rel, &value);
    }
    // The trainer copies metrics.json after committing; if it died in between, the manifest
    // holds the same metrics.
    let manifest = layout::manifest_path(Layer::Models, model, version);
    let found = records::read_json::<serde_json::Value>(lake, &manifest)
        .await?
        .and_then(|m| m.pointer("/details/metrics").cloned());
    match found {
        Some(value) => metrics_from_json(&manifest, &value),
        None => Err(Error::Missing {
            what: format!("metrics of model {model} v{version} ({rel})"),
            lake: lake.url().to_string(),
            hint: "check the model name and version with `medallion model list`".into(),
        }),
    }
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

    #[tokio::test]
    async fn aliases_move_by_compare_and_swap_with_history() {
        let dir = tempfile::tempdir().unwrap();
        let lake = StoreLocation::open("lake", dir.path().to_str().unwrap()).unwrap();
        let model = DatasetName::new("m").unwrap();
        let prod = DatasetName::new("production").unwrap();
        for v in 1..=3 {
            let rel = layout::manifest_path(Layer::Models, &model, v);
            records::create_json(&lake, &rel, &serde_json::json!({}))
                .await
                .unwrap();
        }
        let mv = |version, expect| AliasMove {
            version,
            expect,
            by: "ana",
            reason: Some("test"),
        };
        let missing = move_alias(&lake, &model, &prod, mv(9, None))
            .await
            .unwrap_err();
        assert!(
            missing.to_string().contains("model m v9 not found"),
            "{missing}"
        );
        let first = move_alias(&lake, &model, &prod, mv(1, Some(None)))
            .await
            .unwrap();
        assert_eq!((first.seq, first.previous), (1, None));
        let stale = move_alias(&lake, &model, &prod, mv(2, Some(None)))
            .await
            .unwrap_err();
        assert!(
            stale
                .to_string()
                .contains("expected it to name nothing but it names v1"),
            "{stale}"
        );
        move_alias(&lake, &model, &prod, mv(2, Some(Some(1))))
            .await
            .unwrap();
        // A mover that died after its history entry but before the pointer: readers follow.
        let orphan = AliasRecord {
            version: 3,
            seq: 3,
            previous: Some(2),
            ..first.clone()
        };
        records::create_json(
            &lake,
            &layout::alias_history_path(&model, &prod, 3),
            &orphan,
        )
        .await
        .unwrap();
        assert_eq!(
            alias(&lake, &model, &prod).await.unwrap().unwrap().version,
            3
        );
        // Two movers from the same read: the one whose entry exists already loses.
        let lost = records::create_json(
            &lake,
            &layout::alias_history_path(&model, &prod, 3),
            &orphan,
        )
        .await
        .unwrap();
        assert_eq!(lost, records::Created::AlreadyExists);
        let next = move_alias(&lake, &model, &prod, mv(1, Some(Some(3))))
            .await
            .unwrap();
        assert_eq!((next.seq, next.previous), (4, Some(3)));
        let history = alias_history(&lake, &model, &prod).await.unwrap();
        assert_eq!(
            history.iter().map(|r| r.version).collect::<Vec<_>>(),
            vec![1, 2, 3, 1]
        );
        let all = aliases(&lake, &model).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].version, 1);
    }

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
