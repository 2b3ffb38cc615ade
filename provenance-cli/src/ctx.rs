//! What every command may need, resolved once from the global options: the
//! store (opened on first use), the hash cache, and where spools live.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use provenance_core::hash::{CacheError, CachedDigest, FileKey, HashCache};
use provenance_store::{SqliteHashCache, Store, redact};

/// Opens an existing store: a missing SQLite file is an error rather than a
/// new empty store.
pub fn open_existing(location: &str) -> anyhow::Result<Store> {
    lasting(location)?;
    let is_path = !location.contains("://");
    let path = std::path::Path::new(location);
    if is_path && !path.exists() {
        anyhow::bail!(
            "no store at {location} (record something with `prov run` or `prov ingest`, or pass --store)"
        );
    }
    if !is_path
        && !provenance_store::holds_store(location)
            .with_context(|| format!("open the store {}", redact(location)))?
    {
        anyhow::bail!(
            "no prov store in the database {} (record something with `prov run` or `prov ingest` there first, or check the name)",
            redact(location)
        );
    }
    if is_path && path.is_file() && path.metadata().is_ok_and(|m| m.len() == 0) {
        anyhow::bail!("{location} is an empty file, not a prov store (pass --store)");
    }
    // Where prov may not write (an archived copy, a read-only mount), the
    // store is read as it is.
    let writable =
        |p: &std::path::Path| nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok();
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let opened = if is_path && !(writable(path) && writable(folder)) {
        // Another user's store (an auditor reading a pipeline's) is read
        // without leaving files of ours beside it, which would lock its
        // owner out.
        use std::os::unix::fs::MetadataExt;
        let owner = path.metadata().map(|m| m.uid()).ok();
        match owner != Some(nix::unistd::geteuid().as_raw()) {
            true => Store::open_read_only_as_guest(location),
            false => Store::open_read_only(location),
        }
    } else {
        Store::open(location)
    };
    opened.with_context(|| format!("open the store {}", redact(location)))
}

/// When the store's `-wal` or `-shm` beside it belongs to another user and
/// this one cannot write it (left by another user's read, say): what to do,
/// for the error that SQLite gives as only "readonly database".
pub fn foreign_log_files(path: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    let foreign: Vec<String> = ["-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            let file = PathBuf::from(file);
            let meta = file.metadata().ok()?;
            let blocked = meta.uid() != me
                && nix::unistd::access(&file, nix::unistd::AccessFlags::W_OK).is_err();
            blocked.then(|| format!("{} (owned by uid {})", file.display(), meta.uid()))
        })
        .collect();
    (!foreign.is_empty()).then(|| {
        format!(
            "{} cannot be written by this user: another user's prov opened the store while it was at rest; once no prov uses the store, remove {} (they hold nothing the store file lacks)",
            foreign.join(" and "),
            if foreign.len() == 1 { "it" } else { "them" }
        )
    })
}

/// Refuses a store location whose events would vanish when the command
/// ends: SQLite keeps an empty name or `:memory:` (and `file:` names asking
/// for memory) in memory, so an unset `PROV_STORE=$STORE` would record
/// nothing and report success.
fn lasting(location: &str) -> anyhow::Result<()> {
    let trimmed = location.trim();
    if trimmed.is_empty() {
        anyhow::bail!(
            "the store location is empty (set --store or PROV_STORE to a file or a postgres:// URL)"
        );
    }
    if trimmed == ":memory:" || trimmed.starts_with("file:") {
        anyhow::bail!(
            "the store location {location:?} would be kept in memory and lost when prov exits (give a file path or a postgres:// URL)"
        );
    }
    Ok(())
}

/// The resolved global options.
pub struct Ctx {
    store_location: String,
}

impl Ctx {
    pub fn new(store_location: String) -> Self {
        Ctx { store_location }
    }

    /// The `--store` location as given.
    pub fn store_location(&self) -> &str {
        &self.store_location
    }

    /// Opens (creating if needed) the store named by `--store`.
    pub fn store(&self) -> anyhow::Result<Store> {
        lasting(&self.store_location)?;
        Store::open(&self.store_location)
            .with_context(|| format!("open the store {}", redact(&self.store_location)))
    }

    /// Opens an existing store for reading; a missing file is an error rather
    /// than a new empty store.
    pub fn existing_store(&self) -> anyhow::Result<Store> {
        open_existing(&self.store_location)
    }

    /// The user's hash cache, if it can be opened (a warning otherwise).
    pub fn hash_cache(&self) -> Option<Arc<dyn HashCache>> {
        let path =
            crate::cmd::hash_cache_from_env().or_else(crate::cmd::hash::default_cache_path)?;
        match SqliteHashCache::open(&path) {
            Ok(cache) => Some(Arc::new(WarnOnce {
                cache,
                off: AtomicBool::new(false),
            })),
            Err(e) => {
                eprintln!("prov: warning: the hash cache is off for this run: {e}");
                None
            }
        }
    }

    /// Where HTTP transports keep undelivered events.
    pub fn spool_dir(&self) -> PathBuf {
        if let Some(dir) = std::env::var_os("PROV_SPOOL_DIR") {
            return PathBuf::from(dir);
        }
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("prov").join("spool")
    }
}

/// The hash cache of `prov run`, `verify` and `rerun`: its first failure (a
/// cache another program holds locked, a broken file) is reported once, and
/// the command then goes on without it rather than wait on it per file.
struct WarnOnce {
    cache: SqliteHashCache,
    off: AtomicBool,
}

impl WarnOnce {
    fn failed(&self, error: &CacheError) {
        if !self.off.swap(true, Ordering::Relaxed) {
            let message = crate::cmd::with_causes(error);
            eprintln!("prov: warning: {message}; hashing goes on without the cache");
        }
    }
}

impl HashCache for WarnOnce {
    fn get(&self, key: &FileKey) -> Result<Option<CachedDigest>, CacheError> {
        if self.off.load(Ordering::Relaxed) {
            return Ok(None);
        }
        self.cache.get(key).or_else(|e| {
            self.failed(&e);
            Ok(None)
        })
    }

    fn put(&self, key: &FileKey, digest: &CachedDigest) -> Result<(), CacheError> {
        if self.off.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.cache.put(key, digest).or_else(|e| {
            self.failed(&e);
            Ok(())
        })
    }
}
