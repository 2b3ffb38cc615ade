//! The backend-neutral interface every store backend implements: appends to
//! the chained log and the small lookups the lineage walk is built from. No
//! driver type appears here; backends turn their errors into [`StoreError`].

use std::sync::Arc;

use crate::StoreResult;
use crate::model::{Outcome, Page, Paged, RunFilter, RunRecord, Target, VersionRecord};
use crate::normalize::{DatasetPart, Prepared};
use crate::sqlite::codec::Dictionary;
use crate::tables::{Row, Table};

/// Where a lineage walk starts: dataset versions (by id) or runs.
pub(crate) enum Start {
    Versions(Vec<i64>),
    Runs(Vec<String>),
}

pub(crate) trait Backend: Send + Sync {
    /// Appends the events, in order, to the log and the lineage model in one
    /// transaction; one outcome per event. The events may still be being
    /// parsed while earlier ones are written; an `Err` among them (the
    /// parsing stopped) abandons the transaction and is returned. Each event,
    /// once written, is handed to `spent`, in the order given, so that the
    /// caller can free it on the thread that made it (freeing some forty
    /// small allocations made on another thread costs the writer a tenth of
    /// its time). A backend may also drop them itself.
    fn ingest(
        &self,
        batch: &mut dyn Iterator<Item = StoreResult<Prepared>>,
        spent: &mut dyn FnMut(Prepared),
    ) -> StoreResult<Vec<Outcome>>;
    /// The dictionary events may be compressed with before they reach
    /// [`Backend::ingest`] (in [`Prepared::packed`]), if the backend stores
    /// them compressed; it must be one the store holds.
    fn dictionary(&self) -> Option<Arc<Dictionary>> {
        None
    }
    /// Whether events must pass [`crate::normalize::storable`] (PostgreSQL:
    /// no NUL in text, no key over 2,048 bytes); checked while parsing.
    fn limits_text(&self) -> bool {
        false
    }
    /// Whether the store, read without locks (an immutable SQLite file),
    /// was written while it was read, so that what was read may be wrong.
    fn changed_while_read(&self) -> bool {
        false
    }
    /// Visits `(seq, raw, link)` in chain order until `visit` returns false.
    fn walk_chain(&self, visit: &mut dyn FnMut(u64, &[u8], &str) -> bool) -> StoreResult<()>;
    /// Visits the rows of a table derived from the events, in the byte order
    /// of their keys, until `visit` returns false (see `tables.rs`).
    fn walk_table(&self, table: Table, visit: &mut dyn FnMut(Row) -> bool) -> StoreResult<()>;
    /// The last position and its link.
    fn head(&self) -> StoreResult<Option<(u64, String)>>;
    /// The versions or runs a target names, as of a time (microseconds).
    fn start(&self, target: &Target, as_of: Option<i64>) -> StoreResult<Start>;
    fn version(&self, id: i64) -> StoreResult<VersionRecord>;
    fn run(&self, run_id: &str) -> StoreResult<Option<RunRecord>>;
    /// The bytes of the run's events, in chain order; with `as_of`, only
    /// those whose event time is not after it (microseconds).
    fn run_events(&self, run_id: &str, as_of: Option<i64>) -> StoreResult<Vec<Vec<u8>>>;
    /// Runs that wrote the version.
    fn producers(&self, version: i64, as_of: Option<i64>) -> StoreResult<Vec<String>>;
    /// Runs that read the version.
    fn consumers(&self, version: i64, as_of: Option<i64>) -> StoreResult<Vec<String>>;
    fn inputs(&self, run: &str, as_of: Option<i64>) -> StoreResult<Vec<i64>>;
    fn outputs(&self, run: &str, as_of: Option<i64>) -> StoreResult<Vec<i64>>;
    fn runs(&self, filter: &RunFilter, page: Page) -> StoreResult<Paged<RunRecord>>;
    fn events(&self, page: Page) -> StoreResult<Paged<(u64, Vec<u8>)>>;
    /// Up to `limit` raw events after position `seq`, in chain order (a
    /// range of the log's key: no count, no offset to skip).
    fn events_after(&self, seq: u64, limit: u64) -> StoreResult<Vec<(u64, Vec<u8>)>>;
}

/// A version's row as far as a writer knows it. Rows only gain a digest or
/// a size and only move their creation time back, so a cached state that is
/// stale (another process wrote since) only causes a needless write.
#[derive(Clone, Copy)]
pub(crate) struct KnownVersion {
    pub id: i64,
    pub created_at: i64,
    pub digest: bool,
    pub size: bool,
}

impl KnownVersion {
    /// Whether a sighting at `time` of `part` changes the row.
    pub fn changed_by(&self, part: &DatasetPart, time: i64) -> bool {
        time < self.created_at
            || (!self.digest && part.digest.is_some())
            || (!self.size && part.size.is_some())
    }
}
