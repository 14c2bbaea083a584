#!/usr/bin/env bash
# Listen addresses and unix sockets:
#   - one syntax everywhere: a relative unix path is refused by -l, by the
#     `listen` key and by --probe, with the same message, and nothing is
#     created
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

t_finish
