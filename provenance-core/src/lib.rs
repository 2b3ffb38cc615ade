//! Provenance for genomic pipelines, as OpenLineage 2-0-2 events.
//!
//! This crate is what a pipeline embeds. It records runs (with the content
//! hashes of every input and output, the container digest, the parameters and
//! how the command ran), sends them through transports (file, console, HTTP
//! with a durable spool), and knows the event model, the standard facets and
//! the project's own `prov_*` facets. It knows nothing of databases or terminals.
//!
//! A two-step pipeline (align -> call) under a parent run:
//!
//! ```
//! use provenance_core::facets::ContainerRuntime;
//! use provenance_core::recorder::{Execution, Recorder};
//! use provenance_core::transport::FileTransport;
//! # let dir = std::env::temp_dir().join(format!("prov-doc-pipeline-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let p = |name: &str| dir.join(name).display().to_string();
//! # std::fs::write(p("S1.fastq"), "@r1\nACGT\n+\nIIII\n")?;
//! # std::fs::write(p("GRCh38.fa"), ">chr1\nACGTACGT\n")?;
//!
//! let events = dir.join("events.ndjson");
//! let recorder = Recorder::new("genomics", Box::new(FileTransport::open(&events, true)?));
//!
//! let pipeline = recorder.step("wgs").job_type("PIPELINE").start()?;
//!
//! let align = recorder
//!     .step("bwa_mem")
//!     .parent(&pipeline)
//!     .container("quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8", ContainerRuntime::Docker)
//!     .param("threads", 8)
//!     .input(p("S1.fastq"))
//!     .input(p("GRCh38.fa"))
//!     .software("bwa", "0.7.17-r1188")
//!     .start()?; // inputs hashed, START emitted
//! std::fs::write(p("S1.bam"), "aligned reads")?; // the step's real work
//! align.complete(&[&p("S1.bam")])?; // output hashed, COMPLETE emitted
//!
//! let call = recorder
//!     .step("bcftools_call")
//!     .parent(&pipeline)
//!     .input(p("S1.bam"))
//!     .input(p("GRCh38.fa"))
//!     .start()?;
//! std::fs::write(p("S1.vcf"), "##fileformat=VCFv4.2\n")?;
//! call.complete(&[&p("S1.vcf")])?;
//!
//! pipeline.complete_with(&[], Execution::default())?;
//! assert_eq!(std::fs::read_to_string(&events)?.lines().count(), 6);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The event model on its own: build the COMPLETE event of an alignment step
//! and read it back.
//!
//! ```
//! use provenance_core::facets::*;
//! use provenance_core::{Event, EventType, InputDataset, Job, Run, RunEvent, RunId};
//! use serde_json::json;
//!
//! let fastq_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
//! let checksum = ProvChecksumDatasetFacet::file(4, fastq_sha256);
//! let mut input = InputDataset::new("file", "/data/S1_R1.fastq.gz");
//! input.facets.set(&checksum);
//! input.facets.set(&checksum.version_facet().unwrap());
//!
//! let params = json!({"threads": 8, "reference": "GRCh38"});
//! let params = ProvParametersRunFacet::new(params.as_object().unwrap().clone())?;
//! let container = ProvContainerRunFacet::new(
//!     "quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8",
//!     ContainerRuntime::Docker,
//! )?;
//!
//! let mut run = Run::new(RunId::new_v7());
//! run.facets.set(&params.execution_parameters()?);
//! run.facets.set(&params);
//! run.facets.set(&container);
//! let mut event = RunEvent::new(EventType::Complete, run, Job::new("genomics", "bwa_mem"));
//! event.inputs = Some(vec![input]);
//!
//! let text = Event::Run(event).to_json();
//! let Event::Run(back) = Event::from_slice(text.as_bytes())? else { unreachable!() };
//! let container = back.run.facets.get::<ProvContainerRunFacet>().unwrap()?;
//! assert!(!container.pinned, "a tag alone is unpinned");
//! assert!(provenance_core::validate(&Event::Run(back)).is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod canonical;
mod event;
pub mod facets;
pub mod hash;
mod json;
pub mod oci;
pub mod recorder;
pub mod resolve;
mod run_id;
mod time;
pub mod transport;
mod validate;

pub use event::{
    DatasetEvent, Event, EventType, InputDataset, Job, JobEvent, OPENLINEAGE_SPEC_URL,
    OutputDataset, ParseError, Run, RunEvent, StaticDataset,
};
pub use run_id::{RunId, RunIdError};
pub use time::{EventTime, TimeError};
pub use validate::{Deviation, duplicate_members, validate, validate_json};

/// Lowercase hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// `text` with the password of every URL in it
/// (`scheme://user:password@host`) replaced by [`recorder::REDACTED`].
pub fn redact_url_password(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority ends where a path, query or fragment begins, or the
        // URL does (a space, a comma or a quote after it).
        let end = after
            .find(|c: char| "/?#,;'\"<>".contains(c) || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(user_end), Some(colon)) if colon < user_end => {
                out.push_str(&authority[..=colon]);
                out.push_str(recorder::REDACTED);
                out.push_str(&authority[user_end..]);
            }
            _ => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}
