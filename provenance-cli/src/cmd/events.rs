//! Events read from a file or standard input a batch at a time, so that an
//! NDJSON dump of any size is ingested in bounded memory.
//!
//! NDJSON (a first line that is a whole JSON value, not an array) is read
//! line by line. Anything else (a JSON array, one event spread over lines,
//! or a first line that is not JSON) is read whole and split as
//! [`super::split_events`] does, which also names each bad line.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::Context;
use serde::de::IgnoredAny;

/// Events of one input, with their places (`line 7`, `event 3`).
pub struct EventReader<'a> {
    name: String,
    source: Source<'a>,
    /// Bytes of the input consumed so far.
    consumed: u64,
}

enum Source<'a> {
    Lines {
        input: Box<dyn BufRead + 'a>,
        /// The number of the last line read.
        line: usize,
        /// The first event's line, read to tell NDJSON from a document.
        pending: Option<Vec<u8>>,
    },
    Whole(std::vec::IntoIter<(String, Vec<u8>)>),
}

/// Events per batch, at most; and bytes, at most (beyond one event).
pub const BATCH_EVENTS: usize = 1000;
const BATCH_BYTES: usize = 8 << 20;

impl<'a> EventReader<'a> {
    /// Opens a file, or standard input for `-`.
    pub fn open(file: &Path) -> anyhow::Result<EventReader<'static>> {
        let name = file.display().to_string();
        let input: Box<dyn BufRead> = if name == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            let f = std::fs::File::open(file).with_context(|| format!("read {name}"))?;
            Box::new(BufReader::with_capacity(1 << 20, f))
        };
        EventReader::new(name, input)
    }

    /// Reads events from `input`, called `name` in messages.
    pub fn new(name: String, mut input: Box<dyn BufRead + 'a>) -> anyhow::Result<Self> {
        // A byte order mark (editors on Windows write one) is not part of
        // the first event.
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        let bom = input
            .fill_buf()
            .with_context(|| format!("read {name}"))?
            .starts_with(BOM);
        if bom {
            input.consume(BOM.len());
        }
        // Blank lines first, then the first line with something on it.
        let mut head = Vec::new();
        let mut line = 0;
        let first = loop {
            let start = head.len();
            let n = input
                .read_until(b'\n', &mut head)
                .with_context(|| format!("read {name}"))?;
            if n == 0 {
                break None; // only blank lines, or nothing
            }
            line += 1;
            if !head[start..].iter().all(u8::is_ascii_whitespace) {
                break Some(start);
            }
        };
        let consumed = (head.len() + if bom { BOM.len() } else { 0 }) as u64;
        let streams = first.is_some_and(|start| {
            let text = head[start..].trim_ascii();
            text.first() != Some(&b'[') && serde_json::from_slice::<IgnoredAny>(text).is_ok()
        });
        let source = match first {
            Some(start) if streams => {
                let mut event = head.split_off(start);
                if event.last() == Some(&b'\n') {
                    event.pop();
                }
                Source::Lines {
                    input,
                    line,
                    pending: Some(event),
                }
            }
            None => Source::Whole(Vec::new().into_iter()),
            Some(_) => {
                input
                    .read_to_end(&mut head)
                    .with_context(|| format!("read {name}"))?;
                let consumed = (head.len() + if bom { BOM.len() } else { 0 }) as u64;
                return Ok(EventReader {
                    source: Source::Whole(super::split_events(&head).into_iter()),
                    name,
                    consumed,
                });
            }
        };
        Ok(EventReader {
            name,
            source,
            consumed,
        })
    }

    /// The input's name in messages (`-` for standard input).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes of the input read so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The next events (empty at the end): up to [`BATCH_EVENTS`], and no
    /// more than about 8 MiB.
    pub fn next_batch(&mut self) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let mut batch = Vec::new();
        match &mut self.source {
            Source::Whole(events) => batch.extend(events.by_ref().take(BATCH_EVENTS)),
            Source::Lines {
                input,
                line,
                pending,
            } => {
                let mut bytes = 0;
                if let Some(first) = pending.take() {
                    bytes += first.len();
                    batch.push((format!("line {line}"), first));
                }
                while batch.len() < BATCH_EVENTS && bytes < BATCH_BYTES {
                    let mut event = Vec::new();
                    let n = input
                        .read_until(b'\n', &mut event)
                        .with_context(|| format!("read {} after line {line}", self.name))?;
                    if n == 0 {
                        break;
                    }
                    *line += 1;
                    self.consumed += n as u64;
                    if event.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    if event.last() == Some(&b'\n') {
                        event.pop();
                    }
                    bytes += event.len();
                    batch.push((format!("line {line}"), event));
                }
            }
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::EventReader;

    fn all(text: &str) -> Vec<(String, String)> {
        let mut reader =
            EventReader::new("t".into(), Box::new(std::io::Cursor::new(text.to_owned()))).unwrap();
        let mut out = Vec::new();
        loop {
            let batch = reader.next_batch().unwrap();
            if batch.is_empty() {
                break;
            }
            out.extend(
                batch
                    .into_iter()
                    .map(|(place, raw)| (place, String::from_utf8(raw).unwrap())),
            );
        }
        assert_eq!(reader.consumed(), text.len() as u64, "every byte read");
        out
    }

    fn places(events: &[(String, String)]) -> Vec<&str> {
        events.iter().map(|(p, _)| p.as_str()).collect()
    }

    #[test]
    fn ndjson_is_read_line_by_line_with_the_lines_numbered() {
        let mut text = String::from("\n  \n");
        for i in 0..2500 {
            text.push_str(&format!("{{\"n\":{i}}}\n"));
            if i == 1200 {
                text.push_str("not json\n\n");
            }
        }
        let events = all(&text);
        assert_eq!(events.len(), 2501);
        assert_eq!(events[0], ("line 3".into(), "{\"n\":0}".into()));
        assert_eq!(events[1201], ("line 1204".into(), "not json".into()));
        assert_eq!(events[1202], ("line 1206".into(), "{\"n\":1201}".into()));
        assert_eq!(events[2500].0, "line 2504");
    }

    #[test]
    fn documents_are_read_whole() {
        let array = all("[{\"a\":1},\n {\"b\":2}]\n");
        assert_eq!(places(&array), ["event 1", "event 2"]);
        let pretty = all("{\n  \"a\": 1\n}\n");
        assert_eq!(places(&pretty), ["event 1"]);
        assert_eq!(pretty[0].1, "{\n  \"a\": 1\n}\n");
        // An array's items keep their bytes (spelling of numbers and all).
        let spelled = all("[ {\"n\": 1.50, \"big\": 123456789012345678901} ]");
        assert_eq!(
            spelled[0].1,
            "{\"n\": 1.50, \"big\": 123456789012345678901}"
        );
        // A first line that is not JSON: every line is an event, named.
        let bad = all("oops\n{\"a\":1}\n");
        assert_eq!(places(&bad), ["line 1", "line 2"]);
        // A document cut short is one bad event, not each of its lines.
        let cut = all("[\n  {\n    \"a\": 1\n  },\n  {\n    \"b\":");
        assert_eq!(places(&cut), ["the document"]);
        let cut = all("{\n  \"a\": {\n    \"b\": 1\n");
        assert_eq!(places(&cut), ["the document"]);
        assert!(all("").is_empty());
        assert!(all("\n \n").is_empty());
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_event() {
        let events = all("\u{feff}{\"a\":1}\n{\"b\":2}\n");
        assert_eq!(events[0], ("line 1".into(), "{\"a\":1}".into()));
        let array = all("\u{feff}[{\"a\":1}]");
        assert_eq!(array[0], ("event 1".into(), "{\"a\":1}".into()));
    }

    #[test]
    fn a_last_line_without_newline_is_an_event() {
        let events = all("{\"a\":1}\n{\"b\":2}");
        assert_eq!(events[1], ("line 2".into(), "{\"b\":2}".into()));
    }
}
