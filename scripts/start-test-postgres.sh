#!/usr/bin/env bash
# Makes sure a PostgreSQL answers on 127.0.0.1:5432 for the tests, as user
# postgres without a password: starts the machine's cluster if it is down, and
# installs PostgreSQL (Debian's package) and allows loopback trust for the
# user postgres if the machine has none. For CI and developer machines only;
# exits non-zero if no server answers in the end.
set -euo pipefail

host=127.0.0.1
port=5432

answers() { pg_isready -q -h "$host" -p "$port" 2>/dev/null; }

if command -v pg_isready >/dev/null && answers; then
    exit 0
fi

if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
    echo "installing postgresql (the PostgreSQL store's tests need a server)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

version=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | grep -q "^$version main"; then
    pg_createcluster "$version" main >/dev/null
fi
hba=/etc/postgresql/$version/main/pg_hba.conf
if ! grep -q "^host all postgres $host/32 trust" "$hba"; then
    # First matching line wins: the tests connect as postgres without a password.
    sed -i "1i host all postgres $host/32 trust" "$hba"
fi
echo "starting PostgreSQL $version" >&2
pg_ctlcluster "$version" main start 2>/dev/null || pg_ctlcluster "$version" main reload || true

for _ in $(seq 60); do
    if answers; then
        exit 0
    fi
    sleep 0.5
done
echo "error: PostgreSQL does not answer on $host:$port" >&2
exit 1
