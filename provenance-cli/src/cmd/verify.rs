//! `prov verify`: are these files still the bytes the pipeline recorded? Is the
//! trail intact?

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use provenance_core::hash::{HashOptions, Hasher};

use crate::ctx::Ctx;

/// Compare files with their latest recorded version (exit 1 on any difference),
/// or check the store's hash chain with --chain (exit 1 at the first broken
/// position; the head hash is printed for an auditor to keep).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  prov verify results/S1.vcf.gz results/S1.bam\n  prov verify --chain"
)]
pub struct Args {
    /// Files to compare with what the store recorded.
    #[arg(value_name = "PATH", required_unless_present = "chain")]
    paths: Vec<PathBuf>,

    /// Check the store's hash chain instead.
    #[arg(long, conflicts_with = "paths")]
    chain: bool,

    /// Read every file again rather than trusting the hash cache.
    #[arg(long)]
    rehash: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = super::Format::Text)]
    format: super::Format,
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
            let report = store.verify_chain()?;
            if self.format == super::Format::Json {
                super::write_json(&mut out, &report)?;
            } else if let Some(b) = &report.broken {
                writeln!(out, "chain BROKEN at position {}: {}", b.position, b.reason)?;
            } else {
                writeln!(
                    out,
                    "chain OK: {} events; head {}",
                    report.events,
                    report.head.as_deref().unwrap_or("(empty)")
                )?;
            }
            return Ok(if report.broken.is_some() {
                ExitCode::from(crate::exit::CHECK_FAILED)
            } else {
                ExitCode::SUCCESS
            });
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
