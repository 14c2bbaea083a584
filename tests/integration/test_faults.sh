#!/usr/bin/env bash
# Fault tests against the real HAProxy and the agent (issue 5, item 4),
# each under a steady bounded load of HTTPS requests with a valid client
# certificate on an enforce host (tests/integration/loadgen.py: 4 keep-alive
# workers, FAULT_RATE requests/s in total, every request with a 3 s timeout,
# status and timestamps recorded):
#   1. SIGKILL of the agent, restart after 1.5 s: HAProxy fails closed (503,
#      never 200 without a verdict, no hang past the SPOE processing
#      timeout) and recovers within 5 s ("# recovery: N ms").
#   2. SIGTERM: the agent answers what it has received, exits 0 and logs
#      "stopped". Three views: (a) under load, (b) precise, through HAProxy:
#      the agent is paused (SIGSTOP) while N requests are sent, SIGTERM is
#      sent once their N NOTIFYs are in its socket buffers (/proc), and all
#      N must be 200; (c) precise, raw SPOP: pipelined NOTIFYs on several
#      connections, delivered before SIGTERM, must each get an ACK before
#      the AGENT-DISCONNECT, both below (4 x 8) and above (32 x 40) the
#      16 KiB the agent reads from a connection at a time.
#   3. HAProxy reloaded (master-worker, SIGUSR2) three times: no 403/503,
#      no error in the agent log, requests keep being answered.
#   4. Five SIGHUP reloads of the agent, each adding a host to its
#      configuration: every request 200, five "reloaded" log lines with the
#      new host counts.
# What counts as lost is defined per scenario in loadgen.py (analyze_*):
#   1 and 2a: no HTTP answer (timeout, connection error: HAProxy's listener
#      never goes away), a 200 while the agent was dead (fail open), a
#      status other than 200/503, an answer slower than 2.5 s, or anything
#      but 200 once recovered. 503s while the agent is down are the
#      expected fail-closed answers, not losses.
#   2b/2c: a request/NOTIFY in flight at SIGTERM without its verdict/ACK.
#   3: a 403/503 (any non-200 answer), a timeout, or an error on a FRESH
#      connection. A connection error on a REUSED keep-alive connection is
#      the old HAProxy worker closing it during its soft stop (HAProxy's
#      own reload, not the agent): reported as a comment, not lost.
#   4: anything but 200.
# Ends with "# faults survived: N, requests: M, lost: L"; L must be 0.
# Bounded: about 20 s on a 2-core machine (FAULT_RATE=150); every wait has
# a limit, every process started here is stopped on every exit path.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init

LOADGEN=$T_ROOT/tests/integration/loadgen.py
FAULT_RATE=${FAULT_RATE:-150}
LOAD_PID=
RAW_PID=
FAULTS=0
TOTAL_REQ=0
TOTAL_LOST=0
RAW_REQ=0

# Stops what this file started itself, then lib.sh's cleanup.
# shellcheck disable=SC2317 # invoked by the EXIT trap only
f_cleanup() {
	local rc=$?
	if [ -n "$LOAD_PID" ] && t_pid_alive "$LOAD_PID"; then
		kill "$LOAD_PID" 2>/dev/null
		wait "$LOAD_PID" 2>/dev/null
	fi
	if [ -n "$RAW_PID" ]; then
		kill -CONT "$RAW_PID" 2>/dev/null
		t_stop_pid "$RAW_PID"
	fi
	# A paused main agent would not stop on SIGTERM.
	[ -n "${T_AGENT_PID:-}" ] && kill -CONT "$T_AGENT_PID" 2>/dev/null
	(exit "$rc")
	t_cleanup
}
trap f_cleanup EXIT
t_need_agent
t_pki

ms() { date +%s%3N; }

# proc_exited PID: the process has exited (gone, or a zombie not yet
# reaped; kill -0 still succeeds on a zombie).
proc_exited() {
	local st
	st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 0
	[ -z "$st" ] || [ "$st" = Z ]
}

# HAProxy in master-worker mode, so that SIGUSR2 reloads it the way
# systemd does (new worker, old one soft-stopped). lib.sh runs
# "$T_HAPROXY -db -f ..."; the wrapper adds -W. T_HAPROXY_PID is the master.
real_haproxy=$(command -v "$T_HAPROXY") || {
	not_ok "haproxy binary found"
	exit 1
}
cat >"$T_WORK/haproxy-mw" <<EOF
#!/bin/sh
exec "$real_haproxy" -W "\$@"
EOF
chmod +x "$T_WORK/haproxy-mw"
T_HAPROXY=$T_WORK/haproxy-mw

# consume: turn loadgen's output into TAP lines counted by lib.sh, and its
# "VAR name value" lines into R_name variables.
consume() {
	local line name val
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "${line#ok - }" ;;
		"not ok - "*) not_ok "${line#not ok - }" ;;
		"VAR "*)
			read -r _ name val <<<"$line"
			if [[ $name =~ ^[a-z_]+$ && $val =~ ^-?[0-9]+$ ]]; then
				printf -v "R_$name" '%s' "$val"
			fi
			;;
		*) echo "$line" ;;
		esac
	done
}

# tally NAME FAULTS_IN_PHASE FAIL_COUNT_BEFORE [raw]: add the phase's
# figures; its faults count as survived when none of its checks failed.
tally() {
	if [ "${R_done:-0}" != 1 ]; then
		not_ok "$1: loadgen.py completed its report"
		diag "$(tail -n 20 "$T_WORK/loadgen.err" 2>/dev/null)"
	fi
	TOTAL_REQ=$((TOTAL_REQ + ${R_requests:-0}))
	[ "${4:-}" = raw ] && RAW_REQ=$((RAW_REQ + ${R_requests:-0}))
	TOTAL_LOST=$((TOTAL_LOST + ${R_lost:-0}))
	if [ "$T_FAIL" -eq "$3" ]; then
		FAULTS=$((FAULTS + $2))
	fi
	R_requests=0
	R_lost=0
	R_done=0
}

https_args() {
	printf '%s\n' --port "$T_HTTPS_PORT" --host api.example.com \
		--cacert "$T_PKI/server-ca.pem" --cert "$T_PKI/a-valid.pem" \
		--key "$T_PKI/a-valid.key"
}

# load_start TAG: the steady load, into $T_WORK/TAG.tsv.
load_start() {
	LOAD_TSV=$T_WORK/$1.tsv
	LOAD_STOP=$T_WORK/$1.stop
	rm -f "$LOAD_STOP"
	local a
	mapfile -t a < <(https_args)
	python3 "$LOADGEN" run "${a[@]}" --workers 4 --rate "$FAULT_RATE" \
		--max-seconds 30 --max-requests 20000 --tag "$1" \
		--stop-file "$LOAD_STOP" --out "$LOAD_TSV" 2>>"$T_WORK/loadgen.err" &
	LOAD_PID=$!
}

load_stop() {
	touch "$LOAD_STOP"
	# loadgen stops within one request timeout (3 s) and is bounded itself.
	wait "$LOAD_PID"
	LOAD_PID=
}

# load_wait_ok N [SECONDS]: until N requests answered 200 since the last
# call's mark ($1 counted over lines started at or after $LOAD_MARK).
load_wait_ok() {
	local want=$1 secs=${2:-6} i n
	for ((i = 0; i < secs * 20; i++)); do
		n=$(awk -F'\t' -v t="${LOAD_MARK:-0}" '$1 >= t && $5 == 200' \
			"$LOAD_TSV" 2>/dev/null | wc -l)
		[ "$n" -ge "$want" ] && return 0
		sleep 0.05
	done
	return 1
}

# load_wait_run N [SECONDS]: until the last N requests started after
# $LOAD_MARK were all 200 (a steady state again).
load_wait_run() {
	local want=$1 secs=${2:-8} i n
	for ((i = 0; i < secs * 20; i++)); do
		n=$(sort -n "$LOAD_TSV" 2>/dev/null | awk -F'\t' -v t="$LOAD_MARK" '
			$1 >= t { if ($5 == 200) run++; else run = 0 }
			END { print run + 0 }')
		[ "$n" -ge "$want" ] && return 0
		sleep 0.05
	done
	return 1
}

agent_log_from() { tail -n "+$(($1 + 1))" "$T_WORK/agent.log"; }
agent_log_lines() { wc -l <"$T_WORK/agent.log"; }

# ---------------------------------------------------------------------------
# These faults are the agent's: every request must ask it, so the
# per-connection memo is off (with it, an open connection keeps its
# verdicts for up to memo-ttl after the agent dies: test_memo.sh).
sed 's/^\[agent\]$/[agent]\nmemo-ttl = 0/' "$T_ROOT/haproxy-conf/mtls-spoa.conf" >"$T_WORK/faults.conf"
t_start_agent "$T_WORK/faults.conf" || { not_ok "agent starts"; exit 1; }
t_start_haproxy || { not_ok "haproxy (master-worker) starts"; exit 1; }
if t_wait_agent_state UP 15; then
	ok "setup: agent UP in HAProxy (master-worker mode)"
else
	not_ok "setup: agent UP in HAProxy (master-worker mode)"
	exit 1
fi
t_req api.example.com a-valid /fault/setup
check_eq "setup: a valid certificate on the enforce host gets 200" "$T_STATUS" 200

# --- 1. SIGKILL under load ----------------------------------------------------
fail0=$T_FAIL
echo "# --- 1. agent killed with SIGKILL under load, restarted after 1.5 s"
load_start kill
LOAD_MARK=0
load_wait_ok 40 || not_ok "SIGKILL: load reaches 40 answered requests before the fault"
t_fault=$(ms)
# (braces: bash reports "Killed" on the group's stderr, not wait's)
{
	kill -KILL "$T_AGENT_PID"
	wait "$T_AGENT_PID"
} 2>/dev/null
t_dead=$(ms)
T_AGENT_PID=
# 1.5 s rather than 1: requests that start while the agent is gone end
# (503 after the 1 s SPOE processing timeout) before it is back.
sleep 1.5
t_restart=$(ms)
if t_restart_agent; then
	ok "SIGKILL: agent restarts on the same port"
else
	not_ok "SIGKILL: agent restarts on the same port"
	exit 1
fi
LOAD_MARK=$t_restart
load_wait_run 40 8
load_stop
consume < <(python3 "$LOADGEN" analyze kill "$T_WORK/kill.tsv" --tag SIGKILL \
	--load-tag kill --haproxy-log "$T_WORK/haproxy.log" \
	--fault "$t_fault" --dead "$t_dead" --restart "$t_restart" --min-run 40)
tally SIGKILL 1 "$fail0"

# --- 2a. SIGTERM under load ---------------------------------------------------
fail0=$T_FAIL
echo "# --- 2a. agent stopped with SIGTERM under load, restarted after 1.5 s"
log0=$(agent_log_lines)
load_start term
LOAD_MARK=0
load_wait_ok 40 || not_ok "SIGTERM: load reaches 40 answered requests before the fault"
t_fault=$(ms)
kill -TERM "$T_AGENT_PID"
for ((i = 0; i < 500; i++)); do
	proc_exited "$T_AGENT_PID" && break
	sleep 0.01
done
t_dead=$(ms)
t_stop_agent # reaps it (SIGKILL only if still running after 5 s more)
check_eq "SIGTERM under load: agent exits 0" "$T_AGENT_RC" 0
diag "agent took $((t_dead - t_fault)) ms to stop"
if agent_log_from "$log0" | grep -q '\[info\] signal 15: stopping' &&
	agent_log_from "$log0" | grep -q '\[info\] stopped$'; then
	ok "SIGTERM under load: the log says it is stopping, then stopped"
else
	not_ok "SIGTERM under load: the log says it is stopping, then stopped"
	diag "$(agent_log_from "$log0" | tail -n 5)"
fi
sleep 1.5
t_restart=$(ms)
t_restart_agent || { not_ok "SIGTERM: agent restarts on the same port"; exit 1; }
LOAD_MARK=$t_restart
load_wait_run 40 8
load_stop
consume < <(python3 "$LOADGEN" analyze kill "$T_WORK/term.tsv" --tag "SIGTERM under load" \
	--load-tag term --haproxy-log "$T_WORK/haproxy.log" \
	--graceful --fault "$t_fault" --dead "$t_dead" --restart "$t_restart" --min-run 40)
tally "SIGTERM under load" 1 "$fail0"

# --- 2b. SIGTERM with requests provably in flight (through HAProxy) -----------
fail0=$T_FAIL
echo "# --- 2b. SIGTERM while 12 NOTIFYs from HAProxy wait in the agent's sockets"
log0=$(agent_log_lines)
mapfile -t hargs < <(https_args)
consume < <(python3 "$LOADGEN" burst "${hargs[@]}" --n 12 --pid "$T_AGENT_PID" \
	--agent-port "$T_AGENT_PORT" 2>>"$T_WORK/loadgen.err")
kill -CONT "$T_AGENT_PID" 2>/dev/null # in case loadgen.py died while it slept
t_stop_agent
check_eq "SIGTERM burst: agent exits 0" "$T_AGENT_RC" 0
if agent_log_from "$log0" | grep -q '\[info\] stopped$'; then
	ok "SIGTERM burst: the log says stopped"
else
	not_ok "SIGTERM burst: the log says stopped"
fi
tally "SIGTERM burst" 1 "$fail0"
t_restart_agent || { not_ok "after the burst: agent restarts on the same port"; exit 1; }

# --- 2c. SIGTERM with pipelined NOTIFYs (raw SPOP) ----------------------------
# A second agent of our own (same configuration, its own port and log).
raw_agent_start() {
	local try
	for try in 1 2 3; do
		RAW_PORT=$(t_free_port)
		"$T_AGENT_BIN" -c "$T_AGENT_CONF" -l "127.0.0.1:$RAW_PORT" -t 2 \
			--admin-listen none >>"$T_WORK/agent-raw.log" 2>&1 &
		RAW_PID=$!
		if t_wait_port "$RAW_PORT" 50 && t_pid_alive "$RAW_PID"; then
			return 0
		fi
		t_stop_pid "$RAW_PID"
		RAW_PID=
		: "$try"
	done
	return 1
}
openssl x509 -in "$T_PKI/a-valid.crt" -outform DER -out "$T_WORK/a-valid.der"
openssl x509 -in "$T_PKI/tenant-a-intermediate.pem" -outform DER -out "$T_WORK/chain.der"
# 4 x 8 NOTIFYs (8.5 KB per connection) fit in one read of the agent's
# 16 KiB receive buffer; 32 x 40 (43 KB per connection, 1.3 MB in all, so
# that the workers are still busy when the stop reaches them) do not.
# FAULT_RAW_SHAPES (CONNSxNOTIFIES ...) overrides the list, for debugging.
for shape in ${FAULT_RAW_SHAPES:-4x8 32x40}; do
	if ! [[ $shape =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]]; then
		not_ok "FAULT_RAW_SHAPES entry '$shape' is CONNSxNOTIFIES"
		continue
	fi
	fail0=$T_FAIL
	echo "# --- 2c. raw SPOP: SIGTERM with ${shape/x/ connections x } pipelined NOTIFYs"
	if ! raw_agent_start; then
		not_ok "raw SPOP $shape: second agent starts"
		continue
	fi
	raw0=$(wc -l <"$T_WORK/agent-raw.log")
	consume < <(python3 "$LOADGEN" spop-sigterm --port "$RAW_PORT" --pid "$RAW_PID" \
		--conns "${shape%x*}" --notifies "${shape#*x}" \
		--cert-der "$T_WORK/a-valid.der" --chain-der "$T_WORK/chain.der" \
		2>>"$T_WORK/loadgen.err")
	kill -CONT "$RAW_PID" 2>/dev/null
	t_stop_pid "$RAW_PID"
	RAW_PID=
	check_eq "raw SPOP $shape: agent exits 0" "$T_STOP_RC" 0
	if tail -n "+$((raw0 + 1))" "$T_WORK/agent-raw.log" | grep -q '\[info\] stopped$'; then
		ok "raw SPOP $shape: the log says stopped"
	else
		not_ok "raw SPOP $shape: the log says stopped"
	fi
	tally "raw SPOP $shape" 1 "$fail0" raw
done

# --- 3. HAProxy reloaded under load -------------------------------------------
fail0=$T_FAIL
echo "# --- 3. HAProxy reloaded (master-worker, SIGUSR2) 3 times under load"
if ! t_wait_agent_state UP 10; then
	not_ok "before the HAProxy reloads: agent UP"
fi
log0=$(agent_log_lines)
reloads0=$(grep -c 'Loading success' "$T_WORK/haproxy.log")
load_start hareload
LOAD_MARK=0
load_wait_ok 40 || not_ok "HAProxy reload: load reaches 40 answered requests"
nconn0=$(python3 "$LOADGEN" sockets --pid "$T_AGENT_PID" --port "$T_AGENT_PORT")
times=
for i in 1 2 3; do
	t=$(ms)
	times=${times:+$times,}$t
	kill -USR2 "$T_HAPROXY_PID"
	LOAD_MARK=$t
	load_wait_ok 60 6 || not_ok "HAProxy reload $i: 60 requests answered 200 after it"
	diag "after HAProxy reload $i: $(python3 "$LOADGEN" sockets --pid "$T_AGENT_PID" \
		--port "$T_AGENT_PORT") SPOP connections open on the agent (before the reloads: $nconn0)"
done
load_stop
reloads=$(($(grep -c 'Loading success' "$T_WORK/haproxy.log") - reloads0))
check_eq "HAProxy reload: the master reloaded 3 times (\"Loading success\")" "$reloads" 3
consume < <(python3 "$LOADGEN" analyze steady "$T_WORK/hareload.tsv" \
	--load-tag hareload --haproxy-log "$T_WORK/haproxy.log" \
	--tag "HAProxy reload" --reused-conn-ok --fault-times "$times")
bad=$(agent_log_from "$log0" | grep -E '\[(error|warning)\]|Sanitizer|runtime error:')
check_eq "HAProxy reload: no error or warning in the agent log" "$bad" ""
check "HAProxy reload: agent still running" t_pid_alive "$T_AGENT_PID"
tally "HAProxy reload" 3 "$fail0"

# --- 4. SIGHUP reloads under load ---------------------------------------------
fail0=$T_FAIL
echo "# --- 4. five SIGHUP reloads of the agent under load"
log0=$(agent_log_lines)
hosts0=$("$T_AGENT_BIN" -c "$T_AGENT_CONF" --check | sed -n 's/.*, \([0-9]*\) hosts.*/\1/p')
load_start hup
LOAD_MARK=0
load_wait_ok 40 || not_ok "SIGHUP: load reaches 40 answered requests"
times=
for i in 1 2 3 4 5; do
	printf '\n[host reload-%d.example.com]\nca = tenant-a\nmode = enforce\n' "$i" \
		>>"$T_AGENT_CONF"
	t=$(ms)
	times=${times:+$times,}$t
	t_reload_agent
	LOAD_MARK=$t
	load_wait_ok 30 5 || not_ok "SIGHUP $i: 30 requests answered 200 after it"
done
load_stop
consume < <(python3 "$LOADGEN" analyze steady "$T_WORK/hup.tsv" --tag SIGHUP \
	--load-tag hup --haproxy-log "$T_WORK/haproxy.log" \
	--fault-times "$times")
check_eq "SIGHUP: the log shows each of the 5 reloads, with one more host each time" \
	"$(agent_log_from "$log0" | sed -n 's/.*\[info\] reloaded .*, \([0-9]*\) hosts .*/\1/p' | tr '\n' ' ')" \
	"$(for i in 1 2 3 4 5; do printf '%d ' $((hosts0 + i)); done)"
bad=$(agent_log_from "$log0" | grep -E '\[(error|warning)\]')
check_eq "SIGHUP: no error or warning in the agent log" "$bad" ""
tally SIGHUP 5 "$fail0"

# --- the figures ----------------------------------------------------------------
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$T_WORK/agent-raw.log" 2>/dev/null; then
	not_ok "raw SPOP agents: no sanitizer report"
	diag "$(grep -E -A5 'Sanitizer|runtime error:' "$T_WORK/agent-raw.log" | head -n 40)"
fi
check_eq "requests lost over all faults" "$TOTAL_LOST" 0
t_finish
rc=$?
echo "# (requests: $((TOTAL_REQ - RAW_REQ)) HTTPS requests through HAProxy, $RAW_REQ raw SPOP NOTIFYs)"
echo "# faults survived: $FAULTS, requests: $TOTAL_REQ, lost: $TOTAL_LOST"
exit "$rc"
