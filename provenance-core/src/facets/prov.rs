//! The project's own facets (prefix `prov`): container identity, parameters,
//! content checksums, execution, software versions and the step fingerprint.
//!
//! OpenLineage has no standard facet for a content hash, a checksum or an image
//! digest; these fill the gap. Each has a JSON Schema in `schemas/` whose `$id` is
//! the type's `SCHEMA_URL`; a schema URL is immutable, so a change to a facet's
//! shape is a new version and a new URL.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    DatasetKind, ExecutionParametersRunFacet, Facet, FacetBase, RunKind, Text, open_facet,
};
use crate::canonical::{CanonicalError, canonical_json, canonical_sha256};
use crate::json::Object;
use crate::oci::{ImageRefError, ImageReference};

/// Where the schemas of the `prov` facets are published, one folder per version.
pub const PROV_SCHEMA_BASE: &str =
    "https://genomics-provenance.github.io/provenance/schemas/facets/";

/// The GA4GH DRS name of sha-256.
pub const SHA256: &str = "sha-256";
/// The GA4GH DRS name of md5.
pub const MD5: &str = "md5";

macro_rules! prov_facet {
    ($ty:ident, $key:literal, $kind:ty, $version:literal $(, $write:ident)?) => {
        super::impl_facet!(
            $ty,
            $key,
            $kind,
            concat!(
                "https://genomics-provenance.github.io/provenance/schemas/facets/",
                $version,
                "/",
                stringify!($ty),
                ".json"
            )
            $(, $write)?
        );
    };
}

/// How the digest of an image was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestSource {
    /// The reference as given named the digest (`image@sha256:...`).
    Given,
    /// The registry answered for the tag.
    Registry,
    /// The local container runtime reported it.
    Runtime,
    /// It is the hash of an image file (a `.sif` or an OCI archive).
    ImageFile,
    /// The registry was unreachable; an earlier answer of the registry for
    /// the tag was served from the cache (`resolvedAt` says when).
    Cache,
    /// No digest is known.
    None,
}

/// The container runtime a step ran under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerRuntime {
    /// Docker.
    Docker,
    /// Podman.
    Podman,
    /// Apptainer (or Singularity).
    Apptainer,
    /// Not run in a container by a known runtime.
    None,
}

/// `prov_container`: the image a run used, by digest when known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvContainerRunFacet {
    /// `_producer`, `_schemaURL`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The image reference exactly as given.
    pub image: String,
    /// The registry host (`docker.io` when none was named).
    pub registry: String,
    /// The repository path (`library/ubuntu`, `biocontainers/bwa`).
    pub repository: String,
    /// The tag, if the reference had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The manifest digest, `sha256:<64 hex>`, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// How the digest was learned.
    #[serde(rename = "digestSource")]
    pub digest_source: DigestSource,
    /// Whether the image is identified by a digest; `false` means only a tag
    /// (which can move) is known.
    pub pinned: bool,
    /// The runtime that ran the image.
    pub runtime: ContainerRuntime,
    /// When a registry resolved the tag to `digest` (RFC 3339); for a digest
    /// served from the cache, the time of that earlier resolution.
    #[serde(
        rename = "resolvedAt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resolved_at: Option<String>,
    /// Why no digest could be learned, when the image is unpinned.
    #[serde(
        rename = "unpinnedReason",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub unpinned_reason: Option<String>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
prov_facet!(
    ProvContainerRunFacet,
    "prov_container",
    RunKind,
    "1-1-0",
    write_text
);

impl ProvContainerRunFacet {
    /// The facet for `image` as given, run by `runtime`. A digest in the
    /// reference pins it (source `given`); otherwise it is unpinned until
    /// [`Self::with_digest`] records a resolved one.
    pub fn new(image: &str, runtime: ContainerRuntime) -> Result<Self, ImageRefError> {
        let reference = ImageReference::parse(image)?;
        let pinned = reference.is_pinned();
        Ok(ProvContainerRunFacet {
            base: FacetBase::ours::<Self>(),
            image: image.to_owned(),
            registry: reference.registry,
            repository: reference.repository,
            tag: reference.tag,
            digest: reference.digest,
            digest_source: if pinned {
                DigestSource::Given
            } else {
                DigestSource::None
            },
            pinned,
            runtime,
            resolved_at: None,
            unpinned_reason: None,
            extra: Map::new(),
        })
    }

    /// The facet for an image file (an Apptainer/Singularity `.sif`) at the
    /// absolute `path`, pinned by the sha-256 of its bytes: registry `file`,
    /// repository the path (as OpenLineage names local files).
    pub fn image_file(path: &str, sha256_hex: &str, runtime: ContainerRuntime) -> Self {
        ProvContainerRunFacet {
            base: FacetBase::ours::<Self>(),
            image: path.to_owned(),
            registry: "file".into(),
            repository: path.to_owned(),
            tag: None,
            digest: Some(["sha256:", sha256_hex].concat()),
            digest_source: DigestSource::ImageFile,
            pinned: true,
            runtime,
            resolved_at: None,
            unpinned_reason: None,
            extra: Map::new(),
        }
    }

    /// Records a digest learned from `source` (a registry, a runtime, a file).
    pub fn with_digest(mut self, digest: impl Into<String>, source: DigestSource) -> Self {
        self.digest = Some(digest.into());
        self.digest_source = source;
        self.pinned = true;
        self.unpinned_reason = None;
        self
    }

    /// Records when a registry resolved the tag (for sources `registry` and
    /// `cache`).
    pub fn resolved_at(mut self, time: impl Into<String>) -> Self {
        self.resolved_at = Some(time.into());
        self
    }

    /// Records why the image stays unpinned (no digest could be learned).
    pub fn unpinned_because(mut self, reason: impl Into<String>) -> Self {
        if !self.pinned {
            self.unpinned_reason = Some(reason.into());
        }
        self
    }

    /// What identifies the image in a fingerprint: the digest, or
    /// `unpinned:<normalized reference>` when only a tag is known.
    pub fn identity(&self) -> String {
        match &self.digest {
            Some(digest) => digest.clone(),
            None => format!(
                "unpinned:{}/{}:{}",
                self.registry,
                self.repository,
                self.tag.as_deref().unwrap_or("latest")
            ),
        }
    }
}

/// The name of the canonicalization used for `prov_parameters` hashes.
pub const RFC8785: &str = "RFC8785";

/// `prov_parameters`: the parameters as structured JSON and the sha-256 of their
/// RFC 8785 canonical form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvParametersRunFacet {
    /// `_producer`, `_schemaURL`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The parameters, a JSON object.
    pub parameters: Map<String, Value>,
    /// Lowercase hex sha-256 of the canonical form of `parameters`.
    pub sha256: String,
    /// The canonicalization, always `RFC8785`.
    pub canonicalization: Text,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
prov_facet!(
    ProvParametersRunFacet,
    "prov_parameters",
    RunKind,
    "1-0-0",
    write_text
);

impl ProvParametersRunFacet {
    /// The facet for `parameters`, hashed canonically.
    pub fn new(parameters: Map<String, Value>) -> Result<Self, CanonicalError> {
        // Hashed as the object it is, without a copy.
        let parameters = Value::Object(parameters);
        let sha256 = canonical_sha256(&parameters)?;
        let Value::Object(parameters) = parameters else {
            unreachable!("made an object above")
        };
        Ok(ProvParametersRunFacet {
            base: FacetBase::ours::<Self>(),
            parameters,
            sha256,
            canonicalization: RFC8785.into(),
            extra: Map::new(),
        })
    }

    /// The same parameters as the standard `executionParameters` facet: strings
    /// as they are, any other value as its canonical JSON text.
    pub fn execution_parameters(&self) -> Result<ExecutionParametersRunFacet, CanonicalError> {
        let mut pairs = Vec::with_capacity(self.parameters.len());
        for (key, value) in &self.parameters {
            let text = match value {
                Value::String(s) => s.clone(),
                other => canonical_json(other)?,
            };
            pairs.push((key.clone(), text));
        }
        Ok(ExecutionParametersRunFacet::new(pairs))
    }
}

/// Whether a checksum describes one file or a directory tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumKind {
    /// A regular file: the digests are of its bytes.
    File,
    /// A directory: `sha-256` is its Merkle digest (see `merkle`).
    Directory,
}

/// The digests of a `prov_checksum` facet: algorithm -> lowercase hex, one
/// per algorithm, kept in algorithm order (the order of their JSON object).
///
/// A facet holds one or two, so they are a short sorted list rather than a
/// tree: a dataset's checksum then costs one small allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checksums(Vec<(Text, String)>);

impl Checksums {
    /// No digests.
    pub fn new() -> Self {
        Checksums(Vec::new())
    }

    /// One digest, with room for a second.
    pub fn of(algorithm: impl Into<Text>, hex: impl Into<String>) -> Self {
        let mut sums = Vec::with_capacity(2);
        sums.push((algorithm.into(), hex.into()));
        Checksums(sums)
    }

    /// The hex digest under `algorithm`.
    pub fn get(&self, algorithm: &str) -> Option<&str> {
        let at = self.position(algorithm).ok()?;
        Some(&self.0[at].1)
    }

    /// Records `hex` under `algorithm`; returns the digest it replaces.
    pub fn insert(&mut self, algorithm: impl Into<Text>, hex: impl Into<String>) -> Option<String> {
        let (algorithm, hex) = (algorithm.into(), hex.into());
        match self.position(&algorithm) {
            Ok(at) => Some(std::mem::replace(&mut self.0[at].1, hex)),
            Err(at) => {
                self.0.insert(at, (algorithm, hex));
                None
            }
        }
    }

    /// Removes the digest under `algorithm`.
    pub fn remove(&mut self, algorithm: &str) -> Option<String> {
        let at = self.position(algorithm).ok()?;
        Some(self.0.remove(at).1)
    }

    /// Every `(algorithm, hex)`, in algorithm order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0.iter().map(|(a, h)| (a.as_ref(), h.as_str()))
    }

    /// The number of digests.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, algorithm: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(a, _)| a.as_ref().cmp(algorithm))
    }
}

impl<A: Into<Text>, H: Into<String>> FromIterator<(A, H)> for Checksums {
    /// Later digests of the same algorithm replace earlier ones.
    fn from_iter<I: IntoIterator<Item = (A, H)>>(iter: I) -> Self {
        let mut sums = Checksums::new();
        for (algorithm, hex) in iter {
            sums.insert(algorithm, hex);
        }
        sums
    }
}

impl<A: Into<Text>, H: Into<String>, const N: usize> From<[(A, H); N]> for Checksums {
    fn from(sums: [(A, H); N]) -> Self {
        sums.into_iter().collect()
    }
}

impl Serialize for Checksums {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Checksums {
    /// From a JSON object of strings; a repeated algorithm keeps its last
    /// digest, as serde_json's maps do.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let sums = BTreeMap::<String, String>::deserialize(deserializer)?;
        Ok(Checksums(
            sums.into_iter().map(|(a, h)| (Text::Owned(a), h)).collect(),
        ))
    }
}

/// `prov_checksum`: the content identity of a dataset version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvChecksumDatasetFacet {
    /// `_producer`, `_schemaURL`, `_deleted`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// File or directory.
    pub kind: ChecksumKind,
    /// Size in bytes (for a directory, of all its files).
    pub size: u64,
    /// Algorithm (GA4GH DRS name: `sha-256`, `md5`) -> lowercase hex digest.
    pub checksums: Checksums,
    /// For a directory: the number of files under it.
    #[serde(rename = "fileCount", default, skip_serializing_if = "Option::is_none")]
    pub file_count: Option<u64>,
    /// For a directory: the name of the Merkle scheme of its `sha-256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merkle: Option<String>,
    /// The modification time seen when hashing (RFC 3339, nanoseconds).
    #[serde(
        rename = "modifiedTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub modified_time: Option<String>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
prov_facet!(
    ProvChecksumDatasetFacet,
    "prov_checksum",
    DatasetKind,
    "1-0-0",
    write_text
);

impl ProvChecksumDatasetFacet {
    /// The checksum of a file of `size` bytes with sha-256 `sha256_hex`.
    pub fn file(size: u64, sha256_hex: impl Into<String>) -> Self {
        ProvChecksumDatasetFacet {
            base: FacetBase::ours::<Self>(),
            kind: ChecksumKind::File,
            size,
            checksums: Checksums::of(SHA256, sha256_hex),
            file_count: None,
            merkle: None,
            modified_time: None,
            extra: Map::new(),
        }
    }

    /// The checksum of a directory of `file_count` files and `size` bytes whose
    /// Merkle digest under `scheme` is `merkle_hex`.
    pub fn directory(
        size: u64,
        file_count: u64,
        merkle_hex: impl Into<String>,
        scheme: &str,
    ) -> Self {
        ProvChecksumDatasetFacet {
            kind: ChecksumKind::Directory,
            file_count: Some(file_count),
            merkle: Some(scheme.to_owned()),
            ..Self::file(size, merkle_hex)
        }
    }

    /// Adds another digest, such as `md5`.
    pub fn with_checksum(mut self, algorithm: impl Into<Text>, hex: impl Into<String>) -> Self {
        self.checksums.insert(algorithm.into(), hex.into());
        self
    }

    /// The sha-256 hex digest, if recorded.
    pub fn sha256(&self) -> Option<&str> {
        self.checksums.get(SHA256)
    }

    /// The standard `version` facet for the same content: `sha256:<hex>`.
    pub fn version_facet(&self) -> Option<super::DatasetVersionDatasetFacet> {
        self.sha256()
            .map(|hex| super::DatasetVersionDatasetFacet::new(["sha256:", hex].concat()))
    }
}

/// `prov_execution`: how a run's command executed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvExecutionRunFacet {
    /// `_producer`, `_schemaURL`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The command and its arguments.
    pub argv: Vec<String>,
    /// The working directory.
    #[serde(rename = "workingDirectory")]
    pub working_directory: String,
    /// The exit code, if the command exited (not if a signal ended it).
    #[serde(rename = "exitCode", default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended the command, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Wall-clock time, milliseconds.
    #[serde(rename = "wallTimeMs")]
    pub wall_time_ms: u64,
    /// User plus system CPU time, milliseconds, if measured.
    #[serde(rename = "cpuTimeMs", default, skip_serializing_if = "Option::is_none")]
    pub cpu_time_ms: Option<u64>,
    /// Peak resident set size, bytes, if measured.
    #[serde(
        rename = "peakRssBytes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub peak_rss_bytes: Option<u64>,
    /// The host name.
    pub host: String,
    /// The user name.
    pub user: String,
    /// When the command started (RFC 3339).
    #[serde(rename = "startTime")]
    pub start_time: String,
    /// When the command ended (RFC 3339).
    #[serde(rename = "endTime")]
    pub end_time: String,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
prov_facet!(
    ProvExecutionRunFacet,
    "prov_execution",
    RunKind,
    "1-0-0",
    write_text
);

/// One piece of software and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftwareVersion {
    /// The tool's name (`bwa`, `samtools`).
    pub name: String,
    /// Its version as it reports it (`0.7.17-r1188`).
    pub version: String,
}

/// `prov_software`: the tools a run used and this library's version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvSoftwareRunFacet {
    /// `_producer`, `_schemaURL`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The tools.
    pub tools: Vec<SoftwareVersion>,
    /// The version of provenance-core that recorded the run.
    #[serde(rename = "provenanceVersion")]
    pub provenance_version: String,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
prov_facet!(
    ProvSoftwareRunFacet,
    "prov_software",
    RunKind,
    "1-0-0",
    write_text
);

impl ProvSoftwareRunFacet {
    /// The facet for `(name, version)` pairs.
    pub fn new<N: Into<String>, V: Into<String>>(tools: impl IntoIterator<Item = (N, V)>) -> Self {
        ProvSoftwareRunFacet {
            base: FacetBase::ours::<Self>(),
            tools: tools
                .into_iter()
                .map(|(name, version)| SoftwareVersion {
                    name: name.into(),
                    version: version.into(),
                })
                .collect(),
            provenance_version: env!("CARGO_PKG_VERSION").to_owned(),
            extra: Map::new(),
        }
    }
}

/// The name of the fingerprint encoding (see [`Fingerprint`]).
pub const FINGERPRINT_SCHEME: &str = "prov-fingerprint-1";

/// The parts of a step that decide its result: the input to its fingerprint.
///
/// The fingerprint is the lowercase hex sha-256 of the RFC 8785 canonical text of
/// this JSON object (member names as shown; order does not matter to JCS):
///
/// ```json
/// {"scheme": "prov-fingerprint-1",
///  "job": "<job name>",
///  "command": ["<argv0>", "<argv1>", ...],
///  "container": "sha256:<hex>" | "unpinned:<registry>/<repository>:<tag>" | null,
///  "parameters": {<the parameters object>},
///  "inputs": ["sha256:<hex>", ...]}
/// ```
///
/// `inputs` holds the content digests of all inputs, sorted bytewise, repeats
/// kept. The same step on the same bytes with the same image and parameters
/// gets the same fingerprint; changing any one of them changes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fingerprint<'a> {
    /// The job's name.
    pub job: &'a str,
    /// The command and its arguments.
    pub command: &'a [String],
    /// The image identity ([`ProvContainerRunFacet::identity`]), if any.
    pub container: Option<&'a str>,
    /// The parameters.
    pub parameters: &'a Map<String, Value>,
    /// The inputs' content digests (`sha256:<hex>`), in any order.
    pub inputs: &'a [String],
}

impl Fingerprint<'_> {
    /// The fingerprint's hex digest.
    pub fn sha256(&self) -> Result<String, CanonicalError> {
        let mut inputs = self.inputs.to_vec();
        inputs.sort();
        let encoding = serde_json::json!({
            "scheme": FINGERPRINT_SCHEME,
            "job": self.job,
            "command": self.command,
            "container": self.container,
            "parameters": self.parameters,
            "inputs": inputs,
        });
        canonical_sha256(&encoding)
    }

    /// The `prov_fingerprint` facet of this step.
    pub fn facet(&self) -> Result<ProvFingerprintRunFacet, CanonicalError> {
        Ok(ProvFingerprintRunFacet {
            base: FacetBase::ours::<ProvFingerprintRunFacet>(),
            sha256: self.sha256()?,
            scheme: FINGERPRINT_SCHEME.into(),
            extra: Map::new(),
        })
    }
}

/// `prov_fingerprint`: the step's reproducibility fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvFingerprintRunFacet {
    /// `_producer`, `_schemaURL`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// Lowercase hex sha-256 of the canonical encoding.
    pub sha256: String,
    /// The encoding, `prov-fingerprint-1` (see [`Fingerprint`]).
    pub scheme: Text,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
prov_facet!(
    ProvFingerprintRunFacet,
    "prov_fingerprint",
    RunKind,
    "1-0-0",
    write_text
);

/// `prov_cache`: this run did not execute its command; its outputs were
/// already there, made by an earlier run with the same fingerprint (like
/// Nextflow's CACHED).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvCacheRunFacet {
    /// `_producer`, `_schemaURL`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// Always `true`: the command was skipped.
    pub hit: bool,
    /// The run whose outputs were reused.
    #[serde(rename = "originalRunId")]
    pub original_run_id: String,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
prov_facet!(ProvCacheRunFacet, "prov_cache", RunKind, "1-0-0");

impl ProvCacheRunFacet {
    /// A cache hit on `original`'s outputs.
    pub fn hit(original: &str) -> Self {
        ProvCacheRunFacet {
            base: FacetBase::ours::<Self>(),
            hit: true,
            original_run_id: original.to_owned(),
            extra: Map::new(),
        }
    }
}

/// `prov_rerun`: this run re-executed a recorded run (`prov rerun --check`),
/// in a scratch directory, to see whether its outputs reproduce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvRerunRunFacet {
    /// `_producer`, `_schemaURL`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The run re-executed.
    #[serde(rename = "originalRunId")]
    pub original_run_id: String,
    /// The scratch directory the recorded paths were moved under.
    #[serde(rename = "scratchDirectory")]
    pub scratch_directory: String,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
prov_facet!(ProvRerunRunFacet, "prov_rerun", RunKind, "1-0-0");

impl ProvRerunRunFacet {
    /// A re-execution of `original` under `scratch`.
    pub fn of(original: &str, scratch: &str) -> Self {
        ProvRerunRunFacet {
            base: FacetBase::ours::<Self>(),
            original_run_id: original.to_owned(),
            scratch_directory: scratch.to_owned(),
            extra: Map::new(),
        }
    }
}

/// The schema URL of every `prov_*` facet: one per file in `schemas/`.
pub const PROV_FACET_SCHEMA_URLS: [&str; 8] = [
    ProvContainerRunFacet::SCHEMA_URL,
    ProvParametersRunFacet::SCHEMA_URL,
    ProvChecksumDatasetFacet::SCHEMA_URL,
    ProvExecutionRunFacet::SCHEMA_URL,
    ProvSoftwareRunFacet::SCHEMA_URL,
    ProvFingerprintRunFacet::SCHEMA_URL,
    ProvCacheRunFacet::SCHEMA_URL,
    ProvRerunRunFacet::SCHEMA_URL,
];

// The text of the facets emitted on every step, written member by member in
// sorted order (see `Facet::write_json`). One with members this crate does not
// model is written through its value, where they fall into place.

impl DigestSource {
    /// The name this source has in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DigestSource::Given => "given",
            DigestSource::Registry => "registry",
            DigestSource::Runtime => "runtime",
            DigestSource::ImageFile => "image_file",
            DigestSource::Cache => "cache",
            DigestSource::None => "none",
        }
    }
}

impl ContainerRuntime {
    /// The name this runtime has in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerRuntime::Docker => "docker",
            ContainerRuntime::Podman => "podman",
            ContainerRuntime::Apptainer => "apptainer",
            ContainerRuntime::None => "none",
        }
    }
}

impl ChecksumKind {
    /// The name this kind has in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumKind::File => "file",
            ChecksumKind::Directory => "directory",
        }
    }
}

impl ProvContainerRunFacet {
    fn write_text(&self, out: &mut Vec<u8>) {
        let Some(mut o) = open_facet(out, self, &self.base, &self.extra) else {
            return;
        };
        o.opt_str("digest", self.digest.as_deref());
        o.str("digestSource", self.digest_source.as_str());
        o.str("image", &self.image);
        o.bool("pinned", self.pinned);
        o.str("registry", &self.registry);
        o.str("repository", &self.repository);
        o.opt_str("resolvedAt", self.resolved_at.as_deref());
        o.str("runtime", self.runtime.as_str());
        o.opt_str("tag", self.tag.as_deref());
        o.opt_str("unpinnedReason", self.unpinned_reason.as_deref());
        o.end();
    }
}

impl ProvParametersRunFacet {
    fn write_text(&self, out: &mut Vec<u8>) {
        let Some(mut o) = open_facet(out, self, &self.base, &self.extra) else {
            return;
        };
        o.str("canonicalization", &self.canonicalization);
        o.map("parameters", &self.parameters);
        o.str("sha256", &self.sha256);
        o.end();
    }
}

impl ProvChecksumDatasetFacet {
    fn write_text(&self, out: &mut Vec<u8>) {
        let Some(mut o) = open_facet(out, self, &self.base, &self.extra) else {
            return;
        };
        let mut sums = Object::open(o.key("checksums"));
        for (algorithm, hex) in self.checksums.iter() {
            crate::json::write_str(sums.entry(algorithm), hex);
        }
        sums.end();
        o.opt_u64("fileCount", self.file_count);
        o.str("kind", self.kind.as_str());
        o.opt_str("merkle", self.merkle.as_deref());
        o.opt_str("modifiedTime", self.modified_time.as_deref());
        o.u64("size", self.size);
        o.end();
    }
}

impl ProvExecutionRunFacet {
    fn write_text(&self, out: &mut Vec<u8>) {
        let Some(mut o) = open_facet(out, self, &self.base, &self.extra) else {
            return;
        };
        o.strs("argv", &self.argv);
        o.opt_u64("cpuTimeMs", self.cpu_time_ms);
        o.str("endTime", &self.end_time);
        o.opt_i64("exitCode", self.exit_code.map(i64::from));
        o.str("host", &self.host);
        o.opt_u64("peakRssBytes", self.peak_rss_bytes);
        o.opt_i64("signal", self.signal.map(i64::from));
        o.str("startTime", &self.start_time);
        o.str("user", &self.user);
        o.u64("wallTimeMs", self.wall_time_ms);
        o.str("workingDirectory", &self.working_directory);
        o.end();
    }
}

impl ProvSoftwareRunFacet {
    fn write_text(&self, out: &mut Vec<u8>) {
        let Some(mut o) = open_facet(out, self, &self.base, &self.extra) else {
            return;
        };
        o.str("provenanceVersion", &self.provenance_version);
        o.list("tools", &self.tools, |tool, out| {
            let mut t = Object::open(out);
            t.str("name", &tool.name);
            t.str("version", &tool.version);
            t.end();
        });
        o.end();
    }
}

impl ProvFingerprintRunFacet {
    fn write_text(&self, out: &mut Vec<u8>) {
        let Some(mut o) = open_facet(out, self, &self.base, &self.extra) else {
            return;
        };
        o.str("scheme", &self.scheme);
        o.str("sha256", &self.sha256);
        o.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DIGEST: &str = "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn schema_urls_are_versioned_and_distinct() {
        assert_eq!(
            ProvChecksumDatasetFacet::SCHEMA_URL,
            format!("{PROV_SCHEMA_BASE}1-0-0/ProvChecksumDatasetFacet.json")
        );
        let urls = PROV_FACET_SCHEMA_URLS;
        let unique: std::collections::BTreeSet<_> = urls.iter().collect();
        assert_eq!(unique.len(), urls.len());
    }

    #[test]
    fn container_pinning_follows_the_digest() {
        let tagged = ProvContainerRunFacet::new(
            "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8",
            ContainerRuntime::Docker,
        )
        .unwrap();
        assert!(!tagged.pinned);
        assert_eq!(tagged.digest_source, DigestSource::None);
        assert_eq!(
            tagged.identity(),
            "unpinned:quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8"
        );
        let down = tagged.clone().unpinned_because("registry down");
        assert_eq!(down.unpinned_reason.as_deref(), Some("registry down"));
        let resolved = down.with_digest(DIGEST, DigestSource::Registry);
        assert!(resolved.pinned);
        assert_eq!(resolved.unpinned_reason, None, "a digest clears the reason");
        assert_eq!(resolved.identity(), DIGEST);
        let resolved = resolved.unpinned_because("ignored once pinned");
        assert_eq!(resolved.unpinned_reason, None);
        let given =
            ProvContainerRunFacet::new(&format!("bwa@{DIGEST}"), ContainerRuntime::None).unwrap();
        assert_eq!(given.digest_source, DigestSource::Given);
        assert_eq!(given.repository, "library/bwa");
        assert!(ProvContainerRunFacet::new("BWA", ContainerRuntime::None).is_err());
    }

    #[test]
    fn parameters_hash_canonically_and_feed_execution_parameters() {
        let a = ProvParametersRunFacet::new(params(
            json!({"k": 19, "ref": "GRCh38", "opts": {"x": true}}),
        ))
        .unwrap();
        let b = ProvParametersRunFacet::new(params(
            json!({"opts": {"x": true}, "ref": "GRCh38", "k": 19.0}),
        ))
        .unwrap();
        assert_eq!(a.sha256, b.sha256);
        let exec = a.execution_parameters().unwrap();
        let pairs: Vec<(&str, &str)> = exec
            .parameters
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_deref().unwrap()))
            .collect();
        assert_eq!(
            pairs,
            [("k", "19"), ("opts", "{\"x\":true}"), ("ref", "GRCh38")]
        );
    }

    #[test]
    fn checksums_are_one_per_algorithm_in_algorithm_order() {
        let mut sums = Checksums::of(SHA256, "aa");
        assert_eq!(sums.insert(MD5, "bb"), None);
        assert_eq!(sums.insert("blake3", "cc"), None);
        // Sent again: replaced, not added.
        assert_eq!(sums.insert(SHA256, "dd").as_deref(), Some("aa"));
        assert_eq!(sums.len(), 3);
        let listed: Vec<_> = sums.iter().collect();
        assert_eq!(listed, [("blake3", "cc"), ("md5", "bb"), ("sha-256", "dd")]);
        assert_eq!(sums.get(MD5), Some("bb"));
        assert_eq!(sums.get("sha-1"), None);
        assert_eq!(
            serde_json::to_string(&sums).unwrap(),
            r#"{"blake3":"cc","md5":"bb","sha-256":"dd"}"#
        );
        assert_eq!(sums.remove("blake3").as_deref(), Some("cc"));
        assert_eq!(sums.remove("blake3"), None);

        // Read from JSON in any order; a repeated algorithm keeps its last
        // digest, as serde_json's maps do; anything but strings is an error.
        let read: Checksums =
            serde_json::from_str(r#"{"sha-256":"1","md5":"2","sha-256":"3"}"#).unwrap();
        assert_eq!(read, [(MD5, "2"), (SHA256, "3")].into());
        assert!(serde_json::from_str::<Checksums>(r#"{"md5":7}"#).is_err());
        assert!(serde_json::from_str::<Checksums>(r#"["md5"]"#).is_err());
    }

    #[test]
    fn checksum_gives_the_standard_version() {
        let c =
            ProvChecksumDatasetFacet::file(3, "ab".repeat(32)).with_checksum(MD5, "cd".repeat(16));
        assert_eq!(
            c.version_facet().unwrap().dataset_version,
            format!("sha256:{}", "ab".repeat(32))
        );
        let value = serde_json::to_value(&c).unwrap();
        assert_eq!(value["checksums"]["md5"], "cd".repeat(16));
        assert_eq!(value["kind"], "file");
    }

    #[test]
    fn fingerprint_changes_with_each_part_and_only_then() {
        let command = vec!["bwa".to_owned(), "mem".to_owned(), "ref.fa".to_owned()];
        let p = params(json!({"t": 4}));
        let inputs = vec![
            format!("sha256:{}", "1".repeat(64)),
            format!("sha256:{}", "2".repeat(64)),
        ];
        let base = Fingerprint {
            job: "align",
            command: &command,
            container: Some(DIGEST),
            parameters: &p,
            inputs: &inputs,
        };
        let reference = base.sha256().unwrap();

        let reversed: Vec<String> = inputs.iter().rev().cloned().collect();
        let p_spelled = params(json!({"t": 4.0}));
        let same = [
            Fingerprint {
                inputs: &reversed,
                ..base.clone()
            },
            Fingerprint {
                parameters: &p_spelled,
                ..base.clone()
            },
        ];
        for f in same {
            assert_eq!(f.sha256().unwrap(), reference);
        }

        let other_command = vec![
            "bwa".to_owned(),
            "mem".to_owned(),
            "-M".to_owned(),
            "ref.fa".to_owned(),
        ];
        let other_params = params(json!({"t": 8}));
        let other_inputs = vec![
            format!("sha256:{}", "1".repeat(64)),
            format!("sha256:{}", "3".repeat(64)),
        ];
        let other_digest = DIGEST.replace('5', "6");
        let different = [
            Fingerprint {
                job: "align2",
                ..base.clone()
            },
            Fingerprint {
                command: &other_command,
                ..base.clone()
            },
            Fingerprint {
                container: Some(&other_digest),
                ..base.clone()
            },
            Fingerprint {
                container: None,
                ..base.clone()
            },
            Fingerprint {
                parameters: &other_params,
                ..base.clone()
            },
            Fingerprint {
                inputs: &other_inputs,
                ..base.clone()
            },
        ];
        for f in different {
            assert_ne!(f.sha256().unwrap(), reference, "{f:?}");
        }
    }
}
