#!/usr/bin/env python3
"""Record graphite-web 1.1.10's /render?format=json output for the conformance corpus.

Run with the venv's python (see README.md):

    tests/graphite-web/setup.sh && tests/graphite-web/venv-python tests/graphite-web/record.py

Writes (relative to the repo root, or --out DIR):
    graphite/tests/conformance/fixtures.json      raw whisper data of every fixture series
    graphite/tests/conformance/golden/<family>.json  {target, from, until, status, body, ...}

Everything is deterministic: the clock is frozen at fixtures.NOW for whisper and graphite-web,
the fixtures come from a seeded RNG, and requests use absolute epochs (or relative times
resolved against the frozen clock). Two runs give byte-identical files.
"""

import argparse
import json
import math
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import fixtures  # noqa: E402
import gwenv  # noqa: E402


def write_whisper(whisper_dir, series):
    import whisper

    for path, schema, points in series:
        fs_path = gwenv.whisper_path(whisper_dir, path)
        os.makedirs(os.path.dirname(fs_path), exist_ok=True)
        whisper.create(fs_path, schema, xFilesFactor=0.5, aggregationMethod="average")
        pts = [(t, v) for t, v in points if v is not None]
        # Oldest first, in chunks: update_many propagates to lower archives as carbon would.
        for i in range(0, len(pts), 1000):
            whisper.update_many(fs_path, pts[i:i + 1000], now=fixtures.NOW)


def dump_fixtures(whisper_dir, series):
    """Every archive of every file, exactly as whisper.fetch returns it over the archive's
    whole retention (the Rust replay serves requests from this with whisper's fetch rules)."""
    import whisper

    out = {
        "now": fixtures.NOW,
        "note": "whisper.fetch(path, now - retention, now, archiveToSelect=secondsPerPoint) per archive; "
                "values[i] is the value at start + i*step, null where nothing was written. "
                "Regenerate with tests/graphite-web/record.py.",
        "series": {},
    }
    for path, schema, _ in sorted(series, key=lambda s: s[0]):
        fs_path = gwenv.whisper_path(whisper_dir, path)
        info = whisper.info(fs_path)
        archives = []
        for a in info["archives"]:
            spp, ret = a["secondsPerPoint"], a["retention"]
            (start, end, step), values = whisper.fetch(
                fs_path, fixtures.NOW - ret, fixtures.NOW, now=fixtures.NOW, archiveToSelect="%ds" % spp)
            # Trim leading/trailing nulls to keep the file small; start/end stay exact.
            lo = 0
            while lo < len(values) and values[lo] is None:
                lo += 1
            hi = len(values)
            while hi > lo and values[hi - 1] is None:
                hi -= 1
            archives.append({
                "secondsPerPoint": spp,
                "points": a["points"],
                "retention": ret,
                "fetch_start": start,
                "fetch_end": end,
                "step": step,
                "data_start": start + lo * step,
                "values": values[lo:hi],
            })
        out["series"][path] = {
            "aggregationMethod": info["aggregationMethod"],
            "xFilesFactor": info["xFilesFactor"],
            "maxRetention": info["maxRetention"],
            "archives": archives,
        }
    return out


def _finite(v):
    """JSON-safe value: graphite-web may emit NaN / Infinity; keep them as strings."""
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
    if isinstance(v, list):
        return [_finite(x) for x in v]
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    return v


class Recorder:
    def __init__(self):
        import whisper
        from django.core.signals import got_request_exception
        from django.test import Client

        self.client = Client(raise_request_exception=False)
        self.last_exc = None
        self.fetches = []
        got_request_exception.connect(self._on_exc, weak=False)
        real_fetch = whisper.fetch

        def spy_fetch(path, fromTime, untilTime=None, now=None, archiveToSelect=None):
            self.fetches.append((int(fromTime), None if untilTime is None else int(untilTime)))
            return real_fetch(path, fromTime, untilTime, now, archiveToSelect)

        whisper.fetch = spy_fetch

    def _on_exc(self, sender, request=None, **kw):
        self.last_exc = sys.exc_info()[1]

    def render(self, target, frm, until, extra=None):
        self.last_exc = None
        self.fetches = []
        params = {"target": target, "from": str(frm), "until": str(until), "format": "json"}
        params.update(extra or {})
        resp = self.client.get("/render", params)
        entry = {"target": target, "from": str(frm), "until": str(until)}
        if extra:
            entry["params"] = extra
        entry["status"] = resp.status_code
        text = resp.content.decode("utf-8", "replace")
        if resp.status_code == 200:
            entry["body"] = _finite(json.loads(text))
            if "NaN]" in text or "Infinity]" in text:
                entry["raw_nonfinite"] = True  # graphite-web's replace() misses the last element
        else:
            if self.last_exc is not None:
                entry["error"] = "%s: %s" % (type(self.last_exc).__name__, self.last_exc)
            entry["body"] = text.strip()
        entry["fetches"] = sorted(set(self.fetches), key=lambda w: (w[0], w[1] or 0))
        lenient = partial_parse(target)
        if lenient is not None:
            entry["graphite_partial_parse"] = lenient
        return entry


# The tag API requests recorded for tests/http_conformance.rs (answers that depend only on the
# fixtures: the replay server also holds its own self-metrics, whose names are plain paths).
TAG_API = [
    "/tags", "/tags?filter=d", "/tags?filter=^h&limit=1", "/tags?filter=a%7Cr",
    "/tags/dc", "/tags/host?filter=web", "/tags/host?limit=2", "/tags/a.b", "/tags/nosuch",
    "/tags/findSeries?expr=name%3Dcpu.load&expr=dc%3Deast",
    "/tags/findSeries?expr=dc!%3Deast&expr=name%3D~cpu",
    "/tags/findSeries?expr%5B%5D=host%3D~db",
    "/tags/findSeries?expr=role%3D&expr=name%3Dcpu.load",
    "/tags/findSeries", "/tags/findSeries?expr=role!%3Dweb",
    "/tags/autoComplete/tags", "/tags/autoComplete/tags?tagPrefix=r",
    "/tags/autoComplete/tags?expr=name%3Dcpu.load", "/tags/autoComplete/tags?expr=a%3Dy&limit=1",
    "/tags/autoComplete/values?tag=host", "/tags/autoComplete/values?tag=host&valuePrefix=web",
    "/tags/autoComplete/values?tag=role&expr=name%3Dcpu.load",
    "/tags/autoComplete/values?tag=dc&expr=host%3D~web&limit=1",
    "/tags/autoComplete/values",
]


def record_tag_api(client, out_dir):
    """graphite-web's answers to TAG_API, as text (ids included: the replay masks them)."""
    entries = []
    for path in TAG_API:
        resp = client.get(path)
        entries.append({"path": path, "status": resp.status_code,
                        "body": resp.content.decode("utf-8")})
    with open(os.path.join(out_dir, "tags_api.json"), "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(e) for e in entries) + "\n]\n")
    print("tag API        %4d requests" % len(entries))


def partial_parse(target):
    """graphite-web parses with pyparsing without parseAll: trailing garbage after a valid
    prefix is silently ignored. Return the ignored suffix when that happens (carbide reports a
    parse error there instead), else None."""
    from graphite.render.grammar_unsafe import grammar

    if not target.strip():
        return None
    try:
        grammar.parseString(target, parseAll=True)
        return None
    except Exception:
        pass
    try:
        _, start, end = next(grammar.scanString(target, maxMatches=1))
    except Exception:
        return None
    if start != 0:
        return None
    rest = target[end:]
    return rest if rest.strip() else None


def dump_golden(path, entries):
    """One entry per block, one series per line: small diffs when a value changes."""
    lines = ["["]
    for i, e in enumerate(entries):
        head = {k: v for k, v in e.items() if k not in ("body",)}
        body = e["body"]
        s = json.dumps(head, sort_keys=False, separators=(", ", ": "))[:-1]
        if isinstance(body, list):
            if body:
                inner = ",\n".join("  " + json.dumps(b, separators=(",", ":")) for b in body)
                s += ', "body": [\n' + inner + "\n]}"
            else:
                s += ', "body": []}'
        else:
            s += ', "body": ' + json.dumps(body) + "}"
        lines.append(s + ("," if i + 1 < len(entries) else ""))
    lines.append("]")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def report_coverage(corpus):
    """Which graphite-web functions the corpus calls, and which it calls successfully."""
    import re

    from graphite.functions import SeriesFunctions

    called, ok = set(), set()
    for family in os.listdir(os.path.join(REPO_OUT, "golden")):
        with open(os.path.join(REPO_OUT, "golden", family)) as f:
            for e in json.load(f):
                names = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\(", e["target"]))
                called |= names
                if e["status"] == 200 and e["body"]:
                    ok |= names
    known = set(SeriesFunctions())
    print("graphite-web functions: %d, called by the corpus: %d, with a non-empty 200: %d"
          % (len(known), len(known & called), len(known & ok)))
    print("not called:", " ".join(sorted(known - called)) or "-")
    print("called but never a non-empty 200:", " ".join(sorted((known & called) - ok)) or "-")
    missing = [f for f in corpus.ISSUE_FUNCTIONS if f not in called]
    print("issue-3 functions not called:", " ".join(missing) or "-")
    print("issue-3 functions unknown to graphite-web 1.1.10:",
          " ".join(f for f in corpus.ISSUE_FUNCTIONS if f not in known) or "-")


def self_check():
    tmp = tempfile.mkdtemp(prefix="carbide-gw-check-")
    try:
        wd = gwenv.setup(tmp, fixtures.NOW)
        write_whisper(wd, [("a.b.c", fixtures.SCHEMA_10S, [(fixtures.NOW - 20, 1.0), (fixtures.NOW - 10, 2.0)])])
        rec = Recorder()
        e = rec.render("sumSeries(a.b.*)", fixtures.NOW - 60, fixtures.NOW)
        assert e["status"] == 200, e
        assert e["body"][0]["target"] == "sumSeries(a.b.*)", e
        vals = [p[0] for p in e["body"][0]["datapoints"]]
        assert vals[-3:] == [1.0, 2.0, None], vals
        png = rec.client.get("/render", {"target": "a.b.c", "from": str(fixtures.NOW - 60),
                                         "until": str(fixtures.NOW)})
        assert png.status_code == 200 and png.content[:4] == b"\x89PNG", png.status_code
        print("graphite-web self-check ok: json and png render")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "graphite", "tests", "conformance"))
    ap.add_argument("--self-check", action="store_true", help="import + render one target, then exit")
    ap.add_argument("--only", help="record only this family")
    args = ap.parse_args()
    if args.self_check:
        self_check()
        return

    tmp = tempfile.mkdtemp(prefix="carbide-gw-record-")
    try:
        wd = gwenv.setup(tmp, fixtures.NOW, tagdb=True)
        series = fixtures.build()
        write_whisper(wd, series)
        gwenv.register_tags(path for path, _, _ in series)
        import corpus

        os.makedirs(os.path.join(args.out, "golden"), exist_ok=True)
        global REPO_OUT
        REPO_OUT = args.out
        if not args.only:
            fx = dump_fixtures(wd, series)
            with open(os.path.join(args.out, "fixtures.json"), "w") as f:
                # one series per line-ish: compact but diffable
                f.write("{\n")
                f.write('"now": %d,\n"note": %s,\n"series": {\n' % (fx["now"], json.dumps(fx["note"])))
                items = list(fx["series"].items())
                for i, (k, v) in enumerate(items):
                    f.write("%s: %s%s\n" % (json.dumps(k), json.dumps(v, separators=(",", ":")),
                                            "," if i + 1 < len(items) else ""))
                f.write("}\n}\n")
        rec = Recorder()
        if not args.only:
            record_tag_api(rec.client, args.out)
        totals = {"ok": 0, "error": 0, "empty": 0}
        for family, cases in corpus.families():
            if args.only and family != args.only:
                continue
            entries = []
            for case in cases:
                e = rec.render(case.target, case.frm, case.until, case.extra)
                if case.multi_archive:
                    e["multi_archive"] = True
                entries.append(e)
                if e["status"] != 200:
                    totals["error"] += 1
                elif not e["body"]:
                    totals["empty"] += 1
                    totals["ok"] += 1
                else:
                    totals["ok"] += 1
            dump_golden(os.path.join(args.out, "golden", family + ".json"), entries)
            print("%-14s %4d targets, %3d non-200" % (family, len(entries),
                                                     sum(1 for e in entries if e["status"] != 200)))
        print("total: %d ok (%d empty), %d error" % (totals["ok"], totals["empty"], totals["error"]))
        if not args.only:
            report_coverage(corpus)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
