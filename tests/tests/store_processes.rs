//! Story: the store file under real processes: eight writers at once, and a
//! writer killed with SIGKILL again and again in the middle of its batches.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use provenance_store::{Page, RunFilter, Store};

const WORKER: &str = env!("CARGO_BIN_EXE_store_worker");

struct TempStore(PathBuf);
impl TempStore {
    fn new(name: &str) -> Self {
        let t = TempStore(
            std::env::temp_dir().join(format!("prov-proc-{name}-{}.db", std::process::id())),
        );
        t.clean();
        t
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
    fn clean(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}
impl Drop for TempStore {
    fn drop(&mut self) {
        self.clean();
    }
}

fn worker(store: &str, prefix: &str, batches: usize, size: usize) -> Child {
    Command::new(WORKER)
        .args([store, prefix, &batches.to_string(), &size.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start store_worker")
}

fn count_job(store: &Store, job: &str) -> u64 {
    let filter = RunFilter {
        job: Some(job.to_owned()),
        ..RunFilter::default()
    };
    store
        .runs(
            &filter,
            Page {
                offset: 0,
                limit: 1,
            },
        )
        .unwrap()
        .total
}

#[test]
fn eight_processes_write_forty_thousand_events_none_lost_none_doubled() {
    let t = TempStore::new("eight");
    drop(Store::open(t.path()).unwrap()); // create the schema once
    let children: Vec<Child> = (0..8)
        .map(|w| worker(t.path(), &format!("w{w}"), 50, 100))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 50);
    }
    let store = Store::open(t.path()).unwrap();
    let report = store.verify_chain().unwrap();
    assert_eq!(report.events, 40_000);
    assert!(report.broken.is_none(), "{report:?}");
    assert_eq!(
        store
            .runs(&RunFilter::default(), Page::default())
            .unwrap()
            .total,
        40_000
    );
    for w in 0..8 {
        for b in [0, 17, 49] {
            assert_eq!(
                count_job(&store, &format!("w{w}-b{b}")),
                100,
                "w{w} batch {b}"
            );
        }
    }
}

#[test]
fn a_writer_killed_mid_batch_leaves_exactly_whole_batches() {
    let t = TempStore::new("kill");
    drop(Store::open(t.path()).unwrap());
    let mut acked: Vec<(String, usize)> = Vec::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..8 {
        let prefix = format!("k{round}");
        let mut child = worker(t.path(), &prefix, 10_000, 200);
        let stdout = child.stdout.take().unwrap();
        // Let it commit some batches, then kill it at an arbitrary moment.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(150 + seed % 400));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let batch: usize = line.strip_prefix("ACK ").unwrap().parse().unwrap();
            acked.push((prefix.clone(), batch));
        }
    }
    assert!(
        acked.len() >= 8,
        "the workers committed too little to test anything"
    );

    let store = Store::open(t.path()).unwrap();
    let report = store.verify_chain().unwrap();
    assert!(report.broken.is_none(), "{report:?}");
    // Every acknowledged batch is there, whole.
    for (prefix, batch) in &acked {
        assert_eq!(
            count_job(&store, &format!("{prefix}-b{batch}")),
            200,
            "{prefix} batch {batch}"
        );
    }
    // Beyond them, each round has at most the one batch that was committed
    // when the kill came, before its ACK was read, and it too is whole.
    let mut unacked = 0;
    for round in 0..8 {
        let prefix = format!("k{round}");
        let last = acked
            .iter()
            .filter(|(p, _)| *p == prefix)
            .map(|(_, b)| *b + 1)
            .max()
            .unwrap_or(0);
        let next = count_job(&store, &format!("{prefix}-b{last}"));
        assert!(
            next == 0 || next == 200,
            "{prefix} batch {last} is partial: {next}"
        );
        unacked += usize::from(next == 200);
        assert_eq!(count_job(&store, &format!("{prefix}-b{}", last + 1)), 0);
    }
    let total = store.verify_chain().unwrap().events;
    assert_eq!(total as usize, (acked.len() + unacked) * 200);
}

/// Many processes opening one store that does not exist yet, as a pipeline's
/// first steps do at once: none fails with "database is locked".
#[test]
fn processes_creating_one_new_store_at_once_all_get_in() {
    for round in 0..12 {
        let store = TempStore::new(&format!("create-{round}"));
        let children: Vec<Child> = (0..16)
            .map(|w| worker(store.path(), &format!("w{w}"), 1, 1))
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let opened = Store::open(store.path()).unwrap();
        assert_eq!(opened.verify_chain().unwrap().events, 16);
    }
}
