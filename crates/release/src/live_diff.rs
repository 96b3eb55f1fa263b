//! What a Kubernetes release would change in the cluster as it is, from the API server's own
//! answer: for each planned object, the live object (GET) against the server-side apply dry run
//! (`dryRun=All`), which the API server defaults, validates and runs through admission exactly as
//! it would for the real apply. Comparing two server-made objects shows only the fields the
//! release changes, not the defaults the server fills in.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::k8s_objects::address;
use crate::plan::Action;

/// At most this many changed fields are listed per object; the rest are counted.
pub const MAX_FIELDS: usize = 40;

/// Metadata the server keeps for itself; a change there is not a change the release makes.
const SERVER_METADATA: [&str; 6] = [
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveDiff {
    /// The API server that answered.
    pub server: String,
    pub objects: Vec<ObjectDiff>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectDiff {
    /// `Deployment/models/house-price-green`.
    pub address: String,
    /// create (not in the cluster), update (fields change) or no-op.
    pub action: Action,
    /// The changed fields (for an update), at most [`MAX_FIELDS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
    /// Changed fields left out of `fields`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_fields: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldChange {
    /// `spec.selector["medallion.dev/slot"]`, `spec.template.spec.containers[0].args[3]`.
    pub path: String,
    /// The value in the cluster now (absent: the field is added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<String>,
    /// The value after the apply (absent: the field is removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned: Option<String>,
}

/// Compares the live object (None: absent) with the dry run's answer.
pub fn diff_object(live: Option<&Value>, dry_run: &Value) -> ObjectDiff {
    let address = address(dry_run);
    let Some(live) = live else {
        return ObjectDiff {
            address,
            action: Action::Create,
            fields: Vec::new(),
            more_fields: 0,
        };
    };
    let mut before = Vec::new();
    let mut after = Vec::new();
    flatten("", &release_view(live), &mut before);
    flatten("", &release_view(dry_run), &mut after);
    let before: std::collections::BTreeMap<String, String> = before.into_iter().collect();
    let after: std::collections::BTreeMap<String, String> = after.into_iter().collect();
    let mut changes: Vec<FieldChange> = Vec::new();
    for (path, value) in &after {
        if before.get(path) != Some(value) {
            changes.push(FieldChange {
                path: path.clone(),
                live: before.get(path).cloned(),
                planned: Some(value.clone()),
            });
        }
    }
    for (path, value) in &before {
        if !after.contains_key(path) {
            changes.push(FieldChange {
                path: path.clone(),
                live: Some(value.clone()),
                planned: None,
            });
        }
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    let more_fields = changes.len().saturating_sub(MAX_FIELDS);
    changes.truncate(MAX_FIELDS);
    ObjectDiff {
        address,
        action: if changes.is_empty() {
            Action::NoOp
        } else {
            Action::Update
        },
        fields: changes,
        more_fields,
    }
}

/// The object without its status and the server's own metadata.
fn release_view(object: &Value) -> Value {
    let mut view = object.clone();
    if let Some(map) = view.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in SERVER_METADATA {
                meta.remove(key);
            }
        }
    }
    view
}

/// Leaves as (path, value) pairs; empty maps and lists count as leaves so adding one shows.
fn flatten(path: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, v) in map {
                let plain = !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                let child = match (path.is_empty(), plain) {
                    (true, true) => key.clone(),
                    (false, true) => format!("{path}.{key}"),
                    (_, false) => format!("{path}[{}]", Value::String(key.clone())),
                };
                flatten(&child, v, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{path}[{i}]"), v, out);
            }
        }
        Value::String(s) => out.push((path.to_string(), s.clone())),
        other => out.push((path.to_string(), other.to_string())),
    }
}

/// One line per object for the plan's summary: `Service/models/hp update (1 field)`.
pub fn one_line(diff: &LiveDiff) -> String {
    let parts: Vec<String> = diff
        .objects
        .iter()
        .map(|o| match o.action {
            Action::Update => {
                let n = o.fields.len() + o.more_fields;
                format!(
                    "{} update ({n} field{})",
                    o.address,
                    if n == 1 { "" } else { "s" }
                )
            }
            action => format!("{} {}", o.address, action.as_str()),
        })
        .collect();
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_absent_object_is_created() {
        let planned = json!({"kind": "Service", "metadata": {"namespace": "m", "name": "hp"}});
        let d = diff_object(None, &planned);
        assert_eq!(d.address, "Service/m/hp");
        assert_eq!(d.action, Action::Create);
        assert!(d.fields.is_empty());
    }

    #[test]
    fn only_the_fields_the_release_changes_are_listed() {
        let live = json!({
            "kind": "Service",
            "metadata": {"namespace": "m", "name": "hp", "resourceVersion": "10", "uid": "u1",
                         "managedFields": [{"manager": "medallion"}], "labels": {"app": "hp"}},
            "spec": {"selector": {"medallion.dev/slot": "blue"}, "ports": [{"port": 80}],
                     "clusterIP": "10.0.0.7"},
            "status": {"loadBalancer": {}}
        });
        let mut dry = live.clone();
        dry["metadata"]["resourceVersion"] = json!("11");
        dry["spec"]["selector"]["medallion.dev/slot"] = json!("green");
        dry["spec"]["ports"][0]["port"] = json!(8080);
        dry["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove("app");
        dry["metadata"]["annotations"] = json!({"x": "y"});
        let d = diff_object(Some(&live), &dry);
        assert_eq!(d.action, Action::Update);
        let got: Vec<(&str, Option<&str>, Option<&str>)> = d
            .fields
            .iter()
            .map(|f| (f.path.as_str(), f.live.as_deref(), f.planned.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("metadata.annotations.x", None, Some("y")),
                ("metadata.labels", None, Some("{}")),
                ("metadata.labels.app", Some("hp"), None),
                ("spec.ports[0].port", Some("80"), Some("8080")),
                (
                    "spec.selector[\"medallion.dev/slot\"]",
                    Some("blue"),
                    Some("green")
                ),
            ]
        );
        assert_eq!(
            one_line(&LiveDiff {
                server: "s".into(),
                objects: vec![d]
            }),
            "Service/m/hp update (5 fields)"
        );
    }

    #[test]
    fn the_same_object_is_a_no_op_and_long_diffs_are_counted() {
        let live = json!({"kind": "Deployment", "metadata": {"namespace": "m", "name": "d", "generation": 3},
                          "spec": {"replicas": 2}, "status": {"replicas": 2}});
        let mut dry = live.clone();
        dry["metadata"]["generation"] = json!(4);
        dry["status"]["replicas"] = json!(0);
        assert_eq!(diff_object(Some(&live), &dry).action, Action::NoOp);
        let args: Vec<String> = (0..50).map(|i| format!("--a{i}")).collect();
        dry["spec"]["args"] = json!(args);
        let d = diff_object(Some(&live), &dry);
        assert_eq!(d.fields.len(), MAX_FIELDS);
        assert_eq!(d.more_fields, 10);
    }
}
