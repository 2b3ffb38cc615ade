//! Provenance for genomic pipelines, as OpenLineage 2-0-2 events.
//!
//! This crate is what a pipeline embeds. It knows the event model, the standard
//! facets and the project's own `prov_*` facets (content checksums, container
//! digests, canonical parameters, execution, fingerprints), image references and
//! run ids. It knows nothing of databases or terminals.
//!
//! Build the COMPLETE event of an alignment step and read it back:
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
pub mod oci;
mod run_id;
mod time;
mod validate;

pub use event::{
    DatasetEvent, Event, EventType, InputDataset, Job, JobEvent, OPENLINEAGE_SPEC_URL,
    OutputDataset, ParseError, Run, RunEvent, StaticDataset,
};
pub use run_id::{RunId, RunIdError};
pub use time::{EventTime, TimeError};
pub use validate::{Deviation, validate};

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
