//! Emission benchmark: build, serialize and write RunEvents (every prov facet
//! filled, four inputs, one output) to the file transport, beside the official
//! OpenLineage Python client doing the same with its FileTransport in the same
//! run; and the per-step overhead of the recorder (START + COMPLETE, no hashing).
//!
//! Run with `cargo bench -p provenance-core --bench emit`. The Python peer needs
//! `pip install openlineage-python`; without it that part is skipped. Target:
//! at least 100x the Python client's rate.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use provenance_core::facets::*;
use provenance_core::recorder::Recorder;
use provenance_core::transport::{FileTransport, Transport};
use provenance_core::{Event, EventType, InputDataset, Job, OutputDataset, Run, RunEvent, RunId};
use serde_json::json;

const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn checksum(size: u64) -> ProvChecksumDatasetFacet {
    ProvChecksumDatasetFacet::file(size, HEX).with_checksum(MD5, &HEX[..32])
}

fn dataset_facets(facets: &mut Facets<DatasetKind>, size: u64) {
    let c = checksum(size);
    facets.set(&c.version_facet().unwrap());
    facets.set(&c);
    facets.set(&StorageDatasetFacet::new("posix", Some("bam".into())));
    facets.set(&DatasetTypeDatasetFacet::new("FILE"));
}

/// The same shape as the Python peer builds.
fn event(i: usize, root: RunId) -> Event {
    let mut run = Run::new(RunId::new_v7());
    run.facets.set(
        &ParentRunFacet::new(root, JobRef::new("genomics", "wgs"))
            .with_root(root, JobRef::new("genomics", "wgs")),
    );
    let params = json!({"threads": 8, "sample": format!("S{i}"), "reference": "GRCh38"});
    let params = ProvParametersRunFacet::new(params.as_object().unwrap().clone()).unwrap();
    run.facets.set(&params.execution_parameters().unwrap());
    run.facets.set(&params);
    run.facets.set(
        &ProvContainerRunFacet::new(
            "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8",
            ContainerRuntime::Docker,
        )
        .unwrap()
        .with_digest(format!("sha256:{HEX}"), DigestSource::Registry),
    );
    run.facets.set(&ProvFingerprintRunFacet {
        base: FacetBase::ours::<ProvFingerprintRunFacet>(),
        sha256: HEX.into(),
        scheme: FINGERPRINT_SCHEME.into(),
        extra: Default::default(),
    });
    run.facets
        .set(&ProvSoftwareRunFacet::new([("bwa", "0.7.17")]));
    run.facets
        .set(&ProcessingEngineRunFacet::new("prov", "0.1.0"));
    run.facets.set(&ProvExecutionRunFacet {
        base: FacetBase::ours::<ProvExecutionRunFacet>(),
        argv: ["bwa", "mem", "-t", "8"].map(String::from).to_vec(),
        working_directory: "/scratch".into(),
        exit_code: Some(0),
        signal: None,
        wall_time_ms: 60_000,
        cpu_time_ms: Some(400_000),
        peak_rss_bytes: Some(6 << 30),
        host: "node-1".into(),
        user: "pipeline".into(),
        start_time: "2026-01-01T00:00:00Z".into(),
        end_time: "2026-01-01T00:01:00Z".into(),
        extra: Default::default(),
    });
    let mut job = Job::new("genomics", "bwa_mem");
    job.facets.set(&JobTypeJobFacet::batch("PROV", "TASK"));
    let inputs = (0..4)
        .map(|k| {
            let mut d = InputDataset::new("file", format!("/data/S{i}_{k}.fastq.gz"));
            dataset_facets(&mut d.facets, 1 << 30);
            d
        })
        .collect();
    let mut out = OutputDataset::new("file", format!("/results/S{i}.bam"));
    dataset_facets(&mut out.facets, 3 << 30);
    out.output_facets
        .set(&OutputStatisticsOutputDatasetFacet::new(3 << 30, 1));
    let mut e = RunEvent::new(EventType::Complete, run, job);
    e.inputs = Some(inputs);
    e.outputs = Some(vec![out]);
    Event::Run(e)
}

fn main() {
    let dir = std::env::temp_dir().join(format!("prov-emit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // 1. Ours: build + serialize + write, one file transport.
    let count = 100_000;
    let path = dir.join("ours.ndjson");
    let transport = FileTransport::open(&path, false).unwrap();
    let root = RunId::new_v7();
    let start = Instant::now();
    for i in 0..count {
        transport.emit(&event(i, root)).unwrap();
    }
    let ours = count as f64 / start.elapsed().as_secs_f64();
    let size = std::fs::metadata(&path).unwrap().len() as f64 / count as f64;
    println!("provenance-core FileTransport: {ours:>10.0} events/s  ({size:.0} bytes/event)");
    // Where the time goes, per event, timed inside one loop.
    let n = 20_000;
    let (mut build, mut serialize, mut write) = (0.0, 0.0, 0.0);
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        for i in 0..n {
            let t = Instant::now();
            let e = event(i, root);
            let t2 = Instant::now();
            let mut text = e.to_json().into_bytes();
            text.push(b'\n');
            let t3 = Instant::now();
            f.write_all(&text).unwrap();
            let t4 = Instant::now();
            build += (t2 - t).as_secs_f64();
            serialize += (t3 - t2).as_secs_f64();
            write += (t4 - t3).as_secs_f64();
        }
    }
    let (build, serialize, write) = (
        build * 1e6 / n as f64,
        serialize * 1e6 / n as f64,
        write * 1e6 / n as f64,
    );
    println!("  per event: build {build:.1} us, serialize {serialize:.1} us, write {write:.1} us");

    // 2. The Python client, same shape, same run.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python_file_transport.py");
    let py_path = dir.join("python.ndjson");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&py_path)
        .arg("5000")
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let mut parts = text.split_whitespace();
            let rate: f64 = parts.next().unwrap().parse().unwrap();
            let bytes = parts.next().unwrap_or("?");
            println!(
                "openlineage-python FileTransport: {rate:>7.0} events/s  ({bytes} bytes/event)"
            );
            println!("ratio: {:.0}x   (target >= 100x)", ours / rate);
        }
        Ok(o) => println!(
            "python peer skipped: {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => println!("python peer skipped: {e}"),
    }

    // 3. The recorder's own cost per step: START + COMPLETE, nothing to hash.
    let steps = 20_000;
    let recorder = Recorder::new(
        "genomics",
        Box::new(FileTransport::open(&dir.join("steps.ndjson"), false).unwrap()),
    );
    let pipeline = recorder.step("wgs").start().unwrap();
    let start = Instant::now();
    for i in 0..steps {
        let step = recorder
            .step("bwa_mem")
            .parent(&pipeline)
            .container(
                "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8",
                ContainerRuntime::Docker,
            )
            .param("threads", 8)
            .param("sample", format!("S{i}"))
            .start()
            .unwrap();
        step.complete(&[]).unwrap();
    }
    let per_step = start.elapsed().as_secs_f64() * 1e6 / steps as f64;
    println!(
        "recorder overhead: {per_step:.1} us per step (START + COMPLETE, file transport, no hashing)"
    );
    drop(pipeline);
    let _ = std::fs::remove_dir_all(&dir);
}
