//! The templates of the linted documents by name: what a task's `template`/`templateRef` or a
//! Workflow's `workflowTemplateRef` resolves to (Argo's templateresolution, over files).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::model::TemplateRef;
use crate::schema::closest;

pub(crate) struct Spec<'a> {
    pub(crate) templates: BTreeMap<&'a str, &'a Value>,
    pub(crate) parameters: BTreeSet<&'a str>,
    /// Workflow parameters without a value: a Workflow running this template must give them.
    pub(crate) required: Vec<&'a str>,
}

pub(crate) fn spec_of(spec: &Value) -> Spec<'_> {
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

pub(crate) fn param_names(list: Option<&Value>) -> BTreeSet<&str> {
    list.and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|p| p.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

/// The parameters of a list that have neither `value` nor `default`: a caller must give them.
pub(crate) fn required_params(list: Option<&Value>) -> Vec<&str> {
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
pub(crate) struct Library<'a> {
    pub(crate) specs: BTreeMap<(bool, &'a str), Spec<'a>>,
}

impl<'a> Library<'a> {
    pub(crate) fn new(docs: &'a [super::Document]) -> Library<'a> {
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
    pub(crate) fn target(&self, local: &Spec<'a>, call: &'a Value) -> Result<&'a Value, String> {
        if let Some(name) = call.get("template").and_then(Value::as_str) {
            return local
                .templates
                .get(name)
                .copied()
                .ok_or_else(|| missing("template", name, local.templates.keys().copied()));
        }
        if let Some(r) = TemplateRef::of_call(call) {
            let (kind, name, cluster) = (r.kind(), r.name, r.cluster_scope);
            let spec = self.specs.get(&r.key()).ok_or_else(|| {
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
            return spec.templates.get(r.template).copied().ok_or_else(|| {
                missing(
                    &format!("template of {kind} {name}"),
                    r.template,
                    spec.templates.keys().copied(),
                )
            });
        }
        Err("names neither a template nor a templateRef".into())
    }
}

pub(crate) fn missing<'b>(
    what: &str,
    name: &str,
    known: impl Iterator<Item = &'b str> + Clone,
) -> String {
    format!(
        "{what} {name:?} does not exist{}",
        closest(name, known)
            .map(|k| format!(" (did you mean {k:?}?)"))
            .unwrap_or_default()
    )
}

/// Every template a workflow spec's entrypoint reaches, through `template` and `templateRef`
/// calls of DAG tasks and steps (each once).
pub(crate) fn reachable<'a>(spec: &'a Value, library: &'a Library<'a>) -> Vec<&'a Value> {
    let local = spec_of(spec);
    let entry = spec.get("entrypoint").and_then(Value::as_str).unwrap_or("");
    let Some(start) = local.templates.get(entry).copied() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut stack: Vec<(&Value, &BTreeMap<&str, &Value>)> = vec![(start, &local.templates)];
    while let Some((template, scope)) = stack.pop() {
        if !seen.insert(std::ptr::from_ref(template) as usize) {
            continue;
        }
        out.push(template);
        let steps = template
            .get("steps")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .flatten();
        let tasks = template
            .pointer("/dag/tasks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for call in tasks.chain(steps) {
            if let Some(t) = call
                .get("template")
                .and_then(Value::as_str)
                .and_then(|name| scope.get(name).copied())
            {
                stack.push((t, scope));
            } else if let Some(r) = TemplateRef::of_call(call)
                && let Some(target) = library.specs.get(&r.key())
                && let Some(t) = target.templates.get(r.template).copied()
            {
                stack.push((t, &target.templates));
            }
        }
    }
    out
}
