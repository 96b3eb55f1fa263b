//! `medallion approve`: a person's decision on a gate that waits in the lake (the executor
//! plugin's `approve` with a policy that asks for review), and the list of waiting gates.

use chrono::Utc;
use medallion_lake::StoreLocation;
use medallion_release::approval::{self, Selector, Verdict};

pub struct Decide {
    pub lake: String,
    pub workflow: String,
    pub verdict: Verdict,
    pub gate: Option<String>,
    pub namespace: Option<String>,
    pub by: String,
    pub reason: String,
}

pub async fn decide(d: Decide) -> anyhow::Result<()> {
    let lake = StoreLocation::open("lake", &d.lake)?;
    let selector = Selector {
        workflow: d.workflow,
        gate: d.gate,
        namespace: d.namespace,
    };
    let decision =
        approval::decide(&lake, &selector, d.verdict, &d.by, &d.reason, Utc::now()).await?;
    println!(
        "{} {} gate {} of workflow {} ({}/{}, uid {}); the gate picks it up at its next requeue",
        decision.by,
        decision.verdict.as_str(),
        decision.gate,
        decision.workflow.name,
        if decision.workflow.namespace.is_empty() {
            "-"
        } else {
            &decision.workflow.namespace
        },
        decision.workflow.name,
        decision.workflow.uid
    );
    Ok(())
}

pub async fn list(lake: &str, all: bool) -> anyhow::Result<()> {
    let lake = StoreLocation::open("lake", lake)?;
    let now = Utc::now();
    let rows: Vec<_> = approval::list(&lake)
        .await?
        .into_iter()
        .filter(|(r, d)| all || (d.is_none() && r.deadline > now))
        .collect();
    if rows.is_empty() {
        println!(
            "{}",
            if all {
                "no approvals recorded"
            } else {
                "no gate is waiting for a decision (--all shows decided and expired ones)"
            }
        );
        return Ok(());
    }
    println!(
        "{:<24} {:<12} {:<16} {:<26} {:<10} reasons",
        "workflow", "namespace", "gate", "deadline", "state"
    );
    for (request, decision) in rows {
        let state = match &decision {
            Some(d) => format!("{} by {}", d.verdict.as_str(), d.by),
            None if request.deadline <= now => "expired".into(),
            None => "waiting".into(),
        };
        println!(
            "{:<24} {:<12} {:<16} {:<26} {:<10} {}",
            request.workflow.name,
            request.workflow.namespace,
            request.gate,
            request.deadline.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            state,
            request.reasons
        );
    }
    Ok(())
}
