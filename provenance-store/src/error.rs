//! The store's errors. No driver type appears in them: each backend turns its
//! driver's errors into these variants, with the driver error as the source.

use std::path::PathBuf;
use std::time::Duration;

/// The result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened or created.
    #[error("open {what} at {path}")]
    Open {
        /// What was being opened (`hash cache`, `store`).
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The backend's reason.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database was written by a newer version of this software.
    #[error(
        "open {what} at {path}: its schema {found} is newer than this prov ({supported}): upgrade prov"
    )]
    SchemaTooNew {
        /// What was being opened.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The schema version found.
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },
    /// A query names something that cannot be (a malformed image
    /// reference or digest), as opposed to something not in the store.
    #[error("{what}: {reason}")]
    BadQuery {
        /// What was given, and where.
        what: String,
        /// Why it is malformed.
        reason: String,
    },
    /// Nothing in the store matches.
    #[error("find {what}: it is not in the store")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// The location names a backend this build does not have.
    #[error("open store {location}: {reason}")]
    Unsupported {
        /// The location given.
        location: String,
        /// Why it cannot be opened.
        reason: String,
    },
    /// Other writers held the store for longer than the busy timeout.
    #[error(
        "write to the store: other writers held it for more than {waited:?}; nothing of this write was stored"
    )]
    Busy {
        /// How long this writer waited.
        waited: Duration,
        /// The backend's report.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The destination of a copy already holds events.
    #[error(
        "copy into {location}: it already holds {events} events; copy only into an empty store (after an interrupted copy, empty it or start from a new one)"
    )]
    NotEmpty {
        /// The destination (a password in a URL is hidden).
        location: String,
        /// How many events it holds.
        events: u64,
    },
    /// A hash chain does not verify, or a copy did not reproduce it.
    #[error("check the chain of {location}: {reason}")]
    Integrity {
        /// The store (a password in a URL is hidden).
        location: String,
        /// What does not hold.
        reason: String,
    },
    /// Any other backend failure.
    #[error("{context}")]
    Backend {
        /// What was being done.
        context: String,
        /// The backend's reason.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
