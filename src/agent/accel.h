/* Which accelerator desktops get: KVM where it really works, TCG (domain type qemu) elsewhere.
 * On some machines /dev/kvm exists and libvirt lists the kvm domain type, yet a guest started
 * with KVM hangs (no vmx/svm CPU flag, a stub kvm module): so detection needs the CPU flag,
 * the device, and a real probe that runs one instruction in a KVM guest, in a child process
 * killed if it does not come back.
 *
 * Measured on the project's machines (kvm_pvm): the one-instruction probe succeeds although a
 * full guest hangs, so there the missing CPU flag is what rules KVM out. A stronger probe, a
 * real guest booted with accel=kvm for a few seconds, belongs with the agent's guest start. */
#pragma once
#include "agent/domxml.h"

typedef struct {
        DomxmlAccel accel;
        gboolean cpu_flag; /* vmx or svm in /proc/cpuinfo */
        gboolean device;   /* /dev/kvm opens */
        gboolean probe;    /* a KVM guest ran HLT and exited */
        gboolean forced;   /* chosen by configuration, not detected */
        char *reason;      /* one sentence for logs and the host record */
} AccelReport;

void accel_report_clear(AccelReport *r);

/* TRUE when the flags line(s) of a /proc/cpuinfo text name vmx or svm. */
gboolean accel_cpuinfo_has_virt(const char *cpuinfo);

/* mode: "auto", "kvm" or "qemu". Forcing kvm on a machine where the probe fails is an error. */
gboolean accel_detect(const char *mode, const char *cpuinfo_path, const char *kvm_path,
                      AccelReport *report, GError **error);
