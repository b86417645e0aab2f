"""Real graphite-web 1.1.10 over HTTP for carbide's side-by-side tests.

usage: tests/graphite-web/venv-python live_server.py STORAGE_DIR [PATH ...]
Creates a whisper file (one point, now) for each metric PATH where carbon would write it
(tagged names under _tagged/, entered in the tag database), migrates graphite-web's SQLite
database (events, tags), and serves graphite-web on 127.0.0.1 at a port the OS picks, with the
real clock. Prints "READY <port>" once listening; stops when stdin closes.
"""
import os
import socketserver
import sys
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gwenv  # noqa: E402

whisper_dir = gwenv.setup(os.path.abspath(sys.argv[1]), tagdb=True)

import whisper  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

paths = sys.argv[2:]
now = int(time.time())
for p in paths:
    f = gwenv.whisper_path(whisper_dir, p)
    os.makedirs(os.path.dirname(f), exist_ok=True)
    if not os.path.exists(f):
        whisper.create(f, [(60, 1440)])
        whisper.update(f, 1.0, now)
gwenv.register_tags(paths)


class Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


httpd = make_server("127.0.0.1", 0, get_wsgi_application(), server_class=Server,
                    handler_class=QuietHandler)
threading.Thread(target=httpd.serve_forever, daemon=True).start()
print("READY %d" % httpd.server_address[1], flush=True)
sys.stdin.read()
httpd.shutdown()
