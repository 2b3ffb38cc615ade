//! From an event to what the store derives from it, backend-neutral.
//!
//! A dataset version is named by content when the producer sent it
//! (`prov_checksum`'s sha-256, or a `version` facet of `sha256:<hex>`), by the
//! producer's own `version` facet otherwise, and for an output with neither by
//! its producing run (`run:<uuid>`), which is stable. An input with neither is
//! the dataset's latest version at the event's time (as Marquez does).

use provenance_core::facets::SHA256;
use provenance_core::{Event, EventType};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// An event ready to be stored.
#[derive(Debug, PartialEq)]
pub(crate) struct Prepared {
    /// The bytes as received (empty when they come `packed`).
    pub raw: Vec<u8>,
    /// The bytes compressed ahead of the writer: (codec, bytes), see
    /// [`crate::backend::Backend::dictionary`].
    pub packed: Option<(i64, Vec<u8>)>,
    /// sha-256 of the event's JSON value, serialized sorted and compact.
    pub event_id: String,
    /// Hex sha-256 of `raw`, for the chain link.
    pub content: String,
    pub kind: &'static str,
    pub run_id: Option<String>,
    /// Event time, microseconds since the epoch, UTC.
    pub time: i64,
    pub body: Body,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Body {
    Run(Box<RunPart>),
    Dataset(DatasetPart),
    Job { namespace: String, name: String },
}

#[derive(Debug, PartialEq)]
pub(crate) struct RunPart {
    pub namespace: String,
    pub job: String,
    pub run_id: String,
    pub event_type: Option<EventType>,
    pub columns: RunColumns,
    pub inputs: Vec<DatasetPart>,
    pub outputs: Vec<DatasetPart>,
}

/// What a run's row takes from one event's facets. `None` keeps what an
/// earlier event recorded; a value replaces it (later facets win).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct RunColumns {
    pub parent_run_id: Option<String>,
    pub root_run_id: Option<String>,
    pub fingerprint: Option<String>,
    pub container_image: Option<String>,
    pub container_registry: Option<String>,
    pub container_repository: Option<String>,
    pub container_tag: Option<String>,
    pub container_digest: Option<String>,
    pub params_sha256: Option<String>,
    pub exit_code: Option<i64>,
    pub user: Option<String>,
    pub host: Option<String>,
}

#[derive(Debug, PartialEq)]
pub(crate) struct DatasetPart {
    pub namespace: String,
    pub name: String,
    /// The version, when the event names one.
    pub version: Option<String>,
    /// sha-256 hex of the content, when known.
    pub digest: Option<String>,
    pub size: Option<u64>,
}

/// Parses, identifies and normalizes one raw event: well-formed run events
/// by the fast reader, everything else by the full one.
pub(crate) fn prepare(raw: &[u8]) -> Result<Prepared, String> {
    let mut prepared = read(raw)?;
    prepared.raw = raw.to_vec();
    Ok(prepared)
}

/// [`prepare`] without the copy of the bytes (`raw` is empty), for a caller
/// that keeps them compressed instead.
pub(crate) fn read(raw: &[u8]) -> Result<Prepared, String> {
    match crate::reader::prepare_fast(raw) {
        Some(prepared) => Ok(prepared),
        None => prepare_full(raw),
    }
}

/// The most bytes a name a PostgreSQL store looks things up by may take: a
/// namespace and name together, a version, an image's repository and tag
/// together, a run id, a digest (its indexes cannot hold much more than 2,700
/// bytes a row).
pub(crate) const MAX_KEY_BYTES: usize = 2048;

/// Whether every text the tables keep can be kept by a backend with
/// PostgreSQL's limits: no NUL character (its text cannot hold one), and no
/// key longer than [`MAX_KEY_BYTES`]. The error names the field. Checked for
/// such a backend before a batch is written, so that such an event is
/// rejected by itself rather than failing the events written with it.
/// (SQLite keeps any text: its stores, older ones too, can always be copied
/// into another SQLite store, as `verify --chain` does.)
pub(crate) fn storable(p: &Prepared) -> Result<(), String> {
    fn check(what: &str, parts: &[&str]) -> Result<(), String> {
        if parts.iter().any(|p| p.contains('\0')) {
            return Err(format!(
                "{what} holds a NUL character (U+0000), which a PostgreSQL store cannot keep"
            ));
        }
        let bytes: usize = parts.iter().map(|p| p.len()).sum();
        if bytes > MAX_KEY_BYTES {
            return Err(format!(
                "{what} takes {bytes} bytes; a PostgreSQL store keeps at most {MAX_KEY_BYTES}"
            ));
        }
        Ok(())
    }
    fn short(text: &str) -> String {
        let mut end = text.len().min(60);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let cut = if end < text.len() { "..." } else { "" };
        format!("{:?}", format!("{}{cut}", &text[..end]))
    }
    fn dataset(role: &str, d: &DatasetPart) -> Result<(), String> {
        let which = format!("{role} {}:{}", short(&d.namespace), short(&d.name));
        check(
            &format!("the namespace and name of {which}"),
            &[&d.namespace, &d.name],
        )?;
        if let Some(v) = &d.version {
            check(&format!("the version of {which}"), &[v])?;
        }
        if let Some(digest) = &d.digest {
            check(&format!("the digest of {which}"), &[digest])?;
        }
        Ok(())
    }
    if let Some(run_id) = &p.run_id {
        check("the run id", &[run_id])?;
    }
    match &p.body {
        Body::Run(run) => {
            check("the job's namespace and name", &[&run.namespace, &run.job])?;
            let c = &run.columns;
            let one = |what: &str, value: &Option<String>| match value {
                Some(v) => check(what, &[v]),
                None => Ok(()),
            };
            one("the parent run id", &c.parent_run_id)?;
            one("the root run id", &c.root_run_id)?;
            one("the fingerprint", &c.fingerprint)?;
            one("the container image", &c.container_image)?;
            one("the container registry", &c.container_registry)?;
            check(
                "the container's repository and tag",
                &[
                    c.container_repository.as_deref().unwrap_or(""),
                    c.container_tag.as_deref().unwrap_or(""),
                ],
            )?;
            one("the container digest", &c.container_digest)?;
            one("the parameters' sha-256", &c.params_sha256)?;
            one("the user", &c.user)?;
            one("the host", &c.host)?;
            for d in &run.inputs {
                dataset("input", d)?;
            }
            for d in &run.outputs {
                dataset("output", d)?;
            }
        }
        Body::Dataset(d) => dataset("dataset", d)?,
        Body::Job { namespace, name } => check("the job's namespace and name", &[namespace, name])?,
    }
    Ok(())
}

/// The full reader: any event, and the error naming what is wrong. The
/// bytes are not copied (`raw` is empty).
pub(crate) fn prepare_full(raw: &[u8]) -> Result<Prepared, String> {
    let value: Value = serde_json::from_slice(raw).map_err(|e| format!("not JSON: {e}"))?;
    inexact_integer(raw)?;
    // serde_json's maps are sorted, so this text is the same for the same value
    // whatever the member order or spacing of the bytes received.
    let identity = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
    let event_id = provenance_core::hex(&Sha256::digest(&identity));
    let event = Event::from_value(value).map_err(|e| e.to_string())?;
    if let Event::Run(run) = &event
        && let Some(EventType::Unknown(kind)) = &run.event_type
    {
        return Err(format!(
            "read event: `eventType`: {kind:?} is not one of START, RUNNING, COMPLETE, ABORT, FAIL, OTHER"
        ));
    }
    let time = event.event_time().instant().timestamp_micros();
    let (kind, run_id, body) = match event {
        Event::Run(e) => {
            let run_id = e.run.run_id.to_string();
            let part = RunPart {
                namespace: e.job.namespace.clone(),
                job: e.job.name.clone(),
                run_id: run_id.clone(),
                event_type: e.event_type.clone(),
                columns: columns(|name| e.run.facets.raw(name)),
                inputs: e
                    .inputs()
                    .iter()
                    .map(|d| dataset(&d.namespace, &d.name, |f| d.facets.raw(f)))
                    .collect(),
                outputs: e
                    .outputs()
                    .iter()
                    .map(|d| dataset(&d.namespace, &d.name, |f| d.facets.raw(f)))
                    .collect(),
            };
            ("run", Some(run_id), Body::Run(Box::new(part)))
        }
        Event::Dataset(e) => (
            "dataset",
            None,
            Body::Dataset(dataset(&e.dataset.namespace, &e.dataset.name, |f| {
                e.dataset.facets.raw(f)
            })),
        ),
        Event::Job(e) => (
            "job",
            None,
            Body::Job {
                namespace: e.job.namespace,
                name: e.job.name,
            },
        ),
    };
    Ok(Prepared {
        raw: Vec::new(),
        packed: None,
        content: content_hash(raw, &identity, &event_id),
        event_id,
        kind,
        run_id,
        time,
        body,
    })
}

/// Refuses an event holding an integer beyond 64 bits (see
/// [`provenance_core::canonical::first_inexact_integer`]): its value would
/// hold a rounded double, so two events differing only in that integer would
/// share one identity, and the second would be taken for a copy of the first
/// and never stored. (Decimals are doubles by JSON's own reading: two
/// spellings of one double are one value, as two spacings are.)
pub(crate) fn inexact_integer(raw: &[u8]) -> Result<(), String> {
    match provenance_core::canonical::first_inexact_integer(raw) {
        None => Ok(()),
        Some((at, number)) => Err(format!(
            "the integer {number} (at byte {at}) is beyond 64 bits and would be rounded (send it as a string)"
        )),
    }
}

/// The sha-256 hex of the event's bytes as received. Bytes sent in canonical
/// form (as provenance-core writes events) are their identity text, whose
/// hash, `event_id`, is already known.
pub(crate) fn content_hash(raw: &[u8], identity: &[u8], event_id: &str) -> String {
    if identity == raw {
        event_id.to_owned()
    } else {
        provenance_core::hex(&Sha256::digest(raw))
    }
}

/// What the derivation rules need of a JSON value: both readers' trees
/// answer it, so that both derive by the same rules.
pub(crate) trait Node {
    /// The member `key` of an object (the last, if repeated).
    fn member(&self, key: &str) -> Option<&Self>;
    fn text(&self) -> Option<&str>;
    fn int(&self) -> Option<i64>;
    fn unsigned(&self) -> Option<u64>;

    /// The string at `path` of members below this value.
    fn text_at(&self, path: &[&str]) -> Option<&str> {
        let mut v = self;
        for key in path {
            v = v.member(key)?;
        }
        v.text()
    }
}

impl Node for Value {
    fn member(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }
    fn text(&self) -> Option<&str> {
        self.as_str()
    }
    fn int(&self) -> Option<i64> {
        self.as_i64()
    }
    fn unsigned(&self) -> Option<u64> {
        self.as_u64()
    }
}

/// A dataset as the store names it, from its facets (`facet` looks one up
/// by name). `prov_checksum`'s `checksums.sha-256` is the content digest and
/// its `size` the size; else a `version` of `sha256:<hex>` is the digest.
pub(crate) fn dataset<'n, N: Node + 'n>(
    namespace: &str,
    name: &str,
    facet: impl Fn(&str) -> Option<&'n N>,
) -> DatasetPart {
    let checksum = facet("prov_checksum");
    let version = facet("version").and_then(|v| v.text_at(&["datasetVersion"]));
    // A digest is 64 hexadecimal digits, kept in lowercase (as `verify` and
    // the lineage queries compare them); anything else names no content.
    let sha256 = |hex: &str| {
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| hex.to_ascii_lowercase())
    };
    let digest = checksum
        .and_then(|c| c.text_at(&["checksums", SHA256]))
        .and_then(sha256)
        .or_else(|| {
            version
                .and_then(|v| v.strip_prefix("sha256:"))
                .and_then(sha256)
        });
    DatasetPart {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        version: match &digest {
            Some(hex) => Some(format!("sha256:{hex}")),
            None => version.map(str::to_owned),
        },
        size: checksum
            .and_then(|c| c.member("size"))
            .and_then(Node::unsigned),
        digest,
    }
}

/// Reads the columns of a run's row from one event's run facets (`facet`
/// looks one up by name).
pub(crate) fn columns<'n, N: Node + 'n>(facet: impl Fn(&str) -> Option<&'n N>) -> RunColumns {
    let text = |name: &str, path: &[&str]| -> Option<String> {
        facet(name)?.text_at(path).map(str::to_owned)
    };
    let mut container = (
        text("prov_container", &["registry"]),
        text("prov_container", &["repository"]),
        text("prov_container", &["tag"]),
        text("prov_container", &["digest"]),
    );
    // A producer that gave only the image reference (`ubuntu:latest`): its
    // parts as `audit container` looks them up (docker.io, library/ubuntu).
    if container.1.is_none()
        && let Some(image) = text("prov_container", &["image"])
        && let Ok(r) = provenance_core::oci::ImageReference::parse(&image)
    {
        container = (
            Some(r.registry),
            Some(r.repository),
            r.tag,
            container.3.or(r.digest),
        );
    }
    RunColumns {
        parent_run_id: text("parent", &["run", "runId"]).map(|s| s.to_ascii_lowercase()),
        root_run_id: text("parent", &["root", "run", "runId"]).map(|s| s.to_ascii_lowercase()),
        fingerprint: text("prov_fingerprint", &["sha256"]),
        container_image: text("prov_container", &["image"]),
        container_registry: container.0,
        container_repository: container.1,
        container_tag: container.2,
        container_digest: container.3,
        params_sha256: text("prov_parameters", &["sha256"]),
        exit_code: facet("prov_execution")
            .and_then(|e| e.member("exitCode"))
            .and_then(Node::int),
        user: text("prov_execution", &["user"]),
        host: text("prov_execution", &["host"]),
    }
}

/// Now, in microseconds since the epoch (when an event was received).
pub(crate) fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// The run state an event type moves a run to.
pub(crate) fn state_of(t: &Option<EventType>) -> Option<&'static str> {
    match t {
        Some(EventType::Start) => Some("START"),
        Some(EventType::Running) => Some("RUNNING"),
        Some(EventType::Complete) => Some("COMPLETE"),
        Some(EventType::Abort) => Some("ABORT"),
        Some(EventType::Fail) => Some("FAIL"),
        // OTHER and unknown types add metadata without moving the state.
        _ => None,
    }
}

/// A run's facets merged over its events' raw bytes, in chain order: a later
/// event's facet replaces an earlier one of the same name.
pub(crate) fn merge_run_facets<'a>(
    raws: impl IntoIterator<Item = &'a [u8]>,
) -> serde_json::Map<String, Value> {
    merge_run(raws).0
}

/// [`merge_run_facets`], and the state those events leave the run in (the
/// latest state transition; terminal ones stick), as ingest derives it.
pub(crate) fn merge_run<'a>(
    raws: impl IntoIterator<Item = &'a [u8]>,
) -> (serde_json::Map<String, Value>, Option<&'static str>) {
    let mut merged = serde_json::Map::new();
    let mut state: Option<&'static str> = None;
    for raw in raws {
        let value: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
        if let Some(facets) = value.pointer("/run/facets").and_then(Value::as_object) {
            for (k, v) in facets {
                merged.insert(k.clone(), v.clone());
            }
        }
        let kind = value["eventType"]
            .as_str()
            .and_then(|t| serde_json::from_value::<EventType>(Value::String(t.into())).ok());
        let terminal = matches!(state, Some("COMPLETE" | "FAIL" | "ABORT"));
        if let Some(next) = state_of(&kind)
            && !terminal
        {
            state = Some(next);
        }
    }
    (merged, state)
}
