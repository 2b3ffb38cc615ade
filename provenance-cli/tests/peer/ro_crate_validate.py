"""Validates an RO-Crate folder with rocrate-validator (PyPI roc-validator,
the RO-Crate community's validator) against a profile, at a severity.

Usage: python3 ro_crate_validate.py <crate folder> <profile> <REQUIRED|RECOMMENDED>
Prints `valid` or `INVALID`, then one line per issue: `<severity> | <message>`.

This machine has no network, so the JSON-LD context the crate names
(https://w3id.org/ro/crate/1.1/context) is served from the copy that the
rocrate package (ro-crate-py) ships; any other URL is refused.
"""
import io
import os
import sys
import urllib.response
import email.message

import rdflib.parser
import requests
import requests.adapters
import rocrate
import urllib3

CONTEXT = os.path.join(os.path.dirname(rocrate.__file__), "data", "ro-crate.jsonld")


def context_bytes(url):
    if "w3id.org/ro/crate/" not in url:
        raise RuntimeError(f"no network here, and {url} is not a context we ship")
    with open(CONTEXT, "rb") as f:
        return f.read()


def urlopen(request):
    url = request.get_full_url()
    headers = email.message.Message()
    headers["Content-Type"] = "application/ld+json"
    return urllib.response.addinfourl(io.BytesIO(context_bytes(url)), headers, url, 200)


def send(self, request, **kwargs):
    data = context_bytes(request.url)
    response = requests.Response()
    response.status_code = 200
    response.url = request.url
    response.request = request
    response.headers["Content-Type"] = "application/ld+json"
    response.raw = urllib3.response.HTTPResponse(
        body=io.BytesIO(data),
        headers={"Content-Type": "application/ld+json"},
        status=200,
        preload_content=False,
        request_url=request.url,
    )
    response._content = data
    return response


rdflib.parser._urlopen = urlopen
requests.adapters.HTTPAdapter.send = send

from rocrate_validator import models, services  # noqa: E402

crate, profile, severity = sys.argv[1:4]
settings = services.ValidationSettings(
    rocrate_uri=crate,
    profile_identifier=profile,
    requirement_severity=models.Severity[severity],
)
result = services.validate(settings)
print("valid" if result.passed() else "INVALID")
for issue in result.get_issues():
    print(issue.severity.name, "|", issue.message.replace("\n", " "))
