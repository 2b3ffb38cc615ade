//! `prov`: record, query and verify the provenance of genomic pipelines.
//!
//! `main` parses the command line, dispatches to one module per subcommand under
//! `cmd/`, and maps errors to the documented exit codes. Nothing else lives here.

mod cmd;

use std::process::ExitCode;

use clap::Parser;

/// Exit codes, for scripts.
///
/// | code | meaning |
/// |---|---|
/// | 0 | success |
/// | 1 | a check failed (an invalid event, a hash mismatch, a broken chain) |
/// | 2 | usage or configuration error, unreadable input |
mod exit {
    pub const CHECK_FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
}

#[derive(Debug, Parser)]
#[command(
    name = "prov",
    version,
    about = "Provenance and lineage for genomic pipelines (OpenLineage 2-0-2)"
)]
struct Cli {
    /// The store: a SQLite file path, or a postgres:// URL.
    #[arg(long, global = true, env = "PROV_STORE", default_value = "prov.db")]
    store: String,

    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = &cli.store; // used by the store-backed commands as they arrive
    match cli.command.run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("prov: error: {err:#}");
            ExitCode::from(exit::USAGE)
        }
    }
}
