#!/usr/bin/env python3
"""A 3-member etcd cluster on loopback for the fleet tests (issue 15).

Debian's etcd (/usr/bin/etcd, /usr/bin/etcdctl), no Docker. Every member has
its own data dir under the work dir; all processes are killed at exit (atexit
and SIGTERM/SIGINT). CLI: `etcdlib.py start DIR` prints `endpoints URL...`
and `pids PID...` and leaves the cluster running (pids in DIR/pids);
`etcdlib.py stop DIR` kills it.
"""
import atexit
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agentctl  # noqa: E402

ETCD = "/usr/bin/etcd"
ETCDCTL = "/usr/bin/etcdctl"
_LIVE = []


def available():
    return os.access(ETCD, os.X_OK) and os.access(ETCDCTL, os.X_OK)


def skip_if_unavailable():
    """TAP skip and exit 0 when etcd is not installed."""
    if not available():
        print("ok - # SKIP etcd not installed")
        sys.exit(0)


def _cleanup_all():
    for c in list(_LIVE):
        c.stop()


def _on_signal(signum, frame):
    _cleanup_all()
    sys.exit(128 + signum)


atexit.register(_cleanup_all)
for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    if signal.getsignal(_s) in (signal.SIG_DFL, signal.default_int_handler):
        signal.signal(_s, _on_signal)


class Cluster:
    def __init__(self, workdir=None, size=3):
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="etcd-")
        os.makedirs(self.dir, exist_ok=True)
        self.size = size
        self.names = ["m%d" % (i + 1) for i in range(size)]
        self.client_ports = [agentctl.free_port() for _ in self.names]
        self.peer_ports = [agentctl.free_port() for _ in self.names]
        self.token = "mtls-%d-%d" % (os.getpid(), int(time.time() * 1000))
        self.procs = [None] * size
        self.started = False

    # --- addresses -------------------------------------------------------
    def endpoint(self, i):
        return "http://127.0.0.1:%d" % self.client_ports[i]

    def endpoints(self, order=None):
        order = range(self.size) if order is None else order
        return [self.endpoint(i) for i in order]

    def _initial_cluster(self):
        return ",".join("%s=http://127.0.0.1:%d" % (n, p)
                        for n, p in zip(self.names, self.peer_ports))

    # --- processes -------------------------------------------------------
    def _spawn(self, i, state):
        name = self.names[i]
        log = open(os.path.join(self.dir, name + ".log"), "ab")
        peer = "http://127.0.0.1:%d" % self.peer_ports[i]
        args = [ETCD, "--name", name,
                "--data-dir", os.path.join(self.dir, name + ".data"),
                "--listen-client-urls", self.endpoint(i),
                "--advertise-client-urls", self.endpoint(i),
                "--listen-peer-urls", peer,
                "--initial-advertise-peer-urls", peer,
                "--initial-cluster", self._initial_cluster(),
                "--initial-cluster-state", state,
                "--initial-cluster-token", self.token,
                "--heartbeat-interval", "50", "--election-timeout", "500",
                "--logger", "zap", "--log-outputs", "stderr"]
        self.procs[i] = subprocess.Popen(args, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)
        log.close()

    def start(self, timeout=20.0):
        for i in range(self.size):
            self._spawn(i, "new")
        self.started = True
        _LIVE.append(self)
        self._write_pids()
        self.wait_healthy(range(self.size), timeout)
        return self

    def _write_pids(self):
        with open(os.path.join(self.dir, "pids"), "w") as f:
            f.write(" ".join(str(p.pid) for p in self.procs if p) + "\n")

    def healthy(self, i):
        r = self.etcdctl(["endpoint", "health"], endpoints=[self.endpoint(i)],
                         timeout=3, check=False)
        return r.returncode == 0 and "is healthy" in (r.stdout + r.stderr)

    def wait_healthy(self, members, timeout=20.0):
        deadline = time.time() + timeout
        members = list(members)
        while time.time() < deadline:
            if all(self.healthy(i) for i in members):
                return
            for i in members:
                p = self.procs[i]
                if p is not None and p.poll() is not None:
                    raise RuntimeError("etcd %s exited (%s); see %s"
                                       % (self.names[i], p.returncode,
                                          os.path.join(self.dir, self.names[i] + ".log")))
            time.sleep(0.1)
        raise RuntimeError("etcd members %s not healthy in %.0fs" % (members, timeout))

    def kill(self, i):
        p = self.procs[i]
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
        self.procs[i] = None

    def kill_all(self):
        for i in range(self.size):
            self.kill(i)

    def restart(self, i, wait=True, timeout=20.0):
        """Same data dir, same name: rejoins the cluster."""
        self.kill(i)
        self._spawn(i, "existing")
        self._write_pids()
        if wait:
            self.wait_healthy([i], timeout)

    def restart_all(self, timeout=20.0):
        for i in range(self.size):
            if self.procs[i] is None:
                self._spawn(i, "existing")
        self._write_pids()
        self.wait_healthy(range(self.size), timeout)

    def live_members(self):
        return [i for i in range(self.size)
                if self.procs[i] is not None and self.procs[i].poll() is None]

    def stop(self):
        for i in range(self.size):
            try:
                self.kill(i)
            except Exception:
                pass
        if self in _LIVE:
            _LIVE.remove(self)
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- etcdctl ---------------------------------------------------------
    def etcdctl(self, args, endpoints=None, timeout=10, check=True, stdin=None):
        """Run etcdctl; with check, retry transient errors (leader election
        after a kill) until timeout, then raise."""
        deadline = time.time() + timeout
        while True:
            r = self._etcdctl_once(args, endpoints, timeout, stdin)
            if r.returncode == 0 or not check:
                return r
            transient = any(m in r.stderr for m in
                            ("timed out", "leader changed", "no leader",
                             "Unavailable", "connection refused"))
            if not transient or time.time() > deadline:
                raise RuntimeError("etcdctl %s: %s" % (" ".join(args), r.stderr.strip()))
            time.sleep(0.1)

    def _etcdctl_once(self, args, endpoints, timeout, stdin):
        if endpoints is None:
            live = self.live_members() or range(self.size)
            endpoints = [self.endpoint(i) for i in live]
        env = dict(os.environ, ETCDCTL_API="3")
        cmd = [ETCDCTL, "--endpoints", ",".join(endpoints),
               "--dial-timeout", "2s", "--command-timeout", "%ds" % max(1, min(timeout, 5))] + list(args)
        return subprocess.run(cmd, env=env, input=stdin, capture_output=True,
                              text=True, timeout=timeout + 5)

    def put(self, key, value):
        """value: str (bytes-safe via stdin)."""
        self.etcdctl(["put", key], stdin=value)

    def delete(self, key):
        self.etcdctl(["del", key])

    def _get_json(self, args):
        r = self.etcdctl(["get", "-w", "json"] + args)
        return json.loads(r.stdout)

    def revision(self):
        return int(self._get_json(["--limit", "1", "/"])["header"]["revision"])

    def get_prefix(self, prefix):
        """{key: (value, mod_revision)} of every key under prefix."""
        j = self._get_json(["--prefix", prefix])
        out = {}
        for kv in j.get("kvs", []):
            k = base64.b64decode(kv["key"]).decode()
            v = base64.b64decode(kv.get("value", "")).decode()
            out[k] = (v, int(kv["mod_revision"]))
        return out

    def get(self, key):
        return self.get_prefix_exact(key)

    def get_prefix_exact(self, key):
        j = self._get_json([key])
        for kv in j.get("kvs", []):
            return (base64.b64decode(kv.get("value", "")).decode(),
                    int(kv["mod_revision"]))
        return None

    def compact(self, revision):
        self.etcdctl(["compaction", "--physical", str(revision)])


def _main(argv):
    if len(argv) < 3 or argv[1] not in ("start", "stop"):
        print("usage: etcdlib.py start|stop DIR", file=sys.stderr)
        return 2
    d = argv[2]
    if argv[1] == "stop":
        try:
            pids = open(os.path.join(d, "pids")).read().split()
        except OSError:
            return 0
        for p in pids:
            try:
                os.kill(int(p), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        return 0
    if not available():
        print("etcd not installed", file=sys.stderr)
        return 77
    c = Cluster(d)
    try:
        c.start()
    except Exception as e:
        c.stop()
        print(str(e), file=sys.stderr)
        return 1
    # Leave it running: the shell caller stops it with `stop DIR`.
    _LIVE.remove(c)
    print("endpoints " + " ".join(c.endpoints()))
    print("pids " + " ".join(str(p.pid) for p in c.procs))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
