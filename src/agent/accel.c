#include "agent/accel.h"
#include "common/error.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROBE_TIMEOUT_MS 2000

void accel_report_clear(AccelReport *r)
{
        g_clear_pointer(&r->reason, g_free);
}

gboolean accel_cpuinfo_has_virt(const char *cpuinfo)
{
        g_auto(GStrv) lines = g_strsplit(cpuinfo ? cpuinfo : "", "\n", -1);

        for (char **l = lines; *l; l++) {
                g_auto(GStrv) words = NULL;
                if (!g_str_has_prefix(*l, "flags"))
                        continue;
                words = g_strsplit_set(strchr(*l, ':') ? strchr(*l, ':') + 1 : "", " \t", -1);
                for (char **w = words; *w; w++)
                        if (g_str_equal(*w, "vmx") || g_str_equal(*w, "svm"))
                                return TRUE;
        }
        return FALSE;
}

/* In the child: a 4 KiB real-mode guest whose first instruction is HLT. Exit status 0 when
 * KVM_RUN came back with KVM_EXIT_HLT. */
static int probe_child(const char *kvm_path)
{
        struct kvm_userspace_memory_region region = {0};
        struct kvm_sregs sregs;
        struct kvm_regs regs = {0};
        struct kvm_run *run;
        unsigned char *mem;
        int kvm, vm, vcpu, size;

        kvm = open(kvm_path, O_RDWR | O_CLOEXEC);
        if (kvm < 0 || ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
                return 2;
        vm = ioctl(kvm, KVM_CREATE_VM, 0);
        if (vm < 0)
                return 3;
        mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
                return 4;
        mem[0] = 0xf4; /* hlt */
        region.guest_phys_addr = 0x1000;
        region.memory_size = 0x1000;
        region.userspace_addr = (unsigned long)mem;
        if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
                return 5;
        vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
        size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
        if (vcpu < 0 || size <= 0)
                return 6;
        run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
        if (run == MAP_FAILED || ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
                return 7;
        sregs.cs.base = 0;
        sregs.cs.selector = 0;
        if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
                return 8;
        regs.rip = 0x1000;
        regs.rflags = 0x2;
        if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0 || ioctl(vcpu, KVM_RUN, 0) < 0)
                return 9;
        return run->exit_reason == KVM_EXIT_HLT ? 0 : 10;
}

/* Run the probe in a child; a KVM that hangs is killed after PROBE_TIMEOUT_MS. */
static gboolean probe(const char *kvm_path, char **why)
{
        pid_t pid = fork();
        int status = 0;

        if (pid < 0) {
                *why = g_strdup_printf("cannot fork the KVM probe: %s", g_strerror(errno));
                return FALSE;
        }
        if (pid == 0)
                _exit(probe_child(kvm_path));
        for (int waited = 0; waited < PROBE_TIMEOUT_MS; waited += 20) {
                pid_t r = waitpid(pid, &status, WNOHANG);
                if (r == pid) {
                        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                                return TRUE;
                        *why = g_strdup_printf("a KVM test guest failed (probe step %d)",
                                               WIFEXITED(status) ? WEXITSTATUS(status) : -1);
                        return FALSE;
                }
                g_usleep(20 * 1000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        *why = g_strdup_printf("a KVM test guest hung for %d ms", PROBE_TIMEOUT_MS);
        return FALSE;
}

gboolean accel_detect(const char *mode, const char *cpuinfo_path, const char *kvm_path,
                      AccelReport *r, GError **error)
{
        g_autofree char *cpuinfo = NULL, *why = NULL;
        int fd;

        memset(r, 0, sizeof(*r));
        if (!g_str_equal(mode, "auto") && !g_str_equal(mode, "kvm") && !g_str_equal(mode, "qemu")) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID,
                            "accelerator '%s': use auto, kvm or qemu", mode);
                return FALSE;
        }
        if (g_str_equal(mode, "qemu")) {
                r->accel = DOMXML_ACCEL_QEMU;
                r->forced = TRUE;
                r->reason = g_strdup("TCG (domain type qemu), as configured");
                return TRUE;
        }
        g_file_get_contents(cpuinfo_path, &cpuinfo, NULL, NULL);
        r->cpu_flag = accel_cpuinfo_has_virt(cpuinfo);
        fd = open(kvm_path, O_RDWR | O_CLOEXEC);
        r->device = fd >= 0;
        if (fd >= 0)
                close(fd);
        if (!r->cpu_flag)
                why = g_strdup("the CPU shows no vmx or svm flag");
        else if (!r->device)
                why = g_strdup_printf("%s cannot be opened", kvm_path);
        else
                r->probe = probe(kvm_path, &why);
        if (r->cpu_flag && r->device && r->probe) {
                r->accel = DOMXML_ACCEL_KVM;
                r->forced = g_str_equal(mode, "kvm");
                r->reason = g_strdup("KVM: CPU flag, device and a test guest all work");
                return TRUE;
        }
        if (g_str_equal(mode, "kvm")) {
                g_set_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT,
                            "accelerator kvm was configured, but KVM does not work here: %s",
                            why);
                return FALSE;
        }
        r->accel = DOMXML_ACCEL_QEMU;
        r->reason = g_strdup_printf("TCG (domain type qemu): %s", why);
        return TRUE;
}
