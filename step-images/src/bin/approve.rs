//! `medallion-approve`: a policy's verdict over a plan (`approved`, `rejected`, `needs-review`),
//! recorded once as `releases/<target>/<plan-id>/approval.json`, bound to the plan's hash.
//!
//! Outputs (files under --outputs-dir): verdict, plan-id, hash, reasons, decided-by, created.
//! Exit codes: 0 approved or needs-review (the template routes needs-review to a suspend),
//! 1 retryable, 2 bad input, 3 rejected (outputs written) or the plan changed since planning.

use std::process::ExitCode;

use clap::Parser;
use medallion_steps::release::{ApproveArgs, approve, approve_outputs, rejection};
use medallion_steps::run_step_gated;

/// Evaluate a release policy over a plan and record the verdict.
#[derive(Parser, Debug)]
#[command(name = "medallion-approve", version)]
struct Cli {
    #[command(flatten)]
    args: ApproveArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    run_step_gated(
        "medallion-approve",
        &cli.args.outputs_dir,
        &[],
        approve(&cli.args),
        approve_outputs,
        rejection,
    )
}
