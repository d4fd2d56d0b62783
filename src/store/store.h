/* State store: the object families as plain functions, over the SQL seam (store/sql.h) that a
 * database backend implements: SQLite today, PostgreSQL next. All generic object operations are
 * driven by proto/model.h Resources. Every change, with its audit event, is one transaction: it is
 * either all there or not. */
#pragma once
#include "proto/model.h"

typedef struct _Store Store;

/* Who is doing a change, for the audit trail. */
typedef struct {
        const char *name;    /* user name, or "system" */
        gint64 user_id;      /* 0 for system */
        const char *address; /* client address, or "" */
} Actor;

typedef struct {
        GHashTable *filters; /* field name -> text value; "name" matches a substring */
        gint64 owner_id;     /* > 0: only rows whose owner_field is this user */
        gint64 after_id;     /* cursor: rows with a greater id (newest_first: a smaller one) */
        guint limit;
        gboolean newest_first; /* highest ids first (events: the latest) */
} ListQuery;

/* Rows written by any handle of this process, counted per resource table (index as in
 * resources_all()): live views compare two readings to know what to fetch again. */
void store_change_counts(gsize *counts, gsize n);

/* A directory login or refresh, written by directory_user_sync. */
typedef struct {
        const char *name, *display_name, *mail, *dn;
        const char *const *groups; /* the directory groups' names, nested ones included */
        gint64 now;
        gboolean create; /* make the local row when there is none (a login; not a refresh) */
        gboolean revoke; /* the user left the directory: its tokens go */
} DirectorySync;

typedef struct {
        gint64 user_id;
        char *user_name;
        Role role;
        gint64 expires_at;
        gboolean enrol_only; /* may only enrol in TOTP (required, not yet set up) */
} TokenInfo;

typedef struct {
        char *secret; /* base32; "" when none */
        gboolean enabled, required;
        gint64 last_step;
} TotpState;
void totp_state_clear(TotpState *t);
void token_info_clear(TokenInfo *t);

typedef struct {
        gint64 id;
        char *name;
        char *password_hash;
        Role role;
        gboolean enabled;
        gboolean directory;       /* a directory user's row */
        gint64 groups_checked_at; /* ... when its groups were last looked up */
} UserAuth;
void user_auth_clear(UserAuth *u);

/* One change of a batch: a create (id_or_name NULL) or an update. */
typedef struct {
        const Resource *res;
        const char *id_or_name;
        JsonObject *values;
} StoreChange;

/* An audit event written with a change, in its transaction. */
typedef struct {
        const Actor *actor;
        const char *action, *kind;
        gint64 id;
        const char *name, *detail;
} StoreEvent;

void store_close(Store *st);
int store_schema_version(Store *st);

JsonObject *store_create(Store *st, const Resource *res, JsonObject *values, const Actor *actor,
                         GError **error);
JsonObject *store_get(Store *st, const Resource *res, const char *id_or_name, gint64 owner_id,
                      GError **error);
/* The same by id, for a caller that has one (no id printed and parsed again). */
JsonObject *store_get_id(Store *st, const Resource *res, gint64 id, gint64 owner_id,
                         GError **error);
/* A page of objects as the text of a JSON array, appended to out. */
gboolean store_list_json(Store *st, const Resource *res, const ListQuery *q, GString *out,
                         gint64 *next_after, GError **error);
JsonObject *store_update(Store *st, const Resource *res, const char *id_or_name, JsonObject *patch,
                         const Actor *actor, GError **error);
JsonObject *store_update_id(Store *st, const Resource *res, gint64 id, JsonObject *patch,
                            const Actor *actor, GError **error);
/* A new placement epoch for an object (a kind with an "epoch" field) about to be started on
 * a host before it is recorded there (a guest's host is recorded when it reports running,
 * with this epoch); 0 with an error. */
gint64 store_take_epoch(Store *st, const Resource *res, gint64 id, GError **error);
/* Live migration of an object (a kind with "migrating_to"): begun only while it is placed on
 * from_host at epoch and no other migration of it runs; it then records the destination and a
 * new placement epoch, returned (0 with ATRIUM_ERROR_CONFLICT otherwise). */
gint64 store_migration_begin(Store *st, const Resource *res, gint64 id, gint64 from_host,
                             gint64 epoch, gint64 to_host, GError **error);
/* Its end, for the migration at new_epoch only: switched, the object is placed on the
 * destination at that epoch; else it stays where it was. Either way no migration is recorded
 * any more. FALSE (no error) when that migration was not the one recorded. */
gboolean store_migration_end(Store *st, const Resource *res, gint64 id, gint64 new_epoch,
                             gboolean switched, GError **error);
gboolean store_delete(Store *st, const Resource *res, const char *id_or_name, const Actor *actor,
                      GError **error);
gboolean store_delete_id(Store *st, const Resource *res, gint64 id, const Actor *actor,
                         GError **error);

gboolean store_member_add(Store *st, const char *group, const char *user, const Actor *actor,
                          GError **error);
gboolean store_member_remove(Store *st, const char *group, const char *user, const Actor *actor,
                             GError **error);
JsonArray *store_members(Store *st, const char *group, GError **error);
/* The ids of the pools a user (when not 0) is entitled to, directly or through a group, and
 * those a terminal (when not 0) is entitled to, in order (one indexed query). */
GArray *store_entitled_pools(Store *st, gint64 user_id, gint64 terminal_id, GError **error);
/* The ids of a pool's desktops that have a session (one indexed query). */
GArray *store_pool_in_session(Store *st, gint64 pool_id, GError **error);
/* A desktop given to a caller (a user or a terminal) and a session made on it: the broker's
 * assignment. */
typedef struct {
        gint64 pool_id;              /* with desktop_id 0 */
        gint64 desktop_id;           /* 0: the pool's first free desktop */
        gint64 user_id, terminal_id; /* the caller: one of them, the other 0 */
        JsonObject *session;         /* the new session's values (its desktop is set here) */
        JsonObject *patch;           /* the desktop's change */
} StoreClaim;
/* One transaction that locks the desktop it decides on, so that claims run beside each other
 * on PostgreSQL (sql.h, begin_rows): desktop_id, if it is still free or the caller's; or the
 * pool's first started, clean, unassigned desktop with no session (lowest id) that no other
 * claim holds. The session made on it and the patch applied, with their events, as in
 * store_change_batch: [the session, the desktop as it was before]; NULL without an error when
 * no desktop qualified. */
JsonArray *store_desktop_claim(Store *st, const StoreClaim *claim, const Actor *actor,
                               GError **error);

gboolean store_user_auth(Store *st, const char *name, UserAuth *out, GError **error);
gboolean store_user_set_password(Store *st, gint64 user_id, const char *hash, const Actor *actor,
                                 GError **error);
/* A token (its hash) stored, restricted to TOTP enrolment or not, with the event EV (when not
 * NULL) in the same transaction. */
gboolean store_token_insert(Store *st, const char *hash, gint64 user_id, gint64 expires_at,
                            const char *address, gboolean enrol_only, const StoreEvent *ev,
                            GError **error);
gboolean store_token_lookup(Store *st, const char *hash, gint64 now, TokenInfo *out,
                            GError **error);
gboolean store_token_delete(Store *st, const char *hash, GError **error);
gboolean store_event_add(Store *st, const Actor *actor, const char *action, const char *kind,
                         gint64 id, const char *name, const char *detail, GError **error);
/* A session's timing (JSON text) and the event EV about it, in one transaction of two
 * statements: FALSE and neither when the session is gone or the write failed. */
gboolean store_session_timing(Store *st, gint64 session_id, const char *timing,
                              const StoreEvent *ev, GError **error);
gint64 store_count(Store *st, const Resource *res);
/* Another handle on the same state, for one worker thread: no migrations, and it
 * refuses a schema other than this binary's. */
Store *store_open_peer(Store *st, GError **error);
/* Where the state is, to tell readers of different stores apart. */
const char *store_location(Store *st);

/* Hosts: a join token (its hash) is issued; an agent spends it once to create its host
 * with a credential (its hash), by which its link is authenticated afterwards. */
gboolean store_join_token_insert(Store *st, const char *hash, gint64 expires_at, const Actor *actor,
                                 gint64 *id, GError **error);
JsonObject *store_host_join(Store *st, const char *token_hash, gint64 now, JsonObject *facts,
                            const char *credential_hash, const Actor *actor, GError **error);
gint64 store_host_by_credential(Store *st, const char *credential_hash, GError **error);
/* A host's figures from its heartbeat (memory, volumes, last_seen …): its one row updated,
 * no event, nothing decided on other rows, so written beside the broker's claims (sql.h,
 * begin_rows). The row, or NULL with an error. */
JsonObject *store_host_figures(Store *st, gint64 host_id, JsonObject *figures, GError **error);
/* Several creates and updates in one transaction (a later one may name, by name, an
 * object an earlier one made): the changed rows, or NULL and nothing changed. */
JsonArray *store_change_batch(Store *st, const StoreChange *changes, gsize n, const Actor *actor,
                              GError **error);
/* A directory user's local row and its memberships of the groups naming directory
 * groups: made or refreshed, with events (actor "directory"). *user_id 0: no row (a
 * refresh of a user never seen). A local account of that name: CONFLICT. */
gboolean store_directory_user_sync(Store *st, const DirectorySync *d, gint64 *user_id,
                                   GError **error);
/* Directory users holding a live token whose groups were checked before the time. */
char **store_directory_users_due(Store *st, gint64 checked_before, gint64 now);
/* The role in effect: OWN, or more from the user's groups. */
Role store_user_role(Store *st, gint64 user_id, Role own);
/* The user's role from permissions (its own or its groups') on the pool of a pool, desktop,
 * session or entitlement (KIND, by id or name); NONE when it has none, or there is no such
 * object. */
Role store_pool_role_of(Store *st, gint64 user_id, const char *kind, const char *id_or_name);
/* The pools the user has a permission on, [{pool, role}] (its own and its groups'). */
JsonArray *store_pool_permissions(Store *st, gint64 user_id);
/* TOTP: the user's state; a pending secret; a code's step used; turned on (with the
 * recovery codes' hashes, the enrolling token upgraded); off; a recovery code used
 * (TRUE when it was there); a token restricted to enrolment. */
gboolean store_totp_get(Store *st, gint64 user_id, TotpState *out, GError **error);
gboolean store_totp_pending(Store *st, const Actor *a, gint64 user_id, const char *secret,
                            GError **error);
gboolean store_totp_used(Store *st, gint64 user_id, gint64 step, GError **error);
gboolean store_totp_enable(Store *st, const Actor *a, gint64 user_id, gint64 step,
                           const char *const *recovery_hashes, const char *token_hash,
                           GError **error);
gboolean store_totp_disable(Store *st, const Actor *a, gint64 user_id, const char *why,
                            GError **error);
gboolean store_recovery_use(Store *st, gint64 user_id, const char *hash);
/* Every directory user's groups to be looked up again (a group's mapping changed). */
void store_directory_stale(Store *st);
/* A stored setting ("installation": 8 hex digits made at creation), or NULL. */
char *store_setting(Store *st, const char *key);

/* Open a backend and bring its schema up to date: SQLite, the file at path (made when
 * missing); PostgreSQL, the database a libpq connection string or URL names (password: NULL,
 * or the one to use; never in the URL). */
Store *store_open_sqlite(const char *path, GError **error);
Store *store_open_postgresql(const char *url, const char *password, GError **error);
/* "sqlite" or "postgresql". */
const char *store_backend(Store *st);

/* Several managers on one database (store-cluster.c). A tick renews this manager's lease when
 * it holds it at my_term, takes it at the next term when it has lapsed, and otherwise says who
 * holds it; either way it records this manager (url, digest: what its configuration must
 * agree on) in the roll call. */
typedef struct {
        gboolean leader;    /* this manager holds the lease now */
        gboolean took_over; /* ... taken at this tick: term is new */
        gint64 term;
        char *holder, *url; /* the holder's name and API URL */
        gint64 left_ms;     /* until the lease lapses */
} Lease;
void lease_clear(Lease *l);
gboolean store_lease_tick(Store *st, const char *me, const char *url, const char *digest,
                          gint64 my_term, gint64 ttl_ms, Lease *out, GError **error);
/* A leader stopping lets the lease lapse now (a standby takes over at its next tick). */
void store_lease_release(Store *st, const char *me, gint64 term);
/* The digest a manager recorded (NULL: none). */
char *store_manager_digest(Store *st, const char *name);
/* {"leader", "leader_url", "term", "lease_ms_left", "managers": [{name, url, started_at,
 * seen_ms_ago}]} */
JsonObject *store_cluster(Store *st, GError **error);
/* The fence (PostgreSQL): from now on this process writes only while `holder` holds the lease
 * at `term` (checked in every write's transaction); term 0: it writes nothing (a standby).
 * The calling thread itself is left out of it (the lease's own ticks). */
void store_fence(const char *holder, gint64 term);
void store_fence_exempt_thread(void);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Store, store_close)

/* Newest schema version this binary knows, and its migrations (schema.c). */
int schema_latest(void);
const char *schema_migration(int version); /* SQL taking version-1 to version */
/* The schema's tables in the order they were made (g_ptr_array_unref). */
GPtrArray *schema_tables(void);
/* FN called with each match of the regular expression PATTERN in the migrations, in order. */
typedef void (*SchemaMatch)(GMatchInfo *m, gpointer data);
void schema_scan(const char *pattern, SchemaMatch fn, gpointer data);

/* Every row of every table of FROM copied into TO (the same schema, no rows but the settings
 * its migrations made: those are replaced), in one transaction on each, then counted and
 * checksummed on both sides. report (may be NULL) is told of each table. Ids are kept; a
 * reference to a row copied later is set in a second pass. */
typedef void (*StoreCopyReport)(const char *table, gint64 rows, const char *checksum,
                                gpointer data);
gboolean store_copy(Store *from, Store *to, StoreCopyReport report, gpointer data,
                    GError **error);

/* The same page as a JsonArray. */
JsonArray *store_list(Store *st, const Resource *res, const ListQuery *q, gint64 *next_after,
                      GError **error);
/* Every object (matching filters, may be NULL), all pages: for the manager's own work. */
JsonArray *store_list_all(Store *st, const Resource *res, GHashTable *filters, GError **error);
/* With a NULL actor no audit event is written (heartbeat figures, reported states). */
