#!/usr/bin/env python3
"""api-load.py - timed tenant API writes, one at a time, for api-bench.sh.

    api-load.py --addr HOST:PORT --token-file FILE --state DIR -n N [--kind host|ca]

host: PATCH /v1/hosts/hNNNNN.bench.example to the other mode than it has
(enforce <-> log; read with a GET first, not timed), over hosts of
gen-big-state.sh (every tenth is a wildcard and skipped).
ca: PUT /v1/cas/bench-ca-NNN with the certificate bundle of another bench
CA (read from the state's PEM files), so the CA and the trust policies of
its hosts change. Prints one JSON line: {"kind", "n", "ms": {p50, p99,
max}, "statuses": {...}}. Every answer must be 2xx: anything else is
printed and exits 1. Latency is from sending the request to reading the
whole answer, on one keep-alive connection.
"""
import argparse
import http.client
import json
import os
import re
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--kind", choices=("host", "ca"), default="host")
    a = ap.parse_args()
    token = open(a.token_file).read().split("\n")[0].split(":", 1)[1].strip()
    host, port = a.addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    hdrs = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    pems = []
    if a.kind == "ca":
        text = open(os.path.join(a.state, "api.conf")).read()
        files = re.findall(r"\[ca (bench-ca-\d+)\]\nfile = (\S+)", text)
        pems = [(name, open(os.path.join(a.state, f)).read()) for name, f in files[:a.n + 1]]
        if len(pems) < 2:
            sys.exit("api-load.py: no bench CAs in the state")
    ms, statuses = [], {}
    for i in range(a.n):
        if a.kind == "host":
            method, path = "PATCH", "/v1/hosts/h%05d.bench.example" % ((i * 10) % 9990)
            # Always a change: the other mode than the host has now (read
            # first, not timed; a PATCH to the same mode changes nothing).
            conn.request("GET", path, headers=hdrs)
            r = conn.getresponse()
            cur = json.loads(r.read() or b"{}").get("mode")
            if r.status != 200:
                sys.exit("api-load.py: GET %s -> %d" % (path, r.status))
            body = {"mode": "log" if cur == "enforce" else "enforce"}
        else:
            # CA i takes the bundle of the next CA whose bundle differs
            # from its own (an earlier run may have given it that one).
            k = i % (len(pems) - 1)
            name, mine = pems[k]
            others = [pems[(k + d) % len(pems)][1] for d in range(1, len(pems))]
            other = next((p for p in others if p != mine), None)
            if other is None:
                sys.exit("api-load.py: no other CA bundle for " + name)
            method, path = "PUT", "/v1/cas/" + name
            body = {"certificates": other}
        data = json.dumps(body).encode()
        t0 = time.perf_counter()
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        payload = r.read()
        ms.append((time.perf_counter() - t0) * 1000)
        statuses[r.status] = statuses.get(r.status, 0) + 1
        if not 200 <= r.status < 300:
            sys.exit("api-load.py: %s %s -> %d %s" % (method, path, r.status, payload[:300]))
    ms.sort()
    pick = lambda q: round(ms[min(len(ms) - 1, int(len(ms) * q))], 2)
    print(json.dumps({"kind": a.kind, "n": a.n, "ms": {"p50": pick(0.5), "p99": pick(0.99),
                                                       "max": round(ms[-1], 2)},
                      "statuses": statuses}))


if __name__ == "__main__":
    main()
