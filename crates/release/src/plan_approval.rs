//! The verdict of a policy over a plan, bound to the plan's content hash:
//! `releases/<target>/<plan-id>/approval.json`, created once. The deploy step applies a plan only
//! when this record exists, approves, and names the hash the plan still has.

use medallion_lake::records::{self, Created};
use medallion_lake::{DatasetName, StoreLocation, layout};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::policy::{Baseline, Check, Decision, Policy, Subject};

pub const PLAN_APPROVAL_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanApproval {
    pub format: u32,
    pub plan_id: String,
    pub target: String,
    /// The plan's content hash this verdict is about.
    pub plan_hash: String,
    pub decision: Decision,
    pub checks: Vec<Check>,
    /// Who or what decided: `policy <file>` for the policy, a person's name after a review.
    pub decided_by: String,
    /// SHA-256 of the policy file's bytes, so the exact rules can be found again.
    pub policy_sha256: String,
    pub decided_at: String,
    /// One line: why.
    pub reasons: String,
}

/// Where a plan's approval lives (lake-relative).
pub fn approval_path(target: &DatasetName, plan_id: &str) -> String {
    format!("{}/approval.json", layout::release_dir(target, plan_id))
}

/// The baseline the plan carries (its production metrics), for `not_worse_than`.
fn baseline_of(plan: &Plan, policy: &Policy) -> Baseline {
    let Some(alias) = policy.not_worse_than.clone() else {
        return Baseline::None;
    };
    match &plan.metrics {
        Some(m) => match (m.production_version, &m.production) {
            (Some(version), Some(metrics)) => Baseline::Found {
                alias,
                version,
                metrics: metrics.clone(),
            },
            _ => Baseline::Missing { alias },
        },
        None => Baseline::None,
    }
}

/// Evaluates `policy` over `plan` and records the verdict, once: when the plan was decided
/// before, that decision is returned with `false` (decisions are final; plan again to change
/// the outcome).
pub async fn decide(
    lake: &StoreLocation,
    plan: &Plan,
    policy: &Policy,
    policy_source: &str,
    policy_bytes: &[u8],
) -> Result<(PlanApproval, bool)> {
    let target = DatasetName::new(&plan.target)?;
    let rel = approval_path(&target, &plan.id);
    if let Some(existing) = records::read_json::<PlanApproval>(lake, &rel).await? {
        return Ok((existing, false));
    }
    let baseline = baseline_of(plan, policy);
    let verdict = policy.evaluate(Subject {
        metrics: plan.metrics.as_ref().map(|m| &m.candidate),
        baseline: &baseline,
        plan: Some(plan),
    });
    let approval = PlanApproval {
        format: PLAN_APPROVAL_FORMAT,
        plan_id: plan.id.clone(),
        target: plan.target.clone(),
        plan_hash: plan.hash.clone(),
        decision: verdict.decision,
        reasons: verdict.reasons(),
        checks: verdict.checks,
        decided_by: format!("policy {policy_source}"),
        policy_sha256: hex::encode(Sha256::digest(policy_bytes)),
        decided_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    match records::create_json(lake, &rel, &approval).await? {
        Created::New => Ok((approval, true)),
        Created::AlreadyExists => records::read_json::<PlanApproval>(lake, &rel)
            .await?
            .map(|a| (a, false))
            .ok_or_else(|| Error::Missing {
                what: format!("approval of plan {}", plan.id),
                lake: lake.url().to_string(),
                hint: "it was created concurrently and then removed; approve again".into(),
            }),
    }
}
