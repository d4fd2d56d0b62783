/* Self-fencing: an agent cut off from its manager and from every witness destroys the QEMUs
 * of the desktops the manager may start on another host, so that the disks' leases are free
 * when the manager retries there. See docs/architecture.md "Host failure".
 *
 * The manager says in its welcome (and again now and then in its heartbeat acks) whether this
 * host may fence at all (never when no other host could take over), after how long a silence
 * (manager.self_fence_after), and who the witnesses are: the gateway and the peer hosts'
 * management addresses. The manager's own address is always one. A witness answers when a TCP
 * connection to it is accepted or refused: either way the network between us works, so this
 * host is not the one cut off (a manager outage alone must not kill desktops). */
#define G_LOG_DOMAIN "agent"

#include "agent/agent-private.h"
#include "agent/virt.h"
#include "proto/agentproto.h"
#include "proto/vocab.h"

#include <errno.h>
#include <gio/gio.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WITNESS_MAX 64

void fence_heard(Agent *a)
{
        a->fence.last_heard = g_get_monotonic_time();
        g_atomic_int_inc(&a->fence.heard);
        if (a->fence.fenced_at) {
                g_info("the manager is heard again after this host fenced itself");
                a->fence.fenced_at = 0;
        }
}

/* "HOST:PORT" (an IPv6 address in brackets) into a socket address. */
static gboolean parse_addr(const char *hp, struct sockaddr_storage *out, socklen_t *len)
{
        g_autofree char *host = NULL;
        const char *colon = strrchr(hp, ':');
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
        struct addrinfo *res = NULL;
        gboolean ok;

        if (!colon || colon == hp || !colon[1])
                return FALSE;
        host = hp[0] == '[' && colon[-1] == ']' ? g_strndup(hp + 1, colon - hp - 2)
                                                : g_strndup(hp, colon - hp);
        if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res)
                return FALSE;
        ok = res->ai_addrlen <= sizeof(*out);
        if (ok) {
                memcpy(out, res->ai_addr, res->ai_addrlen);
                *len = res->ai_addrlen;
        }
        freeaddrinfo(res);
        return ok;
}

/* Whether one of the witnesses answers within timeout_ms: all are tried at once. Blocking:
 * runs in a thread. Sets *who to the first that answered. */
gboolean fence_witness_answers(const char *const *witnesses, int timeout_ms, char **who)
{
        struct pollfd fds[WITNESS_MAX];
        const char *names[WITNESS_MAX];
        int n = 0;
        gboolean answered = FALSE;
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

        for (const char *const *w = witnesses; w && *w && n < WITNESS_MAX; w++) {
                struct sockaddr_storage sa;
                socklen_t len;
                int fd;
                if (!parse_addr(*w, &sa, &len))
                        continue;
                fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        continue;
                if (connect(fd, (struct sockaddr *)&sa, len) == 0 || errno == ECONNREFUSED) {
                        close(fd);
                        *who = g_strdup(*w);
                        answered = TRUE;
                        break;
                }
                if (errno != EINPROGRESS) { /* unreachable network or host: no answer */
                        close(fd);
                        continue;
                }
                fds[n] = (struct pollfd){.fd = fd, .events = POLLOUT};
                names[n++] = *w;
        }
        while (!answered && n > 0) {
                int left = (int)((deadline - g_get_monotonic_time()) / 1000);
                int r;
                if (left <= 0 || (r = poll(fds, n, left)) <= 0)
                        break;
                for (int i = 0; i < n && !answered; i++) {
                        int err = 0;
                        socklen_t el = sizeof(err);
                        if (!fds[i].revents)
                                continue;
                        getsockopt(fds[i].fd, SOL_SOCKET, SO_ERROR, &err, &el);
                        if (err == 0 || err == ECONNREFUSED) {
                                *who = g_strdup(names[i]);
                                answered = TRUE;
                        }
                        fds[i].events = 0; /* this one is settled */
                        fds[i].fd = -fds[i].fd - 1;
                }
        }
        for (int i = 0; i < n; i++)
                close(fds[i].fd < 0 ? -fds[i].fd - 1 : fds[i].fd);
        return answered;
}

typedef struct {
        Agent *a;
        GStrv witnesses;
        int timeout_ms;
        gboolean answered;
        char *who;
        guint destroyed;
        GError *error;
        gint64 silent_s;
        gint64 deadline; /* monotonic µs: self_fence_after since the manager's last word */
        gint heard;      /* a->fence.heard when the probe began */
} Probe;

static void probe_free(Probe *p)
{
        g_strfreev(p->witnesses);
        g_free(p->who);
        g_clear_error(&p->error);
        g_free(p);
}

/* Destroys every running domain of ours that the manager may restart elsewhere. */
static guint fence_now(Agent *a, GError **error)
{
        g_autoptr(JsonArray) inv = virt_inventory(a->virt, FALSE, error);
        guint n = 0;

        for (guint i = 0; inv && i < json_array_get_length(inv); i++) {
                JsonObject *d = json_array_get_object_element(inv, i);
                const char *name = json_object_get_string_member(d, "domain");
                g_autoptr(GError) e = NULL;
                if (!json_object_get_boolean_member_with_default(d, "recoverable", FALSE) ||
                    domain_state_from_string(json_object_get_string_member(d, "state")) ==
                            DOMAIN_SHUTOFF)
                        continue;
                if (virt_simple(a->virt, name, "destroy", &e)) {
                        g_warning("this host fenced itself: destroyed %s", name);
                        n++;
                } else {
                        g_warning("fencing: cannot destroy %s: %s", name, e->message);
                }
        }
        return n;
}

static void probe_thread(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
        Probe *p = data;

        gint64 left;

        p->answered =
                fence_witness_answers((const char *const *)p->witnesses, p->timeout_ms, &p->who);
        if (p->answered)
                return;
        left = p->deadline - g_get_monotonic_time(); /* witnesses refused at once: wait */
        if (left > 0)
                g_usleep(left);
        if (g_atomic_int_get(&p->a->fence.heard) != p->heard) { /* the manager spoke */
                p->answered = TRUE;
                p->who = g_strdup("the manager");
                return;
        }
        p->destroyed = fence_now(p->a, &p->error);
}

static void probe_done(GObject *src, GAsyncResult *res, gpointer data)
{
        Agent *a = data;
        Probe *p = g_task_get_task_data(G_TASK(res));

        a->fence.probing = FALSE;
        if (a->stopping)
                return;
        if (p->answered) {
                if (!a->fence.told_witness)
                        g_message("no word from the manager for %" G_GINT64_FORMAT
                                  " s, but witness %s answers: not fencing",
                                  p->silent_s, p->who);
                a->fence.told_witness = TRUE;
                return;
        }
        a->fence.fenced_at = g_get_real_time() / G_USEC_PER_SEC;
        a->fence.fenced_count += p->destroyed;
        g_warning("no word from the manager for %" G_GINT64_FORMAT
                  " s and no witness answers: this host fenced itself (%u domains destroyed%s%s)",
                  p->silent_s, p->destroyed, p->error ? "; " : "",
                  p->error ? p->error->message : "");
}

static gboolean fence_tick(gpointer data)
{
        Agent *a = data;
        gint64 silent_ms = (g_get_monotonic_time() - a->fence.last_heard) / 1000;
        gint64 silent = silent_ms / 1000;
        g_autoptr(GStrvBuilder) b = NULL;
        GTask *task;
        Probe *p;

        /* The witnesses are asked one timeout early: when none answers, the silence has
         * lasted self_fence_after by the time the last one timed out. */
        if (!a->fence.enabled || a->fence.after_s <= 0 ||
            silent_ms < a->fence.after_s * 1000 - a->fence.witness_timeout_ms ||
            a->fence.probing || a->fence.fenced_at || !a->virt)
                return G_SOURCE_CONTINUE;
        if (a->fence.last_probe &&
            g_get_monotonic_time() - a->fence.last_probe < G_USEC_PER_SEC) /* once a second */
                return G_SOURCE_CONTINUE;
        b = g_strv_builder_new();
        if (a->fence.manager_witness)
                g_strv_builder_add(b, a->fence.manager_witness);
        for (char **w = a->fence.witnesses; w && *w; w++)
                g_strv_builder_add(b, *w);
        p = g_new0(Probe, 1);
        p->a = a;
        p->witnesses = g_strv_builder_end(b);
        p->timeout_ms = a->fence.witness_timeout_ms;
        p->silent_s = silent;
        p->deadline = a->fence.last_heard + a->fence.after_s * G_USEC_PER_SEC;
        p->heard = g_atomic_int_get(&a->fence.heard);
        a->fence.probing = TRUE;
        a->fence.last_probe = g_get_monotonic_time();
        task = g_task_new(NULL, NULL, probe_done, a);
        g_task_set_task_data(task, p, (GDestroyNotify)probe_free);
        g_task_run_in_thread(task, probe_thread);
        g_object_unref(task);
        return G_SOURCE_CONTINUE;
}

void fence_configure(Agent *a, JsonObject *msg)
{
        JsonNode *n = json_object_get_member(msg, "fence");
        JsonObject *f = n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
        JsonNode *w = f ? json_object_get_member(f, "witnesses") : NULL;
        g_autoptr(GStrvBuilder) b = g_strv_builder_new();

        gboolean was = a->fence.enabled, first = !a->fence.configured;

        if (!f)
                return;
        a->fence.configured = TRUE;
        a->fence.enabled = json_object_get_boolean_member_with_default(f, "enabled", FALSE);
        a->fence.after_s = CLAMP(json_object_get_int_member_with_default(f, "after", 15), 1, 3600);
        a->fence.witness_timeout_ms = (int)CLAMP(
                json_object_get_int_member_with_default(f, "witness_timeout_ms", 1000), 50, 10000);
        for (guint i = 0; w && JSON_NODE_HOLDS_ARRAY(w) &&
                          i < MIN(json_array_get_length(json_node_get_array(w)), WITNESS_MAX - 1);
             i++) {
                JsonNode *e = json_array_get_element(json_node_get_array(w), i);
                const char *s =
                        JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_STRING
                                ? json_node_get_string(e)
                                : NULL;
                if (s && strlen(s) < 256)
                        g_strv_builder_add(b, s);
        }
        g_strfreev(a->fence.witnesses);
        a->fence.witnesses = g_strv_builder_end(b);
        a->fence.told_witness = FALSE;
        if (first || was != a->fence.enabled) {
                if (a->fence.enabled)
                        g_info("self-fencing on: after %" G_GINT64_FORMAT
                               " s without a word from the manager when none of %u witnesses "
                               "answers",
                               a->fence.after_s, g_strv_length(a->fence.witnesses) + 1);
                else
                        g_info("self-fencing off: no other host could take this one's desktops "
                               "(or manager.self_fence_after is 0)");
        }
}

void fence_set_manager(Agent *a, const char *url)
{
        g_autoptr(GUri) u = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
        const char *host = u ? g_uri_get_host(u) : NULL;

        g_clear_pointer(&a->fence.manager_witness, g_free);
        if (host)
                a->fence.manager_witness =
                        g_strdup_printf(strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
                                        g_uri_get_port(u) > 0 ? g_uri_get_port(u) : 443);
}

void fence_start(Agent *a)
{
        a->fence.last_heard = g_get_monotonic_time();
        a->fence.timer = g_timeout_source_new(250);
        g_source_set_callback(a->fence.timer, fence_tick, a, NULL);
        g_source_attach(a->fence.timer, a->ctx);
}

void fence_stop(Agent *a)
{
        if (a->fence.timer) {
                g_source_destroy(a->fence.timer);
                g_clear_pointer(&a->fence.timer, g_source_unref);
        }
        /* a probe still running holds only its own copies; its callback sees a->stopping */
        while (a->fence.probing)
                g_main_context_iteration(a->ctx, TRUE);
        g_strfreev(a->fence.witnesses);
        a->fence.witnesses = NULL;
        g_clear_pointer(&a->fence.manager_witness, g_free);
}
