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

/* A `crl =` file and what it held. */
struct ca_crl_file {
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
};

/* What a [ca] section says: its name, the resolved CA file and `crl =`
 * files. */
struct ca_spec {
	const char *name;
	const char *file;
	const char *const *crl_files;
	size_t n_crl_files;
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
