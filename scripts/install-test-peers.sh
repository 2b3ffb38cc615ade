#!/usr/bin/env bash
# Installs the peers that some tests compare against: the official OpenLineage
# Python client (static run ids, prov serve with a real client), Node.js
# (RFC 8785 number text), and bwa, samtools and bcftools (the germline example). Without them those tests skip with a message, unless
# PROV_REQUIRE_PEERS=1 (as in CI), where a missing peer fails the run.
set -euo pipefail

if ! python3 -c 'import openlineage.client' 2>/dev/null; then
    echo "installing openlineage-python (a test peer)" >&2
    python3 -m pip install --quiet --disable-pip-version-check 'openlineage-python==1.54.0'
fi

if ! command -v node >/dev/null; then
    echo "installing nodejs (a test peer)" >&2
    apt-get update -qq && apt-get install -y -qq nodejs >/dev/null
fi

# Debian's genomics tools, for the germline example's test.
missing=()
for tool in bwa samtools bcftools; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (the germline example's tools)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi
