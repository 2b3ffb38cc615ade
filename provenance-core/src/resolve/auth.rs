//! Registry credentials and challenges: `~/.docker/config.json` (`auths.<registry>.auth`,
//! base64 of `user:password`), the `WWW-Authenticate` header a registry
//! answers 401 with, and the base64 both need.
//!
//! Credentials never appear in `Debug` output or error messages.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

impl Credentials {
    /// The value of an `Authorization: Basic` header.
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            base64_encode(format!("{}:{}", self.username, self.password).as_bytes())
        )
    }
}

/// A Docker configuration file that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DockerConfigError {
    /// The file exists but cannot be read.
    #[error("read the docker configuration {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not the JSON Docker writes.
    #[error("read the docker configuration {path}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the credentials themselves).
        reason: String,
    },
}

/// The credentials of a Docker configuration file, by registry host.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    auths: BTreeMap<String, Credentials>,
}

impl DockerConfig {
    /// Where Docker keeps it: `$DOCKER_CONFIG/config.json`, else
    /// `$HOME/.docker/config.json`.
    pub fn default_path(docker_config: Option<&Path>, home: Option<&Path>) -> Option<PathBuf> {
        docker_config
            .map(|d| d.join("config.json"))
            .or_else(|| home.map(|h| h.join(".docker/config.json")))
    }

    /// Reads `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self, DockerConfigError> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(DockerConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let malformed = |reason: String| DockerConfigError::Malformed {
            path: path.to_owned(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| malformed(format!("not JSON ({e})")))?;
        let mut auths = BTreeMap::new();
        let Some(entries) = value.get("auths") else {
            return Ok(Self::default());
        };
        let entries = entries
            .as_object()
            .ok_or_else(|| malformed("`auths` is not an object".into()))?;
        for (key, entry) in entries {
            let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) else {
                continue; // a credential helper's entry, or an empty one
            };
            if auth.is_empty() {
                continue;
            }
            let decoded = base64_decode(auth)
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| malformed(format!("auths.{key}.auth is not base64 text")))?;
            let (username, password) = decoded.split_once(':').ok_or_else(|| {
                malformed(format!("auths.{key}.auth is not base64 of user:password"))
            })?;
            auths.insert(
                registry_host(key),
                Credentials {
                    username: username.to_owned(),
                    password: password.to_owned(),
                },
            );
        }
        Ok(DockerConfig { auths })
    }

    /// The configuration holding just these credentials for `registry`.
    pub fn with(mut self, registry: &str, credentials: Credentials) -> Self {
        self.auths.insert(registry_host(registry), credentials);
        self
    }

    /// The credentials for `registry` (`quay.io`, `localhost:5000`, `docker.io`).
    pub fn credentials_for(&self, registry: &str) -> Option<&Credentials> {
        let host = registry_host(registry);
        self.auths.get(&host)
    }
}

/// The host a Docker `auths` key or a registry names, with Docker Hub's many
/// names folded into `docker.io`: `https://index.docker.io/v1/` -> `docker.io`.
fn registry_host(key: &str) -> String {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = without_scheme.split('/').next().unwrap_or(without_scheme);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_owned()
        }
        other => other.to_ascii_lowercase(),
    }
}

/// One challenge of a `WWW-Authenticate` header: `Bearer realm="...",service="..."`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lowercase (`bearer`, `basic`).
    pub scheme: String,
    /// The parameters, names lowercase.
    pub params: BTreeMap<String, String>,
}

/// Parses a `WWW-Authenticate` value holding one challenge (what registries
/// send). Quoted values may hold commas and escaped quotes.
pub fn parse_challenge(header: &str) -> Result<Challenge, String> {
    let header = header.trim();
    let (scheme, mut rest) = match header.find(char::is_whitespace) {
        Some(i) => (&header[..i], header[i..].trim_start()),
        None => (header, ""),
    };
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(format!("no authentication scheme in {header:?}"));
    }
    let mut params = BTreeMap::new();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else {
            return Err(format!("a parameter without '=' in {header:?}"));
        };
        let name = rest[..eq].trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err(format!("a parameter without a name in {header:?}"));
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, escaped)) => out.push(escaped),
                        None => break,
                    },
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => out.push(c),
                }
            }
            let Some(end) = end else {
                return Err(format!("an unclosed quote in {header:?}"));
            };
            value = out;
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        params.insert(name, value);
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
        } else if !rest.is_empty() {
            return Err(format!("expected ',' between parameters in {header:?}"));
        }
    }
    Ok(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(BASE64[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64, padding optional; `None` for anything else.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in text.bytes() {
        let v = BASE64.iter().position(|&c| c == b)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A lone trailing character cannot encode a byte.
    if text.len() % 4 == 1 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(header: &str, scheme: &str, params: &[(&str, &str)]) {
        let c = parse_challenge(header).unwrap_or_else(|e| panic!("{header}: {e}"));
        assert_eq!(c.scheme, scheme, "{header}");
        let expected: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(c.params, expected, "{header}");
    }

    #[test]
    fn challenges_of_real_registries() {
        check(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull""#,
            "bearer",
            &[
                ("realm", "https://auth.docker.io/token"),
                ("service", "registry.docker.io"),
                ("scope", "repository:library/ubuntu:pull"),
            ],
        );
        check(
            r#"Basic realm="basic-realm""#,
            "basic",
            &[("realm", "basic-realm")],
        );
        check(
            r#"bearer Realm = "a,b\"c" , service=plain"#,
            "bearer",
            &[("realm", "a,b\"c"), ("service", "plain")],
        );
        check("Basic", "basic", &[]);
    }

    #[test]
    fn bad_challenges_say_why() {
        for (header, needle) in [
            ("", "no authentication scheme"),
            (r#"Bearer realm="x"#, "unclosed quote"),
            ("Bearer realm", "without '='"),
            (r#"Bearer realm="a" service="b""#, "expected ','"),
        ] {
            let err = parse_challenge(header).unwrap_err();
            assert!(err.contains(needle), "{header}: {err}");
        }
    }

    #[test]
    fn base64_round_trips() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("user:p@ss:word", "dXNlcjpwQHNzOndvcmQ="),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(base64_decode("Zm9v!"), None);
        assert_eq!(base64_decode("Zm9vY"), None);
    }

    #[test]
    fn docker_config_credentials_by_registry() {
        let dir = std::env::temp_dir().join(format!("prov-docker-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        std::fs::write(
            &path,
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
                "quay.io": {"auth": "cXVheTpwdw=="},
                "ghcr.io": {},
                "127.0.0.1:5000": {"auth": "YTpiOmM="}
            }, "credsStore": "desktop"}"#,
        )
        .unwrap();
        let config = DockerConfig::load(&path).unwrap();
        let hub = config.credentials_for("docker.io").unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("hub", "secret")
        );
        assert_eq!(config.credentials_for("quay.io").unwrap().username, "quay");
        assert_eq!(
            config.credentials_for("127.0.0.1:5000").unwrap().password,
            "b:c"
        );
        assert!(config.credentials_for("ghcr.io").is_none());
        assert!(
            !format!("{hub:?}").contains("secret"),
            "Debug hides the password"
        );

        std::fs::write(&path, r#"{"auths": {"quay.io": {"auth": "not base64!"}}}"#).unwrap();
        let err = DockerConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("auths.quay.io.auth is not base64"), "{err}");
        assert!(err.contains("config.json"), "{err}");
        assert!(DockerConfig::load(&dir.join("missing.json")).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
