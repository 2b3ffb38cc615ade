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
use std::sync::Arc;

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

/// A dictionary the store holds: its id (the codec) and its bytes.
pub(crate) struct Dictionary {
    pub id: i64,
    pub bytes: Vec<u8>,
}

/// Compresses events, on a thread of its own, with the dictionary it is
/// given: the threads that parse a batch compress its events before the
/// writer needs them, so that the one writer does not (a tenth of its time).
#[derive(Default)]
pub(crate) struct Packer {
    /// The dictionary its context was made with: the same one (not only the
    /// same id, which another store may give another dictionary).
    compressor: Option<(Arc<Dictionary>, zstd::bulk::Compressor<'static>)>,
}

impl Packer {
    /// `raw` as stored with `dictionary`, if compressing makes it smaller.
    pub(crate) fn pack(
        &mut self,
        dictionary: &Arc<Dictionary>,
        raw: &[u8],
    ) -> Option<(i64, Vec<u8>)> {
        if self
            .compressor
            .as_ref()
            .is_none_or(|(made_with, _)| !Arc::ptr_eq(made_with, dictionary))
        {
            let compressor =
                zstd::bulk::Compressor::with_dictionary(LEVEL, &dictionary.bytes).ok()?;
            self.compressor = Some((Arc::clone(dictionary), compressor));
        }
        let (made_with, compressor) = self.compressor.as_mut()?;
        pack(compressor, made_with.id, raw)
    }
}

/// The dictionary new events are written with, and the ones read so far.
#[derive(Default)]
pub(crate) struct Codecs {
    writer: Option<(i64, zstd::bulk::Compressor<'static>)>,
    /// The writer's dictionary, for the threads that compress ahead of it.
    shared: Option<Arc<Dictionary>>,
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
        if let Some((id, bytes)) = newest {
            self.use_dictionary(id, bytes);
        }
        Ok(())
    }

    /// Writes new events with dictionary `id` from now on.
    fn use_dictionary(&mut self, id: i64, bytes: Vec<u8>) {
        if let Ok(compressor) = zstd::bulk::Compressor::with_dictionary(LEVEL, &bytes) {
            self.writer = Some((id, compressor));
            self.shared = Some(Arc::new(Dictionary { id, bytes }));
        }
    }

    /// The dictionary new events are written with, if any.
    pub(crate) fn dictionary(&self) -> Option<Arc<Dictionary>> {
        self.shared.clone()
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
        self.use_dictionary(id, dictionary);
        Ok(())
    }

    /// Forgets the writer's dictionary (its transaction was rolled back).
    pub(crate) fn forget_writer(&mut self) {
        self.writer = None;
        self.shared = None;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: usize) -> Vec<u8> {
        format!(
            r#"{{"eventType":"COMPLETE","eventTime":"2026-01-01T00:00:{:02}Z","run":{{"runId":"{i:08x}-0000-7000-8000-000000000000"}},"job":{{"namespace":"genomics","name":"step{}"}},"inputs":[{{"namespace":"file","name":"/data/S{i}.fastq.gz"}}],"producer":"https://example.org/prov"}}"#,
            i % 60,
            i % 7
        )
        .into_bytes()
    }

    /// A store's dictionary table holding two dictionaries trained on the
    /// same kind of events (ids 1 and 2).
    fn dictionaries() -> (Connection, [Arc<Dictionary>; 2]) {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE dictionary (id INTEGER PRIMARY KEY, bytes BLOB NOT NULL)")
            .unwrap();
        let made = [1i64, 2].map(|id| {
            let samples: Vec<Vec<u8>> = (0..300).map(|i| event(i * id as usize)).collect();
            let bytes = zstd::dict::from_samples(&samples, 4096).unwrap();
            conn.execute(
                "INSERT INTO dictionary (id, bytes) VALUES (?1, ?2)",
                params![id, bytes],
            )
            .unwrap();
            Arc::new(Dictionary { id, bytes })
        });
        (conn, made)
    }

    #[test]
    fn events_compressed_ahead_read_back_with_the_dictionary_they_name() {
        let (conn, [first, second]) = dictionaries();
        let mut packer = Packer::default();
        let mut codecs = Codecs::default();
        let raw = event(1234);
        // One packer follows the dictionary it is given, event by event.
        for dictionary in [&first, &second, &first] {
            let (codec, packed) = packer.pack(dictionary, &raw).unwrap();
            assert_eq!(codec, dictionary.id);
            assert!(packed.len() < raw.len() / 2, "{} bytes", packed.len());
            assert_eq!(codecs.decode(&conn, codec, &packed).unwrap(), raw);
            // The other dictionary does not give the bytes back.
            let other = 3 - codec;
            assert_ne!(
                codecs.decode(&conn, other, &packed).ok().as_deref(),
                Some(raw.as_slice())
            );
        }
    }

    #[test]
    fn a_packer_given_another_stores_dictionary_of_the_same_id_uses_that_one() {
        let (first_store, [first, _]) = dictionaries();
        // Another store's dictionary 1, trained on other events.
        let (other_store, [_, other]) = dictionaries();
        let other = Arc::new(Dictionary {
            id: first.id,
            bytes: other.bytes.clone(),
        });
        other_store
            .execute(
                "UPDATE dictionary SET bytes = ?2 WHERE id = ?1",
                params![other.id, other.bytes],
            )
            .unwrap();
        assert_ne!(first.bytes, other.bytes);
        let raw = event(4321);
        let mut packer = Packer::default();
        for (dictionary, store) in [(&first, &first_store), (&other, &other_store)] {
            let (codec, packed) = packer.pack(dictionary, &raw).unwrap();
            let back = Codecs::default().decode(store, codec, &packed).unwrap();
            assert_eq!(back, raw);
        }
    }

    #[test]
    fn the_writer_shares_the_dictionary_it_writes_with() {
        let (conn, [_, second]) = dictionaries();
        let mut codecs = Codecs::default();
        assert!(codecs.dictionary().is_none());
        codecs.load_writer(&conn).unwrap();
        let shared = codecs.dictionary().expect("the newest dictionary");
        assert_eq!((shared.id, &shared.bytes), (second.id, &second.bytes));
        // What the writer would store and what a packer makes read back alike.
        let raw = event(99);
        let (codec, written) = codecs.encode(&raw);
        let (ahead, packed) = Packer::default().pack(&shared, &raw).unwrap();
        assert_eq!((codec, ahead), (2, 2));
        assert_eq!(codecs.decode(&conn, codec, &written).unwrap(), raw);
        assert_eq!(codecs.decode(&conn, ahead, &packed).unwrap(), raw);
        codecs.forget_writer();
        assert!(codecs.dictionary().is_none());
    }
}
