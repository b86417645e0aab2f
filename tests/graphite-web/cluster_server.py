"""Real graphite-web 1.1.10 as a cluster front end (CLUSTER_SERVERS) over carbide nodes.

usage: tests/graphite-web/venv-python cluster_server.py STORAGE_DIR FORMAT POST NODE_URL...
FORMAT is `pickle` or `msgpack` (what the nodes are asked for); POST `1` sets
REMOTE_STORE_USE_POST (multipart/form-data requests). No local whisper data: every series
comes from the nodes. Serves on 127.0.0.1 at a port the OS picks, with the real clock; prints
"READY <port>" once listening; stops when stdin closes.
"""
import os
import socketserver
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gwenv  # noqa: E402

storage, fmt, post, nodes = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
# A URL ending in `/` is joined with `/render/` into `//render/`, as deployments write them.
servers = ["%s/?format=%s" % (n.rstrip("/"), fmt) for n in nodes]
extra = """
CLUSTER_SERVERS = %r
REMOTE_STORE_USE_POST = %s
REMOTE_RETRY_DELAY = 0
FIND_TIMEOUT = 5
FETCH_TIMEOUT = 10
""" % (servers, post == "1")
gwenv.setup(storage, tagdb=True, extra=extra)

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
