/* Accelerator detection: the CPU flag parser, configuration forcing, and the real probe on
 * this machine (where KVM does not work: the FIELD-NOTES trap). */
#include "agent/accel.h"
#include "common/error.h"
#include "testutil.h"

#include <string.h>

static void test_cpuinfo(void)
{
        g_assert_true(accel_cpuinfo_has_virt("processor\t: 0\nflags\t\t: fpu vme vmx sse\n"));
        g_assert_true(accel_cpuinfo_has_virt("flags : fpu svm\nflags : fpu\n"));
        g_assert_false(accel_cpuinfo_has_virt("flags\t\t: fpu vme vmxx sse svmx\n"));
        g_assert_false(accel_cpuinfo_has_virt("model name : vmx inside\nflags : fpu\n"));
        g_assert_false(accel_cpuinfo_has_virt(""));
        g_assert_false(accel_cpuinfo_has_virt(NULL));
}

static void test_forced(void)
{
        AccelReport r;
        g_autoptr(GError) error = NULL;

        g_assert_true(accel_detect("qemu", "/proc/cpuinfo", "/dev/kvm", &r, &error));
        g_assert_cmpint(r.accel, ==, DOMXML_ACCEL_QEMU);
        g_assert_true(r.forced);
        accel_report_clear(&r);
        g_assert_false(accel_detect("fast", "/proc/cpuinfo", "/dev/kvm", &r, &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_INVALID);
}

/* A fake machine: a CPU with the flag, a /dev/kvm that is a plain file (no ioctls). */
static void test_fake_device(void)
{
        g_autofree char *dir = testutil_tmpdir();
        g_autofree char *cpu = g_build_filename(dir, "cpuinfo", NULL);
        g_autofree char *dev = g_build_filename(dir, "kvm", NULL);
        g_autoptr(GError) error = NULL;
        AccelReport r;

        g_file_set_contents(cpu, "flags : fpu vmx\n", -1, NULL);
        g_file_set_contents(dev, "", -1, NULL);
        g_assert_true(accel_detect("auto", cpu, dev, &r, &error));
        g_assert_cmpint(r.accel, ==, DOMXML_ACCEL_QEMU);
        g_assert_true(r.cpu_flag && r.device && !r.probe);
        g_assert_nonnull(strstr(r.reason, "KVM test guest failed"));
        accel_report_clear(&r);
        g_assert_false(accel_detect("kvm", cpu, dev, &r, &error));
        g_assert_error(error, ATRIUM_ERROR, ATRIUM_ERROR_CONFLICT);
        testutil_rmdir(dir);
}

/* This machine, for real: whatever it finds must be consistent and explained. */
static void test_this_machine(void)
{
        AccelReport r;
        g_autoptr(GError) error = NULL;

        g_assert_true(accel_detect("auto", "/proc/cpuinfo", "/dev/kvm", &r, &error));
        g_test_message("accelerator: %s", r.reason);
        if (r.accel == DOMXML_ACCEL_KVM)
                g_assert_true(r.cpu_flag && r.device && r.probe);
        else
                g_assert_true(!r.cpu_flag || !r.device || !r.probe);
        g_assert_nonnull(r.reason);
        accel_report_clear(&r);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/accel/cpuinfo", test_cpuinfo);
        g_test_add_func("/accel/forced", test_forced);
        g_test_add_func("/accel/fake-device", test_fake_device);
        g_test_add_func("/accel/this-machine", test_this_machine);
        return g_test_run();
}
