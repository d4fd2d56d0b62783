/* Reconciler and desktops beyond the generic object routes: the checks before a pool is made or
 * resized, the operations that follow its progress, deletion (with --force ending sessions),
 * desktop recompose and removal, the disk a pool saves, and a host's domains. The work itself
 * is the reconciler's (pools.c); these routes write what should be and wake it. */
#define G_LOG_DOMAIN "api"

#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "manager/agentlink.h"
#include "manager/rows.h"
#include "manager/hostcmd.h"
#include "manager/api.h"
#include "manager/operations.h"
#include "manager/placement.h"
#include "proto/agentproto.h"
#include "proto/naming.h"

/* Before a pool is created or changed: a pool that should have desktops needs a host that can
 * make them, and a pool being deleted takes no change. */
gboolean api_pool_check(ApiRequest *req, gboolean create, GError **error)
{
        JsonObject *body = req->body;
        g_autoptr(JsonObject) old = NULL, tpl = NULL, ver = NULL, vol = NULL;
        JsonNode *tn = json_object_get_member(body, "template");
        gint64 size;
        const char *hint;

        if (!create) {
                old = store_get(req->store, resource_by_kind("pool"), req->params[0], 0, error);
                if (!old)
                        return FALSE;
                if (row_bool(old, "deleting")) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                                    "pool '%s' is being deleted", row_str(old, "name"));
                        return FALSE;
                }
        }
        size = json_object_get_int_member_with_default(body, "size",
                                                       old ? row_int(old, "size") : 0);
        hint = json_object_get_string_member_with_default(body, "hosts",
                                                          old ? row_str(old, "hosts") : "");
        if (size <= 0 ||
            (!create && !json_object_has_member(body, "size") &&
             !json_object_has_member(body, "template") && !json_object_has_member(body, "hosts")))
                return TRUE;
        if (tn && JSON_NODE_HOLDS_VALUE(tn)) {
                g_autofree char *t = json_node_get_value_type(tn) == G_TYPE_STRING
                                             ? g_strdup(json_node_get_string(tn))
                                             : util_id_text(json_node_get_int(tn));
                tpl = store_get(req->store, resource_by_kind("template"), t, 0, NULL);
        } else if (old) {
                tpl = row_get(req->store, "template", row_ref(old, "template_id"), NULL);
        }
        if (!tpl) /* the store names the missing reference */
                return TRUE;
        ver = row_newest_version(req->store, row_int(tpl, "id"));
        if (!ver) /* a template still without a version: the pool waits for one */
                return TRUE;
        vol = row_get(req->store, "volume", row_ref(ver, "volume_id"), error);
        if (!vol)
                return FALSE;
        if (!placement_volume_reachable(req->store, row_str(vol, "path"), hint)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "no host that is up and not in maintenance%s reaches volume '%s' "
                            "(%s) of template '%s': the pool's desktops could not be made",
                            hint[0] ? " among the pool's 'hosts'" : "", row_str(vol, "name"),
                            row_str(vol, "path"), row_str(tpl, "name"));
                return FALSE;
        }
        return TRUE;
}

static void add_operation(ApiRequest *req, JsonObject *row, const char *kind,
                          const char *object_kind)
{
        gint64 id = operations_start(req->store, kind, object_kind, row_int(row, "id"),
                                     row_str(row, "name"), &req->actor);
        if (id)
                json_object_set_int_member(row, "operation", id);
        manager_kick(req->mgr);
}

/* After a pool was written: its size changes are followed by an operation. */
void api_pool_written(ApiRequest *req, JsonObject *old, JsonObject *row)
{
        if (!old) {
                add_operation(req, row, "pool_create", "pool");
                return;
        }
        if (row_int(old, "size") != row_int(row, "size"))
                add_operation(req, row, "pool_resize", "pool");
        else
                manager_kick(req->mgr);
}

/* A session makes its desktop dirty: a stateless one is made fresh once it has none. */
void api_session_written(ApiRequest *req, JsonObject *row)
{
        g_autoptr(JsonObject) patch = json_object_new();
        g_autoptr(JsonObject) upd = NULL;

        json_object_set_boolean_member(patch, "dirty", TRUE);
        upd = store_update_id(req->store, resource_by_kind("desktop"), row_ref(row, "desktop_id"),
                              patch, NULL, NULL);
        manager_kick(req->mgr);
}

static JsonArray *rows_where(ApiRequest *req, const char *kind, const char *field, gint64 id)
{
        g_autoptr(GHashTable) f = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);

        g_hash_table_insert(f, (gpointer)field, util_id_text(id));
        return store_list_all(req->store, resource_by_kind(kind), f, NULL);
}

static gboolean force_asked(ApiRequest *req, GError **error)
{
        const char *f = req->query ? g_hash_table_lookup(req->query, "force") : NULL;

        if (!f || g_str_equal(f, "false"))
                return FALSE;
        if (!g_str_equal(f, "true")) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "force must be true or false");
                return FALSE;
        }
        return TRUE;
}

static gboolean end_session(ApiRequest *req, JsonObject *s, GError **error)
{
        return store_delete_id(req->store, resource_by_kind("session"), row_id(s), &req->actor,
                               error);
}

/* DELETE /pools/{id}[?force=true]: refused while a desktop has a session unless forced (the
 * sessions end first); then the pool is marked deleting and the reconciler removes its
 * desktops (domains, overlays, rows) and at last the pool. */
void api_pool_delete(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) pool =
                store_get(req->store, resource_by_kind("pool"), req->params[0], 0, &error);
        g_autoptr(JsonArray) desktops = NULL;
        g_autoptr(GPtrArray) sessions =
                g_ptr_array_new_with_free_func((GDestroyNotify)json_array_unref);
        g_autoptr(JsonObject) patch = json_object_new();
        g_autoptr(JsonObject) upd = NULL;
        gboolean force;
        guint n = 0;

        if (!pool) {
                api_reply_error(req, error);
                return;
        }
        force = force_asked(req, &error);
        if (error) {
                api_reply_error(req, error);
                return;
        }
        desktops = rows_where(req, "desktop", "pool", row_int(pool, "id"));
        for (guint i = 0; desktops && i < json_array_get_length(desktops); i++) {
                JsonArray *s =
                        rows_where(req, "session", "desktop",
                                   row_int(json_array_get_object_element(desktops, i), "id"));
                if (s) {
                        n += json_array_get_length(s);
                        g_ptr_array_add(sessions, s);
                }
        }
        if (n > 0 && !force) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_IN_USE,
                            "pool '%s' has %u active session(s): end them first, or delete with "
                            "--force (?force=true) to end them",
                            row_str(pool, "name"), n);
                api_reply_error(req, error);
                return;
        }
        for (guint i = 0; i < sessions->len; i++) {
                JsonArray *s = sessions->pdata[i];
                for (guint k = 0; k < json_array_get_length(s); k++)
                        if (!end_session(req, json_array_get_object_element(s, k), &error)) {
                                api_reply_error(req, error);
                                return;
                        }
        }
        json_object_set_boolean_member(patch, "deleting", TRUE);
        json_object_set_string_member(patch, "status", "deleting");
        upd = store_update(req->store, resource_by_kind("pool"), req->params[0], patch, &req->actor,
                           &error);
        if (!upd) {
                api_reply_error(req, error);
                return;
        }
        add_operation(req, upd, "pool_delete", "pool");
        api_reply_object(req, 202, g_steal_pointer(&upd));
}

/* DELETE /desktops/{id}: its domain and overlay are removed, then its row (the pool makes a
 * fresh one if it is then below its size). Refused while it has a session. */
void api_desktop_delete(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) d =
                store_get(req->store, resource_by_kind("desktop"), req->params[0], 0, &error);
        g_autoptr(JsonArray) sessions = NULL;
        g_autoptr(JsonObject) patch = json_object_new();
        g_autoptr(JsonObject) upd = NULL;

        if (!d) {
                api_reply_error(req, error);
                return;
        }
        sessions = rows_where(req, "session", "desktop", row_int(d, "id"));
        if (sessions && json_array_get_length(sessions) > 0) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_IN_USE,
                            "desktop '%s' has an active session: end it first", row_str(d, "name"));
                api_reply_error(req, error);
                return;
        }
        row_set_desktop_state(patch, DESKTOP_DELETING);
        json_object_set_int_member(patch, "state_since", g_get_real_time() / G_USEC_PER_SEC);
        upd = store_update(req->store, resource_by_kind("desktop"), req->params[0], patch,
                           &req->actor, &error);
        if (!upd) {
                api_reply_error(req, error);
                return;
        }
        manager_kick(req->mgr);
        api_reply_object(req, 202, g_steal_pointer(&upd));
}

/* POST /desktops/{id}/recompose: a fresh overlay on the pool's newest template version (its
 * system disk's changes are lost; a persistent desktop keeps its user). Also retries a failed
 * desktop. */
void api_desktop_recompose(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) d =
                store_get(req->store, resource_by_kind("desktop"), req->params[0], 0, &error);
        g_autoptr(JsonObject) pool = NULL, ver = NULL, patch = NULL, upd = NULL;
        g_autoptr(JsonArray) sessions = NULL;
        const char *state;

        if (!d) {
                api_reply_error(req, error);
                return;
        }
        state = row_str(d, "state");
        sessions = rows_where(req, "session", "desktop", row_int(d, "id"));
        if (sessions && json_array_get_length(sessions) > 0) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_IN_USE,
                            "desktop '%s' has an active session: end it before recomposing",
                            row_str(d, "name"));
                api_reply_error(req, error);
                return;
        }
        if (row_desktop_state(d) == DESKTOP_DELETING ||
            row_desktop_state(d) == DESKTOP_PROVISIONING) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "desktop '%s' is %s already", row_str(d, "name"), state);
                api_reply_error(req, error);
                return;
        }
        pool = row_get(req->store, "pool", row_ref(d, "pool_id"), &error);
        ver = pool ? row_newest_version(req->store, row_ref(pool, "template_id")) : NULL;
        if (!ver) {
                if (!error)
                        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                                    "the template of desktop '%s' has no version",
                                    row_str(d, "name"));
                api_reply_error(req, error);
                return;
        }
        patch = json_object_new();
        row_set_desktop_state(patch, DESKTOP_PROVISIONING);
        json_object_set_int_member(patch, "state_since", g_get_real_time() / G_USEC_PER_SEC);
        json_object_set_int_member(patch, "template_version", row_int(ver, "id"));
        json_object_set_int_member(patch, "volume", row_ref(ver, "volume_id"));
        json_object_set_boolean_member(patch, "dirty", FALSE);
        json_object_set_string_member(patch, "failure", "");
        upd = store_update(req->store, resource_by_kind("desktop"), req->params[0], patch,
                           &req->actor, &error);
        if (!upd) {
                api_reply_error(req, error);
                return;
        }
        json_object_set_string_member(upd, "warning",
                                      "the desktop's system disk is made anew from the template: "
                                      "changes made on it are lost");
        add_operation(req, upd, "recompose", "desktop");
        api_reply_object(req, 202, g_steal_pointer(&upd));
}

/* After a template got a new version: stateless pools roll onto it, followed by an operation. */
void api_template_rollout(ApiRequest *req, JsonObject *template_row)
{
        add_operation(req, template_row, "rollout", "template");
}

/* ---- listings made by a host ------------------------------------------------------------- */

typedef struct {
        ApiRequest *req;
        JsonObject *pool;
        GHashTable *overlays; /* overlay name -> TRUE */
        char *base;
        gint64 desktops;
} DiskAsk;

static void disk_ask_free(DiskAsk *a)
{
        json_object_unref(a->pool);
        g_hash_table_unref(a->overlays);
        g_free(a->base);
        g_free(a);
}

static void disk_listed(JsonObject *result, const GError *error, gpointer data)
{
        DiskAsk *a = data;
        JsonArray *images;
        gint64 overlay = 0, base = 0;
        JsonObject *o;

        if (error) {
                api_reply_error(a->req, error);
                disk_ask_free(a);
                return;
        }
        images = json_object_get_array_member(result, "images");
        for (guint i = 0; images && i < json_array_get_length(images); i++) {
                JsonObject *im = json_array_get_object_element(images, i);
                const char *name = row_str(im, "name");
                gint64 bytes = row_int(im, "bytes");
                if (g_hash_table_contains(a->overlays, name))
                        overlay += bytes;
                else if (g_str_equal(name, a->base))
                        base = bytes;
        }
        o = json_object_new();
        json_object_set_string_member(o, "pool", row_str(a->pool, "name"));
        json_object_set_int_member(o, "desktops", a->desktops);
        json_object_set_string_member(o, "base_image", a->base);
        json_object_set_int_member(o, "base_bytes", base);
        json_object_set_int_member(o, "overlay_bytes", overlay);
        json_object_set_int_member(o, "full_copy_bytes", base * a->desktops);
        json_object_set_int_member(o, "saved_bytes", MAX(0, base * a->desktops - overlay));
        json_object_set_int_member(o, "saved_percent",
                                   base * a->desktops > 0 ? MAX(0, base * a->desktops - overlay) *
                                                                    100 / (base * a->desktops)
                                                          : 0);
        api_reply_object(a->req, 200, o);
        disk_ask_free(a);
}

/* GET /pools/{id}/disk: the bytes its desktops' overlays use against a full copy of the base
 * image per desktop (asks a host to list the volume). */
void api_pool_disk(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) pool =
                store_get(req->store, resource_by_kind("pool"), req->params[0], 0, &error);
        g_autoptr(JsonObject) ver = NULL, vol = NULL, none = NULL;
        g_autoptr(JsonArray) desktops = NULL;
        DiskAsk *a;
        gint64 host;

        if (!pool) {
                api_reply_error(req, error);
                return;
        }
        ver = row_newest_version(req->store, row_ref(pool, "template_id"));
        vol = ver ? row_get(req->store, "volume", row_ref(ver, "volume_id"), &error) : NULL;
        if (!vol) {
                if (!error)
                        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                                    "pool '%s': its template has no version yet",
                                    row_str(pool, "name"));
                api_reply_error(req, error);
                return;
        }
        none = json_object_new();
        json_object_set_null_member(none, "host_id");
        row_set_vm_state(none, VM_STOPPED);
        host = api_pick_host(req, none, NULL, &error);
        if (!host) {
                api_reply_error(req, error);
                return;
        }
        a = g_new0(DiskAsk, 1);
        a->req = req;
        a->pool = json_object_ref(pool);
        a->overlays = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        a->base = g_strdup(row_str(ver, "image"));
        desktops = rows_where(req, "desktop", "pool", row_int(pool, "id"));
        for (guint i = 0; desktops && i < json_array_get_length(desktops); i++) {
                JsonObject *d = json_array_get_object_element(desktops, i);
                if (row_desktop_state(d) == DESKTOP_DELETING)
                        continue;
                g_hash_table_add(a->overlays,
                                 desktop_overlay_name(req->mgr->installation, row_int(d, "id")));
                a->desktops++;
        }
        api_pause(req);
        if (!hostcmd_send(&(HostCall){req->mgr->agents, host,
                                      MCFG_INT(req->mgr, "agent_command_timeout"), disk_listed, a},
                          hostcmd_volume_list(row_str(vol, "path")), &error)) {
                disk_ask_free(a);
                api_reply_error(req, error);
        }
}

static void domains_listed(JsonObject *result, const GError *error, gpointer data)
{
        ApiRequest *req = data;

        if (error)
                api_reply_error(req, error);
        else
                api_reply_object(req, 200, json_object_ref(result));
}

/* GET /hosts/{id}/domains: the Atrium domains the host's libvirt has, with their states. */
void api_host_domains(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) host =
                store_get(req->store, resource_by_kind("host"), req->params[0], 0, &error);

        if (!host) {
                api_reply_error(req, error);
                return;
        }
        api_pause(req);
        if (!hostcmd_send(&(HostCall){req->mgr->agents, row_id(host),
                                      MCFG_INT(req->mgr, "agent_command_timeout"), domains_listed,
                                      req},
                          hostcmd_inventory(), &error))
                api_reply_error(req, error);
}
