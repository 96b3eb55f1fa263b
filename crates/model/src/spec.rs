//! The model spec: what to learn, from which columns, how, and which gates a new version must
//! pass. YAML, strict (unknown fields are errors naming the line).
//!
//! ```yaml
//! model: house-price
//! task: regression                 # regression | clustering
//! target: price
//! features:
//!   - lot_size                       # a numeric column as it is
//!   - {name: location_kind, encoding: one_hot}
//!   - {name: stories, encoding: ordinal, categories: ["1", "2", "3"]}
//!   - {name: age, expr: "year(sale_date) - year_built"}
//! algorithm: {kind: gradient_boosting, learning_rate: 0.1, max_iter: 100}
//! split: {holdout: 0.2, seed: 42, k_folds: 5}
//! gates:                             # the approval policy's metric rules (medallion-release)
//!   thresholds: ["r2 >= 0.5"]
//!   not_worse_than: production
//!   tolerance: 0.02
//! ```
//!
//! Clustering builds one row per customer from sales (`customers:`): `recency_days`,
//! `frequency`, `monetary`, each optionally `log1p`-transformed, standardized, then k-means.

use std::path::Path;

use medallion_lake::DatasetName;
use medallion_release::policy::Policy;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub model: String,
    #[serde(default)]
    pub description: Option<String>,
    pub task: Task,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub features: Vec<FeatureSpec>,
    #[serde(default)]
    pub customers: Option<CustomerSpec>,
    pub algorithm: Algorithm,
    #[serde(default)]
    pub split: SplitSpec,
    #[serde(default)]
    pub gates: Option<Policy>,
    /// A failed gate fails the step (exit 3); `false` only reports it in `passed`.
    #[serde(default = "yes")]
    pub hard_gates: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Regression,
    Clustering,
}

/// A feature: a column name alone, or a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "FeatureForm", into = "FeatureTable")]
pub struct FeatureSpec {
    pub name: String,
    pub encoding: Encoding,
    /// Derived feature: an expression over numeric and date columns (see [`crate::expr`]).
    pub expr: Option<String>,
    /// Ordinal order, or the one-hot categories to keep (default: those seen in training).
    pub categories: Option<Vec<String>>,
    pub transform: Transform,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FeatureForm {
    Name(String),
    Table(FeatureTable),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeatureTable {
    name: String,
    #[serde(default)]
    encoding: Encoding,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    categories: Option<Vec<String>>,
    #[serde(default)]
    transform: Transform,
}

impl From<FeatureForm> for FeatureSpec {
    fn from(f: FeatureForm) -> FeatureSpec {
        match f {
            FeatureForm::Name(name) => FeatureSpec {
                name,
                encoding: Encoding::Numeric,
                expr: None,
                categories: None,
                transform: Transform::None,
            },
            FeatureForm::Table(t) => FeatureSpec {
                name: t.name,
                encoding: t.encoding,
                expr: t.expr,
                categories: t.categories,
                transform: t.transform,
            },
        }
    }
}

impl From<FeatureSpec> for FeatureTable {
    fn from(f: FeatureSpec) -> FeatureTable {
        FeatureTable {
            name: f.name,
            encoding: f.encoding,
            expr: f.expr,
            categories: f.categories,
            transform: f.transform,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// The value as a number (booleans 0/1, dates as days since 1970-01-01); missing → the
    /// training median.
    #[default]
    Numeric,
    /// One 0/1 feature per category seen in training (or listed); unseen → all zero.
    OneHot,
    /// The category's position in `categories` (or the sorted training categories); unseen → -1.
    Ordinal,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    #[default]
    None,
    Log1p,
}

/// How customers are built from sales rows for segmentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerSpec {
    /// Customer id column.
    pub id: String,
    /// Sale time column (timestamp or date).
    pub time: String,
    /// Columns multiplied to give a sale's amount (e.g. [quantity, unit_price]).
    pub amount: Vec<String>,
    /// Text columns summarized per segment (top values), e.g. [product, region].
    #[serde(default)]
    pub describe: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Algorithm {
    Ridge(RidgeParams),
    /// Ordinary least squares (ridge with alpha 0).
    Linear(LinearParams),
    GradientBoosting(GbtParams),
    Kmeans(KmeansParams),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RidgeParams {
    #[serde(default = "one")]
    pub alpha: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearParams {}

fn one() -> f64 {
    1.0
}

/// Defaults are scikit-learn's `HistGradientBoostingRegressor` defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GbtParams {
    pub learning_rate: f64,
    pub max_iter: u32,
    pub max_leaf_nodes: u32,
    pub max_depth: Option<u32>,
    pub min_samples_leaf: u32,
    pub l2_regularization: f64,
    pub max_bins: u32,
    /// auto: on when the training rows exceed 10,000 (as scikit-learn).
    pub early_stopping: EarlyStopping,
    pub validation_fraction: f64,
    pub n_iter_no_change: u32,
    pub tol: f64,
}

impl Default for GbtParams {
    fn default() -> GbtParams {
        GbtParams {
            learning_rate: 0.1,
            max_iter: 100,
            max_leaf_nodes: 31,
            max_depth: None,
            min_samples_leaf: 20,
            l2_regularization: 0.0,
            max_bins: 255,
            early_stopping: EarlyStopping::Auto,
            validation_fraction: 0.1,
            n_iter_no_change: 10,
            tol: 1e-7,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EarlyStopping {
    #[default]
    Auto,
    On,
    Off,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmeansParams {
    pub k: u32,
    /// Runs from different k-means++ seeds; the lowest inertia wins.
    #[serde(default = "ten")]
    pub n_init: u32,
    #[serde(default = "three_hundred")]
    pub max_iter: u32,
    #[serde(default = "kmeans_tol")]
    pub tol: f64,
}

fn ten() -> u32 {
    10
}
fn three_hundred() -> u32 {
    300
}
fn kmeans_tol() -> f64 {
    1e-4
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SplitSpec {
    /// Fraction of rows held out for the metrics.
    pub holdout: f64,
    pub seed: u64,
    /// Also cross-validate on the training rows with this many folds (metrics per fold).
    pub k_folds: Option<u32>,
}

impl Default for SplitSpec {
    fn default() -> SplitSpec {
        SplitSpec {
            holdout: 0.2,
            seed: 42,
            k_folds: None,
        }
    }
}

/// The RFM features clustering builds per customer.
pub const CUSTOMER_FEATURES: [&str; 3] = ["recency_days", "frequency", "monetary"];

impl ModelSpec {
    /// Reads and checks a spec file.
    pub fn load(path: &Path) -> Result<(ModelSpec, String)> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::spec(
                &file,
                "file",
                format!("cannot read it ({e}); pass an existing model spec with --spec"),
            )
        })?;
        let spec = ModelSpec::parse(&file, &text)?;
        Ok((spec, text))
    }

    /// Parses and checks spec text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<ModelSpec> {
        let spec: ModelSpec = serde_yaml_ng::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("line {}", l.line()))
                .unwrap_or_else(|| "spec".into());
            Error::spec(file, at, e.to_string())
        })?;
        spec.validate(file)?;
        Ok(spec)
    }

    /// SHA-256 of the spec's canonical JSON (formatting and comments do not change it).
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&json))
    }

    pub fn model_name(&self) -> Result<DatasetName> {
        Ok(DatasetName::new(&self.model)?)
    }

    fn validate(&self, file: &str) -> Result<()> {
        DatasetName::new(&self.model).map_err(|e| Error::spec(file, "model", e.to_string()))?;
        let s = &self.split;
        if !(s.holdout > 0.0 && s.holdout < 0.9) {
            return Err(Error::spec(
                file,
                "split.holdout",
                format!("{} is not a fraction in (0, 0.9)", s.holdout),
            ));
        }
        if let Some(k) = s.k_folds
            && !(2..=20).contains(&k)
        {
            return Err(Error::spec(
                file,
                "split.k_folds",
                format!("{k} is not in 2..=20"),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, f) in self.features.iter().enumerate() {
            let at = format!("features[{i}]");
            if f.name.is_empty() {
                return Err(Error::spec(file, at, "name is empty"));
            }
            if !names.insert(f.name.as_str()) {
                return Err(Error::spec(file, at, format!("{} is listed twice", f.name)));
            }
            if f.expr.is_some() && f.encoding != Encoding::Numeric {
                return Err(Error::spec(file, at, "a derived feature (expr) is numeric"));
            }
            if let Some(expr) = &f.expr {
                crate::expr::Expr::parse(expr)
                    .map_err(|m| Error::spec(file, format!("{at}.expr"), m))?;
            }
            if f.transform == Transform::Log1p && f.encoding != Encoding::Numeric {
                return Err(Error::spec(
                    file,
                    at,
                    "log1p applies to numeric features only",
                ));
            }
        }
        match (self.task, &self.algorithm) {
            (Task::Regression, Algorithm::Kmeans(_)) => {
                return Err(Error::spec(
                    file,
                    "algorithm.kind",
                    "kmeans is for task: clustering; use ridge, linear or gradient_boosting",
                ));
            }
            (Task::Clustering, Algorithm::Kmeans(_)) => {}
            (Task::Clustering, _) => {
                return Err(Error::spec(
                    file,
                    "algorithm.kind",
                    "task: clustering needs kind: kmeans",
                ));
            }
            _ => {}
        }
        match self.task {
            Task::Regression => {
                let Some(target) = &self.target else {
                    return Err(Error::spec(
                        file,
                        "target",
                        "regression needs a target column",
                    ));
                };
                if self.features.is_empty() {
                    return Err(Error::spec(file, "features", "list at least one feature"));
                }
                if names.contains(target.as_str()) {
                    return Err(Error::spec(
                        file,
                        "features",
                        format!("the target {target} cannot be a feature"),
                    ));
                }
                if self.customers.is_some() {
                    return Err(Error::spec(file, "customers", "only for task: clustering"));
                }
            }
            Task::Clustering => {
                if self.customers.is_none() {
                    return Err(Error::spec(
                        file,
                        "customers",
                        "clustering needs customers: {id, time, amount}",
                    ));
                }
                for (i, f) in self.features.iter().enumerate() {
                    if !CUSTOMER_FEATURES.contains(&f.name.as_str()) || f.expr.is_some() {
                        return Err(Error::spec(
                            file,
                            format!("features[{i}]"),
                            format!("clustering features are {}", CUSTOMER_FEATURES.join(", ")),
                        ));
                    }
                }
            }
        }
        if let Algorithm::Kmeans(k) = &self.algorithm
            && !(2..=100).contains(&k.k)
        {
            return Err(Error::spec(
                file,
                "algorithm.k",
                format!("{} is not in 2..=100", k.k),
            ));
        }
        if let Algorithm::Ridge(r) = &self.algorithm
            && !(r.alpha >= 0.0 && r.alpha.is_finite())
        {
            return Err(Error::spec(
                file,
                "algorithm.alpha",
                "must be a number >= 0",
            ));
        }
        if let Algorithm::GradientBoosting(g) = &self.algorithm {
            if !(g.learning_rate > 0.0 && g.learning_rate <= 1.0) {
                return Err(Error::spec(
                    file,
                    "algorithm.learning_rate",
                    "must be in (0, 1]",
                ));
            }
            if !(2..=255).contains(&g.max_bins) {
                return Err(Error::spec(
                    file,
                    "algorithm.max_bins",
                    "must be in 2..=255",
                ));
            }
            if g.max_leaf_nodes < 2 || g.min_samples_leaf < 1 || g.max_iter < 1 {
                return Err(Error::spec(
                    file,
                    "algorithm",
                    "max_leaf_nodes >= 2, min_samples_leaf >= 1 and max_iter >= 1",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_rejects_typos() {
        let spec = ModelSpec::parse(
            "s.yaml",
            "model: house-price\ntask: regression\ntarget: price\nfeatures:\n  - lot_size\n  - {name: location_kind, encoding: one_hot}\n  - {name: age, expr: \"year(sale_date) - year_built\"}\nalgorithm: {kind: gradient_boosting, max_iter: 50}\ngates: {thresholds: [\"r2 >= 0.5\"]}\n",
        )
        .unwrap();
        assert_eq!(spec.features.len(), 3);
        assert_eq!(spec.features[1].encoding, Encoding::OneHot);
        let Algorithm::GradientBoosting(g) = &spec.algorithm else {
            panic!("{:?}", spec.algorithm)
        };
        assert_eq!((g.max_iter, g.max_leaf_nodes), (50, 31));
        assert_eq!(spec.split.seed, 42);
        let err = ModelSpec::parse(
            "s.yaml",
            "model: m\ntask: regression\ntarget: y\nfeatures: [a]\nalgorithm: {kind: ridge, alpah: 2}\n",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("s.yaml: line"), "{err}");
        assert!(err.to_string().contains("alpah"), "{err}");
        let err = ModelSpec::parse(
            "s.yaml",
            "model: m\ntask: regression\ntarget: y\nfeatures: [a, y]\nalgorithm: {kind: ridge}\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("target y cannot be a feature"),
            "{err}"
        );
        let err = ModelSpec::parse(
            "s.yaml",
            "model: m\ntask: clustering\nalgorithm: {kind: kmeans, k: 4}\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("customers"), "{err}");
    }

    #[test]
    fn hash_ignores_formatting() {
        let a = ModelSpec::parse(
            "a",
            "model: m\ntask: regression\ntarget: y\nfeatures: [x]\nalgorithm: {kind: ridge}\n",
        )
        .unwrap();
        let b = ModelSpec::parse("b", "# comment\nmodel: m\ntask: regression\ntarget: y\nfeatures:\n  - x\nalgorithm:\n  kind: ridge\n  alpha: 1.0\n").unwrap();
        assert_eq!(a.hash(), b.hash());
    }
}
