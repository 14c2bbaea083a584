#!/usr/bin/env bash
# Runs the demo tour non-interactively (tests/demo/demo.sh --check), so
# "make test" fails when the demo a new user runs first would show a wrong
# verdict. demo.sh prints its own ok / not ok lines; this adds that the
# operator's view (the log-mode verdict counters from /metrics) is shown.
set -u
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
timeout 110 bash "$here/../demo/demo.sh" --check >"$out" 2>&1
rc=$?
cat "$out"
if grep -q '^== Log mode in numbers' "$out" &&
	grep -qE '^  mtls_spoa_verdicts_total\{result="expired",action="log",mode="log"\} [0-9]+$' "$out"; then
	echo "ok - the demo prints the log-mode verdict counters from /metrics"
else
	echo "not ok - the demo prints the log-mode verdict counters from /metrics"
fi
exit "$rc"
