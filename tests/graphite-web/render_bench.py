#!/usr/bin/env python3
"""Render benchmark: the two example targets of issue 3 over 100 series x 1 day of 10 s points.

    # graphite-web itself (gunicorn, N workers on 127.0.0.1), over freshly written whisper data:
    tests/graphite-web/venv-python render_bench.py --serve --workers 2
    # any render API (e.g. carbide's) over the same whisper files:
    tests/graphite-web/venv-python render_bench.py --url http://127.0.0.1:8080 --workers 2
    # only write the whisper data (and print where), for another server to load:
    tests/graphite-web/venv-python render_bench.py --data-only

Data: --data-dir (default ~/.cache/carbide-graphite-web-bench) holds STORAGE/whisper/... with
    servers.host{01..05}.haproxy.backend{1..4}.srv{1..5}.check_duration   (100 series)
    servers.db1.mongo.globalLock.{lockTime,totalTime}                     (counters)
one day of 10 s points (schema 10s:2d) ending at the data's NOW (recorded in bench-meta.json);
requests use absolute from/until = NOW-1d .. NOW, so a server reading the same files returns
the same points whatever the wall clock says (within the 2-day retention).

Prints requests/s and p50/p99 latency per target. Bounded: --requests per target (default 20)
and --max-seconds overall; only 127.0.0.1 is ever contacted.
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

TARGETS = [
    "scale(divideSeries(derivative(servers.db1.mongo.globalLock.lockTime),"
    "derivative(servers.db1.mongo.globalLock.totalTime)),100)",
    'aliasByNode(movingMedian(groupByNode(servers.*.haproxy.*.*.check_duration,3,"averageSeries"),10),0)',
]
DATA_VERSION = 1
DAY = 86400
STEP = 10


def write_data(storage):
    """Write the bench whisper files once; return the metadata (now, from, until)."""
    meta_path = os.path.join(storage, "bench-meta.json")
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get("version") == DATA_VERSION and time.time() - meta["now"] < DAY // 2:
            return meta
    except (OSError, ValueError, KeyError):
        pass
    import whisper

    wdir = os.path.join(storage, "whisper")
    shutil.rmtree(wdir, ignore_errors=True)
    now = int(time.time()) // 60 * 60
    ts = list(range(now - DAY + STEP, now + 1, STEP))
    rng = random.Random(7)

    def put(path, values):
        fs = os.path.join(wdir, *path.split(".")) + ".wsp"
        os.makedirs(os.path.dirname(fs), exist_ok=True)
        whisper.create(fs, [(STEP, 2 * DAY // STEP)], xFilesFactor=0.5, aggregationMethod="average")
        pts = [(t, v) for t, v in zip(ts, values) if v is not None]
        for i in range(0, len(pts), 5000):
            whisper.update_many(fs, pts[i:i + 5000])

    n = 0
    for h in range(1, 6):
        for b in range(1, 5):
            for s in range(1, 6):
                base = rng.uniform(2, 40)
                vals = [None if rng.random() < 0.01 else float(int(base + rng.expovariate(1 / 3.0)))
                        for _ in ts]
                put("servers.host%02d.haproxy.backend%d.srv%d.check_duration" % (h, b, s), vals)
                n += 1
    lt, tt, lock, total = 1e8, 9e9, [], []
    for i in range(len(ts)):
        if i == len(ts) // 2:
            lt, tt = 1000.0, 5e6  # a restart: counters reset
        tt += 1e7 + rng.randint(-2000, 2000)
        lt += rng.randint(0, 1_500_000)
        lock.append(lt)
        total.append(tt)
    put("servers.db1.mongo.globalLock.lockTime", lock)
    put("servers.db1.mongo.globalLock.totalTime", total)
    meta = {"version": DATA_VERSION, "now": now, "from": now - DAY, "until": now,
            "series": n + 2, "points_per_series": len(ts), "whisper_dir": wdir}
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=1)
    return meta


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, deadline):
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/render?target=constantLine(1)&format=json", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("server at %s not ready in time" % url)


def serve(storage, workers):
    venv_bin = os.path.dirname(sys.executable)
    gunicorn = os.path.join(venv_bin, "gunicorn")
    if not os.path.exists(gunicorn):
        raise SystemExit("gunicorn not in the venv: run tests/graphite-web/setup.sh")
    port = free_port()
    env = dict(os.environ, CARBIDE_GW_STORAGE=storage)
    proc = subprocess.Popen(
        [gunicorn, "--chdir", HERE, "--workers", str(workers), "--bind", "127.0.0.1:%d" % port,
         "--timeout", "120", "--log-level", "warning", "bench_wsgi:application"],
        env=env, start_new_session=True)
    return proc, "http://127.0.0.1:%d" % port


class Client:
    """One client thread's HTTP/1.1 connection, kept open between requests when the server
    allows it (carbide does; gunicorn's sync workers close after each response), so the
    client's own per-request cost stays small next to the server's on a shared machine."""

    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.host, self.port, self.conn = u.hostname, u.port or 80, None

    def get(self, path):
        """(status, body) of GET path; one retry on a connection the server had closed."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
            try:
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                body = r.read()
                if r.will_close:
                    self.close()
                return r.status, body
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


FORMAT = "json"  # --format: json, or png/svg to bench pictures


def run_target(url, target, meta, requests, concurrency, deadline):
    q = urllib.parse.urlencode({"target": target, "from": meta["from"], "until": meta["until"],
                                "format": FORMAT})
    path = urllib.parse.urlparse(url).path.rstrip("/") + "/render?" + q
    lat, errors, sizes = [], [], []
    lock = threading.Lock()
    todo = list(range(requests))

    def worker():
        client = Client(url)
        while True:
            with lock:
                if not todo or time.time() > deadline:
                    break
                todo.pop()
            t0 = time.perf_counter()
            try:
                status, body = client.get(path)
                ok = status == 200
            except (http.client.HTTPException, OSError) as e:
                ok, body = False, str(e).encode()
            dt = time.perf_counter() - t0
            with lock:
                if ok:
                    lat.append(dt)
                    sizes.append(len(body))
                else:
                    errors.append(body[:200])
        client.close()

    # one warm-up request (imports, file cache), not counted
    warm = Client(url)
    warm.get(path)
    warm.close()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return lat, errors, wall, sizes


def run_wrk(url, target, meta, concurrency, seconds):
    """The same request driven by wrk (a C load generator; Debian's `wrk`) for `seconds`:
    the Python client's own per-request cost (parsing a 0.3-0.9 MB response in CPython)
    caps what a fast server can show on a 2-core machine. Returns (rps, p50 ms, p99 ms,
    non-2xx count) or None when wrk is not installed."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    q = urllib.parse.urlencode({"target": target, "from": meta["from"], "until": meta["until"],
                                "format": FORMAT})
    full = url.rstrip("/") + "/render?" + q
    out = subprocess.run([wrk, "-t%d" % concurrency, "-c%d" % concurrency, "-d%ds" % seconds,
                          "--timeout", "30s", "--latency", full],
                         capture_output=True, text=True, check=True).stdout

    def ms(text):
        v, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
        return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, p50, p99, int(bad.group(1)) if bad else 0


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="base URL of a render API on 127.0.0.1 (…/render is appended)")
    ap.add_argument("--serve", action="store_true", help="start graphite-web (gunicorn) and bench it")
    ap.add_argument("--data-only", action="store_true", help="write the whisper data and exit")
    ap.add_argument("--data-dir", default=os.path.expanduser("~/.cache/carbide-graphite-web-bench"))
    ap.add_argument("--workers", type=int, default=2, help="server processes for --serve (default 2)")
    ap.add_argument("--concurrency", type=int, default=0, help="client threads (default = --workers)")
    ap.add_argument("--requests", type=int, default=20, help="requests per target (default 20)")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="overall time bound")
    ap.add_argument("--json", action="store_true", help="print one JSON line per target as well")
    ap.add_argument("--format", default="json", choices=["json", "png", "svg"],
                    help="render format to request (default json; png benches pictures)")
    ap.add_argument("--wrk-seconds", type=int, default=0,
                    help="also drive each target with wrk for this long (0: off)")
    ap.add_argument("--loadgen", default="python", choices=["python", "wrk", "both"],
                    help="who drives the requests: this script's CPython client (--requests), "
                         "wrk (--wrk-seconds), or both one after the other (default python)")
    args = ap.parse_args()
    if args.loadgen != "python" and args.wrk_seconds <= 0:
        ap.error("--loadgen %s needs --wrk-seconds > 0" % args.loadgen)
    if args.loadgen != "python" and shutil.which("wrk") is None:
        ap.error("--loadgen %s needs wrk on PATH (Debian: apt-get install wrk)" % args.loadgen)
    global FORMAT
    FORMAT = args.format

    os.makedirs(args.data_dir, exist_ok=True)
    meta = write_data(args.data_dir)
    print("data: %d series x %d points (10 s), from=%d until=%d, whisper dir %s"
          % (meta["series"], meta["points_per_series"], meta["from"], meta["until"], meta["whisper_dir"]))
    if args.data_only:
        return
    if bool(args.url) == bool(args.serve):
        ap.error("give exactly one of --url or --serve")
    url = args.url
    host = urllib.parse.urlparse(url).hostname if url else "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1"):
        ap.error("--url must point at this machine (127.0.0.1)")

    proc = None
    deadline = time.time() + args.max_seconds
    try:
        if args.serve:
            proc, url = serve(args.data_dir, args.workers)
            wait_ready(url, time.time() + 60)
            print("graphite-web 1.1.10 on %s (gunicorn, %d workers)" % (url, args.workers))
        conc = args.concurrency or args.workers
        for name, target in zip(["mongo-lock-ratio", "haproxy-groupByNode"], TARGETS):
            if args.loadgen == "wrk":
                # wrk does not look at bodies: one request checked here first (status, and a
                # JSON answer with series in it), so a fast error is never measured as speed.
                check_answer(url, target, meta)
            else:
                run_python(url, target, meta, args, conc, deadline, name)
            w = run_wrk(url, target, meta, conc, args.wrk_seconds) if args.loadgen != "python" else None
            if w is not None:
                print("%-20s wrk %ds       %7.2f req/s  p50 %8.1f ms  p99 %8.1f ms  (%d non-2xx)"
                      % (name, args.wrk_seconds, w[0], w[1], w[2], w[3]))
                if args.json:
                    print(json.dumps({"target": target, "loadgen": "wrk", "errors": w[3],
                                      "rps": w[0], "p50_ms": w[1], "p99_ms": w[2],
                                      "concurrency": conc}))
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def check_answer(url, target, meta):
    """One request of `target`, which must answer 200 (and, for JSON, a list of series)."""
    q = urllib.parse.urlencode({"target": target, "from": meta["from"], "until": meta["until"],
                                "format": FORMAT})
    client = Client(url)
    try:
        status, body = client.get(urllib.parse.urlparse(url).path.rstrip("/") + "/render?" + q)
    finally:
        client.close()
    if status != 200:
        raise SystemExit("%s answered %d for %s: %r" % (url, status, target, body[:200]))
    if FORMAT == "json" and not json.loads(body):
        raise SystemExit("%s answered no series for %s" % (url, target))


def run_python(url, target, meta, args, conc, deadline, name):
    """The CPython client's run of `target`: --requests requests over `conc` threads."""
    lat, errors, wall, sizes = run_target(url, target, meta, args.requests, conc, deadline)
    n = len(lat)
    rps = n / wall if wall > 0 else float("nan")
    print("%-20s %4d ok %3d err  %7.2f req/s  p50 %8.1f ms  p99 %8.1f ms  (%d bytes/response)"
          % (name, n, len(errors), rps, pct(lat, 50) * 1e3, pct(lat, 99) * 1e3,
             statistics.mean(sizes) if sizes else 0))
    if errors:
        print("  first error:", errors[0])
    if args.json:
        print(json.dumps({"target": target, "ok": n, "errors": len(errors), "rps": rps,
                          "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3,
                          "concurrency": conc}))


if __name__ == "__main__":
    main()
