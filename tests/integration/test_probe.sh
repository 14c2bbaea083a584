#!/usr/bin/env bash
# mtls-spoa --probe ADDR (the container HEALTHCHECK, issue 7): exit 0 only
# when an SPOP agent answers the health-check HELLO with a valid
# AGENT-HELLO, 1 otherwise, within its 3 s timeout.
#   - the real agent on TCP and on a unix socket: 0, and the agent keeps
#     serving (and exits 0 on SIGTERM) after being probed
#   - nothing listening (TCP, unix): 1, quickly
#   - fake peers (Python, spoplib encoders): a valid AGENT-HELLO (0: the
#     harness itself can pass), garbage, an HTTP answer, an immediate close,
#     AGENT-DISCONNECT, a version 1.0 or max-frame-size-less AGENT-HELLO,
#     and one that accepts and never answers (1 within the timeout)
#   - what the probe sends: HAPROXY-HELLO with healthcheck=true, version 2.0
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init
t_need_agent

now_ms() { date +%s%3N; }

# probe ADDR: runs the probe; sets P_RC, P_OUT (stdout+stderr), P_MS.
probe() {
	local t0
	t0=$(now_ms)
	P_OUT=$(timeout 10 "$T_AGENT_BIN" --probe "$1" 2>&1)
	P_RC=$?
	P_MS=$(($(now_ms) - t0))
}

# expect_probe DESC ADDR WANT_RC MAX_MS [MIN_MS]
expect_probe() {
	local desc=$1 addr=$2 want=$3 max=$4 min=${5:-0}
	probe "$addr"
	if [ "$P_RC" = "$want" ] && [ "$P_MS" -le "$max" ] && [ "$P_MS" -ge "$min" ]; then
		ok "$desc (exit $P_RC in ${P_MS} ms)"
		[ "$P_RC" = 0 ] || diag "$P_OUT"
	else
		not_ok "$desc"
		diag "want exit $want in $min..$max ms; got exit $P_RC in $P_MS ms: $P_OUT"
	fi
}

# --- the real agent -------------------------------------------------------
printf '[agent]\nlog-level = debug\n' >"$T_WORK/agent.conf"
SOCK=$T_WORK/agent.sock
started=0
for try in 1 2 3; do
	PORT=$(t_free_port)
	"$T_AGENT_BIN" -c "$T_WORK/agent.conf" -l "127.0.0.1:$PORT" -l "unix:$SOCK" \
		>>"$T_WORK/agent.log" 2>&1 &
	T_AGENT_PID=$!
	if t_wait_port "$PORT" 50 && t_pid_alive "$T_AGENT_PID"; then
		started=1
		break
	fi
	t_stop_agent
	diag "agent start attempt $try failed"
done
if [ "$started" != 1 ]; then
	not_ok "agent starts"
	diag "$(tail -n 20 "$T_WORK/agent.log")"
	t_finish
	exit 1
fi

expect_probe "probe of the agent over TCP" "127.0.0.1:$PORT" 0 2000
check_eq "probe prints OK on success" "$P_OUT" "OK: 127.0.0.1:$PORT answered a health check"
expect_probe "probe of the agent over a unix socket" "unix:$SOCK" 0 2000
expect_probe "probe with *:PORT (this host)" "*:$PORT" 0 2000
# Many probes in a row: the agent closes each health-check connection and
# keeps serving.
fails=0
for _ in $(seq 20); do
	"$T_AGENT_BIN" --probe "127.0.0.1:$PORT" >/dev/null 2>&1 || fails=$((fails + 1))
done
check_eq "20 probes in a row all pass" "$fails" 0
if t_pid_alive "$T_AGENT_PID"; then ok "agent still running after the probes"; else
	not_ok "agent still running after the probes"
fi
# A full HAProxy-style session still works after the probes.
if (cd "$T_ROOT/tests/integration" && timeout 10 python3 - "$PORT" <<'EOF'
import socket, struct, sys
import spoplib as s
port = int(sys.argv[1])
c = socket.create_connection(("127.0.0.1", port), timeout=5)
c.sendall(s.hello_frame())
hdr = c.recv(4, socket.MSG_WAITALL)
(n,) = struct.unpack(">I", hdr)
body = c.recv(n, socket.MSG_WAITALL)
sys.exit(0 if body[0] == s.AGENT_HELLO else 1)
EOF
); then
	ok "after the probes the agent still answers a normal HELLO"
else
	not_ok "after the probes the agent still answers a normal HELLO"
fi

t_stop_agent
check_eq "agent exits 0 on SIGTERM after being probed" "$T_AGENT_RC" 0

# --- nothing listening ----------------------------------------------------
# The port the agent just left: refused at once.
expect_probe "refused connection (agent stopped): exit 1 quickly" "127.0.0.1:$PORT" 1 1500
case $P_OUT in
*"probe failed"*) ok "refused connection: says why" ;;
*) not_ok "refused connection: says why"; diag "$P_OUT" ;;
esac
expect_probe "unix socket gone: exit 1 quickly" "unix:$SOCK" 1 1500
expect_probe "unix socket path that never existed: exit 1" "unix:$T_WORK/nothing.sock" 1 1500
expect_probe "malformed address: exit 1" "not-an-address" 1 1500

# --- fake peers -----------------------------------------------------------
# fake MODE: a one-connection-at-a-time TCP server on 127.0.0.1 that reads
# the probe's frame (saved to $T_WORK/fake-MODE.rx) and answers per MODE.
# Prints its port; lives at most 30 s.
FAKE_PIDS=()
fake() {
	local mode=$1 out=$T_WORK/fake-$1.port i
	(cd "$T_ROOT/tests/integration" && exec timeout 30 python3 - "$mode" "$T_WORK" <<'EOF'
import os, socket, struct, sys, time
import spoplib as s
mode, work = sys.argv[1], sys.argv[2]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(4)
with open(os.path.join(work, "fake-%s.port" % mode + ".tmp"), "w") as f:
    f.write("%d\n" % srv.getsockname()[1])
os.rename(os.path.join(work, "fake-%s.port.tmp" % mode), os.path.join(work, "fake-%s.port" % mode))

def agent_hello(items):
    return s.encode_frame(s.AGENT_HELLO, s.encode_kvlist(items))

answers = {
    "hello": agent_hello([("version", "2.0"), ("max-frame-size", s.UInt32(16380)),
                          ("capabilities", "pipelining")]),
    "v1": agent_hello([("version", "1.0"), ("max-frame-size", s.UInt32(16380)),
                       ("capabilities", "")]),
    "nomfs": agent_hello([("version", "2.0"), ("capabilities", "")]),
    "smallmfs": agent_hello([("version", "2.0"), ("max-frame-size", s.UInt32(100)),
                             ("capabilities", "")]),
    "disconnect": s.encode_frame(s.AGENT_DISCONNECT, s.encode_kvlist(
        [("status-code", s.UInt32(1)), ("message", "go away")])),
    "garbage": b"\xde\xad\xbe\xef" * 64,
    "http": b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    "close": b"",
}
srv.settimeout(25)
while True:
    try:
        c, _ = srv.accept()
    except socket.timeout:
        break
    c.settimeout(5)
    rx = b""
    try:
        while len(rx) < 4 or len(rx) < 4 + struct.unpack(">I", rx[:4])[0]:
            d = c.recv(4096)
            if not d:
                break
            rx += d
            if len(rx) > 65536:
                break
    except OSError:
        pass
    with open(os.path.join(work, "fake-%s.rx" % mode), "wb") as f:
        f.write(rx)
    if mode == "silent":
        time.sleep(6)       # accept, read, never answer (past the probe's 3 s)
    else:
        try:
            c.sendall(answers[mode])
        except OSError:
            pass
    c.close()
EOF
	) >>"$T_WORK/fake.log" 2>&1 &
	FAKE_PIDS+=($!)
	for ((i = 0; i < 50; i++)); do
		[ -s "$out" ] && break
		sleep 0.1
	done
	FAKE_PORT=$(cat "$out" 2>/dev/null)
}

fake hello
expect_probe "fake peer with a valid AGENT-HELLO: exit 0 (the harness can pass)" \
	"127.0.0.1:$FAKE_PORT" 0 2000
# What the probe sent: a health-check HAPROXY-HELLO.
sent=$(cd "$T_ROOT/tests/integration" && python3 - "$T_WORK/fake-hello.rx" <<'EOF'
import sys
import spoplib as s
rx = open(sys.argv[1], "rb").read()
ftype = rx[4]
pos = 9
sid, pos = s.decode_varint(rx, pos)
fid, pos = s.decode_varint(rx, pos)
kv = {k: v for k, v, t in s.decode_kvlist(rx[pos:])}
print("type=%d healthcheck=%s versions=%s mfs=%s" % (
    ftype, kv.get("healthcheck"), kv.get("supported-versions"), kv.get("max-frame-size")))
EOF
)
check_eq "the probe sends HAPROXY-HELLO with healthcheck=true and version 2.0" "$sent" \
	"type=1 healthcheck=True versions=2.0 mfs=16380"

for mode in garbage http close disconnect v1 nomfs smallmfs; do
	fake "$mode"
	if [ -z "$FAKE_PORT" ]; then
		not_ok "fake peer '$mode' started"
		continue
	fi
	expect_probe "non-SPOP or unhealthy peer ($mode): exit 1" "127.0.0.1:$FAKE_PORT" 1 3500
	# It must have failed on the answer, not on reaching the fake peer.
	case $P_OUT in
	*refused* | *timeout*) not_ok "fake peer '$mode' was reached"; diag "$P_OUT" ;;
	esac
done

fake silent
expect_probe "peer that accepts and never answers: exit 1 after the 3 s timeout" \
	"127.0.0.1:$FAKE_PORT" 1 4500 2500

for p in "${FAKE_PIDS[@]}"; do t_stop_pid "$p"; done

t_finish
