//! Approval records in the lake, for gates that wait for a person:
//!
//! ```text
//! <lake>/approvals/<workflow-uid>/<gate>/request.json    written once by the gate (plugin or step)
//! <lake>/approvals/<workflow-uid>/<gate>/decision.json   written once by `medallion approve`
//! ```
//!
//! Both are created with if-none-match, so a retried gate keeps its first deadline, two people
//! deciding at once cannot both win, and a decision never changes. Records are keyed by the
//! workflow's uid, not its name: a later workflow with a reused name never inherits a decision.

use chrono::{DateTime, Utc};
use medallion_lake::records::{self, Created};
use medallion_lake::{DatasetName, StoreLocation, layout};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const APPROVAL_FORMAT: u32 = 1;

/// The workflow a gate belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowId {
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    pub uid: String,
}

/// A gate's request for a person's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub format: u32,
    pub workflow: WorkflowId,
    pub gate: String,
    pub requested_at: DateTime<Utc>,
    /// After this the gate fails instead of waiting.
    pub deadline: DateTime<Utc>,
    /// Why a person must decide (the policy's review reasons).
    pub reasons: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Granted,
    Rejected,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Granted => "granted",
            Verdict::Rejected => "rejected",
        }
    }
}

/// A person's decision on a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalDecision {
    pub format: u32,
    pub workflow: WorkflowId,
    pub gate: String,
    pub verdict: Verdict,
    pub by: String,
    pub reason: String,
    pub decided_at: DateTime<Utc>,
}

/// Argo uids are UUIDs; anything else could name a path outside `approvals/`.
pub fn check_uid(uid: &str) -> Result<()> {
    let ok = !uid.is_empty()
        && uid.len() <= 64
        && uid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "workflow",
            "metadata.uid",
            format!("'{uid}' is not a workflow uid (letters, digits and -, as Argo's UUIDs)"),
        ))
    }
}

fn request_path(uid: &str, gate: &DatasetName) -> String {
    format!("{}/request.json", layout::approval_dir(uid, gate))
}

fn decision_path(uid: &str, gate: &DatasetName) -> String {
    format!("{}/decision.json", layout::approval_dir(uid, gate))
}

/// Records that `gate` of `workflow` waits for a person, unless it already does; returns the
/// request as stored (so the first deadline holds across retries and restarts).
pub async fn request_review(
    lake: &StoreLocation,
    workflow: &WorkflowId,
    gate: &DatasetName,
    reasons: &str,
    timeout: std::time::Duration,
    now: DateTime<Utc>,
) -> Result<ApprovalRequest> {
    check_uid(&workflow.uid)?;
    let rel = request_path(&workflow.uid, gate);
    if let Some(existing) = records::read_json::<ApprovalRequest>(lake, &rel).await? {
        return Ok(existing);
    }
    let timeout = chrono::Duration::from_std(timeout)
        .map_err(|_| Error::invalid("arguments", "timeout", "is too long"))?;
    let request = ApprovalRequest {
        format: APPROVAL_FORMAT,
        workflow: workflow.clone(),
        gate: gate.to_string(),
        requested_at: now,
        deadline: now + timeout,
        reasons: reasons.to_string(),
    };
    match records::create_json(lake, &rel, &request).await? {
        Created::New => Ok(request),
        Created::AlreadyExists => {
            records::read_json(lake, &rel)
                .await?
                .ok_or_else(|| Error::Missing {
                    what: rel.clone(),
                    lake: lake.url().to_string(),
                    hint: "it vanished right after being created; retry".into(),
                })
        }
    }
}

/// The decision on `gate` of the workflow with `uid`, if a person made one.
pub async fn decision(
    lake: &StoreLocation,
    uid: &str,
    gate: &DatasetName,
) -> Result<Option<ApprovalDecision>> {
    check_uid(uid)?;
    Ok(records::read_json(lake, &decision_path(uid, gate)).await?)
}

/// Every request in the lake with its decision, oldest first.
pub async fn list(
    lake: &StoreLocation,
) -> Result<Vec<(ApprovalRequest, Option<ApprovalDecision>)>> {
    let mut out = Vec::new();
    for rel in records::list(lake, "approvals", "/request.json").await? {
        let Some(request) = records::read_json::<ApprovalRequest>(lake, &rel).await? else {
            continue;
        };
        let gate = DatasetName::new(&request.gate)?;
        let decided =
            records::read_json(lake, &decision_path(&request.workflow.uid, &gate)).await?;
        out.push((request, decided));
    }
    out.sort_by_key(|(r, _)| r.requested_at);
    Ok(out)
}

/// Which waiting gate a person means.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    /// A workflow name or uid.
    pub workflow: String,
    pub gate: Option<String>,
    pub namespace: Option<String>,
}

/// Records a person's decision on the one request `selector` names. Refuses when none or several
/// match, when the request's deadline has passed, or when it was already decided.
pub async fn decide(
    lake: &StoreLocation,
    selector: &Selector,
    verdict: Verdict,
    by: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<ApprovalDecision> {
    if by.trim().is_empty() {
        return Err(Error::invalid("arguments", "--by", "say who decides"));
    }
    if reason.trim().is_empty() {
        return Err(Error::invalid("arguments", "--reason", "say why"));
    }
    let all = list(lake).await?;
    let matching: Vec<&(ApprovalRequest, Option<ApprovalDecision>)> = all
        .iter()
        .filter(|(r, _)| {
            r.workflow.name == selector.workflow || r.workflow.uid == selector.workflow
        })
        .filter(|(r, _)| selector.gate.as_ref().is_none_or(|g| &r.gate == g))
        .filter(|(r, _)| {
            selector
                .namespace
                .as_ref()
                .is_none_or(|n| &r.workflow.namespace == n)
        })
        .collect();
    let undecided: Vec<_> = matching.iter().filter(|(_, d)| d.is_none()).collect();
    let (request, _) = match (undecided.as_slice(), matching.as_slice()) {
        ([one], _) => **one,
        ([], [(_, Some(d))]) => {
            return Err(Error::AlreadyDecided {
                workflow: d.workflow.name.clone(),
                gate: d.gate.clone(),
                decision: d.verdict.as_str().into(),
                by: d.by.clone(),
                at: d.decided_at.to_rfc3339(),
            });
        }
        ([], _) => {
            return Err(Error::Missing {
                what: format!("an approval waiting for workflow {}", selector.workflow),
                lake: lake.url().to_string(),
                hint: "list waiting gates with `medallion approve --list`".into(),
            });
        }
        (many, _) => {
            let names: Vec<String> = many
                .iter()
                .map(|(r, _)| {
                    format!(
                        "{}/{} gate {}",
                        r.workflow.namespace, r.workflow.name, r.gate
                    )
                })
                .collect();
            return Err(Error::invalid(
                "arguments",
                "workflow",
                format!(
                    "{} approvals match ({}); add --gate or --namespace, or pass the uid",
                    many.len(),
                    names.join(", ")
                ),
            ));
        }
    };
    if now > request.deadline {
        return Err(Error::invalid(
            "arguments",
            "workflow",
            format!(
                "the approval for {} gate {} expired at {}; the gate has failed, re-run the workflow",
                request.workflow.name,
                request.gate,
                request.deadline.to_rfc3339()
            ),
        ));
    }
    let decision = ApprovalDecision {
        format: APPROVAL_FORMAT,
        workflow: request.workflow.clone(),
        gate: request.gate.clone(),
        verdict,
        by: by.trim().to_string(),
        reason: reason.trim().to_string(),
        decided_at: now,
    };
    let gate = DatasetName::new(&request.gate)?;
    let rel = decision_path(&request.workflow.uid, &gate);
    match records::create_json(lake, &rel, &decision).await? {
        Created::New => Ok(decision),
        Created::AlreadyExists => {
            let d: ApprovalDecision =
                records::read_json(lake, &rel)
                    .await?
                    .ok_or_else(|| Error::Missing {
                        what: rel.clone(),
                        lake: lake.url().to_string(),
                        hint: "retry".into(),
                    })?;
            Err(Error::AlreadyDecided {
                workflow: d.workflow.name,
                gate: d.gate,
                decision: d.verdict.as_str().into(),
                by: d.by,
                at: d.decided_at.to_rfc3339(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn wf(name: &str, uid: &str) -> WorkflowId {
        WorkflowId {
            name: name.into(),
            namespace: "argo".into(),
            uid: uid.into(),
        }
    }

    #[tokio::test]
    async fn request_decide_and_stay_decided() {
        let dir = tempfile::tempdir().unwrap();
        let lake = StoreLocation::open("lake", dir.path().to_str().unwrap()).unwrap();
        let gate = DatasetName::new("release").unwrap();
        let t0 = Utc::now();
        let r1 = request_review(
            &lake,
            &wf("hp-1", "u-1"),
            &gate,
            "review",
            Duration::from_secs(60),
            t0,
        )
        .await
        .unwrap();
        // A retry later keeps the first deadline.
        let r2 = request_review(
            &lake,
            &wf("hp-1", "u-1"),
            &gate,
            "review",
            Duration::from_secs(60),
            t0 + chrono::Duration::seconds(30),
        )
        .await
        .unwrap();
        assert_eq!(r1.deadline, r2.deadline);
        assert_eq!(decision(&lake, "u-1", &gate).await.unwrap(), None);

        let sel = Selector {
            workflow: "hp-1".into(),
            ..Default::default()
        };
        let e = decide(&lake, &sel, Verdict::Granted, "", "ok", t0)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("--by"), "{e}");
        let d = decide(&lake, &sel, Verdict::Granted, "alice", "metrics fine", t0)
            .await
            .unwrap();
        assert_eq!(decision(&lake, "u-1", &gate).await.unwrap(), Some(d));
        let e = decide(&lake, &sel, Verdict::Rejected, "bob", "no", t0)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::AlreadyDecided { .. }), "{e}");
        assert!(e.to_string().contains("already granted by alice"), "{e}");

        // Unknown workflow, expired request, ambiguous name.
        let none = Selector {
            workflow: "nope".into(),
            ..Default::default()
        };
        assert!(matches!(
            decide(&lake, &none, Verdict::Granted, "a", "b", t0)
                .await
                .unwrap_err(),
            Error::Missing { .. }
        ));
        request_review(
            &lake,
            &wf("hp-2", "u-2"),
            &gate,
            "r",
            Duration::from_secs(1),
            t0,
        )
        .await
        .unwrap();
        let late = t0 + chrono::Duration::seconds(5);
        let sel2 = Selector {
            workflow: "u-2".into(),
            ..Default::default()
        };
        let e = decide(&lake, &sel2, Verdict::Granted, "a", "b", late)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");
        let other = DatasetName::new("deploy").unwrap();
        request_review(
            &lake,
            &wf("hp-3", "u-3"),
            &gate,
            "r",
            Duration::from_secs(60),
            t0,
        )
        .await
        .unwrap();
        request_review(
            &lake,
            &wf("hp-3", "u-3"),
            &other,
            "r",
            Duration::from_secs(60),
            t0,
        )
        .await
        .unwrap();
        let sel3 = Selector {
            workflow: "hp-3".into(),
            ..Default::default()
        };
        let e = decide(&lake, &sel3, Verdict::Granted, "a", "b", t0)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("2 approvals match"), "{e}");
        let sel3 = Selector {
            gate: Some("deploy".into()),
            ..sel3
        };
        decide(&lake, &sel3, Verdict::Rejected, "a", "b", t0)
            .await
            .unwrap();
        assert_eq!(list(&lake).await.unwrap().len(), 4);
        assert!(check_uid("../x").is_err());
    }
}
