//! The writer thread: group commit. Requests parse their events on a blocking
//! thread (so parsing runs on the other core while the writer writes), hand
//! them over and wait; the writer takes everything that has arrived, stores
//! it in one transaction, and answers each request with its own outcomes once
//! committed.

use std::sync::mpsc;

use provenance_store::{Outcome, ParsedEvent, Store};
use tokio::sync::oneshot;

/// Events waiting to be written, and where to send their outcomes.
type Job = (
    Vec<ParsedEvent>,
    oneshot::Sender<Result<Vec<Outcome>, String>>,
);

/// Hands events to the writer.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

/// The writer thread, to join at shutdown (after every `Writer` is dropped).
pub struct Handle {
    thread: std::thread::JoinHandle<()>,
}

impl Handle {
    /// Waits until everything handed over is written.
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// The most events one transaction takes.
const GROUP: usize = 5000;

pub fn start(store: Store) -> (Writer, Handle) {
    let (jobs, rx) = mpsc::channel::<Job>();
    let thread = std::thread::Builder::new()
        .name("prov-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut group = vec![first];
                let mut count = group[0].0.len();
                while count < GROUP {
                    match rx.try_recv() {
                        Ok(job) => {
                            count += job.0.len();
                            group.push(job);
                        }
                        Err(_) => break,
                    }
                }
                let sizes: Vec<usize> = group.iter().map(|(events, _)| events.len()).collect();
                let (events, replies): (Vec<Vec<ParsedEvent>>, Vec<_>) = group.into_iter().unzip();
                match store.ingest_parsed(events.into_iter().flatten().collect()) {
                    Ok(outcomes) => {
                        let mut outcomes = outcomes.into_iter();
                        for (size, reply) in sizes.into_iter().zip(replies) {
                            let mine: Vec<Outcome> = outcomes.by_ref().take(size).collect();
                            let _ = reply.send(Ok(mine));
                        }
                    }
                    Err(e) => {
                        let message = format!("{:#}", anyhow::Error::new(e));
                        for reply in replies {
                            let _ = reply.send(Err(message.clone()));
                        }
                    }
                }
            }
        })
        .expect("start the writer thread");
    (Writer { jobs }, Handle { thread })
}

impl Writer {
    /// Stores `events` and returns their outcomes once they are committed.
    pub async fn submit(&self, events: Vec<Vec<u8>>) -> Result<Vec<Outcome>, String> {
        let events = tokio::task::spawn_blocking(move || {
            events
                .iter()
                .map(|raw| Store::parse(raw))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| format!("parse the events: {e}"))?;
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((events, reply))
            .map_err(|_| "the server is shutting down".to_owned())?;
        answer.await.map_err(|_| "the writer stopped".to_owned())?
    }
}
