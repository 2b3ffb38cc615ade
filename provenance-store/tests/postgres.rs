//! What only the PostgreSQL backend has to show: many writers appending to one
//! chain at once, clear errors for bad URLs and unreachable servers, the
//! append-only log and tamper detection in SQL, TLS, and copying stores
//! between SQLite and PostgreSQL. (The shared contract is in contract.rs.)

mod pg;
mod temp;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier};
use temp::TempStore;

use provenance_core::{Event, EventType, Job, Run, RunEvent, RunId};
use provenance_store::*;

fn event(job: &str) -> Vec<u8> {
    let e = RunEvent::new(
        EventType::Complete,
        Run::new(RunId::new_v7()),
        Job::new("ns", job),
    );
    Event::Run(e).to_json().into_bytes()
}

fn open(url: &str) -> Store {
    Store::open(url).unwrap_or_else(|e| panic!("{e:#?}"))
}

/// Several writers, each with its own sessions (as separate `prov serve`
/// replicas have), append at once; some send the same events. Every event is
/// stored exactly once, positions are gapless, and the chain verifies.
#[test]
fn concurrent_writers_keep_one_gapless_verified_chain() {
    let Some(schema) = pg::schema("concurrent_writers") else {
        return;
    };
    open(&schema.url); // migrate once, so the writers start together
    const WRITERS: usize = 6;
    const BATCHES: usize = 30;
    const PER_BATCH: usize = 5;
    let shared: Arc<Vec<Vec<u8>>> =
        Arc::new((0..20).map(|i| event(&format!("shared{i}"))).collect());
    let start = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (url, shared, start) =
                (schema.url.clone(), Arc::clone(&shared), Arc::clone(&start));
            std::thread::spawn(move || {
                let store = open(&url);
                let mut mine = Vec::new();
                let mut shared_outcomes = Vec::new();
                start.wait();
                for b in 0..BATCHES {
                    let batch: Vec<Vec<u8>> = (0..PER_BATCH)
                        .map(|i| event(&format!("w{w}b{b}e{i}")))
                        .collect();
                    let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                    for outcome in store.ingest_batch(&refs).unwrap() {
                        assert!(matches!(outcome, Outcome::Stored { .. }), "{outcome:?}");
                    }
                    mine.extend(batch);
                    // Every writer also sends the shared events, in its own order.
                    let s = &shared[(b + w) % shared.len()];
                    shared_outcomes.push((s.clone(), store.ingest(s).unwrap()));
                }
                (mine, shared_outcomes)
            })
        })
        .collect();
    let mut expected: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut shared_seqs: BTreeMap<Vec<u8>, BTreeSet<u64>> = BTreeMap::new();
    let mut stored_shared = 0;
    for w in writers {
        let (mine, shared_outcomes) = w.join().unwrap();
        expected.extend(mine);
        for (raw, outcome) in shared_outcomes {
            let seq = match outcome {
                Outcome::Stored { seq } => {
                    stored_shared += 1;
                    seq
                }
                Outcome::Duplicate { seq } => seq,
                other => panic!("{other:?}"),
            };
            shared_seqs.entry(raw.clone()).or_default().insert(seq);
            expected.insert(raw);
        }
    }
    // Each shared event was stored by exactly one writer, and every copy
    // points at that one position.
    assert_eq!(stored_shared, shared_seqs.len());
    assert!(
        shared_seqs.values().all(|seqs| seqs.len() == 1),
        "{shared_seqs:?}"
    );

    let store = open(&schema.url);
    let report = store.verify_chain().unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(report.events, expected.len() as u64);
    let events = store
        .events(Page {
            offset: 0,
            limit: 10_000,
        })
        .unwrap();
    let seqs: Vec<u64> = events.items.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=expected.len() as u64).collect::<Vec<_>>());
    let stored: BTreeSet<Vec<u8>> = events.items.into_iter().map(|(_, raw)| raw).collect();
    assert_eq!(stored.len(), expected.len(), "an event was stored twice");
    assert_eq!(stored, expected, "an event was lost");
    assert_eq!(
        report.head,
        Some(format!("{}:{}", expected.len(), {
            let mut link = chain::GENESIS.to_owned();
            for (i, (_, raw)) in store
                .events(Page {
                    offset: 0,
                    limit: 10_000,
                })
                .unwrap()
                .items
                .iter()
                .enumerate()
            {
                link = chain::link(&link, i as u64 + 1, raw);
            }
            link
        }))
    );
}

#[test]
fn an_unreachable_server_is_named_without_its_password() {
    let err = Store::open("postgres://prov:hunter2@127.0.0.1:1/prov").unwrap_err();
    let text = format!("{:#}", anyhow_like(&err));
    assert!(
        text.starts_with("open store at postgres://prov:***@127.0.0.1:1/prov"),
        "{text}"
    );
    assert!(text.contains("connect"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn a_bad_url_is_a_clear_error() {
    let err = Store::open("postgres://u:pw@127.0.0.1/db?sslmode=sometimes").unwrap_err();
    let text = anyhow_like(&err);
    assert!(
        text.contains("sslmode=\"sometimes\" is not one of"),
        "{text}"
    );
    assert!(!text.contains(":pw@"), "{text}");
    let err = Store::open("postgres://u@127.0.0.1/db?colour=blue").unwrap_err();
    assert!(
        anyhow_like(&err).contains("unknown option `colour`"),
        "{err}"
    );
}

#[test]
fn a_missing_database_is_named_without_the_password() {
    let Some(server) = pg::server("a_missing_database") else {
        return;
    };
    // Swap the database for one that does not exist, and add a password.
    let (base, _) = server.rsplit_once('/').unwrap();
    let base = base.replacen("://", "://postgres:hunter2@", 1);
    let base = match base.split_once("hunter2@") {
        Some((head, host)) if host.contains('@') => {
            format!("{head}hunter2@{}", host.rsplit_once('@').unwrap().1)
        }
        _ => base,
    };
    let url = format!("{base}/prov_no_such_database");
    let err = Store::open(&url).unwrap_err();
    let text = anyhow_like(&err);
    assert!(text.contains("prov_no_such_database"), "{text}");
    assert!(text.contains("does not exist"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

/// The error and its sources, as the CLI prints them.
fn anyhow_like(err: &StoreError) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn filled(test: &str) -> Option<(pg::Schema, Store)> {
    let schema = pg::schema(test)?;
    let store = open(&schema.url);
    for i in 0..10 {
        store.ingest(&event(&format!("job{i}"))).unwrap();
    }
    Some((schema, store))
}

#[test]
fn the_log_refuses_update_delete_and_truncate() {
    let Some((schema, _store)) = filled("refuses_update") else {
        return;
    };
    let mut c = schema.client();
    for sql in [
        "UPDATE event SET raw = '\\x00' WHERE seq = 1",
        "DELETE FROM event WHERE seq = 1",
        "TRUNCATE event",
    ] {
        let err = c.batch_execute(sql).unwrap_err();
        let text = format!("{:?}", err);
        assert!(text.contains("append-only"), "{sql}: {text}");
    }
}

#[test]
fn tampering_behind_the_triggers_is_found_at_its_position() {
    let Some((schema, store)) = filled("tampering") else {
        return;
    };
    let mut c = schema.client();
    c.batch_execute(
        "ALTER TABLE event DISABLE TRIGGER USER;
         UPDATE event SET raw = replace(convert_from(raw, 'UTF8'), '\"job3\"', '\"job9\"')::bytea
         WHERE seq = 4;",
    )
    .unwrap();
    let broken = store.verify_chain().unwrap().broken.expect("detected");
    assert_eq!(broken.position, 4);
    assert!(broken.reason.contains("altered"), "{}", broken.reason);

    let (schema2, store2) = filled("tampering_delete").unwrap();
    schema2
        .client()
        .batch_execute("ALTER TABLE event DISABLE TRIGGER USER; DELETE FROM event WHERE seq = 7;")
        .unwrap();
    let broken = store2.verify_chain().unwrap().broken.expect("detected");
    assert_eq!(broken.position, 7);
    assert!(broken.reason.contains("missing"), "{}", broken.reason);

    // A position made negative: out of order at the start, as SQLite says,
    // not a gap up to 2^64.
    let (schema3, store3) = filled("tampering_negative").unwrap();
    schema3
        .client()
        .batch_execute(
            "ALTER TABLE event DISABLE TRIGGER USER; UPDATE event SET seq = -5 WHERE seq = 5;",
        )
        .unwrap();
    let broken = store3.verify_chain().unwrap().broken.expect("detected");
    assert!(
        !broken.reason.contains("18446744073709551"),
        "{}",
        broken.reason
    );
    assert_eq!(broken.position, 1, "{}", broken.reason);
}

#[test]
fn a_store_from_a_newer_prov_is_refused() {
    let Some((schema, _store)) = filled("newer") else {
        return;
    };
    schema
        .client()
        .batch_execute("UPDATE prov_schema SET version = 7")
        .unwrap();
    let err = Store::open(&schema.url).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 7,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
}

/// `sslmode=require` encrypts (the server's own view says so), and
/// `verify-full` refuses a certificate that no trusted root signed.
#[test]
fn tls_is_used_as_sslmode_asks() {
    let Some(schema) = pg::schema("tls") else {
        return;
    };
    let mut c = schema.client();
    let ssl: String = c.query_one("SHOW ssl", &[]).unwrap().get(0);
    if ssl != "on" {
        eprintln!("note: tls_is_used_as_sslmode_asks: the server has ssl off; nothing to check");
        return;
    }
    let app = format!("prov_tls_{}", schema.name);
    let url = format!("{}&sslmode=require&application_name={app}", schema.url);
    let store = open(&url);
    assert_eq!(store.verify_chain().unwrap().events, 0);
    let encrypted: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = $1 AND s.ssl",
            &[&app],
        )
        .unwrap()
        .get(0);
    assert!(encrypted >= 1, "the store's session is not encrypted");
    let plain = format!(
        "{}&sslmode=disable&application_name={app}_plain",
        schema.url
    );
    let _plain_store = open(&plain);
    let unencrypted: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = $1 AND NOT s.ssl",
            &[&format!("{app}_plain")],
        )
        .unwrap()
        .get(0);
    assert!(unencrypted >= 1, "sslmode=disable still encrypted");

    let strict = format!("{}&sslmode=verify-full", schema.url);
    let err = Store::open(&strict).unwrap_err();
    let text = anyhow_like(&err);
    assert!(text.contains("certificate"), "{text}");
}

/// A small pipeline: a FASTQ -> BAM -> VCF, as a producer would send it.
fn pipeline(store: &Store) {
    use provenance_core::{InputDataset, OutputDataset};
    let mut previous = "/data/S1.fastq.gz".to_owned();
    for (job, out) in [("bwa", "/out/S1.bam"), ("call", "/out/S1.vcf")] {
        let mut e = RunEvent::new(
            EventType::Complete,
            Run::new(RunId::new_v7()),
            Job::new("ns", job),
        );
        e.inputs = Some(vec![InputDataset::new("file", &previous)]);
        e.outputs = Some(vec![OutputDataset::new("file", out)]);
        store.ingest_event(&Event::Run(e)).unwrap();
        previous = out.to_owned();
    }
}

fn vcf_lineage(store: &Store) -> Vec<String> {
    let graph = store
        .lineage(&LineageQuery {
            target: Target::Dataset {
                namespace: "file".into(),
                name: "/out/S1.vcf".into(),
            },
            direction: Direction::Upstream,
            depth: 10,
            as_of: None,
        })
        .unwrap();
    let mut ids: Vec<String> = graph
        .graph
        .iter()
        .map(|n| {
            format!(
                "{} <- [{}]",
                n.id,
                n.in_edges
                    .iter()
                    .map(|e| e.origin.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    ids.sort();
    ids
}

/// SQLite -> PostgreSQL -> SQLite: the same chain, head and lineage on every
/// side; a non-empty destination and a broken source are refused.
#[test]
fn stores_copy_between_sqlite_and_postgres_with_the_chain_intact() {
    let Some(schema) = pg::schema("copy") else {
        return;
    };
    let first = TempStore::new("copy-first");
    let back = TempStore::new("copy-back");
    let sqlite = open(first.path());
    pipeline(&sqlite);
    for i in 0..2500 {
        sqlite.ingest(&event(&format!("bulk{i}"))).unwrap();
    }
    let postgres = open(&schema.url);
    let mut seen = Vec::new();
    let report = sqlite
        .copy_to(&postgres, &mut |done, total| seen.push((done, total)))
        .unwrap();
    assert_eq!(report.events, 2502);
    assert_eq!(report.head, sqlite.head().unwrap());
    assert_eq!(seen.last(), Some(&(2502, 2502)));
    assert_eq!(seen.len(), 3, "progress per batch of 1000: {seen:?}");
    assert_eq!(postgres.verify_chain().unwrap().broken, None);
    assert_eq!(vcf_lineage(&postgres), vcf_lineage(&sqlite));
    assert_eq!(vcf_lineage(&postgres).len(), 5);
    // Its tables, derived by PostgreSQL, are what SQLite derives again.
    let tables = postgres
        .verify_tables(&std::env::temp_dir(), &mut |_, _| {})
        .unwrap();
    assert!(tables.matches(), "{:?}", tables.differences);
    assert_eq!(tables.events, 2502);

    let sqlite_again = open(back.path());
    let report = postgres.copy_to(&sqlite_again, &mut |_, _| {}).unwrap();
    assert_eq!(report.head, sqlite.head().unwrap());
    assert_eq!(vcf_lineage(&sqlite_again), vcf_lineage(&sqlite));

    // Into a store that holds events: refused, and nothing is added.
    let err = sqlite.copy_to(&postgres, &mut |_, _| {}).unwrap_err();
    assert!(
        matches!(err, StoreError::NotEmpty { events: 2502, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("empty store"), "{err}");
    assert_eq!(postgres.verify_chain().unwrap().events, 2502);

    // From a broken chain: refused before anything is written.
    schema
        .client()
        .batch_execute(
            "ALTER TABLE event DISABLE TRIGGER USER; UPDATE event SET link = repeat('0', 64) WHERE seq = 2;",
        )
        .unwrap();
    let empty = TempStore::new("copy-empty");
    let target = open(empty.path());
    let err = postgres.copy_to(&target, &mut |_, _| {}).unwrap_err();
    assert!(matches!(err, StoreError::Integrity { .. }), "{err}");
    assert!(err.to_string().contains("position 2"), "{err}");
    assert_eq!(target.head().unwrap(), None);
}

/// PostgreSQL cannot hold a NUL in text, so the store refused any name with
/// one: a query naming one finds nothing, as on SQLite, instead of failing
/// with the database's encoding error.
#[test]
fn a_query_holding_a_nul_finds_nothing_rather_than_failing() {
    use provenance_store::{Direction, LineageQuery, Page, RunFilter, Target};
    let Some((_schema, store)) = filled("nul_query") else {
        return;
    };
    pipeline(&store);
    for target in [
        "job:ns:a\0b",
        "dataset:file:/out/S1.vcf\0",
        "dataset:file:/x#v\0",
    ] {
        let query = LineageQuery {
            target: Target::parse(target).unwrap(),
            direction: Direction::Upstream,
            depth: 5,
            as_of: None,
        };
        let err = store.lineage(&query).unwrap_err();
        assert!(
            matches!(err, StoreError::NotFound { .. }),
            "{target}: {err}"
        );
        let err = store.derived_from(&query.target, None).unwrap_err();
        assert!(
            matches!(err, StoreError::NotFound { .. }),
            "{target}: {err}"
        );
    }
    let filter = RunFilter {
        job: Some("\0".into()),
        ..RunFilter::default()
    };
    let page = Page {
        offset: 0,
        limit: 10,
    };
    assert_eq!(store.runs(&filter, page).unwrap().total, 0);
    let err = store.run("0190a1b2-\0").unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(
        store
            .latest_version("file", "/out/S1.vcf\0")
            .unwrap()
            .is_none()
    );
    // And the names without one are still found.
    assert_eq!(vcf_lineage(&store).len(), 5);
}

/// The server ends the store's sessions while they are idle (a restart, a
/// failover, `idle_session_timeout`, a pooler): the next write and read
/// open new ones instead of failing, so a long step still records its end.
#[test]
fn sessions_the_server_ended_while_idle_are_replaced_not_reported() {
    let Some(schema) = pg::schema("ended_sessions") else {
        return;
    };
    let app = format!("prov_ended_{}", schema.name);
    let store = open(&format!("{}&application_name={app}", schema.url));
    store.ingest(&event("before")).unwrap();
    let ended: i64 = schema
        .client()
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .unwrap()
        .get(0);
    assert!(ended > 0, "no session of the store was found to end");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    store.ingest(&event("after")).unwrap();
    let filter = RunFilter {
        job: Some("after".into()),
        ..RunFilter::default()
    };
    assert_eq!(store.runs(&filter, Page::default()).unwrap().total, 1);
    assert!(store.verify_chain().unwrap().broken.is_none());
}

/// A role that may not use the schema holding the store is told so, by
/// name, rather than that there is no store or no schema to create one in.
#[test]
fn a_role_without_usage_on_the_stores_schema_is_told_so() {
    let Some(schema) = pg::schema("no_usage") else {
        return;
    };
    let owner = open(&schema.url);
    owner.ingest(&event("kept")).unwrap();
    let role = format!("{}_reader", schema.name);
    let admin = &mut schema.client();
    admin
        .batch_execute(&format!("CREATE ROLE {role} LOGIN"))
        .unwrap();
    struct DropRole<'a>(&'a pg::Schema, String);
    impl Drop for DropRole<'_> {
        fn drop(&mut self) {
            let _ = self
                .0
                .client()
                .batch_execute(&format!("DROP ROLE IF EXISTS {}", self.1));
        }
    }
    let _role = DropRole(&schema, role.clone());
    // The same URL, as that role.
    let url = schema
        .url
        .replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    if url == schema.url {
        eprintln!("skipped: the server URL does not name the user postgres");
        return;
    }
    for result in [holds_store(&url).map(|_| ()), Store::open(&url).map(|_| ())] {
        let err = format!("{:#?}", result.unwrap_err());
        assert!(
            err.contains(&format!("in the schema {}", schema.name)) && err.contains("USAGE"),
            "{err}"
        );
    }
    drop(_role);
    drop(owner);
}
