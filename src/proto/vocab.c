/* The string tables of proto/vocab.h. */
#include "proto/vocab.h"

static int vocab_find(const char *const *names, int n, const char *s)
{
        for (int i = 0; s && i < n; i++)
                if (g_str_equal(names[i], s))
                        return i;
        return -1;
}

#define VOCAB_DEFINE(Type, prefix, last)                                                           \
        const char *prefix##_to_string(Type v)                                                     \
        {                                                                                          \
                return (int)v >= 0 && v < last ? prefix##_names[v] : "";                           \
        }                                                                                          \
        int prefix##_from_string(const char *s)                                                    \
        {                                                                                          \
                return vocab_find(prefix##_names, last, s);                                        \
        }

const char *const desktop_state_names[DESKTOP_STATE_LAST + 1] = {
        [DESKTOP_PROVISIONING] = "provisioning", [DESKTOP_STOPPED] = "stopped",
        [DESKTOP_STARTING] = "starting",         [DESKTOP_RUNNING] = "running",
        [DESKTOP_STOPPING] = "stopping",         [DESKTOP_FAILED] = "failed",
        [DESKTOP_DELETING] = "deleting",         [DESKTOP_RECOVERING] = "recovering",
        [DESKTOP_UNAVAILABLE] = "unavailable",
};
VOCAB_DEFINE(DesktopState, desktop_state, DESKTOP_STATE_LAST)

const char *const host_state_names[HOST_STATE_LAST + 1] = {
        [HOST_UP] = "up",
        [HOST_DOWN] = "down",
        [HOST_MAINTENANCE] = "maintenance",
        [HOST_SUSPECT] = "suspect",
};
VOCAB_DEFINE(HostState, host_state, HOST_STATE_LAST)

const char *const vm_state_names[VM_STATE_LAST + 1] = {
        [VM_STOPPED] = "stopped",   [VM_STARTING] = "starting", [VM_RUNNING] = "running",
        [VM_STOPPING] = "stopping", [VM_FAILED] = "failed",
};
VOCAB_DEFINE(VmState, vm_state, VM_STATE_LAST)

const char *const session_state_names[SESSION_STATE_LAST + 1] = {
        [SESSION_CONNECTED] = "connected",
        [SESSION_DISCONNECTED] = "disconnected",
        [SESSION_ENDING] = "ending",
};
VOCAB_DEFINE(SessionState, session_state, SESSION_STATE_LAST)

const char *const operation_state_names[OPERATION_STATE_LAST + 1] = {
        [OPERATION_RUNNING] = "running",
        [OPERATION_DONE] = "done",
        [OPERATION_FAILED] = "failed",
};
VOCAB_DEFINE(OperationState, operation_state, OPERATION_STATE_LAST)

const char *const console_protocol_names[PROTOCOL_LAST + 1] = {
        [PROTOCOL_SPICE] = "spice",
        [PROTOCOL_VNC] = "vnc",
};
VOCAB_DEFINE(ConsoleProtocol, console_protocol, PROTOCOL_LAST)

const char *const domain_state_names[DOMAIN_STATE_LAST + 1] = {
        [DOMAIN_RUNNING] = "running",
        [DOMAIN_PAUSED] = "paused",
        [DOMAIN_SHUTOFF] = "shutoff",
        [DOMAIN_CRASHED] = "crashed",
};
VOCAB_DEFINE(DomainState, domain_state, DOMAIN_STATE_LAST)

const char *const agent_op_names[AGENT_OP_LAST + 1] = {
        [AGENT_OP_DOMAIN_START] = "domain.start",
        [AGENT_OP_DOMAIN_SHUTDOWN] = "domain.shutdown",
        [AGENT_OP_DOMAIN_REBOOT] = "domain.reboot",
        [AGENT_OP_DOMAIN_RESET] = "domain.reset",
        [AGENT_OP_DOMAIN_DESTROY] = "domain.destroy",
        [AGENT_OP_DOMAIN_UNDEFINE] = "domain.undefine",
        [AGENT_OP_DOMAIN_REMOVE] = "domain.remove",
        [AGENT_OP_DOMAIN_CONSOLE] = "domain.console",
        [AGENT_OP_DOMAIN_MEDIA] = "domain.media",
        [AGENT_OP_DOMAIN_DESCRIBE] = "domain.describe",
        [AGENT_OP_DOMAIN_MIGRATE] = "domain.migrate",
        [AGENT_OP_DOMAIN_MIGRATE_CANCEL] = "domain.migrate-cancel",
        [AGENT_OP_DESKTOP_PROVISION] = "desktop.provision",
        [AGENT_OP_DESKTOP_DELETE] = "desktop.delete",
        [AGENT_OP_IMAGE_OVERLAY] = "image.overlay",
        [AGENT_OP_IMAGE_BASE] = "image.base",
        [AGENT_OP_IMAGE_DELETE] = "image.delete",
        [AGENT_OP_VOLUME_LIST] = "volume.list",
        [AGENT_OP_MEDIA_LIST] = "media.list",
        [AGENT_OP_INVENTORY] = "inventory",
        [AGENT_OP_GUEST_REQUEST] = "guest.request",
};
VOCAB_DEFINE(AgentOp, agent_op, AGENT_OP_LAST)

const char *const reconcile_step_names[STEP_LAST + 1] = {
        [STEP_PROVISION] = "provision",
        [STEP_START] = "start",
        [STEP_STOP] = "stop",
        [STEP_DELETE] = "delete",
        [STEP_RECOVER] = "recover",
};
VOCAB_DEFINE(ReconcileStep, reconcile_step, STEP_LAST)

gsize console_protocol_password_max(ConsoleProtocol p)
{
        return p == PROTOCOL_VNC ? 8 : 0;
}

char *vocab_alternatives(const char *const *names)
{
        GString *s = g_string_new(NULL);

        for (guint i = 0; names[i]; i++) {
                if (i)
                        g_string_append(s, names[i + 1] ? ", " : " or ");
                g_string_append(s, names[i]);
        }
        return g_string_free(s, FALSE);
}
