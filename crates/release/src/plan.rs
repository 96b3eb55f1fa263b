//! A release plan: the exact changes a release would make, with the metrics that justify it, and
//! a content hash that binds an approval to exactly this plan.
//!
//! Stored as `<lake>/releases/<endpoint>/<plan-id>/plan.json`. The hash is the SHA-256 of the
//! plan serialized as compact JSON with the `hash` field empty, so anyone can re-check it.

use std::collections::BTreeMap;

use medallion_lake::records::Created;
use medallion_lake::{DatasetName, StoreLocation, layout, records};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model_release::ModelRelease;
use crate::models::Metrics;

pub const PLAN_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub format: u32,
    pub id: String,
    pub kind: PlanKind,
    /// The endpoint (model releases) or workspace (infrastructure) this plan changes.
    pub target: String,
    pub created_at: String,
    /// One paragraph a person reads before approving.
    pub summary: String,
    pub changes: Vec<Change>,
    /// Candidate and production metrics for a model release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricComparison>,
    /// For model releases: what to deploy where (everything medallion-deploy needs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ModelRelease>,
    /// For infrastructure plans: SHA-256 of the saved Terraform plan file, so the approval covers
    /// exactly the file `terraform apply` will be given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terraform_planfile_sha256: Option<String>,
    /// SHA-256 of this plan with `hash` empty (see the module docs).
    #[serde(default)]
    pub hash: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanKind {
    ModelRelease,
    Infrastructure,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// `Deployment/models/house-price` or a Terraform resource address.
    pub address: String,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// Changed attributes and their new values as a reviewer should see them (sensitive values
    /// are `(sensitive)`, values only known after apply `(known after apply)`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    NoOp,
}

impl Action {
    /// Deletes and replaces lose what exists.
    pub fn is_destructive(self) -> bool {
        matches!(self, Action::Replace | Action::Delete)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::NoOp => "no-op",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricComparison {
    pub model: String,
    pub candidate_version: u64,
    pub candidate: Metrics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production: Option<Metrics>,
}

impl Plan {
    /// True when any change deletes or replaces something.
    pub fn destructive(&self) -> bool {
        self.changes.iter().any(|c| c.action.is_destructive())
    }

    /// The content hash (hex SHA-256 of the plan with `hash` empty).
    pub fn content_hash(&self) -> Result<String> {
        let mut unsigned = self.clone();
        unsigned.hash.clear();
        let bytes = serde_json::to_vec(&unsigned)
            .map_err(|e| Error::invalid("plan", "hash", e.to_string()))?;
        Ok(hex::encode(Sha256::digest(&bytes)))
    }

    /// Sets `hash` from the content.
    pub fn seal(mut self) -> Result<Plan> {
        self.hash = self.content_hash()?;
        Ok(self)
    }
}

/// Reads `releases/<endpoint>/<plan-id>/plan.json` and checks its hash.
pub async fn read(lake: &StoreLocation, endpoint: &DatasetName, plan_id: &str) -> Result<Plan> {
    check_plan_id(plan_id)?;
    let rel = format!("{}/plan.json", layout::release_dir(endpoint, plan_id));
    let value: serde_json::Value =
        records::read_json(lake, &rel)
            .await?
            .ok_or_else(|| Error::Missing {
                what: format!("plan {plan_id} of {endpoint} ({rel})"),
                lake: lake.url().to_string(),
                hint: "run medallion-plan first, or check the plan id".into(),
            })?;
    let plan: Plan =
        serde_json::from_value(value).map_err(|e| Error::invalid(&rel, "plan", e.to_string()))?;
    if plan.format > PLAN_FORMAT {
        return Err(Error::invalid(
            &rel,
            "format",
            format!(
                "{} is newer than this build understands ({PLAN_FORMAT}); upgrade medallion",
                plan.format
            ),
        ));
    }
    let actual = plan.content_hash()?;
    if actual != plan.hash {
        return Err(Error::PlanTampered {
            location: lake.url_of(&lake.path(&rel)),
            recorded: plan.hash.clone(),
            actual,
        });
    }
    Ok(plan)
}

/// A plan for `target` with these changes, its id derived from what it changes (so planning the
/// same change again finds the same plan), sealed with its content hash.
pub fn new_plan(
    kind: PlanKind,
    target: &DatasetName,
    summary: String,
    changes: Vec<Change>,
    metrics: Option<MetricComparison>,
) -> Result<Plan> {
    let identity = serde_json::to_vec(&(kind, target.as_str(), &changes, &metrics))
        .map_err(|e| Error::invalid("plan", "id", e.to_string()))?;
    seal_new(kind, target, summary, changes, metrics, None, &identity)
}

/// A model-release plan: the id also covers what is released where (model, version, slot,
/// target, what was running), so a plan made against another running state is another plan.
pub fn new_release_plan(
    endpoint: &DatasetName,
    summary: String,
    changes: Vec<Change>,
    metrics: MetricComparison,
    release: ModelRelease,
) -> Result<Plan> {
    let identity = serde_json::to_vec(&(
        PlanKind::ModelRelease,
        endpoint.as_str(),
        &changes,
        &metrics,
        &release,
    ))
    .map_err(|e| Error::invalid("plan", "id", e.to_string()))?;
    seal_new(
        PlanKind::ModelRelease,
        endpoint,
        summary,
        changes,
        Some(metrics),
        Some(release),
        &identity,
    )
}

fn seal_new(
    kind: PlanKind,
    target: &DatasetName,
    summary: String,
    changes: Vec<Change>,
    metrics: Option<MetricComparison>,
    release: Option<ModelRelease>,
    identity: &[u8],
) -> Result<Plan> {
    let digest = hex::encode(Sha256::digest(identity));
    let prefix = match kind {
        PlanKind::ModelRelease => "release",
        PlanKind::Infrastructure => "infra",
    };
    Plan {
        format: PLAN_FORMAT,
        id: format!("{prefix}-{}", &digest[..16]),
        kind,
        target: target.as_str().to_string(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        summary,
        changes,
        metrics,
        release,
        terraform_planfile_sha256: None,
        hash: String::new(),
    }
    .seal()
}

/// An infrastructure plan whose saved plan file has this SHA-256: the id covers the file too, so
/// a new `terraform plan` (a new file) is a new plan needing its own approval.
pub fn new_terraform_plan(
    target: &DatasetName,
    summary: String,
    changes: Vec<Change>,
    planfile_sha256: Option<String>,
) -> Result<Plan> {
    let kind = PlanKind::Infrastructure;
    let identity = serde_json::to_vec(&(kind, target.as_str(), &changes, &planfile_sha256))
        .map_err(|e| Error::invalid("plan", "id", e.to_string()))?;
    let mut plan = seal_new(kind, target, summary, changes, None, None, &identity)?;
    plan.terraform_planfile_sha256 = planfile_sha256;
    plan.seal()
}

/// Stores `plan.json` (create-only) and `summary.md` under `releases/<target>/<plan-id>/`. When
/// a plan of this id exists already (the same change planned again, or a retried step), that
/// plan is returned with `false`: an approval bound to its hash stays valid.
pub async fn store(lake: &StoreLocation, plan: Plan) -> Result<(Plan, bool)> {
    let target = DatasetName::new(&plan.target)?;
    let dir = layout::release_dir(&target, &plan.id);
    match records::create_json(lake, &format!("{dir}/plan.json"), &plan).await? {
        Created::New => {
            records::put_bytes(
                lake,
                &format!("{dir}/summary.md"),
                render_markdown(&plan).into_bytes(),
            )
            .await?;
            Ok((plan, true))
        }
        Created::AlreadyExists => Ok((read(lake, &target, &plan.id).await?, false)),
    }
}

/// The plan for a person: the summary, then one line per change.
pub fn render_markdown(plan: &Plan) -> String {
    let mut out = format!(
        "# Plan {} ({})\n\n{}\n\nHash: `{}`\n\n",
        plan.id, plan.target, plan.summary, plan.hash
    );
    for c in &plan.changes {
        let sign = match c.action {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::NoOp => " ",
        };
        out.push_str(&format!(
            "- `{sign}` {} **{}**",
            c.address,
            c.action.as_str()
        ));
        if !c.attributes.is_empty() {
            let attrs: Vec<String> = c
                .attributes
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect();
            out.push_str(&format!(": {}", attrs.join(", ")));
        }
        out.push('\n');
    }
    if let Some(m) = &plan.metrics {
        out.push_str(&render_metrics(m));
    }
    if let Some(d) = plan.release.as_ref().and_then(|r| r.live_diff.as_ref()) {
        out.push_str(&render_live_diff(d));
    }
    if let Some(r) = &plan.release {
        out.push_str("\n## Lineage\n\n");
        for (label, l) in [
            ("candidate", Some(&r.candidate_lineage)),
            ("production", r.production_lineage.as_ref()),
        ] {
            if let Some(l) = l {
                out.push_str(&format!(
                    "- {label} v{}: data {}, data sha256 `{}`, spec sha256 `{}`, {}{}\n",
                    l.version,
                    l.data.as_deref().unwrap_or("?"),
                    l.data_sha256.as_deref().unwrap_or("?"),
                    l.spec_sha256.as_deref().unwrap_or("?"),
                    l.code.as_deref().unwrap_or("?"),
                    l.workflow
                        .as_deref()
                        .map(|w| format!(", workflow {w}"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    out
}

/// The server-side dry run: one line per object, one table row per changed field.
fn render_live_diff(d: &crate::live_diff::LiveDiff) -> String {
    let mut out = format!(
        "\n## Against the cluster (server-side dry run, {})\n\n",
        d.server
    );
    for o in &d.objects {
        out.push_str(&format!("- {} **{}**\n", o.address, o.action.as_str()));
        if o.fields.is_empty() {
            continue;
        }
        out.push_str("\n  | field | live | planned |\n  |---|---|---|\n");
        for f in &o.fields {
            let cell = |v: &Option<String>| {
                v.as_deref().map_or("(absent)".to_string(), |s| {
                    format!("`{}`", s.replace('|', "\\|"))
                })
            };
            out.push_str(&format!(
                "  | `{}` | {} | {} |\n",
                f.path.replace('|', "\\|"),
                cell(&f.live),
                cell(&f.planned)
            ));
        }
        if o.more_fields > 0 {
            out.push_str(&format!("  | … {} more | | |\n", o.more_fields));
        }
        out.push('\n');
    }
    out
}

/// Candidate and production metrics side by side with their deltas (markdown table).
fn render_metrics(m: &MetricComparison) -> String {
    let mut out = format!(
        "\n## Metrics\n\n| metric | candidate v{} |",
        m.candidate_version
    );
    if let Some(p) = m.production_version {
        out.push_str(&format!(" production v{p} | delta |"));
    }
    out.push_str("\n|---|---|");
    if m.production_version.is_some() {
        out.push_str("---|---|");
    }
    out.push('\n');
    for (name, value) in &m.candidate {
        out.push_str(&format!("| {name} | {value} |"));
        if let Some(p) = &m.production {
            match p.get(name) {
                Some(old) => out.push_str(&format!(" {old} | {:+} |", value - old)),
                None => out.push_str(" | |"),
            }
        }
        out.push('\n');
    }
    out
}

/// A plan id is 1-64 characters of letters, digits, `-` and `_`.
pub fn check_plan_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "arguments",
            "plan",
            format!("'{id}' is not a plan id (1-64 letters, digits, - or _)"),
        ))
    }
}

#[cfg(test)]
pub(crate) fn sample(changes: Vec<Change>) -> Plan {
    Plan {
        format: PLAN_FORMAT,
        id: "p-1".into(),
        kind: PlanKind::ModelRelease,
        target: "house-price".into(),
        created_at: "2026-11-23T00:00:00Z".into(),
        summary: "release v2".into(),
        changes,
        metrics: None,
        release: None,
        terraform_planfile_sha256: None,
        hash: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(address: &str, action: Action) -> Change {
        Change {
            address: address.into(),
            action,
            namespace: None,
            replicas: None,
            attributes: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn sealed_plans_read_back_and_tampering_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let lake = StoreLocation::open("lake", dir.path().to_str().unwrap()).unwrap();
        let plan = sample(vec![change("Deployment/models/hp", Action::Update)])
            .seal()
            .unwrap();
        assert!(!plan.destructive());
        let endpoint = DatasetName::new("house-price").unwrap();
        let rel = format!("{}/plan.json", layout::release_dir(&endpoint, "p-1"));
        records::create_json(&lake, &rel, &plan).await.unwrap();
        assert_eq!(read(&lake, &endpoint, "p-1").await.unwrap(), plan);

        let mut changed = plan.clone();
        changed.changes[0].action = Action::Delete;
        assert!(changed.destructive());
        std::fs::write(dir.path().join(&rel), serde_json::to_vec(&changed).unwrap()).unwrap();
        let err = read(&lake, &endpoint, "p-1").await.unwrap_err();
        assert!(matches!(err, Error::PlanTampered { .. }), "{err}");
        assert!(read(&lake, &endpoint, "../x").await.is_err());
        assert!(matches!(
            read(&lake, &endpoint, "p-2").await.unwrap_err(),
            Error::Missing { .. }
        ));
    }
}
