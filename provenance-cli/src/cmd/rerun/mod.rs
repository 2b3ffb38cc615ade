//! `prov rerun`: the recipe of a result, from the store: every step that
//! produced it, in order, with command, working directory, image digest,
//! parameters, input digests and expected output digests; as a plan, as a
//! shell script that re-executes it and checks every digest, or re-executed
//! here in a scratch directory (`--check`, in `check.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use provenance_core::recorder::REDACTED;
use provenance_store::{Direction, LineageGraph, LineageQuery, Target};
use serde::Serialize;
use serde_json::Value;

use crate::ctx::Ctx;

mod check;

/// Show how a result was made, step by step (--plan), write a script that
/// makes it again and checks every input and output digest (--script), or
/// make it again here in a scratch directory and compare (--check).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
prov rerun --plan results/cohort.vcf.gz\n  \
prov rerun --script results/cohort.vcf.gz > rerun.sh && bash rerun.sh\n  \
prov rerun --check --workdir /scratch/rerun results/cohort.vcf.gz\n\n\
--check copies the recorded raw inputs (checking their sha-256) under the scratch directory at \
their recorded absolute paths, runs every step there with those paths in its command moved \
under the scratch directory, records the new runs (prov_rerun names the original), and reports \
per output IDENTICAL or DIFFERENT with both digests. Exit 0 only if every output reproduced.")]
pub struct Args {
    /// The result: a file path, sha256:<hex>, dataset:<ns>:<name>[#<version>] or run:<uuid>.
    target: String,

    /// Print the ordered steps (the default).
    #[arg(long, conflicts_with_all = ["script", "check"])]
    plan: bool,

    /// Print a standalone shell script that re-executes the steps.
    #[arg(long, conflicts_with = "check")]
    script: bool,

    /// Re-execute the steps here, in a scratch directory, record them as new
    /// runs linked to the originals, and compare every output's bytes.
    #[arg(long)]
    check: bool,

    /// The scratch directory for --check (created; must be empty)
    /// [default: a new directory under the system's temporary directory].
    #[arg(long, value_name = "DIR", requires = "check")]
    workdir: Option<PathBuf>,

    /// With --check, hard-link the raw inputs into the scratch directory
    /// instead of copying them (same file system only; a step that writes
    /// into its input would then change the original).
    #[arg(long, requires = "check")]
    link: bool,

    /// Output format of the plan.
    #[arg(long, value_enum, default_value_t = super::Format::Text)]
    format: super::Format,
}

/// A file a step reads or writes, with its recorded content. `path` is the
/// local path for `file` datasets, `namespace:name` for others.
#[derive(Debug, Clone, Serialize)]
struct FileRef {
    path: String,
    #[serde(skip)]
    local: bool,
    sha256: Option<String>,
}

/// One step of the recipe.
#[derive(Debug, Serialize)]
struct Step {
    job: String,
    #[serde(rename = "runId")]
    run_id: String,
    fingerprint: Option<String>,
    argv: Vec<String>,
    #[serde(rename = "workingDirectory")]
    working_directory: Option<String>,
    image: Option<String>,
    #[serde(rename = "imageDigest")]
    image_digest: Option<String>,
    runtime: Option<String>,
    parameters: Value,
    inputs: Vec<FileRef>,
    outputs: Vec<FileRef>,
}

fn file_ref(graph: &LineageGraph, id: &str) -> Option<FileRef> {
    let node = graph.node(id)?;
    let ns = node.data["namespace"].as_str()?;
    let name = node.data["name"].as_str()?;
    Some(FileRef {
        local: ns == "file",
        path: if ns == "file" {
            name.to_owned()
        } else {
            format!("{ns}:{name}")
        },
        sha256: node.data["digest"].as_str().map(str::to_owned),
    })
}

/// The runs of the graph in an order where every run comes after the runs
/// that wrote its inputs.
fn steps(graph: &LineageGraph) -> Vec<Step> {
    let runs: Vec<&provenance_store::Node> =
        graph.graph.iter().filter(|n| n.kind == "RUN").collect();
    // run -> runs it depends on (writers of its inputs)
    let writer_of: BTreeMap<&str, Vec<&str>> = graph
        .graph
        .iter()
        .filter(|n| n.kind == "DATASET")
        .map(|n| {
            (
                n.id.as_str(),
                n.in_edges.iter().map(|e| e.origin.as_str()).collect(),
            )
        })
        .collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut ordered = Vec::new();
    while ordered.len() < runs.len() {
        let before = ordered.len();
        for run in &runs {
            if done.contains(run.id.as_str()) {
                continue;
            }
            let ready = run.in_edges.iter().all(|e| {
                writer_of
                    .get(e.origin.as_str())
                    .is_none_or(|writers| writers.iter().all(|w| done.contains(w) || *w == run.id))
            });
            if ready {
                done.insert(run.id.as_str());
                ordered.push(*run);
            }
        }
        if ordered.len() == before {
            // A cycle cannot come from recorded runs, but never loop forever.
            ordered.extend(runs.iter().filter(|r| !done.contains(r.id.as_str())));
            break;
        }
    }
    ordered
        .into_iter()
        .map(|run| {
            let d = &run.data;
            let execution = &d["facets"]["prov_execution"];
            let container = &d["facets"]["prov_container"];
            Step {
                job: d["job"].as_str().unwrap_or("?").to_owned(),
                run_id: d["runId"].as_str().unwrap_or("?").to_owned(),
                fingerprint: d["fingerprint"].as_str().map(str::to_owned),
                argv: execution["argv"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                working_directory: execution["workingDirectory"].as_str().map(str::to_owned),
                image: d["containerImage"].as_str().map(str::to_owned),
                image_digest: d["containerDigest"].as_str().map(str::to_owned),
                runtime: container["runtime"].as_str().map(str::to_owned),
                parameters: d["facets"]["prov_parameters"]["parameters"].clone(),
                inputs: run
                    .in_edges
                    .iter()
                    .filter_map(|e| file_ref(graph, &e.origin))
                    .collect(),
                outputs: run
                    .out_edges
                    .iter()
                    .filter_map(|e| file_ref(graph, &e.destination))
                    .collect(),
            }
        })
        .collect()
}

/// The repository of an image reference, without tag or digest
/// (`localhost:5000/bwa:1@sha256:..` -> `localhost:5000/bwa`).
fn image_name(image: &str) -> &str {
    let name = image.split('@').next().unwrap_or(image);
    name.rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .map_or(name, |(n, _)| n)
}

/// What `apptainer exec` runs: an image file by its path, a registry image
/// by its digest.
fn apptainer_image(image: &str, digest: &str) -> String {
    if image.starts_with('/') {
        image.to_owned()
    } else {
        format!("docker://{}@{digest}", image_name(image))
    }
}

/// Quotes a word for POSIX sh.
fn sh(word: &str) -> String {
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

fn write_script(out: &mut impl Write, target: &str, steps: &[Step]) -> std::io::Result<()> {
    writeln!(out, "#!/bin/sh")?;
    writeln!(
        out,
        "# Re-executes the recorded recipe of {target}, written by prov rerun."
    )?;
    writeln!(
        out,
        "# Each step checks its inputs' sha-256 first, and reports whether its outputs match."
    )?;
    writeln!(out, "set -eu")?;
    writeln!(out, "status=0")?;
    // A file's digest is its sha-256; a folder's is prov's Merkle digest
    // (as recorded), which needs prov: this one, or $PROV.
    let prov = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "prov".into());
    writeln!(out, "PROV=${{PROV:-{}}}", sh(&prov))?;
    writeln!(
        out,
        "digest() {{ if [ -d \"$1\" ]; then \"$PROV\" hash \"$1\" | cut -c1-64; else sha256sum < \"$1\" | cut -c1-64; fi; }}"
    )?;
    writeln!(
        out,
        "check_input() {{ [ \"$(digest \"$1\")\" = \"$2\" ] || {{ echo \"input $1 differs from the recorded $2\" >&2; exit 2; }}; }}"
    )?;
    writeln!(
        out,
        "check_output() {{ if [ -e \"$1\" ] && [ \"$(digest \"$1\")\" = \"$2\" ]; then echo \"IDENTICAL  $1\"; else echo \"DIFFERENT  $1 (recorded $2)\"; status=1; fi; }}"
    )?;
    for (i, step) in steps.iter().enumerate() {
        writeln!(
            out,
            "\n# step {}: {} (recorded as run {})",
            i + 1,
            step.job,
            step.run_id
        )?;
        for input in &step.inputs {
            if let Some(h) = &input.sha256 {
                writeln!(out, "check_input {} {h}", sh(&input.path))?;
            }
        }
        if hides_secrets(step) {
            writeln!(
                out,
                "# the recorded command hides secret values: put them back in place of {REDACTED}"
            )?;
        }
        let dir = step.working_directory.as_deref().unwrap_or(".");
        let argv: Vec<String> = step.argv.iter().map(|a| sh(a)).collect();
        let command = match (&step.image, &step.image_digest, step.runtime.as_deref()) {
            (Some(image), Some(digest), Some("apptainer")) => {
                format!(
                    "apptainer exec {} {}",
                    sh(&apptainer_image(image, digest)),
                    argv.join(" ")
                )
            }
            (Some(image), Some(digest), Some("docker" | "podman")) => {
                let name = image_name(image);
                format!(
                    "docker run --rm -v {0}:{0} -w {0} {1}@{digest} {2}",
                    sh(dir),
                    sh(name),
                    argv.join(" ")
                )
            }
            _ => argv.join(" "),
        };
        writeln!(out, "(cd {} && {command})", sh(dir))?;
        for output in &step.outputs {
            if let Some(h) = &output.sha256 {
                writeln!(out, "check_output {} {h}", sh(&output.path))?;
            }
        }
    }
    writeln!(out, "\nexit $status")
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let store = ctx.existing_store()?;
        let target = super::resolve_target(ctx, &store, &self.target)?;
        let graph = store.lineage(&LineageQuery {
            target,
            direction: Direction::Upstream,
            depth: provenance_store::MAX_DERIVED_DEPTH,
            as_of: None,
        })?;
        let mut steps = steps(&graph);
        // The same step run twice (the pipeline run again on the same inputs)
        // made the same versions: the recipe needs it once.
        let mut seen = BTreeSet::new();
        steps.retain(|s| {
            s.fingerprint
                .as_ref()
                .is_none_or(|f| seen.insert(f.clone()))
        });
        if steps.is_empty() {
            bail!("no recorded run produced {}", self.target);
        }
        // The upstream graph holds only the outputs on the way to the target;
        // a step's recipe includes everything it wrote.
        for step in &mut steps {
            let own = store.lineage(&LineageQuery {
                target: Target::Run(step.run_id.clone()),
                direction: Direction::Downstream,
                depth: 1,
                as_of: None,
            })?;
            if let Some(run) = own.node(&format!("run:{}", step.run_id)) {
                let all: Vec<FileRef> = run
                    .out_edges
                    .iter()
                    .filter_map(|e| file_ref(&own, &e.destination))
                    .collect();
                if all.len() > step.outputs.len() {
                    step.outputs = all;
                }
            }
        }
        if self.check {
            return check::run(
                ctx,
                &steps,
                check::Options {
                    workdir: self.workdir,
                    link: self.link,
                    json: self.format == super::Format::Json,
                    target: self.target,
                },
            );
        }
        let mut out = std::io::stdout().lock();
        if self.script {
            write_script(&mut out, &self.target, &steps)?;
        } else if self.format == super::Format::Json {
            super::write_json(&mut out, &steps)?;
        } else {
            for (i, s) in steps.iter().enumerate() {
                writeln!(out, "{}. {}  (run {})", i + 1, s.job, s.run_id)?;
                let image = match (&s.image, &s.image_digest) {
                    (_, Some(d)) => d.clone(),
                    (Some(i), None) => format!("UNPINNED {i}"),
                    (None, None) => "none".into(),
                };
                writeln!(out, "   image:   {image}")?;
                writeln!(out, "   command: {}", s.argv.join(" "))?;
                if let Some(dir) = &s.working_directory {
                    writeln!(out, "   in:      {dir}")?;
                }
                if s.parameters.as_object().is_some_and(|p| !p.is_empty()) {
                    writeln!(out, "   params:  {}", s.parameters)?;
                }
                for f in &s.inputs {
                    writeln!(
                        out,
                        "   reads    {}  sha256:{}",
                        f.path,
                        f.sha256.as_deref().unwrap_or("?")
                    )?;
                }
                for f in &s.outputs {
                    writeln!(
                        out,
                        "   writes   {}  sha256:{}",
                        f.path,
                        f.sha256.as_deref().unwrap_or("?")
                    )?;
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Whether a step's recorded command had secret values hidden.
fn hides_secrets(step: &Step) -> bool {
    step.argv.iter().any(|a| a.contains(REDACTED))
}
