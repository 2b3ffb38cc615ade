#!/bin/sh
# The cost of recording: the germline pipeline timed with and without
# `prov run`, alternating, on the same simulated inputs; prints every round,
# the medians and the ratio.
#
# Usage: overhead.sh [ROUNDS]        (default 5)
#   PROV=path/to/prov (use a release build), LENGTH=600000 (reference bp),
#   COVERAGE=30, DATA=dir (reuse simulated inputs), THREADS=2
set -eu
here=$(cd "$(dirname "$0")" && pwd)
rounds=${1:-5}
PROV=${PROV:-prov}
work=$(mktemp -d "${TMPDIR:-/tmp}/prov-overhead.XXXXXX")
trap 'rm -rf "$work"' EXIT
data=${DATA:-$work/data}
if [ ! -f "$data/ref.fa" ]; then
    echo "simulating ${LENGTH:-600000} bp at ${COVERAGE:-30}x for 3 samples..." >&2
    python3 "$here/simulate.py" "$data" --length "${LENGTH:-600000}" --coverage "${COVERAGE:-30}"
fi
export PROV THREADS="${THREADS:-2}"
now() { date +%s%N; }
plain="" recorded=""
i=1
while [ "$i" -le "$rounds" ]; do
    rm -rf "$work/out" "$work/prov.db"*
    t0=$(now)
    PROV_RECORD=0 sh "$here/pipeline.sh" "$data" "$work/out" 2>/dev/null
    t1=$(now)
    rm -rf "$work/out"
    PROV_STORE=$work/prov.db sh "$here/pipeline.sh" "$data" "$work/out" 2>/dev/null
    t2=$(now)
    p=$(( (t1 - t0) / 1000000 )) r=$(( (t2 - t1) / 1000000 ))
    echo "round $i: without prov ${p} ms, with prov ${r} ms"
    plain="$plain $p" recorded="$recorded $r"
    i=$((i + 1))
done
median() { printf '%s\n' $1 | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mp=$(median "$plain") mr=$(median "$recorded")
steps=$("$PROV" --store "$work/prov.db" audit runs --format json --limit 1000 | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
awk -v p="$mp" -v r="$mr" -v n="$steps" 'BEGIN {
    printf "median without prov: %d ms, with prov: %d ms (%d runs recorded)\n", p, r, n
    printf "ratio %.3f: overhead %.1f%%, %.1f ms per recorded run\n", r / p, (r / p - 1) * 100, (r - p) / n
}'
