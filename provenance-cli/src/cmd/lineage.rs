//! `prov lineage`: where a result came from (or what was made from it), as a
//! tree for people, Marquez-shaped JSON for scripts, DOT and Mermaid graphs,
//! or a W3C PROV document or RO-Crate metadata for exchange.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use provenance_store::{Direction, LineageGraph, LineageQuery, Node, Target};
use serde_json::Value;

use crate::ctx::Ctx;

/// Show the lineage of a target: a file path (matched by its content digest,
/// then by its path), sha256:<hex>, run:<uuid>, dataset:<ns>:<name>[#<version>]
/// or job:<ns>:<name>.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  prov lineage results/cohort.vcf.gz\n  prov lineage --downstream data/S1_R1.fastq.gz\n  prov lineage --format dot results/cohort.vcf.gz | dot -Tsvg > lineage.svg\n  prov lineage --as-of 2026-01-31T00:00:00Z dataset:file:/results/cohort.vcf.gz"
)]
pub struct Args {
    /// What to start from.
    target: String,

    /// Towards the inputs that made the target (the default).
    #[arg(long, conflicts_with = "downstream")]
    upstream: bool,

    /// Towards what was made from the target.
    #[arg(long)]
    downstream: bool,

    /// How many steps to walk.
    #[arg(long, default_value_t = 20)]
    depth: u32,

    /// The graph as it stood at this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = super::parse_time)]
    as_of: Option<i64>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Tree)]
    format: GraphFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum GraphFormat {
    /// An indented tree for people.
    Tree,
    /// Marquez's `{"graph": [...]}`.
    Json,
    /// Graphviz.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
    /// A W3C PROV document in PROV-JSON: runs as activities, dataset
    /// versions as entities, images and users as agents.
    Prov,
    /// The metadata of a detached RO-Crate (Process Run Crate 0.5): save it
    /// as ro-crate-metadata.json in a folder of its own.
    RoCrate,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let store = ctx.existing_store()?;
        let target = super::resolve_target(ctx, &store, &self.target)?;
        let direction = if self.downstream {
            Direction::Downstream
        } else {
            Direction::Upstream
        };
        let graph = super::read_consistently(
            &store,
            store.lineage(&LineageQuery {
                target: target.clone(),
                direction,
                depth: self.depth,
                as_of: self.as_of,
            }),
        )
        .with_context(|| format!("find the lineage of {}", self.target))?;
        if graph.truncated && matches!(self.format, GraphFormat::Prov | GraphFormat::RoCrate) {
            anyhow::bail!(
                "the lineage of {} goes deeper than --depth {}: a document for exchange would leave out what lies beyond it without saying so; raise --depth",
                self.target,
                self.depth
            );
        }
        let mut out = std::io::stdout().lock();
        match self.format {
            GraphFormat::Json => {
                super::write_json(&mut out, &graph)?;
            }
            GraphFormat::Tree => write_tree(&mut out, &graph, direction, &target)?,
            GraphFormat::Dot => write_dot(&mut out, &graph)?,
            GraphFormat::Mermaid => write_mermaid(&mut out, &graph)?,
            GraphFormat::Prov => super::write_json(&mut out, &graph.w3c_prov())?,
            GraphFormat::RoCrate => {
                let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                super::write_json(&mut out, &graph.ro_crate(&self.target, &now))?
            }
        }
        if graph.truncated {
            eprintln!(
                "prov: note: the graph goes deeper than --depth {}; raise it to see all",
                self.depth
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The first `n` characters of `text` (digests stored by another producer
/// need not be ASCII).
fn prefix(text: &str, n: usize) -> &str {
    text.char_indices()
        .nth(n)
        .map_or(text, |(at, _)| &text[..at])
}

fn short(hex: &str) -> &str {
    prefix(hex, 12)
}

fn dataset_label(node: &Node) -> String {
    let d = &node.data;
    let name = d["name"].as_str().unwrap_or("?");
    let ns = d["namespace"].as_str().unwrap_or("?");
    let place = if ns == "file" {
        name.to_owned()
    } else {
        format!("{ns}:{name}")
    };
    match d["digest"].as_str() {
        Some(h) => format!("{place}  sha256:{}", short(h)),
        None => format!(
            "{place}  (version {})",
            d["version"].as_str().unwrap_or("?")
        ),
    }
}

fn run_label(node: &Node) -> String {
    let d = &node.data;
    let job = d["job"].as_str().unwrap_or("?");
    let id = d["runId"].as_str().unwrap_or("?");
    let state = d["state"].as_str().unwrap_or("UNKNOWN");
    let container = &d["facets"]["prov_container"];
    let image = match (d["containerDigest"].as_str(), d["containerImage"].as_str()) {
        (Some(digest), _) => {
            // As `audit container` takes it back: the registry unless it is
            // Docker Hub's, the repository, the start of the digest.
            let repo = container["repository"].as_str().unwrap_or("");
            let registry = match container["registry"].as_str() {
                Some(r) if r != "docker.io" && !repo.is_empty() => format!("{r}/"),
                _ => String::new(),
            };
            format!("image {registry}{repo}@{}", prefix(digest, 19))
        }
        (None, Some(image)) => format!("image UNPINNED {image}"),
        (None, None) => "no container".to_owned(),
    };
    format!("{job}  run {id}  {state}  {image}")
}

fn run_params(node: &Node) -> Option<String> {
    let params = node.data["facets"]["prov_parameters"]["parameters"].as_object()?;
    if params.is_empty() {
        return None;
    }
    let text: Vec<String> = params
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    Some(format!("params: {}", text.join(" ")))
}

/// Upstream: each dataset, then the run that wrote it, then that run's inputs.
fn write_tree(
    out: &mut impl Write,
    graph: &LineageGraph,
    direction: Direction,
    target: &Target,
) -> std::io::Result<()> {
    let upstream = direction != Direction::Downstream;
    let next = |node: &Node| -> Vec<String> {
        let edges = if upstream {
            &node.in_edges
        } else {
            &node.out_edges
        };
        edges
            .iter()
            .map(|e| {
                if upstream {
                    e.origin.clone()
                } else {
                    e.destination.clone()
                }
            })
            .collect()
    };
    // Roots: nodes nothing points to in the walking direction.
    let pointed: BTreeSet<String> = graph.graph.iter().flat_map(&next).collect();
    let roots: Vec<&Node> = graph
        .graph
        .iter()
        .filter(|n| !pointed.contains(&n.id))
        .collect();
    let mut printed = BTreeSet::new();
    for root in roots {
        walk(out, graph, root, "", "", &next, &mut printed)?;
    }
    // A cycle (a step that reads and rewrites the same version) has no
    // root: what is left starts from the target, then datasets, then runs.
    let mut left: Vec<&Node> = graph.graph.iter().collect();
    left.sort_by_key(|n| (!is_target(n, target), n.kind == "RUN"));
    for node in left {
        if !printed.contains(&node.id) {
            walk(out, graph, node, "", "", &next, &mut printed)?;
        }
    }
    Ok(())
}

/// Whether `node` is (a version of) what the query asked about.
fn is_target(node: &Node, target: &Target) -> bool {
    let d = &node.data;
    let named = |namespace: &str, name: &str| {
        d["namespace"].as_str() == Some(namespace) && d["name"].as_str() == Some(name)
    };
    match target {
        Target::Digest(hex) => d["digest"].as_str() == Some(hex),
        Target::Version {
            namespace, name, ..
        }
        | Target::Dataset { namespace, name } => node.kind != "RUN" && named(namespace, name),
        Target::Run(id) => node.id == format!("run:{id}"),
        Target::Job { .. } => false,
    }
}

fn walk(
    out: &mut impl Write,
    graph: &LineageGraph,
    node: &Node,
    first: &str,
    rest: &str,
    next: &dyn Fn(&Node) -> Vec<String>,
    printed: &mut BTreeSet<String>,
) -> std::io::Result<()> {
    let label = if node.kind == "RUN" {
        run_label(node)
    } else {
        dataset_label(node)
    };
    let again = !printed.insert(node.id.clone());
    writeln!(
        out,
        "{first}{label}{}",
        if again { "  (shown above)" } else { "" }
    )?;
    if again {
        return Ok(());
    }
    if node.kind == "RUN"
        && let Some(p) = run_params(node)
    {
        writeln!(out, "{rest}  {p}")?;
    }
    let children: Vec<&Node> = next(node).iter().filter_map(|id| graph.node(id)).collect();
    for (i, child) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        let (branch, indent) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        walk(
            out,
            graph,
            child,
            &format!("{rest}{branch}"),
            &format!("{rest}{indent}"),
            next,
            printed,
        )?;
    }
    Ok(())
}

fn node_label(node: &Node) -> String {
    if node.kind == "RUN" {
        format!(
            "{}\\n{}",
            node.data["job"].as_str().unwrap_or("?"),
            node.data["state"].as_str().unwrap_or("")
        )
    } else {
        let name = node.data["name"].as_str().unwrap_or("?");
        let file = name.rsplit('/').next().unwrap_or(name);
        match node.data["digest"].as_str() {
            Some(h) => format!("{file}\\nsha256:{}", short(h)),
            None => file.to_owned(),
        }
    }
}

fn write_dot(out: &mut impl Write, graph: &LineageGraph) -> std::io::Result<()> {
    writeln!(out, "digraph lineage {{\n  rankdir=LR;")?;
    for (i, n) in graph.graph.iter().enumerate() {
        let shape = if n.kind == "RUN" { "box" } else { "note" };
        writeln!(
            out,
            "  n{i} [shape={shape}, label=\"{}\"];",
            node_label(n).replace('"', "\\\"")
        )?;
    }
    let index = |id: &str| graph.graph.iter().position(|n| n.id == id);
    for (a, b) in graph.edges() {
        if let (Some(a), Some(b)) = (index(a), index(b)) {
            writeln!(out, "  n{a} -> n{b};")?;
        }
    }
    writeln!(out, "}}")
}

fn write_mermaid(out: &mut impl Write, graph: &LineageGraph) -> std::io::Result<()> {
    writeln!(out, "flowchart LR")?;
    for (i, n) in graph.graph.iter().enumerate() {
        let label = node_label(n).replace("\\n", "<br/>").replace('"', "'");
        if n.kind == "RUN" {
            writeln!(out, "  n{i}[\"{label}\"]")?;
        } else {
            writeln!(out, "  n{i}[(\"{label}\")]")?;
        }
    }
    let index = |id: &str| graph.graph.iter().position(|n| n.id == id);
    for (a, b) in graph.edges() {
        if let (Some(a), Some(b)) = (index(a), index(b)) {
            writeln!(out, "  n{a} --> n{b}")?;
        }
    }
    Ok(())
}
