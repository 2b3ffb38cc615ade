-- Schema 2 of the SQLite store: events may be kept compressed, and their
-- identity is looked up through the run they belong to.
--
-- `event.codec` says how `event.raw` holds the bytes received: 0 as they are,
-- otherwise compressed by zstd with the dictionary of that id. Decompression
-- gives back the bytes exactly; the chain links are over those bytes. The
-- dictionaries are trained on the store's own first events (see
-- src/sqlite/codec.rs) and, like the log, are never changed or removed.
--
-- The identity of an event was a unique index of its own: a random key, so
-- every event stored wrote to a page of it anywhere in the file, and a batch
-- rewrote most of its pages. An event's identity covers its run id, so the
-- same event always has the same run id: the lookup is by (run_id, event_id)
-- instead, whose run ids, time-ordered as OpenLineage producers make them
-- (UUIDv7), keep new entries together at the end. (Events without a run id,
-- NULL here, are never equal in a unique index: the writer looks those up
-- first, under the write lock.) SQLite cannot drop a UNIQUE constraint,
-- hence the table is rebuilt.

DROP TRIGGER event_no_update;
DROP TRIGGER event_no_delete;

CREATE TABLE event_2 (
    seq         INTEGER PRIMARY KEY,      -- position in the chain, 1, 2, ...
    event_id    TEXT    NOT NULL,         -- sha-256 of the event's JSON value (sorted, compact): idempotency
    raw         BLOB    NOT NULL,         -- the bytes as received, or compressed (codec)
    codec       INTEGER NOT NULL DEFAULT 0, -- 0: raw as received; k: zstd with dictionary k
    link        TEXT    NOT NULL,         -- chain link: see chain.rs
    kind        TEXT    NOT NULL,         -- run | dataset | job
    run_id      TEXT,                     -- for run events
    event_time  INTEGER NOT NULL,         -- microseconds since the epoch, UTC
    received_at INTEGER NOT NULL          -- microseconds since the epoch, UTC
);
INSERT INTO event_2 (seq, event_id, raw, codec, link, kind, run_id, event_time, received_at)
    SELECT seq, event_id, raw, 0, link, kind, run_id, event_time, received_at FROM event;
DROP TABLE event;
ALTER TABLE event_2 RENAME TO event;
CREATE UNIQUE INDEX event_run ON event (run_id, event_id);

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
