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

/// The Argo Workflows release line a cluster runs: its schema and its rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArgoVersion {
    /// Argo Workflows 4.1 (checked against v4.1.2).
    #[default]
    V4_1,
    /// Argo Workflows 3.7 (checked against v3.7.18).
    V3_7,
}

impl ArgoVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ArgoVersion::V4_1 => "4.1",
            ArgoVersion::V3_7 => "3.7",
        }
    }
}

impl std::str::FromStr for ArgoVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim_start_matches('v') {
            "4.1" => Ok(ArgoVersion::V4_1),
            "3.7" => Ok(ArgoVersion::V3_7),
            other => Err(format!(
                "Argo Workflows {other} is not supported; use 4.1 or 3.7"
            )),
        }
    }
}

/// `io.k8s.apimachinery.pkg.util.intstr.IntOrString` is `{"type": "string"}` in Argo's
/// schema.json (v4.1.2 line 12016, v3.7.18 line 11614), but the Go type it stands for accepts a
/// number or a string (`retryStrategy.limit: 2` and `"2"` decode alike), and the CRDs say so
/// (`x-kubernetes-int-or-string: true`, manifests/base/crds/full/argoproj.io_workflowtemplates.yaml
/// v4.1.2 lines 5692-5695). Validated as the cluster decodes it.
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";

/// What Argo 3.7's schema (v3.7.18 api/jsonschema/schema.json) has that 4.1's (v4.1.2) lacks, and
/// the reverse, for the definitions a Workflow reaches: 3.7 is the vendored 4.1 schema with
/// these changes. Found by comparing the two files' definitions property by property.
/// (definition, property, what 3.7 has: `None` = the property does not exist in 3.7,
/// `Some(schema)` = 3.7's schema for it).
const V3_7_PROPERTIES: &[(&str, &str, Option<&str>)] = &[
    ("Template", "pendingTimeout", None),
    ("Template", "podResources", None),
    ("Template", "resourceClaims", None),
    ("WorkflowSpec", "executorPlugins", None),
    ("WorkflowSpec", "podResources", None),
    ("WorkflowSpec", "resourceClaims", None),
    ("ScriptTemplate", "restartPolicyRules", None),
    ("UserContainer", "restartPolicyRules", None),
    ("ContainerNode", "restartPolicyRules", None),
    ("Artifact", "plugin", None),
    ("ArtifactLocation", "plugin", None),
    ("ArtifactPaths", "plugin", None),
    ("ArtifactRepository", "plugin", None),
    ("HTTPArtifact", "saveStreamViaFile", None),
    ("S3Artifact", "addressingStyle", None),
    ("S3ArtifactRepository", "addressingStyle", None),
    (
        "Cache",
        "configMap",
        Some(r##"{"$ref": "#/definitions/io.k8s.api.core.v1.ConfigMapKeySelector"}"##),
    ),
    (
        "Synchronization",
        "mutex",
        Some(r##"{"$ref": "#/definitions/io.argoproj.workflow.v1alpha1.Mutex"}"##),
    ),
    (
        "Synchronization",
        "semaphore",
        Some(r##"{"$ref": "#/definitions/io.argoproj.workflow.v1alpha1.SemaphoreRef"}"##),
    ),
    (
        "CronWorkflowSpec",
        "schedule",
        Some(r#"{"type": "string"}"#),
    ),
];
/// Required fields 4.1 added: (definition, field).
const V3_7_NOT_REQUIRED: &[(&str, &str)] = &[("CronWorkflowSpec", "schedules")];

impl Schemas {
    /// Argo Workflows' and Argo Events' schemas as vendored in this repository (Argo Workflows 4.1).
    pub fn argo() -> Result<Schemas, SchemaError> {
        Schemas::for_version(ArgoVersion::V4_1)
    }

    /// The schemas of an Argo Workflows release line (and Argo Events 1.9).
    pub fn for_version(version: ArgoVersion) -> Result<Schemas, SchemaError> {
        let mut schemas = Schemas::from_texts(&[WORKFLOWS_SCHEMA, EVENTS_SCHEMA])?;
        if version == ArgoVersion::V3_7 {
            let defs = schemas
                .definitions
                .first_mut()
                .ok_or_else(|| SchemaError("no workflows schema".into()))?;
            for (def, property, v37) in V3_7_PROPERTIES {
                let name = format!("io.argoproj.workflow.v1alpha1.{def}");
                let properties = defs
                    .get_mut(&name)
                    .and_then(|d| d.get_mut("properties"))
                    .and_then(Value::as_object_mut)
                    .ok_or_else(|| SchemaError(format!("{name} has no properties")))?;
                match v37 {
                    None => {
                        properties.remove(*property);
                    }
                    Some(schema) => {
                        let value: Value = serde_json::from_str(schema)
                            .map_err(|e| SchemaError(format!("{name}.{property}: {e}")))?;
                        properties.insert((*property).to_string(), value);
                    }
                }
            }
            for (def, field) in V3_7_NOT_REQUIRED {
                let name = format!("io.argoproj.workflow.v1alpha1.{def}");
                if let Some(required) = defs
                    .get_mut(&name)
                    .and_then(|d| d.get_mut("required"))
                    .and_then(Value::as_array_mut)
                {
                    required.retain(|r| r.as_str() != Some(*field));
                }
            }
        }
        Ok(schemas)
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
            let mut defs: BTreeMap<String, Value> = defs.clone().into_iter().collect();
            if let Some(d) = defs.get_mut(INT_OR_STRING) {
                *d = serde_json::json!({"type": ["integer", "string"]});
            }
            definitions.push(defs);
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
                "retryStrategy": {"limit": true},
                "dag": {"tasks": [{"name": "a", "dependancies": ["b"]}]},
                "container": {"args": ["a"]}}]}});
        let v = argo().validate(&doc);
        let text: Vec<String> = v
            .iter()
            .map(|v| format!("{}: {}", v.path, v.message))
            .collect();
        assert!(
            text.contains(
                &"spec.templates[0].retryStrategy.limit: is a boolean (true), the schema wants integer or string"
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

    /// IntOrString fields take a number or a string, as the Go type and the CRDs do
    /// (schema.json itself says string: v4.1.2 api/jsonschema/schema.json line 12016).
    #[test]
    fn int_or_string_fields_take_numbers_and_strings() {
        for limit in [json!(2), json!("2")] {
            let doc = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
                "metadata": {"name": "t"},
                "spec": {"templates": [{"name": "main", "activeDeadlineSeconds": limit,
                    "retryStrategy": {"limit": limit, "backoff": {"duration": "1s", "factor": limit}},
                    "container": {"image": "x"}}]}});
            for version in [ArgoVersion::V4_1, ArgoVersion::V3_7] {
                let v = Schemas::for_version(version).unwrap().validate(&doc);
                assert_eq!(v, vec![], "{version:?}");
            }
        }
    }

    /// The 3.7 schema differs from 4.1's where the two releases differ (v3.7.18 and v4.1.2
    /// api/jsonschema/schema.json): pendingTimeout is 4.1 only, the singular mutex 3.7 only.
    #[test]
    fn each_version_has_its_own_fields() {
        let doc = |template: Value| {
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
                "metadata": {"name": "t"}, "spec": {"templates": [template]}})
        };
        let pending =
            doc(json!({"name": "a", "pendingTimeout": "5m", "container": {"image": "x"}}));
        let mutex = doc(
            json!({"name": "a", "synchronization": {"mutex": {"name": "m"}}, "container": {"image": "x"}}),
        );
        let v41 = Schemas::for_version(ArgoVersion::V4_1).unwrap();
        let v37 = Schemas::for_version(ArgoVersion::V3_7).unwrap();
        assert_eq!(v41.validate(&pending), vec![]);
        assert!(
            v37.validate(&pending)[0]
                .message
                .starts_with("unknown field \"pendingTimeout\"")
        );
        assert_eq!(v37.validate(&mutex), vec![]);
        assert!(
            v41.validate(&mutex)[0]
                .message
                .starts_with("unknown field \"mutex\"")
        );
        let cron = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow",
            "metadata": {"name": "c"}, "spec": {"schedule": "* * * * *", "workflowSpec": {}}});
        assert_eq!(v37.validate(&cron), vec![]);
        let v = v41.validate(&cron);
        assert!(
            v.iter()
                .any(|v| v.message == "required field \"schedules\" is missing"),
            "{v:?}"
        );
    }

    #[test]
    fn an_unknown_kind_is_one_violation() {
        let v = argo().validate(&json!({"kind": "Workflw"}));
        assert_eq!(v.len(), 1);
        assert!(v[0].message.contains("not one of Argo's kinds"));
    }
}
