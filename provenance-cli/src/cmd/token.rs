//! `prov token`: manage the bearer tokens of `prov serve`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::server::Role;

/// Manage the bearer tokens that `prov serve --tokens FILE` accepts.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Make a new random token: print it once, keep only its hash in FILE.
    Create {
        /// What the token may do.
        #[arg(long, value_enum)]
        role: Role,
        /// The tokens file (created if missing, mode 600).
        #[arg(long, value_name = "FILE")]
        tokens: PathBuf,
        /// A name to remember it by.
        #[arg(long)]
        name: Option<String>,
    },
}

impl Args {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.action {
            Action::Create { role, tokens, name } => {
                let token = crate::server::auth_create(&tokens, role, name.as_deref())?;
                println!("{token}");
                eprintln!(
                    "prov: this token is shown once; {} keeps only its hash",
                    tokens.display()
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
