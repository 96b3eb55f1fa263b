//! `medallion-refine`: a bronze version into a silver version under a data contract.
//!
//! Outputs (files under --outputs-dir): version, rows, rejected, duplicates, uri, created.
//! Exit codes: 0 done, 1 retryable, 2 bad input (contract or data mismatch), 3 too many rows
//! broke the contract (nothing committed).

use std::process::ExitCode;

use clap::Parser;
use medallion_steps::refine::{RefineArgs, outputs, run};
use medallion_steps::run_step;

/// Refine a bronze version into a silver version under a data contract.
#[derive(Parser, Debug)]
#[command(name = "medallion-refine", version)]
struct Cli {
    #[command(flatten)]
    args: RefineArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    run_step(
        "medallion-refine",
        &cli.args.outputs_dir,
        &[],
        run(&cli.args),
        outputs,
    )
}
