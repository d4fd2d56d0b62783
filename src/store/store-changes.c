/* Rows written, counted per resource table for the whole process (every SQLite handle's update
 * backend's report, sql_table_changed): live views compare two readings (store_change_counts) to
 * know what to fetch again. */
#include "store/store.h"
#include "store/sql.h"

#include <string.h>

#define CHANGE_TABLES 32
static gsize change_counts[CHANGE_TABLES];

void sql_table_changed(const char *table)
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
