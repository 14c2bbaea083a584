#!/usr/bin/env bash
# demo.sh [--check] [--remote HOST:PORT --pki DIR] - a narrated tour of
# mtls-spoa behind a real HAProxy.
#
# Generates a throwaway PKI (two tenant CAs, one with an intermediate;
# valid, expired, wrong-CA and wrong-purpose client certificates), starts
# the agent and HAProxy on free high ports of 127.0.0.1 with the reference
# configuration in haproxy-conf/, and walks through allow, deny and log
# verdicts with curl. Then it keeps running, printing how to try by hand,
# until Ctrl-C; everything is stopped and removed on exit.
#
#   --check   the same tour without the interactive part; prints
#             "ok"/"not ok" per step and exits non-zero on any unexpected
#             verdict (make demo-check, and make test through
#             tests/integration/test_demo_check.sh)
#   --remote HOST:PORT --pki DIR
#             the same tour against an HAProxy that is already running
#             haproxy-conf/haproxy.cfg with MTLS_VERDICT_HEADERS set (the
#             compose "tour" service: --remote haproxy:8443 --pki /pki),
#             with the client certificates of the PKI in DIR. Starts
#             nothing, waits up to 60 s for HAProxy to give verdicts, and
#             exits when the tour is over.
#
# It builds nothing: "make demo" builds $MTLS_BUILD/mtls-spoa first
# (MTLS_BUILD defaults to build).
set -u
CHECK=0
REMOTE=
REMOTE_PKI=
usage() { echo "usage: $0 [--check] [--remote HOST:PORT --pki DIR]" >&2; exit 2; }
while [ "$#" -gt 0 ]; do
	case "$1" in
	--check) CHECK=1 ;;
	--remote)
		[ "$#" -ge 2 ] || usage
		REMOTE=$2
		shift
		;;
	--pki)
		[ "$#" -ge 2 ] || usage
		REMOTE_PKI=$2
		shift
		;;
	-h | --help)
		sed -n '2,26s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*) usage ;;
	esac
	shift
done
# HOST:PORT, HOST may be a name or [IPv6]; the port is what the URLs carry
# (so the Host header is "name:PORT", as in the local tour).
REMOTE_HOST=${REMOTE%:*}
REMOTE_PORT=${REMOTE##*:}
if [ -n "$REMOTE" ] || [ -n "$REMOTE_PKI" ]; then
	if [ -z "$REMOTE" ] || [ -z "$REMOTE_PKI" ] || [ -z "$REMOTE_HOST" ] ||
		! [[ $REMOTE_PORT =~ ^[0-9]+$ ]]; then
		usage
	fi
fi

# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"
# shellcheck source=tests/demo/api-tour.sh
. "$(dirname "$0")/api-tour.sh"

if [ -t 1 ] && [ "$CHECK" = 0 ]; then
	B=$'\e[1m' DIM=$'\e[2m' G=$'\e[32m' R=$'\e[31m' Y=$'\e[33m' N=$'\e[0m'
else
	B='' DIM='' G='' R='' Y='' N=''
fi

say() { printf '%s\n' "$*"; }
title() { printf '\n%s== %s ==%s\n' "$B" "$*" "$N"; }

if [ -z "$REMOTE" ] && ! command -v "$T_HAPROXY" >/dev/null; then
	say "haproxy not found: run 'make deps' (Debian: apt-get install haproxy)" >&2
	exit 1
fi
if [ -z "$REMOTE" ] && [ ! -x "$T_AGENT_BIN" ]; then
	say "$T_AGENT_BIN not found: run 'make' first (or 'make demo')" >&2
	exit 1
fi

t_init
# Ctrl-C ends the interactive demo normally.
trap 'echo; say "stopping..."; exit 0' INT

# Extra curl arguments of every tour request. Remote: keep the URL (so SNI
# and Host are the demo host names) but connect to HOST:PORT; curl resolves
# HOST itself (a compose service name works), lib.sh's --resolve entry for
# the demo name is then unused.
CONNECT=()

say "${B}mtls-spoa demo${N}: \"bring your own CA\" client certificates for HAProxy"
if [ -n "$REMOTE" ]; then
	T_PKI=$REMOTE_PKI
	T_HTTPS_PORT=$REMOTE_PORT
	CONNECT=(--connect-to "::$REMOTE_HOST:$REMOTE_PORT")
	for f in server-ca.pem a-valid.pem a-valid.key; do
		if [ ! -r "$T_PKI/$f" ]; then
			say "$T_PKI/$f is missing or unreadable: is --pki the mkpki.sh output?" >&2
			[ "$CHECK" = 1 ] && not_ok "the PKI in $T_PKI is readable"
			exit 1
		fi
	done
	# HAProxy (and through it the agent and the backend) may still be
	# starting: wait, bounded, for a verdict on the host without checks.
	say "Waiting for HAProxy at $REMOTE to give verdicts..."
	deadline=$((SECONDS + 60))
	while :; do
		t_req public.example.com none /demo/ready "${CONNECT[@]}"
		[ "$T_STATUS" = 200 ] && [ -n "$(t_hdr X-Mtls-Action)" ] && break
		if [ "$SECONDS" -ge "$deadline" ]; then
			say "no verdict from $REMOTE within 60 s (last: HTTP $T_STATUS $(t_verdict))" >&2
			[ "$CHECK" = 1 ] && not_ok "HAProxy at $REMOTE gives verdicts"
			exit 1
		fi
		sleep 1
	done
	say "haproxy: https://$REMOTE  (haproxy-conf/haproxy.cfg, already running)"
	say "PKI:     $T_PKI"
else
	say "Generating a demo PKI..."
	t_pki
	# A token for the admin API, generated now (README "Security model"):
	# /v1/... over TCP needs it.
	cp "$T_ROOT/haproxy-conf/mtls-spoa.conf" "$T_PKI/mtls-spoa.conf"
	t_admin_tokens "$T_PKI/mtls-spoa.conf" demo
	t_start_agent "$T_PKI/mtls-spoa.conf" || exit 1
	t_start_haproxy || exit 1
	if ! t_wait_agent_state UP 15; then
		say "the agent never became healthy in HAProxy; logs:" >&2
		tail -n 20 "$T_WORK/agent.log" "$T_WORK/haproxy.log" >&2
		exit 1
	fi
	say "agent:   127.0.0.1:$T_AGENT_PORT  (haproxy-conf/mtls-spoa.conf, log $T_WORK/agent.log)"
	say "admin:   http://127.0.0.1:$T_ADMIN_PORT/metrics  (/healthz /readyz; /v1/status with the token in $T_PKI/admin-tokens)"
	say "haproxy: https://127.0.0.1:$T_HTTPS_PORT  (haproxy-conf/haproxy.cfg, log $T_WORK/haproxy.log)"
	say "PKI:     $T_PKI"
fi
P=$T_PKI
PORT=$T_HTTPS_PORT
say "Policies: api.example.com enforce (tenant A), other.example.com enforce (tenant B),"
say "          *.example.net log (tenant A), public.example.com off, everything else log."

FAILED=0
STEP=0

# curl command line as a user would type it (PKI=$P, PORT=$PORT).
show_cmd() { # show_cmd HOST CLIENT [extra curl args...]
	local host=$1 client=$2 c a
	shift 2
	if [ -n "$REMOTE" ]; then
		c="curl --cacert \$PKI/server-ca.pem --connect-to ::$REMOTE_HOST:\$PORT"
	else
		c="curl --cacert \$PKI/server-ca.pem --resolve $host:\$PORT:127.0.0.1"
	fi
	if [ "$client" != none ]; then
		c="$c --cert \$PKI/$client.pem --key \$PKI/$client.key"
	fi
	for a in "$@"; do
		c="$c $(printf '%q' "$a")"
	done
	say "  ${DIM}\$ $c https://$host:\$PORT/${N}"
}

# step "NARRATION" WANT_STATUS WANT_ACTION WANT_RESULT HOST CLIENT [curl args]
step() {
	local text=$1 want=$2 wact=$3 wres=$4 host=$5 client=$6
	shift 6
	STEP=$((STEP + 1))
	title "$STEP. $text"
	show_cmd "$host" "$client" "$@"
	t_req "$host" "$client" "/demo/$STEP" "${CONNECT[@]}" "$@"
	local act res col
	act=$(t_hdr X-Mtls-Action)
	res=$(t_hdr X-Mtls-Result)
	if [ "$T_STATUS" = 200 ]; then col=$G; else col=$R; fi
	say "  -> HTTP ${col}$T_STATUS${N}   action=${B}$act${N} result=${B}$res${N} mode=$(t_hdr X-Mtls-Mode) policy=$(t_hdr X-Mtls-Policy)"
	local subj ca
	subj=$(t_hdr X-Mtls-Subject)
	ca=$(t_hdr X-Mtls-Ca)
	[ -n "$subj" ] && say "     subject=$subj${ca:+  ca=$ca}"
	if [ "$T_STATUS" = "$want" ] && [ "$act" = "$wact" ] && [ "$res" = "$wres" ]; then
		[ "$CHECK" = 1 ] && ok "demo step $STEP: $text ($want $wact $wres)"
	else
		FAILED=$((FAILED + 1))
		if [ "$CHECK" = 1 ]; then
			not_ok "demo step $STEP: $text"
		fi
		say "  ${R}UNEXPECTED${N}: wanted HTTP $want action=$wact result=$wres"
	fi
}

say ""
say "Every request below goes client -> HAProxy (TLS, any client certificate"
say "accepted) -> mtls-spoa (per-host CA check) -> verdict -> HAProxy rule."
say "Shell variables for copying the commands: PKI=$P PORT=$PORT"

step "Tenant A's client, valid certificate, on tenant A's API: allowed" \
	200 allow ok api.example.com a-valid
cc=$(t_body_field client-cert)
say "     the backend received Client-Cert: ${cc:0:40}... (RFC 9440, verified only)"
if [ "$CHECK" = 1 ]; then
	check_eq "demo step $STEP: the backend received the certificate as Client-Cert" \
		"$cc" ":$(t_cert_b64 a-valid):"
fi
step "No certificate on an enforce host: denied" \
	403 deny no_cert api.example.com none
step "Expired certificate: denied, and the reason is precise" \
	403 deny expired api.example.com a-expired
step "Certificate from a CA nobody configured: denied" \
	403 deny untrusted api.example.com rogue
step "Right CA but a serverAuth-only certificate (wrong purpose): denied" \
	403 deny bad_purpose api.example.com a-server
step "Tenant B's valid certificate on tenant A's host: denied (CAs are per host)" \
	403 deny untrusted api.example.com b-valid
step "Tenant B's certificate on tenant B's own host: allowed" \
	200 allow ok other.example.com b-valid
step "TLS handshake as an unprotected host (SNI public.example.com), request for api.example.com: denied" \
	403 deny host_mismatch public.example.com a-valid -H "Host: api.example.com"
step "Log mode (*.example.net): an expired certificate passes, and is logged" \
	200 log expired www.example.net a-expired
pat="^<4>.* fe_mtls.*/demo/$STEP HTTP/.*mtls_action=log mtls_result=expired "
if [ -n "$REMOTE" ]; then
	# HAProxy's log is not ours to read here: say where to look.
	say "     HAProxy logs this request at warning level (<4>) with mtls_result=expired;"
	say "     see its log (docker compose -f docker/compose.yaml logs haproxy)."
elif t_wait_log "$pat"; then
	say "     HAProxy log (<4> = warning level):"
	say "     ${Y}$(t_log_line "$pat" | cut -c1-1000)${N}"
	[ "$CHECK" = 1 ] && ok "demo step $STEP: logged at warning level with the result"
else
	FAILED=$((FAILED + 1))
	[ "$CHECK" = 1 ] && not_ok "demo step $STEP: logged at warning level with the result"
	say "  ${R}UNEXPECTED${N}: no warning-level log line for step $STEP"
fi
step "Log mode again: a certificate of a CA nobody configured passes too" \
	200 log untrusted www.example.net rogue
step "No checks at all on public.example.com (mode off)" \
	200 allow no_policy public.example.com none

# The operator's view of log mode: the agent's verdict counters, from
# its admin listener's /metrics (README "Monitoring").
title "Log mode in numbers: what enforce would have denied"
if [ -n "$REMOTE" ]; then
	say "  The agent's /metrics is on its own admin listener (admin-listen, 127.0.0.1"
	say "  inside its container): docker compose -f docker/compose.yaml exec agent ..."
else
	show_metrics() {
		curl -s --max-time 5 "http://127.0.0.1:$T_ADMIN_PORT/metrics" |
			grep '^mtls_spoa_verdicts_total{.*mode="log"' || true
	}
	say "  ${DIM}\$ curl -s http://127.0.0.1:$T_ADMIN_PORT/metrics | grep 'mode=\"log\"'${N}"
	LOG_METRICS=$(show_metrics)
	if [ -n "$LOG_METRICS" ]; then
		printf '%s\n' "$LOG_METRICS" | sed 's/^/  /'
		would=$(awk '/action="log"/ { n += $2 } END { print n + 0 }' <<<"$LOG_METRICS")
		say "  -> ${B}$would${N} request(s) on log-mode hosts would have been denied under"
		say "     mode = enforce, by reason (result) above; action=\"allow\" ones passed the check."
	else
		say "  ${R}no log-mode verdict counters on /metrics${N}"
	fi
	if [ "$CHECK" = 1 ]; then
		check_eq "demo: /metrics counts the log-mode verdicts by result (expired, untrusted)" \
			"$(grep -c -E '^mtls_spoa_verdicts_total\{result="(expired|untrusted)",action="log",mode="log"\} 1$' <<<"$LOG_METRICS")" 2
	fi
fi

# The tenant API (README "API"): local only, the agent's admin listener
# is not reachable from the remote tour.
[ -z "$REMOTE" ] && api_tour

title "Summary"
if [ "$FAILED" -eq 0 ]; then
	say "${G}All $STEP steps gave the expected verdict.${N}"
else
	say "${R}$FAILED of $STEP steps gave an unexpected verdict.${N}"
fi

if [ "$CHECK" = 1 ]; then
	t_finish
	exit $?
fi
# Remote: nothing of ours keeps running; how to try by hand is in the
# README ("Run with Docker").
if [ -n "$REMOTE" ]; then
	[ "$FAILED" -eq 0 ]
	exit $?
fi

title "Try it yourself"
cat <<EOF
  PKI=$P PORT=$PORT
  curl --cacert \$PKI/server-ca.pem --resolve api.example.com:\$PORT:127.0.0.1 \\
       --cert \$PKI/a-valid.pem --key \$PKI/a-valid.key -i https://api.example.com:\$PORT/
  Client certificates in \$PKI: a-valid a-other a-expired a-notyet a-server
  a-revoked (tenant A), b-valid (tenant B), rogue (unknown CA).
  Hosts: api.example.com other.example.com optional.example.com
  partner.example.com public.example.com anything.example.net anything.example.org
  The X-Mtls-* response headers show the verdict because the demo sets
  MTLS_VERDICT_HEADERS=1 (never in production: it tells clients why).
  Watch the verdicts:  tail -f $T_WORK/haproxy.log
  Agent metrics:       curl -s http://127.0.0.1:$T_ADMIN_PORT/metrics
  Agent status:        curl -s -H "Authorization: Bearer \$(cut -d: -f2- $T_PKI/admin-tokens)" \\
                            http://127.0.0.1:$T_ADMIN_PORT/v1/status
  Tenant API:          TOKEN=\$(cut -d: -f2- $T_PKI/admin-tokens)
                       curl -s -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:$T_ADMIN_PORT/v1/hosts
                       (README "API"; its state is in $T_STATE_DIR)
  Reload the agent:    edit $T_AGENT_CONF, then kill -HUP $T_AGENT_PID
  Stop the agent:      kill $T_AGENT_PID   (requests then fail closed: 503)
Press Ctrl-C to stop the demo and remove everything.
EOF
while t_pid_alive "$T_HAPROXY_PID"; do
	sleep 1
done
say "haproxy exited; stopping."
exit 1
