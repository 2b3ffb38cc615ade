//! Store benchmark: ingest rate beside a bare INSERT of the same bytes,
//! lineage latency on a synthetic genomics project at two sizes, and bytes
//! stored per event against the raw NDJSON; on a SQLite file, and also on
//! PostgreSQL when `PROV_BENCH_POSTGRES_URL` is set (each store in a schema of
//! its own, dropped afterwards), at the same sizes, ending with PostgreSQL's
//! numbers against SQLite's.
//!
//! Run with `cargo bench -p provenance-store --bench store` (several minutes;
//! about 4 GB of disk in $TMPDIR). `PROV_BENCH_SAMPLES` changes the large
//! project's size (default 100,000 samples x 4 steps, about 800,000 events).
//! Targets from the issue: >= 50,000 events/s batched into a file store; the
//! upstream lineage of a final VCF at depth 20 in p50 <= 10 ms in-process, and
//! at most 2x its latency on a 1,000-sample store. `PROV_BENCH_KEEP=1` keeps
//! the PostgreSQL schemas for a look afterwards.
//!
//! The ingest rate is the median of `PROV_BENCH_ROUNDS` (5) alternating
//! rounds of ours and the bare INSERT, each into a new store, of
//! `PROV_BENCH_INGEST_SAMPLES` (5,000) samples x 4 steps x 2 events; then, on
//! SQLite, the same into a store in use (one store kept open, after a round
//! of warm-up, new samples each round).
//! `PROV_BENCH_ONLY=ingest` stops after that; `PROV_BENCH_MEMORY=1` ingests
//! into memory instead (what the CPU alone allows); `PROV_BENCH_DUMP=FILE`
//! writes the events as NDJSON and exits (to profile `prov ingest FILE`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use provenance_core::facets::*;
use provenance_core::{Event, EventType, InputDataset, Job, OutputDataset, Run, RunEvent, RunId};
use provenance_store::{Direction, LineageQuery, Store, Target};
use rusqlite::{Connection, params};

const BATCH: usize = 1000;

/// Where the stores of one run live.
enum Backend {
    Sqlite(PathBuf),
    /// The server's URL and the schemas made so far.
    Postgres(String, std::cell::RefCell<Vec<String>>),
}

/// What one backend measured.
struct Numbers {
    ingest: f64,
    small_p50: Duration,
    large_p50: Duration,
}

fn main() {
    let dir = std::env::temp_dir().join(format!("prov-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = Backend::Sqlite(dir.clone());
    let postgres = std::env::var("PROV_BENCH_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .map(|url| Backend::Postgres(url, Default::default()));
    // The schemas list is only read again after the run, to drop them.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lite = run(&sqlite);
        if let Some(pg) = &postgres {
            let numbers = run(pg);
            println!("\n## PostgreSQL against SQLite (same sizes, same process)");
            println!(
                "ingest:            {:>9.0} vs {:>9.0} events/s   ratio pg/sqlite {:.2}",
                numbers.ingest,
                lite.ingest,
                numbers.ingest / lite.ingest
            );
            println!(
                "lineage p50 small: {:>9.3} vs {:>9.3} ms         ratio pg/sqlite {:.2}",
                millis(numbers.small_p50),
                millis(lite.small_p50),
                secs(numbers.small_p50) / secs(lite.small_p50)
            );
            println!(
                "lineage p50 large: {:>9.3} vs {:>9.3} ms         ratio pg/sqlite {:.2}",
                millis(numbers.large_p50),
                millis(lite.large_p50),
                secs(numbers.large_p50) / secs(lite.large_p50)
            );
        }
    }));
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(pg) = &postgres {
        pg.cleanup();
    }
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "SQLite file",
            Backend::Postgres(..) => "PostgreSQL",
        }
    }

    /// The location of a new store called `name`.
    fn location(&self, name: &str) -> String {
        match self {
            Backend::Sqlite(dir) => dir.join(format!("{name}.db")).display().to_string(),
            Backend::Postgres(url, schemas) => {
                let schema = format!("prov_bench_{}_{name}", std::process::id());
                pg_client(url)
                    .batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .unwrap();
                schemas.borrow_mut().push(schema.clone());
                with_schema(url, &schema)
            }
        }
    }

    fn cleanup(&self) {
        if let Backend::Postgres(url, schemas) = self
            && std::env::var_os("PROV_BENCH_KEEP").is_some()
        {
            println!("kept the schemas {:?} (PROV_BENCH_KEEP)", schemas.borrow());
            let _ = url;
        } else if let Backend::Postgres(url, schemas) = self
            && let Ok(mut c) = postgres::Client::connect(url, postgres::NoTls)
        {
            for schema in schemas.borrow().iter() {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }

    /// The floor: the same bytes INSERTed into one table, in the same batches,
    /// one statement per event (as the store does).
    fn bare_insert_rate(&self, events: &[Vec<u8>], round: usize) -> f64 {
        match self {
            Backend::Sqlite(dir) => bare_sqlite_rate(dir, events, round),
            Backend::Postgres(..) => {
                let location = self.location(&format!("bare{round}"));
                let mut c = pg_client(&location);
                c.batch_execute(
                    "CREATE TABLE bare (seq BIGSERIAL PRIMARY KEY, raw BYTEA NOT NULL)",
                )
                .unwrap();
                let stmt = c.prepare("INSERT INTO bare (raw) VALUES ($1)").unwrap();
                let start = Instant::now();
                for batch in events.chunks(BATCH) {
                    let mut tx = c.transaction().unwrap();
                    for raw in batch {
                        tx.execute(&stmt, &[raw]).unwrap();
                    }
                    tx.commit().unwrap();
                }
                events.len() as f64 / start.elapsed().as_secs_f64()
            }
        }
    }

    /// Removes a SQLite store no longer needed (PostgreSQL's schemas go at
    /// the end).
    fn discard(&self, location: &str) {
        if let Backend::Sqlite(_) = self {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{location}{suffix}"));
            }
        }
    }

    /// Bytes the store takes.
    fn size(&self, location: &str) -> u64 {
        match self {
            Backend::Sqlite(_) => ["", "-wal"]
                .iter()
                .filter_map(|s| std::fs::metadata(format!("{location}{s}")).ok())
                .map(|m| m.len())
                .sum(),
            Backend::Postgres(..) => {
                let size: i64 = pg_client(location)
                    .query_one(
                        "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint
                         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = current_schema() AND c.relkind = 'r'",
                        &[],
                    )
                    .unwrap()
                    .get(0);
                size as u64
            }
        }
    }
}

fn with_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-csearch_path%3D{schema}")
}

fn pg_client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

fn run(backend: &Backend) -> Numbers {
    let large: usize = std::env::var("PROV_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let name = backend.name();

    println!("# {name}\n");
    // Enough events that what a new store does once (a dictionary trained on
    // its first events, the first pages of every table) is a small part.
    let ingest_samples: usize = std::env::var("PROV_BENCH_INGEST_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    println!(
        "## ingest: {ingest_samples} samples x 4 steps, batches of {BATCH}, into a new {name} store"
    );
    let ingest_events = project(ingest_samples);
    if let Ok(dump) = std::env::var("PROV_BENCH_DUMP") {
        // The same events as NDJSON, for `prov ingest` under a profiler.
        let mut text = Vec::new();
        for e in &ingest_events {
            text.extend_from_slice(e);
            text.push(b'\n');
        }
        std::fs::write(&dump, text).unwrap();
        println!("wrote {} events to {dump}", ingest_events.len());
        std::process::exit(0);
    }
    let bytes: usize = ingest_events.iter().map(Vec::len).sum();
    println!(
        "{} events, {:.0} bytes each on average",
        ingest_events.len(),
        bytes as f64 / ingest_events.len() as f64
    );
    // Alternating rounds into fresh stores; the medians, and the median of
    // the rounds' ratios (each round's two runs saw the same machine).
    let rounds: usize = std::env::var("PROV_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    // Three ways each round: `ingest_batch` once per batch (as a client
    // sending batches does), `ingest_batches` over all of them (a bulk load,
    // `prov ingest`: parsing goes on while each batch commits), and the bare
    // INSERT of the same bytes in the same batches.
    let (mut ours, mut bulk, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ratios, mut bulk_ratios) = (Vec::new(), Vec::new());
    // CPU time of this process (every thread) per event, bulk and bare: what
    // the work costs, which a busy shared machine blurs less than the rate.
    let (mut bulk_cpu, mut bare_cpu) = (Vec::new(), Vec::new());
    let per_event = |seconds: f64| seconds * 1e6 / ingest_events.len() as f64;
    for round in 0..rounds.max(1) {
        let location = backend.location(&format!("small{round}"));
        let o = ingest_rate(&location, &ingest_events);
        backend.discard(&location);
        let location = backend.location(&format!("bulk{round}"));
        let (k, k_cpu) = with_cpu(|| bulk_rate(&location, &ingest_events));
        backend.discard(&location);
        let (b, b_cpu) = with_cpu(|| backend.bare_insert_rate(&ingest_events, round));
        let cpu = match (k_cpu, b_cpu, backend) {
            // PostgreSQL's work is in its server, not in this process.
            (Some(k_cpu), Some(b_cpu), Backend::Sqlite(_)) => {
                bulk_cpu.push(per_event(k_cpu));
                bare_cpu.push(per_event(b_cpu));
                format!(
                    "  CPU us/event: bulk {:.1} bare {:.1}",
                    per_event(k_cpu),
                    per_event(b_cpu)
                )
            }
            _ => String::new(),
        };
        println!(
            "  round {}: prov {o:>7.0}  bulk {k:>7.0}  bare {b:>7.0}  ratios {:.2} {:.2}{cpu}",
            round + 1,
            o / b,
            k / b
        );
        ours.push(o);
        bulk.push(k);
        bare.push(b);
        ratios.push(o / b);
        bulk_ratios.push(k / b);
    }
    let ours = median(&mut ours);
    let bare = median(&mut bare);
    println!(
        "prov store ingest:   {:>9.0} events/s   (median of {rounds}; one ingest_batch call per batch; target >= 50,000 on SQLite)",
        ours
    );
    println!(
        "prov bulk ingest:    {:>9.0} events/s   (median; ingest_batches, as prov ingest: same transactions; target >= 50,000 on SQLite)",
        median(&mut bulk)
    );
    println!("bare {name} INSERT:  {:>9.0} events/s", bare);
    println!(
        "ratio prov/bare:     {:>9.2}   (bulk {:.2}; medians of the rounds' ratios)",
        median(&mut ratios),
        median(&mut bulk_ratios)
    );
    if !bulk_cpu.is_empty() {
        println!(
            "CPU per event:       bulk {:.1} us, bare {:.1} us   (this process, all threads; medians)",
            median(&mut bulk_cpu),
            median(&mut bare_cpu)
        );
    }
    if let Backend::Sqlite(dir) = backend {
        println!(
            "\n## ingest: the same, into a store in use ({} events a round, after a warm-up round)",
            ingest_events.len()
        );
        drop(ingest_events);
        let (o, b, r) = in_use_rates(dir, ingest_samples, rounds.max(1));
        println!(
            "prov store ingest (in use): {o:>9.0} events/s   (median of {rounds}; target >= 50,000)"
        );
        println!("bare SQLite INSERT (in use): {b:>9.0} events/s");
        println!("ratio prov/bare (in use):   {r:>9.2}   (median of the rounds' ratios)");
    } else {
        drop(ingest_events);
    }
    if std::env::var("PROV_BENCH_ONLY").as_deref() == Ok("ingest") {
        return Numbers {
            ingest: ours,
            small_p50: Duration::ZERO,
            large_p50: Duration::ZERO,
        };
    }

    println!("\n## lineage of a final VCF, upstream, depth 20");
    let small_events = project(1000);
    let small_store = backend.location("small");
    ingest_rate(&small_store, &small_events);
    let small_p50 = lineage_p50(&small_store, 1000);
    println!(
        "1,000 samples ({} events):  p50 {:.3} ms",
        small_events.len(),
        millis(small_p50)
    );
    drop(small_events);

    let large_store = backend.location("large");
    let started = Instant::now();
    let mut large_bytes = 0usize;
    let mut large_events = 0usize;
    {
        let store = Store::open(&large_store).unwrap();
        // Generated and ingested a slice at a time, so memory stays small.
        for chunk in (0..large).step_by(1000) {
            let events = project_range(chunk, (chunk + 1000).min(large));
            large_bytes += events.iter().map(Vec::len).sum::<usize>();
            large_events += events.len();
            for batch in events.chunks(BATCH) {
                let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                store.ingest_batch(&refs).unwrap();
            }
        }
    }
    let took = started.elapsed();
    println!(
        "built {large} samples ({large_events} events) in {:.1} s ({:.0} events/s including generation)",
        took.as_secs_f64(),
        large_events as f64 / took.as_secs_f64()
    );
    let large_p50 = lineage_p50(&large_store, large);
    println!(
        "{large} samples:  p50 {:.3} ms   (target <= 10 ms)",
        millis(large_p50)
    );
    println!(
        "large/small:      {:.2}x   (target <= 2x)",
        secs(large_p50) / secs(small_p50)
    );

    println!("\n## size");
    let size = backend.size(&large_store);
    println!(
        "store {:.1} MiB for {} events: {:.0} bytes/event; raw NDJSON {:.0} bytes/event; ratio {:.2}\n",
        size as f64 / (1 << 20) as f64,
        large_events,
        size as f64 / large_events as f64,
        (large_bytes + large_events) as f64 / large_events as f64,
        size as f64 / (large_bytes + large_events) as f64
    );
    Numbers {
        ingest: ours,
        small_p50,
        large_p50,
    }
}

/// What `f` returns, and the CPU seconds this process (all its threads)
/// used meanwhile; `None` where /proc cannot tell.
fn with_cpu<T>(f: impl FnOnce() -> T) -> (T, Option<f64>) {
    let before = cpu_seconds();
    let value = f();
    let used = cpu_seconds()
        .zip(before)
        .map(|(after, before)| after - before);
    (value, used)
}

/// User plus system CPU seconds of this process, from /proc/self/stat
/// (Linux; its clock ticks are 1/100 s).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name in parentheses: the state (field 3), ..., utime
    // (field 14) and stime (field 15).
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3)?.parse::<f64>().ok();
    Some((ticks(14)? + ticks(15)?) / 100.0)
}

fn ingest_rate(location: &str, events: &[Vec<u8>]) -> f64 {
    let location = if std::env::var_os("PROV_BENCH_MEMORY").is_some() {
        ":memory:"
    } else {
        location
    };
    let store = Store::open(location).unwrap();
    let start = Instant::now();
    for batch in events.chunks(BATCH) {
        let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        store.ingest_batch(&refs).unwrap();
    }
    events.len() as f64 / start.elapsed().as_secs_f64()
}

/// `Store::ingest_batches` over all the events, in transactions of [`BATCH`].
fn bulk_rate(location: &str, events: &[Vec<u8>]) -> f64 {
    let store = Store::open(location).unwrap();
    let refs: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
    let start = Instant::now();
    for result in store.ingest_batches(&refs, BATCH) {
        result.unwrap();
    }
    events.len() as f64 / start.elapsed().as_secs_f64()
}

/// The same bytes INSERTed into one SQLite table, same batches, same pragmas.
fn bare_sqlite_rate(dir: &Path, events: &[Vec<u8>], round: usize) -> f64 {
    let path = dir.join(format!("bare{round}.db"));
    let mut conn = bare_sqlite(&path);
    let rate = bare_sqlite_insert(&mut conn, events);
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    rate
}

/// The bare peer's database: one table of raw events, our journal pragmas.
fn bare_sqlite(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch("CREATE TABLE event (seq INTEGER PRIMARY KEY, raw BLOB NOT NULL)")
        .unwrap();
    conn
}

/// INSERTs the events in transactions of [`BATCH`]; events per second.
fn bare_sqlite_insert(conn: &mut Connection, events: &[Vec<u8>]) -> f64 {
    let start = Instant::now();
    for batch in events.chunks(BATCH) {
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached("INSERT INTO event (raw) VALUES (?1)")
                .unwrap();
            for raw in batch {
                stmt.execute(params![raw]).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    events.len() as f64 / start.elapsed().as_secs_f64()
}

/// Ingest into a store in use, as `prov serve`'s is: one store and one bare
/// table, each kept open across the rounds and first given a round of their
/// own (so that its write-ahead log, page cache and dictionary exist, as in
/// a store that has been running), then new samples each round. Returns the
/// medians of ours, the bare INSERT's, and of the rounds' ratios.
fn in_use_rates(dir: &Path, samples: usize, rounds: usize) -> (f64, f64, f64) {
    let path = dir.join("in-use.db");
    let store = Store::open(&path.display().to_string()).unwrap();
    let bare_path = dir.join("in-use-bare.db");
    let mut bare = bare_sqlite(&bare_path);
    let (mut ours, mut peer, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..=rounds {
        let events = project_range(round * samples, (round + 1) * samples);
        let start = Instant::now();
        for batch in events.chunks(BATCH) {
            let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            store.ingest_batch(&refs).unwrap();
        }
        let o = events.len() as f64 / start.elapsed().as_secs_f64();
        let b = bare_sqlite_insert(&mut bare, &events);
        if round == 0 {
            println!("  warm-up: prov {o:>7.0}  bare {b:>7.0}");
            continue;
        }
        println!(
            "  round {round}: prov {o:>7.0}  bare {b:>7.0}  ratio {:.2}",
            o / b
        );
        ours.push(o);
        peer.push(b);
        ratios.push(o / b);
    }
    drop(store);
    drop(bare);
    for p in [&path, &bare_path] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
        }
    }
    (median(&mut ours), median(&mut peer), median(&mut ratios))
}

fn lineage_p50(location: &str, samples: usize) -> Duration {
    let store = Store::open(location).unwrap();
    let mut times = Vec::new();
    for k in 0..101 {
        let s = (k * 7919) % samples;
        let query = LineageQuery {
            target: Target::Dataset {
                namespace: "file".into(),
                name: format!("/results/S{s}/S{s}.vcf.gz"),
            },
            direction: Direction::Upstream,
            depth: 20,
            as_of: None,
        };
        let start = Instant::now();
        let graph = store.lineage(&query).unwrap();
        times.push(start.elapsed());
        // 9 versions (2 FASTQ, 2 trimmed, reference, index, BAM, dedup BAM, VCF) and 4 runs
        assert_eq!(graph.graph.len(), 13, "{:?}", graph.ids());
    }
    times.sort();
    times[times.len() / 2]
}

fn project(samples: usize) -> Vec<Vec<u8>> {
    project_range(0, samples)
}

fn sha(label: &str) -> String {
    provenance_core::canonical::canonical_sha256(&serde_json::json!(label)).unwrap()
}

fn dataset_facets(path: &str, size: u64) -> ProvChecksumDatasetFacet {
    ProvChecksumDatasetFacet::file(size, sha(path)).with_checksum(MD5, &sha(path)[..32])
}

fn input(path: &str, size: u64) -> InputDataset {
    let c = dataset_facets(path, size);
    let mut d = InputDataset::new("file", path);
    d.facets.set(&c.version_facet().unwrap());
    d.facets.set(&c);
    d
}

fn output(path: &str, size: u64) -> OutputDataset {
    let c = dataset_facets(path, size);
    let mut d = OutputDataset::new("file", path);
    d.facets.set(&c.version_facet().unwrap());
    d.facets.set(&c);
    d
}

/// The events of samples `from..to`: fastp -> bwa mem -> markdup -> call, with
/// the reference genome and its index shared by every sample.
fn project_range(from: usize, to: usize) -> Vec<Vec<u8>> {
    let pipeline = RunId::from_uuid(uuid_of(0, 0));
    let reference = "/ref/GRCh38.fa";
    let index = "/ref/GRCh38.fa.bwt";
    let mut out = Vec::new();
    for s in from..to {
        let dir = format!("/results/S{s}");
        let steps: [(&str, &str, Vec<InputDataset>, Vec<OutputDataset>); 4] = [
            (
                "fastp",
                "quay.io/biocontainers/fastp:0.23.4--h5f740d0_0",
                vec![
                    input(&format!("/data/S{s}_R1.fastq.gz"), 2 << 30),
                    input(&format!("/data/S{s}_R2.fastq.gz"), 2 << 30),
                ],
                vec![
                    output(&format!("{dir}/S{s}_R1.trim.fastq.gz"), 1 << 30),
                    output(&format!("{dir}/S{s}_R2.trim.fastq.gz"), 1 << 30),
                ],
            ),
            (
                "bwa_mem",
                "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8",
                vec![
                    input(&format!("{dir}/S{s}_R1.trim.fastq.gz"), 1 << 30),
                    input(&format!("{dir}/S{s}_R2.trim.fastq.gz"), 1 << 30),
                    input(reference, 3 << 30),
                    input(index, 5 << 30),
                ],
                vec![output(&format!("{dir}/S{s}.bam"), 3 << 30)],
            ),
            (
                "markdup",
                "quay.io/biocontainers/samtools:1.19--h50ea8bc_0",
                vec![input(&format!("{dir}/S{s}.bam"), 3 << 30)],
                vec![output(&format!("{dir}/S{s}.dedup.bam"), 3 << 30)],
            ),
            (
                "bcftools_call",
                "quay.io/biocontainers/bcftools:1.19--h8b25389_0",
                vec![
                    input(&format!("{dir}/S{s}.dedup.bam"), 3 << 30),
                    input(reference, 3 << 30),
                ],
                vec![output(&format!("{dir}/S{s}.vcf.gz"), 50 << 20)],
            ),
        ];
        for (k, (job, image, inputs, outputs)) in steps.into_iter().enumerate() {
            let id = RunId::from_uuid(uuid_of(s as u64 + 1, k as u64));
            let time =
                DateTime::<Utc>::from_timestamp(1_760_000_000 + (s * 4 + k) as i64, 0).unwrap();
            let mut run = Run::new(id);
            run.facets.set(
                &ParentRunFacet::new(pipeline, JobRef::new("genomics", "wgs"))
                    .with_root(pipeline, JobRef::new("genomics", "wgs")),
            );
            let params = ProvParametersRunFacet::new(
                serde_json::json!({"threads": 8, "sample": format!("S{s}"), "reference": "GRCh38"})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
            .unwrap();
            run.facets.set(&params.execution_parameters().unwrap());
            run.facets.set(&params);
            let container = ProvContainerRunFacet::new(image, ContainerRuntime::Docker)
                .unwrap()
                .with_digest(format!("sha256:{}", sha(image)), DigestSource::Registry);
            run.facets.set(&container);
            run.facets.set(&ProvFingerprintRunFacet {
                base: FacetBase::ours::<ProvFingerprintRunFacet>(),
                sha256: sha(&format!("{job}{s}")),
                scheme: FINGERPRINT_SCHEME.into(),
                extra: Default::default(),
            });
            run.facets.set(&ProvSoftwareRunFacet::new([(job, "1.0")]));
            let job = Job::new("genomics", job);
            let mut start = RunEvent::new(EventType::Start, run.clone(), job.clone());
            start.event_time = time.into();
            start.inputs = Some(inputs.clone());
            let mut done_run = run;
            done_run.facets.set(&ProvExecutionRunFacet {
                base: FacetBase::ours::<ProvExecutionRunFacet>(),
                argv: vec![job.name.clone(), "--threads".into(), "8".into()],
                working_directory: dir.clone(),
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
            let mut done = RunEvent::new(EventType::Complete, done_run, job);
            done.event_time = (time + chrono::Duration::seconds(60)).into();
            done.inputs = Some(inputs);
            done.outputs = Some(outputs);
            out.push(Event::Run(start).to_json().into_bytes());
            out.push(Event::Run(done).to_json().into_bytes());
        }
    }
    out
}

fn uuid_of(a: u64, b: u64) -> uuid::Uuid {
    let value = (0x0190_0000_0000_7000u128 << 64)
        | (0x8000_0000_0000_0000u128 + (u128::from(a) << 8) + u128::from(b));
    uuid::Uuid::from_u128(value)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
