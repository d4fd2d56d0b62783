/* Directory login (LDAP, Active Directory) with OpenLDAP's libldap: search-then-bind, groups
 * with nesting, URL failover. Every call blocks on the network (bounded by the configured
 * timeout): the manager calls them from worker threads only. */
#pragma once
#include <glib.h>

typedef struct {
        char *name;           /* which directory, in messages: "directory" or its file */
        char **urls;          /* tried in order: ldap://, ldaps:// */
        gboolean start_tls;   /* StartTLS on ldap:// URLs */
        char *ca_file;        /* CA certificates for StartTLS / LDAPS; empty: the system's */
        char *bind_dn;        /* service account; empty: anonymous search */
        char *bind_password;
        char *user_base;
        char *user_filter;    /* with %s for the (escaped) login name */
        char *login_attr, *name_attr, *mail_attr;
        char *locked_filter;  /* entries matching it may not log in; empty: none */
        char *group_base;
        char *group_filter;   /* what a group is, e.g. (objectClass=groupOfNames) */
        char *member_attr;    /* the group's attribute naming its members' DNs */
        char *group_name_attr;
        gboolean nested;      /* groups of groups */
        gboolean ad_chain;    /* Active Directory's LDAP_MATCHING_RULE_IN_CHAIN in one search */
        int timeout;          /* seconds, per network operation */
} DirectoryConfig;

typedef struct {
        char *name; /* the group's name attribute */
        char *dn;
        char *via;  /* nested: the group it was reached through (its name); NULL: direct */
} DirGroup;

typedef struct {
        char *dn;
        char *login;
        char *display_name;
        char *mail;
        GPtrArray *groups; /* DirGroup */
        char *server;      /* the URL that answered */
        char *directory;   /* the name of the directory it was found in */
} DirUser;

void directory_config_free(DirectoryConfig *c);
void dir_user_free(DirUser *u);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DirUser, dir_user_free)

/* A login name as a directory may take it: 1-256 characters, no control characters and none of
 * * ( ) \ NUL (filter syntax, refused rather than escaped: no real name has them). */
gboolean directory_login_valid(const char *login, GError **error);
/* RFC 4515 escaping of a value put in a search filter. */
char *directory_filter_escape(const char *value);
/* The user search filter for LOGIN: the config's filter with %s replaced, escaped. */
char *directory_user_filter(const DirectoryConfig *c, const char *login);

/* Find LOGIN in the directories in order (the first that knows it answers; a wrong password
 * there is final), check it is not locked, bind as it with PASSWORD (NULL: no bind, for a
 * lookup or a refresh), and resolve its groups (GROUPS; not when they are still cached).
 * Errors: NOT_FOUND (in no directory), BAD_CREDENTIALS (wrong password), FORBIDDEN (locked),
 * UNAVAILABLE (a directory that might know it could not be asked: each URL's reason), INVALID
 * (a configuration is wrong: what to fix). */
DirUser *directory_lookup_any(GPtrArray *configs, const char *login, const char *password,
                              gboolean groups, GError **error);
/* Connect, bind as the service account and check both bases exist: the message says what to
 * fix. */
gboolean directory_check(const DirectoryConfig *c, GError **error);

