//! The release steps' parameters and calls into the release library: `medallion-plan`
//! (a Terraform plan summarised into a sealed Medallion plan) and `medallion-approve` (a policy's
//! verdict over a plan, bound to its hash).

use std::path::PathBuf;

use medallion_lake::{DatasetName, StoreLocation};
use medallion_release::Error;
use medallion_release::plan::{self, Plan, PlanKind};
use medallion_release::plan_approval::{self, PlanApproval};
use medallion_release::policy::{Decision, Policy};
use medallion_release::terraform;

use crate::StepOutputs;

fn read_file(flag: &str, path: &PathBuf) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| {
        Error::invalid(
            path.display().to_string(),
            flag,
            format!("cannot be read ({e})"),
        )
    })
}

#[derive(clap::Args, Debug, Clone)]
pub struct PlanArgs {
    /// Lake root (local path or az://, abfss://, https:// URL); plans go to releases/<target>/<plan-id>/
    #[arg(long, env = "MEDALLION_LAKE")]
    pub lake: String,
    /// What the plan changes: the Terraform workspace (or, for model releases, the endpoint)
    #[arg(long, env = "MEDALLION_TARGET")]
    pub target: String,
    /// The output of `terraform show -json <planfile>`
    #[arg(long, env = "MEDALLION_TERRAFORM_PLAN")]
    pub terraform_plan: Option<PathBuf>,
    /// Where to write the outputs
    #[arg(long, env = "MEDALLION_OUTPUTS_DIR", default_value = "/tmp/outputs")]
    pub outputs_dir: PathBuf,
}

pub struct Planned {
    pub plan: Plan,
    pub created: bool,
    pub uri: String,
}

pub async fn plan(args: &PlanArgs) -> Result<Planned, Error> {
    let lake = StoreLocation::open("lake", &args.lake)?;
    let target = DatasetName::new(&args.target)?;
    let Some(path) = &args.terraform_plan else {
        return Err(Error::invalid(
            "arguments",
            "--terraform-plan",
            "missing: this build plans Terraform changes; model releases (--model) are not implemented yet",
        ));
    };
    let text = String::from_utf8(read_file("--terraform-plan", path)?).map_err(|_| {
        Error::invalid(
            path.display().to_string(),
            "--terraform-plan",
            "is not UTF-8 text",
        )
    })?;
    let summary = terraform::summarize(&path.display().to_string(), &text)?;
    let destructive = summary
        .changes
        .iter()
        .filter(|c| c.action.is_destructive())
        .count();
    let text = format!(
        "Terraform {} plan for {}: {}{}.",
        summary.terraform_version,
        target,
        summary.counts(),
        if destructive > 0 {
            format!("; {destructive} change(s) delete or replace existing resources")
        } else {
            String::new()
        }
    );
    let new = plan::new_plan(
        PlanKind::Infrastructure,
        &target,
        text,
        summary.changes,
        None,
    )?;
    let (plan, created) = plan::store(&lake, new).await?;
    let uri = lake.url_of(&lake.path(&medallion_lake::layout::release_dir(&target, &plan.id)));
    Ok(Planned { plan, created, uri })
}

pub fn plan_outputs(p: &Planned) -> StepOutputs {
    let mut out = StepOutputs::new();
    out.set("plan-id", p.plan.id.clone())
        .set("hash", p.plan.hash.clone())
        .set("summary", p.plan.summary.clone())
        .set("destructive", p.plan.destructive())
        .set("created", p.created)
        .set("uri", p.uri.clone());
    out
}

#[derive(clap::Args, Debug, Clone)]
pub struct ApproveArgs {
    /// Lake root
    #[arg(long, env = "MEDALLION_LAKE")]
    pub lake: String,
    /// The plan's target (workspace or endpoint)
    #[arg(long, env = "MEDALLION_TARGET")]
    pub target: String,
    /// The plan id (medallion-plan's plan-id output)
    #[arg(long, env = "MEDALLION_PLAN_ID")]
    pub plan_id: String,
    /// The policy (YAML): thresholds, not_worse_than, destructive, protected, max_replicas,
    /// allowed_namespaces, review
    #[arg(long, env = "MEDALLION_POLICY")]
    pub policy: PathBuf,
    /// Where to write the outputs
    #[arg(long, env = "MEDALLION_OUTPUTS_DIR", default_value = "/tmp/outputs")]
    pub outputs_dir: PathBuf,
}

pub struct Approved {
    pub approval: PlanApproval,
    pub created: bool,
}

pub async fn approve(args: &ApproveArgs) -> Result<Approved, Error> {
    let lake = StoreLocation::open("lake", &args.lake)?;
    let target = DatasetName::new(&args.target)?;
    let bytes = read_file("--policy", &args.policy)?;
    let source = args.policy.display().to_string();
    let text = String::from_utf8(bytes.clone())
        .map_err(|_| Error::invalid(&source, "--policy", "is not UTF-8 text"))?;
    let policy = Policy::from_yaml(&source, &text)?;
    let plan = plan::read(&lake, &target, &args.plan_id).await?;
    let (approval, created) = plan_approval::decide(&lake, &plan, &policy, &source, &bytes).await?;
    Ok(Approved { approval, created })
}

pub fn approve_outputs(a: &Approved) -> StepOutputs {
    let mut out = StepOutputs::new();
    out.set("verdict", a.approval.decision.as_str())
        .set("plan-id", a.approval.plan_id.clone())
        .set("hash", a.approval.plan_hash.clone())
        .set("reasons", a.approval.reasons.clone())
        .set("decided-by", a.approval.decided_by.clone())
        .set("created", a.created);
    out
}

/// A rejection fails the step (exit 3) after the outputs and the record are written.
pub fn rejection(a: &Approved) -> Option<String> {
    (a.approval.decision == Decision::Rejected).then(|| {
        format!(
            "plan {} of {} is rejected: {}",
            a.approval.plan_id, a.approval.target, a.approval.reasons
        )
    })
}
