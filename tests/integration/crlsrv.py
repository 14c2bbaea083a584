"""crlsrv - CRLs made at test time (python3-cryptography) and a loopback
HTTP server that publishes them, or misbehaves on purpose.

Nothing is committed: keys come from certs.make_ca() in a temp directory.
"""

import datetime
import http.server
import os
import socketserver
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization


def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def load_cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def make_crl(ca, number, revoked=(), this_update=None, next_update=None,
             key=None, der=False):
    """A CRL of certs.Cert `ca` (its name; signed with `key` or its own
    key) revoking the serials in `revoked`. Times are unix seconds;
    defaults: a minute ago, an hour from now. Returns bytes (PEM unless
    der)."""
    now = time.time()
    tu = this_update if this_update is not None else now - 60
    nu = next_update if next_update is not None else now + 3600
    issuer = load_cert(ca.pem).subject
    b = (x509.CertificateRevocationListBuilder()
         .issuer_name(issuer)
         .last_update(datetime.datetime.utcfromtimestamp(int(tu)))
         .next_update(datetime.datetime.utcfromtimestamp(int(nu)))
         .add_extension(x509.CRLNumber(number), critical=False))
    for s in revoked:
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(s)
            .revocation_date(datetime.datetime.utcfromtimestamp(int(tu)))
            .build())
    crl = b.sign(load_key(key or ca.key), hashes.SHA256())
    enc = serialization.Encoding.DER if der else serialization.Encoding.PEM
    return crl.public_bytes(enc)


def put(path, data):
    """Write as tools do: a temp name, then rename over."""
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class CrlServer:
    """http://127.0.0.1:PORT/<name>: what publish() last set for name.

    mode(name, m): "ok" (serve), "404", "hang" (accept, never answer),
    "huge" (a body of `huge` bytes, streamed), "slow" (one byte a second).
    hits[name] counts requests."""

    def __init__(self):
        self.bodies = {}
        self.modes = {}
        self.hits = {}
        self.huge = 200 * 1024 * 1024
        self.stop_event = threading.Event()
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                srv.hits[name] = srv.hits.get(name, 0) + 1
                m = srv.modes.get(name, "ok")
                try:
                    if m == "hang":
                        srv.stop_event.wait(60)
                        return
                    if m == "404" or name not in srv.bodies and m == "ok":
                        self.send_error(404)
                        return
                    if m == "huge":
                        self.send_response(200)
                        self.send_header("Content-Length", str(srv.huge))
                        self.end_headers()
                        chunk = b"\x30" * 65536
                        sent = 0
                        while sent < srv.huge and not srv.stop_event.is_set():
                            self.wfile.write(chunk)
                            sent += len(chunk)
                        return
                    body = srv.bodies[name]
                    self.send_response(200)
                    self.send_header("Content-Type", "application/pkix-crl")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = S(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def url(self, name):
        return "http://127.0.0.1:%d/%s" % (self.port, name)

    def publish(self, name, body):
        self.bodies[name] = body
        self.modes[name] = "ok"

    def mode(self, name, m):
        self.modes[name] = m

    def close(self):
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()
