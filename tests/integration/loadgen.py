#!/usr/bin/env python3
"""loadgen - bounded HTTPS load and fault probes for test_faults.sh.

Python 3 standard library only; loopback only; every loop is bounded by a
count and a time. Subcommands:

  run       steady load: W workers, each on its own keep-alive HTTPS
            connection (reopened after any error), paced to RATE requests/s
            in total, until STOP_FILE appears, MAX_SECONDS pass or
            MAX_REQUESTS are sent. One TSV line per request in OUT:
              start_ms end_ms worker fresh status result error kind seq
            (path /fault/TAG/worker/seq; wall-clock milliseconds, the same clock as `date +%s%3N`;
            fresh=1 when the request opened a new connection; kind is ok,
            timeout or conn:<exception>; result/error are the X-Mtls-Result
            and X-Mtls-Error headers, "-" when absent).
  analyze   checks on such a file for one fault scenario; prints ok/not ok
            lines, "# " diagnostics and "VAR name value" lines for the shell.
  burst     the agent stopped (SIGSTOP) while N requests are sent through
            HAProxy; once their NOTIFYs sit in the agent's socket buffers
            (measured in /proc), SIGTERM then SIGCONT: every request whose
            NOTIFY the agent had received must get its verdict (200).
  sockets   number of established connections a process owns on a port.
  spop-sigterm
            raw SPOP (spoplib): C connections each with N pipelined NOTIFYs
            sent while the agent is stopped; SIGTERM, SIGCONT; every NOTIFY
            must get its ACK before the AGENT-DISCONNECT and the close.
"""

import argparse
import http.client
import os
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spoplib as S  # noqa: E402

# Hard bound on any subcommand, whatever the arguments say.
HARD_LIMIT_SECONDS = 90
# The load generator's watchdog reports gaps in its own scheduling longer
# than this.
STALL_SECONDS = 0.3


def now_ms():
    return time.time() * 1000.0


def arm_alarm(seconds):
    def handler(signum, frame):
        sys.stderr.write("loadgen: hard time limit reached\n")
        os._exit(3)
    signal.signal(signal.SIGALRM, handler)
    signal.alarm(int(seconds))


# ---------------------------------------------------------------- HTTPS

class Conn(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1:port whatever the host name, which is used for
    SNI, certificate checking and the Host header (curl --resolve)."""

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def tls_context(a):
    ctx = ssl.create_default_context(cafile=a.cacert)
    ctx.load_cert_chain(a.cert, a.key)
    return ctx


def one_request(conn, path):
    """Returns (status, result, error, kind, fresh). Never raises."""
    fresh = 1 if conn.sock is None else 0
    try:
        if conn.sock is None:
            conn.connect()
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        res = r.getheader("X-Mtls-Result") or "-"
        err = r.getheader("X-Mtls-Error") or "-"
        if r.will_close:
            conn.close()
        return r.status, res, err, "ok", fresh
    except socket.timeout:
        conn.close()
        return 0, "-", "-", "timeout", fresh
    except (OSError, http.client.HTTPException, ssl.SSLError) as e:
        conn.close()
        return 0, "-", "-", "conn:" + type(e).__name__, fresh


def cmd_run(a):
    arm_alarm(a.max_seconds + 30)
    ctx = tls_context(a)
    lock = threading.Lock()
    out = open(a.out, "w", buffering=1)
    count = [0]
    t_end = time.monotonic() + a.max_seconds
    interval = a.workers / float(a.rate)

    def stop():
        return (time.monotonic() >= t_end or os.path.exists(a.stop_file))

    def worker(wid):
        conn = Conn(a.host, a.port, timeout=a.timeout, context=ctx)
        seq = 0
        next_t = time.monotonic()
        while not stop():
            with lock:
                if count[0] >= a.max_requests:
                    break
                count[0] += 1
            seq += 1
            t0 = now_ms()
            st, res, err, kind, fresh = one_request(
                conn, "/fault/%s/%d/%d" % (a.tag, wid, seq))
            t1 = now_ms()
            with lock:
                out.write("%.1f\t%.1f\t%d\t%d\t%d\t%s\t%s\t%s\t%d\n" % (
                    t0, t1, wid, fresh, st, res, err, kind, seq))
            next_t += interval
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, 1.0))
            else:
                next_t = time.monotonic()
        conn.close()

    def watchdog():
        # Notes when this process was not scheduled for a while (a loaded
        # or paused test machine): client-side delays, for the diagnostics.
        last = time.monotonic()
        while not stop():
            time.sleep(0.02)
            t = time.monotonic()
            if t - last > STALL_SECONDS:
                with lock:
                    stalls.write("%.1f\t%.1f\n" % (now_ms() - (t - last) * 1000,
                                                    now_ms()))
            last = t

    stalls = open(a.out + ".stalls", "w", buffering=1)
    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(a.workers)]
    threads.append(threading.Thread(target=watchdog, daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join(a.max_seconds + a.timeout + 5)
    out.close()
    stalls.close()
    return 0


# ---------------------------------------------------------------- analysis

class Rec:
    __slots__ = ("start", "end", "worker", "fresh", "status", "result",
                 "error", "kind", "seq")

    def __init__(self, f):
        self.start = float(f[0])
        self.end = float(f[1])
        self.worker = int(f[2])
        self.fresh = int(f[3])
        self.status = int(f[4])
        self.result = f[5]
        self.error = f[6]
        self.kind = f[7]
        self.seq = int(f[8])

    @property
    def dur(self):
        return self.end - self.start

    def __str__(self):
        return "/%d/%d t+%.0fms %dms status=%d result=%s error=%s %s%s" % (
            self.worker, self.seq, self.start - T0[0], self.dur, self.status,
            self.result, self.error, self.kind, " fresh" if self.fresh else "")


T0 = [0.0]
GRACE_MS = 250
GUARD_MS = 20


class Out:
    def __init__(self, tag):
        self.tag = tag
        self.failed = 0

    def check(self, cond, desc, diag=()):
        print("%s - %s: %s" % ("ok" if cond else "not ok", self.tag, desc))
        if not cond:
            self.failed += 1
            for d in diag:
                print("#   %s" % d)
        return cond

    @staticmethod
    def diag(msg):
        print("# %s" % msg)

    @staticmethod
    def var(name, value):
        print("VAR %s %d" % (name, int(value)))


# fe_mtls log line (haproxy-conf/haproxy.cfg log-format): timers, status,
# request line, verdict variables.
HAPROXY_LINE = re.compile(
    r' -?\d+/-?\d+/-?\d+/-?\d+/(\d+) (\d+) \d+ \S+ "GET (/fault/\S+) HTTP'
    r'.* mtls_result=(\S+) .* mtls_error=(\S+)')


def load(path, tag, haproxy_log, max_ms):
    """The load generator's records. When the client saw no answer or a
    slow one, HAProxy's own log line for that request (if any) says what
    HAProxy answered and when: a client that was not scheduled in time
    (the test machine stalled) must not pass for an agent hang."""
    recs = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 9:
                recs.append(Rec(parts))
    recs.sort(key=lambda r: r.start)
    if recs:
        T0[0] = recs[0].start
    late = {"/fault/%s/%d/%d" % (tag, r.worker, r.seq): r for r in recs
            if r.kind == "timeout" or r.dur > max_ms}
    if late and haproxy_log:
        with open(haproxy_log, errors="replace") as f:
            for line in f:
                m = HAPROXY_LINE.search(line)
                if not m or m.group(3) not in late:
                    continue
                r = late.pop(m.group(3))
                ta = int(m.group(1))
                if ta > max_ms:
                    continue
                print("# client-side delay: %s; HAProxy answered %s "
                      "(result=%s error=%s) in %d ms" % (
                          r, m.group(2), m.group(4), m.group(5), ta))
                r.status = int(m.group(2))
                r.result = m.group(4)
                r.error = m.group(5)
                r.kind = "ok"
                r.end = r.start + ta
    return recs


def stalls_of(path):
    out = []
    try:
        with open(path + ".stalls") as f:
            for line in f:
                p = line.split()
                out.append((float(p[0]), float(p[1])))
    except OSError:
        pass
    if out:
        print("# load generator not scheduled for over %d ms %d time(s), "
              "longest %d ms (a busy test machine)" % (
                  STALL_SECONDS * 1000, len(out),
                  max(e - b for b, e in out)))
    return out


def histogram(recs):
    h = {}
    for r in recs:
        k = str(r.status) if r.kind == "ok" else r.kind
        if r.status == 503:
            k += "(error=%s)" % r.error
        h[k] = h.get(k, 0) + 1
    return " ".join("%s:%d" % kv for kv in sorted(h.items())) or "none"


def examples(recs, n=5):
    return [str(r) for r in recs[:n]]


def recovery(recs, t_restart, min_run):
    """The first request started after t_restart from which every later
    request is 200 (at least min_run of them). Returns (rec, run) or
    (None, 0)."""
    after = [r for r in recs if r.start >= t_restart]
    first = None
    for i, r in enumerate(after):
        if r.status != 200:
            first = None
        elif first is None:
            first = i
    if first is None:
        return None, 0
    run = len(after) - first
    return (after[first], run) if run >= min_run else (None, run)


def analyze_kill_or_term(a, recs, o, stalls):
    """SIGKILL / SIGTERM of the agent under load. Times (wall ms, from the
    shell): fault = signal sent, dead = process reaped, restart = new
    agent spawned."""
    t_fault, t_dead, t_restart = a.fault, a.dead, a.restart
    base = [r for r in recs if r.end < t_fault]
    inflight = [r for r in recs if r.start < t_fault <= r.end]
    stopping = [r for r in recs if t_fault <= r.start < t_dead]
    down = [r for r in recs if r.start >= t_dead and r.end <= t_restart]
    # A verdict given just before the signal may reach the client a moment
    # after it: answers count as "while down" from GRACE_MS after the end.
    answered_down = [r for r in recs if t_dead + GRACE_MS <= r.end <= t_restart]
    o.diag("%d requests: %d before the fault, %d in flight at the signal, "
           "%d started while the agent was stopping, %d started and answered "
           "while it was down" % (len(recs), len(base), len(inflight),
                                  len(stopping), len(down)))
    o.diag("before: %s" % histogram(base))
    o.diag("in flight at the signal: %s" % histogram(inflight))
    o.diag("started while stopping: %s" % histogram(stopping))
    o.diag("answered while down: %s" % histogram(answered_down))
    bad_base = [r for r in base if r.status != 200]
    o.check(len(base) >= a.min_base and not bad_base,
            "before the fault: load running and every request 200 (%d)" % len(base),
            examples(bad_base) or ["only %d requests" % len(base)])
    # Fail closed: HAProxy answers 503 when no verdict came back. A 200
    # always carries the verdict that allowed it, and nothing answered
    # while no agent process existed can be a 200.
    no_verdict = [r for r in recs if r.status == 200 and r.result != "ok"]
    fail_open = [r for r in answered_down if r.status == 200] + no_verdict
    o.check(not fail_open, "no request got 200 without a verdict (fail closed)",
            examples(fail_open))
    not503 = [r for r in answered_down if r.status != 503]
    o.check(len(answered_down) >= 1 and not not503,
            "agent down: every request answered while it was down got 503 "
            "(%d answered, %d of them sent after it was gone)" % (
                len(answered_down), len(down)),
            examples(not503) or ["no request was answered in the down window"])
    if a.graceful:
        # A 503 with an SPOP error (256+status) is a NOTIFY HAProxy sent
        # and the agent closed without answering; error 1 (processing
        # timeout) means no agent took it. Requests sent at least GUARD_MS
        # before SIGTERM had their NOTIFY in the agent long before it
        # stopped reading: none may be dropped. A NOTIFY that left HAProxy
        # in the instant between the agent's last read and HAProxy reading
        # its AGENT-DISCONNECT is a race SPOP cannot avoid; those are only
        # counted (the precise checks are the burst and raw SPOP cases).
        def spop_err(r):
            return r.status == 503 and r.error.isdigit() and int(r.error) >= 256
        dropped = [r for r in inflight + base
                   if spop_err(r) and r.start <= t_fault - GUARD_MS]
        racing = [r for r in recs if spop_err(r) and r not in dropped]
        o.diag("503 with an SPOP error for requests sent less than %d ms "
               "before SIGTERM or after it (the DISCONNECT race): %d" % (
                   GUARD_MS, len(racing)))
        o.check(not dropped, "no request sent before SIGTERM got a 503 with an "
                "SPOP error (a NOTIFY dropped by the stopping agent)",
                examples(dropped))
    slow = [r for r in recs if r.dur > a.max_ms or r.kind == "timeout"]
    mx = max((r.dur for r in recs), default=0)
    o.diag("slowest request %.0f ms (SPOE timeout processing is 1000 ms)" % mx)
    o.check(not slow, "no request hung: every answer within %d ms" % a.max_ms,
            examples(slow))
    rec, run = recovery(recs, t_restart, a.min_run)
    if rec is not None:
        rec_ms = rec.end - t_restart
        print("# recovery: %d ms" % rec_ms)
        # Time the load generator itself was not running does not count.
        stalled = sum(max(0.0, min(e, rec.end) - max(b, t_restart))
                      for b, e in stalls)
        if stalled > 0:
            print("# (of which %d ms the load generator was not scheduled)"
                  % stalled)
        o.check(rec_ms - stalled <= a.max_recovery_ms,
                "after restart requests are 200 again within %d ms (%d ms, "
                "then %d in a row)" % (a.max_recovery_ms, rec_ms, run))
    else:
        rec_ms = -1
        print("# recovery: never")
        o.check(False, "after restart requests are 200 again",
                ["%d consecutive 200s at the end, wanted %d" % (run, a.min_run),
                 "after restart: %s" % histogram(
                     [r for r in recs if r.start >= t_restart])])
    # Lost: no HTTP answer at all (timeout, connection error: HAProxy's
    # listener never goes away here), a 200 without a verdict or answered
    # while no agent existed (fail open), a status other than 200/503, a
    # hang, a dropped NOTIFY (SIGTERM), or anything but 200 once recovered.
    lost = set()
    for r in recs:
        if r.kind != "ok" or r.status not in (200, 503) or r.dur > a.max_ms:
            lost.add(id(r))
    for r in fail_open:
        lost.add(id(r))
    if a.graceful:
        for r in dropped:
            lost.add(id(r))
    if rec is not None:
        for r in recs:
            if r.start >= rec.start and r.status != 200:
                lost.add(id(r))
    o.var("requests", len(recs))
    o.var("lost", len(lost))
    o.var("recovery_ms", rec_ms)
    return o.failed


def analyze_steady(a, recs, o):
    """SIGHUP (strict: every request 200) or HAProxy reload (a connection
    error on a REUSED keep-alive connection is the old HAProxy worker
    closing it during its soft stop: reported, not lost)."""
    o.diag("%d requests: %s" % (len(recs), histogram(recs)))
    verdict_fail = [r for r in recs if r.kind == "ok" and r.status != 200]
    o.check(len(recs) >= a.min_base,
            "load ran (%d requests, at least %d)" % (len(recs), a.min_base))
    o.check(not verdict_fail, "no 403/503 (or other non-200) answer",
            examples(verdict_fail))
    no_verdict = [r for r in recs if r.status == 200 and r.result != "ok"]
    o.check(not no_verdict, "every 200 carries the verdict result=ok",
            examples(no_verdict))
    noans = [r for r in recs if r.kind != "ok"]
    if a.reused_conn_ok:
        excused = [r for r in noans if not r.fresh and r.kind.startswith("conn:")]
        lost_noans = [r for r in noans if r not in excused]
        print("# connection errors on reused keep-alive connections closed by "
              "the old HAProxy worker (not lost): %d %s" % (
                  len(excused), histogram(excused)))
        o.check(not lost_noans, "no timeout and no error on a fresh connection",
                examples(lost_noans))
    else:
        lost_noans = noans
        o.check(not noans, "every request got an HTTP answer", examples(noans))
    slow = [r for r in recs if r.dur > a.max_ms]
    o.diag("slowest request %.0f ms" % max((r.dur for r in recs), default=0))
    o.check(not slow, "every answer within %d ms" % a.max_ms, examples(slow))
    if a.fault_times:
        for t in a.fault_times.split(","):
            t = float(t)
            after = [r for r in recs if r.start >= t and r.start < t + 1000]
            ok_after = [r for r in after if r.status == 200]
            o.check(len(ok_after) >= 10, "at least 10 requests answered 200 "
                    "within 1 s after the fault at t+%.0fms (%d)" % (
                        t - T0[0], len(ok_after)), [histogram(after)])
    lost = len(verdict_fail) + len(lost_noans) + len(no_verdict) + len(
        [r for r in slow if r.kind == "ok" and r.status == 200])
    o.var("requests", len(recs))
    o.var("lost", lost)
    return o.failed


def cmd_analyze(a):
    recs = load(a.file, a.load_tag, a.haproxy_log, a.max_ms)
    stalls = stalls_of(a.file)
    o = Out(a.tag)
    if a.mode == "steady":
        analyze_steady(a, recs, o)
    else:
        analyze_kill_or_term(a, recs, o, stalls)
    return 0


# ---------------------------------------------------------------- /proc

def socket_inodes(pid):
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            link = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


def agent_socket_queues(pid, port):
    """(unread bytes on the agent's established sockets, number of
    connections waiting in its accept queue) from /proc. Only sockets the
    agent owns count: a connection still in the accept queue is not
    received yet."""
    inodes = socket_inodes(pid)
    unread = 0
    backlog = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            lport = int(f[1].split(":")[1], 16)
            st = f[3]
            rxq = int(f[4].split(":")[1], 16)
            inode = f[9]
            if lport != port or inode not in inodes:
                continue
            if st == "0A":        # LISTEN: rx_queue is the accept queue
                backlog += rxq
            elif st == "01":      # ESTABLISHED
                unread += rxq
    return unread, backlog


def stop_process(pid):
    """SIGSTOP, then wait until every thread is really stopped: kill()
    returns before the signal is acted on."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        states = []
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                pass
        if states and all(st in ("T", "t") for st in states):
            return True
        time.sleep(0.001)
    return False


def count_sockets(pid, port):
    """Established TCP connections the agent owns on its port."""
    inodes = socket_inodes(pid)
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if (int(f[1].split(":")[1], 16) == port and f[3] == "01"
                    and f[9] in inodes):
                n += 1
    return n


def cmd_sockets(a):
    print(count_sockets(a.pid, a.port))
    return 0


def wait_stable(pid, port, want, deadline):
    """Polls until the agent's unread bytes reach `want` (or, want None,
    stop changing for 60 ms). Returns (unread, backlog)."""
    last = None
    stable_since = time.monotonic()
    while True:
        unread, backlog = agent_socket_queues(pid, port)
        t = time.monotonic()
        if unread != last:
            last = unread
            stable_since = t
        if want is not None and unread >= want:
            return unread, backlog
        if want is None and unread > 0 and t - stable_since >= 0.06:
            return unread, backlog
        if t >= deadline:
            return unread, backlog
        time.sleep(0.005)


# ---------------------------------------------------------------- burst

def cmd_burst(a):
    """Both steps stop the agent with SIGSTOP for well under HAProxy's
    1 s processing timeout. Calibration: one request, its NOTIFY's size.
    Burst: N requests at once; when N NOTIFYs are in the agent's sockets
    (or after 0.5 s), SIGTERM + SIGCONT; each NOTIFY that was in the
    agent's sockets must give a 200."""
    arm_alarm(40)
    ctx = tls_context(a)
    o = Out("SIGTERM burst")
    conns = [Conn(a.host, a.port, timeout=a.timeout, context=ctx)
             for _ in range(a.n)]
    for c in conns:        # TLS handshakes now, not while the agent sleeps
        c.connect()
    # A round on every connection with the agent running: each HAProxy
    # thread these connections landed on has an SPOP connection ready.
    warm = [None] * a.n

    def warm_one(i):
        warm[i] = one_request(conns[i], "/fault/burst/warm/%d" % i)[0]
    ths = [threading.Thread(target=warm_one, args=(i,)) for i in range(a.n)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(a.timeout + 1)
    if not o.check(warm == [200] * a.n, "warm-up round on the %d connections "
                   "answered 200" % a.n, [repr(warm)]):
        o.var("lost", 0)
        o.var("requests", a.n)
        return 0

    # Calibration on the first connection.
    base, _ = agent_socket_queues(a.pid, a.agent_port)
    stop_process(a.pid)
    try:
        res = {}
        th = threading.Thread(target=lambda: res.update(
            r=one_request(conns[0], "/fault/burst/calibrate")))
        th.start()
        one, backlog0 = wait_stable(a.pid, a.agent_port, None,
                                    time.monotonic() + 0.4)
    finally:
        os.kill(a.pid, signal.SIGCONT)
    th.join(a.timeout + 1)
    size = one - base
    o.diag("one NOTIFY as HAProxy sends it: %d bytes" % size)
    if not o.check(res.get("r", (0,))[0] == 200 and size > 0,
                   "calibration request answered 200 after a 'pause'",
                   [str(res.get("r")), "size %d" % size]):
        o.var("lost", 1)
        o.var("requests", 1)
        return 0

    # The burst.
    results = [None] * a.n
    sent = threading.Barrier(a.n + 1, timeout=a.timeout)
    paths = ["/fault/burst/%d" % i for i in range(a.n)]

    def go(i):
        c = conns[i]
        t0 = now_ms()
        try:
            c.request("GET", paths[i])
        except Exception as e:   # recorded below as no answer
            results[i] = (0, "-", "-", "conn:" + type(e).__name__, 0, 0)
            try:
                sent.wait()
            except threading.BrokenBarrierError:
                pass
            return
        try:
            sent.wait()
        except threading.BrokenBarrierError:
            pass
        try:
            r = c.getresponse()
            r.read()
            results[i] = (r.status, r.getheader("X-Mtls-Result") or "-",
                          r.getheader("X-Mtls-Error") or "-", "ok", 0,
                          now_ms() - t0)
        except Exception as e:
            results[i] = (0, "-", "-", "conn:" + type(e).__name__, 0,
                          now_ms() - t0)

    stop_process(a.pid)
    t_stop = time.monotonic()
    try:
        threads = [threading.Thread(target=go, args=(i,)) for i in range(a.n)]
        for t in threads:
            t.start()
        try:
            sent.wait()
        except threading.BrokenBarrierError:
            pass
        want = size * a.n - 2 * a.n    # ids are varints: a byte or two less
        unread, backlog = wait_stable(a.pid, a.agent_port, want,
                                      t_stop + 0.5)
        os.kill(a.pid, signal.SIGTERM)
    finally:
        os.kill(a.pid, signal.SIGCONT)
    paused = (time.monotonic() - t_stop) * 1000
    for t in threads:
        t.join(a.timeout + 2)
    # NOTIFYs differ by a byte or two (the ids are varints).
    k = min(a.n, int(round(float(unread) / size)))
    o.diag("agent paused %.0f ms; at SIGTERM its sockets held %d unread "
           "bytes = %d NOTIFYs of %d bytes; %d connection(s) waiting in its "
           "accept queue" % (paused, unread, k, size, backlog))
    if k < a.n:
        # HAProxy chose to open a new SPOP connection for some of them; its
        # HELLO waits unanswered and so do they: not received by the agent.
        o.diag("%d of the %d NOTIFYs were not sent to the agent before "
               "SIGTERM (HAProxy was opening a new connection)" % (a.n - k, a.n))
    o.check(k >= 1, "NOTIFYs from HAProxy were waiting in the agent's socket "
            "buffers at SIGTERM (%d of %d)" % (k, a.n))
    n200 = len([r for r in results if r is not None and r[0] == 200])
    bad = ["%s: %s" % (paths[i], r) for i, r in enumerate(results)
           if r is None or r[0] != 200]
    o.check(n200 >= k, "every request whose NOTIFY the agent had received got "
            "its verdict: %d answered 200 for %d NOTIFYs received" % (n200, k),
            bad)
    o.diag("burst answers: %s" % " ".join(
        "%s/%s" % (r[0], r[1]) if r else "none" for r in results))
    o.var("requests", a.n + 1)
    o.var("lost", max(0, k - n200))
    return 0


# ---------------------------------------------------------------- raw SPOP

TIOCOUTQ = 0x5411


def outq(sock):
    import fcntl
    buf = fcntl.ioctl(sock.fileno(), TIOCOUTQ, struct.pack("i", 0))
    return struct.unpack("i", buf)[0]


def cmd_spop_sigterm(a):
    arm_alarm(40)
    o = Out("raw SPOP SIGTERM %dx%d" % (a.conns, a.notifies))
    with open(a.cert_der, "rb") as f:
        cert = f.read()
    with open(a.chain_der, "rb") as f:
        chain = f.read()
    msg = S.check_cert_message(cert=cert, chain=chain, sni=a.host, host=a.host)
    clients = []
    bad = []
    for k in range(a.conns):
        c = S.Client(("127.0.0.1", a.port), timeout=5.0)
        c.hello()
        # One round trip first: the connection is adopted by a worker and
        # the verdict is the expected one.
        v = c.notify(1, 1, [msg]).vars()
        if (v.get("action", (None,))[0] != "allow" or
                v.get("result", (None,))[0] != "ok"):
            bad.append("connection %d: %r" % (k, v))
        clients.append(c)
    if not o.check(not bad, "warm-up NOTIFY on each of the %d connections "
                   "answered allow/ok" % a.conns, bad):
        o.var("lost", 1)
        o.var("requests", 1)
        return 0

    frames = [[S.notify_frame(100 + i, 1, [msg]) for i in range(a.notifies)]
              for _ in clients]
    nbytes = sum(len(x) for x in frames[0])
    stop_process(a.pid)
    t_stop = time.monotonic()
    try:
        for c, fl in zip(clients, frames):
            c.send(b"".join(fl))
        # Received = in the agent's kernel receive buffer: our send queues
        # are empty (loopback acknowledges on arrival).
        deadline = time.monotonic() + 2.0
        while any(outq(c.sock) for c in clients) and time.monotonic() < deadline:
            time.sleep(0.005)
        pending = [outq(c.sock) for c in clients]
        unread, _ = agent_socket_queues(a.pid, a.port)
        os.kill(a.pid, signal.SIGTERM)
    finally:
        os.kill(a.pid, signal.SIGCONT)
    o.diag("agent paused %.0f ms; %d bytes of NOTIFYs per connection; at "
           "SIGTERM the agent held %d unread bytes" % (
               (time.monotonic() - t_stop) * 1000, nbytes, unread))
    o.check(not any(pending) and unread == nbytes * len(clients),
            "every NOTIFY had reached the agent's socket before SIGTERM",
            ["unsent %r, unread %d" % (pending, unread)])
    lost = 0
    total = 0
    problems = []
    for k, c in enumerate(clients):
        want = {(100 + i, 1) for i in range(a.notifies)}
        total += a.notifies
        try:
            got, how = c.read_until_close(5.0)
        except S.ProtocolError as e:
            got, how = [], "protocol error: %s" % e
        acks = [(f.stream_id, f.frame_id) for f in got if f.type == S.ACK]
        disc = [f for f in got if f.type == S.AGENT_DISCONNECT]
        missing = want - set(acks)
        lost += len(missing)
        if missing or len(acks) != len(want) or how != "eof":
            problems.append("connection %d: %d/%d ACKs (%d missing, e.g. "
                            "stream-id %s), ended by %s" % (
                                k, len(set(acks) & want), len(want),
                                len(missing), sorted(missing)[:3], how))
        if not disc or got[-1].type != S.AGENT_DISCONNECT or \
                disc[-1].kv().get("status-code") != S.ST_NORMAL:
            problems.append("connection %d: does not end with AGENT-DISCONNECT "
                            "status 0 (last frames %r)" % (k, got[-2:]))
        c.close()
    if len(problems) > 6:
        problems = problems[:5] + ["... and %d more" % (len(problems) - 5)]
    o.check(not problems, "every pipelined NOTIFY got its ACK before "
            "AGENT-DISCONNECT status 0 and the close (%d NOTIFYs, %d lost)" % (
                total, lost), problems)
    o.var("requests", total)
    o.var("lost", lost)
    return 0


# ---------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def https_args(sp):
        sp.add_argument("--port", type=int, required=True)
        sp.add_argument("--host", default="api.example.com")
        sp.add_argument("--cacert", required=True)
        sp.add_argument("--cert", required=True)
        sp.add_argument("--key", required=True)
        sp.add_argument("--timeout", type=float, default=3.0)

    r = sub.add_parser("run")
    https_args(r)
    r.add_argument("--workers", type=int, default=4)
    r.add_argument("--rate", type=float, default=150.0)
    r.add_argument("--max-seconds", type=float, default=30.0)
    r.add_argument("--max-requests", type=int, default=20000)
    r.add_argument("--stop-file", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--tag", default="load")

    z = sub.add_parser("analyze")
    z.add_argument("mode", choices=("kill", "steady"))
    z.add_argument("file")
    z.add_argument("--tag", required=True)
    z.add_argument("--fault", type=float, default=0)
    z.add_argument("--dead", type=float, default=0)
    z.add_argument("--restart", type=float, default=0)
    z.add_argument("--fault-times", default="")
    z.add_argument("--max-ms", type=float, default=2500)
    z.add_argument("--max-recovery-ms", type=float, default=5000)
    z.add_argument("--min-base", type=int, default=20)
    z.add_argument("--min-run", type=int, default=20)
    z.add_argument("--reused-conn-ok", action="store_true")
    z.add_argument("--graceful", action="store_true")
    z.add_argument("--load-tag", required=True, help="the tag given to run")
    z.add_argument("--haproxy-log", default="")

    b = sub.add_parser("burst")
    https_args(b)
    b.add_argument("--n", type=int, default=8)
    b.add_argument("--pid", type=int, required=True)
    b.add_argument("--agent-port", type=int, required=True)

    s = sub.add_parser("spop-sigterm")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--conns", type=int, default=4)
    s.add_argument("--notifies", type=int, default=8)
    s.add_argument("--cert-der", required=True)
    s.add_argument("--chain-der", required=True)
    s.add_argument("--host", default="api.example.com")

    k = sub.add_parser("sockets")
    k.add_argument("--pid", type=int, required=True)
    k.add_argument("--port", type=int, required=True)

    a = p.parse_args()
    if a.cmd != "analyze":
        arm_alarm(HARD_LIMIT_SECONDS)
    rc = {"run": cmd_run, "analyze": cmd_analyze, "burst": cmd_burst,
          "spop-sigterm": cmd_spop_sigterm, "sockets": cmd_sockets}[a.cmd](a)
    if a.cmd in ("analyze", "burst", "spop-sigterm"):
        # The shell treats a report without this line as a failure (a
        # crash must not look like a pass).
        print("VAR done 1", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
