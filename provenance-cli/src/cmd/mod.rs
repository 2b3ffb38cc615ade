//! The subcommands of `prov`, one module each, and what several share:
//! the output format switch, times, targets and event splitting.

pub(crate) mod audit;
mod demo;
mod events;
pub mod hash;
mod ingest;
mod lineage;
mod rerun;
mod run;
mod serve;
mod store;
mod token;
mod validate;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use provenance_core::hash::{HashOptions, Hasher};
use provenance_store::{Store, Target};

use crate::ctx::Ctx;

/// A `prov` subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    Run(run::Args),
    Hash(hash::Args),
    Ingest(ingest::Args),
    Lineage(lineage::Args),
    Audit(audit::Args),
    Verify(verify::Args),
    Rerun(rerun::Args),
    Serve(serve::Args),
    Store(store::Args),
    Token(token::Args),
    Validate(validate::Args),
    Demo(demo::Args),
    #[command(hide = true)]
    DemoTool(demo::ToolArgs),
}

impl Command {
    /// Whether the command runs a pipeline step (prov run, and rerun
    /// --check, which runs steps again): there a broken pipe (a console transport whose
    /// reader went away) is a failure to record, not a reader that has
    /// seen enough.
    pub fn runs_steps(&self) -> bool {
        match self {
            Command::Run(_) => true,
            Command::Rerun(args) => args.runs_steps(),
            _ => false,
        }
    }

    /// Runs the subcommand and returns the process exit code.
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        match self {
            Command::Run(args) => args.run(ctx),
            Command::Hash(args) => args.run(),
            Command::Ingest(args) => args.run(ctx),
            Command::Lineage(args) => args.run(ctx),
            Command::Audit(args) => args.run(ctx),
            Command::Verify(args) => args.run(ctx),
            Command::Rerun(args) => args.run(ctx),
            Command::Serve(args) => args.run(ctx),
            Command::Store(args) => args.run(ctx),
            Command::Token(args) => args.run(),
            Command::Validate(args) => args.run(),
            Command::Demo(args) => args.run(ctx),
            Command::DemoTool(args) => args.run(),
        }
    }
}

/// Human text, or JSON for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For scripts; never truncated.
    Json,
}

/// Writes `value` as pretty JSON and a newline: the `--format json` answer.
pub fn write_json(
    out: &mut impl std::io::Write,
    value: &impl serde::Serialize,
) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// `result`, read from `store`, unless the store was written while it was
/// read without locks (another user's store, or one whose log cannot be made
/// here): what was read may then be inconsistent, and is not given.
pub fn read_consistently<T>(
    store: &Store,
    result: provenance_store::StoreResult<T>,
) -> anyhow::Result<T> {
    if store.changed_while_read() {
        anyhow::bail!(
            "the store was written while it was read without locks (it is another user's, or its log cannot be made here), so what was read may be inconsistent: run this again when nothing writes to it"
        );
    }
    Ok(result?)
}

/// The hash cache `PROV_HASH_CACHE` names; an empty value counts as unset.
pub fn hash_cache_from_env() -> Option<PathBuf> {
    std::env::var_os("PROV_HASH_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// An RFC 3339 time, as microseconds since the epoch.
pub fn parse_time(s: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_micros())
        .map_err(|_| format!("expected an RFC 3339 time such as 2026-01-31T00:00:00Z, found {s:?}"))
}

/// Reads a TARGET: a store id, or a file path matched by its content digest
/// first and by its path otherwise.
pub fn resolve_target(ctx: &Ctx, store: &Store, text: &str) -> anyhow::Result<Target> {
    let prefixed = ["sha256:", "run:", "dataset:", "job:"]
        .iter()
        .any(|p| text.starts_with(p));
    if prefixed {
        return Ok(Target::parse(text)?);
    }
    let path = Path::new(text);
    let absolute = PathBuf::from(provenance_core::recorder::local_name(path));
    if path.exists() {
        let cache = ctx.hash_cache();
        let mut hasher = Hasher::new(HashOptions::default());
        if let Some(c) = &cache {
            hasher = hasher.with_cache(c.as_ref());
        }
        let digest = hasher
            .hash(path)
            .with_context(|| format!("hash {text} to look it up"))?;
        // Empty content (an empty file, a folder without files) identifies
        // nothing: every `.done` flag has that digest. Such a target is
        // looked up by its path.
        if digest.size > 0 && store.knows_digest(&digest.sha256)? {
            return Ok(Target::Digest(digest.sha256));
        }
    }
    Ok(Target::Dataset {
        namespace: "file".into(),
        name: absolute.display().to_string(),
    })
}

/// Splits input into events: one JSON object, a JSON array of them, or NDJSON.
/// Each comes with its place (`event 3` or `line 7`) for messages, and its
/// bytes as they are in the input (an array's items are not written again).
/// A document that is not JSON (an array or a spread-out object cut short)
/// is one bad event, whose error names the line and column, rather than each
/// of its lines reported as a bad event of its own.
pub fn split_events(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    use serde::de::IgnoredAny;
    use serde_json::value::RawValue;
    if let Ok(items) = serde_json::from_slice::<Vec<&RawValue>>(bytes) {
        return items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("event {}", i + 1), v.get().as_bytes().to_vec()))
            .collect();
    }
    if serde_json::from_slice::<IgnoredAny>(bytes).is_ok() {
        return vec![("event 1".to_owned(), bytes.to_vec())];
    }
    let lines: Vec<(String, Vec<u8>)> = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(i, line)| (format!("line {}", i + 1), line.to_vec()))
        .collect();
    let is_json = |line: &[u8]| serde_json::from_slice::<IgnoredAny>(line).is_ok();
    if bytes.trim_ascii_start().starts_with(b"[") || !lines.iter().any(|(_, l)| is_json(l)) {
        return vec![("the document".to_owned(), bytes.to_vec())];
    }
    lines
}

/// `error` and each of its causes, joined by ": " (as `{:#}` prints an
/// anyhow error), for an error only borrowed.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}

/// Quotes a word for POSIX sh: as it is when plain, else in single quotes.
pub(crate) fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@+,".contains(&b))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Of `signals`, those this process does not ignore. A signal ignored when
/// prov starts (SIGHUP under `nohup`, SIGINT for a background job of a
/// script) stays ignored: prov does not take it over, and so neither stops
/// on it nor forwards it to a step (which inherits it ignored). Read from
/// Linux's `/proc/self/status` (`SigIgn`); where that cannot be read, every
/// signal is taken to be handled.
pub fn not_ignored(signals: &[i32]) -> Vec<i32> {
    let ignored = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("SigIgn:"))?;
            u64::from_str_radix(line["SigIgn:".len()..].trim(), 16).ok()
        })
        .unwrap_or(0);
    signals
        .iter()
        .copied()
        .filter(|&s| !(1..=64).contains(&s) || ignored & (1u64 << (s - 1)) == 0)
        .collect()
}
