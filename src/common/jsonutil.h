/* JSON helpers: parsing untrusted bodies with limits, and building replies. */
#pragma once
#include <glib.h>
#include <json-glib/json-glib.h>

/* Deepest nesting of arrays/objects in text, ignoring brackets inside strings. Stops counting
 * (returns > max) as soon as max is passed, so hostile input costs O(n). */
guint json_scan_depth(const char *text, gsize len, guint max);
/* The same, also checking every string escape (\\uXXXX well formed, surrogates paired, no
 * \\u0000): *bad gets a message when one is not. Such text never reaches json-glib, which
 * leaks on some of them. */
guint json_prescan(const char *text, gsize len, guint max, const char **bad);

/* Parse an untrusted request body: valid UTF-8, nesting at most max_depth, a JSON object at
 * the top. Returns a new reference to the root node. */
JsonNode *json_parse_body(const char *text, gsize len, guint max_depth, GError **error);

char *json_node_to_text(JsonNode *node, gboolean pretty);
/* Append str as a JSON string literal (quoted, escaped). str must be valid UTF-8. */
void json_append_string(GString *out, const char *str);
/* Parse trusted JSON text (made by this program) into a node; NULL if it is not JSON. */
JsonNode *json_from_text(const char *text, gssize len);
const char *json_type_label(JsonNode *node); /* "string", "integer", "object", ... */
/* The id a stored row's reference column holds ("pool_id"), 0 when it is NULL or absent. */
gint64 json_row_ref(JsonObject *row, const char *column);

/* An {"error": {"code": ..., "message": ...}} body for a GError (ATRIUM_ERROR or other). */
JsonNode *json_error_body(const GError *error);
