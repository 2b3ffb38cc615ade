//! The hash cache contract: a file's digest is reused only while the file's
//! identity and change stamps are exactly what they were when it was hashed.
//!
//! The key is (device, inode, size, mtime in ns, ctime in ns). A rename onto the
//! path changes the inode; a write changes mtime and ctime; `touch` and even
//! restoring an old mtime change ctime, which no user call can set. An entry
//! whose key differs in any part is never trusted. The durable implementation
//! (a SQLite file) lives in provenance-store; [`MemoryCache`] serves one process.

use std::collections::HashMap;
use std::sync::Mutex;

/// The identity and change stamps of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    /// The device.
    pub dev: u64,
    /// The inode.
    pub ino: u64,
    /// The size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Status change time, nanoseconds since the epoch.
    pub ctime_ns: i64,
}

/// Digests remembered for a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedDigest {
    /// Lowercase hex sha-256.
    pub sha256: String,
    /// Lowercase hex md5, if it was computed.
    pub md5: Option<String>,
}

/// A cache that could not be read or written. Hashing goes on without it.
#[derive(Debug, thiserror::Error)]
#[error("use hash cache {location}")]
pub struct CacheError {
    /// Where the cache is (a path, or `memory`).
    pub location: String,
    /// What went wrong.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Where digests of unchanged files are remembered.
///
/// Implementations must return an entry only for a key equal in every field to
/// the one stored, and must be safe to share between threads (and, for durable
/// ones, between processes).
pub trait HashCache: Send + Sync {
    /// The digests stored for exactly `key`, if any.
    fn get(&self, key: &FileKey) -> Result<Option<CachedDigest>, CacheError>;
    /// Remembers `digest` for `key`, replacing what was stored for that file.
    fn put(&self, key: &FileKey, digest: &CachedDigest) -> Result<(), CacheError>;
}

/// A cache in memory, for one process (and for tests).
#[derive(Debug, Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<(u64, u64), (FileKey, CachedDigest)>>,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many files it remembers.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether it remembers none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(u64, u64), (FileKey, CachedDigest)>> {
        // A panic while holding the lock cannot leave a half-written entry
        // (inserts are single calls), so a poisoned map is still sound.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl HashCache for MemoryCache {
    fn get(&self, key: &FileKey) -> Result<Option<CachedDigest>, CacheError> {
        Ok(self
            .lock()
            .get(&(key.dev, key.ino))
            .filter(|(stored, _)| stored == key)
            .map(|(_, digest)| digest.clone()))
    }

    fn put(&self, key: &FileKey, digest: &CachedDigest) -> Result<(), CacheError> {
        self.lock()
            .insert((key.dev, key.ino), (*key, digest.clone()));
        Ok(())
    }
}
