#!/usr/bin/env bash
# pki-init.sh DIR - the compose "pki" service: the demo PKI into DIR (a
# named volume shared with the agent, HAProxy and the tour), with the
# ownership each reader needs.
#
# It runs tests/pki/mkpki.sh, the script "make demo" uses, then hands the
# HAProxy server certificate + key to the official haproxy image's user
# (uid/gid 99, see docker-library/haproxy): mkpki.sh writes it mode 0600
# and HAProxy runs as that user, not root. Everything the agent reads (CA
# bundles, CRL) is world-readable already; client keys stay root-only and
# the tour runs as root. The demo's admin API token (admin-tokens, one
# "demo:TOKEN" line, README "Security model") is generated here, never
# committed, and belongs to the agent's user (uid/gid 10001, see
# docker/Dockerfile), mode 0600: the agent refuses a token file other
# users may read.
#
# A complete PKI already in DIR is kept while its certificates are valid
# for another day: "docker compose up" on a running stack re-runs this
# service, and a new PKI would not match the CAs the running agent and
# HAProxy loaded. "docker compose down -v" removes the volume; the next
# "up" generates a new PKI.
set -euo pipefail

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
DIR=$1
HAPROXY_UID=${HAPROXY_UID:-99}
HAPROXY_GID=${HAPROXY_GID:-99}
AGENT_UID=${AGENT_UID:-10001}
AGENT_GID=${AGENT_GID:-10001}
DONE=$DIR/.pki-complete

still_valid() {
	local f
	[ -f "$DONE" ] && [ -f "$DIR/admin-tokens" ] || return 1
	for f in server.pem server-ca.pem a-valid.crt b-valid.crt tenant-a-ca.pem; do
		openssl x509 -noout -checkend 86400 -in "$DIR/$f" >/dev/null 2>&1 || return 1
	done
}

umask 022
if still_valid; then
	echo "pki-init: keeping the PKI in $DIR (valid for another day at least)"
	exit 0
fi
rm -f "$DONE"
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/../tests/pki/mkpki.sh" "$DIR"
chown "$HAPROXY_UID:$HAPROXY_GID" "$DIR/server.pem"
chmod 0600 "$DIR/server.pem"
(umask 077 && echo "demo:$(openssl rand -hex 24)" >"$DIR/admin-tokens")
chown "$AGENT_UID:$AGENT_GID" "$DIR/admin-tokens"
: >"$DONE"
ls -l "$DIR"
