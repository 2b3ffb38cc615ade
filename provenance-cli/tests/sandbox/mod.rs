//! The real `prov` binary in a folder of its own, as a new user would run it:
//! its own HOME, caches and store, and none of the caller's prov or
//! OpenLineage settings. Shared by the CLI test files (`#[path]`), each of
//! which uses part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

pub struct Sandbox(pub PathBuf);

impl Sandbox {
    /// A fresh folder under the temporary directory.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("prov-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Sandbox(dir)
    }

    /// A sandbox in `dir` (created), removed when dropped.
    pub fn at(dir: PathBuf) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        Sandbox(dir)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_prov"));
        c.args(args);
        self.isolate(c)
    }

    /// `sh -c script` in the sandbox, as prov is run there.
    pub fn shell(&self, script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        self.isolate(c)
    }

    /// `c` in this folder, with its own HOME and caches and none of the
    /// caller's prov or OpenLineage settings.
    fn isolate(&self, mut c: Command) -> Command {
        c.current_dir(&self.0)
            .env("HOME", &self.0)
            .env("XDG_CACHE_HOME", self.0.join("cache"))
            .env("XDG_STATE_HOME", self.0.join("state"))
            .env_remove("PROV_STORE")
            .env_remove("PROV_PARENT_RUN")
            .env_remove("PROV_HASH_CACHE")
            .env_remove("PROV_CACHE_DIR")
            .env_remove("PROV_REQUIRE_PINNED")
            .env_remove("DOCKER_CONFIG")
            .env_remove("OPENLINEAGE_URL")
            .env_remove("OPENLINEAGE_CONFIG")
            .env_remove("OPENLINEAGE__TRANSPORT__TYPE");
        c
    }

    /// prov with its events also written to the file `events` by an
    /// OpenLineage file transport.
    pub fn logging_to(&self, events: &str, args: &[&str]) -> Command {
        let mut c = self.command(args);
        c.env("OPENLINEAGE__TRANSPORT__TYPE", "file")
            .env("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", events);
        c
    }

    /// Runs prov as [`Sandbox::logging_to`] does; it must succeed.
    pub fn ok_logging_to(&self, events: &str, args: &[&str]) {
        let out = self.logging_to(events, args).output().unwrap();
        assert!(
            out.status.success(),
            "prov {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn prov(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs prov, which must succeed; its standard error.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.prov(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "prov {args:?}: {stderr}");
        stderr
    }

    /// Runs prov, which must succeed; its standard output as JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.prov(args);
        assert!(
            out.status.success(),
            "prov {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("prov {args:?}: {e}"))
    }

    pub fn write(&self, name: &str, content: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    }

    pub fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
