//! The lineage store: persists OpenLineage events and answers lineage and audit
//! queries, version-precise, over a tamper-evident trail.
//!
//! The backends (SQLite embedded by default, PostgreSQL for teams) arrive with
//! their own issues; this crate is declared now so that the dependency direction
//! core <- store <- cli is fixed from the start. It never learns about HTTP or clap.
#![deny(missing_docs)]

/// The OpenLineage spec version whose events this store accepts.
pub use provenance_core::OPENLINEAGE_SPEC_URL as ACCEPTED_SPEC;
