//! `prov validate`: check OpenLineage events against the 2-0-2 spec (strict mode).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use provenance_core::{Event, validate};

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
            let name = file.display().to_string();
            let bytes = if name == "-" {
                let mut buf = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut buf)
                    .context("read standard input")?;
                buf
            } else {
                std::fs::read(file).with_context(|| format!("read {name}"))?
            };
            for (place, parsed) in split_events(&bytes) {
                checked += 1;
                let problems: Vec<String> =
                    match parsed.and_then(|v| Event::from_value(v).map_err(|e| e.to_string())) {
                        Ok(event) => validate(&event).iter().map(ToString::to_string).collect(),
                        Err(e) => vec![e],
                    };
                for problem in &problems {
                    writeln!(out, "{name}:{place}: {problem}")?;
                }
                failures += usize::from(!problems.is_empty());
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

/// Splits input into events: a JSON object, a JSON array of them, or NDJSON.
/// Each comes with its place (`event 3` or `line 7`) for messages.
fn split_events(bytes: &[u8]) -> Vec<(String, Result<serde_json::Value, String>)> {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        return match value {
            serde_json::Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (format!("event {}", i + 1), Ok(v)))
                .collect(),
            other => vec![("event 1".to_owned(), Ok(other))],
        };
    }
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(i, line)| {
            let parsed = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"));
            (format!("line {}", i + 1), parsed)
        })
        .collect()
}
