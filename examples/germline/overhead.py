#!/usr/bin/env python3
"""The cost of recording: the germline pipeline run with and without
`prov run`, alternating rounds on the same simulated inputs. Prints each
round's wall time and CPU time (user + system of every process), then the
medians and their ratios. CPU time is the steadier number on a shared
machine; wall time is what a user waits.

Usage: overhead.py [--rounds 5] [--length 600000] [--coverage 30] [--data DIR]
Environment: PROV (use a release build), THREADS (default 2).
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(cmd, env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    subprocess.run(cmd, env=env, check=True, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--length", type=int, default=600000)
    p.add_argument("--coverage", type=float, default=30)
    p.add_argument("--data", help="simulated inputs to reuse (made if missing)")
    a = p.parse_args()
    prov = os.environ.get("PROV", "prov")
    work = tempfile.mkdtemp(prefix="prov-overhead-")
    try:
        data = a.data or os.path.join(work, "data")
        if not os.path.exists(os.path.join(data, "ref.fa")):
            print(f"simulating {a.length} bp at {a.coverage}x for 3 samples...", file=sys.stderr)
            subprocess.run([sys.executable, os.path.join(HERE, "simulate.py"), data,
                            "--length", str(a.length), "--coverage", str(a.coverage)], check=True)
        out, store = os.path.join(work, "out"), os.path.join(work, "prov.db")
        pipeline = ["sh", os.path.join(HERE, "pipeline.sh"), data, out]
        base = dict(os.environ, PROV=prov, THREADS=os.environ.get("THREADS", "2"))
        base.pop("PROV_PARENT_RUN", None)
        rows = {"without": [], "with": []}
        for i in range(1, a.rounds + 1):
            for mode in ("without", "with"):
                shutil.rmtree(out, ignore_errors=True)
                for suffix in ("", "-wal", "-shm"):
                    if os.path.exists(store + suffix):
                        os.remove(store + suffix)
                env = dict(base, PROV_STORE=store, PROV_RECORD="0" if mode == "without" else "1")
                rows[mode].append(timed(pipeline, env))
            w, r = rows["without"][-1], rows["with"][-1]
            print(f"round {i}: without prov {w[0]:.2f} s wall, {w[1]:.2f} s cpu; "
                  f"with prov {r[0]:.2f} s wall, {r[1]:.2f} s cpu", flush=True)
        runs = json.loads(subprocess.run(
            [prov, "--store", store, "audit", "runs", "--format", "json", "--limit", "1000"],
            check=True, capture_output=True).stdout)["total"]
        for k, name in ((0, "wall"), (1, "cpu")):
            without = statistics.median(x[k] for x in rows["without"])
            with_ = statistics.median(x[k] for x in rows["with"])
            print(f"median {name}: without {without:.2f} s, with {with_:.2f} s, ratio {with_ / without:.3f} "
                  f"(overhead {100 * (with_ / without - 1):+.1f}%, {1000 * (with_ - without) / runs:.1f} ms "
                  f"per recorded run, {runs} runs)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
