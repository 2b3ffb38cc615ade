//! Typed views of the standard OpenLineage facets this project reads and writes.
//!
//! Each struct follows one schema version in `spec/facets/` of OpenLineage, named
//! by its `SCHEMA_URL`. Every struct keeps members it does not know in `extra`, so
//! reading a facet and writing it back loses nothing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    DatasetKind, Facet, FacetBase, JobKind, OutputKind, RunKind, Text, canonical_text, open_facet,
};
use crate::RunId;
use crate::json::Object;

/// Declares the `Facet` impl of a standard facet: key, schema URL and kind.
macro_rules! facet {
    ($ty:ident, $key:literal, $kind:ty, $file:literal $(, $write:ident)?) => {
        super::impl_facet!(
            $ty,
            $key,
            $kind,
            concat!(
                "https://openlineage.io/spec/facets/",
                $file,
                "#/$defs/",
                stringify!($ty)
            )
            $(, $write)?
        );
    };
}

/// A reference to a run: its id (and any forwarded facets, kept in `extra`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRef {
    /// The run's UUID.
    #[serde(rename = "runId")]
    pub run_id: RunId,
    /// Members this crate does not model (for example forwarded `facets`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A reference to a job by namespace and name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRef {
    /// The job's namespace.
    pub namespace: String,
    /// The job's name within its namespace.
    pub name: String,
    /// Members this crate does not model (for example forwarded `facets`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl RunRef {
    /// A reference to `run_id`.
    pub fn new(run_id: RunId) -> Self {
        RunRef {
            run_id,
            extra: Map::new(),
        }
    }
}

impl JobRef {
    /// A reference to the job `namespace`/`name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        JobRef {
            namespace: namespace.into(),
            name: name.into(),
            extra: Map::new(),
        }
    }
}

/// The root of a run tree: the top run and its job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootRef {
    /// The root run.
    pub run: RunRef,
    /// The root run's job.
    pub job: JobRef,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `parent`: the run that spawned this one, and the root of the whole tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParentRunFacet {
    /// `_producer`, `_schemaURL`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The parent run.
    pub run: RunRef,
    /// The parent run's job.
    pub job: JobRef,
    /// The top of the run tree, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<RootRef>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    ParentRunFacet,
    "parent",
    RunKind,
    "1-2-0/ParentRunFacet.json",
    write_text
);

impl ParentRunFacet {
    /// A parent facet pointing at `run` of `job`, without a root.
    pub fn new(run: RunId, job: JobRef) -> Self {
        ParentRunFacet {
            base: FacetBase::ours::<Self>(),
            run: RunRef::new(run),
            job,
            root: None,
            extra: Map::new(),
        }
    }

    /// Sets the root of the run tree.
    pub fn with_root(mut self, run: RunId, job: JobRef) -> Self {
        self.root = Some(RootRef {
            run: RunRef::new(run),
            job,
            extra: Map::new(),
        });
        self
    }
}

/// `nominalTime`: the scheduled time of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NominalTimeRunFacet {
    /// `_producer`, `_schemaURL`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// Start of the nominal interval (RFC 3339).
    #[serde(rename = "nominalStartTime")]
    pub nominal_start_time: String,
    /// End of the nominal interval (RFC 3339), if any.
    #[serde(
        rename = "nominalEndTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub nominal_end_time: Option<String>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    NominalTimeRunFacet,
    "nominalTime",
    RunKind,
    "1-0-1/NominalTimeRunFacet.json"
);

impl NominalTimeRunFacet {
    /// A nominal time starting at `start` (RFC 3339).
    pub fn new(start: impl Into<String>) -> Self {
        NominalTimeRunFacet {
            base: FacetBase::ours::<Self>(),
            nominal_start_time: start.into(),
            nominal_end_time: None,
            extra: Map::new(),
        }
    }
}

/// `errorMessage`: why a run failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorMessageRunFacet {
    /// `_producer`, `_schemaURL`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The error message.
    pub message: String,
    /// The language of the failing program (for a wrapped command: `shell`).
    #[serde(rename = "programmingLanguage")]
    pub programming_language: String,
    /// A stack trace or the tail of stderr, if any.
    #[serde(
        rename = "stackTrace",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stack_trace: Option<String>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    ErrorMessageRunFacet,
    "errorMessage",
    RunKind,
    "1-0-1/ErrorMessageRunFacet.json"
);

impl ErrorMessageRunFacet {
    /// An error `message` from a program written in `language`.
    pub fn new(message: impl Into<String>, language: impl Into<String>) -> Self {
        ErrorMessageRunFacet {
            base: FacetBase::ours::<Self>(),
            message: message.into(),
            programming_language: language.into(),
            stack_trace: None,
            extra: Map::new(),
        }
    }
}

/// One entry of `executionParameters`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionParameter {
    /// The parameter's key.
    pub key: String,
    /// A human name, if different from the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the parameter means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The value, as a string (the spec's type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `executionParameters`: the parameters of a run, as strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionParametersRunFacet {
    /// `_producer`, `_schemaURL`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The parameters.
    #[serde(default)]
    pub parameters: Vec<ExecutionParameter>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    ExecutionParametersRunFacet,
    "executionParameters",
    RunKind,
    "1-0-0/ExecutionParametersRunFacet.json",
    write_text
);

impl ExecutionParametersRunFacet {
    /// The facet for `(key, value)` pairs.
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        ExecutionParametersRunFacet {
            base: FacetBase::ours::<Self>(),
            parameters: pairs
                .into_iter()
                .map(|(k, v)| ExecutionParameter {
                    key: k.into(),
                    name: None,
                    description: None,
                    value: Some(v.into()),
                    extra: Map::new(),
                })
                .collect(),
            extra: Map::new(),
        }
    }
}

/// One environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentVariable {
    /// The variable's name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// `environmentVariables`: the environment a run saw (only what was allowed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentVariablesRunFacet {
    /// `_producer`, `_schemaURL`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The variables.
    #[serde(rename = "environmentVariables")]
    pub environment_variables: Vec<EnvironmentVariable>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    EnvironmentVariablesRunFacet,
    "environmentVariables",
    RunKind,
    "1-0-0/EnvironmentVariablesRunFacet.json"
);

impl EnvironmentVariablesRunFacet {
    /// The facet for `(name, value)` pairs.
    pub fn new<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        EnvironmentVariablesRunFacet {
            base: FacetBase::ours::<Self>(),
            environment_variables: vars
                .into_iter()
                .map(|(name, value)| EnvironmentVariable {
                    name: name.into(),
                    value: value.into(),
                })
                .collect(),
            extra: Map::new(),
        }
    }
}

/// `processing_engine`: the engine that ran the job and its OpenLineage adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessingEngineRunFacet {
    /// `_producer`, `_schemaURL`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The engine's version.
    pub version: Text,
    /// The engine's name (`prov`, `nextflow`, `spark`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    /// The version of the OpenLineage integration.
    #[serde(
        rename = "openlineageAdapterVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub openlineage_adapter_version: Option<String>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    ProcessingEngineRunFacet,
    "processing_engine",
    RunKind,
    "1-1-1/ProcessingEngineRunFacet.json",
    write_text
);

impl ProcessingEngineRunFacet {
    /// An engine `name` at `version`.
    pub fn new(name: impl Into<Text>, version: impl Into<Text>) -> Self {
        ProcessingEngineRunFacet {
            base: FacetBase::ours::<Self>(),
            version: version.into(),
            name: Some(name.into()),
            openlineage_adapter_version: None,
            extra: Map::new(),
        }
    }
}

/// `jobType`: batch or streaming, the integration, and the kind of job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobTypeJobFacet {
    /// `_producer`, `_schemaURL`, `_deleted`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// `BATCH` or `STREAMING`.
    #[serde(rename = "processingType")]
    pub processing_type: Text,
    /// The integration (`PROV`, `AIRFLOW`, `SPARK`, ...).
    pub integration: Text,
    /// The kind of job (`TASK`, `PIPELINE`, `QUERY`, ...).
    #[serde(rename = "jobType", default, skip_serializing_if = "Option::is_none")]
    pub job_type: Option<Text>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    JobTypeJobFacet,
    "jobType",
    JobKind,
    "2-0-4/JobTypeJobFacet.json",
    write_text
);

impl JobTypeJobFacet {
    /// A batch job of `job_type` from `integration`.
    pub fn batch(integration: impl Into<Text>, job_type: impl Into<Text>) -> Self {
        JobTypeJobFacet {
            base: FacetBase::ours::<Self>(),
            processing_type: "BATCH".into(),
            integration: integration.into(),
            job_type: Some(job_type.into()),
            extra: Map::new(),
        }
    }
}

/// `sourceCodeLocation`: where the job's code lives (git URL and version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceCodeLocationJobFacet {
    /// `_producer`, `_schemaURL`, `_deleted`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The version control system (`git`).
    #[serde(rename = "type")]
    pub kind: String,
    /// A URL of the code.
    pub url: String,
    /// The repository URL.
    #[serde(rename = "repoUrl", default, skip_serializing_if = "Option::is_none")]
    pub repo_url: Option<String>,
    /// The path inside the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    SourceCodeLocationJobFacet,
    "sourceCodeLocation",
    JobKind,
    "1-1-0/SourceCodeLocationJobFacet.json"
);

/// `documentation` of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentationJobFacet {
    /// `_producer`, `_schemaURL`, `_deleted`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The description.
    pub description: String,
    /// Its MIME type, such as `text/markdown`.
    #[serde(
        rename = "contentType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub content_type: Option<String>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    DocumentationJobFacet,
    "documentation",
    JobKind,
    "1-1-0/DocumentationJobFacet.json"
);

/// `documentation` of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentationDatasetFacet {
    /// `_producer`, `_schemaURL`, `_deleted`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The description.
    pub description: String,
    /// Its MIME type, such as `text/markdown`.
    #[serde(
        rename = "contentType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub content_type: Option<String>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    DocumentationDatasetFacet,
    "documentation",
    DatasetKind,
    "1-1-0/DocumentationDatasetFacet.json"
);

/// One owner of a job or dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Owner {
    /// Who, for example `team:genomics-core` or `user:ada`.
    pub name: String,
    /// The kind of ownership (`MAINTAINER`, ...).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `ownership` of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnershipJobFacet {
    /// `_producer`, `_schemaURL`, `_deleted`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The owners.
    #[serde(default)]
    pub owners: Vec<Owner>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    OwnershipJobFacet,
    "ownership",
    JobKind,
    "1-0-1/OwnershipJobFacet.json"
);

/// `ownership` of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnershipDatasetFacet {
    /// `_producer`, `_schemaURL`, `_deleted`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The owners.
    #[serde(default)]
    pub owners: Vec<Owner>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    OwnershipDatasetFacet,
    "ownership",
    DatasetKind,
    "1-0-1/OwnershipDatasetFacet.json"
);

/// One tag: a key, a value, and who set it; on datasets optionally a field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    /// The tag's key.
    pub key: String,
    /// The tag's value.
    pub value: String,
    /// Who set it (`USER`, `PROV`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The dataset field tagged (dataset tags only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Tag {
    /// A tag `key`=`value` set by `source`.
    pub fn new(
        key: impl Into<String>,
        value: impl Into<String>,
        source: impl Into<String>,
    ) -> Self {
        Tag {
            key: key.into(),
            value: value.into(),
            source: Some(source.into()),
            field: None,
            extra: Map::new(),
        }
    }
}

/// `tags` of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagsRunFacet {
    /// `_producer`, `_schemaURL`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(TagsRunFacet, "tags", RunKind, "1-0-0/TagsRunFacet.json");

/// `tags` of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagsJobFacet {
    /// `_producer`, `_schemaURL`, `_deleted`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(TagsJobFacet, "tags", JobKind, "1-0-0/TagsJobFacet.json");

/// `tags` of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagsDatasetFacet {
    /// `_producer`, `_schemaURL`, `_deleted`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    TagsDatasetFacet,
    "tags",
    DatasetKind,
    "1-0-0/TagsDatasetFacet.json"
);

/// `version`: the version of a dataset. This project writes `sha256:<hex>` of
/// the content, so any OpenLineage consumer sees content versions natively.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetVersionDatasetFacet {
    /// `_producer`, `_schemaURL`, `_deleted`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The version.
    #[serde(rename = "datasetVersion")]
    pub dataset_version: String,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    DatasetVersionDatasetFacet,
    "version",
    DatasetKind,
    "1-0-1/DatasetVersionDatasetFacet.json",
    write_text
);

impl DatasetVersionDatasetFacet {
    /// A version string.
    pub fn new(version: impl Into<String>) -> Self {
        DatasetVersionDatasetFacet {
            base: FacetBase::ours::<Self>(),
            dataset_version: version.into(),
            extra: Map::new(),
        }
    }
}

/// `storage`: the storage layer and file format of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageDatasetFacet {
    /// `_producer`, `_schemaURL`, `_deleted`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The storage layer (`posix`, `s3`, `iceberg`, ...).
    #[serde(rename = "storageLayer")]
    pub storage_layer: Text,
    /// The file format (`fastq`, `bam`, `cram`, `vcf`, ...).
    #[serde(
        rename = "fileFormat",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub file_format: Option<Text>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    StorageDatasetFacet,
    "storage",
    DatasetKind,
    "1-0-1/StorageDatasetFacet.json",
    write_text
);

impl StorageDatasetFacet {
    /// A dataset in `layer`, in `format` if known.
    pub fn new(layer: impl Into<Text>, format: Option<Text>) -> Self {
        StorageDatasetFacet {
            base: FacetBase::ours::<Self>(),
            storage_layer: layer.into(),
            file_format: format,
            extra: Map::new(),
        }
    }
}

/// `datasetType`: what kind of dataset this is (`FILE`, `DIRECTORY`, `TABLE`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetTypeDatasetFacet {
    /// `_producer`, `_schemaURL`, `_deleted`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The type.
    #[serde(rename = "datasetType")]
    pub dataset_type: Text,
    /// A finer type, if any.
    #[serde(rename = "subType", default, skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<String>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    DatasetTypeDatasetFacet,
    "datasetType",
    DatasetKind,
    "1-0-1/DatasetTypeDatasetFacet.json",
    write_text
);

impl DatasetTypeDatasetFacet {
    /// A dataset of `kind`.
    pub fn new(kind: impl Into<Text>) -> Self {
        DatasetTypeDatasetFacet {
            base: FacetBase::ours::<Self>(),
            dataset_type: kind.into(),
            sub_type: None,
            extra: Map::new(),
        }
    }
}

/// One alternative name of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymlinkIdentifier {
    /// The alternative namespace.
    pub namespace: String,
    /// The alternative name.
    pub name: String,
    /// The kind of link (`SYMLINK`, `TABLE`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `symlinks`: other names of the same dataset (a symlink path and its target).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymlinksDatasetFacet {
    /// `_producer`, `_schemaURL`, `_deleted`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// The other names.
    #[serde(default)]
    pub identifiers: Vec<SymlinkIdentifier>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    SymlinksDatasetFacet,
    "symlinks",
    DatasetKind,
    "1-0-1/SymlinksDatasetFacet.json"
);

/// `lifecycleStateChange`: what the run did to the dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleStateChangeDatasetFacet {
    /// `_producer`, `_schemaURL`, `_deleted`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// `ALTER`, `CREATE`, `DROP`, `OVERWRITE`, `RENAME` or `TRUNCATE`.
    #[serde(rename = "lifecycleStateChange")]
    pub lifecycle_state_change: String,
    /// The previous name, for a rename (`{namespace, name}`).
    #[serde(
        rename = "previousIdentifier",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub previous_identifier: Option<Value>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    LifecycleStateChangeDatasetFacet,
    "lifecycleStateChange",
    DatasetKind,
    "1-0-1/LifecycleStateChangeDatasetFacet.json"
);

impl LifecycleStateChangeDatasetFacet {
    /// The values the spec allows.
    pub const STATES: [&'static str; 6] =
        ["ALTER", "CREATE", "DROP", "OVERWRITE", "RENAME", "TRUNCATE"];

    /// A change of kind `state` (one of [`Self::STATES`]).
    pub fn new(state: impl Into<String>) -> Self {
        LifecycleStateChangeDatasetFacet {
            base: FacetBase::ours::<Self>(),
            lifecycle_state_change: state.into(),
            previous_identifier: None,
            extra: Map::new(),
        }
    }
}

/// `outputStatistics`: size, file count and rows of an output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputStatisticsOutputDatasetFacet {
    /// `_producer`, `_schemaURL`.
    #[serde(flatten)]
    pub base: FacetBase,
    /// Rows written, if meaningful.
    #[serde(rename = "rowCount", default, skip_serializing_if = "Option::is_none")]
    pub row_count: Option<u64>,
    /// Bytes written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Files written.
    #[serde(rename = "fileCount", default, skip_serializing_if = "Option::is_none")]
    pub file_count: Option<u64>,
    /// Members this crate does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
facet!(
    OutputStatisticsOutputDatasetFacet,
    "outputStatistics",
    OutputKind,
    "1-0-2/OutputStatisticsOutputDatasetFacet.json",
    write_text
);

impl OutputStatisticsOutputDatasetFacet {
    /// Statistics of `size` bytes in `file_count` files.
    pub fn new(size: u64, file_count: u64) -> Self {
        OutputStatisticsOutputDatasetFacet {
            base: FacetBase::ours::<Self>(),
            row_count: None,
            size: Some(size),
            file_count: Some(file_count),
            extra: Map::new(),
        }
    }
}

/// Constructors of facets whose members are all given at once.
macro_rules! simple_new {
    ($ty:ident, $doc:literal, $field:ident: $arg:ty) => {
        impl $ty {
            #[doc = $doc]
            pub fn new($field: $arg) -> Self {
                $ty {
                    base: FacetBase::ours::<Self>(),
                    $field,
                    extra: Map::new(),
                }
            }
        }
    };
}
simple_new!(TagsRunFacet, "Run tags.", tags: Vec<Tag>);
simple_new!(TagsJobFacet, "Job tags.", tags: Vec<Tag>);
simple_new!(TagsDatasetFacet, "Dataset tags.", tags: Vec<Tag>);
simple_new!(OwnershipJobFacet, "Job owners.", owners: Vec<Owner>);
simple_new!(OwnershipDatasetFacet, "Dataset owners.", owners: Vec<Owner>);
simple_new!(SymlinksDatasetFacet, "Other names of a dataset.", identifiers: Vec<SymlinkIdentifier>);

impl DocumentationJobFacet {
    /// A plain-text description.
    pub fn new(description: impl Into<String>) -> Self {
        DocumentationJobFacet {
            base: FacetBase::ours::<Self>(),
            description: description.into(),
            content_type: None,
            extra: Map::new(),
        }
    }
}

impl DocumentationDatasetFacet {
    /// A plain-text description.
    pub fn new(description: impl Into<String>) -> Self {
        DocumentationDatasetFacet {
            base: FacetBase::ours::<Self>(),
            description: description.into(),
            content_type: None,
            extra: Map::new(),
        }
    }
}

impl SourceCodeLocationJobFacet {
    /// Code at `url` in a git repository, at `version` (a commit) if known.
    pub fn git(url: impl Into<String>, version: Option<String>) -> Self {
        SourceCodeLocationJobFacet {
            base: FacetBase::ours::<Self>(),
            kind: "git".to_owned(),
            url: url.into(),
            repo_url: None,
            path: None,
            version,
            tag: None,
            branch: None,
            extra: Map::new(),
        }
    }
}

// The text of the facets emitted on every step, written member by member in
// sorted order (see `Facet::write_json`). One with members this crate does not
// model is written through its value, where they fall into place.

impl RunRef {
    fn write_text(&self, out: &mut Vec<u8>) {
        let mut o = Object::open(out);
        o.str("runId", self.run_id.encode(&mut [0; 36]));
        o.end();
    }
}

impl JobRef {
    fn write_text(&self, out: &mut Vec<u8>) {
        let mut o = Object::open(out);
        o.str("name", &self.name);
        o.str("namespace", &self.namespace);
        o.end();
    }
}

impl ParentRunFacet {
    fn write_text(&self, out: &mut Vec<u8>) {
        let root_extra = self.root.as_ref().is_some_and(|r| {
            !r.extra.is_empty() || !r.run.extra.is_empty() || !r.job.extra.is_empty()
        });
        if root_extra || !self.run.extra.is_empty() || !self.job.extra.is_empty() {
            return canonical_text(out, self);
        }
        let Some(mut o) = open_facet(out, self, &self.base, &self.extra) else {
            return;
        };
        self.job.write_text(o.key("job"));
        if let Some(root) = &self.root {
            let mut r = Object::open(o.key("root"));
            root.job.write_text(r.key("job"));
            root.run.write_text(r.key("run"));
            r.end();
        }
        self.run.write_text(o.key("run"));
        o.end();
    }
}

impl ExecutionParametersRunFacet {
    fn write_text(&self, out: &mut Vec<u8>) {
        if self.parameters.iter().any(|p| !p.extra.is_empty()) {
            return canonical_text(out, self);
        }
        let Some(mut o) = open_facet(out, self, &self.base, &self.extra) else {
            return;
        };
        o.list("parameters", &self.parameters, |p, out| {
            let mut e = Object::open(out);
            e.opt_str("description", p.description.as_deref());
            e.str("key", &p.key);
            e.opt_str("name", p.name.as_deref());
            e.opt_str("value", p.value.as_deref());
            e.end();
        });
        o.end();
    }
}

impl ProcessingEngineRunFacet {
    fn write_text(&self, out: &mut Vec<u8>) {
        let Some(mut o) = open_facet(out, self, &self.base, &self.extra) else {
            return;
        };
        o.opt_str("name", self.name.as_deref());
        o.opt_str(
            "openlineageAdapterVersion",
            self.openlineage_adapter_version.as_deref(),
        );
        o.str("version", &self.version);
        o.end();
    }
}

impl JobTypeJobFacet {
    fn write_text(&self, out: &mut Vec<u8>) {
        let Some(mut o) = open_facet(out, self, &self.base, &self.extra) else {
            return;
        };
        o.str("integration", &self.integration);
        o.opt_str("jobType", self.job_type.as_deref());
        o.str("processingType", &self.processing_type);
        o.end();
    }
}

impl DatasetVersionDatasetFacet {
    fn write_text(&self, out: &mut Vec<u8>) {
        let Some(mut o) = open_facet(out, self, &self.base, &self.extra) else {
            return;
        };
        o.str("datasetVersion", &self.dataset_version);
        o.end();
    }
}

impl StorageDatasetFacet {
    fn write_text(&self, out: &mut Vec<u8>) {
        let Some(mut o) = open_facet(out, self, &self.base, &self.extra) else {
            return;
        };
        o.opt_str("fileFormat", self.file_format.as_deref());
        o.str("storageLayer", &self.storage_layer);
        o.end();
    }
}

impl DatasetTypeDatasetFacet {
    fn write_text(&self, out: &mut Vec<u8>) {
        let Some(mut o) = open_facet(out, self, &self.base, &self.extra) else {
            return;
        };
        o.str("datasetType", &self.dataset_type);
        o.opt_str("subType", self.sub_type.as_deref());
        o.end();
    }
}

impl OutputStatisticsOutputDatasetFacet {
    fn write_text(&self, out: &mut Vec<u8>) {
        let Some(mut o) = open_facet(out, self, &self.base, &self.extra) else {
            return;
        };
        o.opt_u64("fileCount", self.file_count);
        o.opt_u64("rowCount", self.row_count);
        o.opt_u64("size", self.size);
        o.end();
    }
}
