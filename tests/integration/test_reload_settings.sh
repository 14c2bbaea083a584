#!/usr/bin/env bash
# SIGHUP applies the [agent] keys that README says need no restart:
#   - idle-timeout 30s -> 1s: a connection opened after the reload is
#     closed (AGENT-DISCONNECT status 2, timeout) within 0.5..3.5 s, and
#     one opened before it from its next frame on
#   - max-connections lowered to 3: a fourth connection is refused
#   - command-line settings keep overriding the file (-t: a changed
#     `threads` logs nothing)
#   - `listen` or `threads` changed in the file: the agent keeps its
#     listeners and threads and logs "listen changed in FILE: restart to
#     apply" (and the same for threads)
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init
t_need_agent
BIN=$T_AGENT_BIN
LOG=$T_WORK/agent.log

# start_agent CONF ARGS...: sets T_AGENT_PID; the agent must answer
# --probe on $PORT within 5 s.
start_agent() {
	local conf=$1 try i
	shift
	for try in 1 2 3; do
		"$BIN" -c "$conf" "$@" >>"$LOG" 2>&1 &
		T_AGENT_PID=$!
		for ((i = 0; i < 50; i++)); do
			if "$BIN" --probe "127.0.0.1:$PORT" >/dev/null 2>&1; then
				return 0
			fi
			t_pid_alive "$T_AGENT_PID" || break
			sleep 0.1
		done
		t_stop_agent
		diag "agent start attempt $try failed"
		return 1
	done
}

# reload: SIGHUP, then wait (5 s at most) for one more "reloaded" line.
reload() {
	local n i
	n=$(grep -c "reloaded " "$LOG")
	kill -HUP "$T_AGENT_PID"
	for ((i = 0; i < 50; i++)); do
		[ "$(grep -c "reloaded " "$LOG")" -gt "$n" ] && return 0
		sleep 0.1
	done
	return 1
}

# spop_py SCENARIO: a Python scenario against $PORT, printing TAP lines.
spop_py() {
	cd "$T_ROOT/tests/integration" && timeout 30 python3 - "$1" "$PORT" "$T_WORK" <<'EOF'
import os, socket, sys, time
import spoplib as S
scenario, port, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
addr = ("127.0.0.1", port)

def ok(cond, desc, diag=None):
    print(("ok - " if cond else "not ok - ") + desc, flush=True)
    if not cond and diag:
        print("# " + str(diag), flush=True)

def hello(deadline=3.0):
    """A connection that completed HELLO, retrying while the agent is
    still closing earlier ones (max-connections counts them)."""
    end = time.monotonic() + deadline
    while True:
        c = S.Client(addr, timeout=2)
        try:
            c.hello()
            return c
        except (S.Closed, OSError, S.ProtocolError):
            c.close()
            if time.monotonic() > end:
                raise
            time.sleep(0.05)

def expect_idle_close(c, desc):
    """AGENT-DISCONNECT status 2 (timeout) and a close 0.5..3.5 s from now."""
    t0 = time.monotonic()
    good, diag = S.expect_disconnect(c, S.ST_TIMEOUT, timeout=5.0)
    el = time.monotonic() - t0
    ok(good and 0.5 <= el <= 3.5, "%s (closed after %.2f s)" % (desc, el), diag)

if scenario == "idle-before":
    # Opened before the reload and idle while the parent reloads; from its
    # next frame on, the new idle-timeout applies.
    c = hello()
    open(os.path.join(work, "before.ready"), "w").close()
    end = time.monotonic() + 20
    while not os.path.exists(os.path.join(work, "before.go")) and time.monotonic() < end:
        time.sleep(0.05)
    c.notify(1, 1, [S.check_cert_message(cert=b"x", sni="a.example", host="a.example")])
    expect_idle_close(c, "a connection opened before the reload gets the new "
                      "idle-timeout from its next frame on")
elif scenario == "idle-after":
    expect_idle_close(hello(), "a connection opened after the reload is closed by "
                      "the new 1s idle-timeout")
elif scenario == "max-conn":
    held = [hello() for _ in range(3)]
    ok(True, "3 connections under max-connections 3")
    c = S.Client(addr, timeout=2)
    try:
        c.hello()
        refused, how = False, "got an AGENT-HELLO"
    except S.Closed as e:
        refused, how = True, e.how
    except OSError as e:
        refused, how = True, str(e)
    ok(refused, "a 4th connection is refused after max-connections was lowered to 3",
       how)
    for h in held:
        h.close()
EOF
}

# wait_file FILE: 10 s at most.
wait_file() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

PORT=$(t_free_port)
CONF=$T_WORK/agent.conf
printf '[agent]\nidle-timeout = 30s\nmax-connections = 100\nthreads = 1\n' >"$CONF"
if start_agent "$CONF" -l "127.0.0.1:$PORT" -t 2; then ok "agent starts with idle-timeout 30s"; else
	not_ok "agent starts with idle-timeout 30s"; diag "$(tail -n 20 "$LOG")"; exit 1
fi

# An idle connection from before the reload, in the background.
spop_py idle-before >"$T_WORK/before.tap" 2>&1 &
before_pid=$!
if wait_file "$T_WORK/before.ready"; then ok "an idle connection is open before the reload"; else
	not_ok "an idle connection is open before the reload"
fi

printf '[agent]\nidle-timeout = 1s\nmax-connections = 100\nthreads = 3\n' >"$CONF"
if reload; then ok "reload with idle-timeout 1s"; else not_ok "reload with idle-timeout 1s"; fi
t_tap < <(spop_py idle-after)
if grep -q "threads changed" "$LOG"; then not_ok "threads given with -t: a changed file logs nothing"; else
	ok "threads given with -t: a changed file logs nothing"
fi
touch "$T_WORK/before.go"
wait "$before_pid"
t_tap <"$T_WORK/before.tap"

printf '[agent]\nidle-timeout = 30s\nmax-connections = 3\n' >"$CONF"
if reload; then ok "reload with max-connections 3"; else not_ok "reload with max-connections 3"; fi
t_tap < <(spop_py max-conn)
if grep -q "max-connections (3) reached" "$LOG"; then ok "the refusal is logged with the new limit"; else
	not_ok "the refusal is logged with the new limit"
fi
t_stop_agent
check_eq "agent exits 0" "$T_AGENT_RC" 0

# --- listen and threads from the file need a restart -------------------------
PORT=$(t_free_port)
OTHER=$(t_free_port)
printf '[agent]\nlisten = 127.0.0.1:%s\nthreads = 1\n' "$PORT" >"$CONF"
if start_agent "$CONF"; then ok "agent starts on the file's listen address"; else
	not_ok "agent starts on the file's listen address"; diag "$(tail -n 20 "$LOG")"; exit 1
fi
printf '[agent]\nlisten = 127.0.0.1:%s\nthreads = 2\n' "$OTHER" >"$CONF"
if reload; then ok "reload with another listen address and thread count"; else
	not_ok "reload with another listen address and thread count"
fi
if grep -qF "listen changed in $CONF: restart to apply" "$LOG"; then ok "a changed listen logs the restart warning"; else
	not_ok "a changed listen logs the restart warning"; diag "$(tail -n 5 "$LOG")"
fi
if grep -qF "threads changed in $CONF: restart to apply" "$LOG"; then ok "a changed threads logs the restart warning"; else
	not_ok "a changed threads logs the restart warning"
fi
if "$BIN" --probe "127.0.0.1:$PORT" >/dev/null 2>&1; then ok "the agent still answers on the old address"; else
	not_ok "the agent still answers on the old address"
fi
t_finish
