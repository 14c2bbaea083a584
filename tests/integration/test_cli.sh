#!/usr/bin/env bash
# The command line: --version, --help, usage errors, --check on good and
# broken configurations (exact FILE:LINE messages and exit codes), start
# failures, and a SIGHUP reload with a broken file (rejected, old
# configuration still answering, checked with --probe and the log).
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init
t_pki
BIN=$T_AGENT_BIN
CONF=$T_WORK/pki/mtls-spoa.conf
cp "$T_ROOT/haproxy-conf/mtls-spoa.conf" "$CONF"

out=$("$BIN" --version 2>&1); rc=$?
check_eq "--version exits 0" "$rc" 0
case $out in "mtls-spoa "[0-9]*) ok "--version prints the version" ;; *) not_ok "--version prints the version: $out" ;; esac

out=$("$BIN" --help 2>&1); rc=$?
check_eq "--help exits 0" "$rc" 0
case $out in *"--check"*"--probe"*) ok "--help lists the options" ;; *) not_ok "--help lists the options" ;; esac

"$BIN" --no-such-option >/dev/null 2>&1; rc=$?
check_eq "unknown option exits 2" "$rc" 2
out=$("$BIN" -l 127.0.0.1 -c "$CONF" 2>&1); rc=$?
check_eq "-l without a port exits 2" "$rc" 2
case $out in *"127.0.0.1"*) ok "-l error names the address" ;; *) not_ok "-l error names the address: $out" ;; esac
out=$("$BIN" -l '::1:80' -c "$CONF" 2>&1); rc=$?
check_eq "unbracketed IPv6 exits 2" "$rc" 2
"$BIN" -t 65 -c "$CONF" >/dev/null 2>&1; rc=$?
check_eq "-t 65 exits 2" "$rc" 2

out=$("$BIN" -c "$CONF" --check 2>&1); rc=$?
check_eq "--check of the reference configuration exits 0" "$rc" 0
check_eq "--check prints a one-line summary" "$out" "OK: 3 CAs, 7 hosts"

# The same CA certificate under two [ca] sections with different CRLs:
# the configuration works (the CRL follows its issuer into both), but
# --check says so, naming both sections, and still exits 0.
split=$T_WORK/pki/split-crl.conf
printf '[ca with-crl]\nfile = tenant-a-ca.pem\ncrl = tenant-a.crl\n[ca without]\nfile = tenant-a-intermediate-only.pem\n[host api.example.com]\nca = without\n' >"$split"
so=$("$BIN" -c "$split" --check 2>"$T_WORK/err"); rc=$?
check_eq "--check of split CRL sections exits 0" "$rc" 0
check_eq "--check of split CRL sections: summary on stdout" "$so" "OK: 2 CAs, 1 hosts"
check_eq "--check of split CRL sections: one warning naming both sections" \
	"$(cat "$T_WORK/err")" \
	"$split:4: warning: CA certificate \"CN=Tenant A Issuing CA 1,O=Tenant A\" is in [ca with-crl] (line 1) and [ca without] with different CRLs; the CRLs it issued now apply through both"

# Broken files: exact location and message, exit 1, nothing on stdout.
expect_check_error() { # description file-content expected-stderr-prefix
	local f=$T_WORK/pki/broken.conf err so rc
	printf '%b' "$2" >"$f"
	so=$("$BIN" -c "$f" --check 2>"$T_WORK/err"); rc=$?
	err=$(cat "$T_WORK/err")
	if [ "$rc" = 1 ] && [ -z "$so" ] && [[ $err == "$f:$3"* ]]; then
		ok "--check: $1"
	else
		not_ok "--check: $1"
		diag "exit $rc, stdout '$so', stderr '$err', want prefix '$f:$3'"
	fi
}
expect_check_error "unknown key" '[agent]\nthreads = 2\nbogus = 1\n' "3: "
expect_check_error "unknown CA name" '[ca a]\nfile = tenant-a-ca.pem\n[host x.example]\nca = a nope\n' "4: "
expect_check_error "non-CA certificate in a CA file" '[ca a]\nfile = client-a.pem\n[host x.example]\nca = a\n' "2: "
expect_check_error "unreadable file" '[ca a]\nfile = missing.pem\n' "2: "
expect_check_error "duplicate host" '[ca a]\nfile = tenant-a-ca.pem\n[host X.example]\nca = a\n[host x.example.]\nca = a\n' "5: "
expect_check_error "bad mode" '[ca a]\nfile = tenant-a-ca.pem\n[host x.example]\nca = a\nmode = strict\n' "5: "
out=$("$BIN" -c "$T_WORK/nope.conf" --check 2>&1); rc=$?
check_eq "--check of a missing file exits 1" "$rc" 1
case $out in "$T_WORK/nope.conf"*) ok "missing file error names it" ;; *) not_ok "missing file error names it: $out" ;; esac

# Start failures: a port already taken.
python3 -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(10)' >"$T_WORK/busy" &
busy_pid=$!
for _ in $(seq 50); do [ -s "$T_WORK/busy" ] && break; sleep 0.1; done
busy_port=$(cat "$T_WORK/busy")
out=$(timeout 10 "$BIN" -c "$CONF" -l "127.0.0.1:$busy_port" 2>&1); rc=$?
kill "$busy_pid" 2>/dev/null
check_eq "a taken port makes the agent exit 1" "$rc" 1
case $out in *"cannot listen"*"127.0.0.1:$busy_port"*"in use"*) ok "the error names the address and the cause" ;;
*) not_ok "the error names the address and the cause"; diag "$out" ;; esac

# SIGHUP with a broken file: rejected, logged with FILE:LINE, old config
# keeps answering; then a good file is taken.
wait_agent_log() { # PATTERN TENTHS
	local i
	for ((i = 0; i < $2; i++)); do
		grep -Eq -- "$1" "$T_WORK/agent.log" && return 0
		sleep 0.1
	done
	return 1
}
t_start_agent "$CONF"
cp "$CONF" "$CONF.good"
printf '[host y.example]\nmode = nonsense\n' >>"$CONF"
kill -HUP "$T_AGENT_PID"
if wait_agent_log "reload rejected" 50; then ok "a broken reload is rejected"; else not_ok "a broken reload is rejected"; fi
if grep -q "reload rejected.*$CONF:[0-9]*: " "$T_WORK/agent.log"; then ok "the rejection names FILE:LINE"; else not_ok "the rejection names FILE:LINE"; fi
if "$BIN" --probe "127.0.0.1:$T_AGENT_PORT" >/dev/null 2>&1; then ok "the old configuration still answers"; else not_ok "the old configuration still answers"; fi
cp "$CONF.good" "$CONF"
kill -HUP "$T_AGENT_PID"
if wait_agent_log "reloaded .*generation 2" 50; then ok "a good reload is taken (generation 2)"; else not_ok "a good reload is taken (generation 2)"; fi
t_finish
