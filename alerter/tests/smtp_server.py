"""A real SMTP server for the email tests (Debian's python3-aiosmtpd).

usage: smtp_server.py PORT OUTDIR [USER PASSWORD]
Writes each message to OUTDIR/NNNN.eml, prints READY when listening, stops when stdin closes.
With USER and PASSWORD, AUTH (PLAIN/LOGIN) is required (TLS not required: test only).
"""
import os
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, outdir = int(sys.argv[1]), sys.argv[2]
user = sys.argv[3] if len(sys.argv) > 4 else None
password = sys.argv[4] if len(sys.argv) > 4 else None


class Handler:
    async def handle_DATA(self, server, session, envelope):
        n = len([f for f in os.listdir(outdir) if f.endswith(".eml")])
        tmp = os.path.join(outdir, "%04d.tmp" % n)
        with open(tmp, "wb") as f:
            f.write(b"X-Rcpt-To: " + ", ".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(outdir, "%04d.eml" % n))
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == user
        and auth_data.password.decode() == password
    )
    return AuthResult(success=ok, handled=False)


kw = {}
if user:
    kw = dict(authenticator=authenticate, auth_required=True, auth_require_tls=False)
controller = Controller(Handler(), hostname="127.0.0.1", port=port, **kw)
controller.start()
print("READY", flush=True)
sys.stdin.read()
controller.stop()
