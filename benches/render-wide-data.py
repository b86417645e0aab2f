#!/usr/bin/env python3
"""The wide-sum benchmarks' data set (render-wide.sh, render-wide-ab.sh).

gen OUT SERIES FROM UNTIL: SERIES random walks with two decimals, one point per 10 s over
    (FROM, UNTIL], as Graphite plaintext lines, then a sentinel line. Seeded, so every run and
    both scripts send the same values.
send CARBON LINES URL: send the LINES file to carbide's carbon port (host:port) and wait
    until its HTTP API at URL knows the sentinel (every line before it was received).
"""
import random
import socket
import sys
import time
import urllib.request


def gen(out, series, t0, t1):
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


def send(carbon, lines, url):
    host, port = carbon.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.sendall(open(lines, "rb").read())
    s.close()
    for _ in range(600):
        with urllib.request.urlopen(url + "/metrics/expand?query=zz.wide.sentinel") as r:
            if b"sentinel" in r.read():
                return
        time.sleep(0.1)
    raise SystemExit("carbide never saw the sentinel")


if sys.argv[1] == "gen":
    gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
elif sys.argv[1] == "send":
    send(sys.argv[2], sys.argv[3], sys.argv[4])
else:
    raise SystemExit(__doc__)
