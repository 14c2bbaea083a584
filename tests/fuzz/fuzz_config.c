/*
 * fuzz_config.c - the configuration parser: arbitrary text through
 * config_load_string(). Every outcome must be a loaded configuration or
 * an error message of the form "FILE:LINE: ...", and nothing may leak.
 * A string load refuses `include`, so no input makes the parser read
 * files other than those its `file =` / `crl =` lines name (under
 * /nonexistent when relative).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	char err[CONFIG_ERR_LEN];
	struct config *cfg = NULL;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	if (config_load_string(text, "/nonexistent/fuzz.conf", &cfg, err, sizeof(err)) == 0) {
		config_free(cfg);
	} else if (strncmp(err, "/nonexistent/fuzz.conf:", 23) != 0) {
		abort();
	}
	free(text);
	return 0;
}
