//! OCI image references: `[registry/]name[:tag][@sha256:<64 hex>]`.
//!
//! Parsed with the grammar of the distribution project (`reference.go`) and
//! normalized as Docker does: no registry means `docker.io`, and a one-part name
//! on Docker Hub gets `library/`. A tag can move; a digest cannot. The record
//! keeps both, and says which one identifies the image.

use std::fmt;
use std::str::FromStr;

/// Docker Hub, the registry of references that name none.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    /// The registry host, with its port if any (`quay.io`, `localhost:5000`).
    pub registry: String,
    /// The repository path (`biocontainers/bwa`, `library/ubuntu`).
    pub repository: String,
    /// The tag, if one was given (`0.7.17--h5bf99c6_8`).
    pub tag: Option<String>,
    /// The manifest digest, if one was given (`sha256:<64 hex>`).
    pub digest: Option<String>,
}

/// A reference that does not follow the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse image reference {reference:?}: {reason}")]
pub struct ImageRefError {
    /// The reference as given.
    pub reference: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ImageReference {
    /// Parses and normalizes `reference`.
    pub fn parse(reference: &str) -> Result<Self, ImageRefError> {
        let fail = |reason: String| ImageRefError {
            reference: reference.to_owned(),
            reason,
        };
        if reference.is_empty() {
            return Err(fail("the reference is empty".into()));
        }
        // Printable ASCII throughout, as references nearly always are, needs
        // no look at characters.
        if !reference.bytes().all(|b| b.is_ascii_graphic())
            && let Some(c) = reference
                .chars()
                .find(|c| c.is_whitespace() || c.is_control())
        {
            return Err(fail(format!("it contains {c:?}")));
        }

        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => (rest, Some(parse_digest(digest).map_err(fail)?)),
            None => (reference, None),
        };

        // A tag follows the last ':' only if no '/' comes after it
        // (`localhost:5000/app` has a port, not a tag).
        let (name, tag) = match rest.bytes().rposition(|b| b == b':') {
            Some(i) if !rest.as_bytes()[i..].contains(&b'/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(fail)?;
        }
        if name.is_empty() {
            return Err(fail("the repository name is empty".into()));
        }
        if name.len() > 255 {
            return Err(fail(format!(
                "the name is {} characters long; at most 255 are allowed",
                name.len()
            )));
        }

        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if looks_like_registry(first) => (first, path),
            _ => (DEFAULT_REGISTRY, name),
        };
        check_registry(registry).map_err(fail)?;
        check_path(path).map_err(fail)?;

        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        Ok(ImageReference {
            registry: registry.to_owned(),
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// Whether the reference names a digest, so it cannot move.
    pub fn is_pinned(&self) -> bool {
        self.digest.is_some()
    }

    /// `registry/repository`, the name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The tag to resolve: the given one, or `latest` when neither a tag nor a
    /// digest was given (as Docker does).
    pub fn tag_or_latest(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => Some(tag),
            (None, None) => Some("latest"),
            (None, Some(_)) => None,
        }
    }
}

impl fmt::Display for ImageReference {
    /// The fully qualified form: `docker.io/library/ubuntu:22.04@sha256:...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageReference {
    type Err = ImageRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageReference::parse(s)
    }
}

/// Docker's rule: the first component is a registry if it has a '.' or a ':',
/// is `localhost`, or has an uppercase letter (which repositories cannot).
fn looks_like_registry(first: &str) -> bool {
    first
        .bytes()
        .any(|b| b == b'.' || b == b':' || b.is_ascii_uppercase())
        || first == "localhost"
}

/// Checks an image digest: `sha256:` and 64 lowercase hexadecimal digits.
pub fn parse_digest(digest: &str) -> Result<String, String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!(
            "the digest {digest:?} has no algorithm; expected sha256:<64 hex digits>"
        ));
    };
    if algorithm != "sha256" {
        return Err(format!(
            "the digest algorithm {algorithm:?} is not supported; expected sha256"
        ));
    }
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("the digest {hex:?} is not 64 hexadecimal digits"));
    }
    if hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("the digest must be lowercase hexadecimal".into());
    }
    Ok(digest.to_owned())
}

/// `[\w][\w.-]{0,127}`
fn check_tag(tag: &str) -> Result<(), String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match tag.chars().next() {
        None => return Err("the tag after ':' is empty".into()),
        Some(c) if !word(c) => {
            return Err(format!(
                "the tag {tag:?} must start with a letter, digit or '_'"
            ));
        }
        _ => {}
    }
    if tag.len() > 128 {
        return Err(format!(
            "the tag is {} characters long; at most 128 are allowed",
            tag.len()
        ));
    }
    // Byte by byte: the first byte outside ASCII starts a character.
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    if let Some(at) = tag.bytes().position(|b| !allowed(b)) {
        let c = tag[at..].chars().next().unwrap_or_default();
        return Err(format!("the tag {tag:?} contains {c:?}"));
    }
    Ok(())
}

/// `host[:port]` where host is dot-separated `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?`
/// components or a bracketed IPv6 address.
fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return Err(format!("the registry {registry:?} has an unclosed '['"));
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!(
                "the registry {registry:?} is not a valid IPv6 address"
            ));
        }
        match after {
            "" => return Ok(()),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return Err(format!("the registry {registry:?} is malformed")),
            },
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("the registry port {port:?} is not a number"));
    }
    if let Some(host) = host {
        for component in host.split('.') {
            let ok = !component.is_empty()
                && component
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !component.starts_with('-')
                && !component.ends_with('-');
            if !ok {
                return Err(format!(
                    "the registry host {host:?} is not a valid host name"
                ));
            }
        }
    }
    Ok(())
}

/// `component ('/' component)*` with component `[a-z0-9]+ (separator [a-z0-9]+)*`
/// and separator `[_.]|__|-+`.
fn check_path(path: &str) -> Result<(), String> {
    for component in path.split('/') {
        if component.is_empty() {
            return Err(format!(
                "the repository {path:?} has an empty path component"
            ));
        }
        if let Some(c) = component
            .bytes()
            .find(u8::is_ascii_uppercase)
            .map(char::from)
        {
            return Err(format!(
                "the repository {path:?} contains the uppercase {c:?}; repository names are lowercase"
            ));
        }
        let bytes = component.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
            return Err(format!(
                "the path component {component:?} must start and end with a lowercase letter or digit"
            ));
        }
        let mut i = 0;
        while i < bytes.len() {
            if alnum(bytes[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && !alnum(bytes[i]) {
                i += 1;
            }
            let separator = &component[start..i];
            let valid =
                matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
            if !valid {
                return Err(format!(
                    "the path component {component:?} contains {separator:?}; only '.', '_', '__' or dashes may separate letters and digits"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";

    fn check(input: &str, normalized: &str) {
        let r = ImageReference::parse(input).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.to_string(), normalized, "{input}");
    }

    fn check_err(input: &str, needle: &str) {
        let err = ImageReference::parse(input).unwrap_err();
        assert!(err.to_string().contains(needle), "{input}: {err}");
        assert_eq!(err.reference, input);
    }

    #[test]
    fn normalizes_like_docker() {
        check("ubuntu", "docker.io/library/ubuntu");
        check("ubuntu:22.04", "docker.io/library/ubuntu:22.04");
        check(
            "broadinstitute/gatk:4.5.0.0",
            "docker.io/broadinstitute/gatk:4.5.0.0",
        );
        check(
            "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8",
            "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8",
        );
        check("localhost:5000/team/app:v1", "localhost:5000/team/app:v1");
        check("localhost/app", "localhost/app");
        check(&format!("ghcr.io/a/b@{D}"), &format!("ghcr.io/a/b@{D}"));
        check(
            &format!("bwa:1@{D}"),
            &format!("docker.io/library/bwa:1@{D}"),
        );
        check("[::1]:5000/app:x", "[::1]:5000/app:x");
        check(
            "registry.example.com:443/a__b/c-d/e.f_g",
            "registry.example.com:443/a__b/c-d/e.f_g",
        );
        check("a---b", "docker.io/library/a---b");
    }

    #[test]
    fn parts_and_pinning() {
        let r = ImageReference::parse("quay.io/biocontainers/samtools:1.19--h50ea8bc_0").unwrap();
        assert_eq!(r.registry, "quay.io");
        assert_eq!(r.repository, "biocontainers/samtools");
        assert_eq!(r.tag.as_deref(), Some("1.19--h50ea8bc_0"));
        assert!(!r.is_pinned());
        let r = ImageReference::parse(&format!("samtools@{D}")).unwrap();
        assert!(r.is_pinned());
        assert_eq!(r.tag_or_latest(), None);
        assert_eq!(
            ImageReference::parse("x").unwrap().tag_or_latest(),
            Some("latest")
        );
    }

    #[test]
    fn bad_references_say_why() {
        check_err("", "empty");
        check_err("Ubuntu", "uppercase");
        check_err("ubuntu:", "tag after ':' is empty");
        check_err("ubuntu:-x", "must start with");
        // "ubuntu:a" before a '/' is a registry with a port, not a name and tag.
        check_err("ubuntu:a/b", "port \"a\" is not a number");
    }

    #[test]
    fn bad_digests_and_names_say_why() {
        check_err("ubuntu@sha256:abc", "64 hexadecimal");
        check_err("ubuntu@md5:0123", "not supported");
        check_err("ubuntu@0123", "no algorithm");
        check_err(
            &format!("ubuntu@{}", D.to_uppercase().replace("SHA256", "sha256")),
            "lowercase",
        );
        check_err("a//b", "empty path component");
        check_err("a/-b", "must start and end");
        check_err("a/b..c", "contains \"..\"");
        check_err("my image", "contains ' '");
        check_err("bad_host.example.com/x", "not a valid host name");
        check_err("host:port/x", "port \"port\" is not a number");
        check_err(&"a".repeat(256), "at most 255");
        check_err(&format!("a:{}", "t".repeat(129)), "at most 128");
        check_err("ubuntu:1+2", "contains '+'");
        check_err("ubuntu:1é", "contains 'é'");
        check_err("ubu\u{7}ntu", "contains '\\u{7}'");
        check_err("ubuntu\u{a0}", "contains '\\u{a0}'");
    }

    #[test]
    fn the_first_component_is_a_registry_when_it_looks_like_a_host() {
        let registry = |s: &str| ImageReference::parse(s).unwrap().registry;
        assert_eq!(registry("localhost/app"), "localhost");
        assert_eq!(registry("localhost:5000/app"), "localhost:5000");
        assert_eq!(registry("Registry/app"), "Registry");
        assert_eq!(registry("ghcr.io/org/app:1"), "ghcr.io");
        assert_eq!(registry("org/app:1"), DEFAULT_REGISTRY);
    }
}
