//! What each endpoint serves, as the deploy step and rollback record it in the lake:
//!
//! ```text
//! <lake>/releases/<endpoint>/current.json              the release serving now (a pointer, rewritten)
//! <lake>/releases/<endpoint>/history/<seq:08>.json     every release and rollback, each created once
//! <lake>/releases/<endpoint>/<plan-id>/result.json     the outcome of applying that plan, created once
//! <lake>/releases/<endpoint>/<plan-id>/failed-<time>.json   each failed attempt (rolled back)
//! ```
//!
//! Recording a release is a compare-and-swap like moving an alias: history entry n+1 is created
//! with if-none-match, then the pointer is rewritten; readers follow the history past the
//! pointer, so a writer that died between the two loses nothing.

use medallion_lake::records::{self, Created};
use medallion_lake::{DatasetName, StoreLocation};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model_release::{DeployTarget, Slot};

pub const RELEASE_STATE_FORMAT: u32 = 1;

/// How an endpoint came to serve what it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StateKind {
    Release,
    Rollback,
}

/// A release an endpoint served before (what rollback returns to).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Served {
    pub plan_id: String,
    pub model: String,
    pub version: u64,
    pub slot: Slot,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseState {
    pub format: u32,
    pub endpoint: String,
    /// Position in the endpoint's history (1 for the first release).
    pub seq: u64,
    pub kind: StateKind,
    pub target: DeployTarget,
    pub serving: Served,
    /// What served before this; rollback returns to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Served>,
    /// Where the endpoint answers (local target), or the Service's in-cluster URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub at: String,
    pub by: String,
}

fn current_path(endpoint: &DatasetName) -> String {
    format!("releases/{endpoint}/current.json")
}

fn history_path(endpoint: &DatasetName, seq: u64) -> String {
    format!("releases/{endpoint}/history/{seq:08}.json")
}

/// The release `endpoint` serves now, if any.
pub async fn current(lake: &StoreLocation, endpoint: &DatasetName) -> Result<Option<ReleaseState>> {
    let mut state: Option<ReleaseState> = records::read_json(lake, &current_path(endpoint)).await?;
    let mut seq = state.as_ref().map_or(0, |s| s.seq);
    while let Some(next) =
        records::read_json::<ReleaseState>(lake, &history_path(endpoint, seq + 1)).await?
    {
        seq += 1;
        state = Some(next);
    }
    Ok(state)
}

/// Every release and rollback of `endpoint`, oldest first.
pub async fn history(lake: &StoreLocation, endpoint: &DatasetName) -> Result<Vec<ReleaseState>> {
    let prefix = format!("releases/{endpoint}/history/");
    let mut out = Vec::new();
    for rel in records::list(lake, &prefix, ".json").await? {
        if let Some(s) = records::read_json::<ReleaseState>(lake, &rel).await? {
            out.push(s);
        }
    }
    out.sort_by_key(|s| s.seq);
    Ok(out)
}

/// Records `next` as what `endpoint` serves, if the endpoint still serves what `after` says
/// (its seq; 0 for nothing yet). Of two concurrent writers exactly one succeeds; the other gets
/// [`Error::AliasMoved`]-style precondition error naming the endpoint.
pub async fn record(
    lake: &StoreLocation,
    endpoint: &DatasetName,
    after: u64,
    mut next: ReleaseState,
) -> Result<ReleaseState> {
    let now = current(lake, endpoint).await?.map_or(0, |s| s.seq);
    let plan = next.serving.plan_id.clone();
    let moved = || {
        Error::NotAuthorized {
        plan: plan.clone(),
        target: endpoint.to_string(),
        message: "the endpoint's release record moved while deploying; look again (medallion release show) and plan again".into(),
    }
    };
    if now != after {
        return Err(moved());
    }
    next.format = RELEASE_STATE_FORMAT;
    next.seq = after + 1;
    match records::create_json(lake, &history_path(endpoint, next.seq), &next).await? {
        Created::New => {}
        Created::AlreadyExists => return Err(moved()),
    }
    records::put_json(lake, &current_path(endpoint), &next).await?;
    Ok(next)
}

/// The outcome of applying one plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployResult {
    pub format: u32,
    pub plan_id: String,
    pub plan_hash: String,
    pub endpoint: String,
    pub target: DeployTarget,
    pub model: String,
    pub version: u64,
    pub slot: Slot,
    /// `deployed`, `already-serving`, or `failed` (failed attempts only).
    pub status: String,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The smoke test: the example's expected output and what the endpoint answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<Smoke>,
    pub authorized_by: String,
    pub started_at: String,
    pub finished_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smoke {
    pub expected: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served: Option<f64>,
    pub passed: bool,
}

fn result_path(endpoint: &DatasetName, plan_id: &str) -> String {
    format!(
        "{}/result.json",
        medallion_lake::layout::release_dir(endpoint, plan_id)
    )
}

/// The recorded outcome of applying `plan_id`, if it was applied.
pub async fn result(
    lake: &StoreLocation,
    endpoint: &DatasetName,
    plan_id: &str,
) -> Result<Option<DeployResult>> {
    Ok(records::read_json(lake, &result_path(endpoint, plan_id)).await?)
}

/// Records a successful apply once; a plan applied before keeps its first result.
pub async fn record_result(lake: &StoreLocation, result: &DeployResult) -> Result<DeployResult> {
    let endpoint = DatasetName::new(&result.endpoint)?;
    let rel = result_path(&endpoint, &result.plan_id);
    match records::create_json(lake, &rel, result).await? {
        Created::New => Ok(result.clone()),
        Created::AlreadyExists => Ok(records::read_json(lake, &rel)
            .await?
            .unwrap_or_else(|| result.clone())),
    }
}

/// Records a failed attempt (each attempt its own file).
pub async fn record_failure(lake: &StoreLocation, result: &DeployResult) -> Result<String> {
    let endpoint = DatasetName::new(&result.endpoint)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let rel = format!(
        "{}/failed-{stamp}.json",
        medallion_lake::layout::release_dir(&endpoint, &result.plan_id)
    );
    records::create_json(lake, &rel, result).await?;
    Ok(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(version: u64, plan: &str, slot: Slot) -> ReleaseState {
        ReleaseState {
            format: 0,
            endpoint: "hp".into(),
            seq: 0,
            kind: StateKind::Release,
            target: DeployTarget::Local,
            serving: Served {
                plan_id: plan.into(),
                model: "m".into(),
                version,
                slot,
            },
            previous: None,
            url: None,
            at: "now".into(),
            by: "test".into(),
        }
    }

    #[tokio::test]
    async fn records_move_by_compare_and_swap_and_readers_follow_history() {
        let dir = tempfile::tempdir().unwrap();
        let lake = StoreLocation::open("lake", dir.path().to_str().unwrap()).unwrap();
        let ep = DatasetName::new("hp").unwrap();
        assert!(current(&lake, &ep).await.unwrap().is_none());
        let first = record(&lake, &ep, 0, state(1, "p1", Slot::Blue))
            .await
            .unwrap();
        assert_eq!(first.seq, 1);
        // A writer that read seq 0 loses.
        let err = record(&lake, &ep, 0, state(2, "p2", Slot::Green))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotAuthorized { .. }), "{err}");
        record(&lake, &ep, 1, state(2, "p2", Slot::Green))
            .await
            .unwrap();
        // A writer that died after the history entry: readers still see it.
        let mut third = state(3, "p3", Slot::Blue);
        third.seq = 3;
        third.format = 1;
        records::create_json(&lake, &history_path(&ep, 3), &third)
            .await
            .unwrap();
        assert_eq!(
            current(&lake, &ep).await.unwrap().unwrap().serving.version,
            3
        );
        assert_eq!(history(&lake, &ep).await.unwrap().len(), 3);
    }
}
