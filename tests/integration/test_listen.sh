#!/usr/bin/env bash
# Listen addresses and unix sockets:
#   - one syntax everywhere: a relative unix path is refused by -l, by the
#     `listen` key and by --probe, with the same message, and nothing is
#     created
#   - a second agent on the unix socket of a live one exits 1 ("in use by
#     another process") and leaves it alone: the first keeps answering
#   - a stale socket left by a SIGKILLed agent is reused by the next start
#   - a regular file at the socket path is never removed
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init
t_need_agent
BIN=$T_AGENT_BIN
MSG="unix socket path must be absolute (unix:/path)"

# wait_probe ADDR TENTHS: poll --probe until the agent at ADDR answers.
wait_probe() {
	local i
	for ((i = 0; i < $2; i++)); do
		"$BIN" --probe "$1" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# --- relative unix paths ----------------------------------------------------
# Run from the work dir so that a wrongly accepted path lands there.
out=$(cd "$T_WORK" && timeout 5 "$BIN" -l unix:relative.sock 2>&1); rc=$?
if [ "$rc" != 0 ] && [ "$rc" != 124 ]; then ok "-l unix:relative.sock exits non-zero (exit $rc)"; else
	not_ok "-l unix:relative.sock exits non-zero"; diag "exit $rc: $out"
fi
case $out in *"$MSG"*) ok "-l unix:relative.sock says why" ;;
*) not_ok "-l unix:relative.sock says why"; diag "$out" ;; esac
check_eq "-l unix:relative.sock creates nothing" "$(ls "$T_WORK")" ""

printf '[agent]\nlisten = unix:relative.sock\n' >"$T_WORK/rel.conf"
out=$(cd "$T_WORK" && timeout 5 "$BIN" -c "$T_WORK/rel.conf" --check 2>&1); rc=$?
check_eq "listen = unix:relative.sock: --check exits 1" "$rc" 1
case $out in *"$MSG"*) ok "listen = unix:relative.sock: same message" ;;
*) not_ok "listen = unix:relative.sock: same message"; diag "$out" ;; esac
rm -f "$T_WORK/rel.conf"

out=$(cd "$T_WORK" && timeout 5 "$BIN" --probe unix:relative.sock 2>&1); rc=$?
check_eq "--probe unix:relative.sock exits 1" "$rc" 1
case $out in *"$MSG"*) ok "--probe unix:relative.sock: same message" ;;
*) not_ok "--probe unix:relative.sock: same message"; diag "$out" ;; esac

for bad in 'unix:' '*:0' ':65000' 'a_b:80' '[::1' '[zz::1]:80' 'host:80x'; do
	out=$(timeout 5 "$BIN" -l "$bad" 2>&1); rc=$?
	check_eq "-l '$bad' is a usage error (exit 2)" "$rc" 2
done

# --- a live socket is not taken over -----------------------------------------
SOCK=$T_WORK/a.sock
"$BIN" -l "unix:$SOCK" -t 1 >>"$T_WORK/agent.log" 2>&1 &
T_AGENT_PID=$!
if wait_probe "unix:$SOCK" 50; then ok "agent A answers on unix:$SOCK"; else
	not_ok "agent A answers on unix:$SOCK"; diag "$(tail -n 20 "$T_WORK/agent.log")"
fi
ino=$(stat -c %i "$SOCK" 2>/dev/null)
# B must give up at once; the timeout only bounds a B that wrongly starts.
out=$(timeout 5 "$BIN" -l "unix:$SOCK" -t 1 2>&1); rc=$?
check_eq "agent B on the same socket exits 1" "$rc" 1
case $out in *"unix:$SOCK: in use by another process"*) ok "agent B says the socket is in use" ;;
*) not_ok "agent B says the socket is in use"; diag "$out" ;; esac
check_eq "the socket file is A's, untouched" "$(stat -c %i "$SOCK" 2>/dev/null)" "$ino"
if "$BIN" --probe "unix:$SOCK" >/dev/null 2>&1; then ok "agent A still answers after B's attempt"; else
	not_ok "agent A still answers after B's attempt"
fi
t_stop_agent
check_eq "agent A exits 0" "$T_AGENT_RC" 0
if [ ! -e "$SOCK" ]; then ok "agent A removes its socket at exit"; else not_ok "agent A removes its socket at exit"; fi

# --- a stale socket is reused ----------------------------------------------------
SOCK=$T_WORK/stale.sock
"$BIN" -l "unix:$SOCK" -t 1 >>"$T_WORK/agent.log" 2>&1 &
pid=$!
wait_probe "unix:$SOCK" 50 || not_ok "agent C answers on unix:$SOCK"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
if [ -S "$SOCK" ]; then ok "a SIGKILLed agent leaves its socket behind"; else
	not_ok "a SIGKILLed agent leaves its socket behind"
fi
"$BIN" -l "unix:$SOCK" -t 1 >>"$T_WORK/agent.log" 2>&1 &
T_AGENT_PID=$!
if wait_probe "unix:$SOCK" 50; then ok "a new agent reuses the stale socket"; else
	not_ok "a new agent reuses the stale socket"; diag "$(tail -n 20 "$T_WORK/agent.log")"
fi
t_stop_agent

# --- a regular file is never removed ---------------------------------------------
echo keep >"$T_WORK/file.sock"
out=$(timeout 5 "$BIN" -l "unix:$T_WORK/file.sock" -t 1 2>&1); rc=$?
check_eq "a regular file at the path: exit 1" "$rc" 1
check_eq "the regular file is kept" "$(cat "$T_WORK/file.sock")" keep

t_finish
