//! A Terraform plan (`terraform show -json <planfile>`) summarised into Medallion's plan format:
//! one [`Change`] per resource that changes (create, update, replace, delete), with the changed
//! top-level attributes' new values, sensitive ones replaced by `(sensitive)` and unknown ones by
//! `(known after apply)`. Nothing else of the Terraform plan is copied: its `variables`,
//! `prior_state` and `configuration` can hold secrets in clear text.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::plan::{Action, Change};

/// Longest attribute value kept in a plan (longer ones are cut with `…`).
const MAX_VALUE_CHARS: usize = 120;

/// What a Terraform plan changes.
#[derive(Debug, Clone, PartialEq)]
pub struct TerraformSummary {
    pub terraform_version: String,
    pub changes: Vec<Change>,
}

impl TerraformSummary {
    /// `2 to create, 1 to update, 0 to replace, 1 to delete`.
    pub fn counts(&self) -> String {
        let n = |a: Action| self.changes.iter().filter(|c| c.action == a).count();
        format!(
            "{} to create, {} to update, {} to replace, {} to delete",
            n(Action::Create),
            n(Action::Update),
            n(Action::Replace),
            n(Action::Delete)
        )
    }
}

/// Reads the JSON `terraform show -json` prints for a saved plan.
pub fn summarize(source: &str, text: &str) -> Result<TerraformSummary> {
    let bad = |field: &str, message: String| Error::invalid(source, field, message);
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        bad(
            "json",
            format!("not JSON ({e}); pass the output of `terraform show -json <planfile>`"),
        )
    })?;
    let format = doc
        .get("format_version")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad(
                "format_version",
                "missing: this is not `terraform show -json` output of a plan".into(),
            )
        })?;
    if !format.starts_with("1.") {
        return Err(bad(
            "format_version",
            format!("{format} is not a Terraform JSON format this build reads (1.x)"),
        ));
    }
    if doc.get("planned_values").is_none() && doc.get("resource_changes").is_none() {
        return Err(bad(
            "resource_changes",
            "missing: this looks like state, not a plan; run `terraform show -json` on the saved plan file".into(),
        ));
    }
    let mut changes = Vec::new();
    for (i, rc) in doc
        .get("resource_changes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("resource_changes[{i}]");
        let address = rc
            .get("address")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(&at, "has no address".into()))?;
        // Data sources are read, not changed.
        if rc.get("mode").and_then(Value::as_str) == Some("data") {
            continue;
        }
        let change = rc
            .get("change")
            .ok_or_else(|| bad(&at, "has no change".into()))?;
        let actions: Vec<&str> = change
            .get("actions")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let action = match actions.as_slice() {
            ["create"] => Action::Create,
            ["update"] => Action::Update,
            ["delete"] => Action::Delete,
            ["delete", "create"] | ["create", "delete"] => Action::Replace,
            ["no-op"] | ["read"] | ["forget"] => continue,
            other => {
                return Err(bad(
                    &format!("{at}.change.actions"),
                    format!("{other:?} is not an action this build knows"),
                ));
            }
        };
        let attributes = if action == Action::Delete {
            BTreeMap::new()
        } else {
            changed_attributes(change)
        };
        changes.push(Change {
            address: address.to_string(),
            action,
            namespace: None,
            replicas: None,
            attributes,
        });
    }
    Ok(TerraformSummary {
        terraform_version: doc
            .get("terraform_version")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
        changes,
    })
}

/// Whether a `*_sensitive` / `after_unknown` marker says this attribute is marked (a `true`
/// anywhere inside it: nested blocks carry their own markers).
fn marked(marker: Option<&Value>) -> bool {
    match marker {
        Some(Value::Bool(b)) => *b,
        Some(Value::Array(l)) => l.iter().any(|v| marked(Some(v))),
        Some(Value::Object(m)) => m.values().any(|v| marked(Some(v))),
        _ => false,
    }
}

fn changed_attributes(change: &Value) -> BTreeMap<String, String> {
    let before = change.get("before").and_then(Value::as_object);
    let after = change.get("after").and_then(Value::as_object);
    let after_sensitive = change.get("after_sensitive");
    let before_sensitive = change.get("before_sensitive");
    let unknown = change.get("after_unknown");
    let mut out = BTreeMap::new();
    let keys: std::collections::BTreeSet<&String> = after
        .into_iter()
        .flat_map(|m| m.keys())
        .chain(
            unknown
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(|m| m.keys()),
        )
        .collect();
    for key in keys {
        let new = after.and_then(|m| m.get(key));
        let old = before.and_then(|m| m.get(key));
        let is_unknown = marked(unknown.and_then(|u| u.get(key)));
        let sensitive = marked(after_sensitive.and_then(|s| s.get(key)))
            || marked(before_sensitive.and_then(|s| s.get(key)))
            || after_sensitive == Some(&Value::Bool(true));
        if !is_unknown && (new == old || (old.is_none() && new.is_none_or(Value::is_null))) {
            continue;
        }
        // Computed attributes of a new resource say nothing a reviewer can check.
        if is_unknown && before.is_none() {
            continue;
        }
        let shown = if sensitive {
            "(sensitive)".to_string()
        } else if is_unknown {
            "(known after apply)".to_string()
        } else {
            let text = new.map(Value::to_string).unwrap_or_else(|| "null".into());
            if text.chars().count() > MAX_VALUE_CHARS {
                format!(
                    "{}…",
                    text.chars().take(MAX_VALUE_CHARS).collect::<String>()
                )
            } else {
                text
            }
        };
        out.insert(key.clone(), shown);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_map_and_sensitive_values_never_show() {
        let plan = json!({
        "format_version": "1.2", "terraform_version": "1.11.4",
        "variables": {"secret": {"value": "hunter2"}},
        "planned_values": {},
        "resource_changes": [
            {"address": "terraform_data.a", "mode": "managed", "change": {"actions": ["create"],
              "before": null, "after": {"input": "x", "triggers_replace": null},
              "after_unknown": {"id": true}, "after_sensitive": {}}},
            {"address": "terraform_data.b", "mode": "managed", "change": {"actions": ["update"],
              "before": {"input": "old", "id": "1"}, "after": {"input": "hunter2", "id": "1"},
              "after_unknown": {}, "after_sensitive": {"input": true}, "before_sensitive": {}}},
            {"address": "terraform_data.c", "mode": "managed", "change": {"actions": ["delete", "create"],
              "before": {"input": "1"}, "after": {"input": "2"}, "after_unknown": {"output": true}}},
            {"address": "terraform_data.d", "mode": "managed", "change": {"actions": ["delete"],
              "before": {"input": "gone"}, "after": null}},
            {"address": "data.x.y", "mode": "data", "change": {"actions": ["read"]}},
            {"address": "terraform_data.e", "mode": "managed", "change": {"actions": ["no-op"]}}
        ]});
        let s = summarize("plan.json", &plan.to_string()).unwrap();
        let actions: Vec<(&str, Action)> = s
            .changes
            .iter()
            .map(|c| (c.address.as_str(), c.action))
            .collect();
        assert_eq!(
            actions,
            vec![
                ("terraform_data.a", Action::Create),
                ("terraform_data.b", Action::Update),
                ("terraform_data.c", Action::Replace),
                ("terraform_data.d", Action::Delete),
            ]
        );
        assert_eq!(
            s.changes[0].attributes.get("input").map(String::as_str),
            Some("\"x\"")
        );
        assert!(
            !s.changes[0].attributes.contains_key("id"),
            "computed ids of new resources are noise"
        );
        assert_eq!(
            s.changes[1].attributes.get("input").map(String::as_str),
            Some("(sensitive)")
        );
        assert_eq!(
            s.changes[2].attributes.get("output").map(String::as_str),
            Some("(known after apply)")
        );
        assert!(s.changes[3].attributes.is_empty());
        assert_eq!(
            s.counts(),
            "1 to create, 1 to update, 1 to replace, 1 to delete"
        );
        let everything = format!("{:?}", s);
        assert!(!everything.contains("hunter2"), "{everything}");
    }

    #[test]
    fn what_is_not_a_plan_is_a_clear_error() {
        for (text, expect) in [
            ("not json", "not JSON"),
            ("{}", "format_version: missing"),
            (
                r#"{"format_version": "2.0"}"#,
                "is not a Terraform JSON format",
            ),
            (
                r#"{"format_version": "1.0", "values": {}}"#,
                "looks like state",
            ),
            (
                r#"{"format_version": "1.0", "resource_changes": [{"address": "a", "change": {"actions": ["explode"]}}]}"#,
                "is not an action",
            ),
        ] {
            let e = summarize("p.json", text).unwrap_err().to_string();
            assert!(e.contains(expect), "{text}: {e}");
        }
    }
}
