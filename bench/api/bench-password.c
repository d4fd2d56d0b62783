/* How long one argon2id verification takes at each cost: the floor under a login. */
#include "auth/auth.h"

#include <stdio.h>

int main(int argc, char **argv)
{
        const char *costs[] = {"interactive", "moderate"};
        int rounds = argc > 1 ? (int)g_ascii_strtoll(argv[1], NULL, 10) : 10;

        for (gsize i = 0; i < G_N_ELEMENTS(costs); i++) {
                g_autofree char *hash = password_hash("bench-password", costs[i], NULL);
                gint64 t0 = g_get_monotonic_time();
                for (int r = 0; r < rounds; r++)
                        if (!password_verify(hash, "bench-password"))
                                return 1;
                printf("argon2id verify (%s): %.1f ms\n", costs[i],
                       (g_get_monotonic_time() - t0) / 1000.0 / rounds);
        }
        return 0;
}
