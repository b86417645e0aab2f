#!/usr/bin/env bash
# Open and `find` of a large store, two carbide builds alternated on one kept data
# directory (A/B on a loaded machine): `benches/store-scale.sh` with KEEP=PREFIX leaves one
# per size. Each round starts one build on the directory (A, B, A, B, ...) and prints its
# CPU (user + system, /proc/<pid>/stat) and wall time from exec to the first `find *`
# answer, RSS after that open, then per query the server's CPU per request (the mean over
# REQUESTS requests after a first one) and the median wall time of those requests. The
# answers of both builds are compared byte for byte (md5): a change must not alter them.
#
# Usage: benches/store-find-ab.sh A_BINARY B_BINARY DATA_DIR [ROUNDS=2] [REQUESTS=20]
# The data directory is opened read-write (its store flushes nothing new: the clock is
# frozen at store-scale.sh's and nothing is sent).
set -euo pipefail

A=$1 B=$2 DATA=$3
ROUNDS=${4:-2}
REQUESTS=${5:-20}
WORK=$(mktemp -d /tmp/store-find-ab.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cp "$(dirname "$0")/store-scale.schemas.conf" "$WORK/schemas.conf"
cat >"$WORK/serve.yml" <<'YML'
flush_interval: 1h
self_metrics_interval: 0s
limits:
  max_find_results: 2000000
YML

python3 - "$A" "$B" "$DATA" "$WORK" "$ROUNDS" "$REQUESTS" <<'PY'
import hashlib, os, re, statistics, subprocess, sys, time, urllib.request

a, b, data, work, rounds, requests = sys.argv[1:7]
rounds, requests = int(rounds), int(requests)
NOW = 1780000020  # store-scale.sh's frozen clock
TICK = os.sysconf("SC_CLK_TCK")
QUERIES = [
    ("servers.*", "/metrics/find?query=servers.*"),
    ("servers.*&wildcards=1", "/metrics/find?query=servers.*&wildcards=1"),
    ("servers.host1*.cpu.*", "/metrics/find?query=servers.host1*.cpu.*"),
    ("completer servers.host1*.cpu.*", "/metrics/find?format=completer&query=servers.host1*.cpu.*"),
    ("*.*", "/metrics/find?query=*.*"),
    ("servers.host1.*", "/metrics/find?query=servers.host1.*"),
]


def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def get(url):
    with urllib.request.urlopen(url, timeout=600) as r:
        return r.read()


def run(binary):
    out = open(f"{work}/out", "w+")
    t0 = time.monotonic()
    p = subprocess.Popen(
        [binary, "serve", "--data-dir", data, "--schemas", f"{work}/schemas.conf",
         "--carbon-tcp", "127.0.0.1:0", "--carbon-udp", "off", "--http-listen", "127.0.0.1:0",
         "--frozen-clock", str(NOW), "--config", f"{work}/serve.yml"],
        stdout=out, stderr=open(f"{work}/err", "a"))
    try:
        while True:
            out.seek(0)
            m = re.search(r"http (http://[0-9.:]+)", out.read())
            if m:
                break
            if p.poll() is not None:
                sys.exit(open(f"{work}/err").read()[-2000:])
            time.sleep(0.01)
        http = m.group(1)
        get(http + "/metrics/find?query=*")
        res = {"open_cpu": cpu(p.pid), "open_wall": time.monotonic() - t0, "rss": rss_mb(p.pid)}
        bodies = {}
        for name, q in QUERIES:
            bodies[name] = hashlib.md5(get(http + q)).hexdigest()
            c0, walls = cpu(p.pid), []
            for _ in range(requests):
                t = time.monotonic()
                get(http + q)
                walls.append(time.monotonic() - t)
            res[name] = ((cpu(p.pid) - c0) / requests * 1e3, statistics.median(walls) * 1e3)
        return res, bodies
    finally:
        p.terminate()
        p.wait()


load = lambda: open("/proc/loadavg").read().split()[0]
md5 = {}
for r in range(rounds):
    for label, binary in (("A", a), ("B", b)):
        l0 = load()
        res, bodies = run(binary)
        md5.setdefault(label, bodies)
        print(f"round {r + 1} {label} (load {l0}-{load()}): open CPU {res['open_cpu']:.2f} s, "
              f"wall {res['open_wall']:.2f} s, RSS after open {res['rss']:.0f} MiB", flush=True)
        for name, _ in QUERIES:
            c, w = res[name]
            print(f"    {name:34} CPU {c:8.2f} ms/request, median wall {w:8.2f} ms", flush=True)
same = md5["A"] == md5["B"]
print("answers identical" if same else f"ANSWERS DIFFER: {md5}")
sys.exit(0 if same else 1)
PY
