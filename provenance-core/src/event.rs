//! The OpenLineage 2-0-2 event model: run, dataset and job events.
//!
//! Reading is lenient where real producers deviate and strict where it matters.
//! An event from any producer parses, and members this crate does not model are
//! kept (`extra`, and facets as JSON), so serializing gives back the same JSON
//! value. What is refused is what would corrupt lineage: a run id that is not a
//! UUID, a time that is not a time, a dataset without a name. Use
//! [`crate::validate`] to list every deviation from the spec for a strict mode.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::facets::{
    DatasetKind, FacetKind, Facets, InputKind, JobKind, OutputKind, PRODUCER, RunKind,
};
use crate::json::Object;
use crate::{EventTime, RunId, json};

/// The schema URL of the OpenLineage spec version this crate writes.
pub const OPENLINEAGE_SPEC_URL: &str = spec_url!();

/// The spec's URL as a literal, for `concat!`.
macro_rules! spec_url {
    () => {
        "https://openlineage.io/spec/2-0-2/OpenLineage.json"
    };
}
use spec_url;

/// Any OpenLineage event: what `POST /api/v1/lineage` receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A run changed state (has `run` and `job`).
    Run(RunEvent),
    /// Static metadata about a dataset (has `dataset`, no `job` or `run`).
    Dataset(DatasetEvent),
    /// Static metadata about a job (has `job`, no `run`).
    Job(JobEvent),
}

/// The transition a run event reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The run started.
    Start,
    /// The run is going on (an intermediate update).
    Running,
    /// The run finished successfully (terminal).
    Complete,
    /// The run was stopped before finishing (terminal).
    Abort,
    /// The run failed (terminal).
    Fail,
    /// Extra metadata outside the state machine.
    Other,
    /// A value the spec does not define, kept as sent.
    Unknown(String),
}

/// A run changed state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEvent {
    /// When the transition happened.
    #[serde(rename = "eventTime")]
    pub event_time: EventTime,
    /// URI of the software that produced the event.
    pub producer: String,
    /// URL of the spec version the event follows (some producers omit it).
    #[serde(rename = "schemaURL", default, skip_serializing_if = "Option::is_none")]
    pub schema_url: Option<String>,
    /// The transition (optional in the spec).
    #[serde(rename = "eventType", default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<EventType>,
    /// The run.
    pub run: Run,
    /// The job the run belongs to.
    pub job: Job,
    /// The datasets read (absent and empty are kept apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<InputDataset>>,
    /// The datasets written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<OutputDataset>>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Static metadata about a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetEvent {
    /// When the metadata was observed.
    #[serde(rename = "eventTime")]
    pub event_time: EventTime,
    /// URI of the software that produced the event.
    pub producer: String,
    /// URL of the spec version the event follows.
    #[serde(rename = "schemaURL", default, skip_serializing_if = "Option::is_none")]
    pub schema_url: Option<String>,
    /// The dataset.
    pub dataset: StaticDataset,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Static metadata about a job and the datasets it reads and writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    /// When the metadata was observed.
    #[serde(rename = "eventTime")]
    pub event_time: EventTime,
    /// URI of the software that produced the event.
    pub producer: String,
    /// URL of the spec version the event follows.
    #[serde(rename = "schemaURL", default, skip_serializing_if = "Option::is_none")]
    pub schema_url: Option<String>,
    /// The job.
    pub job: Job,
    /// The datasets the job reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<InputDataset>>,
    /// The datasets the job writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<OutputDataset>>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One execution of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The run's id, a UUID (required: lineage joins on it).
    #[serde(rename = "runId")]
    pub run_id: RunId,
    /// Run facets.
    #[serde(default, skip_serializing_if = "Facets::is_absent")]
    pub facets: Facets<RunKind>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A job: a recurring step, named within a namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The job's namespace (usually from configuration).
    pub namespace: String,
    /// The job's name, unique in its namespace.
    pub name: String,
    /// Job facets.
    #[serde(default, skip_serializing_if = "Facets::is_absent")]
    pub facets: Facets<JobKind>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A dataset read by a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputDataset {
    /// Where the dataset lives (`file`, `s3://bucket`, ...).
    pub namespace: String,
    /// Its name in the namespace (an absolute path for files).
    pub name: String,
    /// Dataset facets.
    #[serde(default, skip_serializing_if = "Facets::is_absent")]
    pub facets: Facets<DatasetKind>,
    /// Facets about this use of the dataset as an input.
    #[serde(
        rename = "inputFacets",
        default,
        skip_serializing_if = "Facets::is_absent"
    )]
    pub input_facets: Facets<InputKind>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A dataset written by a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputDataset {
    /// Where the dataset lives (`file`, `s3://bucket`, ...).
    pub namespace: String,
    /// Its name in the namespace (an absolute path for files).
    pub name: String,
    /// Dataset facets.
    #[serde(default, skip_serializing_if = "Facets::is_absent")]
    pub facets: Facets<DatasetKind>,
    /// Facets about this use of the dataset as an output.
    #[serde(
        rename = "outputFacets",
        default,
        skip_serializing_if = "Facets::is_absent"
    )]
    pub output_facets: Facets<OutputKind>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A dataset described by a dataset event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaticDataset {
    /// Where the dataset lives.
    pub namespace: String,
    /// Its name in the namespace.
    pub name: String,
    /// Dataset facets.
    #[serde(default, skip_serializing_if = "Facets::is_absent")]
    pub facets: Facets<DatasetKind>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Why an event could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The bytes are not JSON.
    #[error("parse JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the JSON parser found.
        message: String,
    },
    /// The JSON is not an object with `run`, `job` or `dataset`.
    #[error("read event: {0}")]
    Shape(String),
    /// A member is missing or has the wrong type or form.
    #[error("read event: `{path}`: {message}")]
    Field {
        /// Where, as a dotted path such as `run.runId` or `inputs[2].name`.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl ParseError {
    /// The dotted path of the member at fault, if the error is about one.
    pub fn path(&self) -> Option<&str> {
        match self {
            ParseError::Field { path, .. } => Some(path),
            _ => None,
        }
    }
}

impl Event {
    /// Reads one event from JSON text.
    pub fn from_slice(bytes: &[u8]) -> Result<Event, ParseError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            // serde_json's text ends with the place, which ours names first.
            let text = e.to_string();
            let place = format!(" at line {} column {}", e.line(), e.column());
            ParseError::Syntax {
                line: e.line(),
                column: e.column(),
                message: text.strip_suffix(&place).unwrap_or(&text).to_owned(),
            }
        })?;
        Event::from_value(value)
    }

    /// Reads one event from a parsed JSON value.
    ///
    /// The kind is decided as the spec's `oneOf` does: `run` makes a run event,
    /// otherwise `dataset` a dataset event, otherwise `job` a job event.
    pub fn from_value(value: Value) -> Result<Event, ParseError> {
        let Some(object) = value.as_object() else {
            return Err(ParseError::Shape(format!(
                "expected a JSON object, found {}",
                json_type(&value)
            )));
        };
        if object.contains_key("run") {
            typed(value).map(Event::Run)
        } else if object.contains_key("dataset") {
            typed(value).map(Event::Dataset)
        } else if object.contains_key("job") {
            typed(value).map(Event::Job)
        } else {
            Err(ParseError::Shape(
                "an OpenLineage event needs `run` and `job` (run event), `dataset` (dataset event) or `job` (job event)".to_owned(),
            ))
        }
    }

    /// The event as a JSON value.
    pub fn to_value(&self) -> Value {
        // Events hold only JSON-compatible data (string keys, finite numbers).
        serde_json::to_value(self).expect("events convert to JSON")
    }

    /// The event as compact JSON text (what [`Event::write_json`] writes).
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(1024);
        self.write_json(&mut out);
        String::from_utf8(out).expect("JSON text is UTF-8")
    }

    /// Appends the event's canonical text to `out`, a buffer the caller can
    /// reuse: its JSON value ([`Event::to_value`]) as serde_json writes it,
    /// compact, with the members of every object in sorted order (tested).
    /// A store's identity of an event is the hash of this text, so for the
    /// events this crate writes the identity is the hash of the bytes sent.
    ///
    /// Facets stored from their Rust types are copied as the text they were
    /// written to; the rest is written here. An event holding members this
    /// crate does not model (outside facets) is written through its value.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        if self.has_extra() {
            json::write_value(out, &self.to_value());
            return;
        }
        // The members of each object in sorted order.
        match self {
            Event::Run(e) => {
                let mut o = Object::open(out);
                o.str("eventTime", e.event_time.as_str());
                if let Some(t) = &e.event_type {
                    o.str("eventType", t.as_str());
                }
                o.datasets("inputs", &e.inputs, InputDataset::write_json);
                e.job.write_json(o.key("job"));
                o.datasets("outputs", &e.outputs, OutputDataset::write_json);
                o.str("producer", &e.producer);
                e.run.write_json(o.key("run"));
                o.opt_str("schemaURL", e.schema_url.as_deref());
                o.end();
            }
            Event::Dataset(e) => {
                let mut o = Object::open(out);
                let d = &e.dataset;
                let mut dataset = Object::open(o.key("dataset"));
                dataset.facets("facets", &d.facets);
                dataset.str("name", &d.name);
                dataset.str("namespace", &d.namespace);
                dataset.end();
                o.str("eventTime", e.event_time.as_str());
                o.str("producer", &e.producer);
                o.opt_str("schemaURL", e.schema_url.as_deref());
                o.end();
            }
            Event::Job(e) => {
                let mut o = Object::open(out);
                o.str("eventTime", e.event_time.as_str());
                o.datasets("inputs", &e.inputs, InputDataset::write_json);
                e.job.write_json(o.key("job"));
                o.datasets("outputs", &e.outputs, OutputDataset::write_json);
                o.str("producer", &e.producer);
                o.opt_str("schemaURL", e.schema_url.as_deref());
                o.end();
            }
        }
    }

    /// Whether the event holds members this crate does not model, outside
    /// its facets.
    fn has_extra(&self) -> bool {
        fn datasets<D>(list: &Option<Vec<D>>, extra: fn(&D) -> &Map<String, Value>) -> bool {
            list.iter().flatten().any(|d| !extra(d).is_empty())
        }
        match self {
            Event::Run(e) => {
                !e.extra.is_empty()
                    || !e.run.extra.is_empty()
                    || !e.job.extra.is_empty()
                    || datasets(&e.inputs, |d| &d.extra)
                    || datasets(&e.outputs, |d| &d.extra)
            }
            Event::Dataset(e) => !e.extra.is_empty() || !e.dataset.extra.is_empty(),
            Event::Job(e) => {
                !e.extra.is_empty()
                    || !e.job.extra.is_empty()
                    || datasets(&e.inputs, |d| &d.extra)
                    || datasets(&e.outputs, |d| &d.extra)
            }
        }
    }

    /// When the event happened.
    pub fn event_time(&self) -> &EventTime {
        match self {
            Event::Run(e) => &e.event_time,
            Event::Dataset(e) => &e.event_time,
            Event::Job(e) => &e.event_time,
        }
    }

    /// The producer URI.
    pub fn producer(&self) -> &str {
        match self {
            Event::Run(e) => &e.producer,
            Event::Dataset(e) => &e.producer,
            Event::Job(e) => &e.producer,
        }
    }
}

/// The members of events that hold facets and lists of datasets.
impl Object<'_> {
    fn facets<K: FacetKind>(&mut self, key: &'static str, facets: &Facets<K>) {
        if !facets.is_absent() {
            facets.write_json(self.key(key));
        }
    }

    fn datasets<D>(
        &mut self,
        key: &'static str,
        list: &Option<Vec<D>>,
        write: fn(&D, &mut Vec<u8>),
    ) {
        if let Some(list) = list {
            self.list(key, list, write);
        }
    }
}

// The parts of an event without `extra` members (see `Event::write_json`),
// their members in sorted order.

impl Run {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::open(out);
        o.facets("facets", &self.facets);
        o.str("runId", self.run_id.encode(&mut [0; 36]));
        o.end();
    }
}

impl Job {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::open(out);
        o.facets("facets", &self.facets);
        o.str("name", &self.name);
        o.str("namespace", &self.namespace);
        o.end();
    }
}

impl InputDataset {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::open(out);
        o.facets("facets", &self.facets);
        o.facets("inputFacets", &self.input_facets);
        o.str("name", &self.name);
        o.str("namespace", &self.namespace);
        o.end();
    }
}

impl OutputDataset {
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::open(out);
        o.facets("facets", &self.facets);
        o.str("name", &self.name);
        o.str("namespace", &self.namespace);
        o.facets("outputFacets", &self.output_facets);
        o.end();
    }
}

fn typed<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ParseError> {
    serde_path_to_error::deserialize(value).map_err(|e| ParseError::Field {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Event::Run(e) => e.serialize(serializer),
            Event::Dataset(e) => e.serialize(serializer),
            Event::Job(e) => e.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Event::from_value(value).map_err(serde::de::Error::custom)
    }
}

impl EventType {
    /// The spec's name for this transition.
    pub fn as_str(&self) -> &str {
        match self {
            EventType::Start => "START",
            EventType::Running => "RUNNING",
            EventType::Complete => "COMPLETE",
            EventType::Abort => "ABORT",
            EventType::Fail => "FAIL",
            EventType::Other => "OTHER",
            EventType::Unknown(s) => s,
        }
    }

    /// Whether this transition ends the run (COMPLETE, ABORT or FAIL).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EventType::Complete | EventType::Abort | EventType::Fail
        )
    }
}

impl From<&str> for EventType {
    fn from(s: &str) -> Self {
        match s {
            "START" => EventType::Start,
            "RUNNING" => EventType::Running,
            "COMPLETE" => EventType::Complete,
            "ABORT" => EventType::Abort,
            "FAIL" => EventType::Fail,
            "OTHER" => EventType::Other,
            other => EventType::Unknown(other.to_owned()),
        }
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(EventType::from(String::deserialize(deserializer)?.as_str()))
    }
}

impl RunEvent {
    /// A run event of `event_type` for `run` of `job`, now, produced by this crate.
    pub fn new(event_type: EventType, run: Run, job: Job) -> Self {
        RunEvent {
            event_time: EventTime::now(),
            producer: PRODUCER.to_owned(),
            schema_url: Some(concat!(spec_url!(), "#/$defs/RunEvent").to_owned()),
            event_type: Some(event_type),
            run,
            job,
            inputs: None,
            outputs: None,
            extra: Map::new(),
        }
    }

    /// The inputs, empty when absent.
    pub fn inputs(&self) -> &[InputDataset] {
        self.inputs.as_deref().unwrap_or_default()
    }

    /// The outputs, empty when absent.
    pub fn outputs(&self) -> &[OutputDataset] {
        self.outputs.as_deref().unwrap_or_default()
    }
}

impl DatasetEvent {
    /// A dataset event about `dataset`, now, produced by this crate.
    pub fn new(dataset: StaticDataset) -> Self {
        DatasetEvent {
            event_time: EventTime::now(),
            producer: PRODUCER.to_owned(),
            schema_url: Some(concat!(spec_url!(), "#/$defs/DatasetEvent").to_owned()),
            dataset,
            extra: Map::new(),
        }
    }
}

impl JobEvent {
    /// A job event about `job`, now, produced by this crate.
    pub fn new(job: Job) -> Self {
        JobEvent {
            event_time: EventTime::now(),
            producer: PRODUCER.to_owned(),
            schema_url: Some(concat!(spec_url!(), "#/$defs/JobEvent").to_owned()),
            job,
            inputs: None,
            outputs: None,
            extra: Map::new(),
        }
    }
}

impl Run {
    /// A run with id `run_id` and no facets.
    pub fn new(run_id: RunId) -> Self {
        Run {
            run_id,
            facets: Facets::new(),
            extra: Map::new(),
        }
    }
}

impl Job {
    /// The job `namespace`/`name` with no facets.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Job {
            namespace: namespace.into(),
            name: name.into(),
            facets: Facets::new(),
            extra: Map::new(),
        }
    }
}

/// Implements the constructor shared by the three dataset shapes.
macro_rules! dataset_new {
    ($ty:ident { $($facet:ident),* }) => {
        impl $ty {
            /// The dataset `namespace`/`name` with no facets.
            pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
                $ty {
                    namespace: namespace.into(),
                    name: name.into(),
                    facets: Facets::new(),
                    $($facet: Facets::default(),)*
                    extra: Map::new(),
                }
            }
        }
    };
}
dataset_new!(InputDataset { input_facets });
dataset_new!(OutputDataset { output_facets });
dataset_new!(StaticDataset {});

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({
            "eventTime": "2024-05-01T12:00:00Z",
            "producer": "https://example.org/p",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "eventType": "START",
            "run": {"runId": "0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d31"},
            "job": {"namespace": "ns", "name": "align"}
        })
    }

    fn error_path(mut event: Value, pointer: &str, replacement: Value) -> String {
        *event.pointer_mut(pointer).unwrap() = replacement;
        let err = Event::from_value(event).unwrap_err();
        err.path()
            .map(str::to_owned)
            .unwrap_or_else(|| err.to_string())
    }

    #[test]
    fn reads_each_kind() {
        assert!(matches!(Event::from_value(minimal()), Ok(Event::Run(_))));
        let dataset = json!({"eventTime": "2024-05-01T12:00:00Z", "producer": "p",
            "dataset": {"namespace": "file", "name": "/data/a.fastq"}});
        assert!(matches!(Event::from_value(dataset), Ok(Event::Dataset(_))));
        let job = json!({"eventTime": "2024-05-01T12:00:00Z", "producer": "p",
            "job": {"namespace": "ns", "name": "align"}});
        assert!(matches!(Event::from_value(job), Ok(Event::Job(_))));
    }

    #[test]
    fn errors_name_the_member_at_fault() {
        assert_eq!(
            error_path(minimal(), "/run/runId", json!("run_id")),
            "run.runId"
        );
        assert_eq!(
            error_path(minimal(), "/eventTime", json!("soon")),
            "eventTime"
        );
        assert_eq!(error_path(minimal(), "/job/name", json!(7)), "job.name");
        let mut with_input = minimal();
        with_input["inputs"] = json!([{"namespace": "file", "name": "/a"}, {"namespace": "file"}]);
        let err = Event::from_value(with_input).unwrap_err();
        assert_eq!(err.path(), Some("inputs[1]"), "{err}");
        assert!(err.to_string().contains("name"), "{err}");
    }

    #[test]
    fn refuses_what_is_not_an_event() {
        let err = Event::from_slice(b"{\"eventTime\": ").unwrap_err();
        assert!(matches!(err, ParseError::Syntax { line: 1, .. }), "{err}");
        // The place is named once.
        assert_eq!(
            err.to_string(),
            "parse JSON at line 1, column 14: EOF while parsing a value"
        );
        let err = Event::from_slice(b"[1]").unwrap_err();
        assert!(err.to_string().contains("found an array"), "{err}");
        let err = Event::from_slice(b"{\"producer\": \"p\"}").unwrap_err();
        assert!(err.to_string().contains("needs `run`"), "{err}");
    }

    #[test]
    fn unknown_event_type_is_kept() {
        let mut event = minimal();
        event["eventType"] = json!("PAUSED");
        let parsed = Event::from_value(event.clone()).unwrap();
        let Event::Run(run) = &parsed else {
            panic!("not a run event")
        };
        assert_eq!(run.event_type, Some(EventType::Unknown("PAUSED".into())));
        assert_eq!(parsed.to_value(), event);
    }

    #[test]
    fn built_events_serialize_in_spec_shape() {
        let mut event = RunEvent::new(
            EventType::Complete,
            Run::new(RunId::new_v7()),
            Job::new("ns", "call"),
        );
        event.inputs = Some(vec![InputDataset::new("file", "/ref/GRCh38.fa")]);
        let value = Event::Run(event).to_value();
        assert_eq!(value["eventType"], "COMPLETE");
        assert_eq!(value["inputs"][0]["facets"], json!({}));
        assert!(value["inputs"][0].get("inputFacets").is_none());
        assert!(value.get("outputs").is_none());
        assert_eq!(value["producer"], PRODUCER);
    }
}
