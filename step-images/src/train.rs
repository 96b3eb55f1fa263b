//! The train step: parameters and the call into the model library.

use std::path::PathBuf;

use medallion_lake::{DatasetName, Layer, Registry, StoreLocation, WorkflowRef};
use medallion_model::spec::ModelSpec;
use medallion_model::train::{self, TrainOutcome, TrainRequest};

use crate::StepOutputs;

/// The train step's parameters (the template's input parameters, one to one).
#[derive(clap::Args, Debug, Clone)]
pub struct TrainArgs {
    /// Lake root (local path or az://, abfss://, https:// URL)
    #[arg(long, env = "MEDALLION_LAKE")]
    pub lake: String,
    /// Layer to train on
    #[arg(long, env = "MEDALLION_LAYER", default_value = "silver")]
    pub layer: Layer,
    /// Dataset name
    #[arg(long, env = "MEDALLION_DATASET")]
    pub dataset: String,
    /// Version to train on (default: the latest)
    #[arg(long, env = "MEDALLION_VERSION")]
    pub version: Option<u64>,
    /// Model spec (YAML): task, target, features, algorithm, split, gates
    #[arg(long, env = "MEDALLION_SPEC")]
    pub spec: PathBuf,
    /// Also write the encoded train/holdout matrices here (train.csv, holdout.csv)
    #[arg(long, env = "MEDALLION_EXPORT_SPLIT")]
    pub export_split: Option<PathBuf>,
    /// Where to write the outputs
    #[arg(long, env = "MEDALLION_OUTPUTS_DIR", default_value = "/tmp/outputs")]
    pub outputs_dir: PathBuf,
}

/// Trains (or finds) the model version these arguments describe, then logs it to MLflow when
/// `MLFLOW_TRACKING_URI` is set and it was not logged before (a retry after an MLflow outage
/// logs the version the failed attempt committed).
pub async fn run(args: &TrainArgs) -> Result<TrainOutcome, medallion_model::Error> {
    let (spec, _) = ModelSpec::load(&args.spec)?;
    let registry = Registry::new(StoreLocation::open("lake", &args.lake)?);
    let request = TrainRequest {
        layer: args.layer,
        dataset: DatasetName::new(&args.dataset)?,
        version: args.version,
        spec: spec.clone(),
        workflow: WorkflowRef::from_env(),
        export_split: args.export_split.clone(),
    };
    let outcome = train::train(&registry, request).await?;
    if let Some(config) = medallion_model::mlflow::Config::from_env() {
        medallion_model::mlflow::log_once(&config, &registry, &spec, &outcome).await?;
    }
    Ok(outcome)
}

/// The step's output parameters.
pub fn outputs(o: &TrainOutcome) -> StepOutputs {
    let mut out = StepOutputs::new();
    out.set("version", o.manifest.version)
        .set("created", o.created)
        .set("metrics", serde_json::json!(o.metrics))
        .set("passed", o.passed)
        .set("better_than_production", o.better_than_baseline)
        .set("gates", o.verdict.reasons())
        .set("model-uri", o.model_uri.clone())
        .set("card-uri", o.card_uri.clone())
        .set("model", o.manifest.dataset.to_string());
    out
}

/// The message that fails the step when a hard gate rejected the version.
pub fn gate_failure(o: &TrainOutcome, hard: bool) -> Option<String> {
    (hard && !o.passed).then(|| {
        format!(
            "model {} v{} failed its gates: {} (the version is kept for inspection; it was not promoted)",
            o.manifest.dataset,
            o.manifest.version,
            o.verdict.reasons()
        )
    })
}
