/* Typed reads of the JSON objects the manager works with: rows from the store, agents' replies
 * and request bodies. A getter gives "" / 0 / FALSE for a member that is absent, null or of
 * another type, never a warning; a state getter gives the enum's _LAST for a word it does not
 * know. Objects are fetched by their gint64 id here, so ids are printed to text in one place. */
#pragma once
#include "store/store.h"
#include "proto/vocab.h"

const char *row_str(JsonObject *o, const char *key);
gint64 row_int(JsonObject *o, const char *key);
gboolean row_bool(JsonObject *o, const char *key);
/* The row's "id". */
gint64 row_id(JsonObject *o);
/* The id a reference column holds ("pool_id"), 0 when NULL or absent. */
gint64 row_ref(JsonObject *o, const char *column);

DesktopState row_desktop_state(JsonObject *o);
HostState row_host_state(JsonObject *o);
VmState row_vm_state(JsonObject *o);
SessionState row_session_state(JsonObject *o);
OperationState row_operation_state(JsonObject *o);

/* Sets "state" in a row or a patch. */
void row_set_desktop_state(JsonObject *o, DesktopState s);
void row_set_host_state(JsonObject *o, HostState s);
void row_set_vm_state(JsonObject *o, VmState s);
void row_set_session_state(JsonObject *o, SessionState s);
void row_set_operation_state(JsonObject *o, OperationState s);

/* Guests (VmState) and desktops (DesktopState) share their power words: the word of one for a
 * row of either kind. */
typedef enum { POWER_STOPPED, POWER_RUNNING, POWER_FAILED } Power;
const char *row_power_word(const Resource *res, Power p);

/* One object of a kind ("pool") by id, or NULL with the store's error (NOT_FOUND "no pool"
 * for an id <= 0: a reference that is not set). */
JsonObject *row_get(Store *st, const char *kind, gint64 id, GError **error);

/* The newest version row of a template (by id), or NULL. */
JsonObject *row_newest_version(Store *st, gint64 template_id);

/* Unix time in seconds. */
gint64 row_now(void);
