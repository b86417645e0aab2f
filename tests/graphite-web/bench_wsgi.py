"""WSGI entry point for render_bench.py --serve: graphite-web over CARBIDE_GW_STORAGE.

    CARBIDE_GW_STORAGE=/dir gunicorn --chdir tests/graphite-web bench_wsgi:application
"""

import os

import gwenv

gwenv.setup(os.environ["CARBIDE_GW_STORAGE"])  # real clock: the bench data is recent

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
