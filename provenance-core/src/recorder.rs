//! The run recorder that pipelines embed: start a run of a job with its
//! container, parameters, inputs and software; finish it with outputs or a
//! failure. Inputs are hashed (through the cache) before START, outputs after
//! the step; the terminal event carries `prov_execution`. A run dropped without
//! being finished emits ABORT, so no run stays open forever.
//!
//! Secrets stay out: environment variables are captured only from an
//! allow-list, names that look like secrets are redacted even when allowed,
//! and parameters marked secret are recorded as a hash.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Instant;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::canonical::CanonicalError;
use crate::facets::*;
use crate::hash::{EntryKind, HashCache, HashError, HashOptions, Hasher, PathDigest};
use crate::oci::{ImageRefError, ImageReference};
use crate::resolve::Resolver;
use crate::transport::{Transport, TransportError};
use crate::{Event, EventTime, EventType, InputDataset, Job, OutputDataset, Run, RunEvent, RunId};

/// Variables captured by default (when set); `*` at the end matches a prefix.
pub const DEFAULT_ENV_ALLOW: &[&str] = &[
    "LANG",
    "LC_ALL",
    "TZ",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "SLURM_JOB_ID",
    "SLURM_CPUS_PER_TASK",
    "AWS_BATCH_JOB_ID",
    "NXF_*",
];

/// Parts of a variable name that mark it as secret, anywhere in the name.
const SECRET_MARKERS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASS",
    "PWD",
    "KEY",
    "CREDENTIAL",
    "AUTH",
    "PRIVATE",
    "COOKIE",
    "SESSION",
];

/// Words of a variable name that mark it as secret only as a whole word
/// (`GITHUB_PAT`, not `PATH`).
const SECRET_WORDS: &[&str] = &["PAT"];

/// Words in the name of a command-line option that mark its value as secret
/// (`--db-password=...`, `--token ...`). Narrower than for variables: an
/// argument wrongly hidden would make the recorded command unusable.
const SECRET_OPTION_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "token",
    "apikey",
    "credential",
    "credentials",
];

/// The value recorded in place of a secret.
pub const REDACTED: &str = "***REDACTED***";

/// Why a run could not be recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// An input or output could not be hashed.
    #[error("hash {role} of job {job}")]
    Hash {
        /// `input`, `output` or `container image file`.
        role: &'static str,
        /// The job.
        job: String,
        /// Why.
        #[source]
        source: HashError,
    },
    /// The container reference is malformed.
    #[error("record the container of job {job}")]
    Container {
        /// The job.
        job: String,
        /// Why.
        #[source]
        source: ImageRefError,
    },
    /// The image is known only by a tag and a pinned image is required.
    #[error(
        "record the container of job {job}: {image} is not pinned to a digest and a pinned image is required ({reason})"
    )]
    Unpinned {
        /// The job.
        job: String,
        /// The image as given.
        image: String,
        /// Why no digest could be learned.
        reason: String,
    },
    /// The parameters have no canonical form.
    #[error("record the parameters of job {job}")]
    Parameters {
        /// The job.
        job: String,
        /// Why.
        #[source]
        source: CanonicalError,
    },
    /// A parameter value could not be turned into JSON.
    #[error("record parameter {key} of job {job}: {reason}")]
    Parameter {
        /// The job.
        job: String,
        /// The parameter.
        key: String,
        /// Why.
        reason: String,
    },
    /// The run is described in a way no event may carry: an empty job
    /// name or namespace, a tool without a name or version, a dataset
    /// without a name.
    #[error("record job {job:?}: {what}")]
    Invalid {
        /// The job.
        job: String,
        /// What is wrong.
        what: String,
    },
    /// The transport refused the event.
    #[error("emit the {event} event of job {job}")]
    Emit {
        /// START, COMPLETE, FAIL or ABORT.
        event: String,
        /// The job.
        job: String,
        /// Why.
        #[source]
        source: TransportError,
    },
}

/// Records runs. Cheap to clone, and safe to share across threads.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    namespace: String,
    transport: Arc<dyn Transport>,
    cache: Option<Arc<dyn HashCache>>,
    hash: HashOptions,
    env_allow: Vec<String>,
    /// The environment to capture from; `None` means this process's.
    environment: Option<Vec<(String, String)>>,
    /// Learns the digest of an image given by tag.
    resolver: Option<Arc<Resolver>>,
    /// Refuse to start a run whose image stays unpinned.
    require_pinned: bool,
}

impl Recorder {
    /// A recorder of jobs in `namespace` that emits to `transport`.
    pub fn new(namespace: impl Into<String>, transport: Box<dyn Transport>) -> Self {
        Recorder {
            inner: Arc::new(Inner {
                namespace: namespace.into(),
                transport: Arc::from(transport),
                cache: None,
                hash: HashOptions::default(),
                env_allow: DEFAULT_ENV_ALLOW.iter().map(|s| s.to_string()).collect(),
                environment: None,
                resolver: None,
                require_pinned: false,
            }),
        }
    }

    /// Changes a setting of this recorder. Clones made before keep theirs
    /// (they share the transport, not the settings).
    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// Reuses digests of unchanged files from `cache`.
    pub fn with_cache(self, cache: Arc<dyn HashCache>) -> Self {
        self.edit(|i| i.cache = Some(cache))
    }

    /// Hashes with `options` (md5 too, for example).
    pub fn with_hash_options(self, options: HashOptions) -> Self {
        self.edit(|i| i.hash = options)
    }

    /// Captures these environment variables (`NAME`, or `PREFIX*`).
    pub fn with_env_allow(self, names: Vec<String>) -> Self {
        self.edit(|i| i.env_allow = names)
    }

    /// Captures from `vars` instead of this process's environment (for a
    /// wrapper such as `prov run`, whose step runs with its own environment).
    pub fn with_environment(self, vars: Vec<(String, String)>) -> Self {
        self.edit(|i| i.environment = Some(vars))
    }

    /// Resolves images given by tag to their digests with `resolver` (a
    /// registry, the runtime, an image file); one that stays unpinned is
    /// recorded with the reason.
    pub fn with_resolver(self, resolver: Arc<Resolver>) -> Self {
        self.edit(|i| i.resolver = Some(resolver))
    }

    /// Makes an image that stays unpinned an error ([`RecordError::Unpinned`])
    /// before anything is emitted: for clinical use.
    pub fn with_require_pinned(self, require: bool) -> Self {
        self.edit(|i| i.require_pinned = require)
    }

    /// Begins describing a run of `job`.
    pub fn step(&self, job: impl Into<String>) -> StepBuilder {
        StepBuilder {
            recorder: self.clone(),
            job: job.into(),
            run_id: None,
            job_type: "TASK".into(),
            image: None,
            digest: None,
            runtime: ContainerRuntime::None,
            params: Map::new(),
            secrets: Vec::new(),
            command: Vec::new(),
            inputs: Vec::new(),
            software: Vec::new(),
            parent: None,
            rerun_of: None,
            invalid: None,
        }
    }

    /// Waits (at most `timeout`) until every event emitted is delivered.
    pub fn flush(&self, timeout: std::time::Duration) -> Result<(), TransportError> {
        self.inner.transport.flush(timeout)
    }

    fn hasher(&self) -> Hasher<'_> {
        let hasher = Hasher::new(self.inner.hash.clone());
        match &self.inner.cache {
            Some(cache) => hasher.with_cache(cache.as_ref()),
            None => hasher,
        }
    }
}

/// The parent of a run, and the root of its tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Lineage {
    /// The parent run.
    pub parent: RunId,
    /// The parent's job.
    pub parent_job: JobRef,
    /// The root run.
    pub root: RunId,
    /// The root's job.
    pub root_job: JobRef,
}

/// A run being described, before START.
pub struct StepBuilder {
    recorder: Recorder,
    job: String,
    run_id: Option<RunId>,
    job_type: String,
    image: Option<String>,
    digest: Option<(String, DigestSource)>,
    runtime: ContainerRuntime,
    params: Map<String, Value>,
    secrets: Vec<(String, String)>,
    command: Vec<String>,
    inputs: Vec<String>,
    software: Vec<(String, String)>,
    parent: Option<Lineage>,
    /// The recorded run this one re-executes, and the scratch directory.
    rerun_of: Option<(String, String)>,
    /// A parameter that did not convert to JSON, reported by `start`.
    invalid: Option<(String, String)>,
}

impl StepBuilder {
    /// Uses this run id (for example one derived with [`RunId::static_v7`]).
    pub fn run_id(mut self, id: RunId) -> Self {
        self.run_id = Some(id);
        self
    }

    /// The kind of job (`TASK` by default; `PIPELINE` for a parent).
    pub fn job_type(mut self, kind: impl Into<String>) -> Self {
        self.job_type = kind.into();
        self
    }

    /// The container image, as given (a tag, or pinned by digest).
    pub fn container(mut self, image: impl Into<String>, runtime: ContainerRuntime) -> Self {
        self.image = Some(image.into());
        self.runtime = runtime;
        self
    }

    /// The image's digest, learned from a registry, runtime or image file.
    pub fn container_digest(mut self, digest: impl Into<String>, source: DigestSource) -> Self {
        self.digest = Some((digest.into(), source));
        self
    }

    /// A parameter (any value that serializes to JSON).
    pub fn param(mut self, key: impl Into<String>, value: impl Serialize) -> Self {
        let key = key.into();
        match serde_json::to_value(value) {
            Ok(v) => {
                self.params.insert(key, v);
            }
            Err(e) => self.invalid = Some((key, e.to_string())),
        }
        self
    }

    /// A parameter recorded only as a hash, never in clear (a database
    /// password, an access token).
    pub fn secret_param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.secrets.push((key.into(), value.into()));
        self
    }

    /// The command the step runs (part of its fingerprint).
    pub fn command(mut self, argv: Vec<String>) -> Self {
        self.command = argv;
        self
    }

    /// An input: a local path (hashed), or an `s3://`, `gs://`, `file://host/`
    /// or other URI (named, not hashed).
    pub fn input(mut self, path_or_uri: impl Into<String>) -> Self {
        self.inputs.push(path_or_uri.into());
        self
    }

    /// A tool and its version.
    pub fn software(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.software.push((name.into(), version.into()));
        self
    }

    /// Makes this run a child of `parent` (and of its root).
    pub fn parent(mut self, parent: &RunHandle) -> Self {
        self.parent = Some(parent.child_lineage());
        self
    }

    /// Makes this run a child of a run known only by ids (from `PROV_PARENT_RUN`).
    pub fn parent_lineage(mut self, lineage: Lineage) -> Self {
        self.parent = Some(lineage);
        self
    }

    /// Marks this run as a re-execution of the recorded run `original`, with
    /// its paths moved under `scratch` (`prov_rerun`).
    pub fn rerun_of(mut self, original: impl Into<String>, scratch: impl Into<String>) -> Self {
        self.rerun_of = Some((original.into(), scratch.into()));
        self
    }

    /// Hashes the inputs and emits START.
    pub fn start(self) -> Result<RunHandle, RecordError> {
        self.prepare()?.start()
    }

    /// Hashes the inputs and computes the fingerprint, without emitting
    /// anything yet (so that a cache can be asked first).
    pub fn prepare(self) -> Result<PreparedRun, RecordError> {
        let job_name = self.job.clone();
        if let Some((key, reason)) = self.invalid.clone() {
            return Err(RecordError::Parameter {
                job: job_name,
                key,
                reason,
            });
        }
        let inner = &self.recorder.inner;
        let invalid = |what: String| RecordError::Invalid {
            job: job_name.clone(),
            what,
        };
        if job_name.is_empty() {
            return Err(invalid("the job name is empty".into()));
        }
        if inner.namespace.is_empty() {
            return Err(invalid("the namespace is empty".into()));
        }
        if let Some((name, version)) = self
            .software
            .iter()
            .find(|(n, v)| n.is_empty() || v.is_empty())
        {
            return Err(invalid(format!(
                "the software {name:?} of version {version:?} needs both a name and a version"
            )));
        }
        let run_id = self.run_id.unwrap_or_else(RunId::new_v7);

        let mut params = self.params.clone();
        for (key, value) in &self.secrets {
            params.insert(key.clone(), Value::String(secret_hash(value)));
        }
        let params =
            ProvParametersRunFacet::new(params).map_err(|source| RecordError::Parameters {
                job: job_name.clone(),
                source,
            })?;
        let container = match &self.image {
            None => None,
            Some(given) if is_image_file(given) => {
                // An image file (apptainer exec bwa.sif ...): its bytes are
                // its identity.
                let path = given.strip_prefix("file://").unwrap_or(given);
                let digest = self
                    .recorder
                    .hasher()
                    .hash(Path::new(path))
                    .map_err(|source| RecordError::Hash {
                        role: "container image file",
                        job: job_name.clone(),
                        source,
                    })?;
                Some(ProvContainerRunFacet::image_file(
                    &local_name(Path::new(path)),
                    &digest.sha256,
                    self.runtime,
                ))
            }
            Some(given) => {
                // `apptainer exec docker://...` names a registry image.
                let image = given.strip_prefix("docker://").unwrap_or(given);
                let image = &image.to_owned();
                let facet = ProvContainerRunFacet::new(image, self.runtime).map_err(|source| {
                    RecordError::Container {
                        job: job_name.clone(),
                        source,
                    }
                })?;
                let facet = match (&self.digest, &inner.resolver) {
                    (Some((digest, source)), _) if facet.digest.is_none() => {
                        facet.with_digest(digest.clone(), *source)
                    }
                    (_, Some(resolver)) if !facet.pinned => {
                        // The facet parsed the same text, so this cannot fail.
                        match ImageReference::parse(image) {
                            Ok(reference) => {
                                resolver.resolve(&reference, self.runtime).apply(facet)
                            }
                            Err(_) => facet,
                        }
                    }
                    _ => facet,
                };
                if inner.require_pinned && !facet.pinned {
                    return Err(RecordError::Unpinned {
                        job: job_name,
                        image: image.clone(),
                        reason: facet
                            .unpinned_reason
                            .clone()
                            .unwrap_or_else(|| "no resolver was asked".into()),
                    });
                }
                Some(facet)
            }
        };

        // Each dataset once (`a.txt` and `./a.txt` are one), for the
        // fingerprint as for the event.
        let inputs = once_each(
            datasets(&self.recorder, &self.inputs, "input", &job_name)?.into_iter(),
            |d| (d.input.namespace.clone(), d.input.name.clone()),
        );
        let digests: Vec<String> = inputs
            .iter()
            .filter_map(|d| d.digest.as_ref().map(|h| format!("sha256:{h}")))
            .collect();
        let identity = container.as_ref().map(ProvContainerRunFacet::identity);
        let fingerprint = Fingerprint {
            job: &job_name,
            command: &self.command,
            container: identity.as_deref(),
            parameters: &params.parameters,
            inputs: &digests,
        }
        .facet()
        .map_err(|source| RecordError::Parameters {
            job: job_name.clone(),
            source,
        })?;

        let mut run = Run::new(run_id);
        if let Some(lineage) = &self.parent {
            run.facets.set(
                &ParentRunFacet::new(lineage.parent, lineage.parent_job.clone())
                    .with_root(lineage.root, lineage.root_job.clone()),
            );
        }
        let execution_parameters =
            params
                .execution_parameters()
                .map_err(|source| RecordError::Parameters {
                    job: job_name.clone(),
                    source,
                })?;
        run.facets.set(&execution_parameters);
        run.facets.set(&params);
        if let Some(c) = &container {
            run.facets.set(c);
        }
        run.facets.set(&fingerprint);
        if let Some((original, scratch)) = &self.rerun_of {
            run.facets.set(&ProvRerunRunFacet::of(original, scratch));
        }
        run.facets
            .set(&ProvSoftwareRunFacet::new(self.software.clone()));
        run.facets.set(&ProcessingEngineRunFacet::new(
            "prov",
            env!("CARGO_PKG_VERSION"),
        ));
        let env = match &inner.environment {
            Some(vars) => capture_env(&inner.env_allow, vars.iter().cloned()),
            None => capture_env(&inner.env_allow, process_env(&inner.env_allow)),
        };
        if !env.is_empty() {
            run.facets.set(&EnvironmentVariablesRunFacet::new(env));
        }
        let mut job = Job::new(inner.namespace.clone(), job_name.clone());
        job.facets
            .set(&JobTypeJobFacet::batch("PROV", self.job_type.clone()));

        let (root, root_job) = match &self.parent {
            Some(l) => (l.root, l.root_job.clone()),
            None => (
                run_id,
                JobRef::new(inner.namespace.clone(), job_name.clone()),
            ),
        };
        let handle = RunHandle {
            recorder: self.recorder.clone(),
            run,
            job,
            inputs: once_each(inputs.into_iter().map(|d| d.input), |d| {
                (d.namespace.clone(), d.name.clone())
            }),
            command: self.command,
            secrets: self.secrets.into_iter().map(|(_, value)| value).collect(),
            root,
            root_job,
            started: Instant::now(),
            start_time: Utc::now(),
            // Not started yet: dropping it emits nothing.
            finished: Mutex::new(true),
        };
        Ok(PreparedRun {
            handle,
            fingerprint: fingerprint.sha256,
        })
    }
}

/// A run whose inputs are hashed and whose fingerprint is known, before START.
pub struct PreparedRun {
    handle: RunHandle,
    fingerprint: String,
}

impl PreparedRun {
    /// The step's fingerprint (`prov_fingerprint`).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The run id it will have.
    pub fn run_id(&self) -> RunId {
        self.handle.run_id()
    }

    /// The container as it will be recorded: with its digest, or unpinned
    /// and why.
    pub fn container(&self) -> Option<ProvContainerRunFacet> {
        self.handle
            .run
            .facets
            .get::<ProvContainerRunFacet>()
            .and_then(Result::ok)
    }

    /// Emits START.
    pub fn start(self) -> Result<RunHandle, RecordError> {
        let mut handle = self.handle;
        handle.started = Instant::now();
        handle.start_time = Utc::now();
        *handle.finished.get_mut().unwrap_or_else(|e| e.into_inner()) = false;
        handle.emit(EventType::Start, None, None, Vec::new())?;
        Ok(handle)
    }

    /// Records the step as served from the cache: START, then COMPLETE with
    /// `outputs` (hashed) and `prov_cache` naming the run that made them.
    pub fn record_cached(self, original: &str, outputs: &[&str]) -> Result<(), RecordError> {
        let mut handle = self.handle;
        handle.run.facets.set(&ProvCacheRunFacet::hit(original));
        handle.started = Instant::now();
        handle.start_time = Utc::now();
        *handle.finished.get_mut().unwrap_or_else(|e| e.into_inner()) = false;
        handle.emit(EventType::Start, None, None, Vec::new())?;
        handle.complete_with(
            outputs,
            Execution {
                exit_code: Some(0),
                ..Execution::default()
            },
        )
    }
}

/// `sha256:<hex>` of a secret, with a fixed prefix: equal secrets compare
/// equal across runs, the value itself is not recorded. (A short or common
/// secret can still be guessed from its hash: keep such values out entirely.)
pub fn secret_hash(value: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"prov-secret-1\0");
    h.update(value.as_bytes());
    format!("sha256:{}", crate::hex(&h.finalize()))
}

/// Whether a variable's name marks it as secret.
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_MARKERS.iter().any(|m| upper.contains(m))
        || upper
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| SECRET_WORDS.contains(&word))
}

/// `argv` as it may be recorded: each secret value (of
/// [`StepBuilder::secret_param`]) replaced wherever it appears, the value of
/// an option named like a secret (`--password=x`, `--api-key x`) and the
/// password of a URL (`postgres://user:pw@host`) replaced by
/// [`REDACTED`]. The command's fingerprint is taken before, from the real
/// arguments.
pub fn redact_argv(argv: &[String], secrets: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut hide_next = false;
    for arg in argv {
        let mut arg = arg.clone();
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            if arg.contains(secret.as_str()) {
                arg = arg.replace(secret.as_str(), REDACTED);
            }
        }
        if std::mem::take(&mut hide_next) && !arg.starts_with('-') {
            arg = REDACTED.to_owned();
        } else if arg.starts_with("--") {
            match arg.split_once('=') {
                Some((name, _)) if secret_option(name) => arg = format!("{name}={REDACTED}"),
                Some(_) => {}
                None => hide_next = secret_option(&arg),
            }
        }
        // A shell script given as one argument (`sh -c '...'`, as Snakemake
        // and Nextflow run their commands): its words are options too.
        if arg.contains(|c: char| c.is_ascii_whitespace()) {
            arg = redact_script(&arg);
        }
        out.push(crate::redact_url_password(&arg));
    }
    out
}

/// English words that end in a secret word without being one: `--compass`
/// is not `--com-pass`.
const NOT_SECRET_ENDINGS: &[&str] = &[
    "compass",
    "encompass",
    "bypass",
    "overpass",
    "underpass",
    "trespass",
];

/// Whether an option's name marks its value as secret.
fn secret_option(name: &str) -> bool {
    let name = name.trim_start_matches('-').to_ascii_lowercase();
    let squeezed: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let english = NOT_SECRET_ENDINGS.iter().any(|w| squeezed.ends_with(w));
    SECRET_OPTION_WORDS.iter().any(|w| squeezed.ends_with(w)) && !english
        || name
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| SECRET_OPTION_WORDS.contains(&word))
}

/// `script` with the values of its secret options hidden, its words split as
/// a shell would: at whitespace outside quotes, a backslash keeping the next
/// character in its word (`--password=x`, `--password 'x y'`, `--api-key
/// my\ key`). A quoted word that is itself a script (`sh -c '... --token t'`
/// inside the script) is searched the same way. Values put together by the
/// shell (`--password=$(cat f)`, `"$PW"`) are hidden as written, which is all
/// the script holds.
fn redact_script(script: &str) -> String {
    redact_words(script, 0)
}

fn redact_words(script: &str, depth: usize) -> String {
    let mut out = String::with_capacity(script.len());
    let mut at = 0;
    for range in hidden_ranges(script, depth) {
        out.push_str(&script[at..range.start]);
        out.push_str(REDACTED);
        at = range.end;
    }
    out.push_str(&script[at..]);
    out
}

/// The byte ranges of `script` that hold secret values, in order; only
/// these change, the rest of the script is kept as written.
fn hidden_ranges(script: &str, depth: usize) -> Vec<std::ops::Range<usize>> {
    // The byte ranges of the words.
    let mut words = Vec::new();
    let mut start = None;
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in script.char_indices() {
        if std::mem::take(&mut escaped) {
            continue;
        }
        match quote {
            // `$'...'`: backslash escapes, ended by an unescaped quote.
            Some('$') => match c {
                '\'' => quote = None,
                '\\' => escaped = true,
                _ => {}
            },
            Some(q) if c == q => quote = None,
            Some('"') if c == '\\' => escaped = true,
            Some(_) => {}
            None if c.is_ascii_whitespace() => {
                if let Some(s) = start.take() {
                    words.push(s..i);
                }
            }
            None => {
                start.get_or_insert(i);
                match c {
                    '\'' if script[..i].ends_with('$') => quote = Some('$'),
                    '\'' | '"' => quote = Some(c),
                    '\\' => escaped = true,
                    _ => {}
                }
            }
        }
    }
    if let Some(s) = start {
        words.push(s..script.len());
    }
    let mut hidden = Vec::new();
    let mut hide_next = false;
    for word in words {
        let text = &script[word.clone()];
        let quoted = text.starts_with(['\'', '"']);
        let bare = text.trim_start_matches(['\'', '"']);
        // A word quoted whole keeps its closing quote.
        let end = if quoted && text.len() >= 2 && text.ends_with(&text[..1]) {
            word.end - 1
        } else {
            word.end
        };
        if std::mem::take(&mut hide_next) && (quoted || !bare.starts_with('-')) {
            hidden.push(word);
        } else if bare.starts_with("--") {
            // The name as the shell passes it on: without its quotes and
            // backslashes (`--pass\word`).
            let plain = |name: &str| name.replace(['\'', '"', '\\'], "");
            match text.split_once('=') {
                Some((name, _)) if secret_option(&plain(name)) => {
                    hidden.push(word.start + name.len() + 1..end.max(word.start + name.len() + 1));
                }
                Some(_) => {}
                None => hide_next = secret_option(&plain(bare)),
            }
        } else if quoted && depth < 8 && end > word.start + 1 && end < word.end {
            // A quoted script within the script, searched as the shell reads
            // it: inside double quotes without the backslash of `\"`, `\\`,
            // `\$` and `\``. What it hides is hidden where it stands here.
            let inner = &script[word.start + 1..end];
            if inner.contains(|c: char| c.is_ascii_whitespace()) {
                let (read, at) = if text.starts_with('"') {
                    unescape_double(inner)
                } else {
                    (inner.to_owned(), (0..=inner.len()).collect())
                };
                let offset = word.start + 1;
                hidden.extend(
                    hidden_ranges(&read, depth + 1)
                        .into_iter()
                        .map(|r| offset + at[r.start]..offset + at[r.end]),
                );
            }
        }
    }
    hidden
}

/// The text of a double-quoted shell word without the backslash of `\"`,
/// `\\`, `\$` and `\``, and where each of its bytes (and its end) stands in
/// `text`.
fn unescape_double(text: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(text.len());
    let mut at = Vec::with_capacity(text.len() + 1);
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let (from, c) = match (c, chars.peek()) {
            ('\\', Some(&(_, next))) if matches!(next, '"' | '\\' | '$' | '`') => {
                chars.next();
                (i, next)
            }
            _ => (i, c),
        };
        // Every byte of the character maps to where it starts in `text`
        // (its backslash, if it had one).
        for _ in 0..c.len_utf8() {
            at.push(from);
        }
        out.push(c);
    }
    at.push(text.len());
    (out, at)
}

/// Whether the variable `name` is on the allow-list (`NAME` or `PREFIX*`).
fn allowed(allow: &[String], name: &str) -> bool {
    allow.iter().any(|a| match a.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == a,
    })
}

/// This process's allow-listed variables. Read as the system holds them, so
/// that a variable that is not UTF-8 (anywhere in the environment) does not
/// stop the step: an allow-listed one is recorded with U+FFFD in place of
/// what is not UTF-8, and a name that is not UTF-8 is on no allow-list.
fn process_env(allow: &[String]) -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(move |(name, value)| {
        let name = name.into_string().ok()?;
        allowed(allow, &name).then(|| (name, value.to_string_lossy().into_owned()))
    })
}

fn capture_env(
    allow: &[String],
    source: impl Iterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = source
        .filter(|(name, _)| allowed(allow, name))
        .map(|(name, value)| {
            let value = if looks_secret(&name) {
                REDACTED.to_owned()
            } else {
                value
            };
            (name, value)
        })
        .collect();
    vars.sort();
    vars
}

/// A dataset named and, if local, hashed.
struct Named {
    input: InputDataset,
    output: OutputDataset,
    digest: Option<String>,
}

/// Names (and hashes, for local paths) inputs or outputs.
fn datasets(
    recorder: &Recorder,
    paths: &[String],
    role: &'static str,
    job: &str,
) -> Result<Vec<Named>, RecordError> {
    let local: Vec<PathBuf> = paths.iter().filter_map(|p| local_path(p)).collect();
    let mut digests = recorder.hasher().hash_all(&local).into_iter();
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        let (namespace, name, digest) = match local_path(p) {
            Some(path) => {
                let d = digests
                    .next()
                    .expect("one digest per local path")
                    .map_err(|source| RecordError::Hash {
                        role,
                        job: job.to_owned(),
                        source,
                    })?;
                ("file".to_owned(), local_name(&path), Some(d))
            }
            None => {
                let (namespace, name) = uri_name(p).expect("not a local path, so a URI");
                if name.is_empty() {
                    return Err(RecordError::Invalid {
                        job: job.to_owned(),
                        what: format!(
                            "the {role} {} names no object, only a place",
                            crate::redact_url_password(p)
                        ),
                    });
                }
                (namespace, name, None)
            }
        };
        let mut input = InputDataset::new(namespace.clone(), name.clone());
        let mut output = OutputDataset::new(namespace, name);
        if let Some(d) = &digest {
            set_content_facets(&mut input.facets, d);
            output.facets = input.facets.clone();
            output
                .output_facets
                .set(&OutputStatisticsOutputDatasetFacet::new(
                    d.size,
                    d.file_count.unwrap_or(1),
                ));
        }
        out.push(Named {
            input,
            output,
            digest: digest.map(|d| d.sha256),
        });
    }
    Ok(out)
}

/// The datasets, each once, in the order first given (`--input a.txt
/// --input ./a.txt` name one dataset).
fn once_each<D, K: Ord>(datasets: impl Iterator<Item = D>, key: impl Fn(&D) -> K) -> Vec<D> {
    let mut seen = std::collections::BTreeSet::new();
    datasets.filter(|d| seen.insert(key(d))).collect()
}

fn set_content_facets(facets: &mut Facets<DatasetKind>, d: &PathDigest) {
    let checksum = d.checksum_facet();
    if let Some(version) = checksum.version_facet() {
        facets.set(&version);
    }
    facets.set(&checksum);
    let kind = match d.kind {
        EntryKind::File => "FILE",
        EntryKind::Directory => "DIRECTORY",
    };
    facets.set(&DatasetTypeDatasetFacet::new(kind));
    facets.set(&StorageDatasetFacet::new(
        "posix",
        file_format(&d.path).map(Text::from),
    ));
    if let Some(target) = &d.target {
        facets.set(&SymlinksDatasetFacet::new(vec![SymlinkIdentifier {
            namespace: "file".into(),
            name: target.display().to_string(),
            kind: "SYMLINK_TARGET".into(),
            extra: Map::new(),
        }]));
    }
}

/// The genomics format of a path, from its extension.
fn file_format(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    let formats = [
        (".fastq", "fastq"),
        (".fq", "fastq"),
        (".bam", "bam"),
        (".cram", "cram"),
        (".sam", "sam"),
        (".vcf", "vcf"),
        (".bcf", "bcf"),
        (".fa", "fasta"),
        (".fasta", "fasta"),
        (".bed", "bed"),
    ];
    formats
        .iter()
        .find(|(ext, _)| name.ends_with(ext))
        .map(|(_, f)| f.to_string())
}

/// Whether a `--container` names an image file rather than a registry image:
/// a `file://` URI, a path that exists as a file, or one that looks like a
/// path (`/`, `./`, `../`, or ending `.sif`/`.simg`; a missing one is then a
/// clear hashing error, not a malformed reference).
fn is_image_file(image: &str) -> bool {
    image.starts_with("file://")
        || image.starts_with('/')
        || image.starts_with("./")
        || image.starts_with("../")
        || image.ends_with(".sif")
        || image.ends_with(".simg")
        || Path::new(image).is_file()
}

/// The dataset name of a local path: absolute, with `.` and `..` taken out
/// lexically (`out/../data/ref.fa` run in `/work` is `/work/data/ref.fa`).
/// Symbolic links are kept, not resolved: the name is the path people use.
/// Unless going up lexically lands elsewhere than the system does: `..` after
/// a link goes up from where the link points (`link/../ref.fa` is the
/// `ref.fa` beside the link's target), and then the folder the system
/// reaches is named by its real path.
pub fn local_name(path: &Path) -> String {
    use std::path::Component;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let parts: Vec<Component> = absolute.components().collect();
    let lexical = |parts: &[Component], mut clean: PathBuf| {
        for part in parts {
            match part {
                Component::CurDir => {}
                Component::ParentDir => {
                    clean.pop();
                }
                other => clean.push(other),
            }
        }
        clean
    };
    if let Some(last_up) = parts.iter().rposition(|c| *c == Component::ParentDir) {
        let through: PathBuf = parts[..=last_up].iter().collect();
        let assumed = lexical(&parts[..=last_up], PathBuf::new());
        // The system reaches a folder other than the one the lexical name
        // assumes (or one that does not exist): the system's is the one.
        if let Ok(real) = std::fs::canonicalize(&through)
            && std::fs::canonicalize(&assumed).map_or(true, |a| a != real)
        {
            return lexical(&parts[last_up + 1..], real).display().to_string();
        }
    }
    lexical(&parts, PathBuf::new()).display().to_string()
}

/// The local file an input or output names: a path, or a `file:///path` or
/// `file://localhost/path` URI; `None` for a URI of anything else.
pub fn local_path(p: &str) -> Option<PathBuf> {
    if uri_name(p).is_none() {
        return Some(PathBuf::from(p));
    }
    let rest = p.strip_prefix("file://")?;
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    path.starts_with('/').then(|| PathBuf::from(path))
}

/// `(namespace, name)` of a URI, per the OpenLineage naming conventions;
/// `None` for a local path.
pub fn uri_name(s: &str) -> Option<(String, String)> {
    let (scheme, rest) = s.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    {
        return None;
    }
    if scheme == "file" && rest.starts_with('/') {
        // file:///path is a local file.
        return Some(("file".into(), rest.to_owned()));
    }
    // The query and fragment are not part of a dataset's name (a signed URL
    // carries its signature there), nor is the user and password.
    let rest = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let name = match scheme {
        "s3" | "gs" | "s3a" | "gcs" => path.trim_start_matches('/').to_owned(),
        _ => path.to_owned(),
    };
    Some((format!("{scheme}://{authority}"), name))
}

/// How a run's command executed, for `prov_execution`.
#[derive(Debug, Clone, Default)]
pub struct Execution {
    /// The command and its arguments (default: the step's command).
    pub argv: Option<Vec<String>>,
    /// The exit code, if the command exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// User plus system CPU time, milliseconds.
    pub cpu_time_ms: Option<u64>,
    /// Peak resident set size, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Where the command ran (default: this process's working directory).
    pub working_directory: Option<String>,
}

/// A started run. Finish it with [`RunHandle::complete`] or
/// [`RunHandle::fail`]; dropping it unfinished emits ABORT.
pub struct RunHandle {
    recorder: Recorder,
    run: Run,
    job: Job,
    inputs: Vec<InputDataset>,
    command: Vec<String>,
    /// The values of secret parameters, never to be recorded in clear.
    secrets: Vec<String>,
    root: RunId,
    root_job: JobRef,
    started: Instant,
    start_time: chrono::DateTime<Utc>,
    /// Whether the run has ended; held while its terminal event is emitted,
    /// so that a second ending waits for the first to be out.
    finished: Mutex<bool>,
}

impl RunHandle {
    /// The run's id.
    pub fn run_id(&self) -> RunId {
        self.run.run_id
    }

    /// The job's namespace and name.
    pub fn job(&self) -> JobRef {
        JobRef::new(self.job.namespace.clone(), self.job.name.clone())
    }

    /// What a child of this run records as its parent and root.
    pub fn child_lineage(&self) -> Lineage {
        Lineage {
            parent: self.run.run_id,
            parent_job: self.job(),
            root: self.root,
            root_job: self.root_job.clone(),
        }
    }

    /// Hashes `outputs` and emits COMPLETE.
    ///
    /// A run ends once: after the first of [`RunHandle::complete`],
    /// [`RunHandle::fail`] or [`RunHandle::abort`] (from any thread, for
    /// example one handling a signal while outputs are hashed), the others
    /// emit nothing.
    pub fn complete(&self, outputs: &[&str]) -> Result<(), RecordError> {
        self.complete_with(
            outputs,
            Execution {
                exit_code: Some(0),
                ..Execution::default()
            },
        )
    }

    /// Hashes `outputs` and emits COMPLETE with how the command executed.
    pub fn complete_with(&self, outputs: &[&str], execution: Execution) -> Result<(), RecordError> {
        self.complete_with_digests(outputs, execution).map(drop)
    }

    /// As [`RunHandle::complete_with`], and returns the sha-256 recorded for
    /// each output, in order (`None` for a URI, which is named, not hashed),
    /// for a caller that needs them too and should not hash twice.
    pub fn complete_with_digests(
        &self,
        outputs: &[&str],
        execution: Execution,
    ) -> Result<Vec<Option<String>>, RecordError> {
        // The step ended now; hashing its outputs is not part of its time.
        let ended = Ended::now();
        let paths: Vec<String> = outputs.iter().map(|s| s.to_string()).collect();
        let named = match datasets(&self.recorder, &paths, "output", &self.job.name) {
            Ok(named) => named,
            Err(e) => {
                // The run still ends, as a failure naming the output at fault.
                let message = match e.source_message() {
                    causes if causes.is_empty() => e.to_string(),
                    causes => format!("{e}: {causes}"),
                };
                let _ = self.finish(
                    EventType::Fail,
                    Some(message),
                    Some((execution, ended)),
                    Vec::new(),
                );
                return Err(e);
            }
        };
        let digests = named.iter().map(|n| n.digest.clone()).collect();
        self.finish(
            EventType::Complete,
            None,
            Some((execution, ended)),
            once_each(named.into_iter().map(|n| n.output), |d| {
                (d.namespace.clone(), d.name.clone())
            }),
        )?;
        Ok(digests)
    }

    /// Emits FAIL with `message`.
    pub fn fail(&self, message: &str, execution: Execution) -> Result<(), RecordError> {
        self.finish(
            EventType::Fail,
            Some(message.to_owned()),
            Some((execution, Ended::now())),
            Vec::new(),
        )
        .map(drop)
    }

    /// Emits ABORT (the run was stopped before it finished).
    pub fn abort(&self, execution: Execution) -> Result<(), RecordError> {
        self.abort_unless_ended(execution).map(drop)
    }

    /// Emits ABORT unless the run has ended, and says whether this call
    /// ended it. An end that another thread is emitting is waited for, so
    /// that when this returns the run's terminal event is out either way.
    pub fn abort_unless_ended(&self, execution: Execution) -> Result<bool, RecordError> {
        self.finish(
            EventType::Abort,
            None,
            Some((execution, Ended::now())),
            Vec::new(),
        )
    }

    /// Emits the terminal event unless the run has ended; whether it did.
    fn finish(
        &self,
        kind: EventType,
        error: Option<String>,
        execution: Option<(Execution, Ended)>,
        outputs: Vec<OutputDataset>,
    ) -> Result<bool, RecordError> {
        let mut finished = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        if *finished {
            return Ok(false);
        }
        *finished = true;
        self.emit(kind, error, execution, outputs).map(|()| true)
    }

    fn emit(
        &self,
        kind: EventType,
        error: Option<String>,
        execution: Option<(Execution, Ended)>,
        outputs: Vec<OutputDataset>,
    ) -> Result<(), RecordError> {
        let name = kind.as_str().to_owned();
        let mut run = self.run.clone();
        if let Some(message) = error {
            run.facets.set(&ErrorMessageRunFacet::new(message, "shell"));
        }
        if let Some((exec, ended)) = execution {
            let argv = exec
                .argv
                .filter(|a| !a.is_empty())
                .or_else(|| (!self.command.is_empty()).then(|| self.command.clone()))
                .unwrap_or_else(|| {
                    // As the system gives them: an argument that is not
                    // UTF-8 is recorded with U+FFFD (`env::args` would panic).
                    std::env::args_os()
                        .map(|a| a.to_string_lossy().into_owned())
                        .collect()
                });
            run.facets.set(&ProvExecutionRunFacet {
                base: FacetBase::ours::<ProvExecutionRunFacet>(),
                argv: redact_argv(&argv, &self.secrets),
                working_directory: exec.working_directory.unwrap_or_else(|| {
                    std::env::current_dir()
                        .map_or_else(|_| "unknown".into(), |d| d.display().to_string())
                }),
                exit_code: exec.exit_code,
                signal: exec.signal,
                wall_time_ms: ended.at.duration_since(self.started).as_millis() as u64,
                cpu_time_ms: exec.cpu_time_ms,
                peak_rss_bytes: exec.peak_rss_bytes,
                host: host_name(),
                user: user_name(),
                start_time: self.start_time.to_rfc3339_opts(SecondsFormat::Micros, true),
                end_time: ended.time.to_rfc3339_opts(SecondsFormat::Micros, true),
                extra: Map::new(),
            });
        }
        let mut event = RunEvent::new(kind, run, self.job.clone());
        event.event_time = EventTime::now();
        event.inputs = Some(self.inputs.clone());
        if !outputs.is_empty() {
            event.outputs = Some(outputs);
        }
        let job = self.job.name.clone();
        self.recorder
            .inner
            .transport
            .emit(&Event::Run(event))
            .map_err(|source| RecordError::Emit {
                event: name,
                job,
                source,
            })
    }
}

impl Drop for RunHandle {
    fn drop(&mut self) {
        // A run nobody finished was stopped: say so rather than leave it open.
        let _ = self.finish(
            EventType::Abort,
            None,
            Some((Execution::default(), Ended::now())),
            Vec::new(),
        );
    }
}

/// When a step ended, by the clock of its wall time and by the calendar.
struct Ended {
    at: Instant,
    time: chrono::DateTime<Utc>,
}

impl Ended {
    fn now() -> Self {
        Ended {
            at: Instant::now(),
            time: Utc::now(),
        }
    }
}

impl RecordError {
    fn source_message(&self) -> String {
        let mut out = String::new();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&s.to_string());
            source = s.source();
        }
        out
    }
}

/// The host name, read once per process: reading it from /proc took about
/// a quarter of the recorder's own time per step.
fn host_name() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "unknown".into())
    })
    .clone()
}

fn user_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_named_per_the_conventions() {
        let check = |uri: &str, ns: &str, name: &str| {
            assert_eq!(
                uri_name(uri),
                Some((ns.to_owned(), name.to_owned())),
                "{uri}"
            );
        };
        check(
            "s3://bucket/reads/S1.fastq.gz",
            "s3://bucket",
            "reads/S1.fastq.gz",
        );
        check("gs://b/x/y.bam", "gs://b", "x/y.bam");
        check(
            "file://node-7/scratch/a.vcf",
            "file://node-7",
            "/scratch/a.vcf",
        );
        check("file:///data/a.vcf", "file", "/data/a.vcf");
        check("hdfs://nn:8020/p/q", "hdfs://nn:8020", "/p/q");
        // No user, password, query or fragment in a dataset's name.
        check(
            "https://u:pw@host.org:8443/x.vcf?sig=abc#part",
            "https://host.org:8443",
            "/x.vcf",
        );
        check(
            "s3://bucket/key.bam?X-Amz-Signature=abc",
            "s3://bucket",
            "key.bam",
        );
        assert_eq!(uri_name("/data/local.bam"), None);
        assert_eq!(
            local_name(Path::new("/w/out/../data/./ref.fa")),
            "/w/data/ref.fa"
        );
        assert_eq!(local_name(Path::new("/../x")), "/x");
        let here = std::env::current_dir().unwrap();
        assert_eq!(
            local_name(Path::new("a/../b")),
            here.join("b").display().to_string()
        );
        assert_eq!(uri_name("relative/path.bam"), None);

        // Up from a link is up from where it points, as the system reads it.
        let dir = std::env::temp_dir().join(format!("prov-local-name-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("other/sub")).unwrap();
        std::fs::create_dir_all(dir.join("work")).unwrap();
        std::os::unix::fs::symlink(dir.join("other/sub"), dir.join("work/link")).unwrap();
        let real = std::fs::canonicalize(&dir).unwrap();
        assert_eq!(
            local_name(&dir.join("work/link/../ref.fa")),
            real.join("other/ref.fa").display().to_string()
        );
        // Going up inside a linked folder lands where the name says: the
        // link stays in the name.
        std::fs::create_dir_all(dir.join("other/sub/deeper")).unwrap();
        assert_eq!(
            local_name(&dir.join("work/link/deeper/../ref.fa")),
            dir.join("work/link/ref.fa").display().to_string()
        );
        // A second `..` after the link, below a folder that exists only
        // where the link points: named where the system reads.
        std::fs::create_dir_all(dir.join("other/l2/m")).unwrap();
        assert_eq!(
            local_name(&dir.join("work/link/../l2/m/../f.txt")),
            real.join("other/l2/f.txt").display().to_string()
        );
        // Without `..`, the link is the name.
        assert_eq!(
            local_name(&dir.join("work/link/./ref.fa")),
            dir.join("work/link/ref.fa").display().to_string()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn options_ending_in_an_english_word_are_not_taken_for_passwords() {
        let argv: Vec<String> = [
            "tool",
            "--compass",
            "north",
            "--bypass",
            "cache",
            "--dbpass",
            "s3cr3t",
            "--db-pass",
            "x1",
            "--pgpass=x2",
        ]
        .map(String::from)
        .to_vec();
        let r = REDACTED;
        assert_eq!(
            redact_argv(&argv, &[]),
            [
                "tool",
                "--compass",
                "north",
                "--bypass",
                "cache",
                "--dbpass",
                r,
                "--db-pass",
                r,
                &format!("--pgpass={r}"),
            ]
        );
    }

    #[test]
    fn secret_options_inside_a_shell_script_argument_are_hidden() {
        let r = REDACTED;
        let argv = |script: &str| vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()];
        for (script, hidden) in [
            (
                "echo hunter2 --password=pw1 --api-key ak2 https://u:urlpw@h/x",
                format!("echo {r} --password={r} --api-key {r} https://u:{r}@h/x"),
            ),
            (
                "psql --db-password 'two words' -c 'select 1' && tool --token=\"a b\" --threads 4",
                format!("psql --db-password {r} -c 'select 1' && tool --token={r} --threads 4"),
            ),
            // An option with no value before the next option hides nothing.
            (
                "cmd --secret --verbose x",
                "cmd --secret --verbose x".to_owned(),
            ),
            // A script within the script, an escaped space, a quoted value
            // that starts with a dash.
            (
                "true && sh -c 'true --password=nested2' && true --api-key my\\ secret3 && true --token '-dash4' --x",
                format!(
                    "true && sh -c 'true --password={r}' && true --api-key {r} && true --token {r} --x"
                ),
            ),
            (
                "bash -c \"sh -c 'cmd --password deep'\"",
                format!("bash -c \"sh -c 'cmd --password {r}'\""),
            ),
            // Escaped quotes in a double-quoted script, ANSI-C quoting, a
            // backslash within the option's name.
            (
                "bash -c \"cmd --password \\\"alpha beta\\\" --x\"",
                format!("bash -c \"cmd --password {r} --x\""),
            ),
            (
                "cmd --password $'alpha\\' beta' --next",
                format!("cmd --password {r} --next"),
            ),
            ("cmd --pass\\word x y", format!("cmd --pass\\word {r} y")),
            // A `$` within `$'...'` does not end it; the rest of a
            // double-quoted script stays as written (`$OUT`, backquotes);
            // a word quoted whole keeps its closing quote.
            (
                "bash -c \"cmd --password \\$'pa\\$s word' --next\"",
                format!("bash -c \"cmd --password {r} --next\""),
            ),
            (
                "cmd --password $'pa$s' --next x",
                format!("cmd --password {r} --next x"),
            ),
            (
                "bash -c \"cmd --password pw > $OUT; `date` a\\nb\"",
                format!("bash -c \"cmd --password {r} > $OUT; `date` a\\nb\""),
            ),
            (
                "cmd \"--password=x y\" z",
                format!("cmd \"--password={r}\" z"),
            ),
            (
                "bwa mem -t 8 ref.fa r1.fq",
                "bwa mem -t 8 ref.fa r1.fq".to_owned(),
            ),
            (
                "ünï --pässword=x  tail",
                "ünï --pässword=x  tail".to_owned(),
            ),
        ] {
            let out = redact_argv(&argv(script), &["hunter2".to_owned()]);
            assert_eq!(out[2], hidden, "{script}");
        }
    }

    #[test]
    fn any_script_is_searched_without_a_panic() {
        // Scripts made of the pieces that matter to the shell's reading,
        // multibyte characters right after quotes, dollars and backslashes.
        let pieces = [
            " ",
            "'",
            "\"",
            "\\",
            "$",
            "$'",
            "--password",
            "=",
            "x",
            "é",
            "😀",
            "sh -c ",
            "\t",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut script = String::new();
            for _ in 0..12 {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                script.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            let out = redact_argv(&["sh".into(), "-c".into(), script.clone()], &[]);
            assert_eq!(out.len(), 3, "{script}");
        }
    }

    #[test]
    fn every_url_password_in_a_text_is_hidden() {
        let r = REDACTED;
        for (text, hidden) in [
            (
                "echo https://example.org/a postgres://u:ARGPW@db/lab",
                format!("echo https://example.org/a postgres://u:{r}@db/lab"),
            ),
            (
                "--urls=http://a,postgres://u:pw@db,s3://k:s@b/x",
                format!("--urls=http://a,postgres://u:{r}@db,s3://k:{r}@b/x"),
            ),
            ("https://u:p@h?q=1#f", format!("https://u:{r}@h?q=1#f")),
            ("http://host:8080/x", "http://host:8080/x".into()),
            ("user@host:path ://", "user@host:path ://".into()),
            ("ü://ü:pä@hö/ß", format!("ü://ü:{r}@hö/ß")),
        ] {
            assert_eq!(crate::redact_url_password(text), hidden, "{text}");
        }
    }

    #[test]
    fn secret_looking_names_are_recognized() {
        for name in [
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "DB_PASSWORD",
            "api_key",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "NXF_PASS",
            "DB_PWD",
            "GITHUB_PAT",
            "aws_secret_access_key",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in [
            "LANG",
            "OMP_NUM_THREADS",
            "SLURM_JOB_ID",
            "PATH",
            "NXF_PATCH",
        ] {
            assert!(!looks_secret(name), "{name}");
        }
        assert_eq!(secret_hash("hunter2"), secret_hash("hunter2"));
        assert!(!secret_hash("hunter2").contains("hunter2"));
    }

    #[test]
    fn an_image_file_is_pinned_by_its_bytes_and_docker_uris_by_their_reference() {
        let dir = std::env::temp_dir().join(format!("prov-image-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sif = dir.join("bwa.sif");
        std::fs::write(&sif, b"SIF image bytes").unwrap();
        let recorder = Recorder::new("t", Box::new(crate::transport::NoopTransport));
        let facet = |image: &str| {
            recorder
                .step("bwa")
                .container(image, ContainerRuntime::Apptainer)
                .prepare()
                .map(|p| p.container().unwrap())
        };
        let by_path = facet(sif.to_str().unwrap()).unwrap();
        let sha = {
            let mut h = Sha256::new();
            h.update(b"SIF image bytes");
            crate::hex(&h.finalize())
        };
        assert_eq!(by_path.digest, Some(format!("sha256:{sha}")));
        assert_eq!(by_path.digest_source, DigestSource::ImageFile);
        assert!(by_path.pinned);
        assert_eq!(by_path.registry, "file");
        assert_eq!(by_path.repository, sif.display().to_string());
        assert_eq!(
            facet(&format!("file://{}", sif.display())).unwrap(),
            by_path
        );
        // Changed bytes, another identity.
        std::fs::write(&sif, b"other bytes").unwrap();
        assert_ne!(facet(sif.to_str().unwrap()).unwrap().digest, by_path.digest);
        // A missing image file is an error naming it, not a malformed reference.
        let missing = dir.join("missing.sif");
        let err = facet(missing.to_str().unwrap()).unwrap_err();
        let text = format!("{err}: {}", err.source_message());
        assert!(text.contains("container image file"), "{text}");
        assert!(text.contains("missing.sif"), "{text}");
        // apptainer's docker:// names a registry image.
        let pinned = format!("docker://quay.io/biocontainers/bwa:0.7.17@sha256:{sha}");
        let uri = facet(&pinned).unwrap();
        assert_eq!(uri.registry, "quay.io");
        assert_eq!(uri.repository, "biocontainers/bwa");
        assert!(uri.pinned && uri.digest_source == DigestSource::Given);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unresolvable_tag_is_recorded_unpinned_or_refused_when_pins_are_required() {
        use crate::resolve::{Resolver, ResolverOptions};
        let resolver = Arc::new(
            Resolver::new(ResolverOptions {
                ask_runtime: false,
                ..ResolverOptions::default()
            })
            .unwrap(),
        );
        let registry = crate::resolve::tests::closed_loopback_registry();
        let image = &format!("{registry}/biocontainers/bwa:0.7.17");
        let recorder = Recorder::new("t", Box::new(crate::transport::NoopTransport))
            .with_resolver(Arc::clone(&resolver));
        let prepared = recorder
            .step("bwa")
            .container(image, ContainerRuntime::Docker)
            .prepare()
            .unwrap();
        let facet = prepared.container().unwrap();
        assert!(!facet.pinned);
        let reason = facet.unpinned_reason.unwrap();
        assert!(
            reason.contains(&format!("reach http://{registry}/v2/")),
            "{reason}"
        );

        let strict = Recorder::new("t", Box::new(crate::transport::NoopTransport))
            .with_resolver(resolver)
            .with_require_pinned(true);
        let Err(err) = strict
            .step("bwa")
            .container(image, ContainerRuntime::Docker)
            .prepare()
        else {
            panic!("an unpinned image passed");
        };
        let text = err.to_string();
        assert!(text.contains("is not pinned to a digest"), "{text}");
        assert!(text.contains(image.as_str()), "{text}");
        let pinned = format!("{image}@sha256:{}", "0".repeat(64));
        assert!(
            strict
                .step("bwa")
                .container(pinned, ContainerRuntime::Docker)
                .prepare()
                .is_ok()
        );
    }
}
