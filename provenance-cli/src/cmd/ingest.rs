//! `prov ingest`: store OpenLineage events from files or standard input.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use provenance_store::{Outcome, Store};

use super::events::{BATCH_EVENTS, EventReader};
use crate::ctx::Ctx;

/// Store OpenLineage events from NDJSON files or JSON arrays (`-` reads stdin).
/// Bad lines are reported by number and the good ones stored; with --strict,
/// nothing is stored if any line is bad. Exits 1 if any line was bad. NDJSON
/// is read and stored a thousand events at a time, so a dump of any size
/// takes little memory; progress is shown on a terminal.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  prov ingest events.ndjson\n  prov ingest --strict airflow-events.json\n  cat events.ndjson | prov ingest -"
)]
pub struct Args {
    /// Files of events; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,

    /// Store nothing unless every event of every file is good.
    #[arg(long)]
    strict: bool,

    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = super::Format::Text)]
    format: super::Format,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        // Every file must be there before any is stored.
        for file in self.files.iter().filter(|f| f.as_os_str() != "-") {
            std::fs::File::open(file).with_context(|| format!("read {}", file.display()))?;
        }
        // Standard input can be read once: under --strict, which reads every
        // input twice, it is kept in memory. Files are read as they are stored.
        let stdin = if self.strict && self.files.iter().any(|f| f.as_os_str() == "-") {
            let mut bytes = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .context("read standard input")?;
            Some(bytes)
        } else {
            None
        };
        let open = |file: &PathBuf| -> anyhow::Result<EventReader<'_>> {
            match &stdin {
                Some(bytes) if file.as_os_str() == "-" => {
                    EventReader::new("-".into(), Box::new(bytes.as_slice()))
                }
                _ => EventReader::open(file),
            }
        };
        // Progress on a terminal, by bytes of the inputs (all read twice
        // under --strict).
        let size: Option<u64> = self
            .files
            .iter()
            .map(|f| match &stdin {
                Some(bytes) if f.as_os_str() == "-" => Some(bytes.len() as u64),
                _ => std::fs::metadata(f)
                    .ok()
                    .filter(|m| m.is_file())
                    .map(|m| m.len()),
            })
            .sum();
        let passes = if self.strict { 2 } else { 1 };
        let bar = progress(size.map(|s| s * passes));
        let mut done = 0u64;

        let store = ctx.store()?;
        let mut out = std::io::stdout().lock();
        let (mut stored, mut duplicates, mut bad) = (0u64, 0u64, Vec::new());
        // Under --strict, a first pass reads every event, storing nothing.
        if self.strict {
            for file in &self.files {
                let mut events = open(file)?;
                loop {
                    let batch = events.next_batch()?;
                    if batch.is_empty() {
                        break;
                    }
                    for (place, raw) in &batch {
                        if let Some(reason) = Store::parse(raw).rejected() {
                            bad.push(format!("{}:{place}: {reason}", events.name()));
                        }
                    }
                    bar.set_position(done + events.consumed());
                }
                done += events.consumed();
            }
            if !bad.is_empty() {
                bar.finish_and_clear();
                for b in &bad {
                    writeln!(out, "{b}")?;
                }
                eprintln!("prov: {} bad events; nothing stored (--strict)", bad.len());
                return Ok(ExitCode::from(crate::exit::CHECK_FAILED));
            }
        }
        for file in &self.files {
            let mut events = open(file)?;
            loop {
                // Several batches at a time, parsed ahead across their
                // transactions (each batch is still one transaction).
                let (mut batch, mut bytes) = (Vec::new(), 0);
                for _ in 0..BATCHES_AHEAD {
                    let more = events.next_batch()?;
                    if more.is_empty() {
                        break;
                    }
                    bytes += more.iter().map(|(_, e)| e.len()).sum::<usize>();
                    batch.extend(more);
                    if bytes >= BYTES_AHEAD {
                        break;
                    }
                }
                if batch.is_empty() {
                    break;
                }
                let raws: Vec<&[u8]> = batch.iter().map(|(_, e)| e.as_slice()).collect();
                let mut places = batch.iter().map(|(place, _)| place);
                for result in store.ingest_batches(&raws, BATCH_EVENTS) {
                    let outcomes = result.with_context(|| {
                        format!(
                            "store the events of {} from {} on ({stored} stored before)",
                            events.name(),
                            places.clone().next().map_or("its end", String::as_str)
                        )
                    })?;
                    // (Outcomes first: zip takes from its first iterator first.)
                    for (outcome, place) in outcomes.into_iter().zip(places.by_ref()) {
                        match outcome {
                            Outcome::Stored { .. } => stored += 1,
                            Outcome::Duplicate { .. } => duplicates += 1,
                            Outcome::Rejected { reason } => {
                                bad.push(format!("{}:{place}: {reason}", events.name()))
                            }
                        }
                    }
                }
                bar.set_position(done + events.consumed());
                bar.set_message(format!("{stored} stored"));
            }
            done += events.consumed();
        }
        bar.finish_and_clear();
        match self.format {
            super::Format::Json => {
                let summary = serde_json::json!({"stored": stored, "duplicates": duplicates, "rejected": bad});
                super::write_json(&mut out, &summary)?;
            }
            super::Format::Text => {
                for b in &bad {
                    writeln!(out, "{b}")?;
                }
                writeln!(
                    out,
                    "{stored} stored, {duplicates} already stored, {} rejected",
                    bad.len()
                )?;
            }
        }
        Ok(if bad.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(crate::exit::CHECK_FAILED)
        })
    }
}

/// Batches read and stored at a time, and their bytes at most (beyond one
/// batch): their parsing overlaps each other's commits (a bulk load is
/// about a quarter faster than batch by batch).
const BATCHES_AHEAD: usize = 8;
const BYTES_AHEAD: usize = 16 << 20;

/// A progress bar on standard error when it is a terminal: bytes of the
/// inputs when their size is known, else a count.
fn progress(bytes: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match bytes {
        Some(total) => (
            ProgressBar::new(total),
            "{bytes}/{total_bytes} {wide_bar} {msg} {bytes_per_sec} eta {eta}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{spinner} {bytes} {msg} {bytes_per_sec}",
        ),
    };
    bar.with_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}
