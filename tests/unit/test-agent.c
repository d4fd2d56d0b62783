/* The agent against a fake manager (a SoupServer in this process) on libvirt's test driver:
 * joining with several manager URLs (the first one dead), the credential file, linking with
 * backoff, hello with the inventory, heartbeats, commands and their idempotence (a repeated
 * command id is answered from memory, not run twice), refusals of bad arguments and of
 * domains Atrium did not make, the inventory after the link is cut and comes back, and
 * placement epochs (an older command refused as stale, the epoch in the inventory). */
#include "agent/agent.h"
#include "agent/agent-private.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "proto/agentproto.h"
#include "testutil.h"

#include <libsoup/soup.h>
#include <libvirt/libvirt.h>
#include <string.h>

/* The fake manager runs in a thread of its own, with its own context: the agent's loop is the
 * process's default context (libvirt's events are dispatched there), and its join blocks. */
typedef struct {
        GMainLoop *loop; /* the agent's: the default context */
        GMutex lock;     /* the fields below are shared with the manager's thread */
        GMainContext *ctx;
        GMainLoop *server_loop;
        GThread *thread;
        SoupServer *server;
        char *url;
        SoupWebsocketConnection *ws;
        guint links, hellos, heartbeats, registrations;
        GPtrArray *replies; /* texts */
        GPtrArray *events;  /* JsonObject */
        JsonObject *last_hello;
        char *fatal;
} Fake;

static Fake fake;

static gboolean quit_loop(gpointer data)
{
        g_main_loop_quit(fake.loop);
        return G_SOURCE_REMOVE;
}

/* Run the loop until cond() holds or the time is up. */
static gboolean run_until(gboolean (*cond)(gpointer), gpointer data, guint seconds)
{
        gint64 end = g_get_monotonic_time() + (gint64)seconds * G_USEC_PER_SEC;

        while (!cond(data) && g_get_monotonic_time() < end) {
                GSource *t = g_timeout_source_new(50);
                g_source_set_callback(t, quit_loop, NULL, NULL);
                g_source_attach(t, NULL);
                g_main_loop_run(fake.loop);
                g_source_destroy(t);
                g_source_unref(t);
        }
        return cond(data);
}

static void on_message(SoupWebsocketConnection *ws, gint type, GBytes *bytes, gpointer data)
{
        gsize len;
        const char *text = g_bytes_get_data(bytes, &len);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) msg = agent_msg_parse(text, len, &error);
        const char *t;

        g_assert_no_error(error);
        t = json_object_get_string_member(msg, "type");
        g_mutex_lock(&fake.lock);
        if (g_str_equal(t, "hello")) {
                fake.hellos++;
                g_clear_pointer(&fake.last_hello, json_object_unref);
                fake.last_hello = json_object_ref(msg);
        } else if (g_str_equal(t, "heartbeat")) {
                fake.heartbeats++;
        } else if (g_str_equal(t, "reply")) {
                g_ptr_array_add(fake.replies, g_strndup(text, len));
        } else if (g_str_equal(t, "event")) {
                g_ptr_array_add(fake.events, json_object_ref(msg));
        }
        g_mutex_unlock(&fake.lock);
}

static void on_link(SoupServer *s, SoupServerMessage *msg, const char *path,
                    SoupWebsocketConnection *ws, gpointer data)
{
        const char *auth = soup_message_headers_get_one(
                soup_server_message_get_request_headers(msg), "Authorization");

        g_assert_cmpstr(auth, ==, "Bearer ath1.test-credential");
        g_mutex_lock(&fake.lock);
        g_clear_object(&fake.ws);
        fake.ws = g_object_ref(ws);
        fake.links++;
        g_mutex_unlock(&fake.lock);
        g_signal_connect(ws, "message", G_CALLBACK(on_message), NULL);
        soup_websocket_connection_send_text(
                ws, "{\"type\":\"welcome\",\"version\":1,\"host_id\":7,\"name\":\"t1\","
                    "\"heartbeat_interval\":1,\"volumes\":[],\"installation\":\"0123abcd\"}");
}

static void on_register(SoupServer *s, SoupServerMessage *msg, const char *path, GHashTable *q,
                        gpointer data)
{
        static const char reply[] = "{\"host_id\":7,\"name\":\"t1\","
                                    "\"credential\":\"ath1.test-credential\"}";
        SoupMessageBody *body = soup_server_message_get_request_body(msg);
        g_autoptr(GBytes) b = soup_message_body_flatten(body);
        g_autoptr(JsonObject) o = NULL;
        g_autoptr(JsonNode) root = json_parse_body(g_bytes_get_data(b, NULL), g_bytes_get_size(b),
                                                   8, NULL);

        g_assert_nonnull(root);
        o = json_object_ref(json_node_get_object(root));
        g_assert_cmpstr(json_object_get_string_member(o, "join_token"), ==, "atj1.token");
        g_assert_cmpstr(json_object_get_string_member(o, "name"), ==, "t1");
        g_assert_cmpstr(json_object_get_string_member(o, "accel"), ==, "qemu");
        g_assert_cmpint(json_object_get_int_member(o, "cpus"), >, 0);
        g_mutex_lock(&fake.lock);
        fake.registrations++;
        g_mutex_unlock(&fake.lock);
        soup_server_message_set_status(msg, 201, NULL);
        soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_STATIC, reply,
                                         strlen(reply));
}

static void on_fatal(const char *message, gpointer data)
{
        g_free(fake.fatal);
        fake.fatal = g_strdup(message);
}

static guint locked_count(guint *what)
{
        guint n;

        g_mutex_lock(&fake.lock);
        n = *what;
        g_mutex_unlock(&fake.lock);
        return n;
}

static gboolean have_hellos(gpointer n)
{
        return locked_count(&fake.hellos) >= GPOINTER_TO_UINT(n);
}
static gboolean have_heartbeats(gpointer n)
{
        return locked_count(&fake.heartbeats) >= GPOINTER_TO_UINT(n);
}
static gboolean have_replies(gpointer n)
{
        return locked_count(&fake.replies->len) >= GPOINTER_TO_UINT(n);
}

/* On the manager's thread: send a text (taken), or close the link when it is NULL. */
static gboolean server_send(gpointer data)
{
        char *text = data;

        if (text)
                soup_websocket_connection_send_text(fake.ws, text);
        else
                soup_websocket_connection_close(fake.ws, SOUP_WEBSOCKET_CLOSE_NORMAL, "test");
        g_free(text);
        return G_SOURCE_REMOVE;
}

static void send_command(const char *id, const char *op, const char *args)
{
        g_main_context_invoke(
                fake.ctx, server_send,
                g_strdup_printf("{\"type\":\"command\",\"id\":\"%s\",\"op\":\"%s\",\"args\":%s}",
                                id, op, args));
}

static JsonObject *reply_obj(guint i)
{
        g_autofree char *text = NULL;

        g_mutex_lock(&fake.lock);
        text = g_strdup(fake.replies->pdata[i]);
        g_mutex_unlock(&fake.lock);
        return agent_msg_parse(text, strlen(text), NULL);
}

static gboolean replies_equal(guint i, guint k)
{
        gboolean same;

        g_mutex_lock(&fake.lock);
        same = g_str_equal(fake.replies->pdata[i], fake.replies->pdata[k]);
        g_mutex_unlock(&fake.lock);
        return same;
}

static gpointer server_main(gpointer data)
{
        g_main_context_push_thread_default(fake.ctx);
        g_main_loop_run(fake.server_loop);
        g_main_context_pop_thread_default(fake.ctx);
        return NULL;
}

static gboolean server_stop(gpointer data)
{
        g_clear_object(&fake.ws);
        soup_server_disconnect(fake.server);
        g_clear_object(&fake.server);
        g_main_loop_quit(fake.server_loop);
        return G_SOURCE_REMOVE;
}

static gboolean inventory_has(const char *domain, const char *state)
{
        JsonArray *inv;
        gboolean found = FALSE;

        g_mutex_lock(&fake.lock);
        inv = json_object_get_array_member(fake.last_hello, "inventory");
        for (guint i = 0; i < json_array_get_length(inv) && !found; i++) {
                JsonObject *d = json_array_get_object_element(inv, i);
                if (g_str_equal(json_object_get_string_member(d, "domain"), domain))
                        found = !state || g_str_equal(json_object_get_string_member(d, "state"),
                                                      state);
        }
        g_mutex_unlock(&fake.lock);
        return found;
}

static gint64 hello_int(const char *key)
{
        gint64 v;

        g_mutex_lock(&fake.lock);
        v = json_object_get_int_member(fake.last_hello, key);
        g_mutex_unlock(&fake.lock);
        return v;
}

static void test_agent(void)
{
        g_autofree char *dir = testutil_tmpdir();
        g_autofree char *vol = g_build_filename(dir, "vol", NULL);
        g_autofree char *cred = g_build_filename(dir, "state", "agent-credential.json", NULL);
        g_autofree char *state = g_build_filename(dir, "state", NULL);
        g_autofree char *args = NULL, *text = NULL;
        g_autoptr(Config) config = config_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(Agent) a = NULL;
        g_autoptr(GSList) uris = NULL;
        const char *managers[3];
        virConnectPtr conn;
        GStatBuf st;

        g_mkdir(vol, 0755);
        g_mkdir(state, 0700);
        fake.loop = g_main_loop_new(NULL, FALSE);
        g_mutex_init(&fake.lock);
        fake.ctx = g_main_context_new();
        fake.server_loop = g_main_loop_new(fake.ctx, FALSE);
        fake.replies = g_ptr_array_new_with_free_func(g_free);
        fake.events = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
        g_main_context_push_thread_default(fake.ctx); /* the server's sources go there */
        fake.server = soup_server_new(NULL, NULL);
        soup_server_add_handler(fake.server, AGENT_REGISTER_PATH, on_register, NULL, NULL);
        soup_server_add_websocket_handler(fake.server, AGENT_LINK_PATH, NULL, NULL, on_link, NULL,
                                          NULL);
        g_assert_true(soup_server_listen_local(fake.server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY,
                                               &error));
        uris = soup_server_get_uris(fake.server);
        fake.url = g_uri_to_string(uris->data);
        g_slist_free_full(g_steal_pointer(&uris), (GDestroyNotify)g_uri_unref);
        g_main_context_pop_thread_default(fake.ctx);
        fake.thread = g_thread_new("fake-manager", server_main, NULL);

        g_assert_true(config_set(config, "agent", "libvirt_uri", "test:///default", NULL));
        g_assert_true(config_set(config, "agent", "storage_roots", dir, NULL));
        g_assert_true(config_set(config, "agent", "name", "t1", NULL));
        g_assert_true(config_set(config, "agent", "accel", "qemu", NULL));
        g_assert_true(config_set(config, "agent", "address", "127.0.0.1", NULL));
        a = agent_new(config, state, on_fatal, NULL, &error);
        g_assert_no_error(error);
        g_assert_false(agent_joined(a));

        /* Join: the first manager is unreachable, the second answers. */
        managers[0] = "http://127.0.0.1:1";
        managers[1] = fake.url;
        managers[2] = NULL;
        g_assert_true(agent_join(a, managers, "", "atj1.token", &error));
        g_assert_no_error(error);
        g_assert_cmpuint(locked_count(&fake.registrations), ==, 1);
        g_assert_true(agent_joined(a));
        g_assert_cmpint(g_stat(cred, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 0777, ==, 0600);
        g_assert_true(g_file_get_contents(cred, &text, NULL, NULL));
        g_assert_nonnull(strstr(text, "ath1.test-credential"));

        /* Link: after the dead URL, with backoff, to the live one; hello, then heartbeats. */
        g_assert_true(agent_start(a, &error));
        g_assert_no_error(error);
        g_assert_true(run_until(have_hellos, GUINT_TO_POINTER(1), 15));
        g_mutex_lock(&fake.lock);
        g_assert_cmpstr(json_object_get_string_member(fake.last_hello, "accel"), ==, "qemu");
        g_mutex_unlock(&fake.lock);
        g_assert_false(inventory_has("test", NULL)); /* the test driver's own domain: not ours */
        g_assert_true(run_until(have_heartbeats, GUINT_TO_POINTER(2), 10));

        /* A command runs once; the same id again gets the same answer without running. */
        args = g_strdup_printf("{\"domain\":\"atrium-0123abcd-guest-7\",\"volume\":\"%s\","
                               "\"disk\":\"g7.qcow2\",\"disk_gb\":1,\"ram_mb\":128}",
                               vol);
        send_command("c1", "domain.start", args);
        g_assert_true(run_until(have_replies, GUINT_TO_POINTER(1), 30));
        {
                g_autoptr(JsonObject) r = reply_obj(0);
                g_assert_true(json_object_get_boolean_member(r, "ok"));
                g_assert_cmpstr(json_object_get_string_member(
                                        json_object_get_object_member(r, "result"), "state"),
                                ==, "running");
        }
        send_command("c1", "domain.start", args);
        g_assert_true(run_until(have_replies, GUINT_TO_POINTER(2), 10));
        g_assert_true(replies_equal(0, 1));
        {
                guint started = 0;
                run_until(have_replies, GUINT_TO_POINTER(99), 1); /* let events arrive */
                g_mutex_lock(&fake.lock);
                for (guint i = 0; i < fake.events->len; i++) {
                        JsonObject *e = fake.events->pdata[i];
                        if (g_str_equal(json_object_get_string_member(e, "event"), "lifecycle") &&
                            g_str_equal(json_object_get_string_member(e, "state"), "running"))
                                started++;
                }
                g_mutex_unlock(&fake.lock);
                g_assert_cmpuint(started, ==, 1);
        }

        /* Refusals: a domain Atrium did not make, bad arguments, unknown ops, paths out. */
        conn = virConnectOpen("test:///default");
        g_assert_nonnull(conn);
        {
                virDomainPtr d = virDomainDefineXML(
                        conn, "<domain type='test'><name>atrium-0123abcd-guest-8</name>"
                              "<memory>65536</memory><os><type>hvm</type></os></domain>");
                g_assert_nonnull(d);
                virDomainFree(d);
        }
        send_command("c2", "domain.destroy", "{\"domain\":\"atrium-0123abcd-guest-8\"}");
        send_command("c3", "domain.start", "{\"domain\":\"atrium-0123abcd-guest-9\",\"vcpus\":0}");
        send_command("c4", "domain.fly", "{}");
        send_command("c5", "domain.destroy", "{\"domain\":\"test\"}");
        send_command("c10", "domain.destroy", "{\"domain\":\"atrium-ffffffff-guest-3\"}");
        g_free(args);
        args = g_strdup_printf("{\"domain\":\"atrium-0123abcd-guest-9\",\"volume\":\"%s\","
                               "\"disk\":\"g9.qcow2\",\"disk_gb\":1,\"block_device\":\"/dev/sda\"}",
                               vol);
        send_command("c11", "domain.start", args); /* no block device is allowed here */
        g_free(args);
        args = g_strdup_printf("{\"domain\":\"atrium-0123abcd-guest-9\",\"volume\":\"%s\","
                               "\"disk\":\"g9.qcow2\",\"disk_gb\":1,\"clipboard\":\"sideways\"}",
                               vol);
        send_command("c12", "domain.start", args);
        send_command("c6", "domain.start",
                     "{\"domain\":\"atrium-0123abcd-guest-9\",\"volume\":\"/etc\",\"disk\":\"passwd\"}");
        g_assert_true(run_until(have_replies, GUINT_TO_POINTER(10), 10));
        {
                /* replies come as the work finishes, not in the order sent */
                const char *ids[] = {"c2", "c3", "c4", "c5", "c6", "c10", "c11", "c12"};
                const char *codes[] = {"forbidden",     "invalid_value", "invalid_value",
                                       "invalid_value", "forbidden",     "forbidden",
                                       "forbidden",     "invalid_value"};
                for (guint i = 2; i < 10; i++) {
                        g_autoptr(JsonObject) r = reply_obj(i);
                        JsonObject *e = json_object_get_object_member(r, "error");
                        const char *id = json_object_get_string_member(r, "id");
                        g_assert_false(json_object_get_boolean_member(r, "ok"));
                        for (gsize k = 0; k < G_N_ELEMENTS(ids); k++)
                                if (g_str_equal(ids[k], id))
                                        g_assert_cmpstr(json_object_get_string_member(e, "code"),
                                                        ==, codes[k]);
                }
        }
        {
                virDomainPtr d = virDomainLookupByName(conn, "atrium-0123abcd-guest-8");
                g_assert_nonnull(d); /* untouched */
                virDomainUndefine(d);
                virDomainFree(d);
        }

        /* The link is cut: the agent links again and reports what it runs. */
        g_main_context_invoke(fake.ctx, server_send, NULL);
        g_assert_true(run_until(have_hellos, GUINT_TO_POINTER(2), 15));
        g_assert_cmpuint(locked_count(&fake.links), >=, 2);
        g_assert_true(inventory_has("atrium-0123abcd-guest-7", "running"));
        g_assert_cmpint(hello_int("running"), ==, 1);
        g_assert_cmpint(hello_int("ram_committed_mb"), ==, 128);

        /* Stop and remove; removing again is harmless. */
        send_command("c7", "domain.shutdown", "{\"domain\":\"atrium-0123abcd-guest-7\",\"force\":true}");
        send_command("c8", "domain.remove", "{\"domain\":\"atrium-0123abcd-guest-7\"}");
        send_command("c9", "domain.remove", "{\"domain\":\"atrium-0123abcd-guest-7\"}");
        g_assert_true(run_until(have_replies, GUINT_TO_POINTER(13), 10));
        for (guint i = 10; i < 13; i++) {
                g_autoptr(JsonObject) r = reply_obj(i);
                g_assert_true(json_object_get_boolean_member(r, "ok"));
        }
        g_assert_null(virDomainLookupByName(conn, "atrium-0123abcd-guest-7"));

        /* Placement epochs: a start records its epoch in the domain; an older command is
         * refused as stale, the same epoch goes; the inventory reports it. */
        g_free(args);
        args = g_strdup_printf("{\"domain\":\"atrium-0123abcd-guest-11\",\"volume\":\"%s\","
                               "\"disk\":\"g11.qcow2\",\"disk_gb\":1,\"ram_mb\":64,"
                               "\"epoch\":5,\"recoverable\":true}",
                               vol);
        send_command("e1", "domain.start", args);
        g_assert_true(run_until(have_replies, GUINT_TO_POINTER(14), 30));
        send_command("e2", "domain.destroy", "{\"domain\":\"atrium-0123abcd-guest-11\",\"epoch\":4}");
        g_assert_true(run_until(have_replies, GUINT_TO_POINTER(15), 10));
        send_command("e3", "domain.reboot", "{\"domain\":\"atrium-0123abcd-guest-11\"}");
        g_assert_true(run_until(have_replies, GUINT_TO_POINTER(16), 10));
        {
                g_autoptr(JsonObject) r1 = reply_obj(13);
                g_autoptr(JsonObject) r2 = reply_obj(14);
                g_autoptr(JsonObject) r3 = reply_obj(15);
                JsonObject *e2 = json_object_get_object_member(r2, "error");
                g_assert_true(json_object_get_boolean_member(r1, "ok"));
                g_assert_cmpint(json_object_get_int_member(
                                        json_object_get_object_member(r1, "result"), "epoch"),
                                ==, 5);
                g_assert_false(json_object_get_boolean_member(r2, "ok"));
                g_assert_cmpstr(json_object_get_string_member(e2, "code"), ==, "conflict");
                g_assert_nonnull(strstr(json_object_get_string_member(e2, "message"), "stale"));
                g_assert_false(json_object_get_boolean_member(r3, "ok")); /* none: epoch 0 */
        }
        g_main_context_invoke(fake.ctx, server_send, NULL);
        g_assert_true(run_until(have_hellos, GUINT_TO_POINTER(3), 15));
        {
                JsonArray *inv;
                gint64 epoch = -1;
                gboolean recoverable = FALSE;
                g_mutex_lock(&fake.lock);
                inv = json_object_get_array_member(fake.last_hello, "inventory");
                for (guint i = 0; i < json_array_get_length(inv); i++) {
                        JsonObject *d = json_array_get_object_element(inv, i);
                        if (g_str_equal(json_object_get_string_member(d, "domain"),
                                        "atrium-0123abcd-guest-11")) {
                                epoch = json_object_get_int_member(d, "epoch");
                                recoverable = json_object_get_boolean_member(d, "recoverable");
                        }
                }
                g_mutex_unlock(&fake.lock);
                g_assert_cmpint(epoch, ==, 5);
                g_assert_true(recoverable);
        }
        send_command("e4", "domain.remove", "{\"domain\":\"atrium-0123abcd-guest-11\",\"epoch\":5}");
        g_assert_true(run_until(have_replies, GUINT_TO_POINTER(17), 10));
        {
                g_autoptr(JsonObject) r = reply_obj(16);
                g_assert_true(json_object_get_boolean_member(r, "ok"));
        }
        /* Leaders' terms (several managers): a command of term 7 is heard; one of term 6, from
         * a manager that lost the lease since, is refused, and nothing is run. */
        g_main_context_invoke(fake.ctx, server_send,
                              g_strdup("{\"type\":\"command\",\"id\":\"t7\",\"op\":\"domain.remove\","
                                       "\"term\":7,\"args\":{\"domain\":\"atrium-0123abcd-guest-12\",\"epoch\":1}}"));
        g_assert_true(run_until(have_replies, GUINT_TO_POINTER(18), 10));
        g_main_context_invoke(fake.ctx, server_send,
                              g_strdup("{\"type\":\"command\",\"id\":\"t6\",\"op\":\"domain.remove\","
                                       "\"term\":6,\"args\":{\"domain\":\"atrium-0123abcd-guest-12\",\"epoch\":1}}"));
        g_assert_true(run_until(have_replies, GUINT_TO_POINTER(19), 10));
        {
                g_autoptr(JsonObject) r7 = reply_obj(17), r6 = reply_obj(18);
                g_autoptr(JsonNode) n7 = json_node_init_object(json_node_alloc(), r7);
                g_autoptr(JsonNode) n6 = json_node_init_object(json_node_alloc(), r6);
                g_autofree char *t7 = json_to_string(n7, FALSE);
                g_autofree char *t6 = json_to_string(n6, FALSE);
                g_assert_null(strstr(t7, "stale leader"));
                g_assert_false(json_object_get_boolean_member(r6, "ok"));
                g_assert_nonnull(strstr(t6, "stale leader: this host has heard term 7, the command is of term 6"));
        }
        virConnectClose(conn);
        g_assert_null(fake.fatal);

        g_clear_pointer(&a, agent_free);
        g_main_context_invoke(fake.ctx, server_stop, NULL);
        g_thread_join(fake.thread);
        g_main_loop_unref(fake.server_loop);
        g_main_context_unref(fake.ctx);
        g_clear_pointer(&fake.last_hello, json_object_unref);
        g_ptr_array_unref(fake.replies);
        g_ptr_array_unref(fake.events);
        g_main_loop_unref(fake.loop);
        g_free(fake.url);
        testutil_rmdir(dir);
}

/* Self-fencing's witnesses: a TCP accept or a refusal is an answer; silence (no answer
 * within the timeout) and nonsense are not. */
static void test_witness(void)
{
        g_autoptr(GSocket) listener =
                g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
        g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
        g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
        g_autoptr(GSocketAddress) bound = NULL;
        g_autofree char *open_w = NULL, *closed_w = NULL, *who = NULL;
        guint16 port;

        g_assert_true(g_socket_bind(listener, any, TRUE, NULL));
        g_assert_true(g_socket_listen(listener, NULL));
        bound = g_socket_get_local_address(listener, NULL);
        port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
        open_w = g_strdup_printf("127.0.0.1:%u", port);
        {
                const char *w[] = {"nonsense", open_w, NULL};
                g_assert_true(fence_witness_answers(w, 500, &who));
                g_assert_cmpstr(who, ==, open_w);
                g_clear_pointer(&who, g_free);
        }
        g_socket_close(listener, NULL);
        closed_w = g_strdup_printf("127.0.0.1:%u", port); /* nobody listens now: refused */
        {
                const char *w[] = {closed_w, NULL};
                g_assert_true(fence_witness_answers(w, 500, &who));
                g_clear_pointer(&who, g_free);
        }
        {
                /* Silence: a listener whose accept queue is full drops new SYNs, as a host cut
                 * off would (its backlog of 0 takes one connection, two fill it). */
                g_autoptr(GSocket) full = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                                       G_SOCKET_PROTOCOL_TCP, NULL);
                g_autoptr(GSocketAddress) fa = NULL;
                g_autofree char *silent = NULL;
                GSocket *fill[3];
                const char *w[4] = {"nonsense", "[::1", NULL, NULL};
                gint64 t0;
                g_socket_set_listen_backlog(full, 0);
                g_assert_true(g_socket_bind(full, any, TRUE, NULL));
                g_assert_true(g_socket_listen(full, NULL));
                fa = g_socket_get_local_address(full, NULL);
                for (int i = 0; i < 3; i++) {
                        fill[i] = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                               G_SOCKET_PROTOCOL_TCP, NULL);
                        g_socket_set_blocking(fill[i], FALSE);
                        g_socket_connect(fill[i], fa, NULL, NULL);
                }
                g_usleep(200000);
                silent = g_strdup_printf(
                        "127.0.0.1:%u", g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(fa)));
                w[2] = silent;
                t0 = g_get_monotonic_time();
                g_assert_false(fence_witness_answers(w, 300, &who));
                g_assert_null(who);
                g_assert_cmpint(g_get_monotonic_time() - t0, >=, 250000); /* it waited */
                g_assert_cmpint(g_get_monotonic_time() - t0, <, 3 * G_USEC_PER_SEC);
                for (int i = 0; i < 3; i++)
                        g_object_unref(fill[i]);
        }
        {
                const char *w[] = {NULL};
                g_assert_false(fence_witness_answers(w, 100, &who));
        }
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        /* The agent warns about the dead manager URL and the cut link: expected here. */
        g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
        g_test_add_func("/agent/join-link-commands", test_agent);
        g_test_add_func("/agent/witness", test_witness);
        return g_test_run();
}
