#!/usr/bin/env bash
# Wide aggregate benchmark: `sumSeries` over SERIES series × one hour of 10 s points, end to end
# through `carbide serve`'s render API (HTTP, evaluation, JSON), from SQLite after a flush.
# Prints each request's latency (median and best of REQUESTS, one client, one connection kept
# open) and the points read per second: SERIES × 360 / latency. Issue 22 aims at ≥ 100 M
# points/s for 10k series.
#
# Usage: [BASELINE=path/to/other/carbide] benches/render-wide.sh [SERIES] [REQUESTS]
#        (defaults 10000 30). With BASELINE, that binary is measured first in the same run.
# Needs: python3; builds carbide (release).
set -euo pipefail

SERIES=${1:-10000}
REQUESTS=${2:-30}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/render-wide.XXXXXX)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PID=
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== building carbide (release)"
cargo build --quiet --release --bin carbide --manifest-path "$ROOT/Cargo.toml"
CARBIDE=$CARGO_TARGET_DIR/release/carbide

NOW=$(date +%s)
UNTIL=$(( NOW - NOW % 10 ))
FROM=$(( UNTIL - 3600 ))
echo "== $SERIES series × 360 points ($(( SERIES * 360 )) lines)"
python3 "$ROOT/benches/render-wide-data.py" gen "$WORK/lines.txt" "$SERIES" "$FROM" "$UNTIL"
printf '[wide]\npattern = .*\nretentions = 10s:1d\n' > "$WORK/schemas.conf"

cat > "$WORK/bench.py" <<'EOF'
import http.client, json, statistics, sys, time, urllib.parse
url, t0, t1, series, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
host = urllib.parse.urlparse(url).netloc
q = "/render?" + urllib.parse.urlencode(
    {"target": "sumSeries(wide.*.*)", "from": t0, "until": t1, "format": "json"})
c = http.client.HTTPConnection(host, timeout=60)
def get():
    c.request("GET", q)
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        raise SystemExit(f"{r.status}: {body[:200]!r}")
    return body
body = get()
pts = json.loads(body)[0]["datapoints"]
known = sum(1 for v, _ in pts if v is not None)
for _ in range(3):
    get()
lat = []
for _ in range(n):
    t = time.perf_counter()
    get()
    lat.append(time.perf_counter() - t)
points = series * 360
med, best = statistics.median(lat), min(lat)
print(f"sumSeries over {series} series x 360 points: {known}/{len(pts)} sums non-null; "
      f"median {med * 1000:.1f} ms, best {best * 1000:.1f} ms; "
      f"{points / med / 1e6:.1f} M points/s (median), {points / best / 1e6:.1f} M (best)")
EOF

bench() {
    local bin=$1 name=$2
    rm -rf "$WORK/data"
    "$bin" serve --data-dir "$WORK/data" --schemas "$WORK/schemas.conf" \
        --carbon-tcp 127.0.0.1:0 --carbon-udp off --http-listen 127.0.0.1:0 \
        > "$WORK/serve.out" 2> "$WORK/serve.log" &
    PID=$!
    for _ in $(seq 100); do grep -q "http://" "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
    read -r CARBON URL < <(python3 -c '
import sys; w = open(sys.argv[1]).read().split()
print(w[3], w[7].rstrip(","))' "$WORK/serve.out")
    python3 "$ROOT/benches/render-wide-data.py" send "$CARBON" "$WORK/lines.txt" "$URL"
    sleep 7 # one flush (5 s): read from SQLite, the steady state
    printf '%-9s ' "$name"
    python3 "$WORK/bench.py" "$URL" "$FROM" "$UNTIL" "$SERIES" "$REQUESTS"
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
}

if [ -n "${BASELINE:-}" ]; then
    bench "$BASELINE" baseline
fi
bench "$CARBIDE" carbide
