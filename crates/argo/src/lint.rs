//! Offline checks of Argo YAML beyond the schema (`medallion lint`): every template reference
//! resolves, every `{{...}}` variable names something declared, DAG dependencies exist and have
//! no cycle, every image is one this repository builds, and every Sensor trigger submits a
//! template that exists with parameters it declares.
//!
//! Pure functions over parsed documents; reading files is the caller's job.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::schema::{Schemas, closest};

/// One YAML document of one file.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: String,
    /// 1-based position of the document in its file.
    pub index: usize,
    pub value: Value,
}

impl Document {
    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    fn label(&self) -> String {
        format!(
            "{}: document {} ({} {})",
            self.file,
            self.index,
            if self.kind().is_empty() {
                "?"
            } else {
                self.kind()
            },
            if self.name().is_empty() {
                "?"
            } else {
                self.name()
            }
        )
    }
}

/// A problem: the document it is in, the path inside it, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub document: String,
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.document, self.path, self.message)
    }
}

/// What the checks need to know beyond the documents.
#[derive(Debug, Clone, Default)]
pub struct LintConfig {
    /// Image names (the last path segment without tag, e.g. `medallion-import`) this repository
    /// builds. `None` skips the image check.
    pub images: Option<BTreeSet<String>>,
}

/// The outcome: findings, and how many documents each check saw.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub documents: usize,
    pub schema_checked: usize,
    /// Documents of kinds Argo's schemas do not define (ConfigMap, RBAC, Kustomization...):
    /// `(label, kind)`; their images are still checked.
    pub other_kinds: Vec<(String, String)>,
}

static VARIABLE: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a constant pattern
    Regex::new(r"\{\{\s*([^}=\s][^}]*?)\s*\}\}").expect("valid pattern")
});

/// The `{{...}}` variables in a string (expression templates `{{=...}}` are skipped).
pub fn variables(text: &str) -> impl Iterator<Item = &str> {
    VARIABLE
        .captures_iter(text)
        .filter_map(|c| c.get(1).map(|m| m.as_str()))
}

/// Templates by name of one workflow-like spec, with its declared workflow parameters.
struct Spec<'a> {
    templates: BTreeMap<&'a str, &'a Value>,
    parameters: BTreeSet<&'a str>,
    /// Workflow parameters without a value: a Workflow running this template must give them.
    required: Vec<&'a str>,
}

fn spec_of(spec: &Value) -> Spec<'_> {
    let templates = spec
        .get("templates")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str).map(|n| (n, t)))
                .collect()
        })
        .unwrap_or_default();
    Spec {
        templates,
        parameters: param_names(spec.pointer("/arguments/parameters")),
        required: required_params(spec.pointer("/arguments/parameters")),
    }
}

fn param_names(list: Option<&Value>) -> BTreeSet<&str> {
    list.and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|p| p.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

/// The parameters of a list that have neither `value` nor `default`: a caller must give them.
fn required_params(list: Option<&Value>) -> Vec<&str> {
    list.and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter(|p| p.get("value").is_none() && p.get("default").is_none())
                .filter_map(|p| p.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

/// Every WorkflowTemplate / ClusterWorkflowTemplate, by (cluster scope, name).
struct Library<'a> {
    specs: BTreeMap<(bool, &'a str), Spec<'a>>,
}

impl<'a> Library<'a> {
    fn new(docs: &'a [Document]) -> Library<'a> {
        let mut specs = BTreeMap::new();
        for d in docs {
            let cluster = match d.kind() {
                "WorkflowTemplate" => false,
                "ClusterWorkflowTemplate" => true,
                _ => continue,
            };
            if let Some(spec) = d.value.get("spec") {
                specs.insert((cluster, d.name()), spec_of(spec));
            }
        }
        Library { specs }
    }

    /// The template a task or step calls, or why it cannot be found.
    fn target(&self, local: &Spec<'a>, call: &'a Value) -> Result<&'a Value, String> {
        if let Some(name) = call.get("template").and_then(Value::as_str) {
            return local
                .templates
                .get(name)
                .copied()
                .ok_or_else(|| missing("template", name, local.templates.keys().copied()));
        }
        if let Some(r) = call.get("templateRef") {
            let name = r.get("name").and_then(Value::as_str).unwrap_or("");
            let template = r.get("template").and_then(Value::as_str).unwrap_or("");
            let cluster = r
                .get("clusterScope")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let kind = if cluster {
                "ClusterWorkflowTemplate"
            } else {
                "WorkflowTemplate"
            };
            let spec = self.specs.get(&(cluster, name)).ok_or_else(|| {
                format!(
                    "templateRef names {kind} {name:?}, which is not among the linted files{}",
                    closest(
                        name,
                        self.specs
                            .keys()
                            .filter(|(c, _)| *c == cluster)
                            .map(|(_, n)| *n)
                    )
                    .map(|n| format!(" (did you mean {n:?}?)"))
                    .unwrap_or_default()
                )
            })?;
            return spec.templates.get(template).copied().ok_or_else(|| {
                missing(
                    &format!("template of {kind} {name}"),
                    template,
                    spec.templates.keys().copied(),
                )
            });
        }
        Err("names neither a template nor a templateRef".into())
    }
}

fn missing<'b>(what: &str, name: &str, known: impl Iterator<Item = &'b str> + Clone) -> String {
    format!(
        "{what} {name:?} does not exist{}",
        closest(name, known)
            .map(|k| format!(" (did you mean {k:?}?)"))
            .unwrap_or_default()
    )
}

/// Runs every check over the documents.
pub fn lint(docs: &[Document], schemas: &Schemas, config: &LintConfig) -> Report {
    let mut report = Report {
        documents: docs.len(),
        ..Report::default()
    };
    let library = Library::new(docs);
    for d in docs {
        let label = d.label();
        let mut add = |path: &str, message: String| {
            report.findings.push(Finding {
                document: label.clone(),
                path: path.to_string(),
                message,
            })
        };
        if d.value.is_null() {
            continue;
        }
        if schemas.knows_kind(d.kind()) {
            report.schema_checked += 1;
            for v in schemas.validate(&d.value) {
                add(&v.path, v.message);
            }
        } else {
            report
                .other_kinds
                .push((label.clone(), d.kind().to_string()));
        }
        if let Some(images) = &config.images {
            check_images(&d.value, "", images, &mut add);
        }
        match d.kind() {
            "WorkflowTemplate" | "ClusterWorkflowTemplate" | "Workflow" => {
                if let Some(spec) = d.value.get("spec") {
                    check_workflow_spec(spec, "spec", &library, &mut add);
                }
            }
            "CronWorkflow" => {
                if let Some(spec) = d.value.pointer("/spec/workflowSpec") {
                    check_workflow_spec(spec, "spec.workflowSpec", &library, &mut add);
                }
            }
            "Sensor" => check_sensor(&d.value, &library, schemas, &mut add),
            "Kustomization" => {
                // kustomize `images:` entries set the tags; their names must be images we build.
                if let (Some(images), Some(list)) = (
                    &config.images,
                    d.value.get("images").and_then(Value::as_array),
                ) {
                    for (i, entry) in list.iter().enumerate() {
                        let name = entry.get("name").and_then(Value::as_str).unwrap_or("");
                        if !images.contains(image_name(name)) {
                            add(
                                &format!("images[{i}].name"),
                                format!("image {name:?} is not one this repository builds"),
                            );
                        }
                    }
                }
            }
            _ => {}
        }
    }
    report
}

fn check_images(
    value: &Value,
    path: &str,
    images: &BTreeSet<String>,
    add: &mut impl FnMut(&str, String),
) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if k == "image"
                    && let Some(reference) = v.as_str()
                {
                    let base = image_name(reference);
                    if !images.contains(base) && upstream_image(reference).is_none() {
                        add(
                            &child,
                            format!(
                                "image {reference:?} is not one this repository builds (Dockerfile targets: {}) nor an allowed upstream image ({})",
                                images.iter().cloned().collect::<Vec<_>>().join(", "),
                                UPSTREAM_IMAGES
                                    .iter()
                                    .map(|(i, _)| *i)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        );
                    }
                } else {
                    check_images(v, &child, images, add);
                }
            }
        }
        Value::Array(list) => {
            for (i, v) in list.iter().enumerate() {
                check_images(v, &format!("{path}[{i}]"), images, add);
            }
        }
        _ => {}
    }
}

/// Upstream images the templates may use besides ours (the platform pipeline's terraform), each
/// with the tool `medallion run` runs locally in its place. One list, for lint and the runner.
pub const UPSTREAM_IMAGES: &[(&str, &str)] = &[("hashicorp/terraform", "terraform")];

/// The local tool of an allowed upstream image (`docker.io/hashicorp/terraform:1.11.4` →
/// `terraform`), or `None`.
pub fn upstream_image(reference: &str) -> Option<&'static str> {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let repo = without_digest
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .map_or(without_digest, |(r, _)| r);
    let repo = repo.strip_prefix("docker.io/").unwrap_or(repo);
    UPSTREAM_IMAGES
        .iter()
        .find(|(i, _)| *i == repo)
        .map(|(_, tool)| *tool)
}

/// `ghcr.io/org/medallion-import:0.1.0` → `medallion-import`.
pub fn image_name(reference: &str) -> &str {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split(':').next().unwrap_or(last)
}

fn check_workflow_spec(
    spec: &Value,
    at: &str,
    library: &Library<'_>,
    add: &mut impl FnMut(&str, String),
) {
    let local = spec_of(spec);
    // A Workflow may run a WorkflowTemplate instead of holding templates.
    let mut referenced: Option<&Spec<'_>> = None;
    if let Some(r) = spec.get("workflowTemplateRef") {
        let name = r.get("name").and_then(Value::as_str).unwrap_or("");
        let cluster = r
            .get("clusterScope")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        match library.specs.get(&(cluster, name)) {
            Some(s) => referenced = Some(s),
            None => add(
                &format!("{at}.workflowTemplateRef.name"),
                missing(
                    "WorkflowTemplate",
                    name,
                    library.specs.keys().map(|(_, n)| *n),
                ),
            ),
        }
    }
    if let Some(target) = referenced {
        check_arguments_against(
            spec.pointer("/arguments/parameters"),
            &target.parameters,
            target.required.clone(),
            &format!("{at}.arguments.parameters"),
            add,
        );
    }
    for field in ["entrypoint", "onExit"] {
        if let Some(name) = spec.get(field).and_then(Value::as_str) {
            let known = match referenced {
                Some(r) if local.templates.is_empty() => &r.templates,
                _ => &local.templates,
            };
            if !known.contains_key(name) {
                add(
                    &format!("{at}.{field}"),
                    missing("template", name, known.keys().copied()),
                );
            }
        }
    }
    if let Some(list) = spec.get("templates").and_then(Value::as_array) {
        for (i, template) in list.iter().enumerate() {
            check_template(
                template,
                &format!("{at}.templates[{i}]"),
                &local,
                library,
                add,
            );
        }
    }
}

fn check_arguments_against(
    given: Option<&Value>,
    declared: &BTreeSet<&str>,
    required: Vec<&str>,
    at: &str,
    add: &mut impl FnMut(&str, String),
) {
    let names = param_names(given);
    if let Some(list) = given.and_then(Value::as_array) {
        for (i, p) in list.iter().enumerate() {
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            if !declared.contains(name) {
                add(
                    &format!("{at}[{i}]"),
                    missing("parameter", name, declared.iter().copied()),
                );
            }
        }
    }
    for r in required {
        if !names.contains(r) {
            add(
                at,
                format!("parameter {r:?} is required (it has no value) but is not given"),
            );
        }
    }
}

/// Variables every template may use.
fn global_variable(v: &str, workflow_params: &BTreeSet<&str>) -> Option<Result<(), String>> {
    const FIXED: &[&str] = &[
        "workflow.name",
        "workflow.namespace",
        "workflow.uid",
        "workflow.serviceAccountName",
        "workflow.mainEntrypoint",
        "workflow.creationTimestamp",
        // Set on the Workflows a CronWorkflow creates (Argo leaves it unset otherwise).
        "workflow.scheduledTime",
        "workflow.duration",
        "workflow.status",
        "workflow.priority",
        "workflow.failures",
        "workflow.parameters",
        "pod.name",
        "node.name",
        "retries",
        "item",
        "lastRetry.exitCode",
        "lastRetry.status",
        "lastRetry.duration",
        "lastRetry.message",
        "inputs.parameters",
        "outputs.parameters",
    ];
    if FIXED.contains(&v)
        || v.starts_with("workflow.labels.")
        || v.starts_with("workflow.annotations.")
        || v.starts_with("workflow.creationTimestamp.")
        || v.starts_with("item.")
    {
        return Some(Ok(()));
    }
    if let Some(p) = v.strip_prefix("workflow.parameters.") {
        return Some(if workflow_params.contains(p) {
            Ok(())
        } else {
            Err(missing(
                "workflow parameter",
                p,
                workflow_params.iter().copied(),
            ))
        });
    }
    None
}

fn strings<'a>(value: &'a Value, path: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::String(s) => out.push((path, s)),
        Value::Array(l) => {
            for (i, v) in l.iter().enumerate() {
                strings(v, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(m) => {
            for (k, v) in m {
                strings(v, format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

fn check_template(
    template: &Value,
    at: &str,
    local: &Spec<'_>,
    library: &Library<'_>,
    add: &mut impl FnMut(&str, String),
) {
    let inputs = param_names(template.pointer("/inputs/parameters"));
    let input_artifacts = param_names(template.pointer("/inputs/artifacts"));
    let outputs = param_names(template.pointer("/outputs/parameters"));
    let tasks: Vec<&Value> = template
        .pointer("/dag/tasks")
        .and_then(Value::as_array)
        .map(|l| l.iter().collect())
        .unwrap_or_default();
    let task_names: BTreeMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.get("name").and_then(Value::as_str).map(|n| (n, i)))
        .collect();
    if task_names.len() != tasks.len() {
        add(&format!("{at}.dag.tasks"), "two tasks share a name".into());
    }
    // Dependencies of each task (from `dependencies` or the names in `depends`).
    let mut deps: Vec<Vec<&str>> = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        let tp = format!("{at}.dag.tasks[{i}]");
        let mut names: Vec<&str> = t
            .get("dependencies")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(expr) = t.get("depends").and_then(Value::as_str) {
            names.extend(depends_names(expr));
        }
        for n in &names {
            if !task_names.contains_key(n) {
                add(
                    &format!("{tp}.dependencies"),
                    missing("task", n, task_names.keys().copied()),
                );
            }
        }
        deps.push(names);
    }
    if let Some(cycle) = find_cycle(&tasks, &deps, &task_names) {
        add(
            &format!("{at}.dag.tasks"),
            format!("dependency cycle: {}", cycle.join(" → ")),
        );
    }
    // Each task: its target template, its arguments, and the variables it uses.
    for (i, t) in tasks.iter().enumerate() {
        let tp = format!("{at}.dag.tasks[{i}]");
        match library.target(local, t) {
            Ok(target) => {
                check_arguments_against(
                    t.pointer("/arguments/parameters"),
                    &param_names(target.pointer("/inputs/parameters")),
                    required_params(target.pointer("/inputs/parameters")),
                    &format!("{tp}.arguments.parameters"),
                    add,
                );
            }
            Err(m) => add(&tp, m),
        }
        let upstream = closure(i, &deps, &task_names);
        let mut found = Vec::new();
        strings(t, tp.clone(), &mut found);
        for (path, s) in found {
            for v in variables(s) {
                if let Some(rest) = v.strip_prefix("tasks.") {
                    if let Err(m) =
                        check_task_variable(rest, &tasks, &task_names, &upstream, local, library)
                    {
                        add(&path, format!("{{{{{v}}}}}: {m}"));
                    }
                } else if let Err(m) =
                    check_plain_variable(v, &inputs, &input_artifacts, &outputs, &local.parameters)
                {
                    add(&path, format!("{{{{{v}}}}}: {m}"));
                }
            }
        }
    }
    // The rest of the template (container, plugin, outputs...): inputs and workflow variables.
    let mut found = Vec::new();
    if let Some(map) = template.as_object() {
        for (k, v) in map {
            if k == "dag" {
                continue;
            }
            strings(v, format!("{at}.{k}"), &mut found);
        }
    }
    // A DAG's own outputs may read any of its tasks' outputs (they are set when the DAG ends).
    let all_tasks: BTreeSet<usize> = (0..tasks.len()).collect();
    let dag_outputs = format!("{at}.outputs");
    for (path, s) in found {
        for v in variables(s) {
            if let Some(rest) = v.strip_prefix("tasks.") {
                if !tasks.is_empty() && path.starts_with(&dag_outputs) {
                    if let Err(m) =
                        check_task_variable(rest, &tasks, &task_names, &all_tasks, local, library)
                    {
                        add(&path, format!("{{{{{v}}}}}: {m}"));
                    }
                } else {
                    add(
                        &path,
                        format!(
                            "{{{{{v}}}}}: task outputs are only visible inside a DAG's tasks and its outputs"
                        ),
                    );
                }
            } else if let Err(m) =
                check_plain_variable(v, &inputs, &input_artifacts, &outputs, &local.parameters)
            {
                add(&path, format!("{{{{{v}}}}}: {m}"));
            }
        }
    }
}

fn check_plain_variable(
    v: &str,
    inputs: &BTreeSet<&str>,
    input_artifacts: &BTreeSet<&str>,
    outputs: &BTreeSet<&str>,
    workflow_params: &BTreeSet<&str>,
) -> Result<(), String> {
    if let Some(r) = global_variable(v, workflow_params) {
        return r;
    }
    if let Some(p) = v.strip_prefix("inputs.parameters.") {
        return if inputs.contains(p) {
            Ok(())
        } else {
            Err(missing("input parameter", p, inputs.iter().copied()))
        };
    }
    if let Some(p) = v.strip_prefix("inputs.artifacts.") {
        let name = p.split('.').next().unwrap_or(p);
        return if input_artifacts.contains(name) {
            Ok(())
        } else {
            Err(missing(
                "input artifact",
                name,
                input_artifacts.iter().copied(),
            ))
        };
    }
    if let Some(p) = v.strip_prefix("outputs.parameters.") {
        return if outputs.contains(p) {
            Ok(())
        } else {
            Err(missing("output parameter", p, outputs.iter().copied()))
        };
    }
    Err("is not a variable Argo defines here".into())
}

fn check_task_variable(
    rest: &str,
    tasks: &[&Value],
    names: &BTreeMap<&str, usize>,
    upstream: &BTreeSet<usize>,
    local: &Spec<'_>,
    library: &Library<'_>,
) -> Result<(), String> {
    // Task names may contain dots only in theory; Argo's names are DNS labels.
    let (task, field) = rest.split_once('.').ok_or("names no task output")?;
    let index = *names
        .get(task)
        .ok_or_else(|| missing("task", task, names.keys().copied()))?;
    if !upstream.contains(&index) {
        return Err(format!(
            "task {task:?} is not a dependency of this task, so its outputs may not exist yet"
        ));
    }
    match field {
        "status" | "exitCode" | "startedAt" | "finishedAt" | "id" | "ip" | "outputs.result" => {
            Ok(())
        }
        f => {
            let (p, list, what) = if let Some(p) = f.strip_prefix("outputs.parameters.") {
                (p, "/outputs/parameters", "output parameter")
            } else if let Some(a) = f.strip_prefix("outputs.artifacts.") {
                (a, "/outputs/artifacts", "output artifact")
            } else {
                return Err(format!("{f:?} is not a task field Argo defines"));
            };
            let target = library
                .target(local, tasks[index])
                .map_err(|m| format!("task {task:?} {m}"))?;
            let declared = param_names(target.pointer(list));
            if declared.contains(p) {
                Ok(())
            } else {
                Err(missing(
                    &format!("{what} of task {task}"),
                    p,
                    declared.iter().copied(),
                ))
            }
        }
    }
}

/// The task names in a `depends` expression (`a && (b.Succeeded || c.Failed)`).
pub fn depends_names(expr: &str) -> Vec<&str> {
    expr.split(|c: char| c.is_whitespace() || "()!&|".contains(c))
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.rsplit_once('.')
                .filter(|(_, s)| {
                    matches!(
                        *s,
                        "Succeeded"
                            | "Failed"
                            | "Errored"
                            | "Skipped"
                            | "Omitted"
                            | "Daemoned"
                            | "AnySucceeded"
                            | "AllFailed"
                    )
                })
                .map_or(t, |(n, _)| n)
        })
        .collect()
}

fn closure(start: usize, deps: &[Vec<&str>], names: &BTreeMap<&str, usize>) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<usize> = deps[start]
        .iter()
        .filter_map(|n| names.get(n).copied())
        .collect();
    while let Some(i) = stack.pop() {
        if seen.insert(i) {
            stack.extend(deps[i].iter().filter_map(|n| names.get(n).copied()));
        }
    }
    seen
}

fn find_cycle(
    tasks: &[&Value],
    deps: &[Vec<&str>],
    names: &BTreeMap<&str, usize>,
) -> Option<Vec<String>> {
    // 0 unvisited, 1 on the stack, 2 done.
    fn visit(
        i: usize,
        deps: &[Vec<&str>],
        names: &BTreeMap<&str, usize>,
        state: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[i] = 1;
        stack.push(i);
        for n in &deps[i] {
            let Some(&j) = names.get(n) else { continue };
            if state[j] == 1 {
                let from = stack.iter().position(|&s| s == j).unwrap_or(0);
                let mut cycle = stack[from..].to_vec();
                cycle.push(j);
                return Some(cycle);
            }
            if state[j] == 0
                && let Some(c) = visit(j, deps, names, state, stack)
            {
                return Some(c);
            }
        }
        stack.pop();
        state[i] = 2;
        None
    }
    let mut state = vec![0u8; tasks.len()];
    for i in 0..tasks.len() {
        if state[i] == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(i, deps, names, &mut state, &mut stack) {
                return Some(
                    c.into_iter()
                        .map(|i| {
                            tasks[i]
                                .get("name")
                                .and_then(Value::as_str)
                                .unwrap_or("?")
                                .to_string()
                        })
                        .collect(),
                );
            }
        }
    }
    None
}

fn check_sensor(
    doc: &Value,
    library: &Library<'_>,
    schemas: &Schemas,
    add: &mut impl FnMut(&str, String),
) {
    let deps = param_names(doc.pointer("/spec/dependencies"));
    let Some(triggers) = doc.pointer("/spec/triggers").and_then(Value::as_array) else {
        return;
    };
    for (i, trigger) in triggers.iter().enumerate() {
        let at = format!("spec.triggers[{i}].template");
        let Some(t) = trigger.get("template") else {
            continue;
        };
        if let Some(cond) = t.get("conditions").and_then(Value::as_str) {
            for n in depends_names(cond) {
                if !deps.contains(n) {
                    add(
                        &format!("{at}.conditions"),
                        missing("dependency", n, deps.iter().copied()),
                    );
                }
            }
        }
        let Some(wf) = t.get("argoWorkflow") else {
            continue;
        };
        let params = wf.get("parameters").and_then(Value::as_array);
        for (j, p) in params.into_iter().flatten().enumerate() {
            let pp = format!("{at}.argoWorkflow.parameters[{j}]");
            if let Some(d) = p.pointer("/src/dependencyName").and_then(Value::as_str)
                && !deps.contains(d)
            {
                add(
                    &format!("{pp}.src.dependencyName"),
                    missing("dependency", d, deps.iter().copied()),
                );
            }
            if let Some(dest) = p.get("dest").and_then(Value::as_str)
                && let Some(resource) = wf.pointer("/source/resource")
                && !dest_exists(resource, dest)
            {
                add(
                    &format!("{pp}.dest"),
                    format!("{dest:?} is not a field of the Workflow this trigger submits"),
                );
            }
        }
        let Some(resource) = wf.pointer("/source/resource") else {
            continue;
        };
        let rp = format!("{at}.argoWorkflow.source.resource");
        for v in schemas.validate(resource) {
            add(&format!("{rp}.{}", v.path), v.message);
        }
        let Some(r) = resource.pointer("/spec/workflowTemplateRef") else {
            continue;
        };
        let name = r.get("name").and_then(Value::as_str).unwrap_or("");
        let cluster = r
            .get("clusterScope")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let Some(target) = library.specs.get(&(cluster, name)) else {
            add(
                &format!("{rp}.spec.workflowTemplateRef.name"),
                missing(
                    "WorkflowTemplate",
                    name,
                    library.specs.keys().map(|(_, n)| *n),
                ),
            );
            continue;
        };
        check_arguments_against(
            resource.pointer("/spec/arguments/parameters"),
            &target.parameters,
            target.required.clone(),
            &format!("{rp}.spec.arguments.parameters"),
            add,
        );
    }
}

/// Whether a Sensor `dest` (dotted, numeric segments index lists) points into the resource.
fn dest_exists(resource: &Value, dest: &str) -> bool {
    let segments: Vec<&str> = dest.split('.').collect();
    let mut current = resource;
    for (i, s) in segments.iter().enumerate() {
        let next = match current {
            Value::Array(l) => s.parse::<usize>().ok().and_then(|n| l.get(n)),
            Value::Object(m) => m.get(*s),
            _ => None,
        };
        match next {
            Some(v) => current = v,
            // The last segment may create a new field of an existing object.
            None => return i + 1 == segments.len() && current.is_object(),
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Document {
        Document {
            file: "t.yaml".into(),
            index: 1,
            value: v,
        }
    }

    fn messages(docs: &[Document]) -> Vec<String> {
        let schemas = Schemas::argo().unwrap();
        let config = LintConfig {
            images: Some(["medallion-import".to_string()].into_iter().collect()),
        };
        lint(docs, &schemas, &config)
            .findings
            .iter()
            .map(|f| format!("{}: {}", f.path, f.message))
            .collect()
    }

    fn pipeline(tasks: Value) -> Value {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
            "metadata": {"name": "p"},
            "spec": {"entrypoint": "main",
                "arguments": {"parameters": [{"name": "src", "value": ""}]},
                "templates": [
                    {"name": "main", "dag": {"tasks": tasks}},
                    {"name": "step", "inputs": {"parameters": [{"name": "x"}]},
                     "outputs": {"parameters": [{"name": "out", "valueFrom": {"path": "/tmp/o"}}]},
                     "container": {"image": "ghcr.io/o/medallion-import:1", "args": ["{{inputs.parameters.x}}"]}}]}})
    }

    #[test]
    fn a_consistent_pipeline_has_no_finding() {
        let p = pipeline(json!([
            {"name": "a", "template": "step", "arguments": {"parameters": [{"name": "x", "value": "{{workflow.parameters.src}}"}]}},
            {"name": "b", "template": "step", "dependencies": ["a"],
             "when": "{{tasks.a.outputs.parameters.out}} == true",
             "arguments": {"parameters": [{"name": "x", "value": "{{tasks.a.outputs.parameters.out}}"}]}}]));
        assert_eq!(messages(&[doc(p)]), Vec::<String>::new());
    }

    #[test]
    fn broken_references_are_named() {
        let p = pipeline(json!([
            {"name": "a", "template": "step", "arguments": {"parameters": [{"name": "x", "value": "1"}]}},
            {"name": "b", "template": "step", "dependencies": ["a", "c"],
             "arguments": {"parameters": [{"name": "x", "value": "{{tasks.a.outputs.parameters.output}}"}, {"name": "y", "value": "1"}]}},
            {"name": "c", "template": "step", "dependencies": ["b"],
             "arguments": {"parameters": [{"name": "x", "value": "1"}]}},
            {"name": "d", "template": "step"},
            {"name": "e", "template": "stpe", "arguments": {"parameters": [{"name": "x", "value": "{{workflow.parameters.srcc}}"}]}},
            {"name": "f", "template": "step", "dependencies": ["z"],
             "arguments": {"parameters": [{"name": "x", "value": "{{tasks.a.outputs.parameters.out}}"}]}}]));
        let m = messages(&[doc(p)]);
        let expect = [
            "spec.templates[0].dag.tasks[4]: template \"stpe\" does not exist (did you mean \"step\"?)",
            "spec.templates[0].dag.tasks[4].arguments.parameters[0].value: {{workflow.parameters.srcc}}: workflow parameter \"srcc\" does not exist (did you mean \"src\"?)",
            "spec.templates[0].dag.tasks[1].arguments.parameters[1]: parameter \"y\" does not exist",
            "spec.templates[0].dag.tasks[1].arguments.parameters[0].value: {{tasks.a.outputs.parameters.output}}: output parameter of task a \"output\" does not exist",
            "spec.templates[0].dag.tasks: dependency cycle: b → c → b",
            "spec.templates[0].dag.tasks[5].dependencies: task \"z\" does not exist",
            "spec.templates[0].dag.tasks[5].arguments.parameters[0].value: {{tasks.a.outputs.parameters.out}}: task \"a\" is not a dependency of this task, so its outputs may not exist yet",
            "spec.templates[0].dag.tasks[3].arguments.parameters: parameter \"x\" is required (it has no value) but is not given",
        ];
        for e in expect {
            assert!(m.iter().any(|x| x.starts_with(e)), "missing {e}\nin {m:#?}");
        }
    }

    #[test]
    fn foreign_images_and_undeclared_inputs_are_findings() {
        let mut p = pipeline(
            json!([{"name": "a", "template": "step", "arguments": {"parameters": [{"name": "x", "value": "1"}]}}]),
        );
        p["spec"]["templates"][1]["container"] =
            json!({"image": "python:3.12", "args": ["{{inputs.parameters.z}}"]});
        let m = messages(&[doc(p)]);
        assert!(m.iter().any(|x| x.starts_with("spec.templates[1].container.image: image \"python:3.12\" is not one this repository builds")), "{m:#?}");
        assert!(m.iter().any(|x| x.starts_with("spec.templates[1].container.args[0]: {{inputs.parameters.z}}: input parameter \"z\" does not exist")), "{m:#?}");
    }

    #[test]
    fn depends_expressions_name_tasks() {
        assert_eq!(
            depends_names("a && (b.Succeeded || c.Failed) && !d"),
            vec!["a", "b", "c", "d"]
        );
    }
}
