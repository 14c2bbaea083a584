#!/usr/bin/env bash
# The per-connection verdict memo (haproxy-conf/haproxy.cfg, [agent]
# memo-ttl), with the reference configuration unchanged, through real TLS
# connections (memo_client.py, python3-h2):
# - 1,000 HTTP/2 streams for five Host spellings with different verdicts
#   (allow, deny, log; different policies), interleaved on one connection:
#   each must get exactly the answer its Host gets on a fresh connection;
# - Host variants (case, port, trailing dot, absolute URI, duplicate Host,
#   lists, HTTP/2 :authority vs host) after another host's verdict is
#   memoized: each gets the answer of a fresh connection;
# - a reload that changes a verdict reaches an open keep-alive connection
#   within memo_ttl (polled);
# - with the agent killed, an open connection keeps its memo for at most
#   memo_ttl, then fails closed;
# - memo-ttl = 0 turns the memo off.
# Honours HAPROXY= (the version matrix runs it on every version).
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init
t_need_agent
t_pki
diag "$("$T_HAPROXY" -v 2>&1 | head -n 1)"

t_python_h2 || exit 1

# On one connection the SNI is a.example.com (mode log, tenant A: a-valid
# is "ok"); every other Host is host_mismatch, with the action the
# stricter of its policy's and a.example.com's: b (enforce) deny, c (log)
# log, d (off) log with a.example.com's policy.
cat >"$T_WORK/memo.conf" <<EOF
[agent]
log-level = info

[ca tenant-a]
file = tenant-a-ca.pem

[ca tenant-b]
file = tenant-b-ca.pem

[host a.example.com]
ca = tenant-a
mode = log

[host b.example.com]
ca = tenant-b
mode = enforce

[host c.example.com]
ca = tenant-b
mode = log

[host d.example.com]
mode = off
EOF
t_start_agent "$T_WORK/memo.conf" || { not_ok "agent starts"; exit 1; }
t_start_haproxy || { not_ok "haproxy starts"; exit 1; }
t_wait_agent_state UP 10 || not_ok "agent UP in HAProxy"

memo_client() {
	t_tap < <("$T_PY_H2" "$T_ROOT/tests/integration/memo_client.py" "$1" \
		--port "$T_HTTPS_PORT" --pki "$T_PKI" --sni a.example.com --cert a-valid "${@:2}")
}

memo_client interleave
memo_client variants
if grep -q 'mtls_memo=hit' "$T_WORK/haproxy.log"; then
	ok "memo hits are logged (mtls_memo=hit)"
else
	not_ok "memo hits are logged (mtls_memo=hit)"
fi
memo_client expiry --agent-pid "$T_AGENT_PID" --agent-conf "$T_AGENT_CONF" \
	--agent-log "$T_WORK/agent.log"

# The agent killed: the memo lasts memo_ttl at most, then 503. Restarted
# on the same port for what follows.
memo_client agentdown --agent-pid "$T_AGENT_PID"
wait "$T_AGENT_PID" 2>/dev/null
T_AGENT_PID=
t_restart_agent || not_ok "agent restarts"
t_wait_agent_state UP 10 || not_ok "restarted agent UP in HAProxy"

# memo-ttl = 0: nothing is memoized.
sed -i 's/^\[agent\]$/[agent]\nmemo-ttl = 0/' "$T_AGENT_CONF"
n=$(grep -c reloaded "$T_WORK/agent.log")
t_reload_agent
for ((i = 0; i < 100; i++)); do
	[ "$(grep -c reloaded "$T_WORK/agent.log")" -gt "$n" ] && break
	sleep 0.05
done
memo_client disabled

t_finish
