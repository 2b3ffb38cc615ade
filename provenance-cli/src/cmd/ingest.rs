//! `prov ingest`: store OpenLineage events from files or standard input.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use provenance_store::Outcome;

use crate::ctx::Ctx;

/// Store OpenLineage events from NDJSON files or JSON arrays (`-` reads stdin).
/// Bad lines are reported by number and the good ones stored; with --strict,
/// nothing is stored if any line is bad. Exits 1 if any line was bad.
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
        let mut inputs = Vec::new();
        for file in &self.files {
            let (name, bytes) = super::read_input(file)?;
            inputs.push((name, bytes));
        }
        let store = ctx.store()?;
        let mut out = std::io::stdout().lock();
        let (mut stored, mut duplicates, mut bad) = (0u64, 0u64, Vec::new());
        // Under --strict, a first pass in a scratch store finds every bad line.
        if self.strict {
            let scratch = provenance_store::Store::in_memory()?;
            for (name, bytes) in &inputs {
                let events = super::split_events(bytes);
                let raws: Vec<&[u8]> = events.iter().map(|(_, e)| e.as_slice()).collect();
                for ((place, _), outcome) in events.iter().zip(scratch.ingest_batch(&raws)?) {
                    if let Outcome::Rejected { reason } = outcome {
                        bad.push(format!("{name}:{place}: {reason}"));
                    }
                }
            }
            if !bad.is_empty() {
                for b in &bad {
                    writeln!(out, "{b}")?;
                }
                eprintln!("prov: {} bad events; nothing stored (--strict)", bad.len());
                return Ok(ExitCode::from(crate::exit::CHECK_FAILED));
            }
        }
        for (name, bytes) in &inputs {
            let events = super::split_events(bytes);
            for chunk in events.chunks(1000) {
                let raws: Vec<&[u8]> = chunk.iter().map(|(_, e)| e.as_slice()).collect();
                let outcomes = store
                    .ingest_batch(&raws)
                    .with_context(|| format!("store the events of {name}"))?;
                for ((place, _), outcome) in chunk.iter().zip(outcomes) {
                    match outcome {
                        Outcome::Stored { .. } => stored += 1,
                        Outcome::Duplicate { .. } => duplicates += 1,
                        Outcome::Rejected { reason } => {
                            bad.push(format!("{name}:{place}: {reason}"))
                        }
                    }
                }
            }
        }
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
