#!/usr/bin/env bash
# Seeds for fuzz_verify: real certificates in its input layout
# (2-byte big-endian leaf length, leaf DER, chain DER). Their validity
# dates do not matter to the fuzzer; regenerate with this script.
set -euo pipefail
out=${1:-tests/fuzz/corpus/verify}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
cd "$tmp"
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key \
	-out root.pem -subj "/CN=Seed Root" -days 3650 -addext basicConstraints=critical,CA:TRUE
ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout inter.key \
	-out inter.csr -subj "/CN=Seed Inter"
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign,cRLSign\n' > ca.ext
ossl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial \
	-out inter.pem -days 3650 -extfile ca.ext
ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key \
	-out leaf.csr -subj "/CN=client.example/O=Seed"
printf 'extendedKeyUsage=clientAuth\nsubjectAltName=DNS:client.example,URI:spiffe://seed/x,email:a@b.example\n' > leaf.ext
ossl x509 -req -in leaf.csr -CA inter.pem -CAkey inter.key -CAcreateserial \
	-out leaf.pem -days 3650 -extfile leaf.ext
for c in root inter leaf; do ossl x509 -in $c.pem -outform DER -out $c.der; done
seed() { # name leaf [chain...]
	local name=$1 leaf=$2; shift 2
	local n; n=$(stat -c %s "$leaf")
	{ printf '%b' "\\x$(printf %02x $((n >> 8)))\\x$(printf %02x $((n & 255)))"; cat "$leaf" "$@"; } > "$OLDPWD/$out/$name"
}
seed leaf-alone leaf.der
seed leaf-inter leaf.der inter.der
seed leaf-inter-root leaf.der inter.der root.der
seed root-alone root.der
