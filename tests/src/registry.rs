//! A real OCI registry on loopback for the resolver's stories: Debian's
//! `docker-registry` (the distribution project's server), started on a free
//! port with its storage in a temporary folder; images pushed through the
//! registry API itself; a token server that issues JWTs the registry trusts
//! (key and certificate made with the openssl CLI); and a proxy that lies
//! about `Docker-Content-Digest`.
//!
//! The registry is a peer: [`registry_binary`] returns `None` with a printed
//! note when it is missing, and fails when `PROV_REQUIRE_PEERS=1`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use provenance_core::resolve::auth::base64_encode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Receiver;

/// Where Debian's package installs the registry.
pub const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

/// The registry binary, or `None` (with a note) when it is missing and not
/// required.
pub fn registry_binary(test: &str) -> Option<PathBuf> {
    let path = PathBuf::from(REGISTRY_BINARY);
    if path.is_file() {
        return Some(path);
    }
    let required = std::env::var("PROV_REQUIRE_PEERS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{REGISTRY_BINARY} is required (PROV_REQUIRE_PEERS=1) but missing: run scripts/install-test-peers.sh"
    );
    eprintln!(
        "note: {test} skipped: {REGISTRY_BINARY} is missing (scripts/install-test-peers.sh installs it)"
    );
    None
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", provenance_core::hex(&Sha256::digest(bytes)))
}

/// A fresh temporary folder named for `name`.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prov-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// A running `docker-registry serve`, killed when dropped.
pub struct Registry {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// Mints push tokens when the registry requires them.
    pub tokens: Option<Arc<TokenServer>>,
    /// The CA of its TLS certificate, when it serves HTTPS.
    pub ca: Option<PathBuf>,
}

/// Makes a CA and a certificate for 127.0.0.1 signed by it in `dir` with the
/// openssl CLI; returns (CA certificate, server certificate, server key).
pub fn make_tls_certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca_key, ca) = (dir.join("ca.key"), dir.join("ca.crt"));
    let (key, csr, cert) = (
        dir.join("tls.key"),
        dir.join("tls.csr"),
        dir.join("tls.crt"),
    );
    let ext = dir.join("tls.ext");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write the extensions file");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=prov-test-ca",
        "-keyout",
        path(&ca_key),
        "-out",
        path(&ca),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        path(&key),
        "-out",
        path(&csr),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        path(&csr),
        "-CA",
        path(&ca),
        "-CAkey",
        path(&ca_key),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        path(&ext),
        "-out",
        path(&cert),
    ]);
    (ca, cert, key)
}

impl Registry {
    /// Starts the registry `binary` with its storage and configuration in
    /// `dir`; with `tokens`, it requires bearer tokens from that server.
    pub fn start(binary: &Path, dir: &Path, tokens: Option<Arc<TokenServer>>) -> Registry {
        Self::start_with(binary, dir, tokens, false)
    }

    /// Starts the registry serving HTTPS only, with a certificate for
    /// 127.0.0.1 from a CA made for it (`ca`).
    pub fn start_tls(binary: &Path, dir: &Path) -> Registry {
        Self::start_with(binary, dir, None, true)
    }

    fn start_with(
        binary: &Path,
        dir: &Path,
        tokens: Option<Arc<TokenServer>>,
        tls: bool,
    ) -> Registry {
        let port = Receiver::free_port();
        let storage = dir.join("storage");
        std::fs::create_dir_all(&storage).expect("create the registry storage");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        let mut ca = None;
        if tls {
            let (ca_cert, cert, key) = make_tls_certificate(dir);
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
            ca = Some(ca_cert);
        }
        if let Some(t) = &tokens {
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                t.url(),
                t.cert.display()
            ));
        }
        let config_path = dir.join("config.yml");
        std::fs::write(&config_path, config).expect("write the registry configuration");
        let log = std::fs::File::create(dir.join("registry.log")).expect("create the registry log");
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let mut registry = Registry {
            child: Some(child),
            port,
            dir: dir.to_owned(),
            tokens,
            ca,
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&mut self) {
        let client = self.client();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(r) = client.get(format!("{}/v2/", self.url())).send() {
                let status = r.status().as_u16();
                if status == 200 || status == 401 {
                    return;
                }
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("the registry exited ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the registry did not answer /v2/ within 15 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the registry logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// `127.0.0.1:<port>`, the registry part of an image reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>`, or `https://` when it serves TLS.
    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// An HTTP client that trusts the registry's CA.
    fn client(&self) -> reqwest::blocking::Client {
        let mut builder = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10));
        if let Some(ca) = &self.ca {
            let pem = std::fs::read(ca).expect("read the test CA");
            let cert = reqwest::Certificate::from_pem(&pem).expect("the test CA");
            builder = builder.tls_certs_merge([cert]);
        }
        builder.build().expect("an HTTP client")
    }

    /// Stops the registry (the port then refuses connections).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Pushes a small image (a layer, a config, a manifest) and an index
    /// naming it, tagged `tag`, through the registry API; `seed` makes the
    /// content distinct. Returns the index digest the tag now names.
    pub fn push_image(&self, repository: &str, tag: &str, seed: &str) -> String {
        let auth = self
            .tokens
            .as_ref()
            .map(|t| format!("Bearer {}", t.mint(repository, &["pull", "push"])));
        let auth = auth.as_deref();
        let layer = format!("layer of {repository}:{tag} {seed}\n").into_bytes();
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&layer)]},
            "config": {"Labels": {"seed": seed}}
        }))
        .expect("config JSON");
        let layer_digest = self.push_blob(repository, &layer, auth);
        let config_digest = self.push_blob(repository, &config, auth);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}]
        }))
        .expect("manifest JSON");
        let manifest_digest = sha256_digest(&manifest);
        self.put_manifest(
            repository,
            &manifest_digest,
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
            auth,
        );
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest.len(),
                "platform": {"architecture": "amd64", "os": "linux"}
            }]
        }))
        .expect("index JSON");
        let answered = self.put_manifest(
            repository,
            tag,
            "application/vnd.oci.image.index.v1+json",
            &index,
            auth,
        );
        let digest = sha256_digest(&index);
        assert_eq!(
            answered, digest,
            "the registry's digest of the pushed index"
        );
        digest
    }

    /// `POST /v2/<name>/blobs/uploads/`, then `PUT <location>?digest=`.
    fn push_blob(&self, repository: &str, blob: &[u8], auth: Option<&str>) -> String {
        let client = self.client();
        let digest = sha256_digest(blob);
        let mut post = client.post(format!("{}/v2/{repository}/blobs/uploads/", self.url()));
        if let Some(a) = auth {
            post = post.header("Authorization", a);
        }
        let started = post.send().expect("start a blob upload");
        assert_eq!(
            started.status().as_u16(),
            202,
            "start upload: {:?}",
            started.text()
        );
        let location = started
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("the upload's Location")
            .to_owned();
        let location = if location.starts_with('/') {
            format!("{}{location}", self.url())
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let mut put = client
            .put(format!("{location}{separator}digest={digest}"))
            .header("Content-Type", "application/octet-stream")
            .body(blob.to_vec());
        if let Some(a) = auth {
            put = put.header("Authorization", a);
        }
        let done = put.send().expect("finish a blob upload");
        assert_eq!(
            done.status().as_u16(),
            201,
            "finish upload: {:?}",
            done.text()
        );
        digest
    }

    /// `PUT /v2/<name>/manifests/<reference>`; returns the digest answered.
    fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
        auth: Option<&str>,
    ) -> String {
        let mut put = self
            .client()
            .put(format!(
                "{}/v2/{repository}/manifests/{reference}",
                self.url()
            ))
            .header("Content-Type", media_type)
            .body(body.to_vec());
        if let Some(a) = auth {
            put = put.header("Authorization", a);
        }
        let answer = put.send().expect("put a manifest");
        let digest = answer
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            answer.status().as_u16(),
            201,
            "put manifest: {:?}",
            answer.text()
        );
        digest
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client")
}

/// The registry's name for itself in tokens (`aud`).
pub const SERVICE: &str = "prov-test-registry";
/// The token issuer the registry trusts (`iss`).
pub const ISSUER: &str = "prov-test-issuer";

/// A token server on loopback: answers `GET /token?service=&scope=` with a
/// JWT (RS256, certificate in `x5c`) that grants what the scope asks.
/// Repositories under `public/` are granted to anyone; others only to a
/// request with the configured Basic credentials.
pub struct TokenServer {
    port: u16,
    key: PathBuf,
    /// The certificate the registry trusts (its `rootcertbundle`).
    pub cert: PathBuf,
    cert_der_base64: String,
    basic: String,
    /// Every request received: (query, whether it carried the credentials).
    pub requests: Mutex<Vec<(String, bool)>>,
    served: AtomicUsize,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl TokenServer {
    /// Generates a key and certificate in `dir` with the openssl CLI and
    /// starts serving; `user:password` may fetch tokens for any repository.
    pub fn start(dir: &Path, user: &str, password: &str) -> Arc<TokenServer> {
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        let der = dir.join("token.der");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=prov-test-token-issuer",
            "-keyout",
            path(&key),
            "-out",
            path(&cert),
        ]);
        openssl(&[
            "x509",
            "-in",
            path(&cert),
            "-outform",
            "der",
            "-out",
            path(&der),
        ]);
        let cert_der = std::fs::read(&der).expect("read the certificate");
        let port = Receiver::free_port();
        let server = tiny_http::Server::http(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("bind the token server on 127.0.0.1:{port}: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let this = Arc::new(TokenServer {
            port,
            key,
            cert,
            cert_der_base64: base64_encode(&cert_der),
            basic: format!(
                "Basic {}",
                base64_encode(format!("{user}:{password}").as_bytes())
            ),
            requests: Mutex::new(Vec::new()),
            served: AtomicUsize::new(0),
            stop: Arc::clone(&stop),
            thread: Mutex::new(None),
        });
        let weak = Arc::downgrade(&this);
        let thread = std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(20)) else {
                    continue;
                };
                let Some(this) = weak.upgrade() else { break };
                this.answer(request);
            }
        });
        *this.thread.lock().expect("token server thread") = Some(thread);
        this
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many tokens were issued.
    pub fn issued(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    fn answer(&self, request: tiny_http::Request) {
        let url = request.url().to_owned();
        let query = url.split_once('?').map_or("", |(_, q)| q).to_owned();
        let authorized = request
            .headers()
            .iter()
            .any(|h| h.field.equiv("Authorization") && h.value.as_str() == self.basic);
        self.requests
            .lock()
            .expect("token server log")
            .push((query.clone(), authorized));
        let mut service_ok = false;
        let mut repositories: Vec<(String, Vec<String>)> = Vec::new();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            match k {
                "service" => service_ok = v == SERVICE,
                "scope" => {
                    let parts: Vec<&str> = v.split(':').collect();
                    if parts.len() == 3 && parts[0] == "repository" {
                        let actions = parts[2].split(',').map(str::to_owned).collect();
                        repositories.push((parts[1].to_owned(), actions));
                    }
                }
                _ => {}
            }
        }
        let allowed = repositories
            .iter()
            .all(|(name, _)| authorized || name.starts_with("public/"));
        if !service_ok || repositories.is_empty() || !allowed {
            let _ = request.respond(tiny_http::Response::empty(401));
            return;
        }
        let token = self.sign(&repositories);
        self.served.fetch_add(1, Ordering::SeqCst);
        let body = json!({"token": token, "expires_in": 300}).to_string();
        let _ = request.respond(tiny_http::Response::from_string(body));
    }

    /// A push-and-pull token for `repository`, for the test's own pushes.
    pub fn mint(&self, repository: &str, actions: &[&str]) -> String {
        self.sign(&[(
            repository.to_owned(),
            actions.iter().map(|a| a.to_string()).collect(),
        )])
    }

    fn sign(&self, access: &[(String, Vec<String>)]) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_secs();
        let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [self.cert_der_base64]});
        let access: Vec<Value> = access
            .iter()
            .map(|(name, actions)| json!({"type": "repository", "name": name, "actions": actions}))
            .collect();
        let claims = json!({
            "iss": ISSUER, "sub": "prov-test", "aud": SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": format!("{now}-{}", self.served.load(Ordering::SeqCst)),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign", path(&self.key)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start openssl dgst");
        std::io::Write::write_all(
            child.stdin.as_mut().expect("openssl's stdin"),
            signing_input.as_bytes(),
        )
        .expect("write to openssl");
        let out = child.wait_with_output().expect("openssl dgst");
        assert!(out.status.success(), "openssl dgst -sign failed");
        format!("{signing_input}.{}", base64url(&out.stdout))
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl (the openssl CLI is needed by the token tests)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

fn base64url(bytes: &[u8]) -> String {
    base64_encode(bytes)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A proxy in front of a registry that passes manifests through but claims a
/// wrong `Docker-Content-Digest` for them, and answers a request for the
/// manifest it claims with the real one (as a tampering registry would).
pub struct LyingProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LyingProxy {
    /// Proxies to `upstream` (`http://127.0.0.1:<port>`), claiming `claimed`
    /// for every manifest; `manifests/<claimed>` is served as `manifests/<tag>`.
    pub fn start(upstream: String, claimed: String, tag: String) -> LyingProxy {
        let port = Receiver::free_port();
        let server = tiny_http::Server::http(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("bind the proxy on 127.0.0.1:{port}: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let client = client();
            while !stop2.load(Ordering::SeqCst) {
                let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(20)) else {
                    continue;
                };
                let path = request
                    .url()
                    .replace(&format!("manifests/{claimed}"), &format!("manifests/{tag}"));
                let method = if *request.method() == tiny_http::Method::Head {
                    reqwest::Method::HEAD
                } else {
                    reqwest::Method::GET
                };
                let mut upstream_request = client.request(method, format!("{upstream}{path}"));
                for h in request.headers() {
                    if h.field.equiv("Accept") || h.field.equiv("Authorization") {
                        upstream_request =
                            upstream_request.header(h.field.as_str().as_str(), h.value.as_str());
                    }
                }
                let Ok(answer) = upstream_request.send() else {
                    let _ = request.respond(tiny_http::Response::empty(502));
                    continue;
                };
                let status = answer.status().as_u16();
                let content_type = answer
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/octet-stream")
                    .to_owned();
                let body = answer.bytes().map(|b| b.to_vec()).unwrap_or_default();
                let mut response = tiny_http::Response::from_data(body).with_status_code(status);
                for (name, value) in [
                    ("Content-Type", content_type.as_str()),
                    ("Docker-Content-Digest", claimed.as_str()),
                ] {
                    if let Ok(h) = tiny_http::Header::from_bytes(name, value) {
                        response.add_header(h);
                    }
                }
                let _ = request.respond(response);
            }
        });
        LyingProxy {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for LyingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
