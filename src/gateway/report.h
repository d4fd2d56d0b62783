/* Tunnel reports from a gateway to the manager. */
#pragma once
#include "gateway/gateway.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

/* {"kind", "via", "peer", "desktop", "user", "reason", "bytes_in", "bytes_out",
 * "duration_ms"}: what POST /api/v1/gateway/events takes, one element of its "events". */
JsonObject *gateway_event_json(const GatewayEvent *ev);

/* A gateway in its own process sends its reports to the manager in batches (at most 20 ms
 * late), retrying every 2 s while the manager cannot be reached (the oldest are dropped past
 * 20,000 waiting), and polls every 2 s for the manager's orders (close a desktop's tunnels,
 * a desktop's console moved), which it hands to the closer and the mover. fingerprint pins the manager's certificate; key is the secret
 * of the manager's state_dir/gateway.key. Main-context only. */
typedef struct _Reporter Reporter;
typedef void (*ReporterCloser)(gint64 desktop, gpointer data);

/* Several managers (urls, NULL-terminated): the reports go to the leader. A standby's 307
 * names it (X-Atrium-Leader), a standby's 503 says none leads yet (tried again in a second),
 * a manager that cannot be reached gives way to the next URL. */
Reporter *reporter_new(const char *const *urls, const char *fingerprint, const char *key,
                       const char *name);
/* The manager the reports go to now (the leader, once one answered): where the API relay
 * dials. */
const char *reporter_manager(Reporter *r);
void reporter_add(Reporter *r, const GatewayEvent *ev);
void reporter_set_closer(Reporter *r, ReporterCloser fn, gpointer data);
typedef void (*ReporterMover)(gint64 desktop, const char *proto, const char *host, guint16 port,
                              gpointer data);
void reporter_set_mover(Reporter *r, ReporterMover fn, gpointer data);
void reporter_free(Reporter *r);
