#include "cli/cli.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"

#include <glib/gstdio.h>
#include <string.h>

static char *config_path(void)
{
        return g_build_filename(g_get_user_config_dir(), "atrium", "client.conf", NULL);
}

gboolean client_load(Client *c, GError **error)
{
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) local = NULL;

        c->config_path = config_path();
        if (!g_key_file_load_from_file(kf, c->config_path, G_KEY_FILE_NONE, &local)) {
                if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                        return TRUE;
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID, "cannot read %s: %s",
                            c->config_path, local->message);
                return FALSE;
        }
        if (!c->url)
                c->url = g_key_file_get_string(kf, "client", "url", NULL);
        c->token = g_key_file_get_string(kf, "client", "token", NULL);
        if (!c->ca_file)
                c->ca_file = g_key_file_get_string(kf, "client", "ca", NULL);
        if (!c->insecure)
                c->insecure = g_key_file_get_boolean(kf, "client", "insecure", NULL);
        return TRUE;
}

gboolean client_save(Client *c, GError **error)
{
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autofree char *dir = g_path_get_dirname(c->config_path);
        g_autofree char *data = NULL;

        if (g_mkdir_with_parents(dir, 0700) < 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL, "cannot create %s: %s", dir,
                            g_strerror(errno));
                return FALSE;
        }
        if (c->url)
                g_key_file_set_string(kf, "client", "url", c->url);
        if (c->token)
                g_key_file_set_string(kf, "client", "token", c->token);
        if (c->ca_file)
                g_key_file_set_string(kf, "client", "ca", c->ca_file);
        g_key_file_set_boolean(kf, "client", "insecure", c->insecure);
        data = g_key_file_to_data(kf, NULL, NULL);
        return util_write_file(c->config_path, data, -1, 0600, error);
}

void client_clear(Client *c)
{
        g_free(c->url);
        g_free(c->token);
        g_free(c->ca_file);
        g_free(c->config_path);
        g_clear_object(&c->session);
}

static gboolean accept_any(SoupMessage *msg, GTlsCertificate *cert, GTlsCertificateFlags errors,
                           gpointer data)
{
        return TRUE;
}

static gboolean ensure_session(Client *c, GError **error)
{
        if (c->session)
                return TRUE;
        c->session = soup_session_new_with_options("user-agent", "atrium-cli/" ATRIUM_VERSION,
                                                   "timeout", 60, NULL);
        if (c->ca_file) {
                g_autoptr(GTlsDatabase) db = g_tls_file_database_new(c->ca_file, error);
                if (!db) {
                        g_prefix_error(error, "cannot use CA file '%s': ", c->ca_file);
                        return FALSE;
                }
                soup_session_set_tls_database(c->session, db);
        }
        return TRUE;
}

static void server_error(JsonNode *reply, guint status, const char *reason, GError **error)
{
        JsonObject *o = reply && JSON_NODE_HOLDS_OBJECT(reply) ? json_node_get_object(reply) : NULL;
        JsonObject *e = o && json_object_has_member(o, "error")
                                ? json_object_get_object_member(o, "error")
                                : NULL;
        const char *code = e ? json_object_get_string_member_with_default(e, "code", "") : "";
        int c = atrium_error_code_from_string(code);

        if (e && json_object_has_member(e, "message"))
                g_set_error(error, ATRIUM_ERROR, c < 0 ? ATRIUM_ERROR_INTERNAL : c, "%s",
                            json_object_get_string_member(e, "message"));
        else
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INTERNAL, "the server answered %u %s",
                            status, reason ? reason : "");
}

/* Several managers: a standby answers a write with 307 to the leader (X-Atrium-Leader names
 * it), or 503 while none leads (X-Atrium-Leader: none). The call goes to the leader, or waits
 * a second and tries again, a few times: the CLI follows the leader. A leader named that
 * cannot be reached (it died, and its lease has not lapsed yet) sends the call back to the
 * manager logged in to, a second later, until that names the next leader or leads itself. */
#define LEADER_HEADER "X-Atrium-Leader"
#define LEADER_HOPS 3
#define LEADER_WAITS 10

static JsonNode *call_at(Client *c, const char *base, const char *method, const char *path,
                         JsonNode *body, guint *status, char **leader, gboolean *unreachable,
                         GError **error);

JsonNode *client_call(Client *c, const char *method, const char *path, JsonNode *body,
                      guint *status, GError **error)
{
        g_autofree char *base = g_strdup(c->url);
        int hops = 0, waits = 0;

        for (;;) {
                g_autofree char *leader = NULL;
                gboolean unreachable = FALSE;
                JsonNode *r =
                        call_at(c, base, method, path, body, status, &leader, &unreachable, error);
                if (unreachable && hops > 0 && waits++ < LEADER_WAITS) {
                        g_clear_error(error);
                        g_free(base);
                        base = g_strdup(c->url);
                        hops = 0;
                        g_usleep(G_USEC_PER_SEC);
                        continue;
                }
                if (!leader)
                        return r;
                if (r)
                        json_node_unref(r);
                if (g_str_equal(leader, "none") && waits++ < LEADER_WAITS) {
                        g_usleep(G_USEC_PER_SEC);
                } else if (!g_str_equal(leader, "none") && hops++ < LEADER_HOPS) {
                        g_free(base);
                        base = g_steal_pointer(&leader);
                } else {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                                    "no manager leads at %s: retry in a moment", c->url);
                        return NULL;
                }
        }
}

static JsonNode *call_at(Client *c, const char *base, const char *method, const char *path,
                         JsonNode *body, guint *status, char **leader, gboolean *unreachable,
                         GError **error)
{
        g_autofree char *uri = NULL;
        g_autoptr(SoupMessage) msg = NULL;
        g_autoptr(GBytes) reply = NULL;
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonParser) parser = json_parser_new();
        JsonNode *root = NULL;
        gsize len;
        const char *data;

        if (!c->url) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED,
                            "not logged in: run 'atrium login URL' first");
                return NULL;
        }
        if (!ensure_session(c, error))
                return NULL;
        uri = g_strdup_printf("%s%s", base, path);
        msg = soup_message_new(method, uri);
        if (!msg) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID, "'%s' is not a valid URL",
                            uri);
                return NULL;
        }
        soup_message_add_flags(msg, SOUP_MESSAGE_NO_REDIRECT); /* the leader: client_call */
        if (c->insecure)
                g_signal_connect(msg, "accept-certificate", G_CALLBACK(accept_any), NULL);
        if (c->token) {
                g_autofree char *auth = g_strdup_printf("Bearer %s", c->token);
                soup_message_headers_replace(soup_message_get_request_headers(msg), "Authorization",
                                             auth);
        }
        if (body) {
                char *text = json_node_to_text(body, FALSE);
                gsize l = strlen(text);
                g_autoptr(GBytes) bytes = g_bytes_new_take(text, l);
                soup_message_set_request_body_from_bytes(msg, "application/json", bytes);
        }
        reply = soup_session_send_and_read(c->session, msg, NULL, &local);
        if (!reply) {
                if (g_error_matches(local, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE) ||
                    soup_message_get_tls_peer_certificate_errors(msg))
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                                    "cannot reach %s: the server's TLS certificate is not "
                                    "trusted (%s); pass --ca FILE with its certificate, or "
                                    "--insecure",
                                    c->url, local->message);
                else
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                                    "cannot reach %s: %s", base, local->message);
                *unreachable = !soup_message_get_tls_peer_certificate_errors(msg);
                return NULL;
        }
        *status = soup_message_get_status(msg);
        {
                const char *l = soup_message_headers_get_one(soup_message_get_response_headers(msg),
                                                             LEADER_HEADER);
                if (l && ((*status == 307 && g_str_has_prefix(l, "https://")) ||
                          (*status == 503 && g_str_equal(l, "none")))) {
                        *leader = g_strdup(l);
                        return NULL;
                }
        }
        data = g_bytes_get_data(reply, &len);
        if (len > 0 && json_parser_load_from_data(parser, data, len, NULL) &&
            json_parser_get_root(parser))
                root = json_node_copy(json_parser_get_root(parser));
        if (*status >= 400) {
                server_error(root, *status, soup_message_get_reason_phrase(msg), error);
                if (root)
                        json_node_unref(root);
                return NULL;
        }
        return root ? root : json_node_new(JSON_NODE_NULL);
}

JsonNode *client_call_text(Client *c, const char *method, const char *path, JsonNode *body, int *rc)
{
        g_autoptr(GError) error = NULL;
        JsonNode *reply;
        guint status;

        *rc = EXIT_OK;
        reply = client_call(c, method, path, body, &status, &error);
        if (!reply) {
                *rc = error ? out_error(error) : EXIT_OK;
                return NULL;
        }
        if (c->json) {
                out_json(reply);
                json_node_unref(reply);
                return NULL;
        }
        return reply;
}
