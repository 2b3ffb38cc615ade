//! The SQLite backend: one file (or memory), WAL, an explicit busy timeout,
//! immediate transactions for writes, cached prepared statements, and
//! versioned migrations kept as files in `migrations/sqlite/`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use provenance_core::EventType;
use rusqlite::types::Value as SqlValue;
use rusqlite::{
    CachedStatement, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior,
    params,
};

pub(crate) mod codec;

use crate::backend::{Backend, KnownVersion, Start};
use crate::chain;
use crate::model::*;
use crate::normalize::{Body, DatasetPart, Prepared, RunPart, now_micros, state_of};
use crate::tables::{Row, Table};
use crate::{StoreError, StoreResult};

/// The migrations, in order; the schema version is their count.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_init.sql"),
    include_str!("../../migrations/sqlite/0002_compression.sql"),
    include_str!("../../migrations/sqlite/0003_key_prefixes.sql"),
];

/// Versions by content digest, through the index over the digest's first 16
/// digits (`version_digest`, migration 3).
const VERSIONS_BY_DIGEST: &str = "SELECT id FROM dataset_version
    WHERE substr(digest, 1, 16) = substr(?1, 1, 16) AND digest = ?1 AND created_at <= ?2
    ORDER BY id";

/// The run filter on a fingerprint, through the index over its first 16
/// digits (`run_fingerprint`, migration 3); the value is bound twice.
const RUNS_BY_FINGERPRINT: &str =
    "substr(r.fingerprint, 1, 16) = substr(?, 1, 16) AND r.fingerprint = ?";

/// How long a writer waits for another process's write lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) struct Sqlite {
    location: String,
    /// The database file (`None` in memory).
    path: Option<PathBuf>,
    conn: Mutex<Connection>,
    /// Ids of jobs, datasets and content-addressed versions. Rows are never
    /// deleted or renumbered, so an id once committed stays right, even with
    /// other processes writing; new ids join only after their commit.
    ids: Mutex<IdCache>,
    /// Started once the write-ahead log first grows past [`CHECKPOINT_AT`].
    checkpointer: Mutex<Option<Checkpointer>>,
    /// How event bytes are compressed (locked after `conn`, when both are).
    codecs: Mutex<codec::Codecs>,
    /// The dictionary new events are compressed with, as of the last write,
    /// for the threads that compress ahead of the writer (which holds
    /// `codecs` for a whole transaction).
    dictionary: Mutex<Option<Arc<codec::Dictionary>>>,
    /// For a file read as immutable: how it stood when opened, to tell
    /// whether a writer changed it while it was read.
    immutable_at: Option<FileStamp>,
}

/// What changes when a SQLite file is written: its length, modification
/// time and the header's change counter, and whether a log is beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    counter: [u8; 4],
    log: bool,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        let mut counter = [0; 4];
        file.read_exact_at(&mut counter, 24).ok()?;
        Some(FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            counter,
            log: std::fs::symlink_metadata(beside(path, "-wal")).is_ok(),
        })
    }
}

/// The file SQLite keeps beside the store: `<path>-wal` or `<path>-shm`.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut file = path.as_os_str().to_owned();
    file.push(suffix);
    PathBuf::from(file)
}

/// Whether the `-wal` and `-shm` beside the store, where they exist, belong
/// to the store file's owner.
fn log_files_are_owners(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(owner) = path.metadata().map(|m| m.uid()) else {
        return true;
    };
    ["-wal", "-shm"].iter().all(|suffix| {
        std::fs::symlink_metadata(beside(path, suffix)).map_or(true, |m| m.uid() == owner)
    })
}

/// The size of the write-ahead log at which it is copied into the database
/// file, by the checkpointer thread rather than by the commit that crossed it.
const CHECKPOINT_AT: u64 = 8 << 20;

/// The least time between two checkpoints by the checkpointer thread.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Pages after which a commit checkpoints by itself, should the checkpointer
/// fall behind (SQLite's default is 1,000).
const INLINE_CHECKPOINT_PAGES: i64 = 16_384;

/// Copies the write-ahead log into the database file on a thread of its own
/// (a PASSIVE checkpoint on its own connection), so that the writer only
/// appends: otherwise SQLite checkpoints inside the commit that crosses the
/// threshold, with the database file's fsync, and that commit's writer waits.
struct Checkpointer {
    signal: Arc<(Mutex<CheckpointState>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct CheckpointState {
    pending: bool,
    stop: bool,
}

impl Checkpointer {
    fn start(path: &Path) -> Option<Checkpointer> {
        let conn = Connection::open(path).ok()?;
        conn.busy_timeout(BUSY_TIMEOUT).ok()?;
        let signal = Arc::new((Mutex::new(CheckpointState::default()), Condvar::new()));
        let shared = Arc::clone(&signal);
        let thread = std::thread::Builder::new()
            .name("prov-checkpoint".into())
            .spawn(move || {
                let (state, wake) = &*shared;
                loop {
                    {
                        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                        while !s.pending && !s.stop {
                            s = wake.wait(s).unwrap_or_else(|e| e.into_inner());
                        }
                        if s.stop {
                            return;
                        }
                        s.pending = false;
                    }
                    // PASSIVE: copies what no reader still needs, never waits
                    // for the writer; a failure leaves the log for next time.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    // At most a few a second: each ends with an fsync of the
                    // database file, and the log (which keeps its size once
                    // grown) is reused from its start after a full one.
                    let s = state.lock().unwrap_or_else(|e| e.into_inner());
                    let (s, _) = wake
                        .wait_timeout_while(s, CHECKPOINT_EVERY, |s| !s.stop)
                        .unwrap_or_else(|e| e.into_inner());
                    if s.stop {
                        return;
                    }
                }
            })
            .ok()?;
        Some(Checkpointer {
            signal,
            thread: Some(thread),
        })
    }

    fn request(&self) {
        let (state, wake) = &*self.signal;
        state.lock().unwrap_or_else(|e| e.into_inner()).pending = true;
        wake.notify_one();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (state, wake) = &*self.signal;
        state.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Default)]
struct IdCache {
    /// By `key(table, namespace, name)`.
    named: HashMap<String, i64>,
    /// By `key(dataset id, version)`.
    versions: HashMap<String, KnownVersion>,
    /// What one write transaction keeps in memory, kept here between
    /// transactions (emptied, not freed) so that each does not grow it anew.
    scratch: Scratch,
}

/// Ids the cache holds at most: past this it starts again empty, so that a
/// long-running writer's memory stays bounded (the ids in use come back at
/// the cost of one lookup each).
const ID_CACHE_LIMIT: usize = 500_000;

/// The transaction-long maps of a [`Writer`].
#[derive(Default)]
struct Scratch {
    learned: Learned,
    runs: HashMap<String, RunState>,
    edges: std::collections::HashSet<(bool, i64, i64)>,
    fresh: std::collections::HashSet<(i64, u64)>,
}

/// A map key of several parts, each preceded by its length, so that no two
/// lists of parts make the same key (whatever characters the parts hold).
fn key(buffer: &mut String, parts: &[&str]) {
    buffer.clear();
    for part in parts {
        let _ = write!(buffer, "{}:", part.len());
        buffer.push_str(part);
    }
}

/// Ids learned inside one transaction, published to the cache on commit.
#[derive(Default)]
struct Learned {
    named: HashMap<String, i64>,
    versions: HashMap<String, KnownVersion>,
    /// The key being looked up (kept to reuse its allocation).
    key: String,
}

fn backend(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
    let context = context.into();
    move |source| {
        if let rusqlite::Error::SqliteFailure(e, _) = &source
            && matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        {
            return StoreError::Busy {
                waited: BUSY_TIMEOUT,
                source: source.into(),
            };
        }
        StoreError::Backend {
            context,
            source: source.into(),
        }
    }
}

impl Sqlite {
    /// Opens (creating if needed) the store at `path`, or in memory for `None`.
    pub fn open(path: Option<&Path>) -> StoreResult<Self> {
        let location = path.map_or_else(|| ":memory:".to_owned(), |p| p.display().to_string());
        let fail = |source: rusqlite::Error| StoreError::Open {
            what: "store",
            path: PathBuf::from(&location),
            source: source.into(),
        };
        let conn = match path {
            Some(p) => Connection::open(p),
            None => Connection::open_in_memory(),
        }
        .map_err(fail)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
        // Before anything is set (WAL mode rewrites the file's header): a
        // database with tables but no prov schema version is someone else's,
        // and gets none of ours.
        let (version, tables) = schema_of(&conn).map_err(fail)?;
        if is_hash_cache(&conn) {
            return Err(not_a_store(&location));
        }
        if version == 0 && tables > 0 {
            return Err(foreign(
                &location,
                tables,
                "; prov adds its tables only to a new or empty file",
            ));
        }
        conn.set_prepared_statement_cache_capacity(64);
        // SQLite's usual 4 KiB pages: events are mostly stored compressed
        // (a few hundred bytes), and a commit writes every page it dirtied
        // to the log, so small pages keep small commits small. A 16 MiB page
        // cache holds the pages a batch of thousands dirties; a larger one
        // measured no faster, only more memory to fault in. (page_size only
        // takes effect on a new file.)
        conn.pragma_update(None, "page_size", 4096).map_err(fail)?;
        conn.pragma_update(None, "cache_size", -16384)
            .map_err(fail)?;
        if path.is_some() {
            // Switching a new file to WAL upgrades a read to a write, and for
            // that SQLite does not call the busy handler: processes creating
            // one store at once (a pipeline's first steps) would fail at
            // once with "database is locked". Wait as the handler would.
            let started = std::time::Instant::now();
            loop {
                match conn.pragma_update(None, "journal_mode", "WAL") {
                    Err(rusqlite::Error::SqliteFailure(e, _))
                        if e.code == ErrorCode::DatabaseBusy
                            && started.elapsed() < BUSY_TIMEOUT =>
                    {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    done => break done.map_err(fail)?,
                }
            }
            conn.pragma_update(None, "wal_autocheckpoint", INLINE_CHECKPOINT_PAGES)
                .map_err(fail)?;
        }
        // FULL: an acknowledged event survives a power cut, not only a crash.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(fail)?;
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(fail)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(fail)?;
        let store = Sqlite {
            location: location.clone(),
            path: path.map(Path::to_path_buf),
            conn: Mutex::new(conn),
            ids: Mutex::new(IdCache::default()),
            checkpointer: Mutex::new(None),
            codecs: Mutex::new(codec::Codecs::default()),
            dictionary: Mutex::new(None),
            immutable_at: None,
        };
        store.migrate()?;
        Ok(store)
    }

    /// Opens the store at `path` for reading only: for an archived copy, a
    /// file without write permission or a folder where the log cannot be
    /// created. Nothing is written, so the schema must already be this
    /// build's (an older one needs a writable open to be upgraded). A store
    /// whose log cannot be shared is read as immutable, as an archive is.
    ///
    /// A `guest` (a user who does not own the file) reads it as immutable
    /// where no writer has it open, so that SQLite creates no `-shm` or
    /// `-wal` owned by the guest beside it.
    pub fn open_read_only(path: &Path, guest: bool) -> StoreResult<Self> {
        let location = path.display().to_string();
        let fail = |source: rusqlite::Error| StoreError::Open {
            what: "store",
            path: path.to_path_buf(),
            source: source.into(),
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open = |name: &str| -> rusqlite::Result<(Connection, i64, i64)> {
            let conn = Connection::open_with_flags(name, flags)?;
            let (version, tables) = schema_of(&conn)?;
            Ok((conn, version, tables))
        };
        // As a URI (so that `immutable` can be asked), with the characters
        // a URI gives meaning to escaped.
        let mut name = String::from("file:");
        for c in location.chars() {
            match c {
                '%' | '?' | '#' => {
                    write!(name, "%{:02X}", c as u32).expect("writing to a String");
                }
                c => name.push(c),
            }
        }
        let exists = |suffix: &str| std::fs::symlink_metadata(beside(path, suffix)).is_ok();
        let immutable = |name: &str| -> StoreResult<Self> {
            let stamp = FileStamp::of(path);
            let (conn, version, tables) = open(&format!("{name}?immutable=1")).map_err(fail)?;
            let mut store = Sqlite::read_only_from(conn, version, tables, path, location.clone())?;
            store.immutable_at = stamp;
            Ok(store)
        };
        if guest && !exists("-wal") && !exists("-shm") {
            return immutable(&name);
        }
        // Shared reading needs the log's index file; where it cannot be
        // made, read the file as immutable (an archive nobody writes).
        let (conn, version, tables) = match open(&name) {
            // The owner's writer may have closed, removing its log files,
            // between the look above and this open, which then made them
            // anew as the guest's: the owner could not write them. Give
            // them back (removed) and read as immutable instead.
            Ok(opened) if guest && !log_files_are_owners(path) => {
                drop(opened);
                for suffix in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(beside(path, suffix));
                }
                return immutable(&name);
            }
            Ok(opened) => opened,
            Err(shared) => {
                // Immutable reading ignores the log: refuse rather than
                // answer without the events still in it.
                if std::fs::metadata(beside(path, "-wal")).is_ok_and(|m| m.len() > 0) {
                    return Err(fail(shared));
                }
                return immutable(&name);
            }
        };
        Sqlite::read_only_from(conn, version, tables, path, location)
    }

    /// The read-only store over `conn`, once its schema is found to be
    /// this build's.
    fn read_only_from(
        conn: Connection,
        version: i64,
        tables: i64,
        path: &Path,
        location: String,
    ) -> StoreResult<Self> {
        let fail = |source: rusqlite::Error| StoreError::Open {
            what: "store",
            path: path.to_path_buf(),
            source: source.into(),
        };
        let supported = MIGRATIONS.len() as i64;
        if is_hash_cache(&conn) {
            return Err(not_a_store(&location));
        }
        if version == 0 && tables > 0 {
            return Err(foreign(&location, tables, ""));
        }
        if version == 0 {
            return Err(StoreError::Unsupported {
                location,
                reason: "it is an empty database, not a prov store".into(),
            });
        }
        if version > supported {
            return Err(StoreError::SchemaTooNew {
                what: "store",
                path: path.to_path_buf(),
                found: version,
                supported,
            });
        }
        if version < supported {
            return Err(StoreError::Unsupported {
                location,
                reason: format!(
                    "its schema {version} predates this prov's ({supported}) and upgrading it needs write access, which prov does not have here; open it once where it is writable"
                ),
            });
        }
        conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Sqlite {
            location,
            path: Some(path.to_path_buf()),
            conn: Mutex::new(conn),
            ids: Mutex::new(IdCache::default()),
            checkpointer: Mutex::new(None),
            codecs: Mutex::new(codec::Codecs::default()),
            dictionary: Mutex::new(None),
            immutable_at: None,
        })
    }

    /// Whether the file, read as immutable, was written since it was
    /// opened (answers read from it may then be wrong).
    pub(crate) fn changed_while_read(&self) -> bool {
        match (&self.immutable_at, &self.path) {
            (Some(then), Some(path)) => FileStamp::of(path).as_ref() != Some(then),
            _ => false,
        }
    }

    /// Asks the checkpointer (started on first need) to copy the log into
    /// the database file once the log has grown past [`CHECKPOINT_AT`].
    fn checkpoint_if_large(&self) {
        let Some(path) = &self.path else { return };
        if std::fs::metadata(beside(path, "-wal")).map_or(0, |m| m.len()) < CHECKPOINT_AT {
            return;
        }
        let mut checkpointer = self.checkpointer.lock().unwrap_or_else(|e| e.into_inner());
        if checkpointer.is_none() {
            *checkpointer = Checkpointer::start(path);
        }
        if let Some(c) = checkpointer.as_ref() {
            c.request();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // Every write is one SQLite transaction; a panic inside one rolls it back
        // when the transaction drops, so the connection stays consistent.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn migrate(&self) -> StoreResult<()> {
        let mut conn = self.lock();
        let supported = MIGRATIONS.len() as i64;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend("begin the schema migration"))?;
        let found: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| StoreError::Open {
                what: "store",
                path: PathBuf::from(&self.location),
                source: e.into(),
            })?;
        if found > supported {
            return Err(StoreError::SchemaTooNew {
                what: "store",
                path: PathBuf::from(&self.location),
                found,
                supported,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            tx.execute_batch(sql)
                .map_err(backend(format!("apply migration {} of the store", i + 1)))?;
        }
        if found < supported {
            tx.pragma_update(None, "user_version", supported)
                .map_err(backend("record the schema version"))?;
        }
        tx.commit().map_err(backend("commit the schema migration"))
    }
}

/// A database's schema version (`user_version`, which prov's migrations
/// set) and how many tables and indexes it holds.
fn schema_of(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row(
        "SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM sqlite_master)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Whether the database is prov's hash cache (its `file_digest` table, and
/// no events): its schema version would otherwise read as a store's.
pub(crate) fn is_hash_cache(conn: &Connection) -> bool {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'file_digest')
            AND NOT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'event')",
        [],
        |r| r.get(0),
    )
    .unwrap_or(false)
}

fn not_a_store(location: &str) -> StoreError {
    StoreError::Unsupported {
        location: location.to_owned(),
        reason: "it is prov's hash cache, not a store (pass the store with --store)".into(),
    }
}

/// The refusal of a database with `tables` of its own and no prov schema.
fn foreign(location: &str, tables: i64, more: &str) -> StoreError {
    StoreError::Unsupported {
        location: location.to_owned(),
        reason: format!(
            "it is a SQLite database of something else ({tables} tables and indexes, none of prov's){more}"
        ),
    }
}

/// What an ingest transaction reads and writes: the transaction, the shared
/// id cache, and the ids it learns.
struct Writer<'t, 'c> {
    tx: &'t rusqlite::Transaction<'t>,
    hot: Hot<'t>,
    cache: &'c IdCache,
    learned: Learned,
    /// The runs this transaction has touched, written at its end (a START
    /// and its COMPLETE in one batch make one row, written once).
    runs: HashMap<String, RunState>,
    /// The last run key given out (keys are given in order of arrival,
    /// under the write lock); read from the store on first need.
    last_run_key: Option<i64>,
    /// Input and output edges this transaction wrote (input?, run key,
    /// version): a COMPLETE repeating its START's inputs writes nothing more.
    edges: std::collections::HashSet<(bool, i64, i64)>,
    /// (run key, identity prefix) of the events this transaction stored for
    /// runs it created: an event of such a run not in here is not stored
    /// yet, without asking the store (one found here is looked up there).
    fresh: std::collections::HashSet<(i64, u64)>,
}

/// The statements an ingest runs for most events, taken from the
/// connection's statement cache once per transaction rather than once per
/// use (each lookup there hashes the SQL text: about a third of a
/// microsecond, a few per event).
struct Hot<'t> {
    find_event: CachedStatement<'t>,
    insert_event: CachedStatement<'t>,
    find_run: CachedStatement<'t>,
    insert_run: CachedStatement<'t>,
    insert_dataset: CachedStatement<'t>,
    insert_version: CachedStatement<'t>,
    insert_input: CachedStatement<'t>,
    insert_output: CachedStatement<'t>,
}

impl<'t> Hot<'t> {
    fn prepare(tx: &'t rusqlite::Transaction<'t>) -> rusqlite::Result<Self> {
        Ok(Hot {
            find_event: tx
                .prepare_cached("SELECT seq FROM event WHERE run IS ?1 AND event_id = ?2")?,
            insert_event: tx.prepare_cached(
                "INSERT INTO event (seq, event_id, raw, codec, link, kind, run_id, run, event_time,
                    received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?,
            find_run: tx.prepare_cached(
                "SELECT id, job_id, state, started_at, ended_at, first_seen, parent_run_id,
                    root_run_id, fingerprint, container_image, container_registry,
                    container_repository, container_tag, container_digest, params_sha256,
                    exit_code, user_name, host
                 FROM run WHERE run_id = ?1",
            )?,
            insert_run: tx.prepare_cached(
                "INSERT INTO run (id, run_id, job_id, state, started_at, ended_at, first_seen,
                    parent_run_id, root_run_id, fingerprint, container_image, container_registry,
                    container_repository, container_tag, container_digest, params_sha256,
                    exit_code, user_name, host)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17, ?18, ?19)",
            )?,
            insert_dataset: tx
                .prepare_cached("INSERT OR IGNORE INTO dataset (namespace, name) VALUES (?1, ?2)")?,
            insert_version: tx.prepare_cached(
                "INSERT OR IGNORE INTO dataset_version (dataset_id, version, digest, size, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?,
            insert_input: tx.prepare_cached(
                "INSERT OR IGNORE INTO run_input (run, version_id, event_time) VALUES (?1, ?2, ?3)",
            )?,
            insert_output: tx.prepare_cached(
                "INSERT OR IGNORE INTO run_output (run, version_id, event_time) VALUES (?1, ?2, ?3)",
            )?,
        })
    }
}

/// The first 64 bits of an event identity (hex), to filter lookups.
fn identity_prefix(event_id: &str) -> Option<u64> {
    event_id
        .get(..16)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
}

impl Writer<'_, '_> {
    fn named(&mut self, table: Named, namespace: &str, name: &str) -> rusqlite::Result<i64> {
        key(&mut self.learned.key, &[table.table(), namespace, name]);
        cached_id(
            &self.cache.named,
            &mut self.learned.named,
            &self.learned.key,
            || upsert_named(self.tx, &mut self.hot, table, namespace, name),
        )
    }

    /// Content-addressed versions (`sha256:`) are cached with what their row
    /// holds: a sighting that would change nothing (not earlier, no digest or
    /// size the row lacks) needs no write. Other versions are upserted every
    /// time.
    fn version(
        &mut self,
        dataset: i64,
        version: &str,
        part: &DatasetPart,
        time: i64,
    ) -> rusqlite::Result<i64> {
        let cacheable = version.starts_with("sha256:");
        if !cacheable {
            return Ok(upsert_version(self.tx, &mut self.hot, dataset, version, part, time)?.id);
        }
        key(&mut self.learned.key, &[&dataset.to_string(), version]);
        // This transaction's knowledge is newer than the shared cache's.
        let known = self
            .learned
            .versions
            .get(&self.learned.key)
            .or_else(|| self.cache.versions.get(&self.learned.key));
        if let Some(known) = known
            && !known.changed_by(part, time)
        {
            return Ok(known.id);
        }
        let known = upsert_version(self.tx, &mut self.hot, dataset, version, part, time)?;
        self.learned
            .versions
            .insert(self.learned.key.clone(), known);
        Ok(known.id)
    }
}

/// The id under `key` in the shared cache or among the ids this transaction
/// learned; otherwise the one `insert` finds or makes, learned.
fn cached_id(
    cache: &HashMap<String, i64>,
    learned: &mut HashMap<String, i64>,
    key: &str,
    insert: impl FnOnce() -> rusqlite::Result<i64>,
) -> rusqlite::Result<i64> {
    if let Some(&id) = cache.get(key).or_else(|| learned.get(key)) {
        return Ok(id);
    }
    let id = insert()?;
    learned.insert(key.to_owned(), id);
    Ok(id)
}

/// The tables of things known by namespace and name.
#[derive(Clone, Copy)]
enum Named {
    Job,
    Dataset,
}

impl Named {
    fn table(self) -> &'static str {
        match self {
            Named::Job => "job",
            Named::Dataset => "dataset",
        }
    }
}

fn upsert_named(
    tx: &rusqlite::Transaction<'_>,
    hot: &mut Hot<'_>,
    table: Named,
    namespace: &str,
    name: &str,
) -> rusqlite::Result<i64> {
    // Insert first: a name not in the id cache is mostly a new one. (OR
    // IGNORE and the row id, rather than RETURNING, which costs SQLite a
    // result table per statement.) Jobs are few: theirs is not kept hot.
    let select = match table {
        Named::Job => "SELECT id FROM job WHERE namespace = ?1 AND name = ?2",
        Named::Dataset => "SELECT id FROM dataset WHERE namespace = ?1 AND name = ?2",
    };
    let inserted = match table {
        Named::Job => tx
            .prepare_cached("INSERT OR IGNORE INTO job (namespace, name) VALUES (?1, ?2)")?
            .execute(params![namespace, name])?,
        Named::Dataset => hot.insert_dataset.execute(params![namespace, name])?,
    };
    if inserted == 1 {
        return Ok(tx.last_insert_rowid());
    }
    tx.prepare_cached(select)?
        .query_row(params![namespace, name], |r| r.get(0))
}

fn upsert_version(
    tx: &rusqlite::Transaction<'_>,
    hot: &mut Hot<'_>,
    dataset: i64,
    version: &str,
    part: &DatasetPart,
    time: i64,
) -> rusqlite::Result<KnownVersion> {
    // Insert first: a version not in the id cache is mostly a new output;
    // one named again (and not content-addressed) is read, and updated only
    // to fill a gap, so that an unchanged row and its indexes are left alone.
    let size = part.size.map(|s| s as i64);
    let inserted =
        hot.insert_version
            .execute(params![dataset, version, part.digest, size, time])?;
    if inserted == 1 {
        return Ok(KnownVersion {
            id: tx.last_insert_rowid(),
            created_at: time,
            digest: part.digest.is_some(),
            size: size.is_some(),
        });
    }
    let (id, digest, stored_size, created): (i64, Option<String>, Option<i64>, i64) = tx
        .prepare_cached(
            "SELECT id, digest, size, created_at FROM dataset_version
             WHERE dataset_id = ?1 AND version = ?2",
        )?
        .query_row(params![dataset, version], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    // A digest or size learned late fills a gap; an earlier sighting moves
    // the creation time back. Nothing else changes.
    let fills =
        (digest.is_none() && part.digest.is_some()) || (stored_size.is_none() && size.is_some());
    if fills || time < created {
        tx.prepare_cached(
            "UPDATE dataset_version SET digest = COALESCE(digest, ?2),
                size = COALESCE(size, ?3), created_at = MIN(created_at, ?4)
             WHERE id = ?1",
        )?
        .execute(params![id, part.digest, size, time])?;
    }
    Ok(KnownVersion {
        id,
        created_at: created.min(time),
        digest: digest.is_some() || part.digest.is_some(),
        size: stored_size.is_some() || size.is_some(),
    })
}

/// The version an input names, or the dataset's latest at `time`.
fn input_version(w: &mut Writer<'_, '_>, part: &DatasetPart, time: i64) -> rusqlite::Result<i64> {
    let dataset = w.named(Named::Dataset, &part.namespace, &part.name)?;
    if let Some(version) = &part.version {
        return w.version(dataset, version, part, time);
    }
    // The version created last by then, a placeholder only if there is no
    // other: two walks of the (dataset, time) index backwards, so the cost
    // does not grow with the dataset's versions. (Which version was
    // *written* last, as a dataset target finds it, would need each
    // version's outputs: a thousand times slower on a dataset of 100,000
    // versions, measured; a version written again keeps its first time here.)
    let mut latest: Option<i64> = None;
    for sql in [
        "SELECT id FROM dataset_version WHERE dataset_id = ?1 AND created_at <= ?2
         AND version <> 'unknown' ORDER BY created_at DESC, id DESC LIMIT 1",
        "SELECT id FROM dataset_version WHERE dataset_id = ?1 AND created_at <= ?2
         ORDER BY created_at DESC, id DESC LIMIT 1",
    ] {
        latest =
            w.tx.prepare_cached(sql)?
                .query_row(params![dataset, time], |r| r.get(0))
                .optional()?;
        if latest.is_some() {
            break;
        }
    }
    match latest {
        Some(id) => Ok(id),
        None => upsert_version(w.tx, &mut w.hot, dataset, "unknown", part, time).map(|k| k.id),
    }
}

/// A run as this transaction leaves it.
struct RunState {
    key: i64,
    job: i64,
    /// The row's values (in `RUN_MERGED` order) now.
    row: Vec<SqlValue>,
    /// As stored before this transaction; `None` for a new run.
    stored: Option<Vec<SqlValue>>,
}

/// The key (`run.id`) of a run, if this transaction or the store knows it
/// (its row is then kept for the transaction).
fn run_key(w: &mut Writer<'_, '_>, run_id: &str) -> rusqlite::Result<Option<i64>> {
    if let Some(state) = w.runs.get(run_id) {
        return Ok(Some(state.key));
    }
    let found: Option<(i64, i64, Vec<SqlValue>)> = w
        .hot
        .find_run
        .query_row([run_id], |r| {
            let row = (2..2 + RUN_MERGED.len())
                .map(|i| r.get(i))
                .collect::<Result<_, _>>()?;
            Ok((r.get(0)?, r.get(1)?, row))
        })
        .optional()?;
    Ok(found.map(|(key, job, row)| {
        w.runs.insert(
            run_id.to_owned(),
            RunState {
                key,
                job,
                stored: Some(row.clone()),
                row,
            },
        );
        key
    }))
}

/// Writes the runs the transaction touched: new ones inserted in key order,
/// known ones updated in the columns that changed.
fn flush_runs(w: &mut Writer<'_, '_>) -> rusqlite::Result<()> {
    let mut runs: Vec<(String, RunState)> = w.runs.drain().collect();
    runs.sort_by_key(|(_, state)| state.key);
    for (run_id, state) in runs {
        match &state.stored {
            Some(stored) => update_run(w.tx, state.key, stored, &state.row)?,
            None => {
                let insert = &mut w.hot.insert_run;
                insert.raw_bind_parameter(1, state.key)?;
                insert.raw_bind_parameter(2, &run_id)?;
                insert.raw_bind_parameter(3, state.job)?;
                for (i, value) in state.row.iter().enumerate() {
                    insert.raw_bind_parameter(i + 4, value)?;
                }
                insert.raw_execute()?;
            }
        }
    }
    Ok(())
}

/// Records a run event's run, inputs and outputs; returns the run's key.
fn apply_run(w: &mut Writer<'_, '_>, run: &RunPart, time: i64) -> rusqlite::Result<i64> {
    let job = w.named(Named::Job, &run.namespace, &run.job)?;
    let state = state_of(&run.event_type);
    let started = matches!(run.event_type, Some(EventType::Start)).then_some(time);
    let ended = run
        .event_type
        .as_ref()
        .is_some_and(EventType::is_terminal)
        .then_some(time);
    let key = match run_key(w, &run.run_id)? {
        Some(key) => {
            if let Some(known) = w.runs.get_mut(&run.run_id) {
                known.row = merged_run(Some(&known.row), run, state, started, ended, time);
            }
            key
        }
        None => {
            let last = match w.last_run_key {
                Some(last) => last,
                None => {
                    w.tx.query_row("SELECT COALESCE(MAX(id), 0) FROM run", [], |r| r.get(0))?
                }
            };
            w.last_run_key = Some(last + 1);
            w.runs.insert(
                run.run_id.clone(),
                RunState {
                    key: last + 1,
                    job,
                    row: merged_run(None, run, state, started, ended, time),
                    stored: None,
                },
            );
            last + 1
        }
    };
    for input in &run.inputs {
        let version = input_version(w, input, time)?;
        if w.edges.insert((true, key, version)) {
            w.hot.insert_input.execute(params![key, version, time])?;
        }
    }
    for output in &run.outputs {
        let dataset = w.named(Named::Dataset, &output.namespace, &output.name)?;
        let version = output
            .version
            .clone()
            .unwrap_or_else(|| format!("run:{}", run.run_id));
        let version = w.version(dataset, &version, output, time)?;
        if w.edges.insert((false, key, version)) {
            w.hot.insert_output.execute(params![key, version, time])?;
        }
    }
    Ok(key)
}

/// The run columns merged across events, in the order of the row's values.
const RUN_MERGED: [&str; 16] = [
    "state",
    "started_at",
    "ended_at",
    "first_seen",
    "parent_run_id",
    "root_run_id",
    "fingerprint",
    "container_image",
    "container_registry",
    "container_repository",
    "container_tag",
    "container_digest",
    "params_sha256",
    "exit_code",
    "user_name",
    "host",
];

/// A run's row after one more event (`stored` is the row before it, `None`
/// for a new run). The rules: a terminal state sticks; the first start and
/// end times stay; first_seen is the earliest; any other value an event
/// carries replaces the stored one.
fn merged_run(
    stored: Option<&[SqlValue]>,
    run: &RunPart,
    state: Option<&'static str>,
    started: Option<i64>,
    ended: Option<i64>,
    time: i64,
) -> Vec<SqlValue> {
    let text = |v: &Option<String>| v.clone().map_or(SqlValue::Null, SqlValue::Text);
    let int = |v: Option<i64>| v.map_or(SqlValue::Null, SqlValue::Integer);
    let old = |i: usize| stored.map_or(SqlValue::Null, |row| row[i].clone());
    let c = &run.columns;
    let terminal =
        matches!(old(0), SqlValue::Text(s) if ["COMPLETE", "FAIL", "ABORT"].contains(&s.as_str()));
    let mut row = Vec::with_capacity(RUN_MERGED.len());
    row.push(match state {
        Some(s) if !terminal => SqlValue::Text(s.to_owned()),
        _ => old(0),
    });
    for (i, new) in [(1, started), (2, ended)] {
        row.push(match old(i) {
            SqlValue::Null => int(new),
            kept => kept,
        });
    }
    row.push(match old(3) {
        SqlValue::Integer(first) if first <= time => SqlValue::Integer(first),
        _ => SqlValue::Integer(time),
    });
    let later = [
        text(&c.parent_run_id),
        text(&c.root_run_id),
        text(&c.fingerprint),
        text(&c.container_image),
        text(&c.container_registry),
        text(&c.container_repository),
        text(&c.container_tag),
        text(&c.container_digest),
        text(&c.params_sha256),
        int(c.exit_code),
        text(&c.user),
        text(&c.host),
    ];
    for (i, new) in later.into_iter().enumerate() {
        row.push(match new {
            SqlValue::Null => old(4 + i),
            value => value,
        });
    }
    row
}

/// Writes only the columns whose value changes, so that the indexes over
/// unchanged columns are not touched.
fn update_run(
    tx: &rusqlite::Transaction<'_>,
    key: i64,
    stored: &[SqlValue],
    wanted: &[SqlValue],
) -> rusqlite::Result<()> {
    let mut sets = Vec::new();
    let mut values: Vec<&SqlValue> = Vec::new();
    for ((column, now), then) in RUN_MERGED.iter().zip(wanted).zip(stored) {
        if now != then {
            values.push(now);
            sets.push(format!("{column} = ?{}", values.len() + 1));
        }
    }
    if sets.is_empty() {
        return Ok(());
    }
    let sql = format!("UPDATE run SET {} WHERE id = ?1", sets.join(", "));
    let mut stmt = tx.prepare_cached(&sql)?;
    stmt.raw_bind_parameter(1, key)?;
    for (i, value) in values.into_iter().enumerate() {
        stmt.raw_bind_parameter(i + 2, value)?;
    }
    stmt.raw_execute().map(drop)
}

const RUN_COLUMNS: &str = "r.run_id, j.namespace, j.name, r.state, r.started_at, r.ended_at, r.parent_run_id,
    r.root_run_id, r.fingerprint, r.container_image, r.container_digest, r.params_sha256, r.exit_code,
    r.user_name, r.host";

fn run_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        run_id: row.get(0)?,
        namespace: row.get(1)?,
        job: row.get(2)?,
        state: row.get(3)?,
        started_at: row.get(4)?,
        ended_at: row.get(5)?,
        parent_run_id: row.get(6)?,
        root_run_id: row.get(7)?,
        fingerprint: row.get(8)?,
        container_image: row.get(9)?,
        container_digest: row.get(10)?,
        params_sha256: row.get(11)?,
        exit_code: row.get(12)?,
        user: row.get(13)?,
        host: row.get(14)?,
    })
}

impl Sqlite {
    fn ids(
        &self,
        sql: &str,
        key: &dyn rusqlite::ToSql,
        as_of: Option<i64>,
    ) -> StoreResult<Vec<i64>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(sql).map_err(backend("query lineage"))?;
        let rows = stmt
            .query_map(params![key, as_of], |r| r.get(0))
            .map_err(backend("query lineage"))?;
        rows.collect::<Result<_, _>>()
            .map_err(backend("query lineage"))
    }

    /// The bytes received of stored events (seq, codec, stored bytes).
    fn decode_all(
        &self,
        conn: &Connection,
        stored: Vec<(i64, i64, Vec<u8>)>,
    ) -> StoreResult<Vec<(i64, Vec<u8>)>> {
        let mut codecs = self.codecs.lock().unwrap_or_else(|e| e.into_inner());
        stored
            .into_iter()
            .map(|(seq, codec, bytes)| {
                if codec == 0 {
                    return Ok((seq, bytes));
                }
                match codecs.decode(conn, codec, &bytes) {
                    Ok(raw) => Ok((seq, raw.into_owned())),
                    Err(reason) => Err(StoreError::Integrity {
                        location: self.location.clone(),
                        reason: format!("event {seq} cannot be read back: {reason}"),
                    }),
                }
            })
            .collect()
    }

    fn run_ids(&self, sql: &str, version: i64, as_of: Option<i64>) -> StoreResult<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(sql).map_err(backend("query lineage"))?;
        let rows = stmt
            .query_map(params![version, as_of], |r| r.get(0))
            .map_err(backend("query lineage"))?;
        rows.collect::<Result<_, _>>()
            .map_err(backend("query lineage"))
    }
}

/// The rows of a derived table by natural key, in the byte order of the keys
/// (SQLite compares text with memcmp, as Rust does; NULLs first), with the
/// columns of `Table::columns`. An event's run is read through `event.run`,
/// as the queries read it, and set against the `run_id` kept beside it.
fn table_sql(table: Table) -> &'static str {
    match table {
        Table::Event => {
            "SELECT e.seq, e.event_id, e.kind,
                CASE WHEN r.run_id IS e.run_id THEN r.run_id
                     ELSE 'run ' || ifnull(r.run_id, 'NULL') || ' beside run_id '
                          || ifnull(e.run_id, 'NULL') END,
                e.event_time
             FROM event e LEFT JOIN run r ON r.id = e.run ORDER BY e.seq"
        }
        Table::Job => "SELECT namespace, name FROM job ORDER BY namespace, name",
        Table::Run => {
            "SELECT r.run_id, j.namespace, j.name, r.state, r.started_at, r.ended_at,
                r.first_seen, r.parent_run_id, r.root_run_id, r.fingerprint, r.container_image,
                r.container_registry, r.container_repository, r.container_tag,
                r.container_digest, r.params_sha256, r.exit_code, r.user_name, r.host
             FROM run r LEFT JOIN job j ON j.id = r.job_id ORDER BY r.run_id"
        }
        Table::Dataset => "SELECT namespace, name FROM dataset ORDER BY namespace, name",
        Table::DatasetVersion => {
            "SELECT d.namespace, d.name, v.version, v.digest, v.size, v.created_at,
                ROW_NUMBER() OVER (PARTITION BY v.dataset_id ORDER BY v.id)
             FROM dataset_version v LEFT JOIN dataset d ON d.id = v.dataset_id
             ORDER BY d.namespace, d.name, v.version"
        }
        Table::RunInput => {
            "SELECT r.run_id, d.namespace, d.name, v.version, i.event_time
             FROM run_input i LEFT JOIN run r ON r.id = i.run
                LEFT JOIN dataset_version v ON v.id = i.version_id
                LEFT JOIN dataset d ON d.id = v.dataset_id
             ORDER BY 1, 2, 3, 4"
        }
        Table::RunOutput => {
            "SELECT r.run_id, d.namespace, d.name, v.version, o.event_time
             FROM run_output o LEFT JOIN run r ON r.id = o.run
                LEFT JOIN dataset_version v ON v.id = o.version_id
                LEFT JOIN dataset d ON d.id = v.dataset_id
             ORDER BY 1, 2, 3, 4"
        }
    }
}

impl Backend for Sqlite {
    fn changed_while_read(&self) -> bool {
        Sqlite::changed_while_read(self)
    }

    fn dictionary(&self) -> Option<Arc<codec::Dictionary>> {
        self.dictionary
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn ingest(
        &self,
        batch: &mut dyn Iterator<Item = StoreResult<Prepared>>,
        spent: &mut dyn FnMut(Prepared),
    ) -> StoreResult<Vec<Outcome>> {
        let mut conn = self.lock();
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        let mut codecs = self.codecs.lock().unwrap_or_else(|e| e.into_inner());
        // The transaction's own scope, so that the connection is free again
        // for the dictionary's training after it.
        let (outcomes, seq) = {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend("begin a write to the store"))?;
            // Taken out for the transaction; a failed write leaves the cache empty
            // (cold, never wrong).
            let mut snapshot = std::mem::take(&mut *ids);
            let scratch = std::mem::take(&mut snapshot.scratch);
            // The writer borrows the transaction (its statements are the
            // connection's): it ends before the commit.
            let (outcomes, seq, mut learned, runs, mut edges, mut fresh) = {
                let hot = Hot::prepare(&tx).map_err(backend("prepare the store's writes"))?;
                let mut w = Writer {
                    tx: &tx,
                    hot,
                    cache: &snapshot,
                    learned: scratch.learned,
                    runs: scratch.runs,
                    last_run_key: None,
                    edges: scratch.edges,
                    fresh: scratch.fresh,
                };
                let received = now_micros();
                let (mut seq, mut previous): (u64, String) =
                    w.tx.query_row(
                        "SELECT seq, link FROM event ORDER BY seq DESC LIMIT 1",
                        [],
                        |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
                    )
                    .optional()
                    .map_err(backend("read the chain head"))?
                    .unwrap_or((0, chain::GENESIS.to_owned()));
                codecs
                    .load_writer(w.tx)
                    .map_err(backend("read the store's compression dictionary"))?;
                let mut outcomes = Vec::new();
                for prepared in batch {
                    // An error drops the transaction, which rolls it back.
                    let prepared = prepared?;
                    let event = &prepared;
                    // The same event has the same run: it is looked for among
                    // the events of its run (or of no run), under the write lock.
                    let run = match &event.body {
                        Body::Run(run) => run_key(&mut w, &run.run_id)
                            .map_err(backend("look for an earlier copy of an event"))?,
                        _ => None,
                    };
                    let prefix = identity_prefix(&event.event_id);
                    let fresh_run = match (&event.body, run) {
                        (Body::Run(part), Some(key)) => w
                            .runs
                            .get(&part.run_id)
                            .filter(|state| state.stored.is_none())
                            .map(|_| key),
                        _ => None,
                    };
                    let unseen = match (fresh_run, prefix) {
                        (Some(key), Some(prefix)) => !w.fresh.contains(&(key, prefix)),
                        _ => false,
                    };
                    let earlier: Option<i64> = if unseen {
                        None // a run this transaction created, and not this event
                    } else if run.is_some() || event.run_id.is_none() {
                        w.hot
                            .find_event
                            .query_row(params![run, event.event_id], |r| r.get(0))
                            .optional()
                            .map_err(backend("look for an earlier copy of an event"))?
                    } else {
                        None // a run not seen before: a new event
                    };
                    if let Some(earlier) = earlier {
                        outcomes.push(Outcome::Duplicate {
                            seq: earlier as u64,
                        });
                        spent(prepared);
                        continue;
                    }
                    seq += 1;
                    let run = match &event.body {
                        Body::Run(run) => apply_run(&mut w, run, event.time).map(Some),
                        Body::Dataset(part) => w
                            .named(Named::Dataset, &part.namespace, &part.name)
                            .and_then(|id| match &part.version {
                                Some(v) => w.version(id, v, part, event.time).map(drop),
                                None => Ok(()),
                            })
                            .map(|()| None),
                        Body::Job { namespace, name } => {
                            w.named(Named::Job, namespace, name).map(|_| None)
                        }
                    }
                    .map_err(backend(format!("record event {seq} in the lineage model")))?;
                    let link = chain::link_with_content(&previous, seq, &event.content);
                    let (codec, stored) = match &event.packed {
                        // Compressed ahead with a dictionary this store holds.
                        Some((codec, packed)) => (*codec, Cow::Borrowed(packed.as_slice())),
                        None => codecs.encode(&event.raw),
                    };
                    w.hot
                        .insert_event
                        .execute(params![
                            seq as i64,
                            event.event_id,
                            stored.as_ref(),
                            codec,
                            link,
                            event.kind,
                            event.run_id,
                            run,
                            event.time,
                            received
                        ])
                        .map_err(backend("append an event"))?;
                    if let (Some(key), Some(prefix)) = (run, prefix)
                        && w.runs
                            .get(event.run_id.as_deref().unwrap_or_default())
                            .is_some_and(|s| s.stored.is_none())
                    {
                        w.fresh.insert((key, prefix));
                    }
                    previous = link;
                    outcomes.push(Outcome::Stored { seq });
                    spent(prepared);
                }
                flush_runs(&mut w).map_err(backend("record the batch's runs"))?;
                let Writer {
                    learned,
                    runs,
                    edges,
                    fresh,
                    ..
                } = w;
                (outcomes, seq, learned, runs, edges, fresh)
            };
            let committed = tx.commit();
            // The cache goes back whatever happened; new ids only if committed.
            *ids = snapshot;
            if committed.is_ok() {
                ids.named.extend(learned.named.drain());
                ids.versions.extend(learned.versions.drain());
                if ids.named.len() + ids.versions.len() > ID_CACHE_LIMIT {
                    ids.named.clear();
                    ids.versions.clear();
                }
            }
            learned.named.clear();
            learned.versions.clear();
            edges.clear();
            fresh.clear();
            ids.scratch = Scratch {
                learned,
                runs, // drained by flush_runs
                edges,
                fresh,
            };
            committed.map_err(backend("commit a write to the store"))?;
            (outcomes, seq)
        };
        if codecs.wants_training(seq) {
            // Once per store, in a write of its own: the events are stored
            // whether or not a dictionary can be made from them.
            let trained = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .and_then(|tx| {
                    codecs.train(&tx, seq)?;
                    tx.commit()
                });
            if trained.is_err() {
                codecs.forget_writer();
            }
        }
        // Committed (loaded from the store, or trained and committed above).
        *self.dictionary.lock().unwrap_or_else(|e| e.into_inner()) = codecs.dictionary();
        self.checkpoint_if_large();
        Ok(outcomes)
    }

    fn walk_chain(&self, visit: &mut dyn FnMut(u64, &[u8], &str) -> bool) -> StoreResult<()> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT seq, raw, link, codec FROM event ORDER BY seq")
            .map_err(backend("read the event log"))?;
        let mut codecs = self.codecs.lock().unwrap_or_else(|e| e.into_inner());
        let mut rows = stmt.query([]).map_err(backend("read the event log"))?;
        while let Some(row) = rows.next().map_err(backend("read the event log"))? {
            // Columns are read leniently: a value of the wrong type (an
            // altered row) cannot match its link, and is reported as a break
            // at its position rather than as an error reading the log.
            let seq = row
                .get_ref(0)
                .map_err(backend("read the event log"))?
                .as_i64()
                .ok()
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(0);
            let bytes = |i: usize| -> StoreResult<&[u8]> {
                Ok(
                    match row.get_ref(i).map_err(backend("read the event log"))? {
                        rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                            b
                        }
                        _ => &[],
                    },
                )
            };
            let raw = bytes(1)?;
            let link = String::from_utf8_lossy(bytes(2)?);
            let codec = row
                .get_ref(3)
                .map_err(backend("read the event log"))?
                .as_i64()
                .unwrap_or(-1);
            // Bytes that cannot be read back (an altered codec or bytes that
            // do not decompress) are checked as nothing, which cannot match
            // the link: the position is reported altered, since no command
            // could read that event. (Checking the stored bytes instead
            // passed plain bytes whose codec had been altered.)
            let raw = codecs
                .decode(&conn, codec, raw)
                .unwrap_or(Cow::Borrowed(&[]));
            if !visit(seq, &raw, &link) {
                break;
            }
        }
        Ok(())
    }

    fn walk_table(&self, table: Table, visit: &mut dyn FnMut(Row) -> bool) -> StoreResult<()> {
        let context = "read the derived tables";
        let conn = self.lock();
        let mut stmt = conn.prepare(table_sql(table)).map_err(backend(context))?;
        let (keys, values) = table.columns();
        let mut rows = stmt.query([]).map_err(backend(context))?;
        while let Some(row) = rows.next().map_err(backend(context))? {
            // Read leniently, as text: a value of the wrong type (an altered
            // row) is a difference to report, not an error.
            let text = |i: usize| -> StoreResult<Option<String>> {
                Ok(match row.get_ref(i).map_err(backend(context))? {
                    rusqlite::types::ValueRef::Null => None,
                    rusqlite::types::ValueRef::Integer(n) if table == Table::Event && i == 0 => {
                        crate::tables::seq_key(n)
                    }
                    rusqlite::types::ValueRef::Integer(n) => Some(n.to_string()),
                    rusqlite::types::ValueRef::Real(x) => Some(x.to_string()),
                    rusqlite::types::ValueRef::Text(b) => Some(String::from_utf8_lossy(b).into()),
                    rusqlite::types::ValueRef::Blob(b) => {
                        Some(format!("x'{}'", provenance_core::hex(b)))
                    }
                })
            };
            let row = Row {
                key: (0..keys.len()).map(text).collect::<StoreResult<_>>()?,
                values: (keys.len()..keys.len() + values.len())
                    .map(text)
                    .collect::<StoreResult<_>>()?,
            };
            if !visit(row) {
                break;
            }
        }
        Ok(())
    }

    fn head(&self) -> StoreResult<Option<(u64, String)>> {
        self.lock()
            .query_row(
                "SELECT seq, link FROM event ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .optional()
            .map_err(backend("read the chain head"))
    }

    fn start(&self, target: &Target, as_of: Option<i64>) -> StoreResult<Start> {
        let cutoff = as_of.unwrap_or(i64::MAX);
        let conn = self.lock();
        let q = backend("find the target");
        let found = match target {
            Target::Digest(hex) => {
                let mut stmt = conn
                    .prepare_cached(VERSIONS_BY_DIGEST)
                    .map_err(backend("find the target"))?;
                let ids = stmt
                    .query_map(params![hex, cutoff], |r| r.get(0))
                    .and_then(|rows| rows.collect::<Result<Vec<i64>, _>>())
                    .map_err(q)?;
                Start::Versions(ids)
            }
            Target::Version {
                namespace,
                name,
                version,
            } => {
                let id: Option<i64> = conn
                    .prepare_cached(
                        "SELECT v.id FROM dataset_version v JOIN dataset d ON d.id = v.dataset_id
                         WHERE d.namespace = ?1 AND d.name = ?2 AND v.version = ?3 AND v.created_at <= ?4",
                    )
                    .and_then(|mut s| s.query_row(params![namespace, name, version, cutoff], |r| r.get(0)).optional())
                    .map_err(q)?;
                Start::Versions(id.into_iter().collect())
            }
            Target::Dataset { namespace, name } => {
                let id: Option<i64> = conn
                    .prepare_cached(
                        "SELECT v.id FROM dataset_version v JOIN dataset d ON d.id = v.dataset_id
                         WHERE d.namespace = ?1 AND d.name = ?2 AND v.created_at <= ?3
                         ORDER BY v.version = 'unknown',
                            COALESCE((SELECT MAX(o.event_time) FROM run_output o
                                      WHERE o.version_id = v.id AND o.event_time <= ?3),
                                     v.created_at) DESC, v.id DESC LIMIT 1",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![namespace, name, cutoff], |r| r.get(0))
                            .optional()
                    })
                    .map_err(q)?;
                Start::Versions(id.into_iter().collect())
            }
            Target::Run(id) => {
                let exists: Option<String> = conn
                    .prepare_cached("SELECT run_id FROM run WHERE run_id = ?1 AND first_seen <= ?2")
                    .and_then(|mut s| s.query_row(params![id, cutoff], |r| r.get(0)).optional())
                    .map_err(q)?;
                Start::Runs(exists.into_iter().collect())
            }
            Target::Job { namespace, name } => {
                let latest: Option<String> = conn
                    .prepare_cached(
                        "SELECT r.run_id FROM run r JOIN job j ON j.id = r.job_id
                         WHERE j.namespace = ?1 AND j.name = ?2 AND r.first_seen <= ?3
                         ORDER BY r.first_seen DESC LIMIT 1",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![namespace, name, cutoff], |r| r.get(0))
                            .optional()
                    })
                    .map_err(q)?;
                Start::Runs(latest.into_iter().collect())
            }
        };
        Ok(found)
    }

    fn version(&self, id: i64) -> StoreResult<VersionRecord> {
        self.lock()
            .prepare_cached(
                "SELECT d.namespace, d.name, v.version, v.digest, v.size, v.created_at
                 FROM dataset_version v JOIN dataset d ON d.id = v.dataset_id WHERE v.id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok(VersionRecord {
                        namespace: r.get(0)?,
                        name: r.get(1)?,
                        version: r.get(2)?,
                        digest: r.get(3)?,
                        size: r.get::<_, Option<i64>>(4)?.map(|s| s as u64),
                        created_at: r.get(5)?,
                    })
                })
            })
            .map_err(backend("read a dataset version"))
    }

    fn run(&self, run_id: &str) -> StoreResult<Option<RunRecord>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM run r JOIN job j ON j.id = r.job_id WHERE r.run_id = ?1"
        );
        self.lock()
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row([run_id], run_record).optional())
            .map_err(backend("read a run"))
    }

    fn run_events(&self, run_id: &str, as_of: Option<i64>) -> StoreResult<Vec<Vec<u8>>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, codec, raw FROM event
                 WHERE run = (SELECT id FROM run WHERE run_id = ?1)
                   AND (?2 IS NULL OR event_time <= ?2) ORDER BY seq",
            )
            .map_err(backend("read a run's events"))?;
        let stored = stmt
            .query_map(params![run_id, as_of], |r| {
                Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get::<_, Vec<u8>>(2)?))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(backend("read a run's events"))?;
        let raws = self.decode_all(&conn, stored)?;
        Ok(raws.into_iter().map(|(_, raw)| raw).collect())
    }

    fn producers(&self, version: i64, as_of: Option<i64>) -> StoreResult<Vec<String>> {
        self.run_ids(
            "SELECT r.run_id FROM run_output o JOIN run r ON r.id = o.run
             WHERE o.version_id = ?1 AND (?2 IS NULL OR o.event_time <= ?2) ORDER BY r.run_id",
            version,
            as_of,
        )
    }

    fn consumers(&self, version: i64, as_of: Option<i64>) -> StoreResult<Vec<String>> {
        self.run_ids(
            "SELECT r.run_id FROM run_input i JOIN run r ON r.id = i.run
             WHERE i.version_id = ?1 AND (?2 IS NULL OR i.event_time <= ?2) ORDER BY r.run_id",
            version,
            as_of,
        )
    }

    fn inputs(&self, run: &str, as_of: Option<i64>) -> StoreResult<Vec<i64>> {
        self.ids(
            "SELECT version_id FROM run_input WHERE run = (SELECT id FROM run WHERE run_id = ?1)
             AND (?2 IS NULL OR event_time <= ?2) ORDER BY version_id",
            &run,
            as_of,
        )
    }

    fn outputs(&self, run: &str, as_of: Option<i64>) -> StoreResult<Vec<i64>> {
        self.ids(
            "SELECT version_id FROM run_output WHERE run = (SELECT id FROM run WHERE run_id = ?1)
             AND (?2 IS NULL OR event_time <= ?2) ORDER BY version_id",
            &run,
            as_of,
        )
    }

    fn runs(&self, filter: &RunFilter, page: Page) -> StoreResult<Paged<RunRecord>> {
        let mut clauses: Vec<&str> = Vec::new();
        let mut values: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        let mut add = |clause: &'static str, value: Option<Box<dyn rusqlite::ToSql>>| {
            if let Some(v) = value {
                clauses.push(clause);
                values.push(v);
            }
        };
        let text = |v: &Option<String>| v.clone().map(|s| Box::new(s) as Box<dyn rusqlite::ToSql>);
        add("j.namespace = ?", text(&filter.namespace));
        add("j.name = ?", text(&filter.job));
        add("COALESCE(r.state, 'OTHER') = ?", text(&filter.state));
        add("r.first_seen >= ?", filter.since.map(|t| Box::new(t) as _));
        add("r.first_seen < ?", filter.until.map(|t| Box::new(t) as _));
        add("r.user_name = ?", text(&filter.user));
        add("r.host = ?", text(&filter.host));
        add("r.container_digest = ?", text(&filter.container_digest));
        add(
            "r.container_digest LIKE ?",
            filter
                .container_digest_prefix
                .as_ref()
                .map(|p| Box::new(format!("{p}%")) as _),
        );
        add(
            "(r.container_registry = ? OR r.container_registry IS NULL)",
            text(&filter.container_registry),
        );
        add(
            "r.container_repository = ?",
            text(&filter.container_repository),
        );
        add("r.container_tag = ?", text(&filter.container_tag));
        if let Some(fingerprint) = &filter.fingerprint {
            clauses.push(RUNS_BY_FINGERPRINT);
            values.push(Box::new(fingerprint.clone()));
            values.push(Box::new(fingerprint.clone()));
        }
        if filter.unpinned {
            clauses.push("r.container_image IS NOT NULL AND r.container_digest IS NULL");
        }
        let where_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let conn = self.lock();
        let q = backend("list runs");
        let refs: Vec<&dyn rusqlite::ToSql> = values.iter().map(|v| v.as_ref()).collect();
        let total: i64 = conn
            .query_row(
                &format!("SELECT COUNT(*) FROM run r JOIN job j ON j.id = r.job_id {where_sql}"),
                refs.as_slice(),
                |r| r.get(0),
            )
            .map_err(backend("count runs"))?;
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM run r JOIN job j ON j.id = r.job_id {where_sql}
             ORDER BY r.first_seen DESC, r.run_id LIMIT {} OFFSET {}",
            page.limit.min(i64::MAX as u64),
            page.offset.min(i64::MAX as u64)
        );
        let mut stmt = conn.prepare(&sql).map_err(backend("list runs"))?;
        let items = stmt
            .query_map(refs.as_slice(), run_record)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(q)?;
        Ok(Paged {
            items,
            total: total as u64,
            offset: page.offset,
            limit: page.limit,
        })
    }

    fn events_after(&self, seq: u64, limit: u64) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, codec, raw FROM event WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(backend("read events"))?;
        let stored = stmt
            .query_map(
                params![
                    seq.min(i64::MAX as u64) as i64,
                    limit.min(i64::MAX as u64) as i64
                ],
                |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get::<_, Vec<u8>>(2)?)),
            )
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(backend("read events"))?;
        Ok(self
            .decode_all(&conn, stored)?
            .into_iter()
            .map(|(seq, raw)| (seq as u64, raw))
            .collect())
    }

    fn events(&self, page: Page) -> StoreResult<Paged<(u64, Vec<u8>)>> {
        let conn = self.lock();
        let total: i64 = conn
            .query_row("SELECT COUNT(*) FROM event", [], |r| r.get(0))
            .map_err(backend("count events"))?;
        let mut stmt = conn
            .prepare_cached("SELECT seq, codec, raw FROM event ORDER BY seq LIMIT ?1 OFFSET ?2")
            .map_err(backend("read events"))?;
        let stored = stmt
            .query_map(
                params![
                    page.limit.min(i64::MAX as u64) as i64,
                    page.offset.min(i64::MAX as u64) as i64
                ],
                |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get::<_, Vec<u8>>(2)?)),
            )
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(backend("read events"))?;
        let items = self
            .decode_all(&conn, stored)?
            .into_iter()
            .map(|(seq, raw)| (seq as u64, raw))
            .collect();
        Ok(Paged {
            items,
            total: total as u64,
            offset: page.offset,
            limit: page.limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{RUNS_BY_FINGERPRINT, Sqlite, VERSIONS_BY_DIGEST, key};

    /// The lookups by digest and fingerprint must name the indexed
    /// expression exactly, or SQLite scans the whole table instead.
    #[test]
    fn digest_and_fingerprint_lookups_use_their_prefix_indexes() {
        let store = Sqlite::open(None).unwrap();
        let conn = store.lock();
        let plan = |sql: &str, values: &[&dyn rusqlite::ToSql]| -> String {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = stmt.query_map(values, |r| r.get::<_, String>(3)).unwrap();
            rows.collect::<Result<Vec<_>, _>>().unwrap().join("; ")
        };
        let hex = "ab".repeat(32);
        let by_digest = plan(VERSIONS_BY_DIGEST, &[&hex, &0i64]);
        assert!(
            by_digest.contains("USING INDEX version_digest"),
            "{by_digest}"
        );
        let by_fingerprint = plan(
            &format!("SELECT r.id FROM run r WHERE {RUNS_BY_FINGERPRINT}"),
            &[&hex, &hex],
        );
        assert!(
            by_fingerprint.contains("USING INDEX run_fingerprint"),
            "{by_fingerprint}"
        );
    }

    #[test]
    fn id_cache_keys_of_different_parts_differ() {
        let (mut a, mut b) = (String::new(), String::new());
        key(&mut a, &["dataset", "a\0b", "c"]);
        key(&mut b, &["dataset", "a", "b\0c"]);
        assert_ne!(a, b);
        key(&mut a, &["dataset", "ab", ""]);
        key(&mut b, &["dataset", "a", "b"]);
        assert_ne!(a, b);
        key(&mut b, &["dataset", "ab", ""]);
        assert_eq!(a, b);
    }
}
