//! `prov validate`: check OpenLineage events against the 2-0-2 spec (strict mode).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use provenance_core::{Event, duplicate_members, validate};

/// Check OpenLineage events (one JSON event, a JSON array, or NDJSON) against the
/// 2-0-2 spec and list every deviation. Exits 1 if any event deviates or cannot be read.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files to check; `-` reads standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

impl Args {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let mut out = std::io::stdout().lock();
        let mut failures = 0usize;
        let mut checked = 0usize;
        for file in &self.files {
            let mut events = super::events::EventReader::open(file)?;
            loop {
                let batch = events.next_batch()?;
                if batch.is_empty() {
                    break;
                }
                for (place, raw) in batch {
                    let name = events.name();
                    checked += 1;
                    let problems: Vec<String> = match Event::from_slice(&raw) {
                        Ok(event) => {
                            let mut found: Vec<String> = duplicate_members(&raw)
                                .iter()
                                .chain(&validate(&event))
                                .map(ToString::to_string)
                                .collect();
                            // What a store refuses is a deviation here too.
                            if let Some((at, number)) =
                                provenance_core::canonical::first_inexact_integer(&raw)
                            {
                                found.push(format!(
                                    "the integer {number} (at byte {at}) is beyond 64 bits and would be rounded; a store refuses it (send it as a string)"
                                ));
                            }
                            found
                        }
                        Err(e @ provenance_core::ParseError::Syntax { .. }) => {
                            vec![format!("not JSON: {e}")]
                        }
                        Err(e) => vec![e.to_string()],
                    };
                    for problem in &problems {
                        writeln!(out, "{name}:{place}: {problem}")?;
                    }
                    failures += usize::from(!problems.is_empty());
                }
            }
        }
        eprintln!("{checked} events checked, {failures} with deviations");
        Ok(if failures == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(crate::exit::CHECK_FAILED)
        })
    }
}
