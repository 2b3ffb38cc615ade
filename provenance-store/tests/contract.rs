//! The store contract: every backend must pass these. Each test runs on SQLite
//! in memory, on a SQLite file, and on PostgreSQL in a schema of its own when
//! `PROV_TEST_POSTGRES_URL` is set (see `pg/mod.rs`).

mod pg;

use std::path::PathBuf;

use provenance_core::facets::*;
use provenance_core::{
    Event, EventTime, EventType, InputDataset, Job, OutputDataset, Run, RunEvent, RunId,
};
use provenance_store::*;
use serde_json::Value;

/// A store that deletes its file (or its PostgreSQL schema) when dropped.
struct Fixture {
    store: Store,
    file: Option<PathBuf>,
    /// Dropped after the store has closed its sessions.
    _schema: Option<pg::Schema>,
}
impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(f) = &self.file {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", f.display()));
            }
        }
    }
}

fn memory() -> Fixture {
    Fixture {
        store: Store::in_memory().unwrap(),
        file: None,
        _schema: None,
    }
}

fn file() -> Fixture {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "prov-contract-{}-{}.db",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    Fixture {
        store: Store::open(path.to_str().unwrap()).unwrap(),
        file: Some(path),
        _schema: None,
    }
}

/// A store in a new PostgreSQL schema, or `None` (with a note) when off.
fn postgres(test: &str) -> Option<Fixture> {
    let schema = pg::schema(test)?;
    Some(Fixture {
        store: Store::open(&schema.url).unwrap_or_else(|e| panic!("{e:#?}")),
        file: None,
        _schema: Some(schema),
    })
}

/// Declares each contract test once per backend.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite_memory { $( #[test] fn $name() { super::$name(&super::memory().store) } )* }
        mod sqlite_file { $( #[test] fn $name() { super::$name(&super::file().store) } )* }
        mod postgres { $( #[test] fn $name() {
            if let Some(f) = super::postgres(stringify!($name)) { super::$name(&f.store) }
        } )* }
    };
}

contract!(
    every_example_event_is_stored_once,
    the_apples_pipeline_answers_version_precise_lineage,
    the_airflow_scenario_answers_lineage,
    an_overwritten_path_keeps_the_lineage_of_its_old_bytes,
    runs_accumulate_facets_and_terminal_states_stick,
    a_batch_is_one_transaction_and_rejects_bad_events_by_index,
    text_postgresql_cannot_keep_is_rejected_by_itself_there,
    a_version_seen_earlier_or_with_its_size_later_is_updated_however_batched,
    a_placeholder_version_hides_no_writer,
    the_marquez_graph_folds_runs_into_jobs_and_versions_into_datasets,
    a_dataset_whose_name_holds_a_hash_sign_is_found_by_name,
    a_number_the_value_would_round_is_refused_not_taken_for_a_copy,
    a_large_batch_finds_its_own_repeats_and_rejects_by_index,
    a_bulk_load_is_batches_in_order,
    the_chain_verifies_and_its_head_moves,
    audits_find_containers_derivations_and_unpinned_runs,
    cache_lookup_finds_the_latest_complete_run_with_outputs,
    lineage_as_of_shows_the_graph_as_it_stood,
    runs_are_listed_by_filters_in_pages,
    depth_limits_report_truncation,
);

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/openlineage-spec/examples")
}

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn event_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for folder in ["events", "compat-tests", "marquez-apples", "spec-tests"] {
        for entry in std::fs::read_dir(examples().join(folder)).unwrap() {
            let path = entry.unwrap().path();
            let value: Value = serde_json::from_slice(&read(&path)).unwrap();
            if value.get("eventTime").is_some() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn every_example_event_is_stored_once(store: &Store) {
    let files = event_files();
    let raws: Vec<Vec<u8>> = files.iter().map(|f| read(f)).collect();
    let refs: Vec<&[u8]> = raws.iter().map(Vec::as_slice).collect();
    let outcomes = store.ingest_batch(&refs).unwrap();
    let mut stored = 0;
    for (file, outcome) in files.iter().zip(&outcomes) {
        let name = file.file_name().unwrap().to_str().unwrap();
        if name.starts_with("simple_run_event__events") {
            let Outcome::Rejected { reason } = outcome else {
                panic!("{name}: {outcome:?}")
            };
            assert!(reason.contains("run.runId"), "{reason}");
        } else {
            assert!(
                matches!(outcome, Outcome::Stored { .. }),
                "{name}: {outcome:?}"
            );
            stored += 1;
        }
    }
    // Again: nothing new, each found at its first position.
    for (outcome, again) in outcomes.iter().zip(store.ingest_batch(&refs).unwrap()) {
        match (outcome, again) {
            (Outcome::Stored { seq }, Outcome::Duplicate { seq: again }) => assert_eq!(*seq, again),
            (Outcome::Rejected { .. }, Outcome::Rejected { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    let events = store
        .events(Page {
            offset: 0,
            limit: 1000,
        })
        .unwrap();
    assert_eq!(events.total, stored);
    // Raw bytes are kept exactly.
    let first = files
        .iter()
        .find(|f| !f.ends_with("simple_run_event__events__simple_run_event.json"))
        .unwrap();
    assert_eq!(events.items[0].1, read(first));
    // Reading on after a position gives what the same page gives there.
    let (third, _) = &events.items[2];
    let after = store.events_after(*third, 1000).unwrap();
    assert_eq!(after, events.items[3..]);
    assert_eq!(store.events_after(*third, 2).unwrap(), events.items[3..5]);
    assert!(store.verify_chain().unwrap().broken.is_none());
}

fn run_id_of(path: &std::path::Path) -> String {
    let v: Value = serde_json::from_slice(&read(path)).unwrap();
    v["run"]["runId"].as_str().unwrap().to_owned()
}

fn ingest_files(store: &Store, files: &[PathBuf]) {
    for f in files {
        assert!(
            matches!(store.ingest(&read(f)).unwrap(), Outcome::Stored { .. }),
            "{}",
            f.display()
        );
    }
}

fn upstream(target: &str, depth: u32) -> LineageQuery {
    LineageQuery {
        target: Target::parse(target).unwrap(),
        direction: Direction::Upstream,
        depth,
        as_of: None,
    }
}

fn the_apples_pipeline_answers_version_precise_lineage(store: &Store) {
    let dir = examples().join("marquez-apples");
    let step = |n: &str| {
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with(&format!("apples__{n}_"))
            })
            .unwrap()
    };
    let steps: Vec<PathBuf> = ["1", "2", "3", "5", "6", "7", "8", "9"]
        .iter()
        .map(|n| step(n))
        .collect();
    ingest_files(store, &steps);
    let run = |n: &str| run_id_of(&step(n));
    let out = |name: &str, n: &str| format!("dataset:grandmas.kitchen:{name}#run:{}", run(n));
    let r = |n: &str| format!("run:{}", run(n));

    // The pie as it is now: made from the second filling, from the crab apples.
    let graph = store
        .lineage(&upstream("dataset:grandmas.kitchen:apple.pie", 20))
        .unwrap();
    let mut expected = vec![
        (out("apple.filling", "8"), r("9")),
        (r("9"), out("apple.pie", "9")),
        (out("apples", "7"), r("8")),
        (
            "dataset:grandmas.kitchen:cinnamon#unknown".to_owned(),
            r("8"),
        ),
        ("dataset:cupboard:sugar#unknown".to_owned(), r("8")),
        (r("8"), out("apple.filling", "8")),
        ("dataset:backyard:crab.apples#unknown".to_owned(), r("7")),
        (r("7"), out("apples", "7")),
    ];
    expected.sort();
    let edges: Vec<(String, String)> = graph
        .edges()
        .into_iter()
        .map(|(a, b)| (a.into(), b.into()))
        .collect();
    assert_eq!(edges, expected);
    assert!(!graph.truncated);
    assert_eq!(
        graph.node(&r("9")).unwrap().data["job"],
        "prepare_apple_pie"
    );

    // The first pie keeps its own past: red delicious, through the first filling.
    let first_pie = out("apple.pie", "6");
    let graph = store.lineage(&upstream(&first_pie, 20)).unwrap();
    let ids = graph.ids();
    assert!(
        ids.contains(&"dataset:laurents-orchard:red.delicious#unknown"),
        "{ids:?}"
    );
    assert!(ids.contains(&out("apples", "1").as_str()));
    assert!(
        !ids.contains(&out("apples", "7").as_str()),
        "the later apples are not in the first pie"
    );
    assert!(!ids.iter().any(|i| i.contains("crab")));

    // Downstream of the first apples: both fillings? No: only the runs that read that version.
    let down = LineageQuery {
        direction: Direction::Downstream,
        ..upstream(&out("apples", "1"), 20)
    };
    let ids: Vec<String> = store
        .lineage(&down)
        .unwrap()
        .ids()
        .into_iter()
        .map(String::from)
        .collect();
    for present in [
        r("2"),
        r("3"),
        r("5"),
        r("6"),
        out("apple.vinegar", "5").replace("grandmas.kitchen", "cupboard"),
    ] {
        assert!(ids.contains(&present), "{present} missing from {ids:?}");
    }
    for absent in [r("8"), r("9")] {
        assert!(
            !ids.contains(&absent),
            "{absent} is downstream of the second apples only"
        );
    }
}

fn the_airflow_scenario_answers_lineage(store: &Store) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples().join("compat-tests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("airflow__events__")
        })
        .collect();
    files.sort();
    ingest_files(store, &files);
    let run_of = |line: &str| {
        let f = files
            .iter()
            .find(|f| f.to_str().unwrap().ends_with(&format!("line_{line}.json")))
            .unwrap();
        format!("run:{}", run_id_of(f))
    };
    let graph = store
        .lineage(&upstream("dataset:gs://mock-bucket:result.csv", 20))
        .unwrap();
    let (upload, copy, download) = (run_of("03"), run_of("05"), run_of("07"));
    let v = |ns: &str, name: &str, run: &str| format!("dataset:{ns}:{name}#{run}");
    let mut expected = vec![
        (
            v("gs://mock-bucket", "copied.csv", "unknown"),
            upload.clone(),
        ),
        (v("gs://mock-bucket", "test.csv", "unknown"), upload.clone()),
        (
            upload.clone(),
            v("bigquery", "mock-project.test.upload", &upload),
        ),
        (
            v("bigquery", "mock-project.test.upload", &upload),
            copy.clone(),
        ),
        (
            copy.clone(),
            v("bigquery", "mock-project.test.upload_cp", &copy),
        ),
        (
            v("bigquery", "mock-project.test.upload_cp", &copy),
            download.clone(),
        ),
        (
            download.clone(),
            v("gs://mock-bucket", "result.csv", &download),
        ),
    ];
    expected.sort();
    let edges: Vec<(String, String)> = graph
        .edges()
        .into_iter()
        .map(|(a, b)| (a.into(), b.into()))
        .collect();
    assert_eq!(edges, expected);
    // The task runs know their DAG run.
    let node = graph.node(&download).unwrap();
    assert!(node.data["parentRunId"].is_string(), "{}", node.data);
    assert_eq!(node.data["state"], "COMPLETE");

    // compose_task read four files; its result has four upstream inputs.
    let graph = store
        .lineage(&upstream("dataset:gs://mock-bucket:compose_result.txt", 1))
        .unwrap();
    let compose = run_of("31");
    assert_eq!(graph.node(&compose).unwrap().in_edges.len(), 4);
}

const IMAGE_DIGEST: &str =
    "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";

/// The START and COMPLETE events of a step, with our facets.
struct Step<'a> {
    job: &'a str,
    inputs: &'a [(&'a str, String)],
    outputs: &'a [(&'a str, String)],
    time: &'a str,
    image: &'a str,
    params: Value,
}

impl Step<'_> {
    fn events(&self) -> (RunId, Vec<Event>) {
        let id = RunId::new_v7();
        let mut run = Run::new(id);
        let params = ProvParametersRunFacet::new(self.params.as_object().unwrap().clone()).unwrap();
        run.facets.set(&params);
        let container = ProvContainerRunFacet::new(self.image, ContainerRuntime::Docker).unwrap();
        run.facets.set(&container);
        let command = vec![self.job.to_owned()];
        let digests: Vec<String> = self
            .inputs
            .iter()
            .map(|(_, d)| format!("sha256:{d}"))
            .collect();
        let identity = container.identity();
        let fingerprint = Fingerprint {
            job: self.job,
            command: &command,
            container: Some(&identity),
            parameters: &params.parameters,
            inputs: &digests,
        };
        run.facets.set(&fingerprint.facet().unwrap());
        let inputs: Vec<InputDataset> = self
            .inputs
            .iter()
            .map(|(path, digest)| {
                let mut d = InputDataset::new("file", *path);
                d.facets
                    .set(&ProvChecksumDatasetFacet::file(10, digest.clone()));
                d
            })
            .collect();
        let outputs: Vec<OutputDataset> = self
            .outputs
            .iter()
            .map(|(path, digest)| {
                let mut d = OutputDataset::new("file", *path);
                let c = ProvChecksumDatasetFacet::file(10, digest.clone());
                d.facets.set(&c.version_facet().unwrap());
                d.facets.set(&c);
                d
            })
            .collect();
        let job = Job::new("genomics", self.job);
        let time = EventTime::parse(self.time).unwrap();
        let mut start = RunEvent::new(EventType::Start, run.clone(), job.clone());
        start.event_time = time.clone();
        start.inputs = Some(inputs.clone());
        let mut done = RunEvent::new(EventType::Complete, run, job);
        done.event_time = time;
        done.inputs = Some(inputs);
        done.outputs = Some(outputs);
        (id, vec![Event::Run(start), Event::Run(done)])
    }

    fn record(&self, store: &Store) -> RunId {
        let (id, events) = self.events();
        for e in events {
            assert!(matches!(
                store.ingest_event(&e).unwrap(),
                Outcome::Stored { .. }
            ));
        }
        id
    }
}

fn digest(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn step<'a>(
    job: &'a str,
    inputs: &'a [(&'a str, String)],
    outputs: &'a [(&'a str, String)],
    time: &'a str,
) -> Step<'a> {
    Step {
        job,
        inputs,
        outputs,
        time,
        image: "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8",
        params: serde_json::json!({"threads": 4}),
    }
}

fn an_overwritten_path_keeps_the_lineage_of_its_old_bytes(store: &Store) {
    let r1 = [("/data/S1.fastq", digest(1))];
    let r2 = [("/data/S2.fastq", digest(2))];
    let bam = |d: u8| [("/out/sample.bam", digest(d))];
    let first = step("align", &r1, &bam(10), "2026-01-01T00:00:00Z").record(store);
    // A later run overwrites the same path with other bytes.
    let second = step("align", &r2, &bam(11), "2026-02-01T00:00:00Z").record(store);

    let old = store
        .lineage(&upstream(&format!("sha256:{}", digest(10)), 20))
        .unwrap();
    assert_eq!(
        old.ids(),
        [
            format!("dataset:file:/data/S1.fastq#sha256:{}", digest(1)),
            format!("dataset:file:/out/sample.bam#sha256:{}", digest(10)),
            format!("run:{first}"),
        ]
    );
    let now = store
        .lineage(&upstream("dataset:file:/out/sample.bam", 20))
        .unwrap();
    assert!(now.ids().contains(&format!("run:{second}").as_str()));
    assert!(!now.ids().contains(&format!("run:{first}").as_str()));
    // The run node carries what an auditor needs.
    let node = old.node(&format!("run:{first}")).unwrap();
    assert_eq!(
        node.data["facets"]["prov_parameters"]["parameters"]["threads"],
        4
    );
    assert_eq!(
        node.data["containerImage"],
        "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8"
    );
    assert!(node.data["fingerprint"].as_str().unwrap().len() == 64);
}

fn runs_accumulate_facets_and_terminal_states_stick(store: &Store) {
    let id = RunId::new_v7();
    let job = Job::new("ns", "call");
    let mut start = RunEvent::new(EventType::Start, Run::new(id), job.clone());
    start
        .run
        .facets
        .set(&ProcessingEngineRunFacet::new("prov", "0.1.0"));
    let mut complete_run = Run::new(id);
    complete_run.facets.set(
        &ProvContainerRunFacet::new("bwa:1", ContainerRuntime::Docker)
            .unwrap()
            .with_digest(IMAGE_DIGEST, DigestSource::Registry),
    );
    let complete = RunEvent::new(EventType::Complete, complete_run, job.clone());
    let late = RunEvent::new(EventType::Running, Run::new(id), job.clone());
    let other = RunEvent::new(EventType::Other, Run::new(id), job);
    for e in [start, complete, late, other] {
        store.ingest_event(&Event::Run(e)).unwrap();
    }
    let run = store.run(&id.to_string()).unwrap();
    assert_eq!(run.state.as_deref(), Some("COMPLETE"));
    assert_eq!(run.container_digest.as_deref(), Some(IMAGE_DIGEST));
    assert!(run.started_at.is_some() && run.ended_at.is_some());
    let graph = store.lineage(&upstream(&format!("run:{id}"), 1)).unwrap();
    let facets = &graph.node(&format!("run:{id}")).unwrap().data["facets"];
    assert_eq!(facets["prov_container"]["digest"], IMAGE_DIGEST);
    assert!(matches!(
        store.run("0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d31"),
        Err(StoreError::NotFound { .. })
    ));
}

fn a_number_the_value_would_round_is_refused_not_taken_for_a_copy(store: &Store) {
    let (_, events) = step("n", &[], &[], "2026-01-01T00:00:00Z").events();
    let text = events[0].to_json();
    // The same event with one more member, holding `number`.
    let with = |number: &str| text.replacen('{', &format!("{{\"count\":{number},"), 1);
    // Numbers a double or a 64-bit integer holds exactly are stored, each
    // event once, and the bytes received are kept.
    for number in [
        "18446744073709551615",
        "-9223372036854775808",
        "0.1",
        "1.50",
        "2e-3",
        "-0",
    ] {
        let event = with(number);
        let outcome = store.ingest(event.as_bytes()).unwrap();
        assert!(
            matches!(outcome, Outcome::Stored { .. }),
            "{number}: {outcome:?}"
        );
    }
    // Beyond them, two events differing only there would get one identity:
    // each is refused, naming the number, and the store is unchanged.
    let before = store.head().unwrap();
    for number in [
        "18446744073709551616",
        "18446744073709551617",
        "-9223372036854775809",
        "123456789012345678901234567890",
    ] {
        let event = with(number);
        match store.ingest(event.as_bytes()).unwrap() {
            Outcome::Rejected { reason } => assert!(reason.contains(number), "{reason}"),
            other => panic!("{number}: {other:?}"),
        }
        // Also when the number is one of a batch.
        let outcomes = store.ingest_batch(&[event.as_bytes()]).unwrap();
        assert!(matches!(outcomes[0], Outcome::Rejected { .. }), "{number}");
    }
    assert_eq!(store.head().unwrap(), before);
    // Decimals are doubles: two spellings of one double are one value.
    let long = with("0.12345678901234567890");
    assert!(matches!(
        store.ingest(long.as_bytes()).unwrap(),
        Outcome::Stored { .. }
    ));
    let longer = with("0.12345678901234567891");
    assert!(matches!(
        store.ingest(longer.as_bytes()).unwrap(),
        Outcome::Duplicate { .. }
    ));
}

fn a_batch_is_one_transaction_and_rejects_bad_events_by_index(store: &Store) {
    let good = |n: u8| {
        let (_, events) = step("s", &[], &[], "2026-01-01T00:00:00Z").events();
        let _ = n;
        events[0].to_json()
    };
    let a = good(1);
    let b = good(2);
    let batch: Vec<&[u8]> = vec![
        a.as_bytes(),
        b"{not json",
        b.as_bytes(),
        a.as_bytes(),
        b"{\"eventTime\":\"x\"}",
    ];
    let outcomes = store.ingest_batch(&batch).unwrap();
    assert!(matches!(outcomes[0], Outcome::Stored { seq: 1 }));
    assert!(matches!(&outcomes[1], Outcome::Rejected { reason } if reason.starts_with("not JSON")));
    assert!(matches!(outcomes[2], Outcome::Stored { seq: 2 }));
    assert!(
        matches!(outcomes[3], Outcome::Duplicate { seq: 1 }),
        "{:?}",
        outcomes[3]
    );
    assert!(matches!(&outcomes[4], Outcome::Rejected { .. }));
    // The same event with other spacing and member order is the same event.
    let value: Value = serde_json::from_str(&a).unwrap();
    let pretty = serde_json::to_vec_pretty(&value).unwrap();
    assert!(matches!(
        store.ingest(&pretty).unwrap(),
        Outcome::Duplicate { seq: 1 }
    ));
}

/// A NUL character, or a name, version or tag too long for PostgreSQL's
/// indexes, rejects its event alone on PostgreSQL, with the field named; the
/// events beside it in the batch are stored (a failed batch had lost them,
/// small or large, parsed ahead). SQLite keeps them all.
fn text_postgresql_cannot_keep_is_rejected_by_itself_there(store: &Store) {
    let event = |job: &str, input: &str, version: Option<&str>, tag: Option<&str>| {
        let mut run = Run::new(RunId::new_v7());
        if let Some(tag) = tag {
            run.facets.set(
                &ProvContainerRunFacet::new(
                    &format!("quay.io/x/y:{tag}"),
                    ContainerRuntime::Docker,
                )
                .unwrap(),
            );
        }
        let mut e = RunEvent::new(EventType::Complete, run, Job::new("ns", job));
        let mut d = InputDataset::new("file", input);
        if let Some(v) = version {
            d.facets.set(&DatasetVersionDatasetFacet::new(v));
        }
        e.inputs = Some(vec![d]);
        Event::Run(e).to_json().into_bytes()
    };
    let long = "n".repeat(2100);
    let batch = [
        event("good", "/a", None, None),
        event("bad\0nul", "/a", None, None),
        event("j", &format!("/{long}"), None, None),
        event("j", "/b", Some(&long), None),
        event("j", "/c", None, Some(&"t".repeat(128))),
        event("good2", "/d\0", None, None),
        event("fits", &format!("/{}", "n".repeat(2040)), None, None),
    ];
    let raws: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
    let outcomes = store.ingest_batch(&raws).unwrap();
    if !store.location().starts_with("postgres") {
        assert!(
            outcomes.iter().all(|o| matches!(o, Outcome::Stored { .. })),
            "{outcomes:?}"
        );
        return;
    }
    // A batch large enough to be parsed ahead is checked the same way.
    let mut large: Vec<Vec<u8>> = (0..200)
        .map(|i| event(&format!("bulk{i}"), "/e", None, None))
        .collect();
    large[150] = event("bulk\0", "/e", None, None);
    let large_raws: Vec<&[u8]> = large.iter().map(Vec::as_slice).collect();
    let bulk = store.ingest_batch(&large_raws).unwrap();
    assert!(matches!(&bulk[150], Outcome::Rejected { reason } if reason.contains("NUL")));
    assert_eq!(
        bulk.iter()
            .filter(|o| matches!(o, Outcome::Stored { .. }))
            .count(),
        199
    );
    let reason = |i: usize| match &outcomes[i] {
        Outcome::Rejected { reason } => reason.clone(),
        other => panic!("event {i}: {other:?}"),
    };
    assert!(
        matches!(outcomes[0], Outcome::Stored { seq: 1 }),
        "{outcomes:?}"
    );
    assert!(
        reason(1).contains("the job's namespace and name holds a NUL"),
        "{}",
        reason(1)
    );
    assert!(
        reason(2).contains("the namespace and name of input \"file\":\"/nnn")
            && reason(2).contains("takes 2105 bytes; a PostgreSQL store keeps at most 2048"),
        "{}",
        reason(2)
    );
    assert!(reason(3).contains("the version of input"), "{}", reason(3));
    // A tag of 128 characters (the most OCI allows) is kept.
    assert!(
        matches!(outcomes[4], Outcome::Stored { seq: 2 }),
        "{outcomes:?}"
    );
    assert!(reason(5).contains("holds a NUL"), "{}", reason(5));
    assert!(
        matches!(outcomes[6], Outcome::Stored { seq: 3 }),
        "{outcomes:?}"
    );
    assert_eq!(store.verify_chain().unwrap().events, 3 + 199);
}

/// The same content written at 05:00 without a size, then reported written
/// at 01:00 with its size: the version was created at 01:00 and has that
/// size, whether the two events come one by one, in one batch, or in one
/// large batch with many events between (the writers cache the rows of
/// content-addressed versions, and once skipped these updates).
fn a_version_seen_earlier_or_with_its_size_later_is_updated_however_batched(store: &Store) {
    let at = |t: &str| EventTime::parse(t).unwrap().instant().timestamp_micros();
    for (round, fillers) in [(0, None), (1, Some(0)), (2, Some(1000))] {
        let name = format!("/out/X{round}");
        let hex = digest(40 + round);
        let write = |time: &str, size: Option<u64>| {
            let mut e = RunEvent::new(
                EventType::Complete,
                Run::new(RunId::new_v7()),
                Job::new("ns", "w"),
            );
            e.event_time = EventTime::parse(time).unwrap();
            let mut d = OutputDataset::new("file", &name);
            match size {
                Some(size) => {
                    let c = ProvChecksumDatasetFacet::file(size, hex.clone());
                    d.facets.set(&c.version_facet().unwrap());
                    d.facets.set(&c);
                }
                None => d
                    .facets
                    .set(&DatasetVersionDatasetFacet::new(format!("sha256:{hex}"))),
            }
            e.outputs = Some(vec![d]);
            Event::Run(e).to_json().into_bytes()
        };
        let late = write("2026-06-01T05:00:00Z", None);
        let early = write("2026-06-01T01:00:00Z", Some(123));
        match fillers {
            None => {
                store.ingest(&late).unwrap();
                store.ingest(&early).unwrap();
            }
            Some(n) => {
                let filler: Vec<Vec<u8>> = (0..n)
                    .map(|i| {
                        step(&format!("f{i}"), &[], &[], "2026-06-01T02:00:00Z")
                            .events()
                            .1[0]
                            .to_json()
                            .into_bytes()
                    })
                    .collect();
                let mut batch: Vec<&[u8]> = vec![&late];
                batch.extend(filler.iter().map(Vec::as_slice));
                batch.push(&early);
                let outcomes = store.ingest_batch(&batch).unwrap();
                assert!(
                    outcomes.iter().all(|o| matches!(o, Outcome::Stored { .. })),
                    "{outcomes:?}"
                );
            }
        }
        let graph = store
            .lineage(&LineageQuery {
                target: Target::parse(&format!("dataset:file:{name}")).unwrap(),
                direction: Direction::Upstream,
                depth: 1,
                as_of: Some(at("2026-06-01T03:00:00Z")),
            })
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let node = graph
            .node(&format!("dataset:file:{name}#sha256:{hex}"))
            .unwrap_or_else(|| panic!("round {round}: {:?}", graph.ids()));
        assert_eq!(node.data["size"], 123, "round {round}: {}", node.data);
    }
}

/// A dataset's latest version is the one a run wrote last (A, B, then A
/// again: A); the placeholder made for a read before any writer was known
/// hides no writer whose event arrives later, neither from `lineage` of the
/// dataset nor from a later input that names no version.
fn a_placeholder_version_hides_no_writer(store: &Store) {
    let run_event = |job: &str, time: &str, input: Option<&str>, output: Option<(&str, u8)>| {
        let id = RunId::new_v7();
        let mut e = RunEvent::new(EventType::Complete, Run::new(id), Job::new("ns", job));
        e.event_time = EventTime::parse(time).unwrap();
        if let Some(name) = input {
            e.inputs = Some(vec![InputDataset::new("file", name)]);
        }
        if let Some((name, content)) = output {
            let mut d = OutputDataset::new("file", name);
            let c = ProvChecksumDatasetFacet::file(10, digest(content));
            d.facets.set(&c.version_facet().unwrap());
            d.facets.set(&c);
            e.outputs = Some(vec![d]);
        }
        store.ingest_event(&Event::Run(e)).unwrap();
        id
    };
    run_event("w", "2026-07-01T01:00:00Z", None, Some(("/x", 50)));
    run_event("w", "2026-07-01T02:00:00Z", None, Some(("/x", 51)));
    run_event("w", "2026-07-01T04:00:00Z", None, Some(("/x", 50)));
    let a = format!("dataset:file:/x#sha256:{}", digest(50));
    let latest = store.lineage(&upstream("dataset:file:/x", 0)).unwrap();
    assert_eq!(latest.ids(), [a]);

    // Read before any writer is known, then the writer's event arrives.
    run_event("r", "2026-07-01T05:00:00Z", Some("/y"), None);
    run_event("w", "2026-07-01T01:00:00Z", None, Some(("/y", 52)));
    let real = format!("dataset:file:/y#sha256:{}", digest(52));
    let latest = store.lineage(&upstream("dataset:file:/y", 0)).unwrap();
    assert_eq!(
        latest.ids(),
        [real.as_str()],
        "the placeholder hid the writer"
    );
    let later = run_event("r", "2026-07-01T06:00:00Z", Some("/y"), None);
    let read = store
        .lineage(&upstream(&format!("run:{later}"), 1))
        .unwrap();
    assert!(read.ids().contains(&real.as_str()), "{:?}", read.ids());
}

/// Marquez's level: the version-precise graph with each run folded into its
/// job and each version into its dataset, as Marquez's tools draw it.
fn the_marquez_graph_folds_runs_into_jobs_and_versions_into_datasets(store: &Store) {
    let r1 = [("/data/S1.fastq", digest(1))];
    let bam = |d: u8| [("/out/S1.bam", digest(d))];
    let first = step("align", &r1, &bam(10), "2026-01-01T00:00:00Z").record(store);
    let again = step("align", &r1, &bam(12), "2026-01-03T00:00:00Z").record(store);
    let vcf = [("/out/S1.vcf", digest(20))];
    step("call", &bam(12), &vcf, "2026-01-04T00:00:00Z").record(store);
    let graph = store
        .lineage(&LineageQuery {
            target: Target::parse(&format!("sha256:{}", digest(1))).unwrap(),
            direction: Direction::Downstream,
            depth: 10,
            as_of: None,
        })
        .unwrap();
    assert_eq!(graph.ids().len(), 7, "{:?}", graph.ids());
    let m = graph.marquez();
    assert_eq!(
        m.ids(),
        [
            "dataset:file:/data/S1.fastq",
            "dataset:file:/out/S1.bam",
            "dataset:file:/out/S1.vcf",
            "job:genomics:align",
            "job:genomics:call",
        ]
    );
    assert_eq!(
        m.edges(),
        [
            ("dataset:file:/data/S1.fastq", "job:genomics:align"),
            ("dataset:file:/out/S1.bam", "job:genomics:call"),
            ("job:genomics:align", "dataset:file:/out/S1.bam"),
            ("job:genomics:call", "dataset:file:/out/S1.vcf"),
        ]
    );
    let align = &m.node("job:genomics:align").unwrap().data;
    assert_eq!(m.node("job:genomics:align").unwrap().kind, "JOB");
    assert_eq!(
        align["id"],
        serde_json::json!({"namespace": "genomics", "name": "align"})
    );
    assert_eq!(align["type"], "BATCH");
    assert_eq!(
        align["inputs"],
        serde_json::json!([{"namespace": "file", "name": "/data/S1.fastq"}])
    );
    assert_eq!(
        align["outputs"],
        serde_json::json!([{"namespace": "file", "name": "/out/S1.bam"}])
    );
    let mut runs: Vec<&str> = align["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    runs.sort();
    let mut expected = [first.to_string(), again.to_string()];
    expected.sort();
    assert_eq!(runs, expected);
    assert_eq!(align["latestRun"]["id"], again.to_string().as_str());
    assert_eq!(align["latestRun"]["state"], "COMPLETED");
    assert_eq!(align["createdAt"], "2026-01-01T00:00:00.000000Z");
    let bam_node = m.node("dataset:file:/out/S1.bam").unwrap();
    assert_eq!(bam_node.kind, "DATASET");
    assert_eq!(bam_node.data["type"], "DB_TABLE");
    assert_eq!(bam_node.data["physicalName"], "/out/S1.bam");
    assert_eq!(
        bam_node.data["versions"],
        serde_json::json!([
            format!("sha256:{}", digest(10)),
            format!("sha256:{}", digest(12))
        ])
    );
    assert_eq!(bam_node.data["createdAt"], "2026-01-01T00:00:00.000000Z");
    assert_eq!(bam_node.data["updatedAt"], "2026-01-03T00:00:00.000000Z");
    assert!(!m.truncated);

    // Namespaces are often URIs, with colons of their own.
    let mut e = RunEvent::new(
        EventType::Complete,
        Run::new(RunId::new_v7()),
        Job::new("etl", "load"),
    );
    e.inputs = Some(vec![InputDataset::new("s3://bucket", "raw/x.csv")]);
    e.outputs = Some(vec![OutputDataset::new("postgres://db:5432", "public.t")]);
    store.ingest_event(&Event::Run(e)).unwrap();
    let m = store
        .lineage(&upstream("dataset:postgres://db:5432:public.t", 5))
        .unwrap()
        .marquez();
    let load = &m.node("job:etl:load").unwrap().data;
    assert_eq!(
        load["inputs"],
        serde_json::json!([{"namespace": "s3://bucket", "name": "raw/x.csv"}])
    );
    assert_eq!(
        load["outputs"],
        serde_json::json!([{"namespace": "postgres://db:5432", "name": "public.t"}])
    );
}

/// `dataset:<ns>:<name>#<x>` names version `<x>`, unless there is none and
/// a dataset is named `<name>#<x>`.
fn a_dataset_whose_name_holds_a_hash_sign_is_found_by_name(store: &Store) {
    let out = [("/data/S1#lane1.fastq", digest(60))];
    let run = step("demux", &[], &out, "2026-03-01T00:00:00Z").record(store);
    let graph = store
        .lineage(&upstream("dataset:file:/data/S1#lane1.fastq", 1))
        .unwrap();
    assert!(
        graph.ids().contains(&format!("run:{run}").as_str()),
        "{:?}",
        graph.ids()
    );
    // Its versions are named as any dataset's.
    let version = format!("dataset:file:/data/S1#lane1.fastq#sha256:{}", digest(60));
    assert!(store.lineage(&upstream(&version, 1)).is_ok());
    let err = store
        .lineage(&upstream("dataset:file:/data/S1#lane2.fastq", 1))
        .unwrap_err();
    assert!(
        err.to_string().contains("not in the store") || matches!(err, StoreError::NotFound { .. }),
        "{err}"
    );
}

/// 150 steps' events (300), then the first 100 again, with an event that
/// cannot be read at index 170: 401 in all.
fn steps_repeated_with_a_bad_one(prefix: &str) -> Vec<Vec<u8>> {
    let mut events: Vec<Vec<u8>> = Vec::new();
    for n in 0..150u8 {
        let job = format!("{prefix}{n}");
        let outputs = [("/out", digest(n))];
        let (_, made) = step(&job, &[], &outputs, "2026-01-01T00:00:00Z").events();
        events.extend(made.iter().map(|e| e.to_json().into_bytes()));
    }
    events.extend_from_within(..100);
    events.insert(170, b"[1, 2]".to_vec());
    events
}

/// The outcomes of [`steps_repeated_with_a_bad_one`] sent to an empty store.
fn assert_stored_once_in_order(outcomes: &[Outcome]) {
    assert_eq!(outcomes.len(), 401);
    for (i, outcome) in outcomes.iter().enumerate() {
        let ok = match i {
            170 => matches!(outcome, Outcome::Rejected { .. }),
            0..170 => matches!(outcome, Outcome::Stored { seq } if *seq == i as u64 + 1),
            171..301 => matches!(outcome, Outcome::Stored { seq } if *seq == i as u64),
            _ => matches!(outcome, Outcome::Duplicate { seq } if *seq == i as u64 - 300),
        };
        assert!(ok, "{i}: {outcome:?}");
    }
}

/// Large batches are parsed on other threads while they are written: the
/// outcomes must still line up with the input, and an event repeated within
/// the batch (its run new in that batch) must be found.
fn a_large_batch_finds_its_own_repeats_and_rejects_by_index(store: &Store) {
    let events = steps_repeated_with_a_bad_one("j");
    let batch: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
    assert_stored_once_in_order(&store.ingest_batch(&batch).unwrap());
    assert_eq!(store.verify_chain().unwrap().events, 300);
    // And again as a batch of its own: all found, nothing stored.
    let again = store.ingest_batch(&batch).unwrap();
    assert!(
        again
            .iter()
            .enumerate()
            .all(|(i, o)| i == 170 || matches!(o, Outcome::Duplicate { .. })),
        "{again:?}"
    );
    assert_eq!(store.verify_chain().unwrap().events, 300);
}

/// `ingest_batches` parses ahead across its transactions: each batch's
/// outcomes line up with its own events, and the whole is as if the batches
/// had been sent one after the other.
fn a_bulk_load_is_batches_in_order(store: &Store) {
    let events = steps_repeated_with_a_bad_one("bulk");
    let batch: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
    let results = store.ingest_batches(&batch, 64);
    assert_eq!(results.len(), 401usize.div_ceil(64));
    let outcomes: Vec<Outcome> = results
        .into_iter()
        .enumerate()
        .flat_map(|(b, r)| {
            let o = r.unwrap();
            assert_eq!(o.len(), (401 - b * 64).min(64), "batch {b}");
            o
        })
        .collect();
    assert_stored_once_in_order(&outcomes);
    assert_eq!(store.verify_chain().unwrap().events, 300);
    // Fewer events than a parsing chunk take the plain path, batch by batch.
    let small = store.ingest_batches(&batch[..10], 4);
    assert_eq!(small.len(), 3);
    assert!(small.iter().all(|r| {
        r.as_ref()
            .unwrap()
            .iter()
            .all(|o| matches!(o, Outcome::Duplicate { .. }))
    }));
}

fn the_chain_verifies_and_its_head_moves(store: &Store) {
    let empty = store.verify_chain().unwrap();
    assert_eq!(
        (empty.events, empty.head.clone(), empty.broken.clone()),
        (0, None, None)
    );
    step("a", &[], &[("/x", digest(1))], "2026-01-01T00:00:00Z").record(store);
    let report = store.verify_chain().unwrap();
    assert_eq!(report.events, 2);
    assert!(report.broken.is_none());
    let head = report.head.unwrap();
    assert!(head.starts_with("2:"), "{head}");
    step("b", &[], &[], "2026-01-01T00:00:00Z").record(store);
    assert_ne!(store.head().unwrap().unwrap(), head);
}

fn audits_find_containers_derivations_and_unpinned_runs(store: &Store) {
    // Another producer's container facet with only the image reference: its
    // parts are found as `audit container` asks for them.
    let other = RunId::new_v7();
    let mut run = Run::new(other);
    run.facets.insert_raw(
        "prov_container",
        serde_json::json!({
            "_producer": "https://example.org/other",
            "_schemaURL": "https://example.org/other/ContainerFacet.json",
            "image": "ubuntu:latest",
        }),
    );
    store
        .ingest_event(&Event::Run(RunEvent::new(
            EventType::Complete,
            run,
            Job::new("other", "shell"),
        )))
        .unwrap();
    for asked in ["ubuntu:latest", "docker.io/library/ubuntu:latest", "ubuntu"] {
        let found = store.audit_container(asked, Page::default()).unwrap();
        let ids: Vec<&str> = found.runs.items.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, [other.to_string()], "{asked}");
    }
    assert_eq!(
        store
            .audit_container("ubuntu:22.04", Page::default())
            .unwrap()
            .runs
            .total,
        0
    );

    let fq1 = [("/data/S1.fastq", digest(1))];
    let fq2 = [("/data/S2.fastq", digest(2))];
    let bam1 = [("/out/S1.bam", digest(11))];
    let bam2 = [("/out/S2.bam", digest(12))];
    let both = [("/out/S1.bam", digest(11)), ("/out/S2.bam", digest(12))];
    let vcf = [("/out/cohort.vcf", digest(20))];
    let pinned = format!("quay.io/biocontainers/bwa@{IMAGE_DIGEST}");
    let a1 = Step {
        image: &pinned,
        ..step("align", &fq1, &bam1, "2026-01-01T00:00:00Z")
    }
    .record(store);
    let a2 = step("align", &fq2, &bam2, "2026-01-01T01:00:00Z").record(store);
    let call = Step {
        image: "broadinstitute/gatk:4.5.0.0",
        ..step("call", &both, &vcf, "2026-01-02T00:00:00Z")
    }
    .record(store);

    // By digest: the pinned run, and the VCF downstream of it.
    let audit = store
        .audit_container(IMAGE_DIGEST, Page::default())
        .unwrap();
    assert_eq!(
        audit
            .runs
            .items
            .iter()
            .map(|r| r.run_id.clone())
            .collect::<Vec<_>>(),
        [a1.to_string()]
    );
    let outputs: Vec<&str> = audit.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(outputs, ["/out/S1.bam", "/out/cohort.vcf"]);
    // By repository and tag: the unpinned use.
    let audit = store
        .audit_container(
            "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8",
            Page::default(),
        )
        .unwrap();
    assert_eq!(
        audit
            .runs
            .items
            .iter()
            .map(|r| r.run_id.clone())
            .collect::<Vec<_>>(),
        [a2.to_string()]
    );
    // By the start of its digest, as `lineage` prints it, alone or after
    // its repository; a repository that does not match finds nothing.
    let short = &IMAGE_DIGEST[..7 + 12];
    for image in [
        short.to_owned(),
        format!("quay.io/biocontainers/bwa@{short}"),
        short.to_ascii_uppercase().replace("SHA256", "sha256"),
    ] {
        let found = store.audit_container(&image, Page::default()).unwrap();
        let ids: Vec<String> = found.runs.items.iter().map(|r| r.run_id.clone()).collect();
        assert_eq!(ids, [a1.to_string()], "{image}");
    }
    let elsewhere = format!("quay.io/biocontainers/samtools@{short}");
    assert_eq!(
        store
            .audit_container(&elsewhere, Page::default())
            .unwrap()
            .runs
            .total,
        0
    );
    // A malformed image or digest is said to be malformed, not missing;
    // fewer than 12 digits is too short a start.
    let too_short = IMAGE_DIGEST[..7 + 11].to_owned();
    for image in [
        "",
        "sha256:xyz",
        "sha256:ABC",
        "Quay.io/Bwa:1",
        too_short.as_str(),
    ] {
        match store.audit_container(image, Page::default()) {
            Err(StoreError::BadQuery { what, .. }) => assert!(what.contains(image), "{what}"),
            other => panic!("{image:?}: {:?}", other.map(|a| a.runs.total)),
        }
    }

    // Derived from sample 1's FASTQ: its BAM and the cohort VCF, not sample 2's BAM.
    let derived = store
        .derived_from(&Target::Digest(digest(1)), None)
        .unwrap();
    let names: Vec<&str> = derived.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["/out/S1.bam", "/out/cohort.vcf"]);
    let runs: Vec<String> = derived.runs.iter().map(|r| r.run_id.clone()).collect();
    assert!(
        runs.contains(&a1.to_string())
            && runs.contains(&call.to_string())
            && !runs.contains(&a2.to_string())
    );

    // Unpinned: the two tagged runs, and the other producer's.
    let unpinned = store
        .runs(
            &RunFilter {
                unpinned: true,
                ..RunFilter::default()
            },
            Page::default(),
        )
        .unwrap();
    let mut ids: Vec<String> = unpinned.items.iter().map(|r| r.run_id.clone()).collect();
    ids.sort();
    let mut expected = vec![a2.to_string(), call.to_string(), other.to_string()];
    expected.sort();
    assert_eq!(ids, expected);
}

fn cache_lookup_finds_the_latest_complete_run_with_outputs(store: &Store) {
    let fq = [("/data/S1.fastq", digest(1))];
    let bam = [("/out/S1.bam", digest(11))];
    let (first, events) = step("align", &fq, &bam, "2026-01-01T00:00:00Z").events();
    let Event::Run(done) = &events[1] else {
        unreachable!()
    };
    let fingerprint = done
        .run
        .facets
        .get::<ProvFingerprintRunFacet>()
        .unwrap()
        .unwrap()
        .sha256;
    assert!(store.cache_lookup(&fingerprint).unwrap().is_none());
    store.ingest_event(&events[0]).unwrap();
    assert!(
        store.cache_lookup(&fingerprint).unwrap().is_none(),
        "a started run is no cache hit"
    );
    store.ingest_event(&events[1]).unwrap();
    let (run, outputs) = store.cache_lookup(&fingerprint).unwrap().unwrap();
    assert_eq!(run.run_id, first.to_string());
    assert_eq!(outputs[0].digest.as_deref(), Some(digest(11).as_str()));
    assert!(store.cache_lookup(&"0".repeat(64)).unwrap().is_none());
}

fn lineage_as_of_shows_the_graph_as_it_stood(store: &Store) {
    let fq = [("/data/S1.fastq", digest(1))];
    let bam = [("/out/S1.bam", digest(11))];
    let vcf = [("/out/S1.vcf", digest(21))];
    step("align", &fq, &bam, "2026-01-01T00:00:00Z").record(store);
    let call = step("call", &bam, &vcf, "2026-03-01T00:00:00Z").record(store);
    let down = |as_of: Option<&str>| LineageQuery {
        target: Target::Digest(digest(11)),
        direction: Direction::Downstream,
        depth: 20,
        as_of: as_of.map(|t| EventTime::parse(t).unwrap().instant().timestamp_micros()),
    };
    let before = store.lineage(&down(Some("2026-02-01T00:00:00Z"))).unwrap();
    assert!(!before.ids().contains(&format!("run:{call}").as_str()));
    let after = store.lineage(&down(None)).unwrap();
    assert!(after.ids().contains(&format!("run:{call}").as_str()));
    let err = store.lineage(&LineageQuery {
        target: Target::Digest(digest(21)),
        ..down(Some("2026-02-01T00:00:00Z"))
    });
    assert!(
        matches!(err, Err(StoreError::NotFound { .. })),
        "the VCF did not exist yet"
    );

    // A run seen between its START and its COMPLETE: running then, with
    // the facets it had then.
    let id = RunId::new_v7();
    let at = |t: &str| EventTime::parse(t).unwrap();
    let mut start = RunEvent::new(EventType::Start, Run::new(id), Job::new("ns", "long"));
    start.event_time = at("2026-04-01T01:00:00Z");
    start.inputs = Some(vec![InputDataset::new("file", "/data/S1.fastq")]);
    let mut done = RunEvent::new(EventType::Complete, Run::new(id), Job::new("ns", "long"));
    done.event_time = at("2026-04-01T02:00:00Z");
    done.run
        .facets
        .set(&ErrorMessageRunFacet::new("late", "text"));
    store.ingest_event(&Event::Run(start)).unwrap();
    store.ingest_event(&Event::Run(done)).unwrap();
    let run_at = |t: Option<&str>| {
        let graph = store
            .lineage(&LineageQuery {
                target: Target::Run(id.to_string()),
                direction: Direction::Upstream,
                depth: 1,
                as_of: t.map(|t| at(t).instant().timestamp_micros()),
            })
            .unwrap();
        graph.node(&format!("run:{id}")).unwrap().data.clone()
    };
    let then = run_at(Some("2026-04-01T01:30:00Z"));
    assert_eq!(then["state"], "START", "{then}");
    assert!(then["endedAt"].is_null(), "{then}");
    assert!(then["facets"].get("errorMessage").is_none(), "{then}");
    let now = run_at(None);
    assert_eq!(now["state"], "COMPLETE", "{now}");
    assert!(now["endedAt"].is_i64(), "{now}");
    assert!(now["facets"].get("errorMessage").is_some(), "{now}");
}

fn runs_are_listed_by_filters_in_pages(store: &Store) {
    for i in 0..7 {
        let time = format!("2026-01-0{}T00:00:00Z", i + 1);
        step(if i % 2 == 0 { "even" } else { "odd" }, &[], &[], &time).record(store);
    }
    let even = RunFilter {
        job: Some("even".into()),
        ..RunFilter::default()
    };
    let page = store
        .runs(
            &even,
            Page {
                offset: 0,
                limit: 3,
            },
        )
        .unwrap();
    assert_eq!(
        (page.items.len(), page.total, page.next_offset()),
        (3, 4, Some(3))
    );
    let rest = store
        .runs(
            &even,
            Page {
                offset: 3,
                limit: 3,
            },
        )
        .unwrap();
    assert_eq!((rest.items.len(), rest.next_offset()), (1, None));
    let window = RunFilter {
        since: Some(
            EventTime::parse("2026-01-03T00:00:00Z")
                .unwrap()
                .instant()
                .timestamp_micros(),
        ),
        until: Some(
            EventTime::parse("2026-01-05T00:00:00Z")
                .unwrap()
                .instant()
                .timestamp_micros(),
        ),
        state: Some("COMPLETE".into()),
        ..RunFilter::default()
    };
    assert_eq!(store.runs(&window, Page::default()).unwrap().total, 2);
    // A run known only from OTHER events has no state: `OTHER` finds it.
    let other = RunId::new_v7();
    store
        .ingest_event(&Event::Run(RunEvent::new(
            EventType::Other,
            Run::new(other),
            Job::new("ns", "metadata-only"),
        )))
        .unwrap();
    let found = store
        .runs(
            &RunFilter {
                state: Some("OTHER".into()),
                ..RunFilter::default()
            },
            Page::default(),
        )
        .unwrap();
    assert_eq!(found.total, 1);
    assert_eq!(found.items[0].run_id, other.to_string());
}

fn depth_limits_report_truncation(store: &Store) {
    let files: Vec<[(&str, String); 1]> = (0..6).map(|i| [("/chain", digest(i))]).collect();
    for i in 0..5 {
        step("link", &files[i], &files[i + 1], "2026-01-01T00:00:00Z").record(store);
    }
    let full = store
        .lineage(&upstream(&format!("sha256:{}", digest(5)), 20))
        .unwrap();
    assert_eq!(full.graph.len(), 11);
    assert!(!full.truncated);
    let cut = store
        .lineage(&upstream(&format!("sha256:{}", digest(5)), 2))
        .unwrap();
    assert_eq!(cut.graph.len(), 5);
    assert!(cut.truncated);
}
