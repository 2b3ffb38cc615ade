//! The store's query vocabulary: targets, the lineage graph in Marquez's shape,
//! runs, pages, ingest outcomes and the chain report. Backend-neutral.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// What a lineage or audit question is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Content, by sha-256 (64 lowercase hex): every dataset version with these bytes.
    Digest(String),
    /// One version of a dataset.
    Version {
        /// The dataset's namespace.
        namespace: String,
        /// The dataset's name.
        name: String,
        /// The version (`sha256:<hex>`, a producer's version, `run:<uuid>`).
        version: String,
    },
    /// A dataset: its latest version (as of the query time): the one a run
    /// wrote last (a version written again is as new as its last writing);
    /// the `unknown` placeholder, made for an input read before any version
    /// was known, only when there is no other. (An input that names no
    /// version reads the version created last by its event's time, again a
    /// placeholder only if there is no other: a version written again keeps
    /// its first time there, since finding each version's last writing per
    /// input made ingest a thousand times slower on a dataset of 100,000
    /// versions.)
    Dataset {
        /// The dataset's namespace.
        namespace: String,
        /// The dataset's name.
        name: String,
    },
    /// A run, by id.
    Run(String),
    /// A job: its latest run (as of the query time).
    Job {
        /// The job's namespace.
        namespace: String,
        /// The job's name.
        name: String,
    },
}

/// A target that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("read target {input:?}: {reason}")]
pub struct TargetError {
    /// The text given.
    pub input: String,
    /// What is wrong.
    pub reason: String,
}

impl Target {
    /// Reads `sha256:<hex>`, `run:<uuid>`, `dataset:<namespace>:<name>[#<version>]`
    /// or `job:<namespace>:<name>` (Marquez's node ids). Namespaces that are URLs
    /// (`s3://bucket`, `postgres://host:5432`) keep their colons.
    pub fn parse(input: &str) -> Result<Target, TargetError> {
        let fail = |reason: &str| TargetError {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(hex) = input.strip_prefix("sha256:") {
            let hex = hex.to_ascii_lowercase();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(fail("a sha256 digest is 64 hexadecimal digits"));
            }
            return Ok(Target::Digest(hex));
        }
        if let Some(id) = input.strip_prefix("run:") {
            let id: provenance_core::RunId = id
                .parse()
                .map_err(|e: provenance_core::RunIdError| fail(&e.to_string()))?;
            return Ok(Target::Run(id.to_string()));
        }
        if let Some(rest) = input.strip_prefix("dataset:") {
            let (rest, version) = match rest.rsplit_once('#') {
                Some((r, v)) if !v.is_empty() => (r, Some(v)),
                _ => (rest, None),
            };
            let (namespace, name) =
                split_namespace(rest).ok_or_else(|| fail("expected dataset:<namespace>:<name>"))?;
            return Ok(match version {
                Some(v) => Target::Version {
                    namespace,
                    name,
                    version: v.to_owned(),
                },
                None => Target::Dataset { namespace, name },
            });
        }
        if let Some(rest) = input.strip_prefix("job:") {
            let (namespace, name) =
                split_namespace(rest).ok_or_else(|| fail("expected job:<namespace>:<name>"))?;
            return Ok(Target::Job { namespace, name });
        }
        Err(fail(
            "expected sha256:<hex>, run:<uuid>, dataset:<namespace>:<name>[#<version>] or job:<namespace>:<name>",
        ))
    }
}

/// Splits `<namespace>:<name>` where the namespace may be a URL with a port.
fn split_namespace(s: &str) -> Option<(String, String)> {
    let start = match s.find("://") {
        // scheme://authority: skip the authority's host, then an optional :port.
        Some(i) => {
            let after = i + 3;
            let host_end = s[after..].find([':', '/']).map(|j| after + j)?;
            if s[host_end..].starts_with(':') {
                let port_len = s[host_end + 1..]
                    .bytes()
                    .take_while(u8::is_ascii_digit)
                    .count();
                if port_len > 0 && s[host_end + 1 + port_len..].starts_with(':') {
                    host_end + 1 + port_len
                } else {
                    host_end
                }
            } else {
                // A path follows the host (abfss://c@a/...): the namespace ends at the next ':'.
                host_end + s[host_end..].find(':')?
            }
        }
        None => s.find(':')?,
    };
    let (namespace, name) = (&s[..start], &s[start + 1..]);
    (!namespace.is_empty() && !name.is_empty()).then(|| (namespace.to_owned(), name.to_owned()))
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Digest(hex) => write!(f, "sha256:{hex}"),
            Target::Version {
                namespace,
                name,
                version,
            } => write!(f, "dataset:{namespace}:{name}#{version}"),
            Target::Dataset { namespace, name } => write!(f, "dataset:{namespace}:{name}"),
            Target::Run(id) => write!(f, "run:{id}"),
            Target::Job { namespace, name } => write!(f, "job:{namespace}:{name}"),
        }
    }
}

/// Which way to walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Towards the inputs that made the target.
    Upstream,
    /// Towards what was made from the target.
    Downstream,
    /// Both.
    Both,
}

/// A lineage question.
#[derive(Debug, Clone)]
pub struct LineageQuery {
    /// Where to start.
    pub target: Target,
    /// Which way.
    pub direction: Direction,
    /// How many run steps to walk (Marquez's default is 20).
    pub depth: u32,
    /// Only what was recorded with an event time at or before this instant
    /// (microseconds since the epoch).
    pub as_of: Option<i64>,
}

/// The lineage graph, in Marquez's shape (`{"graph": [...]}`), with run nodes
/// beside dataset-version nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LineageGraph {
    /// The nodes, sorted by id.
    pub graph: Vec<Node>,
    /// Whether nodes beyond the depth limit exist (the graph is not complete).
    pub truncated: bool,
}

/// A node: `dataset:<ns>:<name>#<version>` (type DATASET) or `run:<uuid>` (type RUN).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    /// Marquez node id.
    pub id: String,
    /// `DATASET` or `RUN`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What is known of it.
    pub data: Value,
    /// Edges into it.
    #[serde(rename = "inEdges")]
    pub in_edges: Vec<Edge>,
    /// Edges out of it.
    #[serde(rename = "outEdges")]
    pub out_edges: Vec<Edge>,
}

/// A directed edge between two node ids.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Edge {
    /// The node the edge leaves.
    pub origin: String,
    /// The node the edge enters.
    pub destination: String,
}

impl LineageGraph {
    /// The node with `id`: found by bisection, as the store sorts the
    /// nodes by id; a graph built otherwise is searched in full.
    pub fn node(&self, id: &str) -> Option<&Node> {
        match self.graph.binary_search_by(|n| n.id.as_str().cmp(id)) {
            Ok(at) => Some(&self.graph[at]),
            Err(_) => self.graph.iter().find(|n| n.id == id),
        }
    }

    /// The ids of every node, sorted.
    pub fn ids(&self) -> Vec<&str> {
        self.graph.iter().map(|n| n.id.as_str()).collect()
    }

    /// The same lineage at the level Marquez draws it, for Marquez's tools:
    /// each run becomes its job (`job:<ns>:<name>`, type JOB) and each
    /// dataset version its dataset (`dataset:<ns>:<name>`, type DATASET),
    /// with the members Marquez's `Job` and `Dataset` have (`id`, `type`,
    /// `name`, `namespace`, times, `inputs` and `outputs` of a job, its
    /// `latestRun`...). The runs and versions folded into each node are kept
    /// in `runs` and `versions`. A job that read or wrote several versions in
    /// the graph has one edge per dataset.
    pub fn marquez(&self) -> LineageGraph {
        use std::collections::{BTreeMap, BTreeSet};
        let folded = |id: &str| -> Option<String> {
            let node = self.node(id)?;
            let text = |k: &str| node.data[k].as_str().unwrap_or("").to_owned();
            Some(match node.kind {
                "RUN" => format!("job:{}:{}", text("namespace"), text("job")),
                _ => format!("dataset:{}:{}", text("namespace"), text("name")),
            })
        };
        let time = |micros: &Value| {
            micros
                .as_i64()
                .and_then(chrono::DateTime::from_timestamp_micros)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        };
        // The members of each folded node, in id order.
        let mut members: BTreeMap<String, Vec<&Node>> = BTreeMap::new();
        for node in &self.graph {
            if let Some(id) = folded(&node.id) {
                members.entry(id).or_default().push(node);
            }
        }
        let edges: BTreeSet<Edge> = self
            .edges()
            .into_iter()
            .filter_map(|(a, b)| {
                Some(Edge {
                    origin: folded(a)?,
                    destination: folded(b)?,
                })
            })
            .collect();
        // A dataset's namespace and name, from its data: a namespace is
        // often a URI (`s3://bucket`), so the node id cannot be split back.
        let named: BTreeMap<String, Value> = members
            .iter()
            .filter(|(id, _)| id.starts_with("dataset:"))
            .map(|(id, nodes)| {
                let data = &nodes[0].data;
                let named =
                    serde_json::json!({"namespace": data["namespace"], "name": data["name"]});
                (id.clone(), named)
            })
            .collect();
        let dataset_id = |id: &str| named.get(id).cloned();
        // Each folded node's edges, out and in, looked up once each.
        let mut outgoing: BTreeMap<&str, Vec<&Edge>> = BTreeMap::new();
        let mut incoming: BTreeMap<&str, Vec<&Edge>> = BTreeMap::new();
        for e in &edges {
            outgoing.entry(e.origin.as_str()).or_default().push(e);
            incoming.entry(e.destination.as_str()).or_default().push(e);
        }
        let edges_of = |of: &str, out: bool| -> Vec<&Edge> {
            let map = if out { &outgoing } else { &incoming };
            map.get(of).cloned().unwrap_or_default()
        };
        let ids = |of: &str, out: bool| -> Vec<Value> {
            edges_of(of, out)
                .into_iter()
                .map(|e| if out { &e.destination } else { &e.origin })
                .filter(|id| id.starts_with("dataset:"))
                .filter_map(|id| dataset_id(id))
                .collect()
        };
        let graph = members
            .into_iter()
            .map(|(id, nodes)| {
                let first = &nodes[0].data;
                let (namespace, name) = (first["namespace"].clone(), first.get("job").or(first.get("name")).cloned().unwrap_or(Value::Null));
                let (kind, data) = if nodes[0].kind == "RUN" {
                    let starts: Vec<i64> = nodes.iter().filter_map(|n| n.data["startedAt"].as_i64().or(n.data["endedAt"].as_i64())).collect();
                    let ends: Vec<i64> = nodes.iter().filter_map(|n| n.data["endedAt"].as_i64().or(n.data["startedAt"].as_i64())).collect();
                    // The run that started last (run ids sort by time).
                    let latest = nodes
                        .iter()
                        .max_by_key(|n| (n.data["startedAt"].as_i64(), n.data["runId"].as_str()))
                        .map(|n| &n.data);
                    let latest_run = latest.map(|r| {
                        let state = match r["state"].as_str() {
                            Some("START" | "RUNNING") => "RUNNING",
                            Some("COMPLETE") => "COMPLETED",
                            Some("FAIL") => "FAILED",
                            Some("ABORT") => "ABORTED",
                            _ => "NEW",
                        };
                        serde_json::json!({
                            "id": r["runId"],
                            "state": state,
                            "startedAt": time(&r["startedAt"]),
                            "endedAt": time(&r["endedAt"]),
                            "facets": r.get("facets").cloned().unwrap_or_else(|| serde_json::json!({})),
                        })
                    });
                    let data = serde_json::json!({
                        "id": {"namespace": namespace, "name": name},
                        "type": "BATCH",
                        "name": name,
                        "simpleName": name,
                        "namespace": namespace,
                        "parentJobName": null,
                        "createdAt": starts.iter().min().and_then(|t| time(&(*t).into())),
                        "updatedAt": ends.iter().max().and_then(|t| time(&(*t).into())),
                        "inputs": ids(&id, false),
                        "outputs": ids(&id, true),
                        "location": null,
                        "description": null,
                        "facets": {},
                        "currentVersion": null,
                        "latestRun": latest_run,
                        "runs": nodes.iter().map(|n| n.data["runId"].clone()).collect::<Vec<_>>(),
                    });
                    ("JOB", data)
                } else {
                    let created: Vec<&str> = nodes.iter().filter_map(|n| n.data["createdAt"].as_str()).collect();
                    let data = serde_json::json!({
                        "id": {"namespace": namespace, "name": name},
                        "type": "DB_TABLE",
                        "name": name,
                        "physicalName": name,
                        "namespace": namespace,
                        "sourceName": namespace,
                        "createdAt": created.iter().min(),
                        "updatedAt": created.iter().max(),
                        "lastModifiedAt": created.iter().max(),
                        "fields": [],
                        "tags": [],
                        "facets": {},
                        "currentVersion": null,
                        "deleted": false,
                        "versions": nodes.iter().map(|n| n.data["version"].clone()).collect::<Vec<_>>(),
                    });
                    ("DATASET", data)
                };
                let in_edges = edges_of(&id, false).into_iter().cloned().collect();
                let out_edges = edges_of(&id, true).into_iter().cloned().collect();
                Node {
                    id,
                    kind,
                    data,
                    in_edges,
                    out_edges,
                }
            })
            .collect();
        LineageGraph {
            graph,
            truncated: self.truncated,
        }
    }

    /// Every edge, sorted, as (origin, destination).
    pub fn edges(&self) -> Vec<(&str, &str)> {
        let mut edges: Vec<(&str, &str)> = self
            .graph
            .iter()
            .flat_map(|n| {
                n.out_edges
                    .iter()
                    .map(|e| (e.origin.as_str(), e.destination.as_str()))
            })
            .collect();
        edges.sort();
        edges
    }
}

/// A run as the store knows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    /// The run id.
    #[serde(rename = "runId")]
    pub run_id: String,
    /// The job's namespace.
    pub namespace: String,
    /// The job's name.
    pub job: String,
    /// The latest state (`START`, `COMPLETE`, `FAIL`, ...), if any was sent.
    pub state: Option<String>,
    /// Start (microseconds since the epoch).
    #[serde(rename = "startedAt")]
    pub started_at: Option<i64>,
    /// End (microseconds since the epoch).
    #[serde(rename = "endedAt")]
    pub ended_at: Option<i64>,
    /// The parent run.
    #[serde(rename = "parentRunId")]
    pub parent_run_id: Option<String>,
    /// The root run of the tree.
    #[serde(rename = "rootRunId")]
    pub root_run_id: Option<String>,
    /// `prov_fingerprint`.
    pub fingerprint: Option<String>,
    /// The image as given.
    #[serde(rename = "containerImage")]
    pub container_image: Option<String>,
    /// The image digest, if known.
    #[serde(rename = "containerDigest")]
    pub container_digest: Option<String>,
    /// `prov_parameters` sha-256.
    #[serde(rename = "parametersSha256")]
    pub params_sha256: Option<String>,
    /// Exit code from `prov_execution`.
    #[serde(rename = "exitCode")]
    pub exit_code: Option<i64>,
    /// User from `prov_execution`.
    pub user: Option<String>,
    /// Host from `prov_execution`.
    pub host: Option<String>,
}

/// A dataset version as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionRecord {
    /// The dataset's namespace.
    pub namespace: String,
    /// The dataset's name.
    pub name: String,
    /// The version.
    pub version: String,
    /// sha-256 hex of its content, when known.
    pub digest: Option<String>,
    /// Size in bytes, when known.
    pub size: Option<u64>,
    /// When it was first recorded (event time, microseconds since the epoch).
    #[serde(rename = "createdAt")]
    pub created_at: i64,
}

impl VersionRecord {
    /// Its Marquez node id.
    pub fn node_id(&self) -> String {
        format!("dataset:{}:{}#{}", self.namespace, self.name, self.version)
    }
}

/// Filters for listing runs.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Job namespace.
    pub namespace: Option<String>,
    /// Job name.
    pub job: Option<String>,
    /// Latest state; `OTHER` matches the runs whose events never moved
    /// their state (only OTHER events, or events without a type).
    pub state: Option<String>,
    /// First seen at or after (microseconds).
    pub since: Option<i64>,
    /// First seen before (microseconds).
    pub until: Option<i64>,
    /// `prov_execution` user.
    pub user: Option<String>,
    /// `prov_execution` host.
    pub host: Option<String>,
    /// Image digest (`sha256:<hex>`).
    pub container_digest: Option<String>,
    /// The start of an image digest (`sha256:7e9c1a3b5d7f`, as `lineage`
    /// prints it): every digest that begins so.
    pub container_digest_prefix: Option<String>,
    /// Image registry (`quay.io`): runs on that registry, or on one not
    /// recorded.
    pub container_registry: Option<String>,
    /// Image repository (`biocontainers/bwa`), with `container_tag` optional.
    pub container_repository: Option<String>,
    /// Image tag.
    pub container_tag: Option<String>,
    /// Only runs whose image is known by tag alone.
    pub unpinned: bool,
    /// `prov_fingerprint`.
    pub fingerprint: Option<String>,
}

impl RunFilter {
    /// Whether a text filter holds a NUL, which no stored name can hold on a
    /// store that refuses them (PostgreSQL).
    pub(crate) fn holds_nul(&self) -> bool {
        [
            &self.namespace,
            &self.job,
            &self.state,
            &self.user,
            &self.host,
            &self.container_digest,
            &self.container_digest_prefix,
            &self.container_registry,
            &self.container_repository,
            &self.container_tag,
            &self.fingerprint,
        ]
        .into_iter()
        .flatten()
        .any(|t| t.contains('\0'))
    }
}

/// A window of a long list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Items to skip.
    pub offset: u64,
    /// Items to return at most.
    pub limit: u64,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            offset: 0,
            limit: 100,
        }
    }
}

/// One page of a list, and how long the whole list is: never silently cut.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Paged<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// How many items the whole list has.
    pub total: u64,
    /// The page's offset.
    pub offset: u64,
    /// The page's limit.
    pub limit: u64,
}

impl<T> Paged<T> {
    /// The offset of the next page, if there is one.
    pub fn next_offset(&self) -> Option<u64> {
        let next = self.offset + self.items.len() as u64;
        (next < self.total).then_some(next)
    }
}

/// What became of one event of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Stored at this chain position.
    Stored {
        /// Chain position.
        seq: u64,
    },
    /// The same event was stored before, at this position.
    Duplicate {
        /// Chain position of the earlier copy.
        seq: u64,
    },
    /// Not stored: it could not be read as an OpenLineage event.
    Rejected {
        /// Why, naming the member at fault.
        reason: String,
    },
}

/// The result of walking the hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Events checked.
    pub events: u64,
    /// The last link: the anchor an auditor keeps (`seq:hex`).
    pub head: Option<String>,
    /// The first position that does not verify, if any.
    pub broken: Option<ChainBreak>,
}

/// Where and how the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The first chain position that fails.
    pub position: u64,
    /// What is wrong there.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Target) {
        let parsed = Target::parse(input).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed, expected, "{input}");
        assert_eq!(parsed.to_string(), input);
    }

    fn ds(namespace: &str, name: &str) -> Target {
        Target::Dataset {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    #[test]
    fn marquez_ids_keep_colons_in_url_namespaces() {
        check("dataset:file:/data/S1.bam", ds("file", "/data/S1.bam"));
        check(
            "dataset:s3://bucket:reads/S1.fastq.gz",
            ds("s3://bucket", "reads/S1.fastq.gz"),
        );
        check(
            "dataset:postgres://db.example:5432:genomics.public.samples",
            ds("postgres://db.example:5432", "genomics.public.samples"),
        );
        check(
            "dataset:file://host-7:/scratch/a:b.txt",
            ds("file://host-7", "/scratch/a:b.txt"),
        );
        check(
            "dataset:food_delivery:public.orders",
            ds("food_delivery", "public.orders"),
        );
        check(
            "dataset:file:/x.vcf#sha256:abc",
            Target::Version {
                namespace: "file".into(),
                name: "/x.vcf".into(),
                version: "sha256:abc".into(),
            },
        );
        check(
            "job:my-namespace:etl.step",
            Target::Job {
                namespace: "my-namespace".into(),
                name: "etl.step".into(),
            },
        );
        let digest = "a".repeat(64);
        check(&format!("sha256:{digest}"), Target::Digest(digest));
        check(
            "run:0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d31",
            Target::Run("0190d2c4-7f3a-7c2e-9b1d-2f6a8c4e5d31".into()),
        );
    }

    #[test]
    fn bad_targets_say_what_is_expected() {
        for (bad, needle) in [
            ("sha256:abc", "64 hexadecimal"),
            ("run:nope", "expected a UUID"),
            ("dataset:nocolon", "dataset:<namespace>:<name>"),
            ("job:", "job:<namespace>:<name>"),
            ("/data/x.bam", "expected sha256:<hex>"),
        ] {
            let err = Target::parse(bad).unwrap_err();
            assert!(err.to_string().contains(needle), "{bad}: {err}");
        }
    }
}
