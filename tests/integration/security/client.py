#!/usr/bin/env python3
"""Crafted requests over TLS for test_security.sh, which curl cannot send.

  client.py h1 OPTS REQUEST
      REQUEST is sent byte for byte (latin-1) on one TLS connection
      (ALPN http/1.1); the answer is read until the server closes, its
      Content-Length is complete, or 4 s have passed.
  client.py h2 OPTS STREAM...
      one TLS connection with ALPN h2; each STREAM is a JSON list of
      [name, value] header pairs sent as-is (h2's own validation and
      normalisation are off, so duplicates, "host" beside ":authority"
      and missing pseudo-headers go out as written). All HEADERS frames
      are written before any answer is read, so the streams are
      interleaved on the connection.
OPTS: --port N --pki DIR [--sni NAME | --no-sni] [--cert NAME] --out PREFIX

h1 writes PREFIX.hdr (status line and headers) and PREFIX.body and prints
the status (000 when there was no answer). h2 writes PREFIX.N.hdr and
PREFIX.N.body for stream N (0, 1, ... in the order given; "HTTP/2 STATUS"
then "name: value" lines, a reset stream gets "# reset CODE") and prints
one status per stream. The server certificate is verified against the
demo server CA, the name is not checked (tests use names it does not
cover).
"""
import argparse
import json
import socket
import ssl
import sys
import time

DEADLINE = 4.0


def tls_connect(a, alpn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(a.pki + "/server-ca.pem")
    if a.cert:
        ctx.load_cert_chain(a.pki + "/" + a.cert + ".pem",
                            a.pki + "/" + a.cert + ".key")
    ctx.set_alpn_protocols([alpn])
    raw = socket.create_connection(("127.0.0.1", a.port), timeout=DEADLINE)
    sni = None if a.no_sni else a.sni
    s = ctx.wrap_socket(raw, server_hostname=sni)
    return s


def write_out(prefix, head, body):
    with open(prefix + ".hdr", "wb") as f:
        f.write(head)
    with open(prefix + ".body", "wb") as f:
        f.write(body)


def dechunk(b):
    out = b""
    while b:
        line, sep, rest = b.partition(b"\r\n")
        if not sep:
            break
        try:
            n = int(line.split(b";")[0], 16)
        except ValueError:
            break
        if n == 0:
            break
        out += rest[:n]
        b = rest[n + 2:]
    return out


def run_h1(a):
    req = a.items[0].encode("latin-1")
    data = b""
    try:
        s = tls_connect(a, "http/1.1")
        s.sendall(req)
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            s.settimeout(max(0.05, end - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ssl.SSLError, ConnectionError):
                break
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                cl = None
                for line in head.split(b"\r\n")[1:]:
                    n, _, v = line.partition(b":")
                    if n.strip().lower() == b"content-length":
                        cl = int(v.strip())
                if cl is not None and len(body) >= cl:
                    break
        s.close()
    except (OSError, ssl.SSLError) as e:
        sys.stderr.write("client.py: %s\n" % e)
    head, sep, body = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    status = "000"
    parts = head.split(b" ", 2)
    if sep and len(parts) >= 2 and parts[0].startswith(b"HTTP/"):
        status = parts[1].decode("latin-1")
    write_out(a.out, head + b"\r\n", body)
    print(status)


def run_h2(a):
    import h2.config
    import h2.connection
    import h2.events

    specs = [json.loads(x) for x in a.items]
    res = [{"status": "000", "head": [], "body": b"", "done": False,
            "reset": None} for _ in specs]
    try:
        s = tls_connect(a, "h2")
        if s.selected_alpn_protocol() != "h2":
            raise OSError("ALPN h2 not selected")
        cfg = h2.config.H2Configuration(
            client_side=True, header_encoding=None,
            validate_outbound_headers=False, normalize_outbound_headers=False,
            validate_inbound_headers=False)
        c = h2.connection.H2Connection(config=cfg)
        c.initiate_connection()
        ids = {}
        for i, hdrs in enumerate(specs):
            sid = c.get_next_available_stream_id()
            ids[sid] = i
            c.send_headers(sid, [(n.encode("latin-1"), v.encode("latin-1"))
                                 for n, v in hdrs], end_stream=True)
        s.sendall(c.data_to_send())
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end and not all(r["done"] for r in res):
            s.settimeout(max(0.05, end - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ssl.SSLError, ConnectionError):
                break
            if not chunk:
                break
            for ev in c.receive_data(chunk):
                r = res[ids[ev.stream_id]] if getattr(ev, "stream_id", 0) in ids else None
                if isinstance(ev, h2.events.ResponseReceived):
                    for n, v in ev.headers:
                        n, v = n.decode("latin-1"), v.decode("latin-1")
                        if n == ":status":
                            r["status"] = v
                        else:
                            r["head"].append("%s: %s" % (n, v))
                elif isinstance(ev, h2.events.DataReceived):
                    r["body"] += ev.data
                    c.acknowledge_received_data(ev.flow_controlled_length,
                                                ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    r["done"] = True
                elif isinstance(ev, h2.events.StreamReset):
                    r["done"] = True
                    r["reset"] = int(ev.error_code)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    for x in res:
                        if not x["done"]:
                            x["done"] = True
                            x["reset"] = "goaway %d" % int(ev.error_code)
            out = c.data_to_send()
            if out:
                s.sendall(out)
        s.close()
    except Exception as e:  # h2 protocol errors included: report, go on
        sys.stderr.write("client.py: %r\n" % e)
    for i, r in enumerate(res):
        head = "HTTP/2 %s\r\n" % r["status"]
        head += "".join(h + "\r\n" for h in r["head"])
        if r["reset"] is not None:
            head += "# reset %s\r\n" % r["reset"]
        write_out("%s.%d" % (a.out, i), head.encode("latin-1"), r["body"])
        print(r["status"])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("proto", choices=["h1", "h2"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pki", required=True)
    p.add_argument("--sni")
    p.add_argument("--no-sni", action="store_true")
    p.add_argument("--cert")
    p.add_argument("--out", required=True)
    p.add_argument("items", nargs="+")
    a = p.parse_args()
    (run_h1 if a.proto == "h1" else run_h2)(a)


if __name__ == "__main__":
    main()
