//! `prov serve`, with real clients on loopback: the official OpenLineage Python
//! client, our own HTTP transport, and a corpus of malformed requests.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use provenance_core::transport::{HttpOptions, HttpTransport, Transport};
use provenance_core::{Event, EventType, Job, Run, RunEvent, RunId};
use serde_json::{Value, json};

struct Server {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    write_token: String,
    read_token: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    fn start(name: &str) -> Server {
        Server::start_with(name, &[])
    }

    /// A server given `extra` options of `prov serve`.
    fn start_with(name: &str, extra: &[&str]) -> Server {
        let dir = std::env::temp_dir().join(format!("prov-serve-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let prov = env!("CARGO_BIN_EXE_prov");
        let token = |role: &str| -> String {
            let out = Command::new(prov)
                .args(["token", "create", "--role", role, "--tokens"])
                .arg(dir.join("tokens.tsv"))
                .output()
                .unwrap();
            assert!(out.status.success());
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        };
        let (write_token, read_token) = (token("write"), token("read"));
        let port = free_port();
        let child = Command::new(prov)
            .arg("--store")
            .arg(dir.join("prov.db"))
            .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--tokens"])
            .arg(dir.join("tokens.tsv"))
            .args(extra)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server {
            dir,
            port,
            child: Some(child),
            write_token,
            read_token,
        };
        let started = Instant::now();
        while reqwest::blocking::get(server.url("/healthz")).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn get(&self, path: &str) -> Value {
        let r = reqwest::blocking::Client::new()
            .get(self.url(path))
            .bearer_auth(&self.read_token)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        serde_json::from_str(&r.text().unwrap()).unwrap()
    }

    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        gzip: bool,
        body: Vec<u8>,
    ) -> (u16, String) {
        let mut request = reqwest::blocking::Client::new()
            .post(self.url(path))
            .header("Content-Type", content_type);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if gzip {
            request = request.header("Content-Encoding", "gzip");
        }
        let r = request.body(body).send().unwrap();
        (r.status().as_u16(), r.text().unwrap_or_default())
    }

    /// POSTs a START event of job `ns/<job>` with the write token.
    fn post_start(&self, job: &str) -> (u16, String) {
        let event = Event::Run(RunEvent::new(
            EventType::Start,
            Run::new(RunId::new_v7()),
            Job::new("ns", job),
        ));
        self.post(
            "/api/v1/lineage",
            Some(&self.write_token),
            "application/json",
            false,
            event.to_json().into_bytes(),
        )
    }

    fn event_count(&self) -> u64 {
        self.get("/api/v1/events/lineage?limit=1")["totalCount"]
            .as_u64()
            .unwrap()
    }

    /// SIGTERM, as a service manager sends it; the server must stop cleanly.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn peer_python(args: &[&str]) -> Option<String> {
    peer_script("openlineage_client.py", args)
}

/// Runs `tests/peer/<script>` (which uses openlineage-python) with `args`;
/// its standard output, or `None` when the client is not installed.
fn peer_script(script: &str, args: &[&str]) -> Option<String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peer")
        .join(script);
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .ok()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named 'openlineage'") {
        let required = std::env::var("PROV_REQUIRE_PEERS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "openlineage-python is required (PROV_REQUIRE_PEERS=1) but missing"
        );
        eprintln!("skipped: openlineage-python is not installed");
        return None;
    }
    assert!(out.status.success(), "{stderr}");
    Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

#[test]
fn the_official_python_client_is_served_and_a_wrong_key_refused() {
    let mut server = Server::start("python");
    let Some(out) = peer_python(&[&server.url(""), &server.write_token]) else {
        return;
    };
    assert_eq!(out, "SENT 4");
    let graph = server.get("/api/v1/lineage?nodeId=dataset:file:/results/P1.vcf&level=version");
    let jobs: Vec<&str> = graph["graph"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] == "RUN")
        .map(|n| n["data"]["job"].as_str().unwrap())
        .collect();
    assert_eq!(jobs.len(), 2, "{graph}");
    assert!(jobs.contains(&"align") && jobs.contains(&"call"));
    // Marquez's shape by default: JOB and DATASET nodes only, each with the
    // members Marquez's Job and Dataset have.
    let graph = server.get("/api/v1/lineage?nodeId=dataset:file:/results/P1.vcf");
    let nodes = graph["graph"].as_array().unwrap();
    assert!(
        nodes
            .iter()
            .all(|n| n["type"] == "JOB" || n["type"] == "DATASET"),
        "{graph}"
    );
    let node = |id: &str| {
        nodes
            .iter()
            .find(|n| n["id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {graph}"))
    };
    let call = node("job:python:call");
    assert_eq!(
        call["data"]["id"],
        serde_json::json!({"namespace": "python", "name": "call"})
    );
    assert_eq!(call["data"]["type"], "BATCH");
    assert_eq!(call["data"]["latestRun"]["state"], "COMPLETED", "{call}");
    assert_eq!(
        call["data"]["outputs"],
        serde_json::json!([{"namespace": "file", "name": "/results/P1.vcf"}])
    );
    let vcf = node("dataset:file:/results/P1.vcf");
    assert_eq!(vcf["data"]["id"]["name"], "/results/P1.vcf");
    assert_eq!(
        vcf["inEdges"],
        serde_json::json!([{"origin": "job:python:call", "destination": "dataset:file:/results/P1.vcf"}])
    );
    let Some(out) = peer_python(&[&server.url(""), "prov_wrong"]) else {
        return;
    };
    assert_eq!(out, "REFUSED 401");
    // A read token cannot write either.
    let Some(out) = peer_python(&[&server.url(""), &server.read_token.clone()]) else {
        return;
    };
    assert_eq!(out, "REFUSED 403");
    assert_eq!(server.event_count(), 4);
    assert!(server.stop().success(), "SIGTERM stops the server cleanly");
}

/// `prov token revoke` takes effect in a running server within a second,
/// without a restart; SIGHUP reads the file again and does not stop it.
/// Many clients sending large events at once to a server with a small
/// memory budget: they wait their turn, and the official client, with its
/// default retries and timeout, delivers every event.
#[test]
fn the_official_client_delivers_everything_under_a_small_memory_budget() {
    let server = Server::start_with("flood", &["--memory-budget", "1"]);
    let Some(sent) = peer_script(
        "openlineage_flood.py",
        &[&server.url(""), &server.write_token, "32", "10", "900000"],
    ) else {
        return;
    };
    assert_eq!(sent, "SENT 320 FAILED 0");
    assert_eq!(server.event_count(), 320);
}

#[test]
fn a_revoked_token_is_refused_by_the_running_server() {
    let mut server = Server::start("revoke");
    let body = event("revoked", 0).to_json().into_bytes();
    let (status, _) = server.post(
        "/api/v1/lineage",
        Some(&server.write_token.clone()),
        "application/json",
        false,
        body.clone(),
    );
    assert_eq!(status, 201);
    let tokens = server.dir.join("tokens.tsv");
    let out = Command::new(env!("CARGO_BIN_EXE_prov"))
        .args(["token", "revoke", "--tokens"])
        .arg(&tokens)
        .args(["--token", &server.write_token])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Looked at again at most once a second.
    std::thread::sleep(Duration::from_millis(1100));
    let (status, _) = server.post(
        "/api/v1/lineage",
        Some(&server.write_token.clone()),
        "application/json",
        false,
        body,
    );
    assert_eq!(status, 401, "the revoked token still writes");
    // The read token is still good; SIGHUP does not stop the server.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.child.as_ref().unwrap().id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        server.get("/api/v1/events/lineage?limit=1")["totalCount"],
        1
    );
    assert!(server.stop().success());
}

/// A group member revokes a token from a file in a folder only root may
/// write (as /etc is): the file is rewritten in place, keeps its owner,
/// group and mode, and no partial file is left. Needs root (to set it up)
/// and setpriv (to act as the member).
#[test]
fn a_token_is_revoked_in_place_where_no_new_file_can_be_made() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipped: needs setpriv");
        return;
    }
    let dir = std::env::temp_dir().join(format!("prov-revoke-inplace-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tokens = dir.join("tokens.tsv");
    let prov = env!("CARGO_BIN_EXE_prov");
    for name in ["gone", "kept"] {
        let out = Command::new(prov)
            .args([
                "token", "create", "--role", "read", "--name", name, "--tokens",
            ])
            .arg(&tokens)
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    // root:65534, group-writable; the member is uid 65534's group.
    if std::os::unix::fs::chown(&tokens, Some(0), Some(65534)).is_err() {
        eprintln!("skipped: needs root");
        std::fs::remove_dir_all(&dir).unwrap();
        return;
    }
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o660)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", prov])
        .args(["token", "revoke", "--name", "gone", "--tokens"])
        .arg(&tokens)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = std::fs::metadata(&tokens).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (0, 65534, 0o660)
    );
    let text = std::fs::read_to_string(&tokens).unwrap();
    assert!(
        text.contains("\tkept") && !text.contains("\tgone"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "a partial file was left"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A page of no items, or of more than 10,000, is refused as the command
/// line refuses it, not quietly changed.
#[test]
fn a_limit_out_of_range_is_a_bad_request() {
    let server = Server::start("limits");
    for path in [
        "/api/v1/events/lineage?limit=0",
        "/api/v1/audit/runs?limit=10001",
        "/api/v1/audit/unpinned?limit=0",
        "/api/v1/audit/container?image=ubuntu&limit=0",
    ] {
        let r = reqwest::blocking::Client::new()
            .get(server.url(path))
            .bearer_auth(&server.read_token)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{path}");
        assert!(r.text().unwrap().contains("limit: "), "{path}");
    }
    assert_eq!(
        server.get("/api/v1/events/lineage?limit=10000")["totalCount"],
        0
    );
}

fn event(job: &str, i: usize) -> Event {
    let id = RunId::static_v7(
        chrono::DateTime::from_timestamp(1_760_000_000, 0).unwrap(),
        format!("{job}/{i}").as_bytes(),
    );
    Event::Run(RunEvent::new(
        EventType::Start,
        Run::new(id),
        Job::new("transport", job),
    ))
}

#[test]
fn our_http_transport_delivers_to_the_single_and_the_batch_endpoint() {
    let server = Server::start("transport");
    for (endpoint, job) in [
        ("api/v1/lineage", "single"),
        ("api/v1/lineage/batch", "batch"),
    ] {
        let spool = server.dir.join(format!("spool-{job}"));
        let mut options = HttpOptions::new(server.url(""), spool);
        options.endpoint = endpoint.into();
        options.api_key = Some(server.write_token.clone());
        options.gzip = job == "batch";
        let transport = HttpTransport::start(options).unwrap();
        for i in 0..250 {
            transport.emit(&event(job, i)).unwrap();
        }
        transport.flush(Duration::from_secs(30)).unwrap();
    }
    assert_eq!(server.event_count(), 500);
    let runs = server.get("/api/v1/audit/runs?job=batch&limit=1");
    assert_eq!(runs["total"], 250);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn malformed_requests_get_the_right_4xx_and_change_nothing() {
    let server = Server::start("malformed");
    let good = serde_json::to_vec(&event("good", 0).to_value()).unwrap();
    let w = Some(server.write_token.as_str());
    assert_eq!(
        server
            .post(
                "/api/v1/lineage",
                w,
                "application/json",
                false,
                good.clone()
            )
            .0,
        201
    );
    let before = server.event_count();

    let valid = event("bad", 1).to_value();
    let with = |pointer: &str, v: Value| -> Vec<u8> {
        let mut e = valid.clone();
        *e.pointer_mut(pointer).unwrap() = v;
        serde_json::to_vec(&e).unwrap()
    };
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    let bomb = gzip(&vec![b' '; 200 << 20]);
    let json = "application/json";
    // (what, content type, gzip, body, expected status, text in the answer)
    type Case<'a> = (&'a str, &'a str, bool, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "truncated JSON",
            json,
            false,
            good[..good.len() / 2].to_vec(),
            400,
            "not JSON",
        ),
        (
            "trailing garbage",
            json,
            false,
            [good.clone(), b"}}garbage".to_vec()].concat(),
            400,
            "not JSON",
        ),
        (
            "wrong type",
            json,
            false,
            with("/job/name", json!(42)),
            400,
            "job.name",
        ),
        (
            "invalid UUID",
            json,
            false,
            with("/run/runId", json!("not-a-uuid")),
            400,
            "run.runId",
        ),
        (
            "unknown eventType",
            json,
            false,
            with("/eventType", json!("EXPLODED")),
            400,
            "eventType",
        ),
        (
            "eventTime not a time",
            json,
            false,
            with("/eventTime", json!("yesterday")),
            400,
            "eventTime",
        ),
        (
            "nesting 100,000 deep",
            json,
            false,
            deep,
            400,
            "recursion limit",
        ),
        (
            "wrong content type",
            "text/plain",
            false,
            good.clone(),
            415,
            "application/json",
        ),
        (
            "bad gzip",
            json,
            true,
            b"\x1f\x8bnot gzip at all".to_vec(),
            400,
            "gzip",
        ),
        ("gzip bomb", json, true, bomb, 413, "inflates to more than"),
        (
            "bytes after the gzip stream",
            json,
            true,
            [gzip(&good), b"GARBAGE".to_vec()].concat(),
            400,
            "gzip",
        ),
        (
            "an array to the single endpoint",
            json,
            false,
            b"[]".to_vec(),
            400,
            "",
        ),
    ];
    for (what, content_type, gz, body, status, needle) in cases {
        let (got, text) = server.post("/api/v1/lineage", w, content_type, gz, body);
        assert_eq!(got, status, "{what}: {text}");
        assert!(text.contains(needle), "{what}: {text}");
    }
    // A gzip body of two members (as concatenated streams are) is read whole.
    let (head, tail) = good.split_at(good.len() / 2);
    let (got, text) = server.post(
        "/api/v1/lineage",
        w,
        json,
        true,
        [gzip(head), gzip(tail)].concat(),
    );
    assert_eq!(got, 201, "{text}");
    // Tens of MB: refused from the announced length, before the body is read.
    // (A client still writing such a body may see the connection close instead
    // of the answer, so this one speaks HTTP over a plain socket.)
    {
        use std::io::{Read, Write};
        let mut socket = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        let head = format!(
            "POST /api/v1/lineage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            server.write_token,
            30 << 20
        );
        socket.write_all(head.as_bytes()).unwrap();
        let mut answer = [0u8; 64];
        let n = socket.read(&mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    }
    // The batch endpoint names failures by index and keeps the good ones.
    let batch = format!(
        "[{}, {{\"run\": {{\"runId\": \"x\"}}}}]",
        String::from_utf8(with("/job/name", json!("ok"))).unwrap()
    );
    let (got, text) = server.post("/api/v1/lineage/batch", w, json, false, batch.into_bytes());
    assert_eq!(got, 200, "{text}");
    let summary: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(summary["status"], "partial_success");
    assert_eq!(summary["failed_events"][0]["index"], 1);
    // The spec's summary object.
    assert_eq!(
        summary["summary"],
        json!({"received": 2, "successful": 1, "failed": 1, "retriable": 0, "non_retriable": 1})
    );
    // A batch of junk: every failure counted, the first thousand listed, and
    // a reply far smaller than a list of them all.
    let junk = format!("[{}0]", "0,".repeat(19_999));
    let (got, text) = server.post("/api/v1/lineage/batch", w, json, false, junk.into_bytes());
    assert_eq!(got, 400, "{}", &text[..200.min(text.len())]);
    let summary: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(summary["summary"]["failed"], 20_000);
    assert_eq!(summary["failed_events"].as_array().unwrap().len(), 1000);
    assert_eq!(summary["failed_events_truncated"], true);
    // More events than a batch may hold: refused whole, before any is read.
    let more = format!("[{}0]", "0,".repeat(20_000));
    let (got, text) = server.post("/api/v1/lineage/batch", w, json, false, more.into_bytes());
    assert_eq!(got, 413, "{text}");
    assert!(text.contains("more than 20000 events"), "{text}");
    assert_eq!(
        server.event_count(),
        before + 1,
        "only the good batch event was stored"
    );
    // The raw events come back as the bytes received, spelling and all.
    let spelled = String::from_utf8(with("/job/name", json!("spelled")))
        .unwrap()
        .replacen('{', "{ \"count\" : 1.50, \"big\": 123456789012345678 ,", 1);
    let (got, text) = server.post(
        "/api/v1/lineage",
        w,
        json,
        false,
        spelled.clone().into_bytes(),
    );
    assert_eq!(got, 201, "{text}");
    let last = server.event_count() - 1;
    let raw = reqwest::blocking::Client::new()
        .get(server.url(&format!("/api/v1/events/lineage?offset={last}&limit=1")))
        .bearer_auth(&server.read_token)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(raw.contains(&spelled), "{raw}");
    // No token, or a read token, before any body is read.
    assert_eq!(
        server
            .post("/api/v1/lineage", None, json, false, good.clone())
            .0,
        401
    );
    assert_eq!(
        server
            .post(
                "/api/v1/lineage",
                Some(&server.read_token.clone()),
                json,
                false,
                good
            )
            .0,
        403
    );
    // The scheme is case-insensitive; the token is not.
    for (header, status) in [
        (format!("BEARER {}", server.read_token), 200),
        (format!("bEaReR {}", server.read_token), 200),
        (format!("Bearer {}", server.read_token.to_uppercase()), 401),
        ("Bearer".to_owned(), 401),
    ] {
        let got = reqwest::blocking::Client::new()
            .get(server.url("/api/v1/events/lineage?limit=1"))
            .header("Authorization", &header)
            .send()
            .unwrap();
        assert_eq!(got.status().as_u16(), status, "{header}");
        if status == 401 {
            // RFC 9110: a 401 names the scheme that would be accepted.
            assert_eq!(got.headers()["www-authenticate"], "Bearer realm=\"prov\"");
        }
    }
    // Still up, and the trail intact.
    assert!(
        reqwest::blocking::get(server.url("/readyz"))
            .unwrap()
            .status()
            .is_success()
    );
    let metrics = reqwest::blocking::get(server.url("/metrics"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("prov_requests_unauthorized_total 4"),
        "{metrics}"
    );
}

#[test]
fn a_stalled_client_holds_neither_its_request_nor_the_shutdown() {
    use std::io::{Read, Write};
    let mut server =
        Server::start_with("stalled", &["--read-timeout", "2", "--shutdown-grace", "1"]);
    let connect = || std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let answer = |socket: &mut std::net::TcpStream| {
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut text = Vec::new();
        let _ = socket.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    };
    // Half the headers: the connection is closed once the time is up.
    let mut headers = connect();
    headers
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    assert_eq!(answer(&mut headers), "");
    assert!(started.elapsed() < Duration::from_secs(8));
    // Part of a body: 408, in JSON.
    let mut body = connect();
    let head = format!(
        "POST /api/v1/lineage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\":",
        server.write_token
    );
    body.write_all(head.as_bytes()).unwrap();
    let text = answer(&mut body);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains(r#"{"error":"the body did not arrive within 2 s"}"#),
        "{text}"
    );
    // A client that sends its request and closes its side still gets the answer.
    let mut half = connect();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    half.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(answer(&mut half).starts_with("HTTP/1.1 200"));
    // Errors from routing are JSON too.
    let get = |path: &str| {
        reqwest::blocking::Client::new()
            .delete(server.url(path))
            .bearer_auth(&server.write_token)
            .send()
            .unwrap()
    };
    let status = reqwest::blocking::Client::new()
        .get(server.url("/api/v1/audit/runs?status=FAILED"))
        .bearer_auth(&server.read_token)
        .send()
        .unwrap();
    assert_eq!(status.status().as_u16(), 400);
    assert!(status.text().unwrap().contains("is not one of START"));
    let nope = get("/nope");
    assert_eq!(nope.status().as_u16(), 404);
    assert_eq!(
        nope.text().unwrap(),
        r#"{"error":"no such endpoint: /nope"}"#
    );
    let wrong = get("/api/v1/lineage");
    assert_eq!(wrong.status().as_u16(), 405);
    assert!(wrong.headers().contains_key("allow"));
    assert!(wrong.text().unwrap().contains("DELETE is not allowed"));
    // An event is stored; then a client stalls mid-request and SIGTERM
    // comes: the server stops within its grace period, the event kept.
    let (got, _) = server.post_start("kept");
    assert_eq!(got, 201);
    let mut stalled = connect();
    stalled.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    let mut child = server.child.take().unwrap();
    let stopping = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(8),
            "the server did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_prov"))
        .arg("--store")
        .arg(server.dir.join("prov.db"))
        .args(["verify", "--chain"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("1 events"), "{text}");
    drop(stalled);
}

/// Clients that send requests and never read the answers (here, pipelined
/// requests filling every connection slot) are cut off once their answers
/// have waited --read-timeout, so other clients are served again.
#[test]
fn clients_that_never_read_their_answers_do_not_hold_the_server() {
    use std::io::Write;
    let server = Server::start_with("unread", &["--read-timeout", "2", "--max-connections", "4"]);
    let request = b"GET /openapi.yaml HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000);
    let hogs: Vec<std::net::TcpStream> = (0..4)
        .map(|_| {
            let mut socket = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
            socket
                .set_write_timeout(Some(Duration::from_secs(1)))
                .unwrap();
            // As much as the kernel takes; the answers are never read.
            let _ = socket.write_all(&request);
            socket
        })
        .collect();
    let started = Instant::now();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let answer = client.get(server.url("/healthz")).send();
    assert!(
        answer.is_ok_and(|a| a.status().is_success()),
        "a client was not served while others left their answers unread"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "served only after {:?}",
        started.elapsed()
    );
    drop(hogs);
}

#[test]
fn requests_beyond_the_memory_budget_wait_their_turn_and_are_all_stored() {
    // A budget of 1 MiB: each gzip request counts as up to 64 MiB of text,
    // so they go one at a time, none refused and none stuck.
    let server = Server::start_with("budget", &["--memory-budget", "1"]);
    let token = server.write_token.clone();
    let before = server.event_count();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (server, token) = (&server, &token);
            scope.spawn(move || {
                let events: Vec<Value> = (0..50)
                    .map(|i| {
                        Event::Run(RunEvent::new(
                            EventType::Start,
                            Run::new(RunId::new_v7()),
                            Job::new("budget", format!("t{t}-{i}")),
                        ))
                        .to_value()
                    })
                    .collect();
                let body = gzip(&serde_json::to_vec(&events).unwrap());
                let (got, text) = server.post(
                    "/api/v1/lineage/batch",
                    Some(token),
                    "application/json",
                    true,
                    body,
                );
                assert_eq!(got, 200, "{text}");
            });
        }
    });
    assert_eq!(server.event_count(), before + 200);
}

/// Bodies beyond the memory budget are not held while they wait: many large
/// batches at once leave the server's memory near the budget, not at the
/// sum of the bodies, and every batch is stored once its client retries.
#[test]
fn bodies_waiting_for_the_memory_budget_are_not_held_in_memory() {
    let server = Server::start_with("budget-bodies", &["--memory-budget", "8"]);
    // One batch of about 3.5 MB, sent by 120 clients at once (the same
    // events: duplicates are parsed and answered like any others).
    let events: Vec<Value> = (0..3500)
        .map(|i| {
            let mut e = Event::Run(RunEvent::new(
                EventType::Start,
                Run::new(RunId::new_v7()),
                Job::new("budget", format!("job-{i}")),
            ))
            .to_value();
            e["run"]["facets"]["note"] = json!({
                "_producer": "https://example.org/p",
                "_schemaURL": "https://example.org/s",
                "text": "x".repeat(500),
            });
            e
        })
        .collect();
    let body: &'static [u8] = Box::leak(serde_json::to_vec(&events).unwrap().into_boxed_slice());
    assert!(
        body.len() > 3_000_000 && body.len() < 4 << 20,
        "{}",
        body.len()
    );
    let token = server.write_token.clone();
    std::thread::scope(|scope| {
        for _ in 0..120 {
            let (server, token) = (&server, &token);
            scope.spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(600))
                    .build()
                    .unwrap();
                // As OpenLineage clients do: a 503 is sent again shortly.
                loop {
                    let r = client
                        .post(server.url("/api/v1/lineage/batch"))
                        .bearer_auth(token)
                        .header("Content-Type", "application/json")
                        .body(body)
                        .send()
                        .unwrap();
                    match r.status().as_u16() {
                        503 => {
                            assert_eq!(r.headers()["retry-after"], "1");
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        status => {
                            assert_eq!(status, 200);
                            break;
                        }
                    }
                }
            });
        }
    });
    let pid = server.child.as_ref().unwrap().id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    // The bodies alone are 120 x 3.5 MB = 420 MB; held while waiting, the
    // peak was above that.
    assert!(peak_kib < 300 << 10, "peak memory {} MiB", peak_kib >> 10);
    assert_eq!(server.event_count(), 3500);
}

/// Connections that announce a large body and send none hold nothing of the
/// memory budget: other clients' events are stored at once.
#[test]
fn uploads_that_never_send_their_body_do_not_hold_up_ingest() {
    use std::io::Write;
    let server = Server::start("idle-uploads");
    let holders: Vec<std::net::TcpStream> = (0..8)
        .map(|_| {
            let mut socket = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
            let head = format!(
                "POST /api/v1/lineage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: 100000\r\n\r\n",
                server.write_token
            );
            socket.write_all(head.as_bytes()).unwrap();
            socket
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let (got, text) = server.post_start("prompt");
    assert_eq!(got, 201, "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered after {:?}",
        started.elapsed()
    );
    drop(holders);
}

/// A client that reads a large answer steadily, if slowly, gets all of it:
/// the write deadline cuts off clients that stop reading, not slow ones.
#[test]
fn a_slow_but_steady_reader_gets_the_whole_answer() {
    use std::io::{Read, Write};
    let server = Server::start_with("slow-reader", &["--read-timeout", "1"]);
    post_large_events(&server, 2);
    let mut socket = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let request = format!(
        "GET /api/v1/events/lineage?limit=100 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        server.read_token
    );
    socket.write_all(request.as_bytes()).unwrap();
    // About 650 KB/s: slower than the server writes, never pausing long.
    let mut answer = Vec::new();
    let mut chunk = vec![0; 32 << 10];
    loop {
        match socket.read(&mut chunk).unwrap() {
            0 => break,
            n => answer.extend_from_slice(&chunk[..n]),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let body: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("the answer was cut off after {} bytes: {e}", answer.len()));
    assert_eq!(body["events"].as_array().unwrap().len(), 2);
}

#[test]
fn a_server_beyond_loopback_without_tokens_refuses_to_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_prov"))
        .args(["--store", ":memory:", "serve", "--addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("refusing to listen on 0.0.0.0:0 without --tokens")
    );
}

#[test]
fn a_byte_order_mark_before_an_event_is_left_out_as_prov_ingest_does() {
    let server = Server::start("bom");
    let w = Some(server.write_token.as_str());
    let mut one = b"\xEF\xBB\xBF".to_vec();
    one.extend(serde_json::to_vec(&event("bom", 0).to_value()).unwrap());
    let mut batch = b"\xEF\xBB\xBF".to_vec();
    batch.extend(serde_json::to_vec(&[event("bom", 1).to_value()]).unwrap());
    let (status, text) = server.post("/api/v1/lineage", w, "application/json", false, one.clone());
    assert_eq!(status, 201, "{text}");
    let (status, text) = server.post(
        "/api/v1/lineage/batch",
        w,
        "application/json",
        true,
        gzip(&batch),
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(server.event_count(), 2);
    // The same event again, without its mark, is the same event.
    let (status, _) = server.post(
        "/api/v1/lineage",
        w,
        "application/json",
        false,
        one[3..].to_vec(),
    );
    assert_eq!(status, 201);
    assert_eq!(server.event_count(), 2);
}

/// Stores `n` events of about 3.5 MB each (jobs `job-0`...), one per POST.
fn post_large_events(server: &Server, n: usize) {
    for i in 0..n {
        let mut e = Event::Run(RunEvent::new(
            EventType::Start,
            Run::new(RunId::new_v7()),
            Job::new("large", format!("job-{i}")),
        ))
        .to_value();
        e["run"]["facets"]["blob"] = json!({
            "_producer": "https://example.org/p",
            "_schemaURL": "https://example.org/s",
            "text": "x".repeat(3_500_000),
        });
        let (got, text) = server.post(
            "/api/v1/lineage",
            Some(&server.write_token),
            "application/json",
            false,
            serde_json::to_vec(&e).unwrap(),
        );
        assert_eq!(got, 201, "{text}");
    }
}

/// A page of raw events stops at 16 MiB (the client goes on from its offset
/// plus what it got), so a few large events cannot make one answer huge.
#[test]
fn a_page_of_large_events_stops_at_16_mib_and_the_next_page_goes_on() {
    let server = Server::start("large-page");
    post_large_events(&server, 6);
    let first = server.get("/api/v1/events/lineage?limit=100");
    let got = first["events"].as_array().unwrap().len();
    assert_eq!(got, 4, "4 x 3.5 MB fit in 16 MiB, a fifth does not");
    assert_eq!(first["totalCount"], 6);
    let rest = server.get(&format!("/api/v1/events/lineage?limit=100&offset={got}"));
    let jobs: Vec<&str> = rest["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["job"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["job-4", "job-5"]);
}

/// A page longer than one read from the store (25 events) is read on in
/// chain order, from any offset.
#[test]
fn a_page_of_many_events_is_whole_and_in_order() {
    let server = Server::start("many-events");
    for i in 0..70 {
        assert_eq!(server.post_start(&format!("j{i:02}")).0, 201);
    }
    let jobs = |path: &str| -> Vec<String> {
        server.get(path)["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["job"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = jobs("/api/v1/events/lineage?limit=100");
    assert_eq!(all, (0..70).map(|i| format!("j{i:02}")).collect::<Vec<_>>());
    assert_eq!(
        jobs("/api/v1/events/lineage?offset=10&limit=55"),
        all[10..65]
    );
}
