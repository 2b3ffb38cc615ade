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
    // The flush says that one was set aside, and where.
    let err = transport.flush(Duration::from_secs(10)).unwrap_err();
    assert!(
        err.to_string().contains("1 event(s) refused for good"),
        "{err}"
    );
    transport.flush(Duration::from_secs(10)).unwrap();
    let spool_file = transport.spool_file();
    let rejected = std::fs::read_to_string(format!("{}.rejected", spool_file.display())).unwrap();
    assert_eq!(rejected.lines().count(), 1);
    assert!(rejected.contains("HTTP 400"), "{rejected}");
    assert!(rejected.contains("\\\"index\\\":1"), "{rejected}");
    drop(transport);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn events_left_for_one_server_are_delivered_to_it_and_never_to_another() {
    let dir = spool("destinations");
    let a_port = Receiver::free_port(); // down for now
    let mut options = HttpOptions::new(format!("http://127.0.0.1:{a_port}"), dir.clone());
    options.drop_wait = Duration::from_millis(100);
    options.timeout = Duration::from_millis(200);
    let to_a = HttpTransport::start(options).unwrap();
    for i in 0..5 {
        to_a.emit(&numbered_event("for-a", 0, i)).unwrap();
    }
    drop(to_a); // A is down: the events stay in the spool

    // Another process sending to B, with the same spool folder.
    let b = Receiver::start(Receiver::free_port(), None);
    let to_b = HttpTransport::start(HttpOptions::new(b.url(), dir.clone())).unwrap();
    for i in 0..3 {
        to_b.emit(&numbered_event("for-b", 0, i)).unwrap();
    }
    to_b.flush(Duration::from_secs(30)).unwrap();
    drop(to_b);
    check_delivery(&b.events.lock().unwrap(), 1, 3);
    assert!(
        b.events
            .lock()
            .unwrap()
            .iter()
            .all(|e| e["job"]["name"] == "for-b-0"),
        "B received events meant for A"
    );

    // A comes back: a later process sending to A delivers what was left.
    let a = Receiver::start(a_port, None);
    let later = HttpTransport::start(HttpOptions::new(a.url(), dir.clone())).unwrap();
    later.flush(Duration::from_secs(30)).unwrap();
    drop(later);
    check_delivery(&a.events.lock().unwrap(), 1, 5);
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_batch_too_large_for_the_server_is_split_and_an_event_over_4_mib_is_sent() {
    let dir = spool("split");
    // 16 KiB: a batch of 100 events (about 50 KB) is refused with 413.
    let limited = Receiver::start_limited(Receiver::free_port(), 16 << 10);
    let mut options = HttpOptions::new(limited.url(), dir.clone());
    options.endpoint = "api/v1/lineage/batch".into();
    let transport = HttpTransport::start(options).unwrap();
    for i in 0..100 {
        for r in 0..3 {
            transport.emit(&numbered_event("split", r, i)).unwrap();
        }
    }
    transport.flush(Duration::from_secs(30)).unwrap();
    let rejected = format!("{}.rejected", transport.spool_file().display());
    drop(transport);
    check_delivery(&limited.events.lock().unwrap(), 3, 100);
    assert!(
        !std::path::Path::new(&rejected).exists(),
        "events set aside"
    );

    // One event of 5 MiB, beyond what the spool reads at a time.
    let receiver = Receiver::start(Receiver::free_port(), None);
    let transport = HttpTransport::start(HttpOptions::new(receiver.url(), dir.clone())).unwrap();
    let mut big = numbered_event("big", 0, 0);
    let provenance_core::Event::Run(run) = &mut big else {
        unreachable!()
    };
    run.run.facets.insert_raw(
        "padding",
        serde_json::json!({"_producer": "test", "_schemaURL": "https://example.org/x.json", "text": "x".repeat(5 << 20)}),
    );
    transport.emit(&big).unwrap();
    transport.emit(&numbered_event("big", 0, 1)).unwrap();
    transport.flush(Duration::from_secs(30)).unwrap();
    drop(transport);
    check_delivery(&receiver.events.lock().unwrap(), 1, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the `torn` helper: how many events it says were accepted.
fn torn(args: &[&str]) -> usize {
    let out = Command::new(env!("CARGO_BIN_EXE_torn"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_write_that_fails_part_way_never_merges_two_events() {
    let dir = spool("torn");
    std::fs::create_dir_all(&dir).unwrap();
    // The file transport: the torn line is left (the file is shared), the
    // next event starts a line of its own.
    let file = dir.join("events.ndjson");
    let accepted = torn(&["file", file.to_str().unwrap()]);
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let parsed = lines
        .iter()
        .filter(|l| serde_json::from_str::<Value>(l).is_ok())
        .count();
    assert_eq!(parsed, accepted, "{lines:?}");
    assert!(lines.len() - parsed <= 1, "one torn line at most");
    for last in &lines[lines.len() - 2..] {
        assert!(serde_json::from_str::<Value>(last).is_ok(), "{last}");
    }

    // The HTTP transport's spool: the torn bytes are cut off, and a later
    // process delivers exactly the accepted events, none set aside.
    let port = Receiver::free_port(); // down while the helper runs
    let url = format!("http://127.0.0.1:{port}");
    let spool_dir = dir.join("spool");
    let accepted = torn(&["http", spool_dir.to_str().unwrap(), &url]);
    let receiver = Receiver::start(port, None);
    let next = HttpTransport::start(HttpOptions::new(receiver.url(), spool_dir.clone())).unwrap();
    next.flush(Duration::from_secs(30)).unwrap();
    drop(next);
    assert_eq!(receiver.events.lock().unwrap().len(), accepted);
    let left: Vec<_> = std::fs::read_dir(&spool_dir).unwrap().collect();
    assert!(left.is_empty(), "nothing set aside or left: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_spool_file_of_an_earlier_version_is_still_delivered() {
    // Earlier versions kept spool files in the spool folder itself.
    let dir = spool("legacy");
    std::fs::create_dir_all(&dir).unwrap();
    let mut line = numbered_event("legacy", 0, 0).to_json();
    line.push('\n');
    let legacy = dir.join("01900000-0000-7000-8000-000000000000.ndjson");
    std::fs::write(&legacy, line).unwrap();
    let receiver = Receiver::start(Receiver::free_port(), None);
    let transport = HttpTransport::start(HttpOptions::new(receiver.url(), dir.clone())).unwrap();
    transport.flush(Duration::from_secs(30)).unwrap();
    drop(transport);
    check_delivery(&receiver.events.lock().unwrap(), 1, 1);
    assert!(!legacy.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
