#!/usr/bin/env bash
# The project's test command (the README's, and what .ci/run calls).
# It installs or starts what the tests talk to, then runs every test of the workspace.
# Peers that the tests compare against are required here (PROV_REQUIRE_PEERS=1):
# a missing peer fails the run instead of skipping its test.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f ../shared/openlineage-spec/OpenLineage.json ] && [ -z "${PROV_SHARED_DIR:-}" ]; then
    echo "error: ../shared/openlineage-spec is missing (set PROV_SHARED_DIR to the shared folder)" >&2
    exit 2
fi

# Peer: the official OpenLineage Python client (static run ids).
if ! python3 -c 'import openlineage.client' 2>/dev/null; then
    echo "installing openlineage-python (a test peer)" >&2
    python3 -m pip install --quiet --disable-pip-version-check 'openlineage-python==1.54.0'
fi

# Peer: Node.js, the reference for RFC 8785 number text.
if ! command -v node >/dev/null; then
    echo "installing nodejs (a test peer)" >&2
    apt-get update -qq && apt-get install -y -qq nodejs >/dev/null
fi

export PROV_REQUIRE_PEERS=1
cargo test --workspace --locked
