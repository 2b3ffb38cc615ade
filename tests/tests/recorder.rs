//! Story: a pipeline records itself with the recorder; every event it emits
//! validates against the official OpenLineage schemas and ours, and the store
//! transport turns them straight into lineage.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use provenance_core::facets::{ContainerRuntime, DigestSource};
use provenance_core::hash::MemoryCache;
use provenance_core::recorder::{Execution, REDACTED, Recorder};
use provenance_core::transport::FileTransport;
use provenance_core::{Event, validate};
use provenance_store::{Direction, LineageQuery, Store, StoreTransport, Target};
use provenance_tests::Schemas;
use serde_json::Value;

struct Dir(PathBuf);
impl Dir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("prov-rec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn file(&self, name: &str, content: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sha256sum(path: &str) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const DIGEST: &str = "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";

#[test]
fn a_recorded_pipeline_emits_valid_complete_events() {
    let dir = Dir::new("pipeline");
    let fastq = dir.file("S1.fastq", "@r1\nACGT\n+\nIIII\n");
    let reference = dir.file("GRCh38.fa", ">chr1\nACGT\n");
    let events = dir.0.join("events.ndjson");
    let recorder = Recorder::new(
        "genomics",
        Box::new(FileTransport::open(&events, true).unwrap()),
    )
    .with_cache(Arc::new(MemoryCache::new()))
    .with_env_allow(vec!["PROV_STORY_*".into()])
    .with_environment(vec![
        ("PROV_STORY_THREADS".into(), "8".into()),
        ("PROV_STORY_API_TOKEN".into(), "tok-123456".into()),
        ("PATH".into(), "/usr/bin".into()),
    ]);

    let pipeline = recorder.step("wgs").job_type("PIPELINE").start().unwrap();
    let align = recorder
        .step("bwa_mem")
        .parent(&pipeline)
        .container(
            "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8",
            ContainerRuntime::Docker,
        )
        .container_digest(DIGEST, DigestSource::Registry)
        .param("threads", 8)
        .param("read_group", "@RG\tID:S1")
        .secret_param("db_password", "hunter2-very-secret")
        .command(vec![
            "bwa".into(),
            "mem".into(),
            reference.clone(),
            fastq.clone(),
        ])
        .input(&fastq)
        .input(&reference)
        .input("s3://bucket/annotations/gencode.gtf")
        .software("bwa", "0.7.17-r1188")
        .start()
        .unwrap();
    let bam = dir.file("S1.bam", "aligned");
    align.complete(&[&bam]).unwrap();
    pipeline.complete_with(&[], Execution::default()).unwrap();

    let text = std::fs::read_to_string(&events).unwrap();
    assert!(
        !text.contains("hunter2"),
        "a secret parameter is never in clear"
    );
    assert!(
        !text.contains("tok-123456"),
        "a secret-looking variable is redacted"
    );
    let all = lines(&events);
    assert_eq!(all.len(), 4);
    let schemas = Schemas::load();
    for e in &all {
        let errors = schemas.event_errors(e);
        assert!(errors.is_empty(), "{errors:#?}");
        assert_eq!(validate(&Event::from_value(e.clone()).unwrap()), vec![]);
    }

    let (start, complete) = (&all[1], &all[2]);
    assert_eq!(start["eventType"], "START");
    assert_eq!(complete["eventType"], "COMPLETE");
    let inputs = start["inputs"].as_array().unwrap();
    assert_eq!(inputs[0]["name"], fastq);
    assert_eq!(
        inputs[0]["facets"]["prov_checksum"]["checksums"]["sha-256"],
        sha256sum(&fastq)
    );
    assert_eq!(
        inputs[0]["facets"]["version"]["datasetVersion"],
        format!("sha256:{}", sha256sum(&fastq))
    );
    assert_eq!(inputs[0]["facets"]["storage"]["fileFormat"], "fastq");
    assert_eq!(
        (inputs[2]["namespace"].as_str(), inputs[2]["name"].as_str()),
        (Some("s3://bucket"), Some("annotations/gencode.gtf"))
    );
    assert_eq!(
        complete["outputs"][0]["facets"]["prov_checksum"]["checksums"]["sha-256"],
        sha256sum(&bam)
    );

    let run = &complete["run"]["facets"];
    assert_eq!(run["prov_execution"]["exitCode"], 0);
    assert_eq!(run["prov_execution"]["argv"][0], "bwa");
    assert_eq!(run["prov_container"]["digest"], DIGEST);
    assert_eq!(run["prov_parameters"]["parameters"]["threads"], 8);
    assert!(
        run["prov_parameters"]["parameters"]["db_password"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(
        run["prov_fingerprint"],
        start["run"]["facets"]["prov_fingerprint"]
    );
    assert_eq!(run["parent"]["run"]["runId"], all[0]["run"]["runId"]);
    assert_eq!(
        run["parent"]["root"]["run"]["runId"],
        all[0]["run"]["runId"]
    );
    let env: Vec<(String, String)> = run["environmentVariables"]["environmentVariables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().into(),
                v["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        env.contains(&("PROV_STORY_THREADS".into(), "8".into())),
        "{env:?}"
    );
    assert!(
        env.contains(&("PROV_STORY_API_TOKEN".into(), REDACTED.into())),
        "{env:?}"
    );
    assert!(
        !env.iter().any(|(k, _)| k == "PATH"),
        "only allowed variables are captured"
    );
}

#[test]
fn a_run_dropped_unfinished_is_aborted_and_a_missing_output_fails() {
    let dir = Dir::new("abort");
    let events = dir.0.join("events.ndjson");
    let recorder = Recorder::new(
        "genomics",
        Box::new(FileTransport::open(&events, true).unwrap()),
    );
    {
        let _forgotten = recorder.step("markdup").start().unwrap();
    }
    let step = recorder.step("call").start().unwrap();
    let err = step
        .complete(&[&dir.path("never-written.vcf")])
        .unwrap_err();
    assert!(err.to_string().contains("hash output of job call"), "{err}");

    let all = lines(&events);
    let kinds: Vec<&str> = all
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["START", "ABORT", "START", "FAIL"]);
    let message = all[3]["run"]["facets"]["errorMessage"]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("never-written.vcf"), "{message}");
    let schemas = Schemas::load();
    for e in &all {
        assert!(schemas.event_errors(e).is_empty());
    }
}

#[test]
fn the_store_transport_answers_lineage_of_recorded_bytes() {
    let dir = Dir::new("store-lineage");
    let fastq = dir.file("S1.fastq", "@r1\nACGT\n+\nIIII\n");
    let path = dir.0.join("prov.db");
    {
        let recorder = Recorder::new(
            "genomics",
            Box::new(StoreTransport::new(
                Store::open(path.to_str().unwrap()).unwrap(),
            )),
        );
        let align = recorder.step("align").input(&fastq).start().unwrap();
        let bam = dir.file("S1.bam", "aligned");
        align.complete(&[&bam]).unwrap();
        let call = recorder.step("call").input(&bam).start().unwrap();
        let vcf = dir.file("S1.vcf", "##fileformat=VCFv4.2\n");
        call.complete(&[&vcf]).unwrap();
    }
    let store = Store::open(path.to_str().unwrap()).unwrap();
    let graph = store
        .lineage(&LineageQuery {
            target: Target::Digest(sha256sum(&dir.path("S1.vcf"))),
            direction: Direction::Upstream,
            depth: 20,
            as_of: None,
        })
        .unwrap();
    let fastq_node = format!("dataset:file:{fastq}#sha256:{}", sha256sum(&fastq));
    assert!(
        graph.ids().contains(&fastq_node.as_str()),
        "{:?}",
        graph.ids()
    );
    assert_eq!(graph.graph.iter().filter(|n| n.kind == "RUN").count(), 2);
    assert!(store.verify_chain().unwrap().broken.is_none());
}
