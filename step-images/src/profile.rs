//! The profile step: parameters and the call into the quality library.

use std::path::PathBuf;

use medallion_lake::{DatasetName, Layer, Registry, StoreLocation};
use medallion_quality::contract::Contract;
use medallion_quality::profile::{self, ProfileOutcome, ProfileRequest};

use crate::StepOutputs;

/// The profile step's parameters (the template's input parameters, one to one).
#[derive(clap::Args, Debug, Clone)]
pub struct ProfileArgs {
    /// Lake root (local path or az://, abfss://, https:// URL)
    #[arg(long, env = "MEDALLION_LAKE")]
    pub lake: String,
    /// Layer of the version: bronze or silver
    #[arg(long, env = "MEDALLION_LAYER", default_value = "silver")]
    pub layer: Layer,
    /// Dataset name
    #[arg(long, env = "MEDALLION_DATASET")]
    pub dataset: String,
    /// Version to profile (default: the latest)
    #[arg(long, env = "MEDALLION_VERSION")]
    pub version: Option<u64>,
    /// Re-check this data contract's rules and count what breaks them
    #[arg(long, env = "MEDALLION_CONTRACT")]
    pub contract: Option<PathBuf>,
    /// Drift reference as layer/dataset/version (default: the previous version of the dataset)
    #[arg(long, env = "MEDALLION_AGAINST", conflicts_with = "against_model")]
    pub against: Option<String>,
    /// Drift reference: the data the model named by an alias learnt from, as model[@alias]
    /// (default alias production), e.g. house-price for captured requests; empty = unset
    #[arg(long, env = "MEDALLION_AGAINST_MODEL")]
    pub against_model: Option<String>,
    /// A column drifts when its population stability index exceeds this
    #[arg(long, env = "MEDALLION_DRIFT_THRESHOLD", default_value_t = 0.2)]
    pub drift_threshold: f64,
    /// Where to write the outputs (and profile.json, report.html)
    #[arg(long, env = "MEDALLION_OUTPUTS_DIR", default_value = "/tmp/outputs")]
    pub outputs_dir: PathBuf,
}

fn parse_against(s: &str) -> Result<(Layer, DatasetName, u64), medallion_quality::Error> {
    let bad = || medallion_lake::Error::InvalidName {
        what: "drift reference",
        name: s.to_string(),
        reason: "write it as layer/dataset/version, e.g. silver/houses/3",
    };
    let parts: Vec<&str> = s.split('/').collect();
    let [layer, dataset, version] = parts[..] else {
        return Err(bad().into());
    };
    let version = version.trim_start_matches('v').parse().map_err(|_| bad())?;
    Ok((layer.parse()?, DatasetName::new(dataset)?, version))
}

/// The data version a model version learnt from (its manifest's first parent), for
/// `model[@alias]` (alias default `production`).
async fn training_data_of(
    registry: &Registry,
    spec: &str,
) -> Result<(Layer, DatasetName, u64), medallion_quality::Error> {
    let (model, alias) = spec.split_once('@').unwrap_or((spec, "production"));
    let fail = |message: String| medallion_quality::Error::Mismatch {
        version: format!("--against-model {spec}"),
        message,
    };
    let model = DatasetName::new(model)?;
    let alias = DatasetName::new(alias)?;
    let lake = registry.lake();
    let named = medallion_release::models::alias(lake, &model, &alias)
        .await
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| {
            fail(format!(
                "model {model} has no alias {alias}; nothing to compare with (release a version first)"
            ))
        })?;
    let manifest =
        medallion_release::models::manifest_json(lake, Layer::Models, &model, named.version)
            .await
            .map_err(|e| fail(e.to_string()))?;
    let parent = manifest.pointer("/parents/0").ok_or_else(|| {
        fail(format!(
            "model {model} v{} records no training data",
            named.version
        ))
    })?;
    let text = |k: &str| parent.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let version = parent
        .get("version")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| fail("the training data's version is missing".into()))?;
    Ok((
        text("layer").parse()?,
        DatasetName::new(text("dataset"))?,
        version,
    ))
}

/// Runs the profile these arguments describe.
pub async fn run(args: &ProfileArgs) -> Result<ProfileOutcome, medallion_quality::Error> {
    let contract = args.contract.as_deref().map(Contract::load).transpose()?;
    let registry = Registry::new(StoreLocation::open("lake", &args.lake)?);
    let against = match (
        args.against.as_deref().filter(|s| !s.is_empty()),
        args.against_model.as_deref().filter(|s| !s.is_empty()),
    ) {
        (Some(a), _) => Some(parse_against(a)?),
        (None, Some(m)) => Some(training_data_of(&registry, m).await?),
        (None, None) => None,
    };
    let request = ProfileRequest {
        layer: args.layer,
        dataset: DatasetName::new(&args.dataset)?,
        version: args.version,
        contract,
        against,
        drift_threshold: args.drift_threshold,
    };
    profile::profile(&registry, request).await
}

/// The step's output parameters (profile.json and report.html are written beside them).
pub fn outputs(outcome: &ProfileOutcome) -> StepOutputs {
    let p = &outcome.profile;
    let drifted: Vec<&str> = p
        .drift
        .as_ref()
        .map(|d| d.drifted_columns())
        .unwrap_or_default();
    let broken: u64 = p.columns.iter().flat_map(|c| c.violations.values()).sum();
    let mut out = StepOutputs::new();
    out.set("version", p.version)
        .set("rows", p.rows)
        .set("drift", p.drift.as_ref().is_some_and(|d| d.drift))
        .set("drift-columns", serde_json::json!(drifted))
        .set(
            "drift-scores",
            serde_json::json!(
                p.drift
                    .as_ref()
                    .map(|d| d
                        .columns
                        .iter()
                        .map(|c| (c.column.clone(), c.psi))
                        .collect::<std::collections::BTreeMap<_, _>>())
                    .unwrap_or_default()
            ),
        )
        .set("violations", broken)
        .set("uri", outcome.uri.clone())
        .set("profile.json", outcome.json.clone())
        .set("report.html", outcome.html.clone());
    out
}
