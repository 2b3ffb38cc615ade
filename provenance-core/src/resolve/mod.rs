//! Container identity: what digest an image reference names, asked of the
//! sources that know, in this order:
//!
//! 1. the reference itself (`image@sha256:...`);
//! 2. the image file this process runs inside (Apptainer/Singularity's
//!    `APPTAINER_CONTAINER`/`SINGULARITY_CONTAINER`: the sha-256 of the SIF),
//!    and the AWS ECS/Batch task metadata (`ImageID`);
//! 3. the registry (the distribution API, `http` feature), always asked when it
//!    answers, so that a retag is seen at once; its answer is remembered (and
//!    a tag that still names the remembered digest is not fetched again);
//! 4. the local runtime (`docker`/`podman image inspect`, `RepoDigests`);
//! 5. the remembered answer ([`TagCache`]), only when the registry could not be
//!    reached, recorded as such (`digestSource: cache` with the time of that
//!    answer).
//!
//! When none knows, the image stays unpinned and the record says why.

pub mod auth;
mod cache;
pub mod local;
#[cfg(feature = "http")]
pub mod registry;

use std::path::{Path, PathBuf};
use std::time::Duration;

#[cfg(feature = "http")]
use chrono::{SecondsFormat, Utc};

pub use cache::{CachedDigest, TAG_CACHE_FILE, TagCache, TagCacheError};

use crate::facets::{ContainerRuntime, DigestSource, ProvContainerRunFacet};
use crate::oci::ImageReference;
#[cfg(feature = "http")]
use auth::DockerConfig;
use auth::DockerConfigError;

/// The variable listing registries (`host:port`, comma-separated) that may be
/// reached over plain HTTP besides loopback ones.
pub const INSECURE_REGISTRIES_VAR: &str = "PROV_INSECURE_REGISTRIES";

/// The variable naming PEM files (`:`-separated) of certificate authorities
/// to trust for registries besides the system's.
pub const REGISTRY_CA_VAR: &str = "PROV_REGISTRY_CA";

/// What is known of an image's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// A digest, and where it came from.
    Pinned {
        /// `sha256:<hex>`.
        digest: String,
        /// Its source.
        source: DigestSource,
        /// When a registry gave it (sources `registry` and `cache`).
        resolved_at: Option<String>,
        /// Why a fallback was used (the registry's error when the cache
        /// served).
        note: Option<String>,
    },
    /// No digest; why not.
    Unpinned {
        /// Each source's answer, `; `-separated.
        reason: String,
    },
}

impl Resolution {
    /// `facet` with this resolution recorded.
    pub fn apply(self, facet: ProvContainerRunFacet) -> ProvContainerRunFacet {
        match self {
            Resolution::Pinned {
                digest,
                source,
                resolved_at,
                ..
            } => {
                let facet = facet.with_digest(digest, source);
                match resolved_at {
                    Some(t) => facet.resolved_at(t),
                    None => facet,
                }
            }
            Resolution::Unpinned { reason } => facet.unpinned_because(reason),
        }
    }
}

/// The resolver could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The Docker configuration (credentials) is unreadable.
    #[error("load registry credentials")]
    DockerConfig(#[from] DockerConfigError),
    /// The HTTP client could not start.
    #[cfg(feature = "http")]
    #[error("start the registry client")]
    Registry(#[from] registry::RegistryError),
}

/// Settings of a [`Resolver`].
#[derive(Clone)]
pub struct ResolverOptions {
    /// How the registry is asked.
    #[cfg(feature = "http")]
    pub registry: registry::RegistryOptions,
    /// Where answers are remembered, if anywhere.
    pub cache: Option<TagCache>,
    /// The environment to look for a container's image file or task metadata
    /// in (this process's, usually).
    pub environment: Vec<(String, String)>,
    /// Ask `docker`/`podman` for a local image's digest.
    pub ask_runtime: bool,
    /// The longest wait for a runtime's answer.
    pub runtime_timeout: Duration,
}

impl std::fmt::Debug for ResolverOptions {
    /// The environment may hold secrets: only its size is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("ResolverOptions");
        #[cfg(feature = "http")]
        d.field("registry", &self.registry);
        d.field("cache", &self.cache)
            .field(
                "environment",
                &format_args!("<{} variables>", self.environment.len()),
            )
            .field("ask_runtime", &self.ask_runtime)
            .field("runtime_timeout", &self.runtime_timeout)
            .finish()
    }
}

impl Default for ResolverOptions {
    fn default() -> Self {
        ResolverOptions {
            #[cfg(feature = "http")]
            registry: registry::RegistryOptions::default(),
            cache: None,
            environment: Vec::new(),
            ask_runtime: true,
            runtime_timeout: Duration::from_secs(5),
        }
    }
}

impl ResolverOptions {
    /// The options a user's environment gives: credentials from
    /// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, insecure
    /// registries from `PROV_INSECURE_REGISTRIES`, the cache under
    /// `PROV_CACHE_DIR` or `XDG_CACHE_HOME/prov` or `~/.cache/prov`, extra
    /// certificate authorities from `PROV_REGISTRY_CA`. An
    /// unreadable Docker configuration is returned beside options without
    /// credentials, so that the caller can warn and go on.
    pub fn from_env(env: &[(String, String)]) -> (Self, Option<ResolveError>) {
        let var = |name: &str| {
            env.iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| PathBuf::from(v))
        };
        let home = var("HOME");
        let cache = TagCache::default_path(
            var("PROV_CACHE_DIR").as_deref(),
            var("XDG_CACHE_HOME").as_deref(),
            home.as_deref(),
        )
        .map(TagCache::new);
        #[cfg_attr(not(feature = "http"), allow(unused_mut))]
        let mut problem = None;
        #[cfg(feature = "http")]
        let registry = {
            let path = DockerConfig::default_path(var("DOCKER_CONFIG").as_deref(), home.as_deref());
            let credentials = match path.map(|p| DockerConfig::load(&p)) {
                Some(Ok(config)) => config,
                Some(Err(e)) => {
                    problem = Some(ResolveError::DockerConfig(e));
                    DockerConfig::default()
                }
                None => DockerConfig::default(),
            };
            let insecure = env
                .iter()
                .find(|(k, _)| k == INSECURE_REGISTRIES_VAR)
                .map(|(_, v)| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let ca_files = var(REGISTRY_CA_VAR)
                .map(|v| {
                    v.to_string_lossy()
                        .split(':')
                        .filter(|s| !s.is_empty())
                        .map(PathBuf::from)
                        .collect()
                })
                .unwrap_or_default();
            registry::RegistryOptions {
                insecure,
                credentials,
                ca_files,
                ..registry::RegistryOptions::default()
            }
        };
        let options = ResolverOptions {
            #[cfg(feature = "http")]
            registry,
            cache,
            environment: env.to_vec(),
            ..ResolverOptions::default()
        };
        (options, problem)
    }
}

/// Learns image digests from the sources that know (see the module docs).
pub struct Resolver {
    options: ResolverOptions,
    #[cfg(feature = "http")]
    registry: registry::RegistryClient,
}

impl Resolver {
    /// A resolver with `options`.
    pub fn new(options: ResolverOptions) -> Result<Self, ResolveError> {
        Ok(Resolver {
            #[cfg(feature = "http")]
            registry: registry::RegistryClient::new(options.registry.clone())?,
            options,
        })
    }

    /// The registry's answer alone (no other source, no cache).
    #[cfg(feature = "http")]
    pub fn ask_registry(
        &self,
        reference: &ImageReference,
    ) -> Result<String, registry::RegistryError> {
        self.registry.resolve_tag(reference)
    }

    /// What digest `reference`, run by `runtime`, names. Never fails: what
    /// went wrong with each source is the reason of an unpinned answer.
    pub fn resolve(&self, reference: &ImageReference, runtime: ContainerRuntime) -> Resolution {
        if let Some(digest) = &reference.digest {
            return Resolution::Pinned {
                digest: digest.clone(),
                source: DigestSource::Given,
                resolved_at: None,
                note: None,
            };
        }
        let pinned = |digest: String, source: DigestSource| Resolution::Pinned {
            digest,
            source,
            resolved_at: None,
            note: None,
        };
        let mut reasons: Vec<String> = Vec::new();

        if let Some((var, path)) = local::container_image_file(&self.options.environment) {
            match local::file_digest(Path::new(&path)) {
                Ok(digest) => return pinned(digest, DigestSource::ImageFile),
                Err(e) => reasons.push(format!("image file ({var}): {e}")),
            }
        }

        #[cfg(feature = "http")]
        if let Some((_, uri)) = self
            .options
            .environment
            .iter()
            .find(|(k, v)| k == local::ECS_METADATA_VAR && !v.is_empty())
        {
            match self.ecs_image_id(uri, reference) {
                Ok(Some(digest)) => return pinned(digest, DigestSource::Runtime),
                Ok(None) => {}
                Err(e) => reasons.push(format!("ECS task metadata at {uri}: {e}")),
            }
        }

        let key = format!(
            "{}/{}:{}",
            reference.registry,
            reference.repository,
            reference.tag_or_latest().unwrap_or("latest")
        );
        #[cfg_attr(not(feature = "http"), allow(unused_mut))]
        let mut unreachable: Option<String> = None;
        // A digest the registry gave for this tag before was checked then:
        // if the tag still names it, it need not be fetched again.
        #[cfg(feature = "http")]
        let known = self
            .options
            .cache
            .as_ref()
            .and_then(|c| c.get(&key).ok().flatten())
            .map(|answer| answer.digest);
        #[cfg(feature = "http")]
        match self
            .registry
            .resolve_tag_knowing(reference, known.as_deref())
        {
            Ok(digest) => {
                let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
                let mut note = None;
                if let Some(cache) = &self.options.cache {
                    let answer = CachedDigest {
                        digest: digest.clone(),
                        resolved_at: now.clone(),
                    };
                    if let Err(e) = cache.put(&key, answer) {
                        note = Some(format!("not remembered: {}", error_chain(&e)));
                    }
                }
                return Resolution::Pinned {
                    digest,
                    source: DigestSource::Registry,
                    resolved_at: Some(now),
                    note,
                };
            }
            Err(e) => {
                let text = format!("registry: {}", error_chain(&e));
                if e.is_unreachable() {
                    unreachable = Some(text.clone());
                }
                reasons.push(text);
            }
        }
        #[cfg(not(feature = "http"))]
        reasons.push("registry: not asked (built without the http feature)".into());

        let program = match runtime {
            ContainerRuntime::Docker => Some("docker"),
            ContainerRuntime::Podman => Some("podman"),
            ContainerRuntime::Apptainer | ContainerRuntime::None => None,
        };
        if let Some(program) = program.filter(|_| self.options.ask_runtime) {
            let image = reference.to_string();
            match local::runtime_digest(program, reference, &image, self.options.runtime_timeout) {
                Ok(digest) => return pinned(digest, DigestSource::Runtime),
                Err(e) => reasons.push(format!("runtime: {e}")),
            }
        }

        if let Some(registry_error) = unreachable {
            match self.options.cache.as_ref().map(|c| c.get(&key)) {
                Some(Ok(Some(answer))) => {
                    return Resolution::Pinned {
                        digest: answer.digest,
                        source: DigestSource::Cache,
                        resolved_at: Some(answer.resolved_at),
                        note: Some(registry_error),
                    };
                }
                Some(Ok(None)) => reasons.push("cache: no earlier answer for this tag".into()),
                Some(Err(e)) => reasons.push(format!("cache: {}", error_chain(&e))),
                None => reasons.push("cache: none configured".into()),
            }
        }
        Resolution::Unpinned {
            reason: reasons.join("; "),
        }
    }

    #[cfg(feature = "http")]
    fn ecs_image_id(
        &self,
        uri: &str,
        reference: &ImageReference,
    ) -> Result<Option<String>, String> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        let response = client.get(uri).send().map_err(|e| error_chain(&e))?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status().as_u16()));
        }
        let text = response.text().map_err(|e| error_chain(&e))?;
        local::ecs_image_id(&text, reference)
    }
}

/// An error and its sources, `: `-separated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_given_digest_needs_no_source() {
        let d = "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";
        let r = ImageReference::parse(&format!("bwa@{d}")).unwrap();
        let resolver = Resolver::new(ResolverOptions::default()).unwrap();
        let Resolution::Pinned { digest, source, .. } =
            resolver.resolve(&r, ContainerRuntime::Docker)
        else {
            panic!("unpinned");
        };
        assert_eq!((digest.as_str(), source), (d, DigestSource::Given));
    }

    /// `127.0.0.1:<port>` with nothing listening.
    pub(crate) fn closed_loopback_registry() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("127.0.0.1:{port}")
    }

    #[test]
    fn an_unknowable_digest_says_why_for_each_source() {
        let registry = closed_loopback_registry();
        let r = ImageReference::parse(&format!("{registry}/biocontainers/bwa:0.7.17")).unwrap();
        let resolver = Resolver::new(ResolverOptions {
            ask_runtime: false,
            ..ResolverOptions::default()
        })
        .unwrap();
        let Resolution::Unpinned { reason } = resolver.resolve(&r, ContainerRuntime::Docker) else {
            panic!("pinned without a source");
        };
        assert!(reason.starts_with("registry: "), "{reason}");
        assert!(
            reason.contains(&format!(
                "reach http://{registry}/v2/biocontainers/bwa/manifests/0.7.17"
            )),
            "{reason}"
        );
        assert!(reason.contains("cache: none configured"), "{reason}");
        let facet = ProvContainerRunFacet::new(&r.to_string(), ContainerRuntime::Docker).unwrap();
        let facet = Resolution::Unpinned {
            reason: reason.clone(),
        }
        .apply(facet);
        assert_eq!(facet.unpinned_reason, Some(reason));
        assert!(!facet.pinned);
    }

    #[test]
    fn options_from_the_environment() {
        let env: Vec<(String, String)> = [
            ("HOME", "/nonexistent-home"),
            ("PROV_CACHE_DIR", "/c"),
            ("PROV_INSECURE_REGISTRIES", "lab:5000, other:80,"),
            ("PROV_REGISTRY_CA", "/a.pem:/b.pem"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (options, problem) = ResolverOptions::from_env(&env);
        assert!(problem.is_none());
        let shown = format!("{options:?}");
        assert!(
            shown.contains("<4 variables>") && !shown.contains("/a.pem:/b.pem"),
            "{shown}"
        );
        assert_eq!(
            options.cache.unwrap().path(),
            Path::new("/c").join(TAG_CACHE_FILE)
        );
        #[cfg(feature = "http")]
        {
            assert_eq!(options.registry.insecure, ["lab:5000", "other:80"]);
            let cas: Vec<_> = options
                .registry
                .ca_files
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            assert_eq!(cas, ["/a.pem", "/b.pem"]);
        }
    }
}
