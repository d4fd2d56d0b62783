/* The OpenAPI 3 document, generated from the route table and the resource table. The copy in
 * docs/openapi.json is checked against this by the tests (ATRIUM_TEST_REGENERATE=1 rewrites
 * it), so the document in the repo always says what the server does. */
#include "manager/api.h"

#include <string.h>

static void set_str(JsonObject *o, const char *k, const char *v)
{
        json_object_set_string_member(o, k, v);
}

static JsonObject *obj_member(JsonObject *parent, const char *k)
{
        if (!json_object_has_member(parent, k))
                json_object_set_object_member(parent, k, json_object_new());
        return json_object_get_object_member(parent, k);
}

static JsonObject *ref(const char *target)
{
        JsonObject *o = json_object_new();
        g_autofree char *r = g_strdup_printf("#/components/schemas/%s", target);
        set_str(o, "$ref", r);
        return o;
}

static JsonObject *field_schema(const Field *f)
{
        JsonObject *s = json_object_new();

        switch (f->type) {
        case FIELD_INT:
                set_str(s, "type", "integer");
                json_object_set_int_member(s, "minimum", f->min);
                json_object_set_int_member(s, "maximum", f->max);
                break;
        case FIELD_BOOL:
                set_str(s, "type", "boolean");
                break;
        case FIELD_ENUM: {
                JsonArray *e = json_array_new();
                set_str(s, "type", "string");
                for (const char *const *c = f->choices; *c; c++)
                        json_array_add_string_element(e, *c);
                json_object_set_array_member(s, "enum", e);
                break;
        }
        case FIELD_REF: {
                g_autofree char *d = g_strdup_printf("%s: name or id of a %s", f->help, f->ref);
                JsonArray *one = json_array_new();
                JsonObject *a = json_object_new(), *b = json_object_new();
                set_str(a, "type", "string");
                set_str(b, "type", "integer");
                json_array_add_object_element(one, a);
                json_array_add_object_element(one, b);
                json_object_set_array_member(s, "oneOf", one);
                set_str(s, "description", d);
                return s;
        }
        case FIELD_NAME:
                set_str(s, "type", "string");
                set_str(s, "pattern", "^[A-Za-z][A-Za-z0-9._-]{0,63}$");
                break;
        case FIELD_SECRET:
                set_str(s, "type", "string");
                set_str(s, "format", "password");
                json_object_set_boolean_member(s, "writeOnly", TRUE);
                json_object_set_int_member(s, "minLength", f->min);
                break;
        default:
                set_str(s, "type", "string");
                if (f->max > 0)
                        json_object_set_int_member(s, "maxLength", f->max);
                break;
        }
        if (f->flags & F_READONLY)
                json_object_set_boolean_member(s, "readOnly", TRUE);
        if (f->def && f->type != FIELD_SECRET) {
                g_autoptr(JsonNode) d = model_value_from_text(f, f->def, NULL);
                if (d)
                        json_object_set_member(s, "default", g_steal_pointer(&d));
        }
        set_str(s, "description", f->help);
        return s;
}

static JsonObject *resource_schema(const Resource *res)
{
        JsonObject *s = json_object_new(), *props = json_object_new(), *id = json_object_new();
        JsonArray *req = json_array_new();

        set_str(s, "type", "object");
        set_str(s, "description", res->help);
        set_str(id, "type", "integer");
        json_object_set_boolean_member(id, "readOnly", TRUE);
        json_object_set_object_member(props, "id", id);
        for (gsize i = 0; i < res->n_fields; i++) {
                const Field *f = &res->fields[i];
                json_object_set_object_member(props, f->name, field_schema(f));
                if (f->type == FIELD_REF) {
                        JsonObject *rid = json_object_new();
                        set_str(rid, "type", "integer");
                        json_object_set_boolean_member(rid, "readOnly", TRUE);
                        json_object_set_boolean_member(rid, "nullable", TRUE);
                        json_object_set_object_member(props, field_column(f), rid);
                }
                if (f->flags & F_REQUIRED)
                        json_array_add_string_element(req, f->name);
        }
        for (int i = 0; i < 2; i++) {
                JsonObject *t = json_object_new();
                set_str(t, "type", "string");
                set_str(t, "format", "date-time");
                json_object_set_boolean_member(t, "readOnly", TRUE);
                json_object_set_object_member(props, i ? "updated_at" : "created_at", t);
        }
        json_object_set_object_member(s, "properties", props);
        json_object_set_boolean_member(s, "additionalProperties", FALSE);
        if (json_array_get_length(req) > 0)
                json_object_set_array_member(s, "required", req);
        else
                json_array_unref(req);
        return s;
}

static JsonObject *json_content(JsonObject *schema)
{
        JsonObject *c = json_object_new(), *mt = json_object_new();
        json_object_set_object_member(mt, "schema", schema);
        json_object_set_object_member(c, "application/json", mt);
        return c;
}

static JsonObject *response(const char *desc, JsonObject *schema)
{
        JsonObject *r = json_object_new();
        set_str(r, "description", desc);
        if (schema)
                json_object_set_object_member(r, "content", json_content(schema));
        return r;
}

static JsonObject *list_schema(const char *item)
{
        JsonObject *s = json_object_new(), *p = json_object_new(), *items = json_object_new(),
                   *cur = json_object_new();
        set_str(s, "type", "object");
        set_str(items, "type", "array");
        json_object_set_object_member(items, "items", ref(item));
        json_object_set_object_member(p, "items", items);
        set_str(cur, "type", "string");
        json_object_set_boolean_member(cur, "nullable", TRUE);
        set_str(cur, "description", "Pass as ?cursor= for the next page; null on the last page.");
        json_object_set_object_member(p, "next_cursor", cur);
        json_object_set_object_member(s, "properties", p);
        return s;
}

static JsonArray *parameters(const Route *r)
{
        JsonArray *a = json_array_new();
        const char *p = r->pattern;

        while ((p = strchr(p, '{'))) {
                const char *end = strchr(p, '}');
                g_autofree char *name = g_strndup(p + 1, end - p - 1);
                JsonObject *o = json_object_new(), *s = json_object_new();
                set_str(o, "name", name);
                set_str(o, "in", "path");
                json_object_set_boolean_member(o, "required", TRUE);
                set_str(s, "type", "string");
                json_object_set_object_member(o, "schema", s);
                set_str(o, "description", "Id or name.");
                json_array_add_object_element(a, o);
                p = end;
        }
        if (r->res && g_str_equal(r->op, "list")) {
                const char *std[][2] = {
                        {"limit", "Items per page (1..page_size_max)."},
                        {"cursor", "next_cursor of the previous page."},
                        {"order", "asc (oldest first, the default) or desc (newest first)."}};
                for (gsize i = 0; i < G_N_ELEMENTS(std); i++) {
                        JsonObject *o = json_object_new(), *s = json_object_new();
                        set_str(o, "name", std[i][0]);
                        set_str(o, "in", "query");
                        set_str(s, "type", i == 0 ? "integer" : "string");
                        json_object_set_object_member(o, "schema", s);
                        set_str(o, "description", std[i][1]);
                        json_array_add_object_element(a, o);
                }
                for (gsize i = 0; i < r->res->n_fields; i++) {
                        const Field *f = &r->res->fields[i];
                        JsonObject *o, *s;
                        if (!(f->flags & F_FILTER))
                                continue;
                        o = json_object_new();
                        s = json_object_new();
                        set_str(o, "name", f->name);
                        set_str(o, "in", "query");
                        set_str(s, "type", "string");
                        json_object_set_object_member(o, "schema", s);
                        set_str(o, "description",
                                f->type == FIELD_NAME ? "Names containing this text."
                                                      : "Only objects with this value.");
                        json_array_add_object_element(a, o);
                }
        }
        return a;
}

/* Routes outside the generic object routes: their request and reply schemas. */
typedef struct {
        const char *pattern_end; /* the route's pattern ends with this */
        const char *request;
        guint status;
        const char *reply; /* a schema, or NULL: an object, or nothing for 204 */
} FixedDoc;

static const FixedDoc fixed_docs[] = {
        {"/auth/login", "LoginRequest", 200, NULL},
        {"/me/password", "PasswordChange", 204, NULL},
        {"/agent/register", "JoinRequest", 201, "JoinReply"},
        {"/join-tokens", "JoinTokenRequest", 201, "JoinTokenIssued"},
        {"/maintenance", "MaintenanceRequest", 200, "Host"},
        {"/console", "GuestAction", 200, "Console"},
        {"/images", NULL, 200, "VolumeImages"},
        {"/isos", NULL, 200, "MediaIsos"},
        {"/guests/{id}/start", "GuestAction", 200, "Guest"},
        {"/guests/{id}/stop", "GuestAction", 200, "Guest"},
        {"/guests/{id}/reboot", "GuestAction", 200, "Guest"},
        {"/guests/{id}/reset", "GuestAction", 200, "Guest"},
        {"/guests/{id}/destroy", "GuestAction", 200, "Guest"},
        {"/guests/{id}/attach-iso", "GuestAction", 200, "Guest"},
        {"/guests/{id}/eject", "GuestAction", 200, "Guest"},
        {"/guests/{id}/tools", "GuestAction", 200, "Guest"},
};

static const FixedDoc *fixed_doc(const Route *r)
{
        for (gsize i = 0; i < G_N_ELEMENTS(fixed_docs); i++)
                if (!r->res && g_str_has_suffix(r->pattern, fixed_docs[i].pattern_end))
                        return &fixed_docs[i];
        return NULL;
}

static const char *body_schema(const Route *r)
{
        const FixedDoc *d = fixed_doc(r);

        if (r->res)
                return r->res->title;
        return d && d->request ? d->request : "Object";
}

static JsonObject *operation(const Route *r)
{
        JsonObject *op = json_object_new(), *resp = json_object_new();
        g_autofree char *opid =
                g_strdup_printf("%s%s%s", r->op, r->res ? "_" : "", r->res ? r->res->kind : "");
        JsonArray *params = parameters(r);

        set_str(op, "operationId", opid);
        set_str(op, "summary", r->summary);
        set_str(op, "x-atrium-role", role_to_string(r->role));
        if (r->res) {
                JsonArray *tags = json_array_new();
                json_array_add_string_element(tags, r->res->plural);
                json_object_set_array_member(op, "tags", tags);
        }
        if (json_array_get_length(params))
                json_object_set_array_member(op, "parameters", params);
        else
                json_array_unref(params);
        if (r->role == ROLE_NONE)
                json_object_set_array_member(op, "security", json_array_new());
        if (r->body_limit) {
                JsonObject *rb = json_object_new();
                json_object_set_boolean_member(rb, "required", TRUE);
                json_object_set_object_member(rb, "content", json_content(ref(body_schema(r))));
                json_object_set_int_member(rb, "x-atrium-body-limit", r->body_limit);
                json_object_set_object_member(op, "requestBody", rb);
        }
        if (r->res && g_str_equal(r->op, "list"))
                json_object_set_object_member(resp, "200",
                                              response("A page.", list_schema(r->res->title)));
        else if (r->res && g_str_equal(r->op, "create"))
                json_object_set_object_member(resp, "201",
                                              response("Created.", ref(r->res->title)));
        else if (r->res && g_str_equal(r->op, "delete"))
                json_object_set_object_member(resp, "204", response("Deleted.", NULL));
        else if (r->res)
                json_object_set_object_member(resp, "200",
                                              response("The object.", ref(r->res->title)));
        else if (fixed_doc(r) && fixed_doc(r)->status != 204) {
                const FixedDoc *d = fixed_doc(r);
                g_autofree char *st = g_strdup_printf("%u", d->status);
                json_object_set_object_member(
                        resp, st,
                        response(d->status == 201 ? "Created." : "OK.",
                                 d->reply ? ref(d->reply) : json_object_new()));
        } else if (g_str_equal(r->method, "GET"))
                json_object_set_object_member(resp, "200", response("OK.", json_object_new()));
        else
                json_object_set_object_member(resp, "204", response("Done.", NULL));
        json_object_set_object_member(resp, "default", response("An error.", ref("Error")));
        json_object_set_object_member(op, "responses", resp);
        return op;
}

static JsonObject *fixed_schemas(JsonObject *schemas)
{
        JsonObject *err = json_object_new(), *p = json_object_new(), *inner = json_object_new(),
                   *ip = json_object_new(), *code = json_object_new(), *msg = json_object_new(),
                   *field = json_object_new();
        const char *bodies[][3] = {{"LoginRequest", "name", "password"},
                                   {"PasswordChange", "current_password", "new_password"}};

        set_str(code, "type", "string");
        set_str(msg, "type", "string");
        json_object_set_object_member(ip, "code", code);
        json_object_set_object_member(ip, "message", msg);
        set_str(field, "type", "string");
        set_str(field, "description", "The request's field the error is about, when there is one.");
        json_object_set_object_member(ip, "field", field);
        set_str(inner, "type", "object");
        json_object_set_object_member(inner, "properties", ip);
        json_object_set_object_member(p, "error", inner);
        set_str(err, "type", "object");
        json_object_set_object_member(err, "properties", p);
        json_object_set_object_member(schemas, "Error", err);
        /* Open objects with their known members: name, JSON type. */
        static const char *const open_objects[][24] = {
                {"Object", NULL},
                {"JoinRequest", "join_token", "string", "name", "string", "address", "string",
                 "cpus", "integer", "ram_mb", "integer", "accel", "string", "qemu_version",
                 "string", "libvirt_public_key", "string", NULL},
                {"JoinReply", "host_id", "integer", "name", "string", "credential", "string",
                 "link", "string", "libvirt_cert", "string", "libvirt_ca", "string", NULL},
                {"JoinTokenRequest", "ttl_seconds", "integer", NULL},
                {"JoinTokenIssued", "id", "integer", "token", "string", "expires_at", "integer",
                 "manager_fingerprint", "string", "command", "string", NULL},
                {"MaintenanceRequest", "maintenance", "boolean", NULL},
                {"GuestAction", "host", "string", "timeout", "integer", "force", "boolean",
                 "protocol", "string", "ttl", "integer", "iso", "string", "media", "string",
                 "op", "string", "hostname", "string", NULL},
                {"Console", "protocol", "string", "host", "string", "port", "integer",
                 "password", "string", "expires_at", "integer", "ticket", "string",
                 "console_url", "string", NULL},
                {"VolumeImages", "volume", "string", "free_bytes", "integer", "total_bytes",
                 "integer", "images", "array", NULL},
                {"MediaIsos", "media", "string", "isos", "array", NULL},
        };
        for (gsize i = 0; i < G_N_ELEMENTS(open_objects); i++) {
                JsonObject *s = json_object_new(), *props = json_object_new();
                set_str(s, "type", "object");
                for (int k = 1; open_objects[i][k]; k += 2) {
                        JsonObject *f = json_object_new();
                        set_str(f, "type", open_objects[i][k + 1]);
                        json_object_set_object_member(props, open_objects[i][k], f);
                }
                json_object_set_object_member(s, "properties", props);
                json_object_set_object_member(schemas, open_objects[i][0], s);
        }
        for (gsize i = 0; i < G_N_ELEMENTS(bodies); i++) {
                JsonObject *s = json_object_new(), *props = json_object_new();
                JsonArray *req = json_array_new();
                set_str(s, "type", "object");
                for (int k = 1; k <= 2; k++) {
                        JsonObject *f = json_object_new();
                        set_str(f, "type", "string");
                        json_object_set_object_member(props, bodies[i][k], f);
                        json_array_add_string_element(req, bodies[i][k]);
                }
                json_object_set_object_member(s, "properties", props);
                json_object_set_array_member(s, "required", req);
                json_object_set_boolean_member(s, "additionalProperties", FALSE);
                json_object_set_object_member(schemas, bodies[i][0], s);
        }
        return schemas;
}

JsonNode *openapi_document(void)
{
        JsonObject *doc = json_object_new(), *info = json_object_new(), *paths = json_object_new(),
                   *comp = json_object_new(), *schemas = json_object_new();
        JsonObject *sec = json_object_new(), *bearer = json_object_new(), *req = json_object_new();
        JsonArray *security = json_array_new();
        JsonNode *root = json_node_new(JSON_NODE_OBJECT);
        gsize n;
        const Route *routes = routes_all(&n);
        const Resource *const *res = resources_all(&n);

        set_str(doc, "openapi", "3.0.3");
        set_str(info, "title", "Atrium REST API");
        set_str(info, "version", "v1");
        set_str(info, "description",
                "Manage an Atrium VDI platform. Every route but login, version and this document "
                "needs 'Authorization: Bearer TOKEN'. x-atrium-role is the least role allowed "
                "(user < operator < admin). Errors are {\"error\": {\"code\", \"message\"}}.");
        json_object_set_object_member(doc, "info", info);
        routes = routes_all(&n);
        for (gsize i = 0; i < n; i++) {
                JsonObject *item = obj_member(paths, routes[i].pattern);
                g_autofree char *m = g_ascii_strdown(routes[i].method, -1);
                json_object_set_object_member(item, m, operation(&routes[i]));
        }
        json_object_set_object_member(doc, "paths", paths);
        resources_all(&n);
        for (gsize i = 0; i < n; i++)
                json_object_set_object_member(schemas, res[i]->title, resource_schema(res[i]));
        json_object_set_object_member(comp, "schemas", fixed_schemas(schemas));
        set_str(bearer, "type", "http");
        set_str(bearer, "scheme", "bearer");
        json_object_set_object_member(sec, "bearer", bearer);
        json_object_set_object_member(comp, "securitySchemes", sec);
        json_object_set_object_member(doc, "components", comp);
        json_object_set_array_member(req, "bearer", json_array_new());
        json_array_add_object_element(security, req);
        json_object_set_array_member(doc, "security", security);
        json_node_take_object(root, doc);
        return root;
}
