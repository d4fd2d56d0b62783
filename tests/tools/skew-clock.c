/* LD_PRELOAD=libskewclock.so ATRIUM_SKEW_S=N: the process's wall clock N seconds off (a
 * manager on a machine whose clock is wrong), its monotonic clock untouched. For the test
 * that leadership is judged by the database's clock alone (test-cluster.sh). */
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long skew(void)
{
        const char *s = getenv("ATRIUM_SKEW_S");

        return s ? atol(s) : 0;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
        static int (*real)(clockid_t, struct timespec *);
        int rc;

        if (!real)
                real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
        rc = real(id, ts);
        if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
                ts->tv_sec += skew();
        return rc;
}

int gettimeofday(struct timeval *tv, void *tz)
{
        struct timespec ts;

        if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
                return -1;
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
        return 0;
}

time_t time(time_t *t)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        if (t)
                *t = ts.tv_sec;
        return ts.tv_sec;
}
