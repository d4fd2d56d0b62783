/* The manager's life cycle (lifecycle.c): it is built, started, reloaded and freed here, and
 * here its parts are wired: the HTTP front's installers, the agent link's listeners, the
 * gateways' follower. The only file that knows every part. */
#pragma once
#include "manager/manager.h"

/* Opens the store (migrating it), creates the first admin when there is no user. */
Manager *manager_new(Config *config, const char *state_dir, GError **error);
/* Starts listening; fills mgr->url. */
gboolean manager_start(Manager *mgr, GError **error);
/* Applies the reloadable keys of a new config (SIGHUP); says which others need a restart. */
void manager_reload(Manager *mgr, Config *next);
void manager_free(Manager *mgr);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Manager, manager_free)
