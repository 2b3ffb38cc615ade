"""Many threads of the official OpenLineage Python client send large events
at once, with its HttpTransport as configured by default (its own retries
and timeout), as a busy pipeline's tasks do.

Usage: python3 openlineage_flood.py <url> <api key> <threads> <events each> <facet bytes>
Prints `SENT <n> FAILED <m>`.
"""
import sys
import threading
from datetime import datetime, timezone

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
from openlineage.client.facet_v2 import RunFacet
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport
from openlineage.client.uuid import generate_new_uuid


@attr.define(kw_only=True)
class BlobRunFacet(RunFacet):
    text: str

    @staticmethod
    def _get_schema() -> str:
        return "https://example.org/BlobRunFacet.json"


url, key, threads, each, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
config = HttpConfig(url=url, auth=ApiKeyTokenProvider({"apiKey": key}))
client = OpenLineageClient(transport=HttpTransport(config))
blob = "x" * size
lock = threading.Lock()
counts = {"sent": 0, "failed": 0}


def work(t):
    for i in range(each):
        event = RunEvent(
            eventType=RunState.COMPLETE,
            eventTime=datetime.now(timezone.utc).isoformat(),
            run=Run(runId=str(generate_new_uuid()), facets={"blob": BlobRunFacet(text=blob)}),
            job=Job(namespace="flood", name=f"t{t}-{i}"),
        )
        try:
            client.emit(event)
            outcome = "sent"
        except Exception:
            outcome = "failed"
        with lock:
            counts[outcome] += 1


workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
print(f"SENT {counts['sent']} FAILED {counts['failed']}")
