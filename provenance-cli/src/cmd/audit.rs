//! `prov audit`: the questions compliance and QA ask of the store.

use std::io::Write;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use provenance_store::{Page, RunFilter, RunRecord, VersionRecord};

use crate::ctx::Ctx;

/// Audit questions: which runs used an image, what derives from an input,
/// which runs match filters, which ran unpinned images.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    question: Question,

    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = super::Format::Text)]
    format: super::Format,
}

#[derive(Debug, clap::Subcommand)]
enum Question {
    /// Every run that used an image (by digest, or by repository and tag), and
    /// every output downstream of those runs.
    Container {
        /// `sha256:<hex>`, or an image reference such as broadinstitute/gatk:4.5.0.0;
        /// the start of a digest (12 hex digits or more) as `lineage` prints it,
        /// alone or after its repository, finds every digest that begins so.
        image: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Everything derived from a target (one sample's FASTQ, say).
    Derived {
        /// A file path, sha256:<hex>, run:<uuid>, dataset:<ns>:<name> or job:<ns>:<name>.
        target: String,
    },
    /// Runs matching filters, newest first.
    Runs {
        /// Job name.
        #[arg(long)]
        job: Option<String>,
        /// Latest state (any case); OTHER: runs whose events never moved their
        /// state (only OTHER events).
        #[arg(
            long,
            ignore_case = true,
            value_parser = clap::builder::PossibleValuesParser::new(RUN_STATES)
        )]
        status: Option<String>,
        /// First seen at or after this time (RFC 3339).
        #[arg(long, value_parser = super::parse_time)]
        since: Option<i64>,
        /// First seen before this time (RFC 3339).
        #[arg(long, value_parser = super::parse_time)]
        until: Option<i64>,
        /// The user who ran it.
        #[arg(long)]
        user: Option<String>,
        /// The host it ran on.
        #[arg(long)]
        host: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Runs whose image is known only by a tag, which can move.
    Unpinned {
        #[command(flatten)]
        page: PageArgs,
    },
}

#[derive(Debug, clap::Args)]
struct PageArgs {
    /// At most this many runs.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    limit: u64,
    /// Skip this many runs first.
    #[arg(long, default_value_t = 0)]
    offset: u64,
}

impl PageArgs {
    fn page(&self) -> Page {
        Page {
            offset: self.offset,
            limit: self.limit,
        }
    }
}

fn when(micros: Option<i64>) -> String {
    micros
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn write_runs(out: &mut impl Write, runs: &[RunRecord]) -> std::io::Result<()> {
    for r in runs {
        let image = match (&r.container_digest, &r.container_image) {
            (Some(d), _) => d.clone(),
            (None, Some(i)) => format!("UNPINNED {i}"),
            (None, None) => "-".into(),
        };
        writeln!(
            out,
            "{}  {:<9} {:<20} {}  {}",
            r.run_id,
            r.state.as_deref().unwrap_or("-"),
            r.job,
            when(r.started_at.or(r.ended_at)),
            image
        )?;
    }
    Ok(())
}

fn write_outputs(out: &mut impl Write, outputs: &[VersionRecord]) -> std::io::Result<()> {
    for v in outputs {
        let digest = v
            .digest
            .as_deref()
            .map_or_else(|| v.version.clone(), |d| format!("sha256:{d}"));
        writeln!(out, "  {}  {digest}", v.name)?;
    }
    Ok(())
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let store = ctx.existing_store()?;
        let mut out = std::io::stdout().lock();
        let json = self.format == super::Format::Json;
        match self.question {
            Question::Container { image, page } => {
                let audit =
                    super::read_consistently(&store, store.audit_container(&image, page.page()))?;
                if json {
                    super::write_json(&mut out, &audit)?;
                } else {
                    writeln!(out, "{} runs used {image}:", audit.runs.total)?;
                    write_runs(&mut out, &audit.runs.items)?;
                    // The outputs are those of the runs on this page.
                    let of = if audit.runs.items.len() as u64 == audit.runs.total {
                        "them".to_owned()
                    } else {
                        format!(
                            "the {} runs listed here (the other runs' outputs are on their pages)",
                            audit.runs.items.len()
                        )
                    };
                    writeln!(out, "{} outputs downstream of {of}:", audit.outputs.len())?;
                    write_outputs(&mut out, &audit.outputs)?;
                    if let Some(next) = audit.runs.next_offset() {
                        writeln!(out, "(more runs: --offset {next})")?;
                    }
                }
            }
            Question::Derived { target } => {
                let target = super::resolve_target(ctx, &store, &target)?;
                let derived = super::read_consistently(&store, store.derived_from(&target, None))?;
                if json {
                    super::write_json(&mut out, &derived)?;
                } else {
                    writeln!(
                        out,
                        "{} runs read {target} or something made from it:",
                        derived.runs.len()
                    )?;
                    write_runs(&mut out, &derived.runs)?;
                    writeln!(out, "{} outputs derive from it:", derived.outputs.len())?;
                    write_outputs(&mut out, &derived.outputs)?;
                }
            }
            Question::Runs {
                job,
                status,
                since,
                until,
                user,
                host,
                page,
            } => {
                let filter = RunFilter {
                    job,
                    state: status.map(|s| s.to_ascii_uppercase()),
                    since,
                    until,
                    user,
                    host,
                    ..RunFilter::default()
                };
                let runs = super::read_consistently(&store, store.runs(&filter, page.page()))?;
                if json {
                    super::write_json(&mut out, &runs)?;
                } else {
                    write_runs(&mut out, &runs.items)?;
                    writeln!(out, "{} of {} runs", runs.items.len(), runs.total)?;
                    if let Some(next) = runs.next_offset() {
                        writeln!(out, "(more: --offset {next})")?;
                    }
                }
            }
            Question::Unpinned { page } => {
                let filter = RunFilter {
                    unpinned: true,
                    ..RunFilter::default()
                };
                let runs = super::read_consistently(&store, store.runs(&filter, page.page()))?;
                // Why each stayed unpinned, as its prov_container recorded it.
                let mut reasons = Vec::with_capacity(runs.items.len());
                for run in &runs.items {
                    let facets = super::read_consistently(&store, store.run_facets(&run.run_id))?;
                    reasons.push(
                        facets
                            .get("prov_container")
                            .and_then(|c| c["unpinnedReason"].as_str())
                            .map(str::to_owned),
                    );
                }
                if json {
                    let mut value = serde_json::to_value(&runs)?;
                    if let Some(items) = value["items"].as_array_mut() {
                        for (item, reason) in items.iter_mut().zip(&reasons) {
                            item["unpinnedReason"] = reason.clone().into();
                        }
                    }
                    super::write_json(&mut out, &value)?;
                } else {
                    writeln!(
                        out,
                        "{} runs used an image known only by its tag:",
                        runs.total
                    )?;
                    for (run, reason) in runs.items.iter().zip(&reasons) {
                        write_runs(&mut out, std::slice::from_ref(run))?;
                        if let Some(reason) = reason {
                            writeln!(out, "    unpinned because: {reason}")?;
                        }
                    }
                    if let Some(next) = runs.next_offset() {
                        writeln!(out, "(more: --offset {next})")?;
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The states a run may be in (its latest event's type), for `--status`.
pub const RUN_STATES: [&str; 6] = ["START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "OTHER"];
