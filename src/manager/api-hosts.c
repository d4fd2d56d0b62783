/* Hosts and what runs on them: joining, maintenance, guests' lifecycle and consoles, and the
 * listings only a host can make (volume images, media ISOs). Orders go to the host's agent
 * over its link (agentlink.h); the request waits, paused, for the answer. */
#define G_LOG_DOMAIN "api"

#include "common/error.h"
#include "common/tls.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "manager/agentlink.h"
#include "manager/rows.h"
#include "manager/hostcmd.h"
#include "manager/migration.h"
#include "manager/api.h"
#include "manager/broker.h"
#include "proto/agentproto.h"

#include <string.h>

static void reply_error_literal(ApiRequest *req, int code, const char *message)
{
        g_autoptr(GError) e = g_error_new_literal(ATRIUM_ERROR, code, message);
        api_reply_error(req, e);
}

/* ---- joining ----------------------------------------------------------------------------- */

void api_join_token_create(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *secret = util_random_token(24), *token = NULL, *hash = NULL;
        g_autofree char *command = NULL;
        gint64 ttl = MCFG_INT(req->mgr, "join_token_ttl"), id = 0, expires;
        JsonObject *o;

        if (req->body &&
            !agent_arg_int(req->body, "ttl_seconds", 60, 7 * 86400, ttl, &ttl, &error)) {
                api_reply_error(req, error);
                return;
        }
        if (req->body) {
                g_autoptr(GList) keys = json_object_get_members(req->body);
                for (GList *k = keys; k; k = k->next)
                        if (!g_str_equal(k->data, "ttl_seconds")) {
                                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_UNKNOWN_FIELD,
                                            "a join token takes only 'ttl_seconds', not '%s'",
                                            (char *)k->data);
                                api_reply_error(req, error);
                                return;
                        }
        }
        /* The token carries the manager's certificate fingerprint after a second dot, so that
         * 'atriumd --role agent --manager URL --join-token T' pins it with nothing more. */
        {
                g_autofree char *fp = g_strdup(req->mgr->fingerprint);
                char *w = fp;
                for (const char *c = fp; *c; c++)
                        if (*c != ':')
                                *w++ = g_ascii_tolower(*c);
                *w = '\0';
                token = g_strdup_printf("atj1.%s%s%s", secret, fp[0] ? "." : "", fp);
        }
        hash = token_hash(token);
        expires = row_now() + ttl;
        if (!store_join_token_insert(req->store, hash, expires, &req->actor, &id, &error)) {
                api_reply_error(req, error);
                return;
        }
        command = g_strdup_printf("atriumd --role agent --manager %s --join-token %s",
                                  req->mgr->url, token);
        o = json_object_new();
        json_object_set_int_member(o, "id", id);
        json_object_set_string_member(o, "token", token);
        json_object_set_int_member(o, "expires_at", expires);
        json_object_set_string_member(o, "manager_url", req->mgr->url);
        json_object_set_string_member(o, "manager_fingerprint", req->mgr->fingerprint);
        json_object_set_string_member(o, "command", command);
        memset(token, 0, strlen(token));
        api_reply_object(req, 201, o);
}

static gboolean fact_int(JsonObject *body, JsonObject *facts, const char *key, gint64 max,
                         GError **error)
{
        gint64 v;

        if (!agent_arg_int(body, key, 0, max, 0, &v, error))
                return FALSE;
        json_object_set_int_member(facts, key, v);
        return TRUE;
}

static gboolean fact_text(JsonObject *body, JsonObject *facts, const char *key, GError **error)
{
        GError *local = NULL;
        const char *v = agent_arg_string(body, key, FALSE, &local);

        if (local) {
                g_propagate_error(error, local);
                return FALSE;
        }
        if (v && !util_text_valid(key, v, 255, error))
                return FALSE;
        json_object_set_string_member(facts, key, v ? v : "");
        return TRUE;
}

void api_agent_register(ApiRequest *req)
{
        static const char *const texts[] = {"address",      "cpu_model",       "accel",
                                            "accel_reason", "libvirt_version", "qemu_version"};
        static const char *const known[] = {
                "join_token",      "name",         "address", "cpu_model", "accel", "accel_reason",
                "libvirt_version", "qemu_version", "cpus",    "ram_mb",    "agent",
                "libvirt_public_key"};
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) facts = json_object_new();
        g_autoptr(JsonObject) host = NULL;
        g_autofree char *key = g_strdup_printf("join:%s", req->address);
        g_autofree char *credential = NULL, *cred_hash = NULL, *tok_hash = NULL;
        g_autofree char *lv_cert = NULL, *lv_ca = NULL, *tls_dir = NULL;
        const char *lv_key;
        g_autoptr(GList) members = json_object_get_members(req->body);
        const char *token = NULL, *name = NULL;
        const Actor actor = {"agent", 0, req->address};
        gint64 retry = ratelimit_retry_after(req->mgr->logins, key,
                                             MCFG_INT(req->mgr, "login_attempts_per_address"),
                                             MCFG_INT(req->mgr, "login_window"), row_now());
        JsonObject *o;

        if (retry > 0) {
                g_set_error(
                        &error, ATRIUM_ERROR, ATRIUM_ERROR_RATE_LIMITED,
                        "too many failed joins from this address; try again in %" G_GINT64_FORMAT
                        " s",
                        retry);
                goto refused;
        }
        for (GList *m = members; m; m = m->next) {
                gboolean ok = FALSE;
                for (gsize i = 0; i < G_N_ELEMENTS(known); i++)
                        ok |= g_str_equal(m->data, known[i]);
                if (!ok) {
                        atrium_set_field_error(&error, ATRIUM_ERROR_UNKNOWN_FIELD, m->data,
                                               "a join request has no field '%s'", (char *)m->data);
                        goto refused;
                }
        }
        if (!(token = agent_arg_string(req->body, "join_token", TRUE, &error)) ||
            !(name = agent_arg_string(req->body, "name", TRUE, &error)) ||
            !util_name_valid(name, &error))
                goto refused;
        json_object_set_string_member(facts, "name", name);
        for (gsize i = 0; i < G_N_ELEMENTS(texts); i++)
                if (!fact_text(req->body, facts, texts[i], &error))
                        goto refused;
        if (!fact_int(req->body, facts, "cpus", 4096, &error) ||
            !fact_int(req->body, facts, "ram_mb", 1LL << 32, &error))
                goto refused;
        /* libvirt TLS between hosts (migrations): the host's own key, certified by the hosts'
         * CA, before the token is spent, so a bad key leaves nothing joined */
        lv_key = agent_arg_string(req->body, "libvirt_public_key", FALSE, NULL);
        if (lv_key) {
                g_autofree char *ca_path = NULL;
                tls_dir = g_build_filename(req->mgr->state_dir, "tls", NULL);
                ca_path = g_build_filename(tls_dir, "hosts-ca.pem", NULL);
                if (!(lv_cert = tls_host_cert_issue(tls_dir, lv_key, name,
                                                    row_str(facts, "address"), &error)) ||
                    !g_file_get_contents(ca_path, &lv_ca, NULL, &error))
                        goto refused;
        }
        {
                g_autofree char *secret = util_random_token(32);
                credential = g_strdup_printf("ath1.%s", secret);
        }
        cred_hash = token_hash(credential);
        tok_hash = token_hash(token);
        host = store_host_join(req->store, tok_hash, row_now(), facts, cred_hash, &actor, &error);
        if (!host) {
                if (error->code == ATRIUM_ERROR_UNAUTHORIZED)
                        ratelimit_fail(req->mgr->logins, key, row_now(),
                                       MCFG_INT(req->mgr, "login_window"));
                goto refused;
        }
        g_info("host %s joined from %s", name, req->address);
        o = json_object_new();
        json_object_set_int_member(o, "host_id", row_int(host, "id"));
        json_object_set_string_member(o, "name", name);
        json_object_set_string_member(o, "credential", credential);
        json_object_set_string_member(o, "link", AGENT_LINK_PATH);
        if (lv_cert) {
                json_object_set_string_member(o, "libvirt_cert", lv_cert);
                json_object_set_string_member(o, "libvirt_ca", lv_ca);
        }
        memset(credential, 0, strlen(credential));
        api_reply_object(req, 201, o);
        return;
refused: /* every refused join is an event: who tried, from where, why */
        store_event_add(req->store, &actor, "join_refused", "host", 0,
                        name && util_text_valid("name", name, 64, NULL) ? name : "", error->message,
                        NULL);
        api_reply_error(req, error);
}

void api_host_maintenance(ApiRequest *req)
{
        const Resource *hosts = resource_by_kind("host");
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) row = store_get(req->store, hosts, req->params[0], 0, &error);
        g_autoptr(JsonObject) patch = json_object_new();
        JsonNode *flag = json_object_get_member(req->body, "maintenance");
        gboolean on, drain = FALSE, force = FALSE, bad = FALSE;
        JsonObject *upd, *op;
        GList *members;

        if (!row) {
                api_reply_error(req, error);
                return;
        }
        members = json_object_get_members(req->body);
        for (GList *k = members; k; k = k->next) {
                JsonNode *n = json_object_get_member(req->body, k->data);
                gboolean is_bool = JSON_NODE_HOLDS_VALUE(n) &&
                                   json_node_get_value_type(n) == G_TYPE_BOOLEAN;
                if (!is_bool || !(g_str_equal(k->data, "maintenance") ||
                                  g_str_equal(k->data, "drain") || g_str_equal(k->data, "force")))
                        bad = TRUE;
                else if (g_str_equal(k->data, "drain"))
                        drain = json_node_get_boolean(n);
                else if (g_str_equal(k->data, "force"))
                        force = json_node_get_boolean(n);
        }
        g_list_free(members);
        if (!flag || bad) {
                reply_error_literal(req, ATRIUM_ERROR_INVALID,
                                    "give {\"maintenance\": true} or {\"maintenance\": false}, "
                                    "with \"drain\": true to move what runs there away (and "
                                    "\"force\": true to shut down what cannot move)");
                return;
        }
        on = json_node_get_boolean(flag);
        if ((drain || force) && !on) {
                reply_error_literal(req, ATRIUM_ERROR_INVALID,
                                    "\"drain\" and \"force\" go with {\"maintenance\": true} only");
                return;
        }
        if (force && !drain) {
                reply_error_literal(req, ATRIUM_ERROR_INVALID,
                                    "\"force\" goes with \"drain\": true");
                return;
        }
        json_object_set_boolean_member(patch, "maintenance", on);
        if (row_host_state(row) == HOST_UP || row_host_state(row) == HOST_MAINTENANCE)
                row_set_host_state(patch, on ? HOST_MAINTENANCE : HOST_UP);
        upd = store_update(req->store, hosts, req->params[0], patch, &req->actor, &error);
        if (!upd) {
                api_reply_error(req, error);
                return;
        }
        if (!on)
                manager_kick(req->mgr); /* spares may go there again */
        if (!drain) {
                api_reply_object(req, 200, upd);
                return;
        }
        op = migration_drain(req->mgr, req->store, upd, force, &req->actor, &error);
        if (!op) {
                json_object_unref(upd);
                api_reply_error(req, error);
                return;
        }
        json_object_set_int_member(upd, "operation", row_int(op, "id"));
        json_object_unref(op);
        api_reply_object(req, 202, upd);
}

/* POST /hosts/{id}/fence {"yes": true}: an admin says the host is off. It is marked down at
 * once (its link closed, an event), so the reconciler recovers its desktops now rather than
 * after host_down_after. The disks' locks still refuse a second QEMU if it was not off. */
void api_host_fence(ApiRequest *req)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) row =
                store_get(req->store, resource_by_kind("host"), req->params[0], 0, &error);
        JsonNode *yes = json_object_get_member(req->body, "yes");

        if (!row) {
                api_reply_error(req, error);
                return;
        }
        if (!yes || !JSON_NODE_HOLDS_VALUE(yes) || json_node_get_value_type(yes) != G_TYPE_BOOLEAN ||
            !json_node_get_boolean(yes) || json_object_get_size(req->body) != 1) {
                reply_error_literal(req, ATRIUM_ERROR_INVALID,
                                    "give exactly {\"yes\": true}: fencing declares the host down "
                                    "and starts its desktops elsewhere; do it only when it is off");
                return;
        }
        if (!agentlink_declare_down(req->mgr->agents, req->store, row_id(row), &req->actor,
                                    &error)) {
                api_reply_error(req, error);
                return;
        }
        g_clear_pointer(&row, json_object_unref);
        row = store_get(req->store, resource_by_kind("host"), req->params[0], 0, &error);
        if (!row)
                api_reply_error(req, error);
        else
                api_reply_object(req, 200, g_steal_pointer(&row));
}

/* ---- orders to a host -------------------------------------------------------------------- */

typedef struct {
        ApiRequest *req;
        char *op;
        gint64 guest_id; /* the guest's or desktop's id */
        const Resource *res;
        gint64 host_id;
        JsonObject *extra; /* console: what the reply adds */
} Order;

static void order_free(Order *o)
{
        g_free(o->op);
        if (o->extra)
                json_object_unref(o->extra);
        g_free(o);
}

/* The host for a guest: its own when it has one; else the one asked for; else the linked
 * host, up and not in maintenance, with the most free memory. */
gint64 api_pick_host(ApiRequest *req, JsonObject *guest, const char *wanted, GError **error)
{
        const Resource *hosts = resource_by_kind("host");
        JsonNode *own = json_object_get_member(guest, "host_id");
        g_autoptr(JsonArray) rows = NULL;
        gint64 best = 0, best_free = -1;

        if (wanted) {
                g_autoptr(JsonObject) h = store_get(req->store, hosts, wanted, 0, error);
                if (!h)
                        return 0;
                if (own && !JSON_NODE_HOLDS_NULL(own) &&
                    json_node_get_int(own) != row_int(h, "id") &&
                    row_vm_state(guest) != VM_STOPPED) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                                    "the guest runs on another host; stop it first");
                        return 0;
                }
                if (row_host_state(h) != HOST_UP) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                                    "host '%s' is %s: no new guests are started there",
                                    row_str(h, "name"), row_str(h, "state"));
                        return 0;
                }
                return row_int(h, "id");
        }
        if (own && !JSON_NODE_HOLDS_NULL(own))
                return json_node_get_int(own);
        if (!(rows = store_list_all(req->store, hosts, NULL, error)))
                return 0;
        for (guint i = 0; i < json_array_get_length(rows); i++) {
                JsonObject *h = json_array_get_object_element(rows, i);
                gint64 id = row_int(h, "id");
                gint64 free_mb = row_int(h, "ram_free_mb");
                if (row_host_state(h) == HOST_UP && agentlink_linked(req->mgr->agents, id) &&
                    free_mb > best_free) {
                        best = id;
                        best_free = free_mb;
                }
        }
        if (!best)
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                            "no host is up (and out of maintenance) to run the guest: join a "
                            "host with 'atrium host join-token create'");
        return best;
}

/* Path of a volume or media storage row by reference column. */
char *api_ref_path(ApiRequest *req, JsonObject *row, const char *column, const char *kind,
                   GError **error)
{
        JsonNode *n = json_object_get_member(row, column);
        g_autoptr(JsonObject) ref = NULL;

        if (!n || JSON_NODE_HOLDS_NULL(n))
                return NULL;
        ref = store_get_id(req->store, resource_by_kind(kind), json_node_get_int(n), 0, error);
        return ref ? g_strdup(row_str(ref, "path")) : NULL;
}

static JsonObject *start_args(ApiRequest *req, JsonObject *g, const char *domain, GError **error)
{
        g_autofree char *volume = NULL, *media = NULL;
        GError *local = NULL;
        const char *iso = row_str(g, "iso");

        volume = api_ref_path(req, g, "volume_id", "volume", &local);
        if (local) {
                g_propagate_error(error, local);
                return NULL;
        }
        media = api_ref_path(req, g, "media_id", "media", &local);
        if (local) {
                g_propagate_error(error, local);
                return NULL;
        }
        if (!volume || !row_str(g, "disk")[0]) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "guest '%s' has no disk: set its 'volume' and 'disk' first",
                            row_str(g, "name"));
                return NULL;
        }
        if (iso[0] && !media) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "guest '%s' names ISO '%s' but no 'media' storage", row_str(g, "name"),
                            iso);
                return NULL;
        }
        return hostcmd_guest_spec(domain, g, volume, media);
}

static void order_done(JsonObject *result, const GError *error, gpointer data)
{
        Order *o = data;
        ApiRequest *req = o->req;
        const Resource *guests = o->res;
        g_autoptr(JsonObject) patch = json_object_new();
        g_autoptr(GError) err = NULL;
        JsonObject *row;

        if (error) {
                api_reply_error(req, error);
                order_free(o);
                return;
        }
        if (g_str_equal(o->op, "console")) {
                JsonObject *reply = json_object_ref(o->extra);
                gint64 port = row_int(result, "port");
                Ticket t;
                g_autofree char *ticket = NULL, *url = NULL;
                json_object_set_int_member(reply, "port", port);
                /* The same through the gateway: a ticket for this console (the browser's). */
                ticket = broker_ticket(
                        req->mgr, row_str(reply, "host"), port, row_str(reply, "protocol"),
                        o->res == resource_by_kind("desktop") ? o->guest_id : 0,
                        req->caller.user_id, row_int(reply, "expires_at") - row_now(), &t, &err);
                if (ticket) {
                        url = g_strdup_printf("%s/console?ticket=%s", broker_gateway(req->mgr),
                                              ticket);
                        json_object_set_string_member(reply, "ticket", ticket);
                        json_object_set_string_member(reply, "console_url", url);
                }
                api_reply_object(req, 200, reply);
                order_free(o);
                return;
        }
        if (g_str_equal(o->op, "start")) {
                json_object_set_int_member(patch, "host", o->host_id);
                /* placed at the epoch its start carried (agentlink.c stamped it): kept */
                if (row_int(result, "epoch") > 0)
                        json_object_set_int_member(patch, "epoch", row_int(result, "epoch"));
                json_object_set_string_member(patch, "state",
                                              row_power_word(guests, POWER_RUNNING));
                if (resource_field(guests, "spice_port")) {
                        json_object_set_int_member(patch, "spice_port",
                                                   row_int(result, "spice_port"));
                        json_object_set_int_member(patch, "vnc_port", row_int(result, "vnc_port"));
                }
        } else if (g_str_equal(o->op, "stop") || g_str_equal(o->op, "destroy")) {
                json_object_set_string_member(patch, "state",
                                              row_power_word(guests, POWER_STOPPED));
                if (resource_field(guests, "spice_port")) {
                        json_object_set_int_member(patch, "spice_port", 0);
                        json_object_set_int_member(patch, "vnc_port", 0);
                }
        } else if (o->extra) { /* attach-iso, eject: the new drive content */
                GList *m = json_object_get_members(o->extra);
                for (GList *k = m; k; k = k->next)
                        json_object_set_member(patch, k->data,
                                               json_object_dup_member(o->extra, k->data));
                g_list_free(m);
        }
        if (resource_field(guests, "state_since") && json_object_has_member(patch, "state"))
                json_object_set_int_member(patch, "state_since", row_now());
        if (json_object_get_size(patch) > 0) {
                g_autoptr(JsonObject) upd =
                        store_update_id(req->store, guests, o->guest_id, patch, NULL, &err);
                if (!upd)
                        g_warning("guest %" G_GINT64_FORMAT ": cannot record '%s': %s", o->guest_id,
                                  o->op, err->message);
        }
        row = store_get_id(req->store, guests, o->guest_id, 0, &err);
        store_event_add(req->store, &req->actor, o->op, guests->kind, o->guest_id,
                        row ? row_str(row, "name") : "", row_str(result, "domain"), NULL);
        if (row)
                api_reply_object(req, 200, row);
        else
                api_reply_error(req, err);
        order_free(o);
}

/* Builds the command for a guest order (the wait its reply may take in *timeout, what the
 * reply reports in o->extra), or NULL with an error. */
static HostCmd *order_build(ApiRequest *req, Order *o, JsonObject *g, const char *domain,
                            guint *timeout, GError **error)
{
        const char *op = o->op;
        JsonObject *body = req->body;
        HostCmd *cmd = NULL;

        *timeout = MCFG_INT(req->mgr, "agent_command_timeout");
        if (g_str_equal(op, "start")) {
                JsonObject *spec = o->res == resource_by_kind("desktop")
                                           ? hostcmd_desktop_spec_of(
                                                     req->store, req->mgr->installation, g, error)
                                           : start_args(req, g, domain, error);
                return spec ? hostcmd_start(spec) : NULL;
        }
        if (g_str_equal(op, "stop")) {
                gint64 t;
                if (!agent_arg_int(body, "timeout", 1, 3600, 60, &t, error))
                        return NULL;
                cmd = hostcmd_shutdown(domain, t, agent_arg_bool(body, "force", FALSE));
                *timeout += t;
        } else if (g_str_equal(op, "reboot")) {
                cmd = hostcmd_reboot(domain);
        } else if (g_str_equal(op, "reset")) {
                cmd = hostcmd_reset(domain);
        } else if (g_str_equal(op, "destroy")) {
                cmd = hostcmd_destroy(domain);
        } else if (g_str_equal(op, "console")) {
                const char *proto = agent_arg_string(body, "protocol", FALSE, error);
                gint64 ttl;
                int protocol;
                g_autofree char *pw = NULL;
                JsonNode *host_addr;
                if ((!proto && error && *error) ||
                    !agent_arg_int(body, "ttl", 10, 3600, 60, &ttl, error))
                        return NULL;
                protocol = proto ? console_protocol_from_string(proto) : PROTOCOL_SPICE;
                if (protocol < 0) {
                        g_autofree char *choices = vocab_alternatives(console_protocol_names);
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "protocol must be %s, not '%s'", choices, proto);
                        return NULL;
                }
                proto = console_protocol_to_string(protocol);
                cmd = hostcmd_console(domain, protocol, row_now() + ttl, &pw);
                o->extra = json_object_new();
                json_object_set_string_member(o->extra, "protocol", proto);
                json_object_set_string_member(o->extra, "password", pw);
                json_object_set_int_member(o->extra, "expires_at", row_now() + ttl);
                {
                        g_autoptr(JsonObject) h = store_get_id(req->store, resource_by_kind("host"),
                                                               o->host_id, 0, NULL);
                        host_addr = h ? json_object_get_member(h, "address") : NULL;
                        json_object_set_string_member(
                                o->extra, "host", host_addr ? json_node_get_string(host_addr) : "");
                }
        } else if (g_str_equal(op, "tools")) {
                const char *gop = agent_arg_string(body, "op", TRUE, error);
                const char *hostname =
                        gop ? agent_arg_string(body, "hostname", FALSE, error) : NULL;
                int request = gop ? guest_op_from_string(gop) : -1;
                if (!gop || (error && *error))
                        return NULL;
                if (hostname && !util_name_valid(hostname, error))
                        return NULL;
                if (request < 0) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "'%s' is not a request atrium-guest knows", gop);
                        return NULL;
                }
                if (request == GUEST_OP_SET_HOSTNAME && !hostname) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "set-hostname needs a 'hostname'");
                        return NULL;
                }
                cmd = hostcmd_guest_request(domain, request, hostname);
                *timeout = 40;
        } else if (g_str_equal(op, "attach-iso") || g_str_equal(op, "eject")) {
                gboolean attach = g_str_equal(op, "attach-iso");
                const char *iso = attach ? agent_arg_string(body, "iso", TRUE, error) : "";
                const char *media_name =
                        attach ? agent_arg_string(body, "media", FALSE, error) : NULL;
                g_autofree char *media = NULL;
                if (!iso || (error && *error))
                        return NULL;
                if (media_name) {
                        g_autoptr(JsonObject) m = store_get(req->store, resource_by_kind("media"),
                                                            media_name, 0, error);
                        if (!m)
                                return NULL;
                        media = g_strdup(row_str(m, "path"));
                        o->extra = json_object_new();
                        json_object_set_int_member(o->extra, "media", row_int(m, "id"));
                } else if (attach) {
                        GError *local = NULL;
                        media = api_ref_path(req, g, "media_id", "media", &local);
                        if (!media) {
                                if (local)
                                        g_propagate_error(error, local);
                                else
                                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                                    "name the media storage of the ISO "
                                                    "('media')");
                                return NULL;
                        }
                }
                if (!o->extra)
                        o->extra = json_object_new();
                json_object_set_string_member(o->extra, "iso", iso);
                cmd = hostcmd_media(domain, attach ? media : NULL, iso);
        }
        if (!cmd)
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL, "no command for '%s'", op);
        return cmd;
}

/* A user may reboot or reset their own desktop when its pool allows it (user_actions). */
static gboolean user_may_act(ApiRequest *req, JsonObject *desktop, GError **error)
{
        g_autoptr(JsonObject) pool = NULL;

        if (row_ref(desktop, "user_id") != req->caller.user_id) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND,
                            "no such desktop of yours");
                return FALSE;
        }
        pool = store_get(req->store, resource_by_kind("pool"), row_str(desktop, "pool"), 0, error);
        if (!pool)
                return FALSE;
        if (!row_bool(pool, "user_actions")) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN,
                            "pool '%s' does not let its users %s their desktop (user_actions)",
                            row_str(pool, "name"), req->route->op);
                return FALSE;
        }
        return TRUE;
}

void api_guest_action(ApiRequest *req)
{
        const Resource *guests = resource_by_kind(
                g_str_has_prefix(req->route->pattern, "/api/v1/desktops/") ? "desktop" : "guest");
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) g = store_get(req->store, guests, req->params[0], 0, &error);
        g_autofree char *domain = NULL;
        HostCmd *cmd;
        const char *state;
        guint timeout = 0;
        Order *o;

        if (!g) {
                api_reply_error(req, error);
                return;
        }
        if (guests == resource_by_kind("desktop") && req->caller.role < ROLE_HELPDESK &&
            !user_may_act(req, g, &error)) {
                api_reply_error(req, error);
                return;
        }
        if (row_ref(g, "migrating_to_id") && !g_str_equal(req->route->op, "console") &&
            !g_str_equal(req->route->op, "tools")) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "%s '%s' is migrating to host %s: wait for it, or cancel the "
                            "migration first",
                            guests->kind, row_str(g, "name"), row_str(g, "migrating_to"));
                api_reply_error(req, error);
                return;
        }
        state = row_str(g, "state");
        o = g_new0(Order, 1);
        o->req = req;
        o->op = g_strdup(req->route->op);
        o->guest_id = row_int(g, "id");
        o->res = guests;
        domain = agent_domain_name(req->mgr->installation, guests->kind, o->guest_id);
        if (guests == resource_by_kind("desktop") &&
            (row_desktop_state(g) == DESKTOP_PROVISIONING ||
             row_desktop_state(g) == DESKTOP_DELETING || row_desktop_state(g) == DESKTOP_FAILED)) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "desktop '%s' is %s: wait for the pool's reconciler (or recompose a "
                            "failed one)",
                            row_str(g, "name"), state);
                goto fail;
        }
        if (g_str_equal(state, row_power_word(guests, POWER_STOPPED)) &&
            (g_str_equal(o->op, "stop") || g_str_equal(o->op, "destroy"))) {
                gint64 t;
                if (!agent_arg_int(req->body, "timeout", 1, 3600, 60, &t, &error))
                        goto fail; /* a bad argument is refused whatever the state */
                order_free(o);     /* already there: nothing to ask a host */
                api_reply_object(req, 200, g_steal_pointer(&g));
                return;
        }
        if (!g_str_equal(o->op, "start") &&
            g_str_equal(state, row_power_word(guests, POWER_STOPPED))) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "%s '%s' is stopped: start it first", guests->kind, row_str(g, "name"));
                goto fail;
        }
        o->host_id = api_pick_host(req, g,
                                   g_str_equal(o->op, "start") && req->body
                                           ? agent_arg_string(req->body, "host", FALSE, NULL)
                                           : NULL,
                                   &error);
        if (!o->host_id) {
                if (!error)
                        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                                    "guest '%s' is on no host", row_str(g, "name"));
                goto fail;
        }
        if (!(cmd = order_build(req, o, g, domain, &timeout, &error)))
                goto fail;
        api_pause(req);
        if (!hostcmd_send(&(HostCall){req->mgr->agents, o->host_id, timeout, order_done, o}, cmd,
                          &error))
                goto fail;
        return;
fail:
        order_free(o);
        api_reply_error(req, error);
}

/* A guest is deleted with its domain: undefined on its host first (its disk stays in the
 * volume). A running guest is refused; when its host is down, the row goes and the host's
 * next reconciliation removes the orphan domain. */
static void undefined(JsonObject *result, const GError *error, gpointer data)
{
        Order *o = data;
        ApiRequest *req = o->req;
        g_autoptr(GError) err = NULL;

        if (error && !g_error_matches(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND)) {
                api_reply_error(req, error);
        } else if (!store_delete_id(req->store, resource_by_kind("guest"), o->guest_id, &req->actor,
                                    &err)) {
                api_reply_error(req, err);
        } else {
                api_reply_empty(req, 204);
        }
        order_free(o);
}

void api_guest_delete(ApiRequest *req)
{
        const Resource *guests = resource_by_kind("guest");
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) g = store_get(req->store, guests, req->params[0], 0, &error);
        JsonNode *host;
        Order *o;
        g_autofree char *dom = NULL;

        if (!g) {
                api_reply_error(req, error);
                return;
        }
        if (row_vm_state(g) != VM_STOPPED) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "guest '%s' is %s: stop it before deleting it", row_str(g, "name"),
                            row_str(g, "state"));
                api_reply_error(req, error);
                return;
        }
        o = g_new0(Order, 1);
        o->req = req;
        o->op = g_strdup("delete");
        o->guest_id = row_int(g, "id");
        o->res = guests;
        host = json_object_get_member(g, "host_id");
        if (!host || JSON_NODE_HOLDS_NULL(host) ||
            !agentlink_linked(req->mgr->agents, json_node_get_int(host))) {
                undefined(NULL, NULL, o);
                return;
        }
        dom = agent_domain_name(req->mgr->installation, "guest", o->guest_id);
        api_pause(req);
        if (!hostcmd_send(&(HostCall){req->mgr->agents, json_node_get_int(host),
                                      MCFG_INT(req->mgr, "agent_command_timeout"), undefined, o},
                          hostcmd_undefine(dom), &error)) {
                order_free(o);
                api_reply_error(req, error);
        }
}

/* ---- listings a host makes --------------------------------------------------------------- */

static void listed(JsonObject *result, const GError *error, gpointer data)
{
        Order *o = data;

        if (error)
                api_reply_error(o->req, error);
        else
                api_reply_object(o->req, 200, json_object_ref(result));
        order_free(o);
}

static void host_listing(ApiRequest *req, const char *kind, HostCmd *(*list)(const char *dir))
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) row =
                store_get(req->store, resource_by_kind(kind), req->params[0], 0, &error);
        g_autoptr(JsonObject) none = json_object_new();
        Order *o;

        if (!row) {
                api_reply_error(req, error);
                return;
        }
        o = g_new0(Order, 1);
        o->req = req;
        json_object_set_null_member(none, "host_id");
        o->host_id = api_pick_host(req, none, NULL, &error);
        if (!o->host_id) {
                order_free(o);
                api_reply_error(req, error);
                return;
        }
        api_pause(req);
        if (!hostcmd_send(&(HostCall){req->mgr->agents, o->host_id,
                                      MCFG_INT(req->mgr, "agent_command_timeout"), listed, o},
                          list(row_str(row, "path")), &error)) {
                order_free(o);
                api_reply_error(req, error);
        }
}

void api_volume_images(ApiRequest *req)
{
        host_listing(req, "volume", hostcmd_volume_list);
}

void api_media_isos(ApiRequest *req)
{
        host_listing(req, "media", hostcmd_media_list);
}
