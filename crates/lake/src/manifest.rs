//! The manifest: the one object whose conditional creation makes a version exist.
//!
//! It records what a version holds (files, rows, bytes, schema, content hash), where it came from
//! (source identity, parent versions), who made it (code version, Argo workflow) and how long it
//! took. It never holds a secret: URLs in it are canonical and credential-free.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::layout::{DatasetName, Layer};

/// Bumped when the manifest's meaning changes; readers refuse newer formats.
pub const MANIFEST_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub layer: Layer,
    pub dataset: DatasetName,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub rows: u64,
    /// Total bytes of the data files.
    pub bytes: u64,
    pub schema: Vec<ColumnSchema>,
    /// SHA-256 over the data files' own SHA-256 digests, in order.
    pub content_sha256: String,
    /// Data files, relative to the version folder.
    pub files: Vec<DataFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceIdentity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<VersionRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<QuarantineRecord>,
    pub producer: Producer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<WorkflowRef>,
    pub timings: Timings,
    /// Step-specific details (for import: format, dialect, encoding, compression).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, serde_json::Value>,
}

impl Manifest {
    /// The manifest of a new version of `dataset` in `layer`: rows, bytes, schema and content
    /// hash come from the files; source, parents, quarantine, workflow and details start empty.
    pub fn new_version(
        layer: Layer,
        dataset: &DatasetName,
        version: u64,
        schema: &arrow_schema::Schema,
        files: Vec<DataFile>,
        producer: Producer,
        timings: Timings,
    ) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            layer,
            dataset: dataset.clone(),
            version,
            created_at: chrono::Utc::now(),
            rows: files.iter().map(|f| f.rows).sum(),
            bytes: files.iter().map(|f| f.bytes).sum(),
            schema: schema
                .fields()
                .iter()
                .map(|f| ColumnSchema {
                    name: f.name().clone(),
                    data_type: f.data_type().to_string(),
                    nullable: f.is_nullable(),
                })
                .collect(),
            content_sha256: content_hash(&files),
            files,
            source: None,
            parents: Vec::new(),
            quarantine: None,
            producer,
            workflow: None,
            timings,
            details: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSchema {
    pub name: String,
    /// Arrow type as Arrow prints it (`Utf8`, `Int64`, `Timestamp(µs, "UTC")`).
    pub data_type: String,
    pub nullable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    /// File name inside the version folder.
    pub name: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// Where the rows of a version came from. The identity is URL + ETag when the store gives one,
/// else the content's SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceIdentity {
    /// Canonical, credential-free URL.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<DateTime<Utc>>,
}

impl SourceIdentity {
    /// Strips the quotes and weak marker some stores and Event Grid put around an ETag.
    pub fn normalize_etag(etag: &str) -> String {
        etag.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_string()
    }

    /// A stable key for the identity index: SHA-256 of `url + etag`, or of the content digest.
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        match (&self.etag, &self.sha256) {
            (Some(etag), _) => {
                h.update(b"url+etag\n");
                h.update(self.url.as_bytes());
                h.update(b"\n");
                h.update(Self::normalize_etag(etag).as_bytes());
            }
            (None, Some(sha)) => {
                h.update(b"sha256\n");
                h.update(sha.as_bytes());
            }
            (None, None) => {
                h.update(b"url\n");
                h.update(self.url.as_bytes());
            }
        }
        hex::encode(h.finalize())
    }

    /// Whether two identities name the same source content.
    pub fn same_as(&self, other: &SourceIdentity) -> bool {
        self.key() == other.key()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRef {
    pub layer: Layer,
    pub dataset: DatasetName,
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRecord {
    /// File name inside `quarantine/<layer>/<dataset>/v<N>/`.
    pub file: String,
    pub rows: u64,
}

/// The code that wrote a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Producer {
    pub tool: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

impl Producer {
    /// This build of `tool`: the crate version, plus the git revision when the build set
    /// `MEDALLION_REVISION`.
    pub fn current(tool: &str) -> Producer {
        Producer {
            tool: tool.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: option_env!("MEDALLION_REVISION").map(str::to_string),
        }
    }
}

/// The Argo workflow that produced a version, when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl WorkflowRef {
    /// Reads `MEDALLION_WORKFLOW_NAME`/`_UID`/`_NAMESPACE` (set by the templates from
    /// `{{workflow.name}}`...), falling back to `ARGO_WORKFLOW_NAME`/`ARGO_WORKFLOW_UID`.
    pub fn from_env() -> Option<WorkflowRef> {
        let get = |a: &str, b: &str| {
            std::env::var(a)
                .ok()
                .or_else(|| std::env::var(b).ok())
                .filter(|v| !v.is_empty())
        };
        let name = get("MEDALLION_WORKFLOW_NAME", "ARGO_WORKFLOW_NAME")?;
        Some(WorkflowRef {
            name,
            uid: get("MEDALLION_WORKFLOW_UID", "ARGO_WORKFLOW_UID"),
            namespace: get("MEDALLION_WORKFLOW_NAMESPACE", "ARGO_WORKFLOW_NAMESPACE"),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Seconds per phase (e.g. `hash`, `convert`, `commit`).
    #[serde(default)]
    pub phases: BTreeMap<String, f64>,
}

/// SHA-256 over the files' digests, in order: the version's content hash.
pub fn content_hash(files: &[DataFile]) -> String {
    let mut h = Sha256::new();
    for f in files {
        h.update(f.sha256.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(url: &str, etag: Option<&str>, sha: Option<&str>) -> SourceIdentity {
        SourceIdentity {
            url: url.into(),
            etag: etag.map(Into::into),
            sha256: sha.map(Into::into),
            size: 1,
            last_modified: None,
        }
    }

    #[test]
    fn etag_quotes_do_not_change_identity() {
        let a = ident(
            "https://a.blob.core.windows.net/c/x.csv",
            Some("\"0x8D4BCC2E4835CD0\""),
            None,
        );
        let b = ident(
            "https://a.blob.core.windows.net/c/x.csv",
            Some("0x8D4BCC2E4835CD0"),
            None,
        );
        assert!(a.same_as(&b));
        let c = ident(
            "https://a.blob.core.windows.net/c/y.csv",
            Some("0x8D4BCC2E4835CD0"),
            None,
        );
        assert!(!a.same_as(&c));
    }

    #[test]
    fn sha_identity_ignores_url() {
        let a = ident("file:///a.csv", None, Some("ab"));
        let b = ident("file:///b.csv", None, Some("ab"));
        assert!(a.same_as(&b));
        assert!(!a.same_as(&ident("file:///a.csv", None, Some("cd"))));
    }
}
