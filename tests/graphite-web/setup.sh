#!/usr/bin/env bash
# Create (idempotently) a virtualenv holding graphite-web 1.1.10 and whisper 1.1.10 from PyPI,
# for recording conformance goldens and for render benchmarks. Lives OUTSIDE the repo by default.
#
#   tests/graphite-web/setup.sh            # create / complete the venv, then self-check
#   GRAPHITE_WEB_VENV=/some/dir setup.sh   # choose where it lives
#
# Needs python3 (3.11 known to work) with the venv module, and libcairo2 (Debian) for cairocffi.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${GRAPHITE_WEB_VENV:-$HOME/.cache/carbide-graphite-web-venv}"
python="${PYTHON:-python3}"

# Versions known to work together on Python 3.11. graphite-web 1.1.10 pins nothing itself.
pins=(
  "graphite-web==1.1.10"
  "whisper==1.1.10"
  "Django==3.0.14"
  "django-tagging==0.4.3"
  "pyparsing==3.0.9"
  "six"
  "pytz"
  "cairocffi"
  "scandir"
  "urllib3"
  "gunicorn"  # only for render_bench.py --serve
)

stamp="$venv/.carbide-setup-ok"
want="$(printf '%s\n' "${pins[@]}" | sha256sum | cut -c1-16)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "graphite-web venv up to date: $venv"
else
  if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating venv $venv"
    "$python" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install -q --upgrade pip wheel 'setuptools<70'
  # GRAPHITE_NO_PREFIX=1: otherwise graphite-web's setup.py installs under /opt/graphite.
  GRAPHITE_NO_PREFIX=1 "$venv/bin/python" -m pip install -q --no-build-isolation "${pins[@]}"
fi

# Self-check: imports, and one real render through Django's test client.
"$venv/bin/python" "$here/record.py" --self-check
echo "$want" >"$stamp"
echo "ok: $venv"
