//! Story: the HTTP transport never loses an event. The receiver dies in the
//! middle of a run and comes back; an emitting process is SIGKILLed while the
//! receiver is down, and the next process delivers its spool.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use provenance_core::transport::{HttpOptions, HttpTransport, Transport};
use provenance_tests::{Receiver, numbered_event};
use serde_json::Value;

fn spool(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prov-spool-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Checks that `events` hold each (run, index) of `runs` x `per_run` exactly
/// once after removing exact duplicates (a receiver deduplicating by event
/// identity), and that each run's events arrived in order.
fn check_delivery(events: &[Value], runs: usize, per_run: usize) {
    let mut unique: Vec<&Value> = Vec::new();
    let mut seen = BTreeSet::new();
    for e in events {
        if seen.insert(e.to_string()) {
            unique.push(e);
        }
    }
    assert_eq!(
        unique.len(),
        runs * per_run,
        "{} unique events of {} received",
        unique.len(),
        events.len()
    );
    let mut order: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in unique {
        let run = e["run"]["runId"].as_str().unwrap().to_owned();
        order
            .entry(run)
            .or_default()
            .push(e["run"]["facets"]["prov_test"]["index"].as_u64().unwrap());
    }
    assert_eq!(order.len(), runs);
    for (run, indexes) in order {
        let expected: Vec<u64> = (0..per_run as u64).collect();
        assert_eq!(indexes, expected, "run {run} out of order");
    }
}

#[test]
fn a_receiver_killed_mid_run_gets_all_1000_events_once_and_in_order() {
    let port = Receiver::free_port();
    // It dies without answering after 300 requests.
    let mut receiver = Receiver::start(port, Some(300));
    let dir = spool("midrun");
    let mut options = HttpOptions::new(receiver.url(), dir.clone());
    options.timeout = Duration::from_millis(500);
    options.max_backoff = Duration::from_millis(200);
    let transport = HttpTransport::start(options).unwrap();
    for i in 0..100 {
        for r in 0..10 {
            transport.emit(&numbered_event("midrun", r, i)).unwrap();
        }
    }
    receiver.wait_stopped();
    let received_before = receiver.events.lock().unwrap().len();
    assert!(received_before <= 300, "{received_before}");
    // The receiver is down: nothing is lost, it waits in the spool.
    let err = transport.flush(Duration::from_millis(300)).unwrap_err();
    assert!(err.to_string().contains("still waiting"), "{err}");
    let receiver = receiver.restart(None);
    transport.flush(Duration::from_secs(60)).unwrap();
    let events = receiver.events.lock().unwrap().clone();
    check_delivery(&events, 10, 100);
    drop(transport);
    // Delivered spools are removed.
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_process_killed_while_the_receiver_is_down_is_delivered_by_the_next() {
    let port = Receiver::free_port(); // nothing listens there yet
    let dir = spool("sigkill");
    let url = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_emitter"))
        .args([dir.to_str().unwrap(), &url, "4", "50"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "EMITTED");
    child.kill().unwrap(); // SIGKILL: no flush, no drop
    child.wait().unwrap();

    let receiver = Receiver::start(port, None);
    let next = HttpTransport::start(HttpOptions::new(receiver.url(), dir.clone())).unwrap();
    next.flush(Duration::from_secs(60)).unwrap();
    check_delivery(&receiver.events.lock().unwrap(), 4, 50);
    drop(next);
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_receiver_that_refuses_an_event_for_good_does_not_block_the_rest() {
    // A 400 answer sets the event aside (never dropped), and delivery goes on.
    let port = Receiver::free_port();
    let dir = spool("refused");
    let server = tiny_http::Server::http(("127.0.0.1", port)).unwrap();
    let mut options = HttpOptions::new(format!("http://127.0.0.1:{port}"), dir.clone());
    options.timeout = Duration::from_secs(2);
    let transport = HttpTransport::start(options).unwrap();
    for i in 0..3 {
        transport.emit(&numbered_event("refused", 0, i)).unwrap();
    }
    for i in 0..3 {
        let request = server
            .recv_timeout(Duration::from_secs(10))
            .unwrap()
            .unwrap();
        let status = if i == 1 { 400 } else { 201 };
        request.respond(tiny_http::Response::empty(status)).unwrap();
    }
    transport.flush(Duration::from_secs(10)).unwrap();
    let spool_file = transport.spool_file();
    let rejected = std::fs::read_to_string(format!("{}.rejected", spool_file.display())).unwrap();
    assert_eq!(rejected.lines().count(), 1);
    assert!(rejected.contains("HTTP 400"), "{rejected}");
    assert!(rejected.contains("\\\"index\\\":1"), "{rejected}");
    drop(transport);
    let _ = std::fs::remove_dir_all(&dir);
}
