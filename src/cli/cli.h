/* atrium CLI internals. Exit codes: 0 ok, 1 error (the server's message printed as is),
 * 2 usage. */
#pragma once
#include "proto/model.h"

#include <stdio.h>

#include <libsoup/soup.h>

#define EXIT_OK 0
#define EXIT_ERROR 1
#define EXIT_USAGE 2

typedef struct {
        char *url; /* https://host:port */
        char *token;
        char *ca_file;
        gboolean insecure;
        gboolean json;
        SoupSession *session;
        char *config_path;
} Client;

/* ~/.config/atrium/client.conf (0600): url, token, insecure, ca. */
gboolean client_load(Client *c, GError **error);
gboolean client_save(Client *c, GError **error);
void client_clear(Client *c);

/* One request; body may be NULL. On HTTP >= 400 sets an error with the server's message.
 * *status gets the HTTP status. Returns the parsed JSON reply (NULL for an empty reply). */
JsonNode *client_call(Client *c, const char *method, const char *path, JsonNode *body,
                      guint *status, GError **error);
/* The same for a command that prints the answer: NULL with *rc set when the call failed (the
 * error printed) or --json printed the answer; else the answer, for the command to print. */
JsonNode *client_call_text(Client *c, const char *method, const char *path, JsonNode *body,
                           int *rc);

/* Output. */
void out_json(JsonNode *node);
void out_table(const Resource *res, JsonArray *items);
void out_object(JsonObject *o);
int out_error(const GError *error); /* prints "atrium: message", returns EXIT_ERROR */
int out_usage(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* Commands. argv[0] is the command's own word. */
int cmd_login(Client *c, int argc, char **argv);
int cmd_logout(Client *c, int argc, char **argv);
int cmd_whoami(Client *c, int argc, char **argv);
int cmd_passwd(Client *c, int argc, char **argv);
int cmd_role(Client *c, int argc, char **argv);
int cmd_directory(Client *c, int argc, char **argv);
int cmd_totp(Client *c, int argc, char **argv);
/* A verb of an object family: its usage line, whether the family has it (NULL: all do), and
 * what runs it (argv after the verb). */
typedef struct {
        const char *verb, *usage;
        gboolean (*applies)(const Resource *res);
        int (*run)(Client *c, const Resource *res, const char *verb, int argc, char **argv);
} FamilyVerb;
int cmd_family(Client *c, const Resource *res, int argc, char **argv);
void cmd_family_help(const Resource *res, FILE *to);
/* Every verb of the family, generic and extra, space-separated (for completion). */
char *cmd_family_verbs(const Resource *res);
char *read_secret(const char *prompt, gboolean from_stdin);
/* Verbs beyond the generic ones (commands-hosts.c). */
gboolean cmd_extra_has(const Resource *res, const char *verb);
char *cmd_extra_verbs(const char *family); /* " verb verb ...", for completion */
void cmd_extra_help(const Resource *res, FILE *to);
int cmd_extra(Client *c, const Resource *res, const char *verb, int argc, char **argv);
/* Long operations (commands-pools.c). */
int cli_wait_operation(Client *c, gint64 id, guint timeout_s);
int cli_after_operation(Client *c, JsonObject *reply, gboolean wait);
void cli_pool_disk(Client *c, JsonObject *pool);
/* After 'session show': how long its connect took, step by step. */
void cli_session_timing(JsonObject *session);
