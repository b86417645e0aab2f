#!/usr/bin/env bash
# Render through graphite-web 1.1.10's cluster front end (tests/graphite-web/cluster_server.py,
# CLUSTER_SERVERS) over one `carbide serve` node holding all the data and over three nodes fed
# through carbon-c-relay with docs/cluster.md's relay configuration (carbon_ch replication 2),
# same data, same run. Prints, per target and node format (pickle, msgpack):
#   - the median time of a render through the front end with 1 and with 3 nodes, and the ratio;
#   - the nodes' share of it: the fetch graphite-web makes of a node (`local=1&noCache=1`, the
#     target's path expression) asked of the node directly (with 3 nodes, the slowest of the
#     three, as graphite-web asks them in parallel), over the front end's time;
# then, at the single node, each format's time per point of a whole render (fetch, evaluation,
# encoding, HTTP) of all SERIES series × a day of 60 s points: json, pickle, msgpack.
#
# usage: [CARBIDE=path/to/carbide] benches/cluster-render.sh [SERIES] [ROUNDS]
#        (defaults 200 series, 15 rounds per measurement; builds and runs
#        target/release/carbide unless CARBIDE is given)
# Needs: tests/graphite-web/setup.sh run once (the venv), Debian's carbon-c-relay.
set -euo pipefail
SERIES=${1:-200}
ROUNDS=${2:-15}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${CARBIDE:-}" ]; then
    cargo build --quiet --release --bin carbide --manifest-path "$ROOT/Cargo.toml"
    CARBIDE=$CARGO_TARGET_DIR/release/carbide
fi
command -v carbon-c-relay >/dev/null || { echo "needs Debian's carbon-c-relay" >&2; exit 1; }
WORK=$(mktemp -d /tmp/cluster-render.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/schemas.conf" <<'CONF'
[default]
pattern = .*
retentions = 60s:2d
CONF
# A day of SERIES series is more points than one request's default budget.
cat >"$WORK/serve.yml" <<'YML'
limits:
  max_points_per_request: 100000000
  render_timeout: 600s
YML

# Node NAME: started in $WORK/NAME, its addresses in $WORK/NAME/out.
node() {
    mkdir -p "$WORK/$1"
    (cd "$WORK/$1" && exec "$CARBIDE" serve --config "$WORK/serve.yml" --data-dir data \
        --schemas "$WORK/schemas.conf" --carbon-tcp 127.0.0.1:0 --carbon-udp off \
        --http-listen 127.0.0.1:0 >out 2>err) &
    PIDS+=($!)
    for _ in $(seq 300); do grep -q 'http://' "$WORK/$1/out" 2>/dev/null && break; sleep 0.1; done
    grep -q 'http://' "$WORK/$1/out" || { cat "$WORK/$1/err" >&2; exit 1; }
}
for n in single n0 n1 n2; do node "$n"; done

# carbon-c-relay in front of n0..n2: docs/cluster.md's block, addresses made loopback ports.
RELAY_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ROOT=$ROOT WORK=$WORK RELAY_PORT=$RELAY_PORT python3 - <<'PY'
import os, re
root, work = os.environ["ROOT"], os.environ["WORK"]
md = open(os.path.join(root, "docs/cluster.md")).read()
block = md.split("<!-- test: relay -->\n```\n", 1)[1].split("```", 1)[0]
block = block.replace("10.0.0.10:2003", "127.0.0.1:%s" % os.environ["RELAY_PORT"])
for k in range(3):
    out = open(os.path.join(work, "n%d/out" % k)).read()
    carbon = re.search(r"carbon tcp ([0-9.:]+)", out).group(1)
    block = block.replace("10.0.0.%d:2003=" % (k + 1), carbon + "=")
open(os.path.join(work, "relay.conf"), "w").write(block)
PY
carbon-c-relay -f "$WORK/relay.conf" -l "$WORK/relay.log" </dev/null >/dev/null 2>&1 &
PIDS+=($!)

# graphite-web front ends: over the single node and over n0..n2, asking pickle or msgpack.
front() {
    local name=$1 fmt=$2; shift 2
    mkdir -p "$WORK/$name"
    {
        printf 'CLUSTER_SERVERS = ['
        for n in "$@"; do
            printf '"%s/?format=%s", ' "$(grep -o 'http://[0-9.:]*' "$WORK/$n/out" | head -1)" "$fmt"
        done
        printf ']\nREMOTE_STORE_USE_POST = False\nFIND_TIMEOUT = 60\nFETCH_TIMEOUT = 600\n'
    } >"$WORK/$name/settings.py"
    mkfifo "$WORK/$name/stdin"
    "$ROOT/tests/graphite-web/venv-python" "$ROOT/tests/graphite-web/cluster_server.py" \
        "$WORK/$name/storage" "$WORK/$name/settings.py" <"$WORK/$name/stdin" >"$WORK/$name/out" &
    PIDS+=($!)
    exec {fd}>"$WORK/$name/stdin"   # held open: the front end stops when it closes
    for _ in $(seq 300); do grep -q READY "$WORK/$name/out" 2>/dev/null && break; sleep 0.1; done
}
for fmt in pickle msgpack; do
    front "gw1-$fmt" "$fmt" single
    front "gw3-$fmt" "$fmt" n0 n1 n2
done

SERIES=$SERIES ROUNDS=$ROUNDS WORK=$WORK RELAY_PORT=$RELAY_PORT python3 - <<'PY'
import json, os, re, socket, statistics, time, urllib.parse, urllib.request
work, n, rounds = os.environ["WORK"], int(os.environ["SERIES"]), int(os.environ["ROUNDS"])
def addr(name, what):
    out = open(os.path.join(work, name, "out")).read()
    return re.search(what, out).group(1)
http = {k: addr(k, r"(http://[0-9.:]+)") for k in ("single", "n0", "n1", "n2")}
carbon = addr("single", r"carbon tcp ([0-9.:]+)")
front = {k: "http://127.0.0.1:%s" % addr(k, r"READY (\d+)")
         for k in ("gw1-pickle", "gw3-pickle", "gw1-msgpack", "gw3-msgpack")}

now = int(time.time()) // 60 * 60
until, start = now, now - 86400
lines = "".join("bench.h%d.cpu %d %d\n" % (h, (h * 7 + k) % 100, start + 60 * k)
                for h in range(n) for k in range(1, 1441)).encode()
def send(host, port):
    with socket.create_connection((host, int(port))) as s:
        s.sendall(lines)
send(*carbon.split(":"))
send("127.0.0.1", os.environ["RELAY_PORT"])

def get(base, path):
    t = time.perf_counter()
    with urllib.request.urlopen(base + path, timeout=600) as r:
        body = r.read()
    return time.perf_counter() - t, body
def points(base):
    q = "/render?format=json&target=bench.*.cpu&from=%d&until=%d" % (start, until)
    return sum(1 for s in json.loads(get(base, q)[1]) for v, _ in s["datapoints"] if v is not None)
want = n * 1440
for _ in range(600):
    if points(http["single"]) == want and sum(points(http[k]) for k in ("n0", "n1", "n2")) == 2 * want:
        break
    time.sleep(1)
else:
    raise SystemExit("the data did not arrive")

def median(base, path):
    get(base, path)  # warm
    return statistics.median(get(base, path)[0] for _ in range(rounds))
targets = [  # (target, the path expression graphite-web fetches from the nodes)
    ("bench.h1.cpu", "bench.h1.cpu"),
    ("bench.*.cpu", "bench.*.cpu"),
    ("sumSeries(bench.*.cpu)", "bench.*.cpu"),
    ("aliasByNode(bench.h1?.cpu,1)", "bench.h1?.cpu"),
]
span = "&from=%d&until=%d" % (start, until)
print("%d series x 1440 points; median of %d renders; 2 cores shared by everything" % (n, rounds))
print("%-30s %-8s %12s %12s %7s %11s %11s" % ("target", "format", "1 node ms", "3 nodes ms",
                                               "3/1", "node share1", "node share3"))
for target, expr in targets:
    q = "/render?format=json&target=%s%s" % (urllib.parse.quote(target), span)
    for fmt in ("pickle", "msgpack"):
        t1 = median(front["gw1-" + fmt], q)
        t3 = median(front["gw3-" + fmt], q)
        nq = "/render?format=%s&local=1&noCache=1&target=%s%s&now=%d" % (
            fmt, urllib.parse.quote(expr), span, now)
        s1 = median(http["single"], nq)
        s3 = max(median(http[k], nq) for k in ("n0", "n1", "n2"))
        print("%-30s %-8s %12.1f %12.1f %7.2f %10.0f%% %10.0f%%" % (
            target, fmt, t1 * 1e3, t3 * 1e3, t3 / t1, 100 * s1 / t1, 100 * s3 / t3))

q = "/render?target=bench.*.cpu%s&format=" % span
print()
print("at the single node, bench.*.cpu (%d points):" % want)
per = {}
for fmt in ("json", "pickle", "msgpack"):
    per[fmt] = median(http["single"], q + fmt) / want
    print("  %-8s %8.1f ns/point" % (fmt, per[fmt] * 1e9))
print("  (json carries a timestamp per point and Python's float repr; pickle %.2fx, msgpack %.2fx of json)"
      % (per["pickle"] / per["json"], per["msgpack"] / per["json"]))
PY
