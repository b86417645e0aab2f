#!/usr/bin/env bash
# Ingest benchmark: the same pre-rendered carbon plaintext load (SERIES series × POINTS points)
# fed in several shapes to the real `carbide serve` and to Debian's carbon-cache
# (graphite-carbon, whisper in a tempdir on the same disk).
#
# Shapes (SHAPES="agent1 agent8 relay8 shuffled1 shuffled8" by default; the same lines in each):
#   agent1     1 connection, every interval in the same series order (a collection agent);
#   agent8     8 connections, series split by index (s % 8), each in the same order every
#              interval (8 agents);
#   relay8     8 connections, series split by a hash of the name (as a relay's consistent hash
#              spreads them), and every interval each connection's lines in a new random order
#              of its own (carbon-c-relay / carbon-relay forwarding mixed streams);
#   shuffled1  1 connection, all SERIES × POINTS lines in one random order (intervals mixed,
#              timestamps out of order);
#   shuffled8  the shuffled lines dealt round-robin to 8 connections.
#
# A run's time is from the first connect until every connection has been closed by the server
# after the client's half-close: both servers have then parsed every line into their cache.
# Zero loss is then checked by counting what is queryable: carbide through its render API
# (`/render?target=bench.*.*&format=json`, cache + SQLite, the first read after the load, whose
# time includes entering the new series into the index); carbon through its cache-query port
# (what graphite-web's CarbonLink asks) plus the whisper files. "points/s" is reported only
# when that count equals the number sent.
#
# Usage: benches/ingest-vs-carbon.sh [SERIES] [POINTS]     (defaults 100000 10)
# RUNS=n rounds (default 3): every server runs every shape once per round; medians are
# compared. REPEAT=k (default 5): within a round, every carbide build runs each shape k times
# back to back, each time a new server given the same lines (carbon-cache once: its run is
# seconds long, carbide's a tenth of one, so one carbide run moves ±30 % with the machine's
# moment); carbide's median is over all RUNS × k runs, carbon's over RUNS, so both servers
# still get exactly the same lines and the same zero-loss check per run. Each carbide run
# also reports the server's CPU time for the load (the sum over its threads of
# /proc/PID/task/*/schedstat's first field, from just before the first connect to just after
# the last connection closed), a figure that a busy machine disturbs far less than the wall
# time: the medians section gives it per 1 M lines. BASELINE=/path/to/an/older/carbide also runs that build (before/after numbers
# from the same run and the same load); CARBIDE=/path/to/carbide benches that binary instead of
# building one; SKIP_CARBON=1 runs carbide only.
#
# carbon-cache runs with MAX_UPDATES_PER_SECOND and MAX_CREATES_PER_MINUTE = inf
# (CARBON_WRITES=inf, the default): with Debian's limits (CARBON_WRITES=debian: 500 updates/s,
# 50 creates/min) carbon's writer drops the points of a new series whose file it may not
# create yet (`droppedCreates`), so zero loss is impossible; its receive time was the same
# either way (9.0 / 10.4 s limited vs 4.8–8.6 / 9.0–11.0 s unlimited), i.e. the unlimited
# writer does not slow its receiver down.
# Needs: python3, /usr/bin/python3 with python3-whisper, graphite-carbon; builds carbide (release).
set -euo pipefail

SERIES=${1:-100000}
POINTS=${2:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/ingest-vs-carbon.XXXXXX)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [ -n "${CARBIDE:-}" ]; then
    echo "== carbide: $CARBIDE (not built here)"
else
    echo "== building carbide (release)"
    cargo build --quiet --release --bin carbide --manifest-path "$ROOT/Cargo.toml"
    CARBIDE=$CARGO_TARGET_DIR/release/carbide
fi
SHAPES=${SHAPES:-agent1 agent8 relay8 shuffled1 shuffled8}

echo "== generating $SERIES series × $POINTS points ($SHAPES)"
NOW=$(date +%s)
T0=$(( NOW - NOW % 10 - POINTS * 10 ))
python3 - "$WORK" "$SERIES" "$POINTS" "$T0" <<'EOF'
import random, sys, zlib
work, series, points, t0 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
names = [f"bench.host{s // 100:05d}.metric{s % 100:02d}" for s in range(series)]
rng = random.Random(42)
def line(s, p):
    return f"{names[s]} {s + p * 0.5} {t0 + 10 * p}\n"
def write(shape, parts):
    for i, lines in enumerate(parts):
        with open(f"{work}/{shape}.{i}.txt", "w") as f:
            f.write("".join(lines))
agent = [line(s, p) for p in range(points) for s in range(series)]
write("agent1", [agent])
write("agent8", [[line(s, p) for p in range(points) for s in range(series) if s % 8 == i] for i in range(8)])
# A relay's connections: series by a hash of the name, each interval in a new order per connection.
mine = [[s for s in range(series) if zlib.crc32(names[s].encode()) % 8 == i] for i in range(8)]
relay = []
for own in mine:
    lines = []
    for p in range(points):
        order = own[:]
        rng.shuffle(order)
        lines.extend(line(s, p) for s in order)
    relay.append(lines)
write("relay8", relay)
shuffled = agent[:]
rng.shuffle(shuffled)
write("shuffled1", [shuffled])
write("shuffled8", [shuffled[i::8] for i in range(8)])
EOF
cat > "$WORK/schemas.conf" <<EOF
[bench]
pattern = ^bench\.
retentions = 10s:6h

[default]
pattern = .*
retentions = 60s:1d
EOF
TOTAL=$(( SERIES * POINTS ))
ls -la "$WORK"/agent1.0.txt | awk '{printf "   load: %d lines, %.1f MB\n", '"$TOTAL"', $5/1e6}'

# send PORT FILE... → seconds from first connect to the server closing the last connection.
cat > "$WORK/send.py" <<'EOF'
import socket, sys, threading, time
port, files = int(sys.argv[1]), sys.argv[2:]
data = [open(f, "rb").read() for f in files]
def run(buf):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(buf)
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    s.close()
threads = [threading.Thread(target=run, args=(d,)) for d in data]
t = time.perf_counter()
for th in threads: th.start()
for th in threads: th.join()
print(f"{time.perf_counter() - t:.3f}")
EOF

# Count queryable carbon points: cache (cache-query-bulk) ∪ whisper, retried while the writer
# moves points from cache to disk (a point is briefly in neither, as with graphite-web).
cat > "$WORK/carbon_count.py" <<'EOF'
import os, pickle, socket, struct, sys, time, whisper
port, wsp, series, t0, points, total = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
names = [f"bench.host{s // 100:05d}.metric{s % 100:02d}" for s in range(series)]
def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise EOFError
        b += c
    return b
def count():
    s = socket.create_connection(("127.0.0.1", int(port)))
    req = pickle.dumps({"type": "cache-query-bulk", "metrics": names}, protocol=2)
    s.sendall(struct.pack("!L", len(req)) + req)
    n = struct.unpack("!L", recv_exact(s, 4))[0]
    cache = pickle.loads(recv_exact(s, n))["datapointsByMetric"]
    s.close()
    found = 0
    for name in names:
        seen = {int(ts) for ts, _ in cache.get(name, [])}
        path = os.path.join(wsp, *name.split(".")) + ".wsp"
        if os.path.exists(path):
            try:
                (start, end, step), vals = whisper.fetch(path, t0 - 10, t0 + points * 10)
                seen |= {start + i * step for i, v in enumerate(vals) if v is not None}
            except Exception:
                pass
        found += len(seen)
    return found
best = 0
for _ in range(20):
    best = max(best, count())
    if best >= total: break
    time.sleep(3)
print(best)
EOF

# Count queryable carbide points through the render API (one JSON answer for every series).
cat > "$WORK/carbide_count.py" <<'EOF'
import json, sys, time, urllib.request
url, t0, points = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t = time.perf_counter()
q = f"{url}/render?target=bench.*.*&from={t0 - 10}&until={t0 + points * 10}&format=json"
with urllib.request.urlopen(q, timeout=120) as r:
    body = r.read()
ms = (time.perf_counter() - t) * 1000
n = sum(1 for s in json.loads(body) for v, _ in s["datapoints"] if v is not None)
print(n, round(ms))
EOF

run_carbide() {
    local shape=$1 name=${2:-carbide} bin=${3:-$CARBIDE} dir=$WORK/${2:-carbide}.$1.$RUN
    mkdir -p "$dir"
    "$bin" serve --data-dir "$dir/data" --schemas "$WORK/schemas.conf" --flush-interval 5s \
        --carbon-tcp 127.0.0.1:0 --carbon-udp off --http-listen 127.0.0.1:0 \
        > "$dir/serve.out" 2> "$dir/serve.log" &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 100); do grep -q "http://" "$dir/serve.out" 2>/dev/null && break; sleep 0.1; done
    local carbon url
    read -r carbon url < <(python3 -c '
import sys; w = open(sys.argv[1]).read().split()
print(w[3].rsplit(":", 1)[1], w[7].rstrip(","))' "$dir/serve.out")
    local cpu0; cpu0=$(cpu_ns "$pid")
    local secs; secs=$(python3 "$WORK/send.py" "$carbon" "$WORK/$shape".*.txt)
    local cpu1; cpu1=$(cpu_ns "$pid")
    local count ms; read -r count ms < <(python3 "$WORK/carbide_count.py" "$url" "$T0" "$POINTS")
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
    report "$name" "$shape" "$secs" "$count"
    local cpu_ms=$(( (cpu1 - cpu0) / 1000000 ))
    CPU[$name.$shape]="${CPU[$name.$shape]:-} $cpu_ms"
    echo "   (server CPU for the load: $cpu_ms ms; first render of every series after it, index catch-up included: $ms ms)"
}

# The CPU time (ns) the threads of process PID have run: the first field of each thread's
# schedstat (nanoseconds, unlike /proc/PID/stat's 10 ms ticks).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }

case ${CARBON_WRITES:-inf} in
    debian) UPDATES=500 CREATES=50 ;;
    inf) UPDATES=inf CREATES=inf ;;
    *) echo "CARBON_WRITES must be debian or inf" >&2; exit 2 ;;
esac

run_carbon() {
    local shape=$1 dir=$WORK/carbon.$1.$RUN
    local port qport pport; port=$(free_port); qport=$(free_port); pport=$(free_port)
    mkdir -p "$dir"/{conf,storage/whisper,storage/lists,log,run}
    cp "$WORK/schemas.conf" "$dir/conf/storage-schemas.conf"
    cat > "$dir/conf/carbon.conf" <<EOF
[cache]
STORAGE_DIR = $dir/storage
LOCAL_DATA_DIR = $dir/storage/whisper
WHITELISTS_DIR = $dir/storage/lists
CONF_DIR = $dir/conf
LOG_DIR = $dir/log
PID_DIR = $dir/run
ENABLE_LOGROTATION = False
USER =
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = $UPDATES
MAX_CREATES_PER_MINUTE = $CREATES
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = $port
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = $pport
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = $qport
LOG_LISTENER_CONNECTIONS = False
LOG_UPDATES = False
LOG_CREATES = False
EOF
    carbon-cache --config="$dir/conf/carbon.conf" --pidfile="$dir/run/carbon.pid" --logdir="$dir/log" --nodaemon start >"$dir/log/stdout" 2>&1 &
    local cpid=$!
    PIDS+=("$cpid")
    for _ in $(seq 1 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null && break
        sleep 0.2
    done
    local secs; secs=$(python3 "$WORK/send.py" "$port" "$WORK/$shape".*.txt)
    local count; count=$(/usr/bin/python3 "$WORK/carbon_count.py" "$qport" "$dir/storage/whisper" "$SERIES" "$T0" "$POINTS" "$TOTAL")
    kill "$cpid" 2>/dev/null || true
    wait "$cpid" 2>/dev/null || true
    rm -rf "$dir"
    report carbon-cache "$shape" "$secs" "$count"
}

declare -A RATE CPU
REPEAT=${REPEAT:-5}
report() {
    local name=$1 shape=$2 secs=$3 count=$4 rate=0
    if [ "$count" -eq "$TOTAL" ]; then
        rate=$(python3 -c "print(round($TOTAL / $secs))")
        printf "%-13s %-9s %7.3f s, %d/%d queryable, %s points/s\n" "$name" "$shape" "$secs" "$count" "$TOTAL" "$rate"
    else
        printf "%-13s %-9s %7.3f s, LOSS: %d/%d queryable\n" "$name" "$shape" "$secs" "$count" "$TOTAL"
    fi
    RATE[$name.$shape]="${RATE[$name.$shape]:-} $rate"
}

# The median of a list of rates, 0 if any run lost points.
median() { python3 -c "import statistics, sys; r = [int(x) for x in sys.argv[1:]]; print(0 if 0 in r else round(statistics.median(r)))" $1; }

# RUNS rounds (default 3), each running every server on every shape (carbide REPEAT times),
# so that a noisy moment of a shared machine falls on all of them; the medians are compared.
# With a BASELINE the two carbide builds alternate run by run.
for RUN in $(seq 1 "${RUNS:-3}"); do
    echo "== round $RUN: carbide${BASELINE:+ and baseline carbide ($BASELINE), alternating}, $REPEAT runs of each shape"
    for shape in $SHAPES; do
        for _ in $(seq "$REPEAT"); do
            run_carbide "$shape"
            if [ -n "${BASELINE:-}" ]; then run_carbide "$shape" baseline "$BASELINE"; fi
        done
    done
    if [ -z "${SKIP_CARBON:-}" ]; then
        echo "== round $RUN: carbon-cache ($(dpkg-query -W -f '${Version}' graphite-carbon 2>/dev/null || echo '?'); writer limits: ${CARBON_WRITES:-inf})"
        for shape in $SHAPES; do run_carbon "$shape"; done
    fi
done
# The median server CPU (ms) per 1 M lines of a list of CPU times of the whole load.
cpu_per_m() { python3 -c "import statistics, sys; print(round(statistics.median(int(x) for x in sys.argv[2:]) * 1e6 / int(sys.argv[1])))" "$TOTAL" $1; }

echo "== medians of ${RUNS:-3} rounds, carbide ${REPEAT} runs per round (points/s accepted with zero loss; server CPU per 1 M lines)"
for shape in $SHAPES; do
    a=$(median "${RATE[carbide.$shape]}")
    printf "carbide       %-9s %s points/s, %s ms CPU\n" "$shape" "$a" "$(cpu_per_m "${CPU[carbide.$shape]}")"
    if [ -n "${BASELINE:-}" ]; then
        b=$(median "${RATE[baseline.$shape]}")
        bc=$(cpu_per_m "${CPU[baseline.$shape]}")
        python3 -c "print('baseline      %-9s $b points/s, $bc ms CPU, carbide / baseline = ' % '$shape' + (f'{$a / $b:.2f}x' if $a and $b else 'n/a'))"
    fi
    if [ -z "${SKIP_CARBON:-}" ]; then
        k=$(median "${RATE[carbon-cache.$shape]}")
        python3 -c "print('carbon-cache  %-9s $k points/s, carbide / carbon-cache = ' % '$shape' + (f'{$a / $k:.1f}x' if $a and $k else 'n/a (a run lost points)'))"
    fi
done
