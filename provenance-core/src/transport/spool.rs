//! The durable spool of the HTTP transport: NDJSON files of events accepted but
//! not yet delivered, each with a cursor of how far delivery has got.
//!
//! A process appends to its own spool file, which it holds locked (`flock`)
//! while it lives; a file whose lock can be taken belongs to a process that is
//! gone, and is adopted and delivered by whoever takes it. The cursor
//! (`<file>.acked`, a byte offset) is replaced atomically after each delivery,
//! so after a crash at most the last delivery is repeated, and a receiver that
//! deduplicates by event identity (as the store does) sees each event once.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// One spool file and its cursor.
pub(crate) struct SpoolFile {
    pub path: PathBuf,
    /// Held open (and locked) for as long as this process owns the file.
    pub lock: File,
}

/// The suffix of spool files.
pub(crate) const SUFFIX: &str = "ndjson";

impl SpoolFile {
    /// Creates this process's own spool file in `dir`, locked.
    pub fn create(dir: &Path) -> io::Result<SpoolFile> {
        let name = format!("{}.{SUFFIX}", uuid::Uuid::now_v7());
        let path = dir.join(name);
        let open = || {
            fs::create_dir_all(dir)?;
            OpenOptions::new().create_new(true).append(true).open(&path)
        };
        // Once more if another process removed the emptied folder meanwhile.
        let lock = match open() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => open(),
            other => other,
        }?;
        lock.try_lock().map_err(io::Error::other)?;
        Ok(SpoolFile { path, lock })
    }

    /// Takes over a spool file whose owner is gone; `None` if it is still owned.
    pub fn adopt(path: &Path) -> io::Result<Option<SpoolFile>> {
        let lock = OpenOptions::new().append(true).open(path)?;
        match lock.try_lock() {
            Ok(()) => Ok(Some(SpoolFile {
                path: path.to_path_buf(),
                lock,
            })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    fn cursor_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".acked");
        PathBuf::from(p)
    }

    /// How many bytes have been delivered. A cursor that is not a number
    /// (left empty by a crash) or points past the end of the file counts as
    /// nothing delivered: the events are sent again, and the receiver knows
    /// them by their identity.
    pub fn cursor(&self) -> io::Result<u64> {
        let offset = match fs::read_to_string(self.cursor_path()) {
            Ok(text) => text.trim().parse().unwrap_or(0),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(if offset > self.len()? { 0 } else { offset })
    }

    /// Records that everything before `offset` is delivered (atomically).
    pub fn set_cursor(&self, offset: u64) -> io::Result<()> {
        let target = self.cursor_path();
        let mut tmp = target.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        fs::write(&tmp, offset.to_string())?;
        fs::rename(&tmp, &target)
    }

    /// Complete lines from `offset`, each with the offset after it: up to
    /// `max` of them and about 4 MiB, but always the next line, however long.
    pub fn read_from(&self, offset: u64, max: usize) -> io::Result<Vec<(Vec<u8>, u64)>> {
        let mut file = BufReader::new(File::open(&self.path)?);
        file.seek(SeekFrom::Start(offset))?;
        let (mut lines, mut at, mut bytes) = (Vec::new(), offset, 0);
        while lines.len() < max && bytes < 4 << 20 {
            let mut line = Vec::new();
            let n = file.read_until(b'\n', &mut line)?;
            if line.last() != Some(&b'\n') {
                break; // the end, or a line still being written (or torn)
            }
            line.pop();
            at += n as u64;
            bytes += n;
            lines.push((line, at));
        }
        Ok(lines)
    }

    /// How many complete lines lie beyond `offset`.
    pub fn lines_from(&self, offset: u64) -> io::Result<u64> {
        let mut file = BufReader::new(File::open(&self.path)?);
        file.seek(SeekFrom::Start(offset))?;
        let mut count = 0;
        loop {
            let buf = file.fill_buf()?;
            if buf.is_empty() {
                return Ok(count);
            }
            count += buf.iter().filter(|&&b| b == b'\n').count() as u64;
            let n = buf.len();
            file.consume(n);
        }
    }

    /// The file's length now.
    pub fn len(&self) -> io::Result<u64> {
        Ok(fs::metadata(&self.path)?.len())
    }

    /// Keeps an event the receiver refused for good, with the reason, beside
    /// the spool, so that it is never silently dropped.
    pub fn reject(&self, line: &[u8], reason: &str) -> io::Result<()> {
        let mut p = self.path.clone().into_os_string();
        p.push(".rejected");
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(PathBuf::from(p))?;
        let note = serde_json::json!({"reason": reason, "event": String::from_utf8_lossy(line)});
        f.write_all(format!("{note}\n").as_bytes())
    }

    /// Deletes a fully delivered file and its cursor.
    pub fn remove(self) -> io::Result<()> {
        let cursor = self.cursor_path();
        fs::remove_file(&self.path)?;
        match fs::remove_file(cursor) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Whether `path` is a spool file as [`SpoolFile::create`] names them,
/// `<UUID>.ndjson`, and a regular file (not a link): what else lies in the
/// folder (a user's own `.ndjson` file, say) is never sent or removed.
fn is_spool_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == SUFFIX)
        && path
            .file_stem()
            .and_then(|s| s.to_str())
            .is_some_and(|s| s.len() == 36 && uuid::Uuid::try_parse(s).is_ok())
        && fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
}

/// The spool files in `dir` other than `own`.
pub(crate) fn others(dir: &Path, own: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p != own && is_spool_file(p))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    // UUIDv7 names sort by creation time: older spools first.
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_left_empty_or_past_the_end_sends_everything_again() {
        let dir = std::env::temp_dir().join(format!("prov-spool-cursor-{}", std::process::id()));
        let file = SpoolFile::create(&dir).unwrap();
        (&file.lock).write_all(b"{\"a\":1}\n{\"b\":2}\n").unwrap();
        file.set_cursor(8).unwrap();
        assert_eq!(file.cursor().unwrap(), 8);
        assert_eq!(
            file.read_from(8, 10).unwrap(),
            vec![(b"{\"b\":2}".to_vec(), 16)]
        );
        for bad in ["", "not a number", "9999"] {
            fs::write(file.cursor_path(), bad).unwrap();
            assert_eq!(file.cursor().unwrap(), 0, "{bad:?}");
        }
        assert_eq!(file.lines_from(0).unwrap(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_files_named_as_spools_are_taken_from_the_folder() {
        let dir = std::env::temp_dir().join(format!("prov-spool-others-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let own = SpoolFile::create(&dir).unwrap();
        let orphan = SpoolFile::create(&dir).unwrap();
        let orphan_path = orphan.path.clone();
        drop(orphan);
        // A user's files that happen to end in .ndjson, a link to one, and
        // a folder: none is a spool.
        fs::write(dir.join("samples.ndjson"), "{\"sample\":\"S1\"}\n").unwrap();
        fs::write(dir.join("events.ndjson"), "").unwrap();
        let uuid_named = dir.join(format!("{}.ndjson", uuid::Uuid::now_v7()));
        std::os::unix::fs::symlink(dir.join("samples.ndjson"), &uuid_named).unwrap();
        fs::create_dir(dir.join(format!("{}.ndjson", uuid::Uuid::now_v7()))).unwrap();
        assert_eq!(others(&dir, &own.path).unwrap(), vec![orphan_path]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
