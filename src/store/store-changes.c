/* Rows written, counted per resource table for the whole process (every SQLite handle's update
 * hook): live views compare two readings (store_change_counts) to know what to fetch again. */
#include "store/store-sqlite-private.h"

#include <string.h>

#define CHANGE_TABLES 32
static gsize change_counts[CHANGE_TABLES];

void sqs_row_changed(void *data, int op, const char *db, const char *table, sqlite3_int64 rowid)
{
        gsize n;
        const Resource *const *all = resources_all(&n);

        for (gsize i = 0; i < n && i < CHANGE_TABLES; i++) {
                if (strcmp(all[i]->table, table) == 0) {
                        g_atomic_pointer_add(&change_counts[i], 1);
                        return;
                }
        }
}

void store_change_counts(gsize *counts, gsize n)
{
        for (gsize i = 0; i < n && i < CHANGE_TABLES; i++)
                counts[i] = (gsize)g_atomic_pointer_get(&change_counts[i]);
}
