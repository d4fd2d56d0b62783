/* The REST object model: each object family (users, pools, ...) is described once, as data,
 * by a Resource with its Fields. The store builds its SQL from it, the API validates bodies
 * with it, the OpenAPI document and the CLI's options and tables come from it. */
#pragma once
#include <glib.h>
#include <json-glib/json-glib.h>

typedef enum { ROLE_NONE, ROLE_USER, ROLE_HELPDESK, ROLE_OPERATOR, ROLE_ADMIN, ROLE_LAST } Role;
const char *role_to_string(Role r);
int role_from_string(const char *s); /* -1 when unknown */
const char *role_description(Role r);

typedef enum {
        FIELD_NAME, /* object name, util_name_valid */
        FIELD_TEXT, /* free text, no control characters */
        FIELD_INT,
        FIELD_BOOL,
        FIELD_ENUM,
        FIELD_REF,    /* another object, by id or name; column <name>_id */
        FIELD_PATH,   /* absolute filesystem path */
        FIELD_SECRET, /* write-only, never returned (passwords) */
        FIELD_TYPE_LAST
} FieldType;

enum {
        F_REQUIRED = 1 << 0,  /* must be given on create */
        F_READONLY = 1 << 1,  /* set by the server only */
        F_UNIQUE = 1 << 2,    /* unique across the family */
        F_LIST = 1 << 3,      /* shown as a column in CLI tables */
        F_FILTER = 1 << 4,    /* list may filter on it (?field=value) */
        F_IMMUTABLE = 1 << 5, /* settable on create, not on update */
};

typedef struct {
        const char *name;
        FieldType type;
        unsigned flags;
        const char *def;            /* default on create, as text; NULL: none (NULL in SQL) */
        gint64 min, max;            /* FIELD_INT range; FIELD_TEXT/PATH max length */
        const char *const *choices; /* FIELD_ENUM, NULL-terminated */
        const char *ref;            /* FIELD_REF: the referenced resource's kind */
        const char *help;
} Field;

typedef struct _Resource Resource;

/* Cross-field rules checked on the whole object after a create or an update. */
typedef gboolean (*ResourceCheck)(const Resource *res, JsonObject *obj, GError **error);

struct _Resource {
        const char *kind;   /* "pool": singular, used in messages and events */
        const char *plural; /* "pools": URL segment */
        const char *table;  /* SQL table */
        const char *cli;    /* CLI family ("pool"), NULL when none */
        const char *title;  /* "Pool": OpenAPI schema name */
        const char *help;
        const Field *fields;
        gsize n_fields;
        gboolean named;     /* has a unique "name" field */
        gboolean read_only; /* no create/update/delete via generic routes */
        gboolean no_create; /* created by its own route (hosts join, tokens are issued) */
        gboolean no_update;
        const char *owner_field; /* a FIELD_REF to user: plain users see only their own rows */
        Role read_role, write_role;
        ResourceCheck check;
};

const Resource *const *resources_all(gsize *n);
const Resource *resource_by_kind(const char *kind);
const Resource *resource_by_plural(const char *plural);
const Field *resource_field(const Resource *res, const char *name);
/* "a pool", "an event": for messages. */
const char *resource_a(const Resource *res);

/* SQL column of a field: name, or name_id for a reference. Returns a static/interned string. */
const char *field_column(const Field *f);
const char *field_type_label(const Field *f); /* for help and OpenAPI */

/* Validate a request body against the resource: unknown fields, read-only fields, types,
 * ranges, choices, text rules; on create also required fields. References are checked only
 * for shape (id or name); the store resolves them. */
gboolean model_validate(const Resource *res, JsonObject *body, gboolean create, GError **error);

/* Convert a text value (CLI option, query parameter) to the JSON node the field takes. */
JsonNode *model_value_from_text(const Field *f, const char *text, GError **error);
