//! Model-release plans: a candidate model version against what is in production (the
//! `production` alias) and what the target reports as running, with metrics side by side,
//! deltas, data and spec lineage, and the exact changes the deploy step will make.
//!
//! Releases are blue/green: an endpoint has two slots; the candidate goes into the slot that is
//! not serving, the pointer (the Service selector on Kubernetes, the active file locally) moves
//! to it after its smoke test, and the slot that served before keeps running for rollback.

use std::collections::BTreeMap;
use std::fmt;

use medallion_lake::{DatasetName, Layer, StoreLocation};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::models::{self, Metrics};
use crate::plan::{self, Action, Change, MetricComparison, Plan};

/// Where a release goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeployTarget {
    /// `medallion-serve` processes on this machine.
    Local,
    /// Deployment/Service objects applied to a cluster.
    Kubernetes,
    /// The same objects written as YAML for GitOps.
    Manifests,
}

impl DeployTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            DeployTarget::Local => "local",
            DeployTarget::Kubernetes => "kubernetes",
            DeployTarget::Manifests => "manifests",
        }
    }
}

impl std::str::FromStr for DeployTarget {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "local" => Ok(DeployTarget::Local),
            "kubernetes" => Ok(DeployTarget::Kubernetes),
            "manifests" => Ok(DeployTarget::Manifests),
            other => Err(format!(
                "'{other}' is not a deploy target (local, kubernetes, manifests)"
            )),
        }
    }
}

/// One of an endpoint's two serving slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    Blue,
    Green,
}

impl Slot {
    pub fn other(self) -> Slot {
        match self {
            Slot::Blue => Slot::Green,
            Slot::Green => Slot::Blue,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Blue => "blue",
            Slot::Green => "green",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the target reports as running for the endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Running {
    /// The slot serving traffic and the version it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<SlotState>,
    /// The other slot, when something is in it (it may be stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<SlotState>,
    /// How this was found out (e.g. `GET http://127.0.0.1:41234/v2/models/house-price`).
    pub reported_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotState {
    pub slot: Slot,
    pub version: u64,
    /// Whether it answered as ready when asked.
    pub ready: bool,
}

/// Where a model version came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lineage {
    pub version: u64,
    /// `silver houses v3`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_sha256: Option<String>,
    /// `medallion-train 0.1.0`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
}

/// What a model-release plan deploys: everything the deploy step needs, so it applies exactly
/// what was approved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRelease {
    pub model: String,
    pub version: u64,
    pub target: DeployTarget,
    /// The slot the candidate goes into.
    pub slot: Slot,
    /// The version the `production` alias names now (the deploy moves it by compare-and-swap
    /// from this value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_version: Option<u64>,
    pub running: Running,
    /// The endpoint's release history position this plan was made against (0: never released).
    /// It is part of the plan id, so planning the same version again after a rollback (or any
    /// other release) is a new plan; deploy refuses the plan once the history has moved on.
    #[serde(default)]
    pub release_seq: u64,
    /// candidate − production, per metric both have.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deltas: Metrics,
    pub candidate_lineage: Lineage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_lineage: Option<Lineage>,
    /// Kubernetes targets: namespace, replicas and image of the serving Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<u32>,
    /// Kubernetes targets: the exact objects to apply (k8s-openapi types as JSON), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<serde_json::Value>,
    /// Kubernetes targets with a cluster configured: the objects against the cluster as it is
    /// (server-side dry run). Added after the plan id is derived (the id says what is planned;
    /// the diff, covered by the hash, shows the reviewer what that does to the cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_diff: Option<crate::live_diff::LiveDiff>,
}

/// What the caller asks to release.
#[derive(Debug, Clone)]
pub struct ReleaseRequest {
    pub endpoint: DatasetName,
    pub model: DatasetName,
    pub version: u64,
    pub target: DeployTarget,
    pub running: Running,
    pub namespace: Option<String>,
    pub replicas: Option<u32>,
    pub image: Option<String>,
    pub max_replicas: Option<u32>,
    /// The lake URL the served model is read from (Kubernetes objects carry it).
    pub lake: String,
}

/// The lineage recorded in a model version's manifest.
pub async fn lineage(lake: &StoreLocation, model: &DatasetName, version: u64) -> Result<Lineage> {
    let m = models::manifest_json(lake, Layer::Models, model, version).await?;
    let parent = m.pointer("/parents/0");
    let text = |v: Option<&serde_json::Value>| v.and_then(|x| x.as_str()).map(str::to_string);
    Ok(Lineage {
        version,
        data: parent.map(|p| {
            format!(
                "{} {} v{}",
                p.get("layer").and_then(|x| x.as_str()).unwrap_or("?"),
                p.get("dataset").and_then(|x| x.as_str()).unwrap_or("?"),
                p.get("version").and_then(|x| x.as_u64()).unwrap_or(0)
            )
        }),
        data_sha256: text(parent.and_then(|p| p.get("content_sha256"))),
        spec_sha256: text(m.pointer("/details/spec_sha256")),
        code: m.get("producer").map(|p| {
            format!(
                "{} {}",
                p.get("tool").and_then(|x| x.as_str()).unwrap_or("?"),
                p.get("version").and_then(|x| x.as_str()).unwrap_or("?")
            )
        }),
        workflow: text(m.pointer("/workflow/name")),
    })
}

fn fmt_metric(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.4}")
    }
}

/// The changes a release makes, in the order the deploy makes them.
fn changes(req: &ReleaseRequest, slot: Slot, production: Option<u64>) -> Vec<Change> {
    let endpoint = req.endpoint.as_str();
    let active = req.running.active.as_ref();
    if active.is_some_and(|a| a.version == req.version && a.ready) {
        return vec![Change {
            address: format!("Endpoint/{endpoint}"),
            action: Action::NoOp,
            namespace: req.namespace.clone(),
            replicas: None,
            attributes: BTreeMap::from([(
                "serving".to_string(),
                format!("{} v{} already", req.model, req.version),
            )]),
        }];
    }
    let in_slot = [req.running.active.as_ref(), req.running.standby.as_ref()]
        .into_iter()
        .flatten()
        .find(|s| s.slot == slot);
    let (server_kind, pointer_kind) = match req.target {
        DeployTarget::Local => ("Server", "Pointer"),
        DeployTarget::Kubernetes | DeployTarget::Manifests => ("Deployment", "Service"),
    };
    let scope = req.namespace.as_deref().unwrap_or("local");
    let mut server_attrs = BTreeMap::from([
        (
            "model".to_string(),
            format!("{} v{}", req.model, req.version),
        ),
        ("slot".to_string(), slot.to_string()),
    ]);
    if let Some(prev) = in_slot {
        server_attrs.insert(
            "replaces standby".to_string(),
            format!("v{} (not serving)", prev.version),
        );
    }
    if let Some(image) = &req.image {
        server_attrs.insert("image".into(), image.clone());
    }
    let mut out = vec![Change {
        address: format!("{server_kind}/{scope}/{endpoint}-{slot}"),
        // Reusing the standby slot updates it; nothing that serves traffic is removed.
        action: if in_slot.is_some() {
            Action::Update
        } else {
            Action::Create
        },
        namespace: req.namespace.clone(),
        replicas: req.replicas,
        attributes: server_attrs,
    }];
    if let (Some(max), DeployTarget::Kubernetes | DeployTarget::Manifests) =
        (req.max_replicas, req.target)
    {
        out.push(Change {
            address: format!("HorizontalPodAutoscaler/{scope}/{endpoint}-{slot}"),
            action: if in_slot.is_some() {
                Action::Update
            } else {
                Action::Create
            },
            namespace: req.namespace.clone(),
            replicas: Some(max),
            attributes: BTreeMap::from([(
                "replicas".to_string(),
                format!("{}..{max} at 70% CPU", req.replicas.unwrap_or(1)),
            )]),
        });
    }
    let mut pointer_attrs = BTreeMap::from([("selects".to_string(), slot.to_string())]);
    if let Some(a) = active {
        pointer_attrs.insert(
            "was".to_string(),
            format!("{} (v{}, kept for rollback)", a.slot, a.version),
        );
    }
    out.push(Change {
        address: format!("{pointer_kind}/{scope}/{endpoint}"),
        action: if active.is_some() {
            Action::Update
        } else {
            Action::Create
        },
        namespace: req.namespace.clone(),
        replicas: None,
        attributes: pointer_attrs,
    });
    out.push(Change {
        address: format!("Alias/{}/production", req.model),
        action: if production.is_some() {
            Action::Update
        } else {
            Action::Create
        },
        namespace: None,
        replicas: None,
        attributes: BTreeMap::from([(
            "version".to_string(),
            match production {
                Some(p) => format!("v{p} → v{}", req.version),
                None => format!("v{}", req.version),
            },
        )]),
    });
    out
}

/// Builds the sealed plan for releasing `req.version` of `req.model` to `req.endpoint`.
pub async fn plan(lake: &StoreLocation, req: &ReleaseRequest) -> Result<Plan> {
    if req.target != DeployTarget::Local && req.namespace.is_none() {
        return Err(Error::invalid(
            "arguments",
            "--namespace",
            format!(
                "missing: a {} release needs the namespace it deploys into",
                req.target.as_str()
            ),
        ));
    }
    let candidate = models::metrics(lake, &req.model, req.version).await?;
    let candidate_lineage = lineage(lake, &req.model, req.version).await?;
    let production_alias = DatasetName::new("production")?;
    let production = models::alias(lake, &req.model, &production_alias).await?;
    let (production_version, production_metrics, production_lineage) = match &production {
        Some(p) => (
            Some(p.version),
            Some(models::metrics(lake, &req.model, p.version).await?),
            Some(lineage(lake, &req.model, p.version).await?),
        ),
        None => (None, None, None),
    };
    let deltas: Metrics = match &production_metrics {
        Some(p) => candidate
            .iter()
            .filter_map(|(k, v)| p.get(k).map(|old| (k.clone(), v - old)))
            .collect(),
        None => Metrics::new(),
    };
    let slot = match &req.running.active {
        Some(a) if a.version == req.version && a.ready => a.slot,
        Some(a) => a.slot.other(),
        None => Slot::Blue,
    };
    let changes = changes(req, slot, production_version);
    let objects = match (req.target, &req.namespace) {
        (DeployTarget::Kubernetes | DeployTarget::Manifests, Some(ns)) => {
            let default_image = crate::k8s_objects::default_image();
            crate::k8s_objects::objects(&crate::k8s_objects::ServeSpec {
                endpoint: req.endpoint.as_str(),
                namespace: ns,
                model: req.model.as_str(),
                version: req.version,
                slot,
                lake: &req.lake,
                image: req.image.as_deref().unwrap_or(&default_image),
                replicas: req.replicas.unwrap_or(1),
                max_replicas: req.max_replicas,
            })?
        }
        _ => Vec::new(),
    };
    let summary = summary(req, slot, &candidate, production_version, &deltas);
    let release_seq = crate::deployments::current(lake, &req.endpoint)
        .await?
        .map_or(0, |s| s.seq);
    let release = ModelRelease {
        model: req.model.to_string(),
        version: req.version,
        target: req.target,
        slot,
        production_version,
        running: req.running.clone(),
        release_seq,
        deltas,
        candidate_lineage,
        production_lineage,
        namespace: req.namespace.clone(),
        replicas: req.replicas,
        image: req.image.clone(),
        max_replicas: req.max_replicas,
        objects,
        live_diff: None,
    };
    let metrics = MetricComparison {
        model: req.model.to_string(),
        candidate_version: req.version,
        candidate,
        production_version,
        production: production_metrics,
    };
    plan::new_release_plan(&req.endpoint, summary, changes, metrics, release)
}

fn summary(
    req: &ReleaseRequest,
    slot: Slot,
    candidate: &Metrics,
    production: Option<u64>,
    deltas: &Metrics,
) -> String {
    let metrics: Vec<String> = candidate
        .iter()
        .filter(|(k, _)| k.as_str() != "rows" && !k.ends_with("_rows"))
        .map(|(k, v)| match deltas.get(k) {
            Some(d) => format!(
                "{k} {} ({}{})",
                fmt_metric(*v),
                if *d >= 0.0 { "+" } else { "" },
                fmt_metric(*d)
            ),
            None => format!("{k} {}", fmt_metric(*v)),
        })
        .collect();
    let versus = match production {
        Some(p) => format!("against production v{p}"),
        None => "no production version yet".to_string(),
    };
    let running = match &req.running.active {
        Some(a) if a.version == req.version && a.ready => {
            format!("; v{} already serves from {}", a.version, a.slot)
        }
        Some(a) => format!(
            "; v{} serving from {} stays up for rollback",
            a.version, a.slot
        ),
        None => String::new(),
    };
    format!(
        "Release {} v{} to endpoint {} ({}, slot {slot}), {versus}: {}{running}.",
        req.model,
        req.version,
        req.endpoint,
        req.target.as_str(),
        metrics.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: DeployTarget, running: Running) -> ReleaseRequest {
        ReleaseRequest {
            endpoint: DatasetName::new("hp").unwrap(),
            model: DatasetName::new("house-price").unwrap(),
            version: 3,
            target,
            running,
            namespace: (target != DeployTarget::Local).then(|| "models".to_string()),
            replicas: Some(2),
            image: None,
            max_replicas: Some(4),
            lake: "az://lake/medallion".into(),
        }
    }

    fn slot(slot: Slot, version: u64, ready: bool) -> Option<SlotState> {
        Some(SlotState {
            slot,
            version,
            ready,
        })
    }

    #[test]
    fn a_first_release_creates_everything_in_blue() {
        let req = request(DeployTarget::Local, Running::default());
        let c = changes(&req, Slot::Blue, None);
        let got: Vec<(&str, Action)> = c.iter().map(|c| (c.address.as_str(), c.action)).collect();
        assert_eq!(
            got,
            [
                ("Server/local/hp-blue", Action::Create),
                ("Pointer/local/hp", Action::Create),
                ("Alias/house-price/production", Action::Create),
            ]
        );
        assert!(c.iter().all(|c| !c.action.is_destructive()));
    }

    #[test]
    fn the_next_release_reuses_the_standby_slot_and_keeps_the_serving_one() {
        let running = Running {
            active: slot(Slot::Green, 2, true),
            standby: slot(Slot::Blue, 1, true),
            reported_by: "test".into(),
        };
        let req = request(DeployTarget::Manifests, running);
        let c = changes(&req, Slot::Blue, Some(2));
        let got: Vec<(&str, Action)> = c.iter().map(|c| (c.address.as_str(), c.action)).collect();
        assert_eq!(
            got,
            [
                ("Deployment/models/hp-blue", Action::Update),
                ("HorizontalPodAutoscaler/models/hp-blue", Action::Update),
                ("Service/models/hp", Action::Update),
                ("Alias/house-price/production", Action::Update),
            ]
        );
        assert_eq!(c[0].attributes["replaces standby"], "v1 (not serving)");
        assert_eq!(c[2].attributes["was"], "green (v2, kept for rollback)");
        assert_eq!(c[3].attributes["version"], "v2 → v3");
    }

    #[test]
    fn releasing_what_already_serves_changes_nothing() {
        let running = Running {
            active: slot(Slot::Green, 3, true),
            standby: None,
            reported_by: "test".into(),
        };
        let c = changes(&request(DeployTarget::Local, running), Slot::Green, Some(3));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].action, Action::NoOp);
        // A server that does not answer is not "serving": the release goes ahead.
        let down = Running {
            active: slot(Slot::Green, 3, false),
            standby: None,
            reported_by: "test".into(),
        };
        let c = changes(&request(DeployTarget::Local, down), Slot::Blue, Some(3));
        assert_eq!(c[0].action, Action::Create);
    }
}
