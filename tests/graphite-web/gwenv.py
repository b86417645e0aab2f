"""Run graphite-web 1.1.10 in-process, deterministically.

Shared by record.py and render_bench.py. `setup(storage_dir, now)` must be called before
anything imports graphite or django: it writes a throw-away settings module, points
graphite-web at `storage_dir` (whisper files under `storage_dir/whisper`), freezes the clock
at `now` (epoch seconds) for whisper and graphite-web alike, and runs django.setup().
"""

import datetime as _dt
import os
import sys
import time as _time

_SETTINGS = """
SECRET_KEY = 'carbide-conformance-not-secret'
TIME_ZONE = 'UTC'
STORAGE_DIR = {storage!r}
WHISPER_DIR = {whisper!r}
LOG_DIR = {log!r}
INDEX_FILE = {storage!r} + '/index'
CARBONLINK_HOSTS = []
CLUSTER_SERVERS = []
USE_WORKER_POOL = False
LOG_RENDERING_PERFORMANCE = False
LOG_CACHE_PERFORMANCE = False
LOG_INFO_PERFORMANCE = False
DEFAULT_CACHE_DURATION = 0
CACHES = {{'default': {{'BACKEND': 'django.core.cache.backends.dummy.DummyCache'}}}}
TAGDB = {tagdb!r}
DEBUG = False
"""


def frozen_datetime(now):
    """A datetime subclass whose now()/utcnow()/today() return the frozen clock."""

    class FrozenDatetime(_dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return _dt.datetime.fromtimestamp(now, tz if tz is not None else _dt.timezone.utc).replace(
                tzinfo=None) if tz is None else _dt.datetime.fromtimestamp(now, tz)

        @classmethod
        def utcnow(cls):
            return _dt.datetime.fromtimestamp(now, _dt.timezone.utc).replace(tzinfo=None)

        @classmethod
        def today(cls):
            return cls.utcnow()

    return FrozenDatetime


def freeze_clock(now):
    """Make time.time() return `now` everywhere (whisper, graphite-web), and datetime.now in
    the graphite-web modules that read the wall clock for 'now'."""
    _time.time = lambda: float(now)
    fd = frozen_datetime(now)
    for mod in ("graphite.render.views", "graphite.render.attime", "graphite.render.functions"):
        m = sys.modules.get(mod)
        if m is not None and getattr(m, "datetime", None) is _dt.datetime:
            m.datetime = fd


def setup(storage_dir, now=None, tagdb=False, extra=""):
    """`tagdb=True` turns on graphite-web's default tag database (LocalDatabaseTagDB over a
    sqlite file in storage_dir, migrated here); series must then be registered with
    `register_tags` (carbon does it for every series it creates). `extra` is appended to the
    settings (e.g. `CLUSTER_SERVERS`)."""
    whisper_dir = os.path.join(storage_dir, "whisper")
    log_dir = os.path.join(storage_dir, "log")
    conf_dir = os.path.join(storage_dir, "conf")
    for d in (whisper_dir, log_dir, conf_dir):
        os.makedirs(d, exist_ok=True)
    text = _SETTINGS.format(storage=storage_dir, whisper=whisper_dir + "/", log=log_dir,
                            tagdb="graphite.tags.localdatabase.LocalDatabaseTagDB" if tagdb else "")
    text += extra
    target = os.path.join(conf_dir, "carbide_gw_settings.py")
    try:
        with open(target) as f:
            current = f.read()
    except OSError:
        current = None
    if current != text:  # atomic: several server workers may start at once
        tmp = "%s.%d" % (target, os.getpid())
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, target)
    sys.path.insert(0, conf_dir)
    os.environ["GRAPHITE_SETTINGS_MODULE"] = "carbide_gw_settings"
    os.environ["DJANGO_SETTINGS_MODULE"] = "graphite.settings"
    os.environ["TZ"] = "UTC"
    _time.tzset()
    if now is not None:
        _time.time = lambda: float(now)
    import django

    django.setup()
    if tagdb:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
    # Import the modules that read the clock, then freeze them.
    import graphite.render.views  # noqa: F401
    import graphite.render.attime  # noqa: F401
    import graphite.render.functions  # noqa: F401

    if now is not None:
        freeze_clock(now)
    return whisper_dir


def whisper_path(whisper_dir, path):
    """Where carbon writes `path`: tagged names (with `;`) under `_tagged/` by the sha256 of
    the name (carbon's default TAG_HASH_FILENAMES), others as dotted directories."""
    from graphite.tags.utils import TaggedSeries

    return os.path.join(whisper_dir, TaggedSeries.encode(path, os.sep, hash_only=True) + ".wsp")


def register_tags(paths):
    """Enter every series into graphite-web's tag database, as carbon's writer does on
    create (`tagQueue.add(metric)` for tagged and untagged series alike)."""
    from graphite.storage import STORE

    for p in paths:
        STORE.tagdb.tag_series(p)
