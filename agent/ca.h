/*
 * ca.h - trust material: one [ca NAME] section as an immutable,
 * reference-counted object (its PEM bundle of CA certificates and its own
 * CRLs), loaded from files and shareable between configuration
 * generations.
 */
#ifndef MTLS_CA_H
#define MTLS_CA_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <openssl/x509.h>

#include "crl.h"

#define CA_WUR __attribute__((warn_unused_result))

#define CA_MAX_CERTS 1000              /* certificates in one [ca] file */
#define CA_MAX_FILE (16 * 1024 * 1024) /* one CA file */
#define CA_MAX_CRL_FILES 64            /* `crl =` lines in one section */

/* Most `crl-url` lines in one section. */
#define CA_MAX_CRL_URLS 8
#define CA_MAX_URL 2048

/* Revocation keys of a [ca] section beyond its `crl =` files: where its
 * CRLs are fetched, how often, and what a stale CRL is worth. */
struct ca_revocation {
	char *crl_urls[CA_MAX_CRL_URLS];
	size_t n_crl_urls;
	unsigned int crl_refresh_ms;        /* crl-refresh, default 1h */
	unsigned int crl_refresh_margin_ms; /* 0: 10 % of the CRL's validity */
	unsigned int crl_fetch_timeout_ms;  /* crl-fetch-timeout, default 10s */
	int crl_stale_allow;                /* crl-stale = allow */
	unsigned int crl_grace_ms;          /* crl-grace, default 0 */
	int ocsp_mode;                      /* enum ocsp_mode (ocsp.h) */
	char *ocsp_url;                     /* ocsp-url, NULL: the AIA's */
	unsigned int ocsp_timeout_ms;       /* ocsp-timeout, default 500ms */
	unsigned int ocsp_max_age_ms;       /* ocsp-max-age, default 1h */
};

#define CA_CRL_REFRESH_MS (3600u * 1000)
#define CA_CRL_FETCH_TIMEOUT_MS (10u * 1000)
#define CA_OCSP_TIMEOUT_MS 500u
#define CA_OCSP_MAX_AGE_MS (3600u * 1000)

/* Defaults into r (no URLs). */
void ca_revocation_defaults(struct ca_revocation *r);

/* Set a revocation key of [ca] (`crl-url`, `crl-refresh`,
 * `crl-refresh-margin`, `crl-fetch-timeout`, `crl-stale`, `crl-grace`,
 * `ocsp`, `ocsp-url`, `ocsp-timeout`, `ocsp-max-age`):
 * 0, 1 when `key` is not one of them, -1 with why in err. */
CA_WUR int ca_revocation_set(struct ca_revocation *r, const char *key,
                             const char *v, char *err, size_t errlen);
void ca_revocation_clear(struct ca_revocation *r);

/* Where the last good CRL fetched from `url` for [ca name] is kept:
 * STATE/crl/<32 hex digits of SHA-256(name, url)>.crl, into buf. */
void ca_crl_state_path(const char *state_dir, const char *name,
                       const char *url, char *buf, size_t len);

/* A `crl =` file and what it held. */
struct ca_crl_file {
	const char *url;        /* NULL; else a crl-url's copy in state-dir
	                           (into ca_entry.rev), absent until fetched:
	                           then no CRL and an all-zero digest */
	char *path;
	uint8_t digest[32];     /* SHA-256 of the file's bytes */
	struct crl **crls;      /* owned references */
	size_t n_crls;
};

struct ca_entry {
	atomic_uint refs;
	uint64_t id;            /* unique for the process lifetime */
	char *name;
	char *file;             /* resolved path */
	uint8_t digest[32];     /* SHA-256 of the file's bytes */
	STACK_OF(X509) *certs;  /* owned, at least one, all CAs */
	struct ca_crl_file *crl_files;
	size_t n_crl_files;
	time_t not_after;       /* earliest notAfter of `certs` */
	struct ca_revocation rev; /* owned copy */
};

/* What a [ca] section says: its name, the resolved CA file and `crl =`
 * files. */
struct ca_spec {
	const char *name;
	const char *file;
	const char *const *crl_files;
	size_t n_crl_files;
	int immutable;          /* every file is named by its content's digest
	                           (the tenant API's state): a prev naming the
	                           same files is reused without reading them */
	const struct ca_revocation *rev;  /* NULL: none */
	const char *state_dir;            /* for crl-url copies */
};

/* Load a CA entry from `spec`, reusing `prev` (may be NULL) when it has
 * the same name and every file still has the same bytes: the files are
 * read and hashed, never parsed again. On success *out holds a new
 * reference and *reused says which way it went. Returns 0, or -1 with
 * "what is wrong" in err (the caller adds FILE:LINE) and in *which the
 * file at fault: -1 the CA file, i the i-th CRL file. */
CA_WUR int ca_load(const struct ca_spec *spec, struct ca_entry *prev,
                   struct ca_entry **out, int *reused, int *which,
                   char *err, size_t errlen);

/* Whether `r` may replace `old` (NULL: nothing loaded yet) for `signer`:
 * -1 with why in err when need_signed and no certificate of `signer`
 * issued r, or when r's cRLNumber is lower than old's or its thisUpdate
 * older. A changed `crl =` file is held to this (need_signed when the
 * loaded CRL was signed by the section's certificates), and so is every
 * fetched CRL (always need_signed). */
CA_WUR int ca_crl_successor(const struct ca_entry *signer, struct crl *old,
                            struct crl *r, int need_signed, char *err,
                            size_t errlen);

struct ca_entry *ca_ref(struct ca_entry *ca);
void ca_unref(struct ca_entry *ca);

/* 1 if `ca` has crl-url lines and none of their copies holds a CRL yet:
 * its certificates' CRLs are due, not absent. */
int ca_crl_pending(const struct ca_entry *ca);

/* Number of own CRLs, and the i-th (over every `crl =` file, in order). */
size_t ca_crl_count(const struct ca_entry *ca);
struct crl *ca_crl_at(const struct ca_entry *ca, size_t i);

/* Warn about what will soon stop working, or already has. */
#define CA_WARN_CRL_SECONDS (24 * 3600)      /* CRL within a day of nextUpdate */
#define CA_WARN_CERT_SECONDS (30 * 24 * 3600) /* CA within 30 days of notAfter */

/* Receives one expiry note of ca_expiry_notes(): `crl_file` is -1 for
 * the CA file, else the index of the `crl =` file concerned. */
typedef void (*ca_note_fn)(void *ctx, int crl_file, const char *msg);

/* Call `note` for every CA certificate of `ca` expired or expiring
 * within CA_WARN_CERT_SECONDS of `now`, and every CRL past or within
 * CA_WARN_CRL_SECONDS of its nextUpdate (its certificates then get
 * crl_error). Returns the number of notes. Used at load, and by whoever
 * repeats the warnings while they hold. */
int ca_expiry_notes(const struct ca_entry *ca, time_t now, ca_note_fn note,
                    void *ctx);

/* RFC 2253 text of a name into buf[len]. */
void ca_name_str(const X509_NAME *name, char *buf, size_t len);

/* 1 if `ca` issued `x` (names and signature), x != ca. */
int ca_cert_issued_by(X509 *x, X509 *ca);

#endif /* MTLS_CA_H */
