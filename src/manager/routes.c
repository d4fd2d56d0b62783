/* The one route table: method, pattern, handler, least role, body limit, and where a request
 * names its pool (permissions on one pool), whether an enrol-only token may use it, its early
 * handler. The router, the role checks and the OpenAPI document (openapi.c, checked against
 * docs/openapi.json by the tests) all come from it. Object routes are made from the resource
 * table in proto/resources.c. */
#include "manager/api.h"

#define API "/api/v1"
#define KB(n) ((gsize)(n)*1024)
/* A route whose {id} is an object about one pool: permissions on that pool apply. */
#define ON_POOL_OF(kind) .pool_scope = POOL_SCOPE_PATH, .scope_kind = (kind)

static const Route fixed_routes[] = {
        {"GET", API "/version", api_version, ROLE_NONE, 0, NULL, "version",
         "Name and version of the server; no login needed."},
        {"GET", API "/openapi.json", api_openapi, ROLE_NONE, 0, NULL, "openapi",
         "This API's OpenAPI 3 document."},
        {"POST", API "/auth/login", api_auth_login, ROLE_NONE, API_SMALL_BODY, NULL, "login",
         "Log in with a user name and password; returns a bearer token."},
        {"POST", API "/auth/logout", api_auth_logout, ROLE_USER, 0, NULL, "logout",
         "Revoke the token used for this request.", .enrol_ok = TRUE},
        {"GET", API "/me", api_me_get, ROLE_USER, 0, NULL, "me", "The logged-in user.", .enrol_ok = TRUE},
        {"PUT", API "/me/password", api_me_password, ROLE_USER, API_SMALL_BODY, NULL, "password",
         "Change one's own password; every token of the user is revoked."},
        {"POST", API "/me/totp", api_totp_enrol, ROLE_USER, API_SMALL_BODY, NULL, "enrol",
         "Start TOTP enrolment: a new secret (base32) and its otpauth:// URI for an "
         "authenticator app; not on until confirmed.", .enrol_ok = TRUE},
        {"POST", API "/me/totp/confirm", api_totp_confirm, ROLE_USER, API_SMALL_BODY, NULL,
         "confirm",
         "Confirm TOTP with the app's current 'code': it is on from now on; answers ten "
         "recovery codes, shown once.", .enrol_ok = TRUE},
        {"POST", API "/me/totp/disable", api_totp_disable, ROLE_USER, API_SMALL_BODY, NULL,
         "disable", "Turn TOTP off with a current 'code' or a recovery code (not when required).", .enrol_ok = TRUE},
        {"POST", API "/users/{id}/totp-reset", api_totp_reset, ROLE_ADMIN, API_SMALL_BODY, NULL, "totp_reset",
         "Turn a user's TOTP off (a lost device): the user enrols again."},
        {"GET", API "/me/desktops", api_me_desktops, ROLE_USER, 0, NULL, "desktops",
         "The pools the caller is entitled to (by user or group), with the caller's desktops "
         "in each and the protocols offered."},
        {"POST", API "/pools/{id}/connect", api_connect, ROLE_USER, API_SMALL_BODY, NULL,
         "connect", "Connect to a pool: the caller's desktop there, else a started spare, else "
         "a stopped one, else (below max_size) a new one ('protocol' spice or vnc; 'terminal' and "
         "'terminal_key' when connecting from a registered terminal); returns a console ticket, "
         "a .vv body and the browser console URL.", ON_POOL_OF("pool")},
        {"POST", API "/desktops/{id}/connect", api_connect, ROLE_USER, API_SMALL_BODY, NULL,
         "connect", "Connect to one's own desktop (a reconnect takes over its session).", ON_POOL_OF("desktop")},
        {"POST", API "/kiosk/connect", api_kiosk_connect, ROLE_NONE, API_SMALL_BODY, NULL,
         "connect",
         "A registered terminal connects without a user ('terminal', 'terminal_key', optional "
         "'pool', 'protocol'): to its fixed desktop or pool, or the named pool, which must be a "
         "kiosk pool the terminal is entitled to."},
        {"POST", API "/gateway/events", api_gateway_events, ROLE_NONE, 262144, NULL, "report",
         "A gateway reports opened, closed and refused console tunnels (header "
         "X-Atrium-Gateway-Key: the secret of the manager's state_dir/gateway.key)."},
        {"POST", API "/terminals/{id}/key", api_terminal_key, ROLE_ADMIN, API_SMALL_BODY, NULL, "key",
         "Issue a new key for a terminal (shown once; the older key stops working)."},
        {"POST", API "/sessions/{id}/end", api_session_end, ROLE_USER, API_SMALL_BODY, NULL, "end",
         "End a session (one's own, or any for operators): atrium-guest logs the user off, the "
         "desktop shuts down, a stateless one is then reset.", ON_POOL_OF("session")},
        {"POST", API "/sessions/{id}/disconnect", api_session_disconnect, ROLE_USER, API_SMALL_BODY, NULL,
         "disconnect",
         "Drop a session's console clients (one's own, or any for operators); the session "
         "stays for a reconnect.", ON_POOL_OF("session")},
        {"GET", API "/stream", api_stream, ROLE_USER, 0, NULL, "stream",
         "Server-sent events for live views: 'change' names the tables written since the last "
         "one (users: desktops, sessions, pools), operators also get 'events' (new audit "
         "events; ?after=ID resumes); 'expired' when the login ends."},
        {"GET", API "/directory/test", api_directory_test, ROLE_ADMIN, 0, NULL, "test",
         "How the directory resolves a user (?user=NAME): the server that answered, DN, name, "
         "mail, directory groups with nesting ('via'), the Atrium groups they fill and the "
         "pools those open; a misconfigured directory answers with what to fix."},
        {"GET", API "/roles", api_roles_list, ROLE_USER, 0, NULL, "roles",
         "The roles and what each may do."},
        {"GET", API "/cluster", api_cluster, ROLE_OPERATOR, 0, NULL, "cluster",
         "The managers on this installation's database: which one leads, in which term, how "
         "long its lease has left, and each one's last word; which one answered ('this')."},
        {"GET", API "/groups/{id}/members", api_group_members, ROLE_ADMIN, 0, NULL, "members",
         "Members of a group."},
        {"PUT", API "/groups/{id}/members/{user}", api_group_member_add, ROLE_ADMIN, 0, NULL,
         "add_member", "Add a user to a group (no change if already a member)."},
        {"DELETE", API "/groups/{id}/members/{user}", api_group_member_remove, ROLE_ADMIN, 0, NULL,
         "remove_member", "Remove a user from a group."},
        {"POST", API "/agent/register", api_agent_register, ROLE_NONE, KB(16), NULL, "register",
         "An agent joins its host with a join token; returns the host's credential (once)."},
        {"POST", API "/join-tokens", api_join_token_create, ROLE_ADMIN, API_SMALL_BODY, NULL,
         "create", "Issue a single-use join token for a new host (shown once)."},
        {"POST", API "/hosts/{id}/fence", api_host_fence, ROLE_ADMIN, API_SMALL_BODY, NULL,
         "fence",
         "Declare a host down now ({\"yes\": true}): an admin who powered it off. Its desktops "
         "are started on other hosts at once; its agent, if it still runs, must link again."},
        {"PUT", API "/hosts/{id}/maintenance", api_host_maintenance, ROLE_OPERATOR,
         API_SMALL_BODY, NULL, "maintenance",
         "Put a host in maintenance (no new desktops placed) or take it out; with \"drain\": "
         "true whatever runs there is live-migrated away (202, the host with its 'operation'), "
         "with \"force\": true what cannot move is shut down."},
        {"POST", API "/guests/{id}/migrate", api_migrate, ROLE_OPERATOR, API_SMALL_BODY, NULL,
         "migrate",
         "Live-migrate the running guest to host 'to' (or where the scheduler chooses); 202 "
         "with the operation that follows it."},
        {"POST", API "/desktops/{id}/migrate", api_migrate, ROLE_OPERATOR, API_SMALL_BODY, NULL,
         "migrate",
         "Live-migrate the running desktop to host 'to' (or where the scheduler chooses); its "
         "sessions follow; 202 with the operation that follows it.",
         ON_POOL_OF("desktop")},
        {"POST", API "/operations/{id}/cancel", api_operation_cancel, ROLE_OPERATOR,
         API_SMALL_BODY, NULL, "cancel",
         "Cancel a migration (the desktop keeps running where it was) or a drain (the host stays "
         "in maintenance); 202 with the operation."},
        {"POST", API "/guests/{id}/start", api_guest_action, ROLE_OPERATOR, API_SMALL_BODY, NULL,
         "start", "Define the guest on a host (its own, the one given, or the freest) and start it."},
        {"POST", API "/guests/{id}/stop", api_guest_action, ROLE_OPERATOR, API_SMALL_BODY, NULL,
         "stop", "ACPI shutdown; destroyed after 'timeout' seconds (default 60) or at once with "
                 "'force'."},
        {"POST", API "/guests/{id}/reboot", api_guest_action, ROLE_OPERATOR, API_SMALL_BODY, NULL, "reboot",
         "ACPI reboot."},
        {"POST", API "/guests/{id}/reset", api_guest_action, ROLE_OPERATOR, API_SMALL_BODY, NULL, "reset",
         "Hard reset."},
        {"POST", API "/guests/{id}/destroy", api_guest_action, ROLE_OPERATOR, API_SMALL_BODY, NULL, "destroy",
         "Power off at once."},
        {"POST", API "/guests/{id}/console", api_guest_action, ROLE_OPERATOR, API_SMALL_BODY, NULL,
         "console", "Set a one-time console password ('protocol' spice or vnc, 'ttl' seconds) "
                    "and return where to connect."},
        {"POST", API "/guests/{id}/attach-iso", api_guest_action, ROLE_OPERATOR, API_SMALL_BODY,
         NULL, "attach-iso", "Put an ISO of a media storage in the guest's CD-ROM drive."},
        {"POST", API "/guests/{id}/tools", api_guest_action, ROLE_OPERATOR, API_SMALL_BODY, NULL,
         "tools", "Ask atrium-guest inside the running guest: 'op' ping, set-hostname (with "
                  "'hostname'), logoff, reboot, shutdown or seal."},
        {"POST", API "/guests/{id}/eject", api_guest_action, ROLE_OPERATOR, API_SMALL_BODY, NULL, "eject",
         "Empty the guest's CD-ROM drive."},
        {"POST", API "/desktops/{id}/start", api_guest_action, ROLE_OPERATOR, API_SMALL_BODY, NULL,
         "start", "Start the desktop on its host.", ON_POOL_OF("desktop")},
        {"POST", API "/desktops/{id}/stop", api_guest_action, ROLE_OPERATOR, API_SMALL_BODY, NULL,
         "stop", "ACPI shutdown; destroyed after 'timeout' seconds (default 60) or at once with "
                 "'force'.", ON_POOL_OF("desktop")},
        {"POST", API "/desktops/{id}/reboot", api_guest_action, ROLE_USER, API_SMALL_BODY,
         NULL, "reboot", "ACPI reboot (users: their own desktop, when its pool has "
                            "user_actions).", ON_POOL_OF("desktop")},
        {"POST", API "/desktops/{id}/reset", api_guest_action, ROLE_USER, API_SMALL_BODY, NULL,
         "reset", "Hard reset (power cycle; the disk is kept). Users: their own desktop, when "
                  "its pool has user_actions.", ON_POOL_OF("desktop")},
        {"POST", API "/desktops/{id}/destroy", api_guest_action, ROLE_OPERATOR, API_SMALL_BODY,
         NULL, "destroy", "Power off at once.", ON_POOL_OF("desktop")},
        {"POST", API "/desktops/{id}/console", api_guest_action, ROLE_OPERATOR, API_SMALL_BODY,
         NULL, "console", "Set a one-time console password and return where to connect.", ON_POOL_OF("desktop")},
        {"POST", API "/desktops/{id}/tools", api_guest_action, ROLE_OPERATOR, API_SMALL_BODY, NULL,
         "tools", "Ask atrium-guest inside the running desktop ('op' as for guests).", ON_POOL_OF("desktop")},
        {"POST", API "/desktops/{id}/recompose", api_desktop_recompose, ROLE_OPERATOR,
         API_SMALL_BODY, NULL,
         "recompose", "Make the desktop's disk anew on its pool's newest template version "
                      "(changes on its system disk are lost); also retries a failed desktop. "
                      "Returns the desktop with its 'operation'.", ON_POOL_OF("desktop")},
        {"GET", API "/pools/{id}/disk", api_pool_disk, ROLE_OPERATOR, 0, NULL, "disk",
         "Bytes the pool's overlays use against a full copy of the base image per desktop "
         "(asks a host).", ON_POOL_OF("pool")},
        {"GET", API "/hosts/{id}/domains", api_host_domains, ROLE_OPERATOR, 0, NULL, "domains",
         "The Atrium domains defined on the host, with their states (asks its agent)."},
        {"GET", API "/volumes/{id}/images", api_volume_images, ROLE_OPERATOR, 0, NULL, "images",
         "Disk images of a volume with their backing files, and its free space (asks a host)."},
        {"GET", API "/media/{id}/isos", api_media_isos, ROLE_OPERATOR, 0, NULL, "isos",
         "ISO images of a media storage (asks a host)."},
        {"PUT", API "/media/{id}/isos/{file}", api_media_upload, ROLE_OPERATOR, 0, NULL, "upload",
         "Upload an ISO image into a media storage: the raw file as the body, with its "
         "Content-Length (at most manager.max_upload_bytes); never replaces a file. The manager "
         "writes it: the media path must be mounted where the manager runs.", .early = api_upload_early},
};

/* The objects about one pool (store_pool_role_of knows them): by id in the path; some listed by
 * ?pool=; an entitlement is made for the pool its body names. */
static const struct {
        const char *kind;
        gboolean listed_by_pool, made_for_pool;
} pool_scoped[] = {
        {"pool", FALSE, FALSE},
        {"desktop", TRUE, FALSE},
        {"session", FALSE, FALSE},
        {"entitlement", TRUE, TRUE},
};

static int pool_scoped_index(const Resource *r)
{
        for (gsize i = 0; i < G_N_ELEMENTS(pool_scoped); i++)
                if (g_str_equal(pool_scoped[i].kind, r->kind))
                        return (int)i;
        return -1;
}

static GArray *build(void)
{
        GArray *a = g_array_new(FALSE, TRUE, sizeof(Route));
        gsize n;
        const Resource *const *res = resources_all(&n);

        g_array_append_vals(a, fixed_routes, G_N_ELEMENTS(fixed_routes));
        for (gsize i = 0; i < n; i++) {
                const Resource *r = res[i];
                int ps = pool_scoped_index(r);
                gboolean about_pool = ps >= 0;
                char *coll = g_strdup_printf(API "/%s", r->plural);
                char *item = g_strdup_printf(API "/%s/{id}", r->plural);
                Route list = {"GET",
                              coll,
                              api_objects_list,
                              r->read_role,
                              0,
                              r,
                              "list",
                              g_strdup_printf("List %ss (paged, filtered).", r->kind)};
                Route get = {"GET",
                             item,
                             api_objects_get,
                             r->read_role,
                             0,
                             r,
                             "get",
                             g_strdup_printf("One %s, by id or name.", r->kind)};
                if (about_pool && pool_scoped[ps].listed_by_pool)
                        list.pool_scope = POOL_SCOPE_QUERY;
                if (about_pool)
                        get.pool_scope = POOL_SCOPE_PATH, get.scope_kind = r->kind;
                g_array_append_val(a, list);
                g_array_append_val(a, get);
                if (r->read_only)
                        continue;
                {
                        Route create = {"POST",
                                        coll,
                                        api_objects_create,
                                        r->write_role,
                                        KB(64),
                                        r,
                                        "create",
                                        r->no_create ? NULL
                                                     : g_strdup_printf("Create %s.", resource_a(r))};
                        Route del = {"DELETE",
                                     item,
                                     api_objects_delete,
                                     r->write_role,
                                     0,
                                     r,
                                     "delete",
                                     g_strdup_printf("Delete %s; refused while it is in use.",
                                                     resource_a(r))};
                        if (about_pool) {
                                del.pool_scope = POOL_SCOPE_PATH, del.scope_kind = r->kind;
                                if (pool_scoped[ps].made_for_pool)
                                        create.pool_scope = POOL_SCOPE_BODY;
                        }
                        if (!r->no_create)
                                g_array_append_val(a, create);
                        if (!r->no_update) {
                                Route update = {
                                        "PATCH",
                                        item,
                                        api_objects_update,
                                        r->write_role,
                                        KB(64),
                                        r,
                                        "update",
                                        g_strdup_printf("Change some fields of %s.", resource_a(r))};
                                if (about_pool)
                                        update.pool_scope = POOL_SCOPE_PATH,
                                        update.scope_kind = r->kind;
                                g_array_append_val(a, update);
                        }
                        g_array_append_val(a, del);
                }
        }
        return a;
}

const Route *routes_all(gsize *n)
{
        static GArray *table;

        if (g_once_init_enter(&table))
                g_once_init_leave(&table, build());
        *n = table->len;
        return (const Route *)table->data;
}
