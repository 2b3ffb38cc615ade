//! `prov`: record, query and verify the provenance of genomic pipelines.
//!
//! `main` parses the command line, dispatches to one module per subcommand under
//! `cmd/`, and maps errors to the documented exit codes. Nothing else lives here.

mod cmd;
mod ctx;
mod server;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

/// Exit codes, for scripts.
///
/// | code | meaning |
/// |---|---|
/// | 0 | success |
/// | 1 | a check failed (an invalid event, a hash mismatch, a broken chain) |
/// | 2 | usage or configuration error, or an input that cannot be read |
/// | other | `prov run`: the wrapped command's own exit code (128 + N after signal N) |
mod exit {
    pub const CHECK_FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const INPUT: u8 = 2;
}

#[derive(Debug, Parser)]
#[command(
    name = "prov",
    version,
    about = "Provenance and lineage for genomic pipelines (OpenLineage 2-0-2)",
    after_help = "Exit codes: 0 ok, 1 a check failed (invalid event, hash mismatch, broken chain), \
2 usage, configuration or unreadable input; prov run exits with its command's code."
)]
pub struct Cli {
    /// The store: a SQLite file path, or a postgres:// URL.
    #[arg(long, global = true, env = "PROV_STORE", default_value = "prov.db")]
    store: String,

    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // clap says only that some argument is not UTF-8: it may be an
        // option's environment variable, which is then named.
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidUtf8 => {
            if let Some(name) = option_variable_not_utf8() {
                eprintln!("prov: error: the environment variable {name} is not UTF-8");
                return ExitCode::from(exit::USAGE);
            }
            e.exit()
        }
        Err(e) => e.exit(),
    };
    let ctx = ctx::Ctx::new(cli.store);
    let runs_steps = cli.command.runs_steps();
    match cli.command.run(&ctx) {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) && !runs_steps => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("prov: error: {err:#}");
            // SQLite says only "readonly database" when the store's log
            // files belong to another user: say which, and what to do.
            if format!("{err:#}").contains("readonly database")
                && let Some(hint) = ctx::foreign_log_files(Path::new(ctx.store_location()))
            {
                eprintln!("prov: {hint}");
            }
            ExitCode::from(exit::USAGE)
        }
    }
}

/// The first environment variable that backs an option of prov (of any
/// subcommand) and is set to something that is not UTF-8.
fn option_variable_not_utf8() -> Option<String> {
    use clap::CommandFactory;
    fn variables(command: &clap::Command, out: &mut Vec<String>) {
        for arg in command.get_arguments() {
            if let Some(name) = arg.get_env() {
                out.push(name.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            variables(sub, out);
        }
    }
    let mut names = Vec::new();
    variables(&Cli::command(), &mut names);
    names
        .into_iter()
        .find(|name| std::env::var_os(name).is_some_and(|v| v.to_str().is_none()))
}

/// A reader that closed the pipe (`prov hash ... | head`) is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            // JSON is written through serde_json, whose error keeps the
            // kind of the I/O error under it.
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests;
