//! The lineage graph as a W3C PROV document in PROV-JSON (the W3C member
//! submission), for tools that speak PROV rather than OpenLineage.
//!
//! The mapping:
//! - each run is an `activity` (`run:<uuid>`, the prefix `run` standing for
//!   `urn:uuid:`), with its times, job, state, exit code, command, parameters
//!   and software as attributes;
//! - each dataset version is an `entity`, one per version, so a path that was
//!   overwritten gives two entities, each with its own sha-256;
//! - an edge from a version to a run is `used`, from a run to a version
//!   `wasGeneratedBy`, and each output of a run `wasDerivedFrom` each of its
//!   inputs through that run;
//! - the container image (by digest when known) is a `prov:SoftwareAgent` and
//!   the user a `prov:Person`, both `wasAssociatedWith` the run;
//! - a task's parent run `wasStartedBy` relation names the parent as the
//!   starter, so pipeline -> task trees survive.
//!
//! Identifiers keep this crate's node ids, with every character outside
//! `A-Z a-z 0-9 - . _ ~ /` percent-encoded so that they are valid PROV
//! qualified names. Values that are lists or objects (a command line, the
//! parameters) are given as JSON text, since PROV attribute values are
//! literals and a list would lose its order.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::model::{LineageGraph, Node};

/// The namespace of this project's PROV attributes and types.
pub const PROV_NAMESPACE: &str = "https://genomics-provenance.github.io/provenance/ns#";

/// Where dataset-version entity ids live.
const DATASET_NAMESPACE: &str = "https://genomics-provenance.github.io/provenance/ns/dataset/";

/// Where container-image agent ids live.
const IMAGE_NAMESPACE: &str = "https://genomics-provenance.github.io/provenance/ns/image/";

/// Where user agent ids live.
const USER_NAMESPACE: &str = "https://genomics-provenance.github.io/provenance/ns/user/";

/// `text` with every byte that is not an ASCII letter or digit, nor in
/// `keep`, percent-encoded (shared with the RO-Crate export).
pub(crate) fn percent_encoded(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || keep.contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `text` with every byte outside `A-Z a-z 0-9 - . _ ~ /` percent-encoded:
/// a valid local part of a PROV qualified name.
fn local_part(text: &str) -> String {
    percent_encoded(text, b"-._~/")
}

/// A PROV qualified name: `prefix:local`, the local part encoded.
fn qualified(prefix: &str, local: &str) -> String {
    format!("{prefix}:{}", local_part(local))
}

/// The PROV id of a graph node: `run:<uuid>` or `dataset:<encoded rest>`.
fn node_id(node: &Node) -> String {
    match node.kind {
        "RUN" => qualified("run", node.data["runId"].as_str().unwrap_or(&node.id)),
        _ => qualified(
            "dataset",
            node.id.strip_prefix("dataset:").unwrap_or(&node.id),
        ),
    }
}

/// An RFC 3339 time from microseconds since the epoch.
fn time(micros: &Value) -> Option<Value> {
    let t = chrono::DateTime::from_timestamp_micros(micros.as_i64()?)?;
    Some(
        t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            .into(),
    )
}

/// A value typed as a PROV qualified name.
fn qname(name: &str) -> Value {
    json!({"$": name, "type": "prov:QUALIFIED_NAME"})
}

/// Adds `value` under `key` when it is a string, number or boolean.
fn put(attrs: &mut Map<String, Value>, key: &str, value: &Value) {
    if matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
        attrs.insert(key.to_owned(), value.clone());
    }
}

/// Builds the document one record at a time; relation ids are blank nodes
/// numbered in order, so the same graph always gives the same text.
#[derive(Default)]
struct Document {
    sections: BTreeMap<&'static str, Map<String, Value>>,
    relations: usize,
}

impl Document {
    fn declare(&mut self, section: &'static str, id: String, attrs: Map<String, Value>) {
        let records = self.sections.entry(section).or_default();
        // A node may be named twice (an image shared by runs): the first
        // declaration stands.
        records.entry(id).or_insert(Value::Object(attrs));
    }

    fn relate(&mut self, section: &'static str, members: Value) {
        self.relations += 1;
        let id = format!("_:{section}{}", self.relations);
        self.sections
            .entry(section)
            .or_default()
            .insert(id, members);
    }
}

impl LineageGraph {
    /// The graph as a W3C PROV document in PROV-JSON (see the module docs
    /// for the mapping).
    pub fn w3c_prov(&self) -> Value {
        let mut doc = Document::default();
        let mut parents = Vec::new();
        for node in &self.graph {
            match node.kind {
                "RUN" => run(&mut doc, node, &mut parents),
                _ => dataset(&mut doc, node),
            }
        }
        // A parent run outside the graph is named by its children: declared
        // after the graph's own runs, so that a parent in the graph keeps
        // its full record.
        for (id, attrs) in parents {
            doc.declare("activity", id, attrs);
        }
        // Each version's writers and each run's inputs.
        let mut writers: BTreeMap<&str, Vec<&Node>> = BTreeMap::new();
        let mut inputs: BTreeMap<&str, Vec<&Node>> = BTreeMap::new();
        for (from, to) in self.edges() {
            let (Some(a), Some(b)) = (self.node(from), self.node(to)) else {
                continue;
            };
            match (a.kind, b.kind) {
                ("RUN", "RUN") => {}
                ("RUN", _) => writers.entry(to).or_default().push(a),
                (_, "RUN") => {
                    doc.relate(
                        "used",
                        json!({"prov:activity": node_id(b), "prov:entity": node_id(a)}),
                    );
                    inputs.entry(to).or_default().push(a);
                }
                _ => {}
            }
        }
        // An entity is generated once (PROV-CONSTRAINTS): by the run that
        // ended first. A later run that wrote the same bytes again (a
        // rerun) influenced it, and its inputs are recorded as sources
        // without that run, which would imply a second generation.
        for (version, mut runs) in writers {
            let Some(output) = self.node(version) else {
                continue;
            };
            runs.sort_by_key(|r| {
                (
                    r.data["endedAt"].as_i64().unwrap_or(i64::MAX),
                    r.id.as_str(),
                )
            });
            let mut sources = std::collections::BTreeSet::new();
            for (k, r) in runs.iter().enumerate() {
                let mut members =
                    json!({"prov:entity": node_id(output), "prov:activity": node_id(r)});
                if k == 0 {
                    if let Some(t) = time(&r.data["endedAt"]) {
                        members["prov:time"] = t;
                    }
                    doc.relate("wasGeneratedBy", members);
                } else {
                    doc.relate(
                        "wasInfluencedBy",
                        json!({
                            "prov:influencee": node_id(output),
                            "prov:influencer": node_id(r),
                            "prov:type": qname("gp:WroteTheSameContent"),
                        }),
                    );
                }
                for input in inputs.get(r.id.as_str()).into_iter().flatten() {
                    if k == 0 {
                        doc.relate(
                            "wasDerivedFrom",
                            json!({
                                "prov:generatedEntity": node_id(output),
                                "prov:usedEntity": node_id(input),
                                "prov:activity": node_id(r),
                            }),
                        );
                        sources.insert(input.id.as_str());
                    } else if sources.insert(input.id.as_str()) {
                        doc.relate(
                            "wasDerivedFrom",
                            json!({
                                "prov:generatedEntity": node_id(output),
                                "prov:usedEntity": node_id(input),
                            }),
                        );
                    }
                }
            }
        }
        let mut out = Map::new();
        out.insert(
            "prefix".into(),
            json!({
                "prov": "http://www.w3.org/ns/prov#",
                "xsd": "http://www.w3.org/2001/XMLSchema#",
                "gp": PROV_NAMESPACE,
                "run": "urn:uuid:",
                "dataset": DATASET_NAMESPACE,
                "image": IMAGE_NAMESPACE,
                "user": USER_NAMESPACE,
            }),
        );
        for (section, records) in doc.sections {
            out.insert(section.into(), Value::Object(records));
        }
        Value::Object(out)
    }
}

/// The image a run ran in, as `[registry/]repository@digest`, when its
/// digest is known.
pub(crate) fn image_key(run: &Value) -> Option<String> {
    let digest = run["containerDigest"].as_str()?;
    let container = &run["facets"]["prov_container"];
    Some(
        match (
            container["registry"].as_str(),
            container["repository"].as_str(),
        ) {
            (Some(registry), Some(repository)) => format!("{registry}/{repository}@{digest}"),
            (None, Some(repository)) => format!("{repository}@{digest}"),
            _ => digest.to_owned(),
        },
    )
}

/// A dataset version: an entity.
fn dataset(doc: &mut Document, node: &Node) {
    let d = &node.data;
    let mut attrs = Map::new();
    attrs.insert("prov:type".into(), qname("gp:DatasetVersion"));
    put(&mut attrs, "prov:label", &d["name"]);
    if d["namespace"] == "file" {
        put(&mut attrs, "prov:location", &d["name"]);
    }
    put(&mut attrs, "gp:namespace", &d["namespace"]);
    put(&mut attrs, "gp:name", &d["name"]);
    put(&mut attrs, "gp:version", &d["version"]);
    put(&mut attrs, "gp:sha256", &d["digest"]);
    put(&mut attrs, "gp:size", &d["size"]);
    put(&mut attrs, "gp:createdAt", &d["createdAt"]);
    doc.declare("entity", node_id(node), attrs);
}

/// A run: an activity, its agents, and its start by a parent run (whose
/// record, if the parent is not in the graph, is added to `parents`).
fn run(doc: &mut Document, node: &Node, parents: &mut Vec<(String, Map<String, Value>)>) {
    let d = &node.data;
    let facets = &d["facets"];
    let id = node_id(node);
    let mut attrs = Map::new();
    attrs.insert("prov:type".into(), qname("gp:Run"));
    if let Some(t) = time(&d["startedAt"]) {
        attrs.insert("prov:startTime".into(), t);
    }
    if let Some(t) = time(&d["endedAt"]) {
        attrs.insert("prov:endTime".into(), t);
    }
    put(&mut attrs, "prov:label", &d["job"]);
    put(&mut attrs, "gp:namespace", &d["namespace"]);
    put(&mut attrs, "gp:job", &d["job"]);
    put(&mut attrs, "gp:state", &d["state"]);
    put(&mut attrs, "gp:exitCode", &d["exitCode"]);
    put(&mut attrs, "gp:host", &d["host"]);
    put(&mut attrs, "gp:fingerprint", &d["fingerprint"]);
    put(&mut attrs, "gp:parametersSha256", &d["parametersSha256"]);
    let execution = &facets["prov_execution"];
    if let Some(argv) = execution.get("argv").filter(|a| a.is_array()) {
        attrs.insert("gp:argv".into(), argv.to_string().into());
    }
    put(
        &mut attrs,
        "gp:workingDirectory",
        &execution["workingDirectory"],
    );
    if let Some(parameters) = facets["prov_parameters"].get("parameters") {
        attrs.insert("gp:parameters".into(), parameters.to_string().into());
    }
    if let Some(tools) = facets["prov_software"]["tools"].as_array() {
        let text: Vec<String> = tools
            .iter()
            .map(|t| {
                let name = t["name"].as_str().unwrap_or("?");
                match t["version"].as_str() {
                    Some(v) => format!("{name} {v}"),
                    None => name.to_owned(),
                }
            })
            .collect();
        if !text.is_empty() {
            attrs.insert("gp:software".into(), text.join(", ").into());
        }
    }
    doc.declare("activity", id.clone(), attrs);

    // The image that ran it, by digest when known.
    let image = d["containerImage"].as_str();
    if let Some(reference) = image {
        let mut agent = Map::new();
        agent.insert("prov:type".into(), qname("prov:SoftwareAgent"));
        agent.insert("prov:label".into(), reference.into());
        put(&mut agent, "gp:image", &d["containerImage"]);
        put(&mut agent, "gp:digest", &d["containerDigest"]);
        // One agent per image as it ran: by digest when known, since a tag
        // may have named other bytes for another run.
        let agent_id = qualified(
            "image",
            &image_key(d).unwrap_or_else(|| reference.to_owned()),
        );
        doc.declare("agent", agent_id.clone(), agent);
        doc.relate(
            "wasAssociatedWith",
            json!({"prov:activity": id, "prov:agent": agent_id}),
        );
    }
    // The user who ran it.
    if let Some(user) = d["user"].as_str() {
        let who = match d["host"].as_str() {
            Some(host) => format!("{user}@{host}"),
            None => user.to_owned(),
        };
        let mut agent = Map::new();
        agent.insert("prov:type".into(), qname("prov:Person"));
        agent.insert("prov:label".into(), who.clone().into());
        let agent_id = qualified("user", &who);
        doc.declare("agent", agent_id.clone(), agent);
        doc.relate(
            "wasAssociatedWith",
            json!({"prov:activity": id, "prov:agent": agent_id}),
        );
    }
    // The pipeline run that started it.
    if let Some(parent) = d["parentRunId"].as_str() {
        let parent_id = qualified("run", parent);
        let job = &facets["parent"]["job"];
        let mut attrs = Map::new();
        attrs.insert("prov:type".into(), qname("gp:Run"));
        put(&mut attrs, "prov:label", &job["name"]);
        put(&mut attrs, "gp:namespace", &job["namespace"]);
        put(&mut attrs, "gp:job", &job["name"]);
        parents.push((parent_id.clone(), attrs));
        let mut members = json!({"prov:activity": id, "prov:starter": parent_id});
        if let Some(t) = time(&d["startedAt"]) {
            members["prov:time"] = t;
        }
        doc.relate("wasStartedBy", members);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Edge;

    fn edge(a: &str, b: &str) -> Edge {
        Edge {
            origin: a.into(),
            destination: b.into(),
        }
    }

    fn node(id: &str, kind: &'static str, data: Value, edges: &[(&str, &str)]) -> Node {
        Node {
            id: id.into(),
            kind,
            data,
            in_edges: edges
                .iter()
                .filter(|(_, b)| *b == id)
                .map(|(a, b)| edge(a, b))
                .collect(),
            out_edges: edges
                .iter()
                .filter(|(a, _)| *a == id)
                .map(|(a, b)| edge(a, b))
                .collect(),
        }
    }

    /// reads.fastq -> align -> out.bam, and an older out.bam by another run.
    fn graph() -> LineageGraph {
        let run = "run:01a2110f-85eb-72a8-bcc6-27ed183e7e52";
        let fastq = "dataset:file:/data/my reads.fastq#sha256:aa";
        let bam = "dataset:file:/out/x.bam#sha256:bb";
        let old_bam = "dataset:file:/out/x.bam#sha256:cc";
        let edges = [(fastq, run), (run, bam)];
        LineageGraph {
            graph: vec![
                node(
                    run,
                    "RUN",
                    json!({
                        "runId": "01a2110f-85eb-72a8-bcc6-27ed183e7e52",
                        "namespace": "genomics", "job": "align", "state": "COMPLETE",
                        "startedAt": 1_795_582_559_724_039_i64, "endedAt": 1_795_582_559_741_443_i64,
                        "exitCode": 0, "user": "ana", "host": "node-1",
                        "containerImage": "quay.io/biocontainers/bwa@sha256:3f1a",
                        "containerDigest": "sha256:3f1a",
                        "parentRunId": "01a2110f-85d4-755b-9358-1f3f44b556d5",
                        "facets": {
                            "parent": {"job": {"namespace": "genomics", "name": "wgs"}},
                            "prov_container": {"registry": "quay.io", "repository": "biocontainers/bwa"},
                            "prov_execution": {"argv": ["bwa", "mem", "-t", "8"], "workingDirectory": "/w"},
                            "prov_parameters": {"parameters": {"threads": 8}},
                            "prov_software": {"tools": [{"name": "bwa", "version": "0.7.17"}]},
                        },
                    }),
                    &edges,
                ),
                node(
                    fastq,
                    "DATASET",
                    json!({"namespace": "file", "name": "/data/my reads.fastq", "version": "sha256:aa", "digest": "aa", "size": 10}),
                    &edges,
                ),
                node(
                    bam,
                    "DATASET",
                    json!({"namespace": "file", "name": "/out/x.bam", "version": "sha256:bb", "digest": "bb"}),
                    &edges,
                ),
                node(
                    old_bam,
                    "DATASET",
                    json!({"namespace": "file", "name": "/out/x.bam", "version": "sha256:cc", "digest": "cc"}),
                    &edges,
                ),
            ],
            truncated: false,
        }
    }

    #[test]
    fn runs_are_activities_and_versions_entities() {
        let doc = graph().w3c_prov();
        let run = "run:01a2110f-85eb-72a8-bcc6-27ed183e7e52";
        let activity = &doc["activity"][run];
        assert_eq!(activity["gp:job"], "align");
        assert_eq!(activity["prov:startTime"], "2026-11-25T04:55:59.724039Z");
        assert_eq!(activity["gp:argv"], r#"["bwa","mem","-t","8"]"#);
        assert_eq!(activity["gp:parameters"], r#"{"threads":8}"#);
        assert_eq!(activity["gp:software"], "bwa 0.7.17");
        // Two versions of one path are two entities; the space is encoded.
        let entities = doc["entity"].as_object().unwrap();
        assert_eq!(entities.len(), 3, "{entities:?}");
        let fastq = "dataset:file%3A/data/my%20reads.fastq%23sha256%3Aaa";
        assert_eq!(entities[fastq]["gp:sha256"], "aa");
        assert_eq!(entities[fastq]["prov:location"], "/data/my reads.fastq");
        assert!(entities.contains_key("dataset:file%3A/out/x.bam%23sha256%3Acc"));
    }

    #[test]
    fn edges_become_used_generated_and_derived() {
        let doc = graph().w3c_prov();
        let run = "run:01a2110f-85eb-72a8-bcc6-27ed183e7e52";
        let fastq = "dataset:file%3A/data/my%20reads.fastq%23sha256%3Aaa";
        let bam = "dataset:file%3A/out/x.bam%23sha256%3Abb";
        let only = |section: &str| -> Value {
            let records = doc[section].as_object().unwrap();
            assert_eq!(records.len(), 1, "{section}: {records:?}");
            records.values().next().unwrap().clone()
        };
        assert_eq!(
            only("used"),
            json!({"prov:activity": run, "prov:entity": fastq})
        );
        let generated = only("wasGeneratedBy");
        assert_eq!(generated["prov:entity"], bam);
        assert_eq!(generated["prov:activity"], run);
        assert_eq!(
            only("wasDerivedFrom"),
            json!({"prov:generatedEntity": bam, "prov:usedEntity": fastq, "prov:activity": run})
        );
        let started = only("wasStartedBy");
        assert_eq!(
            started["prov:starter"],
            "run:01a2110f-85d4-755b-9358-1f3f44b556d5"
        );
        assert_eq!(
            doc["activity"]["run:01a2110f-85d4-755b-9358-1f3f44b556d5"]["gp:job"],
            "wgs"
        );
    }

    #[test]
    fn agents_are_the_image_and_the_user() {
        let doc = graph().w3c_prov();
        let agents = doc["agent"].as_object().unwrap();
        let image = "image:quay.io/biocontainers/bwa%40sha256%3A3f1a";
        assert_eq!(agents[image]["gp:digest"], "sha256:3f1a");
        assert_eq!(agents[image]["prov:type"]["$"], "prov:SoftwareAgent");
        assert_eq!(agents["user:ana%40node-1"]["prov:type"]["$"], "prov:Person");
        let associated: Vec<&Value> = doc["wasAssociatedWith"]
            .as_object()
            .unwrap()
            .values()
            .map(|r| &r["prov:agent"])
            .collect();
        assert_eq!(associated.len(), 2);
        assert!(associated.contains(&&Value::from(image)));
    }

    #[test]
    fn the_same_graph_gives_the_same_text() {
        assert_eq!(
            graph().w3c_prov().to_string(),
            graph().w3c_prov().to_string()
        );
        assert_eq!(local_part("a b/c:d~é"), "a%20b/c%3Ad~%C3%A9");
    }

    /// A run node of job `job` writing `output` from `input`, ending at
    /// `ended`, in `image` at `digest`.
    fn step(id: &str, job: &str, ended: i64, digest: &str, parent: Option<&str>) -> Value {
        json!({
            "runId": id, "namespace": "ns", "job": job, "state": "COMPLETE",
            "startedAt": ended - 1000, "endedAt": ended,
            "containerImage": "quay.io/biocontainers/bwa:0.7.17", "containerDigest": digest,
            "parentRunId": parent,
            "facets": {
                "prov_container": {"registry": "quay.io", "repository": "biocontainers/bwa", "tag": "0.7.17"},
                "parent": {"job": {"namespace": "ns", "name": "wgs"}},
            },
        })
    }

    #[test]
    fn a_tag_that_moved_between_runs_gives_each_run_its_own_image() {
        let (r1, r2) = (
            "run:11111111-0000-7000-8000-000000000001",
            "run:11111111-0000-7000-8000-000000000002",
        );
        let (a, b) = ("dataset:file:/a#sha256:aa", "dataset:file:/b#sha256:bb");
        let edges = [(r1, a), (r2, b)];
        let graph = LineageGraph {
            graph: vec![
                node(
                    a,
                    "DATASET",
                    json!({"namespace": "file", "name": "/a", "digest": "aa"}),
                    &edges,
                ),
                node(
                    b,
                    "DATASET",
                    json!({"namespace": "file", "name": "/b", "digest": "bb"}),
                    &edges,
                ),
                node(
                    r1,
                    "RUN",
                    step(&r1[4..], "align", 10_000, "sha256:1111", None),
                    &edges,
                ),
                node(
                    r2,
                    "RUN",
                    step(&r2[4..], "align", 20_000, "sha256:2222", None),
                    &edges,
                ),
            ],
            truncated: false,
        };
        let doc = graph.w3c_prov();
        let digests: Vec<&Value> = doc["agent"]
            .as_object()
            .unwrap()
            .values()
            .filter(|a| a["prov:type"]["$"] == "prov:SoftwareAgent")
            .map(|a| &a["gp:digest"])
            .collect();
        assert_eq!(digests, [&json!("sha256:1111"), &json!("sha256:2222")]);
    }

    #[test]
    fn a_parent_in_the_graph_keeps_its_record_whatever_the_order() {
        // The child sorts before its parent, and names it first.
        let (child, parent) = (
            "run:01111111-0000-7000-8000-000000000001",
            "run:f1111111-0000-4000-8000-000000000001",
        );
        let mut parent_data = step(&parent[4..], "wgs", 30_000, "sha256:1111", None);
        parent_data["state"] = json!("FAIL");
        let graph = LineageGraph {
            graph: vec![
                node(
                    child,
                    "RUN",
                    step(
                        &child[4..],
                        "align",
                        10_000,
                        "sha256:1111",
                        Some(&parent[4..]),
                    ),
                    &[],
                ),
                node(parent, "RUN", parent_data, &[]),
            ],
            truncated: false,
        };
        let doc = graph.w3c_prov();
        assert_eq!(doc["activity"][parent]["gp:state"], "FAIL", "{doc:#}");
        assert!(doc["activity"][parent]["prov:endTime"].is_string());
    }

    #[test]
    fn a_version_written_again_by_a_rerun_is_generated_once() {
        let (r1, r2) = (
            "run:11111111-0000-7000-8000-000000000001",
            "run:11111111-0000-7000-8000-000000000002",
        );
        let (input, out) = ("dataset:file:/in#sha256:aa", "dataset:file:/out#sha256:bb");
        let edges = [(input, r1), (input, r2), (r1, out), (r2, out)];
        let graph = LineageGraph {
            graph: vec![
                node(
                    input,
                    "DATASET",
                    json!({"namespace": "file", "name": "/in", "digest": "aa"}),
                    &edges,
                ),
                node(
                    out,
                    "DATASET",
                    json!({"namespace": "file", "name": "/out", "digest": "bb"}),
                    &edges,
                ),
                node(
                    r1,
                    "RUN",
                    step(&r1[4..], "sort", 10_000, "sha256:1111", None),
                    &edges,
                ),
                node(
                    r2,
                    "RUN",
                    step(&r2[4..], "sort", 20_000, "sha256:1111", None),
                    &edges,
                ),
            ],
            truncated: false,
        };
        let doc = graph.w3c_prov();
        let generations: Vec<&Value> = doc["wasGeneratedBy"]
            .as_object()
            .unwrap()
            .values()
            .collect();
        assert_eq!(generations.len(), 1, "{doc:#}");
        assert_eq!(generations[0]["prov:activity"], r1, "the first to end");
        let influences: Vec<&Value> = doc["wasInfluencedBy"]
            .as_object()
            .unwrap()
            .values()
            .collect();
        assert_eq!(influences.len(), 1);
        assert_eq!(influences[0]["prov:influencer"], r2);
        // One derivation through the first run; none implying another
        // generation.
        let derivations: Vec<&Value> = doc["wasDerivedFrom"]
            .as_object()
            .unwrap()
            .values()
            .collect();
        assert_eq!(derivations.len(), 1, "{derivations:?}");
        assert_eq!(derivations[0]["prov:activity"], r1);
    }
}
