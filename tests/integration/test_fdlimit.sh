#!/usr/bin/env bash
# The file-descriptor limit: with RLIMIT_NOFILE at 64 and 100 connections
# waiting in the backlog, accept fails with EMFILE. The agent must pause
# that listener and retry (100 ms doubling to 1 s) instead of spinning on
# a level-triggered watcher: over 2 s it uses < 0.3 s of CPU and writes
# < 50 log lines. Once the connections close it serves again.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init
t_need_agent
BIN=$T_AGENT_BIN
HOLD_PID=

# shellcheck disable=SC2317 # invoked by the EXIT trap only
f_cleanup() {
	local rc=$?
	[ -n "$HOLD_PID" ] && t_stop_pid "$HOLD_PID"
	(exit "$rc")
	t_cleanup
}
trap f_cleanup EXIT

if ! command -v prlimit >/dev/null; then
	not_ok "prlimit (util-linux) is installed"
	exit 1
fi

# wait_probe ADDR TENTHS: poll --probe until the agent at ADDR answers.
wait_probe() {
	local i
	for ((i = 0; i < $2; i++)); do
		timeout 5 "$BIN" --probe "$1" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# wait_file FILE TENTHS
wait_file() {
	local i
	for ((i = 0; i < $2; i++)); do
		[ -s "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# CPU time (utime + stime) of a process, in clock ticks.
cpu_ticks() {
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

started=0
for try in 1 2 3; do
	PORT=$(t_free_port)
	# prlimit execs the agent: $! is the agent.
	prlimit --nofile=64:64 "$BIN" -l "127.0.0.1:$PORT" -t 1 >>"$T_WORK/agent.log" 2>&1 &
	T_AGENT_PID=$!
	if wait_probe "127.0.0.1:$PORT" 50 && t_pid_alive "$T_AGENT_PID"; then
		started=1
		break
	fi
	t_stop_agent
done
if [ "$started" != 1 ]; then
	not_ok "agent starts under prlimit --nofile=64:64"
	diag "$(tail -n 20 "$T_WORK/agent.log")"
	exit 1
fi
ok "agent starts under prlimit --nofile=64:64"

# 100 connections, held until the stop file appears (at most 60 s).
python3 - "$PORT" "$T_WORK/hold.ready" "$T_WORK/hold.stop" <<'EOF' &
import os, socket, sys, time
port, ready, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
socks = []
for _ in range(100):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    socks.append(s)
with open(ready, "w") as f:
    f.write("%d\n" % len(socks))
deadline = time.monotonic() + 60
while not os.path.exists(stop) and time.monotonic() < deadline:
    time.sleep(0.05)
for s in socks:
    s.close()
EOF
HOLD_PID=$!
if wait_file "$T_WORK/hold.ready" 100; then ok "100 connections open"; else not_ok "100 connections open"; fi

# Wait until the agent has hit the limit (it logs the accept error).
for ((i = 0; i < 50; i++)); do
	grep -q "accept on 127.0.0.1:$PORT" "$T_WORK/agent.log" && break
	sleep 0.1
done
if grep -q "accept on 127.0.0.1:$PORT: Too many open files" "$T_WORK/agent.log"; then
	ok "the agent reports EMFILE"
else
	not_ok "the agent reports EMFILE"; diag "$(tail -n 5 "$T_WORK/agent.log")"
fi

# The measurement window: 2 s with the limit reached.
c0=$(cpu_ticks "$T_AGENT_PID")
l0=$(wc -l <"$T_WORK/agent.log")
t0=$(date +%s%N)
sleep 2
c1=$(cpu_ticks "$T_AGENT_PID")
l1=$(wc -l <"$T_WORK/agent.log")
t1=$(date +%s%N)
hz=$(getconf CLK_TCK)
cpu_ms=$(((c1 - c0) * 1000 / hz))
lines=$((l1 - l0))
win_ms=$(((t1 - t0) / 1000000))
diag "over ${win_ms} ms at the fd limit: ${cpu_ms} ms of CPU, $lines log lines"
if [ "$cpu_ms" -lt 300 ]; then ok "at the fd limit the agent does not spin (${cpu_ms} ms CPU in 2 s)"; else
	not_ok "at the fd limit the agent does not spin (${cpu_ms} ms CPU in 2 s)"
fi
if [ "$lines" -lt 50 ]; then ok "at the fd limit the log stays quiet ($lines lines in 2 s)"; else
	not_ok "at the fd limit the log stays quiet ($lines lines in 2 s)"
	diag "$(tail -n 3 "$T_WORK/agent.log")"
fi

touch "$T_WORK/hold.stop"
t_stop_pid "$HOLD_PID"
HOLD_PID=
# Retries back off to at most 1 s: well within the 10 s allowed here.
if wait_probe "127.0.0.1:$PORT" 100; then ok "once the connections close the agent serves again"; else
	not_ok "once the connections close the agent serves again"
	diag "$(tail -n 5 "$T_WORK/agent.log")"
fi

t_finish
