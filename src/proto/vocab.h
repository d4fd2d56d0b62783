/* The words the parts of Atrium say to each other, each spelled once: object states (as stored,
 * in SQL and JSON), console protocols, agent operations and the pool reconciler's steps.
 * Every enum has a string table and a sentinel (…_LAST); _from_string returns -1 for a word it
 * does not know, _to_string "" for a value out of range. The resource table's choices point
 * at the same tables (NULL-terminated), so the API, the store and the C cannot drift. */
#pragma once
#include <glib.h>

typedef enum {
        DESKTOP_PROVISIONING,
        DESKTOP_STOPPED,
        DESKTOP_STARTING,
        DESKTOP_RUNNING,
        DESKTOP_STOPPING,
        DESKTOP_FAILED,
        DESKTOP_DELETING,
        DESKTOP_RECOVERING,  /* its host went down: being started on another */
        DESKTOP_UNAVAILABLE, /* its host went down and no other host reaches its disk */
        DESKTOP_STATE_LAST
} DesktopState;

/* suspect: silent past manager.host_suspect_after, not yet down. */
typedef enum { HOST_UP, HOST_DOWN, HOST_MAINTENANCE, HOST_SUSPECT, HOST_STATE_LAST } HostState;

/* A guest's power state. */
typedef enum { VM_STOPPED, VM_STARTING, VM_RUNNING, VM_STOPPING, VM_FAILED, VM_STATE_LAST } VmState;

typedef enum {
        SESSION_CONNECTED,
        SESSION_DISCONNECTED,
        SESSION_ENDING,
        SESSION_STATE_LAST
} SessionState;

typedef enum {
        OPERATION_RUNNING,
        OPERATION_DONE,
        OPERATION_FAILED,
        OPERATION_STATE_LAST
} OperationState;

typedef enum { PROTOCOL_SPICE, PROTOCOL_VNC, PROTOCOL_LAST } ConsoleProtocol;

/* A domain's state as an agent reports it from libvirt (paused counts as running). */
typedef enum {
        DOMAIN_RUNNING,
        DOMAIN_PAUSED,
        DOMAIN_SHUTOFF,
        DOMAIN_CRASHED,
        DOMAIN_STATE_LAST
} DomainState;

/* The commands a manager sends to a host's agent (proto/agentproto.h). */
typedef enum {
        AGENT_OP_DOMAIN_START,
        AGENT_OP_DOMAIN_SHUTDOWN,
        AGENT_OP_DOMAIN_REBOOT,
        AGENT_OP_DOMAIN_RESET,
        AGENT_OP_DOMAIN_DESTROY,
        AGENT_OP_DOMAIN_UNDEFINE,
        AGENT_OP_DOMAIN_REMOVE,
        AGENT_OP_DOMAIN_CONSOLE,
        AGENT_OP_DOMAIN_MEDIA,
        AGENT_OP_DOMAIN_DESCRIBE,
        AGENT_OP_DOMAIN_MIGRATE,
        AGENT_OP_DOMAIN_MIGRATE_CANCEL,
        AGENT_OP_DESKTOP_PROVISION,
        AGENT_OP_DESKTOP_DELETE,
        AGENT_OP_IMAGE_OVERLAY,
        AGENT_OP_IMAGE_BASE,
        AGENT_OP_IMAGE_DELETE,
        AGENT_OP_VOLUME_LIST,
        AGENT_OP_MEDIA_LIST,
        AGENT_OP_INVENTORY,
        AGENT_OP_GUEST_REQUEST,
        AGENT_OP_LAST
} AgentOp;

/* One step of the pool reconciler on a desktop. */
/* STEP_RECOVER: a desktop of a down host started on another. */
typedef enum {
        STEP_PROVISION,
        STEP_START,
        STEP_STOP,
        STEP_DELETE,
        STEP_RECOVER,
        STEP_LAST
} ReconcileStep;

#define VOCAB_DECLARE(Type, prefix)                                                                \
        extern const char *const prefix##_names[];                                                 \
        const char *prefix##_to_string(Type v);                                                    \
        int prefix##_from_string(const char *s)

VOCAB_DECLARE(DesktopState, desktop_state);
VOCAB_DECLARE(HostState, host_state);
VOCAB_DECLARE(VmState, vm_state);
VOCAB_DECLARE(SessionState, session_state);
VOCAB_DECLARE(OperationState, operation_state);
VOCAB_DECLARE(ConsoleProtocol, console_protocol);
VOCAB_DECLARE(DomainState, domain_state);
VOCAB_DECLARE(AgentOp, agent_op);
VOCAB_DECLARE(ReconcileStep, reconcile_step);

/* The longest console password a protocol takes (VNC: 8 characters), 0 for no limit. */
gsize console_protocol_password_max(ConsoleProtocol p);
/* The words of a table joined by ", " with "or" before the last: "spice or vnc". */
char *vocab_alternatives(const char *const *names);
