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
    /// List the tokens in FILE: the start of each one's hash, its role and name.
    List {
        /// The tokens file.
        #[arg(long, value_name = "FILE")]
        tokens: PathBuf,
    },
    /// Remove tokens from FILE, by name, by the token itself, or by the start
    /// of its hash (as `list` prints it). A running `prov serve` stops
    /// accepting them within a second, without a restart.
    #[command(
        after_help = "Examples:\n  prov token revoke --tokens tokens.tsv --name pipelines\n  prov token revoke --tokens tokens.tsv --hash 3f2a9c81d0e4"
    )]
    Revoke {
        /// The tokens file.
        #[arg(long, value_name = "FILE")]
        tokens: PathBuf,
        /// Every token of this name.
        #[arg(long, required_unless_present_any = ["hash", "token"], conflicts_with_all = ["hash", "token"])]
        name: Option<String>,
        /// The token whose hash starts with these hex digits (at least 8).
        #[arg(long, conflicts_with = "token")]
        hash: Option<String>,
        /// The token itself.
        #[arg(long)]
        token: Option<String>,
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
            Action::List { tokens } => {
                for (hash, role, name) in crate::server::auth_list(&tokens)? {
                    let role = match role {
                        Role::Read => "read",
                        Role::Write => "write",
                    };
                    println!("{hash}  {role:<5}  {name}");
                }
            }
            Action::Revoke {
                tokens,
                name,
                hash,
                token,
            } => {
                if let Some(h) = &hash
                    && (h.len() < 8 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
                {
                    anyhow::bail!(
                        "--hash {h:?}: give at least 8 hexadecimal digits of the hash `prov token list` prints"
                    );
                }
                let full = token.as_deref().map(crate::server::hash_of);
                let removed = crate::server::auth_revoke(&tokens, |line_hash, line_name| {
                    let line_hash = line_hash.to_ascii_lowercase();
                    name.as_deref() == Some(line_name)
                        || hash
                            .as_deref()
                            .is_some_and(|h| line_hash.starts_with(&h.to_ascii_lowercase()))
                        || full.as_deref() == Some(line_hash.as_str())
                })?;
                if removed == 0 {
                    eprintln!("prov: no token in {} matches", tokens.display());
                    return Ok(ExitCode::from(crate::exit::CHECK_FAILED));
                }
                eprintln!(
                    "prov: revoked {removed} token{} from {}",
                    if removed == 1 { "" } else { "s" },
                    tokens.display()
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
