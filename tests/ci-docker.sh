#!/usr/bin/env bash
# ci-docker.sh - the compose demo on a real container engine, for .ci/run.
#
# Starts the Docker-compatible engine (../shared/containers/engine.sh:
# podman serving the Docker API), runs
# tests/integration/test_docker_compose.sh against it with
# MTLS_DOCKER_REQUIRED=1 (no engine is a failure here, not a skip), stops
# the engine, prints the test's TAP lines and "N passed, N failed".
# HAPROXY_IMAGE_VERSION=X.Y.Z runs the stack on that HAProxy build, under
# the image tag X.Y.Z (HAPROXY_IMAGE_TAG) so that a cached 3.2 image is
# not taken for it. ENGINE_SH overrides the engine script's path.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENGINE_SH=${ENGINE_SH:-$ROOT/../shared/containers/engine.sh}
if [ -n "${HAPROXY_IMAGE_VERSION:-}" ]; then
	export HAPROXY_IMAGE_TAG=${HAPROXY_IMAGE_TAG:-$HAPROXY_IMAGE_VERSION}
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT

if [ ! -x "$ENGINE_SH" ]; then
	echo "not ok - container engine script $ENGINE_SH exists"
	echo "0 passed, 1 failed"
	exit 1
fi
if ! env=$("$ENGINE_SH" start 2>"$out"); then
	echo "not ok - the container engine starts ($ENGINE_SH start)"
	sed 's/^/# /' "$out" | tail -n 20
	echo "0 passed, 1 failed"
	exit 1
fi
eval "$env"
echo "ok - the container engine starts (DOCKER_HOST=${DOCKER_HOST:-})"

MTLS_DOCKER_REQUIRED=1 bash "$ROOT/tests/integration/test_docker_compose.sh" >"$out" 2>&1
rc=$?
"$ENGINE_SH" stop
cat "$out"
p=$(( $(grep -cE '^ok( |$)' "$out") + 1 ))
f=$(grep -cE '^not ok( |$)' "$out")
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
	echo "not ok - test_docker_compose.sh exited with status $rc"
	f=1
fi
echo "$p passed, $f failed"
[ "$f" -eq 0 ]
