//! The HTTP API of `prov serve`: OpenLineage ingest (single and batch, gzip),
//! Marquez-shaped lineage, audits, raw events, health and metrics, behind
//! bearer tokens with roles. HTTP types stay here; the store knows none.
//!
//! Writes go through one writer thread that commits whatever has arrived
//! together in one transaction (group commit), so many clients share each
//! fsync, and a request is answered only after its events are committed:
//! nothing acknowledged is lost, even on a crash.

// Handlers answer errors as ready `Response`s; boxing them would only add noise.
#![allow(clippy::result_large_err)]

mod auth;
mod writer;

pub use auth::{
    LiveTokens, Role, create as auth_create, hash_of, list as auth_list, revoke as auth_revoke,
};

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use provenance_store::{Direction, LineageQuery, Outcome, Page, RunFilter, Store, Target};
use serde::Deserialize;
use serde_json::{Value, json};

/// Settings of the server.
pub struct Settings {
    /// Largest request body accepted, compressed or not (bytes).
    pub body_limit: usize,
    /// Largest body after gzip decompression (bytes).
    pub decompressed_limit: usize,
    /// Most events in one batch.
    pub batch_limit: usize,
    /// Time a client has to send a request's body.
    pub read_timeout: Duration,
    /// MiB of event text (inflated) that requests may hold at once.
    pub memory_budget_mib: usize,
    /// Tokens; `None` serves without authentication.
    pub tokens: Option<Arc<LiveTokens>>,
}

/// What the handlers share.
pub struct AppState {
    settings: Settings,
    /// MiB of event text that requests may hold at once (see `room_for`).
    room: Arc<tokio::sync::Semaphore>,
    writer: writer::Writer,
    reader: std::sync::Mutex<Store>,
    /// When the query holding `reader` took it (ms since the server began;
    /// 0 while none holds it), for /readyz.
    reader_since: AtomicU64,
    /// When the server began.
    began: Instant,
    metrics: Metrics,
}

#[derive(Default)]
struct Metrics {
    ingested: AtomicU64,
    rejected: AtomicU64,
    requests: AtomicU64,
    latency_micros: AtomicU64,
    unauthorized: AtomicU64,
}

/// Builds the app over a store for writes and a second connection for reads.
pub fn app(write_store: Store, read_store: Store, settings: Settings) -> (Router, writer::Handle) {
    let (writer, handle) = writer::start(write_store);
    let body_limit = settings.body_limit;
    let state = Arc::new(AppState {
        room: Arc::new(tokio::sync::Semaphore::new(
            settings
                .memory_budget_mib
                .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
        )),
        settings,
        writer,
        reader: std::sync::Mutex::new(read_store),
        reader_since: AtomicU64::new(0),
        began: Instant::now(),
        metrics: Metrics::default(),
    });
    let router = Router::new()
        .route("/api/v1/lineage", post(ingest_one).get(lineage))
        .route("/api/v1/lineage/batch", post(ingest_batch))
        .route("/api/v1/runlineage/upstream", get(run_lineage))
        .route("/api/v1/events/lineage", get(events))
        .route("/api/v1/audit/container", get(audit_container))
        .route("/api/v1/audit/derived", get(audit_derived))
        .route("/api/v1/audit/runs", get(audit_runs))
        .route("/api/v1/audit/unpinned", get(audit_unpinned))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.yaml", get(openapi))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            guard,
        ))
        .with_state(state);
    (router, handle)
}

/// An error answer: a status and a JSON body naming what is wrong.
fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

/// Authentication (before any body is read) and metrics, around every route.
async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let open = matches!(
        path.as_str(),
        "/healthz" | "/readyz" | "/metrics" | "/openapi.yaml"
    );
    if let (Some(tokens), false) = (&state.settings.tokens, open) {
        let needed = if request.method() == axum::http::Method::POST {
            Role::Write
        } else {
            Role::Read
        };
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                // The scheme is case-insensitive (RFC 9110).
                let (scheme, token) = v.trim_start().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(token)
            });
        match presented.and_then(|t| tokens.role_of(t.trim())) {
            None => {
                state.metrics.unauthorized.fetch_add(1, Ordering::Relaxed);
                let mut refused =
                    problem(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
                // RFC 9110: a 401 says which scheme would be accepted.
                refused.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer realm=\"prov\""),
                );
                return refused;
            }
            Some(role) if !role.allows(needed) => {
                state.metrics.unauthorized.fetch_add(1, Ordering::Relaxed);
                return problem(StatusCode::FORBIDDEN, "this token may only read");
            }
            Some(_) => {}
        }
    }
    // A body announced as too large is refused before a byte of it is read.
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > state.settings.body_limit) {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than {} bytes",
                state.settings.body_limit
            ),
        );
    }
    // The body, read within the size limit and the time allowed. An ingest
    // request takes its share of the memory budget when the first bytes of
    // its body arrive, and holds it until answered: bodies waiting their
    // turn stay in the kernel's buffers, not in memory, and a connection
    // that sends headers and then nothing holds no budget.
    let method = request.method().clone();
    let (parts, body) = request.into_parts();
    let budgeted = method == axum::http::Method::POST;
    let size = announced.unwrap_or(state.settings.body_limit);
    let (bytes, _room) = match receive(&state, &parts.headers, body, budgeted, size).await {
        Ok(received) => received,
        Err(refused) => return refused,
    };
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    let started = Instant::now();
    let response = as_json_error(next.run(request).await, &method, &path).await;
    state.metrics.requests.fetch_add(1, Ordering::Relaxed);
    state
        .metrics
        .latency_micros
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    response
}

/// Reads a request body within the size limit and `--read-timeout` (for its
/// first bytes, then again for the rest). When `budgeted`, the share of the
/// memory budget for a body of `size` bytes is taken once its first bytes
/// are here, waiting as long as it takes (outside the timeout): whole
/// requests wait their turn, none holds part of the budget while it waits
/// for the rest, and nothing is refused for being busy.
async fn receive(
    state: &AppState,
    headers: &HeaderMap,
    mut body: axum::body::Body,
    budgeted: bool,
    size: usize,
) -> Result<(Bytes, Option<tokio::sync::OwnedSemaphorePermit>), Response> {
    use http_body_util::BodyExt;
    let limit = state.settings.body_limit;
    let timeout = state.settings.read_timeout;
    let slow = || {
        problem(
            StatusCode::REQUEST_TIMEOUT,
            format!("the body did not arrive within {} s", timeout.as_secs()),
        )
    };
    let unreadable = |e: axum::Error| {
        problem(
            StatusCode::BAD_REQUEST,
            format!("the body could not be read: {e}"),
        )
    };
    let mut bytes = Vec::new();
    let mut add = |frame: hyper::body::Frame<Bytes>| -> Result<(), Response> {
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(problem(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is larger than {limit} bytes"),
                ));
            }
            bytes.extend_from_slice(&data);
        }
        Ok(())
    };
    let first = tokio::time::timeout(timeout, body.frame())
        .await
        .map_err(|_| slow())?;
    let Some(first) = first else {
        return Ok((Bytes::new(), None));
    };
    let room = match budgeted {
        true => Some(state.room_for(headers, size).await),
        false => None,
    };
    add(first.map_err(unreadable)?)?;
    let rest = async {
        while let Some(frame) = body.frame().await {
            add(frame.map_err(unreadable)?)?;
        }
        Ok::<(), Response>(())
    };
    tokio::time::timeout(timeout, rest)
        .await
        .map_err(|_| slow())??;
    Ok((Bytes::from(bytes), room))
}

impl AppState {
    /// Waits until the event text of a body of `len` bytes fits in the
    /// memory budget, and holds its share until dropped. A gzip body is
    /// counted at what it may inflate to (within the limit): parsing and
    /// storing a batch takes several times its text, so without a budget a
    /// few large batches at once could exhaust the machine. A body larger
    /// than the whole budget waits for all of it.
    async fn room_for(&self, headers: &HeaderMap, len: usize) -> tokio::sync::OwnedSemaphorePermit {
        let gzip = headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
        let text = if gzip {
            // Deflate inflates at most about 1032 to 1.
            len.saturating_mul(1032)
                .min(self.settings.decompressed_limit)
        } else {
            len
        };
        let mib = text
            .div_ceil(1 << 20)
            .clamp(1, self.settings.memory_budget_mib.max(1));
        Arc::clone(&self.room)
            .acquire_many_owned(u32::try_from(mib).unwrap_or(u32::MAX))
            .await
            .expect("the budget is never closed")
    }
}

/// An error answered without a JSON body (axum's own: no such route, a
/// method not allowed, a query string that does not parse) gets one, so that
/// every error a client sees is `{"error": ...}`.
async fn as_json_error(response: Response, method: &axum::http::Method, path: &str) -> Response {
    let status = response.status();
    let allow = response.headers().get(header::ALLOW).cloned();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = match http_body_util::Limited::new(response.into_body(), 64 << 10)
        .collect()
        .await
    {
        Ok(body) => String::from_utf8_lossy(&body.to_bytes()).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = match status {
        StatusCode::NOT_FOUND if text.is_empty() => format!("no such endpoint: {path}"),
        StatusCode::METHOD_NOT_ALLOWED => format!("{method} is not allowed on {path}"),
        _ if text.is_empty() => status.canonical_reason().unwrap_or("error").to_owned(),
        _ => text,
    };
    let mut answer = problem(status, message);
    if let Some(allow) = allow {
        answer.headers_mut().insert(header::ALLOW, allow);
    }
    answer
}

/// The request body as JSON bytes: checks the content type, inflates gzip
/// within the limit, and leaves out a byte order mark (RFC 8259 lets a
/// reader ignore one; `prov ingest` does too).
fn json_body(state: &AppState, headers: &HeaderMap, body: Bytes) -> Result<Vec<u8>, Response> {
    let mut json = body_bytes(state, headers, body)?;
    if json.starts_with(b"\xEF\xBB\xBF") {
        json.drain(..3);
    }
    Ok(json)
}

fn body_bytes(state: &AppState, headers: &HeaderMap, body: Bytes) -> Result<Vec<u8>, Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "application/json" && !mime.ends_with("+json") {
        return Err(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expected Content-Type application/json, found {content_type:?}"),
        ));
    }
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity");
    match encoding.trim().to_ascii_lowercase().as_str() {
        "identity" | "" => Ok(body.to_vec()),
        "gzip" => {
            let limit = state.settings.decompressed_limit;
            let mut out = Vec::new();
            let mut decoder = flate2::read::MultiGzDecoder::new(&body[..]).take(limit as u64 + 1);
            decoder.read_to_end(&mut out).map_err(|e| {
                problem(
                    StatusCode::BAD_REQUEST,
                    format!("the gzip body cannot be inflated: {e}"),
                )
            })?;
            if out.len() > limit {
                return Err(problem(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body inflates to more than {limit} bytes"),
                ));
            }
            Ok(out)
        }
        other => Err(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding {other:?} is not supported; use gzip or none"),
        )),
    }
}

async fn ingest_one(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = match json_body(&state, &headers, body) {
        Ok(raw) => raw,
        Err(r) => return r,
    };
    match state.writer.submit(vec![raw]).await {
        Ok(mut outcomes) => match outcomes.remove(0) {
            Outcome::Stored { .. } | Outcome::Duplicate { .. } => {
                state.metrics.ingested.fetch_add(1, Ordering::Relaxed);
                StatusCode::CREATED.into_response()
            }
            Outcome::Rejected { reason } => {
                state.metrics.rejected.fetch_add(1, Ordering::Relaxed);
                problem(StatusCode::BAD_REQUEST, reason)
            }
        },
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn ingest_batch(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = match json_body(&state, &headers, body) {
        Ok(raw) => raw,
        Err(r) => return r,
    };
    let limit = state.settings.batch_limit;
    let over = std::cell::Cell::new(false);
    let mut reader = serde_json::Deserializer::from_slice(&raw);
    let items =
        match serde::Deserializer::deserialize_seq(&mut reader, Items { limit, over: &over })
            .and_then(|items| reader.end().map(|()| items))
        {
            Ok(items) => items,
            Err(_) if over.get() => {
                return problem(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the batch holds more than {limit} events; send it in smaller batches"),
                );
            }
            Err(e) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    format!("expected a JSON array of events: {e}"),
                );
            }
        };
    let received = items.len();
    let raws: Vec<Vec<u8>> = items.iter().map(|i| i.get().as_bytes().to_vec()).collect();
    drop(items);
    let outcomes = match state.writer.submit(raws).await {
        Ok(o) => o,
        Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    let rejected = outcomes.iter().enumerate().filter_map(|(i, o)| match o {
        Outcome::Rejected { reason } => Some((i, reason)),
        _ => None,
    });
    let failed = rejected.clone().count();
    // The first failures by index, each with its reason; a batch of junk
    // does not get a reply larger than itself.
    let listed: Vec<Value> = rejected
        .take(LISTED_FAILURES)
        .map(|(i, reason)| json!({"index": i, "reason": reason, "retriable": false}))
        .collect();
    state
        .metrics
        .ingested
        .fetch_add((received - failed) as u64, Ordering::Relaxed);
    state
        .metrics
        .rejected
        .fetch_add(failed as u64, Ordering::Relaxed);
    let status = if failed == 0 {
        "success"
    } else {
        "partial_success"
    };
    let code = if failed == received && received > 0 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let successful = received - failed;
    (
        code,
        axum::Json(json!({
            "status": status,
            // The spec's summary; the counts are repeated at the top level,
            // where earlier versions of this server gave them.
            "summary": {
                "received": received,
                "successful": successful,
                "failed": failed,
                "retriable": 0,
                "non_retriable": failed,
            },
            "received": received,
            "successful": successful,
            "failed": failed,
            "failed_events": listed,
            "failed_events_truncated": failed > LISTED_FAILURES,
        })),
    )
        .into_response()
}

/// How many failures a batch reply lists (it counts them all).
const LISTED_FAILURES: usize = 1000;

/// Reads a batch's array as borrowed raw items, stopping with an error (and
/// `over` set) at more than `limit`, before holding them all.
struct Items<'a> {
    limit: usize,
    over: &'a std::cell::Cell<bool>,
}

impl<'de> serde::de::Visitor<'de> for Items<'_> {
    type Value = Vec<&'de serde_json::value::RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array of events")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            if items.len() == self.limit {
                self.over.set(true);
                return Err(serde::de::Error::custom("too many events"));
            }
            items.push(item);
        }
        Ok(items)
    }
}

/// Runs a store read on a blocking thread.
async fn read<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&Store) -> Result<T, provenance_store::StoreError> + Send + 'static,
) -> Result<T, Response> {
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let store = state.reader.lock().unwrap_or_else(|e| e.into_inner());
        let since = state.began.elapsed().as_millis() as u64;
        state.reader_since.store(since.max(1), Ordering::Relaxed);
        let result = f(&store);
        state.reader_since.store(0, Ordering::Relaxed);
        result
    })
    .await
    .map_err(|e| problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| match e {
        provenance_store::StoreError::NotFound { what } => {
            problem(StatusCode::NOT_FOUND, format!("{what} is not in the store"))
        }
        bad @ provenance_store::StoreError::BadQuery { .. } => {
            problem(StatusCode::BAD_REQUEST, bad.to_string())
        }
        other => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{:#}", anyhow::Error::new(other)),
        ),
    })
}

#[derive(Deserialize)]
struct LineageParams {
    #[serde(rename = "nodeId")]
    node_id: String,
    depth: Option<u32>,
    direction: Option<String>,
    #[serde(rename = "asOf")]
    as_of: Option<String>,
    /// `job` (Marquez's graph of jobs and datasets, the default) or
    /// `version` (runs and dataset versions).
    level: Option<String>,
}

async fn lineage(State(state): State<Arc<AppState>>, Query(p): Query<LineageParams>) -> Response {
    let target = match Target::parse(&p.node_id) {
        Ok(t) => t,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("nodeId: {e}")),
    };
    let direction = match p.direction.as_deref() {
        None | Some("upstream") => Direction::Upstream,
        Some("downstream") => Direction::Downstream,
        Some("both") => Direction::Both,
        Some(other) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("direction: {other:?} is not upstream, downstream or both"),
            );
        }
    };
    let as_of = match p.as_of.as_deref().map(crate::cmd::parse_time).transpose() {
        Ok(t) => t,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("asOf: {e}")),
    };
    let by_job = match p.level.as_deref() {
        None | Some("job") => true,
        Some("version") => false,
        Some(other) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("level: {other:?} is not job or version"),
            );
        }
    };
    let query = LineageQuery {
        target,
        direction,
        depth: p.depth.unwrap_or(20).min(1000),
        as_of,
    };
    let graph = match read(&state, move |s| s.lineage(&query)).await {
        Ok(graph) => graph,
        Err(r) => return r,
    };
    // Folding and writing a large graph is CPU work: done on the blocking
    // pool, so that health checks and ingest are not kept waiting.
    let text = tokio::task::spawn_blocking(move || match by_job {
        true => serde_json::to_vec(&graph.marquez()),
        false => serde_json::to_vec(&graph),
    })
    .await;
    match text {
        Ok(Ok(bytes)) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Ok(Err(e)) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize)]
struct RunParams {
    #[serde(rename = "runId")]
    run_id: String,
    depth: Option<u32>,
}

async fn run_lineage(State(state): State<Arc<AppState>>, Query(p): Query<RunParams>) -> Response {
    let target = match Target::parse(&format!("run:{}", p.run_id)) {
        Ok(t) => t,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("runId: {e}")),
    };
    let query = LineageQuery {
        target,
        direction: Direction::Upstream,
        depth: p.depth.unwrap_or(20).min(1000),
        as_of: None,
    };
    match read(&state, move |s| s.lineage(&query)).await {
        Ok(graph) => axum::Json(graph).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize, Default)]
struct PageParams {
    limit: Option<u64>,
    offset: Option<u64>,
}

impl PageParams {
    /// The page asked for; `limit` is 1 to 10,000 (100 by default), as the
    /// command line's `--limit` is, or the answer is 400.
    fn page(&self) -> Result<Page, Response> {
        let limit = self.limit.unwrap_or(100);
        if !(1..=10_000).contains(&limit) {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                format!("limit: {limit} is not between 1 and 10000"),
            ));
        }
        Ok(Page {
            offset: self.offset.unwrap_or(0),
            limit,
        })
    }
}

/// A page of raw events holds at most this many bytes (and at least one
/// event): the client goes on from its offset plus the events it got.
const PAGE_BYTES: usize = 16 << 20;

/// Events read from the store at a time while filling a page.
const PAGE_SLICE: u64 = 25;

async fn events(State(state): State<Arc<AppState>>, Query(p): Query<PageParams>) -> Response {
    let page = match p.page() {
        Ok(page) => page,
        Err(r) => return r,
    };
    // Read in slices, stopping once the page holds PAGE_BYTES of events: a
    // page of large events must not take the server's memory.
    let paged = read(&state, move |s| {
        let mut all = s.events(Page {
            offset: page.offset,
            limit: page.limit.min(PAGE_SLICE),
        })?;
        let mut bytes: usize = all.items.iter().map(|(_, raw)| raw.len()).sum();
        while (all.items.len() as u64) < page.limit && bytes < PAGE_BYTES {
            let Some(&(last, _)) = all.items.last() else {
                break;
            };
            let left = page.limit - all.items.len() as u64;
            let next = s.events_after(last, left.min(PAGE_SLICE))?;
            if next.is_empty() {
                break;
            }
            bytes += next.iter().map(|(_, raw)| raw.len()).sum::<usize>();
            all.items.extend(next);
        }
        // At least one event, however large; then no more than fit.
        let mut total = 0;
        let fit = all
            .items
            .iter()
            .position(|(_, raw)| {
                total += raw.len();
                total > PAGE_BYTES
            })
            .map_or(all.items.len(), |at| at.max(1));
        all.items.truncate(fit);
        all.limit = page.limit;
        Ok(all)
    })
    .await;
    match paged {
        Ok(paged) => {
            // Each event as the bytes received (its spacing, number
            // spellings and all), not as its value would write it again.
            use serde_json::value::RawValue;
            // Stored events are JSON; were one not, it would read as null.
            let as_json = |raw: Vec<u8>| {
                let text = String::from_utf8(raw).ok()?;
                RawValue::from_string(text.trim().to_owned()).ok()
            };
            let events: Vec<Box<RawValue>> = paged
                .items
                .into_iter()
                .map(|(_, raw)| {
                    as_json(raw).unwrap_or_else(|| {
                        RawValue::from_string("null".into()).expect("null is JSON")
                    })
                })
                .collect();
            // Serialized as is: through a `Value` the raw text would be
            // parsed again.
            #[derive(serde::Serialize)]
            struct Events {
                events: Vec<Box<RawValue>>,
                #[serde(rename = "totalCount")]
                total_count: u64,
                offset: u64,
                limit: u64,
            }
            axum::Json(Events {
                events,
                total_count: paged.total,
                offset: paged.offset,
                limit: paged.limit,
            })
            .into_response()
        }
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct ContainerParams {
    image: String,
    limit: Option<u64>,
    offset: Option<u64>,
}

async fn audit_container(
    State(state): State<Arc<AppState>>,
    Query(p): Query<ContainerParams>,
) -> Response {
    let page = match (PageParams {
        limit: p.limit,
        offset: p.offset,
    })
    .page()
    {
        Ok(page) => page,
        Err(r) => return r,
    };
    match read(&state, move |s| s.audit_container(&p.image, page)).await {
        Ok(a) => axum::Json(a).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct DerivedParams {
    target: String,
}

async fn audit_derived(
    State(state): State<Arc<AppState>>,
    Query(p): Query<DerivedParams>,
) -> Response {
    let target = match Target::parse(&p.target) {
        Ok(t) => t,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("target: {e}")),
    };
    match read(&state, move |s| s.derived_from(&target, None)).await {
        Ok(d) => axum::Json(d).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct RunsParams {
    job: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    user: Option<String>,
    host: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
}

async fn audit_runs(State(state): State<Arc<AppState>>, Query(p): Query<RunsParams>) -> Response {
    let time = |name: &str, t: &Option<String>| -> Result<Option<i64>, Response> {
        t.as_deref()
            .map(crate::cmd::parse_time)
            .transpose()
            .map_err(|e| problem(StatusCode::BAD_REQUEST, format!("{name}: {e}")))
    };
    let (since, until) = match (time("since", &p.since), time("until", &p.until)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let run_state = p.status.map(|s| s.to_ascii_uppercase());
    if let Some(s) = run_state
        .as_deref()
        .filter(|s| !crate::cmd::audit::RUN_STATES.contains(s))
    {
        return problem(
            StatusCode::BAD_REQUEST,
            format!(
                "status: {s:?} is not one of {}",
                crate::cmd::audit::RUN_STATES.join(", ")
            ),
        );
    }
    let filter = RunFilter {
        job: p.job,
        state: run_state,
        since,
        until,
        user: p.user,
        host: p.host,
        ..RunFilter::default()
    };
    let page = match (PageParams {
        limit: p.limit,
        offset: p.offset,
    })
    .page()
    {
        Ok(page) => page,
        Err(r) => return r,
    };
    match read(&state, move |s| s.runs(&filter, page)).await {
        Ok(r) => axum::Json(r).into_response(),
        Err(r) => r,
    }
}

async fn audit_unpinned(
    State(state): State<Arc<AppState>>,
    Query(p): Query<PageParams>,
) -> Response {
    let page = match p.page() {
        Ok(page) => page,
        Err(r) => return r,
    };
    let filter = RunFilter {
        unpinned: true,
        ..RunFilter::default()
    };
    match read(&state, move |s| s.runs(&filter, page)).await {
        Ok(r) => axum::Json(r).into_response(),
        Err(r) => r,
    }
}

/// How long a query may hold the store before /readyz calls it not ready.
const READY_PATIENCE: Duration = Duration::from_secs(10);

/// While a query holds the reader (taken at `since` ms; 0 in the instants
/// while it takes or gives it back): whether that still counts as the store
/// answering, or how long it has held it.
fn busy_but_ready(since: u64, now: u64) -> Result<(), Duration> {
    let held = Duration::from_millis(now.saturating_sub(since));
    match since == 0 || held < READY_PATIENCE {
        true => Ok(()),
        false => Err(held),
    }
}

#[cfg(test)]
#[test]
fn a_query_held_past_its_patience_makes_the_server_not_ready() {
    assert_eq!(busy_but_ready(5_000, 6_000), Ok(()));
    assert_eq!(
        busy_but_ready(5_000, 16_000),
        Err(Duration::from_millis(11_000))
    );
    assert_eq!(
        busy_but_ready(0, 100_000),
        Ok(()),
        "taking or giving it back"
    );
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    // A query holds the reader: a probe that waited behind a long query
    // would report a busy server as down, so a query under way for less
    // than READY_PATIENCE counts as the store answering; one held longer
    // (a store that hangs) does not.
    if let Err(std::sync::TryLockError::WouldBlock) = state.reader.try_lock() {
        let since = state.reader_since.load(Ordering::Relaxed);
        let now = state.began.elapsed().as_millis() as u64;
        return match busy_but_ready(since, now) {
            Ok(()) => "ready\n".into_response(),
            Err(held) => problem(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("a query has waited on the store for {} s", held.as_secs()),
            ),
        };
    }
    match read(&state, |s| s.head()).await {
        Ok(_) => "ready\n".into_response(),
        Err(_) => problem(StatusCode::SERVICE_UNAVAILABLE, "the store cannot be read"),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let m = &state.metrics;
    let text = format!(
        "# HELP prov_events_ingested_total Events stored (or found already stored).\n\
         # TYPE prov_events_ingested_total counter\nprov_events_ingested_total {}\n\
         # HELP prov_events_rejected_total Events refused as malformed.\n\
         # TYPE prov_events_rejected_total counter\nprov_events_rejected_total {}\n\
         # HELP prov_requests_unauthorized_total Requests refused for their token.\n\
         # TYPE prov_requests_unauthorized_total counter\nprov_requests_unauthorized_total {}\n\
         # HELP prov_request_duration_seconds Time spent answering authorized requests.\n\
         # TYPE prov_request_duration_seconds summary\nprov_request_duration_seconds_sum {}\nprov_request_duration_seconds_count {}\n",
        m.ingested.load(Ordering::Relaxed),
        m.rejected.load(Ordering::Relaxed),
        m.unauthorized.load(Ordering::Relaxed),
        m.latency_micros.load(Ordering::Relaxed) as f64 / 1e6,
        m.requests.load(Ordering::Relaxed),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/yaml")],
        include_str!("../../openapi.yaml"),
    )
        .into_response()
}
