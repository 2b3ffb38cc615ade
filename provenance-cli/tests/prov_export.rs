//! `prov lineage --format prov`: the lineage of a two-step pipeline as a W3C
//! PROV document, checked by what it says and by the `prov` Python package
//! (the W3C PROV data model's Python implementation) reading it back.
//!
//! The peer is required when `PROV_REQUIRE_PEERS=1` (as in `.ci/run`);
//! otherwise its part is skipped with a note.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

#[path = "sandbox/mod.rs"]
mod sandbox;
use sandbox::Sandbox;

/// The records of one PROV-JSON section (`used`, `entity`...).
fn section<'a>(doc: &'a Value, name: &str) -> Vec<(&'a String, &'a Value)> {
    doc[name]
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default()
}

/// The entity id whose `gp:name` is `path` and `gp:sha256` the file's digest.
fn entity_of(doc: &Value, path: &str, sha256: &str) -> String {
    let found: Vec<&String> = section(doc, "entity")
        .into_iter()
        .filter(|(_, e)| e["gp:name"] == path && e["gp:sha256"] == sha256)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(found.len(), 1, "{path} {sha256}: {found:?}");
    found[0].clone()
}

fn sha256(path: &str) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

/// Whether a peer script failed because the Python module `module` (or one
/// whose name begins so) is not installed: then its test is skipped with a
/// note, unless `PROV_REQUIRE_PEERS=1` (CI), where that is a failure.
fn missing(stderr: &str, module: &str, peer: &str) -> bool {
    if !stderr.contains(&format!("No module named '{module}")) {
        return false;
    }
    let required = std::env::var("PROV_REQUIRE_PEERS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{peer} is required (PROV_REQUIRE_PEERS=1) but missing: run scripts/install-test-peers.sh"
    );
    eprintln!("skipped: {peer} is not installed");
    true
}

/// What the `prov` package read: record counts by type, and the PROV-N; or
/// `None` when the package is not installed.
fn python_reads(document: &[u8]) -> Option<(BTreeMap<String, usize>, String)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peer/prov_read.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3");
    child.stdin.take().unwrap().write_all(document).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if missing(&stderr, "prov", "the Python package prov") {
        return None;
    }
    assert!(out.status.success(), "prov could not read it: {stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (counts, provn) = text.split_once("---\n").unwrap();
    let counts = counts
        .lines()
        .map(|l| {
            let (kind, n) = l.split_once(' ').unwrap();
            (kind.to_owned(), n.parse().unwrap())
        })
        .collect();
    Some((counts, provn.to_owned()))
}

/// A sandbox where align wrote x.bam from "my reads.fastq" twice (the first
/// version overwritten), then call made x.vcf from the second: the paths of
/// the reads, the BAM and the VCF, and the first BAM's digest.
fn pipeline(name: &str) -> (Sandbox, [String; 3], String) {
    let s = Sandbox::new(name);
    let reads = s.write("my reads.fastq", "@r1\nACGT\n+\nIIII\n");
    let (bam, vcf) = (s.path("x.bam"), s.path("x.vcf"));
    let step = |job: &str, input: &str, output: &str, text: &str| {
        let script = format!("cat \"$1\" > \"$2\" && echo {text} >> \"$2\"");
        s.ok(&[
            "run", "--job", job, "--container", "quay.io/biocontainers/bwa@sha256:3f1ad5bbec2a2c1b7e0e7d2a9c4b6f8e1d3c5b7a9e2f4d6c8b0a1e3f5d7c9b2a",
            "--param", "threads=8", "--input", input, "--output", output, "--", "sh", "-c",
            &script, "step", input, output,
        ]);
    };
    step("align", &reads, &bam, "first");
    let first_bam = sha256(&bam);
    step("align", &reads, &bam, "second");
    step("call", &bam, &vcf, "called");
    (s, [reads, bam, vcf], first_bam)
}

#[test]
fn a_pipelines_lineage_as_w3c_prov_says_who_used_and_made_what() {
    let (s, [reads, bam, vcf], first_bam) = pipeline("prov-export");
    let out = s.prov(&["lineage", "--format", "prov", &vcf]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();

    let reads_id = entity_of(&doc, &reads, &sha256(&reads));
    let bam_id = entity_of(&doc, &bam, &sha256(&bam));
    let vcf_id = entity_of(&doc, &vcf, &sha256(&vcf));
    // The version of x.bam that call did not read is not in its lineage.
    assert!(
        section(&doc, "entity")
            .iter()
            .all(|(_, e)| e["gp:sha256"] != first_bam.as_str()),
        "{doc:#}"
    );
    let activity = |job: &str| -> String {
        let found: Vec<&String> = section(&doc, "activity")
            .into_iter()
            .filter(|(_, a)| a["gp:job"] == job && a["gp:state"] == "COMPLETE")
            .map(|(id, _)| id)
            .collect();
        assert_eq!(found.len(), 1, "{job}: {doc:#}");
        found[0].clone()
    };
    let (align, call) = (activity("align"), activity("call"));
    let has = |kind: &str, pairs: &[(&str, &str)]| {
        section(&doc, kind)
            .iter()
            .any(|(_, r)| pairs.iter().all(|(k, v)| r[*k] == *v))
    };
    assert!(has(
        "used",
        &[("prov:activity", &align), ("prov:entity", &reads_id)]
    ));
    assert!(has(
        "used",
        &[("prov:activity", &call), ("prov:entity", &bam_id)]
    ));
    assert!(has(
        "wasGeneratedBy",
        &[("prov:entity", &bam_id), ("prov:activity", &align)]
    ));
    assert!(has(
        "wasGeneratedBy",
        &[("prov:entity", &vcf_id), ("prov:activity", &call)]
    ));
    assert!(has(
        "wasDerivedFrom",
        &[
            ("prov:generatedEntity", &vcf_id),
            ("prov:usedEntity", &bam_id),
            ("prov:activity", &call)
        ]
    ));
    assert_eq!(section(&doc, "used").len(), 2, "{doc:#}");
    assert_eq!(section(&doc, "wasGeneratedBy").len(), 2, "{doc:#}");
    // The image, by digest, is the agent of both runs.
    let image: Vec<&String> = section(&doc, "agent")
        .into_iter()
        .filter(|(_, a)| a["prov:type"]["$"] == "prov:SoftwareAgent")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(image.len(), 1, "{doc:#}");
    assert!(has(
        "wasAssociatedWith",
        &[("prov:activity", &call), ("prov:agent", image[0])]
    ));
    assert_eq!(doc["activity"][&call]["gp:parameters"], r#"{"threads":8}"#);

    // The W3C data model's Python implementation reads every record back.
    let Some((counts, provn)) = python_reads(&out.stdout) else {
        return;
    };
    let ours: BTreeMap<String, usize> = doc
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "prefix")
        .map(|(k, v)| {
            // The PROV-N names of the sections.
            let kind = match k.as_str() {
                "entity" => "Entity",
                "activity" => "Activity",
                "agent" => "Agent",
                "used" => "Usage",
                "wasGeneratedBy" => "Generation",
                "wasDerivedFrom" => "Derivation",
                "wasAssociatedWith" => "Association",
                "wasStartedBy" => "Start",
                "wasInfluencedBy" => "Influence",
                other => panic!("unexpected section {other}"),
            };
            (kind.to_owned(), v.as_object().unwrap().len())
        })
        .collect();
    assert_eq!(counts, ours, "{provn}");
    assert!(
        provn.contains(&format!("used({align}, {reads_id}")),
        "{provn}"
    );
}

/// Runs the RO-Crate validator on `folder` at `severity`: whether it passed,
/// and the issues; `None` when the validator is not installed.
fn validate_crate(folder: &std::path::Path, severity: &str) -> Option<(bool, Vec<String>)> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/peer/ro_crate_validate.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(folder)
        .args(["process-run-crate-0.5", severity])
        .output()
        .expect("start python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if missing(&stderr, "rocrate", "rocrate-validator") {
        return None;
    }
    assert!(out.status.success(), "the validator failed: {stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let valid = lines.next() == Some("valid");
    Some((valid, lines.map(str::to_owned).collect()))
}

#[test]
fn a_pipelines_lineage_as_an_ro_crate_passes_the_process_run_crate_validator() {
    let (s, [reads, bam, vcf], first_bam) = pipeline("ro-crate");
    let out = s.prov(&["lineage", "--format", "ro-crate", &vcf]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let crate_: Value = serde_json::from_slice(&out.stdout).unwrap();
    let graph = crate_["@graph"].as_array().unwrap();
    let entity = |id: &str| -> &Value {
        graph
            .iter()
            .find(|e| e["@id"] == id)
            .unwrap_or_else(|| panic!("no {id}: {crate_:#}"))
    };
    let uri = |path: &str| format!("file://{}", path.replace(' ', "%20"));
    let actions: Vec<&Value> = graph
        .iter()
        .filter(|e| e["@type"] == "CreateAction")
        .collect();
    assert_eq!(actions.len(), 2, "{crate_:#}");
    let by_name = |job: &str| -> &Value {
        actions
            .iter()
            .find(|a| a["name"].as_str().unwrap().starts_with(&format!("{job} ")))
            .unwrap()
    };
    let (align, call) = (by_name("align"), by_name("call"));
    assert_eq!(align["result"]["@id"], uri(&bam));
    assert_eq!(call["result"]["@id"], uri(&vcf));
    let ids = |v: &Value| -> Vec<String> {
        match v {
            Value::Array(a) => a
                .iter()
                .map(|o| o["@id"].as_str().unwrap().to_owned())
                .collect(),
            o => vec![o["@id"].as_str().unwrap().to_owned()],
        }
    };
    assert!(ids(&align["object"]).contains(&uri(&reads)), "{align:#}");
    assert!(ids(&call["object"]).contains(&uri(&bam)), "{call:#}");
    assert_eq!(entity(&uri(&vcf))["sha256"], sha256(&vcf));
    assert_eq!(entity(&uri(&bam))["sha256"], sha256(&bam));
    assert!(
        graph.iter().all(|e| e["sha256"] != first_bam.as_str()),
        "the overwritten BAM is not in the VCF's lineage: {crate_:#}"
    );
    let image = entity(call["containerImage"]["@id"].as_str().unwrap());
    assert_eq!(image["registry"], "quay.io");
    assert_eq!(
        image["sha256"],
        "3f1ad5bbec2a2c1b7e0e7d2a9c4b6f8e1d3c5b7a9e2f4d6c8b0a1e3f5d7c9b2a"
    );

    // The crate: a folder holding only its metadata (the files stay where
    // they are).
    let folder = s.0.join("crate");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("ro-crate-metadata.json"), &out.stdout).unwrap();
    let Some((valid, issues)) = validate_crate(&folder, "REQUIRED") else {
        return;
    };
    assert!(valid, "{issues:#?}");
    // What the profile only recommends is met too, but for what prov
    // cannot know: the files' formats, the tools' home pages and versions,
    // the crate's author and publisher.
    let (_, issues) = validate_crate(&folder, "RECOMMENDED").unwrap();
    // A graph cut off by --depth is not exported as if it were whole.
    let cut = s.prov(&["lineage", "--depth", "1", "--format", "ro-crate", &vcf]);
    assert_eq!(cut.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&cut.stderr).contains("raise --depth"));
    assert!(cut.stdout.is_empty());
    let unknowable = [
        "encodingFormat",
        "Application SHOULD have a url",
        "SoftwareApplication SHOULD have a version",
        "SoftwareApplication id SHOULD be an absolute URI",
        "`author`",
        "`publisher`",
    ];
    let rest: Vec<&String> = issues
        .iter()
        .filter(|i| !unknowable.iter().any(|u| i.contains(u)))
        .collect();
    assert!(rest.is_empty(), "{rest:#?}");
}
