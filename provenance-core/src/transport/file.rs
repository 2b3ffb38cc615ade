//! The file transport (NDJSON, one line per event) and the console transport.

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
    file: Mutex<File>,
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
            file: Mutex::new(file),
        })
    }
}

/// One event as one line, newline included.
pub(crate) fn line(event: &Event) -> Vec<u8> {
    let mut line = event.to_json().into_bytes();
    line.push(b'\n');
    line
}

impl Transport for FileTransport {
    fn emit(&self, event: &Event) -> Result<(), TransportError> {
        let line = line(event);
        // A panic while writing cannot leave a half-updated File handle.
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&line).map_err(|source| TransportError::Io {
            target: self.describe(),
            source,
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
        let mut out = std::io::stdout().lock();
        out.write_all(&line(event))
            .and_then(|()| out.flush())
            .map_err(|source| TransportError::Io {
                target: "the console".into(),
                source,
            })
    }

    fn describe(&self) -> String {
        "the console".into()
    }
}
