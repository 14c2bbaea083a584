#!/usr/bin/env bash
# SC2028: the \n in the echoed lf-string is HAProxy's, not echo's.
# shellcheck disable=SC2028
# End-to-end security suite for issue 11: the verdict must always be for
# the host the request is routed to, and a Client-Cert reaching a backend
# is always the request's own verified certificate.
#
# The stack: haproxy-conf/haproxy.cfg with routing rules inserted before
# its "default_backend be_app" (routing by Host with hdr_reg/hdr_dom/hdr_beg,
# by SNI with ssl_fc_sni, by path to nginx and to a WSGI app), the
# reference agent config, and three kinds of backend that show what they
# received:
#   echo   HAProxy frontends, one per route, answering "served=echo:NAME"
#          and every request header (req.hdrs)
#   nginx  Debian's nginx with virtual hosts chosen by Host / the
#          absolute-form authority (security/nginx.conf.in)
#   wsgi   Python wsgiref, the CGI header mapping (security/wsgi_app.py);
#          answers 101 to any Upgrade so a tunnel would show
# Clients: curl (HTTP/1.0, 1.1, 2) and security/client.py for crafted
# HTTP/1.x bytes and HTTP/2 frames (python3-h2).
#
# Every TAP line names the class of issue 11, the protocol and the
# variant. Requests that must not be served carry a unique token in their
# path; at the end every backend's log is flushed (a sentinel request per
# backend, waited for) and searched for those tokens.
# Needs: nginx, python3-h2 (Debian), curl, openssl. Honours HAPROXY=.
# T_KEEP=1 keeps the work dir.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
SEC_DIR=$T_ROOT/tests/integration/security
t_init

SEC_NGINX_PID=
SEC_WSGI_PID=
sec_cleanup() {
	local rc=$?
	[ -n "$SEC_NGINX_PID" ] && t_stop_pid "$SEC_NGINX_PID"
	[ -n "$SEC_WSGI_PID" ] && t_stop_pid "$SEC_WSGI_PID"
	SEC_NGINX_PID='' SEC_WSGI_PID=''
	(exit "$rc")
	t_cleanup
}
trap sec_cleanup EXIT

t_need_agent
t_pki
diag "$("$T_HAPROXY" -v 2>&1 | head -n 1)"

t_python_h2 || exit 1
SEC_PY=$T_PY_H2
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
	not_ok "nginx (Debian nginx) is installed"
	exit 1
fi
SEC_NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)

# sec_wait_grep FILE PATTERN [TENTHS]: wait for a line (grep -E) in FILE.
sec_wait_grep() {
	local f=$1 pat=$2 n=${3:-50} i
	for ((i = 0; i < n; i++)); do
		grep -Eq -- "$pat" "$f" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# --- backends ------------------------------------------------------------
sec_start_nginx() {
	local try d=$T_WORK/nginx
	mkdir -p "$d/tmp"
	: >"$d/access.log"
	for try in 1 2 3; do
		SEC_NGINX_PORT=$(t_free_port)
		sed -e "s#@WORK@#$T_WORK#g" -e "s#@PORT@#$SEC_NGINX_PORT#g" \
			"$SEC_DIR/nginx.conf.in" >"$d/nginx.conf"
		"$SEC_NGINX_BIN" -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" \
			-g 'daemon off;' >>"$d/stderr.log" 2>&1 &
		SEC_NGINX_PID=$!
		if t_wait_port "$SEC_NGINX_PORT" 50 && t_pid_alive "$SEC_NGINX_PID"; then
			return 0
		fi
		t_stop_pid "$SEC_NGINX_PID"
		SEC_NGINX_PID=
	done
	diag "nginx did not start: $(cat "$d/stderr.log" "$d/error.log" 2>/dev/null | tail -n 5)"
	return 1
}

sec_start_wsgi() {
	local try
	: >"$T_WORK/wsgi.log"
	for try in 1 2 3; do
		SEC_WSGI_PORT=$(t_free_port)
		python3 "$SEC_DIR/wsgi_app.py" "$SEC_WSGI_PORT" "$T_WORK/wsgi.log" \
			>>"$T_WORK/wsgi.stderr" 2>&1 &
		SEC_WSGI_PID=$!
		if t_wait_port "$SEC_WSGI_PORT" 50 && t_pid_alive "$SEC_WSGI_PID"; then
			return 0
		fi
		t_stop_pid "$SEC_WSGI_PID"
		SEC_WSGI_PID=
	done
	diag "wsgi app did not start: $(tail -n 5 "$T_WORK/wsgi.stderr")"
	return 1
}

# --- HAProxy -------------------------------------------------------------
# Echo routes: HAProxy backend be_NAME -> frontend fe_echo_NAME.
SEC_ECHOS=(api other partner optional public legacy net deep sni-api sni-public)
declare -A SEC_ECHO_PORT

# The routing an operator adds to fe_mtls, inserted before the reference
# file's "default_backend be_app". hdr_reg/hdr_dom/hdr_beg look at every
# occurrence of Host (a list too), as operators' rules do. Single quotes
# keep HAProxy's parser off the backslashes and "$".
sec_write_routing() {
	cat >"$T_WORK/routing.cfg" <<'EOF2'
	# --- routing inserted by tests/integration/test_security.sh ---
	use_backend be_nginx if { path_beg /n/ }
	use_backend be_wsgi if { path_beg /w/ }
	use_backend be_sni-api if { path_beg /s/ } { ssl_fc_sni -i api.example.com }
	use_backend be_sni-public if { path_beg /s/ } { ssl_fc_sni -i public.example.com }
	use_backend be_api if { hdr_reg(host) -i '^api\.example\.com(:[0-9]+)?$' }
	use_backend be_other if { hdr_dom(host) -i other.example.com }
	use_backend be_partner if { hdr_beg(host) -i partner.example.com }
	use_backend be_optional if { hdr_reg(host) -i '^optional\.example\.com(:[0-9]+)?$' }
	use_backend be_public if { hdr_reg(host) -i '^public\.example\.com(:[0-9]+)?$' }
	use_backend be_legacy if { hdr_reg(host) -i '^legacy\.example\.com(:[0-9]+)?$' }
	use_backend be_deep if { hdr_reg(host) -i '\.deep\.example\.org(:[0-9]+)?$' }
	use_backend be_net if { hdr_reg(host) -i '\.example\.net(:[0-9]+)?$' }
EOF2
	awk -v inc="$T_WORK/routing.cfg" '
		/^[ \t]*default_backend be_app[ \t]*$/ {
			while ((getline l < inc) > 0) print l
			n++
		}
		{ print }
		END { if (n != 1) exit 1 }
	' "$T_ROOT/haproxy-conf/haproxy.cfg" >"$T_WORK/haproxy.cfg"
}

sec_write_extra() {
	local n
	{
		echo "# Generated by tests/integration/test_security.sh."
		echo "frontend fe_echo_default"
		echo "	bind 127.0.0.1:$T_ECHO_PORT"
		echo "	log-format \"echo-served default %{+Q}r\""
		echo "	http-request return status 200 content-type text/plain lf-string \"served=echo:default\n%[req.hdrs]\""
		for n in "${SEC_ECHOS[@]}"; do
			echo "frontend fe_echo_$n"
			echo "	bind 127.0.0.1:${SEC_ECHO_PORT[$n]}"
			echo "	log-format \"echo-served $n %{+Q}r\""
			echo "	http-request return status 200 content-type text/plain lf-string \"served=echo:$n\n%[req.hdrs]\""
			echo "backend be_$n"
			echo "	server s1 127.0.0.1:${SEC_ECHO_PORT[$n]}"
		done
		echo "backend be_nginx"
		echo "	server s1 127.0.0.1:$SEC_NGINX_PORT"
		echo "backend be_wsgi"
		echo "	server s1 127.0.0.1:$SEC_WSGI_PORT"
		echo "listen stats"
		echo "	bind 127.0.0.1:$T_STATS_PORT"
		echo "	stats enable"
		echo "	stats uri /stats"
	} >"$T_WORK/extra.cfg"
}

# sec_start_haproxy: lib.sh's t_start_haproxy (same environment, verdict
# headers on, the fail-open list $T_FAIL_OPEN_HOSTS) on the derived
# haproxy.cfg, with an extra.cfg that also holds one echo per name.
sec_extra_with_ports() {
	local n
	for n in "${SEC_ECHOS[@]}"; do SEC_ECHO_PORT[$n]=$(t_free_port); done
	sec_write_extra
}
sec_start_haproxy() {
	sec_write_routing || { diag "no default_backend be_app line in haproxy.cfg"; return 1; }
	T_HAPROXY_CFG=$T_WORK/haproxy.cfg T_EXTRA_CFG_WRITER=sec_extra_with_ports t_start_haproxy
}

# --- requests ------------------------------------------------------------
# sec_path PREFIX: sets P to a fresh path /PREFIX/tokN- (unique token).
SEC_N=0
sec_path() {
	SEC_N=$((SEC_N + 1))
	SEC_TOK=tok$SEC_N-
	P=/$1/$SEC_TOK
}

# sec_h1 SNI CLIENT REQUEST: raw bytes over TLS ("-": no SNI / no cert).
# Sets T_STATUS, writes last.hdr and last.body like t_req.
sec_h1() {
	local sni=$1 cl=$2 args=(h1 --port "$T_HTTPS_PORT" --pki "$T_PKI" --out "$T_WORK/last")
	if [ "$sni" = - ]; then args+=(--no-sni); else args+=(--sni "$sni"); fi
	[ "$cl" = none ] || args+=(--cert "$cl")
	T_STATUS=$("$SEC_PY" "$SEC_DIR/client.py" "${args[@]}" "$3" 2>>"$T_WORK/client.err")
	[ -n "$T_STATUS" ] || T_STATUS=000
}

# sec_h2 SNI CLIENT STREAM...: each STREAM a JSON header list. Statuses in
# SEC_H2_STATUS[]; sec_h2_pick N makes stream N the "last" answer.
sec_h2() {
	local sni=$1 cl=$2 args=(h2 --port "$T_HTTPS_PORT" --pki "$T_PKI" --out "$T_WORK/h2")
	shift 2
	args+=(--sni "$sni")
	[ "$cl" = none ] || args+=(--cert "$cl")
	rm -f "$T_WORK"/h2.*
	mapfile -t SEC_H2_STATUS < <("$SEC_PY" "$SEC_DIR/client.py" "${args[@]}" "$@" 2>>"$T_WORK/client.err")
	sec_h2_pick 0
}
sec_h2_pick() {
	T_STATUS=${SEC_H2_STATUS[$1]:-000}
	cp "$T_WORK/h2.$1.hdr" "$T_WORK/last.hdr" 2>/dev/null || : >"$T_WORK/last.hdr"
	cp "$T_WORK/h2.$1.body" "$T_WORK/last.body" 2>/dev/null || : >"$T_WORK/last.body"
}
# h2get AUTHORITY PATH [NAME VALUE]...: a JSON header list for sec_h2;
# AUTHORITY "-" leaves :authority out.
h2get() {
	local a=$1 p=$2 j
	j='[[":method","GET"],[":scheme","https"]'
	[ "$a" = - ] || j+=",[\":authority\",\"$a\"]"
	j+=",[\":path\",\"$p\"]"
	shift 2
	while [ "$#" -ge 2 ]; do
		j+=",[\"$1\",\"$2\"]"
		shift 2
	done
	echo "$j]"
}

# --- what the backend received ---------------------------------------------
sec_served() {
	sed -n '1{s/\r$//;s/^served=//p;}' "$T_WORK/last.body"
}

# The certificate and verdict headers the backend received, "name=value"
# sorted: echo gives raw headers (name lowercased), nginx its $http_*
# variables that are not empty, wsgi its HTTP_* environ keys.
sec_received() {
	# The echo body is %[req.hdrs], in which HAProxy's log-format escapes
	# CR LF as %0D%0A: split it back into lines first, or no header of
	# the echo backend would ever be seen.
	sed 's/%0D%0A/\n/g' "$T_WORK/last.body" | awk '
		{ sub(/\r$/, "") }
		NR == 1 { kind = $0; sub(/^served=/, "", kind); sub(/:.*/, "", kind); next }
		kind == "echo" {
			i = index($0, ":"); if (i == 0) next
			n = tolower(substr($0, 1, i - 1)); v = substr($0, i + 1)
			sub(/^[ \t]+/, "", v)
			if (n ~ /cert|mtls/) print n "=" v
		}
		kind == "nginx" {
			i = index($0, "="); n = substr($0, 1, i - 1); v = substr($0, i + 1)
			if (n ~ /cert|mtls/ && v != "") print n "=" v
		}
		kind == "wsgi" && /^HTTP_/ && !/^HTTP_HOST=/ { print }
	' | LC_ALL=C sort
}

# The one line a backend must show for a verified request of CLIENT.
sec_cert_line() {
	local v
	v=":$(t_cert_b64 "$2"):"
	case $1 in
	echo:*) echo "client-cert=$v" ;;
	nginx:*) echo "client_cert=$v" ;;
	wsgi) echo "HTTP_CLIENT_CERT=$v" ;;
	esac
}

SEC_REFUSED=()
# sec_check DESC STATUS_RE SERVED RESULT CERT [HEADER=VALUE...]
#   STATUS_RE  regex the status must match
#   SERVED     "echo:api", "nginx:api", "wsgi", ... or "-" for "no backend"
#              (the request's token is then also searched in the backend
#              logs at the end)
#   RESULT     X-Mtls-Result wanted, "*" for any
#   CERT       when served: the client whose certificate must be the only
#              certificate/verdict header received, "none" for none at all
sec_check() {
	local desc=$1 sre=$2 wserved=$3 wres=$4 cert=$5 bad='' served res recv='' wrecv='' kv h v
	shift 5
	served=$(sec_served)
	res=$(t_hdr X-Mtls-Result)
	[[ $T_STATUS =~ $sre ]] || bad+=" status"
	if [ "$wserved" = - ]; then
		[ -z "$served" ] || bad+=" served"
		SEC_REFUSED+=("$SEC_TOK $desc")
	else
		[ "$served" = "$wserved" ] || bad+=" served"
		recv=$(sec_received)
		[ "$cert" = none ] || wrecv=$(sec_cert_line "$wserved" "$cert")
		[ "$recv" = "$wrecv" ] || bad+=" received-headers"
	fi
	[ "$wres" = "*" ] || [ "$res" = "$wres" ] || bad+=" result"
	for kv in "$@"; do
		h=${kv%%=*} v=${kv#*=}
		[ "$(t_hdr "$h")" = "$v" ] || bad+=" $h"
	done
	if [ -z "$bad" ]; then
		ok "$desc"
		return 0
	fi
	not_ok "$desc"
	diag "wrong:$bad"
	diag "got:  status $T_STATUS served='$served' $(t_verdict)"
	diag "want: status /$sre/ served='$wserved' result=$wres cert=$cert $*"
	if [ "$wserved" != - ] && [ "$recv" != "$wrecv" ]; then
		diag "received cert/verdict headers: $(tr '\n' ' ' <<<"$recv" | cut -c1-400)"
	fi
	return 1
}

A64=$(t_cert_b64 a-valid)
R4='^4[0-9][0-9]$'
R4R='^(4[0-9][0-9]|000)$'   # HTTP/2: a 4xx or a reset stream
RNS='^(4[0-9][0-9]|503)$'   # fail-open class: refused or no verdict

# --- start -----------------------------------------------------------------
FO=$T_WORK/fail-open-hosts
echo legacy.example.com >"$FO"
export T_FAIL_OPEN_HOSTS=$FO
sec_start_nginx || { not_ok "nginx starts"; exit 1; }
sec_start_wsgi || { not_ok "wsgi app starts"; exit 1; }
t_start_agent || { not_ok "agent starts"; exit 1; }
sec_start_haproxy || { not_ok "haproxy starts with the derived haproxy.cfg"; exit 1; }
if ! t_wait_agent_state UP 15; then
	not_ok "agent is UP in HAProxy"
	exit 1
fi
ok "stack up: agent, haproxy (reference rules + routing), nginx, wsgi"

# --- sanity: each route serves what it should -------------------------------
sec_path s; t_req api.example.com a-valid "$P"
sec_check "class3 h1.1 same name: SNI+Host api, a-valid -> 200, SNI route, Client-Cert is a-valid" \
	'^200$' echo:sni-api ok a-valid
sec_path e; t_req api.example.com a-valid "$P"
sec_check "class3 h1.1 same name: api, a-valid -> 200, Host route, Client-Cert is a-valid" \
	'^200$' echo:api ok a-valid
sec_path n; t_req api.example.com a-valid "$P" --http2
sec_check "class3 h2 same name: api, a-valid -> 200 from nginx vhost api with Client-Cert" \
	'^200$' nginx:api ok a-valid
sec_path w; t_req api.example.com a-valid "$P" --http1.0
sec_check "class3 h1.0 same name: api, a-valid -> 200 from wsgi with HTTP_CLIENT_CERT" \
	'^200$' wsgi ok a-valid
sec_path n; t_req public.example.com none "$P"
sec_check "sanity h1.1 public, no cert -> 200 from nginx vhost public, no cert header" \
	'^200$' nginx:public '*' none

# --- class 1: Host lists are refused ----------------------------------------
# SNI public.example.com (mode off), no certificate: the attacker's view.
# The Host routes (hdr_reg on every occurrence) would pick be_api.
c1_h1() { # VERSION VARIANT HOST-LINES
	sec_path e
	sec_h1 public.example.com none "GET $P HTTP/$1"$'\r\n'"$3"$'Connection: close\r\n\r\n'
	sec_check "class1 h$1 host list $2 refused, not served" "$R4" - '*' none
}
c1_h1 1.1 '"api, public"' $'Host: api.example.com, public.example.com\r\n'
c1_h1 1.1 '"public, api"' $'Host: public.example.com, api.example.com\r\n'
c1_h1 1.1 '"api,public"' $'Host: api.example.com,public.example.com\r\n'
c1_h1 1.1 '"api <tab>,<tab> public"' $'Host: api.example.com \t,\t public.example.com\r\n'
c1_h1 1.1 '"public,<tab>api"' $'Host: public.example.com,\tapi.example.com\r\n'
c1_h1 1.1 'two Host lines api then public' $'Host: api.example.com\r\nHost: public.example.com\r\n'
c1_h1 1.1 'two Host lines public then api' $'Host: public.example.com\r\nHost: api.example.com\r\n'
c1_h1 1.0 '"api, public"' $'Host: api.example.com, public.example.com\r\n'
c1_h1 1.0 'two Host lines public then api' $'Host: public.example.com\r\nHost: api.example.com\r\n'
sec_path e; t_req public.example.com none "$P" --http1.1 -H 'Host: public.example.com, api.example.com'
sec_check 'class1 h1.1 (curl) host list "public, api" refused, not served' "$R4" - '*' none

c1_h2() { # VARIANT STREAM-ARGS...
	local d=$1
	shift
	sec_h2 public.example.com none "$(h2get "$@")"
	sec_check "class1 h2 $d refused (4xx/reset), not served" "$R4R" - '*' none
}
# Two names in one HTTP/2 request: HAProxy's H2 decoder (2.6 to 3.4) may
# keep one of them (":authority", else the first host) and drop the other,
# so that no rule, agent or backend ever sees it. That is safe only if the
# name kept is the one judged, routed and forwarded: refused, or served by
# the backend of that name with that name's verdict and a single Host.
c1_h2_one() { # VARIANT KEPT-NAME STREAM-ARGS...
	local d=$1 kept=$2 hosts
	shift 2
	sec_h2 public.example.com none "$(h2get "$@")"
	if [ "$T_STATUS" = 200 ]; then
		sec_check "class1 h2 $d: one name kept ($kept), judged and routed as that name" \
			'^200$' "echo:${kept%%.*}" no_policy none
		hosts=$(sed 's/%0D%0A/\n/g' "$T_WORK/last.body" | tr -d '\r' | grep -i '^host:' | tr '\n' ' ')
		check_eq "class1 h2 $d: the backend received one Host, $kept" "$hosts" "host: $kept "
	else
		sec_check "class1 h2 $d refused (4xx/reset), not served" "$R4R" - '*' none
	fi
}
sec_path e; c1_h2 'two host headers api then public' - "$P" host api.example.com host public.example.com
sec_path e; c1_h2_one 'two host headers public then api' public.example.com - "$P" host public.example.com host api.example.com
sec_path e; c1_h2_one ':authority public, host api' public.example.com public.example.com "$P" host api.example.com
sec_path e; c1_h2 ':authority api, host public' api.example.com "$P" host public.example.com
sec_path e; c1_h2 'host "public, api", no :authority' - "$P" host 'public.example.com, api.example.com'
sec_path e; c1_h2 ':authority "public, api"' 'public.example.com, api.example.com' "$P"

# --- class 2: no Host, empty Host, absolute-form ------------------------------
# Path /n/: nginx serves a request without a name from its default_server
# and an absolute-form target from its authority's vhost.
c2_h1() { # DESC SNI CLIENT REQUEST-AFTER-PATH
	sec_h1 "$2" "$3" "$4"
	sec_check "class2 $1 refused, not served" "$R4" - '*' none
}
sec_path n; c2_h1 'h1.0 no Host (SNI public, no cert)' public.example.com none "GET $P HTTP/1.0"$'\r\n\r\n'
sec_path n; c2_h1 'h1.0 no Host (SNI api, a-valid)' api.example.com a-valid "GET $P HTTP/1.0"$'\r\n\r\n'
sec_path n; c2_h1 'h1.1 no Host (SNI public, no cert)' public.example.com none "GET $P HTTP/1.1"$'\r\nConnection: close\r\n\r\n'
sec_path n; c2_h1 'h1.1 no Host (SNI api, a-valid)' api.example.com a-valid "GET $P HTTP/1.1"$'\r\nConnection: close\r\n\r\n'
sec_path n; c2_h1 'h1.1 no Host, no SNI, a-valid' - a-valid "GET $P HTTP/1.1"$'\r\nConnection: close\r\n\r\n'
sec_path n; c2_h1 'h1.1 "Host:" empty (SNI public)' public.example.com none "GET $P HTTP/1.1"$'\r\nHost:\r\nConnection: close\r\n\r\n'
sec_path n; c2_h1 'h1.1 "Host: " blank (SNI api, a-valid)' api.example.com a-valid "GET $P HTTP/1.1"$'\r\nHost: \r\nConnection: close\r\n\r\n'
sec_path n; c2_h1 'h1.0 "Host:" empty (SNI public)' public.example.com none "GET $P HTTP/1.0"$'\r\nHost:\r\n\r\n'
sec_path n; c2_h1 'h1.1 absolute-form https://api + Host public (SNI public)' public.example.com none \
	"GET https://api.example.com$P HTTP/1.1"$'\r\nHost: public.example.com\r\nConnection: close\r\n\r\n'
sec_path n; c2_h1 'h1.1 absolute-form https://api, no Host (SNI public)' public.example.com none \
	"GET https://api.example.com$P HTTP/1.1"$'\r\nConnection: close\r\n\r\n'
sec_path n; c2_h1 'h1.0 absolute-form https://api, no Host (SNI public)' public.example.com none \
	"GET https://api.example.com$P HTTP/1.0"$'\r\n\r\n'
sec_path n; c2_h1 'h1.1 absolute-form https://public + Host api (SNI api, no cert)' api.example.com none \
	"GET https://public.example.com$P HTTP/1.1"$'\r\nHost: api.example.com\r\nConnection: close\r\n\r\n'
sec_path n
sec_h1 api.example.com a-valid "GET https://api.example.com$P HTTP/1.1"$'\r\nHost: api.example.com\r\nConnection: close\r\n\r\n'
sec_check "class2 h1.1 absolute-form with the same authority as Host (api, a-valid) -> 200 nginx api, Client-Cert" \
	'^200$' nginx:api ok a-valid
sec_path n
sec_h1 public.example.com none "GET https://public.example.com$P HTTP/1.1"$'\r\nHost: public.example.com\r\nConnection: close\r\n\r\n'
sec_check "class2 h1.1 absolute-form with the same authority as Host (public) -> 200 nginx public" \
	'^200$' nginx:public '*' none
sec_path n; sec_h2 api.example.com a-valid "$(h2get - "$P")"
sec_check "class2 h2 no :authority and no host (SNI api, a-valid) refused (4xx/reset), not served" "$R4R" - '*' none
sec_path n; sec_h2 public.example.com none "$(h2get - "$P")"
sec_check "class2 h2 no :authority and no host (SNI public) refused (4xx/reset), not served" "$R4R" - '*' none
sec_path n; sec_h2 public.example.com none "$(h2get - "$P" host '')"
sec_check "class2 h2 empty host, no :authority (SNI public) refused (4xx/reset), not served" "$R4R" - '*' none

# --- class 3: the SNI's policy counts when the Host has none -----------------
# Path /s/ routes by SNI: be_sni-api must never see these.
c3() { # PROTO-FLAG PROTO-NAME SNI CLIENT HOST DESC
	sec_path s
	t_req "$3" "$4" "$P" "$1" -H "Host: $5"
	sec_check "class3 $2 $6 -> 403 host_mismatch, not served" '^403$' - host_mismatch none
}
for pv in --http1.0:h1.0 --http1.1:h1.1 --http2:h2; do
	c3 "${pv%%:*}" "${pv#*:}" api.example.com none public.example.com 'SNI api, no cert, Host public (off)'
	c3 "${pv%%:*}" "${pv#*:}" api.example.com none unknown.example.org 'SNI api, no cert, Host unknown.example.org (default)'
done
for pv in --http1.1:h1.1 --http2:h2; do
	c3 "${pv%%:*}" "${pv#*:}" api.example.com b-valid public.example.com 'SNI api, b-valid, Host public'
	c3 "${pv%%:*}" "${pv#*:}" api.example.com b-valid unknown.example.org 'SNI api, b-valid, Host unknown.example.org'
	c3 "${pv%%:*}" "${pv#*:}" api.example.com a-valid public.example.com 'SNI api, a-valid, Host public'
done
for pv in --http1.1:h1.1 --http2:h2; do
	sec_path e
	t_req public.example.com a-valid "$P" "${pv%%:*}" -H 'Host: api.example.com'
	sec_check "class3 ${pv#*:} SNI public, a-valid, Host api -> 403 host_mismatch, not served" \
		'^403$' - host_mismatch none
	sec_path e
	t_req other.example.com b-valid "$P" "${pv%%:*}" -H 'Host: public.example.com'
	sec_check "class3 ${pv#*:} SNI other, b-valid, Host public -> 403 host_mismatch, not served" \
		'^403$' - host_mismatch none
done
sec_path s
sec_h2 api.example.com none "$(h2get public.example.com "$P")"
sec_check "class3 h2 (crafted) SNI api, no cert, :authority public -> 403 host_mismatch, not served" \
	'^403$' - host_mismatch none

# --- class 4: upgrades ----------------------------------------------------------
# The WSGI app answers 101 to any Upgrade: a 101 here is a tunnel past
# every later check on this connection.
c4() { # DESC UPGRADE-VALUE
	sec_path w
	sec_h1 api.example.com a-valid "GET $P HTTP/1.1"$'\r\nHost: api.example.com\r\nConnection: Upgrade, HTTP2-Settings\r\n'"Upgrade: $2"$'\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n'
	c4_check "$1"
}
c4_check() { # DESC: the last request asked for an h2c upgrade
	# 2.6 forwards the Upgrade, so the reference rules answer 400; 3.x's
	# H1 mux drops an h2c Upgrade itself, and the request then reaches the
	# app as a plain checked request (the app answers 101 to any Upgrade
	# it receives, so 200 proves no tunnel was offered).
	if [ "$T_STATUS" = 200 ]; then
		sec_check "class4 h1.1 $1: upgrade dropped by HAProxy, one checked request, no tunnel" \
			'^200$' wsgi ok a-valid
	else
		sec_check "class4 h1.1 $1 refused (400), no tunnel, not served" '^400$' - '*' none
	fi
}
c4 'Upgrade: h2c' h2c
c4 'Upgrade: H2C' H2C
c4 'Upgrade: foo, h2c' 'foo, h2c'
c4 'Upgrade: h2c, foo' 'h2c, foo'
sec_path w
sec_h1 api.example.com a-valid "GET $P HTTP/1.1"$'\r\nHost: api.example.com\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n'
c4_check 'lowercase upgrade: h2c without HTTP2-Settings'

# A variable, not $(...): command substitution would strip the final LF
# and the request would never end.
WS_HDRS=$'\r\nHost: api.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'
sec_path w
sec_h1 api.example.com a-valid "GET $P HTTP/1.1$WS_HDRS"
wline=$(grep -F -- "$SEC_TOK" "$T_WORK/wsgi.log" | head -n 1)
nline=$(grep -cF -- "$SEC_TOK" "$T_WORK/wsgi.log")
if [ "$T_STATUS" = 101 ] && [ "$nline" = 1 ] &&
	[ "$(grep -oE 'HTTP_[A-Z_.]*=[^ ]*' <<<"$wline" | tr '\n' ' ')" = "HTTP_CLIENT_CERT=:$A64: " ]; then
	ok "class4 h1.1 websocket, api, a-valid -> the checked request reaches the app once (101) with the real Client-Cert"
else
	not_ok "class4 h1.1 websocket, api, a-valid -> the checked request reaches the app once (101) with the real Client-Cert"
	diag "got status $T_STATUS, app log lines $nline: ${wline:0:300}"
fi
sec_path w
sec_h1 api.example.com none "GET $P HTTP/1.1$WS_HDRS"
sec_check "class4 h1.1 websocket, api, no cert -> 403, not served" '^403$' - no_cert none

# --- class 5: certificate header spoofing by name variants ---------------------
SPOOF=(-H 'Client_Cert: :Rk9SR0VEMQ==:' -H 'client-cert: :Rk9SR0VEMg==:'
	-H 'CLIENT-CERT: :Rk9SR0VEMw==:' -H 'Client.Cert: :Rk9SR0VENA==:'
	-H 'Client-Cert-Chain: :Rk9SR0VENQ==:' -H 'client_cert_chain: :Rk9SR0VENg==:'
	-H 'ClientCert: :Rk9SR0VENw==:' -H 'X-Mtls-Verified: 1'
	-H 'X_Mtls_Result: ok' -H 'x-mtls-action: allow')
for pv in --http1.0:h1.0 --http1.1:h1.1 --http2:h2; do
	for be in e:echo n:nginx w:wsgi; do
		sec_path "${be%%:*}"
		t_req api.example.com a-valid "$P" "${pv%%:*}" "${SPOOF[@]}"
		case ${be#*:} in echo | nginx) want=${be#*:}:api ;; *) want=wsgi ;; esac
		sec_check "class5 ${pv#*:} ${be#*:} verified (api, a-valid) + forged cert/verdict headers -> only the real Client-Cert arrives" \
			'^200$' "$want" ok a-valid
		sec_path "${be%%:*}"
		t_req public.example.com none "$P" "${pv%%:*}" "${SPOOF[@]}"
		case ${be#*:} in echo | nginx) want=${be#*:}:public ;; *) want=wsgi ;; esac
		sec_check "class5 ${pv#*:} ${be#*:} unverified (public, no cert) + forged headers -> no cert/verdict header arrives" \
			'^200$' "$want" '*' none
	done
done
# Crafted: a forged Client_Cert before a real one on one H2 stream, and
# names curl would not send as typed.
sec_path w
sec_h1 api.example.com a-valid "GET $P HTTP/1.1"$'\r\nHost: api.example.com\r\nClient_Cert: :Rk9SR0VE:\r\nClient-Cert :Rk9SR0VE:\r\nConnection: close\r\n\r\n'
if [ "$(sec_served)" = wsgi ]; then
	sec_check "class5 h1.1 wsgi \"Client_Cert\" + malformed \"Client-Cert :x\" line -> only the real Client-Cert" \
		'^200$' wsgi ok a-valid
else
	sec_check "class5 h1.1 wsgi \"Client_Cert\" + malformed \"Client-Cert :x\" line -> refused (400)" \
		"$R4" - '*' none
fi
sec_path w
sec_h2 api.example.com a-valid "$(h2get api.example.com "$P" client_cert ':Rk9SR0VE:' client-cert ':Rk9SR0VE:' x_mtls_verified 1)"
sec_check "class5 h2 (crafted) wsgi client_cert/client-cert/x_mtls_verified forged -> only the real Client-Cert" \
	'^200$' wsgi ok a-valid
sec_path n
sec_h2 public.example.com none "$(h2get public.example.com "$P" client_cert ':Rk9SR0VE:' client.cert ':Rk9SR0VE:')"
sec_check "class5 h2 (crafted) nginx public, client_cert/client.cert forged -> none arrives" \
	'^200$' nginx:public '*' none

# --- class 7: revocation follows the issuer --------------------------------------
for pv in --http1.1:h1.1 --http2:h2; do
	sec_path e
	t_req api.example.com a-revoked "$P" "${pv%%:*}"
	sec_check "class7 ${pv#*:} a-revoked on api.example.com -> 403 revoked, not served" '^403$' - revoked none
	sec_path e
	t_req partner.example.com a-revoked "$P" "${pv%%:*}"
	sec_check "class7 ${pv#*:} a-revoked on partner.example.com (intermediate-only anchor) -> 403 revoked, not served" \
		'^403$' - revoked none
done
sec_path e
t_req partner.example.com a-valid "$P"
sec_check "class7 h1.1 a-valid on partner.example.com still -> 200 with Client-Cert" '^200$' echo:partner ok a-valid

# --- HTTP/2: interleaved streams for two hosts on one connection ------------------
streams=()
declare -a ileave_host
for i in 0 1 2 3 4 5; do
	sec_path n
	ileave_tok[i]=$SEC_TOK
	if ((i % 2 == 0)); then ileave_host[i]=api; else ileave_host[i]=public; fi
	streams+=("$(h2get "${ileave_host[i]}.example.com" "$P")")
done
sec_h2 api.example.com a-valid "${streams[@]}"
for i in 0 1 2 3 4 5; do
	sec_h2_pick "$i"
	SEC_TOK=${ileave_tok[i]}
	if [ "${ileave_host[i]}" = api ]; then
		sec_check "h2 interleaved stream $i (:authority api, SNI api, a-valid) -> 200 nginx api with Client-Cert" \
			'^200$' nginx:api ok a-valid
	else
		sec_check "h2 interleaved stream $i (:authority public, SNI api) -> 403 host_mismatch, not served" \
			'^403$' - host_mismatch none
	fi
done

# --- class 8: wildcard depth and the default -------------------------------------
for pv in --http1.1:h1.1 --http2:h2; do
	sec_path e
	t_req x.example.net none "$P" "${pv%%:*}"
	sec_check "class8 ${pv#*:} x.example.net, no cert -> *.example.net (log) passes, 200" \
		'^200$' echo:net no_cert none 'X-Mtls-Policy=*.example.net' X-Mtls-Mode=log
	sec_path e
	t_req x.example.net a-valid "$P" "${pv%%:*}"
	sec_check "class8 ${pv#*:} x.example.net, a-valid -> 200 with Client-Cert" \
		'^200$' echo:net ok a-valid 'X-Mtls-Policy=*.example.net'
	sec_path n
	t_req a.b.example.net a-valid "$P" "${pv%%:*}" -k
	sec_check "class8 ${pv#*:} a.b.example.net, a-valid -> 403 no_policy (mode deny), nginx's *.example.net not reached" \
		'^403$' - no_policy none X-Mtls-Mode=deny
	sec_path n
	t_req a.b.example.net none "$P" "${pv%%:*}" -k
	sec_check "class8 ${pv#*:} a.b.example.net, no cert -> 403 no_policy (mode deny), not served" \
		'^403$' - no_policy none X-Mtls-Mode=deny
	sec_path e
	t_req nothere.example.org a-valid "$P" "${pv%%:*}"
	sec_check "class8 ${pv#*:} nothere.example.org, a-valid -> 403 no_policy (mode deny), not served" \
		'^403$' - no_policy none X-Mtls-Mode=deny
done

# Any-depth pattern in a custom agent config.
deepconf=$T_WORK/mtls-spoa-deep.conf
{
	cat "$T_ROOT/haproxy-conf/mtls-spoa.conf"
	printf '\n[host **.deep.example.org]\nca = tenant-a\nmode = enforce\n'
} >"$deepconf"
t_stop_agent
if T_AGENT_PORT_FIXED=1 t_start_agent "$deepconf" && t_wait_agent_state UP 15; then
	ok "class8 agent starts with [host **.deep.example.org] added"
	for pv in --http1.1:h1.1 --http2:h2; do
		sec_path e
		t_req a.b.deep.example.org a-valid "$P" "${pv%%:*}" -k
		sec_check "class8 ${pv#*:} a.b.deep.example.org, a-valid -> 200 policy **.deep.example.org with Client-Cert" \
			'^200$' echo:deep ok a-valid 'X-Mtls-Policy=**.deep.example.org'
		sec_path e
		t_req a.b.deep.example.org none "$P" "${pv%%:*}" -k
		sec_check "class8 ${pv#*:} a.b.deep.example.org, no cert -> 403 no_cert, not served" \
			'^403$' - no_cert none
	done
else
	not_ok "class8 agent starts with [host **.deep.example.org] added"
	diag "$(tail -n 5 "$T_WORK/agent.log")"
	t_stop_agent
	if ! { T_AGENT_PORT_FIXED=1 t_start_agent "$T_ROOT/haproxy-conf/mtls-spoa.conf" &&
		t_wait_agent_state UP 15; }; then
		not_ok "agent restarts"
		exit 1
	fi
fi

# --- class 6: the fail-open list ---------------------------------------------------
# (a) agent up, the message too large for a frame (SPOE error 3): a client
# chain of many copies of the intermediate.
{
	cat "$T_PKI/a-valid.crt"
	for i in $(seq 60); do cat "$T_PKI/tenant-a-intermediate.pem"; done
} >"$T_PKI/a-bigchain.pem"
cp "$T_PKI/a-valid.key" "$T_PKI/a-bigchain.key"
sec_path e
t_req legacy.example.com a-bigchain "$P" -k
sec_check "class6 h1.1 frame too big, SNI+Host legacy -> fail open as designed, 200 from legacy, no Client-Cert" \
	'^200$' echo:legacy '*' none
diag "  (X-Mtls-Error: '$(t_hdr X-Mtls-Error)', wanted 3)"
sec_path e
t_req api.example.com a-bigchain "$P" -H 'Host: legacy.example.com'
sec_check "class6 h1.1 frame too big, SNI api + Host legacy -> 503, not served" '^503$' - '*' none
c6_h1() { # DESC SNI CLIENT HOST-VALUE
	sec_path e
	sec_h1 "$2" "$3" "GET $P HTTP/1.1"$'\r\n'"Host: $4"$'\r\nConnection: close\r\n\r\n'
	sec_check "class6 h1.1 $1 -> not served (4xx/503)" "$RNS" - '*' none
}
c6_h1 'frame too big, SNI legacy, Host "api, legacy"' legacy.example.com a-bigchain 'api.example.com, legacy.example.com'
c6_h1 'frame too big, SNI legacy, Host "legacy, api"' legacy.example.com a-bigchain 'legacy.example.com, api.example.com'

# (b) agent stopped.
t_stop_agent
check_eq "agent exits 0 on SIGTERM" "$T_AGENT_RC" 0
t_wait_agent_state DOWN 15 || diag "agent never seen DOWN by HAProxy"
sec_path e
t_req legacy.example.com none "$P" -k
sec_check "class6 h1.1 agent down, SNI+Host legacy -> fail open as designed, 200 from legacy" \
	'^200$' echo:legacy '*' none
sec_path e
sec_h2 legacy.example.com none "$(h2get legacy.example.com "$P")"
sec_check "class6 h2 agent down, SNI+:authority legacy -> fail open as designed, 200 from legacy" \
	'^200$' echo:legacy '*' none
for pv in --http1.1:h1.1 --http2:h2; do
	sec_path e
	t_req api.example.com a-valid "$P" "${pv%%:*}" -H 'Host: legacy.example.com'
	sec_check "class6 ${pv#*:} agent down, SNI api + Host legacy -> 503, not served" '^503$' - '*' none
	sec_path e
	t_req api.example.com a-valid "$P" "${pv%%:*}"
	sec_check "class6 ${pv#*:} agent down, api -> 503 (fail closed), not served" '^503$' - '*' none
done
c6_h1 'agent down, SNI legacy, Host "api, legacy"' legacy.example.com none 'api.example.com, legacy.example.com'
c6_h1 'agent down, SNI legacy, Host "legacy, api"' legacy.example.com none 'legacy.example.com, api.example.com'
c6_h1 'agent down, SNI legacy, Host "api,legacy"' legacy.example.com none 'api.example.com,legacy.example.com'
c6_h1 'agent down, SNI api, Host "api, legacy"' api.example.com none 'api.example.com, legacy.example.com'
sec_path e
sec_h1 legacy.example.com none "GET $P HTTP/1.1"$'\r\nHost: api.example.com\r\nHost: legacy.example.com\r\nConnection: close\r\n\r\n'
sec_check "class6 h1.1 agent down, SNI legacy, two Host lines api then legacy -> not served (4xx/503)" "$RNS" - '*' none
sec_path e
sec_h2 legacy.example.com none "$(h2get - "$P" host api.example.com host legacy.example.com)"
sec_check "class6 h2 agent down, SNI legacy, two host headers api then legacy -> not served (4xx/503/reset)" \
	'^(4[0-9][0-9]|503|000)$' - '*' none
sec_path e
sec_h2 legacy.example.com none "$(h2get legacy.example.com "$P" host api.example.com)"
# HAProxy keeps :authority and drops the host header (see class 1): the
# request is legacy.example.com everywhere, so failing open is as designed,
# provided api.example.com reaches no rule or backend.
if [ "$T_STATUS" = 200 ]; then
	sec_check "class6 h2 agent down, SNI legacy, :authority legacy + host api -> host dropped, fail open as legacy" \
		'^200$' echo:legacy '*' none
	check_eq "class6 h2 :authority legacy + host api: the backend received one Host, legacy" \
		"$(sed 's/%0D%0A/\n/g' "$T_WORK/last.body" | tr -d '\r' | grep -i '^host:' | tr '\n' ' ')" \
		"host: legacy.example.com "
else
	sec_check "class6 h2 agent down, SNI legacy, :authority legacy + host api -> not served (4xx/503/reset)" \
		'^(4[0-9][0-9]|503|000)$' - '*' none
fi

# --- every refused request: absent from every backend's log -------------------------
# Flush: one direct request per backend, waited for in its log; the
# requests sent through HAProxy before it are logged by then.
flushed=1
for n in default "${SEC_ECHOS[@]}"; do
	port=${SEC_ECHO_PORT[$n]:-$T_ECHO_PORT}
	curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$port/sentinel-$n" || true
	t_wait_log "echo-served $n \"GET /sentinel-$n " 30 || flushed=0
done
curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$SEC_NGINX_PORT/sentinel-nginx" || true
sec_wait_grep "$T_WORK/nginx/access.log" 'sentinel-nginx' 30 || flushed=0
curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$SEC_WSGI_PORT/sentinel-wsgi" || true
sec_wait_grep "$T_WORK/wsgi.log" 'sentinel-wsgi' 30 || flushed=0
[ "$flushed" = 1 ] || diag "a backend log was not flushed in time"
leaks=()
for e in "${SEC_REFUSED[@]}"; do
	tok=${e%% *}
	if grep -E "echo-served [^ ]+ \".*/$tok" "$T_WORK/haproxy.log" >/dev/null ||
		grep -F -- "/$tok" "$T_WORK/nginx/access.log" >/dev/null ||
		grep -F -- "/$tok" "$T_WORK/wsgi.log" >/dev/null; then
		leaks+=("${e#* }")
	fi
done
check_eq "backend logs: none of the ${#SEC_REFUSED[@]} refused requests reached a backend" \
	"${#leaks[@]}" 0
for e in "${leaks[@]}"; do diag "reached a backend: $e"; done

t_finish
