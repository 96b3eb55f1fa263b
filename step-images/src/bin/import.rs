//! `medallion-import`: a source file (local path or blob URL) into a new bronze version.
//!
//! Outputs (files under --outputs-dir): version, rows, uri, created, bad-rows.
//! Exit codes: 0 done, 1 retryable (store unreachable), 2 bad input.

use std::process::ExitCode;

use clap::Parser;
use medallion_steps::import::{ImportArgs, outputs, run};
use medallion_steps::run_step;

/// Import a CSV, JSON lines or Parquet file into a new, versioned bronze Parquet version.
#[derive(Parser, Debug)]
#[command(name = "medallion-import", version)]
struct Cli {
    #[command(flatten)]
    args: ImportArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    run_step(
        "medallion-import",
        &cli.args.outputs_dir,
        &[],
        run(&cli.args, None),
        outputs,
    )
}
