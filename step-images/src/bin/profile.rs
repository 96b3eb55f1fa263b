//! `medallion-profile`: statistics, contract checks and drift of a version, as profile.json and a
//! self-contained report.html.
//!
//! Outputs (files under --outputs-dir): version, rows, drift, drift-columns, violations, uri,
//! profile.json, report.html. Exit codes: 0 done (drift is an output, not a failure), 1
//! retryable, 2 bad input.

use std::process::ExitCode;

use clap::Parser;
use medallion_steps::profile::{ProfileArgs, outputs, run};
use medallion_steps::run_step;

/// Profile a lake version: column statistics, contract checks, drift against a reference.
#[derive(Parser, Debug)]
#[command(name = "medallion-profile", version)]
struct Cli {
    #[command(flatten)]
    args: ProfileArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    run_step(
        "medallion-profile",
        &cli.args.outputs_dir,
        &["profile.json", "report.html"],
        run(&cli.args),
        outputs,
    )
}
