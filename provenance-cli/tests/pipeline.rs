//! `prov run`, `lineage`, `audit` and `verify`, run as a new user would: the
//! real binary in a fresh temporary folder with its own store.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

#[path = "sandbox/mod.rs"]
mod sandbox;
use sandbox::Sandbox;

/// Waits until the sandbox's store holds the one run a background prov
/// started (its START is stored).
fn wait_for_start(s: &Sandbox) {
    let started = std::time::Instant::now();
    loop {
        let out = s.prov(&["audit", "runs", "--format", "json"]);
        if out.status.success()
            && serde_json::from_slice::<Value>(&out.stdout).unwrap()["total"] == 1
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the run never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGTERM to `child`, as a batch scheduler stops a job.
fn terminate(child: &std::process::Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
}

fn sha256(path: &str) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

fn run_nodes(graph: &Value) -> Vec<&Value> {
    graph["graph"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] == "RUN")
        .map(|n| &n["data"])
        .collect()
}

#[test]
fn a_three_step_pipeline_with_a_failing_step_answers_lineage_audit_and_verify() {
    let s = Sandbox::new("three");
    let reads = s.write("S1.fastq", "@r1\nACGT\n+\nIIII\n");
    let (trimmed, bam, vcf) = (s.path("S1.trim.fastq"), s.path("S1.bam"), s.path("S1.vcf"));
    let image = "quay.io/biocontainers/bwa@sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";

    let step =
        |job: &str, container: Option<&str>, input: &str, output: &str, script: &str| -> Output {
            let mut args = vec![
                "run",
                "--job",
                job,
                "--param",
                "threads=4",
                "--input",
                input,
                "--output",
                output,
            ];
            if let Some(c) = container {
                args.extend(["--container", c]);
            }
            args.extend(["--", "sh", "-c", script]);
            s.prov(&args)
        };
    let out = step(
        "trim",
        None,
        &reads,
        &trimmed,
        &format!("cp {reads} {trimmed}"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = step(
        "align",
        Some(image),
        &trimmed,
        &bam,
        &format!("sort {trimmed} > {bam}"),
    );
    assert!(out.status.success());
    // The call step fails: its exit code passes through and the run is a FAIL.
    // Its image is a tag on a registry that does not answer (nothing listens
    // on the port), so it stays unpinned whatever network this machine has.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let gatk = format!("127.0.0.1:{closed_port}/broadinstitute/gatk:4.5.0.0");
    let out = step("call", Some(&gatk), &bam, &vcf, "echo calling >&2; exit 3");
    assert_eq!(out.status.code(), Some(3));
    // stderr passes through; prov's own lines (the unpinned image's warning)
    // are marked as such.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr
            .lines()
            .filter(|l| !l.starts_with("prov: warning: "))
            .collect::<Vec<_>>(),
        ["calling"],
        "stderr passes through: {stderr}"
    );
    assert!(
        stderr.contains(&format!("{gatk} is recorded unpinned")),
        "{stderr}"
    );

    // Lineage of the BAM, as JSON: two runs, with digests, params and image.
    let graph = s.json(&["lineage", "--format", "json", &bam]);
    let runs = run_nodes(&graph);
    assert_eq!(runs.len(), 2);
    let align = runs.iter().find(|r| r["job"] == "align").unwrap();
    assert_eq!(align["state"], "COMPLETE");
    assert_eq!(align["containerDigest"], image.split('@').nth(1).unwrap());
    assert_eq!(
        align["facets"]["prov_parameters"]["parameters"]["threads"],
        4
    );
    assert_eq!(align["exitCode"], 0);
    let execution = &align["facets"]["prov_execution"];
    assert!(
        execution["peakRssBytes"].as_u64().unwrap() > 100_000,
        "{execution}"
    );
    assert!(execution["cpuTimeMs"].is_u64(), "{execution}");
    assert_eq!(execution["argv"][0], "sh");
    let ids: Vec<&str> = graph["graph"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&format!("dataset:file:{reads}#sha256:{}", sha256(&reads)).as_str()),
        "{ids:?}"
    );

    // The failed run is found as such, with its error.
    let failed = s.json(&["audit", "runs", "--status", "FAIL", "--format", "json"]);
    assert_eq!(failed["total"], 1);
    assert_eq!(failed["items"][0]["job"], "call");
    assert_eq!(failed["items"][0]["exitCode"], 3);

    // The aligner's image: one run, and the BAM downstream of it.
    let audit = s.json(&["audit", "container", image, "--format", "json"]);
    assert_eq!(audit["runs"]["total"], 1);
    let outputs: Vec<&str> = audit["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(outputs, [bam.as_str()]);
    // The unpinned GATK use is reported.
    let unpinned = s.json(&["audit", "unpinned", "--format", "json"]);
    assert_eq!(unpinned["items"][0]["containerImage"], gatk.as_str());

    // Derived from the reads: both files made from them.
    let derived = s.json(&["audit", "derived", &reads, "--format", "json"]);
    let names: Vec<&str> = derived["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [bam.as_str(), trimmed.as_str()]);

    // Verify: intact, then not.
    let ok = s.json(&["verify", "--format", "json", &bam, &trimmed]);
    assert!(
        ok.as_array().unwrap().iter().all(|v| v["status"] == "OK"),
        "{ok}"
    );
    let chain = s.json(&["verify", "--chain", "--format", "json"]);
    assert_eq!(chain["events"], 6);
    assert!(chain["broken"].is_null());
}

/// `verify --chain` also checks the tables lineage and audit read: an edit
/// made there, which leaves every event and link alone, fails the check and
/// is named; `--links-only` checks the links alone.
#[test]
fn verify_chain_finds_an_edit_to_the_tables_the_chain_does_not_cover() {
    let s = Sandbox::new("verify-tables");
    let store = s.path("store.db");
    let reads = s.write("in.fastq", "@r\nA\n+\nI\n");
    let out_file = s.path("out.bam");
    let out = s.prov(&[
        "--store", &store, "run", "--job", "copy", "--input", &reads, "--output", &out_file, "--",
        "cp", &reads, &out_file,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scratch = s.path("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let verify = |args: &[&str]| {
        s.command(&[&["--store", store.as_str(), "verify", "--chain"][..], args].concat())
            .env("TMPDIR", &scratch)
            .output()
            .unwrap()
    };
    let out = verify(&[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("chain OK: 2 events") && text.contains("tables OK: "),
        "{text}"
    );

    // Someone with write access records another host for the run.
    rusqlite::Connection::open(&store)
        .unwrap()
        .execute_batch("UPDATE run SET host = 'elsewhere'")
        .unwrap();
    let out = verify(&[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("chain OK: 2 events"), "{text}");
    assert!(
        text.contains("tables DIFFER from the events: 1 row "),
        "{text}"
    );
    assert!(
        text.contains("host: stored elsewhere, from the events "),
        "{text}"
    );
    let json = verify(&["--format", "json"]);
    assert_eq!(json.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(json["broken"].is_null(), "{json}");
    assert_eq!(json["tables"]["differences"][0]["table"], "run", "{json}");
    assert_eq!(
        json["tables"]["differences"][0]["mismatch"]["kind"], "changed",
        "{json}"
    );
    // The links alone still verify.
    let out = verify(&["--links-only"]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("tables"));
    // Nothing is left in the temporary folder.
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
}

/// The temporary store the tables are derived again in holds a copy of every
/// event: its folder is private, and it is removed when prov is stopped
/// midway (exit 128 + the signal).
#[test]
fn verify_chain_stopped_midway_leaves_no_copy_of_the_store() {
    let s = Sandbox::new("verify-stopped");
    let store = s.path("store.db");
    let events: String = (0..20_000)
        .map(|i| {
            format!(
                "{{\"eventTime\":\"2026-01-01T00:00:00Z\",\"producer\":\"https://x/p\",\"schemaURL\":\"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent\",\"eventType\":\"COMPLETE\",\"run\":{{\"runId\":\"{}\"}},\"job\":{{\"namespace\":\"n\",\"name\":\"j{i}\"}},\"outputs\":[{{\"namespace\":\"file\",\"name\":\"/o{i}\"}}]}}\n",
                provenance_core::RunId::new_v7()
            )
        })
        .collect();
    let file = s.write("events.ndjson", &events);
    let out = s.prov(&["--store", &store, "ingest", &file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scratch = s.path("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let mut child = s
        .command(&["--store", &store, "verify", "--chain"])
        .env("TMPDIR", &scratch)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the temporary folder, and check it is private.
    let started = std::time::Instant::now();
    let folder = loop {
        if let Some(entry) = std::fs::read_dir(&scratch).unwrap().flatten().next() {
            break entry.path();
        }
        assert!(started.elapsed().as_secs() < 30, "no temporary folder");
        std::thread::sleep(Duration::from_millis(5));
    };
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&folder).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{folder:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    // Stopped midway (130), or done just before the signal (0).
    assert!(matches!(status.code(), Some(130 | 0)), "{status:?}");
    assert_eq!(
        std::fs::read_dir(&scratch).unwrap().count(),
        0,
        "a copy was left behind"
    );
}

/// The image `lineage` prints for a pinned run is one `audit container`
/// takes back: registry, repository and the start of the digest.
#[test]
fn the_image_lineage_prints_is_one_audit_container_finds() {
    let s = Sandbox::new("image-roundtrip");
    let out_file = s.path("out.txt");
    let digest = format!("sha256:{}", "ab".repeat(32));
    let image = format!("quay.io/biocontainers/bwa@{digest}");
    let out = s.prov(&[
        "run",
        "--job",
        "align",
        "--container",
        &image,
        "--output",
        &out_file,
        "--",
        "sh",
        "-c",
        &format!("echo x > {out_file}"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = s.prov(&["lineage", &out_file]);
    let text = String::from_utf8_lossy(&tree.stdout).into_owned();
    let printed = text
        .split_whitespace()
        .skip_while(|w| *w != "image")
        .nth(1)
        .unwrap_or_else(|| panic!("no image in {text}"));
    assert_eq!(
        printed,
        format!("quay.io/biocontainers/bwa@{}", &digest[..19])
    );
    let audit = s.json(&["audit", "container", printed, "--format", "json"]);
    assert_eq!(audit["runs"]["total"], 1, "{audit}");
}

#[test]
fn verify_exits_1_after_a_file_is_modified_and_says_what_was_recorded() {
    let s = Sandbox::new("verify");
    let reads = s.write("in.fastq", "@r\nA\n+\nI\n");
    let out_file = s.path("out.bam");
    let out = s.prov(&[
        "run", "--job", "copy", "--input", &reads, "--output", &out_file, "--", "cp", &reads,
        &out_file,
    ]);
    assert!(out.status.success());
    let recorded = sha256(&out_file);
    assert!(s.prov(&["verify", &out_file]).status.success());
    std::fs::write(&out_file, "edited by hand").unwrap();
    let out = s.prov(&["verify", &out_file]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with(&format!("MODIFIED  {out_file}")), "{text}");
    assert!(
        text.contains(&format!("recorded sha256 {recorded}")),
        "{text}"
    );
    assert!(text.contains("of job copy"), "{text}");
    let out = s.prov(&["verify", &s.write("stranger.txt", "x")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("NOT RECORDED"));
    // A file that cannot be read: the system's reason is given.
    let out = s.prov(&["verify", &s.path("gone.vcf")]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("UNREADABLE") && text.contains("No such file or directory"),
        "{text}"
    );
}

#[test]
fn an_overwritten_file_keeps_its_original_lineage_by_its_old_digest() {
    let s = Sandbox::new("overwrite");
    let a = s.write("a.fastq", "@a\nA\n+\nI\n");
    let b = s.write("b.fastq", "@b\nC\n+\nI\n");
    let out_file = s.path("result.vcf");
    let record = |input: &str, job: &str| {
        let out = s.prov(&[
            "run", "--job", job, "--input", input, "--output", &out_file, "--", "cp", input,
            &out_file,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    record(&a, "first");
    let old = sha256(&out_file);
    record(&b, "second");
    let old_graph = s.json(&["lineage", "--format", "json", &format!("sha256:{old}")]);
    let jobs: Vec<&str> = run_nodes(&old_graph)
        .iter()
        .map(|r| r["job"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["first"]);
    let now = s.json(&["lineage", "--format", "json", &out_file]);
    let jobs: Vec<&str> = run_nodes(&now)
        .iter()
        .map(|r| r["job"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["second"]);
}

/// A task that runs in a folder of its own (as Nextflow and Snakemake run
/// them) and calls `prov run` without --store records into its pipeline's
/// store, even when that was given as a relative path.
#[test]
fn a_nested_prov_run_in_another_folder_records_into_the_same_store() {
    let s = Sandbox::new("nested-folder");
    let prov = env!("CARGO_BIN_EXE_prov");
    std::fs::create_dir_all(s.0.join("work/task1")).unwrap();
    let script = format!("cd work/task1 && {prov} run --job task -- true");
    let out = s.prov(&[
        "--store", "p.db", "run", "--job", "pipeline", "--", "sh", "-c", &script,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for own in ["p.db", "prov.db"] {
        assert!(
            !s.0.join("work/task1").join(own).exists(),
            "the task made {own}"
        );
    }
    let runs = s.json(&["--store", "p.db", "audit", "runs", "--format", "json"]);
    assert_eq!(runs["total"], 2, "{runs}");
}

#[test]
fn nested_prov_run_calls_build_a_parent_task_tree() {
    let s = Sandbox::new("nested");
    let prov = env!("CARGO_BIN_EXE_prov");
    let store = s.path("prov.db");
    let inner = s.path("inner.txt");
    // The pipeline's command calls prov run twice; they attach themselves.
    let script = format!(
        "{prov} --store {store} run --job task_a -- true && {prov} --store {store} run --job task_b --output {inner} -- sh -c 'echo x > {inner}'"
    );
    let out = s.prov(&["run", "--job", "pipeline", "--", "sh", "-c", &script]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs = s.json(&["audit", "runs", "--format", "json"]);
    let items = runs["items"].as_array().unwrap();
    let pipeline = items.iter().find(|r| r["job"] == "pipeline").unwrap();
    for task in ["task_a", "task_b"] {
        let t = items.iter().find(|r| r["job"] == task).unwrap();
        assert_eq!(t["parentRunId"], pipeline["runId"], "{task}");
        assert_eq!(t["rootRunId"], pipeline["runId"], "{task}");
    }
    assert!(pipeline["parentRunId"].is_null());
}

#[test]
fn a_declared_output_that_was_not_created_fails_the_run() {
    let s = Sandbox::new("missing");
    let out = s.prov(&[
        "run",
        "--job",
        "lazy",
        "--output",
        &s.path("never.bam"),
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the declared output"));
    let failed = s.json(&["audit", "runs", "--status", "FAIL", "--format", "json"]);
    assert_eq!(failed["items"][0]["job"], "lazy");
}

#[test]
fn a_missing_command_or_input_is_a_clear_error() {
    let s = Sandbox::new("notfound");
    let out = s.prov(&["run", "--", "no-such-command-xyz"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("start no-such-command-xyz"));
    let out = s.prov(&["run", "--input", "absent.fastq", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("absent.fastq"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s.prov(&["--store", "elsewhere.db", "lineage", "x.vcf"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no store at elsewhere.db"));
}

#[test]
fn an_audit_for_a_state_that_does_not_exist_is_refused_not_answered_empty() {
    let s = Sandbox::new("state");
    assert_eq!(
        s.prov(&["run", "--job", "fails", "--", "false"])
            .status
            .code(),
        Some(1)
    );
    let out = s.prov(&["audit", "runs", "--status", "FAILED"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values"));
    // Any case of a real state.
    let out = s.prov(&["audit", "runs", "--status", "fail"]);
    let found = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && found.contains("fails"), "{found}");
}

#[test]
fn reading_an_empty_file_or_another_database_is_refused_and_writes_nothing() {
    let s = Sandbox::new("notastore");
    let empty = s.write("empty.db", "");
    let out = s.prov(&["--store", &empty, "verify", "--chain"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty file"));
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
    let foreign = s.path("customers.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE customers(id INTEGER PRIMARY KEY);")
        .unwrap();
    let before = std::fs::read(&foreign).unwrap();
    for args in [&["audit", "runs"][..], &["ingest", "/dev/null"]] {
        let out = s.prov(&[&["--store", foreign.as_str()][..], args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("something else"));
    }
    assert!(
        std::fs::read(&foreign).unwrap() == before,
        "the database is not modified"
    );
}

#[test]
fn a_store_that_would_vanish_at_exit_is_refused_before_anything_runs() {
    let s = Sandbox::new("vanish");
    let events = s.write("one.ndjson", "");
    // An empty PROV_STORE (an unset variable) or a store in memory would
    // take the events and lose them when prov exits, reporting success.
    for location in ["", " ", ":memory:", "file::memory:"] {
        let out = s.prov(&["--store", location, "run", "--", "touch", "ran"]);
        assert_eq!(out.status.code(), Some(2), "{location:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("store location"), "{location:?}: {err}");
        assert!(!s.0.join("ran").exists(), "{location:?}: the step ran");
        let out = s.prov(&["--store", location, "ingest", &events]);
        assert_eq!(out.status.code(), Some(2), "{location:?}");
        let out = s.prov(&["--store", location, "verify", "--chain"]);
        assert_eq!(out.status.code(), Some(2), "{location:?}");
    }
}

#[test]
fn sigterm_is_forwarded_and_the_run_recorded_as_aborted() {
    let s = Sandbox::new("sigterm");
    let mut child = s
        .command(&["run", "--job", "long", "--", "sleep", "30"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for START to be stored, then stop prov as a batch scheduler would.
    let started = std::time::Instant::now();
    wait_for_start(&s);
    terminate(&child);
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "the command's signal becomes the exit code"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "sleep was stopped, not waited for"
    );
    let runs = s.json(&["audit", "runs", "--format", "json"]);
    assert_eq!(runs["items"][0]["state"], "ABORT");
}

/// Under `nohup` (SIGHUP ignored), a hangup neither stops prov nor reaches
/// the step: the run completes.
#[test]
fn a_hangup_ignored_by_nohup_stays_ignored() {
    let s = Sandbox::new("nohup");
    let prov = env!("CARGO_BIN_EXE_prov");
    // `trap '' HUP` is what nohup does; exec keeps the process, so the pid
    // signalled is prov's.
    let mut child = s
        .shell(&format!(
            "trap '' HUP; exec '{prov}' run --job patient -- sleep 2"
        ))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_start(&s);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let runs = s.json(&["audit", "runs", "--format", "json"]);
    assert_eq!(runs["items"][0]["state"], "COMPLETE");
}

/// A COMPLETE event of another producer: run `run`, writing `output`
/// with the given `prov_checksum` sha-256.
fn event_writing(run: &str, output: &str, sha256: &str) -> String {
    serde_json::json!({
        "eventTime": "2024-05-01T12:00:00Z",
        "producer": "https://example.org/other",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "eventType": "COMPLETE",
        "run": {"runId": run},
        "job": {"namespace": "n", "name": "make"},
        "outputs": [{"namespace": "file", "name": output, "facets": {"prov_checksum": {
            "_producer": "https://example.org/other",
            "_schemaURL": "https://example.org/ProvChecksumDatasetFacet.json",
            "kind": "file", "size": 5, "checksums": {"sha-256": sha256}
        }}}]
    })
    .to_string()
}

#[test]
fn digests_from_other_producers_are_compared_in_lowercase_and_odd_ones_name_nothing() {
    let s = Sandbox::new("digests");
    let file = s.write("v.txt", "data\n");
    let upper = sha256(&file).to_ascii_uppercase();
    let events = s.write(
        "events.ndjson",
        &[
            event_writing("0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d31", &file, &upper),
            event_writing(
                "0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d32",
                "/data/x.vcf",
                "abcde\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}",
            ),
            event_writing(
                "0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d33",
                "/data/y.vcf",
                "not-a-digest/../x",
            ),
        ]
        .join("\n"),
    );
    s.ok(&["ingest", &events]);
    // The same content in capitals is the same content.
    let out = s.prov(&["verify", &file]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("MODIFIED"), "{text}");
    let lower = format!("sha256:{}", upper.to_ascii_lowercase());
    let graph = s.json(&["lineage", "--format", "json", &lower]);
    assert!(
        graph
            .to_string()
            .contains("0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d31"),
        "{graph}"
    );
    // A digest that is not one names no version of the file, and the
    // lineage shows without a panic.
    for target in ["dataset:file:/data/x.vcf", "dataset:file:/data/y.vcf"] {
        let out = s.prov(&["lineage", target]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{target}: {stderr}");
        let json = s.json(&["lineage", "--format", "json", target]);
        assert!(!json.to_string().contains("sha256:not-a-digest"), "{json}");
    }
}

#[test]
fn ingest_reports_bad_lines_and_strict_stores_nothing() {
    let s = Sandbox::new("ingest");
    let good = r#"{"eventTime":"2024-05-01T12:00:00Z","producer":"https://e.org","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent","eventType":"START","run":{"runId":"0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d31"},"job":{"namespace":"n","name":"j"}}"#;
    let file = s.write(
        "events.ndjson",
        &format!("{good}\nnot json\n{{\"run\":{{\"runId\":\"x\"}}}}\n"),
    );
    let out = s.prov(&["ingest", "--strict", &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !Path::new(&s.path("prov.db")).exists()
            || s.json(&["audit", "runs", "--format", "json"])["total"] == 0
    );
    // The same on standard input, which --strict reads twice.
    let mut child = s
        .command(&["ingest", "--strict", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        std::fs::read(&file).unwrap().as_slice(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("-:line 2: not JSON"), "{text}");
    assert!(
        !Path::new(&s.path("prov.db")).exists()
            || s.json(&["audit", "runs", "--format", "json"])["total"] == 0
    );
    let out = s.prov(&["ingest", &file]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("events.ndjson:line 2: not JSON"), "{text}");
    assert!(text.contains("events.ndjson:line 3:"), "{text}");
    assert!(
        text.contains("1 stored, 0 already stored, 2 rejected"),
        "{text}"
    );
    let again = s.json(&["ingest", "--format", "json", &s.write("one.json", good)]);
    assert_eq!(again["duplicates"], 1);
}

/// Several transactions' worth of events stored together: every event
/// counted once, and a bad line in the second transaction named by its own
/// number; sent again, every event is found stored.
#[test]
fn ingest_counts_every_event_across_transactions() {
    let s = Sandbox::new("ingest-count");
    let mut text = String::new();
    for i in 0..2500u32 {
        if i == 1700 {
            text.push_str("{\"eventType\": 7}\n");
        }
        text.push_str(&format!(
            r#"{{"eventTime":"2024-05-01T12:00:00Z","producer":"https://e.org","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent","eventType":"START","run":{{"runId":"0190d2c4-7f3a-7c2e-9b1d-{i:012x}"}},"job":{{"namespace":"n","name":"j"}}}}"#
        ));
        text.push('\n');
    }
    let path = s.write("dump.ndjson", &text);
    let out = s.prov(&["ingest", "--format", "json", &path]);
    assert_eq!(out.status.code(), Some(1), "one line is bad");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["stored"], 2500, "{summary}");
    assert_eq!(summary["duplicates"], 0, "{summary}");
    let rejected = summary["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{summary}");
    assert!(
        rejected[0]
            .as_str()
            .unwrap()
            .starts_with(&format!("{path}:line 1701: ")),
        "{summary}"
    );
    let out = s.prov(&["ingest", "--format", "json", &path]);
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&again["stored"], &again["duplicates"]),
        (&0.into(), &2500.into()),
        "{again}"
    );
}

/// A dump much larger than what `prov ingest` keeps in memory: every event
/// stored, the bad line named by its number, and the process's peak resident
/// size under the file's (it used to read the whole file, then copy every
/// line: twice the file's size).
#[test]
fn ingest_streams_a_large_ndjson_dump() {
    use std::io::Write;
    let s = Sandbox::new("ingest-large");
    let path = s.path("dump.ndjson");
    let pad = "ACGT".repeat(50_000);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..600u32 {
        if i == 437 {
            writeln!(file, "{{\"not\": \"an event\"}}").unwrap();
        }
        writeln!(
            file,
            r#"{{"eventTime":"2024-05-01T12:00:00Z","producer":"https://e.org","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent","eventType":"START","run":{{"runId":"0190d2c4-7f3a-7c2e-9b1d-{i:012x}","facets":{{"reads":{{"_producer":"https://e.org","_schemaURL":"https://e.org/reads.json","sequence":"{pad}{i}"}}}}}},"job":{{"namespace":"n","name":"j{i}"}}}}"#
        )
        .unwrap();
    }
    drop(file);
    let size = std::fs::metadata(&path).unwrap().len();
    let mut child = s
        .command(&["ingest", "--format", "json", &path])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The high-water mark of its resident memory, read while it runs.
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Some(kb) = std::fs::read_to_string(&status).ok().and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        }) {
            peak_kb = peak_kb.max(kb);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "one line is bad");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["stored"], 600, "{summary}");
    assert_eq!(summary["rejected"].as_array().unwrap().len(), 1);
    assert!(
        summary["rejected"][0]
            .as_str()
            .unwrap()
            .starts_with(&format!("{path}:line 438: ")),
        "{summary}"
    );
    assert!(peak_kb > 0, "the peak was read");
    assert!(
        peak_kb * 1024 < size,
        "peak resident {peak_kb} kB while ingesting a {size}-byte file"
    );
}

#[test]
fn the_demo_runs_and_calls_the_planted_variants() {
    let s = Sandbox::new("demo");
    let out = s.prov(&["demo", "--dir", &s.path("files")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("merge  run"), "{text}");
    assert!(text.contains("chain OK: 22 events"), "{text}");
    let vcf = std::fs::read_to_string(s.0.join("files/cohort.vcf")).unwrap();
    for (pos, sample) in [
        (12346, "S1"),
        (12346, "S2"),
        (34568, "S1"),
        (56790, "S2"),
        (78902, "S1"),
        (78902, "S2"),
    ] {
        assert!(
            vcf.contains(&format!("chrDemo\t{pos}\t")) && vcf.contains(&format!("sample={sample}")),
            "{pos} {sample}\n{vcf}"
        );
    }
    assert_eq!(
        vcf.lines().filter(|l| !l.starts_with('#')).count(),
        6,
        "no false calls:\n{vcf}"
    );
    // Its recipe as a script reproduces it, the index folder (a directory
    // input, checked by its Merkle digest) included.
    let script = s.0.join("rerun.sh");
    let out = s.prov(&["rerun", "--script", &s.path("files/cohort.vcf")]);
    assert!(out.status.success());
    std::fs::write(&script, &out.stdout).unwrap();
    let ran = Command::new("sh").arg(&script).output().unwrap();
    let text = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(!text.contains("DIFFERENT"), "{text}");
    assert!(
        text.contains("IDENTICAL") && text.contains("cohort.vcf"),
        "{text}"
    );
    // A folder of someone else's files is refused, and they are untouched.
    std::fs::create_dir_all(s.0.join("project")).unwrap();
    let theirs = s.write("project/reference.fa", "my reference\n");
    let out = s.prov(&["demo", "--dir", &s.path("project")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"));
    assert_eq!(std::fs::read_to_string(theirs).unwrap(), "my reference\n");
}

#[test]
fn run_cache_skips_a_step_whose_result_is_known_and_only_then() {
    let s = Sandbox::new("cache");
    let input = s.write("in.fastq", "@r\nACGT\n+\nIIII\n");
    let out = s.path("out.txt");
    let counter = s.path("count");
    let script = format!("cp {input} {out}; echo ran >> {counter}");
    let step_in = |param: &str, image: Option<&str>| -> Output {
        let mut args = vec!["run", "--cache", "--job", "copy", "--param", param];
        if let Some(image) = image {
            args.extend(["--container", image]);
        }
        args.extend([
            "--input", &input, "--output", &out, "--", "sh", "-c", &script,
        ]);
        s.prov(&args)
    };
    let step = |param: &str| step_in(param, None);
    let runs = || std::fs::read_to_string(&counter).map_or(0, |t| t.lines().count());

    assert!(step("v=1").status.success());
    assert_eq!(runs(), 1);
    let second = step("v=1");
    assert!(second.status.success());
    assert_eq!(
        runs(),
        1,
        "the second identical step is served from the cache"
    );
    assert!(String::from_utf8_lossy(&second.stderr).contains("prov: cached"));

    // Touched but unchanged input: still a hit (content, not times).
    let f = std::fs::File::options().write(true).open(&input).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    assert!(step("v=1").status.success());
    assert_eq!(runs(), 1);

    // A different parameter, then different input bytes, then a missing output: each runs.
    assert!(step("v=2").status.success());
    assert_eq!(runs(), 2);
    std::fs::write(&input, "@r\nTTTT\n+\nIIII\n").unwrap();
    assert!(step("v=2").status.success());
    assert_eq!(runs(), 3);
    std::fs::remove_file(&out).unwrap();
    assert!(step("v=2").status.success());
    assert_eq!(runs(), 4);

    // The image is part of the step: a new digest runs, the same one hits.
    let image = |d: &str| format!("quay.io/biocontainers/bwa@sha256:{}", d.repeat(64));
    assert!(step_in("v=2", Some(&image("a"))).status.success());
    assert_eq!(runs(), 5);
    assert!(step_in("v=2", Some(&image("a"))).status.success());
    assert_eq!(runs(), 5);
    assert!(step_in("v=2", Some(&image("b"))).status.success());
    assert_eq!(runs(), 6);

    // The cached runs are recorded, linked to the run whose outputs they reused.
    let all = s.json(&["audit", "runs", "--format", "json"]);
    assert_eq!(all["total"], 9);
    // The first output had the first input's bytes.
    let first_digest = sha256(&s.write("first-bytes", "@r\nACGT\n+\nIIII\n"));
    let graph = s.json(&[
        "lineage",
        "--format",
        "json",
        &format!("sha256:{first_digest}"),
    ]);
    let runs = run_nodes(&graph);
    let cached: Vec<&&Value> = runs
        .iter()
        .filter(|r| r["facets"]["prov_cache"].is_object())
        .collect();
    assert_eq!(cached.len(), 2, "{graph}");
    for c in cached {
        let original = c["facets"]["prov_cache"]["originalRunId"].as_str().unwrap();
        let made_it = runs
            .iter()
            .find(|r| r["runId"] == original)
            .expect("the original run is in the lineage");
        assert!(
            made_it["facets"]["prov_cache"].is_null(),
            "the original really ran"
        );
    }
}

#[test]
fn run_cache_reuses_a_run_only_if_it_made_every_declared_output() {
    let s = Sandbox::new("cache-outputs");
    let counter = s.path("count");
    let script = format!("echo x > a; echo ran >> {counter}");
    let step = |output: &str| -> Output {
        s.prov(&[
            "run", "--cache", "--job", "j", "--output", output, "--", "sh", "-c", &script,
        ])
    };
    let runs = || std::fs::read_to_string(&counter).map_or(0, |t| t.lines().count());
    assert!(step("a").status.success());
    assert!(step("a").status.success());
    assert_eq!(runs(), 1, "the same step with the same output is reused");
    // The same command declaring another output: the known run did not
    // make it, so the step runs, and fails as it would without --cache.
    let other = step("b");
    assert_eq!(runs(), 2);
    assert_eq!(other.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(
        stderr.contains("declared output b was not created"),
        "{stderr}"
    );
    assert!(!stderr.contains("cached"), "{stderr}");
}

#[test]
fn rerun_plans_and_scripts_the_recipe_and_the_script_reproduces_it() {
    let s = Sandbox::new("rerun");
    let reads = s.write("S1.fastq", "@r1\nACGT\n+\nIIII\n");
    let (sorted, counted) = (s.path("S1.sorted"), s.path("S1.count"));
    let run = |job: &str, input: &str, output: &str, script: &str| {
        let out = s.prov(&[
            "run", "--job", job, "--param", "k=1", "--input", input, "--output", output, "--",
            "sh", "-c", script,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run("sort", &reads, &sorted, &format!("sort {reads} > {sorted}"));
    run(
        "count",
        &sorted,
        &counted,
        &format!("wc -l < {sorted} > {counted}"),
    );

    let plan = s.json(&["rerun", "--plan", "--format", "json", &counted]);
    let jobs: Vec<&str> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["job"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["sort", "count"], "in dependency order");
    assert_eq!(plan[0]["inputs"][0]["sha256"], sha256(&reads));
    assert_eq!(plan[1]["outputs"][0]["sha256"], sha256(&counted));
    assert_eq!(plan[0]["argv"][0], "sh");
    assert_eq!(plan[0]["parameters"]["k"], 1);

    // The script re-executes both steps and finds identical bytes.
    let script = s.prov(&["rerun", "--script", &counted]);
    assert!(script.status.success());
    let path = s.write("rerun.sh", &String::from_utf8(script.stdout).unwrap());
    std::fs::remove_file(&counted).unwrap();
    let out = Command::new("sh").arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches("IDENTICAL").count(), 2, "{text}");

    // A changed input stops the script before the step runs.
    std::fs::write(&reads, "@r1\nTTTT\n+\nIIII\n").unwrap();
    let out = Command::new("sh").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("differs from the recorded"));
}

/// Records a three-step pipeline in the sandbox: sort, upper-case (absolute
/// paths in its command), then count and merge (two outputs). `stamp` makes
/// the middle step write the time too.
fn three_steps(s: &Sandbox, stamp: bool) -> [String; 4] {
    let reads = s.write("reads.txt", "b\nc\na\n");
    let upper = s.path("upper.txt");
    let run = |job: &str, args: &[&str]| {
        let mut all = vec!["run", "--job", job, "--param", "k=1"];
        all.extend_from_slice(args);
        let out = s.prov(&all);
        assert!(
            out.status.success(),
            "{job}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        "sort",
        &[
            "--input",
            "reads.txt",
            "--output",
            "sorted.txt",
            "--",
            "sh",
            "-c",
            "sort reads.txt > sorted.txt",
        ],
    );
    let upcase = format!(
        "tr a-z A-Z < {} > {upper}{}",
        s.path("sorted.txt"),
        if stamp { "; date +%s%N >> \"$0\"" } else { "" }
    );
    let mut args = vec![
        "--input",
        "sorted.txt",
        "--output",
        &upper,
        "--",
        "sh",
        "-c",
    ];
    args.push(&upcase);
    if stamp {
        args.push(&upper);
    }
    run("upcase", &args);
    run(
        "count",
        &[
            "--input",
            "upper.txt",
            "--input",
            "sorted.txt",
            "--output",
            "count.txt",
            "--output",
            "merged.txt",
            "--",
            "sh",
            "-c",
            "wc -l < upper.txt > count.txt && cat sorted.txt upper.txt > merged.txt",
        ],
    );
    [reads, upper, s.path("count.txt"), s.path("merged.txt")]
}

#[test]
fn rerun_check_reproduces_a_three_step_pipeline_byte_for_byte() {
    let s = Sandbox::new("rerun-check");
    let [_, _, count, merged] = three_steps(&s, false);
    let scratch = s.path("scratch");
    let report = s.json(&[
        "rerun",
        "--check",
        "--workdir",
        &scratch,
        "--format",
        "json",
        &merged,
    ]);
    assert_eq!(report["reproduced"], true, "{report:#}");
    let steps = report["steps"].as_array().unwrap();
    let jobs: Vec<&str> = steps.iter().map(|s| s["job"].as_str().unwrap()).collect();
    assert_eq!(jobs, ["sort", "upcase", "count"]);
    // Every output of the recipe was re-made under the scratch directory,
    // with the recorded bytes; the originals were not touched.
    let outputs: Vec<&Value> = steps
        .iter()
        .flat_map(|s| s["outputs"].as_array().unwrap())
        .collect();
    assert_eq!(outputs.len(), 4, "{report:#}");
    for o in &outputs {
        assert_eq!(o["identical"], true);
        let rerun_path = o["rerunPath"].as_str().unwrap();
        assert!(rerun_path.starts_with(&scratch), "{rerun_path}");
        assert_eq!(sha256(rerun_path), o["recorded"].as_str().unwrap());
        assert_eq!(sha256(o["path"].as_str().unwrap()), sha256(rerun_path));
    }
    assert!(outputs.iter().any(|o| o["path"] == count.as_str()));

    // The reruns are recorded as new runs, each naming the run it repeats.
    let plan = s.json(&["rerun", "--plan", "--format", "json", &merged]);
    for (step, original) in steps.iter().zip(plan.as_array().unwrap()) {
        assert_eq!(step["originalRunId"], original["runId"]);
        assert_ne!(step["runId"], original["runId"]);
        let id = format!("run:{}", step["runId"].as_str().unwrap());
        let graph = s.json(&["lineage", &id, "--format", "json"]);
        let run = run_nodes(&graph)
            .into_iter()
            .find(|r| r["runId"] == step["runId"])
            .unwrap_or_else(|| panic!("{graph:#}"));
        assert_eq!(
            run["facets"]["prov_rerun"]["originalRunId"],
            original["runId"]
        );
        assert_eq!(run["state"], "COMPLETE", "{run:#}");
    }

    // A scratch directory holding anything is refused.
    let again = s.prov(&["rerun", "--check", "--workdir", &scratch, &merged]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));

    // A changed raw input stops the rerun before any step, naming it.
    std::fs::write(s.path("reads.txt"), "z\n").unwrap();
    let out = s.prov(&[
        "rerun",
        "--check",
        "--workdir",
        &s.path("scratch2"),
        &merged,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("reads.txt") && err.contains("has changed"),
        "{err}"
    );
    std::fs::remove_file(s.path("reads.txt")).unwrap();
    let out = s.prov(&[
        "rerun",
        "--check",
        "--workdir",
        &s.path("scratch3"),
        &merged,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is missing"));
}

#[test]
fn rerun_check_reports_a_nondeterministic_step_at_its_output() {
    let s = Sandbox::new("rerun-nondeterministic");
    let [_, upper, count, merged] = three_steps(&s, true);
    let out = s.prov(&["rerun", "--check", "--workdir", &s.path("scratch"), &merged]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let different: Vec<&str> = text.lines().filter(|l| l.contains("DIFFERENT")).collect();
    // The time-stamped file differs, and so does the merge that includes it;
    // the sort before it and the count after it (same line count) reproduce.
    assert_eq!(different.len(), 2, "{text}");
    assert!(different[0].contains(&format!("{upper} ")), "{text}");
    assert!(different[0].contains(&format!("recorded sha256:{}", sha256(&upper))));
    assert!(different[1].contains(&format!("{merged} ")), "{text}");
    assert!(text.contains(&format!("IDENTICAL  {count}")), "{text}");
    assert!(
        text.contains("NOT REPRODUCED: 2 of 4 outputs identical"),
        "{text}"
    );
}

#[test]
fn rerun_check_says_when_the_program_itself_was_not_recorded() {
    let s = Sandbox::new("rerun-program");
    s.write("in.txt", "x\n");
    let program = s.write("step.sh", "#!/bin/sh\ncp \"$1\" \"$2\"\n");
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let (input, output) = (s.path("in.txt"), s.path("out.txt"));
    let out = s.prov(&[
        "run", "--job", "step", "--input", &input, "--output", &output, "--", &program, &input,
        &output,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s.prov(&["rerun", "--check", "--workdir", &s.path("scratch"), &output]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "the program {program} lies under the recorded working directory"
        )) && text.contains(&format!("--input {program}")),
        "{text}"
    );
    // The output it never made counts against the total.
    assert!(
        text.contains("NOT REPRODUCED: 0 of 1 outputs identical"),
        "{text}"
    );
}

#[test]
fn rerun_check_stops_at_a_step_that_fails_and_says_which() {
    let s = Sandbox::new("rerun-fails");
    s.write("in.txt", "x\n");
    let out = s.prov(&[
        "run",
        "--job",
        "copy",
        "--input",
        "in.txt",
        "--output",
        "out.txt",
        "--",
        "sh",
        "-c",
        "[ -z \"$BREAK_IT\" ] && cp in.txt out.txt",
    ]);
    assert!(out.status.success());
    let out = s
        .command(&[
            "rerun",
            "--check",
            "--workdir",
            &s.path("scratch"),
            "--format",
            "json",
            "out.txt",
        ])
        .env("BREAK_IT", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["reproduced"], false);
    assert!(report["steps"].as_array().unwrap().is_empty(), "{report:#}");
    let failure = report["failure"].as_str().unwrap();
    assert!(
        failure.contains("step 1 (copy)") && failure.contains("exited with status 1"),
        "{failure}"
    );
    // The rerun is recorded as failed, under a rerun run that failed too.
    let failed = s.json(&["audit", "runs", "--status", "FAIL", "--format", "json"]);
    let jobs: Vec<&str> = failed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["job"].as_str().unwrap())
        .collect();
    assert_eq!(jobs.len(), 2, "{failed:#}");
    assert!(
        jobs.contains(&"copy") && jobs.contains(&"rerun"),
        "{jobs:?}"
    );
}

#[test]
fn a_signal_while_outputs_are_hashed_stops_prov_and_records_the_run_as_aborted() {
    let s = Sandbox::new("sighash");
    let big = s.path("big.bin");
    // A sparse file of 40 GB: its command ends at once, hashing it takes long.
    let child = s
        .command(&[
            "run", "--job", "big", "--output", &big, "--", "truncate", "-s", "40G", &big,
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !Path::new(&big).exists() {
        assert!(started.elapsed() < Duration::from_secs(20), "no output");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128 + 15), "{stderr}");
    assert!(stderr.contains("while hashing the outputs"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "prov stopped, not after hashing 40 GB"
    );
    let runs = s.json(&["audit", "runs", "--format", "json"]);
    assert_eq!(runs["items"][0]["state"], "ABORT");
    assert_eq!(runs["items"][0]["exitCode"], 0, "the command's own exit");
}

#[test]
fn secret_parameters_and_secret_arguments_are_never_recorded() {
    let s = Sandbox::new("secrets");
    let events = s.path("events.ndjson");
    s.ok_logging_to(
        &events,
        &[
            "run",
            "--job",
            "load",
            "--secret-param",
            "db_password=hunter2",
            "--input",
            "https://user:URIPW7@example.org/a.vcf?sig=SIG8",
            "--output",
            "https://u:OUTPW9@example.org/out.vcf?sig=OUTSIG10",
            "--",
            "sh",
            "-c",
            "true",
            "--db-password",
            "hunter2",
            "postgres://u:URLPW6@db/lab",
            "see https://example.org and mysql://u:URLPW11@db/x",
        ],
    );
    let text = std::fs::read_to_string(&events).unwrap();
    // The store's file, with its log, byte for byte.
    let mut stored = std::fs::read(s.path("prov.db")).unwrap();
    stored.extend(std::fs::read(s.path("prov.db-wal")).unwrap_or_default());
    let stored = String::from_utf8_lossy(&stored);
    assert!(stored.contains("example.org"), "the store holds the run");
    for secret in [
        "hunter2", "URLPW6", "URIPW7", "SIG8", "OUTPW9", "OUTSIG10", "URLPW11",
    ] {
        assert!(!text.contains(secret), "{secret} in the events");
        assert!(!stored.contains(secret), "{secret} in the store");
    }
    let complete: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let params = &complete["run"]["facets"]["prov_parameters"]["parameters"];
    assert!(
        params["db_password"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{params}"
    );
}

#[test]
fn nested_runs_keep_a_namespace_and_job_name_that_hold_colons() {
    let s = Sandbox::new("colons");
    let prov = env!("CARGO_BIN_EXE_prov");
    let store = s.path("prov.db");
    let events = s.path("events.ndjson");
    let script = format!(
        "{prov} --store {store} run --namespace 'nextflow://lab' --job 'NFCORE:ALIGN' -- true"
    );
    s.ok_logging_to(
        &events,
        &[
            "run",
            "--namespace",
            "nextflow://lab",
            "--job",
            "wgs:main",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    let runs = s.json(&["audit", "runs", "--format", "json"]);
    let items = runs["items"].as_array().unwrap();
    let task = items.iter().find(|r| r["job"] == "NFCORE:ALIGN").unwrap();
    let pipeline = items.iter().find(|r| r["job"] == "wgs:main").unwrap();
    assert_eq!(task["parentRunId"], pipeline["runId"]);
    let text = std::fs::read_to_string(&events).unwrap();
    let start: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["job"]["name"] == "NFCORE:ALIGN")
        .unwrap();
    let parent = &start["run"]["facets"]["parent"];
    for job in [&parent["job"], &parent["root"]["job"]] {
        assert_eq!(job["namespace"], "nextflow://lab", "{parent}");
        assert_eq!(job["name"], "wgs:main", "{parent}");
    }
}

#[test]
fn rerun_refuses_a_command_recorded_with_hidden_secrets_and_the_script_says_so() {
    let s = Sandbox::new("rerunsecret");
    let out = s.path("out.txt");
    s.ok(&[
        "run",
        "--job",
        "load",
        "--secret-param",
        "pw=s3cret",
        "--output",
        &out,
        "--",
        "sh",
        "-c",
        &format!("echo x > {out}"),
        "--password",
        "s3cret",
    ]);
    let check = s.prov(&["rerun", "--check", &out]);
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(!check.status.success());
    assert!(stderr.contains("hides secret values"), "{stderr}");
    let script = s.prov(&["rerun", "--script", &out]);
    let script = String::from_utf8_lossy(&script.stdout);
    assert!(script.contains("put them back"), "{script}");
    assert!(!script.contains("s3cret"), "{script}");
}

#[test]
fn a_command_with_an_argument_that_is_not_utf8_runs_as_given() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let s = Sandbox::new("notutf8");
    let events = s.path("events.ndjson");
    let name = OsStr::from_bytes(b"lat\xe9.txt");
    let out = s
        .logging_to(&events, &["run", "--job", "touch", "--", "touch"])
        .arg(name)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        s.0.join(name).exists(),
        "the command ran with the bytes given"
    );
    let text = std::fs::read_to_string(&events).unwrap();
    let complete: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(
        complete["run"]["facets"]["prov_execution"]["argv"],
        serde_json::json!(["touch", "lat\u{fffd}.txt"])
    );
}

#[test]
fn an_environment_that_is_not_utf8_neither_stops_a_run_nor_hides_a_bad_setting() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let s = Sandbox::new("envnotutf8");
    let events = s.path("events.ndjson");
    // Anywhere in the environment: an unrelated variable, one allow-listed
    // for the record, and a name that is not UTF-8 itself.
    let out = s
        .logging_to(&events, &["run", "--job", "true", "--", "true"])
        .env("PROV_TEST_LATIN1", OsStr::from_bytes(b"caf\xe9"))
        .env("NXF_WORK", OsStr::from_bytes(b"/work/caf\xe9"))
        .env(OsStr::from_bytes(b"N\xc0ME"), "x")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&events).unwrap();
    let start: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let recorded = &start["run"]["facets"]["environmentVariables"]["environmentVariables"];
    assert!(
        recorded
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"name": "NXF_WORK", "value": "/work/caf\u{fffd}"})),
        "{recorded}"
    );

    // An OpenLineage setting that is not UTF-8 is an error naming it, not a
    // silent default.
    let out = s
        .logging_to(&events, &["run", "--job", "true", "--", "true"])
        .env(
            "OPENLINEAGE_URL",
            OsStr::from_bytes(b"http://127.0.0.1:1/\xff"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("OPENLINEAGE_URL is not UTF-8"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn outputs_that_cannot_be_recorded_are_named_and_a_bad_uri_stops_the_step_first() {
    let s = Sandbox::new("odd-outputs");
    // A link to itself: it exists, but cannot be read.
    let out = s.prov(&["run", "--output", "loop", "--", "ln", "-s", "loop", "loop"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the declared output loop cannot be read")
            && stderr.contains("symbolic links"),
        "{stderr}"
    );
    // A URI that names no object: refused before the command runs.
    let ran = s.path("ran");
    let out = s.prov(&["run", "--output", "s3://bucket/", "--", "touch", &ran]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the output s3://bucket/ names no object"),
        "{stderr}"
    );
    assert!(!Path::new(&ran).exists(), "the command did not run");
    // Said without its password or a signed URL's signature.
    let out = s.prov(&[
        "run",
        "--output",
        "s3://user:PW1@bucket/?X-Amz-Signature=SIG2",
        "--",
        "true",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        !stderr.contains("PW1") && !stderr.contains("SIG2"),
        "{stderr}"
    );
}

#[test]
fn a_step_stopped_by_a_signal_it_outlives_is_recorded_and_reported_as_stopped() {
    let s = Sandbox::new("signal-handled");
    // The command ignores SIGTERM and ends well.
    let mut child = s
        .command(&[
            "run",
            "--job",
            "stubborn",
            "--",
            "sh",
            "-c",
            "trap '' TERM; sleep 2",
        ])
        .spawn()
        .unwrap();
    wait_for_start(&s);
    terminate(&child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15));
    let runs = s.json(&["audit", "runs", "--format", "json"]);
    assert_eq!(runs["items"][0]["state"], "ABORT");
}

#[test]
fn lineage_draws_a_step_that_rewrites_the_version_it_read() {
    let s = Sandbox::new("lineage-cycle");
    let digest = "b".repeat(64);
    let dataset = serde_json::json!({"namespace": "file", "name": "/d/x.vcf", "facets": {
        "version": {"_producer": "https://example.org/other",
            "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json",
            "datasetVersion": format!("sha256:{digest}")}}});
    let event = |run: &str, job: &str, inputs: Value| {
        serde_json::json!({
            "eventTime": "2024-05-01T12:00:00Z",
            "producer": "https://example.org/other",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "eventType": "COMPLETE",
            "run": {"runId": run},
            "job": {"namespace": "n", "name": job},
            "inputs": inputs,
            "outputs": [dataset],
        })
        .to_string()
    };
    let events = s.write(
        "events.ndjson",
        &[
            event(
                "0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d41",
                "make",
                serde_json::json!([{"namespace": "file", "name": "/d/a.ref"}]),
            ),
            // Sorts in place and changes nothing: reads and writes one version.
            event(
                "0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d42",
                "sort_inplace",
                serde_json::json!([dataset]),
            ),
        ]
        .join("\n"),
    );
    s.ok(&["ingest", &events]);
    let out = s.prov(&["lineage", "dataset:file:/d/x.vcf"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for shown in [
        "/d/x.vcf",
        "/d/a.ref",
        "make",
        "sort_inplace",
        "(shown above)",
    ] {
        assert!(text.contains(shown), "{shown}: {text}");
    }
    // Drawn from what was asked about.
    assert!(text.lines().next().unwrap().contains("/d/x.vcf"), "{text}");
}

#[test]
fn a_step_whose_start_cannot_be_recorded_to_a_closed_pipe_is_not_a_success() {
    let s = Sandbox::new("closed-pipe");
    let ran = s.path("ran");
    let script = format!("touch {ran}; exit 3");
    let mut child = s
        .command(&[
            "--store",
            "/nonexistent/x/prov.db",
            "run",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .env("OPENLINEAGE__TRANSPORT__TYPE", "console")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before prov writes its START event there.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("record the start of the step"), "{stderr}");
    assert!(!Path::new(&ran).exists(), "the step did not run unrecorded");
}

#[test]
fn an_option_variable_that_is_not_utf8_is_named() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let s = Sandbox::new("option-env");
    let out = s
        .command(&["audit", "runs"])
        .env("PROV_STORE", OsStr::from_bytes(b"x\xffy.db"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the environment variable PROV_STORE is not UTF-8"),
        "{stderr}"
    );
}

#[test]
fn a_dataset_given_twice_is_recorded_once() {
    let s = Sandbox::new("twice");
    let input = s.write("a.txt", "a\n");
    let events = s.path("events.ndjson");
    s.ok_logging_to(
        &events,
        &[
            "run", "--input", "a.txt", "--input", "./a.txt", "--input", &input, "--output",
            "b.txt", "--output", "b.txt", "--", "cp", "a.txt", "b.txt",
        ],
    );
    let text = std::fs::read_to_string(&events).unwrap();
    let complete: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(
        complete["inputs"].as_array().unwrap().len(),
        1,
        "{complete}"
    );
    assert_eq!(
        complete["outputs"].as_array().unwrap().len(),
        1,
        "{complete}"
    );
}

#[test]
fn one_input_spelled_two_ways_is_one_step_for_the_cache() {
    let s = Sandbox::new("spelled-twice");
    s.write("in.txt", "x\n");
    let counter = s.path("count");
    let script = format!("cp in.txt out.txt; echo ran >> {counter}");
    let step = |inputs: &[&str]| {
        let mut args = vec!["run", "--cache", "--job", "j"];
        for i in inputs {
            args.extend(["--input", i]);
        }
        args.extend(["--output", "out.txt", "--", "sh", "-c", &script]);
        let out = s.prov(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    step(&["in.txt"]);
    step(&["in.txt", "./in.txt"]);
    let runs = std::fs::read_to_string(&counter).unwrap().lines().count();
    assert_eq!(
        runs, 1,
        "the second spelling is the same step, served from the cache"
    );
}

#[test]
fn printing_a_recipe_to_a_reader_that_left_is_not_an_error() {
    let s = Sandbox::new("plan-pipe");
    let input = s.write("in.txt", "x\n");
    s.ok(&[
        "run", "--input", &input, "--output", "out.txt", "--", "cp", &input, "out.txt",
    ]);
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let out = s
        .command(&["rerun", "--plan", "out.txt"])
        .stdout(Stdio::from(write))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_file_written_back_to_an_earlier_content_verifies_as_its_last_run_wrote_it() {
    let s = Sandbox::new("a-b-a");
    for content in ["A", "B", "A"] {
        let script = format!("echo {content} > ab.txt");
        s.ok(&[
            "run", "--job", "w", "--output", "ab.txt", "--", "sh", "-c", &script,
        ]);
        // Distinct event times, to the microsecond.
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = s.prov(&["verify", "ab.txt"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("OK"), "{text}");
}

#[test]
fn json_answers_about_a_file_named_in_latin1_do_not_panic() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let s = Sandbox::new("json-latin1");
    let name = OsStr::from_bytes(b"caf\xe9.txt");
    std::fs::write(s.0.join(name), "d\n").unwrap();
    let missing = OsStr::from_bytes(b"gone\xe9.txt");
    s.ok(&["run", "--", "true"]); // a store to verify against
    for args in [
        &["hash", "--format", "json"][..],
        &["verify", "--format", "json"],
    ] {
        let out = s.command(args).arg(name).arg(missing).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("caf\u{fffd}.txt"), "{args:?}: {stdout}");
        assert!(
            matches!(out.status.code(), Some(1 | 2)),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn an_audit_page_says_its_outputs_are_those_of_its_runs() {
    let s = Sandbox::new("audit-page");
    let image = format!("quay.io/biocontainers/bwa@sha256:{}", "a".repeat(64));
    for out in ["o1", "o2"] {
        s.ok(&[
            "run",
            "--container",
            &image,
            "--output",
            out,
            "--",
            "touch",
            out,
        ]);
    }
    let all = s.prov(&["audit", "container", "quay.io/biocontainers/bwa"]);
    let all = String::from_utf8_lossy(&all.stdout);
    assert!(all.contains("2 outputs downstream of them:"), "{all}");
    let page = s.prov(&[
        "audit",
        "container",
        "quay.io/biocontainers/bwa",
        "--limit",
        "1",
    ]);
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(
        page.contains("1 outputs downstream of the 1 runs listed here"),
        "{page}"
    );
}

#[test]
fn an_audit_of_an_image_keeps_registries_apart() {
    let s = Sandbox::new("audit-registry");
    for (registry, d) in [("ghcr.io", "a"), ("docker.io", "b")] {
        let image = format!("{registry}/org/tool:1.0@sha256:{}", d.repeat(64));
        s.ok(&["run", "--container", &image, "--", "true"]);
    }
    for registry in ["ghcr.io", "docker.io"] {
        let audit = s.json(&[
            "audit",
            "container",
            "--format",
            "json",
            &format!("{registry}/org/tool:1.0"),
        ]);
        assert_eq!(audit["runs"]["total"], 1, "{registry}: {audit}");
    }
}

#[test]
fn a_store_and_a_hash_cache_are_not_taken_for_each_other() {
    let s = Sandbox::new("cache-vs-store");
    let file = s.write("f.txt", "x\n");
    let cache = s.path("hashes.sqlite");
    let out = s
        .command(&["run", "--input", &file, "--", "true"])
        .env("PROV_HASH_CACHE", &cache)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(Path::new(&cache).exists());
    let out = s.prov(&["--store", &cache, "audit", "runs"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("prov's hash cache, not a store"),
        "{stderr}"
    );
    let out = s
        .command(&["hash", &file])
        .env("PROV_HASH_CACHE", s.path("prov.db"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a prov store, not a hash cache"),
        "{stderr}"
    );
}

#[test]
fn a_sqlite_copy_takes_its_name_only_when_whole() {
    let s = Sandbox::new("copy-partial");
    s.ok(&["run", "--", "true"]);
    let to = s.path("copy.db");
    // Left by an interrupted copy: started over, not mistaken for a store.
    std::fs::write(format!("{to}.prov-copy-partial"), "half a store").unwrap();
    s.ok(&["store", "copy", "prov.db", &to]);
    assert!(Path::new(&to).exists());
    for suffix in ["", "-wal", "-shm"] {
        assert!(
            !Path::new(&format!("{to}.prov-copy-partial{suffix}")).exists(),
            "{suffix}"
        );
    }
    let out = s.prov(&["--store", &to, "verify", "--chain"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An empty file or folder is looked up by its path: its digest is that of
/// every empty file, so matching by content would answer with the lineage of
/// some other empty file.
#[test]
fn an_empty_target_is_found_by_its_path_not_by_its_empty_content() {
    let s = Sandbox::new("empty-target");
    let flag = s.path("sample.done");
    s.ok(&[
        "run",
        "--job",
        "touchflag",
        "--output",
        &flag,
        "--",
        "touch",
        &flag,
    ]);
    std::fs::create_dir_all(s.0.join("unrelated_index")).unwrap();
    s.write("other.done", "");
    for unrelated in ["unrelated_index", "other.done"] {
        let out = s.prov(&["lineage", "--format", "json", unrelated]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("touchflag"), "{unrelated}: {text}");
    }
    let graph = s.json(&["lineage", "--format", "json", &flag]);
    assert!(graph.to_string().contains("touchflag"), "{graph}");
}

#[test]
fn prov_run_md5_records_the_md5_of_inputs_and_outputs_beside_the_sha256() {
    let s = Sandbox::new("md5");
    let input = s.write("reads.fastq", "@r\nACGT\n+\nIIII\n");
    let output = s.path("copy.fastq");
    let events = s.path("events.ndjson");
    s.ok_logging_to(
        &events,
        &[
            "run", "--md5", "--job", "copy", "--input", &input, "--output", &output, "--", "cp",
            &input, &output,
        ],
    );
    let md5 = |path: &str| {
        let out = Command::new("md5sum").arg(path).output().unwrap();
        String::from_utf8(out.stdout).unwrap()[..32].to_owned()
    };
    let text = std::fs::read_to_string(&events).unwrap();
    let complete: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["eventType"] == "COMPLETE")
        .unwrap();
    let checksums = |dataset: &Value| dataset["facets"]["prov_checksum"]["checksums"].clone();
    assert_eq!(
        checksums(&complete["inputs"][0])["md5"],
        md5(&input),
        "{complete}"
    );
    assert_eq!(
        checksums(&complete["outputs"][0])["md5"],
        md5(&output),
        "{complete}"
    );
    assert_eq!(
        checksums(&complete["outputs"][0])["sha-256"],
        sha256(&output)
    );
}

/// An auditor (another user) reads a pipeline's store at rest: nothing of
/// the auditor's is left beside it, and its owner goes on writing.
#[test]
fn another_users_read_leaves_the_owner_able_to_write() {
    let root = nix::unistd::geteuid().is_root();
    if !root || Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipped: needs root and setpriv to act as two users");
        return;
    }
    let s = Sandbox::new("two-users");
    let shared = s.0.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(
        &shared,
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let prov = env!("CARGO_BIN_EXE_prov");
    let as_user = |uid: u32, args: &str| {
        s.shell(&format!(
            "cd shared && setpriv --reuid={uid} --regid={uid} --clear-groups {prov} --store s.db {args}"
        ))
        .output()
        .unwrap()
    };
    let ok = |out: Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    // The owner records, and the store is left at rest (no -wal, no -shm).
    let events = s.write(
        "events.ndjson",
        &[("a", "11111111-1111-4111-8111-111111111111"), ("b", "22222222-2222-4222-8222-222222222222")]
            .map(|(job, id)| format!(r#"{{"eventType":"COMPLETE","eventTime":"2026-01-01T00:00:00Z","producer":"https://example.org","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent","run":{{"runId":"{id}"}},"job":{{"namespace":"ns","name":"{job}"}}}}"#))
            .join("\n"),
    );
    std::fs::set_permissions(&events, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    ok(as_user(1000, &format!("ingest {events}")));
    assert!(
        !shared.join("s.db-wal").exists(),
        "the store is not at rest"
    );
    let read = ok(as_user(65534, "audit runs --format json"));
    let runs: Value = serde_json::from_slice(&read.stdout).unwrap();
    assert_eq!(runs["total"], 2);
    for suffix in ["-wal", "-shm"] {
        let file = shared.join(format!("s.db{suffix}"));
        if let Ok(meta) = file.metadata() {
            use std::os::unix::fs::MetadataExt;
            assert_eq!(meta.uid(), 1000, "{} left by the reader", file.display());
        }
    }
    // Log files the reader made anyway (an older prov, or the owner's
    // writer closing just as the reader looked) are given back, removed.
    s.shell(
        "cd shared && setpriv --reuid=65534 --regid=65534 --clear-groups touch s.db-wal s.db-shm",
    )
    .output()
    .unwrap();
    ok(as_user(65534, "audit runs --format json"));
    for suffix in ["-wal", "-shm"] {
        assert!(
            !shared.join(format!("s.db{suffix}")).exists(),
            "{suffix} left"
        );
    }
    ok(as_user(1000, "run --job second -- true"));
    let out = ok(as_user(1000, "verify --chain"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("chain OK: 4 events"), "{text}");
}

/// Two copies into one new file: the second is refused while the first
/// holds the copy's lock; and a log left beside a removed store is not read
/// into a copy made under its name.
#[test]
fn a_copy_refuses_a_second_copy_and_a_stale_log_at_its_destination() {
    let s = Sandbox::new("copy-guard");
    s.ok(&["run", "--", "true"]);
    let to = s.path("copy.db");
    let lock = std::fs::File::create(format!("{to}.prov-copy.lock")).unwrap();
    lock.lock().unwrap();
    let out = s.prov(&["store", "copy", "prov.db", &to]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another prov store copy is writing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!Path::new(&to).exists());
    drop(lock);
    std::fs::write(format!("{to}-wal"), "left by a writer killed before").unwrap();
    let out = s.prov(&["store", "copy", "prov.db", &to]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-wal is left from a store"));
    std::fs::remove_file(format!("{to}-wal")).unwrap();
    s.ok(&["store", "copy", "prov.db", &to]);
    assert!(!Path::new(&format!("{to}.prov-copy.lock")).exists());
}

/// What a `verify --chain` killed with SIGKILL left in $TMPDIR (a copy of
/// the whole store) is removed by the next one; a live check's is not.
#[test]
fn verify_chain_removes_what_a_killed_check_left_in_tmpdir() {
    let s = Sandbox::new("verify-sweep");
    s.ok(&["run", "--job", "a", "--", "true"]);
    let tmp = s.0.join("tmp");
    let left = tmp.join("prov-verify-999999-01a2110f-0000-7000-8000-000000000000");
    std::fs::create_dir_all(left.join("prov-verify-999999-inner")).unwrap();
    std::fs::write(left.join("held"), b"").unwrap();
    std::fs::write(left.join("prov-verify-999999-inner/store.db"), b"copy").unwrap();
    let live = tmp.join("prov-verify-1-live");
    std::fs::create_dir_all(&live).unwrap();
    let lock = std::fs::File::create(live.join("held")).unwrap();
    lock.lock().unwrap();
    let out = s
        .command(&["verify", "--chain"])
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!left.exists(), "the killed check's copy is still there");
    assert!(live.exists(), "a live check's folder was removed");
    let rest: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(rest.len(), 1, "{rest:?}");
}
