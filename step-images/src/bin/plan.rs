//! `medallion-plan`: a Terraform plan (`terraform show -json`) → a sealed Medallion plan under
//! `<lake>/releases/<target>/<plan-id>/` (plan.json with its content hash, summary.md).
//!
//! Outputs (files under --outputs-dir): plan-id, hash, summary, destructive, created, uri.
//! Exit codes: 0 done, 1 retryable, 2 bad input.

use std::process::ExitCode;

use clap::Parser;
use medallion_steps::release::{PlanArgs, plan, plan_outputs};
use medallion_steps::run_step;

/// Summarise the changes a release would make into a plan that an approval can be bound to.
#[derive(Parser, Debug)]
#[command(name = "medallion-plan", version)]
struct Cli {
    #[command(flatten)]
    args: PlanArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    run_step(
        "medallion-plan",
        &cli.args.outputs_dir,
        &[],
        plan(&cli.args),
        plan_outputs,
    )
}
