# benchlib.sh - shell helpers shared by bench.sh, trust-bench.sh and
# api-bench.sh
# (sourced, not run). The caller sets ROOT (the repository) and
# BENCH_NAME (for messages) before sourcing, then WORK and CMDS (the file
# every command behind a figure is recorded in); REC_WORK, when set, is
# the directory written as $WORK in recorded commands (default WORK).
# Sourcing sets MTLS_BUILD (absolute; default build), AGENT (the agent
# binary) and BIN (the tools).
# shellcheck shell=bash

MTLS_BUILD=${MTLS_BUILD:-build}
case $MTLS_BUILD in /*) ;; *) MTLS_BUILD=$ROOT/$MTLS_BUILD ;; esac
AGENT=$MTLS_BUILD/mtls-spoa
BIN=$MTLS_BUILD/bench

die() { echo "$BENCH_NAME: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

record() { # record COMMAND...: the command line, paths shortened
	local line
	line=$(printf '%q ' "$@")
	line=${line//"${REC_WORK:-$WORK}"/\$WORK}
	line=${line//"$ROOT"\//}
	echo "$line" >>"$CMDS"
}
run() { record "$@"; "$@"; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
jget() { jq -r "$2" <"$1"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
# met VALUE OP TARGET -> "met" / "missed"
met() { awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
	ok = (op == ">=") ? v >= t : v <= t; print ok ? "met" : "**missed**" }'; }
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# wait_log FILE PATTERN TENTHS_OF_SECONDS
wait_log() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.01
	done
	return 1
}

# check_ms CONF LIST: one `mtls-spoa -c CONF --check`, its time in ms
# appended to LIST, its output in LIST.txt; fails the run on an error.
check_ms() {
	local t0
	t0=$(now_ms)
	"$AGENT" -c "$1" --check >"$2.txt" 2>&1 || die "--check $1 failed: $(cat "$2.txt")"
	echo $(($(now_ms) - t0)) >>"$2"
}

# start_agent CONF THREADS: sets APID, APORT, ALOG, A_START_MS (exec to
# the "ready" log line).
# shellcheck disable=SC2034
start_agent() {
	local t0
	ALOG=$WORK/agent-$RANDOM.log
	for _ in 1 2 3; do
		APORT=$(free_port)
		: >"$ALOG"
		t0=$(now_ms)
		record "$AGENT" -c "$1" -l "127.0.0.1:$APORT" -t "$2" --admin-listen none
		"$AGENT" -c "$1" -l "127.0.0.1:$APORT" -t "$2" --admin-listen none >>"$ALOG" 2>&1 &
		APID=$!
		if wait_log "$ALOG" '\[info\] ready' 10; then
			A_START_MS=$(($(now_ms) - t0))
			return 0
		fi
		stop_agent
	done
	die "agent did not start: $(cat "$ALOG")"
}
stop_agent() {
	local i
	[ -n "${APID:-}" ] || return 0
	kill -TERM "$APID" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$APID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$APID" 2>/dev/null || true
	wait "$APID" 2>/dev/null || true
	APID=
}

# bench NAME SPOP-BENCH-ARGS...: run against the current agent, keep the
# JSON in $WORK/NAME.json and the agent's CPU use in $WORK/NAME.cpu
# (cores busy on average). Fails the whole run on any error.
TCK=$(getconf CLK_TCK)
bench() {
	local name=$1 c0 c1 t0 t1
	shift
	c0=$(cpu_ticks "$APID")
	t0=$(now_ms)
	record "$BIN/spop-bench" -a "127.0.0.1:\$PORT" "$@" --json
	"$BIN/spop-bench" -a "127.0.0.1:$APORT" "$@" --json >"$WORK/$name.txt" ||
		die "spop-bench $name failed: $(cat "$WORK/$name.txt")"
	t1=$(now_ms)
	c1=$(cpu_ticks "$APID")
	tail -n 1 "$WORK/$name.txt" >"$WORK/$name.json"
	calc "%.2f" "($c1 - $c0) / $TCK / (($t1 - $t0) / 1000)" >"$WORK/$name.cpu"
	log "$name: $(jget "$WORK/$name.json" .msgs_per_s) msg/s, agent $(cat "$WORK/$name.cpu") cores"
}
rate() { jget "$WORK/$1.json" '.msgs_per_s | floor'; }
lat() { jget "$WORK/$1.json" "\"\\(.latency_us.p50) / \\(.latency_us.p99) / \\(.latency_us.p999)\""; }
usper() { calc "%.2f" "$(cat "$WORK/$1.cpu") * 1e6 / $(jget "$WORK/$1.json" .msgs_per_s)"; }

# bench_setup TAG: what a section script (trust-bench.sh, api-bench.sh)
# sets up once its options are read (WORK and OUTD may be set by them):
# WORK made and absolute (without one, a temporary mtls-TAG.XXXXXX,
# removed at exit unless BENCH_KEEP=1), an EXIT trap stopping FLOOD_PID
# and the agent, OUTD (default $WORK/out: STANDALONE_OUT=1) and an empty
# CMDS in it; it checks the agent is built and jq, python3 and openssl
# are there.
# shellcheck disable=SC2034
bench_setup() {
	OWN_WORK=0
	if [ -z "$WORK" ]; then
		WORK=$(mktemp -d "${TMPDIR:-/tmp}/mtls-$1.XXXXXX")
		OWN_WORK=1
	fi
	mkdir -p "$WORK"
	WORK=$(cd "$WORK" && pwd)
	APID=
	FLOOD_PID=
	trap bench_cleanup EXIT
	[ -x "$AGENT" ] || die "no agent binary at $AGENT (make first)"
	for t in jq python3 openssl; do
		command -v "$t" >/dev/null || die "$t is not installed"
	done
	STANDALONE_OUT=0
	if [ -z "$OUTD" ]; then
		OUTD=$WORK/out
		STANDALONE_OUT=1
	fi
	mkdir -p "$OUTD"
	CMDS=$OUTD/commands.txt
	: >"$CMDS"
	export OPENSSL_CONF=/dev/null
}

bench_cleanup() {
	if [ -n "${FLOOD_PID:-}" ]; then kill "$FLOOD_PID" 2>/dev/null || true; fi
	stop_agent
	if [ "$OWN_WORK" = 1 ] && [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
