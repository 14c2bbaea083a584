#!/usr/bin/env python3
"""The per-connection verdict memo of haproxy-conf/haproxy.cfg, from a
client's side (driven by test_memo.sh; needs Debian's python3-h2).

  memo_client.py interleave OPTS
      1,000 HTTP/2 streams for hosts with different verdicts, interleaved
      on one TLS connection: every answer must be the one its own Host
      gets on a fresh connection
  memo_client.py variants OPTS
      Host spellings and request forms sent after another host's verdict
      is memoized: each answer must be the one it gets on a fresh
      connection (nobody borrows a memo)
  memo_client.py expiry OPTS --agent-pid PID --agent-conf FILE --agent-log FILE
      a reload that changes a verdict reaches an open keep-alive
      connection within memo_ttl
  memo_client.py agentdown OPTS --agent-pid PID
      the agent killed: an open connection keeps its memoized verdict for
      at most memo_ttl, then fails closed
  memo_client.py disabled OPTS
      memo-ttl = 0: no answer comes from a memo
OPTS: --port N --pki DIR --sni NAME --cert NAME

Prints TAP lines ("ok - ..." / "not ok - ...") and "# ..." diagnostics.
"""
import argparse
import os
import random
import re
import signal
import socket
import ssl
import sys
import time

DEADLINE = 10.0
# The memo's own headers (MTLS_VERDICT_HEADERS): they say how the verdict
# was obtained, so they are not part of what must be equal.
MEMO_HEADERS = ("x-mtls-memo", "x-mtls-memo-ttl")


def tap(ok, what):
    print(("ok - " if ok else "not ok - ") + what, flush=True)
    return ok


def diag(text):
    for line in str(text).splitlines():
        print("# " + line, flush=True)


def tls_connect(a, alpn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(a.pki + "/server-ca.pem")
    ctx.load_cert_chain(a.pki + "/" + a.cert + ".pem",
                        a.pki + "/" + a.cert + ".key")
    ctx.set_alpn_protocols([alpn])
    raw = socket.create_connection(("127.0.0.1", a.port), timeout=DEADLINE)
    return ctx.wrap_socket(raw, server_hostname=a.sni)


def verdict_of(status, headers, body):
    """What must be equal between two answers: the status, every verdict
    header (X-Mtls-*, the memo's own left out) and what the backend
    received (the Client-Cert headers, echoed in the body)."""
    v = {"status": status}
    for n, val in headers:
        n = n.lower()
        if n.startswith("x-mtls-") and n not in MEMO_HEADERS:
            v[n] = val
    v["body"] = body if status == "200" else ""
    return v


def memo_hit(headers):
    return any(n.lower() == "x-mtls-memo" and val == "hit"
               for n, val in headers)


class H2Conn:
    """One TLS connection speaking HTTP/2 (h2's header checks off, so any
    :authority and extra headers go out as written)."""

    def __init__(self, a):
        import h2.config
        import h2.connection
        self.s = tls_connect(a, "h2")
        if self.s.selected_alpn_protocol() != "h2":
            raise OSError("ALPN h2 not selected")
        cfg = h2.config.H2Configuration(
            client_side=True, header_encoding=None,
            validate_outbound_headers=False, normalize_outbound_headers=False,
            validate_inbound_headers=False)
        self.c = h2.connection.H2Connection(config=cfg)
        self.c.initiate_connection()
        self.s.sendall(self.c.data_to_send())

    def run(self, specs):
        """Send every stream of `specs` (header lists) before reading any
        answer; return [(status, headers, body)] in the same order."""
        import h2.events
        res = [{"status": "000", "head": [], "body": b"", "done": False}
               for _ in specs]
        ids = {}
        for i, hdrs in enumerate(specs):
            sid = self.c.get_next_available_stream_id()
            ids[sid] = i
            self.c.send_headers(sid, [(n.encode(), v.encode()) for n, v in hdrs],
                                end_stream=True)
        self.s.sendall(self.c.data_to_send())
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end and not all(r["done"] for r in res):
            self.s.settimeout(max(0.05, end - time.monotonic()))
            try:
                chunk = self.s.recv(65536)
            except (socket.timeout, ssl.SSLError, ConnectionError):
                break
            if not chunk:
                break
            for ev in self.c.receive_data(chunk):
                sid = getattr(ev, "stream_id", 0)
                r = res[ids[sid]] if sid in ids else None
                if isinstance(ev, h2.events.ResponseReceived):
                    hd = [(n.decode("latin-1"), v.decode("latin-1"))
                          for n, v in ev.headers]
                    r["status"] = dict(hd).get(":status", "000")
                    r["head"] = [x for x in hd if x[0] != ":status"]
                elif isinstance(ev, h2.events.DataReceived):
                    r["body"] += ev.data
                    self.c.acknowledge_received_data(ev.flow_controlled_length,
                                                     sid)
                elif isinstance(ev, (h2.events.StreamEnded,
                                     h2.events.StreamReset)):
                    r["done"] = True
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    for x in res:
                        x["done"] = True
            out = self.c.data_to_send()
            if out:
                self.s.sendall(out)
        return [(r["status"], r["head"], r["body"].decode("latin-1"))
                for r in res]

    def close(self):
        self.s.close()


def h2_req(host, extra=()):
    return [(":method", "GET"), (":scheme", "https"), (":authority", host),
            (":path", "/")] + list(extra)


class H1Conn:
    """One TLS connection speaking HTTP/1.1, requests written as raw bytes."""

    def __init__(self, a):
        self.s = tls_connect(a, "http/1.1")
        self.buf = b""

    def request(self, raw):
        """Send `raw`, read one answer: (status, headers, body), or
        ("000", [], "") when the connection closed first."""
        self.s.sendall(raw.encode("latin-1"))
        end = time.monotonic() + DEADLINE
        while b"\r\n\r\n" not in self.buf:
            if not self._more(end):
                return "000", [], ""
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ")[1]
        headers = [tuple(x.strip() for x in l.split(":", 1)) for l in lines[1:]]
        cl = int(next((v for n, v in headers if n.lower() == "content-length"), "0"))
        while len(rest) < cl:
            self.buf = head + b"\r\n\r\n" + rest
            if not self._more(end):
                break
            head, _, rest = self.buf.partition(b"\r\n\r\n")
        self.buf = rest[cl:]
        return status, headers, rest[:cl].decode("latin-1")

    def _more(self, end):
        self.s.settimeout(max(0.05, end - time.monotonic()))
        try:
            chunk = self.s.recv(65536)
        except (socket.timeout, ssl.SSLError, ConnectionError):
            return False
        if not chunk:
            return False
        self.buf += chunk
        return True

    def close(self):
        self.s.close()


def h1_req(host, target="/", extra=""):
    return "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (target, host, extra)


def fresh_h2(a, spec):
    c = H2Conn(a)
    try:
        return c.run([spec])[0]
    finally:
        c.close()


HOSTS = ["a.example.com", "b.example.com", "c.example.com", "d.example.com",
         "A.Example.COM:443"]


def cmd_interleave(a):
    want = {}
    for h in HOSTS:
        st, hd, body = fresh_h2(a, h2_req(h))
        want[h] = verdict_of(st, hd, body)
        diag("fresh connection, %s: HTTP %s action=%s result=%s policy=%s" % (
            h, st, want[h].get("x-mtls-action"), want[h].get("x-mtls-result"),
            want[h].get("x-mtls-policy")))
    kinds = {(w["status"], w.get("x-mtls-action"), w.get("x-mtls-result"),
              w.get("x-mtls-policy")) for w in want.values()}
    tap(len({k[1] for k in kinds}) == 3 and len(kinds) == len(HOSTS) - 1,
        "the hosts have different verdicts (allow, deny and log; %d distinct)"
        % len(kinds))
    # Streams in runs of 1..6 for one host, hosts in random order, sent in
    # waves of 1..100 concurrent streams (HAProxy's default limit), all on
    # one connection.
    # The last 15 go one at a time, three per host, so that every host's
    # verdict is also answered from the memo (earlier, other hosts' streams
    # may always have replaced it first).
    rnd = random.Random(a.seed)
    seq = []
    while len(seq) < 1000 - 3 * len(HOSTS):
        seq += [rnd.choice(HOSTS)] * rnd.randint(1, 6)
    seq = seq[:1000 - 3 * len(HOSTS)]
    waves = []
    while sum(map(len, waves)) < len(seq):
        i = sum(map(len, waves))
        waves.append(seq[i:i + rnd.randint(1, 100)])
    waves += [[h] for h in HOSTS for _ in range(3)]
    conn = H2Conn(a)
    mismatches, answered, hits = 0, 0, {h: 0 for h in HOSTS}
    for wave in waves:
        for h, (st, hd, body) in zip(wave, conn.run([h2_req(h) for h in wave])):
            answered += st != "000"
            got = verdict_of(st, hd, body)
            if got != want[h]:
                mismatches += 1
                if mismatches <= 3:
                    diag("stream for %s: got %r, want %r" % (h, got, want[h]))
            hits[h] += memo_hit(hd)
    conn.close()
    diag("memo hits per host: %s" % ", ".join("%s %d" % kv for kv in hits.items()))
    tap(answered == 1000, "1000 interleaved streams on one connection answered "
        "(%d)" % answered)
    tap(mismatches == 0, "1000 interleaved streams: %d mismatches (every "
        "stream got its own Host's verdict)" % mismatches)
    tap(all(n > 0 for n in hits.values()),
        "the memo answered streams of every host (%d of 1000)" % sum(hits.values()))


# Requests sent after a.example.com's verdict was memoized on the same
# connection: (what, request, may it be a memo hit). Only a request whose
# Host field, as the agent would receive it (req.fhdr(host)), is exactly
# "a.example.com" may be answered from the memo; every answer must be the
# one the same request gets on a fresh connection.
VARIANTS = [
    ("another host", h1_req("b.example.com"), False),
    ("the same host in capitals", h1_req("A.EXAMPLE.COM"), False),
    ("the same host with a port", h1_req("a.example.com:443"), False),
    ("the same host with a trailing dot", h1_req("a.example.com."), False),
    ("an absolute URI naming another host",
     h1_req("a.example.com", "https://b.example.com/"), False),
    ("an absolute URI naming the same host",
     h1_req("a.example.com", "https://a.example.com/"), True),
    ("a duplicate Host", h1_req("a.example.com", extra="Host: b.example.com\r\n"), False),
    ("a duplicate Host, the same name (accepted as one Host)",
     h1_req("a.example.com", extra="Host: a.example.com\r\n"), True),
    ("a Host list", h1_req("a.example.com, b.example.com"), False),
    ("a Host with a space before the port", h1_req("a.example.com :443"), False),
    ("an empty Host", h1_req(""), False),
    ("a Host with a delimiter of the memo", h1_req("a.example.com|x"), False),
    ("a request without Host (HTTP/1.0)", "GET / HTTP/1.0\r\n\r\n", False),
]
H2_VARIANTS = [
    ("HTTP/2 :authority of another host", h2_req("b.example.com"), False),
    # HAProxy keeps :authority and drops the host header.
    ("HTTP/2 :authority and a host header of another host",
     h2_req("a.example.com", [("host", "b.example.com")]), True),
    ("HTTP/2 host header only, another host",
     [(":method", "GET"), (":scheme", "https"), (":path", "/"),
      ("host", "b.example.com")], False),
    ("HTTP/2 :authority in capitals", h2_req("A.EXAMPLE.COM"), False),
]


def check_variant(what, want, got_all, warm_hit, may_hit):
    got = verdict_of(*got_all)
    hit = memo_hit(got_all[1])
    if not tap(got == want and warm_hit and (may_hit or not hit),
               "memo of a.example.com, then %s: the answer of a fresh "
               "connection (HTTP %s, %s)" % (what, want["status"],
                                             "memo hit" if hit else "agent")):
        diag("got %r, want %r, warm hit %s" % (got, want, warm_hit))


def cmd_variants(a):
    warm = h1_req("a.example.com")
    for what, raw, may_hit in VARIANTS:
        c = H1Conn(a)
        want = verdict_of(*c.request(raw))
        c.close()
        c = H1Conn(a)
        c.request(warm)
        warm_hit = memo_hit(c.request(warm)[1])
        got_all = c.request(raw)
        c.close()
        check_variant(what, want, got_all, warm_hit, may_hit)
    for what, spec, may_hit in H2_VARIANTS:
        want = verdict_of(*fresh_h2(a, spec))
        c = H2Conn(a)
        c.run([h2_req("a.example.com")])
        warm_hit = memo_hit(c.run([h2_req("a.example.com")])[0][1])
        got_all = c.run([spec])[0]
        c.close()
        check_variant(what, want, got_all, warm_hit, may_hit)


def header(hd, name):
    return next((v for n, v in hd if n.lower() == name), None)


def cmd_expiry(a):
    c = H1Conn(a)
    req = h1_req("a.example.com")
    st, hd, _ = c.request(req)
    ttl = int(header(hd, "x-mtls-memo-ttl") or 0)
    tap(st == "200" and header(hd, "x-mtls-result") == "ok" and ttl > 0,
        "a.example.com: ok, with memo_ttl %d ms" % ttl)
    hits = sum(memo_hit(c.request(req)[1]) for _ in range(20))
    tap(hits >= 15, "later requests on the keep-alive connection are memo "
        "hits (%d of 20)" % hits)
    # The change: a.example.com trusts tenant B only, so a-valid becomes
    # untrusted (mode log: still 200, the result tells).
    conf = open(a.agent_conf).read()
    new = re.sub(r"(\[host a\.example\.com\]\nca = )tenant-a", r"\1tenant-b", conf)
    assert new != conf, "test configuration has no [host a.example.com]"
    with open(a.agent_conf, "w") as f:
        f.write(new)
    n_reloaded = open(a.agent_log).read().count("reloaded")
    os.kill(a.agent_pid, signal.SIGHUP)
    end = time.monotonic() + DEADLINE
    while open(a.agent_log).read().count("reloaded") == n_reloaded:
        if time.monotonic() > end:
            tap(False, "the agent reloaded")
            return
        time.sleep(0.005)
    t_reload = time.monotonic()
    # Poll the open connection until the new verdict shows.
    polls = 0
    while True:
        st, hd, _ = c.request(req)
        polls += 1
        if st == "000":
            tap(False, "the keep-alive connection stays open")
            return
        if header(hd, "x-mtls-result") == "untrusted":
            break
        if time.monotonic() - t_reload > DEADLINE:
            tap(False, "the new verdict reached the open connection")
            return
        time.sleep(0.01)
    took = (time.monotonic() - t_reload) * 1000
    c.close()
    diag("new verdict after %.0f ms, %d requests on the open connection" % (took, polls))
    # Bound: memo_ttl after the reload, plus the poll period and the time
    # to notice the log line (50 ms).
    tap(took <= ttl + 50, "a reload that changes the verdict reaches an open "
        "keep-alive connection within memo_ttl (%.0f ms <= %d + 50 ms)" % (took, ttl))


def cmd_agentdown(a):
    c = H1Conn(a)
    req = h1_req("a.example.com")
    # A fresh memo: the first answer that came from the agent.
    end = time.monotonic() + DEADLINE
    while True:
        st, hd, _ = c.request(req)
        if st == "200" and not memo_hit(hd):
            break
        if time.monotonic() > end:
            tap(False, "a verdict from the agent on the keep-alive connection")
            return
    ttl = int(header(hd, "x-mtls-memo-ttl") or 0)
    os.kill(a.agent_pid, signal.SIGKILL)
    t_kill = time.monotonic()
    hits, late_200, first_503 = 0, 0, None
    while time.monotonic() - t_kill < ttl / 1000 + 3:
        sent = time.monotonic()
        st, hd, _ = c.request(req)
        if st == "200":
            hits += memo_hit(hd)
            # Its memo expired before this request was sent.
            late_200 += sent - t_kill > ttl / 1000 + 0.02
        elif st == "503":
            first_503 = first_503 or (sent - t_kill) * 1000
            break
        elif st == "000":
            c = H1Conn(a)
        time.sleep(0.01)
    c.close()
    diag("agent killed: %d memo hits, first 503 for a request sent %s ms later"
         % (hits, "%.0f" % first_503 if first_503 is not None else "never"))
    tap(hits > 0 and late_200 == 0 and first_503 is not None and
        first_503 <= ttl + 50,
        "agent killed: the open connection keeps its memo for at most "
        "memo_ttl (%d ms), then fails closed (503)" % ttl)


def cmd_disabled(a):
    c = H1Conn(a)
    req = h1_req("a.example.com")
    answers = [c.request(req) for _ in range(5)]
    c.close()
    tap(all(st == "200" for st, _, _ in answers) and
        not any(memo_hit(hd) or header(hd, "x-mtls-memo-ttl") for _, hd, _ in answers),
        "memo-ttl = 0: no memo_ttl sent, no answer from a memo")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["interleave", "variants", "expiry", "agentdown",
                                  "disabled"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pki", required=True)
    p.add_argument("--sni", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--agent-pid", type=int)
    p.add_argument("--agent-conf")
    p.add_argument("--agent-log")
    a = p.parse_args()
    try:
        globals()["cmd_" + a.cmd](a)
    except Exception as e:  # report, never a silent pass
        tap(False, "%s ran to the end (%r)" % (a.cmd, e))


if __name__ == "__main__":
    main()
