//! The file transport (NDJSON, one line per event) and the console transport.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Transport, TransportError};
use crate::Event;

/// Appends one JSON line per event to a file.
///
/// Each event is written with a single `write` on a file opened with
/// `O_APPEND`, so several processes can share one file without tearing lines,
/// and it is in the operating system's hands when `emit` returns.
#[derive(Debug)]
pub struct FileTransport {
    path: PathBuf,
    file: Mutex<Appender>,
}

/// The file, and whether a failed write (a full disk) left part of a line
/// at its end: the next line then starts on a line of its own.
#[derive(Debug)]
struct Appender {
    file: File,
    torn: bool,
}

impl FileTransport {
    /// Opens `path` for appending (creating it and its folder), or truncates it
    /// first when `append` is false.
    pub fn open(path: &Path, append: bool) -> Result<Self, TransportError> {
        let io = |source| TransportError::Io {
            target: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        if !append {
            File::create(path).map_err(io)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(FileTransport {
            path: path.to_path_buf(),
            file: Mutex::new(Appender { file, torn: false }),
        })
    }
}

thread_local! {
    /// The buffer this thread serializes lines into, kept between events so
    /// that emitting allocates nothing for the text.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A buffer that grew past this (an event with huge facets) is not kept.
const KEEP_LINE: usize = 1 << 20;

/// Calls `f` with `event` as one line, newline included. The line is written
/// into this thread's buffer, outside any transport's lock, so threads that
/// share a transport serialize in parallel and hold the lock only to write.
pub(crate) fn with_line<T>(event: &Event, f: impl FnOnce(&[u8]) -> T) -> T {
    LINE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut line) => {
            line.clear();
            event.write_json(&mut line);
            line.push(b'\n');
            let out = f(&line);
            if line.capacity() > KEEP_LINE {
                *line = Vec::new();
            }
            out
        }
        // Only if `f` itself emits: give that event a buffer of its own.
        Err(_) => {
            let mut line = Vec::with_capacity(4096);
            event.write_json(&mut line);
            line.push(b'\n');
            f(&line)
        }
    })
}

impl Transport for FileTransport {
    fn emit(&self, event: &Event) -> Result<(), TransportError> {
        with_line(event, |line| {
            // A panic while writing cannot leave a half-updated File handle.
            let mut out = self.file.lock().unwrap_or_else(|e| e.into_inner());
            let fresh;
            let line = if out.torn {
                fresh = [b"\n", line].concat();
                &fresh[..]
            } else {
                line
            };
            // One write(2) for the line (the loop goes on only after a short
            // write), so with O_APPEND concurrent writers never interleave.
            // The file is shared: what a failed write left cannot be cut off.
            let mut written = 0;
            while written < line.len() {
                match out.file.write(&line[written..]) {
                    Ok(0) => {
                        out.torn |= written > 0;
                        return Err(TransportError::Io {
                            target: self.describe(),
                            source: std::io::ErrorKind::WriteZero.into(),
                        });
                    }
                    Ok(n) => written += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(source) => {
                        out.torn |= written > 0;
                        return Err(TransportError::Io {
                            target: self.describe(),
                            source,
                        });
                    }
                }
            }
            out.torn = false;
            Ok(())
        })
    }

    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }
}

/// Writes one JSON line per event to standard output.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConsoleTransport;

impl Transport for ConsoleTransport {
    fn emit(&self, event: &Event) -> Result<(), TransportError> {
        with_line(event, |line| {
            let mut out = std::io::stdout().lock();
            out.write_all(line)
                .and_then(|()| out.flush())
                .map_err(|source| TransportError::Io {
                    target: "the console".into(),
                    source,
                })
        })
    }

    fn describe(&self) -> String {
        "the console".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facets::{DatasetTypeDatasetFacet, DatasetVersionDatasetFacet};
    use crate::{EventType, InputDataset, Job, Run, RunEvent, RunId};

    /// An event of about `size` bytes (events of a few kB to a few hundred).
    fn event(thread: usize, i: usize, size: usize) -> Event {
        let mut e = RunEvent::new(
            EventType::Complete,
            Run::new(RunId::new_v7()),
            Job::new("ns", format!("t{thread}")),
        );
        let mut input = InputDataset::new("file", format!("/data/{i}"));
        input
            .facets
            .set(&DatasetVersionDatasetFacet::new("x".repeat(size)));
        input.facets.set(&DatasetTypeDatasetFacet::new("FILE"));
        e.inputs = Some(vec![input]);
        Event::Run(e)
    }

    #[test]
    fn concurrent_writers_never_tear_a_line() {
        let dir = std::env::temp_dir().join(format!("prov-file-{}", std::process::id()));
        let path = dir.join("events.ndjson");
        // Two transports on one file (as two processes would open it), each
        // shared by two threads, events from small to larger than a page.
        let a = FileTransport::open(&path, false).unwrap();
        let b = FileTransport::open(&path, true).unwrap();
        let (threads, per_thread) = (4, 200);
        std::thread::scope(|s| {
            for t in 0..threads {
                let transport = if t % 2 == 0 { &a } else { &b };
                s.spawn(move || {
                    for i in 0..per_thread {
                        let size = [10, 3000, 70_000][i % 3];
                        transport.emit(&event(t, i, size)).unwrap();
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let mut seen = vec![0; threads];
        for line in text.lines() {
            let Event::Run(e) = Event::from_slice(line.as_bytes()).unwrap() else {
                panic!("not a run event: {line}");
            };
            let t: usize = e.job.name[1..].parse().unwrap();
            assert_eq!(e.inputs()[0].name, format!("/data/{}", seen[t]));
            seen[t] += 1;
        }
        assert_eq!(seen, vec![per_thread; threads]);
        assert!(text.ends_with('\n'));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_line_is_the_event_as_json() {
        let e = event(0, 7, 100);
        let mut line = Vec::new();
        with_line(&e, |l| line.extend_from_slice(l));
        assert_eq!(line.pop(), Some(b'\n'));
        assert_eq!(line, e.to_json().into_bytes());
        // The thread's buffer is reused, never carried over.
        let small = Event::Job(crate::JobEvent::new(Job::new("ns", "j")));
        with_line(&small, |l| {
            assert_eq!(l, format!("{}\n", small.to_json()).as_bytes())
        });
    }
}
