//! Tests of the hashing engine against coreutils (`sha256sum`, `md5sum`) and
//! the shell recipe of the Merkle digest.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use super::*;

struct TempDir(PathBuf);
impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "prov-hash-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Deterministic bytes that are not all alike.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

fn coreutils(tool: &str, path: &Path) -> String {
    let out = Command::new(tool)
        .arg(path)
        .output()
        .expect("coreutils are installed");
    assert!(out.status.success(), "{tool} failed");
    String::from_utf8(out.stdout).unwrap()[..if tool == "md5sum" { 32 } else { 64 }].to_owned()
}

fn no_cache() -> HashOptions {
    HashOptions {
        md5: true,
        racy_window: Duration::ZERO,
        ..HashOptions::default()
    }
}

/// Checks both loops (inline and pipelined) and the Hasher on one size.
fn check_size(dir: &TempDir, len: usize, seed: u64) {
    let path = dir.join(&format!("f{len}"));
    fs::write(&path, bytes(len, seed)).unwrap();
    let sha = coreutils("sha256sum", &path);
    let md5 = coreutils("md5sum", &path);
    for pipelined in [false, true] {
        let mut file = File::open(&path).unwrap();
        let d = stream::hash_file(&mut file, true, pipelined, BUFFER_SIZE, &NoObserver).unwrap();
        assert_eq!(hex(&d.sha256), sha, "size {len} pipelined {pipelined}");
        assert_eq!(
            hex(&d.md5.unwrap()),
            md5,
            "size {len} pipelined {pipelined}"
        );
        assert_eq!(d.bytes, len as u64);
        let mut file = File::open(&path).unwrap();
        let d = stream::hash_file(&mut file, false, pipelined, 4096, &NoObserver).unwrap();
        assert_eq!(hex(&d.sha256), sha);
        assert!(d.md5.is_none());
    }
    let digest = Hasher::new(no_cache()).hash(&path).unwrap();
    assert_eq!(
        (digest.sha256.as_str(), digest.md5.as_deref()),
        (sha.as_str(), Some(md5.as_str()))
    );
    assert_eq!(digest.size, len as u64);
    fs::remove_file(&path).unwrap();
}

#[test]
fn digests_equal_coreutils_at_the_edges() {
    let dir = TempDir::new("edges");
    let mib = 1 << 20;
    for len in [0, 1, 63, 64, 65, mib - 1, mib, mib + 1] {
        check_size(&dir, len, len as u64 + 7);
    }
}

#[test]
fn digests_equal_coreutils_at_random_sizes() {
    // A property over sizes: any size, across buffer and inline-limit boundaries.
    let dir = TempDir::new("random");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..12 {
        let len = (next() % (3 * BUFFER_SIZE as u64 + 12345)) as usize;
        eprintln!("seed {seed}: size {len}");
        check_size(&dir, len, next());
    }
    // One above the inline limit, so that the Hasher itself takes the pipeline.
    check_size(&dir, INLINE_LIMIT as usize + 4097, next());
}

#[test]
fn directories_match_the_documented_shell_recipe() {
    let dir = TempDir::new("merkle");
    let root = dir.join("index");
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::write(root.join("GRCh38.fa.bwt"), bytes(300_000, 1)).unwrap();
    fs::write(root.join("GRCh38.fa.sa"), bytes(1000, 2)).unwrap();
    fs::write(root.join("sub/a b.txt"), b"spaces\n").unwrap();
    fs::write(root.join("sub/deeper/Z"), b"").unwrap();
    fs::write(root.join("sub/ü.idx"), b"unicode").unwrap();
    fs::write(dir.join("outside"), b"linked in").unwrap();
    std::os::unix::fs::symlink(dir.join("outside"), root.join("link")).unwrap();

    let digest = Hasher::new(no_cache()).hash(&root).unwrap();
    assert_eq!(digest.kind, EntryKind::Directory);
    assert_eq!(digest.file_count, Some(6));
    assert_eq!(digest.size, 300_000 + 1000 + 7 + 7 + 9); // Z is empty
    let recipe = r#"cd "$1" && find -L . -type f -printf '%P\0' | LC_ALL=C sort -z |
      while IFS= read -r -d '' f; do
        printf '%s %s %s\n' "$(sha256sum < "$f" | cut -c1-64)" "$(stat -L -c %s "$f")" "$f"
      done | sha256sum"#;
    let out = Command::new("bash")
        .args(["-c", recipe, "recipe"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(digest.sha256, String::from_utf8(out.stdout).unwrap()[..64]);

    // Any change of content, name or size changes the digest.
    fs::write(root.join("sub/deeper/Z"), b"x").unwrap();
    let changed = Hasher::new(no_cache()).hash(&root).unwrap();
    assert_ne!(changed.sha256, digest.sha256);
    fs::rename(root.join("sub/deeper/Z"), root.join("sub/deeper/Y")).unwrap();
    assert_ne!(
        Hasher::new(no_cache()).hash(&root).unwrap().sha256,
        changed.sha256
    );

    let facet = digest.checksum_facet();
    assert_eq!(facet.merkle.as_deref(), Some(MERKLE_SCHEME));
    assert_eq!(facet.file_count, Some(6));
}

#[test]
fn directories_refuse_what_they_cannot_encode() {
    let dir = TempDir::new("refuse");
    let root = dir.join("d");
    fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink(&dir.0, root.join("loop")).unwrap();
    let err = Hasher::new(no_cache()).hash(&root).unwrap_err();
    assert!(err.to_string().contains("link to a directory"), "{err}");
    fs::remove_file(root.join("loop")).unwrap();
    fs::write(root.join("new\nline"), b"").unwrap();
    let err = Hasher::new(no_cache()).hash(&root).unwrap_err();
    assert!(err.to_string().contains("newline"), "{err}");
}

#[test]
fn a_symlink_is_resolved_and_both_are_recorded() {
    let dir = TempDir::new("link");
    fs::write(dir.join("target.vcf"), b"##fileformat=VCFv4.2\n").unwrap();
    std::os::unix::fs::symlink(dir.join("target.vcf"), dir.join("latest.vcf")).unwrap();
    let via_link = Hasher::new(no_cache())
        .hash(&dir.join("latest.vcf"))
        .unwrap();
    let direct = Hasher::new(no_cache())
        .hash(&dir.join("target.vcf"))
        .unwrap();
    assert_eq!(via_link.sha256, direct.sha256);
    assert_eq!(via_link.path, dir.join("latest.vcf"));
    assert_eq!(
        via_link.target,
        Some(fs::canonicalize(dir.join("target.vcf")).unwrap())
    );
    assert_eq!(direct.target, None);

    std::os::unix::fs::symlink(dir.join("gone"), dir.join("dangling")).unwrap();
    let err = Hasher::new(no_cache())
        .hash(&dir.join("dangling"))
        .unwrap_err();
    assert!(matches!(err, HashError::Io { .. }), "{err}");
    assert!(err.to_string().contains("dangling"));
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let dir = TempDir::new("fifo");
    let fifo = dir.join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let err = Hasher::new(no_cache()).hash(&fifo).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "hash {}: it is a FIFO, not a regular file or a directory",
            fifo.display()
        )
    );
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let dir = TempDir::new("missing");
    let results = Hasher::new(no_cache()).hash_all(&[dir.join("absent.bam"), dir.0.clone()]);
    let err = results[0].as_ref().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("read {}", dir.join("absent.bam").display())
    );
    assert!(results[1].is_ok(), "the other paths are still hashed");
}

/// Appends to the file the first time it hears of progress.
struct Saboteur {
    path: PathBuf,
    done: AtomicBool,
}
impl HashObserver for Saboteur {
    fn bytes_hashed(&self, _: u64) {
        if !self.done.swap(true, Ordering::SeqCst) {
            use std::io::Write;
            let mut f = fs::OpenOptions::new()
                .append(true)
                .open(&self.path)
                .unwrap();
            f.write_all(b"more reads").unwrap();
        }
    }
}

#[test]
fn a_file_that_grows_while_hashed_gives_an_error_not_a_digest() {
    let dir = TempDir::new("grow");
    let path = dir.join("growing.fastq");
    for (len, threads) in [(3 * BUFFER_SIZE, 1), (BUFFER_SIZE / 2, 2)] {
        fs::write(&path, bytes(len, 5)).unwrap();
        let saboteur = Saboteur {
            path: path.clone(),
            done: AtomicBool::new(false),
        };
        let options = HashOptions {
            threads,
            ..no_cache()
        };
        let err = Hasher::new(options)
            .with_observer(&saboteur)
            .hash(&path)
            .unwrap_err();
        assert!(matches!(err, HashError::Changed { .. }), "{err}");
        assert!(
            err.to_string().contains("changed while it was hashed"),
            "{err}"
        );
    }
}

#[test]
fn several_files_at_once_give_the_same_digests_in_order() {
    let dir = TempDir::new("many");
    let paths: Vec<PathBuf> = (0..9)
        .map(|i| {
            let p = dir.join(&format!("{i}.bin"));
            fs::write(&p, bytes(i * 700_001 % 3_000_000, i as u64)).unwrap();
            p
        })
        .collect();
    let together = Hasher::new(no_cache()).hash_all(&paths);
    for (path, result) in paths.iter().zip(together) {
        let one = Hasher::new(HashOptions {
            threads: 1,
            ..no_cache()
        })
        .hash(path)
        .unwrap();
        let result = result.unwrap();
        assert_eq!(&result.path, path);
        assert_eq!(result.sha256, one.sha256);
        assert_eq!(result.sha256, coreutils("sha256sum", path));
    }
}

fn cached_options() -> HashOptions {
    HashOptions {
        md5: false,
        racy_window: Duration::ZERO,
        ..HashOptions::default()
    }
}

#[test]
fn the_cache_serves_unchanged_files_and_nothing_else() {
    let dir = TempDir::new("cache");
    let cache = MemoryCache::new();
    let hasher = Hasher::new(cached_options()).with_cache(&cache);
    let path = dir.join("S1.bam");
    fs::write(&path, bytes(10_000, 1)).unwrap();

    let first = hasher.hash(&path).unwrap();
    assert!(!first.cached);
    let second = hasher.hash(&path).unwrap();
    assert!(second.cached);
    assert_eq!(second.sha256, first.sha256);

    // Touched: same bytes, new mtime. Hashed again (same digest).
    let file = File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    let touched = hasher.hash(&path).unwrap();
    assert!(!touched.cached);
    assert_eq!(touched.sha256, first.sha256);
    assert!(hasher.hash(&path).unwrap().cached);

    // Rewritten with the same size, and the old mtime put back: ctime still moves.
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    fs::write(&path, bytes(10_000, 2)).unwrap();
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let rewritten = hasher.hash(&path).unwrap();
    assert!(!rewritten.cached);
    assert_ne!(rewritten.sha256, first.sha256);
    assert_eq!(rewritten.sha256, coreutils("sha256sum", &path));

    // Replaced by a rename: a new inode.
    let staged = dir.join("S1.bam.tmp");
    fs::write(&staged, bytes(10_000, 1)).unwrap();
    fs::rename(&staged, &path).unwrap();
    let replaced = hasher.hash(&path).unwrap();
    assert!(!replaced.cached);
    assert_eq!(replaced.sha256, first.sha256);

    // --rehash reads the bytes even when the entry is good.
    let rehash = Hasher::new(HashOptions {
        rehash: true,
        ..cached_options()
    })
    .with_cache(&cache);
    assert!(!rehash.hash(&path).unwrap().cached);
}

#[test]
fn md5_is_not_served_from_an_entry_that_lacks_it() {
    let dir = TempDir::new("cache-md5");
    let cache = MemoryCache::new();
    let path = dir.join("R1.fastq");
    fs::write(&path, b"@r\nA\n+\nI\n").unwrap();
    Hasher::new(cached_options())
        .with_cache(&cache)
        .hash(&path)
        .unwrap();
    let with_md5 = Hasher::new(HashOptions {
        md5: true,
        ..cached_options()
    })
    .with_cache(&cache);
    let d = with_md5.hash(&path).unwrap();
    assert!(!d.cached);
    assert_eq!(d.md5.as_deref(), Some(coreutils("md5sum", &path).as_str()));
    assert!(
        with_md5.hash(&path).unwrap().cached,
        "now the entry has md5"
    );
}

#[test]
fn a_file_just_written_is_cached_after_a_wait_of_milliseconds() {
    // As `prov run` hashes a step's outputs right after the step: the hasher
    // waits out the short window of fine stamps once, then caches them, so
    // the next step that reads them does not hash them again.
    let dir = TempDir::new("racy");
    let cache = MemoryCache::new();
    let paths: Vec<PathBuf> = (0..3)
        .map(|i| {
            let p = dir.join(&format!("out{i}.bam"));
            fs::write(&p, bytes(1000, i)).unwrap();
            p
        })
        .collect();
    let hasher = Hasher::new(HashOptions::default()).with_cache(&cache);
    let started = std::time::Instant::now();
    for result in hasher.hash_all(&paths) {
        assert!(!result.unwrap().cached);
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(cache.len(), 3, "files written just now are cached");
    assert!(hasher.hash(&paths[0]).unwrap().cached);
}

#[test]
fn whole_second_stamps_keep_the_long_window_and_fine_ones_the_short() {
    let hasher = Hasher::new(HashOptions::default());
    let now = SystemTime::now();
    let now_ns = now.duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64;
    let key = |stamp_ns: i64| FileKey {
        dev: 1,
        ino: 1,
        size: 1,
        mtime_ns: stamp_ns,
        ctime_ns: stamp_ns,
    };
    let second = 1_000_000_000;
    let whole = (now_ns / second - 1) * second; // 1-2 s ago, in whole seconds
    assert!(hasher.is_racy(&key(whole), now), "a coarse stamp 1 s ago");
    assert!(!hasher.is_racy(&key(whole - 2 * second), now));
    assert!(
        !hasher.is_racy(&key(now_ns - 100_000_000), now),
        "fine, 100 ms ago"
    );
    assert!(
        hasher.is_racy(&key(now_ns - 5_000_000), now),
        "fine, 5 ms ago"
    );
}

/// A cache that fails every call, counting them.
#[derive(Default)]
struct LockedCache {
    calls: AtomicUsize,
}
impl HashCache for LockedCache {
    fn get(&self, _: &FileKey) -> Result<Option<CachedDigest>, CacheError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(CacheError {
            location: "locked.sqlite".into(),
            source: "database is locked".into(),
        })
    }
    fn put(&self, _: &FileKey, _: &CachedDigest) -> Result<(), CacheError> {
        self.get(&FileKey {
            dev: 0,
            ino: 0,
            size: 0,
            mtime_ns: 0,
            ctime_ns: 0,
        })
        .map(|_| ())
    }
}

/// Counts the cache failures it hears of.
#[derive(Default)]
struct Failures(AtomicUsize);
impl HashObserver for Failures {
    fn cache_failed(&self, _: &CacheError) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_failing_cache_is_left_alone_after_its_first_failure() {
    // A cache held locked costs its wait once, not once per file.
    let dir = TempDir::new("locked");
    let paths: Vec<PathBuf> = (0..6)
        .map(|i| {
            let p = dir.join(&format!("{i}.fq"));
            fs::write(&p, bytes(100, i)).unwrap();
            p
        })
        .collect();
    let cache = LockedCache::default();
    let failures = Failures::default();
    let options = HashOptions {
        threads: 1,
        ..cached_options()
    };
    let hasher = Hasher::new(options)
        .with_cache(&cache)
        .with_observer(&failures);
    for (path, result) in paths.iter().zip(hasher.hash_all(&paths)) {
        assert_eq!(result.unwrap().sha256, coreutils("sha256sum", path));
    }
    assert_eq!(cache.calls.load(Ordering::SeqCst), 1);
    assert_eq!(failures.0.load(Ordering::SeqCst), 1);
}

#[test]
fn a_modification_time_beyond_2262_is_left_out_not_wrapped() {
    let dir = TempDir::new("future");
    let path = dir.join("future.txt");
    fs::write(&path, b"fut").unwrap();
    let year_2300 = UNIX_EPOCH + Duration::from_secs(10_413_792_000);
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(year_2300)
        .unwrap();
    let digest = Hasher::new(no_cache()).hash(&path).unwrap();
    assert_eq!(digest.checksum_facet().modified_time, None);
    assert_eq!(stamp_ns(-10_413_792_000, 0), i64::MIN);
    assert_eq!(stamp_ns(1, 5), 1_000_000_005);
}

#[test]
fn the_backend_is_named() {
    let backend = sha256_backend();
    assert!(!backend.is_empty());
    if fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains(" sha_ni")) {
        assert_eq!(backend, "x86 SHA extensions (SHA-NI)");
    }
}

#[test]
fn an_unreadable_file_is_an_error_naming_it() {
    // Reading /proc/self/mem at offset 0 fails with EIO even for root, for whom
    // permission bits would not stop a read.
    let path = Path::new("/proc/self/mem");
    if !path.exists() {
        return; // not Linux
    }
    let err = Hasher::new(no_cache()).hash(path).unwrap_err();
    assert!(matches!(err, HashError::Io { .. }), "{err}");
    assert_eq!(err.to_string(), "read /proc/self/mem");
}

#[test]
fn a_pseudo_file_that_misreports_its_size_is_refused_as_such() {
    let path = Path::new("/proc/version");
    if !path.exists() {
        return; // not Linux
    }
    let err = Hasher::new(no_cache()).hash(path).unwrap_err();
    assert!(
        matches!(err, HashError::Unsized { reported: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("/proc and /sys"), "{err}");
}
