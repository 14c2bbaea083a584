"""certs - test PKI generated at test time with the openssl CLI.

Nothing here is committed: every run makes fresh keys and certificates in a
temporary directory. EC P-256 keys keep it fast.
"""

import calendar
import hashlib
import os
import subprocess
import time

OPENSSL_TIMEOUT = 20


def _run(args, cwd):
    p = subprocess.run(["openssl"] + args, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=OPENSSL_TIMEOUT)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (
            " ".join(args), p.stderr.decode(errors="replace")))
    return p.stdout.decode(errors="replace")


def _x509_time(s):
    # "Nov 23 19:30:00 2027 GMT"
    return calendar.timegm(time.strptime(s.strip(), "%b %d %H:%M:%S %Y %Z"))


class Cert:
    """A certificate on disk with the facts tests compare against."""

    def __init__(self, d, name):
        self.pem = os.path.join(d, name + ".pem")
        self.key = os.path.join(d, name + ".key")
        self.der_path = os.path.join(d, name + ".der")
        _run(["x509", "-in", self.pem, "-outform", "DER", "-out",
              self.der_path], d)
        with open(self.der_path, "rb") as f:
            self.der = f.read()
        self.fingerprint = hashlib.sha256(self.der).hexdigest()
        out = _run(["x509", "-in", self.pem, "-noout", "-serial",
                    "-startdate", "-enddate"], d)
        facts = dict(line.split("=", 1) for line in out.splitlines()
                     if "=" in line)
        self.serial = int(facts["serial"], 16)
        self.not_before = _x509_time(facts["notBefore"])
        self.not_after = _x509_time(facts["notAfter"])


def make_ca(d, name, cn):
    _run(["req", "-x509", "-newkey", "ec", "-pkeyopt",
          "ec_paramgen_curve:prime256v1", "-nodes",
          "-keyout", name + ".key", "-out", name + ".pem",
          "-subj", "/O=mtls-spoa tests/CN=" + cn, "-days", "30",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    return Cert(d, name)


def make_leaf(d, name, cn, ca, serial, eku="clientAuth"):
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=%s\n"
                "subjectAltName=DNS:%s\n" % (eku, cn))
    _run(["req", "-new", "-newkey", "ec", "-pkeyopt",
          "ec_paramgen_curve:prime256v1", "-nodes",
          "-keyout", name + ".key", "-out", name + ".csr",
          "-subj", "/O=mtls-spoa tests/CN=" + cn], d)
    _run(["x509", "-req", "-in", name + ".csr", "-CA", ca.pem,
          "-CAkey", ca.key, "-set_serial", "0x%x" % serial, "-days", "10",
          "-extfile", ext, "-out", name + ".pem"], d)
    return Cert(d, name)


class Pki:
    """CA a, a client cert from a; CA b, a client cert from b."""

    def __init__(self, d):
        self.dir = d
        self.ca_a = make_ca(d, "ca-a", "Test CA A")
        self.ca_b = make_ca(d, "ca-b", "Test CA B")
        self.alice = make_leaf(d, "alice", "alice.client.test", self.ca_a,
                               0x1a2b3c4d5e6f)
        self.mallory = make_leaf(d, "mallory", "mallory.client.test",
                                 self.ca_b, 0x0badc0de)
