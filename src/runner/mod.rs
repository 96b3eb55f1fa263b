//! `medallion run`: executes a WorkflowTemplate (or a Workflow that references one) on this
//! machine, the way Argo would for the constructs Medallion's templates use.
//!
//! - Tasks of a DAG run in dependency order, independent ones in parallel (`dependencies` and
//!   `depends`, failFast), honouring `when`; nested DAG templates and templateRefs resolve
//!   against the WorkflowTemplates in the library folders.
//! - A container whose image is `…/medallion-<step>:<tag>` runs the local binary of that name
//!   with the template's args and env; its volume mounts become folders (emptyDir → a fresh
//!   folder per node, configMap → the folder given for it), and every path under a mount in the
//!   args, env and outputs is rewritten to that folder. Output parameters are read from their
//!   files, output artifacts copied into the run folder.
//! - retryStrategy (limit, expression with `lastRetry.*`, backoff), activeDeadlineSeconds (the
//!   process is killed), synchronization mutexes, memoize (a cache folder per ConfigMap name),
//!   suspend (a decision from `--approve`/`--reject`/`--supply`, a prompt in a terminal, or the
//!   suspend's duration) and executor-plugin templates (through a real `medallion-plugin`).
//! - Settings that only mean something in a pod (securityContext, resources, serviceAccountName,
//!   podGC, ...) are listed once as not applied; any other construct is an error naming it.

mod dag;
mod exec;
mod memo;
mod node;
mod retry;
mod suspend;
mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use medallion_argo::lint::{Document, image_name};
use medallion_argo::model::TemplateRef;
use serde_json::{Value, json};

pub use exec::PluginServer;

/// Why a run could not start or did not succeed. Exit codes: 2 for a template or parameter the
/// runner cannot use, 1 when a step failed (its own exit code is in the message), 3 when a
/// person rejected a suspend gate.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Template(String),
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    Rejected(String),
}

impl RunError {
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Template(_) => 2,
            RunError::Failed(_) => 1,
            RunError::Rejected(_) => 3,
        }
    }
}

fn template_error(message: impl Into<String>) -> RunError {
    RunError::Template(message.into())
}

/// A person's answer to suspend nodes given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The WorkflowTemplate or Workflow to run (a file; its first such document).
    pub file: PathBuf,
    pub parameters: Vec<(String, String)>,
    /// Where templateRefs resolve (every WorkflowTemplate/ClusterWorkflowTemplate found).
    pub library: Vec<PathBuf>,
    /// Folder holding the step binaries (medallion-import, ...).
    pub bin_dir: PathBuf,
    /// ConfigMap name → local folder with its files.
    pub config_maps: BTreeMap<String, PathBuf>,
    /// Node folders, logs, artifacts and status.json of this run go under `<runs_dir>/<name>`;
    /// the memoization cache under `<runs_dir>/memo`.
    pub runs_dir: PathBuf,
    /// The Workflow's name (default: the template's name and a random suffix, as generateName).
    pub name: Option<String>,
    pub decision: Option<Decision>,
    /// `<task>.<parameter>=<value>` for suspend nodes' supplied parameters.
    pub supplied: BTreeMap<String, String>,
    /// The lake the executor plugin serves (default: the workflow parameter `lake`).
    pub plugin_lake: Option<String>,
    /// Scale applied to retry backoff and suspend durations (1.0 as written; tests use 0).
    pub time_scale: f64,
    /// Environment every step process gets (before the template's own `env`), e.g. the local
    /// deploy target's state folder.
    pub step_env: Vec<(String, String)>,
    /// The Argo release line whose submission rules the run applies first.
    pub argo_version: medallion_argo::schema::ArgoVersion,
}

/// A finished node, for the summary and status.json.
#[derive(Debug, Clone)]
pub struct NodeRecord {
    pub path: String,
    pub template: String,
    pub phase: Phase,
    pub message: String,
    pub duration: Duration,
    pub attempts: u32,
    pub outputs: BTreeMap<String, String>,
    pub artifacts: BTreeMap<String, PathBuf>,
    pub memoized: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Succeeded,
    Failed,
    /// Argo's Error: the node could not run as written (an invalid memo key, a suspend that
    /// expired without defaults), as opposed to a step that ran and failed.
    Error,
    Skipped,
    Omitted,
}

impl Phase {
    /// Failed or Error: the node did not do its work.
    pub fn failed(self) -> bool {
        matches!(self, Phase::Failed | Phase::Error)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Error => "Error",
            Phase::Skipped => "Skipped",
            Phase::Omitted => "Omitted",
        }
    }
}

/// A leaf template as written, with the inputs its variables take.
struct Leaf<'a> {
    template: &'a Value,
    inputs: &'a BTreeMap<String, String>,
    /// Input artifacts given by the task: name → local file.
    artifacts: &'a BTreeMap<String, PathBuf>,
}

impl Leaf<'_> {
    /// A string of the template as written: mount paths mapped first, then variables.
    fn resolve(
        &self,
        engine: &Engine,
        text: &str,
        mounts: &[(String, PathBuf)],
    ) -> Result<String, String> {
        let mapped = exec::map_path(text, mounts);
        substitute(
            &mapped,
            &|n| {
                n.strip_prefix("inputs.parameters.")
                    .and_then(|p| self.inputs.get(p).cloned())
                    .or_else(|| engine.global(n))
            },
            true,
        )
    }
}

/// What one template invocation produced.
#[derive(Debug, Clone)]
struct Outcome {
    phase: Phase,
    message: String,
    outputs: BTreeMap<String, String>,
    rejected: bool,
    /// Output artifacts: name → the kept local file.
    artifacts: BTreeMap<String, PathBuf>,
}

/// The argument key prefix that carries an input artifact's local file to the invoked template.
const ARTIFACT_ARG: &str = "artifacts.";

/// Templates of one spec, by name.
type Scope = Arc<BTreeMap<String, Value>>;

/// Fields of a template and of a workflow spec the runner applies, and those that only mean
/// something in a pod on a cluster (listed in the summary, not applied).
const TEMPLATE_FIELDS: &[&str] = &[
    "name",
    "inputs",
    "outputs",
    "dag",
    "container",
    "script",
    "suspend",
    "plugin",
    "retryStrategy",
    "activeDeadlineSeconds",
    "memoize",
    "synchronization",
    "metadata",
    "volumes",
];
const POD_ONLY_FIELDS: &[&str] = &[
    "securityContext",
    "serviceAccountName",
    "automountServiceAccountToken",
    "nodeSelector",
    "tolerations",
    "affinity",
    "priorityClassName",
    "podSpecPatch",
    "archiveLocation",
    "podGC",
    "ttlStrategy",
    "podMetadata",
    "workflowMetadata",
    "podDisruptionBudget",
    "executor",
    "hostAliases",
    "imagePullSecrets",
    "schedulerName",
    "artifactGC",
    "archiveLogs",
    "resources",
    "volumeClaimTemplates",
];
const SPEC_FIELDS: &[&str] = &[
    // A workflow-level mutex: the run holds it from start to end, and mutexes are per process
    // (as for templates), so a single run always has it.
    "synchronization",
    "entrypoint",
    "arguments",
    "templates",
    "volumes",
    "workflowTemplateRef",
    "activeDeadlineSeconds",
];

struct Engine {
    options: RunOptions,
    library: BTreeMap<(bool, String), Scope>,
    workflow_params: BTreeMap<String, String>,
    workflow_name: String,
    workflow_uid: String,
    /// When the run was created (UTC), for `{{workflow.creationTimestamp...}}`.
    created: chrono::DateTime<chrono::Utc>,
    spec_volumes: Vec<Value>,
    run_dir: PathBuf,
    records: Mutex<Vec<NodeRecord>>,
    not_applied: Mutex<BTreeSet<String>>,
    mutexes: (Mutex<BTreeSet<String>>, Condvar),
    plugin: Mutex<Option<PluginServer>>,
    view: view::View,
    deadline: Option<Instant>,
}

/// The result of a run: its folder, name and nodes.
pub struct RunSummary {
    pub name: String,
    pub run_dir: PathBuf,
    pub nodes: Vec<NodeRecord>,
    pub phase: Phase,
    pub not_applied: BTreeSet<String>,
    /// The entrypoint's output parameters (the Workflow's outputs in the Argo UI).
    pub outputs: BTreeMap<String, String>,
}

fn load_docs(paths: &[PathBuf]) -> Result<Vec<Document>, RunError> {
    crate::lint::load(paths).map_err(|e| template_error(e.to_string()))
}

/// Runs the workflow and returns its summary (also when a step failed).
pub fn run(options: RunOptions) -> Result<RunSummary, RunError> {
    let docs = load_docs(std::slice::from_ref(&options.file))?;
    let doc = docs
        .iter()
        .find(|d| {
            matches!(
                d.kind(),
                "WorkflowTemplate" | "ClusterWorkflowTemplate" | "Workflow" | "CronWorkflow"
            )
        })
        .ok_or_else(|| {
            template_error(format!(
                "{}: holds no WorkflowTemplate, Workflow or CronWorkflow to run",
                options.file.display()
            ))
        })?
        .clone();
    let library_docs = load_docs(&options.library)?;
    // As `argo submit` does, the workflow and the templates it may call are validated first:
    // what Argo would refuse is refused here, with Argo's own message.
    let mut submitted = library_docs.clone();
    submitted.push(doc.clone());
    let schemas = medallion_argo::schema::Schemas::for_version(options.argo_version)
        .map_err(|e| template_error(e.to_string()))?;
    let refused = medallion_argo::lint::submission(&submitted, &schemas, options.argo_version);
    if !refused.is_empty() {
        let shown: Vec<String> = refused.iter().take(5).map(|f| f.to_string()).collect();
        return Err(template_error(format!(
            "Argo {} would refuse this workflow ({} problem(s)); run `medallion lint` on it: {}",
            options.argo_version.as_str(),
            refused.len(),
            shown.join("; ")
        )));
    }
    let mut library: BTreeMap<(bool, String), Scope> = BTreeMap::new();
    for d in library_docs.iter().chain(std::iter::once(&doc)) {
        let cluster = match d.kind() {
            "WorkflowTemplate" => false,
            "ClusterWorkflowTemplate" => true,
            _ => continue,
        };
        library.insert(
            (cluster, d.name().to_string()),
            Arc::new(templates_of(&d.value)),
        );
    }
    // A Workflow may reference a template: its spec is the template's, its arguments override.
    // A CronWorkflow runs its workflowSpec once, now (the schedule is the cluster's business).
    let mut spec = if doc.kind() == "CronWorkflow" {
        doc.value
            .pointer("/spec/workflowSpec")
            .cloned()
            .unwrap_or(Value::Null)
    } else {
        doc.value.get("spec").cloned().unwrap_or(Value::Null)
    };
    let mut given: Vec<(String, String)> = Vec::new();
    if doc.kind() == "Workflow" {
        for p in items(&spec, "/arguments/parameters") {
            if let (Some(n), Some(v)) = (p.get("name").and_then(Value::as_str), p.get("value")) {
                given.push((n.to_string(), value_text(v)));
            }
        }
        if let Some(r) = TemplateRef::of_spec(&spec) {
            let (name, kind) = (r.name.to_string(), r.kind());
            let referenced = library_docs
                .iter()
                .find(|d| d.name() == name && d.kind() == kind)
                .ok_or_else(|| {
                    template_error(format!(
                        "{}: workflowTemplateRef {kind} {name:?} is not in the library ({})",
                        options.file.display(),
                        options
                            .library
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            spec = referenced.value.get("spec").cloned().unwrap_or(Value::Null);
        }
    }
    given.extend(options.parameters.iter().cloned());
    let mut not_applied = BTreeSet::new();
    if doc.kind() == "CronWorkflow" {
        not_applied.insert("CronWorkflow schedule (ran once, now)".to_string());
    }
    if let Some(map) = spec.as_object() {
        for k in map.keys() {
            if POD_ONLY_FIELDS.contains(&k.as_str()) {
                not_applied.insert(k.clone());
            } else if !SPEC_FIELDS.contains(&k.as_str()) {
                return Err(template_error(format!(
                    "{}: spec.{k} is not implemented by medallion run; run this workflow on a cluster",
                    options.file.display()
                )));
            }
        }
    }
    let workflow_params = workflow_parameters(&spec, &given, &options.file)?;
    let base = doc
        .value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .or_else(|| {
            doc.value
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
        })
        .unwrap_or("workflow")
        .trim_end_matches('-')
        .to_string();
    let uid = uuid::Uuid::new_v4().to_string();
    let workflow_name = options.name.clone().unwrap_or_else(|| {
        if doc.kind() == "Workflow" {
            base.clone()
        } else {
            format!("{base}-{}", &uid[..5])
        }
    });
    let run_dir = options.runs_dir.join(&workflow_name);
    if run_dir.exists() {
        return Err(template_error(format!(
            "{}: a run named {workflow_name} exists already (Kubernetes would refuse a second Workflow of this name); remove the folder or pass --name",
            run_dir.display()
        )));
    }
    std::fs::create_dir_all(&run_dir)
        .map_err(|e| template_error(format!("{}: {e}", run_dir.display())))?;
    let entry = spec
        .get("entrypoint")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            template_error(format!(
                "{}: spec.entrypoint is missing",
                options.file.display()
            ))
        })?
        .to_string();
    let deadline = spec
        .get("activeDeadlineSeconds")
        .and_then(|v| value_text(v).parse::<u64>().ok())
        .map(|s| Instant::now() + Duration::from_secs(s));
    let scope: Scope = Arc::new(
        templates_of(&doc.value)
            .into_iter()
            .chain(
                // A Workflow running a referenced template sees that template's templates.
                items(&spec, "/templates").filter_map(|t| {
                    t.get("name")
                        .and_then(Value::as_str)
                        .map(|n| (n.to_string(), t.clone()))
                }),
            )
            .collect(),
    );
    let engine = Engine {
        spec_volumes: spec
            .get("volumes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        options,
        library,
        workflow_params,
        workflow_name: workflow_name.clone(),
        workflow_uid: uid,
        created: chrono::Utc::now(),
        run_dir: run_dir.clone(),
        records: Mutex::new(Vec::new()),
        not_applied: Mutex::new(not_applied),
        mutexes: (Mutex::new(BTreeSet::new()), Condvar::new()),
        plugin: Mutex::new(None),
        view: view::View::new(),
        deadline,
    };
    engine.view.started(&workflow_name, &entry);
    let template = scope.get(&entry).cloned().ok_or_else(|| {
        template_error(format!(
            "entrypoint {entry:?} is not a template of {}",
            options_file(&engine)
        ))
    })?;
    let outcome = engine.invoke(&template, &scope, &BTreeMap::new(), &workflow_name, &entry)?;
    if let Ok(mut p) = engine.plugin.lock()
        && let Some(server) = p.take()
    {
        server.stop();
    }
    let nodes = engine.records.lock().map(|r| r.clone()).unwrap_or_default();
    let not_applied = engine
        .not_applied
        .lock()
        .map(|n| n.clone())
        .unwrap_or_default();
    let summary = RunSummary {
        name: workflow_name,
        run_dir,
        nodes,
        phase: outcome.phase,
        not_applied,
        outputs: outcome.outputs.clone(),
    };
    write_status(&summary, &engine.workflow_params, &outcome)?;
    if outcome.rejected {
        engine.view.finished(&summary);
        return Err(RunError::Rejected(format!(
            "workflow {} stopped: {}",
            summary.name, outcome.message
        )));
    }
    engine.view.finished(&summary);
    if outcome.phase.failed() {
        return Err(RunError::Failed(format!(
            "workflow {} failed: {}",
            summary.name, outcome.message
        )));
    }
    Ok(summary)
}

fn options_file(engine: &Engine) -> String {
    engine.options.file.display().to_string()
}

/// The elements of the list at `pointer` (none when it is absent or not a list).
fn items<'a>(value: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn templates_of(doc: &Value) -> BTreeMap<String, Value> {
    items(doc, "/spec/templates")
        .filter_map(|t| {
            t.get("name")
                .and_then(Value::as_str)
                .map(|n| (n.to_string(), t.clone()))
        })
        .collect()
}

/// A template's (or task's) name, `?` when it has none (Argo's validation refuses that case).
fn name_of(v: &Value) -> &str {
    v.get("name").and_then(Value::as_str).unwrap_or("?")
}

/// A parameter value as Argo stores it: strings as they are, other scalars as their text.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn workflow_parameters(
    spec: &Value,
    given: &[(String, String)],
    file: &Path,
) -> Result<BTreeMap<String, String>, RunError> {
    let declared = spec
        .pointer("/arguments/parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    let names: BTreeSet<String> = declared
        .iter()
        .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    for (k, v) in given {
        if !names.contains(k) {
            return Err(template_error(format!(
                "-p {k}: {} declares no parameter {k:?} (it has: {})",
                file.display(),
                names.iter().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        out.insert(k.clone(), v.clone());
    }
    for p in &declared {
        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
        if !out.contains_key(name) {
            match p.get("value").or_else(|| p.get("default")) {
                Some(v) => {
                    out.insert(name.to_string(), value_text(v));
                }
                None => {
                    return Err(template_error(format!(
                        "parameter {name:?} of {} has no value: pass -p {name}=...",
                        file.display()
                    )));
                }
            }
        }
        check_enum(p, &out[name], &format!("workflow parameter {name}"))?;
    }
    Ok(out)
}

fn check_enum(param: &Value, value: &str, what: &str) -> Result<(), RunError> {
    if let Some(options) = param.get("enum").and_then(Value::as_array) {
        let allowed: Vec<String> = options.iter().map(value_text).collect();
        if !allowed.iter().any(|a| a == value) {
            return Err(template_error(format!(
                "{what} is {value:?}, which is not one of {}",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

/// Replaces `{{name}}` variables that `lookup` knows; others stay for a later stage (tasks
/// outputs inside a DAG) unless `strict`, where an unknown variable is an error.
fn substitute(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    strict: bool,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let inner = rest[start + 2..start + len].trim();
        out.push_str(&rest[..start]);
        if inner.starts_with('=') {
            return Err(format!(
                "expression template {{{{{inner}}}}} is not implemented by medallion run"
            ));
        }
        match lookup(inner) {
            Some(v) => out.push_str(&v),
            None if strict => return Err(format!("{{{{{inner}}}}} is not defined here")),
            None => out.push_str(&rest[start..start + len + 2]),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn substitute_value(
    value: &Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    strict: bool,
) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(substitute(s, lookup, strict)?),
        Value::Array(l) => Value::Array(
            l.iter()
                .map(|v| substitute_value(v, lookup, strict))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), substitute_value(v, lookup, strict)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

impl Engine {
    fn global(&self, name: &str) -> Option<String> {
        match name {
            "workflow.name" => Some(self.workflow_name.clone()),
            "workflow.uid" => Some(self.workflow_uid.clone()),
            "workflow.namespace" => Some("local".into()),
            "workflow.serviceAccountName" => Some("local".into()),
            // A CronWorkflow run here is scheduled the moment it is created.
            "workflow.creationTimestamp" | "workflow.scheduledTime" => Some(
                self.created
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            _ if name.starts_with("workflow.creationTimestamp.") => {
                // Argo formats the creation time with one strftime letter (Y, m, d, H, M, S, ...).
                let letter = name.trim_start_matches("workflow.creationTimestamp.");
                (letter.len() == 1 && letter.chars().all(|c| c.is_ascii_alphabetic()))
                    .then(|| self.created.format(&format!("%{letter}")).to_string())
            }
            _ => name
                .strip_prefix("workflow.parameters.")
                .and_then(|p| self.workflow_params.get(p).cloned()),
        }
    }

    /// Runs one template with its arguments; `path` names the node (`wf.task.task`).
    fn invoke(
        &self,
        template: &Value,
        scope: &Scope,
        arguments: &BTreeMap<String, String>,
        path: &str,
        display: &str,
    ) -> Result<Outcome, RunError> {
        let tname = name_of(template);
        let fail_at = |m: String| template_error(format!("template {tname}: {m}"));
        if let Some(map) = template.as_object() {
            for k in map.keys() {
                if POD_ONLY_FIELDS.contains(&k.as_str()) {
                    if let Ok(mut n) = self.not_applied.lock() {
                        n.insert(k.clone());
                    }
                } else if !TEMPLATE_FIELDS.contains(&k.as_str()) {
                    return Err(fail_at(format!(
                        "{k} is not implemented by medallion run; run this workflow on a cluster"
                    )));
                }
            }
        }
        // Inputs as Argo's ProcessArgs sets them (workflow/common/util.go v4.1.2 lines 200-257):
        // the argument, else the input's value or default; then the global variables are
        // substituted over the whole template, input values included (SubstituteParams, lines
        // 273-329), so a `{{workflow.name}}` inside a value passed in is expanded there, as on a
        // cluster. An input's enum is not checked against what a caller passes (Argo checks
        // enums of arguments only, validate.go lines 1016-1060).
        let mut inputs = BTreeMap::new();
        for p in items(template, "/inputs/parameters") {
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            let value = match arguments.get(name) {
                Some(v) => v.clone(),
                None => match p.get("value").or_else(|| p.get("default")) {
                    Some(v) => value_text(v),
                    None => {
                        return Err(fail_at(format!(
                            "inputs.parameters.{name} was not supplied"
                        )));
                    }
                },
            };
            let value = substitute(&value, &|n| self.global(n), false).map_err(&fail_at)?;
            inputs.insert(name.to_string(), value);
        }
        // Input artifacts arrive as `artifacts.<name>` arguments holding a local file.
        let mut artifacts = BTreeMap::new();
        for a in items(template, "/inputs/artifacts") {
            let name = a.get("name").and_then(Value::as_str).unwrap_or("");
            let given = arguments.get(&format!("{ARTIFACT_ARG}{name}")).ok_or_else(|| {
                fail_at(format!(
                    "input artifact {name:?} is not given (arguments.artifacts with from: a task's output artifact)"
                ))
            })?;
            artifacts.insert(name.to_string(), PathBuf::from(given));
        }
        for given in arguments.keys() {
            if let Some(a) = given.strip_prefix(ARTIFACT_ARG) {
                if !artifacts.contains_key(a) {
                    return Err(fail_at(format!("takes no input artifact {a:?}")));
                }
            } else if !inputs.contains_key(given) {
                return Err(fail_at(format!("takes no input parameter {given:?}")));
            }
        }
        let lookup = |n: &str| -> Option<String> {
            n.strip_prefix("inputs.parameters.")
                .and_then(|p| inputs.get(p).cloned())
                .or_else(|| self.global(n))
        };
        let resolved = substitute_value(template, &lookup, false).map_err(&fail_at)?;
        if resolved.get("dag").is_some() {
            return self.run_dag(&resolved, scope, path);
        }
        // Containers map mount paths in the template as written, before substitution, so a
        // parameter's value (a lake under /tmp on this machine) is never taken for a mount.
        let raw = Leaf {
            template,
            inputs: &inputs,
            artifacts: &artifacts,
        };
        self.run_leaf(&resolved, &raw, path, display)
    }
}

fn sanitize(path: &str) -> String {
    path.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn write_status(
    summary: &RunSummary,
    params: &BTreeMap<String, String>,
    outcome: &Outcome,
) -> Result<(), RunError> {
    let nodes: Vec<Value> = summary
        .nodes
        .iter()
        .map(|n| {
            json!({"task": n.path, "template": n.template, "phase": n.phase.as_str(),
                   "message": n.message, "seconds": n.duration.as_secs_f64(), "attempts": n.attempts,
                   "memoized": n.memoized, "outputs": n.outputs,
                   "artifacts": n.artifacts.iter().map(|(k, v)| (k.clone(), v.display().to_string())).collect::<BTreeMap<_, _>>()})
        })
        .collect();
    let status = json!({"name": summary.name, "phase": summary.phase.as_str(), "message": outcome.message,
                        "parameters": params, "outputs": summary.outputs, "nodes": nodes,
                        "not_applied_locally": summary.not_applied});
    let path = summary.run_dir.join("status.json");
    std::fs::write(&path, format!("{status:#}\n"))
        .map_err(|e| template_error(format!("{}: {e}", path.display())))
}
