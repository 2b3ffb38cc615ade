//! A busy SQLite store copies its write-ahead log into the database file on
//! its checkpointer thread, while it stays open, and loses nothing doing so.

use std::time::{Duration, Instant};

use provenance_core::{Event, EventType, Job, Run, RunEvent, RunId};
use provenance_store::{Outcome, Store};

#[test]
fn the_log_is_checkpointed_while_the_store_is_open_and_the_chain_holds() {
    let path = std::env::temp_dir().join(format!("prov-checkpoint-{}.db", std::process::id()));
    let clean = || {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    };
    clean();
    let store = Store::open(path.to_str().unwrap()).unwrap();
    // About 24 MB of events once compressed (hex digits halve): past the
    // 8 MB threshold, well short of the
    // 16,384-page (64 MiB) log at which a commit would checkpoint itself. The
    // padding is pseudo-random, so that compression does not shrink it.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let events: Vec<Vec<u8>> = (0..1000)
        .map(|i| {
            let padding: String = (0..48_000)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    char::from(b"0123456789abcdef"[(state >> 60) as usize])
                })
                .collect();
            let mut run = Run::new(RunId::new_v7());
            run.facets.insert_raw(
                "padding",
                serde_json::json!({"_producer": "t", "_schemaURL": "t", "x": padding}),
            );
            let mut e = RunEvent::new(EventType::Complete, run, Job::new("t", format!("job{i}")));
            e.producer = "https://example.org/test".into();
            Event::Run(e).to_json().into_bytes()
        })
        .collect();
    for batch in events.chunks(100) {
        let raws: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        let outcomes = store.ingest_batch(&raws).unwrap();
        assert!(outcomes.iter().all(|o| matches!(o, Outcome::Stored { .. })));
    }
    // The database file itself fills while the store is still open.
    let started = Instant::now();
    let size = || std::fs::metadata(&path).map_or(0, |m| m.len());
    while size() < 16 << 20 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the log was not checkpointed: the database file has {} bytes",
            size()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = store.verify_chain().unwrap();
    assert!(report.broken.is_none(), "{report:?}");
    assert_eq!(report.events, 1000);
    drop(store);
    let reopened = Store::open(path.to_str().unwrap()).unwrap();
    assert_eq!(reopened.verify_chain().unwrap().events, 1000);
    drop(reopened);
    clean();
}
