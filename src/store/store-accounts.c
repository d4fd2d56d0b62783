/* Accounts: group members, a user's groups, password logins, bearer tokens. */
#define G_LOG_DOMAIN "store"

#include "store/store.h"
#include "store/store-private.h"
#include "common/error.h"
#include "common/jsonutil.h"
#include "common/util.h"

#include <string.h>

/* ---- group members ----------------------------------------------------------------------- */

static gboolean member_change(Store *s, const char *group, const char *user, gboolean add,
                              const Actor *actor, GError **error)
{
        gint64 gid, uid;
        SqlStmt *stmt;
        g_autofree char *detail = NULL;

        if (!sqs_tx_begin(s, error))
                return FALSE;
        gid = sqs_find_id(s, resource_by_kind("group"), group, error);
        uid = gid ? sqs_find_id(s, resource_by_kind("user"), user, error) : 0;
        if (!uid)
                goto fail;
        stmt = sqs_prep(s,
                        add ? "INSERT INTO group_members (group_id, user_id) VALUES (?, ?) ON "
                              "CONFLICT DO NOTHING"
                            : "DELETE FROM group_members WHERE group_id = ? AND user_id = ?",
                        error);
        if (!stmt)
                goto fail;
        sql_bind_int(stmt, 1, gid);
        sql_bind_int(stmt, 2, uid);
        if (!sqs_step_done(s, stmt, error, "changing group members"))
                goto fail;
        if (!add && sql_changes(s->db) == 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND,
                            "user '%s' is not a member of group '%s'", user, group);
                goto fail;
        }
        detail = g_strdup_printf("{\"user\":\"%s\"}", user);
        if (!sqs_event_insert(s, actor, add ? "add_member" : "remove_member", "group", gid, group,
                              detail, error))
                goto fail;
        return sqs_tx_commit(s, error);
fail:
        sqs_tx_rollback(s);
        return FALSE;
}

gboolean store_member_add(Store *st, const char *group, const char *user, const Actor *actor,
                          GError **error)
{
        return member_change(st, group, user, TRUE, actor, error);
}

gboolean store_member_remove(Store *st, const char *group, const char *user, const Actor *actor,
                             GError **error)
{
        return member_change(st, group, user, FALSE, actor, error);
}

JsonArray *store_members(Store *s, const char *group, GError **error)
{
        gint64 gid = sqs_find_id(s, resource_by_kind("group"), group, error);
        SqlStmt *stmt;
        JsonArray *out;

        if (!gid)
                return NULL;
        stmt = sqs_prep(s,
                        "SELECT u.id, u.name, u.display_name FROM group_members m "
                        "JOIN users u ON u.id = m.user_id WHERE m.group_id = ? ORDER BY u.name",
                        error);
        if (!stmt)
                return NULL;
        sql_bind_int(stmt, 1, gid);
        out = json_array_new();
        while (sql_step(stmt) == SQL_ROW) {
                JsonObject *o = json_object_new();
                json_object_set_int_member(o, "id", sql_column_int(stmt, 0));
                json_object_set_string_member(o, "name", sql_column_text(stmt, 1));
                json_object_set_string_member(o, "display_name", sql_column_text(stmt, 2));
                json_array_add_object_element(out, o);
        }
        sql_reset(stmt);
        return out;
}

/* The ids a query selects, in order; its N parameters ?1…?N bound to PARAMS. */
static GArray *ids_where(Store *st, const char *sql, const gint64 *params, int n, GError **error)
{
        SqlStmt *stmt = sqs_prep(st, sql, error);
        GArray *out;

        if (!stmt)
                return NULL;
        for (int i = 0; i < n; i++)
                sql_bind_int(stmt, i + 1, params[i]);
        out = g_array_new(FALSE, FALSE, sizeof(gint64));
        while (sql_step(stmt) == SQL_ROW) {
                gint64 id = sql_column_int(stmt, 0);
                g_array_append_val(out, id);
        }
        sql_reset(stmt);
        return out;
}

GArray *store_entitled_pools(Store *st, gint64 user_id, gint64 terminal_id, GError **error)
{
        return ids_where(st,
                         "SELECT DISTINCT pool_id FROM entitlements WHERE user_id = ?1 OR "
                         "terminal_id = ?2 OR group_id IN (SELECT group_id FROM group_members "
                         "WHERE user_id = ?1) ORDER BY pool_id",
                         (const gint64[]){user_id, terminal_id}, 2, error);
}

JsonArray *store_desktop_claim(Store *s, const StoreClaim *c, const Actor *actor, GError **error)
{
        const SqlOps *ops = s->db->ops;
        g_autofree char *where =
                c->desktop_id
                        ? g_strdup_printf("t.id = ?1 AND ((t.user_id IS NULL AND t.terminal_id IS "
                                          "NULL) OR t.user_id = ?2 OR t.terminal_id = ?3)%s",
                                          ops->for_update)
                        : g_strdup_printf("t.pool_id = ?1 AND t.state = 'running' AND t.user_id IS "
                                          "NULL AND t.terminal_id IS NULL AND t.dirty = 0 AND "
                                          "t.maintenance = FALSE AND NOT EXISTS (SELECT 1 FROM "
                                          "sessions s WHERE s.desktop_id = t.id) ORDER BY t.id "
                                          "LIMIT 1%s",
                                          ops->for_update_skip_locked);
        const gint64 params[] = {c->desktop_id ? c->desktop_id : c->pool_id, c->user_id,
                                 c->terminal_id};
        JsonObject *desktop = NULL, *session = NULL;
        GError *e = NULL;
        JsonArray *rows;
        gint64 id;

        if (!sqs_tx_begin_rows(s, error))
                return NULL;
        desktop = sqs_row_where(s, resource_by_kind("desktop"), where, params,
                                c->desktop_id ? 3 : 1, &e);
        if (!desktop) { /* none free, or that one is someone else's now */
                sqs_tx_rollback(s);
                if (e)
                        g_propagate_error(error, e);
                return NULL;
        }
        id = json_object_get_int_member(desktop, "id");
        json_object_set_int_member(c->session, "desktop", id);
        /* the desktop locked, the caller there: not looked up again */
        sqs_tx_ref_known(s, "desktop", id);
        sqs_tx_ref_known(s, "user", c->user_id);
        sqs_tx_ref_known(s, "terminal", c->terminal_id);
        if (!(session = sqs_create_tx(s, resource_by_kind("session"), NULL, c->session, actor,
                                      error)) ||
            !sqs_update_held_tx(s, resource_by_kind("desktop"), desktop, c->patch, actor, error)) {
                sqs_tx_rollback(s);
                goto fail;
        }
        if (!sqs_tx_commit(s, error))
                goto fail;
        rows = json_array_new();
        json_array_add_object_element(rows, session);
        json_array_add_object_element(rows, desktop);
        return rows;
fail:
        if (session)
                json_object_unref(session);
        json_object_unref(desktop);
        return NULL;
}

GArray *store_pool_in_session(Store *st, gint64 pool_id, GError **error)
{
        return ids_where(st,
                         "SELECT DISTINCT s.desktop_id FROM sessions s JOIN desktops d "
                         "ON d.id = s.desktop_id WHERE d.pool_id = ?",
                         &pool_id, 1, error);
}

gboolean store_session_timing(Store *s, gint64 session_id, const char *timing, const StoreEvent *ev,
                              GError **error)
{
        g_autofree char *now = util_now_iso();
        SqlStmt *stmt;

        /* one row's update and an event: beside other such transactions */
        if (!sqs_tx_begin_rows(s, error))
                return FALSE;
        if (!(stmt = sqs_prep(s, "UPDATE sessions SET timing = ?, updated_at = ? WHERE id = ?",
                              error)))
                goto fail;
        sql_bind_text(stmt, 1, timing);
        sql_bind_text(stmt, 2, now);
        sql_bind_int(stmt, 3, session_id);
        if (!sqs_step_done(s, stmt, error, "recording a session's timing"))
                goto fail;
        if (sql_changes(s->db) != 1) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND,
                            "there is no session '%" G_GINT64_FORMAT "'", session_id);
                goto fail;
        }
        if (!sqs_event_insert(s, ev->actor, ev->action, ev->kind, ev->id, ev->name, ev->detail,
                              error))
                goto fail;
        return sqs_tx_commit(s, error);
fail:
        sqs_tx_rollback(s);
        return FALSE;
}

/* ---- accounts and tokens ----------------------------------------------------------------- */

gboolean store_user_auth(Store *s, const char *name, UserAuth *out, GError **error)
{
        SqlStmt *stmt = sqs_prep(s,
                                 "SELECT id, name, password_hash, role, enabled, source, "
                                 "groups_checked_at FROM users WHERE name = ?",
                                 error);
        gboolean found = FALSE;
        SqlStep rc;

        if (!stmt)
                return FALSE;
        sql_bind_text(stmt, 1, name);
        if ((rc = sql_step(stmt)) == SQL_ROW) {
                found = TRUE;
                out->id = sql_column_int(stmt, 0);
                out->name = g_strdup(sql_column_text(stmt, 1));
                out->password_hash = g_strdup(sql_column_text(stmt, 2));
                out->role = MAX(role_from_string(sql_column_text(stmt, 3)), 0);
                out->enabled = sql_column_int(stmt, 4);
                out->directory = g_strcmp0(sql_column_text(stmt, 5), "directory") == 0;
                out->groups_checked_at = sql_column_int(stmt, 6);
        }
        sql_reset(stmt);
        if (rc == SQL_FAIL) /* the database, not the user: UNAVAILABLE when it is down */
                return sqs_db_error(s, error, "looking up a user");
        if (!found)
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND, "there is no user '%s'",
                            name);
        return found;
}

gboolean store_user_set_password(Store *s, gint64 user_id, const char *hash, const Actor *actor,
                                 GError **error)
{
        g_autofree char *now = util_now_iso();
        SqlStmt *stmt;

        if (!sqs_tx_begin(s, error))
                return FALSE;
        stmt = sqs_prep(s, "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
                        error);
        if (!stmt)
                goto fail;
        sql_bind_text(stmt, 1, hash);
        sql_bind_text(stmt, 2, now);
        sql_bind_int(stmt, 3, user_id);
        if (!sqs_step_done(s, stmt, error, "changing a password"))
                goto fail;
        /* A new password ends every other login of this user. */
        stmt = sqs_prep(s, "DELETE FROM api_tokens WHERE user_id = ?", error);
        if (!stmt)
                goto fail;
        sql_bind_int(stmt, 1, user_id);
        if (!sqs_step_done(s, stmt, error, "revoking tokens") ||
            !sqs_event_insert(s, actor, "change_password", "user", user_id, actor->name, "", error))
                goto fail;
        return sqs_tx_commit(s, error);
fail:
        sqs_tx_rollback(s);
        return FALSE;
}

gboolean store_token_insert(Store *s, const char *hash, gint64 user_id, gint64 expires_at,
                            const char *address, gboolean enrol_only, const StoreEvent *ev,
                            GError **error)
{
        g_autofree char *now = util_now_iso();
        SqlStmt *stmt;

        /* two inserts, nothing read to decide them: beside other such transactions */
        if (!sqs_tx_begin_rows(s, error))
                return FALSE;
        if (!(stmt = sqs_prep(s,
                              "INSERT INTO api_tokens (hash, user_id, created_at, expires_at, "
                              "address, enrol_only) VALUES (?, ?, ?, ?, ?, ?)",
                              error)))
                goto fail;
        sql_bind_text(stmt, 1, hash);
        sql_bind_int(stmt, 2, user_id);
        sql_bind_text(stmt, 3, now);
        sql_bind_int(stmt, 4, expires_at);
        sql_bind_text(stmt, 5, address ? address : "");
        sql_bind_int(stmt, 6, enrol_only);
        if (!sqs_step_done(s, stmt, error, "storing a token") ||
            (ev && !sqs_event_insert(s, ev->actor, ev->action, ev->kind, ev->id, ev->name,
                                     ev->detail, error)))
                goto fail;
        return sqs_tx_commit(s, error);
fail:
        sqs_tx_rollback(s);
        return FALSE;
}

gboolean store_token_lookup(Store *s, const char *hash, gint64 now, TokenInfo *out, GError **error)
{
        /* one row per group of the user (or one row with none), with the group's role when
         * it gives more than 'user': a group may give its members more than their own role,
         * read in the same statement (plain joins: both engines read them off the indexes) */
        SqlStmt *stmt = sqs_prep(s,
                                 "SELECT u.id, u.name, u.role, t.expires_at, t.enrol_only, g.role "
                                 "FROM api_tokens t "
                                 "JOIN users u ON u.id = t.user_id "
                                 "LEFT JOIN group_members m ON m.user_id = u.id "
                                 "LEFT JOIN groups g ON g.id = m.group_id AND g.role != 'user' "
                                 "WHERE t.hash = ? AND t.expires_at > ? AND u.enabled = TRUE",
                                 error);
        gboolean found = FALSE;
        SqlStep rc;

        if (!stmt)
                return FALSE;
        sql_bind_text(stmt, 1, hash);
        sql_bind_int(stmt, 2, now);
        while ((rc = sql_step(stmt)) == SQL_ROW) {
                int group_role =
                        sql_column_null(stmt, 5) ? -1 : role_from_string(sql_column_text(stmt, 5));
                if (!found) {
                        found = TRUE;
                        out->user_id = sql_column_int(stmt, 0);
                        out->user_name = g_strdup(sql_column_text(stmt, 1));
                        out->role = MAX(role_from_string(sql_column_text(stmt, 2)), 0);
                        out->expires_at = sql_column_int(stmt, 3);
                        out->enrol_only = sql_column_int(stmt, 4);
                }
                if (group_role > (int)out->role)
                        out->role = (Role)group_role;
        }
        sql_reset(stmt);
        if (rc == SQL_FAIL)
                return sqs_db_error(s, error, "looking up a token");
        if (!found) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAUTHORIZED,
                            "the token is unknown, expired or revoked; log in again");
                return FALSE;
        }
        return TRUE;
}

gboolean store_token_delete(Store *s, const char *hash, GError **error)
{
        SqlStmt *stmt =
                sqs_prep(s, "DELETE FROM api_tokens WHERE hash = ? OR expires_at < ?", error);

        if (!stmt)
                return FALSE;
        sql_bind_text(stmt, 1, hash);
        sql_bind_int(stmt, 2, g_get_real_time() / G_USEC_PER_SEC);
        return sqs_step_done(s, stmt, error, "revoking a token");
}
