-- Schema 2 of the SQLite store: events may be kept compressed.
--
-- `event.codec` says how `event.raw` holds the bytes received: 0 as they are,
-- otherwise compressed by zstd with the dictionary of that id. Decompression
-- gives back the bytes exactly; the chain links are over those bytes. The
-- dictionaries are trained on the store's own first events (see
-- src/sqlite/codec.rs) and, like the log, are never changed or removed.

ALTER TABLE event ADD COLUMN codec INTEGER NOT NULL DEFAULT 0;

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
