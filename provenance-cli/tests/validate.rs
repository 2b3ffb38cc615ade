//! `prov validate`, run as a user would: the real binary on real example files.

use std::path::PathBuf;
use std::process::{Command, Output};

fn prov(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prov"))
        .args(args)
        .output()
        .expect("run prov")
}

fn example(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/openlineage-spec/examples")
        .join(name);
    assert!(path.is_file(), "missing example {}", path.display());
    path.to_str().unwrap().to_owned()
}

#[test]
fn conforming_events_pass() {
    let out = prov(&[
        "validate",
        &example("events/marquez-event_required_only.json"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 events checked, 0 with deviations"));
}

#[test]
fn deviations_are_listed_with_file_place_and_path_and_exit_1() {
    let file = example("events/marquez-event_required_no_timezone.json");
    let out = prov(&["validate", &file]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{file}:event 1: `eventTime`: has no time zone")),
        "{stdout}"
    );
}

#[test]
fn a_bad_run_id_names_run_run_id() {
    let file = example("compat-tests/simple_run_event__events__simple_run_event.json");
    let out = prov(&["validate", &file]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("`run.runId`: expected a UUID"), "{stdout}");
}

#[test]
fn ndjson_lines_are_numbered_and_a_missing_file_is_a_usage_error() {
    let dir = std::env::temp_dir().join(format!("prov-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = std::fs::read_to_string(example("events/marquez-event_required_only.json")).unwrap();
    let good: serde_json::Value = serde_json::from_str(&good).unwrap();
    let file = dir.join("events.ndjson");
    std::fs::write(&file, format!("{good}\n\n{{not json\n{good}\n")).unwrap();
    let out = prov(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("events.ndjson:line 3: not JSON"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 events checked, 1 with deviations"));

    let out = prov(&["validate", dir.join("absent.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.json"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_integer_a_store_would_refuse_is_a_deviation() {
    let dir = std::env::temp_dir().join(format!("prov-validate-int-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = std::fs::read_to_string(example("events/marquez-event_required_only.json")).unwrap();
    let mut event: serde_json::Value = serde_json::from_str(&good).unwrap();
    event["job"]["facets"] = serde_json::json!({"custom": {
        "_producer": "https://example.org", "_schemaURL": "https://example.org/s.json",
        "n": 1
    }});
    let text = event
        .to_string()
        .replace("\"n\":1", "\"n\":18446744073709551616");
    let file = dir.join("bigint.json");
    std::fs::write(&file, text).unwrap();
    let out = prov(&["validate", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("the integer 18446744073709551616 (at byte"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_member_named_twice_is_a_deviation() {
    let dir = std::env::temp_dir().join(format!("prov-validate-dup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = std::fs::read_to_string(example("events/marquez-event_required_only.json")).unwrap();
    let event: serde_json::Value = serde_json::from_str(&good).unwrap();
    let text = event.to_string();
    // The run id given twice: the first is not a UUID, the last is.
    let text = text.replacen("\"runId\":", "\"runId\":\"not-a-uuid\",\"runId\":", 1);
    let file = dir.join("dup.json");
    std::fs::write(&file, text).unwrap();
    let out = prov(&["validate", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("`run.runId`: is named twice"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every fault of an event is listed, also when it cannot be read as an
/// event (reading stops at the first), each once; `"inputs": null`, which
/// reading forgives, is a deviation.
#[test]
fn every_fault_is_listed_once_even_in_an_event_that_cannot_be_read() {
    let dir = std::env::temp_dir().join(format!("prov-validate-all-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.ndjson");
    let run = r#""run":{"runId":"0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d31"},"job":{"namespace":"n","name":"j"}"#;
    std::fs::write(
        &file,
        format!(
            "{{\"eventTime\":\"2024-05-01T12:00:00Z\",\"producer\":\"bad producer\",\"schemaURL\":\"nope\",{run},\"inputs\":[{{\"namespace\":\"file\"}}],\"outputs\":\"x\"}}\n\
             {{\"eventTime\":\"2024-05-01T12:00:00Z\",\"producer\":\"bad producer\",\"schemaURL\":\"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent\",{run},\"inputs\":null}}\n"
        ),
    )
    .unwrap();
    let out = prov(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let at = |n: usize| format!("{}:line {n}: ", file.display());
    assert_eq!(
        lines,
        [
            format!("{}`producer`: \"bad producer\" is not a URI", at(1)),
            format!("{}`schemaURL`: \"nope\" is not a URI", at(1)),
            format!(
                "{}`inputs[0].name`: is missing; the spec requires a string",
                at(1)
            ),
            format!("{}`outputs`: \"x\" is not an array", at(1)),
            format!("{}`producer`: \"bad producer\" is not a URI", at(2)),
            format!("{}`inputs`: null is not an array", at(2)),
        ],
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
