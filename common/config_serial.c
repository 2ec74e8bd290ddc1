/* The [serial.NAME] sections of the agent's config: one bridged tty or printer
 * each. */
#include "config_serial.h"

#include <stdio.h>

#include "config.h"

int config_serial_section(struct agent_config *cfg, const char *name, int line,
                          char *why, size_t why_len)
{
    (void)cfg;
    (void)line;
    snprintf(why, why_len,
             "[serial.%s]: the serial bridge is not available "
             "in this version",
             name);
    return -1;
}

int config_serial_key(struct agent_config *cfg, const char *name,
                      const char *key, const char *value, int line, char *why,
                      size_t why_len)
{
    (void)key;
    (void)value;
    config_serial_section(cfg, name, line, why, why_len);
    return -1;
}

int config_serial_finish(struct agent_config *cfg, char *why, size_t why_len,
                         int *line)
{
    (void)cfg;
    (void)why;
    (void)why_len;
    (void)line;
    return 0;
}

void config_serial_free(struct agent_config *cfg) { (void)cfg; }
