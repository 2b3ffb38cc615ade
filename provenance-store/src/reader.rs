//! The fast reader of ingest: one pass over the bytes into a borrowed tree,
//! from which the event's identity and what the store derives are both taken.
//!
//! The full reader (`normalize::prepare_full`) builds a `serde_json::Value`,
//! serializes it again for the identity, and converts it into the typed
//! `Event`, allocating every string three times. This one allocates a vector
//! per object and array, and a string only where the JSON escapes one.
//!
//! It only ever says yes to a run event whose envelope is plainly well formed
//! (the members the full reader types: times, ids, names, facet maps), and
//! then derives exactly what the full reader would: the tests compare both on
//! every example event and on every kind of damage to an envelope. Anything
//! else (dataset and job events, a member of the wrong type, an unknown event
//! type) goes to the full reader, which decides, and names the error.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};

use provenance_core::{EventTime, EventType, RunId};
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;
#[cfg(test)]
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::normalize::{
    Body, DatasetPart, Node, Prepared, RunPart, columns, content_hash, dataset,
};

/// A JSON value whose strings borrow from the input where they can.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Num(Number),
    Str(Cow<'a, str>),
    Arr(Vec<Json<'a>>),
    /// Members in the order received, duplicates kept (the last one counts,
    /// as in a `serde_json::Value`).
    Obj(Vec<(Cow<'a, str>, Json<'a>)>),
}

thread_local! {
    /// Whether the event being read held a number read as a double (a
    /// decimal, or an integer too large for 64 bits).
    static AS_DOUBLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The identity text of the event being read, kept between events.
    static IDENTITY: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads a well-formed run event (its bytes are not copied: `raw` is
/// empty); `None` sends it to the full reader.
pub(crate) fn prepare_fast(raw: &[u8]) -> Option<Prepared> {
    AS_DOUBLE.set(false);
    let tree: Json<'_> = serde_json::from_slice(raw).ok()?;
    // An integer read as a double was rounded: the full reader refuses it.
    if AS_DOUBLE.get() && crate::normalize::inexact_integer(raw).is_err() {
        return None;
    }
    let event = run_event(&tree)?;
    let (event_id, content) = IDENTITY.with_borrow_mut(|identity| {
        identity.clear();
        write_canonical(&tree, identity).ok()?;
        let id = provenance_core::hex(&Sha256::digest(identity.as_slice()));
        let content = content_hash(raw, identity, &id);
        Some((id, content))
    })?;
    Some(Prepared {
        raw: Vec::new(),
        packed: None,
        content,
        event_id,
        kind: "run",
        run_id: Some(event.run_id.clone()),
        time: event.time,
        body: Body::Run(Box::new(event.part)),
    })
}

struct FastRun {
    run_id: String,
    time: i64,
    part: RunPart,
}

/// The envelope checks of a run event, as `Event::from_value` makes them.
fn run_event(tree: &Json<'_>) -> Option<FastRun> {
    let top = tree.members()?;
    let run = last_member(top, "run")?.members()?;
    let job = last_member(top, "job")?.members()?;
    let time = EventTime::parse(last_member(top, "eventTime")?.text()?).ok()?;
    last_member(top, "producer")?.text()?;
    optional_text(top, "schemaURL")?;
    let event_type = match optional_text(top, "eventType")? {
        None => None,
        Some(t) => match EventType::from(t) {
            EventType::Unknown(_) => return None,
            known => Some(known),
        },
    };
    let run_id: RunId = last_member(run, "runId")?.text()?.parse().ok()?;
    let run_facets = facets(run, "facets")?;
    let namespace = last_member(job, "namespace")?.text()?;
    let name = last_member(job, "name")?.text()?;
    facets(job, "facets")?;
    let inputs = datasets(top, "inputs", "inputFacets")?;
    let outputs = datasets(top, "outputs", "outputFacets")?;
    let run_id = run_id.to_string();
    Some(FastRun {
        run_id: run_id.clone(),
        time: time.instant().timestamp_micros(),
        part: RunPart {
            namespace: namespace.to_owned(),
            job: name.to_owned(),
            run_id,
            event_type,
            columns: columns(|name| last_member(run_facets, name)),
            inputs,
            outputs,
        },
    })
}

/// `inputs` or `outputs`: absent or null (none), or an array of datasets.
fn datasets(
    top: &[(Cow<'_, str>, Json<'_>)],
    key: &str,
    own_facets: &str,
) -> Option<Vec<DatasetPart>> {
    let list = match last_member(top, key) {
        None | Some(Json::Null) => return Some(Vec::new()),
        Some(Json::Arr(list)) => list,
        Some(_) => return None,
    };
    list.iter()
        .map(|d| {
            let d = d.members()?;
            let namespace = last_member(d, "namespace")?.text()?;
            let name = last_member(d, "name")?.text()?;
            let read = facets(d, "facets")?;
            facets(d, own_facets)?;
            Some(dataset(namespace, name, |f| last_member(read, f)))
        })
        .collect()
}

/// A facets member: absent (none), or an object of facets.
fn facets<'t, 'a>(
    members: &'t [(Cow<'a, str>, Json<'a>)],
    key: &str,
) -> Option<&'t [(Cow<'a, str>, Json<'a>)]> {
    match last_member(members, key) {
        None => Some(&[]),
        Some(found) => found.members(),
    }
}

/// The last member called `key` (the last of repeated ones counts).
fn last_member<'t, 'a>(members: &'t [(Cow<'a, str>, Json<'a>)], key: &str) -> Option<&'t Json<'a>> {
    members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// A member that may be absent or null, else must be a string: `None` for a
/// wrong type, `Some(None)` for nothing.
fn optional_text<'t>(
    members: &'t [(Cow<'_, str>, Json<'_>)],
    key: &str,
) -> Option<Option<&'t str>> {
    match last_member(members, key) {
        None | Some(Json::Null) => Some(None),
        Some(Json::Str(s)) => Some(Some(s)),
        Some(_) => None,
    }
}

impl Node for Json<'_> {
    fn member(&self, key: &str) -> Option<&Self> {
        last_member(self.members()?, key)
    }
    fn text(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
    fn int(&self) -> Option<i64> {
        match self {
            Json::Num(n) => n.as_i64(),
            _ => None,
        }
    }
    fn unsigned(&self) -> Option<u64> {
        match self {
            Json::Num(n) => n.as_u64(),
            _ => None,
        }
    }
}

impl<'a> Json<'a> {
    fn members(&self) -> Option<&[(Cow<'a, str>, Json<'a>)]> {
        match self {
            Json::Obj(m) => Some(m),
            _ => None,
        }
    }

    /// The same value as a `serde_json::Value` (the last of duplicate members).
    #[cfg(test)]
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Num(n) => Value::Number(n.clone()),
            Json::Str(s) => Value::String(s.clone().into_owned()),
            Json::Arr(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Obj(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone().into_owned(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

/// Writes the text `serde_json::to_vec` gives for the same value read into a
/// `serde_json::Value`: compact, members sorted by name, the last of
/// duplicates kept, strings and numbers written as serde_json writes them.
pub(crate) fn write_canonical(json: &Json<'_>, out: &mut Vec<u8>) -> io::Result<()> {
    match json {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(true) => out.extend_from_slice(b"true"),
        Json::Bool(false) => out.extend_from_slice(b"false"),
        Json::Num(n) => serde_json::to_writer(&mut *out, n).map_err(io::Error::other)?,
        Json::Str(s) => write_str(s, out)?,
        Json::Arr(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        Json::Obj(members) if members.windows(2).all(|m| m[0].0 < m[1].0) => {
            // Already in order, without repeats.
            out.push(b'{');
            for (i, (name, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(name, out)?;
                out.push(b':');
                write_canonical(value, out)?;
            }
            out.push(b'}');
        }
        Json::Obj(members) => {
            // Sorted by name, and for a repeated name the last one first,
            // so that the first of each run of equal names is the one kept.
            let mut order: Vec<usize> = (0..members.len()).collect();
            order.sort_by(|&a, &b| members[a].0.cmp(&members[b].0).then(b.cmp(&a)));
            out.push(b'{');
            let mut previous: Option<&str> = None;
            for i in order {
                let (name, value) = &members[i];
                if previous == Some(name.as_ref()) {
                    continue;
                }
                if previous.is_some() {
                    out.push(b',');
                }
                previous = Some(name);
                write_str(name, out)?;
                out.push(b':');
                write_canonical(value, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

#[allow(clippy::ptr_arg)] // whether the text is borrowed is what matters here
fn write_str(s: &Cow<'_, str>, out: &mut Vec<u8>) -> io::Result<()> {
    // A borrowed string is the bytes received between its quotes, which
    // serde_json lends only when they hold no escape (and JSON allows no raw
    // control character, quote or backslash): nothing to escape. A string
    // that had escapes was unescaped into an owned one and is looked at.
    let plain = match s {
        Cow::Borrowed(text) => {
            debug_assert!(!text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'));
            true
        }
        Cow::Owned(text) => !text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'),
    };
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return Ok(());
    }
    serde_json::to_writer(&mut *out as &mut dyn Write, s).map_err(io::Error::other)
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Num(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Num(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json<'de>, E> {
        AS_DOUBLE.set(true);
        // As serde_json's Value does: a number it cannot hold is null.
        Ok(Number::from_f64(v).map_or(Json::Null, Json::Num))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        Json::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Arr(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(key) = map.next_key_seed(KeySeed)? {
            members.push((key, map.next_value()?));
        }
        Ok(Json::Obj(members))
    }
}

/// A member name, borrowed when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::prepare_full;
    use serde_json::json;
    use std::path::PathBuf;

    /// Both readers on the same bytes: where the fast one answers, it
    /// answers exactly as the full one. Returns whether the fast one did.
    fn same_as_full(raw: &[u8]) -> bool {
        let full = prepare_full(raw);
        match prepare_fast(raw) {
            None => false,
            Some(fast) => {
                let text = String::from_utf8_lossy(raw);
                match full {
                    Ok(full) => assert_eq!(fast, full, "{text}"),
                    Err(e) => {
                        panic!("the fast reader took what the full one refuses ({e}): {text}")
                    }
                }
                true
            }
        }
    }

    fn example_events() -> Vec<Vec<u8>> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/openlineage-spec/examples");
        let mut out = Vec::new();
        for folder in ["events", "compat-tests", "marquez-apples", "spec-tests"] {
            for entry in std::fs::read_dir(root.join(folder)).unwrap() {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                if serde_json::from_slice::<Value>(&bytes)
                    .is_ok_and(|v| v.get("eventTime").is_some())
                {
                    out.push(bytes);
                }
            }
        }
        assert!(out.len() > 60, "{} example events", out.len());
        out
    }

    /// A run event with every facet the store reads, in our producer's shape.
    fn ours() -> Value {
        let checksum = |hex: &str| {
            json!({"_producer": "p", "_schemaURL": "s", "kind": "file", "size": 42,
                   "checksums": {"sha-256": hex, "md5": "0123"}})
        };
        json!({
            "eventTime": "2025-10-09T08:53:20.000000Z",
            "producer": "https://example.org/p",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "eventType": "COMPLETE",
            "run": {"runId": "01900000-0000-7000-8000-000000000100", "facets": {
                "parent": {"_producer": "p", "_schemaURL": "s",
                    "run": {"runId": "01900000-0000-7000-8000-00000000000A"},
                    "job": {"namespace": "g", "name": "wgs"},
                    "root": {"run": {"runId": "01900000-0000-7000-8000-00000000000B"},
                             "job": {"namespace": "g", "name": "wgs"}}},
                "prov_container": {"_producer": "p", "_schemaURL": "s", "image": "quay.io/x/bwa:1",
                    "registry": "quay.io", "repository": "x/bwa", "tag": "1",
                    "digest": "sha256:00aa", "pinned": true, "runtime": "docker"},
                "prov_fingerprint": {"_producer": "p", "_schemaURL": "s", "sha256": "ff00", "scheme": "x"},
                "prov_parameters": {"_producer": "p", "_schemaURL": "s", "sha256": "ab", "parameters": {}},
                "prov_execution": {"_producer": "p", "_schemaURL": "s", "exitCode": 0,
                    "user": "u", "host": "h", "argv": ["bwa"]}
            }},
            "job": {"namespace": "genomics", "name": "bwa_mem", "facets": {}},
            "inputs": [
                {"namespace": "file", "name": "/data/r1.fq", "facets": {
                    "version": {"_producer": "p", "_schemaURL": "s", "datasetVersion": format!("sha256:{}", "A".repeat(64))},
                    "prov_checksum": checksum(&"a".repeat(64))}},
                {"namespace": "file", "name": "/data/r2.fq", "facets": {
                    "version": {"_producer": "p", "_schemaURL": "s", "datasetVersion": format!("sha256:{}", "B".repeat(64))}}},
                {"namespace": "s3://bucket", "name": "ref.fa", "facets": {
                    "version": {"_producer": "p", "_schemaURL": "s", "datasetVersion": "v7"}}},
                {"namespace": "file", "name": "/data/plain"}
            ],
            "outputs": [
                {"namespace": "file", "name": "/out/x.bam", "facets": {"prov_checksum": checksum(&"c".repeat(64))},
                 "outputFacets": {}}
            ]
        })
    }

    #[test]
    fn the_fast_reader_agrees_with_the_full_one_on_every_example() {
        let mut fast = 0;
        for raw in example_events() {
            fast += usize::from(same_as_full(&raw));
        }
        // Most examples are well-formed run events and take the fast path.
        assert!(fast > 40, "only {fast} took the fast path");
        assert!(same_as_full(&serde_json::to_vec(&ours()).unwrap()));
        assert!(same_as_full(&serde_json::to_vec_pretty(&ours()).unwrap()));
    }

    /// Every member the readers look at, damaged every way JSON allows.
    #[test]
    fn the_fast_reader_agrees_with_the_full_one_on_damaged_events() {
        let paths: &[&[&str]] = &[
            &["eventTime"],
            &["producer"],
            &["schemaURL"],
            &["eventType"],
            &["run"],
            &["run", "runId"],
            &["run", "facets"],
            &["run", "facets", "parent"],
            &["run", "facets", "parent", "run", "runId"],
            &["run", "facets", "parent", "root", "run", "runId"],
            &["run", "facets", "prov_container", "digest"],
            &["run", "facets", "prov_fingerprint", "sha256"],
            &["run", "facets", "prov_parameters", "sha256"],
            &["run", "facets", "prov_execution", "exitCode"],
            &["run", "facets", "prov_execution", "user"],
            &["job"],
            &["job", "namespace"],
            &["job", "name"],
            &["job", "facets"],
            &["inputs"],
            &["outputs"],
            &["outputs", "0"],
            &["outputs", "0", "outputFacets"],
            &["inputs", "0", "namespace"],
            &["inputs", "0", "name"],
            &["inputs", "0", "facets"],
            &["inputs", "0", "inputFacets"],
            &["inputs", "0", "facets", "version"],
            &["inputs", "0", "facets", "version", "datasetVersion"],
            &["inputs", "0", "facets", "prov_checksum"],
            &["inputs", "0", "facets", "prov_checksum", "size"],
            &["inputs", "0", "facets", "prov_checksum", "checksums"],
            &[
                "inputs",
                "0",
                "facets",
                "prov_checksum",
                "checksums",
                "sha-256",
            ],
            &["inputs", "1", "facets", "version", "datasetVersion"],
        ];
        let damages = [
            None,
            Some(Value::Null),
            Some(json!(5)),
            Some(json!(-1)),
            Some(json!(1.5)),
            Some(json!("text")),
            Some(json!("2025-10-09T08:53:20Z")),
            Some(json!("01900000-0000-7000-8000-0000000000FF")),
            Some(json!("UNKNOWN")),
            Some(json!("sha256:".to_owned() + &"d".repeat(64))),
            Some(json!(true)),
            Some(json!([])),
            Some(json!({})),
        ];
        let mut fast = 0;
        let mut cases = 0;
        for path in paths {
            for damage in &damages {
                let mut event = ours();
                let (last, parents) = path.split_last().unwrap();
                let mut at = &mut event;
                for key in parents {
                    at = match at {
                        Value::Array(items) => &mut items[key.parse::<usize>().unwrap()],
                        other => other.get_mut(*key).unwrap(),
                    };
                }
                match (at, damage) {
                    (Value::Array(items), None) => {
                        items.remove(last.parse::<usize>().unwrap());
                    }
                    (Value::Array(items), Some(v)) => {
                        items[last.parse::<usize>().unwrap()] = v.clone()
                    }
                    (Value::Object(members), None) => {
                        members.remove(*last);
                    }
                    (Value::Object(members), Some(v)) => {
                        members.insert(last.to_string(), v.clone());
                    }
                    (other, _) => panic!("{path:?} is inside {other}"),
                }
                cases += 1;
                fast += usize::from(same_as_full(&serde_json::to_vec(&event).unwrap()));
            }
        }
        // Both ways are exercised: much is refused by the fast reader, and
        // much (damage to facets it only reads) is taken.
        assert!(
            fast > cases / 3 && fast < cases,
            "{fast} of {cases} took the fast path"
        );
    }

    #[test]
    fn repeated_members_and_escapes_are_read_as_the_full_reader_reads_them() {
        let base = serde_json::to_string(&ours()).unwrap();
        let texts = [
            // The last of a repeated member counts.
            base.replacen(
                r#""eventType":"COMPLETE""#,
                r#""eventType":"START","eventType":"COMPLETE""#,
                1,
            ),
            base.replacen(
                r#""eventType":"COMPLETE""#,
                r#""eventType":"COMPLETE","eventType":"FAIL""#,
                1,
            ),
            base.replacen(
                r#""name":"bwa_mem""#,
                r#""name":"first","name":"bwa\u005fmem""#,
                1,
            ),
            // Escaped names and values.
            base.replacen(r#""/data/r1.fq""#, r#""/data/r\u0031.fq\n\"x\"""#, 1),
            base.replacen(r#""user":"u""#, r#""user":"\ud83d\ude00 caf\u00e9""#, 1),
            base.replacen(r#""job":{"#, r#""j\u006fb":{"#, 1),
        ];
        for text in &texts {
            assert_ne!(text, &base);
            assert!(same_as_full(text.as_bytes()), "{text}");
        }
    }

    /// The canonical text is serde_json's for the same value, whatever the
    /// spacing, order, repetition, escapes and number spellings.
    #[test]
    fn bytes_in_canonical_form_share_their_identity_hash_and_no_others_do() {
        use provenance_core::{Event, Job, Run, RunEvent, RunId};
        let sha = |bytes: &[u8]| provenance_core::hex(&Sha256::digest(bytes));
        // An event as provenance-core writes it is in canonical form.
        let ours = Event::Run(RunEvent::new(
            EventType::Complete,
            Run::new(RunId::new_v7()),
            Job::new("genomics", "bwa_mem"),
        ))
        .to_json()
        .into_bytes();
        let mut raws = vec![ours.clone()];
        for raw in example_events() {
            // Each example as sent (spaced, in its own order), and canonical.
            let value: Value = serde_json::from_slice(&raw).unwrap();
            raws.push(serde_json::to_vec(&value).unwrap());
            raws.push(raw);
        }
        let (mut read, mut shared) = (0, 0);
        for raw in &raws {
            let Ok(full) = prepare_full(raw) else {
                continue; // the example whose run id is not a UUID
            };
            let canonical =
                serde_json::to_vec(&serde_json::from_slice::<Value>(raw).unwrap()).unwrap();
            for p in prepare_fast(raw).iter().chain([&full]) {
                // The content hash is always that of the bytes; it is the
                // identity hash exactly when the bytes are the identity text.
                assert_eq!(p.content, sha(raw));
                assert_eq!(p.event_id, full.event_id);
                assert_eq!(p.content == p.event_id, canonical == *raw);
            }
            read += 1;
            shared += usize::from(full.content == full.event_id);
        }
        let ours = prepare_fast(&ours).unwrap();
        assert_eq!(ours.content, ours.event_id);
        // Ours and the canonical copy of each example.
        assert_eq!(shared, 1 + (read - 1) / 2);
    }

    #[test]
    fn the_identity_text_is_serde_jsons_text_of_the_value() {
        let mut texts: Vec<String> = vec![
            r#"{"b":1,"a":[1,2,{"d":null,"c":true}],"a":false}"#.into(),
            r#"[0, -0, 1.0, 1e2, 1E-7, -2.5e-3, 12345678901234567890, -9223372036854775808, 1.5e300, 0.1, 18446744073709551616]"#.into(),
            r#"["\"", "\\", "\/", "\b\f\n\r\t", "\u0000\u001f", "\u00e9", "\ud83d\ude00", "é", "\u007f", "plain"]"#.into(),
            r#"{"\u0061":1, "a":2, "é":3, "e":4, "":5, "A":6}"#.into(),
            "  {\n \"x\" :\t[ ] , \"y\":{ } }  ".into(),
            r#""text""#.into(),
            "null".into(),
        ];
        for raw in example_events() {
            texts.push(String::from_utf8(raw).unwrap());
        }
        // Random documents from a fixed seed.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for _ in 0..300 {
            texts.push(random_json(&mut next, 0));
        }
        for text in &texts {
            let ours: Json<'_> = serde_json::from_str(text).unwrap();
            let mut canonical = Vec::new();
            write_canonical(&ours, &mut canonical).unwrap();
            let theirs = serde_json::to_vec(&serde_json::from_str::<Value>(text).unwrap()).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&canonical),
                String::from_utf8_lossy(&theirs),
                "{text}"
            );
            assert_eq!(
                ours.to_value(),
                serde_json::from_str::<Value>(text).unwrap()
            );
        }
    }

    fn random_json(next: &mut impl FnMut(u64) -> u64, depth: u32) -> String {
        let strings = [
            "a",
            "b",
            "\\u00e9",
            "\\n",
            "k\\\"",
            "zz",
            "\\ud83d\\ude00",
            "é",
            "",
        ];
        let numbers = [
            "0",
            "-1",
            "2.50",
            "1e3",
            "-0.0",
            "99999999999999999999",
            "7",
        ];
        match if depth > 3 { next(4) } else { next(6) } {
            0 => "null".into(),
            1 => numbers[next(numbers.len() as u64) as usize].into(),
            2 => format!("\"{}\"", strings[next(strings.len() as u64) as usize]),
            3 => ["true", "false"][next(2) as usize].into(),
            4 => {
                let items: Vec<String> =
                    (0..next(4)).map(|_| random_json(next, depth + 1)).collect();
                format!("[{}]", items.join(","))
            }
            _ => {
                let members: Vec<String> = (0..next(5))
                    .map(|_| {
                        let key = strings[next(strings.len() as u64) as usize];
                        format!("\"{key}\" : {}", random_json(next, depth + 1))
                    })
                    .collect();
                format!("{{{}}}", members.join(" ,"))
            }
        }
    }
}
