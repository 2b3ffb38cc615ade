//! Tables of valid and invalid command lines, parsed as clap parses them.

use clap::Parser;

use crate::Cli;

fn parse(line: &str) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("prov").chain(line.split_whitespace()))
}

#[test]
fn valid_command_lines() {
    for line in [
        "run -- true",
        "run --cache --job align --input r.fq --output a.sam -- aligner r.fq",
        "run --job bwa_mem --container quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8 --param threads=8 --input ref.fa --output out.sam -- bwa mem ref.fa",
        "run --parent 0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d31 --params-file p.json -- sh -c exit",
        "--store /tmp/x.db lineage results/S1.vcf",
        "lineage --downstream --depth 3 --format mermaid sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "lineage --as-of 2026-01-31T00:00:00Z dataset:file:/x.vcf",
        "audit container broadinstitute/gatk:4.5.0.0",
        "audit derived data/S1_R1.fastq --format json",
        "audit runs --job align --status COMPLETE --since 2026-01-01T00:00:00Z --limit 10 --offset 20",
        "audit unpinned",
        "verify a.vcf b.bam",
        "verify --chain",
        "ingest --strict -",
        "hash --algo sha256,md5 --format json a b",
        "demo --dir /tmp/demo",
    ] {
        if let Err(e) = parse(line) {
            panic!("{line}: {e}");
        }
    }
}

#[test]
fn invalid_command_lines_say_why() {
    for (line, needle) in [
        ("run --job x", "required arguments were not provided"),
        ("run --param threads -- true", "expected KEY=VALUE"),
        ("run --param =8 -- true", "no name before '='"),
        ("run --runtime docker -- true", "--container"),
        ("lineage --upstream --downstream x", "cannot be used with"),
        ("lineage --format svg x", "invalid value 'svg'"),
        ("lineage --as-of yesterday x", "expected an RFC 3339 time"),
        ("audit", "Usage: prov audit"),
        ("audit runs --since 2026", "expected an RFC 3339 time"),
        ("verify", "required"),
        ("verify --chain a.vcf", "cannot be used with"),
        ("hash --algo sha1 a", "invalid value 'sha1'"),
        ("ingest", "required"),
        ("frobnicate", "unrecognized subcommand"),
    ] {
        let err = parse(line).err().unwrap_or_else(|| panic!("{line} parsed"));
        assert!(err.to_string().contains(needle), "{line}: {err}");
    }
}
