//! The release steps' parameters and calls into the release library: `medallion-plan`
//! (a Terraform plan summarised into a sealed Medallion plan) and `medallion-approve` (a policy's
//! verdict over a plan, bound to its hash).

use std::path::PathBuf;

use medallion_lake::{DatasetName, StoreLocation};
use medallion_release::Error;
use medallion_release::deployments;
use medallion_release::model_release::{self, DeployTarget, ReleaseRequest, Running, SlotState};
use medallion_release::plan::{self, Plan};
use medallion_release::plan_approval::{self, PlanApproval};
use medallion_release::policy::{Decision, Policy, Review};
use medallion_release::terraform;

use crate::kube_apply::{KubeClient, KubeConn, object_path};
use crate::local_endpoint::EndpointDir;
use medallion_lake::{Classified, ErrorClass};
use medallion_release::live_diff::{self, LiveDiff};

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
    /// Infrastructure: the output of `terraform show -json <planfile>`
    #[arg(long, env = "MEDALLION_TERRAFORM_PLAN", conflicts_with = "model")]
    pub terraform_plan: Option<PathBuf>,
    /// Infrastructure: the saved plan file itself (`terraform plan -out`); its SHA-256 goes into
    /// the plan, so medallion-deploy --terraform-planfile can prove the file to apply is the one approved
    #[arg(
        long,
        env = "MEDALLION_TERRAFORM_PLANFILE",
        requires = "terraform_plan"
    )]
    pub terraform_planfile: Option<PathBuf>,
    /// Model release: the model to release to the endpoint named by --target
    #[arg(long, env = "MEDALLION_MODEL", requires = "model_version")]
    pub model: Option<String>,
    /// Model release: the candidate version (medallion-train's version output)
    #[arg(long, env = "MEDALLION_MODEL_VERSION")]
    pub model_version: Option<u64>,
    /// Model release: where it goes (local, kubernetes, manifests)
    #[arg(long, env = "MEDALLION_DEPLOY_TARGET", default_value = "local")]
    pub deploy_target: String,
    /// Model release to kubernetes/manifests: the namespace
    #[arg(long, env = "MEDALLION_NAMESPACE")]
    pub namespace: Option<String>,
    /// Model release to kubernetes/manifests: replicas of the serving Deployment
    #[arg(long, env = "MEDALLION_REPLICAS")]
    pub replicas: Option<u32>,
    /// Model release to kubernetes/manifests: the medallion-serve image
    #[arg(long, env = "MEDALLION_SERVE_IMAGE")]
    pub image: Option<String>,
    /// Model release to kubernetes/manifests: autoscale up to this many replicas (an HPA)
    #[arg(long, env = "MEDALLION_MAX_REPLICAS")]
    pub max_replicas: Option<u32>,
    /// Model release to the local target: the folder of local endpoints (what runs is asked there)
    #[arg(
        long,
        env = "MEDALLION_STATE_DIR",
        default_value = ".medallion/endpoints"
    )]
    pub state_dir: PathBuf,
    /// Model release to kubernetes: the API server to compare the planned objects with
    #[command(flatten)]
    pub kube: KubeConn,
    /// Model release to kubernetes: diff the planned objects against the cluster with a
    /// server-side dry run: auto (when a cluster is configured: --kube-api, or in a pod),
    /// always (fail without one), never
    #[arg(long, env = "MEDALLION_SERVER_DRY_RUN", default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub server_dry_run: String,
    /// Where to write the outputs
    #[arg(long, env = "MEDALLION_OUTPUTS_DIR", default_value = "/tmp/outputs")]
    pub outputs_dir: PathBuf,
}

/// Why no plan was made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Release(#[from] Error),
    /// The API server refused the planned objects in the dry run (or could not be asked).
    #[error("server-side dry run against {server}: {message}")]
    DryRun {
        server: String,
        message: String,
        class: ErrorClass,
    },
}

impl From<medallion_lake::Error> for PlanError {
    fn from(e: medallion_lake::Error) -> Self {
        PlanError::Release(e.into())
    }
}

impl Classified for PlanError {
    fn class(&self) -> ErrorClass {
        match self {
            PlanError::Release(e) => e.class(),
            PlanError::DryRun { class, .. } => *class,
        }
    }
}

pub struct Planned {
    pub plan: Plan,
    pub created: bool,
    pub uri: String,
}

pub async fn plan(args: &PlanArgs) -> Result<Planned, PlanError> {
    let lake = StoreLocation::open("lake", &args.lake)?;
    let target = DatasetName::new(&args.target)?;
    let Some(path) = &args.terraform_plan else {
        let Some(model) = &args.model else {
            return Err(Error::invalid(
                "arguments",
                "--terraform-plan / --model",
                "missing: give --terraform-plan for an infrastructure plan or --model and --model-version for a model release",
            )
            .into());
        };
        return plan_model_release(args, &lake, &target, model).await;
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
    let planfile_sha256 = match &args.terraform_planfile {
        Some(p) => Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            read_file("--terraform-planfile", p)?,
        ))),
        None => None,
    };
    let new = plan::new_terraform_plan(&target, text, summary.changes, planfile_sha256)?;
    let (plan, created) = plan::store(&lake, new).await?;
    let uri = lake.url_of(&lake.path(&medallion_lake::layout::release_dir(&target, &plan.id)));
    Ok(Planned { plan, created, uri })
}

/// What the target reports as running: the servers themselves for the local target, the lake's
/// release record otherwise (no cluster is asked).
async fn running(
    args: &PlanArgs,
    lake: &StoreLocation,
    endpoint: &DatasetName,
    target: DeployTarget,
) -> Result<Running, Error> {
    if target == DeployTarget::Local {
        let ep = EndpointDir::new(&args.state_dir, endpoint.as_str());
        let local = |e: crate::local_endpoint::LocalError| {
            Error::invalid(
                args.state_dir.display().to_string(),
                "--state-dir",
                e.to_string(),
            )
        };
        let client = crate::local_endpoint::client().map_err(local)?;
        return ep.running(&client).await.map_err(local);
    }
    let state = deployments::current(lake, endpoint).await?;
    Ok(Running {
        active: state.map(|s| SlotState {
            slot: s.serving.slot,
            version: s.serving.version,
            ready: true,
        }),
        standby: None,
        reported_by: format!("the lake's release record releases/{endpoint}/current.json"),
    })
}

async fn plan_model_release(
    args: &PlanArgs,
    lake: &StoreLocation,
    endpoint: &DatasetName,
    model: &str,
) -> Result<Planned, PlanError> {
    let target: DeployTarget = args
        .deploy_target
        .parse()
        .map_err(|e: String| Error::invalid("arguments", "--deploy-target", e))?;
    let version = args.model_version.ok_or_else(|| {
        Error::invalid(
            "arguments",
            "--model-version",
            "missing: which version to release",
        )
    })?;
    let cluster = target != DeployTarget::Local;
    let req = ReleaseRequest {
        endpoint: endpoint.clone(),
        model: DatasetName::new(model)?,
        version,
        target,
        running: running(args, lake, endpoint, target).await?,
        // The cluster settings mean nothing to a local release (templates pass them always).
        namespace: cluster.then(|| args.namespace.clone()).flatten(),
        replicas: cluster.then_some(args.replicas).flatten(),
        image: cluster.then(|| args.image.clone()).flatten(),
        max_replicas: cluster.then_some(args.max_replicas).flatten(),
        lake: args.lake.clone(),
    };
    let mut new = model_release::plan(lake, &req).await?;
    let dry_run = match args.server_dry_run.as_str() {
        "never" => false,
        _ if target != DeployTarget::Kubernetes => false,
        "always" => true,
        _ => args.kube.configured(),
    };
    if dry_run {
        new = with_live_diff(&args.kube, new).await?;
    }
    let (plan, created) = plan::store(lake, new).await?;
    let uri = lake.url_of(&lake.path(&medallion_lake::layout::release_dir(endpoint, &plan.id)));
    Ok(Planned { plan, created, uri })
}

/// Adds what the release would change in the cluster (see [`live_diff`]) and a sentence to the
/// summary, then seals the plan again. Every planned object goes through the dry run before any
/// comparison, so an object the API server (or an admission webhook) refuses fails the plan.
async fn with_live_diff(conn: &KubeConn, mut plan: Plan) -> Result<Plan, PlanError> {
    let server = conn.kube_api.clone().unwrap_or_else(|| "in-cluster".into());
    let refused = |(message, class): (String, ErrorClass)| PlanError::DryRun {
        server: server.clone(),
        message,
        class,
    };
    let kube = KubeClient::new(conn).map_err(refused)?;
    let Some(release) = plan.release.as_mut() else {
        return Ok(plan);
    };
    let mut objects = Vec::new();
    for object in &release.objects {
        let dry = kube.apply_dry_run(object).await.map_err(refused)?;
        let live = kube
            .get(&object_path(object).map_err(refused)?)
            .await
            .map_err(refused)?;
        objects.push(live_diff::diff_object(live.as_ref(), &dry));
    }
    let diff = LiveDiff {
        server: kube.server().to_string(),
        objects,
    };
    plan.summary.push_str(&format!(
        " Against the cluster (server-side dry run): {}.",
        live_diff::one_line(&diff)
    ));
    release.live_diff = Some(diff);
    Ok(plan.seal()?)
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
    #[arg(long, env = "MEDALLION_POLICY", required_unless_present = "review")]
    pub policy: Option<PathBuf>,
    /// auto: the policy decides; manual: a person reviews whatever the policy approves
    #[arg(long, env = "MEDALLION_APPROVAL_MODE", default_value = "auto", value_parser = ["auto", "manual"])]
    pub mode: String,
    /// Record a person's answer to a needs-review verdict instead (approve or reject)
    #[arg(long, env = "MEDALLION_REVIEW", value_parser = ["approve", "reject"], conflicts_with = "policy")]
    pub review: Option<String>,
    /// With --review: who answered
    #[arg(long, env = "MEDALLION_REVIEWED_BY", requires = "review")]
    pub by: Option<String>,
    /// With --review: why
    #[arg(long, env = "MEDALLION_REVIEW_REASON", requires = "review")]
    pub reason: Option<String>,
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
    let plan = plan::read(&lake, &target, &args.plan_id).await?;
    if let Some(answer) = &args.review {
        let by = args
            .by
            .as_deref()
            .filter(|b| !b.trim().is_empty())
            .ok_or_else(|| {
                Error::invalid("arguments", "--by", "missing: who answered the review")
            })?;
        let (review, created) = plan_approval::review(
            &lake,
            &plan,
            answer == "approve",
            by,
            args.reason.as_deref(),
        )
        .await?;
        let rel = plan_approval::approval_path(&target, &plan.id);
        let mut approval = medallion_lake::records::read_json::<PlanApproval>(&lake, &rel)
            .await?
            .ok_or_else(|| Error::invalid(&rel, "approval", "disappeared after the review"))?;
        approval.decision = review.decision;
        approval.reasons = format!(
            "{} by {}{}",
            if review.decision == Decision::Approved {
                "approved in review"
            } else {
                "rejected in review"
            },
            review.reviewed_by,
            review
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
        approval.decided_by = review.reviewed_by;
        return Ok(Approved { approval, created });
    }
    let Some(policy_path) = &args.policy else {
        return Err(Error::invalid(
            "arguments",
            "--policy",
            "missing: the policy to evaluate",
        ));
    };
    let bytes = read_file("--policy", policy_path)?;
    let mut source = policy_path.display().to_string();
    let text = String::from_utf8(bytes.clone())
        .map_err(|_| Error::invalid(&source, "--policy", "is not UTF-8 text"))?;
    let mut policy = Policy::from_yaml(&source, &text)?;
    if args.mode == "manual" {
        policy.review = Review::Always;
        source.push_str(" (approval mode manual: a person reviews)");
    }
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
