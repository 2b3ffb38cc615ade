//! The read-and-hash loop for one open file, in constant memory.
//!
//! Large files are read by one thread while the calling thread runs SHA-256 on
//! the previous buffer, so the copy out of the page cache overlaps the hashing;
//! when md5 is asked for too, a third stage hashes md5 on the same buffers, so
//! both digests come from one read pass at the speed of the slower one. The
//! stages pass a fixed set of buffers around a ring, so memory stays
//! `buffers x buffer_size` whatever the file's size. Small files are hashed
//! inline, where starting threads would cost more than it saves.

use std::fs::File;
use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use md5::Md5;
use sha2::{Digest, Sha256};

use super::HashObserver;

/// Buffer size of the read loop. Chosen by measurement (see the hash
/// benchmark): 1 MiB keeps the pipeline stages busy with few handoffs, and
/// larger buffers bring nothing more on page-cached reads.
pub const BUFFER_SIZE: usize = 1 << 20;

/// Buffers in flight between the stages.
const BUFFERS: usize = 4;

/// Files up to this size are hashed inline on the calling thread.
pub const INLINE_LIMIT: u64 = 8 << 20;

/// The digests of one pass over a file.
pub(crate) struct StreamDigest {
    pub sha256: [u8; 32],
    pub md5: Option<[u8; 16]>,
    pub bytes: u64,
}

/// Reads `file` to the end and hashes it. `pipelined` chooses the threaded
/// read/hash overlap; it is off for small files and when the caller already
/// hashes several files at once on every core.
pub(crate) fn hash_file(
    file: &mut File,
    md5: bool,
    pipelined: bool,
    buffer_size: usize,
    observer: &dyn HashObserver,
) -> io::Result<StreamDigest> {
    if pipelined {
        hash_pipelined(file, md5, buffer_size, observer)
    } else {
        hash_inline(file, md5, buffer_size, observer)
    }
}

fn hash_inline(
    file: &mut File,
    md5: bool,
    buffer_size: usize,
    observer: &dyn HashObserver,
) -> io::Result<StreamDigest> {
    let mut sha = Sha256::new();
    let mut md = md5.then(Md5::new);
    let mut buffer = vec![0u8; buffer_size];
    let mut bytes = 0u64;
    loop {
        let n = read_full(file, &mut buffer)?;
        if n == 0 {
            break;
        }
        sha.update(&buffer[..n]);
        if let Some(md) = md.as_mut() {
            md.update(&buffer[..n]);
        }
        bytes += n as u64;
        observer.bytes_hashed(n as u64);
    }
    Ok(StreamDigest {
        sha256: sha.finalize().into(),
        md5: md.map(|m| m.finalize().into()),
        bytes,
    })
}

/// A filled buffer and how much of it holds data.
struct Chunk {
    data: Vec<u8>,
    len: usize,
}

fn hash_pipelined(
    file: &mut File,
    md5: bool,
    buffer_size: usize,
    observer: &dyn HashObserver,
) -> io::Result<StreamDigest> {
    let (free_tx, free_rx) = sync_channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS {
        // The channel has room for every buffer, so this cannot block or fail.
        let _ = free_tx.send(vec![0u8; buffer_size]);
    }
    let (full_tx, full_rx) = sync_channel::<Chunk>(BUFFERS);

    std::thread::scope(|scope| {
        let reader = scope.spawn(move || read_stage(file, free_rx, full_tx));

        let (sha256, md5_digest, bytes) = if md5 {
            let (md5_tx, md5_rx) = sync_channel::<Chunk>(BUFFERS);
            let recycle = free_tx.clone();
            let md5_stage = scope.spawn(move || {
                let mut md = Md5::new();
                for chunk in md5_rx {
                    md.update(&chunk.data[..chunk.len]);
                    let _ = recycle.send(chunk.data);
                }
                <[u8; 16]>::from(md.finalize())
            });
            let (sha, bytes) = sha_stage(&full_rx, observer, |chunk| {
                // If the md5 stage has gone, its panic surfaces at join below.
                let _ = md5_tx.send(chunk);
            });
            drop(md5_tx);
            let md5_digest = md5_stage
                .join()
                .map_err(|_| io::Error::other("the md5 stage panicked"))?;
            (sha, Some(md5_digest), bytes)
        } else {
            let (sha, bytes) = sha_stage(&full_rx, observer, |chunk| {
                let _ = free_tx.send(chunk.data);
            });
            (sha, None, bytes)
        };
        drop(full_rx);
        reader
            .join()
            .map_err(|_| io::Error::other("the read stage panicked"))??;
        Ok(StreamDigest {
            sha256,
            md5: md5_digest,
            bytes,
        })
    })
}

fn read_stage(file: &mut File, free: Receiver<Vec<u8>>, full: SyncSender<Chunk>) -> io::Result<()> {
    for mut data in free {
        let len = read_full(file, &mut data)?;
        if len == 0 {
            return Ok(());
        }
        if full.send(Chunk { data, len }).is_err() {
            return Ok(()); // the hashing side stopped; it reports why
        }
    }
    Ok(())
}

fn sha_stage(
    full: &Receiver<Chunk>,
    observer: &dyn HashObserver,
    mut pass_on: impl FnMut(Chunk),
) -> ([u8; 32], u64) {
    let mut sha = Sha256::new();
    let mut bytes = 0u64;
    for chunk in full {
        sha.update(&chunk.data[..chunk.len]);
        bytes += chunk.len as u64;
        observer.bytes_hashed(chunk.len as u64);
        pass_on(chunk);
    }
    (sha.finalize().into(), bytes)
}

/// Fills `buffer` unless the file ends first; returns how many bytes it holds.
fn read_full(file: &mut File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
