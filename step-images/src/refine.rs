//! The refine step: parameters and the call into the quality library.

use std::path::PathBuf;

use medallion_lake::{DatasetName, Registry, StoreLocation, WorkflowRef};
use medallion_quality::contract::Contract;
use medallion_quality::refine::{self, RefineOutcome, RefineRequest};

use crate::StepOutputs;

/// The refine step's parameters (the template's input parameters, one to one).
#[derive(clap::Args, Debug, Clone)]
pub struct RefineArgs {
    /// Lake root (local path or az://, abfss://, https:// URL)
    #[arg(long, env = "MEDALLION_LAKE")]
    pub lake: String,
    /// Dataset name
    #[arg(long, env = "MEDALLION_DATASET")]
    pub dataset: String,
    /// The bronze version to refine
    #[arg(long, env = "MEDALLION_VERSION")]
    pub version: u64,
    /// Data contract (YAML)
    #[arg(long, env = "MEDALLION_CONTRACT")]
    pub contract: PathBuf,
    /// Where to write one file per output parameter
    #[arg(long, env = "MEDALLION_OUTPUTS_DIR", default_value = "/tmp/outputs")]
    pub outputs_dir: PathBuf,
}

/// Runs the refine these arguments describe.
pub async fn run(args: &RefineArgs) -> Result<RefineOutcome, medallion_quality::Error> {
    let contract = Contract::load(&args.contract)?;
    let registry = Registry::new(StoreLocation::open("lake", &args.lake)?);
    let request = RefineRequest {
        dataset: DatasetName::new(&args.dataset)?,
        version: args.version,
        contract,
        workflow: WorkflowRef::from_env(),
    };
    refine::refine(&registry, request).await
}

/// The step's output parameters.
pub fn outputs(outcome: &RefineOutcome) -> StepOutputs {
    let m = &outcome.manifest;
    let mut out = StepOutputs::new();
    out.set("version", m.version)
        .set("rows", m.rows)
        .set("rejected", outcome.rejected)
        .set("duplicates", outcome.duplicates)
        .set("uri", outcome.uri.clone())
        .set("created", outcome.created);
    out
}
