/* Several managers on one database: the leader's lease and the managers' roll call (schema
 * 13). The lease is one row, judged by the database's clock only (SqlOps.now_ms): a manager
 * holds it while lease_until is ahead of that clock, renews it each second, and whoever finds
 * it lapsed takes it with the next term. Each tick runs in the writers' transaction, so two
 * managers never both take it. Whether a manager may write at all is sql-pg.c's fence. */
#define G_LOG_DOMAIN "store"

#include "store/store.h"
#include "store/store-private.h"
#include "common/error.h"

#include <string.h>

void lease_clear(Lease *l)
{
        g_clear_pointer(&l->holder, g_free);
        g_clear_pointer(&l->url, g_free);
}

static gboolean lease_tx(Store *s, const char *me, const char *url, const char *digest,
                         gint64 my_term, gint64 ttl_ms, Lease *out, GError **error)
{
        const char *now = s->db->ops->now_ms;
        g_autofree char *read = g_strdup_printf(
                "SELECT holder, url, term, lease_until - (%s), %s FROM leader WHERE id = 1", now,
                now);
        g_autofree char *renew = g_strdup_printf(
                "UPDATE leader SET lease_until = (%s) + ? WHERE id = 1 AND holder = ? AND term = ?",
                now);
        g_autofree char *take = g_strdup_printf(
                "UPDATE leader SET holder = ?, url = ?, term = term + 1, lease_until = (%s) + ? "
                "WHERE id = 1 RETURNING term",
                now);
        SqlStmt *q = sqs_prep(s, read, error);
        gint64 left, clock;
        g_autofree char *holder = NULL;

        if (!q)
                return FALSE;
        if (sql_step(q) != SQL_ROW) {
                sql_reset(q);
                return sqs_db_error(s, error, "reading the leader's lease");
        }
        holder = g_strdup(sql_column_text(q, 0));
        out->url = g_strdup(sql_column_text(q, 1));
        out->term = sql_column_int(q, 2);
        left = sql_column_int(q, 3);
        clock = sql_column_int(q, 4);
        sql_reset(q);
        if (my_term && g_str_equal(holder, me) && out->term == my_term && left > 0) {
                if (!(q = sqs_prep(s, renew, error)))
                        return FALSE;
                sql_bind_int(q, 1, ttl_ms);
                sql_bind_text(q, 2, me);
                sql_bind_int(q, 3, my_term);
                if (!sqs_step_done(s, q, error, "renewing the leader's lease"))
                        return FALSE;
                out->leader = TRUE;
                out->left_ms = ttl_ms;
        } else if (left <= 0) {
                if (!(q = sqs_prep(s, take, error)))
                        return FALSE;
                sql_bind_text(q, 1, me);
                sql_bind_text(q, 2, url);
                sql_bind_int(q, 3, ttl_ms);
                if (!(out->term = sqs_step_id(s, q, error, "taking the leader's lease")))
                        return FALSE;
                g_free(out->url);
                out->url = g_strdup(url);
                g_free(holder);
                holder = g_strdup(me);
                out->leader = out->took_over = TRUE;
                out->left_ms = ttl_ms;
        } else {
                out->left_ms = left;
        }
        out->holder = g_steal_pointer(&holder);
        q = sqs_prep(s,
                     "INSERT INTO managers (name, url, config_digest, started_at, seen_at) "
                     "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET url = excluded.url, "
                     "config_digest = excluded.config_digest, seen_at = excluded.seen_at",
                     error);
        if (!q)
                return FALSE;
        sql_bind_text(q, 1, me);
        sql_bind_text(q, 2, url);
        sql_bind_text(q, 3, digest);
        sql_bind_int(q, 4, clock);
        sql_bind_int(q, 5, clock);
        return sqs_step_done(s, q, error, "recording this manager");
}

gboolean store_lease_tick(Store *s, const char *me, const char *url, const char *digest,
                          gint64 my_term, gint64 ttl_ms, Lease *out, GError **error)
{
        *out = (Lease){0};
        if (!sqs_tx_begin(s, error))
                return FALSE;
        if (!lease_tx(s, me, url, digest, my_term, ttl_ms, out, error)) {
                sqs_tx_rollback(s);
                lease_clear(out);
                return FALSE;
        }
        if (!sqs_tx_commit(s, error)) {
                lease_clear(out);
                return FALSE;
        }
        return TRUE;
}

void store_lease_release(Store *s, const char *me, gint64 term)
{
        SqlStmt *q = sqs_prep(s,
                              "UPDATE leader SET lease_until = 0 WHERE id = 1 AND holder = ? AND "
                              "term = ?",
                              NULL);

        if (!q)
                return;
        sql_bind_text(q, 1, me);
        sql_bind_int(q, 2, term);
        sqs_step_done(s, q, NULL, "giving up the leader's lease");
}

char *store_manager_digest(Store *s, const char *name)
{
        return sqs_text_of(s, "SELECT config_digest FROM managers WHERE name = ?", name);
}

JsonObject *store_cluster(Store *s, GError **error)
{
        const char *now = s->db->ops->now_ms;
        g_autofree char *lsql = g_strdup_printf(
                "SELECT holder, url, term, lease_until - (%s) FROM leader WHERE id = 1", now);
        g_autofree char *msql = g_strdup_printf(
                "SELECT name, url, started_at, (%s) - seen_at FROM managers ORDER BY name", now);
        g_autoptr(JsonObject) out = json_object_new();
        JsonArray *managers = json_array_new();
        SqlStmt *q;
        SqlStep rc;

        json_object_set_array_member(out, "managers", managers);
        if (!(q = sqs_prep(s, lsql, error)))
                return NULL;
        if (sql_step(q) == SQL_ROW) {
                gint64 left = sql_column_int(q, 3);
                json_object_set_string_member(out, "leader", left > 0 ? sql_column_text(q, 0) : "");
                json_object_set_string_member(out, "leader_url",
                                              left > 0 ? sql_column_text(q, 1) : "");
                json_object_set_int_member(out, "term", sql_column_int(q, 2));
                json_object_set_int_member(out, "lease_ms_left", MAX(left, 0));
        }
        sql_reset(q);
        if (!(q = sqs_prep(s, msql, error)))
                return NULL;
        while ((rc = sql_step(q)) == SQL_ROW) {
                JsonObject *m = json_object_new();
                json_object_set_string_member(m, "name", sql_column_text(q, 0));
                json_object_set_string_member(m, "url", sql_column_text(q, 1));
                json_object_set_int_member(m, "started_at", sql_column_int(q, 2) / 1000);
                json_object_set_int_member(m, "seen_ms_ago", sql_column_int(q, 3));
                json_array_add_object_element(managers, m);
        }
        sql_reset(q);
        if (rc != SQL_DONE) {
                sqs_db_error(s, error, "listing the managers");
                return NULL;
        }
        return g_steal_pointer(&out);
}
