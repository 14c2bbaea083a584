#!/usr/bin/env python3
"""Issue 15: two agents with [store] backend = etcd on a 3-member loopback
etcd cluster (etcdlib), no HAProxy; verdicts through POST /v1/verify.
Convergence (p50/p99 over 100 changes), concurrent writes with conflicts,
member loss, total loss (503, snapshot, restart), compaction resync, invalid
objects written with etcdctl, start without snapshot. Skips when etcd is
not installed."""
import concurrent.futures
import json
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agentctl  # noqa: E402
import apilib as A  # noqa: E402
import etcdlib  # noqa: E402

etcdlib.skip_if_unavailable()
tap = agentctl.Tap()
PREFIX = "/mtls-spoa/"
HOST = "fleet.example.com"


def hp(p):
    return "/v1/hosts/" + urllib.parse.quote(p, safe="")


def conf(state, tokens, endpoints):
    return ("[agent]\nstate-dir = %s\nadmin-token-file = %s\nlog-level = info\n\n"
            "[store]\nbackend = etcd\nendpoints = %s\nprefix = %s\ntimeout = 2s\n"
            % (state, tokens, " ".join(endpoints), PREFIX))


def verdict(agent, cert):
    r = agent.api("POST", "/v1/verify", {"host": HOST, "certificate": cert}, timeout=3)
    if r.status != 200 or not isinstance(r.json, dict):
        return None
    return r.json.get("variables", {}).get("action")


def status(agent):
    try:
        r = agent.api("GET", "/v1/status", timeout=3)
        return (r.json or {}).get("store", {})
    except OSError:
        return {}


def wait(pred, timeout, step=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def readyz(agent):
    try:
        return A.request(agent.admin_port, "GET", "/readyz", token=None, timeout=2).status
    except OSError:
        return None


def listing(agent):
    out = {}
    for kind in ("cas", "hosts"):
        r = agent.api("GET", "/v1/" + kind, timeout=5)
        if r.status != 200:
            return None
        for it in r.json.get("items", []):
            out[kind + "/" + it.get("name", it.get("pattern", "?"))] = it
    return out


def etcd_keys(c):
    return sorted(k[len(PREFIX):] for k in c.get_prefix(PREFIX))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main(ws):
    pki = A.mkpki(os.path.join(ws.dir, "pki"))
    P = lambda n: os.path.join(pki, n)  # noqa: E731
    ca_a, ca_b = A.read(P("tenant-a-ca.pem")), A.read(P("tenant-b-ca.pem"))
    good_b, rogue = A.read(P("b-valid.crt")), A.read(P("rogue.crt"))
    tokens = os.path.join(ws.dir, "tokens")
    A.write_tokens(tokens)
    cl = etcdlib.Cluster(os.path.join(ws.dir, "etcd")).start()
    ws.cluster = cl
    tap.ok(True, "3-member etcd cluster healthy on loopback (%s)" % " ".join(cl.endpoints()))
    st1, st2 = os.path.join(ws.dir, "s1"), os.path.join(ws.dir, "s2")
    a1 = A.ApiAgent(ws.dir, conf(st1, tokens, cl.endpoints([0, 1, 2])), name="agent1")
    a2 = A.ApiAgent(ws.dir, conf(st2, tokens, cl.endpoints([2, 1, 0])), name="agent2")
    ws.agents += [a1, a2]
    a1.start()
    a2.start()
    tap.ok(status(a1).get("state") == "in_sync" and status(a2).get("state") == "in_sync",
           "both agents start with backend = etcd, store.state in_sync",
           "%r %r" % (status(a1), status(a2)))

    # ---------------------------------------------------------- a. convergence
    r1 = a1.api("PUT", "/v1/cas/partner-b", {"certificates": ca_b})
    r2 = a1.api("PUT", "/v1/cas/partner-a", {"certificates": ca_a})
    r3 = a1.api("PUT", "/v1/cas/partner-b/hostnames", {"hostnames": [HOST]})
    tap.ok(all(r.status in (200, 201) for r in (r1, r2, r3)),
           "CA upload + association through agent 1: 2xx", "%r %r %r" % (r1, r2, r3))
    tap.ok(wait(lambda: verdict(a2, rogue) == "log", 5),
           "agent 2 sees the association: a rogue certificate passes in log mode",
           repr(verdict(a2, rogue)))
    lat, missed = [], 0
    for i in range(100):
        mode = "enforce" if i % 2 == 0 else "log"
        want = "deny" if mode == "enforce" else "log"
        r = a1.api("PATCH", hp(HOST), {"mode": mode})
        t0 = time.monotonic()
        if r.status != 200:
            missed += 1
            continue
        if wait(lambda: verdict(a2, rogue) == want, 5, step=0.001):
            lat.append((time.monotonic() - t0) * 1000)
        else:
            missed += 1
    if lat:
        tap.diag("convergence: p50 %.1f ms p99 %.1f ms over %d changes" % (pct(lat, 50), pct(lat, 99), len(lat)))
    tap.ok(missed == 0 and lat and pct(lat, 99) <= 1000,
           "100 changes through agent 1 reach agent 2's verdicts, p99 <= 1000 ms",
           "missed %d" % missed)
    tap.ok(verdict(a2, good_b) == "allow" and verdict(a1, good_b) == "allow",
           "a good certificate passes on both agents")

    # ----------------------------------------------------- b. concurrent writes
    contested = ["c%d.fleet.example.com" % i for i in range(5)]
    for h in contested:
        a1.api("PUT", hp(h), {"ca": ["partner-a"], "mode": "log"})
    agents = [a1, a2]
    results = []

    def job(n):
        a = agents[n % 2]
        if n % 4 == 0:
            h = contested[n % len(contested)]
            g = a.api("GET", hp(h), timeout=10)
            tag = g.hdr("etag")
            mode = "enforce" if n % 8 == 0 else "log"
            r = a.api("PATCH", hp(h), {"mode": mode, "verify_depth": 1 + n % 30},
                      headers={"If-Match": tag}, timeout=10)
            return ("contested", h, n, r.status, tag)
        h = "w%d.fleet.example.com" % n
        r = a.api("PUT", hp(h), {"ca": ["partner-b"], "mode": "log", "verify_depth": 1 + n % 30},
                  timeout=10)
        return ("single", h, n, r.status, None)
    with concurrent.futures.ThreadPoolExecutor(32) as ex:
        results = list(ex.map(job, range(1000)))
    statuses = {}
    for res in results:
        statuses[res[3]] = statuses.get(res[3], 0) + 1
    tap.diag("1000 writes: %s" % statuses)
    tap.ok(all(s in (200, 201, 412) for s in statuses), "1000 concurrent writes: only 2xx/412, no 5xx", statuses)
    kv = cl.get_prefix(PREFIX)
    bad = []
    for kind, h, n, st, tag in results:
        if kind == "single" and st in (200, 201):
            v = kv.get(PREFIX + "hosts/" + h)
            if v is None or json.loads(v[0]).get("verify_depth") != 1 + n % 30:
                bad.append(h)
    tap.ok(not bad, "every single-writer 2xx is etcd's final value", bad[:5])
    ok412 = all(st != 412 or any(r[0] == "contested" and r[1] == h and r[3] == 200 and r[2] != n
                                 for r in results) for _, h, n, st, _t in results)
    tap.ok(ok412, "every 412 had another successful write to that key")
    want = etcd_keys(cl)
    tap.ok(wait(lambda: listing(a1) is not None and listing(a1) == listing(a2)
                and sorted(listing(a1)) == want, 10, step=0.2),
           "both agents converge to etcd's keys and objects")

    # ------------------------------------------------ e. invalid etcdctl writes
    m0 = A.metrics(a2.admin_port).get("mtls_spoa_store_rejected_objects_total", 0)
    before = listing(a2)
    v0 = verdict(a2, rogue)
    bad_objs = {PREFIX + "hosts/bad-json.example.com": "{not json",
                PREFIX + "hosts/unknown-ca.example.com": json.dumps({"ca": ["nope"], "mode": "log"}),
                PREFIX + "cas/not-a-ca": json.dumps({"name": "not-a-ca", "certificates": good_b})}
    for k, v in bad_objs.items():
        cl.put(k, v)
    tap.ok(wait(lambda: A.metrics(a2.admin_port).get("mtls_spoa_store_rejected_objects_total", 0) >= m0 + 3, 5, 0.1),
           "3 invalid objects written with etcdctl: rejected_objects_total +3")
    rej = [x.get("key") for x in status(a2).get("rejected", [])]
    tap.ok(all(k in rej for k in bad_objs), "/v1/status store.rejected lists the keys", rej)
    tap.ok("store: rejected" in a2.log(), "log line 'store: rejected'")
    tap.ok(listing(a2) == before and verdict(a2, rogue) == v0, "live configuration unchanged")
    for k in bad_objs:
        cl.delete(k)

    # ------------------------------------------------------ c. member failures
    # The member dies while writes through both agents are under way.
    sts = []

    def writer(agent, base):
        for i in range(40):
            sts.append(agent.api("PUT", hp("k%d.fleet.example.com" % (base + i)),
                                 {"ca": ["partner-a"], "mode": "log"}, timeout=10).status)

    ws_threads = [threading.Thread(target=writer, args=(a, b)) for a, b in ((a1, 0), (a2, 100))]
    for t in ws_threads:
        t.start()
    wait(lambda: len(sts) >= 20, 10)
    cl.kill(0)
    killed_at = len(sts)
    for t in ws_threads:
        t.join(60)
    tap.ok(len(sts) == 80 and all(s in (200, 201) for s in sts) and killed_at < 80,
           "one etcd member killed under write load (after %d of 80): every write 2xx" % killed_at, sts)
    cl.restart(0)
    v_before = verdict(a2, rogue)
    listing_before = listing(a1)
    cl.kill_all()
    tap.ok(wait(lambda: status(a1).get("state") == "reconnecting", 5, 0.1),
           "all members down: store.state reconnecting", status(a1))
    tap.ok(verdict(a1, rogue) == v_before and verdict(a2, rogue) == v_before
           and readyz(a1) == 200 and readyz(a2) == 200,
           "all members down: verdicts and /readyz 200 on both")
    r = a1.api("PATCH", hp(HOST), {"mode": "enforce" if v_before == "log" else "log"}, timeout=10)
    tap.ok(r.status == 503 and (r.json or {}).get("error", {}).get("status") == 503,
           "a write with etcd down: 503 with a JSON error", repr(r))
    tap.ok(listing(a1) == listing_before, "and nothing changed")
    a2.kill()
    a2.start()
    tap.ok(status(a2).get("state") == "snapshot" and verdict(a2, rogue) == v_before and readyz(a2) == 200,
           "agent 2 restarted with etcd down serves its snapshot", status(a2))
    cl.restart_all()
    cl.put(PREFIX + "hosts/back.example.com", json.dumps({"ca": ["partner-a"], "mode": "log"}))
    tap.ok(wait(lambda: all(status(a).get("state") == "in_sync" and
                            a.api("GET", hp("back.example.com")).status == 200 for a in (a1, a2)), 10, 0.1),
           "etcd back: both in_sync and see a write made with etcdctl")

    # ------------------------------------------------------ d. compaction
    a3st = os.path.join(ws.dir, "s3")
    a3 = A.ApiAgent(ws.dir, conf(a3st, tokens, cl.endpoints([2])), name="agent3")
    ws.agents.append(a3)
    a3.start(timeout=60)
    res0 = A.metrics(a3.admin_port).get("mtls_spoa_store_resyncs_total", 0)
    cl.kill(2)
    for i in range(10):
        a1.api("PUT", hp("d%d.fleet.example.com" % i), {"ca": ["partner-b"], "mode": "log"})
    cl.compact(cl.revision())
    cl.restart(2)
    tap.ok(wait(lambda: A.metrics(a3.admin_port).get("mtls_spoa_store_resyncs_total", 0) > res0
                and sorted(listing(a3) or {}) == etcd_keys(cl), 10, 0.1),
           "compaction past agent 3's revision: it resyncs (resyncs_total up, state equals etcd's)")
    a3.kill()

    # ------------------------------------------------- f. no snapshot, etcd down
    cl.kill_all()
    a4 = A.ApiAgent(ws.dir, conf(os.path.join(ws.dir, "s4"), tokens, cl.endpoints()), name="agent4")
    ws.agents.append(a4)
    # Not ApiAgent.start: it kills an agent whose /readyz is not 200.
    a4.admin_port = agentctl.free_port()
    a4.extra_args = a4.base_args + ["--admin-listen", "127.0.0.1:%d" % a4.admin_port]
    agentctl.Agent.start(a4)
    seen = set()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        seen.add(readyz(a4))
        time.sleep(0.1)
    tap.ok(a4.alive() and seen <= {503, None} and 503 in seen,
           "no snapshot and etcd down: /readyz stays 503 for 3 s", seen)
    cl.restart_all()
    tap.ok(wait(lambda: readyz(a4) == 200, 30, 0.1), "etcd up: /readyz 200")


if __name__ == "__main__":
    A.run_test(tap, "fleet", main, 180)
