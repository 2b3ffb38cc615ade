//! Story: the project's own facet schemas (`schemas/`) agree with the Rust types,
//! accept every valid example, refuse every invalid one at a known place, and
//! every event the project builds passes the official OpenLineage schemas.

use std::path::Path;

use provenance_core::canonical::canonical_sha256;
use provenance_core::facets::*;
use provenance_core::{
    DatasetEvent, Event, EventType, InputDataset, Job, JobEvent, OutputDataset, Run, RunEvent,
    RunId, StaticDataset, validate,
};
use provenance_tests::{Schemas, json_files, read_json, schemas_dir};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The schema `$id` for an example file named `<TypeName>.<case>.json`: the
/// current version of that type's schema.
fn schema_of(file: &Path) -> String {
    let name = file.file_name().unwrap().to_str().unwrap();
    let type_name = name.split('.').next().unwrap();
    let suffix = format!("/{type_name}.json");
    let url = PROV_FACET_SCHEMA_URLS
        .iter()
        .find(|url| url.starts_with(PROV_SCHEMA_BASE) && url.ends_with(&suffix))
        .unwrap_or_else(|| panic!("{}: no facet type {type_name}", file.display()));
    url.to_string()
}

/// Reads `value` as `F` and writes it back: the type and the schema must agree.
fn read_as<F: Facet + Serialize + DeserializeOwned>(file: &Path, value: &Value) {
    let typed: F = serde_json::from_value(value.clone()).unwrap_or_else(|e| {
        panic!(
            "{}: the Rust type refuses a valid example: {e}",
            file.display()
        )
    });
    assert_eq!(
        &serde_json::to_value(&typed).unwrap(),
        value,
        "{}",
        file.display()
    );
    assert_eq!(value["_schemaURL"], F::SCHEMA_URL, "{}", file.display());
}

#[test]
fn every_schema_is_the_schema_of_a_facet_type() {
    let ids: Vec<String> = json_files(&schemas_dir())
        .iter()
        .map(|f| read_json(f)["$id"].as_str().unwrap().to_owned())
        .collect();
    let types = PROV_FACET_SCHEMA_URLS;
    let mut ids_sorted = ids.clone();
    ids_sorted.sort();
    let mut types_sorted: Vec<String> = types.iter().map(|s| s.to_string()).collect();
    types_sorted.sort();
    assert_eq!(ids_sorted, types_sorted);
    for file in json_files(&schemas_dir()) {
        let id = read_json(&file)["$id"].as_str().unwrap().to_owned();
        assert!(
            id.ends_with(file.file_name().unwrap().to_str().unwrap()),
            "{}: $id {id} does not end with the file name",
            file.display()
        );
    }
}

#[test]
fn every_valid_example_passes_and_reads_as_its_type() {
    let schemas = Schemas::load();
    let files = json_files(&schemas_dir().join("examples/valid"));
    assert!(files.len() >= 6, "too few valid examples");
    for file in files {
        let value = read_json(&file);
        let errors = schemas.errors(&schema_of(&file), &value);
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
        match file
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .split('.')
            .next()
            .unwrap()
        {
            "ProvContainerRunFacet" => read_as::<ProvContainerRunFacet>(&file, &value),
            "ProvParametersRunFacet" => {
                read_as::<ProvParametersRunFacet>(&file, &value);
                let recomputed = canonical_sha256(&value["parameters"]).unwrap();
                assert_eq!(value["sha256"], recomputed, "{}", file.display());
            }
            "ProvChecksumDatasetFacet" => read_as::<ProvChecksumDatasetFacet>(&file, &value),
            "ProvExecutionRunFacet" => read_as::<ProvExecutionRunFacet>(&file, &value),
            "ProvSoftwareRunFacet" => read_as::<ProvSoftwareRunFacet>(&file, &value),
            "ProvFingerprintRunFacet" => read_as::<ProvFingerprintRunFacet>(&file, &value),
            "ProvCacheRunFacet" => read_as::<ProvCacheRunFacet>(&file, &value),
            "ProvRerunRunFacet" => read_as::<ProvRerunRunFacet>(&file, &value),
            other => panic!("{}: no facet type {other}", file.display()),
        }
    }
}

/// Where each invalid example must fail: the instance path of an error, and a
/// keyword that ends its schema path.
const INVALID: &[(&str, &str, &str)] = &[
    (
        "ProvCacheRunFacet.original-not-a-uuid",
        "/originalRunId",
        "format",
    ),
    (
        "ProvChecksumDatasetFacet.bad-md5",
        "/checksums/md5",
        "pattern",
    ),
    (
        "ProvChecksumDatasetFacet.directory-without-file-count",
        "",
        "then/required",
    ),
    ("ProvChecksumDatasetFacet.negative-size", "/size", "minimum"),
    (
        "ProvChecksumDatasetFacet.no-sha256",
        "/checksums",
        "required",
    ),
    (
        "ProvContainerRunFacet.other-schema-version",
        "/_schemaURL",
        "const",
    ),
    ("ProvContainerRunFacet.pinned-with-reason", "", "then/not"),
    (
        "ProvContainerRunFacet.pinned-without-digest",
        "",
        "then/required",
    ),
    (
        "ProvContainerRunFacet.relative-image-file",
        "/repository",
        "pattern",
    ),
    (
        "ProvContainerRunFacet.resolved-at-not-a-time",
        "/resolvedAt",
        "format",
    ),
    ("ProvContainerRunFacet.unknown-runtime", "/runtime", "enum"),
    (
        "ProvContainerRunFacet.uppercase-digest",
        "/digest",
        "pattern",
    ),
    ("ProvExecutionRunFacet.empty-argv", "/argv", "minItems"),
    (
        "ProvExecutionRunFacet.start-not-a-time",
        "/startTime",
        "format",
    ),
    ("ProvFingerprintRunFacet.other-scheme", "/scheme", "const"),
    (
        "ProvFingerprintRunFacet.unknown-member",
        "",
        "additionalProperties",
    ),
    ("ProvParametersRunFacet.missing-producer", "", "required"),
    ("ProvParametersRunFacet.short-hash", "/sha256", "pattern"),
    (
        "ProvRerunRunFacet.relative-scratch",
        "/scratchDirectory",
        "pattern",
    ),
    (
        "ProvSoftwareRunFacet.tool-without-version",
        "/tools/0",
        "required",
    ),
];

#[test]
fn every_invalid_example_fails_at_its_asserted_place() {
    let schemas = Schemas::load();
    let files = json_files(&schemas_dir().join("examples/invalid"));
    let stems: Vec<String> = files
        .iter()
        .map(|f| f.file_stem().unwrap().to_str().unwrap().to_owned())
        .collect();
    let expected: Vec<&str> = INVALID.iter().map(|(stem, _, _)| *stem).collect();
    assert_eq!(
        stems, expected,
        "every invalid example needs an asserted place, and only those"
    );

    for (file, (_, path, keyword)) in files.iter().zip(INVALID) {
        let value = read_json(file);
        let validator = schemas.validator(&schema_of(file));
        let errors: Vec<(String, String)> = validator
            .iter_errors(&value)
            .map(|e| (e.instance_path().to_string(), e.schema_path().to_string()))
            .collect();
        assert!(
            errors
                .iter()
                .any(|(p, s)| p == path && s.ends_with(keyword)),
            "{}: expected an error at {path:?} from {keyword:?}, got {errors:#?}",
            file.display()
        );
    }
}

const DIGEST: &str = "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";

fn file_input(path: &str, sha256: &str, size: u64) -> InputDataset {
    let checksum = ProvChecksumDatasetFacet::file(size, sha256).with_checksum(MD5, "0".repeat(32));
    let mut input = InputDataset::new("file", path);
    input.facets.set(&checksum.version_facet().unwrap());
    input.facets.set(&checksum);
    input
        .facets
        .set(&StorageDatasetFacet::new("posix", Some("fastq".into())));
    input.facets.set(&DatasetTypeDatasetFacet::new("FILE"));
    input
}

/// The events the project emits, with every custom facet filled.
fn events_we_build() -> Vec<Event> {
    let pipeline = RunId::new_v7();
    let run_id = RunId::new_v7();
    let job = || {
        let mut job = Job::new("genomics", "bwa_mem");
        job.facets.set(&JobTypeJobFacet::batch("PROV", "TASK"));
        job.facets
            .set(&DocumentationJobFacet::new("Align reads to GRCh38"));
        job.facets.set(&SourceCodeLocationJobFacet::git(
            "https://github.com/genomics-provenance/wgs-pipeline",
            Some("4f2a9c1".into()),
        ));
        job.facets.set(&OwnershipJobFacet::new(vec![Owner {
            name: "team:genomics-core".into(),
            kind: Some("MAINTAINER".into()),
            extra: Default::default(),
        }]));
        job
    };
    let params = ProvParametersRunFacet::new(
        json!({"threads": 8, "reference": "GRCh38", "k": 19.0})
            .as_object()
            .unwrap()
            .clone(),
    )
    .unwrap();
    let container = ProvContainerRunFacet::new(
        "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8",
        ContainerRuntime::Docker,
    )
    .unwrap()
    .with_digest(DIGEST, DigestSource::Registry);
    let inputs = vec![
        file_input("/data/S1_R1.fastq.gz", &"a".repeat(64), 100),
        file_input("/ref/GRCh38.fa", &"b".repeat(64), 200),
    ];
    let command: Vec<String> = [
        "bwa",
        "mem",
        "-t",
        "8",
        "/ref/GRCh38.fa",
        "/data/S1_R1.fastq.gz",
    ]
    .map(String::from)
    .to_vec();
    let digests: Vec<String> = inputs
        .iter()
        .map(|i| {
            i.facets
                .get::<DatasetVersionDatasetFacet>()
                .unwrap()
                .unwrap()
                .dataset_version
        })
        .collect();
    let identity = container.identity();
    let fingerprint = Fingerprint {
        job: "bwa_mem",
        command: &command,
        container: Some(&identity),
        parameters: &params.parameters,
        inputs: &digests,
    }
    .facet()
    .unwrap();

    let mut run = Run::new(run_id);
    run.facets.set(
        &ParentRunFacet::new(pipeline, JobRef::new("genomics", "wgs"))
            .with_root(pipeline, JobRef::new("genomics", "wgs")),
    );
    run.facets
        .set(&NominalTimeRunFacet::new("2026-11-20T08:00:00Z"));
    run.facets.set(&params);
    run.facets.set(&params.execution_parameters().unwrap());
    run.facets.set(&container);
    run.facets.set(&fingerprint);
    run.facets
        .set(&ProvSoftwareRunFacet::new([("bwa", "0.7.17-r1188")]));
    run.facets.set(&ProcessingEngineRunFacet::new(
        "prov",
        env!("CARGO_PKG_VERSION"),
    ));
    run.facets
        .set(&EnvironmentVariablesRunFacet::new([("LANG", "C.UTF-8")]));
    run.facets
        .set(&TagsRunFacet::new(vec![Tag::new("sample", "S1", "USER")]));

    let mut start = RunEvent::new(EventType::Start, run.clone(), job());
    start.inputs = Some(inputs.clone());

    let mut complete_run = run.clone();
    complete_run.facets.set(&ProvExecutionRunFacet {
        base: FacetBase::ours::<ProvExecutionRunFacet>(),
        argv: command.clone(),
        working_directory: "/scratch/run-42".into(),
        exit_code: Some(0),
        signal: None,
        wall_time_ms: 1234,
        cpu_time_ms: Some(4000),
        peak_rss_bytes: Some(1 << 30),
        host: "node-17".into(),
        user: "pipeline".into(),
        start_time: "2026-11-20T08:15:02.000001Z".into(),
        end_time: "2026-11-20T08:15:03.234Z".into(),
        extra: Default::default(),
    });
    let mut bam = OutputDataset::new("file", "/results/S1.bam");
    let bam_checksum = ProvChecksumDatasetFacet::file(300, "c".repeat(64));
    bam.facets.set(&bam_checksum);
    bam.facets.set(&bam_checksum.version_facet().unwrap());
    bam.facets
        .set(&LifecycleStateChangeDatasetFacet::new("CREATE"));
    bam.output_facets
        .set(&OutputStatisticsOutputDatasetFacet::new(300, 1));
    let mut index = OutputDataset::new("file", "/ref/GRCh38.fa.bwt-index");
    let dir = ProvChecksumDatasetFacet::directory(5000, 5, "d".repeat(64), "prov-merkle-1");
    index.facets.set(&dir);
    let mut complete = RunEvent::new(EventType::Complete, complete_run.clone(), job());
    complete.inputs = Some(inputs.clone());
    complete.outputs = Some(vec![bam, index]);

    let mut failed_run = complete_run;
    failed_run.facets.set(&ErrorMessageRunFacet::new(
        "bwa exited with status 1",
        "shell",
    ));
    let fail = RunEvent::new(EventType::Fail, failed_run, job());

    let mut dataset = StaticDataset::new("file", "/data/S1_R1.fastq.gz");
    dataset
        .facets
        .set(&ProvChecksumDatasetFacet::file(100, "a".repeat(64)));
    dataset
        .facets
        .set(&DocumentationDatasetFacet::new("Sample S1, read 1"));
    dataset
        .facets
        .set(&SymlinksDatasetFacet::new(vec![SymlinkIdentifier {
            namespace: "file".into(),
            name: "/data/latest/S1_R1.fastq.gz".into(),
            kind: "SYMLINK".into(),
            extra: Default::default(),
        }]));
    let mut job_event = JobEvent::new(job());
    job_event.inputs = Some(inputs);

    vec![
        Event::Run(start),
        Event::Run(complete),
        Event::Run(fail),
        Event::Dataset(DatasetEvent::new(dataset)),
        Event::Job(job_event),
    ]
}

#[test]
fn every_event_we_build_passes_the_official_schemas_and_ours() {
    let schemas = Schemas::load();
    for event in events_we_build() {
        let value = event.to_value();
        let errors = schemas.event_errors(&value);
        assert!(errors.is_empty(), "{errors:#?}");
        // The text the transports write is that same JSON, in canonical form.
        let mut line = Vec::new();
        event.write_json(&mut line);
        let written: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(written, value);
        assert_eq!(
            String::from_utf8(line.clone()).unwrap(),
            serde_json::to_string(&value).unwrap()
        );
        assert_eq!(event.to_json().as_bytes(), &line[..]);
        assert_eq!(validate(&event), vec![]);
        assert_eq!(Event::from_value(value).unwrap(), event);
    }
}

#[test]
fn the_schema_check_catches_a_broken_event() {
    // The check above must be able to fail: break one custom and one standard member.
    let schemas = Schemas::load();
    let mut value = events_we_build()[1].to_value();
    value["run"]["facets"]["prov_container"]["digest"] = json!("sha256:nothex");
    value["run"]["runId"] = json!("run_id");
    let errors = schemas.event_errors(&value);
    assert!(errors.iter().any(|e| e.contains("oneOf")), "{errors:#?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("prov_container") && e.contains("/digest")),
        "{errors:#?}"
    );
    // Against the RunEvent definition alone the spec names the runId.
    let run_event = format!("{}#/$defs/RunEvent", provenance_core::OPENLINEAGE_SPEC_URL);
    let errors = schemas.errors(&run_event, &value);
    assert!(
        errors.iter().any(|e| e.starts_with("/run/runId")),
        "{errors:#?}"
    );
}

/// Strict validation (`prov validate`) and the official schema agree on
/// damage to an event's structure: each damaged event is refused by both,
/// whether or not it can still be read (reading forgives `"inputs": null`;
/// it stops at the first fault of an event it cannot read, where
/// `validate_json` lists them all).
#[test]
fn strict_validation_refuses_what_the_official_schema_refuses() {
    let schemas = Schemas::load();
    let events = events_we_build();
    let run = events
        .iter()
        .find(|e| matches!(e, Event::Run(r) if !r.inputs().is_empty() && !r.outputs().is_empty()))
        .expect("a run event with inputs and outputs")
        .to_value();
    let strict = |value: &Value| -> Vec<String> {
        let mut found: Vec<String> = provenance_core::validate_json(value)
            .iter()
            .map(ToString::to_string)
            .collect();
        if let Ok(event) = Event::from_value(value.clone()) {
            found.extend(validate(&event).iter().map(ToString::to_string));
        }
        found
    };
    assert!(strict(&run).is_empty() && schemas.event_errors(&run).is_empty());
    type Damage = fn(&mut Value);
    let damages: [(&str, Damage); 12] = [
        ("inputs null", |v| v["inputs"] = Value::Null),
        ("outputs null", |v| v["outputs"] = Value::Null),
        ("outputs a string", |v| v["outputs"] = json!("x")),
        ("an input without a name", |v| {
            v["inputs"][0].as_object_mut().unwrap().remove("name");
        }),
        ("an input that is a number", |v| v["inputs"][0] = json!(3)),
        ("no producer", |v| {
            v.as_object_mut().unwrap().remove("producer");
        }),
        ("a producer that is no URI", |v| {
            v["producer"] = json!("bad producer")
        }),
        ("a numeric producer", |v| v["producer"] = json!(7)),
        ("no schemaURL", |v| {
            v.as_object_mut().unwrap().remove("schemaURL");
        }),
        ("a job without a namespace", |v| {
            v["job"].as_object_mut().unwrap().remove("namespace");
        }),
        ("run facets that are a list", |v| {
            v["run"]["facets"] = json!([])
        }),
        ("no runId", |v| {
            v["run"].as_object_mut().unwrap().remove("runId");
        }),
    ];
    for (what, damage) in damages {
        let mut value = run.clone();
        damage(&mut value);
        assert!(
            !schemas.event_errors(&value).is_empty(),
            "{what}: the official schema accepts it"
        );
        assert!(
            !strict(&value).is_empty(),
            "{what}: strict validation accepts it"
        );
    }
    // Several faults at once: each is listed, though reading stops at one.
    let mut value = run.clone();
    value["producer"] = json!("bad producer");
    value["inputs"][0].as_object_mut().unwrap().remove("name");
    value["outputs"] = json!("x");
    assert_eq!(strict(&value).len(), 3, "{:?}", strict(&value));
}
