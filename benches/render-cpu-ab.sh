#!/usr/bin/env bash
# Server CPU per render request, two carbide builds side by side (A/B on a loaded machine):
# both binaries serve the render bench's data (tests/graphite-web/render_bench.py's whisper
# files, sent over carbon and flushed) at the same time, and alternating `wrk -t2 -c2` rounds
# drive each target on each server in turn; each round prints the server's user+system CPU
# ticks (/proc/<pid>/stat) divided by the requests wrk completed. The answers of both servers
# are compared first (md5 of each target's JSON body): a change must not alter them.
#
# Usage: benches/render-cpu-ab.sh A_BINARY B_BINARY [ROUNDS=3] [SECONDS=5]
# Needs: wrk, tests/graphite-web/setup.sh run once (the graphite-web venv, for the data).
set -euo pipefail

A=$1 B=$2
ROUNDS=${3:-3}
SECS=${4:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VPY=$ROOT/tests/graphite-web/venv-python
BENCH=$ROOT/tests/graphite-web/render_bench.py
WORK=$(mktemp -d /tmp/render-cpu-ab.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

"$VPY" "$BENCH" --data-only >/dev/null
DATA_DIR=${BENCH_DATA_DIR:-$HOME/.cache/carbide-graphite-web-bench}
"$VPY" - "$DATA_DIR" "$WORK/lines.txt" <<'PY'
import json, os, sys, whisper
data, out = sys.argv[1], sys.argv[2]
meta = json.load(open(os.path.join(data, "bench-meta.json")))
wdir = meta["whisper_dir"]
with open(out, "w") as f:
    for root, _, files in os.walk(wdir):
        for name in sorted(files):
            if name.endswith(".wsp"):
                fs = os.path.join(root, name)
                path = os.path.relpath(fs, wdir)[:-4].replace(os.sep, ".")
                (start, end, step), values = whisper.fetch(fs, meta["from"] - 10, meta["until"], now=meta["until"])
                for i, v in enumerate(values):
                    if v is not None:
                        f.write("%s %r %d\n" % (path, v, start + i * step))
    f.write("zz.bench.sentinel 1 %d\n" % meta["until"])
PY
printf '[bench]\npattern = .*\nretentions = 10s:2d\n' >"$WORK/schemas.conf"

# start NAME BINARY: serve the bench data; sets URL_NAME and PID_NAME.
start() {
    local name=$1 bin=$2 dir=$WORK/$1
    mkdir -p "$dir"
    "$bin" serve --data-dir "$dir/data" --schemas "$WORK/schemas.conf" \
        --carbon-tcp 127.0.0.1:0 --carbon-udp off --http-listen 127.0.0.1:0 \
        >"$dir/serve.out" 2>"$dir/serve.log" &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 100); do grep -q "http://" "$dir/serve.out" 2>/dev/null && break; sleep 0.1; done
    read -r carbon url < <(python3 -c '
import sys; w = open(sys.argv[1]).read().split()
print(w[3], w[7].rstrip(","))' "$dir/serve.out")
    python3 - "$carbon" "$WORK/lines.txt" "$url" <<'PY'
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
    printf -v "URL_$name" '%s' "$url"
    printf -v "PID_$name" '%s' "$pid"
}
start a "$A"
start b "$B"
sleep 6 # one flush: reads from SQLite + cache, the steady state

mapfile -t QUERIES < <("$VPY" - "$DATA_DIR" "$ROOT/tests/graphite-web" <<'PY'
import json, os, sys, urllib.parse
sys.path.insert(0, sys.argv[2])
meta = json.load(open(os.path.join(sys.argv[1], "bench-meta.json")))
from render_bench import TARGETS
for t in TARGETS:
    print(urllib.parse.urlencode({"target": t, "from": meta["from"], "until": meta["until"], "format": "json"}))
PY
)
TICK=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "target 1 and 2 answers (md5, A then B):"
for i in "${!QUERIES[@]}"; do
    curl -sf "$URL_a/render?${QUERIES[$i]}" >"$WORK/a.json"
    curl -sf "$URL_b/render?${QUERIES[$i]}" >"$WORK/b.json"
    ma=$(md5sum <"$WORK/a.json" | cut -c1-32) mb=$(md5sum <"$WORK/b.json" | cut -c1-32)
    echo "  target $((i + 1)): $ma $mb ($(wc -c <"$WORK/a.json") bytes)" \
        "$([ "$ma" = "$mb" ] && echo same || echo DIFFERENT)"
done
echo "round target server requests cpu_ticks us_per_request load"
for r in $(seq "$ROUNDS"); do
    order="a b"
    [ $((r % 2)) = 0 ] && order="b a"
    for i in "${!QUERIES[@]}"; do
        for s in $order; do
            url_var=URL_$s pid_var=PID_$s
            c0=$(cpu "${!pid_var}")
            n=$(wrk -t2 -c2 -d"${SECS}s" "${!url_var}/render?${QUERIES[$i]}" |
                awk '/requests in/ {print $1}')
            c1=$(cpu "${!pid_var}")
            awk -v r="$r" -v t=$((i + 1)) -v s="$s" -v n="$n" -v c=$((c1 - c0)) -v hz="$TICK" \
                -v ld="$(cut -d' ' -f1 /proc/loadavg)" \
                'BEGIN { printf "%s %s %s %d %d %.0f %s\n", r, t, s, n, c, c * 1e6 / hz / n, ld }'
        done
    done
done
