/* libFuzzer harness for the configuration parser. */
#include "common/config.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        g_autoptr(Config) c = config_new();
        g_autofree char *dump = NULL;

        config_load_data(c, (const char *)data, size, NULL);
        dump = config_dump(c);
        return 0;
}
