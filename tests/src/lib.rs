//! Shared helpers for the cross-crate stories in `tests/tests/`.
//!
//! The main one is [`Schemas`]: every JSON Schema the project validates against
//! (the official OpenLineage 2-0-2 spec and facet schemas from `../shared`, and
//! the project's own from `schemas/`), indexed by `$id`, so that `$ref`s to
//! `https://openlineage.io/...` resolve to local files. There is no network.

pub mod registry;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jsonschema::{Retrieve, Uri, Validator};
use serde_json::{Value, json};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// `../shared` beside the checkout (override with `PROV_SHARED_DIR`).
pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("PROV_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared"));
    assert!(
        dir.join("openlineage-spec/OpenLineage.json").is_file(),
        "the shared data is missing at {}: the tests read the official schemas from it",
        dir.display()
    );
    dir
}

/// The official OpenLineage spec folder.
pub fn spec_dir() -> PathBuf {
    shared_dir().join("openlineage-spec")
}

/// The project's `schemas/` folder.
pub fn schemas_dir() -> PathBuf {
    workspace_root().join("schemas")
}

/// Reads and parses a JSON file, naming it on failure.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// The `*.json` files directly in `dir`, sorted.
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Every schema the project knows, by `$id` (without fragment).
#[derive(Clone)]
pub struct Schemas {
    by_id: Arc<HashMap<String, Value>>,
}

impl Schemas {
    /// Loads the official spec and facet schemas and the project's own.
    pub fn load() -> Self {
        let spec = spec_dir();
        let mut files = vec![spec.join("OpenLineage.json")];
        files.extend(json_files(&spec.join("facets")));
        files.extend(json_files(&schemas_dir()));
        let mut by_id = HashMap::new();
        for file in files {
            let schema = read_json(&file);
            let id = schema["$id"]
                .as_str()
                .unwrap_or_else(|| panic!("{} has no $id", file.display()))
                .to_owned();
            by_id.insert(id, schema);
        }
        Schemas {
            by_id: Arc::new(by_id),
        }
    }

    /// The schema with `$id` `id`.
    pub fn get(&self, id: &str) -> Option<&Value> {
        self.by_id.get(id)
    }

    /// A validator for the schema (or the part of one) at `uri`, which may carry
    /// a JSON-pointer fragment such as `#/$defs/RunEvent`.
    pub fn validator(&self, uri: &str) -> Validator {
        let base = uri.split('#').next().unwrap_or(uri);
        assert!(
            self.by_id.contains_key(base),
            "no local schema has $id {base}; known: {:?}",
            {
                let mut ids: Vec<_> = self.by_id.keys().collect();
                ids.sort();
                ids
            }
        );
        let root = json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": uri});
        jsonschema::options()
            .should_validate_formats(true)
            .with_retriever(LocalRetriever(self.by_id.clone()))
            .build(&root)
            .unwrap_or_else(|e| panic!("compile schema {uri}: {e}"))
    }

    /// Validates `instance` against `uri` and returns each error as
    /// `instance_path: message`.
    pub fn errors(&self, uri: &str, instance: &Value) -> Vec<String> {
        self.validator(uri)
            .iter_errors(instance)
            .map(|e| format!("{}: {}", e.instance_path(), e))
            .collect()
    }

    /// Validates an event against the official spec, and each facet in it
    /// against the schema named by its `_schemaURL` (which must be local).
    /// Returns every error, prefixed by where it is.
    pub fn event_errors(&self, event: &Value) -> Vec<String> {
        let mut errors = self.errors(provenance_core::OPENLINEAGE_SPEC_URL, event);
        for (place, facets) in facet_maps(event) {
            for (key, facet) in &facets {
                let Some(url) = facet["_schemaURL"].as_str() else {
                    errors.push(format!("{place}.{key}: no _schemaURL"));
                    continue;
                };
                for e in self.errors(url, facet) {
                    errors.push(format!("{place}.{key} ({url}) {e}"));
                }
            }
        }
        errors
    }
}

/// Every facets map in an event, with where it is.
fn facet_maps(event: &Value) -> Vec<(String, serde_json::Map<String, Value>)> {
    let mut out = Vec::new();
    let mut add = |place: String, v: &'_ Value| {
        if let Some(map) = v.as_object() {
            out.push((place, map.clone()));
        }
    };
    add("run.facets".into(), &event["run"]["facets"]);
    add("job.facets".into(), &event["job"]["facets"]);
    add("dataset.facets".into(), &event["dataset"]["facets"]);
    for side in ["inputs", "outputs"] {
        let own = if side == "inputs" {
            "inputFacets"
        } else {
            "outputFacets"
        };
        for (i, d) in event[side].as_array().into_iter().flatten().enumerate() {
            add(format!("{side}[{i}].facets"), &d["facets"]);
            add(format!("{side}[{i}].{own}"), &d[own]);
        }
    }
    out
}

struct LocalRetriever(Arc<HashMap<String, Value>>);

impl Retrieve for LocalRetriever {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let text = uri.as_str();
        let base = text.split('#').next().unwrap_or(text);
        self.0
            .get(base)
            .cloned()
            .ok_or_else(|| format!("no local schema for {text} (there is no network)").into())
    }
}

/// Event `index` of run `run` of a story, deterministic: its run id comes from
/// (prefix, run) and it carries its index in a `prov_test` run facet.
pub fn numbered_event(prefix: &str, run: usize, index: usize) -> provenance_core::Event {
    use provenance_core::{Event, EventType, Job, Run, RunEvent, RunId};
    let time =
        chrono::DateTime::<chrono::Utc>::from_timestamp(1_750_000_000, 0).expect("a valid time");
    let id = RunId::static_v7(time, format!("{prefix}/{run}").as_bytes());
    let mut r = Run::new(id);
    r.facets.insert_raw(
        "prov_test",
        json!({"_producer": "https://example.org/tests", "_schemaURL": "https://example.org/tests/schema.json", "index": index}),
    );
    let kind = if index == 0 {
        EventType::Start
    } else {
        EventType::Running
    };
    let mut e = RunEvent::new(kind, r, Job::new("stories", format!("{prefix}-{run}")));
    e.event_time = (time + chrono::Duration::milliseconds(index as i64)).into();
    Event::Run(e)
}

/// An OpenLineage receiver on loopback: stores every event body it is sent and
/// answers 201, as Marquez does. It can be stopped and started on the same port.
pub struct Receiver {
    port: u16,
    /// Every event received, in arrival order (duplicates included).
    pub events: Arc<std::sync::Mutex<Vec<Value>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// A free loopback port.
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port")
    }

    /// Starts receiving on `port`; `stop_after` stops it by itself after that
    /// many events (to kill it in the middle of a run).
    pub fn start(port: u16, stop_after: Option<usize>) -> Receiver {
        let events = Arc::new(std::sync::Mutex::new(Vec::new()));
        Self::start_with(port, events, stop_after, None)
    }

    /// Starts receiving on `port`, answering 413 to a body over `limit`
    /// bytes, as a proxy in front of a server does.
    pub fn start_limited(port: u16, limit: usize) -> Receiver {
        let events = Arc::new(std::sync::Mutex::new(Vec::new()));
        Self::start_with(port, events, None, Some(limit))
    }

    /// Starts again, keeping what was received before.
    pub fn restart(mut self, stop_after: Option<usize>) -> Receiver {
        self.shutdown();
        let events = Arc::clone(&self.events);
        Self::start_with(self.port, events, stop_after, None)
    }

    fn start_with(
        port: u16,
        events: Arc<std::sync::Mutex<Vec<Value>>>,
        stop_after: Option<usize>,
        body_limit: Option<usize>,
    ) -> Receiver {
        use std::sync::atomic::Ordering;
        let server = {
            let mut tries = 0;
            loop {
                match tiny_http::Server::http(("127.0.0.1", port)) {
                    Ok(s) => break s,
                    Err(e) if tries < 50 => {
                        tries += 1;
                        let _ = e;
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    Err(e) => panic!("bind 127.0.0.1:{port}: {e}"),
                }
            }
        };
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (events2, stop2) = (Arc::clone(&events), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut served = 0usize;
            while !stop2.load(Ordering::SeqCst) {
                let Ok(Some(mut request)) =
                    server.recv_timeout(std::time::Duration::from_millis(20))
                else {
                    continue;
                };
                if stop_after.is_some_and(|n| served >= n) {
                    // Killed mid-run: drop the connection without an answer.
                    drop(request);
                    break;
                }
                let mut body = Vec::new();
                let _ = std::io::Read::read_to_end(request.as_reader(), &mut body);
                if body_limit.is_some_and(|limit| body.len() > limit) {
                    let _ = request.respond(tiny_http::Response::empty(413));
                    continue;
                }
                match serde_json::from_slice::<Value>(&body) {
                    Ok(Value::Array(items)) => events2.lock().unwrap().extend(items),
                    Ok(v) => events2.lock().unwrap().push(v),
                    Err(_) => {
                        let _ = request.respond(tiny_http::Response::empty(400));
                        continue;
                    }
                }
                served += 1;
                let _ = request.respond(tiny_http::Response::empty(201));
            }
            // Dropping the server closes the port: the receiver is gone.
        });
        Receiver {
            port,
            events,
            stop,
            thread: Some(thread),
        }
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops receiving and closes the port.
    pub fn shutdown(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Waits until the receiver has stopped by itself (after `stop_after`).
    pub fn wait_stopped(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shutdown();
    }
}
