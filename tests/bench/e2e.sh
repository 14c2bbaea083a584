#!/usr/bin/env bash
# e2e.sh - end-to-end comparison of mtls-spoa against HAProxy's native
# per-SNI client certificate verification.
#
#   wrk -> client-side HAProxy (adds the client certificate on its server
#          line) -> HAProxy under test -> trivial backend (http-request return,
#          a second frontend of the same HAProxy process, so each system's
#          CPU figures are its own)
#
# Systems under test (both run at the same time, on their own ports):
#   mtls-spoa  haproxy-conf/haproxy.cfg unchanged (verify optional with a
#              placeholder CA, SPOE check-client-cert on every request the
#              per-connection memo does not answer) and the agent (-t 1)
#              with [host api.example.com] ca = tenant-a (memo-ttl 1s, the
#              default); each run reports the agent messages per request
#              (its mtls_spoa_notify_messages_total)
#   native     bind ... crt-list, the api.example.com line carrying
#              [ca-file tenant-a-ca.pem verify required]
# Neither checks CRLs (HAProxy's crl-file checks every level of the chain,
# the demo PKI has a CRL for the intermediate only), so both do the same
# chain verification. Both log one line per request (to /dev/null).
#
# Modes:
#   keepalive  the client-side HAProxy keeps its TLS connections to the
#              HAProxy under test (http-reuse always)
#   newconn    one new TLS connection per request: http-reuse never,
#              option httpclose and no-ssl-reuse (full handshakes, no
#              resumption); checked with the HAProxy under test's
#              CumSslConns and SslFrontendSessionReuse_pct
# Before the load, a request with the valid certificate must get 200 and
# one with an untrusted certificate must not, on both systems.
#
# Usage: e2e.sh [-d SECONDS] [-c CONNECTIONS] [-r ROUNDS] [--pki DIR]
# Output: human-readable lines, and one JSON line per run prefixed "E2E ".
# Needs: haproxy, wrk, python3, openssl; MTLS_BUILD (default build).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MTLS_BUILD=${MTLS_BUILD:-build}
case $MTLS_BUILD in /*) ;; *) MTLS_BUILD=$ROOT/$MTLS_BUILD ;; esac
AGENT=$MTLS_BUILD/mtls-spoa
HAPROXY=${HAPROXY:-haproxy}
DUR=6
CONNS=32
ROUNDS=2
PKI=

while [ "$#" -gt 0 ]; do
	case $1 in
	-d) DUR=$2; shift 2 ;;
	-c) CONNS=$2; shift 2 ;;
	-r) ROUNDS=$2; shift 2 ;;
	--pki) PKI=$2; shift 2 ;;
	*) echo "usage: $0 [-d SECONDS] [-c CONNECTIONS] [-r ROUNDS] [--pki DIR]" >&2; exit 2 ;;
	esac
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mtls-e2e.XXXXXX")
PIDS=()
cleanup() {
	local p i
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ "${E2E_KEEP:-0}" = 1 ]; then
		echo "# e2e work dir kept: $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

die() { echo "e2e.sh: $*" >&2; exit 1; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # PORT: up to 5 s
	local i
	for ((i = 0; i < 50; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# The check-client-cert messages the agent has answered (its /metrics).
agent_messages() {
	curl -s --max-time 3 "http://127.0.0.1:$AGENT_ADMIN_PORT/metrics" |
		awk '$1 == "mtls_spoa_notify_messages_total" { print $2 }'
}

# show_info SOCKET FIELD
show_info() {
	python3 - "$1" "$2" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(3)
s.connect(sys.argv[1])
s.sendall(b"show info\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
for line in data.decode().splitlines():
    k, _, v = line.partition(":")
    if k.strip() == sys.argv[2]:
        print(v.strip())
        break
EOF
}

[ -x "$AGENT" ] || die "no agent binary at $AGENT"
command -v wrk >/dev/null || die "wrk is not installed"
command -v "$HAPROXY" >/dev/null || die "haproxy is not installed"

if [ -z "$PKI" ]; then
	PKI=$WORK/pki
	"$ROOT/tests/pki/mkpki.sh" "$PKI" >/dev/null
fi
PKI=$(cd "$PKI" && pwd)
cat "$PKI/a-valid.pem" "$PKI/a-valid.key" >"$WORK/client.pem"
cat "$PKI/rogue.pem" "$PKI/rogue.key" >"$WORK/rogue.pem"
chmod 600 "$WORK/client.pem" "$WORK/rogue.pem"

AGENT_PORT=$(free_port)
AGENT_ADMIN_PORT=$(free_port)
SPOA_PORT=$(free_port)
NATIVE_PORT=$(free_port)
SPOA_BACKEND_PORT=$(free_port)
NATIVE_BACKEND_PORT=$(free_port)
declare -A FE_PORT
for fe in keepalive-mtls-spoa newconn-mtls-spoa rogue-mtls-spoa \
	keepalive-native newconn-native rogue-native; do
	FE_PORT[$fe]=$(free_port)
done

# Roles of the processes, for the profile.
declare -A ROLE

# --- the agent -------------------------------------------------------------
cat >"$WORK/agent.conf" <<EOF
[agent]
log-level = warning

[ca tenant-a]
file = $PKI/tenant-a-ca.pem

[host api.example.com]
ca = tenant-a
mode = enforce
EOF
"$AGENT" -c "$WORK/agent.conf" -l "127.0.0.1:$AGENT_PORT" -t 1 \
	--admin-listen "127.0.0.1:$AGENT_ADMIN_PORT" >"$WORK/agent.log" 2>&1 &
PIDS+=($!)
ROLE[$!]="mtls-spoa agent"
wait_port "$AGENT_PORT" || die "agent did not start: $(cat "$WORK/agent.log")"

# --- the HAProxy under test, mtls-spoa: the reference configuration --------
cat >"$WORK/spoa-extra.cfg" <<EOF
global
	stats socket $WORK/spoa.sock level admin

frontend fe_trivial_backend
	bind 127.0.0.1:$SPOA_BACKEND_PORT
	mode http
	http-request return status 200 content-type text/plain string "ok\n"
EOF
(
	export MTLS_BIND=127.0.0.1:$SPOA_PORT
	export MTLS_SERVER_PEM=$PKI/server.pem
	export MTLS_PLACEHOLDER_CA=$PKI/placeholder-ca.pem
	export MTLS_SPOE_CONF=$ROOT/haproxy-conf/mtls-spoe.conf
	export MTLS_AGENT_ADDR=127.0.0.1:$AGENT_PORT
	export MTLS_BACKEND_ADDR=127.0.0.1:$SPOA_BACKEND_PORT
	exec "$HAPROXY" -db -f "$ROOT/haproxy-conf/haproxy.cfg" -f "$WORK/spoa-extra.cfg"
) >/dev/null 2>"$WORK/spoa-haproxy.err" &
PIDS+=($!)
ROLE[$!]="HAProxy under test (mtls-spoa)"
SPOA_HAPROXY_PID=$!

# --- the HAProxy under test, native per-SNI verification ----------------------
echo "$PKI/server.pem [ca-file $PKI/tenant-a-ca.pem verify required] api.example.com" \
	>"$WORK/native.crtlist"
cat >"$WORK/native.cfg" <<EOF
global
	log stdout format short local0 info
	ssl-default-bind-options ssl-min-ver TLSv1.2
	stats socket $WORK/native.sock level admin

defaults
	mode http
	log global
	option httplog
	timeout connect 5s
	timeout client 30s
	timeout server 30s
	timeout http-request 10s
	timeout http-keep-alive 10s

# The same per-request work as haproxy-conf/haproxy.cfg minus the SPOE: its
# log line (the verdict fields from HAProxy's own fetches) and the RFC 9440
# Client-Cert header, so the comparison isolates how verification is done.
frontend fe_native
	bind 127.0.0.1:$NATIVE_PORT ssl crt-list $WORK/native.crtlist alpn h2,http/1.1
	log-format "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %{+Q}r host=%{+Q}[var(txn.req_host)] sni=%{+Q}[ssl_fc_sni] mtls_verify_error=%[ssl_c_verify] mtls_subject=%{+Q}[ssl_c_s_dn] mtls_fingerprint=%[ssl_c_der,sha2(256),hex]"
	http-request set-var(txn.req_host) req.hdr(host)
	http-request del-header Client-Cert
	http-request del-header Client-Cert-Chain
	http-request set-header Client-Cert ":%[ssl_c_der,base64]:" if { ssl_c_verify 0 }
	default_backend be_app

backend be_app
	server app1 127.0.0.1:$NATIVE_BACKEND_PORT

frontend fe_trivial_backend
	bind 127.0.0.1:$NATIVE_BACKEND_PORT
	mode http
	http-request return status 200 content-type text/plain string "ok\n"
EOF
"$HAPROXY" -db -f "$WORK/native.cfg" >/dev/null 2>"$WORK/native-haproxy.err" &
PIDS+=($!)
ROLE[$!]="HAProxy under test (native)"
NATIVE_HAPROXY_PID=$!

# --- the client side ----------------------------------------------------------
{
	cat <<EOF
global
	stats socket $WORK/client.sock level admin

defaults
	mode http
	timeout connect 5s
	timeout client 30s
	timeout server 30s
EOF
	for fe in "${!FE_PORT[@]}"; do
		mode=${fe%%-*}
		sys=${fe#*-}
		port=$NATIVE_PORT
		[ "$sys" = mtls-spoa ] && port=$SPOA_PORT
		cert=$WORK/client.pem
		[ "$mode" = rogue ] && cert=$WORK/rogue.pem
		cat <<EOF

frontend fe_$fe
	bind 127.0.0.1:${FE_PORT[$fe]}
	http-request set-header Host api.example.com
	default_backend be_$fe

backend be_$fe
EOF
		if [ "$mode" = newconn ]; then
			printf '\thttp-reuse never\n\toption httpclose\n'
			printf '\tserver s 127.0.0.1:%s ssl crt %s verify none sni str(api.example.com) no-ssl-reuse\n' "$port" "$cert"
		else
			printf '\thttp-reuse always\n'
			printf '\tserver s 127.0.0.1:%s ssl crt %s verify none sni str(api.example.com)\n' "$port" "$cert"
		fi
	done
} >"$WORK/client.cfg"
"$HAPROXY" -db -f "$WORK/client.cfg" >/dev/null 2>"$WORK/client-haproxy.err" &
PIDS+=($!)
ROLE[$!]="client-side HAProxy"

for p in "$SPOA_PORT" "$NATIVE_PORT" "$SPOA_BACKEND_PORT" "$NATIVE_BACKEND_PORT" "${FE_PORT[@]}"; do
	wait_port "$p" || die "port $p not listening; logs: $(cat "$WORK"/*.err)"
done

# Thread ids -> roles (perf samples carry thread ids).
declare -A TROLE
for p in "${!ROLE[@]}"; do
	for t in /proc/"$p"/task/*; do
		TROLE[${t##*/}]=${ROLE[$p]}
	done
done

# --- correctness before speed ------------------------------------------------------
status() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$1/" || true
}
# The agent may need a health check round before HAProxy uses it.
for ((i = 0; i < 50; i++)); do
	[ "$(status "${FE_PORT[keepalive-mtls-spoa]}")" = 200 ] && break
	sleep 0.2
done
for sys in mtls-spoa native; do
	for mode in keepalive newconn; do
		st=$(status "${FE_PORT[$mode-$sys]}")
		[ "$st" = 200 ] || die "$sys $mode: valid certificate got HTTP $st, not 200"
	done
	st=$(status "${FE_PORT[rogue-$sys]}")
	[ "$st" != 200 ] || die "$sys: untrusted certificate got HTTP 200"
	echo "check: $sys answers 200 to the valid certificate and $st to an untrusted one"
done

# --- idle cost ---------------------------------------------------------------------
# CPU used by each process over 3 s with no traffic at all.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
declare -A T0
for p in "${!ROLE[@]}"; do T0[$p]=$(ticks "$p"); done
sleep 3
for p in "${!ROLE[@]}"; do
	echo "idle: ${ROLE[$p]} used $(awk -v t="$(( $(ticks "$p") - T0[$p] ))" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.1f", t / hz / 3 * 100 }')% of a core over 3 s without traffic"
done

# --- load ----------------------------------------------------------------------------
# run SYSTEM MODE ROUND
run() {
	local sys=$1 mode=$2 round=$3 sock ssl0 ssl1 out
	sock=$WORK/native.sock
	[ "$sys" = mtls-spoa ] && sock=$WORK/spoa.sock
	ssl0=$(show_info "$sock" CumSslConns)
	local m0 m1
	m0=$(agent_messages)
	local -A c0
	local p t0 t1 cpu=
	for p in "${!ROLE[@]}"; do c0[$p]=$(ticks "$p"); done
	t0=$(date +%s%N)
	out=$WORK/wrk-$sys-$mode-$round.txt
	local perfpid=
	if [ "${E2E_PROFILE:-0}" = 1 ] && [ "$round" = 1 ] && [ "$mode" = keepalive ] &&
		command -v perf >/dev/null; then
		perf record -q -e cpu-clock -a -o "$WORK/perf-$sys.data" -- \
			sleep "$((DUR > 3 ? DUR - 2 : 1))" >/dev/null 2>&1 &
		perfpid=$!
	fi
	wrk -t 1 -c "$CONNS" -d "${DUR}s" --timeout 5s --latency \
		"http://127.0.0.1:${FE_PORT[$mode-$sys]}/" >"$out" 2>&1 || true
	[ -z "$perfpid" ] || wait "$perfpid" || true
	t1=$(date +%s%N)
	# CPU of the system under test: its HAProxy, plus the agent for mtls-spoa.
	local sut=0
	for p in "${!ROLE[@]}"; do
		case "${ROLE[$p]}" in
		"HAProxy under test ($sys)" | "mtls-spoa agent") sut=$((sut + $(ticks "$p") - c0[$p])) ;;
		esac
	done
	sut=$(awk -v t="$sut" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", t / hz }')
	for p in "${!ROLE[@]}"; do
		cpu+="${cpu:+, }${ROLE[$p]} $(awk -v t="$(( $(ticks "$p") - c0[$p] ))" \
			-v hz="$(getconf CLK_TCK)" -v ns="$((t1 - t0))" 'BEGIN { printf "%.0f%%", t / hz / (ns / 1e9) * 100 }')"
	done
	ssl1=$(show_info "$sock" CumSslConns)
	reuse=$(show_info "$sock" SslFrontendSessionReuse_pct)
	m1=$(agent_messages)
	python3 - "$out" "$sys" "$mode" "$round" "$((ssl1 - ssl0))" "$reuse" "$sut" "$((m1 - m0))" <<'EOF'
import json, re, sys
path, system, mode, rnd, ssl, reuse, sut, msgs = sys.argv[1:]
text = open(path).read()
def dur_ms(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    if not m:
        return None
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v if u == "ms" else v * 1000 if u == "s" else v * 60000
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
req = re.search(r"(\d+) requests in", text)
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
lat = {q: dur_ms(v) for q, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", text, re.M)}
r = {
    "system": system, "mode": mode, "round": int(rnd),
    "rps": float(rps.group(1)) if rps else 0.0,
    "requests": int(req.group(1)) if req else 0,
    "non2xx": int(non2xx.group(1)) if non2xx else 0,
    "socket_errors": sum(int(x) for x in errs.groups()) if errs else 0,
    "p50_ms": lat.get("50"), "p99_ms": lat.get("99"),
    "tls_handshakes": int(ssl), "session_reuse_pct": int(reuse or 0),
}
r["handshakes_per_request"] = round(r["tls_handshakes"] / r["requests"], 3) if r["requests"] else None
# Agent round trips per request: 1 without the memo, less with it (the
# native system never asks the agent: 0).
r["agent_messages"] = int(msgs)
r["agent_messages_per_request"] = round(int(msgs) / r["requests"], 4) if r["requests"] else None
# CPU seconds of the system under test per request: less sensitive than
# req/s to other work sharing the machine.
r["sut_cpu_us_per_req"] = round(float(sut) * 1e6 / r["requests"], 1) if r["requests"] else None
print("%-9s %-9s round %s: %8.0f req/s  p50 %s ms  p99 %s ms  non-2xx %d  socket errors %d  "
      "TLS handshakes %d (%.3f per request, session reuse %s%%)  system CPU %s us/request  "
      "agent messages %d (%.4f per request)" % (
      system, mode, rnd, r["rps"], r["p50_ms"], r["p99_ms"], r["non2xx"], r["socket_errors"],
      r["tls_handshakes"], r["handshakes_per_request"] or 0, r["session_reuse_pct"],
      r["sut_cpu_us_per_req"], r["agent_messages"], r["agent_messages_per_request"] or 0))
print("E2E " + json.dumps(r))
if r["requests"] == 0 or r["non2xx"] or r["socket_errors"]:
    print("e2e.sh: %s %s: failed requests, see %s" % (system, mode, path), file=sys.stderr)
    sys.exit(1)
EOF
	echo "          CPU of a core during the run: $cpu"
}

echo "e2e: wrk -t 1 -c $CONNS -d ${DUR}s, $ROUNDS rounds, systems alternated"
for ((r = 1; r <= ROUNDS; r++)); do
	for mode in keepalive newconn; do
		for sys in native mtls-spoa; do
			run "$sys" "$mode" "$r"
		done
	done
done
# profile SYSTEM PID: CPU share per process (threads summed), then the
# top symbols of PID.
profile() {
	local data=$WORK/perf-$1.data
	[ -f "$data" ] || { echo "--- $1: no profile ($data missing)"; return 0; }
	echo "--- $1, keep-alive: share of all CPU samples per process ($(nproc) cores = 100%)"
	perf report -q -i "$data" --sort pid --stdio 2>/dev/null |
		while read -r pct proc; do
			tid=${proc%%:*}
			case $tid in '' | *[!0-9]*) continue ;; esac
			echo "${pct%\%} ${TROLE[$tid]:-${proc#*:}}"
		done | awk '{ p = $1; $1 = ""; s[substr($0, 2)] += p } END {
			for (k in s) printf "  %6.2f%%  %s\n", s[k], k }' | sort -rn | head -n 6
	echo "--- $1, keep-alive: top symbols of the HAProxy under test (% of its samples)"
	perf report -q -i "$data" --tid "$(tids "$2")" --sort dso,sym --percentage relative \
		--stdio 2>/dev/null | grep -v '^$' | head -n 15 | sed 's/^/  /' || true
}
tids() { # the thread ids of process $1, comma-separated
	local t out=
	for t in "${!TROLE[@]}"; do
		[ "${TROLE[$t]}" = "${ROLE[$1]}" ] && out+=${out:+,}$t
	done
	echo "$out"
}
if [ "${E2E_PROFILE:-0}" = 1 ]; then
	echo PROFILE-BEGIN
	for p in "${!ROLE[@]}"; do
		echo "process $p: ${ROLE[$p]} (threads $(tids "$p"))"
	done
	profile native "$NATIVE_HAPROXY_PID"
	profile mtls-spoa "$SPOA_HAPROXY_PID"
	echo PROFILE-END
fi
if grep -q . "$WORK/agent.log"; then
	echo "agent log (warnings and errors):"
	sed 's/^/  /' "$WORK/agent.log" | head -n 20
fi
