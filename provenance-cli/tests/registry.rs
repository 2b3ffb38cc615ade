//! `prov run --container TAG` against a real registry on loopback: the digest
//! is recorded; with the registry down the cache serves (and says so) or the
//! run is recorded unpinned with the reason and listed by `prov audit
//! unpinned`; `--require-pinned` (or `PROV_REQUIRE_PINNED=1`) refuses to run
//! the command.

use provenance_tests::registry::{Registry, registry_binary, temp_dir};

#[path = "sandbox/mod.rs"]
mod sandbox;
use sandbox::Sandbox;

#[test]
fn prov_run_records_the_digest_or_why_not_and_require_pinned_refuses_to_run() {
    let Some(binary) =
        registry_binary("prov_run_records_the_digest_or_why_not_and_require_pinned_refuses_to_run")
    else {
        return;
    };
    let dir = temp_dir("cli-registry");
    let s = Sandbox::at(dir.join("home"));
    let mut registry = Registry::start(&binary, &dir.join("registry"), None);
    let digest = registry.push_image("lab/bwa", "0.7.17", "bwa");
    registry.push_image("lab/multiqc", "1.21", "multiqc");
    let bwa = format!("{}/lab/bwa:0.7.17", registry.host());
    let multiqc = format!("{}/lab/multiqc:1.21", registry.host());

    // The registry answers: the digest is recorded.
    s.ok(&["run", "--job", "align", "--container", &bwa, "--", "true"]);
    let audit = s.json(&["audit", "container", &digest, "--format", "json"]);
    assert_eq!(audit["runs"]["total"], 1, "{audit}");
    assert_eq!(audit["runs"]["items"][0]["job"], "align");

    registry.stop();

    // Down, but resolved before: the cached digest, and a warning.
    let stderr = s.ok(&["run", "--job", "align", "--container", &bwa, "--", "true"]);
    assert!(stderr.contains("cannot be reached"), "{stderr}");
    let audit = s.json(&["audit", "container", &digest, "--format", "json"]);
    assert_eq!(audit["runs"]["total"], 2, "{audit}");

    // Down, never resolved: recorded unpinned, with the reason, and listed.
    let stderr = s.ok(&["run", "--job", "qc", "--container", &multiqc, "--", "true"]);
    assert!(stderr.contains("recorded unpinned"), "{stderr}");
    let unpinned = s.json(&["audit", "unpinned", "--format", "json"]);
    assert_eq!(unpinned["total"], 1, "{unpinned}");
    assert_eq!(unpinned["items"][0]["job"], "qc");
    assert_eq!(unpinned["items"][0]["containerImage"], multiqc.as_str());
    let run_id = unpinned["items"][0]["runId"].as_str().unwrap();
    let graph = s.json(&["lineage", "--format", "json", &format!("run:{run_id}")]);
    let facet = graph["graph"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "RUN")
        .map(|n| n["data"]["facets"]["prov_container"].clone())
        .expect("the run node");
    let reason = facet["unpinnedReason"].as_str().unwrap_or_default();
    assert!(reason.contains("/v2/lab/multiqc/manifests/1.21"), "{facet}");
    assert!(reason.contains("cache: no earlier answer"), "{facet}");
    // The audit lists the reason too, in JSON and in text.
    assert_eq!(unpinned["items"][0]["unpinnedReason"], reason);
    let text = s.prov(&["audit", "unpinned"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!("unpinned because: {reason}")),
        "{text}"
    );

    // Pinned images required: the command does not run, nothing is recorded.
    let marker = s.0.join("ran");
    let touch = format!("touch {}", marker.display());
    let out = s.prov(&[
        "run",
        "--require-pinned",
        "--job",
        "qc",
        "--container",
        &multiqc,
        "--",
        "sh",
        "-c",
        &touch,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not pinned to a digest"), "{stderr}");
    assert!(stderr.contains("sh was not run"), "{stderr}");
    assert!(!marker.exists(), "the command ran");
    let out = s
        .command(&[
            "run",
            "--job",
            "qc",
            "--container",
            &multiqc,
            "--",
            "sh",
            "-c",
            &touch,
        ])
        .env("PROV_REQUIRE_PINNED", "1")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "PROV_REQUIRE_PINNED=1 requires it too"
    );
    assert!(!marker.exists(), "the command ran");
    assert_eq!(
        s.json(&["audit", "unpinned", "--format", "json"])["total"],
        1
    );

    // A digest-pinned image needs no registry, even when pins are required.
    let pinned = format!("{}/lab/bwa@{digest}", registry.host());
    let out = s
        .command(&[
            "run",
            "--job",
            "align",
            "--container",
            &pinned,
            "--",
            "sh",
            "-c",
            &touch,
        ])
        .env("PROV_REQUIRE_PINNED", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(marker.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
