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

/// A person's answer to a `needs-review` verdict: `releases/<target>/<plan-id>/review.json`,
/// created once, bound to the same plan hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanReview {
    pub format: u32,
    pub plan_id: String,
    pub target: String,
    pub plan_hash: String,
    /// `approved` or `rejected`.
    pub decision: Decision,
    /// Who answered (a name, or `argo-ui <workflow>` for a suspend node answered in the UI).
    pub reviewed_by: String,
    pub reviewed_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where a plan's review lives (lake-relative).
pub fn review_path(target: &DatasetName, plan_id: &str) -> String {
    format!("{}/review.json", layout::release_dir(target, plan_id))
}

/// Records a person's decision on a plan whose policy verdict is `needs-review`. The first
/// answer is final: a later one gets [`Error::AlreadyDecided`] unless it agrees.
pub async fn review(
    lake: &StoreLocation,
    plan: &Plan,
    approve: bool,
    by: &str,
    reason: Option<&str>,
) -> Result<(PlanReview, bool)> {
    let target = DatasetName::new(&plan.target)?;
    let verdict = records::read_json::<PlanApproval>(lake, &approval_path(&target, &plan.id))
        .await?
        .ok_or_else(|| Error::Missing {
            what: format!("policy verdict of plan {}", plan.id),
            lake: lake.url().to_string(),
            hint: "run medallion-approve with the policy first".into(),
        })?;
    if verdict.decision != Decision::NeedsReview {
        return Err(Error::AlreadyDecided {
            workflow: plan.target.clone(),
            gate: format!("plan {}", plan.id),
            decision: verdict.decision.as_str().into(),
            by: verdict.decided_by,
            at: verdict.decided_at,
        });
    }
    let decision = if approve {
        Decision::Approved
    } else {
        Decision::Rejected
    };
    let record = PlanReview {
        format: PLAN_APPROVAL_FORMAT,
        plan_id: plan.id.clone(),
        target: plan.target.clone(),
        plan_hash: plan.hash.clone(),
        decision,
        reviewed_by: by.to_string(),
        reviewed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        reason: reason.map(str::to_string),
    };
    let rel = review_path(&target, &plan.id);
    match records::create_json(lake, &rel, &record).await? {
        Created::New => Ok((record, true)),
        Created::AlreadyExists => {
            let existing = records::read_json::<PlanReview>(lake, &rel)
                .await?
                .ok_or_else(|| Error::Missing {
                    what: format!("review of plan {}", plan.id),
                    lake: lake.url().to_string(),
                    hint: "it was removed while being read; review again".into(),
                })?;
            if existing.decision == decision {
                Ok((existing, false))
            } else {
                Err(Error::AlreadyDecided {
                    workflow: plan.target.clone(),
                    gate: format!("plan {}", plan.id),
                    decision: existing.decision.as_str().into(),
                    by: existing.reviewed_by,
                    at: existing.reviewed_at,
                })
            }
        }
    }
}

/// Who allowed a plan to be applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Authorization {
    pub approval: PlanApproval,
    pub review: Option<PlanReview>,
}

impl Authorization {
    /// `policy <file>` or `policy <file>, reviewed by <person>`.
    pub fn by(&self) -> String {
        match &self.review {
            Some(r) => format!(
                "{}, reviewed by {}",
                self.approval.decided_by, r.reviewed_by
            ),
            None => self.approval.decided_by.clone(),
        }
    }
}

/// The records that allow `plan` to be applied: an approved verdict bound to its hash, or a
/// `needs-review` verdict with an approving review bound to its hash. Anything else refuses
/// with the reason (a precondition: exit 3).
pub async fn authorization(lake: &StoreLocation, plan: &Plan) -> Result<Authorization> {
    let target = DatasetName::new(&plan.target)?;
    let refuse = |message: String| Error::NotAuthorized {
        plan: plan.id.clone(),
        target: plan.target.clone(),
        message,
    };
    let approval = records::read_json::<PlanApproval>(lake, &approval_path(&target, &plan.id))
        .await?
        .ok_or_else(|| refuse("it has no approval; run medallion-approve first".into()))?;
    if approval.plan_hash != plan.hash {
        return Err(refuse(format!(
            "its approval is for hash {}, the plan has {}",
            approval.plan_hash, plan.hash
        )));
    }
    match approval.decision {
        Decision::Approved => Ok(Authorization {
            approval,
            review: None,
        }),
        Decision::Rejected => Err(refuse(format!(
            "it was rejected by {}: {}",
            approval.decided_by, approval.reasons
        ))),
        Decision::NeedsReview => {
            let review = records::read_json::<PlanReview>(lake, &review_path(&target, &plan.id))
                .await?
                .ok_or_else(|| {
                    refuse(format!(
                        "it needs a person's review ({}) and has none yet",
                        approval.reasons
                    ))
                })?;
            if review.plan_hash != plan.hash {
                return Err(refuse(format!(
                    "its review is for hash {}, the plan has {}",
                    review.plan_hash, plan.hash
                )));
            }
            if review.decision != Decision::Approved {
                return Err(refuse(format!(
                    "{} rejected it in review",
                    review.reviewed_by
                )));
            }
            Ok(Authorization {
                approval,
                review: Some(review),
            })
        }
    }
}
