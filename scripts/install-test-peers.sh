#!/usr/bin/env bash
# Installs the peers that some tests compare against or run: the official
# OpenLineage Python client (static run ids, prov serve with a real client),
# the W3C PROV data model's Python package (reads `lineage --format prov`),
# rocrate-validator (validates `lineage --format ro-crate`),
# Node.js (RFC 8785 number text), Debian's docker-registry (the distribution
# project's registry, which the image resolver's tests run on loopback), and
# bwa, samtools and bcftools (the germline example). Without them those tests
# skip with a message, unless PROV_REQUIRE_PEERS=1 (as in CI), where a missing
# peer fails the run.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# apt-get install, updating the package lists first only if that is needed.
apt_install() {
    apt-get install -y -qq "$@" >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; }
}

if ! python3 -c 'import openlineage.client' 2>/dev/null; then
    echo "installing openlineage-python (a test peer)" >&2
    python3 -m pip install --quiet --disable-pip-version-check 'openlineage-python==1.54.0'
fi

if ! python3 -c 'import prov.model' 2>/dev/null; then
    echo "installing prov (a test peer: the W3C PROV data model in Python)" >&2
    python3 -m pip install --quiet --disable-pip-version-check 'prov==3.2.3'
fi

if ! python3 -c 'import rocrate_validator, rocrate' 2>/dev/null; then
    echo "installing roc-validator and rocrate (test peers: RO-Crate's validator and its context)" >&2
    python3 -m pip install --quiet --disable-pip-version-check 'roc-validator==0.13.0' 'rocrate==0.16.0'
fi

if ! command -v node >/dev/null; then
    echo "installing nodejs (a test peer)" >&2
    apt_install nodejs
fi

if [ ! -x /usr/bin/docker-registry ]; then
    echo "installing docker-registry (a test peer)" >&2
    apt_install docker-registry
fi

# Debian's genomics tools, for the germline example's test.
missing=()
for tool in bwa samtools bcftools; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (the germline example's tools)" >&2
    apt_install "${missing[@]}"
fi
