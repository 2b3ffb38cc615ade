//! Parsing a large batch ahead of its writer.
//!
//! The batch is cut into chunks of events. Parsing threads take chunks as
//! they become free, each time the next one nobody has taken, and hand them
//! over on a queue of their own; the writer takes the chunks back in order.
//! When the chunk it needs next is still being parsed, the writer parses a
//! later one itself instead of waiting. So whichever is faster, parsing or
//! writing, no core idles: with two cores, one parsing thread and the writer
//! share the parsing between them.
//!
//! Every chunk is taken exactly once (a compare-and-swap on its owner), and a
//! thread's own chunks arrive on its queue in the order it took them, so the
//! chunk the writer needs is always at the head of its owner's queue.

use std::collections::BTreeMap;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};

use crate::backend::Backend;
use crate::normalize::{Prepared, read};
use crate::sqlite::codec::Packer;

/// Events per chunk.
pub(crate) const CHUNK: usize = 64;

/// The first chunk (the writer waits for it).
const FIRST_CHUNK: usize = 8;

/// Chunks the writer parses ahead for itself, at most, before it waits for
/// the parser that holds the one it needs.
const WRITER_AHEAD: usize = 16;

/// A chunk as parsed: (index in the batch, event or why it was rejected).
pub(crate) type Parsed = Vec<(usize, Result<Prepared, String>)>;

/// Which thread parsed a chunk, and so made its allocations: each event is
/// best freed there (glibc frees another thread's memory slowly: freeing the
/// writer's events on a parser cost one call per batch a tenth of its rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParsedBy {
    Writer,
    Parser,
}

/// The owner of a chunk nobody has taken yet.
const FREE: usize = 0;
/// The writer, as the owner of a chunk; parser `p` is `p + 1`.
const WRITER: usize = usize::MAX;

/// The chunks of a batch and who took each.
pub(crate) struct Board {
    chunks: Vec<Range<usize>>,
    owners: Vec<AtomicUsize>,
    /// Where to look for the next free chunk: chunks before it are taken.
    hint: AtomicUsize,
}

impl Board {
    pub(crate) fn new(events: usize) -> Board {
        let mut chunks = Vec::new();
        let mut at = 0;
        while at < events {
            // A small first chunk, so that the writer starts soon.
            let size = if at == 0 { FIRST_CHUNK } else { CHUNK };
            chunks.push(at..(at + size).min(events));
            at += size;
        }
        let owners = chunks.iter().map(|_| AtomicUsize::new(FREE)).collect();
        Board {
            chunks,
            owners,
            hint: AtomicUsize::new(0),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.chunks.len()
    }

    /// Takes chunk `k` for `who`, or says who has it.
    fn take(&self, k: usize, who: usize) -> Result<(), usize> {
        self.owners[k]
            .compare_exchange(FREE, who, Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
    }

    /// Takes the first chunk nobody has, for `who`.
    fn take_next(&self, who: usize) -> Option<usize> {
        loop {
            let k = self.hint.fetch_add(1, Ordering::Relaxed);
            if k >= self.chunks.len() {
                return None;
            }
            if self.take(k, who).is_ok() {
                return Some(k);
            }
        }
    }

    /// The next chunk for parser `p` to parse, taken.
    pub(crate) fn next_for_parser(&self, p: usize) -> Option<usize> {
        self.take_next(p + 1)
    }

    /// Parses chunk `k`, compressing with the store's dictionary as of its
    /// last commit (so a dictionary trained during the batch is used once it
    /// is committed).
    pub(crate) fn parse(
        &self,
        k: usize,
        raws: &[&[u8]],
        backend: &dyn Backend,
        packer: &mut Packer,
    ) -> Parsed {
        let dictionary = backend.dictionary();
        self.chunks[k]
            .clone()
            .map(|i| {
                // The bytes are copied only if they are not kept compressed.
                let mut prepared = read_checked(raws[i]).and_then(|p| {
                    if backend.limits_text() {
                        crate::normalize::storable(&p)?;
                    }
                    Ok(p)
                });
                if let Ok(p) = &mut prepared {
                    p.packed = dictionary.as_ref().and_then(|d| packer.pack(d, raws[i]));
                    if p.packed.is_none() {
                        p.raw = raws[i].to_vec();
                    }
                }
                (i, prepared)
            })
            .collect()
    }
}

/// [`read`], in whose stead the unit tests can make a parser panic.
fn read_checked(raw: &[u8]) -> Result<Prepared, String> {
    #[cfg(test)]
    if raw == crate::store::tests::PARSER_BUG {
        panic!("a bug in the parser (the unit tests' stand-in)");
    }
    read(raw)
}

/// The writer's side: the parsed chunks in order, parsing some itself.
pub(crate) struct InOrder<'a> {
    board: &'a Board,
    raws: &'a [&'a [u8]],
    backend: &'a dyn Backend,
    /// One queue per parsing thread, in the order of their numbers.
    queues: Vec<Receiver<(usize, Parsed)>>,
    /// Chunks the writer parsed ahead of the one it needs, or the panic
    /// parsing one raised, to be raised again when the writer reaches it
    /// (so that the batches before it are stored, as when a parser stops).
    own: BTreeMap<usize, std::thread::Result<Parsed>>,
    packer: Packer,
    next: usize,
}

impl<'a> InOrder<'a> {
    pub(crate) fn new(
        board: &'a Board,
        raws: &'a [&'a [u8]],
        backend: &'a dyn Backend,
        queues: Vec<Receiver<(usize, Parsed)>>,
    ) -> Self {
        InOrder {
            board,
            raws,
            backend,
            queues,
            own: BTreeMap::new(),
            packer: Packer::default(),
            next: 0,
        }
    }

    fn parse(&mut self, k: usize) -> Parsed {
        self.board
            .parse(k, self.raws, self.backend, &mut self.packer)
    }

    /// No chunk now, nor after: the events end where a parser stopped.
    fn stopped(&mut self) -> Option<(ParsedBy, Parsed)> {
        self.next = self.board.len();
        None
    }
}

impl Iterator for InOrder<'_> {
    type Item = (ParsedBy, Parsed);

    /// The next chunk; `None` after the last, or if the parser that took it
    /// stopped without handing it over (only a bug makes a parser panic).
    fn next(&mut self) -> Option<(ParsedBy, Parsed)> {
        let k = self.next;
        if k >= self.board.len() {
            return None;
        }
        self.next += 1;
        match self.own.remove(&k) {
            Some(Ok(chunk)) => return Some((ParsedBy::Writer, chunk)),
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => {}
        }
        let owner = match self.board.take(k, WRITER) {
            Ok(()) => return Some((ParsedBy::Writer, self.parse(k))),
            Err(owner) => owner,
        };
        loop {
            match self.queues[owner - 1].try_recv() {
                Ok((at, chunk)) => {
                    debug_assert_eq!(at, k, "a parser's chunks arrive in the order it took them");
                    return Some((ParsedBy::Parser, chunk));
                }
                Err(TryRecvError::Disconnected) => return self.stopped(),
                Err(TryRecvError::Empty) => {}
            }
            // Still being parsed: parse a later one meanwhile, or wait.
            let helped = self.own.len() < WRITER_AHEAD
                && match self.board.take_next(WRITER) {
                    Some(later) => {
                        let chunk =
                            std::panic::catch_unwind(AssertUnwindSafe(|| self.parse(later)));
                        if chunk.is_err() {
                            self.packer = Packer::default(); // in whatever state it was left
                        }
                        self.own.insert(later, chunk);
                        true
                    }
                    None => false,
                };
            if !helped {
                return match self.queues[owner - 1].recv() {
                    Ok((at, chunk)) => {
                        debug_assert_eq!(
                            at, k,
                            "a parser's chunks arrive in the order it took them"
                        );
                        Some((ParsedBy::Parser, chunk))
                    }
                    Err(_) => self.stopped(),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::sqlite::Sqlite;
    use crate::store::tests::starts;

    /// The events as a batch, a store to parse them for, and their chunks.
    fn batch(events: &[Vec<u8>]) -> (Vec<&[u8]>, Sqlite, Board) {
        let raws: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
        let board = Board::new(raws.len());
        (raws, Sqlite::open(None).unwrap(), board)
    }

    /// The indexes of the events in `chunks`, in the order given.
    fn indexes(chunks: impl IntoIterator<Item = (ParsedBy, Parsed)>) -> Vec<usize> {
        chunks
            .into_iter()
            .flat_map(|(_, c)| c)
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn chunks_cover_the_batch_and_each_is_taken_once() {
        let board = Board::new(1000);
        let covered: Vec<usize> = board.chunks.iter().flat_map(Clone::clone).collect();
        assert_eq!(covered, (0..1000).collect::<Vec<_>>());
        assert_eq!(board.chunks[0], 0..FIRST_CHUNK);
        // Three threads race for them, one of them taking chunks out of turn
        // as the writer does.
        let taken: Vec<Vec<usize>> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..2)
                .map(|p| {
                    let board = &board;
                    s.spawn(move || std::iter::from_fn(|| board.next_for_parser(p)).collect())
                })
                .collect();
            let mut mine = Vec::new();
            for k in (0..board.len()).rev() {
                if board.take(k, WRITER).is_ok() {
                    mine.push(k);
                }
            }
            let mut all: Vec<Vec<usize>> = racers.into_iter().map(|r| r.join().unwrap()).collect();
            all.push(mine);
            all
        });
        let total: usize = taken.iter().map(Vec::len).sum();
        let distinct: BTreeSet<usize> = taken.iter().flatten().copied().collect();
        assert_eq!(total, board.len(), "no chunk taken twice");
        assert_eq!(distinct.len(), board.len(), "every chunk taken");
        // A parser takes its chunks in increasing order (so they reach the
        // writer in that order).
        for parser in &taken[..2] {
            assert!(parser.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn with_no_parser_the_writer_parses_every_chunk_in_order() {
        let events = starts(300);
        let (raws, backend, board) = batch(&events);
        let chunks = InOrder::new(&board, &raws, &backend, Vec::new());
        assert_eq!(indexes(chunks), (0..300).collect::<Vec<_>>());
    }

    #[test]
    fn the_writer_parses_later_chunks_while_a_slow_parser_works_and_keeps_the_order() {
        let events = starts(1200);
        let (raws, backend, board) = batch(&events);
        let (tx, rx) = mpsc::sync_channel(4);
        let (started_tx, started) = mpsc::channel();
        let (order, parsed_by_parser) = std::thread::scope(|s| {
            let (board, raws, backend) = (&board, &raws, &backend);
            let parser = s.spawn(move || {
                let mut packer = Packer::default();
                let mut mine = 0;
                while let Some(k) = board.next_for_parser(0) {
                    let _ = started_tx.send(());
                    std::thread::sleep(Duration::from_millis(20));
                    mine += 1;
                    if tx
                        .send((k, board.parse(k, raws, backend, &mut packer)))
                        .is_err()
                    {
                        break;
                    }
                }
                mine
            });
            // The parser has taken its first chunk before the writer starts.
            started.recv().unwrap();
            let chunks: Vec<(ParsedBy, Parsed)> =
                InOrder::new(board, raws, backend, vec![rx]).collect();
            (chunks, parser.join().unwrap())
        });
        // Each chunk says who parsed it, as the board does.
        for (k, (by, _)) in order.iter().enumerate() {
            let owner = board.owners[k].load(Ordering::Relaxed);
            assert_eq!(*by == ParsedBy::Writer, owner == WRITER, "chunk {k}");
        }
        let order = indexes(order);
        assert_eq!(order, (0..1200).collect::<Vec<_>>());
        // The parser sleeps 20 ms a chunk: the writer parsed most of them.
        assert!(
            parsed_by_parser > 0 && parsed_by_parser < board.len() / 2,
            "{parsed_by_parser}"
        );
        let by_writer = board
            .owners
            .iter()
            .filter(|o| o.load(Ordering::Relaxed) == WRITER);
        assert_eq!(by_writer.count(), board.len() - parsed_by_parser);
    }

    #[test]
    fn a_panic_parsing_ahead_is_raised_when_the_writer_reaches_its_chunk() {
        let mut events = starts(300);
        events.insert(250, crate::store::tests::PARSER_BUG.to_vec()); // in chunk 4, 200..264
        let (raws, backend, board) = batch(&events);
        // A parser holds the first chunk, so the writer parses ahead first,
        // the chunk with the bug among them.
        let (tx, rx) = mpsc::sync_channel(4);
        assert!(board.take(0, 1).is_ok());
        let (board, raws, backend) = (&board, &raws, &backend);
        std::thread::scope(|s| {
            s.spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                let mut packer = Packer::default();
                let _ = tx.send((0, board.parse(0, raws, backend, &mut packer)));
            });
            let mut chunks = InOrder::new(board, raws, backend, vec![rx]);
            let before: Vec<usize> = (0..4).flat_map(|_| indexes(chunks.next())).collect();
            assert_eq!(before, (0..200).collect::<Vec<_>>(), "the chunks before it");
            let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| chunks.next()));
            assert!(panicked.is_err(), "the panic comes with its chunk");
        });
    }

    #[test]
    fn a_chunk_whose_parser_stopped_ends_the_chunks_there() {
        let events = starts(200);
        let (raws, backend, board) = batch(&events);
        // Parser 0 takes the second chunk and stops without handing it over.
        let (tx, rx) = mpsc::sync_channel::<(usize, Parsed)>(4);
        assert!(board.take(1, 1).is_ok());
        drop(tx);
        let mut chunks = InOrder::new(&board, &raws, &backend, vec![rx]);
        assert_eq!(indexes(chunks.next()), (0..FIRST_CHUNK).collect::<Vec<_>>());
        assert!(chunks.next().is_none(), "no chunk 1");
        assert!(chunks.next().is_none(), "and nothing after it");
    }
}
