//! How the SQLite store keeps event bytes: as received (codec 0) until it
//! holds enough events to learn from, then compressed with a zstd dictionary
//! trained on its own first events (codec = the dictionary's id).
//!
//! Events of one producer repeat the same member names, schema URLs and
//! producer URIs, which per-event compression cannot see without a
//! dictionary: with one, a 5 KB run event takes about 300 bytes. Fewer bytes
//! is fewer pages through the write-ahead log and its fsync, which is what an
//! ingest into a file waits for. Decompression gives back exactly the bytes
//! received; the hash chain is over those, so a damaged dictionary or
//! compressed blob shows up as an altered event when the chain is verified.
//! Dictionaries are rows of the `dictionary` table (append-only, like the
//! log), so a store stays readable whatever dictionary a later prov trains.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use rusqlite::{Connection, OptionalExtension, params};

/// Events stored before the first dictionary is trained; it is trained on
/// (up to) this many of them.
pub(crate) const TRAIN_AFTER: u64 = 256;

/// The largest dictionary trained. On 5 KB run events with our facets,
/// 256 samples and 16 KiB compress as well as 512 and 64 KiB (18.7x against
/// 17.9x), train in 28 ms instead of 47, and a smaller dictionary is quicker
/// to load into each batch's compressor. zstd advises a dictionary about a
/// hundredth of the samples' size.
const DICTIONARY_BYTES: usize = 16 << 10;

/// The largest event taken as a training sample, and the most bytes of
/// samples in all (256 run events of 5 KB are 1.3 MB).
const SAMPLE_MAX_BYTES: usize = 256 << 10;
const SAMPLES_MAX_BYTES: usize = 8 << 20;

/// zstd's level: with a dictionary, level 1 compresses as well as level 3
/// at two thirds of the time.
const LEVEL: i32 = 1;

/// The most bytes an event decompresses to (the server's largest body is
/// smaller); a frame claiming more is damaged.
const MAX_EVENT_BYTES: u64 = 256 << 20;

/// The dictionary new events are written with, and the ones read so far.
#[derive(Default)]
pub(crate) struct Codecs {
    writer: Option<(i64, zstd::bulk::Compressor<'static>)>,
    readers: HashMap<i64, zstd::bulk::Decompressor<'static>>,
    /// Events in the store when training last failed (too few or too alike
    /// samples); it is tried again once there are twice as many.
    failed_at: Option<u64>,
}

impl Codecs {
    /// The codec and bytes to store for `raw`.
    pub(crate) fn encode<'r>(&mut self, raw: &'r [u8]) -> (i64, Cow<'r, [u8]>) {
        match &mut self.writer {
            Some((id, compressor)) => match pack(compressor, *id, raw) {
                Some((codec, packed)) => (codec, Cow::Owned(packed)),
                None => (0, Cow::Borrowed(raw)),
            },
            None => (0, Cow::Borrowed(raw)),
        }
    }

    /// Loads the newest dictionary for writing, if there is one and none
    /// is loaded yet (another process may have trained it).
    pub(crate) fn load_writer(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if self.writer.is_some() {
            return Ok(());
        }
        let newest: Option<(i64, Vec<u8>)> = conn
            .prepare_cached("SELECT id, bytes FROM dictionary ORDER BY id DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((id, bytes)) = newest
            && let Ok(compressor) = zstd::bulk::Compressor::with_dictionary(LEVEL, &bytes)
        {
            self.writer = Some((id, compressor));
        }
        Ok(())
    }

    /// Whether a dictionary should be trained now, with `events` stored.
    pub(crate) fn wants_training(&self, events: u64) -> bool {
        self.writer.is_none()
            && events >= TRAIN_AFTER
            && self.failed_at.is_none_or(|at| events >= at * 2)
    }

    /// Trains a dictionary on the first events stored as received and keeps
    /// it (inside the caller's write transaction, which checked that there
    /// is none yet). Training fails on too few or too alike events; then the
    /// store goes on without one and tries again later.
    pub(crate) fn train(&mut self, conn: &Connection, events: u64) -> rusqlite::Result<()> {
        self.load_writer(conn)?;
        if self.writer.is_some() {
            return Ok(());
        }
        // The first events, as long as they are not too large: training
        // holds the samples (and several times their size) in memory.
        let mut samples: Vec<Vec<u8>> = Vec::new();
        let mut total = 0;
        let mut stmt = conn.prepare(
            "SELECT raw FROM event WHERE codec = 0 AND length(raw) <= ?2 ORDER BY seq LIMIT ?1",
        )?;
        let mut rows = stmt.query(params![TRAIN_AFTER as i64, SAMPLE_MAX_BYTES as i64])?;
        while let Some(row) = rows.next()? {
            let sample: Vec<u8> = row.get(0)?;
            total += sample.len();
            samples.push(sample);
            if total >= SAMPLES_MAX_BYTES {
                break;
            }
        }
        drop(rows);
        drop(stmt);
        let Ok(dictionary) = zstd::dict::from_samples(&samples, DICTIONARY_BYTES) else {
            self.failed_at = Some(events);
            return Ok(());
        };
        conn.prepare_cached(
            "INSERT INTO dictionary (bytes, samples, created_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![
            dictionary,
            samples.len() as i64,
            crate::normalize::now_micros()
        ])?;
        let id = conn.last_insert_rowid();
        if let Ok(compressor) = zstd::bulk::Compressor::with_dictionary(LEVEL, &dictionary) {
            self.writer = Some((id, compressor));
        }
        Ok(())
    }

    /// Forgets the writer's dictionary (its transaction was rolled back).
    pub(crate) fn forget_writer(&mut self) {
        self.writer = None;
    }

    /// The bytes received, from what was stored with `codec`.
    pub(crate) fn decode<'s>(
        &mut self,
        conn: &Connection,
        codec: i64,
        stored: &'s [u8],
    ) -> Result<Cow<'s, [u8]>, String> {
        if codec == 0 {
            return Ok(Cow::Borrowed(stored));
        }
        let decoder = match self.readers.entry(codec) {
            Entry::Occupied(found) => found.into_mut(),
            Entry::Vacant(slot) => {
                let bytes: Option<Vec<u8>> = conn
                    .prepare_cached("SELECT bytes FROM dictionary WHERE id = ?1")
                    .and_then(|mut s| s.query_row([codec], |r| r.get(0)).optional())
                    .map_err(|e| format!("read dictionary {codec}: {e}"))?;
                let bytes = bytes.ok_or(format!("dictionary {codec} is missing"))?;
                slot.insert(
                    zstd::bulk::Decompressor::with_dictionary(&bytes)
                        .map_err(|e| format!("load dictionary {codec}: {e}"))?,
                )
            }
        };
        let size = zstd::zstd_safe::get_frame_content_size(stored)
            .ok()
            .flatten()
            .filter(|&n| n <= MAX_EVENT_BYTES)
            .ok_or("the stored event is not a whole zstd frame")?;
        decoder
            .decompress(stored, size as usize)
            .map(Cow::Owned)
            .map_err(|e| format!("decompress with dictionary {codec}: {e}"))
    }
}

/// `raw` compressed with dictionary `id`, if that makes it smaller.
fn pack(
    compressor: &mut zstd::bulk::Compressor<'static>,
    id: i64,
    raw: &[u8],
) -> Option<(i64, Vec<u8>)> {
    compressor
        .compress(raw)
        .ok()
        .filter(|packed| packed.len() < raw.len())
        .map(|packed| (id, packed))
}
