//! Story: events from real producers (Marquez, the Python client, Airflow, Spark,
//! the spec's own tests) read into the model and write back as the same JSON.

use std::path::PathBuf;

use provenance_core::facets::*;
use provenance_core::{Event, validate};
use provenance_tests::{json_files, read_json, spec_dir};
use serde_json::Value;

/// Every example file whose top level is an event (an object with `eventTime`).
fn example_events() -> Vec<(PathBuf, Value)> {
    let examples = spec_dir().join("examples");
    let mut events = Vec::new();
    for folder in ["events", "compat-tests", "marquez-apples", "spec-tests"] {
        for file in json_files(&examples.join(folder)) {
            let value = read_json(&file);
            if value.get("eventTime").is_some() {
                events.push((file, value));
            }
        }
    }
    events
}

fn is_simple_run_event(path: &std::path::Path) -> bool {
    path.ends_with("simple_run_event__events__simple_run_event.json")
}

#[test]
fn every_example_event_round_trips_to_the_same_json_value() {
    let events = example_events();
    assert!(
        events.len() >= 60,
        "only {} example events found",
        events.len()
    );
    let mut round_tripped = 0;
    for (path, original) in &events {
        if is_simple_run_event(path) {
            continue; // its runId is not a UUID: see the next test
        }
        let event = Event::from_value(original.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            &event.to_value(),
            original,
            "{} changed in a round trip",
            path.display()
        );
        // Through text too, as the store and the transports will do: the text
        // written is the same JSON value, in its canonical form (serde_json's
        // text of the value: compact, members sorted), which is what a store
        // hashes for the event's identity.
        let text = event.to_json();
        let written: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(&written, original, "{} written as text", path.display());
        assert_eq!(
            text,
            serde_json::to_string(original).unwrap(),
            "{} written canonically",
            path.display()
        );
        let again = Event::from_slice(text.as_bytes()).unwrap();
        assert_eq!(again, event, "{}", path.display());
        round_tripped += 1;
    }
    assert_eq!(round_tripped, events.len() - 1);
}

#[test]
fn a_run_id_that_is_not_a_uuid_is_refused_naming_run_run_id() {
    let (path, original) = example_events()
        .into_iter()
        .find(|(p, _)| is_simple_run_event(p))
        .expect("the compat-tests simple_run_event example is present");
    let err = Event::from_value(original).unwrap_err();
    assert_eq!(err.path(), Some("run.runId"), "{}: {err}", path.display());
    assert!(err.to_string().contains("\"run_id\""), "{err}");
}

#[test]
fn the_kinds_are_told_apart() {
    let kind = |name: &str| {
        let path = spec_dir().join("examples/events").join(name);
        match Event::from_value(read_json(&path)).unwrap() {
            Event::Run(_) => "run",
            Event::Dataset(_) => "dataset",
            Event::Job(_) => "job",
        }
    };
    assert_eq!(kind("marquez-event_full.json"), "run");
    assert_eq!(kind("marquez-event_dataset_event.json"), "dataset");
    assert_eq!(kind("serde_example_dataset_event.json"), "dataset");
    assert_eq!(kind("marquez-event_job_event.json"), "job");
    assert_eq!(kind("serde_example_job_event.json"), "job");
}

#[test]
fn lenient_reading_is_reported_by_validate() {
    let deviations = |name: &str| -> Vec<String> {
        let path = spec_dir().join("examples/events").join(name);
        let event = Event::from_value(read_json(&path)).unwrap();
        validate(&event).into_iter().map(|d| d.path).collect()
    };
    assert!(
        deviations("marquez-event_required_no_timezone.json").contains(&"eventTime".to_owned())
    );
    assert!(deviations("marquez-event_without_schema_url.json").contains(&"schemaURL".to_owned()));
    assert_eq!(
        deviations("marquez-event_required_nanoseconds.json"),
        Vec::<String>::new()
    );
    assert_eq!(
        deviations("marquez-event_required_only.json"),
        Vec::<String>::new()
    );
}

/// Reads the facet under `F::KEY` of a spec-tests container through the typed
/// view, writes it back, and expects the same JSON.
fn typed_round_trip<F: Facet>(file: &str) {
    let path = spec_dir().join("examples/spec-tests").join(file);
    let container = read_json(&path);
    let raw = container[F::KEY].clone();
    let typed: F = serde_json::from_value(raw.clone())
        .unwrap_or_else(|e| panic!("{file}: typed {} does not read: {e}", F::KEY));
    assert_eq!(serde_json::to_value(&typed).unwrap(), raw, "{file}");
}

#[test]
fn typed_standard_facets_read_the_spec_test_examples() {
    typed_round_trip::<ParentRunFacet>("ParentRunFacet__1.json");
    typed_round_trip::<ParentRunFacet>("ParentRunFacet__2.json");
    typed_round_trip::<NominalTimeRunFacet>("NominalTimeRunFacet__1.json");
    typed_round_trip::<ErrorMessageRunFacet>("ErrorMessageRunFacet__1.json");
    typed_round_trip::<EnvironmentVariablesRunFacet>("EnvironmentVariablesRunFacet__1.json");
    typed_round_trip::<ProcessingEngineRunFacet>("ProcessingEngineRunFacet__1.json");
    typed_round_trip::<TagsRunFacet>("TagsRunFacet__1.json");
    typed_round_trip::<JobTypeJobFacet>("JobTypeJobFacet__1.json");
    typed_round_trip::<JobTypeJobFacet>("JobTypeJobFacet__2.json");
    typed_round_trip::<JobTypeJobFacet>("JobTypeJobFacet__3.json");
    typed_round_trip::<SourceCodeLocationJobFacet>("SourceCodeLocationJobFacet__1.json");
    typed_round_trip::<DocumentationJobFacet>("DocumentationJobFacet__1.json");
    typed_round_trip::<OwnershipJobFacet>("OwnershipJobFacet__1.json");
    typed_round_trip::<TagsJobFacet>("TagsJobFacet__1.json");
    typed_round_trip::<DatasetVersionDatasetFacet>("DatasetVersionDatasetFacet__1.json");
    typed_round_trip::<StorageDatasetFacet>("StorageDatasetFacet__1.json");
    typed_round_trip::<DatasetTypeDatasetFacet>("DatasetTypeDatasetFacet__1.json");
    typed_round_trip::<SymlinksDatasetFacet>("SymlinksDatasetFacet__1.json");
    typed_round_trip::<LifecycleStateChangeDatasetFacet>(
        "LifecycleStateChangeDatasetFacet__1.json",
    );
    typed_round_trip::<DocumentationDatasetFacet>("DocumentationDatasetFacet__1.json");
    typed_round_trip::<OwnershipDatasetFacet>("OwnershipDatasetFacet__1.json");
    typed_round_trip::<TagsDatasetFacet>("TagsDatasetFacet__1.json");
    typed_round_trip::<OutputStatisticsOutputDatasetFacet>(
        "OutputStatisticsOutputDatasetFacet__1.json",
    );
}

#[test]
fn typed_facets_in_real_events_read_through_the_model() {
    let mut read = std::collections::BTreeMap::<&str, usize>::new();
    for (path, value) in example_events() {
        let Ok(Event::Run(event)) = Event::from_value(value) else {
            continue;
        };
        let name = path.display();
        let run = &event.run.facets;
        let job = &event.job.facets;
        if let Some(parent) = run.get::<ParentRunFacet>() {
            let parent = parent.unwrap_or_else(|e| panic!("{name}: {e}: {}", e.source));
            assert!(!parent.job.name.is_empty(), "{name}");
            *read.entry("parent").or_default() += 1;
        }
        if let Some(nominal) = run.get::<NominalTimeRunFacet>() {
            nominal.unwrap_or_else(|e| panic!("{name}: {e}"));
            *read.entry("nominalTime").or_default() += 1;
        }
        if let Some(engine) = run.get::<ProcessingEngineRunFacet>() {
            assert!(
                !engine
                    .unwrap_or_else(|e| panic!("{name}: {e}"))
                    .version
                    .is_empty()
            );
            *read.entry("processing_engine").or_default() += 1;
        }
        if let Some(job_type) = job.get::<JobTypeJobFacet>() {
            job_type.unwrap_or_else(|e| panic!("{name}: {e}"));
            *read.entry("jobType").or_default() += 1;
        }
    }
    // The examples hold many of each: a count of 0 would mean the typed view is never exercised.
    for key in ["parent", "nominalTime", "processing_engine", "jobType"] {
        assert!(read.get(key).copied().unwrap_or(0) >= 5, "{key}: {read:?}");
    }
}
