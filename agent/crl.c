/*
 * crl.c - one certificate revocation list, parsed once (see crl.h).
 *
 * crl_new() parses the DER with OpenSSL, takes what the agent needs out of
 * the X509_CRL and frees it:
 *   - the revoked serials, as fixed 24-byte records in one sorted array
 *     (serials of more than CRL_SERIAL_MAX octets, which RFC 5280 4.1.2.2
 *     forbids but OpenSSL accepts, go to a second sorted array of exact
 *     variable-length keys, so no lookup is ever approximate);
 *   - lastUpdate / nextUpdate, the issuer name and the IDP scope;
 *   - what a later signature check needs: the digest of the tbsCertList
 *     under the signature's hash, the signature bytes and parameters.
 *     Only Ed25519/Ed448, which cannot verify a pre-hashed message, keep a
 *     copy of the tbsCertList.
 * A 100,000-entry CRL costs OpenSSL ~30 MB parsed; this keeps ~2.4 MB.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crl.h"
#include "fileio.h"

#define CRL_SHA256_LEN 32
/* RFC 5280 4.1.2.2: serial numbers are at most 20 octets. */
#define CRL_SERIAL_MAX 20
/* Issuer keys whose signature check succeeded, remembered per CRL. A CA
 * has one key (two around a rollover); more slots only cost memory. */
#define CRL_KEYS_MAX 8
/* Above this DER size the transient parse memory is worth giving back
 * to the OS (malloc_trim) once the X509_CRL is freed. */
#define CRL_TRIM_BYTES (256 * 1024)
/* RFC 5280 5.3.1 */
#define CRL_REASON_REMOVE 8

/* One revoked serial of at most CRL_SERIAL_MAX octets. The magnitude is
 * big-endian without leading zero octets and zero-filled after len, so
 * two records are the same integer iff (neg, len, mag) are equal. */
struct crl_serial {
	uint8_t len;
	uint8_t neg;
	uint8_t removed;                /* only removeFromCRL entries */
	uint8_t pad_;
	uint8_t mag[CRL_SERIAL_MAX];
};
_Static_assert(sizeof(struct crl_serial) == 24, "crl_serial is 24 bytes");

/* A longer serial: its magnitude lives in crl->long_pool. */
struct crl_long {
	const uint8_t *mag;
	size_t len;
	uint8_t neg;
	uint8_t removed;
};

enum crl_sig_kind {
	CRL_SIG_UNSUPPORTED = 0,  /* never verifies: OpenSSL could not either */
	CRL_SIG_DIGEST,           /* RSA PKCS#1 v1.5, ECDSA, DSA over a digest */
	CRL_SIG_PSS,              /* RSASSA-PSS with its parameters */
	CRL_SIG_MESSAGE,          /* Ed25519 / Ed448 over the whole tbs */
	CRL_SIG_COUNT
};

struct crl_sig {
	enum crl_sig_kind kind;
	const char *key_type;     /* EVP_PKEY_is_a() name the key must have */
	const EVP_MD *md;         /* DIGEST, PSS */
	const EVP_MD *mgf1_md;    /* PSS */
	int salt_len;             /* PSS */
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len;
	uint8_t *sig;
	size_t sig_len;
	uint8_t *tbs;             /* MESSAGE only */
	size_t tbs_len;
};

struct crl {
	atomic_uint refs;
	X509_NAME *issuer;
	time_t last_update, next_update;
	int has_next, next_bad;
	int unusable;             /* X509_V_ERR_*, 0 if usable */
	int idp_only_user, idp_only_ca, idp_only_attr;
	ASN1_INTEGER *number;     /* cRLNumber, NULL when absent */
	ISSUING_DIST_POINT *idp;  /* kept only when it names distribution points */
	uint8_t digest[CRL_SHA256_LEN];

	struct crl_serial *serials;
	size_t n_serials;
	struct crl_long *longs;
	size_t n_longs;
	uint8_t *long_pool;
	size_t n_revoked;         /* distinct serials, removeFromCRL excluded */

	struct crl_sig sig;

	pthread_mutex_t keys_lock;
	uint8_t keys[CRL_KEYS_MAX][CRL_SHA256_LEN];
	unsigned int n_keys, next_key;
};

/* ---- errors ------------------------------------------------------------ */

/* "what: <newest OpenSSL error>" (or just `what`) into err, queue cleared. */
static void crl_errmsg(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char why[256] = "";

	if (e != 0)
		ERR_error_string_n(e, why, sizeof(why));
	snprintf(err, errlen, "%s%s%s", what, e != 0 ? ": " : "", why);
	ERR_clear_error();
}

/* First reason wins: the one nearest to the CRL's top level. */
static void crl_set_unusable(struct crl *c, int code)
{
	if (c->unusable == 0)
		c->unusable = code;
}

/* ---- DER framing ------------------------------------------------------- */

/* One DER tag-length-value at *p, before end: low tag numbers and
 * definite lengths of at most 4 octets only (BER's indefinite length is
 * not DER, and nothing we read is 4 GB). On success the value is
 * [*val, *val + *vlen), *p moves past it and 0 is returned; else -1 and
 * *p is unchanged. */
static int crl_der_tlv(const uint8_t **p, const uint8_t *end, uint8_t *tag,
                       const uint8_t **val, size_t *vlen)
{
	const uint8_t *q = *p;
	size_t len;

	if (end - q < 2 || (q[0] & 0x1f) == 0x1f)
		return -1;
	*tag = q[0];
	len = q[1];
	q += 2;
	if (len & 0x80) {
		size_t n = len & 0x7f;

		if (n == 0 || n > 4 || (size_t)(end - q) < n)
			return -1;
		len = 0;
		for (size_t i = 0; i < n; i++)
			len = len << 8 | q[i];
		q += n;
	}
	if ((size_t)(end - q) < len)
		return -1;
	*val = q;
	*vlen = len;
	*p = q + len;
	return 0;
}

/* The exact bytes the signature covers, and the two AlgorithmIdentifier
 * encodings (CertificateList.signatureAlgorithm and TBSCertList.signature,
 * RFC 5280 5.1.1.2: they must be equal). The bytes are taken from the
 * input, not re-encoded, so they are what the issuer signed. */
struct crl_parts {
	const uint8_t *tbs, *outer_alg, *inner_alg;
	size_t tbs_len, outer_alg_len, inner_alg_len;
};

static int crl_der_split(const uint8_t *der, size_t len, struct crl_parts *pt)
{
	const uint8_t *p = der, *body, *body_end, *tbs, *tbs_end, *v, *start;
	size_t blen, tlen, vl;
	uint8_t tag;

	if (crl_der_tlv(&p, der + len, &tag, &body, &blen) == -1 ||
	    tag != 0x30 || p != der + len)
		return -1;
	body_end = body + blen;
	pt->tbs = body;
	if (crl_der_tlv(&body, body_end, &tag, &tbs, &tlen) == -1 || tag != 0x30)
		return -1;
	pt->tbs_len = (size_t)(body - pt->tbs);
	pt->outer_alg = body;
	if (crl_der_tlv(&body, body_end, &tag, &v, &vl) == -1 || tag != 0x30)
		return -1;
	pt->outer_alg_len = (size_t)(body - pt->outer_alg);

	/* Inside the tbs: version INTEGER OPTIONAL, then the algorithm. */
	tbs_end = tbs + tlen;
	start = tbs;
	if (crl_der_tlv(&tbs, tbs_end, &tag, &v, &vl) == -1)
		return -1;
	if (tag == 0x02) {
		start = tbs;
		if (crl_der_tlv(&tbs, tbs_end, &tag, &v, &vl) == -1)
			return -1;
	}
	if (tag != 0x30)
		return -1;
	pt->inner_alg = start;
	pt->inner_alg_len = (size_t)(tbs - start);
	return 0;
}

/* ---- serials ----------------------------------------------------------- */

/* The magnitude of `ai` without leading zero octets, and its sign (zero
 * is never negative), so that encodings of one integer compare equal. */
static void crl_serial_view(const ASN1_INTEGER *ai, const uint8_t **mag,
                            size_t *len, int *neg)
{
	const uint8_t *d = ASN1_STRING_get0_data(ai);
	int n = ASN1_STRING_length(ai);
	size_t l = n > 0 && d != NULL ? (size_t)n : 0;

	while (l > 0 && d[0] == 0) {
		d++;
		l--;
	}
	*mag = d;
	*len = l;
	*neg = l > 0 && ASN1_STRING_type(ai) == V_ASN1_NEG_INTEGER;
}

/* A total order on (sign, length, magnitude): not numeric order, but
 * equal exactly when the integers are equal, which is all a search needs. */
static int crl_serial_cmp(int aneg, size_t alen, const uint8_t *amag,
                          int bneg, size_t blen, const uint8_t *bmag)
{
	if (aneg != bneg)
		return aneg - bneg;
	if (alen != blen)
		return alen < blen ? -1 : 1;
	return alen == 0 ? 0 : memcmp(amag, bmag, alen);
}

static int crl_short_cmp(const void *a, const void *b)
{
	const struct crl_serial *x = a, *y = b;

	return crl_serial_cmp(x->neg, x->len, x->mag, y->neg, y->len, y->mag);
}

static int crl_long_cmp(const void *a, const void *b)
{
	const struct crl_long *x = a, *y = b;

	return crl_serial_cmp(x->neg, x->len, x->mag, y->neg, y->len, y->mag);
}

/* Sort `arr` (n elements of `size` bytes) and fold equal serials into
 * one, which stays removeFromCRL only if every copy was: a serial listed
 * once as revoked is revoked. Returns the new count. */
static size_t crl_sort_unique(void *arr, size_t n, size_t size,
                              int (*cmp)(const void *, const void *),
                              uint8_t *(*removed)(void *))
{
	char *a = arr;
	size_t out = 0;

	if (n == 0)
		return 0;
	qsort(a, n, size, cmp);
	for (size_t i = 1; i < n; i++) {
		char *last = a + out * size, *cur = a + i * size;

		if (cmp(last, cur) == 0) {
			*removed(last) &= *removed(cur);
			continue;
		}
		out++;
		if (out != i)
			memcpy(a + out * size, cur, size);
	}
	return out + 1;
}

static uint8_t *crl_short_removed(void *e)
{
	return &((struct crl_serial *)e)->removed;
}

static uint8_t *crl_long_removed(void *e)
{
	return &((struct crl_long *)e)->removed;
}

/* 1 if revoked entry `r` is removeFromCRL, 0 if not. Marks the CRL
 * unusable for an entry extension we cannot apply: certificateIssuer
 * (RFC 5280 5.3.3, only in indirect CRLs, which we do not support), an
 * unknown critical one, or a reasonCode that does not decode. */
static int crl_entry_exts(struct crl *c, const X509_REVOKED *r)
{
	int n = X509_REVOKED_get_ext_count(r), removed = 0, crit = -1;
	ASN1_ENUMERATED *reason;

	if (n <= 0)
		return 0;
	for (int i = 0; i < n; i++) {
		X509_EXTENSION *ext = X509_REVOKED_get_ext(r, i);
		int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));

		if (nid == NID_certificate_issuer ||
		    (nid != NID_crl_reason && nid != NID_invalidity_date &&
		     X509_EXTENSION_get_critical(ext)))
			crl_set_unusable(c, X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION);
	}
	/* crit -2: reasonCode twice; 0/1 with NULL: it does not decode. */
	reason = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit, NULL);
	if (reason == NULL && crit != -1)
		crl_set_unusable(c, X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION);
	else if (reason != NULL)
		removed = ASN1_ENUMERATED_get(reason) == CRL_REASON_REMOVE;
	ASN1_ENUMERATED_free(reason);
	return removed;
}

/* Copy the revoked serials of `x` into c's arrays, sorted and unique. */
static int crl_index(struct crl *c, const X509_CRL *x, char *err,
                     size_t errlen)
{
	STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED((X509_CRL *)x);
	int n = sk_X509_REVOKED_num(revs);
	size_t n_short = 0, n_long = 0, pool = 0, si = 0, li = 0;
	uint8_t *pp;

	if (n <= 0)
		return 0;
	for (int i = 0; i < n; i++) {
		const uint8_t *mag;
		size_t len;
		int neg;

		crl_serial_view(X509_REVOKED_get0_serialNumber(
		                sk_X509_REVOKED_value(revs, i)), &mag, &len, &neg);
		if (len <= CRL_SERIAL_MAX) {
			n_short++;
		} else {
			n_long++;
			pool += len;
		}
	}
	c->serials = n_short ? calloc(n_short, sizeof(*c->serials)) : NULL;
	c->longs = n_long ? calloc(n_long, sizeof(*c->longs)) : NULL;
	c->long_pool = pool ? malloc(pool) : NULL;
	if ((n_short && c->serials == NULL) || (n_long && c->longs == NULL) ||
	    (pool && c->long_pool == NULL)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pp = c->long_pool;
	for (int i = 0; i < n; i++) {
		const X509_REVOKED *r = sk_X509_REVOKED_value(revs, i);
		const uint8_t *mag;
		size_t len;
		int neg, removed = crl_entry_exts(c, r);

		crl_serial_view(X509_REVOKED_get0_serialNumber(r), &mag, &len, &neg);
		if (len <= CRL_SERIAL_MAX) {
			struct crl_serial *s = &c->serials[si++];

			s->len = (uint8_t)len;
			s->neg = (uint8_t)neg;
			s->removed = (uint8_t)removed;
			if (len > 0)
				memcpy(s->mag, mag, len);
		} else {
			struct crl_long *l = &c->longs[li++];

			memcpy(pp, mag, len);
			l->mag = pp;
			l->len = len;
			l->neg = (uint8_t)neg;
			l->removed = (uint8_t)removed;
			pp += len;
		}
	}
	c->n_serials = crl_sort_unique(c->serials, n_short, sizeof(*c->serials),
	                               crl_short_cmp, crl_short_removed);
	c->n_longs = crl_sort_unique(c->longs, n_long, sizeof(*c->longs),
	                             crl_long_cmp, crl_long_removed);
	for (size_t i = 0; i < c->n_serials; i++)
		c->n_revoked += !c->serials[i].removed;
	for (size_t i = 0; i < c->n_longs; i++)
		c->n_revoked += !c->longs[i].removed;
	return 0;
}

/* ---- extensions and scope ---------------------------------------------- */

/* RFC 5280 5.2: the CRL extensions we apply are the IDP (scope), and the
 * informational authorityKeyIdentifier and cRLNumber. A delta CRL
 * (5.2.4) only makes sense with its base, which we do not merge. */
static void crl_check_exts(struct crl *c, const X509_CRL *x)
{
	int n = X509_CRL_get_ext_count(x);

	for (int i = 0; i < n; i++) {
		X509_EXTENSION *ext = X509_CRL_get_ext(x, i);
		int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));

		switch (nid) {
		case NID_issuing_distribution_point:
		case NID_authority_key_identifier:
		case NID_crl_number:
			break;
		case NID_delta_crl:
			crl_set_unusable(c, X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION);
			break;
		default:
			if (X509_EXTENSION_get_critical(ext))
				crl_set_unusable(c,
				        X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION);
			break;
		}
	}
}

/* Read the issuingDistributionPoint (RFC 5280 5.2.5). Returns 0, or -1
 * on allocation failure. */
static int crl_setup_idp(struct crl *c, const X509_CRL *x)
{
	int crit = -1;
	ISSUING_DIST_POINT *idp = X509_CRL_get_ext_d2i(x,
	                          NID_issuing_distribution_point, &crit, NULL);

	if (idp == NULL) {
		/* -2: more than one IDP; 0/1: present but does not decode */
		if (crit != -1)
			crl_set_unusable(c, X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION);
		return 0;
	}
	c->idp_only_user = idp->onlyuser > 0;
	c->idp_only_ca = idp->onlyCA > 0;
	c->idp_only_attr = idp->onlyattr > 0;
	/* 5.2.5: at most one of the three "only" flags. */
	if (c->idp_only_user + c->idp_only_ca + c->idp_only_attr > 1 ||
	    idp->indirectCRL > 0 || idp->onlysomereasons != NULL)
		crl_set_unusable(c, X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION);
	else if (c->idp_only_attr)
		crl_set_unusable(c, X509_V_ERR_DIFFERENT_CRL_SCOPE);
	if (idp->distpoint == NULL) {
		ISSUING_DIST_POINT_free(idp);
		return 0;
	}
	/* nameRelativeToCRLIssuer is relative to the CRL's issuer. The
	 * built name is encoded now: X509_NAME_cmp() would otherwise cache
	 * its encoding on first use, a write racing other threads. */
	if (DIST_POINT_set_dpname(idp->distpoint, c->issuer) != 1 ||
	    (idp->distpoint->dpname != NULL &&
	     i2d_X509_NAME(idp->distpoint->dpname, NULL) < 0)) {
		ISSUING_DIST_POINT_free(idp);
		return -1;
	}
	c->idp = idp;
	return 0;
}

/* 1 if distribution point names `a` and `b` share a name (either may be
 * a full name or a relative one already resolved to dpname). A missing
 * side matches anything, as in OpenSSL's idp_check_dp(). */
static int crl_dp_match(const DIST_POINT_NAME *a, const DIST_POINT_NAME *b)
{
	const X509_NAME *nm = NULL;
	const GENERAL_NAMES *gens = NULL;

	if (a == NULL || b == NULL)
		return 1;
	if (a->type == 1 && b->type == 1)
		return a->dpname != NULL && b->dpname != NULL &&
		       X509_NAME_cmp(a->dpname, b->dpname) == 0;
	if (a->type == 1) {
		nm = a->dpname;
		gens = b->name.fullname;
	} else if (b->type == 1) {
		nm = b->dpname;
		gens = a->name.fullname;
	}
	if (a->type == 1 || b->type == 1) {
		if (nm == NULL)
			return 0;
		for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

			if (g->type == GEN_DIRNAME &&
			    X509_NAME_cmp(nm, g->d.directoryName) == 0)
				return 1;
		}
		return 0;
	}
	for (int i = 0; i < sk_GENERAL_NAME_num(a->name.fullname); i++)
		for (int j = 0; j < sk_GENERAL_NAME_num(b->name.fullname); j++)
			if (GENERAL_NAME_cmp(sk_GENERAL_NAME_value(a->name.fullname, i),
			                     sk_GENERAL_NAME_value(b->name.fullname, j)) == 0)
				return 1;
	return 0;
}

/* 1 if cRLDistributionPoints entry `dp` of `x` can be served by CRL `c`:
 * its cRLIssuer (if any) names c's issuer, and its name matches c's IDP. */
static int crl_dp_covers(const struct crl *c, X509 *x, DIST_POINT *dp)
{
	const X509_NAME *iname = NULL;
	int issuer_ok = dp->CRLissuer == NULL;

	for (int i = 0; i < sk_GENERAL_NAME_num(dp->CRLissuer); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(dp->CRLissuer, i);

		if (g->type != GEN_DIRNAME)
			continue;
		if (iname == NULL)
			iname = g->d.directoryName;
		if (X509_NAME_cmp(g->d.directoryName, c->issuer) == 0)
			issuer_ok = 1;
	}
	if (!issuer_ok)
		return 0;
	/* RFC 5280 4.2.1.13: a relative name is relative to the cRLIssuer,
	 * or to the certificate's issuer when there is none. */
	if (iname == NULL)
		iname = X509_get_issuer_name(x);
	if (dp->distpoint != NULL &&
	    DIST_POINT_set_dpname(dp->distpoint, iname) != 1)
		return 0;
	return crl_dp_match(dp->distpoint, c->idp->distpoint);
}

/* ---- signature --------------------------------------------------------- */

/* The EVP_PKEY_is_a() name for a signature's key NID, for the algorithms
 * that verify a digest (SM2 hashes its own Z value first: not here). */
static const char *crl_digest_key_type(int pknid)
{
	switch (pknid) {
	case NID_rsaEncryption:
		return "RSA";
	case NID_X9_62_id_ecPublicKey:
		return "EC";
	case NID_dsa:
		return "DSA";
	default:
		return NULL;
	}
}

/* The hash named by an AlgorithmIdentifier, SHA-1 when absent (RFC 4055
 * 3.1 defaults). */
static const EVP_MD *crl_algor_md(const X509_ALGOR *a)
{
	const ASN1_OBJECT *obj;

	if (a == NULL)
		return EVP_sha1();
	X509_ALGOR_get0(&obj, NULL, NULL, a);
	return EVP_get_digestbyobj(obj);
}

/* RFC 4055 3.1 RSASSA-PSS-params into s. Returns 0, or -1 when they do not
 * decode or use something OpenSSL would not verify either. */
static int crl_pss_params(struct crl_sig *s, const X509_ALGOR *alg)
{
	const void *pval;
	int ptype;
	RSA_PSS_PARAMS *pss;
	X509_ALGOR *mgf_md = NULL;
	int rc = -1;

	X509_ALGOR_get0(NULL, &ptype, &pval, alg);
	if (ptype != V_ASN1_SEQUENCE)
		return -1;
	pss = ASN1_item_unpack(pval, ASN1_ITEM_rptr(RSA_PSS_PARAMS));
	if (pss == NULL)
		return -1;
	s->md = crl_algor_md(pss->hashAlgorithm);
	if (pss->maskGenAlgorithm == NULL) {
		s->mgf1_md = EVP_sha1();
	} else {
		const ASN1_OBJECT *obj;
		int mtype;
		const void *mval;

		X509_ALGOR_get0(&obj, &mtype, &mval, pss->maskGenAlgorithm);
		if (OBJ_obj2nid(obj) != NID_mgf1 || mtype != V_ASN1_SEQUENCE)
			goto out;
		mgf_md = ASN1_item_unpack(mval, ASN1_ITEM_rptr(X509_ALGOR));
		if (mgf_md == NULL)
			goto out;
		s->mgf1_md = crl_algor_md(mgf_md);
	}
	s->salt_len = 20;
	if (pss->saltLength != NULL) {
		long l = ASN1_INTEGER_get(pss->saltLength);

		if (l < 0 || l > INT_MAX)
			goto out;
		s->salt_len = (int)l;
	}
	if (pss->trailerField != NULL && ASN1_INTEGER_get(pss->trailerField) != 1)
		goto out;
	if (s->md != NULL && s->mgf1_md != NULL)
		rc = 0;
out:
	X509_ALGOR_free(mgf_md);
	RSA_PSS_PARAMS_free(pss);
	return rc;
}

/* Prepare s from the CRL's signature and its tbs bytes. Returns 0 (s->kind
 * CRL_SIG_UNSUPPORTED when the algorithm is unknown, malformed, or its two
 * copies differ: such a CRL is never issued by anyone), or -1 on
 * allocation failure. */
static int crl_sig_setup(struct crl_sig *s, const X509_CRL *x,
                         const struct crl_parts *pt)
{
	const ASN1_BIT_STRING *sig;
	const X509_ALGOR *alg;
	const ASN1_OBJECT *obj;
	int ptype, nid, mdnid, pknid;
	enum crl_sig_kind kind;

	X509_CRL_get0_signature(x, &sig, &alg);
	X509_ALGOR_get0(&obj, &ptype, NULL, alg);
	nid = OBJ_obj2nid(obj);
	if (pt->outer_alg_len != pt->inner_alg_len ||
	    memcmp(pt->outer_alg, pt->inner_alg, pt->inner_alg_len) != 0)
		return 0;
	/* A signature is a whole number of octets (as ASN1_item_verify). */
	if ((sig->flags & 7) != 0)
		return 0;
	if (sig->length <= 0 || OBJ_find_sigid_algs(nid, &mdnid, &pknid) != 1)
		return 0;
	if (mdnid != NID_undef) {
		s->key_type = crl_digest_key_type(pknid);
		s->md = EVP_get_digestbynid(mdnid);
		if (s->key_type == NULL || s->md == NULL)
			return 0;
		kind = CRL_SIG_DIGEST;
	} else if (nid == NID_rsassaPss) {
		s->key_type = "RSA";   /* or RSA-PSS: see crl_sig_verify() */
		if (crl_pss_params(s, alg) == -1)
			return 0;
		kind = CRL_SIG_PSS;
	} else if (nid == NID_ED25519 || nid == NID_ED448) {
		/* RFC 8410 3: parameters MUST be absent. */
		if (ptype != V_ASN1_UNDEF)
			return 0;
		s->key_type = nid == NID_ED25519 ? "ED25519" : "ED448";
		kind = CRL_SIG_MESSAGE;
	} else {
		return 0;
	}
	if (kind == CRL_SIG_MESSAGE) {
		s->tbs = malloc(pt->tbs_len);
		if (s->tbs == NULL)
			return -1;
		memcpy(s->tbs, pt->tbs, pt->tbs_len);
		s->tbs_len = pt->tbs_len;
	} else if (EVP_Digest(pt->tbs, pt->tbs_len, s->digest, &s->digest_len,
	                      s->md, NULL) != 1) {
		return 0;   /* e.g. a hash the provider does not offer */
	}
	s->sig = malloc((size_t)sig->length);
	if (s->sig == NULL)
		return -1;
	memcpy(s->sig, sig->data, (size_t)sig->length);
	s->sig_len = (size_t)sig->length;
	s->kind = kind;
	return 0;
}

/* 1 if the signature in s verifies with `key`. May leave errors queued. */
static int crl_sig_verify(const struct crl_sig *s, EVP_PKEY *key)
{
	EVP_PKEY_CTX *ctx;
	int ok;

	if (s->kind == CRL_SIG_UNSUPPORTED)
		return 0;
	if (!EVP_PKEY_is_a(key, s->key_type) &&
	    !(s->kind == CRL_SIG_PSS && EVP_PKEY_is_a(key, "RSA-PSS")))
		return 0;
	if (s->kind == CRL_SIG_MESSAGE) {
		EVP_MD_CTX *m = EVP_MD_CTX_new();

		ok = m != NULL &&
		     EVP_DigestVerifyInit(m, NULL, NULL, NULL, key) == 1 &&
		     EVP_DigestVerify(m, s->sig, s->sig_len, s->tbs, s->tbs_len) == 1;
		EVP_MD_CTX_free(m);
		return ok;
	}
	ctx = EVP_PKEY_CTX_new(key, NULL);
	ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1;
	if (ok && s->kind == CRL_SIG_PSS)
		ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_signature_md(ctx, s->md) == 1 &&
		     EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, s->mgf1_md) == 1 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, s->salt_len) == 1;
	else if (ok && EVP_PKEY_is_a(key, "RSA"))
		ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_signature_md(ctx, s->md) == 1;
	else if (ok)
		ok = EVP_PKEY_CTX_set_signature_md(ctx, s->md) == 1;
	ok = ok && EVP_PKEY_verify(ctx, s->sig, s->sig_len, s->digest,
	                           s->digest_len) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

/* SHA-256 of x's whole SubjectPublicKeyInfo (algorithm and parameters
 * included, unlike X509_pubkey_digest(): an RSA-PSS key with
 * restrictions and a plain RSA key of the same modulus differ). */
static int crl_key_fingerprint(X509 *x, uint8_t out[CRL_SHA256_LEN])
{
	unsigned char *der = NULL;
	int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	unsigned int len = 0;
	int ok;

	if (n <= 0)
		return -1;
	ok = EVP_Digest(der, (size_t)n, out, &len, EVP_sha256(), NULL) == 1 &&
	     len == CRL_SHA256_LEN;
	OPENSSL_free(der);
	return ok ? 0 : -1;
}

static int crl_key_known(struct crl *c, const uint8_t fp[CRL_SHA256_LEN])
{
	int found = 0;

	pthread_mutex_lock(&c->keys_lock);
	for (unsigned int i = 0; i < c->n_keys && !found; i++)
		found = memcmp(c->keys[i], fp, CRL_SHA256_LEN) == 0;
	pthread_mutex_unlock(&c->keys_lock);
	return found;
}

/* Remember fp, replacing the oldest slot when all are taken. */
static void crl_key_remember(struct crl *c, const uint8_t fp[CRL_SHA256_LEN])
{
	pthread_mutex_lock(&c->keys_lock);
	for (unsigned int i = 0; i < c->n_keys; i++)
		if (memcmp(c->keys[i], fp, CRL_SHA256_LEN) == 0)
			goto out;   /* another thread was first */
	memcpy(c->keys[c->next_key], fp, CRL_SHA256_LEN);
	c->next_key = (c->next_key + 1) % CRL_KEYS_MAX;
	if (c->n_keys < CRL_KEYS_MAX)
		c->n_keys++;
out:
	pthread_mutex_unlock(&c->keys_lock);
}

/* ---- building ---------------------------------------------------------- */

/* ASN1_TIME to time_t. Returns 0, or -1 if it does not parse. */
static int crl_time(const ASN1_TIME *t, time_t *out)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	*out = timegm(&tm);
	return 0;
}

static void crl_free(struct crl *c)
{
	X509_NAME_free(c->issuer);
	ASN1_INTEGER_free(c->number);
	ISSUING_DIST_POINT_free(c->idp);
	free(c->serials);
	free(c->longs);
	free(c->long_pool);
	free(c->sig.sig);
	free(c->sig.tbs);
	pthread_mutex_destroy(&c->keys_lock);
	free(c);
}

/* The fields of c taken from the parsed x (der/len is its encoding). */
static int crl_fill(struct crl *c, const X509_CRL *x, const uint8_t *der,
                    size_t len, char *err, size_t errlen)
{
	struct crl_parts pt;
	const ASN1_TIME *nu = X509_CRL_get0_nextUpdate(x);

	if (crl_der_split(der, len, &pt) == -1) {
		snprintf(err, errlen, "not DER (indefinite length or "
		         "unexpected framing)");
		return -1;
	}
	if (crl_time(X509_CRL_get0_lastUpdate(x), &c->last_update) == -1) {
		snprintf(err, errlen, "lastUpdate is missing or malformed");
		return -1;
	}
	if (nu != NULL) {
		c->has_next = 1;
		if (crl_time(nu, &c->next_update) == -1) {
			c->next_update = 0;
			c->next_bad = 1;
			crl_set_unusable(c, X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD);
		}
	}
	c->issuer = X509_NAME_dup(X509_CRL_get_issuer(x));
	if (c->issuer == NULL) {
		crl_errmsg(err, errlen, "cannot copy the issuer name");
		return -1;
	}
	crl_check_exts(c, x);
	/* RFC 5280 5.2.3: a non-negative integer of at most 20 octets; one
	 * that does not decode is as good as absent (nothing to order by). */
	c->number = X509_CRL_get_ext_d2i(x, NID_crl_number, NULL, NULL);
	if (c->number != NULL &&
	    (ASN1_STRING_type(c->number) == V_ASN1_NEG_INTEGER ||
	     ASN1_STRING_length(c->number) > 20)) {
		ASN1_INTEGER_free(c->number);
		c->number = NULL;
	}
	ERR_clear_error();
	if (crl_setup_idp(c, x) == -1 || crl_sig_setup(&c->sig, x, &pt) == -1) {
		crl_errmsg(err, errlen, "out of memory");
		return -1;
	}
	if (crl_index(c, x, err, errlen) == -1)
		return -1;
	if (EVP_Digest(der, len, c->digest, NULL, EVP_sha256(), NULL) != 1) {
		crl_errmsg(err, errlen, "SHA-256 failed");
		return -1;
	}
	return 0;
}

/* crl_new(), and *not_crl set (if given) when the bytes are not one DER
 * CRL at all, as opposed to a CRL we refuse. */
static struct crl *crl_build(const uint8_t *der, size_t len, int *not_crl,
                             char *err, size_t errlen)
{
	const unsigned char *p = der;
	X509_CRL *x;
	struct crl *c;

	if (not_crl != NULL)
		*not_crl = 1;
	if (der == NULL || len == 0 || len > CRL_MAX_FILE) {
		snprintf(err, errlen, "a CRL is 1 to %d bytes", CRL_MAX_FILE);
		return NULL;
	}
	x = d2i_X509_CRL(NULL, &p, (long)len);
	if (x == NULL) {
		crl_errmsg(err, errlen, "not a DER CRL");
		return NULL;
	}
	if (p != der + len) {
		X509_CRL_free(x);
		ERR_clear_error();
		snprintf(err, errlen, "%zu bytes after the CRL",
		         (size_t)(der + len - p));
		return NULL;
	}
	if (not_crl != NULL)
		*not_crl = 0;
	c = calloc(1, sizeof(*c));
	if (c == NULL || pthread_mutex_init(&c->keys_lock, NULL) != 0) {
		free(c);
		X509_CRL_free(x);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&c->refs, 1);
	if (crl_fill(c, x, der, len, err, errlen) == -1) {
		crl_free(c);
		c = NULL;
	}
	X509_CRL_free(x);
	ERR_clear_error();
	/* OpenSSL spent ~200 bytes per entry in small blocks: give the pages
	 * back rather than keep a large CRL's parse resident forever. */
	if (len >= CRL_TRIM_BYTES)
		malloc_trim(0);
	return c;
}

struct crl *crl_new(const uint8_t *der, size_t len, char *err, size_t errlen)
{
	return crl_build(der, len, NULL, err, errlen);
}

/* ---- files ------------------------------------------------------------- */

/* PEM encryption of a CRL makes no sense, and OpenSSL's default would
 * prompt on the terminal: refuse instead. */
static int crl_no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* The PEM "X509 CRL" blocks of data (others are skipped) into v. Returns
 * the count (0: no PEM CRL at all), or -1 with "PATH: ..." in err. */
static int crl_load_pem(const char *path, const uint8_t *data, size_t len,
                        struct crl **v, char *err, size_t errlen)
{
	BIO *b = BIO_new_mem_buf(data, (int)len);
	char why[256];
	int n = 0;

	if (b == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	for (;;) {
		unsigned char *der = NULL;
		long dlen = 0;

		if (PEM_bytes_read_bio(&der, &dlen, NULL, PEM_STRING_X509_CRL, b,
		                       crl_no_password, NULL) != 1) {
			unsigned long e = ERR_peek_last_error();

			if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
			    ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
				ERR_clear_error();
				break;
			}
			crl_errmsg(why, sizeof(why), "bad PEM");
			snprintf(err, errlen, "%s: CRL %d does not parse: %s", path,
			         n + 1, why);
			goto fail;
		}
		if (n == CRL_MAX_PER_FILE) {
			OPENSSL_free(der);
			snprintf(err, errlen, "%s: more than %d CRLs", path,
			         CRL_MAX_PER_FILE);
			goto fail;
		}
		v[n] = crl_new(der, (size_t)dlen, why, sizeof(why));
		OPENSSL_free(der);
		if (v[n] == NULL) {
			snprintf(err, errlen, "%s: CRL %d does not parse: %s", path,
			         n + 1, why);
			goto fail;
		}
		n++;
	}
	BIO_free(b);
	return n;
fail:
	while (n > 0)
		crl_unref(v[--n]);
	BIO_free(b);
	return -1;
}

int crl_load_mem(const char *name, const uint8_t *data, size_t len,
                 struct crl ***out, size_t *n, char *err, size_t errlen)
{
	struct crl **v;
	int count, not_crl;
	char why[256];

	*out = NULL;
	*n = 0;
	if (len > CRL_MAX_FILE) {
		snprintf(err, errlen, "%s: larger than %d bytes", name, CRL_MAX_FILE);
		return -1;
	}
	v = calloc(CRL_MAX_PER_FILE, sizeof(*v));
	if (v == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	count = len > 0 ? crl_load_pem(name, data, len, v, err, errlen) : 0;
	if (count == 0) {
		/* Not PEM: one DER CRL spanning the whole file. */
		v[0] = crl_build(data, len, &not_crl, why, sizeof(why));
		if (v[0] == NULL) {
			if (not_crl)
				snprintf(err, errlen, "%s: not a PEM or DER CRL", name);
			else
				snprintf(err, errlen, "%s: CRL 1 does not parse: %s",
				         name, why);
			count = -1;
		} else {
			count = 1;
		}
	}
	if (count < 0) {
		free(v);
		return -1;
	}
	*out = v;
	*n = (size_t)count;
	return 0;
}

int crl_load_file(const char *path, struct crl ***out, size_t *n, char *err,
                  size_t errlen)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (file_read(path, CRL_MAX_FILE, (char **)&data, &len) == -1) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	rc = crl_load_mem(path, data, len, out, n, err, errlen);
	free(data);
	/* The file and PEM-decoded buffers are freed only now: trim again. */
	if (len >= CRL_TRIM_BYTES)
		malloc_trim(0);
	return rc;
}

/* ---- queries ----------------------------------------------------------- */

struct crl *crl_ref(struct crl *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void crl_unref(struct crl *c)
{
	if (c == NULL)
		return;
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		crl_free(c);
}

const X509_NAME *crl_issuer(const struct crl *c)
{
	return c->issuer;
}

time_t crl_last_update(const struct crl *c)
{
	return c->last_update;
}

const ASN1_INTEGER *crl_number(const struct crl *c)
{
	return c->number;
}

time_t crl_next_update(const struct crl *c)
{
	return c->has_next ? c->next_update : 0;
}

size_t crl_count(const struct crl *c)
{
	return c->n_revoked;
}

const uint8_t *crl_digest(const struct crl *c)
{
	return c->digest;
}

int crl_issued_by(struct crl *c, X509 *issuer)
{
	uint8_t fp[CRL_SHA256_LEN];
	EVP_PKEY *key;
	int ok = 0;

	if (c == NULL || issuer == NULL ||
	    X509_NAME_cmp(c->issuer, X509_get_subject_name(issuer)) != 0)
		return 0;
	ERR_set_mark();
	if (crl_key_fingerprint(issuer, fp) == -1)
		goto out;
	if (crl_key_known(c, fp)) {
		ok = 1;
		goto out;
	}
	/* Cheap even for a flood of look-alike keys: one public-key
	 * operation on a stored digest, never a pass over the CRL. */
	key = X509_get0_pubkey(issuer);
	ok = key != NULL && crl_sig_verify(&c->sig, key);
	if (ok)
		crl_key_remember(c, fp);
out:
	ERR_pop_to_mark();
	return ok;
}

int crl_unusable(const struct crl *c)
{
	return c->unusable;
}

int crl_covers(const struct crl *c, X509 *x)
{
	STACK_OF(DIST_POINT) *dps;
	int crit = -1, covers = 0;
	int is_ca = (X509_get_extension_flags(x) & EXFLAG_CA) != 0;

	if (c->idp_only_attr || (is_ca && c->idp_only_user) ||
	    (!is_ca && c->idp_only_ca))
		return 0;
	if (c->idp == NULL)
		return 1;
	/* The IDP names distribution points: x must point at one of them
	 * (RFC 5280 6.3.3 b.2.i), as OpenSSL's crl_crldp_check() does. */
	ERR_set_mark();
	dps = X509_get_ext_d2i(x, NID_crl_distribution_points, &crit, NULL);
	for (int i = 0; i < sk_DIST_POINT_num(dps) && !covers; i++)
		covers = crl_dp_covers(c, x, sk_DIST_POINT_value(dps, i));
	sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
	ERR_pop_to_mark();
	return covers;
}

int crl_time_check(const struct crl *c, time_t now)
{
	if (c->next_bad)
		return X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD;
	if (now < c->last_update)
		return X509_V_ERR_CRL_NOT_YET_VALID;
	/* X509_cmp_time(nextUpdate, now) < 0, i.e. nextUpdate <= now */
	if (c->has_next && now >= c->next_update)
		return X509_V_ERR_CRL_HAS_EXPIRED;
	return X509_V_OK;
}

/* A lookup key for bsearch() over either array. */
struct crl_key {
	const uint8_t *mag;
	size_t len;
	int neg;
};

static int crl_key_short_cmp(const void *k, const void *e)
{
	const struct crl_key *a = k;
	const struct crl_serial *b = e;

	return crl_serial_cmp(a->neg, a->len, a->mag, b->neg, b->len, b->mag);
}

static int crl_key_long_cmp(const void *k, const void *e)
{
	const struct crl_key *a = k;
	const struct crl_long *b = e;

	return crl_serial_cmp(a->neg, a->len, a->mag, b->neg, b->len, b->mag);
}

int crl_is_revoked(const struct crl *c, const ASN1_INTEGER *serial)
{
	struct crl_key k;
	const struct crl_serial *s;
	const struct crl_long *l;

	if (c == NULL || serial == NULL)
		return 0;
	crl_serial_view(serial, &k.mag, &k.len, &k.neg);
	/* bsearch() wants a non-NULL base even for no elements */
	if (k.len <= CRL_SERIAL_MAX) {
		s = c->n_serials == 0 ? NULL : bsearch(&k, c->serials,
		    c->n_serials, sizeof(*s), crl_key_short_cmp);
		return s != NULL && !s->removed;
	}
	l = c->n_longs == 0 ? NULL : bsearch(&k, c->longs, c->n_longs,
	    sizeof(*l), crl_key_long_cmp);
	return l != NULL && !l->removed;
}

unsigned int crl_remembered_keys(struct crl *c)
{
	unsigned int n;

	pthread_mutex_lock(&c->keys_lock);
	n = c->n_keys;
	pthread_mutex_unlock(&c->keys_lock);
	return n;
}
