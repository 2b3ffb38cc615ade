//! The tag -> digest cache: the last answer a registry gave for each tag, with
//! the time it gave it. It is read only when the registry cannot be reached,
//! so a retag is always seen as soon as the registry answers.
//!
//! One JSON file (`oci-tags.json` under `PROV_CACHE_DIR`, or
//! `$XDG_CACHE_HOME/prov`, or `~/.cache/prov`). Writers take an exclusive lock
//! on a sibling `.lock` file, read, change, write a temporary file and rename
//! it into place, so readers see the old file or the new one, never half of
//! one, and concurrent writers do not lose each other's entries.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file name of the cache in its folder.
pub const TAG_CACHE_FILE: &str = "oci-tags.json";

/// One remembered answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedDigest {
    /// The manifest digest, `sha256:<hex>`.
    pub digest: String,
    /// When the registry gave it (RFC 3339).
    #[serde(rename = "resolvedAt")]
    pub resolved_at: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    /// `registry/repository:tag` -> answer.
    tags: BTreeMap<String, CachedDigest>,
}

/// The cache could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TagCacheError {
    /// Reading, locking or writing the file failed.
    #[error("{action} the tag cache {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a cache this version understands.
    #[error("read the tag cache {path}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The tag -> digest cache file.
#[derive(Debug, Clone)]
pub struct TagCache {
    path: PathBuf,
}

impl TagCache {
    /// The cache in `path` (created on first write).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TagCache { path: path.into() }
    }

    /// The user's cache: `PROV_CACHE_DIR`, else `XDG_CACHE_HOME/prov`, else
    /// `HOME/.cache/prov`; `None` when none is set.
    pub fn default_path(
        prov_cache_dir: Option<&Path>,
        xdg_cache_home: Option<&Path>,
        home: Option<&Path>,
    ) -> Option<PathBuf> {
        let dir = prov_cache_dir
            .map(Path::to_path_buf)
            .or_else(|| xdg_cache_home.map(|d| d.join("prov")))
            .or_else(|| home.map(|h| h.join(".cache/prov")))?;
        Some(dir.join(TAG_CACHE_FILE))
    }

    /// Where the cache lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The remembered answer for `key` (`registry/repository:tag`).
    pub fn get(&self, key: &str) -> Result<Option<CachedDigest>, TagCacheError> {
        Ok(self.read()?.tags.get(key).cloned())
    }

    /// Remembers `answer` for `key`.
    pub fn put(&self, key: &str, answer: CachedDigest) -> Result<(), TagCacheError> {
        let io = |action: &'static str| {
            let path = self.path.clone();
            move |source| TagCacheError::Io {
                action,
                path,
                source,
            }
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io("create the folder of"))?;
        }
        let lock_path = self.path.with_extension("json.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("open the lock of"))?;
        lock.lock().map_err(io("lock"))?;
        let mut file = match self.read() {
            Ok(f) => f,
            // A damaged cache is replaced rather than blocking every write.
            Err(TagCacheError::Malformed { .. }) => CacheFile::default(),
            Err(e) => return Err(e),
        };
        file.version = 1;
        file.tags.insert(key.to_owned(), answer);
        let text = serde_json::to_vec_pretty(&file).map_err(|e| TagCacheError::Malformed {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let tmp = self
            .path
            .with_extension(format!("json.tmp.{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        let result = write().map_err(io("write"));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        drop(lock); // unlocks
        result
    }

    fn read(&self) -> Result<CacheFile, TagCacheError> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CacheFile::default()),
            Err(source) => {
                return Err(TagCacheError::Io {
                    action: "read",
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let file: CacheFile =
            serde_json::from_slice(&text).map_err(|e| TagCacheError::Malformed {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        if file.version != 1 {
            return Err(TagCacheError::Malformed {
                path: self.path.clone(),
                reason: format!("version {} is not 1", file.version),
            });
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(n: u8) -> CachedDigest {
        CachedDigest {
            digest: format!("sha256:{}", crate::hex(&[n; 32])),
            resolved_at: "2026-11-20T08:00:00Z".into(),
        }
    }

    #[test]
    fn remembers_the_latest_answer_per_tag_and_survives_concurrent_writers() {
        let dir = std::env::temp_dir().join(format!("prov-tag-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = TagCache::new(dir.join("sub").join(TAG_CACHE_FILE));
        assert_eq!(cache.get("r/a:1").unwrap(), None);
        cache.put("r/a:1", answer(1)).unwrap();
        cache.put("r/a:1", answer(2)).unwrap();
        assert_eq!(cache.get("r/a:1").unwrap(), Some(answer(2)));

        let threads: Vec<_> = (0..8u8)
            .map(|i| {
                let cache = cache.clone();
                std::thread::spawn(move || cache.put(&format!("r/t:{i}"), answer(i)).unwrap())
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for i in 0..8u8 {
            assert_eq!(
                cache.get(&format!("r/t:{i}")).unwrap(),
                Some(answer(i)),
                "{i}"
            );
        }

        std::fs::write(cache.path(), "{not json").unwrap();
        let err = cache.get("r/a:1").unwrap_err().to_string();
        assert!(err.contains(TAG_CACHE_FILE), "{err}");
        cache.put("r/a:1", answer(3)).unwrap();
        assert_eq!(cache.get("r/a:1").unwrap(), Some(answer(3)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn default_path_follows_the_environment() {
        let p = |a: Option<&str>, b: Option<&str>, c: Option<&str>| {
            TagCache::default_path(a.map(Path::new), b.map(Path::new), c.map(Path::new))
        };
        assert_eq!(
            p(Some("/c"), Some("/x"), Some("/h")),
            Some("/c/oci-tags.json".into())
        );
        assert_eq!(
            p(None, Some("/x"), Some("/h")),
            Some("/x/prov/oci-tags.json".into())
        );
        assert_eq!(
            p(None, None, Some("/h")),
            Some("/h/.cache/prov/oci-tags.json".into())
        );
        assert_eq!(p(None, None, None), None);
    }
}
