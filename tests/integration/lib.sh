# shellcheck shell=bash
# lib.sh - shared helpers for the HAProxy integration tests and the demo.
#
# Source it, then:
#   t_init                 work dir, traps, TAP counters
#   t_pki                  demo PKI in $T_PKI (tests/pki/mkpki.sh)
#   t_start_agent [CONF]   mtls-spoa on a free port ($T_AGENT_PORT, admin
#                           HTTP on $T_ADMIN_PORT); CONF
#                           defaults to haproxy-conf/mtls-spoa.conf, copied
#                           next to the PKI so its relative paths resolve
#   t_admin_tokens CONF N  a generated admin-token-file for CONF
#   t_start_haproxy        haproxy-conf/haproxy.cfg (unchanged) plus a
#                           generated file with the echo backend and stats
#   t_wait_agent_state UP  poll HAProxy's stats until agent1 is UP/DOWN
#   t_req ...              one curl request, see below
#   ok / not_ok / check_eq  TAP lines;  t_tap  count a helper's TAP lines
#   t_finish               exit status
# Everything listens on 127.0.0.1 on ports picked at run time, every wait
# is bounded, and the EXIT trap stops what was started and removes the
# work dir (kept when T_KEEP=1, for debugging).

T_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MTLS_BUILD=${MTLS_BUILD:-build}
case $MTLS_BUILD in
/*) T_AGENT_BIN=$MTLS_BUILD/mtls-spoa ;;
*) T_AGENT_BIN=$T_ROOT/$MTLS_BUILD/mtls-spoa ;;
esac
T_HAPROXY=${HAPROXY:-haproxy}
T_PASS=0
T_FAIL=0
T_AGENT_PID=
T_HAPROXY_PID=

ok() {
	T_PASS=$((T_PASS + 1))
	echo "ok - $*"
}

not_ok() {
	T_FAIL=$((T_FAIL + 1))
	echo "not ok - $*"
}

# diag TEXT...: diagnostics, never mistaken for a result line.
diag() {
	local line
	while IFS= read -r line; do
		echo "# $line"
	done <<<"$*"
}

# check_eq DESCRIPTION GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "$(printf "got:  '%s'\nwant: '%s'" "$2" "$3")"
	fi
}

# t_tap: count here the TAP lines a helper program (Python scenario)
# printed on stdin; other lines pass through.
t_tap() {
	local line
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "${line#ok - }" ;;
		"not ok - "*) not_ok "${line#not ok - }" ;;
		*) echo "$line" ;;
		esac
	done
}

# check DESCRIPTION COMMAND...: ok when the command succeeds.
check() {
	local d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}

t_cleanup() {
	local rc=$?
	t_stop_haproxy
	t_stop_agent
	if [ -n "${T_WORK:-}" ] && [ -d "$T_WORK" ]; then
		if [ "${T_KEEP:-0}" = 1 ]; then
			echo "# work dir kept: $T_WORK" >&2
		else
			rm -rf "$T_WORK"
		fi
	fi
	return "$rc"
}

t_init() {
	T_WORK=$(mktemp -d "${TMPDIR:-/tmp}/mtls-test.XXXXXX")
	trap t_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	T_PKI=$T_WORK/pki
	# The tenant API's state directory of every agent a test starts: never
	# the default /var/lib/mtls-spoa, shared by every test (README "API").
	T_STATE_DIR=$T_WORK/state
	T_CURL_MAXTIME=${T_CURL_MAXTIME:-5}
}

# t_finish: stop everything, check how the agent ended, print the tally
# and return non-zero when anything failed.
t_finish() {
	t_stop_haproxy
	if [ -n "${T_AGENT_PID:-}" ]; then
		t_stop_agent
		check_eq "agent exits 0 on SIGTERM" "$T_AGENT_RC" 0
	fi
	if [ -f "$T_WORK/agent.log" ] &&
		grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$T_WORK/agent.log"; then
		not_ok "agent log has no sanitizer reports"
		diag "$(grep -E -A5 'Sanitizer|runtime error:' "$T_WORK/agent.log" | head -n 40)"
	fi
	echo "# $T_PASS passed, $T_FAIL failed"
	[ "$T_FAIL" -eq 0 ]
}

# t_python_h2: T_PY_H2 = a Python that has the h2 module (Debian's
# python3-h2 lives in /usr/bin/python3, which a pyenv or venv python3
# earlier in PATH does not see); not_ok and non-zero if there is none.
# shellcheck disable=SC2034 # T_PY_H2 is the caller's
t_python_h2() {
	local p
	T_PY_H2=
	for p in python3 /usr/bin/python3; do
		if "$p" -c 'import h2' 2>/dev/null; then T_PY_H2=$p; return 0; fi
	done
	not_ok "python3 with the h2 module (Debian python3-h2) is installed"
	return 1
}

# Skip-as-failure guard: the agent binary must exist (make builds it).
t_need_agent() {
	if [ ! -x "$T_AGENT_BIN" ]; then
		not_ok "agent binary $T_AGENT_BIN exists (run make first)"
		exit 1
	fi
}

t_pki() {
	"$T_ROOT/tests/pki/mkpki.sh" "$T_PKI" >/dev/null
}

# t_bench_bin: spop-bench in $BENCH_BIN, the one `make bench` built into
# $MTLS_BUILD/bench, else built here; not_ok and non-zero if it cannot be.
t_bench_bin() {
	BENCH_BIN=$(dirname "$T_AGENT_BIN")/bench/spop-bench
	[ -x "$BENCH_BIN" ] && return 0
	if "$T_ROOT/tests/bench/build.sh" "$T_WORK/bench" spop-bench >"$T_WORK/build.log" 2>&1; then
		BENCH_BIN=$T_WORK/bench/spop-bench
		return 0
	fi
	not_ok "spop-bench builds"
	diag "$(cat "$T_WORK/build.log")"
	return 1
}

# A port nobody listens on right now. The kernel picks it; there is a
# small window before our server binds it, so starters retry on failure.
t_free_port() {
	python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# t_wait_port PORT [TENTHS]: wait until something accepts on PORT.
t_wait_port() {
	local port=$1 n=${2:-100} i
	for ((i = 0; i < n; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

t_pid_alive() {
	[ -n "$1" ] && kill -0 "$1" 2>/dev/null
}

# t_stop_pid PID: SIGTERM, wait up to 5s, then SIGKILL. The exit status
# is left in T_STOP_RC (137 when it had to be killed).
t_stop_pid() {
	local pid=$1 i
	T_STOP_RC=
	t_pid_alive "$pid" || { wait "$pid" 2>/dev/null; T_STOP_RC=$?; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		t_pid_alive "$pid" || break
		sleep 0.1
	done
	if t_pid_alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null
	T_STOP_RC=$?
}

# t_start_agent [CONF]: the config is copied to $T_PKI/mtls-spoa.conf
# (tests edit that copy for reload tests) and the agent listens on
# $T_AGENT_PORT (kept across restarts, so HAProxy finds it again), its
# admin HTTP endpoints on $T_ADMIN_PORT (replacing the file's
# admin-listen, so parallel runs do not share a port), its API state in
# $T_STATE_DIR (kept across restarts).
t_start_agent() {
	local src=${1:-$T_ROOT/haproxy-conf/mtls-spoa.conf} try
	T_AGENT_CONF=$T_PKI/mtls-spoa.conf
	if [ "$src" != "$T_AGENT_CONF" ]; then
		cp "$src" "$T_AGENT_CONF"
	fi
	for try in 1 2 3; do
		if [ -z "${T_AGENT_PORT:-}" ] || [ "$try" -gt 1 ]; then
			T_AGENT_PORT=$(t_free_port)
		fi
		T_ADMIN_PORT=$(t_free_port)
		"$T_AGENT_BIN" -c "$T_AGENT_CONF" -l "127.0.0.1:$T_AGENT_PORT" \
			--admin-listen "127.0.0.1:$T_ADMIN_PORT" --state-dir "$T_STATE_DIR" \
			-t 2 >>"$T_WORK/agent.log" 2>&1 &
		T_AGENT_PID=$!
		if t_wait_port "$T_AGENT_PORT" 50 && t_wait_port "$T_ADMIN_PORT" 20 &&
			t_pid_alive "$T_AGENT_PID"; then
			return 0
		fi
		t_stop_pid "$T_AGENT_PID"
		T_AGENT_PID=
		# A fixed port (restart) must not move: HAProxy points at it.
		[ -n "${T_AGENT_PORT_FIXED:-}" ] && break
	done
	echo "# agent did not start; its log:" >&2
	sed 's/^/#   /' "$T_WORK/agent.log" >&2
	return 1
}

# t_admin_tokens CONF NAME...: a token file admin-tokens (mode 0600) next
# to CONF with one generated token per NAME, named by CONF's [agent]
# (admin-token-file, README "Security model"); the tokens in
# T_TOKENS[NAME], the first one in T_TOKEN too.
t_admin_tokens() {
	local conf=$1 dir n
	shift
	dir=$(dirname "$conf")
	declare -gA T_TOKENS
	(umask 077 && : >"$dir/admin-tokens")
	for n in "$@"; do
		T_TOKENS[$n]=$(openssl rand -hex 24)
		echo "$n:${T_TOKENS[$n]}" >>"$dir/admin-tokens"
	done
	# shellcheck disable=SC2034 # read by the tests that source this file
	T_TOKEN=${T_TOKENS[$1]}
	sed -i 's/^\[agent\]$/[agent]\nadmin-token-file = admin-tokens/' "$conf"
}

t_stop_agent() {
	if [ -n "${T_AGENT_PID:-}" ]; then
		t_stop_pid "$T_AGENT_PID"
		T_AGENT_RC=$T_STOP_RC
		T_AGENT_PID=
	fi
}

# Restart on the same port (HAProxy's server line points there).
t_restart_agent() {
	T_AGENT_PORT_FIXED=1 t_start_agent "$T_AGENT_CONF"
}

t_reload_agent() {
	kill -HUP "$T_AGENT_PID"
}

# The extra HAProxy file: an echo "application" that shows what the
# backend received, and a stats page to watch the agent's health check.
t_write_extra_cfg() {
	cat >"$T_WORK/extra.cfg" <<EOF
# Generated by tests/integration/lib.sh: test-only sections.
frontend fe_echo
	bind 127.0.0.1:$T_ECHO_PORT
	mode http
	log-format "echo %{+Q}r"
	http-request return status 200 content-type text/plain lf-string "client-cert=%[req.hdr(client-cert)]\nclient-cert-chain=%[req.hdr(client-cert-chain)]\nhost=%[req.hdr(host)]\n"

listen stats
	bind 127.0.0.1:$T_STATS_PORT
	mode http
	stats enable
	stats uri /stats
EOF
}

# t_haproxy_env: the environment haproxy-conf/haproxy.cfg reads, for the
# ports and PKI of this test (call it in the subshell that execs HAProxy).
t_haproxy_env() {
	export MTLS_BIND=127.0.0.1:$T_HTTPS_PORT
	export MTLS_SERVER_PEM=$T_PKI/server.pem
	export MTLS_PLACEHOLDER_CA=$T_PKI/placeholder-ca.pem
	export MTLS_SPOE_CONF=$T_ROOT/haproxy-conf/mtls-spoe.conf
	export MTLS_AGENT_ADDR=127.0.0.1:$T_AGENT_PORT
	export MTLS_BACKEND_ADDR=127.0.0.1:$T_ECHO_PORT
	export MTLS_VERDICT_HEADERS=1
	if [ -n "${T_FAIL_OPEN_HOSTS:-}" ]; then
		export MTLS_FAIL_OPEN_HOSTS=$T_FAIL_OPEN_HOSTS
	fi
}

# t_start_haproxy: runs haproxy-conf/haproxy.cfg with verdict headers on.
# Set T_FAIL_OPEN_HOSTS to a file to enable the fail-open switch. A test
# that runs a derived configuration sets T_HAPROXY_CFG to it, and
# T_EXTRA_CFG_WRITER to the function writing $T_WORK/extra.cfg (called on
# every try, after the ports are picked; default t_write_extra_cfg).
t_start_haproxy() {
	local try
	for try in 1 2 3; do
		T_HTTPS_PORT=$(t_free_port)
		T_ECHO_PORT=$(t_free_port)
		T_STATS_PORT=$(t_free_port)
		"${T_EXTRA_CFG_WRITER:-t_write_extra_cfg}"
		(
			t_haproxy_env
			exec "$T_HAPROXY" -db -f "${T_HAPROXY_CFG:-$T_ROOT/haproxy-conf/haproxy.cfg}" \
				-f "$T_WORK/extra.cfg"
		) >>"$T_WORK/haproxy.log" 2>&1 &
		T_HAPROXY_PID=$!
		if t_wait_port "$T_HTTPS_PORT" 50 && t_wait_port "$T_STATS_PORT" 20 &&
			t_pid_alive "$T_HAPROXY_PID"; then
			return 0
		fi
		t_stop_pid "$T_HAPROXY_PID"
		T_HAPROXY_PID=
	done
	echo "# haproxy did not start; its log:" >&2
	sed 's/^/#   /' "$T_WORK/haproxy.log" >&2
	return 1
}

t_stop_haproxy() {
	if [ -n "${T_HAPROXY_PID:-}" ]; then
		t_stop_pid "$T_HAPROXY_PID"
		T_HAPROXY_PID=
	fi
}

# The agent server's state in HAProxy (UP, DOWN, "DOWN 1/2", ...), from
# the stats CSV (field 18 "status"; same data as "show stat").
t_agent_state() {
	curl -s --max-time 2 "http://127.0.0.1:$T_STATS_PORT/stats;csv" |
		awk -F, '$1 == "be_mtls_agents" && $2 == "agent1" { print $18 }'
}

# t_wait_agent_state STATE [SECONDS]
t_wait_agent_state() {
	local want=$1 secs=${2:-15} i st=
	for ((i = 0; i < secs * 5; i++)); do
		st=$(t_agent_state)
		[ "$st" = "$want" ] && return 0
		sleep 0.2
	done
	echo "# agent state in HAProxy: '$st', wanted '$want'" >&2
	return 1
}

# t_req HOST CLIENT PATH [curl args...]
#   HOST:   name used for SNI and Host (via --resolve to 127.0.0.1);
#           "-" connects to 127.0.0.1 (no SNI: curl sends none for IPs)
#   CLIENT: client certificate name from the PKI (a-valid, rogue, ...) or
#           "none"
# Sets T_STATUS (HTTP status, 000 on failure) and writes the response
# headers to $T_WORK/last.hdr and the body to $T_WORK/last.body.
t_req() {
	local host=$1 client=$2 path=$3
	shift 3
	local args=(-s --max-time "$T_CURL_MAXTIME" --cacert "$T_PKI/server-ca.pem"
		-D "$T_WORK/last.hdr" -o "$T_WORK/last.body" -w '%{http_code}')
	if [ "$client" != none ]; then
		args+=(--cert "$T_PKI/$client.pem" --key "$T_PKI/$client.key")
	fi
	: >"$T_WORK/last.hdr"
	: >"$T_WORK/last.body"
	if [ "$host" = - ]; then
		T_STATUS=$(curl "${args[@]}" "$@" "https://127.0.0.1:$T_HTTPS_PORT$path") || true
	else
		T_STATUS=$(curl "${args[@]}" --resolve "$host:$T_HTTPS_PORT:127.0.0.1" \
			"$@" "https://$host:$T_HTTPS_PORT$path") || true
	fi
	[ -n "$T_STATUS" ] || T_STATUS=000
}

# t_hdr NAME: a header of the last response (case-insensitive), "" if none.
t_hdr() {
	awk -v n="$(echo "$1" | tr '[:upper:]' '[:lower:]')" '
		BEGIN { FS = ":" }
		{ sub(/\r$/, "") }
		tolower($1) == n { v = substr($0, length($1) + 2); sub(/^ /, "", v); print v; exit }
	' "$T_WORK/last.hdr"
}

# t_body_field NAME: "NAME=value" line of the echo backend's body.
t_body_field() {
	sed -n "s/^$1=//p" "$T_WORK/last.body" | head -n 1
}

# Base64 of a client certificate's DER, as RFC 9440 Client-Cert carries it.
t_cert_b64() {
	openssl x509 -in "$T_PKI/$1.crt" -outform DER | base64 -w 0
}

# t_wait_log PATTERN [TENTHS]: wait for an HAProxy log line (grep -E).
t_wait_log() {
	local pat=$1 n=${2:-30} i
	for ((i = 0; i < n; i++)); do
		grep -Eq -- "$pat" "$T_WORK/haproxy.log" && return 0
		sleep 0.1
	done
	return 1
}

# t_log_line PATTERN: the first matching HAProxy log line.
t_log_line() {
	grep -E -m 1 -- "$1" "$T_WORK/haproxy.log" || true
}

# A summary of the verdict headers of the last response, for diagnostics
# and the demo.
t_verdict() {
	printf 'action=%s result=%s mode=%s policy=%s' "$(t_hdr X-Mtls-Action)" \
		"$(t_hdr X-Mtls-Result)" "$(t_hdr X-Mtls-Mode)" "$(t_hdr X-Mtls-Policy)"
	local e
	e=$(t_hdr X-Mtls-Error)
	[ -n "$e" ] && printf ' spoe_error=%s' "$e"
	printf '\n'
}

# t_expect DESC WANT_STATUS WANT_RESULT HOST CLIENT PATH [curl args...]
# One request and one TAP line: status and X-Mtls-Result must match
# (WANT_RESULT "*" accepts any result).
t_expect() {
	local desc=$1 want=$2 wres=$3
	shift 3
	t_req "$@"
	local res
	res=$(t_hdr X-Mtls-Result)
	if [ "$T_STATUS" = "$want" ] && { [ "$wres" = "*" ] || [ "$res" = "$wres" ]; }; then
		ok "$desc"
	else
		not_ok "$desc"
		diag "want status $want result $wres; got status $T_STATUS $(t_verdict)"
	fi
}

# t_haproxy_version: "VERSION (EXE)" of the running HAProxy process
# $T_HAPROXY_PID, from the binary the kernel runs for it
# (/proc/PID/exe), not from whatever "haproxy" is on PATH. The stats page
# cannot say: 3.4 hides the version there by default. Empty when no
# HAProxy runs.
t_haproxy_version() {
	local exe
	t_pid_alive "${T_HAPROXY_PID:-}" || return 0
	exe=$(readlink "/proc/$T_HAPROXY_PID/exe") || return 0
	printf '%s (%s)\n' "$("$exe" -v 2>/dev/null | awk 'NR == 1 { print $3 }')" "$exe"
}
