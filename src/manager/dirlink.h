/* The manager's side of directory login (dirlink.c): the [directory] configuration, the local
 * rows of directory users and their groups, the group cache's refresher, and
 * GET /api/v1/directory/test. LDAP itself is auth/directory.c, always off the main loop. */
#pragma once
#include "auth/directory.h"
#include "manager/manager.h"

typedef struct _DirLink DirLink;

/* The directories as configured now ([directory], then its extra_files, in order); NULL when
 * none is. */
GPtrArray *dirlink_configs(Manager *mgr);
/* Write a looked-up user's local row and memberships (create: a login). */
gboolean dirlink_sync(Store *store, const DirUser *u, gboolean create, gint64 now, gint64 *user_id,
                      GError **error);

/* Starts the refresher (groups of users with live tokens, every group_cache_ttl) and checks the
 * configuration once in the background, logging what to fix. */
DirLink *dirlink_start(Manager *mgr);
void dirlink_free(DirLink *d);
