#!/usr/bin/env python3
"""Uncached verifications do not hold up cached answers (issue 12).

Verifications run on the verify pool, off the worker loop, and each ACK
leaves when its verdict is ready (SPOP pipelining allows any order). On
one connection, to a one-worker agent with one verify thread, we pipeline
in one write N NOTIFYs for certificates never seen (each a full
verification) followed by one NOTIFY for a certificate already cached:
its ACK must not be the last one, as it was when the worker verified
inline and answered strictly in order. Also: every NOTIFY is answered
with the right verdict and ids, an agent stopped with SIGTERM while
verifications are pending still sends every ACK before its DISCONNECT,
and a peer that closes with verifications pending does not hurt the
agent.

Prints ok/not ok per check; exits non-zero on any failure.
"""

import os
import signal
import socket
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agentctl as A  # noqa: E402
import certs  # noqa: E402
import spoplib as S  # noqa: E402

TIME_BOUND = 240 if os.environ.get("MTLS_AGENT_WRAPPER") else 90
N_UNCACHED = 60
tap = A.Tap()


def make_leaves(d, ca, n):
    """n leaves of `ca` sharing one key (fast): distinct certificates, so
    each one is a full verification."""
    certs._run(["req", "-new", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                "many.key", "-out", "many.csr", "-subj",
                "/O=mtls-spoa tests/CN=many.client.test"], d)
    with open(os.path.join(d, "many.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=clientAuth\n")
    out = []
    for i in range(n):
        name = "many%d" % i
        certs._run(["x509", "-req", "-in", "many.csr", "-CA", ca.pem,
                    "-CAkey", ca.key, "-set_serial", str(1000 + i), "-days",
                    "5", "-extfile", "many.ext", "-outform", "DER", "-out",
                    name + ".der"], d)
        with open(os.path.join(d, name + ".der"), "rb") as f:
            out.append(f.read())
    return out


def msg(cert):
    return [S.check_cert_message(cert=cert, chain=None, sni="api.example.com",
                                 host="api.example.com")]


def res(f):
    """The `result` variable of an ACK (vars() gives (value, type))."""
    return f.vars().get("result", (None,))[0]


def read_acks(c, want, timeout=20.0):
    """ACK frames until `want` of them arrived (or something else came)."""
    acks, other = [], []
    deadline = time.monotonic() + timeout
    while len(acks) < want and time.monotonic() < deadline:
        try:
            f = c.recv_frame(deadline - time.monotonic())
        except (socket.timeout, S.Closed):
            break
        (acks if f.type == S.ACK else other).append(f)
    return acks, other


def main():
    A.arm_global_timeout(TIME_BOUND)
    A.require_binary(tap)
    d = tempfile.mkdtemp(prefix="mtls-vpool-")
    agents = []
    try:
        ca = certs.make_ca(d, "ca-a", "Pool CA")
        cached = certs.make_leaf(d, "alice", "alice.client.test", ca, 77)
        leaves = make_leaves(d, ca, N_UNCACHED + 20)
        conf = ("[agent]\nverify-threads = 1\n\n[ca a]\nfile = %s\n\n"
                "[host api.example.com]\nca = a\nmode = enforce\n" % ca.pem)
        ag = A.Agent(d, config=conf, threads=1).start()
        agents.append(ag)

        c = S.Client(ag.addr)
        c.hello()
        f = c.notify(1, 1, msg(cached.der))
        tap.ok(res(f) == "ok", "the cached certificate verifies",
               repr(f.vars()))

        # N uncached, then the cached one, in one write.
        data = b"".join(S.notify_frame(10 + i, 1, msg(leaves[i]))
                        for i in range(N_UNCACHED))
        data += S.notify_frame(9999, 1, msg(cached.der))
        c.send(data)
        acks, other = read_acks(c, N_UNCACHED + 1)
        ids = [a.stream_id for a in acks]
        tap.ok(len(acks) == N_UNCACHED + 1 and not other,
               "every pipelined NOTIFY is answered (%d of %d)" %
               (len(acks), N_UNCACHED + 1), "other frames: %r" %
               [o.name for o in other])
        tap.ok(sorted(ids) == sorted([10 + i for i in range(N_UNCACHED)] +
                                     [9999]),
               "each ACK carries the ids of its NOTIFY")
        pos = ids.index(9999) if 9999 in ids else -1
        tap.ok(0 <= pos < N_UNCACHED,
               "the cached answer does not wait for the %d verifications "
               "queued before it (it came %d of %d)" % (N_UNCACHED, pos + 1,
                                                       len(ids)))
        tap.ok(all(res(a) == "ok" for a in acks),
               "every verdict is ok",
               repr([res(a) for a in acks][:5]))

        # A peer that closes while its verifications are pending.
        c2 = S.Client(ag.addr)
        c2.hello()
        c2.send(b"".join(S.notify_frame(50 + i, 1, msg(leaves[i]))
                         for i in range(N_UNCACHED, N_UNCACHED + 20)))
        c2.abort()
        f = c.notify(3, 1, msg(cached.der))
        tap.ok(ag.alive() and res(f) == "ok",
               "a peer closing with verifications pending leaves the agent "
               "serving")
        c.close()

        # SIGTERM with verifications pending: every ACK, then DISCONNECT.
        ag2 = A.Agent(d, config=conf, threads=1, name="agent2").start()
        agents.append(ag2)
        c3 = S.Client(ag2.addr)
        c3.hello()
        c3.send(b"".join(S.notify_frame(100 + i, 1, msg(leaves[i]))
                         for i in range(N_UNCACHED)))
        # The first ACK proves the agent has read the NOTIFYs.
        first, _ = read_acks(c3, 1)
        ag2.proc.send_signal(signal.SIGTERM)
        frames, how = c3.read_until_close(15.0)
        acks = first + [f for f in frames if f.type == S.ACK]
        disc = [f for f in frames if f.type == S.AGENT_DISCONNECT]
        tap.ok(len(acks) == N_UNCACHED,
               "SIGTERM: every pending verification is answered (%d of %d)" %
               (len(acks), N_UNCACHED))
        tap.ok(len(disc) == 1 and frames and frames[-1].type ==
               S.AGENT_DISCONNECT,
               "SIGTERM: the AGENT-DISCONNECT comes after the last ACK",
               "frames: %r, end: %s" % ([f.name for f in frames][-3:], how))
        ag2.proc.wait(10)
        tap.ok(ag2.proc.returncode == 0, "SIGTERM: clean exit")

        # Many equal requests at once, spread over two workers and many
        # spellings of the host: one verification. The verify pool lets
        # a request join the verification of an equal one in flight, or
        # take its kept result, instead of verifying again.
        conf2 = conf.replace("verify-threads = 1", "verify-threads = 2")
        ag3 = A.Agent(d, config=conf2, threads=2, name="agent3").start()
        agents.append(ag3)
        conns = [S.Client(ag3.addr) for _ in range(4)]
        for cl in conns:
            cl.hello()
        fresh = leaves[N_UNCACHED + 19]
        for k, cl in enumerate(conns):
            cl.send(b"".join(S.notify_frame(1000 + i, 1, [
                S.check_cert_message(cert=fresh, chain=None,
                                     sni="api.example.com",
                                     host="API.example.com:%d" % (k * 100 + i + 1))])
                for i in range(100)))
        got = []
        for cl in conns:
            acks, _ = read_acks(cl, 100)
            got += acks
            cl.close()
        ag3.proc.send_signal(signal.SIGTERM)
        ag3.proc.wait(10)
        m = [line for line in ag3.log().splitlines()
             if "full trust verifications since the start" in line]
        n = int(m[-1].split("] ", 1)[1].split()[0]) if m else -1
        tap.ok(len(got) == 400 and all(res(a) == "ok" for a in got),
               "400 equal requests at once over 4 connections: all ok "
               "(%d answered)" % len(got))
        tap.ok(n == 1, "400 equal requests at once, 2 workers, 400 host "
               "spellings: exactly 1 full verification (%d)" % n,
               "\n".join(m))
        for a in agents:
            errs = a.sanitizer_errors()
            tap.ok(not errs, "%s: no sanitizer report" % a.name,
                   str(errs)[:2000])
    except A.GlobalTimeout:
        tap.ok(False, "finished within %d s" % TIME_BOUND)
    finally:
        for a in agents:
            if a.alive():
                a.kill()
    return 0 if tap.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
