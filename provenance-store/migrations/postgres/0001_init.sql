-- Schema 1 of the PostgreSQL store: the SQLite schema (migrations/sqlite/0001_init.sql)
-- in PostgreSQL's types. Tables are created in the first schema of the
-- connection's search_path.
--
-- `event` is the append-only, hash-chained log of raw events exactly as
-- received. Every other table is derived from it and could be rebuilt from it.

CREATE TABLE event (
    seq         BIGINT PRIMARY KEY,       -- position in the chain, 1, 2, ...
    event_id    TEXT   NOT NULL UNIQUE,   -- sha-256 of the event's JSON value (sorted, compact): idempotency
    raw         BYTEA  NOT NULL,          -- the bytes as received
    link        TEXT   NOT NULL,          -- chain link: see chain.rs
    kind        TEXT   NOT NULL,          -- run | dataset | job
    run_id      TEXT,                     -- for run events
    event_time  BIGINT NOT NULL,          -- microseconds since the epoch, UTC
    received_at BIGINT NOT NULL           -- microseconds since the epoch, UTC
);
-- Indexes that also give each lookup's order: a prepared statement's generic
-- plan must never prefer walking a whole table in that order instead.
CREATE INDEX event_run ON event (run_id, seq);

CREATE TABLE job (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace TEXT NOT NULL,
    name      TEXT NOT NULL,
    UNIQUE (namespace, name)
);

CREATE TABLE run (
    run_id               TEXT PRIMARY KEY,
    job_id               BIGINT NOT NULL REFERENCES job (id),
    state                TEXT,             -- the latest state transition (terminal ones stick)
    started_at           BIGINT,           -- microseconds
    ended_at             BIGINT,
    first_seen           BIGINT NOT NULL,  -- event time of its first event
    parent_run_id        TEXT,
    root_run_id          TEXT,
    fingerprint          TEXT,
    container_image      TEXT,
    container_registry   TEXT,
    container_repository TEXT,
    container_tag        TEXT,
    container_digest     TEXT,
    params_sha256        TEXT,
    exit_code            BIGINT,
    user_name            TEXT,
    host                 TEXT
    -- The run's facets are not copied here: they are merged from its events
    -- (event.run_id) when a query needs them, later ones replacing earlier.
);
CREATE INDEX run_job ON run (job_id, first_seen);
CREATE INDEX run_parent ON run (parent_run_id);
CREATE INDEX run_fingerprint ON run (fingerprint);
CREATE INDEX run_container_digest ON run (container_digest);
CREATE INDEX run_container_repo ON run (container_repository, container_tag);
CREATE INDEX run_first_seen ON run (first_seen);

CREATE TABLE dataset (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace TEXT NOT NULL,
    name      TEXT NOT NULL,
    UNIQUE (namespace, name)
);

CREATE TABLE dataset_version (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset_id  BIGINT NOT NULL REFERENCES dataset (id),
    version     TEXT   NOT NULL,   -- sha256:<hex>, a producer's version, run:<uuid>, or unknown
    digest      TEXT,              -- sha-256 hex of the content, when known
    size        BIGINT,
    created_at  BIGINT NOT NULL,   -- event time of the first event naming it
    UNIQUE (dataset_id, version)
);
CREATE INDEX version_digest ON dataset_version (digest, id);
CREATE INDEX version_dataset_time ON dataset_version (dataset_id, created_at);

CREATE TABLE run_input (
    run_id     TEXT   NOT NULL,
    version_id BIGINT NOT NULL REFERENCES dataset_version (id),
    event_time BIGINT NOT NULL,
    PRIMARY KEY (run_id, version_id)
);
CREATE INDEX run_input_version ON run_input (version_id, run_id);

CREATE TABLE run_output (
    run_id     TEXT   NOT NULL,
    version_id BIGINT NOT NULL REFERENCES dataset_version (id),
    event_time BIGINT NOT NULL,
    PRIMARY KEY (run_id, version_id)
);
CREATE INDEX run_output_version ON run_output (version_id, run_id);

-- The log is append-only. The triggers stop accidents; the hash chain catches
-- whoever drops them.
CREATE FUNCTION event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only';
END
$$;
CREATE TRIGGER event_no_update BEFORE UPDATE ON event
    FOR EACH ROW EXECUTE FUNCTION event_append_only();
CREATE TRIGGER event_no_delete BEFORE DELETE ON event
    FOR EACH ROW EXECUTE FUNCTION event_append_only();
CREATE TRIGGER event_no_truncate BEFORE TRUNCATE ON event
    FOR EACH STATEMENT EXECUTE FUNCTION event_append_only();
