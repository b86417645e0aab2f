#!/usr/bin/env python3
"""Line-counting Graphite plaintext sink for benches/collectd-side-by-side.sh.

Listens on 127.0.0.1, one port per sender (`name=port` arguments, port 0 = any free port),
counts the lines each sender delivers, and groups them into collection cycles by their
timestamp (a line more than half an interval newer than the current cycle's first timestamp
starts a new cycle). Writes `<name> <port>` lines to --ports-file once listening, and on
SIGTERM/SIGINT a JSON summary to --out.

Usage: line-sink.py --interval 10 --ports-file P --out S agent=0 collectd=0
"""

import argparse
import json
import selectors
import signal
import socket
import statistics
import sys


class Sender:
    def __init__(self, name):
        self.name = name
        self.lines = 0
        self.bad = 0
        self.connections = 0
        self.cycles = []  # [first_ts, count]

    def line(self, raw, half_interval):
        self.lines += 1
        parts = raw.split()
        try:
            ts = float(parts[2])
        except (IndexError, ValueError):
            self.bad += 1
            return
        if not self.cycles or ts > self.cycles[-1][0] + half_interval:
            self.cycles.append([ts, 0])
        self.cycles[-1][1] += 1

    def summary(self):
        sizes = [c[1] for c in self.cycles]
        return {
            "lines": self.lines,
            "bad_lines": self.bad,
            "connections": self.connections,
            "cycles": len(sizes),
            "cycle_sizes": sizes,
            # The first and last cycles may be partial (first rate samples, buffered tail):
            # the median of all cycles is the steady-state number.
            "metrics_per_cycle": statistics.median(sizes) if sizes else 0,
        }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--ports-file", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("senders", nargs="+", help="name=port")
    args = ap.parse_args()

    sel = selectors.DefaultSelector()
    senders = {}
    ports = []
    for spec in args.senders:
        name, _, port = spec.partition("=")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", int(port or 0)))
        sock.listen(16)
        sock.setblocking(False)
        senders[name] = Sender(name)
        sel.register(sock, selectors.EVENT_READ, ("listen", name))
        ports.append("%s %d" % (name, sock.getsockname()[1]))
    with open(args.ports_file, "w") as f:
        f.write("\n".join(ports) + "\n")

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    half = args.interval / 2
    pending = {}
    while not stop:
        for key, _ in sel.select(timeout=0.5):
            kind, name = key.data
            if kind == "listen":
                conn, _ = key.fileobj.accept()
                conn.setblocking(False)
                senders[name].connections += 1
                pending[conn] = b""
                sel.register(conn, selectors.EVENT_READ, ("conn", name))
                continue
            conn = key.fileobj
            try:
                data = conn.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(conn)
                conn.close()
                pending.pop(conn, None)
                continue
            buf = pending[conn] + data
            *lines, rest = buf.split(b"\n")
            pending[conn] = rest
            for raw in lines:
                if raw.strip():
                    senders[name].line(raw.decode("utf-8", "replace"), half)

    with open(args.out, "w") as f:
        json.dump({n: s.summary() for n, s in senders.items()}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
