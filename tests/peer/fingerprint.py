"""Recomputes a prov-fingerprint-1 from its documented encoding, independently.

Input (stdin): a JSON object {job, command, container, parameters, inputs}.
Output: the fingerprint's lowercase hex sha-256.

For ASCII member names, integers and strings, RFC 8785 canonical JSON is what
json.dumps gives with sorted keys, no spaces and UTF-8 text; the tests keep to that.
"""
import hashlib
import json
import sys

step = json.load(sys.stdin)
encoding = {
    "scheme": "prov-fingerprint-1",
    "job": step["job"],
    "command": step["command"],
    "container": step["container"],
    "parameters": step["parameters"],
    "inputs": sorted(step["inputs"]),
}
text = json.dumps(encoding, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
print(hashlib.sha256(text.encode("utf-8")).hexdigest())
