/* atriumd store …: work on an installation's database with no daemon running.
 *   atriumd store migrate --from sqlite:PATH --to postgresql://… [--password-file FILE]
 * copies every table (store_copy) and says what it did; PostgreSQL to SQLite works the same. */
#define G_LOG_DOMAIN "atriumd"

#include "daemon/store-tool.h"
#include "store/store.h"
#include "common/error.h"
#include "common/util.h"

#include <stdio.h>
#include <string.h>

/* A store named "sqlite:PATH" or by a PostgreSQL URL; an SQLite source must exist. */
static Store *open_named(const char *name, const char *password, gboolean source, GError **error)
{
        if (g_str_has_prefix(name, "sqlite:")) {
                const char *path = name + strlen("sqlite:");
                if (!*path) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "'%s': name the SQLite file (sqlite:/var/lib/atrium/atrium.db)",
                                    name);
                        return NULL;
                }
                if (source && !g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND,
                                    "there is no SQLite database at %s", path);
                        return NULL;
                }
                return store_open_sqlite(path, error);
        }
        if (g_str_has_prefix(name, "postgresql://") || g_str_has_prefix(name, "postgres://"))
                return store_open_postgresql(name, password, error);
        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                    "'%s' is neither sqlite:PATH nor a postgresql:// URL", name);
        return NULL;
}

static void report(const char *table, gint64 rows, const char *checksum, gpointer data)
{
        gint64 *total = data;

        printf("  %-20s %8" G_GINT64_FORMAT " rows  checksum %s  same on both sides\n", table, rows,
               checksum);
        *total += rows;
}

static int migrate_main(int argc, char **argv)
{
        g_autofree char *from = NULL, *to = NULL, *pwfile = NULL, *password = NULL;
        g_autoptr(GOptionContext) ctx = g_option_context_new("- copy an installation's database");
        g_autoptr(GError) error = NULL;
        g_autoptr(Store) src = NULL;
        g_autoptr(Store) dst = NULL;
        g_autoptr(GPtrArray) tables = schema_tables();
        gint64 total = 0;
        const GOptionEntry entries[] = {
                {"from", 0, 0, G_OPTION_ARG_STRING, &from,
                 "The database to copy: sqlite:PATH or postgresql://USER@HOST:PORT/DB", "DB"},
                {"to", 0, 0, G_OPTION_ARG_STRING, &to,
                 "The new, empty database to fill (an SQLite file is made)", "DB"},
                {"password-file", 0, 0, G_OPTION_ARG_FILENAME, &pwfile,
                 "File holding the PostgreSQL password (first line)", "FILE"},
                {NULL},
        };

        g_option_context_set_summary(
                ctx, "Copies every table of an installation's database into a new one (SQLite to\n"
                     "PostgreSQL, or back), in one transaction, then compares the row counts and\n"
                     "checksums of every table on both sides. Stop the managers first; afterwards\n"
                     "point [store] at the new database.");
        g_option_context_add_main_entries(ctx, entries, NULL);
        if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
                fprintf(stderr, "atriumd store migrate: %s (try --help)\n", error->message);
                return 2;
        }
        if (!from || !to || argc > 1) {
                fprintf(stderr, "atriumd store migrate: give --from DB and --to DB (try --help)\n");
                return 2;
        }
        if (g_str_equal(from, to)) {
                fprintf(stderr, "atriumd store migrate: --from and --to name the same database\n");
                return 2;
        }
        if (pwfile) {
                if (!(password = util_read_first_line(pwfile, &error))) {
                        fprintf(stderr, "atriumd store migrate: %s\n", error->message);
                        return 1;
                }
        }
        if (!(src = open_named(from, password, TRUE, &error)) ||
            !(dst = open_named(to, password, FALSE, &error))) {
                fprintf(stderr, "atriumd store migrate: %s\n", error->message);
                return 1;
        }
        if (password)
                memset(password, 0, strlen(password));
        printf("copying %s (%s) to %s (%s)\n", store_location(src), store_backend(src),
               store_location(dst), store_backend(dst));
        if (!store_copy(src, dst, report, &total, &error)) {
                fprintf(stderr, "atriumd store migrate: %s; nothing was written to %s\n",
                        error->message, store_location(dst));
                return 1;
        }
        printf("copied %u tables, %" G_GINT64_FORMAT " rows, schema version %d: every table's "
               "count and checksum match\n",
               tables->len, total, store_schema_version(dst));
        return 0;
}

int store_tool_main(int argc, char **argv)
{
        if (argc >= 2 && g_str_equal(argv[1], "migrate"))
                return migrate_main(argc - 1, argv + 1);
        fprintf(stderr, "usage: atriumd store migrate --from DB --to DB [--password-file FILE]\n"
                        "  DB: sqlite:PATH or postgresql://USER@HOST:PORT/DATABASE\n");
        return argc >= 2 && (g_str_equal(argv[1], "--help") || g_str_equal(argv[1], "-h")) ? 0 : 2;
}
