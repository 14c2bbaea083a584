#!/usr/bin/env bash
# mkpki.sh OUTDIR - generate the demo / test PKI with the openssl CLI.
#
# Everything here is throwaway: keys are EC P-256, validity dates are
# relative to "now", and nothing this script writes is ever committed.
# Running it twice is harmless: OUTDIR is wiped of the files it owns and
# regenerated from scratch (well under a second on a laptop).
#
# Layout of OUTDIR (all PEM):
#   server-ca.pem                  CA that signed the HAProxy server certificate
#                                  (clients pass it to curl --cacert)
#   server.pem                     HAProxy "crt": server certificate + key
#                                  SANs: api.example.com other.example.com
#                                  optional.example.com partner.example.com
#                                  public.example.com *.example.net
#                                  *.example.org localhost 127.0.0.1 ::1
#   placeholder-ca.pem             self-signed CA that signs nothing; HAProxy's
#                                  "ca-verify-file" needs one, its name says so
#   tenant-a-root.pem              tenant A root CA
#   tenant-a-intermediate.pem      tenant A intermediate (signed by the root)
#   tenant-a-ca.pem                bundle: root + intermediate
#   tenant-a-intermediate-only.pem bundle: the intermediate alone (anchors
#                                  the chain without its root)
#   tenant-a.crl                   CRL of the intermediate (a-revoked listed)
#   tenant-b-root.pem / tenant-b-ca.pem   tenant B root CA
#   rogue-ca.pem                   unrelated CA nobody trusts
#   <client>.crt  leaf only        <client>.key  its key
#   <client>.pem  leaf + issuing intermediate (what curl --cert sends)
# Clients:
#   a-valid     tenant A, CN/SAN client-a.example.com (+ a second DNS name, an
#               email), SPIFFE URI, clientAuth
#   a-other     tenant A, CN/SAN client-a2.example.com (for identity checks)
#   a-expired   tenant A, validity ended yesterday
#   a-notyet    tenant A, validity starts in 30 days
#   a-server    tenant A, EKU serverAuth only (wrong purpose)
#   a-revoked   tenant A, listed in tenant-a.crl
#   b-valid     tenant B, issued directly by the tenant B root
#   rogue       issued by rogue-ca
set -euo pipefail

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
OUT=$1
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# The work area for "openssl ca" databases; removed on every exit path.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mkpki.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Remove only what this script produces, so OUTDIR may hold other files
# (the test harness keeps its configs and logs next to the PKI).
rm -f "$OUT"/*.pem "$OUT"/*.crt "$OUT"/*.key "$OUT"/*.crl "$OUT"/*.srl

export OPENSSL_CONF=/dev/null  # never pick up a site-wide openssl.cnf
# ca.cnf reads the SAN of the certificate being issued from the environment;
# openssl insists the variable exists even when it does not issue.
export MKPKI_SAN=DNS:unused.invalid

# Run openssl quietly, but show its complaints when it fails.
ossl() {
	if ! openssl "$@" 2>"$WORK/openssl.err"; then
		echo "mkpki.sh: openssl $1 failed:" >&2
		cat "$WORK/openssl.err" >&2
		return 1
	fi
}

keygen() { # keygen FILE
	ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
	chmod 600 "$1"
}

# Self-signed root: mkroot NAME "SUBJECT"
mkroot() {
	keygen "$WORK/$1.key"
	ossl req -new -x509 -key "$WORK/$1.key" -subj "$2" -days 3650 \
		-sha256 -out "$OUT/$1.pem" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-addext "subjectKeyIdentifier=hash"
}

# A minimal "openssl ca" setup per issuing CA, so that explicit start and
# end dates (OpenSSL 3.0's "x509 -req" only has -days) and revocation with
# a CRL are available.
mkcadb() { # mkcadb NAME
	local d="$WORK/db-$1"
	mkdir -p "$d/new"
	: >"$d/index.txt"
	echo 1000 >"$d/serial"
	echo 1000 >"$d/crlnumber"
	cat >"$d/ca.cnf" <<EOF
[ca]
default_ca = this_ca
[this_ca]
dir = $d
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
crlnumber = \$dir/crlnumber
certificate = $OUT/$1.pem
private_key = $WORK/$1.key
default_md = sha256
default_crl_days = 30
policy = any_policy
unique_subject = no
copy_extensions = none
email_in_dn = no
[any_policy]
commonName = supplied
organizationName = optional
organizationalUnitName = optional
[ext_intermediate]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ext_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:api.example.com,DNS:other.example.com,DNS:optional.example.com,DNS:partner.example.com,DNS:public.example.com,DNS:*.example.net,DNS:*.example.org,DNS:localhost,IP:127.0.0.1,IP:::1
[ext_client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = \$ENV::MKPKI_SAN
[ext_serveronly]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = \$ENV::MKPKI_SAN
EOF
}

# issue CA NAME "SUBJECT" EXTENSIONS STARTDATE ENDDATE [SAN]
# Dates are in openssl's YYYYMMDDHHMMSSZ form.
issue() {
	local ca=$1 name=$2 subj=$3 ext=$4 start=$5 end=$6 san=${7:-DNS:unused.invalid}
	local d="$WORK/db-$ca" keyout="$WORK/$name.key"
	keygen "$keyout"
	ossl req -new -key "$keyout" -subj "$subj" -out "$WORK/$name.csr"
	# -preserveDN: keep the request's DN order (O then CN, so RFC 2253
	# prints "CN=...,O=..."); the config's "preserve" key is not honoured.
	MKPKI_SAN=$san ossl ca -batch -notext -preserveDN -config "$d/ca.cnf" \
		-extensions "$ext" -startdate "$start" -enddate "$end" \
		-in "$WORK/$name.csr" -out "$WORK/$name.crt"
}

# utcdate OFFSET -> YYYYMMDDHHMMSSZ for "now + OFFSET" (GNU date syntax).
utcdate() { date -u -d "$1" +%Y%m%d%H%M%SZ; }

NOW=$(utcdate "-1 hour")      # a little back-dated: tolerate clock skew
YEAR=$(utcdate "+365 days")

# --- HAProxy server side -----------------------------------------------
mkroot server-ca "/O=mtls-spoa demo/CN=mtls-spoa demo server CA"
mkcadb server-ca
issue server-ca server "/O=mtls-spoa demo/CN=api.example.com" ext_server "$NOW" "$YEAR"
cat "$WORK/server.crt" "$WORK/server.key" >"$OUT/server.pem"
chmod 600 "$OUT/server.pem"

# The placeholder: HAProxy wants some CA file on a "verify optional" bind.
# It signs nothing, so every client certificate fails HAProxy's own check
# (ignored with ca-ignore-err/crt-ignore-err) and the agent decides.
keygen "$WORK/placeholder.key"
ossl req -new -x509 -key "$WORK/placeholder.key" -days 3650 -sha256 \
	-subj "/O=mtls-spoa/CN=mtls-spoa placeholder - not a trust anchor" \
	-addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign" \
	-out "$OUT/placeholder-ca.pem"

# --- tenant A: root -> intermediate -> clients ---------------------------
mkroot tenant-a-root "/O=Tenant A/CN=Tenant A Root CA"
mkcadb tenant-a-root
issue tenant-a-root tenant-a-intermediate "/O=Tenant A/CN=Tenant A Issuing CA 1" \
	ext_intermediate "$NOW" "$(utcdate '+1825 days')"
cp "$WORK/tenant-a-intermediate.crt" "$OUT/tenant-a-intermediate.pem"
cat "$OUT/tenant-a-root.pem" "$OUT/tenant-a-intermediate.pem" >"$OUT/tenant-a-ca.pem"
cp "$OUT/tenant-a-intermediate.pem" "$OUT/tenant-a-intermediate-only.pem"
mkcadb tenant-a-intermediate

client() { # client CA NAME CN EXT START END SAN
	issue "$1" "$2" "/O=$(ca_org "$1")/CN=$3" "$4" "$5" "$6" "$7"
	cp "$WORK/$2.crt" "$OUT/$2.crt"
	cp "$WORK/$2.key" "$OUT/$2.key"
	if [ "$1" = tenant-a-intermediate ]; then
		cat "$OUT/$2.crt" "$OUT/tenant-a-intermediate.pem" >"$OUT/$2.pem"
	else
		cp "$OUT/$2.crt" "$OUT/$2.pem"
	fi
}
ca_org() {
	case $1 in
	tenant-a-*) echo "Tenant A" ;;
	tenant-b-*) echo "Tenant B" ;;
	*) echo "Rogue" ;;
	esac
}

SAN_A="DNS:client-a.example.com,DNS:client-a.alt.example.com,URI:spiffe://tenant-a.example/client-a,email:client-a@example.com"
client tenant-a-intermediate a-valid client-a.example.com ext_client \
	"$NOW" "$YEAR" "$SAN_A"
client tenant-a-intermediate a-other client-a2.example.com ext_client \
	"$NOW" "$YEAR" "DNS:client-a2.example.com"
client tenant-a-intermediate a-expired client-a-expired.example.com ext_client \
	"$(utcdate '-30 days')" "$(utcdate '-1 day')" "DNS:client-a-expired.example.com"
client tenant-a-intermediate a-notyet client-a-notyet.example.com ext_client \
	"$(utcdate '+30 days')" "$(utcdate '+365 days')" "DNS:client-a-notyet.example.com"
client tenant-a-intermediate a-server client-a-server.example.com ext_serveronly \
	"$NOW" "$YEAR" "DNS:client-a-server.example.com"
client tenant-a-intermediate a-revoked client-a-revoked.example.com ext_client \
	"$NOW" "$YEAR" "DNS:client-a-revoked.example.com"

ossl ca -batch -config "$WORK/db-tenant-a-intermediate/ca.cnf" \
	-revoke "$OUT/a-revoked.crt" -crl_reason keyCompromise
ossl ca -batch -config "$WORK/db-tenant-a-intermediate/ca.cnf" \
	-gencrl -out "$OUT/tenant-a.crl"

# --- tenant B: a root issuing its client directly ------------------------
mkroot tenant-b-root "/O=Tenant B/CN=Tenant B Root CA"
cp "$OUT/tenant-b-root.pem" "$OUT/tenant-b-ca.pem"
mkcadb tenant-b-root
client tenant-b-root b-valid client-b.example.com ext_client \
	"$NOW" "$YEAR" "DNS:client-b.example.com"

# --- an unrelated CA nobody trusts --------------------------------------
mkroot rogue-ca "/O=Rogue/CN=Rogue CA"
mkcadb rogue-ca
client rogue-ca rogue client-a.example.com ext_client "$NOW" "$YEAR" "$SAN_A"

chmod 600 "$OUT"/*.key
echo "PKI written to $OUT"
