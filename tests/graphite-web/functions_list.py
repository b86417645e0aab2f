"""Writes graphite-web 1.1.10's `/functions` answer (every function: name, group, module,
params) to graphite/tests/conformance/functions.json, sorted by name, without descriptions
(long docstrings; carbide writes its own), plus `signature`: the defaults of the Python
function itself (every argument after requestContext, with its default if it has one: what graphite-web
applies when a call leaves an argument out; its `params`
declarations are only checked with ENFORCE_INPUT_VALIDATION, off by default). carbide's
docs/functions.md and its `/functions` description test read it.
Usage: tests/graphite-web/venv-python functions_list.py
"""

import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwenv  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "graphite", "tests",
                   "conformance", "functions.json")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        gwenv.setup(tmp, 1700000040)
        # What the /functions view serialises (functionInfo of every SeriesFunction).
        # graphite-web 1.1.10 calls inspect.getargspec, gone in Python 3.11 (its own
        # /functions view answers 500 there): give it the old shape.
        import collections
        import inspect
        argspec = collections.namedtuple("ArgSpec", "args varargs keywords defaults")
        inspect.getargspec = lambda f: argspec(*inspect.getfullargspec(f)[:4])
        inspect.formatargspec = lambda *a, **k: ""  # only feeds the docs' signature text
        from graphite.functions import SeriesFunctions, functionInfo
        funcs = {}
        for name, func in SeriesFunctions().items():
            info = functionInfo(name, func)
            info["params"] = [json.loads(json.dumps(p.toJSON(), default=str)) for p in
                              (info.get("params") or [])]
            spec = inspect.getfullargspec(func)
            args = spec.args[1:]  # requestContext first
            defaults = spec.defaults or ()
            first_default = len(args) - len(defaults)
            info["signature"] = [
                {"name": a, "default": defaults[k - first_default]} if k >= first_default
                else {"name": a} for k, a in enumerate(args)]
            funcs[name] = info
    def finite(v):
        # JSON has no Infinity: graphite-web's view prints it as `1e9999`; write a string.
        if isinstance(v, float) and v in (float("inf"), float("-inf")):
            return "inf" if v > 0 else "-inf"
        return v

    for info in funcs.values():
        for p in info["params"]:
            if "default" in p:
                p["default"] = finite(p["default"])
        for a in info["signature"]:
            if "default" in a:
                a["default"] = finite(a["default"])
    out = []
    for name in sorted(funcs):
        f = funcs[name]
        out.append({
            "name": name,
            "group": f.get("group"),
            "module": f.get("module"),
            "aggregator": f.get("aggregator", False),
            "params": f.get("params") or [],
            "signature": json.loads(json.dumps(f["signature"], default=str)),
        })
    with open(OUT, "w") as fh:
        fh.write("[\n" + ",\n".join(json.dumps(o, sort_keys=True) for o in out) + "\n]\n")
    print("%d functions -> %s" % (len(out), os.path.normpath(OUT)))


if __name__ == "__main__":
    main()
