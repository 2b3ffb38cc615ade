//! Facets: the extensible metadata attached to runs, jobs and datasets.
//!
//! A [`Facets`] map keeps every facet exactly as the producer sent it, as JSON, so
//! that facets this crate has never heard of survive a round trip untouched (the
//! spec requires consumers to keep them). Typed access is a view on top of that:
//! [`Facets::get`] parses one facet into its Rust type on demand and
//! [`Facets::set`] writes one back. The kind parameter (`Facets<RunKind>`, ...)
//! lets the compiler refuse a dataset facet on a run.

mod prov;
mod standard;

pub use prov::*;
pub use standard::*;

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::json::Object;

/// The producer URI written into events and facets made by this crate.
pub const PRODUCER: &str = producer!();

/// [`PRODUCER`] as a literal, for `concat!`.
macro_rules! producer {
    () => {
        concat!(
            "https://github.com/genomics-provenance/provenance/tree/v",
            env!("CARGO_PKG_VERSION"),
            "/provenance-core"
        )
    };
}
use producer;

/// Declares a facet type's `Facet` impl: its key, schema URL and kind, and,
/// for a facet that writes its own text with `$write`, the opening of that
/// text when it carries this crate's producer and its own schema URL.
macro_rules! impl_facet {
    ($ty:ident, $key:literal, $kind:ty, $url:expr) => {
        impl Facet for $ty {
            const KEY: &'static str = $key;
            const SCHEMA_URL: &'static str = $url;
            type Kind = $kind;
        }
    };
    ($ty:ident, $key:literal, $kind:ty, $url:expr, $write:ident) => {
        impl Facet for $ty {
            const KEY: &'static str = $key;
            const SCHEMA_URL: &'static str = $url;
            type Kind = $kind;
            fn write_json(&self, out: &mut Vec<u8>) {
                self.$write(out);
            }
        }
        impl super::WritesItself for $ty {
            const OPENING: &'static str = concat!(
                "{\"_producer\":\"",
                super::producer!(),
                "\",\"_schemaURL\":\"",
                $url,
                "\""
            );
        }
    };
}
use impl_facet;

/// A facet type of this crate that writes its own text (see
/// [`open_facet`]).
trait WritesItself: Facet {
    /// `{"_producer":"<PRODUCER>","_schemaURL":"<SCHEMA_URL>"`, the text
    /// that opens most facets of the type, copied whole.
    const OPENING: &'static str;
}

/// A string of a facet that is often a constant (`"posix"`, `"sha-256"`):
/// borrowed then, so that making the facet allocates nothing for it, and
/// owned otherwise (always when read from an event).
pub type Text = Cow<'static, str>;

/// Where a facet may be attached. Implemented by the marker types below.
pub trait FacetKind: private::Sealed {
    /// The JSON member that holds facets of this kind (for messages).
    const MEMBER: &'static str;
}

/// Marker: facets of a run (`run.facets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {}
/// Marker: facets of a job (`job.facets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {}
/// Marker: facets of a dataset (`facets` of any dataset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetKind {}
/// Marker: facets of an input dataset (`inputFacets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {}
/// Marker: facets of an output dataset (`outputFacets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {}

impl FacetKind for RunKind {
    const MEMBER: &'static str = "run.facets";
}
impl FacetKind for JobKind {
    const MEMBER: &'static str = "job.facets";
}
impl FacetKind for DatasetKind {
    const MEMBER: &'static str = "facets";
}
impl FacetKind for InputKind {
    const MEMBER: &'static str = "inputFacets";
}
impl FacetKind for OutputKind {
    const MEMBER: &'static str = "outputFacets";
}

mod private {
    pub trait Sealed {}
    impl Sealed for super::RunKind {}
    impl Sealed for super::JobKind {}
    impl Sealed for super::DatasetKind {}
    impl Sealed for super::InputKind {}
    impl Sealed for super::OutputKind {}
}

/// A facet type: its key in the facets map, its schema, and where it may go.
pub trait Facet: Serialize + DeserializeOwned {
    /// The key in the facets map, e.g. `parent` or `prov_checksum`.
    const KEY: &'static str;
    /// The immutable `_schemaURL` of the schema version this type writes.
    const SCHEMA_URL: &'static str;
    /// Whether this is a run, job, dataset, input or output facet.
    type Kind: FacetKind;

    /// Appends the facet's canonical text: its JSON value as serde_json
    /// writes it, compact, with the members of every object sorted (so that
    /// an event's text is its canonical text, see [`crate::Event::write_json`]).
    /// The default goes through the value. The facets this crate emits on
    /// every step write themselves member by member, several times faster; a
    /// test holds each to the value's bytes.
    fn write_json(&self, out: &mut Vec<u8>) {
        canonical_text(out, self);
    }
}

/// Opens the object of `facet`, which writes its own text, and writes its
/// base members (its other members all sort after these). A facet holding
/// members this crate does not model is written whole through its value
/// instead, where they fall into place, and there is nothing more to write.
fn open_facet<'a, F: WritesItself>(
    out: &'a mut Vec<u8>,
    facet: &F,
    base: &FacetBase,
    extra: &Map<String, Value>,
) -> Option<Object<'a>> {
    if !extra.is_empty() {
        canonical_text(out, facet);
        return None;
    }
    // The opening is copied as it is: the compiler checks that the strings in
    // it need no escape.
    const { assert!(crate::json::plain(PRODUCER) && crate::json::plain(F::SCHEMA_URL)) };
    // The same constant, usually at the same address (the linker merges
    // copies): then no need to compare the bytes.
    let same = |a: &str, b: &str| std::ptr::eq(a, b) || a == b;
    if base.deleted.is_none()
        && same(&base.producer, PRODUCER)
        && same(&base.schema_url, F::SCHEMA_URL)
    {
        out.extend_from_slice(F::OPENING.as_bytes());
        return Some(Object::resume(out));
    }
    let mut o = Object::open(out);
    if let Some(deleted) = base.deleted {
        o.bool("_deleted", deleted);
    }
    o.str("_producer", &base.producer);
    o.str("_schemaURL", &base.schema_url);
    Some(o)
}

/// The members every facet carries (`_producer`, `_schemaURL`, and `_deleted`
/// on job and dataset facets).
///
/// Reading is lenient: a facet without `_producer` or `_schemaURL` still parses
/// (with empty strings), and [`crate::validate`] reports the omission. Facets
/// made by this crate borrow both from constants, so making one allocates
/// nothing for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacetBase {
    /// URI of the software that produced the facet.
    #[serde(rename = "_producer", default)]
    pub producer: Cow<'static, str>,
    /// URL of the schema version the facet follows.
    #[serde(rename = "_schemaURL", default)]
    pub schema_url: Cow<'static, str>,
    /// `true` asks a consumer to delete this facet (job and dataset facets only).
    #[serde(rename = "_deleted", default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
}

impl FacetBase {
    /// The base of a facet of type `F` produced by this crate.
    pub fn ours<F: Facet>() -> Self {
        FacetBase {
            producer: Cow::Borrowed(PRODUCER),
            schema_url: Cow::Borrowed(F::SCHEMA_URL),
            deleted: None,
        }
    }
}

/// A facet that is present but does not match its Rust type.
#[derive(Debug, thiserror::Error)]
#[error("read facet `{key}` in {member}")]
pub struct FacetError {
    /// The facet's key.
    pub key: &'static str,
    /// Where the facet sits (`run.facets`, `job.facets`, ...).
    pub member: &'static str,
    /// What did not match, with the path inside the facet.
    #[source]
    pub source: serde_path_to_error::Error<serde_json::Error>,
}

/// The facets of a run, job or dataset, kept as the JSON the producer sent.
///
/// A facet read from an event is kept as its parsed JSON value. A facet stored
/// from its Rust type with [`Facets::set`] is kept as the compact JSON text it
/// serializes to, written once: [`crate::Event::write_json`] copies that text,
/// and [`Facets::raw`] parses it only when asked (as does serializing through
/// serde, which sees JSON values). Entries are kept sorted by key, so an event
/// serializes its facets in key order, as it always did.
///
/// `Facets` also remembers whether the `facets` member was present at all, so
/// that an event without one serializes without one.
pub struct Facets<K> {
    entries: Vec<(Cow<'static, str>, Entry)>,
    present: bool,
    kind: PhantomData<K>,
}

/// One facet: the JSON text it was stored as, its value, or both.
#[derive(Clone)]
struct Entry {
    /// Compact JSON text (UTF-8), for a facet stored from its Rust type.
    text: Option<Box<[u8]>>,
    /// The value; for a facet kept as text, parsed from it on first use.
    value: OnceLock<Value>,
    /// Whether the key is known to need no escape (a facet type's `KEY`,
    /// checked at compile time), so that it is copied as it is.
    plain_key: bool,
}

impl Entry {
    fn from_value(value: Value) -> Self {
        Entry {
            text: None,
            value: OnceLock::from(value),
            plain_key: false,
        }
    }

    fn value(&self) -> &Value {
        self.value.get_or_init(|| match &self.text {
            // The text was written by serde_json from a Rust value, so it is
            // JSON that serde_json reads back (float_roundtrip keeps numbers).
            Some(text) => serde_json::from_slice(text).expect("facet text is JSON"),
            None => unreachable!("a facet entry holds text or a value"),
        })
    }

    fn into_value(mut self) -> Value {
        match self.value.take() {
            Some(value) => value,
            None => self.value().clone(),
        }
    }
}

thread_local! {
    /// Where this thread writes a facet's text before it is stored.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Appends `facet`'s canonical text: its JSON value as serde_json writes
/// it, compact, members sorted.
pub(crate) fn canonical_text<F: Serialize>(out: &mut Vec<u8>, facet: &F) {
    // Facet types hold strings, numbers, booleans, lists and maps with
    // string keys, which always convert.
    let value = serde_json::to_value(facet).expect("facet types convert to JSON");
    crate::json::write_value(out, &value);
}

impl<K: FacetKind> Facets<K> {
    /// An empty facets map that serializes as `{}`.
    pub fn new() -> Self {
        Facets {
            entries: Vec::new(),
            present: true,
            kind: PhantomData,
        }
    }

    /// Reads the facet of type `F`: `None` if absent, an error naming the facet
    /// and the field if it is present but malformed.
    pub fn get<F: Facet<Kind = K>>(&self) -> Option<Result<F, FacetError>> {
        let entry = self.entry(F::KEY)?;
        let read = match (&entry.text, entry.value.get()) {
            (_, Some(value)) => serde_path_to_error::deserialize(value),
            (Some(text), None) => {
                serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(text))
            }
            (None, None) => unreachable!("a facet entry holds text or a value"),
        };
        Some(read.map_err(|source| FacetError {
            key: F::KEY,
            member: K::MEMBER,
            source,
        }))
    }

    /// Stores `facet` under its key, replacing any facet of the same name (the
    /// spec's rule for facets sent again). The facet is serialized here, once.
    pub fn set<F: Facet<Kind = K>>(&mut self, facet: &F) {
        let text = SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => {
                scratch.clear();
                facet.write_json(&mut scratch);
                Box::from(&scratch[..])
            }
            // Only if a facet's Serialize itself sets a facet.
            Err(_) => {
                let mut text = Vec::new();
                facet.write_json(&mut text);
                text.into_boxed_slice()
            }
        });
        self.insert(
            Cow::Borrowed(F::KEY),
            Entry {
                text: Some(text),
                value: OnceLock::new(),
                plain_key: const { crate::json::plain(F::KEY) },
            },
        );
    }

    /// Builder form of [`Facets::set`].
    pub fn with<F: Facet<Kind = K>>(mut self, facet: &F) -> Self {
        self.set(facet);
        self
    }

    /// Stores a facet given as JSON, under any key.
    pub fn insert_raw(&mut self, key: impl Into<String>, value: Value) {
        self.insert(Cow::Owned(key.into()), Entry::from_value(value));
    }

    /// The JSON of the facet under `key`, typed or not.
    pub fn raw(&self, key: &str) -> Option<&Value> {
        self.entry(key).map(Entry::value)
    }

    /// Removes and returns the facet under `key`.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let at = self.position(key).ok()?;
        Some(self.entries.remove(at).1.into_value())
    }

    /// Whether a facet is stored under `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Every facet, by key, as JSON.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, e)| (k.as_ref(), e.value()))
    }

    /// The number of facets.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no facets.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the `facets` member was absent (and nothing was added since).
    pub fn is_absent(&self) -> bool {
        !self.present
    }
}

impl<K> Facets<K> {
    fn position(&self, key: &str) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|(k, _)| key_order(k.as_bytes(), key.as_bytes()))
    }

    fn entry(&self, key: &str) -> Option<&Entry> {
        let at = self.position(key).ok()?;
        Some(&self.entries[at].1)
    }

    /// Appends the facets as a JSON object: text as stored, values written.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (key, entry)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if entry.plain_key {
                out.push(b'"');
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(b"\":");
            } else {
                crate::json::write_str(out, key);
                out.push(b':');
            }
            match (&entry.text, entry.value.get()) {
                (Some(text), _) => out.extend_from_slice(text),
                (None, Some(value)) => crate::json::write_value(out, value),
                (None, None) => unreachable!("a facet entry holds text or a value"),
            }
        }
        out.push(b'}');
    }

    fn insert(&mut self, key: Cow<'static, str>, entry: Entry) {
        self.present = true;
        // Grown a few entries at a time: doubling would take a run's ten
        // facets to room for sixteen, an allocation of over 1 KiB, which
        // sends glibc's malloc down its slow path (consolidating).
        if self.entries.len() == self.entries.capacity() {
            self.entries
                .reserve_exact(if self.entries.len() < 8 { 4 } else { 2 });
        }
        if self
            .entries
            .last()
            .is_none_or(|(last, _)| key_order(last.as_bytes(), key.as_bytes()).is_lt())
        {
            self.entries.push((key, entry));
            return;
        }
        match self.position(&key) {
            Ok(at) => self.entries[at].1 = entry,
            Err(at) => self.entries.insert(at, (key, entry)),
        }
    }
}

/// The order of facet keys, which is `str`'s: keys are short and differ
/// early, and comparing them here is quicker than a call to `memcmp`.
#[inline]
fn key_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

impl<K> Default for Facets<K> {
    /// No facets, and no `facets` member when serialized.
    fn default() -> Self {
        Facets {
            entries: Vec::new(),
            present: false,
            kind: PhantomData,
        }
    }
}

impl<K> Clone for Facets<K> {
    fn clone(&self) -> Self {
        Facets {
            entries: self.entries.clone(),
            present: self.present,
            kind: PhantomData,
        }
    }
}

impl<K> PartialEq for Facets<K> {
    /// Equal when both have the same facets with equal JSON values, however
    /// each was stored.
    fn eq(&self, other: &Self) -> bool {
        self.present == other.present
            && self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|((k1, e1), (k2, e2))| k1 == k2 && e1.value() == e2.value())
    }
}

impl<K> fmt::Debug for Facets<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, e)| (k, e.value())))
            .finish()
    }
}

impl<K> Serialize for Facets<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Through serde, every facet is its JSON value (text is parsed), so any
        // serializer sees the same thing.
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (key, entry) in &self.entries {
            map.serialize_entry(key, entry.value())?;
        }
        map.end()
    }
}

impl<'de, K> Deserialize<'de> for Facets<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut entries: Vec<(Cow<'static, str>, Entry)> = Map::deserialize(deserializer)?
            .into_iter()
            .map(|(k, v)| (Cow::Owned(k), Entry::from_value(v)))
            .collect();
        // Already sorted, unless serde_json keeps insertion order.
        entries.sort_by(|(a, _), (b, _)| a.cmp(b));
        Ok(Facets {
            entries,
            present: true,
            kind: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `facet` writes itself as serde_json writes its JSON value (members
    /// sorted), byte for byte.
    fn assert_written_as_serde<F: Facet>(facet: &F) {
        let mut ours = Vec::new();
        facet.write_json(&mut ours);
        let theirs = serde_json::to_vec(&serde_json::to_value(facet).unwrap()).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(theirs).unwrap(),
            "facet `{}`",
            F::KEY
        );
    }

    /// Text that needs escapes: a quote, a backslash, a control character,
    /// a newline, and a letter beyond ASCII.
    fn odd(s: &str) -> String {
        format!("{s} \"q\" \\ \u{1} \n é")
    }

    fn odd_base<F: Facet>() -> FacetBase {
        FacetBase {
            producer: odd("producer").into(),
            schema_url: odd(F::SCHEMA_URL).into(),
            deleted: Some(true),
        }
    }

    fn odd_extra() -> Map<String, Value> {
        json!({"z\"extra": [1, -2, 2.5, null, true, {"a": "\t"}], "a": {}})
            .as_object()
            .unwrap()
            .clone()
    }

    fn run_ref(extra: Map<String, Value>) -> RunRef {
        RunRef {
            run_id: "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap(),
            extra,
        }
    }

    fn job_ref(extra: Map<String, Value>) -> JobRef {
        JobRef {
            namespace: odd("ns"),
            name: odd("job"),
            extra,
        }
    }

    #[test]
    fn the_facets_that_write_themselves_write_serde_jsons_bytes() {
        // Each facet as the crate makes it, with every optional member absent.
        let checksum = ProvChecksumDatasetFacet::file(7, "ab".repeat(32));
        assert_written_as_serde(&checksum);
        assert_written_as_serde(&checksum.clone().with_checksum(MD5, "cd".repeat(16)));
        assert_written_as_serde(&checksum.version_facet().unwrap());
        assert_written_as_serde(&StorageDatasetFacet::new("posix", None));
        assert_written_as_serde(&DatasetTypeDatasetFacet::new("FILE"));
        assert_written_as_serde(&OutputStatisticsOutputDatasetFacet::new(3, 1));
        assert_written_as_serde(&JobTypeJobFacet::batch("PROV", "TASK"));
        assert_written_as_serde(&ProcessingEngineRunFacet::new("prov", "0.1.0"));
        assert_written_as_serde(&ProvSoftwareRunFacet::new([("bwa", "0.7.17")]));
        assert_written_as_serde(&ParentRunFacet::new(
            "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap(),
            JobRef::new("genomics", "wgs"),
        ));
        let params = json!({"threads": 8, "ratio": 0.25, "sample": "S\"1", "tags": ["a", null]});
        let params = ProvParametersRunFacet::new(params.as_object().unwrap().clone()).unwrap();
        assert_written_as_serde(&params);
        assert_written_as_serde(&params.execution_parameters().unwrap());
        let container = ProvContainerRunFacet::new("ubuntu", ContainerRuntime::None).unwrap();
        assert_written_as_serde(&container);

        // And with every member present, text that needs escaping, a foreign
        // base, and members the types do not model.
        let digest_sources = [
            DigestSource::Given,
            DigestSource::Registry,
            DigestSource::Runtime,
            DigestSource::ImageFile,
            DigestSource::Cache,
            DigestSource::None,
        ];
        let runtimes = [
            ContainerRuntime::Docker,
            ContainerRuntime::Podman,
            ContainerRuntime::Apptainer,
            ContainerRuntime::None,
        ];
        for (source, runtime) in digest_sources.into_iter().zip(runtimes.into_iter().cycle()) {
            assert_written_as_serde(&ProvContainerRunFacet {
                base: odd_base::<ProvContainerRunFacet>(),
                image: odd("image"),
                registry: odd("registry"),
                repository: odd("repository"),
                tag: Some(odd("tag")),
                digest: Some(odd("digest")),
                digest_source: source,
                pinned: source != DigestSource::None,
                runtime,
                resolved_at: Some(odd("at")),
                unpinned_reason: Some(odd("why")),
                extra: odd_extra(),
            });
        }
        for kind in [ChecksumKind::File, ChecksumKind::Directory] {
            assert_written_as_serde(&ProvChecksumDatasetFacet {
                base: odd_base::<ProvChecksumDatasetFacet>(),
                kind,
                size: u64::MAX,
                checksums: [(odd("algo"), odd("hex")), (SHA256.into(), "0".into())].into(),
                file_count: Some(0),
                merkle: Some(odd("merkle")),
                modified_time: Some(odd("mtime")),
                extra: odd_extra(),
            });
        }
        assert_written_as_serde(&ProvParametersRunFacet {
            base: odd_base::<ProvParametersRunFacet>(),
            parameters: odd_extra(),
            sha256: odd("sha"),
            canonicalization: odd("c14n").into(),
            extra: odd_extra(),
        });
        for code in [Some(-1), Some(i32::MAX), None] {
            assert_written_as_serde(&ProvExecutionRunFacet {
                base: odd_base::<ProvExecutionRunFacet>(),
                argv: vec![odd("bwa"), String::new()],
                working_directory: odd("dir"),
                exit_code: code,
                signal: code.map(|c| c.wrapping_add(1)),
                wall_time_ms: 0,
                cpu_time_ms: code.map(|_| 12),
                peak_rss_bytes: code.map(|_| u64::MAX),
                host: odd("host"),
                user: odd("user"),
                start_time: odd("start"),
                end_time: odd("end"),
                extra: odd_extra(),
            });
        }
        assert_written_as_serde(&ProvSoftwareRunFacet {
            base: odd_base::<ProvSoftwareRunFacet>(),
            tools: vec![],
            provenance_version: odd("v"),
            extra: odd_extra(),
        });
        assert_written_as_serde(&ProvSoftwareRunFacet {
            base: odd_base::<ProvSoftwareRunFacet>(),
            tools: vec![
                SoftwareVersion {
                    name: odd("a"),
                    version: odd("1"),
                },
                SoftwareVersion {
                    name: odd("b"),
                    version: odd("2"),
                },
            ],
            provenance_version: odd("v"),
            extra: Map::new(),
        });
        assert_written_as_serde(&ProvFingerprintRunFacet {
            base: odd_base::<ProvFingerprintRunFacet>(),
            sha256: odd("sha"),
            scheme: odd("scheme").into(),
            extra: odd_extra(),
        });
        assert_written_as_serde(&ParentRunFacet {
            base: odd_base::<ParentRunFacet>(),
            run: run_ref(odd_extra()),
            job: job_ref(odd_extra()),
            root: Some(RootRef {
                run: run_ref(Map::new()),
                job: job_ref(odd_extra()),
                extra: odd_extra(),
            }),
            extra: odd_extra(),
        });
        assert_written_as_serde(&ExecutionParametersRunFacet {
            base: odd_base::<ExecutionParametersRunFacet>(),
            parameters: vec![
                ExecutionParameter {
                    key: odd("k"),
                    name: Some(odd("n")),
                    description: Some(odd("d")),
                    value: Some(odd("v")),
                    extra: odd_extra(),
                },
                ExecutionParameter {
                    key: odd("k2"),
                    name: None,
                    description: None,
                    value: None,
                    extra: Map::new(),
                },
            ],
            extra: odd_extra(),
        });
        assert_written_as_serde(&ProcessingEngineRunFacet {
            base: odd_base::<ProcessingEngineRunFacet>(),
            version: odd("1").into(),
            name: Some(odd("engine").into()),
            openlineage_adapter_version: Some(odd("2")),
            extra: odd_extra(),
        });
        assert_written_as_serde(&JobTypeJobFacet {
            base: odd_base::<JobTypeJobFacet>(),
            processing_type: odd("BATCH").into(),
            integration: odd("PROV").into(),
            job_type: Some(odd("TASK").into()),
            extra: odd_extra(),
        });
        assert_written_as_serde(&DatasetVersionDatasetFacet {
            base: odd_base::<DatasetVersionDatasetFacet>(),
            dataset_version: odd("v"),
            extra: odd_extra(),
        });
        assert_written_as_serde(&StorageDatasetFacet {
            base: odd_base::<StorageDatasetFacet>(),
            storage_layer: odd("s3").into(),
            file_format: Some(odd("bam").into()),
            extra: odd_extra(),
        });
        assert_written_as_serde(&DatasetTypeDatasetFacet {
            base: odd_base::<DatasetTypeDatasetFacet>(),
            dataset_type: odd("FILE").into(),
            sub_type: Some(odd("sub")),
            extra: odd_extra(),
        });
        assert_written_as_serde(&OutputStatisticsOutputDatasetFacet {
            base: odd_base::<OutputStatisticsOutputDatasetFacet>(),
            row_count: Some(0),
            size: Some(u64::MAX),
            file_count: Some(1),
            extra: odd_extra(),
        });
    }

    #[test]
    fn typed_view_reads_and_writes_through_json() {
        let mut facets = Facets::<RunKind>::new();
        assert!(facets.get::<NominalTimeRunFacet>().is_none());
        facets.set(&NominalTimeRunFacet::new("2024-01-01T00:00:00Z"));
        let back = facets.get::<NominalTimeRunFacet>().unwrap().unwrap();
        assert_eq!(back.nominal_start_time, "2024-01-01T00:00:00Z");
        assert_eq!(
            facets.raw("nominalTime").unwrap()["_schemaURL"],
            NominalTimeRunFacet::SCHEMA_URL
        );
    }

    #[test]
    fn malformed_known_facet_is_an_error_naming_the_field() {
        let mut facets = Facets::<RunKind>::new();
        facets.insert_raw(
            "parent",
            json!({"run": {"runId": "not-a-uuid"}, "job": {"namespace": "n", "name": "j"}}),
        );
        let err = facets.get::<ParentRunFacet>().unwrap().unwrap_err();
        assert_eq!(err.key, "parent");
        assert_eq!(err.source.path().to_string(), "run.runId");
    }

    #[test]
    fn unknown_members_of_a_typed_facet_survive_get_then_set() {
        let mut facets = Facets::<DatasetKind>::new();
        let raw = json!({"_producer": "p", "_schemaURL": "s", "datasetVersion": "v1", "vendor": {"x": 1}});
        facets.insert_raw("version", raw.clone());
        let typed = facets.get::<DatasetVersionDatasetFacet>().unwrap().unwrap();
        facets.set(&typed);
        assert_eq!(facets.raw("version").unwrap(), &raw);
    }

    #[test]
    fn a_set_facet_is_kept_as_its_text_and_reads_as_its_value() {
        let facet = ParentRunFacet::new(
            "0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d31".parse().unwrap(),
            JobRef::new("genomics", "wgs"),
        );
        let mut facets = Facets::<RunKind>::new();
        facets.set(&facet);
        facets.insert_raw("zzz", json!({"n": 1}));
        facets.insert_raw("aaa", json!([1, 2]));
        // Written as stored, in key order, whether set or inserted: the
        // canonical text of the facets' value.
        let mut text = Vec::new();
        facets.write_json(&mut text);
        let expected = format!(
            r#"{{"aaa":[1,2],"parent":{},"zzz":{{"n":1}}}}"#,
            serde_json::to_value(&facet).unwrap()
        );
        assert_eq!(String::from_utf8(text).unwrap(), expected);
        // Through serde, the same JSON value.
        let value = serde_json::to_value(&facets).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&expected).unwrap(), value);
        assert_eq!(value["parent"], serde_json::to_value(&facet).unwrap());
        // The views: raw (parsed on demand), iter, get, remove.
        assert_eq!(facets.raw("parent"), Some(&value["parent"]));
        let keys: Vec<&str> = facets.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["aaa", "parent", "zzz"]);
        assert_eq!(facets.get::<ParentRunFacet>().unwrap().unwrap(), facet);
        assert_eq!(facets.remove("parent"), Some(value["parent"].clone()));
        assert!(!facets.contains("parent"));
        assert_eq!(facets.len(), 2);
    }

    #[test]
    fn facets_compare_by_value_however_they_were_stored() {
        let facet = DatasetTypeDatasetFacet::new("FILE");
        let mut set = Facets::<DatasetKind>::new();
        set.set(&facet);
        let mut inserted = Facets::<DatasetKind>::new();
        inserted.insert_raw("datasetType", serde_json::to_value(&facet).unwrap());
        assert_eq!(set, inserted);
        assert_eq!(set.clone(), inserted);
        inserted.insert_raw("datasetType", json!({"datasetType": "TABLE"}));
        assert_ne!(set, inserted);
        // Setting again replaces, as the spec says for facets sent again.
        set.set(&DatasetTypeDatasetFacet::new("TABLE"));
        assert_eq!(set.len(), 1);
        let kind = set.get::<DatasetTypeDatasetFacet>().unwrap().unwrap();
        assert_eq!(kind.dataset_type, "TABLE");
    }

    /// Another program's idea of `outputStatistics`, with a string count.
    #[derive(Serialize, Deserialize)]
    struct OddStatistics {
        #[serde(rename = "rowCount")]
        row_count: String,
    }
    impl Facet for OddStatistics {
        const KEY: &'static str = "outputStatistics";
        const SCHEMA_URL: &'static str = "https://example.org/OddStatistics.json";
        type Kind = OutputKind;
    }

    #[test]
    fn a_malformed_facet_kept_as_text_is_an_error_naming_the_field() {
        let mut facets = Facets::<OutputKind>::new();
        facets.set(&OddStatistics {
            row_count: "many".into(),
        });
        let err = facets
            .get::<OutputStatisticsOutputDatasetFacet>()
            .unwrap()
            .unwrap_err();
        assert_eq!(err.key, "outputStatistics");
        assert_eq!(err.source.path().to_string(), "rowCount");
        // Once parsed (by `raw`), the value path says the same.
        assert_eq!(facets.raw("outputStatistics").unwrap()["rowCount"], "many");
        let err = facets
            .get::<OutputStatisticsOutputDatasetFacet>()
            .unwrap()
            .unwrap_err();
        assert_eq!(err.source.path().to_string(), "rowCount");
    }

    /// The map against a model (a sorted map of values) through a long
    /// pseudo-random run of sets, raw inserts, replacements and removals:
    /// its text, values, order and reads stay the model's.
    #[test]
    fn facets_behave_as_a_sorted_map_of_values() {
        let keys = [
            "parent",
            "a\"quote",
            "zzz",
            "nominalTime",
            "é",
            "",
            "prov_x",
            "b",
        ];
        let mut model = std::collections::BTreeMap::<String, Value>::new();
        let mut facets = Facets::<RunKind>::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for step in 0..3000 {
            let roll = next();
            let key = keys[(roll % keys.len() as u64) as usize];
            match (roll >> 8) % 5 {
                0 => {
                    let facet =
                        NominalTimeRunFacet::new(format!("2024-01-{:02}T00:00:00Z", step % 28 + 1));
                    facets.set(&facet);
                    model.insert(
                        NominalTimeRunFacet::KEY.into(),
                        serde_json::to_value(&facet).unwrap(),
                    );
                }
                1 | 2 => {
                    let value = json!({"n": step, "s": odd("v"), "list": [step % 3, null]});
                    facets.insert_raw(key, value.clone());
                    model.insert(key.into(), value);
                }
                3 => assert_eq!(facets.remove(key), model.remove(key), "remove {key:?}"),
                _ => {
                    // Read first (values parsed), then change: the values
                    // read before are not kept for the changed map.
                    assert_eq!(facets.raw(key), model.get(key));
                    facets.insert_raw("b", json!(step));
                    model.insert("b".into(), json!(step));
                }
            }
            let mut text = Vec::new();
            facets.write_json(&mut text);
            let expected = serde_json::to_string(&model).unwrap();
            assert_eq!(String::from_utf8(text).unwrap(), expected, "step {step}");
            assert_eq!(facets.len(), model.len());
            if step % 97 == 0 {
                let listed: Vec<(String, Value)> = facets
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.clone()))
                    .collect();
                let modelled: Vec<(String, Value)> = model.clone().into_iter().collect();
                assert_eq!(listed, modelled);
                for key in keys {
                    assert_eq!(facets.contains(key), model.contains_key(key));
                    assert_eq!(facets.raw(key), model.get(key));
                }
                let read: Facets<RunKind> = serde_json::from_value(json!(model)).unwrap();
                assert_eq!(read, facets);
                assert_eq!(facets.clone(), facets);
                assert_eq!(serde_json::to_value(&facets).unwrap(), json!(model));
            }
        }
    }

    /// A facet whose writer panics halfway, as a careless implementation
    /// of [`Facet::write_json`] might.
    #[derive(Serialize, Deserialize)]
    struct Panicking;
    impl Facet for Panicking {
        const KEY: &'static str = "panicking";
        const SCHEMA_URL: &'static str = "https://example.org/Panicking.json";
        type Kind = RunKind;
        fn write_json(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(b"{\"half");
            panic!("halfway");
        }
    }

    #[test]
    fn a_facet_whose_writer_panicked_leaves_no_half_text() {
        let mut facets = Facets::<RunKind>::new();
        facets.set(&NominalTimeRunFacet::new("2024-01-01T00:00:00Z"));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            facets.set(&Panicking);
        }));
        assert!(caught.is_err());
        facets.insert_raw("zzz", json!(1));
        let mut text = Vec::new();
        facets.write_json(&mut text);
        let value: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(value["zzz"], 1);
        assert!(!facets.contains("panicking"));
        assert_eq!(facets.len(), 2);
    }

    #[test]
    fn absent_and_empty_facets_serialize_differently() {
        assert!(Facets::<JobKind>::default().is_absent());
        assert!(!Facets::<JobKind>::new().is_absent());
        let parsed: Facets<JobKind> = serde_json::from_value(json!({})).unwrap();
        assert!(!parsed.is_absent());
    }
}
