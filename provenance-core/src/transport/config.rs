//! Transport configuration the way OpenLineage users already write it: the
//! `openlineage.yml` file and the `OPENLINEAGE_*` environment variables.
//!
//! The file is `$OPENLINEAGE_CONFIG`, else `./openlineage.yml`, else
//! `~/.openlineage/openlineage.yml`. `OPENLINEAGE__TRANSPORT__<KEY>` variables
//! (double underscores nest: `OPENLINEAGE__TRANSPORT__AUTH__API_KEY`) override
//! the file's `transport:` members; with no transport configured,
//! `OPENLINEAGE_URL` (with `OPENLINEAGE_ENDPOINT`, `OPENLINEAGE_API_KEY`) means
//! HTTP. `OPENLINEAGE_DISABLED=true` turns emission off. A configuration that
//! names something unknown or leaves out something required is an error,
//! never a silent fallback.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

/// A transport, as configured.
#[derive(Clone, PartialEq)]
pub enum TransportConfig {
    /// Emission is off.
    Disabled,
    /// Events to standard output.
    Console,
    /// Events appended to a file.
    File {
        /// `log_file_path`.
        path: PathBuf,
        /// `append` (default true).
        append: bool,
    },
    /// Events to an HTTP endpoint.
    Http {
        /// `url`.
        url: String,
        /// `endpoint` (default `api/v1/lineage`).
        endpoint: String,
        /// `auth.apiKey` (type `api_key`).
        api_key: Option<String>,
        /// `compression: gzip`.
        gzip: bool,
        /// `timeout` in seconds (default 5).
        timeout: Duration,
    },
    /// Several at once.
    Composite(Vec<TransportConfig>),
}

impl std::fmt::Debug for TransportConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportConfig::Disabled => write!(f, "Disabled"),
            TransportConfig::Console => write!(f, "Console"),
            TransportConfig::File { path, append } => {
                write!(f, "File({}, append={append})", path.display())
            }
            TransportConfig::Http {
                url,
                endpoint,
                api_key,
                gzip,
                timeout,
            } => write!(
                f,
                "Http({}/{endpoint}, api_key={}, gzip={gzip}, timeout={timeout:?})",
                crate::redact_url_password(url),
                if api_key.is_some() { "***" } else { "none" }
            ),
            TransportConfig::Composite(parts) => f.debug_list().entries(parts).finish(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("read OpenLineage configuration from {source_name}: {reason}")]
pub struct ConfigError {
    /// The file or variable at fault.
    pub source_name: String,
    /// What is wrong.
    pub reason: String,
}

/// Reads the configuration from the files and variables (`env` gives the
/// environment, `home` the user's home): `None` when nothing is configured.
pub fn load_config(
    env: &BTreeMap<String, String>,
    cwd: &Path,
    home: Option<&Path>,
) -> Result<Option<TransportConfig>, ConfigError> {
    if let Some(value) = env.get("OPENLINEAGE_DISABLED") {
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => return Ok(Some(TransportConfig::Disabled)),
            "false" | "0" | "no" | "off" | "" => {}
            _ => {
                return Err(ConfigError {
                    source_name: "OPENLINEAGE_DISABLED".into(),
                    reason: format!("{value:?} is neither true nor false"),
                });
            }
        }
    }
    let file = match env.get("OPENLINEAGE_CONFIG") {
        Some(path) => {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(ConfigError {
                    source_name: "OPENLINEAGE_CONFIG".into(),
                    reason: format!("{} does not exist", path.display()),
                });
            }
            Some(path)
        }
        None => [
            Some(cwd.join("openlineage.yml")),
            home.map(|h| h.join(".openlineage/openlineage.yml")),
        ]
        .into_iter()
        .flatten()
        .find(|p| p.is_file()),
    };
    let mut transport: Option<Value> = None;
    let mut source_name = String::from("the environment");
    if let Some(path) = &file {
        source_name = path.display().to_string();
        let fail = |reason: String| ConfigError {
            source_name: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let doc: Value =
            serde_norway::from_str(&text).map_err(|e| fail(format!("not valid YAML: {e}")))?;
        // An empty file is no configuration; anything else must be a
        // mapping (a stray scalar or list is a mistake, not a default).
        if !matches!(doc, Value::Object(_) | Value::Null) {
            return Err(fail(
                "the file must be a mapping with a `transport:` section".into(),
            ));
        }
        transport = match doc.get("transport") {
            None | Some(Value::Null) => None,
            Some(t @ Value::Object(_)) => Some(t.clone()),
            Some(_) => return Err(fail("`transport` must be a mapping".into())),
        };
    }
    // OPENLINEAGE__TRANSPORT__A__B=value sets transport.a.b.
    for (name, value) in env {
        let Some(path) = name.strip_prefix("OPENLINEAGE__TRANSPORT__") else {
            continue;
        };
        source_name = format!("{source_name} and {name}");
        let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
        let mut node = transport.get_or_insert_with(|| Value::Object(Map::new()));
        for key in &keys[..keys.len() - 1] {
            let map = node.as_object_mut().ok_or_else(|| ConfigError {
                source_name: name.clone(),
                reason: format!("`{key}` is not a mapping"),
            })?;
            node = slot(map, key).or_insert_with(|| Value::Object(Map::new()));
        }
        // A JSON object or list is taken as such (`AUTH='{"type": ...}'`).
        let value = match serde_json::from_str(value) {
            Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
            _ => Value::String(value.clone()),
        };
        if let Some(map) = node.as_object_mut() {
            // Replacing the file's member however it is spelled (`apiKey`
            // for API_KEY).
            *slot(map, &keys[keys.len() - 1]).or_insert(Value::Null) = value;
        }
    }
    if transport.is_none()
        && let Some(url) = env.get("OPENLINEAGE_URL")
    {
        let mut t = Map::new();
        t.insert("type".into(), "http".into());
        t.insert("url".into(), url.clone().into());
        if let Some(e) = env.get("OPENLINEAGE_ENDPOINT") {
            t.insert("endpoint".into(), e.clone().into());
        }
        if let Some(k) = env.get("OPENLINEAGE_API_KEY") {
            t.insert(
                "auth".into(),
                serde_json::json!({"type": "api_key", "apiKey": k}),
            );
        }
        transport = Some(Value::Object(t));
        source_name = "OPENLINEAGE_URL".into();
    }
    transport.map(|t| parse(&t, &source_name)).transpose()
}

/// What makes an http(s) URL unusable, if anything: a space or control
/// character, no host, a port that is not a port.
fn url_problem(url: &str) -> Option<String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("it contains a space or a control character".into());
    }
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.rfind(':') {
        // Not the colons of an IPv6 address in brackets.
        Some(i) if !host_port[i..].contains(']') => (&host_port[..i], Some(&host_port[i + 1..])),
        _ => (host_port, None),
    };
    if host.is_empty() {
        return Some("it names no host".into());
    }
    if host.starts_with('[') != host.ends_with(']')
        || host.starts_with('[')
            && host[1..host.len() - 1]
                .parse::<std::net::Ipv6Addr>()
                .is_err()
    {
        return Some("its IPv6 address in brackets is malformed".into());
    }
    match port {
        // Not the port as written: it may be part of a password.
        Some(p) if p.parse::<u16>().is_err() => Some("the port is not a number up to 65535".into()),
        _ => None,
    }
}

/// A member's name as compared: case-insensitive and ignoring `_` (so
/// `apiKey`, `api_key` and `APIKEY` are one).
fn folded(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// A member looked up by its folded name.
fn member<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let want = folded(name);
    map.iter().find(|(k, _)| folded(k) == want).map(|(_, v)| v)
}

/// The entry of the member spelled in any way `name` folds to: the one the
/// map has, or a new one named `name`.
fn slot<'a>(map: &'a mut Map<String, Value>, name: &str) -> serde_json::map::Entry<'a> {
    let want = folded(name);
    let key = map
        .keys()
        .find(|k| folded(k) == want)
        .cloned()
        .unwrap_or_else(|| name.to_owned());
    map.entry(key)
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse(t: &Value, source_name: &str) -> Result<TransportConfig, ConfigError> {
    let fail = |reason: String| ConfigError {
        source_name: source_name.to_owned(),
        reason,
    };
    let map = t
        .as_object()
        .ok_or_else(|| fail("a transport must be a mapping".into()))?;
    let kind = member(map, "type")
        .and_then(text)
        .ok_or_else(|| fail("the transport has no `type`".into()))?;
    match kind.to_ascii_lowercase().as_str() {
        "console" => Ok(TransportConfig::Console),
        "noop" => Ok(TransportConfig::Disabled),
        "file" => {
            let path = member(map, "log_file_path")
                .and_then(text)
                .filter(|p| !p.trim().is_empty())
                .ok_or_else(|| fail("a file transport needs `log_file_path`".into()))?;
            let append = match member(map, "append").and_then(text) {
                None => true,
                Some(v) => v
                    .parse()
                    .map_err(|_| fail(format!("`append` must be true or false, not {v:?}")))?,
            };
            Ok(TransportConfig::File {
                path: PathBuf::from(path),
                append,
            })
        }
        "http" => {
            let url = member(map, "url")
                .and_then(text)
                .ok_or_else(|| fail("an http transport needs `url`".into()))?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(fail(format!(
                    "`url` must start with http:// or https://, not {:?}",
                    crate::redact_url_password(&url)
                )));
            }
            if let Some(problem) = url_problem(&url) {
                return Err(fail(format!(
                    "`url` {:?} cannot be used: {problem}",
                    crate::redact_url_password(&url)
                )));
            }
            let endpoint = member(map, "endpoint")
                .and_then(text)
                .unwrap_or_else(|| "api/v1/lineage".into());
            let api_key = match member(map, "auth") {
                None | Some(Value::Null) => None,
                Some(Value::Object(auth)) => {
                    let kind = member(auth, "type")
                        .and_then(text)
                        .unwrap_or_else(|| "api_key".into());
                    if kind != "api_key" {
                        return Err(fail(format!(
                            "auth type {kind:?} is not supported; use api_key"
                        )));
                    }
                    let key = member(auth, "api_key")
                        .and_then(text)
                        .ok_or_else(|| fail("auth of type api_key needs `apiKey`".into()))?;
                    if key.is_empty() {
                        return Err(fail("`apiKey` is empty".into()));
                    }
                    // Not the key itself in the message: it is a secret.
                    if key.bytes().any(|b| b.is_ascii_control()) {
                        return Err(fail(
                            "`apiKey` holds a character a header cannot carry (a line break?)"
                                .into(),
                        ));
                    }
                    Some(key)
                }
                Some(_) => return Err(fail("`auth` must be a mapping".into())),
            };
            let gzip = match member(map, "compression").and_then(text).as_deref() {
                None | Some("none") => false,
                Some("gzip") => true,
                Some(other) => {
                    return Err(fail(format!(
                        "compression {other:?} is not supported; use gzip"
                    )));
                }
            };
            let timeout = match member(map, "timeout").and_then(text) {
                None => Duration::from_secs(5),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    // A millisecond at least: less gives every request up
                    // before it starts.
                    .filter(|s| *s >= 0.001)
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or_else(|| {
                        fail(format!(
                            "`timeout` must be a number of seconds (0.001 or more), not {v:?}"
                        ))
                    })?,
            };
            Ok(TransportConfig::Http {
                url,
                endpoint,
                api_key,
                gzip,
                timeout,
            })
        }
        "composite" => {
            let parts: Vec<&Value> = match member(map, "transports") {
                Some(Value::Array(list)) => list.iter().collect(),
                Some(Value::Object(named)) => named.values().collect(),
                _ => return Err(fail("a composite transport needs `transports`".into())),
            };
            if parts.is_empty() {
                return Err(fail(
                    "a composite transport with no `transports` would send events nowhere".into(),
                ));
            }
            parts
                .into_iter()
                .map(|p| parse(p, source_name))
                .collect::<Result<_, _>>()
                .map(TransportConfig::Composite)
        }
        other => Err(fail(format!(
            "transport type {other:?} is not supported; use http, file, console or composite"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("prov-olcfg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_yaml_file_in_the_working_directory() {
        let d = dir("cwd");
        std::fs::write(
            d.join("openlineage.yml"),
            "transport:\n  type: http\n  url: http://127.0.0.1:5000\n  endpoint: api/v1/lineage\n  auth:\n    type: api_key\n    apiKey: s3cret\n  compression: gzip\n",
        )
        .unwrap();
        let config = load_config(&env(&[]), &d, None).unwrap().unwrap();
        let TransportConfig::Http {
            url, api_key, gzip, ..
        } = &config
        else {
            panic!("{config:?}")
        };
        assert_eq!(
            (url.as_str(), api_key.as_deref(), *gzip),
            ("http://127.0.0.1:5000", Some("s3cret"), true)
        );
        assert!(
            !format!("{config:?}").contains("s3cret"),
            "secrets stay out of Debug"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn variables_override_and_legacy_names_work() {
        let d = dir("env");
        let config = load_config(
            &env(&[
                ("OPENLINEAGE__TRANSPORT__TYPE", "file"),
                ("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", "/tmp/ol.ndjson"),
                ("OPENLINEAGE__TRANSPORT__APPEND", "false"),
            ]),
            &d,
            None,
        )
        .unwrap();
        assert_eq!(
            config,
            Some(TransportConfig::File {
                path: "/tmp/ol.ndjson".into(),
                append: false
            })
        );
        let config = load_config(
            &env(&[
                ("OPENLINEAGE_URL", "http://127.0.0.1:9"),
                ("OPENLINEAGE_API_KEY", "k"),
            ]),
            &d,
            None,
        )
        .unwrap()
        .unwrap();
        assert!(
            matches!(config, TransportConfig::Http { ref api_key, .. } if api_key.as_deref() == Some("k"))
        );
        assert_eq!(
            load_config(&env(&[("OPENLINEAGE_DISABLED", "true")]), &d, None).unwrap(),
            Some(TransportConfig::Disabled)
        );
        for yes in ["1", "yes", "TRUE", "on"] {
            assert_eq!(
                load_config(&env(&[("OPENLINEAGE_DISABLED", yes)]), &d, None).unwrap(),
                Some(TransportConfig::Disabled),
                "{yes}"
            );
        }
        let err = load_config(&env(&[("OPENLINEAGE_DISABLED", "maybe")]), &d, None).unwrap_err();
        assert!(err.to_string().contains("neither true nor false"), "{err}");
        assert_eq!(load_config(&env(&[]), &d, None).unwrap(), None);

        // A variable replaces the file's member however the file spells it,
        // and takes JSON for a mapping.
        std::fs::write(
            d.join("openlineage.yml"),
            "transport:\n  type: http\n  url: http://127.0.0.1:9\n  auth:\n    type: api_key\n    apiKey: filekey\n",
        )
        .unwrap();
        let key = |vars: &[(&str, &str)]| match load_config(&env(vars), &d, None).unwrap() {
            Some(TransportConfig::Http { api_key, .. }) => api_key,
            other => panic!("{other:?}"),
        };
        assert_eq!(key(&[]).as_deref(), Some("filekey"));
        assert_eq!(
            key(&[("OPENLINEAGE__TRANSPORT__AUTH__API_KEY", "envkey")]).as_deref(),
            Some("envkey")
        );
        assert_eq!(
            key(&[(
                "OPENLINEAGE__TRANSPORT__AUTH",
                r#"{"type": "api_key", "apiKey": "jsonkey"}"#
            )])
            .as_deref(),
            Some("jsonkey")
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_home_file_and_composites() {
        let d = dir("home");
        std::fs::create_dir_all(d.join(".openlineage")).unwrap();
        std::fs::write(
            d.join(".openlineage/openlineage.yml"),
            "transport:\n  type: composite\n  transports:\n    local:\n      type: file\n      log_file_path: /tmp/x.ndjson\n    screen:\n      type: console\n",
        )
        .unwrap();
        let config = load_config(&env(&[]), Path::new("/nonexistent"), Some(&d))
            .unwrap()
            .unwrap();
        assert!(
            matches!(config, TransportConfig::Composite(ref parts) if parts.len() == 2),
            "{config:?}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_configuration_is_a_clear_error() {
        let d = dir("bad");
        for (yaml, needle) in [
            ("transport:\n  type: kafka\n", "kafka\" is not supported"),
            ("transport:\n  type: http\n", "needs `url`"),
            (
                "transport:\n  type: http\n  url: ftp://x\n",
                "must start with http",
            ),
            ("transport:\n  type: file\n", "needs `log_file_path`"),
            ("transport: [1, 2]\n", "must be a mapping"),
            (
                "transport:\n  type: http\n  url: http://x\n  compression: zstd\n",
                "zstd",
            ),
            (
                "transport:\n  type: http\n  url: http://x\n  auth:\n    type: api_key\n",
                "needs `apiKey`",
            ),
            ("transport: {\n", "not valid YAML"),
            (
                "transport\n",
                "must be a mapping with a `transport:` section",
            ),
            ("- a\n", "must be a mapping with a `transport:` section"),
            (
                "transport:\n  type: http\n  url: \"http://[::1\"\n",
                "IPv6 address in brackets is malformed",
            ),
            (
                "transport:\n  type: http\n  url: \"http://[::1]:5000\"\n  timeout: 1e-12\n",
                "0.001 or more",
            ),
            (
                "transport:\n  type: file\n  log_file_path: \"\"\n",
                "needs `log_file_path`",
            ),
            (
                "transport:\n  type: http\n  url: http://127.0.0.1:99999\n",
                "the port is not a number up to 65535",
            ),
            (
                "transport:\n  type: http\n  url: \"http://exa mple.com\"\n",
                "contains a space",
            ),
            (
                "transport:\n  type: http\n  url: http:///x\n",
                "names no host",
            ),
            (
                "transport:\n  type: http\n  url: http://x\n  auth:\n    type: api_key\n    apiKey: |\n      secret\n",
                "a header cannot carry",
            ),
            (
                "transport:\n  type: http\n  url: http://x\n  auth:\n    type: api_key\n    apiKey: ''\n",
                "`apiKey` is empty",
            ),
            (
                "transport:\n  type: http\n  url: http://x\n  timeout: 1e20\n",
                "`timeout` must be a number of seconds",
            ),
            (
                "transport:\n  type: composite\n  transports: []\n",
                "would send events nowhere",
            ),
        ] {
            std::fs::write(d.join("openlineage.yml"), yaml).unwrap();
            let err = load_config(&env(&[]), &d, None).unwrap_err();
            assert!(err.to_string().contains(needle), "{yaml}: {err}");
            assert!(err.to_string().contains("openlineage.yml"), "{err}");
        }
        let err = load_config(&env(&[("OPENLINEAGE_CONFIG", "/nope.yml")]), &d, None).unwrap_err();
        assert!(
            err.to_string().contains("/nope.yml does not exist"),
            "{err}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}

impl TransportConfig {
    /// Builds the transport. HTTP transports keep their spool in `spool_dir`.
    pub fn build(
        &self,
        spool_dir: &Path,
    ) -> Result<Box<dyn super::Transport>, super::TransportError> {
        Ok(match self {
            TransportConfig::Disabled => Box::new(super::NoopTransport),
            TransportConfig::Console => Box::new(super::ConsoleTransport),
            TransportConfig::File { path, append } => {
                Box::new(super::FileTransport::open(path, *append)?)
            }
            #[cfg(feature = "http")]
            TransportConfig::Http {
                url,
                endpoint,
                api_key,
                gzip,
                timeout,
            } => {
                let mut options = super::HttpOptions::new(url.clone(), spool_dir.to_path_buf());
                options.endpoint = endpoint.clone();
                options.api_key = api_key.clone();
                options.gzip = *gzip;
                options.timeout = *timeout;
                Box::new(super::HttpTransport::start(options)?)
            }
            #[cfg(not(feature = "http"))]
            TransportConfig::Http { url, .. } => {
                return Err(super::TransportError::Rejected {
                    target: url.clone(),
                    reason: "this build has no HTTP transport (feature `http`)".into(),
                });
            }
            TransportConfig::Composite(parts) => Box::new(super::CompositeTransport::new(
                parts
                    .iter()
                    .map(|p| p.build(spool_dir))
                    .collect::<Result<_, _>>()?,
                super::FailurePolicy::AllMustSucceed,
            )),
        })
    }
}

#[cfg(test)]
mod build_tests {
    use super::*;

    #[test]
    fn a_composite_of_files_writes_each() {
        let d = std::env::temp_dir().join(format!("prov-olbuild-{}", std::process::id()));
        let config = TransportConfig::Composite(vec![
            TransportConfig::File {
                path: d.join("a.ndjson"),
                append: true,
            },
            TransportConfig::File {
                path: d.join("b.ndjson"),
                append: false,
            },
        ]);
        let transport = config.build(&d.join("spool")).unwrap();
        let event = crate::Event::Job(crate::JobEvent::new(crate::Job::new("ns", "j")));
        transport.emit(&event).unwrap();
        for f in ["a.ndjson", "b.ndjson"] {
            assert_eq!(
                std::fs::read_to_string(d.join(f)).unwrap().lines().count(),
                1
            );
        }
        assert!(transport.describe().starts_with("composite ["));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
