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
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
