//! Content hashing: sha-256 (and md5 in the same read pass) of files and
//! directories, on every core, and never twice for an unchanged file.
//!
//! ```
//! use provenance_core::hash::{HashOptions, Hasher, MemoryCache};
//! # let dir = std::env::temp_dir().join(format!("prov-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let path = dir.join("reads.fastq");
//! std::fs::write(&path, b"@r1\nACGT\n+\nIIII\n")?;
//! let cache = MemoryCache::new();
//! let hasher = Hasher::new(HashOptions::default()).with_cache(&cache);
//! let digest = hasher.hash(&path)?;
//! assert_eq!(digest.size, 16);
//! assert_eq!(digest.sha256.len(), 64);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Directories** (a BWA or STAR index, a Zarr store) get a Merkle digest,
//! scheme `prov-merkle-1`: list every regular file below the directory (links to
//! files are followed; links to directories are refused), by its path relative
//! to the directory with `/` separators; sort the list by the bytes of those
//! paths; for each, write the line `<sha-256 hex> <size in bytes> <relative
//! path>\n`; the digest is the sha-256 of all the lines. A path holding a newline
//! is refused. In shell, with GNU tools:
//!
//! ```sh
//! cd DIR && find -L . -type f -printf '%P\0' | LC_ALL=C sort -z |
//!   while IFS= read -r -d '' f; do
//!     printf '%s %s %s\n' "$(sha256sum < "$f" | cut -c1-64)" "$(stat -L -c %s "$f")" "$f"
//!   done | sha256sum
//! ```

mod cache;
mod stream;

pub use cache::{CacheError, CachedDigest, FileKey, HashCache, MemoryCache};
pub use stream::{BUFFER_SIZE, INLINE_LIMIT};

use std::fs::{self, File, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::facets::{MD5, ProvChecksumDatasetFacet};
use crate::hex;

/// The name of the directory digest scheme (see the module documentation).
pub const MERKLE_SCHEME: &str = "prov-merkle-1";

/// How to hash.
#[derive(Debug, Clone)]
pub struct HashOptions {
    /// Compute md5 alongside sha-256 (files only), in the same read pass.
    pub md5: bool,
    /// Hash again even when the cache holds an entry (the entry is refreshed).
    pub rehash: bool,
    /// A file changed this recently is hashed but not cached: file systems
    /// stamp times coarsely, so a write in the same tick as the hash could
    /// leave the stamps unchanged. This is the window for stamps in whole
    /// seconds; where a file's stamps have fractions of a second, the file
    /// system ticks at most every few milliseconds and [`FINE_RACY_WINDOW`]
    /// (or this, if shorter) is used instead.
    pub racy_window: Duration,
    /// Files hashed at once; 0 means one per core.
    pub threads: usize,
    /// Bytes per read (the benchmark sweeps it; [`BUFFER_SIZE`] is its choice).
    pub buffer_size: usize,
}

impl Default for HashOptions {
    fn default() -> Self {
        HashOptions {
            md5: false,
            rehash: false,
            racy_window: Duration::from_secs(2),
            threads: 0,
            buffer_size: BUFFER_SIZE,
        }
    }
}

/// The racy window for files whose stamps have fractions of a second: a few
/// of the coarsest kernel clock ticks (10 ms at HZ=100). Files changed within
/// it are waited for once per call, so that outputs hashed just after their
/// step wrote them enter the cache too.
pub const FINE_RACY_WINDOW: Duration = Duration::from_millis(25);

/// Whether a digest describes a file or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory (Merkle digest).
    Directory,
}

/// The content identity of one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathDigest {
    /// The path as given.
    pub path: PathBuf,
    /// When the path is a symbolic link: the canonical path of its target.
    pub target: Option<PathBuf>,
    /// File or directory.
    pub kind: EntryKind,
    /// Bytes (for a directory, of all its files).
    pub size: u64,
    /// Lowercase hex sha-256 (for a directory, the Merkle digest).
    pub sha256: String,
    /// Lowercase hex md5, when asked for (files only).
    pub md5: Option<String>,
    /// For a directory, the number of files under it.
    pub file_count: Option<u64>,
    /// Modification time seen when hashing, ns since the epoch.
    pub mtime_ns: i64,
    /// Whether every byte's digest came from the cache.
    pub cached: bool,
}

impl PathDigest {
    /// The `prov_checksum` facet of this content.
    pub fn checksum_facet(&self) -> ProvChecksumDatasetFacet {
        let mut facet = match self.kind {
            EntryKind::File => ProvChecksumDatasetFacet::file(self.size, &self.sha256),
            EntryKind::Directory => ProvChecksumDatasetFacet::directory(
                self.size,
                self.file_count.unwrap_or(0),
                &self.sha256,
                MERKLE_SCHEME,
            ),
        };
        if let Some(md5) = &self.md5 {
            facet = facet.with_checksum(MD5, md5);
        }
        let secs = self.mtime_ns.div_euclid(1_000_000_000);
        let nanos = self.mtime_ns.rem_euclid(1_000_000_000) as u32;
        // A stamp beyond what nanoseconds in an i64 hold (before 1677, after
        // 2262) was saturated by `key_of`: no time rather than a wrong one.
        let outside = self.mtime_ns == i64::MAX || self.mtime_ns == i64::MIN;
        facet.modified_time = chrono::DateTime::from_timestamp(secs, nanos)
            .filter(|_| !outside)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
        facet
    }
}

/// Why a path could not be hashed. No digest is given for it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The path does not exist or cannot be opened or read.
    #[error("read {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The path is a FIFO, socket or device.
    #[error("hash {path}: it is {what}, not a regular file or a directory")]
    Unsupported {
        /// The path.
        path: PathBuf,
        /// What it is.
        what: &'static str,
    },
    /// The file changed while it was hashed, so no digest would be right.
    #[error(
        "hash {path}: it changed while it was hashed ({what}); hash it again once it is complete"
    )]
    Changed {
        /// The path.
        path: PathBuf,
        /// What changed.
        what: String,
    },
    /// The file's reported size is not its content's, with nothing changed:
    /// a pseudo-file, such as those under /proc and /sys.
    #[error(
        "hash {path}: it does not report its true size (read {read} bytes where its size says {reported}, and nothing about it changed), as files under /proc and /sys do; such a file cannot be hashed reliably"
    )]
    Unsized {
        /// The path.
        path: PathBuf,
        /// The bytes read.
        read: u64,
        /// The size it reports.
        reported: u64,
    },
    /// A directory holds something its Merkle digest cannot include.
    #[error("hash directory {path}: {reason}")]
    Directory {
        /// The offending path inside the directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Hears about progress and problems that do not stop hashing.
pub trait HashObserver: Sync {
    /// Hashing begins: `total` bytes in all (cached files included).
    fn started(&self, total: u64) {
        let _ = total;
    }
    /// `n` more bytes are done (read and hashed, or found in the cache).
    fn bytes_hashed(&self, n: u64) {
        let _ = n;
    }
    /// The cache failed; hashing went on without it.
    fn cache_failed(&self, error: &CacheError) {
        let _ = error;
    }
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;
impl HashObserver for NoObserver {}

/// The name of the sha-256 implementation this process uses: the CPU's SHA
/// extensions when present (the sha2 crate picks them at run time on the same
/// CPU features tested here), otherwise portable code.
pub fn sha256_backend() -> &'static str {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        if std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse2")
            && std::arch::is_x86_feature_detected!("ssse3")
            && std::arch::is_x86_feature_detected!("sse4.1")
        {
            return "x86 SHA extensions (SHA-NI)";
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("sha2") {
            return "ARMv8 SHA2 instructions";
        }
    }
    "portable software"
}

/// Hashes paths, using a cache and reporting progress if given.
pub struct Hasher<'a> {
    options: HashOptions,
    cache: Option<&'a dyn HashCache>,
    /// Set at the cache's first failure: from then on this hasher goes
    /// without it, rather than wait on a locked or broken cache per file.
    cache_off: AtomicBool,
    observer: &'a dyn HashObserver,
}

/// One regular file to hash: where it is, what it was when listed.
struct FileJob {
    path: PathBuf,
    size: u64,
    /// The later of its modification and status change stamps, in ns.
    stamp_ns: i64,
}

/// The digests of one regular file.
struct FileResult {
    size: u64,
    sha256: String,
    md5: Option<String>,
    mtime_ns: i64,
    cached: bool,
}

/// A path given by the caller, after resolving links and listing directories.
enum Planned {
    File {
        target: Option<PathBuf>,
        job: usize,
    },
    Directory {
        target: Option<PathBuf>,
        mtime_ns: i64,
        /// (relative path bytes, job index), sorted by the bytes.
        files: Vec<(Vec<u8>, usize)>,
    },
    Failed(HashError),
}

impl<'a> Hasher<'a> {
    /// A hasher without a cache.
    pub fn new(options: HashOptions) -> Self {
        Hasher {
            options,
            cache: None,
            cache_off: AtomicBool::new(false),
            observer: &NoObserver,
        }
    }

    /// Uses `cache` for unchanged files.
    pub fn with_cache(mut self, cache: &'a dyn HashCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Reports progress to `observer`.
    pub fn with_observer(mut self, observer: &'a dyn HashObserver) -> Self {
        self.observer = observer;
        self
    }

    /// Hashes one file or directory.
    pub fn hash(&self, path: &Path) -> Result<PathDigest, HashError> {
        let mut results = self.hash_all(&[path.to_path_buf()]);
        results.pop().expect("one result per path")
    }

    /// Hashes every path, several files at once, one result per path in order.
    pub fn hash_all(&self, paths: &[PathBuf]) -> Vec<Result<PathDigest, HashError>> {
        let mut jobs = Vec::new();
        let planned: Vec<Planned> = paths.iter().map(|p| plan(p, &mut jobs)).collect();
        self.observer.started(jobs.iter().map(|j| j.size).sum());
        self.wait_out_fine_window(&jobs);
        let mut results = self.run_jobs(&jobs);

        paths
            .iter()
            .zip(planned)
            .map(|(path, plan)| match plan {
                Planned::Failed(e) => Err(e),
                Planned::File { target, job } => {
                    let r = take(&mut results[job])?;
                    Ok(PathDigest {
                        path: path.clone(),
                        target,
                        kind: EntryKind::File,
                        size: r.size,
                        sha256: r.sha256,
                        md5: r.md5,
                        file_count: None,
                        mtime_ns: r.mtime_ns,
                        cached: r.cached,
                    })
                }
                Planned::Directory {
                    target,
                    mtime_ns,
                    files,
                } => {
                    let mut merkle = Sha256::new();
                    let (mut size, mut cached) = (0u64, true);
                    for (relative, job) in &files {
                        let r = take(&mut results[*job])?;
                        merkle.update(format!("{} {} ", r.sha256, r.size).as_bytes());
                        merkle.update(relative);
                        merkle.update(b"\n");
                        size += r.size;
                        cached &= r.cached;
                    }
                    Ok(PathDigest {
                        path: path.clone(),
                        target,
                        kind: EntryKind::Directory,
                        size,
                        sha256: hex(&merkle.finalize()),
                        md5: None,
                        file_count: Some(files.len() as u64),
                        mtime_ns,
                        cached,
                    })
                }
            })
            .collect()
    }

    /// Waits, once, until every file with fine stamps was last changed
    /// longer than [`FINE_RACY_WINDOW`] ago (at most that long), so that
    /// files just written, such as a step's outputs, can be cached.
    fn wait_out_fine_window(&self, jobs: &[FileJob]) {
        if self.cache.is_none() {
            return;
        }
        let window = self.options.racy_window.min(FINE_RACY_WINDOW);
        let Some(newest) = jobs
            .iter()
            .map(|j| j.stamp_ns)
            .filter(|&t| fine_stamp(t))
            .max()
        else {
            return;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let left = newest.saturating_add(window.as_nanos() as i64) - now;
        // A stamp in the future (another clock) is not waited for: the
        // file is hashed and, being racy, not cached.
        if left > 0 && left <= window.as_nanos() as i64 {
            std::thread::sleep(Duration::from_nanos(left as u64 + 1_000_000));
        }
    }

    /// Hashes every job on a pool of threads, largest first.
    fn run_jobs(&self, jobs: &[FileJob]) -> Vec<Option<Result<FileResult, HashError>>> {
        if jobs.is_empty() {
            return Vec::new();
        }
        if jobs.len() == 1 {
            // One file: no pool; the file's own read/hash pipeline does the overlap.
            let big = jobs[0].size > INLINE_LIMIT;
            return vec![Some(self.hash_file(&jobs[0].path, big))];
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = match self.options.threads {
            0 => cores,
            n => n,
        }
        .min(jobs.len())
        .max(1);
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(jobs[i].size));
        // With one file at a time, overlap its reading and hashing; with several,
        // each thread reads and hashes its own file and the cores are already busy.
        let pipelined = threads == 1;

        let next = AtomicUsize::new(0);
        let slots: Vec<std::sync::Mutex<Option<Result<FileResult, HashError>>>> =
            jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = order.get(k) else { break };
                        let job = &jobs[i];
                        let big = job.size > INLINE_LIMIT;
                        let result = self.hash_file(&job.path, pipelined && big);
                        *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                    }
                });
            }
        });
        slots
            .into_iter()
            .map(|s| s.into_inner().unwrap_or_else(|e| e.into_inner()))
            .collect()
    }

    /// Hashes one regular file, through the cache.
    fn hash_file(&self, path: &Path, pipelined: bool) -> Result<FileResult, HashError> {
        let io = |source| HashError::Io {
            path: path.to_path_buf(),
            source,
        };
        // Check the type before opening: opening a FIFO for reading would block.
        let listed = fs::metadata(path).map_err(io)?;
        check_regular(path, &listed)?;

        let key = key_of(&listed);
        let cache = self
            .cache
            .filter(|_| !self.cache_off.load(Ordering::Relaxed));
        if let (Some(cache), false) = (cache, self.options.rehash) {
            match cache.get(&key) {
                Ok(Some(hit)) if hit.md5.is_some() || !self.options.md5 => {
                    self.observer.bytes_hashed(key.size);
                    return Ok(FileResult {
                        size: key.size,
                        sha256: hit.sha256,
                        md5: hit.md5.filter(|_| self.options.md5),
                        mtime_ns: key.mtime_ns,
                        cached: true,
                    });
                }
                Ok(_) => {}
                Err(e) => self.cache_failed(&e),
            }
        }

        let started = SystemTime::now();
        let mut file = File::open(path).map_err(io)?;
        let before = file.metadata().map_err(io)?;
        check_regular(path, &before)?;
        let key = key_of(&before);
        let digest = stream::hash_file(
            &mut file,
            self.options.md5,
            pipelined,
            self.options.buffer_size.max(4096),
            self.observer,
        )
        .map_err(io)?;

        let after = key_of(&file.metadata().map_err(io)?);
        let changed = |what: String| HashError::Changed {
            path: path.to_path_buf(),
            what,
        };
        if digest.bytes != key.size && after == key {
            return Err(HashError::Unsized {
                path: path.to_path_buf(),
                read: digest.bytes,
                reported: key.size,
            });
        }
        if digest.bytes != key.size {
            return Err(changed(format!(
                "read {} bytes of {}",
                digest.bytes, key.size
            )));
        }
        if after != key {
            return Err(changed(describe_change(&key, &after)));
        }
        let now = fs::metadata(path).map_err(io)?;
        if (now.dev(), now.ino()) != (key.dev, key.ino) {
            return Err(changed("another file was moved onto the path".into()));
        }

        let result = FileResult {
            size: key.size,
            sha256: hex(&digest.sha256),
            md5: digest.md5.map(|m| hex(&m)),
            mtime_ns: key.mtime_ns,
            cached: false,
        };
        if let Some(cache) = self.cache
            && !self.cache_off.load(Ordering::Relaxed)
            && !self.is_racy(&key, started)
        {
            let entry = CachedDigest {
                sha256: result.sha256.clone(),
                md5: result.md5.clone(),
            };
            if let Err(e) = cache.put(&key, &entry) {
                self.cache_failed(&e);
            }
        }
        Ok(result)
    }

    /// The cache failed: say so once, and go on without it.
    fn cache_failed(&self, error: &CacheError) {
        if !self.cache_off.swap(true, Ordering::Relaxed) {
            self.observer.cache_failed(error);
        }
    }

    /// Whether the file's stamps are too close to the hashing time to trust.
    fn is_racy(&self, key: &FileKey, started: SystemTime) -> bool {
        let started_ns = started
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let stamp = key.mtime_ns.max(key.ctime_ns);
        let window = match fine_stamp(stamp) {
            true => self.options.racy_window.min(FINE_RACY_WINDOW),
            false => self.options.racy_window,
        };
        stamp > started_ns - window.as_nanos() as i64
    }
}

fn take(slot: &mut Option<Result<FileResult, HashError>>) -> Result<FileResult, HashError> {
    match slot.take() {
        Some(result) => result,
        // `plan` gives every file of every path its own job index, and each
        // index is taken exactly once when the results are assembled.
        None => unreachable!("each job's result is used once"),
    }
}

/// Whether a stamp (ns) has a fraction of a second, which a file system
/// that stamps whole seconds never gives.
fn fine_stamp(ns: i64) -> bool {
    ns.rem_euclid(1_000_000_000) != 0
}

/// Nanoseconds since the epoch, saturating at the ends of i64's range
/// (years 1677 and 2262) instead of wrapping.
fn stamp_ns(seconds: i64, nanos: i64) -> i64 {
    seconds
        .checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(nanos))
        .unwrap_or(if seconds < 0 { i64::MIN } else { i64::MAX })
}

/// The later of a file's modification and status change stamps, in ns.
fn newest_stamp(meta: &Metadata) -> i64 {
    let key = key_of(meta);
    key.mtime_ns.max(key.ctime_ns)
}

/// The cache key of a file's metadata.
pub fn key_of(meta: &Metadata) -> FileKey {
    FileKey {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime_ns: stamp_ns(meta.mtime(), meta.mtime_nsec()),
        ctime_ns: stamp_ns(meta.ctime(), meta.ctime_nsec()),
    }
}

fn describe_change(before: &FileKey, after: &FileKey) -> String {
    if before.size != after.size {
        format!("size went from {} to {} bytes", before.size, after.size)
    } else if before.mtime_ns != after.mtime_ns {
        "its modification time moved".into()
    } else {
        "its status change time moved".into()
    }
}

fn check_regular(path: &Path, meta: &Metadata) -> Result<(), HashError> {
    let t = meta.file_type();
    let what = if t.is_file() {
        return Ok(());
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_dir() {
        "a directory"
    } else {
        "of an unknown type"
    };
    Err(HashError::Unsupported {
        path: path.to_path_buf(),
        what,
    })
}

/// Resolves `path` and lists the files to hash for it into `jobs`.
fn plan(path: &Path, jobs: &mut Vec<FileJob>) -> Planned {
    let io = |source| {
        Planned::Failed(HashError::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    let link = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => return io(e),
    };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return io(e),
    };
    let target = if link.file_type().is_symlink() {
        match fs::canonicalize(path) {
            Ok(t) => Some(t),
            Err(e) => return io(e),
        }
    } else {
        None
    };
    if meta.is_dir() {
        let mut files = Vec::new();
        if let Err(e) = walk(path, &[], &mut files, jobs) {
            return Planned::Failed(e);
        }
        files.sort();
        let mtime_ns = key_of(&meta).mtime_ns;
        return Planned::Directory {
            target,
            mtime_ns,
            files,
        };
    }
    if let Err(e) = check_regular(path, &meta) {
        return Planned::Failed(e);
    }
    jobs.push(FileJob {
        path: path.to_path_buf(),
        size: meta.len(),
        stamp_ns: newest_stamp(&meta),
    });
    Planned::File {
        target,
        job: jobs.len() - 1,
    }
}

/// Lists the regular files under `dir` (relative to the root given first).
fn walk(
    dir: &Path,
    relative: &[u8],
    files: &mut Vec<(Vec<u8>, usize)>,
    jobs: &mut Vec<FileJob>,
) -> Result<(), HashError> {
    let io = |path: &Path, source| HashError::Io {
        path: path.to_path_buf(),
        source,
    };
    let entries = fs::read_dir(dir).map_err(|e| io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        let mut child = relative.to_vec();
        if !child.is_empty() {
            child.push(b'/');
        }
        child.extend_from_slice(name.as_bytes());
        if child.contains(&b'\n') {
            return Err(HashError::Directory {
                path,
                reason: "the name holds a newline, which the Merkle listing cannot encode".into(),
            });
        }
        let kind = entry.file_type().map_err(|e| io(&path, e))?;
        if kind.is_dir() {
            walk(&path, &child, files, jobs)?;
            continue;
        }
        let meta = if kind.is_symlink() {
            let meta = fs::metadata(&path).map_err(|e| io(&path, e))?;
            if meta.is_dir() {
                return Err(HashError::Directory {
                    path,
                    reason: "a link to a directory; links are followed to files only".into(),
                });
            }
            meta
        } else {
            entry.metadata().map_err(|e| io(&path, e))?
        };
        check_regular(&path, &meta)?;
        jobs.push(FileJob {
            path,
            stamp_ns: newest_stamp(&meta),
            size: meta.len(),
        });
        files.push((child, jobs.len() - 1));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
