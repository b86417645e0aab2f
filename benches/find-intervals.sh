#!/usr/bin/env bash
# What a leaf's real `intervals` (store::held: the first and last chunk of each archive decoded,
# plus the cache) cost a cluster find, same node, same run: `carbide serve` (release) with
# SERIES series × HOURS hours of 10 s points under carbide's default schema (three archives),
# restarted so every point is in chunks, then ROUNDS alternating requests of the same glob
# (SERIES leaves):
#   - treejson: `/metrics/find?query=…` (no intervals);
#   - pickle: `//metrics/find/?local=1&format=pickle&query=…` as graphite-web's remote finder
#     asks (intervals for every leaf);
#   - carbonapi_v3_pb: the MultiGlobRequest carbonapi sends (no intervals in its protocol).
# Prints each one's median time, the ratio to treejson and the intervals' cost per leaf.
#
# usage: [CARBIDE=path/to/carbide] benches/find-intervals.sh [SERIES] [HOURS] [ROUNDS]
#        (defaults 2000 series, 6 hours, 21 rounds; builds and runs target/release/carbide
#        unless CARBIDE is given)
set -euo pipefail
SERIES=${1:-2000}
HOURS=${2:-6}
ROUNDS=${3:-21}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${CARBIDE:-}" ]; then
    cargo build --quiet --release --bin carbide --manifest-path "$ROOT/Cargo.toml"
    CARBIDE=$CARGO_TARGET_DIR/release/carbide
fi
WORK=$(mktemp -d /tmp/find-intervals.XXXXXX)
PID=
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

start() {
    : >"$WORK/out"
    (cd "$WORK" && exec "$CARBIDE" serve --data-dir data --carbon-tcp 127.0.0.1:0 \
        --carbon-udp off --http-listen 127.0.0.1:0 >out 2>>err) &
    PID=$!
    for _ in $(seq 300); do grep -q 'http://' "$WORK/out" 2>/dev/null && break; sleep 0.1; done
    grep -q 'http://' "$WORK/out" || { cat "$WORK/err" >&2; exit 1; }
    CARBON=$(awk '{print $4}' "$WORK/out")
    HTTP=$(awk '{print $8}' "$WORK/out" | sed 's,http://,,; s/,$//')
}
start
python3 - "$CARBON" "$SERIES" "$HOURS" <<'PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
series, hours = int(sys.argv[2]), int(sys.argv[3])
now = int(time.time()) // 10 * 10
s = socket.create_connection((host, int(port)))
for h in range(series):
    lines = "".join(f"bench.h{h}.cpu {t % 97} {t}\n" for t in range(now - hours * 3600, now, 10))
    s.sendall(lines.encode())
s.close()
PY
want=$((SERIES * HOURS * 360))
for _ in $(seq 600); do
    got=$(curl -s "http://$HTTP/render?format=json&target=sumSeries(countSeries(bench.*.cpu))&from=-1min" \
        | python3 -c 'import json,sys; d=json.load(sys.stdin); print(int(max(v for v,_ in d[0]["datapoints"] if v is not None)) if d else 0)' 2>/dev/null || echo 0)
    [ "$got" = "$SERIES" ] && break
    sleep 0.5
done
# Every point into chunks: a clean stop flushes the cache.
kill "$PID"; wait "$PID" || true; PID=
start

python3 - "$HTTP" "$ROUNDS" "$SERIES" <<'PY'
import http.client, statistics, sys, time
sys.path.insert(0, ".")
addr, rounds, series = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
host, port = addr.rsplit(":", 1)
# carbonapi_v3_pb MultiGlobRequest {metrics: ["bench.*.cpu"]}: field 1, length-delimited.
q = b"bench.*.cpu"
v3 = bytes([0x0A, len(q)]) + q
kinds = {
    "treejson": ("GET", "/metrics/find?query=bench.*.cpu", None, {}),
    "pickle": ("GET", "//metrics/find/?local=1&format=pickle&query=bench.*.cpu", None, {}),
    "carbonapi_v3_pb": ("GET", "/metrics/find/?format=carbonapi_v3_pb", v3,
                        {"Accept": "application/x-carbonapi-v3-pb"}),
}
times = {k: [] for k in kinds}
for r in range(rounds):
    for k, (method, path, body, headers) in kinds.items():
        c = http.client.HTTPConnection(host, int(port))
        t0 = time.perf_counter()
        c.request(method, path, body=body, headers=headers)
        resp = c.getresponse()
        data = resp.read()
        times[k].append(time.perf_counter() - t0)
        assert resp.status == 200, (k, resp.status, data[:200])
        c.close()
base = statistics.median(times["treejson"])
print(f"find of {series} leaves, median of {rounds} rounds (same node, same run):")
for k, ts in times.items():
    m = statistics.median(ts)
    print(f"  {k:16} {m * 1000:8.2f} ms  {m / base:5.2f}x treejson")
extra = statistics.median(times["pickle"]) - base
print(f"  intervals (pickle - treejson): {extra * 1e6 / series:.1f} us per leaf")
PY
