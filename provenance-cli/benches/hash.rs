//! Hashing benchmark: `prov hash` against its peers, run in the same process
//! tree, alternating, reporting medians and ratios.
//!
//! Run with `cargo bench -p provenance-cli --bench hash` (about two minutes;
//! needs 4.1 GiB of free space in $TMPDIR and as much free memory for the page
//! cache). Peers: `openssl dgst -sha256`, `sha256sum`, `md5sum` (coreutils).
//! Targets from the issue:
//! - 2 GiB page-cached: `prov hash --rehash` <= 1.0x openssl;
//! - two 1 GiB files at once: >= 1.7x the throughput of one after the other;
//! - unchanged 2 GiB through the cache: <= 5 ms in-process, <= 50 ms per process;
//! - 1,000 unchanged small files: <= 0.3 s per process.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use provenance_core::hash::{HashOptions, Hasher, sha256_backend};
use provenance_store::SqliteHashCache;

const GIB: u64 = 1 << 30;
const ROUNDS: usize = 5;

fn main() {
    let dir = std::env::temp_dir().join(format!("prov-hash-bench-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("create the bench folder");
    let result = std::panic::catch_unwind(|| run(&dir));
    let _ = fs::remove_dir_all(&dir);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn run(dir: &Path) {
    let prov = env!("CARGO_BIN_EXE_prov");
    println!("sha-256 backend: {}", sha256_backend());
    println!(
        "cores: {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let big = dir.join("big.bin");
    let halves = [dir.join("half-a.bin"), dir.join("half-b.bin")];
    let small_dir = dir.join("small");
    write_random(&big, 2 * GIB, 1);
    for (i, h) in halves.iter().enumerate() {
        write_random(h, GIB, 2 + i as u64);
    }
    fs::create_dir_all(&small_dir).unwrap();
    let smalls: Vec<PathBuf> = (0..1000)
        .map(|i| {
            let p = small_dir.join(format!("s{i:04}.txt"));
            fs::write(&p, format!("small file {i}\n").repeat(200)).unwrap();
            p
        })
        .collect();
    for p in [&big, &halves[0], &halves[1]] {
        warm(p);
    }

    // 1. Buffer size: the in-process pipelined hash of the 2 GiB file.
    println!("\n## buffer size (in-process, 2 GiB, one file, median of {ROUNDS})");
    for size in [64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20] {
        let options = HashOptions {
            buffer_size: size,
            threads: 1,
            rehash: true,
            ..HashOptions::default()
        };
        let t = median(
            (0..ROUNDS)
                .map(|_| time(|| drop(Hasher::new(options.clone()).hash(&big).unwrap())))
                .collect(),
        );
        println!(
            "{:>6} KiB: {:>7.3} s  {:>6.2} GiB/s",
            size >> 10,
            secs(t),
            2.0 / secs(t)
        );
    }

    // 2. One 2 GiB file against the peers, alternating.
    println!("\n## 2 GiB in the page cache (wall time, median of {ROUNDS}, alternating)");
    let big_s = big.to_str().unwrap();
    let runs: Vec<(&str, Vec<&str>)> = vec![
        (
            "prov hash --rehash",
            vec![prov, "hash", "--rehash", "--no-cache", big_s],
        ),
        (
            "openssl dgst -sha256",
            vec!["openssl", "dgst", "-sha256", big_s],
        ),
        ("sha256sum", vec!["sha256sum", big_s]),
        (
            "prov hash --algo md5",
            vec![prov, "hash", "--algo", "md5", "--no-cache", big_s],
        ),
        ("md5sum", vec!["md5sum", big_s]),
        (
            "prov hash --algo sha256,md5",
            vec![prov, "hash", "--algo", "sha256,md5", "--no-cache", big_s],
        ),
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); runs.len()];
    for round in 0..ROUNDS {
        for k in 0..runs.len() {
            let i = (k + round) % runs.len();
            samples[i].push(time_command(&runs[i].1));
        }
    }
    let medians: Vec<Duration> = samples.into_iter().map(median).collect();
    for ((name, _), m) in runs.iter().zip(&medians) {
        println!(
            "{name:<30} {:>7.3} s  {:>6.2} GiB/s",
            secs(*m),
            2.0 / secs(*m)
        );
    }
    let ratio = |a: usize, b: usize| secs(medians[a]) / secs(medians[b]);
    println!(
        "prov/openssl (sha-256)        {:.3}x   (target <= 1.0)",
        ratio(0, 1)
    );
    println!("prov/sha256sum                {:.3}x", ratio(0, 2));
    println!("prov md5/md5sum               {:.3}x", ratio(3, 4));
    println!("prov sha256+md5/md5sum        {:.3}x", ratio(5, 4));

    // 3. Two 1 GiB files: one after the other, and at once.
    println!("\n## two 1 GiB files (in-process, median of {ROUNDS}, alternating)");
    let one_by_one = HashOptions {
        threads: 1,
        rehash: true,
        ..HashOptions::default()
    };
    let at_once = HashOptions {
        rehash: true,
        ..HashOptions::default()
    };
    let (mut seq, mut par) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        seq.push(time(|| {
            for h in &halves {
                Hasher::new(one_by_one.clone()).hash(h).unwrap();
            }
        }));
        par.push(time(|| {
            for r in Hasher::new(at_once.clone()).hash_all(&halves) {
                r.unwrap();
            }
        }));
    }
    let (seq, par) = (median(seq), median(par));
    println!(
        "one after the other: {:.3} s   at once: {:.3} s",
        secs(seq),
        secs(par)
    );
    println!(
        "throughput ratio     {:.3}x   (target >= 1.7)",
        secs(seq) / secs(par)
    );

    // 4. The cache. The files were written more than the racy window ago.
    println!("\n## unchanged files through the hash cache");
    let cache_path = dir.join("cache.sqlite");
    let cache = SqliteHashCache::open(&cache_path).unwrap();
    let hasher = Hasher::new(HashOptions::default()).with_cache(&cache);
    let first = hasher.hash(&big).unwrap();
    assert!(!first.cached, "the first hash reads the file");
    let in_process = median(
        (0..21)
            .map(|_| time(|| assert!(hasher.hash(&big).unwrap().cached)))
            .collect(),
    );
    println!(
        "2 GiB, in-process:        {:>8.3} ms   (target <= 5 ms)",
        millis(in_process)
    );
    let cache_s = cache_path.to_str().unwrap();
    let whole = median(
        (0..11)
            .map(|_| time_command(&[prov, "hash", "--cache", cache_s, big_s]))
            .collect(),
    );
    println!(
        "2 GiB, whole process:     {:>8.3} ms   (target <= 50 ms)",
        millis(whole)
    );

    let mut args: Vec<String> = vec![prov.into(), "hash".into(), "--cache".into(), cache_s.into()];
    args.extend(smalls.iter().map(|p| p.to_str().unwrap().to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    time_command(&args); // fills the cache
    let small = median((0..11).map(|_| time_command(&args)).collect());
    println!(
        "1,000 small files:        {:>8.3} ms   (target <= 300 ms)",
        millis(small)
    );
}

/// Writes `len` pseudo-random bytes (incompressible enough for hashing).
fn write_random(path: &Path, len: u64, seed: u64) {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut block = vec![0u8; 1 << 20];
    let mut written = 0;
    while written < len {
        for chunk in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        out.write_all(&block).unwrap();
        written += block.len() as u64;
    }
    out.flush().unwrap();
}

/// Reads a file once so that every run finds it in the page cache.
fn warm(path: &Path) {
    let mut f = File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    while f.read(&mut buf).unwrap() > 0 {}
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn time_command(argv: &[&str]) -> Duration {
    let start = Instant::now();
    let status = Command::new(argv[0])
        .args(&argv[1..])
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("run {}: {e}", argv[0]));
    let elapsed = start.elapsed();
    assert!(status.success(), "{argv:?} failed");
    elapsed
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
