#!/usr/bin/env python3
"""Simulates the inputs of the germline example: a random reference, and
paired-end reads for a few samples, each carrying planted SNPs.

Writes into OUT: ref.fa, <sample>_R1.fastq.gz and <sample>_R2.fastq.gz for each
sample, and planted.tsv (sample, chrom, pos, ref, alt; 1-based positions).
Some SNPs are planted in every sample, some in one sample only, all
homozygous, so that the calls are certain at the default coverage. The same
arguments always give the same bytes (fixed seed, gzip without timestamps).

Usage: simulate.py OUT [--length 30000] [--samples 3] [--coverage 30] [--seed 7]
"""

import argparse
import gzip
import os
import random
import sys

BASES = "ACGT"
COMPLEMENT = str.maketrans("ACGT", "TGCA")
READ = 100
INSERT, INSERT_SD = 300, 30
ERROR_RATE = 0.001


def plant(rng, length, count, taken):
    """Positions (0-based) at least 250 bp from each other and from the ends."""
    found = []
    while len(found) < count:
        pos = rng.randrange(400, length - 400)
        if all(abs(pos - t) >= 250 for t in taken + found):
            found.append(pos)
    return found


def alt_base(rng, ref):
    return rng.choice([b for b in BASES if b != ref])


def with_errors(rng, seq):
    """Sequencing errors at ERROR_RATE per base (at most one per read)."""
    if rng.random() >= ERROR_RATE * len(seq):
        return seq
    i = rng.randrange(len(seq))
    return seq[:i] + alt_base(rng, seq[i]) + seq[i + 1 :]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--length", type=int, default=30000, help="reference length (bp)")
    p.add_argument("--samples", type=int, default=3)
    p.add_argument("--coverage", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--shared", type=int, default=4, help="SNPs in every sample")
    p.add_argument("--private", type=int, default=3, help="SNPs in one sample only, each")
    a = p.parse_args()
    if a.length < 2000 or a.samples < 1 or a.coverage <= 0:
        sys.exit("simulate.py: --length must be at least 2000, --samples at least 1, --coverage positive")
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)

    chrom = "chrS"
    ref = "".join(rng.choice(BASES) for _ in range(a.length))
    with open(os.path.join(a.out, "ref.fa"), "w") as f:
        f.write(f">{chrom} simulated reference, seed {a.seed}\n")
        for i in range(0, len(ref), 60):
            f.write(ref[i : i + 60] + "\n")

    shared = plant(rng, a.length, a.shared, [])
    samples = [f"S{i + 1}" for i in range(a.samples)]
    private = {}
    taken = list(shared)
    for s in samples:
        private[s] = plant(rng, a.length, a.private, taken)
        taken += private[s]
    alts = {pos: alt_base(rng, ref[pos]) for pos in taken}

    with open(os.path.join(a.out, "planted.tsv"), "w") as f:
        f.write("sample\tchrom\tpos\tref\talt\n")
        for s in samples:
            for pos in sorted(shared + private[s]):
                f.write(f"{s}\t{chrom}\t{pos + 1}\t{ref[pos]}\t{alts[pos]}\n")

    pairs = int(a.coverage * a.length / (2 * READ))
    for s in samples:
        genome = list(ref)
        for pos in shared + private[s]:
            genome[pos] = alts[pos]
        genome = "".join(genome)
        r1 = gzip.GzipFile(os.path.join(a.out, f"{s}_R1.fastq.gz"), "wb", mtime=0)
        r2 = gzip.GzipFile(os.path.join(a.out, f"{s}_R2.fastq.gz"), "wb", mtime=0)
        quality = "I" * READ
        for n in range(pairs):
            size = max(READ, int(rng.gauss(INSERT, INSERT_SD)))
            start = rng.randrange(0, a.length - size)
            fragment = genome[start : start + size]
            if rng.random() < 0.5:
                fragment = fragment.translate(COMPLEMENT)[::-1]
            first = with_errors(rng, fragment[:READ])
            second = with_errors(rng, fragment[-READ:].translate(COMPLEMENT)[::-1])
            name = f"{s}:{n}"
            r1.write(f"@{name}/1\n{first}\n+\n{quality}\n".encode())
            r2.write(f"@{name}/2\n{second}\n+\n{quality}\n".encode())
        r1.close()
        r2.close()


if __name__ == "__main__":
    main()
