/*
 * fetch.c - see fetch.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "fetch.h"

#ifndef MTLS_VERSION
#define MTLS_VERSION "dev"  /* the fuzz builds do not pass it */
#endif

struct fetch_buf {
	uint8_t *p;
	size_t len, cap, max;
	int too_big;
};

int fetch_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

/* libcurl's write callback: append, or stop the transfer (returning less
 * than given) once the body would pass the limit. */
static size_t fetch_write(char *data, size_t size, size_t n, void *ctx)
{
	struct fetch_buf *b = ctx;
	size_t add = size * n;

	if (add > b->max - b->len) {
		b->too_big = 1;
		return 0;
	}
	if (b->len + add > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		uint8_t *p;

		while (cap < b->len + add)
			cap = cap > b->max / 2 ? b->max : cap * 2;
		p = realloc(b->p, cap);
		if (p == NULL)
			return 0;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, add);
	b->len += add;
	return add;
}

/* libcurl's progress callback: non-zero aborts the transfer. */
static int fetch_progress(void *ctx, curl_off_t dlt, curl_off_t dln,
                          curl_off_t ult, curl_off_t uln)
{
	const atomic_int *cancel = ctx;

	(void)dlt; (void)dln; (void)ult; (void)uln;
	return cancel != NULL && atomic_load(cancel) ? 1 : 0;
}

/* GET, or POST of post[postlen] as `ctype` when post is not NULL. */
static int fetch_do(const char *url, const uint8_t *post, size_t postlen,
                    const char *ctype, size_t max, unsigned int timeout_ms,
                    const atomic_int *cancel, uint8_t **body, size_t *len,
                    char *err, size_t errlen)
{
	struct curl_slist *hdr = NULL;
	char ct[128];
	struct fetch_buf b = { .max = max };
	char cerr[CURL_ERROR_SIZE] = "";
	CURL *h = curl_easy_init();
	CURLcode rc;
	long code = 0;

	*body = NULL;
	*len = 0;
	if (h == NULL) {
		snprintf(err, errlen, "cannot start a transfer");
		return -1;
	}
	(void)curl_easy_setopt(h, CURLOPT_URL, url);
	(void)curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	(void)curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long)FETCH_MAX_REDIRECTS);
	(void)curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	(void)curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	/* No SIGALRM for name resolution timeouts: we are one thread of many. */
	(void)curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
	(void)curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fetch_write);
	(void)curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	(void)curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	(void)curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, fetch_progress);
	(void)curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)cancel);
	(void)curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	(void)curl_easy_setopt(h, CURLOPT_USERAGENT, "mtls-spoa/" MTLS_VERSION);
	/* Proxies only when configured for us, not from the environment of
	 * whoever started the agent. */
	(void)curl_easy_setopt(h, CURLOPT_PROXY, "");
	if (post != NULL) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
		hdr = curl_slist_append(NULL, ct);
		(void)curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
		(void)curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)post);
		(void)curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
		                       (curl_off_t)postlen);
	}
	rc = curl_easy_perform(h);
	(void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdr);
	if (b.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(err, errlen, "larger than %zu bytes", max);
	} else if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
	} else if (code != 200) {
		snprintf(err, errlen, "HTTP status %ld", code);
	} else {
		*body = b.p;
		*len = b.len;
		return 0;
	}
	free(b.p);
	return -1;
}

int fetch_get(const char *url, size_t max, unsigned int timeout_ms,
              const atomic_int *cancel, uint8_t **body, size_t *len,
              char *err, size_t errlen)
{
	return fetch_do(url, NULL, 0, NULL, max, timeout_ms, cancel, body, len,
	                err, errlen);
}

int fetch_post(const char *url, const uint8_t *post, size_t postlen,
               const char *ctype, size_t max, unsigned int timeout_ms,
               uint8_t **body, size_t *len, char *err, size_t errlen)
{
	return fetch_do(url, post, postlen, ctype, max, timeout_ms, NULL, body,
	                len, err, errlen);
}
