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

use super::shell_word as sh;
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

/// Text from an event or the command line, made fit for a comment of the
/// script: a line break (or any control character) in a job name cannot end
/// the comment and start a command.
fn comment(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Writes the recipe as a shell script. Every value that comes from the
/// store (paths, digests, commands, images) is quoted as one word, and text
/// in comments is kept to its line.
fn write_script(out: &mut impl Write, target: &str, steps: &[Step]) -> std::io::Result<()> {
    writeln!(out, "#!/bin/sh")?;
    writeln!(
        out,
        "# Re-executes the recorded recipe of {}, written by prov rerun.",
        comment(target)
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
            comment(&step.job),
            comment(&step.run_id)
        )?;
        for input in &step.inputs {
            if let Some(h) = &input.sha256 {
                writeln!(out, "check_input {} {}", sh(&input.path), sh(h))?;
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
                    "docker run --rm -v {0}:{0} -w {0} {1} {2}",
                    sh(dir),
                    sh(&format!("{name}@{digest}")),
                    argv.join(" ")
                )
            }
            _ if argv.is_empty() => {
                // Its producer recorded no command (another tool's events):
                // nothing to run, so nothing to compare.
                writeln!(
                    out,
                    "echo {} >&2\nstatus=1",
                    sh(&format!(
                        "step {}: {} has no recorded command; not run again",
                        i + 1,
                        comment(&step.job)
                    ))
                )?;
                continue;
            }
            _ => argv.join(" "),
        };
        writeln!(out, "(cd {} && {command})", sh(dir))?;
        for output in &step.outputs {
            if let Some(h) = &output.sha256 {
                writeln!(out, "check_output {} {}", sh(&output.path), sh(h))?;
            }
        }
    }
    writeln!(out, "\nexit $status")
}

impl Args {
    /// Whether this runs steps again (`--check`), rather than only printing
    /// the recipe.
    pub fn runs_steps(&self) -> bool {
        self.check
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A step as another producer's events might describe it.
    fn step(job: &str, argv: &[&str], digest: &str) -> Step {
        Step {
            job: job.into(),
            run_id: "0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d31\n touch /tmp/x".into(),
            fingerprint: None,
            argv: argv.iter().map(|a| a.to_string()).collect(),
            working_directory: Some("/tmp".into()),
            image: Some("quay.io/x/y:1".into()),
            image_digest: Some(format!("sha256:{digest}")),
            runtime: Some("docker".into()),
            parameters: Value::Null,
            inputs: vec![FileRef {
                path: "/data/in.txt".into(),
                local: true,
                sha256: Some(digest.into()),
            }],
            outputs: vec![FileRef {
                path: "/data/out.txt".into(),
                local: true,
                sha256: Some(digest.into()),
            }],
        }
    }

    #[test]
    fn values_from_events_stay_words_and_comments_in_the_script() {
        let dir = std::env::temp_dir().join(format!("prov-rerun-script-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pwned = dir.join("PWNED");
        let touch = format!("touch {}", pwned.display());
        let hostile = format!("$({touch})");
        let mut plain = step(&format!("call\n{touch}\n#"), &["bwa", "mem"], &hostile);
        plain.image = None;
        plain.runtime = None;
        let docked = step(&format!("x\r{touch}"), &["echo", "ok"], &hostile);
        // Another producer's step with no command to run.
        let mut bare = step("other-tool", &[], "ab");
        bare.image = None;
        let mut script = Vec::new();
        write_script(
            &mut script,
            &format!("dataset:x\n{touch}"),
            &[plain, docked, bare],
        )
        .unwrap();
        let script = String::from_utf8(script).unwrap();
        let path = dir.join("rerun.sh");
        std::fs::write(&path, &script).unwrap();

        // It parses, and running it (its first input check fails at once)
        // runs nothing that came from an event.
        let syntax = std::process::Command::new("sh")
            .arg("-n")
            .arg(&path)
            .output()
            .unwrap();
        assert!(syntax.status.success(), "{script}\n{syntax:?}");
        let ran = std::process::Command::new("sh")
            .arg(&path)
            .output()
            .unwrap();
        assert!(!ran.status.success());
        assert!(!pwned.exists(), "{script}");
        assert!(!script.lines().any(|l| l.starts_with("touch")), "{script}");
        assert!(script.contains("'quay.io/x/y@sha256:$(touch"), "{script}");
        assert!(script.contains("has no recorded command"), "{script}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
