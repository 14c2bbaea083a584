#!/usr/bin/env python3
"""Revocation that stays fresh (issue 16): CRL files re-read when they
change, CRLs fetched from URLs, the staleness policy.

Every wait polls a condition against a deadline. CRLs are made at test
time (crlsrv.make_crl); the CRL server is Python's http.server on a free
loopback port, and misbehaves on purpose (garbage, an older CRL, a CRL
signed by another key, a 200 MB body, a connection that never answers).

Prints ok/not ok per check; exits non-zero on any failure.
"""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agentctl as A  # noqa: E402
import certs  # noqa: E402
import crlsrv  # noqa: E402
import spoplib as S  # noqa: E402

tap = A.Tap()
HOST = "t.test"


def verdict(agent, leaf, host=HOST):
    """The verdict variables for `leaf` (a certs.Cert) on `host`."""
    try:
        c = S.Client(agent.addr, timeout=3)
        c.hello()
        v = c.notify(1, 1, [S.check_cert_message(cert=leaf.der, sni=host,
                                                 host=host)]).vars()
        c.close()
        return {k: x[0] for k, x in v.items()}
    except (OSError, S.Closed, S.ProtocolError) as e:
        return {"error": str(e)}


def wait_for(fn, secs, step=0.02):
    """Poll fn() until truthy or `secs` pass; returns (value, seconds)."""
    t0 = time.monotonic()
    while True:
        v = fn()
        if v or time.monotonic() - t0 >= secs:
            return v, time.monotonic() - t0
        time.sleep(step)


def wait_result(agent, leaf, want, secs, host=HOST):
    got = {}

    def f():
        got.clear()
        got.update(verdict(agent, leaf, host))
        return got.get("result") == want
    ok, t = wait_for(f, secs)
    return ok, t, got


def expect_result(agent, leaf, want, secs, desc, host=HOST):
    ok, t, got = wait_result(agent, leaf, want, secs, host)
    tap.ok(ok, "%s (%.2f s)" % (desc, t), "got %r" % (got,))
    return t


def wait_log(agent, text, count_before, secs):
    """Until the log holds more than count_before lines with text."""
    ok, _ = wait_for(lambda: agent.log().count(text) > count_before, secs)
    return ok


def start_agent(ws, d, name, conf):
    """An agent whose configuration is `conf`, written in directory d:
    not where its log is, which would keep the watch busy."""
    path = os.path.join(d, name + ".conf")
    with open(path, "w") as f:
        f.write(conf)
    ag = ws.agent(name=name, extra_args=["-c", path, "--log-level", "debug"])
    ag.start()
    return ag


def file_refresh(ws, pki):
    """Part 1: a `crl =` file replaced on disk applies without a signal;
    one that would take revocation backwards is refused."""
    d = os.path.join(ws.dir, "files")  # not where the agent's log is
    os.mkdir(d)
    crl = os.path.join(d, "a.crl")
    crlsrv.put(crl, crlsrv.make_crl(pki.ca_a, 1))
    conf = ("[agent]\nstate-dir = %s/state\nwatch = on\n\n[ca a]\nfile = %s\n"
            "crl = %s\n\n[host %s]\nca = a\n" % (d, pki.ca_a.pem, crl, HOST))
    ag = start_agent(ws, d, "files", conf)
    expect_result(ag, pki.alice, "ok", 3, "files: alice ok with CRL 1")

    crlsrv.put(crl, crlsrv.make_crl(pki.ca_a, 2, revoked=[pki.alice.serial]))
    expect_result(ag, pki.alice, "revoked", 3,
                  "files: CRL 2 revoking alice written over the file: revoked, no signal")
    log = ag.log()
    tap.ok("1 CAs (1 built, 0 reused)" in log,
           "files: the reload rebuilt the one CA whose CRL changed",
           log[-600:])

    cases = [
        ("an older CRL (number 1)", crlsrv.make_crl(pki.ca_a, 1),
         "number 1 is lower than the loaded CRL's 2"),
        ("a CRL with an older thisUpdate", crlsrv.make_crl(
            pki.ca_a, 3, this_update=time.time() - 7200),
         "is older than the loaded CRL's"),
        ("a CRL signed by another key", crlsrv.make_crl(
            pki.ca_a, 4, key=pki.ca_b.key),
         "not signed by a certificate of [ca a]"),
        ("garbage", b"this is not a CRL\n", "not a PEM or DER CRL"),
    ]
    for desc, body, why in cases:
        n = ag.log().count(why)
        crlsrv.put(crl, body)
        tap.ok(wait_log(ag, why, n, 3), "files: %s: refused and logged" % desc,
               ag.log()[-800:])
        expect_result(ag, pki.alice, "revoked", 1,
                      "files: ... and the loaded CRL stays (alice revoked)")

    crlsrv.put(crl, crlsrv.make_crl(pki.ca_a, 5))
    expect_result(ag, pki.alice, "ok", 3,
                  "files: CRL 5 without alice is taken: ok again")
    ag.stop()


def main():
    A.require_binary(tap)
    A.arm_global_timeout(240)
    ws = A.Workspace("mtls-rev-")
    try:
        pkidir = os.path.join(ws.dir, "pki")  # watched (CA files): no logs
        os.mkdir(pkidir)
        pki = certs.Pki(pkidir)
        file_refresh(ws, pki)
        for a in ws.agents:
            errs = a.sanitizer_errors()
            tap.ok(not errs, "%s: no sanitizer errors" % a.name, "\n".join(errs[:5]))
    except A.GlobalTimeout:
        tap.ok(False, "finished within the time bound")
    finally:
        if os.environ.get("KEEP"):
            for a in ws.agents:
                a.kill()
            print("# kept", ws.dir)
        else:
            ws.cleanup()
    return 0 if tap.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
