//! `prov store`: work on whole stores. `copy` moves a store between SQLite
//! and PostgreSQL (either way) by re-ingesting its raw events in chain order.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use provenance_store::{Store, StoreError, redact};

use crate::ctx::Ctx;

/// Work on whole stores.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Copy every event of FROM, in chain order, into the empty store TO, which
    /// rebuilds its lineage from them. FROM's chain is verified before, TO's
    /// after, and both must end at the same head (exit 1 otherwise).
    #[command(
        after_help = "Examples:\n  prov store copy prov.db postgres://prov@db.internal/prov?sslmode=require\n  prov store copy postgres://prov@db.internal/prov backup.db"
    )]
    Copy {
        /// The store to copy: a SQLite file path or a postgres:// URL.
        from: String,
        /// An empty store to copy into (a new SQLite file is created).
        to: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = super::Format::Text)]
        format: super::Format,
    },
}

impl Args {
    pub fn run(self, _ctx: &Ctx) -> anyhow::Result<ExitCode> {
        match self.action {
            Action::Copy { from, to, format } => copy(&from, &to, format),
        }
    }
}

/// The lock a copy into the new file `to` holds (`<to>.prov-copy.lock`,
/// removed when dropped).
struct CopyLock {
    path: String,
    _file: std::fs::File,
}

impl Drop for CopyLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn copy_lock(to: &str) -> anyhow::Result<CopyLock> {
    let path = format!("{to}.prov-copy.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("make the lock {path}"))?;
    match file.try_lock() {
        Ok(()) => Ok(CopyLock { path, _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => {
            anyhow::bail!("another prov store copy is writing {to} (it holds {path})")
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(anyhow::Error::new(e).context(format!("lock {path}")))
        }
    }
}

fn copy(from: &str, to: &str, format: super::Format) -> anyhow::Result<ExitCode> {
    let source = crate::ctx::open_existing(from)?;
    // A new SQLite file is written under a name of its own and takes its
    // name only once the copy is whole and verified: an interrupted copy
    // leaves no store that looks complete (and a retry can start again).
    let new_file = (!to.contains("://") && !std::path::Path::new(to).exists()).then_some(to);
    // One copy at a time into a new file: a second is refused, rather than
    // share (and remove) the first one's partial file.
    let _lock = match new_file {
        Some(to) => Some(copy_lock(to)?),
        None => None,
    };
    if let Some(to) = new_file {
        // A log left beside a removed store would be read into the copy.
        for suffix in ["-wal", "-shm"] {
            let stale = format!("{to}{suffix}");
            if std::path::Path::new(&stale).exists() {
                anyhow::bail!(
                    "{stale} is left from a store that is no longer there; it would be read into the copy: remove it first"
                );
            }
        }
    }
    let partial = new_file.map(|to| format!("{to}.prov-copy-partial"));
    if let Some(partial) = &partial {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{partial}{suffix}"));
        }
    }
    let writing = partial.as_deref().unwrap_or(to);
    let destination =
        Store::open(writing).with_context(|| format!("open the store {}", redact(to)))?;
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(0).with_style(
            ProgressStyle::with_template("{pos}/{len} events {wide_bar} {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    } else {
        ProgressBar::hidden()
    };
    let result = source.copy_to(&destination, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    drop(destination);
    if let (Some(partial), Some(to)) = (&partial, new_file) {
        for suffix in ["", "-wal", "-shm"] {
            let from = format!("{partial}{suffix}");
            if result.is_ok() && std::path::Path::new(&from).exists() {
                // Linked, not renamed: never over a file that appeared
                // meanwhile.
                let name = format!("{to}{suffix}");
                std::fs::hard_link(&from, &name)
                    .with_context(|| format!("name the copy {name}"))?;
                std::fs::remove_file(&from).with_context(|| format!("remove {from}"))?;
            } else {
                let _ = std::fs::remove_file(&from);
            }
        }
    }
    let report = match result {
        Ok(report) => report,
        Err(e @ StoreError::Integrity { .. }) => {
            eprintln!("prov: error: {:#}", anyhow::Error::new(e));
            return Ok(ExitCode::from(crate::exit::CHECK_FAILED));
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "copy {} into {}",
                redact(from),
                redact(to)
            )));
        }
    };
    let mut out = std::io::stdout().lock();
    if format == super::Format::Json {
        super::write_json(&mut out, &report)?;
    } else {
        writeln!(
            out,
            "copied {} events from {} to {}; both chains verify; head {}",
            report.events,
            redact(from),
            redact(to),
            report.head.as_deref().unwrap_or("(empty)")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
