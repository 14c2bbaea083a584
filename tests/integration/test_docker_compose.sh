#!/usr/bin/env bash
# The compose demo run for real (issue 10), doing what README "Run with
# Docker" tells a Docker user: build, up --build, the tour's exit code,
# the health check, the published port (127.0.0.1 only) with the PKI
# copied out of the volume, --check and kill -s HUP on the agent, down -v.
#
# Needs a container engine: DOCKER_HOST, or a local Docker that answers
# "docker info" (tests/ci-docker.sh starts one). Without one it prints a
# single SKIP line, unless MTLS_DOCKER_REQUIRED=1, which turns the skip
# into a failure (CI must not pass on an engine that did not start).
#
# Environment: MTLS_DEMO_PORT (host port; default: a free one),
# HAPROXY_IMAGE_TAG (the haproxy image tag compose runs, default 3.2),
# HAPROXY_IMAGE_VERSION (when set, the version "haproxy -v" must show in
# the haproxy container: tests/ci-docker.sh has engine.sh build that
# image). Unique compose project per run; the EXIT trap runs down -v.
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
t_init
ROOT=$T_ROOT
COMPOSE_FILE=$ROOT/docker/compose.yaml

if [ -z "${DOCKER_HOST:-}" ] && ! timeout 20 docker info >/dev/null 2>&1; then
	if [ "${MTLS_DOCKER_REQUIRED:-0}" = 1 ]; then
		not_ok "a container engine is reachable (DOCKER_HOST unset, docker info fails)"
		exit 1
	fi
	ok "docker compose demo # SKIP no container engine reachable (DOCKER_HOST unset, no local docker)"
	exit 0
fi
for c in docker docker-compose curl ss; do
	command -v "$c" >/dev/null || { not_ok "$c is installed (make deps)"; exit 1; }
done
if ! out=$(timeout 20 docker info 2>&1); then
	not_ok "docker info answers (DOCKER_HOST=${DOCKER_HOST:-})"
	diag "$out"
	exit 1
fi

PROJECT=mtlsdc$$
MTLS_DEMO_PORT=${MTLS_DEMO_PORT:-$(t_free_port)}
PORT=$MTLS_DEMO_PORT
export MTLS_DEMO_PORT
dc() { docker-compose -f "$COMPOSE_FILE" -p "$PROJECT" "$@"; }
UP_PID=

dc_cleanup() {
	dc down -v --remove-orphans >/dev/null 2>&1
	[ -n "$UP_PID" ] && t_stop_pid "$UP_PID"
	t_cleanup
}
trap dc_cleanup EXIT

# cid SERVICE: the id of the service's (first) container, also stopped ones.
cid() { dc ps -a -q "$1" 2>/dev/null | head -n 1; }
# wait_for SECONDS COMMAND...: poll every 0.5 s until COMMAND succeeds.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	while ! "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.5
	done
}
phase() { diag "$(printf '%-8s %4d s' "$1" "$((SECONDS - T0))")"; T0=$SECONDS; }
T0=$SECONDS
START=$SECONDS

# --- build ----------------------------------------------------------------
if timeout 1200 docker-compose -f "$COMPOSE_FILE" -p "$PROJECT" build >"$T_WORK/build.log" 2>&1; then
	ok "docker-compose build"
else
	not_ok "docker-compose build"
	diag "$(tail -n 30 "$T_WORK/build.log")"
	exit 1
fi
if grep -qi 'useradd warning\|groupadd warning' "$T_WORK/build.log"; then
	not_ok "runtime stage: useradd/groupadd print no warning"
	diag "$(grep -i 'add warning' "$T_WORK/build.log")"
else
	ok "runtime stage: useradd/groupadd print no warning"
fi
phase build

# --- up --build, in the foreground as the README runs it ------------------
dc up --build >"$T_WORK/up.log" 2>&1 &
UP_PID=$!
tour_exited() {
	local id
	id=$(cid tour)
	[ -n "$id" ] && [ "$(docker inspect -f '{{.State.Status}}' "$id" 2>/dev/null)" = exited ]
}
if wait_for 300 tour_exited; then
	rc=$(docker inspect -f '{{.State.ExitCode}}' "$(cid tour)")
	docker logs "$(cid tour)" >"$T_WORK/tour.log" 2>&1
	np=$(grep -cE '^ok ' "$T_WORK/tour.log")
	nf=$(grep -cE '^not ok ' "$T_WORK/tour.log")
	if [ "$rc" = 0 ] && [ "$nf" = 0 ] && [ "$np" -ge 10 ]; then
		ok "up --build: the tour exits 0 ($np checks)"
	else
		not_ok "up --build: the tour exits 0 (exit $rc, $np ok, $nf not ok)"
		diag "$(tail -n 40 "$T_WORK/tour.log")"
	fi
else
	not_ok "up --build: the tour runs to its end within 300 s"
	diag "$(tail -n 40 "$T_WORK/up.log")"
	exit 1
fi
check_eq "pki exits 0" "$(docker inspect -f '{{.State.ExitCode}}' "$(cid pki)" 2>&1)" 0
phase up+tour

# --- health check -----------------------------------------------------------
AGENT=$(cid agent)
HAP=$(cid haproxy)
healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$AGENT" 2>/dev/null)" = healthy ]; }
if wait_for 60 healthy; then
	ok "agent container health is healthy (mtls-spoa --probe)"
else
	not_ok "agent container health is healthy"
	diag "$(docker inspect -f '{{json .State.Health}}' "$AGENT" 2>&1 | head -c 2000)"
fi
# The image's own HEALTHCHECK survives the build (podman's OCI format
# would drop it; its Docker API builds Docker format, but its Docker API
# image inspect shows no Healthcheck: ask podman itself then).
img=$(docker inspect -f '{{.Image}}' "$AGENT")
hc=$(docker image inspect -f '{{json .Config.Healthcheck}}' "$img" 2>&1)
if [ "$hc" = null ] && command -v podman >/dev/null; then
	hc=$(podman image inspect -f '{{json .Config.Healthcheck}} {{.ManifestType}}' "$img" 2>&1)
fi
if [[ $hc == *'--probe'*'127.0.0.1:12345'* ]]; then
	ok "the agent image keeps its HEALTHCHECK (${hc##* })"
else
	not_ok "the agent image keeps its HEALTHCHECK"
	diag "Config.Healthcheck: $hc"
fi

# --- the published port: 127.0.0.1 only ----------------------------------
check_eq "docker port: 8443 is published on 127.0.0.1:$PORT only" \
	"$(docker port "$HAP" 8443/tcp 2>&1 | sort -u | tr '\n' ' ')" "127.0.0.1:$PORT "
wide=$(ss -Hltn | awk -v p=":$PORT" '$4 ~ p"$" && $4 !~ /^127\.0\.0\.1:/ { print $4 }')
check_eq "ss -ltn: nothing listens on port $PORT beyond 127.0.0.1" "${wide:-none}" none
ext=$(ip -4 -o addr show scope global 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')
if [ -n "$ext" ]; then
	code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 3 "https://$ext:$PORT/" 2>/dev/null)
	check_eq "port $PORT does not answer on $ext" "${code:-000}" 000
fi

# --- by hand from the host, as the README shows ---------------------------
mkdir "$T_WORK/demo-pki"
if dc run --rm --no-deps -T tour tar -C /pki -cf - . 2>"$T_WORK/run.err" |
	tar -C "$T_WORK/demo-pki" -xf - && [ -s "$T_WORK/demo-pki/a-valid.pem" ]; then
	ok "the demo PKI copies out of the volume (run --rm --no-deps -T tour tar)"
else
	not_ok "the demo PKI copies out of the volume"
	diag "$(cat "$T_WORK/run.err")"
fi
hcurl() {
	curl -s -i --max-time 5 --cacert "$T_WORK/demo-pki/server-ca.pem" \
		--resolve "api.example.com:$PORT:127.0.0.1" "$@" "https://api.example.com:$PORT/"
}
resp=$(hcurl --cert "$T_WORK/demo-pki/a-valid.pem" --key "$T_WORK/demo-pki/a-valid.key" | tr -d '\r')
status=$(head -n 1 <<<"$resp" | awk '{ print $2 }')
result=$(awk -F': ' 'tolower($1) == "x-mtls-result" { print $2; exit }' <<<"$resp")
check_eq "127.0.0.1:$PORT, tenant A's valid certificate: 200, X-Mtls-Result ok" "$status $result" "200 ok"
resp=$(hcurl | tr -d '\r')
check_eq "127.0.0.1:$PORT, no certificate: 403" "$(head -n 1 <<<"$resp" | awk '{ print $2 }')" 403
phase by-hand

# --- --check and reload on the agent --------------------------------------
if out=$(dc exec -T agent mtls-spoa -c /etc/mtls-spoa/mtls-spoa.conf --check 2>&1) && [[ $out == OK:* ]]; then
	ok "exec agent mtls-spoa --check exits 0 ($out)"
else
	not_ok "exec agent mtls-spoa --check exits 0"
	diag "$out"
fi
n0=$(dc logs --no-color agent 2>&1 | grep -c 'reloaded')
reloaded() { [ "$(dc logs --no-color agent 2>&1 | grep -c 'reloaded /etc/mtls-spoa/mtls-spoa.conf')" -gt "$n0" ]; }
if out=$(dc kill -s HUP agent 2>&1) && wait_for 20 reloaded; then
	ok "kill -s HUP agent: the agent logs reloaded /etc/mtls-spoa/mtls-spoa.conf"
else
	not_ok "kill -s HUP agent reloads"
	diag "$out"
	diag "$(dc logs --no-color --tail 10 agent 2>&1)"
fi
check_eq "the agent still runs after the reload" "$(docker inspect -f '{{.State.Status}}' "$AGENT")" running
if [ -n "${HAPROXY_IMAGE_VERSION:-}" ]; then
	v=$(dc exec -T haproxy haproxy -v 2>&1 | head -n 1)
	if [[ $v == *"version $HAPROXY_IMAGE_VERSION"* ]]; then
		ok "haproxy container runs HAProxy $HAPROXY_IMAGE_VERSION"
	else
		not_ok "haproxy container runs HAProxy $HAPROXY_IMAGE_VERSION"
		diag "$v"
	fi
fi
phase checks

# --- down -v ----------------------------------------------------------------
if out=$(timeout 120 docker-compose -f "$COMPOSE_FILE" -p "$PROJECT" down -v 2>&1); then
	ok "down -v"
else
	not_ok "down -v"
	diag "$out"
fi
up_gone() { ! kill -0 "$UP_PID" 2>/dev/null; }
if wait_for 30 up_gone; then
	ok "the foreground up returns after down"
	UP_PID=
else
	not_ok "the foreground up returns after down"
fi
left=$(docker ps -a -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
check_eq "down -v removes every container" "$left" 0
check_eq "down -v removes the pki volume" "$(docker volume ls -q | grep -c "^${PROJECT}_pki$")" 0
check_eq "down -v removes the network" "$(docker network ls --format '{{.Name}}' | grep -c "^${PROJECT}_")" 0
phase down
diag "total $((SECONDS - START)) s"
t_finish
