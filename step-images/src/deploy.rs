//! `medallion-deploy`: applies an approved model-release plan and nothing else, and
//! `medallion rollback`: returns an endpoint to the release it served before.
//!
//! The local target is blue/green with `medallion-serve` processes (see [`crate::local_endpoint`]):
//! start the candidate in the plan's slot, wait for readiness, smoke-test it with a V2 infer whose
//! answer is known, move the `production` alias by compare-and-swap, switch the pointer, record
//! the release. On any failure the new server is stopped and nothing else changes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use medallion_lake::{Classified, DatasetName, ErrorClass, Registry, StoreLocation};
use medallion_release::deployments::{self, DeployResult, ReleaseState, Served, Smoke, StateKind};
use medallion_release::model_release::{DeployTarget, ModelRelease, Slot};
use medallion_release::models::{self, AliasMove};
use medallion_release::plan::{self, Action, Plan};
use medallion_release::plan_approval;

use crate::StepOutputs;
use crate::kube_apply::{KubeArgs, KubeClient, object_path};
use crate::local_endpoint::{self, Active, EndpointDir, LocalError, ServeCommand, SlotProcess};

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Lake(#[from] medallion_lake::Error),
    #[error(transparent)]
    Release(#[from] medallion_release::Error),
    #[error(transparent)]
    Model(#[from] medallion_model::Error),
    #[error(transparent)]
    Local(#[from] LocalError),
    /// The release was tried and rolled back; `class` says whether a retry may help.
    #[error("deploy of {plan} to {endpoint} failed and was rolled back: {message}")]
    Failed {
        plan: String,
        endpoint: String,
        message: String,
        class: ErrorClass,
    },
    #[error("{what}: {message}")]
    Refused { what: String, message: String },
}

impl Classified for DeployError {
    fn class(&self) -> ErrorClass {
        match self {
            DeployError::Lake(e) => e.class(),
            DeployError::Release(e) => e.class(),
            DeployError::Model(e) => e.class(),
            DeployError::Local(_) => ErrorClass::Transient,
            DeployError::Failed { class, .. } => *class,
            DeployError::Refused { .. } => ErrorClass::Precondition,
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct DeployArgs {
    /// Lake root (local path or az://, abfss://, https:// URL)
    #[arg(long, env = "MEDALLION_LAKE")]
    pub lake: String,
    /// The endpoint (the plan's target)
    #[arg(long, visible_alias = "target", env = "MEDALLION_ENDPOINT")]
    pub endpoint: String,
    /// The approved plan (medallion-plan's plan-id output)
    #[arg(long, env = "MEDALLION_PLAN_ID")]
    pub plan_id: String,
    #[command(flatten)]
    pub local: LocalArgs,
    /// Manifests target: the folder (a GitOps checkout) the objects are written under, one
    /// folder per endpoint
    #[arg(long, env = "MEDALLION_MANIFESTS_DIR")]
    pub manifests_dir: Option<PathBuf>,
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Infrastructure plans: the saved Terraform plan file about to be applied; checked against
    /// the approved plan (its SHA-256), then `terraform apply` may run it
    #[arg(long, env = "MEDALLION_TERRAFORM_PLANFILE")]
    pub terraform_planfile: Option<PathBuf>,
    /// Where to write the outputs
    #[arg(long, env = "MEDALLION_OUTPUTS_DIR", default_value = "/tmp/outputs")]
    pub outputs_dir: PathBuf,
}

/// The local target's settings (also used by `medallion-plan` to see what runs).
#[derive(clap::Args, Debug, Clone)]
pub struct LocalArgs {
    /// Local target: the folder holding each endpoint's slots and pointer
    #[arg(
        long,
        env = "MEDALLION_STATE_DIR",
        default_value = ".medallion/endpoints"
    )]
    pub state_dir: PathBuf,
    /// Local target: the medallion-serve binary (default: beside this one, then PATH)
    #[arg(long, env = "MEDALLION_SERVE_BIN")]
    pub serve_bin: Option<PathBuf>,
    /// Local target: seconds to wait for the new server to be ready
    #[arg(long, default_value_t = 30)]
    pub ready_timeout: u64,
    /// Local target: fraction of requests the server captures for drift monitoring
    #[arg(long, default_value_t = 0.0)]
    pub capture_fraction: f64,
}

impl LocalArgs {
    fn serve_bin(&self) -> PathBuf {
        if let Some(p) = &self.serve_bin {
            return p.clone();
        }
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("medallion-serve")))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("medallion-serve"))
    }
}

pub struct Deployed {
    pub result: DeployResult,
    pub created: bool,
    pub previous_version: Option<u64>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The model release a plan carries, or a refusal for infrastructure plans.
fn release_of(plan: &Plan) -> Result<&ModelRelease, DeployError> {
    plan.release.as_ref().ok_or_else(|| DeployError::Refused {
        what: format!("plan {}", plan.id),
        message: "is not a model release (infrastructure plans are applied with terraform apply of the saved plan)".into(),
    })
}

pub async fn deploy(args: &DeployArgs) -> Result<Deployed, DeployError> {
    let started_at = now();
    let lake = StoreLocation::open("lake", &args.lake)?;
    let endpoint = DatasetName::new(&args.endpoint)?;
    let plan = plan::read(&lake, &endpoint, &args.plan_id).await?;
    let release = release_of(&plan)?.clone();
    let auth = plan_approval::authorization(&lake, &plan).await?;
    if let Some(done) = deployments::result(&lake, &endpoint, &plan.id).await? {
        tracing::info!(plan = %plan.id, "this plan was applied before");
        return Ok(Deployed {
            result: done,
            created: false,
            previous_version: release.production_version,
        });
    }
    let mut result = DeployResult {
        format: 1,
        plan_id: plan.id.clone(),
        plan_hash: plan.hash.clone(),
        endpoint: endpoint.to_string(),
        target: release.target,
        model: release.model.clone(),
        version: release.version,
        slot: release.slot,
        status: String::new(),
        detail: String::new(),
        url: None,
        smoke: None,
        authorized_by: auth.by(),
        started_at,
        finished_at: String::new(),
    };
    let state = deployments::current(&lake, &endpoint).await?;
    if let Some(done) =
        recorded_earlier(&lake, &plan, &release, state.as_ref(), &mut result).await?
    {
        return Ok(done);
    }
    check_history(&endpoint, &plan, &release, state.as_ref())?;
    if release.target == DeployTarget::Manifests {
        return write_manifests(args, &lake, &endpoint, &plan, &release, result).await;
    }
    if release.target == DeployTarget::Kubernetes {
        return apply_kubernetes(args, &lake, &endpoint, &plan, &release, result).await;
    }
    let ep = EndpointDir::new(&args.local.state_dir, endpoint.as_str());
    let client = local_endpoint::client()?;
    let running = ep.running(&client).await?;
    if running.active != release.running.active {
        return Err(DeployError::Refused {
            what: format!("endpoint {endpoint}"),
            message: format!(
                "changed since plan {} was made (it reported {:?}, now {:?}); plan again",
                plan.id, release.running.active, running.active
            ),
        });
    }
    if plan.changes.iter().all(|c| c.action == Action::NoOp) {
        result.status = "already-serving".into();
        result.detail = format!("v{} already serves from {}", release.version, release.slot);
        result.url = ep.active()?.map(|a| a.url);
        return recorded(&lake, result, &release).await;
    }
    match apply_local(args, &lake, &endpoint, &plan, &release, &ep, &client).await {
        Ok((process, smoke)) => {
            result.status = "deployed".into();
            result.url = Some(process.url());
            result.smoke = Some(smoke);
            let previous = state.as_ref().map(|s| s.serving.clone());
            result.detail = match &previous {
                Some(p) => format!(
                    "{} v{} serves from {}; v{} stays on {} for rollback",
                    release.model, release.version, release.slot, p.version, p.slot
                ),
                None => format!(
                    "{} v{} serves from {}",
                    release.model, release.version, release.slot
                ),
            };
            record_release(
                &lake,
                &endpoint,
                state.as_ref(),
                &plan,
                &release,
                process.url(),
                format!("medallion-deploy ({})", auth.by()),
            )
            .await?;
            recorded(&lake, result, &release).await
        }
        Err((message, class, smoke)) => {
            result.status = "failed".into();
            result.detail = message.clone();
            result.smoke = smoke;
            result.finished_at = now();
            if let Err(e) = deployments::record_failure(&lake, &result).await {
                tracing::warn!("cannot record the failed attempt: {e}");
            }
            Err(DeployError::Failed {
                plan: plan.id.clone(),
                endpoint: endpoint.to_string(),
                message,
                class,
            })
        }
    }
}

/// An earlier attempt of this plan released it and recorded the release, then died before
/// writing `result.json`: the result is written now from the release record.
async fn recorded_earlier(
    lake: &StoreLocation,
    plan: &Plan,
    release: &ModelRelease,
    state: Option<&ReleaseState>,
    result: &mut DeployResult,
) -> Result<Option<Deployed>, DeployError> {
    let Some(s) = state.filter(|s| s.kind == StateKind::Release && s.serving.plan_id == plan.id)
    else {
        return Ok(None);
    };
    result.status = "deployed".into();
    result.detail = format!(
        "{} v{} serves from {} (released by an earlier attempt of this plan, release #{})",
        release.model, release.version, release.slot, s.seq
    );
    result.url = s.url.clone();
    Ok(Some(recorded(lake, result.clone(), release).await?))
}

/// A plan is made against one position of the endpoint's release history; any release or
/// rollback since then makes it stale (what it compared and what it would replace are no
/// longer what runs).
fn check_history(
    endpoint: &DatasetName,
    plan: &Plan,
    release: &ModelRelease,
    state: Option<&ReleaseState>,
) -> Result<(), DeployError> {
    let now = state.map_or(0, |s| s.seq);
    if now == release.release_seq {
        return Ok(());
    }
    let what = state.map_or_else(String::new, |s| {
        format!(
            " ({} of {} v{} by {} at {})",
            match s.kind {
                StateKind::Release => "release",
                StateKind::Rollback => "rollback",
            },
            s.serving.model,
            s.serving.version,
            s.by,
            s.at
        )
    });
    Err(DeployError::Refused {
        what: format!("plan {}", plan.id),
        message: format!(
            "is stale: it was made at release #{} of endpoint {endpoint}, which is now at #{now}{what}; plan again",
            release.release_seq
        ),
    })
}

/// Stamps the end, records `result.json` and returns what deploy reports.
async fn recorded(
    lake: &StoreLocation,
    mut result: DeployResult,
    release: &ModelRelease,
) -> Result<Deployed, DeployError> {
    result.finished_at = now();
    let result = deployments::record_result(lake, &result).await?;
    Ok(Deployed {
        result,
        created: true,
        previous_version: release.production_version,
    })
}

/// The `manifests` target: the plan's objects written as YAML under
/// `<manifests-dir>/<endpoint>/` (one file per object, each replaced atomically) for Argo CD or
/// Flux to apply. The old slot's Deployment file stays, so reverting the Service file (or
/// `medallion rollback`) returns traffic to it.
async fn write_manifests(
    args: &DeployArgs,
    lake: &StoreLocation,
    endpoint: &DatasetName,
    plan: &Plan,
    release: &ModelRelease,
    mut result: DeployResult,
) -> Result<Deployed, DeployError> {
    let Some(root) = &args.manifests_dir else {
        return Err(DeployError::Refused {
            what: format!("plan {}", plan.id),
            message: "targets manifests: pass --manifests-dir (the GitOps checkout to write into)"
                .into(),
        });
    };
    let state = match recorded_preflight(lake, endpoint, plan, release, &mut result).await? {
        Preflight::Done(d) => return Ok(*d),
        Preflight::Go(state) => state,
    };
    let (dir, written) = write_objects(root, endpoint, &plan.id, &release.objects)?;
    let url = promote(lake, endpoint, state.as_deref(), plan, release, "manifests").await?;
    result.status = "written".into();
    result.detail = format!(
        "{} objects written under {} for GitOps: {}",
        written.len(),
        dir.display(),
        written.join(", ")
    );
    result.url = Some(url);
    recorded(lake, result, release).await
}

/// What the lake-recorded targets (manifests, kubernetes) find before applying.
enum Preflight {
    /// Nothing to change: the result is recorded and returned.
    Done(Box<Deployed>),
    /// Go ahead; the release state as the lake records it.
    Go(Option<Box<ReleaseState>>),
}

/// A plan that changes nothing is recorded as already serving; a plan made against another
/// recorded state is refused.
async fn recorded_preflight(
    lake: &StoreLocation,
    endpoint: &DatasetName,
    plan: &Plan,
    release: &ModelRelease,
    result: &mut DeployResult,
) -> Result<Preflight, DeployError> {
    let state = deployments::current(lake, endpoint).await?;
    if plan.changes.iter().all(|c| c.action == Action::NoOp) {
        result.status = "already-serving".into();
        result.detail = format!("v{} already serves from {}", release.version, release.slot);
        result.url = state.as_ref().and_then(|s| s.url.clone());
        return Ok(Preflight::Done(Box::new(
            recorded(lake, result.clone(), release).await?,
        )));
    }
    let serving = state.as_ref().map(|s| (s.serving.slot, s.serving.version));
    let planned = release.running.active.as_ref().map(|a| (a.slot, a.version));
    if serving != planned {
        return Err(DeployError::Refused {
            what: format!("endpoint {endpoint}"),
            message: format!(
                "changed since plan {} was made (it recorded {planned:?}, the lake now says {serving:?}); plan again",
                plan.id
            ),
        });
    }
    Ok(Preflight::Go(state.map(Box::new)))
}

/// After the objects are in place: `production` moves (compare-and-swap) and the release is
/// recorded. Returns the Service's in-cluster URL.
async fn promote(
    lake: &StoreLocation,
    endpoint: &DatasetName,
    state: Option<&ReleaseState>,
    plan: &Plan,
    release: &ModelRelease,
    how: &str,
) -> Result<String, DeployError> {
    let model = DatasetName::new(&release.model)?;
    let by = format!("medallion-deploy plan {}", plan.id);
    models::move_alias(
        lake,
        &model,
        &DatasetName::new("production")?,
        AliasMove {
            version: release.version,
            expect: Some(release.production_version),
            by: &by,
            reason: Some(&format!("released to endpoint {endpoint} ({how})")),
        },
    )
    .await?;
    let url = service_url(endpoint, release.namespace.as_deref());
    record_release(lake, endpoint, state, plan, release, url.clone(), by).await?;
    Ok(url)
}

/// The `kubernetes` target: server-side apply of the slot's Deployment (and HPA), wait for its
/// rollout, switch the Service's selector, smoke-test through the Service (the API server's
/// proxy), then move `production`. A rollout that does not finish leaves the Service (and the
/// traffic) on the old slot; a failed smoke test puts the old selector back.
async fn apply_kubernetes(
    args: &DeployArgs,
    lake: &StoreLocation,
    endpoint: &DatasetName,
    plan: &Plan,
    release: &ModelRelease,
    mut result: DeployResult,
) -> Result<Deployed, DeployError> {
    let state = match recorded_preflight(lake, endpoint, plan, release, &mut result).await? {
        Preflight::Done(d) => return Ok(*d),
        Preflight::Go(state) => state,
    };
    let failed = |message: String, class: ErrorClass| DeployError::Failed {
        plan: plan.id.clone(),
        endpoint: endpoint.to_string(),
        message,
        class,
    };
    let kube = KubeClient::new(&args.kube.conn).map_err(|(m, c)| failed(m, c))?;
    let namespace = release
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let kind = |o: &serde_json::Value| {
        o.get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("")
            .to_string()
    };
    let (services, workloads): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) =
        release.objects.iter().partition(|o| kind(o) == "Service");
    let (Some(service), Some(deployment)) = (
        services.first(),
        workloads.iter().find(|o| kind(o) == "Deployment"),
    ) else {
        return Err(DeployError::Refused {
            what: format!("plan {}", plan.id),
            message: "holds no Deployment or no Service to apply; plan again".into(),
        });
    };
    let record_failed = |message: String, smoke: Option<Smoke>| {
        let mut r = result.clone();
        r.status = "failed".into();
        r.detail = message;
        r.smoke = smoke;
        r.finished_at = now();
        r
    };
    for o in &workloads {
        kube.apply(o).await.map_err(|(m, c)| failed(m, c))?;
    }
    let name = deployment
        .pointer("/metadata/name")
        .and_then(|n| n.as_str())
        .unwrap_or_default();
    let timeout = Duration::from_secs(args.kube.rollout_timeout);
    if let Err((message, class)) = kube.wait_rollout(&namespace, name, timeout).await {
        let r = record_failed(
            format!("{message}; the Service still selects the old slot"),
            None,
        );
        if let Err(e) = deployments::record_failure(lake, &r).await {
            tracing::warn!("cannot record the failed attempt: {e}");
        }
        return Err(failed(r.detail, class));
    }
    let service_path = object_path(service).map_err(|(m, c)| failed(m, c))?;
    let before = kube
        .get(&service_path)
        .await
        .map_err(|(m, c)| failed(m, c))?;
    kube.apply(service).await.map_err(|(m, c)| failed(m, c))?;
    let proxy = kube.service_proxy(&namespace, endpoint.as_str(), "http");
    let smoke = smoke_test(lake, release, kube.http(), &proxy).await;
    let passed = matches!(&smoke, Ok(s) if s.passed);
    if !passed {
        // Roll back: the old selector takes the traffic again (or the new Service goes).
        let restored = match &before {
            Some(b) => {
                let mut old = (*service).clone();
                old["spec"]["selector"] = b.pointer("/spec/selector").cloned().unwrap_or_default();
                kube.apply(&old)
                    .await
                    .map(|_| "the Service selects the old slot again")
            }
            None => kube
                .delete(&service_path)
                .await
                .map(|()| "the Service this release created is deleted"),
        };
        let (message, class, smoke) = match smoke {
            Ok(s) => (
                format!(
                    "smoke test through the Service answered {:?}, expected {}",
                    s.served, s.expected
                ),
                ErrorClass::Precondition,
                Some(s),
            ),
            Err((m, c)) => (format!("smoke test through the Service: {m}"), c, None),
        };
        let message = match restored {
            Ok(what) => format!("{message}; {what}"),
            Err((m, _)) => format!("{message}; restoring the Service failed too: {m}"),
        };
        let r = record_failed(message, smoke);
        if let Err(e) = deployments::record_failure(lake, &r).await {
            tracing::warn!("cannot record the failed attempt: {e}");
        }
        return Err(failed(r.detail, class));
    }
    let url = promote(
        lake,
        endpoint,
        state.as_deref(),
        plan,
        release,
        "kubernetes",
    )
    .await?;
    result.status = "deployed".into();
    result.smoke = smoke.ok();
    result.detail = format!(
        "{} v{} rolled out as {namespace}/{name}; the Service selects {}",
        release.model, release.version, release.slot
    );
    result.url = Some(url);
    recorded(lake, result, release).await
}

/// Writes `objects` as `<root>/<endpoint>/<kind>-<name>.yaml`, each file replaced atomically;
/// returns the folder and the files written.
fn write_objects(
    root: &Path,
    endpoint: &DatasetName,
    plan_id: &str,
    objects: &[serde_json::Value],
) -> Result<(PathBuf, Vec<String>), DeployError> {
    let dir = root.join(endpoint.as_str());
    std::fs::create_dir_all(&dir).map_err(|e| LocalError::Io {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let mut written = Vec::new();
    for object in objects {
        let kind = object
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("object");
        let name = object
            .pointer("/metadata/name")
            .and_then(|k| k.as_str())
            .unwrap_or("unnamed");
        let file = dir.join(format!("{}-{name}.yaml", kind.to_ascii_lowercase()));
        let text = serde_yaml_ng::to_string(object).map_err(|e| DeployError::Refused {
            what: format!("plan {plan_id}"),
            message: format!("an object cannot be written as YAML: {e}"),
        })?;
        let tmp = file.with_extension("yaml.tmp");
        let io = |e: std::io::Error| LocalError::Io {
            path: file.display().to_string(),
            message: e.to_string(),
        };
        std::fs::write(
            &tmp,
            format!("# written by medallion-deploy, plan {plan_id}\n{text}"),
        )
        .map_err(io)?;
        std::fs::rename(&tmp, &file).map_err(io)?;
        written.push(file.display().to_string());
    }
    Ok((dir, written))
}

/// The Service URL of an endpoint inside the cluster.
fn service_url(endpoint: &DatasetName, namespace: Option<&str>) -> String {
    format!(
        "http://{endpoint}.{}.svc.cluster.local",
        namespace.unwrap_or("default")
    )
}

/// Records in the lake that `endpoint` now serves `release` (what it served before becomes
/// `previous`, the target of a rollback); a compare-and-swap on the release history.
async fn record_release(
    lake: &StoreLocation,
    endpoint: &DatasetName,
    state: Option<&ReleaseState>,
    plan: &Plan,
    release: &ModelRelease,
    url: String,
    by: String,
) -> Result<ReleaseState, DeployError> {
    Ok(deployments::record(
        lake,
        endpoint,
        state.map_or(0, |s| s.seq),
        ReleaseState {
            format: 0,
            endpoint: endpoint.to_string(),
            seq: 0,
            kind: StateKind::Release,
            target: release.target,
            serving: Served {
                plan_id: plan.id.clone(),
                model: release.model.clone(),
                version: release.version,
                slot: release.slot,
            },
            previous: state.map(|s| s.serving.clone()),
            url: Some(url),
            at: now(),
            by,
        },
    )
    .await?)
}

type Failure = (String, ErrorClass, Option<Smoke>);

/// Starts the candidate in its slot, checks it, moves the alias and the pointer. On failure the
/// candidate is stopped and the pointer and alias are as they were.
async fn apply_local(
    args: &DeployArgs,
    lake: &StoreLocation,
    endpoint: &DatasetName,
    plan: &Plan,
    release: &ModelRelease,
    ep: &EndpointDir,
    client: &reqwest::Client,
) -> Result<(SlotProcess, Smoke), Failure> {
    let fail = |m: String, class: ErrorClass| (m, class, None);
    let local = |e: LocalError| fail(e.to_string(), ErrorClass::Transient);
    // The plan's slot is the one not serving; whatever is left in it goes.
    ep.stop_slot(release.slot).map_err(local)?;
    let port = local_endpoint::free_port().map_err(local)?;
    let cmd = ServeCommand {
        serve_bin: args.local.serve_bin(),
        lake: args.lake.clone(),
        model: release.model.clone(),
        version: release.version,
        port,
        capture_fraction: args.local.capture_fraction,
    };
    let mut child = local_endpoint::start(ep, release.slot, &cmd).map_err(local)?;
    let process = SlotProcess {
        slot: release.slot,
        pid: child.id(),
        port,
        model: release.model.clone(),
        version: release.version,
        plan_id: plan.id.clone(),
        started_at: now(),
    };
    let undo = |child: &mut std::process::Child| {
        local_endpoint::stop(child.id(), Duration::from_secs(10));
        let _ = child.wait();
        let _ = ep.clear_slot(release.slot);
    };
    if let Err(e) = ep.set_slot(&process) {
        undo(&mut child);
        return Err(local(e));
    }
    let url = process.url();
    let timeout = Duration::from_secs(args.local.ready_timeout);
    if let Err(m) = local_endpoint::wait_ready(client, &mut child, &url, timeout).await {
        let tail = local_endpoint::log_tail(&ep.log_path(release.slot), 3);
        undo(&mut child);
        return Err(fail(
            format!("{m}; its log ends: {tail}"),
            ErrorClass::Transient,
        ));
    }
    let smoke = match smoke_test(lake, release, client, &url).await {
        Ok(s) if s.passed => s,
        Ok(s) => {
            undo(&mut child);
            let m = format!(
                "the smoke test's example should give {} but the server answered {}",
                s.expected,
                s.served.map_or("nothing".into(), |v| v.to_string())
            );
            return Err((m, ErrorClass::Precondition, Some(s)));
        }
        Err((m, class)) => {
            undo(&mut child);
            return Err(fail(format!("smoke test: {m}"), class));
        }
    };
    let model =
        DatasetName::new(&release.model).map_err(|e| fail(e.to_string(), ErrorClass::BadInput))?;
    let production =
        DatasetName::new("production").map_err(|e| fail(e.to_string(), ErrorClass::BadInput))?;
    let by = format!("medallion-deploy plan {}", plan.id);
    if let Err(e) = models::move_alias(
        lake,
        &model,
        &production,
        AliasMove {
            version: release.version,
            expect: Some(release.production_version),
            by: &by,
            reason: Some(&format!("released to endpoint {endpoint}")),
        },
    )
    .await
    {
        undo(&mut child);
        return Err((e.to_string(), e.class(), Some(smoke)));
    }
    let active = Active {
        slot: release.slot,
        url: url.clone(),
        model: release.model.clone(),
        version: release.version,
        plan_id: plan.id.clone(),
        switched_at: now(),
    };
    if let Err(e) = ep.set_active(&active) {
        undo(&mut child);
        return Err((e.to_string(), ErrorClass::Transient, Some(smoke)));
    }
    Ok((process, smoke))
}

/// Sends the model's example row to `url` and compares the answer with the library's.
async fn smoke_test(
    lake: &StoreLocation,
    release: &ModelRelease,
    client: &reqwest::Client,
    url: &str,
) -> Result<Smoke, (String, ErrorClass)> {
    let registry = Registry::new(lake.clone());
    let model =
        DatasetName::new(&release.model).map_err(|e| (e.to_string(), ErrorClass::BadInput))?;
    let (_, file) = medallion_model::train::load_model(&registry, &model, release.version)
        .await
        .map_err(|e| (e.to_string(), e.class()))?;
    let example =
        medallion_model::example::example(&file).map_err(|e| (e, ErrorClass::BadInput))?;
    let body = serde_json::to_vec(&example.v2_request())
        .map_err(|e| (e.to_string(), ErrorClass::Transient))?;
    let response = client
        .post(format!("{url}/v2/models/{}/infer", release.model))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| (format!("infer request failed: {e}"), ErrorClass::Transient))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| (format!("infer response: {e}"), ErrorClass::Transient))?;
    if !status.is_success() {
        return Err((
            format!(
                "infer answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            ),
            ErrorClass::Precondition,
        ));
    }
    let served = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.pointer("/outputs/0/data/0").and_then(|x| x.as_f64()));
    Ok(Smoke {
        expected: example.expected,
        served,
        passed: served.is_some_and(|s| medallion_model::example::matches(example.expected, s)),
    })
}

pub fn deploy_outputs(d: &Deployed) -> StepOutputs {
    let mut out = StepOutputs::new();
    out.set("status", d.result.status.clone())
        .set("plan-id", d.result.plan_id.clone())
        .set("version", d.result.version)
        .set("slot", d.result.slot.as_str())
        .set("url", d.result.url.clone().unwrap_or_default())
        .set(
            "previous-version",
            d.previous_version.map_or(String::new(), |v| v.to_string()),
        )
        .set("created", d.created);
    out
}

/// What a rollback did.
pub struct RolledBack {
    pub state: ReleaseState,
    pub url: String,
    pub restarted: bool,
}

/// Returns `endpoint` to the release it served before (local target): the previous slot's server
/// takes the traffic again (restarted if it is gone, then smoke-tested), the `production` alias
/// moves back, and the rollback is recorded. Rolling back twice returns to where it started.
pub async fn rollback(
    lake_url: &str,
    endpoint: &str,
    local: &LocalArgs,
    manifests_dir: Option<&Path>,
    kube_args: &KubeArgs,
    by: &str,
) -> Result<RolledBack, DeployError> {
    let lake = StoreLocation::open("lake", lake_url)?;
    let endpoint = DatasetName::new(endpoint)?;
    let state = deployments::current(&lake, &endpoint)
        .await?
        .ok_or_else(|| DeployError::Refused {
            what: format!("endpoint {endpoint}"),
            message: "has no release recorded in the lake; nothing to roll back".into(),
        })?;
    let previous = state.previous.clone().ok_or_else(|| DeployError::Refused {
        what: format!("endpoint {endpoint}"),
        message: format!(
            "serves its first release ({} v{}); there is nothing before it",
            state.serving.model, state.serving.version
        ),
    })?;
    let (url, restarted) = match state.target {
        DeployTarget::Local => {
            let (process, restarted) =
                switch_local_back(lake_url, &endpoint, local, &previous).await?;
            (process.url(), restarted)
        }
        DeployTarget::Manifests => {
            let Some(root) = manifests_dir else {
                return Err(DeployError::Refused {
                    what: format!("endpoint {endpoint}"),
                    message: "is released as manifests: pass --manifests-dir (the GitOps checkout)"
                        .into(),
                });
            };
            // The previous plan's objects again: its slot's Deployment and the Service selecting it.
            let earlier = plan::read(&lake, &endpoint, &previous.plan_id).await?;
            let release = release_of(&earlier)?;
            write_objects(root, &endpoint, &earlier.id, &release.objects)?;
            (service_url(&endpoint, release.namespace.as_deref()), false)
        }
        DeployTarget::Kubernetes => {
            // The previous slot's Deployment was kept: check it still runs, then the previous
            // plan's Service (selecting that slot) is applied again.
            let earlier = plan::read(&lake, &endpoint, &previous.plan_id).await?;
            let release = release_of(&earlier)?;
            let failed = |(message, class): crate::kube_apply::KubeError| DeployError::Failed {
                plan: earlier.id.clone(),
                endpoint: endpoint.to_string(),
                message: format!("rollback: {message}"),
                class,
            };
            let kube = KubeClient::new(&kube_args.conn).map_err(failed)?;
            let namespace = release
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into());
            let name = format!("{endpoint}-{}", previous.slot);
            let path = format!("/apis/apps/v1/namespaces/{namespace}/deployments/{name}");
            if kube.get(&path).await.map_err(failed)?.is_none() {
                return Err(DeployError::Refused {
                    what: format!("endpoint {endpoint}"),
                    message: format!(
                        "the previous slot's Deployment {namespace}/{name} is gone; release v{} again instead",
                        previous.version
                    ),
                });
            }
            kube.wait_rollout(
                &namespace,
                &name,
                Duration::from_secs(kube_args.rollout_timeout),
            )
            .await
            .map_err(failed)?;
            let service = release
                .objects
                .iter()
                .find(|o| o.get("kind").and_then(|k| k.as_str()) == Some("Service"))
                .ok_or_else(|| DeployError::Refused {
                    what: format!("plan {}", earlier.id),
                    message: "holds no Service to apply again".into(),
                })?;
            kube.apply(service).await.map_err(failed)?;
            (service_url(&endpoint, release.namespace.as_deref()), false)
        }
    };
    let model = DatasetName::new(&previous.model)?;
    let production = DatasetName::new("production")?;
    let reason = format!("rollback of endpoint {endpoint}");
    let current_alias = models::alias(&lake, &model, &production).await?;
    if current_alias.as_ref().map(|a| a.version) != Some(previous.version) {
        models::move_alias(
            &lake,
            &model,
            &production,
            AliasMove {
                version: previous.version,
                expect: Some(Some(state.serving.version))
                    .filter(|_| state.serving.model == previous.model),
                by,
                reason: Some(&reason),
            },
        )
        .await?;
    }
    let recorded = deployments::record(
        &lake,
        &endpoint,
        state.seq,
        ReleaseState {
            format: 0,
            endpoint: endpoint.to_string(),
            seq: 0,
            kind: StateKind::Rollback,
            target: state.target,
            serving: previous,
            previous: Some(state.serving.clone()),
            url: Some(url.clone()),
            at: now(),
            by: by.to_string(),
        },
    )
    .await?;
    Ok(RolledBack {
        state: recorded,
        url,
        restarted,
    })
}

/// Local rollback: the previous slot's server takes the traffic again (restarted if it is
/// gone); returns it and whether it was restarted.
async fn switch_local_back(
    lake_url: &str,
    endpoint: &DatasetName,
    local: &LocalArgs,
    previous: &Served,
) -> Result<(SlotProcess, bool), DeployError> {
    let ep = EndpointDir::new(&local.state_dir, endpoint.as_str());
    let client = local_endpoint::client()?;
    let mut restarted = false;
    let kept = ep.slot(previous.slot)?.filter(|p| {
        p.model == previous.model && p.version == previous.version && local_endpoint::alive(p.pid)
    });
    let process = match kept {
        Some(p)
            if local_endpoint::served_version(&client, &p.url(), &p.model).await
                == Some(previous.version) =>
        {
            p
        }
        _ => {
            // The kept server is gone: start it again, as deploy would.
            ep.stop_slot(previous.slot)?;
            restarted = true;
            let port = local_endpoint::free_port()?;
            let cmd = ServeCommand {
                serve_bin: local.serve_bin(),
                lake: lake_url.to_string(),
                model: previous.model.clone(),
                version: previous.version,
                port,
                capture_fraction: local.capture_fraction,
            };
            let mut child = local_endpoint::start(&ep, previous.slot, &cmd)?;
            let p = SlotProcess {
                slot: previous.slot,
                pid: child.id(),
                port,
                model: previous.model.clone(),
                version: previous.version,
                plan_id: previous.plan_id.clone(),
                started_at: now(),
            };
            ep.set_slot(&p)?;
            let timeout = Duration::from_secs(local.ready_timeout);
            if let Err(m) = local_endpoint::wait_ready(&client, &mut child, &p.url(), timeout).await
            {
                local_endpoint::stop(child.id(), Duration::from_secs(10));
                ep.clear_slot(previous.slot)?;
                return Err(DeployError::Failed {
                    plan: previous.plan_id.clone(),
                    endpoint: endpoint.to_string(),
                    message: format!("rollback: {m}"),
                    class: ErrorClass::Transient,
                });
            }
            p
        }
    };
    ep.set_active(&Active {
        slot: previous.slot,
        url: process.url(),
        model: previous.model.clone(),
        version: previous.version,
        plan_id: previous.plan_id.clone(),
        switched_at: now(),
    })?;
    Ok((process, restarted))
}

/// Stops both slots of a local endpoint and removes its pointer (the lake's records stay).
pub fn stop_local(local: &LocalArgs, endpoint: &str) -> Result<Vec<SlotProcess>, DeployError> {
    let endpoint = DatasetName::new(endpoint)?;
    let ep = EndpointDir::new(&local.state_dir, endpoint.as_str());
    let mut stopped = Vec::new();
    for slot in [Slot::Blue, Slot::Green] {
        if let Some(p) = ep.stop_slot(slot)? {
            stopped.push(p);
        }
    }
    ep.clear_active()?;
    Ok(stopped)
}
