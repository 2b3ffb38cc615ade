//! A SQLite store file in the temporary folder, removed with its `-wal` and
//! `-shm` when dropped (and any left by an earlier run first). Shared by the
//! test binaries, each of which uses part of it.
#![allow(dead_code)]

use std::path::PathBuf;

pub struct TempStore(pub PathBuf);

impl TempStore {
    /// A store file named after `name` and this process.
    pub fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("prov-store-test-{name}-{}.db", std::process::id()));
        let t = TempStore(path);
        t.clean();
        t
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn clean(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        self.clean();
    }
}
