//! [`Store`]: the public face of the store, over any backend. Ingest, the
//! chain check, and the lineage and audit queries live here, written once
//! against the backend's small lookups.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::sync::mpsc;

use provenance_core::Event;
use serde_json::{Map, Value, json};

use crate::ahead::{Board, CHUNK, InOrder, Parsed, ParsedBy};
use crate::backend::{Backend, Start};
use crate::model::*;
use crate::normalize::{Prepared, prepare};
use crate::sqlite::Sqlite;
use crate::sqlite::codec::Packer;
use crate::tables::{Merge, Row, Table, TablesReport};
use crate::{StoreError, StoreResult, chain};

/// The deepest a "derived from" closure walks before it reports itself truncated.
pub const MAX_DERIVED_DEPTH: u32 = 1000;

/// An event read and normalized by [`Store::parse`]: stored by
/// [`Store::ingest_parsed`], or rejected there with the reason it could not
/// be read.
pub struct ParsedEvent(Result<Prepared, String>);

impl ParsedEvent {
    /// Why the event cannot be stored, if it cannot.
    pub fn rejected(&self) -> Option<&str> {
        self.0.as_ref().err().map(String::as_str)
    }
}

/// One outcome per event, in order: the rejected ones at their indexes, the
/// stored ones in between.
fn merge_outcomes(
    count: usize,
    stored: Vec<Outcome>,
    rejected: Vec<(usize, String)>,
) -> Vec<Outcome> {
    let mut stored = stored.into_iter();
    let mut rejected = rejected.into_iter().peekable();
    (0..count)
        .map(|i| match rejected.next_if(|(r, _)| *r == i) {
            Some((_, reason)) => Outcome::Rejected { reason },
            None => stored.next().expect("one outcome per stored event"),
        })
        .collect()
}

/// A temporary SQLite store, in a folder of its own that only this user
/// may open (it holds a copy of every event) and whose name cannot be
/// guessed; both are removed when dropped.
struct Scratch {
    store: Store,
    /// Removed when dropped, after the store (fields drop in order).
    _folder: ScratchFolder,
}

impl Scratch {
    fn create(parent: &Path) -> StoreResult<Scratch> {
        let folder = ScratchFolder::create(parent).map_err(|(path, e)| StoreError::Open {
            what: "a temporary store",
            path,
            source: Box::new(e),
        })?;
        let location = folder
            .path()
            .join("store.db")
            .to_string_lossy()
            .into_owned();
        Ok(Scratch {
            store: Store::open(&location)?,
            _folder: folder,
        })
    }
}

/// A private folder (mode 700) named `prov-verify-<pid>-<unguessable id>`
/// for a check's temporary store, removed when dropped. It holds a lock on
/// its file `held` while it lives; creating one first removes the folders
/// beside it whose lock nobody holds, left by checks killed with SIGKILL
/// (each holds a copy of a whole store). A live check's folder, in this
/// process or any other sharing the file system, is never taken for one.
pub struct ScratchFolder {
    path: std::path::PathBuf,
    _held: std::fs::File,
}

impl ScratchFolder {
    /// Makes the folder in `parent`; on failure, the path tried and why.
    pub fn create(parent: &Path) -> Result<ScratchFolder, (std::path::PathBuf, std::io::Error)> {
        ScratchFolder::sweep(parent);
        let path = parent.join(format!(
            "prov-verify-{}-{}",
            std::process::id(),
            provenance_core::RunId::new_v7()
        ));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&path).map_err(|e| (path.clone(), e))?;
        let held = std::fs::File::create(path.join("held"))
            .and_then(|f| f.lock().map(|()| f))
            .map_err(|e| {
                let _ = std::fs::remove_dir_all(&path);
                (path.clone(), e)
            })?;
        Ok(ScratchFolder { path, _held: held })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the `prov-verify-*` folders in `parent` whose `held` lock
    /// can be taken: their check is gone. A folder without that file (one
    /// being made, or another user's, which cannot be opened) is left.
    fn sweep(parent: &Path) {
        let Ok(entries) = std::fs::read_dir(parent) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !name.to_str().is_some_and(|n| n.starts_with("prov-verify-")) {
                continue;
            }
            let Ok(held) = std::fs::File::open(entry.path().join("held")) else {
                continue;
            };
            if held.try_lock().is_ok() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

impl Drop for ScratchFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A lineage store.
pub struct Store {
    backend: Box<dyn Backend>,
    location: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish()
    }
}

/// Runs that used an image, and every output downstream of them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ContainerAudit {
    /// The runs, newest first.
    pub runs: Paged<RunRecord>,
    /// Every dataset version those runs (on this page) wrote or that derives from them.
    pub outputs: Vec<VersionRecord>,
    /// Whether the downstream walk hit its depth limit.
    pub truncated: bool,
}

/// Everything derived from a target.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Derived {
    /// Runs that read the target or anything derived from it.
    pub runs: Vec<RunRecord>,
    /// Dataset versions written by those runs.
    pub outputs: Vec<VersionRecord>,
    /// Whether the walk hit its depth limit.
    pub truncated: bool,
}

/// What [`Store::copy_to`] copied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CopyReport {
    /// Events copied.
    pub events: u64,
    /// The head both stores now share (`<seq>:<link>`).
    pub head: Option<String>,
}

/// Events per transaction when copying a store, transactions stored at a
/// time (parsed ahead across them), and their bytes at most.
const COPY_BATCH: usize = 1000;
const COPY_AHEAD: usize = 8;
const COPY_AHEAD_BYTES: usize = 16 << 20;

/// Threads that parse a large batch ahead of its writer, at most: one core
/// is the writer's (which parses too, see [`crate::ahead`]).
const MAX_PARSERS: usize = 2;

/// Chunks a parser may have parsed that the writer has not yet taken. A
/// deep queue lets the parsers stay ahead through the writer's commits.
/// (16 x 64 events of a few KB each, per parser.)
const CHUNKS_AHEAD: usize = 16;

impl Store {
    /// Opens the store at `location`: a SQLite file path (created if missing),
    /// `:memory:`, or a `postgres://` URL.
    pub fn open(location: &str) -> StoreResult<Store> {
        let backend: Box<dyn Backend> = if is_postgres(location) {
            open_postgres(location)?
        } else if location == ":memory:" {
            Box::new(Sqlite::open(None)?)
        } else {
            Box::new(Sqlite::open(Some(Path::new(location)))?)
        };
        Ok(Store {
            backend,
            location: location.to_owned(),
        })
    }

    /// Opens an existing store for reading only: a SQLite file without
    /// write access, or in a folder where its log cannot be made (an
    /// archived copy). Its schema must be this build's; writing fails. A
    /// PostgreSQL location opens as [`Store::open`] does (its permissions
    /// are the server's).
    pub fn open_read_only(location: &str) -> StoreResult<Store> {
        Store::read_only(location, false)
    }

    /// Opens a store file that another user owns, for reading only, leaving
    /// nothing behind: where no writer has the store open (no `-wal` or
    /// `-shm` beside it), it is read as immutable rather than have SQLite
    /// create those files owned by this user, which would lock the owner out
    /// of their own store. A write during such a read may make what was
    /// read inconsistent: [`Store::changed_while_read`] tells.
    pub fn open_read_only_as_guest(location: &str) -> StoreResult<Store> {
        Store::read_only(location, true)
    }

    fn read_only(location: &str, guest: bool) -> StoreResult<Store> {
        if is_postgres(location) || location == ":memory:" {
            return Store::open(location);
        }
        Ok(Store {
            backend: Box::new(Sqlite::open_read_only(Path::new(location), guest)?),
            location: location.to_owned(),
        })
    }

    /// A new store in memory.
    pub fn in_memory() -> StoreResult<Store> {
        Store::open(":memory:")
    }

    /// Where the store is (a password in a URL is hidden).
    pub fn location(&self) -> String {
        redact(&self.location)
    }

    /// Stores one event given as JSON bytes.
    pub fn ingest(&self, raw: &[u8]) -> StoreResult<Outcome> {
        Ok(self.ingest_batch(&[raw])?.remove(0))
    }

    /// Stores a batch in one transaction: every readable event is stored (or
    /// found stored before); unreadable ones are rejected with the reason, and
    /// do not stop the others. On error nothing of the batch is stored.
    pub fn ingest_batch(&self, raws: &[&[u8]]) -> StoreResult<Vec<Outcome>> {
        if raws.len() >= CHUNK {
            return self
                .pipelined(raws, raws.len())
                .pop()
                .expect("one result for one batch");
        }
        self.ingest_parsed(raws.iter().map(|raw| Store::parse(raw)).collect())
    }

    /// Stores many events in order, in transactions of `size` (each as
    /// [`Store::ingest_batch`] would), parsing ahead across them so that
    /// the parsers work while a transaction commits: for bulk loads. One
    /// result per transaction, ending at the first that fails: those before
    /// it are stored, none after it is tried.
    pub fn ingest_batches(&self, raws: &[&[u8]], size: usize) -> Vec<StoreResult<Vec<Outcome>>> {
        let size = size.max(1);
        if raws.len() >= CHUNK {
            return self.pipelined(raws, size);
        }
        let mut results = Vec::new();
        for batch in raws.chunks(size) {
            let result = self.ingest_batch(batch);
            let failed = result.is_err();
            results.push(result);
            if failed {
                break;
            }
        }
        results
    }

    /// Parsing is pure CPU: other threads parse ahead while this one writes,
    /// so they overlap inside a transaction and across transactions, and
    /// this one parses too when it would otherwise wait (see
    /// [`crate::ahead`]). The events are written in order. Each written event
    /// is freed by the thread that parsed it: the writer's at once, a
    /// parser's back on that parser.
    fn pipelined(&self, raws: &[&[u8]], size: usize) -> Vec<StoreResult<Vec<Outcome>>> {
        let parsers = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .saturating_sub(1)
            .min(MAX_PARSERS);
        let board = &Board::new(raws.len());
        let backend = &*self.backend;
        std::thread::scope(|scope| {
            let mut queues = Vec::new();
            let mut spent_senders = Vec::new();
            let mut threads = Vec::new();
            for p in 0..parsers {
                let (tx, rx) = mpsc::sync_channel::<(usize, Parsed)>(CHUNKS_AHEAD);
                let (spent_tx, spent_rx) = mpsc::channel::<Vec<Prepared>>();
                let thread = std::thread::Builder::new()
                    .name("prov-parse".into())
                    .spawn_scoped(scope, move || {
                        let mut packer = Packer::default();
                        while let Some(k) = board.next_for_parser(p) {
                            let parsed = board.parse(k, raws, backend, &mut packer);
                            if tx.send((k, parsed)).is_err() {
                                break; // the writer stopped on an error
                            }
                            spent_rx.try_iter().for_each(drop);
                        }
                        drop(tx);
                        spent_rx.iter().for_each(drop);
                    });
                match thread {
                    Ok(thread) => threads.push(thread),
                    Err(e) => {
                        return vec![Err(StoreError::Backend {
                            context: "start a thread to parse the batch".into(),
                            source: Box::new(e),
                        })];
                    }
                }
                queues.push(rx);
                spent_senders.push(spent_tx);
            }
            let mut items = InOrder::new(board, raws, backend, queues)
                .flat_map(|(by, chunk)| chunk.into_iter().map(move |event| (by, event)))
                .peekable();
            // Who parsed each event handed to the backend and not yet spent
            // (it spends them in the order it was given them).
            let parsed_by = RefCell::new(VecDeque::new());
            let mut written = Vec::with_capacity(CHUNK);
            let mut turn = 0;
            let mut spent = |p: Prepared| {
                if parsed_by.borrow_mut().pop_front() == Some(ParsedBy::Writer) {
                    return; // dropped here, where it was made
                }
                written.push(p);
                if written.len() == CHUNK {
                    let full = std::mem::replace(&mut written, Vec::with_capacity(CHUNK));
                    // A parser frees them between its chunks, and after its
                    // last one waits for the rest; should it have stopped
                    // (or should there be none), they drop here.
                    if let Some(parser) = spent_senders.get(turn % parsers.max(1)) {
                        let _ = parser.send(full);
                    }
                    turn += 1;
                }
            };
            let mut results = Vec::new();
            for start in (0..raws.len()).step_by(size) {
                let end = (start + size).min(raws.len());
                // Every event of the batch comes back parsed or rejected; a
                // parser that stops early (only a bug would make it panic)
                // fails the batch instead of committing part of it.
                let mut rejected: Vec<(usize, String)> = Vec::new();
                let mut seen = 0;
                let mut events = std::iter::from_fn(|| {
                    while let Some((by, (i, result))) = items.next_if(|(_, (i, _))| *i < end) {
                        seen += 1;
                        match result {
                            Ok(p) => {
                                parsed_by.borrow_mut().push_back(by);
                                return Some(Ok(p));
                            }
                            Err(reason) => rejected.push((i - start, reason)),
                        }
                    }
                    (seen < end - start).then(|| {
                        seen = end - start; // said once
                        Err(StoreError::Backend {
                            context: "parse the batch".into(),
                            source: "a parsing thread stopped before the batch's end".into(),
                        })
                    })
                });
                let result = self.backend.ingest(&mut events, &mut spent);
                // A backend that frees them itself, or stopped, spent fewer.
                parsed_by.borrow_mut().clear();
                match result {
                    Ok(stored) => results.push(Ok(merge_outcomes(end - start, stored, rejected))),
                    Err(e) => {
                        results.push(Err(e));
                        break;
                    }
                }
            }
            if let Some(parser) = spent_senders.first() {
                let _ = parser.send(written);
            }
            drop(spent_senders);
            drop(items);
            for thread in threads {
                thread
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p));
            }
            results
        })
    }

    /// Reads and normalizes one raw event, ready for [`Store::ingest_parsed`].
    /// Pure CPU and independent of any store: a server parses on the threads
    /// that received the events while its one writer writes earlier ones.
    pub fn parse(raw: &[u8]) -> ParsedEvent {
        ParsedEvent(prepare(raw))
    }

    /// Stores events read with [`Store::parse`] in one transaction, with the
    /// same outcomes (and the same all-or-nothing rule) as [`Store::ingest_batch`].
    pub fn ingest_parsed(&self, events: Vec<ParsedEvent>) -> StoreResult<Vec<Outcome>> {
        let count = events.len();
        let mut rejected: Vec<(usize, String)> = Vec::new();
        let mut ready = events.into_iter().enumerate().filter_map(|(i, e)| {
            let checked = e.0.and_then(|p| {
                if self.backend.limits_text() {
                    crate::normalize::storable(&p)?;
                }
                Ok(p)
            });
            match checked {
                Ok(p) => Some(Ok(p)),
                Err(reason) => {
                    rejected.push((i, reason));
                    None
                }
            }
        });
        let stored = self.backend.ingest(&mut ready, &mut drop)?;
        drop(ready);
        Ok(merge_outcomes(count, stored, rejected))
    }

    /// Stores an event built in memory.
    pub fn ingest_event(&self, event: &Event) -> StoreResult<Outcome> {
        self.ingest(event.to_json().as_bytes())
    }

    /// Walks the whole chain and reports the first position that fails.
    pub fn verify_chain(&self) -> StoreResult<ChainReport> {
        let mut previous = chain::GENESIS.to_owned();
        let mut expected = 1u64;
        let mut broken = None;
        let mut events = 0u64;
        self.backend.walk_chain(&mut |seq, raw, link| {
            events += 1;
            if seq != expected {
                broken = Some(ChainBreak {
                    position: expected,
                    reason: if seq > expected {
                        format!("positions {expected} to {} are missing (deleted)", seq - 1)
                    } else {
                        format!("position {seq} appears out of order")
                    },
                });
                return false;
            }
            let recomputed = chain::link(&previous, seq, raw);
            if recomputed != link {
                broken = Some(ChainBreak {
                    position: seq,
                    reason: "the event's bytes or its link were altered, or events were reordered"
                        .into(),
                });
                return false;
            }
            previous = recomputed;
            expected += 1;
            true
        })?;
        // The anchor is the last link this walk checked: events written
        // while it ran are not vouched for.
        let head = (broken.is_none() && events > 0).then(|| format!("{}:{previous}", expected - 1));
        Ok(ChainReport {
            events,
            head,
            broken,
        })
    }

    /// Copies every event, in chain order, into `destination`, which must be
    /// empty; it rebuilds its lineage model from them. This store's chain is
    /// verified first and the destination's after, and both must end at the
    /// same head: the chain's links depend only on positions and bytes, so a
    /// faithful copy reproduces them exactly. `progress` hears the events
    /// copied so far and the total verified.
    pub fn copy_to(
        &self,
        destination: &Store,
        progress: &mut dyn FnMut(u64, u64),
    ) -> StoreResult<CopyReport> {
        if let Some((events, _)) = destination.backend.head()? {
            return Err(StoreError::NotEmpty {
                location: destination.location(),
                events,
            });
        }
        let source = self.verify_chain()?;
        if let Some(b) = &source.broken {
            return Err(StoreError::Integrity {
                location: self.location(),
                reason: format!("position {}: {}; nothing was copied", b.position, b.reason),
            });
        }
        let total = source.events;
        let mut failure: Option<StoreError> = None;
        let mut batch: Vec<(u64, Vec<u8>)> = Vec::with_capacity(COPY_BATCH);
        let mut last: Option<String> = None;
        let mut copied = 0u64;
        let mut bytes = 0;
        // Several transactions at a time, parsed ahead across them.
        let mut flush = |batch: &mut Vec<(u64, Vec<u8>)>| -> StoreResult<()> {
            let raws: Vec<&[u8]> = batch.iter().map(|(_, raw)| raw.as_slice()).collect();
            let mut sent = batch.iter();
            for outcomes in destination.ingest_batches(&raws, COPY_BATCH) {
                let outcomes = outcomes?;
                let count = outcomes.len() as u64;
                for (outcome, (seq, _)) in outcomes.into_iter().zip(sent.by_ref()) {
                    if outcome != (Outcome::Stored { seq: *seq }) {
                        return Err(StoreError::Integrity {
                            location: destination.location(),
                            reason: format!(
                                "event {seq} of the source was not stored at the same position ({outcome:?})"
                            ),
                        });
                    }
                }
                copied += count;
                progress(copied, total);
            }
            batch.clear();
            Ok(())
        };
        self.backend.walk_chain(&mut |seq, raw, link| {
            batch.push((seq, raw.to_vec()));
            bytes += raw.len();
            last = Some(format!("{seq}:{link}"));
            if batch.len() == COPY_AHEAD * COPY_BATCH || bytes >= COPY_AHEAD_BYTES {
                bytes = 0;
                if let Err(e) = flush(&mut batch) {
                    failure = Some(e);
                    return false;
                }
            }
            true
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        if !batch.is_empty() {
            flush(&mut batch)?;
        }
        let copy = destination.verify_chain()?;
        let problem = if let Some(b) = &copy.broken {
            Some(format!("position {}: {}", b.position, b.reason))
        } else if copy.head != last {
            Some(format!(
                "its head {} differs from the source's {}",
                copy.head.as_deref().unwrap_or("(empty)"),
                last.as_deref().unwrap_or("(empty)")
            ))
        } else {
            None
        };
        if let Some(reason) = problem {
            return Err(StoreError::Integrity {
                location: destination.location(),
                reason: format!("after the copy, {reason}"),
            });
        }
        Ok(CopyReport {
            events: copy.events,
            head: copy.head,
        })
    }

    /// Checks the tables the queries read against the events they are derived
    /// from (see the `tables` module): derives them again from this store's
    /// events in a temporary SQLite store in a new private folder under
    /// `scratch` (it needs about as much space as this store; it is removed
    /// after, or by the caller if the process is stopped), then compares
    /// the two, table by table, row by row. The chain is verified first: a
    /// broken chain is an [`StoreError::Integrity`] error, since its events
    /// cannot be trusted to derive from. `progress` hears the events derived
    /// again so far and the total. A store that receives events while it is
    /// checked cannot be compared: that is an error to retry.
    pub fn verify_tables(
        &self,
        scratch: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> StoreResult<TablesReport> {
        let rebuilt = Scratch::create(scratch)?;
        let copy = self.copy_to(&rebuilt.store, progress)?;
        let mut merge = Merge::new(copy.events);
        for table in Table::ALL {
            let (stored, derived) = std::thread::scope(|s| {
                let (stored_tx, stored_rx) = mpsc::sync_channel(1024);
                let (derived_tx, derived_rx) = mpsc::sync_channel(1024);
                fn walk(
                    store: &Store,
                    table: Table,
                    tx: mpsc::SyncSender<Row>,
                ) -> impl FnOnce() -> StoreResult<()> + Send + '_ {
                    move || {
                        store
                            .backend
                            .walk_table(table, &mut |row| tx.send(row).is_ok())
                    }
                }
                let stored = s.spawn(walk(self, table, stored_tx));
                let derived = s.spawn(walk(&rebuilt.store, table, derived_tx));
                merge.table(table, stored_rx.into_iter(), derived_rx.into_iter());
                let join = |h: std::thread::ScopedJoinHandle<'_, StoreResult<()>>| {
                    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
                };
                (join(stored), join(derived))
            });
            stored?;
            derived?;
        }
        let head = self.head()?;
        if head != copy.head {
            return Err(StoreError::Integrity {
                location: self.location(),
                reason: format!(
                    "it received events while its tables were checked (head {} then {}); check it again when nothing writes to it",
                    copy.head.as_deref().unwrap_or("(empty)"),
                    head.as_deref().unwrap_or("(empty)")
                ),
            });
        }
        Ok(merge.report)
    }

    /// The chain's head as `<seq>:<link>`: the anchor for an auditor to keep
    /// outside the store (see the `chain` module for what it protects).
    pub fn head(&self) -> StoreResult<Option<String>> {
        Ok(self
            .backend
            .head()?
            .map(|(seq, link)| format!("{seq}:{link}")))
    }

    /// Whether the store, read without locks because another user owns it
    /// or it lies where its log cannot be made (an immutable SQLite file),
    /// was written while it was read: then answers read from it may be
    /// wrong, and the read should be made again.
    pub fn changed_while_read(&self) -> bool {
        self.backend.changed_while_read()
    }

    /// Up to `limit` raw events after chain position `seq` (as [`Store::events`]
    /// gives them), in chain order: for reading on from a page without
    /// counting or skipping again.
    pub fn events_after(&self, seq: u64, limit: u64) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        self.backend.events_after(seq, limit)
    }

    /// The raw events, in chain order.
    pub fn events(&self, page: Page) -> StoreResult<Paged<(u64, Vec<u8>)>> {
        self.backend.events(page)
    }

    /// Runs matching `filter`, newest first.
    pub fn runs(&self, filter: &RunFilter, page: Page) -> StoreResult<Paged<RunRecord>> {
        if self.backend.limits_text() && filter.holds_nul() {
            // No run's names hold one: the store refused them.
            return Ok(Paged {
                items: Vec::new(),
                total: 0,
                offset: page.offset,
                limit: page.limit,
            });
        }
        self.backend.runs(filter, page)
    }

    /// One run.
    pub fn run(&self, run_id: &str) -> StoreResult<RunRecord> {
        // No run id holds a NUL where the store refuses them.
        let found = match self.backend.limits_text() && run_id.contains('\0') {
            true => None,
            false => self.backend.run(run_id)?,
        };
        found.ok_or_else(|| StoreError::NotFound {
            what: format!("run:{run_id}"),
        })
    }

    /// A run's facets, merged over its events (later ones replace earlier).
    pub fn run_facets(&self, run_id: &str) -> StoreResult<Map<String, Value>> {
        Ok(crate::normalize::merge_run_facets(
            self.backend
                .run_events(run_id, None)?
                .iter()
                .map(Vec::as_slice),
        ))
    }

    /// The backend's start of a target; nothing, rather than an error from
    /// the database, for a name holding a NUL on a store that refuses them.
    fn backend_start(&self, target: &Target, as_of: Option<i64>) -> StoreResult<Start> {
        if self.backend.limits_text() && target.to_string().contains('\0') {
            return Ok(Start::Versions(Vec::new()));
        }
        self.backend.start(target, as_of)
    }

    /// Where a target starts. `dataset:<ns>:<name>#<rest>` names a version,
    /// unless the dataset has no such version and a dataset whose name holds
    /// the `#` (`s3://b:reads/run#1.fq`) is there: then it is that dataset.
    fn start(&self, target: &Target, as_of: Option<i64>) -> StoreResult<Start> {
        let start = self.backend_start(target, as_of)?;
        if let (
            Target::Version {
                namespace,
                name,
                version,
            },
            Start::Versions(found),
        ) = (target, &start)
            && found.is_empty()
        {
            let whole = Target::Dataset {
                namespace: namespace.clone(),
                name: format!("{name}#{version}"),
            };
            return self.backend_start(&whole, as_of);
        }
        Ok(start)
    }

    /// The lineage graph around a target, version-precise.
    pub fn lineage(&self, query: &LineageQuery) -> StoreResult<LineageGraph> {
        let start = self.start(&query.target, query.as_of)?;
        let empty = match &start {
            Start::Versions(v) => v.is_empty(),
            Start::Runs(r) => r.is_empty(),
        };
        if empty {
            let what = match query.as_of {
                // It may be there, only later.
                Some(t) => format!(
                    "{} as of {}",
                    query.target,
                    chrono::DateTime::from_timestamp_micros(t).map_or_else(
                        || t.to_string(),
                        |d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    )
                ),
                None => query.target.to_string(),
            };
            return Err(StoreError::NotFound { what });
        }
        let mut walk = Walk::new(self.backend.as_ref(), query.as_of);
        if matches!(query.direction, Direction::Upstream | Direction::Both) {
            walk.walk(&start, query.depth, true)?;
        }
        if matches!(query.direction, Direction::Downstream | Direction::Both) {
            walk.walk(&start, query.depth, false)?;
        }
        walk.into_graph()
    }

    /// Runs whose image matches `image` (a digest `sha256:<hex>`, or a
    /// reference matched by repository and tag), pinned and unpinned, and every
    /// output downstream of the runs on this page.
    pub fn audit_container(&self, image: &str, page: Page) -> StoreResult<ContainerAudit> {
        let mut filter = RunFilter::default();
        let bad = |reason: String| StoreError::BadQuery {
            what: format!("image {image:?}"),
            reason,
        };
        // The start of a digest, as `lineage` prints it (at least 12 hex
        // digits), alone or after a repository.
        let short = |digest: &str| {
            let hex = digest.strip_prefix("sha256:")?;
            ((12..64).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| format!("sha256:{}", hex.to_ascii_lowercase()))
        };
        let (named, digest) = match image.rsplit_once('@') {
            Some((name, digest)) => (Some(name), digest),
            None => (None, image),
        };
        if let Some(prefix) = short(digest) {
            filter.container_digest_prefix = Some(prefix);
            if let Some(name) = named {
                let reference = provenance_core::oci::ImageReference::parse(name)
                    .map_err(|e| bad(format!("{e:#}")))?;
                filter.container_registry = Some(reference.registry);
                filter.container_repository = Some(reference.repository);
            }
        } else if image.starts_with("sha256:") {
            filter.container_digest = Some(provenance_core::oci::parse_digest(image).map_err(bad)?);
        } else {
            let reference = provenance_core::oci::ImageReference::parse(image)
                .map_err(|e| bad(format!("{e:#}")))?;
            if let Some(digest) = reference.digest {
                filter.container_digest = Some(digest);
            } else {
                filter.container_registry = Some(reference.registry);
                filter.container_repository = Some(reference.repository);
                filter.container_tag = reference.tag;
            }
        }
        let runs = self.runs(&filter, page)?;
        let starts: Vec<String> = runs.items.iter().map(|r| r.run_id.clone()).collect();
        let derived = self.derived_from_runs(&starts, None)?;
        Ok(ContainerAudit {
            runs,
            outputs: derived.outputs,
            truncated: derived.truncated,
        })
    }

    /// Everything derived from a target (for example one sample's FASTQ): the
    /// runs that read it or anything made from it, and what they wrote.
    pub fn derived_from(&self, target: &Target, as_of: Option<i64>) -> StoreResult<Derived> {
        match self.start(target, as_of)? {
            Start::Runs(runs) if !runs.is_empty() => self.derived_from_runs(&runs, as_of),
            Start::Versions(versions) if !versions.is_empty() => {
                let mut runs = BTreeSet::new();
                for v in versions {
                    runs.extend(self.backend.consumers(v, as_of)?);
                }
                self.derived_from_runs(&runs.into_iter().collect::<Vec<_>>(), as_of)
            }
            _ => Err(StoreError::NotFound {
                what: target.to_string(),
            }),
        }
    }

    fn derived_from_runs(&self, starts: &[String], as_of: Option<i64>) -> StoreResult<Derived> {
        let mut seen_runs: BTreeSet<String> = starts.iter().cloned().collect();
        let mut seen_versions = BTreeSet::new();
        let mut frontier: Vec<String> = starts.to_vec();
        let mut depth = 0;
        let mut truncated = false;
        while !frontier.is_empty() {
            if depth == MAX_DERIVED_DEPTH {
                truncated = true;
                break;
            }
            depth += 1;
            let mut next = Vec::new();
            for run in &frontier {
                for v in self.backend.outputs(run, as_of)? {
                    if seen_versions.insert(v) {
                        for consumer in self.backend.consumers(v, as_of)? {
                            if seen_runs.insert(consumer.clone()) {
                                next.push(consumer);
                            }
                        }
                    }
                }
            }
            frontier = next;
        }
        let mut runs = Vec::with_capacity(seen_runs.len());
        for id in &seen_runs {
            if let Some(run) = self.backend.run(id)? {
                runs.push(run);
            }
        }
        let mut outputs = Vec::with_capacity(seen_versions.len());
        for v in seen_versions {
            outputs.push(self.backend.version(v)?);
        }
        outputs.sort_by(|a, b| {
            (&a.namespace, &a.name, &a.version).cmp(&(&b.namespace, &b.name, &b.version))
        });
        Ok(Derived {
            runs,
            outputs,
            truncated,
        })
    }

    /// The latest version of a dataset and the runs that wrote it.
    pub fn latest_version(
        &self,
        namespace: &str,
        name: &str,
    ) -> StoreResult<Option<(VersionRecord, Vec<RunRecord>)>> {
        let target = Target::Dataset {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        let Start::Versions(ids) = self.backend_start(&target, None)? else {
            return Ok(None);
        };
        let Some(&id) = ids.first() else {
            return Ok(None);
        };
        let mut runs = Vec::new();
        for run in self.backend.producers(id, None)? {
            if let Some(r) = self.backend.run(&run)? {
                runs.push(r);
            }
        }
        Ok(Some((self.backend.version(id)?, runs)))
    }

    /// Whether any dataset version has this content digest (sha-256 hex).
    pub fn knows_digest(&self, hex: &str) -> StoreResult<bool> {
        match self.backend_start(&Target::Digest(hex.to_owned()), None)? {
            Start::Versions(v) => Ok(!v.is_empty()),
            Start::Runs(_) => Ok(false),
        }
    }

    /// The latest successful run with `fingerprint` whose outputs are recorded
    /// with content digests, and those outputs.
    pub fn cache_lookup(
        &self,
        fingerprint: &str,
    ) -> StoreResult<Option<(RunRecord, Vec<VersionRecord>)>> {
        let filter = RunFilter {
            fingerprint: Some(fingerprint.to_owned()),
            state: Some("COMPLETE".into()),
            ..RunFilter::default()
        };
        let mut page = Page {
            offset: 0,
            limit: 50,
        };
        loop {
            let runs = self.runs(&filter, page)?;
            for run in &runs.items {
                let mut outputs = Vec::new();
                for v in self.backend.outputs(&run.run_id, None)? {
                    outputs.push(self.backend.version(v)?);
                }
                if !outputs.is_empty() && outputs.iter().all(|o| o.digest.is_some()) {
                    return Ok(Some((run.clone(), outputs)));
                }
            }
            match runs.next_offset() {
                Some(next) => page.offset = next,
                None => return Ok(None),
            }
        }
    }
}

/// Whether a store location names a PostgreSQL server.
fn is_postgres(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// Whether a PostgreSQL `location` already holds a prov store (reading
/// commands must not create one in whatever database they are pointed at).
/// `true` for any other location.
pub fn holds_store(location: &str) -> StoreResult<bool> {
    #[cfg(feature = "postgres")]
    if is_postgres(location) {
        return crate::postgres::Postgres::holds_store(location);
    }
    let _ = location;
    Ok(true)
}

#[cfg(feature = "postgres")]
fn open_postgres(location: &str) -> StoreResult<Box<dyn Backend>> {
    Ok(Box::new(crate::postgres::Postgres::open(location)?))
}

#[cfg(not(feature = "postgres"))]
fn open_postgres(location: &str) -> StoreResult<Box<dyn Backend>> {
    Err(StoreError::Unsupported {
        location: redact(location),
        reason: "this build has no PostgreSQL backend (build with the `postgres` feature)".into(),
    })
}

/// Hides the password of a URL such as `postgres://user:secret@host/db`,
/// whether in its user part or in a `password=` parameter.
pub fn redact(location: &str) -> String {
    let (location, query) = match location.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (location, None),
    };
    let mut out = match location.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((credentials, host)) => match credentials.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => location.to_owned(),
            },
            None => location.to_owned(),
        },
        None => location.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<&str> = query
            .split('&')
            .map(|pair| {
                if pair.starts_with("password=") {
                    "password=***"
                } else {
                    pair
                }
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// A breadth-first walk that collects nodes and edges.
struct Walk<'a> {
    backend: &'a dyn Backend,
    as_of: Option<i64>,
    versions: BTreeMap<i64, VersionRecord>,
    runs: BTreeSet<String>,
    edges: BTreeSet<Edge>,
    truncated: bool,
}

impl<'a> Walk<'a> {
    fn new(backend: &'a dyn Backend, as_of: Option<i64>) -> Self {
        Walk {
            backend,
            as_of,
            versions: BTreeMap::new(),
            runs: BTreeSet::new(),
            edges: BTreeSet::new(),
            truncated: false,
        }
    }

    fn version_id(&mut self, id: i64) -> StoreResult<String> {
        if let Some(v) = self.versions.get(&id) {
            return Ok(v.node_id());
        }
        let v = self.backend.version(id)?;
        let node = v.node_id();
        self.versions.insert(id, v);
        Ok(node)
    }

    fn edge(&mut self, origin: String, destination: String) {
        self.edges.insert(Edge {
            origin,
            destination,
        });
    }

    /// Walks `depth` run steps upstream (or downstream) from `start`.
    fn walk(&mut self, start: &Start, depth: u32, upstream: bool) -> StoreResult<()> {
        let (mut versions, mut runs): (Vec<i64>, Vec<String>) = match start {
            Start::Versions(v) => (v.clone(), Vec::new()),
            Start::Runs(r) => (Vec::new(), r.clone()),
        };
        for &v in &versions {
            self.version_id(v)?;
        }
        let mut seen_versions: BTreeSet<i64> = versions.iter().copied().collect();
        let mut seen_runs: BTreeSet<String> = runs.iter().cloned().collect();
        let mut steps = 0;
        loop {
            // Versions -> the runs that wrote (read) them.
            for v in std::mem::take(&mut versions) {
                let node = self.version_id(v)?;
                let runs_here = if upstream {
                    self.backend.producers(v, self.as_of)?
                } else {
                    self.backend.consumers(v, self.as_of)?
                };
                for run in runs_here {
                    if steps == depth {
                        self.truncated = true;
                        continue;
                    }
                    let run_node = format!("run:{run}");
                    if upstream {
                        self.edge(run_node, node.clone());
                    } else {
                        self.edge(node.clone(), run_node);
                    }
                    if seen_runs.insert(run.clone()) {
                        runs.push(run);
                    }
                }
            }
            if runs.is_empty() {
                break;
            }
            steps += 1;
            // Runs -> the versions they read (wrote).
            for run in std::mem::take(&mut runs) {
                self.runs.insert(run.clone());
                let run_node = format!("run:{run}");
                let next = if upstream {
                    self.backend.inputs(&run, self.as_of)?
                } else {
                    self.backend.outputs(&run, self.as_of)?
                };
                for v in next {
                    let node = self.version_id(v)?;
                    if upstream {
                        self.edge(node, run_node.clone());
                    } else {
                        self.edge(run_node.clone(), node);
                    }
                    if seen_versions.insert(v) {
                        versions.push(v);
                    }
                }
            }
        }
        Ok(())
    }

    fn into_graph(self) -> StoreResult<LineageGraph> {
        let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
        for v in self.versions.values() {
            nodes.insert(
                v.node_id(),
                Node {
                    id: v.node_id(),
                    kind: "DATASET",
                    data: json!({
                        "namespace": v.namespace,
                        "name": v.name,
                        "version": v.version,
                        "digest": v.digest,
                        "size": v.size,
                        "createdAt": chrono::DateTime::from_timestamp_micros(v.created_at)
                            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
                    }),
                    in_edges: Vec::new(),
                    out_edges: Vec::new(),
                },
            );
        }
        for run in &self.runs {
            let mut record = self.backend.run(run)?;
            // The run as it stood at `as_of`: its facets and state from the
            // events up to then; not yet ended if its end came later.
            let raws = self.backend.run_events(run, self.as_of)?;
            let (facets, state) = crate::normalize::merge_run(raws.iter().map(Vec::as_slice));
            if let (Some(r), Some(_)) = (&mut record, self.as_of) {
                r.state = state.map(str::to_owned);
                if !matches!(state, Some("COMPLETE" | "FAIL" | "ABORT")) {
                    r.ended_at = None;
                    r.exit_code = None;
                }
            }
            nodes.insert(
                format!("run:{run}"),
                Node {
                    id: format!("run:{run}"),
                    kind: "RUN",
                    data: run_data(record, &facets),
                    in_edges: Vec::new(),
                    out_edges: Vec::new(),
                },
            );
        }
        for edge in self.edges {
            if let Some(n) = nodes.get_mut(&edge.origin) {
                n.out_edges.push(edge.clone());
            }
            if let Some(n) = nodes.get_mut(&edge.destination) {
                n.in_edges.push(edge);
            }
        }
        Ok(LineageGraph {
            graph: nodes.into_values().collect(),
            truncated: self.truncated,
        })
    }
}

/// What a run node says: the run's record and the facets an auditor needs.
fn run_data(record: Option<RunRecord>, facets: &Map<String, Value>) -> Value {
    let mut data = serde_json::to_value(&record).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut data {
        let keep = [
            "prov_container",
            "prov_parameters",
            "prov_execution",
            "prov_software",
            "prov_fingerprint",
            "prov_cache",
            "prov_rerun",
            "executionParameters",
            "errorMessage",
            "parent",
        ];
        let selected: Map<String, Value> = facets
            .iter()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        map.insert("facets".into(), Value::Object(selected));
    }
    data
}

#[cfg(test)]
pub(crate) mod tests {
    use super::{Store, redact};
    use provenance_core::{Event, EventType, Job, Run, RunEvent, RunId};

    /// An "event" on which the parsing thread panics, as a bug would make it.
    pub(crate) const PARSER_BUG: &[u8] = b"{\"prov-test\": \"panic in the parser\"}";

    /// START events of `n` runs, of jobs of their own.
    pub(crate) fn starts(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let run = Run::new(RunId::new_v7());
                let e = RunEvent::new(EventType::Start, run, Job::new("ns", format!("j{i}")));
                Event::Run(e).to_json().into_bytes()
            })
            .collect()
    }

    #[test]
    fn the_parsers_compress_with_the_dictionary_once_it_is_committed() {
        let events = starts(700);
        let raws: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
        let store = Store::in_memory().unwrap();
        assert!(store.backend.dictionary().is_none());
        // 300 events: enough to train on, after their commit.
        store.ingest_batch(&raws[..300]).unwrap();
        let shared = store.backend.dictionary().expect("trained after 256");
        for result in store.ingest_batches(&raws[300..], 100) {
            result.unwrap();
        }
        assert_eq!(store.backend.dictionary().unwrap().id, shared.id);
        let page = store
            .events(crate::Page {
                offset: 0,
                limit: 1000,
            })
            .unwrap();
        let back: Vec<&[u8]> = page.items.iter().map(|(_, raw)| raw.as_slice()).collect();
        assert_eq!(back, raws);
        assert!(store.verify_chain().unwrap().broken.is_none());
    }

    #[test]
    fn a_parser_that_stops_midway_stores_nothing_of_the_batch() {
        let events = starts(200);
        let mut batch: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
        batch.insert(150, PARSER_BUG);
        let store = Store::in_memory().unwrap();
        let panicked =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.ingest_batch(&batch)));
        assert!(panicked.is_err(), "the parser's panic reaches the caller");
        // Not the 150 events before it: nothing.
        assert_eq!(store.verify_chain().unwrap().events, 0);
        // In a bulk load, the batches before the one it stopped in are
        // stored (each is a transaction), and none from that one on. The
        // parser stopped in its chunk of events 136..200, so the batch of
        // 100..150 could not be completed either.
        let bulk = Store::in_memory().unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            bulk.ingest_batches(&batch, 50)
        }));
        assert!(panicked.is_err(), "the parser's panic reaches the caller");
        assert_eq!(bulk.verify_chain().unwrap().events, 100);
        // And the store goes on.
        batch.remove(150);
        let outcomes = store.ingest_batch(&batch).unwrap();
        assert_eq!(outcomes.len(), 200);
        assert_eq!(store.verify_chain().unwrap().events, 200);
    }

    fn check(location: &str, expected: &str) {
        assert_eq!(redact(location), expected);
    }

    #[test]
    fn passwords_are_hidden() {
        check("postgres://u:pw@h:5432/db", "postgres://u:***@h:5432/db");
        check("postgres://u:p@ss@h/db", "postgres://u:***@h/db");
        check(
            "postgresql://h/db?user=u&password=pw&sslmode=require",
            "postgresql://h/db?user=u&password=***&sslmode=require",
        );
        check("postgres://u@h/db", "postgres://u@h/db");
        check("/data/prov.db", "/data/prov.db");
    }
}
