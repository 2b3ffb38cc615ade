//! The PostgreSQL backend, for teams whose `prov serve` replicas share one
//! database: pooled sessions (`pool.rs`, TLS as the URL's `sslmode` asks),
//! versioned migrations kept as files in `migrations/postgres/`, and the same
//! queries as the SQLite backend in PostgreSQL's dialect.
//!
//! Every ingest transaction first takes a transaction-scoped advisory lock
//! keyed on this store's `event` table, then reads the chain head and appends.
//! Writers in other sessions, processes or machines wait for the lock, so the
//! head they read is the one their links extend: positions are gapless and
//! each link commits to its true predecessor. The lock is released by commit
//! or rollback, so a crashed writer cannot hold it. Reads take no lock.

mod bulk;
mod pool;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use postgres::Row;
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use provenance_core::EventType;

use self::pool::{Pool, Pooled, Target as Server, prepared};
use crate::backend::{Backend, KnownVersion, Start};
use crate::chain;
use crate::model::*;
use crate::normalize::{Body, DatasetPart, Prepared, RunPart, now_micros, state_of};
use crate::tables::{self, Table};
use crate::{StoreError, StoreResult, redact};

/// The migrations, in order; the schema version is their count.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/postgres/0001_init.sql")];

/// How long a writer waits for another writer's chain lock before giving up.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// The advisory lock that serializes migrations in a database ("prov" "migr").
const MIGRATION_LOCK: i64 = 0x7072_6f76_6d69_6772;

/// The high half of the chain lock's key ("prov"); the low half is the `event` table's oid.
const CHAIN_LOCK_CLASS: i64 = 0x7072_6f76;

pub(crate) struct Postgres {
    /// The URL with its password hidden, for messages.
    location: String,
    pool: Pool,
    /// The advisory lock key of this store's chain.
    chain_lock: i64,
    /// Ids of jobs, datasets and content-addressed versions. Rows are never
    /// deleted or renumbered, so an id once committed stays right, even with
    /// other replicas writing; new ids join only after their commit.
    ids: Mutex<IdCache>,
}

#[derive(Default)]
struct IdCache {
    named: HashMap<(&'static str, String, String), i64>,
    versions: HashMap<(i64, String), KnownVersion>,
}

#[derive(Default)]
struct Learned {
    named: Vec<((&'static str, String, String), i64)>,
    versions: Vec<((i64, String), KnownVersion)>,
}

fn backend(context: impl Into<String>) -> impl FnOnce(postgres::Error) -> StoreError {
    let context = context.into();
    move |source| {
        if source.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
            return StoreError::Busy {
                waited: LOCK_TIMEOUT,
                source: source.into(),
            };
        }
        StoreError::Backend {
            context,
            source: source.into(),
        }
    }
}

impl Postgres {
    /// Whether the database at `url` holds a prov store (its schema table),
    /// without creating one.
    pub fn holds_store(url: &str) -> StoreResult<bool> {
        let fail = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
            what: "store",
            path: PathBuf::from(redact(url)),
            source,
        };
        let pool = Pool::new(Server::parse(url).map_err(|e| fail(e.into()))?);
        let mut conn = pool.get().map_err(|e| fail(e.into()))?;
        let row = conn
            .client
            .query_one("SELECT to_regclass('prov_schema') IS NOT NULL", &[])
            .map_err(|e| fail(e.into()))?;
        if !row.get::<_, bool>(0) {
            refuse_unusable_store(&mut conn, &redact(url))?;
        }
        Ok(row.get(0))
    }

    /// Connects to the store at `url` and brings its schema up to date.
    pub fn open(url: &str) -> StoreResult<Self> {
        let location = redact(url);
        let fail = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
            what: "store",
            path: PathBuf::from(&location),
            source,
        };
        let server = Server::parse(url).map_err(|e| fail(e.into()))?;
        let pool = Pool::new(server);
        let chain_lock = {
            let mut conn = pool.get().map_err(|e| fail(e.into()))?;
            migrate(&mut conn, &location)?;
            let oid: i64 = conn
                .client
                .query_one("SELECT 'event'::regclass::oid::bigint", &[])
                .map_err(|e| fail(e.into()))?
                .get(0);
            (CHAIN_LOCK_CLASS << 32) | oid
        };
        Ok(Postgres {
            location,
            pool,
            chain_lock,
            ids: Mutex::new(IdCache::default()),
        })
    }

    fn conn(&self) -> StoreResult<Pooled<'_>> {
        self.pool.get().map_err(|e| StoreError::Backend {
            context: format!("connect to the store at {}", self.location),
            source: e.into(),
        })
    }

    /// Runs a read on a pooled session.
    fn read<T>(
        &self,
        context: &str,
        f: impl FnOnce(&mut pool::Conn) -> Result<T, postgres::Error>,
    ) -> StoreResult<T> {
        let mut conn = self.conn()?;
        f(&mut conn).map_err(backend(context))
    }

    fn query(
        &self,
        context: &str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StoreResult<Vec<Row>> {
        self.read(context, |c| {
            let stmt = prepared(&mut c.statements, &mut c.client, sql)?;
            c.client.query(&stmt, params)
        })
    }

    fn run_ids(
        &self,
        sql: &'static str,
        version: i64,
        as_of: Option<i64>,
    ) -> StoreResult<Vec<String>> {
        let rows = self.query("query lineage", sql, &[&version, &as_of])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn version_ids(
        &self,
        sql: &'static str,
        run: &str,
        as_of: Option<i64>,
    ) -> StoreResult<Vec<i64>> {
        let rows = self.query("query lineage", sql, &[&run, &as_of])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

/// Applies the migrations this session's schema lacks, under a lock so that
/// replicas starting together migrate once.
/// Refuses, naming the schema, when this role sees no store but a schema of
/// its search path that it may not use holds one: otherwise it would be told
/// there is no store (a reader), or that no schema was selected to create
/// one in (a writer).
fn refuse_unusable_store(conn: &mut pool::Conn, location: &str) -> StoreResult<()> {
    let hidden = conn
        .client
        .query(
            "WITH path AS ( \
                 SELECT replace(trim(both '\"' from trim(p)), '$user', current_user) AS name \
                 FROM unnest(string_to_array(current_setting('search_path'), ',')) AS p) \
             SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relname = 'prov_schema' AND NOT has_schema_privilege(n.oid, 'USAGE') \
               AND n.nspname IN (SELECT name FROM path) \
             ORDER BY 1",
            &[],
        )
        .map_err(backend("look for a store this role may not use"))?;
    match hidden.first().map(|r| r.get::<_, String>(0)) {
        None => Ok(()),
        Some(schema) => Err(StoreError::Open {
            what: "store",
            path: PathBuf::from(location),
            source: format!(
                "a prov store is in the schema {schema}, which this role may not use (it lacks USAGE on it): GRANT USAGE ON SCHEMA {schema} (and SELECT, or INSERT, on its tables) to this role, or connect as one that has it"
            )
            .into(),
        }),
    }
}

fn migrate(conn: &mut pool::Conn, location: &str) -> StoreResult<()> {
    let supported = MIGRATIONS.len() as i64;
    let visible: bool = conn
        .client
        .query_one("SELECT to_regclass('prov_schema') IS NOT NULL", &[])
        .map_err(backend("look for the store's schema"))?
        .get(0);
    if !visible {
        refuse_unusable_store(conn, location)?;
    }
    let mut tx = conn
        .client
        .transaction()
        .map_err(backend("begin the schema migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(backend("wait for other replicas' schema migration"))?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS prov_schema (version BIGINT NOT NULL)")
        .map_err(|e| StoreError::Open {
            what: "store",
            path: PathBuf::from(location),
            source: e.into(),
        })?;
    let found: i64 = tx
        .query_opt("SELECT version FROM prov_schema", &[])
        .map_err(backend("read the schema version"))?
        .map_or(0, |r| r.get(0));
    if found > supported {
        return Err(StoreError::SchemaTooNew {
            what: "store",
            path: PathBuf::from(location),
            found,
            supported,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql)
            .map_err(backend(format!("apply migration {} of the store", i + 1)))?;
    }
    if found < supported {
        tx.execute("DELETE FROM prov_schema", &[])
            .and_then(|_| {
                tx.execute(
                    "INSERT INTO prov_schema (version) VALUES ($1)",
                    &[&supported],
                )
            })
            .map_err(backend("record the schema version"))?;
    }
    tx.commit().map_err(backend("commit the schema migration"))
}

/// How an event's run row merges into the stored one (terminal states stick,
/// the earliest first sighting wins, a value replaces a missing one), shared
/// by the one-by-one and the set-at-a-time inserts. A macro so that both
/// statements stay `&'static str` (prepared statements are cached by text).
macro_rules! run_merge {
    () => {
        " ON CONFLICT (run_id) DO UPDATE SET
         state = CASE WHEN run.state IN ('COMPLETE', 'FAIL', 'ABORT') THEN run.state
         ELSE COALESCE(excluded.state, run.state) END,
         started_at = COALESCE(run.started_at, excluded.started_at),
         ended_at = COALESCE(run.ended_at, excluded.ended_at),
         first_seen = LEAST(run.first_seen, excluded.first_seen),
         parent_run_id = COALESCE(excluded.parent_run_id, run.parent_run_id),
         root_run_id = COALESCE(excluded.root_run_id, run.root_run_id),
         fingerprint = COALESCE(excluded.fingerprint, run.fingerprint),
         container_image = COALESCE(excluded.container_image, run.container_image),
         container_registry = COALESCE(excluded.container_registry, run.container_registry),
         container_repository = COALESCE(excluded.container_repository, run.container_repository),
         container_tag = COALESCE(excluded.container_tag, run.container_tag),
         container_digest = COALESCE(excluded.container_digest, run.container_digest),
         params_sha256 = COALESCE(excluded.params_sha256, run.params_sha256),
         exit_code = COALESCE(excluded.exit_code, run.exit_code),
         user_name = COALESCE(excluded.user_name, run.user_name),
         host = COALESCE(excluded.host, run.host)"
    };
}
pub(crate) use run_merge;

/// What an ingest transaction reads and writes: the transaction, its
/// session's statements, the shared id cache, and the ids it learns.
struct Writer<'t, 'c> {
    tx: postgres::Transaction<'t>,
    statements: &'c mut HashMap<&'static str, postgres::Statement>,
    cache: &'c IdCache,
    learned: Learned,
}

type PgResult<T> = Result<T, postgres::Error>;

impl Writer<'_, '_> {
    fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> PgResult<u64> {
        let stmt = prepared(self.statements, &mut self.tx, sql)?;
        self.tx.execute(&stmt, params)
    }

    fn query(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> PgResult<Vec<Row>> {
        let stmt = prepared(self.statements, &mut self.tx, sql)?;
        self.tx.query(&stmt, params)
    }

    fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> PgResult<Option<Row>> {
        let stmt = prepared(self.statements, &mut self.tx, sql)?;
        self.tx.query_opt(&stmt, params)
    }

    fn query_one(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> PgResult<Row> {
        let stmt = prepared(self.statements, &mut self.tx, sql)?;
        self.tx.query_one(&stmt, params)
    }

    fn named(&mut self, table: &'static str, namespace: &str, name: &str) -> PgResult<i64> {
        let key = (table, namespace.to_owned(), name.to_owned());
        if let Some(&id) = self.cache.named.get(&key) {
            return Ok(id);
        }
        if let Some((_, id)) = self.learned.named.iter().rev().find(|(k, _)| *k == key) {
            return Ok(*id);
        }
        // Writers are serialized by the chain lock, so select-then-insert
        // cannot race another writer.
        let (select, insert) = match table {
            "job" => (
                "SELECT id FROM job WHERE namespace = $1 AND name = $2",
                "INSERT INTO job (namespace, name) VALUES ($1, $2) RETURNING id",
            ),
            _ => (
                "SELECT id FROM dataset WHERE namespace = $1 AND name = $2",
                "INSERT INTO dataset (namespace, name) VALUES ($1, $2) RETURNING id",
            ),
        };
        let id = match self.query_opt(select, &[&namespace, &name])? {
            Some(row) => row.get(0),
            None => self.query_one(insert, &[&namespace, &name])?.get(0),
        };
        self.learned.named.push((key, id));
        Ok(id)
    }

    /// Content-addressed versions (`sha256:`) are cached with what their row
    /// holds, from earlier transactions: a sighting that would change nothing
    /// needs no write. Other versions are upserted every time.
    fn version(
        &mut self,
        dataset: i64,
        version: &str,
        part: &DatasetPart,
        time: i64,
    ) -> PgResult<i64> {
        let cacheable = version.starts_with("sha256:");
        let key = (dataset, version.to_owned());
        if cacheable
            && let Some(known) = self.cache.versions.get(&key)
            && !known.changed_by(part, time)
        {
            return Ok(known.id);
        }
        let known = self.upsert_version(dataset, version, part, time)?;
        if cacheable {
            self.learned.versions.push((key, known));
        }
        Ok(known.id)
    }

    fn upsert_version(
        &mut self,
        dataset: i64,
        version: &str,
        part: &DatasetPart,
        time: i64,
    ) -> PgResult<KnownVersion> {
        let size = part.size.map(|s| s as i64);
        let row = self.query_one(
            "INSERT INTO dataset_version (dataset_id, version, digest, size, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (dataset_id, version) DO UPDATE SET
                digest = COALESCE(dataset_version.digest, excluded.digest),
                size = COALESCE(dataset_version.size, excluded.size),
                created_at = LEAST(dataset_version.created_at, excluded.created_at)
             RETURNING id, created_at, digest IS NOT NULL, size IS NOT NULL",
            &[&dataset, &version, &part.digest, &size, &time],
        )?;
        Ok(KnownVersion {
            id: row.get(0),
            created_at: row.get(1),
            digest: row.get(2),
            size: row.get(3),
        })
    }

    /// The version an input names, or the dataset's latest at `time`.
    fn input_version(&mut self, part: &DatasetPart, time: i64) -> PgResult<i64> {
        let dataset = self.named("dataset", &part.namespace, &part.name)?;
        if let Some(version) = &part.version {
            return self.version(dataset, version, part, time);
        }
        // The version created last by then, a placeholder only if there is
        // no other: two index walks, whatever the number of versions (see
        // the SQLite store's `input_version`).
        let mut latest = self.query_opt(
            "SELECT id FROM dataset_version WHERE dataset_id = $1 AND created_at <= $2
             AND version <> 'unknown' ORDER BY created_at DESC, id DESC LIMIT 1",
            &[&dataset, &time],
        )?;
        if latest.is_none() {
            latest = self.query_opt(
                "SELECT id FROM dataset_version WHERE dataset_id = $1 AND created_at <= $2
                 ORDER BY created_at DESC, id DESC LIMIT 1",
                &[&dataset, &time],
            )?;
        }
        match latest {
            Some(row) => Ok(row.get(0)),
            None => self
                .upsert_version(dataset, "unknown", part, time)
                .map(|k| k.id),
        }
    }

    fn apply_run(&mut self, run: &RunPart, time: i64) -> PgResult<()> {
        let job = self.named("job", &run.namespace, &run.job)?;
        let state = state_of(&run.event_type);
        let started = matches!(run.event_type, Some(EventType::Start)).then_some(time);
        let ended = run
            .event_type
            .as_ref()
            .is_some_and(EventType::is_terminal)
            .then_some(time);
        let c = &run.columns;
        self.execute(
            concat!(
                "INSERT INTO run (run_id, job_id, state, started_at, ended_at, first_seen, parent_run_id, root_run_id,
                fingerprint, container_image, container_registry, container_repository, container_tag,
                container_digest, params_sha256, exit_code, user_name, host)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
                run_merge!()
            ),
            &[
                &run.run_id,
                &job,
                &state,
                &started,
                &ended,
                &time,
                &c.parent_run_id,
                &c.root_run_id,
                &c.fingerprint,
                &c.container_image,
                &c.container_registry,
                &c.container_repository,
                &c.container_tag,
                &c.container_digest,
                &c.params_sha256,
                &c.exit_code,
                &c.user,
                &c.host,
            ],
        )?;
        let mut inputs = Vec::with_capacity(run.inputs.len());
        for input in &run.inputs {
            inputs.push(self.input_version(input, time)?);
        }
        if !inputs.is_empty() {
            self.execute(
                "INSERT INTO run_input (run_id, version_id, event_time)
                 SELECT $1, v, $3 FROM unnest($2::bigint[]) AS v ON CONFLICT DO NOTHING",
                &[&run.run_id, &inputs, &time],
            )?;
        }
        let mut outputs = Vec::with_capacity(run.outputs.len());
        for output in &run.outputs {
            let dataset = self.named("dataset", &output.namespace, &output.name)?;
            let version = output
                .version
                .clone()
                .unwrap_or_else(|| format!("run:{}", run.run_id));
            outputs.push(self.version(dataset, &version, output, time)?);
        }
        if !outputs.is_empty() {
            self.execute(
                "INSERT INTO run_output (run_id, version_id, event_time)
                 SELECT $1, v, $3 FROM unnest($2::bigint[]) AS v ON CONFLICT DO NOTHING",
                &[&run.run_id, &outputs, &time],
            )?;
        }
        Ok(())
    }
}

/// A run's row with its job's names; `run_record` reads it.
macro_rules! run_select {
    () => {
        "SELECT r.run_id, j.namespace, j.name, r.state, r.started_at, r.ended_at,
            r.parent_run_id, r.root_run_id, r.fingerprint, r.container_image, r.container_digest,
            r.params_sha256, r.exit_code, r.user_name, r.host FROM run r JOIN job j ON j.id = r.job_id"
    };
}

fn run_record(row: &Row) -> RunRecord {
    RunRecord {
        run_id: row.get(0),
        namespace: row.get(1),
        job: row.get(2),
        state: row.get(3),
        started_at: row.get(4),
        ended_at: row.get(5),
        parent_run_id: row.get(6),
        root_run_id: row.get(7),
        fingerprint: row.get(8),
        container_image: row.get(9),
        container_digest: row.get(10),
        params_sha256: row.get(11),
        exit_code: row.get(12),
        user: row.get(13),
        host: row.get(14),
    }
}

impl Postgres {
    /// Appends a batch: set-at-a-time when `bulk` and the batch allows it
    /// (see `bulk.rs`), one event at a time otherwise.
    fn ingest_with(
        &self,
        batch: &mut dyn Iterator<Item = Prepared>,
        bulk: bool,
    ) -> StoreResult<Vec<Outcome>> {
        let events: Vec<Prepared> = batch.collect();
        let mut conn = self.conn()?;
        let pool::Conn { client, statements } = &mut *conn;
        let tx = client
            .transaction()
            .map_err(backend("begin a write to the store"))?;
        let snapshot = std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()));
        let mut w = Writer {
            tx,
            statements,
            cache: &snapshot,
            learned: Learned::default(),
        };
        let result = (|| -> StoreResult<Vec<Outcome>> {
            // The chain lock: held until this transaction ends (see the module docs).
            w.execute("SELECT pg_advisory_xact_lock($1)", &[&self.chain_lock])
                .map_err(backend("wait for other writers to the chain"))?;
            let received = now_micros();
            let (seq, previous): (u64, String) = w
                .query_opt("SELECT seq, link FROM event ORDER BY seq DESC LIMIT 1", &[])
                .map_err(backend("read the chain head"))?
                .map_or((0, chain::GENESIS.to_owned()), |r| {
                    (r.get::<_, i64>(0) as u64, r.get(1))
                });
            if bulk && bulk::fits(&events) {
                w.append_bulk(&events, seq, previous, received)
                    .map_err(backend(format!("append {} events", events.len())))
            } else {
                w.append_each(&events, seq, previous, received)
            }
        })();
        let Writer { tx, learned, .. } = w;
        let committed = result.and_then(|outcomes| {
            tx.commit()
                .map_err(backend("commit a write to the store"))
                .map(|()| outcomes)
        });
        // The cache goes back whatever happened; new ids only if committed.
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        *ids = snapshot;
        if committed.is_ok() {
            ids.named.extend(learned.named);
            ids.versions.extend(learned.versions);
        }
        committed
    }
}

impl Writer<'_, '_> {
    /// Appends `events` one at a time after position `seq` with link `previous`.
    fn append_each(
        &mut self,
        events: &[Prepared],
        mut seq: u64,
        mut previous: String,
        received: i64,
    ) -> StoreResult<Vec<Outcome>> {
        let mut outcomes = Vec::new();
        for event in events {
            seq += 1;
            let link = chain::link_with_content(&previous, seq, &event.content);
            // One statement: the unique event_id makes a second copy a no-op.
            let inserted = self
                .execute(
                    "INSERT INTO event (seq, event_id, raw, link, kind, run_id, event_time, received_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (event_id) DO NOTHING",
                    &[
                        &(seq as i64),
                        &event.event_id,
                        &event.raw,
                        &link,
                        &event.kind,
                        &event.run_id,
                        &event.time,
                        &received,
                    ],
                )
                .map_err(backend("append an event"))?;
            if inserted == 0 {
                seq -= 1;
                let earlier: i64 = self
                    .query_one(
                        "SELECT seq FROM event WHERE event_id = $1",
                        &[&event.event_id],
                    )
                    .map_err(backend("look for an earlier copy of an event"))?
                    .get(0);
                outcomes.push(Outcome::Duplicate {
                    seq: earlier as u64,
                });
                continue;
            }
            match &event.body {
                Body::Run(run) => self.apply_run(run, event.time),
                Body::Dataset(part) => {
                    self.named("dataset", &part.namespace, &part.name)
                        .and_then(|id| match &part.version {
                            Some(v) => self.version(id, v, part, event.time).map(drop),
                            None => Ok(()),
                        })
                }
                Body::Job { namespace, name } => self.named("job", namespace, name).map(drop),
            }
            .map_err(backend(format!("record event {seq} in the lineage model")))?;
            previous = link;
            outcomes.push(Outcome::Stored { seq });
        }
        Ok(outcomes)
    }
}

/// The rows of a derived table by natural key, as text, in the byte order of
/// the keys (collation "C", NULLs first: the order the SQLite store reads
/// them in), with the columns of `Table::columns`.
fn table_sql(table: Table) -> &'static str {
    match table {
        Table::Event => {
            "SELECT seq, event_id, kind, run_id, event_time::text FROM event ORDER BY seq"
        }
        Table::Job => {
            "SELECT namespace, name FROM job
             ORDER BY namespace COLLATE \"C\", name COLLATE \"C\""
        }
        Table::Run => {
            "SELECT r.run_id, j.namespace, j.name, r.state, r.started_at::text, r.ended_at::text,
                r.first_seen::text, r.parent_run_id, r.root_run_id, r.fingerprint,
                r.container_image, r.container_registry, r.container_repository,
                r.container_tag, r.container_digest, r.params_sha256, r.exit_code::text,
                r.user_name, r.host
             FROM run r LEFT JOIN job j ON j.id = r.job_id ORDER BY r.run_id COLLATE \"C\""
        }
        Table::Dataset => {
            "SELECT namespace, name FROM dataset
             ORDER BY namespace COLLATE \"C\", name COLLATE \"C\""
        }
        Table::DatasetVersion => {
            "SELECT d.namespace, d.name, v.version, v.digest, v.size::text, v.created_at::text,
                (ROW_NUMBER() OVER (PARTITION BY v.dataset_id ORDER BY v.id))::text
             FROM dataset_version v LEFT JOIN dataset d ON d.id = v.dataset_id
             ORDER BY d.namespace COLLATE \"C\" NULLS FIRST, d.name COLLATE \"C\" NULLS FIRST,
                v.version COLLATE \"C\""
        }
        Table::RunInput => {
            "SELECT i.run_id, d.namespace, d.name, v.version, i.event_time::text
             FROM run_input i LEFT JOIN dataset_version v ON v.id = i.version_id
                LEFT JOIN dataset d ON d.id = v.dataset_id
             ORDER BY i.run_id COLLATE \"C\", d.namespace COLLATE \"C\" NULLS FIRST,
                d.name COLLATE \"C\" NULLS FIRST, v.version COLLATE \"C\" NULLS FIRST"
        }
        Table::RunOutput => {
            "SELECT o.run_id, d.namespace, d.name, v.version, o.event_time::text
             FROM run_output o LEFT JOIN dataset_version v ON v.id = o.version_id
                LEFT JOIN dataset d ON d.id = v.dataset_id
             ORDER BY o.run_id COLLATE \"C\", d.namespace COLLATE \"C\" NULLS FIRST,
                d.name COLLATE \"C\" NULLS FIRST, v.version COLLATE \"C\" NULLS FIRST"
        }
    }
}

impl Backend for Postgres {
    fn ingest(
        &self,
        batch: &mut dyn Iterator<Item = StoreResult<Prepared>>,
        _spent: &mut dyn FnMut(Prepared),
    ) -> StoreResult<Vec<Outcome>> {
        // Collected first: the time goes to round trips, not to parsing (nor
        // to freeing: events are dropped here).
        let events = batch.collect::<StoreResult<Vec<Prepared>>>()?;
        self.ingest_with(&mut events.into_iter(), true)
    }

    fn walk_chain(&self, visit: &mut dyn FnMut(u64, &[u8], &str) -> bool) -> StoreResult<()> {
        self.read("read the event log", |c| {
            let params: [&(dyn ToSql + Sync); 0] = [];
            let mut rows = c.client.query_raw(
                "SELECT seq, raw, link FROM event ORDER BY seq",
                params.iter().copied(),
            )?;
            while let Some(row) = rows.next()? {
                let seq: i64 = row.get(0);
                let raw: &[u8] = row.get(1);
                let link: &str = row.get(2);
                // A position below 1 (an altered row) is reported as 0, as
                // the SQLite store does: out of order, not a wrapped number.
                if !visit(u64::try_from(seq).unwrap_or(0), raw, link) {
                    break;
                }
            }
            Ok(())
        })
    }

    fn limits_text(&self) -> bool {
        true
    }

    fn walk_table(
        &self,
        table: Table,
        visit: &mut dyn FnMut(tables::Row) -> bool,
    ) -> StoreResult<()> {
        let (keys, values) = table.columns();
        self.read("read the derived tables", |c| {
            let params: [&(dyn ToSql + Sync); 0] = [];
            let mut rows = c
                .client
                .query_raw(table_sql(table), params.iter().copied())?;
            while let Some(row) = rows.next()? {
                let key = (0..keys.len())
                    .map(|i| match (table, i) {
                        (Table::Event, 0) => tables::seq_key(row.get(0)),
                        _ => row.get(i),
                    })
                    .collect();
                let values = (keys.len()..keys.len() + values.len())
                    .map(|i| row.get(i))
                    .collect();
                if !visit(tables::Row { key, values }) {
                    break;
                }
            }
            Ok(())
        })
    }

    fn head(&self) -> StoreResult<Option<(u64, String)>> {
        let rows = self.query(
            "read the chain head",
            "SELECT seq, link FROM event ORDER BY seq DESC LIMIT 1",
            &[],
        )?;
        Ok(rows.first().map(|r| (r.get::<_, i64>(0) as u64, r.get(1))))
    }

    // The dataset or job is looked up by a scalar subquery, not a join: a
    // prepared statement's generic plan then walks the (id, time) index
    // backwards, where with a join it may scan every version (100x slower
    // on a 800,000-event store).
    fn start(&self, target: &Target, as_of: Option<i64>) -> StoreResult<Start> {
        let cutoff = as_of.unwrap_or(i64::MAX);
        let context = "find the target";
        let found = match target {
            Target::Digest(hex) => {
                let rows = self.query(
                    context,
                    "SELECT id FROM dataset_version WHERE digest = $1 AND created_at <= $2 ORDER BY id",
                    &[hex, &cutoff],
                )?;
                Start::Versions(rows.iter().map(|r| r.get(0)).collect())
            }
            Target::Version {
                namespace,
                name,
                version,
            } => {
                let rows = self.query(
                    context,
                    "SELECT v.id FROM dataset_version v
                     WHERE v.dataset_id = (SELECT id FROM dataset WHERE namespace = $1 AND name = $2)
                       AND v.version = $3 AND v.created_at <= $4",
                    &[namespace, name, version, &cutoff],
                )?;
                Start::Versions(rows.iter().map(|r| r.get(0)).collect())
            }
            Target::Dataset { namespace, name } => {
                let rows = self.query(
                    context,
                    "SELECT v.id FROM dataset_version v
                     WHERE v.dataset_id = (SELECT id FROM dataset WHERE namespace = $1 AND name = $2)
                       AND v.created_at <= $3
                     ORDER BY v.version = 'unknown',
                        COALESCE((SELECT MAX(o.event_time) FROM run_output o
                                  WHERE o.version_id = v.id AND o.event_time <= $3),
                                 v.created_at) DESC, v.id DESC LIMIT 1",
                    &[namespace, name, &cutoff],
                )?;
                Start::Versions(rows.iter().map(|r| r.get(0)).collect())
            }
            Target::Run(id) => {
                let rows = self.query(
                    context,
                    "SELECT run_id FROM run WHERE run_id = $1 AND first_seen <= $2",
                    &[id, &cutoff],
                )?;
                Start::Runs(rows.iter().map(|r| r.get(0)).collect())
            }
            Target::Job { namespace, name } => {
                let rows = self.query(
                    context,
                    "SELECT r.run_id FROM run r
                     WHERE r.job_id = (SELECT id FROM job WHERE namespace = $1 AND name = $2)
                       AND r.first_seen <= $3
                     ORDER BY r.first_seen DESC LIMIT 1",
                    &[namespace, name, &cutoff],
                )?;
                Start::Runs(rows.iter().map(|r| r.get(0)).collect())
            }
        };
        Ok(found)
    }

    fn version(&self, id: i64) -> StoreResult<VersionRecord> {
        let rows = self.query(
            "read a dataset version",
            "SELECT d.namespace, d.name, v.version, v.digest, v.size, v.created_at
             FROM dataset_version v JOIN dataset d ON d.id = v.dataset_id WHERE v.id = $1",
            &[&id],
        )?;
        let r = rows.first().ok_or_else(|| StoreError::NotFound {
            what: format!("dataset version {id}"),
        })?;
        Ok(VersionRecord {
            namespace: r.get(0),
            name: r.get(1),
            version: r.get(2),
            digest: r.get(3),
            size: r.get::<_, Option<i64>>(4).map(|s| s as u64),
            created_at: r.get(5),
        })
    }

    fn run(&self, run_id: &str) -> StoreResult<Option<RunRecord>> {
        const SQL: &str = concat!(run_select!(), " WHERE r.run_id = $1");
        let rows = self.query("read a run", SQL, &[&run_id])?;
        Ok(rows.first().map(run_record))
    }

    fn run_events(&self, run_id: &str, as_of: Option<i64>) -> StoreResult<Vec<Vec<u8>>> {
        let rows = self.query(
            "read a run's events",
            "SELECT raw FROM event WHERE run_id = $1 AND ($2::bigint IS NULL OR event_time <= $2)
             ORDER BY seq",
            &[&run_id, &as_of],
        )?;
        Ok(rows.iter().map(|row| row.get::<_, Vec<u8>>(0)).collect())
    }

    fn producers(&self, version: i64, as_of: Option<i64>) -> StoreResult<Vec<String>> {
        self.run_ids(
            "SELECT run_id FROM run_output WHERE version_id = $1 AND ($2::bigint IS NULL OR event_time <= $2) ORDER BY run_id",
            version,
            as_of,
        )
    }

    fn consumers(&self, version: i64, as_of: Option<i64>) -> StoreResult<Vec<String>> {
        self.run_ids(
            "SELECT run_id FROM run_input WHERE version_id = $1 AND ($2::bigint IS NULL OR event_time <= $2) ORDER BY run_id",
            version,
            as_of,
        )
    }

    fn inputs(&self, run: &str, as_of: Option<i64>) -> StoreResult<Vec<i64>> {
        self.version_ids(
            "SELECT version_id FROM run_input WHERE run_id = $1 AND ($2::bigint IS NULL OR event_time <= $2) ORDER BY version_id",
            run,
            as_of,
        )
    }

    fn outputs(&self, run: &str, as_of: Option<i64>) -> StoreResult<Vec<i64>> {
        self.version_ids(
            "SELECT version_id FROM run_output WHERE run_id = $1 AND ($2::bigint IS NULL OR event_time <= $2) ORDER BY version_id",
            run,
            as_of,
        )
    }

    fn runs(&self, filter: &RunFilter, page: Page) -> StoreResult<Paged<RunRecord>> {
        let mut clauses: Vec<String> = Vec::new();
        let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        let mut add = |column: &str, value: Option<Box<dyn ToSql + Sync>>| {
            if let Some(v) = value {
                values.push(v);
                clauses.push(format!("{column} ${}", values.len()));
            }
        };
        let text = |v: &Option<String>| v.clone().map(|s| Box::new(s) as Box<dyn ToSql + Sync>);
        add("j.namespace =", text(&filter.namespace));
        add("j.name =", text(&filter.job));
        add("COALESCE(r.state, 'OTHER') =", text(&filter.state));
        add("r.first_seen >=", filter.since.map(|t| Box::new(t) as _));
        add("r.first_seen <", filter.until.map(|t| Box::new(t) as _));
        add("r.user_name =", text(&filter.user));
        add("r.host =", text(&filter.host));
        add("r.container_digest =", text(&filter.container_digest));
        add(
            "r.container_digest LIKE",
            filter
                .container_digest_prefix
                .as_ref()
                .map(|p| Box::new(format!("{p}%")) as _),
        );
        add(
            "r.container_repository =",
            text(&filter.container_repository),
        );
        add("r.container_tag =", text(&filter.container_tag));
        add("r.fingerprint =", text(&filter.fingerprint));
        if let Some(registry) = &filter.container_registry {
            values.push(Box::new(registry.clone()));
            clauses.push(format!(
                "(r.container_registry = ${} OR r.container_registry IS NULL)",
                values.len()
            ));
        }
        if filter.unpinned {
            clauses.push("r.container_image IS NOT NULL AND r.container_digest IS NULL".into());
        }
        let where_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        let (total, items) = self.read("list runs", |c| {
            let total: i64 = c
                .client
                .query_one(
                    &format!(
                        "SELECT COUNT(*) FROM run r JOIN job j ON j.id = r.job_id {where_sql}"
                    ),
                    &refs,
                )?
                .get(0);
            let sql = format!(
                "{} {where_sql} ORDER BY r.first_seen DESC, r.run_id LIMIT {} OFFSET {}",
                run_select!(),
                page.limit.min(i64::MAX as u64),
                page.offset.min(i64::MAX as u64)
            );
            let items = c
                .client
                .query(&sql, &refs)?
                .iter()
                .map(run_record)
                .collect();
            Ok((total, items))
        })?;
        Ok(Paged {
            items,
            total: total as u64,
            offset: page.offset,
            limit: page.limit,
        })
    }

    fn events_after(&self, seq: u64, limit: u64) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        let rows = self.query(
            "read events",
            "SELECT seq, raw FROM event WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[
                &(seq.min(i64::MAX as u64) as i64),
                &(limit.min(i64::MAX as u64) as i64),
            ],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, Vec<u8>>(1)))
            .collect())
    }

    fn events(&self, page: Page) -> StoreResult<Paged<(u64, Vec<u8>)>> {
        let total: i64 = self
            .query("count events", "SELECT COUNT(*) FROM event", &[])?
            .first()
            .map_or(0, |r| r.get(0));
        let rows = self.query(
            "read events",
            "SELECT seq, raw FROM event ORDER BY seq LIMIT $1 OFFSET $2",
            &[
                &(page.limit.min(i64::MAX as u64) as i64),
                &(page.offset.min(i64::MAX as u64) as i64),
            ],
        )?;
        Ok(Paged {
            items: rows
                .iter()
                .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, Vec<u8>>(1)))
                .collect(),
            total: total as u64,
            offset: page.offset,
            limit: page.limit,
        })
    }
}

#[cfg(test)]
mod tests;
