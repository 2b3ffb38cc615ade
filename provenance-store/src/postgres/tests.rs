//! The set-at-a-time path must leave exactly the rows that applying the same
//! events one by one leaves: ids, versions, runs and links alike. Runs on the
//! PostgreSQL named by `PROV_TEST_POSTGRES_URL`, in two schemas of its own.

use serde_json::{Value, json};

use super::Postgres;
use crate::model::Outcome;
use crate::normalize::{Prepared, prepare};

const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const VERSION_URL: &str = "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet";

fn hex(n: u32) -> String {
    format!("{n:064x}")
}

fn dataset(name: &str, version: Option<&str>) -> Value {
    match version {
        Some(v) => json!({"namespace": "file", "name": name, "facets": {
            "version": {"_producer": "t", "_schemaURL": VERSION_URL, "datasetVersion": v}}}),
        None => json!({"namespace": "file", "name": name}),
    }
}

fn run_event(
    run: u32,
    job: &str,
    kind: &str,
    second: u32,
    inputs: Vec<Value>,
    outputs: Vec<Value>,
    facets: Value,
) -> Vec<u8> {
    json!({
        "eventType": kind,
        "eventTime": format!("2026-01-01T00:00:{second:02}Z"),
        "producer": "t",
        "schemaURL": SCHEMA_URL,
        "run": {"runId": format!("0190d2c4-7f3a-7c2e-9b1d-{run:012x}"), "facets": facets},
        "job": {"namespace": "ns", "name": job},
        "inputs": inputs,
        "outputs": outputs,
    })
    .to_string()
    .into_bytes()
}

/// Three batches that exercise every fold: a run seen several times in one
/// batch (terminal state first, then RUNNING), columns set and later replaced,
/// versions mentioned again with earlier times and new sizes, outputs without
/// a version, duplicates in and across batches, dataset and job events.
fn batches() -> Vec<Vec<Vec<u8>>> {
    let sha = |n| format!("sha256:{}", hex(n));
    let container = json!({"prov_container": {"image": "bwa:1", "digest": "sha256:aa"}});
    let exec = json!({"prov_execution": {"exitCode": 3, "user": "u", "host": "h"},
                      "parent": {"run": {"runId": "0190d2c4-7f3a-7c2e-9b1d-00000000ffff"},
                                 "job": {"namespace": "ns", "name": "wgs"}}});
    let a_start = run_event(
        1,
        "bwa",
        "START",
        10,
        vec![
            dataset("/r1", Some(&sha(1))),
            dataset("/ref", Some(&sha(9))),
        ],
        vec![],
        container.clone(),
    );
    let a_done = run_event(
        1,
        "bwa",
        "COMPLETE",
        20,
        vec![dataset("/r1", Some(&sha(1)))],
        vec![dataset("/bam", Some(&sha(2))), dataset("/log", None)],
        exec.clone(),
    );
    let a_late = run_event(
        1,
        "bwa",
        "RUNNING",
        15,
        vec![],
        vec![],
        json!({"prov_container": {"image": "bwa:2"}}),
    );
    let b_start = run_event(
        2,
        "call",
        "START",
        30,
        vec![
            dataset("/bam", Some(&sha(2))),
            dataset("/ref", Some(&sha(9))),
        ],
        vec![],
        json!({}),
    );
    let b_done = run_event(
        2,
        "call",
        "FAIL",
        40,
        vec![dataset("/bam", Some(&sha(2)))],
        vec![dataset("/vcf", Some("v1"))],
        exec,
    );
    let early = run_event(
        3,
        "bwa",
        "COMPLETE",
        5,
        vec![dataset("/r1", Some(&sha(1)))],
        vec![dataset("/bam", Some(&sha(2)))],
        container,
    );
    let dataset_event = json!({"eventTime": "2026-01-01T00:00:50Z", "producer": "t",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": dataset("/vcf", Some("v2"))})
    .to_string()
    .into_bytes();
    let job_event = json!({"eventTime": "2026-01-01T00:00:51Z", "producer": "t",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
        "job": {"namespace": "ns", "name": "qc"}})
    .to_string()
    .into_bytes();
    vec![
        vec![
            a_start.clone(),
            a_done,
            a_late,
            a_start.clone(),
            dataset_event,
        ],
        vec![b_start, a_start, b_done.clone(), job_event],
        vec![early, b_done],
    ]
}

fn prepared(batch: &[Vec<u8>]) -> Vec<Prepared> {
    batch
        .iter()
        .map(|raw| prepare(raw).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(raw))))
        .collect()
}

struct Schema {
    admin: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

/// Every row of the lineage model, and the log without its receive times.
/// Ids are shown by rank: which numbers an identity column skips (an upsert
/// that finds its row still draws one) is no part of the contract, their
/// order is.
fn dump(url: &str) -> String {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.batch_execute(
        "CREATE TEMP VIEW j AS SELECT id, rank() OVER (ORDER BY id) n FROM job;
         CREATE TEMP VIEW d AS SELECT id, rank() OVER (ORDER BY id) n FROM dataset;
         CREATE TEMP VIEW v AS SELECT id, rank() OVER (ORDER BY id) n FROM dataset_version;",
    )
    .unwrap();
    let mut out = String::new();
    for table in [
        "(SELECT seq, event_id, link, kind, run_id, event_time FROM event) t",
        "(SELECT j.n, namespace, name FROM job JOIN j USING (id)) t",
        "(SELECT r.run_id, j.n, state, started_at, ended_at, first_seen, parent_run_id, root_run_id,
                 fingerprint, container_image, container_registry, container_repository,
                 container_tag, container_digest, params_sha256, exit_code, user_name, host
          FROM run r JOIN j ON j.id = r.job_id) t",
        "(SELECT d.n, namespace, name FROM dataset JOIN d USING (id)) t",
        "(SELECT v.n, d.n, version, digest, size, created_at
          FROM dataset_version x JOIN v USING (id) JOIN d ON d.id = x.dataset_id) t",
        "(SELECT run_id, v.n, event_time FROM run_input JOIN v ON v.id = version_id) t",
        "(SELECT run_id, v.n, event_time FROM run_output JOIN v ON v.id = version_id) t",
    ] {
        let text: Option<String> = c
            .query_one(
                &format!("SELECT string_agg(t::text, E'\\n' ORDER BY t::text) FROM {table}"),
                &[],
            )
            .unwrap()
            .get(0);
        out.push_str(&format!("{table}:\n{}\n", text.unwrap_or_default()));
    }
    out
}

#[test]
fn bulk_and_one_by_one_leave_the_same_rows() {
    let Ok(admin) = std::env::var("PROV_TEST_POSTGRES_URL") else {
        assert_ne!(
            std::env::var("PROV_REQUIRE_POSTGRES").as_deref(),
            Ok("1"),
            "PROV_REQUIRE_POSTGRES=1 but PROV_TEST_POSTGRES_URL is not set"
        );
        eprintln!("note: skipped on PostgreSQL (set PROV_TEST_POSTGRES_URL to run it)");
        return;
    };
    let mut results = Vec::new();
    let mut schemas = Vec::new();
    for bulk in [true, false] {
        let name = format!("prov_unit_{}_{bulk}", std::process::id());
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        c.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
        ))
        .unwrap();
        schemas.push(Schema {
            admin: admin.clone(),
            name: name.clone(),
        });
        let separator = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{separator}options=-csearch_path%3D{name}");
        let store = Postgres::open(&url).unwrap();
        let mut outcomes: Vec<Vec<Outcome>> = Vec::new();
        for batch in batches() {
            let events = prepared(&batch);
            assert!(
                super::bulk::fits(&events),
                "the batch must take the bulk path"
            );
            outcomes.push(store.ingest_with(&mut events.into_iter(), bulk).unwrap());
        }
        results.push((outcomes, dump(&url)));
    }
    let (bulk, each) = (&results[0], &results[1]);
    assert_eq!(bulk.0, each.0);
    assert_eq!(bulk.1, each.1);
    // And the rows are the interesting ones: the fold had work to do.
    assert!(each.1.contains(",COMPLETE,"), "{}", each.1);
    assert!(each.1.contains(",FAIL,"), "{}", each.1);
    assert!(matches!(each.0[1][1], Outcome::Duplicate { seq: 1 }));
}
