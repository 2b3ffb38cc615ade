//! Tampering with a store file behind its back is detected at the right
//! position; a file from a newer prov, or not a store at all, is refused clearly.

mod temp;

use std::path::Path;
use temp::TempStore;

use provenance_core::{Event, EventType, Job, Run, RunEvent, RunId};
use provenance_store::{Store, StoreError};
use rusqlite::Connection;

/// A store with ten events, closed again.
/// `count` run events of a new run each, of jobs `{job}0`, `{job}1`, ...
fn run_events(count: usize, kind: EventType, job: &str) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let event = RunEvent::new(
                kind.clone(),
                Run::new(RunId::new_v7()),
                Job::new("ns", format!("{job}{i}")),
            );
            Event::Run(event).to_json().into_bytes()
        })
        .collect()
}

/// The bytes of the first `limit` stored events, in order.
fn stored(store: &Store, limit: u64) -> Vec<Vec<u8>> {
    let page = store
        .events(provenance_store::Page { offset: 0, limit })
        .unwrap();
    page.items.into_iter().map(|(_, raw)| raw).collect()
}

fn filled(name: &str) -> TempStore {
    let t = TempStore::new(name);
    let store = Store::open(t.path()).unwrap();
    for event in run_events(10, EventType::Complete, "job") {
        store.ingest(&event).unwrap();
    }
    assert!(store.verify_chain().unwrap().broken.is_none());
    t
}

/// Opens the file directly, as an attacker with write access would, and
/// removes the append-only triggers first.
fn tamper(path: &Path, sql: &str) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("DROP TRIGGER event_no_update; DROP TRIGGER event_no_delete;")
        .unwrap();
    conn.execute_batch(sql).unwrap();
}

fn broken_at(t: &TempStore) -> (u64, String) {
    let report = Store::open(t.path()).unwrap().verify_chain().unwrap();
    let b = report.broken.expect("the tampering is detected");
    (b.position, b.reason)
}

/// A store of 1,200 events in batches of 100: past the 256 after which it
/// trains its dictionary, so the later ones are stored compressed.
fn compressed(name: &str) -> TempStore {
    let t = TempStore::new(name);
    let store = Store::open(t.path()).unwrap();
    let events = run_events(1200, EventType::Complete, "job");
    for batch in events.chunks(100) {
        let raws: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        store.ingest_batch(&raws).unwrap();
    }
    assert!(store.verify_chain().unwrap().broken.is_none());
    // Every event reads back as the bytes sent, compressed or not.
    let back = stored(&store, 2000);
    assert_eq!(back.len(), 1200);
    for (raw, sent) in back.iter().zip(&events) {
        assert_eq!(raw, sent);
    }
    drop(store);
    let conn = Connection::open(&t.0).unwrap();
    let (plain, packed): (i64, i64) = conn
        .query_row(
            "SELECT SUM(codec = 0), SUM(codec <> 0) FROM event",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        plain >= 256 && packed >= 500,
        "{plain} plain, {packed} compressed"
    );
    t
}

#[test]
fn a_second_handle_opened_before_the_dictionary_reads_compressed_events() {
    // As `prov serve` does: one handle writes, another (opened first) reads.
    let t = TempStore::new("packed-reader");
    let reader = Store::open(t.path()).unwrap();
    let writer = Store::open(t.path()).unwrap();
    let sent = run_events(1000, EventType::Start, "job");
    for batch in sent.chunks(100) {
        let raws: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        writer.ingest_batch(&raws).unwrap();
    }
    assert_eq!(stored(&reader, 1000), sent);
    assert!(reader.verify_chain().unwrap().broken.is_none());
    let packed: i64 = Connection::open(&t.0)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM event WHERE codec <> 0", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(packed >= 400, "{packed} compressed");
}

#[test]
fn a_changed_byte_of_a_compressed_event_is_detected_at_its_position() {
    let t = compressed("packed-byte");
    // Flip one bit in the middle of event 1,000's compressed bytes.
    let conn = Connection::open(&t.0).unwrap();
    let mut packed: Vec<u8> = conn
        .query_row(
            "SELECT raw FROM event WHERE seq = 1000 AND codec <> 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let middle = packed.len() / 2;
    packed[middle] ^= 0x10;
    conn.execute_batch("DROP TRIGGER event_no_update;").unwrap();
    conn.execute("UPDATE event SET raw = ?1 WHERE seq = 1000", [&packed])
        .unwrap();
    drop(conn);
    let (position, reason) = broken_at(&t);
    assert_eq!(position, 1000, "{reason}");
}

#[test]
fn a_changed_dictionary_is_detected_at_the_first_event_it_compressed() {
    let t = compressed("packed-dictionary");
    let first: i64 = Connection::open(&t.0)
        .unwrap()
        .query_row("SELECT MIN(seq) FROM event WHERE codec <> 0", [], |r| {
            r.get(0)
        })
        .unwrap();
    let conn = Connection::open(&t.0).unwrap();
    conn.execute_batch(
        "DROP TRIGGER dictionary_no_update;
         UPDATE dictionary SET bytes = zeroblob(length(bytes));",
    )
    .unwrap();
    drop(conn);
    let (position, reason) = broken_at(&t);
    assert_eq!(position, first as u64, "{reason}");
    // Reading such an event is a clear error, not a panic or wrong bytes.
    let err = Store::open(t.path())
        .unwrap()
        .events(provenance_store::Page {
            offset: first as u64 - 1,
            limit: 1,
        })
        .unwrap_err();
    assert!(err.to_string().contains("check the chain"), "{err}");
}

#[test]
fn changing_one_byte_is_detected_at_its_position() {
    let t = filled("byte");
    // Flip one character inside event 4's JSON (the job name's digit).
    tamper(
        &t.0,
        "UPDATE event SET raw = CAST(replace(CAST(raw AS TEXT), '\"job3\"', '\"job9\"') AS BLOB) WHERE seq = 4;",
    );
    let (position, reason) = broken_at(&t);
    assert_eq!(position, 4);
    assert!(reason.contains("altered"), "{reason}");
}

#[test]
fn an_altered_codec_is_detected_at_its_position() {
    let t = filled("codec");
    // The bytes are plain and unchanged; only how to read them is altered,
    // so no command can read the event back.
    tamper(&t.0, "UPDATE event SET codec = 99 WHERE seq = 5;");
    let (position, reason) = broken_at(&t);
    assert_eq!(position, 5);
    assert!(reason.contains("altered"), "{reason}");
}

#[test]
fn deleting_a_row_is_detected_at_its_position() {
    let t = filled("delete");
    tamper(&t.0, "DELETE FROM event WHERE seq = 6;");
    let (position, reason) = broken_at(&t);
    assert_eq!(position, 6);
    assert!(reason.contains("missing"), "{reason}");
}

#[test]
fn swapping_two_rows_is_detected_at_the_first() {
    let t = filled("swap");
    tamper(
        &t.0,
        "UPDATE event SET seq = -3 WHERE seq = 3;
         UPDATE event SET seq = 3 WHERE seq = 7;
         UPDATE event SET seq = 7 WHERE seq = -3;",
    );
    let (position, _) = broken_at(&t);
    assert_eq!(position, 3);
}

#[test]
fn rewriting_the_link_alone_is_detected() {
    let t = filled("link");
    tamper(
        &t.0,
        "UPDATE event SET link = lower(hex(randomblob(32))) WHERE seq = 9;",
    );
    assert_eq!(broken_at(&t).0, 9);
}

#[test]
fn a_column_given_a_value_of_another_type_is_a_break_at_its_position() {
    for (name, sql, position) in [
        (
            "link-bytes",
            "UPDATE event SET link = CAST(x'ff00ff' AS TEXT) WHERE seq = 5;",
            5,
        ),
        (
            "link-blob",
            "UPDATE event SET link = x'ffee' WHERE seq = 5;",
            5,
        ),
        ("raw-number", "UPDATE event SET raw = 42 WHERE seq = 2;", 2),
        // Not a position 2^64 - 2 events away.
        (
            "seq-negative",
            "UPDATE event SET seq = -1 WHERE seq = 1;",
            1,
        ),
    ] {
        let t = filled(name);
        tamper(&t.0, sql);
        let report = Store::open(t.path()).unwrap().verify_chain().unwrap();
        let b = report
            .broken
            .unwrap_or_else(|| panic!("{name}: not detected"));
        assert_eq!(b.position, position, "{name}: {}", b.reason);
        assert!(
            !b.reason.contains("18446744073709551"),
            "{name}: {}",
            b.reason
        );
        assert_eq!(report.head, None, "{name}: a broken chain has no anchor");
    }
}

#[test]
fn the_anchor_is_the_last_link_checked() {
    let t = filled("anchor");
    let store = Store::open(t.path()).unwrap();
    let report = store.verify_chain().unwrap();
    assert_eq!(report.events, 10);
    assert_eq!(report.head, store.head().unwrap());
    assert!(report.head.unwrap().starts_with("10:"));
}

#[test]
fn the_log_refuses_updates_and_deletes_through_sql() {
    let t = filled("triggers");
    let conn = Connection::open(&t.0).unwrap();
    let err = conn
        .execute("DELETE FROM event WHERE seq = 1", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = conn
        .execute("UPDATE event SET raw = x'00' WHERE seq = 1", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[test]
fn a_store_from_a_newer_prov_is_refused() {
    let t = filled("newer");
    Connection::open(&t.0)
        .unwrap()
        .pragma_update(None, "user_version", 7)
        .unwrap();
    let err = Store::open(t.path()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 7,
                supported: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .ends_with("its schema 7 is newer than this prov (3): upgrade prov"),
        "{err}"
    );
}

#[test]
fn a_store_of_schema_1_is_upgraded_and_keeps_its_chain() {
    let t = TempStore::new("schema1");
    let sent = run_events(3, EventType::Start, "old");
    {
        // What a prov of schema 1 left: its tables, and three chained events.
        let conn = Connection::open(&t.0).unwrap();
        conn.execute_batch(include_str!("../migrations/sqlite/0001_init.sql"))
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let mut previous = provenance_store::chain::GENESIS.to_owned();
        for (i, raw) in sent.iter().enumerate() {
            let seq = i as u64 + 1;
            let link = provenance_store::chain::link(&previous, seq, raw);
            conn.execute(
                "INSERT INTO event (seq, event_id, raw, link, kind, run_id, event_time, received_at)
                 VALUES (?1, ?2, ?3, ?4, 'run', NULL, 0, 0)",
                rusqlite::params![seq as i64, format!("id{seq}"), raw, link],
            )
            .unwrap();
            previous = link;
        }
        // And the lineage schema 1 derived from the first: its run read
        // /in and wrote /out.
        let run_id = serde_json::from_slice::<serde_json::Value>(&sent[0]).unwrap()["run"]["runId"]
            .as_str()
            .unwrap()
            .to_owned();
        conn.execute_batch(&format!(
            "DROP TRIGGER event_no_update;
             UPDATE event SET run_id = '{run_id}' WHERE seq = 1;
             CREATE TRIGGER event_no_update BEFORE UPDATE ON event
             BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
             INSERT INTO job (id, namespace, name) VALUES (1, 'ns', 'old0');
             INSERT INTO run (run_id, job_id, state, first_seen) VALUES ('{run_id}', 1, 'START', 0);
             INSERT INTO dataset (id, namespace, name) VALUES (1, 'file', '/in'), (2, 'file', '/out');
             INSERT INTO dataset_version (id, dataset_id, version, digest, created_at) VALUES
                 (1, 1, 'sha256:{a}', '{a}', 0), (2, 2, 'sha256:{b}', '{b}', 0);
             INSERT INTO run_input (run_id, version_id, event_time) VALUES ('{run_id}', 1, 0);
             INSERT INTO run_output (run_id, version_id, event_time) VALUES ('{run_id}', 2, 0);",
            a = "a".repeat(64),
            b = "b".repeat(64),
        ))
        .unwrap();
    }
    let store = Store::open(t.path()).unwrap();
    let report = store.verify_chain().unwrap();
    assert!(report.broken.is_none(), "{report:?}");
    assert_eq!(report.events, 3);
    // The derived lineage came across (runs now keyed by integer).
    let graph = store
        .lineage(&provenance_store::LineageQuery {
            target: provenance_store::Target::Digest("b".repeat(64)),
            direction: provenance_store::Direction::Upstream,
            depth: 5,
            as_of: None,
        })
        .unwrap();
    let ids = graph.ids();
    assert!(
        ids.contains(&format!("dataset:file:/in#sha256:{}", "a".repeat(64)).as_str()),
        "{ids:?}"
    );
    assert!(ids.iter().any(|id| id.starts_with("run:")), "{ids:?}");
    assert_eq!(stored(&store, 10), sent);
    let version: i64 = Connection::open(&t.0)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3);
}

#[test]
fn a_file_that_is_not_a_store_is_a_clear_error_and_left_alone() {
    let t = TempStore::new("garbage");
    let garbage = b"FASTQ? no: this is not a database".repeat(200);
    std::fs::write(&t.0, &garbage).unwrap();
    let err = Store::open(t.path()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("open store at {}", t.path())),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&t.0).unwrap(),
        garbage,
        "the file is not modified"
    );
}

#[test]
fn a_database_of_something_else_is_refused_and_left_alone() {
    let t = TempStore::new("foreign");
    let conn = Connection::open(&t.0).unwrap();
    conn.execute_batch(
        "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO customers(name) VALUES ('Ada');",
    )
    .unwrap();
    drop(conn);
    let before = std::fs::read(&t.0).unwrap();
    let err = Store::open(t.path()).unwrap_err();
    assert!(err.to_string().contains("something else"), "{err}");
    assert!(
        std::fs::read(&t.0).unwrap() == before,
        "the file is not modified"
    );
    let conn = Connection::open(&t.0).unwrap();
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 1);
}

#[test]
fn a_store_opened_read_only_answers_and_is_never_written() {
    let t = filled("readonly");
    let before = std::fs::read(&t.0).unwrap();
    let store = Store::open_read_only(t.path()).unwrap();
    let report = store.verify_chain().unwrap();
    assert_eq!((report.events, report.broken), (10, None));
    assert_eq!(stored(&store, 1).len(), 1);
    // A write is an error, not a panic, and changes nothing.
    assert!(
        store
            .ingest(&run_events(1, EventType::Start, "late")[0])
            .is_err()
    );
    drop(store);
    assert!(
        std::fs::read(&t.0).unwrap() == before,
        "the file is not modified"
    );
    // Not a store: refused by name.
    let empty = TempStore::new("readonly-empty");
    Connection::open(&empty.0)
        .unwrap()
        .execute_batch("VACUUM")
        .unwrap();
    let err = Store::open_read_only(empty.path()).unwrap_err();
    assert!(err.to_string().contains("not a prov store"), "{err}");
}

#[test]
fn a_truncated_store_is_a_clear_error() {
    let t = filled("truncated");
    let bytes = std::fs::read(&t.0).unwrap();
    // Checkpointed? Ensure the main file has content, then cut it in half.
    std::fs::write(&t.0, &bytes[..bytes.len() / 2]).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", t.path()));
    }
    match Store::open(t.path()) {
        Err(e) => assert!(e.to_string().contains(t.path()), "{e}"),
        Ok(store) => {
            // SQLite may open a cut file; reading it must then fail clearly, not panic.
            let result = store.verify_chain();
            assert!(result.is_err() || result.unwrap().broken.is_some());
        }
    }
}

/// A store read without locks (as another user reads one at rest) tells
/// when it was written while it was read, so that a check does not report
/// as tampering what a concurrent write made it read.
#[test]
fn a_store_read_without_locks_tells_when_it_was_written_meanwhile() {
    let t = TempStore::new("changed-while-read");
    let owner = Store::open(t.path()).unwrap();
    owner
        .ingest(&run_events(1, EventType::Complete, "first")[0])
        .unwrap();
    drop(owner);
    let guest = Store::open_read_only_as_guest(t.path()).unwrap();
    assert!(guest.verify_chain().unwrap().broken.is_none());
    assert!(!guest.changed_while_read());
    let owner = Store::open(t.path()).unwrap();
    owner
        .ingest(&run_events(1, EventType::Complete, "second")[0])
        .unwrap();
    drop(owner);
    assert!(guest.changed_while_read());
    // A store read with its locks never needs to ask.
    let shared = Store::open_read_only(t.path()).unwrap();
    assert!(!shared.changed_while_read());
}
