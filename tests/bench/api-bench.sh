#!/usr/bin/env bash
# api-bench.sh - the benchmarks of issue 14 (the tenant API), run by
# bench.sh (`make bench`) or alone:
#
#   with 10,000 hosts and 1,000 CAs in the API's state directory
#   (gen-big-state.sh), the time from sending a write to its 2xx (it is
#   live in the data path by then): host writes (PATCH mode) and CA writes
#   (PUT certificates), idle and under a cached SPOP load; and the SPOP
#   answers' p99.9 latency with those writes running vs without.
#
#   api-bench.sh [--pki DIR] [--work DIR] [--out DIR]
#
# --pki: tests/pki/mkpki.sh output (made here without it); --work:
# scratch directory (kept; default a temporary one, removed at exit);
# --out: where api.md (the report section), summary.md (rows of the
# summary table) and commands.txt go (default: printed on stdout).
# BENCH_QUICK=1 shortens every run (a check that the script works, not
# figures). Everything runs on 127.0.0.1 with ports picked at run time.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BENCH_NAME=api-bench.sh
# shellcheck source=tests/bench/benchlib.sh
. "$ROOT/tests/bench/benchlib.sh"

PKI='' WORK='' OUTD=''
while [ "$#" -gt 0 ]; do
	case $1 in
	--pki) PKI=$2; shift 2 ;;
	--work) WORK=$2; shift 2 ;;
	--out) OUTD=$2; shift 2 ;;
	*) echo "usage: $0 [--pki DIR] [--work DIR] [--out DIR]" >&2; exit 2 ;;
	esac
done
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	HOST_WRITES=10 CA_WRITES=4 SECS=6
else
	HOST_WRITES=${API_HOST_WRITES:-200} CA_WRITES=${API_CA_WRITES:-40} SECS=${API_SECS:-25}
fi
PACED_RATE=${API_PACED_RATE:-50000}

bench_setup api

"$ROOT/tests/bench/build.sh" "$BIN" spop-bench
if [ -z "$PKI" ]; then
	PKI=$WORK/pki
	"$ROOT/tests/pki/mkpki.sh" "$PKI" >/dev/null
fi
PKI=$(cd "$PKI" && pwd)

# The state: every bench CA and host is the API's; tenant-a and
# api.example.com (the load's target) stay in the file.
ST=$WORK/state-big
rm -rf "$ST"
run "$ROOT/tests/bench/gen-big-state.sh" "$ST" "$PKI" >/dev/null
printf 'bench:%s\n' "$(openssl rand -hex 24)" >"$ST/tokens"
chmod 600 "$ST/tokens"
sed -i 's/^state-dir = state$/state-dir = state\nadmin-token-file = tokens/' "$ST/api.conf"
record sed "(adds admin-token-file = tokens to \$WORK/state-big/api.conf)"

# start_api_agent: the agent with an admin listener (APID, APORT, ADMIN).
start_api_agent() {
	ALOG=$WORK/agent-api.log
	APORT=$(free_port)
	ADMIN=127.0.0.1:$(free_port)
	: >"$ALOG"
	record "$AGENT" -c "\$WORK/state-big/api.conf" -l "127.0.0.1:\$PORT" -t 2 --admin-listen "127.0.0.1:\$ADMIN_PORT"
	"$AGENT" -c "$ST/api.conf" -l "127.0.0.1:$APORT" -t 2 --admin-listen "$ADMIN" >>"$ALOG" 2>&1 &
	APID=$!
	wait_log "$ALOG" '\[info\] ready' 20 || die "agent did not start: $(cat "$ALOG")"
}

# writes NAME KIND N: api-load.py against the agent; JSON in $WORK/NAME.json.
writes() {
	record python3 tests/bench/api-load.py --addr "127.0.0.1:\$ADMIN_PORT" --token-file \
		"\$WORK/state-big/tokens" --state "\$WORK/state-big/state" -n "$3" --kind "$2"
	python3 "$ROOT/tests/bench/api-load.py" --addr "$ADMIN" --token-file "$ST/tokens" \
		--state "$ST/state" -n "$3" --kind "$2" >"$WORK/$1.json" ||
		die "api-load.py $1 failed: $(cat "$WORK/$1.json")"
	log "$1: $(cat "$WORK/$1.json")"
}
wms() { jget "$WORK/$1.json" ".ms.$2"; }

LOAD_CERTS=()
for c in a-valid a-other b-valid rogue; do
	LOAD_CERTS+=(-k "$PKI/$c.pem")
done
LOAD_ARGS=(-c 4 -p 8 -d "$SECS" "${LOAD_CERTS[@]}" --sni api.example.com --host api.example.com)

start_api_agent
log "API writes, idle"
# cpu_ms_per T0 N: the agent's CPU time (every thread) since T0, per write.
cpu_ms_per() { calc "%.1f" "($(cpu_ticks "$APID") - $1) * 1000 / $(getconf CLK_TCK) / $2"; }
t0=$(cpu_ticks "$APID")
writes idle-host host "$HOST_WRITES"
CPU_HOST=$(cpu_ms_per "$t0" "$HOST_WRITES")
t0=$(cpu_ticks "$APID")
writes idle-ca ca "$CA_WRITES"
CPU_CA=$(cpu_ms_per "$t0" "$CA_WRITES")

# under_load TAG ARGS...: SPOP load ARGS without writes (TAG-quiet), then
# the same load while the host and CA writes run (TAG-host, TAG-ca).
under_load() {
	local tag=$1
	shift
	log "SPOP load ($tag) without writes"
	bench "$tag-quiet" "$@"
	log "SPOP load ($tag) with API writes"
	record "$BIN/spop-bench" -a "127.0.0.1:\$PORT" "$@" --json "(while the writes below run)"
	"$BIN/spop-bench" -a "127.0.0.1:$APORT" "$@" --json >"$WORK/$tag-busy.txt" 2>&1 &
	FLOOD_PID=$!
	sleep 0.5
	writes "$tag-host" host "$HOST_WRITES"
	writes "$tag-ca" ca "$CA_WRITES"
	kill -0 "$FLOOD_PID" 2>/dev/null || die "the SPOP load ended before the writes did: raise API_SECS"
	wait "$FLOOD_PID" || die "spop-bench during the writes failed: $(cat "$WORK/$tag-busy.txt")"
	FLOOD_PID=
	tail -n 1 "$WORK/$tag-busy.txt" >"$WORK/$tag-busy.json"
	[ "$(jget "$WORK/$tag-busy.json" .errors)" = 0 ] ||
		die "SPOP errors during the writes ($tag): $(jget "$WORK/$tag-busy.json" .errors)"
}
# A load that leaves the cores some room (the rate a 2-core agent serves
# beside HAProxy), then one that saturates both cores.
under_load paced -c 4 -p 8 -d "$SECS" --rate "$PACED_RATE" "${LOAD_CERTS[@]}" \
	--sni api.example.com --host api.example.com
under_load full "${LOAD_ARGS[@]}"
Q999=$(jget "$WORK/paced-quiet.json" .latency_us.p999)
PACED=$(rate paced-quiet)
B999=$(jget "$WORK/paced-busy.json" .latency_us.p999)
FQ999=$(jget "$WORK/full-quiet.json" .latency_us.p999)
FB999=$(jget "$WORK/full-busy.json" .latency_us.p999)
APPLIED=$(grep -c '\[info\] api: applied' "$ALOG" || true)
# The slowest write of all, as the agent's audit line splits its time.
SLOWEST=$(sed -n 's/.*\] api: bench \(.*\) -> 2.. (generation [0-9]*, \(.*\))$/\2: \1/p' "$ALOG" |
	sort -g | tail -n 1)
LINE_HOST=$( (grep '\[info\] api: applied' "$ALOG" | grep 'CAs (0 built.*hosts (1 built' || true) | tail -n 1 |
	sed 's/^[^]]*\] //; s#applied [^:]*:#applied api.conf:#')
LINE_CA=$( (grep '\[info\] api: applied' "$ALOG" | grep 'CAs (1 built' || true) | tail -n 1 |
	sed 's/^[^]]*\] //; s#applied [^:]*:#applied api.conf:#')
stop_agent

DELTA=$(calc "%+.2f" "($B999 - $Q999) / 1000")
FDELTA=$(calc "%+.2f" "($FB999 - $FQ999) / 1000")
P99H=$(wms paced-host p99)
P99C=$(wms paced-ca p99)
MET_HOST=$(met "$P99H" "<=" 100)
MET_CA=$(met "$P99C" "<=" 100)
MET_SPOP=$(met "$DELTA" "<=" 5)

{
	echo "| API host write (PATCH), 10,000 hosts / 1,000 CAs, SPOP load of $PACED msg/s: p99 ≤ 100 ms to the 2xx | p99 ${P99H} ms (p50 $(wms paced-host p50)); idle p99 $(wms idle-host p99) ms; with a load saturating both cores p99 $(wms full-host p99) ms | $MET_HOST |"
	echo "| API CA write (PUT), 10,000 hosts / 1,000 CAs, SPOP load of $PACED msg/s: p99 ≤ 100 ms to the 2xx | p99 ${P99C} ms (p50 $(wms paced-ca p50)); idle p99 $(wms idle-ca p99) ms; with a load saturating both cores p99 $(wms full-ca p99) ms | $MET_CA |"
	echo "| SPOP answers while API writes run ($PACED msg/s): p99.9 ≤ without + 5 ms | $(calc "%.2f" "$B999 / 1000") ms with writes vs $(calc "%.2f" "$Q999 / 1000") ms without ($DELTA ms); saturating load $FDELTA ms | $MET_SPOP |"
} >"$OUTD/summary.md"

cat >"$OUTD/api.md" <<EOF
## Tenant API: writes with 10,000 hosts and 1,000 CAs

\`gen-big-state.sh\` puts the 1,000 CAs and 10,000 hosts of
gen-big-config.sh into the API's state directory (\`state/api.conf\`
and content-addressed \`state/pem/\`, as the API writes them); the main
file keeps tenant-a and \`api.example.com\`, the target of the SPOP load.
\`api-load.py\` sends the writes one at a time on one keep-alive
connection and times each from the request to the end of its 2xx answer
(when the 2xx arrives the change is on disk, fsync'ed, and installed).
Host writes switch a host between enforce and log, always a change (\`PATCH
{"mode": ...}\`); CA writes replace a CA's certificate (\`PUT
/v1/cas/NAME\`, another CA's bundle each time), so that CA and its hosts'
trust policies are rebuilt. The SPOP load is spop-bench, 4 connections x
8 in flight, ${SECS} s, cached verdicts, on the same 2 cores: paced
(\`--rate $PACED_RATE\`; it reached $PACED messages/s), then as fast as
it goes.

| writes | n | p50 (ms) | p99 (ms) | max (ms) |
|---|---|---|---|---|
| host, idle | $HOST_WRITES | $(wms idle-host p50) | $(wms idle-host p99) | $(wms idle-host max) |
| CA, idle | $CA_WRITES | $(wms idle-ca p50) | $(wms idle-ca p99) | $(wms idle-ca max) |
| host, SPOP load $PACED msg/s | $HOST_WRITES | $(wms paced-host p50) | $(wms paced-host p99) | $(wms paced-host max) |
| CA, SPOP load $PACED msg/s | $CA_WRITES | $(wms paced-ca p50) | $(wms paced-ca p99) | $(wms paced-ca max) |
| host, SPOP load saturating both cores | $HOST_WRITES | $(wms full-host p50) | $(wms full-host p99) | $(wms full-host max) |
| CA, SPOP load saturating both cores | $CA_WRITES | $(wms full-ca p50) | $(wms full-ca p99) | $(wms full-ca max) |

A write costs the agent ${CPU_HOST} ms of CPU for a host and ${CPU_CA} ms
for a CA (idle, every thread, the previous generation's release
included). Under load the writes' thread (the main one) shares the two
cores with the workers and the load generator.

Every write derives the next generation from the live one instead of
loading the files: it starts from the API's objects as the last write
left them, the other hosts and CAs are taken as they are, a changed CA is
the only file read (content-addressed), CRLs follow their issuer across
sections again, and only the hosts whose trust policy changes are built
(a CA write here: its hosts). The log lines of the last ones:

- host: \`$LINE_HOST\`
- CA: \`$LINE_CA\`

| SPOP load | p99.9 (µs) | answered | errors |
|---|---|---|---|
| $PACED msg/s, without writes | $Q999 | $(jget "$WORK/paced-quiet.json" .answered) | $(jget "$WORK/paced-quiet.json" .errors) |
| $PACED msg/s, with the $((HOST_WRITES + CA_WRITES)) writes | $B999 | $(jget "$WORK/paced-busy.json" .answered) | $(jget "$WORK/paced-busy.json" .errors) |
| saturating, without writes | $FQ999 | $(jget "$WORK/full-quiet.json" .answered) | $(jget "$WORK/full-quiet.json" .errors) |
| saturating, with the writes | $FB999 | $(jget "$WORK/full-busy.json" .answered) | $(jget "$WORK/full-busy.json" .errors) |

$APPLIED writes applied in all. The slowest, as the agent's audit line
splits it: \`${SLOWEST}\`.
Difference at $PACED msg/s: **$DELTA ms** (target: ≤ 5 ms); saturating: $FDELTA ms.
EOF

if [ "$STANDALONE_OUT" = 1 ]; then
	cat "$OUTD/summary.md" "$OUTD/api.md"
	echo
	echo "Commands:"
	cat "$CMDS"
fi
