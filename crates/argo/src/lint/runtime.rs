//! What the Argo Workflows controller, server and UI do with documents that pass validation,
//! where that makes them fail or misbehave on a cluster: suspend nodes and the UI's Resume
//! dialog, retry budgets, the workflow deadline during a suspend, memoization keys, the agent
//! pod's metadata, entrypoint look-ups and the artifact repository. Each finding cites the
//! source line whose behaviour it predicts (v4.1.2, and v3.7.18 where it differs).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use super::{Context, Document, Finding, Sink, list, templates, text, workflow_spec};
use crate::duration::parse_go_duration;
use crate::schema::ArgoVersion;

const RESUME_DIALOG: &str = "argo-workflows v4.1.2 ui/src/workflows/components/workflow-details/workflow-details.tsx:137-148,456-482; workflow/util/util.go:680-702 (v3.7.18:569-590)";
const RESUME_DIALOG_V3: &str = "argo-workflows v3.7.18 ui/src/workflows/components/workflow-details/workflow-details.tsx:137-148";
const SUSPEND_EXPIRY: &str = "argo-workflows v4.1.2 workflow/controller/operator.go:3998-4012,4068-4077; workflow/util/util.go:503-517 (v3.7.18 operator.go:3719-3728, util.go:390-406)";
const MAX_DURATION: &str = "argo-workflows v4.1.2 workflow/controller/operator.go:1079-1094,1146-1147 (v3.7.18:1021-1035,1088-1089)";
const BACKOFF_LIMIT: &str =
    "argo-workflows v4.1.2 workflow/controller/operator.go:1097-1099,1139-1144 (v3.7.18:1081-1086)";
const RETRY_LIMIT: &str = "argo-workflows v4.1.2 util/intstr/parametrizable.go:12-43, workflow/controller/operator.go:1184-1191";
const DEADLINE_SUSPEND: &str =
    "argo-workflows v4.1.2 workflow/controller/operator.go:1390-1433 (v3.7.18:1332-1355)";
const MEMO_KEY: &str = "argo-workflows v4.1.2 workflow/controller/cache/cache.go:15, cache/configmap_cache.go:85-88, operator.go:2374-2377";
const MEMO_MAX_AGE: &str = "argo-workflows v4.1.2 workflow/controller/operator.go:2381-2386";
const ENTRYPOINT: &str =
    "argo-workflows v4.1.2 workflow/controller/workflowpod.go:753-769 (v3.7.18:406-422)";
const AGENT_METADATA: &str =
    "argo-workflows v4.1.2 workflow/controller/agent.go:233-236 (v3.7.18:229-230)";
const ARTIFACT_REPOSITORY: &str = "argo-workflows v4.1.2 workflow/artifactrepositories/artifactrepositories.go:38-113; pkg/apis/workflow/v1alpha1/workflow_types.go:1445 (v3.7.18:1240)";

/// The runtime rules for one document.
pub(crate) fn check(doc: &Document, context: &Context<'_>, sink: &mut Sink<'_>) {
    let Some((spec, at)) = workflow_spec(doc) else {
        return;
    };
    for (path, template) in templates(spec, at) {
        if template.get("suspend").is_some() {
            suspend_resume(template, &path, context.config.argo_version, sink);
        }
        retry_budget(template, &path, sink);
        memoize(template, &path, sink);
        entrypoint(template, &path, sink);
        if template.get("plugin").is_some() && template.get("metadata").is_some() {
            sink.add(
                &format!("{path}.metadata"),
                "a plugin template runs in the workflow's agent pod, which takes only the workflow-level spec.podMetadata (labels such as azure.workload.identity/use here never reach it): move them to spec.podMetadata".into(),
                AGENT_METADATA,
            );
        }
    }
    workflow_deadline(doc, spec, at, context, sink);
}

/// A suspend node a person answers in the Argo UI: the Resume dialog lists the node's input
/// parameters and sends every one back as an output value; the server accepts only outputs with
/// `valueFrom.supplied`. When the duration passes unanswered, each supplied output takes its
/// default (or the default of the input of the same name), and with none the node errors.
fn suspend_resume(template: &Value, at: &str, version: ArgoVersion, sink: &mut Sink<'_>) {
    let inputs: Vec<&Value> = list(template, "/inputs/parameters").collect();
    let supplied: Vec<&Value> = list(template, "/outputs/parameters")
        .filter(|p| p.pointer("/valueFrom/supplied").is_some())
        .collect();
    let supplied_names: BTreeSet<&str> = supplied.iter().map(|p| text(p, "name")).collect();
    let input_names: BTreeSet<&str> = inputs.iter().map(|p| text(p, "name")).collect();
    for (i, p) in inputs.iter().enumerate() {
        let name = text(p, "name");
        if !supplied_names.contains(name) {
            sink.add(
                &format!("{at}.inputs.parameters[{i}]"),
                format!("the Argo UI's Resume sends input {name:?} back as an output, and the server refuses it (\"node is not expecting output parameter '{name}'\"): declare an output {name} with valueFrom.supplied"),
                RESUME_DIALOG,
            );
        }
        if version == ArgoVersion::V3_7 && p.get("enum").is_some() && p.get("default").is_none() {
            sink.add(
                &format!("{at}.inputs.parameters[{i}]"),
                format!("Argo 3.7's Resume dialog sets an enum parameter's value to its default, and {name:?} has none: the dropdown starts empty and the answer is not sent; give it a default"),
                RESUME_DIALOG_V3,
            );
        }
    }
    let duration = template.pointer("/suspend/duration").is_some();
    for (i, p) in list(template, "/outputs/parameters").enumerate() {
        if p.pointer("/valueFrom/supplied").is_none() {
            continue;
        }
        let name = text(p, "name");
        if !input_names.contains(name) {
            sink.add(
                &format!("{at}.outputs.parameters[{i}]"),
                format!("the Argo UI's Resume dialog shows only the suspend node's input parameters, so a person cannot supply {name:?}: add an input {name} (with its enum and a default)"),
                RESUME_DIALOG,
            );
        }
        let input_default = inputs
            .iter()
            .any(|input| text(input, "name") == name && input.get("default").is_some());
        if duration && p.pointer("/valueFrom/default").is_none() && !input_default {
            sink.add(
                &format!("{at}.outputs.parameters[{i}].valueFrom"),
                format!("when the suspend's duration passes unanswered, Argo ends the node in Error (\"raw output parameter '{name}' has not been set and does not have a default value\"): give valueFrom.default (a safe answer, such as a rejection)"),
                SUSPEND_EXPIRY,
            );
        }
    }
}

/// Seconds of an IntOrString or Go-duration field, when it is a literal.
fn seconds(v: &Value) -> Option<Duration> {
    match v {
        Value::Number(n) => n.as_u64().map(Duration::from_secs),
        Value::String(s) => match s.parse::<u64>() {
            Ok(n) => Some(Duration::from_secs(n)),
            Err(_) => parse_go_duration(s).ok(),
        },
        _ => None,
    }
}

fn retry_budget(template: &Value, at: &str, sink: &mut Sink<'_>) {
    let Some(retry) = template.get("retryStrategy") else {
        return;
    };
    let rp = format!("{at}.retryStrategy");
    if let Some(limit) = retry.get("limit")
        && let Value::String(s) = limit
        && s.parse::<i32>().is_err()
        && !(s.starts_with("{{") && s.ends_with("}}"))
    {
        sink.add(
            &format!("{rp}.limit"),
            format!("value '{s}' cannot be resolved to an int (the retry node errors)"),
            RETRY_LIMIT,
        );
    }
    let Some(backoff) = retry.get("backoff") else {
        return;
    };
    if backoff.get("duration").is_none() {
        sink.add(
            &format!("{rp}.backoff"),
            "no base duration specified for retryStrategy (the retry node errors at the first failure)".into(),
            BACKOFF_LIMIT,
        );
    }
    if retry.get("limit").is_none() {
        sink.add(
            &format!("{rp}.backoff"),
            "Argo waits between attempts only when retryStrategy.limit is set: without it the backoff never delays a retry".into(),
            BACKOFF_LIMIT,
        );
    }
    if let (Some(max), Some(deadline)) = (
        backoff.get("maxDuration").and_then(seconds),
        template.get("activeDeadlineSeconds").and_then(seconds),
    ) && max <= deadline
    {
        sink.add(
            &format!("{rp}.backoff.maxDuration"),
            format!(
                "Argo counts maxDuration ({}s) from the first attempt's start and makes it the next attempt's deadline, so an attempt that fails after {}s is never retried while the step may run {}s: bound each wait with backoff.cap instead",
                max.as_secs(),
                max.as_secs(),
                deadline.as_secs()
            ),
            MAX_DURATION,
        );
    }
}

/// Memoization keys are checked only at run time, after substitution: the literal parts of the
/// key must already fit `^[a-zA-Z0-9][-a-zA-Z0-9]*$`.
fn memoize(template: &Value, at: &str, sink: &mut Sink<'_>) {
    let Some(memo) = template.get("memoize") else {
        return;
    };
    let key = text(memo, "key");
    let literal: String = {
        let mut out = String::new();
        let mut rest = key;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            out.push('x');
            rest = rest[start..]
                .find("}}")
                .map_or("", |end| &rest[start + end + 2..]);
        }
        out.push_str(rest);
        out
    };
    let valid = literal.starts_with(|c: char| c.is_ascii_alphanumeric())
        && literal
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid {
        sink.add(
            &format!("{at}.memoize.key"),
            format!("invalid cache key: {key} (memo keys must match ^[a-zA-Z0-9][-a-zA-Z0-9]*$ once substituted; the node errors)"),
            MEMO_KEY,
        );
    }
    if let Some(age) = memo.get("maxAge").and_then(Value::as_str)
        && parse_go_duration(age).is_err()
    {
        sink.add(
            &format!("{at}.memoize.maxAge"),
            format!("invalid maxAge: {age:?} is not a Go duration (the node errors)"),
            MEMO_MAX_AGE,
        );
    }
}

/// A container without `command` makes the controller look the image's entrypoint up in the
/// registry (or the controller's `images` index).
fn entrypoint(template: &Value, at: &str, sink: &mut Sink<'_>) {
    for body in ["container", "script"] {
        if let Some(c) = template.get(body)
            && c.get("command").is_none()
        {
            sink.add(
                &format!("{at}.{body}"),
                format!("without a command the controller looks up the entrypoint of {:?} in its registry, which fails with a private registry or no egress (\"failed to look-up entrypoint/cmd for image\"): name the command", text(c, "image")),
                ENTRYPOINT,
            );
        }
    }
}

fn workflow_deadline(
    doc: &Document,
    spec: &Value,
    at: &str,
    context: &Context<'_>,
    sink: &mut Sink<'_>,
) {
    let Some(deadline) = spec.get("activeDeadlineSeconds").and_then(seconds) else {
        return;
    };
    // A WorkflowTemplate without an entrypoint is a library, not a workflow.
    if doc.kind() == "ClusterWorkflowTemplate" || spec.get("entrypoint").is_none() {
        return;
    }
    let suspends = super::library::reachable(spec, &context.library)
        .into_iter()
        .filter_map(|t| {
            let wait = t.pointer("/suspend/duration").and_then(seconds)?;
            Some((text(t, "name"), wait))
        });
    for (name, wait) in suspends {
        if wait >= deadline {
            sink.add(
                &format!("{at}.activeDeadlineSeconds"),
                format!(
                    "the workflow deadline ({}s) passes before suspend {name} (duration {}s) can be answered: Argo fails a waiting suspend node at the workflow deadline (\"Step exceeded its deadline\")",
                    deadline.as_secs(),
                    wait.as_secs()
                ),
                DEADLINE_SUSPEND,
            );
        }
    }
}

/// Rules over all documents: templates with output artifacts need an artifact repository.
pub(crate) fn check_all(context: &Context<'_>, findings: &mut Vec<Finding>) {
    let mut needing = Vec::new();
    for d in context.docs {
        let Some((spec, at)) = workflow_spec(d) else {
            continue;
        };
        if spec.get("artifactRepositoryRef").is_some() {
            continue;
        }
        for (path, t) in templates(spec, at) {
            let leaf = t.get("dag").is_none() && t.get("steps").is_none();
            let located = t.get("archiveLocation").is_some();
            for (i, a) in list(t, "/outputs/artifacts").enumerate() {
                let has_location = [
                    "s3",
                    "gcs",
                    "azure",
                    "oss",
                    "hdfs",
                    "http",
                    "git",
                    "raw",
                    "artifactory",
                ]
                .iter()
                .any(|k| a.get(*k).is_some());
                if leaf && !located && !has_location {
                    needing.push((
                        d.label(),
                        format!("{path}.outputs.artifacts[{i}]"),
                        text(a, "name").to_string(),
                    ));
                }
            }
        }
    }
    if needing.is_empty() {
        return;
    }
    // The namespace default: ConfigMap artifact-repositories, whose annotation names the key.
    let mut repository = None;
    for d in context.docs {
        let from_configmap = d.kind() == "ConfigMap" && d.name() == "artifact-repositories";
        let from_controller = d.kind() == "ConfigMap"
            && d.name() == "workflow-controller-configmap"
            && d.value.pointer("/data/artifactRepository").is_some();
        if from_controller {
            repository = Some(Ok(()));
        }
        if from_configmap {
            let key = d
                .value
                .pointer("/metadata/annotations/workflows.argoproj.io~1default-artifact-repository")
                .and_then(Value::as_str);
            repository = Some(match key {
                Some(k) if d.value.pointer(&format!("/data/{k}")).is_some() => Ok(()),
                Some(k) => Err((d.label(), format!("the annotation workflows.argoproj.io/default-artifact-repository names key {k:?}, which data does not have"))),
                None => Err((d.label(), "has no workflows.argoproj.io/default-artifact-repository annotation naming the default key".to_string())),
            });
        }
    }
    match repository {
        Some(Ok(())) => {}
        Some(Err((label, message))) => findings.push(Finding {
            document: label,
            path: "metadata.annotations".into(),
            message,
            source: ARTIFACT_REPOSITORY,
        }),
        None => {
            for (label, path, name) in needing {
                findings.push(Finding {
                    document: label,
                    path,
                    message: format!("output artifact {name:?} needs an artifact repository and none is among the linted files (ConfigMap artifact-repositories with the workflows.argoproj.io/default-artifact-repository annotation, or the controller's artifactRepository): the pod fails with \"artifact storage is not configured\""),
                    source: ARTIFACT_REPOSITORY,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::lint::test_support::{doc, finding, findings_for};
    use crate::schema::ArgoVersion;

    fn library(templates: Value) -> Value {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
            "metadata": {"name": "lib"}, "spec": {"templates": templates}})
    }

    /// Today's review template: input summary, output decision (no default).
    fn old_review() -> Value {
        json!({"name": "review", "suspend": {"duration": "24h"},
            "inputs": {"parameters": [{"name": "summary"}]},
            "outputs": {"parameters": [{"name": "decision", "enum": ["approve", "reject"], "valueFrom": {"supplied": {}}}]}})
    }

    #[test]
    fn a_suspend_the_ui_cannot_resume_is_named() {
        let found = findings_for(&[doc(library(json!([old_review()])))], ArgoVersion::V4_1);
        let f = finding(
            &found,
            "the Argo UI's Resume sends input \"summary\" back as an output",
        );
        assert!(
            f.source.contains("workflow-details.tsx:137-148,456-482"),
            "{f:?}"
        );
        finding(
            &found,
            "the Argo UI's Resume dialog shows only the suspend node's input parameters, so a person cannot supply \"decision\"",
        );
        let f = finding(
            &found,
            "when the suspend's duration passes unanswered, Argo ends the node in Error",
        );
        assert!(f.source.contains("util.go:503-517"), "{f:?}");
    }

    #[test]
    fn a_resumable_suspend_has_no_finding() {
        let review = json!({"name": "review", "suspend": {"duration": "24h"},
            "inputs": {"parameters": [{"name": "summary"}, {"name": "decision", "default": "reject", "enum": ["reject", "approve"]}]},
            "outputs": {"parameters": [
                {"name": "summary", "valueFrom": {"supplied": {}, "default": ""}},
                {"name": "decision", "enum": ["reject", "approve"], "valueFrom": {"supplied": {}, "default": "reject"}}]}});
        for v in [ArgoVersion::V4_1, ArgoVersion::V3_7] {
            assert_eq!(findings_for(&[doc(library(json!([review])))], v), vec![]);
        }
        let no_default = json!({"name": "review", "suspend": {},
            "inputs": {"parameters": [{"name": "decision", "enum": ["reject", "approve"]}]},
            "outputs": {"parameters": [{"name": "decision", "valueFrom": {"supplied": {}}}]}});
        assert_eq!(
            findings_for(
                &[doc(library(json!([no_default.clone()])))],
                ArgoVersion::V4_1
            ),
            vec![]
        );
        let found = findings_for(&[doc(library(json!([no_default])))], ArgoVersion::V3_7);
        finding(
            &found,
            "Argo 3.7's Resume dialog sets an enum parameter's value to its default",
        );
    }

    #[test]
    fn retry_budgets_that_cut_retries_short_are_named() {
        let step = json!({"name": "import", "activeDeadlineSeconds": "3600",
            "retryStrategy": {"limit": "3", "backoff": {"duration": "10s", "factor": "2", "maxDuration": "5m"}},
            "container": {"image": "i", "command": ["/i"]}});
        let found = findings_for(&[doc(library(json!([step])))], ArgoVersion::V4_1);
        let f = finding(
            &found,
            "Argo counts maxDuration (300s) from the first attempt's start",
        );
        assert!(
            f.source.contains("operator.go:1079-1094,1146-1147"),
            "{f:?}"
        );
        let no_limit = json!({"name": "x", "retryStrategy": {"backoff": {"duration": "10s"}},
            "container": {"image": "i", "command": ["/i"]}});
        let found = findings_for(&[doc(library(json!([no_limit])))], ArgoVersion::V4_1);
        finding(
            &found,
            "Argo waits between attempts only when retryStrategy.limit is set",
        );
    }

    #[test]
    fn memo_keys_argo_refuses_are_named() {
        let memo = |key: &str| {
            json!({"name": "m", "memoize": {"key": key, "maxAge": "720h", "cache": {"configMap": {"name": "c"}}},
                "inputs": {"parameters": [{"name": "d"}]},
                "container": {"image": "i", "command": ["/i"]}})
        };
        let found = findings_for(
            &[doc(library(json!([memo(
                "import_{{inputs.parameters.d}}"
            )])))],
            ArgoVersion::V4_1,
        );
        let f = finding(&found, "invalid cache key: import_{{inputs.parameters.d}}");
        assert!(f.source.contains("cache.go:15"), "{f:?}");
        assert_eq!(
            findings_for(
                &[doc(library(json!([memo(
                    "import-{{inputs.parameters.d}}"
                )])))],
                ArgoVersion::V4_1
            ),
            vec![]
        );
    }

    #[test]
    fn containers_without_a_command_are_named() {
        let t = json!({"name": "c", "container": {"image": "ghcr.io/o/medallion-import:1"}});
        let found = findings_for(&[doc(library(json!([t])))], ArgoVersion::V4_1);
        let f = finding(
            &found,
            "without a command the controller looks up the entrypoint",
        );
        assert!(f.source.contains("workflowpod.go:753-769"), "{f:?}");
    }

    #[test]
    fn a_deadline_shorter_than_a_review_is_named() {
        let lib = library(json!([old_review()]));
        let wf = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
            "metadata": {"name": "p"},
            "spec": {"entrypoint": "main", "activeDeadlineSeconds": 21600, "templates": [
                {"name": "main", "dag": {"tasks": [{"name": "review", "templateRef": {"name": "lib", "template": "review"}}]}}]}});
        let found = findings_for(&[doc(lib), doc(wf)], ArgoVersion::V4_1);
        let f = finding(
            &found,
            "the workflow deadline (21600s) passes before suspend review (duration 86400s)",
        );
        assert!(f.source.contains("operator.go:1390-1433"), "{f:?}");
    }

    #[test]
    fn output_artifacts_need_a_repository() {
        let t = json!({"name": "p", "container": {"image": "i", "command": ["/i"]},
            "outputs": {"artifacts": [{"name": "report", "path": "/tmp/r.html"}]}});
        let found = findings_for(&[doc(library(json!([t.clone()])))], ArgoVersion::V4_1);
        let f = finding(
            &found,
            "output artifact \"report\" needs an artifact repository",
        );
        assert!(f.source.contains("artifactrepositories.go"), "{f:?}");
        let repo = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "artifact-repositories",
            "annotations": {"workflows.argoproj.io/default-artifact-repository": "r"}},
            "data": {"r": "azure: {}"}});
        assert_eq!(
            findings_for(
                &[doc(library(json!([t.clone()]))), doc(repo.clone())],
                ArgoVersion::V4_1
            ),
            vec![]
        );
        let mut wrong = repo;
        wrong["metadata"]["annotations"]["workflows.argoproj.io/default-artifact-repository"] =
            json!("x");
        let found = findings_for(&[doc(library(json!([t]))), doc(wrong)], ArgoVersion::V4_1);
        finding(
            &found,
            "the annotation workflows.argoproj.io/default-artifact-repository names key \"x\"",
        );
    }

    #[test]
    fn plugin_template_metadata_never_reaches_the_agent_pod() {
        let t = json!({"name": "p", "metadata": {"labels": {"azure.workload.identity/use": "true"}},
            "plugin": {"medallion": {"lookup": {}}}});
        let found = findings_for(&[doc(library(json!([t])))], ArgoVersion::V4_1);
        let f = finding(&found, "a plugin template runs in the workflow's agent pod");
        assert!(f.source.contains("agent.go:233-236"), "{f:?}");
    }
}
