#!/usr/bin/env bash
# `include = conf.d/*.conf` and `watch = on`: the agent reloads by itself,
# without a signal, when a watched file changes. Verdicts are asked over
# SPOP (spoplib.py) and every wait polls against a deadline:
#   - --check counts the included files' CAs and hosts
#   - a host that no file names: no_policy
#   - a tenant file written into conf.d (temp name + rename): its host's
#     verdict changes within 1 s
#   - a Kubernetes ConfigMap update (new ..TIMESTAMP dir, ..data_tmp
#     renamed onto ..data): the verdict changes within 1 s
#   - a CA file overwritten in place with other bytes is picked up
#   - a broken tenant file changes nothing: the log says the reload was
#     rejected with FILE:LINE and the old verdict stays; the fix is
#     picked up
#   - the same bytes written again: no reload (debug log says so)
#   - a tenant file deleted: its host is gone (no_policy)
#   - watch = off: a change is not applied until SIGHUP
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init
t_need_agent
BIN=$T_AGENT_BIN
LOG=$T_WORK/agent.log
ETC=$T_WORK/etc
PKI=$T_WORK/certs
mkdir -p "$ETC/conf.d" "$ETC/ca" "$ETC/cm" "$PKI"

(cd "$T_ROOT/tests/integration" && python3 -c 'import sys, certs; certs.Pki(sys.argv[1])' "$PKI") ||
	{ not_ok "test PKI generated"; exit 1; }
cp "$PKI/ca-a.pem" "$ETC/ca/a.pem"
cp "$PKI/ca-b.pem" "$ETC/ca/b.pem"

# put FILE TEXT: write as tools do, to a temp name then rename over.
put() {
	printf '%b' "$2" >"$(dirname "$1")/.$(basename "$1").tmp"
	mv -f "$(dirname "$1")/.$(basename "$1").tmp" "$1"
}

# cm_publish N TEXT: what the kubelet does for a ConfigMap holding t2.conf.
cm_publish() {
	local ts="..2026_12_01_00_00_00.$1" old
	old=$(readlink "$ETC/cm/..data" 2>/dev/null || true)
	mkdir "$ETC/cm/$ts"
	printf '%b' "$2" >"$ETC/cm/$ts/t2.conf"
	ln -s "$ts" "$ETC/cm/..data_tmp"
	mv -T "$ETC/cm/..data_tmp" "$ETC/cm/..data"
	[ -e "$ETC/cm/t2.conf" ] || ln -s ..data/t2.conf "$ETC/cm/t2.conf"
	if [ -n "$old" ]; then rm -rf "${ETC:?}/cm/$old"; fi
}

# verdict WHAT HOST CLIENT WANT SECONDS: poll over SPOP until the verdict
# for HOST with CLIENT's certificate (alice: CA a, mallory: CA b) has
# WHAT (result or action) = WANT, for SECONDS at most, counted from the
# wall-clock time in $SINCE (set by mark, before the change) or from now.
# Prints what it last got and when; exit status 0 when it matched. With
# NEVER=1, succeeds only if it never matched in SECONDS.
verdict() {
	(cd "$T_ROOT/tests/integration" && timeout 30 python3 - "$PORT" "$PKI" "$@" <<'EOF'
import os, sys, time
import spoplib as S
port, pki, what, host, client, want, secs = sys.argv[1:8]
never = os.environ.get("NEVER") == "1"
der = open(os.path.join(pki, client + ".der"), "rb").read()
t0 = float(os.environ.get("SINCE") or time.time())
end = t0 + float(secs)
got = None
while True:
    try:
        c = S.Client(("127.0.0.1", int(port)), timeout=2)
        c.hello()
        v = c.notify(1, 1, [S.check_cert_message(cert=der, sni=host, host=host)]).vars()
        c.close()
        got = v.get(what, (None,))[0]
    except (OSError, S.Closed, S.ProtocolError) as e:
        got = "error: %s" % e
    if got == want and not never:
        print("%s=%s after %.3f s" % (what, got, time.time() - t0))
        sys.exit(0)
    if got == want and never:
        print("%s=%s after %.3f s (should not have)" % (what, got, time.time() - t0))
        sys.exit(1)
    if time.time() >= end:
        print("%s=%s after %.3f s" % (what, got, time.time() - t0))
        sys.exit(1 if not never else 0)
    time.sleep(0.02)
EOF
	)
}

# expect DESC WHAT HOST CLIENT WANT SECONDS (since the last mark)
expect() {
	local desc=$1 out
	shift
	if out=$(verdict "$@"); then ok "$desc ($out)"; else not_ok "$desc"; diag "$out"; fi
	SINCE=
}

# mark: the time of the change the next expect waits for.
mark() { SINCE=$(date +%s.%N); export SINCE; }
SINCE=""; export SINCE

# count PATTERN: lines of the agent log matching (grep -E).
count() { grep -cE -- "$1" "$LOG"; }

# wait_log PATTERN N SECONDS: until more than N lines match.
wait_log() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		[ "$(count "$1")" -gt "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

start_agent() {
	local try i
	for try in 1 2 3; do
		PORT=$(t_free_port)
		"$BIN" -c "$1" -l "127.0.0.1:$PORT" -t 2 --log-level debug >>"$LOG" 2>&1 &
		T_AGENT_PID=$!
		for ((i = 0; i < 100; i++)); do
			"$BIN" --probe "127.0.0.1:$PORT" >/dev/null 2>&1 && return 0
			t_pid_alive "$T_AGENT_PID" || break
			sleep 0.05
		done
		t_stop_agent
	done
	return 1
}

CONF=$ETC/mtls-spoa.conf
cat >"$CONF" <<'EOF'
[agent]
include = conf.d/*.conf
include = cm/*.conf

[ca a]
file = ca/a.pem
[ca b]
file = ca/b.pem
EOF
cm_publish 1 '[host t2.test]\nca = a\n'

out=$("$BIN" -c "$CONF" --check 2>/dev/null)
check_eq "--check counts over the included files" "$out" "OK: 2 CAs, 1 hosts"

if start_agent "$CONF"; then ok "agent starts with include and watch"; else
	not_ok "agent starts with include and watch"; diag "$(tail -n 20 "$LOG")"; exit 1
fi
pid=$T_AGENT_PID

expect "a host no file names: no_policy" result t1.test alice no_policy 2
expect "the ConfigMap's host: alice (CA a) ok" result t2.test alice ok 2

reloads=$(count "reloaded ")
mark
put "$ETC/conf.d/t1.conf" '[host t1.test]\nca = a\n'
expect "a tenant file renamed into conf.d applies within 1 s, no signal" \
	result t1.test alice ok 1
check "the agent reloaded by itself (log), same process" \
	test "$(count "reloaded ")" -gt "$reloads" -a "$T_AGENT_PID" = "$pid"
check "the log says what changed" grep -q "is included now: reloading\|match 2 files, not 1: reloading" "$LOG"

mark
cm_publish 2 '[host t2.test]\nca = b\n'
expect "a ConfigMap ..data swap applies within 1 s: alice untrusted" \
	result t2.test alice untrusted 1
expect "... and mallory (CA b) ok" result t2.test mallory ok 1

mark
cat "$PKI/ca-b.pem" >"$ETC/ca/a.pem"
expect "a CA file overwritten in place: [ca a] now trusts mallory" \
	result t1.test mallory ok 2
expect "... and no longer alice" result t1.test alice untrusted 1
mark
cat "$PKI/ca-a.pem" >"$ETC/ca/a.pem"
expect "the CA file restored: alice ok again" result t1.test alice ok 2

rejected=$(count "reload rejected")
reloads=$(count "reloaded ")
put "$ETC/conf.d/t1.conf" '[host t1.test]\nca = a\nmode = deny\nthis line is broken\n'
if wait_log "reload rejected, previous configuration stays live: $ETC/conf.d/t1.conf:4: syntax error" \
	"$rejected" 3; then
	ok "a broken tenant file: reload rejected with FILE:LINE in the log"
else
	not_ok "a broken tenant file: reload rejected with FILE:LINE in the log"
	diag "$(grep -E 'reload|watch' "$LOG" | tail -n 5)"
fi
expect "... and the old verdict stays" result t1.test alice ok 1
check_eq "... and nothing was installed" "$(count "reloaded ")" "$reloads"

mark
put "$ETC/conf.d/t1.conf" '[host t1.test]\nmode = deny\n'
expect "the fixed file is picked up (mode = deny)" action t1.test alice deny 2

same=$(count "did not change")
reloads=$(count "reloaded ")
put "$ETC/conf.d/t1.conf" '[host t1.test]\nmode = deny\n'
if wait_log "did not change" "$same" 3; then ok "the same bytes again: seen, no reload (debug log)"; else
	not_ok "the same bytes again: seen, no reload (debug log)"
fi
check_eq "... nothing reloaded" "$(count "reloaded ")" "$reloads"

mark
rm "$ETC/conf.d/t1.conf"
expect "a tenant file deleted: its host is gone" result t1.test alice no_policy 1

reloads=$(count "reloaded ")
kill -HUP "$T_AGENT_PID"
check "SIGHUP still reloads with watch on" wait_log "reloaded " "$reloads" 3
t_stop_agent
check_eq "agent exits 0 on SIGTERM" "$T_AGENT_RC" 0

# watch = off: changes wait for SIGHUP.
sed -i 's/^\[agent\]$/[agent]\nwatch = off/' "$CONF"
if start_agent "$CONF"; then ok "agent starts with watch = off"; else
	not_ok "agent starts with watch = off"; diag "$(tail -n 20 "$LOG")"; exit 1
fi
mark
put "$ETC/conf.d/t5.conf" '[host t5.test]\nca = a\n'
out=$(NEVER=1 verdict result t5.test alice ok 1.5)
check "watch = off: a new tenant file is not applied by itself ($out)" test $? -eq 0
mark
kill -HUP "$T_AGENT_PID"
expect "watch = off: SIGHUP applies it" result t5.test alice ok 2

if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$LOG"; then
	not_ok "agent log has no sanitizer reports"
	diag "$(grep -E -A5 'Sanitizer|runtime error:' "$LOG" | head -n 40)"
fi
t_finish
