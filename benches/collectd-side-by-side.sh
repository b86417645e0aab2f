#!/usr/bin/env bash
# Side-by-side cost of carbide's collector agent and Debian's collectd.
#
# Both send host metrics (collectd: cpu, memory, df, disk, interface, load plugins with
# write_graphite; the agent: one `type: host` collector) every 10 s to the same
# line-counting sink on 127.0.0.1 (benches/line-sink.py, one port per sender) for the same
# time, then prints for each: metrics per cycle, CPU ms per 10 s cycle (scheduler run time of
# all its threads from /proc/<pid>/task/*/schedstat over the measuring window), max RSS (VmHWM), PSS at the end of the window
# (shared library pages split among the processes that map them) and the agent/collectd ratios,
# plus the stripped binary size of each agent build.
#
# Environment:
#   BENCH_SECONDS   measuring window, default 60; use 300 or more for numbers to quote.
#   AGENT_BUILDS    which agent builds to run side by side, default "default host-only":
#                   `default` = `cargo build --profile agent -p carbide-collector` (every collector;
#                   the `agent` profile is how the agent ships: size-optimised, fat LTO),
#                   `host-only` = the same with `--no-default-features` (no HTTP/TLS, MongoDB
#                   or SQL clients). Each runs as its own process with its own sink port.
#   AGENT_BINS      instead of building, measure these binaries: "name=path name2=path2"
#                   (e.g. a binary saved from another commit, for before/after).
#   RUN_AGENT=0     skip the agent;  RUN_COLLECTD=0  skip collectd.
#   SERVICES=1      also watch services, each side with its equivalent collectors/plugins:
#                   private nginx (stub_status), redis-server and memcached started here on
#                   free 127.0.0.1 ports, the PostgreSQL and MariaDB of
#                   tests/services/sql-up.sh, and process groups for them (agent: `nginx`,
#                   `redis`, `memcached`, `postgres`, `mysql`, `process`; collectd: the
#                   `nginx`, `redis`, `memcached`, `postgresql`, `mysql`, `processes`
#                   plugins of Debian's collectd-core). AGENT_BUILDS defaults to `default`.
#   CARGO_TARGET_DIR  where the agent build goes (default ~/.cache/carbide-target).
#   COLLECTD        collectd binary, default /usr/sbin/collectd.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_SECONDS="${BENCH_SECONDS:-60}"
INTERVAL=10
WARMUP=3
RUN_AGENT="${RUN_AGENT:-1}"
RUN_COLLECTD="${RUN_COLLECTD:-1}"
COLLECTD="${COLLECTD:-/usr/sbin/collectd}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/carbide-target}"

tmp="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -n "${BENCH_KEEP:-}" ]] || rm -rf "$tmp"
}
trap cleanup EXIT

# --- build -------------------------------------------------------------------------------
declare -A agent_bin binary_size
agents=()
if [[ "$RUN_AGENT" == 1 ]]; then
    if [[ -n "${AGENT_BINS:-}" ]]; then
        for nb in $AGENT_BINS; do
            agents+=("${nb%%=*}")
            agent_bin[${nb%%=*}]="${nb#*=}"
        done
    else
        default_builds="default host-only"
        [[ "${SERVICES:-0}" == 1 ]] && default_builds="default"
        for b in ${AGENT_BUILDS:-$default_builds}; do
            case "$b" in
                default) flags=() ;;
                host-only) flags=(--no-default-features) ;;
                *) echo "unknown agent build $b (expected default or host-only)" >&2; exit 2 ;;
            esac
            echo "== building the agent ($b: cargo build --profile agent -p carbide-collector ${flags[*]})"
            cargo build --profile agent -p carbide-collector "${flags[@]}"
            cp "$CARGO_TARGET_DIR/agent/collector" "$tmp/collector-$b"
            agents+=("$b")
            agent_bin[$b]="$tmp/collector-$b"
        done
    fi
    for a in "${agents[@]}"; do
        cp "${agent_bin[$a]}" "$tmp/stripped-$a"
        strip "$tmp/stripped-$a"
        binary_size[$a]="$(stat -c %s "$tmp/stripped-$a")"
    done
fi

# --- sink --------------------------------------------------------------------------------
sink_args=(collectd=0)
for a in "${agents[@]}"; do sink_args+=("agent-$a=0"); done
python3 benches/line-sink.py --interval "$INTERVAL" --ports-file "$tmp/ports" \
    --out "$tmp/sink.json" "${sink_args[@]}" &
sink_pid=$!
pids+=("$sink_pid")
for _ in $(seq 100); do [[ -s "$tmp/ports" ]] && break; sleep 0.1; done
collectd_port="$(awk '$1 == "collectd" {print $2}' "$tmp/ports")"

# --- configs -----------------------------------------------------------------------------
mkdir -p "$tmp/collectd"
for a in "${agents[@]}"; do
    port="$(awk -v n="agent-$a" '$1 == n {print $2}' "$tmp/ports")"
    mkdir -p "$tmp/$a/collectors.d"
    cat > "$tmp/$a/collector.yml" <<YML
interval: 10s
sender: { destinations: ["127.0.0.1:$port"], spool_dir: "$tmp/$a/spool" }
YML
    cat > "$tmp/$a/collectors.d/host.yml" <<YML
type: host
YML
done
cat > "$tmp/collectd.conf" <<CONF
Hostname "bench"
FQDNLookup false
BaseDir "$tmp/collectd"
PIDFile "$tmp/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
Interval $INTERVAL
LoadPlugin cpu
LoadPlugin memory
LoadPlugin df
LoadPlugin disk
LoadPlugin interface
LoadPlugin load
LoadPlugin write_graphite
<Plugin write_graphite>
  <Node "sink">
    Host "127.0.0.1"
    Port "$collectd_port"
    Protocol "tcp"
    Prefix "collectd."
  </Node>
</Plugin>
CONF

# --- services (SERVICES=1) ------------------------------------------------------------------
if [[ "${SERVICES:-0}" == 1 ]]; then
    free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
    eval "$(tests/services/sql-up.sh)"
    nginx_port="$(free_port)"; redis_port="$(free_port)"; mc_port="$(free_port)"
    mkdir -p "$tmp/svc"
    cat > "$tmp/svc/nginx.conf" <<NGINX
pid $tmp/svc/nginx.pid;
error_log $tmp/svc/nginx.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $tmp/svc; proxy_temp_path $tmp/svc; fastcgi_temp_path $tmp/svc;
  uwsgi_temp_path $tmp/svc; scgi_temp_path $tmp/svc;
  server { listen 127.0.0.1:$nginx_port; location = /nginx_status { stub_status; } }
}
NGINX
    /usr/sbin/nginx -p "$tmp/svc" -c "$tmp/svc/nginx.conf" -g 'daemon off;' >/dev/null 2>&1 &
    pids+=("$!")
    /usr/bin/redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --dir "$tmp/svc" >/dev/null 2>&1 &
    pids+=("$!")
    /usr/bin/memcached -l 127.0.0.1 -p "$mc_port" -U 0 -u nobody >/dev/null 2>&1 &
    pids+=("$!")
    # postgres://user:password@host:port/db and mysql://… into their parts
    dsn_part() { python3 -c 'import sys, urllib.parse as u; d = u.urlparse(sys.argv[1]); print({"user": d.username, "password": d.password, "host": d.hostname, "port": d.port, "db": d.path.lstrip("/")}[sys.argv[2]])' "$1" "$2"; }
    pg() { dsn_part "$CARBIDE_TEST_PG_DSN" "$1"; }
    my() { dsn_part "$CARBIDE_TEST_MYSQL_DSN" "$1"; }
    for a in "${agents[@]}"; do
        d="$tmp/$a/collectors.d"
        printf 'type: nginx\nurl: http://127.0.0.1:%s/nginx_status\n' "$nginx_port" > "$d/nginx.yml"
        printf 'type: redis\naddress: 127.0.0.1:%s\n' "$redis_port" > "$d/redis.yml"
        printf 'type: memcached\naddress: 127.0.0.1:%s\n' "$mc_port" > "$d/memcached.yml"
        printf 'type: postgres\ndsn_env: CARBIDE_TEST_PG_DSN\n' > "$d/postgres.yml"
        printf 'type: mysql\ndsn_env: CARBIDE_TEST_MYSQL_DSN\n' > "$d/mysql.yml"
        cat > "$d/process.yml" <<YML
type: process
groups:
  nginx: {name: '^nginx\$'}
  redis: {name: '^redis-server\$'}
  memcached: {name: '^memcached\$'}
  postgres: {name: '^postgres\$'}
  mariadb: {name: '^mariadbd\$'}
YML
    done
    cat >> "$tmp/collectd.conf" <<CONF
LoadPlugin nginx
<Plugin nginx>
  URL "http://127.0.0.1:$nginx_port/nginx_status"
</Plugin>
LoadPlugin redis
<Plugin redis>
  <Node "bench">
    Host "127.0.0.1"
    Port "$redis_port"
  </Node>
</Plugin>
LoadPlugin memcached
<Plugin memcached>
  <Instance "bench">
    Host "127.0.0.1"
    Port "$mc_port"
  </Instance>
</Plugin>
LoadPlugin postgresql
<Plugin postgresql>
  <Database "$(pg db)">
    Host "$(pg host)"
    Port "$(pg port)"
    User "$(pg user)"
    Password "$(pg password)"
  </Database>
</Plugin>
LoadPlugin mysql
<Plugin mysql>
  <Database "$(my db)">
    Host "$(my host)"
    Port $(my port)
    User "$(my user)"
    Password "$(my password)"
    Database "$(my db)"
  </Database>
</Plugin>
LoadPlugin processes
<Plugin processes>
  ProcessMatch "nginx" "^nginx"
  Process "redis-server"
  Process "memcached"
  Process "postgres"
  Process "mariadbd"
</Plugin>
CONF
    sleep 1
fi

# --- run ---------------------------------------------------------------------------------
declare -A pid_of
if [[ "$RUN_COLLECTD" == 1 ]]; then
    "$COLLECTD" -f -C "$tmp/collectd.conf" >"$tmp/collectd.log" 2>&1 &
    pid_of[collectd]=$!
    pids+=("${pid_of[collectd]}")
fi
for a in "${agents[@]}"; do
    (cd "$tmp/$a" && exec "${agent_bin[$a]}" --config "$tmp/$a/collector.yml" \
        --collectors-dir "$tmp/$a/collectors.d") >"$tmp/agent-$a.log" 2>&1 &
    pid_of[agent-$a]=$!
    pids+=("${pid_of[agent-$a]}")
done

# CPU time in ns: the sum over the process's threads of the scheduler's run time
# (/proc/<pid>/task/*/schedstat, first field), far finer than utime+stime's 10 ms ticks. Both
# programs keep their threads for their whole life, so no thread's time is lost by exiting.
# (A process that is gone gives no number, so the report says it exited.)
ticks() {
    local t
    t="$(cat /proc/"$1"/task/*/schedstat 2>/dev/null)" && [[ -n "$t" ]] || return 1
    awk '{s += $1} END {printf "%d\n", s}' <<<"$t"
}
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
# Proportional set size: shared library pages divided among the processes mapping them.
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }

sleep "$WARMUP"
declare -A start_ticks end_ticks hwm pss
for name in "${!pid_of[@]}"; do
    start_ticks[$name]="$(ticks "${pid_of[$name]}" 2>/dev/null || echo dead)"
done
echo "== measuring for ${BENCH_SECONDS}s (interval ${INTERVAL}s)"
sleep "$BENCH_SECONDS"
for name in "${!pid_of[@]}"; do
    end_ticks[$name]="$(ticks "${pid_of[$name]}" 2>/dev/null || echo dead)"
    hwm[$name]="$(hwm_kib "${pid_of[$name]}" 2>/dev/null || echo dead)"
    pss[$name]="$(pss_kib "${pid_of[$name]}" 2>/dev/null || echo dead)"
    kill -TERM "${pid_of[$name]}" 2>/dev/null || true
done
for name in "${!pid_of[@]}"; do wait "${pid_of[$name]}" 2>/dev/null || true; done
sleep 0.5
kill -TERM "$sink_pid"
wait "$sink_pid" || true

# --- report ------------------------------------------------------------------------------
{
    for name in "${!pid_of[@]}"; do
        if [[ -n "${pid_of[$name]:-}" ]]; then
            echo "$name ${start_ticks[$name]} ${end_ticks[$name]} ${hwm[$name]} ${pss[$name]}"
        fi
    done
} | sort > "$tmp/measure.txt"
for a in "${agents[@]}"; do echo "$a ${binary_size[$a]}"; done > "$tmp/sizes.txt"

python3 - "$tmp" "$BENCH_SECONDS" "$INTERVAL" <<'PY'
import json, sys, os
tmp, seconds, interval = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
sink = json.load(open(os.path.join(tmp, "sink.json")))
cycles = seconds / interval
rows = {}
for line in open(os.path.join(tmp, "measure.txt")):
    name, start, end, hwm, pss = line.split()
    if "dead" in (start, end, hwm, pss):
        log = open(os.path.join(tmp, name + ".log"), errors="replace").read().strip().splitlines()
        print(f"{name}: NOT RUN — the process exited before the measuring window ended; last log lines:")
        for l in log[-5:]:
            print("    " + l)
        continue
    cpu_ms = (int(end) - int(start)) / 1e6 / cycles
    rows[name] = {
        "metrics": sink[name]["metrics_per_cycle"],
        "lines": sink[name]["lines"],
        "cpu_ms": cpu_ms,
        "rss_mib": int(hwm) / 1024.0,
        "pss_mib": int(pss) / 1024.0,
    }
print(f"\nwindow {seconds:.0f}s = {cycles:g} cycles of {interval:g}s; CPU from schedstat (ns)")
w = max(len(n) + len("/collectd") for n in rows)
print(f"{'':{w}} {'metrics/cycle':>14} {'lines total':>12} {'CPU ms/cycle':>13} {'max RSS MiB':>12} {'PSS MiB':>8}")
for name, r in rows.items():
    print(f"{name:{w}} {r['metrics']:>14g} {r['lines']:>12d} {r['cpu_ms']:>13.2f} {r['rss_mib']:>12.1f} {r['pss_mib']:>8.1f}")
ratio = lambda x, y: f"{x / y:.2f}" if y else "n/a"
per = lambda r: r["cpu_ms"] / r["metrics"] * 1000 if r["metrics"] else float("nan")
c = rows.get("collectd")
for name, a in rows.items():
    if name == "collectd" or c is None:
        continue
    print(f"{name + '/collectd':{w}} {ratio(a['metrics'], c['metrics']):>14} {'':>12} "
          f"{ratio(a['cpu_ms'], c['cpu_ms']):>13} {ratio(a['rss_mib'], c['rss_mib']):>12} {ratio(a['pss_mib'], c['pss_mib']):>8}")
for name, r in rows.items():
    print(f"CPU µs per metric, {name}: {per(r):.1f}")
for line in open(os.path.join(tmp, "sizes.txt")):
    name, size = line.split()
    print(f"stripped agent binary (collector, {name}): {int(size) / 1e6:.2f} MB ({size} bytes)")
PY
