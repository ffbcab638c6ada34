/* Fuzz target: the agent's configuration file parser. */
#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct agent_config c;
    char err[256];

    config_defaults(&c);
    config_parse_text(&c, (const char *)data, size, err, sizeof(err));
    config_free(&c);
    return 0;
}
