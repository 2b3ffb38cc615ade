//! The subcommands of `prov`, one module each.

mod hash;
mod validate;

use std::process::ExitCode;

use clap::Subcommand;

/// A `prov` subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    Hash(hash::Args),
    Validate(validate::Args),
}

impl Command {
    /// Runs the subcommand and returns the process exit code.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Hash(args) => args.run(),
            Command::Validate(args) => args.run(),
        }
    }
}
