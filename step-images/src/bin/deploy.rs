//! `medallion-deploy`: applies an approved model-release plan and nothing else. It refuses (exit 3)
//! a plan whose approval is missing, rejected, unreviewed or bound to another hash, and a plan made
//! against a state of the endpoint that has changed since.
//!
//! Local target: blue/green `medallion-serve` processes, readiness, a V2 smoke test with a known
//! answer, the `production` alias moved by compare-and-swap, the pointer switched, the old slot
//! kept for `medallion rollback`. On failure the new server is stopped and nothing else changes.
//!
//! Infrastructure plans (`--terraform-planfile <saved plan>`): the gate before `terraform apply`;
//! the approval must be bound to the plan and the file must be the one planned (SHA-256).
//! Outputs then: status (authorized), plan-id, planfile-sha256, authorized-by.
//!
//! Outputs (files under --outputs-dir): status, plan-id, version, slot, url, previous-version, created.
//! Exit codes: 0 deployed (or applied before), 1 retryable (server not ready in time, lake
//! unreachable), 2 bad input, 3 refused or rolled back (smoke test failed, alias moved meanwhile).

use std::process::ExitCode;

use clap::Parser;
use medallion_steps::deploy::{DeployArgs, deploy, deploy_outputs};
use medallion_steps::{apply_gate, run_step};

/// Apply an approved model-release plan.
#[derive(Parser, Debug)]
#[command(name = "medallion-deploy", version)]
struct Cli {
    #[command(flatten)]
    args: DeployArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.args.terraform_planfile.is_some() {
        // An infrastructure plan: prove the saved plan file is the approved one.
        return run_step(
            "medallion-deploy",
            &cli.args.outputs_dir,
            &[],
            apply_gate::authorize(&cli.args),
            apply_gate::outputs,
        );
    }
    run_step(
        "medallion-deploy",
        &cli.args.outputs_dir,
        &[],
        deploy(&cli.args),
        deploy_outputs,
    )
}
