//! The germline example (`examples/germline`) on real tools: bwa, samtools
//! and bcftools from Debian, simulated reads with planted SNPs, every step
//! through `prov run`. Then the questions an auditor asks of the result.
//!
//! The tools are required when `PROV_REQUIRE_PEERS=1` (as in `.ci/run`, which
//! installs them); elsewhere the test says it is skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn tools_present() -> bool {
    let missing: Vec<&str> = ["bwa", "samtools", "bcftools", "python3"]
        .into_iter()
        .filter(|tool| {
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("PROV_REQUIRE_PEERS").as_deref() != Ok("1"),
        "PROV_REQUIRE_PEERS=1 but {missing:?} not installed (scripts/install-test-peers.sh installs them)"
    );
    eprintln!("skipped: {missing:?} not installed");
    false
}

struct Germline {
    dir: PathBuf,
    example: PathBuf,
}

impl Germline {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("prov-germline-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/germline");
        Germline { dir, example }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.dir)
            .env("PROV", env!("CARGO_BIN_EXE_prov"))
            .env("PROV_STORE", self.path("prov.db"))
            .env("HOME", &self.dir)
            .env("XDG_CACHE_HOME", self.dir.join("cache"))
            .env("XDG_STATE_HOME", self.dir.join("state"))
            .env_remove("PROV_PARENT_RUN")
            .env_remove("PROV_GERMLINE_PARENT")
            .env_remove("PROV_RECORD")
            .env_remove("RUNTIME")
            .env_remove("PROV_REQUIRE_PINNED")
            .env_remove("PROV_CACHE_DIR")
            .env_remove("DOCKER_CONFIG")
            .env_remove("OPENLINEAGE_URL")
            .env_remove("OPENLINEAGE_CONFIG")
            .env_remove("OPENLINEAGE__TRANSPORT__TYPE");
        c
    }

    fn run_pipeline(&self) {
        let out = self
            .command("sh")
            .arg(self.example.join("pipeline.sh"))
            .args(["data", "out"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn prov(&self, args: &[&str]) -> Output {
        self.command(env!("CARGO_BIN_EXE_prov"))
            .args(args)
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.prov(args);
        assert!(
            out.status.success(),
            "prov {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Germline {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sha256(path: &str) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

/// Fingerprints of the runs of each job, by job and first input name.
fn fingerprints(g: &Germline) -> BTreeMap<String, BTreeSet<String>> {
    let runs = g.json(&["audit", "runs", "--format", "json", "--limit", "1000"]);
    let mut by_job: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for run in runs["items"].as_array().unwrap() {
        by_job
            .entry(run["job"].as_str().unwrap().to_owned())
            .or_default()
            .insert(run["fingerprint"].as_str().unwrap_or("none").to_owned());
    }
    by_job
}

#[test]
fn the_germline_example_records_a_real_pipeline_an_auditor_can_trace() {
    if !tools_present() {
        return;
    }
    let g = Germline::new();
    let sim = g
        .command("python3")
        .arg(g.example.join("simulate.py"))
        .arg("data")
        .output()
        .unwrap();
    assert!(
        sim.status.success(),
        "{}",
        String::from_utf8_lossy(&sim.stderr)
    );
    g.run_pipeline();
    let cohort = g.path("out/cohort.vcf.gz");

    // The planted SNPs are called, each in exactly the samples that carry
    // it, and nothing else is with any confidence (a read error where the
    // reference starts, under two reads, can make a QUAL 4 call): the
    // pipeline is real.
    let planted = std::fs::read_to_string(g.path("data/planted.tsv")).unwrap();
    let mut expected: BTreeMap<(u64, String, String), BTreeSet<String>> = BTreeMap::new();
    for line in planted.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        expected
            .entry((f[2].parse().unwrap(), f[3].to_owned(), f[4].to_owned()))
            .or_default()
            .insert(f[0].to_owned());
    }
    let query = Command::new("bcftools")
        .args([
            "query",
            "-i",
            "QUAL>=20",
            "-f",
            "%POS\t%REF\t%ALT[\t%SAMPLE=%GT]\n",
            &cohort,
        ])
        .output()
        .unwrap();
    assert!(query.status.success());
    let mut called: BTreeMap<(u64, String, String), BTreeSet<String>> = BTreeMap::new();
    for line in String::from_utf8(query.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let carriers = f[3..]
            .iter()
            .filter_map(|s| s.strip_suffix("=1/1").or_else(|| s.strip_suffix("=0/1")))
            .map(str::to_owned)
            .collect();
        called.insert(
            (f[0].parse().unwrap(), f[1].to_owned(), f[2].to_owned()),
            carriers,
        );
    }
    assert_eq!(called, expected, "calls vs planted SNPs");
    let samples = ["S1", "S2", "S3"];

    // The lineage of the cohort VCF reaches every FASTQ and the reference,
    // with their sha-256, and every step with its image digest and parameters.
    let graph = g.json(&["lineage", "--format", "json", &cohort]);
    let nodes = graph["graph"].as_array().unwrap();
    let datasets: BTreeMap<&str, &Value> = nodes
        .iter()
        .filter(|n| n["type"] == "DATASET")
        .map(|n| (n["data"]["name"].as_str().unwrap(), &n["data"]))
        .collect();
    let mut raw = vec![g.path("data/ref.fa")];
    for s in samples {
        raw.push(g.path(&format!("data/{s}_R1.fastq.gz")));
        raw.push(g.path(&format!("data/{s}_R2.fastq.gz")));
    }
    for file in &raw {
        let node = datasets
            .get(file.as_str())
            .unwrap_or_else(|| panic!("{file} is not in the lineage of {cohort}"));
        assert_eq!(
            node["digest"].as_str(),
            Some(sha256(file).as_str()),
            "{file}"
        );
    }
    let images: BTreeMap<String, String> = std::fs::read_to_string(g.example.join("images.tsv"))
        .unwrap()
        .lines()
        .map(|l| {
            let (tool, image) = l.split_once('\t').unwrap();
            (tool.to_owned(), image.to_owned())
        })
        .collect();
    let runs: Vec<&Value> = nodes
        .iter()
        .filter(|n| n["type"] == "RUN")
        .map(|n| &n["data"])
        .collect();
    let jobs: BTreeSet<&str> = runs.iter().map(|r| r["job"].as_str().unwrap()).collect();
    assert_eq!(
        jobs,
        BTreeSet::from([
            "bwa_index",
            "samtools_faidx",
            "bwa_mem",
            "samtools_sort",
            "samtools_index",
            "bcftools_mpileup",
            "bcftools_call",
            "bcftools_index",
            "bcftools_merge"
        ])
    );
    assert_eq!(runs.len(), 2 + 6 * samples.len() + 1);
    for run in &runs {
        let job = run["job"].as_str().unwrap();
        let tool = job.split('_').next().unwrap();
        let image = &images[tool];
        assert_eq!(run["containerImage"], image.as_str(), "{job}");
        assert_eq!(
            run["containerDigest"].as_str(),
            image.split_once('@').map(|(_, d)| d),
            "{job}"
        );
        assert_eq!(run["state"], "COMPLETE");
        assert!(
            run["parentRunId"].is_string(),
            "{job} runs under the pipeline"
        );
        assert!(
            run["facets"]["prov_execution"]["argv"][0] == tool,
            "{job}: {}",
            run["facets"]["prov_execution"]
        );
    }
    let bwa_mem = runs.iter().find(|r| r["job"] == "bwa_mem").unwrap();
    let params = &bwa_mem["facets"]["prov_parameters"]["parameters"];
    assert_eq!(params["threads"], 2);
    assert!(
        params["read_group"]
            .as_str()
            .unwrap()
            .starts_with("@RG\\tID:S")
    );
    let parents: BTreeSet<&str> = runs
        .iter()
        .map(|r| r["parentRunId"].as_str().unwrap())
        .collect();
    assert_eq!(parents.len(), 1, "one pipeline run holds every step");

    // Derived from S1's reads: exactly the outputs that contain S1.
    let derived = g.json(&[
        "audit",
        "derived",
        "--format",
        "json",
        &g.path("data/S1_R1.fastq.gz"),
    ]);
    let outputs: BTreeSet<String> = derived["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_owned())
        .collect();
    let s1: BTreeSet<String> = [
        "S1.sam",
        "S1.bam",
        "S1.bam.bai",
        "S1.pileup.bcf",
        "S1.vcf.gz",
        "S1.vcf.gz.csi",
        "cohort.vcf.gz",
    ]
    .iter()
    .map(|f| g.path(&format!("out/{f}")))
    .collect();
    assert_eq!(outputs, s1);

    // The same pipeline on the same inputs: the same fingerprints, step by step.
    let first = fingerprints(&g);
    g.run_pipeline();
    let second = fingerprints(&g);
    for (job, prints) in &second {
        assert_eq!(prints, &first[job], "{job}: a rerun on unchanged inputs");
    }
    assert_eq!(
        first["bwa_mem"].len(),
        samples.len(),
        "one fingerprint per sample"
    );

    // The whole recipe re-made in a scratch directory gives the same bytes.
    let rerun = g.prov(&["rerun", "--check", "--workdir", &g.path("scratch"), &cohort]);
    let text = String::from_utf8_lossy(&rerun.stdout);
    assert!(
        rerun.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let outputs = 7 + 6 * samples.len();
    assert!(
        text.contains(&format!(
            "REPRODUCED: {outputs} of {outputs} outputs identical"
        )),
        "{text}"
    );

    // verify passes, then fails once the BAM is edited.
    let bam = g.path("out/S1.bam");
    let ok = g.prov(&["verify", &bam, &cohort]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let mut bytes = std::fs::read(&bam).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&bam, bytes).unwrap();
    let bad = g.prov(&["verify", &bam, &cohort]);
    assert_eq!(bad.status.code(), Some(1));
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(text.contains("S1.bam"), "{text}");
    let chain = g.prov(&["verify", "--chain"]);
    assert!(chain.status.success());
}
