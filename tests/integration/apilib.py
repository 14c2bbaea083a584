"""apilib - what the tenant API tests share (README "API", issue 14).

An agent started with a temporary state directory, a token file and an
admin listener on a free loopback port; an HTTP client for /v1 (Python's
http.client: real HTTP, one connection per request); the state
directory's fingerprint (to prove a refused request changed nothing); and
`openssl x509`'s view of a certificate, in the form the API answers.
"""

import hashlib
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import traceback

import agentctl

TOKEN = "portal-token-0123456789abcdef"
OTHER_TOKEN = "second-token-fedcba9876543210"
TOKEN_NAME = "portal"

PEM_RE = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----",
                    re.S)


def mkpki(d):
    """tests/pki/mkpki.sh into d (tenant A root + intermediate with a CRL,
    tenant B, a rogue CA, client certificates)."""
    subprocess.run([os.path.join(agentctl.REPO, "tests", "pki", "mkpki.sh"), d],
                   check=True, stdout=subprocess.DEVNULL, timeout=60)
    return d


def read(path):
    with open(path) as f:
        return f.read()


def write_tokens(path):
    with open(path, "w") as f:
        f.write("# tokens of the API tests\n\n%s:%s\nother:%s\n" % (
            TOKEN_NAME, TOKEN, OTHER_TOKEN))
    os.chmod(path, 0o600)


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # lower-case name -> value
        self.body = body
        try:
            self.json = json.loads(body.decode()) if body else None
        except (ValueError, UnicodeDecodeError):
            self.json = None

    def hdr(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "HTTP %d %r %s" % (self.status, self.headers,
                                  self.body[:600].decode(errors="replace"))


_DEFAULT = object()


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (the admin listener's unix: form)."""

    def __init__(self, path, timeout):
        super().__init__("admin", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def request(port, method, path, body=None, token=_DEFAULT, headers=None,
            ctype=_DEFAULT, raw=None, chunked=False, timeout=15):
    """One request on a new connection to 127.0.0.1:port, or to the unix
    socket when port is a path. `body`: a Python value sent as
    JSON; `raw`: bytes sent as they are. `ctype` defaults to
    application/json when there is a body; None sends no Content-Type.
    `token` None sends no Authorization."""
    if token is _DEFAULT:
        token = TOKEN
    # A header whose value a failed earlier step left None is still sent,
    # as a tag that matches nothing.
    h = {k: ('"none"' if v is None else v) for k, v in (headers or {}).items()}
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
    if ctype is _DEFAULT:
        ctype = "application/json" if data is not None else None
    if ctype is not None:
        h["Content-Type"] = ctype
    if token is not None:
        h["Authorization"] = "Bearer " + token
    if isinstance(port, str):
        c = UnixHTTPConnection(port, timeout)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        try:
            if chunked:
                c.request(method, path, body=iter([data]), headers=h,
                          encode_chunked=True)
            else:
                c.request(method, path, body=data, headers=h)
        except (BrokenPipeError, ConnectionResetError):
            # The server may answer (413) and close before it has read
            # the whole body: its answer is still there to read.
            pass
        r = c.getresponse()
        b = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, b)
    except (OSError, http.client.HTTPException) as e:
        # Status 0: no answer. The caller's check fails and says why.
        return Resp(0, {}, ("no answer: %r" % e).encode())
    finally:
        c.close()


def state_hash(d):
    """SHA-256 over every path under d (sorted), its type and its bytes:
    equal before and after means the tree is byte-for-byte unchanged."""
    h = hashlib.sha256()
    for root, dirs, files in os.walk(d):
        dirs.sort()
        rel = os.path.relpath(root, d)
        h.update(b"D " + rel.encode() + b"\0")
        for name in sorted(files):
            p = os.path.join(root, name)
            h.update(b"F " + os.path.join(rel, name).encode() + b"\0")
            with open(p, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def state_listing(d):
    out = []
    for root, _dirs, files in os.walk(d):
        for name in files:
            p = os.path.join(root, name)
            out.append("%s %d" % (os.path.relpath(p, d), os.path.getsize(p)))
    return sorted(out)


class ApiAgent(agentctl.Agent):
    """An agent with an admin listener on its own free port
    (--admin-listen), waited for until /readyz answers 200."""

    def __init__(self, workdir, config, **kw):
        # The state directory is the configuration's state-dir.
        super().__init__(workdir, config=config, state_dir=None, **kw)
        self.admin_port = None
        self.base_args = list(self.extra_args)

    def start(self, timeout=15.0):
        last = None
        for _ in range(3):
            self.admin_port = agentctl.free_port()
            self.extra_args = self.base_args + [
                "--admin-listen", "127.0.0.1:%d" % self.admin_port]
            try:
                super().start(timeout)
            except RuntimeError as e:
                last = e
                if "in use" in str(e).lower():
                    continue
                raise
            if self.port == self.admin_port:
                # free_port() handed out the same port twice: the SPOP
                # listener cannot bind, what answered was the admin one.
                self.kill()
                continue
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.alive():
                try:
                    r = request(self.admin_port, "GET", "/readyz", token=None,
                                timeout=2)
                    if r.status == 200:
                        return self
                except OSError:
                    pass
                time.sleep(0.02)
            if not self.alive() and "in use" in self.log().lower():
                continue
            self.kill()
            raise RuntimeError("%s: /readyz not 200 within %.0fs: %s" % (
                self.name, timeout, self.log()[-2000:]))
        raise RuntimeError("%s did not start: %s" % (self.name, last))

    def api(self, method, path, body=None, **kw):
        return request(self.admin_port, method, path, body, **kw)

    def check(self, *extra):
        """mtls-spoa -c CONF --check [extra]: (exit code, stdout, stderr)."""
        p = subprocess.run([agentctl.binary_path(), "-c", self.config_path,
                            "--check"] + list(extra),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        return p.returncode, p.stdout.decode(), p.stderr.decode()


def run_test(tap, prefix, body, seconds):
    """The frame of an API test: a time bound, a Workspace handed to
    body(ws), any exception a failure (never a silent skip), the agents'
    sanitizer reports and log tail on failure, cleanup, the tally and the
    exit status."""
    agentctl.arm_global_timeout(seconds)
    agentctl.require_binary(tap)
    ws = agentctl.Workspace(prefix)
    try:
        body(ws)
    except agentctl.GlobalTimeout as e:
        tap.ok(False, "test finishes in time", e)
    except Exception:
        tap.ok(False, "the test runs to its end", traceback.format_exc())
    finally:
        for agent in ws.agents:
            errs = agent.sanitizer_errors()
            if errs:
                tap.ok(False, "agent log has no sanitizer reports", "\n".join(errs[:20]))
            if tap.failed:
                tap.diag("agent log (tail):\n" + agent.log()[-4000:])
        if os.environ.get("T_KEEP") == "1":
            # As lib.sh: keep the work dir for debugging.
            for agent in ws.agents:
                agent.kill()
            tap.diag("work dir kept: %s" % ws.dir)
        else:
            ws.cleanup()
    print("# %d passed, %d failed" % (tap.passed, tap.failed))
    sys.exit(1 if tap.failed else 0)


def metrics(port):
    """/metrics as {series: value}."""
    r = request(port, "GET", "/metrics", token=None)
    out = {}
    for line in r.body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        k, _, v = line.rpartition(" ")
        out[k] = float(v)
    return out


# ------------------------------------------------------------ openssl's view

def _ossl(args, data):
    p = subprocess.run(["openssl"] + args, input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), p.stderr.decode()))
    return p.stdout.decode()


def split_pem(text):
    b = text.encode() if isinstance(text, str) else text
    return [m.group(0) + b"\n" for m in PEM_RE.finditer(b)]


def _iso(s):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ",
                         time.strptime(s.strip(), "%b %d %H:%M:%S %Y %Z"))


def x509_facts(pem):
    """One certificate's details as the API gives them (README "API"):
    RFC 2253 names, lowercase hex without colons, ISO 8601 UTC times."""
    out = _ossl(["x509", "-noout", "-nameopt", "RFC2253", "-subject",
                 "-issuer", "-serial", "-startdate", "-enddate",
                 "-fingerprint", "-sha256"], pem)
    f = {}
    for line in out.splitlines():
        k, _, v = line.partition("=")
        f[k.strip()] = v.strip()
    d = {
        "subject": f["subject"],
        "issuer": f["issuer"],
        "serial": f["serial"].lower(),
        "sha256": f["sha256 Fingerprint"].replace(":", "").lower(),
        "not_before": _iso(f["notBefore"]),
        "not_after": _iso(f["notAfter"]),
    }
    try:
        ski = _ossl(["x509", "-noout", "-ext", "subjectKeyIdentifier"], pem)
        lines = [l.strip() for l in ski.splitlines()[1:] if l.strip()]
        if lines:
            d["ski"] = lines[0].replace(":", "").lower()
    except RuntimeError:
        pass
    return d


def der_sha256s(pem_text):
    """SHA-256 of the DER of each certificate of a PEM bundle, in order."""
    out = []
    for c in split_pem(pem_text):
        der = subprocess.run(["openssl", "x509", "-outform", "DER"], input=c,
                             stdout=subprocess.PIPE, check=True,
                             timeout=20).stdout
        out.append(hashlib.sha256(der).hexdigest())
    return out


def der(pem_path):
    return subprocess.run(["openssl", "x509", "-in", pem_path, "-outform", "DER"],
                          stdout=subprocess.PIPE, check=True, timeout=20).stdout
