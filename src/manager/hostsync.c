/* Host reports followed up: see hostsync.h. */
#define G_LOG_DOMAIN "agents"

#include "manager/hostsync.h"
#include "manager/hostcmd.h"
#include "manager/rows.h"

static void orphan_done(JsonObject *result, const GError *error, gpointer data)
{
        g_autofree char *name = data;

        if (error)
                g_warning("could not remove orphan domain %s: %s", name, error->message);
        else
                g_info("removed orphan domain %s", name);
}

static void remove_orphan(Agents *ag, const LinkEvent *ev)
{
        g_autofree char *detail = g_strdup_printf("domain %s on host %s: its %s was deleted",
                                                  ev->domain, ev->host_name, ev->kind);

        store_event_add(ev->store, ev->actor, "orphan_removed", ev->kind, ev->id, ev->domain,
                        detail, NULL);
        hostcmd_send(&(HostCall){ag, ev->host_id, 120, orphan_done, g_strdup(ev->domain)},
                     hostcmd_at_epoch(hostcmd_remove(ev->domain), ev->epoch), NULL);
}

/* A domain left from an older placement (its host was down, frozen or cut off while the
 * desktop was started elsewhere): destroyed and undefined at its own epoch, never resumed. */
static void remove_stale(Agents *ag, const LinkEvent *ev)
{
        g_autoptr(JsonObject) host =
                row_ref(ev->msg, "host_id") ? row_get(ev->store, "host", row_ref(ev->msg, "host_id"), NULL)
                                            : NULL;
        g_autofree char *detail = g_strdup_printf(
                "domain %s on host %s is at placement epoch %" G_GINT64_FORMAT "; %s %s is now at "
                "epoch %" G_GINT64_FORMAT " on %s: destroyed and undefined here",
                ev->domain, ev->host_name, ev->epoch, ev->kind, row_str(ev->msg, "name"),
                row_int(ev->msg, "epoch"), host ? row_str(host, "name") : "no host");

        g_message("%s", detail);
        store_event_add(ev->store, ev->actor, "stale_domain_removed", ev->kind, ev->id,
                        row_str(ev->msg, "name"), detail, NULL);
        hostcmd_send(&(HostCall){ag, ev->host_id, 120, orphan_done, g_strdup(ev->domain)},
                     hostcmd_at_epoch(hostcmd_remove(ev->domain), ev->epoch), NULL);
}

static void named(JsonObject *result, const GError *error, gpointer data)
{
        g_autofree char *name = data;

        if (error)
                g_warning("desktop %s: atrium-guest could not set its host name: %s", name,
                          error->message);
}

static void name_desktop(Agents *ag, const LinkEvent *ev)
{
        g_autoptr(JsonObject) row = row_get(ev->store, "desktop", ev->id, NULL);
        const char *name = row ? row_str(row, "name") : NULL;

        if (!name || g_ascii_strcasecmp(name, row_str(ev->msg, "hostname")) == 0)
                return;
        hostcmd_send(&(HostCall){ag, ev->host_id, 40, named, g_strdup(name)},
                     hostcmd_guest_request(ev->domain, GUEST_OP_SET_HOSTNAME, name), NULL);
}

void hostsync_on_link(Agents *ag, const LinkEvent *ev, gpointer data)
{
        if (ev->type == LINK_ORPHAN)
                remove_orphan(ag, ev);
        else if (ev->type == LINK_STALE)
                remove_stale(ag, ev);
        else if (ev->type == LINK_GUEST_READY)
                name_desktop(ag, ev);
}
