#!/usr/bin/env python3
"""Crash consistency of the tenant API's state directory (issue 14).

A loop of writes (CA PUTs with different bundles, a spare CA with or
without a CRL created and deleted, host PUT / PATCH / DELETE, hostnames
associations) runs back to back while the agent is SIGKILLed after a
random delay, KILLS times. After every kill:
  - the state directory loads: `mtls-spoa -c CONF --check` succeeds;
  - the restarted agent's API objects equal either the state before the
    write that was in flight or the state after it, never a mix, and
    every write answered 2xx before the kill is there.
The test keeps a model of the API objects: the state after each
acknowledged write (checked against the agent after every answer) and the
state the in-flight write would make.
"""

import os
import random
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agentctl  # noqa: E402
import apilib as A  # noqa: E402
import certs  # noqa: E402

KILLS = int(os.environ.get("API_CRASH_KILLS", "35"))
CAS = ["c1", "c2", "c3", "c4"]
SPARE = "spare"
HOSTS = ["h%d.example.com" % i for i in range(1, 6)]
ASSOC_ONLY = ["a1.example.com", "a2.example.com"]
MODES_NEEDING_CA = ("enforce", "optional", "log")
tap = agentctl.Tap()


def copy_model(m):
    return {"cas": dict(m["cas"]), "hosts": {k: dict(v) for k, v in m["hosts"].items()}}


def snapshot(agent):
    """The API's objects as the model holds them, or None when the agent
    does not answer."""
    out = {"cas": {}, "hosts": {}}
    r = agent.api("GET", "/v1/cas")
    if r.status != 200:
        return None
    for c in r.json.get("items", []):
        if c.get("source") == "api":
            out["cas"][c["name"]] = tuple(d.get("sha256") for d in c.get("details", [])) + (
                ("crl",) if c.get("crls") else ())
    r = agent.api("GET", "/v1/hosts")
    if r.status != 200:
        return None
    for h in r.json.get("items", []):
        if h.get("source") == "api":
            out["hosts"][h["pattern"]] = {"ca": tuple(sorted(h.get("ca", []))),
                                          "mode": h.get("mode"),
                                          "verify_depth": h.get("verify_depth")}
    return out


class Op:
    """One write: the request and the model state it leads to (`after`,
    equal to `before` when the agent must refuse it: `want` 4xx)."""

    def __init__(self, desc, method, path, body, want, after, ctype=None):
        self.desc = desc
        self.method = method
        self.path = path
        self.body = body
        self.want = want
        self.after = after
        self.ctype = ctype


def next_op(rng, model, bundles, crl_ca):
    after = copy_model(model)
    hosts = after["hosts"]
    kind = rng.choice(["ca", "ca", "host", "patch", "patch", "assoc", "assoc", "delete", "spare"])
    if kind == "spare":
        # SPARE, a CA no host uses: created (sometimes with a CRL) and
        # deleted, so PEM files come and go.
        if SPARE in model["cas"] and rng.random() < 0.5:
            del after["cas"][SPARE]
            return Op("DELETE /v1/cas/%s" % SPARE, "DELETE", "/v1/cas/" + SPARE, None, (204,), after)
        if rng.random() < 0.5:
            pem, shas, crl = crl_ca
            after["cas"][SPARE] = shas + ("crl",)
            return Op("PUT /v1/cas/%s (with a CRL)" % SPARE, "PUT", "/v1/cas/" + SPARE,
                      {"certificates": pem, "crls": crl}, (200, 201), after)
        i = rng.randrange(len(bundles))
        pem, shas = bundles[i]
        after["cas"][SPARE] = shas
        return Op("PUT /v1/cas/%s (bundle %d)" % (SPARE, i), "PUT", "/v1/cas/" + SPARE,
                  {"certificates": pem}, (200, 201), after)
    if kind == "ca":
        name = rng.choice(CAS)
        i = rng.randrange(len(bundles))
        pem, shas = bundles[i]
        after["cas"][name] = shas
        return Op("PUT /v1/cas/%s (bundle %d)" % (name, i), "PUT", "/v1/cas/" + name,
                  {"certificates": pem}, (200, 201), after)
    if kind == "host":
        p = rng.choice(HOSTS)
        cas = sorted(rng.sample(CAS, rng.randint(1, 3)))
        mode = rng.choice(MODES_NEEDING_CA)
        depth = rng.randint(1, 9)
        hosts[p] = {"ca": tuple(cas), "mode": mode, "verify_depth": depth}
        return Op("PUT /v1/hosts/%s" % p, "PUT", "/v1/hosts/" + p,
                  {"ca": cas, "mode": mode, "verify_depth": depth}, (200, 201), after)
    if kind == "patch":
        p = rng.choice(HOSTS + ASSOC_ONLY)
        if rng.random() < 0.5:
            body = {"mode": rng.choice(MODES_NEEDING_CA)}
        else:
            body = {"verify_depth": rng.randint(1, 9)}
        if p not in hosts:
            return Op("PATCH /v1/hosts/%s (missing)" % p, "PATCH", "/v1/hosts/" + p, body,
                      (404,), copy_model(model), "application/merge-patch+json")
        hosts[p].update(body)
        return Op("PATCH /v1/hosts/%s %s" % (p, body), "PATCH", "/v1/hosts/" + p, body,
                  (200,), after, "application/merge-patch+json")
    if kind == "delete":
        p = rng.choice(HOSTS + ASSOC_ONLY)
        if p not in hosts:
            return Op("DELETE /v1/hosts/%s (missing)" % p, "DELETE", "/v1/hosts/" + p, None,
                      (404,), copy_model(model))
        del hosts[p]
        return Op("DELETE /v1/hosts/%s" % p, "DELETE", "/v1/hosts/" + p, None, (204,), after)
    # The association: listed hosts gain the CA (created in mode log),
    # API hosts not listed lose it; 409 when one would be left without a
    # CA while its mode needs one.
    ca = rng.choice(CAS)
    names = sorted(rng.sample(HOSTS + ASSOC_ONLY, rng.randint(0, 3)))
    refused = False
    for p in list(hosts):
        h = hosts[p]
        if p in names:
            if ca not in h["ca"]:
                h["ca"] = tuple(sorted(h["ca"] + (ca,)))
        elif ca in h["ca"]:
            h["ca"] = tuple(c for c in h["ca"] if c != ca)
            if not h["ca"] and h["mode"] in MODES_NEEDING_CA:
                refused = True
    for p in names:
        if p not in hosts:
            hosts[p] = {"ca": (ca,), "mode": "log", "verify_depth": 5}
    desc = "PUT /v1/cas/%s/hostnames %s" % (ca, names)
    if refused:
        return Op(desc + " (leaves a host without CA)", "PUT", "/v1/cas/%s/hostnames" % ca,
                  {"hostnames": names}, (409,), copy_model(model))
    return Op(desc, "PUT", "/v1/cas/%s/hostnames" % ca, {"hostnames": names}, (200,), after)


def send(agent, op):
    kw = {}
    if op.ctype:
        kw["ctype"] = op.ctype
    return agent.api(op.method, op.path, op.body, timeout=10, **kw)


def main(ws):
    seed = int(os.environ.get("API_CRASH_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    tap.diag("seed %d (API_CRASH_SEED=%d reproduces the sequence, not the kill timing)" % (seed, seed))
    pki = A.mkpki(os.path.join(ws.dir, "pki"))
    ks = [certs.make_ca(pki, "k%d" % i, "Crash CA %d" % i) for i in range(6)]
    bundles = []
    for idx in ([0], [1], [0, 2], [3], [4, 5], [2], [5, 1, 3]):
        pem = "".join(A.read(ks[i].pem) for i in idx)
        bundles.append((pem, tuple(ks[i].fingerprint for i in idx)))
    state = os.path.join(ws.dir, "state")
    tokens = os.path.join(ws.dir, "tokens")
    A.write_tokens(tokens)
    conf = ("[agent]\nstate-dir = %s\nadmin-token-file = %s\nlog-level = info\n\n"
            "[ca file-ca]\nfile = %s\n\n[host file.example.com]\nca = file-ca\n"
            ) % (state, tokens, os.path.join(pki, "tenant-b-ca.pem"))
    agent = A.ApiAgent(ws.dir, conf)
    ws.agents.append(agent)
    agent.start()

    model = {"cas": {}, "hosts": {}}
    init_ok = True
    for i, name in enumerate(CAS):
        pem, shas = bundles[i]
        r = agent.api("PUT", "/v1/cas/" + name, {"certificates": pem})
        init_ok &= r.status == 201
        model["cas"][name] = shas
    for i, p in enumerate(HOSTS):
        r = agent.api("PUT", "/v1/hosts/" + p, {"ca": CAS[:1 + i % 3], "mode": "log"})
        init_ok &= r.status == 201
        model["hosts"][p] = {"ca": tuple(CAS[:1 + i % 3]), "mode": "log", "verify_depth": 5}
    snap = snapshot(agent)
    if tap.ok(init_ok and snap == model, "the initial objects are written (4 CAs, 5 hosts)",
              "model %r\nagent %r" % (model, snap)):
        crl_ca = (A.read(os.path.join(pki, "tenant-a-ca.pem")),
                  tuple(A.der_sha256s(A.read(os.path.join(pki, "tenant-a-ca.pem")))),
                  A.read(os.path.join(pki, "tenant-a.crl")))
        crash_loop(agent, model, rng, bundles, crl_ca)


def crash_loop(agent, model, rng, bundles, crl_ca):
    stats = {"inflight": 0, "old": 0, "new": 0, "same": 0, "acked": 0, "mismatch": 0}
    bad_load = []
    torn = []
    model_errors = []
    for kill in range(KILLS):
        delay = rng.uniform(0.0, 0.35)
        pid = agent.proc.pid
        timer = threading.Timer(delay, lambda: os.kill(pid, signal.SIGKILL))
        timer.start()
        inflight = None
        while True:
            op = next_op(rng, model, bundles, crl_ca)
            inflight = op
            r = send(agent, op)
            if r.status == 0:
                break               # killed: op may or may not have landed
            inflight = None
            if r.status not in op.want:
                model_errors.append("%s: %d, the model wanted %s: %s" % (
                    op.desc, r.status, op.want, r.body[:300]))
            elif 200 <= r.status < 300:
                stats["acked"] += 1
            model = op.after if r.status in op.want else model
            snap = snapshot(agent)
            if snap is None:
                break               # killed between two writes
            if snap != model:
                model_errors.append("after %s the agent holds %r, the model %r" % (op.desc, snap, model))
                model = snap
        timer.join()
        agent.kill()
        rc, out, err = agent.check()
        if rc != 0 or not out.startswith("OK: "):
            bad_load.append("kill %d (in flight: %s): --check exit %d: %s %s" % (
                kill, inflight.desc if inflight else "-", rc, out, err[-500:]))
        agent.start()
        snap = snapshot(agent)
        after = inflight.after if inflight else model
        if inflight:
            stats["inflight"] += 1
        if snap == model and snap == after:
            stats["same"] += 1
        elif snap == model:
            stats["old"] += 1
        elif snap == after:
            stats["new"] += 1
            model = after
        else:
            torn.append("kill %d, in flight %s:\n agent %r\n before %r\n after  %r" % (
                kill, inflight.desc if inflight else "-", snap, model, after))
            model = snap if snap is not None else model
    tap.diag("%d kills, %d with a write in flight (%d found the old state, %d the new, %d the same "
             "either way); %d writes acknowledged" % (
                 KILLS, stats["inflight"], stats["old"], stats["new"], stats["same"], stats["acked"]))
    tap.ok(not bad_load, "after each of %d SIGKILLs the state directory loads (--check succeeds)" % KILLS,
           "\n".join(bad_load))
    tap.ok(not torn, "after each SIGKILL the objects are the state before or after the write in flight, "
           "and every acknowledged write is there", "\n".join(torn))
    tap.ok(not model_errors, "every answered write did what the contract says (and nothing else)",
           "\n".join(model_errors[:20]))
    tap.ok(stats["inflight"] >= KILLS // 3,
           "at least a third of the kills landed with a write in flight (%d of %d)" % (
               stats["inflight"], KILLS))
    tap.ok(stats["acked"] >= KILLS, "the writes went on between kills (%d acknowledged)" % stats["acked"])

    # What the kills left behind (temporary files, PEM files of writes
    # that never committed) is gone after the next successful write.
    pem, _shas = bundles[0]
    r = agent.api("PUT", "/v1/cas/c1", {"certificates": pem})
    state = os.path.join(agent.workdir, "state")
    conf = A.read(os.path.join(state, "api.conf"))
    stray = []
    for f in A.state_listing(state):
        rel = f.split(" ")[0]
        if rel == "api.conf":
            continue
        if not re.match(r"^pem/[0-9a-f]{64}\.pem$", rel) or rel not in conf:
            stray.append(rel)
    tap.ok(r.status in (200, 201) and not stray,
           "after a write, the state directory holds api.conf and the PEM files it names, nothing else",
           "write %d; stray files: %s" % (r.status, stray))


if __name__ == "__main__":
    A.run_test(tap, "mtls-api-crash-", main, 400)
