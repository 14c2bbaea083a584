#!/usr/bin/env bash
# Zero warnings (issue 10): "haproxy -c -dW" on haproxy-conf/haproxy.cfg,
# unchanged, with the optional variables unset and with each of them set
# (MTLS_FAIL_OPEN_HOSTS to an existing file, MTLS_VERDICT_HEADERS, the
# production MTLS_RUN_AS block). -dW turns every warning into a refusal,
# so a version that warns fails here. Then, when run as root, a real start
# with MTLS_RUN_AS set must log no warning (3.3+ warns at start, not in
# -c, when root keeps its privileges or runs without chroot).
# Honours HAPROXY= like every HAProxy test.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init
t_pki
CFG=$T_ROOT/haproxy-conf/haproxy.cfg
diag "$("$T_HAPROXY" -v 2>&1 | head -n 1)"

printf 'legacy.example.com\n' >"$T_WORK/fail-open.lst"
# The account the production block drops to; Debian's haproxy package
# creates it, the official image has uid 99 "haproxy" too.
run_as=haproxy
id "$run_as" >/dev/null 2>&1 || run_as=nobody
chroot_dir=$T_WORK/empty
mkdir -p "$chroot_dir"

# check_cfg NAME VAR=VALUE...: haproxy -c -dW with the base environment
# plus the given variables; every optional variable not given is unset.
check_cfg() {
	local name=$1 out
	shift
	if out=$(env -u MTLS_FAIL_OPEN_HOSTS -u MTLS_VERDICT_HEADERS \
		-u MTLS_RUN_AS -u MTLS_CHROOT \
		MTLS_BIND=127.0.0.1:1 \
		MTLS_SERVER_PEM="$T_PKI/server.pem" \
		MTLS_PLACEHOLDER_CA="$T_PKI/placeholder-ca.pem" \
		MTLS_SPOE_CONF="$T_ROOT/haproxy-conf/mtls-spoe.conf" \
		"$@" "$T_HAPROXY" -c -dW -f "$CFG" 2>&1) &&
		! grep -q '\[WARNING\]' <<<"$out"; then
		ok "haproxy -c -dW: $name"
	else
		not_ok "haproxy -c -dW: $name"
		diag "$(grep -v NOTICE <<<"$out" | head -n 20)"
	fi
}

check_cfg "optional variables unset"
check_cfg "MTLS_FAIL_OPEN_HOSTS set to a file" MTLS_FAIL_OPEN_HOSTS="$T_WORK/fail-open.lst"
check_cfg "MTLS_FAIL_OPEN_HOSTS set to /dev/null" MTLS_FAIL_OPEN_HOSTS=/dev/null
check_cfg "MTLS_VERDICT_HEADERS set" MTLS_VERDICT_HEADERS=1
check_cfg "MTLS_RUN_AS set (production)" MTLS_RUN_AS="$run_as" MTLS_CHROOT="$chroot_dir"
check_cfg "every optional variable set" MTLS_FAIL_OPEN_HOSTS="$T_WORK/fail-open.lst" \
	MTLS_VERDICT_HEADERS=1 MTLS_RUN_AS="$run_as" MTLS_CHROOT="$chroot_dir"

# A production start as root: no warning in the log. The agent and the
# application are not running; the health check's "agent1 is DOWN" and
# "no server available" lines are about them, not the configuration.
if [ "$(id -u)" = 0 ]; then
	T_HTTPS_PORT=$(t_free_port)
	(
		exec env -u MTLS_FAIL_OPEN_HOSTS -u MTLS_VERDICT_HEADERS \
			MTLS_BIND="127.0.0.1:$T_HTTPS_PORT" \
			MTLS_SERVER_PEM="$T_PKI/server.pem" \
			MTLS_PLACEHOLDER_CA="$T_PKI/placeholder-ca.pem" \
			MTLS_SPOE_CONF="$T_ROOT/haproxy-conf/mtls-spoe.conf" \
			MTLS_AGENT_ADDR="127.0.0.1:$(t_free_port)" \
			MTLS_RUN_AS="$run_as" MTLS_CHROOT="$chroot_dir" \
			"$T_HAPROXY" -db -f "$CFG"
	) >>"$T_WORK/haproxy.log" 2>&1 &
	T_HAPROXY_PID=$!
	if t_wait_port "$T_HTTPS_PORT" 50 && t_pid_alive "$T_HAPROXY_PID"; then
		ok "production start as root (MTLS_RUN_AS=$run_as) listens"
	else
		not_ok "production start as root (MTLS_RUN_AS=$run_as) listens"
	fi
	sleep 0.5
	t_stop_haproxy
	warn=$(grep -E '\[(WARNING|ALERT)\]' "$T_WORK/haproxy.log" |
		grep -vE 'agent1 is DOWN|be_mtls_agents. has no server available')
	check_eq "production start as root logs no warning" "$warn" ""
else
	ok "production start as root: not root, skipped # SKIP"
fi

t_finish
