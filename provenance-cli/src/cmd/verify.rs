//! `prov verify`: are these files still the bytes the pipeline recorded? Is the
//! trail intact?

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use provenance_core::hash::{HashOptions, Hasher};
use provenance_store::{ChainReport, Store, TablesReport};

use crate::ctx::Ctx;

/// Compare files with their latest recorded version (exit 1 on any difference),
/// or check the store with --chain: its hash chain (exit 1 at the first broken
/// position; the head is printed for an auditor to keep), then the tables that
/// lineage, audit and verify read, derived again from the events and compared
/// row by row (exit 1 on any difference).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The tables are derived again in a temporary store under $TMPDIR (or /tmp), which needs \
about as much space as the store and is removed after; --links-only skips that part.\n\n\
Examples:\n  prov verify results/S1.vcf.gz results/S1.bam\n  prov verify --chain\n  \
prov verify --chain --links-only --format json"
)]
pub struct Args {
    /// Files to compare with what the store recorded.
    #[arg(value_name = "PATH", required_unless_present = "chain")]
    paths: Vec<PathBuf>,

    /// Check the store instead: its hash chain, then the tables derived from
    /// the events.
    #[arg(long, conflicts_with = "paths")]
    chain: bool,

    /// With --chain: check only the chain's links, not the derived tables
    /// (faster: those are derived again from every event).
    #[arg(long, requires = "chain")]
    links_only: bool,

    /// Read every file again rather than trusting the hash cache.
    #[arg(long)]
    rehash: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = super::Format::Text)]
    format: super::Format,
}

/// What `verify --chain --format json` prints: the chain's report, and the
/// tables' (null when the chain is broken or --links-only was given).
#[derive(serde::Serialize)]
struct StoreReport {
    #[serde(flatten)]
    chain: ChainReport,
    tables: Option<TablesReport>,
}

/// A private folder (mode 700) for the temporary store the tables are
/// derived again in: it holds a copy of every event. Removed when dropped,
/// and when prov is stopped by SIGINT, SIGTERM or SIGHUP on the way (the
/// process then exits 128 + the signal).
struct Scratch(
    provenance_store::ScratchFolder,
    signal_hook::iterator::Handle,
);

impl Scratch {
    /// A private folder under $TMPDIR that SIGINT, SIGTERM or SIGHUP also
    /// removes (SIGKILL cannot: the next check removes what it left).
    fn new() -> anyhow::Result<Scratch> {
        // Listening first: a signal from the moment the folder exists
        // removes it (it waits in the queue until the thread below reads it).
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals =
            signal_hook::iterator::Signals::new(super::not_ignored(&[SIGINT, SIGTERM, SIGHUP]))
                .context("listen for signals")?;
        let handle = signals.handle();
        let folder = provenance_store::ScratchFolder::create(&std::env::temp_dir()).map_err(
            |(path, e)| {
                anyhow::Error::new(e).context(format!(
                    "make the temporary folder {} ($TMPDIR)",
                    path.display()
                ))
            },
        )?;
        let doomed = folder.path().to_path_buf();
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let _ = std::fs::remove_dir_all(&doomed);
                std::process::exit(128 + signal);
            }
        });
        Ok(Scratch(folder, handle))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Removed before the signals are let go, so none can leave it.
        let _ = std::fs::remove_dir_all(self.0.path());
        self.1.close();
    }
}

/// `verify --chain`: the links, then the derived tables.
fn check_store(
    store: &Store,
    links_only: bool,
    format: super::Format,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    // A store read without locks (another user's, or one whose log cannot
    // be made) and written meanwhile may read as broken when it is not:
    // that is no finding, but a check to make again.
    let chain = super::read_consistently(store, store.verify_chain())?;
    if chain.broken.is_some() {
        super::read_consistently(store, Ok(()))?;
    }
    let text = format == super::Format::Text;
    if text {
        match &chain.broken {
            Some(b) => writeln!(out, "chain BROKEN at position {}: {}", b.position, b.reason)?,
            None => writeln!(
                out,
                "chain OK: {} events; head {}",
                chain.events,
                chain.head.as_deref().unwrap_or("(empty)")
            )?,
        }
        out.flush()?;
    }
    let tables = if chain.broken.is_none() && !links_only {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new(0).with_style(
                ProgressStyle::with_template(
                    "deriving the tables again: {pos}/{len} events {wide_bar} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            )
        } else {
            ProgressBar::hidden()
        };
        let scratch = Scratch::new()?;
        let report = store.verify_tables(scratch.0.path(), &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        });
        bar.finish_and_clear();
        let report = report.map_err(|e| {
            let e = anyhow::Error::new(e);
            // A full disk while the events are copied is most likely the
            // temporary folder's.
            match format!("{e:#}").contains("disk is full") {
                true => e.context(format!(
                    "the temporary copy in {} needs about as much space as the store; TMPDIR names another place",
                    scratch.0.path().display()
                )),
                false => e,
            }
        });
        drop(scratch);
        super::read_consistently(store, Ok(()))?;
        Some(report.context("check the tables derived from the events")?)
    } else {
        None
    };
    if text && let Some(t) = &tables {
        if t.matches() {
            writeln!(
                out,
                "tables OK: {} rows match what the {} events give",
                t.rows, t.events
            )?;
        } else {
            let count = t.differences.len() as u64 + t.more;
            writeln!(
                out,
                "tables DIFFER from the events: {count} row{} (edited behind prov's back, or written by a prov that derived them differently; `prov store copy` makes a store whose tables come from the events alone)",
                if count == 1 { "" } else { "s" }
            )?;
            for d in &t.differences {
                writeln!(out, "  {d}")?;
            }
            if t.more > 0 {
                writeln!(out, "  and {} more", t.more)?;
            }
        }
    }
    let failed = chain.broken.is_some() || tables.as_ref().is_some_and(|t| !t.matches());
    if !text {
        super::write_json(out, &StoreReport { chain, tables })?;
    }
    Ok(if failed {
        ExitCode::from(crate::exit::CHECK_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn when(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .map_or_else(|| micros.to_string(), |t| t.to_rfc3339())
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let store = ctx.existing_store()?;
        let mut out = std::io::stdout().lock();
        if self.chain {
            return check_store(&store, self.links_only, self.format, &mut out);
        }

        let cache = ctx.hash_cache();
        let mut hasher = Hasher::new(HashOptions {
            rehash: self.rehash,
            ..HashOptions::default()
        });
        if let Some(c) = &cache {
            hasher = hasher.with_cache(c.as_ref());
        }
        let digests = hasher.hash_all(&self.paths);
        let mut failed = 0;
        let mut items = Vec::new();
        for (path, digest) in self.paths.iter().zip(digests) {
            let name = provenance_core::recorder::local_name(path);
            let recorded = store.latest_version("file", &name)?;
            let (status, detail) = match (&digest, &recorded) {
                (Err(e), _) => ("UNREADABLE", super::with_causes(e)),
                (Ok(_), None) => (
                    "NOT RECORDED",
                    "the store has no version of this file".to_owned(),
                ),
                (Ok(d), Some((v, runs))) => {
                    let by = runs
                        .iter()
                        .map(|r| format!("run {} of job {}", r.run_id, r.job))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let by = if by.is_empty() {
                        "no recorded run".into()
                    } else {
                        by
                    };
                    match &v.digest {
                        // In any case: stores written before digests were
                        // kept in lowercase may hold another producer's capitals.
                        Some(h) if h.eq_ignore_ascii_case(&d.sha256) => {
                            ("OK", format!("recorded {} by {by}", when(v.created_at)))
                        }
                        Some(h) => (
                            "MODIFIED",
                            format!(
                                "recorded sha256 {h} on {} by {by}; the file now has sha256 {}",
                                when(v.created_at),
                                d.sha256
                            ),
                        ),
                        None => (
                            "NOT RECORDED",
                            format!("version {} has no content digest", v.version),
                        ),
                    }
                }
            };
            if status != "OK" {
                failed += 1;
            }
            match self.format {
                super::Format::Text => writeln!(out, "{status}  {}  ({detail})", path.display())?,
                super::Format::Json => items.push(serde_json::json!({
                    "path": path.to_string_lossy(), "status": status, "detail": detail,
                    "recorded": recorded.map(|(v, runs)| serde_json::json!({"version": v, "runs": runs})),
                })),
            }
        }
        if self.format == super::Format::Json {
            super::write_json(&mut out, &items)?;
        }
        Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(crate::exit::CHECK_FAILED)
        })
    }
}
