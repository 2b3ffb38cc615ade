-- Schema 3 of the SQLite store: the indexes over content digests and run
-- fingerprints hold the first 16 hex digits of the key, not all 64.
--
-- These keys are random, so each insert lands on a random page of its index,
-- and every page a batch dirties is written to the log at commit. An index
-- a quarter of the size has a quarter of the pages to dirty (and to cache).
-- 64 bits still tell keys apart: a lookup gives the index the same prefix of
-- the key it looks for, then compares the whole key in the row (see the
-- queries in src/sqlite/mod.rs, which must use the same expression for the
-- index to serve them).

DROP INDEX version_digest;
CREATE INDEX version_digest ON dataset_version (substr(digest, 1, 16));
DROP INDEX run_fingerprint;
CREATE INDEX run_fingerprint ON run (substr(fingerprint, 1, 16));
