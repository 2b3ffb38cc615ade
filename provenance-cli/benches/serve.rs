//! Load test of `prov serve` on loopback: 8 concurrent clients send single
//! events, then batches of 100, for a bounded time each; prints sustained
//! events/s, p50 and p99 request latency, and errors.
//!
//! Run with `cargo bench -p provenance-cli --bench serve` (about 45 s).
//! Targets on a 2-core machine: >= 5,000 events/s as single events, >= 30,000
//! events/s through batches, zero errors. Run ids are UUIDv7 made as the
//! events are sent, as OpenLineage producers make them;
//! `PROV_BENCH_RANDOM_IDS=1` sends random (v4-shaped) ids instead.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use provenance_core::facets::*;
use provenance_core::{Event, EventType, InputDataset, Job, OutputDataset, Run, RunEvent, RunId};

const CLIENTS: usize = 8;
const PHASE: Duration = Duration::from_secs(20);

fn event(client: usize, i: u64) -> String {
    let time = chrono::DateTime::from_timestamp(1_760_000_000, 0).unwrap();
    let id = RunId::static_v7(time, format!("{client}/{i}").as_bytes());
    let mut run = Run::new(id);
    run.facets.set(
        &ProvContainerRunFacet::new(
            "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8",
            ContainerRuntime::Docker,
        )
        .unwrap(),
    );
    let params = serde_json::json!({"threads": 8, "sample": format!("S{i}")});
    run.facets
        .set(&ProvParametersRunFacet::new(params.as_object().unwrap().clone()).unwrap());
    let mut e = RunEvent::new(
        EventType::Complete,
        run,
        Job::new("load", format!("client{client}")),
    );
    let hex = format!("{:064x}", i);
    let mut input = InputDataset::new("file", format!("/data/{client}/{i}.fastq"));
    input
        .facets
        .set(&ProvChecksumDatasetFacet::file(100, hex.clone()));
    let mut output = OutputDataset::new("file", format!("/out/{client}/{i}.bam"));
    output.facets.set(&ProvChecksumDatasetFacet::file(100, hex));
    e.inputs = Some(vec![input]);
    e.outputs = Some(vec![output]);
    Event::Run(e).to_json()
}

fn template_run_id(json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["run"]["runId"].as_str().unwrap().to_owned()
}

fn main() {
    let dir = std::env::temp_dir().join(format!("prov-serve-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_prov"))
        .arg("--store")
        .arg(dir.join("prov.db"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::blocking::get(format!("{base}/healthz")).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "{CLIENTS} clients, {} s per phase, event of {} bytes",
        PHASE.as_secs(),
        event(0, 0).len()
    );
    for batch in [1usize, 100] {
        let endpoint = if batch == 1 {
            "/api/v1/lineage"
        } else {
            "/api/v1/lineage/batch"
        };
        let errors = AtomicU64::new(0);
        let sent = AtomicU64::new(0);
        let phase_start = Instant::now();
        let latencies: Vec<Vec<Duration>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..CLIENTS)
                .map(|c| {
                    let (errors, sent, url) = (&errors, &sent, format!("{base}{endpoint}"));
                    scope.spawn(move || {
                        let client = reqwest::blocking::Client::new();
                        // One event built once; each copy gets its own run id
                        // (same length), so the clients cost little CPU. The
                        // ids are UUIDv7 of the time they are made, as
                        // OpenLineage producers make them.
                        let template = event(c, 0);
                        let template_id = template_run_id(&template);
                        // PROV_BENCH_RANDOM_IDS=1: random (v4) ids, as some
                        // older producers make them, for comparison.
                        let random = std::env::var_os("PROV_BENCH_RANDOM_IDS").is_some();
                        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ (c as u64 + 1) << 32;
                        let mut stamp = |_: u64| {
                            let id = if random {
                                let mut word = || {
                                    state ^= state << 13;
                                    state ^= state >> 7;
                                    state ^= state << 17;
                                    state
                                };
                                let (a, b) = (word(), word());
                                format!(
                                    "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                                    a >> 32,
                                    (a >> 16) & 0xffff,
                                    a & 0xfff,
                                    0x8000 | (b >> 48) & 0x3fff,
                                    b & 0xffff_ffff_ffff
                                )
                            } else {
                                RunId::new_v7().to_string()
                            };
                            template.replacen(&template_id, &id, 1)
                        };
                        let mut lat = Vec::new();
                        let mut i = (batch as u64) * 1_000_000_000;
                        while phase_start.elapsed() < PHASE {
                            let body = if batch == 1 {
                                i += 1;
                                stamp(i)
                            } else {
                                let events: Vec<String> = (0..batch)
                                    .map(|_| {
                                        i += 1;
                                        stamp(i)
                                    })
                                    .collect();
                                format!("[{}]", events.join(","))
                            };
                            let t = Instant::now();
                            let ok = client
                                .post(&url)
                                .header("Content-Type", "application/json")
                                .body(body)
                                .send()
                                .is_ok_and(|r| r.status().is_success());
                            lat.push(t.elapsed());
                            if ok {
                                sent.fetch_add(batch as u64, Ordering::Relaxed);
                            } else {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        lat
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let elapsed = phase_start.elapsed().as_secs_f64();
        let mut all: Vec<Duration> = latencies.into_iter().flatten().collect();
        all.sort();
        let pct = |p: f64| {
            all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0
        };
        let rate = sent.load(Ordering::Relaxed) as f64 / elapsed;
        let target = if batch == 1 { 5_000.0 } else { 30_000.0 };
        println!(
            "{}: {rate:>8.0} events/s (target >= {target:.0}), p50 {:.2} ms, p99 {:.2} ms per request, {} errors",
            if batch == 1 {
                "single events "
            } else {
                "batches of 100"
            },
            pct(0.50),
            pct(0.99),
            errors.load(Ordering::Relaxed)
        );
    }
    let pid = nix::unistd::Pid::from_raw(server.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
