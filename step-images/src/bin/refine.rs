//! `medallion-refine`: a bronze version into a silver version under a data contract.
//!
//! Outputs (files under --outputs-dir): version, rows, rejected, duplicates, uri, created.
//! Exit codes: 0 done, 1 retryable, 2 bad input (contract or data mismatch), 3 too many rows
//! broke the contract (nothing committed).

use std::process::ExitCode;

use clap::Parser;
use medallion_steps::refine::{RefineArgs, outputs, run};
use medallion_steps::{exit_with, init_logging, runtime};

/// Refine a bronze version into a silver version under a data contract.
#[derive(Parser, Debug)]
#[command(name = "medallion-refine", version)]
struct Cli {
    #[command(flatten)]
    args: RefineArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = runtime()
        .map_err(medallion_quality::Error::from)
        .and_then(|rt| rt.block_on(run(&cli.args)))
        .and_then(|outcome| Ok(outputs(&outcome).emit(&cli.args.outputs_dir)?));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit_with("medallion-refine", &e),
    }
}
