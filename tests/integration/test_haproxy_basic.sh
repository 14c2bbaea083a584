#!/usr/bin/env bash
# The agent core against a real HAProxy (issue 2): spop-check health
# check, txn.mtls.present with and without a certificate, 200 concurrent
# requests over the agent's pipelined connections, and the SPOE error path
# (agent stopped -> set-on-error -> 503, fail closed; fail-open switch).
# Runs haproxy-conf/haproxy.cfg and haproxy-conf/mtls-spoa.conf unchanged.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init
t_need_agent
t_pki

t_start_agent || { not_ok "agent starts"; exit 1; }
ok "agent starts with haproxy-conf/mtls-spoa.conf"
t_start_haproxy || { not_ok "haproxy starts"; exit 1; }
ok "haproxy starts with haproxy-conf/haproxy.cfg"

# --- health check --------------------------------------------------------
if t_wait_agent_state UP 15; then
	ok "option spop-check marks the agent UP"
else
	not_ok "option spop-check marks the agent UP"
	diag "$(tail -n 20 "$T_WORK/haproxy.log")"
fi

# --- txn.mtls.present ----------------------------------------------------
t_req public.example.com none /present-none
check_eq "no certificate: txn.mtls.present is false" "$(t_hdr X-Mtls-Present)" 0
check_eq "no certificate on an 'off' host: 200" "$T_STATUS" 200

t_req public.example.com a-valid /present-cert
check_eq "with a certificate: txn.mtls.present is true" "$(t_hdr X-Mtls-Present)" 1
check_eq "with a certificate on an 'off' host: 200" "$T_STATUS" 200

t_req api.example.com none /present-none-enforce
check_eq "no certificate on an enforce host: present false" "$(t_hdr X-Mtls-Present)" 0

t_req api.example.com rogue /present-rogue
check_eq "untrusted certificate still reaches the agent: present true" \
	"$(t_hdr X-Mtls-Present)" 1

t_req api.example.com a-valid /present-h2 --http2
check_eq "HTTP/2 request with a certificate: present true" "$(t_hdr X-Mtls-Present)" 1

# --- 200 concurrent requests --------------------------------------------
urls=()
for ((i = 0; i < 200; i++)); do
	urls+=("https://api.example.com:$T_HTTPS_PORT/concurrent/$i")
done
# Each answer carries its own verdict (X-Mtls-Result, from the agent's
# variables). HAProxy's log lines are not counted: under load HAProxy may
# drop some of them, which says nothing about the verdicts.
answers=$(curl -s --no-progress-meter --http1.1 --parallel --parallel-max 50 --max-time 30 \
	--cacert "$T_PKI/server-ca.pem" \
	--cert "$T_PKI/a-valid.pem" --key "$T_PKI/a-valid.key" \
	--resolve "api.example.com:$T_HTTPS_PORT:127.0.0.1" \
	-o /dev/null -w '%{http_code} %header{x-mtls-result}\n' "${urls[@]}")
n200=$(grep -c '^200 ' <<<"$answers")
check_eq "200 concurrent requests (50 in parallel) all answered 200" "$n200" 200
nok=$(grep -c '^200 ok$' <<<"$answers")
check_eq "each of the 200 got its own verdict (X-Mtls-Result ok)" "$nok" 200
if [ "$nok" != 200 ]; then
	diag "answers: $(sort <<<"$answers" | uniq -c | tr '\n' ' ')"
fi
# Stats "stot" of agent1: on 2.6 the SPOP connections the SPOE applets
# opened; on 3.1+ the SPOE streams, one per request that sent a message,
# over far fewer pipelined connections (the stats do not count those).
stot=$(curl -s --max-time 2 "http://127.0.0.1:$T_STATS_PORT/stats;csv" |
	awk -F, '$1 == "be_mtls_agents" && $2 == "agent1" { print $8 }')
diag "agent1 stot so far (2.6: SPOP connections; 3.1+: SPOE streams): ${stot:-?}"

# Which HAProxy served these requests: the running process's binary, which
# must be the one asked for (HAPROXY=), not another on PATH.
served=$(t_haproxy_version)
want_exe=$(readlink -f "$(command -v "$T_HAPROXY")")
if [ -n "$served" ] && [ "${served#* (}" = "$want_exe)" ]; then
	ok "requests served by HAProxy $served"
else
	not_ok "requests served by the HAProxy asked for ($T_HAPROXY)"
	diag "running: '${served:-none}', asked for: '$want_exe'"
fi

# A stream of requests on HTTP/2: one TLS connection, many streams.
codes=$(curl -s --no-progress-meter --http2 --parallel --parallel-max 50 --max-time 30 \
	--cacert "$T_PKI/server-ca.pem" \
	--cert "$T_PKI/a-valid.pem" --key "$T_PKI/a-valid.key" \
	--resolve "api.example.com:$T_HTTPS_PORT:127.0.0.1" \
	-o /dev/null -w '%{http_code}\n' "${urls[@]}")
check_eq "200 concurrent HTTP/2 streams all answered 200" "$(grep -c '^200$' <<<"$codes")" 200

# --- agent stopped: the SPOE error path ----------------------------------
t_stop_agent
t0=$(date +%s%N)
t_req api.example.com a-valid /agent-down
t1=$(date +%s%N)
check_eq "agent stopped: valid certificate gets 503 (fail closed)" "$T_STATUS" 503
if [ -n "$(t_hdr X-Mtls-Error)" ] || [ -z "$(t_hdr X-Mtls-Action)" ]; then
	ok "agent stopped: no verdict variables (set-on-error path)"
else
	not_ok "agent stopped: no verdict variables (set-on-error path)"
	diag "$(t_verdict)"
fi
diag "503 answered in $(((t1 - t0) / 1000000)) ms (timeout processing 1s)"
t_req public.example.com none /agent-down-off
check_eq "agent stopped: even an 'off' host fails closed (503)" "$T_STATUS" 503
if t_wait_agent_state DOWN 15; then
	ok "option spop-check marks the stopped agent DOWN"
else
	not_ok "option spop-check marks the stopped agent DOWN"
fi
t_req api.example.com a-valid /agent-down-2
check_eq "agent DOWN in HAProxy: 503" "$T_STATUS" 503
check "agent stopped: the 503 is logged with txn.mtls.error set" \
	t_wait_log '/agent-down-2 HTTP/.*mtls_action=- .*mtls_error=[0-9]+'

# --- the fail-open switch --------------------------------------------------
t_stop_haproxy
echo public.example.com >"$T_WORK/fail-open.hosts"
T_FAIL_OPEN_HOSTS=$T_WORK/fail-open.hosts t_start_haproxy ||
	{ not_ok "haproxy starts with MTLS_FAIL_OPEN_HOSTS"; exit 1; }
t_req public.example.com none /fail-open
check_eq "agent down, host listed in MTLS_FAIL_OPEN_HOSTS: 200 (fail open)" "$T_STATUS" 200
t_req api.example.com a-valid /fail-open-not-listed
check_eq "agent down, host not listed: still 503" "$T_STATUS" 503

# --- and back ---------------------------------------------------------------
t_restart_agent || not_ok "agent restarts on the same port"
if t_wait_agent_state UP 15; then
	ok "restarted agent is UP again"
else
	not_ok "restarted agent is UP again"
fi
t_req api.example.com a-valid /agent-back
check_eq "agent back: valid certificate gets 200" "$T_STATUS" 200

t_finish
