/* libFuzzer harness for what crosses the agent link and the host's disk headers: the link's
 * message parser and command-argument readers (both sides use them), domain names, the qcow2
 * header parser the agent runs on every image of a volume, and pool name patterns. */
#include "agent/storage.h"
#include "common/util.h"
#include "proto/agentproto.h"
#include "proto/naming.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        g_autoptr(JsonObject) msg = NULL;
        g_autofree char *backing = NULL;

        storage_qcow2_backing(data, size, &backing, NULL);
        { /* pool name patterns: a valid one only ever makes valid names */
                g_autofree char *pattern = g_strndup((const char *)data, size);
                if (pool_pattern_valid(pattern, NULL)) {
                        g_autofree char *name = pool_desktop_name(pattern, 7);
                        if (!util_name_valid(name, NULL))
                                __builtin_trap();
                }
        }
        msg = agent_msg_parse((const char *)data, size, NULL);
        if (msg) {
                JsonNode *args = json_object_get_member(msg, "args");
                JsonObject *a = args && JSON_NODE_HOLDS_OBJECT(args) ? json_node_get_object(args)
                                                                     : msg;
                const char *kind;
                gint64 id, v;
                const char *d = agent_arg_string(a, "domain", FALSE, NULL);
                g_autofree char *text = agent_msg_text(msg); /* what a reply would send */
                g_autoptr(GError) e = NULL;

                g_assert(text && text[0] == '{');

                if (d && agent_domain_parse(d, NULL, &kind, &id)) {
                        /* a parsed name, written back, parses to the same object */
                        char inst[AGENT_INSTALLATION_LEN + 1];
                        g_autofree char *again = NULL;
                        const char *k2;
                        gint64 id2;
                        memcpy(inst, d + strlen("atrium-"), AGENT_INSTALLATION_LEN);
                        inst[AGENT_INSTALLATION_LEN] = '\0';
                        again = agent_domain_name(inst, kind, id);
                        if (!agent_domain_parse(again, inst, &k2, &id2) || id2 != id ||
                            strcmp(k2, kind) != 0)
                                __builtin_trap();
                }
                agent_arg_int(a, "vcpus", 1, 256, 1, &v, NULL);
                agent_arg_bool(a, "force", FALSE);
                {
                        JsonNode *err = json_object_get_member(msg, "error");
                        e = agent_error_from_json(err && JSON_NODE_HOLDS_OBJECT(err)
                                                          ? json_node_get_object(err)
                                                          : NULL);
                }
        }
        return 0;
}
