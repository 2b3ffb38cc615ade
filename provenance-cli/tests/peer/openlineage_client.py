"""Sends a small pipeline's events to a server with the official OpenLineage
Python client: HttpTransport, api_key auth, gzip bodies.

Usage: python3 openlineage_client.py <url> <api key>
Prints `SENT <n>` on success, `REFUSED <status>` when the server refuses.
"""
import sys
from datetime import datetime, timezone

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import parent_run
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpCompression, HttpConfig, HttpTransport
from openlineage.client.uuid import generate_new_uuid

url, key = sys.argv[1], sys.argv[2]
config = HttpConfig(
    url=url,
    auth=ApiKeyTokenProvider({"apiKey": key}),
    compression=HttpCompression.GZIP,
    retry={"total": 0},
)
client = OpenLineageClient(transport=HttpTransport(config))
now = lambda: datetime.now(timezone.utc).isoformat()
pipeline = str(generate_new_uuid())
sent = 0


def emit(event):
    global sent
    try:
        client.emit(event)
    except Exception as e:  # the client raises on an HTTP error
        status = getattr(getattr(e, "response", None), "status_code", None)
        print(f"REFUSED {status}")
        sys.exit(0)
    sent += 1


def step(job, inputs, outputs):
    run = Run(
        runId=str(generate_new_uuid()),
        facets={
            "parent": parent_run.ParentRunFacet(
                run=parent_run.Run(runId=pipeline), job=parent_run.Job(namespace="python", name="pipeline")
            )
        },
    )
    j = Job(namespace="python", name=job)
    ins = [InputDataset(namespace="file", name=n) for n in inputs]
    outs = [OutputDataset(namespace="file", name=n) for n in outputs]
    emit(RunEvent(eventType=RunState.START, eventTime=now(), run=run, job=j, inputs=ins))
    emit(RunEvent(eventType=RunState.COMPLETE, eventTime=now(), run=run, job=j, inputs=ins, outputs=outs))


step("align", ["/data/P1.fastq"], ["/results/P1.bam"])
step("call", ["/results/P1.bam"], ["/results/P1.vcf"])
print(f"SENT {sent}")
