"""spoplib - a small, independent SPOP 2.0 client for the integration tests.

Written from HAProxy's SPOE.txt, section 3 (not from the agent's C code) so
that it is an independent check of the agent. Python 3 standard library only.

Encoding summary (SPOE.txt 3.1, 3.2):
  frame      = <LENGTH:4 bytes big endian> <TYPE:1> <FLAGS:4 BE> <SID:varint>
               <FID:varint> <PAYLOAD>
  KV-LIST    = [ <NAME: varint length + bytes> <TYPED-DATA> ]...
  messages   = [ <NAME: varint length + bytes> <NB-ARGS:1> <KV-LIST> ]...
  actions    = [ <TYPE:1> <NB-ARGS:1> <ARGS> ]...; set-var args are
               <SCOPE:1> <NAME: varint length + bytes> <TYPED-DATA>
  typed data = <TYPE:low 4 bits | FLAGS:high 4 bits> <DATA>; BOOL's value
               is flag bit 0x10.
  varints    = HAProxy "peers" encoding.
"""

import ipaddress
import socket
import struct
import time

# Frame types (SPOE.txt 3.2.2)
UNSET = 0
HAPROXY_HELLO = 1
HAPROXY_DISCONNECT = 2
NOTIFY = 3
AGENT_HELLO = 101
AGENT_DISCONNECT = 102
ACK = 103

FRAME_NAMES = {
    UNSET: "UNSET", HAPROXY_HELLO: "HAPROXY-HELLO",
    HAPROXY_DISCONNECT: "HAPROXY-DISCONNECT", NOTIFY: "NOTIFY",
    AGENT_HELLO: "AGENT-HELLO", AGENT_DISCONNECT: "AGENT-DISCONNECT",
    ACK: "ACK",
}

FLAG_FIN = 0x00000001
FLAG_ABORT = 0x00000002

# Typed data (SPOE.txt 3.1)
T_NULL = 0
T_BOOL = 1
T_INT32 = 2
T_UINT32 = 3
T_INT64 = 4
T_UINT64 = 5
T_IPV4 = 6
T_IPV6 = 7
T_STRING = 8
T_BINARY = 9

# Actions (SPOE.txt 3.4)
ACT_SET_VAR = 1
ACT_UNSET_VAR = 2
SCOPE_PROC = 0
SCOPE_SESS = 1
SCOPE_TXN = 2
SCOPE_REQ = 3
SCOPE_RES = 4

# Status codes (SPOE.txt 3.5)
ST_NORMAL = 0
ST_IO = 1
ST_TIMEOUT = 2
ST_TOO_BIG = 3
ST_INVALID = 4
ST_NO_VERSION = 5
ST_NO_FRAME_SIZE = 6
ST_NO_CAPABILITIES = 7
ST_BAD_VERSION = 8
ST_BAD_FRAME_SIZE = 9
ST_FRAG_NOT_SUPPORTED = 10

VARINT_MAX_LEN = 10


class ProtocolError(Exception):
    """The agent sent bytes that do not follow SPOE.txt."""


class Closed(Exception):
    """The agent closed the connection (EOF or reset)."""

    def __init__(self, how, pending=b""):
        super().__init__(how)
        self.how = how            # "eof" or "reset"
        self.pending = pending    # bytes of an incomplete frame, if any


# ---------------------------------------------------------------- varints

def encode_varint(v):
    """HAProxy peers encoding: < 240 is one byte; otherwise the first byte
    carries the low 4 bits with 0xF0 set, then 7-bit groups with bit 7 as
    the continuation flag, each group taken after subtracting its base."""
    if v < 0:
        raise ValueError("varint must be >= 0")
    if v < 240:
        return bytes([v])
    out = bytearray([(v & 0xFF) | 0xF0])
    v = (v - 240) >> 4
    while v >= 128:
        out.append((v & 0xFF) | 0x80)
        v = (v - 128) >> 7
    out.append(v)
    return bytes(out)


def decode_varint(buf, pos):
    """Returns (value, new_pos). Raises ProtocolError when truncated or
    longer than VARINT_MAX_LEN bytes."""
    if pos >= len(buf):
        raise ProtocolError("truncated varint")
    v = buf[pos]
    start = pos
    pos += 1
    if v < 240:
        return v, pos
    shift = 4
    while True:
        if pos >= len(buf):
            raise ProtocolError("truncated varint")
        if pos - start >= VARINT_MAX_LEN:
            raise ProtocolError("varint longer than %d bytes" % VARINT_MAX_LEN)
        b = buf[pos]
        pos += 1
        v += b << shift
        shift += 7
        if b < 128:
            return v, pos


# ---------------------------------------------------------------- typed data

class Typed:
    """An explicitly typed value, for the integer and address types whose
    Python representation is ambiguous."""

    __slots__ = ("type", "value")

    def __init__(self, type_, value):
        self.type = type_
        self.value = value

    def __repr__(self):
        return "Typed(%d, %r)" % (self.type, self.value)

    def __eq__(self, other):
        return (isinstance(other, Typed) and self.type == other.type
                and self.value == other.value)

    def __hash__(self):
        return hash((self.type, self.value))


def Int32(v):
    return Typed(T_INT32, v)


def UInt32(v):
    return Typed(T_UINT32, v)


def Int64(v):
    return Typed(T_INT64, v)


def UInt64(v):
    return Typed(T_UINT64, v)


def _signed_to_varint(v, bits):
    # SPOE.txt does not say how a negative integer travels. HAProxy encodes
    # and decodes INT32 and INT64 alike through its 64-bit sample integer,
    # so a negative value is its 64-bit two's complement (a 10-byte varint)
    # whatever the declared width. `bits` only bounds the range.
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if not lo <= v <= hi:
        raise ValueError("%d out of INT%d range" % (v, bits))
    return encode_varint(v & ((1 << 64) - 1))


def encode_typed(value):
    """None -> NULL, bool -> BOOL, str -> STRING, bytes -> BINARY,
    int -> UINT32 (or UINT64 when large; INT64 when negative),
    IPv4Address/IPv6Address, or a Typed()."""
    if isinstance(value, Typed):
        t, v = value.type, value.value
    elif value is None:
        t, v = T_NULL, None
    elif isinstance(value, bool):
        t, v = T_BOOL, value
    elif isinstance(value, int):
        if value < 0:
            t = T_INT64
        elif value < (1 << 32):
            t = T_UINT32
        else:
            t = T_UINT64
        v = value
    elif isinstance(value, str):
        t, v = T_STRING, value
    elif isinstance(value, (bytes, bytearray)):
        t, v = T_BINARY, bytes(value)
    elif isinstance(value, ipaddress.IPv4Address):
        t, v = T_IPV4, value
    elif isinstance(value, ipaddress.IPv6Address):
        t, v = T_IPV6, value
    else:
        raise TypeError("cannot encode %r" % (value,))

    if t == T_NULL:
        return bytes([T_NULL])
    if t == T_BOOL:
        return bytes([T_BOOL | (0x10 if v else 0)])
    if t == T_INT32:
        return bytes([t]) + _signed_to_varint(v, 32)
    if t == T_INT64:
        return bytes([t]) + _signed_to_varint(v, 64)
    if t in (T_UINT32, T_UINT64):
        return bytes([t]) + encode_varint(v)
    if t == T_IPV4:
        return bytes([t]) + ipaddress.IPv4Address(v).packed
    if t == T_IPV6:
        return bytes([t]) + ipaddress.IPv6Address(v).packed
    if t in (T_STRING, T_BINARY):
        b = v.encode() if isinstance(v, str) else bytes(v)
        return bytes([t]) + encode_varint(len(b)) + b
    raise TypeError("unknown type %d" % t)


def _to_signed(v, bits):
    v &= (1 << bits) - 1
    if v >= 1 << (bits - 1):
        v -= 1 << bits
    return v


def decode_typed(buf, pos):
    """Returns (python value, type id, new_pos). STRING decodes to str
    (raising ProtocolError when not UTF-8), BINARY to bytes."""
    if pos >= len(buf):
        raise ProtocolError("truncated typed data")
    tb = buf[pos]
    pos += 1
    t = tb & 0x0F
    flags = tb & 0xF0
    if t == T_NULL:
        return None, t, pos
    if t == T_BOOL:
        return bool(flags & 0x10), t, pos
    if t in (T_INT32, T_UINT32, T_INT64, T_UINT64):
        v, pos = decode_varint(buf, pos)
        if t in (T_INT32, T_INT64):
            v = _to_signed(v, 64)   # see _signed_to_varint()
        elif t == T_UINT32 and v >= 1 << 32:
            raise ProtocolError("UINT32 out of range")
        return v, t, pos
    if t == T_IPV4:
        if pos + 4 > len(buf):
            raise ProtocolError("truncated IPv4")
        return ipaddress.IPv4Address(bytes(buf[pos:pos + 4])), t, pos + 4
    if t == T_IPV6:
        if pos + 16 > len(buf):
            raise ProtocolError("truncated IPv6")
        return ipaddress.IPv6Address(bytes(buf[pos:pos + 16])), t, pos + 16
    if t in (T_STRING, T_BINARY):
        n, pos = decode_varint(buf, pos)
        if pos + n > len(buf):
            raise ProtocolError("string length %d past the end" % n)
        raw = bytes(buf[pos:pos + n])
        pos += n
        if t == T_STRING:
            try:
                return raw.decode("utf-8"), t, pos
            except UnicodeDecodeError:
                raise ProtocolError("STRING is not UTF-8: %r" % raw)
        return raw, t, pos
    raise ProtocolError("unknown data type %d" % t)


def encode_name(name):
    """KV names, message names and variable names: varint length + bytes,
    no type byte."""
    b = name.encode() if isinstance(name, str) else bytes(name)
    return encode_varint(len(b)) + b


def decode_name(buf, pos):
    n, pos = decode_varint(buf, pos)
    if pos + n > len(buf):
        raise ProtocolError("name length %d past the end" % n)
    try:
        return bytes(buf[pos:pos + n]).decode("utf-8"), pos + n
    except UnicodeDecodeError:
        raise ProtocolError("name is not UTF-8")


# ---------------------------------------------------------------- payloads

def encode_kvlist(items):
    """items: list of (name, value) pairs (a list, so order and duplicates
    are under the caller's control)."""
    return b"".join(encode_name(k) + encode_typed(v) for k, v in items)


def decode_kvlist(payload):
    """Returns a list of (name, value, type)."""
    out = []
    pos = 0
    while pos < len(payload):
        k, pos = decode_name(payload, pos)
        v, t, pos = decode_typed(payload, pos)
        out.append((k, v, t))
    return out


def encode_messages(messages):
    """messages: list of (name, [(arg name, value), ...])."""
    out = bytearray()
    for name, args in messages:
        if len(args) > 255:
            raise ValueError("at most 255 arguments")
        out += encode_name(name) + bytes([len(args)]) + encode_kvlist(args)
    return bytes(out)


class Action:
    __slots__ = ("type", "scope", "name", "value", "vtype")

    def __init__(self, type_, scope, name, value=None, vtype=None):
        self.type = type_
        self.scope = scope
        self.name = name
        self.value = value
        self.vtype = vtype

    def __repr__(self):
        return "Action(%d, scope=%d, %r=%r/t%s)" % (
            self.type, self.scope, self.name, self.value, self.vtype)


def decode_actions(payload):
    """LIST-OF-ACTIONS (SPOE.txt 3.4). Strict: set-var must have 3 args,
    unset-var 2, and the scope must be 0..4."""
    out = []
    pos = 0
    while pos < len(payload):
        if pos + 2 > len(payload):
            raise ProtocolError("truncated action header")
        at, nargs = payload[pos], payload[pos + 1]
        pos += 2
        if at == ACT_SET_VAR:
            if nargs != 3:
                raise ProtocolError("set-var with %d args" % nargs)
        elif at == ACT_UNSET_VAR:
            if nargs != 2:
                raise ProtocolError("unset-var with %d args" % nargs)
        else:
            raise ProtocolError("unknown action type %d" % at)
        if pos >= len(payload):
            raise ProtocolError("truncated scope")
        scope = payload[pos]
        pos += 1
        if scope > SCOPE_RES:
            raise ProtocolError("bad scope %d" % scope)
        name, pos = decode_name(payload, pos)
        if at == ACT_SET_VAR:
            v, t, pos = decode_typed(payload, pos)
            out.append(Action(at, scope, name, v, t))
        else:
            out.append(Action(at, scope, name))
    return out


def actions_to_vars(actions, scope=SCOPE_TXN):
    """{name: (value, type)} for set-var actions in `scope`. Raises
    ProtocolError on a variable set twice (the agent must not do that)."""
    out = {}
    for a in actions:
        if a.type != ACT_SET_VAR or a.scope != scope:
            continue
        if a.name in out:
            raise ProtocolError("variable %r set twice" % a.name)
        out[a.name] = (a.value, a.vtype)
    return out


# ---------------------------------------------------------------- frames

def encode_frame(ftype, payload=b"", stream_id=0, frame_id=0,
                 flags=FLAG_FIN, length=None):
    """A complete frame with its 4-byte length prefix. `length` overrides
    the prefix (for hostile tests)."""
    body = (bytes([ftype]) + struct.pack(">I", flags) +
            encode_varint(stream_id) + encode_varint(frame_id) + payload)
    if length is None:
        length = len(body)
    return struct.pack(">I", length) + body


def hello_frame(versions="2.0", max_frame_size=16380,
                capabilities="pipelining", healthcheck=None,
                engine_id="spoplib-test-engine", extra=None, omit=()):
    """HAPROXY-HELLO. Pass None (or name the key in `omit`) to leave an
    item out."""
    items = []
    if versions is not None and "supported-versions" not in omit:
        items.append(("supported-versions", versions))
    if max_frame_size is not None and "max-frame-size" not in omit:
        items.append(("max-frame-size", UInt32(max_frame_size)
                      if isinstance(max_frame_size, int) else max_frame_size))
    if capabilities is not None and "capabilities" not in omit:
        items.append(("capabilities", capabilities))
    if healthcheck is not None:
        items.append(("healthcheck", bool(healthcheck)))
    if engine_id is not None and "engine-id" not in omit:
        items.append(("engine-id", engine_id))
    if extra:
        items.extend(extra)
    return encode_frame(HAPROXY_HELLO, encode_kvlist(items))


def haproxy_disconnect_frame(status=0, message="normal"):
    return encode_frame(HAPROXY_DISCONNECT, encode_kvlist(
        [("status-code", UInt32(status)), ("message", message)]))


def notify_frame(stream_id, frame_id, messages, flags=FLAG_FIN):
    return encode_frame(NOTIFY, encode_messages(messages), stream_id,
                        frame_id, flags)


def check_cert_message(cert=None, chain=None, sni=None, host=None,
                       order=("cert", "chain", "sni", "host"),
                       include=("cert", "chain", "sni", "host"), extra=()):
    """The check-client-cert message as HAProxy would send it. Arguments in
    `include` are sent (a None value is sent as NULL), in `order`; `extra`
    (name, value) pairs are appended."""
    vals = {"cert": cert, "chain": chain, "sni": sni, "host": host}
    args = [(k, vals[k]) for k in order if k in include]
    args.extend(extra)
    return ("check-client-cert", args)


class Frame:
    __slots__ = ("type", "flags", "stream_id", "frame_id", "payload", "raw_len")

    def __init__(self, ftype, flags, sid, fid, payload, raw_len):
        self.type = ftype
        self.flags = flags
        self.stream_id = sid
        self.frame_id = fid
        self.payload = payload
        self.raw_len = raw_len

    @property
    def name(self):
        return FRAME_NAMES.get(self.type, "type-%d" % self.type)

    def kv(self):
        """KV-LIST payload as {name: value}; raises on duplicate keys."""
        out = {}
        for k, v, t in decode_kvlist(self.payload):
            if k in out:
                raise ProtocolError("duplicate key %r" % k)
            out[k] = v
        return out

    def kv_types(self):
        return {k: t for k, v, t in decode_kvlist(self.payload)}

    def actions(self):
        return decode_actions(self.payload)

    def vars(self):
        return actions_to_vars(self.actions())

    def __repr__(self):
        return "<%s flags=%#x sid=%d fid=%d %d bytes>" % (
            self.name, self.flags, self.stream_id, self.frame_id,
            len(self.payload))


def parse_frame_body(body):
    """Parses one frame (without the length prefix)."""
    if len(body) < 7:
        raise ProtocolError("frame shorter than its header (%d)" % len(body))
    ftype = body[0]
    flags = struct.unpack(">I", bytes(body[1:5]))[0]
    sid, pos = decode_varint(body, 5)
    fid, pos = decode_varint(body, pos)
    return Frame(ftype, flags, sid, fid, bytes(body[pos:]), len(body))


# ---------------------------------------------------------------- client

class Client:
    """One SPOP connection with a receive buffer. Every blocking operation
    is bounded by a timeout."""

    def __init__(self, addr, timeout=5.0, rcvbuf=None, connect=True):
        self.addr = addr
        self.timeout = timeout
        self.buf = bytearray()
        self.max_frame_size = None   # negotiated, after hello()
        self.hello_kv = None
        self.sock = None
        if connect:
            self.connect(rcvbuf)

    def connect(self, rcvbuf=None):
        fam = socket.AF_INET6 if ":" in self.addr[0] else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Must be set before connect to shrink the advertised window.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(self.timeout)
        try:
            s.connect(self.addr)
        except BaseException:
            s.close()
            raise
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s

    def local_addr(self):
        """"ip:port" of our end: what the agent sees as the peer."""
        h, p = self.sock.getsockname()[:2]
        return h, p

    def send(self, data):
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def abort(self):
        """Close with a RST (SO_LINGER 0), as a crashed peer would."""
        if self.sock is not None:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
            except OSError:
                pass
            self.close()

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out waiting for the agent")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            raise Closed("reset", bytes(self.buf))
        if not chunk:
            raise Closed("eof", bytes(self.buf))
        self.buf += chunk

    def recv_frame(self, timeout=None, max_len=1 << 24):
        """Next frame. Raises Closed on EOF/reset, socket.timeout when none
        arrives in time, ProtocolError on garbage."""
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        while len(self.buf) < 4:
            self._fill(deadline)
        n = struct.unpack(">I", bytes(self.buf[:4]))[0]
        if n > max_len:
            raise ProtocolError("frame length %d over %d" % (n, max_len))
        while len(self.buf) < 4 + n:
            self._fill(deadline)
        body = bytes(self.buf[4:4 + n])
        del self.buf[:4 + n]
        f = parse_frame_body(body)
        if self.max_frame_size is not None and n > self.max_frame_size:
            raise ProtocolError("agent frame of %d bytes over negotiated %d"
                                % (n, self.max_frame_size))
        if not f.flags & FLAG_FIN:
            raise ProtocolError("agent frame without FIN")
        return f

    def read_until_close(self, timeout):
        """Reads frames until the agent closes. Returns (frames, how) with
        how in "eof", "reset", "timeout"; a trailing incomplete frame is
        reported as how="eof-partial"."""
        frames = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return frames, "timeout"
            try:
                frames.append(self.recv_frame(remaining))
            except Closed as c:
                return frames, (c.how if not c.pending else c.how + "-partial")
            except socket.timeout:
                return frames, "timeout"

    def hello(self, max_frame_size=16380, **kw):
        """Sends a HAPROXY-HELLO and expects an AGENT-HELLO."""
        self.send(hello_frame(max_frame_size=max_frame_size, **kw))
        f = self.recv_frame()
        if f.type != AGENT_HELLO:
            detail = ""
            if f.type == AGENT_DISCONNECT:
                detail = " %r" % f.kv()
            raise ProtocolError("expected AGENT-HELLO, got %s%s" % (f.name, detail))
        kv = f.kv()
        self.hello_kv = kv
        self.max_frame_size = kv.get("max-frame-size")
        return kv

    def notify(self, stream_id, frame_id, messages, timeout=None):
        """One NOTIFY, waits for its ACK (ids checked). Returns the Frame."""
        self.send(notify_frame(stream_id, frame_id, messages))
        f = self.recv_frame(timeout)
        if f.type != ACK:
            raise ProtocolError("expected ACK, got %s" % f.name)
        if (f.stream_id, f.frame_id) != (stream_id, frame_id):
            raise ProtocolError("ACK ids (%d,%d) != NOTIFY ids (%d,%d)" % (
                f.stream_id, f.frame_id, stream_id, frame_id))
        return f


def expect_disconnect(c, status, timeout=3.0, allow_before=()):
    """Reads until the agent closes. Returns (ok, diagnostic): ok when the
    frames are an AGENT-DISCONNECT with `status` (an int or a collection of
    acceptable ints) and the connection is then closed. Frames of the types
    in `allow_before` may precede it. The AGENT-DISCONNECT is checked as
    SPOE.txt 3.2.9 says: ids 0, UINT32 status-code, STRING message."""
    want = {status} if isinstance(status, int) else set(status)
    try:
        frames, how = c.read_until_close(timeout)
    except ProtocolError as e:
        return False, "protocol error from agent: %s" % e
    if how == "timeout":
        return False, "agent did not close within %.1fs (frames %r)" % (timeout, frames)
    if how.endswith("-partial"):
        return False, "agent closed in the middle of a frame (%r)" % frames
    before = frames[:-1]
    if (not frames or frames[-1].type != AGENT_DISCONNECT
            or any(f.type not in allow_before for f in before)):
        detail = []
        for f in frames:
            try:
                detail.append("%r %r" % (f, f.kv() if f.type != ACK else f.vars()))
            except ProtocolError:
                detail.append(repr(f))
        return False, "expected AGENT-DISCONNECT then close, got [%s] then %s" % (
            ", ".join(detail), how)
    f = frames[-1]
    try:
        kv = f.kv()
        types = f.kv_types()
    except ProtocolError as e:
        return False, "bad AGENT-DISCONNECT payload: %s" % e
    if (f.stream_id, f.frame_id) != (0, 0):
        return False, "AGENT-DISCONNECT ids are (%d,%d), not (0,0)" % (f.stream_id, f.frame_id)
    if kv.get("status-code") not in want:
        return False, "status-code %r (message %r), expected %s" % (
            kv.get("status-code"), kv.get("message"), sorted(want))
    if types.get("status-code") != T_UINT32:
        return False, "status-code has type %r, not UINT32" % types.get("status-code")
    if types.get("message") != T_STRING:
        return False, "message missing or not a STRING: %r" % kv
    return True, None
