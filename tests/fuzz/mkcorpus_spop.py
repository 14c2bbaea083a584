#!/usr/bin/env python3
"""Write the seed corpus of tests/fuzz/fuzz_spop.c.

Frames shaped as HAProxy 2.6 sends them (SPOE.txt section 3). The
certificate bytes are synthetic DER-shaped blobs, not real certificates.

The real-haproxy26-* seeds are not written here: they are frames captured
from HAProxy 2.6.12 (health-check HELLO, HELLO, a check-client-cert NOTIFY
over plain HTTP, the DISCONNECT sent on soft stop, and the three in a row).

    python3 tests/fuzz/mkcorpus_spop.py [OUTDIR]   (default: corpus/spop)
"""
import os
import struct
import sys


def varint(v):
    # SPOE.txt 3.1 "Peers encoding"
    if v < 240:
        return bytes([v])
    out = [(v | 0xF0) & 0xFF]
    v = (v - 240) >> 4
    while v >= 128:
        out.append((v | 0x80) & 0xFF)
        v = (v - 128) >> 7
    out.append(v)
    return bytes(out)


def name(s):
    b = s.encode() if isinstance(s, str) else s
    return varint(len(b)) + b


def t_null():
    return b"\x00"


def t_bool(b):
    return bytes([0x11 if b else 0x01])


def t_uint32(v):
    return b"\x03" + varint(v)


def t_int32(v):
    return b"\x02" + varint(v & 0xFFFFFFFFFFFFFFFF)


def t_str(s):
    return b"\x08" + name(s)


def t_bin(b):
    return b"\x09" + name(b)


def kv(k, v):
    return name(k) + v


def frame(ftype, payload, sid=0, fid=0, flags=1):
    body = bytes([ftype]) + struct.pack(">I", flags) + varint(sid) + varint(fid) + payload
    return struct.pack(">I", len(body)) + body


def fake_der(size, seed):
    # SEQUENCE with a 2-byte length, then deterministic filler.
    body = bytes((seed * 31 + i * 7) & 0xFF for i in range(size - 4))
    return b"\x30\x82" + struct.pack(">H", len(body)) + body


def hello(healthcheck=False, engine=True):
    p = kv("supported-versions", t_str("2.0"))
    p += kv("max-frame-size", t_uint32(16380))
    p += kv("capabilities", t_str("pipelining,async"))
    if healthcheck:
        p += kv("healthcheck", t_bool(True))
    if engine:
        p += kv("engine-id", t_str("0A7E5F3C-1B2D-4E6F-8A9B-0C1D2E3F4A5B"))
    return frame(1, p)


def notify(sid, fid, cert, chain, sni, host, msg="check-client-cert"):
    args = [kv("cert", cert), kv("chain", chain), kv("sni", sni)]
    if host is not None:
        args.append(kv("host", host))
    p = name(msg) + bytes([len(args)]) + b"".join(args)
    return frame(3, p, sid, fid)


def disconnect(code, msg):
    return frame(2, kv("status-code", t_uint32(code)) + kv("message", t_str(msg)))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "spop")
    os.makedirs(out, exist_ok=True)
    leaf = fake_der(420, 1)
    chain = fake_der(380, 2) + fake_der(300, 3)
    n_cert = notify(12, 1, t_bin(leaf), t_bin(chain), t_str("www.example.com"),
                    t_str("www.example.com"))
    n_nocert = notify(13, 1, t_null(), t_null(), t_null(), t_str("example.org:8443"))
    seeds = {
        "hello": hello(),
        "hello-healthcheck": hello(healthcheck=True, engine=False),
        "notify-check-client-cert": n_cert,
        "notify-no-cert": n_nocert,
        # The TCP message (policy by SNI alone), and a Host list.
        "notify-sni-message": notify(14, 1, t_bin(leaf), t_null(),
                                     t_str("www.example.com"), None,
                                     msg="check-client-cert-sni"),
        "notify-host-list": notify(15, 1, t_null(), t_null(), t_str("a.example"),
                                   t_str("a.example, b.example")),
        "disconnect": disconnect(2, "a timeout occurred"),
        # A whole connection: HELLO, two pipelined NOTIFYs, DISCONNECT.
        "stream-hello-notify-disconnect": hello() + n_cert + n_nocert
        + disconnect(0, "normal"),
        # Two messages in one NOTIFY, an empty arg name, 0 args, all types.
        "notify-two-messages": frame(3, name("check-client-cert") + b"\x02"
                                     + kv("", t_int32(-1))
                                     + kv("sni", t_str("a"))
                                     + name("other") + b"\x00", 2**40, 239),
        "hello-int-types": frame(1, kv("supported-versions", t_str(" 2.0 , 1.0"))
                                 + kv("max-frame-size", b"\x05" + varint(256))
                                 + kv("capabilities", t_str(""))
                                 + kv("x", b"\x06\x7f\x00\x00\x01")
                                 + kv("y", b"\x07" + bytes(16))
                                 + kv("z", b"\x04" + varint(2**64 - 1))),
    }
    for fname, data in seeds.items():
        with open(os.path.join(out, fname), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
