/*
 * fuzz_api.c - the tenant API (api.c, apiobj.c) on arbitrary requests:
 * the first line of the input is "METHOD PATH", the rest the body, sent
 * as application/json to api_handle() against a configuration of one
 * file CA, one file host and a state directory in a scratch directory
 * (on /dev/shm when there is one, so that fsync costs nothing).
 * Writes are applied, so later inputs see the objects earlier ones made.
 *   - every answer has a known status, and a body that is JSON;
 *   - an error body is {"error": {"status": S, ...}} with S the status;
 *   - after every request the live generation is the state on disk:
 *     config_changed() sees nothing.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "api.h"
#include "apihost.h"
#include "config.h"
#include "log.h"
#include "pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char main_path[512];
static struct apihost host = { .main_path = main_path, .gen = 1 };
static struct api *api;

static void setup(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char dir[256], path[600], err[CONFIG_ERR_LEN];
	struct pki_cert *ca;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/mtls-fuzz-api-XXXXXX", base);
	if (mkdtemp(dir) == NULL)
		abort();
	ca = pki_make(&(struct pki_cert_opts){ .cn = "Fuzz CA", .is_ca = 1 }, NULL);
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	pki_write_pem(path, (const struct pki_cert *const[]){ ca }, 1);
	pki_free(ca);
	snprintf(main_path, sizeof(main_path), "%s/main.conf", dir);
	f = fopen(main_path, "w");
	if (f == NULL)
		abort();
	fputs("[agent]\nstate-dir = state\n\n[ca filed]\nfile = ca.pem\n\n"
	      "[host file.example.com]\nca = filed\n", f);
	fclose(f);
	if (config_load(main_path, &host.live, err, sizeof(err)) != 0)
		abort();
	api = api_new(&apihost_ops, &host);
	if (api == NULL)
		abort();
	log_set_level(LOG_LVL_ERROR);
}

static void check_answer(const struct api_response *rs)
{
	static const int known[] = { 200, 201, 204, 400, 404, 405, 409, 412, 413,
	                             415, 500, 503 };
	size_t k;
	json_t *doc, *st;

	for (k = 0; k < sizeof(known) / sizeof(known[0]) && known[k] != rs->status; k++)
		;
	if (k == sizeof(known) / sizeof(known[0]))
		abort();
	if (rs->status == 204) {
		if (rs->body != NULL)
			abort();
		return;
	}
	if (rs->body == NULL || (doc = json_loads(rs->body, 0, NULL)) == NULL)
		abort();
	if (rs->status >= 400) {
		st = json_object_get(json_object_get(doc, "error"), "status");
		if (!json_is_integer(st) || json_integer_value(st) != rs->status)
			abort();
	}
	json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size), *sp;
	char line[512], method[16], why[CONFIG_ERR_LEN], *body;
	struct api_request rq = { .who = "fuzz", .content_type = "application/json" };
	struct api_response rs;
	size_t llen, blen;

	if (api == NULL)
		setup();
	if (nl == NULL)
		return 0;
	llen = (size_t)(nl - (const char *)data);
	if (llen >= sizeof(line))
		return 0;
	memcpy(line, data, llen);
	line[llen] = '\0';
	sp = strchr(line, ' ');
	if (sp == NULL || (size_t)(sp - line) >= sizeof(method) || strncmp(sp + 1, "/v1/", 4) != 0 ||
	    memchr(line, '\0', llen) != NULL)
		return 0;
	memcpy(method, line, (size_t)(sp - line));
	method[sp - line] = '\0';
	blen = size - llen - 1;
	body = malloc(blen + 1);
	if (body == NULL)
		return 0;
	memcpy(body, nl + 1, blen);
	body[blen] = '\0';
	rq.method = method;
	rq.path = sp + 1;
	rq.body = blen > 0 ? body : NULL;
	rq.body_len = blen;
	api_handle(api, &rq, &rs);
	check_answer(&rs);
	free(rs.body);
	free(body);
	if (config_changed(host.live, why, sizeof(why)) != 0)
		abort();
	return 0;
}
