#include "cli/cli.h"
#include "common/jsonutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void out_json(JsonNode *node)
{
        g_autofree char *s = json_node_to_text(node, TRUE);
        printf("%s\n", s);
}

static char *cell(JsonNode *n)
{
        if (!n || JSON_NODE_HOLDS_NULL(n))
                return g_strdup("-");
        if (JSON_NODE_HOLDS_VALUE(n)) {
                switch (json_node_get_value_type(n)) {
                case G_TYPE_INT64:
                        return g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(n));
                case G_TYPE_BOOLEAN:
                        return g_strdup(json_node_get_boolean(n) ? "yes" : "no");
                case G_TYPE_STRING: {
                        const char *s = json_node_get_string(n);
                        return g_strdup(s[0] ? s : "-");
                }
                default:
                        break;
                }
        }
        return json_node_to_text(n, FALSE);
}

static void print_row(GPtrArray *cells, const guint *widths)
{
        for (guint i = 0; i < cells->len; i++) {
                const char *s = cells->pdata[i];
                int pad = (int)widths[i] - (int)g_utf8_strlen(s, -1);
                printf("%s%*s%s", s, i + 1 < cells->len ? MAX(pad, 0) : 0, "",
                       i + 1 < cells->len ? "  " : "\n");
        }
}

void out_table(const Resource *res, JsonArray *items)
{
        g_autoptr(GPtrArray) cols = g_ptr_array_new();
        g_autoptr(GPtrArray) rows =
                g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
        g_autofree guint *widths = NULL;
        guint n = json_array_get_length(items);

        g_ptr_array_add(cols, "id");
        for (gsize i = 0; i < res->n_fields; i++)
                if (res->fields[i].flags & F_LIST)
                        g_ptr_array_add(cols, (gpointer)res->fields[i].name);
        widths = g_new0(guint, cols->len);
        {
                GPtrArray *head = g_ptr_array_new_with_free_func(g_free);
                for (guint c = 0; c < cols->len; c++)
                        g_ptr_array_add(head, g_ascii_strup(cols->pdata[c], -1));
                g_ptr_array_add(rows, head);
        }
        for (guint r = 0; r < n; r++) {
                JsonObject *o = json_array_get_object_element(items, r);
                GPtrArray *row = g_ptr_array_new_with_free_func(g_free);
                for (guint c = 0; c < cols->len; c++)
                        g_ptr_array_add(row, cell(json_object_get_member(o, cols->pdata[c])));
                g_ptr_array_add(rows, row);
        }
        for (guint r = 0; r < rows->len; r++) {
                GPtrArray *row = rows->pdata[r];
                for (guint c = 0; c < row->len; c++)
                        widths[c] = MAX(widths[c], (guint)g_utf8_strlen(row->pdata[c], -1));
        }
        for (guint r = 0; r < rows->len; r++)
                print_row(rows->pdata[r], widths);
        if (n == 0)
                printf("(no %ss)\n", res->kind);
}

void out_object(JsonObject *o)
{
        g_autoptr(GList) members = json_object_get_members(o);
        guint w = 0;

        for (GList *l = members; l; l = l->next)
                w = MAX(w, strlen(l->data));
        for (GList *l = members; l; l = l->next) {
                g_autofree char *v = cell(json_object_get_member(o, l->data));
                printf("%-*s  %s\n", (int)w + 1, (char *)l->data, v);
        }
}

int out_error(const GError *error)
{
        fprintf(stderr, "atrium: %s\n", error->message);
        return EXIT_ERROR;
}

int out_usage(const char *fmt, ...)
{
        va_list ap;
        g_autofree char *s = NULL;

        va_start(ap, fmt);
        s = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        fprintf(stderr, "atrium: %s\n", s);
        return EXIT_USAGE;
}
