"""Prints deterministic run ids from the official OpenLineage Python client.

Input (stdin): one `<RFC 3339 UTC time>\t<data>` per line.
Output: one UUID per line, from openlineage.client.uuid.generate_static_uuid.
"""
import sys
from datetime import datetime

from openlineage.client.uuid import generate_static_uuid

for line in sys.stdin:
    time, data = line.rstrip("\n").split("\t", 1)
    instant = datetime.fromisoformat(time.replace("Z", "+00:00"))
    print(generate_static_uuid(instant, data.encode("utf-8")))
