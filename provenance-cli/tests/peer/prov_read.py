"""Reads a PROV-JSON document from stdin with the `prov` package (the Python
implementation of the W3C PROV data model) and prints what it understood:
one line `<record type> <count>` per type, then the document in PROV-N.
Exits non-zero if the document cannot be read.
"""
import collections
import sys

from prov.model import ProvDocument

doc = ProvDocument.deserialize(content=sys.stdin.read(), format="json")
counts = collections.Counter(r.get_type().localpart for r in doc.get_records())
for kind, count in sorted(counts.items()):
    print(kind, count)
print("---")
print(doc.get_provn())
