"""agentctl - start/stop the mtls-spoa binary for integration tests, and
the small TAP reporter the Python tests share.

Every wait is bounded. The agent's stderr goes to a file in the test's temp
dir so tests can grep its log lines.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def binary_path():
    build = os.environ.get("MTLS_BUILD", "build")
    if not os.path.isabs(build):
        build = os.path.join(REPO, build)
    return os.path.join(build, "mtls-spoa")


def free_port():
    """A port that was free a moment ago (the agent does not take port 0).
    The caller retries when the agent then fails to bind."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class Tap:
    """ok / not ok lines; counts failures."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, cond, desc, diag=None):
        if cond:
            self.passed += 1
            print("ok - %s" % desc, flush=True)
        else:
            self.failed += 1
            print("not ok - %s" % desc, flush=True)
            if diag:
                for line in str(diag).splitlines():
                    print("#   %s" % line, flush=True)
        return bool(cond)

    def diag(self, msg):
        for line in str(msg).splitlines():
            print("# %s" % line, flush=True)


class GlobalTimeout(BaseException):
    """Raised from SIGALRM: a BaseException so that test code catching
    Exception does not swallow it."""


def arm_global_timeout(seconds):
    def handler(signum, frame):
        raise GlobalTimeout("global time bound of %ds exceeded" % seconds)
    signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)


class Agent:
    """One mtls-spoa process listening on 127.0.0.1:<free port>."""

    def __init__(self, workdir, config=None, threads=2, extra_args=(),
                 name="agent", state_dir=True):
        self.workdir = workdir
        self.config_text = config
        self.threads = threads
        self.extra_args = list(extra_args)
        self.name = name
        self.proc = None
        self.port = None
        self.stderr_path = os.path.join(workdir, name + ".stderr")
        self.config_path = None
        self.exit_code = None
        # The API's state directory: one of its own in the work dir
        # (--state-dir), never the default shared by every test; None
        # leaves it to the configuration's state-dir.
        if state_dir is True:
            state_dir = os.path.join(workdir, name + ".state")
        self.state_dir = state_dir

    @property
    def addr(self):
        return ("127.0.0.1", self.port)

    def _argv(self):
        # MTLS_AGENT_WRAPPER runs the agent under a tool, e.g. valgrind
        # (make valgrind): "valgrind --error-exitcode=99 ...".
        argv = os.environ.get("MTLS_AGENT_WRAPPER", "").split() + [binary_path()]
        if self.config_text is not None:
            self.config_path = os.path.join(self.workdir, self.name + ".conf")
            with open(self.config_path, "w") as f:
                f.write(self.config_text)
            argv += ["-c", self.config_path]
        argv += ["-l", "127.0.0.1:%d" % self.port, "-t", str(self.threads)]
        if self.state_dir is not None:
            argv += ["--state-dir", self.state_dir]
        return argv + self.extra_args

    def start(self, timeout=10.0):
        """Starts and waits until it accepts connections. Retries with a new
        port when the chosen one was taken meanwhile."""
        last = ""
        for _attempt in range(5):
            self.port = free_port()
            errf = open(self.stderr_path, "ab")
            try:
                self.proc = subprocess.Popen(self._argv(), stdin=subprocess.DEVNULL,
                                             stdout=errf, stderr=errf,
                                             cwd=self.workdir)
            finally:
                errf.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    s = socket.create_connection(self.addr, timeout=0.5)
                    s.close()
                    return self
                except OSError:
                    time.sleep(0.02)
            if self.proc.poll() is None:
                self.kill()
                raise RuntimeError("%s did not accept within %.0fs" %
                                   (self.name, timeout))
            last = self.log()
            if "in use" not in last.lower():
                break
        raise RuntimeError("%s exited at start (status %s): %s" % (
            self.name, self.proc.returncode, last[-2000:]))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_lines_for_peer(self, host, port):
        """Log lines naming the peer host:port (also [host]:port)."""
        pat = re.compile(r"%s\]?:%d(?!\d)" % (re.escape(host), port))
        return [l for l in self.log().splitlines() if pat.search(l)]

    def wait_log_for_peer(self, host, port, timeout=1.5):
        deadline = time.monotonic() + timeout
        while True:
            lines = self.log_lines_for_peer(host, port)
            if lines or time.monotonic() >= deadline:
                return lines
            time.sleep(0.02)

    def sanitizer_errors(self):
        return [l for l in self.log().splitlines()
                if "AddressSanitizer" in l or "runtime error:" in l
                or "LeakSanitizer" in l]

    def stop(self, timeout=5.0):
        """SIGTERM, bounded wait, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return self.exit_code
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.exit_code = self.proc.returncode
        return self.exit_code

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None:
            self.exit_code = self.proc.returncode


class Workspace:
    """Temp dir + the agents started in it; cleans up everything."""

    def __init__(self, prefix):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.agents = []

    def agent(self, **kw):
        a = Agent(self.dir, **kw)
        self.agents.append(a)
        return a

    def cleanup(self):
        for a in self.agents:
            try:
                a.kill()
            except Exception:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def require_binary(tap):
    path = binary_path()
    if not os.access(path, os.X_OK):
        tap.ok(False, "agent binary %s exists" % path,
               "build it first (make BUILD=...) or set MTLS_BUILD")
        sys.exit(1)
