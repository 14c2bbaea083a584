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


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(handler):
    """A threaded HTTP server with `handler` on a free loopback port,
    serving on a daemon thread. Returns (server, port)."""
    httpd = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, httpd.server_address[1]


def send_body(h, ctype, body):
    """A 200 answer of `body` on handler h (a peer gone is fine)."""
    try:
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass


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
                except (BrokenPipeError, ConnectionResetError):
                    return
                send_body(self, "application/pkix-crl", srv.bodies[name])

        self.httpd, self.port = serve(H)

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


def make_leaf(d, name, cn, ca, serial, aia=None):
    """certs.make_leaf, with an OCSP URL in the AIA when `aia` is given."""
    import certs
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=clientAuth\nsubjectAltName=DNS:%s\n" % cn)
        if aia:
            f.write("authorityInfoAccess=OCSP;URI:%s\n" % aia)
    certs._run(["req", "-new", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                name + ".key", "-out", name + ".csr", "-subj",
                "/O=mtls-spoa tests/CN=" + cn], d)
    certs._run(["x509", "-req", "-in", name + ".csr", "-CA", ca.pem, "-CAkey",
                ca.key, "-set_serial", "0x%x" % serial, "-days", "10",
                "-extfile", ext, "-out", name + ".pem"], d)
    return certs.Cert(d, name)


class OcspResponder:
    """An OCSP responder (python3-cryptography) for certs.Cert `ca` on
    http://127.0.0.1:PORT/, answering per serial as behave[serial] says:
    "good", "revoked", "unknown", "other" (an answer about another
    serial), "expired" (nextUpdate passed), "unauthorized" (signed by
    `other_ca`'s key), "nonce" (a nonce that is not the request's),
    "hang" (never answers), "slow" (good after `slow` seconds).
    Serials not listed are "good". hits[serial] counts queries; leaves
    must be registered with add()."""

    def __init__(self, ca, other_ca, next_update=300):
        from cryptography.x509 import ocsp
        self.ocsp = ocsp
        self.ca_cert = load_cert(ca.pem)
        self.ca_key = load_key(ca.key)
        self.other_cert = load_cert(other_ca.pem)
        self.other_key = load_key(other_ca.key)
        self.leaves = {}
        self.behave = {}
        self.hits = {}
        self.next_update = next_update
        self.slow = 0.3
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                try:
                    out = srv.answer(body)
                except Exception as e:  # a test bug: say so in the log
                    self.send_error(500, str(e))
                    return
                if out is None:
                    return
                send_body(self, "application/ocsp-response", out)

        self.httpd, self.port = serve(H)
        self.url = "http://127.0.0.1:%d/" % self.port

    def add(self, leaf):
        self.leaves[leaf.serial] = load_cert(leaf.pem)

    def answer(self, body):
        ocsp = self.ocsp
        req = ocsp.load_der_ocsp_request(body)
        serial = req.serial_number
        with self.lock:
            self.hits[serial] = self.hits.get(serial, 0) + 1
        mode = self.behave.get(serial, "good")
        if mode == "hang":
            self.stop_event.wait(30)
            return None
        if mode == "slow":
            time.sleep(self.slow)
        nonce = None
        for e in req.extensions:
            if isinstance(e.value, x509.OCSPNonce):
                nonce = e.value.nonce
        now = time.time()
        tu, nu = now - 10, now + self.next_update
        if mode == "expired":
            tu, nu = now - 7200, now - 3600
        status = {"revoked": ocsp.OCSPCertStatus.REVOKED,
                  "unknown": ocsp.OCSPCertStatus.UNKNOWN}.get(
                      mode, ocsp.OCSPCertStatus.GOOD)
        cert = self.leaves[serial]
        if mode == "other":
            cert = next(c for s, c in self.leaves.items() if s != serial)
        ts = datetime.datetime.utcfromtimestamp
        b = ocsp.OCSPResponseBuilder().add_response(
            cert=cert, issuer=self.ca_cert, algorithm=hashes.SHA1(),
            cert_status=status, this_update=ts(int(tu)),
            next_update=ts(int(nu)),
            revocation_time=ts(int(tu)) if status == ocsp.OCSPCertStatus.REVOKED else None,
            revocation_reason=None)
        signer_cert, signer_key = self.ca_cert, self.ca_key
        if mode == "unauthorized":
            signer_cert, signer_key = self.other_cert, self.other_key
        b = b.responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
        if mode == "nonce":
            nonce = b"\x00" * 16
        if nonce is not None:
            b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
        return b.sign(signer_key, hashes.SHA256()).public_bytes(
            serialization.Encoding.DER)

    def close(self):
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()
