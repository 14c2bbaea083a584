#!/usr/bin/env bash
# Runs the test layers and prints one summary line "N passed, N failed".
#
# Every test program speaks TAP: unit tests are cmocka binaries run with
# CMOCKA_MESSAGE_OUTPUT=TAP, integration tests are scripts that print
# "ok - name" / "not ok - name" lines. A program that exits non-zero
# without reporting a failure counts as one failure, so a crash is never
# silently green.
set -u
BUILD=${BUILD:-build}
TEST_ONLY=${TEST_ONLY:-all}
export MTLS_BUILD=$BUILD
passed=0
failed=0
failures=()

run_one() {
	local name=$1; shift
	local out rc p f
	out=$(mktemp)
	"$@" >"$out" 2>&1
	rc=$?
	p=$(grep -cE '^ok( |$)' "$out")
	f=$(grep -cE '^not ok( |$)' "$out")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name exited with status $rc" >>"$out"
		f=1
	fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name ran no test" >>"$out"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -gt 0 ]; then
		failures+=("$name")
		echo "=== $name: $p passed, $f failed"
		# Show the whole output of a failing program: it is the evidence.
		sed 's/^/    /' "$out"
	else
		echo "=== $name: $p passed"
	fi
	rm -f "$out"
}

if [ "$TEST_ONLY" = all ] || [ "$TEST_ONLY" = unit ]; then
	for t in "$BUILD"/tests/test_*; do
		[ -x "$t" ] || continue
		case "$t" in *.o) continue ;; esac
		CMOCKA_MESSAGE_OUTPUT=TAP run_one "unit/$(basename "$t")" "$t"
	done
fi

if [ "$TEST_ONLY" = all ] || [ "$TEST_ONLY" = integration ]; then
	for t in tests/integration/test_*; do
		[ -f "$t" ] || continue
		if [ -n "${TEST_FILTER:-}" ] && [[ "$t" != *"$TEST_FILTER"* ]]; then
			continue
		fi
		case "$t" in
		*.py) run_one "integration/$(basename "$t")" python3 "$t" ;;
		*.sh) run_one "integration/$(basename "$t")" bash "$t" ;;
		esac
	done
fi

if [ "${#failures[@]}" -gt 0 ]; then
	echo "failing: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
