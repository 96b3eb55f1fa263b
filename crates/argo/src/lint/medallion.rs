//! How Medallion's steps must be wired to work on a cluster (Medallion's rules, each grounded in
//! an Argo or Azure behaviour it cites):
//!
//! - a step's retry retries what is transient for a Medallion step (exit code 1, a pod the node
//!   killed or evicted, Argo's own errors) and not bad input (2) or a failed precondition (3);
//! - a `lake` default names its storage account (an `az://` URL needs an environment variable
//!   no step container sets);
//! - the executor plugin serves the lake the workflows use;
//! - a workflow that runs plugin templates gives the agent pod the workload identity label, and
//!   every service account a workflow runs as is installed with its Azure client id.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::images::image_name;
use super::{Context, Document, Finding, Sink, list, templates, text, workflow_spec};
use crate::expr::{self, Val};

const RETRY_STATUS: &str = "argo-workflows v4.1.2 workflow/controller/operator.go:1786-1891 (a node's phase and exit code), 2149-2171 (lastRetry.exitCode is \"-1\" when the pod reported none)";
const LAKE_ACCOUNT: &str =
    "medallion crates/lake/src/store.rs (az:// takes the account from AZURE_STORAGE_ACCOUNT_NAME)";
const PLUGIN_LAKE: &str = "argo-workflows v4.1.2 workflow/controller/agent.go:340-359 (the plugin sidecar runs with its own env, whatever the workflow's parameters)";
const AGENT_IDENTITY: &str = "argo-workflows v4.1.2 workflow/controller/agent.go:155-159,233-236 (the agent pod: the workflow's service account, only spec.podMetadata)";
const SERVICE_ACCOUNT: &str = "Azure Workload Identity: pods labelled azure.workload.identity/use get the client id annotated on their service account";
const WORKLOAD_IDENTITY_LABEL: &str = "azure.workload.identity/use";
const CLIENT_ID: &str = "azure.workload.identity/client-id";

/// The house rules for one document.
pub(crate) fn check(doc: &Document, context: &Context<'_>, sink: &mut Sink<'_>) {
    let Some((spec, at)) = workflow_spec(doc) else {
        return;
    };
    for (path, template) in templates(spec, at) {
        retry_classes(template, &path, sink);
    }
    for (i, p) in list(spec, "/arguments/parameters").enumerate() {
        let value = text(p, "value");
        if text(p, "name") == "lake"
            && (value.starts_with("az://") || value.starts_with("azure://"))
        {
            sink.add(
                &format!("{at}.arguments.parameters[{i}].value"),
                format!("{value:?} takes the storage account from AZURE_STORAGE_ACCOUNT_NAME, which no step container sets, so every step fails to open the lake in a pod: name the account (abfss://<container>@<account>.dfs.core.windows.net/<path> or https://<account>.blob.core.windows.net/<container>/<path>)"),
                LAKE_ACCOUNT,
            );
        }
    }
    if doc.kind() != "ClusterWorkflowTemplate" && spec.get("entrypoint").is_some() {
        let runs_plugins = super::library::reachable(spec, &context.library)
            .iter()
            .any(|t| t.get("plugin").is_some());
        let labelled = spec
            .pointer("/podMetadata/labels")
            .and_then(|l| l.get(WORKLOAD_IDENTITY_LABEL))
            .and_then(Value::as_str)
            == Some("true");
        if runs_plugins && !labelled {
            sink.add(
                &format!("{at}.podMetadata"),
                format!("this workflow runs executor-plugin templates, whose agent pod takes only spec.podMetadata: without the label {WORKLOAD_IDENTITY_LABEL}: \"true\" there the plugin has no Azure identity to read the lake"),
                AGENT_IDENTITY,
            );
        }
    }
}

/// Whether a retry expression retries a Medallion step's failure: (what, lastRetry.exitCode,
/// lastRetry.status, must retry).
const RETRY_CASES: &[(&str, &str, &str, bool)] = &[
    (
        "exit code 1 (transient: the store is unreachable)",
        "1",
        "Failed",
        true,
    ),
    ("an OOMKilled pod (exit code 137)", "137", "Failed", true),
    (
        "an evicted pod, which reports no exit code (\"-1\")",
        "-1",
        "Failed",
        true,
    ),
    (
        "an Argo Error (the pod could not be created or its wait container failed)",
        "-1",
        "Error",
        true,
    ),
    (
        "exit code 2 (bad input: retrying cannot help)",
        "2",
        "Failed",
        false,
    ),
    (
        "exit code 3 (a failed precondition: retrying cannot help)",
        "3",
        "Failed",
        false,
    ),
];

fn retry_classes(template: &Value, at: &str, sink: &mut Sink<'_>) {
    let Some(image) = template.pointer("/container/image").and_then(Value::as_str) else {
        return;
    };
    if !image_name(image).starts_with("medallion-") {
        return;
    }
    let Some(retry) = template.get("retryStrategy") else {
        return;
    };
    let Some(expression) = retry.get("expression").and_then(Value::as_str) else {
        sink.add(
            &format!("{at}.retryStrategy"),
            "a Medallion step's retry needs an expression: without one Argo retries every failure, bad input (exit code 2) included".into(),
            RETRY_STATUS,
        );
        return;
    };
    for (what, code, status, wanted) in RETRY_CASES {
        let vars = BTreeMap::from([
            ("lastRetry.exitCode".to_string(), Val::Str((*code).into())),
            ("lastRetry.status".to_string(), Val::Str((*status).into())),
            ("lastRetry.message".to_string(), Val::Str(String::new())),
            ("lastRetry.duration".to_string(), Val::Str("1".into())),
        ]);
        // A syntax error is validate's finding; here only the answer counts.
        if let Ok(retries) = expr::retry(expression, &vars)
            && retries != *wanted
        {
            sink.add(
                &format!("{at}.retryStrategy.expression"),
                format!(
                    "{} {what}",
                    if *wanted { "does not retry" } else { "retries" }
                ),
                RETRY_STATUS,
            );
        }
    }
}

/// A ConfigMap value among the documents: `(name, key)` → value.
fn config_values(docs: &[Document]) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for d in docs.iter().filter(|d| d.kind() == "ConfigMap") {
        if let Some(data) = d.value.get("data").and_then(Value::as_object) {
            for (k, v) in data {
                if let Some(s) = v.as_str() {
                    out.insert((d.name().to_string(), k.clone()), s.to_string());
                }
            }
        }
    }
    out
}

/// The lake the executor plugin serves: its sidecar's MEDALLION_LAKE, as a literal or through a
/// ConfigMap among the documents. `None` when no plugin (or no resolvable value) is linted.
fn plugin_lake(context: &Context<'_>) -> Option<(String, String)> {
    let values = config_values(context.docs);
    for d in context.docs {
        let container: Option<Value> = match d.kind() {
            "ExecutorPlugin" => d.value.pointer("/spec/sidecar/container").cloned(),
            "ConfigMap"
                if d.value
                    .pointer("/metadata/labels/workflows.argoproj.io~1configmap-type")
                    .and_then(Value::as_str)
                    == Some("ExecutorPlugin") =>
            {
                d.value
                    .pointer("/data/sidecar.container")
                    .and_then(Value::as_str)
                    .and_then(|t| serde_yaml_ng::from_str(t).ok())
            }
            _ => None,
        };
        let Some(container) = container else { continue };
        for e in list(&container, "/env") {
            if text(e, "name") != "MEDALLION_LAKE" {
                continue;
            }
            if let Some(v) = e.get("value").and_then(Value::as_str) {
                return Some((v.to_string(), d.label()));
            }
            let name = e
                .pointer("/valueFrom/configMapKeyRef/name")
                .and_then(Value::as_str)?;
            let key = e
                .pointer("/valueFrom/configMapKeyRef/key")
                .and_then(Value::as_str)?;
            return values
                .get(&(name.to_string(), key.to_string()))
                .map(|v| (v.clone(), format!("ConfigMap {name}, key {key}")));
        }
    }
    None
}

/// Rules over all documents: the plugin's lake and the workflows' service accounts.
pub(crate) fn check_all(context: &Context<'_>, findings: &mut Vec<Finding>) {
    if let Some((lake, from)) = plugin_lake(context) {
        for d in context.docs {
            let Some((spec, at)) = workflow_spec(d) else {
                continue;
            };
            let runs_plugins = super::library::reachable(spec, &context.library)
                .iter()
                .any(|t| t.get("plugin").is_some());
            for (i, p) in list(spec, "/arguments/parameters").enumerate() {
                let value = text(p, "value");
                if text(p, "name") == "lake" && runs_plugins && value != lake {
                    findings.push(Finding {
                        document: d.label(),
                        path: format!("{at}.arguments.parameters[{i}].value"),
                        message: format!("the executor plugin serves lake {lake:?} (from {from}), but this workflow's lake is {value:?}: its plugin steps would read another lake than its other steps"),
                        source: PLUGIN_LAKE,
                    });
                }
            }
        }
    }
    service_accounts(context, findings);
}

fn service_accounts(context: &Context<'_>, findings: &mut Vec<Finding>) {
    let accounts: BTreeMap<&str, &Document> = context
        .docs
        .iter()
        .filter(|d| d.kind() == "ServiceAccount")
        .map(|d| (d.name(), d))
        .collect();
    if accounts.is_empty() {
        return; // Not an install bundle: the accounts are the cluster's business.
    }
    let mut reported = BTreeSet::new();
    for d in context.docs {
        let Some((spec, at)) = workflow_spec(d) else {
            continue;
        };
        let Some(name) = spec.get("serviceAccountName").and_then(Value::as_str) else {
            continue;
        };
        let identity = spec
            .pointer("/podMetadata/labels")
            .and_then(|l| l.get(WORKLOAD_IDENTITY_LABEL))
            .is_some()
            || templates(spec, at).iter().any(|(_, t)| {
                t.pointer("/metadata/labels")
                    .and_then(|l| l.get(WORKLOAD_IDENTITY_LABEL))
                    .is_some()
            });
        match accounts.get(name) {
            None => findings.push(Finding {
                document: d.label(),
                path: format!("{at}.serviceAccountName"),
                message: format!("service account {name:?} is not among the installed ServiceAccounts ({}): every pod of this workflow would fail to start", accounts.keys().copied().collect::<Vec<_>>().join(", ")),
                source: SERVICE_ACCOUNT,
            }),
            Some(sa)
                if identity
                    && sa
                        .value
                        .pointer("/metadata/annotations")
                        .and_then(|a| a.get(CLIENT_ID))
                        .is_none()
                    && reported.insert(name) =>
            {
                findings.push(Finding {
                    document: sa.label(),
                    path: "metadata.annotations".into(),
                    message: format!("pods of workflows running as {name} use workload identity, but the account has no {CLIENT_ID} annotation: they get no Azure token"),
                    source: SERVICE_ACCOUNT,
                });
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::lint::test_support::{doc, finding, findings_for};
    use crate::schema::ArgoVersion;

    fn step(expression: &str) -> Value {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", "metadata": {"name": "lib"},
            "spec": {"templates": [{"name": "import",
                "retryStrategy": {"limit": "3", "expression": expression},
                "container": {"image": "ghcr.io/o/medallion-import:1", "command": ["/medallion-import"]}}]}})
    }

    #[test]
    fn a_retry_that_skips_evicted_and_oom_killed_pods_is_named() {
        let found = findings_for(
            &[doc(step("asInt(lastRetry.exitCode) == 1"))],
            ArgoVersion::V4_1,
        );
        finding(&found, "does not retry an OOMKilled pod");
        finding(&found, "does not retry an evicted pod");
        let f = finding(&found, "does not retry an Argo Error");
        assert!(f.source.contains("operator.go"), "{f:?}");
        let good = r#"lastRetry.status == "Error" || asInt(lastRetry.exitCode) == 1 || asInt(lastRetry.exitCode) == -1 || asInt(lastRetry.exitCode) >= 128"#;
        assert_eq!(findings_for(&[doc(step(good))], ArgoVersion::V4_1), vec![]);
        let found = findings_for(&[doc(step("true"))], ArgoVersion::V4_1);
        finding(&found, "retries exit code 2");
    }

    fn pipeline(lake: &str, label: bool) -> Value {
        let mut spec = json!({"entrypoint": "main", "serviceAccountName": "wf",
            "arguments": {"parameters": [{"name": "lake", "value": lake}]},
            "templates": [{"name": "main", "dag": {"tasks": [{"name": "l", "template": "lookup"}]}},
                {"name": "lookup", "plugin": {"medallion": {"lookup": {}}}}]});
        if label {
            spec["podMetadata"] = json!({"labels": {"azure.workload.identity/use": "true"}});
        }
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", "metadata": {"name": "p"}, "spec": spec})
    }

    fn plugin(env: Value) -> Value {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "ExecutorPlugin", "metadata": {"name": "medallion"},
            "spec": {"sidecar": {"container": {"name": "m", "image": "ghcr.io/o/medallion-import:1", "env": [env]}}}})
    }

    #[test]
    fn lakes_a_pod_cannot_open_or_the_plugin_does_not_serve_are_named() {
        let abfss = "abfss://lake@acct.dfs.core.windows.net/m";
        let found = findings_for(
            &[
                doc(pipeline("az://lake/medallion", true)),
                doc(plugin(
                    json!({"name": "MEDALLION_LAKE", "value": "az://lake"}),
                )),
            ],
            ArgoVersion::V4_1,
        );
        finding(
            &found,
            "\"az://lake/medallion\" takes the storage account from AZURE_STORAGE_ACCOUNT_NAME",
        );
        finding(&found, "the executor plugin serves lake \"az://lake\"");
        let settings = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "medallion-settings"}, "data": {"lake": abfss}});
        let from_settings = plugin(
            json!({"name": "MEDALLION_LAKE", "valueFrom": {"configMapKeyRef": {"name": "medallion-settings", "key": "lake"}}}),
        );
        assert_eq!(
            findings_for(
                &[
                    doc(pipeline(abfss, true)),
                    doc(from_settings.clone()),
                    doc(settings.clone())
                ],
                ArgoVersion::V4_1
            ),
            vec![]
        );
        let found = findings_for(
            &[
                doc(pipeline(abfss, false)),
                doc(from_settings),
                doc(settings),
            ],
            ArgoVersion::V4_1,
        );
        let f = finding(
            &found,
            "this workflow runs executor-plugin templates, whose agent pod takes only spec.podMetadata",
        );
        assert!(f.source.contains("agent.go"), "{f:?}");
    }

    #[test]
    fn service_accounts_must_be_installed_with_a_client_id() {
        let sa = |annotated: bool| {
            let mut v =
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "wf"}});
            if annotated {
                v["metadata"]["annotations"] = json!({"azure.workload.identity/client-id": "x"});
            }
            v
        };
        let lake = "abfss://lake@acct.dfs.core.windows.net/m";
        let found = findings_for(
            &[doc(pipeline(lake, true)), doc(sa(false))],
            ArgoVersion::V4_1,
        );
        finding(
            &found,
            "pods of workflows running as wf use workload identity, but the account has no azure.workload.identity/client-id annotation",
        );
        assert_eq!(
            findings_for(
                &[doc(pipeline(lake, true)), doc(sa(true))],
                ArgoVersion::V4_1
            ),
            vec![]
        );
        let mut other = sa(true);
        other["metadata"]["name"] = json!("someone-else");
        let found = findings_for(&[doc(pipeline(lake, true)), doc(other)], ArgoVersion::V4_1);
        finding(
            &found,
            "service account \"wf\" is not among the installed ServiceAccounts",
        );
    }
}
