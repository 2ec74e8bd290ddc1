/* The [serial.NAME] sections of the agent's config: one bridged tty or printer
 * each. */
#ifndef REDIR_CONFIG_SERIAL_H
#define REDIR_CONFIG_SERIAL_H

#include <stddef.h>

struct agent_config;

/* One [serial.NAME] section. */
struct serial_port_config {
    char *name;   /* NAME of [serial.NAME] */
    int line;     /* line of its section header, for errors */
    char *device; /* tty or printer path */
};

#define SERIAL_SECTION_PREFIX "serial."

/* Called by the config reader for every [serial.NAME] header. Returns 0, or
 * -1 with what is wrong in why (the caller adds FILE:LINE). */
int config_serial_section(struct agent_config *cfg, const char *name, int line,
                          char *why, size_t why_len);

/* One "key = value" of the [serial.NAME] section; same contract. */
int config_serial_key(struct agent_config *cfg, const char *name,
                      const char *key, const char *value, int line, char *why,
                      size_t why_len);

/* After the whole file: checks each section is complete. Returns 0, or -1
 * with why and the line to blame in *line. */
int config_serial_finish(struct agent_config *cfg, char *why, size_t why_len,
                         int *line);

void config_serial_free(struct agent_config *cfg);

#endif
