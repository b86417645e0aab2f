"""Real graphite-web 1.1.10 as a cluster front end (CLUSTER_SERVERS) over carbide nodes.

usage: tests/graphite-web/venv-python cluster_server.py STORAGE_DIR SETTINGS_FILE [NOW]
SETTINGS_FILE holds the cluster's settings (CLUSTER_SERVERS, REMOTE_STORE_USE_POST, ...): the
`local_settings.py` lines of docs/cluster.md as tests/cluster.rs fills them in. No local
whisper data: every series comes from the nodes. Serves on 127.0.0.1 at a port the OS picks,
with the real clock (or frozen at NOW, epoch seconds); prints "READY <port>" once listening; stops when stdin closes.
"""
import os
import socketserver
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gwenv  # noqa: E402

storage, settings = os.path.abspath(sys.argv[1]), sys.argv[2]
now = int(sys.argv[3]) if len(sys.argv) > 3 else None
with open(settings) as f:
    extra = f.read()
gwenv.setup(storage, now=now, tagdb=True, extra=extra)

from django.core.wsgi import get_wsgi_application  # noqa: E402


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
