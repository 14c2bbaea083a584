#!/usr/bin/env bash
# systemd integration, without systemd as PID 1:
#   - packaging/mtls-spoa.service passes `systemd-analyze verify` with no
#     output (ExecStart pointed at the built binary in a temp copy)
#   - the readiness protocol, against a datagram socket owned by a Python
#     listener standing in for systemd: READY=1 only once the SPOP port
#     accepts; SIGHUP gives RELOADING=1 with a MONOTONIC_USEC close to the
#     listener's own CLOCK_MONOTONIC, then READY=1 and the new generation;
#     a broken file gives READY=1 with a STATUS naming the rejection;
#     SIGTERM gives STOPPING=1
#   - log-format = json applies at reload: every line after it is one
#     JSON object with time, level, msg
#   - the expiry check (MTLS_EXPIRY_CHECK_SECONDS=1): a CRL whose
#     nextUpdate passes during the run gets "past its nextUpdate" at the
#     next check, without a reload
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init
t_need_agent

# ---- the unit file ---------------------------------------------------
UNIT=$T_WORK/mtls-spoa.service
sed "s#/usr/local/bin/mtls-spoa#$T_AGENT_BIN#g" "$T_ROOT/packaging/mtls-spoa.service" >"$UNIT"
if ! command -v systemd-analyze >/dev/null; then
	not_ok "systemd-analyze is installed (Debian package systemd)"
else
	out=$(systemd-analyze verify "$UNIT" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ] && [ -z "$out" ]; then
		ok "systemd-analyze verify packaging/mtls-spoa.service: clean"
	else
		not_ok "systemd-analyze verify packaging/mtls-spoa.service: clean"
		diag "exit $rc: $out"
	fi
fi
check "the unit is Type=notify with ExecReload" \
	grep -qxE 'Type=notify' "$UNIT"
# shellcheck disable=SC2016 # $MAINPID is for systemd, not the shell
check "the unit reloads with SIGHUP" grep -qF 'ExecReload=/bin/kill -HUP $MAINPID' "$UNIT"

# ---- a CA whose CRL reaches its nextUpdate in a few seconds -------------
D=$T_WORK/pki
mkdir -p "$D"
: >"$D/index.txt"
echo 1000 >"$D/crlnumber"
cat >"$D/ca.cnf" <<CNF
[ca]
default_ca = ca_default
[ca_default]
database = $D/index.txt
crlnumber = $D/crlnumber
certificate = $D/ca.pem
private_key = $D/ca.key
default_md = sha256
CNF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$D/ca.key" -out "$D/ca.pem" -subj "/CN=systemd test CA" -days 30 \
	-addext basicConstraints=critical,CA:TRUE \
	-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
CRL_SECONDS=6
openssl ca -config "$D/ca.cnf" -gencrl -crlsec "$CRL_SECONDS" -out "$D/ca.crl" 2>/dev/null
CRL_NEXT=$(($(date +%s) + CRL_SECONDS))
check "test CA and a CRL valid for ${CRL_SECONDS}s" test -s "$D/ca.crl"

CONF=$D/mtls-spoa.conf
printf '[ca t]\nfile = ca.pem\ncrl = ca.crl\n\n[host a.example]\nca = t\n' >"$CONF"

# ---- the readiness protocol ---------------------------------------------
t_tap < <(cd "$T_ROOT/tests/integration" && timeout 60 python3 - "$T_AGENT_BIN" \
	"$CONF" "$T_WORK" "$CRL_NEXT" <<'PY'
import json, os, re, signal, socket, subprocess, sys, time

agent_bin, conf, work, crl_next = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
log_path = os.path.join(work, "agent.log")
sock_path = os.path.join(work, "notify.sock")

def ok(cond, desc, diag=None):
    print(("ok - " if cond else "not ok - ") + desc, flush=True)
    if not cond and diag is not None:
        for line in str(diag).splitlines():
            print("# " + line, flush=True)
    return cond

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p

def accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False

def log_text():
    with open(log_path, errors="replace") as f:
        return f.read()

notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(sock_path)

def recv(deadline=10.0):
    """The next datagram as a dict (and its raw text), or None."""
    notify.settimeout(deadline)
    try:
        raw = notify.recv(4096).decode()
    except socket.timeout:
        return None, ""
    d = dict(l.split("=", 1) for l in raw.split("\n") if "=" in l)
    return d, raw

def wait_log(pattern, deadline):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if re.search(pattern, log_text()):
            return True
        time.sleep(0.05)
    return False

env = dict(os.environ, NOTIFY_SOCKET=sock_path, MTLS_EXPIRY_CHECK_SECONDS="1")
proc = None
try:
    for attempt in range(3):
        port = free_port()
        with open(log_path, "a") as lf:
            proc = subprocess.Popen([agent_bin, "-c", conf, "-l", "127.0.0.1:%d" % port,
                                     "-t", "2"], env=env, stdout=lf, stderr=lf)
        msg, raw = recv(10.0)
        if msg is not None or proc.poll() is None:
            break
        proc.wait()   # could not listen (port taken meanwhile): again
    up = msg is not None and accepts(port)
    ok(msg is not None and msg.get("READY") == "1",
       "READY=1 is the first message", raw or log_text()[-2000:])
    ok(up, "the SPOP port accepts when READY=1 arrives")
    ok(msg is not None and msg.get("STATUS") == "serving: 1 CAs, 1 hosts, generation 1",
       "STATUS=serving: 1 CAs, 1 hosts, generation 1", raw)
    # A good reload, switching the log to JSON.
    with open(conf) as f:
        good = f.read()
    with open(conf, "w") as f:
        f.write("[agent]\nlog-format = json\n\n" + good)
    t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
    proc.send_signal(signal.SIGHUP)
    msg, raw = recv()
    t1 = time.clock_gettime(time.CLOCK_MONOTONIC)
    us = int(msg.get("MONOTONIC_USEC", "0")) if msg else 0
    ok(msg is not None and msg.get("RELOADING") == "1", "SIGHUP: RELOADING=1", raw)
    ok(t0 * 1e6 - 1000 <= us <= t1 * 1e6 + 1000,
       "MONOTONIC_USEC is this host's CLOCK_MONOTONIC at the reload",
       "got %d, window %.0f..%.0f" % (us, t0 * 1e6, t1 * 1e6))
    msg, raw = recv()
    ok(msg is not None and msg.get("READY") == "1" and
       msg.get("STATUS") == "serving: 1 CAs, 1 hosts, generation 2",
       "then READY=1 and STATUS=serving: ..., generation 2", raw)

    # A broken file: rejected, the old configuration stays, STATUS says so.
    with open(conf, "w") as f:
        f.write(good + "bogus-key = 1\n")
    proc.send_signal(signal.SIGHUP)
    msg1, raw1 = recv()
    msg2, raw2 = recv()
    ok(msg1 is not None and msg1.get("RELOADING") == "1", "broken reload: RELOADING=1", raw1)
    st = msg2.get("STATUS", "") if msg2 else ""
    ok(msg2 is not None and msg2.get("READY") == "1" and
       st.startswith("reload rejected, generation 2 stays live: ") and
       (conf + ":7: ") in st,
       "broken reload: READY=1, STATUS names the rejection and FILE:LINE", raw2)
    with open(conf, "w") as f:
        f.write("[agent]\nlog-format = json\n\n" + good)

    # The CRL passes its nextUpdate while loaded: the check says so.
    left = crl_next - time.time()
    found = wait_log(r"expiry check: CRL in \S+ca\.crl is past its nextUpdate",
                     left + 10)
    ok(found, "a CRL past its nextUpdate during the run is reported by the "
       "next expiry check, without a reload", log_text()[-1500:])
    ok(accepts(port), "the agent still serves")

    proc.send_signal(signal.SIGTERM)
    msg, raw = recv()
    ok(msg is not None and msg.get("STOPPING") == "1" and len(msg) == 1,
       "SIGTERM: STOPPING=1", raw)
    try:
        rc = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        rc = None
    ok(rc == 0, "the agent exits 0", rc)

    # log-format = json from the reload on: each line one object.
    text = log_text()
    lines = text.splitlines()
    first = next((i for i, l in enumerate(lines) if l.startswith("{")), len(lines))
    after = lines[first:]
    ok(first > 0 and "] ready: " in "\n".join(lines[:first]),
       "text lines up to the reload", text[:1500])
    bad = []
    for line in after:
        try:
            o = json.loads(line)
            if sorted(o) != ["level", "msg", "time"]:
                bad.append(line)
        except ValueError:
            bad.append(line)
    ok(len(after) > 5 and not bad and any(json.loads(l)["msg"].startswith("reloaded ")
                                          for l in after),
       "log-format = json at reload: %d lines, each {time, level, msg}" % len(after),
       "\n".join(bad[:5]) or text[-1500:])
finally:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()
PY
)

t_finish
