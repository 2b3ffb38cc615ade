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

use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The producer URI written into events and facets made by this crate.
pub const PRODUCER: &str = concat!(
    "https://github.com/genomics-provenance/provenance/tree/v",
    env!("CARGO_PKG_VERSION"),
    "/provenance-core"
);

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
}

/// The members every facet carries (`_producer`, `_schemaURL`, and `_deleted`
/// on job and dataset facets).
///
/// Reading is lenient: a facet without `_producer` or `_schemaURL` still parses
/// (with empty strings), and [`crate::validate`] reports the omission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacetBase {
    /// URI of the software that produced the facet.
    #[serde(rename = "_producer", default)]
    pub producer: String,
    /// URL of the schema version the facet follows.
    #[serde(rename = "_schemaURL", default)]
    pub schema_url: String,
    /// `true` asks a consumer to delete this facet (job and dataset facets only).
    #[serde(rename = "_deleted", default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
}

impl FacetBase {
    /// The base of a facet of type `F` produced by this crate.
    pub fn ours<F: Facet>() -> Self {
        FacetBase {
            producer: PRODUCER.to_owned(),
            schema_url: F::SCHEMA_URL.to_owned(),
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
/// `Facets` also remembers whether the `facets` member was present at all, so
/// that an event without one serializes without one.
pub struct Facets<K> {
    entries: Map<String, Value>,
    present: bool,
    kind: PhantomData<K>,
}

impl<K: FacetKind> Facets<K> {
    /// An empty facets map that serializes as `{}`.
    pub fn new() -> Self {
        Facets {
            entries: Map::new(),
            present: true,
            kind: PhantomData,
        }
    }

    /// Reads the facet of type `F`: `None` if absent, an error naming the facet
    /// and the field if it is present but malformed.
    pub fn get<F: Facet<Kind = K>>(&self) -> Option<Result<F, FacetError>> {
        let value = self.entries.get(F::KEY)?;
        Some(
            serde_path_to_error::deserialize(value).map_err(|source| FacetError {
                key: F::KEY,
                member: K::MEMBER,
                source,
            }),
        )
    }

    /// Stores `facet` under its key, replacing any facet of the same name (the
    /// spec's rule for facets sent again).
    pub fn set<F: Facet<Kind = K>>(&mut self, facet: &F) {
        // Facet types hold only strings, numbers, booleans and string-keyed maps,
        // for which serde_json's conversion to a Value cannot fail.
        let value = serde_json::to_value(facet).expect("facet types convert to JSON");
        self.insert_raw(F::KEY, value);
    }

    /// Builder form of [`Facets::set`].
    pub fn with<F: Facet<Kind = K>>(mut self, facet: &F) -> Self {
        self.set(facet);
        self
    }

    /// Stores a facet given as JSON, under any key.
    pub fn insert_raw(&mut self, key: impl Into<String>, value: Value) {
        self.present = true;
        self.entries.insert(key.into(), value);
    }

    /// The JSON of the facet under `key`, typed or not.
    pub fn raw(&self, key: &str) -> Option<&Value> {
        self.entries.get(key)
    }

    /// Removes and returns the facet under `key`.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.entries.remove(key)
    }

    /// Whether a facet is stored under `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Every facet, by key, as JSON.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
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

impl<K> Default for Facets<K> {
    /// No facets, and no `facets` member when serialized.
    fn default() -> Self {
        Facets {
            entries: Map::new(),
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
    fn eq(&self, other: &Self) -> bool {
        self.present == other.present && self.entries == other.entries
    }
}

impl<K> fmt::Debug for Facets<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter()).finish()
    }
}

impl<K> Serialize for Facets<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.entries.serialize(serializer)
    }
}

impl<'de, K> Deserialize<'de> for Facets<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Facets {
            entries: Map::deserialize(deserializer)?,
            present: true,
            kind: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn absent_and_empty_facets_serialize_differently() {
        assert!(Facets::<JobKind>::default().is_absent());
        assert!(!Facets::<JobKind>::new().is_absent());
        let parsed: Facets<JobKind> = serde_json::from_value(json!({})).unwrap();
        assert!(!parsed.is_absent());
    }
}
