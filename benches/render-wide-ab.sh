#!/usr/bin/env bash
# Server CPU per wide-sum request, two carbide builds side by side (A/B on a loaded machine):
# both binaries get render-wide.sh's data set (SERIES series × one hour of 10 s points, over
# carbon, then one flush: read from SQLite), and alternating rounds of REQUESTS renders of
# `sumSeries(wide.*.*)` (one client, one kept connection) go to each server in turn; each
# round prints the server's user+system CPU (/proc/<pid>/stat ticks) per request and the
# median latency. The answers of both servers are compared first (md5 of the JSON body): a
# change must not alter them.
#
# Usage: benches/render-wide-ab.sh A_BINARY B_BINARY [ROUNDS=6] [REQUESTS=30] [SERIES=10000]
#        TARGET='averageSeries(wide.*.*)' to render another target over the same data.
# Needs: python3.
set -euo pipefail

A=$1 B=$2
ROUNDS=${3:-6}
REQUESTS=${4:-30}
SERIES=${5:-10000}
TARGET=${TARGET:-sumSeries(wide.*.*)}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/render-wide-ab.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

NOW=$(date +%s)
UNTIL=$(( NOW - NOW % 10 ))
FROM=$(( UNTIL - 3600 ))
# The data set of render-wide.sh (benches/render-wide-data.py, seeded).
python3 "$ROOT/benches/render-wide-data.py" gen "$WORK/lines.txt" "$SERIES" "$FROM" "$UNTIL"
printf '[wide]\npattern = .*\nretentions = 10s:1d\n' > "$WORK/schemas.conf"

URLS=()
for side in a b; do
    bin=$A
    [ "$side" = b ] && bin=$B
    "$bin" serve --data-dir "$WORK/data-$side" --schemas "$WORK/schemas.conf" \
        --carbon-tcp 127.0.0.1:0 --carbon-udp off --http-listen 127.0.0.1:0 \
        > "$WORK/serve-$side.out" 2> "$WORK/serve-$side.log" &
    PIDS+=($!)
    for _ in $(seq 100); do grep -q "http://" "$WORK/serve-$side.out" 2>/dev/null && break; sleep 0.1; done
    read -r CARBON URL < <(python3 -c '
import sys; w = open(sys.argv[1]).read().split()
print(w[3], w[7].rstrip(","))' "$WORK/serve-$side.out")
    URLS+=("$URL")
    python3 "$ROOT/benches/render-wide-data.py" send "$CARBON" "$WORK/lines.txt" "$URL"
done
sleep 7 # one flush (5 s): read from SQLite, the steady state

python3 - "$FROM" "$UNTIL" "$ROUNDS" "$REQUESTS" "$SERIES" "$TARGET" \
    "${PIDS[0]}" "${URLS[0]}" "${PIDS[1]}" "${URLS[1]}" <<'EOF'
import hashlib, http.client, os, statistics, sys, time, urllib.parse
t0, t1, rounds, n, series, target = sys.argv[1:7]
rounds, n, series = int(rounds), int(n), int(series)
sides = [("A", int(sys.argv[7]), sys.argv[8]), ("B", int(sys.argv[9]), sys.argv[10])]
q = "/render?" + urllib.parse.urlencode({"target": target, "from": t0, "until": t1, "format": "json"})
tick = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
conns = {name: http.client.HTTPConnection(urllib.parse.urlparse(url).netloc, timeout=60)
         for name, _, url in sides}
def get(name):
    c = conns[name]
    c.request("GET", q)
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        raise SystemExit(f"{name}: {r.status}: {body[:200]!r}")
    return body
md5 = {}
for name, _, _ in sides:
    body = get(name)
    md5[name] = hashlib.md5(body).hexdigest()
    for _ in range(3):
        get(name)
print(f"{target} over {series} series x 360 points, md5 A {md5['A']} B {md5['B']}"
      + ("" if md5["A"] == md5["B"] else "  ** ANSWERS DIFFER **"))
per = {"A": [], "B": []}
for r in range(rounds):
    order = sides if r % 2 == 0 else sides[::-1]
    line = []
    for name, pid, _ in order:
        c0, lat = cpu(pid), []
        for _ in range(n):
            t = time.perf_counter()
            get(name)
            lat.append(time.perf_counter() - t)
        ms = (cpu(pid) - c0) / n * 1000
        per[name].append(ms)
        line.append(f"{name} {ms:.1f} ms CPU/request (latency median {statistics.median(lat) * 1000:.1f} ms)")
    load = open("/proc/loadavg").read().split()[0]
    print(f"round {r + 1} (load {load}): " + ", ".join(line))
for name in ("A", "B"):
    v = per[name]
    print(f"{name}: CPU per request mean {statistics.mean(v):.1f} ms, median {statistics.median(v):.1f} ms "
          f"({series * 360 / statistics.median(v) / 1e3:.1f} M points/s of one core)")
print(f"B/A (medians): {statistics.median(per['B']) / statistics.median(per['A']):.3f}")
EOF
