/* Directory users in the store: the local row a directory login makes or refreshes, and
 * its memberships of the groups that name a directory group. One transaction each. */
#include "store/store-private.h"
#include "common/error.h"
#include "common/util.h"

#include <string.h>

/* The names of the groups filled from the directory that USER is in, sorted, joined. */
static char *mapped_groups(Store *s, gint64 user_id)
{
        SqlStmt *st = sqs_prep(s,
                               "SELECT g.name FROM group_members m JOIN groups g "
                               "ON g.id = m.group_id WHERE m.user_id = ? AND "
                               "g.directory_group != '' ORDER BY g.name",
                               NULL);
        GString *out = g_string_new(NULL);

        if (!st)
                return g_string_free(out, FALSE);
        sql_bind_int(st, 1, user_id);
        while (sql_step(st) == SQL_ROW)
                g_string_append_printf(out, "%s%s", out->len ? ", " : "", sql_column_text(st, 0));
        sql_reset(st);
        return g_string_free(out, FALSE);
}

gboolean store_directory_user_sync(Store *s, const DirectorySync *d, gint64 *user_id,
                                   GError **error)
{
        const Actor directory = {.name = "directory", .address = ""};
        g_autofree char *now = util_now_iso(), *before = NULL, *after = NULL;
        SqlStmt *q;
        gint64 id = 0;
        const char *source = NULL;
        g_autofree char *source_copy = NULL;

        if (!sqs_tx_begin(s, error))
                return FALSE;
        if (!(q = sqs_prep(s, "SELECT id, source FROM users WHERE name = ?", error)))
                goto fail;
        sql_bind_text(q, 1, d->name);
        if (sql_step(q) == SQL_ROW) {
                id = sql_column_int(q, 0);
                source_copy = g_strdup(sql_column_text(q, 1));
                source = source_copy;
        }
        sql_reset(q);
        if (id && g_strcmp0(source, "directory") != 0) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "a local account named '%s' exists: the directory user of that name "
                            "cannot log in (rename or delete the local account)",
                            d->name);
                goto fail;
        }
        if (!id) {
                if (!d->create) {
                        sqs_tx_rollback(s);
                        *user_id = 0;
                        return TRUE;
                }
                q = sqs_prep(s,
                             "INSERT INTO users (name, display_name, email, role, enabled, "
                             "password_hash, source, directory_dn, groups_checked_at, "
                             "created_at, updated_at) VALUES (?, ?, ?, 'user', TRUE, NULL, "
                             "'directory', ?, ?, ?, ?) RETURNING id",
                             error);
                if (!q)
                        goto fail;
                sql_bind_text(q, 1, d->name);
                sql_bind_text(q, 2, d->display_name);
                sql_bind_text(q, 3, d->mail);
                sql_bind_text(q, 4, d->dn);
                sql_bind_int(q, 5, d->now);
                sql_bind_text(q, 6, now);
                sql_bind_text(q, 7, now);
                if (!(id = sqs_step_id(s, q, error, "adding a directory user")))
                        goto fail;
                if (!sqs_event_insert(s, &directory, "create", "user", id, d->name,
                                      "first directory login", error))
                        goto fail;
        } else {
                q = sqs_prep(s,
                             "UPDATE users SET display_name = ?, email = ?, directory_dn = ?, "
                             "groups_checked_at = ? WHERE id = ?",
                             error);
                if (!q)
                        goto fail;
                sql_bind_text(q, 1, d->display_name);
                sql_bind_text(q, 2, d->mail);
                sql_bind_text(q, 3, d->dn);
                sql_bind_int(q, 4, d->now);
                sql_bind_int(q, 5, id);
                if (!sqs_step_done(s, q, error, "refreshing a directory user"))
                        goto fail;
        }
        before = mapped_groups(s, id);
        q = sqs_prep(s,
                     "DELETE FROM group_members WHERE user_id = ? AND group_id IN "
                     "(SELECT id FROM groups WHERE directory_group != '')",
                     error);
        if (!q)
                goto fail;
        sql_bind_int(q, 1, id);
        if (!sqs_step_done(s, q, error, "updating directory memberships"))
                goto fail;
        for (gsize i = 0; d->groups && d->groups[i]; i++) {
                q = sqs_prep(s,
                             "INSERT INTO group_members (group_id, user_id) "
                             "SELECT id, ? FROM groups WHERE lower(directory_group) = lower(?) "
                             "ON CONFLICT DO NOTHING",
                             error);
                if (!q)
                        goto fail;
                sql_bind_int(q, 1, id);
                sql_bind_text(q, 2, d->groups[i]);
                if (!sqs_step_done(s, q, error, "updating directory memberships"))
                        goto fail;
        }
        after = mapped_groups(s, id);
        if (g_strcmp0(before, after) != 0) {
                g_autofree char *detail =
                        g_strdup_printf("groups from the directory: %s (were: %s)",
                                        after[0] ? after : "none", before[0] ? before : "none");
                if (!sqs_event_insert(s, &directory, "update", "user", id, d->name, detail, error))
                        goto fail;
        }
        if (d->revoke) {
                q = sqs_prep(s, "DELETE FROM api_tokens WHERE user_id = ?", error);
                if (!q)
                        goto fail;
                sql_bind_int(q, 1, id);
                if (!sqs_step_done(s, q, error, "revoking tokens") ||
                    !sqs_event_insert(s, &directory, "logout", "user", id, d->name,
                                      "no longer in the directory", error))
                        goto fail;
        }
        if (!sqs_tx_commit(s, error))
                return FALSE;
        *user_id = id;
        return TRUE;
fail:
        sqs_tx_rollback(s);
        return FALSE;
}

char **store_directory_users_due(Store *s, gint64 checked_before, gint64 now)
{
        SqlStmt *q = sqs_prep(s,
                              "SELECT u.name FROM users u WHERE u.source = 'directory' AND "
                              "u.enabled = TRUE AND u.groups_checked_at < ? AND EXISTS "
                              "(SELECT 1 FROM api_tokens t WHERE t.user_id = u.id AND "
                              "t.expires_at > ?) ORDER BY u.groups_checked_at LIMIT 1000",
                              NULL);
        GPtrArray *out = g_ptr_array_new();

        if (q) {
                sql_bind_int(q, 1, checked_before);
                sql_bind_int(q, 2, now);
                while (sql_step(q) == SQL_ROW)
                        g_ptr_array_add(out, g_strdup(sql_column_text(q, 0)));
                sql_reset(q);
        }
        g_ptr_array_add(out, NULL);
        return (char **)g_ptr_array_free(out, FALSE);
}

void store_directory_stale(Store *s)
{
        SqlStmt *q = sqs_prep(s,
                              "UPDATE users SET groups_checked_at = 0 "
                              "WHERE source = 'directory'",
                              NULL);

        if (q)
                sqs_step_done(s, q, NULL, "marking directory groups stale");
}

/* The highest of FROM and the roles (text, first column) of Q's rows; Q is reset. */
static Role highest_role(SqlStmt *q, Role from)
{
        Role role = from;

        while (sql_step(q) == SQL_ROW) {
                int r = role_from_string(sql_column_text(q, 0));
                if (r > (int)role)
                        role = (Role)r;
        }
        sql_reset(q);
        return role;
}

Role sqs_group_role(Store *s, gint64 user_id, Role own)
{
        SqlStmt *q = sqs_prep(s,
                              "SELECT g.role FROM group_members m JOIN groups g "
                              "ON g.id = m.group_id WHERE m.user_id = ? AND g.role != 'user'",
                              NULL);
        if (!q)
                return own;
        sql_bind_int(q, 1, user_id);
        return highest_role(q, own);
}

Role store_user_role(Store *st, gint64 user_id, Role own)
{
        return sqs_group_role(st, user_id, own);
}

Role store_pool_role_of(Store *s, gint64 user_id, const char *kind, const char *id_or_name)
{
        /* the pool of the object (?2 its id, ?3 its name), the user ?1 */
        const char *pool =
                g_str_equal(kind, "pool")      ? "SELECT id FROM pools WHERE id = ?2 OR name = ?3"
                : g_str_equal(kind, "desktop") ? "SELECT pool_id FROM desktops WHERE id = ?2 OR "
                                                 "name = ?3"
                : g_str_equal(kind, "session") ? "SELECT d.pool_id FROM sessions x JOIN desktops d "
                                                 "ON d.id = x.desktop_id WHERE x.id = ?2"
                : g_str_equal(kind, "entitlement")
                        ? "SELECT pool_id FROM entitlements WHERE id = ?2"
                        : NULL;
        g_autofree char *sql = NULL;
        SqlStmt *q;
        gint64 by_id = 0;

        if (!pool)
                return ROLE_NONE;
        /* one statement: the pool and the permissions on it */
        sql = g_strdup_printf("SELECT role FROM permissions WHERE pool_id = (%s LIMIT 1) AND "
                              "(user_id = ?1 OR group_id IN (SELECT group_id FROM group_members "
                              "WHERE user_id = ?1))",
                              pool);
        if (!(q = sqs_prep(s, sql, NULL)))
                return ROLE_NONE;
        /* an id is bound as a number, a name as text: both engines compare them so */
        util_parse_id(id_or_name, &by_id);
        sql_bind_int(q, 1, user_id);
        sql_bind_int(q, 2, by_id);
        if (strstr(pool, "?3"))
                sql_bind_text(q, 3, id_or_name);
        return highest_role(q, ROLE_NONE);
}

JsonArray *store_pool_permissions(Store *s, gint64 user_id)
{
        SqlStmt *q = sqs_prep(s,
                              "SELECT p.name, m.role FROM permissions m JOIN pools p "
                              "ON p.id = m.pool_id WHERE m.user_id = ?1 OR m.group_id IN "
                              "(SELECT group_id FROM group_members WHERE user_id = ?1) "
                              "ORDER BY p.name",
                              NULL);
        JsonArray *out = json_array_new();
        JsonObject *last = NULL;

        if (!q)
                return out;
        sql_bind_int(q, 1, user_id);
        while (sql_step(q) == SQL_ROW) {
                const char *pool = sql_column_text(q, 0);
                const char *role = sql_column_text(q, 1);
                /* One entry per pool, with the highest role (rows come sorted by pool). */
                if (last && g_strcmp0(json_object_get_string_member(last, "pool"), pool) == 0) {
                        if (role_from_string(role) >
                            role_from_string(json_object_get_string_member(last, "role")))
                                json_object_set_string_member(last, "role", role);
                        continue;
                }
                last = json_object_new();
                json_object_set_string_member(last, "pool", pool);
                json_object_set_string_member(last, "role", role);
                json_array_add_object_element(out, last);
        }
        sql_reset(q);
        return out;
}
