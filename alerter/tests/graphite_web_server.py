"""Real graphite-web 1.1.10 over HTTP for the alerter's end-to-end test.

usage: <graphite-web venv>/bin/python graphite_web_server.py STORAGE_DIR
Serves graphite-web (Django, the venv built by tests/graphite-web/setup.sh) reading the whisper
files under STORAGE_DIR/whisper with the real clock, on 127.0.0.1 and a port the OS picks.
Prints "READY <port>" once listening; stops when stdin closes.
"""
import os
import socketserver
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "graphite-web"))

import gwenv  # noqa: E402

gwenv.setup(os.path.abspath(sys.argv[1]))  # real clock: carbon writes "now"

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
