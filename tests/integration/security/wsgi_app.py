#!/usr/bin/env python3
"""WSGI application for test_security.sh: shows what a CGI-style backend
sees of the certificate headers.

Usage: wsgi_app.py PORT LOGFILE

Served by Python's wsgiref (3.11), whose get_environ() maps a header name
to HTTP_<NAME> with NAME = name.replace('-', '_').upper(): "Client-Cert"
and "Client_Cert" both become HTTP_CLIENT_CERT, and repeated names are
joined with ",". That is the CGI/PHP mapping (RFC 3875 4.1.18), so a
forged "Client_Cert" lands in the same variable as the real Client-Cert.

The answer's first line is "served=wsgi", then HTTP_HOST and every environ
key that looks like a certificate or verdict header (CERT or MTLS in it),
one "KEY=value" a line. Every request is written to LOGFILE (flushed)
before it is answered, so a request that reached the app is always
logged by the time its client has the answer.

An "Upgrade:" request (h2c, websocket, anything) is answered 101 with the
body "TUNNEL-OPEN" and the connection is then closed: a client that sees
101 knows a tunnel would have been opened past the proxy's checks.
"""
import base64
import hashlib
import socketserver
import sys
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

LOG = None


def log(line):
    LOG.write(line + "\n")
    LOG.flush()


def interesting(env):
    out = []
    for k in sorted(env):
        if k.startswith("HTTP_") and ("CERT" in k or "MTLS" in k):
            out.append("%s=%s" % (k, env[k]))
    return out


def app(environ, start_response):
    lines = ["served=wsgi", "HTTP_HOST=%s" % environ.get("HTTP_HOST", "")]
    lines += interesting(environ)
    log("wsgi-served %s %s %s" % (environ.get("REQUEST_METHOD"),
                                  environ.get("PATH_INFO"),
                                  " ".join(interesting(environ))))
    body = ("\n".join(lines) + "\n").encode("latin-1", "replace")
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(WSGIRequestHandler):
    def log_message(self, *args):
        pass

    def handle(self):
        # wsgiref's handle(), plus the 101 answer that the WSGI interface
        # itself cannot give (hop-by-hop headers are not allowed there).
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline or len(self.raw_requestline) > 65536:
            return
        if not self.parse_request():
            return
        env = self.get_environ()
        upgrade = self.headers.get("Upgrade")
        if upgrade is not None:
            log("wsgi-served UPGRADE %s %s upgrade=%s %s" % (
                self.command, env.get("PATH_INFO"), upgrade,
                " ".join(interesting(env))))
            # A real WebSocket answer carries Sec-WebSocket-Accept (RFC
            # 6455 4.2.2): HAProxy refuses a 101 without a valid one.
            accept = b""
            key = self.headers.get("Sec-WebSocket-Key")
            if key is not None:
                digest = hashlib.sha1((key.strip() + WS_GUID).encode("latin-1")).digest()
                accept = b"Sec-WebSocket-Accept: " + base64.b64encode(digest) + b"\r\n"
            self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\n"
                             b"Connection: Upgrade\r\nUpgrade: " +
                             upgrade.encode("latin-1") + b"\r\n" + accept +
                             b"\r\nTUNNEL-OPEN")
            self.wfile.flush()
            self.close_connection = True
            return
        handler = ServerHandler(self.rfile, self.wfile, self.get_stderr(),
                                env, multithread=True)
        handler.request_handler = self
        handler.run(self.server.get_app())


class Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global LOG
    port, logfile = int(sys.argv[1]), sys.argv[2]
    LOG = open(logfile, "a", encoding="latin-1")
    srv = Server(("127.0.0.1", port), Handler)
    srv.set_app(app)
    srv.serve_forever()


if __name__ == "__main__":
    main()
