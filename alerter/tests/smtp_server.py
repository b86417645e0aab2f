"""A real SMTP server for the email tests (Debian's python3-aiosmtpd).

usage: smtp_server.py PORT OUTDIR [USER PASSWORD] [--tls none|starttls|implicit] [--reply CODE]

Writes each message to OUTDIR/NNNN.eml (headers X-Rcpt-To, X-TLS: the TLS version or "none",
X-Auth: the authenticated login or "none", then the message as received), and its MIME parts
as the standard library's email parser reads them (NNNN.parts, NNNN.partN: see write_parts),
prints READY when listening, stops when stdin closes.

With USER and PASSWORD, AUTH (PLAIN/LOGIN) is required (over TLS when TLS is on). With --tls,
a private CA and a server certificate for 127.0.0.1 / localhost are generated at start
(python3-cryptography) and the CA is written to OUTDIR/ca.pem for the client to trust:
`starttls` requires STARTTLS before anything else, `implicit` is TLS from the first byte (SMTPS).
With --reply, every message's DATA is answered with that code (451: try again later, 554:
refused) and nothing is written.
"""
import argparse
import datetime
import email
import email.policy
import ipaddress
import os
import ssl
import sys
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("outdir")
ap.add_argument("user", nargs="?")
ap.add_argument("password", nargs="?")
ap.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
ap.add_argument("--reply", type=int)
args = ap.parse_args()
outdir = args.outdir


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_certs():
    """A CA and a leaf signed by it (rustls refuses a CA certificate as the server's)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    valid = dict(not_valid_before=now - datetime.timedelta(hours=1),
                 not_valid_after=now + datetime.timedelta(days=1))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("carbide test CA")).issuer_name(name("carbide test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(valid["not_valid_before"]).not_valid_after(valid["not_valid_after"])
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(valid["not_valid_before"]).not_valid_after(valid["not_valid_after"])
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    with open(os.path.join(outdir, "ca.pem"), "wb") as f:
        f.write(pem(ca))
    with open(os.path.join(outdir, "server.pem"), "wb") as f:
        f.write(pem(leaf))
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.path.join(outdir, "server.pem"))
    return ctx


def write_parts(prefix, raw):
    """The message's MIME parts as Python's email package reads them: PREFIX.parts lists one
    line per leaf part (index, content type, Content-ID or -, the types of the multiparts
    around it joined by >), and PREFIX.part<index> holds its decoded body."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    lines = []

    def walk(part, parents):
        if part.is_multipart():
            for p in part.iter_parts():
                walk(p, parents + [part.get_content_type()])
            return
        i = len(lines)
        with open("%s.part%d" % (prefix, i), "wb") as f:
            f.write(part.get_payload(decode=True) or b"")
        lines.append("%d %s %s %s" % (i, part.get_content_type(), part.get("Content-ID", "-"),
                                      ">".join(parents) or "-"))

    walk(msg, [])
    with open(prefix + ".parts", "w") as f:
        f.write("\n".join(lines) + "\n")


class Handler:
    async def handle_DATA(self, server, session, envelope):
        if args.reply:
            return "%d %s.0.0 test reply" % (args.reply, str(args.reply)[0])
        n = len([f for f in os.listdir(outdir) if f.endswith(".eml")])
        tmp = os.path.join(outdir, "%04d.tmp" % n)
        ssl_object = server.transport.get_extra_info("ssl_object")
        tls = ssl_object.version() if ssl_object is not None else "none"
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else "none"
        with open(tmp, "wb") as f:
            f.write(b"X-Rcpt-To: " + ", ".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(b"X-TLS: " + tls.encode() + b"\r\n")
            f.write(b"X-Auth: " + login.encode() + b"\r\n")
            f.write(envelope.original_content or envelope.content)
        write_parts(os.path.join(outdir, "%04d" % n), envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(outdir, "%04d.eml" % n))
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == args.user
        and auth_data.password.decode() == args.password
    )
    # handled=False: aiosmtpd answers 235 / 535 itself; auth_data is kept on the session.
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


kw = {}
if args.user:
    # aiosmtpd only knows about TLS it started itself (STARTTLS): under implicit TLS the
    # connection is encrypted but auth_require_tls would hide AUTH, so it is off there.
    warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
    kw.update(authenticator=authenticate, auth_required=True,
              auth_require_tls=args.tls == "starttls")
if args.tls == "starttls":
    kw.update(tls_context=make_certs(), require_starttls=True)
elif args.tls == "implicit":
    kw.update(ssl_context=make_certs())
controller = Controller(Handler(), hostname="127.0.0.1", port=args.port, **kw)
controller.start()
print("READY", flush=True)
sys.stdin.read()
controller.stop()
