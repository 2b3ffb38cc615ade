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

#[test]
fn secrets_stay_out_of_every_event_even_in_the_host_command_and_uris() {
    let dir = Dir::new("secrets");
    let events = dir.0.join("events.ndjson");
    let recorder = Recorder::new(
        "genomics",
        Box::new(FileTransport::open(&events, true).unwrap()),
    )
    .with_environment(vec![
        ("NXF_PASS".into(), "ENVPASS1".into()),
        ("NXF_DB_PWD".into(), "ENVPWD2".into()),
        ("NXF_GITHUB_PAT".into(), "ENVPAT3".into()),
        ("NXF_PATH_PREFIX".into(), "/kept/in/clear".into()),
    ]);
    let step = recorder
        .step("load")
        .secret_param("db_password", "hunter2")
        .command(
            [
                "loader",
                "--db-password",
                "hunter2",
                "--api-key=APIKEY4",
                "--token",
                "TOKEN5",
                "postgres://user:URLPW6@db/lab",
                "--threads",
                "8",
            ]
            .map(String::from)
            .to_vec(),
        )
        .input("https://user:URIPW7@example.org/data/a.vcf?X-Amz-Signature=SIG8")
        .start()
        .unwrap();
    step.complete(&[]).unwrap();
    // With no command given, the host process's own arguments are recorded:
    // a secret value among them is hidden too.
    let program = std::env::args().next().unwrap();
    let program = Path::new(&program).file_name().unwrap().to_str().unwrap();
    let host = recorder
        .step("host")
        .secret_param("token", program)
        .start()
        .unwrap();
    host.complete(&[]).unwrap();

    let text = std::fs::read_to_string(&events).unwrap();
    for secret in [
        "hunter2", "ENVPASS1", "ENVPWD2", "ENVPAT3", "APIKEY4", "TOKEN5", "URLPW6", "URIPW7",
        "SIG8",
    ] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
    let all = lines(&events);
    let argv = &all[1]["run"]["facets"]["prov_execution"]["argv"];
    assert_eq!(
        argv,
        &serde_json::json!([
            "loader",
            "--db-password",
            REDACTED,
            format!("--api-key={REDACTED}"),
            "--token",
            REDACTED,
            format!("postgres://user:{REDACTED}@db/lab"),
            "--threads",
            "8"
        ])
    );
    let input = &all[0]["inputs"][0];
    assert_eq!(input["namespace"], "https://example.org");
    assert_eq!(input["name"], "/data/a.vcf");
    let env = &all[0]["run"]["facets"]["environmentVariables"]["environmentVariables"];
    assert!(env.to_string().contains("/kept/in/clear"), "{env}");
    let host_argv = all[3]["run"]["facets"]["prov_execution"]["argv"].to_string();
    assert!(!host_argv.contains(program), "{host_argv}");
    assert!(host_argv.contains(REDACTED), "{host_argv}");
}

#[test]
fn settings_changed_after_a_clone_apply_to_the_changed_recorder() {
    let dir = Dir::new("clone");
    let events = dir.0.join("events.ndjson");
    let recorder = Recorder::new(
        "genomics",
        Box::new(FileTransport::open(&events, true).unwrap()),
    )
    .with_environment(vec![("LANG".into(), "C.UTF-8".into())]);
    let earlier = recorder.clone();
    let strict = recorder
        .with_require_pinned(true)
        .with_env_allow(Vec::new());
    let err = strict
        .step("align")
        .container("quay.io/biocontainers/bwa:0.7.17", ContainerRuntime::Docker)
        .start()
        .err()
        .expect("an unpinned image is refused");
    assert!(err.to_string().contains("not pinned"), "{err}");
    strict.step("quiet").start().unwrap().complete(&[]).unwrap();
    // The clone made before keeps its settings.
    earlier.step("loud").start().unwrap().complete(&[]).unwrap();
    let all = lines(&events);
    assert_eq!(all.len(), 4, "nothing emitted for the refused run");
    assert!(all[0]["run"]["facets"]["environmentVariables"].is_null());
    assert_eq!(
        all[2]["run"]["facets"]["environmentVariables"]["environmentVariables"][0]["value"],
        "C.UTF-8"
    );
}

#[test]
fn a_file_uri_is_hashed_like_a_path_and_nameless_descriptions_are_refused() {
    let dir = Dir::new("fileuri");
    let events = dir.0.join("events.ndjson");
    let recorder = Recorder::new(
        "genomics",
        Box::new(FileTransport::open(&events, true).unwrap()),
    );
    let input = dir.file("in.txt", "v1\n");
    let uri = format!("file://{input}");
    let first = recorder.step("copy").input(uri.clone()).prepare().unwrap();
    std::fs::write(&input, "v2, changed\n").unwrap();
    let second = recorder.step("copy").input(uri.clone()).prepare().unwrap();
    assert_ne!(
        first.fingerprint(),
        second.fingerprint(),
        "the content of a file:// input is part of the fingerprint"
    );
    second.start().unwrap().complete(&[]).unwrap();
    let all = lines(&events);
    let recorded = &all[0]["inputs"][0];
    assert_eq!(recorded["namespace"], "file");
    assert_eq!(recorded["name"], input.as_str());
    assert_eq!(
        recorded["facets"]["prov_checksum"]["checksums"]["sha-256"],
        sha256sum(&input)
    );

    for (what, step) in [
        ("the job name is empty", recorder.step("")),
        (
            "needs both a name and a version",
            recorder.step("x").software("bwa", ""),
        ),
        ("names no object", recorder.step("x").input("s3://bucket")),
    ] {
        let err = step.start().err().expect("refused");
        assert!(err.to_string().contains(what), "{err}");
    }
    let empty_namespace = Recorder::new("", Box::new(FileTransport::open(&events, true).unwrap()));
    let err = empty_namespace.step("x").start().err().expect("refused");
    assert!(err.to_string().contains("namespace is empty"), "{err}");
    assert_eq!(lines(&events).len(), 2, "nothing emitted for refused runs");
}

/// A file transport whose terminal events take a while to go out.
struct Slow(FileTransport);

impl provenance_core::transport::Transport for Slow {
    fn emit(&self, event: &Event) -> Result<(), provenance_core::transport::TransportError> {
        if let Event::Run(e) = event
            && e.event_type != Some(provenance_core::EventType::Start)
        {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        self.0.emit(event)
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

#[test]
fn an_abort_from_another_thread_waits_for_an_end_being_emitted() {
    let dir = Dir::new("race");
    let events = dir.0.join("events.ndjson");
    let recorder = Recorder::new(
        "genomics",
        Box::new(Slow(FileTransport::open(&events, true).unwrap())),
    );
    let run = Arc::new(recorder.step("call").start().unwrap());
    let completing = {
        let run = Arc::clone(&run);
        std::thread::spawn(move || run.complete(&[]).unwrap())
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    // COMPLETE is on its way out: the abort waits for it, and ends nothing.
    let ended_here = run.abort_unless_ended(Execution::default()).unwrap();
    assert!(!ended_here);
    let kinds: Vec<String> = lines(&events)
        .iter()
        .map(|e| e["eventType"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["START", "COMPLETE"],
        "COMPLETE is out when abort returns"
    );
    completing.join().unwrap();
    // A run not yet ended is ended by the abort.
    let other = recorder.step("other").start().unwrap();
    assert!(other.abort_unless_ended(Execution::default()).unwrap());
    assert!(!other.abort_unless_ended(Execution::default()).unwrap());
}

#[test]
fn a_host_process_whose_arguments_are_not_utf8_is_recorded_not_stopped() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = Dir::new("argsnotutf8");
    let events = dir.path("events.ndjson");
    let out = Command::new(env!("CARGO_BIN_EXE_host_step"))
        .arg(&events)
        .arg(OsStr::from_bytes(b"caf\xe9.bam"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = lines(Path::new(&events));
    assert_eq!(all.len(), 2);
    let argv = &all[1]["run"]["facets"]["prov_execution"]["argv"];
    assert_eq!(argv[1], events.as_str());
    assert_eq!(argv[2], "caf\u{fffd}.bam");
}
