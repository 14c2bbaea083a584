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
#include "trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct trust_policy *policy;

/* One [ca fuzz] holding the root, its CRL, and a trust policy over them
 * with CRL checks and an identity, as config.c would build it. */
static void setup(void)
{
	static const struct pki_cert_opts root_o = { .cn = "Fuzz Root", .is_ca = 1 };
	static const struct pki_cert_opts inter_o = { .cn = "Fuzz Inter", .is_ca = 1 };
	static const char *const ids[] = { "*.example" };
	struct pki_cert *root = pki_make(&root_o, NULL);
	struct pki_cert *inter = pki_make(&inter_o, root);
	struct ca_entry *ca = calloc(1, sizeof(*ca));
	X509_CRL *x = pki_crl(root, NULL, 0, -3600, 86400);
	uint8_t *der = NULL;
	int der_len = i2d_X509_CRL(x, &der);
	struct crl *crl;
	struct trust_params tp = {
		.n_cas = 1, .n_crls = 1, .purpose = PURPOSE_CLIENT,
		.crl_check = CRL_CHECK_LEAF, .crl_check_auto = 1,
		.verify_depth = 5, .identities = ids, .n_identities = 1,
	};
	char err[256];

	if (ca == NULL || der_len <= 0)
		abort();
	crl = crl_new(der, (size_t)der_len, err, sizeof(err));
	if (crl == NULL)
		abort();
	atomic_init(&ca->refs, 1);
	ca->id = 1;
	ca->name = strdup("fuzz");
	ca->certs = sk_X509_new_null();
	if (ca->name == NULL || ca->certs == NULL)
		abort();
	X509_up_ref(root->x509);
	sk_X509_push(ca->certs, root->x509);
	tp.cas = &ca;
	tp.crls = &crl;
	policy = trust_policy_new(&tp, err, sizeof(err));
	if (policy == NULL)
		abort();
	/* The policy holds its own references. */
	ca_unref(ca);
	crl_unref(crl);
	OPENSSL_free(der);
	X509_CRL_free(x);
	pki_free(inter);
	pki_free(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct trust_result v;
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
	trust_verify(policy, data + 2, leaf_len, data + 2 + leaf_len,
	             size - 2 - leaf_len, 0, &v);
	if ((unsigned int)v.result >= RESULT_COUNT || ERR_peek_error() != 0)
		abort();
	if (v.has_cert_info && (strlen(v.fingerprint) != 64 ||
	                        memchr(v.subject, '\0', sizeof(v.subject)) == NULL))
		abort();
	return 0;
}
