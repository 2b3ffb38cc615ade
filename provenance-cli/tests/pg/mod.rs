//! PostgreSQL for the CLI tests: each test gets a schema of its own in the
//! database named by `PROV_TEST_POSTGRES_URL`, dropped when the test ends
//! (passing or not). A copy of provenance-store/tests/pg/mod.rs, since test
//! crates cannot share code. Without the variable the PostgreSQL cases skip with a note, unless
//! `PROV_REQUIRE_POSTGRES=1` (CI), where a missing server is a failure.

// Shared by several test binaries, each of which uses only part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

/// A schema of its own; dropped with everything in it.
pub struct Schema {
    admin: String,
    pub name: String,
    /// The store URL whose sessions work in this schema.
    pub url: String,
}

/// The server's URL, or `None` (with a note) when PostgreSQL tests are off.
pub fn server(test: &str) -> Option<String> {
    match std::env::var("PROV_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("PROV_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("PROV_REQUIRE_POSTGRES=1 but PROV_TEST_POSTGRES_URL is not set ({test})")
        }
        _ => {
            eprintln!("note: {test}: skipped on PostgreSQL (set PROV_TEST_POSTGRES_URL to run it)");
            None
        }
    }
}

/// A fresh schema for `test`, or `None` when PostgreSQL tests are off.
pub fn schema(test: &str) -> Option<Schema> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let admin = server(test)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!(
        "prov_test_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    client(&admin)
        .batch_execute(&format!("CREATE SCHEMA {name}"))
        .unwrap_or_else(|e| panic!("create schema {name} at {admin}: {e}"));
    let separator = if admin.contains('?') { '&' } else { '?' };
    let url = format!("{admin}{separator}options=-csearch_path%3D{name}");
    Some(Schema { admin, name, url })
}

/// A plain session on the server, for setting up and inspecting.
pub fn client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("connect to {url} (is PostgreSQL running?): {e}"))
}

impl Schema {
    /// A plain session working in this schema.
    pub fn client(&self) -> postgres::Client {
        client(&self.url)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}
