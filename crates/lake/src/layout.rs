//! The lake layout (DESIGN.md §2): where every layer, dataset and version lives under a lake root.
//!
//! ```text
//! <lake>/bronze/<dataset>/v<N>/part-*.parquet + _manifest.json
//! <lake>/silver/<dataset>/v<N>/...             + _manifest.json
//! <lake>/quarantine/<layer>/<dataset>/v<N>/rejects-*.parquet
//! <lake>/<layer>/<dataset>/_sources/<identity-key>.json   (source identity → version index)
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A versioned layer of the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Bronze,
    Silver,
    Models,
}

impl Layer {
    pub const ALL: [Layer; 3] = [Layer::Bronze, Layer::Silver, Layer::Models];

    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Bronze => "bronze",
            Layer::Silver => "silver",
            Layer::Models => "models",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Layer {
    type Err = Error;
    fn from_str(s: &str) -> Result<Layer> {
        Layer::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| Error::InvalidName {
                what: "layer",
                name: s.to_string(),
                reason: "use bronze, silver or models",
            })
    }
}

/// A dataset (or model) name: 1-64 characters of lowercase letters, digits, `-` and `_`,
/// starting with a letter or digit. Nothing that could name a path outside its folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DatasetName(String);

impl DatasetName {
    pub fn new(name: &str) -> Result<DatasetName> {
        let bad = |reason| Error::InvalidName {
            what: "dataset",
            name: name.chars().take(80).collect(),
            reason,
        };
        if name.is_empty() || name.len() > 64 {
            return Err(bad("it must be 1 to 64 characters"));
        }
        if name.contains("..") || name.contains('/') || name.contains('\\') {
            return Err(bad(
                "it may not contain '/', '\\' or '..': it must stay inside the lake",
            ));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(bad("use lowercase letters, digits, '-' and '_' only"));
        }
        if !name.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(bad("it must start with a letter or digit"));
        }
        Ok(DatasetName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for DatasetName {
    type Error = Error;
    fn try_from(s: String) -> Result<DatasetName> {
        DatasetName::new(&s)
    }
}

impl From<DatasetName> for String {
    fn from(d: DatasetName) -> String {
        d.0
    }
}

impl FromStr for DatasetName {
    type Err = Error;
    fn from_str(s: &str) -> Result<DatasetName> {
        DatasetName::new(s)
    }
}

/// The manifest's file name: a version exists exactly when this object exists.
pub const MANIFEST: &str = "_manifest.json";

/// `<layer>/<dataset>`
pub fn dataset_dir(layer: Layer, dataset: &DatasetName) -> String {
    format!("{layer}/{dataset}")
}

/// `<layer>/<dataset>/v<N>`
pub fn version_dir(layer: Layer, dataset: &DatasetName, version: u64) -> String {
    format!("{layer}/{dataset}/v{version}")
}

/// `<layer>/<dataset>/v<N>/_manifest.json`
pub fn manifest_path(layer: Layer, dataset: &DatasetName, version: u64) -> String {
    format!("{}/{MANIFEST}", version_dir(layer, dataset, version))
}

/// `quarantine/<layer>/<dataset>/v<N>` (rows a version of `dataset` in `layer` rejected)
pub fn quarantine_dir(layer: Layer, dataset: &DatasetName, version: u64) -> String {
    format!("quarantine/{layer}/{dataset}/v{version}")
}

/// `profiles/<layer>/<dataset>/v<N>` (profile.json and report.html of a version)
pub fn profile_dir(layer: Layer, dataset: &DatasetName, version: u64) -> String {
    format!("profiles/{layer}/{dataset}/v{version}")
}

/// `<layer>/<dataset>/_sources/<key>.json`
pub fn source_index_path(layer: Layer, dataset: &DatasetName, key: &str) -> String {
    format!("{layer}/{dataset}/_sources/{key}.json")
}

/// `models/<model>/aliases/<alias>.json` (which version an alias such as `production` names)
pub fn alias_path(model: &DatasetName, alias: &DatasetName) -> String {
    format!("models/{model}/aliases/{alias}.json")
}

/// `models/<model>/v<N>/<file>` (model.json, metrics.json, card.html)
/// History entry `seq` of an alias (created once; the highest is the alias's current value).
pub fn alias_history_path(model: &DatasetName, alias: &DatasetName, seq: u64) -> String {
    format!("models/{model}/aliases/{alias}/{seq:08}.json")
}

pub fn model_file(model: &DatasetName, version: u64, file: &str) -> String {
    format!("{}/{file}", version_dir(Layer::Models, model, version))
}

/// `approvals/<workflow-uid>/<gate>` (request.json from the gate, decision.json from a person)
pub fn approval_dir(workflow_uid: &str, gate: &DatasetName) -> String {
    format!("approvals/{workflow_uid}/{gate}")
}

/// `releases/<endpoint>/<plan-id>` (plan.json, approval.json, result.json)
pub fn release_dir(endpoint: &DatasetName, plan_id: &str) -> String {
    format!("releases/{endpoint}/{plan_id}")
}

/// Parses a `v<N>` folder name.
pub fn parse_version_dir(name: &str) -> Option<u64> {
    let digits = name.strip_prefix('v')?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names() {
        for ok in ["houses", "sales-mx", "sales_2026", "a", "9lives"] {
            DatasetName::new(ok).unwrap();
        }
        for bad in [
            "",
            "../etc",
            "a/b",
            "Houses",
            "-x",
            "_x",
            "a..b",
            "x y",
            &"a".repeat(65),
        ] {
            let err = DatasetName::new(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn paths() {
        let d = DatasetName::new("houses").unwrap();
        assert_eq!(
            manifest_path(Layer::Bronze, &d, 3),
            "bronze/houses/v3/_manifest.json"
        );
        assert_eq!(
            quarantine_dir(Layer::Silver, &d, 3),
            "quarantine/silver/houses/v3"
        );
        assert_eq!(parse_version_dir("v12"), Some(12));
        for bad in ["v", "v0", "v01", "x1", "v1a", "_sources"] {
            assert_eq!(parse_version_dir(bad), None, "{bad}");
        }
    }
}
