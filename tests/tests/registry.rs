//! Story: image tags are resolved to digests by a real registry on loopback
//! (Debian's `docker-registry`), with images pushed through the registry API:
//! by tag, after a retag, through the bearer-token flow, with the registry
//! down (unpinned with the reason, or the cache served and marked), and with a
//! proxy that lies about the digest (refused).

use std::path::Path;
use std::sync::Arc;

use provenance_core::facets::{ContainerRuntime, DigestSource, ProvContainerRunFacet};
use provenance_core::oci::ImageReference;
use provenance_core::recorder::Recorder;
use provenance_core::resolve::auth::{Credentials, DockerConfig};
use provenance_core::resolve::registry::{RegistryError, RegistryOptions};
use provenance_core::resolve::{Resolution, Resolver, ResolverOptions, TagCache};
use provenance_core::transport::FileTransport;
use provenance_core::{Event, EventType};
use provenance_tests::Schemas;
use provenance_tests::registry::{LyingProxy, Registry, TokenServer, registry_binary, temp_dir};

/// A resolver that asks only the registry (no runtime), remembering answers in
/// `dir`, with `credentials` as a Docker configuration would give them.
fn resolver(dir: &Path, credentials: DockerConfig) -> Resolver {
    Resolver::new(ResolverOptions {
        registry: RegistryOptions {
            credentials,
            ..RegistryOptions::default()
        },
        cache: Some(TagCache::new(dir.join("cache/oci-tags.json"))),
        ask_runtime: false,
        ..ResolverOptions::default()
    })
    .expect("a resolver")
}

fn reference(text: &str) -> ImageReference {
    ImageReference::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn pinned(resolution: Resolution) -> (String, DigestSource, Option<String>, Option<String>) {
    match resolution {
        Resolution::Pinned {
            digest,
            source,
            resolved_at,
            note,
        } => (digest, source, resolved_at, note),
        Resolution::Unpinned { reason } => panic!("unpinned: {reason}"),
    }
}

/// How many `method` requests for manifests of biocontainers/bwa the
/// registry has logged, once the count of HEAD requests stops moving.
fn requests(registry: &Registry, method: &str) -> usize {
    let count = |m: &str| {
        let needle = format!("\"{m} /v2/biocontainers/bwa/manifests/");
        registry.log().matches(&needle).count()
    };
    // The access log is written after the answer: let it settle.
    let mut last = count("HEAD");
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(25));
        let now = count("HEAD");
        if now == last {
            break;
        }
        last = now;
    }
    count(method)
}

fn unpinned(resolution: Resolution) -> String {
    match resolution {
        Resolution::Unpinned { reason } => reason,
        pinned => panic!("expected unpinned, got {pinned:?}"),
    }
}

#[test]
fn a_tag_resolves_to_its_digest_and_a_retag_is_seen_at_once() {
    let Some(binary) = registry_binary("a_tag_resolves_to_its_digest_and_a_retag_is_seen_at_once")
    else {
        return;
    };
    let dir = temp_dir("registry-retag");
    let registry = Registry::start(&binary, &dir, None);
    let first = registry.push_image("biocontainers/bwa", "0.7.17", "one");
    let image = format!("{}/biocontainers/bwa:0.7.17", registry.host());
    let resolver = resolver(&dir, DockerConfig::default());

    let (digest, source, resolved_at, _) =
        pinned(resolver.resolve(&reference(&image), ContainerRuntime::None));
    assert_eq!(digest, first);
    assert_eq!(source, DigestSource::Registry);
    assert!(resolved_at.is_some());

    // Asked again, unmoved: HEAD alone (no pull counted), the same digest.
    assert_eq!(
        requests(&registry, "GET"),
        1,
        "the first answer was fetched and checked"
    );
    let (again, ..) = pinned(resolver.resolve(&reference(&image), ContainerRuntime::None));
    assert_eq!(again, first);
    assert_eq!(requests(&registry, "HEAD"), 2);
    assert_eq!(
        requests(&registry, "GET"),
        1,
        "an unmoved tag is not fetched again"
    );

    // The tag moves: the next resolution sees the new image, not the cache.
    let second = registry.push_image("biocontainers/bwa", "0.7.17", "two");
    assert_ne!(first, second);
    let (digest, source, ..) = pinned(resolver.resolve(&reference(&image), ContainerRuntime::None));
    assert_eq!(
        (digest.as_str(), source),
        (second.as_str(), DigestSource::Registry)
    );
    assert_eq!(
        requests(&registry, "GET"),
        2,
        "the new digest was fetched and checked"
    );
    let cached = TagCache::new(dir.join("cache/oci-tags.json"))
        .get(&format!("{}/biocontainers/bwa:0.7.17", registry.host()))
        .unwrap()
        .expect("the answer is remembered");
    assert_eq!(cached.digest, second);

    // The recorder records the digest; the event passes our schema.
    let events = dir.join("events.ndjson");
    let recorder = Recorder::new(
        "genomics",
        Box::new(FileTransport::open(&events, true).unwrap()),
    )
    .with_resolver(Arc::new(resolver))
    .with_require_pinned(true);
    let run = recorder
        .step("bwa_mem")
        .container(&image, ContainerRuntime::Docker)
        .start()
        .expect("a resolvable image passes --require-pinned");
    run.complete(&[]).unwrap();
    let text = std::fs::read_to_string(&events).unwrap();
    let start = text.lines().next().expect("a START event");
    let Event::Run(event) = Event::from_slice(start.as_bytes()).unwrap() else {
        panic!("not a run event");
    };
    assert_eq!(event.event_type, Some(EventType::Start));
    let facet = event
        .run
        .facets
        .get::<ProvContainerRunFacet>()
        .unwrap()
        .unwrap();
    assert_eq!(facet.digest.as_deref(), Some(second.as_str()));
    assert_eq!(facet.digest_source, DigestSource::Registry);
    assert!(facet.pinned);
    let errors = Schemas::load().event_errors(&Event::Run(event).to_value());
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn a_registry_that_requires_tokens_is_resolved_through_the_bearer_flow() {
    let Some(binary) =
        registry_binary("a_registry_that_requires_tokens_is_resolved_through_the_bearer_flow")
    else {
        return;
    };
    let dir = temp_dir("registry-token");
    let tokens = TokenServer::start(&dir, "lab", "s3cret:pw");
    let registry = Registry::start(&binary, &dir, Some(Arc::clone(&tokens)));
    let public = registry.push_image("public/samtools", "1.19", "public");
    let private = registry.push_image("private/gatk", "4.5.0.0", "private");

    // Without a token the registry refuses, so a digest proves the flow ran.
    let direct = reqwest::blocking::get(format!(
        "{}/v2/public/samtools/manifests/1.19",
        registry.url()
    ))
    .unwrap();
    assert_eq!(direct.status().as_u16(), 401);

    // Anonymous: a token for a public repository, as Docker Hub and quay.io give.
    let anonymous = resolver(&dir, DockerConfig::default());
    let before = tokens.issued();
    let image = format!("{}/public/samtools:1.19", registry.host());
    let (digest, ..) = pinned(anonymous.resolve(&reference(&image), ContainerRuntime::None));
    assert_eq!(digest, public);
    assert_eq!(tokens.issued(), before + 1, "one token was fetched");
    let (query, with_credentials) = tokens.requests.lock().unwrap().last().cloned().unwrap();
    assert!(!with_credentials);
    assert!(
        query.contains("scope=repository%3Apublic%2Fsamtools%3Apull"),
        "{query}"
    );
    assert!(query.contains("service=prov-test-registry"), "{query}");

    // A private repository needs the credentials of the docker configuration.
    let private_image = reference(&format!("{}/private/gatk:4.5.0.0", registry.host()));
    let err = anonymous.ask_registry(&private_image).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RegistryError::Auth { .. }), "{err:?}");
    assert!(text.contains("refused a token anonymously"), "{text}");
    assert!(
        text.contains(&tokens.url()),
        "names the token server: {text}"
    );

    let config = dir.join("docker/config.json");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
            registry.host(),
            provenance_core::resolve::auth::base64_encode(b"lab:s3cret:pw")
        ),
    )
    .unwrap();
    let with_credentials = resolver(&dir, DockerConfig::load(&config).unwrap());
    let (digest, ..) = pinned(with_credentials.resolve(&private_image, ContainerRuntime::None));
    assert_eq!(digest, private);
    assert!(
        tokens.requests.lock().unwrap().last().unwrap().1,
        "Basic credentials were sent"
    );

    // Wrong credentials: a clear error, and no secret in it.
    let wrong = DockerConfig::default().with(
        &registry.host(),
        Credentials {
            username: "lab".into(),
            password: "wrong-password".into(),
        },
    );
    let err = resolver(&dir, wrong)
        .ask_registry(&private_image)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("with the docker configuration's credentials"),
        "{err}"
    );
    assert!(!err.contains("wrong-password"), "{err}");
}

#[test]
fn a_registry_that_is_down_leaves_the_image_unpinned_or_serves_the_cache_marked_as_such() {
    let Some(binary) = registry_binary(
        "a_registry_that_is_down_leaves_the_image_unpinned_or_serves_the_cache_marked_as_such",
    ) else {
        return;
    };
    let dir = temp_dir("registry-down");
    let mut registry = Registry::start(&binary, &dir, None);
    let digest = registry.push_image("biocontainers/fastp", "0.23.4", "fastp");
    registry.push_image("biocontainers/multiqc", "1.21", "multiqc");
    let known = reference(&format!("{}/biocontainers/fastp:0.23.4", registry.host()));
    let never = reference(&format!("{}/biocontainers/multiqc:1.21", registry.host()));
    let resolver = resolver(&dir, DockerConfig::default());
    let (_, _, first_time, _) = pinned(resolver.resolve(&known, ContainerRuntime::None));

    registry.stop();
    let err = resolver.ask_registry(&known).unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");

    // Resolved before: the cache serves, and says so, with the time of that answer.
    let (cached, source, resolved_at, note) =
        pinned(resolver.resolve(&known, ContainerRuntime::None));
    assert_eq!(cached, digest);
    assert_eq!(source, DigestSource::Cache);
    assert_eq!(resolved_at, first_time);
    let note = note.expect("why the cache served");
    assert!(note.contains(&registry.host()), "{note}");

    // Never resolved: unpinned, with the reason.
    let reason = unpinned(resolver.resolve(&never, ContainerRuntime::None));
    assert!(
        reason.contains(&format!(
            "reach http://{}/v2/biocontainers/multiqc/manifests/1.21",
            registry.host()
        )),
        "{reason}"
    );
    assert!(reason.contains("cache: no earlier answer"), "{reason}");

    // The recorder records the run unpinned with that reason, or refuses it.
    let resolver = Arc::new(resolver);
    let events = dir.join("events.ndjson");
    let recorder = Recorder::new(
        "genomics",
        Box::new(FileTransport::open(&events, true).unwrap()),
    )
    .with_resolver(Arc::clone(&resolver));
    let image = never.to_string();
    let run = recorder
        .step("multiqc")
        .container(&image, ContainerRuntime::Docker)
        .start()
        .unwrap();
    run.complete(&[]).unwrap();
    let first = read_json_line(&events, 0);
    let facet = &first["run"]["facets"]["prov_container"];
    assert_eq!(facet["pinned"], false);
    assert!(
        facet["unpinnedReason"]
            .as_str()
            .unwrap()
            .contains("cache: no earlier answer"),
        "{facet}"
    );
    let errors = Schemas::load().event_errors(&first);
    assert!(errors.is_empty(), "{errors:#?}");

    let strict = Recorder::new(
        "genomics",
        Box::new(FileTransport::open(&events, true).unwrap()),
    )
    .with_resolver(resolver)
    .with_require_pinned(true);
    let Err(err) = strict
        .step("multiqc")
        .container(&image, ContainerRuntime::Docker)
        .start()
    else {
        panic!("an unpinned image passed --require-pinned");
    };
    assert!(
        err.to_string().contains("is not pinned to a digest"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&events).unwrap().lines().count(),
        2,
        "nothing more emitted"
    );
}

fn read_json_line(path: &Path, n: usize) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(text.lines().nth(n).expect("the line")).unwrap()
}

#[test]
fn a_manifest_that_does_not_match_its_digest_is_refused() {
    let Some(binary) = registry_binary("a_manifest_that_does_not_match_its_digest_is_refused")
    else {
        return;
    };
    let dir = temp_dir("registry-lying");
    let registry = Registry::start(&binary, &dir, None);
    let real = registry.push_image("biocontainers/bcftools", "1.19", "bcftools");
    let wrong = format!("sha256:{}", "e".repeat(64));
    let proxy = LyingProxy::start(registry.url(), wrong.clone(), "1.19".into());
    let resolver = resolver(&dir, DockerConfig::default());

    // Through the registry itself: fine, and remembered.
    let direct = reference(&format!("{}/biocontainers/bcftools:1.19", registry.host()));
    assert_eq!(
        pinned(resolver.resolve(&direct, ContainerRuntime::None)).0,
        real
    );

    let lied = reference(&format!("{}/biocontainers/bcftools:1.19", proxy.host()));
    let err = resolver.ask_registry(&lied).unwrap_err();
    let RegistryError::DigestMismatch {
        claimed, computed, ..
    } = &err
    else {
        panic!("expected a digest mismatch, got {err:?}");
    };
    assert_eq!((claimed, computed), (&wrong, &real));
    let text = err.to_string();
    assert!(
        text.contains(&proxy.host()) && text.contains("refusing"),
        "{text}"
    );

    // The recorded answer is unpinned with that reason: a registry that
    // answers wrongly is not "unreachable", so no cache is served either.
    TagCache::new(dir.join("cache/oci-tags.json"))
        .put(
            &format!("{}/biocontainers/bcftools:1.19", proxy.host()),
            provenance_core::resolve::CachedDigest {
                digest: real.clone(),
                resolved_at: "2026-11-20T08:00:00Z".into(),
            },
        )
        .unwrap();
    let reason = unpinned(resolver.resolve(&lied, ContainerRuntime::None));
    assert!(reason.contains("but its bytes hash to"), "{reason}");
}

#[test]
fn a_registry_behind_tls_is_resolved_over_https_with_its_ca() {
    let Some(binary) = registry_binary("a_registry_behind_tls_is_resolved_over_https_with_its_ca")
    else {
        return;
    };
    let dir = temp_dir("registry-tls");
    let registry = Registry::start_tls(&binary, &dir);
    let digest = registry.push_image("biocontainers/samtools", "1.19", "tls");
    let image = reference(&format!("{}/biocontainers/samtools:1.19", registry.host()));
    let ca = registry.ca.clone().expect("a TLS registry has a CA");

    // The registry speaks only HTTPS, so a digest means HTTPS was used.
    let trusting = Resolver::new(ResolverOptions {
        registry: RegistryOptions {
            ca_files: vec![ca],
            ..RegistryOptions::default()
        },
        ask_runtime: false,
        ..ResolverOptions::default()
    })
    .unwrap();
    let (resolved, source, ..) = pinned(trusting.resolve(&image, ContainerRuntime::None));
    assert_eq!(
        (resolved.as_str(), source),
        (digest.as_str(), DigestSource::Registry)
    );

    // Without the CA the certificate is not trusted: no digest.
    let err = resolver(&dir, DockerConfig::default())
        .ask_registry(&image)
        .expect_err("an untrusted certificate was accepted");
    let text = provenance_core::resolve::error_chain(&err);
    assert!(text.contains(&registry.host()), "{text}");
    assert!(
        text.contains("after HTTPS failed") && text.contains("certificate"),
        "{text}"
    );
}
