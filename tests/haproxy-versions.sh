#!/usr/bin/env bash
# The HAProxy version matrix (issue 10): every integration test that starts
# HAProxy, once per binary in HAPROXY_VERSIONS (space-separated paths or
# names on PATH; default: the "haproxy" on PATH). Prints tests/run.sh's
# output per test, one summary line per version
#   haproxy 3.4.0-64a335366 (/var/cache/haproxy-builds/3.4.0/haproxy): 120 passed, 0 failed in 300 s
# and ends with the usual "N passed, N failed"; exits non-zero on failure.
#
# A test starts HAProxy when it calls t_start_haproxy, runs "$T_HAPROXY"
# itself or runs the demo, so new HAProxy tests join the matrix by
# themselves. Each version's tests must show that version serving: at
# least one "ok - requests served by HAProxy VERSION (PATH)" line
# (test_haproxy_basic.sh, from the running process's /proc/PID/exe) naming
# that binary, else the version gets one more failure.
#
# The Docker engine test (test_docker_compose*.sh) pulls an image per
# version; it is left out unless MATRIX_DOCKER=1, which runs it with
# HAPROXY_IMAGE_VERSION set to the binary's MAJOR.MINOR. The loopback
# emulation of the compose stack (test_docker_static.sh) runs the given
# binary and is always in.
#
# Needs the agent built (MTLS_BUILD / BUILD, default build/); make
# test-haproxy-versions builds it first.
set -u
cd "$(dirname "$0")/.." || exit 1
export BUILD=${BUILD:-build}
versions=${HAPROXY_VERSIONS:-haproxy}

tests=()
for t in tests/integration/test_*.sh; do
	# shellcheck disable=SC2016 # a literal $T_HAPROXY is what we look for
	grep -qE 't_start_haproxy|"\$T_HAPROXY"|demo/demo\.sh|HAPROXY_IMAGE_VERSION' "$t" || continue
	case $(basename "$t") in
	test_docker_compose*) [ "${MATRIX_DOCKER:-0}" = 1 ] || continue ;;
	esac
	tests+=("$t")
done

total_p=0
total_f=0
summary=()
for bin in $versions; do
	path=$(command -v "$bin") && path=$(readlink -f "$path")
	if [ -z "$path" ] || [ ! -x "$path" ]; then
		echo "not ok - HAProxy binary $bin exists"
		summary+=("haproxy ? ($bin): 0 passed, 1 failed (no such binary)")
		total_f=$((total_f + 1))
		continue
	fi
	ver=$("$path" -v 2>/dev/null | awk 'NR == 1 { print $3 }')
	echo "######## HAProxy $ver ($path)"
	all=$(mktemp)
	out=$(mktemp)
	p=0 f=0 start=$(date +%s)
	# Counted as tests/run.sh counts: TAP lines, and a program that exits
	# non-zero without a failure line, or reports nothing, is one failure.
	for t in "${tests[@]}"; do
		HAPROXY=$path HAPROXY_IMAGE_VERSION=$(cut -d. -f1,2 <<<"$ver") \
			MTLS_BUILD=$BUILD bash "$t" >"$out" 2>&1
		rc=$?
		tp=$(grep -cE '^ok( |$)' "$out")
		tf=$(grep -cE '^not ok( |$)' "$out")
		if [ "$rc" -ne 0 ] && [ "$tf" -eq 0 ]; then
			echo "not ok - $t exited with status $rc" >>"$out"
			tf=1
		fi
		if [ "$tp" -eq 0 ] && [ "$tf" -eq 0 ]; then
			echo "not ok - $t ran no test" >>"$out"
			tf=1
		fi
		if [ "$tf" -gt 0 ]; then
			echo "=== $ver $(basename "$t"): $tp passed, $tf failed"
			sed 's/^/    /' "$out"
		else
			echo "=== $ver $(basename "$t"): $tp passed"
		fi
		cat "$out" >>"$all"
		p=$((p + tp))
		f=$((f + tf))
	done
	# The proof that this binary served requests (test_haproxy_basic.sh
	# reads it from the running process).
	if grep -qF "ok - requests served by HAProxy $ver ($path)" "$all"; then
		echo "ok - requests served by HAProxy $ver ($path)"
		p=$((p + 1))
	else
		echo "not ok - no test shows HAProxy $ver ($path) serving requests"
		f=$((f + 1))
	fi
	rm -f "$all"
	rm -f "$out"
	secs=$(($(date +%s) - start))
	summary+=("haproxy $ver ($path): $p passed, $f failed in $secs s")
	total_p=$((total_p + p))
	total_f=$((total_f + f))
done

echo "######## HAProxy versions"
for s in "${summary[@]}"; do
	echo "$s"
done
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
