#!/usr/bin/env bash
# Store scale: N series through a real `carbide serve` (release build), at each size given
# (default 250000 500000 1000000, to show the curve). Per size, on a fresh data directory:
#
#   1. start; send a day of 1-minute points for 10k series `day.sNNNN` (14.4 M points, schema
#      `60s:2d`) over the carbon port; stop (SIGTERM) and time the exit: the flush of those
#      points (the flush interval is 1 h, so the shutdown flush writes the whole cache);
#   2. start; send N - 10k series, 3 points each (10 s apart, carbon's usual
#      `10s:1d,1m:30d,10m:1y`), 10 a host: 8 untagged `servers.hostH.{cpu.{user,system,idle,
#      iowait},mem.{used,free},disk.{read,write}}` and 2 tagged `net.{rx,tx};host=hostH;dc=dcD`;
#      wait until the last is queryable; RSS; stop and time the exit (the flush of 3 (N - 10k)
#      points of N - 10k new series);
#   3. start again: open time = exec to the first answer of `find *`; then `find` latencies
#      (`*`, `servers.*`, `servers.host1*.cpu.*`, first call and median of 5), a tag query, and
#      sumSeries(day.*) over one day (10k series x 1440 points), its answer checked point by
#      point; RSS after open and after the queries (VmRSS, VmHWM); database size.
#
# The clock is frozen (--frozen-clock) so every run stores the same slots. A watchdog kills
# the server if its RSS passes RSS_LIMIT_MB (default 8192) and the run stops there.
#
# usage: [CARBIDE=path/to/carbide] [KEEP=/path/prefix] benches/store-scale.sh [SIZE...]
#        (KEEP: move each size's data directory to PREFIX.SIZE instead of deleting it, to
#        profile an open; delete it afterwards)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${CARBIDE:-}" ]; then
    cargo build --quiet --release --bin carbide --manifest-path "$ROOT/Cargo.toml"
    CARBIDE=$CARGO_TARGET_DIR/release/carbide
fi
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(250000 500000 1000000)
WORK=$(mktemp -d /tmp/store-scale.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cp "$ROOT/benches/store-scale.schemas.conf" "$WORK/schemas.conf"
cat >"$WORK/serve.yml" <<'YML'
flush_interval: 1h
self_metrics_interval: 0s
limits:
  max_points_per_request: 100000000
  max_find_results: 2000000
  render_timeout: 600s
YML

cat >"$WORK/scale.py" <<'PY'
import json, os, re, signal, socket, statistics, subprocess, sys, threading, time
import urllib.parse, urllib.request

carbide, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
limit_kb = int(os.environ.get("RSS_LIMIT_MB", "8192")) * 1024
NOW = 1780000020  # a multiple of 60
DAY_SERIES = int(os.environ.get("DAY_SERIES", "10000"))  # smaller only to try the script
data = f"{work}/data"
subprocess.run(["rm", "-rf", data], check=True)
res = {"series": n}


def status(pid):
    out = {}
    try:
        for line in open(f"/proc/{pid}/status"):
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


class Server:
    def __init__(self):
        self.t0 = time.monotonic()
        self.out = open(f"{work}/out", "w+")
        self.p = subprocess.Popen(
            [carbide, "serve", "--data-dir", data, "--schemas", f"{work}/schemas.conf",
             "--carbon-tcp", "127.0.0.1:0", "--carbon-udp", "off", "--http-listen", "127.0.0.1:0",
             "--frozen-clock", str(NOW), "--config", f"{work}/serve.yml"],
            stdout=self.out, stderr=open(f"{work}/err", "a"))
        self.killed = False
        threading.Thread(target=self.watch, daemon=True).start()
        for _ in range(6000):
            self.out.seek(0)
            text = self.out.read()
            if "http://" in text:
                break
            if self.p.poll() is not None:
                sys.exit(f"carbide exited: {open(work + '/err').read()[-2000:]}")
            time.sleep(0.01)
        self.carbon = re.search(r"carbon tcp ([0-9.:]+)", text).group(1)
        self.http = re.search(r"http (http://[0-9.:]+)", text).group(1)

    def watch(self):
        while self.p.poll() is None:
            if status(self.p.pid).get("VmRSS", 0) > limit_kb:
                self.killed = True
                self.p.kill()
                return
            time.sleep(0.2)

    def get(self, q):
        t = time.monotonic()
        with urllib.request.urlopen(self.http + q, timeout=900) as r:
            body = r.read()
        return body, time.monotonic() - t

    def send(self, chunks):
        host, port = self.carbon.rsplit(":", 1)
        t = time.monotonic()
        with socket.create_connection((host, int(port))) as s:
            for c in chunks:
                s.sendall(c)
            s.sendall(f"zz.sentinel 1 {NOW}\n".encode())
        # Queryable: the sentinel, sent last on the same connection, is found.
        while b"zz.sentinel" not in self.get("/metrics/expand?query=zz.sentinel")[0]:
            time.sleep(0.05)
        return time.monotonic() - t

    def rss(self):
        return status(self.p.pid)

    def stop(self):
        t = time.monotonic()
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait()
        if self.killed:
            sys.exit(f"RSS passed {limit_kb // 1024} MiB: server killed")
        if rc != 0:
            sys.exit(f"carbide exit {rc}: {open(work + '/err').read()[-2000:]}")
        return time.monotonic() - t


def day_chunks():
    # 10 blocks with the timestamp as a placeholder: value of day.sJ at minute t is J % 1000 + t % 10.
    blocks = ["".join(f"day.s{j:04d} {j % 1000 + k} TS\n" for j in range(DAY_SERIES)) for k in range(10)]
    for t in range(1440):
        yield blocks[t % 10].replace("TS", str(NOW - 86400 + 60 * (t + 1))).encode()


hosts = (n - DAY_SERIES) // 10
UNTAGGED = ["cpu.user", "cpu.system", "cpu.idle", "cpu.iowait", "mem.used", "mem.free", "disk.read", "disk.write"]


def host_chunks():
    for p in range(3):
        ts = NOW - 20 + 10 * p
        for h0 in range(0, hosts, 5000):
            lines = []
            for h in range(h0, min(h0 + 5000, hosts)):
                v = h % 997 + p
                lines.extend(f"servers.host{h}.{m} {v} {ts}\n" for m in UNTAGGED)
                lines.append(f"net.rx;host=host{h};dc=dc{h % 10} {v} {ts}\n")
                lines.append(f"net.tx;host=host{h};dc=dc{h % 10} {v} {ts}\n")
            yield "".join(lines).encode()


# 1. the day set, flushed at shutdown
s = Server()
res["day_send_s"] = s.send(day_chunks())
res["day_flush_s"] = s.stop()
res["day_points"] = DAY_SERIES * 1440
res["day_series"] = DAY_SERIES

# 2. the host series, flushed at shutdown
s = Server()
res["hosts_send_s"] = s.send(host_chunks())
res["host_points"] = hosts * 10 * 3
r = s.rss()
res["rss_cached_kb"] = r.get("VmRSS")
res["hosts_flush_s"] = s.stop()

db = sum(os.path.getsize(f"{data}/{f}") for f in os.listdir(data) if f.startswith("carbide.db"))
res["db_bytes"] = db

# 3. open, find, render
s = Server()
body, _ = s.get("/metrics/find?query=*")
res["open_s"] = time.monotonic() - s.t0
st = s.rss()
res["rss_open_kb"], res["rss_open_anon_kb"] = st.get("VmRSS"), st.get("RssAnon")


def timed(q, runs=5):
    body, first = s.get(q)
    times = [s.get(q)[1] for _ in range(runs)]
    return body, first, statistics.median(times)


for name, q in (("find *", "/metrics/find?query=*"),
                ("find servers.*", "/metrics/find?query=servers.*"),
                ("find servers.host1*.cpu.*", "/metrics/find?query=servers.host1*.cpu.*"),
                ("find servers.host1*.cpu.* completer", "/metrics/find?format=completer&query=servers.host1*.cpu.*"),
                ("tags findSeries dc=dc3 name=net.rx", "/tags/findSeries?expr=dc%3Ddc3&expr=name%3Dnet.rx")):
    body, first, med = timed(q)
    got = json.loads(body)
    got = got["metrics"] if isinstance(got, dict) else got
    res[name] = {"results": len(got), "bytes": len(body), "first_ms": first * 1e3, "median_ms": med * 1e3}

want_host1 = sum(1 for h in range(hosts) if str(h).startswith("1")) * 4
# treejson lists each node name once, as graphite-web's tree_json does; completer lists every path.
assert res["find servers.host1*.cpu.*"]["results"] == 4, res
assert res["find servers.host1*.cpu.* completer"]["results"] == want_host1, (res, want_host1)
assert res["find servers.*"]["results"] == hosts, res
assert res["tags findSeries dc=dc3 name=net.rx"]["results"] == sum(1 for h in range(hosts) if h % 10 == 3), res

q = "/render?" + urllib.parse.urlencode({"target": "sumSeries(day.*)", "from": NOW - 86400, "until": NOW, "format": "json"})
body, first, med = timed(q, 3)
got = json.loads(body)
pts = [(v, t) for v, t in got[0]["datapoints"] if v is not None]
base = sum(j % 1000 for j in range(DAY_SERIES))
for v, t in pts:
    k = ((t - (NOW - 86400)) // 60 - 1) % 10
    assert v == base + DAY_SERIES * k, (t, v)
assert len(pts) == 1440, len(pts)
res["render sumSeries(day.*) 1 day"] = {"points_in": DAY_SERIES * 1440, "first_ms": first * 1e3, "median_ms": med * 1e3}
st = s.rss()
res["rss_queried_kb"], res["hwm_kb"] = st.get("VmRSS"), st.get("VmHWM")
res["rss_queried_anon_kb"], res["rss_queried_file_kb"] = st.get("RssAnon"), st.get("RssFile")
s.stop()
print(json.dumps(res), flush=True)
PY

for n in "${SIZES[@]}"; do
    echo "== $n series" >&2
    python3 "$WORK/scale.py" "$CARBIDE" "$WORK" "$n" | tee -a "$WORK/results.jsonl"
    if [ -n "${KEEP:-}" ]; then mv "$WORK/data" "$KEEP.$n"; else rm -rf "$WORK/data"; fi
done

python3 - "$WORK/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def line(label, f):
    print(f"| {label:52} | " + " | ".join(f"{f(r):>12}" for r in rows) + " |")
print(f"| {'series':52} | " + " | ".join(f"{r['series']:>12,}" for r in rows) + " |")
print("|" + "-" * 54 + "|" + "|".join("-" * 14 for _ in rows) + "|")
line("RSS after open + queries, bytes/series", lambda r: f"{r['rss_queried_kb'] * 1024 / r['series']:.0f}")
line("  of which anonymous / file-backed, MiB", lambda r: f"{r['rss_queried_anon_kb'] / 1024:.0f}/{r['rss_queried_file_kb'] / 1024:.0f}")
line("RSS after open, bytes/series", lambda r: f"{r['rss_open_kb'] * 1024 / r['series']:.0f}")
line("RSS with the 3 points cached, MiB", lambda r: f"{r['rss_cached_kb'] / 1024:.0f}")
line("peak RSS (last start), MiB", lambda r: f"{r['hwm_kb'] / 1024:.0f}")
line("open: exec to first find *, s", lambda r: f"{r['open_s']:.2f}")
for k in ("find *", "find servers.*", "find servers.host1*.cpu.*", "find servers.host1*.cpu.* completer", "tags findSeries dc=dc3 name=net.rx"):
    line(f"{k} first/median ms", lambda r, k=k: f"{r[k]['first_ms']:.0f}/{r[k]['median_ms']:.0f}")
    line(f"  (results, answer KB)", lambda r, k=k: f"{r[k]['results']:,} {r[k]['bytes'] // 1000:,}")
k = "render sumSeries(day.*) 1 day"
line("sumSeries 10k x 1440 first/median ms", lambda r: f"{r[k]['first_ms']:.0f}/{r[k]['median_ms']:.0f}")
line("flush 3 pts/series: s per 1 M points", lambda r: f"{r['hosts_flush_s'] / r['host_points'] * 1e6:.2f}")
line("flush 3 pts/series: total s", lambda r: f"{r['hosts_flush_s']:.1f}")
line("flush day set (10k x 1440 points), s", lambda r: f"{r['day_flush_s']:.1f}")
line("send hosts (3 x series lines), s", lambda r: f"{r['hosts_send_s']:.1f}")
line("database, MB (bytes/series)", lambda r: f"{r['db_bytes'] / 1e6:.0f} ({r['db_bytes'] / r['series']:.0f})")
PY
