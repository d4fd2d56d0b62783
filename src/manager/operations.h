/* Long operations (operations.c): a row per recompose, roll-out, resize or delete that
 * clients follow (GET /operations/{id}); the reconciler judges their progress each pass. */
#pragma once
#include "manager/manager.h"
#include "proto/vocab.h"

/* A new one (kind, object) started by actor (NULL: the system); its id, 0 when it could not
 * be written. */
gint64 operations_start(Store *st, const char *kind, const char *object_kind, gint64 object_id,
                        const char *object_name, const Actor *actor);
/* Its state, percent (clamped to 0..100) and message, unless already so; an event
 * 'operation_done' or 'operation_failed' when it ends. */
void operations_set(Store *st, JsonObject *op, OperationState state, gint64 percent,
                    const char *message);
