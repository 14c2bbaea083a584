/*
 * test_api.c - the tenant API in process (api.c, apiobj.c, store.c):
 * api_handle() driven directly, with a host that installs generations in
 * a variable, against real configuration files in a temporary directory.
 * The HTTP layer and the real agent are tested by the integration tests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "api.h"
#include "apihost.h"
#include "apiobj.h"
#include "ca.h"
#include "config.h"
#include "crl.h"
#include "hosts.h"
#include "pki.h"
#include "trust.h"

static char *dir;
static char main_path[1024];
static struct pki_cert *ca_a, *ca_b, *leaf_a, *not_ca;

/* ---- a host for the API (apihost.h) -------------------------------------- */

static struct apihost host = { .main_path = main_path };
static struct api *api;

/* ---- fixtures ----------------------------------------------------------- */

static char *pem_of(const struct pki_cert *c)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *s;
	long n;

	assert_non_null(b);
	assert_int_equal(PEM_write_bio_X509(b, c->x509), 1);
	n = BIO_get_mem_data(b, &p);
	s = strndup(p, (size_t)n);
	BIO_free(b);
	return s;
}

static const char *at(const char *rel)
{
	static char bufs[4][1024];
	static int k;
	char *b = bufs[k++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s/%s", dir, rel);
	return b;
}

static int group_setup(void **state)
{
	(void)state;
	ca_a = pki_make(&(struct pki_cert_opts){ .cn = "API A", .is_ca = 1 }, NULL);
	ca_b = pki_make(&(struct pki_cert_opts){ .cn = "API B", .is_ca = 1 }, NULL);
	leaf_a = pki_make(&(struct pki_cert_opts){ .cn = "client-a",
	                  .eku = PKI_EKU_CLIENT }, ca_a);
	not_ca = pki_make(&(struct pki_cert_opts){ .cn = "not a CA" }, NULL);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	pki_free(ca_a);
	pki_free(ca_b);
	pki_free(leaf_a);
	pki_free(not_ca);
	return 0;
}

static int setup(void **state)
{
	char err[CONFIG_ERR_LEN];
	FILE *f;

	(void)state;
	dir = pki_tmpdir();
	pki_write_pem(at("file-ca.pem"), (const struct pki_cert *const[]){ ca_b }, 1);
	snprintf(main_path, sizeof(main_path), "%s/main.conf", dir);
	f = fopen(main_path, "w");
	assert_non_null(f);
	fputs("[agent]\nstate-dir = state\n\n[ca filed]\nfile = file-ca.pem\n\n"
	      "[host file.example.com]\nca = filed\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(config_load(main_path, &host.live, err, sizeof(err)), 0);
	host.gen = 1;
	api = api_new(&apihost_ops, &host);
	assert_non_null(api);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	api_free(api);
	apihost_free(&host);
	pki_rmdir(dir);
	dir = NULL;
	return 0;
}

struct reply {
	int status;
	json_t *doc;
	char etag[40];
	uint64_t generation;
	const char *allow;
};

static struct reply call(const char *method, const char *path, const char *if_match,
                         json_t *body)
{
	struct api_request rq = {
		.method = method, .path = path, .who = "test", .if_match = if_match,
		.content_type = body != NULL ? "application/json" : NULL,
	};
	struct api_response rs;
	struct reply r = { 0 };
	char *text = NULL;

	if (body != NULL) {
		text = json_dumps(body, 0);
		rq.body = text;
		rq.body_len = strlen(text);
		json_decref(body);
	}
	api_handle(api, &rq, &rs);
	r.status = rs.status;
	r.generation = rs.generation;
	r.allow = rs.allow;
	memcpy(r.etag, rs.etag, sizeof(r.etag));
	if (rs.body != NULL) {
		r.doc = json_loads(rs.body, 0, NULL);
		assert_non_null(r.doc);
	}
	free(rs.body);
	free(text);
	return r;
}

static const char *err_field(const struct reply *r)
{
	return json_string_value(json_object_get(json_object_get(r->doc, "error"),
	                                         "field"));
}

static const char *err_msg(const struct reply *r)
{
	return json_string_value(json_object_get(json_object_get(r->doc, "error"),
	                                         "message"));
}

/* Every file of the state directory with its bytes, as one string. */
static char *snapshot(void)
{
	char *out = calloc(1, 1), path[2048];
	size_t len = 0;
	const char *subs[] = { "state", "state/pem" };

	for (size_t s = 0; s < 2; s++) {
		DIR *d = opendir(at(subs[s]));
		struct dirent *de;

		if (d == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			struct stat st;
			FILE *f;
			char *grown;

			snprintf(path, sizeof(path), "%s/%s/%s", dir, subs[s], de->d_name);
			if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
				continue;
			grown = realloc(out, len + strlen(path) + (size_t)st.st_size + 4);
			assert_non_null(grown);
			out = grown;
			len += (size_t)sprintf(out + len, "%s\n", path);
			f = fopen(path, "r");
			assert_non_null(f);
			len += fread(out + len, 1, (size_t)st.st_size, f);
			fclose(f);
			out[len] = '\0';
		}
		closedir(d);
	}
	return out;
}

static json_t *ca_body(const char *name, const struct pki_cert *c)
{
	char *pem = pem_of(c);
	json_t *b = json_pack("{s:s,s:s}", "name", name, "certificates", pem);

	free(pem);
	return b;
}

/* ---- tests -------------------------------------------------------------- */

static void test_ca_create_get_and_persist(void **state)
{
	struct reply r, g;
	char err[CONFIG_ERR_LEN], fp[65];
	struct config *again = NULL;
	const json_t *d;
	unsigned char md[32];
	unsigned int mdlen;

	(void)state;
	r = call("POST", "/v1/cas", NULL, ca_body("partner-a", ca_a));
	assert_int_equal(r.status, 201);
	assert_int_equal(r.generation, 2);
	assert_true(strlen(r.etag) == 34 && r.etag[0] == '"');
	assert_string_equal(json_string_value(json_object_get(r.doc, "name")), "partner-a");
	assert_string_equal(json_string_value(json_object_get(r.doc, "source")), "api");
	d = json_array_get(json_object_get(r.doc, "details"), 0);
	assert_string_equal(json_string_value(json_object_get(d, "subject")), "CN=API A");
	X509_digest(ca_a->x509, EVP_sha256(), md, &mdlen);
	for (unsigned int i = 0; i < 32; i++)
		sprintf(fp + 2 * i, "%02x", md[i]);
	assert_string_equal(json_string_value(json_object_get(d, "sha256")), fp);
	assert_non_null(json_object_get(d, "not_after"));
	json_decref(r.doc);

	g = call("GET", "/v1/cas/partner-a", NULL, NULL);
	assert_int_equal(g.status, 200);
	assert_string_equal(g.etag, r.etag);
	json_decref(g.doc);

	/* What is live is what is on disk: the watch sees no change. */
	assert_int_equal(config_changed(host.live, err, sizeof(err)), 0);
	/* On disk, as an ordinary file: a load from the files alone has it. */
	assert_int_equal(access(at("state/api.conf"), R_OK), 0);
	assert_int_equal(config_load(main_path, &again, err, sizeof(err)), 0);
	assert_int_equal(again->n_cas, 2);
	assert_string_equal(again->cas[1]->name, "partner-a");
	config_free(again);

	/* Same name again: 409, nothing changes. */
	r = call("POST", "/v1/cas", NULL, ca_body("partner-a", ca_b));
	assert_int_equal(r.status, 409);
	json_decref(r.doc);
}

static void test_refused_writes_change_nothing(void **state)
{
	struct reply r;
	char *before, *after;
	json_t *b;

	(void)state;
	r = call("POST", "/v1/cas", NULL, ca_body("partner-a", ca_a));
	assert_int_equal(r.status, 201);
	json_decref(r.doc);
	before = snapshot();

	r = call("POST", "/v1/cas", NULL, ca_body("leafy", not_ca));
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "certificates");
	assert_non_null(strstr(err_msg(&r), "not a CA"));
	json_decref(r.doc);

	b = json_pack("{s:s,s:s}", "name", "junk", "certificates", "-----BEGIN "
	              "CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
	r = call("POST", "/v1/cas", NULL, b);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "certificates");
	json_decref(r.doc);

	b = ca_body("x", ca_a);
	json_object_set_new(b, "colour", json_string("blue"));
	r = call("POST", "/v1/cas", NULL, b);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "colour");
	json_decref(r.doc);

	r = call("PUT", "/v1/hosts/api.example.com", NULL,
	         json_pack("{s:[s]}", "ca", "nosuch"));
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "ca");
	json_decref(r.doc);

	r = call("PUT", "/v1/hosts/a*b.example.com", NULL,
	         json_pack("{s:[s]}", "ca", "partner-a"));
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "pattern");
	json_decref(r.doc);

	r = call("PUT", "/v1/hosts/api.example.com", NULL,
	         json_pack("{s:s}", "mode", "enforce"));
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "ca");
	json_decref(r.doc);

	r = call("PUT", "/v1/hosts/api.example.com", NULL,
	         json_pack("{s:[s],s:s}", "ca", "partner-a", "crl_check", "leaf"));
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "crl_check");
	json_decref(r.doc);

	/* The files' objects are read-only, and the answer says where. */
	r = call("PUT", "/v1/cas/filed", NULL, ca_body("filed", ca_a));
	assert_int_equal(r.status, 409);
	assert_non_null(strstr(err_msg(&r), "main.conf:4"));
	json_decref(r.doc);
	r = call("DELETE", "/v1/hosts/file.example.com", NULL, NULL);
	assert_int_equal(r.status, 409);
	assert_non_null(strstr(err_msg(&r), "main.conf:7"));
	json_decref(r.doc);

	after = snapshot();
	assert_string_equal(before, after);
	free(before);
	free(after);
	assert_int_equal(host.gen, 2);
}

static void test_log_then_enforce(void **state)
{
	struct reply r;
	const struct host_policy *h;
	char tag[40];

	(void)state;
	r = call("POST", "/v1/cas", NULL, ca_body("partner-a", ca_a));
	json_decref(r.doc);
	/* The association creates the host in mode log. */
	r = call("PUT", "/v1/cas/partner-a/hostnames", NULL,
	         json_pack("{s:[s]}", "hostnames", "API.example.com."));
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_array_get(
		json_object_get(r.doc, "hostnames"), 0)), "api.example.com");
	json_decref(r.doc);
	h = config_lookup(host.live, "api.example.com", 15);
	assert_non_null(h);
	assert_int_equal(h->mode, MODE_LOG);

	r = call("GET", "/v1/hosts/api.example.com", NULL, NULL);
	assert_int_equal(r.status, 200);
	memcpy(tag, r.etag, sizeof(tag));
	json_decref(r.doc);

	/* A stale tag loses; the current one wins. */
	r = call("PATCH", "/v1/hosts/api.example.com", "\"0000\"",
	         json_pack("{s:s}", "mode", "enforce"));
	assert_int_equal(r.status, 412);
	json_decref(r.doc);
	r = call("PATCH", "/v1/hosts/api.example.com", tag,
	         json_pack("{s:s}", "mode", "enforce"));
	if (r.status != 200)
		fprintf(stderr, "%s\n", err_msg(&r));
	assert_int_equal(r.status, 200);
	assert_string_not_equal(r.etag, tag);
	assert_string_equal(json_string_value(json_object_get(r.doc, "mode")), "enforce");
	json_decref(r.doc);
	h = config_lookup(host.live, "api.example.com", 15);
	assert_int_equal(h->mode, MODE_ENFORCE);
	{
		char why[CONFIG_ERR_LEN];

		/* A derived generation records the state file it wrote. */
		assert_int_equal(config_changed(host.live, why, sizeof(why)), 0);
	}

	/* In use: the CA cannot go. */
	r = call("DELETE", "/v1/cas/partner-a", NULL, NULL);
	assert_int_equal(r.status, 409);
	json_decref(r.doc);
	r = call("DELETE", "/v1/hosts/api.example.com", NULL, NULL);
	assert_int_equal(r.status, 204);
	r = call("DELETE", "/v1/cas/partner-a", NULL, NULL);
	assert_int_equal(r.status, 204);
	assert_int_equal(host.live->n_cas, 1);
	/* Its PEM file went with it. */
	{
		char *snap = snapshot();

		assert_null(strstr(snap, ".pem\n"));
		free(snap);
	}
}

static void test_verify_answers_the_variables(void **state)
{
	struct reply r;
	char *pem = pem_of(leaf_a);
	const json_t *v;

	(void)state;
	r = call("POST", "/v1/cas", NULL, ca_body("partner-a", ca_a));
	json_decref(r.doc);
	r = call("PUT", "/v1/hosts/api.example.com", NULL,
	         json_pack("{s:[s],s:s}", "ca", "partner-a", "mode", "enforce"));
	assert_int_equal(r.status, 201);
	json_decref(r.doc);
	r = call("POST", "/v1/verify", NULL, json_pack("{s:s,s:s}", "host",
	         "api.example.com", "certificate", pem));
	assert_int_equal(r.status, 200);
	v = json_object_get(r.doc, "variables");
	assert_string_equal(json_string_value(json_object_get(v, "action")), "allow");
	assert_string_equal(json_string_value(json_object_get(v, "result")), "ok");
	assert_string_equal(json_string_value(json_object_get(v, "ca")), "partner-a");
	assert_true(json_is_true(json_object_get(v, "verified")));
	assert_string_equal(json_string_value(json_object_get(v, "subject")), "CN=client-a");
	json_decref(r.doc);
	/* The file's host does not trust partner-a. */
	r = call("POST", "/v1/verify", NULL, json_pack("{s:s,s:s}", "host",
	         "file.example.com", "certificate", pem));
	v = json_object_get(r.doc, "variables");
	assert_string_equal(json_string_value(json_object_get(v, "action")), "deny");
	assert_string_equal(json_string_value(json_object_get(v, "result")), "untrusted");
	json_decref(r.doc);
	free(pem);
}

static void test_ca_revocation_fields(void **state)
{
	struct reply r, g;
	json_t *b;
	FILE *f;
	char text[4096];
	size_t n;

	(void)state;
	b = ca_body("fetched", ca_a);
	json_object_set_new(b, "crl_urls", json_pack("[s]", "http://127.0.0.1:9/a.crl"));
	json_object_set_new(b, "ocsp", json_string("soft"));
	json_object_set_new(b, "crl_refresh", json_string("1800s"));
	json_object_set_new(b, "crl_stale", json_string("allow"));
	r = call("PUT", "/v1/cas/fetched", NULL, b);
	assert_int_equal(r.status, 201);
	assert_string_equal(json_string_value(json_array_get(json_object_get(r.doc,
		"crl_urls"), 0)), "http://127.0.0.1:9/a.crl");
	assert_string_equal(json_string_value(json_object_get(r.doc, "ocsp")), "soft");
	/* Normalized: the largest whole unit. */
	assert_string_equal(json_string_value(json_object_get(r.doc, "crl_refresh")), "30m");
	assert_string_equal(json_string_value(json_object_get(r.doc, "crl_stale")), "allow");
	/* Stored as the file's keys. */
	f = fopen(at("state/api.conf"), "r");
	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	assert_non_null(strstr(text, "crl-url = http://127.0.0.1:9/a.crl\n"));
	assert_non_null(strstr(text, "ocsp = soft\n"));
	/* A GET body PUT back is the same object. */
	g = call("PUT", "/v1/cas/fetched", NULL, json_copy(r.doc));
	assert_int_equal(g.status, 200);
	assert_string_equal(g.etag, r.etag);
	json_decref(g.doc);
	json_decref(r.doc);

	b = ca_body("fetched", ca_a);
	json_object_set_new(b, "ocsp", json_string("maybe"));
	r = call("PUT", "/v1/cas/fetched", NULL, b);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "ocsp");
	json_decref(r.doc);
	b = ca_body("fetched", ca_a);
	json_object_set_new(b, "crl_urls", json_pack("[s]", "ftp://x/a.crl"));
	r = call("PUT", "/v1/cas/fetched", NULL, b);
	assert_int_equal(r.status, 400);
	assert_string_equal(err_field(&r), "crl_urls");
	json_decref(r.doc);
}

static char *crl_pem(X509_CRL *const *crls, size_t n)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *s;
	long len;

	assert_non_null(b);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(PEM_write_bio_X509_CRL(b, crls[i]), 1);
	len = BIO_get_mem_data(b, &p);
	s = strndup(p, (size_t)len);
	BIO_free(b);
	return s;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void same_crls(struct crl *const *a, size_t na, struct crl *const *b,
                      size_t nb, const char *what)
{
	if (na != nb)
		fail_msg("%s: %zu CRLs, a load has %zu", what, na, nb);
	for (size_t k = 0; k < na; k++)
		if (memcmp(crl_digest(a[k]), crl_digest(b[k]), 32) != 0)
			fail_msg("%s: CRL %zu differs from a load's", what, k);
}

/* The state file the last write wrote is the live generation's objects
 * rendered (the writes start from the state the one before left, not
 * from the generation: a wrong object there shows here). */
static void same_state_file(const char *step)
{
	struct api_state st;
	struct api_line *lines = NULL;
	size_t len = 0, n_lines = 0, flen;
	char *text, *file, *a, *b;
	FILE *f;

	assert_int_equal(api_state_from_config(host.live, &st), 0);
	text = api_state_render(&st, 0, &len, &lines, &n_lines);
	assert_non_null(text);
	f = fopen(at("state/api.conf"), "r");
	assert_non_null(f);
	file = calloc(1, len + 4096);
	assert_non_null(file);
	flen = fread(file, 1, len + 4095, f);
	fclose(f);
	file[flen] = '\0';
	/* After the first line (it names the generation). */
	a = strchr(text, '\n');
	b = strchr(file, '\n');
	assert_non_null(a);
	assert_non_null(b);
	if (strcmp(a, b) != 0)
		fail_msg("%s: the state file is not the live objects:\n%s\n---\n%s", step,
		         b, a);
	free(file);
	free(text);
	free(lines);
	api_state_free(&st);
}

/* The live generation (derived by the writes) is what a load of the same
 * files from scratch builds: CAs, their effective CRLs, every host's
 * trust policy, the warnings. */
static void same_as_load(const char *step)
{
	struct config *fresh = NULL;
	char err[CONFIG_ERR_LEN], **wa, **wb;

	if (config_load(main_path, &fresh, err, sizeof(err)) != 0)
		fail_msg("%s: the files do not load: %s", step, err);
	assert_int_equal(host.live->n_cas, fresh->n_cas);
	for (size_t i = 0; i < host.live->n_cas; i++) {
		assert_string_equal(host.live->cas[i]->name, fresh->cas[i]->name);
		assert_memory_equal(host.live->cas[i]->digest, fresh->cas[i]->digest, 32);
		assert_int_equal(host.live->ca_origin[i].line, fresh->ca_origin[i].line);
		assert_int_equal(host.live->ca_origin[i].source, fresh->ca_origin[i].source);
		same_crls(host.live->ca_eff[i].crls, host.live->ca_eff[i].n, fresh->ca_eff[i].crls,
		          fresh->ca_eff[i].n, host.live->cas[i]->name);
	}
	assert_int_equal(host.live->n_hosts, fresh->n_hosts);
	assert_int_equal(host.live->n_trusts, fresh->n_trusts);
	for (size_t i = 0; i < host.live->n_hosts; i++) {
		const struct host_policy *a = host.live->hosts[i], *b = fresh->hosts[i];

		assert_string_equal(a->pattern, b->pattern);
		assert_int_equal(a->mode, b->mode);
		assert_int_equal(host.live->host_origin[i].line, fresh->host_origin[i].line);
		assert_int_equal(a->trust == NULL, b->trust == NULL);
		if (a->trust == NULL)
			continue;
		assert_int_equal(a->trust->n_cas, b->trust->n_cas);
		for (size_t k = 0; k < a->trust->n_cas; k++)
			assert_memory_equal(a->trust->cas[k]->digest, b->trust->cas[k]->digest, 32);
		same_crls(a->trust->crls, a->trust->n_crls, b->trust->crls,
		          b->trust->n_crls, a->pattern);
		assert_int_equal(a->trust->crl_check, b->trust->crl_check);
		assert_int_equal(a->trust->crl_check_auto, b->trust->crl_check_auto);
	}
	if (host.live->n_warnings != fresh->n_warnings)
		fail_msg("%s: %zu warnings, a load has %zu (first: %s)", step,
		         host.live->n_warnings, fresh->n_warnings,
		         fresh->n_warnings > 0 ? fresh->warnings[0] :
		         host.live->warnings[0]);
	wa = calloc(host.live->n_warnings + 1, sizeof(*wa));
	wb = calloc(fresh->n_warnings + 1, sizeof(*wb));
	assert_non_null(wa);
	assert_non_null(wb);
	memcpy(wa, host.live->warnings, host.live->n_warnings * sizeof(*wa));
	memcpy(wb, fresh->warnings, fresh->n_warnings * sizeof(*wb));
	qsort(wa, host.live->n_warnings, sizeof(*wa), cmp_strp);
	qsort(wb, fresh->n_warnings, sizeof(*wb), cmp_strp);
	for (size_t i = 0; i < host.live->n_warnings; i++)
		assert_string_equal(wa[i], wb[i]);
	free(wa);
	free(wb);
	config_free(fresh);
	same_state_file(step);
}

static json_t *ca_crl_body(const char *name, const struct pki_cert *const *certs,
                           size_t n, X509_CRL *const *crls, size_t n_crls)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *pem, *crl = n_crls > 0 ? crl_pem(crls, n_crls) : NULL;
	json_t *body;
	long len;

	assert_non_null(b);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(PEM_write_bio_X509(b, certs[i]->x509), 1);
	len = BIO_get_mem_data(b, &p);
	pem = strndup(p, (size_t)len);
	body = json_pack("{s:s,s:s}", "name", name, "certificates", pem);
	if (n_crls > 0)
		json_object_set_new(body, "crls", json_string(crl));
	BIO_free(b);
	free(pem);
	free(crl);
	return body;
}

static void write_ok(const char *method, const char *path, json_t *body, int status)
{
	struct reply r = call(method, path, NULL, body);

	if (r.status != status)
		fail_msg("%s %s: %d %s", method, path, r.status,
		         r.doc != NULL && err_msg(&r) != NULL ? err_msg(&r) : "");
	json_decref(r.doc);
}

/* CA writes derive the generation (config_derive) instead of loading the
 * files: whatever they change, CRLs following their issuer into another
 * section, a certificate in two sections, the hosts over a changed CA,
 * the result is what a load gives. A file's host over an API CA makes a
 * CA write load the files. */
static void test_ca_writes_derive_what_a_load_builds(void **state)
{
	struct pki_cert *root = pki_make(&(struct pki_cert_opts){ .cn = "D Root",
	                                 .is_ca = 1 }, NULL);
	struct pki_cert *root2 = pki_make(&(struct pki_cert_opts){ .cn = "D Root",
	                                  .is_ca = 1 }, NULL);
	struct pki_cert *inter = pki_make(&(struct pki_cert_opts){ .cn = "D Inter",
	                                  .is_ca = 1 }, root);
	uint64_t serial = 99;
	/* By the root, listed under the intermediate's section: it follows
	 * its issuer. The intermediate's is due within the day: a warning. */
	X509_CRL *by_root = pki_crl(root, &serial, 1, -60, 86400 * 7);
	X509_CRL *by_inter = pki_crl(inter, NULL, 0, -60, 3600);
	X509_CRL *both[2] = { by_root, by_inter };
	FILE *f;

	(void)state;
	host.rebuilds = 0;
	write_ok("POST", "/v1/cas", ca_crl_body("root", (const struct pki_cert *const[]){ root },
	         1, NULL, 0), 201);
	same_as_load("root");
	write_ok("POST", "/v1/cas", ca_crl_body("inter", (const struct pki_cert *const[]){ inter },
	         1, both, 2), 201);
	same_as_load("inter with the root's CRL");
	/* The root's section has the root's CRL now, and the intermediate's
	 * (a client may send the intermediate under a root-only host). */
	assert_int_equal(host.live->ca_eff[apiobj_find_ca(host.live, "root")].n, 2);
	write_ok("PUT", "/v1/hosts/h1.example.com", json_pack("{s:[s]}", "ca", "root"), 201);
	write_ok("PUT", "/v1/hosts/h2.example.com", json_pack("{s:[s]}", "ca", "inter"), 201);
	write_ok("PUT", "/v1/hosts/h3.example.com", json_pack("{s:[s,s]}", "ca", "inter",
	         "root"), 201);
	write_ok("PUT", "/v1/hosts/h4.example.com", json_pack("{s:[],s:s}", "ca", "mode",
	         "off"), 201);
	same_as_load("hosts");
	/* The intermediate in a second section without its CRL: a warning. */
	write_ok("POST", "/v1/cas", ca_crl_body("dup", (const struct pki_cert *const[]){
	         root, inter }, 2, NULL, 0), 201);
	same_as_load("a certificate in two sections");
	/* The root's CRL goes: h1 (root only) is built again without it. */
	assert_int_equal(host.live->hosts[apiobj_find_host(host.live, "h1.example.com", NULL, 0)]
	                 ->trust->n_crls, 2);
	write_ok("PUT", "/v1/cas/inter", ca_crl_body("inter", (const struct pki_cert *const[]){
	         inter }, 1, &by_inter, 1), 200);
	same_as_load("inter without the root's CRL");
	assert_int_equal(host.live->hosts[apiobj_find_host(host.live, "h1.example.com", NULL, 0)]
	                 ->trust->n_crls, 1);
	write_ok("PUT", "/v1/cas/root", ca_crl_body("root", (const struct pki_cert *const[]){
	         root2 }, 1, NULL, 0), 200);
	same_as_load("another root certificate");
	write_ok("DELETE", "/v1/cas/dup", NULL, 204);
	same_as_load("dup deleted");
	assert_int_equal(host.rebuilds, 0);

	/* A host of the files over an API CA: a load must build it. */
	f = fopen(main_path, "a");
	assert_non_null(f);
	fputs("\n[host filed2.example.com]\nca = root\n", f);
	assert_int_equal(fclose(f), 0);
	{
		struct config *next = NULL;
		char err[CONFIG_ERR_LEN];
		uint64_t gen;

		if (config_reload(main_path, host.live, &next, err, sizeof(err)) != 0)
			fail_msg("reload: %s", err);
		assert_int_equal(apihost_install(&host, next, "test", &gen), 0);
	}
	write_ok("PUT", "/v1/cas/root", ca_crl_body("root", (const struct pki_cert *const[]){
	         root }, 1, NULL, 0), 200);
	assert_int_equal(host.rebuilds, 1);
	same_as_load("a file's host over a changed API CA");

	X509_CRL_free(by_root);
	X509_CRL_free(by_inter);
	pki_free(inter);
	pki_free(root2);
	pki_free(root);
}

/* The state's index by name against a scan: appends past a rehash,
 * replacements in place, removals (entries move), names that collide in
 * a small table. */
static void test_state_index(void **state)
{
	struct api_state st = { 0 };
	char name[64];
	size_t n = 300;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		struct api_host h = { 0 };

		snprintf(name, sizeof(name), "h%zu.example.com", i);
		h.pattern = strdup(name);
		assert_non_null(h.pattern);
		assert_int_equal(api_state_put_host(&st, -1, &h), 0);
		/* Every earlier one is still found where it is. */
		if (i % 37 == 0)
			for (size_t k = 0; k <= i; k++) {
				snprintf(name, sizeof(name), "h%zu.example.com", k);
				assert_int_equal(api_state_find_host(&st, name), (ssize_t)k);
			}
	}
	assert_int_equal(api_state_find_host(&st, "nope.example.com"), -1);
	/* In place: the same name stays found. */
	{
		struct api_host h = { 0 };

		h.pattern = strdup("h7.example.com");
		assert_non_null(h.pattern);
		assert_int_equal(api_state_put_host(&st, 7, &h), 0);
		assert_int_equal(api_state_find_host(&st, "h7.example.com"), 7);
	}
	/* Removals move the later entries down. */
	api_state_remove_host(&st, 0);
	api_state_remove_host(&st, 100);
	assert_int_equal(api_state_find_host(&st, "h0.example.com"), -1);
	/* h1 moved to 0 ... h101 was at 100, h102 takes its place. */
	assert_int_equal(api_state_find_host(&st, "h101.example.com"), -1);
	assert_int_equal(api_state_find_host(&st, "h102.example.com"), 100);
	for (size_t i = 0; i < st.n_hosts; i++)
		assert_int_equal(api_state_find_host(&st, st.hosts[i].pattern), (ssize_t)i);
	/* An append after a removal, then the CAs' index on its own. */
	{
		struct api_host h = { 0 };
		struct api_ca c = { 0 };

		h.pattern = strdup("h0.example.com");
		c.name = strdup("only");
		assert_non_null(h.pattern);
		assert_non_null(c.name);
		assert_int_equal(api_state_put_host(&st, -1, &h), 0);
		assert_int_equal(api_state_find_host(&st, "h0.example.com"),
		                 (ssize_t)st.n_hosts - 1);
		assert_int_equal(api_state_find_ca(&st, "only"), -1);
		assert_int_equal(api_state_put_ca(&st, -1, &c), 0);
		assert_int_equal(api_state_find_ca(&st, "only"), 0);
		assert_int_equal(api_state_find_ca(&st, "h0.example.com"), -1);
	}
	api_state_free(&st);
}

/* A request whose answer matters only by its status. */
static void expect_status(const char *method, const char *path, int status)
{
	struct reply r = call(method, path, NULL, NULL);

	if (r.status != status)
		fail_msg("%s %s: %d, want %d", method, path, r.status, status);
	json_decref(r.doc);
}

/* What a fleet node does with etcd's objects (fleet.c): each change
 * validated like a write, the invalid ones refused, the rest applied and
 * written as the snapshot. */
static struct api_change put(int is_host, const char *name, const char *v)
{
	return (struct api_change){ .is_host = is_host, .name = name, .value = v,
	                            .len = v != NULL ? strlen(v) : 0 };
}

static char *ca_text(const char *name, const struct pki_cert *c)
{
	json_t *b = ca_body(name, c);
	char *t = json_dumps(b, JSON_COMPACT);

	json_decref(b);
	return t;
}

static void test_store_apply(void **state)
{
	char err[512], *text;
	char *a_text = ca_text("partner-a", ca_a), *bad_ca = ca_text("notca", not_ca);
	char *clash = ca_text("filed", ca_a), *mism = ca_text("other", ca_a);
	struct api_change ch[] = {
		put(0, "partner-a", a_text),
		put(0, "notca", bad_ca),                 /* not a CA certificate */
		put(0, "filed", clash),                  /* a file's name */
		put(0, "mismatch", mism),                /* body name != key */
		put(1, "api.example.com", "{\"ca\":[\"partner-a\"],\"mode\":\"log\"}"),
		put(1, "bad.example.com", "{nope"),
		put(1, "Upper.example.com", "{\"ca\":[\"partner-a\"]}"),
		put(1, "x.example.com", "{\"ca\":[\"nosuch\"],\"mode\":\"log\"}"),
		put(1, "y.example.com", "{\"ca\":[\"partner-a\"],\"mode\":\"sometimes\"}"),
	};
	size_t n = sizeof(ch) / sizeof(ch[0]);
	struct reply r;
	FILE *f;
	size_t len;

	(void)state;
	assert_int_equal(api_store_apply(api, ch, n, 1, 7, err, sizeof(err)), 0);
	assert_int_equal(ch[0].rejected, 0);
	if (ch[4].rejected) fail_msg("host refused: %s", ch[4].why);
	for (size_t i = 1; i < n; i++)
		if (i != 4 && !ch[i].rejected)
			fail_msg("change %zu (%s) was applied", i, ch[i].name);
	assert_non_null(strstr(ch[1].why, "CA"));
	assert_non_null(strstr(ch[2].why, "main.conf:4"));
	assert_non_null(strstr(ch[5].why, "JSON"));
	assert_non_null(strstr(ch[6].why, "normal form"));
	assert_non_null(strstr(ch[7].why, "nosuch"));
	assert_non_null(strstr(ch[8].why, "sometimes"));
	r = call("GET", "/v1/hosts/api.example.com", NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(r.doc, "mode")), "log");
	json_decref(r.doc);
	expect_status("GET", "/v1/hosts/x.example.com", 404);
	/* The snapshot says which revision it is. */
	f = fopen(at("state/api.conf"), "r");
	assert_non_null(f);
	text = calloc(1, 1 << 20);
	len = fread(text, 1, (1 << 20) - 1, f);
	fclose(f);
	assert_int_equal(api_snapshot_revision(text, len), 7);
	free(text);

	/* Incremental: an invalid new version keeps the live one; a CA still
	 * used cannot go; a host can. */
	{
		struct api_change inc[] = {
			put(1, "api.example.com", "{\"ca\":[\"partner-a\"],\"mode\":\"nope\"}"),
			put(0, "partner-a", NULL),
		};

		assert_int_equal(api_store_apply(api, inc, 2, 0, 8, err, sizeof(err)), 0);
		assert_int_equal(inc[0].rejected, 1);
		assert_int_equal(inc[1].rejected, 1);
		r = call("GET", "/v1/hosts/api.example.com", NULL, NULL);
		assert_int_equal(r.status, 200);
		assert_string_equal(json_string_value(json_object_get(r.doc, "mode")), "log");
		json_decref(r.doc);
	}
	{
		struct api_change inc[] = {
			put(1, "api.example.com", "{\"ca\":[\"partner-a\"],\"mode\":\"enforce\"}"),
			put(1, "gone.example.com", NULL),   /* not here: nothing to do */
		};

		assert_int_equal(api_store_apply(api, inc, 2, 0, 9, err, sizeof(err)), 0);
		assert_int_equal(inc[0].rejected + inc[1].rejected, 0);
		r = call("GET", "/v1/hosts/api.example.com", NULL, NULL);
		assert_string_equal(json_string_value(json_object_get(r.doc, "mode")), "enforce");
		json_decref(r.doc);
	}
	/* A full read without them: the API's objects go, the files' stay. */
	assert_int_equal(api_store_apply(api, NULL, 0, 1, 10, err, sizeof(err)), 0);
	expect_status("GET", "/v1/cas/partner-a", 404);
	expect_status("GET", "/v1/hosts/file.example.com", 200);
	free(a_text);
	free(bad_ca);
	free(clash);
	free(mism);
}

static void test_routes_and_methods(void **state)
{
	struct reply r;

	(void)state;
	r = call("DELETE", "/v1/hosts", NULL, NULL);
	assert_int_equal(r.status, 405);
	assert_string_equal(r.allow, "GET, HEAD");
	json_decref(r.doc);
	expect_status("GET", "/v1/nothing", 404);
	expect_status("GET", "/v1/hosts/%2A.example.com", 404);
	expect_status("GET", "/v1/hosts/%zz", 400);
	r = call("GET", "/v1/hosts", NULL, NULL);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(json_object_get(r.doc, "items")), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
		json_object_get(r.doc, "items"), 0), "source")),
		at("main.conf:7"));
	json_decref(r.doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ca_create_get_and_persist, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_writes_change_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_then_enforce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_answers_the_variables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ca_revocation_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routes_and_methods, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_apply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ca_writes_derive_what_a_load_builds,
		                                setup, teardown),
		cmocka_unit_test(test_state_index),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
