#!/usr/bin/env python3
"""The wide-sum benchmarks' data set (render-wide.sh, render-wide-ab.sh): SERIES random walks
with two decimals, one point per 10 s over (FROM, UNTIL], as Graphite plaintext lines, then a
sentinel line the scripts wait for. Seeded, so every run and both scripts send the same values.

Usage: render-wide-data.py OUT SERIES FROM UNTIL
"""
import random
import sys

out, series, t0, t1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(7)
with open(out, "w") as f:
    walk = [rng.uniform(0, 100) for _ in range(series)]
    for ts in range(t0 + 10, t1 + 10, 10):
        lines = []
        for s in range(series):
            walk[s] += rng.uniform(-1, 1)
            lines.append(f"wide.host{s // 100:04d}.metric{s % 100:02d} {walk[s]:.2f} {ts}\n")
        f.write("".join(lines))
    f.write(f"zz.wide.sentinel 1 {t1}\n")
