//! The HTTP transport: `POST {url}/{endpoint}` as every OpenLineage client
//! does, through a durable spool so that nothing accepted is lost.
//!
//! `emit` appends the event's JSON line to this process's spool file (one
//! `write`, microseconds) and wakes a background sender; it never waits for
//! the network. The sender delivers spooled events in order, one file at a
//! time, retrying with backoff on connection errors and on 5xx, 401, 403, 404,
//! 408 and 429; an event the server refuses for good (another 4xx) is moved to
//! `<spool>.rejected` with the reason. Spool files left by a process that died
//! are adopted and delivered by the next process that uses the same spool
//! folder. The spool is the bounded-memory queue: a slow or absent server
//! costs disk, not memory, and never blocks the pipeline.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::spool::{self, SpoolFile};
use super::{Transport, TransportError};
use crate::Event;

/// Settings of the HTTP transport.
#[derive(Clone)]
pub struct HttpOptions {
    /// The server, such as `http://127.0.0.1:5000`.
    pub url: String,
    /// The path, `api/v1/lineage` by default; one ending in `batch` sends arrays.
    pub endpoint: String,
    /// Sent as `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Compress bodies with gzip.
    pub gzip: bool,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Where undelivered events are kept, in a folder per target under it.
    pub spool_dir: PathBuf,
    /// The longest wait between retries.
    pub max_backoff: Duration,
    /// How long dropping the transport waits for delivery.
    pub drop_wait: Duration,
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("url", &crate::redact_url_password(&self.url))
            .field("endpoint", &self.endpoint)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("gzip", &self.gzip)
            .field("timeout", &self.timeout)
            .field("spool_dir", &self.spool_dir)
            .finish()
    }
}

impl HttpOptions {
    /// Options for `url` with the defaults of the OpenLineage clients (5 s
    /// timeout) and the spool in `spool_dir`.
    pub fn new(url: impl Into<String>, spool_dir: PathBuf) -> Self {
        HttpOptions {
            url: url.into(),
            endpoint: "api/v1/lineage".into(),
            api_key: None,
            gzip: false,
            timeout: Duration::from_secs(5),
            spool_dir,
            max_backoff: Duration::from_secs(5),
            drop_wait: Duration::from_secs(5),
        }
    }

    fn target(&self) -> String {
        format!(
            "{}/{}",
            self.url.trim_end_matches('/'),
            self.endpoint.trim_start_matches('/')
        )
    }

    /// The target as messages show it: without the password a URL may hold.
    fn shown_target(&self) -> String {
        crate::redact_url_password(&self.target())
    }

    /// The folder of the spool files bound for this target, under
    /// `spool_dir`: events left by one process are delivered by a later one
    /// only if it sends to the same place.
    fn destination_dir(&self) -> PathBuf {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.shown_target().as_bytes());
        self.spool_dir
            .join(format!("to-{}", &crate::hex(&digest)[..16]))
    }
}

/// Sends events over HTTP through a durable spool.
pub struct HttpTransport {
    shared: Arc<Shared>,
    sender: Option<JoinHandle<()>>,
}

struct Shared {
    options: HttpOptions,
    /// The spool folder of this target.
    dir: PathBuf,
    own: SpoolFile,
    append: Mutex<()>,
    written: AtomicU64,
    delivered: AtomicU64,
    /// Events the receiver refused for good and that were set aside, since
    /// the last flush said so.
    refused: AtomicU64,
    /// Spool files of dead processes found and not yet delivered; `u64::MAX`
    /// until the first look.
    orphans: AtomicU64,
    stop: AtomicBool,
    wake: (Mutex<u64>, Condvar),
    client: reqwest::blocking::Client,
}

/// What became of one attempt.
enum Sent {
    Delivered,
    /// The server refused these for good (index in the attempt, reason).
    Refused(Vec<(usize, String)>),
    /// The server refused a batch of several events as too large (413).
    TooLarge,
    Retry(String),
}

impl HttpTransport {
    /// Starts the transport: creates this process's spool file and the
    /// sender, which also delivers spool files left by earlier processes.
    pub fn start(options: HttpOptions) -> Result<Self, TransportError> {
        let target = options.shown_target();
        let dir = options.destination_dir();
        let spool_dir = dir.display().to_string();
        let io = |source| TransportError::Io {
            target: format!("the spool in {spool_dir}"),
            source,
        };
        let own = SpoolFile::create(&dir).map_err(io)?;
        let client = reqwest::blocking::Client::builder()
            .timeout(options.timeout)
            .build()
            .map_err(|e| TransportError::Rejected {
                target: target.clone(),
                reason: e.to_string(),
            })?;
        let shared = Arc::new(Shared {
            options,
            dir,
            own,
            append: Mutex::new(()),
            written: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            orphans: AtomicU64::new(u64::MAX),
            stop: AtomicBool::new(false),
            wake: (Mutex::new(0), Condvar::new()),
            client,
        });
        let worker = Arc::clone(&shared);
        let sender = std::thread::Builder::new()
            .name("prov-http-sender".into())
            .spawn(move || worker.run())
            .map_err(io)?;
        Ok(HttpTransport {
            shared,
            sender: Some(sender),
        })
    }

    /// This process's spool file.
    pub fn spool_file(&self) -> PathBuf {
        self.shared.own.path.clone()
    }
}

impl Transport for HttpTransport {
    fn emit(&self, event: &Event) -> Result<(), TransportError> {
        super::file::with_line(event, |line| {
            let _guard = self.shared.append.lock().unwrap_or_else(|e| e.into_inner());
            let mut file = &self.shared.own.lock;
            if let Err(source) = file.write_all(line) {
                // Part of the line may be written (a full disk): cut it off,
                // so that the next event starts a line of its own. The file
                // is this process's alone.
                let _ = file.set_len(self.shared.written.load(Ordering::SeqCst));
                return Err(TransportError::Io {
                    target: format!("the spool {}", self.shared.own.path.display()),
                    source,
                });
            }
            self.shared
                .written
                .fetch_add(line.len() as u64, Ordering::SeqCst);
            Ok(())
        })?;
        self.shared.notify();
        Ok(())
    }

    fn flush(&self, timeout: Duration) -> Result<(), TransportError> {
        let deadline = Instant::now() + timeout;
        let shared = &self.shared;
        while shared.delivered.load(Ordering::SeqCst) < shared.written.load(Ordering::SeqCst)
            || shared.orphans.load(Ordering::SeqCst) > 0
        {
            if Instant::now() >= deadline {
                let pending = shared
                    .own
                    .lines_from(shared.delivered.load(Ordering::SeqCst))
                    .unwrap_or(0);
                return Err(TransportError::Pending {
                    target: shared.options.shown_target(),
                    pending,
                    waited: timeout,
                    spool: shared.own.path.display().to_string(),
                });
            }
            shared.notify();
            std::thread::sleep(Duration::from_millis(2));
        }
        // Delivered or set aside: the caller learns of the second kind.
        match shared.refused.swap(0, Ordering::SeqCst) {
            0 => Ok(()),
            n => Err(TransportError::Rejected {
                target: shared.options.shown_target(),
                reason: format!(
                    "{n} event(s) refused for good; kept with the reason in the spool's .rejected files under {}",
                    shared.dir.display()
                ),
            }),
        }
    }

    fn describe(&self) -> String {
        format!("http {}", self.shared.options.shown_target())
    }
}

impl Drop for HttpTransport {
    fn drop(&mut self) {
        let _ = self.flush(self.shared.options.drop_wait);
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.notify();
        if let Some(sender) = self.sender.take() {
            let _ = sender.join();
        }
        // Everything delivered: the spool file is no longer needed. Otherwise it
        // stays, unlocked when this process ends, for a later one to deliver.
        if self.shared.delivered.load(Ordering::SeqCst)
            == self.shared.written.load(Ordering::SeqCst)
        {
            let _ = std::fs::remove_file(&self.shared.own.path);
            let mut cursor = self.shared.own.path.clone().into_os_string();
            cursor.push(".acked");
            let _ = std::fs::remove_file(cursor);
            // The target's folder too, if nothing else is in it.
            let _ = std::fs::remove_dir(&self.shared.dir);
        }
    }
}

impl Shared {
    fn notify(&self) {
        let (lock, cvar) = &self.wake;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        cvar.notify_all();
    }

    fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let (lock, cvar) = &self.wake;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = cvar
            .wait_timeout_while(guard, timeout, |g| {
                *g == seen && !self.stop.load(Ordering::SeqCst)
            })
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }

    /// The sender: orphaned spools first (oldest first), then our own.
    fn run(&self) {
        let mut backoff = Duration::from_millis(50);
        let mut seen = 0;
        loop {
            let mut failed = false;
            let mut left = 0u64;
            // Spool files of earlier versions, which lie in the spool folder
            // itself and did not keep their destination, are delivered here,
            // as the next process then delivered them.
            let legacy = spool::others(&self.options.spool_dir, &self.own.path);
            if let Ok(orphans) = spool::others(&self.dir, &self.own.path)
                .map(|own| own.into_iter().chain(legacy.unwrap_or_default()))
            {
                for path in orphans {
                    // A file another live process holds is its business.
                    let Ok(Some(file)) = SpoolFile::adopt(&path) else {
                        continue;
                    };
                    if failed || self.stop.load(Ordering::SeqCst) {
                        left += 1;
                        continue;
                    }
                    match self.drain(&file, None) {
                        Ok(true) => {
                            let _ = file.remove();
                        }
                        Ok(false) => left += 1,
                        Err(_) => {
                            failed = true;
                            left += 1;
                        }
                    }
                }
            }
            self.orphans.store(left, Ordering::SeqCst);
            if !failed && self.drain(&self.own, Some(&self.delivered)).is_err() {
                failed = true;
            }
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let pause = if failed {
                backoff = (backoff * 2).min(self.options.max_backoff);
                backoff
            } else {
                backoff = Duration::from_millis(50);
                Duration::from_millis(500)
            };
            seen = self.wait(seen, pause);
        }
    }

    /// Delivers what `file` holds beyond its cursor. `Ok(true)` when the file
    /// is complete and fully delivered (an orphan can then be removed).
    fn drain(&self, file: &SpoolFile, progress: Option<&AtomicU64>) -> Result<bool, String> {
        let mut batch = if self
            .options
            .endpoint
            .trim_end_matches('/')
            .ends_with("batch")
        {
            100
        } else {
            1
        };
        let mut cursor = file.cursor().map_err(|e| e.to_string())?;
        if let Some(p) = progress {
            p.store(cursor, Ordering::SeqCst);
        }
        loop {
            // Stopping (the transport is dropped and its wait is over): the
            // rest stays in the spool for a later process.
            if self.stop.load(Ordering::SeqCst) {
                return Ok(false);
            }
            let lines = file.read_from(cursor, batch).map_err(|e| e.to_string())?;
            if lines.is_empty() {
                let len = file.len().map_err(|e| e.to_string())?;
                if cursor < len && progress.is_none() {
                    // The owner died in the middle of a write: the event was
                    // never accepted. Keep the torn bytes aside, then finish.
                    let torn = std::fs::read(&file.path).map_err(|e| e.to_string())?;
                    let torn = torn.get(cursor as usize..).unwrap_or_default();
                    file.reject(
                        torn,
                        "incomplete line left by a process that died while writing it",
                    )
                    .map_err(|e| e.to_string())?;
                    return Ok(true);
                }
                return Ok(cursor == len);
            }
            match self.send(&lines) {
                Sent::Delivered => {}
                // Too large together: send fewer at a time.
                Sent::TooLarge => {
                    batch = (lines.len() / 2).max(1);
                    continue;
                }
                Sent::Refused(refused) => {
                    for (i, reason) in refused {
                        file.reject(&lines[i].0, &reason)
                            .map_err(|e| e.to_string())?;
                        self.refused.fetch_add(1, Ordering::SeqCst);
                    }
                }
                Sent::Retry(reason) => return Err(reason),
            }
            cursor = lines.last().map_or(cursor, |(_, end)| *end);
            file.set_cursor(cursor).map_err(|e| e.to_string())?;
            if let Some(p) = progress {
                p.store(cursor, Ordering::SeqCst);
            }
        }
    }

    fn send(&self, lines: &[(Vec<u8>, u64)]) -> Sent {
        let batch = lines.len() > 1
            || self
                .options
                .endpoint
                .trim_end_matches('/')
                .ends_with("batch");
        let mut body = Vec::new();
        if batch {
            body.push(b'[');
            for (i, (line, _)) in lines.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(line);
            }
            body.push(b']');
        } else {
            body.extend_from_slice(&lines[0].0);
        }
        let mut request = self
            .client
            .post(self.options.target())
            .header("Content-Type", "application/json");
        if let Some(key) = &self.options.api_key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        if self.options.gzip {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            if encoder.write_all(&body).is_ok()
                && let Ok(gz) = encoder.finish()
            {
                body = gz;
                request = request.header("Content-Encoding", "gzip");
            }
        }
        let response = match request.body(body).send() {
            Ok(r) => r,
            // Without the URL, which may hold a password.
            Err(e) => return Sent::Retry(format!("{}", e.without_url())),
        };
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            if !batch {
                return Sent::Delivered;
            }
            // The batch summary lists failures by index; a retriable one stops
            // here so that order is kept, the others are set aside.
            let summary: serde_json::Value = response
                .text()
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            let mut refused = Vec::new();
            if let Some(failed) = summary["failed_events"].as_array() {
                for f in failed {
                    let i = f["index"].as_u64().unwrap_or(0) as usize;
                    if f["retriable"].as_bool().unwrap_or(true) {
                        return Sent::Retry(format!("event {i} of a batch: {}", f["reason"]));
                    }
                    if i < lines.len() {
                        refused.push((i, f["reason"].as_str().unwrap_or("refused").to_owned()));
                    }
                }
            }
            return if refused.is_empty() {
                Sent::Delivered
            } else {
                Sent::Refused(refused)
            };
        }
        let text = response.text().unwrap_or_default();
        let reason = format!(
            "HTTP {status}: {}",
            text.chars().take(300).collect::<String>()
        );
        if status == 413 && lines.len() > 1 {
            Sent::TooLarge
        } else if status >= 500 || matches!(status, 401 | 403 | 404 | 408 | 429) {
            Sent::Retry(reason)
        } else {
            Sent::Refused((0..lines.len()).map(|i| (i, reason.clone())).collect())
        }
    }
}
