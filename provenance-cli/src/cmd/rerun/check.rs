//! `prov rerun --check`: re-execute a recorded recipe in a scratch directory
//! and compare every output's bytes with what was recorded.
//!
//! Every recorded absolute path `P` lives at `SCRATCH/P` during the rerun: the
//! raw inputs (those no step of the recipe wrote) are copied there after their
//! sha-256 is checked at the recorded location, each step runs in its mapped
//! working directory, and recorded paths that appear in its command are moved
//! the same way. The reruns are recorded as new runs (children of one `rerun`
//! run), each with `prov_rerun` naming the run it repeats.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use provenance_core::facets::ContainerRuntime;
use provenance_core::hash::{HashOptions, Hasher};
use provenance_core::recorder::{Execution, REDACTED, Recorder};
use serde::Serialize;

use super::{Step, hides_secrets, image_name};
use crate::cmd::run::{flush, transports};
use crate::ctx::Ctx;

pub struct Options {
    pub workdir: Option<PathBuf>,
    pub link: bool,
    pub json: bool,
    pub target: String,
}

/// What became of one recorded output.
#[derive(Debug, Serialize)]
struct OutputReport {
    path: String,
    #[serde(rename = "rerunPath")]
    rerun_path: String,
    recorded: Option<String>,
    rerun: Option<String>,
    identical: bool,
}

#[derive(Debug, Serialize)]
struct StepReport {
    job: String,
    #[serde(rename = "originalRunId")]
    original_run_id: String,
    #[serde(rename = "runId")]
    run_id: String,
    #[serde(rename = "exitCode")]
    exit_code: Option<i32>,
    outputs: Vec<OutputReport>,
}

#[derive(Debug, Serialize)]
struct Report {
    target: String,
    #[serde(rename = "scratchDirectory")]
    scratch_directory: String,
    reproduced: bool,
    /// The step that failed, and how, if one did (the steps after it did not run).
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
    steps: Vec<StepReport>,
    /// The outputs the recipe records, steps not run included.
    #[serde(rename = "recordedOutputs")]
    recorded_outputs: usize,
}

/// Moves recorded absolute paths under the scratch directory.
struct PathMap {
    scratch: PathBuf,
    /// Recorded paths and working directories, longest first.
    known: Vec<String>,
}

impl PathMap {
    fn new(scratch: PathBuf, steps: &[Step]) -> Self {
        let mut known: BTreeSet<String> = BTreeSet::new();
        for step in steps {
            for f in step.inputs.iter().chain(&step.outputs) {
                if f.local && f.path.starts_with('/') {
                    known.insert(f.path.clone());
                }
            }
            if let Some(dir) = &step.working_directory
                && dir.starts_with('/')
                && dir != "/"
            {
                known.insert(dir.clone());
            }
        }
        let mut known: Vec<String> = known.into_iter().collect();
        known.sort_by_key(|p| std::cmp::Reverse(p.len()));
        PathMap { scratch, known }
    }

    /// Where a recorded absolute path lives during the rerun.
    fn path(&self, recorded: &str) -> PathBuf {
        self.scratch.join(recorded.trim_start_matches('/'))
    }

    /// A command word with every recorded path in it moved: `/data/S1.fq`,
    /// `--in=/data/S1.fq` and `sort /data/a > /data/b` (for `sh -c`) all
    /// work. A path counts only where it starts a word or follows a
    /// separator, so `/x/data/a` is not taken for `/data/a`.
    fn word(&self, word: &str) -> String {
        let mut out = String::with_capacity(word.len());
        let mut rest = word;
        let mut prev: Option<char> = None;
        'scan: while let Some(c) = rest.chars().next() {
            let boundary = prev.is_none_or(|p| !(p.is_alphanumeric() || "._-/~$".contains(p)));
            if c == '/' && boundary {
                for known in &self.known {
                    if let Some(after) = rest.strip_prefix(known.as_str())
                        && after
                            .chars()
                            .next()
                            .is_none_or(|n| !(n.is_alphanumeric() || n == '_' || n == '-'))
                    {
                        // The match ends the path or goes on deeper (`/`) or
                        // as a suffix (`ref.fa.bwt`): in the same directory
                        // either way, so moving the prefix is right.
                        out.push_str(&self.path(known).to_string_lossy());
                        prev = known.chars().last();
                        rest = after;
                        continue 'scan;
                    }
                }
            }
            out.push(c);
            prev = Some(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

/// A new, empty scratch directory.
fn scratch_dir(requested: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = match requested {
        Some(dir) => dir,
        None => {
            std::env::temp_dir().join(format!("prov-rerun-{}", provenance_core::RunId::new_v7()))
        }
    };
    match std::fs::read_dir(&dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "the scratch directory {} is not empty; give an empty or new --workdir, \
                     so that nothing left from before can pass for a reproduced output",
                    dir.display()
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("create the scratch directory {}", dir.display()))?;
        }
        Err(e) => {
            return Err(e).with_context(|| format!("read the scratch directory {}", dir.display()));
        }
    }
    let dir = std::fs::canonicalize(&dir)
        .with_context(|| format!("resolve the scratch directory {}", dir.display()))?;
    Ok(dir)
}

/// Copies (or hard-links) a file or a directory tree.
fn place(from: &Path, to: &Path, link: bool) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    if meta.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            place(&entry.path(), &to.join(entry.file_name()), link)?;
        }
        Ok(())
    } else if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)
    } else {
        if link && std::fs::hard_link(from, to).is_ok() {
            return Ok(());
        }
        std::fs::copy(from, to).map(drop)
    }
}

/// The sha-256 of a path, through the hash cache.
fn sha256_of(ctx: &Ctx, path: &Path) -> Result<String, provenance_core::hash::HashError> {
    let cache = ctx.hash_cache();
    let mut hasher = Hasher::new(HashOptions::default());
    if let Some(c) = &cache {
        hasher = hasher.with_cache(c.as_ref());
    }
    hasher.hash(path).map(|d| d.sha256)
}

/// Checks the raw inputs at their recorded locations and places them under
/// the scratch directory.
fn stage_inputs(ctx: &Ctx, steps: &[Step], map: &PathMap, link: bool) -> anyhow::Result<()> {
    let written: BTreeSet<&str> = steps
        .iter()
        .flat_map(|s| s.outputs.iter().map(|f| f.path.as_str()))
        .collect();
    let mut staged: BTreeSet<&str> = BTreeSet::new();
    for step in steps {
        for input in &step.inputs {
            if written.contains(input.path.as_str()) || !staged.insert(input.path.as_str()) {
                continue;
            }
            if !input.local || !input.path.starts_with('/') {
                bail!(
                    "step {} reads {}, which is not a local file; --check can only rerun \
                     steps whose raw inputs are on this machine (use --script elsewhere)",
                    step.job,
                    input.path
                );
            }
            let Some(recorded) = &input.sha256 else {
                bail!(
                    "step {} read {} but no digest was recorded for it, so it cannot be checked",
                    step.job,
                    input.path
                );
            };
            let source = Path::new(&input.path);
            if !source.exists() {
                bail!(
                    "the input {} of step {} is missing (recorded sha256:{recorded})",
                    input.path,
                    step.job
                );
            }
            let now = sha256_of(ctx, source)
                .with_context(|| format!("hash the input {} of step {}", input.path, step.job))?;
            if &now != recorded {
                bail!(
                    "the input {} of step {} has changed: recorded sha256:{recorded}, now sha256:{now}",
                    input.path,
                    step.job
                );
            }
            let target = map.path(&input.path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("create {}", parent.display()))?;
            }
            place(source, &target, link).with_context(|| {
                format!("copy the input {} to {}", input.path, target.display())
            })?;
        }
    }
    Ok(())
}

/// The command to run for a step: in its recorded container by digest when
/// there is one, plain otherwise.
fn command_line(step: &Step, map: &PathMap, cwd: &Path) -> Vec<String> {
    let argv: Vec<String> = step.argv.iter().map(|w| map.word(w)).collect();
    let scratch = map.scratch.to_string_lossy().into_owned();
    let cwd = cwd.to_string_lossy().into_owned();
    match (&step.image, &step.image_digest, step.runtime.as_deref()) {
        (Some(image), Some(digest), Some(runtime @ ("docker" | "podman"))) => {
            let name = image_name(image);
            let mut line = vec![
                runtime.to_owned(),
                "run".into(),
                "--rm".into(),
                "-v".into(),
                format!("{scratch}:{scratch}"),
                "-w".into(),
                cwd,
                format!("{name}@{digest}"),
            ];
            line.extend(argv);
            line
        }
        (Some(image), Some(digest), Some("apptainer")) => {
            let mut line = vec![
                "apptainer".into(),
                "exec".into(),
                "--bind".into(),
                scratch,
                "--pwd".into(),
                cwd,
                super::apptainer_image(image, digest),
            ];
            line.extend(argv);
            line
        }
        _ => argv,
    }
}

pub fn run(ctx: &Ctx, steps: &[Step], options: Options) -> anyhow::Result<ExitCode> {
    let scratch = scratch_dir(options.workdir)?;
    if let Some(step) = steps.iter().find(|s| hides_secrets(s)) {
        anyhow::bail!(
            "the recorded command of job {} (run {}) hides secret values ({REDACTED}), so it cannot be run again as recorded; use --script and put them back",
            step.job,
            step.run_id
        );
    }
    let map = PathMap::new(scratch.clone(), steps);
    eprintln!("prov: rerun in {}", scratch.display());
    stage_inputs(ctx, steps, &map, options.link)?;

    let recorder = Recorder::new("default", transports(ctx)?);
    let recorder = match ctx.hash_cache() {
        Some(cache) => recorder.with_cache(cache),
        None => recorder,
    };
    let parent = recorder
        .step("rerun")
        .job_type("PIPELINE")
        .command(vec![
            "prov".into(),
            "rerun".into(),
            "--check".into(),
            options.target.clone(),
        ])
        .param("target", &options.target)
        .start()
        .context("record the start of the rerun")?;

    let mut reports = Vec::new();
    let mut failed: Option<String> = None;
    for (i, step) in steps.iter().enumerate() {
        let cwd = match &step.working_directory {
            Some(dir) if dir.starts_with('/') => map.path(dir),
            _ => scratch.clone(),
        };
        std::fs::create_dir_all(&cwd).with_context(|| format!("create {}", cwd.display()))?;
        for output in step.outputs.iter().filter(|o| o.local) {
            if let Some(parent) = map.path(&output.path).parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("create {}", parent.display()))?;
            }
        }
        let line = command_line(step, &map, &cwd);
        if line.is_empty() {
            failed = Some(format!(
                "step {} ({}) has no recorded command",
                i + 1,
                step.job
            ));
            break;
        }
        let mut builder = recorder
            .step(step.job.clone())
            .command(line.clone())
            .parent(&parent)
            .rerun_of(&step.run_id, scratch.to_string_lossy());
        if let Some(image) = &step.image {
            let runtime = match step.runtime.as_deref() {
                Some("docker") => ContainerRuntime::Docker,
                Some("podman") => ContainerRuntime::Podman,
                Some("apptainer") => ContainerRuntime::Apptainer,
                _ => ContainerRuntime::None,
            };
            let pinned = match &step.image_digest {
                // An image file is named by its path (and hashed again).
                Some(d) if !image.starts_with('/') => format!("{}@{d}", image_name(image)),
                _ => image.clone(),
            };
            builder = builder.container(pinned, runtime);
        }
        if let Some(params) = step.parameters.as_object() {
            for (k, v) in params {
                builder = builder.param(k.clone(), v.clone());
            }
        }
        for input in step.inputs.iter().filter(|f| f.local) {
            builder = builder.input(map.path(&input.path).to_string_lossy().into_owned());
        }
        let handle = builder
            .start()
            .with_context(|| format!("record the start of step {} ({})", i + 1, step.job))?;
        let run_id = handle.run_id().to_string();
        eprintln!("prov: step {} of {}: {}", i + 1, steps.len(), step.job);
        let status = Command::new(&line[0])
            .args(&line[1..])
            .current_dir(&cwd)
            .env("PROV_PARENT_RUN", &run_id)
            .status();
        let execution = |code: Option<i32>| Execution {
            argv: Some(line.clone()),
            exit_code: code,
            working_directory: Some(cwd.to_string_lossy().into_owned()),
            ..Execution::default()
        };
        let code = match status {
            Ok(status) => status.code(),
            Err(e) => {
                let mut message = format!("start {}: {e}", line[0]);
                // A program kept beside the data but never declared is not
                // in the scratch folder: say so, and how to record it.
                if let Some(original) = step.argv.first().filter(|p| **p != line[0])
                    && Path::new(original).is_file()
                    && !Path::new(&line[0]).exists()
                {
                    message.push_str(&format!(
                        "; the program {original} lies under the recorded working directory but was not recorded as an input, so the scratch folder has no copy (record it with --input {original})"
                    ));
                }
                let _ = handle.fail(&message, execution(None));
                failed = Some(format!("step {} ({}): {message}", i + 1, step.job));
                break;
            }
        };
        if code != Some(0) {
            let message = match code {
                Some(c) => format!("{} exited with status {c}", line[0]),
                None => format!("{} was killed by a signal", line[0]),
            };
            let _ = handle.fail(&message, execution(code));
            failed = Some(format!("step {} ({}): {message}", i + 1, step.job));
            break;
        }
        // The outputs it made are hashed once, by the recorder, and compared.
        let local: Vec<_> = step.outputs.iter().filter(|o| o.local).collect();
        let rerun_paths: Vec<String> = local
            .iter()
            .map(|o| map.path(&o.path).to_string_lossy().into_owned())
            .collect();
        let made: Vec<&str> = rerun_paths
            .iter()
            .map(String::as_str)
            .filter(|p| Path::new(p).exists())
            .collect();
        let digests = handle
            .complete_with_digests(&made, execution(code))
            .with_context(|| format!("record the end of step {} ({})", i + 1, step.job))?;
        let by_path: BTreeMap<&str, Option<String>> = made.iter().copied().zip(digests).collect();
        let mut outputs = Vec::with_capacity(local.len());
        for (output, rerun_path) in local.into_iter().zip(&rerun_paths) {
            let rerun = by_path.get(rerun_path.as_str()).cloned().flatten();
            outputs.push(OutputReport {
                path: output.path.clone(),
                rerun_path: rerun_path.clone(),
                identical: rerun.is_some() && rerun == output.sha256,
                recorded: output.sha256.clone(),
                rerun,
            });
        }
        reports.push(StepReport {
            job: step.job.clone(),
            original_run_id: step.run_id.clone(),
            run_id,
            exit_code: code,
            outputs,
        });
    }
    let reproduced = failed.is_none()
        && reports
            .iter()
            .all(|s| s.outputs.iter().all(|o| o.identical));
    let finish = match &failed {
        Some(message) => parent.fail(message, Execution::default()),
        None => parent.complete(&[]),
    };
    finish.context("record the end of the rerun")?;
    flush(&recorder);

    let report = Report {
        target: options.target,
        scratch_directory: scratch.to_string_lossy().into_owned(),
        reproduced,
        failure: failed,
        steps: reports,
        recorded_outputs: steps
            .iter()
            .map(|s| s.outputs.iter().filter(|o| o.local).count())
            .sum(),
    };
    let mut out = std::io::stdout().lock();
    if options.json {
        crate::cmd::write_json(&mut out, &report)?;
    } else {
        for (i, step) in report.steps.iter().enumerate() {
            writeln!(
                out,
                "{}. {}  (run {}, rerun of {})",
                i + 1,
                step.job,
                step.run_id,
                step.original_run_id
            )?;
            for o in &step.outputs {
                let recorded = o.recorded.as_deref().unwrap_or("none recorded");
                match (&o.rerun, o.identical) {
                    (_, true) => writeln!(out, "   IDENTICAL  {}  sha256:{recorded}", o.path)?,
                    (Some(now), false) => writeln!(
                        out,
                        "   DIFFERENT  {}  recorded sha256:{recorded}, rerun sha256:{now} ({})",
                        o.path, o.rerun_path
                    )?,
                    (None, false) => writeln!(
                        out,
                        "   MISSING    {}  recorded sha256:{recorded}; the rerun did not create {}",
                        o.path, o.rerun_path
                    )?,
                }
            }
        }
        if let Some(message) = &report.failure {
            writeln!(out, "FAILED: {message}")?;
        }
        // Out of every output recorded: those of steps not reached count
        // as not reproduced.
        let outputs = report.recorded_outputs;
        let same: usize = report
            .steps
            .iter()
            .map(|s| s.outputs.iter().filter(|o| o.identical).count())
            .sum();
        writeln!(
            out,
            "{}: {same} of {outputs} outputs identical, in {}",
            if report.reproduced {
                "REPRODUCED"
            } else {
                "NOT REPRODUCED"
            },
            report.scratch_directory
        )?;
    }
    Ok(if report.reproduced {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::CHECK_FAILED)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(known: &[&str]) -> PathMap {
        let mut known: Vec<String> = known.iter().map(|s| s.to_string()).collect();
        known.sort_by_key(|p| std::cmp::Reverse(p.len()));
        PathMap {
            scratch: PathBuf::from("/scratch"),
            known,
        }
    }

    #[test]
    fn recorded_paths_in_command_words_move_under_the_scratch_directory() {
        let m = map(&["/data", "/data/S1.fq", "/data/ref.fa"]);
        assert_eq!(m.word("/data/S1.fq"), "/scratch/data/S1.fq");
        assert_eq!(m.word("--in=/data/S1.fq"), "--in=/scratch/data/S1.fq");
        assert_eq!(
            m.word("sort /data/S1.fq > /data/out"),
            "sort /scratch/data/S1.fq > /scratch/data/out"
        );
        assert_eq!(m.word("/data/ref.fa.bwt"), "/scratch/data/ref.fa.bwt");
        // Not a recorded path: a longer one that merely contains it, or none.
        assert_eq!(m.word("/x/data/S1.fq"), "/x/data/S1.fq");
        assert_eq!(m.word("/database"), "/database");
        assert_eq!(
            m.word("/data/S1.fq_2"),
            "/scratch/data/S1.fq_2",
            "under /data"
        );
        assert_eq!(m.word("-t"), "-t");
        assert_eq!(m.word("/usr/bin/bwa"), "/usr/bin/bwa");
    }

    #[test]
    fn image_names_lose_tag_and_digest() {
        assert_eq!(
            image_name("quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8"),
            "quay.io/biocontainers/bwa"
        );
        assert_eq!(
            image_name("localhost:5000/bwa@sha256:ab"),
            "localhost:5000/bwa"
        );
        assert_eq!(image_name("localhost:5000/bwa"), "localhost:5000/bwa");
    }
}
