/* The agent role. See agent.h; the link's messages are in proto/agentproto.h. */
#define G_LOG_DOMAIN "agent"

#include "agent/agent.h"
#include "agent/agent-private.h"
#include "agent/accel.h"
#include "agent/storage.h"
#include "agent/virt.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/tls.h"
#include "common/util.h"
#include "proto/agentproto.h"
#include "proto/vocab.h"

#include <libsoup/soup.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <string.h>
#include <unistd.h>

/* At most 8 s (+ up to half of it at random) between two attempts to link: a restarted
 * manager hears every agent again within its startup_grace. */
#define BACKOFF_MAX_S 8
#define FAST_ROUNDS 8
#define STANDBY_TRIES 8
#define REPLY_CACHE 1024

typedef enum { JOB_COMMAND, JOB_HELLO, JOB_HEARTBEAT, JOB_DESCRIBE } JobKind;

typedef struct {
        Agent *a;
        JobKind kind;
        char *id;
        char *op;
        char *domain; /* commands on a domain run one at a time, in order */
        JsonObject *args;
        JsonObject *result;
        GError *error;
} Job;

static void job_free(Job *j)
{
        g_free(j->domain);
        g_free(j->id);
        g_free(j->op);
        if (j->args)
                json_object_unref(j->args);
        if (j->result)
                json_object_unref(j->result);
        g_clear_error(&j->error);
        g_free(j);
}

static void domain_release(Agent *a, const char *domain);
static void link_connect(Agent *a);
static void epochs_learn(Agent *a, JsonArray *inventory);

/* ---- sending ----------------------------------------------------------------------------- */

static gboolean linked(Agent *a)
{
        return a->ws && soup_websocket_connection_get_state(a->ws) == SOUP_WEBSOCKET_STATE_OPEN;
}

void agent_send_text(Agent *a, const char *text)
{
        if (linked(a))
                soup_websocket_connection_send_text(a->ws, text);
}

void agent_send_msg(Agent *a, JsonObject *msg) /* takes msg */
{
        g_autofree char *text = agent_msg_text(msg);

        agent_send_text(a, text);
        json_object_unref(msg);
}

static JsonArray *volume_figures(Agent *a, JsonArray *volumes)
{
        JsonArray *out = json_array_new();

        for (guint i = 0; volumes && i < json_array_get_length(volumes); i++) {
                JsonNode *n = json_array_get_element(volumes, i);
                const char *path = JSON_NODE_HOLDS_VALUE(n) ? json_node_get_string(n) : NULL;
                g_autofree char *d = NULL;
                gint64 free, total = 0;
                JsonObject *o;

                if (!path)
                        continue;
                d = storage_dir((const char *const *)a->roots, path, NULL);
                o = json_object_new();
                json_object_set_string_member(o, "path", path);
                json_object_set_boolean_member(o, "reachable", d != NULL);
                free = d ? storage_space(d, &total) : 0;
                json_object_set_int_member(o, "free_mb", MAX(free, 0) / (1 << 20));
                json_object_set_int_member(o, "total_mb", d ? MAX(total, 0) / (1 << 20) : 0);
                json_array_add_object_element(out, o);
        }
        return out;
}

static void job_run(gpointer data, gpointer pool_data)
{
        Job *j = data;
        Agent *a = j->a;

        switch (j->kind) {
        case JOB_COMMAND:
                j->result = agent_run_op(a, j->op, j->args, &j->error);
                break;
        case JOB_HELLO: {
                JsonArray *inv = virt_inventory(a->virt, TRUE, &j->error);
                JsonObject *fig = inv ? virt_figures(a->virt, &j->error) : NULL;
                if (fig) {
                        GList *m = json_object_get_members(fig);
                        j->result = agent_msg_new("hello");
                        for (GList *k = m; k; k = k->next)
                                json_object_set_member(j->result, k->data,
                                                       json_object_dup_member(fig, k->data));
                        g_list_free(m);
                        m = json_object_get_members(a->facts);
                        for (GList *k = m; k; k = k->next)
                                json_object_set_member(j->result, k->data,
                                                       json_object_dup_member(a->facts, k->data));
                        g_list_free(m);
                        json_object_set_array_member(j->result, "inventory", inv);
                        json_object_unref(fig);
                } else if (inv) {
                        json_array_unref(inv);
                }
                break;
        }
        case JOB_HEARTBEAT: {
                JsonObject *fig = virt_figures(a->virt, &j->error);
                JsonNode *vols = j->args ? json_object_get_member(j->args, "volumes") : NULL;
                if (fig) {
                        j->result = fig;
                        json_object_set_string_member(fig, "type", "heartbeat");
                        json_object_set_array_member(
                                fig, "volumes",
                                volume_figures(a, vols && JSON_NODE_HOLDS_ARRAY(vols)
                                                          ? json_node_get_array(vols)
                                                          : NULL));
                }
                break;
        }
        case JOB_DESCRIBE:
                j->result = virt_describe(a->virt, j->op, &j->error);
                break;
        }
}

/* ---- the results (loop) ------------------------------------------------------------------ */

void agent_remember_reply(Agent *a, const char *id, char *text)
{
        g_hash_table_replace(a->replies, g_strdup(id), text);
        g_queue_push_tail(&a->reply_order, g_strdup(id));
        while (g_queue_get_length(&a->reply_order) > REPLY_CACHE) {
                char *old = g_queue_pop_head(&a->reply_order);
                g_hash_table_remove(a->replies, old);
                g_free(old);
        }
}

static void forward_state(Agent *a, JsonObject *desc, const char *reason)
{
        JsonObject *e = agent_msg_new("event");
        GList *m = json_object_get_members(desc);

        for (GList *k = m; k; k = k->next)
                json_object_set_member(e, k->data, json_object_dup_member(desc, k->data));
        g_list_free(m);
        json_object_set_string_member(e, "event", "lifecycle");
        json_object_set_string_member(e, "reason", reason);
        agent_send_msg(a, e);
}

static void job_finished(Job *j)
{
        Agent *a = j->a;

        switch (j->kind) {
        case JOB_COMMAND: {
                JsonObject *r = agent_msg_new("reply");
                json_object_set_string_member(r, "id", j->id);
                json_object_set_boolean_member(r, "ok", j->error == NULL);
                if (j->error) {
                        g_message("command %s %s refused: %s", j->id, j->op, j->error->message);
                        json_object_set_object_member(r, "error", agent_error_to_json(j->error));
                } else {
                        json_object_set_object_member(r, "result", json_object_ref(j->result));
                        if (agent_op_from_string(j->op) == AGENT_OP_DOMAIN_START) {
                                const char *ch = json_object_get_string_member_with_default(
                                        j->result, "channel", "");
                                if (ch[0])
                                        guest_channel_open(
                                                a,
                                                json_object_get_string_member(j->result, "domain"),
                                                ch);
                        }
                }
                g_hash_table_remove(a->inflight, j->id);
                {
                        char *text = agent_msg_text(r);
                        agent_send_text(a, text);
                        agent_remember_reply(a, j->id, text);
                }
                json_object_unref(r);
                break;
        }
        case JOB_HELLO:
                if (j->error) {
                        g_warning("cannot take the inventory: %s", j->error->message);
                        break;
                }
                {
                        JsonArray *inv = json_object_get_array_member(j->result, "inventory");
                        epochs_learn(a, inv);
                        if (a->fence.fenced_count) {
                                json_object_set_int_member(j->result, "fenced_domains",
                                                           a->fence.fenced_count);
                                a->fence.fenced_count = 0;
                        }
                        for (guint i = 0; i < json_array_get_length(inv); i++) {
                                JsonObject *d = json_array_get_object_element(inv, i);
                                const char *ch = json_object_get_string_member_with_default(
                                        d, "channel", "");
                                if (ch[0])
                                        guest_channel_open(
                                                a, json_object_get_string_member(d, "domain"), ch);
                        }
                        g_info("linked to the manager as host %s; %u domains", a->name,
                               json_array_get_length(inv));
                }
                agent_send_msg(a, json_object_ref(j->result));
                break;
        case JOB_HEARTBEAT:
                a->figures_busy = FALSE;
                if (j->result) {
                        if (a->figures)
                                json_object_unref(a->figures);
                        a->figures = json_object_ref(j->result);
                } else {
                        g_warning("heartbeat figures: %s", j->error->message);
                }
                break;
        case JOB_DESCRIBE:
                if (j->result) {
                        const char *ch = json_object_get_string_member_with_default(j->result,
                                                                                    "channel", "");
                        gint64 e = json_object_get_int_member_with_default(j->result, "epoch", 0);
                        if (e > (gint64)GPOINTER_TO_SIZE(g_hash_table_lookup(a->epochs, j->op)))
                                /* a domain that came here by migration, at its new epoch */
                                g_hash_table_replace(a->epochs, g_strdup(j->op),
                                                     GSIZE_TO_POINTER(e));
                        forward_state(a, j->result, "started");
                        if (ch[0] && domain_state_from_string(json_object_get_string_member(
                                             j->result, "state")) == DOMAIN_RUNNING)
                                guest_channel_open(a, j->op, ch);
                }
                break;
        }
        job_free(j);
}

static gboolean job_finished_cb(gpointer data)
{
        Job *j = data;
        Agent *a = j->a;
        g_autofree char *domain = g_strdup(j->domain);

        job_finished(j);
        if (domain)
                domain_release(a, domain);
        return G_SOURCE_REMOVE;
}

static void job_run_then_finish(gpointer data, gpointer pool_data)
{
        Job *j = data;

        job_run(j, pool_data);
        g_main_context_invoke(j->a->ctx, job_finished_cb, j);
}

static void submit(Agent *a, JobKind kind, const char *id, const char *op, JsonObject *args)
{
        Job *j;
        GQueue *waiting;

        if (!a->pool) { /* stopping */
                if (args)
                        json_object_unref(args);
                return;
        }
        j = g_new0(Job, 1);
        j->a = a;
        j->kind = kind;
        j->id = g_strdup(id);
        j->op = g_strdup(op);
        j->args = args;
        /* a cancel runs beside the migration it cancels */
        if (kind == JOB_COMMAND && args && agent_op_from_string(op) != AGENT_OP_DOMAIN_MIGRATE_CANCEL)
                j->domain =
                        g_strdup(json_object_get_string_member_with_default(args, "domain", NULL));
        if (j->domain) {
                waiting = g_hash_table_lookup(a->busy, j->domain);
                if (waiting) { /* another command on this domain runs: after it */
                        g_queue_push_tail(waiting, j);
                        return;
                }
                g_hash_table_insert(a->busy, g_strdup(j->domain), g_queue_new());
        }
        g_thread_pool_push(a->pool, j, NULL);
}

/* A command on a domain finished: the next one waiting for that domain may run. */
static void domain_release(Agent *a, const char *domain)
{
        GQueue *waiting = g_hash_table_lookup(a->busy, domain);
        Job *next = waiting ? g_queue_pop_head(waiting) : NULL;

        if (next && a->pool)
                g_thread_pool_push(a->pool, next, NULL);
        else if (next)
                job_free(next);
        else
                g_hash_table_remove(a->busy, domain);
}

/* ---- libvirt events ---------------------------------------------------------------------- */

static void on_virt_event(JsonObject *e, gpointer data)
{
        Agent *a = data;

        if (a->stopping) {
                json_object_unref(e);
                return;
        }
        const char *what = json_object_get_string_member(e, "event");
        const char *domain = json_object_get_string_member(e, "domain");

        if (g_str_equal(what, "lifecycle")) {
                int state = domain_state_from_string(json_object_get_string_member(e, "state"));
                if (state == DOMAIN_RUNNING) {
                        /* ports and the guest channel come from the live XML: a worker reads it */
                        submit(a, JOB_DESCRIBE, NULL, domain, NULL);
                        json_object_unref(e);
                        return;
                }
                if (state == DOMAIN_SHUTOFF || state == DOMAIN_CRASHED)
                        guest_channel_close(a, domain);
        }
        json_object_set_int_member(e, "epoch",
                                   (gint64)GPOINTER_TO_SIZE(g_hash_table_lookup(a->epochs, domain)));
        json_object_set_string_member(e, "type", "event");
        agent_send_msg(a, e);
}

/* ---- the link ---------------------------------------------------------------------------- */

/* The manager's certificate is accepted when its SHA-256 is the pinned fingerprint. */
static gboolean accept_cert(SoupMessage *msg, GTlsCertificate *cert, GTlsCertificateFlags errors,
                            gpointer data)
{
        Agent *a = data;
        g_autoptr(GByteArray) der = NULL;

        if (!a->fingerprint || !a->fingerprint[0])
                return FALSE;
        g_object_get(cert, "certificate", &der, NULL);
        if (!der)
                return FALSE;
        if (!tls_der_matches(der->data, der->len, a->fingerprint)) {
                g_autofree char *have =
                        g_compute_checksum_for_data(G_CHECKSUM_SHA256, der->data, der->len);
                g_warning("the manager's certificate (SHA-256 %s) is not the pinned one", have);
                return FALSE;
        }
        return TRUE;
}

static char *manager_url(const char *base, const char *path, gboolean ws)
{
        g_autofree char *b = g_strdup(base);
        gsize n = strlen(b);

        while (n > 0 && b[n - 1] == '/')
                b[--n] = '\0';
        if (ws && g_str_has_prefix(b, "https://"))
                return g_strdup_printf("wss://%s%s", b + 8, path);
        if (ws && g_str_has_prefix(b, "http://"))
                return g_strdup_printf("ws://%s%s", b + 7, path);
        return g_strdup_printf("%s%s", b, path);
}

static void heartbeat_stop(Agent *a)
{
        if (a->heartbeat) {
                g_source_destroy(a->heartbeat);
                g_source_unref(a->heartbeat);
                a->heartbeat = NULL;
        }
}

/* A heartbeat goes at once with the last figures; fresh figures are read in a worker, so a
 * slow libvirt never delays the heartbeat that says this agent is alive. */
static gboolean heartbeat_tick(gpointer data)
{
        Agent *a = data;

        if (!a->figures_busy) {
                JsonObject *args = json_object_new();
                if (a->volumes)
                        json_object_set_array_member(args, "volumes", json_array_ref(a->volumes));
                a->figures_busy = TRUE;
                submit(a, JOB_HEARTBEAT, NULL, NULL, args);
        }
        if (a->figures) {
                g_autofree char *text = NULL;
                json_object_set_object_member(a->figures, "idle", guest_idle_report(a));
                text = agent_msg_text(a->figures);
                agent_send_text(a, text);
        } else {
                JsonObject *m = agent_msg_new("heartbeat");
                json_object_set_object_member(m, "idle", guest_idle_report(a));
                agent_send_msg(a, m);
        }
        return G_SOURCE_CONTINUE;
}

/* The placement epoch a command carries against the highest this host has seen for its
 * domain: an older one is refused (the desktop was placed again since, here or elsewhere);
 * a newer one is remembered. */
static gboolean epoch_accepts(Agent *a, const char *op, JsonObject *args, GError **error)
{
        const char *dom = args ? json_object_get_string_member_with_default(args, "domain", NULL)
                               : NULL;
        gint64 e = args ? json_object_get_int_member_with_default(args, "epoch", 0) : 0;
        gint64 known;

        if (!dom)
                return TRUE;
        known = GPOINTER_TO_SIZE(g_hash_table_lookup(a->epochs, dom));
        if (e < known) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "stale command %s: domain %s is at placement epoch %" G_GINT64_FORMAT
                            " on this host, the command is for epoch %" G_GINT64_FORMAT,
                            op, dom, known, e);
                return FALSE;
        }
        if (e > known)
                g_hash_table_replace(a->epochs, g_strdup(dom), GSIZE_TO_POINTER(e));
        return TRUE;
}

static void epochs_learn(Agent *a, JsonArray *inventory)
{
        for (guint i = 0; inventory && i < json_array_get_length(inventory); i++) {
                JsonObject *d = json_array_get_object_element(inventory, i);
                const char *dom = json_object_get_string_member_with_default(d, "domain", NULL);
                gint64 e = json_object_get_int_member_with_default(d, "epoch", 0);
                if (dom && e > (gint64)GPOINTER_TO_SIZE(g_hash_table_lookup(a->epochs, dom)))
                        g_hash_table_replace(a->epochs, g_strdup(dom), GSIZE_TO_POINTER(e));
        }
}

static void reply_refused(Agent *a, const char *id, const char *op, const GError *error)
{
        JsonObject *r = agent_msg_new("reply");
        char *text;

        g_message("command %s %s refused: %s", id, op, error->message);
        json_object_set_string_member(r, "id", id);
        json_object_set_boolean_member(r, "ok", FALSE);
        json_object_set_object_member(r, "error", agent_error_to_json(error));
        text = agent_msg_text(r);
        agent_send_text(a, text);
        agent_remember_reply(a, id, text);
        json_object_unref(r);
}

/* Several managers: every command carries its leader's term. One of a term older than the
 * newest heard comes from a manager that lost the lease (paused, then woken): refused. */
static gboolean term_accepts(Agent *a, JsonObject *msg, const char *op, const char *id)
{
        gint64 term = json_object_get_int_member_with_default(msg, "term", 0);
        g_autoptr(GError) e = NULL;

        if (term > a->max_term)
                a->max_term = term;
        if (!term || term >= a->max_term)
                return TRUE;
        g_set_error(&e, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                    "stale leader: this host has heard term %" G_GINT64_FORMAT
                    ", the command is of term %" G_GINT64_FORMAT,
                    a->max_term, term);
        g_warning("refused %s from a manager of term %" G_GINT64_FORMAT " (term %" G_GINT64_FORMAT
                  " leads)",
                  op, term, a->max_term);
        reply_refused(a, id, op, e);
        return FALSE;
}

static void on_command(Agent *a, JsonObject *msg)
{
        const char *id = json_object_get_string_member_with_default(msg, "id", "");
        const char *op = json_object_get_string_member_with_default(msg, "op", "");
        JsonNode *args = json_object_get_member(msg, "args");
        const char *cached;

        if (!id[0] || strlen(id) > 64 || !op[0]) {
                g_warning("the manager sent a command without id or op; ignored");
                return;
        }
        cached = g_hash_table_lookup(a->replies, id);
        if (cached) { /* a repeated command: the same answer, nothing run twice */
                agent_send_text(a, cached);
                return;
        }
        if (g_hash_table_contains(a->inflight, id))
                return;
        {
                g_autoptr(GError) e = NULL;
                if (!epoch_accepts(a, op,
                                   args && JSON_NODE_HOLDS_OBJECT(args) ? json_node_get_object(args)
                                                                        : NULL,
                                   &e)) {
                        reply_refused(a, id, op, e);
                        return;
                }
        }
        if (!term_accepts(a, msg, op, id))
                return;
        g_hash_table_add(a->inflight, g_strdup(id));
        if (agent_op_from_string(op) == AGENT_OP_GUEST_REQUEST) {
                guest_request(a, id,
                              args && JSON_NODE_HOLDS_OBJECT(args) ? json_node_get_object(args)
                                                                   : NULL);
                return;
        }
        submit(a, JOB_COMMAND, id, op,
               args && JSON_NODE_HOLDS_OBJECT(args) ? json_object_ref(json_node_get_object(args))
                                                    : json_object_new());
}

static void on_message(SoupWebsocketConnection *ws, gint type, GBytes *bytes, gpointer data)
{
        Agent *a = data;
        gsize len;
        const char *text = g_bytes_get_data(bytes, &len);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) msg = agent_msg_parse(text, len, &error);
        const char *t;

        if (!msg) {
                g_warning("bad message from the manager: %s", error->message);
                return;
        }
        fence_heard(a);
        t = json_object_get_string_member(msg, "type");
        if (g_str_equal(t, "command")) {
                on_command(a, msg);
        } else if (g_str_equal(t, "ack")) {
                JsonNode *v = json_object_get_member(msg, "volumes");
                fence_configure(a, msg);
                if (v && JSON_NODE_HOLDS_ARRAY(v)) {
                        g_clear_pointer(&a->volumes, json_array_unref);
                        a->volumes = json_array_ref(json_node_get_array(v));
                }
        } else if (g_str_equal(t, "welcome")) {
                gint64 hb = json_object_get_int_member_with_default(msg, "heartbeat_interval", 5);
                JsonNode *v = json_object_get_member(msg, "volumes");
                const char *inst =
                        json_object_get_string_member_with_default(msg, "installation", NULL);
                if (!agent_installation_valid(inst)) {
                        g_warning("the manager's welcome has no valid installation id; ignored");
                        return;
                }
                if (json_object_get_int_member_with_default(msg, "term", 0) < a->max_term &&
                    json_object_has_member(msg, "term")) {
                        g_warning("linked to a manager of term %" G_GINT64_FORMAT
                                  ", older than term %" G_GINT64_FORMAT ": linking elsewhere",
                                  json_object_get_int_member(msg, "term"), a->max_term);
                        soup_websocket_connection_close(ws, SOUP_WEBSOCKET_CLOSE_NORMAL,
                                                        "stale leader");
                        return;
                }
                a->max_term = MAX(a->max_term,
                                  json_object_get_int_member_with_default(msg, "term", 0));
                virt_set_installation(a->virt, inst);
                fence_configure(a, msg);
                a->heartbeat_s = hb >= 1 && hb <= 300 ? hb : 5;
                g_clear_pointer(&a->volumes, json_array_unref);
                if (v && JSON_NODE_HOLDS_ARRAY(v))
                        a->volumes = json_array_ref(json_node_get_array(v));
                submit(a, JOB_HELLO, NULL, NULL, NULL);
                heartbeat_stop(a);
                a->heartbeat = g_timeout_source_new_seconds(a->heartbeat_s);
                g_source_set_callback(a->heartbeat, heartbeat_tick, a, NULL);
                g_source_attach(a->heartbeat, a->ctx);
        } else {
                g_debug("unknown message '%s' from the manager", t);
        }
}

static gboolean retry_cb(gpointer data)
{
        Agent *a = data;

        g_clear_pointer(&a->retry, g_source_unref);
        link_connect(a);
        return G_SOURCE_REMOVE;
}

static void schedule_retry(Agent *a)
{
        guint delay;

        if (a->stopping || a->retry)
                return;
        delay = a->backoff_s + g_random_int_range(0, a->backoff_s / 2 + 1);
        a->backoff_s = MIN(a->backoff_s * 2, BACKOFF_MAX_S);
        if (a->stay) { /* a standby about to take over: the same one in a second */
                a->stay = FALSE;
                a->backoff_s = 1;
                delay = 1;
                g_info("linking again in %u s", delay);
                a->retry = g_timeout_source_new_seconds(delay);
                g_source_set_callback(a->retry, retry_cb, a, NULL);
                g_source_attach(a->retry, a->ctx);
                return;
        }
        a->manager_index = (a->manager_index + 1) % g_strv_length(a->managers);
        /* Several managers: while a standby takes over from a leader gone, try each again
         * every second (a few rounds) before backing off. */
        if (a->manager_index == 0)
                a->rounds_failed++;
        if (g_strv_length(a->managers) > 1 && a->rounds_failed < FAST_ROUNDS) {
                delay = 1;
                a->backoff_s = 1;
        }
        g_info("linking again in %u s", delay);
        a->retry = g_timeout_source_new_seconds(delay);
        g_source_set_callback(a->retry, retry_cb, a, NULL);
        g_source_attach(a->retry, a->ctx);
}

static void on_closed(SoupWebsocketConnection *ws, gpointer data)
{
        Agent *a = data;

        g_warning("link to the manager closed (%u %s)",
                  soup_websocket_connection_get_close_code(ws),
                  soup_websocket_connection_get_close_data(ws)
                          ? soup_websocket_connection_get_close_data(ws)
                          : "");
        heartbeat_stop(a);
        g_clear_object(&a->ws);
        schedule_retry(a);
}

/* A standby refused the link: go to the leader it names when it is one of ours; with none
 * named (a takeover under way), stay with this standby a few seconds, as it may be next. */
static void standby_refused(Agent *a, SoupMessage *msg)
{
        const char *leader = soup_message_headers_get_one(soup_message_get_response_headers(msg),
                                                          AGENT_LEADER_HEADER);

        for (guint i = 0; leader && leader[0] && a->managers[i]; i++) {
                if (g_str_equal(a->managers[i], leader)) {
                        /* schedule_retry moves on by one */
                        a->manager_index = (i + g_strv_length(a->managers) - 1) %
                                           g_strv_length(a->managers);
                        a->standby_tries = 0;
                        return;
                }
        }
        if (++a->standby_tries <= STANDBY_TRIES)
                a->stay = TRUE;
        else
                a->standby_tries = 0;
}

static void on_link(GObject *src, GAsyncResult *res, gpointer data)
{
        Agent *a = data;
        g_autoptr(GError) error = NULL;
        SoupMessage *msg = soup_session_get_async_result_message(SOUP_SESSION(src), res);
        SoupWebsocketConnection *ws =
                soup_session_websocket_connect_finish(SOUP_SESSION(src), res, &error);

        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        if (!ws) {
                guint status = msg ? soup_message_get_status(msg) : 0;
                if (status == SOUP_STATUS_UNAUTHORIZED) {
                        a->fatal("the manager refused this host's credential: the host was "
                                 "removed. Join it again with a new token "
                                 "('atrium host join-token create', then atriumd --role agent "
                                 "--join-token TOKEN)",
                                 a->fatal_data);
                        return;
                }
                if (status == SOUP_STATUS_SERVICE_UNAVAILABLE)
                        standby_refused(a, msg);
                g_warning("cannot link to %s: %s", a->managers[a->manager_index],
                          status == SOUP_STATUS_SERVICE_UNAVAILABLE ? "a standby manager"
                                                                    : error->message);
                schedule_retry(a);
                return;
        }
        a->ws = ws;
        a->backoff_s = 1;
        a->rounds_failed = 0;
        a->standby_tries = 0;
        soup_websocket_connection_set_max_incoming_payload_size(ws, AGENT_MSG_MAX);
        soup_websocket_connection_set_keepalive_interval(ws, 15);
        g_signal_connect(ws, "message", G_CALLBACK(on_message), a);
        g_signal_connect(ws, "closed", G_CALLBACK(on_closed), a);
        g_info("linked to %s", a->managers[a->manager_index]);
}

static void link_connect(Agent *a)
{
        g_autofree char *url = manager_url(a->managers[a->manager_index], AGENT_LINK_PATH, TRUE);
        g_autofree char *auth = g_strdup_printf("Bearer %s", a->credential);
        SoupMessage *msg = soup_message_new("GET", url);

        fence_set_manager(a, a->managers[a->manager_index]);
        if (!msg) {
                g_warning("manager URL '%s' is not valid", a->managers[a->manager_index]);
                schedule_retry(a);
                return;
        }
        soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization", auth);
        g_signal_connect(msg, "accept-certificate", G_CALLBACK(accept_cert), a);
        soup_session_websocket_connect_async(a->session, msg, NULL, NULL, G_PRIORITY_DEFAULT,
                                             a->cancel, on_link, a);
        g_object_unref(msg);
}

/* ---- joining and the credential file ----------------------------------------------------- */

static gboolean load_credential(Agent *a, GError **error)
{
        g_autofree char *text = NULL;
        gsize len;
        g_autoptr(JsonNode) root = NULL;
        JsonObject *o;
        JsonArray *m;

        if (!g_file_get_contents(a->cred_path, &text, &len, error))
                return FALSE;
        root = json_parse_body(text, len, 8, error);
        if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
                if (root)
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID, "not an object");
                g_prefix_error(error, "%s: ", a->cred_path);
                return FALSE;
        }
        o = json_node_get_object(root);
        m = json_object_has_member(o, "managers") &&
                            JSON_NODE_HOLDS_ARRAY(json_object_get_member(o, "managers"))
                    ? json_object_get_array_member(o, "managers")
                    : NULL;
        if (!m || json_array_get_length(m) == 0 ||
            !json_object_get_string_member_with_default(o, "credential", NULL)) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "%s lacks the managers or the credential", a->cred_path);
                return FALSE;
        }
        g_strfreev(a->managers);
        a->managers = g_new0(char *, json_array_get_length(m) + 1);
        for (guint i = 0; i < json_array_get_length(m); i++)
                a->managers[i] = g_strdup(json_array_get_string_element(m, i));
        a->host_id = json_object_get_int_member_with_default(o, "host_id", 0);
        g_free(a->name);
        a->name = g_strdup(json_object_get_string_member_with_default(o, "name", ""));
        g_free(a->credential);
        a->credential = g_strdup(json_object_get_string_member(o, "credential"));
        g_free(a->fingerprint);
        a->fingerprint = g_strdup(json_object_get_string_member_with_default(o, "fingerprint", ""));
        return TRUE;
}

gboolean agent_joined(Agent *a)
{
        return g_file_test(a->cred_path, G_FILE_TEST_EXISTS);
}

/* The address this host reaches the manager from: where consoles will listen. */
static char *local_address_towards(const char *url)
{
        g_autoptr(GUri) u = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
        g_autoptr(GInetAddress) ip = NULL;
        g_autoptr(GSocket) s = NULL;
        g_autoptr(GSocketAddress) remote = NULL, local = NULL;

        if (!u || !g_uri_get_host(u) || !(ip = g_inet_address_new_from_string(g_uri_get_host(u))))
                return NULL;
        s = g_socket_new(g_inet_address_get_family(ip), G_SOCKET_TYPE_DATAGRAM,
                         G_SOCKET_PROTOCOL_UDP, NULL);
        remote = g_inet_socket_address_new(ip, g_uri_get_port(u) > 0 ? g_uri_get_port(u) : 443);
        if (!s || !g_socket_connect(s, remote, NULL, NULL) ||
            !(local = g_socket_get_local_address(s, NULL)))
                return NULL;
        return g_inet_address_to_string(
                g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(local)));
}

static JsonObject *join_body(Agent *a, const char *token)
{
        JsonObject *b = json_object_new();
        GList *m = json_object_get_members(a->facts);

        json_object_set_string_member(b, "join_token", token);
        json_object_set_string_member(b, "name", a->name);
        json_object_set_string_member(b, "agent", "atriumd/" ATRIUM_VERSION);
        for (GList *k = m; k; k = k->next)
                json_object_set_member(b, k->data, json_object_dup_member(a->facts, k->data));
        g_list_free(m);
        return b;
}

static gboolean host_facts(Agent *a, GError **error)
{
        JsonObject *f;

        if (a->facts)
                return TRUE;
        if (!a->virt && !(a->virt = virt_open(config_get_string(a->config, "agent", "libvirt_uri"),
                                              a->ctx, on_virt_event, a, error)))
                return FALSE;
        if (!accel_detect(config_get_string(a->config, "agent", "accel"), "/proc/cpuinfo",
                          "/dev/kvm", &a->accel, error))
                return FALSE;
        if (!(f = virt_facts(a->virt, error)))
                return FALSE;
        json_object_set_string_member(f, "accel",
                                      a->accel.accel == DOMXML_ACCEL_KVM ? "kvm" : "qemu");
        json_object_set_string_member(f, "accel_reason", a->accel.reason);
        a->facts = f;
        return TRUE;
}

static gboolean resolve_address(Agent *a, const char *manager, GError **error)
{
        const char *conf = config_get_string(a->config, "agent", "address");

        g_free(a->address);
        a->address = conf[0] ? g_strdup(conf) : local_address_towards(manager);
        if (!a->address)
                a->address = g_strdup("127.0.0.1");
        if (!g_hostname_is_ip_address(a->address) || g_str_equal(a->address, "0.0.0.0") ||
            g_str_equal(a->address, "::")) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "agent.address must be this host's management IP address, not '%s'",
                            a->address);
                return FALSE;
        }
        json_object_set_string_member(a->facts, "address", a->address);
        return TRUE;
}

/* The host's libvirt TLS material, as libvirt's pkipath and its server name it (cacert.pem,
 * servercert.pem, serverkey.pem, clientcert.pem, clientkey.pem) in state_dir/pki (0700, keys
 * 0600: libvirtd runs as root), and as QEMU's migration TLS names it (ca-cert.pem,
 * server-cert.pem, server-key.pem, client-cert.pem, client-key.pem) in state_dir/pki-qemu,
 * readable by QEMU's group (agent.qemu_group: QEMU runs as that user, not root): one
 * certificate for both roles. Written again, so rotated, at every join. */
static gboolean pki_write(Agent *a, const char *key, const char *cert, const char *ca,
                          GError **error)
{
        static const char *const dirs[] = {"pki", "pki-qemu"};
        const char *names[][2] = {{"cacert.pem", "ca-cert.pem"},
                                  {"servercert.pem", "server-cert.pem"},
                                  {"clientcert.pem", "client-cert.pem"},
                                  {"serverkey.pem", "server-key.pem"},
                                  {"clientkey.pem", "client-key.pem"}};
        const char *texts[] = {ca, cert, cert, key, key};
        const char *group = config_get_string(a->config, "agent", "qemu_group");
        struct group *gr = group[0] ? getgrnam(group) : NULL;

        if (!cert[0] || !ca[0]) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "the manager's join answer has no libvirt certificate or CA");
                return FALSE;
        }
        if (group[0] && !gr)
                g_warning("agent.qemu_group %s does not exist: QEMU may not read its migration "
                          "certificates in %s/pki-qemu",
                          group, a->state_dir);
        for (gsize k = 0; k < G_N_ELEMENTS(dirs); k++) {
                g_autofree char *dir = g_build_filename(a->state_dir, dirs[k], NULL);
                gboolean qemu = k == 1;
                if (g_mkdir_with_parents(dir, qemu ? 0750 : 0700) < 0 ||
                    (qemu && gr && chown(dir, 0, gr->gr_gid) < 0) ||
                    g_chmod(dir, qemu ? 0750 : 0700) < 0) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                                    "cannot make %s: %s", dir, g_strerror(errno));
                        return FALSE;
                }
                for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
                        g_autofree char *path = g_build_filename(dir, names[i][k], NULL);
                        gboolean secret = i >= 3;
                        if (!util_write_file(path, texts[i], -1,
                                             secret ? (qemu ? 0640 : 0600) : 0644, error))
                                return FALSE;
                        if (qemu && gr && chown(path, 0, gr->gr_gid) < 0) {
                                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL,
                                            "cannot give %s to group %s: %s", path, group,
                                            g_strerror(errno));
                                return FALSE;
                        }
                }
        }
        g_info("libvirt TLS certificate of host %s (signed by the manager's hosts CA) in "
               "%s/pki, QEMU's copy in %s/pki-qemu",
               a->name, a->state_dir, a->state_dir);
        return TRUE;
}

gboolean agent_join(Agent *a, const char *const *managers, const char *fingerprint,
                    const char *token, GError **error)
{
        g_autoptr(GError) last = NULL;
        g_autofree char *lv_key = NULL, *lv_pub = NULL;

        g_free(a->fingerprint);
        a->fingerprint = g_strdup(fingerprint ? fingerprint : "");
        if (!a->fingerprint[0]) { /* atj1.SECRET.FINGERPRINT: the pin comes with the token */
                g_auto(GStrv) parts = g_strsplit(token, ".", 3);
                if (g_strv_length(parts) == 3 && strlen(parts[2]) == 64) {
                        g_free(a->fingerprint);
                        a->fingerprint = g_strdup(parts[2]);
                }
        }
        if (!managers || !managers[0]) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "joining needs the manager's URL (--manager URL or agent.manager)");
                return FALSE;
        }
        if (!host_facts(a, error))
                return FALSE;
        /* libvirt's TLS between hosts: this host's key stays here, the manager certifies it */
        if (!tls_key_new(&lv_key, &lv_pub, error))
                return FALSE;
        for (const char *const *m = managers; *m; m++) {
                g_autofree char *url = manager_url(*m, AGENT_REGISTER_PATH, FALSE);
                g_autoptr(SoupMessage) msg = soup_message_new("POST", url);
                g_autoptr(JsonObject) body = NULL;
                g_autoptr(GBytes) reply = NULL;
                g_autoptr(JsonNode) root = NULL;
                g_autofree char *text = NULL;
                JsonObject *o;
                gsize len;
                guint status;

                g_clear_error(&last);
                if (!msg) {
                        g_set_error(&last, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "'%s' is not a manager URL (https://HOST:PORT)", *m);
                        continue;
                }
                if (!resolve_address(a, *m, error))
                        return FALSE;
                body = join_body(a, token);
                json_object_set_string_member(body, "libvirt_public_key", lv_pub);
                text = agent_msg_text(body);
                len = strlen(text);
                {
                        g_autoptr(GBytes) b = g_bytes_new_take(g_steal_pointer(&text), len);
                        soup_message_set_request_body_from_bytes(msg, "application/json", b);
                }
                g_signal_connect(msg, "accept-certificate", G_CALLBACK(accept_cert), a);
                reply = soup_session_send_and_read(a->session, msg, NULL, &last);
                if (!reply) {
                        g_prefix_error(&last, "%s: ", *m);
                        continue;
                }
                status = soup_message_get_status(msg);
                root = json_parse_body(g_bytes_get_data(reply, &len), g_bytes_get_size(reply), 8,
                                       NULL);
                o = root && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
                if (status != 201 || !o || !json_object_has_member(o, "credential")) {
                        JsonNode *en = o ? json_object_get_member(o, "error") : NULL;
                        JsonObject *e =
                                en && JSON_NODE_HOLDS_OBJECT(en) ? json_node_get_object(en) : NULL;
                        g_set_error(error, ATRIUM_ERROR,
                                    status == 401 ? ATRIUM_ERROR_UNAUTHORIZED
                                                  : ATRIUM_ERROR_INVALID,
                                    "the manager refused to join this host (HTTP %u): %s", status,
                                    e ? json_object_get_string_member_with_default(e, "message", "")
                                      : "no reason given");
                        return FALSE;
                }
                {
                        g_autoptr(JsonObject) cred = json_object_new();
                        g_autoptr(JsonArray) ms = json_array_new();
                        g_autofree char *ctext = NULL;
                        for (const char *const *k = managers; *k; k++)
                                json_array_add_string_element(ms, *k);
                        json_object_set_int_member(cred, "host_id",
                                                   json_object_get_int_member(o, "host_id"));
                        json_object_set_string_member(cred, "name", a->name);
                        json_object_set_string_member(
                                cred, "credential", json_object_get_string_member(o, "credential"));
                        json_object_set_array_member(cred, "managers", json_array_ref(ms));
                        json_object_set_string_member(cred, "fingerprint", a->fingerprint);
                        ctext = agent_msg_text(cred);
                        if (!util_write_file(a->cred_path, ctext, -1, 0600, error))
                                return FALSE;
                        memset(ctext, 0, strlen(ctext));
                }
                g_info("host %s joined the manager at %s (host id %" G_GINT64_FORMAT ")", a->name,
                       *m, json_object_get_int_member(o, "host_id"));
                if (json_object_has_member(o, "libvirt_cert") &&
                    !pki_write(a, lv_key, json_object_get_string_member(o, "libvirt_cert"),
                               json_object_get_string_member_with_default(o, "libvirt_ca", ""),
                               error))
                        return FALSE;
                return TRUE;
        }
        g_propagate_prefixed_error(error, g_steal_pointer(&last), "cannot reach a manager: ");
        return FALSE;
}

/* ---- life -------------------------------------------------------------------------------- */

static void queue_free(gpointer q)
{
        g_queue_free_full(q, (GDestroyNotify)job_free);
}

Agent *agent_new(Config *config, const char *state_dir, AgentFatalFunc fatal, gpointer data,
                 GError **error)
{
        Agent *a = g_new0(Agent, 1);
        const char *name = config_get_string(config, "agent", "name");

        a->config = config;
        a->state_dir = g_strdup(state_dir);
        a->cred_path = g_build_filename(state_dir, "agent-credential.json", NULL);
        a->ctx = g_main_context_ref_thread_default();
        a->fatal = fatal;
        a->fatal_data = data;
        a->name = g_strdup(name[0] ? name : g_get_host_name());
        if (!util_name_valid(a->name, NULL)) {
                g_autofree char *clean =
                        g_strcanon(g_strdup(a->name),
                                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789._-",
                                   '-');
                g_free(a->name);
                a->name = g_steal_pointer(&clean);
        }
        a->roots = g_strsplit(config_get_string(config, "agent", "storage_roots"), ":", -1);
        a->session = soup_session_new_with_options("user-agent", "atrium-agent/" ATRIUM_VERSION,
                                                   "timeout", 60, NULL);
        a->cancel = g_cancellable_new();
        a->backoff_s = 1;
        a->replies = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        a->inflight = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        a->busy = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, queue_free);
        a->channels = guest_channels_new();
        a->epochs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        a->pool = g_thread_pool_new(job_run_then_finish, a,
                                    config_get_int(config, "agent", "workers"), FALSE, error);
        if (!a->pool) {
                agent_free(a);
                return NULL;
        }
        return a;
}

gboolean agent_start(Agent *a, GError **error)
{
        if (!load_credential(a, error))
                return FALSE;
        if (!host_facts(a, error) || !resolve_address(a, a->managers[0], error))
                return FALSE;
        g_info("agent for host %s: libvirt %s, %s (%s); consoles on %s", a->name, virt_uri(a->virt),
               a->accel.accel == DOMXML_ACCEL_KVM ? "KVM" : "TCG", a->accel.reason, a->address);
        fence_start(a);
        link_connect(a);
        return TRUE;
}

void agent_free(Agent *a)
{
        if (!a)
                return;
        a->stopping = TRUE;
        g_cancellable_cancel(a->cancel);
        heartbeat_stop(a);
        fence_stop(a);
        if (a->retry) {
                g_source_destroy(a->retry);
                g_clear_pointer(&a->retry, g_source_unref);
        }
        if (a->ws) {
                g_signal_handlers_disconnect_by_data(a->ws, a);
                if (soup_websocket_connection_get_state(a->ws) == SOUP_WEBSOCKET_STATE_OPEN)
                        soup_websocket_connection_close(a->ws, SOUP_WEBSOCKET_CLOSE_GOING_AWAY,
                                                        "agent stopping");
                g_clear_object(&a->ws);
        }
        /* Let queued work finish, then deliver its results (they only touch what is still
         * here), so that no callback is left to run on a freed agent. */
        if (a->pool)
                g_thread_pool_free(a->pool, FALSE, TRUE);
        a->pool = NULL;
        g_clear_pointer(&a->virt, virt_close);
        for (int i = 0; i < 1000 && g_main_context_pending(a->ctx); i++)
                g_main_context_iteration(a->ctx, FALSE);
        g_hash_table_destroy(a->channels);
        g_hash_table_destroy(a->replies);
        g_hash_table_destroy(a->inflight);
        g_hash_table_destroy(a->busy);
        g_hash_table_destroy(a->epochs);
        g_queue_clear_full(&a->reply_order, g_free);
        accel_report_clear(&a->accel);
        if (a->facts)
                json_object_unref(a->facts);
        if (a->volumes)
                json_array_unref(a->volumes);
        if (a->figures)
                json_object_unref(a->figures);
        g_clear_object(&a->session);
        g_object_unref(a->cancel);
        g_main_context_unref(a->ctx);
        g_strfreev(a->managers);
        g_strfreev(a->roots);
        g_free(a->fingerprint);
        g_free(a->name);
        g_free(a->credential);
        g_free(a->address);
        g_free(a->state_dir);
        g_free(a->cred_path);
        g_free(a);
}
