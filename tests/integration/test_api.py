#!/usr/bin/env python3
"""The tenant API over real HTTP (issue 14, README "API").

One agent with a temporary state directory, a token file, an admin
listener on a free loopback port and a static file defining one [ca] and
one [host] (read-only through the API). Every endpoint and every error of
the contract: CAs (POST/PUT/GET/DELETE, details against `openssl x509`),
hosts (PUT/PATCH merge patch/GET/DELETE), the hostnames association,
ETag / If-Match / If-None-Match, Mtls-Generation on every 2xx write, 405
with Allow, 404, 401, 413, 415, POST /v1/verify against the SPOP answer
for the same certificate (and no side effect on the metrics); every
refused request leaves the state directory byte-for-byte unchanged and
the live generation where it was. Then a restart: every object is still
there with the same body and ETag, and --check counts them.
"""

import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agentctl  # noqa: E402
import apilib as A  # noqa: E402
import certs  # noqa: E402
import spoplib as S  # noqa: E402

ETAG_RE = re.compile(r'^"[0-9a-f]{32}"$')
tap = agentctl.Tap()
ANY = object()


def error_problems(r, status, field=ANY, msg_has=()):
    """What is wrong with an error answer: status, Content-Type, the
    {"error": {...}} shape, its field and what its message names."""
    p = []
    if r.status != status:
        p.append("status %d, want %d" % (r.status, status))
    if not (r.hdr("content-type") or "").startswith("application/json"):
        p.append("Content-Type %r, want application/json" % r.hdr("content-type"))
    e = r.json.get("error") if isinstance(r.json, dict) else None
    if not isinstance(e, dict):
        p.append("body is not {\"error\": {...}}")
        return p
    if e.get("status") != status:
        p.append("error.status %r" % e.get("status"))
    if not isinstance(e.get("message"), str) or not e.get("message"):
        p.append("error.message missing")
    if field is not ANY:
        ok = e.get("field") in field if isinstance(field, tuple) else e.get("field") == field
        if not ok:
            p.append("error.field %r, want %r" % (e.get("field"), field))
    for s in msg_has or ():
        if s not in (e.get("message") or ""):
            p.append("error.message does not name %r" % s)
    return p


class Session:
    """The agent under test and what the test knows of it."""

    def __init__(self, agent, state, conf_path, lines):
        self.a = agent
        self.state = state
        self.conf_path = conf_path
        self.lines = lines          # section header -> line number
        self.gen = 0                # highest Mtls-Generation seen
        self.writes = {}            # (method, status) -> count, 2xx only
        self.ca_changes = 0
        self.host_changes = 0

    def origin(self, section):
        return "%s:%d" % (self.conf_path, self.lines[section])

    def live_gen(self):
        r = self.a.api("GET", "/v1/status")
        return r.json.get("generation") if r.json else None

    # ---------------------------------------------------------- checks

    def refused(self, desc, method, path, body=None, status=400, field=ANY,
                msg_has=(), allow=None, **kw):
        """A request that must be refused: its status, the JSON error
        (naming `field` when given), and nothing changed: the state
        directory's bytes and the live generation."""
        h0 = A.state_hash(self.state)
        g0 = self.live_gen()
        r = self.a.api(method, path, body, **kw)
        p = error_problems(r, status, field, msg_has)
        if allow is not None:
            got = {m.strip() for m in (r.hdr("allow") or "").split(",") if m.strip()}
            want, never = allow
            if not set(want) <= got or got & set(never):
                p.append("Allow %r: want %s, never %s" % (r.hdr("allow"), want, never))
        if A.state_hash(self.state) != h0:
            p.append("the state directory changed: %s" % A.state_listing(self.state))
        g1 = self.live_gen()
        if g1 != g0:
            p.append("live generation moved %r -> %r" % (g0, g1))
        tap.ok(not p, "%s: %d%s, nothing changed" % (
            desc, status, " (field %s)" % (field,) if field is not ANY else ""),
            "\n".join(p + [repr(r)]))
        return r

    def written(self, desc, method, path, body=None, status=(200, 201),
                obj=True, kind=None, strict_gen=True, **kw):
        """A write that must succeed: status, ETag on an object answer,
        Mtls-Generation above every one seen (>= with strict_gen False),
        and that generation live."""
        r = self.a.api(method, path, body, **kw)
        st = status if isinstance(status, tuple) else (status,)
        p = []
        if r.status not in st:
            p.append("status %d, want %s" % (r.status, st))
        if r.status != 204 and not (r.hdr("content-type") or "").startswith("application/json"):
            p.append("Content-Type %r" % r.hdr("content-type"))
        if obj and not ETAG_RE.match(r.hdr("etag") or ""):
            p.append("ETag %r is not a strong 32-hex tag" % r.hdr("etag"))
        g = r.hdr("mtls-generation")
        if g is None or not g.isdigit():
            p.append("Mtls-Generation %r" % g)
        else:
            g = int(g)
            if g < self.gen or (strict_gen and g == self.gen):
                p.append("Mtls-Generation %d, previous %d" % (g, self.gen))
            live = self.live_gen()
            if live is None or live < g:
                p.append("live generation %r is behind the answer's %d" % (live, g))
            self.gen = max(self.gen, g)
        if 200 <= r.status < 300:
            k = (method, r.status)
            self.writes[k] = self.writes.get(k, 0) + 1
            if kind == "ca":
                self.ca_changes += 1
            elif kind == "host":
                self.host_changes += 1
        tap.ok(not p, "%s: %d" % (desc, r.status), "\n".join(p + [repr(r)]))
        return r

    def get_same(self, desc, path, want_body, want_etag):
        """GET answers the same object and ETag a write answered."""
        r = self.a.api("GET", path)
        p = []
        if r.status != 200:
            p.append("status %d" % r.status)
        if r.json != want_body:
            p.append("body differs:\n got  %s\n want %s" % (
                json.dumps(r.json, sort_keys=True), json.dumps(want_body, sort_keys=True)))
        if want_etag is not None and r.hdr("etag") != want_etag:
            p.append("ETag %r, want %r" % (r.hdr("etag"), want_etag))
        if not (r.hdr("mtls-generation") or "").isdigit():
            p.append("no Mtls-Generation on the GET")
        tap.ok(not p, desc, "\n".join(p))
        return r


def ca_problems(obj, name, pem_path, source="api", hosts=(), crl_path=None):
    """What differs between a CA object and what openssl says of the
    bundle it was made from."""
    p = []
    if not isinstance(obj, dict):
        return ["not an object: %r" % obj]
    if obj.get("name") != name:
        p.append("name %r" % obj.get("name"))
    if obj.get("source") != source:
        p.append("source %r, want %r" % (obj.get("source"), source))
    if sorted(obj.get("hosts") or []) != sorted(hosts) or "hosts" not in obj:
        p.append("hosts %r, want %r" % (obj.get("hosts"), sorted(hosts)))
    pems = A.split_pem(A.read(pem_path))
    want_norm = "".join(A._ossl(["x509"], c) for c in pems)
    if obj.get("certificates") != want_norm:
        p.append("certificates are not the bundle re-encoded:\n%s" % obj.get("certificates"))
    want = [A.x509_facts(c) for c in pems]
    if obj.get("details") != want:
        p.append("details:\n got  %s\n want %s" % (
            json.dumps(obj.get("details"), sort_keys=True), json.dumps(want, sort_keys=True)))
    if crl_path is None:
        if "crls" in obj:
            p.append("crls present without CRLs: %r" % obj.get("crls"))
    else:
        want_crl = A._ossl(["crl", "-in", crl_path], b"")
        if obj.get("crls") != want_crl:
            p.append("crls %r, want %r" % (obj.get("crls"), want_crl))
    # The revocation keys: crl_urls and ocsp always, the others only when
    # set to something else than their default (none of these objects does).
    if obj.get("crl_urls") != [] or obj.get("ocsp") != "off":
        p.append("revocation fields: crl_urls %r, ocsp %r (want [] and off)" % (
            obj.get("crl_urls"), obj.get("ocsp")))
    unknown = set(obj) - {"name", "certificates", "crls", "details", "hosts", "source",
                          "crl_urls", "ocsp"}
    if unknown:
        p.append("unexpected fields %s" % sorted(unknown))
    return p


def host_obj(pattern, **kw):
    h = {"pattern": pattern, "ca": [], "mode": "enforce", "allow_identity": [],
         "pin_sha256": [], "purpose": "client", "verify_depth": 5,
         "crl_check": "auto", "source": "api"}
    h.update(kw)
    return h


def host_path(pattern):
    return "/v1/hosts/" + urllib.parse.quote(pattern, safe="")


def main(ws):
    pki = A.mkpki(os.path.join(ws.dir, "pki"))
    P = lambda n: os.path.join(pki, n)  # noqa: E731
    extra = {n: certs.make_ca(pki, n, "Partner %s CA" % n[-1].upper())
             for n in ("ca-c", "ca-d", "ca-e")}
    state = os.path.join(ws.dir, "state")
    tokens = os.path.join(ws.dir, "tokens")
    A.write_tokens(tokens)
    conf = ("[agent]\n"
            "state-dir = %s\n"
            "admin-token-file = %s\n"
            "admin-max-body = 64k\n"
            "log-level = info\n"
            "\n"
            "[ca file-ca]\n"
            "file = %s\n"
            "\n"
            "[host file.example.com]\n"
            "ca = file-ca\n"
            "mode = enforce\n") % (state, tokens, P("tenant-b-ca.pem"))
    lines = {}
    for i, l in enumerate(conf.splitlines(), 1):
        if l.startswith("["):
            lines[l] = i
    agent = A.ApiAgent(ws.dir, conf)
    ws.agents.append(agent)
    try:
        agent.start()
    except RuntimeError as e:
        tap.ok(False, "agent starts with state-dir, admin-token-file and admin-listen", e)
        return
    tap.ok(True, "agent starts with state-dir, admin-token-file and admin-listen")
    s = Session(agent, state, agent.config_path, lines)
    run(s, P, extra, ws)
    unix_checks(ws, P)


def run(s, P, extra, ws):
    a = s.a
    pem = lambda n: A.read(P(n))  # noqa: E731

    # ------------------------------------------------------------ auth, shapes
    r = A.request(a.admin_port, "GET", "/metrics", token=None)
    tap.ok(r.status == 200, "/metrics stays open without a token", repr(r))
    for desc, tok in (("no Authorization", None), ("a wrong token", "wrong-token-0123456789abcdef")):
        r = a.api("GET", "/v1/cas", token=tok)
        p = error_problems(r, 401, ANY, ())
        if not (r.hdr("www-authenticate") or "").startswith("Bearer"):
            p.append("WWW-Authenticate %r" % r.hdr("www-authenticate"))
        tap.ok(not p, "GET /v1/cas with %s: 401, WWW-Authenticate: Bearer, JSON error" % desc,
               "\n".join(p + [repr(r)]))
    s.refused("POST /v1/cas without a token", "POST", "/v1/cas",
              {"name": "x", "certificates": pem("tenant-a-ca.pem")}, status=401, token=None)

    r = a.api("GET", "/v1/cas")
    items = (r.json or {}).get("items")
    p = [] if r.status == 200 and isinstance(items, list) and len(items) == 1 else [repr(r)]
    if not p:
        p = ca_problems(items[0], "file-ca", P("tenant-b-ca.pem"),
                        source=s.origin("[ca file-ca]"), hosts=["file.example.com"])
    tap.ok(not p, "GET /v1/cas: {\"items\": [the file's CA]}, source FILE:LINE, details = openssl x509",
           "\n".join(p))
    r = a.api("GET", "/v1/hosts")
    want = host_obj("file.example.com", ca=["file-ca"], source=s.origin("[host file.example.com]"))
    tap.ok(r.status == 200 and r.json == {"items": [want]},
           "GET /v1/hosts: {\"items\": [the file's host]} with source FILE:LINE and the defaults",
           "%r\nwant %r" % (r, want))
    r = a.api("GET", "/v1/cas/file-ca")
    tap.ok(r.status == 200 and ETAG_RE.match(r.hdr("etag") or "")
           and (r.hdr("mtls-generation") or "").isdigit(),
           "GET /v1/cas/file-ca: 200 with an ETag and Mtls-Generation", repr(r))
    r = a.api("GET", host_path("file.example.com"))
    tap.ok(r.status == 200 and r.json == want and ETAG_RE.match(r.hdr("etag") or ""),
           "GET /v1/hosts/file.example.com: 200, the host, an ETag", repr(r))
    g = a.api("GET", "/v1/cas/file-ca")
    r = a.api("HEAD", "/v1/cas/file-ca")
    tap.ok(r.status == 200 and r.body == b"" and r.hdr("etag") == g.hdr("etag"),
           "HEAD /v1/cas/file-ca: 200, no body, the GET's ETag", repr(r))
    s.refused("OPTIONS /v1/cas (a method the admin listener does not implement)", "OPTIONS", "/v1/cas",
              status=501)

    for path in ("/v1/nothing", "/v1/cas/nope", "/v1/cas/file-ca/nothing",
                 "/v1/hosts/nope.example.com", "/v1/cas/nope/hostnames", "/v2/cas"):
        r = a.api("GET", path)
        p = error_problems(r, 404, ANY, ())
        tap.ok(not p, "GET %s: 404 with a JSON error" % path, "\n".join(p + [repr(r)]))

    for method, path, want_allow, never in (
            ("DELETE", "/v1/cas", ("GET", "POST"), ("DELETE", "PUT")),
            ("PUT", "/v1/cas", ("GET", "POST"), ("DELETE", "PUT")),
            ("POST", "/v1/cas/file-ca", ("GET", "PUT", "DELETE"), ("POST",)),
            ("PATCH", "/v1/cas/file-ca", ("GET", "PUT", "DELETE"), ("PATCH",)),
            ("POST", "/v1/hosts", ("GET",), ("POST", "DELETE")),
            ("POST", host_path("file.example.com"), ("GET", "PUT", "PATCH", "DELETE"), ("POST",)),
            ("DELETE", "/v1/cas/file-ca/hostnames", ("GET", "PUT"), ("DELETE", "POST")),
            ("GET", "/v1/verify", ("POST",), ("GET", "PUT")),
            ("DELETE", "/v1/status", ("GET",), ("DELETE",))):
        s.refused("%s %s" % (method, path), method, path, status=405,
                  allow=(want_allow, never))

    # ------------------------------------------------------------ CAs
    bundle = "partner A's bundle, as mailed\n" + pem("tenant-a-ca.pem")
    r = s.written("POST /v1/cas partner-a (root + intermediate, text before the PEM)",
                  "POST", "/v1/cas", {"name": "partner-a", "certificates": bundle},
                  status=201, kind="ca")
    p = ca_problems(r.json, "partner-a", P("tenant-a-ca.pem"))
    tap.ok(not p, "POST answer: the stored CA, certificates re-encoded, details = openssl x509 "
           "(subject, issuer, serial, sha256, ski, not_before, not_after)", "\n".join(p))
    pa_body, pa_etag = r.json, r.hdr("etag")
    s.get_same("GET /v1/cas/partner-a: the POST's body and ETag", "/v1/cas/partner-a",
               pa_body, pa_etag)
    r = a.api("GET", "/v1/cas")
    names = sorted(c.get("name") for c in (r.json or {}).get("items", []))
    tap.ok(names == ["file-ca", "partner-a"], "GET /v1/cas lists the file's and the API's CAs",
           repr(names))
    check_state_files(s, ["[ca partner-a]"])

    s.refused("POST /v1/cas partner-a again", "POST", "/v1/cas",
              {"name": "partner-a", "certificates": pem("tenant-b-ca.pem")}, status=409)
    s.refused("POST /v1/cas with the file CA's name", "POST", "/v1/cas",
              {"name": "file-ca", "certificates": pem("tenant-b-ca.pem")}, status=409)
    good = pem("tenant-b-ca.pem")
    half = good[:len(good) // 2] + "\n-----END CERTIFICATE-----\n"
    for desc, body, field in (
            ("certificates not PEM", {"name": "px", "certificates": "hello"}, "certificates"),
            ("certificates a truncated PEM", {"name": "px", "certificates": half}, "certificates"),
            ("certificates empty", {"name": "px", "certificates": ""}, "certificates"),
            ("certificates a number", {"name": "px", "certificates": 5}, "certificates"),
            ("no certificates", {"name": "px"}, "certificates"),
            ("a CA:FALSE certificate (client leaf)", {"name": "px", "certificates": pem("a-valid.crt")},
             "certificates"),
            ("a bundle with one CA:FALSE certificate",
             {"name": "px", "certificates": good + pem("a-valid.crt")}, "certificates"),
            ("crls not PEM", {"name": "px", "certificates": good, "crls": "junk"}, "crls"),
            ("an unknown field", {"name": "px", "certificates": good, "colour": "red"}, "colour"),
            ("no name", {"certificates": good}, "name"),
            ("a name with a space", {"name": "bad name", "certificates": good}, "name"),
            ("a name of 65 characters", {"name": "n" * 65, "certificates": good}, "name"),
            ("a name that is a number", {"name": 7, "certificates": good}, "name")):
        s.refused("POST /v1/cas with %s" % desc, "POST", "/v1/cas", body, status=400, field=field,
                  msg_has=(field,) if field == "colour" else ())
    for desc, raw in (("invalid JSON", b'{"name": "px", '), ("a JSON array", b'["px"]'),
                      ("an empty body", b""), ("JSON null", b"null")):
        s.refused("POST /v1/cas with %s" % desc, "POST", "/v1/cas", raw=raw, status=400,
                  ctype="application/json")
    body = {"name": "px", "certificates": good}
    s.refused("POST /v1/cas as text/plain", "POST", "/v1/cas", raw=json.dumps(body).encode(),
              ctype="text/plain", status=415)
    s.refused("POST /v1/cas without Content-Type", "POST", "/v1/cas",
              raw=json.dumps(body).encode(), ctype=None, status=415)
    s.refused("PUT /v1/cas/px as application/merge-patch+json", "PUT", "/v1/cas/px",
              raw=json.dumps(body).encode(), ctype="application/merge-patch+json", status=415)
    big = {"name": "px", "certificates": good + "x" * (70 * 1024)}
    s.refused("POST /v1/cas with 70 KiB over admin-max-body = 64k (Content-Length)",
              "POST", "/v1/cas", big, status=413)
    s.refused("POST /v1/cas with 70 KiB over admin-max-body = 64k (chunked)",
              "POST", "/v1/cas", raw=json.dumps(big).encode(), chunked=True, status=413)
    r = s.written("POST /v1/cas just under admin-max-body (63 KiB of text around the PEM)",
                  "POST", "/v1/cas", {"name": "padded", "certificates": ("x" * 63 + "\n") * 990 + good},
                  status=201, kind="ca")
    s.written("DELETE /v1/cas/padded", "DELETE", "/v1/cas/padded", status=204, obj=False, kind="ca")

    c_pem, d_pem, e_pem = extra["ca-c"].pem, extra["ca-d"].pem, extra["ca-e"].pem
    r = s.written("PUT /v1/cas/partner-c (new)", "PUT", "/v1/cas/partner-c",
                  {"certificates": A.read(c_pem)}, status=201, kind="ca")
    p = ca_problems(r.json, "partner-c", c_pem)
    tap.ok(not p, "PUT answer: the stored CA (name from the URL)", "\n".join(p))
    c_etag = r.hdr("etag")
    r = s.written("PUT /v1/cas/partner-c again, same bundle", "PUT", "/v1/cas/partner-c",
                  {"name": "partner-c", "certificates": A.read(c_pem)}, status=200,
                  strict_gen=False, kind="ca")
    tap.ok(ETAG_RE.match(r.hdr("etag") or "") and r.hdr("etag") == c_etag, "the same object has the same ETag", "%r vs %r" % (r.hdr("etag"), c_etag))
    s.refused("PUT /v1/cas/partner-c with another name in the body", "PUT", "/v1/cas/partner-c",
              {"name": "partner-x", "certificates": A.read(c_pem)}, status=400, field="name")
    s.refused("PUT /v1/cas/bad%20name", "PUT", "/v1/cas/bad%20name",
              {"certificates": A.read(c_pem)}, status=400, field="name")
    s.refused("PUT /v1/cas/file-ca (a file CA)", "PUT", "/v1/cas/file-ca",
              {"certificates": A.read(c_pem)}, status=409, msg_has=(s.origin("[ca file-ca]"),))
    cd = A.read(c_pem) + A.read(d_pem)
    s.refused("PUT /v1/cas/partner-c, If-Match a stale ETag", "PUT", "/v1/cas/partner-c",
              {"certificates": cd}, status=412, headers={"If-Match": '"%s"' % ("0" * 32)})
    s.refused("PUT /v1/cas/partner-c, If-None-Match: * (it exists)", "PUT", "/v1/cas/partner-c",
              {"certificates": cd}, status=412, headers={"If-None-Match": "*"})
    s.refused("PUT /v1/cas/nobody, If-Match an ETag (it does not exist)", "PUT", "/v1/cas/nobody",
              {"certificates": cd}, status=412, headers={"If-Match": c_etag})
    r = s.written("PUT /v1/cas/partner-c, If-Match its ETag (two certificates now)", "PUT",
                  "/v1/cas/partner-c", {"certificates": cd}, status=200,
                  headers={"If-Match": c_etag}, kind="ca")
    tmp = os.path.join(ws.dir, "cd.pem")
    with open(tmp, "w") as f:
        f.write(cd)
    p = ca_problems(r.json, "partner-c", tmp)
    if r.hdr("etag") == c_etag:
        p.append("the ETag did not change with the object")
    tap.ok(not p, "replaced: two details, a new ETag", "\n".join(p))
    c_etag = r.hdr("etag")
    r = s.written("PUT /v1/cas/partner-c, If-Match a list holding its ETag", "PUT",
                  "/v1/cas/partner-c", {"certificates": A.read(c_pem)}, status=200,
                  headers={"If-Match": '"%s", %s' % ("1" * 32, c_etag)}, kind="ca")
    s.written("PUT /v1/cas/partner-c, If-Match: *", "PUT", "/v1/cas/partner-c",
              {"certificates": A.read(c_pem)}, status=200, strict_gen=False,
              headers={"If-Match": "*"}, kind="ca")
    s.written("PUT /v1/cas/partner-d, If-None-Match: * (new)", "PUT", "/v1/cas/partner-d",
              {"certificates": A.read(d_pem)}, status=201, headers={"If-None-Match": "*"}, kind="ca")

    r = s.written("PUT /v1/cas/partner-a with its CRL", "PUT", "/v1/cas/partner-a",
                  {"certificates": pem("tenant-a-ca.pem"), "crls": pem("tenant-a.crl")},
                  status=200, kind="ca")
    p = ca_problems(r.json, "partner-a", P("tenant-a-ca.pem"), crl_path=P("tenant-a.crl"))
    tap.ok(not p, "the CA answers its crls, normalized", "\n".join(p))
    back = a.api("GET", "/v1/cas/partner-a")
    r = s.written("PUT back what GET /v1/cas/partner-a answered (output fields ignored)",
                  "PUT", "/v1/cas/partner-a", back.json, status=200, strict_gen=False, kind="ca")
    tap.ok(r.json == back.json and r.hdr("etag") == back.hdr("etag"),
           "a GET body PUT back stores the same object (same body, same ETag)", repr(r))

    # ------------------------------------------------------------ hosts
    r = s.written("PUT /v1/hosts/api.example.com {ca, mode log}", "PUT", host_path("api.example.com"),
                  {"ca": ["partner-a"], "mode": "log"}, status=201, kind="host")
    want = host_obj("api.example.com", ca=["partner-a"], mode="log")
    tap.ok(r.json == want, "the host answered with the file's defaults filled in", "%r\nwant %r" % (r.json, want))
    s.get_same("GET /v1/hosts/api.example.com: the PUT's body and ETag", host_path("api.example.com"),
               want, r.hdr("etag"))
    fp = A.x509_facts(A.read(P("a-valid.crt")).encode())["sha256"]
    colon_fp = ":".join(fp[i:i + 2] for i in range(0, 64, 2)).upper()
    full = {"ca": ["partner-a", "partner-c"], "mode": "enforce",
            "allow_identity": ["client-a.example.com", "*.example.com"], "pin_sha256": [colon_fp],
            "purpose": "any", "verify_depth": 4, "crl_check": "leaf"}
    r = s.written("PUT /v1/hosts/api.example.com with every field (pin with colons, upper case)",
                  "PUT", host_path("api.example.com"), full, status=200, kind="host")
    want = host_obj("api.example.com", **dict(full, pin_sha256=[fp]))
    tap.ok(r.json == want, "every field stored, pin_sha256 normalized to lowercase hex",
           "%r\nwant %r" % (r.json, want))
    etag = r.hdr("etag")
    r = s.written("PATCH {mode: log} as application/merge-patch+json", "PATCH",
                  host_path("api.example.com"), {"mode": "log"},
                  ctype="application/merge-patch+json", status=200, kind="host")
    want["mode"] = "log"
    tap.ok(r.json == want and r.hdr("etag") != etag, "PATCH changed the mode alone, new ETag",
           "%r\nwant %r" % (r.json, want))
    etag = r.hdr("etag")
    s.refused("PATCH with a stale If-Match", "PATCH", host_path("api.example.com"), {"mode": "enforce"},
              ctype="application/merge-patch+json", headers={"If-Match": '"%s"' % ("2" * 32)}, status=412)
    r = s.written("PATCH nulls (application/json; charset=utf-8, If-Match its ETag)", "PATCH",
                  host_path("api.example.com"),
                  {"allow_identity": None, "pin_sha256": None, "purpose": None,
                   "verify_depth": None, "crl_check": None},
                  ctype="application/json; charset=utf-8", headers={"If-Match": etag},
                  status=200, kind="host")
    want = host_obj("api.example.com", ca=["partner-a", "partner-c"], mode="log")
    tap.ok(r.json == want, "null removes a field: back to its default", "%r\nwant %r" % (r.json, want))
    s.refused("PATCH as text/plain", "PATCH", host_path("api.example.com"), {"mode": "enforce"},
              ctype="text/plain", status=415)
    s.refused("PATCH a host that does not exist", "PATCH", host_path("nope.example.com"),
              {"mode": "log"}, ctype="application/merge-patch+json", status=404)
    s.refused("PATCH {mode: bogus}", "PATCH", host_path("api.example.com"), {"mode": "bogus"},
              ctype="application/merge-patch+json", field="mode")
    s.refused("PATCH {ca: null} on a log host (mode needs a CA)", "PATCH", host_path("api.example.com"),
              {"ca": None}, ctype="application/merge-patch+json", field=("ca", "mode"))
    s.refused("PATCH with an unknown field", "PATCH", host_path("api.example.com"), {"colour": 1},
              ctype="application/merge-patch+json", field="colour")
    s.refused("PATCH with a JSON array", "PATCH", host_path("api.example.com"), ["mode"],
              ctype="application/merge-patch+json")

    bad = host_path("bad.example.com")
    for desc, body, field in (
            ("mode bogus", {"ca": ["partner-a"], "mode": "bogus"}, "mode"),
            ("purpose server", {"ca": ["partner-a"], "purpose": "server"}, "purpose"),
            ("verify_depth 0", {"ca": ["partner-a"], "verify_depth": 0}, "verify_depth"),
            ("verify_depth 33", {"ca": ["partner-a"], "verify_depth": 33}, "verify_depth"),
            ("verify_depth \"5\"", {"ca": ["partner-a"], "verify_depth": "5"}, "verify_depth"),
            ("crl_check maybe", {"ca": ["partner-a"], "crl_check": "maybe"}, "crl_check"),
            ("crl_check leaf without any CRL", {"ca": ["partner-c"], "crl_check": "leaf"}, "crl_check"),
            ("pin_sha256 not 64 hex digits", {"ca": ["partner-a"], "pin_sha256": ["abc"]}, "pin_sha256"),
            ("an unknown CA", {"ca": ["partner-a", "nope"]}, "ca"),
            ("ca a string", {"ca": "partner-a"}, "ca"),
            ("mode enforce without ca", {"mode": "enforce"}, ("ca", "mode")),
            ("mode log with ca []", {"ca": [], "mode": "log"}, ("ca", "mode")),
            ("allow_identity a string", {"ca": ["partner-a"], "allow_identity": "x"}, "allow_identity"),
            ("an unknown field", {"ca": ["partner-a"], "tenant": "x"}, "tenant"),
            ("another pattern in the body", {"pattern": "other.example.com", "ca": ["partner-a"]}, "pattern")):
        s.refused("PUT /v1/hosts/bad.example.com with %s" % desc, "PUT", bad, body, field=field)
    for pat in ("a.*.example.com", "*x.example.com", "exa mple.com", "*.*.example.com", "a..example.com"):
        s.refused("PUT /v1/hosts/%s (bad pattern)" % pat, "PUT", host_path(pat),
                  {"ca": ["partner-a"], "mode": "log"}, field="pattern")
    s.refused("PUT /v1/hosts/x.example.com as text/plain", "PUT", host_path("x.example.com"),
              raw=b'{"mode":"off"}', ctype="text/plain", status=415)

    r = s.written("PUT /v1/hosts/%2A.example.org (one-label wildcard)", "PUT", "/v1/hosts/%2A.example.org",
                  {"ca": ["partner-c"], "mode": "log"}, status=201, kind="host")
    tap.ok((r.json or {}).get("pattern") == "*.example.org", "pattern *.example.org", repr(r))
    s.get_same("GET /v1/hosts/*.example.org (literal * in the path)", "/v1/hosts/*.example.org",
               r.json, r.hdr("etag"))
    r = s.written("PUT /v1/hosts/%2A%2A.deep.example.org (any depth)", "PUT",
                  "/v1/hosts/%2A%2A.deep.example.org", {"ca": ["partner-c"], "mode": "log"},
                  status=201, kind="host")
    tap.ok((r.json or {}).get("pattern") == "**.deep.example.org", "pattern **.deep.example.org", repr(r))
    r = s.written("PUT /v1/hosts/%2A (the default policy), mode off", "PUT", "/v1/hosts/%2A",
                  {"mode": "off"}, status=201, kind="host")
    tap.ok(r.json == host_obj("*", mode="off"), "pattern *, mode off, no CA", repr(r))
    r = s.written("PUT /v1/hosts/MiXeD.Example.COM. (case, trailing dot)", "PUT",
                  host_path("MiXeD.Example.COM."), {"ca": ["partner-c"], "mode": "log"},
                  status=201, kind="host")
    tap.ok((r.json or {}).get("pattern") == "mixed.example.com",
           "the pattern is normalized: lower case, no trailing dot", repr(r))
    mixed_etag = r.hdr("etag")
    s.get_same("GET /v1/hosts/mixed.example.com", host_path("mixed.example.com"), r.json, mixed_etag)

    fo = s.origin("[host file.example.com]")
    s.refused("PUT /v1/hosts/file.example.com (a file host)", "PUT", host_path("file.example.com"),
              {"ca": ["partner-a"], "mode": "log"}, status=409, msg_has=(fo,))
    s.refused("PUT /v1/hosts/FILE.example.com (a file host, other spelling)", "PUT",
              host_path("FILE.example.com"), {"ca": ["partner-a"], "mode": "log"}, status=409,
              msg_has=(fo,))
    s.refused("PATCH /v1/hosts/file.example.com", "PATCH", host_path("file.example.com"),
              {"mode": "log"}, ctype="application/merge-patch+json", status=409, msg_has=(fo,))
    s.refused("DELETE /v1/hosts/file.example.com", "DELETE", host_path("file.example.com"),
              status=409, msg_has=(fo,))
    r = a.api("GET", "/v1/hosts")
    pats = sorted(h.get("pattern") for h in (r.json or {}).get("items", []))
    want_pats = sorted(["file.example.com", "api.example.com", "*.example.org", "**.deep.example.org",
                        "*", "mixed.example.com"])
    tap.ok(pats == want_pats, "GET /v1/hosts lists every host", "%r\nwant %r" % (pats, want_pats))
    r = a.api("GET", "/v1/cas/partner-c")
    tap.ok(sorted((r.json or {}).get("hosts", [])) ==
           sorted(["api.example.com", "*.example.org", "**.deep.example.org", "mixed.example.com"]),
           "GET /v1/cas/partner-c names the hosts that use it", repr(r))

    s.refused("DELETE /v1/cas/partner-a while api.example.com uses it", "DELETE", "/v1/cas/partner-a",
              status=409, msg_has=("api.example.com",))
    s.refused("DELETE /v1/cas/file-ca (a file CA)", "DELETE", "/v1/cas/file-ca", status=409,
              msg_has=(s.origin("[ca file-ca]"),))
    s.refused("DELETE /v1/cas/nope", "DELETE", "/v1/cas/nope", status=404)

    # ------------------------------------------------------------ hostnames
    r = a.api("GET", "/v1/cas/partner-c/hostnames")
    tap.ok(r.status == 200 and sorted((r.json or {}).get("hostnames", [])) ==
           sorted(["api.example.com", "*.example.org", "**.deep.example.org", "mixed.example.com"])
           and set(r.json) == {"hostnames"},
           "GET /v1/cas/partner-c/hostnames: {\"hostnames\": [every host listing it]}", repr(r))
    r = a.api("GET", "/v1/cas/file-ca/hostnames")
    tap.ok(r.status == 200 and r.json == {"hostnames": ["file.example.com"]},
           "GET /v1/cas/file-ca/hostnames: the file host", repr(r))
    r = s.written("PUT /v1/cas/partner-d/hostnames [api.example.com, new.example.com]", "PUT",
                  "/v1/cas/partner-d/hostnames", {"hostnames": ["api.example.com", "new.example.com"]},
                  status=200, obj=False)
    tap.ok(sorted((r.json or {}).get("hostnames", [])) == ["api.example.com", "new.example.com"],
           "the answer is the new set", repr(r))
    r = a.api("GET", host_path("new.example.com"))
    tap.ok(r.status == 200 and r.json == host_obj("new.example.com", ca=["partner-d"], mode="log"),
           "a host that did not exist is created in mode log, with the CA alone", repr(r))
    r = a.api("GET", host_path("api.example.com"))
    tap.ok(sorted((r.json or {}).get("ca", [])) == ["partner-a", "partner-c", "partner-d"]
           and r.json.get("mode") == "log", "api.example.com gained partner-d, kept the rest", repr(r))
    s.refused("PUT /v1/cas/partner-d/hostnames [api.example.com]: new.example.com would have no CA",
              "PUT", "/v1/cas/partner-d/hostnames", {"hostnames": ["api.example.com"]}, status=409,
              msg_has=("new.example.com",))
    s.written("PATCH new.example.com {mode: off}", "PATCH", host_path("new.example.com"), {"mode": "off"},
              ctype="application/merge-patch+json", status=200, kind="host")
    r = s.written("PUT /v1/cas/partner-d/hostnames [api.example.com] (new.example.com is off now)",
                  "PUT", "/v1/cas/partner-d/hostnames", {"hostnames": ["api.example.com"]},
                  status=200, obj=False)
    r = a.api("GET", host_path("new.example.com"))
    tap.ok(r.json == host_obj("new.example.com", ca=[], mode="off"),
           "a host not listed loses the CA", repr(r))
    r = s.written("PUT /v1/cas/partner-d/hostnames [*.assoc.example.org, api.example.com]", "PUT",
                  "/v1/cas/partner-d/hostnames", {"hostnames": ["*.assoc.example.org", "api.example.com"]},
                  status=200, obj=False)
    r = a.api("GET", "/v1/hosts/%2A.assoc.example.org")
    tap.ok(r.status == 200 and r.json == host_obj("*.assoc.example.org", ca=["partner-d"], mode="log"),
           "a wildcard can be associated (created in mode log)", repr(r))
    s.refused("PUT /v1/cas/partner-d/hostnames with the file host", "PUT", "/v1/cas/partner-d/hostnames",
              {"hostnames": ["*.assoc.example.org", "api.example.com", "file.example.com"]}, status=409,
              msg_has=(fo,))
    s.refused("PUT /v1/cas/file-ca/hostnames [] (the file host would lose it)", "PUT",
              "/v1/cas/file-ca/hostnames", {"hostnames": []}, status=409)
    s.refused("PUT /v1/cas/nope/hostnames", "PUT", "/v1/cas/nope/hostnames",
              {"hostnames": ["api.example.com"]}, status=404)
    for desc, body in (("a bad pattern", {"hostnames": ["a.*.example.com"]}),
                       ("hostnames a string", {"hostnames": "api.example.com"}),
                       ("no hostnames", {}),
                       ("an unknown field", {"hostnames": [], "extra": 1})):
        s.refused("PUT /v1/cas/partner-d/hostnames with %s" % desc, "PUT", "/v1/cas/partner-d/hostnames",
                  body, field=("extra" if "extra" in body else "hostnames"))
    s.refused("PUT /v1/cas/partner-d/hostnames as text/plain", "PUT", "/v1/cas/partner-d/hostnames",
              raw=b'{"hostnames": []}', ctype="text/plain", status=415)

    # ------------------------------------------------------------ verify
    verify_checks(s, P)
    live_checks(s, P)

    # ------------------------------------------------------------ deletes
    s.refused("DELETE /v1/hosts/mixed.example.com, If-Match a stale ETag", "DELETE",
              host_path("mixed.example.com"), status=412, headers={"If-Match": '"%s"' % ("3" * 32)})
    r = s.written("DELETE /v1/hosts/mixed.example.com, If-Match its ETag", "DELETE",
                  host_path("mixed.example.com"), status=204, obj=False,
                  headers={"If-Match": mixed_etag}, kind="host")
    tap.ok(r.body == b"", "204 has no body", repr(r))
    r = a.api("GET", host_path("mixed.example.com"))
    tap.ok(r.status == 404, "the deleted host is gone", repr(r))
    s.refused("DELETE /v1/hosts/mixed.example.com again", "DELETE", host_path("mixed.example.com"),
              status=404)
    def pem_files():
        d = os.path.join(s.state, "pem")
        return set(os.listdir(d)) if os.path.isdir(d) else set()
    pems0 = pem_files()
    s.written("PUT /v1/cas/partner-e (with the other token)", "PUT", "/v1/cas/partner-e",
              {"certificates": A.read(e_pem)}, status=201, token=A.OTHER_TOKEN, kind="ca")
    pems1 = pem_files()
    s.written("DELETE /v1/cas/partner-e", "DELETE", "/v1/cas/partner-e", status=204, obj=False, kind="ca")
    pems2 = pem_files()
    tap.ok(len(pems1 - pems0) == 1 and pems2 == pems0,
           "a new CA adds one PEM file to STATE/pem; deleting it removes that file again",
           "before %s\nwith partner-e %s\nafter %s" % (sorted(pems0), sorted(pems1), sorted(pems2)))
    check_state_files(s, ["[ca partner-a]", "[ca partner-c]", "[ca partner-d]",
                          "[host api.example.com]", "[host *.example.org]"])

    # ------------------------------------------------------------ audit, metrics
    log = a.log()
    pat = re.compile(r"api: %s PUT /v1/hosts/api\.example\.com -> 201 \(generation \d+, "
                     r"[\d.]+ ms: [\d.]+ waiting, [\d.]+ writing the state\)" % A.TOKEN_NAME)
    tap.ok(pat.search(log), "audit log: 'api: portal PUT /v1/hosts/api.example.com -> 201 "
           "(generation N, T ms: W waiting, D writing the state)'",
           "\n".join([l for l in log.splitlines() if "api:" in l][-10:]))
    tap.ok(re.search(r"api: other PUT /v1/cas/partner-e -> 201 \(generation \d+,", log),
           "audit log names the other token's NAME")
    tap.ok(re.search(r"\[warning\].*api: portal POST /v1/cas -> 409", log),
           "audit log: a refused write at warning level")
    m = A.metrics(a.admin_port)
    p = []
    for (method, status), n in sorted(s.writes.items()):
        k = 'mtls_spoa_api_requests_total{method="%s",code="%d"}' % (method, status)
        if m.get(k, 0) < n:
            p.append("%s = %s, at least %d made" % (k, m.get(k), n))
    k = 'mtls_spoa_api_requests_total{method="PUT",code="201"}'
    if not s.writes.get(("PUT", 201)) or m.get(k) != s.writes.get(("PUT", 201)):
        p.append("%s = %s, exactly %s made" % (k, m.get(k), s.writes.get(("PUT", 201))))
    for kind, n in (("ca", s.ca_changes), ("host", s.host_changes)):
        k = 'mtls_spoa_api_changes_total{kind="%s"}' % kind
        if m.get(k, 0) < n:
            p.append("%s = %s, at least %d changes made" % (k, m.get(k), n))
    tap.ok(not p, "/metrics counts the API requests by method and code, and the changes by kind",
           "\n".join(p + sorted(k for k in m if "api_" in k)))

    # ------------------------------------------------------------ restart
    restart_checks(s, ws)
    concurrency_checks(s)
    together_checks(s, P)
    broken_state_checks(s)


def check_state_files(s, sections):
    """STATE/api.conf is an INI file with the API's sections; every PEM
    file is named by the SHA-256 of its bytes and referenced by it."""
    p = []
    conf = os.path.join(s.state, "api.conf")
    try:
        text = A.read(conf)
    except OSError as e:
        tap.ok(False, "STATE/api.conf exists", e)
        return
    for sec in sections:
        if sec not in text:
            p.append("api.conf has no %s" % sec)
    pemdir = os.path.join(s.state, "pem")
    for name in sorted(os.listdir(pemdir) if os.path.isdir(pemdir) else []):
        with open(os.path.join(pemdir, name), "rb") as f:
            h = A.hashlib.sha256(f.read()).hexdigest()
        if name != h + ".pem":
            p.append("pem/%s holds bytes of SHA-256 %s" % (name, h))
        if "pem/" + name not in text:
            p.append("pem/%s is not referenced by api.conf" % name)
    tap.ok(not p, "STATE/api.conf holds %s; pem/<sha256>.pem content-addressed, all referenced"
           % ", ".join(sections), "\n".join(p + [text]))


def verify_checks(s, P):
    a = s.a
    pem = lambda n: A.read(P(n))  # noqa: E731
    inter = pem("tenant-a-intermediate.pem")
    cases = [
        ("a valid certificate with its chain on api.example.com (log)",
         {"host": "api.example.com", "certificate": pem("a-valid.crt"), "chain": inter},
         P("a-valid.crt"), P("tenant-a-intermediate.pem"), "api.example.com", "api.example.com"),
        ("a rogue certificate on x.example.org (log)",
         {"host": "x.example.org", "certificate": pem("rogue.crt")},
         P("rogue.crt"), None, "x.example.org", "x.example.org"),
        ("no certificate on file.example.com (enforce)",
         {"host": "file.example.com"}, None, None, "file.example.com", "file.example.com"),
        ("tenant B on file.example.com (enforce, ok)",
         {"host": "file.example.com", "certificate": pem("b-valid.crt")},
         P("b-valid.crt"), None, "file.example.com", "file.example.com"),
        ("an SNI other than the host",
         {"host": "api.example.com", "sni": "file.example.com", "certificate": pem("a-valid.crt"),
          "chain": inter},
         P("a-valid.crt"), P("tenant-a-intermediate.pem"), "file.example.com", "api.example.com"),
    ]
    watched = ("mtls_spoa_verdicts_total", "mtls_spoa_cache_", "mtls_spoa_verify_duration_seconds_count",
               "mtls_spoa_notify_", "mtls_spoa_verify_inline_total")

    def side(m):
        return {k: v for k, v in m.items() if k.startswith(watched)}
    c = S.Client(a.addr)
    c.hello()
    sid = 1
    for desc, body, cert, chain, sni, host in cases:
        m0 = side(A.metrics(a.admin_port))
        h0 = A.state_hash(s.state)
        g0 = s.live_gen()
        r = a.api("POST", "/v1/verify", body)
        m1 = side(A.metrics(a.admin_port))
        p = []
        if r.status != 200 or not isinstance(r.json, dict) or set(r.json) != {"variables"}:
            p.append("want 200 {\"variables\": {...}}: %r" % r)
        if m1 != m0:
            p.append("metrics moved: %s" % {k: (m0.get(k), m1.get(k)) for k in set(m0) | set(m1)
                                            if m0.get(k) != m1.get(k)})
        if A.state_hash(s.state) != h0 or s.live_gen() != g0:
            p.append("the state or the generation changed")
        tap.ok(not p, "POST /v1/verify, %s: 200, no side effect (verdict, cache, notify metrics, state)"
               % desc, "\n".join(p))
        got = (r.json or {}).get("variables")
        der = A.der(cert) if cert else None
        chain_der = A.der(chain) if chain else None
        f = c.notify(sid, 1, [S.check_cert_message(cert=der, chain=chain_der, sni=sni, host=host)])
        sid += 1
        spop = {k: v for k, (v, _t) in f.vars().items()}
        tap.ok(got == spop, "POST /v1/verify, %s: exactly the SPOP answer's variables (result %s)"
               % (desc, spop.get("result")),
               "verify: %s\nspop:   %s" % (json.dumps(got, sort_keys=True), json.dumps(spop, sort_keys=True,
                                                                                       default=str)))
    c.close()
    for desc, body, field in (
            ("certificate not PEM", {"host": "api.example.com", "certificate": "junk"}, "certificate"),
            ("chain not PEM", {"host": "api.example.com", "certificate": pem("a-valid.crt"),
                               "chain": "junk"}, "chain"),
            ("no host", {"certificate": pem("a-valid.crt")}, "host"),
            ("host a number", {"host": 5}, "host"),
            ("an unknown field", {"host": "api.example.com", "cert": "x"}, "cert")):
        s.refused("POST /v1/verify with %s" % desc, "POST", "/v1/verify", body, field=field)
    s.refused("POST /v1/verify as text/plain", "POST", "/v1/verify", raw=b'{"host": "a.example.com"}',
              ctype="text/plain", status=415)


def live_checks(s, P):
    """A 2xx means live in the data path: the very next NOTIFY, on a SPOP
    connection opened before the write, sees the change; a replaced CA's
    cached verdicts are not reused."""
    a = s.a
    host = "live.example.com"
    leaf, inter = A.der(P("a-valid.crt")), A.der(P("tenant-a-intermediate.pem"))
    b_leaf, rogue = A.der(P("b-valid.crt")), A.der(P("rogue.crt"))
    c = S.Client(a.addr)
    c.hello()
    sid = [100]

    def verdict(cert, chain=None):
        sid[0] += 1
        v = c.notify(sid[0], 1, [S.check_cert_message(cert=cert, chain=chain, sni=host, host=host)]).vars()
        return v.get("action", (None,))[0], v.get("result", (None,))[0]
    s.written("PUT /v1/cas/live-ca (tenant A)", "PUT", "/v1/cas/live-ca",
              {"certificates": A.read(P("tenant-a-ca.pem"))}, status=201, kind="ca")
    s.written("PUT /v1/hosts/live.example.com enforce", "PUT", host_path(host),
              {"ca": ["live-ca"], "mode": "enforce"}, status=201, kind="host")
    got = [verdict(leaf, inter), verdict(leaf, inter)]
    tap.ok(got == [("allow", "ok")] * 2, "the next NOTIFY after the write sees the new host (tenant A allowed, twice)",
           repr(got))
    s.written("PUT /v1/cas/live-ca (now tenant B)", "PUT", "/v1/cas/live-ca",
              {"certificates": A.read(P("tenant-b-ca.pem"))}, status=200, kind="ca")
    got = [verdict(leaf, inter), verdict(b_leaf)]
    tap.ok(got == [("deny", "untrusted"), ("allow", "ok")],
           "the next NOTIFY after replacing the CA: tenant A's cached ok is not reused (untrusted), tenant B ok",
           repr(got))
    bad = []
    for i in range(10):
        mode = "log" if i % 2 == 0 else "enforce"
        r = a.api("PATCH", host_path(host), {"mode": mode}, ctype="application/merge-patch+json")
        want = ("log" if mode == "log" else "deny", "untrusted")
        v = verdict(rogue)
        if r.status != 200 or v != want:
            bad.append("PATCH mode %s: %d, then %r (want %r)" % (mode, r.status, v, want))
    tap.ok(not bad, "10 PATCHes log <-> enforce: each one applies to the very next NOTIFY", "\n".join(bad))
    s.written("DELETE /v1/hosts/live.example.com", "DELETE", host_path(host), status=204, obj=False, kind="host")
    v = verdict(rogue)
    tap.ok(v == ("allow", "no_policy"), "after DELETE the host's name has no policy at the next NOTIFY", repr(v))
    s.written("DELETE /v1/cas/live-ca", "DELETE", "/v1/cas/live-ca", status=204, obj=False, kind="ca")
    c.close()


def unix_checks(ws, P):
    """Without admin-token-file the API is served on unix-socket admin
    listeners only (the audit names the caller "unix"); TCP gets 403."""
    sock = os.path.join(ws.dir, "admin.sock")
    state = os.path.join(ws.dir, "unix-state")
    b = A.ApiAgent(ws.dir, "[agent]\nstate-dir = %s\n" % state, name="unix-agent",
                   extra_args=["--admin-listen", "unix:" + sock])
    ws.agents.append(b)
    b.start()
    port = b.admin_port
    if not wait_for(lambda: os.path.exists(sock)):
        tap.ok(False, "the unix admin socket appears", b.log()[-1000:])
        return
    body = {"certificates": A.read(P("tenant-b-ca.pem"))}
    r = A.request(sock, "PUT", "/v1/cas/over-unix", body, token=None)
    tap.ok(r.status == 201 and (r.json or {}).get("name") == "over-unix",
           "no token file: PUT /v1/cas over the unix socket, no token: 201", repr(r))
    tap.ok(re.search(r"api: unix PUT /v1/cas/over-unix -> 201 \(generation \d+,", b.log()),
           "the audit names the caller 'unix'", b.log()[-1000:])
    h0 = A.state_hash(state)
    r = A.request(port, "PUT", "/v1/cas/over-tcp", body, token=None)
    p = error_problems(r, 403, ANY, ())
    r2 = A.request(port, "GET", "/v1/cas/over-unix", token=A.TOKEN)
    p += ["GET with a token: %d" % r2.status] if r2.status != 403 else []
    if A.state_hash(state) != h0:
        p.append("the state changed")
    tap.ok(not p, "no token file: /v1 on TCP is 403 (with or without a token), nothing changed",
           "\n".join(p + [repr(r)]))
    tap.ok(b.stop() == 0, "the unix-socket agent exits 0")


def restart_checks(s, ws):
    a = s.a

    def snapshot():
        out = {}
        for kind in ("cas", "hosts"):
            r = a.api("GET", "/v1/" + kind)
            for it in (r.json or {}).get("items", []):
                key = it.get("name") if kind == "cas" else it.get("pattern")
                one = a.api("GET", "/v1/%s/%s" % (kind, urllib.parse.quote(key, safe="")))
                out[(kind, key)] = (one.status, one.body, one.hdr("etag"))
        return out
    before = snapshot()
    h0 = A.state_hash(s.state)
    ncas = sum(1 for k in before if k[0] == "cas")
    nhosts = sum(1 for k in before if k[0] == "hosts")
    rc = a.stop()
    tap.ok(rc == 0, "agent exits 0 on SIGTERM", "exit %r" % rc)
    rc, out, err = a.check()
    def from_api(k):
        return json.loads(before[k][1]).get("source") == "api"
    n_api_cas = sum(1 for k in before if k[0] == "cas" and from_api(k))
    n_api_hosts = sum(1 for k in before if k[0] == "hosts" and from_api(k))
    want = "OK: %d CAs, %d hosts (%d CAs, %d hosts from %s)" % (
        ncas, nhosts, n_api_cas, n_api_hosts, os.path.join(s.state, "api.conf"))
    tap.ok(rc == 0 and out.strip() == want,
           "--check counts the state directory's objects: " + want,
           "exit %d, stdout %r, stderr %r" % (rc, out, err))
    empty = os.path.join(ws.dir, "empty-state")
    os.mkdir(empty)
    rc, out, err = a.check("--state-dir", empty)
    tap.ok(rc == 0 and out.strip() == "OK: 1 CAs, 1 hosts",
           "--check --state-dir EMPTY: the file's objects alone", "exit %d, %r %r" % (rc, out, err))
    tap.ok(A.state_hash(s.state) == h0, "--check leaves the state directory unchanged")
    try:
        a.start()
    except RuntimeError as e:
        tap.ok(False, "agent restarts on the state directory", e)
        return
    after = snapshot()
    diff = sorted(set(before) ^ set(after)) + sorted(k for k in before if k in after and before[k] != after[k])
    # file-ca partner-a partner-c partner-d; file.example.com
    # api.example.com *.example.org **.deep.example.org * new.example.com
    # *.assoc.example.org
    tap.ok(not diff and (ncas, nhosts) == (4, 7),
           "after a restart every object is there: %d CAs and %d hosts, same bodies, same ETags"
           % (ncas, nhosts),
           "\n".join("%s: %r -> %r" % (k, before.get(k), after.get(k)) for k in diff))
    tap.ok(A.state_hash(s.state) == h0, "a start leaves the state directory unchanged",
           A.state_listing(s.state))
    s.gen = 0
    s.written("a write after the restart", "PATCH", host_path("api.example.com"), {"mode": "enforce"},
              ctype="application/merge-patch+json", status=200, kind="host")


def concurrency_checks(s):
    """Concurrent writers are serialized; If-Match makes them safe."""
    a = s.a
    r = a.api("GET", host_path("api.example.com"))
    etag = r.hdr("etag")
    results = [None] * 8

    # Every value differs from the current one: a write that changed
    # nothing would keep the ETag, and a second If-Match write would
    # rightly succeed.
    cur = (r.json or {}).get("verify_depth")
    vals = [v for v in range(10, 32) if v != cur][:8]

    def patch(i):
        results[i] = a.api("PATCH", host_path("api.example.com"), {"verify_depth": vals[i]},
                           ctype="application/merge-patch+json", headers={"If-Match": etag})
    threads = [threading.Thread(target=patch, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status for r in results)
    won = [i for i, r in enumerate(results) if r.status == 200]
    final = a.api("GET", host_path("api.example.com")).json or {}
    tap.ok(codes == [200] + [412] * 7 and len(won) == 1 and final.get("verify_depth") == vals[won[0]],
           "8 concurrent PATCHes with the same If-Match: exactly one 200, seven 412, the winner's value stays",
           "codes %s, final verify_depth %r" % (codes, final.get("verify_depth")))

    pems = [certs.make_ca(os.path.dirname(s.conf_path), "conc-%d" % i, "Concurrent CA %d" % i)
            for i in range(6)]

    def put(i):
        results[i] = a.api("PUT", "/v1/cas/conc-%d" % i, {"certificates": A.read(pems[i].pem)})
    threads = [threading.Thread(target=put, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gens = [r.hdr("mtls-generation") for r in results[:6]]
    listed = {c.get("name") for c in (a.api("GET", "/v1/cas").json or {}).get("items", [])}
    tap.ok([r.status for r in results[:6]] == [201] * 6 and len(set(gens)) == 6
           and all("conc-%d" % i in listed for i in range(6)),
           "6 concurrent PUTs of new CAs: all 201, 6 distinct generations, all 6 there",
           "statuses %s, generations %s, listed %s" % ([r.status for r in results[:6]], gens, sorted(listed)))
    for i in range(6):
        s.written("DELETE /v1/cas/conc-%d" % i, "DELETE", "/v1/cas/conc-%d" % i, status=204, obj=False)


def api_objects(a):
    out = {}
    for kind in ("cas", "hosts"):
        for it in (a.api("GET", "/v1/" + kind).json or {}).get("items", []):
            if it.get("source") == "api":
                out[(kind, it.get("name") or it.get("pattern"))] = it
    return out


def wait_for(cond, seconds=10.0):
    deadline = time.monotonic() + seconds
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(0.05)


def together_checks(s, P):
    """The static file changes (watch, SIGHUP) and API writes never lose
    each other's updates; a file that takes a name the API owns is
    refused, and so are API writes while the files are broken."""
    a = s.a
    base = api_objects(a)
    with open(s.conf_path) as f:
        orig = f.read()
    with open(s.conf_path, "a") as f:
        f.write("\n[host watched.example.com]\nmode = off\n")
    line = orig.count("\n") + 2
    r = wait_for(lambda: (lambda r: r if r.status == 200 else None)(
        a.api("GET", host_path("watched.example.com"))))
    tap.ok(r and r.json.get("source") == "%s:%d" % (s.conf_path, line),
           "a [host] added to the file is live after the watch reload (source FILE:LINE)", repr(r))
    tap.ok(api_objects(a) == base, "the watch reload kept every API object")
    s.written("PUT /v1/hosts/after-watch.example.com after the file change", "PUT",
              host_path("after-watch.example.com"), {"mode": "off"}, status=201, kind="host")
    r = a.api("GET", host_path("watched.example.com"))
    tap.ok(r.status == 200, "the API write kept the file's new host", repr(r))
    base = api_objects(a)
    nlog = a.log().count("] reloaded ")
    os.kill(a.proc.pid, signal.SIGHUP)
    tap.ok(wait_for(lambda: a.log().count("] reloaded ") > nlog), "SIGHUP reloads")
    tap.ok(api_objects(a) == base and a.api("GET", host_path("watched.example.com")).status == 200,
           "a SIGHUP reload keeps the API objects and the file's")

    nrej = a.log().count("reload rejected")
    with open(s.conf_path, "a") as f:
        f.write("\n[ca partner-c]\nfile = %s\n" % P("tenant-b-ca.pem"))
    tap.ok(wait_for(lambda: a.log().count("reload rejected") > nrej),
           "a file that defines a CA the API owns (partner-c) is a rejected reload",
           a.log()[-1500:])
    r = a.api("GET", "/v1/cas/partner-c")
    tap.ok(r.status == 200 and r.json.get("source") == "api", "partner-c stays the API's", repr(r))
    s.refused("PATCH while the files on disk clash with the state", "PATCH", host_path("api.example.com"),
              {"mode": "enforce"}, ctype="application/merge-patch+json", status=409,
              msg_has=("partner-c",))
    s.refused("PUT /v1/cas/partner-d while the files on disk clash with the state", "PUT",
              "/v1/cas/partner-d", {"certificates": A.read(P("tenant-b-ca.pem"))}, status=409,
              msg_has=("partner-c",))
    with open(s.conf_path, "w") as f:
        f.write(orig)
    tap.ok(wait_for(lambda: a.api("GET", host_path("watched.example.com")).status == 404),
           "the file restored: the watch reload removes its host again")
    s.written("PATCH after the file is fixed", "PATCH", host_path("api.example.com"), {"mode": "enforce"},
              ctype="application/merge-patch+json", status=200, kind="host")


def broken_state_checks(s):
    """A state directory that does not load refuses the start (and
    --check), naming STATE/api.conf:LINE."""
    a = s.a
    rc = a.stop()
    tap.ok(rc == 0, "agent exits 0 on SIGTERM (no SPOP connection since its start)", "exit %r" % rc)
    conf = os.path.join(s.state, "api.conf")
    with open(conf) as f:
        good = f.read()
    with open(conf, "a") as f:
        f.write("\n[host broken.example.com]\nmode = sideways\n")
    rc, out, err = a.check()
    tap.ok(rc == 1 and "%s:" % conf in err, "--check of a broken STATE/api.conf: exit 1, naming api.conf:LINE",
           "exit %d, %r %r" % (rc, out, err))
    try:
        a.start(timeout=5)
        started = True
    except RuntimeError:
        started = False
    tap.ok(not started and "%s:" % conf in a.log(), "a broken STATE/api.conf refuses the start, naming it",
           a.log()[-1000:])
    a.kill()
    with open(conf, "w") as f:
        f.write(good)
    try:
        a.start()
        tap.ok(True, "the repaired state starts again")
    except RuntimeError as e:
        tap.ok(False, "the repaired state starts again", e)


if __name__ == "__main__":
    A.run_test(tap, "mtls-api-", main, 300)
