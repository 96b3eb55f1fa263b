//! Validation of Kubernetes objects against Argo's own JSON schemas (vendored in
//! `schemas/argo/`, embedded in the binary), with the strictness of `argo lint`: a field the
//! schema does not know is an error, as it is when the controller decodes the object.
//!
//! The schemas use a small part of JSON Schema: `$ref` to `#/definitions/...`, `type` (one or a
//! list), `properties`, `required`, `items`, `additionalProperties`, `const`, `enum`, `oneOf`,
//! and `format` (`int32`/`int64` are range-checked; the others are descriptive). Every other
//! keyword is annotation only. The root `oneOf` over the kinds is replaced by picking the
//! definition whose `kind` constant matches the document, so an error names the field that is
//! wrong instead of "matches none of 5 schemas".

use std::collections::BTreeMap;

use serde_json::Value;

/// Argo Workflows' schema (WorkflowTemplate, ClusterWorkflowTemplate, CronWorkflow, Workflow,
/// WorkflowEventBinding).
pub const WORKFLOWS_SCHEMA: &str = include_str!("../../../schemas/argo/workflows-schema.json");
/// Argo Events' schema (EventBus, EventSource, Sensor).
pub const EVENTS_SCHEMA: &str = include_str!("../../../schemas/argo/events-schema.json");

#[derive(Debug, thiserror::Error)]
#[error("the JSON schema is not usable: {0}")]
pub struct SchemaError(String);

/// One problem in a document: where (a path such as `spec.templates[2].dag.tasks[0].when`) and
/// what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

/// The definitions of one or more schemas and the kinds they define.
pub struct Schemas {
    /// One map per schema file: the two files define some names (core/v1 Container...)
    /// differently, so a `$ref` resolves in the file it appears in.
    definitions: Vec<BTreeMap<String, Value>>,
    /// kind → (schema file, definition).
    kinds: BTreeMap<String, (usize, String)>,
}

impl Schemas {
    /// Argo Workflows' and Argo Events' schemas as vendored in this repository.
    pub fn argo() -> Result<Schemas, SchemaError> {
        Schemas::from_texts(&[WORKFLOWS_SCHEMA, EVENTS_SCHEMA])
    }

    pub fn from_texts(texts: &[&str]) -> Result<Schemas, SchemaError> {
        let mut definitions = Vec::new();
        let mut kinds = BTreeMap::new();
        for (set, text) in texts.iter().enumerate() {
            let doc: Value = serde_json::from_str(text).map_err(|e| SchemaError(e.to_string()))?;
            let roots = doc
                .get("oneOf")
                .and_then(Value::as_array)
                .ok_or_else(|| SchemaError("no root oneOf over the kinds".into()))?;
            let defs = doc
                .get("definitions")
                .and_then(Value::as_object)
                .ok_or_else(|| SchemaError("no definitions".into()))?;
            for root in roots {
                let Some(name) = root
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/definitions/"))
                else {
                    return Err(SchemaError("a root entry is not a $ref".into()));
                };
                let kind = defs
                    .get(name)
                    .and_then(|d| d.pointer("/properties/kind/const"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| SchemaError(format!("{name} has no kind constant")))?;
                kinds.insert(kind.to_string(), (set, name.to_string()));
            }
            definitions.push(defs.clone().into_iter().collect());
        }
        Ok(Schemas { definitions, kinds })
    }

    /// The kinds these schemas define.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.kinds.keys().map(String::as_str)
    }

    pub fn knows_kind(&self, kind: &str) -> bool {
        self.kinds.contains_key(kind)
    }

    /// Every violation in `doc` (empty when valid). A kind the schemas do not define is one
    /// violation at `kind`.
    pub fn validate(&self, doc: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
        match self.kinds.get(kind) {
            Some((set, def)) => {
                let root = serde_json::json!({ "$ref": format!("#/definitions/{def}") });
                self.check(*set, &root, doc, "", &mut out);
            }
            None => out.push(Violation {
                path: "kind".into(),
                message: format!(
                    "kind {kind:?} is not one of Argo's kinds ({})",
                    self.kinds.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            }),
        }
        out
    }

    fn resolve<'a>(&'a self, set: usize, schema: &'a Value) -> Result<&'a Value, String> {
        let mut current = schema;
        // Definitions may alias one another; a chain longer than this is a loop.
        for _ in 0..16 {
            let Some(r) = current.get("$ref").and_then(Value::as_str) else {
                return Ok(current);
            };
            let name = r
                .strip_prefix("#/definitions/")
                .ok_or_else(|| format!("unsupported $ref {r}"))?;
            current = self
                .definitions
                .get(set)
                .and_then(|d| d.get(name))
                .ok_or_else(|| format!("$ref to a missing definition {name}"))?;
        }
        Err("$ref chain too long".into())
    }

    fn check(
        &self,
        set: usize,
        schema: &Value,
        value: &Value,
        path: &str,
        out: &mut Vec<Violation>,
    ) {
        let schema = match self.resolve(set, schema) {
            Ok(s) => s,
            Err(message) => {
                out.push(Violation {
                    path: display_path(path),
                    message: format!("schema: {message}"),
                });
                return;
            }
        };
        let mut fail = |message: String| {
            out.push(Violation {
                path: display_path(path),
                message,
            })
        };
        if let Some(types) = schema.get("type") {
            let allowed: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            if !allowed.is_empty() && !allowed.iter().any(|t| has_type(value, t)) {
                fail(format!(
                    "is {}, the schema wants {}",
                    describe(value),
                    allowed.join(" or ")
                ));
                return;
            }
        }
        if let Some(c) = schema.get("const")
            && c != value
        {
            fail(format!("must be {c}, found {value}"));
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array)
            && !options.contains(value)
        {
            let list: Vec<String> = options.iter().map(Value::to_string).collect();
            fail(format!("{value} is not one of {}", list.join(", ")));
        }
        if let (Some(format), Some(n)) =
            (schema.get("format").and_then(Value::as_str), value.as_f64())
        {
            let (lo, hi) = match format {
                "int32" => (f64::from(i32::MIN), f64::from(i32::MAX)),
                "int64" => (i64::MIN as f64, i64::MAX as f64),
                _ => (f64::NEG_INFINITY, f64::INFINITY),
            };
            if n < lo || n > hi {
                fail(format!("{n} does not fit {format}"));
            }
        }
        if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
            let matching = branches
                .iter()
                .filter(|b| {
                    let mut scratch = Vec::new();
                    self.check(set, b, value, path, &mut scratch);
                    scratch.is_empty()
                })
                .count();
            if matching != 1 {
                fail(format!(
                    "matches {matching} of the {} alternatives, exactly one is required",
                    branches.len()
                ));
            }
        }
        match value {
            Value::Object(map) => {
                if let Some(required) = schema.get("required").and_then(Value::as_array) {
                    for r in required.iter().filter_map(Value::as_str) {
                        if !map.contains_key(r) {
                            out.push(Violation {
                                path: display_path(path),
                                message: format!("required field {r:?} is missing"),
                            });
                        }
                    }
                }
                let properties = schema.get("properties").and_then(Value::as_object);
                let additional = schema.get("additionalProperties");
                for (key, v) in map {
                    let child = format!("{path}.{key}");
                    if let Some(p) = properties.and_then(|p| p.get(key)) {
                        self.check(set, p, v, &child, out);
                    } else if let Some(extra) = additional {
                        match extra {
                            Value::Bool(false) => out.push(Violation {
                                path: display_path(&child),
                                message: "is not allowed here".into(),
                            }),
                            Value::Object(_) => self.check(set, extra, v, &child, out),
                            _ => {}
                        }
                    } else if let Some(known) = properties {
                        // Argo decodes strictly: an unknown field (often a typo) is rejected.
                        out.push(Violation {
                            path: display_path(&child),
                            message: format!(
                                "unknown field {key:?}{}",
                                closest(key, known.keys().map(String::as_str))
                                    .map(|k| format!(" (did you mean {k:?}?)"))
                                    .unwrap_or_default()
                            ),
                        });
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, v) in items.iter().enumerate() {
                        self.check(set, item_schema, v, &format!("{path}[{i}]"), out);
                    }
                }
            }
            _ => {}
        }
    }
}

fn display_path(path: &str) -> String {
    let p = path.strip_prefix('.').unwrap_or(path);
    if p.is_empty() {
        "(document)".into()
    } else {
        p.to_string()
    }
}

fn has_type(value: &Value, t: &str) -> bool {
    match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => true,
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) => format!("a string ({s:?})"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// The known name closest to a misspelt one (edit distance ≤ 2), for "did you mean".
pub fn closest<'a>(word: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|k| (edit_distance(word, k), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn argo() -> Schemas {
        Schemas::argo().unwrap()
    }

    #[test]
    fn knows_argos_kinds() {
        let s = argo();
        for k in [
            "WorkflowTemplate",
            "ClusterWorkflowTemplate",
            "CronWorkflow",
            "Sensor",
            "EventSource",
            "EventBus",
        ] {
            assert!(s.knows_kind(k), "{k}");
        }
    }

    #[test]
    fn a_valid_template_has_no_violation() {
        let doc = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
            "metadata": {"name": "t", "labels": {"a": "b"}},
            "spec": {"entrypoint": "main", "templates": [{"name": "main",
                "retryStrategy": {"limit": "3"},
                "container": {"image": "x", "args": ["a"]}}]}});
        assert_eq!(argo().validate(&doc), vec![]);
    }

    #[test]
    fn wrong_types_unknown_fields_and_missing_required_fields_are_named() {
        let doc = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
            "metadata": {"name": "t"},
            "spec": {"entrypoint": "main", "templates": [{"name": "main",
                "retryStrategy": {"limit": 3},
                "dag": {"tasks": [{"name": "a", "dependancies": ["b"]}]},
                "container": {"args": ["a"]}}]}});
        let v = argo().validate(&doc);
        let text: Vec<String> = v
            .iter()
            .map(|v| format!("{}: {}", v.path, v.message))
            .collect();
        assert!(
            text.contains(
                &"spec.templates[0].retryStrategy.limit: is a number (3), the schema wants string"
                    .to_string()
            ),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.starts_with("spec.templates[0].dag.tasks[0].dependancies: unknown field \"dependancies\" (did you mean \"dependencies\"?)")), "{text:?}");
        assert!(
            text.contains(
                &"spec.templates[0].container: required field \"image\" is missing".to_string()
            ),
            "{text:?}"
        );
    }

    #[test]
    fn an_unknown_kind_is_one_violation() {
        let v = argo().validate(&json!({"kind": "Workflw"}));
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("not one of Argo's kinds"));
    }
}
