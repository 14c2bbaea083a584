#!/usr/bin/env bash
# The tenant API's story end to end through a real HAProxy (issue 14),
# with haproxy-conf/haproxy.cfg and haproxy-conf/mtls-spoa.conf (plus a
# generated admin token and a temporary state directory):
#   a partner's name is refused by [host *] mode = deny ->
#   POST /v1/cas uploads the partner's CA -> PUT /v1/cas/NAME/hostnames
#   associates the name (created in mode log) -> a certificate of a CA
#   nobody configured passes in log mode and /metrics counts it
#   {action="log"} -> PATCH {"mode": "enforce"} -> the same request is
#   denied, without a restart or a signal -> restart the agent -> still
#   enforced, the partner's certificate still allowed.
# In the version matrix (tests/haproxy-versions.sh): it starts HAProxy.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init
t_need_agent
for tool in jq curl; do
	command -v "$tool" >/dev/null || { not_ok "$tool is installed (make deps)"; exit 1; }
done
t_pki

CONF=$T_PKI/mtls-spoa.conf
cp "$T_ROOT/haproxy-conf/mtls-spoa.conf" "$CONF"
t_admin_tokens "$CONF" portal || { not_ok "an admin token is generated (t_admin_tokens)"; exit 1; }

t_start_agent "$CONF" || { not_ok "agent starts with an admin token and a state directory"; exit 1; }
ok "agent starts with an admin token and a state directory"
t_start_haproxy || { not_ok "haproxy starts"; exit 1; }
t_wait_agent_state UP 15 || { not_ok "the agent is UP in HAProxy"; exit 1; }
ok "haproxy $(t_haproxy_version) runs haproxy-conf/haproxy.cfg, the agent is UP"
AGENT_PID0=$T_AGENT_PID

# api METHOD PATH [BODY-FILE|-] [curl args...]: one admin API request;
# status in $AST, body in $T_WORK/api.body, headers in $T_WORK/api.hdr.
api() {
	local method=$1 path=$2 body=${3:--}
	shift 3 2>/dev/null || shift $#
	local args=(-s --max-time 10 -X "$method" -H "Authorization: Bearer $T_TOKEN"
		-D "$T_WORK/api.hdr" -o "$T_WORK/api.body" -w '%{http_code}')
	if [ "$body" != - ]; then
		args+=(-H 'Content-Type: application/json' --data-binary "@$body")
	fi
	AST=$(curl "${args[@]}" "$@" "http://127.0.0.1:$T_ADMIN_PORT$path") || true
}
api_hdr() {
	awk -v n="$(echo "$1" | tr '[:upper:]' '[:lower:]')" 'BEGIN { FS = ":" } { sub(/\r$/, "") }
		tolower($1) == n { v = substr($0, length($1) + 2); sub(/^ /, "", v); print v; exit }' "$T_WORK/api.hdr"
}
# metric SERIES: its value now (0 when absent).
metric() {
	curl -s --max-time 5 "http://127.0.0.1:$T_ADMIN_PORT/metrics" |
		awk -v k="$1" '$1 == k { v = $2 } END { print v == "" ? 0 : v }'
}
LOGV='mtls_spoa_verdicts_total{result="untrusted",action="log",mode="log"}'
DENYV='mtls_spoa_verdicts_total{result="untrusted",action="deny",mode="enforce"}'
RELOADS='mtls_spoa_config_reloads_total{outcome="success"}'

HOST=portal.example.org # the server certificate covers *.example.org

t_expect "before the API: $HOST falls to [host *] mode = deny (403)" 403 no_policy "$HOST" b-valid /before

# --- upload the partner's CA -------------------------------------------------
jq -n --rawfile pem "$T_PKI/tenant-b-ca.pem" '{name: "partner-b", certificates: $pem}' >"$T_WORK/ca.json"
api POST /v1/cas "$T_WORK/ca.json"
check_eq "POST /v1/cas partner-b: 201" "$AST" 201
check_eq "the stored CA: one certificate, openssl's subject" \
	"$(jq -r '[.name, (.details | length), .details[0].subject, .source] | join(" ")' "$T_WORK/api.body" 2>&1)" \
	"partner-b 1 $(openssl x509 -in "$T_PKI/tenant-b-ca.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//') api"
gen1=$(api_hdr Mtls-Generation)

# --- associate the hostname -------------------------------------------------
echo "{\"hostnames\": [\"$HOST\"]}" >"$T_WORK/assoc.json"
api PUT /v1/cas/partner-b/hostnames "$T_WORK/assoc.json"
check_eq "PUT /v1/cas/partner-b/hostnames [$HOST]: 200" "$AST" 200
gen2=$(api_hdr Mtls-Generation)
if [ -n "$gen1" ] && [ -n "$gen2" ] && [ "$gen2" -gt "$gen1" ]; then
	ok "Mtls-Generation grows: $gen1 -> $gen2"
else
	not_ok "Mtls-Generation grows ('$gen1' -> '$gen2')"
fi
api GET "/v1/hosts/$HOST"
check_eq "the new host is in mode log, trusting partner-b alone" \
	"$(jq -c '[.mode, .ca]' "$T_WORK/api.body" 2>&1)" '["log",["partner-b"]]'

# --- log mode: a bad certificate passes, and is counted ---------------------
t_expect "log mode: the partner's valid certificate is allowed" 200 ok "$HOST" b-valid /log-valid
check_eq "log mode: policy $HOST, mode log" "$(t_hdr X-Mtls-Policy) $(t_hdr X-Mtls-Mode)" "$HOST log"
before=$(metric "$LOGV")
t_expect "log mode: a certificate of a CA nobody configured passes (200, untrusted)" 200 untrusted "$HOST" rogue /log-rogue
check_eq "log mode: its action is log" "$(t_hdr X-Mtls-Action)" log
check_eq "/metrics counts it: $LOGV +1" "$(($(metric "$LOGV") - before))" 1
check "HAProxy logs it at warning level with mtls_action=log" \
	t_wait_log "^<4>.*/log-rogue HTTP/.*mtls_action=log mtls_result=untrusted "

# --- enforce, live ----------------------------------------------------------
echo '{"mode": "enforce"}' >"$T_WORK/patch.json"
api PATCH "/v1/hosts/$HOST" "$T_WORK/patch.json" -H 'Content-Type: application/merge-patch+json'
check_eq "PATCH /v1/hosts/$HOST {\"mode\": \"enforce\"}: 200, mode enforce" \
	"$AST $(jq -r .mode "$T_WORK/api.body" 2>&1)" "200 enforce"
before=$(metric "$DENYV")
t_expect "enforce: the same request is now denied (403, untrusted)" 403 untrusted "$HOST" rogue /enforce-rogue
check_eq "enforce: action deny, mode enforce" "$(t_hdr X-Mtls-Action) $(t_hdr X-Mtls-Mode)" "deny enforce"
check_eq "/metrics counts the denial: $DENYV +1" "$(($(metric "$DENYV") - before))" 1
t_expect "enforce: the partner's valid certificate is still allowed" 200 ok "$HOST" b-valid /enforce-valid
t_expect "enforce: no certificate is denied" 403 no_cert "$HOST" none /enforce-none
check_eq "no restart: the same agent process ($AGENT_PID0) answered" "$T_AGENT_PID" "$AGENT_PID0"
if grep -qE 'reloading|signal 1:' "$T_WORK/agent.log"; then
	not_ok "no signal: the agent logged no reload"
	diag "$(grep -E 'reloading|signal 1:' "$T_WORK/agent.log")"
else
	ok "no signal: the agent logged no reload"
fi
check_eq "no reload counted: $RELOADS is 0" "$(metric "$RELOADS")" 0

# --- restart: everything is still there -------------------------------------
t_stop_agent
check_eq "agent stops with exit 0" "$T_AGENT_RC" 0
t_restart_agent || { not_ok "agent restarts on the same port"; t_finish; exit 1; }
if t_wait_agent_state UP 15; then ok "restarted agent is UP"; else not_ok "restarted agent is UP"; fi
t_expect "after a restart: the rogue certificate is still denied" 403 untrusted "$HOST" rogue /restart-rogue
t_expect "after a restart: the partner's certificate is still allowed" 200 ok "$HOST" b-valid /restart-valid
api GET "/v1/hosts/$HOST"
check_eq "after a restart: GET /v1/hosts/$HOST is mode enforce with partner-b" \
	"$AST $(jq -c '[.mode, .ca, .source]' "$T_WORK/api.body" 2>&1)" '200 ["enforce",["partner-b"],"api"]'
t_expect "other hosts are untouched: api.example.com still enforces tenant A" 200 ok api.example.com a-valid /other

t_finish
