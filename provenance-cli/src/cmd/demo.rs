//! `prov demo`: a small germline pipeline recorded end to end, in seconds.
//!
//! It writes a synthetic 100 kb reference and paired reads for two samples with
//! planted SNPs, then runs qc -> index -> align -> sort -> call -> merge, each
//! step through `prov run` under one parent run, and shows the lineage of the
//! cohort VCF, an audit of the aligner image, and a verify. The steps are the
//! demo's own small programs (`prov demo-tool`, hidden), since no aligner can be
//! assumed on the machine; they do the real thing at toy scale.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

use crate::ctx::Ctx;

/// Run a small germline pipeline (qc, index, align, sort, call, merge) through
/// `prov run` into the store, and show the lineage of its VCF.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the demo's files [default: a new temporary folder]. It
    /// must be empty or a folder an earlier demo wrote: its files are replaced.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The file that marks a folder as the demo's own.
const DEMO_MARK: &str = ".prov-demo";

/// The demo's step programs.
#[derive(Debug, clap::Args)]
pub struct ToolArgs {
    /// qc, index, align, sort, call, merge or pipeline.
    tool: String,
    /// The tool's files.
    args: Vec<String>,
}

const REFERENCE_LEN: usize = 100_000;
const READ_LEN: usize = 100;
const K: usize = 20;
/// Planted SNPs: (position, alternative base, samples that carry it).
const SNPS: &[(usize, u8, &[&str])] = &[
    (12_345, b'T', &["S1", "S2"]),
    (34_567, b'G', &["S1"]),
    (56_789, b'A', &["S2"]),
    (78_901, b'C', &["S1", "S2"]),
];

/// Pinned images the steps are recorded with (the demo's programs stand in for them).
const IMAGES: &[(&str, &str)] = &[
    (
        "qc",
        "quay.io/biocontainers/fastp@sha256:5a8f2b7b0a86b7bbb8f1f1e3c1f5fcb9c2d0d4a1b3e8f7a6c5d4e3f2a1b0c9d8",
    ),
    (
        "index",
        "quay.io/biocontainers/bwa@sha256:3f1ad5bbec2a2c1b7e0e7d2a9c4b6f8e1d3c5b7a9e2f4d6c8b0a1e3f5d7c9b2a",
    ),
    (
        "align",
        "quay.io/biocontainers/bwa@sha256:3f1ad5bbec2a2c1b7e0e7d2a9c4b6f8e1d3c5b7a9e2f4d6c8b0a1e3f5d7c9b2a",
    ),
    (
        "sort",
        "quay.io/biocontainers/samtools@sha256:9c2e4a6b8d0f1e3c5a7b9d2f4e6a8c0b1d3f5e7a9c2b4d6f8e0a1c3e5b7d9f2a",
    ),
    (
        "call",
        "quay.io/biocontainers/bcftools@sha256:7e9c1a3b5d7f9e2c4a6b8d0f2e4c6a8b1d3f5e7c9a2b4d6f8e1c3a5b7d9f0e2c",
    ),
    (
        "merge",
        "quay.io/biocontainers/bcftools@sha256:7e9c1a3b5d7f9e2c4a6b8d0f2e4c6a8b1d3f5e7c9a2b4d6f8e1c3a5b7d9f0e2c",
    ),
];

fn image(step: &str) -> &'static str {
    IMAGES
        .iter()
        .find(|(s, _)| *s == step)
        .map(|(_, i)| *i)
        .unwrap_or("")
}

/// A deterministic generator, so the demo's files are the same every time.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let dir = match self.dir {
            Some(d) => d,
            None => std::env::temp_dir().join(format!("prov-demo-{}", std::process::id())),
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        // The demo writes reference.fa, cohort.vcf and others: never over
        // someone's files of those names.
        let mine = dir.join(DEMO_MARK);
        let mut entries =
            std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))?;
        if !mine.exists() && entries.next().is_some() {
            bail!(
                "{} is not empty and no earlier demo wrote it; the demo would replace files there (give an empty or new --dir)",
                dir.display()
            );
        }
        std::fs::write(&mine, "written by prov demo; its files may be replaced\n")
            .with_context(|| format!("write {}", mine.display()))?;
        // A file store by its absolute path (the steps run elsewhere); a
        // PostgreSQL URL as it is, shown without its password.
        let location = ctx.store_location();
        let store: PathBuf = if location.contains("://") {
            PathBuf::from(location)
        } else {
            std::path::absolute(location)?
        };
        let shown = provenance_store::redact(&store.to_string_lossy());
        let exe = std::env::current_exe().context("find the prov executable")?;
        println!("prov demo: a germline pipeline in {}", dir.display());
        println!("store: {shown}\n");
        write_inputs(&dir)?;

        // The whole pipeline is one parent run; its steps attach themselves
        // through PROV_PARENT_RUN, as they would under Nextflow or Snakemake.
        let status = Command::new(&exe)
            .arg("--store")
            .arg(&store)
            .args([
                "run",
                "--job",
                "germline-demo",
                "--namespace",
                "demo",
                "--param",
                "samples=2",
                "--",
            ])
            .arg(&exe)
            .args(["demo-tool", "pipeline"])
            .arg(&dir)
            .arg(&store)
            .status()
            .context("run the demo pipeline")?;
        if !status.success() {
            bail!("the demo pipeline failed ({status})");
        }

        let vcf = dir.join("cohort.vcf");
        let show = |title: &str, args: &[&str]| -> anyhow::Result<()> {
            println!("\n$ prov {}\n# {title}", args.join(" "));
            Command::new(&exe)
                .arg("--store")
                .arg(&store)
                .args(args)
                .status()?;
            Ok(())
        };
        let vcf_s = vcf.display().to_string();
        show(
            "where the cohort VCF came from, exactly",
            &["lineage", &vcf_s],
        )?;
        show(
            "every run that used the aligner image, and what derives from them",
            &["audit", "container", image("align")],
        )?;
        let bam = dir.join("S1.sorted.sam").display().to_string();
        show(
            "are the delivered files still the recorded bytes?",
            &["verify", &vcf_s, &bam],
        )?;
        show("is the trail intact?", &["verify", "--chain"])?;

        // Pasted into a shell as they are: words quoted where needed.
        let store_s = super::shell_word(&shown);
        let vcf_s = super::shell_word(&vcf_s);
        let dir_s = super::shell_word(&dir.display().to_string());
        println!("\nNext, try:");
        println!(
            "  prov --store {store_s} lineage --downstream {dir_s}/S1_R1.fastq   # everything made from sample S1"
        );
        println!(
            "  prov --store {store_s} audit derived {dir_s}/S1_R1.fastq          # consent withdrawn: what to erase"
        );
        println!("  prov --store {store_s} lineage --format json {vcf_s}");
        println!("  prov --store {store_s} lineage --format mermaid {vcf_s}");
        println!("  prov --store {store_s} audit runs --status COMPLETE");
        Ok(ExitCode::SUCCESS)
    }
}

/// The reference with its planted SNPs applied for `sample`.
fn reference(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read_to_string(dir.join("reference.fa"))?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('>'))
        .flat_map(|l| l.bytes())
        .collect())
}

fn write_inputs(dir: &Path) -> anyhow::Result<()> {
    let mut rng = Rng(0x5eed_1234_5678_9abc);
    let genome: Vec<u8> = (0..REFERENCE_LEN)
        .map(|_| b"ACGT"[(rng.next() % 4) as usize])
        .collect();
    let mut fasta = String::from(">chrDemo synthetic reference\n");
    for line in genome.chunks(60) {
        fasta.push_str(std::str::from_utf8(line)?);
        fasta.push('\n');
    }
    std::fs::write(dir.join("reference.fa"), fasta)?;
    for sample in ["S1", "S2"] {
        let mut haplotype = genome.clone();
        for (pos, alt, carriers) in SNPS {
            if carriers.contains(&sample) {
                haplotype[*pos] = *alt;
            }
        }
        let (mut r1, mut r2) = (String::new(), String::new());
        // About 30x coverage of 2 x 100 bp pairs.
        for i in 0..(REFERENCE_LEN * 30 / (2 * READ_LEN)) {
            let start = (rng.next() as usize) % (REFERENCE_LEN - 400);
            let mate = start + 200 + (rng.next() as usize % 100);
            let a = &haplotype[start..start + READ_LEN];
            let b = reverse_complement(&haplotype[mate..mate + READ_LEN]);
            let quality = "I".repeat(READ_LEN);
            writeln!(
                r1,
                "@{sample}.{i}/1\n{}\n+\n{quality}",
                std::str::from_utf8(a)?
            )?;
            writeln!(
                r2,
                "@{sample}.{i}/2\n{}\n+\n{quality}",
                std::str::from_utf8(&b)?
            )?;
        }
        std::fs::write(dir.join(format!("{sample}_R1.fastq")), r1)?;
        std::fs::write(dir.join(format!("{sample}_R2.fastq")), r2)?;
    }
    Ok(())
}

fn reverse_complement(seq: &[u8]) -> Vec<u8> {
    seq.iter()
        .rev()
        .map(|b| match b {
            b'A' => b'T',
            b'C' => b'G',
            b'G' => b'C',
            _ => b'A',
        })
        .collect()
}

impl ToolArgs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let a = &self.args;
        let need = |n: usize| -> anyhow::Result<()> {
            if a.len() < n {
                bail!("demo-tool {} needs {n} arguments", self.tool);
            }
            Ok(())
        };
        match self.tool.as_str() {
            "pipeline" => {
                need(2)?;
                pipeline(Path::new(&a[0]), Path::new(&a[1]))
            }
            "qc" => {
                need(3)?;
                let mut report = BTreeMap::new();
                for (k, f) in [("R1", &a[0]), ("R2", &a[1])] {
                    let text = std::fs::read_to_string(f)?;
                    let reads = text.lines().count() / 4;
                    report.insert(k, reads);
                }
                std::fs::write(&a[2], serde_json::to_string_pretty(&report)?)?;
                Ok(ExitCode::SUCCESS)
            }
            "index" => {
                need(2)?;
                let genome = reference(Path::new(&a[0]).parent().unwrap_or(Path::new(".")))?;
                let out = Path::new(&a[1]);
                std::fs::create_dir_all(out)?;
                let mut kmers = String::new();
                for pos in (0..genome.len() - K).step_by(1) {
                    writeln!(
                        kmers,
                        "{}\t{pos}",
                        std::str::from_utf8(&genome[pos..pos + K])?
                    )?;
                }
                std::fs::write(out.join("kmers.tsv"), kmers)?;
                std::fs::write(
                    out.join("meta.json"),
                    format!("{{\"k\": {K}, \"length\": {}}}\n", genome.len()),
                )?;
                Ok(ExitCode::SUCCESS)
            }
            "align" => {
                need(4)?;
                align(Path::new(&a[0]), &a[1], &a[2], &a[3])
            }
            "sort" => {
                need(2)?;
                let text = std::fs::read_to_string(&a[0])?;
                let mut lines: Vec<(usize, &str)> = text
                    .lines()
                    .filter_map(|l| Some((l.split('\t').nth(3)?.parse().ok()?, l)))
                    .collect();
                lines.sort_by_key(|(pos, _)| *pos);
                let sorted: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
                std::fs::write(&a[1], sorted)?;
                Ok(ExitCode::SUCCESS)
            }
            "call" => {
                need(3)?;
                call(&a[0], &a[1], &a[2])
            }
            "merge" => {
                need(3)?;
                let mut records: BTreeMap<usize, Vec<String>> = BTreeMap::new();
                for f in &a[..a.len() - 1] {
                    let text = std::fs::read_to_string(f)?;
                    let sample = Path::new(f)
                        .file_stem()
                        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
                    for l in text.lines().filter(|l| !l.starts_with('#')) {
                        let pos: usize = l
                            .split('\t')
                            .nth(1)
                            .and_then(|p| p.parse().ok())
                            .unwrap_or(0);
                        records
                            .entry(pos)
                            .or_default()
                            .push(format!("{l}\tsample={sample}"));
                    }
                }
                let mut out = String::from(
                    "##fileformat=VCFv4.2\n##source=prov-demo-merge\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n",
                );
                for lines in records.values() {
                    for l in lines {
                        out.push_str(l);
                        out.push('\n');
                    }
                }
                std::fs::write(&a[a.len() - 1], out)?;
                Ok(ExitCode::SUCCESS)
            }
            other => bail!("no demo tool {other:?}"),
        }
    }
}

/// Maps each read pair to the reference by exact k-mer seeds.
fn align(index: &Path, r1: &str, r2: &str, out: &str) -> anyhow::Result<ExitCode> {
    let mut seeds: HashMap<String, usize> = HashMap::new();
    for line in std::fs::read_to_string(index.join("kmers.tsv"))?.lines() {
        if let Some((kmer, pos)) = line.split_once('\t') {
            seeds.entry(kmer.to_owned()).or_insert(pos.parse()?);
        }
    }
    let mut sam = String::new();
    for (file, reverse) in [(r1, false), (r2, true)] {
        let text = std::fs::read_to_string(file)?;
        let lines: Vec<&str> = text.lines().collect();
        for rec in lines.chunks(4) {
            let [name, seq, _, _] = rec else { continue };
            let seq = if reverse {
                String::from_utf8(reverse_complement(seq.as_bytes()))?
            } else {
                seq.to_string()
            };
            // Seeds at both ends, so a SNP in one does not lose the read.
            let hit = [0, seq.len() - K].iter().find_map(|&offset| {
                seeds
                    .get(&seq[offset..offset + K])
                    .map(|p| p.saturating_sub(offset))
            });
            if let Some(pos) = hit {
                writeln!(
                    sam,
                    "{}\t0\tchrDemo\t{}\t60\t{}M\t*\t0\t0\t{seq}\t*",
                    name.trim_start_matches('@'),
                    pos + 1,
                    seq.len()
                )?;
            }
        }
    }
    std::fs::write(out, sam)?;
    Ok(ExitCode::SUCCESS)
}

/// Calls SNPs from the pileup: a base seen in at least 80% of at least 8 reads.
fn call(reference_fa: &str, sorted: &str, out: &str) -> anyhow::Result<ExitCode> {
    let genome = reference(Path::new(reference_fa).parent().unwrap_or(Path::new(".")))?;
    let mut counts: HashMap<usize, [u32; 4]> = HashMap::new();
    for line in std::fs::read_to_string(sorted)?.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let (Some(pos), Some(seq)) = (
            fields.get(3).and_then(|p| p.parse::<usize>().ok()),
            fields.get(9),
        ) else {
            continue;
        };
        for (i, b) in seq.bytes().enumerate() {
            let at = pos - 1 + i;
            if at < genome.len() && b != genome[at] {
                let slot = match b {
                    b'A' => 0,
                    b'C' => 1,
                    b'G' => 2,
                    _ => 3,
                };
                counts.entry(at).or_insert([0; 4])[slot] += 1;
            }
        }
    }
    let mut depth: HashMap<usize, u32> = HashMap::new();
    for line in std::fs::read_to_string(sorted)?.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        if let (Some(pos), Some(seq)) = (
            fields.get(3).and_then(|p| p.parse::<usize>().ok()),
            fields.get(9),
        ) {
            for i in 0..seq.len() {
                *depth.entry(pos - 1 + i).or_default() += 1;
            }
        }
    }
    let mut vcf = String::from(
        "##fileformat=VCFv4.2\n##source=prov-demo-call\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n",
    );
    let mut calls: Vec<(usize, u8, u32, u32)> = counts
        .iter()
        .filter_map(|(&at, c)| {
            let (slot, n) = c.iter().enumerate().max_by_key(|(_, n)| **n)?;
            let d = *depth.get(&at)?;
            (*n >= 8 && *n * 5 >= d * 4).then_some((at, b"ACGT"[slot], *n, d))
        })
        .collect();
    calls.sort();
    for (at, alt, n, d) in calls {
        writeln!(
            vcf,
            "chrDemo\t{}\t.\t{}\t{}\t60\tPASS\tDP={d};AD={n}",
            at + 1,
            genome[at] as char,
            alt as char
        )?;
    }
    std::fs::write(out, vcf)?;
    Ok(ExitCode::SUCCESS)
}

/// The pipeline itself: every step through `prov run`.
fn pipeline(dir: &Path, store: &Path) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe()?;
    let p = |name: &str| dir.join(name).display().to_string();
    let step = |job: &str,
                tool: &str,
                params: &[&str],
                inputs: &[String],
                outputs: &[String],
                args: &[String]|
     -> anyhow::Result<()> {
        let mut cmd = Command::new(&exe);
        cmd.arg("--store").arg(store).args([
            "run",
            "--namespace",
            "demo",
            "--job",
            job,
            "--runtime",
            "none",
        ]);
        cmd.args(["--container", image(tool)]);
        for param in params {
            cmd.args(["--param", param]);
        }
        for i in inputs {
            cmd.args(["--input", i]);
        }
        for o in outputs {
            cmd.args(["--output", o]);
        }
        cmd.arg("--").arg(&exe).args(["demo-tool", tool]).args(args);
        let status = cmd.status()?;
        if !status.success() {
            bail!("step {job} failed ({status})");
        }
        println!("  recorded {job}");
        Ok(())
    };
    step(
        "index",
        "index",
        &["k=20"],
        &[p("reference.fa")],
        &[p("reference.idx")],
        &[p("reference.fa"), p("reference.idx")],
    )?;
    for s in ["S1", "S2"] {
        let (r1, r2) = (p(&format!("{s}_R1.fastq")), p(&format!("{s}_R2.fastq")));
        step(
            &format!("qc_{s}"),
            "qc",
            &["min_quality=20"],
            &[r1.clone(), r2.clone()],
            &[p(&format!("{s}.qc.json"))],
            &[r1.clone(), r2.clone(), p(&format!("{s}.qc.json"))],
        )?;
        let sam = p(&format!("{s}.sam"));
        step(
            &format!("align_{s}"),
            "align",
            &[
                "seed_length=20",
                &format!("read_group=@RG\\tID:{s}\\tSM:{s}"),
            ],
            &[
                p("reference.fa"),
                p("reference.idx"),
                r1.clone(),
                r2.clone(),
            ],
            std::slice::from_ref(&sam),
            &[p("reference.idx"), r1, r2, sam.clone()],
        )?;
        let sorted = p(&format!("{s}.sorted.sam"));
        step(
            &format!("sort_{s}"),
            "sort",
            &["order=coordinate"],
            std::slice::from_ref(&sam),
            std::slice::from_ref(&sorted),
            &[sam.clone(), sorted.clone()],
        )?;
        let vcf = p(&format!("{s}.vcf"));
        step(
            &format!("call_{s}"),
            "call",
            &["min_depth=8", "min_fraction=0.8"],
            &[p("reference.fa"), sorted.clone()],
            std::slice::from_ref(&vcf),
            &[p("reference.fa"), sorted.clone(), vcf.clone()],
        )?;
    }
    step(
        "merge",
        "merge",
        &["samples=S1,S2"],
        &[p("S1.vcf"), p("S2.vcf")],
        &[p("cohort.vcf")],
        &[p("S1.vcf"), p("S2.vcf"), p("cohort.vcf")],
    )?;
    Ok(ExitCode::SUCCESS)
}
