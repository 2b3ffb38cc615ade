//! `prov run`: wrap one pipeline step. Hash its inputs, emit START, run the
//! command with stdin, stdout and stderr passed through, hash its outputs, and
//! emit COMPLETE, FAIL or ABORT with its exit code, times and peak memory.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use provenance_core::RunId;
use provenance_core::facets::{ContainerRuntime, DigestSource, JobRef};
use provenance_core::recorder::{
    Execution, Lineage, RecordError, Recorder, local_name, local_path, uri_name,
};
use provenance_core::resolve::{Resolver, ResolverOptions};
use provenance_core::transport::{
    CompositeTransport, FailurePolicy, Transport, TransportConfig, load_config,
};
use provenance_store::StoreTransport;
use serde_json::Value;

use crate::ctx::Ctx;

/// Run one pipeline step and record it: inputs hashed before, outputs after,
/// START and then COMPLETE, FAIL or ABORT with the exit code, CPU time and
/// peak memory. Exits with the command's exit code.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
prov run --job bwa_mem --container quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8 \\\n      \
--param threads=8 --input ref.fa --input S1_R1.fq.gz --output S1.sam -- bwa mem -t 8 -o S1.sam ref.fa S1_R1.fq.gz\n  \
prov run --job wgs -- nextflow run main.nf     # steps that call prov run inside attach to this run\n\n\
Events go to the store (--store) and to whatever an OpenLineage configuration names \
(openlineage.yml, OPENLINEAGE__TRANSPORT__*, OPENLINEAGE_URL).")]
pub struct Args {
    /// The job's name [default: the command's name].
    #[arg(long)]
    job: Option<String>,

    /// The job's namespace.
    #[arg(long, env = "OPENLINEAGE_NAMESPACE", default_value = "default")]
    namespace: String,

    /// The container image the step runs in: a tag (resolved to its digest),
    /// pinned with @sha256:<digest>, or an image file such as bwa.sif (pinned
    /// by the sha-256 of its bytes).
    #[arg(long, value_name = "IMAGE")]
    container: Option<String>,

    /// The container runtime.
    #[arg(long, value_enum, default_value_t = Runtime::Docker, requires = "container")]
    runtime: Runtime,

    /// Refuse to run the command when the image cannot be pinned to a digest
    /// (for clinical use): a tag is resolved through the registry, the
    /// runtime or the image file; the cache of earlier answers counts only
    /// when the registry cannot be reached. [env: PROV_REQUIRE_PINNED=1]
    #[arg(
        long,
        env = "PROV_REQUIRE_PINNED",
        hide_env = true,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    require_pinned: bool,

    /// A parameter, KEY=VALUE (repeatable); VALUE is read as JSON if it parses
    /// (8, true, [1,2]), as text otherwise.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    params: Vec<(String, Value)>,

    /// A secret parameter, KEY=VALUE (repeatable): recorded only as a salted
    /// sha-256, and VALUE is hidden wherever it appears in the recorded
    /// command (a password, an access token). Options of the command named
    /// like secrets (--password=..., --api-key ...) and URL passwords are
    /// hidden too.
    #[arg(long = "secret-param", value_name = "KEY=VALUE", value_parser = parse_secret)]
    secret_params: Vec<(String, String)>,

    /// Parameters from a JSON file holding one object.
    #[arg(long, value_name = "FILE")]
    params_file: Option<PathBuf>,

    /// An input file or directory (hashed), or a URI such as s3://bucket/key (repeatable).
    #[arg(long = "input", value_name = "PATH")]
    inputs: Vec<String>,

    /// An output the command must create (hashed after it ends; repeatable).
    #[arg(long = "output", value_name = "PATH")]
    outputs: Vec<String>,

    /// A tool the step runs and its version, NAME=VERSION (repeatable), for
    /// prov_software.
    #[arg(long = "software", value_name = "NAME=VERSION", value_parser = parse_software)]
    software: Vec<(String, String)>,

    /// The parent run (a pipeline run); prov run sets PROV_PARENT_RUN for its
    /// command, so nested calls attach themselves.
    #[arg(long, value_name = "RUN_ID", env = "PROV_PARENT_RUN")]
    parent: Option<String>,

    /// Also compute the md5 of every file input and output, in the same read
    /// as its sha-256 (ENA and SRA publish md5s; S3 ETags of single-part
    /// uploads are md5s).
    #[arg(long)]
    md5: bool,

    /// Skip the command if a successful run with the same fingerprint (job,
    /// command, image digest, parameters, input contents) made every output
    /// declared now and left them on disk with the recorded digests; record
    /// a cached run.
    #[arg(long)]
    cache: bool,

    /// The command and its arguments, after `--`. They are run as given; an
    /// argument that is not UTF-8 is recorded with U+FFFD in place of the
    /// bytes that are not.
    #[arg(last = true, required = true, value_name = "CMD", value_parser = clap::value_parser!(OsString))]
    command: Vec<OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Runtime {
    Docker,
    Podman,
    Apptainer,
    None,
}

pub(crate) fn parse_param(s: &str) -> Result<(String, Value), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, found {s:?}"))?;
    if key.is_empty() {
        return Err(format!("the parameter {s:?} has no name before '='"));
    }
    let value = match serde_json::from_str(value) {
        Ok(json) => {
            if let Some((_, number)) =
                provenance_core::canonical::first_inexact_number(value.as_bytes())
            {
                return Err(format!(
                    "the parameter {key}: the number {number} would be rounded; quote it to record it as text (--param '{key}=\"{value}\"')"
                ));
            }
            json
        }
        Err(_) => Value::String(value.to_owned()),
    };
    Ok((key.to_owned(), value))
}

fn parse_secret(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        // Not the text itself: it may be the secret.
        _ => Err("expected KEY=VALUE with a KEY before '='".into()),
    }
}

fn parse_software(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, version)) if !name.is_empty() && !version.is_empty() => {
            Ok((name.to_owned(), version.to_owned()))
        }
        _ => Err(format!("expected NAME=VERSION, found {s:?}")),
    }
}

/// Signals that stop the command; the run is then recorded as ABORT.
const FORWARDED: [i32; 3] = [
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
];

impl Args {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let transport = transports(ctx)?;
        let mut recorder = Recorder::new(self.namespace.clone(), transport);
        if let Some(cache) = ctx.hash_cache() {
            recorder = recorder.with_cache(cache);
        }
        if self.md5 {
            recorder = recorder.with_hash_options(provenance_core::hash::HashOptions {
                md5: true,
                ..Default::default()
            });
        }
        if self.container.is_some() {
            recorder = recorder
                .with_resolver(Arc::new(resolver()?))
                .with_require_pinned(self.require_pinned);
        }

        // The command as recorded and named in messages.
        let argv: Vec<String> = self
            .command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let job = self.job.clone().unwrap_or_else(|| {
            std::path::Path::new(&self.command[0])
                .file_name()
                .map_or_else(|| argv[0].clone(), |n| n.to_string_lossy().into_owned())
        });
        let mut step = recorder.step(job.clone()).command(argv.clone());
        if let Some(image) = &self.container {
            let runtime = match self.runtime {
                Runtime::Docker => ContainerRuntime::Docker,
                Runtime::Podman => ContainerRuntime::Podman,
                Runtime::Apptainer => ContainerRuntime::Apptainer,
                Runtime::None => ContainerRuntime::None,
            };
            step = step.container(image, runtime);
        }
        if let Some(file) = &self.params_file {
            let text = std::fs::read(file)
                .with_context(|| format!("read the parameters file {}", file.display()))?;
            let Value::Object(map) = serde_json::from_slice(&text)
                .with_context(|| format!("read the parameters file {} as JSON", file.display()))?
            else {
                bail!(
                    "the parameters file {} must hold a JSON object",
                    file.display()
                );
            };
            if let Some((at, number)) = provenance_core::canonical::first_inexact_number(&text) {
                bail!(
                    "the parameters file {}: the number {number} (at byte {at}) would be rounded; write it as a string",
                    file.display()
                );
            }
            for (k, v) in map {
                step = step.param(k, v);
            }
        }
        for (k, v) in &self.params {
            step = step.param(k.clone(), v.clone());
        }
        for (k, v) in &self.secret_params {
            step = step.secret_param(k.clone(), v.clone());
        }
        for input in &self.inputs {
            step = step.input(input.clone());
        }
        for (name, version) in &self.software {
            step = step.software(name.clone(), version.clone());
        }
        if let Some(parent) = &self.parent {
            step = step.parent_lineage(parent_lineage(parent, &self.namespace)?);
        }
        // An output URI that names no object could never be recorded: said
        // now, before the command runs, as for an input.
        if let Some(place) = self.outputs.iter().find(|o| {
            local_path(o).is_none() && uri_name(o).is_none_or(|(_, name)| name.is_empty())
        }) {
            // Without its password or query (a signed URL's signature).
            let place = &place[..place.find(['?', '#']).unwrap_or(place.len())];
            bail!(
                "the output {} names no object, only a place; {} was not run",
                provenance_core::redact_url_password(place),
                argv[0]
            );
        }
        let prepared = match step.prepare() {
            Err(e @ RecordError::Unpinned { .. }) => {
                eprintln!(
                    "prov: error: {e}; {} was not run (pin the image as IMAGE@sha256:<digest>, or run without --require-pinned / PROV_REQUIRE_PINNED)",
                    argv[0]
                );
                return Ok(ExitCode::from(crate::exit::CHECK_FAILED));
            }
            other => other.context("record the start of the step")?,
        };
        if let Some(c) = prepared.container() {
            match (&c.unpinned_reason, c.digest_source, &c.resolved_at) {
                (Some(reason), _, _) => {
                    eprintln!("prov: warning: {} is recorded unpinned: {reason}", c.image);
                }
                (None, DigestSource::Cache, Some(at)) => eprintln!(
                    "prov: warning: the registry of {} cannot be reached; recorded with the digest it gave at {at}",
                    c.image
                ),
                _ => {}
            }
        }
        if self.cache
            && let Some(original) = reusable_run(ctx, prepared.fingerprint(), &self.outputs)?
        {
            let outputs: Vec<&str> = original.1.iter().map(String::as_str).collect();
            prepared
                .record_cached(&original.0, &outputs)
                .context("record the cached run")?;
            flush(&recorder);
            eprintln!(
                "prov: cached: run {} made these outputs from the same inputs, image and parameters; {} skipped",
                original.0, argv[0]
            );
            return Ok(ExitCode::SUCCESS);
        }
        // Listening before START is recorded: a signal that comes once the
        // run is seen started is the step's to receive (it is passed on as
        // soon as the command runs).
        let stop_signal = Arc::new(AtomicI32::new(0));
        let mut signals = signal_hook::iterator::Signals::new(super::not_ignored(&FORWARDED))
            .context("listen for signals")?;
        // Stops the forwarding thread on every way out of here.
        let _listening = Listening(signals.handle());
        let run = Arc::new(prepared.start().context("record the start of the step")?);
        let lineage = run.child_lineage();

        // The command: inherits stdin, stdout and stderr; learns its run.
        let mut child = Command::new(&self.command[0]);
        child
            .args(&self.command[1..])
            .env("PROV_PARENT_RUN", run.run_id().to_string())
            .env("PROV_PARENT_JOB_NAMESPACE", &lineage.parent_job.namespace)
            .env("PROV_PARENT_JOB_NAME", &lineage.parent_job.name)
            .env("PROV_ROOT_RUN", lineage.root.to_string())
            .env("PROV_ROOT_JOB_NAMESPACE", &lineage.root_job.namespace)
            .env("PROV_ROOT_JOB_NAME", &lineage.root_job.name)
            // A `prov run` inside the step (a pipeline's task, run in a
            // folder of its own) records into the same store.
            .env("PROV_STORE", child_store(ctx.store_location()));
        // What the children so far used (the resolver's `docker`, say): the
        // step's own use is what it adds.
        let before = children_usage();
        let mut child = match child.spawn() {
            Ok(c) => c,
            Err(e) => {
                let message = format!("start {}: {e}", argv[0]);
                let _ = run.fail(&message, Execution::default());
                flush(&recorder);
                eprintln!("prov: error: {message}");
                return Ok(ExitCode::from(
                    if e.kind() == std::io::ErrorKind::NotFound {
                        127
                    } else {
                        126
                    },
                ));
            }
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        // The command's exit code once it has exited (i32::MIN before, or when
        // a signal ended it).
        let exited = Arc::new(AtomicBool::new(false));
        let exit_code = Arc::new(AtomicI32::new(i32::MIN));
        // Detached: it ends when the listener closes, or ends the process.
        {
            let (stop_signal, exited) = (Arc::clone(&stop_signal), Arc::clone(&exited));
            let exit_code = Arc::clone(&exit_code);
            let (run, recorder, argv) = (Arc::clone(&run), recorder.clone(), argv.clone());
            std::thread::spawn(move || {
                for signal in signals.forever() {
                    stop_signal.store(signal, Ordering::SeqCst);
                    if !exited.load(Ordering::SeqCst) {
                        if let Ok(sig) = nix::sys::signal::Signal::try_from(signal) {
                            let _ = nix::sys::signal::kill(pid, sig);
                        }
                        continue;
                    }
                    // The command has ended and its outputs are being hashed:
                    // stop here, recording the run as stopped.
                    let code = exit_code.load(Ordering::SeqCst);
                    let execution = Execution {
                        argv: Some(argv.clone()),
                        exit_code: (code != i32::MIN).then_some(code),
                        ..Execution::default()
                    };
                    // Unless the main thread has ended the run meanwhile: then
                    // it finishes, and exits, itself.
                    if let Ok(true) = run.abort_unless_ended(execution) {
                        flush(&recorder);
                        eprintln!("prov: stopped by signal {signal} while hashing the outputs");
                        std::process::exit(128 + signal);
                    }
                }
            });
        }
        let status = child.wait().context("wait for the command")?;
        exit_code.store(status.code().unwrap_or(i32::MIN), Ordering::SeqCst);
        exited.store(true, Ordering::SeqCst);
        let after = children_usage();
        let (cpu_ms, peak_rss) = match (before, after) {
            (Some(before), Some(after)) => (
                Some(after.cpu_ms.saturating_sub(before.cpu_ms)),
                // The peak of all children: the step's only if it is higher
                // than the peak of those before.
                (after.peak_rss > before.peak_rss).then_some(after.peak_rss),
            ),
            _ => (None, None),
        };
        let signal = std::os::unix::process::ExitStatusExt::signal(&status);
        let execution = Execution {
            argv: Some(argv.clone()),
            exit_code: status.code(),
            signal,
            cpu_time_ms: cpu_ms,
            peak_rss_bytes: peak_rss,
            working_directory: None,
        };
        let exit = status.code().unwrap_or_else(|| 128 + signal.unwrap_or(0));
        let stopped = stop_signal.load(Ordering::SeqCst);

        let result = if stopped != 0 {
            run.abort(execution)
        } else if !status.success() {
            let message = match (status.code(), signal) {
                (Some(code), _) => format!("{} exited with status {code}", argv[0]),
                (None, Some(sig)) => format!("{} was killed by signal {sig}", argv[0]),
                _ => format!("{} failed", argv[0]),
            };
            run.fail(&message, execution)
        } else if let Some((missing, why)) =
            self.outputs
                .iter()
                .find_map(|o| match local_path(o)?.try_exists() {
                    Ok(true) => None,
                    Ok(false) => Some((o, None)),
                    Err(e) => Some((o, Some(e))),
                })
        {
            let message = match why {
                None => format!(
                    "the declared output {missing} was not created by {}",
                    argv[0]
                ),
                // It is there, but cannot be followed (a link to itself).
                Some(e) => format!("the declared output {missing} cannot be read: {e}"),
            };
            eprintln!("prov: error: {message}");
            let _ = run.fail(&message, execution);
            flush(&recorder);
            return Ok(ExitCode::from(crate::exit::CHECK_FAILED));
        } else {
            let outputs: Vec<&str> = self.outputs.iter().map(String::as_str).collect();
            run.complete_with(&outputs, execution)
        };
        if let Err(e) = result {
            eprintln!("prov: error: {:#}", anyhow::Error::new(e));
            flush(&recorder);
            return Ok(ExitCode::from(if exit == 0 {
                crate::exit::USAGE
            } else {
                exit as u8
            }));
        }
        flush(&recorder);
        // Stopped by a signal, prov says so, even if the command handled it
        // and exited normally: the run is recorded as stopped (ABORT).
        let exit = if stopped != 0 { 128 + stopped } else { exit };
        Ok(ExitCode::from((exit & 0xff) as u8))
    }
}

/// Closes the signal listener when dropped.
struct Listening(signal_hook::iterator::Handle);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// CPU time and peak resident memory of the children this process has
/// waited for.
struct Usage {
    cpu_ms: u64,
    peak_rss: u64,
}

fn children_usage() -> Option<Usage> {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).ok()?;
    let ms = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1000 + t.tv_usec() as u64 / 1000;
    Some(Usage {
        cpu_ms: ms(u.user_time()) + ms(u.system_time()),
        // Linux reports ru_maxrss in KiB.
        peak_rss: u.max_rss() as u64 * 1024,
    })
}

/// The image resolver, configured from the environment (credentials from
/// the Docker configuration, `PROV_INSECURE_REGISTRIES`, the cache folder).
/// Unreadable credentials are a warning: images are then resolved anonymously.
fn resolver() -> anyhow::Result<Resolver> {
    let (env, not_utf8) = utf8_env();
    for name in not_utf8
        .iter()
        .filter(|n| RESOLVER_ENV.contains(&n.as_str()))
    {
        eprintln!("prov: warning: the environment variable {name} is not UTF-8; it is ignored");
    }
    let env: Vec<(String, String)> = env.into_iter().collect();
    let (options, problem) = ResolverOptions::from_env(&env);
    if let Some(e) = problem {
        eprintln!(
            "prov: warning: {:#}; resolving images without registry credentials",
            anyhow::Error::new(e)
        );
    }
    Resolver::new(options).context("start the image resolver")
}

/// The latest successful run with `fingerprint` whose outputs are all still on
/// disk with their recorded digests (checked through the hash cache), and
/// those outputs' paths.
fn reusable_run(
    ctx: &Ctx,
    fingerprint: &str,
    declared: &[String],
) -> anyhow::Result<Option<(String, Vec<String>)>> {
    let Ok(store) = ctx.store() else {
        return Ok(None);
    };
    let Some((run, outputs)) = store.cache_lookup(fingerprint)? else {
        return Ok(None);
    };
    // The outputs are not part of the fingerprint: the run made the same
    // step, but it is reused only if it made every output declared now.
    let made = |namespace: &str, name: &str| {
        outputs
            .iter()
            .any(|o| o.namespace == namespace && o.name == name)
    };
    let all_made = declared.iter().all(|o| match local_path(o) {
        Some(path) => made("file", &local_name(&path)),
        None => uri_name(o).is_some_and(|(namespace, name)| made(&namespace, &name)),
    });
    if !all_made {
        return Ok(None);
    }
    let cache = ctx.hash_cache();
    let mut hasher =
        provenance_core::hash::Hasher::new(provenance_core::hash::HashOptions::default());
    if let Some(c) = &cache {
        hasher = hasher.with_cache(c.as_ref());
    }
    let mut paths = Vec::new();
    for output in &outputs {
        if output.namespace != "file" {
            return Ok(None); // remote outputs cannot be checked here
        }
        match hasher.hash(std::path::Path::new(&output.name)) {
            Ok(d) if Some(&d.sha256) == output.digest.as_ref() => paths.push(output.name.clone()),
            _ => return Ok(None),
        }
    }
    // A cached run points at the run that really executed; so does this one.
    let facets = store.run_facets(&run.run_id)?;
    let original = facets
        .get("prov_cache")
        .and_then(|c| c["originalRunId"].as_str())
        .map_or(run.run_id, str::to_owned);
    Ok(Some((original, paths)))
}

pub(crate) fn flush(recorder: &Recorder) {
    if let Err(e) = recorder.flush(Duration::from_secs(5)) {
        eprintln!("prov: warning: {e}");
    }
}

/// The variables the image resolver reads.
const RESOLVER_ENV: &[&str] = &[
    "APPTAINER_CONTAINER",
    "DOCKER_CONFIG",
    provenance_core::resolve::local::ECS_METADATA_VAR,
    "HOME",
    "PROV_CACHE_DIR",
    "PROV_INSECURE_REGISTRIES",
    "PROV_REGISTRY_CA",
    "SINGULARITY_CONTAINER",
    "XDG_CACHE_HOME",
];

/// This process's environment variables that are UTF-8, and the names (with
/// U+FFFD for what is not UTF-8) of those that are not. `std::env::vars`
/// would panic on the first of those, wherever it is in the environment.
fn utf8_env() -> (BTreeMap<String, String>, Vec<String>) {
    let mut vars = BTreeMap::new();
    let mut not_utf8 = Vec::new();
    for (name, value) in std::env::vars_os() {
        match (name.into_string(), value.into_string()) {
            (Ok(name), Ok(value)) => {
                vars.insert(name, value);
            }
            (Ok(name), Err(_)) => not_utf8.push(name),
            (Err(name), _) => not_utf8.push(name.to_string_lossy().into_owned()),
        }
    }
    (vars, not_utf8)
}

/// The store location as a command started in another folder names it: a
/// relative file path made absolute; a URL as it is.
fn child_store(location: &str) -> OsString {
    if location.contains("://") {
        return location.into();
    }
    std::path::absolute(location).map_or_else(|_| location.into(), |p| p.into_os_string())
}

/// The store, plus whatever an OpenLineage configuration names. With another
/// transport configured, a store that cannot be opened is only a warning.
pub(crate) fn transports(ctx: &Ctx) -> anyhow::Result<Box<dyn Transport>> {
    let (env, not_utf8) = utf8_env();
    if let Some(name) = not_utf8.iter().find(|n| n.starts_with("OPENLINEAGE")) {
        bail!("the environment variable {name} is not UTF-8; OpenLineage settings must be");
    }
    let cwd = std::env::current_dir().context("read the working directory")?;
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let configured = load_config(&env, &cwd, home.as_deref())?;
    let mut parts: Vec<Box<dyn Transport>> = Vec::new();
    match (ctx.store(), &configured) {
        (Ok(store), _) => parts.push(Box::new(StoreTransport::new(store))),
        (Err(e), Some(c)) if *c != TransportConfig::Disabled => {
            eprintln!("prov: warning: {e:#}; events go only to the configured transport");
        }
        (Err(e), _) => return Err(e),
    }
    if let Some(config) = configured {
        parts.push(
            config
                .build(&ctx.spool_dir())
                .context("start the OpenLineage transport")?,
        );
    }
    Ok(if parts.len() == 1 {
        parts.remove(0)
    } else {
        Box::new(CompositeTransport::new(
            parts,
            FailurePolicy::AllMustSucceed,
        ))
    })
}

/// The parent's lineage from its id and what `prov run` exported with it.
fn parent_lineage(parent: &str, namespace: &str) -> anyhow::Result<Lineage> {
    let id: RunId = parent.parse().with_context(|| {
        format!("read the parent run id {parent:?} (--parent or PROV_PARENT_RUN)")
    })?;
    // Namespace and name apart: either may hold a ':'.
    let job = |var: &str| -> Option<JobRef> {
        let namespace = std::env::var(format!("{var}_NAMESPACE")).ok()?;
        let name = std::env::var(format!("{var}_NAME")).ok()?;
        Some(JobRef::new(namespace, name))
    };
    // The exported job names belong to the exported run id only.
    let exported = std::env::var("PROV_PARENT_RUN").ok().as_deref() == Some(parent);
    let parent_job = exported
        .then(|| job("PROV_PARENT_JOB"))
        .flatten()
        .unwrap_or_else(|| JobRef::new(namespace, "unknown"));
    let root = exported
        .then(|| std::env::var("PROV_ROOT_RUN").ok()?.parse::<RunId>().ok())
        .flatten()
        .unwrap_or(id);
    let root_job = exported
        .then(|| job("PROV_ROOT_JOB"))
        .flatten()
        .unwrap_or_else(|| parent_job.clone());
    Ok(Lineage {
        parent: id,
        parent_job,
        root,
        root_job,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_read_json_or_text() {
        let check = |input: &str, key: &str, value: Value| {
            assert_eq!(
                parse_param(input).unwrap(),
                (key.to_owned(), value),
                "{input}"
            );
        };
        check("threads=8", "threads", Value::from(8));
        check("paired=true", "paired", Value::Bool(true));
        check("ref=GRCh38", "ref", Value::from("GRCh38"));
        check("rg=@RG\\tID:S1", "rg", Value::from("@RG\\tID:S1"));
        check("empty=", "empty", Value::from(""));
        check("list=[1,2]", "list", serde_json::json!([1, 2]));
        assert!(parse_param("novalue").unwrap_err().contains("KEY=VALUE"));
        // A number its value would round is refused, quoted it is text.
        for number in ["12345678901234567890123", "0.12345678901234567890"] {
            let err = parse_param(&format!("id={number}")).unwrap_err();
            assert!(err.contains(number) && err.contains("rounded"), "{err}");
            assert_eq!(
                parse_param(&format!("id=\"{number}\"")).unwrap().1,
                Value::String(number.into())
            );
        }
        assert!(parse_param("=x").unwrap_err().contains("no name"));
        assert_eq!(
            parse_software("bwa=0.7.17-r1188").unwrap(),
            ("bwa".to_owned(), "0.7.17-r1188".to_owned())
        );
        assert!(parse_software("bwa").is_err() && parse_software("bwa=").is_err());
    }
}
