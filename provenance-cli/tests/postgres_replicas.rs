//! Two `prov serve` replicas on different ports share one PostgreSQL store:
//! clients send to both at once (each event to both, as retries through a
//! load balancer would), then both answer the same, correct lineage, and
//! `prov verify --chain` passes. Then `prov store copy` takes the store to
//! SQLite and back. Loopback only; a real PostgreSQL from PROV_TEST_POSTGRES_URL.

// The store crate's PostgreSQL test helper (test crates cannot depend on each other).
#[path = "../../provenance-store/tests/pg/mod.rs"]
mod pg;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use provenance_core::facets::ProvChecksumDatasetFacet;
use provenance_core::{Event, EventType, InputDataset, Job, OutputDataset, Run, RunEvent, RunId};
use serde_json::Value;

const PROV: &str = env!("CARGO_BIN_EXE_prov");

struct Replica {
    port: u16,
    child: Option<Child>,
    stderr: std::path::PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Replica {
    fn start(store: &str) -> Replica {
        let port = free_port();
        let stderr =
            std::env::temp_dir().join(format!("prov-replica-{}-{port}.log", std::process::id()));
        let child = Command::new(PROV)
            .args(["--store", store, "serve", "--addr"])
            .arg(format!("127.0.0.1:{port}"))
            .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()))
            .spawn()
            .unwrap();
        let replica = Replica {
            port,
            child: Some(child),
            stderr,
        };
        let started = Instant::now();
        while reqwest::blocking::get(replica.url("/readyz"))
            .map(|r| !r.status().is_success())
            .unwrap_or(true)
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the replica on port {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        replica
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn get(&self, path: &str) -> Value {
        let r = reqwest::blocking::get(self.url(path)).unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        serde_json::from_str(&r.text().unwrap()).unwrap()
    }

    fn post(&self, path: &str, body: String) {
        let r = reqwest::blocking::Client::new()
            .post(self.url(path))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .unwrap();
        let status = r.status();
        assert!(
            status.is_success(),
            "POST {path}: {status}: {}",
            r.text().unwrap_or_default()
        );
    }

    /// SIGTERM; the exit status and what the replica printed.
    fn stop(&mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        (
            status,
            std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        )
    }
}

/// The URL with a password for its user (the tests' server trusts loopback,
/// so any password is accepted): it must never be printed.
fn with_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    match rest.split_once('@') {
        Some((user, host)) if !user.contains(':') => format!("{scheme}://{user}:hunter2@{host}"),
        _ => url.to_owned(),
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.stderr);
    }
}

fn sha(label: &str) -> String {
    provenance_core::canonical::canonical_sha256(&serde_json::json!(label)).unwrap()
}

fn input(path: &str) -> InputDataset {
    let c = ProvChecksumDatasetFacet::file(1000, sha(path));
    let mut d = InputDataset::new("file", path);
    d.facets.set(&c.version_facet().unwrap());
    d.facets.set(&c);
    d
}

fn output(path: &str) -> OutputDataset {
    let c = ProvChecksumDatasetFacet::file(1000, sha(path));
    let mut d = OutputDataset::new("file", path);
    d.facets.set(&c.version_facet().unwrap());
    d.facets.set(&c);
    d
}

/// Sample `s`: FASTQ -> bwa -> BAM -> call -> VCF, START and COMPLETE each.
fn sample(s: usize) -> Vec<String> {
    let fastq = format!("/data/S{s}.fastq.gz");
    let bam = format!("/out/S{s}.bam");
    let vcf = format!("/out/S{s}.vcf.gz");
    let mut events = Vec::new();
    for (k, (job, from, to)) in [("bwa", &fastq, &bam), ("call", &bam, &vcf)]
        .into_iter()
        .enumerate()
    {
        let t = chrono::DateTime::from_timestamp(1_760_000_000 + (s * 10 + k) as i64, 0).unwrap();
        let id = RunId::static_v7(t, format!("{job}/{s}").as_bytes());
        for state in [EventType::Start, EventType::Complete] {
            let mut e = RunEvent::new(state.clone(), Run::new(id), Job::new("genomics", job));
            e.event_time = t.into();
            e.inputs = Some(vec![input(from)]);
            if state == EventType::Complete {
                e.outputs = Some(vec![output(to)]);
            }
            events.push(Event::Run(e).to_json());
        }
    }
    events
}

const SAMPLES: usize = 40;
const CLIENTS: usize = 4;

#[test]
fn two_replicas_share_one_postgres_store_and_answer_alike() {
    let Some(schema) = pg::schema("two_replicas") else {
        return;
    };
    let url = with_password(&schema.url);
    let mut a = Replica::start(&url);
    let mut b = Replica::start(&url);

    // Clients send at once; each sample's events go to one replica singly and
    // to the other as a batch, so both replicas append (and deduplicate) the
    // same events concurrently.
    std::thread::scope(|scope| {
        for c in 0..CLIENTS {
            let (a, b) = (&a, &b);
            scope.spawn(move || {
                for s in (c..SAMPLES).step_by(CLIENTS) {
                    let events = sample(s);
                    let (first, second) = if s % 2 == 0 { (a, b) } else { (b, a) };
                    for e in &events {
                        first.post("/api/v1/lineage", e.clone());
                    }
                    second.post("/api/v1/lineage/batch", format!("[{}]", events.join(",")));
                }
            });
        }
    });

    let expected_events = SAMPLES as u64 * 4;
    for r in [&a, &b] {
        assert_eq!(
            r.get("/api/v1/events/lineage?limit=1")["totalCount"],
            expected_events,
            "every event once, through either replica"
        );
    }
    for s in [0, 1, SAMPLES / 2, SAMPLES - 1] {
        let path =
            format!("/api/v1/lineage?nodeId=dataset:file:/out/S{s}.vcf.gz&depth=10&level=version");
        let (from_a, from_b) = (a.get(&path), b.get(&path));
        assert_eq!(from_a, from_b, "the replicas disagree on sample {s}");
        let mut ids: Vec<String> = from_a["graph"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        let bwa = RunId::static_v7(
            chrono::DateTime::from_timestamp(1_760_000_000 + (s * 10) as i64, 0).unwrap(),
            format!("bwa/{s}").as_bytes(),
        );
        let call = RunId::static_v7(
            chrono::DateTime::from_timestamp(1_760_000_000 + (s * 10 + 1) as i64, 0).unwrap(),
            format!("call/{s}").as_bytes(),
        );
        let mut expected = vec![
            format!(
                "dataset:file:/data/S{s}.fastq.gz#sha256:{}",
                sha(&format!("/data/S{s}.fastq.gz"))
            ),
            format!(
                "dataset:file:/out/S{s}.bam#sha256:{}",
                sha(&format!("/out/S{s}.bam"))
            ),
            format!(
                "dataset:file:/out/S{s}.vcf.gz#sha256:{}",
                sha(&format!("/out/S{s}.vcf.gz"))
            ),
            format!("run:{bwa}"),
            format!("run:{call}"),
        ];
        expected.sort();
        assert_eq!(ids, expected);
    }

    for r in [&mut a, &mut b] {
        let (status, stderr) = r.stop();
        assert!(status.success(), "{stderr}");
        assert!(stderr.contains("prov serve: listening on"), "{stderr}");
        if url.contains("hunter2") {
            assert!(
                !stderr.contains("hunter2") && stderr.contains(":***@"),
                "{stderr}"
            );
        }
    }
    let out = Command::new(PROV)
        .args(["--store", &url, "verify", "--chain"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with(&format!(
            "chain OK: {expected_events} events; head {expected_events}:"
        )),
        "{text}"
    );
}

fn prov(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(PROV).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn prov_store_copy_goes_to_postgres_and_back() {
    let Some(schema) = pg::schema("store_copy") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("prov-store-copy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ndjson = dir.join("events.ndjson");
    std::fs::write(
        &ndjson,
        (0..5).flat_map(sample).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let first = dir.join("first.db").display().to_string();
    let back = dir.join("back.db").display().to_string();
    let (code, _, err) = prov(&["--store", &first, "ingest", ndjson.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = prov(&["store", "copy", &first, &schema.url]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("copied 20 events from "), "{out}");
    let (code, back_out, err) = prov(&["store", "copy", &schema.url, &back]);
    assert_eq!(code, 0, "{err}");
    // The same head on every side: a faithful copy reproduces the links.
    let head = |text: &str| text.rsplit_once("head ").unwrap().1.trim().to_owned();
    assert_eq!(head(&out), head(&back_out));
    let lineage = |store: &str| {
        prov(&[
            "--store",
            store,
            "lineage",
            "dataset:file:/out/S3.vcf.gz",
            "--format",
            "json",
        ])
    };
    let (code, original, err) = lineage(&first);
    assert_eq!(code, 0, "{err}");
    assert!(original.contains("/data/S3.fastq.gz"), "{original}");
    assert_eq!(lineage(&schema.url).1, original);
    assert_eq!(lineage(&back).1, original);

    // A destination that holds events is refused, clearly.
    let (code, _, err) = prov(&["store", "copy", &first, &schema.url]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already holds 20 events"), "{err}");
    // A broken source chain is refused (exit 1), and leaves no new file behind.
    schema
        .client()
        .batch_execute(
            "ALTER TABLE event DISABLE TRIGGER USER; UPDATE event SET link = repeat('0', 64) WHERE seq = 7;",
        )
        .unwrap();
    let fresh = dir.join("fresh.db");
    let (code, _, err) = prov(&["store", "copy", &schema.url, fresh.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("position 7") && err.contains("nothing was copied"),
        "{err}"
    );
    assert!(!fresh.exists());
    // A missing source file is not silently created.
    let (code, _, err) = prov(&[
        "store",
        "copy",
        &dir.join("nope.db").display().to_string(),
        &back,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no store at"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reading_commands_create_no_store_in_a_database_that_holds_none() {
    let Some(schema) = pg::schema("holds_none") else {
        return;
    };
    schema
        .client()
        .batch_execute("CREATE TABLE customers (id int)")
        .unwrap();
    for args in [&["verify", "--chain"][..], &["audit", "runs"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_prov"))
            .arg("--store")
            .arg(&schema.url)
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("no prov store in the database"), "{stderr}");
    }
    let tables: i64 = schema
        .client()
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1",
            &[&schema.name],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "only the database's own table");
}

#[test]
fn the_demo_runs_on_a_postgresql_store() {
    let Some(schema) = pg::schema("demo") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("prov demo pg {}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_prov"))
        .arg("--store")
        .arg(&schema.url)
        .arg("demo")
        .arg("--dir")
        .arg(&dir)
        .env("HOME", &dir)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env_remove("PROV_STORE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("chain OK"), "{stdout}");
    // The next commands name the store as it is, quoted for a shell.
    assert!(stdout.contains("prov --store 'postgres://"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
