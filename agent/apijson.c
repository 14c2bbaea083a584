/*
 * apijson.c - the API's one error shape (api.h), shared by the HTTP layer
 * (admin.c) and the API (api.c).
 */
#include <stdlib.h>
#include <jansson.h>

#include "api.h"

/* See api.h. NULL only when out of memory. A message that is not valid
 * UTF-8 is replaced rather than dropping the whole document. */
char *api_error_json(int status, const char *field, const char *message)
{
	json_t *msg = json_string(message != NULL ? message : "");
	json_t *err, *root;
	char *out;

	if (msg == NULL)
		msg = json_string("(message not valid UTF-8)");
	/* In the documented order: status, field, message. */
	err = json_pack("{s:i}", "status", status);
	if (err != NULL && field != NULL)
		json_object_set_new(err, "field", json_string(field));
	if (err != NULL)
		json_object_set_new(err, "message", msg);
	else
		json_decref(msg);
	root = json_pack("{s:o}", "error", err);
	if (root == NULL)
		return NULL;
	out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	return out;
}
