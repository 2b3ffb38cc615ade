//! `prov validate`: check OpenLineage events against the 2-0-2 spec (strict mode).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use provenance_core::{Event, duplicate_members, validate, validate_json};

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
                    // The structure first, from the value: every missing or
                    // mistyped member, including those reading forgives.
                    let structure = serde_json::from_slice::<serde_json::Value>(&raw)
                        .map(|v| validate_json(&v))
                        .unwrap_or_default();
                    let problems: Vec<String> = match Event::from_slice(&raw) {
                        Ok(event) => {
                            let mut found: Vec<String> = duplicate_members(&raw)
                                .iter()
                                .chain(&structure)
                                .chain(&validate(&event))
                                .map(ToString::to_string)
                                .collect();
                            let mut seen = std::collections::HashSet::new();
                            found.retain(|f| seen.insert(f.clone()));
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
                        // Reading stopped at the first fault; the structure
                        // lists all of its kind, and reading's reason is added
                        // unless it is one of them (a UUID that is no UUID,
                        // say, is not a fault of structure).
                        Err(e) => {
                            let reason = e.to_string();
                            // "read event: `inputs[0]`: missing field ..."
                            let at = reason.split('`').nth(1).unwrap_or("");
                            let covered = structure.iter().any(|d| {
                                d.path == at
                                    || d.path.starts_with(&format!("{at}."))
                                    || d.path.starts_with(&format!("{at}["))
                            });
                            let mut found: Vec<String> =
                                structure.iter().map(ToString::to_string).collect();
                            if !covered {
                                found.push(reason);
                            }
                            found
                        }
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
