#!/usr/bin/env bash
# test_admin.sh - the admin HTTP listener (README "Monitoring"):
#   /healthz, /readyz, /v1/status (jq), /metrics (promtool check metrics);
#   counters that move by exactly what known SPOP verdicts imply; reload
#   counters and generation; 404 / 405 + Allow / 414 / 431; HEAD; the
#   connection limit and the idle timeout; a unix-socket admin listener
#   with metrics-policy-label = on, and its live-socket check; and, under
#   load, a full-speed spop-bench run that loses nothing while /metrics is
#   scraped 100 times a second, every scrape passing promtool.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init
t_need_agent

t_bench_bin || { t_finish; exit 1; }
for tool in promtool jq curl; do
	command -v "$tool" >/dev/null || { not_ok "$tool is installed (make deps)"; t_finish; exit 1; }
done

t_pki
# The idle-timeout probe starts before anything else, so its 10 s run
# alongside the other checks.
# /v1/status needs a bearer token on TCP (README "Security model").
cp "$T_ROOT/haproxy-conf/mtls-spoa.conf" "$T_PKI/mtls-spoa.conf"
t_admin_tokens "$T_PKI/mtls-spoa.conf" monitoring
t_start_agent "$T_PKI/mtls-spoa.conf" || { not_ok "agent starts"; t_finish; exit 1; }
BEARER="Authorization: Bearer $T_TOKEN"
A=http://127.0.0.1:$T_ADMIN_PORT
python3 - "$T_ADMIN_PORT" >"$T_WORK/idle.out" 2>&1 <<'EOF' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(30)
t0 = time.monotonic()
try:
    s.recv(1)
except OSError:
    pass
print("%.1f" % (time.monotonic() - t0))
EOF
idle_pid=$!

# get PATH [curl args]: body in $T_WORK/body, status in $ST.
get() {
	local path=$1
	shift
	ST=$(curl -s --max-time 5 -o "$T_WORK/body" -D "$T_WORK/hdr" -w '%{http_code}' "$@" "$A$path") || true
}
# metric SERIES: its value in $T_WORK/metrics (0 when absent).
metric() {
	awk -v k="$1" '$1 == k { v = $2 } END { print v == "" ? 0 : v }' "$T_WORK/metrics"
}
scrape() {
	curl -s --max-time 5 "$A/metrics" >"$T_WORK/metrics"
}
bench() { # bench HOST N CERT... : spop-bench JSON line in $T_WORK/bench.json
	local host=$1 n=$2 args=()
	shift 2
	for c in "$@"; do args+=(-k "$T_PKI/$c.pem"); done
	timeout 30 "$BENCH_BIN" -a "127.0.0.1:$T_AGENT_PORT" -c 2 -p 8 -n "$n" --max-time 20 \
		"${args[@]}" --sni "$host" --host "$host" --json >"$T_WORK/bench.out" 2>&1
	tail -n 1 "$T_WORK/bench.out" >"$T_WORK/bench.json"
}

# --- health, readiness ----------------------------------------------------
get /healthz
check_eq "GET /healthz: 200 ok" "$ST $(cat "$T_WORK/body")" "200 ok"
get /readyz
check_eq "GET /readyz: 200 once the SPOP listener is up" "$ST" 200

# --- /v1/status -----------------------------------------------------------
get /v1/status -H "$BEARER"
cp "$T_WORK/body" "$T_WORK/status.json"
check_eq "GET /v1/status: 200, application/json" \
	"$ST $(grep -i '^content-type:' "$T_WORK/hdr" | tr -d '\r' | cut -d' ' -f2)" "200 application/json"
version=$("$T_AGENT_BIN" --version | awk '{ print $2 }')
sha=$(sha256sum "$T_AGENT_CONF" | cut -d' ' -f1)
now=$(date +%s)
got=$(jq -r --argjson now "$now" '[.version, .generation, .ready, .counts.cas, .counts.hosts,
	.counts.trust_policies, .config.sources[0].path, .config.sources[0].sha256,
	(.config.load_ms > 0), ((.loaded_at - $now) | fabs < 60), (.cas | length),
	([.cas[] | .not_after > $now and (.expired | not) and (.expiring | not)] | all),
	([.cas[].crl_files[].crls[] | .next_update > $now and (.stale | not) and (.expiring | not)] | all),
	([.cas[].crl_files[]] | length)] | map(tostring) | join(" ")' "$T_WORK/body" 2>&1)
check_eq "/v1/status: version, generation, ready, counts, source SHA-256, load time, CA and CRL expiry flags" \
	"$got" "$version 1 true 3 7 3 $T_AGENT_CONF $sha true true 3 true true 2"
check_eq "/v1/status: the CA's not_after is that of the PEM" \
	"$(jq -r '.cas[] | select(.name == "tenant-b") | .not_after' "$T_WORK/body")" \
	"$(date -d "$(openssl x509 -in "$T_PKI/tenant-b-ca.pem" -noout -enddate | cut -d= -f2)" +%s)"

# --- /metrics -------------------------------------------------------------
scrape
if out=$(promtool check metrics <"$T_WORK/metrics" 2>&1); then
	ok "GET /metrics passes promtool check metrics"
else
	not_ok "GET /metrics passes promtool check metrics"
	diag "$out"
fi
get /metrics
check_eq "/metrics Content-Type is the text format 0.0.4" \
	"$(grep -i '^content-type:' "$T_WORK/hdr" | tr -d '\r' | cut -d' ' -f2-)" "text/plain; version=0.0.4; charset=utf-8"
check_eq "build_info names this version" \
	"$(grep -c "^mtls_spoa_build_info{version=\"$version\",openssl=\"[0-9.]*\"} 1$" "$T_WORK/metrics")" 1
ca_na=$(jq -r '.cas[] | select(.name == "tenant-a") | .not_after' "$T_WORK/status.json" 2>/dev/null)
check_eq "ca_not_after_timestamp_seconds{ca=tenant-a} agrees with /v1/status" \
	"$(metric 'mtls_spoa_ca_not_after_timestamp_seconds{ca="tenant-a"}')" "${ca_na:-?}"
check_eq "crl_next_update_timestamp_seconds has the CRL of both sections that list it" \
	"$(grep -c '^mtls_spoa_crl_next_update_timestamp_seconds{ca="tenant-a\(-issuing\)\?",file=".*tenant-a.crl"} [0-9]*$' "$T_WORK/metrics")" 2

# --- counters move by what known verdicts imply ---------------------------
scrape
cp "$T_WORK/metrics" "$T_WORK/m0"
bench api.example.com 2000 a-valid a-expired
check_eq "spop-bench: 2000 answered, 0 errors" \
	"$(jq -r '"\(.answered) \(.errors)"' "$T_WORK/bench.json" 2>&1)" "2000 0"
bench www.example.net 600 a-expired a-valid b-valid
scrape
delta() { # delta SERIES: now - before
	local b
	b=$(awk -v k="$1" '$1 == k { v = $2 } END { print v == "" ? 0 : v }' "$T_WORK/m0")
	echo $(($(metric "$1") - b))
}
check_eq "verdicts: 1000 ok/allow on the enforce host" \
	"$(delta 'mtls_spoa_verdicts_total{result="ok",action="allow",mode="enforce"}')" 1000
check_eq "verdicts: 1000 expired/deny on the enforce host" \
	"$(delta 'mtls_spoa_verdicts_total{result="expired",action="deny",mode="enforce"}')" 1000
check_eq "verdicts: log mode, 200 would-be-denied expired, 200 untrusted, 200 ok" \
	"$(delta 'mtls_spoa_verdicts_total{result="expired",action="log",mode="log"}') $(delta 'mtls_spoa_verdicts_total{result="untrusted",action="log",mode="log"}') $(delta 'mtls_spoa_verdicts_total{result="ok",action="allow",mode="log"}')" \
	"200 200 200"
check_eq "notify frames and messages: +2600 each" \
	"$(delta mtls_spoa_notify_frames_total) $(delta mtls_spoa_notify_messages_total)" "2600 2600"
check_eq "connections accepted: +4 (2 per run)" "$(delta mtls_spoa_connections_accepted_total)" 4
hits=$(delta mtls_spoa_cache_hits_total)
misses=$(delta mtls_spoa_cache_misses_total)
vcount=$(delta mtls_spoa_verify_duration_seconds_count)
check_eq "cache hits + misses = 2600 messages" "$((hits + misses))" 2600
# api.example.com and *.example.net both trust tenant-a alone: one trust
# policy, so the two runs hold 3 distinct (policy, certificate) keys
# (a-valid, a-expired, b-valid), each verified exactly once whatever the
# host, the worker or the number in flight (the verify pool shares one
# verification between equal requests).
check_eq "3 (policy, certificate) keys: exactly 3 timed verifications ($misses worker-cache misses)" \
	"$vcount" 3
check_eq "connections gauge back to 0 after the runs" "$(metric mtls_spoa_connections)" 0

# A protocol error: a frame longer than max-frame-size -> status 3.
python3 - "$T_AGENT_PORT" <<'EOF'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(struct.pack(">I", 1 << 20))
s.settimeout(5)
try:
    while s.recv(4096):
        pass
except OSError:
    pass
EOF
scrape
check_eq "protocol_errors_total{code=3} +1 after an oversized frame" \
	"$(delta 'mtls_spoa_protocol_errors_total{code="3"}')" 1

# --- reloads ---------------------------------------------------------------
t_reload_agent
for _ in $(seq 50); do
	scrape
	[ "$(metric mtls_spoa_config_generation)" = 2 ] && break
	sleep 0.1
done
check_eq "SIGHUP: reloads success 1, generation 2" \
	"$(metric 'mtls_spoa_config_reloads_total{outcome="success"}') $(metric mtls_spoa_config_generation)" "1 2"
cp "$T_AGENT_CONF" "$T_WORK/good.conf"
echo "no-such-key = 1" >>"$T_AGENT_CONF"
t_reload_agent
for _ in $(seq 50); do
	scrape
	[ "$(metric 'mtls_spoa_config_reloads_total{outcome="failure"}')" = 1 ] && break
	sleep 0.1
done
check_eq "broken reload: failure 1, generation stays 2" \
	"$(metric 'mtls_spoa_config_reloads_total{outcome="failure"}') $(metric mtls_spoa_config_generation)" "1 2"
cp "$T_WORK/good.conf" "$T_AGENT_CONF"
get /v1/status -H "$BEARER"
check_eq "/v1/status follows the live generation" "$(jq -r .generation "$T_WORK/body")" 2

# --- refusals ---------------------------------------------------------------
get /nope
check_eq "unknown path: 404" "$ST" 404
get /metrics -X POST -d x=1
check_eq "POST: 405 with Allow: GET, HEAD" \
	"$ST $(grep -i '^allow:' "$T_WORK/hdr" | tr -d '\r' | cut -d' ' -f2-)" "405 GET, HEAD"
get /healthz -X DELETE
check_eq "DELETE: 405" "$ST" 405
head -c 2000000 /dev/zero >"$T_WORK/big"
get /metrics -X PUT --data-binary "@$T_WORK/big"
check_eq "PUT with a 2 MB body: 405, the body is not read" "$ST" 405
get "/$(head -c 40000 /dev/zero | tr '\0' a)"
check_eq "40 kB request target: 414" "$ST" 414
get /metrics -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' a)"
check_eq "40 kB header: 431" "$ST" 431
# curl -I writes the headers where the body would go: no sample may follow.
get /metrics -I
check_eq "HEAD /metrics: 200, headers only" "$ST $(grep -c '^mtls_spoa_' "$T_WORK/body")" "200 0"

# --- connection limit --------------------------------------------------------
python3 - "$T_ADMIN_PORT" "$T_WORK/limit.fifo" >"$T_WORK/limit.out" 2>&1 <<'EOF' &
import os, socket, sys, time
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(70)]
print("open", flush=True)
time.sleep(3)
EOF
limit_pid=$!
for _ in $(seq 50); do grep -q open "$T_WORK/limit.out" && break; sleep 0.1; done
sleep 0.3
# Over the limit, libmicrohttpd stops accepting: a new connection waits in
# the kernel's backlog, unanswered, until a slot frees.
get /healthz --max-time 1
st_full=$ST
wait "$limit_pid"
get /healthz
check_eq "64 connections held open: a new request gets no answer; once they close, 200" \
	"$st_full $ST" "000 200"

# --- unix socket, metrics-policy-label ----------------------------------------
U_CONF=$T_PKI/policy.conf
sed 's/^\[agent\]$/[agent]\nmetrics-policy-label = on/' "$T_ROOT/haproxy-conf/mtls-spoa.conf" >"$U_CONF"
U_SOCK=$T_WORK/admin.sock
U_PORT=$(t_free_port)
"$T_AGENT_BIN" -c "$U_CONF" -l "127.0.0.1:$U_PORT" -t 2 --admin-listen "unix:$U_SOCK" \
	>>"$T_WORK/agent-unix.log" 2>&1 &
U_PID=$!
for _ in $(seq 50); do [ -S "$U_SOCK" ] && break; sleep 0.1; done
t_wait_port "$U_PORT" 50
ust=$(curl -s --max-time 5 --unix-socket "$U_SOCK" -o /dev/null -w '%{http_code}' http://admin/readyz)
check_eq "unix:$U_SOCK admin listener answers /readyz" "$ust" 200
timeout 30 "$BENCH_BIN" -a "127.0.0.1:$U_PORT" -c 2 -p 8 -n 300 -k "$T_PKI/a-expired.pem" \
	--sni www.example.net --host www.example.net --json >/dev/null 2>&1
curl -s --max-time 5 --unix-socket "$U_SOCK" http://admin/metrics >"$T_WORK/metrics"
check_eq "metrics-policy-label = on: the verdict counter carries policy=\"*.example.net\"" \
	"$(metric 'mtls_spoa_verdicts_total{result="expired",action="log",mode="log",policy="*.example.net"}')" 300
if out=$(promtool check metrics <"$T_WORK/metrics" 2>&1); then
	ok "with the policy label, /metrics passes promtool"
else
	not_ok "with the policy label, /metrics passes promtool"
	diag "$out"
fi
out=$(timeout 10 "$T_AGENT_BIN" -c "$U_CONF" -l "127.0.0.1:$(t_free_port)" --admin-listen "unix:$U_SOCK" 2>&1)
rc=$?
case "$rc $out" in
"1 "*"in use by another process"*) ok "a second agent on the same admin socket exits 1: in use by another process" ;;
*) not_ok "a second agent on the same admin socket is refused"; diag "exit $rc: $out" ;;
esac
t_stop_pid "$U_PID"
check_eq "unix-socket agent exits 0 and removes its admin socket" \
	"$T_STOP_RC $([ -e "$U_SOCK" ] && echo present || echo gone)" "0 gone"
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$T_WORK/agent-unix.log"; then
	not_ok "unix-socket agent log has no sanitizer reports"
	diag "$(grep -E -A5 'Sanitizer|runtime error:' "$T_WORK/agent-unix.log" | head -n 30)"
fi

# --- under load: full-speed spop-bench, /metrics scraped 100/s ---------------
LOAD_SECONDS=4
mkdir -p "$T_WORK/scrapes"
python3 - "$T_ADMIN_PORT" "$T_WORK/scrapes" "$((LOAD_SECONDS + 1))" >"$T_WORK/scrape.out" 2>&1 <<'EOF' &
import http.client, sys, time
port, out, secs = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
n = bad = 0
worst = 0.0
start = time.monotonic()
deadline = start + secs
nxt = start
while time.monotonic() < deadline:
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/metrics")
        r = c.getresponse()
        body = r.read()
        c.close()
        if r.status != 200:
            bad += 1
        with open("%s/%05d.txt" % (out, n), "wb") as f:
            f.write(body)
    except Exception as e:
        bad += 1
        print("error", e)
    worst = max(worst, time.monotonic() - t0)
    n += 1
    nxt += 0.01
    time.sleep(max(0.0, nxt - time.monotonic()))
print("scrapes %d failed %d rate %.0f worst_ms %.1f" % (n, bad, n / (time.monotonic() - start), worst * 1000))
EOF
scr_pid=$!
sleep 0.3
timeout 30 "$BENCH_BIN" -a "127.0.0.1:$T_AGENT_PORT" -c 4 -p 32 -d "$LOAD_SECONDS" \
	-k "$T_PKI/a-valid.pem" -k "$T_PKI/a-expired.pem" -k "$T_PKI/b-valid.pem" -k "$T_PKI/rogue.pem" \
	--sni api.example.com --host api.example.com --json >"$T_WORK/load.out" 2>&1
brc=$?
wait "$scr_pid"
load=$(tail -n 1 "$T_WORK/load.out")
read -r sent answered errors rate <<<"$(jq -r '"\(.sent) \(.answered) \(.errors) \(.msgs_per_s | floor)"' <<<"$load" 2>/dev/null)"
if [ "$brc" = 0 ] && [ "${errors:-x}" = 0 ] && [ "${sent:-0}" -gt 0 ] && [ "$sent" = "$answered" ]; then
	ok "under load: spop-bench exits 0, $answered of $sent answered, 0 errors ($rate msg/s)"
else
	not_ok "under load: spop-bench loses nothing (exit $brc)"
	diag "$(tail -n 5 "$T_WORK/load.out")"
fi
read -r _ scrapes _ sfail _ srate _ sworst <<<"$(grep '^scrapes' "$T_WORK/scrape.out")"
diag "$(cat "$T_WORK/scrape.out")"
if [ "${sfail:-1}" = 0 ] && [ "${srate:-0}" -ge 90 ]; then
	ok "under load: $scrapes scrapes at $srate/s, all 200 (slowest ${sworst} ms)"
else
	not_ok "under load: /metrics scraped 100/s, all 200"
fi
# shellcheck disable=SC2016 # $1 is the inner shell's
bad=$(find "$T_WORK/scrapes" -name '*.txt' -print0 |
	xargs -0 -P 2 -n 1 sh -c 'promtool check metrics <"$1" >/dev/null 2>&1 || echo "$1"' _ | wc -l)
nfiles=$(find "$T_WORK/scrapes" -name '*.txt' | wc -l)
check_eq "under load: every one of the $nfiles scrapes passes promtool" "$bad" 0
# Counters never went back between consecutive scrapes.
back=$(for f in "$T_WORK"/scrapes/*.txt; do
	awk '$1 == "mtls_spoa_notify_messages_total" { print $2 }' "$f"
done | awk 'NR > 1 && $1 < prev { n++ } { prev = $1 } END { print n + 0 }')
check_eq "under load: notify_messages_total never decreases from one scrape to the next" "$back" 0

# --- idle timeout --------------------------------------------------------------
wait "$idle_pid"
idle=$(cat "$T_WORK/idle.out")
if awk -v t="$idle" 'BEGIN { exit !(t >= 9 && t <= 13) }'; then
	ok "an idle admin connection is closed after the 10 s timeout (${idle} s)"
else
	not_ok "an idle admin connection is closed after the 10 s timeout (got '$idle')"
fi

if grep -E '\[error\]' "$T_WORK/agent.log" | grep -v 'reload rejected' >/dev/null; then
	not_ok "the agent logged no error but the broken reload's"
	diag "$(grep -E '\[error\]' "$T_WORK/agent.log" | head -n 5)"
else
	ok "the agent logged no error but the broken reload's"
fi
t_finish
