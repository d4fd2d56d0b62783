/* The gateways' side of consoles: see tunnels.h. */
#define G_LOG_DOMAIN "sessions"

#include "manager/tunnels.h"
#include "manager/rows.h"
#include "common/error.h"
#include "common/util.h"

#include <sodium.h>
#include <string.h>

static GMutex follower_lock;
static TunnelFollower follower;

void tunnels_set_follower(TunnelFollower fn)
{
        g_mutex_lock(&follower_lock);
        follower = fn;
        g_mutex_unlock(&follower_lock);
}

static void follow(Store *st, gint64 desktop, const Actor *actor, gboolean connected)
{
        TunnelFollower fn;

        g_mutex_lock(&follower_lock);
        fn = follower;
        g_mutex_unlock(&follower_lock);
        if (fn)
                fn(st, desktop, actor, connected);
}

/* Tunnels open per desktop, over every gateway that reports here. */
static GMutex tunnels_lock;
static GHashTable *tunnels;

static guint tunnels_add(gint64 desktop, int delta)
{
        guint n;

        g_mutex_lock(&tunnels_lock);
        if (!tunnels)
                tunnels = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        n = GPOINTER_TO_UINT(g_hash_table_lookup(tunnels, &desktop));
        n = delta > 0 ? n + 1 : (n ? n - 1 : 0);
        if (n)
                g_hash_table_insert(tunnels, g_memdup2(&desktop, sizeof(desktop)),
                                    GUINT_TO_POINTER(n));
        else
                g_hash_table_remove(tunnels, &desktop);
        g_mutex_unlock(&tunnels_lock);
        return n;
}

guint tunnels_open(gint64 desktop)
{
        guint n;

        g_mutex_lock(&tunnels_lock);
        n = tunnels ? GPOINTER_TO_UINT(g_hash_table_lookup(tunnels, &desktop)) : 0;
        g_mutex_unlock(&tunnels_lock);
        return n;
}

void tunnels_gateway_event(Store *st, JsonObject *ev, const char *gateway)
{
        const char *kind = row_str(ev, "kind");
        const char *via = row_str(ev, "via");
        const char *peer = row_str(ev, "peer");
        gint64 desktop = row_int(ev, "desktop");
        g_autofree char *detail = NULL, *who = g_strdup_printf("gateway %s", gateway);
        g_autoptr(JsonObject) row = NULL;
        const char *name = "";
        Actor actor = {who, 0, peer};

        if (g_str_equal(kind, "refused")) {
                detail = g_strdup_printf("%s tunnel from %s refused: %s", via, peer,
                                         row_str(ev, "reason"));
                store_event_add(st, &actor, "ticket_refused", desktop ? "desktop" : "gateway",
                                desktop, "", detail, NULL);
                return;
        }
        if (desktop <= 0)
                return;
        if (g_str_equal(kind, "open") || g_str_equal(kind, "close")) {
                row = store_get_id(st, resource_by_kind("desktop"), desktop, 0, NULL);
                name = row ? row_str(row, "name") : "";
        }
        if (g_str_equal(kind, "open")) {
                if (tunnels_add(desktop, 1) != 1)
                        return;
                detail = g_strdup_printf("%s tunnel from %s", via, peer);
                store_event_add(st, &actor, "console_connected", "desktop", desktop, name, detail,
                                NULL);
                follow(st, desktop, &actor, TRUE);
        } else if (g_str_equal(kind, "close")) {
                if (tunnels_add(desktop, -1) != 0)
                        return;
                detail = g_strdup_printf("last %s tunnel from %s closed after %" G_GINT64_FORMAT
                                         " s (%" G_GINT64_FORMAT " bytes in, %" G_GINT64_FORMAT
                                         " out)",
                                         via, peer, row_int(ev, "duration_ms") / 1000,
                                         row_int(ev, "bytes_in"), row_int(ev, "bytes_out"));
                store_event_add(st, &actor, "console_disconnected", "desktop", desktop, name,
                                detail, NULL);
                follow(st, desktop, &actor, FALSE);
        }
}

/* Orders to the gateways: close every tunnel of a desktop (a session disconnected or ended).
 * The gateway in this process gets them at once through the closer; gateways elsewhere
 * collect them when they report or poll (POST /gateway/events answers with the orders after
 * the last one they saw). Orders are kept ORDERS_KEEP_S seconds. */
#define ORDERS_KEEP_S 300

typedef struct {
        gint64 seq, desktop, at;
        gint64 epoch;    /* a move: the placement epoch of the copy it goes to */
        char proto[8];   /* ... the console's protocol ("" for a close) */
        char host[64];   /* ... its new address */
        guint16 port;    /* ... and port */
} Order;

static GMutex orders_lock;
static GArray *orders;
static gint64 orders_seq;
static TunnelCloser local_closer;
static gpointer local_closer_data;
static TunnelMover local_mover;
static gpointer local_mover_data;

void tunnels_set_mover(TunnelMover fn, gpointer data)
{
        g_mutex_lock(&orders_lock);
        local_mover = fn;
        local_mover_data = data;
        g_mutex_unlock(&orders_lock);
}

/* Appends o, numbered, after dropping the orders older than ORDERS_KEEP_S (orders_lock held). */
static void order_add(Order *o)
{
        if (!orders)
                orders = g_array_new(FALSE, FALSE, sizeof(Order));
        while (orders->len && g_array_index(orders, Order, 0).at < o->at - ORDERS_KEEP_S)
                g_array_remove_index(orders, 0);
        o->seq = ++orders_seq;
        g_array_append_val(orders, *o);
}

void tunnels_set_closer(TunnelCloser fn, gpointer data)
{
        g_mutex_lock(&orders_lock);
        local_closer = fn;
        local_closer_data = data;
        g_mutex_unlock(&orders_lock);
}

void tunnels_close(gint64 desktop)
{
        Order o = {0, desktop, row_now()};
        TunnelCloser fn;
        gpointer data;

        g_mutex_lock(&orders_lock);
        order_add(&o);
        fn = local_closer;
        data = local_closer_data;
        g_mutex_unlock(&orders_lock);
        if (fn)
                fn(desktop, data);
}

void tunnels_move(gint64 desktop, gint64 epoch, const char *proto, const char *host,
                  guint16 port)
{
        Order o = {0, desktop, row_now(), epoch, "", "", port};
        TunnelMover fn;
        gpointer data;

        g_strlcpy(o.proto, proto, sizeof(o.proto));
        g_strlcpy(o.host, host, sizeof(o.host));
        g_mutex_lock(&orders_lock);
        for (guint i = 0; orders && i < orders->len; i++) {
                Order *x = &g_array_index(orders, Order, i);
                if (x->desktop == desktop && x->epoch == epoch && x->port == port &&
                    g_str_equal(x->proto, o.proto) && g_str_equal(x->host, o.host)) {
                        g_mutex_unlock(&orders_lock);
                        return; /* told already (a destination reports its copy more than once) */
                }
        }
        order_add(&o);
        fn = local_mover;
        data = local_mover_data;
        g_mutex_unlock(&orders_lock);
        g_info("desktop %" G_GINT64_FORMAT ": its %s console moves to %s:%u", desktop, proto, host,
               port);
        if (fn)
                fn(desktop, proto, host, port, data);
}

/* {"orders": [{"seq", "close_desktop"} | {"seq", "move_desktop", "proto", "host", "port"}],
 * "last": SEQ}: the orders after `after`. */
static JsonObject *orders_after(gint64 after)
{
        JsonObject *o = json_object_new();
        JsonArray *a = json_array_new();

        g_mutex_lock(&orders_lock);
        for (guint i = 0; orders && i < orders->len; i++) {
                Order *x = &g_array_index(orders, Order, i);
                if (x->seq <= after)
                        continue;
                JsonObject *e = json_object_new();
                json_object_set_int_member(e, "seq", x->seq);
                if (x->proto[0]) {
                        json_object_set_int_member(e, "move_desktop", x->desktop);
                        json_object_set_string_member(e, "proto", x->proto);
                        json_object_set_string_member(e, "host", x->host);
                        json_object_set_int_member(e, "port", x->port);
                } else {
                        json_object_set_int_member(e, "close_desktop", x->desktop);
                }
                json_array_add_object_element(a, e);
        }
        json_object_set_int_member(o, "last", orders_seq);
        g_mutex_unlock(&orders_lock);
        json_object_set_array_member(o, "orders", a);
        return o;
}

/* POST /gateway/events: a gateway in another process reports its tunnels, authenticated by
 * the secret of state_dir/gateway.key (X-Atrium-Gateway-Key), and collects the orders after
 * "after" (absent: none, only the last sequence number). */
void api_gateway_events(ApiRequest *req)
{
        const char *key = soup_message_headers_get_one(
                soup_server_message_get_request_headers(req->msg), "X-Atrium-Gateway-Key");
        const char *name = row_str(req->body, "gateway");
        JsonNode *events = json_object_get_member(req->body, "events");
        g_autoptr(GError) error = NULL;

        if (!key || strlen(key) != strlen(req->mgr->gateway_key) ||
            sodium_memcmp(key, req->mgr->gateway_key, strlen(key)) != 0) {
                g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED,
                            "a gateway reports with the secret of the manager's "
                            "state_dir/gateway.key (header X-Atrium-Gateway-Key)");
                api_reply_error(req, error);
                return;
        }
        if (!events || !JSON_NODE_HOLDS_ARRAY(events) ||
            !util_text_valid("gateway", name, 64, &error)) {
                if (!error)
                        g_set_error(&error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "'events' must be an array of tunnel reports");
                api_reply_error(req, error);
                return;
        }
        for (guint i = 0; i < json_array_get_length(json_node_get_array(events)); i++) {
                JsonNode *n = json_array_get_element(json_node_get_array(events), i);
                if (JSON_NODE_HOLDS_OBJECT(n))
                        tunnels_gateway_event(req->store, json_node_get_object(n),
                                              name[0] ? name : req->address);
        }
        api_reply_object(req, 200,
                         orders_after(json_object_get_int_member_with_default(req->body, "after",
                                                                              G_MAXINT64)));
}
