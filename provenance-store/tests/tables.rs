//! The tables the queries read are checked against the events they derive
//! from: an edit there, which the hash chain cannot see, is found and named
//! (table, row, column), on SQLite and on PostgreSQL; an untouched store
//! matches.

mod pg;
mod temp;

use std::path::{Path, PathBuf};
use temp::TempStore;

use provenance_core::facets::{ParentRunFacet, ProvChecksumDatasetFacet};
use provenance_core::{
    DatasetEvent, Event, EventType, InputDataset, Job, JobEvent, OutputDataset, Run, RunEvent,
    RunId,
};
use provenance_store::tables::Mismatch;
use provenance_store::*;
use rusqlite::Connection;

fn digest(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn dataset_in(name: &str, content: Option<u8>) -> InputDataset {
    let mut d = InputDataset::new("file", name);
    if let Some(n) = content {
        let c = ProvChecksumDatasetFacet::file(100 + u64::from(n), digest(n));
        d.facets.set(&c.version_facet().unwrap());
        d.facets.set(&c);
    }
    d
}

fn dataset_out(name: &str, content: u8) -> OutputDataset {
    let mut d = OutputDataset::new("file", name);
    let c = ProvChecksumDatasetFacet::file(100 + u64::from(content), digest(content));
    d.facets.set(&c.version_facet().unwrap());
    d.facets.set(&c);
    d
}

/// A pipeline's events: a parent run; align (START, COMPLETE) reading a FASTQ
/// and writing a BAM; call (FAIL) reading the BAM by name only (its latest
/// version); the BAM written again twice (contents 2, 4, 2); a dataset event
/// and a job event.
fn events() -> Vec<Vec<u8>> {
    let root = RunId::new_v7();
    let mut out = Vec::new();
    let mut push = |e: Event| out.push(e.to_json().into_bytes());
    push(Event::Run(RunEvent::new(
        EventType::Start,
        Run::new(root),
        Job::new("genomics", "wgs"),
    )));
    let step = |job: &str, kind: EventType, id: RunId| {
        let mut run = Run::new(id);
        run.facets.set(&ParentRunFacet::new(
            root,
            provenance_core::facets::JobRef::new("genomics", "wgs"),
        ));
        RunEvent::new(kind, run, Job::new("genomics", job))
    };
    let align = RunId::new_v7();
    let mut e = step("align", EventType::Start, align);
    e.inputs = Some(vec![dataset_in("/data/S1.fastq.gz", Some(1))]);
    push(Event::Run(e));
    let mut e = step("align", EventType::Complete, align);
    e.inputs = Some(vec![dataset_in("/data/S1.fastq.gz", Some(1))]);
    e.outputs = Some(vec![dataset_out("/out/S1.bam", 2)]);
    push(Event::Run(e));
    let mut e = step("call", EventType::Fail, RunId::new_v7());
    e.inputs = Some(vec![dataset_in("/out/S1.bam", None)]);
    e.outputs = Some(vec![dataset_out("/out/S1.vcf", 3)]);
    push(Event::Run(e));
    for content in [4, 2] {
        let mut e = step("align", EventType::Complete, RunId::new_v7());
        e.outputs = Some(vec![dataset_out("/out/S1.bam", content)]);
        push(Event::Run(e));
    }
    push(Event::Dataset(DatasetEvent::new(
        provenance_core::StaticDataset::new("file", "/ref/GRCh38.fa"),
    )));
    push(Event::Job(JobEvent::new(Job::new("genomics", "qc"))));
    out
}

fn fill(store: &Store) {
    for e in events() {
        store.ingest(&e).unwrap();
    }
}

/// A folder of its own for the check's temporary store.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("prov-tables-scratch-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn check(store: &Store, name: &str) -> TablesReport {
    let folder = scratch(name);
    let report = store.verify_tables(&folder, &mut |_, _| {}).unwrap();
    no_scratch_left(&folder);
    // The chain cannot see these edits: that is what this check is for.
    assert_eq!(store.verify_chain().unwrap().broken, None);
    report
}

fn lines(report: &TablesReport) -> Vec<String> {
    report.differences.iter().map(|d| d.to_string()).collect()
}

/// No temporary store is left behind in `folder`, which is then removed.
fn no_scratch_left(folder: &Path) {
    let left: Vec<_> = std::fs::read_dir(folder).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    std::fs::remove_dir(folder).unwrap();
}

/// A fresh SQLite store with the pipeline, edited with `sql` as someone with
/// write access to the file would (the log's triggers dropped first).
fn sqlite_edited(name: &str, sql: &str) -> (TempStore, TablesReport) {
    let t = TempStore::new(name);
    fill(&Store::open(t.path()).unwrap());
    let conn = Connection::open(&t.0).unwrap();
    conn.execute_batch("DROP TRIGGER event_no_update; DROP TRIGGER event_no_delete;")
        .unwrap();
    conn.execute_batch(sql).unwrap();
    drop(conn);
    let report = check(&Store::open(t.path()).unwrap(), name);
    (t, report)
}

#[test]
fn an_untouched_sqlite_store_matches_its_events() {
    let t = TempStore::new("untouched");
    let store = Store::open(t.path()).unwrap();
    fill(&store);
    let mut seen = Vec::new();
    let folder = scratch("untouched");
    let report = store
        .verify_tables(&folder, &mut |done, total| seen.push((done, total)))
        .unwrap();
    assert!(report.matches(), "{:?}", lines(&report));
    assert_eq!(report.events, 8);
    assert_eq!(seen.last(), Some(&(8, 8)));
    // Every table was read: 8 events, 3 jobs... at least one row of each.
    assert!(report.rows >= 8 + 3 + 4 + 4 + 5 + 2 + 4, "{}", report.rows);
    no_scratch_left(&folder);
}

/// Text SQLite keeps and PostgreSQL would refuse (a NUL, a 3,000-byte name)
/// is derived again in the temporary SQLite store like any other.
#[test]
fn a_sqlite_store_holding_text_postgresql_refuses_still_checks() {
    let t = TempStore::new("odd-text");
    let store = Store::open(t.path()).unwrap();
    fill(&store);
    for (job, name) in [
        ("nul\0job", "/a".to_owned()),
        ("long", format!("/{}", "n".repeat(3000))),
    ] {
        let mut e = RunEvent::new(
            EventType::Complete,
            Run::new(RunId::new_v7()),
            Job::new("ns", job),
        );
        e.outputs = Some(vec![dataset_out(&name, 7)]);
        assert!(matches!(
            store.ingest(&Event::Run(e).to_json().into_bytes()).unwrap(),
            Outcome::Stored { .. }
        ));
    }
    let report = check(&store, "odd-text");
    assert!(report.matches(), "{:?}", lines(&report));
    assert_eq!(report.events, 10);
}

#[test]
fn an_edited_run_state_is_named_with_its_column() {
    let (_t, report) = sqlite_edited(
        "state",
        "UPDATE run SET state = 'COMPLETE', exit_code = 0 WHERE state = 'FAIL'",
    );
    let found = lines(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("run run_id="), "{found:?}");
    assert!(
        found[0].contains("state: stored COMPLETE, from the events FAIL"),
        "{found:?}"
    );
}

#[test]
fn a_removed_input_an_added_output_and_a_changed_digest_are_found() {
    let (_t, report) = sqlite_edited(
        "input",
        "DELETE FROM run_input WHERE run = (SELECT r.id FROM run r JOIN job j ON j.id = r.job_id
             WHERE j.name = 'call');",
    );
    let found = lines(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("run_input run_id=")
            && found[0].contains("name=/out/S1.bam")
            && found[0].ends_with("given by the events, but not stored"),
        "{found:?}"
    );

    let (_t, report) = sqlite_edited(
        "output",
        "INSERT INTO run_output (run, version_id, event_time)
             SELECT r.id, v.id, 1 FROM run r, dataset_version v JOIN dataset d ON d.id = v.dataset_id
             WHERE d.name = '/data/S1.fastq.gz' AND r.id = (SELECT MIN(id) FROM run);",
    );
    let found = lines(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("run_output ") && found[0].ends_with("stored, but no event gives it"),
        "{found:?}"
    );

    let (_t, report) = sqlite_edited(
        "digest",
        &format!(
            "UPDATE dataset_version SET digest = '{}' WHERE digest = '{}'",
            digest(9),
            digest(3)
        ),
    );
    let found = lines(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("dataset_version namespace=file name=/out/S1.vcf")
            && found[0].contains(&format!(
                "digest: stored {}, from the events {}",
                digest(9),
                digest(3)
            )),
        "{found:?}"
    );
}

#[test]
fn an_event_moved_to_another_run_or_time_is_found() {
    let (_t, report) = sqlite_edited(
        "event-run",
        "UPDATE event SET run = (SELECT MIN(id) FROM run), run_id = (SELECT run_id FROM run
             WHERE id = (SELECT MIN(id) FROM run)) WHERE seq = 4",
    );
    let found = lines(&report);
    assert!(
        found
            .iter()
            .any(|l| l.starts_with("event seq=4: run_id: stored ")),
        "{found:?}"
    );

    let (t, report) = sqlite_edited(
        "event-time",
        "UPDATE event SET event_time = 0 WHERE seq = 2",
    );
    assert_eq!(report.differences.len(), 1, "{:?}", lines(&report));
    assert_eq!(report.differences[0].key, "seq=2");
    assert_eq!(
        report.differences[0].mismatch,
        Mismatch::Changed {
            columns: vec![format!(
                "event_time: stored 0, from the events {}",
                event_time(&t, 2)
            )]
        }
    );
}

/// The event time of position `seq` as the events give it.
fn event_time(t: &TempStore, seq: i64) -> i64 {
    let store = Store::open(t.path()).unwrap();
    let raw = &store
        .events(Page {
            offset: seq as u64 - 1,
            limit: 1,
        })
        .unwrap()
        .items[0]
        .1;
    let Event::Run(e) = Event::from_slice(raw).unwrap() else {
        panic!()
    };
    e.event_time.instant().timestamp_micros()
}

#[test]
fn versions_stored_in_another_order_are_found() {
    // Which of two versions created at the same time is the latest follows
    // their order of arrival: renumbering the first BAM version after the
    // others changes it, and the check says so.
    let (_t, report) = sqlite_edited(
        "arrival",
        &format!(
            "PRAGMA foreign_keys = OFF;
             UPDATE dataset_version SET id = id + 1000 WHERE digest = '{}';
             UPDATE run_output SET version_id = version_id + 1000
                 WHERE version_id + 1000 IN (SELECT id FROM dataset_version);
             UPDATE run_input SET version_id = version_id + 1000
                 WHERE version_id + 1000 IN (SELECT id FROM dataset_version);",
            digest(2)
        ),
    );
    let found = lines(&report);
    assert!(
        found.iter().any(|l| l.contains("name=/out/S1.bam")
            && l.contains("arrival: stored 2, from the events 1")),
        "{found:?}"
    );
}

#[test]
fn a_broken_chain_is_refused_before_anything_is_compared() {
    let t = TempStore::new("broken");
    fill(&Store::open(t.path()).unwrap());
    let conn = Connection::open(&t.0).unwrap();
    conn.execute_batch("DROP TRIGGER event_no_update; UPDATE event SET link = 'x' WHERE seq = 3;")
        .unwrap();
    drop(conn);
    let folder = scratch("broken");
    let err = Store::open(t.path())
        .unwrap()
        .verify_tables(&folder, &mut |_, _| {})
        .unwrap_err();
    assert!(matches!(err, StoreError::Integrity { .. }), "{err}");
    assert!(err.to_string().contains("position 3"), "{err}");
    no_scratch_left(&folder);
}

#[test]
fn a_postgres_store_is_checked_the_same_way() {
    let Some(schema) = pg::schema("tables") else {
        return;
    };
    let store = Store::open(&schema.url).unwrap();
    fill(&store);
    let report = check(&store, "pg");
    assert!(report.matches(), "{:?}", lines(&report));
    assert_eq!(report.events, 8);

    let mut c = schema.client();
    c.batch_execute(
        "UPDATE run SET state = 'COMPLETE' WHERE state = 'FAIL';
         DELETE FROM run_input WHERE version_id IN (SELECT v.id FROM dataset_version v
             JOIN dataset d ON d.id = v.dataset_id WHERE d.name = '/out/S1.bam');
         ALTER TABLE event DISABLE TRIGGER USER;
         UPDATE event SET event_time = 0 WHERE seq = 2;",
    )
    .unwrap();
    let found = lines(&check(&store, "pg-edited"));
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found[0].starts_with("event seq=2: event_time: stored 0"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("run ")
            && found[1].contains("state: stored COMPLETE, from the events FAIL"),
        "{found:?}"
    );
    assert!(
        found[2].starts_with("run_input ")
            && found[2].ends_with("given by the events, but not stored"),
        "{found:?}"
    );
}

#[test]
fn a_postgres_store_written_to_while_checked_is_an_error_to_retry() {
    let Some(schema) = pg::schema("tables_busy") else {
        return;
    };
    let store = Store::open(&schema.url).unwrap();
    fill(&store);
    let writer = Store::open(&schema.url).unwrap();
    let mut once = true;
    let folder = scratch("pg-busy");
    let err = store
        .verify_tables(&folder, &mut |_, _| {
            if std::mem::take(&mut once) {
                // A new event arrives mid-check.
                writer
                    .ingest(
                        &Event::Run(RunEvent::new(
                            EventType::Start,
                            Run::new(RunId::new_v7()),
                            Job::new("genomics", "late"),
                        ))
                        .to_json()
                        .into_bytes(),
                    )
                    .unwrap();
            }
        })
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("received events while its tables were checked"),
        "{err}"
    );
    no_scratch_left(&folder);
}

/// A check killed with SIGKILL leaves its temporary store behind: the next
/// check removes the folders whose lock nobody holds, and leaves a live
/// check's (its lock held), one being made (no lock file yet) and others.
#[test]
fn the_next_check_removes_what_a_killed_check_left() {
    let t = TempStore::new("sweep");
    let store = Store::open(t.path()).unwrap();
    fill(&store);
    let folder = scratch("sweep");
    let left = folder.join("prov-verify-4242-01a2110f-0000-7000-8000-000000000000");
    std::fs::create_dir_all(&left).unwrap();
    std::fs::write(left.join("held"), b"").unwrap();
    std::fs::write(left.join("store.db"), b"a copy of every event").unwrap();
    let live = folder.join("prov-verify-4243-live");
    std::fs::create_dir_all(&live).unwrap();
    let lock = std::fs::File::create(live.join("held")).unwrap();
    lock.lock().unwrap();
    let making = folder.join("prov-verify-4244-being-made");
    std::fs::create_dir_all(&making).unwrap();
    let other = folder.join("someone-elses");
    std::fs::create_dir_all(&other).unwrap();
    let report = store.verify_tables(&folder, &mut |_, _| {}).unwrap();
    assert!(report.matches());
    assert!(!left.exists(), "a dead check's folder is left");
    assert!(live.exists() && making.exists() && other.exists());
    drop(lock);
    for dir in [&live, &making, &other] {
        std::fs::remove_dir_all(dir).unwrap();
    }
    no_scratch_left(&folder);
}
