//! `medallion lint`: offline checks of Argo YAML beyond the schema, each mirroring what Argo or
//! Argo Events does with the documents on a cluster. Every rule that follows Argo's behaviour
//! names the file and line of Argo's source it mirrors (`Finding::source`).
//!
//! - [`references`]: every template reference resolves, every `{{...}}` variable names
//!   something declared, DAG dependencies exist and have no cycle, Sensor triggers submit
//!   templates that exist with parameters they declare (Medallion's own checks).
//! - [`validate`]: the rules Argo Workflows applies when a Workflow or template is submitted
//!   (workflow/validate/validate.go and the types' decoders).
//! - [`runtime`]: what the Argo controller, server and UI do with valid documents that makes
//!   them fail on a cluster (retries, suspend and the Resume dialog, deadlines, memoization,
//!   the agent pod, entrypoint look-ups, artifact repositories).
//! - [`events`]: Argo Events' Sensor validation and trigger, filter and EventSource behaviour.
//! - [`medallion`]: how Medallion's steps must be wired on a cluster (retry classes, lake URL,
//!   the plugin's lake, workload identity).
//! - [`images`]: every image is one this repository builds or an allowed upstream image.
//!
//! Pure functions over parsed documents; reading files is the caller's job.

mod events;
mod images;
mod library;
mod medallion;
mod references;
mod runtime;
mod validate;

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

pub use images::{UPSTREAM_IMAGES, image_name, upstream_image};
pub use references::depends_names;

use crate::schema::{ArgoVersion, Schemas};
use library::Library;

/// One YAML document of one file.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: String,
    /// 1-based position of the document in its file.
    pub index: usize,
    pub value: Value,
}

impl Document {
    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub(crate) fn label(&self) -> String {
        format!(
            "{}: document {} ({} {})",
            self.file,
            self.index,
            if self.kind().is_empty() {
                "?"
            } else {
                self.kind()
            },
            if self.name().is_empty() {
                "?"
            } else {
                self.name()
            }
        )
    }
}

/// A problem: the document it is in, the path inside it, what is wrong, and the source file and
/// line of Argo (or Argo Events) whose behaviour the rule mirrors (empty for Medallion's own
/// reference and image checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub document: String,
    pub path: String,
    pub message: String,
    pub source: &'static str,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.document, self.path, self.message)?;
        if !self.source.is_empty() {
            write!(f, " [{}]", self.source)?;
        }
        Ok(())
    }
}

/// What the checks need to know beyond the documents.
#[derive(Debug, Clone, Default)]
pub struct LintConfig {
    /// Image names (the last path segment without tag, e.g. `medallion-import`) this repository
    /// builds. `None` skips the image check.
    pub images: Option<BTreeSet<String>>,
    /// The Argo Workflows release line whose rules apply (the schema is chosen by the caller).
    pub argo_version: ArgoVersion,
}

/// The outcome: findings, and how many documents each check saw.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub documents: usize,
    pub schema_checked: usize,
    /// Documents of kinds Argo's schemas do not define (ConfigMap, RBAC, Kustomization...):
    /// `(label, kind)`; their images are still checked.
    pub other_kinds: Vec<(String, String)>,
}

static VARIABLE: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a constant pattern
    Regex::new(r"\{\{\s*([^}=\s][^}]*?)\s*\}\}").expect("valid pattern")
});

/// The `{{...}}` variables in a string (expression templates `{{=...}}` are skipped).
pub fn variables(text: &str) -> impl Iterator<Item = &str> {
    VARIABLE
        .captures_iter(text)
        .filter_map(|c| c.get(1).map(|m| m.as_str()))
}

/// Where a rule's findings go, for one document.
pub(crate) struct Sink<'r> {
    label: String,
    findings: &'r mut Vec<Finding>,
}

impl Sink<'_> {
    pub(crate) fn add(&mut self, path: &str, message: String, source: &'static str) {
        self.findings.push(Finding {
            document: self.label.clone(),
            path: path.to_string(),
            message,
            source,
        });
    }
}

/// What every rule may consult besides its document.
pub(crate) struct Context<'a> {
    pub docs: &'a [Document],
    pub library: Library<'a>,
    pub config: &'a LintConfig,
}

/// The workflow spec of a WorkflowTemplate, ClusterWorkflowTemplate or Workflow (`spec`) or of
/// a CronWorkflow (`spec.workflowSpec`), with its path.
pub(crate) fn workflow_spec(doc: &Document) -> Option<(&Value, &'static str)> {
    match doc.kind() {
        "WorkflowTemplate" | "ClusterWorkflowTemplate" | "Workflow" => {
            doc.value.get("spec").map(|s| (s, "spec"))
        }
        "CronWorkflow" => doc
            .value
            .pointer("/spec/workflowSpec")
            .map(|s| (s, "spec.workflowSpec")),
        _ => None,
    }
}

/// The templates of a workflow spec with their paths.
pub(crate) fn templates<'a>(spec: &'a Value, at: &str) -> Vec<(String, &'a Value)> {
    spec.get("templates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, t)| (format!("{at}.templates[{i}]"), t))
        .collect()
}

/// A string field of a JSON object ("" when absent).
pub(crate) fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The elements of the list at `pointer` (none when it is absent or not a list).
pub(crate) fn list<'a>(value: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// What Argo refuses when these documents are created or submitted: its schema (the API
/// server and the controller decode strictly) and the rules of validate.go, and nothing of
/// lint's predictions about run time. `medallion run` applies it before running, as
/// `argo submit` does.
pub fn submission(docs: &[Document], schemas: &Schemas, version: ArgoVersion) -> Vec<Finding> {
    let config = LintConfig {
        images: None,
        argo_version: version,
    };
    let context = Context {
        docs,
        library: Library::new(docs),
        config: &config,
    };
    let mut findings = Vec::new();
    for d in docs.iter().filter(|d| workflow_spec(d).is_some()) {
        let mut sink = Sink {
            label: d.label(),
            findings: &mut findings,
        };
        for v in schemas.validate(&d.value) {
            sink.add(&v.path, v.message, "");
        }
        validate::check(d, &context, &mut sink);
    }
    findings
}

/// Runs every check over the documents.
pub fn lint(docs: &[Document], schemas: &Schemas, config: &LintConfig) -> Report {
    let mut report = Report {
        documents: docs.len(),
        ..Report::default()
    };
    let context = Context {
        docs,
        library: Library::new(docs),
        config,
    };
    let mut findings = Vec::new();
    for d in docs {
        if d.value.is_null() {
            continue;
        }
        let mut sink = Sink {
            label: d.label(),
            findings: &mut findings,
        };
        if schemas.knows_kind(d.kind()) {
            report.schema_checked += 1;
            for v in schemas.validate(&d.value) {
                sink.add(&v.path, v.message, "");
            }
        } else {
            report.other_kinds.push((d.label(), d.kind().to_string()));
        }
        if let Some(images) = &config.images {
            images::check(d, images, &mut sink);
        }
        references::check(d, &context, schemas, &mut sink);
        validate::check(d, &context, &mut sink);
        runtime::check(d, &context, &mut sink);
        events::check(d, &context, &mut sink);
        medallion::check(d, &context, &mut sink);
    }
    runtime::check_all(&context, &mut findings);
    medallion::check_all(&context, &mut findings);
    report.findings = findings;
    report
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub fn doc(v: Value) -> Document {
        Document {
            file: "t.yaml".into(),
            index: 1,
            value: v,
        }
    }

    /// Every finding over the documents, with the rules of `version` (images not checked).
    pub fn findings_for(docs: &[Document], version: ArgoVersion) -> Vec<Finding> {
        let schemas = Schemas::for_version(version).unwrap();
        let config = LintConfig {
            images: None,
            argo_version: version,
        };
        lint(docs, &schemas, &config).findings
    }

    /// `path: message` of every finding (Argo 4.1, medallion-import the one image built).
    pub fn messages(docs: &[Document]) -> Vec<String> {
        let config = LintConfig {
            images: Some(["medallion-import".to_string()].into_iter().collect()),
            argo_version: ArgoVersion::V4_1,
        };
        lint(docs, &Schemas::argo().unwrap(), &config)
            .findings
            .iter()
            .map(|f| format!("{}: {}", f.path, f.message))
            .collect()
    }

    /// The one finding whose message starts with `start`, or a panic listing them all.
    pub fn finding<'a>(all: &'a [Finding], start: &str) -> &'a Finding {
        let hits: Vec<&Finding> = all
            .iter()
            .filter(|f| f.message.starts_with(start))
            .collect();
        assert_eq!(hits.len(), 1, "one finding starting {start:?} in {all:#?}");
        hits[0]
    }
}
