//! The lineage store: persists OpenLineage events and answers lineage and audit
//! queries, version-precise, over a tamper-evident trail.
//!
//! [`Store::open`] takes a SQLite file path (the embedded default) or a
//! `postgres://` URL (for teams whose servers share one database; the
//! `postgres` feature, on by default). It also keeps the durable hash cache
//! ([`SqliteHashCache`]) that provenance-core's hasher uses, since SQL lives
//! here and not in core. This crate never learns about HTTP or clap.
//!
//! ```
//! use provenance_core::hash::{HashOptions, Hasher};
//! use provenance_store::SqliteHashCache;
//! # let dir = std::env::temp_dir().join(format!("prov-store-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let cache = SqliteHashCache::open(&dir.join("hash-cache.sqlite"))?;
//! let hasher = Hasher::new(HashOptions::default()).with_cache(&cache);
//! std::fs::write(dir.join("a.vcf"), b"##fileformat=VCFv4.2\n")?;
//! let digest = hasher.hash(&dir.join("a.vcf"))?;
//! assert_eq!(digest.sha256.len(), 64);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod ahead;
mod backend;
pub mod chain;
mod error;
mod hash_cache;
pub mod model;
mod normalize;
#[cfg(feature = "postgres")]
mod postgres;
pub mod prov_json;
mod reader;
pub mod ro_crate;
mod sqlite;
mod store;
pub mod tables;
mod transport;

pub use error::{StoreError, StoreResult};
pub use hash_cache::SqliteHashCache;
pub use model::{
    ChainBreak, ChainReport, Direction, Edge, LineageGraph, LineageQuery, Node, Outcome, Page,
    Paged, RunFilter, RunRecord, Target, TargetError, VersionRecord,
};
pub use store::{
    ContainerAudit, CopyReport, Derived, MAX_DERIVED_DEPTH, ParsedEvent, ScratchFolder, Store,
    holds_store, redact,
};
pub use tables::{Table, TableDifference, TablesReport};
pub use transport::StoreTransport;
