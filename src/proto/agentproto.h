/* The agent link: one WebSocket from each host's agent to the manager, carrying JSON text
 * messages. docs/architecture.md ("Agent link") lists them; both sides use these helpers.
 *
 *   agent -> manager: hello (facts + inventory), heartbeat, event, reply
 *   manager -> agent: welcome (volumes, media, timing), command (id, op, args)
 *
 * A command's id is chosen by the manager; the agent remembers the replies of recent ids, so
 * a repeated command gets the same answer without being run twice. */
#pragma once
#include <json-glib/json-glib.h>

#define AGENT_PROTO_VERSION 1
#define AGENT_MSG_MAX (8 * 1024 * 1024)
#define AGENT_MSG_DEPTH 16
#define AGENT_LINK_PATH "/api/v1/agent/link"
/* A standby's refusal of a link (503) names the leader's URL here ("" while none leads). */
#define AGENT_LEADER_HEADER "X-Atrium-Leader"
/* A peer host is a self-fencing witness at its management address on this port (libvirt's
 * TLS port, which live migration uses): a connection accepted or refused both prove that the
 * network between the two hosts works. */
#define AGENT_WITNESS_PORT 16514
#define AGENT_REGISTER_PATH "/api/v1/agent/register"
/* Namespace of the <metadata> element that marks a libvirt domain as ours. */
#define AGENT_XMLNS "https://atrium-vdi.org/xmlns/domain/1" /* = DOMXML_XMLNS */

/* Domains are named atrium-INST-KIND-ID: INST is the installation's id (8 lowercase hex
 * digits, made when its database was created), KIND guest or desktop. Two installations that
 * share a libvirt never see each other's domains. */
#define AGENT_INSTALLATION_LEN 8
gboolean agent_installation_valid(const char *inst);
char *agent_domain_name(const char *installation, const char *kind, gint64 id);
/* TRUE for a name of that form, of this installation (NULL: of any); *kind points to a static
 * string. */
gboolean agent_domain_parse(const char *name, const char *installation, const char **kind,
                            gint64 *id);

/* One message: a JSON object with a string "type". */
JsonObject *agent_msg_parse(const char *text, gsize len, GError **error);
char *agent_msg_text(JsonObject *msg);
JsonObject *agent_msg_new(const char *type);

/* Replies carry errors as {"code": "...", "message": "..."} with the codes of common/error.h. */
JsonObject *agent_error_to_json(const GError *error);
GError *agent_error_from_json(JsonObject *err);

/* Command arguments, checked: a missing or mistyped argument is an ATRIUM_ERROR_INVALID error
 * naming it. agent_arg_string returns NULL (no error) for an absent optional argument. */
const char *agent_arg_string(JsonObject *args, const char *key, gboolean required,
                             GError **error);
gboolean agent_arg_int(JsonObject *args, const char *key, gint64 min, gint64 max, gint64 def,
                       gint64 *out, GError **error);
gboolean agent_arg_bool(JsonObject *args, const char *key, gboolean def);
