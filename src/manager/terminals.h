/* Terminals (terminals.c): registered thin clients and their keys. Routes are in api.h. */
#pragma once
#include "manager/manager.h"

/* The terminal's row when key is its current key; else NULL and a FORBIDDEN error that does
 * not tell an unknown terminal from a wrong key. */
JsonObject *terminals_verify(Manager *mgr, Store *st, const char *name, const char *key,
                             GError **error);
/* Notes that the terminal connected now (last_seen). */
void terminals_seen(Store *st, JsonObject *terminal);
