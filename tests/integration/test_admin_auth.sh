#!/usr/bin/env bash
# test_admin_auth.sh - the admin listener's authentication and request
# bodies (README "Security model", /work/api-contract.md "Authentication"),
# over real HTTP with curl against a real agent:
#   /v1/... needs Authorization: Bearer TOKEN of the admin-token-file
#   (401 + WWW-Authenticate otherwise, header variants), every token of a
#   multi-token file works, HEAD; /metrics /healthz /readyz stay open and
#   GET/HEAD only; 404 JSON for an unknown /v1 path (no API wired); 413
#   for a body over admin-max-body with and without Content-Length; a
#   token file change applied at SIGHUP, a bad one refused at SIGHUP (old
#   tokens still work) and at start (FILE:LINE); without a token file, 403
#   on TCP and 200 on a unix socket.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init
t_need_agent
for tool in jq curl openssl; do
	command -v "$tool" >/dev/null || { not_ok "$tool is installed (make deps)"; t_finish; exit 1; }
done

t_pki
CONF=$T_PKI/mtls-spoa.conf
cp "$T_ROOT/haproxy-conf/mtls-spoa.conf" "$CONF"
# watch = off: reloads happen at our SIGHUPs only (the watch is tested
# at the end).
sed -i 's/^\[agent\]$/[agent]\nadmin-max-body = 4k\nwatch = off/' "$CONF"
t_admin_tokens "$CONF" ops monitoring.2 ci_bot
t_start_agent "$CONF" || { not_ok "agent starts with a token file"; t_finish; exit 1; }
A=http://127.0.0.1:$T_ADMIN_PORT

# req METHOD PATH [curl args]: status in $ST, body in $T_WORK/body,
# headers in $T_WORK/hdr.
req() {
	local m=$1 path=$2
	shift 2
	ST=$(curl -s --max-time 5 -X "$m" -o "$T_WORK/body" -D "$T_WORK/hdr" \
		-w '%{http_code}' "$@" "$A$path") || true
}
hdr() { # hdr NAME: the value of response header NAME
	grep -i "^$1:" "$T_WORK/hdr" | head -n 1 | cut -d' ' -f2- | tr -d '\r'
}
errst() { jq -r '.error.status' "$T_WORK/body" 2>/dev/null; }
auth() { echo "Authorization: Bearer $1"; }
# refused_reload WHAT MESSAGE: SIGHUP, then the agent's log must say the
# reload was rejected with MESSAGE (fixed string), within 5 s.
refused_reload() {
	local i
	t_reload_agent
	for ((i = 0; i < 50; i++)); do
		grep -qF "reload rejected, previous configuration stays live: $2" "$T_WORK/agent.log" && break
		sleep 0.1
	done
	check_eq "SIGHUP with $1: reload rejected with FILE:LINE" \
		"$(grep -cF "reload rejected, previous configuration stays live: $2" "$T_WORK/agent.log")" 1
}

# --- 401 --------------------------------------------------------------------
req GET /v1/status
check_eq "no Authorization: 401, WWW-Authenticate Bearer realm, JSON error" \
	"$ST|$(hdr WWW-Authenticate)|$(hdr Content-Type)|$(errst)" \
	"401|Bearer realm=\"mtls-spoa\"|application/json|401"
req GET /v1/status -H "$(auth "${T_TOKEN}x")"
check_eq "a token with one more character: 401" "$ST" 401
req GET /v1/status -H "$(auth "${T_TOKEN%?}")"
check_eq "a token with one character less: 401" "$ST" 401
req GET /v1/status -H "$(auth "$(openssl rand -hex 24)")"
check_eq "an unknown token: 401" "$ST" 401
req GET /v1/status -H "Authorization: Basic $(printf 'ops:%s' "$T_TOKEN" | base64 -w0)"
check_eq "Basic with the token as password: 401" "$ST" 401
req GET /v1/status -H "Authorization: $T_TOKEN"
check_eq "the token without a scheme: 401" "$ST" 401
req GET /v1/status -H "Authorization: Bearer"
check_eq "Bearer without a token: 401" "$ST" 401
req GET /v1/status -H "Authorization;"
check_eq "an empty Authorization header: 401" "$ST" 401
req GET /v1/status -H "Authorization: Bearer $T_TOKEN extra"
check_eq "Bearer TOKEN followed by another word: 401" "$ST" 401
req GET /v1/status -H "Authorization: Bearer:$T_TOKEN"
check_eq "Bearer:TOKEN (no space): 401" "$ST" 401
req HEAD /v1/status -I
check_eq "HEAD /v1/status without a token: 401" "$ST" 401
req POST /v1/cas -H 'Content-Type: application/json' -d '{"name":"x"}'
check_eq "POST /v1/cas without a token: 401, nothing handed on" "$ST $(errst)" "401 401"
head -c 100000 /dev/zero >"$T_WORK/big"
req POST /v1/cas --data-binary "@$T_WORK/big"
check_eq "a body over the limit without a token: 401 (authentication first)" "$ST" 401

# --- 200 --------------------------------------------------------------------
for n in ops monitoring.2 ci_bot; do
	req GET /v1/status -H "$(auth "${T_TOKENS[$n]}")"
	check_eq "token of \"$n\": GET /v1/status 200 JSON with Mtls-Generation" \
		"$ST $(hdr Content-Type) $(hdr Mtls-Generation) $(jq -r .generation "$T_WORK/body" 2>&1)" \
		"200 application/json 1 1"
done
req GET /v1/status -H "Authorization: bearer $T_TOKEN"
check_eq "the scheme is case-insensitive (bearer): 200" "$ST" 200
req GET /v1/status -H "Authorization: BEARER  $T_TOKEN  "
check_eq "BEARER, two spaces, trailing blanks (RFC 6750 1*SP): 200" "$ST" 200
req HEAD /v1/status -I -H "$(auth "$T_TOKEN")"
check_eq "HEAD /v1/status with a token: 200, no body" \
	"$ST $(grep -c '"generation"' "$T_WORK/body")" "200 0"
req POST /v1/status -H "$(auth "$T_TOKEN")"
check_eq "POST /v1/status: 405 Allow: GET, HEAD" "$ST $(hdr Allow) $(errst)" "405 GET, HEAD 405"
req OPTIONS /v1/status -H "$(auth "$T_TOKEN")"
check_eq "OPTIONS /v1/status: 501" "$ST $(errst)" "501 501"

# --- open paths, unknown paths ----------------------------------------------
for p in /healthz /readyz /metrics; do
	req GET "$p"
	check_eq "GET $p without a token: 200" "$ST" 200
done
req HEAD /metrics -I
check_eq "HEAD /metrics without a token: 200, headers only" "$ST $(grep -c '^mtls_spoa_' "$T_WORK/body")" "200 0"
req PUT /metrics -d x
check_eq "PUT /metrics: 405 Allow: GET, HEAD, JSON error" "$ST|$(hdr Allow)|$(errst)" "405|GET, HEAD|405"
req DELETE /healthz -H "$(auth "$T_TOKEN")"
check_eq "DELETE /healthz even with a token: 405" "$ST" 405
req GET /nope
check_eq "unknown open path: 404 JSON" "$ST $(errst)" "404 404"
req GET /v1/nope -H "$(auth "$T_TOKEN")"
check_eq "unknown /v1 path with a token: 404 JSON error shape" \
	"$ST $(hdr Content-Type) $(jq -r '.error | "\(.status) \(.message | length > 0)"' "$T_WORK/body")" \
	"404 application/json 404 true"
req GET /v1/nope
check_eq "unknown /v1 path without a token: 401" "$ST" 401
req DELETE /v1/hosts/%2A.example.com -H "$(auth "$T_TOKEN")"
check_eq "DELETE /v1/hosts/%2A.example.com with a token: no such host, 404" "$ST" 404

# --- bodies -------------------------------------------------------------------
head -c 4096 /dev/zero | tr '\0' a >"$T_WORK/4k"
head -c 4097 /dev/zero | tr '\0' a >"$T_WORK/4k1"
req POST /v1/cas -H "$(auth "$T_TOKEN")" -H 'Content-Type: application/json' --data-binary "@$T_WORK/4k"
check_eq "a body of exactly admin-max-body (4k) is read and handed to the API: 400, not JSON" "$ST $(errst)" "400 400"
req POST /v1/cas -H "$(auth "$T_TOKEN")" --data-binary "@$T_WORK/4k1"
check_eq "admin-max-body + 1 with Content-Length: 413 JSON" "$ST $(errst)" "413 413"
req POST /v1/cas -H "$(auth "$T_TOKEN")" -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary "@$T_WORK/4k"
check_eq "4k chunked: read and handed to the API, 400" "$ST $(errst)" "400 400"
req POST /v1/cas -H "$(auth "$T_TOKEN")" -H 'Transfer-Encoding: chunked' --data-binary "@$T_WORK/4k1"
check_eq "admin-max-body + 1 chunked (no Content-Length): 413 JSON" "$ST $(errst)" "413 413"
req PUT /v1/cas/x -H "$(auth "$T_TOKEN")" -H 'Transfer-Encoding: chunked' --data-binary "@$T_WORK/big"
check_eq "100 kB chunked: 413" "$ST" 413
# A declared 10 GB body is refused from its Content-Length, before any of
# it is sent (curl would wait for 100 Continue).
ST=$(python3 - "$T_ADMIN_PORT" "$T_TOKEN" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(("PUT /v1/cas/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer %s\r\n"
           "Content-Length: 10000000000\r\n\r\n" % sys.argv[2]).encode())
print(s.recv(100).split(b" ")[1].decode())
EOF
)
check_eq "Content-Length: 10000000000: 413 before a byte of body" "$ST" 413
curl -s --max-time 5 "$A/metrics" >/dev/null
req GET /healthz
check_eq "the listener still answers after the refusals" "$ST" 200

# --- reload -----------------------------------------------------------------
old_ops=$T_TOKEN
new_tok=$(openssl rand -hex 24)
printf '# rotated\nops:%s\nci_bot:%s\n' "$new_tok" "${T_TOKENS[ci_bot]}" >"$T_PKI/admin-tokens"
t_reload_agent
for _ in $(seq 50); do
	req GET /v1/status -H "$(auth "$new_tok")"
	[ "$ST" = 200 ] && break
	sleep 0.1
done
check_eq "SIGHUP: the new token of ops works" "$ST" 200
req GET /v1/status -H "$(auth "$old_ops")"
check_eq "SIGHUP: the old token of ops is refused" "$ST" 401
req GET /v1/status -H "$(auth "${T_TOKENS[monitoring.2]}")"
check_eq "SIGHUP: the token of a removed name is refused" "$ST" 401
gen=$(curl -s -H "$(auth "$new_tok")" "$A/v1/status" | jq -r .generation)
cp "$T_PKI/admin-tokens" "$T_WORK/good-tokens"
printf 'ops:%s\nshort:abc\n' "$new_tok" >"$T_PKI/admin-tokens"
refused_reload "a short token" "$T_PKI/admin-tokens:2: the token of \"short\" has 3 characters (16 to 256)"
req GET /v1/status -H "$(auth "${T_TOKENS[ci_bot]}")"
check_eq "after the refused reload the previous tokens still work, same generation" \
	"$ST $(jq -r .generation "$T_WORK/body")" "200 $gen"
cp "$T_WORK/good-tokens" "$T_PKI/admin-tokens"
chmod 644 "$T_PKI/admin-tokens"
refused_reload "a world-readable token file" "$T_PKI/admin-tokens:0: the token file is readable by other users (mode 0644): chmod o-rw it"
chmod 600 "$T_PKI/admin-tokens"
req GET /v1/status -H "$(auth "$new_tok")"
check_eq "... and the tokens live before still work" "$ST $(jq -r .generation "$T_WORK/body")" "200 $gen"
# A token never reaches the log, even in a refused line.
check_eq "no token in the agent's log" \
	"$(grep -c -e "$new_tok" -e "$old_ops" -e "${T_TOKENS[ci_bot]}" "$T_WORK/agent.log")" 0

# --- start refused --------------------------------------------------------------
printf 'ops:%s\nops:%s\n' "$new_tok" "$(openssl rand -hex 24)" >"$T_WORK/dup-tokens"
chmod 600 "$T_WORK/dup-tokens"
sed "s#^admin-token-file = .*#admin-token-file = $T_WORK/dup-tokens#" "$CONF" >"$T_PKI/dup.conf"
out=$("$T_AGENT_BIN" -c "$T_PKI/dup.conf" --check 2>&1)
rc=$?
check_eq "--check with a duplicate token name: exit 1, FILE:LINE" \
	"$rc $(grep -c "$T_WORK/dup-tokens:2: duplicate token name \"ops\" (first on line 1)" <<<"$out")" "1 1"
out=$(timeout 10 "$T_AGENT_BIN" -c "$T_PKI/dup.conf" -l "127.0.0.1:$(t_free_port)" --admin-listen none 2>&1)
rc=$?
check_eq "start with a duplicate token name: exit 1, FILE:LINE" \
	"$rc $(grep -c "dup-tokens:2: duplicate token name" <<<"$out")" "1 1"
sed "s#^admin-token-file = .*#admin-token-file = $T_WORK/none#" "$CONF" >"$T_PKI/none.conf"
out=$("$T_AGENT_BIN" -c "$T_PKI/none.conf" --check 2>&1)
check_eq "--check with a missing token file: exit 1, FILE:0" \
	"$? $(grep -c "$T_WORK/none:0: cannot open the token file: No such file or directory" <<<"$out")" "1 1"

# --- without a token file: unix sockets only; with one, unix needs it too -------
sed '/^admin-token-file = /d' "$CONF" >"$T_PKI/open.conf"
U_SOCK=$T_WORK/admin.sock
U_PORT=$(t_free_port)
U_ADMIN=$(t_free_port)
"$T_AGENT_BIN" -c "$T_PKI/open.conf" -l "127.0.0.1:$U_PORT" -t 1 \
	--admin-listen "127.0.0.1:$U_ADMIN" --admin-listen "unix:$U_SOCK" >>"$T_WORK/agent-open.log" 2>&1 &
U_PID=$!
t_wait_port "$U_ADMIN" 50
for _ in $(seq 50); do [ -S "$U_SOCK" ] && break; sleep 0.1; done
A=http://127.0.0.1:$U_ADMIN
req GET /v1/status
check_eq "no token file, TCP: /v1/status 403 with the contract's message" \
	"$ST|$(jq -r .error.message "$T_WORK/body")" \
	"403|no admin-token-file: /v1 is served on unix-socket listeners only"
req GET /v1/status -H "$(auth "$new_tok")"
check_eq "no token file, TCP, any bearer: 403" "$ST" 403
req GET /metrics
check_eq "no token file, TCP: /metrics 200" "$ST" 200
ust=$(curl -s --max-time 5 --unix-socket "$U_SOCK" -o "$T_WORK/body" -w '%{http_code}' http://admin/v1/status)
check_eq "no token file, unix socket: /v1/status 200" "$ust $(jq -r .generation "$T_WORK/body")" "200 1"
ust=$(curl -s --max-time 5 --unix-socket "$U_SOCK" -o "$T_WORK/body" -w '%{http_code}' http://admin/v1/nope)
check_eq "no token file, unix socket: unknown /v1 path 404" "$ust" 404
t_stop_pid "$U_PID"
check_eq "the open agent exits 0" "$T_STOP_RC" 0

sed '/^watch = off$/d' "$CONF" >"$T_PKI/watch.conf"
"$T_AGENT_BIN" -c "$T_PKI/watch.conf" -l "127.0.0.1:$U_PORT" -t 1 --admin-listen "unix:$U_SOCK" \
	>>"$T_WORK/agent-open.log" 2>&1 &
U_PID=$!
for _ in $(seq 50); do [ -S "$U_SOCK" ] && break; sleep 0.1; done
ust=$(curl -s --max-time 5 --unix-socket "$U_SOCK" -o /dev/null -w '%{http_code}' http://admin/v1/status)
check_eq "with a token file, unix socket without a token: 401" "$ust" 401
ust=$(curl -s --max-time 5 --unix-socket "$U_SOCK" -o /dev/null -w '%{http_code}' \
	-H "$(auth "$new_tok")" http://admin/v1/status)
check_eq "with a token file, unix socket with a token: 200" "$ust" 200
# watch = on: a new token file (renamed over the old one) is reloaded
# without SIGHUP.
tok3=$(openssl rand -hex 24)
(umask 077 && echo "ops:$tok3" >"$T_PKI/admin-tokens.new")
mv -f "$T_PKI/admin-tokens.new" "$T_PKI/admin-tokens"
for _ in $(seq 100); do
	ust=$(curl -s --max-time 5 --unix-socket "$U_SOCK" -o /dev/null -w '%{http_code}' \
		-H "$(auth "$tok3")" http://admin/v1/status)
	[ "$ust" = 200 ] && break
	sleep 0.1
done
check_eq "watch: a changed token file alone is reloaded, the new token works" "$ust" 200
t_stop_pid "$U_PID"
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$T_WORK/agent-open.log"; then
	not_ok "the other agents' log has no sanitizer reports"
	diag "$(grep -E -A5 'Sanitizer|runtime error:' "$T_WORK/agent-open.log" | head -n 30)"
fi
t_finish
