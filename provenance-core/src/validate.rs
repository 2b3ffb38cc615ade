//! Strict mode: every way an event deviates from the OpenLineage 2-0-2 spec.
//!
//! Parsing ([`crate::Event::from_slice`]) accepts what real producers send;
//! [`validate`] lists what the spec would refuse, each deviation with the path of
//! the member at fault, so a strict ingester can reject with a precise reason and
//! a lenient one can still store and warn.

use std::fmt;

use serde_json::Value;

use crate::event::{Event, EventType, InputDataset, Job, OutputDataset, Run};
use crate::facets::*;

/// One way an event departs from the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deviation {
    /// The member at fault, as a dotted path (`run.facets.parent.run.runId`).
    pub path: String,
    /// What the spec expects there.
    pub message: String,
}

impl fmt::Display for Deviation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.path, self.message)
    }
}

/// Members named twice in one object of the JSON text `json`, which a
/// parsed event cannot show (the last one wins): RFC 8259 says names
/// should be unique, and readers that keep the first would see another
/// event. Empty for text that is not JSON (parsing says why).
pub fn duplicate_members(json: &[u8]) -> Vec<Deviation> {
    let found = std::cell::RefCell::new(Vec::new());
    let mut reader = serde_json::Deserializer::from_slice(json);
    let _ = serde::de::DeserializeSeed::deserialize(
        Scan {
            path: String::new(),
            found: &found,
        },
        &mut reader,
    );
    found.into_inner()
}

/// Walks any JSON value, noting each member named twice in its object.
struct Scan<'a> {
    path: String,
    found: &'a std::cell::RefCell<Vec<Deviation>>,
}

impl Scan<'_> {
    fn at(&self, path: String) -> Scan<'_> {
        Scan {
            path,
            found: self.found,
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Scan<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Scan<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let path = match self.path.as_str() {
                "" => name.to_string(),
                p => format!("{p}.{name}"),
            };
            if !seen.insert(name.clone()) {
                self.found.borrow_mut().push(Deviation {
                    path: path.clone(),
                    message: "is named twice in its object; a reader may keep either value".into(),
                });
            }
            map.next_value_seed(self.at(path))?;
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(self.at(format!("{}[{i}]", self.path)))?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Lists every deviation of `event` from the spec (empty when it conforms).
pub fn validate(event: &Event) -> Vec<Deviation> {
    let mut v = Validator { out: Vec::new() };
    match event {
        Event::Run(e) => {
            v.base(&e.event_time, &e.producer, e.schema_url.as_deref());
            if let Some(EventType::Unknown(t)) = &e.event_type {
                v.push(
                    "eventType",
                    format!("{t:?} is not one of START, RUNNING, COMPLETE, ABORT, FAIL, OTHER"),
                );
            }
            if e.extra.contains_key("dataset") {
                v.push("dataset", "a run event must not carry `dataset`".into());
            }
            v.run(&e.run);
            v.job(&e.job);
            v.inputs(e.inputs());
            v.outputs(e.outputs());
        }
        Event::Dataset(e) => {
            v.base(&e.event_time, &e.producer, e.schema_url.as_deref());
            v.dataset_facets("dataset.facets", &e.dataset.facets);
        }
        Event::Job(e) => {
            v.base(&e.event_time, &e.producer, e.schema_url.as_deref());
            v.job(&e.job);
            v.inputs(e.inputs.as_deref().unwrap_or_default());
            v.outputs(e.outputs.as_deref().unwrap_or_default());
        }
    }
    v.out
}

/// Deviations of an event's JSON structure from the spec: the members it
/// requires, of the JSON types it requires, checked on the value itself. So
/// unlike [`validate`] it lists every such fault of an event that cannot be
/// read as an [`Event`] (reading stops at the first), and it sees what reading
/// forgives (`"inputs": null`, which the spec does not allow).
pub fn validate_json(value: &Value) -> Vec<Deviation> {
    let mut v = Validator { out: Vec::new() };
    let Some(event) = value.as_object() else {
        v.push("", "an event must be a JSON object".into());
        return v.out;
    };
    let kind = if event.contains_key("run") {
        "run"
    } else if event.contains_key("dataset") {
        "dataset"
    } else if event.contains_key("job") {
        "job"
    } else {
        v.push(
            "",
            "has none of `run`, `dataset` or `job`: it is no kind of event".into(),
        );
        return v.out;
    };
    for member in ["eventTime", "producer", "schemaURL"] {
        v.member(event, "", member, Json::String, true);
    }
    // Worded as `validate` words them, which says the same of an event it
    // can read.
    for member in ["producer", "schemaURL"] {
        if let Some(Value::String(text)) = event.get(member)
            && !is_uri(text)
        {
            v.push(member, format!("{text:?} is not a URI"));
        }
    }
    match kind {
        "run" => {
            v.member(event, "", "eventType", Json::String, false);
            if let Some(run) = v.member(event, "", "run", Json::Object, true) {
                v.member(run, "run", "runId", Json::String, true);
                v.member(run, "run", "facets", Json::Object, false);
            }
            v.job_json(event, true);
            v.datasets_json(event, "inputs", "inputFacets");
            v.datasets_json(event, "outputs", "outputFacets");
        }
        "dataset" => {
            if let Some(d) = v.member(event, "", "dataset", Json::Object, true) {
                v.member(d, "dataset", "namespace", Json::String, true);
                v.member(d, "dataset", "name", Json::String, true);
                v.member(d, "dataset", "facets", Json::Object, false);
            }
        }
        _ => {
            v.job_json(event, true);
            v.datasets_json(event, "inputs", "inputFacets");
            v.datasets_json(event, "outputs", "outputFacets");
        }
    }
    v.out
}

/// The JSON types the spec asks of an event's members.
#[derive(Clone, Copy, PartialEq)]
enum Json {
    String,
    Object,
    Array,
}

impl Json {
    fn name(self) -> &'static str {
        match self {
            Json::String => "a string",
            Json::Object => "an object",
            Json::Array => "an array",
        }
    }

    fn holds(self, value: &Value) -> bool {
        match self {
            Json::String => value.is_string(),
            Json::Object => value.is_object(),
            Json::Array => value.is_array(),
        }
    }
}

struct Validator {
    out: Vec<Deviation>,
}

impl Validator {
    /// `object.name`, which must be of type `kind` (and present if
    /// `required`); the member's value if it is.
    fn member<'v>(
        &mut self,
        object: &'v serde_json::Map<String, Value>,
        at: &str,
        name: &str,
        kind: Json,
        required: bool,
    ) -> Option<&'v serde_json::Map<String, Value>> {
        let path = if at.is_empty() {
            name.to_owned()
        } else {
            format!("{at}.{name}")
        };
        match object.get(name) {
            None if required => {
                self.push(
                    path,
                    format!("is missing; the spec requires {}", kind.name()),
                );
                None
            }
            None => None,
            Some(value) if kind.holds(value) => value.as_object(),
            Some(value) => {
                let shown: String = value.to_string().chars().take(60).collect();
                self.push(path, format!("{shown} is not {}", kind.name()));
                None
            }
        }
    }

    fn job_json(&mut self, event: &serde_json::Map<String, Value>, required: bool) {
        if let Some(job) = self.member(event, "", "job", Json::Object, required) {
            self.member(job, "job", "namespace", Json::String, true);
            self.member(job, "job", "name", Json::String, true);
            self.member(job, "job", "facets", Json::Object, false);
        }
    }

    fn datasets_json(&mut self, event: &serde_json::Map<String, Value>, list: &str, own: &str) {
        match event.get(list) {
            None => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{list}[{i}]");
                    let Some(d) = item.as_object() else {
                        self.push(at, "a dataset must be a JSON object".into());
                        continue;
                    };
                    self.member(d, &at, "namespace", Json::String, true);
                    self.member(d, &at, "name", Json::String, true);
                    self.member(d, &at, "facets", Json::Object, false);
                    self.member(d, &at, own, Json::Object, false);
                }
            }
            Some(other) => {
                let shown: String = other.to_string().chars().take(60).collect();
                self.push(list, format!("{shown} is not {}", Json::Array.name()));
            }
        }
    }

    fn push(&mut self, path: impl Into<String>, message: String) {
        self.out.push(Deviation {
            path: path.into(),
            message,
        });
    }

    fn base(&mut self, time: &crate::EventTime, producer: &str, schema_url: Option<&str>) {
        if !time.has_zone() {
            self.push(
                "eventTime",
                "has no time zone or offset; RFC 3339 requires one (it was read as UTC)".into(),
            );
        } else if !time.is_rfc3339() {
            self.push(
                "eventTime",
                format!(
                    "{:?} is not RFC 3339: its offset needs a colon (+hh:mm); it was read as written",
                    time.as_str()
                ),
            );
        }
        if !is_uri(producer) {
            self.push("producer", format!("{producer:?} is not a URI"));
        }
        match schema_url {
            None => self.push("schemaURL", "is missing; the spec requires it".into()),
            Some(url) if !is_uri(url) => self.push("schemaURL", format!("{url:?} is not a URI")),
            Some(_) => {}
        }
    }

    fn run(&mut self, run: &Run) {
        let facets = &run.facets;
        self.facet_bases("run.facets", facets.iter(), false);
        let p = "run.facets";
        self.typed::<ParentRunFacet, _>(p, facets);
        self.typed::<NominalTimeRunFacet, _>(p, facets);
        self.typed::<ErrorMessageRunFacet, _>(p, facets);
        self.typed::<ExecutionParametersRunFacet, _>(p, facets);
        self.typed::<EnvironmentVariablesRunFacet, _>(p, facets);
        self.typed::<ProcessingEngineRunFacet, _>(p, facets);
        self.typed::<TagsRunFacet, _>(p, facets);
        self.typed::<ProvContainerRunFacet, _>(p, facets);
        self.typed::<ProvParametersRunFacet, _>(p, facets);
        self.typed::<ProvExecutionRunFacet, _>(p, facets);
        self.typed::<ProvSoftwareRunFacet, _>(p, facets);
        self.typed::<ProvFingerprintRunFacet, _>(p, facets);
        self.typed::<ProvCacheRunFacet, _>(p, facets);
        self.typed::<ProvRerunRunFacet, _>(p, facets);
        if let Some(Ok(nominal)) = facets.get::<NominalTimeRunFacet>() {
            let start = Some(nominal.nominal_start_time.as_str());
            for (name, time) in [
                ("nominalStartTime", start),
                ("nominalEndTime", nominal.nominal_end_time.as_deref()),
            ] {
                if let Some(time) = time
                    && !is_date_time(time)
                {
                    self.push(
                        format!("{p}.nominalTime.{name}"),
                        format!("{time:?} is not an RFC 3339 date-time"),
                    );
                }
            }
        }
    }

    fn job(&mut self, job: &Job) {
        let facets = &job.facets;
        let p = "job.facets";
        self.facet_bases(p, facets.iter(), true);
        self.typed::<JobTypeJobFacet, _>(p, facets);
        self.typed::<SourceCodeLocationJobFacet, _>(p, facets);
        self.typed::<DocumentationJobFacet, _>(p, facets);
        self.typed::<OwnershipJobFacet, _>(p, facets);
        self.typed::<TagsJobFacet, _>(p, facets);
    }

    fn inputs(&mut self, inputs: &[InputDataset]) {
        for (i, input) in inputs.iter().enumerate() {
            self.dataset_facets(&format!("inputs[{i}].facets"), &input.facets);
            self.facet_bases(
                &format!("inputs[{i}].inputFacets"),
                input.input_facets.iter(),
                false,
            );
        }
    }

    fn outputs(&mut self, outputs: &[OutputDataset]) {
        for (i, output) in outputs.iter().enumerate() {
            self.dataset_facets(&format!("outputs[{i}].facets"), &output.facets);
            let p = format!("outputs[{i}].outputFacets");
            self.facet_bases(&p, output.output_facets.iter(), false);
            self.typed::<OutputStatisticsOutputDatasetFacet, _>(&p, &output.output_facets);
        }
    }

    fn dataset_facets(&mut self, p: &str, facets: &Facets<DatasetKind>) {
        self.facet_bases(p, facets.iter(), true);
        self.typed::<DatasetVersionDatasetFacet, _>(p, facets);
        self.typed::<StorageDatasetFacet, _>(p, facets);
        self.typed::<DatasetTypeDatasetFacet, _>(p, facets);
        self.typed::<SymlinksDatasetFacet, _>(p, facets);
        self.typed::<LifecycleStateChangeDatasetFacet, _>(p, facets);
        self.typed::<DocumentationDatasetFacet, _>(p, facets);
        self.typed::<OwnershipDatasetFacet, _>(p, facets);
        self.typed::<TagsDatasetFacet, _>(p, facets);
        self.typed::<ProvChecksumDatasetFacet, _>(p, facets);
        if let Some(Ok(change)) = facets.get::<LifecycleStateChangeDatasetFacet>() {
            let state = change.lifecycle_state_change.as_str();
            if !LifecycleStateChangeDatasetFacet::STATES.contains(&state) {
                self.push(
                    format!("{p}.lifecycleStateChange.lifecycleStateChange"),
                    format!(
                        "{state:?} is not one of {:?}",
                        LifecycleStateChangeDatasetFacet::STATES
                    ),
                );
            }
        }
    }

    /// Every facet is an object with `_producer` and `_schemaURL` URIs, and a
    /// boolean `_deleted` where deletion is allowed.
    fn facet_bases<'a>(
        &mut self,
        p: &str,
        facets: impl Iterator<Item = (&'a str, &'a Value)>,
        deletable: bool,
    ) {
        for (key, value) in facets {
            let here = format!("{p}.{key}");
            let Some(object) = value.as_object() else {
                self.push(here, "a facet must be a JSON object".into());
                continue;
            };
            for member in ["_producer", "_schemaURL"] {
                match object.get(member) {
                    None => self.push(
                        format!("{here}.{member}"),
                        "is missing; every facet needs it".into(),
                    ),
                    Some(Value::String(s)) if is_uri(s) => {}
                    Some(other) => {
                        self.push(format!("{here}.{member}"), format!("{other} is not a URI"))
                    }
                }
            }
            if let Some(deleted) = object.get("_deleted") {
                if !deletable {
                    self.push(
                        format!("{here}._deleted"),
                        "only job and dataset facets can be deleted".into(),
                    );
                } else if !deleted.is_boolean() {
                    self.push(
                        format!("{here}._deleted"),
                        format!("{deleted} is not a boolean"),
                    );
                }
            }
        }
    }

    /// A facet under a standard or `prov` key must match its schema's shape.
    fn typed<F: Facet<Kind = K>, K: FacetKind>(&mut self, p: &str, facets: &Facets<K>) {
        if !facets.raw(F::KEY).is_some_and(Value::is_object) {
            return; // absent, or already reported as not an object
        }
        if let Some(Err(e)) = facets.get::<F>() {
            let inner = e.source.path().to_string();
            let path = if inner == "." {
                format!("{p}.{}", F::KEY)
            } else {
                format!("{p}.{}.{inner}", F::KEY)
            };
            self.push(path, e.source.into_inner().to_string());
        }
    }
}

/// `scheme:rest` with an RFC 3986 scheme.
fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !s.contains(char::is_whitespace)
}

fn is_date_time(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_structure_of_an_event_that_cannot_be_read_is_listed_whole() {
        let found: Vec<String> = validate_json(&json!({
            "eventTime": "2024-05-01T12:00:00Z",
            "producer": 7,
            "schemaURL": "not a uri",
            "run": {"runId": "0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d31"},
            "job": {"namespace": "n"},
            "inputs": [{"namespace": "file"}, 3],
            "outputs": "x",
        }))
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            found,
            [
                "`producer`: 7 is not a string",
                "`schemaURL`: \"not a uri\" is not a URI",
                "`job.name`: is missing; the spec requires a string",
                "`inputs[0].name`: is missing; the spec requires a string",
                "`inputs[1]`: a dataset must be a JSON object",
                "`outputs`: \"x\" is not an array",
            ]
        );
        // What reading forgives, the spec does not.
        let mut event = conforming();
        event["inputs"] = Value::Null;
        event["outputs"] = Value::Null;
        assert!(Event::from_value(event.clone()).is_ok());
        let found: Vec<String> = validate_json(&event)
            .iter()
            .map(|d| d.path.clone())
            .collect();
        assert_eq!(found, ["inputs", "outputs"]);
        assert!(validate_json(&conforming()).is_empty());
        assert_eq!(validate_json(&json!([1])).len(), 1);
        assert_eq!(validate_json(&json!({"eventTime": "x"}))[0].path, "");
    }

    fn deviations(event: Value) -> Vec<String> {
        validate(&Event::from_value(event).unwrap())
            .into_iter()
            .map(|d| d.path)
            .collect()
    }

    fn conforming() -> Value {
        json!({
            "eventTime": "2024-05-01T12:00:00Z",
            "producer": "https://example.org/p",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "eventType": "COMPLETE",
            "run": {"runId": "0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d31", "facets": {
                "nominalTime": {"_producer": "https://e.org", "_schemaURL": "https://e.org/s", "nominalStartTime": "2024-05-01T00:00:00Z"}}},
            "job": {"namespace": "ns", "name": "align"},
            "inputs": [{"namespace": "file", "name": "/a.fastq"}],
            "outputs": [{"namespace": "file", "name": "/a.bam", "outputFacets": {
                "outputStatistics": {"_producer": "https://e.org", "_schemaURL": "https://e.org/s", "size": 10}}}]
        })
    }

    #[test]
    fn a_conforming_event_has_none() {
        assert_eq!(deviations(conforming()), Vec::<String>::new());
    }

    #[test]
    fn each_deviation_is_listed_with_its_path() {
        let mut e = conforming();
        e["eventTime"] = json!("2024-05-01T12:00:00");
        e.as_object_mut().unwrap().remove("schemaURL");
        e["producer"] = json!("my producer");
        e["eventType"] = json!("DONE");
        e["run"]["facets"]["nominalTime"]["nominalStartTime"] = json!("tomorrow");
        e["run"]["facets"]["parent"] = json!({"_producer": "https://e.org", "_schemaURL": "https://e.org/s",
            "run": {"runId": "nope"}, "job": {"namespace": "n", "name": "x"}});
        e["run"]["facets"]["custom"] = json!("not an object");
        e["inputs"][0]["facets"] = json!({"version": {"_producer": "https://e.org"}});
        e["outputs"][0]["outputFacets"]["outputStatistics"]["size"] = json!(-1);
        e["outputs"][0]["outputFacets"]["outputStatistics"]["_deleted"] = json!(true);
        assert_eq!(
            deviations(e),
            [
                "eventTime",
                "producer",
                "schemaURL",
                "eventType",
                "run.facets.custom",
                "run.facets.parent.run.runId",
                "run.facets.nominalTime.nominalStartTime",
                "inputs[0].facets.version._schemaURL",
                "inputs[0].facets.version",
                "outputs[0].outputFacets.outputStatistics._deleted",
                "outputs[0].outputFacets.outputStatistics.size",
            ]
        );
    }

    #[test]
    fn an_offset_without_its_colon_is_read_and_reported() {
        let mut e = conforming();
        e["eventTime"] = json!("2024-05-01T12:00:00+0000");
        let found = validate(&Event::from_value(e).unwrap());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, "eventTime");
        assert!(found[0].message.contains("needs a colon"), "{found:?}");
    }

    #[test]
    fn members_named_twice_are_found_with_their_path() {
        let text = br#"{"run": {"runId": "x", "runId": "y"}, "eventType": "START",
            "inputs": [{}, {"facets": {"a": 1, "b\u0022": 2, "a": 3}}], "eventType": "COMPLETE",
            "job": {"name": "j"}}"#;
        let found: Vec<String> = duplicate_members(text)
            .into_iter()
            .map(|d| d.path)
            .collect();
        assert_eq!(found, ["run.runId", "inputs[1].facets.a", "eventType"]);
        assert!(duplicate_members(br#"{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]}"#).is_empty());
        assert!(duplicate_members(b"not json").is_empty());
    }

    #[test]
    fn uri_check() {
        for good in [
            "https://x.org/a",
            "urn:uuid:1",
            "file:///tmp/x",
            "producer:x",
        ] {
            assert!(is_uri(good), "{good}");
        }
        for bad in ["producer", "", ":x", "1http://x", "http://a b", "http:"] {
            assert!(!is_uri(bad), "{bad}");
        }
    }
}
