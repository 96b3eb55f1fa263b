//! `medallion-connect`: register and check a data connection (Azure Blob, PostgreSQL,
//! Snowflake). The lake records only where secrets come from, never their values.
//!
//! Outputs (files under --outputs-dir): connection, kind, ok, report (JSON); list: connections.
//! Exit codes: 0 done, 1 retryable (unreachable), 2 bad input (flags, credentials refused,
//! missing table or container).

use std::process::ExitCode;

use clap::Parser;
use medallion_steps::connect::{ConnectCommand, outputs, run};
use medallion_steps::run_step;

/// Register and check data connections for medallion-import --connection.
#[derive(Parser, Debug)]
#[command(name = "medallion-connect", version)]
struct Cli {
    #[command(subcommand)]
    command: ConnectCommand,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dir = cli.command.outputs_dir().to_path_buf();
    run_step("medallion-connect", &dir, &[], run(&cli.command), outputs)
}
