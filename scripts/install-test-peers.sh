#!/usr/bin/env bash
# Installs the peers that some tests compare against: the official OpenLineage
# Python client (static run ids, prov serve with a real client), Node.js
# (RFC 8785 number text) and Debian's docker-registry (the distribution
# project's registry, which the image resolver's tests run on loopback). Without them those tests skip with a message, unless
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

if [ ! -x /usr/bin/docker-registry ]; then
    echo "installing docker-registry (a test peer)" >&2
    apt-get update -qq && apt-get install -y -qq docker-registry >/dev/null
fi
