#!/usr/bin/env python3
"""graphite-web's and carbide's pictures of the same targets, side by side, for a person to
look at (not a byte comparison: fonts, anti-aliasing and rounding differ).

    tests/graphite-web/venv-python side_by_side.py --carbide target/release/carbide --out /tmp/pics
    # then open /tmp/pics/index.html

The conformance fixtures (fixtures.py) are written as whisper files for graphite-web 1.1.10
(in-process, clock frozen at fixtures.NOW) and sent as carbon lines to a `carbide serve` with
the same schemas and its clock frozen at the same NOW; each target below is rendered as a PNG
by both with the same parameters. Bounded: ~20 requests each side; only 127.0.0.1.
"""

import argparse
import html
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fixtures  # noqa: E402
import gwenv  # noqa: E402
from fixtures import NOW  # noqa: E402

H1 = (NOW - 3600, NOW)
M20 = (NOW - 1200, NOW)
S6H = (NOW - 6 * 3600, NOW)

# (target, range, extra graph parameters)
CASES = [
    ("servers.web1.cpu.total.user", M20, {}),
    ("servers.*.loadavg.01", H1, {}),
    ("servers.web3.cpu.total.user", H1, {"title": "gaps (web3 drops points)"}),
    ("servers.*.cpu.total.user", H1, {"areaMode": "stacked"}),
    ("servers.web*.loadavg.01", H1, {"areaMode": "all", "areaAlpha": "0.4"}),
    ("stats.web.requests", S6H, {"lineMode": "staircase"}),
    ("stats.*.*", S6H, {"hideLegend": "false", "vtitle": "per minute"}),
    ("servers.*.network.eth0.rx_byte", H1, {"yUnitSystem": "binary"}),
    ("scale(servers.web1.network.eth0.rx_byte,1000)", H1, {}),
    ("aliasByNode(servers.*.loadavg.01,1)", H1, {"width": "600", "height": "300"}),
    ("color(servers.web1.loadavg.01,'red')", H1, {"bgcolor": "black", "fgcolor": "white"}),
    ("lineWidth(dashed(servers.web2.loadavg.01),3)", H1, {}),
    ("secondYAxis(stats.web.errors)", S6H, {"target2": "stats.web.requests"}),
    ("threshold(30,'limit','red')", H1, {"target2": "servers.web1.cpu.total.user"}),
    ("drawAsInfinite(removeBelowValue(servers.db2.loadavg.01,40))", H1,
     {"target2": "servers.db2.loadavg.01"}),
    ("areaBetween(group(servers.web1.loadavg.01,servers.web2.loadavg.01))", H1,
     {"areaMode": "stacked"}),
    ("legendValue(servers.web*.loadavg.01,'avg','max')", H1, {}),
    ("cactiStyle(servers.web*.loadavg.01)", H1, {"width": "500"}),
    ("stacked(servers.web*.cpu.total.user)", H1, {"target2": "servers.db1.cpu.total.user"}),
    ("servers.*.loadavg.01", H1, {"graphOnly": "true"}),
    ("stats.api.latency", S6H, {"logBase": "10", "yMin": "1"}),
    ("servers.web1.cpu.total.user", H1, {"yMin": "0", "yMax": "100", "hideGrid": "true",
                                          "title": "hideGrid, yMin/yMax"}),
]

SCHEMAS = """[multi]
pattern = ^multi\\.
retentions = 10s:6h,60s:2d,600s:7d

[stats]
pattern = ^stats\\.
retentions = 60s:10d

[default]
pattern = .*
retentions = 10s:2d
"""


def params_of(target, rng, extra):
    q = [("target", target), ("from", str(rng[0])), ("until", str(rng[1])), ("format", "png")]
    for k, v in extra.items():
        if k == "target2":
            q.append(("target", v))
        else:
            q.append((k, v))
    return q


def start_carbide(binary, work, lines):
    with open(os.path.join(work, "schemas.conf"), "w") as f:
        f.write(SCHEMAS)
    out = open(os.path.join(work, "serve.out"), "w+")
    proc = subprocess.Popen(
        [binary, "serve", "--data-dir", os.path.join(work, "data"), "--schemas",
         os.path.join(work, "schemas.conf"), "--carbon-tcp", "127.0.0.1:0", "--carbon-udp", "off",
         "--http-listen", "127.0.0.1:0", "--frozen-clock", str(NOW)],
        stdout=out, stderr=open(os.path.join(work, "serve.log"), "w"))
    for _ in range(200):
        out.seek(0)
        words = out.read().split()
        if len(words) > 7 and words[7].startswith("http://"):
            break
        time.sleep(0.1)
    else:
        proc.kill()
        raise SystemExit("carbide serve did not start; see %s/serve.log" % work)
    carbon, url = words[3], words[7].rstrip(",")
    host, port = carbon.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.sendall(lines.encode())
    s.close()
    for _ in range(600):
        with urllib.request.urlopen(url + "/metrics/expand?query=zz.sentinel", timeout=5) as r:
            if b"sentinel" in r.read():
                return proc, url
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("carbide never saw the fixtures' sentinel")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--carbide", required=True, help="the carbide binary")
    ap.add_argument("--out", required=True, help="directory for index.html and the PNGs")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="side-by-side.")
    whisper_dir = gwenv.setup(os.path.join(work, "gw"), now=NOW)
    import record  # noqa: E402  (after gwenv.setup: it imports django modules)
    from django.test import Client

    series = fixtures.build()
    record.write_whisper(whisper_dir, series)
    lines = "".join("%s %r %d\n" % (p, v, t) for p, _, pts in series for t, v in pts if v is not None)
    lines += "zz.sentinel 1 %d\n" % NOW
    proc, url = start_carbide(os.path.abspath(args.carbide), work, lines)
    client = Client(raise_request_exception=False)
    rows = []
    try:
        for i, (target, rng, extra) in enumerate(CASES, 1):
            q = params_of(target, rng, extra)
            t0 = time.monotonic()
            g = client.get("/render", dict_multi(q))
            gms = (time.monotonic() - t0) * 1000
            gname = "gw-%02d.png" % i
            with open(os.path.join(args.out, gname), "wb") as f:
                f.write(g.content)
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(url + "/render?" + urllib.parse.urlencode(q), timeout=30) as r:
                    cbody, cstatus = r.read(), r.status
            except urllib.error.HTTPError as e:
                cbody, cstatus = e.read(), e.code
            cms = (time.monotonic() - t0) * 1000
            cname = "carbide-%02d.png" % i
            with open(os.path.join(args.out, cname), "wb") as f:
                f.write(cbody)
            rows.append((i, target, extra, g.status_code, gname, gms, cstatus, cname, cms))
            print("%2d %-70s graphite-web %d (%.0f ms)  carbide %d (%.0f ms)" % (
                i, target[:70], g.status_code, gms, cstatus, cms))
    finally:
        proc.terminate()
        proc.wait()
    with open(os.path.join(args.out, "index.html"), "w") as f:
        f.write("<!doctype html><meta charset=utf-8><title>graphite-web vs carbide</title>\n"
                "<style>body{font-family:sans-serif} td{vertical-align:top;padding:6px}"
                " code{font-size:12px}</style>\n<h1>graphite-web 1.1.10 (left) and carbide (right)</h1>\n"
                "<p>Same fixtures, same parameters, clocks frozen at %d. Generated by "
                "tests/graphite-web/side_by_side.py.</p>\n<table>\n" % NOW)
        for i, target, extra, gs, gname, gms, cs, cname, cms in rows:
            f.write("<tr><td colspan=2><b>%d</b> <code>%s</code> %s</td></tr>\n" % (
                i, html.escape(target), html.escape(" ".join("%s=%s" % kv for kv in extra.items()))))
            f.write("<tr><td><img src=\"%s\"><br>graphite-web: %d, %.0f ms</td>"
                    "<td><img src=\"%s\"><br>carbide: %d, %.0f ms</td></tr>\n" % (gname, gs, gms, cname, cs, cms))
        f.write("</table>\n")
    print("wrote %s" % os.path.join(args.out, "index.html"))


def dict_multi(q):
    """Django's test client takes a dict; a repeated key is a list."""
    d = {}
    for k, v in q:
        d.setdefault(k, []).append(v)
    return {k: v if len(v) > 1 else v[0] for k, v in d.items()}


if __name__ == "__main__":
    main()
