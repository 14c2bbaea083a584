#!/usr/bin/env bash
# make valgrind: every unit test program, then a real agent session (the
# raw SPOP protocol suite, with the agent under valgrind), with zero
# memory errors and zero leaks. Prints TAP lines and "N passed, N failed".
set -u
BUILD=${BUILD:-build}
VG=(valgrind --quiet --error-exitcode=99 --leak-check=full
    "--show-leak-kinds=definite,indirect" "--errors-for-leak-kinds=definite,indirect"
    --track-fds=no)
passed=0
failed=0
for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	log=$(mktemp)
	if CMOCKA_MESSAGE_OUTPUT=TAP "${VG[@]}" "$t" >"$log" 2>&1; then
		echo "ok - valgrind $(basename "$t")"
		passed=$((passed + 1))
	else
		echo "not ok - valgrind $(basename "$t")"
		sed 's/^/#   /' "$log" | tail -40
		failed=$((failed + 1))
	fi
	rm -f "$log"
done

# The agent itself: the protocol suite starts it several times and
# requires exit status 0 after SIGTERM; under valgrind a leak or an error
# makes that 99. Threads: 2, so the worker hand-off is exercised.
log=$(mktemp)
if MTLS_BUILD=$BUILD MTLS_AGENT_WRAPPER="${VG[*]}" \
	python3 tests/integration/test_spop_protocol.py >"$log" 2>&1; then
	echo "ok - valgrind agent session (test_spop_protocol.py, $(grep -c '^ok' "$log") checks)"
	passed=$((passed + 1))
else
	echo "not ok - valgrind agent session"
	grep -E '^not ok|^#' "$log" | head -60
	failed=$((failed + 1))
fi
rm -f "$log"
# The admin listener: libmicrohttpd daemons on TCP and a unix socket,
# every endpoint, the per-policy series, a reload, and an admin
# connection still open at SIGTERM: the daemons stop cleanly, nothing
# leaks, the socket file is removed.
log=$(mktemp)
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
tests/pki/mkpki.sh "$work/pki" >/dev/null
sed 's/^\[agent\]$/[agent]\nmetrics-policy-label = on\nadmin-token-file = admin-tokens/' \
	haproxy-conf/mtls-spoa.conf >"$work/pki/mtls-spoa.conf"
token=$(openssl rand -hex 24)
(umask 077 && echo "valgrind:$token" >"$work/pki/admin-tokens")
sport=$(free_port)
aport=$(free_port)
"${VG[@]}" "$BUILD/mtls-spoa" -c "$work/pki/mtls-spoa.conf" -l "127.0.0.1:$sport" -t 2 \
	--state-dir "$work/state" \
	--admin-listen "127.0.0.1:$aport" --admin-listen "unix:$work/admin.sock" >"$log" 2>&1 &
vpid=$!
codes=
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$aport/healthz" && break; sleep 0.2; done
# /v1/status without, then with the token; a body read and handed to the
# API (400: a CA without certificates) and one over admin-max-body (413).
for u in /healthz /readyz /metrics /v1/status /nope; do
	codes="$codes $(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$aport$u")"
done
codes="$codes $(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Authorization: Bearer $token" \
	"http://127.0.0.1:$aport/v1/status")"
codes="$codes $(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Authorization: Bearer $token" \
	-H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' -d '{"name":"x"}' \
	"http://127.0.0.1:$aport/v1/cas")"
head -c 1100000 /dev/zero >"$work/big"
codes="$codes $(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Authorization: Bearer $token" \
	-H 'Transfer-Encoding: chunked' --data-binary "@$work/big" "http://127.0.0.1:$aport/v1/cas")"
codes="$codes $(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --unix-socket "$work/admin.sock" http://admin/metrics)"
"$BUILD/bench/spop-bench" -a "127.0.0.1:$sport" -n 200 -k "$work/pki/a-valid.pem" -k "$work/pki/rogue.pem" \
	--sni www.example.net --host www.example.net >/dev/null 2>&1 || codes="$codes bench-failed"
kill -HUP "$vpid"
sleep 2
python3 -c "import socket, time; s = socket.create_connection(('127.0.0.1', $aport)); time.sleep(3)" &
sleep 1
kill -TERM "$vpid"
wait "$vpid"
rc=$?
if [ "$rc" = 0 ] && [ "$codes" = " 200 200 200 401 404 200 400 413 200" ] && [ ! -e "$work/admin.sock" ]; then
	echo "ok - valgrind agent session with the admin listener (TCP and unix)"
	passed=$((passed + 1))
else
	echo "not ok - valgrind agent session with the admin listener (exit $rc, answers$codes)"
	grep -v '^20[0-9][0-9]-' "$log" | head -40 | sed 's/^/#   /'
	failed=$((failed + 1))
fi
wait
rm -rf "$log" "$work"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
