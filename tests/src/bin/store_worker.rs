//! A helper process for the store stories: writes batches of run events into a
//! store file and prints `ACK <batch>` after each batch is committed.
//!
//! Usage: store_worker <store> <prefix> <batches> <batch-size>
//! Each event is a COMPLETE event of job `<prefix>-b<batch>` with a run id
//! derived from (prefix, batch, index), so a checker can tell what was stored.

use std::io::Write;

use chrono::{DateTime, Utc};
use provenance_core::{Event, EventType, Job, Run, RunEvent, RunId};
use provenance_store::{Outcome, Store};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: store_worker <store> <prefix> <batches> <batch-size>");
        std::process::exit(2);
    }
    let store = Store::open(&args[1]).unwrap_or_else(|e| {
        eprintln!("store_worker: {e}");
        std::process::exit(2)
    });
    let prefix = &args[2];
    let batches: usize = args[3].parse().expect("batches");
    let size: usize = args[4].parse().expect("batch size");
    let mut out = std::io::stdout().lock();
    for b in 0..batches {
        let events: Vec<String> = (0..size).map(|i| event(prefix, b, i).to_json()).collect();
        let raws: Vec<&[u8]> = events.iter().map(|e| e.as_bytes()).collect();
        let outcomes = store.ingest_batch(&raws).unwrap_or_else(|e| {
            eprintln!("store_worker: batch {b}: {e}");
            std::process::exit(1)
        });
        assert!(
            outcomes.iter().all(|o| matches!(o, Outcome::Stored { .. })),
            "{outcomes:?}"
        );
        writeln!(out, "ACK {b}").unwrap();
        out.flush().unwrap();
    }
}

/// The event for (prefix, batch, index): the same arguments give the same bytes.
pub fn event(prefix: &str, batch: usize, index: usize) -> Event {
    let time =
        DateTime::<Utc>::from_timestamp(1_700_000_000 + batch as i64, index as u32 * 1000).unwrap();
    let id = RunId::static_v7(time, format!("{prefix}/{batch}/{index}").as_bytes());
    let mut e = RunEvent::new(
        EventType::Complete,
        Run::new(id),
        Job::new("workers", format!("{prefix}-b{batch}")),
    );
    e.event_time = time.into();
    Event::Run(e)
}
