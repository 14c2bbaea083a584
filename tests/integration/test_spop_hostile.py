#!/usr/bin/env python3
"""Hostile SPOP peers against mtls-spoa (issue 5, item 3).

A well-behaved client stays connected throughout; after EVERY hostile case
it sends a NOTIFY and must get its ACK, correct and on time (none lost).
Each hostile case asserts the SPOE.txt AGENT-DISCONNECT status code (or a
clean close) and, for protocol errors, that the agent logged it once with
the peer's address.

Two agents run: "main" (policies, max-frame-size 131072, max-output 8k) and
"limits" (idle-timeout 2s, max-connections 20). Prints ok/not ok per check,
"# N hostile cases" at the end, exits non-zero on any failure; the whole
file is bounded by TIME_BOUND seconds.
"""

import errno
import os
import random
import select
import signal
import socket
import struct
import sys
import time
import traceback

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agentctl as A  # noqa: E402
import certs  # noqa: E402
import spoplib as S  # noqa: E402

TIME_BOUND = 60
# The non-reading peer gives up after this much (the agent must close it
# long before: max-output is 8k).
MAX_FLOOD_BYTES = 16 * 1024 * 1024
API = "api.example.com"
tap = A.Tap()
hostile_count = {"cut": 0, "other": 0}

MAIN_CONFIG = """\
[agent]
max-frame-size = 131072
max-output = 8k
idle-timeout = 20s

[ca a]
file = ca-a.pem

[host api.example.com]
ca = a
mode = enforce
"""

LIMITS_CONFIG = """\
[agent]
idle-timeout = 2s
max-connections = 20
"""


class Good:
    """The well-behaved client. ping() sends one NOTIFY (alternately with
    and without a certificate) and checks its ACK."""

    def __init__(self, agent, cert, name):
        self.agent = agent
        self.cert = cert
        self.name = name
        self.sid = 1000
        self.sent = 0
        self.acked = 0
        self.reconnects = 0
        self.c = None
        self._connect()

    def _connect(self):
        self.c = S.Client(self.agent.addr, timeout=3.0)
        self.c.hello()

    def ping(self):
        self.sid += 1
        has = self.sid % 2 == 0
        self.sent += 1
        try:
            f = self.c.notify(self.sid, self.sid % 13, [S.check_cert_message(
                cert=self.cert if has else None, sni="good.test", host="good.test")],
                timeout=3.0)
            v = f.vars()
            want = {"present": (has, S.T_BOOL), "result": ("no_policy", S.T_STRING),
                    "action": ("allow", S.T_STRING)}
            for k, w in want.items():
                if v.get(k) != w:
                    raise S.ProtocolError("%s=%r, expected %r" % (k, v.get(k), w))
            self.acked += 1
            return True, None
        except Exception as e:
            why = "%s: %s" % (type(e).__name__, e)
            # Reconnect so later cases are still checked; the loss is
            # reported by the caller and in the final tally.
            try:
                self.c.close()
                self.reconnects += 1
                self._connect()
            except Exception as e2:
                why += "; reconnect failed: %s" % e2
            return False, why

    def close(self):
        if self.c:
            self.c.close()


def after_case(goods, desc):
    for g in goods:
        ok, why = g.ping()
        tap.ok(ok, "%s: good client on %s answered" % (desc, g.name), why)


def check_logged_once(agent, peer, desc):
    lines = agent.wait_log_for_peer(*peer)
    if len(lines) == 1:
        # Let a late duplicate show up before concluding.
        time.sleep(0.05)
        lines = agent.log_lines_for_peer(*peer)
    tap.ok(len(lines) == 1, "%s: logged once with the peer %s:%d" % (desc, peer[0], peer[1]),
           "%d log lines name the peer:\n%s" % (len(lines), "\n".join(lines[:5])))


def error_case(agent, goods, desc, status, send, hello=True, offer=16380,
               allow_before=(), log=True):
    """New connection (HELLO first unless hello=False), send `send` bytes
    (a list sends several writes), expect AGENT-DISCONNECT `status`."""
    hostile_count["other"] += 1
    c = S.Client(agent.addr)
    peer = c.local_addr()
    try:
        if hello:
            c.hello(max_frame_size=offer)
        for chunk in (send if isinstance(send, list) else [send]):
            try:
                c.send(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break  # the agent closed first: its frame is still readable
        ok, why = S.expect_disconnect(c, status, allow_before=allow_before)
        tap.ok(ok, desc + " -> AGENT-DISCONNECT status %s" % (
            status if isinstance(status, int) else "/".join(map(str, sorted(status)))), why)
    except Exception as e:
        tap.ok(False, desc, "%s: %s" % (type(e).__name__, e))
    finally:
        c.close()
    if log:
        check_logged_once(agent, peer, desc)
    after_case(goods, desc)


def ack_case(agent, goods, desc, frames, expect, offer=16380):
    """New connection, HELLO, send NOTIFY frames; `expect` is a list of
    ((sid, fid), {var: (value, type)}) in any order."""
    hostile_count["other"] += 1
    c = S.Client(agent.addr)
    try:
        c.hello(max_frame_size=offer)
        c.send(b"".join(frames))
        pending = list(expect)
        bad = []
        while pending:
            f = c.recv_frame(5.0)
            if f.type != S.ACK:
                bad.append("got %s %r" % (f.name, f.kv() if f.type == S.AGENT_DISCONNECT else ""))
                break
            ids = (f.stream_id, f.frame_id)
            match = [e for e in pending if e[0] == ids]
            if not match:
                bad.append("unexpected ACK ids %r" % (ids,))
                break
            pending.remove(match[0])
            v = f.vars()
            for k, w in match[0][1].items():
                if v.get(k) != w:
                    bad.append("ACK %r: %s=%r, expected %r" % (ids, k, v.get(k), w))
        tap.ok(not bad, desc, "; ".join(bad))
    except Exception as e:
        tap.ok(False, desc, "%s: %s" % (type(e).__name__, e))
    finally:
        c.close()
    after_case(goods, desc)


# ---------------------------------------------------------------- raw frames

def raw_frame(ftype, payload, flags=S.FLAG_FIN, sid=b"\x00", fid=b"\x00"):
    """A frame with raw (possibly invalid) id bytes."""
    body = bytes([ftype]) + struct.pack(">I", flags) + sid + fid + payload
    return struct.pack(">I", len(body)) + body


def cert_notify(sid, fid, **kw):
    return S.notify_frame(sid, fid, [S.check_cert_message(**kw)])


# ---------------------------------------------------------------- cases

def cut_cases(agent, goods, frame, prefix, what, expect_first):
    """Connection cut at every byte position of `frame` (sent after
    `prefix`). Positions rotate between a half-close (then the agent must
    close promptly, sending at most an AGENT-DISCONNECT after the expected
    first frames), a RST and a plain close."""
    problems = []
    slow = 0
    for k in range(len(frame)):
        hostile_count["cut"] += 1
        mode = k % 3
        c = S.Client(agent.addr, timeout=2.0)
        try:
            c.send(prefix + frame[:k])
            if mode == 0:
                c.shutdown_write()
                if slow >= 3:
                    c.close()
                else:
                    frames, how = c.read_until_close(2.0)
                    types = [f.type for f in frames]
                    okf = (types[:len(expect_first)] == expect_first and
                           all(t == S.AGENT_DISCONNECT for t in types[len(expect_first):]) and
                           len(types) <= len(expect_first) + 1)
                    if how == "timeout":
                        slow += 1
                        problems.append("cut at %d: agent did not close after EOF within 2s" % k)
                    elif not okf or how.endswith("partial"):
                        problems.append("cut at %d: got %r then %s" % (k, frames, how))
            elif mode == 1:
                c.abort()
            else:
                c.close()
        except Exception as e:
            problems.append("cut at %d: %s: %s" % (k, type(e).__name__, e))
        finally:
            c.close()
        for g in goods:
            ok, why = g.ping()
            if not ok:
                problems.append("after cut at %d: good client on %s: %s" % (k, g.name, why))
    tap.ok(not problems, "connection cut at each of the %d byte positions of %s: "
           "closed cleanly, good client answered after each" % (len(frame), what),
           "\n".join(problems[:10]))


def test_main(main, pki, goods):
    der = pki.alice.der
    hello = S.hello_frame()
    notify = cert_notify(77, 78, cert=os.urandom(40), sni="cut.test", host="cut.test")

    cut_cases(main, goods, hello, b"", "a HAPROXY-HELLO", [])
    cut_cases(main, goods, notify, hello, "a NOTIFY after HELLO", [S.AGENT_HELLO])

    # Frame length problems.
    error_case(main, goods, "length 16381 over the negotiated 16380 (header only)",
               S.ST_TOO_BIG, struct.pack(">I", 16381) + b"\x03\x00\x00\x00\x01\x01\x01")
    # The agent's own limit is 131072: it must enforce the negotiated one.
    error_case(main, goods, "complete 5000-byte NOTIFY after negotiating 4096",
               S.ST_TOO_BIG, cert_notify(2, 2, cert=os.urandom(4900), sni="x.test",
                                         host="x.test"), offer=4096)
    error_case(main, goods, "length 0xFFFFFFFF after HELLO",
               S.ST_TOO_BIG, b"\xff\xff\xff\xff\x03\x00\x00\x00\x01")
    error_case(main, goods, "length 0x7FFFFFFF before HELLO",
               S.ST_TOO_BIG, b"\x7f\xff\xff\xff\x01\x00\x00\x00\x01", hello=False)
    error_case(main, goods, "length 0", S.ST_INVALID, b"\x00\x00\x00\x00")
    error_case(main, goods, "length 0 before HELLO", S.ST_INVALID, b"\x00\x00\x00\x00",
               hello=False)
    error_case(main, goods, "length 1 (below the header size)", S.ST_INVALID,
               b"\x00\x00\x00\x01\x03")
    error_case(main, goods, "length 3 (below the header size)", S.ST_INVALID,
               b"\x00\x00\x00\x03\x03\x00\x00")
    error_case(main, goods, "length 6 (type, flags, stream-id, no frame-id)",
               S.ST_INVALID, b"\x00\x00\x00\x06\x03\x00\x00\x00\x01\x01")

    # Frame types and sequencing.
    error_case(main, goods, "unknown frame type 50", S.ST_INVALID,
               raw_frame(50, b"", sid=b"\x01", fid=b"\x01"))
    error_case(main, goods, "agent-only frame type (ACK) sent by the peer", S.ST_INVALID,
               raw_frame(S.ACK, b"", sid=b"\x01", fid=b"\x01"))
    error_case(main, goods, "UNSET (fragment continuation) frame", {S.ST_INVALID,
               S.ST_FRAG_NOT_SUPPORTED}, raw_frame(S.UNSET, b"", sid=b"\x01", fid=b"\x01"))
    error_case(main, goods, "NOTIFY before HELLO", S.ST_INVALID,
               cert_notify(1, 1, cert=der), hello=False)
    error_case(main, goods, "second HELLO", S.ST_INVALID, S.hello_frame())
    error_case(main, goods, "NOTIFY without FIN", S.ST_FRAG_NOT_SUPPORTED,
               S.notify_frame(3, 4, [S.check_cert_message(cert=der)], flags=0))
    error_case(main, goods, "HELLO without FIN", {S.ST_INVALID, S.ST_FRAG_NOT_SUPPORTED},
               S.encode_frame(S.HAPROXY_HELLO, S.hello_frame()[11:], flags=0),
               hello=False)
    error_case(main, goods, "two NOTIFYs then one without FIN: ACKs (if any) then status 10",
               S.ST_FRAG_NOT_SUPPORTED,
               cert_notify(1, 1) + cert_notify(2, 2) +
               S.notify_frame(3, 3, [S.check_cert_message()], flags=0),
               allow_before=(S.ACK,))

    # Malformed payloads.
    eleven = b"\xff" + b"\x80" * 9 + b"\x00"
    error_case(main, goods, "11-byte varint in stream-id", S.ST_INVALID,
               raw_frame(S.NOTIFY, S.encode_messages([S.check_cert_message()]),
                         sid=eleven, fid=b"\x01"))
    error_case(main, goods, "11-byte varint as a HELLO item's name length", S.ST_INVALID,
               raw_frame(S.HAPROXY_HELLO, eleven + b"x"), hello=False)
    error_case(main, goods, "message name length past the frame end", S.ST_INVALID,
               raw_frame(S.NOTIFY, S.encode_varint(200) + b"check-client-cert\x00",
                         sid=b"\x05", fid=b"\x05"))
    error_case(main, goods, "cert BINARY length past the frame end", S.ST_INVALID,
               raw_frame(S.NOTIFY, S.encode_name("check-client-cert") + b"\x01" +
                         S.encode_name("cert") + b"\x09" + S.encode_varint(5000) + b"abc",
                         sid=b"\x05", fid=b"\x06"))
    error_case(main, goods, "reserved data type 10 in an argument", S.ST_INVALID,
               raw_frame(S.NOTIFY, S.encode_name("check-client-cert") + b"\x01" +
                         S.encode_name("cert") + b"\x0a\x01\x02",
                         sid=b"\x05", fid=b"\x07"))
    error_case(main, goods, "argument count 3 with one argument present", S.ST_INVALID,
               raw_frame(S.NOTIFY, S.encode_name("check-client-cert") + b"\x03" +
                         S.encode_name("sni") + S.encode_typed("a.test"),
                         sid=b"\x05", fid=b"\x08"))
    error_case(main, goods, "HELLO max-frame-size typed STRING", {S.ST_INVALID,
               S.ST_NO_FRAME_SIZE, S.ST_BAD_FRAME_SIZE},
               S.hello_frame(max_frame_size="16380"), hello=False)
    # Fixed seed: the status depends on which bytes land in the type and
    # flags fields, so keep it reproducible. Any "bad frame" status is fine.
    garbage = random.Random(5).randbytes(256)
    error_case(main, goods, "random garbage instead of HELLO",
               {S.ST_TOO_BIG, S.ST_INVALID, S.ST_FRAG_NOT_SUPPORTED},
               b"\x00\x00\x01\x00" + garbage, hello=False)

    # Valid but unusual: must be answered.
    many = [("cert", der)] + [("x%d" % i, S.UInt32(i)) for i in range(254)]
    # check-client-cert-sni: no Host needed, so the answer is about the
    # arguments, not the Host rule (check-client-cert without a Host is
    # host_mismatch, tested in test_spop_protocol.py).
    ack_case(main, goods, "255 arguments in one message -> answered",
             [S.notify_frame(9, 10, [("check-client-cert-sni", many)])],
             [((9, 10), {"present": (True, S.T_BOOL), "result": ("no_policy", S.T_STRING)})])
    ack_case(main, goods, "stream-id/frame-id reused by two pipelined NOTIFYs -> both answered",
             [cert_notify(5, 5, cert=der), cert_notify(5, 5)],
             [((5, 5), {}), ((5, 5), {})])
    ack_case(main, goods, "garbage DER without a policy -> ACK no_policy, present",
             [cert_notify(11, 1, cert=os.urandom(300), sni="x.test", host="x.test")],
             [((11, 1), {"result": ("no_policy", S.T_STRING), "present": (True, S.T_BOOL)})])
    ack_case(main, goods, "garbage DER on an enforce host -> ACK deny/malformed",
             [cert_notify(12, 1, cert=b"\x30\x82\xff\xff" + os.urandom(300), sni=API, host=API)],
             [((12, 1), {"result": ("malformed", S.T_STRING), "action": ("deny", S.T_STRING),
                         "present": (True, S.T_BOOL)})])
    ack_case(main, goods, "a valid cert on the enforce host still passes (sanity)",
             [cert_notify(13, 1, cert=der, sni=API, host=API)],
             [((13, 1), {"result": ("ok", S.T_STRING), "action": ("allow", S.T_STRING)})])

    big = os.urandom(65536)
    error_case(main, goods, "64 KiB certificate with max-frame-size 16380", S.ST_TOO_BIG,
               cert_notify(14, 1, cert=big, sni=API, host=API))
    ack_case(main, goods, "64 KiB garbage certificate with max-frame-size 131072 -> deny/malformed",
             [cert_notify(15, 1, cert=big, sni=API, host=API)],
             [((15, 1), {"result": ("malformed", S.T_STRING), "action": ("deny", S.T_STRING)})],
             offer=131072)


def test_non_reader(main, goods):
    """A peer that pipelines NOTIFYs and never reads: closed once the
    agent has more than max-output (8k) buffered for it."""
    hostile_count["other"] += 1
    desc = "peer that never reads is closed beyond max-output 8k"
    c = S.Client(main.addr, rcvbuf=4096)
    peer = c.local_addr()
    closed_by = None
    sent = 0
    t0 = time.monotonic()
    problems = []
    try:
        c.hello()
        batch = b"".join(cert_notify(100 + i, 1, sni="x.test", host="x.test")
                         for i in range(200))
        c.sock.setblocking(False)
        deadline = t0 + 12.0
        view = memoryview(b"")
        while time.monotonic() < deadline and sent < MAX_FLOOD_BYTES:
            if not view:
                view = memoryview(batch)
            try:
                n = c.sock.send(view)
                view = view[n:]
                sent += n
                continue
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError) as e:
                closed_by = type(e).__name__
                break
            # Our send buffer is full: the agent stopped reading (or is
            # slow). Keep the good client busy meanwhile, then wait.
            for g in goods:
                ok, why = g.ping()
                if not ok:
                    problems.append("good client on %s during the flood: %s" % (g.name, why))
            select.select([], [c.sock], [], 0.2)
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                closed_by = errno.errorcode.get(err, str(err))
                break
        tap.ok(closed_by is not None and not problems,
               "%s (closed after %.1fs, %d bytes sent: %s)" % (desc, time.monotonic() - t0, sent, closed_by),
               "\n".join(problems[:5]) or "still open after %.1fs and %d bytes" % (
                   time.monotonic() - t0, sent))
    except Exception as e:
        tap.ok(False, desc, "%s: %s" % (type(e).__name__, e))
    finally:
        c.close()
    lines = main.wait_log_for_peer(*peer)
    tap.ok(len(lines) == 1, "%s: logged once with the peer" % desc,
           "%d lines:\n%s" % (len(lines), "\n".join(lines[:5])))
    after_case(goods, desc)


def test_idle(limits, goods):
    """1 byte per second (mid-HELLO and mid-NOTIFY) and a silent peer after
    HELLO: each closed at the 2s idle timeout with status 2, while the good
    client (pinging every 0.3s) is never closed."""
    hello = S.hello_frame()
    notify = cert_notify(1, 1, sni="x.test", host="x.test")
    peers = []
    for what in ("1 byte/s inside a HELLO", "1 byte/s inside a NOTIFY", "silent after HELLO"):
        hostile_count["other"] += 1
        c = S.Client(limits.addr, timeout=3.0)
        if what != "1 byte/s inside a HELLO":
            c.hello()
        data = hello if what == "1 byte/s inside a HELLO" else (
            notify if what == "1 byte/s inside a NOTIFY" else b"")
        peers.append({"what": what, "c": c, "data": data, "pos": 0,
                      "t0": time.monotonic(), "next": time.monotonic(), "closed": None,
                      "frames": [], "peer": c.local_addr(), "err": None})
    problems = []
    end = time.monotonic() + 6.0
    next_ping = time.monotonic()
    while time.monotonic() < end and any(p["closed"] is None for p in peers):
        now = time.monotonic()
        for p in peers:
            if p["closed"] is not None:
                continue
            if p["data"] and now >= p["next"] and p["pos"] < len(p["data"]):
                try:
                    p["c"].sock.send(p["data"][p["pos"]:p["pos"] + 1])
                    p["pos"] += 1
                except OSError as e:
                    p["err"] = str(e)
                p["next"] = now + 1.0
        if now >= next_ping:
            for g in goods:
                ok, why = g.ping()
                if not ok:
                    problems.append("good client on %s: %s" % (g.name, why))
            next_ping = time.monotonic() + 0.3
        socks = [p["c"].sock for p in peers if p["closed"] is None]
        r, _, _ = select.select(socks, [], [], 0.05)
        for p in peers:
            if p["closed"] is None and p["c"].sock in r:
                try:
                    f = p["c"].recv_frame(0.5)
                    p["frames"].append(f)
                except S.Closed as e:
                    p["closed"] = (time.monotonic() - p["t0"], e.how)
                except Exception as e:
                    p["closed"] = (time.monotonic() - p["t0"], "%s: %s" % (type(e).__name__, e))
    for p in peers:
        desc = "peer %s closed at the 2s idle timeout" % p["what"]
        bad = []
        if p["closed"] is None:
            bad.append("still open after 6s")
        else:
            t, how = p["closed"]
            if not 1.5 <= t <= 4.5:
                bad.append("closed after %.2fs" % t)
            if how not in ("eof", "reset"):
                bad.append("closed by %s" % how)
        fr = p["frames"]
        if len(fr) != 1 or fr[0].type != S.AGENT_DISCONNECT:
            bad.append("frames %r, expected one AGENT-DISCONNECT" % fr)
        else:
            st = fr[0].kv().get("status-code")
            if st != S.ST_TIMEOUT:
                bad.append("status-code %r, expected 2" % st)
        tap.ok(not bad, desc + " with AGENT-DISCONNECT status 2 (%.2fs)" % (
            p["closed"][0] if p["closed"] else -1), "; ".join(bad))
        p["c"].close()
        check_logged_once(limits, p["peer"], desc)
    tap.ok(not problems, "good clients answered every 0.3s while the slow peers dribbled",
           "\n".join(problems[:5]))
    after_case(goods, "idle timeouts")


def test_storm(limits, goods, max_conn=20):
    """Beyond max-connections the extra connections are closed promptly;
    once they are gone, new connections work again."""
    hostile_count["other"] += 1
    desc = "connection storm of 40 with max-connections %d" % max_conn
    conns = []
    peers = {}
    problems = []
    try:
        for _ in range(40):
            try:
                c = S.Client(limits.addr, timeout=2.0)
                conns.append(c)
                peers[id(c)] = c.local_addr()
            except OSError as e:
                conns.append(None)
                problems.append("connect failed: %s" % e)
        for c in conns:
            if c is None:
                continue
            try:
                c.send(S.hello_frame())
            except OSError:
                pass  # closed at accept: detected below
        answered, closed, other = [], [], []
        deadline = time.monotonic() + 3.0
        for c in conns:
            if c is None:
                continue
            try:
                f = c.recv_frame(max(0.05, deadline - time.monotonic()))
                if f.type == S.AGENT_HELLO:
                    answered.append(c)
                else:
                    # An AGENT-DISCONNECT before closing is a clean close.
                    frames, how = c.read_until_close(max(0.05, deadline - time.monotonic()))
                    (closed if how in ("eof", "reset") else other).append(c)
            except S.Closed:
                closed.append(c)
            except Exception as e:
                other.append(c)
                problems.append("%s: %s" % (type(e).__name__, e))
        # One slot is the good client's.
        tap.ok(len(answered) == max_conn - 1 and len(closed) == 40 - len(answered)
               and not other,
               "%s: %d answered (expected %d), %d closed promptly, %d hung" % (
                   desc, len(answered), max_conn - 1, len(closed), len(other)),
               "\n".join(problems[:5]))
        rejected_peers = [peers[id(c)] for c in closed]
        ok, why = True, None
        for g in goods:
            ok2, why2 = g.ping()
            ok, why = ok and ok2, why or why2
        tap.ok(ok, "%s: good client answered during the storm" % desc, why)
        logged = [p for p in rejected_peers if limits.log_lines_for_peer(*p)]
        tap.ok(logged or any("connection" in l.lower() and "limit" in l.lower() or
                             "max-connections" in l for l in limits.log().splitlines()),
               "%s: the refusals are logged" % desc,
               "no log line names a refused peer or the limit")
    finally:
        for c in conns:
            if c is not None:
                c.close()
    # Once they are gone, max_conn - 1 new connections must all be served.
    ok_again = False
    why = ""
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3.0 and not ok_again:
        fresh = []
        try:
            for _ in range(max_conn - 1):
                c = S.Client(limits.addr, timeout=2.0)
                fresh.append(c)
                c.hello()
            f = fresh[-1].notify(1, 1, [S.check_cert_message()])
            ok_again = f.vars().get("present") == (False, S.T_BOOL)
        except Exception as e:
            why = "%s: %s" % (type(e).__name__, e)
            time.sleep(0.1)
        finally:
            for c in fresh:
                c.close()
        for g in goods:
            g.ping()
    tap.ok(ok_again, "after the storm, %d new connections are all served again (%.2fs)" % (
        max_conn - 1, time.monotonic() - t0), why)
    after_case(goods, desc)


def main():
    A.require_binary(tap)
    A.arm_global_timeout(TIME_BOUND)
    ws = A.Workspace("mtls-spop-hostile-")
    goods = []
    try:
        pki = certs.Pki(ws.dir)
        main_agent = ws.agent(name="main", config=MAIN_CONFIG)
        main_agent.start()
        good_main = Good(main_agent, pki.alice.der, "main")
        goods.append(good_main)

        test_main(main_agent, pki, [good_main])
        test_non_reader(main_agent, [good_main])

        limits = ws.agent(name="limits", config=LIMITS_CONFIG)
        limits.start()
        good_limits = Good(limits, pki.alice.der, "limits")
        goods.append(good_limits)
        test_idle(limits, [good_limits, good_main])
        test_storm(limits, [good_limits, good_main])

        for g in goods:
            tap.ok(g.sent == g.acked and g.reconnects == 0,
                   "good client on %s: %d NOTIFYs, %d ACKs, none lost" % (g.name, g.sent, g.acked),
                   "%d reconnects" % g.reconnects)
            g.close()
        for a in ws.agents:
            tap.ok(a.alive(), "%s agent still running after every hostile case" % a.name)
            san = a.sanitizer_errors()
            code = a.stop()
            tap.ok(code == 0, "%s agent exits 0 on SIGTERM" % a.name, "exit status %r" % code)
            tap.ok(not san and not a.sanitizer_errors(), "%s agent: no sanitizer report" % a.name,
                   "\n".join((san or a.sanitizer_errors())[:10]))
    except A.GlobalTimeout as e:
        tap.ok(False, "test file finished within %ds" % TIME_BOUND, str(e))
    except Exception:
        tap.ok(False, "test file ran without an unexpected exception", traceback.format_exc())
    finally:
        signal.alarm(0)
        for g in goods:
            g.close()
        if tap.failed:
            for a in ws.agents:
                tap.diag("--- %s stderr (tail) ---" % a.name)
                tap.diag(a.log()[-3000:])
        ws.cleanup()
    print("# %d hostile cases (%d byte-position cuts, %d others)" % (
        hostile_count["cut"] + hostile_count["other"], hostile_count["cut"],
        hostile_count["other"]))
    print("# %d passed, %d failed" % (tap.passed, tap.failed))
    sys.exit(1 if tap.failed else 0)


if __name__ == "__main__":
    main()
