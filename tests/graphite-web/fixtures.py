"""The fixture metric trees written to whisper files (deterministic: seeded RNG, frozen clock).

Everything is relative to NOW, the frozen clock (aligned to 60 s, deliberately not to the hour,
so that summarize/hitcount alignment differences show).

Trees:
- 10 s tree, schema 10s:2d, data for the last 6 h:
    servers.<host>.{cpu.total.user,cpu.total.system,loadavg.01,memory.MemFree,network.eth0.rx_byte}
    servers.<web1|web2>.haproxy.<app|api>.<s1|s2>.check_duration
    servers.db1.mongo.globalLock.{lockTime,totalTime}   counters with resets
    special.{gaps,allnull,constant,negative,zeros,sparse,counter32}
- 60 s tree, schema 60s:10d, data for the last 9.5 d:   stats.{web.requests,web.errors,api.latency,queue.depth}
- multi-archive file, schema 10s:6h,60s:2d,600s:7d, 10 s data for the last 7 d: multi.rollup.requests
- Graphite 1.1 tagged series (10 s, 6 h; canonical names, written under _tagged/ as carbon
  does, and every fixture series is entered into graphite-web's tag database):
    cpu.load;dc=<east|west>;host=<web1|web2|db1|db2>[;role=<web|db>]   (db2 has no role)
    mem.free;dc=...;host=<web1|db1>;role=...
    quirk.m;a.b=x;a=y    (`;a.b=` sorts before `;a=`: the canonical order is by string)
"""

import math
import random

NOW = 1700000040  # 2023-11-14T22:14:00Z, a multiple of 60
STEP10_SPAN = 6 * 3600
STEP60_SPAN = 9 * 86400 + 12 * 3600
MULTI_SPAN = 7 * 86400

HOSTS = ["web1", "web2", "web3", "db1", "db2", "cache1"]
HAPROXY_HOSTS = ["web1", "web2"]
BACKENDS = ["app", "api"]
BSERVERS = ["s1", "s2"]

SCHEMA_10S = [(10, 2 * 86400 // 10)]
SCHEMA_60S = [(60, 10 * 86400 // 60)]
SCHEMA_MULTI = [(10, 6 * 3600 // 10), (60, 2 * 86400 // 60), (600, 7 * 86400 // 600)]


def _times(step, span):
    """Timestamps (NOW-span, NOW], step-aligned."""
    first = NOW - span + step
    return list(range(first, NOW + 1, step))


def _r(x, nd=2):
    return round(x, nd)


def build():
    """Return [(path, schema, [(ts, value)...])] — points with value None are not written."""
    rng = random.Random(20231114)
    out = []
    t10 = _times(10, STEP10_SPAN)

    def diurnal(t, period=86400.0, phase=0.0):
        return math.sin(2 * math.pi * ((t % period) / period) + phase)

    for hi, host in enumerate(HOSTS):
        base = 10 + 7 * hi
        gappy = host == "web3"  # this host drops ~4% of its points

        def keep():
            return not (gappy and rng.random() < 0.04)

        user, system, load, mem, rx = [], [], [], [], []
        level = 2_000_000_000 + 250_000_000 * hi
        counter = 10_000_000 * (hi + 1)
        reset_at = NOW - 1500 if host == "db2" else None  # interface reset 25 min ago
        for t in t10:
            u = max(0.0, min(100.0, base + 15 * diurnal(t, 3600, hi) + rng.gauss(0, 3)))
            s = max(0.0, min(100.0, u * 0.3 + rng.gauss(0, 1)))
            ld = max(0.0, (u / 25.0) + rng.gauss(0, 0.2))
            level += rng.randint(-4_000_000, 4_000_000)
            counter += rng.randint(50_000, 400_000)
            if reset_at is not None and t == reset_at:
                counter = rng.randint(0, 100_000)
            user.append((t, _r(u) if keep() else None))
            system.append((t, _r(s) if keep() else None))
            load.append((t, _r(ld) if keep() else None))
            mem.append((t, float(level) if keep() else None))
            rx.append((t, float(counter) if keep() else None))
        p = "servers.%s." % host
        out += [
            (p + "cpu.total.user", SCHEMA_10S, user),
            (p + "cpu.total.system", SCHEMA_10S, system),
            (p + "loadavg.01", SCHEMA_10S, load),
            (p + "memory.MemFree", SCHEMA_10S, mem),
            (p + "network.eth0.rx_byte", SCHEMA_10S, rx),
        ]

    for host in HAPROXY_HOSTS:
        for b in BACKENDS:
            for s in BSERVERS:
                base = rng.uniform(2, 40)
                pts = []
                for t in t10:
                    v = base + rng.expovariate(1 / 3.0)
                    if rng.random() < 0.01:
                        v += rng.uniform(100, 400)  # a slow check now and then
                    if rng.random() < 0.02:
                        pts.append((t, None))
                    else:
                        pts.append((t, float(int(v))))
                out.append(("servers.%s.haproxy.%s.%s.check_duration" % (host, b, s), SCHEMA_10S, pts))

    # mongo globalLock counters (microseconds) with two restarts (resets) inside the 6 h.
    lock, total = [], []
    lt, tt = 123_456_789.0, 9_876_543_210.0
    resets = {NOW - 4 * 3600, NOW - 1500}
    for t in t10:
        if t in resets:
            lt, tt = float(rng.randint(0, 50_000)), float(rng.randint(0, 9_000_000))
        else:
            tt += 10_000_000 + rng.randint(-2_000, 2_000)
            lt += rng.randint(0, 1_500_000) * (1 if rng.random() < 0.9 else 4)
        lock.append((t, lt))
        total.append((t, tt))
    out.append(("servers.db1.mongo.globalLock.lockTime", SCHEMA_10S, lock))
    out.append(("servers.db1.mongo.globalLock.totalTime", SCHEMA_10S, total))

    # Special shapes.
    gaps, neg, sparse, c32 = [], [], [], []
    c = 4_294_967_295 - 3_000_000.0
    for i, t in enumerate(t10):
        in_hole = NOW - 2400 < t <= NOW - 1800  # a 10 min hole
        gaps.append((t, None if in_hole or rng.random() < 0.15 else _r(rng.uniform(0, 50))))
        neg.append((t, _r(rng.gauss(-5, 10))))
        sparse.append((t, _r(rng.uniform(0, 10)) if rng.random() < 0.05 else None))
        c += rng.randint(1_000, 30_000)
        if c > 4_294_967_295:
            c -= 4_294_967_296  # 32-bit wrap
        c32.append((t, float(c)))
    out += [
        ("special.gaps", SCHEMA_10S, gaps),
        ("special.allnull", SCHEMA_10S, []),
        ("special.constant", SCHEMA_10S, [(t, 42.0) for t in t10]),
        ("special.negative", SCHEMA_10S, neg),
        ("special.zeros", SCHEMA_10S, [(t, 0.0) for t in t10]),
        ("special.sparse", SCHEMA_10S, sparse),
        ("special.counter32", SCHEMA_10S, c32),
    ]

    # 60 s tree, 9.5 days: enough bootstrap for holtWinters* (7 d) before a 1-day query.
    t60 = _times(60, STEP60_SPAN)
    req, err, lat, q = [], [], [], []
    for t in t60:
        weekly = 1.0 if ((t // 86400) + 4) % 7 < 5 else 0.6  # weekdays busier
        r = max(0.0, weekly * (500 + 350 * diurnal(t, 86400, -1.2)) + rng.gauss(0, 25))
        req.append((t, _r(r)))
        e = 0.0 if rng.random() < 0.7 else float(rng.randint(1, 12))
        err.append((t, e))
        lat.append((t, _r(80 + 0.05 * r + rng.expovariate(1 / 15.0))))
        q.append((t, None if rng.random() < 0.05 else float(max(0, int(rng.gauss(20, 15))))))
    out += [
        ("stats.web.requests", SCHEMA_60S, req),
        ("stats.web.errors", SCHEMA_60S, err),
        ("stats.api.latency", SCHEMA_60S, lat),
        ("stats.queue.depth", SCHEMA_60S, q),
    ]

    # One multi-archive file: queries over > 6 h read a coarser archive.
    tm = _times(10, MULTI_SPAN)
    mr = [(t, _r(100 + 40 * diurnal(t, 86400) + rng.gauss(0, 5))) for t in tm]
    out.append(("multi.rollup.requests", SCHEMA_MULTI, mr))
    out += tagged(t10)
    return out


TAGGED_HOSTS = [("web1", "east", "web"), ("web2", "east", "web"), ("db1", "west", "db"),
                ("db2", "west", None)]


def tagged(t10):
    """The tagged series (their own RNG: the trees above keep their data)."""
    rng = random.Random(11)
    out = []
    for i, (host, dc, role) in enumerate(TAGGED_HOSTS):
        tags = ";dc=%s;host=%s" % (dc, host) + (";role=%s" % role if role else "")
        load = [(t, None if (host == "db2" and rng.random() < 0.1) else _r(1 + i + rng.uniform(0, 2)))
                for t in t10]
        out.append(("cpu.load" + tags, SCHEMA_10S, load))
        if host in ("web1", "db1"):
            out.append(("mem.free" + tags, SCHEMA_10S,
                        [(t, float(1_000_000 * (i + 1) + rng.randint(0, 5000))) for t in t10]))
    out.append(("quirk.m;a.b=x;a=y", SCHEMA_10S, [(t, 7.0) for t in t10]))
    return out
