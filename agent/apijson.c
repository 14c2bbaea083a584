/*
 * apijson.c - the error document every /v1 refusal carries.
 */
#include <jansson.h>

#include "api.h"

char *api_error_json(int status, const char *field, const char *message)
{
	json_t *e = json_pack("{s:i,s:s}", "status", status, "message",
	                      message != NULL ? message : "");
	json_t *doc;
	char *s;

	if (e == NULL)
		return NULL;
	if (field != NULL)
		json_object_set_new(e, "field", json_string(field));
	doc = json_pack("{s:o}", "error", e);
	s = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	return s;
}
