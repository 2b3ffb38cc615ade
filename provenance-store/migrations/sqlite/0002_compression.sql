-- Schema 2 of the SQLite store: events may be kept compressed, and every
-- index a write touches grows at its end.
--
-- `event.codec` says how `event.raw` holds the bytes received: 0 as they are,
-- otherwise compressed by zstd with the dictionary of that id. Decompression
-- gives back the bytes exactly; the chain links are over those bytes. The
-- dictionaries are trained on the store's own first events (see
-- src/sqlite/codec.rs) and, like the log, are never changed or removed.
--
-- A write dirties a page of every index it inserts into, and a commit writes
-- every dirty page to the log: an index over random keys (event hashes, run
-- ids of producers that make random UUIDs) has its inserts scattered over
-- all of its pages, and a batch rewrites most of them. So:
-- - runs get an integer key (`run.id`, in order of arrival); the edges and the
--   events refer to a run by it, so their indexes grow at the end whatever
--   the producer's run ids look like;
-- - an event's identity is unique per run, `(run, event_id)`, instead of
--   across the log (the identity covers the run id, so the same event always
--   has the same run). Events without a run (dataset and job events; NULL
--   there, and NULLs are never equal in a unique index) are looked up first,
--   under the write lock.
-- SQLite cannot drop a UNIQUE constraint or change a primary key, hence the
-- tables are rebuilt.

DROP TRIGGER event_no_update;
DROP TRIGGER event_no_delete;

CREATE TABLE run_2 (
    id                INTEGER PRIMARY KEY,  -- in order of arrival
    run_id            TEXT    NOT NULL UNIQUE,
    job_id            INTEGER NOT NULL REFERENCES job (id),
    state             TEXT,                 -- the latest state transition (terminal ones stick)
    started_at        INTEGER,              -- microseconds
    ended_at          INTEGER,
    first_seen        INTEGER NOT NULL,     -- event time of its first event
    parent_run_id     TEXT,
    root_run_id       TEXT,
    fingerprint       TEXT,
    container_image   TEXT,
    container_registry TEXT,
    container_repository TEXT,
    container_tag     TEXT,
    container_digest  TEXT,
    params_sha256     TEXT,
    exit_code         INTEGER,
    user_name         TEXT,
    host              TEXT
);
INSERT INTO run_2 (run_id, job_id, state, started_at, ended_at, first_seen, parent_run_id,
        root_run_id, fingerprint, container_image, container_registry, container_repository,
        container_tag, container_digest, params_sha256, exit_code, user_name, host)
    SELECT run_id, job_id, state, started_at, ended_at, first_seen, parent_run_id,
        root_run_id, fingerprint, container_image, container_registry, container_repository,
        container_tag, container_digest, params_sha256, exit_code, user_name, host
    FROM run ORDER BY first_seen, rowid;

CREATE TABLE event_2 (
    seq         INTEGER PRIMARY KEY,      -- position in the chain, 1, 2, ...
    event_id    TEXT    NOT NULL,         -- sha-256 of the event's JSON value (sorted, compact): idempotency
    raw         BLOB    NOT NULL,         -- the bytes as received, or compressed (codec)
    codec       INTEGER NOT NULL DEFAULT 0, -- 0: raw as received; k: zstd with dictionary k
    link        TEXT    NOT NULL,         -- chain link: see chain.rs
    kind        TEXT    NOT NULL,         -- run | dataset | job
    run_id      TEXT,                     -- for run events
    run         INTEGER,                  -- run.id, for run events
    event_time  INTEGER NOT NULL,         -- microseconds since the epoch, UTC
    received_at INTEGER NOT NULL          -- microseconds since the epoch, UTC
);
INSERT INTO event_2 (seq, event_id, raw, codec, link, kind, run_id, run, event_time, received_at)
    SELECT e.seq, e.event_id, e.raw, 0, e.link, e.kind, e.run_id, r.id, e.event_time, e.received_at
    FROM event e LEFT JOIN run_2 r ON r.run_id = e.run_id;

CREATE TABLE run_input_2 (
    run        INTEGER NOT NULL,  -- run.id
    version_id INTEGER NOT NULL REFERENCES dataset_version (id),
    event_time INTEGER NOT NULL,
    PRIMARY KEY (run, version_id)
) WITHOUT ROWID;
INSERT INTO run_input_2 SELECT r.id, i.version_id, i.event_time
    FROM run_input i JOIN run_2 r ON r.run_id = i.run_id;

CREATE TABLE run_output_2 (
    run        INTEGER NOT NULL,  -- run.id
    version_id INTEGER NOT NULL REFERENCES dataset_version (id),
    event_time INTEGER NOT NULL,
    PRIMARY KEY (run, version_id)
) WITHOUT ROWID;
INSERT INTO run_output_2 SELECT r.id, o.version_id, o.event_time
    FROM run_output o JOIN run_2 r ON r.run_id = o.run_id;

DROP TABLE event;
DROP TABLE run_input;
DROP TABLE run_output;
DROP TABLE run;
ALTER TABLE run_2 RENAME TO run;
ALTER TABLE event_2 RENAME TO event;
ALTER TABLE run_input_2 RENAME TO run_input;
ALTER TABLE run_output_2 RENAME TO run_output;

CREATE INDEX run_job ON run (job_id, first_seen);
CREATE INDEX run_parent ON run (parent_run_id);
CREATE INDEX run_fingerprint ON run (fingerprint);
CREATE INDEX run_container_digest ON run (container_digest);
CREATE INDEX run_container_repo ON run (container_repository, container_tag);
CREATE INDEX run_first_seen ON run (first_seen);
CREATE UNIQUE INDEX event_run ON event (run, event_id);
CREATE INDEX run_input_version ON run_input (version_id);
CREATE INDEX run_output_version ON run_output (version_id);

CREATE TRIGGER event_no_update BEFORE UPDATE ON event
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER event_no_delete BEFORE DELETE ON event
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;

CREATE TABLE dictionary (
    id         INTEGER PRIMARY KEY,
    bytes      BLOB    NOT NULL,   -- a zstd dictionary
    samples    INTEGER NOT NULL,   -- how many events it was trained on
    created_at INTEGER NOT NULL    -- microseconds since the epoch, UTC
);

CREATE TRIGGER dictionary_no_update BEFORE UPDATE ON dictionary
BEGIN SELECT RAISE(ABORT, 'dictionaries are never changed'); END;
CREATE TRIGGER dictionary_no_delete BEFORE DELETE ON dictionary
BEGIN SELECT RAISE(ABORT, 'dictionaries are never removed'); END;
