#!/usr/bin/env bash
# OCSP through HAProxy (issue 16), with OpenSSL's own responder
# (`openssl ocsp -index ... -port`) answering for a CA made here (the test
# PKI keeps no CA keys), which the reference agent configuration's
# [ca tenant-a] trusts instead of its own; haproxy-conf/haproxy.cfg
# unchanged:
#   - [ca tenant-a] with ocsp = hard: o-valid, good at the responder: 200 ok
#   - o-valid revoked in the responder's index: the next request after the
#     cached answer's life (ocsp-max-age = 2s) is 403 revoked; the time
#     from the revocation to the first denial is printed
#   - the responder stopped: a certificate never asked about
#     (o-other) is 403 revocation_unknown with ocsp = hard
#   - ocsp = soft (SIGHUP): the same certificate is 200 ok
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init
t_need_agent
t_pki

# A CA and two clients of it, in $T_PKI as t_req expects (NAME.pem with
# the chain, NAME.key).
export OPENSSL_CONF=/dev/null
P=$T_PKI
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$P/ocsp-ca.key" -out "$P/ocsp-ca.pem" -subj "/O=OCSP test/CN=OCSP Test CA" \
	-days 30 -addext basicConstraints=critical,CA:TRUE \
	-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
mkleaf() {
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:%s\n' \
		"$2" >"$P/$1.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$P/$1.key" -out "$P/$1.csr" -subj "/O=OCSP test/CN=$2" 2>/dev/null
	openssl x509 -req -in "$P/$1.csr" -CA "$P/ocsp-ca.pem" -CAkey "$P/ocsp-ca.key" \
		-set_serial "$3" -days 10 -extfile "$P/$1.ext" -out "$P/$1.crt" 2>/dev/null
	cat "$P/$1.crt" >"$P/$1.pem"
}
mkleaf o-valid client-a.example.com 0x1601
mkleaf o-other client-a2.example.com 0x1602

IDX=$T_WORK/ocsp-index.txt
# index line STATUS CERT: the `openssl ca` database format the responder
# reads (status, notAfter, revocation time, serial, file, subject).
index_line() {
	local st=$1 crt=$T_PKI/$2.crt end serial subj rev=
	end=$(date -u -d "$(openssl x509 -in "$crt" -noout -enddate | cut -d= -f2)" +%y%m%d%H%M%SZ)
	serial=$(openssl x509 -in "$crt" -noout -serial | cut -d= -f2)
	subj=$(openssl x509 -in "$crt" -noout -subject -nameopt compat | sed 's/^subject=//')
	[ "$st" = R ] && rev=$(date -u +%y%m%d%H%M%SZ)
	printf '%s\t%s\t%s\t%s\tunknown\t%s\n' "$st" "$end" "$rev" "$serial" "$subj"
}
write_index() {
	{ index_line "$1" o-valid; index_line V o-other; } >"$IDX.tmp"
	mv -f "$IDX.tmp" "$IDX"
	printf 'unique_subject = no\n' >"$IDX.attr"
}

OCSP_PID=
start_responder() {
	local try
	for try in 1 2 3; do
		OCSP_PORT=$(t_free_port)
		openssl ocsp -index "$IDX" -port "$OCSP_PORT" \
			-rsigner "$P/ocsp-ca.pem" -rkey "$P/ocsp-ca.key" \
			-CA "$P/ocsp-ca.pem" -ignore_err \
			>>"$T_WORK/ocsp.log" 2>&1 &
		OCSP_PID=$!
		# Probe with a real query: the responder serves one connection
		# at a time, and a bare connect (t_wait_port) would hold it.
		for ((i = 0; i < 50; i++)); do
			t_pid_alive "$OCSP_PID" || break
			openssl ocsp -issuer "$P/ocsp-ca.pem" -cert "$P/o-other.crt" \
				-url "http://127.0.0.1:$OCSP_PORT/" -CAfile "$P/ocsp-ca.pem" \
				-timeout 1 >/dev/null 2>&1 && return 0
			sleep 0.1
		done
		t_stop_pid "$OCSP_PID"
	done
	return 1
}
stop_responder() {
	[ -n "$OCSP_PID" ] && t_stop_pid "$OCSP_PID"
	OCSP_PID=
}
trap 'stop_responder' EXIT

write_index V
start_responder || { not_ok "openssl ocsp responder starts"; diag "$(cat "$T_WORK/ocsp.log")"; exit 1; }
ok "openssl ocsp responder starts on 127.0.0.1:$OCSP_PORT"

# The reference agent configuration, [ca tenant-a] trusting the CA made
# here, with OCSP on.
CONF=$T_WORK/mtls-spoa-ocsp.conf
sed -e "/^\[ca tenant-a\]/,/^\[/s#^file = .*#file = ocsp-ca.pem#" \
	-e "/^\[ca tenant-a\]/,/^\[/{/^crl = /d}" \
	-e "/^\[ca tenant-a\]/a ocsp = hard\nocsp-url = http://127.0.0.1:$OCSP_PORT/\nocsp-timeout = 500ms\nocsp-max-age = 2s" \
	"$T_ROOT/haproxy-conf/mtls-spoa.conf" >"$CONF"
# state-dir belongs in [agent]: put it right after the section header.
sed -i "/^\[agent\]/a state-dir = $T_WORK/state" "$CONF"
cp "$CONF" "$T_PKI/mtls-spoa-ocsp.conf"  # beside the PKI it names

t_start_agent "$T_PKI/mtls-spoa-ocsp.conf" || { not_ok "agent starts"; exit 1; }
ok "agent starts with ocsp = hard for [ca tenant-a]"
t_start_haproxy || { not_ok "haproxy starts"; exit 1; }
ok "haproxy starts with haproxy-conf/haproxy.cfg"
t_wait_agent_state UP 15 || diag "agent not UP yet"

t_expect "good at the responder: 200 ok" 200 ok api.example.com o-valid /good

# Revoke at the responder; poll until the first denial.
write_index R
t0=$(date +%s.%N)
got=
for ((i = 0; i < 100; i++)); do
	t_req api.example.com o-valid "/after-revoke-$i"
	if [ "$T_STATUS" = 403 ] && [ "$(t_hdr X-Mtls-Result)" = revoked ]; then
		got=$(echo "$(date +%s.%N) - $t0" | bc)
		break
	fi
	sleep 0.1
done
if [ -n "$got" ]; then
	ok "revoked at the responder: the next request after the cached answer ends is 403 revoked (${got} s after the revocation, ocsp-max-age 2s)"
	diag "time from revocation at the OCSP responder to first denial through HAProxy: ${got} s"
else
	not_ok "revoked at the responder: 403 revoked within 10 s"
	diag "got status $T_STATUS $(t_verdict); responder log: $(tail -n 5 "$T_WORK/ocsp.log")"
fi

stop_responder
t_expect "responder stopped, ocsp = hard: a certificate never asked about is 403 revocation_unknown" \
	403 revocation_unknown api.example.com o-other /down-hard

sed -i 's/^ocsp = hard$/ocsp = soft/' "$T_AGENT_CONF"
before=$(grep -c "reloaded " "$T_WORK/agent.log")
t_reload_agent
for ((i = 0; i < 50; i++)); do
	[ "$(grep -c "reloaded " "$T_WORK/agent.log")" -gt "$before" ] && break
	sleep 0.1
done
t_expect "responder stopped, ocsp = soft: the same certificate is 200 ok" \
	200 ok api.example.com o-other /down-soft
check "the missing answers are logged" grep -q "OCSP for serial .* unavailable" "$T_WORK/agent.log"

t_finish
