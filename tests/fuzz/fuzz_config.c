/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the config parser (inih + our validation) on arbitrary
 * files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    static int fd = -1;
    struct agent_config cfg;
    char err[CONFIG_ERR_MAX];

    if (fd < 0) {
        snprintf(path, sizeof(path), "/tmp/fuzz-config-XXXXXX");
        fd = mkstemp(path);
        if (fd < 0)
            abort();
        log_set_level(LOG_EMERG);
    }
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    if (config_load(path, &cfg, err, sizeof(err)) < 0 && err[0] == '\0')
        abort(); /* every refusal must say why */
    config_free(&cfg);
    return 0;
}
