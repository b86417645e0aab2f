#!/usr/bin/env bash
# Bytes per stored point: 1000 series × one day of 10 s points under carbon's usual schema
# `10s:1d,1m:30d,10m:1y` (whisper's average rollups, xFilesFactor 0.5), sent to a real
# `carbide serve` over its carbon port (clock frozen at the data's end), then measured in its
# SQLite file. Two data sets, each its own server:
#   walk+counters   500 random walks with two decimals (±1.00 a step), 500 counters
#   const+slow      500 constant gauges, 500 gauges changing every 30 min (two decimals)
# Prints, per archive, the points stored (counted through /render with isNonNull), the chunk
# bytes per point, and the whole file's bytes per point (after a WAL checkpoint, and after
# VACUUM); then whisper's size for the same schema (Debian's whisper-create, python3-whisper).
#
# usage: [CARBIDE=path/to/carbide] [BASELINE=path/to/older/carbide] benches/store-size.sh [SERIES]
#        (default: builds and runs target/release/carbide; BASELINE also measures an older
#        build in the same run)
set -euo pipefail
SERIES=${1:-1000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${CARBIDE:-}" ]; then
    cargo build --quiet --release --bin carbide --manifest-path "$ROOT/Cargo.toml"
    CARBIDE=$CARGO_TARGET_DIR/release/carbide
fi
WORK=$(mktemp -d /tmp/store-size.XXXXXX)
PID=
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
NOW=1780000000
cat >"$WORK/schemas.conf" <<'CONF'
[default]
pattern = .*
retentions = 10s:1d,1m:30d,10m:1y
CONF

# Counting a day of 1000 series' points takes more than one request's default budget.
cat >"$WORK/serve.yml" <<'YML'
limits:
  max_points_per_request: 100000000
  render_timeout: 600s
YML

# One data set through binary $1: prints its table.
measure() {
    local bin=$1 kind=$2 label=$3
    rm -rf "$WORK/data"
    "$bin" serve --data-dir "$WORK/data" --schemas "$WORK/schemas.conf" --carbon-tcp 127.0.0.1:0 \
        --carbon-udp off --http-listen 127.0.0.1:0 --frozen-clock "$NOW" --config "$WORK/serve.yml" \
        >"$WORK/out" 2>"$WORK/err" &
    PID=$!
    for _ in $(seq 200); do grep -q 'http://' "$WORK/out" 2>/dev/null && break; sleep 0.1; done
    NOW=$NOW SERIES=$SERIES KIND=$kind LABEL=$label OUT="$WORK/out" \
        python3 - <<'PY'
import os, random, re, socket, time, json, urllib.parse, urllib.request
now, n, kind = int(os.environ["NOW"]), int(os.environ["SERIES"]), os.environ["KIND"]
out = open(os.environ["OUT"]).read()
carbon = re.search(r"carbon tcp ([0-9.:]+)", out).group(1)
http = re.search(r"http (http://[0-9.:]+)", out).group(1)
rng = random.Random(22)
half = n // 2
if kind == "walk":
    names = [f"bench.walk.s{i:04d}" for i in range(half)] + [f"bench.count.s{i:04d}" for i in range(n - half)]
    state = [rng.randint(0, 100000) for _ in range(half)] + [rng.randint(0, 10**9) for _ in range(n - half)]
    def step(i, t):
        if i < half:
            state[i] += rng.randint(-100, 100)
            return "%.2f" % (state[i] / 100)
        state[i] += rng.randint(0, 5000)
        return str(state[i])
else:
    names = [f"bench.const.s{i:04d}" for i in range(half)] + [f"bench.slow.s{i:04d}" for i in range(n - half)]
    state = [rng.randint(0, 100) for _ in range(half)] + [rng.randint(0, 100000) for _ in range(n - half)]
    def step(i, t):
        if i < half:
            return str(state[i])
        if t % 180 == 0:
            state[i] += rng.randint(-100, 100)
        return "%.2f" % (state[i] / 100)
host, port = carbon.rsplit(":", 1)
sent = 0
t0 = time.time()
with socket.create_connection((host, int(port))) as s:
    for t in range(8640):
        ts = now - 86400 + 10 * (t + 1)
        s.sendall("".join(f"{names[i]} {step(i, t)} {ts}\n" for i in range(n)).encode())
        sent += n
    s.sendall(f"zz.sentinel 1 {now}\n".encode())
def get(q):
    with urllib.request.urlopen(http + q, timeout=900) as r:
        return r.read()
while b"zz.sentinel" not in get("/metrics/expand?query=zz.sentinel"):
    time.sleep(0.2)
counts = {}
for arch, frm in (("10s", now - 86400), ("1m", now - 2 * 86400), ("10m", now - 60 * 86400)):
    body = json.loads(get("/render?" + urllib.parse.urlencode(
        {"target": "sumSeries(isNonNull(bench.*.*))", "from": frm, "until": now, "format": "json"})))
    counts[arch] = int(sum(v for v, _ in body[0]["datapoints"] if v is not None))
json.dump({"sent": sent, "seconds": time.time() - t0, "counts": counts}, open(os.environ["OUT"] + ".json", "w"))
PY
    kill -TERM "$PID"; wait "$PID"; PID=
    local db=$WORK/data/carbide.db
    sqlite3 "$db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
    local size; size=$(stat -c %s "$db")
    sqlite3 -separator ' ' "$db" 'SELECT archive, count(*), sum(length(data)) FROM chunks GROUP BY archive' >"$WORK/arch"
    sqlite3 "$db" 'VACUUM;'
    local vsize; vsize=$(stat -c %s "$db")
    SIZE=$size VSIZE=$vsize LABEL=$label ARCH="$WORK/arch" STATS="$WORK/out.json" python3 - <<'PY'
import json, os
st = json.load(open(os.environ["STATS"]))
counts = st["counts"]
rows = [l.split() for l in open(os.environ["ARCH"])]
total = sum(counts.values())
print(f"-- {os.environ['LABEL']}: {st['sent']} points sent in {st['seconds']:.1f} s; {total} stored")
print(f"   {'archive':8} {'points':>10} {'chunks':>8} {'chunk bytes':>12} {'bytes/point':>11}")
for (a, chunks, nbytes), name in zip(rows, ("10s", "1m", "10m")):
    p = counts[name]
    print(f"   {name:8} {p:>10} {int(chunks):>8} {int(nbytes):>12} {int(nbytes) / max(p, 1):>11.3f}")
size, vsize = int(os.environ["SIZE"]), int(os.environ["VSIZE"])
print(f"   file: {size / 1e6:.1f} MB = {size / total:.3f} bytes/point; after VACUUM {vsize / 1e6:.1f} MB = {vsize / total:.3f} bytes/point")
PY
}

run() {
    local bin=$1 name=$2
    measure "$bin" walk "$name, walk+counters"
    measure "$bin" slow "$name, const+slow"
}
if [ -n "${BASELINE:-}" ]; then run "$BASELINE" "baseline $BASELINE"; fi
run "$CARBIDE" "carbide $CARBIDE"

echo "-- whisper (whisper-create, the same schema): one file per series, preallocated"
whisper-create "$WORK/one.wsp" 10s:1d 1m:30d 10m:1y >/dev/null
one=$(stat -c %s "$WORK/one.wsp")
python3 -c "
one, n = $one, $SERIES
slots = 8640 + 43200 + 52560
day = 8640 + 1440 + 144
print(f'   {n} files: {one * n / 1e6:.1f} MB; {one / slots:.2f} bytes per slot at full retention, {one / day:.1f} bytes per point of this one-day data')
"
