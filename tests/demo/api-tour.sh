# shellcheck shell=bash
# api-tour.sh - the tenant API part of the demo (issue 14), sourced by
# demo.sh, which has started the agent (with the token file
# $T_PKI/admin-tokens, token in $T_TOKEN, and its state in $T_STATE_DIR) and
# HAProxy, and defines say, title, step, ok, not_ok and the colours.
#
# Every API call is printed as the command a user would type, with the
# shell variables PKI, TOKEN and ADMIN, and that very text is what runs.

# api_call DESC WANT_STATUS JQ_FILTER METHOD PATH [DATA_COMMAND [CONTENT_TYPE]]
#   prints and runs  [DATA_COMMAND |] curl ... $ADMIN/PATH | jq -c FILTER
api_call() {
	local desc=$1 want=$2 filter=$3 method=$4 path=$5 data=${6:-} ctype=${7:-application/json}
	local cmd out st
	cmd="curl -s"
	# What a user would type: GET, and POST with a body, need no -X.
	case $method in GET) ;; POST) [ -n "$data" ] || cmd="$cmd -X POST" ;; *) cmd="$cmd -X $method" ;; esac
	cmd="$cmd -H \"Authorization: Bearer \$TOKEN\""
	if [ -n "$data" ]; then
		cmd="$data | $cmd -H 'Content-Type: $ctype' --data-binary @-"
	fi
	cmd="$cmd \$ADMIN$path"
	say "  ${DIM}\$ $cmd | jq -c '$filter'${N}"
	: >"$T_WORK/tour.hdr"
	out=$(eval "$cmd -D \"\$T_WORK/tour.hdr\"" | jq -c "$filter" 2>&1)
	st=$(awk 'NR == 1 { print $2 }' "$T_WORK/tour.hdr")
	say "  $out"
	say "  -> HTTP ${st:-none}, Mtls-Generation $(t_hdr_of "$T_WORK/tour.hdr" Mtls-Generation)"
	if [ "$st" = "$want" ]; then
		[ "$CHECK" = 1 ] && ok "demo API: $desc ($want)"
	else
		FAILED=$((FAILED + 1))
		[ "$CHECK" = 1 ] && not_ok "demo API: $desc (HTTP ${st:-none}, want $want)"
		say "  ${R}UNEXPECTED${N}: wanted HTTP $want"
	fi
}

# t_hdr_of FILE NAME: a header of a curl -D file.
t_hdr_of() {
	awk -v n="$(echo "$2" | tr '[:upper:]' '[:lower:]')" 'BEGIN { FS = ":" } { sub(/\r$/, "") }
		tolower($1) == n { v = substr($0, length($1) + 2); sub(/^ /, "", v); print v; exit }' "$1"
}

api_tour() {
	local host=portal.example.org
	# The variables of the printed commands.
	PKI=$T_PKI
	ADMIN=http://127.0.0.1:$T_ADMIN_PORT
	TOKEN=${T_TOKEN:-}
	title "The tenant API: a partner brings a CA (README \"API\")"
	say "  A portal calls the agent's admin API; nobody edits a file. $host is"
	say "  covered by [host *] mode = deny so far. The token is in \$PKI/admin-tokens:"
	say "  ${DIM}\$ PKI=$PKI ADMIN=$ADMIN${N}"
	say "  ${DIM}\$ TOKEN=\$(cut -d: -f2- \$PKI/admin-tokens)${N}"
	if [ -z "$TOKEN" ]; then
		FAILED=$((FAILED + 1))
		[ "$CHECK" = 1 ] && not_ok "demo API: an admin token was generated (T_TOKEN)"
		say "  ${R}no admin token: the API tour needs \$T_TOKEN${N}"
		return
	fi

	STEP=$((STEP + 1))
	title "$STEP. Upload the partner's CA"
	api_call "upload partner-b's CA" 201 '{name, details: [.details[] | {subject, not_after}]}' \
		POST /v1/cas "jq -n --rawfile pem \$PKI/tenant-b-ca.pem '{name: \"partner-b\", certificates: \$pem}'"

	STEP=$((STEP + 1))
	title "$STEP. Associate $host with it: a new host starts in mode log"
	api_call "associate $host" 200 . PUT /v1/cas/partner-b/hostnames \
		"echo '{\"hostnames\": [\"$host\"]}'"
	api_call "the new host is in mode log" 200 '{pattern, ca, mode}' GET "/v1/hosts/$host"

	STEP=$((STEP + 1))
	title "$STEP. Would a certificate of a CA nobody configured pass? Ask before enforcing"
	api_call "POST /v1/verify of the rogue certificate" 200 \
		'.variables | {action, result, mode, policy, subject}' POST /v1/verify \
		"jq -n --rawfile c \$PKI/rogue.crt '{host: \"$host\", certificate: \$c}'"

	step "Log mode through HAProxy: the rogue certificate passes, and is logged" \
		200 log untrusted "$host" rogue
	say "  ${DIM}\$ curl -s \$ADMIN/metrics | grep 'action=\"log\"'${N}"
	curl -s --max-time 5 "$ADMIN/metrics" | grep '^mtls_spoa_verdicts_total{.*action="log"' | sed 's/^/  /'
	if [ "$CHECK" = 1 ]; then
		if curl -s --max-time 5 "$ADMIN/metrics" |
			grep -qE '^mtls_spoa_verdicts_total\{result="untrusted",action="log",mode="log"\} [1-9]'; then
			ok "demo API: /metrics counts the log-mode pass"
		else
			not_ok "demo API: /metrics counts the log-mode pass"
		fi
	fi
	step "Log mode: the partner's own certificate is allowed" 200 allow ok "$host" b-valid

	STEP=$((STEP + 1))
	title "$STEP. Enforce: one PATCH, no restart, no reload"
	api_call "PATCH mode enforce" 200 '{pattern, ca, mode}' PATCH "/v1/hosts/$host" \
		"echo '{\"mode\": \"enforce\"}'" application/merge-patch+json

	step "Enforced: the same rogue certificate is now denied" 403 deny untrusted "$host" rogue
	step "Enforced: the partner's certificate still passes" 200 allow ok "$host" b-valid
	say "  The API objects are in $T_STATE_DIR (api.conf + pem/): a restart keeps them."
}
