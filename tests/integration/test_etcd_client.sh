#!/usr/bin/env bash
# The etcd client (agent/etcd.c) against a real single-member etcd on
# free loopback ports in a temp dir: runs the live part of the unit test
# $MTLS_BUILD/tests/test_etcd with MTLS_ETCD_ENDPOINT set (range of an
# empty prefix, txn puts, pagination over more keys than a page, a
# mod_revision conflict writes nothing, range_end compares, deletes, the
# watch sees put+delete in order, etcd_stop ends a watch within 1 s,
# compaction -> ETCD_COMPACTED, failover past a dead or silent endpoint,
# all endpoints dead -> ETCD_UNAVAILABLE within the timeout); then with
# auth enabled (user root, token TTL 1 s) all of it again, authenticated,
# plus refusals and a new token after the old one expired; then on a
# second etcd serving https with client-certificate authentication
# (certificates made here), all of it over TLS. This script
# builds nothing. Skipped when /usr/bin/etcd is missing.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

ETCD=${ETCD:-/usr/bin/etcd}
if [ ! -x "$ETCD" ] || ! command -v etcdctl >/dev/null; then
	echo "ok - # SKIP etcd not installed"
	exit 0
fi
case $MTLS_BUILD in
/*) BIN=$MTLS_BUILD/tests/test_etcd ;;
*) BIN=$T_ROOT/$MTLS_BUILD/tests/test_etcd ;;
esac

t_init
ETCD_PID=
etcd_cleanup() {
	local rc=$?
	if [ -n "$ETCD_PID" ]; then t_stop_pid "$ETCD_PID"; fi
	(exit "$rc")
	t_cleanup
}
trap etcd_cleanup EXIT

if [ ! -x "$BIN" ]; then
	not_ok "unit test binary $BIN exists (make BUILD=$MTLS_BUILD unit)"
	exit 1
fi

# start_etcd SCHEME [CURL-TLS-ARGS -- ETCD-TLS-ARGS]: on two free ports;
# a port may be taken between picking and binding, so try a few times.
start_etcd() {
	local scheme=$1 cport pport i
	local -a copt=() eopt=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do copt+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	eopt=("$@")
	for _ in 1 2 3; do
		cport=$(t_free_port)
		pport=$(t_free_port)
		rm -rf "$T_WORK/etcd"
		"$ETCD" --name t --data-dir "$T_WORK/etcd" --auth-token-ttl 1 \
			--listen-client-urls "$scheme://127.0.0.1:$cport" \
			--advertise-client-urls "$scheme://127.0.0.1:$cport" \
			--listen-peer-urls "http://127.0.0.1:$pport" \
			--initial-advertise-peer-urls "http://127.0.0.1:$pport" \
			--initial-cluster "t=http://127.0.0.1:$pport" "${eopt[@]}" \
			>"$T_WORK/etcd.log" 2>&1 &
		ETCD_PID=$!
		EP=$scheme://127.0.0.1:$cport
		# Ready when a range answers (a leader exists), 15 s at most.
		for ((i = 0; i < 150; i++)); do
			t_pid_alive "$ETCD_PID" || break
			if curl -sf --max-time 1 "${copt[@]}" "$EP/v3/kv/range" \
				-d '{"key":"AA=="}' -o /dev/null; then
				return 0
			fi
			sleep 0.1
		done
		t_stop_pid "$ETCD_PID"
		ETCD_PID=
	done
	return 1
}

if ! start_etcd http; then
	not_ok "etcd starts"
	diag "$(tail -n 20 "$T_WORK/etcd.log")"
	exit 1
fi
ok "etcd starts ($($ETCD --version | head -n 1))"

# run_live PHASE [ENV...]: the unit test with the endpoint; cmocka's TAP
# lines ("ok 3 - name", "not ok 4 - name") as ours.
run_live() {
	local phase=$1 out rc line name
	shift
	out=$(env MTLS_ETCD_ENDPOINT="$EP" CMOCKA_MESSAGE_OUTPUT=TAP "$@" \
		timeout 120 "$BIN" 2>&1)
	rc=$?
	while IFS= read -r line; do
		name="$phase: ${line#* - }"
		case $line in
		"not ok "[0-9]*) not_ok "$name" ;;
		*"# SKIP"*) not_ok "$name (skipped with an endpoint)" ;;
		"ok "[0-9]*) ok "$name" ;;
		*) diag "$line" ;;
		esac
	done <<<"$out"
	check_eq "$phase: test_etcd exits 0" "$rc" 0
}

run_live plain

export ETCDCTL_API=3
if etcdctl --endpoints="$EP" user add root:rootpw >"$T_WORK/auth.log" 2>&1 &&
	etcdctl --endpoints="$EP" user grant-role root root >>"$T_WORK/auth.log" 2>&1 &&
	etcdctl --endpoints="$EP" auth enable >>"$T_WORK/auth.log" 2>&1; then
	ok "auth enabled"
	run_live auth MTLS_ETCD_USER=root MTLS_ETCD_PASSWORD=rootpw
else
	not_ok "auth enabled"
	diag "$(cat "$T_WORK/auth.log")"
fi
check "etcd still running" t_pid_alive "$ETCD_PID"
t_stop_pid "$ETCD_PID"
ETCD_PID=

# TLS: a CA, a server certificate for 127.0.0.1 (also a client one: the
# gateway inside etcd dials etcd with it), a client certificate.
T=$T_WORK/tls
mkdir -p "$T"
printf '[srv]\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n[cli]\nextendedKeyUsage=clientAuth\n' >"$T/ext.cnf"
mk_cert() {   # NAME CN EXT
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$T/$1.key" -out "$T/$1.csr" -subj "/CN=$2" &&
		openssl x509 -req -in "$T/$1.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
			-CAcreateserial -out "$T/$1.pem" -days 1 -extfile "$T/ext.cnf" \
			-extensions "$3"
}
if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$T/ca.key" -out "$T/ca.pem" -subj /CN=test-etcd-ca -days 1 \
	>"$T/log" 2>&1 && mk_cert srv 127.0.0.1 srv >>"$T/log" 2>&1 &&
	mk_cert cli client cli >>"$T/log" 2>&1; then
	ok "TLS certificates made"
else
	not_ok "TLS certificates made"
	diag "$(cat "$T/log")"
fi
if start_etcd https --cacert "$T/ca.pem" --cert "$T/cli.pem" --key "$T/cli.key" -- \
	--cert-file "$T/srv.pem" --key-file "$T/srv.key" --client-cert-auth \
	--trusted-ca-file "$T/ca.pem"; then
	ok "etcd over TLS starts"
	ETCDCTL_CACERT=$T/ca.pem ETCDCTL_CERT=$T/cli.pem ETCDCTL_KEY=$T/cli.key \
		run_live tls MTLS_ETCD_CA_FILE="$T/ca.pem" \
		MTLS_ETCD_CERT_FILE="$T/cli.pem" MTLS_ETCD_KEY_FILE="$T/cli.key"
else
	not_ok "etcd over TLS starts"
	diag "$(tail -n 20 "$T_WORK/etcd.log")"
fi
echo "# $T_PASS passed, $T_FAIL failed"
[ "$T_FAIL" -eq 0 ]
