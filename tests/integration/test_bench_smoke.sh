#!/usr/bin/env bash
# test_bench_smoke.sh - a few seconds of spop-bench against the agent, so
# `make test` proves the load generator works: every message answered,
# zero errors, the verdict counts exactly what the certificate mix
# implies, the JSON line parses, and a dead address is reported as a
# failure (exit status 1), not as a fast benchmark.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init
t_need_agent

t_bench_bin || { t_finish; exit 1; }
ok "spop-bench is available ($BENCH_BIN)"

t_pki
t_start_agent || { not_ok "agent starts"; t_finish; exit 1; }

# 4 certificates, 2000 messages: each certificate exactly 500 times.
# a-valid -> ok/allow; a-expired -> expired/deny; b-valid and rogue ->
# untrusted/deny on api.example.com (tenant A, enforce).
out=$T_WORK/bench.out
timeout 30 "$BENCH_BIN" -a "127.0.0.1:$T_AGENT_PORT" -c 2 -p 8 -n 2000 --max-time 20 \
	-k "$T_PKI/a-valid.pem" -k "$T_PKI/a-expired.pem" -k "$T_PKI/b-valid.pem" \
	-k "$T_PKI/rogue.pem" --sni api.example.com --host api.example.com --json >"$out" 2>&1
rc=$?
check_eq "spop-bench -n 2000 exits 0" "$rc" 0
json=$(tail -n 1 "$out")
fields=$(python3 - "$json" <<'PY' 2>&1
import json, sys
j = json.loads(sys.argv[1])
print(j["sent"], j["answered"], j["errors"], j["results"]["ok"], j["results"]["expired"],
      j["results"]["untrusted"], j["actions"]["allow"], j["actions"]["deny"],
      int(j["msgs_per_s"] > 0 and j["latency_us"]["p50"] > 0
          and j["latency_us"]["p50"] <= j["latency_us"]["p99"] <= j["latency_us"]["p999"]))
PY
)
if [ "$(echo "$fields" | wc -w)" -eq 9 ]; then
	ok "the JSON line parses"
else
	not_ok "the JSON line parses"
	diag "$(cat "$out")"
	diag "$fields"
fi
read -r sent answered errors rok rexp runtr aallow adeny sane <<<"$fields"
check_eq "2000 messages sent" "${sent:-}" 2000
check_eq "every message answered" "${answered:-}" 2000
check_eq "zero errors" "${errors:-}" 0
check_eq "a-valid: 500 x result ok" "${rok:-}" 500
check_eq "a-expired: 500 x result expired" "${rexp:-}" 500
check_eq "b-valid and rogue: 1000 x result untrusted" "${runtr:-}" 1000
check_eq "actions: 500 allow" "${aallow:-}" 500
check_eq "actions: 1500 deny" "${adeny:-}" 1500
check_eq "rate and latency percentiles are positive and ordered" "${sane:-}" 1
if grep -q '^throughput: [0-9]* msg/s' "$out" && grep -q '^latency: p50 ' "$out"; then
	ok "text report has throughput and latency lines"
else
	not_ok "text report has throughput and latency lines"
	diag "$(cat "$out")"
fi

# A duration-bounded run stops on time.
t0=$(date +%s%N)
timeout 15 "$BENCH_BIN" -a "127.0.0.1:$T_AGENT_PORT" -c 2 -p 4 -d 1 \
	-k "$T_PKI/a-valid.pem" --sni api.example.com --host api.example.com --json \
	>"$T_WORK/dur.out" 2>&1
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check_eq "spop-bench -d 1 exits 0" "$rc" 0
if [ "$ms" -ge 900 ] && [ "$ms" -le 8000 ]; then
	ok "spop-bench -d 1 takes about a second ($ms ms)"
else
	not_ok "spop-bench -d 1 takes about a second ($ms ms)"
fi

# The trust-benchmark options. --host-variants: 128 messages, spellings
# 0..63 twice (case patterns, ports 1..63 in the Host, the SNI in the
# same case): every one names api.example.com, so every answer is ok.
jfield() { tail -n 1 "$1" | python3 -c "import json,sys; j=json.load(sys.stdin); print($2)" 2>&1; }
timeout 15 "$BENCH_BIN" -a "127.0.0.1:$T_AGENT_PORT" -c 1 -p 4 -n 128 --host-variants 64 \
	-k "$T_PKI/a-valid.pem" --sni api.example.com --host api.example.com --json \
	>"$T_WORK/var.out" 2>&1
check_eq "spop-bench --host-variants exits 0" "$?" 0
check_eq "128 spellings of the Host: 128 x result ok" \
	"$(jfield "$T_WORK/var.out" 'j["answered"], j["results"]["ok"]')" "128 128"
# --chain: the leaf alone, its chain from another file; --max-frame: a
# larger announced frame is negotiated down to the agent's.
timeout 15 "$BENCH_BIN" -a "127.0.0.1:$T_AGENT_PORT" -n 10 --max-frame 65536 \
	-k "$T_PKI/a-valid.crt" --chain "$T_PKI/tenant-a-intermediate.pem" \
	--sni api.example.com --host api.example.com --json >"$T_WORK/chain.out" 2>&1
check_eq "spop-bench --chain --max-frame exits 0" "$?" 0
check_eq "leaf + --chain: 10 x result ok" "$(jfield "$T_WORK/chain.out" 'j["results"]["ok"]')" 10
timeout 5 "$BENCH_BIN" -a "127.0.0.1:$T_AGENT_PORT" -n 1 --max-frame 100 \
	-k "$T_PKI/a-valid.pem" >/dev/null 2>&1
check_eq "spop-bench --max-frame below 256 is a usage error" "$?" 2
# --rate: 200 messages/s for a second, one in flight.
timeout 15 "$BENCH_BIN" -a "127.0.0.1:$T_AGENT_PORT" -c 1 -p 1 -r 200 -d 1 \
	-k "$T_PKI/a-valid.pem" --sni api.example.com --host api.example.com --json \
	>"$T_WORK/rate.out" 2>&1
check_eq "spop-bench -r 200 -d 1 exits 0" "$?" 0
sent=$(jfield "$T_WORK/rate.out" 'j["sent"]')
if [ "$sent" -ge 150 ] 2>/dev/null && [ "$sent" -le 210 ]; then
	ok "spop-bench -r 200 -d 1 sends about 200 messages ($sent)"
else
	not_ok "spop-bench -r 200 -d 1 sends about 200 messages ($sent)"
fi

# Errors are errors: nothing listens on this port.
dead=$(t_free_port)
timeout 15 "$BENCH_BIN" -a "127.0.0.1:$dead" -n 10 -k "$T_PKI/a-valid.pem" --json \
	>"$T_WORK/dead.out" 2>&1
rc=$?
check_eq "spop-bench against a closed port exits 1" "$rc" 1
check_eq "it reports the connect error" \
	"$(tail -n 1 "$T_WORK/dead.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["error_kinds"]["connect"])' 2>&1)" 1

# The agent saw a clean protocol: no warnings about our frames.
if grep -E '\[(warning|error)\]' "$T_WORK/agent.log" >/dev/null; then
	not_ok "the agent logged no warning or error"
	diag "$(grep -E '\[(warning|error)\]' "$T_WORK/agent.log" | head -n 5)"
else
	ok "the agent logged no warning or error"
fi
t_finish
