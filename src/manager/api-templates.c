/* Templates from guests: a stopped guest's disk is copied by a host into a read-only base
 * image (agent op image.base), then the template and its version are written in one
 * transaction. If that write fails, the image is deleted again: nothing is left half-made.
 *
 *   POST  /templates        {name, volume, from_guest, ...}   version 1
 *   PATCH /templates/{id}   {from_guest}                      version N+1
 *   DELETE /template-versions/{id}                            a version nobody uses
 */
#define G_LOG_DOMAIN "api"

#include "common/error.h"
#include "common/util.h"
#include "manager/agentlink.h"
#include "manager/rows.h"
#include "manager/hostcmd.h"
#include "manager/api.h"
#include "proto/agentproto.h"

#include <string.h>

typedef struct {
        ApiRequest *req;
        gboolean create;
        gint64 host_id;
        gint64 version;
        char *template_name;
        char *image;
        char *volume_path;
        JsonObject *template_values; /* create: the template; update: the patch */
        JsonObject *version_values;
        HostCmd *base_cmd;           /* the base image's, sent once the guest is stopped */
        gint64 guest_id;
        guint seal_step;             /* --seal: 0 seal, 1 guest shutdown, 2 wait stopped */
} Freeze;

static void freeze_free(Freeze *f)
{
        g_free(f->template_name);
        g_free(f->image);
        g_free(f->volume_path);
        if (f->template_values)
                json_object_unref(f->template_values);
        if (f->version_values)
                json_object_unref(f->version_values);
        host_cmd_free(f->base_cmd);
        g_free(f);
}

static void image_removed(JsonObject *result, const GError *error, gpointer data)
{
        g_autofree char *image = data;

        if (error)
                g_warning("could not remove the unused base image %s: %s", image, error->message);
}

static void frozen(JsonObject *result, const GError *error, gpointer data)
{
        Freeze *f = data;
        ApiRequest *req = f->req;
        const Resource *templates = resource_by_kind("template");
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonArray) rows = NULL;
        StoreChange changes[2] = {
                {templates, f->create ? NULL : f->template_name, f->template_values},
                {resource_by_kind("template-version"), NULL, f->version_values},
        };

        if (error) {
                api_reply_error(req, error);
                freeze_free(f);
                return;
        }
        rows = store_change_batch(req->store, changes, 2, &req->actor, &err);
        if (!rows) { /* roll back: the image goes too */
                hostcmd_send(&(HostCall){req->mgr->agents, f->host_id, 120, image_removed,
                                         g_strdup(f->image)},
                             hostcmd_image_delete(f->volume_path, f->image), NULL);
                api_reply_error(req, err);
                freeze_free(f);
                return;
        }
        {
                JsonObject *row = json_object_ref(json_array_get_object_element(rows, 0));
                if (!f->create) /* stateless pools move to the new version */
                        api_template_rollout(req, row);
                else
                        manager_kick(req->mgr);
                api_reply_object(req, f->create ? 201 : 200, row);
        }
        freeze_free(f);
}

static void freeze_send(Freeze *f)
{
        g_autoptr(GError) error = NULL;
        ApiRequest *req = f->req;

        if (!hostcmd_send(&(HostCall){req->mgr->agents, f->host_id,
                                      MCFG_INT(req->mgr, "agent_command_timeout"), frozen, f},
                          g_steal_pointer(&f->base_cmd), &error)) {
                api_reply_error(req, error);
                freeze_free(f);
        }
}

/* --seal: atrium-guest cleans the running guest (machine ids, host keys, boot counter, host
 * name), then shuts it down; once its domain is off, the disk is frozen as usual. */
static void seal_next(JsonObject *result, const GError *error, gpointer data)
{
        Freeze *f = data;
        ApiRequest *req = f->req;
        g_autofree char *gid = g_strdup_printf("%" G_GINT64_FORMAT, f->guest_id);
        g_autofree char *domain = agent_domain_name(req->mgr->installation, "guest", f->guest_id);
        g_autoptr(GError) err = NULL;
        HostCmd *cmd;
        guint timeout = 60;

        /* The guest's own shutdown may end its channel before it answers: that is fine. */
        if (error && f->seal_step != 2) {
                g_autoptr(GError) e = g_error_copy(error);
                g_prefix_error(&e, "sealing the guest: ");
                api_reply_error(req, e);
                freeze_free(f);
                return;
        }
        if (f->seal_step == 3) {
                g_autoptr(JsonObject) patch = json_object_new();
                g_autoptr(JsonObject) upd = NULL;
                if (error) {
                        g_autoptr(GError) e = g_error_copy(error);
                        g_prefix_error(&e, "stopping the sealed guest: ");
                        api_reply_error(req, e);
                        freeze_free(f);
                        return;
                }
                row_set_vm_state(patch, VM_STOPPED);
                upd = store_update(req->store, resource_by_kind("guest"), gid, patch, NULL, NULL);
                store_event_add(req->store, &req->actor, "seal", "guest", f->guest_id,
                                f->template_name, "sealed and stopped for a template", NULL);
                freeze_send(f);
                return;
        }
        if (f->seal_step == 0 || f->seal_step == 1) {
                cmd = hostcmd_guest_request(
                        domain, f->seal_step == 0 ? GUEST_OP_SEAL : GUEST_OP_SHUTDOWN, NULL);
                timeout = 40;
        } else {
                cmd = hostcmd_shutdown(domain, 60, FALSE);
                timeout = 60 + MCFG_INT(req->mgr, "agent_command_timeout");
        }
        f->seal_step = f->seal_step == 1 ? 2 : f->seal_step == 2 ? 3 : 1;
        if (!hostcmd_send(&(HostCall){req->mgr->agents, f->host_id, timeout, seal_next, f}, cmd,
                          &err)) {
                api_reply_error(req, err);
                freeze_free(f);
        }
}

void api_template_from_guest(ApiRequest *req, gboolean create)
{
        const Resource *templates = resource_by_kind("template");
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) guest = NULL, tpl = NULL;
        g_autofree char *guest_ref = NULL, *source_volume = NULL, *vname = NULL;
        JsonNode *from = json_object_get_member(req->body, "from_guest");
        Freeze *f = NULL;
        const char *volume_ref;
        gboolean seal = FALSE;

        if (!JSON_NODE_HOLDS_VALUE(from) ||
            (json_node_get_value_type(from) != G_TYPE_STRING &&
             json_node_get_value_type(from) != G_TYPE_INT64)) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_WRONG_TYPE,
                            "'from_guest' names a guest (id or name)");
                goto fail;
        }
        guest_ref = json_node_get_value_type(from) == G_TYPE_STRING
                            ? g_strdup(json_node_get_string(from))
                            : g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(from));
        json_object_remove_member(req->body, "from_guest");
        if (json_object_has_member(req->body, "seal")) {
                JsonNode *sn = json_object_get_member(req->body, "seal");
                if (!JSON_NODE_HOLDS_VALUE(sn) || json_node_get_value_type(sn) != G_TYPE_BOOLEAN) {
                        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_WRONG_TYPE,
                                    "'seal' is true or false");
                        goto fail;
                }
                seal = json_node_get_boolean(sn);
                json_object_remove_member(req->body, "seal");
        }
        if (!model_validate(templates, req->body, create, &error))
                goto fail;
        guest = store_get(req->store, resource_by_kind("guest"), guest_ref, 0, &error);
        if (!guest) {
                g_clear_error(&error);
                atrium_set_field_error(&error, ATRIUM_ERROR_BAD_REFERENCE, "from_guest",
                            "field 'from_guest': there is no guest '%s'", guest_ref);
                goto fail;
        }
        /* Sealing is done by atrium-guest in the running guest; freezing reads a stopped one. */
        if (row_vm_state(guest) != (seal ? VM_RUNNING : VM_STOPPED)) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT, "guest '%s' is %s: %s",
                            row_str(guest, "name"),
                            row_str(guest, "state"),
                            seal ? "--seal needs it running (atrium-guest inside it does the "
                                   "sealing, then it is shut down)"
                                 : "a template is made from a stopped guest (shut it down "
                                   "first, or make it with --seal)");
                goto fail;
        }
        source_volume = api_ref_path(req, guest, "volume_id", "volume", &error);
        if (!source_volume || !row_str(guest, "disk")[0]) {
                if (!error)
                        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "guest '%s' has no disk to make a template from",
                                    row_str(guest, "name"));
                goto fail;
        }
        f = g_new0(Freeze, 1);
        f->req = req;
        f->create = create;
        if (create) {
                f->template_name = g_strdup(json_object_get_string_member(req->body, "name"));
                if ((tpl = store_get(req->store, templates, f->template_name, 0, NULL))) {
                        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_DUPLICATE,
                                    "a template named '%s' already exists", f->template_name);
                        goto fail;
                }
                volume_ref = json_object_get_string_member(req->body, "volume");
                f->version = 1;
        } else {
                if (!(tpl = store_get(req->store, templates, req->params[0], 0, &error)))
                        goto fail;
                f->template_name = g_strdup(row_str(tpl, "name"));
                volume_ref = row_str(tpl, "volume");
                f->version = row_int(tpl, "version") + 1;
        }
        {
                g_autoptr(JsonObject) vol =
                        store_get(req->store, resource_by_kind("volume"), volume_ref, 0, &error);
                if (!vol)
                        goto fail;
                f->volume_path = g_strdup(row_str(vol, "path"));
        }
        f->host_id = api_pick_host(req, guest, NULL, &error);
        if (!f->host_id)
                goto fail;
        f->image = g_strdup_printf("tpl-%s-v%" G_GINT64_FORMAT ".qcow2", f->template_name,
                                   f->version);
        vname = g_strdup_printf("%s-v%" G_GINT64_FORMAT, f->template_name, f->version);

        /* What is written once the image exists: the template (with the guest's hardware
         * unless given) and the version. */
        f->template_values = json_object_ref(req->body);
        {
                const char *hw[] = {"cpus", "ram_mb", "os_type"};
                for (gsize i = 0; i < G_N_ELEMENTS(hw); i++)
                        if (create && !json_object_has_member(f->template_values, hw[i]))
                                json_object_set_member(f->template_values, hw[i],
                                                       json_object_dup_member(guest, hw[i]));
                json_object_set_int_member(f->template_values, "version", f->version);
                json_object_set_string_member(f->template_values, "guest",
                                              row_str(guest, "name"));
                f->version_values = json_object_new();
                json_object_set_string_member(f->version_values, "name", vname);
                json_object_set_string_member(f->version_values, "template", f->template_name);
                json_object_set_int_member(f->version_values, "version", f->version);
                json_object_set_string_member(f->version_values, "volume", volume_ref);
                json_object_set_string_member(f->version_values, "image", f->image);
                json_object_set_string_member(f->version_values, "guest",
                                              row_str(guest, "name"));
                for (gsize i = 0; i < G_N_ELEMENTS(hw); i++)
                        json_object_set_member(
                                f->version_values, hw[i],
                                json_object_dup_member(create ? f->template_values : tpl, hw[i]));
        }
        f->base_cmd = hostcmd_image_base(f->volume_path, f->image, source_volume,
                                         row_str(guest, "disk"));
        f->guest_id = row_int(guest, "id");
        api_pause(req);
        if (seal)
                seal_next(NULL, NULL, f);
        else
                freeze_send(f);
        return;
fail:
        if (f)
                freeze_free(f);
        api_reply_error(req, error);
}

/* ---- deleting a version ------------------------------------------------------------------ */

/* FALSE, with an in-use error naming one, when a desktop's disk is an overlay of version V. */
static gboolean version_unused(ApiRequest *req, JsonObject *v, GError **error)
{
        g_autoptr(GHashTable) filters = g_hash_table_new(g_str_hash, g_str_equal);
        ListQuery q = {.filters = filters, .limit = 1};
        g_autoptr(JsonArray) users = NULL;
        gint64 next = 0;

        g_hash_table_insert(filters, (gpointer) "template_version",
                            (gpointer)row_str(v, "name"));
        users = store_list(req->store, resource_by_kind("desktop"), &q, &next, error);
        if (!users)
                return FALSE;
        if (json_array_get_length(users) > 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_IN_USE,
                            "version '%s' is still used by desktop '%s' (and maybe more)",
                            row_str(v, "name"),
                            row_str(json_array_get_object_element(users, 0), "name"));
                return FALSE;
        }
        return TRUE;
}

typedef struct {
        ApiRequest *req;
        gint64 id;
} VersionDelete;

static void version_image_deleted(JsonObject *result, const GError *error, gpointer data)
{
        VersionDelete *d = data;
        g_autoptr(GError) err = NULL;
        g_autofree char *sid = g_strdup_printf("%" G_GINT64_FORMAT, d->id);

        if (error && !g_error_matches(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND))
                api_reply_error(d->req, error);
        else if (!store_delete(d->req->store, resource_by_kind("template-version"), sid,
                               &d->req->actor, &err))
                api_reply_error(d->req, err);
        else
                api_reply_empty(d->req, 204);
        g_free(d);
}

void api_template_version_delete(ApiRequest *req)
{
        const Resource *versions = resource_by_kind("template-version");
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) v = store_get(req->store, versions, req->params[0], 0, &error);
        g_autoptr(JsonObject) tpl = NULL, none = json_object_new();
        g_autofree char *tid = NULL, *volume = NULL;
        VersionDelete *d;
        gint64 host;

        if (!v) {
                api_reply_error(req, error);
                return;
        }
        tid = g_strdup_printf("%" G_GINT64_FORMAT, row_int(v, "template_id"));
        tpl = store_get(req->store, resource_by_kind("template"), tid, 0, &error);
        if (tpl && row_int(tpl, "version") ==
                           row_int(v, "version")) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "'%s' is the newest version of template '%s': add a newer one first "
                            "(or delete the template)",
                            row_str(v, "name"),
                            row_str(tpl, "name"));
                api_reply_error(req, error);
                return;
        }
        {
                /* desktops still on it: refused before the image is touched */
                if (!version_unused(req, v, &error)) {
                        api_reply_error(req, error);
                        return;
                }
                g_clear_error(&error);
        }
        volume = api_ref_path(req, v, "volume_id", "volume", &error);
        json_object_set_null_member(none, "host_id");
        host = volume ? api_pick_host(req, none, NULL, &error) : 0;
        if (!host) {
                api_reply_error(req, error);
                return;
        }
        d = g_new0(VersionDelete, 1);
        d->req = req;
        d->id = row_int(v, "id");
        api_pause(req);
        if (!hostcmd_send(&(HostCall){req->mgr->agents, host,
                                      MCFG_INT(req->mgr, "agent_command_timeout"),
                                      version_image_deleted, d},
                          hostcmd_image_delete(volume, row_str(v, "image")), &error)) {
                g_free(d);
                api_reply_error(req, error);
        }
}

/* ---- deleting a template ------------------------------------------------------------------
 * Refused while a pool uses it or a desktop uses one of its versions; else every version's
 * image is deleted by a host, one after the other, then the versions' rows, then the
 * template's. A failure stops there: what is left is still consistent (rows whose images are
 * gone are deleted as the images go). */

typedef struct {
        ApiRequest *req;
        char *template_id;
        JsonArray *versions; /* rows still to delete */
        gint64 host;
} TemplateDelete;

static void template_delete_free(TemplateDelete *d)
{
        g_free(d->template_id);
        json_array_unref(d->versions);
        g_free(d);
}

static void template_delete_next(TemplateDelete *d);

static void template_image_deleted(JsonObject *result, const GError *error, gpointer data)
{
        TemplateDelete *d = data;
        JsonObject *v = json_array_get_object_element(d->versions, 0);
        g_autoptr(GError) err = NULL;
        g_autofree char *vid = g_strdup_printf("%" G_GINT64_FORMAT,
                                               row_int(v, "id"));

        if (error && !g_error_matches(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND)) {
                api_reply_error(d->req, error);
                template_delete_free(d);
                return;
        }
        if (!store_delete(d->req->store, resource_by_kind("template-version"), vid,
                          &d->req->actor, &err)) {
                api_reply_error(d->req, err);
                template_delete_free(d);
                return;
        }
        json_array_remove_element(d->versions, 0);
        template_delete_next(d);
}

static void template_delete_next(TemplateDelete *d)
{
        g_autoptr(GError) error = NULL;
        JsonObject *v;
        g_autofree char *volume = NULL;

        if (json_array_get_length(d->versions) == 0) {
                if (!store_delete(d->req->store, resource_by_kind("template"), d->template_id,
                                  &d->req->actor, &error))
                        api_reply_error(d->req, error);
                else
                        api_reply_empty(d->req, 204);
                template_delete_free(d);
                return;
        }
        v = json_array_get_object_element(d->versions, 0);
        volume = api_ref_path(d->req, v, "volume_id", "volume", &error);
        if (!hostcmd_send(&(HostCall){d->req->mgr->agents, d->host,
                                      MCFG_INT(d->req->mgr, "agent_command_timeout"),
                                      template_image_deleted, d},
                          hostcmd_image_delete(volume ? volume : "", row_str(v, "image")),
                          &error)) {
                api_reply_error(d->req, error);
                template_delete_free(d);
        }
}

void api_template_delete(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) tpl = store_get(req->store, resource_by_kind("template"),
                                              req->params[0], 0, &error);
        g_autoptr(GHashTable) filters = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(JsonObject) none = json_object_new();
        g_autoptr(JsonArray) pools = NULL, versions = NULL;
        TemplateDelete *d;

        if (!tpl) {
                api_reply_error(req, error);
                return;
        }
        g_hash_table_insert(filters, (gpointer) "template",
                            (gpointer)row_str(tpl, "name"));
        pools = store_list_all(req->store, resource_by_kind("pool"), filters, &error);
        if (pools && json_array_get_length(pools) > 0) {
                guint np = json_array_get_length(pools);
                atrium_set_field_error(&error, ATRIUM_ERROR_IN_USE, "template",
                            "template '%s' is still used by %u pool%s (field 'template'); "
                            "remove or change %s first",
                            row_str(tpl, "name"), np, np == 1 ? "" : "s",
                            np == 1 ? "it" : "them");
                api_reply_error(req, error);
                return;
        }
        versions = store_list_all(req->store, resource_by_kind("template-version"), filters,
                                  &error);
        if (!versions) {
                api_reply_error(req, error);
                return;
        }
        for (guint i = 0; i < json_array_get_length(versions); i++) {
                if (!version_unused(req, json_array_get_object_element(versions, i), &error)) {
                        api_reply_error(req, error);
                        return;
                }
        }
        d = g_new0(TemplateDelete, 1);
        d->req = req;
        d->template_id = g_strdup_printf("%" G_GINT64_FORMAT, row_int(tpl, "id"));
        d->versions = json_array_ref(versions);
        if (json_array_get_length(versions) > 0) {
                json_object_set_null_member(none, "host_id");
                d->host = api_pick_host(req, none, NULL, &error);
                if (!d->host) {
                        template_delete_free(d);
                        api_reply_error(req, error);
                        return;
                }
        }
        api_pause(req);
        template_delete_next(d);
}
