//! Argo Events (v1.9.11): what the Sensor controller refuses (pkg/reconciler/sensor/validate.go)
//! and what a Sensor or EventSource does at run time that loses or misroutes events: the
//! namespace a Workflow is submitted into, fire-and-forget triggers, retry settings the Sensor
//! cannot parse, data filters that never match, and storage-queue messages that come back
//! forever.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Context, Document, Sink, list, text};

const NAMESPACE: &str =
    "argo-events v1.9.11 pkg/sensors/triggers/argo-workflow/argo-workflow.go:127-130,160";
const OPERATION: &str = "argo-events v1.9.11 pkg/reconciler/sensor/validate.go:138-141,220-224";
const SOURCE: &str = "argo-events v1.9.11 pkg/reconciler/sensor/validate.go:216-218";
const AT_LEAST_ONCE: &str = "argo-events v1.9.11 pkg/sensors/listener.go:372-393";
const DLQ_TRIGGER: &str = "argo-events v1.9.11 pkg/reconciler/sensor/validate.go:101-106";
const BACKOFF: &str =
    "argo-events v1.9.11 pkg/shared/util/retry.go:36-99, pkg/apis/events/v1alpha1/amount.go:18-35";
const TRIGGERS: &str = "argo-events v1.9.11 pkg/reconciler/sensor/validate.go:58-70,113-118";
const DEPENDENCIES: &str = "argo-events v1.9.11 pkg/reconciler/sensor/validate.go:507-551";
const COMPARATOR: &str = "argo-events v1.9.11 pkg/reconciler/sensor/validate.go:554-566,630-646";
const FILTER_TYPE: &str = "argo-events v1.9.11 pkg/sensors/dependencies/filter.go:361-408";
const QUEUE_DLQ: &str =
    "argo-events v1.9.11 pkg/eventsources/sources/azurequeuestorage/start.go:90-108,150-178";

/// The Argo Events rules for one document.
pub(crate) fn check(doc: &Document, context: &Context<'_>, sink: &mut Sink<'_>) {
    match doc.kind() {
        "Sensor" => sensor(&doc.value, context, sink),
        "EventSource" => event_source(&doc.value, sink),
        _ => {}
    }
}

fn sensor(doc: &Value, context: &Context<'_>, sink: &mut Sink<'_>) {
    let triggers: Vec<&Value> = list(doc, "/spec/triggers").collect();
    if triggers.is_empty() {
        sink.add("spec.triggers", "no triggers found".into(), TRIGGERS);
    }
    dependencies(doc, sink);
    let mut names = BTreeSet::new();
    for (i, trigger) in triggers.iter().enumerate() {
        let at = format!("spec.triggers[{i}]");
        let Some(template) = trigger.get("template") else {
            sink.add(&at, "trigger template can't be nil".into(), TRIGGERS);
            continue;
        };
        let name = text(template, "name");
        if name.is_empty() {
            sink.add(
                &format!("{at}.template"),
                "trigger must define a name".into(),
                TRIGGERS,
            );
        } else if !names.insert(name) {
            sink.add(
                &format!("{at}.template.name"),
                format!("duplicate trigger name: {name}"),
                TRIGGERS,
            );
        }
        let retries = trigger.get("retryStrategy");
        let at_least_once = trigger
            .get("atLeastOnce")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !at_least_once && (retries.is_some() || trigger.get("dlqTrigger").is_some()) {
            sink.add(
                &format!("{at}.atLeastOnce"),
                "without atLeastOnce: true the trigger is fire-and-forget: the event is acknowledged before the submission runs, so retryStrategy (and a dlqTrigger) never apply and a failed submission is lost".into(),
                AT_LEAST_ONCE,
            );
        }
        if trigger.get("dlqTrigger").is_some() && !at_least_once {
            sink.add(
                &format!("{at}.dlqTrigger"),
                "to use dlqTrigger, trigger.atLeastOnce must be set to true".into(),
                DLQ_TRIGGER,
            );
        }
        if let Some(r) = retries {
            backoff(r, &format!("{at}.retryStrategy"), sink);
        }
        if let Some(wf) = template.get("argoWorkflow") {
            argo_workflow(
                wf,
                name,
                &format!("{at}.template.argoWorkflow"),
                context,
                sink,
            );
        }
    }
}

fn argo_workflow(wf: &Value, trigger: &str, at: &str, context: &Context<'_>, sink: &mut Sink<'_>) {
    let operation = text(wf, "operation");
    const OPERATIONS: &[&str] = &[
        "submit",
        "submit-from",
        "suspend",
        "resubmit",
        "retry",
        "resume",
        "terminate",
        "stop",
    ];
    if !OPERATIONS.contains(&operation) {
        sink.add(
            &format!("{at}.operation"),
            format!("template {trigger} is invalid, unknown operation type {operation}"),
            OPERATION,
        );
    }
    let Some(resource) = wf.pointer("/source/resource") else {
        if wf.get("source").is_none() {
            sink.add(
                &format!("{at}.source"),
                format!("template {trigger} is invalid, argoWorkflow trigger does not contain an absolute action"),
                SOURCE,
            );
        }
        return;
    };
    if operation != "submit" {
        return;
    }
    let namespace = resource
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    if namespace.is_empty() {
        sink.add(
            &format!("{at}.source.resource.metadata"),
            "the Workflow names no metadata.namespace, so Argo Events submits it into the Sensor's own namespace (argo-events), where the WorkflowTemplates are not: set the workflows' namespace".into(),
            NAMESPACE,
        );
        return;
    }
    // When the linted documents place the referenced template in a namespace, it must be this.
    let reference = text(
        resource
            .pointer("/spec/workflowTemplateRef")
            .unwrap_or(&Value::Null),
        "name",
    );
    for d in context.docs {
        let placed = d
            .value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str);
        if d.kind() == "WorkflowTemplate"
            && d.name() == reference
            && let Some(placed) = placed
            && placed != namespace
        {
            sink.add(
                &format!("{at}.source.resource.metadata.namespace"),
                format!("the Workflow is submitted into {namespace:?}, but WorkflowTemplate {reference} is in {placed:?}"),
                NAMESPACE,
            );
        }
    }
}

/// The trigger's retryStrategy as the Sensor converts it: a factor or jitter written as a
/// quoted number does not parse, and the trigger then never runs at all.
fn backoff(r: &Value, at: &str, sink: &mut Sink<'_>) {
    for key in ["factor", "jitter"] {
        if let Some(Value::String(s)) = r.get(key) {
            sink.add(
                &format!("{at}.{key}"),
                format!("invalid backoff configuration, invalid {key}: {s:?} is a quoted string and the Sensor parses the raw JSON as a number, so the trigger never runs: write it unquoted"),
                BACKOFF,
            );
        }
    }
    if let Some(Value::Number(n)) = r.get("duration") {
        sink.add(
            &format!("{at}.duration"),
            format!("a number here is nanoseconds ({n} ns): write a duration such as \"2s\""),
            BACKOFF,
        );
    }
}

fn dependencies(doc: &Value, sink: &mut Sink<'_>) {
    let deps: Vec<&Value> = list(doc, "/spec/dependencies").collect();
    if deps.is_empty() {
        sink.add(
            "spec.dependencies",
            "no event dependencies found".into(),
            DEPENDENCIES,
        );
    }
    for (i, d) in deps.iter().enumerate() {
        let at = format!("spec.dependencies[{i}]");
        for (key, what) in [
            ("name", "a name"),
            ("eventSourceName", "the EventSourceName"),
            ("eventName", "the EventName"),
        ] {
            if text(d, key).is_empty() {
                sink.add(
                    &at,
                    format!("event dependency must define {what}"),
                    DEPENDENCIES,
                );
            }
        }
        for key in [
            "filtersLogicalOperator",
            "filters/dataLogicalOperator",
            "filters/exprLogicalOperator",
        ] {
            let op = d
                .pointer(&format!("/{key}"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if !["", "and", "or"].contains(&op) {
                sink.add(
                    &format!("{at}.{}", key.replace('/', ".")),
                    format!("logical operator {op} not supported"),
                    DEPENDENCIES,
                );
            }
        }
        for (j, f) in list(d, "/filters/data").enumerate() {
            data_filter(f, &format!("{at}.filters.data[{j}]"), sink);
        }
    }
}

fn data_filter(f: &Value, at: &str, sink: &mut Sink<'_>) {
    let comparator = text(f, "comparator");
    if !["", ">=", ">", "=", "!=", "<", "<="].contains(&comparator) {
        sink.add(
            &format!("{at}.comparator"),
            format!("comparator {comparator} not supported"),
            COMPARATOR,
        );
    }
    let values: Vec<&Value> = list(f, "/value").collect();
    if text(f, "type").is_empty() || text(f, "path").is_empty() || values.is_empty() {
        sink.add(
            at,
            "one of data filters is not valid (type, path and value must be not empty)".into(),
            COMPARATOR,
        );
    }
    if values.iter().any(|v| v.as_str() == Some("")) {
        sink.add(
            &format!("{at}.value"),
            "one of data filters is not valid (value must be not empty)".into(),
            COMPARATOR,
        );
    }
    match text(f, "type") {
        "" | "number" | "bool" => {}
        "string" => {
            if [">", ">=", "<", "<="].contains(&comparator) {
                sink.add(
                    &format!("{at}.comparator"),
                    format!("a string filter with comparator {comparator} never matches (only =, != and none are evaluated for strings)"),
                    FILTER_TYPE,
                );
            }
        }
        other => sink.add(
            &format!("{at}.type"),
            format!(
                "data filter error (unsupported JSON type '{other}'): every event fails this filter"
            ),
            FILTER_TYPE,
        ),
    }
}

fn event_source(doc: &Value, sink: &mut Sink<'_>) {
    let Some(sources) = doc
        .pointer("/spec/azureQueueStorage")
        .and_then(Value::as_object)
    else {
        return;
    };
    for (name, source) in sources {
        if source.get("dlq").and_then(Value::as_bool) == Some(true) {
            sink.add(
                &format!("spec.azureQueueStorage.{name}.dlq"),
                "an Azure storage queue has no dead-letter queue behind dlq: a message that cannot be decoded stays in the queue and comes back every 120 s until it expires; with dlq: false the EventSource logs it once and deletes it".into(),
                QUEUE_DLQ,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::lint::test_support::{doc, finding, findings_for};
    use crate::schema::ArgoVersion;

    fn sensor(trigger: Value) -> Value {
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor", "metadata": {"name": "s"},
            "spec": {"dependencies": [{"name": "d", "eventSourceName": "e", "eventName": "n",
                "filters": {"data": [{"path": "body.subject", "type": "string", "value": ["^a$"]}]}}],
                "triggers": [trigger]}})
    }

    fn trigger(metadata: Value) -> Value {
        json!({"template": {"name": "t", "conditions": "d", "argoWorkflow": {"operation": "submit",
            "source": {"resource": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                "metadata": metadata, "spec": {"workflowTemplateRef": {"name": "p"}}}}}},
            "atLeastOnce": true, "retryStrategy": {"steps": 3, "duration": "2s"}})
    }

    fn all(v: Value) -> Vec<crate::lint::Finding> {
        findings_for(&[doc(v)], ArgoVersion::V4_1)
    }

    #[test]
    fn a_workflow_without_a_namespace_goes_to_the_sensors_namespace() {
        let found = all(sensor(trigger(json!({"name": "w"}))));
        let f = finding(&found, "the Workflow names no metadata.namespace");
        assert!(f.source.contains("argo-workflow.go:127-130"), "{f:?}");
        let good = all(sensor(trigger(json!({"name": "w", "namespace": "argo"}))));
        assert!(
            !good.iter().any(|f| f.source.contains("argo-workflow.go")),
            "{good:#?}"
        );
    }

    #[test]
    fn fire_and_forget_triggers_are_named() {
        let mut t = trigger(json!({"name": "w", "namespace": "argo"}));
        t.as_object_mut().unwrap().remove("atLeastOnce");
        let found = all(sensor(t));
        let f = finding(
            &found,
            "without atLeastOnce: true the trigger is fire-and-forget",
        );
        assert!(f.source.contains("listener.go:372-393"), "{f:?}");
    }

    #[test]
    fn sensor_validation_errors_are_argos() {
        let mut t = trigger(json!({"name": "w", "namespace": "argo"}));
        t["template"]["argoWorkflow"]
            .as_object_mut()
            .unwrap()
            .remove("operation");
        t["retryStrategy"]["factor"] = json!("2");
        let mut s = sensor(t);
        s["spec"]["dependencies"][0]["filters"]["data"][0]["comparator"] = json!("~");
        s["spec"]["dependencies"][0]["filters"]["data"][0]["type"] = json!("int");
        let found = all(s);
        let f = finding(&found, "template t is invalid, unknown operation type ");
        assert!(f.source.contains("validate.go:138-141,220-224"), "{f:?}");
        finding(&found, "comparator ~ not supported");
        finding(&found, "data filter error (unsupported JSON type 'int')");
        finding(&found, "invalid backoff configuration, invalid factor");
    }

    #[test]
    fn a_queue_dlq_is_named() {
        let es = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource", "metadata": {"name": "l"},
            "spec": {"azureQueueStorage": {"b": {"queueName": "q", "storageAccountName": "a", "dlq": true}}}});
        let found = all(es);
        let f = finding(
            &found,
            "an Azure storage queue has no dead-letter queue behind dlq",
        );
        assert!(f.source.contains("azurequeuestorage/start.go"), "{f:?}");
    }
}
