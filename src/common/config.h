/* Configuration: every key lives in one table (config.c) with its type, default, range and
 * help. A Config is loaded from /etc/atrium/atrium.conf, another file or a string (tests);
 * unknown sections and keys are errors, so typos never pass silently. */
#pragma once
#include <glib.h>

typedef enum { CFG_STRING, CFG_INT, CFG_BOOL, CFG_ENUM } ConfigType;

typedef struct {
        const char *group;
        const char *key;
        ConfigType type;
        const char *def;
        gint64 min, max;            /* CFG_INT range */
        const char *const *choices; /* CFG_ENUM, NULL-terminated */
        gboolean reloadable;        /* applied on SIGHUP without a restart */
        const char *help;
        gboolean secret; /* its value is never shown (dumps, logs): "(set)" */
} ConfigKeyDef;

typedef struct _Config Config;

#define ATRIUM_DEFAULT_CONFIG "/etc/atrium/atrium.conf"

const ConfigKeyDef *config_keys(gsize *n);
Config *config_new(void); /* all defaults */
void config_free(Config *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Config, config_free)

gboolean config_load_data(Config *c, const char *data, gssize len, GError **error);
gboolean config_load_file(Config *c, const char *path, GError **error);
/* Set one value from "group.key=value" text (command-line overrides). */
gboolean config_set(Config *c, const char *group, const char *key, const char *value,
                    GError **error);

const char *config_get_string(const Config *c, const char *group, const char *key);
gint64 config_get_int(const Config *c, const char *group, const char *key);
gboolean config_get_bool(const Config *c, const char *group, const char *key);

/* The commented sample config, every key at its default. */
char *config_sample(void);
/* Every key with its effective value, one "group.key = value" line each (secrets masked). */
char *config_dump(const Config *c);
/* Keys whose values differ; each element is a "group.key" string. */
GPtrArray *config_diff(const Config *a, const Config *b);
gboolean config_key_reloadable(const char *group_dot_key);
