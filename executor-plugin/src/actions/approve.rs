//! `approve`: the release policy as a pod-less gate (the same code as `medallion-approve`).
//!
//! ```yaml
//! plugin:
//!   medallion:
//!     approve:
//!       gate: release                 # names this decision (default: the template's name)
//!       policy:                       # inline (see medallion_release::policy) ...
//!         thresholds: ["r2 >= 0.75"]
//!         not_worse_than: production
//!       # policy_file: policies/house-price.yaml   ... or a YAML file in the lake
//!       model: house-price            # the candidate: a model version's metrics.json ...
//!       version: "{{tasks.train.outputs.parameters.version}}"
//!       # metrics: '{{tasks.train.outputs.parameters.metrics}}'   ... or metrics as JSON
//!       # plan: house-price/<plan-id>                                ... or a release plan
//!       requeue: 30s                  # while a person decides
//!       timeout: 24h                  # then the gate fails
//! ```
//!
//! `approved` → Succeeded; `rejected` → Failed with the reasons; `needs-review` → a request is
//! recorded in the lake and the node stays Running (with `requeue`) until
//! `medallion approve --grant|--reject <workflow>` records a decision or the timeout passes. A
//! recorded decision is final: later calls return the same result.
//!
//! Outputs: `verdict` (approved, rejected, waiting), `decided-by` (`policy` or a person),
//! `reasons`, `checks` (JSON).

use std::time::Duration;

use medallion_argo::{ExecuteTemplateReply, NodePhase, format_go_duration, parse_go_duration};
use medallion_lake::records;
use medallion_release::approval::{self, Verdict as Person, WorkflowId};
use medallion_release::models::{self, Metrics};
use medallion_release::plan::{self, Plan};
use medallion_release::policy::{Baseline, Decision, Policy, Subject, Verdict};
use serde::Deserialize;
use serde_json::Value;

use super::{ActionError, Call, VersionArg, check_lake, invalid, name_arg, node, param};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveArgs {
    #[serde(default)]
    gate: Option<String>,
    #[serde(default)]
    policy: Option<Value>,
    #[serde(default)]
    policy_file: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    version: Option<VersionArg>,
    #[serde(default)]
    metrics: Option<Value>,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    requeue: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    lake: Option<String>,
}

pub async fn run(call: &Call<'_>, args: ApproveArgs) -> Result<ExecuteTemplateReply, ActionError> {
    check_lake(call, "approve", args.lake.as_deref())?;
    let gate_name = args
        .gate
        .clone()
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| call.template.name.clone());
    let gate = name_arg("approve", "gate", &gate_name)?;
    let requeue = duration_arg(
        "requeue",
        args.requeue.as_deref(),
        call.state.config.default_requeue,
    )?;
    let timeout = duration_arg(
        "timeout",
        args.timeout.as_deref(),
        call.state.config.default_approval_timeout,
    )?;
    if requeue < Duration::from_secs(1) {
        return Err(invalid("approve", "requeue", "must be at least 1s"));
    }
    let workflow = WorkflowId {
        name: call.workflow.name.clone(),
        namespace: call.workflow.namespace.clone(),
        uid: call.workflow.uid.clone(),
    };
    let lake = &call.state.config.lake;

    // A person's decision is final: it wins over a re-evaluation that might now differ.
    if !workflow.uid.is_empty()
        && let Some(d) = approval::decision(lake, &workflow.uid, &gate).await?
    {
        let (phase, verdict) = match d.verdict {
            Person::Granted => (NodePhase::Succeeded, "approved"),
            Person::Rejected => (NodePhase::Failed, "rejected"),
        };
        return Ok(node(
            phase,
            format!(
                "{} by {} at {}: {}",
                d.verdict.as_str(),
                d.by,
                d.decided_at.to_rfc3339(),
                d.reason
            ),
            vec![
                param("verdict", verdict),
                param("decided-by", d.by.clone()),
                param("reasons", d.reason.clone()),
                param("checks", "[]"),
            ],
        ));
    }

    let policy = load_policy(call, &args).await?;
    let plan = match &args.plan {
        Some(spec) => Some(load_plan(call, spec).await?),
        None => None,
    };
    let (metrics, model) = candidate(call, &args, plan.as_ref()).await?;
    let baseline = baseline(call, &policy, model.as_deref(), plan.as_ref()).await?;
    let verdict = policy.evaluate(Subject {
        metrics: metrics.as_ref(),
        baseline: &baseline,
        plan: plan.as_ref(),
    });
    let checks = serde_json::to_string(&verdict.checks).unwrap_or_else(|_| "[]".into());
    let reasons = verdict.reasons();
    match verdict.decision {
        Decision::Approved => Ok(decided(NodePhase::Succeeded, "approved", &reasons, checks)),
        Decision::Rejected => Ok(decided(NodePhase::Failed, "rejected", &reasons, checks)),
        Decision::NeedsReview => {
            wait_for_person(call, &workflow, &gate, &verdict, requeue, timeout, checks).await
        }
    }
}

fn decided(phase: NodePhase, verdict: &str, reasons: &str, checks: String) -> ExecuteTemplateReply {
    node(
        phase,
        format!("{verdict} by policy: {reasons}"),
        vec![
            param("verdict", verdict),
            param("decided-by", "policy"),
            param("reasons", reasons),
            param("checks", checks),
        ],
    )
}

async fn wait_for_person(
    call: &Call<'_>,
    workflow: &WorkflowId,
    gate: &medallion_lake::DatasetName,
    verdict: &Verdict,
    requeue: Duration,
    timeout: Duration,
    checks: String,
) -> Result<ExecuteTemplateReply, ActionError> {
    if workflow.uid.is_empty() || workflow.name.is_empty() {
        return Err(ActionError::Invalid(
            "the policy asks for a person's review, but the request carries no workflow name and uid to wait on".into(),
        ));
    }
    approval::check_uid(&workflow.uid)?;
    let reasons = verdict.reasons();
    let now = chrono::Utc::now();
    let request = approval::request_review(
        &call.state.config.lake,
        workflow,
        gate,
        &reasons,
        timeout,
        now,
    )
    .await?;
    if now > request.deadline {
        return Ok(node(
            NodePhase::Failed,
            format!(
                "no decision before the deadline {} (requested {}): {reasons}",
                request.deadline.to_rfc3339(),
                request.requested_at.to_rfc3339()
            ),
            vec![
                param("verdict", "rejected"),
                param("decided-by", "timeout"),
                param("reasons", reasons.clone()),
                param("checks", checks),
            ],
        ));
    }
    let message = format!(
        "waiting for a person until {}: medallion approve --grant {} --gate {gate} --by <you> --reason <why> (or --reject); {reasons}",
        request.deadline.to_rfc3339(),
        workflow.name
    );
    Ok(node(
        NodePhase::Running,
        message,
        vec![
            param("verdict", "waiting"),
            param("decided-by", ""),
            param("reasons", reasons.clone()),
            param("checks", checks),
        ],
    )
    .with_requeue(format_go_duration(requeue)))
}

fn duration_arg(
    field: &str,
    raw: Option<&str>,
    default: Duration,
) -> Result<Duration, ActionError> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(text) => parse_go_duration(text).map_err(|e| invalid("approve", field, e)),
    }
}

async fn load_policy(call: &Call<'_>, args: &ApproveArgs) -> Result<Policy, ActionError> {
    match (&args.policy, &args.policy_file) {
        (Some(inline), None) => Policy::from_json("plugin.medallion.approve", inline)
            .map_err(|e| ActionError::Invalid(e.to_string())),
        (None, Some(rel)) => {
            if rel.is_empty()
                || rel
                    .split('/')
                    .any(|s| s.is_empty() || s == "." || s == "..")
            {
                return Err(invalid(
                    "approve",
                    "policy_file",
                    format!("'{rel}' is not a lake-relative path"),
                ));
            }
            let lake = &call.state.config.lake;
            let bytes = records::read_bytes(lake, rel).await?.ok_or_else(|| {
                invalid(
                    "approve",
                    "policy_file",
                    format!("{rel} does not exist in {}", lake.url()),
                )
            })?;
            let text = String::from_utf8_lossy(&bytes);
            Policy::from_yaml(rel, &text).map_err(|e| ActionError::Invalid(e.to_string()))
        }
        (Some(_), Some(_)) => Err(invalid(
            "approve",
            "policy",
            "give policy or policy_file, not both",
        )),
        (None, None) => Err(invalid(
            "approve",
            "policy",
            "is required (inline, or policy_file in the lake)",
        )),
    }
}

async fn load_plan(call: &Call<'_>, spec: &str) -> Result<Plan, ActionError> {
    let (endpoint, id) = spec.split_once('/').ok_or_else(|| {
        invalid(
            "approve",
            "plan",
            format!("'{spec}' is not <endpoint>/<plan-id>"),
        )
    })?;
    let endpoint = name_arg("approve", "plan", endpoint)?;
    Ok(plan::read(&call.state.config.lake, &endpoint, id).await?)
}

/// The candidate's metrics and model name, from `metrics`, `model`+`version`, or the plan.
async fn candidate(
    call: &Call<'_>,
    args: &ApproveArgs,
    plan: Option<&Plan>,
) -> Result<(Option<Metrics>, Option<String>), ActionError> {
    let from_plan = plan.and_then(|p| p.metrics.as_ref());
    let model = args
        .model
        .clone()
        .or_else(|| from_plan.map(|m| m.model.clone()));
    if let Some(raw) = &args.metrics {
        let value = match raw {
            Value::String(text) => serde_json::from_str(text)
                .map_err(|e| invalid("approve", "metrics", format!("is not JSON: {e}")))?,
            other => other.clone(),
        };
        let metrics = models::metrics_from_json("plugin.medallion.approve", &value)
            .map_err(|e| ActionError::Invalid(e.to_string()))?;
        return Ok((Some(metrics), model));
    }
    if let Some(m) = from_plan {
        return Ok((Some(m.candidate.clone()), model));
    }
    match (&args.model, args.version) {
        (Some(name), Some(VersionArg::Number(v))) => {
            let name_ok = name_arg("approve", "model", name)?;
            let metrics = models::metrics(&call.state.config.lake, &name_ok, v).await?;
            Ok((Some(metrics), model))
        }
        (Some(_), _) => Err(invalid(
            "approve",
            "version",
            "give the candidate's version number with model",
        )),
        (None, _) => Ok((None, model)),
    }
}

async fn baseline(
    call: &Call<'_>,
    policy: &Policy,
    model: Option<&str>,
    plan: Option<&Plan>,
) -> Result<Baseline, ActionError> {
    let Some(alias) = &policy.not_worse_than else {
        return Ok(Baseline::None);
    };
    // A plan carries the production metrics it was made against.
    if let Some(m) = plan.and_then(|p| p.metrics.as_ref()) {
        return Ok(match (&m.production, m.production_version) {
            (Some(metrics), Some(version)) => Baseline::Found {
                alias: alias.clone(),
                version,
                metrics: metrics.clone(),
            },
            _ => Baseline::Missing {
                alias: alias.clone(),
            },
        });
    }
    let Some(model) = model else {
        return Err(invalid(
            "approve",
            "model",
            format!("not_worse_than: {alias} needs the model's name"),
        ));
    };
    let model = name_arg("approve", "model", model)?;
    let alias_name = name_arg("approve", "policy.not_worse_than", alias)?;
    let lake = &call.state.config.lake;
    Ok(match models::alias(lake, &model, &alias_name).await? {
        None => Baseline::Missing {
            alias: alias.clone(),
        },
        Some(record) => Baseline::Found {
            alias: alias.clone(),
            version: record.version,
            metrics: models::metrics(lake, &model, record.version).await?,
        },
    })
}
