"""The peer of benches/emit.rs: the official OpenLineage Python client builds,
serializes and writes RunEvents of the same shape (standard facets and the
prov_* facets, four inputs, one output) with its FileTransport.

Usage: python3 python_file_transport.py <file> <events>
Prints: `<events/s> <average bytes per event>`.
"""
import os
import sys
import time

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    RunFacet,
    dataset_type_dataset,
    dataset_version_dataset,
    execution_parameters_run,
    job_type_job,
    output_statistics_output_dataset,
    parent_run,
    processing_engine_run,
    storage_dataset,
)
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.uuid import generate_new_uuid

BASE = "https://genomics-provenance.github.io/provenance/schemas/facets/1-0-0/"


@attr.define(kw_only=True)
class ProvContainerRunFacet(RunFacet):
    image: str
    registry: str
    repository: str
    tag: str
    digest: str
    digestSource: str
    pinned: bool
    runtime: str

    @staticmethod
    def _get_schema() -> str:
        return BASE + "ProvContainerRunFacet.json"


@attr.define(kw_only=True)
class ProvParametersRunFacet(RunFacet):
    parameters: dict
    sha256: str
    canonicalization: str

    @staticmethod
    def _get_schema() -> str:
        return BASE + "ProvParametersRunFacet.json"


@attr.define(kw_only=True)
class ProvFingerprintRunFacet(RunFacet):
    sha256: str
    scheme: str

    @staticmethod
    def _get_schema() -> str:
        return BASE + "ProvFingerprintRunFacet.json"


@attr.define(kw_only=True)
class ProvSoftwareRunFacet(RunFacet):
    tools: list
    provenanceVersion: str

    @staticmethod
    def _get_schema() -> str:
        return BASE + "ProvSoftwareRunFacet.json"


@attr.define(kw_only=True)
class ProvExecutionRunFacet(RunFacet):
    argv: list
    workingDirectory: str
    exitCode: int
    wallTimeMs: int
    cpuTimeMs: int
    peakRssBytes: int
    host: str
    user: str
    startTime: str
    endTime: str

    @staticmethod
    def _get_schema() -> str:
        return BASE + "ProvExecutionRunFacet.json"


@attr.define(kw_only=True)
class ProvChecksumDatasetFacet(DatasetFacet):
    kind: str
    size: int
    checksums: dict

    @staticmethod
    def _get_schema() -> str:
        return BASE + "ProvChecksumDatasetFacet.json"


HEX = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def dataset_facets(size):
    return {
        "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion="sha256:" + HEX),
        "prov_checksum": ProvChecksumDatasetFacet(kind="file", size=size, checksums={"sha-256": HEX, "md5": HEX[:32]}),
        "storage": storage_dataset.StorageDatasetFacet(storageLayer="posix", fileFormat="bam"),
        "datasetType": dataset_type_dataset.DatasetTypeDatasetFacet(datasetType="FILE"),
    }


def event(i, root):
    run_id = str(generate_new_uuid())
    params = {"threads": 8, "sample": f"S{i}", "reference": "GRCh38"}
    facets = {
        "parent": parent_run.ParentRunFacet(
            run=parent_run.Run(runId=root),
            job=parent_run.Job(namespace="genomics", name="wgs"),
            root=parent_run.Root(run=parent_run.RootRun(runId=root), job=parent_run.RootJob(namespace="genomics", name="wgs")),
        ),
        "executionParameters": execution_parameters_run.ExecutionParametersRunFacet(
            parameters=[execution_parameters_run.ExecutionParameter(key=k, value=str(v)) for k, v in params.items()]
        ),
        "prov_parameters": ProvParametersRunFacet(parameters=params, sha256=HEX, canonicalization="RFC8785"),
        "prov_container": ProvContainerRunFacet(
            image="quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8",
            registry="quay.io",
            repository="biocontainers/bwa",
            tag="0.7.17--h5bf99c6_8",
            digest="sha256:" + HEX,
            digestSource="registry",
            pinned=True,
            runtime="docker",
        ),
        "prov_fingerprint": ProvFingerprintRunFacet(sha256=HEX, scheme="prov-fingerprint-1"),
        "prov_software": ProvSoftwareRunFacet(tools=[{"name": "bwa", "version": "0.7.17"}], provenanceVersion="0.1.0"),
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(version="0.1.0", name="prov"),
        "prov_execution": ProvExecutionRunFacet(
            argv=["bwa", "mem", "-t", "8"],
            workingDirectory="/scratch",
            exitCode=0,
            wallTimeMs=60000,
            cpuTimeMs=400000,
            peakRssBytes=6 << 30,
            host="node-1",
            user="pipeline",
            startTime="2026-01-01T00:00:00Z",
            endTime="2026-01-01T00:01:00Z",
        ),
    }
    inputs = [InputDataset(namespace="file", name=f"/data/S{i}_{k}.fastq.gz", facets=dataset_facets(1 << 30)) for k in range(4)]
    out_facets = dataset_facets(3 << 30)
    outputs = [
        OutputDataset(
            namespace="file",
            name=f"/results/S{i}.bam",
            facets=out_facets,
            outputFacets={"outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(size=3 << 30, fileCount=1)},
        )
    ]
    return RunEvent(
        eventType=RunState.COMPLETE,
        eventTime="2026-01-01T00:01:00.000000Z",
        run=Run(runId=run_id, facets=facets),
        job=Job(namespace="genomics", name="bwa_mem", facets={"jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="PROV", jobType="TASK")}),
        inputs=inputs,
        outputs=outputs,
    )


def main():
    path, count = sys.argv[1], int(sys.argv[2])
    client = OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=path, append=True)))
    root = str(generate_new_uuid())
    start = time.perf_counter()
    for i in range(count):
        client.emit(event(i, root))
    elapsed = time.perf_counter() - start
    print(f"{count / elapsed:.1f} {os.path.getsize(path) / count:.0f}")


if __name__ == "__main__":
    main()
