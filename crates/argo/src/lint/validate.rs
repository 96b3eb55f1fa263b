//! The rules Argo Workflows applies when a Workflow, WorkflowTemplate, ClusterWorkflowTemplate
//! or CronWorkflow is created, submitted or linted (`workflow/validate/validate.go`, and the
//! decoders of the types it reads), for the constructs Medallion's templates and the templates
//! users write with them use. Each finding quotes Argo's own error where it has one, and cites
//! the line at v4.1.2 (and v3.7.18 where it differs).
//!
//! Argo validates every template of a spec, reachable or not (validate.go v4.1.2 lines
//! 362-367), and stops at the first error; lint reports them all.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::{Context, Document, Sink, list, templates, text, workflow_spec};
use crate::expr::{self, Dialect};
use crate::schema::ArgoVersion;

static FIELD_NAME: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a constant pattern
    Regex::new(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$").expect("valid pattern")
});
static PARAM_NAME: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a constant pattern
    Regex::new(r"^[-a-zA-Z0-9_]+$").expect("valid pattern")
});
static VARIABLE: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a constant pattern
    Regex::new(r"\{\{[^}]*\}\}").expect("valid pattern")
});

const FIELD_NAMES: &str =
    "argo-workflows v4.1.2 workflow/validate/validate.go:1711-1727 (v3.7.18:1634-1650)";
const FIELD_NAMES_UNIQUE: &str =
    "argo-workflows v4.1.2 workflow/validate/validate.go:1350-1396 (v3.7.18:1270-1316)";
const OBJECT_NAME: &str =
    "argo-workflows v4.1.2 workflow/validate/validate.go:162,402,420,441 (v3.7.18:149,372,390,414)";
const TEMPLATE_REF_FIELDS: &str =
    "argo-workflows v4.1.2 workflow/validate/validate.go:382-387 (v3.7.18:362-367)";
const ARGUMENT_VALUES: &str =
    "argo-workflows v4.1.2 workflow/validate/validate.go:1016-1060 (v3.7.18:925-975)";
const POD_GC: &str = "argo-workflows v4.1.2 workflow/validate/validate.go:339-344 (v3.7.18:324)";
const TEMPLATE_TYPE: &str = "argo-workflows v4.1.2 workflow/validate/validate.go:721-737, workflow/templateresolution/context.go:251-253";
const OUTPUT_PARAMETER: &str =
    "argo-workflows v4.1.2 workflow/validate/validate.go:1280-1343 (v3.7.18:1200-1263)";
const OUTPUT_ARTIFACT: &str =
    "argo-workflows v4.1.2 workflow/validate/validate.go:1262-1278 (v3.7.18:1189)";
const NON_LEAF: &str =
    "argo-workflows v4.1.2 workflow/validate/validate.go:848-853 (v3.7.18:770-775)";
const DEADLINE_VALUE: &str = "argo-workflows v4.1.2 workflow/validate/validate.go:979-985, util/intstr/parametrizable.go:45-53";
const TIMEOUT: &str =
    "argo-workflows v4.1.2 workflow/validate/validate.go:562-570 (v3.7.18:510-516)";
const PARALLELISM: &str =
    "argo-workflows v4.1.2 workflow/validate/validate.go:987-989 (v3.7.18:896-898)";
const RETRY_POLICY: &str =
    "argo-workflows v4.1.2 workflow/validate/validate.go:688-695 (v3.7.18:629-636)";
const PLUGIN_KEYS: &str =
    "argo-workflows v4.1.2 pkg/apis/workflow/v1alpha1/plugin_types.go:15-29 (v3.7.18:14-26)";
const DAG_TASKS: &str = "argo-workflows v4.1.2 workflow/validate/validate.go:1439, 1454-1456; util/sorting/topological_sorting.go:18,26,44";
const DIGIT_TASK: &str =
    "argo-workflows v4.1.2 workflow/validate/validate.go:1468-1470 (v3.7.18:1389-1391)";
const DEPENDS_AND_DEPENDENCIES: &str =
    "argo-workflows v4.1.2 workflow/validate/validate.go:1472-1474 (v3.7.18:1393-1395)";
const CONTINUE_ON_DEPENDS: &str =
    "argo-workflows v4.1.2 workflow/validate/validate.go:1476-1478 (v3.7.18:1397-1399)";
const TASK_RESULT: &str = "argo-workflows v4.1.2 workflow/common/ancestry.go:35,90-108; workflow/validate/validate.go:1491-1494";
const LOOPS: &str = "argo-workflows v4.1.2 workflow/validate/validate.go:1151 (v3.7.18:1070)";
const TEMPLATE_REF: &str =
    "argo-workflows v4.1.2 workflow/validate/validate.go:647-653 (v3.7.18:590)";
const STEPS: &str =
    "argo-workflows v4.1.2 workflow/validate/validate.go:1071-1080 (v3.7.18:988-994)";
const WHEN: &str = "argo-workflows v4.1.2 workflow/controller/steps.go:384-420 (govaluate, at run time; validate.go does not parse it)";
const RETRY_EXPRESSION: &str = "argo-workflows v4.1.2 util/expr/argoexpr/eval.go:9-23, workflow/controller/operator.go:1193-1203 (at run time)";

/// The submission rules for one document.
pub(crate) fn check(doc: &Document, context: &Context<'_>, sink: &mut Sink<'_>) {
    object_name(doc, sink);
    let Some((spec, at)) = workflow_spec(doc) else {
        return;
    };
    if spec.get("workflowTemplateRef").is_some()
        && spec
            .get("templates")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty())
    {
        sink.add(
            &format!("{at}.templates"),
            "Templates is invalid field in spec if workflow referred WorkflowTemplate reference"
                .into(),
            TEMPLATE_REF_FIELDS,
        );
    }
    unique_names(
        spec.get("templates"),
        &format!("{at}.templates"),
        Names::Field,
        sink,
    );
    // With workflowTemplateRef Argo merges the arguments first and reports no duplicate
    // (validate.go v4.1.2 lines 191-194).
    if spec.get("workflowTemplateRef").is_none() {
        arguments(
            spec.get("arguments"),
            &format!("{at}.arguments"),
            true,
            sink,
        );
    }
    if let Some(strategy) = spec.pointer("/podGC/strategy").and_then(Value::as_str)
        && ![
            "",
            "OnPodCompletion",
            "OnPodSuccess",
            "OnWorkflowCompletion",
            "OnWorkflowSuccess",
        ]
        .contains(&strategy)
    {
        sink.add(
            &format!("{at}.podGC.strategy"),
            format!("podGC.strategy unknown strategy '{strategy}'"),
            POD_GC,
        );
    }
    for (path, template) in templates(spec, at) {
        check_template(template, &path, context.config.argo_version, sink);
    }
}

/// Object names: Argo refuses longer ones before anything else.
fn object_name(doc: &Document, sink: &mut Sink<'_>) {
    let (what, max) = match doc.kind() {
        "Workflow" => ("workflow name", 63),
        "WorkflowTemplate" => ("workflow template name", 63),
        "ClusterWorkflowTemplate" => ("cluster workflow template name", 63),
        "CronWorkflow" => ("cron workflow name", 52),
        _ => return,
    };
    let name = doc.name();
    if name.len() > max {
        sink.add(
            "metadata.name",
            format!(
                "{what} {name:?} must not be more than {max} characters long (currently {})",
                name.len()
            ),
            OBJECT_NAME,
        );
    }
}

#[derive(Clone, Copy)]
enum Names {
    /// Templates, tasks, steps: `^[a-zA-Z0-9][-a-zA-Z0-9]*$`, at most 128 characters.
    Field,
    /// Parameters and artifacts: `^[-a-zA-Z0-9_]+$`.
    Parameter,
}

/// Argo's `validateWorkflowFieldNames`: every item has a valid name, and no name repeats.
fn unique_names(items: Option<&Value>, at: &str, kind: Names, sink: &mut Sink<'_>) {
    let mut seen = BTreeSet::new();
    for (i, item) in items
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = text(item, "name");
        if name.is_empty() {
            sink.add(
                &format!("{at}[{i}]"),
                format!("[{i}].name is required"),
                FIELD_NAMES_UNIQUE,
            );
            continue;
        }
        if let Some(problem) = name_problem(name, kind) {
            sink.add(
                &format!("{at}[{i}].name"),
                format!("[{i}].name: '{name}' is invalid: {problem}"),
                FIELD_NAMES,
            );
        }
        if !seen.insert(name) {
            sink.add(
                &format!("{at}[{i}].name"),
                format!("[{i}].name '{name}' is not unique"),
                FIELD_NAMES_UNIQUE,
            );
        }
    }
}

fn name_problem(name: &str, kind: Names) -> Option<String> {
    match kind {
        Names::Field => {
            let mut problems = Vec::new();
            if name.len() > 128 {
                problems.push("must be no more than 128 characters".to_string());
            }
            if !FIELD_NAME.is_match(name) {
                problems.push("name must consist of alpha-numeric characters or '-', and must start with an alpha-numeric character (e.g. My-name1-2, 123-NAME)".to_string());
            }
            (!problems.is_empty()).then(|| problems.join(";"))
        }
        Names::Parameter => (!PARAM_NAME.is_match(name)).then(|| {
            "Parameter/Artifact name must consist of alpha-numeric characters, '_' or '-' e.g. my_param_1, MY-PARAM-1".to_string()
        }),
    }
}

/// An `arguments` block: unique names, and values inside their `enum`.
fn arguments(args: Option<&Value>, at: &str, workflow_level: bool, sink: &mut Sink<'_>) {
    let Some(args) = args else { return };
    unique_names(
        args.get("parameters"),
        &format!("{at}.parameters"),
        Names::Parameter,
        sink,
    );
    unique_names(
        args.get("artifacts"),
        &format!("{at}.artifacts"),
        Names::Parameter,
        sink,
    );
    let prefix = if workflow_level {
        "spec.arguments."
    } else {
        ""
    };
    for (i, p) in list(args, "/parameters").enumerate() {
        let name = text(p, "name");
        let Some(options) = p.get("enum").and_then(Value::as_array) else {
            continue;
        };
        let here = format!("{at}.parameters[{i}]");
        if options.is_empty() {
            sink.add(
                &here,
                format!("{prefix}{name}.enum should contain at least one value"),
                ARGUMENT_VALUES,
            );
            continue;
        }
        if let Some(value) = p.get("value")
            && !options.iter().any(|o| value_text(o) == value_text(value))
        {
            sink.add(
                &format!("{here}.value"),
                format!("{prefix}{name}.value should be present in {prefix}{name}.enum list"),
                ARGUMENT_VALUES,
            );
        }
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The kinds of template Argo knows, in `GetType`'s order.
const TEMPLATE_TYPES: &[&str] = &[
    "container",
    "containerSet",
    "steps",
    "dag",
    "script",
    "resource",
    "data",
    "suspend",
    "http",
    "plugin",
];

fn check_template(template: &Value, at: &str, version: ArgoVersion, sink: &mut Sink<'_>) {
    let name = text(template, "name");
    let types: Vec<&str> = TEMPLATE_TYPES
        .iter()
        .copied()
        .filter(|t| template.get(*t).is_some())
        .collect();
    match types.len() {
        0 => sink.add(
            at,
            format!("template '{name}' type is unknown"),
            TEMPLATE_TYPE,
        ),
        1 => {}
        _ => sink.add(
            at,
            format!("templates.{name} multiple template types specified. choose one of: container, containerSet, steps, script, resource, dag, suspend, template, template ref"),
            TEMPLATE_TYPE,
        ),
    }
    let kind = types.first().copied().unwrap_or("");
    let leaf = !matches!(kind, "dag" | "steps");
    unique_names(
        template.pointer("/inputs/parameters"),
        &format!("{at}.inputs.parameters"),
        Names::Parameter,
        sink,
    );
    unique_names(
        template.pointer("/inputs/artifacts"),
        &format!("{at}.inputs.artifacts"),
        Names::Parameter,
        sink,
    );
    unique_names(
        template.pointer("/outputs/parameters"),
        &format!("{at}.outputs.parameters"),
        Names::Parameter,
        sink,
    );
    unique_names(
        template.pointer("/outputs/artifacts"),
        &format!("{at}.outputs.artifacts"),
        Names::Parameter,
        sink,
    );
    output_parameters(template, at, name, kind, version, sink);
    for (i, a) in list(template, "/outputs/artifacts").enumerate() {
        if !leaf && a.get("path").is_some() {
            sink.add(
                &format!("{at}.outputs.artifacts[{i}].path"),
                format!("templates.{name}.outputs.artifacts.path only valid in container/script templates"),
                OUTPUT_ARTIFACT,
            );
        }
    }
    if let Some(deadline) = template.get("activeDeadlineSeconds") {
        if !leaf {
            sink.add(
                &format!("{at}.activeDeadlineSeconds"),
                format!("templates.{name}.activeDeadlineSeconds is only valid for leaf templates"),
                NON_LEAF,
            );
        } else if !int_or_variable(deadline) {
            sink.add(
                &format!("{at}.activeDeadlineSeconds"),
                format!("templates.{name}.activeDeadlineSeconds must be a positive integer > 0 or an argo variable"),
                DEADLINE_VALUE,
            );
        }
    }
    if let Some(timeout) = template.get("timeout") {
        if matches!(kind, "dag" | "steps" | "suspend") {
            let what = match kind {
                "dag" => "DAG",
                "steps" => "Steps",
                _ => "Suspend",
            };
            let end = if version == ArgoVersion::V3_7 {
                "."
            } else {
                ""
            };
            sink.add(
                &format!("{at}.timeout"),
                format!("{what} template doesn't support timeout field{end}"),
                TIMEOUT,
            );
        } else if value_text(timeout).parse::<i64>().is_ok() {
            sink.add(
                &format!("{at}.timeout"),
                format!("templates.{name} has invalid duration format in timeout"),
                TIMEOUT,
            );
        }
    }
    if leaf && template.get("parallelism").is_some() {
        sink.add(
            &format!("{at}.parallelism"),
            format!("templates.{name}.parallelism is only valid for steps and dag templates"),
            PARALLELISM,
        );
    }
    if let Some(policy) = template
        .pointer("/retryStrategy/retryPolicy")
        .and_then(Value::as_str)
        && !["", "Always", "OnFailure", "OnError", "OnTransientError"].contains(&policy)
    {
        sink.add(
            &format!("{at}.retryStrategy.retryPolicy"),
            format!("{policy} is not a valid RetryPolicy"),
            RETRY_POLICY,
        );
    }
    if let Some(e) = template
        .pointer("/retryStrategy/expression")
        .and_then(Value::as_str)
        && let Err(error) = syntax(e, Dialect::ExprLang)
    {
        sink.add(
            &format!("{at}.retryStrategy.expression"),
            format!("unable to evaluate expression '{e}': {}", error.message),
            RETRY_EXPRESSION,
        );
    }
    if let Some(plugin) = template.get("plugin") {
        let keys = plugin.as_object().map_or(0, |m| m.len());
        if keys != 1 {
            sink.add(
                &format!("{at}.plugin"),
                format!("expected exactly one key, got {keys}"),
                PLUGIN_KEYS,
            );
        }
    }
    if let Some(dag) = template.get("dag") {
        check_dag(dag, &format!("{at}.dag"), name, sink);
    }
    if let Some(steps) = template.get("steps") {
        check_steps(steps, &format!("{at}.steps"), name, sink);
    }
}

/// An IntOrString Argo accepts for a deadline: a number, a string of digits, or `{{...}}`.
fn int_or_variable(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_i64().is_some_and(|n| n >= 0),
        Value::String(s) => {
            s.parse::<i64>().is_ok_and(|n| n >= 0) || (s.starts_with("{{") && s.ends_with("}}"))
        }
        _ => false,
    }
}

fn output_parameters(
    template: &Value,
    at: &str,
    name: &str,
    kind: &str,
    version: ArgoVersion,
    sink: &mut Sink<'_>,
) {
    for (i, p) in list(template, "/outputs/parameters").enumerate() {
        let here = format!("{at}.outputs.parameters[{i}]");
        let param_ref = format!("templates.{name}.outputs.parameters.{}", text(p, "name"));
        let value_from = p.get("valueFrom");
        match (p.get("value").is_some(), value_from) {
            (true, Some(_)) => {
                let message = match version {
                    ArgoVersion::V4_1 => {
                        format!("{param_ref} has both valueFrom and value specified, choose one")
                    }
                    ArgoVersion::V3_7 => {
                        format!("{param_ref} has both valueFrom and value specified. Choose one.")
                    }
                };
                sink.add(&here, message, OUTPUT_PARAMETER);
                continue;
            }
            (false, None) => {
                sink.add(
                    &here,
                    format!("{param_ref} does not have valueFrom or value specified"),
                    OUTPUT_PARAMETER,
                );
                continue;
            }
            (true, None) => continue,
            (false, Some(_)) => {}
        }
        let Some(from) = value_from else { continue };
        let set: Vec<&str> = [
            "path",
            "jqFilter",
            "jsonPath",
            "parameter",
            "expression",
            "supplied",
        ]
        .into_iter()
        .filter(|k| from.get(*k).is_some())
        .collect();
        let here_from = format!("{here}.valueFrom");
        match kind {
            "container" | "containerSet" | "script" if from.get("path").is_none() => {
                let t = match kind {
                    "container" => "Container",
                    "containerSet" => "ContainerSet",
                    _ => "Script",
                };
                sink.add(
                    &here_from,
                    format!("{param_ref}.path must be specified for {t} templates"),
                    OUTPUT_PARAMETER,
                );
                continue;
            }
            "resource" if from.get("jqFilter").is_none() && from.get("jsonPath").is_none() => {
                sink.add(
                    &here_from,
                    format!(
                        "{param_ref} .jqFilter or jsonPath must be specified for Resource templates"
                    ),
                    OUTPUT_PARAMETER,
                );
                continue;
            }
            "dag" | "steps" => {
                let t = if kind == "dag" { "DAG" } else { "Steps" };
                let has_parameter = from.get("parameter").is_some();
                let has_expression = from.get("expression").is_some();
                if !has_parameter && !has_expression {
                    sink.add(
                        &here_from,
                        format!("{param_ref}.parameter or expression must be specified for {t} templates"),
                        OUTPUT_PARAMETER,
                    );
                    continue;
                }
                if has_parameter && has_expression {
                    sink.add(
                        &here_from,
                        format!("{param_ref} shouldn't have both `from` and `expression` specified in `ValueFrom` for {t} templates"),
                        OUTPUT_PARAMETER,
                    );
                    continue;
                }
            }
            _ => {}
        }
        if set.is_empty() {
            sink.add(
                &here_from,
                "valueFrom type unspecified. choose one of: path, jqFilter, jsonPath, parameter, raw, expression".into(),
                OUTPUT_PARAMETER,
            );
        } else if set.len() > 1 {
            sink.add(
                &here_from,
                "multiple valueFrom types specified. choose one of: path, jqFilter, jsonPath, parameter, raw".into(),
                OUTPUT_PARAMETER,
            );
        }
    }
}

/// The task results a `depends` expression may name (ancestry.go v4.1.2 lines 90-108).
const TASK_RESULTS: &[&str] = &[
    "Succeeded",
    "Failed",
    "Errored",
    "Skipped",
    "Omitted",
    "Daemoned",
    "AnySucceeded",
    "AllFailed",
];

/// The names a `depends` expression depends on, as Argo's `taskNameRegex` reads them
/// (ancestry.go v4.1.2 line 35): every word is a task name, `name.Result` a task's result.
fn depends_terms(expr: &str) -> Vec<(&str, Option<&str>)> {
    expr.split(|c: char| c.is_whitespace() || "()!&|".contains(c))
        .filter(|t| !t.is_empty())
        .map(|t| match t.split_once('.') {
            Some((task, result)) => (task, Some(result)),
            None => (t, None),
        })
        .collect()
}

fn check_dag(dag: &Value, at: &str, name: &str, sink: &mut Sink<'_>) {
    let tasks: Vec<&Value> = list(dag, "/tasks").collect();
    if tasks.is_empty() {
        sink.add(
            at,
            format!("templates.{name} must have at least one task"),
            DAG_TASKS,
        );
        return;
    }
    let using_depends = tasks.iter().any(|t| !text(t, "depends").is_empty());
    // The topological sort runs first and reports duplicates, unknown dependencies and cycles
    // (validate.go v4.1.2 line 1454).
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, t) in tasks.iter().enumerate() {
        if names.insert(text(t, "name"), i).is_some() {
            sink.add(
                &format!("{at}.tasks[{i}].name"),
                format!(
                    "templates.{name} sorting failed: duplicated nodeName {}",
                    text(t, "name")
                ),
                DAG_TASKS,
            );
        }
    }
    let mut deps: Vec<Vec<&str>> = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        let tp = format!("{at}.tasks[{i}]");
        let task = text(t, "name");
        let mut d: Vec<&str> = list(t, "/dependencies").filter_map(Value::as_str).collect();
        for (dep, result) in depends_terms(text(t, "depends")) {
            d.push(dep);
            if let Some(r) = result
                && !TASK_RESULTS.contains(&r)
            {
                sink.add(
                    &format!("{tp}.depends"),
                    format!("templates.{name}.tasks.{task} task result '{r}' for task '{dep}' is invalid"),
                    TASK_RESULT,
                );
            }
        }
        for dep in &d {
            if !names.contains_key(dep) {
                sink.add(
                    &tp,
                    format!("templates.{name} sorting failed: invalid dependency {dep}"),
                    DAG_TASKS,
                );
            }
        }
        deps.push(d);
        if let Some(problem) = name_problem(task, Names::Field) {
            sink.add(
                &format!("{tp}.name"),
                format!("templates.{name}.tasks[{i}].name: '{task}' is invalid: {problem}"),
                FIELD_NAMES,
            );
        }
        let has_dependencies = list(t, "/dependencies").next().is_some();
        if (using_depends || has_dependencies) && task.starts_with(|c: char| c.is_ascii_digit()) {
            sink.add(
                &format!("{tp}.name"),
                format!("templates.{name}.tasks.{task} name cannot begin with a digit when using either 'depends' or 'dependencies'"),
                DIGIT_TASK,
            );
        }
        if using_depends && has_dependencies {
            sink.add(
                &format!("{tp}.dependencies"),
                format!("templates.{name} cannot use both 'depends' and 'dependencies' in the same DAG template"),
                DEPENDS_AND_DEPENDENCIES,
            );
        }
        if using_depends && t.get("continueOn").is_some() {
            sink.add(
                &format!("{tp}.continueOn"),
                format!("templates.{name} cannot use 'continueOn' when using 'depends'. Instead use 'dep-task.Failed'/'dep-task.Errored'"),
                CONTINUE_ON_DEPENDS,
            );
        }
        task_common(t, &tp, &format!("templates.{name}.tasks.{task}"), sink);
    }
    if let Some(cycle) = find_cycle(&tasks, &deps, &names) {
        sink.add(
            &format!("{at}.tasks"),
            format!(
                "templates.{name} sorting failed: graph with cycle ({})",
                cycle.join(" → ")
            ),
            DAG_TASKS,
        );
    }
}

/// What tasks and steps share: loops, template references, arguments, `when`.
fn task_common(t: &Value, at: &str, prefix: &str, sink: &mut Sink<'_>) {
    let loops = ["withItems", "withParam", "withSequence"]
        .into_iter()
        .filter(|k| t.get(*k).is_some())
        .count();
    if loops > 1 {
        sink.add(
            at,
            format!("{prefix} only one of withItems, withParam, withSequence can be specified"),
            LOOPS,
        );
    }
    if t.get("template").is_some() && t.get("templateRef").is_some() {
        sink.add(
            at,
            format!("{prefix} template name cannot be specified with templateRef"),
            TEMPLATE_REF,
        );
    }
    arguments(t.get("arguments"), &format!("{at}.arguments"), false, sink);
    if let Some(w) = t.get("when").and_then(Value::as_str)
        && let Err(e) = syntax(w, Dialect::Govaluate)
    {
        sink.add(
            &format!("{at}.when"),
            format!("Invalid 'when' expression '{w}': {}", e.message),
            WHEN,
        );
    }
}

/// Whether an expression parses once each `{{...}}` stands for a value.
fn syntax(text: &str, dialect: Dialect) -> Result<(), expr::ExprError> {
    let placeholders = VARIABLE.replace_all(text, "placeholder");
    expr::parse(&placeholders, dialect).map(|_| ())
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

fn check_steps(steps: &Value, at: &str, name: &str, sink: &mut Sink<'_>) {
    let mut seen = BTreeSet::new();
    for (g, group) in steps.as_array().into_iter().flatten().enumerate() {
        for (s, step) in group.as_array().into_iter().flatten().enumerate() {
            let sp = format!("{at}[{g}][{s}]");
            let step_name = text(step, "name");
            if step_name.is_empty() {
                sink.add(
                    &sp,
                    format!("templates.{name}.steps[{g}].name is required"),
                    STEPS,
                );
                continue;
            }
            if !seen.insert(step_name) {
                sink.add(
                    &format!("{sp}.name"),
                    format!("templates.{name}.steps[{g}].name '{step_name}' is not unique"),
                    STEPS,
                );
            }
            if let Some(problem) = name_problem(step_name, Names::Field) {
                sink.add(
                    &format!("{sp}.name"),
                    format!("templates.{name}.steps[{g}].name '{step_name}' is invalid: {problem}"),
                    STEPS,
                );
            }
            task_common(
                step,
                &sp,
                &format!("templates.{name}.steps[{g}].{step_name}"),
                sink,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::lint::test_support::{doc, finding, findings_for};
    use crate::schema::ArgoVersion;

    fn template(templates: Value) -> Value {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
            "metadata": {"name": "t"}, "spec": {"templates": templates}})
    }

    fn leaf(name: &str) -> Value {
        json!({"name": name, "container": {"image": "ghcr.io/o/medallion-import:1", "command": ["/medallion-import"]}})
    }

    fn all(v: Value) -> Vec<crate::lint::Finding> {
        findings_for(&[doc(v)], ArgoVersion::V4_1)
    }

    /// Each case: a defect, and the start of the error Argo gives for it, with the line cited.
    #[test]
    fn dag_rules_quote_argos_errors() {
        let dag = |tasks: Value| {
            let mut t = vec![json!({"name": "main", "dag": {"tasks": tasks}})];
            t.push(leaf("s"));
            template(Value::Array(t))
        };
        let cases = [
            (
                json!([{"name": "a", "template": "s"}, {"name": "b", "template": "s", "depends": "a", "dependencies": ["a"]}]),
                "templates.main cannot use both 'depends' and 'dependencies' in the same DAG template",
                "validate.go:1472-1474",
            ),
            (
                json!([{"name": "a", "template": "s"}, {"name": "1b", "template": "s", "dependencies": ["a"]}]),
                "templates.main.tasks.1b name cannot begin with a digit",
                "validate.go:1468-1470",
            ),
            (
                json!([{"name": "a_b", "template": "s"}]),
                "templates.main.tasks[0].name: 'a_b' is invalid: name must consist of alpha-numeric characters or '-'",
                "validate.go:1711-1727",
            ),
            (
                json!([{"name": "a", "template": "s"}, {"name": "a", "template": "s"}]),
                "templates.main sorting failed: duplicated nodeName a",
                "topological_sorting.go",
            ),
            (
                json!([{"name": "a", "template": "s", "depends": "b"}, {"name": "b", "template": "s", "depends": "a"}]),
                "templates.main sorting failed: graph with cycle",
                "topological_sorting.go",
            ),
            (
                json!([{"name": "a", "template": "s"}, {"name": "b", "template": "s", "depends": "a.Succeded"}]),
                "templates.main.tasks.b task result 'Succeded' for task 'a' is invalid",
                "ancestry.go",
            ),
            (
                json!([{"name": "a", "template": "s", "when": "{{workflow.name}} =="}]),
                "Invalid 'when' expression '{{workflow.name}} ==': ",
                "steps.go:384-420",
            ),
            (
                json!([{"name": "a", "template": "s", "withItems": [1], "withParam": "[]"}]),
                "templates.main.tasks.a only one of withItems, withParam, withSequence can be specified",
                "validate.go:1151",
            ),
            (
                json!([{"name": "a", "template": "s", "arguments": {"parameters": [{"name": "p", "value": "x"}, {"name": "p", "value": "y"}]}}]),
                "[1].name 'p' is not unique",
                "validate.go:1350-1396",
            ),
            (
                json!([{"name": "a", "template": "s", "arguments": {"parameters": [{"name": "p", "value": "x", "enum": ["y", "z"]}]}}]),
                "p.value should be present in p.enum list",
                "validate.go:1016-1060",
            ),
        ];
        for (tasks, error, line) in cases {
            let found = all(dag(tasks));
            let f = finding(&found, error);
            assert!(f.source.contains(line), "{f:?} cites {line}");
        }
    }

    #[test]
    fn template_rules_quote_argos_errors() {
        let cases = [
            (
                json!({"name": "c", "container": {"image": "i", "command": ["/x"]}, "outputs": {"parameters": [{"name": "o", "valueFrom": {"supplied": {}}}]}}),
                "templates.c.outputs.parameters.o.path must be specified for Container templates",
                "validate.go:1280-1343",
            ),
            (
                json!({"name": "d", "dag": {"tasks": [{"name": "a", "template": "s"}]}, "outputs": {"parameters": [{"name": "o", "valueFrom": {"path": "/tmp/o"}}]}}),
                "templates.d.outputs.parameters.o.parameter or expression must be specified for DAG templates",
                "validate.go:1280-1343",
            ),
            (
                json!({"name": "d", "dag": {"tasks": [{"name": "a", "template": "s"}]}, "activeDeadlineSeconds": 60}),
                "templates.d.activeDeadlineSeconds is only valid for leaf templates",
                "validate.go:848-853",
            ),
            (
                json!({"name": "p", "plugin": {"medallion": {}, "other": {}}}),
                "expected exactly one key, got 2",
                "plugin_types.go:15-29",
            ),
            (
                json!({"name": "r", "container": {"image": "i", "command": ["/x"]}, "retryStrategy": {"retryPolicy": "Sometimes"}}),
                "Sometimes is not a valid RetryPolicy",
                "validate.go:688-695",
            ),
            (
                json!({"name": "r", "container": {"image": "i", "command": ["/x"]}, "retryStrategy": {"expression": "asInt(lastRetry.exitCode) =="}}),
                "unable to evaluate expression 'asInt(lastRetry.exitCode) ==': ",
                "argoexpr/eval.go:9-23",
            ),
            (
                json!({"name": "two", "container": {"image": "i", "command": ["/x"]}, "suspend": {}}),
                "templates.two multiple template types specified",
                "validate.go:721-737",
            ),
            (
                json!({"name": "none"}),
                "template 'none' type is unknown",
                "context.go:251-253",
            ),
            (
                json!({"name": "c", "container": {"image": "i", "command": ["/x"]}, "parallelism": 2}),
                "templates.c.parallelism is only valid for steps and dag templates",
                "validate.go:987-989",
            ),
            (
                json!({"name": "c", "container": {"image": "i", "command": ["/x"]}, "inputs": {"parameters": [{"name": "a b"}]}}),
                "[0].name: 'a b' is invalid: Parameter/Artifact name must consist of",
                "validate.go:1711-1727",
            ),
        ];
        for (t, error, line) in cases {
            let found = all(template(json!([t, leaf("s")])));
            let f = finding(&found, error);
            assert!(f.source.contains(line), "{f:?} cites {line}");
        }
    }

    #[test]
    fn workflow_level_rules_quote_argos_errors() {
        let wf = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
            "metadata": {"name": "t"},
            "spec": {"podGC": {"strategy": "Sometimes"},
                "arguments": {"parameters": [{"name": "mode", "value": "fast", "enum": ["auto", "manual"]}]},
                "templates": [leaf("s")]}});
        let found = all(wf);
        finding(&found, "podGC.strategy unknown strategy 'Sometimes'");
        let f = finding(
            &found,
            "spec.arguments.mode.value should be present in spec.arguments.mode.enum list",
        );
        assert!(f.source.contains("validate.go:1016-1060"));
        let long = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow",
            "metadata": {"name": "x".repeat(53)},
            "spec": {"schedules": ["* * * * *"], "workflowSpec": {"templates": [leaf("s")]}}});
        finding(&all(long), "cron workflow name");
    }

    /// The wording that changed between the two lines is the wording of the version asked for.
    #[test]
    fn messages_follow_the_argo_version() {
        let t = template(
            json!([{"name": "o", "container": {"image": "i", "command": ["/x"]},
            "outputs": {"parameters": [{"name": "p", "value": "1", "valueFrom": {"path": "/tmp/p"}}]}}]),
        );
        finding(
            &findings_for(&[doc(t.clone())], ArgoVersion::V4_1),
            "templates.o.outputs.parameters.p has both valueFrom and value specified, choose one",
        );
        finding(
            &findings_for(&[doc(t)], ArgoVersion::V3_7),
            "templates.o.outputs.parameters.p has both valueFrom and value specified. Choose one.",
        );
    }
}
