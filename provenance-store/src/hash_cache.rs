//! The durable hash cache: a small SQLite file, shared safely by every process
//! of a user (or of a store), that lets an unchanged file skip hashing.
//!
//! One row per file, keyed by (device, inode); the row also holds the size and
//! the mtime and ctime in nanoseconds seen when the file was hashed, and a
//! lookup returns the digests only when all of them still match exactly (the
//! contract of [`HashCache`]). WAL mode and a busy timeout let several
//! processes read and write at once; each write is one statement, so a crash
//! leaves either the old row or the new one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use provenance_core::hash::{CacheError, CachedDigest, FileKey, HashCache};
use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// The schema version this build writes.
const SCHEMA_VERSION: i64 = 1;

/// How long a write waits for another process's write. Writes are one row,
/// so a wait this long means the cache is held (a user's `sqlite3` session,
/// a file system whose locks hang): hashing then goes on without the cache
/// rather than stall each file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long writes fail at once after one found the cache held that long.
const HELD_FOR: Duration = Duration::from_secs(30);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS file_digest (
    dev       INTEGER NOT NULL,
    ino       INTEGER NOT NULL,
    size      INTEGER NOT NULL,
    mtime_ns  INTEGER NOT NULL,
    ctime_ns  INTEGER NOT NULL,
    sha256    TEXT    NOT NULL,
    md5       TEXT,
    hashed_at INTEGER NOT NULL,
    PRIMARY KEY (dev, ino)
) WITHOUT ROWID;
";

/// A hash cache in a SQLite file.
pub struct SqliteHashCache {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Until when writes fail at once: set when one waited out
    /// [`BUSY_TIMEOUT`] on a cache another program holds, so that threads
    /// queued behind it do not each wait as long again.
    held_until: Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for SqliteHashCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteHashCache")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteHashCache {
    /// Opens the cache at `path`, creating it (and its folder) if needed.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let fail = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
            what: "hash cache",
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| fail(e.into()))?;
        }
        let conn = Connection::open(path).map_err(|e| fail(e.into()))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| fail(e.into()))?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|e| fail(e.into()))?;
        let is_store: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'event')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| fail(e.into()))?;
        if is_store {
            return Err(fail(
                "it is a prov store, not a hash cache (pass the cache with --cache or PROV_HASH_CACHE)"
                    .into(),
            ));
        }
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                what: "hash cache",
                path: path.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| fail(e.into()))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| fail(e.into()))?;
        conn.execute_batch(SCHEMA).map_err(|e| fail(e.into()))?;
        if found < SCHEMA_VERSION {
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(|e| fail(e.into()))?;
        }
        Ok(SqliteHashCache {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            held_until: Mutex::new(None),
        })
    }

    /// Where the cache file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, source: rusqlite::Error) -> CacheError {
        CacheError {
            location: self.path.display().to_string(),
            source: source.into(),
        }
    }
}

impl HashCache for SqliteHashCache {
    fn get(&self, key: &FileKey) -> Result<Option<CachedDigest>, CacheError> {
        // A panic while the lock was held cannot leave SQLite half-written.
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = conn
            .prepare_cached(
                "SELECT size, mtime_ns, ctime_ns, sha256, md5 FROM file_digest WHERE dev = ?1 AND ino = ?2",
            )
            .map_err(|e| self.error(e))?;
        let row = stmt
            .query_row(params![key.dev as i64, key.ino as i64], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<String>>(4)?,
                ))
            })
            .optional()
            .map_err(|e| self.error(e))?;
        Ok(row.and_then(|(size, mtime_ns, ctime_ns, sha256, md5)| {
            let exact =
                size as u64 == key.size && mtime_ns == key.mtime_ns && ctime_ns == key.ctime_ns;
            exact.then_some(CachedDigest { sha256, md5 })
        }))
    }

    fn put(&self, key: &FileKey, digest: &CachedDigest) -> Result<(), CacheError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut held = self.held_until.lock().unwrap_or_else(|e| e.into_inner());
        if held.is_some_and(|until| std::time::Instant::now() < until) {
            return Err(CacheError {
                location: self.path.display().to_string(),
                source: "another program holds the cache locked".into(),
            });
        }
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO file_digest (dev, ino, size, mtime_ns, ctime_ns, sha256, md5, hashed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (dev, ino) DO UPDATE SET
                    size = excluded.size, mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns,
                    sha256 = excluded.sha256, md5 = excluded.md5, hashed_at = excluded.hashed_at",
            )
            .map_err(|e| self.error(e))?;
        stmt.execute(params![
            key.dev as i64,
            key.ino as i64,
            key.size as i64,
            key.mtime_ns,
            key.ctime_ns,
            digest.sha256,
            digest.md5,
            now
        ])
        .map_err(|e| {
            if let rusqlite::Error::SqliteFailure(f, _) = &e
                && f.code == rusqlite::ErrorCode::DatabaseBusy
            {
                *held = Some(std::time::Instant::now() + HELD_FOR);
            }
            self.error(e)
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("prov-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("nested").join("cache.sqlite")
    }

    fn key() -> FileKey {
        FileKey {
            dev: 2049,
            ino: u64::MAX - 3,
            size: 10,
            mtime_ns: 1_700_000_000_123_456_789,
            ctime_ns: -5,
        }
    }

    fn digest() -> CachedDigest {
        CachedDigest {
            sha256: "ab".repeat(32),
            md5: Some("cd".repeat(16)),
        }
    }

    #[test]
    fn entries_survive_reopening_and_need_an_exact_key() {
        let path = temp("exact");
        let cache = SqliteHashCache::open(&path).unwrap();
        assert_eq!(cache.get(&key()).unwrap(), None);
        cache.put(&key(), &digest()).unwrap();
        drop(cache);
        let cache = SqliteHashCache::open(&path).unwrap();
        assert_eq!(cache.get(&key()).unwrap(), Some(digest()));
        let k = key();
        for other in [
            FileKey { size: 11, ..k },
            FileKey {
                mtime_ns: k.mtime_ns + 1,
                ..k
            },
            FileKey {
                ctime_ns: k.ctime_ns + 1,
                ..k
            },
            FileKey { ino: 7, ..k },
            FileKey { dev: 1, ..k },
        ] {
            assert_eq!(cache.get(&other).unwrap(), None, "{other:?}");
        }
        // A new stamp for the same file replaces the entry.
        let newer = FileKey {
            mtime_ns: k.mtime_ns + 1,
            ..k
        };
        cache
            .put(
                &newer,
                &CachedDigest {
                    sha256: "ef".repeat(32),
                    md5: None,
                },
            )
            .unwrap();
        assert_eq!(cache.get(&k).unwrap(), None);
        assert_eq!(cache.get(&newer).unwrap().unwrap().md5, None);
        std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).unwrap();
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let path = temp("newer");
        drop(SqliteHashCache::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 9)
            .unwrap();
        let err = SqliteHashCache::open(&path).unwrap_err();
        assert!(
            err.to_string()
                .contains("schema 9 is newer than this prov (1): upgrade prov"),
            "{err}"
        );
        std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_clear_error() {
        let path = temp("garbage");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, vec![7u8; 4096]).unwrap();
        let err = SqliteHashCache::open(&path).unwrap_err();
        assert!(err.to_string().starts_with("open hash cache at "), "{err}");
        std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap()).unwrap();
    }

    #[test]
    fn a_cache_held_by_another_program_costs_one_wait_not_one_per_file() {
        let path = temp("held");
        let cache = SqliteHashCache::open(&path).unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = std::time::Instant::now();
        assert!(cache.put(&key(), &digest()).is_err());
        assert!(
            started.elapsed() >= BUSY_TIMEOUT,
            "it waited as SQLite does"
        );
        let again = std::time::Instant::now();
        let err = cache.put(&key(), &digest()).unwrap_err();
        assert!(
            again.elapsed() < Duration::from_millis(500),
            "{:?}",
            again.elapsed()
        );
        assert!(
            err.source.to_string().contains("holds the cache locked"),
            "{err}"
        );
        // Reading still works: WAL readers do not wait for the writer.
        assert_eq!(cache.get(&key()).unwrap(), None);
        other.execute_batch("ROLLBACK").unwrap();
    }
}
