/* Directory login with libldap: see directory.h. The order of a login: connect (each URL in
 * turn, StartTLS when asked) and bind as the service account; find the user (exactly one
 * entry); refuse a locked one; resolve its groups (still as the service account); bind as the
 * user last, which proves the password. The connection is dropped after each call: logins are
 * rare next to the rest of the traffic, and the group cache spares most refreshes. */
#include "auth/directory.h"
#include "common/error.h"

#include <ldap.h>
#include <string.h>

#define MAX_GROUPS 1000
#define MAX_DEPTH 16
#define IN_CHAIN "1.2.840.113556.1.4.1941"

void directory_config_free(DirectoryConfig *c)
{
        if (!c)
                return;
        g_free(c->name);
        g_strfreev(c->urls);
        g_free(c->ca_file);
        g_free(c->bind_dn);
        if (c->bind_password) {
                memset(c->bind_password, 0, strlen(c->bind_password));
                g_free(c->bind_password);
        }
        g_free(c->user_base);
        g_free(c->user_filter);
        g_free(c->login_attr);
        g_free(c->name_attr);
        g_free(c->mail_attr);
        g_free(c->locked_filter);
        g_free(c->group_base);
        g_free(c->group_filter);
        g_free(c->member_attr);
        g_free(c->group_name_attr);
        g_free(c);
}

static void dir_group_free(gpointer p)
{
        DirGroup *g = p;

        g_free(g->name);
        g_free(g->dn);
        g_free(g->via);
        g_free(g);
}

void dir_user_free(DirUser *u)
{
        if (!u)
                return;
        g_free(u->dn);
        g_free(u->login);
        g_free(u->display_name);
        g_free(u->mail);
        g_free(u->server);
        g_free(u->directory);
        if (u->groups)
                g_ptr_array_unref(u->groups);
        g_free(u);
}

gboolean directory_login_valid(const char *login, GError **error)
{
        gsize len = strlen(login);

        if (len == 0 || len > 256) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "a login name has 1 to 256 characters");
                return FALSE;
        }
        for (const guchar *p = (const guchar *)login; *p; p++) {
                if (*p < 0x20 || *p == 0x7f || *p == '*' || *p == '(' || *p == ')' || *p == '\\') {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "a login name may not contain control characters, '*', "
                                    "'(', ')' or '\\'");
                        return FALSE;
                }
        }
        return g_utf8_validate(login, -1, NULL) ||
               (g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID_UTF8,
                            "a login name must be UTF-8"),
                FALSE);
}

char *directory_filter_escape(const char *value)
{
        GString *out = g_string_sized_new(strlen(value) + 8);

        for (const guchar *p = (const guchar *)value; *p; p++) {
                if (*p == '*' || *p == '(' || *p == ')' || *p == '\\' || *p < 0x20 || *p == 0x7f)
                        g_string_append_printf(out, "\\%02x", *p);
                else
                        g_string_append_c(out, (char)*p);
        }
        return g_string_free(out, FALSE);
}

char *directory_user_filter(const DirectoryConfig *c, const char *login)
{
        g_autofree char *esc = directory_filter_escape(login);
        g_auto(GStrv) parts = g_strsplit(c->user_filter, "%s", -1);

        return g_strjoinv(esc, parts);
}

/* ---- connection ---------------------------------------------------------------------------- */

static const char *diagnostic(LDAP *ld, int rc)
{
        static _Thread_local char buf[256];
        char *msg = NULL;

        if (ld && ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg) == LDAP_OPT_SUCCESS &&
            msg && msg[0]) {
                g_snprintf(buf, sizeof(buf), "%s: %s", ldap_err2string(rc), msg);
                ldap_memfree(msg);
                return buf;
        }
        if (msg)
                ldap_memfree(msg);
        return ldap_err2string(rc);
}

static gboolean network_failure(int rc)
{
        return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT ||
               rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY;
}

static int simple_bind(LDAP *ld, const char *dn, const char *password)
{
        struct berval cred = {.bv_len = password ? strlen(password) : 0,
                              .bv_val = (char *)(password ? password : "")};

        return ldap_sasl_bind_s(ld, dn && dn[0] ? dn : NULL, LDAP_SASL_SIMPLE, &cred, NULL, NULL,
                                NULL);
}

/* One URL: initialise, StartTLS, bind as the service account. NULL with *why on failure;
 * *config_error when the failure is the configuration's, not the network's. */
static LDAP *open_one(const DirectoryConfig *c, const char *url, char **why, gboolean *config_error)
{
        LDAP *ld = NULL;
        int v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, zero = 0, rc;
        struct timeval tv = {.tv_sec = c->timeout};

        if ((rc = ldap_initialize(&ld, url)) != LDAP_SUCCESS) {
                *why = g_strdup_printf("%s: %s (check directory.urls)", url, ldap_err2string(rc));
                *config_error = TRUE;
                return NULL;
        }
        ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
        ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
        ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
        ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
        if (c->ca_file && c->ca_file[0])
                ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, c->ca_file);
        ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
        ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
        if (c->start_tls && g_str_has_prefix(url, "ldap://") &&
            (rc = ldap_start_tls_s(ld, NULL, NULL)) != LDAP_SUCCESS) {
                *why = g_strdup_printf("%s: StartTLS failed (%s): check directory.ca_file and "
                                       "the server's certificate",
                                       url, diagnostic(ld, rc));
                *config_error = !network_failure(rc) || rc == LDAP_CONNECT_ERROR;
                ldap_unbind_ext_s(ld, NULL, NULL);
                return NULL;
        }
        if ((rc = simple_bind(ld, c->bind_dn, c->bind_password)) != LDAP_SUCCESS) {
                if (network_failure(rc)) {
                        *why = g_strdup_printf("%s: %s", url, diagnostic(ld, rc));
                } else {
                        *why = g_strdup_printf(
                                "%s: the service bind as '%s' was refused (%s): "
                                "check directory.bind_dn and bind_password",
                                url, c->bind_dn && c->bind_dn[0] ? c->bind_dn : "(anonymous)",
                                diagnostic(ld, rc));
                        *config_error = TRUE;
                }
                ldap_unbind_ext_s(ld, NULL, NULL);
                return NULL;
        }
        return ld;
}

/* The first URL that answers, bound as the service account. */
static LDAP *open_any(const DirectoryConfig *c, char **server, GError **error)
{
        g_autoptr(GString) reasons = g_string_new(NULL);

        if (!c->urls || !c->urls[0]) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "no directory is configured (directory.urls is empty)");
                return NULL;
        }
        for (char **u = c->urls; *u; u++) {
                g_autofree char *why = NULL;
                gboolean config_error = FALSE;
                LDAP *ld = open_one(c, *u, &why, &config_error);
                if (ld) {
                        *server = g_strdup(*u);
                        return ld;
                }
                if (config_error) {
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID, "%s", why);
                        return NULL;
                }
                g_string_append_printf(reasons, "%s%s", reasons->len ? "; " : "", why);
        }
        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                    "the directory cannot be reached (%s); local accounts can still log in",
                    reasons->str);
        return NULL;
}

/* ---- searches -------------------------------------------------------------------------------- */

static char *first_value(LDAP *ld, LDAPMessage *e, const char *attr)
{
        struct berval **v;
        char *out = NULL;

        if (!attr || !attr[0])
                return g_strdup("");
        v = ldap_get_values_len(ld, e, attr);
        if (v && v[0])
                out = g_strndup(v[0]->bv_val, v[0]->bv_len);
        if (v)
                ldap_value_free_len(v);
        return out ? out : g_strdup("");
}

static int search(const DirectoryConfig *c, LDAP *ld, const char *base, int scope,
                  const char *filter, char **attrs, int limit, LDAPMessage **res)
{
        struct timeval tv = {.tv_sec = c->timeout};

        *res = NULL;
        return ldap_search_ext_s(ld, base, scope, filter, attrs, 0, NULL, NULL, &tv, limit, res);
}

static gboolean search_failed(const DirectoryConfig *c, LDAP *ld, int rc, const char *what,
                              const char *key, const char *base, GError **error)
{
        if (rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED)
                return FALSE;
        if (rc == LDAP_NO_SUCH_OBJECT)
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "%s: the base '%s' does not exist in the directory: fix "
                            "directory.%s",
                            what, base, key);
        else if (rc == LDAP_FILTER_ERROR)
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "%s: the directory refused the search filter: fix directory.%s", what,
                            g_str_equal(key, "user_base") ? "user_filter" : "group_filter");
        else
                g_set_error(error, ATRIUM_ERROR,
                            network_failure(rc) ? ATRIUM_ERROR_UNAVAILABLE : ATRIUM_ERROR_INTERNAL,
                            "%s: %s", what, diagnostic(ld, rc));
        return TRUE;
}

/* Groups whose member attribute holds DN, with their DNs; in one search. */
static gboolean member_of(const DirectoryConfig *c, LDAP *ld, const char *dn, gboolean chain,
                          GPtrArray *out_names, GPtrArray *out_dns, GError **error)
{
        g_autofree char *esc = directory_filter_escape(dn);
        g_autofree char *filter = g_strdup_printf("(&%s(%s%s:=%s))", c->group_filter,
                                                  c->member_attr, chain ? ":" IN_CHAIN : "", esc);
        char *attrs[] = {c->group_name_attr, NULL};
        LDAPMessage *res = NULL;
        int rc = search(c, ld, c->group_base, LDAP_SCOPE_SUBTREE, filter, attrs, MAX_GROUPS, &res);

        if (search_failed(c, ld, rc, "group search", "group_base", c->group_base, error)) {
                ldap_msgfree(res);
                return FALSE;
        }
        for (LDAPMessage *e = ldap_first_entry(ld, res); e; e = ldap_next_entry(ld, e)) {
                char *gdn = ldap_get_dn(ld, e);
                g_ptr_array_add(out_names, first_value(ld, e, c->group_name_attr));
                g_ptr_array_add(out_dns, g_strdup(gdn ? gdn : ""));
                ldap_memfree(gdn);
        }
        ldap_msgfree(res);
        return TRUE;
}

static gboolean has_group(GPtrArray *groups, const char *dn)
{
        for (guint i = 0; i < groups->len; i++)
                if (g_ascii_strcasecmp(((DirGroup *)groups->pdata[i])->dn, dn) == 0)
                        return TRUE;
        return FALSE;
}

/* The user's groups: direct ones, then (nested) the groups of those groups, breadth first,
 * each once, at most MAX_DEPTH levels; Active Directory answers all in one search. */
static gboolean resolve_groups(const DirectoryConfig *c, LDAP *ld, DirUser *u, GError **error)
{
        g_autoptr(GPtrArray) frontier = g_ptr_array_new_with_free_func(g_free);

        u->groups = g_ptr_array_new_with_free_func(dir_group_free);
        if (!c->group_base || !c->group_base[0])
                return TRUE;
        g_ptr_array_add(frontier, g_strdup(u->dn));
        for (int depth = 0; frontier->len && depth < MAX_DEPTH; depth++) {
                g_autoptr(GPtrArray) next = g_ptr_array_new_with_free_func(g_free);
                for (guint i = 0; i < frontier->len; i++) {
                        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
                        g_autoptr(GPtrArray) dns = g_ptr_array_new_with_free_func(g_free);
                        const char *via = NULL;
                        if (depth > 0) {
                                for (guint k = 0; k < u->groups->len; k++) {
                                        DirGroup *p = u->groups->pdata[k];
                                        if (g_ascii_strcasecmp(p->dn, frontier->pdata[i]) == 0)
                                                via = p->name;
                                }
                        }
                        if (!member_of(c, ld, frontier->pdata[i], c->ad_chain && depth == 0, names,
                                       dns, error))
                                return FALSE;
                        for (guint k = 0; k < names->len && u->groups->len < MAX_GROUPS; k++) {
                                DirGroup *g;
                                if (has_group(u->groups, dns->pdata[k]))
                                        continue;
                                g = g_new0(DirGroup, 1);
                                g->name = g_strdup(names->pdata[k]);
                                g->dn = g_strdup(dns->pdata[k]);
                                g->via = via ? g_strdup(via) : NULL;
                                g_ptr_array_add(u->groups, g);
                                g_ptr_array_add(next, g_strdup(dns->pdata[k]));
                        }
                }
                if (!c->nested || c->ad_chain)
                        break;
                g_ptr_array_unref(g_steal_pointer(&frontier));
                frontier = g_steal_pointer(&next);
        }
        return TRUE;
}

static gboolean is_locked(const DirectoryConfig *c, LDAP *ld, const char *dn, gboolean *locked,
                          GError **error)
{
        char *attrs[] = {"1.1", NULL};
        LDAPMessage *res = NULL;
        int rc;

        *locked = FALSE;
        if (!c->locked_filter || !c->locked_filter[0])
                return TRUE;
        rc = search(c, ld, dn, LDAP_SCOPE_BASE, c->locked_filter, attrs, 1, &res);
        if (rc == LDAP_FILTER_ERROR) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "the directory refused directory.locked_filter '%s': fix it",
                            c->locked_filter);
                ldap_msgfree(res);
                return FALSE;
        }
        if (rc != LDAP_SUCCESS && rc != LDAP_NO_SUCH_OBJECT) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE, "lock check: %s",
                            diagnostic(ld, rc));
                ldap_msgfree(res);
                return FALSE;
        }
        *locked = rc == LDAP_SUCCESS && ldap_count_entries(ld, res) > 0;
        ldap_msgfree(res);
        return TRUE;
}

static DirUser *lookup(const DirectoryConfig *c, const char *login, const char *password,
                       gboolean groups, GError **error)
{
        g_autofree char *filter = NULL, *server = NULL;
        char *attrs[] = {c->login_attr, c->name_attr, c->mail_attr, NULL};
        g_autoptr(DirUser) u = NULL;
        LDAPMessage *res = NULL, *e;
        LDAP *ld;
        gboolean locked;
        int rc, n;
        char *dn;

        if (!directory_login_valid(login, error))
                return NULL;
        if (password && !password[0]) { /* an empty password would be an anonymous bind */
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_BAD_CREDENTIALS,
                            "wrong user name or password");
                return NULL;
        }
        if (!(ld = open_any(c, &server, error)))
                return NULL;
        filter = directory_user_filter(c, login);
        rc = search(c, ld, c->user_base, LDAP_SCOPE_SUBTREE, filter, attrs, 2, &res);
        if (search_failed(c, ld, rc, "user search", "user_base", c->user_base, error))
                goto fail;
        n = ldap_count_entries(ld, res);
        if (n != 1) {
                if (n > 1)
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                                    "the login '%s' matches several directory entries: make "
                                    "directory.user_filter select one",
                                    login);
                else
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND,
                                    "'%s' is not in %s", login,
                                    c->name ? c->name : "the directory");
                goto fail;
        }
        e = ldap_first_entry(ld, res);
        u = g_new0(DirUser, 1);
        dn = ldap_get_dn(ld, e);
        u->dn = g_strdup(dn ? dn : "");
        ldap_memfree(dn);
        u->login = first_value(ld, e, c->login_attr);
        if (!u->login[0]) {
                g_free(u->login);
                u->login = g_strdup(login);
        }
        u->display_name = first_value(ld, e, c->name_attr);
        u->mail = first_value(ld, e, c->mail_attr);
        u->server = g_steal_pointer(&server);
        u->directory = g_strdup(c->name ? c->name : "directory");
        ldap_msgfree(g_steal_pointer(&res));
        if (!is_locked(c, ld, u->dn, &locked, error))
                goto fail;
        if (locked) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_FORBIDDEN,
                            "the account '%s' is locked in the directory", login);
                goto fail;
        }
        if (groups && !resolve_groups(c, ld, u, error))
                goto fail;
        if (password && (rc = simple_bind(ld, u->dn, password)) != LDAP_SUCCESS) {
                if (network_failure(rc))
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE,
                                    "the directory stopped answering: %s", diagnostic(ld, rc));
                else
                        g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_BAD_CREDENTIALS,
                                    "wrong user name or password");
                goto fail;
        }
        ldap_unbind_ext_s(ld, NULL, NULL);
        return g_steal_pointer(&u);
fail:
        ldap_msgfree(res);
        ldap_unbind_ext_s(ld, NULL, NULL);
        return NULL;
}

gboolean directory_check(const DirectoryConfig *c, GError **error)
{
        g_autofree char *server = NULL;
        const char *bases[][2] = {{c->user_base, "user_base"}, {c->group_base, "group_base"}};
        char *attrs[] = {"1.1", NULL};
        LDAP *ld = open_any(c, &server, error);

        if (!ld)
                return FALSE;
        for (gsize i = 0; i < G_N_ELEMENTS(bases); i++) {
                LDAPMessage *res = NULL;
                int rc;
                if (!bases[i][0] || !bases[i][0][0])
                        continue;
                rc = search(c, ld, bases[i][0], LDAP_SCOPE_BASE, "(objectClass=*)", attrs, 1, &res);
                ldap_msgfree(res);
                if (search_failed(c, ld, rc, "check", bases[i][1], bases[i][0], error)) {
                        ldap_unbind_ext_s(ld, NULL, NULL);
                        return FALSE;
                }
        }
        ldap_unbind_ext_s(ld, NULL, NULL);
        return TRUE;
}

DirUser *directory_lookup_any(GPtrArray *configs, const char *login, const char *password,
                              gboolean groups, GError **error)
{
        g_autoptr(GError) unavailable = NULL;

        for (guint i = 0; configs && i < configs->len; i++) {
                g_autoptr(GError) e = NULL;
                DirUser *u = lookup(configs->pdata[i], login, password, groups, &e);
                if (u)
                        return u;
                if (g_error_matches(e, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND))
                        continue;
                if (g_error_matches(e, ATRIUM_ERROR, ATRIUM_ERROR_UNAVAILABLE)) {
                        if (!unavailable)
                                unavailable = g_steal_pointer(&e);
                        continue;
                }
                g_propagate_error(error, g_steal_pointer(&e));
                return NULL;
        }
        if (unavailable)
                g_propagate_error(error, g_steal_pointer(&unavailable));
        else
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_NOT_FOUND,
                            "'%s' is in no configured directory", login);
        return NULL;
}
