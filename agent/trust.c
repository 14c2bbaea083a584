/*
 * trust.c - the trust decision with OpenSSL: trust policies (one
 * X509_STORE of CA certificates each) and trust_verify().
 *
 * Revocation does not go through OpenSSL's CRL machinery, which re-checks
 * a CRL's signature over the whole CRL at every verification: the store
 * gets our check_revocation hook (trust_check_revocation), which looks
 * the certificate's serial up in the policy's CRLs (crl.c: signatures
 * checked once per issuer key, serials in a sorted array). It runs at
 * the point of X509_verify_cert() where OpenSSL's own check would, and
 * reports through the same error codes and verify callback, so results
 * and their precedence are unchanged.
 *
 * Policies are only read after trust_policy_new(), which OpenSSL allows
 * for a store from any number of threads at once.
 */
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "policy.h"
#include "log.h"
#include "metrics.h"
#include "ocsp.h"
#include "hex.h"
#include "trust.h"

#define VERIFY_SHA256_LEN 32
#define VERIFY_SPIFFE_PREFIX "spiffe://"

/* Write `what` and the last OpenSSL error into err and clear the queue.
 * The caller (config.c) adds which host it was. */
static void verify_errmsg(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256];

	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(err, errlen, "%s: %s", what, buf);
	} else {
		snprintf(err, errlen, "%s", what);
	}
	ERR_clear_error();
}

/* ---- trust policies ------------------------------------------------------ */

static atomic_uint_fast64_t trust_next_id = 1;
static atomic_uint_fast64_t trust_verify_count;

uint64_t trust_verifications(void)
{
	return atomic_load_explicit(&trust_verify_count, memory_order_relaxed);
}

/* What trust_check_revocation() needs of the verification in progress. */
struct trust_run {
	const struct trust_policy *tp;
	time_t now;
	int leaf_revoked;   /* trust_result.revoked */
	int crl_stale;      /* trust_result.crl_stale */
};

static void trust_key_add(EVP_MD_CTX *md, const void *p, size_t n)
{
	uint64_t len = n;

	/* Length first: no two field sequences hash the same bytes. */
	(void)EVP_DigestUpdate(md, &len, sizeof(len));
	(void)EVP_DigestUpdate(md, p, n);
}

void trust_params_key(const struct trust_params *p, uint8_t key[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int n = 0;
	int32_t v[4] = { (int32_t)p->purpose, (int32_t)p->crl_check,
	                 p->crl_check_auto, p->verify_depth };

	memset(key, 0, 32);
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		ERR_clear_error();
		return;
	}
	trust_key_add(md, v, sizeof(v));
	for (size_t i = 0; i < p->n_cas; i++)
		trust_key_add(md, &p->cas[i]->id, sizeof(p->cas[i]->id));
	for (size_t i = 0; i < p->n_crls; i++)
		trust_key_add(md, crl_digest(p->crls[i]), 32);
	for (size_t i = 0; i < p->n_identities; i++)
		trust_key_add(md, p->identities[i], strlen(p->identities[i]));
	trust_key_add(md, p->pins, p->n_pins * sizeof(*p->pins));
	(void)EVP_DigestFinal_ex(md, key, &n);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
}

/* The CRLs of `tp` issued by `issuer` (names and signature). Sets *any
 * when at least one exists, and returns the best one that covers `x`:
 * current at `now` and the most recent, or else the most recent. */
static struct crl *trust_best_crl(const struct trust_policy *tp, X509 *x,
                                  X509 *issuer, time_t now, int *any)
{
	struct crl *best = NULL;
	int best_ok = 0;

	*any = 0;
	for (size_t i = 0; i < tp->n_crls; i++) {
		struct crl *c = tp->crls[i];
		int ok;

		if (!crl_issued_by(c, issuer))
			continue;
		*any = 1;
		if (!crl_covers(c, x))
			continue;
		ok = crl_time_check(c, now) == X509_V_OK;
		if (best == NULL || (ok && !best_ok) ||
		    (ok == best_ok && crl_last_update(c) > crl_last_update(best))) {
			best = c;
			best_ok = ok;
		}
	}
	return best;
}

/* The [ca] of `tp` that holds `issuer`, or NULL. */
static const struct ca_entry *trust_issuer_ca(const struct trust_policy *tp,
                                              X509 *issuer)
{
	for (size_t k = 0; k < tp->n_cas; k++) {
		STACK_OF(X509) *certs = tp->cas[k]->certs;

		for (int i = 0; i < sk_X509_num(certs); i++)
			if (X509_cmp(sk_X509_value(certs, i), issuer) == 0)
				return tp->cas[k];
	}
	return NULL;
}

/* A CRL past its nextUpdate, of a [ca] with crl-grace or crl-stale =
 * allow: X509_V_OK (still used) within the grace period, else the
 * expiry unless stale CRLs are allowed (then *skip: as without CRL).
 * Sets *stale whenever such a policy was consulted. */
static int trust_stale_crl(const struct trust_policy *tp, const struct crl *c,
                           X509 *issuer, time_t now, int *skip, int *stale)
{
	const struct ca_entry *ca = trust_issuer_ca(tp, issuer);
	int64_t nu_ms = (int64_t)crl_next_update(c) * 1000;

	if (ca == NULL || (ca->rev.crl_grace_ms == 0 && !ca->rev.crl_stale_allow))
		return X509_V_ERR_CRL_HAS_EXPIRED;
	*stale = 1;
	if ((int64_t)now * 1000 < nu_ms + (int64_t)ca->rev.crl_grace_ms)
		return X509_V_OK;
	if (ca->rev.crl_stale_allow) {
		*skip = 1;
		return X509_V_OK;
	}
	return X509_V_ERR_CRL_HAS_EXPIRED;
}

/* X509_V_OK, or why `x` (issued by `issuer`) fails revocation checking.
 * Sets *skip when crl-check is automatic and the issuer publishes no CRL
 * in the configuration (and none is due from a crl-url): only a missing
 * CRL is forgiven, and only then; or when crl-stale = allow lets a stale
 * CRL go unchecked. */
static int trust_cert_status(const struct trust_policy *tp, X509 *x,
                             X509 *issuer, time_t now, int *skip, int *stale)
{
	struct crl *c;
	int any, e;

	*skip = 0;
	if (x == issuer && X509_check_issued(x, x) != X509_V_OK) {
		/* The top of a partial chain (an intermediate trusted as an
		 * anchor): its issuer is not here to check a CRL with. As
		 * OpenSSL: no CRL under its issuer's name is a missing CRL,
		 * one is a CRL whose issuer cannot be found. */
		for (size_t i = 0; i < tp->n_crls; i++)
			if (X509_NAME_cmp(crl_issuer(tp->crls[i]),
			                  X509_get_issuer_name(x)) == 0)
				return X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER;
	}
	c = trust_best_crl(tp, x, issuer, now, &any);
	if (!any && tp->crl_check_auto) {
		const struct ca_entry *ca = trust_issuer_ca(tp, issuer);

		/* A crl-url not fetched yet: the CRL is due, not absent. */
		if (ca == NULL || !ca_crl_pending(ca)) {
			*skip = 1;
			return X509_V_OK;
		}
	}
	if (c == NULL)
		return X509_V_ERR_UNABLE_TO_GET_CRL;
	/* A self-issued top certificate that is not self-signed cannot sign
	 * its own CRL: crl_issued_by() would have failed above. */
	if ((X509_get_extension_flags(issuer) & EXFLAG_KUSAGE) != 0 &&
	    (X509_get_key_usage(issuer) & KU_CRL_SIGN) == 0)
		return X509_V_ERR_KEYUSAGE_NO_CRL_SIGN;
	e = crl_time_check(c, now);
	if (e == X509_V_ERR_CRL_HAS_EXPIRED)
		e = trust_stale_crl(tp, c, issuer, now, skip, stale);
	if (e != X509_V_OK || *skip)
		return e;
	e = crl_unusable(c);
	if (e != X509_V_OK)
		return e;
	if (crl_is_revoked(c, X509_get0_serialNumber(x)))
		return X509_V_ERR_CERT_REVOKED;
	return X509_V_OK;
}

/* The store's check_revocation: the leaf (crl-check leaf) or every
 * certificate of the chain (chain), each against the CRLs of its issuer,
 * the next certificate up (the top one is its own issuer). Errors go
 * through the verify callback as OpenSSL's own check reports them. */
static int trust_check_revocation(X509_STORE_CTX *ctx)
{
	struct trust_run *run = X509_STORE_CTX_get_app_data(ctx);
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
	X509_STORE_CTX_verify_cb cb = X509_STORE_CTX_get_verify_cb(ctx);
	int n = chain != NULL ? sk_X509_num(chain) : 0, last;

	if (run == NULL || run->tp->crl_check == CRL_CHECK_NONE || n == 0)
		return 1;
	last = run->tp->crl_check == CRL_CHECK_CHAIN ? n - 1 : 0;
	for (int i = 0; i <= last; i++) {
		X509 *x = sk_X509_value(chain, i);
		X509 *issuer = sk_X509_value(chain, i + 1 < n ? i + 1 : i);
		int skip, e = trust_cert_status(run->tp, x, issuer, run->now, &skip,
		                                &run->crl_stale);

		/* Only a current, usable CRL gets this far without an error
		 * other than "revoked": the leaf's status is then known. */
		if (i == 0 && ((e == X509_V_OK && !skip) ||
		               e == X509_V_ERR_CERT_REVOKED))
			run->leaf_revoked = e == X509_V_ERR_CERT_REVOKED;
		if (e == X509_V_OK)
			continue;
		X509_STORE_CTX_set_error_depth(ctx, i);
		X509_STORE_CTX_set_current_cert(ctx, x);
		X509_STORE_CTX_set_error(ctx, e);
		if (cb == NULL || !cb(0, ctx))
			return 0;
	}
	return 1;
}

static void trust_policy_free(struct trust_policy *tp)
{
	for (size_t i = 0; i < tp->n_cas; i++)
		ca_unref(tp->cas[i]);
	free(tp->cas);
	for (size_t i = 0; i < tp->n_crls; i++)
		crl_unref(tp->crls[i]);
	free(tp->crls);
	for (size_t i = 0; i < tp->n_identities; i++)
		free(tp->identities[i]);
	free(tp->identities);
	free(tp->pins);
	X509_STORE_free(tp->store);
	free(tp);
}

/* Copy the arrays of `p` into `tp`, taking references. */
static int trust_copy_params(struct trust_policy *tp,
                             const struct trust_params *p)
{
	tp->cas = calloc(p->n_cas + 1, sizeof(*tp->cas));
	tp->crls = calloc(p->n_crls + 1, sizeof(*tp->crls));
	tp->identities = calloc(p->n_identities + 1, sizeof(*tp->identities));
	tp->pins = calloc(p->n_pins + 1, sizeof(*tp->pins));
	if (tp->cas == NULL || tp->crls == NULL || tp->identities == NULL ||
	    tp->pins == NULL)
		return -1;
	for (; tp->n_cas < p->n_cas; tp->n_cas++) {
		int64_t g = ((int64_t)p->cas[tp->n_cas]->rev.crl_grace_ms + 999) / 1000;

		tp->cas[tp->n_cas] = ca_ref(p->cas[tp->n_cas]);
		if (g > tp->crl_grace_s)
			tp->crl_grace_s = g;
	}
	for (; tp->n_crls < p->n_crls; tp->n_crls++) {
		time_t nu = crl_next_update(p->crls[tp->n_crls]);

		tp->crls[tp->n_crls] = crl_ref(p->crls[tp->n_crls]);
		if (nu != 0 && (tp->crl_next_update == 0 ||
		                nu < tp->crl_next_update))
			tp->crl_next_update = nu;
	}
	for (; tp->n_identities < p->n_identities; tp->n_identities++) {
		tp->identities[tp->n_identities] =
			strdup(p->identities[tp->n_identities]);
		if (tp->identities[tp->n_identities] == NULL)
			return -1;
	}
	if (p->n_pins > 0)
		memcpy(tp->pins, p->pins, p->n_pins * sizeof(*p->pins));
	tp->n_pins = p->n_pins;
	return 0;
}

struct trust_policy *trust_policy_new(const struct trust_params *p,
                                      char *err, size_t errlen)
{
	struct trust_policy *tp;

	if (p->crl_check <= CRL_CHECK_DEFAULT || p->crl_check >= CRL_CHECK_COUNT) {
		/* config.c resolves DEFAULT before calling us. */
		snprintf(err, errlen, "crl-check not resolved");
		return NULL;
	}
	if (p->purpose != PURPOSE_CLIENT && p->purpose != PURPOSE_ANY) {
		snprintf(err, errlen, "invalid purpose");
		return NULL;
	}
	tp = calloc(1, sizeof(*tp));
	if (tp == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&tp->refs, 1);
	tp->purpose = p->purpose;
	tp->crl_check = p->crl_check;
	tp->crl_check_auto = p->crl_check_auto;
	tp->verify_depth = p->verify_depth;
	trust_params_key(p, tp->key);
	if (trust_copy_params(tp, p) == -1) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	tp->store = X509_STORE_new();
	if (tp->store == NULL) {
		verify_errmsg(err, errlen, "cannot allocate X509_STORE");
		goto fail;
	}
	for (size_t i = 0; i < tp->n_cas; i++) {
		const struct ca_entry *ca = tp->cas[i];

		/* X509_STORE_add_cert() takes its own reference and ignores a
		 * certificate that is already present (same CA listed twice,
		 * or the same certificate in two bundles). */
		for (int j = 0; j < sk_X509_num(ca->certs); j++) {
			if (X509_STORE_add_cert(tp->store,
			                        sk_X509_value(ca->certs, j)) != 1) {
				verify_errmsg(err, errlen,
				              "cannot add CA certificate");
				goto fail;
			}
		}
	}
	/* No X509_V_FLAG_CRL_CHECK: trust_check_revocation() does it. */
	if (X509_STORE_set_flags(tp->store, X509_V_FLAG_PARTIAL_CHAIN) != 1 ||
	    (tp->verify_depth >= 0 &&
	     X509_STORE_set_depth(tp->store, tp->verify_depth) != 1) ||
	    (tp->purpose == PURPOSE_CLIENT &&
	     X509_STORE_set_purpose(tp->store, X509_PURPOSE_SSL_CLIENT) != 1)) {
		verify_errmsg(err, errlen, "cannot set verify parameters");
		goto fail;
	}
	X509_STORE_set_check_revocation(tp->store, trust_check_revocation);
	tp->id = atomic_fetch_add(&trust_next_id, 1);
	ERR_clear_error();
	return tp;
fail:
	trust_policy_free(tp);
	ERR_clear_error();
	return NULL;
}

struct trust_policy *trust_policy_ref(struct trust_policy *tp)
{
	atomic_fetch_add_explicit(&tp->refs, 1, memory_order_relaxed);
	return tp;
}

void trust_policy_unref(struct trust_policy *tp)
{
	if (tp != NULL &&
	    atomic_fetch_sub_explicit(&tp->refs, 1, memory_order_acq_rel) == 1)
		trust_policy_free(tp);
}
enum mtls_result verify_result_from_error(int x509_err)
{
	switch (x509_err) {
	case X509_V_OK:
		return RESULT_OK;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return RESULT_EXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return RESULT_NOT_YET_VALID;
	case X509_V_ERR_CERT_REVOKED:
		return RESULT_REVOKED;
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
	case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
	case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
	case X509_V_ERR_DIFFERENT_CRL_SCOPE:
	case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
	case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
	/* A CRL we cannot interpret is as unusable as a missing one. */
	case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
		return RESULT_CRL_ERROR;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_UNTRUSTED:
	case X509_V_ERR_CERT_REJECTED:
		return RESULT_UNTRUSTED;
	case X509_V_ERR_INVALID_PURPOSE:
		return RESULT_BAD_PURPOSE;
	case X509_V_ERR_OUT_OF_MEM:
		return RESULT_INTERNAL_ERROR;
	default:
		/* Path length, bad signature, chain too long, invalid CA... */
		return RESULT_CHAIN_ERROR;
	}
}

/* RFC 2253 text of `name` into out[outlen], truncated, NUL-terminated.
 * XN_FLAG_RFC2253 escapes control characters and bytes >= 0x80, so the
 * result is printable ASCII and a cut cannot split a UTF-8 sequence. */
static void verify_name_str(BIO *bio, const X509_NAME *name, char *out,
                            size_t outlen)
{
	int n;

	out[0] = '\0';
	if (bio == NULL || name == NULL || outlen == 0)
		return;
	(void)BIO_reset(bio);
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0)
		return;
	n = BIO_read(bio, out, (int)(outlen - 1 > INT_MAX ? INT_MAX : outlen - 1));
	out[n > 0 ? n : 0] = '\0';
}

/* Serial as lowercase hex of its magnitude octets (like `openssl x509
 * -serial`, in lower case), '-' first when negative. ASN1_INTEGER keeps
 * the magnitude without DER's sign octet. An over-long serial (RFC 5280
 * allows 20 octets; OpenSSL parses more) is truncated to fit. */
static void verify_serial_str(const ASN1_INTEGER *ai, char *out, size_t outlen)
{
	const unsigned char *d = ASN1_STRING_get0_data(ai);
	size_t n = (size_t)ASN1_STRING_length(ai);
	size_t o = 0;

	if (ASN1_STRING_type(ai) == V_ASN1_NEG_INTEGER && outlen > 1)
		out[o++] = '-';
	if (n == 0 && outlen - o > 2) {
		out[o++] = '0';
		out[o++] = '0';
	}
	for (size_t i = 0; i < n && outlen - o > 2; i++) {
		hex_encode(&d[i], 1, &out[o]);
		o += 2;
	}
	out[o] = '\0';
}

static int64_t verify_time(const ASN1_TIME *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

/* A string from a certificate usable as a name: no NUL byte (a
 * "evil.com\0.good.com" trick must not match a "*.good.com" glob). */
static int verify_clean_name(const unsigned char *s, int len)
{
	return s != NULL && len > 0 && memchr(s, '\0', (size_t)len) == NULL;
}

/* 1 if the name may be reported: printable ASCII only (it ends up in
 * HAProxy variables, logs and headers) and no ", " (the list separator). */
static int verify_san_printable(const unsigned char *s, int len)
{
	for (int k = 0; k < len; k++) {
		if (s[k] < 0x20 || s[k] > 0x7e)
			return 0;
		if (s[k] == ',' && k + 1 < len && s[k + 1] == ' ')
			return 0;
	}
	return len > 0;
}

/* Append one entry to a ", "-separated list held in out[TRUST_SAN_MAX + 1].
 * Returns 0, or -1 when it does not fit: the list is complete, since only
 * its first whole entries are kept. */
static int verify_san_append(char *out, size_t *used, const unsigned char *s,
                             int len)
{
	size_t sep = *used > 0 ? 2 : 0;

	if ((size_t)len + sep > TRUST_SAN_MAX - *used)
		return -1;
	if (sep > 0)
		memcpy(out + *used, ", ", 2);
	memcpy(out + *used + sep, s, (size_t)len);
	*used += sep + (size_t)len;
	out[*used] = '\0';
	return 0;
}

/* The SPIFFE ID and the san_dns / san_uri / san_email lists, in
 * certificate order. A name that is not printable ASCII or holds ", " is
 * skipped; a list stops at the first entry that would take it past
 * TRUST_SAN_MAX. */
static void verify_sans(X509 *leaf, struct trust_result *v)
{
	GENERAL_NAMES *gens;
	size_t plen = sizeof(VERIFY_SPIFFE_PREFIX) - 1;
	size_t n_dns = 0, n_uri = 0, n_email = 0;
	int full_dns = 0, full_uri = 0, full_email = 0;

	v->spiffe_id[0] = v->san_dns[0] = v->san_uri[0] = v->san_email[0] = '\0';
	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	if (gens == NULL)
		return;
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
		const ASN1_IA5STRING *str;
		const unsigned char *s;
		int len, *full;
		char *list;
		size_t *used;

		if (gn->type == GEN_DNS) {
			str = gn->d.dNSName;
			list = v->san_dns; used = &n_dns; full = &full_dns;
		} else if (gn->type == GEN_URI) {
			str = gn->d.uniformResourceIdentifier;
			list = v->san_uri; used = &n_uri; full = &full_uri;
		} else if (gn->type == GEN_EMAIL) {
			str = gn->d.rfc822Name;
			list = v->san_email; used = &n_email; full = &full_email;
		} else {
			continue;
		}
		s = ASN1_STRING_get0_data(str);
		len = ASN1_STRING_length(str);
		if (s == NULL || len <= 0 || !verify_san_printable(s, len))
			continue;
		if (!*full && verify_san_append(list, used, s, len) != 0)
			*full = 1;
		/* Scheme compared case-insensitively (RFC 3986 3.1); an ID
		 * that does not fit is skipped rather than reported cut. A
		 * SPIFFE ID has no space either. */
		if (gn->type != GEN_URI || v->spiffe_id[0] != '\0' ||
		    (size_t)len < plen || (size_t)len >= sizeof(v->spiffe_id) ||
		    strncasecmp((const char *)s, VERIFY_SPIFFE_PREFIX, plen) != 0 ||
		    memchr(s, ' ', (size_t)len) != NULL)
			continue;
		memcpy(v->spiffe_id, s, (size_t)len);
		v->spiffe_id[len] = '\0';
	}
	GENERAL_NAMES_free(gens);
}

/* A key identifier as lowercase hex, or "" when there is none or it is
 * longer than TRUST_KEYID_MAX octets. */
static void verify_keyid(const ASN1_OCTET_STRING *id, char *out)
{
	int n = id != NULL ? ASN1_STRING_length(id) : 0;

	out[0] = '\0';
	if (n > 0 && n <= TRUST_KEYID_MAX)
		hex_encode(ASN1_STRING_get0_data(id), (size_t)n, out);
}

/* The details of the leaf into v, also handing back the SHA-256 of the
 * DER in md (for pins). Returns 0, or -1 if a digest could not be
 * computed. */
static int verify_fill_info(X509 *leaf, const uint8_t *der, size_t der_len,
                            struct trust_result *v, uint8_t *md)
{
	unsigned int mdlen = 0;
	uint8_t sha1[20];
	int rc = 0;
	BIO *bio;

	/* Only remove the errors this function causes. */
	ERR_set_mark();
	bio = BIO_new(BIO_s_mem());
	verify_name_str(bio, X509_get_subject_name(leaf), v->subject,
	                sizeof(v->subject));
	verify_name_str(bio, X509_get_issuer_name(leaf), v->issuer,
	                sizeof(v->issuer));
	BIO_free(bio);
	verify_serial_str(X509_get0_serialNumber(leaf), v->serial,
	                  sizeof(v->serial));
	if (EVP_Digest(der, der_len, md, &mdlen, EVP_sha256(), NULL) == 1 &&
	    mdlen == VERIFY_SHA256_LEN) {
		hex_encode(md, VERIFY_SHA256_LEN, v->fingerprint);
	} else {
		v->fingerprint[0] = '\0';
		rc = -1;
	}
	/* X509_digest() reuses the SHA-1 OpenSSL keeps of every parsed
	 * certificate. */
	if (X509_digest(leaf, EVP_sha1(), sha1, &mdlen) == 1 &&
	    mdlen == sizeof(sha1))
		hex_encode(sha1, sizeof(sha1), v->fingerprint_sha1);
	else
		rc = -1;
	/* Both are NULL when the extension is absent or does not parse. */
	verify_keyid(X509_get0_subject_key_id(leaf), v->ski);
	verify_keyid(X509_get0_authority_key_id(leaf), v->issuer_ski);
	v->not_before = verify_time(X509_get0_notBefore(leaf));
	v->not_after = verify_time(X509_get0_notAfter(leaf));
	verify_sans(leaf, v);
	v->has_cert_info = 1;
	ERR_pop_to_mark();
	return rc;
}

/* Length of the DER SEQUENCE (a certificate) starting at `q`, header
 * included, or 0 if the header is malformed or claims more than q..end.
 * Definite lengths only: a certificate is DER, and OpenSSL refuses
 * certificates of 100 kB and more anyway, so 3 length octets suffice. */
static size_t verify_der_seq_len(const uint8_t *q, const uint8_t *end)
{
	size_t avail = (size_t)(end - q), hdr = 2, len = 0;

	if (avail < 2 || q[0] != 0x30)
		return 0;
	if (q[1] < 0x80) {
		len = q[1];
	} else {
		size_t n = q[1] & 0x7f;

		/* 0x80 is BER's indefinite length; more than 3 octets is a
		 * certificate of 16 MB or more. */
		if (n == 0 || n > 3 || avail < 2 + n)
			return 0;
		for (size_t i = 0; i < n; i++)
			len = (len << 8) | q[2 + i];
		hdr += n;
	}
	if (len > avail - hdr)
		return 0;
	return hdr + len;
}

/* 1 if `der` is a certificate of the policy's store, compared by SHA-1 of
 * the encoding as X509_cmp() does (OpenSSL caches each store certificate's
 * SHA-1, so this costs one hash of `der`). */
static int verify_is_anchor(const struct trust_policy *p, const uint8_t *der,
                            size_t len)
{
	uint8_t md[EVP_MAX_MD_SIZE], amd[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, amdlen = 0;
	const EVP_MD *sha1 = EVP_sha1();

	if (EVP_Digest(der, len, md, &mdlen, sha1, NULL) != 1)
		return 0;
	for (size_t i = 0; i < p->n_cas; i++) {
		const struct ca_entry *ca = p->cas[i];

		for (int j = 0; j < sk_X509_num(ca->certs); j++) {
			if (X509_digest(sk_X509_value(ca->certs, j), sha1, amd,
			                &amdlen) == 1 && amdlen == mdlen &&
			    memcmp(md, amd, mdlen) == 0)
				return 1;
		}
	}
	return 0;
}

/* Parse the concatenated DER certificates of `chain` into a new stack of
 * untrusted intermediates. Returns RESULT_OK, RESULT_MALFORMED or
 * RESULT_INTERNAL_ERROR.
 *
 * A certificate identical to one of the policy's anchors is left out
 * instead of parsed: the store already holds it and OpenSSL (trusted
 * first) would use that copy anyway, while parsing costs more than a
 * signature check in OpenSSL 3.0. Leaving out an untrusted certificate
 * can only remove paths, never create one, so a false match would be
 * harmless. */
static enum mtls_result verify_parse_chain(const struct trust_policy *p,
                                           const uint8_t *chain,
                                           size_t chain_len,
                                           STACK_OF(X509) **out)
{
	const uint8_t *q = chain, *end = chain + chain_len;
	STACK_OF(X509) *sk = sk_X509_new_reserve(NULL, 4);
	size_t count = 0;

	*out = NULL;
	if (sk == NULL)
		return RESULT_INTERNAL_ERROR;
	while (q < end) {
		const uint8_t *next;
		size_t len = verify_der_seq_len(q, end);
		X509 *x;

		if (len == 0 || ++count > VERIFY_MAX_CHAIN)
			goto malformed;
		next = q + len;
		if (verify_is_anchor(p, q, len)) {
			q = next;
			continue;
		}
		x = d2i_X509(NULL, &q, (long)len);
		if (x == NULL || q != next) {
			X509_free(x);
			goto malformed;
		}
		if (sk_X509_push(sk, x) <= 0) {
			X509_free(x);
			sk_X509_pop_free(sk, X509_free);
			return RESULT_INTERNAL_ERROR;
		}
	}
	*out = sk;
	return RESULT_OK;
malformed:
	sk_X509_pop_free(sk, X509_free);
	return RESULT_MALFORMED;
}

/* Name of the first CA of `p` (policy order) holding `anchor`. */
static const char *verify_ca_name(const struct trust_policy *p, X509 *anchor)
{
	for (size_t i = 0; i < p->n_cas; i++) {
		const struct ca_entry *ca = p->cas[i];

		for (int j = 0; j < sk_X509_num(ca->certs); j++)
			if (X509_cmp(anchor, sk_X509_value(ca->certs, j)) == 0)
				return ca->name;
	}
	return NULL;
}

static int verify_glob_any(const struct trust_policy *p,
                           const unsigned char *s, int len)
{
	if (!verify_clean_name(s, len))
		return 0;
	for (size_t i = 0; i < p->n_identities; i++)
		if (policy_glob_match(p->identities[i], (const char *)s,
		                      (size_t)len))
			return 1;
	return 0;
}

/* 1 if one allow-identity pattern matches a DNS, URI or email SAN or a
 * subject CN of `leaf`, else 0. A name that cannot be decoded (including
 * on allocation failure) does not match: the check fails closed. */
static int verify_identity(const struct trust_policy *p, X509 *leaf)
{
	GENERAL_NAMES *gens;
	const X509_NAME *subj = X509_get_subject_name(leaf);
	int found = 0;

	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) &&
	     !found; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
		const ASN1_IA5STRING *s;

		if (gn->type == GEN_DNS)
			s = gn->d.dNSName;
		else if (gn->type == GEN_URI)
			s = gn->d.uniformResourceIdentifier;
		else if (gn->type == GEN_EMAIL)
			s = gn->d.rfc822Name;
		else
			continue;
		found = verify_glob_any(p, ASN1_STRING_get0_data(s),
		                        ASN1_STRING_length(s));
	}
	GENERAL_NAMES_free(gens);

	for (int idx = -1; !found && subj != NULL;) {
		const X509_NAME_ENTRY *e;
		unsigned char *utf8 = NULL;
		int len;

		idx = X509_NAME_get_index_by_NID(subj, NID_commonName, idx);
		if (idx < 0)
			break;
		e = X509_NAME_get_entry(subj, idx);
		/* A CN may be a BMPString or UniversalString: compare its
		 * UTF-8 form. */
		len = ASN1_STRING_to_UTF8(&utf8,
		                          X509_NAME_ENTRY_get_data(e));
		if (len < 0) {
			/* Unconvertible CN: not a match; allocation failure
			 * is indistinguishable here and fails closed. */
			continue;
		}
		found = verify_glob_any(p, utf8, len);
		OPENSSL_free(utf8);
	}
	return found;
}

static int verify_pin(const struct trust_policy *p, const uint8_t *md)
{
	for (size_t i = 0; i < p->n_pins; i++)
		if (memcmp(p->pins[i], md, VERIFY_SHA256_LEN) == 0)
			return 1;
	return 0;
}

/* The earliest moment after `now` at which this verdict could change: a
 * certificate of the chain becoming valid or expiring, or a CRL of the
 * policy being due for replacement. 0 when nothing bounds it. */
static int64_t verify_valid_until(const struct trust_policy *p, X509_STORE_CTX *ctx,
                                  X509 *leaf, time_t now)
{
	STACK_OF(X509) *vchain = ctx ? X509_STORE_CTX_get0_chain(ctx) : NULL;
	int64_t t = (int64_t)(now != 0 ? now : time(NULL)), until = 0, b;
	int i, n = vchain ? sk_X509_num(vchain) : 0;
	size_t j;

#define VERIFY_BOUND(x) do { if ((x) > t && (until == 0 || (x) < until)) until = (x); } while (0)
	for (i = -1; i < n; i++) {
		X509 *x = i < 0 ? leaf : sk_X509_value(vchain, i);

		if (!x)
			continue;
		b = verify_time(X509_get0_notBefore(x));
		VERIFY_BOUND(b);
		/* OpenSSL counts a certificate as expired from the second of
		 * its notAfter on (X509_cmp_time() returns -1 for "earlier
		 * or equal"): the result changes at notAfter itself. */
		b = verify_time(X509_get0_notAfter(x));
		VERIFY_BOUND(b);
	}
	if (p->crl_check != CRL_CHECK_NONE) {
		for (j = 0; j < p->n_crls; j++) {
			b = (int64_t)crl_next_update(p->crls[j]);
			VERIFY_BOUND(b);
			/* Stale within crl-grace, then past it. */
			if (b != 0 && p->crl_grace_s > 0)
				VERIFY_BOUND(b + p->crl_grace_s);
		}
	}
#undef VERIFY_BOUND
	return until;
}

void trust_result_reset(struct trust_result *v)
{
	v->result = RESULT_INTERNAL_ERROR;
	v->verify_error = 0;
	v->ca = NULL;
	v->has_cert_info = 0;
	v->revoked = TRUST_REVOKED_UNKNOWN;
	v->ocsp = TRUST_OCSP_NONE;
	v->crl_stale = 0;
	v->not_before = v->not_after = 0;
	v->valid_until = 0;
	v->subject[0] = v->issuer[0] = v->serial[0] = '\0';
	v->fingerprint[0] = v->fingerprint_sha1[0] = '\0';
	v->ski[0] = v->issuer_ski[0] = v->spiffe_id[0] = '\0';
	v->san_dns[0] = v->san_uri[0] = v->san_email[0] = '\0';
	v->chain_rfc9440[0] = '\0';
}

/* RFC 9440 section 2.1: the Client-Cert-Chain value for the verified
 * chain `vchain` (leaf first, anchor last): every certificate strictly
 * between the two, the leaf's issuer first, each as ":base64(DER):",
 * separated by ", ". Empty when the anchor issued the leaf, or when the
 * value does not fit `out` (never cut). */
static void verify_chain_rfc9440(STACK_OF(X509) *vchain, char *out,
                                 size_t outlen)
{
	int n = vchain != NULL ? sk_X509_num(vchain) : 0;
	size_t o = 0;

	out[0] = '\0';
	for (int i = 1; i < n - 1; i++) {
		unsigned char *der = NULL;
		int len = i2d_X509(sk_X509_value(vchain, i), &der);
		size_t b64, need;

		if (len <= 0) {
			out[0] = '\0';
			return;
		}
		b64 = 4 * (((size_t)len + 2) / 3);
		need = (o > 0 ? 2 : 0) + 2 + b64;
		if (need >= outlen - o) {
			OPENSSL_free(der);
			out[0] = '\0';
			return;
		}
		if (o > 0) {
			memcpy(out + o, ", ", 2);
			o += 2;
		}
		out[o++] = ':';
		o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, der, len);
		out[o++] = ':';
		out[o] = '\0';
		OPENSSL_free(der);
	}
}

/* OCSP for a leaf whose chain verified, when the [ca] of its issuer
 * asks for it (ocsp = soft or hard): RESULT_OK to go on, else the
 * result set in v (revoked; revocation_unknown in hard mode). Bounds
 * v->valid_until by the answer's life. Blocks for at most ocsp-timeout:
 * called on the verify threads. */
static enum mtls_result trust_ocsp(const struct trust_policy *p,
                                   X509_STORE_CTX *ctx, X509 *leaf,
                                   struct trust_result *v)
{
	STACK_OF(X509) *vchain = X509_STORE_CTX_get0_chain(ctx);
	X509 *issuer = vchain != NULL && sk_X509_num(vchain) > 1 ?
	               sk_X509_value(vchain, 1) : NULL;
	const struct ca_entry *ca = issuer ? trust_issuer_ca(p, issuer) : NULL;
	struct ocsp_opts o;
	enum ocsp_status st;
	int64_t until = 0;
	char why[512] = "";

	if (ca == NULL || ca->rev.ocsp_mode == OCSP_MODE_OFF)
		return RESULT_OK;
	o.ca = ca->name;
	o.url = ca->rev.ocsp_url;
	o.timeout_ms = ca->rev.ocsp_timeout_ms;
	o.max_age_ms = ca->rev.ocsp_max_age_ms;
	st = ocsp_check(leaf, issuer, ca->certs, &o, &until, why, sizeof(why));
	v->ocsp = (int)st;
	if (until != 0 && (v->valid_until == 0 || until < v->valid_until))
		v->valid_until = until;
	switch (st) {
	case OCSP_GOOD:
		return RESULT_OK;
	case OCSP_REVOKED:
		v->revoked = 1;
		v->verify_error = X509_V_ERR_CERT_REVOKED;
		v->result = RESULT_REVOKED;
		return RESULT_REVOKED;
	default:
		metrics_inc(ca->rev.ocsp_mode == OCSP_MODE_HARD ?
		            METRICS_OCSP_HARD_FAIL : METRICS_OCSP_SOFT_FAIL);
		log_warning("OCSP for serial %s of [ca %s]: %s: %s (ocsp = %s)",
		            v->serial, ca->name, ocsp_status_str(st), why,
		            ocsp_mode_str((enum ocsp_mode)ca->rev.ocsp_mode));
		if (ca->rev.ocsp_mode != OCSP_MODE_HARD)
			return RESULT_OK;
		v->result = RESULT_REVOCATION_UNKNOWN;
		return RESULT_REVOCATION_UNKNOWN;
	}
}

void trust_verify(const struct trust_policy *p, const uint8_t *cert,
                  size_t cert_len, const uint8_t *chain, size_t chain_len,
                  time_t now, struct trust_result *v)
{
	struct trust_run run;
	const uint8_t *q = cert;
	X509 *leaf = NULL;
	STACK_OF(X509) *untrusted = NULL;
	X509_STORE_CTX *ctx = NULL;
	uint8_t md[VERIFY_SHA256_LEN];
	enum mtls_result r;

	trust_result_reset(v);

	if (p == NULL || p->store == NULL)
		goto done;
	if (cert == NULL || cert_len == 0 || cert_len > LONG_MAX ||
	    (chain == NULL && chain_len != 0) || chain_len > LONG_MAX) {
		v->result = RESULT_MALFORMED;
		goto done;
	}
	/* One DER certificate, exactly: no BER indefinite length, nothing
	 * after it. */
	if (verify_der_seq_len(cert, cert + cert_len) != cert_len) {
		v->result = RESULT_MALFORMED;
		goto done;
	}
	leaf = d2i_X509(NULL, &q, (long)cert_len);
	if (leaf == NULL || q != cert + cert_len) {
		v->result = RESULT_MALFORMED;
		goto done;
	}
	if (verify_fill_info(leaf, cert, cert_len, v, md) != 0)
		goto done;  /* digest failed: pins could not be checked */

	if (chain != NULL && chain_len > 0) {
		r = verify_parse_chain(p, chain, chain_len, &untrusted);
		if (r != RESULT_OK) {
			v->result = r;
			goto done;
		}
	}

	ctx = X509_STORE_CTX_new();
	if (ctx == NULL ||
	    X509_STORE_CTX_init(ctx, p->store, leaf, untrusted) != 1)
		goto done;
	/* One clock for OpenSSL's checks and for the CRLs'. */
	if (now == 0)
		now = time(NULL);
	run.tp = p;
	run.now = now;
	run.leaf_revoked = TRUST_REVOKED_UNKNOWN;
	run.crl_stale = 0;
	X509_STORE_CTX_set_app_data(ctx, &run);
	X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), now);
	atomic_fetch_add_explicit(&trust_verify_count, 1, memory_order_relaxed);
	if (X509_verify_cert(ctx) != 1) {
		v->revoked = run.leaf_revoked;
		v->crl_stale = run.crl_stale;
		if (run.crl_stale)
			metrics_inc(METRICS_CRL_STALE);
		v->valid_until = verify_valid_until(p, ctx, leaf, now);
		v->verify_error = X509_STORE_CTX_get_error(ctx);
		v->result = v->verify_error == X509_V_OK ? RESULT_INTERNAL_ERROR :
		            verify_result_from_error(v->verify_error);
		goto done;
	}

	v->revoked = run.leaf_revoked;
	v->crl_stale = run.crl_stale;
	if (run.crl_stale)
		metrics_inc(METRICS_CRL_STALE);
	v->valid_until = verify_valid_until(p, ctx, leaf, now);
	{
		STACK_OF(X509) *vchain = X509_STORE_CTX_get0_chain(ctx);
		int n = vchain != NULL ? sk_X509_num(vchain) : 0;

		v->ca = n > 0 ? verify_ca_name(p, sk_X509_value(vchain, n - 1))
		              : NULL;
		/* Only a store certificate can end a verified chain, and the
		 * store holds nothing but the policy's CAs. */
		if (v->ca == NULL)
			goto done;
	}
	if (trust_ocsp(p, ctx, leaf, v) != RESULT_OK)
		goto done;
	if (p->n_identities > 0 && !verify_identity(p, leaf)) {
		v->result = RESULT_IDENTITY_MISMATCH;
		goto done;
	}
	if (p->n_pins > 0 && !verify_pin(p, md)) {
		v->result = RESULT_PIN_MISMATCH;
		goto done;
	}
	verify_chain_rfc9440(X509_STORE_CTX_get0_chain(ctx), v->chain_rfc9440,
	                     sizeof(v->chain_rfc9440));
	v->result = RESULT_OK;
done:
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(untrusted, X509_free);
	X509_free(leaf);
	ERR_clear_error();
}
