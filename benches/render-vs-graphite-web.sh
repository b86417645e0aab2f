#!/usr/bin/env bash
# Render benchmark: the same data and the same two targets (tests/graphite-web/render_bench.py:
# 100 check_duration series + 2 mongo counters, one day of 10 s points) rendered by graphite-web
# 1.1.10 (gunicorn) and by `carbide serve`; prints requests/s and p50/p99 for each and the ratio.
#
# The data is written once as whisper files by render_bench.py --data-only (reused for 12 h);
# graphite-web reads those files; carbide receives exactly the same points over its carbon TCP
# port (read back from the whisper files), then serves them from its cache + SQLite.
#
# Usage: [LOADGEN=wrk|python|both] [WRK_SECONDS=20] [FORMAT=png] [BASELINE=path/to/other/carbide]
#            benches/render-vs-graphite-web.sh [WORKERS] [REQUESTS_GW] [REQUESTS_CARBIDE]
#        LOADGEN: who sends the requests, the same URLs to every server. wrk (default; Debian's
#        `wrk`, a C load generator, WRK_SECONDS per target per server, after one request whose
#        answer is checked), python (render_bench.py's CPython client, REQUESTS_GW /
#        REQUESTS_CARBIDE per target: its own per-request cost caps what a fast server can
#        show on 2 cores), or both (one table each). When wrk is needed and missing, the script
#        runs `apt-get install -y wrk` (as root; otherwise it stops and says so).
#        FORMAT=png (or svg) benches pictures: the same targets drawn by graphite-web (cairo)
#        and by carbide (tiny-skia), same run, same ratio table.
#        (defaults 2 20 400; WORKERS = gunicorn workers = client threads/connections for
#        both). With BASELINE, that binary is benched first in the same run (before/after
#        comparisons). CARBIDE=path benches that binary instead of building one.
# Needs: tests/graphite-web/setup.sh run once (the graphite-web venv); builds carbide (release).
set -euo pipefail

WORKERS=${1:-2}
REQ_GW=${2:-20}
REQ_CB=${3:-400}
LOADGEN=${LOADGEN:-wrk}
WRK_SECONDS=${WRK_SECONDS:-20}
case "$LOADGEN" in
python) WRK_SECONDS=0 ;;
wrk | both)
    if ! command -v wrk >/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "== installing wrk (apt-get install -y wrk)"
            apt-get install -y wrk >/dev/null
        else
            echo "LOADGEN=$LOADGEN needs wrk: apt-get install wrk (or LOADGEN=python)" >&2
            exit 2
        fi
    fi
    if [ "$WRK_SECONDS" -le 0 ]; then
        echo "LOADGEN=$LOADGEN needs WRK_SECONDS > 0" >&2
        exit 2
    fi
    ;;
*)
    echo "LOADGEN is wrk, python or both, not '$LOADGEN'" >&2
    exit 2
    ;;
esac
export FORMAT=${FORMAT:-json}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VPY=$ROOT/tests/graphite-web/venv-python
BENCH=$ROOT/tests/graphite-web/render_bench.py
WORK=$(mktemp -d /tmp/render-vs-gw.XXXXXX)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PID=
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${CARBIDE:-}" ]; then
    echo "== carbide: $CARBIDE (not built)"
else
    echo "== building carbide (release)"
    cargo build --quiet --release --bin carbide --manifest-path "$ROOT/Cargo.toml"
    CARBIDE=$CARGO_TARGET_DIR/release/carbide
fi

echo "== bench data (whisper)"
"$VPY" "$BENCH" --data-only
DATA_DIR=${BENCH_DATA_DIR:-$HOME/.cache/carbide-graphite-web-bench}

echo "== the same points as carbon lines"
"$VPY" - "$DATA_DIR" "$WORK/lines.txt" <<'PY'
import json, os, sys, whisper
data, out = sys.argv[1], sys.argv[2]
meta = json.load(open(os.path.join(data, "bench-meta.json")))
wdir, n = meta["whisper_dir"], 0
with open(out, "w") as f:
    for root, _, files in os.walk(wdir):
        for name in sorted(files):
            if not name.endswith(".wsp"):
                continue
            fs = os.path.join(root, name)
            path = os.path.relpath(fs, wdir)[:-4].replace(os.sep, ".")
            (start, end, step), values = whisper.fetch(fs, meta["from"] - 10, meta["until"], now=meta["until"])
            for i, v in enumerate(values):
                if v is not None:
                    f.write("%s %r %d\n" % (path, v, start + i * step))
                    n += 1
    f.write("zz.bench.sentinel 1 %d\n" % meta["until"])
print("%d points" % n)
PY

# Serve the bench points with carbide binary $1 and bench it into $WORK/$2.txt.
bench_carbide() {
    local bin=$1 name=$2
    echo "== $name: carbide serve ($bin)"
    rm -rf "$WORK/data"
    "$bin" serve --data-dir "$WORK/data" --schemas "$WORK/schemas.conf" \
        --carbon-tcp 127.0.0.1:0 --carbon-udp off --http-listen 127.0.0.1:0 \
        > "$WORK/serve.out" 2> "$WORK/serve.log" &
    PID=$!
    for _ in $(seq 100); do grep -q "http://" "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
    read -r CARBON URL < <(python3 -c '
import sys; w = open(sys.argv[1]).read().split()
print(w[3], w[7].rstrip(","))' "$WORK/serve.out")
    python3 - "$CARBON" "$WORK/lines.txt" "$URL" <<'PY'
import socket, sys, time, urllib.request
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)))
s.sendall(open(sys.argv[2], "rb").read())
s.close()
for _ in range(600):
    with urllib.request.urlopen(sys.argv[3] + "/metrics/expand?query=zz.bench.sentinel") as r:
        if b"sentinel" in r.read():
            break
    time.sleep(0.1)
else:
    raise SystemExit("carbide never saw the sentinel")
PY
    sleep 6 # one flush: measure reads from SQLite + cache, the steady state
    echo "== $name ($URL)"
    "$VPY" "$BENCH" --url "$URL" --workers "$WORKERS" --requests "$REQ_CB" --wrk-seconds "$WRK_SECONDS" --loadgen "$LOADGEN" --format "$FORMAT" --json | tee "$WORK/$name.txt"
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
}

printf '[bench]\npattern = .*\nretentions = 10s:2d\n' > "$WORK/schemas.conf"
SIDES=()
if [ -n "${BASELINE:-}" ]; then
    bench_carbide "$BASELINE" baseline
    SIDES+=("baseline=$WORK/baseline.txt")
fi
bench_carbide "$CARBIDE" carbide
SIDES+=("carbide=$WORK/carbide.txt")
echo "== graphite-web"
"$VPY" "$BENCH" --serve --workers "$WORKERS" --requests "$REQ_GW" --wrk-seconds "$WRK_SECONDS" --loadgen "$LOADGEN" --format "$FORMAT" --json | tee "$WORK/gw.txt"

python3 - "$WORK/gw.txt" "${SIDES[@]}" <<'PY'
import json, sys
def load(p, gen):
    rows = [json.loads(l) for l in open(p) if l.startswith("{")]
    return {r["target"]: r for r in rows if r.get("loadgen", "python") == gen}
for gen in ("python", "wrk"):
  gw = load(sys.argv[1], gen)
  if not gw:
    continue
  sides = [(a.split("=", 1)[0], load(a.split("=", 1)[1], gen)) for a in sys.argv[2:]]
  print("\nformat=%s, load generator: %s" % (__import__("os").environ.get("FORMAT", "json"), "render_bench.py (CPython http.client)" if gen == "python" else "wrk"))
  print("%-10s %-12s %10s %10s %10s %9s" % ("target", "server", "req/s", "p50 ms", "p99 ms", "vs gw"))
  for i, (t, g) in enumerate(gw.items(), 1):
      rows = [("graphite-web", g)] + [(n, s[t]) for n, s in sides if t in s]
      for n, r in rows:
          ratio = r["rps"] / g["rps"] if g["rps"] else float("nan")
          print("%-10s %-12s %10.1f %10.1f %10.1f %8.1fx" % (
              "target %d" % i, n, r["rps"], r["p50_ms"], r["p99_ms"], ratio))
          if r["errors"]:
              print("  errors: %s %d" % (n, r["errors"]))
PY
