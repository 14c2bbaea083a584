/*
 * fuzz_verify.c - the certificate path: arbitrary `cert` and `chain`
 * bytes through DER splitting, parsing and verification against a test
 * policy (a root, an intermediate, CRL checks on), as an unauthenticated
 * TLS client can make HAProxy send them.
 *
 * Input layout: 2 bytes big-endian leaf length, the leaf, then the chain.
 * The policy is built once with the test PKI (tests/unit/pki.c).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>

#include "pki.h"
#include "verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct host_policy policy;
static struct ca_entry ca;
static struct ca_entry *cas[1];

static void setup(void)
{
	static const struct pki_cert_opts root_o = { .cn = "Fuzz Root", .is_ca = 1 };
	static const struct pki_cert_opts inter_o = { .cn = "Fuzz Inter", .is_ca = 1 };
	struct pki_cert *root = pki_make(&root_o, NULL);
	struct pki_cert *inter = pki_make(&inter_o, root);
	char err[256];

	ca.name = "fuzz";
	ca.certs = sk_X509_new_null();
	ca.crls = sk_X509_CRL_new_null();
	X509_up_ref(root->x509);
	sk_X509_push(ca.certs, root->x509);
	sk_X509_CRL_push(ca.crls, pki_crl(root, NULL, 0, -3600, 86400));
	cas[0] = &ca;
	policy.pattern = policy.name = "fuzz.example";
	policy.mode = MODE_ENFORCE;
	policy.purpose = PURPOSE_CLIENT;
	policy.crl_check = CRL_CHECK_LEAF;
	policy.crl_check_auto = 1;
	policy.verify_depth = 5;
	policy.cas = cas;
	policy.n_cas = 1;
	policy.identities = (char *[]){ "*.example" };
	policy.n_identities = 1;
	if (verify_policy_prepare(&policy, err, sizeof(err)) != 0)
		abort();
	pki_free(inter);
	pki_free(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct verdict v;
	size_t leaf_len;

	if (!ready) {
		setup();
		ready = 1;
	}
	if (size < 2)
		return 0;
	leaf_len = (size_t)data[0] << 8 | data[1];
	if (leaf_len > size - 2)
		leaf_len = size - 2;
	memset(&v, 0, sizeof(v));
	verify_cert(&policy, data + 2, leaf_len, data + 2 + leaf_len,
	            size - 2 - leaf_len, 0, &v);
	if ((unsigned int)v.result >= RESULT_COUNT || ERR_peek_error() != 0)
		abort();
	if (v.has_cert_info && (strlen(v.fingerprint) != 64 ||
	                        memchr(v.subject, '\0', sizeof(v.subject)) == NULL))
		abort();
	return 0;
}
