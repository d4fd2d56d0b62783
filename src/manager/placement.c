/* Where desktops may go: see placement.h. */
#include "manager/placement.h"
#include "manager/agentlink.h"
#include "manager/rows.h"
#include "common/jsonutil.h"

static gboolean host_up(JsonObject *h)
{
        return row_host_state(h) == HOST_UP;
}

/* The host's last report about path: 1 reachable, 0 not, -1 it did not say. */
static int host_says(JsonObject *host, const char *path)
{
        g_autoptr(JsonNode) v = json_from_string(row_str(host, "volumes"), NULL);
        JsonArray *a;

        if (!v || !JSON_NODE_HOLDS_ARRAY(v))
                return -1;
        a = json_node_get_array(v);
        for (guint i = 0; i < json_array_get_length(a); i++) {
                JsonNode *e = json_array_get_element(a, i);
                JsonObject *o = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
                if (o && g_str_equal(row_str(o, "path"), path))
                        return json_object_get_boolean_member_with_default(o, "reachable", TRUE);
        }
        return -1;
}

/* A host's last report says it cannot reach path. */
static gboolean host_unreachable(JsonObject *host, const char *path)
{
        return host_says(host, path) == 0;
}

gboolean placement_host_says_unreachable(JsonObject *host, const char *path)
{
        return host_unreachable(host, path);
}

gboolean placement_host_usable(Manager *mgr, JsonObject *host, const char *path, const char *hint)
{
        return host_up(host) && !row_bool(host, "maintenance") &&
               agentlink_linked(mgr->agents, row_int(host, "id")) &&
               scheduler_in_hint(hint, row_str(host, "name")) && !host_unreachable(host, path);
}

gboolean placement_volume_reachable(Store *st, const char *path, const char *hosts_hint)
{
        g_autoptr(JsonArray) hosts = store_list_all(st, resource_by_kind("host"), NULL, NULL);

        for (guint i = 0; hosts && i < json_array_get_length(hosts); i++) {
                JsonObject *h = json_array_get_object_element(hosts, i);
                if (host_up(h) && !row_bool(h, "maintenance") &&
                    scheduler_in_hint(hosts_hint, row_str(h, "name")) && !host_unreachable(h, path))
                        return TRUE;
        }
        return FALSE;
}

void placement_sched_host(Manager *mgr, JsonObject *h, const char *path, SchedHost *out)
{
        gint64 id = row_int(h, "id");

        *out = (SchedHost){
                .id = id,
                .name = row_str(h, "name"),
                .up = host_up(h) || row_host_state(h) == HOST_MAINTENANCE,
                .maintenance = row_bool(h, "maintenance"),
                .linked = agentlink_linked(mgr->agents, id),
                .reaches = !path || !host_unreachable(h, path),
                .ram_mb = row_int(h, "ram_mb"),
                .committed_mb = row_int(h, "ram_committed_mb"),
                .running = (guint)row_int(h, "running"),
        };
        if (out->ram_mb == 0) /* a host that has not reported its memory yet */
                out->ram_mb = G_MAXINT32;
}

void placement_sched_request(Manager *mgr, gint64 need_mb, const char *hint, SchedRequest *out)
{
        *out = (SchedRequest){
                .need_mb = need_mb,
                .overcommit = config_get_int(mgr->config, "manager", "overcommit_percent") / 100.0,
                .hint = hint,
        };
        scheduler_policy_from_string(config_get_string(mgr->config, "manager", "placement"),
                                     &out->policy);
}
