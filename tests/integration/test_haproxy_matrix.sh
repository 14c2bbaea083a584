#!/usr/bin/env bash
# End-to-end matrix through a real HAProxy (issue 4), HTTP/1.1 and HTTP/2:
# every failure result reachable through TLS, mapped to 403 in enforce and
# to 200 + a warning log line in log mode; optional / off / wildcard /
# default policies; tenant isolation; SNI vs Host; missing SNI; client
# certificate header stripping and RFC 9440 forwarding; keep-alive; TLS
# session resumption; agent down and back; SIGHUP reload; the certificate
# variables (SHA-1, key identifiers, SAN lists, revoked) against what
# `openssl x509` prints, and Client-Cert-Chain (RFC 9440) forwarded
# exactly when verified.
# Runs haproxy-conf/haproxy.cfg and mtls-spoe.conf unchanged, and
# mtls-spoa.conf with one host added at its end: chain.example.org, whose
# [ca] holds tenant A's root alone, so that the intermediate is on the
# verified path (in the reference tenant-a bundle it is an anchor). The
# reload case edits a copy of the agent config.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init
t_need_agent
t_pki

{
	cat "$T_ROOT/haproxy-conf/mtls-spoa.conf"
	printf '\n[ca tenant-a-root]\nfile = tenant-a-root.pem\ncrl = tenant-a.crl\n'
	printf '[host chain.example.org]\nca = tenant-a-root\nmode = enforce\n'
} >"$T_WORK/matrix-spoa.conf"
t_start_agent "$T_WORK/matrix-spoa.conf" || { not_ok "agent starts"; exit 1; }
t_start_haproxy || { not_ok "haproxy starts"; exit 1; }
if t_wait_agent_state UP 15; then
	ok "setup: agent UP in HAProxy"
else
	not_ok "setup: agent UP in HAProxy"
	exit 1
fi

B64_A_VALID=$(t_cert_b64 a-valid)
B64_A_INTER=$(openssl x509 -in "$T_PKI/tenant-a-intermediate.pem" -outform DER | base64 -w 0)

# ossl_fields CERT: what `openssl x509` prints, in the agent's form
# (lowercase hex without colons; SAN lists ", "-separated per type), into
# O_SHA1 O_SKI O_AKI O_DNS O_URI O_EMAIL.
ossl_fields() {
	local crt=$T_PKI/$1.crt san item
	O_SHA1=$(openssl x509 -in "$crt" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g' | tr A-F a-f)
	O_SKI=$(openssl x509 -in "$crt" -noout -ext subjectKeyIdentifier 2>/dev/null |
		sed -n '2{s/[ :]//g; p}' | tr A-F a-f)
	O_AKI=$(openssl x509 -in "$crt" -noout -ext authorityKeyIdentifier 2>/dev/null |
		sed -n '2{s/^ *keyid://; s/[ :]//g; p}' | tr A-F a-f)
	san=$(openssl x509 -in "$crt" -noout -ext subjectAltName 2>/dev/null | sed -n '2{s/^ *//; p}')
	O_DNS='' O_URI='' O_EMAIL=''
	while IFS= read -r item; do
		case $item in
		DNS:*) O_DNS+=${O_DNS:+, }${item#DNS:} ;;
		URI:*) O_URI+=${O_URI:+, }${item#URI:} ;;
		email:*) O_EMAIL+=${O_EMAIL:+, }${item#email:} ;;
		esac
	done <<<"${san//, /$'\n'}"
}

# check_fields DESC CERT REVOKED: the certificate variables of the last
# response against openssl's view of CERT; REVOKED is 0, 1 or "" (absent).
check_fields() {
	ossl_fields "$2"
	check_eq "$1: fingerprint_sha1 = openssl -fingerprint -sha1" "$(t_hdr X-Mtls-Fingerprint-Sha1)" "$O_SHA1"
	check_eq "$1: ski = subjectKeyIdentifier ('$O_SKI')" "$(t_hdr X-Mtls-Ski)" "$O_SKI"
	check_eq "$1: issuer_ski = authorityKeyIdentifier ('$O_AKI')" "$(t_hdr X-Mtls-Issuer-Ski)" "$O_AKI"
	check_eq "$1: san_dns = subjectAltName DNS ('$O_DNS')" "$(t_hdr X-Mtls-San-Dns)" "$O_DNS"
	check_eq "$1: san_uri = subjectAltName URI ('$O_URI')" "$(t_hdr X-Mtls-San-Uri)" "$O_URI"
	check_eq "$1: san_email = subjectAltName email ('$O_EMAIL')" "$(t_hdr X-Mtls-San-Email)" "$O_EMAIL"
	check_eq "$1: revoked is '$3'" "$(t_hdr X-Mtls-Revoked)" "$3"
}

# expect_log DESC REGEX: an HAProxy log line must match (bounded wait).
expect_log() {
	if t_wait_log "$2"; then
		ok "$1"
	else
		not_ok "$1"
		diag "no log line matches: $2"
	fi
}

for proto in h1 h2; do
	if [ "$proto" = h1 ]; then pf=--http1.1; else pf=--http2; fi
	P=/m/$proto

	# --- enforce: api.example.com trusts tenant A (root + intermediate) ---
	t_expect "$proto enforce: valid certificate -> 200 ok" 200 ok \
		api.example.com a-valid "$P/valid" "$pf"
	check_eq "$proto enforce: backend gets RFC 9440 Client-Cert of the verified cert" \
		"$(t_body_field client-cert)" ":$B64_A_VALID:"
	check_eq "$proto enforce: verified is true" "$(t_hdr X-Mtls-Verified)" 1
	check_eq "$proto enforce: ca is tenant-a" "$(t_hdr X-Mtls-Ca)" tenant-a
	check_eq "$proto enforce: subject reported" "$(t_hdr X-Mtls-Subject)" \
		"CN=client-a.example.com,O=Tenant A"
	check_eq "$proto enforce: spiffe_id reported" "$(t_hdr X-Mtls-Spiffe-Id)" \
		"spiffe://tenant-a.example/client-a"
	want_fp=$(openssl x509 -in "$T_PKI/a-valid.crt" -outform DER |
		sha256sum | cut -d' ' -f1)
	check_eq "$proto enforce: fingerprint is the SHA-256 of the leaf" \
		"$(t_hdr X-Mtls-Fingerprint)" "$want_fp"
	expect_log "$proto enforce: log line records result, policy, CA, subject, fingerprint" \
		"$P/valid HTTP/.*mtls_action=allow mtls_result=ok mtls_mode=enforce mtls_policy=\"api.example.com\" mtls_ca=\"tenant-a\" .*mtls_subject=\"[^\"]*client-a.example.com[^\"]*\" mtls_fingerprint=$want_fp"

	check_fields "$proto enforce: a-valid" a-valid 0
	if [ -z "$O_SKI" ] || [ -z "$O_AKI" ] || [ -z "$O_EMAIL" ] || [[ $O_DNS != *", "* ]]; then
		not_ok "$proto a-valid has both key identifiers, an email and two DNS names"
	fi
	check_eq "$proto enforce: intermediate is an anchor of tenant-a: no Client-Cert-Chain" \
		"$(t_body_field client-cert-chain)" ""
	expect_log "$proto enforce: log line records issuer, serial, issuer_ski, revoked" \
		"$P/valid HTTP/.*mtls_issuer=\"CN=Tenant A Issuing CA 1,O=Tenant A\" mtls_serial=[0-9a-f]+ mtls_issuer_ski=$O_AKI mtls_revoked=0 "

	# --- Client-Cert-Chain: chain.example.org anchors on the root alone ---
	t_expect "$proto root anchor: valid certificate -> 200 ok" 200 ok \
		chain.example.org a-valid "$P/chain" "$pf" -H "Client-Cert-Chain: :$B64_A_VALID:"
	check_eq "$proto root anchor: ca is tenant-a-root" "$(t_hdr X-Mtls-Ca)" tenant-a-root
	check_eq "$proto root anchor: backend gets Client-Cert-Chain = the intermediate, not the client's" \
		"$(t_body_field client-cert-chain)" ":$B64_A_INTER:"
	check_eq "$proto root anchor: and Client-Cert" "$(t_body_field client-cert)" ":$B64_A_VALID:"
	t_expect "$proto root anchor: expired -> 403, no chain forwarded" 403 expired \
		chain.example.org a-expired "$P/chain-expired" "$pf"
	check_eq "$proto root anchor: expired: backend not reached" "$(t_body_field client-cert-chain)" ""
	t_expect "$proto root anchor: revoked -> 403 revoked" 403 revoked \
		chain.example.org a-revoked "$P/chain-revoked" "$pf"
	check_fields "$proto root anchor: a-revoked" a-revoked 1
	t_expect "$proto log mode: expired passes (log) with a forged Client-Cert-Chain" 200 expired \
		www.example.net a-expired "$P/log-chain" "$pf" -H "Client-Cert-Chain: :$B64_A_INTER:"
	check_eq "$proto log mode: unverified: the forged Client-Cert-Chain is stripped, none set" \
		"$(t_body_field client-cert-chain)" ""

	t_expect "$proto enforce: no certificate -> 403 no_cert" 403 no_cert \
		api.example.com none "$P/nocert" "$pf"
	t_expect "$proto enforce: rogue CA -> 403 untrusted" 403 untrusted \
		api.example.com rogue "$P/rogue" "$pf"
	t_expect "$proto enforce: expired -> 403 expired" 403 expired \
		api.example.com a-expired "$P/expired" "$pf"
	t_expect "$proto enforce: not yet valid -> 403 not_yet_valid" 403 not_yet_valid \
		api.example.com a-notyet "$P/notyet" "$pf"
	t_expect "$proto enforce: revoked (CRL) -> 403 revoked" 403 revoked \
		api.example.com a-revoked "$P/revoked" "$pf"
	t_expect "$proto enforce: serverAuth-only -> 403 bad_purpose" 403 bad_purpose \
		api.example.com a-server "$P/purpose" "$pf"
	# a-server has no key identifiers; purpose fails before the CRL check.
	check_fields "$proto bad_purpose: a-server (no SKI/AKI)" a-server ""
	t_expect "$proto tenants: tenant B's certificate on tenant A's host -> 403 untrusted" \
		403 untrusted api.example.com b-valid "$P/b-on-a" "$pf"
	t_expect "$proto tenants: tenant A's certificate on tenant B's host -> 403 untrusted" \
		403 untrusted other.example.com a-valid "$P/a-on-b" "$pf"
	t_expect "$proto tenants: tenant B's certificate on its own host -> 200 ok" \
		200 ok other.example.com b-valid "$P/b-on-b" "$pf"
	# tenant-b has no CRL: revocation not checked, revoked absent.
	check_fields "$proto tenants: b-valid" b-valid ""
	check_eq "$proto tenants: the root issued b-valid: no Client-Cert-Chain" \
		"$(t_body_field client-cert-chain)" ""
	t_expect "$proto SNI of an 'off' host, Host of an enforce host -> 403 host_mismatch" \
		403 host_mismatch public.example.com a-valid "$P/sni-off" "$pf" \
		-H "Host: api.example.com:$T_HTTPS_PORT"
	t_expect "$proto no SNI, Host of an enforce host -> 403 host_mismatch" \
		403 host_mismatch - a-valid "$P/nosni" "$pf" -H "Host: api.example.com"
	t_expect "$proto identity: allow-identity not matched -> 403 identity_mismatch" \
		403 identity_mismatch partner.example.com a-other "$P/identity" "$pf"
	t_expect "$proto identity: allowed identity, intermediate-only anchor -> 200 ok" \
		200 ok partner.example.com a-valid "$P/identity-ok" "$pf"
	check_eq "$proto identity: anchored by [ca tenant-a-issuing]" \
		"$(t_hdr X-Mtls-Ca)" tenant-a-issuing

	# --- log mode: *.example.net, failures pass and are logged ----------
	t_expect "$proto log: valid certificate -> 200 ok (wildcard policy)" 200 ok \
		www.example.net a-valid "$P/log-valid" "$pf"
	check_eq "$proto log: wildcard policy name" "$(t_hdr X-Mtls-Policy)" "*.example.net"
	for c in "none no_cert" "rogue untrusted" "a-expired expired" \
		"a-notyet not_yet_valid" "a-revoked revoked" "a-server bad_purpose" \
		"b-valid untrusted"; do
		read -r client res <<<"$c"
		t_expect "$proto log: $client -> 200 $res" 200 "$res" \
			www.example.net "$client" "$P/log-$client" "$pf"
		check_eq "$proto log: $client: action log" "$(t_hdr X-Mtls-Action)" log
		expect_log "$proto log: $client: warning-level log line with result $res" \
			"^<4>.*$P/log-$client HTTP/.*mtls_action=log mtls_result=$res "
	done
	t_expect "$proto log: unverified certificate is not forwarded" 200 expired \
		www.example.net a-expired "$P/log-noforward" "$pf"
	check_eq "$proto log: backend sees no Client-Cert" "$(t_body_field client-cert)" ""
	t_expect "$proto log: SNI/Host mismatch -> 200 host_mismatch" 200 host_mismatch \
		www.example.net a-valid "$P/log-mismatch" "$pf" \
		-H "Host: other.example.net:$T_HTTPS_PORT"
	expect_log "$proto log: host_mismatch logged at warning level" \
		"^<4>.*$P/log-mismatch HTTP/.*mtls_action=log mtls_result=host_mismatch "

	# --- optional / off / default ----------------------------------------
	t_expect "$proto optional: no certificate -> 200 no_cert" 200 no_cert \
		optional.example.com none "$P/opt-none" "$pf"
	check_eq "$proto optional: no certificate: action allow" "$(t_hdr X-Mtls-Action)" allow
	t_expect "$proto optional: valid certificate -> 200 ok" 200 ok \
		optional.example.com a-valid "$P/opt-valid" "$pf"
	t_expect "$proto optional: expired certificate -> 403 expired" 403 expired \
		optional.example.com a-expired "$P/opt-expired" "$pf"
	t_expect "$proto off: no certificate -> 200 no_policy" 200 no_policy \
		public.example.com none "$P/off-none" "$pf"
	t_expect "$proto off: untrusted certificate -> 200 no_policy" 200 no_policy \
		public.example.com rogue "$P/off-rogue" "$pf"
	check_eq "$proto off: certificate not forwarded (not verified)" \
		"$(t_body_field client-cert)" ""
	# Names no tenant policy covers fail closed ([host *] mode = deny).
	t_expect "$proto default [host *]: no certificate -> 403 no_policy (mode deny)" \
		403 no_policy www.example.org none "$P/default-none" "$pf"
	check_eq "$proto default: policy is *" "$(t_hdr X-Mtls-Policy)" "*"
	check_eq "$proto default: mode deny" "$(t_hdr X-Mtls-Mode)" deny
	t_expect "$proto default: even a valid certificate -> 403 no_policy" 403 no_policy \
		www.example.org a-valid "$P/default-valid" "$pf"
	check_eq "$proto default: backend not reached" "$(t_body_field client-cert)" ""

	# --- client certificate headers from the client are stripped ----------
	t_req public.example.com none "$P/forged" "$pf" \
		-H "Client-Cert: :$B64_A_VALID:" -H "Client-Cert-Chain: :$B64_A_VALID:"
	check_eq "$proto forged Client-Cert without a certificate is stripped" \
		"$(t_body_field client-cert)" ""
	check_eq "$proto forged Client-Cert-Chain is stripped" \
		"$(t_body_field client-cert-chain)" ""
	t_req api.example.com a-valid "$P/forged-2" "$pf" \
		-H "Client-Cert: :$(t_cert_b64 rogue):"
	check_eq "$proto forged Client-Cert is replaced by the verified one" \
		"$(t_body_field client-cert)" ":$B64_A_VALID:"
done

# --- the TLS layer: a certificate is requested, no CA names advertised ------
for tls in -tls1_2 -tls1_3; do
	hs=$(timeout 10 openssl s_client -connect "127.0.0.1:$T_HTTPS_PORT" "$tls" \
		-servername api.example.com -CAfile "$T_PKI/server-ca.pem" \
		</dev/null 2>/dev/null)
	if grep -q '^Requested Signature Algorithms' <<<"$hs" &&
		grep -q '^No client certificate CA names sent' <<<"$hs" &&
		! grep -qi 'placeholder' <<<"$hs"; then
		ok "TLS $tls: client certificate requested with an empty CA list"
	else
		not_ok "TLS $tls: client certificate requested with an empty CA list"
		diag "$(grep -iE 'CA names|Requested Sig|placeholder' <<<"$hs")"
	fi
done

# --- a message larger than the SPOE frame: fail closed ---------------------
# A client may send any chain; 40 copies of the intermediate do not fit a
# 16 KB SPOP frame, the SPOE sets txn.mtls.error (3: too big) -> 503.
{
	cat "$T_PKI/a-valid.crt"
	for ((i = 0; i < 40; i++)); do cat "$T_PKI/tenant-a-intermediate.pem"; done
} >"$T_PKI/a-bigchain.pem"
cp "$T_PKI/a-valid.key" "$T_PKI/a-bigchain.key"
t_req api.example.com a-bigchain /too-big
check_eq "oversized chain (frame too big): 503, fail closed" "$T_STATUS" 503
check_eq "oversized chain: txn.mtls.error is 3 (too big)" "$(t_hdr X-Mtls-Error)" 3

# --- several requests on one keep-alive connection -------------------------
for pf in --http1.1 --http2; do
	urls=()
	for i in 1 2 3 4 5; do
		urls+=("https://api.example.com:$T_HTTPS_PORT/keepalive$pf/$i")
	done
	out=$(curl -s "$pf" --max-time 10 --cacert "$T_PKI/server-ca.pem" \
		--cert "$T_PKI/a-valid.pem" --key "$T_PKI/a-valid.key" \
		--resolve "api.example.com:$T_HTTPS_PORT:127.0.0.1" \
		-w 'status=%{http_code} connects=%{num_connects}\n' "${urls[@]}")
	check_eq "keep-alive $pf: 5 requests answered 200" \
		"$(grep -c '^status=200 ' <<<"$out")" 5
	check_eq "keep-alive $pf: one TLS connection for all 5" \
		"$(grep -o 'connects=[0-9]*' <<<"$out" | awk -F= '{ n += $2 } END { print n }')" 1
	check_eq "keep-alive $pf: backend got Client-Cert on each request" \
		"$(grep -c "^client-cert=:$B64_A_VALID:$" <<<"$out")" 5
	check_eq "keep-alive $pf: a verdict per request in the log" \
		"$(grep -c "/keepalive$pf/[1-5] HTTP/.*mtls_result=ok" "$T_WORK/haproxy.log")" 5
done

# --- TLS session resumption: no chain is sent, the leaf still verifies -----
# openssl s_client: the first connection saves the session, the second
# resumes it (HAProxy then has the client certificate but no chain; the
# intermediate comes from the host's CA file).
sclient() { # sclient PATH [s_client args]
	local path=$1
	shift
	printf 'GET %s HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n' "$path" |
		timeout 10 openssl s_client -connect "127.0.0.1:$T_HTTPS_PORT" \
			-servername api.example.com -CAfile "$T_PKI/server-ca.pem" \
			-cert "$T_PKI/a-valid.crt" -key "$T_PKI/a-valid.key" \
			-cert_chain "$T_PKI/tenant-a-intermediate.pem" \
			-ign_eof "$@" 2>>"$T_WORK/s_client.err"
}
for tls in -tls1_3 -tls1_2; do
	rm -f "$T_WORK/sess.pem"
	first=$(sclient "/resume$tls/1" "$tls" -sess_out "$T_WORK/sess.pem")
	second=$(sclient "/resume$tls/2" "$tls" -sess_in "$T_WORK/sess.pem")
	if grep -q 'HTTP/1.1 200' <<<"$first" && grep -qi '^x-mtls-result: ok' <<<"$first"; then
		ok "resumption $tls: first full handshake -> 200 ok"
	else
		not_ok "resumption $tls: first full handshake -> 200 ok"
		diag "$(grep -iE '^(HTTP/|x-mtls-)' <<<"$first")"
	fi
	if grep -q '^Reused' <<<"$second"; then
		ok "resumption $tls: second connection resumed the session"
	else
		not_ok "resumption $tls: second connection resumed the session"
		diag "$(grep -E '^(New|Reused)' <<<"$second")"
	fi
	if grep -q 'HTTP/1.1 200' <<<"$second" && grep -qi '^x-mtls-result: ok' <<<"$second"; then
		ok "resumption $tls: resumed session (no chain) still verifies -> 200 ok"
	else
		not_ok "resumption $tls: resumed session (no chain) still verifies -> 200 ok"
		diag "$(grep -iE '^(HTTP/|x-mtls-)' <<<"$second")"
	fi
	if grep -q "^client-cert=:$B64_A_VALID:" <<<"$second"; then
		ok "resumption $tls: backend gets Client-Cert on the resumed session"
	else
		not_ok "resumption $tls: backend gets Client-Cert on the resumed session"
	fi
done

# --- agent down -> 503, back to normal after restart ------------------------
t_stop_agent
t_expect "agent stopped: enforce host -> 503" 503 "" api.example.com a-valid /down-1
t_expect "agent stopped: log host -> 503" 503 "" www.example.net a-valid /down-2
t_expect "agent stopped: off host -> 503" 503 "" public.example.com none /down-3
t_restart_agent || not_ok "agent restarts"
if t_wait_agent_state UP 15; then ok "agent restarted: UP again"; else not_ok "agent restarted: UP again"; fi
t_expect "agent restarted: valid certificate -> 200 ok" 200 ok api.example.com a-valid /up-1
t_expect "agent restarted: expired certificate -> 403 expired" 403 expired \
	api.example.com a-expired /up-2

# --- SIGHUP reload: add a CA and switch a host from log to enforce ---------
t_expect "before reload: tenant B on *.example.net -> 200 untrusted (log)" 200 untrusted \
	www.example.net b-valid /reload-0
t_expect "before reload: expired on *.example.net -> 200 expired (log)" 200 expired \
	www.example.net a-expired /reload-1
sed -i '/^\[host \*\.example\.net\]/,/^\[/{
s/^ca = tenant-a$/ca = tenant-a tenant-b/
s/^mode = log$/mode = enforce/
}' "$T_AGENT_CONF"
if ! grep -q '^ca = tenant-a tenant-b$' "$T_AGENT_CONF"; then
	not_ok "reload test edited the agent config"
fi
t_reload_agent
for ((i = 0; i < 50; i++)); do
	t_req www.example.net b-valid /reload-poll
	[ "$(t_hdr X-Mtls-Result)" = ok ] && break
	sleep 0.1
done
t_expect "after reload: tenant B on *.example.net -> 200 ok (CA added)" 200 ok \
	www.example.net b-valid /reload-2
check_eq "after reload: anchored by tenant-b" "$(t_hdr X-Mtls-Ca)" tenant-b
t_expect "after reload: expired on *.example.net -> 403 expired (enforce)" 403 expired \
	www.example.net a-expired /reload-3
check_eq "after reload: mode enforce" "$(t_hdr X-Mtls-Mode)" enforce

# A broken file is rejected and the live configuration keeps answering.
cp "$T_AGENT_CONF" "$T_WORK/good.conf"
printf '\n[host broken.example.com]\nca = no-such-ca\nmode = enforce\n' >>"$T_AGENT_CONF"
t_reload_agent
sleep 0.5
t_expect "broken reload rejected: *.example.net still enforced" 403 expired \
	www.example.net a-expired /reload-4
t_expect "broken reload rejected: still trusts tenant B" 200 ok \
	www.example.net b-valid /reload-5
if t_pid_alive "$T_AGENT_PID"; then ok "broken reload: agent still running"; else not_ok "broken reload: agent still running"; fi

t_finish
