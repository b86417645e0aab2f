#!/usr/bin/env bash
# Ingest benchmark: the same pre-rendered carbon plaintext load (SERIES series × POINTS points)
# fed over 1 and 8 TCP connections to carbide's store (graphite/examples/serve.rs) and to
# Debian's carbon-cache (graphite-carbon, whisper in a tempdir on the same disk).
#
# A run's time is from the first connect until every connection has been closed by the server
# after the client's half-close: both servers have then parsed every line into their cache.
# Zero loss is then checked by counting what is queryable: carbide through Store::fetch (cache
# + SQLite); carbon through its cache-query port (what graphite-web's CarbonLink asks) plus the
# whisper files. "points/s" is reported only when that count equals the number sent.
#
# Usage: benches/ingest-vs-carbon.sh [SERIES] [POINTS]     (defaults 100000 10)
# RUNS=n rounds (default 3): every server runs once per round; medians are compared.
# BASELINE=/path/to/an/older/serve also runs that build of the example (before/after numbers
# from the same run and the same load); SKIP_CARBON=1 runs carbide only. The series come in
# the same order every interval, as collection agents send them; SHUFFLE=1 sends every
# interval in another random order instead (the worst case for carbide's per-connection
# memory of what it was sent, see graphite/src/store/recent.rs).
#
# carbon-cache runs with MAX_UPDATES_PER_SECOND and MAX_CREATES_PER_MINUTE = inf
# (CARBON_WRITES=inf, the default): with Debian's limits (CARBON_WRITES=debian: 500 updates/s,
# 50 creates/min) carbon's writer drops the points of a new series whose file it may not
# create yet (`droppedCreates`), so zero loss is impossible; its receive time was the same
# either way (9.0 / 10.4 s limited vs 4.8–8.6 / 9.0–11.0 s unlimited), i.e. the unlimited
# writer does not slow its receiver down.
# Needs: python3, /usr/bin/python3 with python3-whisper, graphite-carbon; builds the example in release mode.
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

echo "== building carbide store example (release)"
cargo build --quiet --release -p graphite --features store --example serve --manifest-path "$ROOT/Cargo.toml"
SERVE=$CARGO_TARGET_DIR/release/examples/serve

echo "== generating $SERIES series × $POINTS points"
NOW=$(date +%s)
T0=$(( NOW - NOW % 10 - POINTS * 10 ))
python3 - "$WORK" "$SERIES" "$POINTS" "$T0" "${SHUFFLE:-}" <<'EOF'
import random, sys
work, series, points, t0 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
shuffle = bool(sys.argv[5])
names = [f"bench.host{s // 100:05d}.metric{s % 100:02d}" for s in range(series)]
order = list(range(series))
rng = random.Random(42)
# One file (1 connection) and 8 files split by series (8 connections), same lines.
with open(f"{work}/load.txt", "w") as one:
    parts = [open(f"{work}/load.{i}.txt", "w") for i in range(8)]
    for p in range(points):
        ts = t0 + 10 * p
        if shuffle:
            rng.shuffle(order)
        for s in order:
            n = names[s]
            line = f"{n} {s + p * 0.5} {ts}\n"
            one.write(line)
            parts[s % 8].write(line)
    for f in parts:
        f.close()
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
ls -la "$WORK"/load.txt | awk '{printf "   load: %d lines, %.1f MB\n", '"$TOTAL"', $5/1e6}'

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

run_carbide() {
    local conns=$1 files=$2 name=${3:-carbide} bin=${4:-$SERVE} dir=$WORK/${3:-}carbide.$1.$RUN
    local port; port=$(free_port)
    mkdir -p "$dir"
    coproc SRV { "$bin" --data "$dir" --tcp "127.0.0.1:$port" --udp none --schemas "$WORK/schemas.conf" --flush-secs 5; }
    PIDS+=("$SRV_PID")
    read -r ready <&"${SRV[0]}"   # LISTENING ...
    local secs; secs=$(python3 "$WORK/send.py" "$port" $files)
    # The first read after the load: it enters the new series into the index and the tag
    # index (left off the receive path), so its time is reported too.
    local t0 t1; t0=$(date +%s%N)
    echo "stats" >&"${SRV[1]}"; local stats; read -r stats <&"${SRV[0]}"
    t1=$(date +%s%N)
    echo "count bench.*.* $(( T0 - 10 )) $(( T0 + POINTS * 10 ))" >&"${SRV[1]}"
    local count; read -r _ count <&"${SRV[0]}"
    echo "flush" >&"${SRV[1]}"; local flush; read -r flush <&"${SRV[0]}"
    echo "quit" >&"${SRV[1]}"; local bye; read -r bye <&"${SRV[0]}" || true
    wait "$SRV_PID" 2>/dev/null || true
    report "$name" "$conns" "$secs" "$count"
    echo "   ($stats; first read (index catch-up) $(( (t1 - t0) / 1000000 )) ms; $flush s to flush all to SQLite; db $(du -sh "$dir" | cut -f1))"
}

case ${CARBON_WRITES:-inf} in
    debian) UPDATES=500 CREATES=50 ;;
    inf) UPDATES=inf CREATES=inf ;;
    *) echo "CARBON_WRITES must be debian or inf" >&2; exit 2 ;;
esac

run_carbon() {
    local conns=$1 files=$2 dir=$WORK/carbon.$1.$RUN
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
    local secs; secs=$(python3 "$WORK/send.py" "$port" $files)
    local count; count=$(/usr/bin/python3 "$WORK/carbon_count.py" "$qport" "$dir/storage/whisper" "$SERIES" "$T0" "$POINTS" "$TOTAL")
    kill "$cpid" 2>/dev/null || true
    wait "$cpid" 2>/dev/null || true
    report carbon-cache "$conns" "$secs" "$count"
}

declare -A RATE
report() {
    local name=$1 conns=$2 secs=$3 count=$4 rate=0
    if [ "$count" -eq "$TOTAL" ]; then
        rate=$(python3 -c "print(round($TOTAL / $secs))")
        printf "%-13s %d conn: %7.3f s, %d/%d queryable, %s points/s\n" "$name" "$conns" "$secs" "$count" "$TOTAL" "$rate"
    else
        printf "%-13s %d conn: %7.3f s, LOSS: %d/%d queryable\n" "$name" "$conns" "$secs" "$count" "$TOTAL"
    fi
    RATE[$name.$conns]="${RATE[$name.$conns]:-} $rate"
}

# The median of a list of rates, 0 if any run lost points.
median() { python3 -c "import statistics, sys; r = [int(x) for x in sys.argv[1:]]; print(0 if 0 in r else round(statistics.median(r)))" $1; }

ONE="$WORK/load.txt"
EIGHT=$(echo "$WORK"/load.{0..7}.txt)
# RUNS rounds (default 3), each running every server once, so that a noisy moment of a
# shared machine falls on all of them; the medians are compared.
for RUN in $(seq 1 "${RUNS:-3}"); do
    echo "== round $RUN: carbide"
    run_carbide 1 "$ONE"
    run_carbide 8 "$EIGHT"
    if [ -n "${BASELINE:-}" ]; then
        echo "== round $RUN: baseline carbide ($BASELINE)"
        run_carbide 1 "$ONE" baseline "$BASELINE"
        run_carbide 8 "$EIGHT" baseline "$BASELINE"
    fi
    if [ -z "${SKIP_CARBON:-}" ]; then
        echo "== round $RUN: carbon-cache ($(dpkg-query -W -f '${Version}' graphite-carbon 2>/dev/null || echo '?'); writer limits: ${CARBON_WRITES:-inf})"
        run_carbon 1 "$ONE"
        run_carbon 8 "$EIGHT"
    fi
done
echo "== medians of ${RUNS:-3} rounds (points/s accepted with zero loss)"
for c in 1 8; do
    a=$(median "${RATE[carbide.$c]}")
    printf "carbide       %d conn: %s points/s\n" "$c" "$a"
    if [ -n "${BASELINE:-}" ]; then
        b=$(median "${RATE[baseline.$c]}")
        python3 -c "print(f'baseline      $c conn: $b points/s, carbide / baseline = ' + (f'{$a / $b:.2f}x' if $a and $b else 'n/a'))"
    fi
    if [ -z "${SKIP_CARBON:-}" ]; then
        k=$(median "${RATE[carbon-cache.$c]}")
        python3 -c "print(f'carbon-cache  $c conn: $k points/s, carbide / carbon-cache = ' + (f'{$a / $k:.1f}x' if $a and $k else 'n/a (a run lost points)'))"
    fi
done
