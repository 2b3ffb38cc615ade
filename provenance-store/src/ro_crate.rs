//! The lineage graph as the metadata of an RO-Crate (1.1) that follows the
//! Process Run Crate profile (0.5): the form in which workflow systems and
//! registries such as WorkflowHub exchange the record of tool executions.
//!
//! The mapping:
//! - each run is a `CreateAction` (`#run-<uuid>`): its tool as `instrument`
//!   (a `SoftwareApplication` with its version where the run recorded one),
//!   its inputs and parameters (`PropertyValue`s) as `object`, its outputs as
//!   `result`, its times, its status, the user as `agent` (a `Person`) and
//!   the image as `containerImage` (a `ContainerImage`: registry, name, tag
//!   and sha-256 digest);
//! - each dataset version is a `File` whose id is its location as a URI
//!   (`file:///data/S1.fastq.gz`, `s3://bucket/key`), with its size and
//!   sha-256; where the crate holds several versions of one location (a path
//!   that was overwritten), each id also carries `#<version>`.
//!
//! The crate is detached: it names the files where they are and copies none
//! of them, so the metadata is the whole crate (`ro-crate-metadata.json` in
//! an otherwise empty folder).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::model::{LineageGraph, Node};

/// The Process Run Crate profile this crate conforms to.
pub const PROCESS_RUN_CRATE: &str = "https://w3id.org/ro/wfrun/process/0.5";

/// The crate's license: RO-Crate requires one, and only its publisher can
/// say which.
const LICENSE: &str = "#license-not-stated";

/// The workflow-run vocabulary (container images).
const WFRUN: &str = "https://w3id.org/ro/terms/workflow-run#";

/// A time as the profile asks for it: milliseconds and a `+00:00` offset.
fn time(micros: &Value) -> Option<Value> {
    let t = chrono::DateTime::from_timestamp_micros(micros.as_i64()?)?;
    Some(t.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string().into())
}

fn id(of: &str) -> Value {
    json!({"@id": of})
}

/// A list of references as RO-Crate writes them: one value alone, several as
/// an array, none not at all.
fn one_or_many(mut values: Vec<Value>) -> Option<Value> {
    match values.len() {
        0 => None,
        1 => values.pop(),
        _ => Some(Value::Array(values)),
    }
}

/// `text` with every byte outside the URI path characters percent-encoded.
fn uri_path(text: &str) -> String {
    crate::prov_json::percent_encoded(text, b"-._~/+=@,:")
}

/// A fragment id for a contextual entity: `#<kind>-<encoded text>`.
fn local(kind: &str, text: &str) -> String {
    format!("#{kind}-{}", uri_path(text))
}

/// The location of a dataset as a URI: `file:///path` for files, else the
/// namespace and the name joined as OpenLineage names them.
fn location(data: &Value) -> String {
    let namespace = data["namespace"].as_str().unwrap_or("");
    let name = data["name"].as_str().unwrap_or("");
    if namespace == "file" {
        let path = if name.starts_with('/') {
            name.to_owned()
        } else {
            format!("/{name}")
        };
        return format!("file://{}", uri_path(&path));
    }
    if namespace.contains("://") {
        let sep = if name.starts_with('/') || namespace.ends_with('/') {
            ""
        } else {
            "/"
        };
        return format!("{namespace}{sep}{}", uri_path(name));
    }
    // A namespace that is not a URI (`demo`, `warehouse`).
    local("dataset", &format!("{namespace}:{name}"))
}

impl LineageGraph {
    /// The graph as RO-Crate metadata following the Process Run Crate
    /// profile (see the module docs); `title` names what it is the lineage
    /// of, `published` (RFC 3339) when the crate was made.
    pub fn ro_crate(&self, title: &str, published: &str) -> Value {
        // Ids of the dataset versions: the location, and the version too
        // where one location has several in this crate.
        let mut versions: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        for node in self.graph.iter().filter(|n| n.kind != "RUN") {
            versions
                .entry(location(&node.data))
                .or_default()
                .insert(node.id.as_str());
        }
        let file_id = |node: &Node| -> String {
            let at = location(&node.data);
            match versions.get(&at) {
                Some(ids) if ids.len() > 1 => {
                    let version = uri_path(node.data["version"].as_str().unwrap_or(""));
                    // A URI gets the version as its fragment; a fragment id
                    // (a namespace that is not a URI) gets it after `@`.
                    match at.starts_with('#') {
                        true => format!("{at}@{version}"),
                        false => format!("{at}#{version}"),
                    }
                }
                _ => at,
            }
        };
        let mut entities: BTreeMap<String, Value> = BTreeMap::new();
        let (mut parts, mut actions) = (Vec::new(), Vec::new());
        for node in &self.graph {
            if node.kind == "RUN" {
                let inputs = node
                    .in_edges
                    .iter()
                    .filter_map(|e| self.node(&e.origin))
                    .filter(|n| n.kind != "RUN")
                    .map(|n| id(&file_id(n)))
                    .collect();
                let outputs = node
                    .out_edges
                    .iter()
                    .filter_map(|e| self.node(&e.destination))
                    .filter(|n| n.kind != "RUN")
                    .map(|n| id(&file_id(n)))
                    .collect();
                let action = run(&mut entities, node, inputs, outputs);
                actions.push(id(&action));
            } else {
                let d = &node.data;
                let mut file = Map::new();
                let at = file_id(node);
                file.insert("@id".into(), at.clone().into());
                file.insert("@type".into(), "File".into());
                file.insert("name".into(), d["name"].clone());
                if let Some(size) = d["size"].as_u64() {
                    file.insert("contentSize".into(), size.to_string().into());
                }
                if let Some(sha) = d["digest"].as_str() {
                    file.insert("sha256".into(), sha.into());
                }
                if let Some(version) = d["version"].as_str() {
                    file.insert("version".into(), version.into());
                }
                if let Some(created) = d["createdAt"].as_str() {
                    file.insert("dateCreated".into(), created.into());
                }
                entities.insert(at.clone(), Value::Object(file));
                parts.push(id(&at));
            }
        }
        let mut graph = vec![
            json!({
                "@id": "ro-crate-metadata.json",
                "@type": "CreativeWork",
                "conformsTo": id("https://w3id.org/ro/crate/1.1"),
                "about": id("./"),
            }),
            json!({
                "@id": "./",
                "@type": "Dataset",
                "name": format!("Lineage of {title}"),
                "description": format!(
                    "The runs that made {title} and the files they read and wrote, each file by its sha-256, as recorded by prov {}.",
                    env!("CARGO_PKG_VERSION")
                ),
                "datePublished": published,
                "conformsTo": id(PROCESS_RUN_CRATE),
                "license": id(LICENSE),
                "hasPart": one_or_many(parts),
                "mentions": one_or_many(actions),
            }),
            json!({
                "@id": LICENSE,
                "@type": "CreativeWork",
                "name": "Terms not stated",
                "description": "prov does not know the terms under which this record may be used; its publisher should state them here.",
            }),
            json!({
                "@id": PROCESS_RUN_CRATE,
                "@type": "CreativeWork",
                "name": "Process Run Crate",
                "version": "0.5",
            }),
        ];
        graph.extend(entities.into_values());
        // No empty members (a graph with no run has nothing to mention).
        for entity in &mut graph {
            if let Value::Object(members) = entity {
                members.retain(|_, v| !v.is_null());
            }
        }
        json!({
            "@context": [
                "https://w3id.org/ro/crate/1.1/context",
                {
                    "ContainerImage": format!("{WFRUN}ContainerImage"),
                    "containerImage": format!("{WFRUN}containerImage"),
                    "registry": format!("{WFRUN}registry"),
                    "tag": format!("{WFRUN}tag"),
                    "sha256": format!("{WFRUN}sha256"),
                },
            ],
            "@graph": graph,
        })
    }
}

/// A run: its `CreateAction` and the contextual entities it points to, all
/// put in `entities`; the action's id.
fn run(
    entities: &mut BTreeMap<String, Value>,
    node: &Node,
    inputs: Vec<Value>,
    outputs: Vec<Value>,
) -> String {
    let d = &node.data;
    let facets = &d["facets"];
    let run_id = d["runId"].as_str().unwrap_or(&node.id);
    let job = d["job"].as_str().unwrap_or("?");
    let action_id = format!("#run-{}", uri_path(run_id));
    let mut action = Map::new();
    action.insert("@id".into(), action_id.clone().into());
    action.insert("@type".into(), "CreateAction".into());
    action.insert("name".into(), format!("{job} (run {run_id})").into());
    let argv: Vec<&str> = facets["prov_execution"]["argv"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let description = match argv.is_empty() {
        true => format!("Run {run_id} of job {job}"),
        false => format!("Ran: {}", argv.join(" ")),
    };
    action.insert("description".into(), description.into());
    if let Some(t) = time(&d["startedAt"]) {
        action.insert("startTime".into(), t);
    }
    if let Some(t) = time(&d["endedAt"]) {
        action.insert("endTime".into(), t);
    }
    match d["state"].as_str() {
        Some("COMPLETE") => {
            action.insert(
                "actionStatus".into(),
                "http://schema.org/CompletedActionStatus".into(),
            );
        }
        Some(state @ ("FAIL" | "ABORT")) => {
            action.insert(
                "actionStatus".into(),
                "http://schema.org/FailedActionStatus".into(),
            );
            let why = match d["exitCode"].as_i64() {
                Some(code) => format!("{state}: exit code {code}"),
                None => state.to_owned(),
            };
            action.insert("error".into(), why.into());
        }
        _ => {}
    }

    // The tool: the program the command ran, with the version the run
    // recorded for it when it did.
    let program = argv
        .first()
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .filter(|p| !p.is_empty())
        .unwrap_or(job);
    let tools: Vec<(&str, Option<&str>)> = facets["prov_software"]["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t["name"].as_str()?, t["version"].as_str())))
        .collect();
    let mut software = |name: &str, version: Option<&str>| -> String {
        let tool_id = match version {
            Some(v) => local("software", &format!("{name}@{v}")),
            None => local("software", name),
        };
        let mut tool = json!({"@id": tool_id, "@type": "SoftwareApplication", "name": name});
        if let Some(v) = version {
            tool["softwareVersion"] = v.into();
        }
        entities.entry(tool_id.clone()).or_insert(tool);
        tool_id
    };
    // The program run, if it is a recorded tool; else the one tool
    // recorded (`sh -c 'bwa mem ...'` with bwa's version given); else the
    // program, with the tools recorded as its parts.
    let instrument = match tools.iter().find(|(name, _)| *name == program) {
        Some(&(name, version)) => software(name, version),
        None if tools.len() == 1 => software(tools[0].0, tools[0].1),
        None => {
            let parts: Vec<Value> = tools
                .iter()
                .map(|&(name, version)| id(&software(name, version)))
                .collect();
            let program_id = software(program, None);
            if let (Some(entity), Some(parts)) = (entities.get_mut(&program_id), one_or_many(parts))
            {
                entity["hasPart"] = parts;
            }
            program_id
        }
    };
    action.insert("instrument".into(), id(&instrument));

    // Inputs and parameters.
    let mut object = inputs;
    if let Some(parameters) = facets["prov_parameters"]["parameters"].as_object() {
        for (key, value) in parameters {
            let param_id = format!("{action_id}-param-{}", uri_path(key));
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            entities.insert(
                param_id.clone(),
                json!({"@id": param_id, "@type": "PropertyValue", "name": key, "value": text}),
            );
            object.push(id(&param_id));
        }
    }
    if let Some(object) = one_or_many(object) {
        action.insert("object".into(), object);
    }
    if let Some(result) = one_or_many(outputs) {
        action.insert("result".into(), result);
    }

    // Who ran it.
    if let Some(user) = d["user"].as_str() {
        let who = match d["host"].as_str() {
            Some(host) => format!("{user}@{host}"),
            None => user.to_owned(),
        };
        let person_id = local("person", &who);
        entities.insert(
            person_id.clone(),
            json!({"@id": person_id, "@type": "Person", "name": who}),
        );
        action.insert("agent".into(), id(&person_id));
    }

    // The image it ran in.
    let container = &facets["prov_container"];
    if let Some(reference) = d["containerImage"].as_str() {
        // By digest when known: a tag may have named other bytes for
        // another run.
        let key = crate::prov_json::image_key(d).unwrap_or_else(|| reference.to_owned());
        let image_id = local("image", &key);
        let mut image = json!({
            "@id": image_id,
            "@type": "ContainerImage",
            "additionalType": id(&format!("{WFRUN}DockerImage")),
            "name": container["repository"].as_str().unwrap_or(reference),
        });
        for (key, member) in [("registry", "registry"), ("tag", "tag")] {
            if let Some(v) = container[member].as_str() {
                image[key] = v.into();
            }
        }
        if let Some(digest) = d["containerDigest"].as_str() {
            image["sha256"] = digest.strip_prefix("sha256:").unwrap_or(digest).into();
        }
        entities.entry(image_id.clone()).or_insert(image);
        action.insert("containerImage".into(), id(&image_id));
    }
    entities.insert(action_id.clone(), Value::Object(action));
    action_id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Edge;

    fn node(id: &str, kind: &'static str, data: Value, edges: &[(&str, &str)]) -> Node {
        let edge = |(a, b): &(&str, &str)| Edge {
            origin: (*a).into(),
            destination: (*b).into(),
        };
        Node {
            id: id.into(),
            kind,
            data,
            in_edges: edges.iter().filter(|(_, b)| *b == id).map(edge).collect(),
            out_edges: edges.iter().filter(|(a, _)| *a == id).map(edge).collect(),
        }
    }

    /// reads -> align (FAIL) -> x.bam, with an older x.bam in the crate too.
    fn graph() -> LineageGraph {
        let run = "run:01a2110f-85eb-72a8-bcc6-27ed183e7e52";
        let reads = "dataset:file:/data/my reads.fastq#sha256:aa";
        let bam = "dataset:file:/out/x.bam#sha256:bb";
        let old_bam = "dataset:file:/out/x.bam#sha256:cc";
        let s3 = "dataset:s3://bucket:ref/GRCh38.fa#sha256:dd";
        let edges = [(reads, run), (s3, run), (run, bam)];
        let file = |name: &str, v: &str| json!({"namespace": "file", "name": name, "version": format!("sha256:{v}"), "digest": v, "size": 10});
        LineageGraph {
            graph: vec![
                node(
                    run,
                    "RUN",
                    json!({
                        "runId": "01a2110f-85eb-72a8-bcc6-27ed183e7e52", "namespace": "genomics",
                        "job": "align", "state": "FAIL", "exitCode": 3,
                        "startedAt": 1_795_582_559_724_039_i64, "endedAt": 1_795_582_559_741_443_i64,
                        "user": "ana", "host": "node-1",
                        "containerImage": "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8@sha256:3f1a",
                        "containerDigest": "sha256:3f1a",
                        "facets": {
                            "prov_execution": {"argv": ["/usr/bin/bwa", "mem", "-t", "8"]},
                            "prov_parameters": {"parameters": {"threads": 8, "rg": "S1"}},
                            "prov_software": {"tools": [{"name": "bwa", "version": "0.7.17"}]},
                            "prov_container": {"registry": "quay.io", "repository": "biocontainers/bwa", "tag": "0.7.17--h5bf99c6_8"},
                        },
                    }),
                    &edges,
                ),
                node(reads, "DATASET", file("/data/my reads.fastq", "aa"), &edges),
                node(bam, "DATASET", file("/out/x.bam", "bb"), &edges),
                node(old_bam, "DATASET", file("/out/x.bam", "cc"), &edges),
                node(
                    s3,
                    "DATASET",
                    json!({"namespace": "s3://bucket", "name": "ref/GRCh38.fa", "version": "sha256:dd", "digest": "dd"}),
                    &edges,
                ),
            ],
            truncated: false,
        }
    }

    fn entity<'a>(crate_: &'a Value, id: &str) -> &'a Value {
        crate_["@graph"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["@id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {crate_:#}"))
    }

    #[test]
    fn a_run_is_a_create_action_with_its_tool_files_and_image() {
        let c = graph().ro_crate("x.bam", "2026-11-25T00:00:00Z");
        let action = entity(&c, "#run-01a2110f-85eb-72a8-bcc6-27ed183e7e52");
        assert_eq!(action["@type"], "CreateAction");
        assert_eq!(action["startTime"], "2026-11-25T04:55:59.724+00:00");
        assert_eq!(
            action["actionStatus"],
            "http://schema.org/FailedActionStatus"
        );
        assert_eq!(action["error"], "FAIL: exit code 3");
        let tool = entity(&c, action["instrument"]["@id"].as_str().unwrap());
        assert_eq!(tool["name"], "bwa");
        assert_eq!(tool["softwareVersion"], "0.7.17");
        let object: Vec<&str> = action["object"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["@id"].as_str().unwrap())
            .collect();
        assert!(
            object.contains(&"file:///data/my%20reads.fastq"),
            "{object:?}"
        );
        assert!(object.contains(&"s3://bucket/ref/GRCh38.fa"), "{object:?}");
        let threads = object
            .iter()
            .map(|o| entity(&c, o))
            .find(|e| e["name"] == "threads");
        assert_eq!(threads.unwrap()["value"], "8");
        let image = entity(&c, action["containerImage"]["@id"].as_str().unwrap());
        assert_eq!(image["registry"], "quay.io");
        assert_eq!(image["name"], "biocontainers/bwa");
        assert_eq!(image["sha256"], "3f1a");
        let person = entity(&c, action["agent"]["@id"].as_str().unwrap());
        assert_eq!(person["@type"], "Person");
    }

    #[test]
    fn two_versions_of_one_path_get_two_ids_and_one_version_keeps_the_plain_uri() {
        let c = graph().ro_crate("x.bam", "2026-11-25T00:00:00Z");
        assert_eq!(entity(&c, "file:///out/x.bam#sha256:bb")["sha256"], "bb");
        assert_eq!(entity(&c, "file:///out/x.bam#sha256:cc")["sha256"], "cc");
        assert_eq!(
            entity(&c, "file:///data/my%20reads.fastq")["contentSize"],
            "10"
        );
        let root = entity(&c, "./");
        assert_eq!(root["conformsTo"]["@id"], PROCESS_RUN_CRATE);
        assert_eq!(root["hasPart"].as_array().unwrap().len(), 4);
        assert_eq!(
            root["mentions"]["@id"],
            "#run-01a2110f-85eb-72a8-bcc6-27ed183e7e52"
        );
        let ids: Vec<&Value> = c["@graph"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["@id"])
            .collect();
        let unique: BTreeSet<String> = ids.iter().map(|i| i.to_string()).collect();
        assert_eq!(unique.len(), ids.len(), "an id is used twice: {ids:?}");
    }

    #[test]
    fn each_run_names_its_image_by_digest_and_its_recorded_tool() {
        let (r1, r2) = (
            "run:11111111-0000-7000-8000-000000000001",
            "run:11111111-0000-7000-8000-000000000002",
        );
        let (v1, v2) = (
            "dataset:warehouse:cohort table#v1",
            "dataset:warehouse:cohort table#v2",
        );
        let edges = [(r1, v1), (r2, v2)];
        let run = |id: &str, digest: &str| {
            json!({
                "runId": id, "job": "load", "state": "COMPLETE",
                "containerImage": "quay.io/biocontainers/bwa:0.7.17", "containerDigest": digest,
                "facets": {
                    "prov_container": {"registry": "quay.io", "repository": "biocontainers/bwa", "tag": "0.7.17"},
                    "prov_execution": {"argv": ["sh", "-c", "bwa index ref.fa"]},
                    "prov_software": {"tools": [{"name": "bwa", "version": "0.7.17"}]},
                },
            })
        };
        let table =
            |v: &str| json!({"namespace": "warehouse", "name": "cohort table", "version": v});
        let graph = LineageGraph {
            graph: vec![
                node(v1, "DATASET", table("v1"), &edges),
                node(v2, "DATASET", table("v2"), &edges),
                node(r1, "RUN", run(&r1[4..], "sha256:1111"), &edges),
                node(r2, "RUN", run(&r2[4..], "sha256:2222"), &edges),
            ],
            truncated: false,
        };
        let c = graph.ro_crate("t", "2026-11-25T00:00:00Z");
        let all = c["@graph"].as_array().unwrap();
        let images: Vec<&Value> = all
            .iter()
            .filter(|e| e["@type"] == "ContainerImage")
            .map(|e| &e["sha256"])
            .collect();
        assert_eq!(images, [&json!("1111"), &json!("2222")]);
        // Versions of a name outside any URI: one `#`, the version after `@`.
        assert_eq!(
            entity(&c, "#dataset-warehouse:cohort%20table@v1")["version"],
            "v1"
        );
        // `sh -c` ran the one recorded tool.
        let action = entity(&c, "#run-11111111-0000-7000-8000-000000000001");
        let tool = entity(&c, action["instrument"]["@id"].as_str().unwrap());
        assert_eq!(
            (&tool["name"], &tool["softwareVersion"]),
            (&json!("bwa"), &json!("0.7.17"))
        );
    }
}
