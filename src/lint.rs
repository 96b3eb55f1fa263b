//! `medallion lint`: every YAML document under the given folders (default: workflow-templates/,
//! event-sources/, executor-plugin/, install/) or on standard input (`-`) against Argo's JSON
//! schemas and the rules of `medallion_argo::lint`, for the Argo version the cluster runs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use medallion_argo::lint::{Document, LintConfig, Report, lint};
use medallion_argo::schema::{ArgoVersion, Schemas};
use serde::Deserialize;
use serde_json::{Value, json};

/// A file that cannot be read or parsed, or lint findings: exit 2 either way.
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    #[error("{path}: {message}")]
    Input { path: String, message: String },
    #[error("{0} problem(s) found (listed above); fix them and run `medallion lint` again")]
    Findings(usize),
}

pub const DEFAULT_DIRS: &[&str] = &[
    "workflow-templates",
    "event-sources",
    "executor-plugin",
    "install",
];

/// `--argo-version`: the Argo Workflows release lines whose schema and rules lint knows.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ArgoVersionArg {
    #[value(name = "4.1")]
    V4_1,
    #[value(name = "3.7")]
    V3_7,
}

impl From<ArgoVersionArg> for ArgoVersion {
    fn from(v: ArgoVersionArg) -> ArgoVersion {
        match v {
            ArgoVersionArg::V4_1 => ArgoVersion::V4_1,
            ArgoVersionArg::V3_7 => ArgoVersion::V3_7,
        }
    }
}

/// The path that stands for standard input.
const STDIN: &str = "-";

fn input_error(path: &Path, message: impl Into<String>) -> LintError {
    LintError::Input {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// The YAML files under the paths (a file is taken as it is), sorted.
pub fn yaml_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LintError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_file() || p.as_os_str() == STDIN {
            out.push(p.clone());
            continue;
        }
        let entries = std::fs::read_dir(p).map_err(|e| {
            input_error(
                p,
                format!("cannot be read ({e}); pass the folders or files to check"),
            )
        })?;
        let mut here = Vec::new();
        for e in entries {
            let path = e.map_err(|e| input_error(p, e.to_string()))?.path();
            if path.is_dir() {
                here.extend(yaml_files(&[path])?);
            } else if path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                here.push(path);
            }
        }
        here.sort();
        out.extend(here);
    }
    Ok(out)
}

/// Every document of a multi-document YAML file, as JSON values.
pub fn documents(path: &Path) -> Result<Vec<Document>, LintError> {
    let text = if path.as_os_str() == STDIN {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| input_error(path, e.to_string()))?;
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
        let value = Value::deserialize(doc)
            .map_err(|e| input_error(path, format!("document {}: not valid YAML: {e}", i + 1)))?;
        out.push(Document {
            file: path.display().to_string(),
            index: i + 1,
            value,
        });
    }
    Ok(out)
}

/// The final stages of a Dockerfile named `medallion-*`: the images this repository builds.
pub fn dockerfile_targets(path: &Path) -> Result<BTreeSet<String>, LintError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        input_error(
            path,
            format!("cannot be read ({e}); pass --dockerfile or run from the repository root"),
        )
    })?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                [from, _, as_, name]
                    if from.eq_ignore_ascii_case("FROM") && as_.eq_ignore_ascii_case("AS") =>
                {
                    Some(name.to_string())
                }
                _ => None,
            }
        })
        .filter(|n| n.starts_with("medallion-"))
        .collect())
}

pub fn load(paths: &[PathBuf]) -> Result<Vec<Document>, LintError> {
    let mut docs = Vec::new();
    for f in yaml_files(paths)? {
        docs.extend(documents(&f)?);
    }
    Ok(docs)
}

pub fn check(
    paths: &[PathBuf],
    dockerfile: &Path,
    version: ArgoVersion,
) -> Result<Report, LintError> {
    let docs = load(paths)?;
    let schemas = Schemas::for_version(version)
        .map_err(|e| input_error(Path::new("schemas/argo"), e.to_string()))?;
    let config = LintConfig {
        images: Some(dockerfile_targets(dockerfile)?),
        argo_version: version,
    };
    Ok(lint(&docs, &schemas, &config))
}

pub fn run(
    paths: &[PathBuf],
    dockerfile: &Path,
    version: ArgoVersion,
    json_format: bool,
) -> Result<(), LintError> {
    let report = check(paths, dockerfile, version)?;
    if json_format {
        let findings: Vec<Value> = report
            .findings
            .iter()
            .map(|f| json!({"document": f.document, "path": f.path, "message": f.message, "source": f.source}))
            .collect();
        println!(
            "{}",
            json!({"documents": report.documents, "schema_checked": report.schema_checked,
                   "argo_version": version.as_str(), "findings": findings})
        );
    } else {
        for f in &report.findings {
            println!("{f}");
        }
        let others: BTreeSet<&str> = report
            .other_kinds
            .iter()
            .map(|(_, k)| {
                if k.is_empty() {
                    "(no kind)"
                } else {
                    k.as_str()
                }
            })
            .collect();
        println!(
            "{} documents, {} checked against Argo {}'s schemas{}; {} problem(s)",
            report.documents,
            report.schema_checked,
            version.as_str(),
            if others.is_empty() {
                String::new()
            } else {
                format!(
                    " (not Argo kinds, references and images only: {})",
                    others.into_iter().collect::<Vec<_>>().join(", ")
                )
            },
            report.findings.len()
        );
    }
    if report.findings.is_empty() {
        Ok(())
    } else {
        Err(LintError::Findings(report.findings.len()))
    }
}
