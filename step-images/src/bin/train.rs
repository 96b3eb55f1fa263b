//! `medallion-train`: a lake version + a model spec → a model version (model file, metrics,
//! card, lineage), its gates checked.
//!
//! Outputs (files under --outputs-dir): version, created, metrics, passed,
//! better_than_production, gates, model-uri, card-uri. Exit codes: 0 done, 1 retryable, 2 bad
//! input, 3 a hard gate failed (outputs written, the version kept but not promoted).

use std::process::ExitCode;

use clap::Parser;
use medallion_steps::run_step_gated;
use medallion_steps::train::{TrainArgs, gate_failure, outputs, run};

/// Train a model version from a lake version and a model spec.
#[derive(Parser, Debug)]
#[command(name = "medallion-train", version)]
struct Cli {
    #[command(flatten)]
    args: TrainArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Whether gates are hard is in the spec; an unreadable spec fails inside `run` instead.
    let hard = medallion_model::spec::ModelSpec::load(&cli.args.spec)
        .map(|(s, _)| s.hard_gates)
        .unwrap_or(true);
    run_step_gated(
        "medallion-train",
        &cli.args.outputs_dir,
        &[],
        run(&cli.args),
        outputs,
        |o| gate_failure(o, hard),
    )
}
