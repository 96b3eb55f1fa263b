//! Medallion's reference checks: every template reference resolves, every `{{...}}` variable
//! names something declared, DAG dependencies exist and have no cycle, and every Sensor trigger
//! submits a template that exists with parameters it declares.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::library::{Library, Spec, missing, param_names, required_params, spec_of};
use super::{Context, Document, Sink, variables, workflow_spec};
use crate::model::TemplateRef;
use crate::schema::Schemas;

/// The reference checks of one document.
pub(crate) fn check(doc: &Document, context: &Context<'_>, schemas: &Schemas, sink: &mut Sink<'_>) {
    let mut add = |p: &str, m: String| sink.add(p, m, "");
    if let Some((spec, at)) = workflow_spec(doc) {
        check_workflow_spec(spec, at, &context.library, &mut add);
    } else if doc.kind() == "Sensor" {
        check_sensor(&doc.value, &context.library, schemas, &mut add);
    }
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
    if let Some(r) = TemplateRef::of_spec(spec) {
        match library.specs.get(&r.key()) {
            Some(s) => referenced = Some(s),
            None => add(
                &format!("{at}.workflowTemplateRef.name"),
                missing(r.kind(), r.name, library.specs.keys().map(|(_, n)| *n)),
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
    // Dependencies of each task (from `dependencies` or the names in `depends`); duplicate
    // names, unknown dependencies and cycles are Argo's own errors (validate.rs).
    let mut deps: Vec<Vec<&str>> = Vec::new();
    for t in &tasks {
        let mut names: Vec<&str> = t
            .get("dependencies")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(expr) = t.get("depends").and_then(Value::as_str) {
            names.extend(depends_names(expr));
        }
        deps.push(names);
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
        let Some(r) = resource.get("spec").and_then(TemplateRef::of_spec) else {
            continue;
        };
        let Some(target) = library.specs.get(&r.key()) else {
            add(
                &format!("{rp}.spec.workflowTemplateRef.name"),
                missing(r.kind(), r.name, library.specs.keys().map(|(_, n)| *n)),
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
    use crate::lint::test_support::{doc, messages};
    use serde_json::json;

    fn pipeline(tasks: Value) -> Value {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
            "metadata": {"name": "p"},
            "spec": {"entrypoint": "main",
                "arguments": {"parameters": [{"name": "src", "value": ""}]},
                "templates": [
                    {"name": "main", "dag": {"tasks": tasks}},
                    {"name": "step", "inputs": {"parameters": [{"name": "x"}]},
                     "outputs": {"parameters": [{"name": "out", "valueFrom": {"path": "/tmp/o"}}]},
                     "container": {"image": "ghcr.io/o/medallion-import:1", "command": ["/medallion-import"], "args": ["{{inputs.parameters.x}}"]}}]}})
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
            "spec.templates[0].dag.tasks: templates.main sorting failed: graph with cycle (b → c → b)",
            "spec.templates[0].dag.tasks[5]: templates.main sorting failed: invalid dependency z",
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
