#!/usr/bin/env bash
# Benchmark: sql-to-graphite from process start to the last line received by a carbon
# stand-in, for N (default 100) simple queries against the local PostgreSQL of
# tests/services/sql-up.sh, reported as overhead per query beyond the database's own time.
#
# Baselines, same N queries, same server:
#   psql      `psql -f` running the plain queries (process start to exit, one connection)
#   marginal  (time for N queries - time for 1) / (N - 1), for both tools: the per-query
#             cost without process start, connection and authentication
#   server    the sum of server-side execution times (EXPLAIN ANALYZE "Execution Time")
# Each measurement is the median of RUNS (default 7) runs.
#
# Usage: benches/sql-to-graphite.sh [N]     (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100}"
runs="${RUNS:-7}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/carbide-target}"

eval "$(tests/services/sql-up.sh)"
cargo build --release -q -p carbide-collector --bin sql-to-graphite
bin="$CARGO_TARGET_DIR/release/sql-to-graphite"

work="$(mktemp -d)"
trap 'kill "$rx_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

for i in $(seq 1 "$n"); do echo "SELECT 'bench.q$i', $i"; done > "$work/queries.sql"
sed 's/^/EXPLAIN ANALYZE /; s/$/;/' "$work/queries.sql" > "$work/explain.sql"

# Carbon stand-in: writes the arrival time (ns) of the N-th line of each connection batch.
cat > "$work/rx.py" <<'PY'
import socket, sys, time, threading
portfile, outfile, expectfile = sys.argv[1], sys.argv[2], sys.argv[3]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0)); srv.listen(16)
open(portfile, "w").write(str(srv.getsockname()[1]))
count = 0
lock = threading.Lock()
def serve(c):
    global count
    buf = b""
    while True:
        d = c.recv(65536)
        if not d: return
        t = time.time_ns()
        with lock:
            count += d.count(b"\n")
            n = int(open(expectfile).read())
            if count >= n:
                open(outfile, "a").write(f"{t}\n"); count -= n
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
echo "$n" > "$work/expect"
python3 "$work/rx.py" "$work/port" "$work/arrivals" "$work/expect" & rx_pid=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port="$(cat "$work/port")"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s%N; }
pw="${CARBIDE_TEST_PG_DSN#*://*:}"; pw="${pw%%@*}"

# Median microseconds from process start to the last line received, for the queries in $1.
s2g_us() {
  local file="$1" count; count=$(wc -l < "$file"); local t=()
  for _ in $(seq "$runs"); do
    : > "$work/arrivals"; echo "$count" > "$work/expect"
    local start; start=$(now)
    S2G_DSN="$CARBIDE_TEST_PG_DSN" "$bin" --graphite-host 127.0.0.1 --graphite-port "$port" \
      --graphite-prefix bench < "$file" > /dev/null
    for _ in $(seq 500); do [ -s "$work/arrivals" ] && break; sleep 0.01; done
    t+=($(( ($(head -1 "$work/arrivals") - start) / 1000 )))
  done
  printf '%s\n' "${t[@]}" | median
}

# Median microseconds of `psql -f` on the queries in $1, start to exit.
psql_us() {
  sed 's/$/;/' "$1" > "$work/plain.sql"; local t=()
  for _ in $(seq "$runs"); do
    local start; start=$(now)
    PGPASSWORD="$pw" psql -X -q -A -t -d "$CARBIDE_TEST_PG_DSN" -f "$work/plain.sql" > /dev/null
    t+=($(( ($(now) - start) / 1000 )))
  done
  printf '%s\n' "${t[@]}" | median
}

head -1 "$work/queries.sql" > "$work/one.sql"
s2g_med=$(s2g_us "$work/queries.sql"); s2g_one=$(s2g_us "$work/one.sql")
psql_med=$(psql_us "$work/queries.sql"); psql_one=$(psql_us "$work/one.sql")

server_us=$(PGPASSWORD="$pw" psql -X -q -A -t -d "$CARBIDE_TEST_PG_DSN" -f "$work/explain.sql" \
  | awk '/Execution Time/ {s += $3} END {printf "%d", s * 1000}')

awk -v n="$n" -v s="$s2g_med" -v s1="$s2g_one" -v p="$psql_med" -v p1="$psql_one" -v d="$server_us" -v runs="$runs" 'BEGIN {
  printf "queries: %d (median of %d runs)\n", n, runs
  printf "sql-to-graphite, start to last line received: %8.1f ms (1 query: %.1f ms)\n", s / 1000, s1 / 1000
  printf "psql -f, start to exit:                        %8.1f ms (1 query: %.1f ms)\n", p / 1000, p1 / 1000
  printf "server execution time (sum of EXPLAIN ANALYZE): %7.2f ms\n", d / 1000
  printf "overhead per query beyond the server time:     %8.1f us (total - server) / n\n", (s - d) / n
  printf "marginal cost per query, sql-to-graphite:      %8.1f us (T_n - T_1) / (n - 1)\n", (s - s1) / (n - 1)
  printf "marginal cost per query, psql:                 %8.1f us\n", (p - p1) / (n - 1)
}'
