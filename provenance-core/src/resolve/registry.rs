//! Resolving a tag to its manifest digest through the OCI distribution API:
//! `HEAD /v2/<name>/manifests/<tag>` with the Accept headers of OCI and Docker
//! manifests and indexes. A digest not seen (and checked) before is fetched
//! with `GET /v2/<name>/manifests/<digest>` and its bytes hashed, so that the
//! `Docker-Content-Digest` header is checked against them: a digest is right
//! or absent. `HEAD` does not count against registries' pull limits, so a tag
//! that has not moved costs no pull.
//!
//! A 401 answer's `WWW-Authenticate` challenge is followed: `Bearer` (the
//! anonymous or credentialed token flow of Docker Hub, quay.io and ghcr.io) or
//! `Basic`, with credentials from the Docker configuration when it has some.
//! Registries are asked over HTTPS (the system's roots, plus any CA files
//! configured); plain HTTP is tried after HTTPS only for loopback registries
//! and ones configured as insecure, as Docker does.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::auth::{Challenge, DockerConfig, parse_challenge};
use crate::oci::ImageReference;

/// The media types asked for: an image index or manifest, OCI or Docker.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest read (the distribution spec's limit is 4 MiB).
const MAX_MANIFEST: u64 = 4 << 20;
/// The largest token answer read.
const MAX_TOKEN: u64 = 1 << 20;

/// Why a registry gave no digest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No answer: refused, timed out, or the name did not resolve.
    #[error("reach {url}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with a server error.
    #[error("ask {url}: the registry answered {status}")]
    ServerError {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The registry refused or did not know the request.
    #[error("ask {url}: the registry answered {status}: {reason}")]
    Refused {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What it means.
        reason: String,
    },
    /// The registry would need plain HTTP or TLS where neither is allowed.
    #[error("reach registry {registry}: {reason}")]
    Transport {
        /// The registry.
        registry: String,
        /// Why.
        reason: String,
    },
    /// Authentication failed or could not be attempted.
    #[error("authenticate to {url}: {reason}")]
    Auth {
        /// The URL asked (the manifest or the token realm).
        url: String,
        /// Why.
        reason: String,
    },
    /// The `Docker-Content-Digest` header does not match the manifest's bytes.
    #[error(
        "check the manifest from {url}: the registry says its digest is {claimed} but its bytes hash to {computed}; refusing it"
    )]
    DigestMismatch {
        /// The URL asked.
        url: String,
        /// The digest the registry claimed.
        claimed: String,
        /// The sha-256 of the body received.
        computed: String,
    },
    /// The answer is not a manifest.
    #[error("read the answer of {url}: {reason}")]
    BadAnswer {
        /// The URL asked.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

impl RegistryError {
    /// Whether the registry could not be reached (no answer, or a server
    /// error): then an earlier answer may be served from the cache.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            RegistryError::Unreachable { .. } | RegistryError::ServerError { .. }
        )
    }
}

/// Settings of the registry client.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Registries (`host:port`) that may be reached over plain HTTP besides
    /// loopback ones.
    pub insecure: Vec<String>,
    /// Timeout of each request.
    pub timeout: Duration,
    /// Timeout of connecting.
    pub connect_timeout: Duration,
    /// Credentials, by registry.
    pub credentials: DockerConfig,
    /// PEM files of certificate authorities to trust besides the system's
    /// (an in-house registry's CA).
    pub ca_files: Vec<PathBuf>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: Vec::new(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            credentials: DockerConfig::default(),
            ca_files: Vec::new(),
        }
    }
}

/// A client of the distribution API.
pub struct RegistryClient {
    options: RegistryOptions,
    client: reqwest::blocking::Client,
}

impl RegistryClient {
    /// A client with `options`.
    pub fn new(options: RegistryOptions) -> Result<Self, RegistryError> {
        let mut roots = Vec::new();
        for file in &options.ca_files {
            let failed = |reason: String| RegistryError::Transport {
                registry: "any".into(),
                reason: format!("read the CA file {}: {reason}", file.display()),
            };
            let pem = std::fs::read(file).map_err(|e| failed(e.to_string()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| failed(format!("not PEM certificates ({e})")))?;
            if certs.is_empty() {
                return Err(failed("no certificate in it".into()));
            }
            roots.extend(certs);
        }
        let client = reqwest::blocking::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("prov/", env!("CARGO_PKG_VERSION")))
            .tls_certs_merge(roots)
            .build()
            .map_err(|e| RegistryError::Transport {
                registry: "any".into(),
                reason: format!("start the HTTP client: {e}"),
            })?;
        Ok(RegistryClient { options, client })
    }

    /// The digest of the manifest (or index) that `reference`'s tag names
    /// now, checked against the bytes the registry sent.
    pub fn resolve_tag(&self, reference: &ImageReference) -> Result<String, RegistryError> {
        self.resolve_tag_knowing(reference, None)
    }

    /// As [`Self::resolve_tag`]; `known` is a digest that this tag named
    /// before and that was checked then. The tag is asked with `HEAD` (which
    /// registries do not count against pull limits); only a digest other than
    /// `known` is fetched with `GET` and checked against its bytes.
    pub fn resolve_tag_knowing(
        &self,
        reference: &ImageReference,
        known: Option<&str>,
    ) -> Result<String, RegistryError> {
        let Some(tag) = reference.tag_or_latest() else {
            return Err(RegistryError::BadAnswer {
                url: reference.to_string(),
                reason: "the reference has no tag to resolve".into(),
            });
        };
        // HTTPS first; plain HTTP only where allowed, and only when HTTPS
        // got no answer at all.
        let mut answered = None;
        let mut failed = None;
        for base in self.base_urls(&reference.registry) {
            let url = format!("{base}/v2/{}/manifests/", reference.repository);
            match self.send(reqwest::Method::HEAD, &format!("{url}{tag}"), None) {
                Ok(response) => {
                    answered = Some((url, response));
                    break;
                }
                Err(e) => failed = Some(e),
            }
        }
        let Some((manifests, response)) = answered else {
            return Err(failed.unwrap_or_else(|| RegistryError::Transport {
                registry: reference.registry.clone(),
                reason: "no URL to ask".into(),
            }));
        };
        match (
            self.answer(reference, &manifests, tag, response, known),
            failed,
        ) {
            // A plain-HTTP refusal after HTTPS failed: the HTTPS error is
            // likely the one that matters (an untrusted certificate, say).
            (
                Err(RegistryError::Refused {
                    url,
                    status,
                    reason,
                }),
                Some(https),
            ) => Err(RegistryError::Refused {
                url,
                status,
                reason: format!(
                    "{reason} (asked over plain HTTP after HTTPS failed: {})",
                    super::error_chain(&https)
                ),
            }),
            (result, _) => result,
        }
    }

    /// Follows an authentication challenge in the `HEAD` `response` if there
    /// is one, then learns the digest: from the header when it is `known`,
    /// otherwise from the manifest's bytes.
    fn answer(
        &self,
        reference: &ImageReference,
        manifests: &str,
        tag: &str,
        response: reqwest::blocking::Response,
        known: Option<&str>,
    ) -> Result<String, RegistryError> {
        let url = format!("{manifests}{tag}");
        let mut authorization = None;
        let response = if response.status().as_u16() == 401 {
            let header = response
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let Some(header) = header else {
                return Err(RegistryError::Auth {
                    url,
                    reason: "the registry answered 401 without a WWW-Authenticate challenge".into(),
                });
            };
            let challenge = parse_challenge(&header).map_err(|reason| RegistryError::Auth {
                url: url.clone(),
                reason: format!("unreadable WWW-Authenticate challenge: {reason}"),
            })?;
            let answer = self.answer_challenge(reference, &url, &challenge)?;
            let again = self.send(reqwest::Method::HEAD, &url, Some(&answer))?;
            if again.status().as_u16() == 401 {
                return Err(RegistryError::Auth {
                    url,
                    reason: format!(
                        "the registry refused the {} credentials (401)",
                        challenge.scheme
                    ),
                });
            }
            authorization = Some(answer);
            again
        } else {
            response
        };
        let authorization = authorization.as_deref();
        let status = response.status().as_u16();
        // Some registries do not answer HEAD: then GET the tag.
        if matches!(status, 405 | 501) {
            let response = self.send(reqwest::Method::GET, &url, authorization)?;
            return read_manifest(&url, response, None);
        }
        if let Some(e) = status_error(&url, status) {
            return Err(e);
        }
        let claimed = match response.headers().get("docker-content-digest") {
            None => None,
            Some(v) => {
                let text = v.to_str().ok().filter(|d| is_sha256_digest(d));
                Some(text.ok_or_else(|| RegistryError::BadAnswer {
                    url: url.clone(),
                    reason: format!(
                        "the Docker-Content-Digest header {v:?} is not sha256:<64 hex digits>"
                    ),
                })?)
            }
        };
        match claimed {
            Some(digest) if Some(digest) == known => Ok(digest.to_owned()),
            // A new digest: fetch the manifest it names and check its bytes.
            Some(digest) => {
                let by_digest = format!("{manifests}{digest}");
                let response = self.send(reqwest::Method::GET, &by_digest, authorization)?;
                read_manifest(&by_digest, response, Some(digest))
            }
            // No digest in the header: the digest is that of the tag's bytes.
            None => {
                let response = self.send(reqwest::Method::GET, &url, authorization)?;
                read_manifest(&url, response, None)
            }
        }
    }

    fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<reqwest::blocking::Response, RegistryError> {
        let mut request = self
            .client
            .request(method, url)
            .header(reqwest::header::ACCEPT, MANIFEST_ACCEPT);
        if let Some(a) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, a);
        }
        request.send().map_err(|source| RegistryError::Unreachable {
            url: url.to_owned(),
            source,
        })
    }

    /// The `Authorization` value that answers `challenge`.
    fn answer_challenge(
        &self,
        reference: &ImageReference,
        url: &str,
        challenge: &Challenge,
    ) -> Result<String, RegistryError> {
        let credentials = self
            .options
            .credentials
            .credentials_for(&reference.registry);
        match challenge.scheme.as_str() {
            "basic" => match credentials {
                Some(c) => Ok(c.basic_header()),
                None => Err(RegistryError::Auth {
                    url: url.to_owned(),
                    reason: format!(
                        "the registry asks for a user name and password, and the docker configuration has none for {}",
                        reference.registry
                    ),
                }),
            },
            "bearer" => {
                let Some(realm) = challenge.params.get("realm") else {
                    return Err(RegistryError::Auth {
                        url: url.to_owned(),
                        reason: "the Bearer challenge names no realm".into(),
                    });
                };
                let realm_url = reqwest::Url::parse(realm).map_err(|e| RegistryError::Auth {
                    url: url.to_owned(),
                    reason: format!("the token realm {realm:?} is not a URL ({e})"),
                })?;
                self.check_realm(&realm_url, url)?;
                let scope = challenge
                    .params
                    .get("scope")
                    .cloned()
                    .unwrap_or_else(|| format!("repository:{}:pull", reference.repository));
                let mut token_url = realm_url.clone();
                {
                    let mut query = token_url.query_pairs_mut();
                    if let Some(service) = challenge.params.get("service") {
                        query.append_pair("service", service);
                    }
                    query.append_pair("scope", &scope);
                }
                let mut request = self.client.get(token_url);
                if let Some(c) = credentials {
                    request = request.header(reqwest::header::AUTHORIZATION, c.basic_header());
                }
                let realm_text = realm_url.as_str().to_owned();
                let response = request
                    .send()
                    .map_err(|source| RegistryError::Unreachable {
                        url: realm_text.clone(),
                        source,
                    })?;
                let status = response.status().as_u16();
                if status >= 500 {
                    return Err(RegistryError::ServerError {
                        url: realm_text,
                        status,
                    });
                }
                if status != 200 {
                    let who = if credentials.is_some() {
                        "with the docker configuration's credentials"
                    } else {
                        "anonymously (the docker configuration has no credentials for this registry)"
                    };
                    return Err(RegistryError::Auth {
                        url: realm_text,
                        reason: format!("the token server refused a token {who}: {status}"),
                    });
                }
                let body =
                    read_limited(response, MAX_TOKEN).map_err(|reason| RegistryError::Auth {
                        url: realm_text.clone(),
                        reason,
                    })?;
                let answer: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| RegistryError::Auth {
                        url: realm_text.clone(),
                        reason: format!("the token answer is not JSON ({e})"),
                    })?;
                let token = answer
                    .get("token")
                    .or_else(|| answer.get("access_token"))
                    .and_then(|t| t.as_str())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| RegistryError::Auth {
                        url: realm_text.clone(),
                        reason: "the token answer has no token".into(),
                    })?;
                Ok(format!("Bearer {token}"))
            }
            other => Err(RegistryError::Auth {
                url: url.to_owned(),
                reason: format!("the authentication scheme {other:?} is not supported"),
            }),
        }
    }

    /// A token realm over plain HTTP must be loopback or configured insecure,
    /// like a registry.
    fn check_realm(&self, realm: &reqwest::Url, url: &str) -> Result<(), RegistryError> {
        let host = match (realm.host_str(), realm.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => {
                return Err(RegistryError::Auth {
                    url: url.to_owned(),
                    reason: format!("the token realm {realm} has no host"),
                });
            }
        };
        match realm.scheme() {
            "http" if self.plain_http_allowed(&host) => Ok(()),
            "http" => Err(RegistryError::Auth {
                url: url.to_owned(),
                reason: format!(
                    "the token realm {realm} is plain HTTP on a host that is neither loopback nor configured insecure"
                ),
            }),
            "https" => Ok(()),
            other => Err(RegistryError::Auth {
                url: url.to_owned(),
                reason: format!("the token realm {realm} has the scheme {other:?}"),
            }),
        }
    }

    fn plain_http_allowed(&self, registry: &str) -> bool {
        is_loopback(registry) || self.options.insecure.iter().any(|i| i == registry)
    }

    /// `https://host`, then `http://host` for loopback and insecure
    /// registries. Docker Hub's API lives at `registry-1.docker.io`.
    fn base_urls(&self, registry: &str) -> Vec<String> {
        let host = if registry == crate::oci::DEFAULT_REGISTRY {
            "registry-1.docker.io"
        } else {
            registry
        };
        let mut urls = vec![format!("https://{host}")];
        if self.plain_http_allowed(registry) {
            urls.push(format!("http://{host}"));
        }
        urls
    }
}

/// The error a manifest answer's `status` means, if any.
fn status_error(url: &str, status: u16) -> Option<RegistryError> {
    let refused = |reason: &str| {
        Some(RegistryError::Refused {
            url: url.to_owned(),
            status,
            reason: reason.into(),
        })
    };
    match status {
        200 => None,
        500..=599 => Some(RegistryError::ServerError {
            url: url.to_owned(),
            status,
        }),
        404 => refused("no such repository, tag or manifest"),
        403 => refused("access denied"),
        _ => refused("unexpected status for a manifest"),
    }
}

/// Whether `text` is `sha256:<64 lowercase hex>`.
fn is_sha256_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Reads a manifest `GET` answer: its sha-256 must match the
/// `Docker-Content-Digest` header, if any, and `expected`, if any.
fn read_manifest(
    url: &str,
    response: reqwest::blocking::Response,
    expected: Option<&str>,
) -> Result<String, RegistryError> {
    if let Some(e) = status_error(url, response.status().as_u16()) {
        return Err(e);
    }
    let claimed = response
        .headers()
        .get("docker-content-digest")
        .map(|v| v.to_str().map(str::to_owned));
    let body = read_limited(response, MAX_MANIFEST).map_err(|reason| RegistryError::BadAnswer {
        url: url.to_owned(),
        reason,
    })?;
    let computed = format!("sha256:{}", crate::hex(&Sha256::digest(&body)));
    let claimed = match claimed {
        None => None,
        Some(Err(_)) => {
            return Err(RegistryError::BadAnswer {
                url: url.to_owned(),
                reason: "the Docker-Content-Digest header is not text".into(),
            });
        }
        Some(Ok(claimed)) => Some(claimed),
    };
    for claim in [claimed.as_deref(), expected].into_iter().flatten() {
        if claim != computed {
            return Err(RegistryError::DigestMismatch {
                url: url.to_owned(),
                claimed: claim.to_owned(),
                computed,
            });
        }
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| RegistryError::BadAnswer {
            url: url.to_owned(),
            reason: format!("the manifest is not JSON ({e})"),
        })?;
    if manifest.get("schemaVersion").and_then(|v| v.as_u64()) != Some(2) {
        return Err(RegistryError::BadAnswer {
            url: url.to_owned(),
            reason: "the manifest has no schemaVersion 2 (only OCI and Docker v2 manifests and indexes are read)".into(),
        });
    }
    Ok(computed)
}

/// Whether `registry` (`host[:port]`) is a loopback address.
pub fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry.split(':').next().unwrap_or(registry)
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Reads at most `limit` bytes of `response`; more is an error.
fn read_limited(response: reqwest::blocking::Response, limit: u64) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    response
        .take(limit + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("read the body: {e}"))?;
    if body.len() as u64 > limit {
        return Err(format!("the body is larger than {limit} bytes"));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries() {
        for yes in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "quay.io",
            "10.0.0.1:5000",
            "[2001:db8::1]:5000",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
    }

    #[test]
    fn https_first_and_plain_http_only_where_allowed() {
        let client = RegistryClient::new(RegistryOptions {
            insecure: vec!["registry.lab:5000".into()],
            ..RegistryOptions::default()
        })
        .unwrap();
        assert_eq!(
            client.base_urls("registry.lab:5000"),
            ["https://registry.lab:5000", "http://registry.lab:5000"]
        );
        assert_eq!(
            client.base_urls("127.0.0.1:1"),
            ["https://127.0.0.1:1", "http://127.0.0.1:1"]
        );
        assert_eq!(client.base_urls("quay.io"), ["https://quay.io"]);
        assert_eq!(
            client.base_urls("docker.io"),
            ["https://registry-1.docker.io"]
        );
    }

    #[test]
    fn a_bad_ca_file_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("prov-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ca.pem");
        std::fs::write(&file, "not a certificate").unwrap();
        let options = |f: &std::path::Path| RegistryOptions {
            ca_files: vec![f.to_path_buf()],
            ..RegistryOptions::default()
        };
        let Err(err) = RegistryClient::new(options(&file)) else {
            panic!("a CA file without certificates was accepted");
        };
        assert!(err.to_string().contains("ca.pem"), "{err}");
        let Err(err) = RegistryClient::new(options(&dir.join("missing.pem"))) else {
            panic!("a missing CA file was accepted");
        };
        assert!(err.to_string().contains("missing.pem"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
